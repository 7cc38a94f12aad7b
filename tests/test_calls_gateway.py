"""Sessions, policy and the call registry of the B2BUA, with the SIP side and calls faked."""

from __future__ import annotations

from twisted.trial import unittest

from wcsgw.calls.errors import CallError, Codes
from wcsgw.calls.gateway import CallGateway
from wcsgw.calls.policy import Policy
from wcsgw.sip.account import SipAccount
from wcsgw.sip.registration import Registered, RegistrationFailed

TESTLINES = "sip:{user}@127.0.0.1:5999"


class FakeSip:
    def __init__(self) -> None:
        self.registered: list = []
        self.unregistered: list = []

    def register(self, account, listener=None):
        handle = (account, listener)
        self.registered.append(handle)
        return handle

    def unregister(self, handle) -> None:
        self.unregistered.append(handle)


class FakeCall:
    def __init__(self, **kw) -> None:
        self.__dict__.update(kw)
        self.started = self.hung_up = False

    def start(self) -> None:
        self.started = True

    def hangup(self) -> None:
        self.hung_up = True
        self.on_gone(self)


class Listener:
    def __init__(self) -> None:
        self.statuses: list = []
        self.calls: list = []

    def session_status(self, status, sip_status, info) -> None:
        self.statuses.append((status, sip_status))

    def call_status(self, call) -> None:
        self.calls.append(call)


def account(domain: str = "pbx.example", proxy: str | None = None) -> SipAccount:
    return SipAccount(login="1001", password="pw", domain=domain, outbound_proxy=proxy)


class PolicyTests(unittest.TestCase):
    def setUp(self) -> None:
        self.policy = Policy(["PBX.example", "[::1]"], TESTLINES)

    def test_domains_and_proxies_checked(self) -> None:
        self.policy.check_account(account())
        self.policy.check_account(account(domain="::1"))
        for bad in (account(domain="evil.example"), account(proxy="evil.example")):
            with self.assertRaises(CallError) as caught:
                self.policy.check_account(bad)
            self.assertEqual(caught.exception.code, Codes.FORBIDDEN)
        self.assertEqual(self.policy.request_uri(account(), "+4930123"), "sip:+4930123@pbx.example")

    def test_full_uris_must_name_allowed_hosts(self) -> None:
        self.assertEqual(self.policy.request_uri(account(), "sip:alice@pbx.example"),
                         "sip:alice@pbx.example")
        with self.assertRaises(CallError) as caught:
            self.policy.request_uri(account(), "sip:alice@premium-rate.example")
        self.assertEqual(caught.exception.field, "callee")
        self.assertEqual(self.policy.request_uri(account(), "tel:+4930123"),
                         "sip:+4930123@pbx.example;user=phone")

    def test_user_part_is_escaped_or_refused(self) -> None:
        with self.assertRaises(CallError):
            self.policy.request_uri(account(), "a@evil.example")  # would change the host
        with self.assertRaises(CallError):
            self.policy.request_uri(account(), "")

    def test_test_lines_without_account(self) -> None:
        self.policy.check_account(None)
        self.assertEqual(self.policy.request_uri(None, "echo"), "sip:echo@127.0.0.1:5999")
        with self.assertRaises(CallError):
            self.policy.request_uri(None, "1002")
        with self.assertRaises(CallError):
            Policy([], None).check_account(None)

    def test_safe_default_allows_nothing_else(self) -> None:
        with self.assertRaises(CallError):
            Policy([], TESTLINES).check_account(account())


class GatewayTests(unittest.TestCase):
    def setUp(self) -> None:
        self.sip = FakeSip()
        self.gw = CallGateway(self.sip, Policy(["pbx.example"], TESTLINES), FakeCall)
        self.listener = Listener()
        self.gw.open_session("s1", self.listener)

    def place(self, call_id=None, callee="1002"):
        return self.gw.call("s1", call_id=call_id, callee=callee, visible_name=None,
                            has_audio=True, has_video=False, sdp="v=0", sip_headers={})

    def test_connect_registers_and_maps_events(self) -> None:
        self.gw.connect("s1", account(), register=True)
        self.assertEqual(self.listener.statuses, [("ESTABLISHED", None)])
        [(_, listener)] = self.sip.registered
        listener(Registered(expires=600, contact="sip:x"))
        listener(RegistrationFailed(status=403, reason="Forbidden", auth=True))
        listener(RegistrationFailed(status=None, reason="timeout", auth=False))
        self.assertEqual(self.listener.statuses[1:], [
            ("REGISTERED", 200), ("AUTHENTICATION_FAIL", 403), ("FAILED", None)])

    def test_forbidden_domain_refused_before_anything(self) -> None:
        with self.assertRaises(CallError) as caught:
            self.gw.connect("s1", account(domain="evil.example"), register=True)
        self.assertEqual(caught.exception.field, "sipDomain")
        self.assertEqual(self.sip.registered, [])
        self.assertEqual(self.listener.statuses, [])

    def test_calls_registered_unique_and_ended_with_session(self) -> None:
        with self.assertRaises(CallError) as caught:
            self.place()
        self.assertEqual(caught.exception.code, Codes.NOT_CONNECTED)
        self.gw.connect("s1", account(), register=True)
        call_id = self.place("c1")
        self.assertEqual(call_id, "c1")
        call = self.gw.calls["c1"]
        self.assertTrue(call.started)
        self.assertEqual(call.request_uri, "sip:1002@pbx.example")
        with self.assertRaises(CallError) as caught:
            self.place("c1")
        self.assertEqual(caught.exception.code, Codes.DUPLICATE_CALL)
        generated = self.place()
        self.assertEqual(len(generated), 16)
        self.gw.close_session("s1")
        self.assertTrue(call.hung_up)
        self.assertEqual(self.gw.calls, {})
        self.assertEqual(len(self.sip.unregistered), 1)

    def test_hangup_unknown_call(self) -> None:
        self.gw.connect("s1", None, register=False)
        with self.assertRaises(CallError) as caught:
            self.gw.hangup("s1", "nope")
        self.assertEqual(caught.exception.code, Codes.UNKNOWN_CALL)
