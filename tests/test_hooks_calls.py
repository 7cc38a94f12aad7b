"""The hooks where they meet the call layer, without HTTP (a fake poster, a task.Clock): the
tap that tells the app what the browser is told, a decision that never answers (refused when
the app's timeout passes), what a ``call`` reply may change (checked like the browser's own
values), and a far end's REFER put to the app (``transferRequest``) after the policy."""

from __future__ import annotations

import json
from typing import Any

from twisted.internet import task
from twisted.trial import unittest

from tests.call_fakes import fake_env
from tests.test_calls_refer import (
    ACCOUNT,
    ALLOWED,
    CHROME_OFFER,
    PHONE_ANSWER,
    ReferCase,
    ReferInvite,
)
from tests.test_hooks import APP, FakePoster
from wcsgw.api import asking
from wcsgw.calls.errors import CallError
from wcsgw.calls.hooks.replies import REFUSED, Decision
from wcsgw.calls.hooks.runtime import Hooks
from wcsgw.calls.hooks.taps import HookTap
from wcsgw.calls.outbound import OutboundCall
from wcsgw.calls.policy import Policy
from wcsgw.calls.status import CallStatus
from wcsgw.sip.invite import Answered


class Heard:
    """The browser's side of the tap: what it was told, in order."""

    def __init__(self) -> None:
        self.heard: list[tuple[str, Any]] = []

    def session_status(self, status: str, sip_status: int | None, info: str) -> None:
        self.heard.append(("sessionStatus", status))

    def call_status(self, call: dict[str, Any]) -> None:
        self.heard.append(("callStatus", call["status"]))

    def notify(self, method: str, params: dict[str, Any]) -> None:
        self.heard.append((method, params))


class TapTests(unittest.TestCase):
    def setUp(self) -> None:
        self.clock = task.Clock()
        self.poster = FakePoster()
        self.inner = Heard()
        self.tap = HookTap(self.inner, Hooks([APP], self.poster, self.clock), APP, "s-1")

    def test_browser_first_then_the_app_in_order_per_call(self) -> None:
        self.tap.session_status("ESTABLISHED", None, "")
        self.tap.call_status({"callId": "c1", "status": "TRYING", "sdp": "v=0..."})
        self.tap.call_status({"callId": "c1", "status": "ESTABLISHED"})
        self.tap.notify("dtmf", {"callId": "c1", "dtmf": "5", "type": "RFC2833"})
        self.tap.notify("incomingCall", {"callId": "c2"})  # not a notice event
        self.assertEqual([h[0] for h in self.inner.heard],
                         ["sessionStatus", "callStatus", "callStatus", "dtmf", "incomingCall"])
        # one in flight per key: the session's and call c1's first
        self.assertEqual([e["event"] for e in self.poster.events()],
                         ["sessionStatus", "callStatus"])
        self.assertNotIn("sdp", self.poster.events()[1])
        self.poster.posts[1][2].callback((200, b""))
        self.poster.posts[2][2].callback((200, b""))
        events = self.poster.events()
        self.assertEqual([(e["event"], e.get("status", e.get("dtmf"))) for e in events[1:]],
                         [("callStatus", "TRYING"), ("callStatus", "ESTABLISHED"),
                          ("dtmf", "5")])
        self.assertTrue(all(e["sessionId"] == "s-1" and e["appKey"] == "shop" for e in events))

    def test_a_decision_never_answered_is_refused_when_the_timeout_passes(self) -> None:
        results: list[Decision] = []
        self.tap.ask("transferRequest", {"callId": "c1", "target": "x"}).addCallback(
            results.append)
        self.clock.advance(APP.timeout - 0.1)
        self.assertEqual(results, [])
        self.clock.advance(0.1)
        self.assertEqual((results[0].allowed, results[0].error), (False, REFUSED))
        self.assertTrue(self.poster.posts[0][2].called)  # the request was cancelled


class GatewayLike:
    def __init__(self) -> None:
        self.policy = Policy(["127.0.0.1"])

        class Book:
            def named(self, name: str, field: str = "account") -> Any:
                if name != "office":
                    raise CallError(1000, "no such account", field)
                return ACCOUNT
        self.accounts = Book()


