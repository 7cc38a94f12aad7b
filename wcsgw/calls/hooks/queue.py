"""The notice events' queue: in order per call (or session), retried with backoff, bounded.

Why sans-IO: order under retries and the bound are the whole point of this queue and the
easiest things to get subtly wrong, so they are tested on a fake clock without HTTP.  One
request per key is in flight at a time and a key's next notice waits until the one before it
was delivered or given up, so a backend always sees a call's ``callStatus`` in order.  When
the queue is full the oldest waiting notice is dropped and counted: a slow backend costs
notices, never memory, signalling or media.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Iterator

import attr

__all__ = ["BACKOFF", "Notice", "NoticeQueue"]

#: seconds to wait before the 2nd, 3rd, ... attempt; after the last the notice is given up
BACKOFF = (1.0, 2.0, 4.0, 8.0, 16.0)


@attr.s(auto_attribs=True, eq=False)
class Notice:
    """One notice to deliver: ``key`` orders it (a callId, or the session's id), ``item``
    is what the adapter sends (opaque here)."""

    key: str
    item: Any
    seq: int
    attempts: int = 0
    not_before: float = 0.0
    in_flight: bool = False


class NoticeQueue:
    """Per-key FIFOs of :class:`Notice`; ``limit`` notices waiting in all."""

    def __init__(self, limit: int = 1000, backoff: tuple[float, ...] = BACKOFF) -> None:
        self.limit = limit
        self.backoff = backoff
        self._keys: dict[str, deque[Notice]] = {}
        self._seq = 0
        self.size = 0
        #: counters for /metrics
        self.delivered = 0
        self.failures = 0
        self.dropped = 0

    def push(self, key: str, item: Any, now: float) -> None:
        """Queue a notice behind the others of its key; drop the oldest waiting one (not one
        in flight) when the queue is over its limit."""
        self._seq += 1
        self._keys.setdefault(key, deque()).append(Notice(key, item, self._seq, 0, now))
        self.size += 1
        while self.size > self.limit and self._drop_oldest():
            pass

    def due(self, now: float) -> list[Notice]:
        """The notices to send now (each key's first, when not already in flight and its
        backoff has passed), marked in flight."""
        ready = [q[0] for q in self._keys.values()
                 if not q[0].in_flight and q[0].not_before <= now]
        for notice in ready:
            notice.in_flight = True
        return ready

    def done(self, notice: Notice, ok: bool, now: float) -> None:
        """The adapter's result for a notice ``due`` gave it: delivered, or failed (retried
        after the next backoff step, or given up and counted as dropped after the last)."""
        notice.in_flight = False
        if not ok:
            self.failures += 1
            notice.attempts += 1
            if notice.attempts <= len(self.backoff):
                notice.not_before = now + self.backoff[notice.attempts - 1]
                return
            self.dropped += 1
        else:
            self.delivered += 1
        self._remove(notice)

    def next_deadline(self) -> float | None:
        """When :meth:`due` may next give something (None: nothing waits on time)."""
        times = [q[0].not_before for q in self._keys.values() if not q[0].in_flight]
        return min(times) if times else None

    def __iter__(self) -> Iterator[Notice]:
        for q in self._keys.values():
            yield from q

    def _remove(self, notice: Notice) -> None:
        q = self._keys[notice.key]
        q.remove(notice)
        self.size -= 1
        if not q:
            del self._keys[notice.key]

    def _drop_oldest(self) -> bool:
        waiting = [n for q in self._keys.values() for n in q if not n.in_flight]
        if not waiting:
            return False
        self._remove(min(waiting, key=lambda n: n.seq))
        self.dropped += 1
        return True
