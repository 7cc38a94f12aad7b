"""Media UDP sockets straight on the asyncio loop, off Twisted's per-datagram machinery.

Why: at 200 relayed calls Twisted's ``udp.Port`` was most of the relay's cost — ``write``
checks the address with ``isIPAddress``/``isIPv6Address`` on every datagram before
``sendto``, each wake-up goes through ``callWithLogger``/``callWithContext``, and ``doRead``
hands every datagram through a protocol object (docs/performance.md, "Where the time goes").
A media socket needs none of that: it is bound once, reads whatever is queued when the loop
says it is readable, and sends to addresses the latch or ICE already fixed.

:func:`listen_udp` binds a non-blocking socket the way ``reactor.listenUDP`` did (an IPv6
``interface`` gives an ``AF_INET6`` socket, ``::`` stays dual-stack as the kernel makes it)
and registers it with ``loop.add_reader``.  Each wake-up hands what it reads to
``receive(data, (host, port))``.

How much a wake-up reads: a per-call media socket gets one datagram every 20 ms, so nearly
every wake-up finds exactly one.  Draining "until the socket is empty" then costs a second
``recvfrom`` per datagram that fails with ``EAGAIN`` (a syscall and a raised exception, about
as dear as the read that succeeded).  So a socket whose last full drain found at most one
datagram reads just one per wake-up for the next :data:`PROBE` wake-ups, relying on the
loop's level-triggered readiness to come back at once if more is queued; then it drains again
(up to :data:`BATCH`, so one busy socket cannot starve the others), and stays draining while
drains find more than one (a backlog, the shared browser port).
Under a reactor that is not Twisted's asyncio reactor (tests' fakes) it falls back to
``reactor.listenUDP`` with the same ``receive``, so callers do not care which they got.

Errors, as Twisted had them: a refused send or an ICMP error reported on read is dropped and
counted (:attr:`FastUdpPort.refused`, :attr:`FastUdpPort.errors`); other send errors
(``EAGAIN`` on a full buffer, no route) raise ``OSError`` to the caller, which counts them; a
destination that is not an IP of the socket's family raises ``ValueError`` (Twisted's
``InvalidAddressError`` is one) — checked once per address, not per datagram.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any, Callable, NamedTuple, Optional

from twisted.internet.error import CannotListenError, InvalidAddressError
from twisted.internet.protocol import DatagramProtocol
from twisted.python import log

__all__ = ["BATCH", "PROBE", "MAX_PACKET", "Bound", "FastUdpPort", "listen_udp", "asyncio_loop"]

#: datagrams read per wake-up at most (a socket with more waiting is called again next turn)
BATCH = 64
#: wake-ups that read one datagram each after a drain found at most one (then drain again)
PROBE = 16
#: the largest datagram read (Twisted's ``maxPacketSize``; media packets are far smaller)
MAX_PACKET = 8192
#: validated destinations remembered per socket before the memo starts over
_MEMO = 4096

Address = tuple[str, int]
Receive = Callable[[bytes, Address], None]


class Bound(NamedTuple):
    """Where a socket is bound (what ``getHost()`` gave for a Twisted port)."""

    host: str
    port: int


def asyncio_loop(reactor: Any) -> Optional[asyncio.AbstractEventLoop]:
    """The asyncio loop under ``reactor`` when it is Twisted's asyncio reactor, else None."""
    from twisted.internet.asyncioreactor import AsyncioSelectorReactor

    if isinstance(reactor, AsyncioSelectorReactor):
        loop: asyncio.AbstractEventLoop = reactor._asyncioEventloop
        return loop
    return None


def _is_ip(host: str, family: int) -> bool:
    try:
        socket.inet_pton(family, host)
    except (OSError, ValueError, TypeError):
        return False
    return True


