"""Server-held accounts ([[accounts]] name) on the sans-IO side: the AccountBook, a session
bound by name (no REGISTER of its own, no password toward the browser), calls on it, and a
REST call on one, with the SIP side and the calls faked.  The real-peer test (Kamailio, the
JSON-RPC WebSocket) is test_accounts_kamailio.py."""

from __future__ import annotations

from twisted.trial import unittest

from tests.test_calls_gateway import FakeCall, FakeSip, Listener
from wcsgw.calls.accounts import AccountBook
from wcsgw.calls.errors import CallError, Codes
from wcsgw.calls.gateway import CallGateway
from wcsgw.calls.policy import Policy
from wcsgw.sip.account import SipAccount

TESTLINES = "sip:{user}@127.0.0.1:5999"
SECRET = "s3cret-Pa55"


def shared() -> SipAccount:
    return SipAccount(login="office", password=SECRET, domain="trunk.example")


class AccountBookTests(unittest.TestCase):
    def test_named_and_unknown(self) -> None:
        office = shared()
        book = AccountBook([("office", office)])
        self.assertIs(book.named("office"), office)
        self.assertEqual(list(book), ["office"])
        self.assertIn("office", book)
        with self.assertRaises(CallError) as caught:
            book.named("nope")
        self.assertEqual(caught.exception.code, Codes.INVALID)
        self.assertEqual(caught.exception.field, "account")
        self.assertIn("'nope'", caught.exception.message)
        self.assertIn("known: office", caught.exception.message)
        self.assertNotIn(SECRET, caught.exception.message)

    def test_empty_book_says_none_configured(self) -> None:
        with self.assertRaises(CallError) as caught:
            AccountBook().named("office")
        self.assertIn("none are configured", caught.exception.message)

    def test_duplicate_names_refused(self) -> None:
        with self.assertRaises(ValueError):
            AccountBook([("a", shared()), ("a", shared())])

    def test_name_of_and_contact(self) -> None:
        office = shared()
        book = AccountBook([("office", office)])
        self.assertEqual(book.name_of(office), "office")
        self.assertIsNone(book.name_of(shared()))  # an equal account a browser brought
        self.assertIsNone(book.name_of(None))
        self.assertEqual(book.for_contact("office"), "office")
        self.assertIsNone(book.for_contact("office-1a2b3c4d"))


class ConnectNamedTests(unittest.TestCase):
    def setUp(self) -> None:
        self.sip = FakeSip()
        # The trunk's domain is not in allowed_domains: a server-held account is the
        # operator's own, so its servers are not checked; destinations still are.
        self.policy = Policy(["pbx.example"], TESTLINES, denied_numbers=["900.*"])
        self.calls: list[FakeCall] = []

        def factory(**kw: object) -> FakeCall:
            call = FakeCall(**kw)
            self.calls.append(call)
            return call

        self.gw = CallGateway(self.sip, self.policy, factory)
        self.gw.file_call_factory = factory
        self.office = shared()
        self.gw.accounts = AccountBook([("office", self.office)])

    def open(self, sid: str) -> Listener:
        listener = Listener()
        self.gw.open_session(sid, listener)
        return listener

    def call(self, sid: str, callee: str) -> str:
        return self.gw.call(sid, call_id=None, callee=callee, visible_name=None,
                            has_audio=True, has_video=False, sdp="v=0", sip_headers={})

    def test_two_sessions_share_one_account_without_registering(self) -> None:
        a, b = self.open("a"), self.open("b")
        self.gw.connect_named("a", "office")
        self.gw.connect_named("b", "office")
        self.assertEqual(self.sip.registered, [])  # the service's registration serves all
        self.assertEqual(a.statuses, [("ESTABLISHED", None)])
        self.assertEqual(b.statuses, [("ESTABLISHED", None)])
        self.assertEqual(self.gw.sessions["a"].account_name, "office")
        self.call("a", "+49 30 1234")
        self.call("b", "1002")
        self.assertEqual([c.account for c in self.calls], [self.office, self.office])
        self.assertEqual([c.request_uri for c in self.calls],
                         ["sip:+49301234@trunk.example", "sip:1002@trunk.example"])

    def test_destinations_still_checked(self) -> None:
        self.open("a")
        self.gw.connect_named("a", "office")
        with self.assertRaises(CallError) as caught:
            self.call("a", "9001")
        self.assertEqual(caught.exception.code, Codes.FORBIDDEN)
        with self.assertRaises(CallError) as caught:
            self.call("a", "sip:x@premium.example")
        self.assertEqual(caught.exception.code, Codes.FORBIDDEN)

    def test_unknown_name_leaves_the_session_unconnected(self) -> None:
        listener = self.open("a")
        with self.assertRaises(CallError) as caught:
            self.gw.connect_named("a", "other")
        self.assertEqual(caught.exception.field, "account")
        self.assertFalse(self.gw.sessions["a"].connected)
        self.assertEqual(listener.statuses, [])

    def test_twice_and_disconnect(self) -> None:
        self.open("a")
        self.gw.connect_named("a", "office")
        with self.assertRaises(CallError) as caught:
            self.gw.connect_named("a", "office")
        self.assertEqual(caught.exception.code, Codes.BAD_STATE)
        self.gw.disconnect("a")
        session = self.gw.sessions["a"]
        self.assertEqual((session.account, session.account_name, session.connected),
                         (None, None, False))
        self.assertEqual(self.sip.unregistered, [])  # nothing of the shared one is undone

    def test_rest_startup_on_a_server_held_account(self) -> None:
        call_id = self.gw.startup(call_id=None, callee="5551234", account=self.office)
        self.assertEqual(self.calls[-1].account, self.office)
        self.assertEqual(self.calls[-1].request_uri, "sip:5551234@trunk.example")
        self.assertEqual(self.calls[-1].call_id, call_id)
        # An equal account that is not the server-held one is checked as a browser's.
        with self.assertRaises(CallError):
            self.gw.startup(call_id=None, callee="5551234", account=shared())


