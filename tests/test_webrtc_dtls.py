"""The seam between the leg and aiortc's RTCDtlsTransport (wcsgw.webrtc.dtls).

``DtlsSrtpServer`` leans on aiortc private names (``_set_role``, ``_srtp_profiles``,
``_rx_srtp``, ``_tx_srtp``, ``_ssl``).  These tests run it against an aiortc DTLS client over
in-memory datagrams, per SRTP profile, so an aiortc upgrade that moves those names fails here
rather than in a call.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Sequence

from aiortc.rtcdtlstransport import (
    RTCCertificate,
    RTCDtlsFingerprint,
    RTCDtlsParameters,
    RTCDtlsTransport,
)
from twisted.internet import defer
from twisted.trial import unittest

from tests.support import inline
from wcsgw.loop import as_deferred
from wcsgw.webrtc.dtls import DatagramChannel, DtlsError, DtlsSrtpServer, is_dtls
from wcsgw.webrtc.srtp import (
    SRTP_AEAD_AES_128_GCM,
    SRTP_AEAD_AES_256_GCM,
    SRTP_AES128_CM_SHA1_80,
    SUPPORTED_PROFILES,
)

RTP = struct.pack("!BBHII", 0x80, 0, 1, 160, 0x11223344) + bytes(160)
RTCP_RR = struct.pack("!BBHI", 0x80, 201, 1, 0x11223344)


class Pair:
    """Our server and an aiortc client wired back to back, datagrams delivered on the loop."""

    def __init__(self, client_profiles: Sequence[str] | None = None, **server_kwargs) -> None:
        loop = asyncio.get_event_loop()
        self.to_server: list[bytes] = []
        self.to_client: list[bytes] = []

        def to_server(data: bytes) -> None:
            self.to_server.append(data)
            loop.call_soon(self.server.feed, data)

        def to_client(data: bytes) -> None:
            self.to_client.append(data)
            loop.call_soon(self.client_channel.feed, data)

        self.server = DtlsSrtpServer(to_client, **server_kwargs)
        self.client_channel = DatagramChannel(to_server)
        self.client_cert = RTCCertificate.generateCertificate()
        self.client = RTCDtlsTransport(self.client_channel, [self.client_cert])  # type: ignore
        self.client._set_role("client")
        if client_profiles is not None:
            self.client._srtp_profiles = [
                p for p in self.client._srtp_profiles
                if p.openssl_profile.decode() in client_profiles
            ]

    def client_fingerprint(self) -> tuple[str, str]:
        f = self.client.getLocalParameters().fingerprints[0]
        return (f.algorithm, f.value)

    async def run(self, server_sees: tuple[str, str] | None = None):
        """Both handshakes; returns (server result or exception, client state)."""
        algo, value = self.server.fingerprint
        client_start = as_deferred(
            self.client.start(
                RTCDtlsParameters(fingerprints=[RTCDtlsFingerprint(algo, value)], role="server")
            )
        )
        try:
            result = await as_deferred(self.server.handshake(server_sees or self.client_fingerprint()))
        except DtlsError as exc:
            result = exc
        if isinstance(result, Exception):
            self.client_channel.close()  # the client waits for a server that gave up
        await client_start
        return result

    async def stop(self) -> None:
        await as_deferred(self.client.stop())
        self.client_channel.close()
        await as_deferred(self.server.stop())


class SeamTests(unittest.TestCase):
    def test_private_names_still_there(self) -> None:
        """The exact aiortc attributes the server touches."""
        t = RTCDtlsTransport(DatagramChannel(lambda d: None), [RTCCertificate.generateCertificate()])  # type: ignore
        for name in ("_set_role", "_srtp_profiles", "_rx_srtp", "_tx_srtp", "_ssl", "_role"):
            self.assertTrue(hasattr(t, name), name)
        t._set_role("server")
        self.assertEqual(t._role, "server")
        offered = {p.openssl_profile.decode() for p in t._srtp_profiles}
        self.assertTrue(set(SUPPORTED_PROFILES) <= offered, offered)

    def test_fingerprint_shape(self) -> None:
        s = DtlsSrtpServer(lambda d: None)
        algo, value = s.fingerprint
        self.assertEqual(algo, "sha-256")
        self.assertEqual(len(value.split(":")), 32)
        self.assertEqual(value, value.upper())

    def test_shared_certificate(self) -> None:
        cert = RTCCertificate.generateCertificate()
        a = DtlsSrtpServer(lambda d: None, certificate=cert)
        b = DtlsSrtpServer(lambda d: None, certificate=cert)
        self.assertEqual(a.fingerprint, b.fingerprint)
        self.assertNotEqual(a.fingerprint, DtlsSrtpServer(lambda d: None).fingerprint)

    def test_unknown_profile_refused(self) -> None:
        self.assertRaises(ValueError, DtlsSrtpServer, lambda d: None, srtp_profiles=["SRTP_NULL"])

    def test_is_dtls(self) -> None:
        self.assertTrue(is_dtls(b"\x16\xfe\xfd"))
        self.assertFalse(is_dtls(b"\x80"))
        self.assertFalse(is_dtls(b"\x00"))
        self.assertFalse(is_dtls(b""))


class HandshakeTests(unittest.TestCase):
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
            # Every datagram the server sent was DTLS (the server speaks only DTLS here).
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
        algo, value = pair.client_fingerprint()
        wrong = ":".join(["00"] * 32)
        result = await pair.run(server_sees=(algo, wrong))
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
        pair = Pair()
        closed: list[bool] = []
        pair.server.on_remote_close = lambda: closed.append(True)
        session = await pair.run()
        self.assertNotIsInstance(session, Exception)
        got = defer.Deferred()
        pair.server.on_remote_close = lambda: (closed.append(True), got.callback(None))
        await as_deferred(pair.client.stop())  # sends close_notify
        await got
        self.assertEqual(closed, [True])
        await as_deferred(pair.server.stop())
        self.assertEqual(closed, [True])
        pair.client_channel.close()

    @inline
    async def test_stop_during_handshake_ends_it(self) -> None:
        server = DtlsSrtpServer(lambda d: None)
        handshake = as_deferred(server.handshake(("sha-256", ":".join(["AB"] * 32))))
        await as_deferred(server.stop())
        with self.assertRaises(DtlsError):
            await handshake
        self.assertTrue(server.channel.closed)
        # stop() is idempotent.
        await as_deferred(server.stop())
