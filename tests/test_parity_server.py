"""WCS parity on the gateway's side (issue 18, Deliver 5): ``sipHeaders`` in WCS's array form
(one reader for the browser's ``call`` and a hook's reply), ``sipVisibleName`` in ``connect`` as
the From display name of the session's calls, and ``holdForTransfer`` (the ``hold`` param and
the call object's one field for both meanings).

Sans-IO: the session's methods against tests/test_api_fakes.FakeGateway (with the real
outbound policy), a real :class:`~wcsgw.calls.call.Call` with the fakes of tests/call_fakes.py
on a task.Clock (tests/test_calls_hold.HoldCase), the INVITE builder on its own.
"""

from __future__ import annotations

import json
from typing import Any

from twisted.trial import unittest

from tests.test_api_methods import OFFER, SESSION, MethodsTestCase
from tests.test_calls_hold import HoldCase
from wcsgw.api import asking, jsonrpc
from wcsgw.calls.callobject import call_object
from wcsgw.calls.errors import CallError
from wcsgw.calls.hooks.replies import read_reply
from wcsgw.calls.policy import Policy
from wcsgw.calls.status import CallStatus
from wcsgw.sip.account import SipAccount
from wcsgw.sip.digest import DigestClient
from wcsgw.sip.initialinvite import InitialInvite


