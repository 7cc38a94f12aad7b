"""A call's live quality per leg (docs/contract.md ``callStats``): what the call object's
``stats``, the ``callStats`` notification and the call record say.

Why apart from the bridge's counters (wcsgw.media.bridgestats): those are the gateway's own
bookkeeping (packets, octets, drops) for ``/metrics``; this is the public shape a person reads —
loss, jitter, round-trip time and a MOS per leg — computed from them when asked, never per
packet.

Two views of the same counters: *since the call's media started* (the call object, the call
record of an ended call: ``call_stats(call)``) and *since the last sample* (the live graphs:
``call_stats(call, previous=...)`` with the counters that sample saw, kept by its caller —
wcsgw.calls.statsticker — so that a REST look at a call never moves the graphs' intervals).

Loss is seen from both ends of a leg: ``fractionLostIn`` is what *we* miss of what the leg
sends us (our receiver's counts), ``fractionLostOut`` what the leg's far end misses of what we
send it (its RTCP report); ``fractionLost`` is the worse of the two, which is what the MOS is
scored on (a leg is as good as its worse direction).
"""

from __future__ import annotations

from typing import Any

from wcsgw.media import quality

__all__ = ["LEGS", "call_stats", "leg_quality", "media_counters"]

#: the contract's leg names, and the bridge's names for them
LEGS = (("browser", "webrtc"), ("sip", "sip"))

Counters = dict[str, Any]


def _ratio(lost: float, total: float) -> float | None:
    if total <= 0:
        return None
    return min(1.0, max(0.0, lost / total))


def _loss_in(now: Counters, before: Counters | None) -> float | None:
    """What we missed of the leg's packets, since ``before`` (or since the start)."""
    lost = float(now.get("packets_lost") or 0)
    received = float(now.get("packets_received") or 0)
    if before is not None:
        lost -= float(before.get("packets_lost") or 0)
        received -= float(before.get("packets_received") or 0)
        lost = max(0.0, lost)
    return _ratio(lost, lost + received)


def _loss_out(now: Counters, before: Counters | None) -> float | None:
    """What the far end missed of ours: its last report's fraction (already an interval, RFC
    3550 §6.4.1) for the live view; its cumulative count over what we sent for the whole call."""
    if before is not None:
        fraction = now.get("remote_fraction_lost")
        return None if fraction is None else float(fraction)
    lost = now.get("remote_packets_lost")
    if lost is None:
        return None
    return _ratio(float(lost), float(now.get("packets_sent") or 0))


def _rounded(value: Any, digits: int) -> float | None:
    return None if value is None else round(float(value), digits)


def leg_quality(stats: Counters | None, codec: str | None = None,
                previous: Counters | None = None) -> dict[str, Any]:
    """One leg's public figures from its bridge counters (None: no media yet); ``previous``:
    the counters of the last sample, for loss over the interval since."""
    if not stats:
        return {"packetsLost": None, "fractionLost": None, "fractionLostIn": None,
                "fractionLostOut": None, "jitterMs": None, "rttMs": None, "mos": None}
    loss_in = _loss_in(stats, previous)
    loss_out = _loss_out(stats, previous)
    known = [f for f in (loss_in, loss_out) if f is not None]
    worse = max(known) if known else None
    jitter, rtt = stats.get("jitter_ms"), stats.get("rtt_ms")
    mos: float | None = None
    if stats.get("packets_received") or stats.get("packets_sent"):
        delay = quality.one_way_delay_ms(rtt, jitter)
        mos = round(quality.score(codec, worse, delay).mos, 2)
    return {
        "packetsLost": stats.get("packets_lost"),
        "fractionLost": _rounded(worse, 4),
        "fractionLostIn": _rounded(loss_in, 4),
        "fractionLostOut": _rounded(loss_out, 4),
        "jitterMs": _rounded(jitter, 1),
        "rttMs": _rounded(rtt, 1),
        "mos": mos,
    }


def media_counters(call: Any) -> dict[str, Counters] | None:
    """The bridge's counters of a live call now, or an ended call's as it ended (None: the
    call never had media)."""
    bridge = getattr(call, "bridge", None)
    counters = bridge.stats() if bridge is not None else getattr(call, "final_media_stats", None)
    return counters or None


def _codecs(call: Any) -> dict[str, str | None]:
    plan = getattr(call, "plan", None)
    browser = getattr(plan, "browser_codec", None)
    sip = getattr(plan, "sip_codec", None)
    return {"webrtc": browser.name if browser is not None else None,
            "sip": sip.name if sip is not None else None}


def call_stats(call: Any, previous: dict[str, Counters] | None = None,
               counters: dict[str, Counters] | None = None) -> dict[str, Any]:
    """``{"browser": {...}, "sip": {...}}`` for a live call (its bridge now) or an ended one
    (its counters as it ended): since the media started, or since ``previous`` (the
    :func:`media_counters` of the last sample). ``counters``: this sample's, if the caller
    already took them."""
    if counters is None:
        counters = media_counters(call) or {}
    codecs = _codecs(call)
    before = previous or {}
    return {name: leg_quality(counters.get(key), codecs[key],
                              before.get(key) if previous is not None else None)
            for name, key in LEGS}
