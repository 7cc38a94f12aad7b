"""Overload control as a sans-IO detector: can the gateway still carry one more call?

Why event-loop lag and CPU, not a call count: one process relays every packet of every call on
one event loop, so the first sign that it carries more than a core can is that its timers fire
late (packets wait in the socket buffers: added latency, then loss) and its CPU share
approaches one core.  Refusing *new* calls at that point keeps the live ones intact; counting
calls would need a capacity figure that differs per codec, transcoding and machine.

Fed samples — how late a periodic timer fired, and the process's cumulative CPU seconds —
each with "now", by a thin sampler (:mod:`wcsgw.calls.loadsampler`); it decides over a short
window (``window`` seconds) that the gateway is overloaded when the median lag exceeds
``limits.max_loop_lag_ms`` or the CPU share exceeds ``limits.max_cpu_percent`` of one core
(0 turns a check off).  Hysteresis: once overloaded it clears only when every enabled measure
is below ``clear_ratio`` of its threshold, so a load that hovers at the line does not flap.
"""

from __future__ import annotations

from collections import deque

__all__ = ["OVERLOADED_MESSAGE", "OverloadDetector"]

#: What a refused call is told (JSON-RPC message, REST error, SIP log).
OVERLOADED_MESSAGE = "Gateway overloaded"


class OverloadDetector:
    """``max_lag_ms``/``max_cpu_percent``: the thresholds (0: that check off); ``window``: the
    seconds of samples each decision looks at; ``clear_ratio``: the share of a threshold the
    measure must fall below to clear."""

    def __init__(self, max_lag_ms: float, max_cpu_percent: float, *, window: float = 3.0,
                 clear_ratio: float = 0.7) -> None:
        self.max_lag = max_lag_ms / 1000.0
        self.max_cpu = float(max_cpu_percent)
        self.window = window
        self.clear_ratio = clear_ratio
        self.overloaded = False
        #: how many times it went from carrying to overloaded (logs, tests)
        self.episodes = 0
        self._lags: deque[tuple[float, float]] = deque()
        self._cpu: deque[tuple[float, float]] = deque()

    @property
    def enabled(self) -> bool:
        return self.max_lag > 0 or self.max_cpu > 0

    def lag(self, now: float, seconds: float) -> bool:
        """A periodic timer fired ``seconds`` late at ``now``; returns :attr:`overloaded`."""
        self._lags.append((now, max(0.0, seconds)))
        return self.update(now)

    def cpu(self, now: float, cpu_seconds: float) -> bool:
        """The process had used ``cpu_seconds`` of CPU in all at ``now``; returns
        :attr:`overloaded`."""
        self._cpu.append((now, cpu_seconds))
        return self.update(now)

    def mean_lag(self, now: float) -> float:
        """The typical lag (seconds) over the window: the median of its samples, 0 until they
        span at least half a window.  The median, not the mean: one stall (a slow disk, a
        big GC, the start-up's own work) is not overload, every timer running late is — and
        a single 1.5 s stall would lift a 3 s window's mean over 50 ms all alone."""
        self._forget(now)
        lags = self._lags
        if not lags or now - lags[0][0] < self.window / 2:
            return 0.0
        ordered = sorted(lag for _, lag in lags)
        middle = len(ordered) // 2
        return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2

    def cpu_percent(self, now: float) -> float | None:
        """The CPU share (percent of one core) over the window; None until two samples at
        least half a window apart say it."""
        self._forget(now)
        if len(self._cpu) < 2:
            return None
        (t0, c0), (t1, c1) = self._cpu[0], self._cpu[-1]
        if t1 - t0 < self.window / 2:
            return None
        return max(0.0, (c1 - c0) / (t1 - t0) * 100.0)

    def update(self, now: float) -> bool:
        """Decide at ``now`` from the window's samples (with hysteresis)."""
        if not self.enabled:
            self.overloaded = False
            return False
        lag, cpu = self.mean_lag(now), self.cpu_percent(now)
        ratio = self.clear_ratio if self.overloaded else 1.0
        over = (self.max_lag > 0 and lag > self.max_lag * ratio) or (
            self.max_cpu > 0 and cpu is not None and cpu > self.max_cpu * ratio)
        if over and not self.overloaded:
            self.episodes += 1
        self.overloaded = over
        return over

    def retry_after(self) -> int:
        """Seconds a SIP peer should wait (Retry-After of a 503): about one window, by when
        the decision may have changed."""
        return max(1, round(self.window + 1))

    def _forget(self, now: float) -> None:
        """Drop samples older than the window; the CPU keeps one sample at or before its
        start, so the share covers the whole window."""
        start = now - self.window
        lags = self._lags
        while lags and lags[0][0] <= start:
            lags.popleft()
        cpu = self._cpu
        while len(cpu) >= 2 and cpu[1][0] <= start:
            cpu.popleft()
