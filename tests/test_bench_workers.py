"""The arithmetic of the one-worker/two-worker bench (bench/workers.py): the figure in
docs/performance.md and docs/scaling.md rests on it, and a bench run cannot tell a wrong ratio
from a real one.  The load runs themselves are ``make bench``'s, not the suite's."""

from __future__ import annotations

from twisted.trial import unittest

from bench.workers import calls_at_budget, median_range, summarise, window, worker_media_ranges


def point(load: float, *per_worker: tuple[int, float]) -> dict[str, object]:
    """A load point as ``run_point`` returns it: (calls up, gateway CPU %) per worker."""
    return {"load_avg_1m": load, "workers": [
        {"calls": 100, "up": up, "gw_cpu_pct": cpu, "cpu_per_call_pct": cpu / up if up else None,
         "loss_pct": 0.0, "rtt_p50_ms": 1.0} for up, cpu in per_worker]}


class PortLayoutTests(unittest.TestCase):
    def test_ranges_are_disjoint_and_inside_the_span(self) -> None:
        ranges = worker_media_ranges(2, 30000, 10000)
        self.assertEqual(ranges, [(30000, 34999), (35000, 39999)])
        three = worker_media_ranges(3, 40000, 10000)
        for (_, hi), (lo, _) in zip(three, three[1:], strict=False):
            self.assertLess(hi, lo)
        self.assertLessEqual(three[-1][1], 49999)

    def test_too_many_workers_for_the_span_is_refused(self) -> None:
        self.assertRaises(ValueError, worker_media_ranges, 0)
        self.assertRaises(ValueError, worker_media_ranges, 3, 30000, 10)


class WindowTests(unittest.TestCase):
    def test_the_shared_window_is_the_intersection(self) -> None:
        marks = {"0": {"WINDOW_START": 10.0, "WINDOW_END": 16.0},
                 "1": {"WINDOW_START": 11.5, "WINDOW_END": 17.0}}
        self.assertEqual(window(marks), (11.5, 16.0))

    def test_no_window_when_a_caller_has_none_or_they_do_not_overlap(self) -> None:
        self.assertIsNone(window({}))
        self.assertIsNone(window({"0": {"WINDOW_START": 1.0}}))
        self.assertIsNone(window({"0": {"WINDOW_START": 1.0, "WINDOW_END": 2.0},
                                  "1": {"WINDOW_START": 3.0, "WINDOW_END": 4.0}}))


class RatioTests(unittest.TestCase):
    def test_calls_at_budget_sums_over_workers(self) -> None:
        self.assertAlmostEqual(calls_at_budget([0.45], 90.0), 200.0)
        self.assertAlmostEqual(calls_at_budget([0.45, 0.5], 90.0), 380.0)
        self.assertEqual(calls_at_budget([0.0], 90.0), 0.0)  # no calls measured: no capacity

    def test_median_range(self) -> None:
        self.assertEqual(median_range([3.0, 1.0, 2.0]), (2.0, 1.0, 3.0))
        self.assertIsNone(median_range([]))

    def test_ratio_is_per_repetition_and_a_costless_second_worker_doubles(self) -> None:
        reps = [
            {1: point(2.0, (100, 45.0)), 2: point(2.5, (100, 45.0), (100, 45.0))},  # 2.0
            {1: point(2.0, (100, 40.0)), 2: point(2.5, (100, 50.0), (100, 50.0))},  # 1.6
        ]
        summary = summarise(reps, 90.0)
        self.assertEqual(len(summary["ratios"]), 2)
        self.assertAlmostEqual(summary["ratios"][0], 2.0)
        self.assertAlmostEqual(summary["ratios"][1], 1.6)
        self.assertEqual(summary["rows"][2]["up"], [200, 200])
        self.assertAlmostEqual(summary["rows"][1]["total_at_budget"][0], 200.0)

    def test_a_point_with_a_worker_missing_counts_in_no_ratio(self) -> None:
        reps = [{1: point(1.0, (100, 45.0)), 2: point(1.0, (100, 45.0), (0, 3.0))}]
        summary = summarise(reps, 90.0)
        self.assertEqual(summary["ratios"], [])
        self.assertNotIn(2, summary["rows"])

    def test_ratios_pair_points_of_the_same_repetition(self) -> None:
        reps = [{1: point(1.0, (0, 3.0)), 2: point(1.0, (100, 45.0), (100, 45.0))},
                {1: point(1.0, (100, 30.0)), 2: point(1.0, (100, 45.0), (100, 45.0))}]
        self.assertEqual([round(r, 3) for r in summarise(reps, 90.0)["ratios"]], [1.333])
