"""Overload control (issue 15, item 3): the sans-IO :class:`OverloadDetector` (each threshold,
the window, hysteresis, checks turned off), the :class:`LoadSampler` on a ``task.Clock`` with
an injected CPU reading, the gate over a CallGateway (calls refused, sessions not), and a real
gateway in this process made to think it is overloaded: JSON-RPC 1012 while a new session
still opens, REST 503, SIP 503 with Retry-After to SIPp's INVITE, ``/metrics`` and
``/health``; then it clears and calls are taken again.  The load itself is engineer 4's
bench (``bench/``)."""

from __future__ import annotations

import json

from twisted.internet import reactor, task
from twisted.trial import unittest

from tests.peers.sipp import Sipp
from tests.support import inline
from tests.test_calls_limits import GatewayLimitsCase, Listener
from tests.test_security_limits import LimitsCase, limits_config
from wcsgw.calls.admission import overload_gate
from wcsgw.calls.errors import Codes
from wcsgw.calls.loadsampler import LoadSampler
from wcsgw.calls.overload import OverloadDetector


class DetectorTests(unittest.TestCase):
    def setUp(self) -> None:
        self.clock = task.Clock()
        self.clock.advance(1000)

    def lags(self, detector: OverloadDetector, lag: float, seconds: float,
             every: float = 0.1) -> bool:
        """Samples of ``lag`` every ``every`` s for ``seconds``; the last decision."""
        over = False
        for _ in range(round(seconds / every)):
            self.clock.advance(every)
            over = detector.lag(self.clock.seconds(), lag)
        return over

    def cpu(self, detector: OverloadDetector, share: float, seconds: float,
            start: float = 0.0, every: float = 0.1) -> float:
        """CPU samples as if the process used ``share`` of a core; returns the CPU total."""
        total = start
        for _ in range(round(seconds / every)):
            self.clock.advance(every)
            total += share * every
            detector.cpu(self.clock.seconds(), total)
        return total

    def test_typical_lag_over_the_threshold_over_the_window(self) -> None:
        detector = OverloadDetector(50, 0, window=3)
        self.assertFalse(self.lags(detector, 0.049, 3))
        self.assertAlmostEqual(detector.mean_lag(self.clock.seconds()), 0.049)
        self.assertFalse(self.lags(detector, 0.051, 1.4))  # 14 of 30 samples late: not yet
        self.assertTrue(self.lags(detector, 0.051, 0.2))  # most timers late: overloaded
        self.assertAlmostEqual(detector.mean_lag(self.clock.seconds()), 0.051)
        self.assertEqual(detector.episodes, 1)

    def test_a_single_stall_is_not_overload(self) -> None:
        detector = OverloadDetector(50, 0, window=3)
        self.assertFalse(self.lags(detector, 0.001, 3))
        self.clock.advance(0.1)
        self.assertFalse(detector.lag(self.clock.seconds(), 2.0))  # one 2 s stall
        self.assertFalse(self.lags(detector, 0.001, 3))
        self.assertEqual(detector.episodes, 0)

    def test_no_decision_before_half_a_window_of_samples(self) -> None:
        detector = OverloadDetector(50, 0, window=3)  # as at start-up: its own work is late
        self.assertFalse(self.lags(detector, 0.5, 1.4))
        self.assertEqual(detector.mean_lag(self.clock.seconds()), 0.0)
        self.assertTrue(self.lags(detector, 0.5, 0.2))  # still late after 1.5 s: overloaded

    def test_hysteresis_clears_only_below_70_percent(self) -> None:
        detector = OverloadDetector(50, 0, window=3)
        self.assertTrue(self.lags(detector, 0.06, 3))
        self.assertTrue(self.lags(detector, 0.04, 3))  # under 50 but over 35: still over
        self.assertTrue(self.lags(detector, 0.036, 3))
        self.assertFalse(self.lags(detector, 0.034, 3))  # under 35 ms: clears
        self.assertFalse(self.lags(detector, 0.049, 3))  # and stays clear up to 50
        self.assertEqual(detector.episodes, 1)

    def test_cpu_share_over_the_threshold_once_the_window_says_so(self) -> None:
        detector = OverloadDetector(0, 90, window=3)
        total = self.cpu(detector, 0.95, 1.4)
        self.assertIsNone(detector.cpu_percent(self.clock.seconds()))  # under half a window
        self.assertFalse(detector.overloaded)
        total = self.cpu(detector, 0.95, 0.3, total)
        self.assertAlmostEqual(detector.cpu_percent(self.clock.seconds()), 95.0, places=3)
        self.assertTrue(detector.overloaded)
        total = self.cpu(detector, 0.7, 3, total)  # 70 %: above 63 (70 % of 90)
        self.assertTrue(detector.overloaded)
        total = self.cpu(detector, 0.6, 3, total)
        self.assertFalse(detector.overloaded)
        self.cpu(detector, 0.89, 3, total)
        self.assertFalse(detector.overloaded)

    def test_cpu_share_covers_the_whole_window(self) -> None:
        detector = OverloadDetector(0, 90, window=3)
        total = self.cpu(detector, 0.0, 10)
        total = self.cpu(detector, 1.0, 1.5, total)  # 1.5 s busy of the last 3
        self.assertAlmostEqual(detector.cpu_percent(self.clock.seconds()), 50.0, delta=2)
        self.assertFalse(detector.overloaded)

    def test_either_measure_overloads_and_zero_turns_a_check_off(self) -> None:
        both = OverloadDetector(50, 90, window=3)
        total = self.cpu(both, 1.0, 3)
        self.assertTrue(both.overloaded)  # CPU alone
        lag_only = OverloadDetector(50, 0, window=3)
        self.cpu(lag_only, 1.0, 3)
        self.assertFalse(lag_only.overloaded)
        cpu_only = OverloadDetector(0, 90, window=3)
        self.assertFalse(self.lags(cpu_only, 5.0, 3))
        off = OverloadDetector(0, 0)
        self.assertFalse(off.enabled)
        self.assertFalse(self.lags(off, 5.0, 3))
        self.assertGreater(total, 0)

    def test_retry_after_is_about_a_window(self) -> None:
        self.assertEqual(OverloadDetector(50, 90, window=3).retry_after(), 4)


