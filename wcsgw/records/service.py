"""The call records in the service tree: started with the gateway, expired daily, flushed at
the end.

Why it waits for the calls before it flushes: twistd stops the services together, and the
call layer's stop ends every live call (BYE); those calls' records are written only if the
writer is still there when they end.  So the stop first waits (bounded) until the calls are
over, then writes what is queued (bounded) — a shutdown never hangs on a database.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.application.service import Service
from twisted.internet import defer
from twisted.logger import Logger

from wcsgw.records.book import DAY, CallRecords

__all__ = ["RecordsService"]

log = Logger(namespace="wcsgw.records")

#: how long the stop waits for the calls to end, then for the queue to be written
CALLS_WAIT = 3.0  # as long as the calls' own stop waits for them (calls.lifecycle)
FLUSH_WAIT = 10.0


class RecordsService(Service):
    """Starts ``records``, deletes old ones at start and every day, stops after
    ``calls_over()`` (a Deferred: no call left) has fired or ``CALLS_WAIT`` passed."""

    def __init__(self, records: CallRecords, reactor: Any,
                 calls_over: Callable[[], defer.Deferred[None]]) -> None:
        self.records = records
        self.reactor = reactor
        self.calls_over = calls_over
        self._timer: Any = None

    def startService(self) -> None:
        super().startService()  # type: ignore[no-untyped-call]
        self.records.start()
        self._expire()

    def _expire(self) -> None:
        self._timer = None
        if self.records.retention_days > 0:
            self.records.expire().addErrback(
                lambda failure: log.failure("call records: retention failed", failure))
            self._timer = self.reactor.callLater(DAY, self._expire)

    def stopService(self) -> defer.Deferred[None]:
        super().stopService()  # type: ignore[no-untyped-call]
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        # Our own Deferred: the one calls_over() gave may still fire after we gave up on it.
        over: defer.Deferred[None] = defer.Deferred()

        def release(_: object = None) -> None:
            if not over.called:
                over.callback(None)

        self.calls_over().addBoth(release)
        timer = self.reactor.callLater(CALLS_WAIT, release)

        def flush(_: Any) -> defer.Deferred[None]:
            if timer.active():
                timer.cancel()
            return self.records.stop(FLUSH_WAIT)

        return over.addBoth(flush)
