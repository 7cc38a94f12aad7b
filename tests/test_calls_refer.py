"""A far end's REFER at the call level: the toll-fraud door (issue 10, item 2).

Whoever controls the far end of a call (or, chained with unchecked in-dialog sources, anyone
who can reach the SIP port) could make the gateway dial any number on the session's account
with a REFER.  So a REFER goes through the same destination check as a browser's ``callee``
(403, nothing dialled), then ``policy.incoming_transfers``: refuse (403), accept, or ask the
browser (``transferRequest`` / ``answerTransfer``; refusal or silence: 603 Decline).

A real :class:`~wcsgw.calls.call.Call` with the fake dialog and WebRTC leg of
tests/call_fakes.py (the dialog also records what it answers to the REFER) and a real
:class:`~wcsgw.calls.policy.Policy`; every INVITE the call would send is recorded.  Timers run
on a task.Clock.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

from twisted.internet import defer
from twisted.trial import unittest

from tests.call_fakes import FakeInvite, fake_call_setup, fake_env
from wcsgw.api.jsonrpc import INVALID_PARAMS, Request
from wcsgw.api.methods import SessionMethods
from wcsgw.calls.call import Call
from wcsgw.calls.errors import CallError, Codes
from wcsgw.calls.gateway import CallGateway
from wcsgw.calls.outbound import OutboundCall
from wcsgw.calls.policy import Policy
from wcsgw.calls.status import CallStatus
from wcsgw.sip.account import SipAccount
from wcsgw.sip.invite import Answered
from wcsgw.sip.session import ReferReceived

HERE = os.path.dirname(__file__)
CHROME_OFFER = Path(HERE, "data", "chromium_offer_av.sdp").read_text()
PHONE_ANSWER = (b"v=0\r\no=- 5 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                b"m=audio 30000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
                b"a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n")

#: A premium-rate number on an allowed host: the classic toll-fraud target.
PREMIUM = "sip:+19005550199@127.0.0.1"
ALLOWED = "sip:1003@127.0.0.1"
ACCOUNT = SipAccount(login="1001", password="pw", domain="127.0.0.1")


class ReferInvite(FakeInvite):
    """The fake dialog, plus the far end's REFER: what we answer to it (202 or the refusal),
    and the NOTIFYs of an accepted one.  Like the real session, a REFER is answered once."""

    created: ClassVar[list[ReferInvite]] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.refer_answers: list[tuple[int, str | None]] = []
        self.notifies: list[int] = []
        self.refer_pending = False
        self.started = False
        ReferInvite.created.append(self)

    def start(self, now: float) -> None:
        self.started = True

    def receive_refer(self, refer_to: str) -> None:
        """The far end's REFER arrives (the session emits ReferReceived)."""
        self.refer_pending = True
        self.listener(ReferReceived(refer_to, None, None))

    def accept_refer(self, now: float, *, notify_trying: bool = True) -> None:
        if not self.refer_pending:
            raise RuntimeError("accept_refer() without a REFER")
        self.refer_pending = False
        self.refer_answers.append((202, None))
        if notify_trying:
            self.notifies.append(100)

    def reject_refer(self, status: int, now: float, reason: str | None = None) -> None:
        if not self.refer_pending:
            raise RuntimeError("reject_refer() without a REFER")
        self.refer_pending = False
        self.refer_answers.append((status, reason))

    def notify_refer(self, status: int, reason: str, now: float, final: bool | None = None) -> None:
        self.notifies.append(status)


