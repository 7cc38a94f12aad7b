"""REST on any node of a cluster (docs/scaling.md, "REST on any node"): a request for a call
another node holds is handed to that node over the signed internal channel, and
``call/find_all`` asks every live node.

Why here and not in :mod:`wcsgw.api.restcalls`: without ``[cluster] redis_url`` the REST API
must not change by one byte, so the cluster's part wraps :class:`~wcsgw.api.restcalls.RestApi`
instead of living inside it; the rules (what goes where) are
:mod:`wcsgw.cluster.forwardroute`'s, the signature :mod:`wcsgw.cluster.forward`'s.

The owner answers exactly as it would its own client: its status and body come back
unchanged.  A node that does not answer within :data:`TIMEOUT` is left out of a fan-out and
named in the log; for a single call's request the client gets 502 naming ``callId``.
Secrets: the signature header's value is never logged.
"""

from __future__ import annotations

import json
import weakref
from io import BytesIO
from typing import Any, Callable

from twisted.internet import defer
from twisted.logger import Logger
from twisted.web.client import Agent, FileBodyProducer, readBody
from twisted.web.http_headers import Headers
from twisted.web.server import Request

from wcsgw.api.restcalls import RestApi, RestReply
from wcsgw.api.restfields import RestError
from wcsgw.cluster import forward
from wcsgw.cluster.forwardroute import HANDED_OVER, Route, after_lookup, merge_lists, route
from wcsgw.cluster.nodes import Node

__all__ = ["ClusterRest", "TIMEOUT", "check_signature"]

log = Logger(namespace="wcsgw.rest.cluster")

#: seconds a node gets to answer a handed-over request
TIMEOUT = 5.0
#: each cluster's (this node's) memory of the requests it accepted, against replays
_GUARDS: weakref.WeakKeyDictionary[Any, forward.ReplayGuard] = weakref.WeakKeyDictionary()
_JSON = b"application/json"


def check_signature(cluster: Any, request: Request, path: str, read: Callable[[], bytes],
                    now: float) -> bool:
    """True for a request another node signed well; False for one with no signature (the
    bearer token then decides); 401 for a bad one, logged without the header's value.
    ``read``: the body (read only when there is a signature to check)."""
    header = request.getHeader(forward.HEADER)
    if header is None:
        return False
    if path not in HANDED_OVER:
        log.warn("rest {path}: refused a cluster request: not a route nodes hand over", path=path)
        raise RestError(401, "the cluster signature is not valid for this route")
    try:
        signed = forward.verify(cluster.secret, header, request.method.decode("ascii", "replace"),
                                path, read(), now)
        guard = _GUARDS.get(cluster)
        if guard is None:
            guard = _GUARDS[cluster] = forward.ReplayGuard()
        guard.admit(signed, now)
    except forward.SignatureError as exc:
        log.warn("rest {path}: refused a cluster request: {why}", path=path, why=str(exc))
        raise RestError(401, "the cluster signature is not valid") from None
    log.debug("rest {path}: handed over by node {node}", path=path, node=signed.node)
    return True


