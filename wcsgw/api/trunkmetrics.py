"""``wcsgw_trunk_up``: which trunks answer their OPTIONS keep-alive (docs/metrics.md).

Apart from :mod:`wcsgw.api.metrics` for that module's size; it is one of its collectors.
Labels are the operator's own account names (``[[accounts]] name``), never a URI or login.
"""

from __future__ import annotations

from typing import Any

from wcsgw.api.metrics import Family

__all__ = ["trunk_families"]


def trunk_families(trunks: Any) -> list[Family]:
    """1 per probed trunk that is up, 0 per one marked down; no series for trunks without
    ``options_interval`` (nothing is known of them)."""
    up = Family("wcsgw_trunk_up", "gauge",
                "1 when the trunk ([[accounts]] name with options_interval) answers its OPTIONS "
                "keep-alive, 0 when it is marked down (calls on it are refused).")
    for trunk in trunks.probed():
        up.add(1 if trunk.up else 0, account=trunk.name)
    return [up]