class AccountNameConfigTests(unittest.TestCase):
    """``[[accounts]] name``: optional, a plain token, unique; bad ones name the key."""

    def parse(self, *accounts: dict[str, object]) -> object:
        from wcsgw.config import parse_config

        return parse_config({"accounts": list(accounts)})

    def refused(self, *accounts: dict[str, object]) -> str:
        from wcsgw.config import ConfigError

        with self.assertRaises(ConfigError) as caught:
            self.parse(*accounts)
        return str(caught.exception)

    def test_default_is_no_name(self) -> None:
        config = self.parse({"login": "a", "domain": "x.example"})
        self.assertEqual(config.accounts[0].name, "")  # type: ignore[attr-defined]

    def test_names(self) -> None:
        config = self.parse({"name": "office", "login": "a", "domain": "x.example"},
                            {"login": "b", "domain": "x.example"},
                            {"login": "c", "domain": "x.example"})
        self.assertEqual([a.name for a in config.accounts],  # type: ignore[attr-defined]
                         ["office", "", ""])

    def test_bad_and_duplicate_names_name_the_key(self) -> None:
        self.assertTrue(self.refused({"name": "a b", "login": "a", "domain": "x"})
                        .startswith("accounts[0].name: must be 1-64 letters"))
        self.assertTrue(self.refused({"name": "-x", "login": "a", "domain": "x"})
                        .startswith("accounts[0].name:"))
        self.assertTrue(self.refused({"name": 5, "login": "a", "domain": "x"})
                        .startswith("accounts[0].name: must be a string"))
        message = self.refused({"name": "o", "login": "a", "domain": "x"},
                               {"name": "o", "login": "b", "domain": "x"})
        self.assertTrue(message.startswith("accounts[1].name: duplicate of accounts[0].name"),
                        message)


class RestAccountTests(unittest.TestCase):
    """REST ``call/startup`` with ``account``: the server-held account, no credentials in the
    request or the reply; refusals name the field."""

    def setUp(self) -> None:
        from tests.test_api_rest import FakeCallGateway, serve_rest

        self.office = shared()
        self.gateway = FakeCallGateway()
        self.gateway.accounts = AccountBook([("office", self.office)])  # type: ignore[attr-defined]
        self.base = serve_rest(self, self.gateway)

    async def post(self, body: dict[str, object]) -> object:
        from tests.test_api_rest import request

        return await request(self, self.base + "/call/startup", body)

    def test_startup_on_a_named_account(self) -> None:
        async def run() -> None:
            reply = await self.post({"callee": "+49301234", "account": "office"})
            self.assertEqual(reply.status, 200, reply.raw)  # type: ignore[attr-defined]
            method, kwargs = self.gateway.log[-1]
            self.assertEqual(method, "startup")
            self.assertIs(kwargs["account"], self.office)
            self.assertNotIn(SECRET.encode(), reply.raw)  # type: ignore[attr-defined]
        return defer_run(run())

    def test_unknown_and_mixed_are_400_naming_account(self) -> None:
        async def run() -> None:
            for body, words in (
                ({"callee": "1", "account": "other"}, "known: office"),
                ({"callee": "1", "account": "office", "sipLogin": "x", "sipDomain": "d.example"},
                 "cannot be used with sipLogin"),
                ({"callee": "1", "account": "a b"}, "must be the name of a server-held account"),
            ):
                reply = await self.post(body)
                self.assertEqual(reply.status, 400, body)  # type: ignore[attr-defined]
                error = reply.json  # type: ignore[attr-defined]
                self.assertEqual(error["field"], "account")
                self.assertIn(words, error["error"])
            self.assertEqual(self.gateway.log, [])
        return defer_run(run())


def defer_run(coro: object) -> object:
    from twisted.internet import defer

    return defer.ensureDeferred(coro)  # type: ignore[arg-type]
