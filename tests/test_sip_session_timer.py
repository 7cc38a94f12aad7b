"""Session timers (RFC 4028) and the peer's UPDATE (RFC 3311), sans-IO: the negotiation table
as pure functions, then the usage on both INVITE sessions through a real SipEndpoint, with an
explicit clock (the harness of test_sip_reinvite fires the endpoint's Deadline heap)."""

from __future__ import annotations

from typing import Callable

from twisted.trial import unittest

from tests.test_sip_invite import CALLEE_CONTACT, SDP_ANSWER, CallHarness
from tests.test_sip_reinvite import HOLD, MOVED, SIDES, Side, uac, uas
from tests.test_sip_uas import UasHarness
from wcsgw.sip.invite import Ended, Failed
from wcsgw.sip.message import Request, Response
from wcsgw.sip.responses import make_response
from wcsgw.sip.session import REASON_TIMEOUT, ReinviteOffered
from wcsgw.sip.usage.sessiontimer import (
    SessionTimer,
    TimerAgreement,
    TimerPolicy,
    expiry_margin,
    parse_session_expires,
    retry_after_422,
    uac_negotiate,
    uac_request_headers,
    uas_negotiate,
    uas_response_headers,
)


def invite(*headers: tuple[str, str]) -> Request:
    base = [("Via", "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1"), ("From", "<sip:a@x>;tag=1"),
            ("To", "<sip:b@y>"), ("Call-ID", "c1"), ("CSeq", "1 INVITE"),
            ("Contact", "<sip:a@192.0.2.1>")]
    return Request("INVITE", "sip:b@y", [*base, *headers])


def ok(*headers: tuple[str, str]) -> Response:
    return make_response(invite(), 200, headers=list(headers))


class NegotiationTests(unittest.TestCase):
    """RFC 4028 §9 Table 2 (UAS), §7.2 (UAC), §7.1 (422)."""

    def test_uas_refresher_table(self) -> None:
        supported = ("Supported", "timer")
        rows = [
            # caller's headers, our session_expires, expected (interval, we refresh)
            ((), 0, None),
            ((), 1800, (1800, True)),  # the caller knows no timers: we refresh
            ((supported,), 1800, (1800, False)),  # it asked nothing but can refresh
            ((supported, ("Session-Expires", "1200")), 1800, (1200, False)),
            ((supported, ("Session-Expires", "1200;refresher=uas")), 1800, (1200, True)),
            ((supported, ("Session-Expires", "1200;refresher=uac")), 0, (1200, False)),
            ((("Session-Expires", "3600"),), 1800, (1800, True)),  # we shorten it
            ((supported, ("Session-Expires", "100"), ("Min-SE", "100")), 1800, (100, False)),
        ]
        for headers, ours, expected in rows:
            got = uas_negotiate(invite(*headers), ours, 90)
            if expected is None:
                self.assertIsNone(got, headers)
            else:
                self.assertEqual(got, TimerAgreement(*expected), headers)

    def test_uas_422_below_our_min_se(self) -> None:
        got = uas_negotiate(invite(("Session-Expires", "60")), 1800, 90)
        assert isinstance(got, Response)
        self.assertEqual(got.status, 422)
        self.assertEqual(got.headers.get("Min-SE"), "90")

    def test_uac(self) -> None:
        self.assertEqual(uac_request_headers(1800, 90),
                         [("Supported", "timer"), ("Session-Expires", "1800"),
                          ("Min-SE", "90")])
        self.assertEqual(uac_request_headers(0, 90), [])
        self.assertIsNone(uac_negotiate(ok()))
        self.assertEqual(uac_negotiate(ok(("Session-Expires", "900;refresher=uac"))),
                         TimerAgreement(900, True))
        self.assertEqual(uac_negotiate(ok(("Session-Expires", "900;refresher=uas"))),
                         TimerAgreement(900, False))

    def test_422_retry_with_the_new_min_se(self) -> None:
        response = make_response(invite(), 422, headers=[("Min-SE", "300")])
        self.assertEqual(retry_after_422(response, 90), 300)
        self.assertIsNone(retry_after_422(response, 300))  # no loop
        self.assertIsNone(retry_after_422(ok(("Min-SE", "300")), 90))

    def test_response_headers_require_timer_only_when_supported(self) -> None:
        agreement = TimerAgreement(1800, True)
        self.assertEqual(uas_response_headers(agreement, invite()),
                         [("Session-Expires", "1800;refresher=uas")])
        self.assertEqual(uas_response_headers(agreement, invite(("Supported", "timer"))),
                         [("Session-Expires", "1800;refresher=uas"), ("Require", "timer")])

    def test_parse_and_margin(self) -> None:
        self.assertEqual(parse_session_expires("1800 ; Refresher = UAS"), (1800, "uas"))
        self.assertIsNone(parse_session_expires("soon"))
        self.assertEqual(expiry_margin(90), 30)
        self.assertEqual(expiry_margin(1800), 32)


