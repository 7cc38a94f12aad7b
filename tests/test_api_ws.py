"""The JSON-RPC WebSocket at /ws, for real: build_site on a free port, Autobahn's Twisted client,
the fake gateway.  Checks the session lifecycle (open -> connect -> close_session), ordering of
responses and notifications, and that bad frames are answered without closing the socket."""

from __future__ import annotations

import enum
from typing import Any

from twisted.trial import unittest

from tests.support import inline
from tests.test_api_fakes import FakeGateway, http_get, listen_site, ws_connect
from wcsgw.api import jsonrpc
from wcsgw.calls.gateway import CallError, Codes
from wcsgw.calls.status import CallStatus, SessionStatus

OFFER = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"


class WebSocketTestCase(unittest.TestCase):
    def setUp(self) -> None:
        self.gateway = FakeGateway()
        self.port = listen_site(self, self.gateway, ping_interval=30.0)

    async def session_id_of_new_connection(self, connection: Any) -> str:
        opened = await self.gateway.events.wait_for(lambda e: e[0] == "open_session")
        return opened[1]


class SessionLifecycleTests(WebSocketTestCase):
    @inline
    async def test_connect_returns_session_id_then_established(self) -> None:
        ws = await ws_connect(self, self.port)
        response = await ws.request("connect", {"sipDomain": ""})
        self.assertEqual(set(response), {"jsonrpc", "id", "result"})
        session_id = response["result"]["sessionId"]
        self.assertIn(session_id, self.gateway.listeners)
        status = await ws.notification("sessionStatus")
        self.assertEqual(status["params"], {"sessionId": session_id, "status": "ESTABLISHED",
                                            "sipStatus": None, "info": ""})
        self.assertNotIn("id", status)
        # The fake reports ESTABLISHED from inside connect(); the response still went first.
        frames = ws.frames.events
        self.assertLess(frames.index(response), frames.index(status))

    @inline
    async def test_registered_account(self) -> None:
        ws = await ws_connect(self, self.port)
        response = await ws.request("connect", {"sipLogin": "1001", "sipPassword": "pw",
                                                "sipDomain": "pbx.example.com"})
        self.assertIn("result", response)
        registered = await ws.notification("sessionStatus", status="REGISTERED")
        self.assertEqual(registered["params"]["sipStatus"], 200)

    @inline
    async def test_closing_the_socket_closes_the_session(self) -> None:
        ws = await ws_connect(self, self.port)
        session_id = (await ws.request("connect"))["result"]["sessionId"]
        await ws.close()
        closed = await self.gateway.events.wait_for(lambda e: e[0] == "close_session")
        self.assertEqual(closed, ("close_session", session_id))
        # Exactly once, and the gateway can still report into the gone session harmlessly.
        self.assertEqual([e for e in self.gateway.events.events if e[0] == "close_session"], [closed])

    @inline
    async def test_close_session_even_without_connect(self) -> None:
        ws = await ws_connect(self, self.port)
        opened = await self.gateway.events.wait_for(lambda e: e[0] == "open_session")
        await ws.close()
        closed = await self.gateway.events.wait_for(lambda e: e[0] == "close_session")
        self.assertEqual(closed[1], opened[1])

    @inline
    async def test_each_connection_is_its_own_session(self) -> None:
        first = await ws_connect(self, self.port)
        second = await ws_connect(self, self.port)
        a = (await first.request("connect"))["result"]["sessionId"]
        b = (await second.request("connect"))["result"]["sessionId"]
        self.assertNotEqual(a, b)
        self.assertGreaterEqual(len(a), 32)  # random, not guessable
        await first.close()
        await self.gateway.events.wait_for(lambda e: e == ("close_session", a))
        # The other session is untouched and still answers.
        self.assertIn("result", await second.request("disconnect"))

    @inline
    async def test_disconnect_keeps_the_socket_for_a_new_connect(self) -> None:
        ws = await ws_connect(self, self.port)
        await ws.request("connect")
        self.assertEqual((await ws.request("disconnect"))["result"], {})
        await ws.notification("sessionStatus", status="DISCONNECTED")
        self.assertFalse(ws.closed.called)

    @inline
    async def test_listener_after_close_is_ignored(self) -> None:
        ws = await ws_connect(self, self.port)
        session_id = (await ws.request("connect"))["result"]["sessionId"]
        listener = self.gateway.listeners[session_id]
        await ws.close()
        await self.gateway.events.wait_for(lambda e: e[0] == "close_session")
        listener.session_status("DISCONNECTED", None, "")  # must not raise
        listener.call_status({"callId": "x", "status": "FINISH"})

    @inline
    async def test_gateway_refusing_the_session_closes_with_1011(self) -> None:
        self.gateway.fail["open_session"] = RuntimeError("no sessions today")
        ws = await ws_connect(self, self.port)
        code, _reason = await ws.closed
        self.assertEqual(code, 1011)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertFalse([e for e in self.gateway.events.events if e[0] == "close_session"])


