"""[limits] against a real gateway (issue 10, item 10): several WebSocket clients and REST
requests from two addresses of 127.0.0.0/8 (the test namespace has all of it on lo), the
built-in echo line as the far end, a tiny media port range.

Each test is an attack that worked before the limits: unlimited sessions from one address,
unlimited calls from one session, calls as fast as a script can send them, one session taking
every media port (after which every call failed with -32603/500 and a REST call stayed NEW).
"""

from __future__ import annotations

import json
import os
from io import BytesIO
from typing import Any

import attrs
from autobahn.twisted.websocket import WebSocketClientFactory
from twisted.internet import defer, protocol, reactor, task
from twisted.trial import unittest
from twisted.web.client import Agent, FileBodyProducer, readBody
from twisted.web.http_headers import Headers

from tests.e2e import Gateway, gateway_config
from tests.peers.baresip import Baresip
from tests.peers.kamailio import Kamailio
from tests.peers.ports import free_port
from tests.support import EventLog, inline
from tests.test_api_fakes import Connection, WsClient
from wcsgw.calls.errors import Codes
from wcsgw.config import Config
from wcsgw.media.ports import PortsExhausted

HERE = os.path.dirname(__file__)
with open(os.path.join(HERE, "data", "chromium_offer_av.sdp")) as _offer:
    OFFER = _offer.read()

ONE = "127.0.0.1"
TWO = "127.0.0.2"


def limits_config(ports: int = 200, allowed_domains: tuple[str, ...] = (),
                  **limits: Any) -> Config:
    """The e2e gateway (test lines on, REST open on loopback) with ``limits`` and a media range
    of ``ports`` ports."""
    # No browser sends RTP: a long RTP timeout keeps the calls up for the test.
    base = gateway_config(allowed_domains, rtp_timeout=60.0, t1=0.1, t2=0.8)
    first = free_port("udp", span=ports)
    return attrs.evolve(
        base, limits=attrs.evolve(base.limits, **limits),
        media=attrs.evolve(base.media, port_min=first, port_max=first + ports - 1))


async def until(condition: Any, timeout: float = 10.0) -> None:
    """Wait for a condition of the gateway's state that no event announces (a session closed
    on the server side); bounded, never what the test measures."""
    for _ in range(int(timeout / 0.01)):
        if condition():
            return
        await task.deferLater(reactor, 0.01, lambda: None)
    raise AssertionError("condition not reached in time")


class _RawHttp(protocol.Protocol):
    """Sends one request, keeps everything the server answers, fires when it closes."""

    def __init__(self, request: bytes, done: defer.Deferred) -> None:
        self.request = request
        self.done = done
        self.data = b""

    def connectionMade(self) -> None:  # Twisted's names
        self.transport.write(self.request)

    def dataReceived(self, data: bytes) -> None:
        self.data += data

    def connectionLost(self, reason: Any) -> None:
        self.done.callback(self.data)


class LimitsCase(unittest.TestCase):
    timeout = 60
    config: Config

    def setUp(self) -> None:
        self.gateway = Gateway(self.config)
        self.gateway.start()
        self.addCleanup(self.gateway.stop)
        self.calls = self.gateway.top.call_gateway
        _host, self.port = self.gateway.top.getServiceNamed("http").address

    async def ws(self, source: str = ONE) -> Connection:
        """A WebSocket client whose TCP connection comes from ``source``."""
        factory = WebSocketClientFactory(f"ws://127.0.0.1:{self.port}/ws")
        factory.protocol = WsClient
        factory.frames = EventLog()
        factory.opened = defer.Deferred()
        factory.closed = defer.Deferred()
        reactor.connectTCP("127.0.0.1", self.port, factory, bindAddress=(source, 0))
        connection = Connection(await factory.opened, factory)
        self.addCleanup(lambda: defer.ensureDeferred(connection.close()))
        return connection

    async def session(self, source: str = ONE) -> Connection:
        ws = await self.ws(source)
        response = await ws.request("connect", {})
        self.assertIn("result", response)
        return ws

    async def upgrade(self, source: str) -> bytes:
        """A bare WebSocket upgrade from ``source``: everything the server sent before closing."""
        done: defer.Deferred = defer.Deferred()
        request = (f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                   "Sec-WebSocket-Version: 13\r\n\r\n").encode()
        factory = protocol.ClientFactory.forProtocol(lambda: _RawHttp(request, done))
        reactor.connectTCP("127.0.0.1", self.port, factory, bindAddress=(source, 0))
        return await done

    async def call(self, ws: Connection, **params: Any) -> dict:
        return await ws.request("call", {"callee": "echo", "sdp": OFFER, "hasAudio": True,
                                         "hasVideo": False, **params})

    async def established(self, ws: Connection, call_id: str) -> None:
        """The echo line answered the call (its ports are taken too); fails on FAILED."""
        frame = await ws.frames.wait_for(
            lambda f: f.get("method") == "callStatus" and f["params"]["callId"] == call_id
            and f["params"]["status"] in ("ESTABLISHED", "FAILED"))
        self.assertEqual(frame["params"]["status"], "ESTABLISHED", frame["params"]["info"])

    async def get(self, path: str) -> tuple[int, bytes]:
        response = await Agent(reactor).request(
            b"GET", f"http://127.0.0.1:{self.port}/{path}".encode())
        return response.code, await readBody(response)

    async def rest(self, path: str, body: dict, source: str = ONE) -> tuple[int, Any]:
        agent = Agent(reactor, bindAddress=(source, 0))
        response = await agent.request(
            b"POST", f"http://127.0.0.1:{self.port}/rest-api/{path}".encode(),
            Headers({b"content-type": [b"application/json"]}),
            FileBodyProducer(BytesIO(json.dumps(body).encode())))
        return response.code, json.loads(await readBody(response))

    def assertRefused(self, response: dict, code: int, text: str) -> None:
        self.assertIn("error", response, response)
        self.assertEqual(response["error"]["code"], code, response)
        self.assertIn(text, response["error"]["message"])


