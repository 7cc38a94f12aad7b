"""The DTLS-SRTP server side of a WebRTC leg (RFC 5763/5764), on pyOpenSSL memory BIOs.

Why our own and not aiortc's ``RTCDtlsTransport``: importing aiortc pulls PyAV/FFmpeg, aioice
and its codecs into the gateway (+26 MiB of idle RSS) for ~200 lines of handshake, it builds
one ``SSL_CTX`` per leg, and reaching it needed aiortc's private names.  Here every leg of a
gateway shares one ``SSL.Context`` (:func:`server_context`, cached on the
:class:`~wcsgw.webrtc.certificate.DtlsCertificate`), and a leg owns one ``SSL.Connection``
over memory BIOs: datagrams are pushed in (:meth:`DtlsSrtpServer.feed`, only DTLS from an
address that passed an ICE check), flights come out through the ``send`` callable, the
retransmission timer is OpenSSL's (``DTLSv1_get_timeout``) on an injected clock.

"DTLS objects released once the keys are exported": an established leg needs DTLS only to
answer a client that lost our last flight (it sends its own again), to read the browser's
close_notify and to send ours.  OpenSSL's connection does all three but costs ~70 kB of
native memory per leg even with ``MODE_RELEASE_BUFFERS`` (84 kB per established leg against
13 kB without it, docs/performance.md), so it is kept until the browser's first SRTP packet
(it sends media only once it has our Finished; the leg tells :meth:`DtlsSrtpServer.release`)
or :data:`LINGER` seconds at most (the client's retransmissions fall in that window), then
replaced by the epoch-1 alert keys
(:class:`~wcsgw.webrtc.dtlsrecord.AlertKeys`, a few hundred bytes) — for the AEAD suites
browsers negotiate; with any other suite the connection stays.

Checks (why they are strict): any client certificate is accepted by OpenSSL — WebRTC has no
CA — and is then compared, in constant time, with the ``a=fingerprint`` of the browser's SDP;
a client without a certificate, without ``use_srtp`` or with no profile in common fails the
handshake with :class:`DtlsError`, never a crash.  SRTP never goes through here: after the
handshake the leg protects/unprotects with the two pylibsrtp sessions (:class:`SrtpSession`).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any, Callable, Final, Optional, Sequence

from cryptography.hazmat.primitives.serialization import Encoding
from OpenSSL import SSL
from twisted.internet import defer

from wcsgw.webrtc.certificate import DtlsCertificate
from wcsgw.webrtc.dtlsrecord import MTU, AlertKeys, split_records
from wcsgw.webrtc.srtp import DTLS_SRTP_KEYING, SUPPORTED_PROFILES, SrtpSession, from_dtls_keying

__all__ = ["DtlsError", "DtlsSrtpServer", "LINGER", "MTU", "is_dtls", "server_context"]

#: seconds an established leg keeps OpenSSL's connection: a client whose copy of our last
#: flight was lost sends its own again (Chrome within ~1 s, then backing off), and only the
#: connection can answer; after it, close_notify goes through :class:`AlertKeys` (~70 kB less
#: native memory per leg)
LINGER: Final = 10.0

#: aiortc's list: ECDHE with ECDSA (our certificate's key type), AEAD first
CIPHERS: Final = (b"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:"
                  b"ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA")

#: a=fingerprint hash functions we check (RFC 8122 names -> hashlib names)
_DIGESTS: Final = {"sha-256": "sha256", "sha-384": "sha384", "sha-512": "sha512"}


def is_dtls(data: bytes) -> bool:
    """RFC 7983: a first byte of 20..63 is DTLS."""
    return len(data) > 0 and 19 < data[0] < 64


class DtlsError(Exception):
    """The DTLS handshake failed (alert, no common SRTP profile, or fingerprint mismatch)."""


def _accept_any(*args: Any) -> bool:
    """OpenSSL's chain check is skipped: the fingerprint check after the handshake decides."""
    return True


def server_context(certificate: DtlsCertificate, profiles: Sequence[str]) -> SSL.Context:
    """The DTLS server context for ``certificate`` offering ``profiles`` (in that order),
    made once and shared by every leg that asks the same (the ``SSL_CTX`` is the costly
    part of OpenSSL's per-connection memory when made per leg).  No session cache and no
    tickets: a browser never resumes a DTLS-SRTP session."""
    key = tuple(profiles)
    context: Optional[SSL.Context] = certificate.contexts.get(key)
    if context is None:
        context = SSL.Context(SSL.DTLS_METHOD)
        context.set_options(SSL.OP_NO_TICKET | SSL.OP_NO_QUERY_MTU)
        context.set_session_cache_mode(SSL.SESS_CACHE_OFF)
        context.set_mode(SSL.MODE_RELEASE_BUFFERS)
        context.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, _accept_any)
        context.use_certificate(certificate.cert)
        context.use_privatekey(certificate.key)
        context.check_privatekey()
        context.set_cipher_list(CIPHERS)
        context.set_tlsext_use_srtp(":".join(key).encode("ascii"))
        certificate.contexts[key] = context
    return context


