"""This node's part of the cluster state: what it tells Redis, and what it reads back.

Why fire-and-forget: a call is local — its media, its SIP dialog and its browser all live in
this process — so Redis is never on a call's path.  What a local event changes (a call
starting or ending, a session's resume token) is one small batch sent without waiting; if
Redis is down the batch is dropped, the state is marked stale and rewritten whole once a
heartbeat gets through again (:meth:`ClusterState.resync`).  Reads (which node holds a
call, which nodes are alive) wait at most ``read_timeout`` and then answer from local
knowledge.  Nothing here runs per media packet.

The failure handling — finding dead nodes, taking one's calls over — is
:mod:`wcsgw.cluster.takeover`; the key layout :mod:`wcsgw.cluster.keys`.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Sequence

from twisted.internet import defer, task
from twisted.logger import Logger

from wcsgw.calls.resume import digest
from wcsgw.cluster import keys
from wcsgw.cluster.failure import Timing
from wcsgw.cluster.nodes import Node
from wcsgw.cluster.resumes import refusal_text
from wcsgw.cluster.store import Command

__all__ = ["ClusterState", "Throttle"]

log = Logger(namespace="wcsgw.cluster")


class Throttle:
    """At most one log line per ``every`` seconds for a recurring failure (a Redis that is
    down would otherwise write one per call event)."""

    def __init__(self, clock: Any, every: float = 30.0) -> None:
        self.clock = clock
        self.every = every
        self.last: float | None = None
        self.quiet = 0

    def due(self) -> bool:
        now = self.clock.seconds()
        if self.last is None or now - self.last >= self.every:
            self.last = now
            return True
        self.quiet += 1
        return False


class ClusterState:
    """``gateway.cluster``: the interface the REST layer uses across nodes (``node_id``,
    ``internal_url``, ``secret``, :meth:`owner_of_call`, :meth:`live_nodes`,
    :meth:`lost_call`), and the registry watcher and resume-token mirror that keep Redis
    told."""

    def __init__(self, node: Node, secret: str, store: Any, gateway: Any, clock: Any,
                 timing: Timing | None = None, read_timeout: float = 1.0,
                 wall: Callable[[], float] = time.time) -> None:
        self.node = node
        self.secret = secret
        self.store = store
        self.gateway = gateway
        self.clock = clock
        self.timing = timing or Timing()
        self.read_timeout = read_timeout
        self.started_at = wall()
        #: Redis did not answer the last time: writes are skipped until a beat gets
        #: through, then everything is written again
        self.down = False
        self.failures = Throttle(clock)
        self._calls: dict[str, str] = {}  # callId -> its owner value (as written)
        self._tokens: dict[str, str] = {}  # connected session id -> its token's digest
        self._beat: task.LoopingCall | None = None
        self._pending: list[Command] = []  # written while a batch is in flight
        self._sending = False

    @property
    def node_id(self) -> str:
        return self.node.node_id

    @property
    def internal_url(self) -> str:
        return self.node.internal_url

    # -- what the other nodes ask --------------------------------------------------------

    def owner_of_call(self, call_id: str) -> defer.Deferred[Node | None]:
        """The node holding ``call_id`` (this one without asking Redis when it is here);
        None when no live node holds it, or Redis does not answer."""
        if call_id in self.gateway.calls:
            return defer.succeed(self.node)
        return defer.ensureDeferred(self._owner(call_id))

    async def _owner(self, call_id: str) -> Node | None:
        value = keys.read_json((await self.read([("get", (keys.call(call_id),), {})],
                                                [None]))[0])
        node_id = value.get("node") if isinstance(value, dict) else None
        if not isinstance(node_id, str):
            return None
        if node_id == self.node_id:
            return None  # Redis says here, but it is not here (any more): nobody has it
        return keys.node_of_beat((await self.read([("get", (keys.beat(node_id),), {})],
                                                  [None]))[0])

    def live_nodes(self) -> defer.Deferred[list[Node]]:
        """Every node whose heartbeat is alive, this one included (only this one when Redis
        does not answer), sorted by id."""
        return defer.ensureDeferred(self._live())

    async def _live(self) -> list[Node]:
        members = (await self.read([("smembers", (keys.NODES,), {})], [set()]))[0]
        ids = sorted(m.decode() if isinstance(m, bytes) else str(m) for m in members)
        beats = await self.read([("get", (keys.beat(n),), {}) for n in ids], [None] * len(ids))
        found = {self.node_id: self.node}
        for raw in beats:
            node = keys.node_of_beat(raw)
            if node is not None:
                found[node.node_id] = node
        return [found[n] for n in sorted(found)]

    def lost_call(self, call_id: str) -> defer.Deferred[dict[str, Any] | None]:
        """The call object (FAILED, "Node <id> lost") of a call whose node died, for an hour;
        None otherwise (or when Redis does not answer)."""
        d = self.read([("get", (keys.lost(call_id),), {})], [None])
        return d.addCallback(lambda replies: _lost_call(keys.read_json(replies[0])))

    def token_holder(self, digest: str) -> defer.Deferred[tuple[str, bool] | None]:
        """(node id, lost?) of the session a resume token's digest belongs to, None if no node
        holds it (or Redis does not answer)."""
        d = self.read([("get", (keys.token(digest),), {})], [None])
        return d.addCallback(lambda replies: keys.token_node(replies[0]))

    def resume_refusal(self, token: str) -> defer.Deferred[str]:
        """What a ``connect {authToken}`` this node refused should say: which node holds the
        session, or that its node was lost (wcsgw.cluster.resumes); never the token."""
        d = self.token_holder(digest(token))
        return d.addCallback(refusal_text, self.node_id)

    def read(self, commands: Sequence[Command], fallback: list[Any]) -> defer.Deferred[list[Any]]:
        """The replies of ``commands``, or ``fallback`` when Redis fails or is slower than
        ``read_timeout``."""
        if not commands:
            return defer.succeed([])
        d: defer.Deferred[list[Any]] = self.store.execute(commands)
        d.addTimeout(self.read_timeout, self.clock)

        def failed(failure: Any) -> list[Any]:
            self._failed("read", failure)
            return fallback

        return d.addErrback(failed)

    # -- what this node tells ------------------------------------------------------------

    def write(self, commands: Sequence[Command]) -> None:
        """Send ``commands`` without waiting; skipped while Redis is down (the next
        successful beat writes everything again).

        One batch in flight at a time, the commands written meanwhile sent together after
        it: batches on different pooled connections could land out of order (a short
        call's delete before its set would leave it owned here for ever)."""
        if self.down or not commands:
            return
        self._pending.extend(commands)
        if not self._sending:
            self._send()

    def _send(self) -> None:
        batch, self._pending = self._pending, []
        self._sending = True
        d = self.store.execute(batch)
        d.addTimeout(self.read_timeout * 2, self.clock)
        d.addCallbacks(self._sent, self._write_failed)

    def _sent(self, _: Any) -> None:
        self._sending = False
        if self._pending and not self.down:
            self._send()

    def _write_failed(self, failure: Any) -> None:
        self._sending = False
        self._pending = []  # rewritten whole once Redis answers (beat -> resync)
        self.down = True
        self._failed("write", failure)

    def _failed(self, what: str, failure: Any) -> None:
        if self.failures.due():
            log.warn("cluster: Redis {what} failed ({why}); local calls go on, the shared "
                     "state catches up when Redis answers again", what=what,
                     why=failure.getErrorMessage() or failure.type.__name__)

    # the CallRegistry watcher (wcsgw.calls.registry)
    def call_started(self, call: Any) -> None:
        session = self.gateway.sessions.get(call.session_id)
        app = getattr(getattr(session, "listener", None), "app", None)
        value = keys.owner_value(self.node_id, call.session_id, getattr(app, "key", None),
                                 call.describe())
        self._calls[call.call_id] = value
        self.write(self._call_commands(call.call_id, value))

    def call_ended(self, call: Any) -> None:
        self._calls.pop(call.call_id, None)
        self.write([("delete", (keys.call(call.call_id),), {}),
                    ("srem", (keys.calls(self.node_id), call.call_id), {})])

    def _call_commands(self, call_id: str, value: str) -> list[Command]:
        return [("set", (keys.call(call_id), value), {}),
                ("sadd", (keys.calls(self.node_id), call_id), {})]

    # the ResumeBook mirror (wcsgw.calls.resume): a connected session and its live token
    def token_changed(self, session_id: str, digest: str | None) -> None:
        old = self._tokens.pop(session_id, None)
        commands: list[Command] = []
        if old is not None:
            commands += [("delete", (keys.token(old),), {}),
                         ("srem", (keys.tokens(self.node_id), old), {})]
        if digest is None:
            commands += [("delete", (keys.session(session_id),), {}),
                         ("srem", (keys.sessions(self.node_id), session_id), {})]
        else:
            self._tokens[session_id] = digest
            commands += self._token_commands(session_id, digest)
        self.write(commands)

    def _token_commands(self, session_id: str, digest: str) -> list[Command]:
        return [("set", (keys.token(digest), self.node_id), {}),
                ("sadd", (keys.tokens(self.node_id), digest), {}),
                ("set", (keys.session(session_id), self.node_id), {}),
                ("sadd", (keys.sessions(self.node_id), session_id), {})]

    # -- the heartbeat -------------------------------------------------------------------

    def start(self) -> None:
        self._beat = task.LoopingCall(self.beat)
        self._beat.clock = self.clock
        self._beat.start(self.timing.beat, now=True)

    def beat(self) -> defer.Deferred[None]:
        """Announce this node alive; after a Redis outage, write everything again."""
        expiry_ms = int(self.timing.expiry * 1000)
        d: defer.Deferred[Any] = self.store.execute([
            ("set", (keys.beat(self.node_id), keys.beat_value(self.node, self.started_at)),
             {"px": expiry_ms}),
            ("sadd", (keys.NODES, self.node_id), {})])
        d.addTimeout(self.read_timeout, self.clock)

        def beaten(_: Any) -> Any:
            if self.down:
                self.down = False
                log.info("cluster: Redis answers again: this node's calls and sessions are "
                         "written again")
                return self.resync()
            return None

        def failed(failure: Any) -> None:
            self.down = True
            self._failed("heartbeat", failure)

        d.addCallbacks(beaten, failed)
        return d

    async def _resync(self) -> None:
        mine = await self.read([("smembers", (keys.calls(self.node_id),), {}),
                                ("smembers", (keys.sessions(self.node_id),), {}),
                                ("smembers", (keys.tokens(self.node_id),), {})],
                               [set(), set(), set()])
        calls, sessions, tokens = ({m.decode() if isinstance(m, bytes) else m for m in got}
                                   for got in mine)
        commands: list[Command] = []
        for call_id in calls - set(self._calls):
            commands += [("delete", (keys.call(call_id),), {}),
                         ("srem", (keys.calls(self.node_id), call_id), {})]
        for session_id in sessions - set(self._tokens):
            commands += [("delete", (keys.session(session_id),), {}),
                         ("srem", (keys.sessions(self.node_id), session_id), {})]
        for stale in tokens - set(self._tokens.values()):
            commands += [("delete", (keys.token(stale),), {}),
                         ("srem", (keys.tokens(self.node_id), stale), {})]
        for call_id, value in self._calls.items():
            commands += self._call_commands(call_id, value)
        for session_id, key in self._tokens.items():
            commands += self._token_commands(session_id, key)
        self.write(commands)

    def resync(self) -> defer.Deferred[None]:
        """Rewrite this node's calls, sessions and tokens (and drop what ended meanwhile)."""
        return defer.ensureDeferred(self._resync())

    def stop(self) -> defer.Deferred[Any]:
        """The process ends (its calls are over): its heartbeat and node entry go now, so
        the others see a node that left, not one that died — nothing is taken over."""
        if self._beat is not None and self._beat.running:
            self._beat.stop()
        d: defer.Deferred[Any] = self.store.execute([("delete", (keys.beat(self.node_id),), {}),
                                ("srem", (keys.NODES, self.node_id), {}),
                                ("delete", (keys.calls(self.node_id),), {}),
                                ("delete", (keys.sessions(self.node_id),), {}),
                                ("delete", (keys.tokens(self.node_id),), {})])
        d.addTimeout(self.read_timeout, self.clock)
        return d.addErrback(lambda failure: self._failed("leave", failure))


def _lost_call(value: Any) -> dict[str, Any] | None:
    """The call object in a ``wcsgw:lost:<callId>`` value (the owner record of the take-over)."""
    call = value.get("call") if isinstance(value, dict) else None
    return call if isinstance(call, dict) else None
