"""The incoming INVITE session, sans-IO: bytes in, bytes out, explicit now.

Every test drives a real :class:`SipEndpoint` (transaction layer, DialogRouter and the CANCEL
registry included) with requests as a caller would send them, and asserts on the parsed
messages that come out and on the events the listener got.
"""

from __future__ import annotations

from twisted.trial import unittest

from wcsgw.sip.dialog import DialogState
from wcsgw.sip.dialogs import DialogRouter
from wcsgw.sip.endpoint import EndpointConfig, SipEndpoint
from wcsgw.sip.invite import REASON_NORMAL
from wcsgw.sip.message import Request, Response
from wcsgw.sip.parser import parse_message
from wcsgw.sip.responses import make_response
from wcsgw.sip.session import InfoReceived, ReinviteOffered
from wcsgw.sip.target import Target
from wcsgw.sip.transaction import ServerTransaction, TimerConfig
from wcsgw.sip.uas import (
    REASON_ACK_TIMEOUT,
    Cancelled,
    Confirmed,
    Ended,
    Failed,
    IncomingInvite,
    IncomingInvites,
    UasState,
)

T1 = 0.5
T2 = 4.0
TIMEOUT = 64 * T1
CALLER = Target("UDP", "127.0.0.1", 5070)
CALLER_CONTACT = "<sip:alice@127.0.0.1:5070>"
OFFER = (
    b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)
