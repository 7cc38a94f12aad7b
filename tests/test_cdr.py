"""The call record of each way a call ends (wcsgw.calls.cdr), and the ``cdr`` hook event.

A real :class:`~wcsgw.calls.outbound.OutboundCall` through a real
:class:`~wcsgw.calls.gateway.CallGateway` (the gateway says who ends a call), with the fake
dialog, legs and sockets of tests/call_fakes.py on a task.Clock; the watcher files records
with a list.
"""

from __future__ import annotations

import functools
import os
from datetime import datetime
from typing import Any

from twisted.trial import unittest

from tests import test_calls_hold as hold
from tests.call_fakes import FakeIncomingInvite, fake_call_setup, fake_env, sip_answer
from wcsgw.calls.accounts import AccountBook
from wcsgw.calls.cdr import CdrWatcher, cdr_record, iso_time
from wcsgw.calls.errors import CallError
from wcsgw.calls.gateway import CallGateway
from wcsgw.calls.hooks.runtime import App
from wcsgw.calls.hooks.taps import HookTap
from wcsgw.calls.inbound import InboundCall
from wcsgw.calls.outbound import OutboundCall
from wcsgw.calls.policy import Policy
from wcsgw.sip.account import SipAccount
from wcsgw.sip.events import (
    Answered,
    Confirmed,
    Ended,
    Failed,
    Provisional,
    ReferAccepted,
    ReferProgress,
)

HERE = os.path.dirname(__file__)
CHROME_OFFER = open(os.path.join(HERE, "data", "chromium_offer_av.sdp")).read()
PHONE = sip_answer([(0, "PCMU/8000", None), (101, "telephone-event/8000", "0-16")])


