"""The shared browser port's counters (``media.browser_port``; docs/metrics.md).

Apart from :mod:`wcsgw.api.metrics` for that module's size; it is one of its collectors.
They are what an operator looks at when browsers on one port cannot connect: packets from
addresses no ICE check proved (a NAT that changed the browser's port, or someone probing),
ICE-TCP connections refused (the cap, broken framing) and those open now.
"""

from __future__ import annotations

from typing import Any

from wcsgw.api.metrics import Family

__all__ = ["browser_port_families"]


def browser_port_families(shared: Any) -> list[Family]:
    """The families of one :class:`~wcsgw.webrtc.sharedport.SharedPort`."""
    return [
        Family("wcsgw_browser_port_dropped_total", "counter",
               "Packets on the shared browser port from addresses no ICE check proved "
               "(dropped before any call saw them).").add(shared.demux.dropped),
        Family("wcsgw_browser_port_tcp_refused_total", "counter",
               "ICE-TCP connections refused on the shared browser port (over the limit, "
               "broken RFC 4571 framing).").add(shared.tcp_refused),
        Family("wcsgw_browser_port_tcp_connections", "gauge",
               "ICE-TCP connections open on the shared browser port.").add(shared.tcp_connections),
    ]
