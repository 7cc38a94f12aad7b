"""Twisted adapters for SIP over UDP, TCP and TLS: sockets in, :class:`SipEndpoint` in the middle.

Everything protocol-shaped lives in the sans-IO endpoint; this module only moves bytes,
frames TCP streams, keeps the one timer the endpoint asks for, and enforces the resource
limits of the front door (message size, buffered bytes and number of connections, idle
connections) so that no peer can make the process grow without bound.

TLS (RFC 3261 §26.3.1) is TCP with Twisted's TLS wrapper below the same :class:`SipStream`:
outbound connections verify the server against the name the endpoint asked for (the host
before DNS, :class:`~wcsgw.sip.tls.SipTls`), and one connection per (transport, host, port) is
shared by every transaction and dialog going there, as for TCP.

Flushing is the adapter's job alone: it installs itself as the endpoint's ``wake`` and sends
what the endpoint queued (then re-arms its timer) as soon as it is told, in order, in the same
reactor turn.  Within one of its own entries (a datagram, a stream frame, the timer, a failed
connection) it flushes once, after the endpoint returned, so a burst of output coalesces into
one pass; a call from outside (the call layer hanging up) is flushed before it returns.
"""

from __future__ import annotations

import ipaddress
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from twisted.internet import defer, error
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger
from twisted.protocols.tls import TLSMemoryBIOFactory

from wcsgw.sip.endpoint import SipEndpoint
from wcsgw.sip.errors import SipParseError
from wcsgw.sip.reactor import DelayedCall, ListeningPort, SipReactor, UdpPort
from wcsgw.sip.stream import ConnectFactory, ListenFactory, SipStream, StreamKey
from wcsgw.sip.target import Target
from wcsgw.sip.tls import SipTls
from wcsgw.sip.udperrors import ICMP_GRACE, Unreachable, reason_text, watch

log = Logger(namespace="wcsgw.sip.transport")


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class _UDP(DatagramProtocol):
    def __init__(self, owner: "SipTransport") -> None:
        self.owner = owner

    def datagramReceived(self, data: bytes, addr: tuple[str, int]) -> None:  # noqa: N802
        source = Target("UDP", addr[0], addr[1])
        if len(data) > self.owner.max_message_size:
            # The read is one byte longer than the limit, so this datagram was cut: parsing
            # what is left could accept a message with a truncated body.
            self.owner.stream_broken(SipParseError("datagram larger than the limit", 413), source)
            return
        self.owner.received(data, source)

    def connectionRefused(self) -> None:  # noqa: N802 - only on connected UDP; we are not
        pass  # ICMP errors reach us through the error queue instead (wcsgw.sip.udperrors)


#: How many resolved UDP destinations keep the name they were sent for (an ICMP error names
#: the address; the transactions know the name)
MAX_NAMED_DESTINATIONS = 256


