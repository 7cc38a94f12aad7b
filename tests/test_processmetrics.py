"""``wcsgw_reactor_delayed_calls``: the timer count a soak run watches for leaks.

The count must follow the reactor's pending timers both ways — up when a timer is armed, back
down when it fires or is cancelled — or a leak would read as flat (and a healthy gateway as a
leak).  A ``task.Clock`` stands in for the reactor; the real one is counted at scrape time.
"""

from __future__ import annotations

from twisted.internet import task
from twisted.trial import unittest

from tests.test_api_metrics import parse_exposition, value
from wcsgw.api.metrics import collect, render
from wcsgw.api.processmetrics import process_families


def timers(reactor: object) -> float:
    families = {f.name: f for f in process_families(reactor)}
    parsed = parse_exposition(render(families.values()).decode())
    return value(parsed, "wcsgw_reactor_delayed_calls")


class DelayedCallsTests(unittest.TestCase):
    def test_follows_timers_armed_fired_and_cancelled(self) -> None:
        clock = task.Clock()
        self.assertEqual(timers(clock), 0)
        fired = []
        clock.callLater(1, fired.append, 1)
        cancelled = clock.callLater(5, fired.append, 5)
        self.assertEqual(timers(clock), 2)
        clock.advance(1)
        self.assertEqual(fired, [1])
        self.assertEqual(timers(clock), 1)
        cancelled.cancel()
        self.assertEqual(timers(clock), 0)

    def test_no_series_for_a_reactor_without_timers(self) -> None:
        names = [f.name for f in process_families(object())]
        self.assertNotIn("wcsgw_reactor_delayed_calls", names)
        self.assertIn("wcsgw_process_start_time_seconds", names)

    def test_scrape_counts_the_running_reactors_timers(self) -> None:
        from twisted.internet import reactor

        armed = reactor.callLater(60, lambda: None)
        self.addCleanup(armed.cancel)
        parsed = parse_exposition(render(collect(None)).decode())
        self.assertEqual(value(parsed, "wcsgw_reactor_delayed_calls"),
                         len(reactor.getDelayedCalls()))
        self.assertGreaterEqual(value(parsed, "wcsgw_reactor_delayed_calls"), 1)
