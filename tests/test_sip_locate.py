"""RFC 3263 server location (wcsgw.sip.locate) and the transaction layer's failover to the
next located target (wcsgw.sip.transaction.failover), sans-IO on a task.Clock."""

from __future__ import annotations

import random
from collections import Counter

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from tests.test_sip_transaction import make_request
from wcsgw.sip.locate import (
    Address,
    Location,
    Locations,
    Naptr,
    Question,
    RecordCache,
    Srv,
    location_for,
    naptr_choices,
    order_srv,
)
from wcsgw.sip.message import Response
from wcsgw.sip.parser import parse_message
from wcsgw.sip.target import Target
from wcsgw.sip.transaction import (
    ClientTransaction,
    ResponseReceived,
    TransactionLayer,
    TransactionTerminated,
    TransactionTimeout,
    TransportFailed,
)


def run(location: Location, zone: dict[Question, list]) -> list[Question]:
    """Answer every question from ``zone`` (missing: no records); the questions asked."""
    asked: list[Question] = []
    while not location.done:
        questions = location.questions()
        if not questions:
            break
        asked += questions
        for q in questions:
            location.answer(q, zone.get(q, []))
    return asked


ZONE = {
    Question("example.test", "NAPTR"): [
        Naptr(20, 10, "s", "SIP+D2U", "_sip._udp.example.test", 300),
        Naptr(10, 10, "s", "SIP+D2T", "_sip._tcp.example.test", 300),
        Naptr(5, 10, "s", "SIPS+D2T", "_sips._tcp.example.test", 300),  # TLS: not supported
    ],
    Question("_sip._tcp.example.test", "SRV"): [
        Srv(20, 0, 5070, "backup.example.test", 60),
        Srv(10, 0, 5080, "dead.example.test", 120),
    ],
    Question("dead.example.test", "A"): [Address("192.0.2.1", 90)],
    Question("backup.example.test", "A"): [Address("192.0.2.2", 90)],
    Question("backup.example.test", "AAAA"): [Address("2001:db8::2", 90)],
    Question("plain.test", "A"): [Address("192.0.2.9", 40)],
}


class OrderingTests(SynchronousTestCase):
    def test_naptr_order_then_preference_supported_only(self) -> None:
        records = [Naptr(10, 20, "s", "SIP+D2U", "u.", 1), Naptr(10, 10, "S", "SIP+D2T", "t.", 1),
                   Naptr(1, 1, "s", "SIPS+D2T", "s.", 1), Naptr(1, 1, "a", "SIP+D2U", "x.", 1),
                   Naptr(1, 1, "s", "E2U+sip", "e.", 1)]
        self.assertEqual(naptr_choices(records, ("UDP", "TCP")), [("TCP", "t"), ("UDP", "u")])
        self.assertEqual(naptr_choices(records, ("UDP", "TCP", "TLS"))[0], ("TLS", "s"))

    def test_srv_priority_first(self) -> None:
        records = [Srv(20, 100, 1, "c"), Srv(10, 0, 2, "a"), Srv(30, 5, 3, "d"), Srv(10, 0, 4, "b")]
        ordered = order_srv(records, random.Random(1))
        self.assertEqual([r.priority for r in ordered], [10, 10, 20, 30])
        self.assertEqual({r.target for r in ordered[:2]}, {"a", "b"})

    def test_srv_weights_seeded(self) -> None:
        """RFC 2782: weight 3 against 1 goes first three times in four; a zero weight
        gets 1 in (sum + 1); the same seed gives the same order."""
        records = [Srv(10, 1, 1, "light"), Srv(10, 3, 2, "heavy")]
        rng = random.Random(42)
        firsts = Counter(order_srv(records, rng)[0].target for _ in range(4000))
        self.assertLess(abs(firsts["heavy"] / 4000 - 0.75), 0.03)
        self.assertLess(abs(firsts["light"] / 4000 - 0.25), 0.03)
        zeros = Counter(order_srv(records + [Srv(10, 0, 3, "zero")], rng)[0].target
                        for _ in range(4000))
        self.assertLess(abs(zeros["zero"] / 4000 - 0.2), 0.03)
        self.assertEqual(len(order_srv(records + [Srv(10, 0, 3, "zero")], rng)), 3)
        self.assertEqual(order_srv(records, random.Random(7)), order_srv(records, random.Random(7)))

    def test_srv_dot_means_no_service(self) -> None:
        self.assertEqual(order_srv([Srv(0, 0, 0, ".")], random.Random(1)), [])