class SipTransport:
    """UDP and TCP on one port, feeding one :class:`SipEndpoint`, driving its timer."""

    def __init__(
        self,
        reactor: SipReactor,
        listen: str,
        port: int,
        *,
        max_message_size: int = 65535,
        max_connections: int = 1024,
        idle_timeout: float = 300.0,
        resolve: Callable[[str], defer.Deferred[str]] | None = None,
        tls: SipTls | None = None,
        tls_port: int = 0,
        keepalive_interval: float = 0.0,
    ) -> None:
        self.reactor = reactor
        self.listen = listen
        self.requested_port = port
        self.port = port
        self.max_message_size = max_message_size
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        #: the TLS contexts; None: TLS targets fail as unreachable, and no TLS listener
        self.tls = tls
        self.requested_tls_port = tls_port
        self.tls_port = 0
        #: seconds between CRLF pings on the connections we open; 0: none (RFC 5626 §4.4.1)
        self.keepalive_interval = keepalive_interval
        self.endpoint: SipEndpoint | None = None
        self.streams: set[SipStream] = set()
        self.refused_connections = 0
        self._by_addr: dict[StreamKey, SipStream] = {}
        self._connecting: dict[StreamKey, list[bytes]] = {}
        self._udp_port: UdpPort | None = None
        self._tcp_port: ListeningPort | None = None
        self._tls_port: ListeningPort | None = None
        self._timer: DelayedCall | None = None
        self._entries = 0  # how deep we are inside our own calls into the endpoint
        self._flushing = False
        self._dirty = False  # woken while flushing or inside an entry: flush (again)
        self._resolve: Callable[[str], defer.Deferred[str]] | None = (
            resolve or getattr(reactor, "resolve", None))
        #: (address, port) -> the targets by name last sent there over UDP (for ICMP errors)
        self._named_udp: dict[tuple[str, int], set[Target]] = {}
        #: whether ICMP errors of the UDP socket are read (Linux; a real socket)
        self.icmp_errors = False

    # -- lifecycle ----------------------------------------------------------------------

    def bind(self) -> int:
        """Listen on UDP and TCP, same port; with port 0, find one free for both."""
        for _attempt in range(20):
            udp_port = self.reactor.listenUDP(self.requested_port, _UDP(self),
                                              interface=self.listen,
                                              maxPacketSize=self.max_message_size + 1)
            port: int = udp_port.getHost().port
            try:
                tcp_port = self.reactor.listenTCP(port, ListenFactory(self),
                                                  interface=self.listen)
            except error.CannotListenError:
                udp_port.stopListening()
                if self.requested_port:
                    raise
                continue
            self._udp_port, self._tcp_port, self.port = udp_port, tcp_port, port
            self.icmp_errors = watch(udp_port, self._unreachable)
            self._bind_tls()
            return port
        raise error.CannotListenError(  # type: ignore[no-untyped-call]
            self.listen, self.requested_port, "no port free for UDP+TCP")

    def _bind_tls(self) -> None:
        """The TLS listener (``sip.tls_port``), when configured: its own port, same address."""
        if not self.requested_tls_port or self.tls is None or self.tls.server is None:
            return
        inner: Any = ListenFactory(self, "TLS")
        factory = TLSMemoryBIOFactory(self.tls.server, False, inner)
        self._tls_port = self.reactor.listenTCP(self.requested_tls_port, factory,
                                                interface=self.listen)
        self.tls_port = self._tls_port.getHost().port

    def attach(self, endpoint: SipEndpoint) -> None:
        self.endpoint = endpoint
        endpoint.wake = self._wake
        self._flush()

    def stop(self) -> defer.Deferred[Any]:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        waits: list[defer.Deferred[Any]] = []
        for port in (self._udp_port, self._tcp_port, self._tls_port):
            if port is not None:
                waits.append(defer.maybeDeferred(port.stopListening))
        self._udp_port = self._tcp_port = self._tls_port = None
        for stream in list(self.streams):
            stream.abort()
        return defer.DeferredList(waits)

    # -- from the sockets ---------------------------------------------------------------

    def received(self, data: bytes, source: Target) -> None:
        endpoint = self.endpoint
        if endpoint is None:
            return
        with self._entry():
            endpoint.receive_bytes(data, source, self.reactor.seconds())

    def stream_broken(self, exc: SipParseError, peer: Target | None) -> None:
        """Counted and logged (rate-limited) like any malformed message."""
        endpoint = self.endpoint
        if endpoint is not None and peer is not None:
            with self._entry():
                endpoint.malformed(exc, peer, self.reactor.seconds())

    def stream_up(self, stream: SipStream) -> None:
        self.streams.add(stream)
        assert stream.peer is not None
        key = stream.outbound_key or (stream.transport_name, stream.peer.host, stream.peer.port)
        self._by_addr.setdefault(key, stream)
        queued = self._connecting.pop(key, [])
        for data in queued:
            stream.send(data)

    def stream_down(self, stream: SipStream) -> None:
        self.streams.discard(stream)
        for key, value in list(self._by_addr.items()):
            if value is stream:
                del self._by_addr[key]

    def connect_failed(self, key: StreamKey, target: Target) -> None:
        self._connecting.pop(key, None)
        self._report_failure(target)

    def flow_failed(self, stream: SipStream) -> None:
        """An outbound connection failed its TLS handshake or its keep-alive: what was sent or
        queued over it fails now (a transport error, RFC 3261 §8.1.3.1), against the target as
        the endpoint named it and as it is on the wire."""
        self.stream_down(stream)
        if stream.outbound_key is not None:
            self._connecting.pop(stream.outbound_key, None)
        for target in {t for t in (stream.named, stream.peer) if t is not None}:
            self._fail(Target(target.transport, target.host, target.port))

    # -- to the sockets -----------------------------------------------------------------

    @contextmanager
    def _entry(self) -> Iterator[None]:
        """Around each call from a socket or the timer into the endpoint: what it queues is
        flushed once, when it returns (coalesced, still in this reactor turn)."""
        self._entries += 1
        try:
            yield
        finally:
            self._entries -= 1
            if self._entries == 0:
                self._flush()

    def _wake(self) -> None:
        """The endpoint's ``wake``: flush now, or when the current entry or flush ends."""
        if self._entries or self._flushing:
            self._dirty = True
            return
        self._flush()

    def _flush(self) -> None:
        """Send what the endpoint queued, start the name look-ups it asked for, and re-arm
        its timer; again while sending woke us (a resolver answering at once, ...)."""
        endpoint = self.endpoint
        if endpoint is None or self._flushing:
            return
        self._flushing = True
        try:
            self._dirty = True
            while self._dirty:
                self._dirty = False
                for data, target in endpoint.take_outgoing():
                    if endpoint.capture is not None:  # the SIP ladders (wcsgw.sip.capture)
                        endpoint.capture("sent", data, target, self.reactor.seconds())
                    self._send(data, target)
                for name in endpoint.addresses.take_lookups():
                    self._look_up(name)
            self._arm(endpoint.next_deadline())
        finally:
            self._flushing = False

    def _arm(self, deadline: float | None) -> None:
        if self._timer is not None and self._timer.active():
            if deadline is not None and abs(self._timer.getTime() - deadline) < 1e-6:
                return
            self._timer.cancel()
        self._timer = None
        if deadline is not None and self._udp_port is not None:
            delay = max(0.0, deadline - self.reactor.seconds())
            self._timer = self.reactor.callLater(delay, self._fire)

    def _fire(self) -> None:
        self._timer = None
        endpoint = self.endpoint
        if endpoint is not None:
            with self._entry():
                endpoint.handle_timer(self.reactor.seconds())

    def _send(self, data: bytes, target: Target, named: Target | None = None) -> None:
        """Send to ``target``; ``named`` is the target as the endpoint named it (a host name
        before resolution), which is what a transport error must be reported against."""
        if not is_ip(target.host):
            self._send_resolved(data, target)
            return
        if target.transport == "UDP":
            self._send_udp(data, target, named or target)
        else:
            self._send_stream(data, target, named or target)

    def _send_resolved(self, data: bytes, target: Target) -> None:
        """A host name: resolve it with the reactor's resolver (IPv4, no SRV/NAPTR), then send."""
        if self._resolve is None:
            self._fail(target)
            return
        d = self._resolve(target.host)

        def resolved(address: str) -> None:
            if self.endpoint is not None:
                # What this name is, for the trust checks (which compare by address).
                self.endpoint.addresses.learn(target.host, address)
            self._send(data, Target(target.transport, address, target.port, target.connection),
                       named=target)

        d.addCallbacks(resolved, lambda _f: self._fail(target))

    def _look_up(self, name: str) -> None:
        """Resolve a name the endpoint's trust checks asked for (an account's domain, a
        dialog's Record-Route host) with the same resolver sending uses, and tell it the
        answer; a failure leaves the name unknown (it then matches no address)."""
        if self._resolve is None:
            return

        def resolved(address: str) -> None:
            if self.endpoint is not None:
                self.endpoint.addresses.learn(name, address)

        def failed(reason: object) -> None:
            log.info("could not resolve {name} for the SIP trust checks", name=name)

        self._resolve(name).addCallbacks(resolved, failed)

    def _send_udp(self, data: bytes, target: Target, named: Target) -> None:
        if self._udp_port is None:
            return
        if named != target and self.icmp_errors:
            names = self._named_udp.setdefault((target.host, target.port), set())
            names.add(named)
            if len(self._named_udp) > MAX_NAMED_DESTINATIONS:
                del self._named_udp[next(iter(self._named_udp))]  # the oldest
        try:
            self._udp_port.write(data, (target.host, target.port))
        except (OSError, error.MessageLengthError) as exc:
            log.warn("UDP send to {host}:{port} failed: {exc}",
                     host=target.host, port=target.port, exc=exc)
            self._fail(named)

    def _send_stream(self, data: bytes, target: Target, named: Target) -> None:
        conn = target.connection
        if isinstance(conn, SipStream) and conn.connected_ok:
            conn.send(data)
            return
        key = (target.transport, target.host, target.port)
        stream = self._by_addr.get(key)
        if stream is not None and stream.connected_ok:
            stream.send(data)
            return
        if key in self._connecting:
            self._connecting[key].append(data)
            return
        if len(self.streams) + len(self._connecting) >= self.max_connections:
            self._fail(named)
            return
        factory: Any = ConnectFactory(self, key, named)
        if target.transport == "TLS":
            if self.tls is None:
                self._fail(named)
                return
            # Verified against the name asked for, not the address DNS gave (RFC 5922 §4).
            factory = TLSMemoryBIOFactory(self.tls.client(named.name or named.host), True, factory)
        self._connecting[key] = [data]
        self.reactor.connectTCP(target.host, target.port, factory, timeout=10,
                       bindAddress=(self.listen, 0) if self.listen not in ("0.0.0.0", "::") else None)

    def _unreachable(self, error: Unreachable) -> None:
        """An ICMP error for a datagram we sent: the transactions to exactly that address and
        port (or to the names last sent there) that have tried for :data:`ICMP_GRACE` fail
        now, saying which host:port did not answer (RFC 3261 §8.1.3.1), instead of after
        Timer B/F."""
        endpoint = self.endpoint
        if endpoint is None:
            return
        log.debug("ICMP {what} for {host}:{port}", what=error.what, host=error.host,
                  port=error.port)
        targets = {Target("UDP", error.host, error.port)}
        targets |= self._named_udp.get((error.host, error.port), set())
        reason = reason_text(error)
        with self._entry():
            for target in targets:
                endpoint.transport_error(target, self.reactor.seconds(), reason, ICMP_GRACE)

    def _fail(self, target: Target) -> None:
        if self.endpoint is not None:
            self.reactor.callLater(0, self._fail_now, target)

    def _fail_now(self, target: Target) -> None:
        self._report_failure(target)

    def _report_failure(self, target: Target) -> None:
        endpoint = self.endpoint
        if endpoint is not None:
            with self._entry():
                endpoint.transport_error(target, self.reactor.seconds())
