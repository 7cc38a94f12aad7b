"""The SIP trust boundary on the sans-IO cores (issue 10, items 3, 4 and 9): no sockets, time
passed as numbers.  The same attacks through real sockets are in test_security_sip.py.

* the address book the transport feeds (names resolved where the transport resolves them);
* in-dialog requests (and CANCEL) accepted only from the dialog's next hop, the source of the
  dialog-forming INVITE, or the account's servers — dropped unanswered otherwise, changing
  nothing;
* Digest answered only toward the account's own registrar/proxy, in the realm it pinned;
* new INVITEs for a session only from its registrar/proxy (the call layer's InboundRouter).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from twisted.internet import defer, reactor
from twisted.trial import unittest

from tests.test_sip_invite import CHALLENGE, PROXY, CallHarness
from tests.test_sip_registration import CONTACT, TopRandom, challenge, ok
from tests.test_sip_uas import CALLER, UasHarness, statuses
from wcsgw.calls.admission import Admission
from wcsgw.calls.inbound import InboundRouter
from wcsgw.config import LimitsSettings
from wcsgw.sip.account import SipAccount
from wcsgw.sip.digest import ChallengeOutcome, Credentials, DigestClient
from wcsgw.sip.endpoint import EndpointConfig, SipEndpoint
from wcsgw.sip.invite import REASON_NORMAL, Answered, Ended
from wcsgw.sip.message import Request, Response
from wcsgw.sip.registration import Registration, RegistrationFailed
from wcsgw.sip.responses import make_response
from wcsgw.sip.session import ReferReceived
from wcsgw.sip.target import Target
from wcsgw.sip.transport import SipTransport
from wcsgw.sip.trust import MAX_NAMES, AddressBook, normalize_ip
from wcsgw.sip.uas import Cancelled, UasState

STRANGER = Target("UDP", "192.0.2.66", 5060)


def live_requests(ep: SipEndpoint) -> int:
    """Transactions the layer still keeps (a dropped request must not leave one)."""
    return len(ep.layer)


# ----------------------------------------------------------------------------- address book


class AddressBookTests(unittest.TestCase):
    def test_literals_stand_for_themselves_in_one_spelling(self) -> None:
        book = AddressBook()
        self.assertEqual(normalize_ip("::ffff:192.0.2.1"), "192.0.2.1")
        self.assertEqual(normalize_ip("[2001:DB8::1]"), "2001:db8::1")
        self.assertIsNone(normalize_ip("pbx.example.com"))
        self.assertTrue(book.admits("::ffff:192.0.2.1", ["192.0.2.1"]))
        self.assertTrue(book.admits("2001:db8::1", ["[2001:db8:0::1]"]))
        self.assertFalse(book.admits("192.0.2.2", ["192.0.2.1"]))
        self.assertFalse(book.admits("not-an-ip", ["not-an-ip"]))

    def test_a_name_matches_only_once_resolved(self) -> None:
        book = AddressBook()
        self.assertFalse(book.admits("198.51.100.7", ["PBX.example.com."]))
        book.want(["PBX.example.com.", "192.0.2.1", ""])
        self.assertEqual(book.take_lookups(), ["pbx.example.com"])  # literals need none
        self.assertEqual(book.take_lookups(), [])
        book.learn("pbx.example.com", "198.51.100.7")
        book.learn("pbx.example.com", "198.51.100.8")  # another A record, another time
        self.assertTrue(book.admits("198.51.100.7", ["PBX.example.com."]))
        self.assertTrue(book.admits("198.51.100.8", ["pbx.example.com"]))
        book.want(["pbx.example.com"])
        self.assertEqual(book.take_lookups(), [])  # known: not asked again

    def test_a_name_is_looked_up_once(self) -> None:
        """A name that never resolves costs one lookup, not one per dropped packet."""
        book = AddressBook()
        book.want(["nowhere.invalid"])
        self.assertEqual(book.take_lookups(), ["nowhere.invalid"])
        for _ in range(3):
            book.want(["nowhere.invalid"])
        self.assertEqual(book.take_lookups(), [])

    def test_same_host_by_name_or_address(self) -> None:
        book = AddressBook()
        self.assertTrue(book.same_host("Proxy.example.com", ["proxy.example.com"]))
        self.assertFalse(book.same_host("127.0.0.1", ["proxy.example.com"]))
        book.learn("proxy.example.com", "127.0.0.1")
        self.assertTrue(book.same_host("127.0.0.1", ["proxy.example.com"]))
        self.assertTrue(book.same_host("proxy.example.com", ["127.0.0.1"]))
        self.assertFalse(book.same_host("127.0.0.2", ["proxy.example.com"]))

    def test_bounded(self) -> None:
        book = AddressBook()
        for i in range(MAX_NAMES + 10):
            book.learn(f"h{i}.example", "192.0.2.1")
        self.assertEqual(book.addresses("h0.example"), frozenset())  # the oldest went
        self.assertEqual(book.addresses(f"h{MAX_NAMES + 9}.example"), frozenset({"192.0.2.1"}))


class TransportLearnsTests(unittest.TestCase):
    """The adapter resolves what the core asks for, and what it sends to, and tells it."""

    def test_lookups_and_sends_feed_the_book(self) -> None:
        asked: list[str] = []

        def resolve(name: str) -> defer.Deferred:
            asked.append(name)
            return defer.succeed({"pbx.example.com": "127.0.0.1"}.get(name, "127.0.0.3"))

        transport = SipTransport(reactor, "127.0.0.1", 0, resolve=resolve)
        transport.bind()
        self.addCleanup(transport.stop)
        endpoint = SipEndpoint(EndpointConfig())
        transport.attach(endpoint)
        endpoint.addresses.want(["pbx.example.com"])
        self.assertEqual(endpoint.addresses.addresses("pbx.example.com"), {"127.0.0.1"})
        transport._send(b"\r\n\r\n", Target("UDP", "peer.example.com", 9))
        self.assertEqual(asked, ["pbx.example.com", "peer.example.com"])
        self.assertEqual(endpoint.addresses.addresses("peer.example.com"), {"127.0.0.3"})


# -------------------------------------------------------------------- 3. in-dialog requests


class OutgoingDialogTrustTests(unittest.TestCase):
    """We called through the account's proxy (127.0.0.1)."""

    def test_bye_from_a_stranger_is_dropped_and_changes_nothing(self) -> None:
        h = CallHarness()
        h.answered(record_route=("<sip:127.0.0.1:5060;lr>",))
        h.sent()
        h.source = STRANGER
        h.feed(h.in_dialog_request("BYE"), at=1.0)
        self.assertEqual(h.sent(), [])  # no answer at all: a 403 would be a reflection
        self.assertIsInstance(h.events[-1], Answered)  # nothing after it
        self.assertEqual(h.ep.stats.untrusted, 1)
        self.assertEqual(h.call.state.name, "CONFIRMED")
        h.source = PROXY  # the same BYE through the proxy: the call ends
        h.feed(h.in_dialog_request("BYE"), at=1.1)
        self.assertEqual(h.events[-1], Ended(REASON_NORMAL, by_remote=True))

    def test_refer_from_a_stranger_is_dropped(self) -> None:
        h = CallHarness()
        h.answered(record_route=("<sip:127.0.0.1:5060;lr>",))
        h.sent()
        h.source = STRANGER
        refer = h.in_dialog_request("REFER")
        refer.headers.add("Refer-To", "<sip:+19005550199@127.0.0.1>")
        h.feed(refer, at=1.0)
        self.assertEqual(h.sent(), [])
        self.assertEqual([e for e in h.events if isinstance(e, ReferReceived)], [])

    def test_without_route_set_the_callee_contact_may_send(self) -> None:
        """No Record-Route: the callee's Contact (192.0.2.20) is the dialog's next hop; its
        BYE is taken from any port of that address."""
        h = CallHarness()
        h.answered()
        h.sent()
        h.source = Target("UDP", "192.0.2.20", 5999)
        h.feed(h.in_dialog_request("BYE"), at=1.0)
        self.assertEqual(h.events[-1], Ended(REASON_NORMAL, by_remote=True))
        self.assertEqual(h.ep.stats.untrusted, 0)


