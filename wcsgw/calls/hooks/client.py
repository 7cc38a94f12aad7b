"""The one Twisted adapter of the hooks: POST a signed body, read a bounded reply.

Why so little: everything the gateway decides about a reply is in :mod:`.replies`.  This
adapter only moves bytes: ``twisted.web.client.Agent`` (which follows no redirect: a 3xx is
a non-2xx, so refused), a deadline that cancels the request, and a reply body read up to
:data:`MAX_REPLY` bytes — a larger one fails the request instead of filling memory.
"""

from __future__ import annotations

from io import BytesIO
from typing import Any, cast

from twisted.internet import defer, protocol
from twisted.web.client import Agent, FileBodyProducer, HTTPConnectionPool, ResponseDone
from twisted.web.http_headers import Headers
from twisted.web.iweb import IResponse

from wcsgw.calls.hooks.signing import HEADER, sign

__all__ = ["HookClient", "MAX_REPLY", "ReplyTooLarge"]

#: the largest reply body read (a decision is a few small fields)
MAX_REPLY = 64 * 1024


class ReplyTooLarge(Exception):
    """The backend's reply body is over :data:`MAX_REPLY`."""


class _Body(protocol.Protocol):
    def __init__(self, done: defer.Deferred[bytes], limit: int) -> None:
        self.done, self.limit, self.size = done, limit, 0
        self.parts: list[bytes] = []

    def dataReceived(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.limit:
            if not self.done.called:
                self.done.errback(ReplyTooLarge(f"reply over {self.limit} bytes"))
            if self.transport is not None:
                self.transport.stopProducing()
            return
        self.parts.append(data)

    def connectionLost(self, reason: Any = None) -> None:
        if self.done.called:
            return
        if reason is None or reason.check(ResponseDone):
            self.done.callback(b"".join(self.parts))
        else:
            self.done.errback(reason)


class HookClient:
    """POSTs hook bodies: :meth:`post` fires with ``(status, body)`` or fails (connection
    error, reply too large, cancelled by the caller's deadline)."""

    def __init__(self, reactor: Any, user_agent: str = "wcsgw-hooks") -> None:
        self.reactor = reactor
        # Not persistent: a kept-alive connection would outlive a stopped gateway, and a hook
        # request is rare next to the call it decides.
        pool = HTTPConnectionPool(reactor, persistent=False)  # type: ignore[no-untyped-call]
        self.pool = pool
        self.agent = Agent(reactor, pool=pool)  # type: ignore[no-untyped-call]
        self.user_agent = user_agent

    def close(self) -> defer.Deferred[None]:
        """Close the kept-alive connections (at shutdown)."""
        return self.pool.closeCachedConnections()  # type: ignore[no-any-return,no-untyped-call]

    def post(self, url: str, secret: str, body: bytes, timeout: float) -> defer.Deferred[tuple[int, bytes]]:
        headers = Headers({
            "Content-Type": ["application/json"],
            "User-Agent": [self.user_agent],
            HEADER: [sign(secret, body, int(self.reactor.seconds()))],
        })
        producer = FileBodyProducer(BytesIO(body))  # type: ignore[no-untyped-call]
        d: defer.Deferred[Any] = self.agent.request(b"POST", url.encode(), headers,
                                                    cast(Any, producer))

        def read(response: IResponse) -> defer.Deferred[tuple[int, bytes]]:
            def stop(_: Any) -> None:  # cancelled (the deadline): stop reading the body
                if reader.transport is not None:
                    reader.transport.stopProducing()

            done: defer.Deferred[bytes] = defer.Deferred(stop)
            reader = _Body(done, MAX_REPLY)
            cast(Any, response).deliverBody(reader)
            return done.addCallback(lambda data: (response.code, data))

        d.addCallback(read)  # the deadline is the caller's (Hooks._post): cancelling stops it
        return cast("defer.Deferred[tuple[int, bytes]]", d)


def make_hooks(apps: Any, reactor: Any) -> Any:
    """The gateway's :class:`~wcsgw.calls.hooks.runtime.Hooks` for ``[[apps]]`` settings."""
    from wcsgw.calls.hooks.runtime import App, Hooks

    return Hooks([App(a.key, a.hook_url, a.secret, a.timeout) for a in apps],
                 HookClient(reactor), reactor)
