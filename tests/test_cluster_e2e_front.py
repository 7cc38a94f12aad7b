"""The cluster's two front doors, with real gateway processes behind them (issue 17, items 2,
3 and 5): HAProxy for browsers, Kamailio's dispatcher for SIP.

Two gateway nodes run as the systemd template runs them (docs/deployment.md): ONE config file,
each node's ports and name from its own environment (``WCSGW_HTTP_PORT``, ``WCSGW_SIP_PORT``,
``WCSGW_MEDIA_PORT_MIN/MAX``, ``WCSGW_CLUSTER_NODE_ID``).  These tests need no Redis: what
they check is what the balancers do with the nodes' own signals — ``/health`` (503 while
draining, nothing once dead) and SIP OPTIONS (the same) — and the stickiness a resumed
session needs.

* HAProxy: the page and the WebSocket upgrade (101) get the node's cookie; a request that
  carries it goes back to that node; a node killed with SIGKILL is DOWN within a second and
  its cookie goes to the survivor; a node stopped with SIGTERM leaves with exit status 0.
* Kamailio: OPTIONS probes make both nodes active; calls for the cluster are spread over both;
  a node killed with SIGKILL is inactive within a few seconds and gets no more calls.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import uuid
from typing import Any

from twisted.internet import defer, protocol, reactor

from tests.peers.dispatcher import Dispatcher
from tests.peers.haproxy import BACKEND_HEADER, COOKIE, HAProxy
from tests.peers.ports import free_port
from tests.test_twistd import Gateway, TwistdTestCase, _write

NODE_NAMES = ("a", "b")
#: the config every node shares (as /etc/wcsgw/wcsgw.toml does under the systemd template)
SHARED_CONFIG = (
    '[http]\nlisten = "127.0.0.1"\n'
    '[sip]\nlisten = "127.0.0.1"\n'
    '[limits]\ndrain_seconds = 60\nmax_loop_lag_ms = 0\nmax_cpu_percent = 0\n'
)


class Node:
    """One gateway process of the cluster: its own ports, the shared config file."""

    def __init__(self, case: TwistdTestCase, name: str, config: str,
                 extra_env: dict[str, str] | None = None) -> None:
        self.case, self.name, self.config = case, name, config
        self.http_port, self.sip_port = free_port("tcp"), free_port("udp+tcp")
        first = free_port("udp", span=20)
        self.env = {
            "WCSGW_HTTP_PORT": str(self.http_port), "WCSGW_SIP_PORT": str(self.sip_port),
            "WCSGW_MEDIA_PORT_MIN": str(first), "WCSGW_MEDIA_PORT_MAX": str(first + 19),
            "WCSGW_CLUSTER_NODE_ID": name, **(extra_env or {}),
        }
        self.process: Gateway | None = None

    async def start(self) -> None:
        self.process = Gateway(self.case, ["-n", "--pidfile=", "--logfile=-", "wcsgw",
                                           "--config", self.config], env=self.env)
        await self.process.wait_health(self.http_port)

    def signal(self, sig: int) -> None:
        assert self.process is not None
        os.killpg(self.process.proc.pid, sig)


async def start_nodes(case: TwistdTestCase, config_text: str = SHARED_CONFIG,
                      extra_env: dict[str, str] | None = None) -> list[Node]:
    config = _write(case.tmpdir(), "wcsgw.toml", config_text)
    nodes = [Node(case, name, config, extra_env) for name in NODE_NAMES]
    await defer.gatherResults([defer.ensureDeferred(n.start()) for n in nodes])
    return nodes


async def start_balancer(case: TwistdTestCase, nodes: list[Node],
                         dispatcher: Dispatcher | None = None) -> HAProxy:
    """HAProxy in front of ``nodes``' HTTP ports (and, given, Kamailio's dispatcher in front of
    their SIP ports), started, stopped at cleanup, every node UP behind it."""
    if dispatcher is not None:
        dispatcher.nodes = [(n.name, n.sip_port) for n in nodes]
        case.addCleanup(dispatcher.stop)
        await dispatcher.start()
    lb = HAProxy([(n.name, n.http_port) for n in nodes])
    case.addCleanup(lb.stop)
    await lb.start()
    for n in nodes:
        await lb.until_state(n.name, "UP")
    return lb


def exchange(port: int, request: bytes) -> tuple[int, dict[str, list[str]]]:
    """One HTTP/1.1 exchange through the balancer (blocking, local: instant): status and
    headers (lower-case names) of the response head; the body is not read."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(request)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = s.recv(4096)
            if not chunk:
                break
            head += chunk
    lines = head.split(b"\r\n\r\n")[0].decode(errors="replace").split("\r\n")
    headers: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return int(lines[0].split()[1]), headers


