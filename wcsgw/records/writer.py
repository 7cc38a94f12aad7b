"""The call records off the event loop: a bounded queue to one worker thread.

Why one dedicated thread: a database write may take milliseconds (an fsync, a PostgreSQL
round trip) or stall (a database restarting), and the reactor runs every call's signalling;
so the reactor only appends to a bounded queue — never waits, drops with a count when full —
and one thread writes in batches, one transaction each.  Reads (find, export) run on the same
thread, behind the writes queued before them, so a record is found as soon as it is written;
SQLite's connections also stay on one thread.  Results come back to the reactor as Deferreds.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any, Callable

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

__all__ = ["CAPACITY", "RecordWriter"]

log = Logger(namespace="wcsgw.records")

#: records waiting to be written at most; beyond, new ones are dropped (and counted)
CAPACITY = 10_000
#: records written per transaction at most
BATCH = 500


class RecordWriter:
    """Queues records for ``write(batch)`` and jobs for ``call``, run on one thread.

    ``reactor`` must have ``callFromThread`` (results are handed back through it)."""

    def __init__(self, write: Callable[[list[dict[str, Any]]], None], reactor: Any,
                 capacity: int = CAPACITY) -> None:
        self._write = write
        self.reactor = reactor
        self.capacity = capacity
        #: records dropped because the queue was full, and records that failed to write
        self.dropped = 0
        self.failed = 0
        self.written = 0
        self._records: deque[dict[str, Any]] = deque()
        self._jobs: deque[tuple[Callable[[], Any], defer.Deferred[Any]]] = deque()
        self._wake = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._done: list[defer.Deferred[None]] = []

    @property
    def pending(self) -> int:
        return len(self._records)

    def submit(self, record: dict[str, Any]) -> None:
        """Queue one record; never blocks (a full queue drops it, counted and logged)."""
        with self._wake:
            if len(self._records) >= self.capacity or self._stopping:
                self.dropped += 1
                dropped = self.dropped
            else:
                self._records.append(record)
                self._wake.notify()
                return
        if dropped == 1 or dropped % 1000 == 0:
            log.warn("call records: queue full ({capacity}), {dropped} record(s) dropped so "
                     "far", capacity=self.capacity, dropped=dropped)

    def call(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        """Run ``job()`` on the thread after the records queued so far; its result (or
        failure) as a Deferred on the reactor."""
        d: defer.Deferred[Any] = defer.Deferred()
        with self._wake:
            if self._stopping:
                return defer.fail(RuntimeError("call records are stopped"))
            self._jobs.append((job, d))
            self._wake.notify()
        return d

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="wcsgw-records", daemon=True)
        self._thread.start()

    def stop(self, timeout: float) -> defer.Deferred[None]:
        """Write what is queued, then end the thread; fires when it ended or after
        ``timeout`` seconds (what is left then is lost, counted in ``dropped``)."""
        d: defer.Deferred[None] = defer.Deferred()
        with self._wake:
            self._stopping = True
            self._wake.notify()
        if self._thread is None or not self._thread.is_alive():
            return defer.succeed(None)
        self._done.append(d)
        timer = self.reactor.callLater(timeout, self._gave_up)

        def settled(result: Any) -> Any:
            if timer.active():
                timer.cancel()
            return result

        return d.addBoth(settled)

    def _gave_up(self) -> None:
        with self._wake:
            left = len(self._records)
            self.dropped += left
            self._records.clear()
        log.warn("call records: stopped with {left} record(s) not written", left=left)
        self._finished()

    def _finished(self) -> None:
        done, self._done = self._done, []
        for d in done:
            d.callback(None)

    # -- the thread ---------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._records and not self._jobs and not self._stopping:
                    self._wake.wait()
                batch = [self._records.popleft()
                         for _ in range(min(BATCH, len(self._records)))]
                job = self._jobs.popleft() if self._jobs and not batch else None
                if not batch and job is None and self._stopping:
                    break
            if batch:
                self._write_batch(batch)
            if job is not None:
                self._run_job(*job)
        self.reactor.callFromThread(self._finished)

    def _write_batch(self, batch: list[dict[str, Any]]) -> None:
        try:
            self._write(batch)
            self.written += len(batch)
        except Exception:  # noqa: BLE001 - a database error must not end the writer
            self.failed += len(batch)
            self.reactor.callFromThread(log.failure, "call records: {n} record(s) not written",
                                        Failure(), n=len(batch))  # type: ignore[no-untyped-call]

    def _run_job(self, job: Callable[[], Any], d: defer.Deferred[Any]) -> None:
        try:
            result = job()
        except Exception:  # noqa: BLE001 - the caller's Deferred gets it
            self.reactor.callFromThread(d.errback, Failure())  # type: ignore[no-untyped-call]
        else:
            self.reactor.callFromThread(d.callback, result)
