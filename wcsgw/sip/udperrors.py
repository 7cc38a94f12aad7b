"""ICMP errors on the SIP UDP socket: "nothing answers at host:port", at once, not after 32 s.

Why: a REGISTER or INVITE sent over UDP to a port where no SIP server listens gets no answer,
only an ICMP port unreachable — and without this module the gateway waited for Timer F/B
(32 s) and then said "timeout", while the page showed ``ESTABLISHED``.  A transport error is
what RFC 3261 §8.1.3.1 treats as a 503: the request fails now.

Linux tells an *unconnected* UDP socket about ICMP errors only with ``IP_RECVERR``
(``IPV6_RECVERR``), and then puts each one on the socket's error queue, read with
``recvmsg(MSG_ERRQUEUE)``: the message's address is the original destination, its control
data a ``struct sock_extended_err`` (errno, origin, ICMP type and code).  Twisted's
``udp.Port`` never reads that queue (it swallows ``ECONNREFUSED`` on unconnected sockets),
and a queue left unread keeps the socket in ``POLLERR``, so the reactor would call the
port's ``doRead`` again and again.  :func:`watch` therefore drains the queue first on every
read, before the port's own ``doRead``; it costs nothing per datagram (one ``recvmsg``
returning EAGAIN per wake-up).

An ICMP error names only a destination; the transport fails the transactions whose next hop
is *exactly* that transport, address and port (:meth:`TransactionLayer.transport_error`), once
they have tried for :data:`ICMP_GRACE` — a request sent in the moment a server restarts is
retransmitted to it for that long, as before.  A
forged ICMP can therefore fail only requests to the address it names (docs/security.md).

:func:`parse_error` and :func:`reason_text` are pure (unit-tested on bytes); :func:`watch` is
the thin adapter.  Elsewhere than Linux, :func:`watch` does nothing: requests time out as
before.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import struct
import sys
from typing import Any, Callable

import attr
from twisted.logger import Logger

__all__ = ["ICMP_GRACE", "Unreachable", "drain", "parse_error", "reason_text", "watch"]

log = Logger(namespace="wcsgw.sip.transport")

# <linux/in.h>, <linux/in6.h>, <linux/errqueue.h>: not all are in Python's socket module
_SOL_IP, _IP_RECVERR = 0, 11
_SOL_IPV6, _IPV6_RECVERR = 41, 25
_ORIGIN_ICMP, _ORIGIN_ICMP6 = 2, 3
_MSG_ERRQUEUE = getattr(socket, "MSG_ERRQUEUE", 0x2000)
_EXTENDED_ERR = struct.Struct("=IBBBBII")  # ee_errno, origin, type, code, pad, info, data
#: ICMP (type 3) and ICMPv6 (type 1) destination unreachable codes -> what they mean
_ICMP_CODES = {0: "network unreachable", 1: "host unreachable", 3: "port unreachable",
               9: "network prohibited", 10: "host prohibited", 13: "communication prohibited"}
_ICMP6_CODES = {0: "no route", 1: "communication prohibited", 3: "address unreachable",
                4: "port unreachable"}
#: at most this many errors are read per wake-up (a flood of ICMP cannot hold the reactor)
MAX_ERRORS_PER_READ = 64
#: An ICMP error fails a transaction only once it has been trying this long (seconds): a
#: server starting up still gets the first retransmissions.  With the RFC's T1 = 0.5 s the
#: request then fails at its retransmission at 3.5 s instead of Timer B/F's 32 s.
ICMP_GRACE = 3.0


@attr.s(frozen=True, slots=True, auto_attribs=True)
class Unreachable:
    """An ICMP error for a datagram we sent to ``host``:``port`` (``host`` an IP literal,
    IPv6 without brackets, an IPv4-mapped IPv6 address as plain IPv4)."""

    host: str
    port: int
    #: "port unreachable", "host unreachable", ...
    what: str


def _canonical(host: str) -> str:
    host = host.split("%", 1)[0]  # a scope id is not part of the address a target names
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def parse_error(address: Any, ancdata: list[tuple[int, int, bytes]]) -> Unreachable | None:
    """The destination-unreachable an error-queue message reports, or None for anything else
    (a local error such as EMSGSIZE, another ICMP type, a message that does not parse).

    ``address`` is ``recvmsg``'s address (the original destination: ``(host, port)`` or
    ``(host, port, flowinfo, scope_id)``), ``ancdata`` its control messages."""
    if not isinstance(address, tuple) or len(address) < 2:
        return None
    for level, kind, data in ancdata:
        if (level, kind) not in ((_SOL_IP, _IP_RECVERR), (_SOL_IPV6, _IPV6_RECVERR)):
            continue
        if len(data) < _EXTENDED_ERR.size:
            return None
        _errno, origin, icmp_type, code, _pad, _info, _data = _EXTENDED_ERR.unpack_from(data)
        if origin == _ORIGIN_ICMP and icmp_type == 3:
            what = _ICMP_CODES.get(code)
        elif origin == _ORIGIN_ICMP6 and icmp_type == 1:
            what = _ICMP6_CODES.get(code)
        else:
            return None
        if what is None:
            what = "destination unreachable"
        return Unreachable(_canonical(str(address[0])), int(address[1]), what)
    return None


def reason_text(error: Unreachable) -> str:
    """``No SIP server answers at 127.0.0.1:5070 (ICMP port unreachable)``: what the session
    and the call are told (it names the host:port to check)."""
    host = f"[{error.host}]" if ":" in error.host else error.host
    return f"No SIP server answers at {host}:{error.port} (ICMP {error.what})"


def enable(sock: socket.socket) -> bool:
    """Ask the kernel to queue ICMP errors on ``sock`` (Linux only); whether it did."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        if sock.family == socket.AF_INET6:
            sock.setsockopt(_SOL_IPV6, _IPV6_RECVERR, 1)
        else:
            sock.setsockopt(_SOL_IP, _IP_RECVERR, 1)
    except OSError as exc:
        log.info("ICMP errors not reported on the SIP UDP socket ({exc})", exc=exc)
        return False
    return True


def drain(sock: socket.socket) -> list[Unreachable]:
    """Read the error queue of ``sock`` (non-blocking) until it is empty or
    :data:`MAX_ERRORS_PER_READ` were read; the unreachables among them."""
    found: list[Unreachable] = []
    for _ in range(MAX_ERRORS_PER_READ):
        try:
            _data, ancdata, _flags, address = sock.recvmsg(1, 512, _MSG_ERRQUEUE)
        except BlockingIOError:
            break
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EWOULDBLOCK):
                log.info("reading the SIP UDP socket's error queue failed: {exc}", exc=exc)
            break
        error = parse_error(address, ancdata)
        if error is not None:
            found.append(error)
    return found


def watch(port: Any, on_unreachable: Callable[[Unreachable], None]) -> bool:
    """Report the ICMP errors of a listening Twisted ``udp.Port`` to ``on_unreachable``:
    enable them on its socket and drain the queue before each of the port's reads.  A port
    without a real socket (a test's fake) is left alone; returns whether it is watched."""
    sock = getattr(port, "socket", None)
    read = getattr(port, "doRead", None)
    if not isinstance(sock, socket.socket) or read is None or not enable(sock):
        return False

    def do_read() -> None:
        for error in drain(sock):
            try:
                on_unreachable(error)
            except Exception:  # noqa: BLE001 - one report must not stop the reads
                log.failure("handling {error}", error=error)
        read()

    port.doRead = do_read
    return True
