"""Session resume in the call layer, without sockets: the sans-IO ResumeBook and Relay, and the
gateway detaching a session whose socket went, resuming it with its token, and ending it when
the window is over — all on a task.Clock."""

from __future__ import annotations

import json
from typing import Any

from twisted.internet import task
from twisted.logger import LogLevel, globalLogPublisher
from twisted.trial import unittest

from tests.test_calls_gateway import TESTLINES, FakeCall, FakeSip, account
from tests.test_hooks import APP, FakePoster
from wcsgw.api import asking
from wcsgw.api.jsonrpc import Request
from wcsgw.api.methods import SessionMethods
from wcsgw.calls.errors import CallError, Codes
from wcsgw.calls.gateway import CallGateway
from wcsgw.calls.hooks.runtime import Hooks
from wcsgw.calls.policy import Policy
from wcsgw.calls.resume import Relay, ResumeBook, digest
from wcsgw.config import LimitsSettings
from wcsgw.sip.registration import Registered


class Heard:
    """A socket's listener that keeps everything it hears, in order."""

    def __init__(self) -> None:
        self.heard: list[tuple[str, Any]] = []
        self.superseded_count = 0

    def session_status(self, status: str, sip_status: int | None, info: str) -> None:
        self.heard.append(("sessionStatus", status))

    def call_status(self, call: dict[str, Any]) -> None:
        self.heard.append(("callStatus", (call["callId"], call["status"])))

    def notify(self, method: str, params: dict[str, Any]) -> None:
        self.heard.append((method, params.get("callId")))

    def superseded(self) -> None:
        self.superseded_count += 1


class ResumeBookTests(unittest.TestCase):
    def test_a_token_resumes_its_session_once(self) -> None:
        book = ResumeBook()
        token = book.issue("s1")
        self.assertGreaterEqual(len(token), 43)  # 256 bits, URL-safe
        self.assertEqual(book.take(token, now=0.0), "s1")
        self.assertIsNone(book.take(token, now=0.0))  # used up
        self.assertEqual(len(book), 0)

    def test_only_digests_are_kept(self) -> None:
        book = ResumeBook()
        token = book.issue("s1")
        kept = repr(vars(book))
        self.assertNotIn(token, kept)
        self.assertIn(digest(token), kept)

    def test_a_new_token_kills_the_old_one(self) -> None:
        book = ResumeBook()
        old = book.issue("s1")
        new = book.issue("s1")
        self.assertNotEqual(old, new)
        self.assertIsNone(book.take(old, now=0.0))
        self.assertEqual(book.take(new, now=0.0), "s1")

    def test_a_token_is_bound_to_its_session(self) -> None:
        book = ResumeBook()
        a, b = book.issue("a"), book.issue("b")
        self.assertEqual((book.take(b, 0.0), book.take(a, 0.0)), ("b", "a"))

    def test_the_window(self) -> None:
        book = ResumeBook()
        token = book.issue("s1")
        self.assertEqual(book.detach("s1", now=100.0, seconds=30.0), 130.0)
        self.assertEqual(book.expired(129.9), [])
        self.assertIsNone(book.take(token, now=130.0))  # over: left for expired()
        self.assertEqual(book.expired(130.0), ["s1"])
        self.assertEqual(book.expired(131.0), [])
        self.assertIsNone(book.take(token, now=0.0))

    def test_resumed_in_time_is_attached_again(self) -> None:
        book = ResumeBook()
        token = book.issue("s1")
        book.detach("s1", now=0.0, seconds=30.0)
        self.assertEqual(book.take(token, now=29.0), "s1")
        self.assertIsNone(book.deadline("s1"))
        self.assertEqual(book.expired(1000.0), [])

    def test_forget(self) -> None:
        book = ResumeBook()
        token = book.issue("s1")
        book.detach("s1", 0.0, 30.0)
        book.forget("s1")
        self.assertIsNone(book.take(token, 1.0))
        self.assertEqual(book.detached(), [])