def request(port: int, path: str = "/", cookie: str | None = None,
            upgrade: bool = False) -> bytes:
    host = f"127.0.0.1:{port}"
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}"]
    if upgrade:
        lines += ["Upgrade: websocket", "Connection: Upgrade",
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13",
                  f"Origin: http://{host}"]
    else:
        lines.append("Connection: close")
    if cookie is not None:
        lines.append(f"Cookie: {COOKIE}={cookie}")
    return ("\r\n".join(lines + ["", ""])).encode()


def sticky_cookie(headers: dict[str, list[str]]) -> str | None:
    for value in headers.get("set-cookie", []):
        match = re.match(rf"{COOKIE}=([^;]*)", value)
        if match:
            return match.group(1)
    return None


class HAProxyFrontTests(TwistdTestCase):
    timeout = 120

    async def topology(self) -> tuple[list[Node], HAProxy]:
        nodes = await start_nodes(self)
        return nodes, await start_balancer(self, nodes)

    async def test_sticky_page_and_websocket_then_node_death(self) -> None:
        nodes, lb = await self.topology()
        # New visitors: round robin over the healthy nodes, each told its node in a cookie.
        served = []
        for _ in range(2):
            status, headers = exchange(lb.port, request(lb.port))
            self.assertEqual(status, 200)
            served.append(headers[BACKEND_HEADER.lower()][0])
            self.assertEqual(sticky_cookie(headers), served[-1])
        self.assertEqual(sorted(served), ["a", "b"])
        # A visitor with a cookie goes back to its node and is not given another cookie.
        for name in ("a", "b", "a", "b"):
            status, headers = exchange(lb.port, request(lb.port, cookie=name))
            self.assertEqual((status, headers[BACKEND_HEADER.lower()]), (200, [name]))
            self.assertIsNone(sticky_cookie(headers))
        # The WebSocket upgrade: its 101 carries the cookie (a browser that opened the socket
        # first still sticks), and one with a cookie reaches that node (the SDK's reconnect).
        status, headers = exchange(lb.port, request(lb.port, "/ws", upgrade=True))
        self.assertEqual(status, 101)
        first = sticky_cookie(headers)
        self.assertIn(first, ("a", "b"))
        self.assertEqual(headers[BACKEND_HEADER.lower()], [first])
        for name in ("b", "a"):
            status, headers = exchange(lb.port, request(lb.port, "/ws", cookie=name,
                                                        upgrade=True))
            self.assertEqual((status, headers[BACKEND_HEADER.lower()]), (101, [name]))

        # kill -9 of b: out of the rotation within a second (checks every 200 ms, fall 2),
        # and b's visitors (its cookie) are served by a.
        started = reactor.seconds()
        nodes[1].signal(signal.SIGKILL)
        await lb.until_state("b", "DOWN", timeout=5)
        self.assertLess(reactor.seconds() - started, 3.0)
        for _ in range(3):
            status, headers = exchange(lb.port, request(lb.port, cookie="b"))
            self.assertEqual((status, headers[BACKEND_HEADER.lower()]), (200, ["a"]))
            self.assertEqual(sticky_cookie(headers), "a")  # re-stuck to the survivor
        status, headers = exchange(lb.port, request(lb.port, "/ws", cookie="b", upgrade=True))
        self.assertEqual((status, headers[BACKEND_HEADER.lower()]), (101, ["a"]))

        # SIGTERM of a (no calls): it drains, leaves with status 0, HAProxy takes it out.
        nodes[0].signal(signal.SIGTERM)
        assert nodes[0].process is not None
        self.assertEqual(await nodes[0].process.wait_exit(timeout=20), 0)
        await lb.until_state("a", "DOWN", timeout=5)
        status, _ = exchange(lb.port, request(lb.port))
        self.assertEqual(status, 503)  # HAProxy's own: no node left


