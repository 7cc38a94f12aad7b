"""The Redis connection: redis-py's asyncio client on Twisted's asyncio reactor.

Why this thin: the cluster's logic (:mod:`wcsgw.cluster.state`) speaks in batches of plain
commands — ``("set", (key, value), {"ex": 4})`` — that run as one pipeline, one round trip;
so the tests can give it an in-memory store with the same :meth:`RedisStore.execute`, and
this module is only the bridge from an asyncio coroutine to a Deferred.  ``redis`` is
imported here, and this module only when ``[cluster] redis_url`` is set: a gateway without
it never imports redis.

A Redis that is down must not hold anything up: connecting and each reply time out after
``timeout`` seconds, no retries inside the client (the next batch simply tries again, on a
new connection: the client reconnects by itself).
"""

from __future__ import annotations

import asyncio
from typing import Any, Sequence

from twisted.internet import defer

__all__ = ["Command", "RedisStore"]

#: one Redis command: the client's method name, its arguments, its keyword arguments
Command = tuple[str, tuple[Any, ...], dict[str, Any]]


class RedisStore:
    """A pool of connections to ``url``; :meth:`execute` runs a batch."""

    def __init__(self, url: str, timeout: float = 1.0) -> None:
        import redis.asyncio as aioredis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        # A blocking pool: a burst of call set-ups waits (bounded by ``timeout``) for one of
        # its connections instead of failing with "Too many connections" (bench/workers.py
        # saw writes dropped that way under load).
        pool = aioredis.BlockingConnectionPool.from_url(
            url, max_connections=8, timeout=timeout, socket_timeout=timeout,
            socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0),
            retry_on_timeout=False, health_check_interval=0)
        self.client = aioredis.Redis(connection_pool=pool)
        self.timeout = timeout

    def execute(self, commands: Sequence[Command]) -> defer.Deferred[list[Any]]:
        """The replies of ``commands``, run as one pipeline (not a transaction); fails with
        the client's error, or a timeout."""
        return defer.Deferred.fromFuture(asyncio.ensure_future(self._run(commands)))

    async def _run(self, commands: Sequence[Command]) -> list[Any]:
        async def batch() -> list[Any]:
            async with self.client.pipeline(transaction=False) as pipe:
                for name, args, kwargs in commands:
                    getattr(pipe, name)(*args, **kwargs)
                return list(await pipe.execute())

        # a pool whose connections all hang must not queue batches for ever
        return await asyncio.wait_for(batch(), self.timeout * 2)

    def close(self) -> defer.Deferred[None]:
        return defer.Deferred.fromFuture(asyncio.ensure_future(
            self.client.aclose(close_connection_pool=True)))
