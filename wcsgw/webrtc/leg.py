"""The browser leg of a call: ICE-lite + DTLS-SRTP server on one UDP socket, packets out.

One leg = one UDP socket (BUNDLE + rtcp-mux: STUN, DTLS, SRTP and SRTCP all share it),
demultiplexed by the first byte (RFC 7983): 0..3 STUN, 20..63 DTLS, 128..191 SRTP/SRTCP, and
SRTP vs SRTCP by the second byte (RFC 5761).  The leg never decodes media: ``on_rtp`` gets the
unprotected RTP packet as bytes with its arrival time (``reactor.seconds()``, read once per
datagram: the receiver reads no clock of its own), ``send_rtp`` takes an RTP packet and
protects it.

Lifecycle (reported through ``on_state``)::

    start() -> "checking" -- authenticated STUN check + DTLS handshake --> "connected"
        "checking"/"connected" -- no consent for consent_timeout s ------> "failed:ice"
        "checking" -- handshake fails, or none within dtls_timeout s
                      after the first authenticated check --------------> "failed:dtls"
        any -- the browser ends DTLS (close_notify) --------------------> "closed"
        any -- close() -----------------------------------------------> "closed"

A failed leg stops answering and forwarding but keeps its port until :meth:`close`, which
releases it (and is what the owner must always call).

Why the checks are strict: media is accepted only from addresses that passed an
authenticated STUN check (and sent only to the selected one), so a stranger who learns the
port cannot inject audio or make us send to a third party.  STUN is answered synchronously in
``datagramReceived``, never queued behind media: Chrome stops sending audio ~5.6 s after its
consent checks go unanswered.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

from twisted.internet import defer
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger

from wcsgw.loop import as_deferred
from wcsgw.media.ports import PortAllocator
from wcsgw.webrtc.dtls import DtlsError, DtlsSrtpServer, RTCCertificate
from wcsgw.webrtc.srtp import SUPPORTED_PROFILES, SrtpError, SrtpSession
from wcsgw.webrtc.stun import (
    Address,
    IceCredentials,
    IceLiteResponder,
    is_stun,
    make_ice_credentials,
)

__all__ = ["WebRtcLeg", "LegError"]

log = Logger(namespace="wcsgw.webrtc")

CHECKING = "checking"
CONNECTED = "connected"
FAILED_ICE = "failed:ice"
FAILED_DTLS = "failed:dtls"
CLOSED = "closed"


def _ignore(packet: bytes, now: float) -> None:
    """Packets before anyone listens: dropped."""


class LegError(RuntimeError):
    """The leg was used out of order (start before set_remote, start twice)."""


class _LegSocket(DatagramProtocol):
    def __init__(self, leg: "WebRtcLeg") -> None:
        self.leg = leg

    def datagramReceived(self, data: bytes, addr: Any) -> None:  # noqa: N802 (Twisted API)
        self.leg._datagram(data, (addr[0], addr[1]))


class WebRtcLeg:
    """ICE-lite + DTLS-SRTP server endpoint for one browser (see the module docstring).

    The socket is bound here, so ``host``/``port``/``ice_ufrag``/``ice_pwd``/``fingerprint``
    are ready for the SDP answer as soon as the object exists.  The port comes from
    ``allocator`` when given (and goes back to it on :meth:`close`; ``PortsExhausted``
    propagates from here), else ``port`` (0: the kernel picks).  ``advertised_host`` is the
    address put in the candidate (a public address behind 1:1 NAT); it defaults to
    ``bind_host``.  ``consent_timeout`` / ``dtls_timeout`` are the failure times (tests use
    a few seconds); ``certificate`` may be shared by legs; ``srtp_profiles`` restricts the
    SRTP profiles (names from :mod:`wcsgw.webrtc.srtp`).

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
        certificate: Optional[RTCCertificate] = None,
        srtp_profiles: Sequence[str] = SUPPORTED_PROFILES,
        credentials: Optional[IceCredentials] = None,
    ) -> None:
        self.reactor = reactor
        self.bind_host = bind_host
        self.host = advertised_host or bind_host
        self.consent_timeout = consent_timeout
        self.dtls_timeout = dtls_timeout

        self.on_rtp: Callable[[bytes, float], None] = _ignore
        self.on_rtcp: Callable[[bytes, float], None] = _ignore
        self.on_state: Callable[[str], None] = lambda state: None

        creds = credentials or make_ice_credentials()
        self.ice_ufrag = creds.ufrag
        self.ice_pwd = creds.pwd
        self._ice = IceLiteResponder(creds)
        self._dtls = DtlsSrtpServer(
            self._send_dtls, certificate=certificate, srtp_profiles=srtp_profiles
        )
        self._dtls.on_remote_close = self._remote_closed
        self.fingerprint: tuple[str, str] = self._dtls.fingerprint

        self.state = "new"
        self.srtp: Optional[SrtpSession] = None
        self._remote_fingerprint: Optional[tuple[str, str]] = None
        self.remote_pwd: Optional[str] = None
        self._done = False  # failed or closed: no more answering or forwarding
        self._close_d: Optional[defer.Deferred[None]] = None
        self._consent_call: Any = None
        self._dtls_call: Any = None
        self._handshake_d: Optional[defer.Deferred[SrtpSession]] = None
        self._peer: Optional[Address] = None  # where we send: cached ``_ice.selected``

        #: reactor.seconds() at milestones (for logs and measurements): start, first check,
        #: DTLS done, first RTP in.
        self.started_at: Optional[float] = None
        self.ice_connected_at: Optional[float] = None
        self.connected_at: Optional[float] = None
        self.first_rtp_at: Optional[float] = None
        #: Counters: packets in/out and what was dropped (unauthenticated source, before
        #: keys, SRTP auth/replay failures).
        self.rtp_in = self.rtcp_in = self.rtp_out = self.rtcp_out = 0
        self.dropped_in = self.dropped_out = self.srtp_errors = 0

        self._allocator = allocator
        self._ports: list[int] = []
        self._port = self._listen(port)
        self.port: int = self._port.getHost().port

    # -- setup -----------------------------------------------------------------------------

    def _listen(self, port: int) -> Any:
        from twisted.internet.error import CannotListenError

        if self._allocator is None:
            return self.reactor.listenUDP(port, _LegSocket(self), interface=self.bind_host)
        last: Optional[Exception] = None
        for _ in range(5):  # the allocator bind-tests, but another process may win the race
            ports = self._allocator.allocate(1)
            try:
                listening = self.reactor.listenUDP(
                    ports[0], _LegSocket(self), interface=self.bind_host
                )
            except CannotListenError as exc:
                self._allocator.release(ports)
                last = exc
                continue
            self._ports = ports
            return listening
        raise last  # type: ignore[misc]

    def set_remote(self, ufrag: str, pwd: str, fingerprint: tuple[str, str]) -> None:
        """The browser's ICE credentials and certificate fingerprint, from its SDP.

        ``pwd`` is not needed by a lite agent (we never send checks: the responder's own
        password keys both directions) but is taken to keep the call symmetric with a full
        agent and for a later ICE restart.
        """
        self._ice.set_remote_ufrag(ufrag)
        self.remote_pwd = pwd
        self._remote_fingerprint = fingerprint

    def start(self) -> None:
        """Go "checking": answer checks, wait for the browser's DTLS ClientHello."""
        if self._remote_fingerprint is None:
            raise LegError("set_remote() before start()")
        if self.state != "new":
            raise LegError(f"start() in state {self.state}")
        now = self.reactor.seconds()
        self.started_at = now
        self._ice.start(now)
        self._set_state(CHECKING)
        self._consent_call = self.reactor.callLater(self.consent_timeout, self._check_consent)
        self._handshake_d = as_deferred(self._dtls.handshake(self._remote_fingerprint))
        self._handshake_d.addCallbacks(self._handshake_done, self._handshake_failed)

    # -- the socket ------------------------------------------------------------------------

    def _datagram(self, data: bytes, addr: Address) -> None:
        if self._done or not data:
            return
        now = self.reactor.seconds()  # once per datagram, for whoever takes it
        first = data[0]
        if 127 < first < 192:
            self._media_in(data, addr, now)
        elif first < 4:
            if is_stun(data):
                self._stun_in(data, addr, now)
        elif 19 < first < 64:
            if self._ice.is_authenticated(addr):
                if addr != self._peer:
                    self._traffic_from(addr)
                self._dtls.feed(data)
            else:
                self.dropped_in += 1
        else:
            self.dropped_in += 1

    def _stun_in(self, data: bytes, addr: Address, now: float) -> None:
        if self.state == "new":
            return  # not started: the browser has no answer yet; it will retry
        outcome = self._ice.receive(data, addr, now)
        if outcome is None:
            return
        self._port.write(outcome.response, addr)
        self._peer = self._ice.selected
        if outcome.first:
            self.ice_connected_at = now
            log.debug("webrtc leg {port}: ICE check from {addr}", port=self.port, addr=addr)
            if self.srtp is None:
                self._dtls_call = self.reactor.callLater(self.dtls_timeout, self._dtls_timeout)

    def _traffic_from(self, addr: Address) -> None:
        self._ice.note_traffic(addr)
        self._peer = self._ice.selected

    def _media_in(self, data: bytes, addr: Address, now: float) -> None:
        srtp = self.srtp
        if srtp is None or not self._ice.is_authenticated(addr):
            self.dropped_in += 1
            return
        if addr != self._peer:
            self._traffic_from(addr)
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
            self.rtp_in += 1
            self.on_rtp(packet, now)

    # -- sending ---------------------------------------------------------------------------

    def send_rtp(self, packet: bytes) -> None:
        """Protect and send one RTP packet; dropped (counted) before keys or after failure."""
        srtp, peer = self.srtp, self._peer
        if srtp is None or peer is None or self._done:
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
        srtp, peer = self.srtp, self._peer
        if srtp is None or peer is None or self._done:
            self.dropped_out += 1
            return
        try:
            self._port.write(srtp.protect_rtcp(packet), peer)
        except (SrtpError, OSError):
            self.dropped_out += 1
            return
        self.rtcp_out += 1

    def _send_dtls(self, data: bytes) -> None:
        peer = self._peer
        if peer is None:
            return  # cannot happen in order (DTLS is only fed after a check); drop
        try:
            self._port.write(data, peer)
        except OSError:
            pass

    @property
    def remote_address(self) -> Optional[Address]:
        """The browser address we send to (nominated, else the latest authenticated)."""
        return self._peer

    # -- timers and outcomes -----------------------------------------------------------------

    def _check_consent(self) -> None:
        self._consent_call = None
        if self._done:
            return
        now = self.reactor.seconds()
        deadline = self._ice.consent_deadline(self.consent_timeout)
        if deadline is None or now >= deadline:
            log.info("webrtc leg {port}: no ICE consent for {t}s", port=self.port,
                     t=self.consent_timeout)
            self._fail(FAILED_ICE)
            return
        self._consent_call = self.reactor.callLater(deadline - now, self._check_consent)

    def _dtls_timeout(self) -> None:
        self._dtls_call = None
        if not self._done and self.srtp is None:
            log.info("webrtc leg {port}: no DTLS handshake {t}s after ICE", port=self.port,
                     t=self.dtls_timeout)
            self._fail(FAILED_DTLS)

    def _handshake_done(self, session: SrtpSession) -> None:
        if self._done:
            return
        self.srtp = session
        self.connected_at = self.reactor.seconds()
        if self._dtls_call is not None and self._dtls_call.active():
            self._dtls_call.cancel()
        self._dtls_call = None
        log.debug("webrtc leg {port}: DTLS done, {profile}", port=self.port,
                  profile=session.profile)
        self._set_state(CONNECTED)

    def _handshake_failed(self, failure: Any) -> None:
        if self._done:
            return None  # closing: the aborted handshake is expected
        if failure.check(DtlsError):
            log.info("webrtc leg {port}: {why}", port=self.port, why=failure.value)
        else:
            log.failure("webrtc leg {port}: DTLS handshake crashed", failure, port=self.port)
        self._fail(FAILED_DTLS)
        return None

    def _remote_closed(self) -> None:
        if self._done:
            return
        log.info("webrtc leg {port}: browser ended DTLS", port=self.port)
        self._stop_activity()
        self._set_state(CLOSED)

    def _fail(self, state: str) -> None:
        self._stop_activity()
        self._set_state(state)
        # Tell a browser that may still be there (close_notify); errors do not matter now.
        d = as_deferred(self._dtls.stop())
        d.addErrback(lambda _: None)

    def _stop_activity(self) -> None:
        self._done = True
        for name in ("_consent_call", "_dtls_call"):
            call = getattr(self, name)
            if call is not None and call.active():
                call.cancel()
            setattr(self, name, None)

    def _set_state(self, state: str) -> None:
        self.state = state
        try:
            self.on_state(state)
        except Exception:
            log.failure("webrtc leg {port}: on_state({state}) raised", port=self.port,
                        state=state)

    # -- closing -----------------------------------------------------------------------------

    def close(self) -> defer.Deferred[None]:
        """Send DTLS close_notify if connected, close the socket, give the port back.

        Reports "closed" (unless the leg already reported it).  Idempotent: every call returns
        a Deferred that fires once the port is released.
        """
        if self._close_d is None:
            self._close_d = defer.ensureDeferred(self._close())
        d: defer.Deferred[None] = defer.Deferred()

        def fire(result: Any) -> Any:
            d.callback(None)
            return result

        self._close_d.addBoth(fire)
        return d

    async def _close(self) -> None:
        already_closed = self.state == CLOSED
        self._stop_activity()
        try:
            await as_deferred(self._dtls.stop())
        except Exception:
            log.failure("webrtc leg {port}: DTLS stop failed", port=self.port)
        if self._handshake_d is not None and not self._handshake_d.called:
            # The handshake ends with ConnectionError once the channel is closed; wait for it
            # so no task outlives the leg.
            try:
                await self._handshake_d
            except Exception:
                pass
        await defer.maybeDeferred(self._port.stopListening)
        if self._allocator is not None and self._ports:
            self._allocator.release(self._ports)
            self._ports = []
        if not already_closed:
            self._set_state(CLOSED)
