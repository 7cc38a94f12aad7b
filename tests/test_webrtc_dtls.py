"""Our DTLS-SRTP server (wcsgw.webrtc.dtls) against aiortc's client and a bare pyOpenSSL one.

aiortc's ``RTCDtlsTransport`` stands for the browser (the client the bench and the scripted
browsers use; Chromium and Firefox are in the e2e tests): every SRTP profile we offer, SRTP
both ways with its sessions, close_notify both ways.  The bare client (tests/dtlspeer.py) is
driven by hand with an injected clock: lost flights, garbage, and hostile peers (no
certificate, no use_srtp, a certificate that is not the SDP's) that must end in DtlsError.
"""

from __future__ import annotations

import asyncio
import datetime
import os
import random
import struct
import subprocess
import sys
from typing import Any, Sequence

from aiortc.rtcdtlstransport import (
    RTCCertificate,
    RTCDtlsFingerprint,
    RTCDtlsParameters,
    RTCDtlsTransport,
)
from cryptography.hazmat.primitives.asymmetric import ec
from twisted.internet import defer, reactor, task
from twisted.internet.task import Clock
from twisted.trial import unittest

from tests.dtlspeer import DatagramChannel, RawDtlsClient
from tests.support import inline
from wcsgw.loop import as_deferred
from wcsgw.webrtc.certificate import DtlsCertificate
from wcsgw.webrtc.dtls import LINGER, DtlsError, DtlsSrtpServer, is_dtls, server_context
from wcsgw.webrtc.dtlsrecord import AlertKeys, split_records
from wcsgw.webrtc.srtp import (
    SRTP_AEAD_AES_128_GCM,
    SRTP_AEAD_AES_256_GCM,
    SRTP_AES128_CM_SHA1_80,
    SUPPORTED_PROFILES,
)

RTP = struct.pack("!BBHII", 0x80, 0, 1, 160, 0x11223344) + bytes(160)
RTCP_RR = struct.pack("!BBHI", 0x80, 201, 1, 0x11223344)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Pair:
    """Our server and an aiortc client wired back to back, datagrams delivered on the loop."""

    def __init__(self, client_profiles: Sequence[str] | None = None, **server_kwargs: Any) -> None:
        loop = asyncio.get_event_loop()
        self.to_client: list[bytes] = []

        def to_server(data: bytes) -> None:
            loop.call_soon(self.server.feed, data)

        def to_client(data: bytes) -> None:
            self.to_client.append(data)
            loop.call_soon(self.client_channel.feed, data)

        #: the server's timers (retransmission, linger): nothing is lost in memory, and a
        #: test advances it to end the linger
        self.clock = Clock()
        self.server = DtlsSrtpServer(to_client, clock=self.clock, **server_kwargs)
        self.client_channel = DatagramChannel(to_server)
        self.client = RTCDtlsTransport(self.client_channel, [RTCCertificate.generateCertificate()])  # type: ignore
        self.client._set_role("client")
        if client_profiles is not None:
            self.client._srtp_profiles = [
                p for p in self.client._srtp_profiles
                if p.openssl_profile.decode() in client_profiles
            ]

    def client_fingerprint(self) -> tuple[str, str]:
        f = self.client.getLocalParameters().fingerprints[0]
        return (f.algorithm, f.value)

    async def run(self, server_sees: tuple[str, str] | None = None) -> Any:
        """Both handshakes; returns the server's SrtpSession or its DtlsError."""
        algo, value = self.server.fingerprint
        client_start = as_deferred(
            self.client.start(
                RTCDtlsParameters(fingerprints=[RTCDtlsFingerprint(algo, value)], role="server")
            )
        )
        result: Any
        try:
            result = await self.server.handshake(server_sees or self.client_fingerprint())
        except DtlsError as exc:
            result = exc
            self.client_channel.close()  # the client waits for a server that gave up
        await client_start
        return result

    async def stop(self) -> None:
        await as_deferred(self.client.stop())
        self.client_channel.close()
        await self.server.stop()


def run_raw(server: DtlsSrtpServer, client: RawDtlsClient, sent: list[bytes],
            drop_server_flights: int = 0) -> None:
    """Exchange flights until both sides are quiet, dropping the server's first
    ``drop_server_flights`` flights (a lossy path)."""
    to_server = client.start()
    for _ in range(10):
        for data in to_server:
            server.feed(data)
        flight, sent[:] = list(sent), []
        if drop_server_flights > 0 and flight:
            drop_server_flights -= 1
            flight = []
        to_server = [out for data in flight for out in client.feed(data)]
        if not to_server and not flight:
            return


