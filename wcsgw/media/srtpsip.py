"""SDES-keyed SRTP on the SIP side's RTP pair: a wrapper around its send and receive.

Why a wrapper: the media relay stays a relay.  The browser leg's SRTP (keyed by DTLS) ends
in the WebRTC leg; the SIP side's, keyed by the SDP's ``a=crypto`` lines
(:mod:`wcsgw.sdp.crypto`), ends here — RTP and RTCP (SRTCP) protected on the way out and
unprotected on the way in, with no audio decoded, so the bridge and the media session see
plain RTP as they always did.  Unkeyed (the account's ``srtp = "off"``, or an answer that took
plain RTP) the wrapper hands the socket's packets straight on, no call in between.

Keys are set once both sides' lines are known (:meth:`SrtpSipSocket.key`): ours protect what
we send, theirs unprotect what comes.  A packet that fails authentication (forged, replayed,
sent with another key, or plain RTP once we are keyed) is dropped and counted
(:attr:`SrtpSipSocket.rejected`, ``rejected_rtcp``), never passed on.  Keys are never logged.
"""

from __future__ import annotations

from typing import Any, Callable

import pylibsrtp

__all__ = ["SrtpSipSocket", "PROFILES"]

Receive = Callable[[bytes, float], None]

#: RFC 4568 / RFC 7714 suite names -> pylibsrtp profiles
PROFILES: dict[str, int] = {
    "AES_CM_128_HMAC_SHA1_80": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    "AES_CM_128_HMAC_SHA1_32": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_32,
    "AEAD_AES_128_GCM": pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_128_GCM,
    "AEAD_AES_256_GCM": pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_256_GCM,
}


def _session(suite: str, key: bytes, direction: int) -> pylibsrtp.Session:
    policy = pylibsrtp.Policy(key=key, ssrc_type=direction, srtp_profile=PROFILES[suite])
    return pylibsrtp.Session(policy=policy)


def _ignore(data: bytes, now: float) -> None:
    """Packets before anyone listens: dropped."""


class SrtpSipSocket:
    """The SIP side's RTP socket pair as the media session sees it (see the module docstring).

    Everything but the packet path (``port``, ``set_remote``, ``close``, the latch's
    counters, ...) is the wrapped socket's own.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.suite: str | None = None
        #: RTP and RTCP packets dropped because they failed SRTP / SRTCP authentication (a
        #: peer's plain keep-alive counts too: baresip sends an RTCP APP "PING" in clear)
        self.rejected = 0
        self.rejected_rtcp = 0
        #: SRTP is mandatory: unkeyed, nothing is sent and nothing heard (fail closed, for
        #: every kind of call, whatever its answer said)
        self.required = False
        self._tx: pylibsrtp.Session | None = None
        self._rx: pylibsrtp.Session | None = None
        self._on_rtp: Receive = _ignore
        self._on_rtcp: Receive = _ignore

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    @property
    def keyed(self) -> bool:
        """SRTP is on: what goes out is protected, what comes in must authenticate."""
        return self._tx is not None

    def key(self, suite: str, ours: bytes, theirs: bytes) -> None:
        """Key both directions: ``ours`` (master key || salt) protects what we send,
        ``theirs`` unprotects what the SIP side sends; both of ``suite``.  Called again (a
        re-offer with a new key), it re-keys."""
        self.suite = suite
        self._tx = _session(suite, ours, pylibsrtp.Policy.SSRC_ANY_OUTBOUND)
        self._rx = _session(suite, theirs, pylibsrtp.Policy.SSRC_ANY_INBOUND)
        self._install()

    def require(self) -> None:
        """Mandatory SRTP: no plain packet goes out or comes in, keyed or not yet."""
        self.required = True
        self._install()

    def rekey_inbound(self, theirs: bytes) -> None:
        """The SIP side sent a new key of the same suite (a re-offer): what it sends from now
        on unprotects with it."""
        assert self.suite is not None
        self._rx = _session(self.suite, theirs, pylibsrtp.Policy.SSRC_ANY_INBOUND)

    @property
    def on_rtp(self) -> Receive:
        return self._on_rtp

    @on_rtp.setter
    def on_rtp(self, receive: Receive) -> None:
        self._on_rtp = receive
        self._install()

    @property
    def on_rtcp(self) -> Receive:
        return self._on_rtcp

    @on_rtcp.setter
    def on_rtcp(self, receive: Receive) -> None:
        self._on_rtcp = receive
        self._install()

    def _install(self) -> None:
        """Unkeyed, the socket's packets go straight to the receivers; keyed, through us."""
        if self._rx is None and self.required:
            self.inner.on_rtp = self._plain_in
            self.inner.on_rtcp = self._plain_in
        elif self._rx is None:
            self.inner.on_rtp = self._on_rtp
            self.inner.on_rtcp = self._on_rtcp
        else:
            self.inner.on_rtp = self._srtp_in
            self.inner.on_rtcp = self._srtcp_in

    def _plain_in(self, packet: bytes, now: float) -> None:
        self.rejected += 1

    def _srtp_in(self, packet: bytes, now: float) -> None:
        assert self._rx is not None
        try:
            plain = self._rx.unprotect(packet)
        except pylibsrtp.Error:
            self.rejected += 1
            return
        self._on_rtp(plain, now)

    def _srtcp_in(self, packet: bytes, now: float) -> None:
        assert self._rx is not None
        try:
            plain = self._rx.unprotect_rtcp(packet)
        except pylibsrtp.Error:
            self.rejected_rtcp += 1
            return
        self._on_rtcp(plain, now)

    def send_rtp(self, packet: bytes) -> None:
        """``packet`` to the SIP side, protected when keyed."""
        if self._tx is not None:
            try:
                packet = self._tx.protect(packet)
            except pylibsrtp.Error:
                return  # not RTP we can protect (too short): nothing to send
        elif self.required:
            return
        self.inner.send_rtp(packet)

    def send_rtcp(self, packet: bytes) -> None:
        """An RTCP report to the SIP side, as SRTCP when keyed."""
        if self._tx is not None:
            try:
                packet = self._tx.protect_rtcp(packet)
            except pylibsrtp.Error:
                return
        elif self.required:
            return
        self.inner.send_rtcp(packet)

    def close(self) -> Any:
        return self.inner.close()
