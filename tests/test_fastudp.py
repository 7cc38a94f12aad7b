"""wcsgw.media.fastudp: media sockets read and written straight on the asyncio loop.

The drain is driven by hand on a private loop that never runs (no timing in the test): a
wake-up reads at most ``batch`` datagrams, in order, each with its (host, port) source (and
one only, for ``PROBE`` wake-ups after a drain that found at most one) —
on 127.0.0.1, ::1 and a dual-stack ``::`` socket; writes check an address once and refuse a
hostname or the other family as Twisted did; errors are dropped and counted; a failing
handler is logged and the drain goes on; close removes the reader and frees the port.  Then
``listen_udp`` under the real reactor (the asyncio one) and under a fake one (the fallback).
"""

from __future__ import annotations

import asyncio
import select
import socket
from typing import Any

from twisted.internet import reactor
from twisted.internet.error import CannotListenError
from twisted.internet.protocol import DatagramProtocol
from twisted.trial.unittest import SkipTest, SynchronousTestCase, TestCase

from tests.support import EventLog, inline
from wcsgw.media.fastudp import PROBE, FastUdpPort, asyncio_loop, listen_udp

#: generous: only bounds how long a broken run waits for a datagram to be readable
WAIT = 15.0


def has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


class Collect:
    def __init__(self) -> None:
        self.got: list[tuple[bytes, Any]] = []

    def __call__(self, data: bytes, addr: Any) -> None:
        self.got.append((data, addr))


class DrainTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.loop = asyncio.SelectorEventLoop()
        self.addCleanup(self.loop.close)

    def socketpair_port(self, receive: Any, batch: int) -> tuple[FastUdpPort, socket.socket]:
        """A port on one end of a datagram socketpair (which delivers synchronously, so what a
        wake-up reads is exact) and the other end to send from; both closed at the end."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(theirs.close)
        ours.setblocking(False)
        port = FastUdpPort(self.loop, ours, receive, batch=batch)
        self.addCleanup(port.stopListening)
        return port, theirs

    def bound(self, host: str, receive: Collect, batch: int = 64) -> FastUdpPort:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.setblocking(False)
        sock.bind((host, 0))
        port = FastUdpPort(self.loop, sock, receive, batch)
        self.addCleanup(port.stopListening)
        return port

    def sender(self, family: int, host: str) -> socket.socket:
        s = socket.socket(family, socket.SOCK_DGRAM)
        s.bind((host, 0))
        self.addCleanup(s.close)
        return s

    def drain_all(self, port: FastUdpPort, got: Collect, total: int) -> list[int]:
        """Wake the port the way the loop would (when readable) until ``total`` arrived;
        returns how many each wake-up handed on."""
        counts = []
        while len(got.got) < total:
            assert port.socket is not None
            readable, _, _ = select.select([port.socket], [], [], WAIT)
            self.assertTrue(readable, f"only {len(got.got)} of {total} datagrams arrived")
            before = len(got.got)
            port._drain()
            counts.append(len(got.got) - before)
        return counts

    def test_a_wake_up_reads_at_most_batch_datagrams(self) -> None:
        """A socketpair delivers synchronously, so the counts per wake-up are exact."""
        got = Collect()
        port, theirs = self.socketpair_port(got, batch=8)
        for i in range(20):
            theirs.send(b"p%d" % i)
        sizes = []
        for _ in range(4):
            before = len(got.got)
            port._drain()
            sizes.append(len(got.got) - before)
        self.assertEqual(sizes, [8, 8, 4, 0])
        self.assertEqual([d for d, _ in got.got], [b"p%d" % i for i in range(20)])

    def test_after_a_drain_that_found_one_wake_ups_read_one_then_drain_again(self) -> None:
        """The usual media socket (one datagram per wake-up) saves the failing second read;
        a backlog is still read, in order, one per wake-up until the next drain sees it."""
        got = Collect()
        port, theirs = self.socketpair_port(got, batch=8)
        theirs.send(b"first")
        port._drain()  # found one: the next PROBE wake-ups read one each
        for i in range(PROBE + 14):
            theirs.send(b"p%d" % i)
        sizes = []
        for _ in range(PROBE + 3):
            before = len(got.got)
            port._drain()
            sizes.append(len(got.got) - before)
        self.assertEqual(sizes, [1] * PROBE + [8, 6, 0])
        self.assertEqual([d for d, _ in got.got], [b"first"] + [b"p%d" % i for i in range(PROBE + 14)])
        theirs.send(b"a")
        theirs.send(b"b")
        port._drain()  # the empty drain went back to one per wake-up
        self.assertEqual([d for d, _ in got.got[-1:]], [b"a"])
        port._drain()
        self.assertEqual([d for d, _ in got.got[-2:]], [b"a", b"b"])

    def test_a_one_datagram_wake_up_counts_errors_and_survives_its_handler(self) -> None:
        addr = ("192.0.2.1", 4000)
        seen: list[bytes] = []

        def receive(data: bytes, source: Any) -> None:
            seen.append(data)
            if data == b"bad":
                raise RuntimeError("handler bug")

        sock = FakeSocket([(b"a", addr)])
        port = FastUdpPort(self.loop, sock, receive)  # type: ignore[arg-type]
        self.addCleanup(port.stopListening)
        port._drain()  # found one: one per wake-up from now
        sock.script += [ConnectionRefusedError(), OSError(113, "No route to host"),
                        (b"bad", addr), (b"b", addr)]
        for _ in range(4):
            port._drain()
        self.assertEqual(seen, [b"a", b"bad", b"b"])
        self.assertEqual((port.refused, port.errors), (1, 1))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        port.stopListening()
        port._drain()  # a wake-up queued before the close: nothing read, nothing counted
        self.assertEqual((seen[-1], port.errors), (b"b", 1))

    def check_many(self, family: int, host: str) -> None:
        got = Collect()
        port = self.bound(host, got, batch=16)
        peer = self.sender(family, host)
        target = port.getHost()
        for i in range(100):
            peer.sendto(b"x%03d" % i, (target.host, target.port))
        counts = self.drain_all(port, got, 100)
        self.assertLessEqual(max(counts), 16)
        self.assertEqual([d for d, _ in got.got], [b"x%03d" % i for i in range(100)])
        source = peer.getsockname()[:2]
        self.assertEqual({a for _, a in got.got}, {source})
        # and back, to the address as it came in
        port.write(b"back", got.got[0][1])
        peer.settimeout(WAIT)
        data, addr = peer.recvfrom(64)
        self.assertEqual((data, addr[:2]), (b"back", (target.host, target.port)))

    def test_ipv4_many_datagrams_in_order_with_their_source(self) -> None:
        self.check_many(socket.AF_INET, "127.0.0.1")

    def test_ipv6_many_datagrams_in_order_with_their_source(self) -> None:
        if not has_ipv6_loopback():
            raise SkipTest("no IPv6 on the loopback interface")
        self.check_many(socket.AF_INET6, "::1")

    def test_dual_stack_any_hears_ipv4_as_mapped_and_answers_it(self) -> None:
        if not has_ipv6_loopback():
            raise SkipTest("no IPv6 on the loopback interface")
        try:
            with open("/proc/sys/net/ipv6/bindv6only") as f:
                if f.read().strip() == "1":
                    raise SkipTest("this host makes :: sockets IPv6-only")
        except OSError:
            pass
        got = Collect()
        port = self.bound("::", got)
        peer = self.sender(socket.AF_INET, "127.0.0.1")
        peer.sendto(b"v4", ("127.0.0.1", port.getHost().port))
        self.drain_all(port, got, 1)
        data, source = got.got[0]
        self.assertEqual((data, source), (b"v4", ("::ffff:127.0.0.1", peer.getsockname()[1])))
        port.write(b"reply", source)
        peer.settimeout(WAIT)
        self.assertEqual(peer.recvfrom(64)[0], b"reply")

    def test_write_refuses_a_hostname_and_the_other_family(self) -> None:
        port = self.bound("127.0.0.1", Collect())
        with self.assertRaises(ValueError):
            port.write(b"x", ("localhost", 9))
        with self.assertRaises(ValueError):
            port.write(b"x", ("2001:db8::1", 9))
        with self.assertRaises(ValueError):  # refused every time, not only the first
            port.write(b"x", ("2001:db8::1", 9))
        peer = self.sender(socket.AF_INET, "127.0.0.1")
        port.write(b"ok", peer.getsockname())
        peer.settimeout(WAIT)
        self.assertEqual(peer.recvfrom(64)[0], b"ok")

    def test_read_errors_are_counted_and_the_drain_goes_on(self) -> None:
        """ICMP errors surface on recvfrom (Linux reports them on the next call): counted,
        the datagrams behind them still handed on."""
        got = Collect()
        sock = FakeSocket([ConnectionRefusedError(), (b"a", ("192.0.2.1", 4000)),
                           OSError(113, "No route to host"), (b"b", ("192.0.2.1", 4000))])
        port = FastUdpPort(self.loop, sock, got)  # type: ignore[arg-type]
        self.addCleanup(port.stopListening)
        port._drain()
        self.assertEqual([d for d, _ in got.got], [b"a", b"b"])
        self.assertEqual((port.refused, port.errors), (1, 1))

    def test_a_refused_send_is_counted_other_send_errors_raise(self) -> None:
        sock = FakeSocket([])
        port = FastUdpPort(self.loop, sock, Collect())  # type: ignore[arg-type]
        self.addCleanup(port.stopListening)
        sock.send_error = ConnectionRefusedError()
        port.write(b"x", ("192.0.2.1", 4000))
        self.assertEqual(port.refused, 1)
        sock.send_error = BlockingIOError()  # a full send buffer: the caller counts it
        self.assertRaises(OSError, port.write, b"x", ("192.0.2.1", 4000))

    def test_a_failing_handler_is_logged_and_the_next_datagram_still_arrives(self) -> None:
        got = Collect()

        def receive(data: bytes, addr: Any) -> None:
            if data == b"bad":
                raise RuntimeError("handler bug")
            got(data, addr)

        sock = FakeSocket([(b"bad", ("192.0.2.1", 1)), (b"good", ("192.0.2.1", 1))])
        port = FastUdpPort(self.loop, sock, receive)  # type: ignore[arg-type]
        self.addCleanup(port.stopListening)
        port._drain()
        self.assertEqual([d for d, _ in got.got], [b"good"])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_close_removes_the_reader_and_frees_the_port(self) -> None:
        got = Collect()
        port = self.bound("127.0.0.1", got)
        number = port.getHost().port
        sock, fd = port.socket, port._fd
        assert sock is not None
        port.stopListening()
        port.stopListening()  # idempotent
        self.assertFalse(self.loop.remove_reader(fd))  # already removed
        self.assertEqual(sock.fileno(), -1)
        self.assertIsNone(port.socket)
        port._drain()  # a wake-up already queued when it closed: nothing happens
        self.assertEqual(got.got, [])
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as again:
            again.bind(("127.0.0.1", number))

    def test_a_handler_that_closes_the_port_ends_the_drain(self) -> None:
        ports: list[FastUdpPort] = []
        seen: list[bytes] = []

        def receive(data: bytes, addr: Any) -> None:
            seen.append(data)
            ports[0].stopListening()

        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(theirs.close)
        ours.setblocking(False)
        ports.append(FastUdpPort(self.loop, ours, receive))
        theirs.send(b"one")
        theirs.send(b"two")
        ports[0]._drain()
        self.assertEqual(seen, [b"one"])
        self.assertEqual(ports[0].errors, 0)


class FakeSocket:
    """recvfrom replays ``script`` (datagrams or exceptions), then would block."""

    family = socket.AF_INET

    def __init__(self, script: list[Any]) -> None:
        self.script = list(script)
        self.send_error: BaseException | None = None
        self.r, self.w = socket.socketpair()  # a real fd for add_reader

    def fileno(self) -> int:
        return self.r.fileno()

    def recvfrom(self, size: int) -> Any:
        if not self.script:
            raise BlockingIOError()
        item = self.script.pop(0)
        if isinstance(item, BaseException):
            raise item
        return item

    def sendto(self, data: bytes, addr: Any) -> int:
        if self.send_error is not None:
            raise self.send_error
        return len(data)

    def close(self) -> None:
        self.r.close()
        self.w.close()


class Echo(DatagramProtocol):
    def __init__(self, log: EventLog) -> None:
        self.log = log

    def datagramReceived(self, data: bytes, addr: Any) -> None:  # noqa: N802 (Twisted API)
        self.log(data)
        assert self.transport is not None
        self.transport.write(b"echo:" + data, addr)


class ListenTests(TestCase):
    @inline
    async def test_under_the_asyncio_reactor_a_round_trip(self) -> None:
        if asyncio_loop(reactor) is None:
            raise SkipTest("needs --reactor=asyncio")
        got = EventLog()
        port = listen_udp(reactor, 0, lambda data, addr: got((data, addr)), "127.0.0.1")
        self.addCleanup(port.stopListening)
        self.assertIsInstance(port, FastUdpPort)
        heard = EventLog()
        echo = reactor.listenUDP(0, Echo(heard), interface="127.0.0.1")
        self.addCleanup(echo.stopListening)
        where = ("127.0.0.1", echo.getHost().port)
        for i in range(50):
            port.write(b"%d" % i, where)
        await heard.wait_for(lambda d: d == b"49")
        replies = await got.wait_for(lambda e: e[0] == b"echo:49")
        self.assertEqual(replies[1], where)
        self.assertEqual(sorted(e[0] for e in got.events),
                         sorted(b"echo:%d" % i for i in range(50)))

    def test_a_busy_port_is_cannot_listen(self) -> None:
        if asyncio_loop(reactor) is None:
            raise SkipTest("needs --reactor=asyncio")
        first = listen_udp(reactor, 0, lambda d, a: None, "127.0.0.1")
        self.addCleanup(first.stopListening)
        with self.assertRaises(CannotListenError):
            listen_udp(reactor, first.getHost().port, lambda d, a: None, "127.0.0.1")


class FallbackTests(SynchronousTestCase):
    def test_a_reactor_without_an_asyncio_loop_gets_its_own_listen_udp(self) -> None:
        calls: list[tuple[int, Any, str]] = []

        class FakeReactor:
            def listenUDP(self, port: int, protocol: Any, interface: str = "") -> str:  # noqa: N802
                calls.append((port, protocol, interface))
                return "twisted-port"

        got = Collect()
        self.assertEqual(listen_udp(FakeReactor(), 5004, got, "::1"), "twisted-port")
        port, protocol, interface = calls[0]
        self.assertEqual((port, interface), (5004, "::1"))
        protocol.datagramReceived(b"d", ("::1", 7, 0, 0))  # Twisted's IPv6 4-tuple, cut to 2
        self.assertEqual(got.got, [(b"d", ("::1", 7))])