class DtlsSrtpServer:
    """One DTLS association as the server (``a=setup:passive``), yielding an :class:`SrtpSession`.

    ``send`` writes a datagram to the browser (the leg decides where).  ``certificate`` may be
    shared between legs (one :class:`DtlsCertificate` per gateway: one shared context); a
    fresh one is made otherwise.  ``srtp_profiles`` restricts and orders the profiles we
    accept (names from :mod:`wcsgw.webrtc.srtp`).  ``clock`` (an ``IReactorTime``; the global
    reactor if None) runs the retransmission timer and the ``linger`` (seconds OpenSSL's
    connection is kept after the handshake, the module docstring).  ``on_remote_close`` is
    called once if the browser ends an established association (DTLS close_notify).

    :attr:`state`: new, connecting (after :meth:`handshake`), connected, failed or closed.
    """

    def __init__(
        self,
        send: Callable[[bytes], None],
        *,
        certificate: Optional[DtlsCertificate] = None,
        srtp_profiles: Sequence[str] = SUPPORTED_PROFILES,
        clock: Any = None,
        linger: float = LINGER,
    ) -> None:
        self.certificate = certificate or DtlsCertificate.generate()
        chosen = [name for name in srtp_profiles if name in DTLS_SRTP_KEYING]
        if not chosen:
            raise ValueError(f"none of the SRTP profiles {list(srtp_profiles)} is available")
        self._context = server_context(self.certificate, chosen)
        self._send = send
        self._clock = clock
        self.on_remote_close: Callable[[], None] = lambda: None
        self.state = "new"
        self._conn: Optional[SSL.Connection] = None
        self._early: list[bytes] = []
        self._expected: tuple[str, bytes] = ("", b"")
        self._done: Optional[defer.Deferred[SrtpSession]] = None
        self._timer: Any = None
        self._linger = linger
        self._release_call: Any = None
        #: after the linger: what close_notify needs, in place of the connection
        self._keys: Optional[AlertKeys] = None

    @property
    def fingerprint(self) -> tuple[str, str]:
        """Our certificate's ``("sha-256", "AB:CD:...")`` for ``a=fingerprint``."""
        return self.certificate.fingerprint

    def feed(self, data: bytes) -> None:
        """A DTLS datagram from the (authenticated) browser address.  Before
        :meth:`handshake` a few are kept; after the end (failed, closed) they are dropped."""
        if self.state == "new":
            if len(self._early) < 8:
                self._early.append(data)
            return
        conn = self._conn
        if conn is None:
            if self._keys is not None and self.state == "connected" and self._keys.ends(data):
                self._remote_closed()
            return
        try:
            conn.bio_write(data)
        except SSL.Error:  # a memory BIO takes anything; should it not, the datagram is lost
            return
        if self.state == "connecting":
            self._advance(conn)
        else:
            self._read_established(conn)

    def handshake(self, remote_fingerprint: tuple[str, str]) -> "defer.Deferred[SrtpSession]":
        """Start the handshake; the Deferred fires with the SRTP keys once it is complete
        and the browser's certificate matches ``remote_fingerprint`` (from its SDP), or fails
        with :class:`DtlsError`.  The browser (DTLS client) speaks first.  Never times out by
        itself (OpenSSL retransmits): the leg bounds it."""
        if self.state != "new":
            return defer.fail(DtlsError(f"DTLS handshake started in state {self.state}"))
        algorithm, value = remote_fingerprint
        name = _DIGESTS.get(algorithm.lower())
        try:
            expected = bytes.fromhex(value.replace(":", ""))
        except ValueError:
            name = None
        if name is None:
            self.state = "failed"
            return defer.fail(DtlsError(f"a=fingerprint {algorithm} is not one we can check"))
        self._expected = (name, expected)
        conn = SSL.Connection(self._context, None)
        conn.set_accept_state()
        conn.set_ciphertext_mtu(MTU)
        self._conn = conn
        self.state = "connecting"
        self._done = defer.Deferred()
        done = self._done
        early, self._early = self._early, []
        for data in early:
            self.feed(data)
        return done

    def stop(self) -> "defer.Deferred[None]":
        """Send close_notify if established, end a handshake in progress (its Deferred fails
        with :class:`DtlsError`), release the connection, refuse further datagrams.

        Idempotent (a failed leg stops DTLS at once, and again when it is closed)."""
        conn, self._conn = self._conn, None
        keys, self._keys = self._keys, None
        self._cancel_timer()
        if self.state == "connected" and conn is not None:
            try:
                conn.shutdown()
            except SSL.Error:
                pass
            self._flush(conn)
        elif self.state == "connected" and keys is not None:
            self._send(keys.close_notify())
        if self.state == "connecting":
            self._fail(DtlsError("DTLS stopped before the handshake completed"))
        if self.state != "failed":
            self.state = "closed"
        return defer.succeed(None)

    # -- the handshake ---------------------------------------------------------------------

    def _advance(self, conn: SSL.Connection) -> None:
        try:
            conn.do_handshake()
        except SSL.WantReadError:
            self._flush(conn)
            self._arm_timer(conn)
            return
        except SSL.Error as exc:
            self._flush(conn)  # our alert, if OpenSSL wrote one
            self._fail(DtlsError(f"DTLS handshake failed: {_reason(exc)}"))
            return
        self._flush(conn)
        self._cancel_timer()
        if self._conn is conn:
            self._established(conn)

    def _established(self, conn: SSL.Connection) -> None:
        cert = conn.get_peer_certificate(as_cryptography=True)
        if cert is None:  # VERIFY_FAIL_IF_NO_PEER_CERT makes this unreachable; say so
            self._fail(DtlsError("DTLS peer sent no certificate"))
            return
        name, expected = self._expected
        digest = hashlib.new(name, cert.public_bytes(Encoding.DER)).digest()
        if not hmac.compare_digest(digest, expected):
            self._fail(DtlsError("DTLS peer certificate does not match a=fingerprint"))
            return
        profile = conn.get_selected_srtp_profile().decode("ascii", "replace")
        if profile not in DTLS_SRTP_KEYING:
            self._fail(DtlsError(f"DTLS without a common SRTP profile ({profile or 'none'})"))
            return
        _, key_len, salt_len = DTLS_SRTP_KEYING[profile]
        material = conn.export_keying_material(b"EXTRACTOR-dtls_srtp", 2 * (key_len + salt_len))
        session = from_dtls_keying(profile, material)
        self.state = "connected"
        self._release_call = self._call_later(self._linger, self.release)
        done, self._done = self._done, None
        if done is not None:
            done.callback(session)
        if self._conn is conn:
            self._read_established(conn)  # a close_notify that came with the last flight

    def _read_established(self, conn: SSL.Connection) -> None:
        """After the handshake: a retransmitted client flight (OpenSSL answers it), a
        close_notify (the browser ended DTLS), application data (none is expected: dropped),
        or a record that does not decrypt (dropped, as aiortc does)."""
        closed = False
        try:
            while True:
                conn.recv(2048)
        except SSL.WantReadError:
            pass
        except SSL.ZeroReturnError:
            closed = True
        except SSL.Error:
            pass
        self._flush(conn)
        if closed and self.state == "connected":
            self._remote_closed()

    def _remote_closed(self) -> None:
        self.state = "closed"
        self._conn = self._keys = None
        self._cancel_timer()
        self.on_remote_close()

    def release(self) -> None:
        """Keep only the alert keys and free OpenSSL's connection (unless the suite is one
        :class:`AlertKeys` cannot seal: then the connection stays): at the end of the linger,
        or earlier when the leg knows the client is done (its first SRTP packet came in).
        Before the handshake completes, and after a release, it does nothing."""
        if self._release_call is not None and self._release_call.active():
            self._release_call.cancel()
        self._release_call = None
        conn = self._conn
        if conn is None or self.state != "connected":
            return
        self._keys = AlertKeys.derive(conn.get_cipher_name(), conn.get_protocol_version_name(),
                                      conn.master_key(), conn.client_random(),
                                      conn.server_random())
        if self._keys is not None:
            self._conn = None

    def _fail(self, error: DtlsError) -> None:
        self.state = "failed"
        self._cancel_timer()
        self._conn = None
        done, self._done = self._done, None
        if done is not None:
            done.errback(error)

    # -- datagrams out and the retransmission timer ----------------------------------------

    def _flush(self, conn: SSL.Connection) -> None:
        while True:
            try:
                data = conn.bio_read(65536)
            except SSL.Error:  # WantReadError: the BIO is empty
                return
            if not data:
                return
            for datagram in split_records(data):
                self._send(datagram)

    def _arm_timer(self, conn: SSL.Connection) -> None:
        self._cancel_timer()
        if self._conn is not conn or self.state != "connecting":
            return  # ended while our datagrams were being sent (send may call back)
        timeout = conn.DTLSv1_get_timeout()
        if timeout is not None:
            self._timer = self._call_later(timeout, self._timer_fired)

    def _call_later(self, delay: float, f: Callable[[], None]) -> Any:
        clock = self._clock
        if clock is None:
            from twisted.internet import reactor as clock
        return clock.callLater(delay, f)

    def _cancel_timer(self) -> None:
        """The retransmission timer and the linger's."""
        for timer in (self._timer, self._release_call):
            if timer is not None and timer.active():
                timer.cancel()
        self._timer = self._release_call = None

    def _timer_fired(self) -> None:
        self._timer = None
        conn = self._conn
        if conn is None or self.state != "connecting":
            return
        try:
            conn.DTLSv1_handle_timeout()
        except SSL.Error as exc:
            self._fail(DtlsError(f"DTLS retransmission failed: {_reason(exc)}"))
            return
        self._flush(conn)
        self._arm_timer(conn)


def _reason(exc: SSL.Error) -> str:
    """OpenSSL's reason strings (no key material is ever in them)."""
    try:
        return "; ".join(str(e[2]) for e in exc.args[0]) or type(exc).__name__
    except (IndexError, TypeError):
        return str(exc) or type(exc).__name__
