"""The outgoing INVITE session and the dialog router, sans-IO: bytes in, bytes out, explicit now.

Every test drives a real :class:`SipEndpoint` (transaction layer included) with responses built
by ``make_response`` from the requests the session actually sent, and asserts on the parsed
requests that come out and on the events the listener got.
"""

from __future__ import annotations

from twisted.trial import unittest

from wcsgw.sip.account import SipAccount
from wcsgw.sip.dialog import Dialog
from wcsgw.sip.dialogs import DialogRouter, dialog_target
from wcsgw.sip.endpoint import EndpointConfig, SipEndpoint
from wcsgw.sip.invite import (
    REASON_NORMAL,
    REASON_TIMEOUT,
    REASON_TRANSPORT,
    Answered,
    Ended,
    Failed,
    InviteState,
    OutgoingInvite,
    Provisional,
    build_cancel,
)
from wcsgw.sip.message import Request, Response
from wcsgw.sip.parser import parse_message
from wcsgw.sip.responses import make_response
from wcsgw.sip.session import ReinviteOffered
from wcsgw.sip.target import Target
from wcsgw.sip.transaction import TimerConfig

PROXY = Target("UDP", "127.0.0.1", 5060)
CALLEE_CONTACT = "<sip:1002@192.0.2.20:5070>"
SDP_OFFER = (
    b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)
