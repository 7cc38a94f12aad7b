"""The cluster state's sans-IO parts and its logic on a fake clock (wcsgw.cluster).

The Redis here is :class:`MemoryRedis`, an in-memory stand-in for the eight commands the
cluster uses (SET with EX/PX/NX, GET, DELETE, EXISTS, SADD, SREM, SMEMBERS) whose expiries
run on the test's ``task.Clock`` — written here rather than taking fakeredis because it is
forty lines and makes expiry a matter of ``clock.advance``, which is what the liveness rules
are about.  The same logic against a real redis-server: tests.test_cluster_state_redis.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Sequence

from twisted.internet import defer, task
from twisted.trial import unittest

from wcsgw.calls import ids
from wcsgw.calls.registry import CallRegistry
from wcsgw.calls.resume import ResumeBook, digest
from wcsgw.cluster import keys
from wcsgw.cluster.failure import Timing, dead_nodes, lost_call_object
from wcsgw.cluster.nodes import Node
from wcsgw.cluster.state import ClusterState
from wcsgw.cluster.takeover import Watchman
from wcsgw.config import checks
from wcsgw.config.errors import ConfigError
from wcsgw.config.sections import parse_config


class MemoryRedis:
    """The few Redis commands the cluster sends, in memory, expiring on ``clock``; ``down``
    makes every batch fail as a dead server would."""

    def __init__(self, clock: task.Clock) -> None:
        self.clock = clock
        self.data: dict[str, Any] = {}
        self.expires: dict[str, float] = {}
        self.down = False
        self.batches = 0

    def _live(self, key: str) -> bool:
        until = self.expires.get(key)
        if until is not None and until <= self.clock.seconds():
            self.data.pop(key, None)
            self.expires.pop(key, None)
        return key in self.data

    def execute(self, commands: Sequence[Any]) -> defer.Deferred[list[Any]]:
        if self.down:
            return defer.fail(ConnectionError("Error 111 connecting to 127.0.0.1:1"))
        self.batches += 1
        return defer.succeed([getattr(self, "_" + name)(*args, **kwargs)
                              for name, args, kwargs in commands])

    def _set(self, key: str, value: str, ex: float | None = None, px: int | None = None,
             nx: bool = False) -> bool | None:
        if nx and self._live(key):
            return None
        self.data[key] = value
        self.expires.pop(key, None)
        if ex is not None or px is not None:
            self.expires[key] = self.clock.seconds() + (ex if ex is not None else px / 1000)
        return True

    def _get(self, key: str) -> Any:
        return self.data.get(key) if self._live(key) else None

    def _exists(self, key: str) -> int:
        return int(self._live(key))

    def _delete(self, *names: str) -> int:
        return sum(self.data.pop(k, None) is not None for k in names)

    def _sadd(self, key: str, *members: str) -> int:
        self.data.setdefault(key, set()).update(members)
        return len(members)

    def _srem(self, key: str, *members: str) -> int:
        self.data.get(key, set()).difference_update(members)
        return len(members)

    def _sismember(self, key: str, member: str) -> int:
        return int(member in self._smembers(key))

    def _smembers(self, key: str) -> set[str]:
        return set(self.data.get(key, set())) if self._live(key) else set()

    def close(self) -> defer.Deferred[None]:
        return defer.succeed(None)


class FakeCall:
    def __init__(self, call_id: str, session_id: str | None = "s1") -> None:
        self.call_id = call_id
        self.session_id = session_id

    def describe(self) -> dict[str, Any]:
        return {"callId": self.call_id, "sessionId": self.session_id, "status": "ESTABLISHED",
                "callee": "sip:bob@example.org"}


class FakeApp:
    key = "shop"


class FakeHooks:
    def __init__(self) -> None:
        self.apps = {"shop": FakeApp()}
        self.notices: list[tuple[Any, ...]] = []

    def notice(self, app: Any, key: str, event: str, session_id: str | None,
               fields: dict[str, Any]) -> None:
        self.notices.append((app.key, key, event, session_id, fields))


class FakeSession:
    def __init__(self) -> None:
        self.listener = type("Tap", (), {"app": FakeApp()})()


class FakeGateway:
    """What the cluster state reads of a CallGateway: the registry, its calls, sessions."""

    def __init__(self) -> None:
        self.registry = CallRegistry()
        self.calls = self.registry.calls
        self.sessions: dict[str, Any] = {"s1": FakeSession()}
        self.hooks = FakeHooks()


TIMING = Timing(beat=1.0, expiry=4.0, check=1.0)


def node(clock: task.Clock, redis: MemoryRedis, name: str) -> tuple[ClusterState, Watchman,
                                                                     FakeGateway]:
    gateway = FakeGateway()
    state = ClusterState(Node(name, f"http://127.0.0.1:80{len(name)}/{name}"), "s" * 16,
                         redis, gateway, clock, TIMING, wall=lambda: 1000.0)
    gateway.registry.watchers.append(state)
    state.start()
    watchman = Watchman(state)
    watchman.start()
    return state, watchman, gateway


class KeysTest(unittest.TestCase):
    def test_layout(self) -> None:
        self.assertEqual(keys.beat("a:8080"), "wcsgw:beat:a:8080")
        self.assertEqual(keys.call("c1"), "wcsgw:call:c1")
        self.assertEqual(keys.calls("n"), "wcsgw:calls:n")
        self.assertEqual(keys.token("ab"), "wcsgw:token:ab")
        self.assertEqual(keys.lost("c1"), "wcsgw:lost:c1")
        self.assertEqual(keys.takeover("n"), "wcsgw:takeover:n")
        self.assertEqual(keys.NODES, "wcsgw:nodes")

    def test_beat_round_trip(self) -> None:
        value = keys.beat_value(Node("n1", "http://h:1"), 12.3456)
        self.assertEqual(keys.node_of_beat(value.encode()), Node("n1", "http://h:1"))
        self.assertIsNone(keys.node_of_beat(None))
        self.assertIsNone(keys.node_of_beat(b"{not json"))
        self.assertIsNone(keys.node_of_beat('{"nodeId": 3}'))

    def test_token_node(self) -> None:
        self.assertEqual(keys.token_node(b"n1"), ("n1", False))
        self.assertEqual(keys.token_node("lost:n1"), ("n1", True))
        self.assertIsNone(keys.token_node(None))


class FailureRulesTest(unittest.TestCase):
    def test_dead_nodes_never_me(self) -> None:
        self.assertEqual(dead_nodes(["a", "b", "c"], [True, False, False], "c"), ["b"])
        self.assertEqual(dead_nodes([], [], "a"), [])

    def test_bound(self) -> None:
        self.assertEqual(Timing().bound, 6.0)

    def test_lost_call_object(self) -> None:
        out = lost_call_object({"callId": "c1", "status": "ESTABLISHED", "sipStatus": 200},
                               "c1", "n2")
        self.assertEqual((out["status"], out["info"], out["node"], out["sipStatus"]),
                         ("FAILED", "Node n2 lost", "n2", None))
        self.assertEqual(lost_call_object(None, "c9", "n2")["callId"], "c9")


class ClusterOnClockTest(unittest.TestCase):
    def setUp(self) -> None:
        self.clock = task.Clock()
        self.redis = MemoryRedis(self.clock)

    def result(self, d: defer.Deferred[Any]) -> Any:
        return self.successResultOf(d)

    def test_ownership_seen_from_the_other_node(self) -> None:
        a, _wa, ga = node(self.clock, self.redis, "a")
        b, _wb, _gb = node(self.clock, self.redis, "b")
        ga.registry.add(FakeCall("c1"))
        self.assertEqual(self.result(b.owner_of_call("c1")), a.node)
        self.assertEqual(self.result(a.owner_of_call("c1")), a.node)
        self.assertEqual(self.result(b.live_nodes()), [a.node, b.node])
        stored = keys.read_json(self.redis.data[keys.call("c1")])
        self.assertEqual((stored["node"], stored["sessionId"], stored["appKey"]),
                         ("a", "s1", "shop"))
        ga.registry.gone(ga.calls["c1"])
        self.assertIsNone(self.result(b.owner_of_call("c1")))
        self.assertEqual(self.redis.data[keys.calls("a")], set())

    def test_a_node_that_stops_beating_is_lost_once(self) -> None:
        a, wa, ga = node(self.clock, self.redis, "a")
        b, wb, _gb = node(self.clock, self.redis, "b")
        c, wc, _gc = node(self.clock, self.redis, "c")
        ga.registry.add(FakeCall("c1"))
        ga.registry.add(FakeCall("c2", session_id=None))
        a.token_changed("s1", "d" * 64)
        a._beat.stop()  # kill -9: no more beats, nothing said
        wa.stop()
        self.clock.advance(3)
        self.assertIsNone(self.result(b.lost_call("c1")), "declared lost before its expiry")
        for _ in range(3):
            self.clock.advance(1)
        lost = self.result(b.lost_call("c1"))
        self.assertEqual((lost["status"], lost["info"], lost["callee"]),
                         ("FAILED", "Node a lost", "sip:bob@example.org"))
        self.assertEqual(self.result(c.lost_call("c2"))["info"], "Node a lost")
        self.assertEqual(wb.taken + wc.taken, 2, "exactly one survivor took the two calls")
        self.assertIn(0, (wb.taken, wc.taken))
        self.assertIsNone(self.result(b.owner_of_call("c1")))
        self.assertEqual(self.result(c.live_nodes()), [b.node, c.node])
        self.assertEqual(self.result(b.token_holder("d" * 64)), ("a", True))
        self.assertIsNone(self.result(b.lost_call("c3")))
        hooks = (_gb.hooks if wb.taken else _gc.hooks).notices
        self.assertEqual([(n[0], n[1], n[2], n[4]["status"]) for n in hooks],
                         [("shop", "c1", "callStatus", "FAILED")],
                         "c1's app is told; c2 (no session, so no app) tells nobody")

    def test_a_node_restarted_under_its_id_is_taken_over_again_at_once(self) -> None:
        """A rolling restart whose leave never reached Redis (taken over once), then a kill
        of the new process: the take-over lock of the first time must not hold the second
        back for its 30 s."""
        a, wa, ga = node(self.clock, self.redis, "a")
        b, wb, _gb = node(self.clock, self.redis, "b")
        a._beat.stop()
        wa.stop()
        self.clock.advance(6)
        self.assertEqual(self.result(b.live_nodes()), [b.node])
        a2, wa2, ga2 = node(self.clock, self.redis, "a")  # the restarted process
        ga2.registry.add(FakeCall("c9"))
        self.assertEqual(self.result(b.live_nodes()), [a2.node, b.node])
        a2._beat.stop()  # killed again
        wa2.stop()
        self.clock.advance(6)
        self.assertEqual(self.result(b.lost_call("c9"))["info"], "Node a lost")
        self.assertNotIn(keys.takeover("a"), self.redis.data)

    def test_a_survivor_that_finds_the_work_done_releases_the_lock(self) -> None:
        b, wb, _gb = node(self.clock, self.redis, "b")
        self.redis.data[keys.NODES] = {"b"}  # "a" taken over already, its beat gone
        self.result(defer.ensureDeferred(wb._take("a")))
        self.assertEqual(wb.taken, 0)
        self.assertNotIn(keys.takeover("a"), self.redis.data)

    def test_a_node_that_leaves_is_not_taken_over(self) -> None:
        a, wa, ga = node(self.clock, self.redis, "a")
        b, wb, _gb = node(self.clock, self.redis, "b")
        wa.stop()
        self.result(a.stop())
        self.clock.advance(10)
        self.assertEqual(wb.taken, 0)
        self.assertEqual(self.result(b.live_nodes()), [b.node])
        self.assertNotIn(keys.takeover("a"), self.redis.data)

    def test_redis_down_local_calls_go_on_then_catch_up(self) -> None:
        a, _wa, ga = node(self.clock, self.redis, "a")
        b, _wb, _gb = node(self.clock, self.redis, "b")
        ga.registry.add(FakeCall("c1"))
        self.redis.down = True
        ga.registry.add(FakeCall("c2"))  # no error reaches the call
        ga.registry.gone(ga.calls["c1"])
        self.assertIn("c2", ga.calls)
        self.assertEqual(self.result(b.live_nodes()), [b.node], "local knowledge only")
        self.assertIsNone(self.result(b.owner_of_call("c2")))
        self.clock.advance(1)
        self.assertTrue(a.down)
        self.redis.down = False
        self.clock.advance(1)  # the next beat gets through and writes everything again
        self.assertFalse(a.down)
        self.assertEqual(self.result(b.owner_of_call("c2")), a.node)
        self.assertIsNone(self.result(b.owner_of_call("c1")), "what ended meanwhile is gone")

    def test_redis_down_no_node_is_declared_lost(self) -> None:
        a, _wa, ga = node(self.clock, self.redis, "a")
        b, wb, _gb = node(self.clock, self.redis, "b")
        ga.registry.add(FakeCall("c1"))
        self.redis.down = True
        self.clock.advance(3)
        self.redis.down = False
        self.clock.advance(1)
        self.clock.advance(1)
        self.assertEqual(wb.taken, 0)
        self.assertEqual(self.result(b.owner_of_call("c1")), a.node)

    def test_resume_tokens_mirrored(self) -> None:
        a, _wa, _ga = node(self.clock, self.redis, "a")
        book = ResumeBook()
        book.watch = a.token_changed
        token = book.issue("s1")
        self.assertEqual(self.result(a.token_holder(digest(token))), ("a", False))
        self.assertEqual(self.redis.data[keys.session("s1")], "a")
        again = book.issue("s1")
        self.assertIsNone(self.result(a.token_holder(digest(token))))
        self.assertEqual(self.result(a.token_holder(digest(again))), ("a", False))
        book.forget("s1")
        self.assertIsNone(self.result(a.token_holder(digest(again))))
        self.assertNotIn(keys.session("s1"), self.redis.data)


class ClusterConfigTest(unittest.TestCase):
    def refusal(self, cluster: dict[str, Any]) -> str:
        with self.assertRaises(ConfigError) as caught:
            parse_config({"cluster": cluster})
        return str(caught.exception)

    def test_node_id_shape_is_the_id_shape(self) -> None:
        self.assertEqual(checks.NODE_ID_PATTERN, ids.ID_PATTERN)

    def test_refusals_name_the_key_and_hide_secrets(self) -> None:
        said = self.refusal({"redis_url": "http://:hunter2hunter2@h/0", "secret": "s" * 16})
        self.assertTrue(said.startswith("cluster.redis_url"), said)
        self.assertNotIn("hunter2", said)
        said = self.refusal({"redis_url": "redis://:hunter2hunter2@h/0", "secret": "short"})
        self.assertTrue(said.startswith("cluster.secret"), said)
        self.assertNotIn("short", said)
        self.assertNotIn("hunter2", said)
        self.assertIn("cluster.internal_url", self.refusal({"internal_url": "ftp://x"}))
        self.assertIn("cluster.node_id", self.refusal({"node_id": "a/../b"}))
        self.assertIn("cluster.redis_url", self.refusal({"redis_url": "redis://"}))
        self.assertEqual(len(said.splitlines()), 1)

    def test_good_cluster(self) -> None:
        config = parse_config({"cluster": {"redis_url": "rediss://:pw@cache.example:6380/1",
                                           "secret": "x" * 16, "node_id": "host-1:8080",
                                           "internal_url": "http://10.0.0.5:8080"}})
        self.assertEqual(config.cluster.node_id, "host-1:8080")
        self.assertEqual(parse_config({}).cluster.redis_url, "")


class WithoutRedisTest(unittest.TestCase):
    def test_no_redis_url_imports_no_redis(self) -> None:
        """A gateway built without ``redis_url`` has ``cluster`` None and never imports redis."""
        script = ("import sys\n"
                  "from twisted.application.service import MultiService\n"
                  "from wcsgw.cluster.service import make_cluster\n"
                  "from wcsgw.config.sections import parse_config\n"
                  "gw = type('G', (), {})()\n"
                  "assert make_cluster(parse_config({}), gw, MultiService()) is None\n"
                  "assert gw.cluster is None\n"
                  "import wcsgw.service\n"
                  "print(sorted(m for m in sys.modules if m == 'redis' or "
                  "m.startswith('redis.')))\n")
        root = str(Path(__file__).resolve().parents[1])
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                             check=False, timeout=60, cwd=root,
                             env={**os.environ, "PYTHONPATH": root})
        self.assertEqual((out.returncode, out.stdout.strip()), (0, "[]"), out.stderr)


class LeavingTest(unittest.TestCase):
    """SIGTERM: the node keeps beating while its calls drain, and leaves only after."""

    def started(self) -> tuple[Any, ...]:
        from twisted.application.service import MultiService

        from wcsgw.cluster.service import ClusterService

        clock = task.Clock()
        redis = MemoryRedis(clock)
        b, wb, _gb = node(clock, redis, "b")
        gateway = FakeGateway()
        idle: defer.Deferred[None] = defer.Deferred()
        gateway.when_idle = lambda: idle  # type: ignore[attr-defined]
        a = ClusterState(Node("a", "http://127.0.0.1:1"), "s" * 16, redis, gateway, clock,
                         TIMING)
        gateway.registry.watchers.append(a)
        service = ClusterService(a, Watchman(a), gateway)
        service.setServiceParent(MultiService())
        service.startService()
        return clock, a, b, wb, gateway, idle, service

    def test_a_draining_node_beats_until_idle_then_leaves(self) -> None:
        clock, a, b, wb, gateway, idle, service = self.started()
        gateway.registry.add(FakeCall("c1"))
        clock.pump([1.0] * 30)  # a long drain: still beating, its call its own
        self.assertEqual(self.successResultOf(b.live_nodes()), [a.node, b.node])
        self.assertEqual(self.successResultOf(b.owner_of_call("c1")), a.node)
        stopping = service.stopService()  # the last call is being hung up
        clock.advance(1)
        self.assertNoResult(stopping)
        self.assertEqual(self.successResultOf(b.live_nodes()), [a.node, b.node])
        gateway.registry.gone(gateway.calls["c1"])
        idle.callback(None)
        self.successResultOf(stopping)
        clock.pump([1.0] * 10)
        self.assertEqual(self.successResultOf(b.live_nodes()), [b.node])
        self.assertEqual(wb.taken, 0)
        self.assertIsNone(self.successResultOf(b.lost_call("c1")))

    def test_a_call_that_never_settles_does_not_hold_the_stop(self) -> None:
        from wcsgw.cluster.service import LEAVE_WAIT

        clock, a, b, _wb, gateway, _idle, service = self.started()
        stopping = service.stopService()
        clock.advance(LEAVE_WAIT - 0.1)
        self.assertNoResult(stopping)
        clock.advance(0.1)
        self.successResultOf(stopping)
        self.assertEqual(self.successResultOf(b.live_nodes()), [b.node])

    def test_an_unusable_redis_url_is_refused_naming_the_key(self) -> None:
        from twisted.application.service import MultiService

        from wcsgw.cluster.service import make_cluster

        config = parse_config({"cluster": {"redis_url": "redis://:pw-in-url@h/0?socket_timeout=x",
                                           "secret": "s" * 16}})
        with self.assertRaises(ConfigError) as caught:
            make_cluster(config, FakeGateway(), MultiService())
        self.assertTrue(str(caught.exception).startswith("cluster.redis_url"))
        self.assertNotIn("pw-in-url", str(caught.exception))


class HeldRedis(MemoryRedis):
    """Batches answered only when the test says (a Redis on the far side of a network)."""

    def __init__(self, clock: task.Clock) -> None:
        super().__init__(clock)
        self.held: list[tuple[Sequence[Any], defer.Deferred[list[Any]]]] = []

    def execute(self, commands: Sequence[Any]) -> defer.Deferred[list[Any]]:
        d: defer.Deferred[list[Any]] = defer.Deferred()
        self.held.append((commands, d))
        return d

    def answer(self) -> None:
        commands, d = self.held.pop(0)
        MemoryRedis.execute(self, commands).chainDeferred(d)


class WriteOrderTest(unittest.TestCase):
    def test_one_batch_in_flight_later_writes_follow_it_in_order(self) -> None:
        clock = task.Clock()
        redis = HeldRedis(clock)
        gateway = FakeGateway()
        a = ClusterState(Node("a", "http://h:1"), "s" * 16, redis, gateway, clock, TIMING)
        gateway.registry.watchers.append(a)
        gateway.registry.add(FakeCall("c1"))
        gateway.registry.gone(gateway.calls["c1"])  # a short call: its end while its start flies
        gateway.registry.add(FakeCall("c2"))
        self.assertEqual(len(redis.held), 1, "one batch in flight")
        redis.answer()
        self.assertEqual(len(redis.held), 1, "the rest follows as one batch")
        self.assertEqual([c[0] for c in redis.held[0][0]], ["delete", "srem", "set", "sadd"])
        redis.answer()
        self.assertEqual(redis.held, [])
        self.assertNotIn(keys.call("c1"), redis.data)
        self.assertIn(keys.call("c2"), redis.data)
        self.assertEqual(redis.data[keys.calls("a")], {"c2"})

    def test_a_batch_that_never_answers_counts_as_redis_down(self) -> None:
        clock = task.Clock()
        redis = HeldRedis(clock)
        gateway = FakeGateway()
        a = ClusterState(Node("a", "http://h:1"), "s" * 16, redis, gateway, clock, TIMING)
        gateway.registry.watchers.append(a)
        gateway.registry.add(FakeCall("c1"))
        clock.advance(2.0)
        self.assertTrue(a.down)
        gateway.registry.add(FakeCall("c2"))
        self.assertEqual(len(redis.held), 1, "nothing more sent while down")


class ResumeRefusalTest(unittest.TestCase):
    def test_texts(self) -> None:
        from wcsgw.calls.resuming import EXPIRED as SINGLE
        from wcsgw.cluster.resumes import EXPIRED, refusal_text

        self.assertEqual(EXPIRED, SINGLE)
        self.assertEqual(refusal_text(None, "a"), EXPIRED)
        self.assertEqual(refusal_text(("a", False), "a"), EXPIRED)
        self.assertIn("held by node b", refusal_text(("b", False), "a"))
        self.assertIn("Node b lost", refusal_text(("b", True), "a"))

    def test_resume_refusal_reads_the_mirror(self) -> None:
        clock = task.Clock()
        redis = MemoryRedis(clock)
        a, _wa, _ga = node(clock, redis, "a")
        b, wb, _gb = node(clock, redis, "b")
        book = ResumeBook()
        book.watch = b.token_changed
        token = book.issue("s9")
        said = self.successResultOf(a.resume_refusal(token))
        self.assertIn("held by node b", said)
        self.assertNotIn(token, said)
        b._beat.stop()  # kill -9
        wb.stop()
        clock.pump([1.0] * 7)
        self.assertIn("Node b lost", self.successResultOf(a.resume_refusal(token)))