class SessionLimitTests(LimitsCase):
    config = limits_config(sessions_per_ip=2, max_sessions=3)

    @inline
    async def test_sessions_per_ip_and_in_all(self) -> None:
        first = await self.session(ONE)
        await self.session(ONE)
        refused = await self.upgrade(ONE)
        self.assertTrue(refused.startswith(b"HTTP/1.1 503 "), refused)
        self.assertIn(b"limits.sessions_per_ip is 2", refused)
        self.assertEqual(len(self.calls.sessions), 2)
        await self.session(TWO)  # another address still gets in
        refused = await self.upgrade("127.0.0.3")
        self.assertTrue(refused.startswith(b"HTTP/1.1 503 "), refused)
        self.assertIn(b"limits.max_sessions is 3", refused)
        self.assertEqual(self.calls.refusals["sessions_per_ip"], 1)
        self.assertEqual(self.calls.refusals["max_sessions"], 1)
        status, metrics = await self.get("metrics")
        self.assertEqual(status, 200)
        self.assertIn(b'wcsgw_limit_refusals_total{limit="sessions_per_ip"} 1', metrics)
        # A session that goes frees its place (after disconnect: a connected session whose
        # socket drops waits http.resume_seconds for a resume and counts meanwhile).
        await first.request("disconnect")
        await first.close()
        await until(lambda: len(self.calls.sessions) == 2)
        again = await self.session(ONE)
        self.assertIn("result", await again.request("disconnect"))


class CallLimitTests(LimitsCase):
    config = limits_config(calls_per_session=2, calls_per_minute_per_ip=5)

    @inline
    async def test_calls_per_session(self) -> None:
        ws = await self.session(ONE)
        first = (await self.call(ws))["result"]["callId"]
        await self.established(ws, first)
        self.assertIn("result", await self.call(ws))
        refused = await self.call(ws, callId="third")
        self.assertRefused(refused, Codes.TOO_MANY_CALLS,
                           "Too many calls: limits.calls_per_session is 2")
        self.assertNotIn("third", self.calls.calls)
        other = await self.session(TWO)
        self.assertIn("result", await self.call(other))
        # The session may call again once one of its calls is over.
        self.assertIn("result", await ws.request("hangup", {"callId": first}))
        self.assertIn("result", await self.call(ws, callId="third"))

    @inline
    async def test_call_rate_per_address_then_the_window_reopens(self) -> None:
        clock = task.Clock()
        clock.advance(1000)
        self.calls.clock = clock.seconds  # the window runs on this clock, not on the wall
        ws = await self.session(ONE)
        for _ in range(4):
            call_id = (await self.call(ws))["result"]["callId"]
            self.assertIn("result", await ws.request("hangup", {"callId": call_id}))
            clock.advance(5)
        status, body = await self.rest("call/startup", {"callee": "echo"}, ONE)  # the fifth
        self.assertEqual(status, 200, body)
        await self.rest("call/terminate", {"callId": body["callId"]})
        self.assertRefused(await self.call(ws, callId="sixth"), Codes.CALL_RATE,
                           "limits.calls_per_minute_per_ip is 5")
        self.assertNotIn("sixth", self.calls.calls)
        status, body = await self.rest("call/startup", {"callee": "echo"}, ONE)
        self.assertEqual(status, 429, body)
        self.assertIn("limits.calls_per_minute_per_ip is 5", body["error"])
        # Another address is not held back by this one.
        self.assertIn("result", await self.call(await self.session(TWO)))
        clock.advance(60 - 4 * 5)  # the first call is 60 s old now
        self.assertIn("result", await self.call(ws))