class IncomingDialogTrustTests(unittest.TestCase):
    def test_in_dialog_request_from_a_stranger_is_dropped(self) -> None:
        h = UasHarness()
        h.answered()
        h.feed(h.ack(), at=0.1)
        h.sent()
        before = live_requests(h.ep)
        bye = h.in_dialog("BYE", cseq=8, branch="z9hG4bKbye1")
        h.ep.receive_bytes(bye.to_bytes(), STRANGER, 1.0)
        self.assertEqual(h.sent(), [])
        self.assertEqual(live_requests(h.ep), before)  # its transaction was discarded
        self.assertIs(h.session.state, UasState.CONFIRMED)
        h.feed(h.in_dialog("BYE", cseq=8, branch="z9hG4bKbye2"), at=1.1)  # from the caller
        self.assertEqual(statuses([m for m, _ in h.sent() if isinstance(m, Response)]), [200])
        self.assertIsInstance(h.events[-1], Ended)

    def test_a_record_route_host_is_trusted_once_resolved(self) -> None:
        """The INVITE came through proxy.example.com (Record-Route); a BYE from its address
        is taken once the transport resolved the name, which the router asked it to."""
        h = UasHarness()
        h.answered(record_route=("<sip:proxy.example.com;lr>",))
        h.feed(h.ack(), at=0.1)
        h.sent()
        self.assertIn("proxy.example.com", h.ep.addresses.take_lookups())
        proxy = Target("UDP", "198.51.100.7", 5060)
        h.ep.receive_bytes(h.in_dialog("BYE", cseq=8, branch="z9hG4bKb1").to_bytes(), proxy, 1.0)
        self.assertEqual(h.sent(), [])
        h.ep.addresses.learn("proxy.example.com", "198.51.100.7")
        h.ep.receive_bytes(h.in_dialog("BYE", cseq=8, branch="z9hG4bKb2").to_bytes(), proxy, 1.1)
        self.assertIsInstance(h.events[-1], Ended)

    def test_cancel_only_from_the_invites_sender(self) -> None:
        h = UasHarness()
        invite = h.receive_invite()
        h.sent()
        h.ep.receive_bytes(h.cancel(invite).to_bytes(), STRANGER, 0.1)
        self.assertEqual(h.sent(), [])
        self.assertIs(h.session.state, UasState.RECEIVED)
        h.feed(h.cancel(invite), at=0.2)
        self.assertEqual(sorted(statuses([m for m, _ in h.sent() if isinstance(m, Response)])),
                         [200, 487])
        self.assertEqual(h.events, [Cancelled()])