class ReferCase(unittest.TestCase):
    def setUp(self) -> None:
        fake_call_setup(self)
        ReferInvite.created = []
        self.notes: list[tuple[str, dict[str, Any]]] = []
        self.addCleanup(lambda: self.assertEqual(self.allocator.in_use, frozenset()))  # last

    def established(self, *, mode: str = "ask", policy: Policy | None = None,
                    browser: bool = True, timeout: float = 15.0) -> Call:
        """A browser's call to sip:1002@127.0.0.1, answered; ``browser`` False: a call with
        nobody to notify (a REST file call's situation)."""
        env = fake_env(self, incoming_transfers=mode, transfer_timeout=timeout,
                       policy=policy or Policy(["127.0.0.1"]), make_invite=ReferInvite)
        call = OutboundCall(env=env, call_id="c1", session_id="s", account=ACCOUNT,
                    request_uri="sip:1002@127.0.0.1", callee="1002", visible_name=None,
                    has_audio=True, has_video=False, browser_offer=CHROME_OFFER,
                    sip_headers={}, on_status=lambda d: None, on_gone=lambda c: None,
                    notify=(lambda m, p: self.notes.append((m, dict(p)))) if browser else None)
        self.addCleanup(self.close, call)
        call.start()
        call.sip.heard(Answered(PHONE_ANSWER))
        self.assertEqual(call.status, CallStatus.ESTABLISHED)
        self.dialog: ReferInvite = call.invite  # type: ignore[assignment]
        return call

    @defer.inlineCallbacks
    def close(self, call: Call):
        call.hangup()
        yield defer.gatherResults([s.close() for s in (call.rtp,) if s is not None])

    def dialled(self) -> list[str]:
        """Request-URIs of the INVITEs sent after the call's own first one."""
        return [invite.request_uri for invite in ReferInvite.created[1:] if invite.started]

    def requests(self) -> list[dict[str, Any]]:
        return [params for method, params in self.notes if method == "transferRequest"]


class PolicyFirstTests(ReferCase):
    """The destination check comes before anything else, whatever incoming_transfers says."""

    def test_host_not_allowed_is_403_and_nothing_is_dialled(self) -> None:
        self.established(mode="accept")
        self.dialog.receive_refer("sip:+19005550199@evil.example")
        self.assertEqual(self.dialog.refer_answers[0][0], 403)
        self.assertEqual(self.dialled(), [])
        self.assertEqual(self.notes, [])  # the browser is told nothing; the call goes on

    def test_redirecting_uri_parameter_is_403(self) -> None:
        # Passes a host check that reads only the host part; the INVITE would go to maddr.
        self.established(mode="accept")
        self.dialog.receive_refer("sip:1003@127.0.0.1;maddr=evil.example")
        self.assertEqual(self.dialog.refer_answers[0][0], 403)
        self.assertEqual(self.dialled(), [])

    def test_refer_to_header_that_routes_elsewhere_is_403(self) -> None:
        self.established(mode="accept")
        self.dialog.receive_refer("sip:1003@127.0.0.1?Route=%3Csip:evil.example;lr%3E")
        self.assertEqual(self.dialog.refer_answers[0][0], 403)
        self.assertEqual(self.dialled(), [])

    def test_denied_number_is_403_and_nothing_is_dialled(self) -> None:
        policy = Policy(["127.0.0.1"], denied_numbers=[r"\+1900\d+"])
        call = self.established(mode="accept", policy=policy)
        self.dialog.receive_refer(PREMIUM)
        self.assertEqual(self.dialog.refer_answers[0][0], 403)
        self.assertEqual(self.dialled(), [])
        self.assertEqual(call.status, CallStatus.ESTABLISHED)
        self.assertFalse(call.hold_for_transfer)

    def test_number_outside_allowed_numbers_is_403(self) -> None:
        policy = Policy(["127.0.0.1"], allowed_numbers=[r"1\d{3}"])
        self.established(mode="accept", policy=policy)
        self.dialog.receive_refer(PREMIUM)
        self.assertEqual(self.dialog.refer_answers[0][0], 403)
        self.assertEqual(self.dialled(), [])

    def test_denied_number_is_never_put_to_the_browser(self) -> None:
        policy = Policy(["127.0.0.1"], denied_numbers=[r"\+1900\d+"])
        self.established(mode="ask", policy=policy)
        self.dialog.receive_refer(PREMIUM)
        self.assertEqual(self.dialog.refer_answers[0][0], 403)
        self.assertEqual(self.requests(), [])

    def test_no_policy_refuses(self) -> None:
        call = self.established(mode="accept")
        call.env.policy = None
        self.dialog.receive_refer(ALLOWED)
        self.assertEqual(self.dialog.refer_answers[0][0], 403)
        self.assertEqual(self.dialled(), [])


