"""What the cluster keeps in Redis, key by key (docs/scaling.md, "Shared state").

Why one module for the layout: every node reads what the others write, so the names and the
value shapes are a protocol between processes; kept here as pure functions they are one
place to read and unit-tested without a server.  Every key starts with :data:`PREFIX` so a
Redis shared with something else is not trampled on.

==============================  =========================================================
``wcsgw:nodes``                 set of the node ids that announced themselves
``wcsgw:beat:<node>``           the node's heartbeat (JSON: nodeId, internalUrl,
                                startedAt), expiring: alive while it exists
``wcsgw:call:<callId>``         the call's owner (JSON: node, sessionId, appKey, call)
``wcsgw:calls:<node>``          set of the callIds a node holds (the take-over reads it)
``wcsgw:session:<sessionId>``   the node holding a connected session
``wcsgw:sessions:<node>``       set of those session ids
``wcsgw:token:<digest>``        the node holding the session a resume token belongs to
                                (SHA-256 of the token, never the token); ``lost:<node>``
                                for an hour once that node was lost
``wcsgw:tokens:<node>``         set of those digests
``wcsgw:lost:<callId>``         the call object of a call whose node died (an hour)
``wcsgw:takeover:<node>``       the lock of the one survivor taking a dead node's calls
==============================  =========================================================
"""

from __future__ import annotations

import json
from typing import Any

from wcsgw.cluster.nodes import Node

__all__ = ["LOST", "NODES", "PREFIX", "beat", "beat_value", "call", "calls", "lost",
           "node_of_beat", "owner_value", "read_json", "session", "sessions",
           "takeover", "token", "token_node", "tokens"]

PREFIX = "wcsgw:"
NODES = PREFIX + "nodes"
#: what a token key holds once the node of its session was lost
LOST = "lost:"


def beat(node_id: str) -> str:
    return f"{PREFIX}beat:{node_id}"


def call(call_id: str) -> str:
    return f"{PREFIX}call:{call_id}"


def calls(node_id: str) -> str:
    return f"{PREFIX}calls:{node_id}"


def session(session_id: str) -> str:
    return f"{PREFIX}session:{session_id}"


def sessions(node_id: str) -> str:
    return f"{PREFIX}sessions:{node_id}"


def token(digest: str) -> str:
    return f"{PREFIX}token:{digest}"


def tokens(node_id: str) -> str:
    return f"{PREFIX}tokens:{node_id}"


def lost(call_id: str) -> str:
    return f"{PREFIX}lost:{call_id}"


def takeover(node_id: str) -> str:
    return f"{PREFIX}takeover:{node_id}"


def beat_value(node: Node, started_at: float) -> str:
    return json.dumps({"nodeId": node.node_id, "internalUrl": node.internal_url,
                       "startedAt": round(started_at, 3)}, separators=(",", ":"))


def read_json(raw: Any) -> Any:
    """A stored JSON value (bytes or str), None for a missing or unreadable one: a value
    another version wrote badly must not break this node."""
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except (TypeError, ValueError):
        return None


def node_of_beat(raw: Any) -> Node | None:
    """The node a heartbeat value names (None: missing or malformed)."""
    value = read_json(raw)
    if not isinstance(value, dict):
        return None
    node_id, url = value.get("nodeId"), value.get("internalUrl")
    if not isinstance(node_id, str) or not isinstance(url, str):
        return None
    return Node(node_id, url)


def owner_value(node_id: str, session_id: str | None, app_key: str | None,
                call_object: dict[str, Any]) -> str:
    return json.dumps({"node": node_id, "sessionId": session_id, "appKey": app_key,
                       "call": call_object}, separators=(",", ":"), default=str)


def token_node(raw: Any) -> tuple[str, bool] | None:
    """(node id, whether that node was lost) of a token key's value; None: no such token."""
    if raw is None:
        return None
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    if text.startswith(LOST):
        return text[len(LOST):], True
    return text, False
