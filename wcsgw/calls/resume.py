"""Session resume, the bookkeeping: tokens, resume windows, and what a session hears meanwhile.

Why: a WebSocket drops for reasons that have nothing to do with the call (a phone moving from
Wi-Fi to LTE, a proxy's idle timeout), while the media path does not go through it at all.  So
a dropped socket *detaches* its session instead of ending it: the registration and the calls
stay up for ``http.resume_seconds``, and a ``connect {authToken}`` on a new socket takes the
session over (docs/websocket-api.md, "Resuming a session").

This module holds no sockets and no timers; "now" comes in as a number, so every rule is
unit-tested with a fake clock (tests.test_calls_resume):

* :class:`ResumeBook` — the tokens (kept only as SHA-256 digests: a memory dump or a log line
  of the book gives nobody a session) and the deadlines of detached sessions.  A token is good
  for one session and one resume; using it, a ``disconnect`` or the window running out kills
  it.
* :class:`Relay` — the listener the call layer talks to for a session: it forwards to the
  session's socket while one is attached and queues (bounded) while none is, so a resumed
  browser hears what it missed, in order.

:mod:`wcsgw.calls.resuming` composes them with the reactor's clock for the gateway.
"""

from __future__ import annotations

import collections
import hashlib
import secrets
from typing import Any, Callable

from twisted.logger import Logger

__all__ = ["MAX_QUEUED", "Relay", "ResumeBook", "digest", "new_token"]

log = Logger(namespace="wcsgw.calls")

#: notifications a detached session keeps for its browser; past that the oldest go (the
#: re-announcement on resume still tells the current state of the session and every call)
MAX_QUEUED = 500


def new_token() -> str:
    """A fresh ``authToken``: 256 random bits, URL-safe text."""
    return secrets.token_urlsafe(32)


