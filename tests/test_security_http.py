"""Issue 10, items 7 and the HTTP half of 10: the site's front door, attacked through sockets.

* **DNS rebinding.** A page on ``evil.example`` whose name the attacker re-points at the
  gateway makes the victim's browser send ``Host: evil.example`` (and a matching ``Origin``, so
  the old same-origin check passed).  Every path now checks Host against the allow-list (IP
  literals, ``localhost``, ``http.server_names``) before any resource runs: 421.
* **Bodies.** ``Content-Length`` over ``http.max_body`` is answered 413 as soon as the headers
  are in — before the body is read, before the token is checked — and the connection closes;
  a chunked body is cut off at the limit the same way.
* **Slow-loris.** Headers must arrive within ``http.header_timeout``, the body within
  ``http.body_timeout``; trickling bytes no longer keeps a connection (Twisted's own timeout is
  an *idle* timeout that every byte resets).
* **Exposure.** REST and /metrics refuse to start tokenless on a non-loopback address.

The attacker is a raw TCP client beside a whole gateway (``make_service`` on free ports), so
what is tested is what a client on the network gets; the timers are also unit-tested on the
sans-IO decision functions and on the channel with ``task.Clock``.
"""

from __future__ import annotations

import json
import os
import signal
from io import BytesIO
from typing import Any, Callable

import attrs
from twisted.internet import defer, reactor, task
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol
from twisted.internet.testing import StringTransport
from twisted.trial import unittest
from twisted.web.client import Agent, FileBodyProducer, HTTPConnectionPool, readBody
from twisted.web.http_headers import Headers
from twisted.web.resource import Resource

from tests.e2e import Gateway, gateway_config
from tests.peers.ports import free_port
from tests.support import inline
from tests.test_twistd import Gateway as TwistdGateway, TwistdTestCase, _write
from wcsgw.config import HttpSettings, RestSettings

TOKEN = "front-door-token"
SERVER_NAME = "phone.example.com"
HEADER_TIMEOUT = 0.6
BODY_TIMEOUT = 0.6
MAX_BODY = 64 * 1024
WS_KEY = "dGhlIHNhbXBsZSBub25jZQ=="
#: Upper bound on how long a broken run waits for something that must happen (never what a
#: test measures).
PATIENCE = 5.0


class RawClient(Protocol):
    """The attacker: bytes out as the test writes them, every byte in kept, and the close."""

    def __init__(self) -> None:
        self.data = b""
        self.closed: defer.Deferred = defer.Deferred()
        self.closed_at: float | None = None
        self._waiters: list[tuple[Callable[[bytes], bool], defer.Deferred]] = []

    def dataReceived(self, data: bytes) -> None:
        self.data += data
        for pair in list(self._waiters):
            if pair[0](self.data):
                self._waiters.remove(pair)
                pair[1].callback(self.data)

    def connectionLost(self, reason: Any) -> None:
        self.closed_at = reactor.seconds()
        for _, d in self._waiters:
            d.callback(self.data)  # the caller's predicate decides what that means
        self._waiters = []
        self.closed.callback(self.data)

    def send(self, data: bytes) -> None:
        self.transport.write(data)

    def until(self, predicate: Callable[[bytes], bool], timeout: float = PATIENCE) -> defer.Deferred:
        """Fires with all bytes received once ``predicate`` holds or the connection closed."""
        if predicate(self.data) or self.closed.called:
            return defer.succeed(self.data)
        d: defer.Deferred = defer.Deferred()
        self._waiters.append((predicate, d))
        d.addTimeout(timeout, reactor)
        return d

    async def response(self, timeout: float = PATIENCE) -> tuple[int, dict[bytes, bytes], bytes]:
        """The first response: (status, headers lower-cased, body as far as it came)."""
        data = await self.until(_complete, timeout)
        if b"\r\n\r\n" not in data:
            raise AssertionError(f"no response, got {data!r}")
        return _parse(data)

    async def closed_within(self, timeout: float = PATIENCE) -> float:
        """Seconds until the server closed the connection (AssertionError if it did not)."""
        d = self.closed if self.closed.called else _with_timeout(self.closed, timeout)
        try:
            await d
        except defer.TimeoutError:
            raise AssertionError(f"the server kept the connection open for {timeout} s") from None
        assert self.closed_at is not None
        return self.closed_at