class RelayTests(unittest.TestCase):
    def test_forwards_while_attached_and_queues_in_order_while_detached(self) -> None:
        first, second = Heard(), Heard()
        relay = Relay(first)
        relay.session_status("ESTABLISHED", None, "")
        self.assertIs(relay.detach(), first)
        relay.call_status({"callId": "c1", "status": "RING"})
        relay.notify("dtmf", {"callId": "c1"})
        relay.session_status("REGISTERED", 200, "")
        self.assertEqual(first.heard, [("sessionStatus", "ESTABLISHED")])
        self.assertIsNone(relay.attach(second))
        self.assertEqual(second.heard, [])  # nothing before flush
        self.assertEqual(relay.flush(), 0)
        self.assertEqual(second.heard, [("callStatus", ("c1", "RING")), ("dtmf", "c1"),
                                        ("sessionStatus", "REGISTERED")])
        self.assertEqual(relay.last_status, ("REGISTERED", 200, ""))

    def test_the_queue_is_bounded_keeping_the_newest(self) -> None:
        socket = Heard()
        relay = Relay(None, limit=3)
        for n in range(5):
            relay.notify("dtmf", {"callId": f"c{n}"})
        relay.attach(socket)
        self.assertEqual(relay.flush(), 2)
        self.assertEqual([call for _m, call in socket.heard], ["c2", "c3", "c4"])

    def test_an_overflow_is_logged_once(self) -> None:
        warnings: list[dict[str, Any]] = []

        def observe(event: dict[str, Any]) -> None:
            if event.get("log_level") == LogLevel.warn:
                warnings.append(event)

        globalLogPublisher.addObserver(observe)
        self.addCleanup(globalLogPublisher.removeObserver, observe)
        relay = Relay(None, limit=2, session_id="s1")
        for n in range(6):
            relay.notify("dtmf", {"callId": f"c{n}"})
        self.assertEqual([(w["session_id"], w["limit"]) for w in warnings], [("s1", 2)])
        self.assertEqual(relay.dropped, 4)

    def test_attach_over_a_live_socket_returns_it(self) -> None:
        old, new = Heard(), Heard()
        relay = Relay(old)
        self.assertIs(relay.attach(new), old)
        relay.notify("dtmf", {"callId": "c1"})
        self.assertEqual(old.heard, [])
        self.assertEqual(new.heard, [("dtmf", "c1")])

    def test_a_reply_that_waited_on_a_hook_runs_while_detached(self) -> None:
        relay = Relay(None)
        ran: list[int] = []
        relay.deliver(lambda: ran.append(1) or '{"reply": 1}')  # type: ignore[func-returns-value]
        self.assertEqual(ran, [1])


class GatewayResumeCase(unittest.TestCase):
    WINDOW = 30.0

    def setUp(self) -> None:
        self.clock = task.Clock()
        self.sip = FakeSip()
        self.gw = CallGateway(self.sip, Policy(["pbx.example"], TESTLINES), FakeCall,
                              limits=LimitsSettings(max_sessions=3, sessions_per_ip=2),
                              scheduler=self.clock)
        self.gw.resume_seconds = self.WINDOW
        self.socket = Heard()
        self.gw.open_session("s1", self.socket, peer="10.0.0.1")

    def connected(self, register: bool = True) -> str:
        self.gw.connect("s1", account(), register=register)
        return self.gw.auth_token("s1")

    def place(self, call_id: str) -> FakeCall:
        self.gw.call("s1", call_id=call_id, callee="1002", visible_name=None, has_audio=True,
                     has_video=False, sdp="v=0", sip_headers={})
        return self.gw.calls[call_id]

    def new_socket(self, session_id: str = "s2", peer: str = "10.0.0.9") -> Heard:
        socket = Heard()
        self.gw.open_session(session_id, socket, peer=peer)
        return socket

    def refused(self, code: int, fn: Any, *args: Any) -> CallError:
        with self.assertRaises(CallError) as caught:
            fn(*args)
        self.assertEqual(caught.exception.code, code, caught.exception.message)
        return caught.exception