def digest(token: str) -> str:
    """What the book keeps of a token: its SHA-256 (hex)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class ResumeBook:
    """Which token resumes which session, and until when a detached session may be resumed.

    A connected session has one live token (the last one :meth:`issue` gave it); a session
    with a deadline is detached.  Nothing here ends a session: the caller asks
    :meth:`expired` and ends what it returns."""

    def __init__(self, make_token: Callable[[], str] = new_token) -> None:
        self._make_token = make_token
        self._session_of: dict[str, str] = {}  # digest -> session id
        self._digest_of: dict[str, str] = {}  # session id -> digest
        self._deadline: dict[str, float] = {}  # detached session id -> when its window ends
        #: told (session id, digest of its live token or None) at each change: the cluster
        #: mirrors which node holds which token (wcsgw.cluster.state)
        self.watch: Callable[[str, str | None], None] = lambda session_id, key: None

    def issue(self, session_id: str) -> str:
        """A new token for ``session_id``; the one it had before is dead."""
        self._kill(session_id)
        token = self._make_token()
        key = digest(token)
        self._session_of[key] = session_id
        self._digest_of[session_id] = key
        self.watch(session_id, key)
        return token

    def detach(self, session_id: str, now: float, seconds: float) -> float:
        """``session_id`` lost its socket at ``now``: it may be resumed until the deadline
        returned.  Its token stays good until then."""
        deadline = now + seconds
        self._deadline[session_id] = deadline
        return deadline

    def take(self, token: str, now: float) -> str | None:
        """The session ``token`` resumes, attached again (no deadline); the token is used up.
        None for a token never issued, used already, killed, or whose window is over at
        ``now`` (that session is left for :meth:`expired`)."""
        key = digest(token)
        session_id = self._session_of.get(key)
        if session_id is None:
            return None
        deadline = self._deadline.get(session_id)
        if deadline is not None and deadline <= now:
            return None
        self._kill(session_id)
        self._deadline.pop(session_id, None)
        return session_id

    def forget(self, session_id: str) -> None:
        """``session_id`` ended or disconnected: no token of it works any more."""
        self._kill(session_id)
        self._deadline.pop(session_id, None)

    def deadline(self, session_id: str) -> float | None:
        """When the detached ``session_id`` ends unless resumed (None: not detached)."""
        return self._deadline.get(session_id)

    def expired(self, now: float) -> list[str]:
        """The detached sessions whose window is over at ``now``, forgotten here (the
        caller ends them), earliest first."""
        over = sorted((deadline, sid) for sid, deadline in self._deadline.items()
                      if deadline <= now)
        for _deadline, session_id in over:
            self.forget(session_id)
        return [session_id for _deadline, session_id in over]

    def detached(self) -> list[str]:
        return list(self._deadline)

    def __len__(self) -> int:
        """Live tokens (for tests and a leak check)."""
        return len(self._session_of)

    def _kill(self, session_id: str) -> None:
        key = self._digest_of.pop(session_id, None)
        if key is not None:
            self._session_of.pop(key, None)
            self.watch(session_id, None)


class Relay:
    """A session's listener as its calls and registration see it (the same object for the
    session's whole life, so callbacks bound at a call's start keep working across sockets).

    Attached: everything goes straight to the socket (the WebSocket's listener).  Detached:
    ``sessionStatus``, ``callStatus`` and every other notification are queued, at most
    ``limit`` (the oldest go first), and :meth:`flush` hands them to the next socket in the
    order they happened.  The last ``sessionStatus`` is remembered for the re-announcement."""

    def __init__(self, socket: Any, limit: int = MAX_QUEUED, session_id: str = "") -> None:
        self.socket: Any | None = socket
        self.session_id = session_id
        #: whether the socket takes notifications other than the two statuses (a test's
        #: listener may not): without, calls get no ``notify`` (wcsgw.calls.gateway._hooks)
        self.notifies = callable(getattr(socket, "notify", None))
        self.queue: collections.deque[tuple[str, tuple[Any, ...]]] = collections.deque(
            maxlen=limit)
        #: notifications that fell off the queue while detached (reset by :meth:`flush`)
        self.dropped = 0
        #: the last ``sessionStatus`` (status, sipStatus, info), None before the first
        self.last_status: tuple[str, int | None, str] | None = None

    # -- SessionListener -------------------------------------------------------------------

    def session_status(self, status: str, sip_status: int | None, info: str) -> None:
        self.last_status = (status, sip_status, info)
        self._pass("session_status", (status, sip_status, info))

    def call_status(self, call: Any) -> None:
        self._pass("call_status", (call,))

    def notify(self, method: str, params: Any) -> None:
        self._pass("notify", (method, params))

    def deliver(self, run: Callable[[], str | None]) -> None:
        """A response that waited on a hook (wcsgw.api.asking.deliver): the socket sends it
        ahead of what its work causes.  Detached, the work still runs (its notifications
        queue) and the response has nobody to go to."""
        socket = self.socket
        own = getattr(socket, "deliver", None) if socket is not None else None
        if own is not None:
            own(run)
            return
        reply = run()
        if reply is not None and socket is not None and hasattr(socket, "reply"):
            socket.reply(reply)

    def __getattr__(self, name: str) -> Any:
        # Whatever else the socket offers (a test listener's ``reply`` ...), while attached.
        socket = self.__dict__.get("socket")
        if socket is None:
            raise AttributeError(name)
        return getattr(socket, name)

    # -- detach / attach --------------------------------------------------------------------

    @property
    def attached(self) -> bool:
        return self.socket is not None

    def detach(self) -> Any | None:
        """The socket is gone: queue from now on.  Returns the socket it had."""
        socket, self.socket = self.socket, None
        return socket

    def attach(self, socket: Any) -> Any | None:
        """``socket`` hears this session from now on (what queued meanwhile waits for
        :meth:`flush`).  Returns the socket it replaces (None when it was detached; else a
        half-open connection the caller should close)."""
        previous, self.socket = self.socket, socket
        return previous if previous is not socket else None

    def flush(self) -> int:
        """Hand everything queued to the attached socket, oldest first; returns how many
        fell off the queue while detached."""
        dropped, self.dropped = self.dropped, 0
        while self.queue and self.socket is not None:
            name, args = self.queue.popleft()
            self._send(name, args)
        return dropped

    def _pass(self, name: str, args: tuple[Any, ...]) -> None:
        if self.socket is not None:
            self._send(name, args)
            return
        if len(self.queue) == self.queue.maxlen:
            if not self.dropped:
                log.warn("session {session_id}: more than {limit} notifications while detached; "
                         "the oldest are dropped", session_id=self.session_id,
                         limit=self.queue.maxlen)
            self.dropped += 1
        self.queue.append((name, args))

    def _send(self, name: str, args: tuple[Any, ...]) -> None:
        method = getattr(self.socket, name, None)
        if method is not None:
            method(*args)
