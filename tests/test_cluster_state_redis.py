"""The cluster state against a real redis-server (tests/peers/redis.py), nodes in one process.

Each node is a :class:`~wcsgw.cluster.state.ClusterState` with its own connection pool
(:class:`~wcsgw.cluster.store.RedisStore`) over a registry-backed gateway stand-in, on the
real reactor with a short heartbeat (0.2 s beat, 0.8 s expiry, 0.2 s check) so a death is
seen in about a second.  Waiting is polling a condition with a deadline, never a sleep
standing for one.  The rules themselves, on a fake clock: tests.test_cluster_state.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from twisted.internet import defer, reactor, task
from twisted.trial import unittest

from tests.peers import redis as redis_peer
from tests.peers.redis import RedisServer
from tests.test_cluster_state import FakeCall, FakeGateway
from wcsgw.cluster.failure import Timing
from wcsgw.cluster.nodes import Node
from wcsgw.cluster.state import ClusterState
from wcsgw.cluster.store import RedisStore
from wcsgw.cluster.takeover import Watchman

TIMING = Timing(beat=0.2, expiry=0.8, check=0.2)
POLL = 0.05


async def until(check: Callable[[], Awaitable[Any]], what: str, timeout: float = 10.0) -> Any:
    """The first truthy answer of ``check`` (polled), or a failure naming ``what``."""
    deadline = reactor.seconds() + timeout
    while reactor.seconds() < deadline:
        got = await check()
        if got:
            return got
        await task.deferLater(reactor, POLL, lambda: None)
    raise AssertionError(f"not within {timeout:g} s: {what}")


class RealRedisTest(unittest.TestCase):
    if redis_peer.missing():
        skip = redis_peer.missing()

    async def start_redis(self) -> RedisServer:
        server = RedisServer()
        self.addCleanup(server.stop)
        return await server.start()

    def node(self, server: RedisServer, name: str) -> tuple[ClusterState, Watchman, FakeGateway]:
        gateway = FakeGateway()
        state = ClusterState(Node(name, f"http://127.0.0.1:1/{name}"), "s" * 16,
                             RedisStore(server.url), gateway, reactor, TIMING)
        gateway.registry.watchers.append(state)
        watchman = Watchman(state)
        state.start()
        watchman.start()
        self.addCleanup(self.silence, state, watchman)
        return state, watchman, gateway

    async def silence(self, state: ClusterState, watchman: Watchman) -> None:
        watchman.stop()
        if state._beat is not None and state._beat.running:
            state._beat.stop()
        await state.store.close()

    @defer.inlineCallbacks
    def test_ownership_and_a_node_lost(self) -> Any:
        server = yield defer.ensureDeferred(self.start_redis())
        a, wa, ga = self.node(server, "a")
        b, wb, gb = self.node(server, "b")
        c, wc, gc = self.node(server, "c")
        ga.registry.add(FakeCall("c1"))
        gb.registry.add(FakeCall("c2"))
        owner = yield defer.ensureDeferred(until(lambda: b.owner_of_call("c1"),
                                                 "b sees a's call"))
        self.assertEqual(owner, a.node)
        self.assertEqual((yield a.owner_of_call("c2")), b.node)
        self.assertEqual((yield c.live_nodes()), [a.node, b.node, c.node])
        # a dies as with kill -9: its beats stop, it says nothing
        yield defer.ensureDeferred(self.silence(a, wa))
        died = reactor.seconds()
        lost = yield defer.ensureDeferred(until(lambda: c.lost_call("c1"), "c1 is lost"))
        took = reactor.seconds() - died
        self.assertEqual((lost["status"], lost["info"], lost["callId"]),
                         ("FAILED", "Node a lost", "c1"))
        self.assertLess(took, TIMING.bound + 1.0)
        self.assertEqual(sorted([wb.taken, wc.taken]), [0, 1], "one survivor took c1")
        self.assertIsNone((yield b.owner_of_call("c1")))
        self.assertEqual((yield c.owner_of_call("c2")), b.node, "b's call untouched")
        self.assertIsNone((yield c.lost_call("c2")))
        self.assertEqual((yield b.live_nodes()), [b.node, c.node])
        told = gb.hooks.notices + gc.hooks.notices
        self.assertEqual([(n[1], n[4]["status"], n[4]["info"]) for n in told],
                         [("c1", "FAILED", "Node a lost")])

    @defer.inlineCallbacks
    def test_redis_killed_mid_run(self) -> Any:
        server = yield defer.ensureDeferred(self.start_redis())
        a, _wa, ga = self.node(server, "a")
        b, wb, _gb = self.node(server, "b")
        ga.registry.add(FakeCall("c1"))
        yield defer.ensureDeferred(until(lambda: b.owner_of_call("c1"), "c1 announced"))
        server.kill()
        ga.registry.add(FakeCall("c2"))  # a local call while Redis is gone: no error
        ga.registry.gone(ga.calls["c1"])
        self.assertIn("c2", ga.calls)
        asked = reactor.seconds()
        self.assertEqual((yield b.live_nodes()), [b.node], "local knowledge when Redis is gone")
        self.assertLess(reactor.seconds() - asked, 2.5, "a read waits at most its timeout")
        yield defer.ensureDeferred(until(lambda: defer.succeed(a.down), "a notices"))
        yield server.start()  # back, empty (no persistence)
        owner = yield defer.ensureDeferred(until(lambda: b.owner_of_call("c2"),
                                                 "a catches up when Redis is back"))
        self.assertEqual(owner, a.node)
        self.assertIsNone((yield b.owner_of_call("c1")), "c1 ended while Redis was away")
        self.assertEqual(wb.taken, 0, "nobody was declared lost over a Redis outage")