def with_timer(side: Side, interval: int, we_refresh: bool) -> SessionTimer:
    timer = SessionTimer(side.session, TimerAgreement(interval, we_refresh), side.now)
    side.session.usages.session_timer = timer
    return timer


class TimerTests:
    """The usage on a session that is up; run for each side by the subclasses."""

    side: str
    assertEqual: Callable[..., None]
    assertIn: Callable[..., None]
    assertIsNone: Callable[..., None]

    def make(self) -> Side:
        return SIDES[self.side]()

    def test_refresh_at_half_the_interval_then_again(self) -> None:
        s = self.make()
        start = s.now
        with_timer(s, 120, True)
        self.assertEqual([m for _, m in s.advance(start + 59.9)], [])
        [(at, update)] = s.advance(start + 60)
        assert isinstance(update, Request)
        self.assertEqual((at, update.method), (start + 60, "UPDATE"))
        self.assertEqual(update.headers.get("Session-Expires"), "120;refresher=uac")
        self.assertEqual(update.body, b"")
        s.reply(update, 200, extra=(("Session-Expires", "120;refresher=uac"),))
        self.assertEqual([m.method for _, m in s.advance(start + 119.9)
                          if isinstance(m, Request)], [])
        [(at, again)] = s.advance(start + 120)
        assert isinstance(again, Request)
        self.assertEqual(again.method, "UPDATE")
        self.assertEqual(s.events, [])

    def test_no_refresh_from_the_peer_ends_the_call_with_bye(self) -> None:
        s = self.make()
        start = s.now
        with_timer(s, 90, False)
        self.assertEqual(s.advance(start + 59.9), [])
        sent = s.advance(start + 60)  # 90 - min(32, 90/3)
        self.assertEqual([m.method for _, m in sent if isinstance(m, Request)], ["BYE"])
        self.assertEqual(s.events, [Ended(REASON_TIMEOUT, by_remote=True)])

    def test_peer_update_refreshes_and_is_answered_with_the_interval(self) -> None:
        s = self.make()
        start = s.now
        with_timer(s, 90, False)
        s.feed(s.peer_request("UPDATE", extra=(("Session-Expires", "90;refresher=uac"),
                                               ("Supported", "timer"))), at=start + 50)
        [response] = s.responses()
        self.assertEqual(response.status, 200)
        self.assertEqual(response.headers.get("Session-Expires"), "90;refresher=uac")
        self.assertEqual(response.headers.get("Require"), "timer")
        self.assertIn("<sip:", response.headers.get("Contact") or "")
        self.assertEqual(s.advance(start + 109.9), [])
        sent = s.advance(start + 110)
        self.assertEqual([m.method for _, m in sent if isinstance(m, Request)], ["BYE"])

    def test_refresh_answered_481_ends_the_call(self) -> None:
        s = self.make()
        with_timer(s, 120, True)
        [(_, update)] = s.advance(s.now + 60)
        assert isinstance(update, Request)
        s.reply(update, 481)
        self.assertEqual(s.requests("BYE") != [], True)
        self.assertEqual(s.events, [Ended(REASON_TIMEOUT, by_remote=True)])

    def test_refresh_refused_405_stops_the_timer_and_keeps_the_call(self) -> None:
        s = self.make()
        timer = with_timer(s, 120, True)
        [(_, update)] = s.advance(s.now + 60)
        assert isinstance(update, Request)
        s.reply(update, 405)
        self.assertIsNone(timer.deadline())
        self.assertEqual(s.advance(s.now + 600), [])
        self.assertEqual(s.events, [])

    def test_refresh_422_is_sent_again_with_the_new_min_se(self) -> None:
        s = self.make()
        with_timer(s, 120, True)
        [(_, update)] = s.advance(s.now + 60)
        assert isinstance(update, Request)
        s.reply(update, 422, extra=(("Min-SE", "300"),))
        [again] = s.requests("UPDATE")
        self.assertEqual(again.headers.get("Session-Expires"), "300;refresher=uac")
        self.assertEqual(again.cseq[0], update.cseq[0] + 1)

    def test_hangup_stops_the_timer(self) -> None:
        s = self.make()
        timer = with_timer(s, 120, True)
        s.session.hangup(s.now)
        self.assertIsNone(timer.deadline())