class Filed:
    """The records the watcher hands over (``gateway.cdr``'s ``add``)."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def add(self, record: dict[str, Any]) -> None:
        self.records.append(record)


class Listener:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def session_status(self, status: str, sip_status: int | None, info: str) -> None:
        pass

    def call_status(self, call: dict[str, Any]) -> None:
        self.calls.append(call)


class Hooks:
    """What the tap and the watcher use of wcsgw.calls.hooks.runtime.Hooks: notices kept."""

    def __init__(self) -> None:
        self.notices: list[tuple[str, str, str | None, dict[str, Any]]] = []

    def notice(self, app: App, key: str, event: str, session_id: str | None,
               fields: dict[str, Any]) -> None:
        self.notices.append((key, event, session_id, dict(fields)))


def epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class CdrRecordTests(unittest.TestCase):
    def setUp(self) -> None:
        fake_call_setup(self)
        self.env = fake_env(self)
        self.gw = CallGateway(object(), Policy(["pbx.example"], None),
                              functools.partial(OutboundCall, env=self.env))
        self.filed = Filed()
        self.gw.registry.watchers.append(CdrWatcher(self.gw, self.filed))
        self.listener = Listener()
        self.gw.open_session("s1", self.listener)
        self.gw.connect("s1", SipAccount(login="1001", password="secret-pw",
                                         domain="pbx.example"), register=False)

    def place(self, call_id: str = "c1") -> Any:
        self.gw.call("s1", call_id=call_id, callee="1002", visible_name=None, has_audio=True,
                     has_video=False, sdp=CHROME_OFFER, sip_headers={})
        call = self.gw.calls[call_id]
        self.addCleanup(self.gw.hangup_all)
        return call

    def answered(self) -> Any:
        call = self.place()
        call.sip.heard(Provisional(180, "Ringing"))
        call.sip.heard(Answered(PHONE))
        self.assertEqual(call.status.value, "ESTABLISHED")
        return call

    def only_record(self) -> dict[str, Any]:
        [record] = self.filed.records
        return record

    def test_every_field_of_an_answered_call_the_browser_hung_up(self) -> None:
        call = self.answered()
        self.gw.hangup("s1", "c1")
        record = self.only_record()
        self.assertEqual(record["callId"], "c1")
        self.assertEqual(record["sessionId"], "s1")
        self.assertEqual(record["appKey"], "")
        self.assertEqual(record["direction"], "outgoing")
        self.assertEqual(record["caller"], "1001")
        self.assertEqual(record["callee"], "1002")
        # the account's AOR, never its password
        self.assertEqual(record["account"], "sip:1001@pbx.example")
        self.assertNotIn("secret-pw", repr(record))
        for field, when in (("startTime", call.start_time), ("ringTime", call.ring_time),
                            ("answerTime", call.answer_time), ("endTime", call.end_time)):
            self.assertRegex(record[field], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
            self.assertLess(abs(epoch(record[field]) - when), 0.001)
        self.assertLessEqual(epoch(record["startTime"]), epoch(record["ringTime"]))
        self.assertLessEqual(epoch(record["ringTime"]), epoch(record["answerTime"]))
        self.assertLessEqual(epoch(record["answerTime"]), epoch(record["endTime"]))
        self.assertLess(abs(record["duration"] - (call.end_time - call.answer_time)), 0.001)
        self.assertEqual(record["status"], "FINISH")
        self.assertEqual(record["endedBy"], "browser")
        self.assertEqual(record["endReason"], "Normal call clearing")
        self.assertEqual(record["sipStatus"], 200)
        self.assertEqual(record["media"]["sipCodec"], "PCMU/8000")
        self.assertEqual(record["media"]["mode"], call.plan.mode)
        self.assertEqual(set(record["stats"]), {"browser", "sip"})
        for leg in ("browser", "sip"):
            self.assertLessEqual({"packetsLost", "fractionLost", "jitterMs", "rttMs", "mos",
                                  "packetsReceived", "packetsSent"}, set(record["stats"][leg]))
        self.assertEqual(record["stats"]["sip"]["packetsReceived"], 0)  # the fake phone: none
        self.assertIsNone(record["transferredTo"])
        self.assertIsNone(record["replaces"])
        self.assertIsNone(record["recording"])

    def test_far_end_bye_is_ended_by_sip(self) -> None:
        call = self.answered()
        call.sip.heard(Ended("", by_remote=True))
        record = self.only_record()
        self.assertEqual((record["status"], record["endedBy"]), ("FINISH", "sip"))
        self.assertGreaterEqual(record["duration"], 0)

    def test_rest_terminate_is_ended_by_gateway(self) -> None:
        self.answered()
        self.gw.terminate("c1")
        record = self.only_record()
        self.assertEqual((record["status"], record["endedBy"]), ("FINISH", "gateway"))

    def test_rtp_timeout_is_a_failure_by_the_gateway(self) -> None:
        self.answered()
        self.clock.advance(self.env.rtp_timeout + 2)
        record = self.only_record()
        self.assertEqual((record["status"], record["endedBy"], record["endReason"]),
                         ("FAILED", "gateway", "Failed by RTP activity"))

    def test_busy_never_answered(self) -> None:
        call = self.place()
        call.sip.heard(Provisional(180, "Ringing"))
        call.sip.heard(Failed(486, "486 Busy Here"))
        record = self.only_record()
        self.assertEqual((record["status"], record["endedBy"], record["sipStatus"]),
                         ("BUSY", "sip", 486))
        self.assertEqual(record["endReason"], "486 Busy Here")
        self.assertIsNone(record["answerTime"])
        self.assertEqual(record["duration"], 0)
        self.assertIsNotNone(record["ringTime"])

    def test_cancelled_before_ringing_has_no_ring_time(self) -> None:
        self.place()
        self.gw.hangup("s1", "c1")
        record = self.only_record()
        self.assertEqual(record["endedBy"], "browser")
        self.assertIsNone(record["ringTime"])
        self.assertIsNone(record["answerTime"])

    def test_a_refused_start_makes_no_record(self) -> None:
        """A start the gateway refused (here: no media port left) is no call."""
        self.allocator.port_max = self.allocator.port_min  # type: ignore[misc]
        with self.assertRaises(CallError):
            self.place()
        self.assertNotIn("c1", self.gw.calls)
        self.assertEqual(self.filed.records, [])

    def test_followed_refer_names_the_target(self) -> None:
        call = self.answered()
        first = call.request_uri
        call.request_uri = "sip:1003@pbx.example"  # what taking over the target's dialog does
        self.gw.hangup("s1", "c1")
        self.assertNotEqual(first, call.request_uri)
        self.assertEqual(self.only_record()["transferredTo"], "sip:1003@pbx.example")


    def refers(self, call: Any) -> list[tuple[str, str | None]]:
        """Let the fake dialog take REFERs (what it was asked: target, Replaces)."""
        sent: list[tuple[str, str | None]] = []
        call.invite.refer = lambda uri, now, replaces=None: sent.append((uri, replaces))
        return sent

    def test_blind_transfer_completed_names_the_target(self) -> None:
        call = self.answered()
        sent = self.refers(call)
        self.gw.transfer("s1", "c1", "1003")
        call.sip.heard(ReferAccepted(202))
        call.sip.heard(ReferProgress(100, False))
        call.sip.heard(ReferProgress(200, True))  # the target answered: our part is done
        [(target, replaces)] = sent
        record = self.only_record()
        self.assertEqual(record["transferredTo"], target)
        self.assertIn("1003", target)
        self.assertIsNone(record["replaces"])
        self.assertEqual(record["status"], "FINISH")

    def test_attended_transfer_names_the_other_call(self) -> None:
        first = self.answered()
        self.gw.call("s1", call_id="c2", callee="1003", visible_name=None, has_audio=True,
                     has_video=False, sdp=CHROME_OFFER, sip_headers={})
        second = self.gw.calls["c2"]
        second.sip.heard(Answered(PHONE))
        second.invite.dialog = type("Dialog", (), {"call_id": "d2", "local_tag": "a",
                                                   "remote_tag": "b"})()
        sent = self.refers(first)
        self.gw.transfer("s1", "c1", "c2")
        first.sip.heard(ReferAccepted(202))
        first.sip.heard(ReferProgress(200, True))
        [(_, replaces)] = sent
        self.assertIn("d2", replaces or "")
        records = {r["callId"]: r for r in self.filed.records}
        self.assertEqual(records["c1"]["replaces"], "c2")
        self.assertEqual(records["c1"]["transferredTo"], second.request_uri)
        self.assertIsNone(records["c2"]["replaces"])  # ended too (in case Replaces was ignored)

    def test_a_failed_transfer_links_nothing(self) -> None:
        call = self.answered()
        self.refers(call)
        self.gw.transfer("s1", "c1", "1003")
        call.sip.heard(ReferAccepted(202))
        call.sip.heard(ReferProgress(486, True))
        self.gw.hangup("s1", "c1")
        record = self.only_record()
        self.assertIsNone(record["transferredTo"])
        self.assertIsNone(record["replaces"])

    def test_a_server_held_account_is_named_not_its_aor(self) -> None:
        held = SipAccount(login="1001", password="pw", domain="pbx.example")
        self.gw.accounts = AccountBook([("office", held)])
        self.gw.open_session("s2", Listener())
        self.gw.connect("s2", held, register=False)
        self.gw.call("s2", call_id="c2", callee="1002", visible_name=None, has_audio=True,
                     has_video=False, sdp=CHROME_OFFER, sip_headers={})
        self.addCleanup(self.gw.hangup_all)
        self.gw.hangup("s2", "c2")
        self.assertEqual(self.only_record()["account"], "office")


class IncomingCdrTests(unittest.TestCase):
    """A call from the SIP side, answered by the browser, ended by the caller's BYE."""

    def test_incoming_answered_then_caller_hangs_up(self) -> None:
        fake_call_setup(self)
        env = fake_env(self)
        filed = Filed()
        call = InboundCall(invite=FakeIncomingInvite(hold.phone_sdp(1)), caller="sip:carol@x",
                           env=env, call_id="in", session_id="s",
                           account=SipAccount(login="alice", password="pw", domain="pbx.example"),
                           callee="alice", visible_name=None, has_audio=True, has_video=False,
                           on_status=lambda described: None,
                           on_gone=lambda c: filed.add(cdr_record(c)), notify=lambda m, p: None)
        call.start()
        self.addCleanup(call.hangup)
        call.answer(hold.browser_answer(call.browser_offer_text))
        call.uas.heard(Confirmed(None))
        self.clock.advance(2)
        call.uas.heard(Ended("", by_remote=True))
        [record] = filed.records
        self.assertEqual(record["direction"], "incoming")
        self.assertEqual(record["caller"], "sip:carol@x")
        self.assertEqual(record["callee"], "alice")
        self.assertEqual((record["status"], record["endedBy"]), ("FINISH", "sip"))
        self.assertIsNotNone(record["answerTime"])
        self.assertEqual(record["media"]["sipCodec"], "PCMU/8000")
        self.assertEqual(record["account"], "sip:alice@pbx.example")


