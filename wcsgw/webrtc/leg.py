"""The browser leg of a call: one UDP socket (or a place on the shared one) and the media path.

One leg = one UDP socket (BUNDLE + rtcp-mux: STUN, DTLS, SRTP and SRTCP all share it),
demultiplexed once, by the first byte (RFC 7983): 0..3 STUN and 20..63 DTLS go to the leg's
:class:`~wcsgw.webrtc.control.LegControl` (ICE-lite, the DTLS-SRTP handshake, the consent and
DTLS timers, the lifecycle), 128..191 SRTP/SRTCP stay here, told apart by the second byte
(RFC 5761).  The leg never decodes media: ``on_rtp`` gets the unprotected RTP packet as bytes
with its arrival time (``reactor.seconds()``, read once per datagram: the receiver reads no
clock of its own), ``send_rtp`` takes an RTP packet and protects it.

The control is beside this path, not in it: per media packet the leg asks it for the SRTP
keys, whether the source passed an authenticated check, and where to send.  A failed leg
stops answering and forwarding but keeps its port until :meth:`WebRtcLeg.close`, which
releases it (and is what the owner must always call).  The lifecycle and why the checks are
strict: :mod:`wcsgw.webrtc.control`.

With ``mux=`` (``[media] browser_port``) the leg has no socket: the
:class:`~wcsgw.webrtc.sharedport.SharedPort` hands it what the demultiplexer routed to it
(:meth:`WebRtcLeg.receive`, the same path), and it writes through a binding that sends over
UDP or over the ICE-TCP connection its proven pair uses, chosen by the address's type
(:class:`~wcsgw.webrtc.mux.TcpAddress`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence

from twisted.internet import defer

from wcsgw.media.fastudp import listen_udp
from wcsgw.media.ports import PortAllocator
from wcsgw.media.settled import settled
from wcsgw.webrtc.certificate import DtlsCertificate
from wcsgw.webrtc.control import LegControl, LegError
from wcsgw.webrtc.srtp import SUPPORTED_PROFILES, SrtpError, SrtpSession
from wcsgw.webrtc.stun import Address, IceCredentials, is_stun, make_ice_credentials

if TYPE_CHECKING:
    from wcsgw.webrtc.sharedport import SharedPort

__all__ = ["WebRtcLeg", "LegError"]


def _ignore(packet: bytes, now: float) -> None:
    """Packets before anyone listens: dropped."""


class WebRtcLeg:
    """A browser's UDP socket and the media path through it (see the module docstring).

    The socket is bound here, so ``host``/``port``/``ice_ufrag``/``ice_pwd``/``fingerprint``
    are ready for the SDP answer as soon as the object exists.  The port comes from
    ``allocator`` when given (and goes back to it on :meth:`close`; ``PortsExhausted``
    propagates from here), else ``port`` (0: the kernel picks).  ``advertised_host`` is the
    address put in the candidate (a public address behind 1:1 NAT); it defaults to
    ``bind_host``.  With ``mux`` the leg takes no port: it registers on that shared port
    (``port``/``tcp_port`` are the shared port's, ``allocator`` is not used).  The rest
    configures the :attr:`control` (:class:`LegControl`).

    Callbacks are plain attributes, assign them before :meth:`start`: ``on_rtp(bytes, now)``,
    ``on_rtcp(bytes, now)`` (unprotected; may hold compound RTCP; ``now``: when the datagram
    arrived), ``on_state(str)``.
    """

    def __init__(
        self,
        reactor: Any,
        bind_host: str,
        advertised_host: Optional[str] = None,
        allocator: Optional[PortAllocator] = None,
        *,
        port: int = 0,
        consent_timeout: float = 30.0,
        dtls_timeout: float = 10.0,
        certificate: Optional[DtlsCertificate] = None,
        srtp_profiles: Sequence[str] = SUPPORTED_PROFILES,
        credentials: Optional[IceCredentials] = None,
        mux: Optional["SharedPort"] = None,
    ) -> None:
        self.reactor = reactor
        self.bind_host = bind_host
        self.host = advertised_host or bind_host
        self.on_rtp: Callable[[bytes, float], None] = _ignore
        self.on_rtcp: Callable[[bytes, float], None] = _ignore
        self._close_d: Optional[defer.Deferred[None]] = None
        #: reactor.seconds() when the first RTP packet came in (the control keeps the others)
        self.first_rtp_at: Optional[float] = None
        #: Counters: packets in/out and what was dropped (unauthenticated source, before
        #: keys, SRTP auth/replay failures).
        self.rtp_in = self.rtcp_in = self.rtp_out = self.rtcp_out = 0
        self.dropped_in = self.dropped_out = self.srtp_errors = 0

        self._ports: list[int] = []
        self._mux = mux
        label: object
        if mux is None:
            self._allocator = allocator
            self._port = self._listen(port)
            self.port: int = self._port.getHost().port
            #: the ICE-TCP passive candidate's port (0: none, per-call ports are UDP only)
            self.tcp_port = 0
            label = self.port
        else:
            self._allocator = None
            credentials = credentials or mux.new_credentials()
            self.port, self.tcp_port = mux.port, mux.tcp_port
            label = f"{mux.port}/{credentials.ufrag}"
        self.control = LegControl(
            reactor, self._write, label=label, consent_timeout=consent_timeout,
            dtls_timeout=dtls_timeout, certificate=certificate, srtp_profiles=srtp_profiles,
            credentials=credentials,
        )
        self.ice_ufrag = self.control.ice_ufrag
        self.ice_pwd = self.control.ice_pwd
        self.fingerprint: tuple[str, str] = self.control.fingerprint
        self.set_remote = self.control.set_remote
        self.start = self.control.start
        if mux is not None:
            binding = mux.attach(self)
            self.control.on_check = binding.prove
            self.control.on_forget = binding.forget
            self._port = binding

    def restart_ice(self, ufrag: str, pwd: str) -> None:
        """An ICE restart: the browser's new ``ufrag``/``pwd``; we take new credentials of our
        own (on the shared port a ufrag no other leg has, and the port routes checks by it
        from now on, the old one no longer), read from :attr:`ice_ufrag`/:attr:`ice_pwd` for
        the answer.  The socket, the port, the DTLS association and the SRTP keys stay
        (:meth:`LegControl.restart_ice`, which raises :class:`LegError` on a leg that failed
        or closed)."""
        mux = self._mux
        credentials = mux.new_credentials() if mux is not None else make_ice_credentials()
        self.control.restart_ice(credentials, ufrag, pwd)
        if mux is not None:
            self._port.rekey(credentials.ufrag)
        self.ice_ufrag = credentials.ufrag
        self.ice_pwd = credentials.pwd

    # -- setup -----------------------------------------------------------------------------

    def _listen(self, port: int) -> Any:
        from twisted.internet.error import CannotListenError

        if self._allocator is None:
            return listen_udp(self.reactor, port, self.receive, self.bind_host)
        last: Optional[Exception] = None
        for _ in range(5):  # the allocator bind-tests, but another process may win the race
            ports = self._allocator.allocate(1)
            try:
                listening = listen_udp(self.reactor, ports[0], self.receive, self.bind_host)
            except CannotListenError as exc:
                self._allocator.release(ports)
                last = exc
                continue
            self._ports = ports
            return listening
        raise last  # type: ignore[misc]

    # -- what the control holds, read through the leg ----------------------------------------

    @property
    def on_state(self) -> Callable[[str], None]:
        return self.control.on_state

    @on_state.setter
    def on_state(self, callback: Callable[[str], None]) -> None:
        self.control.on_state = callback

    @property
    def state(self) -> str:
        return self.control.state

    @property
    def srtp(self) -> Optional[SrtpSession]:
        return self.control.srtp

    @property
    def remote_address(self) -> Optional[Address]:
        """The browser address we send to (nominated, else the latest authenticated)."""
        return self.control.peer

    @property
    def remote_fingerprint(self) -> Optional[tuple[str, str]]:
        """The browser's DTLS fingerprint, from its SDP (an ICE restart must keep it)."""
        return self.control.remote_fingerprint

    @property
    def started_at(self) -> Optional[float]:
        return self.control.started_at

    @property
    def ice_connected_at(self) -> Optional[float]:
        return self.control.ice_connected_at

    @property
    def connected_at(self) -> Optional[float]:
        return self.control.connected_at

    # -- the socket ------------------------------------------------------------------------

    def receive(self, data: bytes, addr: Address) -> None:
        """One datagram (or ICE-TCP frame) from ``addr``, from the socket or the shared port."""
        control = self.control
        if control.done or not data:
            return
        now = self.reactor.seconds()  # once per datagram, for whoever takes it
        first = data[0]
        if 127 < first < 192:
            self._media_in(data, addr, now)
        elif first < 4:
            if is_stun(data):
                control.stun(data, addr, now)
        elif 19 < first < 64:
            if not control.dtls(data, addr):
                self.dropped_in += 1
        else:
            self.dropped_in += 1

    def _media_in(self, data: bytes, addr: Address, now: float) -> None:
        control = self.control
        srtp = control.srtp
        if srtp is None or not control.admits(addr):
            self.dropped_in += 1
            return
        if addr != control.peer:
            control.traffic_from(addr)
        # RFC 5761 (wcsgw.media.rtp.is_rtcp), inlined: this runs for every packet.
        if len(data) > 1 and 191 < data[1] < 224:
            try:
                packet = srtp.unprotect_rtcp(data)
            except SrtpError:
                self.srtp_errors += 1
                return
            self.rtcp_in += 1
            self.on_rtcp(packet, now)
        else:
            try:
                packet = srtp.unprotect_rtp(data)
            except SrtpError:
                self.srtp_errors += 1
                return
            if self.rtp_in == 0:
                self.first_rtp_at = now
                self.control.media_arrived()  # once: the browser has its keys (dtls.py)
            self.rtp_in += 1
            self.on_rtp(packet, now)

    # -- sending ---------------------------------------------------------------------------

    def send_rtp(self, packet: bytes) -> None:
        """Protect and send one RTP packet; dropped (counted) before keys or after failure."""
        control = self.control
        srtp, peer = control.srtp, control.peer
        if srtp is None or peer is None or control.done:
            self.dropped_out += 1
            return
        try:
            self._port.write(srtp.protect_rtp(packet), peer)
        except (SrtpError, OSError):
            self.dropped_out += 1
            return
        self.rtp_out += 1

    def send_rtcp(self, packet: bytes) -> None:
        """Protect and send one (compound) RTCP packet, same rules as :meth:`send_rtp`."""
        control = self.control
        srtp, peer = control.srtp, control.peer
        if srtp is None or peer is None or control.done:
            self.dropped_out += 1
            return
        try:
            self._port.write(srtp.protect_rtcp(packet), peer)
        except (SrtpError, OSError):
            self.dropped_out += 1
            return
        self.rtcp_out += 1

    def _write(self, data: bytes, addr: Address) -> None:
        """The control's STUN responses and DTLS records."""
        try:
            self._port.write(data, addr)
        except OSError:
            pass

    # -- closing -----------------------------------------------------------------------------

    def close(self) -> defer.Deferred[None]:
        """Send DTLS close_notify if connected, close the socket, give the port back.

        Reports "closed" (unless the leg already reported it).  Idempotent: every call returns
        a Deferred that fires once the port is released.
        """
        if self._close_d is None:
            self._close_d = defer.ensureDeferred(self._close())
        return settled(self._close_d)

    async def _close(self) -> None:
        already_closed = await self.control.stop()
        await defer.maybeDeferred(self._port.stopListening)
        if self._allocator is not None and self._ports:
            self._allocator.release(self._ports)
            self._ports = []
        if not already_closed:
            self.control.closed()