class FakeCpu:
    def __init__(self, clock: task.Clock) -> None:
        self.clock = clock
        self.share = 0.0
        self.total = 0.0
        self.at = clock.seconds()

    def __call__(self) -> float:
        now = self.clock.seconds()
        self.total += (now - self.at) * self.share
        self.at = now
        return self.total


class SamplerTests(unittest.TestCase):
    def setUp(self) -> None:
        self.clock = task.Clock()
        self.cpu = FakeCpu(self.clock)
        self.detector = OverloadDetector(50, 90, window=3)
        self.sampler = LoadSampler(self.detector, self.clock, interval=0.1, cpu=self.cpu)

    def test_lag_is_how_late_the_timer_fires(self) -> None:
        self.sampler.start()
        self.assertTrue(self.sampler.running)
        for _ in range(10):
            self.clock.advance(0.1)
        seen: list[float] = []
        feed = self.detector.lag
        self.detector.lag = lambda now, late: (seen.append(late), feed(now, late))[1]  # type: ignore[method-assign]
        self.clock.advance(0.5)  # the loop was busy 0.4 s past the timer's due time
        self.clock.advance(0.1)
        self.assertEqual(len(seen), 2)
        self.assertAlmostEqual(seen[0], 0.4)
        self.assertAlmostEqual(seen[1], 0.0)
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)  # one timer, re-armed
        self.sampler.stop()
        self.assertFalse(self.sampler.running)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_cpu_drives_it_over_and_back(self) -> None:
        self.sampler.start()
        self.cpu.share = 0.99
        for _ in range(20):
            self.clock.advance(0.1)
        self.assertTrue(self.detector.overloaded)
        self.cpu.share = 0.2
        for _ in range(31):
            self.clock.advance(0.1)
        self.assertFalse(self.detector.overloaded)
        self.sampler.stop()

    def test_nothing_runs_with_both_checks_off(self) -> None:
        LoadSampler(OverloadDetector(0, 0), self.clock).start()
        self.assertEqual(self.clock.getDelayedCalls(), [])


