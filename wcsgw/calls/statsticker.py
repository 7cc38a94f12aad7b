"""The ``callStats`` notification: every call with media tells its session how it sounds, every
5 s (docs/websocket-api.md).

Why one timer for all calls: a timer per call would cost a reactor entry per call for a figure
nobody needs more precisely than "every few seconds"; one ``LoopingCall`` that runs only while
some call is live samples them all. It follows the calls as a registry watcher
(:attr:`~wcsgw.calls.registry.CallRegistry.watchers`), so no call code knows about it, and keeps
each call's counters of the last sample so the notification says what happened *since then*
(wcsgw.calls.callstats). Not a hook notice: five-second samples are for eyes on a live call;
the call record (``cdr``) carries the summary.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from wcsgw.calls.callstats import call_stats, media_counters

__all__ = ["INTERVAL", "StatsTicker", "session_attached"]

log = Logger(namespace="wcsgw.calls")

#: seconds between two ``callStats`` of a call
INTERVAL = 5.0


def session_attached(sessions: Mapping[str, Any]) -> Callable[[Any], bool]:
    """``listening`` for a gateway's sessions (wcsgw.calls.sessions.Session by id): a call is
    heard while its session exists and its socket is attached (its ``relay`` has one)."""

    def listening(call: Any) -> bool:
        session = sessions.get(call.session_id) if call.session_id else None
        if session is None:
            return False
        relay = getattr(session, "relay", None)
        return relay is None or relay.socket is not None

    return listening


class StatsTicker:
    """A registry watcher sending ``callStats`` for every live call with media on one timer.

    ``listening(call)`` says whether the call's session would hear it now (False while its
    socket is gone: a resumable session's queue is for what matters, not for samples that
    are stale by the time it comes back)."""

    def __init__(self, clock: IReactorTime, interval: float = INTERVAL,
                 listening: Callable[[Any], bool] | None = None) -> None:
        self.clock = clock
        self.interval = interval
        self.listening = listening or (lambda call: True)
        self.calls: dict[str, Any] = {}
        #: each call's bridge counters at its last sample
        self.previous: dict[str, Any] = {}
        self._loop: LoopingCall | None = None

    # -- registry watcher ----------------------------------------------------------------

    def call_started(self, call: Any) -> None:
        self.calls[call.call_id] = call
        if self._loop is None:
            loop = LoopingCall(self.tick)
            loop.clock = self.clock
            self._loop = loop
            loop.start(self.interval, now=False).addErrback(
                lambda f: log.failure("callStats timer failed", f))

    def call_ended(self, call: Any) -> None:
        self.calls.pop(call.call_id, None)
        self.previous.pop(call.call_id, None)
        if not self.calls:
            self.stop()

    # ------------------------------------------------------------------------------------

    def stop(self) -> None:
        loop, self._loop = self._loop, None
        if loop is not None and loop.running:
            loop.stop()

    def tick(self) -> None:
        """Sample every live call that has media and tell its session."""
        for call_id, call in list(self.calls.items()):
            counters = media_counters(call)
            if counters is None or getattr(call, "bridge", None) is None:
                continue
            stats = call_stats(call, previous=self.previous.get(call_id, {}), counters=counters)
            self.previous[call_id] = counters
            if self.listening(call):
                call.notify("callStats", {"callId": call_id, **stats})