class CallTests(WebSocketTestCase):
    @inline
    async def test_call_then_hangup(self) -> None:
        ws = await ws_connect(self, self.port)
        await ws.request("connect")
        response = await ws.request("call", {"callId": "c-1", "callee": "echo", "sdp": OFFER,
                                             "hasAudio": True, "hasVideo": False})
        self.assertEqual(response["result"], {"callId": "c-1"})
        new = await ws.notification("callStatus", callId="c-1", status="NEW")
        self.assertEqual(new["params"]["callee"], "echo")
        self.assertLess(ws.frames.events.index(response), ws.frames.events.index(new))
        self.assertEqual((await ws.request("hangup", {"callId": "c-1"}))["result"], {})
        finish = await ws.notification("callStatus", callId="c-1", status="FINISH")
        self.assertEqual(finish["params"]["info"], "Normal call clearing")

    @inline
    async def test_status_enums_and_sdp_bytes_go_out_as_strings(self) -> None:
        ws = await ws_connect(self, self.port)
        session_id = (await ws.request("connect"))["result"]["sessionId"]
        listener = self.gateway.listeners[session_id]
        listener.session_status(SessionStatus.REGISTERED, 200, "")
        listener.call_status({"callId": "c", "status": CallStatus.ESTABLISHED, "sipStatus": 200,
                              "info": "", "incoming": False, "caller": "a", "callee": "b",
                              "sdp": b"v=0\r\n"})
        registered = await ws.notification("sessionStatus", status="REGISTERED")
        self.assertEqual(registered["params"]["sessionId"], session_id)
        established = await ws.notification("callStatus", status="ESTABLISHED")
        self.assertEqual(established["params"]["sdp"], "v=0\r\n")

    @inline
    async def test_call_error_reaches_the_client_with_field(self) -> None:
        ws = await ws_connect(self, self.port)
        await ws.request("connect")
        self.gateway.fail["call"] = CallError(Codes.FORBIDDEN, "Forbidden destination", "callee")
        response = await ws.request("call", {"callee": "sip:x@evil.example", "sdp": OFFER})
        self.assertEqual(response["error"], {"code": Codes.FORBIDDEN, "message": "Forbidden destination",
                                             "data": {"field": "callee"}})

    @inline
    async def test_invalid_params_name_the_field(self) -> None:
        ws = await ws_connect(self, self.port)
        response = await ws.request("call", {"callee": "echo"})
        self.assertEqual(response["error"]["code"], jsonrpc.INVALID_PARAMS)
        self.assertEqual(response["error"]["data"], {"field": "sdp"})


