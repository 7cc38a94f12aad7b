"""The hooks as the gateway runs them: which app a session belongs to, decisions asked over
HTTP, notices queued and delivered (docs/hooks.md).

Why a Deferred per decision and nothing more: only the one request that waits on the backend
waits; every other session and call goes on in the same reactor.  The notices go through the
sans-IO :class:`~wcsgw.calls.hooks.queue.NoticeQueue` with one timer, so a slow or dead
backend costs queued notices (bounded, counted), never signalling or media.
"""

from __future__ import annotations

import enum
import json
from typing import Any, Iterable, Mapping, Protocol

import attr
from twisted.internet import defer
from twisted.logger import Logger

from wcsgw.calls.errors import CallError, Codes
from wcsgw.calls.hooks.queue import NoticeQueue
from wcsgw.calls.hooks.replies import Decision, read_reply, refused

__all__ = ["App", "Hooks", "Poster", "encode"]

log = Logger(namespace="wcsgw.hooks")


@attr.s(auto_attribs=True, frozen=True)
class App:
    """An ``[[apps]]`` entry: ``key`` "" is the app of sessions that send no ``appKey``."""

    key: str
    hook_url: str
    secret: str = attr.ib(repr=False)
    timeout: float = 5.0


class Poster(Protocol):
    """What :class:`Hooks` needs of the HTTP adapter (:class:`.client.HookClient`)."""

    def post(self, url: str, secret: str, body: bytes,
             timeout: float) -> defer.Deferred[tuple[int, bytes]]: ...


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def encode(event: str, app: App, session_id: str | None, fields: Mapping[str, Any]) -> bytes:
    """The request body: ``{"event", "appKey", "sessionId", ...}`` (docs/contract.md)."""
    body = {"event": event, "appKey": app.key, "sessionId": session_id, **fields}
    return json.dumps(body, default=_plain, separators=(",", ":")).encode()


class Hooks:
    """The ``[[apps]]`` of one gateway.  No apps: :attr:`enabled` is false and nothing here
    is ever called (everything as without hooks)."""

    def __init__(self, apps: Iterable[App], poster: Poster, reactor: Any,
                 queue: NoticeQueue | None = None) -> None:
        self.apps = {app.key: app for app in apps}
        self.poster = poster
        self.reactor = reactor
        self.queue = queue or NoticeQueue()
        self._timer: Any = None
        self._stopped = False
        #: counters for /metrics: decision and notice requests, and those that failed
        self.requests = 0
        self.failures = 0

    @property
    def enabled(self) -> bool:
        return bool(self.apps)

    def app_for(self, app_key: str) -> App | None:
        """The app of a session's ``appKey`` (None: no apps configured).  With apps, an
        ``appKey`` naming none is refused — a page cannot opt out of its backend's say by
        inventing a key."""
        if not self.apps:
            return None
        app = self.apps.get(app_key)
        if app is None:
            raise CallError(Codes.FORBIDDEN, "unknown appKey" if app_key else
                            "appKey is required", "appKey")
        return app

    # -- decisions ------------------------------------------------------------------------

    def decide(self, app: App, event: str, session_id: str | None,
               fields: Mapping[str, Any]) -> defer.Deferred[Decision]:
        """Ask the backend; fires with a :class:`Decision` — never fails: no answer in
        ``app.timeout``, an error or a non-2xx is a refusal (fail closed)."""
        body = encode(event, app, session_id, fields)
        self.requests += 1
        d = self._post(app, body)

        def answered(reply: tuple[int, bytes]) -> Decision:
            status, data = reply
            if not 200 <= status < 300:
                self.failures += 1
            return read_reply(event, status, data)

        def failed(failure: Any) -> Decision:
            self.failures += 1
            log.info("hook {event} to app {app!r} failed: {why}", event=event, app=app.key,
                     why=failure.getErrorMessage() or failure.type.__name__,
                     session_id=session_id, call_id=fields.get("callId"))
            return refused()

        return d.addCallbacks(answered, failed)

    def _post(self, app: App, body: bytes) -> defer.Deferred[tuple[int, bytes]]:
        """One request, cancelled (so failed) when ``app.timeout`` passes on our reactor."""
        d = self.poster.post(app.hook_url, app.secret, body, app.timeout)
        return d.addTimeout(app.timeout, self.reactor)

    # -- notices --------------------------------------------------------------------------

    def notice(self, app: App, key: str, event: str, session_id: str | None,
               fields: Mapping[str, Any]) -> None:
        """Queue a notice event behind the others of ``key`` (a callId or the session id)."""
        self.queue.push(key, (app, encode(event, app, session_id, fields)),
                        self.reactor.seconds())
        self._pump()

    def _pump(self) -> None:
        if self._stopped:
            return
        now = self.reactor.seconds()
        for notice in self.queue.due(now):
            app, body = notice.item
            self.requests += 1
            d = self._post(app, body)
            d.addCallbacks(lambda reply, n=notice: self._sent(n, 200 <= reply[0] < 300),
                           lambda failure, n=notice: self._sent(n, False))
        self._arm()

    def _sent(self, notice: Any, ok: bool) -> None:
        if not ok:
            self.failures += 1
        self.queue.done(notice, ok, self.reactor.seconds())
        self._pump()

    def _arm(self) -> None:
        deadline = self.queue.next_deadline()
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if deadline is not None:
            delay = max(0.0, deadline - self.reactor.seconds())
            self._timer = self.reactor.callLater(delay, self._wake)

    def _wake(self) -> None:
        self._timer = None
        self._pump()

    def stop(self) -> None:
        """At shutdown: no timer is left (what is still queued is not delivered), and the
        HTTP adapter's kept-alive connections are closed."""
        self._stopped = True
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        close = getattr(self.poster, "close", None)
        if close is not None:
            close()
