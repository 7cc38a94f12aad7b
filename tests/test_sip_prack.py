"""Reliable provisional responses (RFC 3262), sans-IO on both sessions through a real
SipEndpoint with an explicit clock: our INVITE's 100rel, the PRACK of each reliable 1xx and
its RAck; our reliable 183 re-sent at T1 doubling until its PRACK, RSeq numbering, one
unacknowledged at a time, the 64*T1 give-up."""

from __future__ import annotations

from twisted.internet import defer
from twisted.trial import unittest

from tests.test_sip_invite import CallHarness
from tests.test_sip_uas import ANSWER, T1, UasHarness
from wcsgw.config import (
    Config,
    ConfigError,
    HttpSettings,
    MediaSettings,
    SipSettings,
    TestLinesSettings,
    load_config,
)
from wcsgw.service import make_service
from wcsgw.sip.invite import Provisional
from wcsgw.sip.message import Request, Response
from wcsgw.sip.responses import make_response
from wcsgw.sip.uas import Failed
from wcsgw.sip.usage.policy import policy_of, session_policy, set_session_policy
from wcsgw.sip.usage.prack import is_reliable, parse_rack, uas_wants_reliable

EARLY = ANSWER


def reliable(invite: Request, status: int, rseq: int, *, sdp: bytes | None = None) -> Response:
    response = make_response(invite, status, to_tag="b1", headers=[
        ("Contact", "<sip:1002@127.0.0.1:5062>"), ("Require", "100rel"), ("RSeq", str(rseq))])
    if sdp is not None:
        response.headers.add("Content-Type", "application/sdp")
        response.body = sdp
    return response


class UacTests(unittest.TestCase):
    def test_invite_says_100rel_by_policy(self) -> None:
        for policy, header in (("supported", "Supported"), ("required", "Require")):
            h = CallHarness()
            h.call.usages.prack_policy = policy  # type: ignore[assignment]
            invite = h.start()
            self.assertIn("100rel", invite.headers.get_all(header), policy)
        h = CallHarness()
        invite = h.start()
        self.assertNotIn("100rel", [*invite.headers.get_all("Supported"),
                                    *invite.headers.get_all("Require")])

    def test_each_reliable_1xx_is_pracked_once_in_rseq_order(self) -> None:
        h = CallHarness()
        h.call.usages.prack_policy = "supported"
        invite = h.start()
        h.feed(reliable(invite, 183, 5, sdp=EARLY), at=0.1)
        [(prack, target)] = h.sent_requests("PRACK")
        self.assertEqual(prack.headers.get("RAck"), f"5 {invite.cseq[0]} INVITE")
        self.assertEqual(prack.to.tag, "b1")
        self.assertEqual(str(prack.uri), "sip:1002@127.0.0.1:5062")  # the early dialog's target
        self.assertEqual((target.host, target.port), ("127.0.0.1", 5062))  # no route set
        [event] = h.events
        assert isinstance(event, Provisional)
        self.assertEqual((event.status, event.sdp), (183, EARLY))
        # the same 1xx again (our PRACK is on its way): no second PRACK, no second event
        h.feed(reliable(invite, 183, 5, sdp=EARLY), at=0.2)
        self.assertEqual(h.sent_requests("PRACK"), [])
        self.assertEqual(len(h.events), 1)
        # a gap (7 before 6) is out of order: ignored
        h.feed(reliable(invite, 180, 7), at=0.3)
        self.assertEqual(h.sent_requests("PRACK"), [])
        h.feed(reliable(invite, 180, 6), at=0.4)
        [(second, _)] = h.sent_requests("PRACK")
        self.assertEqual(second.headers.get("RAck"), f"6 {invite.cseq[0]} INVITE")
        self.assertEqual(second.cseq[0], prack.cseq[0] + 1)
        self.assertEqual(len(h.events), 2)

    def test_unreliable_1xx_gets_no_prack(self) -> None:
        h = CallHarness()
        h.call.usages.prack_policy = "supported"
        invite = h.start()
        h.respond(invite, 180, at=0.1)
        self.assertEqual(h.sent_requests("PRACK"), [])
        self.assertEqual(len(h.events), 1)


