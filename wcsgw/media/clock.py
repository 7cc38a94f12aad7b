"""The clock of the media plane: one object that gives timer time and wall time.

Two times, because they answer different questions.  Timers, packet arrival, RTP timestamps,
inactivity and RTCP intervals need the clock the timers run on: the reactor's ``seconds()``
(``callLater`` is scheduled on it), so that a packet's time and a timer's deadline agree.
Twisted's reactors, the asyncio one included, take it from ``time.time()``: a step of the
system clock moves packet times and timers together, and intervals between packets stay right
while it does not step.  RTCP sender reports need wall-clock time (NTP, RFC 3550 §4), which the
peer uses for lip sync and echoes back for round-trip times; they get it from the system's
wall clock through ``wall_offset``, so a fake reactor in tests still yields real SR times
(issue 11: reading the reactor for both made SR timestamps count from the fake clock's zero).

The sans-IO cores never read a clock: they take ``now`` (timer time) as an argument, and the
RTCP reporters a ``wall_offset`` (wall minus timer time) taken once per call from here.  The
owner of the sockets reads :meth:`MediaClock.now` once per datagram.  Production uses
:class:`ReactorClock`; tests use :class:`FakeClock` over a ``twisted.internet.task.Clock``.
"""

from __future__ import annotations

import time
from typing import Callable, Protocol

__all__ = ["MediaClock", "ReactorClock", "FakeClock"]


class _Seconds(Protocol):
    """What a clock needs of a reactor (``IReactorTime.seconds``; a ``task.Clock`` has it)."""

    def seconds(self) -> float: ...


class MediaClock(Protocol):
    """Timer time (:meth:`now`, the reactor's: what timers run on) and wall time."""

    def now(self) -> float:
        """Seconds on the clock the reactor schedules timers with."""
        ...

    def wall(self) -> float:
        """Seconds since the Unix epoch (for NTP timestamps and records)."""
        ...

    def wall_offset(self) -> float:
        """``wall() - now()``: what turns a ``now`` into wall time for the rest of a call."""
        ...


class ReactorClock:
    """The production clock: the reactor's ``seconds()`` and the system's wall clock."""

    __slots__ = ("reactor", "_wall")

    def __init__(self, reactor: _Seconds, wall: Callable[[], float] = time.time) -> None:
        self.reactor = reactor
        self._wall = wall

    def now(self) -> float:
        return self.reactor.seconds()

    def wall(self) -> float:
        return self._wall()

    def wall_offset(self) -> float:
        return self._wall() - self.reactor.seconds()


class FakeClock(ReactorClock):
    """For tests: timer time is a ``task.Clock``'s (advanced by the test), wall time is
    that plus a fixed ``wall_at_zero`` (what the wall clock read when the task clock read 0),
    so the two differ as they do on a real asyncio reactor."""

    __slots__ = ("wall_at_zero",)

    def __init__(self, reactor: _Seconds, wall_at_zero: float = 1_700_000_000.0) -> None:
        super().__init__(reactor, lambda: reactor.seconds() + wall_at_zero)
        self.wall_at_zero = wall_at_zero