# ------------------------------------------------------------------ 4. digest answered to anyone


def request(method: str = "BYE") -> Request:
    return Request(method, "sip:1002@192.0.2.20", [
        ("Via", "SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bKx"), ("From", "<sip:a@h>;tag=1"),
        ("To", "<sip:b@h>;tag=2"), ("Call-ID", "c"), ("CSeq", f"2 {method}")])


def challenged(realm: str, status: int = 401) -> Response:
    name = "Proxy-Authenticate" if status == 407 else "WWW-Authenticate"
    return Response(status, "Unauthorized", [(name, f'Digest realm="{realm}", nonce="n"')])


class DigestTrustTests(unittest.TestCase):
    def test_a_request_not_to_the_server_gets_nothing(self) -> None:
        client = DigestClient(Credentials("1001", "pw"))
        self.assertIs(client.handle_challenge(request(), challenged("r"), to_server=False),
                      ChallengeOutcome.UNTRUSTED)
        self.assertEqual(client.realms(), [])  # nothing cached, nothing pinned
        self.assertIsNone(client.pin.realms)
        # A cached server challenge is never used on a request elsewhere.
        client.handle_challenge(request(), challenged("r"), to_server=True)
        req = request()
        req.headers.add("Authorization", "Digest stale")
        self.assertFalse(client.authorize(req, to_server=False))
        self.assertIsNone(req.headers.get("Authorization"))
        self.assertTrue(client.authorize(req, to_server=True))

    def test_the_first_server_realm_is_pinned_for_the_account(self) -> None:
        account = SipAccount(login="1001", password="pw", domain="127.0.0.1")
        registration_digest = account.digest_client()
        self.assertIs(registration_digest.handle_challenge(
            request("REGISTER"), challenged("pbx"), to_server=True), ChallengeOutcome.RETRY)
        call_digest = account.digest_client()  # another call of the same account
        self.assertIs(call_digest.handle_challenge(request(), challenged("evil"), to_server=True),
                      ChallengeOutcome.UNTRUSTED)
        self.assertEqual(call_digest.realms(), [])
        self.assertIs(call_digest.handle_challenge(request(), challenged("pbx", 407),
                                                   to_server=True), ChallengeOutcome.RETRY)
        # Another account has a pin of its own.
        other = SipAccount(login="1002", password="pw", domain="127.0.0.1")
        self.assertIs(other.digest_client().handle_challenge(
            request(), challenged("evil"), to_server=True), ChallengeOutcome.RETRY)

    def test_a_registrar_changing_realm_is_not_answered(self) -> None:
        account = SipAccount(login="1001", password="pw", domain="example.com")
        reg = Registration(account, CONTACT, rng=TopRandom())
        first = reg.start(0.0)
        second = reg.receive_response(challenge(first, "N1"), 0.0)
        assert second is not None
        self.assertIsNone(reg.receive_response(ok(second), 0.0))
        reg.take_events()
        refresh = reg.handle_timer(1000.0)
        assert refresh is not None
        moved = make_response(refresh, 401)
        moved.headers.add("WWW-Authenticate", 'Digest realm="elsewhere", nonce="N9"')
        self.assertIsNone(reg.receive_response(moved, 1000.0))
        [failed] = [e for e in reg.take_events() if isinstance(e, RegistrationFailed)]
        self.assertTrue(failed.auth)
        self.assertIn("not the account's realm", failed.reason)

    def test_in_dialog_challenge_from_the_proxy_is_answered(self) -> None:
        """Record-Route through the account's proxy: its 407 to our re-INVITE is answered."""
        h = CallHarness()
        h.answered(record_route=("<sip:127.0.0.1:5060;lr>",))
        h.sent()
        h.call.reinvite(b"v=0\r\n", 1.0)
        [(reinvite, target)] = h.sent_requests("INVITE")
        self.assertEqual(target, PROXY)
        response = make_response(reinvite, 407)
        response.headers.add("Proxy-Authenticate", CHALLENGE)
        h.feed(response, at=1.1)
        [(again, _)] = h.sent_requests("INVITE")
        self.assertIn('realm="127.0.0.1"', again.headers.get("Proxy-Authorization") or "")