class ModeTests(ReferCase):
    def test_refuse_mode_is_403(self) -> None:
        self.established(mode="refuse")
        self.dialog.receive_refer(ALLOWED)
        self.assertEqual(self.dialog.refer_answers[0][0], 403)
        self.assertEqual(self.dialled(), [])
        self.assertEqual(self.requests(), [])

    def test_accept_mode_dials_the_target(self) -> None:
        call = self.established(mode="accept")
        self.dialog.receive_refer(ALLOWED)
        self.assertEqual(self.dialog.refer_answers, [(202, None)])
        self.assertEqual(self.dialog.notifies, [100])
        self.assertEqual(self.dialled(), [ALLOWED])
        self.assertTrue(call.hold_for_transfer)
        self.assertEqual(self.requests(), [])

    def test_call_without_a_browser_refuses_when_asked_to_ask(self) -> None:
        self.established(mode="ask", browser=False)
        self.dialog.receive_refer(ALLOWED)
        self.assertEqual(self.dialog.refer_answers[0][0], 403)
        self.assertEqual(self.dialled(), [])


class AskTests(ReferCase):
    def test_the_browser_is_asked_and_nothing_happens_yet(self) -> None:
        self.established()
        self.dialog.receive_refer(ALLOWED)
        self.assertEqual(self.requests(), [{"callId": "c1", "target": ALLOWED, "timeout": 15.0}])
        self.assertEqual(self.dialog.refer_answers, [])  # the REFER waits for the answer
        self.assertEqual(self.dialled(), [])

    def test_accept_dials_the_target(self) -> None:
        call = self.established()
        self.dialog.receive_refer(ALLOWED)
        call.answer_transfer(True)
        self.assertEqual(self.dialog.refer_answers, [(202, None)])
        self.assertEqual(self.dialled(), [ALLOWED])
        self.clock.advance(30)  # the timeout does not fire afterwards
        self.assertEqual(self.dialog.refer_answers, [(202, None)])

    def test_refuse_is_603(self) -> None:
        call = self.established()
        self.dialog.receive_refer(ALLOWED)
        call.answer_transfer(False)
        self.assertEqual(self.dialog.refer_answers, [(603, "Decline")])
        self.assertEqual(self.dialled(), [])
        self.assertEqual(call.status, CallStatus.ESTABLISHED)

    def test_no_answer_in_time_is_603(self) -> None:
        call = self.established(timeout=10.0)
        self.dialog.receive_refer(ALLOWED)
        self.clock.advance(9.9)
        self.assertEqual(self.dialog.refer_answers, [])
        self.clock.advance(0.2)
        self.assertEqual(self.dialog.refer_answers, [(603, "Decline")])
        self.assertEqual(self.dialled(), [])
        with self.assertRaises(CallError) as caught:  # too late now
            call.answer_transfer(True)
        self.assertEqual((caught.exception.code, caught.exception.field),
                         (Codes.BAD_STATE, "callId"))
        self.assertEqual(self.dialled(), [])

    def test_wait_ends_before_the_sip_sessions_own_deadline(self) -> None:
        # T1 = 0.1 s: Timer F 6.4 s, the session answers 500 itself at 3.2 s.
        call = self.established(timeout=15.0)

        class Timers:
            timeout = 6.4

        self.dialog.endpoint = type("E", (), {"config": type("C", (), {"timers": Timers})})()
        self.dialog.receive_refer(ALLOWED)
        self.assertEqual(self.requests()[0]["timeout"], 2.7)
        self.clock.advance(2.8)
        self.assertEqual(self.dialog.refer_answers, [(603, "Decline")])
        self.assertEqual(call.status, CallStatus.ESTABLISHED)

    def test_answer_without_a_request_names_the_call(self) -> None:
        call = self.established()
        with self.assertRaises(CallError) as caught:
            call.answer_transfer(True)
        self.assertEqual((caught.exception.code, caught.exception.field),
                         (Codes.BAD_STATE, "callId"))
        self.assertEqual(self.dialled(), [])

    def test_one_request_at_a_time(self) -> None:
        call = self.established()
        self.dialog.receive_refer(ALLOWED)
        # (The SIP session itself answers a REFER overlapping an unanswered one 500; should
        # one reach the call, it is refused and the first request stands.)
        self.dialog.refer_pending = True
        self.dialog.listener(ReferReceived("sip:1004@127.0.0.1", None, None))
        self.assertEqual(self.dialog.refer_answers, [(403, "Forbidden (no transfer now)")])
        self.assertEqual(len(self.requests()), 1)
        self.dialog.refer_pending = True
        call.answer_transfer(True)
        self.assertEqual(self.dialled(), [ALLOWED])

    def test_call_ending_while_asked_cancels_the_request(self) -> None:
        call = self.established()
        self.dialog.receive_refer(ALLOWED)
        call.hangup()
        self.clock.advance(30)  # no 603 into the ended dialog (the session answered it 487)
        self.assertEqual(self.dialog.refer_answers, [])
        with self.assertRaises(CallError):
            call.answer_transfer(True)
        self.assertEqual(self.dialled(), [])

    def test_a_second_call_is_not_held_up(self) -> None:
        """The question is a timer, not a wait: another call of the gateway goes on."""
        first = self.established()
        first_dialog = self.dialog
        first_dialog.receive_refer(ALLOWED)
        second = self.established()
        second.call_id = "c2"
        self.dialog.receive_refer("sip:1004@127.0.0.1")
        second.answer_transfer(False)
        self.assertEqual(self.dialog.refer_answers, [(603, "Decline")])
        self.assertEqual(first_dialog.refer_answers, [])
        first.answer_transfer(True)
        self.assertEqual(first_dialog.refer_answers, [(202, None)])