class ClusterRest:
    """:class:`RestApi` across the cluster's nodes.  ``agent``: the HTTP client (a
    twisted.web Agent); ``clock``: a reactor (seconds, callLater) for the signature's time
    and the timeouts."""

    def __init__(self, api: RestApi, cluster: Any, clock: Any, agent: Any = None,
                 timeout: float = TIMEOUT) -> None:
        self.api = api
        self.cluster = cluster
        self.clock = clock
        self.agent: Any = agent if agent is not None else Agent(  # type: ignore[no-untyped-call]
            clock, connectTimeout=timeout)
        self.timeout = timeout

    def handle(self, path: str, body: dict[str, Any], *, peer: str | None,
               handed_over: bool) -> defer.Deferred[RestReply]:
        """What :meth:`RestApi.handle` does, on whichever node holds the call."""
        calls = getattr(self.api.gateway, "calls", {})
        first = route(path, body, handed_over=handed_over, held_here=lambda c: c in calls)
        if first is Route.LOCAL:
            return self._local(path, body, peer)
        if first is Route.FAN_OUT:
            return defer.ensureDeferred(self._fan_out(path, body, peer))
        return defer.ensureDeferred(self._to_owner(path, body, str(body["callId"]), peer))

    def _local(self, path: str, body: dict[str, Any],
               peer: str | None) -> defer.Deferred[RestReply]:
        """Answered here; the call objects say which node holds them (``node``)."""
        def mark(reply: RestReply) -> RestReply:
            if path in ("/call/find", "/call/find_all") and isinstance(reply.body, list):
                for item in reply.body:
                    if isinstance(item, dict):
                        item.setdefault("node", self.cluster.node_id)
            return reply
        return self.api.handle(path, body, peer=peer).addCallback(mark)

    async def _to_owner(self, path: str, body: dict[str, Any], call_id: str,
                        peer: str | None) -> RestReply:
        owner: Node | None = await self.cluster.owner_of_call(call_id)
        lost = None
        if owner is None or owner.node_id == self.cluster.node_id:
            lost = await self.cluster.lost_call(call_id)
        step = after_lookup(owner, self.cluster.node_id, lost is not None)
        if step is Route.LOCAL:
            reply = await self._local(path, body, peer)
            if path == "/call/ladder" and reply.status == 404:
                # an ended call has no owner any more, but its node keeps its ladder a while
                return await self._kept_elsewhere(path, body) or reply
            return reply
        if step is Route.LOST:
            assert lost is not None
            if path == "/call/find":
                return RestReply(200, [lost])
            return RestReply.of_error(RestError(
                410, f"callId: the call's node is gone ({lost.get('info') or 'node lost'})",
                "callId"))
        assert owner is not None
        try:
            return await self._send(owner, path, body)
        except Exception as exc:
            log.warn("rest {path}: node {node} did not answer for call {call_id}: {why}",
                     path=path, node=owner.node_id, call_id=call_id, why=type(exc).__name__)
            return RestReply.of_error(RestError(
                502, f"callId: the node holding the call ({owner.node_id}) did not answer",
                "callId"))

    async def _fan_out(self, path: str, body: dict[str, Any], peer: str | None) -> RestReply:
        """Every live node in parallel, this one locally; the merged list.  ``call/find`` with
        nothing anywhere is 404, as on one node."""
        nodes: list[Node] = await self.cluster.live_nodes()
        others = [n for n in nodes if n.node_id != self.cluster.node_id]
        asked = [defer.ensureDeferred(self._send(n, path, body)) for n in others]
        results = await defer.DeferredList([self._local(path, body, peer), *asked],
                                           consumeErrors=True)
        answers: list[Any] = []
        reply: Any
        for node, (ok, reply) in zip([None, *others], results):
            if not ok or reply.status not in (200, 404):
                name = node.node_id if node is not None else self.cluster.node_id
                why = f"status {reply.status}" if ok else reply.getErrorMessage()
                log.warn("rest {path}: node {node} left out of the answer: {why}",
                         path=path, node=name, why=why)
                continue
            answers.append(_json_of(reply.body) if reply.status == 200 else None)
        merged = merge_lists(answers)
        if not merged and path == "/call/find":
            return RestReply.of_error(RestError(404, "no call matches the filters"))
        return RestReply(200, merged)

    async def _kept_elsewhere(self, path: str, body: dict[str, Any]) -> RestReply | None:
        """The first 200 of the other live nodes, asked in parallel; None if none has it."""
        nodes: list[Node] = await self.cluster.live_nodes()
        others = [n for n in nodes if n.node_id != self.cluster.node_id]
        asked = [defer.ensureDeferred(self._send(n, path, body)) for n in others]
        results = await defer.DeferredList(asked, consumeErrors=True)
        return next((reply for ok, reply in results if ok and reply.status == 200), None)

    async def _send(self, node: Node, path: str, body: dict[str, Any]) -> RestReply:
        """``path`` with ``body`` to ``node``, signed; its status and body as they are."""
        raw = json.dumps(body, separators=(",", ":")).encode("utf-8")
        signature = forward.sign(self.cluster.secret, self.cluster.node_id, "POST", path, raw,
                                 self.clock.seconds())
        url = (node.internal_url.rstrip("/") + "/rest-api" + path).encode("utf-8")
        headers = Headers({b"content-type": [_JSON], forward.HEADER: [signature]})
        producer = FileBodyProducer(BytesIO(raw))  # type: ignore[no-untyped-call]
        d = self.agent.request(b"POST", url, headers, producer)
        d.addTimeout(self.timeout, self.clock)
        response = await d
        read = readBody(response)
        read.addTimeout(self.timeout, self.clock)
        content = await read
        kind = response.headers.getRawHeaders(b"content-type", [_JSON])[0]
        return RestReply(response.code, content, {b"content-type": kind})


def _json_of(body: Any) -> Any:
    if isinstance(body, bytes):
        try:
            return json.loads(body.decode("utf-8"))
        except ValueError:
            return None
    return body