def _with_timeout(d: defer.Deferred, timeout: float) -> defer.Deferred:
    waiter: defer.Deferred = defer.Deferred()
    d.addBoth(lambda r: (waiter.called or waiter.callback(r), r)[1])
    return waiter.addTimeout(timeout, reactor)


def _dechunk(body: bytes) -> bytes | None:
    """A chunked body decoded, or None while its last chunk has not arrived."""
    out = b""
    while True:
        size_line, sep, rest = body.partition(b"\r\n")
        if not sep:
            return None
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            return out if rest.startswith(b"\r\n") else None
        if len(rest) < size + 2:
            return None
        out, body = out + rest[:size], rest[size + 2:]


def _parse(data: bytes) -> tuple[int, dict[bytes, bytes], bytes]:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        body = _dechunk(body) or b""
    return status, headers, body


def _complete(data: bytes) -> bool:
    if b"\r\n\r\n" not in data:
        return False
    head, _, body = data.partition(b"\r\n\r\n")
    status, headers, _ = _parse(head + b"\r\n\r\n")
    if status in (100, 101):
        return True
    if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        return _dechunk(body) is not None
    length = headers.get(b"content-length")
    return length is not None and len(body) >= int(length)


def http_config(**http: Any) -> Any:
    """A loopback gateway on free ports with REST tokens and short front-door timeouts."""
    base = gateway_config()
    settings = attrs.evolve(base.http, server_names=(SERVER_NAME,),
                            header_timeout=HEADER_TIMEOUT, body_timeout=BODY_TIMEOUT,
                            max_body=MAX_BODY, **http)
    return attrs.evolve(base, http=settings, rest=RestSettings(tokens=(TOKEN,)))


class FrontDoorCase(unittest.TestCase):
    timeout = 60

    def setUp(self) -> None:
        self.gateway = Gateway(http_config())
        self.gateway.start()
        self.addCleanup(self.gateway.stop)
        self.port = self.gateway.top.getServiceNamed("http").address[1]

    async def connect(self) -> RawClient:
        client = RawClient()
        await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", self.port), client)
        client.opened_at = reactor.seconds()

        def close() -> defer.Deferred:
            if not client.closed.called:
                client.transport.abortConnection()
            return client.closed

        self.addCleanup(close)
        return client

    async def exchange(self, request: bytes) -> tuple[int, dict[bytes, bytes], bytes]:
        client = await self.connect()
        client.send(request)
        return await client.response()

    def get(self, path: str, host: str, *extra: str) -> bytes:
        lines = [f"GET {path} HTTP/1.1", f"Host: {host}", *extra, "Connection: close", "", ""]
        return "\r\n".join(lines).encode()

    def upgrade(self, host: str, origin: str | None) -> bytes:
        extra = ["Upgrade: websocket", "Connection: Upgrade", f"Sec-WebSocket-Key: {WS_KEY}",
                 "Sec-WebSocket-Version: 13"]
        if origin is not None:
            extra.append(f"Origin: {origin}")
        lines = ["GET /ws HTTP/1.1", f"Host: {host}", *extra, "", ""]
        return "\r\n".join(lines).encode()

    def post(self, path: str, host: str, body: bytes, *extra: str, token: bool = True) -> bytes:
        lines = [f"POST {path} HTTP/1.1", f"Host: {host}", "Content-Type: application/json",
                 f"Content-Length: {len(body)}", *extra]
        if token:
            lines.append(f"Authorization: Bearer {TOKEN}")
        return ("\r\n".join(lines + ["", ""])).encode() + body

    @property
    def here(self) -> str:
        return f"127.0.0.1:{self.port}"


