"""A node of the cluster as the others see it: its id and where its REST API answers.

Why a class of its own: the cluster state (which node holds a call, which nodes are alive)
and the internal channel (handing a request to the owning node) both speak of nodes, and
each must not import the other; this is the one shape they share.
"""

from __future__ import annotations

import attrs

__all__ = ["Node"]


@attrs.frozen
class Node:
    """One gateway process of the cluster: ``node_id`` (``[cluster] node_id``) and
    ``internal_url`` (``[cluster] internal_url``, where the other nodes reach its REST API)."""

    node_id: str
    internal_url: str
