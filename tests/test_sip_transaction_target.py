"""Targets, response routing (§18.2.2, RFC 3581), the timer queue and the clock driver."""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from wcsgw.sip.driver import ClockDriver
from wcsgw.sip.headers import Via
from wcsgw.sip.target import Target, default_port, response_target
from wcsgw.sip.timers import TimerConfig, TimerQueue
from wcsgw.sip.transaction import TransactionLayer


class TargetTests(SynchronousTestCase):
    def test_connection_is_not_part_of_identity(self) -> None:
        a = Target("TCP", "192.0.2.1", 5060, connection=object())
        b = Target("TCP", "192.0.2.1", 5060)
        self.assertEqual(a, b)
        self.assertEqual(hash(a), hash(b))
        self.assertEqual({a: 1}[b], 1)

    def test_reliable(self) -> None:
        self.assertFalse(Target("UDP", "h", 1).reliable)
        self.assertTrue(Target("TCP", "h", 1).reliable)
        self.assertTrue(Target("TLS", "h", 1).reliable)

    def test_default_ports(self) -> None:
        self.assertEqual(default_port("udp"), 5060)
        self.assertEqual(default_port("TLS"), 5061)


class ResponseTargetTests(SynchronousTestCase):
    def test_sent_by(self) -> None:
        via = Via("UDP", "pc.example.com", None, {"branch": "z9hG4bK1"})
        self.assertEqual(response_target(via), Target("UDP", "pc.example.com", 5060))

    def test_received_with_sent_by_port(self) -> None:
        via = Via("UDP", "pc.example.com", 5070, {"branch": "z9hG4bK1", "received": "192.0.2.3"})
        self.assertEqual(response_target(via), Target("UDP", "192.0.2.3", 5070))

    def test_rport_value_wins_over_sent_by_port(self) -> None:
        via = Via("UDP", "10.0.0.1", 5060, {"rport": "4242", "received": "192.0.2.3"})
        self.assertEqual(response_target(via), Target("UDP", "192.0.2.3", 4242))

    def test_rport_flag_without_value_is_ignored(self) -> None:
        via = Via("UDP", "10.0.0.1", 5062, {"rport": None})
        self.assertEqual(response_target(via), Target("UDP", "10.0.0.1", 5062))

    def test_maddr(self) -> None:
        via = Via("UDP", "10.0.0.1", 5062, {"maddr": "239.255.255.1", "received": "192.0.2.3"})
        self.assertEqual(response_target(via), Target("UDP", "239.255.255.1", 5062))

    def test_ipv6_brackets_dropped_and_tls_port(self) -> None:
        via = Via("TLS", "[2001:db8::5]", None, {})
        target = response_target(via, connection="conn")
        self.assertEqual(target, Target("TLS", "2001:db8::5", 5061))
        self.assertEqual(target.connection, "conn")


class TimerQueueTests(SynchronousTestCase):
    def test_order_rearm_and_cancel(self) -> None:
        q: TimerQueue[str] = TimerQueue()
        q.arm("t1", "A", 2.0)
        q.arm("t2", "E", 1.0)
        q.arm("t1", "B", 3.0)
        q.arm("t2", "E", 4.0)  # re-armed: the 1.0 entry is stale
        q.cancel("t1", "B")
        self.assertEqual(len(q), 2)
        self.assertEqual(q.next_deadline(), 2.0)
        self.assertIsNone(q.pop_due(1.9))
        self.assertEqual(q.pop_due(2.0), ("t1", "A"))
        self.assertIsNone(q.pop_due(3.5))
        self.assertEqual(q.deadline("t2", "E"), 4.0)
        q.cancel_all("t2")
        self.assertIsNone(q.next_deadline())
        self.assertEqual(len(q), 0)

    def test_stale_entries_do_not_pile_up(self) -> None:
        q: TimerQueue[int] = TimerQueue()
        for i in range(10_000):
            q.arm(1, "E", float(i))
        self.assertLess(len(q._heap), 100)
        self.assertEqual(q.armed(1), {"E": 9999.0})

    def test_config_derived_timeout(self) -> None:
        self.assertEqual(TimerConfig().timeout, 32.0)
        self.assertEqual(TimerConfig(t1=0.05).timeout, 3.2)


class ClockDriverTests(SynchronousTestCase):
    def test_idle_layer_arms_nothing(self) -> None:
        clock = Clock()
        driver = ClockDriver(TransactionLayer(), clock, lambda data, target: None)
        driver.pump()
        self.assertEqual(clock.getDelayedCalls(), [])