ANSWER = (
    b"v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 50000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)


class Taker:
    """A RequestHandler that takes every new INVITE as an IncomingInvite (like test lines)."""

    def __init__(self, harness: "UasHarness") -> None:
        self.harness = harness

    def handle_request(self, request: Request, transaction: ServerTransaction | None,
                       source: Target, now: float) -> bool:
        if request.method != "INVITE" or request.to.tag:
            return False
        assert transaction is not None
        self.harness.sessions.append(IncomingInvite(
            self.harness.ep, request, transaction, listener=self.harness.events.append))
        return True


class UasHarness:
    """One endpoint taking INVITEs, and helpers to play the caller."""

    def __init__(self) -> None:
        self.ep = SipEndpoint(EndpointConfig(host="127.0.0.1", port=5099, user_agent="wcsgw-test",
                                             timers=TimerConfig(t1=T1, t2=T2)))
        self.ep.handlers.append(Taker(self))
        self.sessions: list[IncomingInvite] = []
        self.events: list[object] = []
        self.now = 0.0
        self.from_tag = "a1"
        self.call_id = "call-1@127.0.0.1"

    @property
    def session(self) -> IncomingInvite:
        [session] = self.sessions
        return session

    def feed(self, msg: Request | Response, at: float | None = None) -> None:
        if at is not None:
            self.now = at
        self.ep.receive_bytes(msg.to_bytes(), CALLER, self.now)

    def sent(self) -> list[tuple[Request | Response, Target]]:
        return [(parse_message(d), t) for d, t in self.ep.take_outgoing()]

    def sent_responses(self) -> list[Response]:
        return [m for m, _ in self.sent() if isinstance(m, Response)]

    def invite(self, body: bytes | None = OFFER, *, branch: str = "z9hG4bKinv1",
               record_route: tuple[str, ...] = (), user: str = "echo") -> Request:
        headers = [
            ("Via", f"SIP/2.0/UDP 127.0.0.1:5070;branch={branch};rport"),
            *[("Record-Route", rr) for rr in record_route],
            ("Max-Forwards", "70"),
            ("From", f"<sip:alice@127.0.0.1>;tag={self.from_tag}"),
            ("To", f"<sip:{user}@127.0.0.1:5099>"),
            ("Call-ID", self.call_id),
            ("CSeq", "7 INVITE"),
            ("Contact", CALLER_CONTACT),
        ]
        if body is not None:
            headers.append(("Content-Type", "application/sdp"))
        return Request("INVITE", f"sip:{user}@127.0.0.1:5099", headers, body or b"")

    def receive_invite(self, **kwargs: object) -> Request:
        invite = self.invite(**kwargs)  # type: ignore[arg-type]
        self.feed(invite)
        return invite

    def in_dialog(self, method: str, *, cseq: int, branch: str, body: bytes = b"",
                  to_tag: str | None = None) -> Request:
        headers = [
            ("Via", f"SIP/2.0/UDP 127.0.0.1:5070;branch={branch}"),
            ("Max-Forwards", "70"),
            ("From", f"<sip:alice@127.0.0.1>;tag={self.from_tag}"),
            ("To", f"<sip:echo@127.0.0.1:5099>;tag={to_tag or self.session.local_tag}"),
            ("Call-ID", self.call_id),
            ("CSeq", f"{cseq} {method}"),
        ]
        if method == "INVITE":
            headers.append(("Contact", CALLER_CONTACT))
        if body:
            headers.append(("Content-Type", "application/sdp"))
        return Request(method, "sip:echo@127.0.0.1:5099", headers, body)

    def ack(self, body: bytes = b"") -> Request:
        return self.in_dialog("ACK", cseq=7, branch="z9hG4bKack1", body=body)

    def cancel(self, invite: Request) -> Request:
        headers = [
            ("Via", invite.headers.get("Via") or ""),
            ("Max-Forwards", "70"),
            ("From", invite.headers.get("From") or ""),
            ("To", invite.headers.get("To") or ""),
            ("Call-ID", invite.call_id),
            ("CSeq", "7 CANCEL"),
        ]
        return Request("CANCEL", invite.uri, headers)

    def advance(self, until: float) -> list[tuple[float, Request | Response]]:
        """Fire every endpoint deadline up to ``until``; what went out, with when."""
        out: list[tuple[float, Request | Response]] = [(self.now, m) for m, _ in self.sent()]
        while True:
            deadline = self.ep.next_deadline()
            if deadline is None or deadline > until:
                break
            self.now = max(self.now, deadline)
            self.ep.handle_timer(self.now)
            out += [(self.now, m) for m, _ in self.sent()]
        self.now = until
        return out

    def answered(self, **kwargs: object) -> tuple[Request, Response]:
        invite = self.receive_invite(**kwargs)
        self.session.answer(ANSWER, self.now)
        [ok] = self.sent_responses()
        return invite, ok


def statuses(responses: list[Response]) -> list[int]:
    return [r.status for r in responses]


class RingAndAnswerTests(unittest.TestCase):
    def test_session_built_from_invite(self) -> None:
        h = UasHarness()
        h.receive_invite()
        s = h.session
        self.assertEqual(s.state, UasState.RECEIVED)
        self.assertEqual(s.offer_sdp, OFFER)
        self.assertEqual(s.contact, "sip:echo@127.0.0.1:5099")
        self.assertEqual(s.call_id, h.call_id)
        self.assertIn(s, h.ep.timed_users)
        self.assertIn(s, IncomingInvites.install(h.ep))
        self.assertEqual(h.events, [])

    def test_registry_and_router_installed_once_and_first(self) -> None:
        h = UasHarness()
        h.receive_invite()
        h.from_tag, h.call_id = "a2", "call-2"
        h.receive_invite(branch="z9hG4bKinv2")
        self.assertEqual(len(h.sessions), 2)
        kinds = [type(handler) for handler in h.ep.handlers]
        self.assertEqual(kinds.count(IncomingInvites), 1)
        self.assertEqual(kinds.count(DialogRouter), 1)
        self.assertEqual(kinds[-1], Taker)
        self.assertEqual(len(IncomingInvites.install(h.ep)), 2)

    def test_invite_without_from_tag_or_contact_refused(self) -> None:
        h = UasHarness()
        invite = h.invite()
        invite.headers.set("From", "<sip:alice@127.0.0.1>")
        txn = object.__new__(ServerTransaction)
        with self.assertRaisesRegex(ValueError, "From tag"):
            IncomingInvite(h.ep, invite, txn, listener=h.events.append)
        invite = h.invite()
        invite.headers.remove("Contact")
        with self.assertRaisesRegex(ValueError, "Contact"):
            IncomingInvite(h.ep, invite, txn, listener=h.events.append)
        self.assertEqual(h.ep.timed_users, [])

    def test_ring_180_then_183_with_sdp(self) -> None:
        h = UasHarness()
        h.receive_invite(record_route=("<sip:p1.example.com;lr>",))
        h.session.ring(h.now)
        h.session.ring(h.now, sdp=ANSWER)
        r180, r183 = h.sent_responses()
        self.assertEqual((r180.status, r183.status), (180, 183))
        self.assertEqual(r180.to.tag, h.session.local_tag)
        self.assertEqual(r183.to.tag, h.session.local_tag)
        self.assertEqual(r180.body, b"")
        self.assertEqual(r183.body, ANSWER)
        self.assertEqual(r183.headers.get("Content-Type"), "application/sdp")
        for r in (r180, r183):
            self.assertEqual(r.headers.get("Contact"), "<sip:echo@127.0.0.1:5099>")
            self.assertEqual(r.headers.get_all("Record-Route"), ["<sip:p1.example.com;lr>"])
        dialog = h.session.dialog
        assert dialog is not None
        self.assertEqual(dialog.state, DialogState.EARLY)
        self.assertIn(dialog.dialog_id, DialogRouter.install(h.ep))

    def test_invite_retransmission_while_ringing_resends_last_provisional(self) -> None:
        h = UasHarness()
        invite = h.receive_invite()
        h.session.ring(h.now)
        [first] = h.sent_responses()
        h.feed(invite, at=0.5)  # the caller's Timer A
        [again] = h.sent_responses()
        self.assertEqual(again.status, 180)
        self.assertEqual(again.to.tag, first.to.tag)
        self.assertEqual(len(h.sessions), 1)  # absorbed by the transaction, no second session

    def test_100_trying_from_the_transaction_when_we_are_slow(self) -> None:
        h = UasHarness()
        h.receive_invite()
        out = h.advance(0.3)
        self.assertEqual([m.status for _, m in out if isinstance(m, Response)], [100])

    def test_answer_builds_200_and_dialog(self) -> None:
        h = UasHarness()
        invite, ok = h.answered(record_route=("<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"))
        s = h.session
        self.assertEqual(ok.status, 200)
        self.assertEqual(ok.to.tag, s.local_tag)
        self.assertEqual(ok.body, ANSWER)
        self.assertEqual(ok.headers.get("Content-Type"), "application/sdp")
        self.assertEqual(ok.headers.get("Contact"), "<sip:echo@127.0.0.1:5099>")
        self.assertEqual(ok.headers.get_all("Record-Route"),
                         ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"])
        allow = [m.strip() for v in ok.headers.get_all("Allow") for m in v.split(",")]
        for method in ("INVITE", "ACK", "CANCEL", "BYE"):
            self.assertIn(method, allow)
        self.assertEqual(ok.cseq, (7, "INVITE"))
        self.assertEqual(s.state, UasState.ANSWERED)
        self.assertEqual(s.final_status, 200)
        dialog = s.dialog
        assert dialog is not None
        self.assertEqual(dialog.state, DialogState.CONFIRMED)
        self.assertEqual(dialog.dialog_id, (h.call_id, s.local_tag, "a1"))
        self.assertIn(dialog.dialog_id, DialogRouter.install(h.ep))
        self.assertEqual(h.events, [])

    def test_answer_after_ring_keeps_the_tag_and_dialog(self) -> None:
        h = UasHarness()
        h.receive_invite()
        h.session.ring(h.now)
        early = h.session.dialog
        h.session.answer(ANSWER, 0.1)
        r180, ok = h.sent_responses()
        self.assertEqual(ok.to.tag, r180.to.tag)
        self.assertIs(h.session.dialog, early)
        assert early is not None
        self.assertEqual(early.state, DialogState.CONFIRMED)

    def test_actions_in_wrong_state_refused(self) -> None:
        h = UasHarness()
        h.answered()
        with self.assertRaises(RuntimeError):
            h.session.answer(ANSWER, h.now)
        with self.assertRaises(RuntimeError):
            h.session.ring(h.now)
        with self.assertRaises(RuntimeError):
            h.session.reject(486, None, h.now)
        fresh = UasHarness()
        fresh.receive_invite()
        with self.assertRaises(ValueError):
            fresh.session.reject(200, None, fresh.now)
        self.assertEqual(fresh.session.state, UasState.RECEIVED)


class RetransmissionTests(unittest.TestCase):
    def test_2xx_retransmitted_t1_doubling_capped_at_t2_until_ack(self) -> None:
        h = UasHarness()
        _invite, ok = h.answered()
        out = h.advance(20.0)
        times = [t for t, m in out if isinstance(m, Response) and m.status == 200]
        # T1 doubling: 0.5, 1.5, 3.5, 7.5, then capped at T2 = 4 s: 11.5, 15.5, 19.5
        self.assertEqual(times, [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5])
        for _, m in out:
            self.assertEqual(m.to_bytes(), ok.to_bytes())  # the same 200, byte for byte
        h.feed(h.ack(), at=20.2)
        self.assertEqual(h.events, [Confirmed(None)])
        self.assertEqual(h.session.state, UasState.CONFIRMED)
        self.assertEqual(h.advance(60.0), [])  # nothing more: no retransmission, no BYE
        self.assertIsNone(h.session.next_deadline())

    def test_ack_stops_retransmissions_immediately(self) -> None:
        h = UasHarness()
        h.answered()
        h.feed(h.ack(), at=0.2)
        self.assertEqual(h.advance(40.0), [])
        self.assertEqual(h.events, [Confirmed(None)])

    def test_ack_timeout_sends_bye_and_fails(self) -> None:
        h = UasHarness()
        h.answered(record_route=("<sip:p1.example.com;lr>",))
        out = h.advance(TIMEOUT + 0.01)
        oks = [t for t, m in out if isinstance(m, Response) and m.status == 200]
        self.assertEqual(oks, [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5])
        byes = [(t, m) for t, m in out if isinstance(m, Request) and m.method == "BYE"]
        self.assertEqual(len(byes), 1)
        when, bye = byes[0]
        self.assertAlmostEqual(when, TIMEOUT)
        self.assertEqual(bye.headers.get_all("Route"), ["<sip:p1.example.com;lr>"])
        self.assertEqual(h.events, [Failed(None, REASON_ACK_TIMEOUT)])
        self.assertTrue(h.session.terminated)
        self.assertNotIn(h.session, h.ep.timed_users)
        self.assertEqual(len(DialogRouter.install(h.ep)), 0)

    def test_late_ack_after_timeout_is_absorbed(self) -> None:
        h = UasHarness()
        h.answered()
        h.advance(TIMEOUT + 0.01)
        h.sent()
        h.feed(h.ack(), at=TIMEOUT + 1)
        self.assertEqual(h.sent(), [])
        self.assertEqual(h.events, [Failed(None, REASON_ACK_TIMEOUT)])

    def test_ack_of_another_cseq_is_not_ours(self) -> None:
        h = UasHarness()
        h.answered()
        ack = h.in_dialog("ACK", cseq=8, branch="z9hG4bKack9")
        h.feed(ack, at=0.2)
        self.assertEqual(h.events, [])
        self.assertEqual(h.session.state, UasState.ANSWERED)


class LateOfferTests(unittest.TestCase):
    def test_200_carries_our_offer_and_the_ack_the_answer(self) -> None:
        h = UasHarness()
        h.receive_invite(body=None)
        self.assertIsNone(h.session.offer_sdp)
        h.session.answer(OFFER, h.now)  # our offer
        [ok] = h.sent_responses()
        self.assertEqual(ok.body, OFFER)
        h.feed(h.ack(body=ANSWER), at=0.1)
        self.assertEqual(h.events, [Confirmed(ANSWER)])

    def test_early_offer_ack_sdp_is_none(self) -> None:
        h = UasHarness()
        h.answered()
        h.feed(h.ack(), at=0.1)
        [event] = h.events
        assert isinstance(event, Confirmed)
        self.assertIsNone(event.ack_sdp)


class CancelTests(unittest.TestCase):
    def test_cancel_before_answer(self) -> None:
        h = UasHarness()
        invite = h.receive_invite()
        h.session.ring(h.now)
        h.sent()
        h.feed(h.cancel(invite), at=1.0)
        out = h.sent_responses()
        self.assertEqual([(r.status, r.cseq[1]) for r in out], [(200, "CANCEL"), (487, "INVITE")])
        r487 = out[1]
        self.assertEqual(r487.to.tag, h.session.local_tag)  # the same tag as the 180
        self.assertEqual(h.events, [Cancelled()])
        self.assertTrue(h.session.terminated)
        self.assertEqual(h.session.final_status, 487)
        self.assertEqual(len(IncomingInvites.install(h.ep)), 0)
        self.assertEqual(len(DialogRouter.install(h.ep)), 0)
        self.assertNotIn(h.session, h.ep.timed_users)

    def test_cancel_before_any_provisional(self) -> None:
        h = UasHarness()
        invite = h.receive_invite()
        h.feed(h.cancel(invite), at=0.05)
        self.assertEqual(statuses(h.sent_responses()), [200, 487])
        self.assertEqual(h.events, [Cancelled()])

    def test_487_is_retransmitted_and_its_ack_absorbed(self) -> None:
        h = UasHarness()
        invite = h.receive_invite()
        h.feed(h.cancel(invite), at=0.05)
        h.sent()
        out = h.advance(0.6)
        self.assertEqual([m.status for _, m in out if isinstance(m, Response)], [487])  # Timer G
        ack = Request("ACK", invite.uri, [
            ("Via", invite.headers.get("Via") or ""),
            ("From", invite.headers.get("From") or ""),
            ("To", f"<sip:echo@127.0.0.1:5099>;tag={h.session.local_tag}"),
            ("Call-ID", h.call_id), ("CSeq", "7 ACK"), ("Max-Forwards", "70"),
        ])
        h.feed(ack, at=0.7)
        self.assertEqual(h.advance(10.0), [])  # no more 487s
        self.assertEqual(h.events, [Cancelled()])

    def test_cancel_after_answer_has_no_effect(self) -> None:
        h = UasHarness()
        invite, _ok = h.answered()
        h.feed(h.cancel(invite), at=0.1)
        out = h.sent_responses()
        self.assertEqual([(r.status, r.cseq[1]) for r in out], [(200, "CANCEL")])
        self.assertEqual(h.events, [])
        h.feed(h.ack(), at=0.2)
        self.assertEqual(h.events, [Confirmed(None)])

    def test_cancel_of_unknown_invite_is_481(self) -> None:
        h = UasHarness()
        invite = h.invite(branch="z9hG4bKnever")
        h.feed(h.cancel(invite))
        self.assertEqual(statuses(h.sent_responses()), [481])

    def test_bye_on_early_dialog_is_a_cancel(self) -> None:
        h = UasHarness()
        h.receive_invite()
        h.session.ring(h.now)
        h.sent()
        h.feed(h.in_dialog("BYE", cseq=8, branch="z9hG4bKbye1"), at=1.0)
        out = h.sent_responses()
        self.assertEqual([(r.status, r.cseq[1]) for r in out], [(200, "BYE"), (487, "INVITE")])
        self.assertEqual(h.events, [Cancelled()])


class RejectTests(unittest.TestCase):
    def test_reject_with_to_tag(self) -> None:
        for status, reason, text in [(486, None, "486 Busy Here"), (480, "Gone Fishing", "480 Gone Fishing"),
                                     (488, None, "488 Not Acceptable Here"), (404, None, "404 Not Found")]:
            h = UasHarness()
            h.receive_invite()
            h.session.reject(status, reason, h.now, headers=[("Retry-After", "60")])
            [r] = h.sent_responses()
            self.assertEqual(r.status, status)
            self.assertEqual(f"{r.status} {r.reason}", text)
            self.assertEqual(r.to.tag, h.session.local_tag)
            self.assertTrue(r.to.tag)
            self.assertIsNone(r.headers.get("Contact"))
            self.assertEqual(r.headers.get("Retry-After"), "60")
            self.assertEqual(h.events, [Failed(status, text)])
            self.assertTrue(h.session.terminated)
            self.assertEqual(len(IncomingInvites.install(h.ep)), 0)
            self.assertEqual(h.ep.timed_users, [])

    def test_reject_after_ring_uses_the_same_tag_and_drops_the_early_dialog(self) -> None:
        h = UasHarness()
        h.receive_invite()
        h.session.ring(h.now)
        h.session.reject(603, None, h.now)
        r180, r603 = h.sent_responses()
        self.assertEqual(r603.to.tag, r180.to.tag)
        self.assertEqual(len(DialogRouter.install(h.ep)), 0)

    def test_hangup_before_answer_declines(self) -> None:
        h = UasHarness()
        h.receive_invite()
        h.session.hangup(h.now)
        [r] = h.sent_responses()
        self.assertEqual(r.status, 603)
        self.assertEqual(h.events, [Ended(REASON_NORMAL, by_remote=False)])


class ByeTests(unittest.TestCase):
    def confirmed(self, **kwargs: object) -> UasHarness:
        h = UasHarness()
        h.answered(**kwargs)
        h.feed(h.ack(), at=0.1)
        h.sent()
        self.assertEqual(h.events, [Confirmed(None)])
        return h

    def test_remote_bye(self) -> None:
        h = self.confirmed()
        h.feed(h.in_dialog("BYE", cseq=8, branch="z9hG4bKbye1"), at=5.0)
        [r] = h.sent_responses()
        self.assertEqual((r.status, r.cseq), (200, (8, "BYE")))
        self.assertEqual(h.events[1:], [Ended(REASON_NORMAL, by_remote=True)])
        self.assertTrue(h.session.terminated)
        self.assertEqual(len(DialogRouter.install(h.ep)), 0)
        # a retransmitted BYE is answered by its transaction, nothing reaches the session
        h.feed(h.in_dialog("BYE", cseq=8, branch="z9hG4bKbye1"), at=5.5)
        self.assertEqual(statuses(h.sent_responses()), [200])
        self.assertEqual(len(h.events), 2)

    def test_remote_bye_before_ack(self) -> None:
        h = UasHarness()
        h.answered()
        h.feed(h.in_dialog("BYE", cseq=8, branch="z9hG4bKbye1"), at=0.2)
        self.assertEqual(statuses(h.sent_responses()), [200])
        self.assertEqual(h.events, [Ended(REASON_NORMAL, by_remote=True)])
        self.assertEqual(h.advance(40.0), [])  # no 2xx retransmissions after that

    def test_our_hangup_sends_bye_with_route_set_and_cseq(self) -> None:
        h = self.confirmed(record_route=("<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"))
        h.session.hangup(6.0)
        [(bye, target)] = h.sent()
        assert isinstance(bye, Request)
        self.assertEqual(bye.method, "BYE")
        self.assertEqual(bye.uri, "sip:alice@127.0.0.1:5070")  # the caller's Contact
        self.assertEqual(bye.headers.get_all("Route"),
                         ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"])
        self.assertEqual(target, Target("UDP", "p1.example.com", 5060))
        self.assertEqual(bye.cseq, (1, "BYE"))  # our first request in the dialog
        self.assertEqual(bye.from_.tag, h.session.local_tag)
        self.assertEqual(str(bye.from_.uri), "sip:echo@127.0.0.1:5099")
        self.assertEqual(bye.to.tag, "a1")
        self.assertEqual(bye.call_id, h.call_id)
        self.assertEqual(h.session.state, UasState.TERMINATING)
        self.assertEqual(len(h.events), 1)  # Ended waits for the BYE's answer
        h.feed(make_response(bye, 200), at=6.1)
        self.assertEqual(h.events[1:], [Ended(REASON_NORMAL, by_remote=False)])
        self.assertTrue(h.session.terminated)
        self.assertEqual(len(DialogRouter.install(h.ep)), 0)

    def test_our_bye_timing_out_still_ends(self) -> None:
        h = self.confirmed()
        h.session.hangup(6.0)
        h.advance(6.0 + TIMEOUT + 1)
        self.assertEqual(h.events[1:], [Ended(REASON_NORMAL, by_remote=False)])

    def test_hangup_before_ack_waits_for_it(self) -> None:
        h = UasHarness()
        h.answered()
        h.session.hangup(0.1)
        self.assertEqual(h.sent(), [])  # §15: no BYE before the ACK
        h.feed(h.ack(), at=0.3)
        [(bye, _)] = h.sent()
        assert isinstance(bye, Request)
        self.assertEqual(bye.method, "BYE")
        self.assertEqual(h.events, [])  # no Confirmed for a call we already hung up
        h.feed(make_response(bye, 200), at=0.4)
        self.assertEqual(h.events, [Ended(REASON_NORMAL, by_remote=False)])

    def test_hangup_before_ack_that_never_comes(self) -> None:
        h = UasHarness()
        h.answered()
        h.session.hangup(0.1)
        out = h.advance(TIMEOUT + 0.01)
        [(when, bye)] = [(t, m) for t, m in out if isinstance(m, Request)]
        assert isinstance(bye, Request)
        self.assertEqual(bye.method, "BYE")
        self.assertAlmostEqual(when, TIMEOUT)
        h.feed(make_response(bye, 200), at=TIMEOUT + 0.1)
        self.assertEqual(h.events, [Ended(REASON_NORMAL, by_remote=False)])

    def test_crossed_byes(self) -> None:
        h = self.confirmed()
        h.session.hangup(6.0)
        [(bye, _)] = h.sent()
        h.feed(h.in_dialog("BYE", cseq=8, branch="z9hG4bKbye1"), at=6.01)
        # the dialog stays routed until our BYE settles: the peer's BYE gets its 200
        self.assertEqual(statuses(h.sent_responses()), [200])
        self.assertEqual(len(h.events), 1)
        assert isinstance(bye, Request)
        h.feed(make_response(bye, 200), at=6.1)
        self.assertEqual(h.events[1:], [Ended(REASON_NORMAL, by_remote=False)])

    def test_hangup_twice_sends_one_bye(self) -> None:
        h = self.confirmed()
        h.session.hangup(6.0)
        h.session.hangup(6.1)
        self.assertEqual(len([m for m, _ in h.sent() if isinstance(m, Request)]), 1)


class InDialogTests(unittest.TestCase):
    def confirmed(self) -> UasHarness:
        h = UasHarness()
        h.answered()
        h.feed(h.ack(), at=0.1)
        h.sent()
        return h

    def test_reinvite_offered_info_200_options_200_bad_refer_400_update_200(self) -> None:
        # Was "re-INVITE 488, REFER 501": both now go to the owner once the call is up
        # (tests/test_sip_reinvite.py, tests/test_sip_refer.py); a REFER without Refer-To is
        # malformed (RFC 3515 §2.4.1: exactly one); an UPDATE without a body refreshes the
        # dialog and its session timer (RFC 3311, RFC 4028: tests/test_sip_session_timer.py).
        h = self.confirmed()
        h.feed(h.in_dialog("INVITE", cseq=8, branch="z9hG4bKre1", body=OFFER), at=1.0)
        h.feed(h.in_dialog("INFO", cseq=9, branch="z9hG4bKinfo1"), at=1.1)
        h.feed(h.in_dialog("OPTIONS", cseq=10, branch="z9hG4bKopt1"), at=1.2)
        h.feed(h.in_dialog("REFER", cseq=11, branch="z9hG4bKref1"), at=1.3)
        h.feed(h.in_dialog("UPDATE", cseq=12, branch="z9hG4bKupd1"), at=1.4)
        out = h.sent_responses()
        self.assertEqual([(r.status, r.cseq[1]) for r in out],
                         [(200, "INFO"), (200, "OPTIONS"), (400, "REFER"), (200, "UPDATE")])
        self.assertEqual(h.session.state, UasState.CONFIRMED)
        self.assertEqual(h.events, [Confirmed(None), ReinviteOffered(OFFER), InfoReceived("", b"")])

    def test_reinvite_before_the_ack_488(self) -> None:
        h = UasHarness()
        h.answered()
        h.feed(h.in_dialog("INVITE", cseq=8, branch="z9hG4bKre1", body=OFFER), at=0.1)
        self.assertEqual(statuses(h.sent_responses()), [488])
        self.assertEqual(h.session.state, UasState.ANSWERED)

    def test_on_request_hook(self) -> None:
        h = self.confirmed()
        seen: list[str] = []

        def hook(request: Request, txn: ServerTransaction | None, now: float) -> bool:
            seen.append(request.method)
            h.ep.respond(make_response(request, 200), now)
            return True

        h.session.on_request = hook
        h.feed(h.in_dialog("INVITE", cseq=8, branch="z9hG4bKre1", body=OFFER), at=1.0)
        self.assertEqual(seen, ["INVITE"])
        self.assertEqual(statuses(h.sent_responses()), [200])

    def test_out_of_order_cseq_500(self) -> None:
        h = self.confirmed()
        h.feed(h.in_dialog("INFO", cseq=3, branch="z9hG4bKold"), at=1.0)
        self.assertEqual(statuses(h.sent_responses()), [500])

    def test_request_for_unknown_dialog_481(self) -> None:
        h = self.confirmed()
        h.feed(h.in_dialog("BYE", cseq=8, branch="z9hG4bKbye1", to_tag="nope"), at=1.0)
        self.assertEqual(statuses(h.sent_responses()), [481])
        self.assertEqual(h.session.state, UasState.CONFIRMED)