class RebindingTests(FrontDoorCase):
    @inline
    async def test_websocket_with_a_foreign_host_and_matching_origin_is_refused(self) -> None:
        evil = f"evil.example:{self.port}"
        status, _, body = await self.exchange(self.upgrade(evil, f"http://{evil}"))
        self.assertEqual(status, 421, body)
        self.assertIn(b"evil.example", body)
        self.assertEqual(self.gateway.top.call_gateway.sessions, {})

    @inline
    async def test_rest_with_a_foreign_host_is_refused_even_with_a_token(self) -> None:
        status, _, body = await self.exchange(
            self.post("/rest-api/call/find_all", f"evil.example:{self.port}", b"{}",
                      "Connection: close"))
        self.assertEqual(status, 421, body)
        self.assertIn("error", json.loads(body))

    @inline
    async def test_every_path_checks_the_host(self) -> None:
        for path in ("/", "/phone.js", "/sdk/wcsgw.js", "/health", "/metrics",
                     "/rest-api/openapi.json", "/nope", "/ws"):
            for host in ("evil.example", f"EVIL.example:{self.port}", "localhost.evil.example",
                         "127.0.0.1.nip.io", "phone.example.com.evil.example", "xn--e1afmkfd"):
                status, _, body = await self.exchange(self.get(path, host))
                self.assertEqual(status, 421, (path, host, body))

    @inline
    async def test_allowed_hosts_reach_every_path(self) -> None:
        for host in (self.here, f"localhost:{self.port}", "localhost", "LocalHost.",
                     SERVER_NAME, f"PHONE.Example.com:{self.port}", "phone.example.com.",
                     "10.1.2.3", "[::1]", f"[::1]:{self.port}"):
            status, _, body = await self.exchange(self.get("/health", host))
            self.assertEqual(status, 200, (host, body))
            status, _, body = await self.exchange(self.get("/", host))
            self.assertEqual(status, 200, host)

    @inline
    async def test_websocket_and_rest_work_for_allowed_hosts(self) -> None:
        for host in (self.here, f"localhost:{self.port}", SERVER_NAME):
            status, _, _ = await self.exchange(self.upgrade(host, f"http://{host}"))
            self.assertEqual(status, 101, host)
            status, _, body = await self.exchange(
                self.post("/rest-api/call/find_all", host, b"{}", "Connection: close"))
            self.assertEqual((status, json.loads(body)), (200, []), host)

    @inline
    async def test_missing_duplicate_or_absolute_hosts(self) -> None:
        """HTTP/1.1 without Host, two Host headers (which one would be checked?): 400.  An
        absolute-form target names its own authority: it is checked too."""
        no_host = b"GET /health HTTP/1.1\r\nConnection: close\r\n\r\n"
        self.assertEqual((await self.exchange(no_host))[0], 400)
        two = self.get("/health", self.here, "Host: evil.example")
        self.assertEqual((await self.exchange(two))[0], 400)
        absolute = (f"GET http://evil.example/health HTTP/1.1\r\nHost: {self.here}\r\n"
                    f"Connection: close\r\n\r\n").encode()
        self.assertEqual((await self.exchange(absolute))[0], 421)
        # HTTP/1.0 without Host cannot come from a rebinding browser: answered.
        old = b"GET /health HTTP/1.0\r\n\r\n"
        self.assertEqual((await self.exchange(old))[0], 200)