class CallChangeTests(unittest.TestCase):
    ARGS = {"call_id": "c1", "callee": "sales", "visible_name": None, "has_audio": True,
            "has_video": False, "sdp": "v=0", "sip_headers": {"X-Shop": "1"}}

    def change(self, **changes: Any) -> dict[str, Any]:
        return asking.call_change(GatewayLike(), self.ARGS, Decision(True, "", changes))

    def test_changes_replace_the_browsers_values(self) -> None:
        changed = self.change(callee=" 1002 ", visibleName="Shop", sipHeaders={"X-Order": "7"},
                              account="office")
        self.assertEqual((changed["callee"], changed["visible_name"], changed["sip_headers"]),
                         ("1002", "Shop", {"X-Order": "7"}))
        self.assertIs(changed["account"], ACCOUNT)

    def test_a_change_the_policy_would_refuse_for_the_browser_refuses(self) -> None:
        for changes in ({"sipHeaders": {"P-Asserted-Identity": "<sip:boss@x>"}},
                        {"account": "nobody"}, {"callee": "  "}):
            with self.assertRaises(CallError) as caught:
                self.change(**changes)
            self.assertIn(REFUSED, caught.exception.message, changes)

    def test_refusal_carries_the_backends_text(self) -> None:
        with self.assertRaises(CallError) as caught:
            asking.call_change(GatewayLike(), self.ARGS, Decision(False, "Closed on Sundays"))
        self.assertEqual((caught.exception.code, caught.exception.message),
                         (1004, "Closed on Sundays"))


class TransferRequestTests(ReferCase):
    """A far end's REFER: the policy first (never asked about a refused target), then the
    session's app, then ``policy.incoming_transfers`` as always."""

    def established_with_app(self, mode: str = "accept") -> OutboundCall:
        self.hook_clock = task.Clock()
        self.poster = FakePoster()
        tap = HookTap(Heard(), Hooks([APP], self.poster, self.hook_clock), APP, "s")
        env = fake_env(self, incoming_transfers=mode, transfer_timeout=15.0,
                       policy=Policy(["127.0.0.1"]), make_invite=ReferInvite)
        call = OutboundCall(env=env, call_id="c1", session_id="s", account=ACCOUNT,
                            request_uri="sip:1002@127.0.0.1", callee="1002", visible_name=None,
                            has_audio=True, has_video=False, browser_offer=CHROME_OFFER,
                            sip_headers={}, on_status=lambda d: None, on_gone=lambda c: None,
                            notify=tap.notify)
        self.addCleanup(self.close, call)
        call.start()
        call.sip.heard(Answered(PHONE_ANSWER))
        self.assertEqual(call.status, CallStatus.ESTABLISHED)
        self.dialog: ReferInvite = call.invite  # type: ignore[assignment]
        return call

    def asked(self) -> list[dict[str, Any]]:
        return [e for e in self.poster.events() if e["event"] == "transferRequest"]

    def test_refused_by_the_app_is_403_and_nothing_dialled(self) -> None:
        self.established_with_app()
        self.dialog.receive_refer(ALLOWED)
        self.assertEqual(self.dialog.refer_answers, [])  # waiting on the app
        [asked] = self.asked()
        self.assertEqual((asked["callId"], asked["target"]), ("c1", ALLOWED))
        self.poster.posts[-1][2].callback((403, json.dumps({"error": "no"}).encode()))
        self.assertEqual(self.dialog.refer_answers, [(403, "Forbidden (refused by application)")])
        self.assertEqual(self.dialled(), [])

    def test_allowed_by_the_app_then_incoming_transfers_decides(self) -> None:
        self.established_with_app(mode="accept")
        self.dialog.receive_refer(ALLOWED)
        self.poster.posts[-1][2].callback((200, b"{}"))
        self.assertEqual(self.dialog.refer_answers, [(202, None)])
        self.assertEqual(self.dialled(), [ALLOWED])

    def test_a_target_the_policy_refuses_is_never_put_to_the_app(self) -> None:
        self.established_with_app()
        self.dialog.receive_refer("sip:+19005550199@evil.example")
        self.assertEqual(self.dialog.refer_answers[0][0], 403)
        self.assertEqual(self.asked(), [])

    def test_no_answer_from_the_app_refuses(self) -> None:
        self.established_with_app()
        self.dialog.receive_refer(ALLOWED)
        self.hook_clock.advance(APP.timeout)
        self.assertEqual(self.dialog.refer_answers, [(403, "Forbidden (refused by application)")])