class Uas:
    """An incoming INVITE that supports 100rel, taken with ``policy``."""

    def __init__(self, policy: str = "supported", tag: str = "Supported") -> None:
        self.h = UasHarness()
        request = self.h.invite()
        request.headers.add(tag, "100rel")
        self.invite = request
        self.h.feed(request)
        self.h.session.usages.prack_policy = policy  # type: ignore[assignment]
        self.h.sent()

    def advance(self, until: float) -> list[tuple[float, Response]]:
        out: list[tuple[float, Response]] = []
        ep = self.h.ep
        while (deadline := ep.next_deadline()) is not None and deadline <= until:
            self.h.now = max(self.h.now, deadline)
            ep.handle_timer(self.h.now)
            out += [(self.h.now, r) for r in self.h.sent_responses()]
        self.h.now = until
        return out

    def prack(self, rseq: int, cseq: int = 8, invite_cseq: int = 7) -> Request:
        prack = self.h.in_dialog("PRACK", cseq=cseq, branch=f"z9hG4bKprack{cseq}")
        prack.headers.add("RAck", f"{rseq} {invite_cseq} INVITE")
        return prack


class UasTests(unittest.TestCase):
    def test_wants_reliable(self) -> None:
        u = Uas()
        self.assertTrue(uas_wants_reliable(u.invite, "supported"))
        self.assertFalse(uas_wants_reliable(u.invite, "off"))
        required = UasHarness().invite()
        required.headers.add("Require", "100rel")  # (the front door still refuses it 420)
        self.assertTrue(uas_wants_reliable(required, "off"))

    def test_reliable_183_resent_t1_doubling_until_prack(self) -> None:
        u = Uas()
        u.h.session.ring(0.0, sdp=EARLY)
        [first] = u.h.sent_responses()
        self.assertEqual(first.status, 183)
        self.assertTrue(is_reliable(first))
        rseq = int(first.headers.get("RSeq") or "0")
        self.assertGreaterEqual(rseq, 1)
        resent = u.advance(3.6)
        self.assertEqual([at for at, _ in resent], [T1, 3 * T1, 7 * T1])
        self.assertTrue(all(r.headers.get("RSeq") == str(rseq) for _, r in resent))
        u.h.feed(u.prack(rseq), at=3.7)
        [ok] = u.h.sent_responses()
        self.assertEqual((ok.status, ok.cseq[1]), (200, "PRACK"))
        self.assertEqual(u.advance(40.0), [])
        self.assertEqual(u.h.events, [])

    def test_wrong_rack_481(self) -> None:
        u = Uas()
        u.h.session.ring(0.0, sdp=EARLY)
        [first] = u.h.sent_responses()
        rseq = int(first.headers.get("RSeq") or "0")
        u.h.feed(u.prack(rseq + 1), at=0.1)
        u.h.feed(u.prack(rseq, cseq=9, invite_cseq=6), at=0.2)
        self.assertEqual([r.status for r in u.h.sent_responses()], [481, 481])

    def test_second_1xx_waits_for_the_first_prack_and_takes_the_next_rseq(self) -> None:
        u = Uas()
        u.h.session.ring(0.0, sdp=EARLY)
        u.h.session.ring(0.1)
        [first] = u.h.sent_responses()  # the 180 waits
        rseq = int(first.headers.get("RSeq") or "0")
        u.h.feed(u.prack(rseq), at=0.2)
        ok, ringing = u.h.sent_responses()
        self.assertEqual((ok.status, ringing.status), (200, 180))
        self.assertEqual(ringing.headers.get("RSeq"), str(rseq + 1))

    def test_no_prack_within_64_t1_refuses_the_invite_500(self) -> None:
        u = Uas()
        u.h.session.ring(0.0, sdp=EARLY)
        u.h.sent()
        finals = [r for _, r in u.advance(64 * T1) if r.status >= 200]
        self.assertEqual([r.status for r in finals], [500])
        self.assertEqual(u.h.events, [Failed(500, "500 Server Internal Error")])

    def test_answer_stops_the_retransmissions(self) -> None:
        u = Uas()
        u.h.session.ring(0.0, sdp=EARLY)
        u.h.sent()
        u.h.session.answer(ANSWER, 0.1)
        u.h.sent()
        self.assertEqual([r.status for _, r in u.advance(2.0)], [200, 200])  # the 2xx only

    def test_policy_off_sends_plain_1xx(self) -> None:
        u = Uas(policy="off")
        u.h.session.ring(0.0)
        [ringing] = u.h.sent_responses()
        self.assertFalse(is_reliable(ringing))
        self.assertIsNone(ringing.headers.get("RSeq"))


