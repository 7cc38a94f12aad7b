"""Session resume over a real WebSocket: build_site on a free loopback port, Autobahn's Twisted
client, the real CallGateway with the SIP side and calls faked (tests.test_calls_gateway).

The first socket is cut with ``abortConnection`` (no close frame: what a network change or a
proxy does); a second connection resumes with the token and must get the same session, a new
token, what was queued in order, then the re-announcement.  The resume window runs on a
task.Clock, so its end is a clock step, not a wait."""

from __future__ import annotations

import json
from typing import Any

from twisted.internet import task
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial import unittest

from tests.support import EventLog, inline
from tests.test_api_fakes import listen_site, ws_connect
from tests.test_calls_gateway import TESTLINES, FakeCall, FakeSip
from wcsgw.api.ws import RESUMED_ELSEWHERE
from wcsgw.calls.errors import Codes
from wcsgw.calls.gateway import CallGateway
from wcsgw.calls.policy import Policy
from wcsgw.sip.registration import Registered

ACCOUNT = {"sipLogin": "1001", "sipPassword": "pw", "sipDomain": "pbx.example"}
WINDOW = 30


class ResumeOverWebSocketTests(unittest.TestCase):
    def setUp(self) -> None:
        self.clock = task.Clock()
        self.sip = FakeSip()
        self.gateway = CallGateway(self.sip, Policy(["pbx.example"], TESTLINES), FakeCall,
                                   scheduler=self.clock)
        self.gateway.resume_seconds = WINDOW
        self.closes = EventLog()  # the server side heard a socket close
        close_session = self.gateway.close_session

        def closing(session_id: str) -> None:
            close_session(session_id)
            self.closes(session_id)

        self.gateway.close_session = closing  # type: ignore[method-assign]
        self.port = listen_site(self, self.gateway, ping_interval=30.0)
        self.addCleanup(self.gateway.hangup_all)  # no resume timer outlives a test

    async def connected_with_call(self) -> tuple[Any, dict[str, Any], FakeCall]:
        ws = await ws_connect(self, self.port)
        result = (await ws.request("connect", ACCOUNT))["result"]
        placed = await ws.request("call", {"callId": "c1", "callee": "1002", "sdp": "v=0"})
        self.assertEqual(placed["result"], {"callId": "c1"})
        return ws, result, self.gateway.calls["c1"]

    async def cut(self, ws: Any, session_id: str) -> None:
        """Drop the TCP connection without a close frame; wait until the gateway knows."""
        ws.protocol.transport.abortConnection()
        await self.closes.wait_for(lambda sid: sid == session_id)

    @inline
    async def test_abort_then_resume_on_a_new_connection(self) -> None:
        ws, first, call = await self.connected_with_call()
        session_id, token = first["sessionId"], first["authToken"]
        self.assertEqual(first["resumeSeconds"], WINDOW)
        self.assertGreaterEqual(len(token), 43)
        await self.cut(ws, session_id)
        self.assertFalse(call.hung_up)
        self.assertEqual(self.sip.unregistered, [])
        # While detached: the call rings on, a digit arrives, the registration answers.
        call.on_status({"callId": "c1", "status": "RING"})
        call.notify("dtmf", {"callId": "c1", "dtmf": "5", "type": "RFC2833"})
        [(_account, registration)] = self.sip.registered
        registration(Registered(expires=600, contact="sip:x"))

        again = await ws_connect(self, self.port)
        reply = await again.request("connect", {"authToken": token})
        result = reply["result"]
        self.assertEqual(result["sessionId"], session_id)
        self.assertTrue(result["resumed"])
        self.assertEqual(result["resumeSeconds"], WINDOW)
        self.assertNotEqual(result["authToken"], token)
        await again.notification("callStatus", callId="c1", status="ESTABLISHED")
        after = again.frames.events[again.frames.events.index(reply) + 1:]
        self.assertEqual([(f["method"], f["params"].get("status") or f["params"].get("dtmf"))
                          for f in after], [
            ("callStatus", "RING"), ("dtmf", "5"), ("sessionStatus", "REGISTERED"),
            ("sessionStatus", "REGISTERED"), ("callStatus", "ESTABLISHED")])
        self.assertTrue(all(f["params"]["sessionId"] == session_id
                            for f in after if f["method"] == "sessionStatus"))
        # One session only: the new socket's own fresh session was dropped.
        self.assertEqual(list(self.gateway.sessions), [session_id])
        # The resumed socket controls the call; the window is over and nothing ends.
        self.clock.advance(WINDOW * 2)
        self.assertFalse(call.hung_up)
        self.assertEqual((await again.request("hangup", {"callId": "c1"}))["result"], {})
        self.assertTrue(call.hung_up)
        self.assertEqual((await again.request("ping", {"anything": 1}))["result"], {})

    @inline
    async def test_no_resume_within_the_window_ends_the_session(self) -> None:
        ws, first, call = await self.connected_with_call()
        await self.cut(ws, first["sessionId"])
        self.clock.advance(WINDOW - 1)
        self.assertFalse(call.hung_up)
        self.clock.advance(1)
        self.assertTrue(call.hung_up)
        self.assertEqual(len(self.sip.unregistered), 1)
        late = await ws_connect(self, self.port)
        error = (await late.request("connect", {"authToken": first["authToken"]}))["error"]
        self.assertEqual((error["code"], error["data"]), (Codes.SESSION_EXPIRED,
                                                           {"field": "authToken"}))
        self.assertEqual(error["message"], "Session expired or unknown authToken")

    @inline
    async def test_bad_token_leaves_the_socket_usable(self) -> None:
        ws = await ws_connect(self, self.port)
        error = (await ws.request("connect", {"authToken": "forged"}))["error"]
        self.assertEqual(error["code"], Codes.SESSION_EXPIRED)
        mixed = (await ws.request("connect", {"authToken": "forged", "sipLogin": "1001"}))["error"]
        self.assertEqual((mixed["code"], mixed["data"]), (-32602, {"field": "sipLogin"}))
        typed = (await ws.request("connect", {"authToken": 7}))["error"]
        self.assertEqual((typed["code"], typed["data"]), (-32602, {"field": "authToken"}))
        fresh = (await ws.request("connect", ACCOUNT))["result"]
        self.assertNotIn("resumed", fresh)
        self.assertEqual(len(self.gateway.sessions), 1)

    @inline
    async def test_a_used_token_does_not_work_twice(self) -> None:
        ws, first, _call = await self.connected_with_call()
        await self.cut(ws, first["sessionId"])
        second = await ws_connect(self, self.port)
        await second.request("connect", {"authToken": first["authToken"]})
        third = await ws_connect(self, self.port)
        error = (await third.request("connect", {"authToken": first["authToken"]}))["error"]
        self.assertEqual(error["code"], Codes.SESSION_EXPIRED)

    @inline
    async def test_resume_while_the_old_socket_is_open_closes_it_with_4001(self) -> None:
        ws, first, call = await self.connected_with_call()
        again = await ws_connect(self, self.port)
        result = (await again.request("connect", {"authToken": first["authToken"]}))["result"]
        self.assertEqual(result["sessionId"], first["sessionId"])
        code, reason = await ws.closed
        self.assertEqual((code, reason), (RESUMED_ELSEWHERE, "resumed elsewhere"))
        heard = len(ws.frames.events)
        call.on_status({"callId": "c1", "status": "HOLD"})
        await again.notification("callStatus", callId="c1", status="HOLD")
        self.assertEqual(len(ws.frames.events), heard)
        self.assertFalse(call.hung_up)  # the old socket's close did not end the session
        self.assertIn(first["sessionId"], self.gateway.sessions)

    @inline
    async def test_no_token_in_any_log_line(self) -> None:
        logged: list[str] = []

        def observe(event: dict[str, Any]) -> None:
            logged.append(formatEvent(event) + repr(event))

        globalLogPublisher.addObserver(observe)
        self.addCleanup(globalLogPublisher.removeObserver, observe)
        ws, first, _call = await self.connected_with_call()
        await self.cut(ws, first["sessionId"])
        again = await ws_connect(self, self.port)
        result = (await again.request("connect", {"authToken": first["authToken"]}))["result"]
        await again.request("connect", {"authToken": first["authToken"]})  # refused: used
        await again.request("disconnect")
        tokens = (first["authToken"], result["authToken"])
        self.assertTrue(any("resumed" in line for line in logged), logged)
        for line in logged:
            for token in tokens:
                self.assertNotIn(token, line)
        self.assertNotIn(tokens[0], json.dumps(list(self.gateway.resumer.book.__dict__.values()),
                                                 default=repr))

    @inline
    async def test_metrics_count_a_detached_session_apart(self) -> None:
        from wcsgw.api.metrics import session_families

        def states() -> dict[str, float]:
            [family] = [f for f in session_families(self.gateway)
                        if f.name == "wcsgw_websocket_sessions"]
            return {dict(labels)["state"]: v for _, labels, v in family.samples}

        ws, first, call = await self.connected_with_call()
        self.assertEqual(states(), {"connected": 1, "detached": 0, "open": 0})
        await self.cut(ws, first["sessionId"])
        self.assertEqual(states(), {"connected": 0, "detached": 1, "open": 0})
        again = await ws_connect(self, self.port)
        await again.request("connect", {"authToken": first["authToken"]})
        self.assertEqual(states(), {"connected": 1, "detached": 0, "open": 0})

    @inline
    async def test_a_stopping_gateway_ends_attached_sessions_with_a_normal_close(self) -> None:
        from wcsgw.calls.lifecycle import say_goodbye

        ws, first, call = await self.connected_with_call()
        self.gateway.hangup_all()
        say_goodbye(self.gateway)
        status = await ws.notification("sessionStatus", status="DISCONNECTED")
        self.assertEqual(status["params"]["info"], "Gateway stopped")
        # 1000: the Web SDK ends the session at once instead of resuming it for 30 s
        self.assertEqual((await ws.closed)[0], 1000)
        self.assertTrue(call.hung_up)
