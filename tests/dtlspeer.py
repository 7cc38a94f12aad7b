"""The browser's side of DTLS-SRTP for tests and the bench: aiortc's client over a callable,
and a bare pyOpenSSL client that can misbehave.

:class:`DatagramChannel` is what aiortc's ``RTCDtlsTransport`` needs of an ``RTCIceTransport``
(``role``, ``await _recv()``, ``await _send(data)``) over someone else's socket, so the
scripted browsers (tests/test_webrtc_leg.py, tests/test_e2e_resume_sip.py, bench/load_caller.py)
run aiortc's DTLS client without aioice.  It lives here, not in wcsgw/: the gateway no longer
imports aiortc (wcsgw/webrtc/dtls.py is our own server).

:class:`RawDtlsClient` is a synchronous pyOpenSSL DTLS client over memory BIOs: with or
without a certificate, with any ``use_srtp`` list or none — the hostile peers the server must
turn into :class:`~wcsgw.webrtc.dtls.DtlsError`, and a peer whose flights a test can drop.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Callable, Optional

from OpenSSL import SSL

from wcsgw.webrtc.certificate import DtlsCertificate
from wcsgw.webrtc.dtlsrecord import split_records

__all__ = ["DatagramChannel", "RawDtlsClient"]


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


class RawDtlsClient:
    """A DTLS client driven by hand: :meth:`start` / :meth:`feed` return the datagrams it
    wants sent (nothing is sent by itself).  ``certificate=None`` offers none; ``srtp=b""``
    offers no ``use_srtp`` at all; ``ciphers`` narrows OpenSSL's default list."""

    def __init__(self, certificate: Optional[DtlsCertificate], srtp: bytes = b"SRTP_AES128_CM_SHA1_80",
                 ciphers: bytes = b"") -> None:
        ctx = SSL.Context(SSL.DTLS_METHOD)
        if ciphers:
            ctx.set_cipher_list(ciphers)
        ctx.set_verify(SSL.VERIFY_PEER, lambda *args: True)
        if certificate is not None:
            ctx.use_certificate(certificate.cert)
            ctx.use_privatekey(certificate.key)
        if srtp:
            ctx.set_tlsext_use_srtp(srtp)
        self.conn = SSL.Connection(ctx, None)
        self.conn.set_connect_state()
        self.done = False
        self.error: Optional[SSL.Error] = None
        self.closed_by_peer = False

    def start(self) -> list[bytes]:
        return self._step()

    def feed(self, data: bytes) -> list[bytes]:
        self.conn.bio_write(data)
        return self._step()

    def close(self) -> list[bytes]:
        """Our close_notify."""
        try:
            self.conn.shutdown()
        except SSL.Error:
            pass
        return self._out()

    def handle_timeout(self) -> list[bytes]:
        """OpenSSL's retransmission, whether or not its timer ran out (tests drive time)."""
        self.conn.DTLSv1_handle_timeout()
        return self._out()

    def _step(self) -> list[bytes]:
        if not self.done and self.error is None:
            try:
                self.conn.do_handshake()
                self.done = True
            except SSL.WantReadError:
                pass
            except SSL.Error as exc:
                self.error = exc
        if self.done:
            try:
                while True:
                    self.conn.recv(2048)
            except SSL.ZeroReturnError:
                self.closed_by_peer = True
            except SSL.Error:
                pass
        return self._out()

    def _out(self) -> list[bytes]:
        out: list[bytes] = []
        while True:
            try:
                data = self.conn.bio_read(65536)
            except SSL.Error:
                return out
            out.extend(split_records(data))
