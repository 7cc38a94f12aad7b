"""The SIP side's media sockets: RTP on an even port, RTCP on the next (Twisted UDP).

Latching rule (symmetric RTP, in the spirit of RFC 4961, as media relays do it for phones
behind NAT):

* Until something arrives we send to the address from the peer's SDP (:meth:`set_remote`).
* A packet from the current target refreshes it. A packet from any *other* address becomes the
  new target only if the current target has been silent for ``relatch_after`` seconds — which
  is always true before the first packet, so the first packet latches (the NAT case: the SDP
  says 192.168.1.5, packets come from the router's public address) — or if no SDP address was
  set at all. While the current target is alive, packets from other addresses are dropped and
  counted: a stranger cannot hijack a flowing call by spraying packets at our port.
* :meth:`set_remote` (a re-INVITE with a new address) resets the target to the new SDP address,
  which is then silent, so its first packet latches again.
* RTP and RTCP latch separately (they come from different ports); with rtcp-mux both use the RTP
  socket and the RTP target.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from twisted.internet import defer
from twisted.internet.error import CannotListenError
from twisted.internet.protocol import DatagramProtocol

from wcsgw.media.ports import PortAllocator

__all__ = ["RtpSocket", "Latch"]

Address = tuple[str, int]


class Latch:
    """Where to send, learned from where packets come from (the rule in the module docstring)."""

    __slots__ = ("target", "sdp_address", "relatch_after", "last_heard", "latched", "rejected")

    def __init__(self, relatch_after: float) -> None:
        self.relatch_after = relatch_after
        self.target: Optional[Address] = None
        self.sdp_address: Optional[Address] = None
        self.last_heard: Optional[float] = None  # when the current target last sent to us
        self.latched = False
        self.rejected = 0

    def set_sdp(self, address: Optional[Address]) -> None:
        self.sdp_address = address
        self.target = address
        self.last_heard = None
        self.latched = False

    def accept(self, source: Address, now: float) -> bool:
        """Whether a packet from ``source`` is taken (and latch onto it if the rule says so)."""
        if source == self.target:
            self.last_heard = now
            return True
        if (
            self.target is None
            or self.last_heard is None
            or now - self.last_heard >= self.relatch_after
        ):
            self.target = source
            self.last_heard = now
            self.latched = True
            return True
        self.rejected += 1
        return False


class _Endpoint(DatagramProtocol):
    def __init__(self, owner: "RtpSocket", rtcp: bool) -> None:
        self._owner = owner
        self._rtcp = rtcp

    def datagramReceived(self, data: bytes, addr: Any) -> None:  # noqa: N802 (Twisted API)
        self._owner._received(data, (addr[0], addr[1]), self._rtcp)


class RtpSocket:
    """RTP/RTCP socket pair from a :class:`PortAllocator`, with symmetric latching.

    Callbacks ``on_rtp(bytes)`` and ``on_rtcp(bytes)`` are attributes (set them before media
    flows); with rtcp-mux, RTCP arriving on the RTP port is told apart by RFC 5761's rule and goes
    to ``on_rtcp`` too.
    """

    def __init__(
        self,
        reactor: Any,
        allocator: PortAllocator,
        host: str | None = None,
        *,
        rtcp_mux: bool = False,
        relatch_after: float = 1.0,
        on_rtp: Callable[[bytes], None] | None = None,
        on_rtcp: Callable[[bytes], None] | None = None,
        attempts: int = 10,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.reactor = reactor
        self._clock = clock or reactor.seconds
        # the interface to bind (default: the allocator's, which bind-tested it)
        self.host = host or allocator.host
        self.rtcp_mux = rtcp_mux
        self.on_rtp: Callable[[bytes], None] = on_rtp or (lambda data: None)
        self.on_rtcp: Callable[[bytes], None] = on_rtcp or (lambda data: None)
        self.rtp_latch = Latch(relatch_after)
        self.rtcp_latch = Latch(relatch_after)
        self.send_errors = 0
        self._allocator = allocator
        self._ports: list[int] = []
        self._rtp_port: Any = None
        self._rtcp_port: Any = None
        self._closed: Optional[defer.Deferred] = None
        last: Optional[Exception] = None
        for _ in range(attempts):
            ports = allocator.allocate(2, even=True)
            try:
                self._rtp_port = reactor.listenUDP(ports[0], _Endpoint(self, False), interface=self.host)
            except CannotListenError as exc:
                allocator.release(ports)
                last = exc
                continue
            try:
                self._rtcp_port = reactor.listenUDP(ports[1], _Endpoint(self, True), interface=self.host)
            except CannotListenError as exc:
                self._rtp_port.stopListening()
                allocator.release(ports)
                last = exc
                continue
            self._ports = ports
            break
        else:
            raise last or CannotListenError(self.host, 0, "no ports")

    # -- addresses ----------------------------------------------------------------------------

    @property
    def rtp_port(self) -> int:
        return self._ports[0]

    @property
    def port(self) -> int:
        """The RTP port (what goes in the SDP ``m=`` line)."""
        return self._ports[0]

    @property
    def rtcp_port(self) -> int:
        return self._ports[1]

    @property
    def remote_rtp(self) -> Optional[Address]:
        """Where RTP goes now (latched source, else the SDP address)."""
        return self.rtp_latch.target

    @property
    def remote_rtcp(self) -> Optional[Address]:
        return self.rtp_latch.target if self.rtcp_mux else self.rtcp_latch.target

    def set_remote(self, host: str, rtp_port: int, rtcp_port: int | None = None, *, rtcp_mux: bool | None = None) -> None:
        """The peer's SDP address (``c=`` and ``m=`` port; ``a=rtcp`` port, default RTP+1)."""
        if rtcp_mux is not None:
            self.rtcp_mux = rtcp_mux
        self.rtp_latch.set_sdp((host, rtp_port))
        if rtcp_port is None:
            rtcp_port = rtp_port if self.rtcp_mux else rtp_port + 1
        self.rtcp_latch.set_sdp((host, rtcp_port))

    # -- I/O ----------------------------------------------------------------------------------

    def _received(self, data: bytes, source: Address, on_rtcp_port: bool) -> None:
        now = self._clock()
        if on_rtcp_port:
            if self.rtcp_latch.accept(source, now):
                self.on_rtcp(data)
            return
        if len(data) >= 2 and 192 <= data[1] <= 223:  # RTCP muxed on the RTP port (RFC 5761)
            latch = self.rtp_latch if self.rtcp_mux else self.rtcp_latch
            if latch.accept(source, now):
                self.on_rtcp(data)
            return
        if self.rtp_latch.accept(source, now):
            self.on_rtp(data)

    def _send(self, port: Any, data: bytes, target: Optional[Address]) -> None:
        if target is None or port is None or self._closed is not None:
            return
        try:
            port.write(data, target)
        except OSError:  # e.g. no route; media is best effort
            self.send_errors += 1

    def send_rtp(self, data: bytes) -> None:
        self._send(self._rtp_port, data, self.rtp_latch.target)

    def send_rtcp(self, data: bytes) -> None:
        if self.rtcp_mux:
            self._send(self._rtp_port, data, self.rtp_latch.target)
        else:
            self._send(self._rtcp_port, data, self.rtcp_latch.target)

    def close(self) -> defer.Deferred:
        """Stop listening on both ports, then give them back to the allocator."""
        if self._closed is None:
            stops = [
                defer.maybeDeferred(p.stopListening) for p in (self._rtp_port, self._rtcp_port) if p is not None
            ]

            def release(_: Any) -> None:
                self._allocator.release(self._ports)

            self._closed = defer.gatherResults(stops, consumeErrors=True).addBoth(release)
        # every caller gets its own Deferred, so no caller's callbacks change another's result
        done: defer.Deferred = defer.Deferred()
        self._closed.addBoth(lambda result: (done.callback(None), result)[1])
        return done
