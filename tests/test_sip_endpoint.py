"""The endpoint core without sockets: front-door behaviour and registration wiring."""

from __future__ import annotations

import random

from twisted.trial import unittest

from wcsgw.sip.account import SipAccount
from wcsgw.sip.endpoint import EndpointConfig, SipEndpoint
from wcsgw.sip.parser import parse_message
from wcsgw.sip.registration import Registered, RegistrationFailed
from wcsgw.sip.responses import make_response
from wcsgw.sip.target import Target
from wcsgw.sip.transaction import TimerConfig
from wcsgw.sip.usage.policy import policy_of, set_session_policy

PEER = Target("UDP", "192.0.2.7", 5070)


def options(branch: str = "z9hG4bKopt1", extra: str = "", method: str = "OPTIONS",
            via_host: str = "192.0.2.7:5070;rport", call_id: str = "c1@example.com") -> bytes:
    return (
        f"{method} sip:gw@127.0.0.1:5060 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {via_host};branch={branch}\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:alice@example.com>;tag=a1\r\n"
        "To: <sip:gw@127.0.0.1>\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: 1 {method}\r\n"
        f"{extra}"
        "Content-Length: 0\r\n\r\n"
    ).encode()


class FrontDoorTests(unittest.TestCase):
    def setUp(self) -> None:
        self.ep = SipEndpoint(EndpointConfig(host="127.0.0.1", port=5060, user_agent="wcsgw-test"))

    def replies(self) -> list[tuple[object, Target]]:
        return [(parse_message(data), target) for data, target in self.ep.take_outgoing()]

    def test_options_answered_200(self) -> None:
        self.ep.receive_bytes(options(), PEER, 0.0)
        [(resp, target)] = self.replies()
        self.assertEqual(resp.status, 200)
        self.assertIn("INVITE", resp.headers.get_all("Allow"))
        self.assertIsNotNone(resp.to.tag)
        self.assertEqual((target.host, target.port), ("192.0.2.7", 5070))
        # RFC 3581: the response carries where the request really came from.
        self.assertEqual(resp.top_via.params["rport"], "5070")
        self.assertEqual(resp.top_via.params["received"], "192.0.2.7")

    def test_retransmission_answered_again_not_reprocessed(self) -> None:
        seen = []

        class Handler:
            def handle_request(self, request, txn, source, now):
                seen.append(request)
                return False

        self.ep.handlers.append(Handler())
        self.ep.receive_bytes(options(), PEER, 0.0)
        self.ep.receive_bytes(options(), PEER, 0.5)
        self.assertEqual(len(seen), 1)
        self.assertEqual([r.status for r, _ in self.replies()], [200, 200])

    def test_bare_magic_cookie_branch_is_not_trusted(self) -> None:
        """RFC 4475 badbranch: ``z9hG4bK`` alone is not unique, so two different requests
        carrying it are two transactions (RFC 2543 matching), each answered for itself."""
        self.ep.receive_bytes(options(branch="z9hG4bK", call_id="one"), PEER, 0.0)
        self.ep.receive_bytes(options(branch="z9hG4bK", call_id="two"), PEER, 0.1)
        self.assertEqual([r.call_id for r, _ in self.replies()], ["one", "two"])

    def test_ipv6_advertised_host_bracketed(self) -> None:
        ep = SipEndpoint(EndpointConfig(host="::1", port=5060))
        account = SipAccount(login="1001", password="x", domain="::1", port=5070)
        ep.register(account, 0.0)
        [(data, target)] = ep.take_outgoing()
        request = parse_message(data)
        self.assertEqual(request.top_via.host, "[::1]")
        self.assertIn("sip:1001@[::1]:5060", request.headers.get("Contact"))
        self.assertEqual((target.host, target.port), ("::1", 5070))

    def test_response_goes_to_source_port_with_rport(self) -> None:
        self.ep.receive_bytes(options(via_host="10.0.0.5:5060;rport"), PEER, 0.0)
        [(_resp, target)] = self.replies()
        self.assertEqual((target.host, target.port), ("192.0.2.7", 5070))

    def test_unknown_method_405_with_allow(self) -> None:
        self.ep.receive_bytes(options(method="PUBLISH"), PEER, 0.0)
        [(resp, _)] = self.replies()
        self.assertEqual(resp.status, 405)
        self.assertIn("OPTIONS", resp.headers.get_all("Allow"))

    def test_unsupported_extension_420(self) -> None:
        self.ep.receive_bytes(options(extra="Require: nothing-we-know\r\n"), PEER, 0.0)
        [(resp, _)] = self.replies()
        self.assertEqual(resp.status, 420)
        self.assertEqual(resp.headers.get("Unsupported"), "nothing-we-know")

    def test_the_session_policy_extensions_may_be_required(self) -> None:
        """With the [sip] policy set, a caller may Require timer (our sessions honour the
        peer's timer) and 100rel (unless prack is off); anything else is still 420."""
        set_session_policy(self.ep, policy_of(1800, 90, "supported"))
        self.ep.receive_bytes(options(extra="Require: 100rel, timer\r\n"), PEER, 0.0)
        [(resp, _)] = self.replies()
        self.assertEqual(resp.status, 200)
        set_session_policy(self.ep, policy_of(1800, 90, "off"))
        self.ep.receive_bytes(options(branch="z9hG4bKopt2", extra="Require: 100rel, timer\r\n"),
                              PEER, 0.0)
        [(resp, _)] = self.replies()
        self.assertEqual((resp.status, resp.headers.get("Unsupported")), (420, "100rel"))

    def test_cancel_without_invite_481(self) -> None:
        self.ep.receive_bytes(options(method="CANCEL"), PEER, 0.0)
        [(resp, _)] = self.replies()
        self.assertEqual(resp.status, 481)

    def test_invite_without_taker_480(self) -> None:
        self.ep.receive_bytes(options(method="INVITE"), PEER, 0.0)
        statuses = [r.status for r, _ in self.replies()]
        self.assertEqual(statuses[-1], 480)

    def test_garbage_dropped_counted_never_raises(self) -> None:
        for junk in (b"\x00\xff" * 50, b"HELLO", b"SIP/2.0 999\r\n\r\n", b"INVITE\r\n\r\n"):
            self.ep.receive_bytes(junk, PEER, 0.0)
        self.assertEqual(self.replies(), [])
        self.assertEqual(self.ep.stats.malformed, 4)
        self.assertEqual(self.ep.stats.dropped, 4)

    def test_broken_request_with_addressable_headers_gets_400(self) -> None:
        broken = options().replace(b"CSeq: 1 OPTIONS", b"CSeq: 1 INVITE")  # method mismatch
        self.ep.receive_bytes(broken, PEER, 0.0)
        [(resp, target)] = self.replies()
        self.assertEqual(resp.status, 400)
        self.assertEqual(resp.call_id, "c1@example.com")
        self.assertEqual(self.ep.stats.answered_400, 1)

    def test_keepalive_crlf_ignored(self) -> None:
        self.ep.receive_bytes(b"\r\n\r\n", PEER, 0.0)
        self.assertEqual(self.replies(), [])
        self.assertEqual(self.ep.stats.malformed, 0)


