"""Session resume as the gateway runs it: the :class:`~wcsgw.calls.resume.ResumeBook` on the
reactor's clock, one timer per detached session, and the hand-over of a session to a new socket.

Why apart from :mod:`wcsgw.calls.gateway`: the gateway stays the one face of sessions and
calls (``close_session``, ``resume`` ...) and delegates here; the rules themselves are the
sans-IO :mod:`wcsgw.calls.resume`.  Tokens never reach a log line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from twisted.logger import Logger

from wcsgw.calls.errors import CallError, Codes
from wcsgw.calls.resume import ResumeBook

if TYPE_CHECKING:
    from wcsgw.calls.gateway import CallGateway
    from wcsgw.calls.sessions import Session

__all__ = ["Resumer"]

log = Logger(namespace="wcsgw.calls")

EXPIRED = "Session expired or unknown authToken"


class Resumer:
    """Detaches sessions whose socket went, ends them when their window is over, and hands
    them to the socket that comes back with their token.

    ``scheduler``: ``callLater``/``seconds`` (the reactor; tests inject a
    ``twisted.internet.task.Clock``).  The window is the gateway's ``resume_seconds``
    (``http.resume_seconds``): 0 = a dropped socket ends its session at once, as before
    resume existed."""

    def __init__(self, gateway: "CallGateway", scheduler: Any = None) -> None:
        self.gateway = gateway
        self._scheduler = scheduler
        self.book = ResumeBook()
        self._timers: dict[str, Any] = {}
        #: the gateway is going away (hangup_all): a socket that drops from now on ends its
        #: session at once, nothing would resume it
        self.stopped = False

    @property
    def seconds(self) -> float:
        return float(self.gateway.resume_seconds)

    @property
    def scheduler(self) -> Any:
        if self._scheduler is None:
            from twisted.internet import reactor

            self._scheduler = reactor
        return self._scheduler

    def issue(self, session: "Session") -> str:
        """A fresh token for a connected ``session`` (its earlier one dies)."""
        return self.book.issue(session.id)

    def detach(self, session: "Session") -> bool:
        """``session``'s socket went: keep it for the resume window (True), or False when it
        should end now (never connected, resume off, gateway stopping)."""
        if not session.connected or self.seconds <= 0 or self.stopped:
            return False
        relay = session.relay
        if relay is None or not relay.attached:
            return True  # detached already (a second close for the same socket)
        relay.detach()
        self.book.detach(session.id, self.scheduler.seconds(), self.seconds)
        self._cancel(session.id)
        self._timers[session.id] = self.scheduler.callLater(
            self.seconds, self._expire, session.id)
        log.info("session {session_id} detached: its calls and registration wait {seconds} s "
                 "for a resume", session_id=session.id, seconds=self.seconds)
        return True

    def resume(self, fresh_id: str, token: str,
               on_session: Callable[[str], None] = lambda session_id: None) -> tuple[str, str]:
        """The socket of session ``fresh_id`` (opened, never connected) takes over the
        session ``token`` belongs to; returns (that session's id, its new token).

        The fresh session is dropped; ``on_session`` hears the resumed id before anything is
        sent to the socket under it; a socket the session still had (a half-open connection)
        is told it was superseded; then the socket hears what queued, in order, the
        session's current ``sessionStatus`` and a ``callStatus`` per live call."""
        gateway = self.gateway
        fresh = gateway._session(fresh_id)
        if fresh.connected:
            raise CallError(Codes.BAD_STATE, "already connected; disconnect first")
        session_id = self.book.take(token, self.scheduler.seconds())
        session = gateway.sessions.get(session_id) if session_id is not None else None
        if session is None or not session.connected or session.relay is None:
            if session_id is not None:
                self.book.forget(session_id)
            raise CallError(Codes.SESSION_EXPIRED, EXPIRED, "authToken")
        self._cancel(session.id)
        gateway.sessions.pop(fresh_id, None)
        self.book.forget(fresh_id)
        socket = fresh.relay.socket if fresh.relay is not None else fresh.listener
        session.peer = fresh.peer  # counted under the new socket's address from now on
        new_token = self.book.issue(session.id)
        on_session(session.id)
        relay = session.relay
        previous = relay.attach(socket)
        if previous is not None:
            superseded = getattr(previous, "superseded", None)
            if callable(superseded):
                superseded()
        dropped = relay.flush()
        if relay.last_status is not None:
            relay.session_status(*relay.last_status)
        for call in list(session.calls.values()):
            relay.call_status(call.describe())
        log.info("session {session_id} resumed from {peer}{half_open}{dropped}",
                 session_id=session.id, peer=session.peer,
                 half_open=" (its old socket was still open: closed)" if previous else "",
                 dropped=f"; {dropped} queued notifications were dropped" if dropped else "")
        return session.id, new_token

    def forget(self, session_id: str) -> None:
        """``session_id`` disconnected or ended: its token dies, its timer goes."""
        self.book.forget(session_id)
        self._cancel(session_id)

    def stop(self) -> list[str]:
        """The gateway is going away: no detaching from now on; returns the detached
        sessions (the caller ends them), their timers cancelled."""
        self.stopped = True
        detached = self.book.detached()
        for session_id in detached:
            self.forget(session_id)
        return detached

    def _expire(self, session_id: str) -> None:
        self._timers.pop(session_id, None)
        deadline = self.book.deadline(session_id)
        if deadline is None:
            return
        now = self.scheduler.seconds()
        if deadline > now:  # a clock that fired early: wait the rest
            self._timers[session_id] = self.scheduler.callLater(
                deadline - now, self._expire, session_id)
            return
        self.book.forget(session_id)
        log.info("session {session_id} was not resumed within {seconds} s: ended",
                 session_id=session_id, seconds=self.seconds)
        self.gateway.end_session(session_id)

    def _cancel(self, session_id: str) -> None:
        timer = self._timers.pop(session_id, None)
        if timer is not None and timer.active():
            timer.cancel()
