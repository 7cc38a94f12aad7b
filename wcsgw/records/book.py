"""The call records as the gateway uses them (``gateway.cdr``): add one, find, export, expire.

Why a face apart from the store and the writer: the API layer and the call layer see only
this — a non-blocking :meth:`CallRecords.add` and Deferred reads — and never a database
connection or a thread; the arguments are checked here, on the reactor, before anything is
queued.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from twisted.internet import defer
from twisted.logger import Logger

from wcsgw.records.export import to_csv
from wcsgw.records.store import RecordStore
from wcsgw.records.writer import CAPACITY, RecordWriter

__all__ = ["DAY", "MAX_LIMIT", "CallRecords"]

log = Logger(namespace="wcsgw.records")

MAX_LIMIT = 1000
DAY = 86_400.0


def _check(since: float | None, until: float | None, limit: int) -> None:
    if isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit: an integer from 1 to {MAX_LIMIT}")
    for name, value in (("since", since), ("until", until)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ValueError(f"{name}: epoch seconds")


class CallRecords:
    """The records of one gateway on one :class:`RecordStore`, written by one
    :class:`RecordWriter` thread."""

    def __init__(self, store: RecordStore, reactor: Any, *, retention_days: int = 90,
                 capacity: int = CAPACITY, clock: Callable[[], float] = time.time) -> None:
        """``clock``: wall-clock now, for retention (tests inject one)."""
        self.store = store
        self.reactor = reactor
        self.retention_days = retention_days
        self.clock = clock
        self.writer = RecordWriter(store.write, reactor, capacity)

    def add(self, record: dict[str, Any]) -> None:
        """Queue an ended call's record (never blocks; a full queue drops, counted)."""
        self.writer.submit(record)

    def find(self, *, call_id: str | None = None, since: float | None = None,
             until: float | None = None, limit: int = 100) -> defer.Deferred[list[dict[str, Any]]]:
        """Records newest first (``since``/``until``: epoch seconds bounding the start);
        :class:`ValueError` naming the argument for a bad one."""
        _check(since, until, limit)
        return self.writer.call(lambda: self.store.find(call_id=call_id, since=since,
                                                        until=until, limit=limit))

    def export_csv(self, *, call_id: str | None = None, since: float | None = None,
                   until: float | None = None, limit: int = 100) -> defer.Deferred[str]:
        """The same records as :meth:`find`, as CSV (:func:`wcsgw.records.export.to_csv`)."""
        return self.find(call_id=call_id, since=since, until=until,
                         limit=limit).addCallback(to_csv)

    def expire(self) -> defer.Deferred[int]:
        """Retention: delete the records of calls that ended more than ``retention_days``
        ago (0: none ever); fires with how many went."""
        if self.retention_days <= 0:
            return defer.succeed(0)
        before = self.clock() - self.retention_days * DAY

        def done(count: int) -> int:
            if count:
                log.info("call records: {count} older than {days} days deleted", count=count,
                         days=self.retention_days)
            return count

        return self.writer.call(lambda: self.store.delete_ended_before(before)).addCallback(done)

    def start(self) -> None:
        self.writer.start()

    def stop(self, timeout: float) -> defer.Deferred[None]:
        """Write what is queued (at most ``timeout`` seconds), then close the database."""
        return self.writer.stop(timeout).addCallback(lambda _: self.store.close())
