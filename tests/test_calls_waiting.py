"""Declining a call waiting as busy (``hangup {callId, busy: true}``): the caller hears 486
Busy Here whatever ``[sip] decline_status`` says for a lone call, and nothing else about
``hangup`` changes (wcsgw.calls.inbound.decline_busy, wcsgw.api.callmethods)."""

from __future__ import annotations

import json
from typing import Any

from twisted.trial import unittest

from tests.call_fakes import Account, FakeIncomingInvite, fake_call_setup, fake_env, sip_answer
from tests.test_api_fakes import FakeGateway, RecordingListener
from tests.test_calls_hold import browser_answer
from wcsgw.api import jsonrpc
from wcsgw.api.jsonrpc import Request
from wcsgw.api.methods import SessionMethods
from wcsgw.calls.inbound import InboundCall, decline_busy
from wcsgw.calls.status import CallStatus

PHONE_OFFER = sip_answer([(0, "PCMU/8000", None)], port=40000)


class BusyDeclineTests(unittest.TestCase):
    def setUp(self) -> None:
        fake_call_setup(self)
        self.statuses: list[Any] = []

    def ringing(self, **settings: Any) -> tuple[InboundCall, FakeIncomingInvite]:
        invite = FakeIncomingInvite(PHONE_OFFER)
        call = InboundCall(invite=invite, caller="sip:carol@x", env=fake_env(self, **settings),
                           call_id="in", session_id="s", account=Account(), callee="alice",
                           visible_name=None, has_audio=True, has_video=False,
                           on_status=self.statuses.append, on_gone=lambda c: None,
                           notify=lambda m, p: None)
        call.start()
        self.addCleanup(self.clock.advance, 0)
        self.addCleanup(call.hangup)
        self.assertEqual(call.status, CallStatus.RING)
        return call, invite

    def test_a_lone_decline_answers_decline_status(self) -> None:
        call, invite = self.ringing()
        call.hangup()
        self.assertEqual(invite.rejected, 603)
        self.assertEqual((call.status, call.sip_status), (CallStatus.FINISH, 603))

    def test_a_busy_decline_answers_486_whatever_decline_status(self) -> None:
        for configured in (603, 486):
            with self.subTest(decline_status=configured):
                call, invite = self.ringing(decline_status=configured)
                decline_busy(call)
                call.hangup()
                self.assertEqual(invite.rejected, 486)
                self.assertEqual((call.status, call.sip_status, call.info),
                                 (CallStatus.FINISH, 486, "Declined"))

    def test_busy_on_an_answered_call_is_a_plain_hangup(self) -> None:
        call, invite = self.ringing()
        call.answer(browser_answer(call.browser_offer_text))
        self.assertEqual(call.status, CallStatus.ESTABLISHED)
        decline_busy(call)
        call.hangup()
        self.assertTrue(invite.terminated)  # a BYE, no final response
        self.assertIsNone(invite.rejected)

    def test_busy_means_nothing_to_other_calls(self) -> None:
        class Placed:
            decline_with = None

        placed = Placed()
        decline_busy(placed)
        self.assertIsNone(placed.decline_with)


class BusyParamTests(unittest.TestCase):
    """The ``busy`` param of ``hangup``: checked, then handed to the call layer."""

    def setUp(self) -> None:
        fake_call_setup(self)
        self.gateway = FakeGateway()
        self.gateway.open_session("s", RecordingListener())
        invite = FakeIncomingInvite(PHONE_OFFER)
        self.call = InboundCall(invite=invite, caller="sip:carol@x", env=fake_env(self),
                                call_id="in", session_id="s", account=Account(),
                                callee="alice", visible_name=None, has_audio=True,
                                has_video=False, on_status=lambda s: None,
                                on_gone=lambda c: None, notify=lambda m, p: None)
        found: list[tuple[str, str]] = []
        self.found = found
        call = self.call

        class Registry:
            def get(self, session_id: str, call_id: str) -> Any:
                found.append((session_id, call_id))
                return call

        self.gateway.registry = Registry()  # type: ignore[attr-defined]
        self.methods = SessionMethods(self.gateway, "s")  # type: ignore[arg-type]
        for call_id in ("in", "in-2"):  # the fake's own record of the session's calls
            self.gateway.calls[call_id] = {"session": "s", "callee": "alice", "incoming": True}

    def rpc(self, params: dict[str, Any]) -> dict[str, Any]:
        reply = self.methods.handle(Request("hangup", params, 1))
        assert reply is not None
        return dict(json.loads(reply))

    def hangups(self) -> list[tuple]:
        return [e for e in self.gateway.events.events if e[0] == "hangup"]

    def test_busy_true_marks_the_call_then_hangs_up(self) -> None:
        self.assertEqual(self.rpc({"callId": "in", "busy": True}).get("result"), {})
        self.assertEqual(self.found, [("s", "in")])
        self.assertEqual(self.call.decline_with, 486)
        self.assertEqual(self.hangups(), [("hangup", "s", "in")])

    def test_without_busy_hangup_is_unchanged(self) -> None:
        for params in ({"callId": "in"}, {"callId": "in-2", "busy": False}):
            self.assertEqual(self.rpc(params).get("result"), {})
        self.assertEqual(self.found, [])
        self.assertIsNone(self.call.decline_with)
        self.assertEqual(len(self.hangups()), 2)

    def test_busy_must_be_a_boolean(self) -> None:
        error = self.rpc({"callId": "in", "busy": "yes"})["error"]
        self.assertEqual((error["code"], error["data"]["field"]), (jsonrpc.INVALID_PARAMS, "busy"))
        self.assertEqual(self.hangups(), [])
        self.assertIsNone(self.call.decline_with)