class UacTimerTests(TimerTests, unittest.TestCase):
    side = "uac"


class UasTimerTests(TimerTests, unittest.TestCase):
    side = "uas"


class UpdateTests(unittest.TestCase):
    """RFC 3311 §5.2: an offer in UPDATE obeys one offer/answer at a time."""

    def test_offer_while_ours_is_in_flight_491(self) -> None:
        s = uac()
        s.session.reinvite(HOLD, s.now)
        s.requests("INVITE")
        s.feed(s.peer_request("UPDATE", body=HOLD))
        self.assertEqual([r.status for r in s.responses()], [491])

    def test_offer_while_the_peers_reinvite_is_unanswered_500_retry_after(self) -> None:
        s = uas()
        s.feed(s.peer_request("INVITE", body=HOLD))
        self.assertIsInstance(s.events[-1], ReinviteOffered)
        s.sent()
        s.feed(s.peer_request("UPDATE", body=HOLD))
        [response] = [r for r in s.responses() if r.cseq[1] == "UPDATE"]
        self.assertEqual(response.status, 500)
        self.assertIn(int(response.headers.get("Retry-After") or -1), range(0, 11))

    def test_without_body_200_and_the_target_refreshed(self) -> None:
        s = uas()
        s.feed(s.peer_request("UPDATE", contact="<sip:alice@192.0.2.9:5070>"))
        self.assertEqual([r.status for r in s.responses()], [200])
        self.assertEqual(s.remote_target, "sip:alice@192.0.2.9:5070")
        self.assertEqual(s.events, [])

    def test_offer_goes_to_the_call_and_is_answered_without_ack(self) -> None:
        for make in (uac, uas):
            s = make()
            s.feed(s.peer_request("UPDATE", body=HOLD))
            [offered] = s.events
            assert isinstance(offered, ReinviteOffered)
            self.assertEqual(offered.sdp, HOLD)
            self.assertEqual(s.responses(), [])
            self.assertTrue(s.session.reinvite_in_progress)
            s.session.answer_reinvite(MOVED, s.now)
            [ok] = s.responses()
            self.assertEqual((ok.status, ok.cseq[1], ok.body), (200, "UPDATE", MOVED))
            self.assertFalse(s.session.reinvite_in_progress)  # no ACK awaited
            s.session.reinvite(HOLD, s.now)  # so our own offer may go now
            self.assertEqual(len(s.requests("INVITE")), 1)

    def test_offer_rejected_by_the_call(self) -> None:
        s = uas()
        s.feed(s.peer_request("UPDATE", body=HOLD))
        s.session.reject_reinvite(488, s.now)
        self.assertEqual([r.status for r in s.responses()], [488])
        self.assertFalse(s.session.reinvite_in_progress)

    def test_reinvite_while_an_update_offer_is_unanswered_500(self) -> None:
        s = uas()
        s.feed(s.peer_request("UPDATE", body=HOLD))
        s.feed(s.peer_request("INVITE", body=HOLD))
        [refused] = s.responses()
        self.assertEqual((refused.status, refused.cseq[1]), (500, "INVITE"))
        self.assertIsNotNone(refused.headers.get("Retry-After"))

    def test_offer_left_unanswered_500_after_32_t1(self) -> None:
        s = uas()
        start = s.now
        s.feed(s.peer_request("UPDATE", body=HOLD))
        self.assertEqual(s.advance(start + 32 * 0.5 - 0.01), [])
        [(_, refused)] = s.advance(start + 32 * 0.5)
        assert isinstance(refused, Response)
        self.assertEqual(refused.status, 500)


