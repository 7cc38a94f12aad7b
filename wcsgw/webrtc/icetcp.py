"""ICE-TCP connections on the shared browser port (RFC 6544, passive side), Twisted.

A browser that cannot use UDP connects to our ``tcptype passive`` candidate and sends the same
packets it would send over UDP (STUN, DTLS, SRTP), each in an RFC 4571 frame
(:mod:`wcsgw.webrtc.framing`).  A connection is only a path: the frames go to the shared port's
demultiplexer (:class:`~wcsgw.webrtc.sharedport.SharedPort`) under the connection's
:class:`~wcsgw.webrtc.mux.TcpAddress`, like datagrams under their source.

Why the limits: anyone can open a TCP connection to a public port.  Past ``max_connections``
new ones are refused at once; a connection whose address has not passed an authenticated
check of some leg within ``idle_timeout`` s is closed (its idle timer is reset only by frames
from a proven address — consent checks every few seconds keep a real one alive); a frame
over the framing limit closes it too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional, cast

from twisted.internet.protocol import Factory, Protocol
from twisted.protocols.policies import TimeoutMixin

from wcsgw.webrtc.framing import FrameDecoder, FramingError, frame
from wcsgw.webrtc.mux import TcpAddress

if TYPE_CHECKING:
    from wcsgw.webrtc.sharedport import SharedPort

__all__ = ["IceTcpConnection", "IceTcpFactory"]


class IceTcpConnection(Protocol, TimeoutMixin):
    """One browser's ICE-TCP connection: frames in to the shared port, packets out framed."""

    def __init__(self, owner: "SharedPort") -> None:
        self.owner = owner
        self.decoder = FrameDecoder()
        self.address: Optional[TcpAddress] = None

    def connectionMade(self) -> None:  # noqa: N802 (Twisted API)
        peer = cast(Any, self.transport).getPeer()
        self.address = TcpAddress(peer.host, peer.port)
        self.setTimeout(self.owner.idle_timeout)  # type: ignore[no-untyped-call]
        self.owner.tcp_up(self)

    def dataReceived(self, data: bytes) -> None:  # noqa: N802 (Twisted API)
        address = self.address
        assert address is not None
        try:
            frames = self.decoder.feed(data)
        except FramingError:
            self.owner.tcp_refused += 1
            self.abort()
            return
        for packet in frames:
            self.owner.received(packet, address)
        if frames and self.owner.demux.owner(address) is not None:
            self.resetTimeout()  # type: ignore[no-untyped-call]

    def send(self, packet: bytes) -> None:
        """One packet (a STUN response, DTLS record, SRTP packet) in one frame."""
        try:
            data = frame(packet)
        except FramingError:
            return  # cannot happen for MTU-sized packets; never breaks the stream's framing
        cast(Any, self.transport).write(data)

    def close(self) -> None:
        """Close after what is written (a DTLS close_notify) is flushed."""
        cast(Any, self.transport).loseConnection()

    def abort(self) -> None:
        cast(Any, self.transport).abortConnection()

    def timeoutConnection(self) -> None:  # noqa: N802 (Twisted API)
        self.abort()

    def connectionLost(self, reason: object = None) -> None:  # noqa: N802 (Twisted API)
        self.setTimeout(None)  # type: ignore[no-untyped-call]
        self.owner.tcp_down(self)


class IceTcpFactory(Factory):
    """An :class:`IceTcpConnection` per accepted connection, none past the owner's limit."""

    def __init__(self, owner: "SharedPort") -> None:
        self.owner = owner

    def buildProtocol(self, addr: object) -> Optional[IceTcpConnection]:  # noqa: N802
        if self.owner.tcp_connections >= self.owner.max_connections:
            self.owner.tcp_refused += 1
            return None  # Twisted closes the socket at once
        return IceTcpConnection(self.owner)