class BodyLimitTests(FrontDoorCase):
    @inline
    async def test_40mb_content_length_gets_413_before_the_body_and_before_auth(self) -> None:
        client = await self.connect()
        client.send((f"POST /rest-api/call/startup HTTP/1.1\r\nHost: {self.here}\r\n"
                     f"Content-Type: application/json\r\nContent-Length: {40 * 1024 * 1024}\r\n"
                     "\r\n").encode())  # headers only: the gateway must not wait for the body
        status, headers, body = await client.response()
        self.assertEqual(status, 413, body)  # not 401: the size is judged first
        self.assertIn(str(MAX_BODY).encode(), body)
        self.assertEqual(headers.get(b"connection"), b"close")
        await client.closed_within()

    @inline
    async def test_expect_100_continue_is_not_invited(self) -> None:
        client = await self.connect()
        client.send((f"POST /rest-api/call/find_all HTTP/1.1\r\nHost: {self.here}\r\n"
                     f"Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n"
                     f"Expect: 100-continue\r\nContent-Length: {MAX_BODY + 1}\r\n\r\n").encode())
        status, _, _ = await client.response()
        self.assertEqual(status, 413)
        self.assertNotIn(b"100 Continue", client.data)

    @inline
    async def test_chunked_body_is_cut_off_at_max_body(self) -> None:
        client = await self.connect()
        client.send((f"POST /rest-api/call/find_all HTTP/1.1\r\nHost: {self.here}\r\n"
                     f"Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n").encode())
        chunk = b"2000\r\n" + b" " * 0x2000 + b"\r\n"
        for _ in range(MAX_BODY // 0x2000 + 1):  # one chunk past the limit, and no last chunk
            client.send(chunk)
        status, _, body = await client.response()
        self.assertEqual(status, 413, body)
        await client.closed_within()

    @inline
    async def test_bodies_within_the_limit_still_work(self) -> None:
        body = b'{"callId": "c1"' + b" " * (MAX_BODY - 16) + b"}"
        self.assertEqual(len(body), MAX_BODY)
        status, _, reply = await self.exchange(
            self.post("/rest-api/call/find", self.here, body, "Connection: close"))
        self.assertEqual(status, 404, reply)  # read whole, parsed, no such call
        chunked = (f"POST /rest-api/call/find_all HTTP/1.1\r\nHost: {self.here}\r\n"
                   f"Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n"
                   "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                   "2\r\n{}\r\n0\r\n\r\n").encode()
        status, _, reply = await self.exchange(chunked)
        self.assertEqual((status, json.loads(reply)), (200, []))
        # And through an ordinary HTTP client.
        pool = HTTPConnectionPool(reactor, persistent=False)
        self.addCleanup(pool.closeCachedConnections)
        response = await Agent(reactor, pool=pool).request(
            b"POST", f"http://{self.here}/rest-api/call/find_all".encode(),
            Headers({b"content-type": [b"application/json"],
                     b"authorization": [f"Bearer {TOKEN}".encode()]}),
            FileBodyProducer(BytesIO(b"{}")))
        self.assertEqual((response.code, json.loads(await readBody(response))), (200, []))


class SlowClientTests(FrontDoorCase):
    def trickle(self, client: RawClient, data: bytes, every: float = 0.1) -> None:
        """Send ``data`` one byte every ``every`` seconds until it or the connection ends."""
        position = [0]

        def one() -> None:
            if client.closed.called or position[0] >= len(data):
                loop.stop()
                return
            client.send(data[position[0]:position[0] + 1])
            position[0] += 1

        loop = task.LoopingCall(one)
        loop.start(every, now=True)
        self.addCleanup(lambda: loop.running and loop.stop())

    @inline
    async def test_trickled_headers_are_cut_off(self) -> None:
        client = await self.connect()
        self.trickle(client, b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 100)
        closed_at = await client.closed_within()
        elapsed = closed_at - client.opened_at
        self.assertGreaterEqual(elapsed, HEADER_TIMEOUT * 0.9)
        self.assertLess(elapsed, HEADER_TIMEOUT + 2.0)
        self.assertNotIn(b"200 OK", client.data)

    @inline
    async def test_a_silent_connection_is_closed(self) -> None:
        client = await self.connect()
        closed_at = await client.closed_within()
        self.assertGreaterEqual(closed_at - client.opened_at, HEADER_TIMEOUT * 0.9)
        self.assertEqual(client.data, b"")

    @inline
    async def test_trickled_body_is_cut_off(self) -> None:
        client = await self.connect()
        client.send((f"POST /rest-api/call/find_all HTTP/1.1\r\nHost: {self.here}\r\n"
                     f"Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n"
                     "Content-Length: 200\r\n\r\n").encode())
        headers_sent = reactor.seconds()
        self.trickle(client, b"{" + b" " * 198 + b"}")
        closed_at = await client.closed_within()
        self.assertGreaterEqual(closed_at - headers_sent, BODY_TIMEOUT * 0.9)
        self.assertLess(closed_at - headers_sent, BODY_TIMEOUT + 2.0)
        self.assertNotIn(b"200 OK", client.data)

    @inline
    async def test_keep_alive_requests_each_get_the_full_time(self) -> None:
        """A client that answers promptly is never cut off: requests on one connection, each
        sent within the time; then the idle connection goes after header_timeout."""
        client = await self.connect()
        for n in range(3):
            client.send(self.get("/health", self.here).replace(b"Connection: close\r\n", b""))
            await client.until(lambda data, n=n: data.count(b"HTTP/1.1 200") == n + 1)
            await task.deferLater(reactor, HEADER_TIMEOUT * 0.6, lambda: None)
        self.assertFalse(client.closed.called)
        await client.closed_within()


class FrontDoorUnitTests(unittest.TestCase):
    """The decisions (sans-IO) and the channel's timers on a task.Clock."""

    def test_host_allow_list(self) -> None:
        from wcsgw.api.front import host_allowed

        names = frozenset({"phone.example.com"})
        allowed = [b"127.0.0.1", b"127.0.0.1:8080", b"10.0.0.1:1", b"[::1]", b"[::1]:8080",
                   b"[2001:db8::1]", b"localhost", b"LOCALHOST:80", b"localhost.",
                   b"phone.example.com", b"Phone.Example.Com:8443", b"phone.example.com."]
        refused = [b"", b"evil.example", b"evil.example:8080", b"phone.example.com.evil",
                   b"x.phone.example.com", b"127.1", b"2130706433", b"0x7f.0.0.1",
                   b"::1", b"[::1", b"[fe80::1%25eth0]", b"localhost:abc", b"a b",
                   b"127.0.0.1:99999", b"phone.example.com:8080:1", b"[::1]x", b"\xff"]
        for host in allowed:
            self.assertTrue(host_allowed(host, names), host)
        for host in refused:
            self.assertFalse(host_allowed(host, names), host)

    def make_channel(self, **settings: Any) -> tuple[Any, StringTransport, task.Clock, list]:
        from wcsgw.api.front import FrontDoor, GatewaySite

        rendered: list[bytes] = []

        class Leaf(Resource):
            isLeaf = True

            def render(self, request: Any) -> bytes:
                rendered.append(request.content.read() if request.content else b"")
                return b"ok"

        clock = task.Clock()
        values = {"server_names": (), "header_timeout": 2.0, "body_timeout": 3.0,
                  "max_body": 100, **settings}
        site = GatewaySite(Leaf(), FrontDoor.from_settings(HttpSettings(**values)),
                           reactor=clock)
        channel = site.buildProtocol(None)
        transport = StringTransport()
        channel.makeConnection(transport)
        return channel, transport, clock, rendered

    def test_header_timeout_is_absolute(self) -> None:
        channel, transport, clock, rendered = self.make_channel()
        for _ in range(19):
            channel.dataReceived(b"G")
            clock.advance(0.1)
        self.assertFalse(transport.disconnecting)
        clock.advance(0.11)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(rendered, [])

    def test_body_timeout_then_the_next_request(self) -> None:
        channel, transport, clock, rendered = self.make_channel()
        channel.dataReceived(b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\nab")
        clock.advance(2.9)  # past the header timeout: the headers were in time
        self.assertFalse(transport.disconnecting)
        channel.dataReceived(b"cde")
        self.assertEqual(rendered, [b"abcde"])
        self.assertIn(b"200 OK", transport.value())
        clock.advance(1.9)  # keep-alive: a new header_timeout for the next request
        self.assertFalse(transport.disconnecting)
        channel.dataReceived(b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\na")
        clock.advance(2.99)
        self.assertFalse(transport.disconnecting)
        clock.advance(0.02)
        self.assertTrue(transport.disconnecting)
        self.assertIn(b"408", transport.value())
        self.assertEqual(len(rendered), 1)

    def test_content_length_refused_at_the_headers(self) -> None:
        channel, transport, clock, rendered = self.make_channel()
        channel.dataReceived(b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 101\r\n\r\n")
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 413 "))
        channel.dataReceived(b"x" * 101 + b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        self.assertEqual(rendered, [])  # nothing read into a request, nothing rendered
        self.assertEqual(transport.value().count(b"HTTP/1.1"), 1)
        clock.advance(10)
        self.assertTrue(transport.disconnecting or transport.disconnected)
        channel.connectionLost(None)
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_chunked_refused_at_the_limit(self) -> None:
        channel, transport, _, rendered = self.make_channel()
        channel.dataReceived(b"POST / HTTP/1.1\r\nHost: localhost\r\n"
                             b"Transfer-Encoding: chunked\r\n\r\n")
        channel.dataReceived(b"64\r\n" + b"x" * 100 + b"\r\n")  # exactly the limit: fine
        self.assertEqual(transport.value(), b"")
        channel.dataReceived(b"1\r\ny\r\n0\r\n\r\n")
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 413 "))
        self.assertEqual(rendered, [])

    def test_host_refused_at_the_headers(self) -> None:
        channel, transport, _, rendered = self.make_channel(server_names=("a.example",))
        channel.dataReceived(b"GET / HTTP/1.1\r\nHost: b.example\r\n\r\n")
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 421 "))
        self.assertEqual(rendered, [])
        channel, transport, _, rendered = self.make_channel(server_names=("a.example",))
        channel.dataReceived(b"GET / HTTP/1.1\r\nHost: A.example:8080\r\n\r\n")
        self.assertIn(b"200 OK", transport.value())


class WebSocketHostCheckTests(unittest.TestCase):
    """/ws checks Host itself too, so the resource mounted on a plain Site is no weaker."""

    @inline
    async def test_handshake_host_is_checked_by_the_ws_resource(self) -> None:
        from tests.test_api_fakes import FakeGateway, listen_site

        port = listen_site(self, FakeGateway(), server_names=[SERVER_NAME])
        for host, expected in ((f"evil.example:{port}", 421), (SERVER_NAME, 101),
                               (f"127.0.0.1:{port}", 101)):
            client = RawClient()
            await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), client)
            client.send(FrontDoorCase.upgrade(None, host, f"http://{host}"))  # type: ignore
            status, _, _ = await client.response()
            self.assertEqual(status, expected, host)
            client.transport.abortConnection()
            await client.closed


class ExposureTests(TwistdTestCase):
    """contract: REST and /metrics refuse to start open on a non-loopback address."""

    async def test_public_listen_without_tokens_fails_with_one_line(self) -> None:
        cwd = self.tmpdir()
        config = _write(cwd, "gw.toml", f'[http]\nlisten = "0.0.0.0"\nport = {free_port()}\n'
                        f'[sip]\nlisten = "127.0.0.1"\nport = {free_port()}\n')
        gateway = TwistdGateway(self, ["-n", "--pidfile=", "wcsgw", "--config", config], cwd=cwd)
        self.assertNotEqual(await gateway.wait_exit(), 0)
        self.assert_one_line_error(gateway.output, "rest.tokens", "0.0.0.0")

    async def test_public_listen_with_a_token_starts(self) -> None:
        http_port, sip_port = free_port(), free_port()
        cwd = self.tmpdir()
        config = _write(cwd, "gw.toml", f'[http]\nlisten = "0.0.0.0"\nport = {http_port}\n'
                        f'[sip]\nlisten = "127.0.0.1"\nport = {sip_port}\n'
                        '[rest]\ntokens = ["s3cret"]\n')
        gateway = TwistdGateway(self, ["-n", "--pidfile=", "wcsgw", "--config", config], cwd=cwd)
        self.assertEqual((await gateway.wait_health(http_port))["status"], "ok")
        self.assertNotIn("s3cret", gateway.output)
        os.killpg(gateway.proc.pid, signal.SIGTERM)
        self.assertIn(await gateway.wait_exit(), (0, -signal.SIGTERM))