# ------------------------------------------------------------------ 9. unsolicited INVITEs


def stub_gateway(h: UasHarness, account: SipAccount | None) -> Any:
    """What the incoming-call router asks of a gateway: one connected session of ``account``
    behind every contact, and an Admission with no gate (the gateway takes calls)."""
    session = SimpleNamespace(connected=True, account=account)
    return SimpleNamespace(sip=SimpleNamespace(endpoint=h.ep),
                           session_for_contact=lambda user: session,
                           admission=Admission(LimitsSettings()))


def router_harness(account: SipAccount | None) -> tuple[UasHarness, list[Any]]:
    h = UasHarness()
    made: list[Any] = []
    gateway = stub_gateway(h, account)

    def make_call(session: Any, invite: Any, request: Any) -> Any:
        made.append(invite)
        h.sessions.append(invite)
        return SimpleNamespace(_on_sip_event=h.events.append)

    h.ep.handlers = [InboundRouter(gateway, make_call)]
    return h, made


class InboundInviteTrustTests(unittest.TestCase):
    def test_from_the_registrar_by_ip_any_port(self) -> None:
        h, made = router_harness(SipAccount(login="1001", password="pw", domain="127.0.0.1",
                                            port=5999))
        h.receive_invite()  # from CALLER, 127.0.0.1:5070 — not the account's port
        self.assertEqual(len(made), 1)
        self.assertEqual(made[0].account.domain, "127.0.0.1")

    def test_from_anyone_else_403_and_no_call(self) -> None:
        h, made = router_harness(SipAccount(login="1001", password="pw", domain="127.0.0.1",
                                            outbound_proxy="192.0.2.1"))
        invite = h.invite()
        h.ep.receive_bytes(invite.to_bytes(), STRANGER, 0.0)
        [refusal] = h.sent_responses()
        self.assertEqual(refusal.status, 403)
        self.assertEqual(made, [])

    def test_a_registrar_name_matches_once_resolved(self) -> None:
        h, made = router_harness(SipAccount(login="1001", password="pw",
                                            domain="pbx.example.com"))
        h.receive_invite(branch="z9hG4bKa")
        self.assertEqual(statuses(h.sent_responses()), [403])
        self.assertIn("pbx.example.com", h.ep.addresses.take_lookups())
        h.ep.addresses.learn("pbx.example.com", CALLER.host)
        h.receive_invite(branch="z9hG4bKb")
        self.assertEqual(len(made), 1)