class RackTests(unittest.TestCase):
    def test_parse_rack(self) -> None:
        self.assertEqual(parse_rack("776656 1 invite"), (776656, 1, "INVITE"))
        self.assertIsNone(parse_rack("1 INVITE"))
        self.assertIsNone(parse_rack(None))


class PolicyTests(unittest.TestCase):
    """The endpoint's policy (the [sip] keys, once wired at start-up) reaches every session
    made on it; an endpoint without one uses neither extension."""

    def test_sessions_take_the_endpoints_policy(self) -> None:
        h = CallHarness()
        set_session_policy(h.ep, policy_of(600, 120, "required"))
        later = CallHarness()  # another endpoint: unaffected
        h.call = type(h.call)(h.ep, h.account, "sip:1002@127.0.0.1", b"v=0\r\n",
                              listener=h.events.append)
        invite = h.start()
        self.assertEqual(invite.headers.get("Require"), "100rel")
        self.assertEqual(invite.headers.get("Session-Expires"), "600")
        self.assertEqual(invite.headers.get("Min-SE"), "120")
        self.assertEqual(later.call.usages.prack_policy, "off")
        self.assertEqual(session_policy(later.ep).timer.session_expires, 0)


class ConfigTests(unittest.TestCase):
    """``[sip] prack``, ``session_expires``, ``min_se``: checked with one line naming the key,
    and given to the running gateway's endpoint at start-up."""

    def test_bad_values_name_their_key(self) -> None:
        for environ, key in (({"WCSGW_SIP_PRACK": "sometimes"}, "sip.prack"),
                             ({"WCSGW_SIP_SESSION_EXPIRES": "60"}, "sip.session_expires"),
                             ({"WCSGW_SIP_MIN_SE": "30"}, "sip.min_se")):
            with self.assertRaises(ConfigError) as caught:
                load_config(None, environ)
            self.assertTrue(str(caught.exception).startswith(key), str(caught.exception))
            self.assertNotIn("\n", str(caught.exception))
        defaults = load_config(None, {}).sip
        self.assertEqual((defaults.session_expires, defaults.min_se, defaults.prack),
                         (1800, 90, "supported"))
        self.assertEqual(load_config(None, {"WCSGW_SIP_SESSION_EXPIRES": "0"}).sip.session_expires, 0)

    def test_the_service_gives_the_endpoint_its_policy(self) -> None:
        config = Config(
            http=HttpSettings(listen="127.0.0.1", port=0),
            sip=SipSettings(listen="127.0.0.1", port=0, session_expires=600, min_se=120,
                            prack="required"),
            media=MediaSettings(listen="127.0.0.1", port_min=31100, port_max=31199),
            testlines=TestLinesSettings(enabled=False),
        )
        top = make_service(config)
        top.startService()
        self.addCleanup(lambda: defer.maybeDeferred(top.stopService))
        sip = top.getServiceNamed("sip")
        self.assertEqual(session_policy(sip.endpoint), policy_of(600, 120, "required"))