class ApiTests(unittest.TestCase):
    """``answerTransfer`` over the session's methods, with the real CallGateway."""

    def setUp(self) -> None:
        self.gateway = CallGateway(sip=None, policy=Policy(["127.0.0.1"]), call_factory=None)
        self.methods = SessionMethods(self.gateway, "s1")

    def rpc(self, params: dict[str, Any]) -> dict[str, Any]:
        import json

        return json.loads(self.methods.handle(Request("answerTransfer", params, 1)))

    def test_unknown_call_names_call_id(self) -> None:
        error = self.rpc({"callId": "nope", "accept": True})["error"]
        self.assertEqual((error["code"], error["data"]), (Codes.UNKNOWN_CALL, {"field": "callId"}))

    def test_missing_accept_is_invalid_params(self) -> None:
        error = self.rpc({"callId": "c1"})["error"]
        self.assertEqual((error["code"], error["data"]), (INVALID_PARAMS, {"field": "accept"}))

    def test_accept_must_be_a_boolean(self) -> None:
        error = self.rpc({"callId": "c1", "accept": "yes"})["error"]
        self.assertEqual((error["code"], error["data"]), (INVALID_PARAMS, {"field": "accept"}))

    def test_reaches_the_sessions_call_only(self) -> None:
        answers: list[bool] = []

        class Pending:
            session_id = "s1"

            def answer_transfer(self, accept: bool) -> None:
                answers.append(accept)

        other = Pending()
        other.session_id = "s2"
        self.gateway.calls.update({"mine": Pending(), "theirs": other})
        self.assertEqual(self.rpc({"callId": "mine", "accept": False})["result"], {})
        self.assertEqual(answers, [False])
        error = self.rpc({"callId": "theirs", "accept": True})["error"]
        self.assertEqual((error["code"], error["data"]), (Codes.UNKNOWN_CALL, {"field": "callId"}))
        self.assertEqual(answers, [False])
