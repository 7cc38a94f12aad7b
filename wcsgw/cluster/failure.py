"""When a node dies: who notices, what becomes of its calls (docs/scaling.md, "When a node
dies").  Pure functions and one small timing record; the Redis I/O is
:mod:`wcsgw.cluster.state`.

Why a lock and not a vote: every survivor sees the same expired heartbeat within a check
interval of each other, and the work (turning the dead node's calls into lost calls, telling
their apps) must happen once; ``SET NX`` with an expiry makes exactly one survivor win, and
the expiry frees the lock if that survivor dies halfway (the next one finishes the job: the
steps are idempotent).
"""

from __future__ import annotations

from typing import Any, Iterable

import attrs

__all__ = ["LOST_SECONDS", "LOCK_SECONDS", "Timing", "dead_nodes", "lost_call_object",
           "lost_info"]

#: how long the call object of a call whose node died stays readable (``lost_call``)
LOST_SECONDS = 3600
#: how long a survivor holds the take-over lock of one dead node
LOCK_SECONDS = 30


@attrs.frozen
class Timing:
    """``beat``: how often a node writes its heartbeat; ``expiry``: how long the heartbeat
    lives (a node is dead this long after its last beat); ``check``: how often each node
    looks for dead ones.  A dead node's calls are lost calls at most ``expiry + check`` (plus
    one Redis round trip) after its last beat, so within ``beat + expiry + check`` of its
    death."""

    beat: float = 1.0
    expiry: float = 4.0
    check: float = 1.0

    @property
    def bound(self) -> float:
        return self.beat + self.expiry + self.check


def dead_nodes(members: Iterable[str], beating: Iterable[bool], me: str) -> list[str]:
    """The announced nodes (``members``, the node set) whose heartbeat is gone (``beating``:
    one flag per member, in order), never ``me`` — a node that cannot see its own beat has
    lost Redis, not its life."""
    return [node for node, alive in zip(members, beating) if not alive and node != me]


def lost_info(node_id: str) -> str:
    return f"Node {node_id} lost"


def lost_call_object(call_object: Any, call_id: str, node_id: str) -> dict[str, Any]:
    """The call object a lost call answers with: what was known at its start, ``FAILED``
    with info "Node <id> lost" and the node named."""
    out: dict[str, Any] = dict(call_object) if isinstance(call_object, dict) else {}
    out.setdefault("callId", call_id)
    out.update({"status": "FAILED", "sipStatus": None, "info": lost_info(node_id),
                "node": node_id})
    return out
