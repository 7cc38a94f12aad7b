"""A call's media supervision: is RTP still coming, and the RTCP reports that are due.

Why an object of its own: the check runs on a timer for the whole life of the call, apart
from anything the call's signalling does; the call only tells it when the media starts
(:meth:`Supervision.watch`, which starts the ticking: whatever kind of call it is —
outgoing, incoming, handed, file — supervision begins with its media) and when the call
ends (:meth:`Supervision.stop`), and hears back one thing, that the media went silent
(``on_silence``).  Built by the call environment's ``supervision`` factory, so a test can
give a call another.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet import task

from wcsgw.calls.status import CallStatus

__all__ = ["MEDIA_TICK", "Supervision"]

#: How often the call looks at RTP activity and sends RTCP reports.
MEDIA_TICK = 1.0


class Supervision:
    """Once a second: fail the call when no RTP came for ``rtp_timeout`` while it is
    ESTABLISHED (on HOLD one side may rightly send nothing: the check pauses and resumes
    afresh), and have the media session send the RTCP that is due."""

    def __init__(self, reactor: Any, rtp_timeout: float, *, status: Callable[[], CallStatus],
                 on_silence: Callable[[], None]) -> None:
        """``status()``: the call's status now; ``on_silence()``: RTP stopped (the call
        fails; supervision stops by the call's :meth:`stop`)."""
        self.reactor = reactor
        self.rtp_timeout = rtp_timeout
        self._status = status
        self._on_silence = on_silence
        self._bridge: Any = None  # wcsgw.media.bridge.MediaBridge, once media flows
        self._media: Any = None  # wcsgw.media.session.MediaSession
        self._ticker: task.LoopingCall | None = None

    def watch(self, bridge: Any, media: Any) -> None:
        """The media started: from now on its activity is checked and reported, once a
        second (a new bridge after a re-wiring keeps the one ticker)."""
        self._bridge, self._media = bridge, media
        if self._ticker is None:
            self._ticker = task.LoopingCall(self._tick)
            self._ticker.clock = self.reactor
            self._ticker.start(MEDIA_TICK, now=False)

    def stop(self) -> None:
        if self._ticker is not None and self._ticker.running:
            self._ticker.stop()
        self._ticker = None
        self._bridge = self._media = None

    def _tick(self) -> None:
        bridge = self._bridge
        if bridge is None:
            return
        now = self.reactor.seconds()
        status = self._status()
        if status is CallStatus.HOLD:
            bridge.mark_active(now)
        elif status is CallStatus.ESTABLISHED and bridge.inactive_for(now) > self.rtp_timeout:
            self._on_silence()
            return
        if self._media is not None:
            self._media.report(now)