class RegistrationWiringTests(unittest.TestCase):
    """The endpoint adds Via/Max-Forwards, runs the REGISTER through a transaction and hands
    responses and timeouts to the registration, at the instants the timers say."""

    def setUp(self) -> None:
        self.ep = SipEndpoint(EndpointConfig(host="127.0.0.1", port=5099, timers=TimerConfig(t1=0.5)),
                              rng=random.Random(1))
        self.events: list[object] = []
        self.account = SipAccount(login="1001", password="pass1001", domain="127.0.0.1", port=5060)
        self.reg = self.ep.register(self.account, 0.0, self.events.append)

    def sent(self):
        return [(parse_message(d), t) for d, t in self.ep.take_outgoing()]

    def test_register_sent_with_via_and_contact(self) -> None:
        [(req, target)] = self.sent()
        self.assertEqual(req.method, "REGISTER")
        self.assertEqual(target, Target("UDP", "127.0.0.1", 5060))
        via = req.top_via
        self.assertEqual((via.host, via.port), ("127.0.0.1", 5099))
        self.assertTrue(via.branch.startswith("z9hG4bK"))
        self.assertIn("rport", via.params)
        self.assertEqual(req.headers.get("Max-Forwards"), "70")
        self.assertIn("sip:1001@127.0.0.1:5099", req.headers.get("Contact"))

    def test_challenge_then_ok(self) -> None:
        [(req, _)] = self.sent()
        challenge = make_response(req, 401, to_tag="r1")
        challenge.headers.add("WWW-Authenticate", 'Digest realm="127.0.0.1", nonce="abc", qop="auth"')
        self.ep.receive_bytes(challenge.to_bytes(), Target("UDP", "127.0.0.1", 5060), 0.1)
        [(again, _)] = self.sent()
        self.assertIn('username="1001"', again.headers.get("Authorization"))
        self.assertNotEqual(again.top_via.branch, req.top_via.branch)
        ok = make_response(again, 200, to_tag="r2")
        ok.headers.set("Contact", again.headers.get("Contact") + ";expires=300")
        self.ep.receive_bytes(ok.to_bytes(), Target("UDP", "127.0.0.1", 5060), 0.2)
        self.assertIsInstance(self.events[-1], Registered)
        # A refresh is due before the binding lapses.
        self.assertLess(self.ep.next_deadline(), 0.2 + 300)

    def test_timeout_reported_after_timer_f(self) -> None:
        self.sent()
        now = 0.0
        while not self.events:
            deadline = self.ep.next_deadline()
            self.assertIsNotNone(deadline)
            now = deadline
            self.ep.handle_timer(now)
            self.ep.take_outgoing()
        self.assertIsInstance(self.events[0], RegistrationFailed)
        self.assertEqual(now, 32.0)  # Timer F = 64*T1