class LocationTests(SynchronousTestCase):
    def test_naptr_srv_a_aaaa(self) -> None:
        location = Location("Example.Test.", None, None, rng=random.Random(1))
        asked = run(location, ZONE)
        self.assertEqual(asked[0], Question("example.test", "NAPTR"))
        self.assertIn(Question("_sip._tcp.example.test", "SRV"), asked)
        self.assertEqual(location.targets, [Target("TCP", "192.0.2.1", 5080),
                                            Target("TCP", "192.0.2.2", 5070),
                                            Target("TCP", "2001:db8::2", 5070)])
        self.assertEqual(location.ttl, 60)  # the shortest TTL of the records used

    def test_numeric_host_asks_nothing(self) -> None:
        location = Location("192.0.2.5", None, "TCP")
        self.assertTrue(location.done)
        self.assertEqual(location.questions(), [])
        self.assertEqual(location.targets, [Target("TCP", "192.0.2.5", 5060)])

    def test_explicit_port_skips_naptr_and_srv(self) -> None:
        location = Location("plain.test", 5099, None)
        asked = run(location, ZONE)
        self.assertEqual({q.rtype for q in asked}, {"A", "AAAA"})
        self.assertEqual(location.targets, [Target("UDP", "192.0.2.9", 5099)])

    def test_transport_given_skips_naptr(self) -> None:
        asked = run(Location("example.test", None, "TCP", rng=random.Random(1)), ZONE)
        self.assertEqual(asked[0], Question("_sip._tcp.example.test", "SRV"))

    def test_no_naptr_no_srv_falls_back_to_a_at_default_port(self) -> None:
        location = Location("plain.test", None, None)
        asked = run(location, ZONE)
        self.assertEqual(asked[:2], [Question("plain.test", "NAPTR"),
                                     Question("_sip._udp.plain.test", "SRV")])
        self.assertEqual(location.targets, [Target("UDP", "192.0.2.9", 5060)])

    def test_unknown_name_locates_nothing(self) -> None:
        location = Location("nowhere.test", None, None)
        run(location, ZONE)
        self.assertTrue(location.done)
        self.assertEqual(location.targets, [])

    def test_core_targets_default_port_reads_as_unspecified(self) -> None:
        self.assertEqual(location_for(Target("UDP", "example.test", 5060)).questions(),
                         [Question("example.test", "NAPTR")])
        self.assertEqual(location_for(Target("TCP", "example.test", 5060)).questions(),
                         [Question("_sip._tcp.example.test", "SRV")])
        self.assertEqual({q.rtype for q in location_for(
            Target("UDP", "example.test", 5070)).questions()}, {"A", "AAAA"})


class CacheTests(SynchronousTestCase):
    def test_records_expire_by_ttl(self) -> None:
        clock = Clock()
        cache = RecordCache()
        q = Question("a.test", "A")
        cache.put(q, [Address("192.0.2.1", 30), Address("192.0.2.2", 10)], clock.seconds())
        clock.advance(9.9)
        self.assertEqual(len(cache.get(q, clock.seconds()) or []), 2)
        clock.advance(0.1)
        self.assertIsNone(cache.get(q, clock.seconds()))

    def test_empty_answer_is_kept_briefly(self) -> None:
        clock = Clock()
        cache = RecordCache()
        q = Question("none.test", "NAPTR")
        cache.put(q, [], clock.seconds())
        self.assertEqual(cache.get(q, clock.seconds()), [])
        clock.advance(30)
        self.assertIsNone(cache.get(q, clock.seconds()))

    def test_locations_expire_and_are_wanted_again(self) -> None:
        clock = Clock()
        wakes: list[None] = []
        locations = Locations(wanted=lambda: wakes.append(None))
        named = Target("UDP", "Example.test", 5060)
        self.assertIsNone(locations.get(named, clock.seconds()))
        self.assertIsNone(locations.get(named, clock.seconds()))  # wanted once
        self.assertEqual(len(wakes), 1)
        self.assertEqual(locations.take_wanted(), [Target("UDP", "example.test", 5060)])
        locations.learn(named, [Target("TCP", "192.0.2.1", 5080)], 60, clock.seconds())
        clock.advance(59)
        self.assertEqual(locations.get(named, clock.seconds()), [Target("TCP", "192.0.2.1", 5080)])
        clock.advance(1)
        self.assertIsNone(locations.get(named, clock.seconds()))
        self.assertEqual(len(wakes), 2)


