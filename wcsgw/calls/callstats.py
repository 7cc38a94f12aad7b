"""A call's live quality per leg (docs/contract.md ``callStats``): what the call object's
``stats``, the ``callStats`` notification and the call record say.

Why apart from the bridge's counters (wcsgw.media.bridgestats): those are the gateway's own
bookkeeping (packets, octets, drops) for ``/metrics``; this is the public shape a person reads —
loss, jitter, round-trip time and a MOS per leg — computed from them when asked, never per
packet.
"""

from __future__ import annotations

from typing import Any

__all__ = ["LEGS", "call_stats", "leg_quality"]

#: the contract's leg names, and the bridge's names for them
LEGS = (("browser", "webrtc"), ("sip", "sip"))


def leg_quality(stats: dict[str, Any] | None) -> dict[str, Any]:
    """One leg's public figures from its bridge counters (None: no media yet)."""
    stats = stats or {}
    return {
        "packetsLost": stats.get("packets_lost"),
        "fractionLost": stats.get("remote_fraction_lost"),
        "jitterMs": stats.get("jitter_ms"),
        "rttMs": stats.get("rtt_ms"),
        "mos": None,
    }


def call_stats(call: Any) -> dict[str, Any]:
    """``{"browser": {...}, "sip": {...}}`` for a live call (its bridge now) or an ended one
    (its counters as it ended)."""
    bridge = getattr(call, "bridge", None)
    counters = bridge.stats() if bridge is not None else getattr(call, "final_media_stats", None)
    counters = counters or {}
    return {name: leg_quality(counters.get(key)) for name, key in LEGS}
