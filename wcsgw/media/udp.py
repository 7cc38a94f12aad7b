"""The SIP side's media sockets: RTP on an even port, RTCP on the next (:mod:`~wcsgw.media.fastudp`).

Latching rule (symmetric RTP, in the spirit of RFC 4961, as media relays do it for phones
behind NAT — but only toward the peer the signalling names, so a stranger who learns or
guesses the port can neither listen to the call nor take it over):

* Each offer/answer fixes who may send to us: the IP of the SDP's ``c=`` line and the IP(s)
  the far end's SDP-carrying SIP message came from (the 183/2xx to our INVITE, an incoming
  INVITE or its ACK, a re-INVITE), compared by IP, any port — the NAT case: the SDP says
  192.168.1.5, packets come from the router's public address, the one SIP came from.
* Until something from those IPs arrives we send to the SDP's address (:meth:`RtpSocket.set_remote`).
* The first packet from an allowed IP latches: replies go to its address (IP and port) from
  then on, and only that address is heard.  Everything else — any other IP, and, once latched,
  any other port — is dropped and counted (:attr:`Latch.rejected`, :attr:`RtpSocket.dropped`).
  One exception, for peers that share an IP: until the SDP's own address (IP *and* port) has
  sent, a packet from it takes the latch over from a source that only matched by IP.  A
  transfer's new phone on the same host (or behind the same PBX) as the old one, which keeps
  sending for a moment after the new answer, would otherwise keep the latch; a phone that
  sends from the port its SDP names (symmetric RTP, what nearly all do) is always heard.
* The latch moves only when a new SDP from the far end arrives (a re-INVITE, a transfer's new
  dialog): :meth:`RtpSocket.set_remote` resets the target and the allowed IPs, and the next
  allowed packet latches again.  Never by timeout: a real peer that goes quiet (hold, VAD,
  a long silence) keeps its latch, and a stranger's packets stay dropped however long it waits.
* RTP and RTCP latch separately (they come from different ports) under the same allowed IPs;
  with rtcp-mux both use the RTP socket and the RTP target.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Callable, Iterable, Optional

from twisted.internet import defer
from twisted.internet.error import CannotListenError

from wcsgw.media.fastudp import listen_udp
from wcsgw.media.ports import PortAllocator
from wcsgw.media.settled import settled

__all__ = ["RtpSocket", "Latch", "normalize_ip"]

Address = tuple[str, int]
#: what a socket hands on: a datagram and when it arrived (the owner's monotonic clock)
Receive = Callable[[bytes, float], None]


def _ignore(data: bytes, now: float) -> None:
    """Packets before anyone listens: dropped."""


def normalize_ip(host: str) -> str:
    """One spelling per IP, so ``c=`` text and socket addresses compare: IPv6 compressed,
    IPv4-mapped IPv6 as IPv4, a zone index dropped; a name (``c=`` may hold an FQDN) is
    lower-cased and left as it is — it then matches no packet source, which only ever is an
    IP, so a name alone allows nothing."""
    text = host.strip().strip("[]").split("%", 1)[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return text.lower()
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return str(ip)


class Latch:
    """Where to send and whom to hear, from the offer/answer and the first allowed packet (the
    rule in the module docstring).  Sans-IO: :meth:`accept` takes a packet's source and the
    time and says take or drop; nothing here reads a clock or a socket."""

    __slots__ = ("target", "sdp_address", "allowed_ips", "latched", "exact", "last_heard",
                 "rejected")

    def __init__(self) -> None:
        #: where packets go: the SDP's address until a packet latches, then that packet's source
        self.target: Optional[Address] = None
        self.sdp_address: Optional[Address] = None
        #: the IPs (normalized) a packet may latch from: the SDP's and the signalling's
        self.allowed_ips: frozenset[str] = frozenset()
        #: a packet has fixed ``target``; only ``target`` is heard until the next SDP (or,
        #: while not ``exact``, until the SDP's own address sends)
        self.latched = False
        #: the latch is on the SDP's own address (IP and port): final until the next SDP
        self.exact = False
        self.last_heard: Optional[float] = None  # when ``target`` last sent to us
        #: packets dropped (not from the latched address, or from an IP not allowed)
        self.rejected = 0

    def set_sdp(self, address: Optional[Address], signalling: Iterable[str] = ()) -> None:
        """A new SDP from the far end (``address``: its ``c=`` IP and port for this stream)
        and where its SIP message came from (``signalling``: IPs): forget the latch, send to
        ``address``, and let the first packet from one of these IPs latch again."""
        allowed = {normalize_ip(ip) for ip in signalling if ip}
        if address is not None and address[0]:
            allowed.add(normalize_ip(address[0]))
        self.sdp_address = address
        self.target = address
        self.allowed_ips = frozenset(allowed)
        self.latched = False
        self.exact = False
        self.last_heard = None

    def allows(self, source: Address) -> bool:
        """Whether ``source`` may latch (its IP is the SDP's or the signalling's)."""
        return normalize_ip(source[0]) in self.allowed_ips

    def is_sdp_address(self, source: Address) -> bool:
        """Whether ``source`` is the SDP's own address, IP and port."""
        sdp = self.sdp_address
        return (sdp is not None and source[1] == sdp[1]
                and normalize_ip(source[0]) == normalize_ip(sdp[0]))

    def accept(self, source: Address, now: float) -> bool:
        """Whether a packet from ``source`` is taken; the first one from an allowed IP latches
        (and the SDP's own address takes over a latch that matched by IP only)."""
        if self.latched and source == self.target:
            self.last_heard = now
            return True
        if not self.exact and self.is_sdp_address(source):
            self.target, self.latched, self.exact = source, True, True
            self.last_heard = now
            return True
        if not self.latched and self.allows(source):
            self.target, self.latched = source, True
            self.last_heard = now
            return True
        self.rejected += 1
        return False


