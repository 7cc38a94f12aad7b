"""``gateway.cluster`` wired into the service tree (wcsgw.service calls :func:`make_cluster`).

Why a function the service module calls instead of code there: without ``[cluster]
redis_url`` nothing of the cluster is built, not even imported (redis included), so a single
gateway runs exactly as before.
"""

from __future__ import annotations

import socket
from typing import Any

from twisted.application import service
from twisted.internet import defer

from wcsgw.cluster.failure import Timing
from wcsgw.cluster.nodes import Node
from wcsgw.config.errors import ConfigError

__all__ = ["LEAVE_WAIT", "ClusterService", "join", "make_cluster", "this_node"]

#: how long a stopping node waits for its last calls to settle before it leaves the cluster
#: anyway (the call layer's own stop grace is 3 s)
LEAVE_WAIT = 5.0


def this_node(config: Any) -> Node:
    """This node as ``[cluster]`` names it, its defaults filled: ``node_id`` "" =
    ``<host>:<http.port>``, ``internal_url`` "" = ``http://<http.listen>:<http.port>``."""
    cluster, http = config.cluster, config.http
    node_id = cluster.node_id or f"{socket.gethostname()}:{http.port}"
    host = f"[{http.listen}]" if ":" in http.listen else http.listen
    return Node(node_id, cluster.internal_url or f"http://{host}:{http.port}")


class ClusterService(service.Service):
    """Beats and watches from start — through a SIGTERM drain too, so the draining node's
    calls stay its own; at stop, once its last calls settled (at most :data:`LEAVE_WAIT`),
    leaves the cluster: its heartbeat goes last, so nothing is taken over."""

    def __init__(self, state: Any, watchman: Any, gateway: Any) -> None:
        self.state = state
        self.watchman = watchman
        self.gateway = gateway

    def startService(self) -> None:  # noqa: N802 (Twisted API)
        super().startService()  # type: ignore[no-untyped-call]
        self.state.start()
        self.watchman.start()

    def stopService(self) -> defer.Deferred[None]:  # noqa: N802 (Twisted API)
        super().stopService()  # type: ignore[no-untyped-call]
        return defer.ensureDeferred(self._leave())

    async def _leave(self) -> None:
        self.watchman.stop()
        # A drain (SIGTERM) is over before the service tree stops; what is left now is being
        # hung up (CallsService: a 3 s grace).  Wait for that, bounded: a call that never
        # settles must not keep the process from ending.
        idle = self.gateway.when_idle()
        clock = self.state.clock
        timer = clock.callLater(LEAVE_WAIT, lambda: idle.called or idle.callback(None))
        await idle
        if timer.active():
            timer.cancel()
        await self.state.stop()
        closing = self.state.store.close()
        closing.addTimeout(1.0, clock)
        await closing.addErrback(lambda failure: None)


def join(gateway: Any, state: Any) -> None:
    """``state`` becomes ``gateway.cluster`` and follows its calls (a registry watcher) and
    its sessions' resume tokens (``ResumeBook.watch``)."""
    gateway.cluster = state
    gateway.registry.watchers.append(state)
    gateway.resumer.book.watch = state.token_changed


def make_cluster(config: Any, gateway: Any, parent: Any, timing: Timing | None = None) -> Any:
    """``gateway.cluster`` (a :class:`~wcsgw.cluster.state.ClusterState`) following the
    gateway's calls and resume tokens, and the service that runs it under ``parent``; with
    no ``redis_url``, ``gateway.cluster`` is None and nothing else happens.  A URL the
    client cannot use, or no redis-py: :class:`ConfigError` naming ``cluster.redis_url``."""
    if not config.cluster.redis_url:
        gateway.cluster = None
        return None
    from twisted.internet import reactor

    from wcsgw.cluster.state import ClusterState
    from wcsgw.cluster.store import RedisStore
    from wcsgw.cluster.takeover import Watchman

    try:
        store = RedisStore(config.cluster.redis_url)
    except ImportError:
        raise ConfigError("cluster.redis_url", "needs redis-py: pip install 'wcsgw[cluster]'"
                          ) from None
    except ValueError as exc:  # the client's own reading of the URL (its text: no password)
        raise ConfigError("cluster.redis_url", f"cannot be used: {type(exc).__name__}"
                          ) from None
    state = ClusterState(this_node(config), config.cluster.secret, store, gateway, reactor,
                         timing)
    join(gateway, state)
    cluster_service = ClusterService(state, Watchman(state), gateway)
    cluster_service.setServiceParent(parent)  # type: ignore[no-untyped-call]
    return cluster_service
