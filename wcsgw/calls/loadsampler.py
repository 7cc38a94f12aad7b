"""The Twisted side of overload control: a periodic timer that measures how late it fires and
reads the process's CPU time, feeding :class:`~wcsgw.calls.overload.OverloadDetector`.

Why a timer measures lag: a timer due every ``interval`` that fires late was kept waiting by
other work on the same loop — exactly what the packets of live calls wait behind too.  The
timer is the reactor's own (``callLater`` on the given clock, re-armed at each firing), so tests drive it with
``task.Clock`` and an injected CPU reading.
"""

from __future__ import annotations

import os
from typing import Any, Callable

from twisted.logger import Logger

from wcsgw.calls.overload import OverloadDetector

__all__ = ["LoadSampler", "process_cpu_seconds"]

log = Logger(namespace="wcsgw.calls")


def process_cpu_seconds() -> float:
    """User + system CPU seconds of this process (children not included)."""
    times = os.times()
    return times.user + times.system


class LoadSampler:
    """Samples every ``interval`` seconds on ``clock`` (an IReactorTime) while started."""

    def __init__(self, detector: OverloadDetector, clock: Any, *, interval: float = 0.1,
                 cpu: Callable[[], float] = process_cpu_seconds) -> None:
        self.detector = detector
        self.clock = clock
        self.interval = interval
        self.cpu = cpu
        self._timer: Any = None
        #: when the pending timer is due (None: the first sample, nothing to compare)
        self._due: float | None = None

    @property
    def running(self) -> bool:
        return self._timer is not None

    def start(self) -> None:
        """Start sampling (nothing when both checks are off, or already started)."""
        if self._timer is not None or not self.detector.enabled:
            return
        self.sample()

    def stop(self) -> None:
        if self._timer is not None:
            timer, self._timer = self._timer, None
            if timer.active():
                timer.cancel()

    def sample(self) -> None:
        """One sample: the lag of this firing against when it was due, the CPU so far; then
        the next timer, one interval from now (a stall is measured once, not re-counted by
        catching up)."""
        now = self.clock.seconds()
        was = self.detector.overloaded
        if self._due is not None:
            self.detector.lag(now, now - self._due)
        over = self.detector.cpu(now, self.cpu())
        self._due = now + self.interval
        self._timer = self.clock.callLater(self.interval, self.sample)
        if over != was:
            lag_ms = self.detector.mean_lag(now) * 1000
            cpu = self.detector.cpu_percent(now)
            if over:
                log.warn("overloaded: new calls refused (event loop {lag:.0f} ms late on "
                         "average, CPU {cpu})", lag=lag_ms, cpu=_percent(cpu))
            else:
                log.info("no longer overloaded: new calls taken again (event loop {lag:.0f} "
                         "ms late on average, CPU {cpu})", lag=lag_ms, cpu=_percent(cpu))


def _percent(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.0f} %"
