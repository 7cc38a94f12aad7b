"""The cluster state against a real redis-server (tests/peers/redis.py), nodes in one process.

Each node is a :class:`~wcsgw.cluster.state.ClusterState` with its own connection pool
(:class:`~wcsgw.cluster.store.RedisStore`) over a registry-backed gateway stand-in, on the
real reactor with a short heartbeat (0.2 s beat, 0.8 s expiry, 0.2 s check) so a death is
seen in about a second.  Waiting is polling a condition with a deadline, never a sleep
standing for one.  :class:`CallGatewaysTest` joins two real CallGateways (their SIP side and
calls faked as in tests.test_calls_gateway) as ``make_cluster`` does.  The rules themselves, on
a fake clock: tests.test_cluster_state.
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


async def silence(state: ClusterState, watchman: Watchman) -> None:
    """The node stops as with ``kill -9``: no more beats or checks, nothing said."""
    watchman.stop()
    if state._beat is not None and state._beat.running:
        state._beat.stop()
    await state.store.close()


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

    @defer.inlineCallbacks
    def test_a_burst_of_batches_waits_for_the_pool_instead_of_failing(self) -> Any:
        """More batches at once than the pool has connections (a burst of call set-ups):
        each waits for a connection; none fails with "Too many connections"."""
        server = yield defer.ensureDeferred(self.start_redis())
        store = RedisStore(server.url)
        self.addCleanup(store.close)
        replies = yield defer.gatherResults(
            [store.execute([("set", (f"k{i}", str(i)), {}), ("get", (f"k{i}",), {})])
             for i in range(60)], consumeErrors=True)
        self.assertEqual([r[1] for r in replies], [str(i).encode() for i in range(60)])

    def node(self, server: RedisServer, name: str) -> tuple[ClusterState, Watchman, FakeGateway]:
        gateway = FakeGateway()
        state = ClusterState(Node(name, f"http://127.0.0.1:1/{name}"), "s" * 16,
                             RedisStore(server.url), gateway, reactor, TIMING)
        gateway.registry.watchers.append(state)
        watchman = Watchman(state)
        state.start()
        watchman.start()
        self.addCleanup(silence, state, watchman)
        return state, watchman, gateway


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
        yield defer.ensureDeferred(silence(a, wa))
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


class CallGatewaysTest(unittest.TestCase):
    """Two real CallGateways (the SIP side and the calls faked as in tests.test_calls_gateway)
    joined to one real Redis as ``make_cluster`` joins them."""

    if redis_peer.missing():
        skip = redis_peer.missing()

    def gateway(self, server: RedisServer, name: str) -> tuple[Any, ClusterState, Watchman]:
        from tests.test_calls_gateway import TESTLINES, FakeCall as GatewayCall, FakeSip
        from wcsgw.calls.gateway import CallGateway
        from wcsgw.calls.policy import Policy
        from wcsgw.cluster.service import join

        gw = CallGateway(FakeSip(), Policy(["pbx.example"], TESTLINES), GatewayCall)
        gw.resume_seconds = 30
        state = ClusterState(Node(name, f"http://127.0.0.1:1/{name}"), "s" * 16,
                             RedisStore(server.url), gw, reactor, TIMING)
        join(gw, state)
        watchman = Watchman(state)
        state.start()
        watchman.start()
        self.addCleanup(silence, state, watchman)
        return gw, state, watchman

    @defer.inlineCallbacks
    def test_ownership_tokens_and_loss_across_gateways(self) -> Any:
        from tests.test_calls_gateway import account
        from wcsgw.calls.errors import CallError, Codes
        from wcsgw.calls.resume import digest

        server = RedisServer()
        self.addCleanup(server.stop)
        yield server.start()
        gw_a, a, wa = self.gateway(server, "a")
        gw_b, b, _wb = self.gateway(server, "b")
        gw_a.open_session("s1", object(), peer="10.0.0.1")
        gw_a.connect("s1", account(), register=False)
        token = gw_a.auth_token("s1")
        gw_a.call("s1", call_id="c1", callee="1002", visible_name=None, has_audio=True,
                  has_video=False, sdp="v=0", sip_headers={})
        owner = yield defer.ensureDeferred(until(lambda: b.owner_of_call("c1"), "b sees c1"))
        self.assertEqual(owner, a.node)
        self.assertEqual((yield b.token_holder(digest(token))), ("a", False))
        # the balancer sends the resume to b: refused there, never resumed on the wrong node
        gw_b.open_session("fresh", object(), peer="10.0.0.9")
        with self.assertRaises(CallError) as caught:
            gw_b.resume("fresh", token)
        self.assertEqual(caught.exception.code, Codes.SESSION_EXPIRED)
        self.assertIn("s1", gw_a.sessions)
        # ... and the browser is told where its session is (JSON-RPC connect {authToken})
        refusal = yield defer.ensureDeferred(resume_refusal(gw_b, "fresh-rpc", token))
        self.assertEqual(refusal["code"], Codes.SESSION_EXPIRED)
        self.assertIn("held by node a", refusal["message"])
        self.assertNotIn(token, refusal["message"])
        # a dies (kill -9): its call becomes a lost call, its token is marked lost
        yield defer.ensureDeferred(silence(a, wa))
        lost = yield defer.ensureDeferred(until(lambda: b.lost_call("c1"), "c1 lost"))
        self.assertEqual((lost["status"], lost["info"], lost["sessionId"]),
                         ("FAILED", "Node a lost", "s1"))
        self.assertEqual((yield b.token_holder(digest(token))), ("a", True))
        self.assertIsNone((yield b.owner_of_call("c1")))
        refusal = yield defer.ensureDeferred(resume_refusal(gw_b, "fresh-rpc2", token))
        self.assertIn("Session lost with node a", refusal["message"])


async def resume_refusal(gateway: Any, session_id: str, token: str) -> dict[str, Any]:
    """The JSON-RPC error a fresh socket on ``gateway`` gets for ``connect {authToken}``
    (the reply waits on the cluster's Redis read, then comes to the session's socket)."""
    import json

    from wcsgw.api.jsonrpc import Request
    from wcsgw.api.methods import SessionMethods

    replies: list[str] = []

    class Socket:
        def reply(self, frame: str) -> None:
            replies.append(frame)

    gateway.open_session(session_id, Socket(), peer="10.0.0.8")
    now = SessionMethods(gateway, session_id).handle(Request("connect", {"authToken": token}, 1))
    if now is not None:
        replies.append(now)
    await until(lambda: defer.succeed(replies[0] if replies else None), "the refusal")
    error: dict[str, Any] = json.loads(replies[0])["error"]
    return error


class ServiceTreeTest(unittest.TestCase):
    """``wcsgw.service.make_service`` with ``[cluster] redis_url``: the node beats from start
    and leaves at stop; without it, ``gateway.cluster`` is None."""

    if redis_peer.missing():
        skip = redis_peer.missing()

    @defer.inlineCallbacks
    def test_a_gateway_joins_and_leaves(self) -> Any:
        import attrs

        from tests.e2e import gateway_config
        from wcsgw.config.settings import ClusterSettings
        from wcsgw.service import make_service

        server = RedisServer()
        self.addCleanup(server.stop)
        yield server.start()
        plain = make_service(gateway_config())
        self.assertIsNone(plain.call_gateway.cluster)
        config = attrs.evolve(gateway_config(), cluster=ClusterSettings(
            redis_url=server.url, node_id="gw-1", internal_url="http://127.0.0.1:1",
            secret="s" * 16))
        top = make_service(config)
        top.startService()
        stopped: list[bool] = []

        def stop() -> Any:
            if stopped:
                return None
            stopped.append(True)
            return defer.maybeDeferred(top.stopService)

        self.addCleanup(stop)
        self.assertIsInstance(top.call_gateway.cluster, ClusterState)
        # every call object of the node says so (REST and callStatus alike); a single
        # gateway's has no node
        from wcsgw.calls.callobject import call_object

        for gateway, node in ((top.call_gateway, "gw-1"), (plain.call_gateway, None)):
            env = gateway.call_factory.keywords["env"]
            described = call_object(CallStub(env))
            self.assertEqual(described.get("node"), node)
            self.assertEqual("node" in described, node is not None)
        observer = ClusterState(Node("watcher", "http://127.0.0.1:2"), "s" * 16,
                                RedisStore(server.url), FakeGateway(), reactor, TIMING)
        self.addCleanup(observer.store.close)
        gw_node = Node("gw-1", "http://127.0.0.1:1")

        async def joined() -> bool:
            return gw_node in await observer.live_nodes()

        async def left() -> bool:
            return gw_node not in await observer.live_nodes()

        yield defer.ensureDeferred(until(joined, "gw-1 beats"))
        yield stop()
        yield defer.ensureDeferred(until(left, "gw-1 left at stop"))


class CallStub:
    """The fields a call object reads, on a real gateway's call environment."""

    def __init__(self, env: Any) -> None:
        from wcsgw.calls.status import CallStatus

        self.env = env
        self.plan = self.video = self.answer_time = self.browser_answer = None
        self.call_id, self.session_id, self.status = "c1", "s1", CallStatus.ESTABLISHED
        self.sip_status, self.info, self.incoming = 200, "", False
        self.caller, self.callee, self.visible_name = "1001", "1002", None
        self.has_audio, self.has_video, self.hold_for_transfer = True, False, False
        self.start_time = 0.0
