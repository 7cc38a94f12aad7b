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
        self.contact_users: list = []

    def register(self, account, listener=None, contact_user=None):
        self.contact_users.append(contact_user)
        handle = (account, listener)
        self.registered.append(handle)
        return handle

    def unregister(self, handle) -> None:
        self.unregistered.append(handle)


class FakeCall:
    def __init__(self, **kw) -> None:
        self.__dict__.update(kw)
        self.started = self.hung_up = False
        self.actions: list = []

    def start(self) -> None:
        self.started = True

    def hangup(self) -> None:
        self.hung_up = True
        self.on_gone(self)

    def hold(self) -> None:
        self.actions.append(("hold",))

    def unhold(self) -> None:
        self.actions.append(("unhold",))

    def send_dtmf(self, digits, method) -> None:
        self.actions.append(("dtmf", digits, method))

    def transfer(self, uri, replaces_call=None) -> None:
        self.actions.append(("transfer", uri, replaces_call))

    def describe(self):
        return {"callId": self.call_id, "sessionId": self.session_id, "callee": self.callee,
                "status": "ESTABLISHED"}


class Listener:
    def __init__(self) -> None:
        self.statuses: list = []
        self.infos: list = []
        self.calls: list = []

    def session_status(self, status, sip_status, info) -> None:
        self.statuses.append((status, sip_status))
        self.infos.append(info)

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
        # The session registers a contact of its own, by which incoming calls find it.
        [contact_user] = self.sip.contact_users
        self.assertTrue(contact_user.startswith("1001-"))
        self.assertIs(self.gw.session_for_contact(contact_user), self.gw.sessions["s1"])
        listener(Registered(expires=600, contact="sip:x"))
        listener(RegistrationFailed(status=403, reason="Forbidden", auth=True))
        listener(RegistrationFailed(status=None, reason="timeout", auth=False))
        self.assertEqual(self.listener.statuses[1:], [
            ("REGISTERED", 200), ("AUTHENTICATION_FAIL", 403), ("FAILED", None)])

    def test_a_registration_lost_after_success_is_not_a_failed_login(self) -> None:
        """A PBX restarting: the refresh fails with a retry on its way.  UNREGISTERED (the
        SDK keeps the session), not FAILED (the SDK would end it); back to REGISTERED after."""
        self.gw.connect("s1", account(), register=True)
        [(_, listener)] = self.sip.registered
        listener(RegistrationFailed(status=None, reason="timeout", auth=False, retry_in=2.0))
        listener(Registered(expires=600, contact="sip:x"))  # before: a failed login ...
        listener(RegistrationFailed(status=503, reason="503 Service Unavailable", auth=False,
                                    retry_in=1.6))  # ... after: lost for now
        listener(Registered(expires=600, contact="sip:x"))
        self.assertEqual(self.listener.statuses[1:], [
            ("FAILED", None), ("REGISTERED", 200), ("UNREGISTERED", 503), ("REGISTERED", 200)])
        self.assertEqual(self.listener.infos[3],
                         "Registration lost (503 Service Unavailable); retrying in 2 s")

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
        contact_user = self.sip.contact_users[0]
        self.gw.close_session("s1")
        self.assertIsNone(self.gw.session_for_contact(contact_user))
        self.assertTrue(call.hung_up)
        self.assertEqual(self.gw.calls, {})
        self.assertEqual(len(self.sip.unregistered), 1)

    def test_hangup_unknown_call(self) -> None:
        self.gw.connect("s1", None, register=False)
        with self.assertRaises(CallError) as caught:
            self.gw.hangup("s1", "nope")
        self.assertEqual(caught.exception.code, Codes.UNKNOWN_CALL)


class InCallFunctionTests(unittest.TestCase):
    place = GatewayTests.place

    def setUp(self) -> None:
        GatewayTests.setUp(self)  # type: ignore[arg-type]
        self.gw.connect("s1", account(), register=False)
        self.a = self.gw.calls[self.place("a", "1002")]
        self.b = self.gw.calls[self.place("b", "1003")]

    def test_hold_unhold_dtmf_reach_the_call(self) -> None:
        self.gw.hold("s1", "a")
        self.gw.unhold(None, "a")  # the operator (REST) may act on any call
        self.gw.send_dtmf("s1", "a", "12#d", "info")
        self.assertEqual(self.a.actions, [("hold",), ("unhold",), ("dtmf", "12#D", "INFO")])

    def test_dtmf_validated(self) -> None:
        for digits, kind, field in (("12x", "RFC2833", "dtmf"), ("", "RFC2833", "dtmf"),
                                    ("1", "SMOKE", "type")):
            with self.assertRaises(CallError) as caught:
                self.gw.send_dtmf("s1", "a", digits, kind)
            self.assertEqual(caught.exception.field, field)

    def test_other_sessions_calls_are_not_found(self) -> None:
        self.gw.open_session("s2", Listener())
        with self.assertRaises(CallError) as caught:
            self.gw.hold("s2", "a")
        self.assertEqual(caught.exception.code, Codes.UNKNOWN_CALL)

    def test_blind_and_attended_transfer(self) -> None:
        self.gw.transfer("s1", "a", "1004")
        self.gw.transfer("s1", "a", "b")  # another call of the session: attended
        self.assertEqual(self.a.actions, [("transfer", "sip:1004@pbx.example", None),
                                          ("transfer", "sip:1003@pbx.example", self.b)])
        with self.assertRaises(CallError):
            self.gw.transfer("s1", "a", "sip:x@evil.example")  # policy applies to targets

    def test_find(self) -> None:
        self.assertEqual([c["callId"] for c in self.gw.find_all()], ["a", "b"])
        self.assertEqual([c["callId"] for c in self.gw.find({"callee": "1003"})], ["b"])
        self.assertEqual(self.gw.find({"callee": "nobody"}), [])
        self.gw.terminate("b")
        self.assertTrue(self.b.hung_up)
        with self.assertRaises(CallError):
            self.gw.terminate("b")
