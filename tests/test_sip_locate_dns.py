"""RFC 3263 location through a real DNS server (tests/peers/dnsserver.py, twisted.names in a
process of its own) with the gateway's twisted.names adapter (wcsgw.sip.dnslocator)."""

from __future__ import annotations

import random

from twisted.internet import defer, reactor
from twisted.trial.unittest import TestCase

from tests.peers.dnsserver import DnsServer
from wcsgw.sip.dnslocator import DnsLocator, make_resolver, parse_server
from wcsgw.sip.endpoint import EndpointConfig, SipEndpoint
from wcsgw.sip.target import Target

ZONE = [
    ("example.test", "NAPTR", [20, 10, "s", "SIP+D2U", "", "_sip._udp.example.test"]),
    ("example.test", "NAPTR", [10, 10, "s", "SIP+D2T", "", "_sip._tcp.example.test"], 120),
    ("_sip._tcp.example.test", "SRV", [10, 0, 5071, "dead.example.test"]),
    ("_sip._tcp.example.test", "SRV", [20, 0, 5072, "live.example.test"]),
    ("dead.example.test", "A", "127.0.0.2"),
    ("live.example.test", "A", "127.0.0.3"),
    ("live.example.test", "AAAA", "::1"),
]


class ParseServerTests(TestCase):
    def test_forms(self) -> None:
        self.assertEqual(parse_server("192.0.2.1"), ("192.0.2.1", 53))
        self.assertEqual(parse_server("127.0.0.1:5353"), ("127.0.0.1", 5353))
        self.assertEqual(parse_server("[::1]:54"), ("::1", 54))
        self.assertEqual(parse_server("::1"), ("::1", 53))


class DnsLocatorTests(TestCase):
    @defer.inlineCallbacks
    def setUp(self) -> defer.Generator[defer.Deferred[object], object, None]:
        self.dns = DnsServer(ZONE)
        self.addCleanup(self.dns.stop)
        yield self.dns.start()
        self.endpoint = SipEndpoint(EndpointConfig())
        resolver = make_resolver([f"127.0.0.1:{self.dns.port}"], reactor)
        self.locator = DnsLocator(self.endpoint, resolver, reactor, rng=random.Random(3))

    @defer.inlineCallbacks
    def test_naptr_srv_a_in_order_and_trusted(self) -> defer.Generator[object, object, None]:
        targets = yield self.locator.locate(Target("UDP", "example.test", 5060))
        self.assertEqual(targets, [Target("TCP", "127.0.0.2", 5071),
                                   Target("TCP", "127.0.0.3", 5072), Target("TCP", "::1", 5072)])
        # the trust checks: both SRV targets' addresses are the domain's now
        for address in ("127.0.0.2", "127.0.0.3", "::1"):
            self.assertTrue(self.endpoint.addresses.admits(address, ["example.test"]))
        self.assertFalse(self.endpoint.addresses.admits("127.0.0.9", ["example.test"]))
        asked = self.dns.queries()
        self.assertEqual(asked[0], ("example.test", "NAPTR"))
        self.assertIn(("_sip._tcp.example.test", "SRV"), asked)
        self.assertNotIn(("_sip._udp.example.test", "SRV"), asked)  # NAPTR order said TCP

    @defer.inlineCallbacks
    def test_answers_are_cached_until_their_ttl(self) -> defer.Generator[object, object, None]:
        yield self.locator.locate(Target("UDP", "example.test", 5060))
        before = len(self.dns.queries())
        again = yield self.locator.locate(Target("UDP", "example.test", 5060))
        self.assertEqual(len(self.dns.queries()), before)  # all from the cache
        self.assertEqual(again[0], Target("TCP", "127.0.0.2", 5071))

    @defer.inlineCallbacks
    def test_unknown_name_locates_nothing(self) -> defer.Generator[object, object, None]:
        targets = yield self.locator.locate(Target("UDP", "nowhere.test", 5060))
        self.assertEqual(targets, [])
