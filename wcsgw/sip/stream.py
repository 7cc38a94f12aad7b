"""One SIP connection over TCP (Twisted): framing, idle timeout and keep-alive pongs, and the
factories that make the connections :class:`~wcsgw.sip.transport.SipTransport` accepts and
opens.  What arrives is handed to the transport (its owner), which feeds the endpoint; the
framing itself is the sans-IO :class:`~wcsgw.sip.framing.StreamFramer`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, cast

from twisted.internet.protocol import ClientFactory, Factory, Protocol as StreamProtocol
from twisted.protocols.policies import TimeoutMixin

from wcsgw.sip.framing import FramingError, StreamFramer
from wcsgw.sip.target import Target

if TYPE_CHECKING:
    from wcsgw.sip.transport import SipTransport


class _StreamTransport(Protocol):
    """What a stream uses of its ``ITCPTransport``."""

    def write(self, data: bytes) -> None: ...

    def abortConnection(self) -> None: ...  # noqa: N802

    def getPeer(self) -> Any: ...  # noqa: N802


class SipStream(StreamProtocol, TimeoutMixin):
    """One TCP connection, inbound or outbound: framing, idle timeout, keep-alive pongs."""

    def __init__(self, owner: "SipTransport", outbound_key: tuple[str, int] | None = None) -> None:
        self.owner = owner
        self.framer = StreamFramer(max_message_size=owner.max_message_size)
        self.outbound_key = outbound_key
        self.peer: Target | None = None
        self.connected_ok = False

    @property
    def _stream(self) -> _StreamTransport:
        return cast(_StreamTransport, self.transport)

    def connectionMade(self) -> None:  # noqa: N802
        peer = self._stream.getPeer()
        self.peer = Target("TCP", peer.host, peer.port, connection=self)
        self.connected_ok = True
        self.setTimeout(self.owner.idle_timeout)  # type: ignore[no-untyped-call]
        self.owner.stream_up(self)

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
            self._stream.write(b"\r\n")  # RFC 5626 §4.4.1 pong
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
        self.connected_ok = False
        self.setTimeout(None)  # type: ignore[no-untyped-call]
        self.owner.stream_down(self)


class ListenFactory(Factory):
    """Makes a SipStream per accepted connection, refusing those past ``max_connections``."""

    def __init__(self, owner: "SipTransport") -> None:
        self.owner = owner

    def buildProtocol(self, addr: object) -> SipStream | None:  # noqa: N802
        if len(self.owner.streams) >= self.owner.max_connections:
            self.owner.refused_connections += 1
            return None  # Twisted closes the socket at once
        return SipStream(self.owner)


class ConnectFactory(ClientFactory):
    """Makes the SipStream of one outbound connection and reports a failed connect."""

    def __init__(self, owner: "SipTransport", key: tuple[str, int], target: Target) -> None:
        self.owner = owner
        self.key = key
        self.target = target

    def buildProtocol(self, addr: object) -> SipStream:  # noqa: N802
        return SipStream(self.owner, outbound_key=self.key)

    def clientConnectionFailed(self, connector: object, reason: object) -> None:  # noqa: N802
        self.owner.connect_failed(self.key, self.target)
