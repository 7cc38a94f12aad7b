"""What a refused ``connect {authToken}`` says in a cluster: which node holds the session.

Why: a resume that reaches the wrong node (the balancer's stickiness failed, or the node
died) must be refused — the session's media are in another process — but "Session expired or
unknown authToken" sends the browser to log in again when the right answer may be "go back to
node b".  The token's digest is looked up in the mirror (``wcsgw:token:<sha256>``); the words
are :func:`refusal_text`, pure; ``gateway.cluster.resume_refusal(token)``
(:mod:`wcsgw.cluster.state`) does the lookup.  The ``connect`` reply would wait on it (at
most the cluster's read timeout), so it is asked only for a token this node refused.
"""

from __future__ import annotations

from wcsgw.calls.resuming import EXPIRED

__all__ = ["EXPIRED", "refusal_text"]


def refusal_text(holder: tuple[str, bool] | None, me: str) -> str:
    """The refusal for a token whose session is held by ``holder`` (node id, lost?); the
    single gateway's text (:data:`EXPIRED`) when the cluster knows nothing more."""
    if holder is None:
        return EXPIRED
    node_id, lost = holder
    if lost:
        return f"Session lost with node {node_id} (Node {node_id} lost)"
    if node_id == me:
        return EXPIRED  # ours, and refused here: used up, or its window over
    return f"Session is held by node {node_id}: resume there (media are on that node)"
