"""The DTLS-SRTP server side of a WebRTC leg, reusing aiortc's ``RTCDtlsTransport``.

Why reuse instead of writing it: aiortc's transport already does the part that is easy to get
subtly wrong — the pyOpenSSL DTLS context (ECDSA certificate, cipher list, ``use_srtp``
profiles), handshake retransmission timers, peer fingerprint validation and the RFC 5764 key
export into two pylibsrtp sessions.  It touches the ICE transport it is given only through
``role``, ``await _recv()`` and ``await _send(data)``, so a small object of ours
(:class:`DatagramChannel`) can sit under it in place of aioice: we feed it only the DTLS
datagrams (first byte 20..63) that arrive on the leg's socket from an authenticated address,
and it writes its flights back through a callable.  SRTP never goes through it: after the
handshake the leg protects/unprotects with the sessions directly (:class:`SrtpSession`).

The seam (all aiortc 1.16 *private* names, pinned by ``tests/test_webrtc_dtls.py``):
``RTCDtlsTransport._set_role("server")`` (with role "auto" a controlled ICE transport would
make it the DTLS client — wrong for ``a=setup:passive``), ``_srtp_profiles`` (to choose the
offered profiles), ``_rx_srtp`` / ``_tx_srtp`` (the sessions) and ``_ssl`` (to read the
negotiated profile).  If a later aiortc changes them, those tests fail first; the fallback is
owning the ~200 lines of handshake with pyOpenSSL directly.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Callable, Optional, Sequence

from aiortc.rtcdtlstransport import (
    SRTP_PROFILES as _AIORTC_PROFILES,
    RTCCertificate,
    RTCDtlsFingerprint,
    RTCDtlsParameters,
    RTCDtlsTransport,
)

from wcsgw.webrtc.srtp import SUPPORTED_PROFILES, SrtpSession

__all__ = [
    "DatagramChannel",
    "DtlsError",
    "DtlsSrtpServer",
    "RTCCertificate",
    "is_dtls",
]


def is_dtls(data: bytes) -> bool:
    """RFC 7983: a first byte of 20..63 is DTLS."""
    return len(data) > 0 and 19 < data[0] < 64


class DtlsError(Exception):
    """The DTLS handshake failed (alert, no common SRTP profile, or fingerprint mismatch)."""


class DatagramChannel:
    """What ``RTCDtlsTransport`` needs of an ``RTCIceTransport``, over someone else's socket.

    ``feed`` queues a received DTLS datagram for aiortc's ``_recv``; aiortc's writes go to the
    ``send`` callable synchronously.  After :meth:`close`, ``_recv`` and ``_send`` raise
    ``ConnectionError`` — the signal aiortc's receive pump ends on.
    """

    #: Read by aiortc only when its own role is "auto"; we always set it explicitly.
    role = "controlled"

    def __init__(self, send: Callable[[bytes], None]) -> None:
        self._send_to_peer = send
        self._queue: deque[bytes] = deque()
        self._waiter: Optional[asyncio.Future[None]] = None
        self.closed = False

    def feed(self, data: bytes) -> None:
        if self.closed:
            return
        self._queue.append(data)
        self._wake()

    def close(self) -> None:
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def _recv(self) -> bytes:
        while not self._queue:
            if self.closed:
                raise ConnectionError("datagram channel closed")
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._queue.popleft()

    async def _send(self, data: bytes) -> None:
        if self.closed:
            raise ConnectionError("datagram channel closed")
        self._send_to_peer(data)


class DtlsSrtpServer:
    """One DTLS association as the server (``a=setup:passive``), yielding an :class:`SrtpSession`.

    ``send`` writes a datagram to the browser (the leg decides where).  ``certificate`` may be
    shared between legs (a fresh ECDSA P-256 one is made otherwise, ~1 ms); it is valid for 30
    days from creation.  ``srtp_profiles`` restricts and orders the profiles we accept (names
    from :mod:`wcsgw.webrtc.srtp`).  ``on_remote_close`` is called once if the browser ends an
    established association (DTLS close_notify).
    """

    def __init__(
        self,
        send: Callable[[bytes], None],
        *,
        certificate: Optional[RTCCertificate] = None,
        srtp_profiles: Sequence[str] = SUPPORTED_PROFILES,
    ) -> None:
        self.certificate = certificate or RTCCertificate.generateCertificate()
        self.channel = DatagramChannel(send)
        self._transport = RTCDtlsTransport(self.channel, [self.certificate])  # type: ignore[arg-type]
        self._transport._set_role("server")
        available = {p.openssl_profile.decode("ascii"): p for p in _AIORTC_PROFILES}
        chosen = [available[name] for name in srtp_profiles if name in available]
        if not chosen:
            raise ValueError(f"none of the SRTP profiles {list(srtp_profiles)} is available")
        self._transport._srtp_profiles = chosen
        self.on_remote_close: Callable[[], None] = lambda: None
        self._stopping = False
        self._stopped = False
        self._connected = False
        self._transport.on("statechange", self._state_changed)

    @property
    def fingerprint(self) -> tuple[str, str]:
        """Our certificate's ``("sha-256", "AB:CD:...")`` for ``a=fingerprint``."""
        for f in self.certificate.getFingerprints():
            if f.algorithm == "sha-256":
                return (f.algorithm, f.value)
        raise AssertionError("aiortc certificate without a sha-256 fingerprint")

    @property
    def state(self) -> str:
        """aiortc's state: new, connecting, connected, closed or failed."""
        return self._transport.state

    def feed(self, data: bytes) -> None:
        """A DTLS datagram from the (authenticated) browser address."""
        self.channel.feed(data)

    async def handshake(self, remote_fingerprint: tuple[str, str]) -> SrtpSession:
        """Run the handshake to completion; the browser (DTLS client) speaks first.

        Raises :class:`DtlsError` on failure.  Never times out by itself: the leg bounds it.
        """
        algorithm, value = remote_fingerprint
        params = RTCDtlsParameters(
            fingerprints=[RTCDtlsFingerprint(algorithm=algorithm.lower(), value=value.upper())],
            role="client",
        )
        await self._transport.start(params)
        if self._transport.state != "connected":
            raise DtlsError(f"DTLS handshake failed (state {self._transport.state})")
        ssl = self._transport._ssl
        if ssl is None:  # connected implies a TLS connection: a changed aiortc, say so
            raise DtlsError("DTLS connected without a TLS connection (aiortc changed?)")
        selected = ssl.get_selected_srtp_profile()
        session = SrtpSession(
            profile=selected.decode("ascii") if selected else "?",
            rx=self._transport._rx_srtp,
            tx=self._transport._tx_srtp,
        )
        self._connected = True
        return session

    async def stop(self) -> None:
        """Send close_notify if established, end aiortc's pump, refuse further datagrams.

        Idempotent (a failed leg stops DTLS at once, and again when it is closed)."""
        if self._stopped:
            return
        self._stopped = True
        self._stopping = True
        try:
            await self._transport.stop()
        finally:
            self.channel.close()

    def _state_changed(self) -> None:
        state = self._transport.state
        if state == "closed" and self._connected and not self._stopping:
            self._stopping = True
            self.on_remote_close()