class RtpSocket:
    """RTP/RTCP socket pair from a :class:`PortAllocator`, latched to the peer the offer/answer
    names (:class:`Latch`; nothing is heard before :meth:`set_remote`).

    Callbacks ``on_rtp(bytes, now)`` and ``on_rtcp(bytes, now)`` are attributes (set them
    before media flows); ``now`` is ``clock()`` (default ``reactor.seconds``), read once per
    datagram — for the latch and for whoever takes the packet, which therefore reads no clock
    of its own.  RTCP arriving on the RTP port (rtcp-mux) is told apart here by RFC 5761's rule
    and goes to ``on_rtcp`` too, so ``on_rtp`` gets RTP only.
    """

    def __init__(
        self,
        reactor: Any,
        allocator: PortAllocator,
        host: str | None = None,
        *,
        rtcp_mux: bool = False,
        on_rtp: Receive | None = None,
        on_rtcp: Receive | None = None,
        attempts: int = 10,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.reactor = reactor
        self._clock = clock or reactor.seconds
        # the interface to bind (default: the allocator's, which bind-tested it)
        self.host = host or allocator.host
        self.rtcp_mux = rtcp_mux
        self.on_rtp: Receive = on_rtp or _ignore
        self.on_rtcp: Receive = on_rtcp or _ignore
        self.rtp_latch = Latch()
        self.rtcp_latch = Latch()
        self.send_errors = 0
        self._allocator = allocator
        self._ports: list[int] = []
        self._rtp_port: Any = None
        self._rtcp_port: Any = None
        self._closed: Optional[defer.Deferred[None]] = None
        last: Optional[Exception] = None
        for _ in range(attempts):
            ports = allocator.allocate(2, even=True)
            try:
                self._rtp_port = listen_udp(reactor, ports[0], self._rtp_received, self.host)
            except CannotListenError as exc:
                allocator.release(ports)
                last = exc
                continue
            try:
                self._rtcp_port = listen_udp(reactor, ports[1], self._rtcp_received, self.host)
            except CannotListenError as exc:
                self._rtp_port.stopListening()
                allocator.release(ports)
                last = exc
                continue
            self._ports = ports
            break
        else:
            raise last or CannotListenError(  # type: ignore[no-untyped-call]
                self.host, 0, "no ports"
            )

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

    @property
    def dropped(self) -> int:
        """Packets (RTP and RTCP) dropped because they came from anyone but the latched peer."""
        return self.rtp_latch.rejected + self.rtcp_latch.rejected

    def set_remote(self, host: str, rtp_port: int, rtcp_port: int | None = None, *,
                   rtcp_mux: bool | None = None, signalling: Iterable[str] = ()) -> None:
        """A new SDP from the peer: its address (``c=`` and ``m=`` port; ``a=rtcp`` port,
        default RTP+1) and ``signalling``, the IP(s) its SDP-carrying SIP message came from.
        Resets both latches: packets are taken again from the first source whose IP is one
        of these (any port, for NAT), and only from it."""
        if rtcp_mux is not None:
            self.rtcp_mux = rtcp_mux
        signalling = tuple(signalling)
        self.rtp_latch.set_sdp((host, rtp_port), signalling)
        if rtcp_port is None:
            rtcp_port = rtp_port if self.rtcp_mux else rtp_port + 1
        self.rtcp_latch.set_sdp((host, rtcp_port), signalling)

    # -- I/O ----------------------------------------------------------------------------------

    def _rtcp_received(self, data: bytes, source: Address) -> None:
        now = self._clock()
        if self.rtcp_latch.accept(source, now):
            self.on_rtcp(data, now)

    def _rtp_received(self, data: bytes, source: Address) -> None:
        now = self._clock()
        if len(data) >= 2 and 192 <= data[1] <= 223:  # RTCP muxed on the RTP port (RFC 5761)
            latch = self.rtp_latch if self.rtcp_mux else self.rtcp_latch
            if latch.accept(source, now):
                self.on_rtcp(data, now)
            return
        if self.rtp_latch.accept(source, now):
            self.on_rtp(data, now)

    def _send(self, port: Any, data: bytes, target: Optional[Address]) -> None:
        if target is None or port is None or self._closed is not None:
            return
        try:
            port.write(data, target)
        except (OSError, ValueError):  # no route; an address of the other family (Twisted's
            # InvalidAddressError: an IPv4 socket told an IPv6 peer); media is best effort
            self.send_errors += 1

    def send_rtp(self, data: bytes) -> None:
        self._send(self._rtp_port, data, self.rtp_latch.target)

    def send_rtcp(self, data: bytes) -> None:
        if self.rtcp_mux:
            self._send(self._rtp_port, data, self.rtp_latch.target)
        else:
            self._send(self._rtcp_port, data, self.rtcp_latch.target)

    def close(self) -> defer.Deferred[None]:
        """Stop listening on both ports, then give them back to the allocator."""
        if self._closed is None:
            stops = [
                defer.maybeDeferred(p.stopListening) for p in (self._rtp_port, self._rtcp_port) if p is not None
            ]

            def release(_: Any) -> None:
                self._allocator.release(self._ports)

            self._closed = defer.gatherResults(stops, consumeErrors=True).addBoth(release)
        return settled(self._closed)
