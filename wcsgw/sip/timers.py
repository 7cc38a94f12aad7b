"""Timer values (RFC 3261 §17, table in Appendix A; RFC 6026 §8.11) and the timer queue.

The transaction layer is sans-IO: it never reads a clock.  Every transaction arms named timers
(``"A"``, ``"B"``, ...) as absolute deadlines in one shared :class:`TimerQueue`; the adapter
asks for the earliest deadline and calls back at that instant.  One heap for all transactions
keeps both arming and "what is due" O(log n) however many calls are up.  The usages above
the transactions (sessions, re-INVITEs, REFERs) keep theirs the same way: each timer is a
:class:`Deadline` in the endpoint's :class:`Deadlines` heap.
"""

from __future__ import annotations

import heapq
import itertools
from typing import Callable, Generic, Hashable, TypeVar

import attr

#: Deadlines this close ahead of ``now`` count as due.  A driver that schedules
#: ``callLater(deadline - now)`` can wake up an ulp early through float rounding; without the
#: slack it would spin on a 1e-16 s timer instead of firing.
EPSILON = 1e-6


@attr.s(frozen=True, slots=True, auto_attribs=True)
class TimerConfig:
    """RFC 3261 Appendix A timer base values, in seconds.

    ``t1`` is the RTT estimate, ``t2`` the cap for non-INVITE/response retransmission
    intervals, ``t4`` how long a message may stay in the network.  Tests and integration
    tests shrink them; the derived timers follow.
    """

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0
    #: Timer D over unreliable transports: "at least 32 s" (§17.1.1.2), independent of T1
    #: because it covers the *peer's* final-response retransmissions.
    d: float = 32.0
    #: §17.2.1: the INVITE server transaction answers 100 Trying itself when the TU has sent
    #: no provisional response within 200 ms.
    trying: float = 0.2

    @property
    def timeout(self) -> float:
        """64*T1: Timers B, F, H, J (unreliable), L and M."""
        return 64 * self.t1


_Owner = TypeVar("_Owner", bound=Hashable)


class TimerQueue(Generic[_Owner]):
    """Named one-shot timers of many owners in one heap, with lazy cancellation.

    Re-arming or cancelling a timer only updates the owner's table; the stale heap entry is
    dropped when it reaches the top (or when stale entries outnumber live ones, by a rebuild),
    so no operation scans all timers.
    """

    __slots__ = ("_heap", "_armed", "_seq", "_live")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, _Owner, str]] = []
        self._armed: dict[_Owner, dict[str, tuple[float, int]]] = {}
        self._seq = itertools.count()
        self._live = 0

    def arm(self, owner: _Owner, name: str, deadline: float) -> None:
        """Set (or reset) ``owner``'s timer ``name`` to fire at ``deadline``."""
        seq = next(self._seq)
        timers = self._armed.setdefault(owner, {})
        if name not in timers:
            self._live += 1
        timers[name] = (deadline, seq)
        heapq.heappush(self._heap, (deadline, seq, owner, name))
        if len(self._heap) > 64 + 4 * self._live:
            self._compact()

    def cancel(self, owner: _Owner, name: str) -> None:
        timers = self._armed.get(owner)
        if timers is not None and timers.pop(name, None) is not None:
            self._live -= 1
            if not timers:
                del self._armed[owner]

    def cancel_all(self, owner: _Owner) -> None:
        timers = self._armed.pop(owner, None)
        if timers:
            self._live -= len(timers)

    def deadline(self, owner: _Owner, name: str) -> float | None:
        """When ``owner``'s timer ``name`` fires, or None if it is not armed."""
        entry = self._armed.get(owner, {}).get(name)
        return entry[0] if entry is not None else None

    def armed(self, owner: _Owner) -> dict[str, float]:
        """``{name: deadline}`` of the owner's armed timers (for tests and debugging)."""
        return {name: d for name, (d, _) in self._armed.get(owner, {}).items()}

    def next_deadline(self) -> float | None:
        self._drop_stale()
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: float) -> tuple[_Owner, str] | None:
        """Disarm and return the earliest timer due at ``now``, or None."""
        self._drop_stale()
        if not self._heap or self._heap[0][0] > now + EPSILON:
            return None
        _, _, owner, name = heapq.heappop(self._heap)
        self.cancel(owner, name)
        return owner, name

    def __len__(self) -> int:
        return self._live

    def _is_live(self, entry: tuple[float, int, _Owner, str]) -> bool:
        deadline, seq, owner, name = entry
        return self._armed.get(owner, {}).get(name) == (deadline, seq)

    def _drop_stale(self) -> None:
        heap = self._heap
        while heap and not self._is_live(heap[0]):
            heapq.heappop(heap)

    def _compact(self) -> None:
        self._heap = [e for e in self._heap if self._is_live(e)]
        heapq.heapify(self._heap)


class Deadline:
    """One timer of a transaction user (a session's no-answer timeout, a re-INVITE's glare
    back-off ...) in the endpoint's heap: when it comes, ``on_due(now)`` runs.

    Each usage holds its own deadlines, so nothing scans the live sessions to find the next
    one: arming is O(log n) and the endpoint pops what is due.  Made by
    :meth:`Deadlines.new`; a usage that ends clears them.
    """

    __slots__ = ("_deadlines", "_on_due")

    def __init__(self, deadlines: Deadlines, on_due: Callable[[float], None]) -> None:
        self._deadlines = deadlines
        self._on_due = on_due

    @property
    def at(self) -> float | None:
        """When it fires, or None when it is not armed."""
        return self._deadlines.queue.deadline(self, "")

    def set(self, when: float) -> None:
        """Arm (or move) it to fire at ``when``."""
        self._deadlines.arm(self, when)

    def clear(self) -> None:
        self._deadlines.queue.cancel(self, "")

    def fire(self, now: float) -> None:
        self._on_due(now)


class Deadlines:
    """The endpoint's heap of :class:`Deadline` objects.  ``wake`` is called when one is
    armed (the adapter's timer may have to move earlier)."""

    def __init__(self, wake: Callable[[], None]) -> None:
        self.queue: TimerQueue[Deadline] = TimerQueue()
        self._wake = wake

    def new(self, on_due: Callable[[float], None]) -> Deadline:
        return Deadline(self, on_due)

    def arm(self, deadline: Deadline, when: float) -> None:
        self.queue.arm(deadline, "", when)
        self._wake()

    def next_deadline(self) -> float | None:
        return self.queue.next_deadline()

    def fire_due(self, now: float) -> None:
        """Run every deadline due at ``now``, earliest first (one armed while running, and
        due, runs too)."""
        while (due := self.queue.pop_due(now)) is not None:
            due[0].fire(now)

    def __len__(self) -> int:
        return len(self.queue)