class FastUdpPort:
    """One bound UDP socket on the loop (see the module docstring).  The method names are
    the Twisted port's (``write``, ``getHost``, ``stopListening``), so owners keep theirs."""

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket,
                 receive: Receive, batch: int = BATCH) -> None:
        self.socket: Optional[socket.socket] = sock
        self.family = sock.family
        self.batch = batch
        #: sends refused (ICMP port unreachable) and read errors from ICMP: dropped
        self.refused = 0
        self.errors = 0
        self._loop = loop
        self._fd = sock.fileno()
        self._receive = receive
        self._sendto = sock.sendto
        self._valid: set[Address] = set()
        #: wake-ups left that read one datagram (0: drain; see the module docstring)
        self._single = 0
        self._v6 = self.family == socket.AF_INET6
        loop.add_reader(self._fd, self._drain)

    def getHost(self) -> Bound:  # noqa: N802 (the Twisted port's name)
        assert self.socket is not None, "closed"
        host, port = self.socket.getsockname()[:2]
        return Bound(host, port)

    def _drain(self) -> None:
        """The loop says readable: hand on one datagram, or drain up to ``batch`` (see the
        module docstring for which)."""
        sock = self.socket
        if sock is None:
            return
        if self._single:
            self._single -= 1
            try:
                data, addr = sock.recvfrom(MAX_PACKET)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._read_error(exc)
                return
            try:
                self._receive(data, addr[:2] if self._v6 else addr)
            except Exception:
                log.err(None, "media datagram handler failed")  # type: ignore[no-untyped-call]
            return
        recvfrom = sock.recvfrom
        receive = self._receive
        v6 = self._v6
        n = 0
        for _ in range(self.batch):
            try:
                data, addr = recvfrom(MAX_PACKET)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                if not self._read_error(exc):
                    return
                continue
            n += 1
            try:
                receive(data, addr[:2] if v6 else addr)
            except Exception:
                log.err(None, "media datagram handler failed")  # type: ignore[no-untyped-call]
        else:
            return  # ``batch`` read and maybe more queued: keep draining
        if n <= 1:
            self._single = PROBE

    def _read_error(self, exc: OSError) -> bool:
        """Count a failed read; False when the socket was closed meanwhile (stop reading)."""
        if isinstance(exc, ConnectionRefusedError):  # an ICMP error for an earlier send, now cleared
            self.refused += 1
            return True
        if self.socket is None:  # closed by whoever took the previous datagram
            return False
        self.errors += 1
        return True

    def _check(self, addr: Address) -> None:
        """Twisted's rules for a destination, once per address: an IP of our family."""
        host = addr[0]
        if not _is_ip(host, self.family):
            other = socket.AF_INET if self.family == socket.AF_INET6 else socket.AF_INET6
            why = ("an IPv4 or IPv6 address of the socket's family" if _is_ip(host, other)
                   else "an IP address, not a hostname")
            raise InvalidAddressError(host, f"write() needs {why}")  # type: ignore[no-untyped-call]
        if len(self._valid) >= _MEMO:
            self._valid.clear()
        self._valid.add(addr)

    def write(self, data: bytes, addr: Address) -> None:
        """Send one datagram to ``addr`` (see the module docstring for errors)."""
        if addr not in self._valid:
            self._check(addr)
        try:
            self._sendto(data, addr)
        except ConnectionRefusedError:
            self.refused += 1

    def stopListening(self) -> None:  # noqa: N802 (the Twisted port's name)
        """Stop reading and close the socket; idempotent."""
        sock, self.socket = self.socket, None
        if sock is not None:
            self._loop.remove_reader(self._fd)
            sock.close()


class _Receiver(DatagramProtocol):
    """The fallback: a Twisted protocol that hands on like :class:`FastUdpPort` does."""

    def __init__(self, receive: Receive) -> None:
        self.receive = receive

    def datagramReceived(self, data: bytes, addr: Any) -> None:  # noqa: N802 (Twisted API)
        self.receive(data, (addr[0], addr[1]))


def listen_udp(reactor: Any, port: int, receive: Receive, interface: str = "",
               batch: int = BATCH) -> Any:
    """Bind ``interface``:``port`` (0: the kernel picks) and hand each datagram to
    ``receive(data, (host, port))``.  A busy port raises ``CannotListenError`` as
    ``listenUDP`` did.  Returns a :class:`FastUdpPort`, or Twisted's port under a reactor
    without an asyncio loop."""
    loop = asyncio_loop(reactor)
    if loop is None:
        return reactor.listenUDP(port, _Receiver(receive), interface=interface)
    family = socket.AF_INET6 if _is_ip(interface, socket.AF_INET6) else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        sock.bind((interface, port))
    except OSError as exc:
        sock.close()
        raise CannotListenError(interface, port, exc) from exc  # type: ignore[no-untyped-call]
    try:
        return FastUdpPort(loop, sock, receive, batch)
    except BaseException:
        sock.close()
        raise
