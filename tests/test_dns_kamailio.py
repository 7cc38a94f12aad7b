"""RFC 3263 against real peers: the gateway finds Kamailio through a DNS server the suite
starts (tests/peers/dnsserver.py: NAPTR -> SRV -> A), whose first SRV target is dead (a TCP
port nobody listens on), and fails over to Kamailio, the second target: REGISTER succeeds,
and a REST call to baresip through the located proxy carries audio both ways (checked by
frequency)."""

from __future__ import annotations

import os

import attrs
from twisted.trial import unittest

from tests.e2e import TOKEN, Gateway, RestMixin, dominant_hz, gateway_config, write_tone_wav
from tests.peers.dnsserver import DnsServer
from tests.peers.kamailio import Kamailio
from tests.peers.ports import free_port
from tests.support import EventLog, assert_near, inline
from wcsgw.config import Account, RecordingSettings, RestSettings, SipSettings
from wcsgw.sip.dnslocator import LocatingSipService
from wcsgw.sip.registration import Registered, RegistrationFailed
from wcsgw.sip.target import Target

PROXY = "sip.test"


def zone(kam_port: int, dead_port: int) -> list[tuple]:
    """sip.test: TCP by NAPTR; SRV priority 10 is dead, priority 20 is Kamailio."""
    return [
        (PROXY, "NAPTR", [10, 10, "s", "SIP+D2T", "", f"_sip._tcp.{PROXY}"]),
        (PROXY, "NAPTR", [20, 10, "s", "SIP+D2U", "", f"_sip._udp.{PROXY}"]),
        (f"_sip._tcp.{PROXY}", "SRV", [10, 0, dead_port, f"dead.{PROXY}"]),
        (f"_sip._tcp.{PROXY}", "SRV", [20, 0, kam_port, f"kam.{PROXY}"]),
        (f"dead.{PROXY}", "A", "127.0.0.1"),
        (f"kam.{PROXY}", "A", "127.0.0.1"),
    ]


class DnsLocatedKamailioTests(RestMixin, unittest.TestCase):
    timeout = 120

    async def start_dns(self, kam_port: int) -> DnsServer:
        self.dead_port = free_port("tcp")  # nothing listens: a connect is refused
        dns = DnsServer(zone(kam_port, self.dead_port))
        self.addCleanup(dns.stop)
        await dns.start()
        return dns

    @inline
    async def test_register_fails_over_to_the_second_srv_target(self) -> None:
        kam = Kamailio()
        self.addCleanup(kam.stop)
        await kam.start()
        dns = await self.start_dns(kam.port)
        settings = SipSettings(listen="127.0.0.1", port=0, t1=0.05, t2=0.4, t4=0.5,
                               dns_location=True, dns_servers=(f"127.0.0.1:{dns.port}",))
        account = Account(login="1001", password="pass1001", domain="127.0.0.1",
                          outbound_proxy=PROXY, expires=300)
        service = LocatingSipService(settings, accounts=[account])
        events = EventLog()
        service.registration_listeners.append(events)
        service.startService()
        self.addCleanup(service.stopService)
        _, event = await events.wait_for(
            lambda e: isinstance(e[1], (Registered, RegistrationFailed)))
        self.assertIsInstance(event, Registered)
        rows = await kam.bindings("1001")
        self.assertEqual(len(rows), 1)
        self.assertIn(f"127.0.0.1:{service.port}", rows[0]["contact"])
        assert service.endpoint is not None
        failover = service.endpoint.layer.failover
        self.assertGreaterEqual(failover.retries, 1)  # the dead target was tried first
        located = failover.locations.get(Target("UDP", PROXY, 5060), 0.0) if failover.locations \
            else None
        self.assertIsNotNone(located)
        self.assertEqual([t.port for t in located or []], [self.dead_port, kam.port])
        asked = dns.queries()
        self.assertEqual(asked[0], (PROXY, "NAPTR"))
        self.assertIn((f"_sip._tcp.{PROXY}", "SRV"), asked)
        # trust: the located proxy's address is the proxy name's
        self.assertTrue(service.endpoint.addresses.admits("127.0.0.1", [PROXY]))

    def startup_body(self, **extra: object) -> dict:
        """RestMixin's call/startup body, with the proxy named by DNS (default port: NAPTR)."""
        return super().startup_body(sipOutboundProxy=PROXY, sipPort=5060, **extra)

    @inline
    async def test_rest_call_through_the_located_proxy_carries_audio(self) -> None:
        self.media = os.path.abspath(self.mktemp())
        self.recordings = os.path.abspath(self.mktemp())
        os.makedirs(self.media)
        os.makedirs(self.recordings)
        write_tone_wav(os.path.join(self.media, "tone440.wav"), 440.0, seconds=3.0)
        # Kamailio first (its port goes into the zone), then the gateway pointed at the zone.
        self.kam = Kamailio()
        self.addCleanup(self.kam.stop)
        await self.kam.start()
        dns = await self.start_dns(self.kam.port)
        config = attrs.evolve(
            gateway_config(allowed_domains=("127.0.0.1", PROXY), t1=0.1, t2=0.8,
                           dns_location=True, dns_servers=(f"127.0.0.1:{dns.port}",)),
            rest=RestSettings(tokens=(TOKEN,), media_folder=self.media),
            recording=RecordingSettings(folder=self.recordings))
        self.gateway = Gateway(config)
        self.gateway.start()
        self.addCleanup(self.gateway.stop)
        self.assertIsInstance(self.gateway.sip, LocatingSipService)
        phone = await self.start_phone()
        # play_and_record: the phone heard the gateway's 440 Hz file (checked there)
        found = await self.play_and_record(phone, "dns-1")
        self.assertGreaterEqual(self.gateway.sip.endpoint.layer.failover.retries, 1)
        recorded = os.path.join(self.recordings, found[0]["recording"])
        frequency, _level = dominant_hz(recorded)
        assert_near(self, frequency, 1000, 10)  # and the gateway recorded the phone's 1 kHz