class CdrHookTests(unittest.TestCase):
    """The ``cdr`` notice event: after the call's last callStatus, for a session with an app."""

    def setUp(self) -> None:
        fake_call_setup(self)
        self.env = fake_env(self)
        self.gw = CallGateway(object(), Policy(["pbx.example"], None),
                              functools.partial(OutboundCall, env=self.env))
        self.hooks = Hooks()
        self.gw.hooks = self.hooks
        self.filed = Filed()
        self.gw.registry.watchers.append(CdrWatcher(self.gw, self.filed))

    def test_session_with_an_app_gets_the_record_after_the_last_status(self) -> None:
        app = App("shop", "http://127.0.0.1:1/hook", "s3cret")
        self.gw.open_session("s1", Listener())
        session = self.gw.sessions["s1"]
        session.listener = HookTap(session.listener, self.hooks, app, "s1")  # type: ignore[arg-type]
        self.gw.connect("s1", SipAccount(login="1001", password="pw", domain="pbx.example"),
                        register=False)
        self.gw.call("s1", call_id="c9", callee="1002", visible_name=None, has_audio=True,
                     has_video=False, sdp=CHROME_OFFER, sip_headers={})
        self.gw.end_session("s1")  # the session goes first, then its calls end
        events = [(key, event) for key, event, _, _ in self.hooks.notices]
        self.assertEqual(events[-1], ("c9", "cdr"))
        self.assertEqual(events[-2], ("c9", "callStatus"))
        _, _, session_id, fields = self.hooks.notices[-1]
        self.assertEqual(session_id, "s1")
        self.assertNotIn("sessionId", fields)  # the envelope carries it (and appKey)
        [record] = self.filed.records
        self.assertEqual(record["appKey"], "shop")
        self.assertEqual(fields, {k: v for k, v in record.items()
                                  if k not in ("sessionId", "appKey")})

    def test_no_app_no_hook(self) -> None:
        self.gw.open_session("s1", Listener())
        self.gw.connect("s1", SipAccount(login="1001", password="pw", domain="pbx.example"),
                        register=False)
        self.gw.call("s1", call_id="c9", callee="1002", visible_name=None, has_audio=True,
                     has_video=False, sdp=CHROME_OFFER, sip_headers={})
        self.gw.hangup("s1", "c9")
        self.assertEqual(self.hooks.notices, [])
        self.assertEqual(len(self.filed.records), 1)


class IsoTimeTests(unittest.TestCase):
    def test_milliseconds_utc(self) -> None:
        self.assertEqual(iso_time(1_700_000_000.1234), "2023-11-14T22:13:20.123Z")
        self.assertIsNone(iso_time(None))
        self.assertTrue(callable(cdr_record))