class InCallTests(WebSocketTestCase):
    """hold/unhold/transfer/sendDtmf over the socket, and the dtmf/transferStatus notifications
    the call layer sends through the listener's notify()."""

    async def established_call(self) -> tuple[Any, Any]:
        ws = await ws_connect(self, self.port)
        session_id = (await ws.request("connect"))["result"]["sessionId"]
        await ws.request("call", {"callId": "c-1", "callee": "1002", "sdp": OFFER})
        listener = self.gateway.listeners[session_id]
        listener.call_status(self.gateway.call_dict("c-1", "ESTABLISHED", sipStatus=200))
        await ws.notification("callStatus", callId="c-1", status="ESTABLISHED")
        return ws, listener

    @inline
    async def test_hold_then_unhold(self) -> None:
        ws, _listener = await self.established_call()
        response = await ws.request("hold", {"callId": "c-1"})
        self.assertEqual(response["result"], {})
        held = await ws.notification("callStatus", callId="c-1", status="HOLD")
        # The fake reports HOLD from inside hold(); the response still went first.
        self.assertLess(ws.frames.events.index(response), ws.frames.events.index(held))
        self.assertEqual((await ws.request("unhold", {"callId": "c-1"}))["result"], {})

        def statuses() -> list[str]:
            return [f["params"]["status"] for f in ws.frames.events if f.get("method") == "callStatus"]

        await ws.frames.wait_for(lambda f: statuses()[-2:] == ["HOLD", "ESTABLISHED"])
        self.assertEqual(statuses(), ["NEW", "ESTABLISHED", "HOLD", "ESTABLISHED"])
        self.assertEqual([e[0] for e in self.gateway.events.events if e[0] in ("hold", "unhold")],
                         ["hold", "unhold"])

    @inline
    async def test_send_dtmf_and_transfer_reach_the_gateway(self) -> None:
        ws, _listener = await self.established_call()
        self.assertEqual((await ws.request("sendDtmf", {"callId": "c-1", "dtmf": "12#", "type": "INFO"}))["result"], {})
        self.assertEqual((await ws.request("transfer", {"callId": "c-1", "target": "1003"}))["result"], {})
        mine = [e for e in self.gateway.events.events if e[0] in ("send_dtmf", "transfer")]
        session_id = mine[0][1]
        self.assertEqual(mine, [("send_dtmf", session_id, "c-1", "12#", "INFO"),
                                ("transfer", session_id, "c-1", "1003")])

    @inline
    async def test_bad_dtmf_and_unknown_call(self) -> None:
        ws, _listener = await self.established_call()
        response = await ws.request("sendDtmf", {"callId": "c-1", "dtmf": "12x"})
        self.assertEqual((response["error"]["code"], response["error"]["data"]),
                         (jsonrpc.INVALID_PARAMS, {"field": "dtmf"}))
        response = await ws.request("hold", {"callId": "nope"})
        self.assertEqual((response["error"]["code"], response["error"]["data"]),
                         (Codes.UNKNOWN_CALL, {"field": "callId"}))

    @inline
    async def test_dtmf_notifications_arrive_in_order(self) -> None:
        ws, listener = await self.established_call()
        for digit, kind in (("5", "RFC2833"), ("#", "RFC2833"), ("1", "INFO")):
            listener.notify("dtmf", {"callId": "c-1", "dtmf": digit, "type": kind})
        await ws.frames.wait_for(lambda f: f.get("method") == "dtmf" and f["params"]["dtmf"] == "1")
        frames = [f for f in ws.frames.events if f.get("method") == "dtmf"]
        self.assertEqual([f["params"] for f in frames], [
            {"callId": "c-1", "dtmf": "5", "type": "RFC2833"},
            {"callId": "c-1", "dtmf": "#", "type": "RFC2833"},
            {"callId": "c-1", "dtmf": "1", "type": "INFO"},
        ])
        self.assertTrue(all("id" not in f and f["jsonrpc"] == "2.0" for f in frames))

    @inline
    async def test_transfer_status_notifications(self) -> None:
        ws, listener = await self.established_call()
        await ws.request("transfer", {"callId": "c-1", "target": "1003"})
        listener.notify("transferStatus", {"callId": "c-1", "status": "ACCEPTED", "sipStatus": 202})
        listener.notify("transferStatus", {"callId": "c-1", "status": TransferLike.TRYING, "sipStatus": 100})
        listener.notify("transferStatus", {"callId": "c-1", "status": "COMPLETED", "sipStatus": 200})
        await ws.notification("transferStatus", status="COMPLETED")
        self.assertEqual(
            [(f["params"]["status"], f["params"]["sipStatus"]) for f in ws.frames.events
             if f.get("method") == "transferStatus"],
            [("ACCEPTED", 202), ("TRYING", 100), ("COMPLETED", 200)])

    @inline
    async def test_notification_raised_inside_a_request_waits_for_its_response(self) -> None:
        ws, listener = await self.established_call()

        def send_dtmf(session_id: str, call_id: str, digits: str, type: str) -> None:
            # A gateway may report straight away (e.g. INFO answered synchronously in a test).
            listener.notify("transferStatus", {"callId": call_id, "status": "FAILED", "sipStatus": 603})

        self.gateway.send_dtmf = send_dtmf
        response = await ws.request("sendDtmf", {"callId": "c-1", "dtmf": "1"})
        note = await ws.notification("transferStatus", status="FAILED")
        self.assertLess(ws.frames.events.index(response), ws.frames.events.index(note))

    @inline
    async def test_unserialisable_notification_is_logged_and_the_socket_goes_on(self) -> None:
        ws, listener = await self.established_call()
        listener.notify("dtmf", {"callId": "c-1", "dtmf": object(), "type": "RFC2833"})
        self.assertEqual(len(self.flushLoggedErrors(TypeError)), 1)
        listener.notify("dtmf", {"callId": "c-1", "dtmf": "7", "type": "RFC2833"})
        note = await ws.notification("dtmf")
        self.assertEqual(note["params"]["dtmf"], "7")

    @inline
    async def test_notify_after_close_is_ignored(self) -> None:
        ws, listener = await self.established_call()
        await ws.close()
        await self.gateway.events.wait_for(lambda e: e[0] == "close_session")
        listener.notify("dtmf", {"callId": "c-1", "dtmf": "7", "type": "RFC2833"})  # must not raise


class TransferLike(enum.Enum):
    """Stands in for a call-layer status enum: notifications send enums as their value."""

    TRYING = "TRYING"


