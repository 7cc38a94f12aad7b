"""The control side of a browser leg: ICE-lite, the DTLS-SRTP handshake and their timers.

Beside the media path, not inside it: the leg's socket (:class:`~wcsgw.webrtc.leg.WebRtcLeg`)
hands STUN and DTLS datagrams here and moves SRTP itself, asking only :attr:`LegControl.srtp`
(keys, None before the handshake) and :attr:`LegControl.peer` / :meth:`LegControl.admits`
(where to send, whom to hear).  What lives here runs a few times a second at most (consent
checks every ~2.5 s, one handshake), what stays in the leg runs 50 times a second per
direction.

Lifecycle (reported through ``on_state``)::

    start() -> "checking" -- authenticated STUN check + DTLS handshake --> "connected"
        "checking"/"connected" -- no consent for consent_timeout s ------> "failed:ice"
        "checking" -- handshake fails, or none within dtls_timeout s
                      after the first authenticated check --------------> "failed:dtls"
        any -- the browser ends DTLS (close_notify) --------------------> "closed"
        any -- close() -----------------------------------------------> "closed"

An ICE restart (:meth:`LegControl.restart_ice`, the browser's network changed) changes no
state: new ICE credentials both sides, the same DTLS association and SRTP keys; consent must
then come with the new ones (wcsgw.webrtc.stun, ``IceLiteResponder.restart``).

Why the checks are strict: media is accepted only from addresses that passed an
authenticated STUN check (and sent only to the selected one), so a stranger who learns the
port cannot inject audio or make us send to a third party.  STUN is answered synchronously,
never queued behind media: Chrome stops sending audio ~5.6 s after its consent checks go
unanswered.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

from twisted.internet import defer
from twisted.logger import Logger

from wcsgw.loop import as_deferred
from wcsgw.webrtc.certificate import DtlsCertificate
from wcsgw.webrtc.dtls import DtlsError, DtlsSrtpServer
from wcsgw.webrtc.srtp import SUPPORTED_PROFILES, SrtpSession
from wcsgw.webrtc.stun import Address, IceCredentials, IceLiteResponder, make_ice_credentials

__all__ = ["LegControl", "LegError", "CHECKING", "CONNECTED", "FAILED_ICE", "FAILED_DTLS",
           "CLOSED"]

log = Logger(namespace="wcsgw.webrtc")

CHECKING = "checking"
CONNECTED = "connected"
FAILED_ICE = "failed:ice"
FAILED_DTLS = "failed:dtls"
CLOSED = "closed"

Send = Callable[[bytes, Address], None]


class LegError(RuntimeError):
    """The leg was used out of order (start before set_remote, start twice)."""


class LegControl:
    """ICE-lite + DTLS-SRTP for one browser (the module docstring).  ``send(data, address)``
    writes a STUN response or a DTLS record on the leg's socket; ``label`` names the leg in
    logs (its port).  ``consent_timeout`` / ``dtls_timeout`` are the failure times (tests use a
    few seconds); ``certificate`` may be shared by legs; ``srtp_profiles`` restricts the SRTP
    profiles (names from :mod:`wcsgw.webrtc.srtp`)."""

    def __init__(
        self,
        reactor: Any,
        send: Send,
        *,
        label: object = "",
        consent_timeout: float = 30.0,
        dtls_timeout: float = 10.0,
        certificate: Optional[DtlsCertificate] = None,
        srtp_profiles: Sequence[str] = SUPPORTED_PROFILES,
        credentials: Optional[IceCredentials] = None,
    ) -> None:
        self.reactor = reactor
        self._send = send
        self.label = label
        self.consent_timeout = consent_timeout
        self.dtls_timeout = dtls_timeout
        self.on_state: Callable[[str], None] = lambda state: None
        #: told each address an authenticated check came from (a shared port routes by it)
        self.on_check: Callable[[Address], None] = lambda address: None
        #: told each address an ICE restart left behind (a shared port stops routing it)
        self.on_forget: Callable[[Address], None] = lambda address: None

        creds = credentials or make_ice_credentials()
        self.ice_ufrag = creds.ufrag
        self.ice_pwd = creds.pwd
        self.ice = IceLiteResponder(creds)
        self._dtls = DtlsSrtpServer(
            self._send_dtls, certificate=certificate, srtp_profiles=srtp_profiles, clock=reactor
        )
        self._dtls.on_remote_close = self._remote_closed
        self.fingerprint: tuple[str, str] = self._dtls.fingerprint

        self.state = "new"
        #: the SRTP keys, once the handshake is done (None before: media is dropped)
        self.srtp: Optional[SrtpSession] = None
        #: where media goes: the nominated address, else the latest authenticated one
        self.peer: Optional[Address] = None
        self.remote_pwd: Optional[str] = None
        #: failed or closed: no more answering or forwarding
        self.done = False
        self._remote_fingerprint: Optional[tuple[str, str]] = None
        self._consent_call: Any = None
        self._dtls_call: Any = None
        self._handshake_d: Optional[defer.Deferred[SrtpSession]] = None
        #: reactor.seconds() at milestones (for logs and measurements): start, first check,
        #: DTLS done.
        self.started_at: Optional[float] = None
        self.ice_connected_at: Optional[float] = None
        self.connected_at: Optional[float] = None

    def set_remote(self, ufrag: str, pwd: str, fingerprint: tuple[str, str]) -> None:
        """The browser's ICE credentials and certificate fingerprint, from its SDP.

        ``pwd`` is not needed by a lite agent (we never send checks: the responder's own
        password keys both directions) but is taken to keep the call symmetric with a full
        agent and for a later ICE restart.
        """
        self.ice.set_remote_ufrag(ufrag)
        self.remote_pwd = pwd
        self._remote_fingerprint = fingerprint

    @property
    def remote_fingerprint(self) -> Optional[tuple[str, str]]:
        """The browser's certificate fingerprint the handshake checks (an ICE restart keeps
        it: a different one would be a new DTLS association, which a restart is not)."""
        return self._remote_fingerprint

    def restart_ice(self, credentials: IceCredentials, ufrag: str, pwd: str) -> None:
        """An ICE restart (the browser's network changed): ``credentials`` are our new ones,
        ``ufrag``/``pwd`` the browser's new ones, from its restart offer.

        Only ICE starts over (:meth:`IceLiteResponder.restart`): the DTLS association, its
        SRTP keys, the state and the timers go on as they are — RFC 8445 §9 restarts ICE
        alone, and the browser keeps its DTLS transport.  :class:`LegError` when the leg is
        not started or already failed or closed (the call is ending: nothing to restart).
        """
        if self.done or self.state not in (CHECKING, CONNECTED):
            raise LegError(f"ICE restart in state {self.state}")
        self.ice_ufrag = credentials.ufrag
        self.ice_pwd = credentials.pwd
        self.remote_pwd = pwd
        self.ice.restart(credentials, ufrag)
        self.peer = self.ice.selected
        log.info("webrtc leg {webrtc_leg}: ICE restart", webrtc_leg=self.label)

    def start(self) -> None:
        """Go "checking": answer checks, wait for the browser's DTLS ClientHello."""
        if self._remote_fingerprint is None:
            raise LegError("set_remote() before start()")
        if self.state != "new":
            raise LegError(f"start() in state {self.state}")
        now = self.reactor.seconds()
        self.started_at = now
        self.ice.start(now)
        self._set_state(CHECKING)
        self._consent_call = self.reactor.callLater(self.consent_timeout, self._check_consent)
        self._handshake_d = as_deferred(self._dtls.handshake(self._remote_fingerprint))
        self._handshake_d.addCallbacks(self._handshake_done, self._handshake_failed)

    # -- datagrams the leg hands over ------------------------------------------------------

    def stun(self, data: bytes, addr: Address, now: float) -> None:
        """A STUN message (first byte 0..3) from ``addr``: answered at once if it is an
        authenticated check; the first one arms the DTLS timer."""
        if self.state == "new":
            return  # not started: the browser has no answer yet; it will retry
        outcome = self.ice.receive(data, addr, now)
        if outcome is None:
            return
        self._send(outcome.response, addr)
        self.on_check(addr)
        for gone in outcome.forgotten:
            self.on_forget(gone)
        self.peer = self.ice.selected
        if outcome.first:
            self.ice_connected_at = now
            log.debug("webrtc leg {webrtc_leg}: ICE check from {addr}", webrtc_leg=self.label, addr=addr)
            if self.srtp is None:
                self._dtls_call = self.reactor.callLater(self.dtls_timeout, self._dtls_timeout)

    def dtls(self, data: bytes, addr: Address) -> bool:
        """A DTLS record (first byte 20..63): fed to the handshake if ``addr`` passed a check;
        False (dropped) otherwise."""
        if not self.ice.is_authenticated(addr):
            return False
        if addr != self.peer:
            self.traffic_from(addr)
        self._dtls.feed(data)
        return True

    def admits(self, addr: Address) -> bool:
        """Whether media from ``addr`` is taken (it passed an authenticated check)."""
        return self.ice.is_authenticated(addr)

    def traffic_from(self, addr: Address) -> None:
        """Authenticated traffic from an address other than :attr:`peer` (the browser moved
        to another candidate pair): it may become where we send."""
        self.ice.note_traffic(addr)
        self.peer = self.ice.selected

    def media_arrived(self) -> None:
        """The first authenticated SRTP packet: the browser finished its handshake (it sends
        media only then), so no flight of ours is missing and DTLS can drop OpenSSL's
        connection now rather than after its linger (:meth:`DtlsSrtpServer.release`)."""
        self._dtls.release()

    def _send_dtls(self, data: bytes) -> None:
        peer = self.peer
        if peer is None:
            return  # cannot happen in order (DTLS is only fed after a check); drop
        self._send(data, peer)

    # -- timers and outcomes -----------------------------------------------------------------

    def _check_consent(self) -> None:
        self._consent_call = None
        if self.done:
            return
        now = self.reactor.seconds()
        deadline = self.ice.consent_deadline(self.consent_timeout)
        if deadline is None or now >= deadline:
            log.info("webrtc leg {webrtc_leg}: no ICE consent for {t}s", webrtc_leg=self.label,
                     t=self.consent_timeout)
            self._fail(FAILED_ICE)
            return
        self._consent_call = self.reactor.callLater(deadline - now, self._check_consent)

    def _dtls_timeout(self) -> None:
        self._dtls_call = None
        if not self.done and self.srtp is None:
            log.info("webrtc leg {webrtc_leg}: no DTLS handshake {t}s after ICE", webrtc_leg=self.label,
                     t=self.dtls_timeout)
            self._fail(FAILED_DTLS)

    def _handshake_done(self, session: SrtpSession) -> None:
        if self.done:
            return
        self.srtp = session
        self.connected_at = self.reactor.seconds()
        if self._dtls_call is not None and self._dtls_call.active():
            self._dtls_call.cancel()
        self._dtls_call = None
        log.debug("webrtc leg {webrtc_leg}: DTLS done, {profile}", webrtc_leg=self.label,
                  profile=session.profile)
        self._set_state(CONNECTED)

    def _handshake_failed(self, failure: Any) -> None:
        if self.done:
            return None  # closing: the aborted handshake is expected
        if failure.check(DtlsError):
            log.info("webrtc leg {webrtc_leg}: {why}", webrtc_leg=self.label, why=failure.value)
        else:
            log.failure("webrtc leg {webrtc_leg}: DTLS handshake crashed", failure, webrtc_leg=self.label)
        self._fail(FAILED_DTLS)
        return None

    def _remote_closed(self) -> None:
        if self.done:
            return
        log.info("webrtc leg {webrtc_leg}: browser ended DTLS", webrtc_leg=self.label)
        self._stop_activity()
        self._set_state(CLOSED)

    def _fail(self, state: str) -> None:
        self._stop_activity()
        self._set_state(state)
        # Tell a browser that may still be there (close_notify); errors do not matter now.
        d = as_deferred(self._dtls.stop())
        d.addErrback(lambda _: None)

    def _stop_activity(self) -> None:
        self.done = True
        for call in (self._consent_call, self._dtls_call):
            if call is not None and call.active():
                call.cancel()
        self._consent_call = self._dtls_call = None

    def _set_state(self, state: str) -> None:
        self.state = state
        try:
            self.on_state(state)
        except Exception:
            log.failure("webrtc leg {webrtc_leg}: on_state({state}) raised", webrtc_leg=self.label,
                        state=state)

    # -- closing -----------------------------------------------------------------------------

    async def stop(self) -> bool:
        """Stop the timers, send DTLS close_notify if connected, and wait for the handshake
        task to end (so no task outlives the leg).  True if "closed" was already reported."""
        already_closed = self.state == CLOSED
        self._stop_activity()
        try:
            await as_deferred(self._dtls.stop())
        except Exception:
            log.failure("webrtc leg {webrtc_leg}: DTLS stop failed", webrtc_leg=self.label)
        if self._handshake_d is not None and not self._handshake_d.called:
            # Stopping DTLS fails a handshake in progress (DtlsError) at once.
            try:
                await self._handshake_d
            except Exception:
                pass
        return already_closed

    def closed(self) -> None:
        """The socket is gone: report "closed" (after :meth:`stop`, unless it said it had)."""
        self._set_state(CLOSED)