class RawTests(unittest.TestCase):
    """The bare client, all synchronous: the server's timer runs on ``self.clock``."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.sent: list[bytes] = []
        self.results: list[Any] = []
        self.client_cert = DtlsCertificate.generate()

    def server(self, fingerprint: tuple[str, str] | None = None, **kwargs: Any) -> DtlsSrtpServer:
        server = DtlsSrtpServer(self.sent.append, clock=self.clock, **kwargs)
        server.handshake(fingerprint or self.client_cert.fingerprint).addBoth(self.results.append)
        self.addCleanup(server.stop)
        return server

    def failed_with(self, text: str) -> None:
        self.assertEqual(len(self.results), 1, self.results)
        failure = self.results[0]
        self.assertTrue(hasattr(failure, "check") and failure.check(DtlsError), failure)
        self.assertIn(text, str(failure.value))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_handshake_and_srtp(self) -> None:
        server = self.server()
        client = RawDtlsClient(self.client_cert)
        run_raw(server, client, self.sent)
        self.assertTrue(client.done)
        self.assertEqual(server.state, "connected")
        self.assertEqual(self.results[0].profile, SRTP_AES128_CM_SHA1_80)
        # No retransmission timer outlives the handshake: only the linger's.
        self.assertEqual([c.getTime() for c in self.clock.getDelayedCalls()], [LINGER])

    @inline
    async def test_lost_server_flight_is_sent_again_on_the_timer(self) -> None:
        """OpenSSL's retransmission timer reads the real clock: the server runs on the
        reactor here, and the test awaits the flight sent again (about 1 s later)."""
        again: defer.Deferred[None] = defer.Deferred()

        def send(data: bytes) -> None:
            self.sent.append(data)
            if lost and not armed:
                armed.append(True)  # resume once the whole flight is out
                reactor.callLater(0, again.callback, None)

        armed: list[bool] = []

        lost: list[bytes] = []
        server = DtlsSrtpServer(send)
        self.addCleanup(server.stop)
        server.handshake(self.client_cert.fingerprint).addBoth(self.results.append)
        client = RawDtlsClient(self.client_cert)
        for data in client.start():
            server.feed(data)
        lost.extend(self.sent)  # lost on the way
        self.sent.clear()
        self.assertTrue(lost)
        await again
        flight, self.sent[:] = list(self.sent), []
        self.assertEqual(flight[0][13:40], lost[0][13:40])  # the ServerHello again
        for data in [out for sent in flight for out in client.feed(sent)]:
            server.feed(data)
        self.assertEqual(server.state, "connected")
        self.assertEqual(len(self.results), 1)
        self.assertIsNone(server._timer)

    @inline
    async def test_lost_last_flight_answered_after_the_handshake(self) -> None:
        """Our Finished lost: the client sends its flight again (on its own timer, real
        time), the established server answers it (why the connection is kept after the
        keys are exported)."""
        server = self.server()
        client = RawDtlsClient(self.client_cert)
        for data in client.start():
            server.feed(data)
        flight, self.sent[:] = list(self.sent), []
        for data in [out for sent in flight for out in client.feed(sent)]:
            server.feed(data)
        self.assertEqual(server.state, "connected")
        self.sent.clear()  # our ChangeCipherSpec + Finished, lost
        self.assertFalse(client.done)
        again: list[bytes] = []
        while not again:
            timeout = client.conn.DTLSv1_get_timeout()
            await task.deferLater(reactor, (timeout or 0.0) + 0.02, lambda: None)
            again = client.handle_timeout()
        for data in again:
            server.feed(data)
        self.assertTrue(self.sent)
        for data in self.sent:
            client.feed(data)
        self.assertTrue(client.done)
        self.assertEqual(len(self.results), 1)

    def test_garbage_is_ignored(self) -> None:
        server = self.server()
        junk = [b"\x16", b"\x16\xfe\xfd" + bytes(20), b"\x17" + os.urandom(60), b"\x15\xfe\xff\x00"]
        for data in junk:
            server.feed(data)
        self.assertEqual(server.state, "connecting")
        client = RawDtlsClient(self.client_cert)
        run_raw(server, client, self.sent)
        self.assertEqual(server.state, "connected")
        for data in junk:
            server.feed(data)
        self.assertEqual(server.state, "connected")

    def test_datagrams_before_handshake_are_kept(self) -> None:
        server = DtlsSrtpServer(self.sent.append, clock=self.clock)
        self.addCleanup(server.stop)
        client = RawDtlsClient(self.client_cert)
        for data in client.start():
            server.feed(data)
        self.assertEqual(self.sent, [])
        server.handshake(self.client_cert.fingerprint).addBoth(self.results.append)
        self.assertTrue(self.sent)  # the ClientHello was answered

    def test_wrong_fingerprint_fails(self) -> None:
        server = self.server(fingerprint=DtlsCertificate.generate().fingerprint)
        run_raw(server, RawDtlsClient(self.client_cert), self.sent)
        self.failed_with("does not match a=fingerprint")
        self.assertEqual(server.state, "failed")

    def test_client_without_certificate_fails(self) -> None:
        server = self.server()
        run_raw(server, RawDtlsClient(None), self.sent)
        self.failed_with("DTLS handshake failed")

    def test_client_without_use_srtp_fails(self) -> None:
        server = self.server()
        run_raw(server, RawDtlsClient(self.client_cert, srtp=b""), self.sent)
        self.failed_with("without a common SRTP profile")

    def test_unusable_fingerprint_fails_at_once(self) -> None:
        self.server(fingerprint=("md5", "AB:CD"))
        self.failed_with("not one we can check")
        server = DtlsSrtpServer(self.sent.append, clock=self.clock)
        server.handshake(("sha-256", "not hex")).addBoth(self.results.append)
        self.assertEqual(server.state, "failed")

    def test_close_notify_both_ways(self) -> None:
        server = self.server()
        client = RawDtlsClient(self.client_cert)
        run_raw(server, client, self.sent)
        closed: list[bool] = []
        server.on_remote_close = lambda: closed.append(True)
        for data in client.close():
            server.feed(data)
        self.assertEqual((closed, server.state), ([True], "closed"))
        server.stop()
        self.assertEqual(closed, [True])

        other = RawDtlsClient(self.client_cert)
        second = DtlsSrtpServer(self.sent.append, clock=self.clock)
        self.sent.clear()
        second.handshake(self.client_cert.fingerprint).addBoth(self.results.append)
        run_raw(second, other, self.sent)
        self.assertEqual(second.state, "connected")
        second.stop()
        self.assertTrue(self.sent)
        for data in self.sent:
            other.feed(data)
        self.assertTrue(other.closed_by_peer)
        second.stop()  # idempotent
        self.assertEqual(second.state, "closed")

    def _released(self, ciphers: bytes) -> tuple[DtlsSrtpServer, RawDtlsClient]:
        server = self.server()
        client = RawDtlsClient(self.client_cert, ciphers=ciphers)
        run_raw(server, client, self.sent)
        self.assertEqual(server.state, "connected")
        self.assertIsNotNone(server._conn)
        self.clock.advance(LINGER)
        return server, client

    def _check_close_after_release(self, ciphers: bytes) -> None:
        """After the linger OpenSSL's connection is gone; close_notify still works both ways."""
        server, client = self._released(ciphers)
        self.assertIsNone(server._conn)
        forged = b"\x15\xfe\xfd\x00\x01" + bytes(6) + b"\x00\x1a" + bytes(26)
        for data in [forged, b"\x16\xfe\xfd" + bytes(20), b"\x15"]:
            server.feed(data)
        self.assertEqual(server.state, "connected")
        closed: list[bool] = []
        server.on_remote_close = lambda: closed.append(True)
        for data in client.close():
            server.feed(data)
        self.assertEqual((closed, server.state), ([True], "closed"))

        server, client = self._released(ciphers)
        self.sent.clear()
        server.stop()
        self.assertEqual(len(self.sent), 1)
        client.feed(self.sent[0])
        self.assertTrue(client.closed_by_peer)

    def test_close_after_release_chacha20(self) -> None:
        self._check_close_after_release(b"ECDHE-ECDSA-CHACHA20-POLY1305")

    def test_close_after_release_aes_gcm(self) -> None:
        self._check_close_after_release(b"ECDHE-ECDSA-AES128-GCM-SHA256")

    def test_release_when_told(self) -> None:
        """The leg's first SRTP packet releases at once (the linger's timer goes with it);
        close_notify then works from the keys; before the handshake it does nothing."""
        server = self.server()
        server.release()
        self.assertEqual(server.state, "connecting")
        client = RawDtlsClient(self.client_cert)
        run_raw(server, client, self.sent)
        self.assertIsNotNone(server._conn)
        server.release()
        self.assertIsNone(server._conn)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        server.release()  # twice: nothing more
        self.sent.clear()
        server.stop()
        client.feed(self.sent[0])
        self.assertTrue(client.closed_by_peer)

    def test_other_suites_keep_the_connection(self) -> None:
        server, client = self._released(b"ECDHE-ECDSA-AES128-SHA")
        self.assertIsNotNone(server._conn)
        server.stop()
        for data in self.sent:
            client.feed(data)
        self.assertTrue(client.closed_by_peer)

    def test_stop_during_handshake_fails_it(self) -> None:
        server = self.server()
        for data in RawDtlsClient(self.client_cert).start():
            server.feed(data)
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        server.stop()
        self.failed_with("stopped before the handshake completed")
        server.feed(b"\x16\xfe\xfd" + bytes(20))  # dropped, no crash
        unstarted = DtlsSrtpServer(self.sent.append, clock=self.clock)
        unstarted.stop()
        self.assertEqual(unstarted.state, "closed")