class BadFrameTests(WebSocketTestCase):
    """A bad frame gets an error and the socket stays usable."""

    async def assertStillWorks(self, ws: Any) -> None:
        response = await ws.request("connect")
        self.assertIn("sessionId", response["result"])
        self.assertFalse(ws.closed.called)

    @inline
    async def test_garbage_then_valid_request(self) -> None:
        ws = await ws_connect(self, self.port)
        ws.send("this is not json")
        error = await ws.response(None)
        self.assertEqual(error["error"]["code"], jsonrpc.PARSE_ERROR)
        await self.assertStillWorks(ws)

    @inline
    async def test_invalid_utf8_is_a_parse_error_not_a_close(self) -> None:
        ws = await ws_connect(self, self.port)
        ws.send(b'{"jsonrpc":"2.0","id":1,"method":"\xff"}')
        error = await ws.response(None)
        self.assertEqual(error["error"]["code"], jsonrpc.PARSE_ERROR)
        await self.assertStillWorks(ws)

    @inline
    async def test_binary_frame_is_answered_invalid_request(self) -> None:
        ws = await ws_connect(self, self.port)
        ws.send(b'{"jsonrpc":"2.0","id":1,"method":"connect"}', binary=True)
        error = await ws.response(None)
        self.assertEqual(error["error"]["code"], jsonrpc.INVALID_REQUEST)
        self.assertIn("binary frames", error["error"]["message"])
        self.assertFalse([e for e in self.gateway.events.events if e[0] == "connect"])
        await self.assertStillWorks(ws)

    @inline
    async def test_batch_unknown_method_and_positional_params(self) -> None:
        ws = await ws_connect(self, self.port)
        ws.send('[{"jsonrpc":"2.0","id":1,"method":"connect"}]')
        self.assertEqual((await ws.response(None))["error"]["code"], jsonrpc.INVALID_REQUEST)
        ws.send('{"jsonrpc":"2.0","id":"u","method":"nope"}')
        self.assertEqual((await ws.response("u"))["error"]["code"], jsonrpc.METHOD_NOT_FOUND)
        ws.send('{"jsonrpc":"2.0","id":"p","method":"connect","params":["1001"]}')
        self.assertEqual((await ws.response("p"))["error"]["code"], jsonrpc.INVALID_PARAMS)
        await self.assertStillWorks(ws)

    @inline
    async def test_bad_frames_do_not_disturb_another_session(self) -> None:
        good = await ws_connect(self, self.port)
        bad = await ws_connect(self, self.port)
        await good.request("connect")
        await good.request("call", {"callId": "keep", "callee": "echo", "sdp": OFFER})
        for junk in ("{", "[]", "null", '{"jsonrpc":"2.0"}'):
            bad.send(junk)
        await bad.frames.wait_for(lambda f: len(bad.frames.events) >= 4)
        self.assertEqual([f["error"]["code"] for f in bad.frames.events],
                         [jsonrpc.PARSE_ERROR] + [jsonrpc.INVALID_REQUEST] * 3)
        self.assertEqual((await good.request("hangup", {"callId": "keep"}))["result"], {})

    @inline
    async def test_client_notification_gets_no_reply(self) -> None:
        ws = await ws_connect(self, self.port)
        ws.send('{"jsonrpc":"2.0","method":"connect","params":{}}')
        await ws.notification("sessionStatus", status="ESTABLISHED")  # it ran...
        response = await ws.request("disconnect")  # ...and the next reply is this request's
        self.assertEqual(response["result"], {})
        self.assertFalse([f for f in ws.frames.events if "id" in f and f["id"] is None])


class OriginTests(unittest.TestCase):
    @inline
    async def test_allowed_origins_are_enforced(self) -> None:
        gateway = FakeGateway()
        port = listen_site(self, gateway, allowed_origins=["https://phone.example.com"])
        ws = await ws_connect(self, port, origin="https://phone.example.com")
        self.assertIn("result", await ws.request("connect"))
        with self.assertRaises(ConnectionError):
            await ws_connect(self, port, origin="https://evil.example")

    @inline
    async def test_default_is_same_origin_only(self) -> None:
        """The safe default: the gateway's own pages and non-browser clients, nobody else."""
        port = listen_site(self, FakeGateway())
        ws = await ws_connect(self, port, origin=f"http://127.0.0.1:{port}")
        self.assertIn("result", await ws.request("connect"))
        ws = await ws_connect(self, port)  # no Origin: not a browser page
        self.assertIn("result", await ws.request("connect"))
        for origin in ("https://evil.example", f"http://127.0.0.1:{port + 1}"):
            with self.assertRaises(ConnectionError):
                await ws_connect(self, port, origin=origin)

    @inline
    async def test_plain_http_get_on_ws_is_not_a_page(self) -> None:
        port = listen_site(self, FakeGateway())
        response, _body = await http_get(self, f"http://127.0.0.1:{port}/ws?redirect=http%3A%2F%2Fevil.example%2F")
        self.assertEqual(response.code, 426)  # Upgrade required; never Autobahn's status page
        self.assertFalse(response.headers.hasHeader(b"location"))
