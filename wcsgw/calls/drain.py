"""Graceful drain as a sans-IO state machine: what a gateway that was asked to stop does next.

Why a machine of its own: a restart for an upgrade must not cut the calls in progress.  The
first SIGTERM (or REST ``gateway/drain``) closes the door to new sessions and calls and lets
the live ones finish; only when they are all over, or when ``limits.drain_seconds`` have
passed (then the rest are hung up with BYE), does the process unregister and stop.  The
decisions — which state, when to hang up, when to stop, what a refusal says — are here, fed
"now" and the registry's count of live calls; the timers, the hangups and ``reactor.stop``
are the Twisted driver's (:class:`wcsgw.calls.lifecycle.DrainDriver`).

States: ``open`` -> ``draining`` (since, until = since + drain_seconds) -> ``ending`` (the
rest hung up, their BYEs answered or ``grace`` over) -> ``done`` (stop the process).
"""

from __future__ import annotations

import enum
import math

__all__ = ["Drain", "DrainState", "Step", "DRAINING_MESSAGE"]

#: What a refused session or call is told (JSON-RPC message, REST error, SIP log).
DRAINING_MESSAGE = "Gateway draining"


class DrainState(enum.Enum):
    OPEN = "open"
    DRAINING = "draining"
    ENDING = "ending"
    DONE = "done"


class Step(enum.Enum):
    """What the driver does after :meth:`Drain.step`."""

    NOTHING = "nothing"  # not draining, or already done
    WAIT = "wait"  # calls still live: wake at :meth:`Drain.deadline` or when one ends
    HANG_UP = "hang_up"  # drain_seconds are over: BYE every call still live
    STOP = "stop"  # no call left (or the hangups' grace is over): unregister and stop


class Drain:
    """One gateway's drain.  ``drain_seconds``: how long live calls may go on (0: hung up at
    once); ``grace``: how long the hangups' answers are awaited before stopping anyway."""

    def __init__(self, drain_seconds: float, grace: float = 3.0) -> None:
        self.drain_seconds = drain_seconds
        self.grace = grace
        self.state = DrainState.OPEN
        #: when the drain began and when live calls will be hung up (None while open)
        self.since: float | None = None
        self.until: float | None = None
        self._ending_since: float | None = None

    @property
    def draining(self) -> bool:
        """Is the door closed (draining, ending or done)?"""
        return self.state is not DrainState.OPEN

    def begin(self, now: float) -> bool:
        """Start draining at ``now``; False (and nothing changes) when already draining."""
        if self.state is not DrainState.OPEN:
            return False
        self.state = DrainState.DRAINING
        self.since, self.until = now, now + self.drain_seconds
        return True

    def step(self, now: float, live_calls: int) -> Step:
        """What to do at ``now`` with ``live_calls`` calls live or still ending."""
        state = self.state
        if state is DrainState.OPEN or state is DrainState.DONE:
            return Step.NOTHING
        if live_calls <= 0:
            self.state = DrainState.DONE
            return Step.STOP
        if state is DrainState.DRAINING:
            assert self.until is not None
            if now < self.until:
                return Step.WAIT
            self.state, self._ending_since = DrainState.ENDING, now
            return Step.HANG_UP
        assert self._ending_since is not None
        if now >= self._ending_since + self.grace:
            self.state = DrainState.DONE
            return Step.STOP
        return Step.WAIT

    def deadline(self) -> float | None:
        """When :meth:`step` must be asked again even if no call ends (None: never)."""
        if self.state is DrainState.DRAINING:
            return self.until
        if self.state is DrainState.ENDING:
            assert self._ending_since is not None
            return self._ending_since + self.grace
        return None

    def retry_after(self, now: float) -> int:
        """Seconds a SIP peer should keep away (Retry-After of a 503): until this process
        has surely stopped — the calls' time left plus the hangups' grace, at least 1."""
        left = (self.until or now) - now if self.state is DrainState.DRAINING else 0.0
        return max(1, math.ceil(left + self.grace))

    def describe(self, now: float, live_calls: int) -> dict[str, object]:
        """The state as REST and logs show it."""
        out: dict[str, object] = {"status": self.state.value, "calls": live_calls}
        if self.until is not None:
            out["secondsLeft"] = max(0, math.ceil(self.until - now))
        return out