class ShapeTests(unittest.TestCase):
    def test_certificate(self) -> None:
        now = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
        cert = DtlsCertificate.generate(now)
        self.assertIsInstance(cert.key, ec.EllipticCurvePrivateKey)
        self.assertEqual(cert.key.curve.name, "secp256r1")
        self.assertEqual(cert.cert.issuer, cert.cert.subject)
        self.assertEqual(cert.expires - now, datetime.timedelta(days=30))
        algo, value = cert.fingerprint
        self.assertEqual(algo, "sha-256")
        self.assertEqual(len(value.split(":")), 32)
        self.assertEqual(value, value.upper())
        self.assertNotIn("PRIVATE", repr(cert))

    def test_one_context_per_certificate(self) -> None:
        cert = DtlsCertificate.generate()
        a = DtlsSrtpServer(lambda d: None, certificate=cert)
        b = DtlsSrtpServer(lambda d: None, certificate=cert)
        self.assertEqual(a.fingerprint, b.fingerprint)
        self.assertIs(server_context(cert, SUPPORTED_PROFILES), server_context(cert, SUPPORTED_PROFILES))
        self.assertEqual(len(cert.contexts), 1)
        self.assertNotEqual(a.fingerprint, DtlsSrtpServer(lambda d: None).fingerprint)

    def test_unknown_profile_refused(self) -> None:
        self.assertRaises(ValueError, DtlsSrtpServer, lambda d: None, srtp_profiles=["SRTP_NULL"])

    def test_is_dtls(self) -> None:
        self.assertTrue(is_dtls(b"\x16\xfe\xfd"))
        self.assertFalse(is_dtls(b"\x80"))
        self.assertFalse(is_dtls(b"\x00"))
        self.assertFalse(is_dtls(b""))

    def test_split_records(self) -> None:
        def record(n: int) -> bytes:
            return b"\x16\xfe\xfd" + bytes(8) + n.to_bytes(2, "big") + bytes(n)

        a, b, c = record(500), record(600), record(1300)
        self.assertEqual(split_records(a + b + c, 1200), [a + b, c])
        self.assertEqual(split_records(c + a, 1200), [c, a])
        self.assertEqual(split_records(b"", 1200), [])

    def test_alert_keys_survive_any_datagram(self) -> None:
        """After the release every datagram from the browser's address reaches
        ``AlertKeys.ends``: forged, torn or short alert records are "not an end", never an
        exception (a record shorter than its tag once raised OverflowError)."""
        rng = random.Random(7)
        for chacha, key_len, iv_len in ((False, 16, 4), (True, 32, 12)):
            keys = AlertKeys(chacha, bytes(key_len), bytes(iv_len), bytes(key_len), bytes(iv_len))
            for n in range(0, 64):
                for _ in range(40):
                    d = bytearray(rng.randbytes(n))
                    if n >= 13:
                        d[0], d[3:5] = 21, b"\x00\x01"
                        if rng.random() < 0.5:
                            d[11:13] = (n - 13).to_bytes(2, "big")
                    self.assertFalse(keys.ends(bytes(d)))
            # a genuine close_notify sealed with the client's keys (here equal to ours) ends it
            self.assertTrue(keys.ends(keys.close_notify()))

    def test_gateway_does_not_import_aiortc(self) -> None:
        """The gateway's modules (service, the API site, legs, calls) leave aiortc and PyAV
        out: their import costs ~26 MiB of RSS."""
        code = ("import sys, wcsgw.service, wcsgw.api.site, wcsgw.webrtc.leg, "
                "wcsgw.webrtc.sharedport, wcsgw.calls.call; "
                "print(sorted(m for m in sys.modules if m.split('.')[0] in ('aiortc', 'av')))")
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                             text=True, timeout=120, env={**os.environ, "PYTHONPATH": ROOT})
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout.strip(), "[]")