class PortReserveTests(LimitsCase):
    # 40 ports: the effective reserve is min(64, 40 // 4) = 10.  A call to echo takes 3 ports
    # at the gateway (RTP pair, browser leg) and the echo line 2 more.
    config = limits_config(ports=40, calls_per_session=50, calls_per_minute_per_ip=1000)

    @inline
    async def test_one_session_cannot_starve_the_others(self) -> None:
        hog = await self.session(ONE)
        taken = []
        for _ in range(20):
            response = await self.call(hog)
            if "error" in response:
                break
            taken.append(response["result"]["callId"])
            await self.established(hog, taken[-1])
        else:
            self.fail("the session took calls until the end of the range")
        self.assertRefused(response, Codes.NO_PORTS, "limits.port_reserve")
        ports = self.calls.media_ports
        self.assertGreaterEqual(ports.size - len(ports.in_use), 3)  # the reserve is still there
        self.assertEqual(len(self.calls.calls), len(taken))  # the refused call left nothing
        # Another session's first call may use the reserve, and gets through.
        other = await self.session(TWO)
        response = await self.call(other)
        self.assertIn("result", response, response)
        await self.established(other, response["result"]["callId"])

    @inline
    async def test_exhaustion_is_a_clear_error_and_leaves_no_call(self) -> None:
        ports = self.calls.media_ports
        held = []  # someone took every port
        while True:
            try:
                held += ports.allocate(1)
            except PortsExhausted:
                break
        self.addCleanup(ports.release, held)
        status, body = await self.rest("call/startup", {"callee": "echo", "callId": "ghost"})
        self.assertEqual((status, body), (503, {"error": "No media ports free"}))
        status, _ = await self.rest("call/find", {"callId": "ghost"})
        self.assertEqual(status, 404)
        self.assertEqual(await self.rest("call/find_all", {}), (200, []))
        ws = await self.session(ONE)
        self.assertRefused(await self.call(ws, callId="ws-ghost"), Codes.NO_PORTS,
                           "No media ports free")
        self.assertEqual(self.calls.calls, {})
        self.assertFalse(self.calls.unsettled)
        self.assertEqual(len(ports.in_use), len(held))
        # Ports back: calls work again.
        ports.release(held)
        self.assertIn("result", await self.call(ws))


class IncomingAtCapTests(LimitsCase):
    """An account's browser session at limits.calls_per_session is busy: Kamailio forks a call
    to it and the gateway answers 486 Busy Here (a phone on a call does the same)."""

    config = limits_config(allowed_domains=("127.0.0.1",), calls_per_session=1)
    timeout = 90

    def setUp(self) -> defer.Deferred:  # type: ignore[override]
        self.kam = Kamailio()
        self.addCleanup(self.kam.stop)
        return self.kam.start().addCallback(lambda _: LimitsCase.setUp(self))

    async def phone(self, user: str) -> Baresip:
        phone = Baresip(user, f"pass{user}", registrar_port=self.kam.port, outbound=True,
                        codecs="PCMU")
        self.addCleanup(phone.stop)
        await phone.start()
        await phone.registered()
        return phone

    @inline
    async def test_second_incoming_call_gets_486(self) -> None:
        ws = await self.ws(ONE)
        response = await ws.request("connect", {
            "sipLogin": "1001", "sipPassword": "pass1001", "sipDomain": "127.0.0.1",
            "sipOutboundProxy": "127.0.0.1", "sipPort": self.kam.port,
            "sipRegisterRequired": True})
        self.assertIn("result", response)
        await ws.notification("sessionStatus", status="REGISTERED")
        first, second = await self.phone("1002"), await self.phone("1003")
        await first.command("dial", f"sip:1001@127.0.0.1:{self.kam.port}")
        ringing = await ws.notification("incomingCall")
        mark = second.mark()
        await second.command("dial", f"sip:1001@127.0.0.1:{self.kam.port}")
        closed = await second.wait_event("CALL_CLOSED", since=mark)
        self.assertIn("486", closed.get("param", ""))
        self.assertEqual(list(self.calls.calls), [ringing["params"]["callId"]])
        # Once the first call is over the session takes calls again.
        await first.command("hangup")
        await ws.notification("callStatus", callId=ringing["params"]["callId"], status="FINISH")
        await second.command("dial", f"sip:1001@127.0.0.1:{self.kam.port}")
        again = await ws.frames.wait_for(
            lambda f: f.get("method") == "incomingCall"
            and f["params"]["callId"] != ringing["params"]["callId"])
        self.assertIn(again["params"]["callId"], self.calls.calls)
        self.assertIn("result", await ws.request("hangup", {"callId": again["params"]["callId"]}))