class DetachTests(GatewayResumeCase):
    def test_a_dropped_socket_detaches_the_session_calls_and_registration_stay(self) -> None:
        self.connected()
        call = self.place("c1")
        contact = self.sip.contact_users[0]
        self.gw.close_session("s1")
        self.assertIn("s1", self.gw.sessions)
        self.assertFalse(call.hung_up)
        self.assertEqual(self.sip.unregistered, [])
        self.assertIs(self.gw.session_for_contact(contact), self.gw.sessions["s1"])
        self.assertEqual(self.gw.resumer.book.deadline("s1"), self.WINDOW)

    def test_the_window_over_ends_the_session_as_a_close_did(self) -> None:
        token = self.connected()
        call = self.place("c1")
        self.gw.close_session("s1")
        self.clock.advance(self.WINDOW - 0.1)
        self.assertFalse(call.hung_up)
        self.clock.advance(0.1)
        self.assertTrue(call.hung_up)
        self.assertEqual(len(self.sip.unregistered), 1)
        self.assertNotIn("s1", self.gw.sessions)
        self.assertEqual(self.gw.calls, {})
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.new_socket()
        self.refused(Codes.SESSION_EXPIRED, self.gw.resume, "s2", token)

    def test_resume_off_ends_at_once(self) -> None:
        self.gw.resume_seconds = 0
        self.connected()
        call = self.place("c1")
        self.gw.close_session("s1")
        self.assertTrue(call.hung_up)
        self.assertNotIn("s1", self.gw.sessions)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_a_session_that_never_connected_ends_at_once(self) -> None:
        self.gw.close_session("s1")
        self.assertNotIn("s1", self.gw.sessions)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_disconnect_kills_the_token(self) -> None:
        token = self.connected()
        self.gw.disconnect("s1")
        self.gw.close_session("s1")  # not connected: ends at once
        self.assertNotIn("s1", self.gw.sessions)
        self.new_socket()
        error = self.refused(Codes.SESSION_EXPIRED, self.gw.resume, "s2", token)
        self.assertEqual(error.field, "authToken")
        self.assertEqual(error.message, "Session expired or unknown authToken")

    def test_a_detached_session_still_counts_toward_the_limits(self) -> None:
        self.connected()
        self.gw.open_session("s2", Heard(), peer="10.0.0.1")
        self.gw.close_session("s1")
        self.refused(Codes.TOO_MANY_SESSIONS, self.gw.admit_session, "10.0.0.1")
        self.gw.open_session("s3", Heard(), peer="10.0.0.2")
        self.refused(Codes.TOO_MANY_SESSIONS, self.gw.admit_session, "10.0.0.3")  # max 3

    def test_stopping_ends_detached_sessions_and_leaves_no_timer(self) -> None:
        self.connected()
        call = self.place("c1")
        self.gw.close_session("s1")
        self.gw.hangup_all()
        self.assertTrue(call.hung_up)
        self.assertNotIn("s1", self.gw.sessions)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        # and a socket that drops now ends its session at once
        other = self.new_socket()
        self.gw.connect("s2", None, register=False)
        self.gw.close_session("s2")
        self.assertNotIn("s2", self.gw.sessions)
        self.assertEqual(other.heard, [("sessionStatus", "ESTABLISHED")])


