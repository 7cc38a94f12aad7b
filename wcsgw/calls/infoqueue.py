"""The SIP INFO a call sends, one at a time: DTMF digits (``application/dtmf-relay``) and
video key-frame requests (RFC 5168 ``picture_fast_update``).

Why a queue: the answers to INFO requests of one dialog are not told apart by the call (a
digit's 200 looks like a key-frame request's), so only one is in flight and the next goes
when its final answer (:meth:`InfoQueue.answered`) comes.  A key-frame request jumps the
queue: a frozen picture waits on it, a digit can wait 100 ms.

Built by the call environment's ``info_queue`` factory (:class:`~wcsgw.calls.call.
CallEnvironment`), so a test can give a call another; the call feeds it the SIP leg's
``InfoAnswered`` and closes it when the call ends.
"""

from __future__ import annotations

from typing import Callable

from wcsgw.calls.errors import CallError, Codes
from wcsgw.sip.info import dtmf_relay_body
from wcsgw.sip.mediacontrol import MEDIA_CONTROL, picture_fast_update_body

__all__ = ["FAST_UPDATE", "InfoQueue"]

#: The queue's entry for a video key-frame request (DTMF entries are single digits).
FAST_UPDATE = "picture_fast_update"


class InfoQueue:
    """INFO to send in the call's current dialog, in order, one at a time."""

    def __init__(self, send: Callable[[str, bytes], None],
                 fast_update_answered: Callable[[int | None], None]) -> None:
        """``send(content_type, body)``: an INFO in the call's current dialog (raises
        RuntimeError when the dialog cannot send one now); ``fast_update_answered(status)``:
        a key-frame request was answered (None: no answer, or it was never sent)."""
        self._send = send
        self._fast_update_answered = fast_update_answered
        self._queue: list[str] = []
        #: the INFO in flight (an entry of the queue), None when none is
        self._busy: str | None = None
        self._closed = False

    def send_digits(self, digits: str) -> None:
        """Queue one INFO per digit.  :class:`CallError` (field ``type``) when the dialog
        cannot send INFO now; what was queued is dropped then."""
        self._queue.extend(digits)
        self._next()

    def fast_update(self) -> bool:
        """Queue a key-frame request ahead of any digits; False when it cannot be sent (the
        queue was dropped and ``fast_update_answered(None)`` told)."""
        self._queue.insert(0, FAST_UPDATE)
        try:
            self._next()
        except CallError:
            return False
        return True

    def answered(self, status: int | None) -> None:
        """The final answer to the INFO in flight came: the next one goes."""
        sent, self._busy = self._busy, None
        if sent == FAST_UPDATE:
            self._fast_update_answered(status)
        self._next()

    def close(self) -> None:
        """The call ended: nothing more is sent."""
        self._closed = True

    def _next(self) -> None:
        if self._busy or not self._queue or self._closed:
            return
        item = self._queue.pop(0)
        if item == FAST_UPDATE:
            content_type, body = MEDIA_CONTROL, picture_fast_update_body()
        else:
            content_type, body = "application/dtmf-relay", dtmf_relay_body(item)
        try:
            self._send(content_type, body)
        except RuntimeError as exc:
            dropped = [item] + self._queue
            self._queue.clear()
            if FAST_UPDATE in dropped:
                self._fast_update_answered(None)
            raise CallError(Codes.BAD_STATE, f"cannot send INFO now: {exc}", "type") from None
        self._busy = item
