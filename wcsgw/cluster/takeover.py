"""Finding dead nodes and taking their calls over (docs/scaling.md, "When a node dies").

Every ``timing.check`` seconds each node reads the node set and the heartbeats; for each
announced node whose heartbeat expired, it tries the take-over lock (``SET NX`` with an
expiry, :data:`~wcsgw.cluster.failure.LOCK_SECONDS`).  The one that wins turns each of the dead
node's calls into a *lost call* (its call object, FAILED "Node <id> lost", kept
:data:`~wcsgw.cluster.failure.LOST_SECONDS`), removes its ownership and session entries, marks
its sessions' resume tokens lost (so a resume that lands elsewhere can say so), takes the
node out of the set, tells each call's app (``callStatus``, when the app is configured here)
and logs one warning for the node.  The decisions are the pure functions of
:mod:`wcsgw.cluster.failure`; this is their I/O.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer, task
from twisted.logger import Logger
from twisted.python.failure import Failure

from wcsgw.cluster import keys
from wcsgw.cluster.failure import LOCK_SECONDS, LOST_SECONDS, dead_nodes, lost_call_object
from wcsgw.cluster.state import ClusterState
from wcsgw.cluster.store import Command

__all__ = ["Watchman"]

log = Logger(namespace="wcsgw.cluster")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class Watchman:
    """Looks for dead nodes every ``state.timing.check`` seconds."""

    def __init__(self, state: ClusterState) -> None:
        self.state = state
        self._loop: task.LoopingCall | None = None
        self._busy = False
        #: lost calls this node took over (tests, metrics)
        self.taken = 0

    def start(self) -> None:
        self._loop = task.LoopingCall(self.check)
        self._loop.clock = self.state.clock
        self._loop.start(self.state.timing.check, now=False)

    def stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()

    def check(self) -> defer.Deferred[None]:
        """One look (a check still running from the last tick is left to finish)."""
        if self._busy or self.state.down:
            return defer.succeed(None)
        self._busy = True
        d = defer.ensureDeferred(self._check())

        def done(result: Any) -> None:
            self._busy = False
            if isinstance(result, Failure):
                log.failure("cluster: looking for dead nodes failed", result)

        return d.addBoth(done)

    async def _check(self) -> None:
        state = self.state
        members = sorted(_text(m) for m in (await state.read(
            [("smembers", (keys.NODES,), {})], [set()]))[0])
        if not members:
            return
        beats = await state.read([("exists", (keys.beat(n),), {}) for n in members], [])
        if len(beats) != len(members):
            return  # Redis did not answer: decide nothing
        for node_id in dead_nodes(members, [bool(b) for b in beats], state.node_id):
            await self._take(node_id)

    async def _take(self, node_id: str) -> None:
        state = self.state
        won = (await state.read([("set", (keys.takeover(node_id), state.node_id),
                                  {"nx": True, "ex": LOCK_SECONDS})], [None]))[0]
        if not won:
            return  # another survivor has it (or Redis did not answer)
        got = await state.read([("smembers", (keys.calls(node_id),), {}),
                                ("smembers", (keys.sessions(node_id),), {}),
                                ("smembers", (keys.tokens(node_id),), {}),
                                ("sismember", (keys.NODES, node_id), {}),
                                ("exists", (keys.beat(node_id),), {})], [])
        if len(got) != 5:
            return
        if not got[3] or got[4]:  # taken over meanwhile by another survivor, or back
            await state.read([("delete", (keys.takeover(node_id),), {})], [])
            return
        call_ids, session_ids, digests = (sorted(_text(m) for m in s) for s in got[:3])
        owners = await state.read([("get", (keys.call(c),), {}) for c in call_ids], [])
        if len(owners) != len(call_ids):
            return
        commands: list[Command] = []
        lost: list[tuple[dict[str, Any], Any]] = []
        for call_id, raw in zip(call_ids, owners):
            owner = keys.read_json(raw)
            if not isinstance(owner, dict) or owner.get("node") != node_id:
                continue  # ended meanwhile, or (a reused callId) now another node's
            obj = lost_call_object(owner.get("call"), call_id, node_id)
            lost.append((obj, owner))
            commands += [("set", (keys.lost(call_id), keys.owner_value(
                node_id, owner.get("sessionId"), owner.get("appKey"), obj)),
                {"ex": LOST_SECONDS}),
                ("delete", (keys.call(call_id),), {})]
        commands += [("delete", (keys.session(s),), {}) for s in session_ids]
        commands += [("set", (keys.token(d), keys.LOST + node_id), {"ex": LOST_SECONDS})
                     for d in digests]
        # ... and the lock goes with the work: a node restarted under the same id (a rolling
        # restart whose leave did not reach Redis, then a kill) must be taken over at once,
        # not after the lock of the last time expires
        commands += [("delete", (keys.calls(node_id), keys.sessions(node_id),
                                 keys.tokens(node_id)), {}),
                     ("srem", (keys.NODES, node_id), {}),
                     ("delete", (keys.takeover(node_id),), {})]
        done = await state.read(commands, [])
        if len(done) != len(commands):
            return  # the lock expires and a survivor (maybe this one) does it again
        self.taken += len(lost)
        log.warn("cluster: node {node} lost (no heartbeat for {expiry} s): {count} calls "
                 "marked FAILED, {sessions} sessions dropped", node=node_id,
                 expiry=state.timing.expiry, count=len(lost), sessions=len(session_ids))
        for obj, owner in lost:
            self._tell_app(obj, owner)

    def _tell_app(self, obj: dict[str, Any], owner: dict[str, Any]) -> None:
        hooks = getattr(self.state.gateway, "hooks", None)
        app = getattr(hooks, "apps", {}).get(owner.get("appKey")) if hooks else None
        if hooks is None or app is None:
            return
        fields = {k: v for k, v in obj.items() if k not in ("sdp", "sessionId")}
        hooks.notice(app, str(obj.get("callId")), "callStatus", owner.get("sessionId"), fields)