class SipHeadersArrayTests(MethodsTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.assertResult(self.rpc("connect"))

    def call(self, headers: Any) -> dict[str, Any]:
        return self.rpc("call", {"callee": "echo", "sdp": OFFER, "sipHeaders": headers})

    def test_array_form_is_the_object_form(self) -> None:
        self.assertResult(self.call(["X-Tenant: acme", "X-Ref:  a: b c ", "x-empty:"]))
        kwargs = self.gateway_calls("call")[0][2]
        self.assertEqual(kwargs["sip_headers"], {"X-Tenant": "acme", "X-Ref": "a: b c",
                                                 "x-empty": ""})

    def test_empty_array_is_no_header(self) -> None:
        self.assertResult(self.call([]))
        self.assertEqual(self.gateway_calls("call")[0][2]["sip_headers"], {})

    def test_a_bad_entry_is_named_by_its_index(self) -> None:
        cases = [
            ([7], "sipHeaders[0]", "string"),
            (["X-A: b", "X-B"], "sipHeaders[1]", "Name: value"),
            ([": value"], "sipHeaders[0]", "Name: value"),
            (["X-A: b\r\nVia: evil"], "sipHeaders[0]", "control"),
            (["X-A: b\x00"], "sipHeaders[0]", "control"),
            (["Bad Name: b"], "sipHeaders[0]", "header name"),
            (["X-A: 1", "Call-ID: forged"], "sipHeaders[1]", "set by the gateway"),
            (["P-Asserted-Identity: <sip:boss@pbx.example>"], "sipHeaders[0]", "asserted"),
            (["Subject: hi"], "sipHeaders[0]", "allowed_headers"),
            (["X-A: 1", "x-a: 2"], "sipHeaders[1]", "repeats"),
            ([f"X-{i}: v" for i in range(40)], "sipHeaders", "too many"),
        ]
        for headers, field, words in cases:
            with self.subTest(headers=headers):
                error = self.assertError(self.call(headers), jsonrpc.INVALID_PARAMS, field)
                self.assertIn(words, error["message"])
        self.assertEqual(self.gateway_calls("call"), [])

    def test_allow_list_applies_to_the_array(self) -> None:
        self.gateway.policy = Policy([], None, allowed_headers=["Subject"])
        self.assertResult(self.call(["Subject: hello"]))
        self.assertEqual(self.gateway_calls("call")[0][2]["sip_headers"], {"Subject": "hello"})


class HookReplyHeadersTests(unittest.TestCase):
    """A ``call`` hook's reply may give ``sipHeaders`` either way; the same reader checks it."""

    def decision(self, headers: Any) -> Any:
        return read_reply("call", 200, json.dumps({"sipHeaders": headers}).encode())

    def test_array_reply_replaces_the_headers(self) -> None:
        decision = self.decision(["X-Tenant: acme"])
        self.assertTrue(decision.allowed)
        gateway = type("G", (), {"policy": Policy([], None)})()
        changed = asking.call_change(gateway, {"sip_headers": {"X-Old": "1"}}, decision)
        self.assertEqual(changed["sip_headers"], {"X-Tenant": "acme"})

    def test_bad_array_reply_refuses(self) -> None:
        self.assertFalse(self.decision(["X-A: b", 3]).allowed)
        gateway = type("G", (), {"policy": Policy([], None)})()
        with self.assertRaises(CallError) as caught:
            asking.call_change(gateway, {}, self.decision(["Via: evil"]))
        self.assertIn("sipHeaders", caught.exception.message)


class VisibleNameTests(MethodsTestCase):
    def test_sip_visible_name_is_the_accounts_display_name(self) -> None:
        self.assertResult(self.rpc("connect", {
            "sipLogin": "1001", "sipPassword": "x", "sipDomain": "pbx.example.com",
            "sipVisibleName": " Alice Example "}))
        (_, session, account, _), = self.gateway_calls("connect")
        self.assertEqual(session, SESSION)
        self.assertEqual(account.display_name, "Alice Example")

    def test_no_sip_visible_name_is_none(self) -> None:
        self.assertResult(self.rpc("connect", {"sipLogin": "1001", "sipDomain": "pbx.example.com"}))
        self.assertIsNone(self.gateway_calls("connect")[0][2].display_name)

    def test_bad_sip_visible_name_names_the_field(self) -> None:
        for value in (["A"], "A\r\nVia: x", "A" * 300):
            with self.subTest(value=value):
                self.assertError(self.rpc("connect", {
                    "sipLogin": "1001", "sipDomain": "pbx.example.com",
                    "sipVisibleName": value}), jsonrpc.INVALID_PARAMS, "sipVisibleName")

    def invite_from(self, account: SipAccount, display: str | None) -> str:
        invites = InitialInvite(account, DigestClient(account.credentials()),
                                "sip:1002@pbx.example.com", b"", display_name=display,
                                extra_headers=[], contact="sip:1001@127.0.0.1", call_id="c",
                                local_tag="t")
        value = invites.build().headers.get("From")
        assert value is not None
        return value

    def test_display_name_is_quoted_and_escaped_in_from(self) -> None:
        account = SipAccount(login="1001", domain="pbx.example.com")
        self.assertEqual(self.invite_from(account, 'Al "the" \\ Boss'),
                         '"Al \\"the\\" \\\\ Boss" <sip:1001@pbx.example.com>;tag=t')
        self.assertEqual(self.invite_from(account, None), "<sip:1001@pbx.example.com>;tag=t")


class HoldForTransferTests(HoldCase):
    def test_hold_for_transfer_shows_once_held_until_unhold(self) -> None:
        call = self.established()
        call.hold(for_transfer=True)
        self.assertFalse(call.hold_for_transfer)  # the SIP side has not agreed yet
        self.phone_answers_our_reoffer(call, "recvonly")
        self.assertEqual(call.status, CallStatus.HOLD)
        self.assertTrue(call.hold_for_transfer)
        self.assertTrue(call_object(call)["holdForTransfer"])
        self.assertTrue(self.statuses[-1]["holdForTransfer"])  # the HOLD callStatus says so
        call.unhold()
        self.assertFalse(call.hold_for_transfer)
        self.phone_answers_our_reoffer(call, "sendrecv")
        self.assertEqual(call.status, CallStatus.ESTABLISHED)
        self.assertFalse(call_object(call)["holdForTransfer"])

    def test_a_plain_hold_is_not_for_transfer(self) -> None:
        call = self.established()
        call.hold()
        self.phone_answers_our_reoffer(call, "recvonly")
        self.assertEqual(call.status, CallStatus.HOLD)
        self.assertFalse(call.hold_for_transfer)
        call.hold(for_transfer=True)  # already held: now marked, no new re-INVITE needed
        self.assertTrue(call.hold_for_transfer)


class HoldParamTests(MethodsTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.assertResult(self.rpc("connect"))
        self.assertResult(self.rpc("call", {"callee": "echo", "sdp": OFFER, "callId": "c-1"}))
        self.listener.heard.clear()

    def test_hold_for_transfer_reaches_the_gateway(self) -> None:
        self.assertEqual(self.assertResult(self.rpc(
            "hold", {"callId": "c-1", "holdForTransfer": True})), {})
        self.assertEqual(self.gateway_calls("hold"), [("hold", SESSION, "c-1", "for_transfer")])
        self.assertTrue(self.listener.heard[-1][1]["holdForTransfer"])

    def test_plain_hold_and_false_are_the_old_hold(self) -> None:
        self.assertResult(self.rpc("hold", {"callId": "c-1"}))
        self.assertResult(self.rpc("hold", {"callId": "c-1", "holdForTransfer": False}))
        self.assertEqual(self.gateway_calls("hold"), [("hold", SESSION, "c-1")] * 2)

    def test_bad_hold_for_transfer_names_the_field(self) -> None:
        self.assertError(self.rpc("hold", {"callId": "c-1", "holdForTransfer": "yes"}),
                         jsonrpc.INVALID_PARAMS, "holdForTransfer")
        self.assertEqual(self.gateway_calls("hold"), [])
