"""What a call asks of each of its two legs, whatever the leg is.

A call (wcsgw.calls.call) coordinates two legs: the near one — the browser's WebRTC leg, as
the offerer of the call (wcsgw.calls.browserleg.OfferingBrowser) or as the answerer of the
gateway's offer (AnsweringBrowser), or a file leg for REST calls with server-side media
(wcsgw.calls.filecall.FileLeg) — and the far one, the SIP leg, as UAC or UAS
(wcsgw.calls.sipleg).  Each leg tells the call what happens in one vocabulary, the call-control
events of wcsgw.calls.events (a ring, a connect, a re-offer, a digit, a transfer request, a
disconnect, a failure, media that could not be set up), handed to the listener the call gives
:meth:`Leg.listen`; the call never learns which protocol said so.

What every leg can be asked is this small interface; what only one kind can do (re-INVITE on
the SIP side, the SDP offer/answer with the page) stays on that kind, and the call asks it of
the leg that has it.
"""

from __future__ import annotations

import abc
from typing import Any, Callable

__all__ = ["Leg", "Listener"]

#: Where a leg's call-control events go (wcsgw.calls.events).
Listener = Callable[[Any], None]


class Leg(abc.ABC):
    """One side of a call (see the module docstring)."""

    #: the call's listener; None before it listens (events then are heard by nobody)
    _listener: Listener | None = None

    def listen(self, listener: Listener) -> None:
        """Hand this leg's call-control events to ``listener`` from now on."""
        self._listener = listener

    def emit(self, event: Any) -> None:
        """Tell the call ``event`` (a call-control event)."""
        if self._listener is not None:
            self._listener(event)

    @abc.abstractmethod
    def start(self, now: float) -> None:
        """The leg begins: the INVITE goes out or the caller hears ringing (SIP), the media
        handshake with the page starts (browser), the file plays (file)."""

    @abc.abstractmethod
    def hangup(self, now: float) -> None:
        """End the leg from our side, whatever its state; idempotent."""
