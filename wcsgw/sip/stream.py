"""One SIP connection over TCP or TLS (Twisted): framing, idle timeout, keep-alive pings
and pongs, and the factories that make the connections
:class:`~wcsgw.sip.transport.SipTransport` accepts and opens.  What arrives is handed to the
transport (its owner), which feeds the endpoint; the framing itself is the sans-IO
:class:`~wcsgw.sip.framing.StreamFramer`, the keep-alive clock the sans-IO
:class:`~wcsgw.sip.transportkeepalive.CrlfKeepAlive`.  TLS sits below this protocol
(Twisted's TLS wrapper): the stream only learns whether the handshake completed, so that a
connection that never got past it (a certificate we refused) fails its requests at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, cast

from twisted.internet.interfaces import IHandshakeListener
from twisted.internet.protocol import ClientFactory, Factory, Protocol as StreamProtocol
from twisted.logger import Logger
from twisted.protocols.policies import TimeoutMixin
from zope.interface import implementer  # type: ignore[import-untyped]

from wcsgw.sip.framing import FramingError, StreamFramer
from wcsgw.sip.target import Target
from wcsgw.sip.transportkeepalive import PING, PONG, CrlfKeepAlive, KeepAliveAction

if TYPE_CHECKING:
    from wcsgw.sip.reactor import DelayedCall
    from wcsgw.sip.transport import SipTransport

log = Logger(namespace="wcsgw.sip.transport")

#: an outbound connection's key: (transport, host, port) as the transport looks it up
StreamKey = tuple[str, str, int]


class _StreamTransport(Protocol):
    """What a stream uses of its ``ITCPTransport``."""

    def write(self, data: bytes) -> None: ...

    def abortConnection(self) -> None: ...  # noqa: N802

    def getPeer(self) -> Any: ...  # noqa: N802


@implementer(IHandshakeListener)
class SipStream(StreamProtocol, TimeoutMixin):
    """One TCP or TLS connection, inbound or outbound: framing, idle timeout, keep-alive.

    ``named`` is what an outbound connection was opened for (the host name before DNS): a
    connection that dies before its TLS handshake, or whose keep-alive pong does not come,
    is reported against it so the transactions using it fail over."""

    def __init__(self, owner: "SipTransport", outbound_key: StreamKey | None = None,
                 transport: str = "TCP", named: Target | None = None) -> None:
        self.owner = owner
        # TimeoutMixin's idle timer on the transport's reactor (a task.Clock in tests), too
        self.callLater = owner.reactor.callLater  # type: ignore[method-assign,assignment]
        self.framer = StreamFramer(max_message_size=owner.max_message_size)
        self.outbound_key = outbound_key
        self.transport_name = transport
        self.named = named
        self.peer: Target | None = None
        self.connected_ok = False
        self.handshake_done = transport != "TLS"
        self.keepalive: CrlfKeepAlive | None = None
        self._ka_timer: "DelayedCall | None" = None

    @property
    def _stream(self) -> _StreamTransport:
        return cast(_StreamTransport, self.transport)

    def connectionMade(self) -> None:  # noqa: N802
        peer = self._stream.getPeer()
        self.peer = Target(self.transport_name, peer.host, peer.port, connection=self)
        self.connected_ok = True
        self.setTimeout(self.owner.idle_timeout)  # type: ignore[no-untyped-call]
        interval = self.owner.keepalive_interval
        if self.outbound_key is not None and interval > 0:
            self.keepalive = CrlfKeepAlive(interval, self.owner.reactor.seconds())
            self._arm_keepalive()
        self.owner.stream_up(self)

    def handshakeCompleted(self) -> None:  # noqa: N802 (IHandshakeListener)
        self.handshake_done = True

    def _arm_keepalive(self) -> None:
        due = self.keepalive.deadline() if self.keepalive is not None else None
        if due is None:
            return
        delay = max(0.0, due - self.owner.reactor.seconds())
        self._ka_timer = self.owner.reactor.callLater(delay, self._keepalive_due)

    def _keepalive_due(self) -> None:
        self._ka_timer = None
        if self.keepalive is None or not self.connected_ok:
            return
        action = self.keepalive.fire(self.owner.reactor.seconds())
        if action is KeepAliveAction.PING:
            self._stream.write(PING)
        elif action is KeepAliveAction.DEAD:
            log.warn("SIP {transport} connection to {host}:{port}: no keep-alive pong, closed",
                     transport=self.transport_name, host=self.peer.host if self.peer else "?",
                     port=self.peer.port if self.peer else 0)
            self.owner.flow_failed(self)
            self.abort()
            return
        self._arm_keepalive()

    def dataReceived(self, data: bytes) -> None:  # noqa: N802
        self.resetTimeout()  # type: ignore[no-untyped-call]
        try:
            frames = self.framer.feed(data)
        except FramingError as exc:
            # The stream can no longer be resynchronised: drop the connection, and only it.
            self.owner.stream_broken(exc, self.peer)
            self._stream.abortConnection()
            return
        if self.framer.take_pings():
            self._stream.write(PONG)  # RFC 5626 §4.4.1
        if self.framer.take_pongs() and self.keepalive is not None:
            self.keepalive.pong(self.owner.reactor.seconds())
        assert self.peer is not None
        for frame in frames:
            self.owner.received(frame, self.peer)
            if not self.connected_ok:
                break

    def send(self, data: bytes) -> None:
        self.resetTimeout()  # type: ignore[no-untyped-call]
        self._stream.write(data)

    def abort(self) -> None:
        self._stream.abortConnection()

    def timeoutConnection(self) -> None:  # noqa: N802
        self.abort()

    def connectionLost(self, reason: object = None) -> None:  # noqa: N802
        was_up = self.connected_ok
        self.connected_ok = False
        self.setTimeout(None)  # type: ignore[no-untyped-call]
        if self._ka_timer is not None and self._ka_timer.active():
            self._ka_timer.cancel()
        self._ka_timer = None
        self.owner.stream_down(self)
        if was_up and not self.handshake_done and self.outbound_key is not None:
            # The TLS handshake failed (most often: the certificate did not verify).
            log.warn("SIP TLS to {host}:{port} failed before the handshake completed: {reason}",
                     host=self.named.host if self.named else "?",
                     port=self.named.port if self.named else 0,
                     reason=getattr(reason, "value", reason))
            self.owner.flow_failed(self)


class ListenFactory(Factory):
    """Makes a SipStream per accepted connection, refusing those past ``max_connections``."""

    def __init__(self, owner: "SipTransport", transport: str = "TCP") -> None:
        self.owner = owner
        self.transport_name = transport

    def buildProtocol(self, addr: object) -> SipStream | None:  # noqa: N802
        if len(self.owner.streams) >= self.owner.max_connections:
            self.owner.refused_connections += 1
            return None  # Twisted closes the socket at once
        return SipStream(self.owner, transport=self.transport_name)


class ConnectFactory(ClientFactory):
    """Makes the SipStream of one outbound connection and reports a failed connect."""

    def __init__(self, owner: "SipTransport", key: StreamKey, target: Target) -> None:
        self.owner = owner
        self.key = key
        self.target = target

    def buildProtocol(self, addr: object) -> SipStream:  # noqa: N802
        return SipStream(self.owner, outbound_key=self.key, transport=self.key[0],
                         named=self.target)

    def clientConnectionFailed(self, connector: object, reason: object) -> None:  # noqa: N802
        self.owner.connect_failed(self.key, self.target)
