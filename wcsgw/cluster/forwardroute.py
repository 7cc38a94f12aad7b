"""Where a REST request is answered in a cluster: here, at the node holding its call, or by
every live node (docs/scaling.md, "REST on any node").

Why apart from the HTTP client: the decision is the rule the docs state, and it is tested
with plain values (no request, no Redis); :mod:`wcsgw.api.restcluster` carries it out.
"""

from __future__ import annotations

import enum
from typing import Any, Callable, Mapping

from wcsgw.cluster.nodes import Node

__all__ = ["IN_CALL", "FAN_OUT", "HANDED_OVER", "Route", "route", "after_lookup", "merge_lists"]

#: the routes that act on one call named by ``callId``
IN_CALL = frozenset({"/call/terminate", "/call/send_dtmf", "/call/hold", "/call/unhold",
                     "/call/transfer", "/call/record", "/call/ladder", "/call/find"})
#: the routes every live node answers for its own calls, merged
FAN_OUT = frozenset({"/call/find_all", "/call/find"})
#: the only routes a node ever hands to another: a signed request for any other route (the
#: operations, call/startup, gateway/drain, a recording) is refused, so a leaked
#: [cluster] secret reaches no more than the calls
HANDED_OVER = IN_CALL | FAN_OUT


class Route(enum.Enum):
    LOCAL = "local"  # this node answers (its own call, or not a call's route)
    OWNER = "owner"  # ask the cluster which node holds the call, then hand it over
    FAN_OUT = "fan-out"  # every live node answers for its own calls
    LOST = "lost"  # the call's node died: answered from the cluster's record of it


def route(path: str, body: Mapping[str, Any], *, handed_over: bool,
          held_here: Callable[[str], bool]) -> Route:
    """The first step for ``path``.  A handed-over request (signed by another node) is always
    answered here — it is never handed on, so no request can loop.  ``call/startup`` and the
    operations stay here: the balancer chose this node.  A body without a usable ``callId``
    is answered here too, where its field check names the problem."""
    if handed_over:
        return Route.LOCAL
    call_id = body.get("callId")
    if path in IN_CALL and isinstance(call_id, str) and call_id:
        return Route.LOCAL if held_here(call_id) else Route.OWNER
    if path in FAN_OUT:
        return Route.FAN_OUT
    return Route.LOCAL


def after_lookup(owner: Node | None, self_id: str, lost: bool) -> Route:
    """Once the cluster said who holds the call: another live node -> hand it over; a dead
    node's call (``lost``) -> answered from its record; else here (which answers 404)."""
    if owner is not None and owner.node_id != self_id:
        return Route.OWNER
    return Route.LOST if lost else Route.LOCAL


def merge_lists(answers: list[Any]) -> list[dict[str, Any]]:
    """The call objects of every node's answer, in node order; an answer that is not a list
    (a 404 "no call matches" is one) adds nothing."""
    merged: list[dict[str, Any]] = []
    for answer in answers:
        if isinstance(answer, list):
            merged.extend(item for item in answer if isinstance(item, dict))
    return merged