class ResumeTests(GatewayResumeCase):
    def test_queued_notifications_in_order_then_the_reannouncement(self) -> None:
        token = self.connected()
        call = self.place("c1")
        other = self.place("c2")
        self.gw.close_session("s1")
        call.on_status({"callId": "c1", "status": "RING"})
        call.notify("dtmf", {"callId": "c1"})
        [(_account, registration_listener)] = self.sip.registered
        registration_listener(Registered(expires=600, contact="sip:x"))
        other.on_status({"callId": "c2", "status": "ESTABLISHED"})
        before = list(self.socket.heard)
        fresh = self.new_socket()
        renamed: list[str] = []
        session_id, new_token = self.gw.resume("s2", token, renamed.append)
        self.assertEqual(session_id, "s1")
        self.assertEqual(renamed, ["s1"])
        self.assertNotEqual(new_token, token)
        self.assertEqual(self.socket.heard, before)  # the old socket heard nothing more
        self.assertEqual(fresh.heard, [
            ("callStatus", ("c1", "RING")), ("dtmf", "c1"), ("sessionStatus", "REGISTERED"),
            ("callStatus", ("c2", "ESTABLISHED")),
            # the re-announcement: the session's status, then every live call as it is now
            ("sessionStatus", "REGISTERED"),
            ("callStatus", ("c1", "ESTABLISHED")), ("callStatus", ("c2", "ESTABLISHED")),
        ])
        # the fresh session is gone; the resumed one is attached: no timer, calls up
        self.assertEqual(sorted(self.gw.sessions), ["s1"])
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.clock.advance(self.WINDOW * 2)
        self.assertFalse(call.hung_up)
        # what happens now goes straight to the new socket
        call.on_status({"callId": "c1", "status": "HOLD"})
        self.assertEqual(fresh.heard[-1], ("callStatus", ("c1", "HOLD")))

    def test_tokens_are_single_use(self) -> None:
        token = self.connected()
        self.gw.close_session("s1")
        self.new_socket()
        _sid, new_token = self.gw.resume("s2", token)
        self.new_socket("s3")
        self.refused(Codes.SESSION_EXPIRED, self.gw.resume, "s3", token)
        self.assertIn("s3", self.gw.sessions)  # a refused resume keeps the fresh session
        self.gw.close_session("s1")
        self.assertEqual(self.gw.resume("s3", new_token)[0], "s1")

    def test_unknown_token(self) -> None:
        self.connected()
        self.new_socket()
        self.refused(Codes.SESSION_EXPIRED, self.gw.resume, "s2", "not-a-token")

    def test_a_connected_socket_cannot_resume(self) -> None:
        token = self.connected()
        self.gw.close_session("s1")
        self.new_socket()
        self.gw.connect("s2", None, register=False)
        self.refused(Codes.BAD_STATE, self.gw.resume, "s2", token)
        self.new_socket("s3", peer="10.0.0.8")
        self.assertEqual(self.gw.resume("s3", token)[0], "s1")  # the token was not used up

    def test_after_a_resume_the_session_counts_under_the_new_address(self) -> None:
        token = self.connected()
        self.gw.close_session("s1")
        self.new_socket(peer="10.0.0.7")
        self.gw.resume("s2", token)
        self.assertEqual(self.gw.sessions["s1"].peer, "10.0.0.7")
        self.gw.admit_session("10.0.0.1")  # the old address has no session left
        self.gw.open_session("s4", Heard(), peer="10.0.0.7")
        self.refused(Codes.TOO_MANY_SESSIONS, self.gw.admit_session, "10.0.0.7")

    def test_resume_over_a_half_open_socket_closes_it(self) -> None:
        token = self.connected()
        self.place("c1")
        fresh = self.new_socket()
        self.gw.resume("s2", token)  # s1's socket never said it closed
        self.assertEqual(self.socket.superseded_count, 1)
        heard_before = len(self.socket.heard)
        self.gw.calls["c1"].on_status({"callId": "c1", "status": "HOLD"})
        self.assertEqual(len(self.socket.heard), heard_before)
        self.assertEqual(fresh.heard[-1], ("callStatus", ("c1", "HOLD")))

    def test_detached_twice_resumed_twice(self) -> None:
        token = self.connected()
        call = self.place("c1")
        for n in range(2, 4):
            self.gw.close_session("s1")
            self.clock.advance(self.WINDOW - 1)
            self.new_socket(f"s{n}")
            _sid, token = self.gw.resume(f"s{n}", token)
        self.clock.advance(self.WINDOW + 1)
        self.assertFalse(call.hung_up)
        self.gw.close_session("s1")
        self.clock.advance(self.WINDOW)
        self.assertTrue(call.hung_up)

    def test_an_incoming_call_to_a_detached_session_is_queued(self) -> None:
        token = self.connected()
        made: list[Any] = []

        def inbound(**kw: Any) -> FakeCall:
            call = FakeCall(**kw)
            made.append(call)
            return call

        self.gw.inbound_factory = inbound
        self.gw.close_session("s1")
        request = type("Req", (), {})()
        party = type("Party", (), {"uri": type("U", (), {"user": "1002"})(),
                                   "display_name": None})()
        request.from_, request.to = party, party
        self.gw.take_incoming(self.gw.sessions["s1"], object(), request)
        [call] = made
        call.notify("incomingCall", {"callId": call.call_id})
        fresh = self.new_socket()
        self.gw.resume("s2", token)
        self.assertEqual(fresh.heard[0], ("incomingCall", call.call_id))
        self.assertIn(("callStatus", (call.call_id, "ESTABLISHED")), fresh.heard)


class HookedSessionTests(GatewayResumeCase):
    """A session under an ``[[apps]]`` app: its backend heard every event as it happened, so
    a resume tells it nothing new; the resumed socket speaks for the same app."""

    def test_the_app_hears_nothing_new_and_stays_the_sessions(self) -> None:
        self.gw.hooks = Hooks([APP], FakePoster(), self.clock)
        notices: list[str] = []
        notice = self.gw.hooks.notice

        def counted(*args: Any) -> None:
            notices.append(args[2])
            notice(*args)

        self.gw.hooks.notice = counted  # type: ignore[method-assign]
        asking.tap(self.gw, "s1", APP)
        token = self.connected(register=False)
        call = self.place("c1")
        self.gw.close_session("s1")
        call.on_status({"callId": "c1", "status": "RING"})
        self.assertEqual(notices, ["sessionStatus", "callStatus"])  # as it happened
        fresh = self.new_socket()
        methods = SessionMethods(self.gw, "s2")
        reply = json.loads(methods.handle(Request("connect", {"authToken": token}, 1)) or "")
        self.assertEqual(reply["result"]["sessionId"], "s1")
        self.assertIs(methods.app, APP)
        self.assertEqual(fresh.heard, [("callStatus", ("c1", "RING")),
                                       ("sessionStatus", "ESTABLISHED"),
                                       ("callStatus", ("c1", "ESTABLISHED"))])
        self.assertEqual(notices, ["sessionStatus", "callStatus"])  # nothing new
        methods.handle(Request("disconnect", {}, 2))
        self.assertIsNone(methods.app)
        self.assertTrue(call.hung_up)
