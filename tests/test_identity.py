"""Caller identity for trunks (issue 14 item 6, RFC 3325): P-Asserted-Identity and Privacy
come from the operator's ``[[accounts]]`` only, and a browser (or REST caller) can never set
them, whatever ``policy.allowed_headers`` lists."""

from __future__ import annotations

from typing import Any

from twisted.trial import unittest

from tests.test_calls_gateway import FakeCall, FakeSip, Listener
from wcsgw.calls.accounts import AccountBook
from wcsgw.calls.errors import CallError, Codes
from wcsgw.calls.gateway import CallGateway
from wcsgw.calls.policy import Policy
from wcsgw.calls.trunks import Trunks
from wcsgw.sip.account import SipAccount
from wcsgw.sip.initialinvite import InitialInvite

PAI = "sip:+441234567890@trunk.example"
RFC3325 = ("P-Asserted-Identity", "P-Preferred-Identity", "Privacy")


def office() -> SipAccount:
    return SipAccount(login="gw", password="pw-Secret", domain="trunk.example")


class PolicyTests(unittest.TestCase):
    def test_never_allowed_even_when_listed_exactly_or_by_prefix(self) -> None:
        for allowed in (list(RFC3325), ["p-asserted-identity", "privacy", "p-preferred-identity"],
                        ["P-*", "Priv*", "X-*"], ["*"]):
            policy = Policy([], None, allowed_headers=allowed)
            for name in RFC3325 + ("p-asserted-identity", "PRIVACY"):
                with self.subTest(allowed=allowed, name=name):
                    with self.assertRaises(CallError) as caught:
                        policy.outgoing_headers({name: "<sip:boss@trunk.example>"})
                    self.assertEqual(caught.exception.code, Codes.INVALID)
                    self.assertEqual(caught.exception.field, f"sipHeaders.{name}")
                    self.assertIn("asserted_identity", caught.exception.message)
        # the rule is for those three only: other listed headers still pass
        policy = Policy([], None, allowed_headers=["X-*", "Remote-Party-ID"])
        self.assertEqual(policy.outgoing_headers({"X-A": "1", "Remote-Party-ID": "<sip:a@b>"}),
                         {"X-A": "1", "Remote-Party-ID": "<sip:a@b>"})


class GatewayTests(unittest.TestCase):
    def setUp(self) -> None:
        self.calls: list[FakeCall] = []

        def factory(**kw: Any) -> FakeCall:
            call = FakeCall(**kw)
            self.calls.append(call)
            return call

        # an operator who (wrongly) lists them: still refused from the browser
        self.gw = CallGateway(FakeSip(), Policy([], "sip:{user}@127.0.0.1:5999",
                                                allowed_headers=["X-*", *RFC3325]), factory)
        self.gw.file_call_factory = factory
        self.office = office()
        self.gw.accounts = AccountBook([("office", self.office)])
        self.gw.trunks = Trunks()
        self.gw.trunks.add("office", self.office, asserted_identity=PAI, privacy="id")
        self.gw.open_session("a", Listener())
        self.gw.connect_named("a", "office")

    def call(self, headers: dict[str, str]) -> str:
        return self.gw.call("a", call_id=None, callee="5551234", visible_name=None,
                            has_audio=True, has_video=False, sdp="v=0", sip_headers=headers)

    def test_account_identity_added_to_the_call(self) -> None:
        self.call({"X-Tenant": "acme"})
        self.gw.startup(call_id=None, callee="5551234", account=self.office)
        for call in self.calls:
            self.assertEqual(call.sip_headers["P-Asserted-Identity"], f"<{PAI}>")
            self.assertEqual(call.sip_headers["Privacy"], "id")
        self.assertEqual(self.calls[0].sip_headers["X-Tenant"], "acme")

    def test_a_rest_call_handed_to_the_session_carries_it_too(self) -> None:
        def handed(**kw: Any) -> FakeCall:
            call = FakeCall(sip_headers={}, **kw)  # as OfferedCall: its INVITE goes on answer
            self.calls.append(call)
            return call

        self.gw.handed_call_factory = handed
        self.gw.startup(call_id=None, callee="5551234", account=None, session_id="a")
        (call,) = self.calls
        self.assertIs(call.account, self.office)
        self.assertEqual(call.sip_headers, {"P-Asserted-Identity": f"<{PAI}>", "Privacy": "id"})

    def test_browser_identity_refused_and_nothing_started(self) -> None:
        for name in RFC3325:
            with self.subTest(name=name), self.assertRaises(CallError) as caught:
                self.call({name: "<sip:boss@trunk.example>"})
            self.assertEqual(caught.exception.field, f"sipHeaders.{name}")
        self.assertEqual(self.calls, [])

    def test_a_browsers_own_account_gets_no_identity(self) -> None:
        self.gw.disconnect("a")
        self.gw.policy = Policy(["pbx.example"], None)
        self.gw.connect("a", SipAccount(login="1001", domain="pbx.example"), register=False)
        self.call({})
        self.assertNotIn("P-Asserted-Identity", self.calls[0].sip_headers)
        self.assertNotIn("Privacy", self.calls[0].sip_headers)


class InviteBytesTests(unittest.TestCase):
    def test_pai_and_privacy_in_the_invite(self) -> None:
        trunks = Trunks()
        trunks.add("office", office(), asserted_identity=PAI, privacy="id;critical")
        headers = trunks.outgoing("office", {"X-Tenant": "acme"})
        account = office()
        invite = InitialInvite(account, account.digest_client(),
                               "sip:5551234@trunk.example", b"v=0\r\n", display_name=None,
                               extra_headers=list(headers.items()),
                               contact="sip:gw@127.0.0.1:5060", call_id="c1", local_tag="t1")
        request = invite.build()
        data = request.to_bytes()
        self.assertIn(f"\r\nP-Asserted-Identity: <{PAI}>\r\n".encode(), data)
        self.assertIn(b"\r\nPrivacy: id;critical\r\n", data)
        self.assertEqual(data.count(b"P-Asserted-Identity"), 1)
        self.assertIn("sip:gw@trunk.example", request.headers.get("From"))  # From unchanged