class AiortcClientTests(unittest.TestCase):
    async def _check_profile(self, profile: str) -> None:
        pair = Pair(client_profiles=[profile])
        session = await pair.run()
        try:
            self.assertNotIsInstance(session, Exception)
            self.assertEqual(session.profile, profile)
            self.assertEqual(pair.server.state, "connected")
            self.assertEqual(pair.client.state, "connected")
            # Client -> server, RTP and RTCP.
            self.assertEqual(session.unprotect_rtp(pair.client._tx_srtp.protect(RTP)), RTP)
            self.assertEqual(
                session.unprotect_rtcp(pair.client._tx_srtp.protect_rtcp(RTCP_RR)), RTCP_RR
            )
            # Server -> client.
            protected = session.protect_rtp(RTP)
            self.assertNotEqual(protected[12:], RTP[12:])  # really encrypted
            self.assertEqual(pair.client._rx_srtp.unprotect(protected), RTP)
            self.assertEqual(
                pair.client._rx_srtp.unprotect_rtcp(session.protect_rtcp(RTCP_RR)), RTCP_RR
            )
            self.assertTrue(pair.to_client and all(is_dtls(d) for d in pair.to_client))
        finally:
            await pair.stop()

    @inline
    async def test_aes128_cm_sha1_80(self) -> None:
        await self._check_profile(SRTP_AES128_CM_SHA1_80)

    @inline
    async def test_aead_aes_128_gcm(self) -> None:
        await self._check_profile(SRTP_AEAD_AES_128_GCM)

    @inline
    async def test_aead_aes_256_gcm(self) -> None:
        await self._check_profile(SRTP_AEAD_AES_256_GCM)

    @inline
    async def test_server_preference_wins(self) -> None:
        pair = Pair(srtp_profiles=[SRTP_AES128_CM_SHA1_80, SRTP_AEAD_AES_256_GCM])
        session = await pair.run()
        try:
            self.assertEqual(session.profile, SRTP_AES128_CM_SHA1_80)
        finally:
            await pair.stop()

    @inline
    async def test_fingerprint_mismatch_fails(self) -> None:
        pair = Pair()
        algo, _ = pair.client_fingerprint()
        result = await pair.run(server_sees=(algo, ":".join(["00"] * 32)))
        self.assertIsInstance(result, DtlsError)
        self.assertEqual(pair.server.state, "failed")
        await pair.stop()

    @inline
    async def test_no_common_profile_fails(self) -> None:
        pair = Pair(client_profiles=[SRTP_AEAD_AES_256_GCM], srtp_profiles=[SRTP_AES128_CM_SHA1_80])
        result = await pair.run()
        self.assertIsInstance(result, DtlsError)
        await pair.stop()

    @inline
    async def test_remote_close_notify_reported_once(self) -> None:
        await self._check_remote_close(released=False)

    @inline
    async def test_remote_close_notify_after_release(self) -> None:
        await self._check_remote_close(released=True)

    async def _release(self, pair: Pair, released: bool) -> None:
        session = await pair.run()
        self.assertNotIsInstance(session, Exception)
        if released:
            pair.clock.advance(0)
        self.assertEqual(pair.server._conn is None, released)

    async def _check_remote_close(self, released: bool) -> None:
        pair = Pair(linger=0.0 if released else LINGER)
        closed: list[bool] = []
        await self._release(pair, released)
        got: defer.Deferred[None] = defer.Deferred()
        pair.server.on_remote_close = lambda: (closed.append(True), got.callback(None))
        await as_deferred(pair.client.stop())  # sends close_notify
        await got
        self.assertEqual(closed, [True])
        await pair.server.stop()
        self.assertEqual(closed, [True])
        pair.client_channel.close()

    @inline
    async def test_our_close_notify_ends_the_client(self) -> None:
        await self._check_our_close(released=False)

    @inline
    async def test_our_close_notify_after_release_ends_the_client(self) -> None:
        await self._check_our_close(released=True)

    async def _check_our_close(self, released: bool) -> None:
        pair = Pair(linger=0.0 if released else LINGER)
        await self._release(pair, released)
        ended: defer.Deferred[None] = defer.Deferred()

        @pair.client.on("statechange")
        def changed() -> None:
            if pair.client.state == "closed" and not ended.called:
                ended.callback(None)

        await pair.server.stop()
        await ended  # aiortc's pump read our close_notify (trial's timeout bounds this)
        self.assertEqual(pair.client.state, "closed")
        await pair.stop()
