"""The gateway's doors in /metrics: draining, overloaded, and the event-loop lag behind it.

Why apart from :mod:`wcsgw.api.metrics`: these read the drain and the overload detector
(:mod:`wcsgw.calls.lifecycle` hangs them on the gateway), not the calls; the refusals they
cause are counted with the ``[limits]`` ones (``wcsgw_limit_refusals_total{limit="draining"}``
and ``{limit="overloaded"}``).
"""

from __future__ import annotations

from typing import Any, cast

from wcsgw.api.metrics import Family
from wcsgw.sip.reactor import Clock

__all__ = ["load_families"]


def load_families(gateway: Any, now: float | None = None) -> list[Family]:
    """``now``: on the clock the overload detector is fed on (None: the reactor's seconds,
    read here so importing this module installs no reactor)."""
    if now is None:
        from twisted.internet import reactor

        now = cast(Clock, reactor).seconds()
    drain = getattr(gateway, "drain", None)
    overload = getattr(gateway, "overload", None)
    families = [Family("wcsgw_draining", "gauge", "1 while the gateway drains (SIGTERM or "
                       "REST gateway/drain): new sessions and calls refused.")
                .add(1 if drain is not None and drain.draining else 0)]
    if overload is not None:
        families += [
            Family("wcsgw_overloaded", "gauge", "1 while overload control refuses new calls "
                   "(limits.max_loop_lag_ms, limits.max_cpu_percent).")
            .add(1 if overload.overloaded else 0),
            Family("wcsgw_event_loop_lag_seconds", "gauge", "How late the event loop ran its "
                   "timers, median over the last few seconds.").add(overload.mean_lag(now)),
        ]
    return families