SDP_ANSWER = (
    b"v=0\r\no=- 2 2 IN IP4 192.0.2.20\r\ns=-\r\nc=IN IP4 192.0.2.20\r\nt=0 0\r\n"
    b"m=audio 50000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)
CHALLENGE = 'Digest realm="127.0.0.1", nonce="n0nce1", qop="auth"'
T1 = 0.5
TIMEOUT = 64 * T1


class CallHarness:
    """One endpoint, one account, one OutgoingInvite, and helpers to play the far side."""

    def __init__(self, transport: str = "udp", **kwargs: object) -> None:
        self.ep = SipEndpoint(EndpointConfig(host="127.0.0.1", port=5099, user_agent="wcsgw-test",
                                             timers=TimerConfig(t1=T1)))
        self.account = SipAccount(login="1001", password="pass1001", domain="127.0.0.1",
                                  port=5060, transport=transport)
        self.events: list[object] = []
        self.source = Target(transport.upper(), "127.0.0.1", 5060)
        self.call = OutgoingInvite(self.ep, self.account, "sip:1002@127.0.0.1", SDP_OFFER,
                                   listener=self.events.append, **kwargs)  # type: ignore[arg-type]
        self.now = 0.0

    def sent(self) -> list[tuple[Request | Response, Target]]:
        return [(parse_message(d), t) for d, t in self.ep.take_outgoing()]

    def sent_requests(self, method: str | None = None) -> list[tuple[Request, Target]]:
        out = [(m, t) for m, t in self.sent() if isinstance(m, Request)]
        return [(m, t) for m, t in out if method is None or m.method == method]

    def start(self) -> Request:
        self.call.start(self.now)
        [(invite, _)] = self.sent_requests("INVITE")
        return invite

    def feed(self, msg: Request | Response, at: float | None = None) -> None:
        if at is not None:
            self.now = at
        self.ep.receive_bytes(msg.to_bytes(), self.source, self.now)

    def respond(self, request: Request, status: int, *, tag: str | None = "b1",
                sdp: bytes | None = None, record_route: tuple[str, ...] = (),
                contact: str | None = CALLEE_CONTACT, at: float | None = None) -> Response:
        response = make_response(request, status, to_tag=tag)
        if contact and 100 < status < 300:
            response.headers.add("Contact", contact)
        for rr in record_route:
            response.headers.add("Record-Route", rr)
        if sdp is not None:
            response.headers.add("Content-Type", "application/sdp")
            response.body = sdp
        self.feed(response, at)
        return response

    def advance(self, until: float) -> None:
        """Fire every endpoint deadline up to ``until``, in order, as the transport would."""
        while True:
            deadline = self.ep.next_deadline()
            if deadline is None or deadline > until:
                break
            self.now = max(self.now, deadline)
            self.ep.handle_timer(self.now)
        self.now = until

    def in_dialog_request(self, method: str, *, cseq: int = 1, from_tag: str = "b1",
                          to_tag: str | None = None, branch: str = "z9hG4bKpeer1",
                          call_id: str | None = None, body: bytes = b"",
                          extra: tuple[tuple[str, str], ...] = ()) -> Request:
        headers = [
            ("Via", f"SIP/2.0/UDP 127.0.0.1:5060;branch={branch}"),
            ("Max-Forwards", "70"),
            ("From", f"<sip:1002@127.0.0.1>;tag={from_tag}"),
            ("To", f"<sip:1001@127.0.0.1>;tag={to_tag or self.call.local_tag}"),
            ("Call-ID", call_id or self.call.call_id),
            ("CSeq", f"{cseq} {method}"),
            *extra,
        ]
        if method in ("INVITE", "UPDATE"):
            headers.append(("Contact", CALLEE_CONTACT))
        return Request(method, "sip:1001@127.0.0.1:5099", headers, body)

    def answered(self, record_route: tuple[str, ...] = ()) -> tuple[Request, Response]:
        """Start, 180, 200: the call is up.  Returns the INVITE and the 200."""
        invite = self.start()
        self.respond(invite, 180, record_route=record_route, at=0.1)
        ok = self.respond(invite, 200, sdp=SDP_ANSWER, record_route=record_route, at=0.2)
        return invite, ok


def responses(sent: list[tuple[Request | Response, Target]]) -> list[Response]:
    return [m for m, _ in sent if isinstance(m, Response)]


class InviteRequestTests(unittest.TestCase):
    def test_invite_headers(self) -> None:
        h = CallHarness(display_name="Alice", extra_headers=[("X-Call-Tag", "abc")])
        h.call.start(0.0)
        [(invite, target)] = h.sent()
        self.assertIsInstance(invite, Request)
        self.assertEqual(invite.method, "INVITE")
        self.assertEqual(invite.uri, "sip:1002@127.0.0.1")
        self.assertEqual(target, PROXY)
        self.assertEqual(str(invite.from_.uri), "sip:1001@127.0.0.1")
        self.assertEqual(invite.from_.display_name, "Alice")
        self.assertEqual(invite.from_.tag, h.call.local_tag)
        self.assertEqual(str(invite.to.uri), "sip:1002@127.0.0.1")
        self.assertIsNone(invite.to.tag)
        self.assertEqual(invite.call_id, h.call.call_id)
        self.assertEqual(invite.cseq, (1, "INVITE"))
        self.assertEqual(invite.headers.get("Contact"), "<sip:1001@127.0.0.1:5099>")
        self.assertEqual(invite.headers.get("Content-Type"), "application/sdp")
        allow = [m.strip() for v in invite.headers.get_all("Allow") for m in v.split(",")]
        for method in ("INVITE", "ACK", "CANCEL", "BYE", "OPTIONS"):
            self.assertIn(method, allow)
        self.assertEqual(invite.headers.get("X-Call-Tag"), "abc")
        self.assertEqual(invite.headers.get("Max-Forwards"), "70")
        self.assertEqual(invite.body, SDP_OFFER)
        via = invite.top_via
        self.assertEqual((via.host, via.port, via.transport), ("127.0.0.1", 5099, "UDP"))
        self.assertTrue(via.branch.startswith("z9hG4bK"))
        self.assertIsNone(invite.headers.get("Proxy-Authorization"))
        self.assertEqual(h.call.state, InviteState.CALLING)

    def test_tcp_account(self) -> None:
        h = CallHarness(transport="tcp")
        h.call.start(0.0)
        [(invite, target)] = h.sent()
        self.assertEqual(target, Target("TCP", "127.0.0.1", 5060))
        self.assertEqual(invite.top_via.transport, "TCP")
        self.assertEqual(invite.headers.get("Contact"), "<sip:1001@127.0.0.1:5099;transport=tcp>")

    def test_session_headers_refused_in_extra_headers(self) -> None:
        for name in ("Call-ID", "cseq", "From", "Contact", "Proxy-Authorization"):
            with self.assertRaises(ValueError):
                CallHarness(extra_headers=[(name, "x")])

    def test_bad_callee_or_header_value_refused_up_front(self) -> None:
        ep = SipEndpoint(EndpointConfig())
        account = SipAccount(login="1001", password="p", domain="127.0.0.1")
        for uri in ("mailto:bob@example.com", "sip:", "not a uri"):
            with self.assertRaises(ValueError):
                OutgoingInvite(ep, account, uri, SDP_OFFER, listener=lambda e: None)
        with self.assertRaises(ValueError):
            OutgoingInvite(ep, account, "sip:b@x", SDP_OFFER, listener=lambda e: None,
                           extra_headers=[("X-Evil", "a\r\nBYE: x")])
        self.assertEqual(ep.handlers, [])
        self.assertEqual(ep.timed_users, [])

    def test_tel_uri_callee(self) -> None:
        h = CallHarness()
        call = OutgoingInvite(h.ep, h.account, "tel:+4930123456", SDP_OFFER, listener=h.events.append)
        call.start(0.0)
        [(invite, target)] = h.sent_requests("INVITE")
        self.assertEqual(invite.uri, "tel:+4930123456")
        self.assertEqual(target, PROXY)

    def test_start_twice_refused(self) -> None:
        h = CallHarness()
        h.start()
        with self.assertRaises(RuntimeError):
            h.call.start(1.0)

    def test_router_installed_once_and_first(self) -> None:
        h = CallHarness()

        class Other:
            def handle_request(self, *args: object) -> bool:
                return False

        h.ep.handlers.append(Other())
        h.start()
        second = OutgoingInvite(h.ep, h.account, "sip:1003@127.0.0.1", SDP_OFFER,
                                listener=lambda e: None)
        second.start(0.0)
        routers = [x for x in h.ep.handlers if isinstance(x, DialogRouter)]
        self.assertEqual(len(routers), 1)
        self.assertIs(h.ep.handlers[0], routers[0])
        self.assertIs(DialogRouter.install(h.ep), routers[0])


class AuthTests(unittest.TestCase):
    def challenge(self, h: CallHarness, invite: Request, status: int = 407,
                  value: str = CHALLENGE) -> None:
        response = make_response(invite, status, to_tag="proxy1")
        name = "Proxy-Authenticate" if status == 407 else "WWW-Authenticate"
        response.headers.add(name, value)
        h.feed(response, at=h.now + 0.01)

    def test_407_answered_with_new_invite(self) -> None:
        h = CallHarness()
        first = h.start()
        self.challenge(h, first)
        sent = h.sent_requests()
        self.assertEqual([m.method for m, _ in sent], ["ACK", "INVITE"])
        (ack, _), (second, target) = sent
        # The transaction ACKs the 407 itself: same branch and CSeq number (§17.1.1.3).
        self.assertEqual(ack.top_via.branch, first.top_via.branch)
        self.assertEqual(ack.cseq, (1, "ACK"))
        self.assertEqual(ack.to.tag, "proxy1")
        # The new INVITE: CSeq + 1, new branch, same Call-ID and From tag, credentials.
        self.assertEqual(second.cseq, (2, "INVITE"))
        self.assertNotEqual(second.top_via.branch, first.top_via.branch)
        self.assertEqual(second.call_id, first.call_id)
        self.assertEqual(second.from_.tag, first.from_.tag)
        self.assertIsNone(second.to.tag)
        self.assertEqual(target, PROXY)
        credentials = second.headers.get("Proxy-Authorization")
        self.assertIsNotNone(credentials)
        self.assertIn('username="1001"', credentials)
        self.assertIn('realm="127.0.0.1"', credentials)
        self.assertIn('uri="sip:1002@127.0.0.1"', credentials)
        self.assertIn('nonce="n0nce1"', credentials)
        self.assertIsNone(second.headers.get("Authorization"))
        self.assertEqual(second.body, SDP_OFFER)
        self.assertEqual(h.events, [])

        # The ACK of the 2xx carries the INVITE's credentials and CSeq number (§13.2.2.4),
        # as it goes through the proxy (Record-Route).
        h.respond(second, 200, sdp=SDP_ANSWER, record_route=("<sip:127.0.0.1:5060;lr>",),
                  at=0.2)
        [(ack2, target)] = h.sent_requests("ACK")
        self.assertEqual(target, PROXY)
        self.assertEqual(ack2.cseq, (2, "ACK"))
        self.assertEqual(ack2.headers.get("Proxy-Authorization"), credentials)
        self.assertEqual(h.events, [Answered(SDP_ANSWER)])

    def test_ack_straight_to_the_callee_carries_no_credentials(self) -> None:
        """Without a Record-Route the ACK goes to the callee's Contact, not to the account's
        proxy: the INVITE's response hash is not copied to it (it could be searched offline
        for the password)."""
        h = CallHarness()
        first = h.start()
        self.challenge(h, first)
        [(second, _)] = h.sent_requests("INVITE")
        self.assertIsNotNone(second.headers.get("Proxy-Authorization"))
        h.respond(second, 200, sdp=SDP_ANSWER, at=0.2)
        [(ack, target)] = h.sent_requests("ACK")
        self.assertEqual(target, Target("UDP", "192.0.2.20", 5070))
        self.assertEqual(ack.cseq, (2, "ACK"))
        self.assertIsNone(ack.headers.get("Proxy-Authorization"))
        self.assertIsNone(ack.headers.get("Authorization"))

    def test_401_answered_with_authorization(self) -> None:
        h = CallHarness()
        first = h.start()
        self.challenge(h, first, status=401)
        [(second, _)] = h.sent_requests("INVITE")
        self.assertIn('username="1001"', second.headers.get("Authorization"))
        self.assertIsNone(second.headers.get("Proxy-Authorization"))

    def test_second_challenge_fails(self) -> None:
        h = CallHarness()
        first = h.start()
        self.challenge(h, first)
        [(second, _)] = h.sent_requests("INVITE")
        self.challenge(h, second)  # same nonce again: the password was refused
        self.assertEqual(h.sent_requests("INVITE"), [])
        self.assertEqual(h.events, [Failed(407, "407 Proxy Authentication Required")])
        self.assertEqual(h.call.state, InviteState.TERMINATED)
        self.assertEqual(h.call.final_status, 407)

    def test_new_nonce_after_fresh_one_also_fails(self) -> None:
        h = CallHarness()
        first = h.start()
        self.challenge(h, first)
        [(second, _)] = h.sent_requests("INVITE")
        self.challenge(h, second, value='Digest realm="127.0.0.1", nonce="other", qop="auth"')
        self.assertEqual(h.sent_requests("INVITE"), [])
        self.assertEqual(h.events, [Failed(407, "407 Proxy Authentication Required")])

    def test_challenge_we_cannot_answer_fails(self) -> None:
        h = CallHarness()
        first = h.start()
        self.challenge(h, first, value='Digest realm="x", nonce="n", algorithm=UNKNOWN-ALG')
        self.assertEqual(h.sent_requests("INVITE"), [])
        self.assertEqual(h.events, [Failed(407, "407 Proxy Authentication Required")])

    def test_hangup_while_challenged_invite_is_pending(self) -> None:
        h = CallHarness()
        first = h.start()
        self.challenge(h, first)
        [(second, _)] = h.sent_requests("INVITE")
        h.call.hangup(h.now)
        self.assertEqual(h.sent_requests(), [])  # no provisional for the new INVITE yet
        h.respond(second, 100, tag=None, at=0.3)
        [(cancel, _)] = h.sent_requests("CANCEL")
        self.assertEqual(cancel.top_via.branch, second.top_via.branch)
        self.assertEqual(cancel.cseq, (2, "CANCEL"))


class ProgressAndAnswerTests(unittest.TestCase):
    def test_provisional_events(self) -> None:
        h = CallHarness()
        invite = h.start()
        h.respond(invite, 100, tag=None, at=0.05)
        h.respond(invite, 180, at=0.1)
        h.respond(invite, 183, sdp=SDP_ANSWER, at=0.2)
        self.assertEqual(h.events, [
            Provisional(100, "Trying", None),
            Provisional(180, "Ringing", None),
            Provisional(183, "Session Progress", SDP_ANSWER),
        ])
        self.assertEqual(h.call.state, InviteState.PROCEEDING)
        # The 180 with a To tag made an early dialog, known to the router.
        self.assertEqual(list(h.call.early_dialogs), ["b1"])
        router = DialogRouter.install(h.ep)
        self.assertIn((h.call.call_id, h.call.local_tag, "b1"), router)

    def test_answer_is_acked_with_dialog_routing(self) -> None:
        h = CallHarness()
        rr = ("<sip:10.0.0.2:5062;lr>", "<sip:127.0.0.1:5060;lr;ftag=x>")
        invite, ok = h.answered(record_route=rr)
        self.assertEqual(h.events[-1], Answered(SDP_ANSWER))
        self.assertEqual(h.call.state, InviteState.CONFIRMED)
        self.assertEqual(h.call.final_status, 200)
        [(ack, target)] = h.sent_requests("ACK")
        self.assertEqual(ack.uri, "sip:1002@192.0.2.20:5070")  # the 2xx's Contact
        # §12.1.2: the route set is the Record-Route reversed.
        self.assertEqual(ack.headers.get_all("Route"), list(reversed(rr)))
        self.assertEqual(target, Target("UDP", "127.0.0.1", 5060))  # the first route
        self.assertEqual(ack.cseq, (1, "ACK"))
        self.assertEqual(ack.call_id, invite.call_id)
        self.assertEqual(ack.from_.tag, invite.from_.tag)
        self.assertEqual(ack.to.tag, "b1")
        self.assertNotEqual(ack.top_via.branch, invite.top_via.branch)  # a new transaction
        self.assertEqual(ack.body, b"")
        self.assertEqual(h.call.dialog.remote_target, "sip:1002@192.0.2.20:5070")
        self.assertEqual(h.call.early_dialogs, {})

    def test_answer_without_record_route_acks_to_contact(self) -> None:
        h = CallHarness()
        h.answered()
        [(ack, target)] = h.sent_requests("ACK")
        self.assertEqual(ack.headers.get_all("Route"), [])
        self.assertEqual(target, Target("UDP", "192.0.2.20", 5070))

    def test_answer_without_provisional(self) -> None:
        h = CallHarness()
        invite = h.start()
        h.respond(invite, 200, sdp=SDP_ANSWER, at=0.1)
        self.assertEqual(h.events, [Answered(SDP_ANSWER)])
        self.assertEqual(len(h.sent_requests("ACK")), 1)

    def test_2xx_retransmission_is_acked_again(self) -> None:
        h = CallHarness()
        invite, ok = h.answered()
        [(ack, target)] = h.sent_requests("ACK")
        h.feed(ok, at=0.7)  # the UAS did not see our ACK
        h.feed(ok, at=1.7)
        again = h.sent_requests("ACK")
        self.assertEqual(len(again), 2)
        for ack2, target2 in again:
            self.assertEqual(ack2.top_via.branch, ack.top_via.branch)  # the same ACK again
            self.assertEqual(ack2.cseq, (1, "ACK"))
            self.assertEqual(target2, target)
            self.assertEqual(len(ack2.headers.get_all("Via")), 1)
        self.assertEqual([type(e) for e in h.events], [Provisional, Answered])

    def test_forked_2xx_is_acked_and_byed(self) -> None:
        h = CallHarness()
        invite = h.start()
        h.respond(invite, 180, tag="b1", at=0.1)
        h.respond(invite, 180, tag="b2", contact="<sip:1002@192.0.2.30:5080>", at=0.15)
        self.assertEqual(sorted(h.call.early_dialogs), ["b1", "b2"])
        h.respond(invite, 200, tag="b1", sdp=SDP_ANSWER, at=0.2)
        h.sent()
        second = h.respond(invite, 200, tag="b2", sdp=SDP_ANSWER,
                           contact="<sip:1002@192.0.2.30:5080>", at=0.3)
        sent = h.sent_requests()
        self.assertEqual([m.method for m, _ in sent], ["ACK", "BYE"])
        (ack, ack_target), (bye, bye_target) = sent
        for request, target in sent:
            self.assertEqual(request.to.tag, "b2")
            self.assertEqual(request.uri, "sip:1002@192.0.2.30:5080")
            self.assertEqual(target, Target("UDP", "192.0.2.30", 5080))
        self.assertEqual(ack.cseq, (1, "ACK"))
        self.assertEqual(bye.cseq, (2, "BYE"))
        # Only the first answer counts; the call stays up on dialog b1.
        self.assertEqual([type(e) for e in h.events], [Provisional, Provisional, Answered])
        self.assertEqual(h.call.dialog.remote_tag, "b1")
        self.assertEqual(h.call.state, InviteState.CONFIRMED)
        # Its retransmission is ACKed again, no second BYE.
        h.feed(second, at=0.8)
        self.assertEqual([m.method for m, _ in h.sent_requests()], ["ACK"])
        h.feed(make_response(bye, 200), at=0.9)
        self.assertEqual(h.call.state, InviteState.CONFIRMED)
        self.assertEqual(len(h.events), 3)

    def test_failure_statuses(self) -> None:
        for status, reason in ((486, "Busy Here"), (404, "Not Found"), (600, "Busy Everywhere"),
                               (603, "Decline"), (302, "Moved Temporarily"),
                               (503, "Service Unavailable"), (480, "Temporarily Unavailable")):
            h = CallHarness()
            invite = h.start()
            h.respond(invite, 180, at=0.1)
            h.respond(invite, status, at=0.2)
            self.assertEqual(h.events[-1], Failed(status, f"{status} {reason}"))
            self.assertEqual(h.call.state, InviteState.TERMINATED)
            self.assertEqual(h.call.final_status, status)
            # The transaction ACKs the failure, hop by hop (same branch, CSeq 1 ACK).
            [(ack, target)] = h.sent_requests("ACK")
            self.assertEqual(ack.top_via.branch, invite.top_via.branch)
            self.assertEqual(ack.cseq, (1, "ACK"))
            self.assertEqual(target, PROXY)
            # The early dialog is gone from the router; the session from the timed users.
            self.assertEqual(len(DialogRouter.install(h.ep)), 0)
            self.assertNotIn(h.call, h.ep.timed_users)

    def test_no_event_after_the_terminal_one(self) -> None:
        h = CallHarness()
        invite = h.start()
        h.respond(invite, 486, at=0.1)
        h.respond(invite, 486, at=0.6)  # retransmission: the transaction re-ACKs it
        h.call.hangup(0.7)
        self.assertEqual(h.events, [Failed(486, "486 Busy Here")])
        self.assertEqual(h.sent_requests("CANCEL"), [])


class CancelTests(unittest.TestCase):
    def assert_cancel_matches(self, cancel: Request, target: Target, invite: Request) -> None:
        self.assertEqual(cancel.method, "CANCEL")
        self.assertEqual(cancel.uri, invite.uri)
        self.assertEqual(cancel.headers.get_all("Via"), [invite.headers.get("Via")])
        self.assertEqual(cancel.top_via.branch, invite.top_via.branch)
        self.assertEqual(cancel.cseq, (invite.cseq[0], "CANCEL"))
        self.assertEqual(cancel.call_id, invite.call_id)
        self.assertEqual(cancel.headers.get("From"), invite.headers.get("From"))
        self.assertEqual(cancel.headers.get("To"), invite.headers.get("To"))
        self.assertEqual(cancel.headers.get_all("Route"), invite.headers.get_all("Route"))
        self.assertIsNone(cancel.headers.get("Proxy-Authorization"))
        self.assertEqual(cancel.body, b"")
        self.assertEqual(target, PROXY)

    def test_hangup_before_provisional_waits_for_one(self) -> None:
        h = CallHarness()
        invite = h.start()
        h.call.hangup(0.05)
        self.assertEqual(h.sent(), [])  # §9.1: no CANCEL before a provisional
        self.assertEqual(h.call.state, InviteState.CANCELLING)
        h.respond(invite, 180, at=0.1)
        [(cancel, target)] = h.sent_requests()
        self.assert_cancel_matches(cancel, target, invite)
        self.assertEqual(h.events, [])  # no Provisional once hanging up
        h.feed(make_response(cancel, 200), at=0.15)
        self.assertEqual(h.events, [])
        h.respond(invite, 487, at=0.2)
        self.assertEqual(h.events, [Ended(REASON_NORMAL, by_remote=False)])
        self.assertEqual(h.call.final_status, 487)
        [(ack, _)] = h.sent_requests("ACK")
        self.assertEqual(ack.top_via.branch, invite.top_via.branch)

    def test_hangup_while_ringing_cancels_at_once(self) -> None:
        h = CallHarness()
        invite = h.start()
        h.respond(invite, 180, at=0.1)
        h.call.hangup(0.2)
        [(cancel, target)] = h.sent_requests()
        self.assert_cancel_matches(cancel, target, invite)
        # The CANCEL is its own transaction: retransmitted (Timer E) with the same branch.
        h.advance(0.2 + T1)
        [(again, _)] = h.sent_requests("CANCEL")
        self.assertEqual(again.top_via.branch, invite.top_via.branch)
        h.call.hangup(0.8)  # a second hang-up changes nothing
        self.assertEqual(h.sent(), [])
        h.respond(invite, 487, at=0.9)
        self.assertEqual(h.events, [Provisional(180, "Ringing", None),
                                    Ended(REASON_NORMAL, by_remote=False)])

    def test_final_without_provisional_settles_queued_cancel(self) -> None:
        h = CallHarness()
        invite = h.start()
        h.call.hangup(0.05)
        h.respond(invite, 486, at=0.1)
        self.assertEqual(h.sent_requests("CANCEL"), [])
        self.assertEqual(h.events, [Ended(REASON_NORMAL, by_remote=False)])

    def test_timer_b_settles_queued_cancel(self) -> None:
        h = CallHarness()
        h.start()
        h.call.hangup(0.05)
        h.advance(TIMEOUT + 1)
        self.assertEqual(h.sent_requests("CANCEL"), [])
        self.assertEqual(h.events, [Ended(REASON_NORMAL, by_remote=False)])

    def test_200_crossing_cancel_is_acked_and_byed(self) -> None:
        h = CallHarness()
        invite = h.start()
        h.respond(invite, 180, record_route=("<sip:127.0.0.1:5060;lr>",), at=0.1)
        h.call.hangup(0.2)
        [(cancel, _)] = h.sent_requests("CANCEL")
        h.respond(invite, 200, sdp=SDP_ANSWER, record_route=("<sip:127.0.0.1:5060;lr>",), at=0.25)
        sent = h.sent_requests()
        self.assertEqual([m.method for m, _ in sent], ["ACK", "BYE"])
        (ack, _), (bye, bye_target) = sent
        self.assertEqual(ack.cseq, (1, "ACK"))
        self.assertEqual(bye.cseq, (2, "BYE"))
        self.assertEqual(bye.uri, "sip:1002@192.0.2.20:5070")
        self.assertEqual(bye.headers.get_all("Route"), ["<sip:127.0.0.1:5060;lr>"])
        self.assertEqual(bye_target, PROXY)
        self.assertEqual(h.call.state, InviteState.TERMINATING)
        h.feed(make_response(cancel, 481), at=0.3)  # the CANCEL came too late
        self.assertEqual(h.events, [Provisional(180, "Ringing", None)])  # never Answered
        h.feed(make_response(bye, 200), at=0.35)
        self.assertEqual(h.events[-1], Ended(REASON_NORMAL, by_remote=False))
        self.assertEqual(len(h.events), 2)

    def test_no_final_after_cancel_gives_up_after_64_t1(self) -> None:
        h = CallHarness()
        invite = h.start()
        h.respond(invite, 180, at=0.1)
        h.call.hangup(1.0)
        h.advance(1.0 + TIMEOUT - 0.1)
        self.assertEqual(h.events, [Provisional(180, "Ringing", None)])
        h.advance(1.0 + TIMEOUT + 0.1)
        self.assertEqual(h.events[-1], Ended(REASON_NORMAL, by_remote=False))
        self.assertNotIn(h.call, h.ep.timed_users)
        # §9.1: the INVITE transaction (no timer of its own in Proceeding) is destroyed too.
        h.advance(1.0 + 2 * TIMEOUT)
        self.assertEqual(len(h.ep.layer), 0)

    def test_build_cancel_needs_a_sent_invite(self) -> None:
        with self.assertRaises(ValueError):
            build_cancel(Request("INVITE", "sip:x@y", [("CSeq", "1 INVITE")]))


class TimeoutTests(unittest.TestCase):
    def test_no_answer_timeout_cancels_then_fails(self) -> None:
        h = CallHarness(no_answer_timeout=5.0)
        invite = h.start()
        self.assertEqual(h.ep.next_deadline(), T1)  # Timer A first
        h.respond(invite, 180, at=0.1)
        self.assertEqual(h.ep.next_deadline(), 5.0)  # Proceeding: only our timeout is left
        h.advance(4.9)
        self.assertEqual(h.sent(), [])
        h.advance(5.0)
        [(cancel, _)] = h.sent_requests("CANCEL")
        self.assertEqual(cancel.top_via.branch, invite.top_via.branch)
        self.assertEqual(h.events, [Provisional(180, "Ringing", None)])
        h.respond(invite, 487, at=5.1)
        self.assertEqual(h.events[-1], Failed(None, REASON_TIMEOUT))
        self.assertEqual(h.call.final_status, 487)

    def test_no_answer_timeout_then_200_crossing(self) -> None:
        h = CallHarness(no_answer_timeout=5.0)
        invite = h.start()
        h.respond(invite, 180, at=0.1)
        h.advance(5.0)
        h.sent()
        h.respond(invite, 200, sdp=SDP_ANSWER, at=5.05)
        sent = h.sent_requests()
        self.assertEqual([m.method for m, _ in sent], ["ACK", "BYE"])
        h.feed(make_response(sent[1][0], 200), at=5.1)
        self.assertEqual(h.events[-1], Failed(None, REASON_TIMEOUT))
        self.assertNotIn(Answered(SDP_ANSWER), h.events)

    def test_answer_clears_no_answer_timeout(self) -> None:
        h = CallHarness(no_answer_timeout=5.0)
        h.answered()
        h.sent()
        h.advance(10.0)
        self.assertEqual(h.sent_requests("CANCEL"), [])
        self.assertEqual(h.call.state, InviteState.CONFIRMED)

    def test_timer_b(self) -> None:
        h = CallHarness()
        invite = h.start()
        h.advance(TIMEOUT - 0.01)
        retransmissions = h.sent_requests("INVITE")
        self.assertGreater(len(retransmissions), 3)
        for again, _ in retransmissions:
            self.assertEqual(again.top_via.branch, invite.top_via.branch)
        self.assertEqual(h.events, [])
        h.advance(TIMEOUT + 0.01)
        self.assertEqual(h.events, [Failed(None, REASON_TIMEOUT)])
        self.assertNotIn(h.call, h.ep.timed_users)

    def test_transport_error(self) -> None:
        h = CallHarness()
        h.start()
        h.ep.transport_error(PROXY, 0.1)
        self.assertEqual(h.events, [Failed(None, REASON_TRANSPORT)])


class ByeTests(unittest.TestCase):
    def test_hangup_sends_bye_in_dialog(self) -> None:
        h = CallHarness()
        rr = ("<sip:127.0.0.1:5060;lr;ftag=x>",)
        invite, _ = h.answered(record_route=rr)
        h.sent()
        h.call.hangup(1.0)
        [(bye, target)] = h.sent_requests()
        self.assertEqual(bye.method, "BYE")
        self.assertEqual(bye.uri, "sip:1002@192.0.2.20:5070")  # remote target
        self.assertEqual(bye.headers.get_all("Route"), list(rr))
        self.assertEqual(target, PROXY)
        self.assertEqual(bye.cseq, (2, "BYE"))
        self.assertEqual(bye.from_.tag, invite.from_.tag)
        self.assertEqual(bye.to.tag, "b1")
        self.assertEqual(bye.call_id, invite.call_id)
        self.assertEqual(h.call.state, InviteState.TERMINATING)
        self.assertEqual(h.events[-1], Answered(SDP_ANSWER))  # not ended before the answer
        h.feed(make_response(bye, 200), at=1.1)
        self.assertEqual(h.events[-1], Ended(REASON_NORMAL, by_remote=False))
        self.assertEqual(h.call.state, InviteState.TERMINATED)
        self.assertEqual(len(DialogRouter.install(h.ep)), 0)

    def test_bye_timeout_still_ends(self) -> None:
        h = CallHarness()
        h.answered()
        h.sent()
        h.call.hangup(1.0)
        h.advance(1.0 + TIMEOUT + 0.1)
        byes = h.sent_requests("BYE")
        self.assertGreater(len(byes), 1)  # Timer E retransmissions
        self.assertEqual(h.events[-1], Ended(REASON_NORMAL, by_remote=False))

    def test_bye_challenged_is_resent_with_credentials(self) -> None:
        """The proxy Record-Routes, so our BYE goes to it: its challenge is answered."""
        h = CallHarness()
        h.answered(record_route=("<sip:127.0.0.1:5060;lr>",))
        h.sent()
        h.call.hangup(1.0)
        [(bye, target)] = h.sent_requests()
        self.assertEqual(target, PROXY)
        challenge = make_response(bye, 407)
        challenge.headers.add("Proxy-Authenticate", CHALLENGE)
        h.feed(challenge, at=1.1)
        [(bye2, _)] = h.sent_requests("BYE")
        self.assertEqual(bye2.cseq, (3, "BYE"))
        self.assertIn('username="1001"', bye2.headers.get("Proxy-Authorization"))
        self.assertEqual(h.events[-1], Answered(SDP_ANSWER))
        h.feed(make_response(bye2, 200), at=1.2)
        self.assertEqual(h.events[-1], Ended(REASON_NORMAL, by_remote=False))

    def test_bye_challenged_by_the_callee_itself_is_not_answered(self) -> None:
        """No Record-Route: the BYE goes straight to the callee (192.0.2.20), which is not
        the account's proxy.  Its 401 — in the account's own realm even — gets no
        credentials: the BYE is over (the dialog ends for us), nothing else is sent."""
        h = CallHarness()
        first = h.start()
        proxy_challenge = make_response(first, 407, to_tag="proxy1")
        proxy_challenge.headers.add("Proxy-Authenticate", CHALLENGE)
        h.feed(proxy_challenge, at=0.01)  # the proxy's 407 pins realm 127.0.0.1
        [(second, _)] = h.sent_requests("INVITE")
        h.respond(second, 200, sdp=SDP_ANSWER, at=0.2)
        h.sent()
        h.call.hangup(1.0)
        [(bye, target)] = h.sent_requests("BYE")
        self.assertEqual(target, Target("UDP", "192.0.2.20", 5070))
        self.assertIsNone(bye.headers.get("Proxy-Authorization"))
        challenge = make_response(bye, 401)
        challenge.headers.add("WWW-Authenticate", CHALLENGE)
        h.feed(challenge, at=1.1)
        sent = h.sent_requests()
        self.assertEqual([m.method for m, _ in sent], [])
        self.assertEqual(h.events[-1], Ended(REASON_NORMAL, by_remote=False))

    def test_remote_bye(self) -> None:
        h = CallHarness()
        h.answered()
        h.sent()
        bye = h.in_dialog_request("BYE")
        h.feed(bye, at=2.0)
        [ok] = responses(h.sent())
        self.assertEqual(ok.status, 200)
        self.assertEqual(ok.to.tag, h.call.local_tag)
        self.assertEqual(ok.cseq, (1, "BYE"))
        self.assertEqual(h.events[-1], Ended(REASON_NORMAL, by_remote=True))
        self.assertEqual(h.call.state, InviteState.TERMINATED)
        # The dialog is gone: a new BYE (not a retransmission) is 481 now.
        h.feed(h.in_dialog_request("BYE", cseq=2, branch="z9hG4bKpeer2"), at=2.1)
        [gone] = responses(h.sent())
        self.assertEqual(gone.status, 481)
        self.assertEqual(len([e for e in h.events if isinstance(e, Ended)]), 1)

    def test_remote_bye_retransmission_answered_by_transaction(self) -> None:
        h = CallHarness()
        h.answered()
        h.sent()
        bye = h.in_dialog_request("BYE")
        h.feed(bye, at=2.0)
        h.feed(bye, at=2.5)
        self.assertEqual([r.status for r in responses(h.sent())], [200, 200])

    def test_byes_crossing(self) -> None:
        h = CallHarness()
        h.answered()
        h.sent()
        h.call.hangup(1.0)
        [(bye, _)] = h.sent_requests()
        h.feed(h.in_dialog_request("BYE"), at=1.05)
        self.assertEqual([r.status for r in responses(h.sent())], [200])
        h.feed(make_response(bye, 481), at=1.1)
        self.assertEqual(h.events[-1], Ended(REASON_NORMAL, by_remote=False))
        self.assertEqual(len([e for e in h.events if isinstance(e, Ended)]), 1)


class InDialogTests(unittest.TestCase):
    def test_reinvite_offered_and_refused_500_when_left_unanswered(self) -> None:
        # Was "refused 488 by default": re-INVITEs now go to the owner (ReinviteOffered,
        # tests/test_sip_reinvite.py); one it never answers is refused at 32*T1.
        h = CallHarness()
        h.answered()
        h.sent()
        h.feed(h.in_dialog_request("INVITE", body=SDP_ANSWER,
                                   extra=(("Content-Type", "application/sdp"),)), at=1.0)
        self.assertEqual(h.events[-1], ReinviteOffered(SDP_ANSWER))
        self.assertEqual(responses(h.sent()), [])
        h.advance(1.0 + TIMEOUT / 2 - 0.01)
        self.assertEqual([r.status for r in responses(h.sent())], [100])
        h.advance(1.0 + TIMEOUT / 2)
        self.assertEqual([r.status for r in responses(h.sent())], [500])
        self.assertEqual(h.call.state, InviteState.CONFIRMED)

    def test_hook_takes_in_dialog_requests(self) -> None:
        h = CallHarness()
        h.answered()
        h.sent()
        seen: list[Request] = []

        def hook(request: Request, txn: object, now: float) -> bool:
            seen.append(request)
            h.ep.respond(make_response(request, 200), now)
            return True

        h.call.on_request = hook
        h.feed(h.in_dialog_request("INFO", body=b"Signal=1\r\nDuration=100\r\n",
                                   extra=(("Content-Type", "application/dtmf-relay"),)), at=1.0)
        self.assertEqual([r.method for r in seen], ["INFO"])
        self.assertEqual([r.status for r in responses(h.sent())], [200])

    def test_out_of_order_cseq_gets_500(self) -> None:
        h = CallHarness()
        h.answered()
        h.sent()
        h.feed(h.in_dialog_request("INFO", cseq=5, branch="z9hG4bKa"), at=1.0)
        h.feed(h.in_dialog_request("INFO", cseq=4, branch="z9hG4bKb"), at=1.1)
        self.assertEqual([r.status for r in responses(h.sent())], [200, 500])

    def test_unknown_dialog_gets_481(self) -> None:
        h = CallHarness()
        h.answered()
        h.sent()
        for i, method in enumerate(("BYE", "INFO", "INVITE", "OPTIONS", "NOTIFY", "UPDATE")):
            h.feed(h.in_dialog_request(method, from_tag="stranger", branch=f"z9hG4bKu{i}"), at=1.0)
            statuses = [r.status for r in responses(h.sent())]
            self.assertEqual(statuses[-1], 481, method)
        h.feed(h.in_dialog_request("BYE", call_id="other-call", branch="z9hG4bKu9"), at=1.0)
        self.assertEqual([r.status for r in responses(h.sent())], [481])
        self.assertEqual(h.call.state, InviteState.CONFIRMED)

    def test_unknown_dialog_ack_is_absorbed(self) -> None:
        h = CallHarness()
        h.start()
        h.sent()
        h.feed(h.in_dialog_request("ACK", to_tag="gone"), at=1.0)
        self.assertEqual(h.sent(), [])

    def test_request_without_to_tag_is_not_the_routers(self) -> None:
        h = CallHarness()
        h.start()
        h.sent()
        options = h.in_dialog_request("OPTIONS")
        options.headers.set("To", "<sip:1001@127.0.0.1>")
        h.feed(options, at=1.0)
        [ok] = responses(h.sent())
        self.assertEqual(ok.status, 200)  # the endpoint's own OPTIONS answer


class DialogTargetTests(unittest.TestCase):
    def dialog(self, route_set: list[str], target: str = "sip:b@192.0.2.9:5070") -> Dialog:
        return Dialog(call_id="c", local_tag="l", remote_tag="r", local_uri="sip:a@x",
                      remote_uri="sip:b@y", remote_target=target, route_set=route_set)

    def test_remote_target_without_routes(self) -> None:
        self.assertEqual(dialog_target(self.dialog([])), Target("UDP", "192.0.2.9", 5070))

    def test_first_route(self) -> None:
        d = self.dialog(["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"])
        self.assertEqual(dialog_target(d), Target("UDP", "p1.example.com", 5060))

    def test_transport_parameter_and_default(self) -> None:
        d = self.dialog(["<sip:10.0.0.1:5070;transport=tcp;lr>"])
        self.assertEqual(dialog_target(d, "UDP"), Target("TCP", "10.0.0.1", 5070))
        d = self.dialog([], target="sip:b@10.0.0.2")
        self.assertEqual(dialog_target(d, "tcp"), Target("TCP", "10.0.0.2", 5060))

    def test_sips_and_ipv6(self) -> None:
        d = self.dialog([], target="sips:b@[2001:db8::1]")
        self.assertEqual(dialog_target(d), Target("TLS", "2001:db8::1", 5061))

    def test_strict_router_is_the_next_hop_too(self) -> None:
        d = self.dialog(["<sip:10.0.0.3:5080>"])
        self.assertEqual(dialog_target(d), Target("UDP", "10.0.0.3", 5080))
