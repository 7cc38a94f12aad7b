"""SIP over TLS against a real Kamailio with its tls module (issue 14 item 1).

Kamailio listens for TLS with a certificate from a test CA made at run time
(tests/peers/testca.py); the gateway trusts that CA only (``[sip] tls_ca``).  The gateway
registers over TLS (Kamailio's binding says so), a REST call over TLS reaches baresip, which is
registered over UDP, and audio is checked by frequency both ways; a server certificate from
another CA, or for another name, fails the REGISTER at once, without a Timer F wait.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import attrs
from twisted.internet import reactor
from twisted.trial import unittest

from tests.e2e import TOKEN, Gateway, RestMixin, dominant_hz, gateway_config, write_tone_wav
from tests.peers.kamailio import Kamailio
from tests.peers.testca import CA, make_ca
from tests.support import EventLog, assert_near, inline
from wcsgw.config import Account, RecordingSettings, RestSettings, SipSettings
from wcsgw.sip.registration import Registered, RegistrationFailed
from wcsgw.sip.service import SipService

#: short RFC 3261 timers: Timer F (64*T1) is 3.2 s, so "at once" is clearly less
FAST = dict(listen="127.0.0.1", port=0, t1=0.05, t2=0.4, t4=0.5)


class KamailioTlsTests(RestMixin, unittest.TestCase):
    timeout = 120

    def make_ca(self) -> tuple[CA, Path]:
        folder = Path(tempfile.mkdtemp(prefix="wcsgw-siptls-"))
        return make_ca(folder / "ca"), folder

    async def start_kamailio(self, names: list[str]) -> tuple[Kamailio, CA]:
        ca, folder = self.make_ca()
        cert, key = ca.issue(names, folder)
        kam = Kamailio(tls=(cert, key))
        self.addCleanup(kam.stop)
        await kam.start()
        return kam, ca

    def register(self, kam: Kamailio, tls_ca: Path, keepalive_interval: int = 0) -> EventLog:
        account = Account(login="1001", password="pass1001", domain="127.0.0.1",
                          port=kam.tls_port, transport="tls", expires=300)
        self.service = SipService(SipSettings(**FAST, tls_ca=str(tls_ca),
                                              keepalive_interval=keepalive_interval),
                                  accounts=[account])
        events = EventLog()
        self.service.registration_listeners.append(events)
        self.service.startService()
        self.addCleanup(self.service.stopService)
        return events

    @inline
    async def test_register_over_verified_tls(self) -> None:
        kam, ca = await self.start_kamailio(["127.0.0.1"])
        events = self.register(kam, ca.cert_path)
        _, event = await events.wait_for(
            lambda e: isinstance(e[1], (Registered, RegistrationFailed)), timeout=10)
        self.assertIsInstance(event, Registered)
        [row] = await kam.bindings("1001")
        self.assertIn("transport=tls", row["contact"])

    @inline
    async def test_keepalive_pings_are_answered_by_kamailio(self) -> None:
        """RFC 5626 §4.4.1 over the TLS flow: Kamailio answers our double CRLF with a CRLF."""
        kam, ca = await self.start_kamailio(["127.0.0.1"])
        events = self.register(kam, ca.cert_path, keepalive_interval=1)
        _, event = await events.wait_for(
            lambda e: isinstance(e[1], (Registered, RegistrationFailed)), timeout=10)
        self.assertIsInstance(event, Registered)
        assert self.service.transport is not None
        [stream] = self.service.transport.streams
        assert stream.keepalive is not None
        pongs = EventLog()
        answered = stream.keepalive.pong

        def pong(now: float) -> None:
            answered(now)
            pongs(now)

        stream.keepalive.pong = pong  # type: ignore[method-assign]
        await pongs.wait_for(lambda now: True, timeout=5)
        self.assertGreaterEqual(stream.keepalive.pings_sent, 1)
        self.assertFalse(stream.keepalive.dead)
        self.assertTrue(stream.connected_ok)

    async def assert_refused(self, kam: Kamailio, tls_ca: Path) -> None:
        events = self.register(kam, tls_ca)
        started = reactor.seconds()
        _, event = await events.wait_for(
            lambda e: isinstance(e[1], (Registered, RegistrationFailed)), timeout=10)
        self.assertIsInstance(event, RegistrationFailed)
        self.assertIsNone(event.status)  # a transport error, not an answer
        self.assertTrue(event.reason)
        self.assertLess(reactor.seconds() - started, 64 * FAST["t1"])  # not Timer F
        self.assertEqual(await kam.bindings("1001"), [])

    @inline
    async def test_certificate_from_another_ca_is_refused(self) -> None:
        kam, _ca = await self.start_kamailio(["127.0.0.1"])
        other, _ = self.make_ca()
        await self.assert_refused(kam, other.cert_path)

    @inline
    async def test_certificate_for_another_name_is_refused(self) -> None:
        kam, ca = await self.start_kamailio(["sip.example.test"])
        await self.assert_refused(kam, ca.cert_path)

    def startup_body(self, **extra: object) -> dict:
        """RestMixin's call/startup body, over TLS to Kamailio's TLS port."""
        return super().startup_body(sipPort=self.kam.tls_port, sipTransport="tls", **extra)

    @inline
    async def test_rest_call_over_tls_to_baresip_carries_audio(self) -> None:
        self.media = os.path.abspath(self.mktemp())
        self.recordings = os.path.abspath(self.mktemp())
        os.makedirs(self.media)
        os.makedirs(self.recordings)
        write_tone_wav(os.path.join(self.media, "tone440.wav"), 440.0, seconds=3.0)
        self.kam, ca = await self.start_kamailio(["127.0.0.1"])
        config = attrs.evolve(
            gateway_config(allowed_domains=("127.0.0.1",), t1=0.1, t2=0.8,
                           tls_ca=str(ca.cert_path)),
            rest=RestSettings(tokens=(TOKEN,), media_folder=self.media),
            recording=RecordingSettings(folder=self.recordings))
        self.gateway = Gateway(config)
        self.gateway.start()
        self.addCleanup(self.gateway.stop)
        phone = await self.start_phone()
        # play_and_record: the phone heard the gateway's 440 Hz file (checked there)
        found = await self.play_and_record(phone, "tls-1")
        # the INVITE reached Kamailio over TLS (its request_route logs the protocol), and the
        # gateway still holds that one TLS connection for the next request
        invites = [line for line in self.kam.log_tail(400).splitlines()
                   if "REQ INVITE" in line and "fu=sip:1001@" in line]
        self.assertTrue(invites)
        self.assertTrue(all("(tls)" in line for line in invites), invites)
        streams = self.gateway.sip.transport.streams
        self.assertEqual([s.transport_name for s in streams], ["TLS"])
        recorded = os.path.join(self.recordings, found[0]["recording"])
        frequency, _level = dominant_hz(recorded)
        assert_near(self, frequency, 1000, 10)  # and the gateway recorded the phone's 1 kHz