NAMED = Target("UDP", "example.test", 5060)
FIRST = Target("UDP", "192.0.2.1", 5080)
SECOND = Target("TCP", "192.0.2.2", 5070)
THIRD = Target("UDP", "192.0.2.3", 5090)


class FailoverTests(SynchronousTestCase):
    """A fake transport: the layer's outputs and transport_error calls, on a task.Clock."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.locations = Locations()
        self.layer = TransactionLayer(locations=self.locations)

    def advance_to(self, when: float) -> None:
        while (deadline := self.layer.next_deadline()) is not None and deadline <= when:
            self.clock.advance(deadline - self.clock.seconds())
            self.layer.handle_timer(self.clock.seconds())
        self.clock.advance(when - self.clock.seconds())

    def sent(self) -> list[tuple[str, str, Target]]:
        out = []
        for data, target in self.layer.take_outgoing():
            msg = parse_message(data)
            out.append((msg.top_via.transport, msg.top_via.branch or "", target))
        return out

    def start(self, method: str = "REGISTER",
              targets: list[Target] | None = None) -> ClientTransaction:
        txn = self.layer.send_request(make_request(method), NAMED, self.clock.seconds())
        assert txn is not None
        self.assertEqual(self.layer.take_outgoing(), [])  # waits for its location
        self.assertEqual(self.locations.take_wanted(), [NAMED])
        self.locations.learn(NAMED, targets if targets is not None else [FIRST, SECOND, THIRD], 300, self.clock.seconds())
        self.layer.located(self.clock.seconds())
        return txn

    def test_timeout_then_transport_error_then_answer(self) -> None:
        txn = self.start()
        first = self.sent()
        self.assertEqual([t for _, _, t in first], [FIRST])
        self.advance_to(32.0)  # Timer F at 64*T1: on to the second target, a new branch
        resent = self.sent()
        self.assertEqual([t for _, _, t in resent][:-1], [FIRST] * (len(resent) - 1))
        via_transport, branch, target = resent[-1]
        self.assertEqual((via_transport, target), ("TCP", SECOND))
        self.assertNotEqual(branch, first[0][1])
        self.assertEqual(txn.target, SECOND)
        self.assertEqual(self.layer.failover.retries, 1)
        self.layer.transport_error(SECOND, self.clock.seconds())  # refused: on to the third
        self.assertEqual([(v, t) for v, _, t in self.sent()], [("UDP", THIRD)])
        events = self.layer.take_events()
        self.assertFalse([e for e in events if isinstance(e, (TransactionTimeout, TransportFailed))])
        ok = Response(200, "OK", txn.request.headers.copy())
        self.layer.receive(ok, THIRD, self.clock.seconds())
        events = self.layer.take_events()
        self.assertEqual([type(e) for e in events], [ResponseReceived])
        self.assertIs(events[0].transaction, txn)

    def test_last_target_failing_reaches_the_tu(self) -> None:
        txn = self.start(targets=[FIRST, SECOND])
        self.layer.transport_error(FIRST, self.clock.seconds())
        self.layer.transport_error(SECOND, self.clock.seconds())
        events = self.layer.take_events()
        self.assertEqual([type(e) for e in events], [TransportFailed, TransactionTerminated])
        self.assertIs(events[0].transaction, txn)

    def test_no_failover_after_a_response(self) -> None:
        txn = self.start("INVITE", targets=[FIRST, SECOND])
        self.sent()
        trying = Response(100, "Trying", txn.request.headers.copy())
        self.layer.receive(trying, FIRST, self.clock.seconds())
        self.layer.transport_error(FIRST, self.clock.seconds())
        self.assertEqual(self.sent(), [])
        self.assertIn(TransportFailed, [type(e) for e in self.layer.take_events()])

    def test_cancel_goes_where_the_invite_went(self) -> None:
        invite = self.start("INVITE", targets=[FIRST, SECOND])
        self.layer.transport_error(FIRST, self.clock.seconds())
        self.sent()
        cancel = make_request("CANCEL", branch=invite.request.top_via.branch)
        self.layer.send_request(cancel, NAMED, self.clock.seconds())
        self.assertEqual([t for _, _, t in self.sent()], [SECOND])

    def test_nothing_located_sends_by_name(self) -> None:
        self.start(targets=[])
        self.assertEqual([t for _, _, t in self.sent()], [NAMED])

    def test_abandoned_while_waiting_is_never_sent(self) -> None:
        txn = self.layer.send_request(make_request("INVITE"), NAMED, 0.0)
        assert txn is not None
        self.layer.abandon(txn)
        self.locations.learn(NAMED, [FIRST], 300, 0.0)
        self.layer.located(0.0)
        self.assertEqual(self.layer.take_outgoing(), [])
        self.assertEqual(len(self.layer), 0)

    def test_tls_targets_keep_the_name_they_were_located_from(self) -> None:
        """A TLS target is located like any other, and carries the name it came from: the
        transport checks the server's certificate against that name (RFC 5922 §4), not
        against the address DNS gave."""
        named = Target("TLS", "example.test", 5061)
        self.layer.send_request(make_request("REGISTER"), named, 0.0)
        self.assertEqual(self.locations.take_wanted(), [named])
        self.locations.learn(named, [Target("TLS", "192.0.2.1", 5061)], 300, 0.0)
        self.layer.located(0.0)
        [(_, sent)] = self.layer.take_outgoing()
        self.assertEqual((sent.transport, sent.host, sent.name), ("TLS", "192.0.2.1", "example.test"))

    def test_without_locations_names_go_out_as_named(self) -> None:
        layer = TransactionLayer()
        layer.send_request(make_request("REGISTER"), NAMED, 0.0)
        self.assertEqual([t for _, t in layer.take_outgoing()], [NAMED])


class ConfigTests(SynchronousTestCase):
    """``[sip] dns_location`` / ``dns_servers``: off and the system's servers by default; a
    bad server refused in one line naming the key; the service built accordingly."""

    def test_defaults_off(self) -> None:
        from wcsgw.config import parse_config
        from wcsgw.service import _sip_class
        from wcsgw.sip.service import SipService

        config = parse_config({})
        self.assertFalse(config.sip.dns_location)
        self.assertEqual(config.sip.dns_servers, ())
        self.assertIs(_sip_class(config, SipService), SipService)

    def test_on_with_servers(self) -> None:
        from wcsgw.config import parse_config
        from wcsgw.service import _sip_class
        from wcsgw.sip.dnslocator import LocatingSipService
        from wcsgw.sip.service import SipService

        config = parse_config({"sip": {"dns_location": True,
                                       "dns_servers": ["127.0.0.1:5353", "[::1]:53"]}})
        self.assertEqual(config.sip.dns_servers, ("127.0.0.1:5353", "[::1]:53"))
        self.assertIs(_sip_class(config, SipService), LocatingSipService)

    def test_bad_server_names_the_key(self) -> None:
        from wcsgw.config import ConfigError, parse_config

        with self.assertRaises(ConfigError) as caught:
            parse_config({"sip": {"dns_servers": ["ns.example.com"]}})
        message = str(caught.exception)
        self.assertIn("sip.dns_servers[0]", message)
        self.assertNotIn("\n", message)


class AdapterFailureTests(SynchronousTestCase):
    def test_a_location_that_breaks_sends_by_name(self) -> None:
        """A bug while locating must not leave requests waiting forever: they go by name."""
        from twisted.internet import defer

        from wcsgw.sip.dnslocator import DnsLocator
        from wcsgw.sip.endpoint import EndpointConfig, SipEndpoint

        clock = Clock()
        endpoint = SipEndpoint(EndpointConfig())
        locator = DnsLocator(endpoint, resolver=None, clock=clock)
        locator.locate = lambda named: defer.fail(RuntimeError("broken"))  # type: ignore[method-assign]
        endpoint.layer.send_request(make_request("REGISTER"), NAMED, clock.seconds())
        self.assertEqual(endpoint.layer.take_outgoing(), [])
        clock.advance(0)
        self.assertEqual([t for _, t in endpoint.layer.take_outgoing()], [NAMED])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