class OverloadGateTests(GatewayLimitsCase):
    def setUp(self) -> None:
        super().setUp()
        self.detector = OverloadDetector(50, 0)
        self.gateway.admission.gates.append(overload_gate(self.gateway.admission, self.detector))

    def test_calls_refused_sessions_not_then_taken_again(self) -> None:
        a = self.session("a")
        self.call(a)
        self.detector.overloaded = True
        error = self.refused(Codes.OVERLOADED, self.call, a)
        self.assertEqual(error.message, "Gateway overloaded")
        self.assertEqual(getattr(error, "retry_after", None), 4)
        self.refused(Codes.OVERLOADED, self.gateway.startup, call_id=None, callee="echo",
                     account=None)
        self.gateway.open_session("b", Listener(), peer="10.0.0.2")  # sessions are cheap
        self.assertEqual(self.gateway.refusals["overloaded"], 2)
        self.assertEqual(len(self.gateway.calls), 1)  # the live call is untouched
        self.detector.overloaded = False
        self.call(a)


class OverloadGatewayTests(LimitsCase):
    config = limits_config(max_loop_lag_ms=50, max_cpu_percent=0)

    def setUp(self) -> None:
        super().setUp()
        # The test feeds the detector itself: the sampler's own samples would average
        # the test's away.
        self.gateway.top.getServiceNamed("calls").sampler.stop()
        self.detector = self.calls.overload
        self.shift = 0.0

    def overload(self, lag: float) -> None:
        """Three seconds of samples of ``lag``, each batch 10 s after the one before (so
        it alone is in the window)."""
        now = reactor.seconds() + self.shift
        self.shift += 10
        for n in range(30):
            self.detector.lag(now - 3 + 0.1 * (n + 1), lag)

    @inline
    async def test_overloaded_refuses_new_calls_only_until_it_clears(self) -> None:
        ws = await self.session()
        live = (await self.call(ws))["result"]["callId"]
        await self.established(ws, live)
        self.overload(0.2)
        self.assertTrue(self.detector.overloaded)
        self.assertRefused(await self.call(ws), Codes.OVERLOADED, "Gateway overloaded")
        other = await self.session()  # a new session still opens
        self.assertRefused(await self.call(other), Codes.OVERLOADED, "Gateway overloaded")
        status, body = await self.rest("call/startup", {"callee": "echo"})
        self.assertEqual((status, body), (503, {"error": "Gateway overloaded"}))
        status, health = await self.get("health")
        self.assertEqual((status, json.loads(health)["overloaded"]), (200, True))
        status, metrics = await self.get("metrics")
        self.assertIn(b"wcsgw_overloaded 1", metrics)
        self.assertIn(b"wcsgw_event_loop_lag_seconds 0.2", metrics)
        self.assertIn(b'wcsgw_limit_refusals_total{limit="overloaded"} 3', metrics)
        sipp = Sipp("uac_refused_503.xml", remote=f"127.0.0.1:{self.gateway.sip.port}")
        self.addCleanup(sipp.stop)
        sipp.start()
        self.assertEqual(await sipp.finished(), 0, sipp.logs)
        self.assertEqual(self.calls.refusals["overloaded"], 4)
        self.assertEqual(self.calls.calls[live].describe()["status"], "ESTABLISHED")

        self.overload(0.0)
        self.assertFalse(self.detector.overloaded)
        self.assertIn("result", await self.call(other))
        status, metrics = await self.get("metrics")
        self.assertIn(b"wcsgw_overloaded 0", metrics)