class SessionHookTests(unittest.TestCase):
    """The sessions ask for and agree a timer from their ``usages.timer_policy``."""

    def test_our_invite_asks_and_the_2xx_decides(self) -> None:
        h = CallHarness()
        h.call.usages.timer_policy = TimerPolicy(1800, 120)
        sent = h.start()
        self.assertEqual(sent.headers.get("Session-Expires"), "1800")
        self.assertEqual(sent.headers.get("Min-SE"), "120")
        answer = make_response(sent, 200, to_tag="b1", headers=[
            ("Contact", CALLEE_CONTACT), ("Session-Expires", "600;refresher=uac"),
            ("Content-Type", "application/sdp")])
        answer.body = SDP_ANSWER
        h.feed(answer, at=0.2)
        timer = h.call.usages.session_timer
        assert timer is not None
        self.assertEqual(timer.agreement, TimerAgreement(600, True))
        self.assertEqual(timer.deadline(), 0.2 + 300)

    def test_422_to_our_invite_retried_once_with_its_min_se(self) -> None:
        h = CallHarness()
        h.call.usages.timer_policy = TimerPolicy(90, 90)
        first = h.start()
        h.feed(make_response(first, 422, to_tag="b1", headers=[("Min-SE", "300")]), at=0.1)
        [(second, _)] = h.sent_requests("INVITE")
        self.assertEqual(second.cseq, (first.cseq[0] + 1, "INVITE"))
        self.assertEqual(second.headers.get_all("Session-Expires"), ["300"])
        self.assertEqual(second.headers.get_all("Min-SE"), ["300"])
        self.assertEqual(h.events, [])
        h.feed(make_response(second, 422, to_tag="b1", headers=[("Min-SE", "600")]), at=0.2)
        self.assertEqual(h.sent_requests("INVITE"), [])
        self.assertEqual(h.events, [Failed(422, "422 Session Interval Too Small")])

    def test_default_policy_asks_nothing(self) -> None:
        h = CallHarness()
        self.assertIsNone(h.start().headers.get("Session-Expires"))

    def test_uas_answers_the_callers_timer(self) -> None:
        h = UasHarness()
        request = h.invite()
        request.headers.add("Supported", "timer")
        request.headers.add("Session-Expires", "1200")
        h.feed(request)
        h.session.usages.timer_policy = TimerPolicy(1800, 90)
        h.sent()
        h.session.answer(SDP_ANSWER, 1.0)
        [ok] = [r for r in h.sent_responses() if r.status == 200]
        self.assertEqual(ok.headers.get("Session-Expires"), "1200;refresher=uac")
        self.assertEqual(ok.headers.get("Require"), "timer")
        timer = h.session.usages.session_timer
        assert timer is not None
        self.assertEqual(timer.deadline(), 1.0 + 1200 - 32)  # the caller refreshes

    def test_uas_without_a_timer_anywhere_adds_none(self) -> None:
        h = UasHarness()
        h.receive_invite()
        h.sent()
        h.session.answer(SDP_ANSWER, 1.0)
        [ok] = [r for r in h.sent_responses() if r.status == 200]
        self.assertIsNone(ok.headers.get("Session-Expires"))
        self.assertIsNone(h.session.usages.session_timer)