class _SipClient(protocol.DatagramProtocol):
    """Sends INVITEs to the dispatcher and collects each one's final response status."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.finals: dict[str, defer.Deferred[int]] = {}

    def invite(self, user: str) -> defer.Deferred[int]:
        assert self.transport is not None
        call_id = uuid.uuid4().hex
        port = self.transport.getHost().port
        branch = "z9hG4bK" + uuid.uuid4().hex[:16]
        message = (
            f"INVITE sip:{user}@127.0.0.1 SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch={branch};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:pbx@pbx.invalid>;tag={uuid.uuid4().hex[:8]}\r\n"
            f"To: <sip:{user}@127.0.0.1>\r\n"
            f"Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\n"
            f"Contact: <sip:pbx@127.0.0.1:{port}>\r\nContent-Length: 0\r\n\r\n")
        self.finals[call_id] = defer.Deferred()
        self.transport.write(message.encode(), self.target)
        return self.finals[call_id]

    def datagramReceived(self, data: bytes, addr: Any) -> None:  # noqa: N802 (Twisted API)
        text = data.decode(errors="replace")
        if not text.startswith("SIP/2.0 "):
            return
        status = int(text.split()[1])
        call_id = re.search(r"^(?:Call-ID|i):\s*(\S+)", text, re.M | re.I)
        if status < 200 or call_id is None:
            return
        final = self.finals.get(call_id.group(1))
        if final is not None and not final.called:
            final.callback(status)
            # ACK the non-2xx final (hop by hop, same branch): Kamailio stops retransmitting
            via = re.search(r"^Via:.*$", text, re.M)
            headers = "\r\n".join(re.findall(r"^(?:From|To|Call-ID):.*$", text, re.M | re.I))
            ack = (f"ACK sip:gw@127.0.0.1 SIP/2.0\r\n{via.group(0) if via else ''}\r\n"
                   f"{headers}\r\nCSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
            assert self.transport is not None
            self.transport.write(ack.encode(), addr)


class DispatcherFrontTests(TwistdTestCase):
    timeout = 120

    def dispatched(self, ds: Dispatcher) -> list[str]:
        """The node names the dispatcher sent calls to, in order (its log)."""
        by_uri = {ds.uri(name): name for name in NODE_NAMES}
        return [by_uri.get(uri, uri)
                for uri in re.findall(r"DISPATCH gw\d+ to (\S+)", ds.log_text())]

    async def test_calls_spread_over_active_nodes_and_dead_node_dropped(self) -> None:
        nodes = await start_nodes(self)
        ds = Dispatcher([(n.name, n.sip_port) for n in nodes], ping=1)
        await ds.start()
        self.addCleanup(ds.stop)
        await ds.until_active({"a": True, "b": True})

        client = _SipClient((ds.host, ds.port))
        listening = reactor.listenUDP(0, client, interface="127.0.0.1")
        self.addCleanup(listening.stopListening)
        # Four calls for the cluster: round robin, two each; every node answered itself (no
        # session has that user: a refusal of the node's, not a 503 or a timeout).
        statuses = [await client.invite(f"gw{i}") for i in range(4)]
        self.assertEqual(sorted(self.dispatched(ds)), ["a", "a", "b", "b"])
        for status in statuses:
            self.assertNotIn(status, (408, 500, 503))

        # kill -9 of b: its next OPTIONS probe goes unanswered (2 s), so it is inactive within
        # a few seconds, and every later call goes to a.
        started = reactor.seconds()
        nodes[1].signal(signal.SIGKILL)
        await ds.until_active({"a": True, "b": False}, timeout=10)
        self.assertLess(reactor.seconds() - started, 6.0)
        before = len(self.dispatched(ds))
        for i in range(4, 8):
            self.assertNotIn(await client.invite(f"gw{i}"), (408, 503))
        self.assertEqual(self.dispatched(ds)[before:], ["a"] * 4)
