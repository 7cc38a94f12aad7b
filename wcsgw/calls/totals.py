"""Running totals of the calls a gateway has ended, for operators' metrics (``/metrics``).

Why this exists: a live call's media counters live in its bridge and its WebRTC leg, and both
are dropped when the call ends.  Prometheus counters must never go down, so what an ended call
counted is added here, once, where every call ends (:meth:`CallGateway._forget_call`); a scrape
adds the live calls' current counters on top (:meth:`CallTotals.snapshot`).  Nothing here runs
per packet: the relay path is benchmarked and stays as it is.

The label values are bounded on purpose — ``info`` is one of the reasons docs/contract.md names,
``SIP response`` (then ``sip_code`` says which) or ``other`` — so a peer's free-text reason
phrases cannot grow the metrics without bound.
"""

from __future__ import annotations

import weakref
from typing import Any, Iterable

import attr

from wcsgw.calls.status import Info

__all__ = ["CallTotals", "MEDIA_COUNTERS", "LEG_COUNTERS", "SETUP_BUCKETS", "Snapshot",
           "direction_of", "ended_labels", "media_counters"]

TERMINAL = frozenset({"BUSY", "FINISH", "FAILED"})
KNOWN_INFOS = frozenset(v for k, v in vars(Info).items() if k.isupper() and isinstance(v, str))
SIP_RESPONSE = "SIP response"

#: Per-leg counters of MediaBridge.stats() kept as running totals: (stats key, scale).  The
#: transcoder's keys (late, duplicates, concealed_ms) exist only while transcoding.
MEDIA_COUNTERS: tuple[tuple[str, float], ...] = (
    ("packets_received", 1), ("octets_received", 1), ("packets_sent", 1), ("octets_sent", 1),
    ("dropped", 1), ("malformed", 1), ("codec_errors", 1), ("late", 1), ("duplicates", 1),
    ("concealed_ms", 0.001),  # kept in seconds (base unit)
)
#: Counters of the WebRTC leg (wcsgw.webrtc.leg.WebRtcLeg); a file call's leg has none.
LEG_COUNTERS = ("srtp_errors", "dropped_in", "dropped_out")

#: Call set-up (start -> answer, ringing included) histogram bounds, in seconds.
SETUP_BUCKETS = (0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)

Key = tuple[str, str]  # (leg or "webrtc_leg", counter)


def direction_of(call: Any) -> str:
    return "incoming" if getattr(call, "incoming", False) else "outbound"


def _value(status: Any) -> str:
    return str(getattr(status, "value", status))


def ended_labels(call: Any) -> tuple[str, str, str, str]:
    """(direction, status, info, sip_code) of an ended call — every value from a bounded set."""
    info = getattr(call, "info", "") or ""
    code = getattr(call, "sip_status", None)
    status = _value(getattr(call, "status", ""))
    sip_code = ""
    if info in KNOWN_INFOS:
        label = info
    elif status in ("BUSY", "FAILED") and isinstance(code, int) and 300 <= code <= 699:
        label, sip_code = SIP_RESPONSE, str(code)
    else:
        label = "other"
    return direction_of(call), status, label, sip_code


def media_counters(call: Any, stats: dict[str, dict[str, Any]] | None) -> dict[Key, float]:
    """One call's counters: ``stats`` (the bridge's, live or final) and its WebRTC leg's."""
    out: dict[Key, float] = {}
    for leg, values in (stats or {}).items():
        for name, scale in MEDIA_COUNTERS:
            value = values.get(name)
            if value is not None:
                out[(leg, name)] = value * scale
    leg_object = getattr(call, "leg", None)
    for name in LEG_COUNTERS:
        value = getattr(leg_object, name, None)
        if isinstance(value, int):
            out[("webrtc_leg", name)] = value
    return out


@attr.s(auto_attribs=True)
class Snapshot:
    """What a scrape reads: ended-call counts, the set-up histogram, media counter totals."""

    ended: dict[tuple[str, str, str, str], int]
    setup_buckets: tuple[float, ...]
    setup_counts: list[int]  # cumulative, one per bucket, then +Inf
    setup_sum: float
    media: dict[Key, float]


class CallTotals:
    """Counters of ended calls plus the set-up histogram, kept by the :class:`CallGateway`."""

    def __init__(self) -> None:
        self.ended: dict[tuple[str, str, str, str], int] = {}
        self.media: dict[Key, float] = {}
        self._bucket_counts = [0] * (len(SETUP_BUCKETS) + 1)  # non-cumulative; last: +Inf
        self._setup_sum = 0.0
        #: calls already counted: a call ends once, and is observed in the histogram once
        self._recorded: weakref.WeakSet[Any] = weakref.WeakSet()
        self._observed: weakref.WeakSet[Any] = weakref.WeakSet()

    def call_ended(self, call: Any) -> None:
        """``call`` left the registry.  Counted once, and only at a terminal status (a call
        its start refused was never up: the request that started it got the error)."""
        if call in self._recorded or _value(getattr(call, "status", "")) not in TERMINAL:
            return
        self._recorded.add(call)
        labels = ended_labels(call)
        self.ended[labels] = self.ended.get(labels, 0) + 1
        self.observe_setup(call)
        for key, value in media_counters(call, getattr(call, "final_media_stats", None)).items():
            self.media[key] = self.media.get(key, 0) + value

    def observe_setup(self, call: Any) -> None:
        """Put an answered call's set-up time in the histogram (once per call)."""
        start = getattr(call, "start_time", None)
        answer = getattr(call, "answer_time", None)
        if answer is None or start is None or call in self._observed:
            return
        self._observed.add(call)
        seconds = max(0.0, answer - start)
        index = next((i for i, bound in enumerate(SETUP_BUCKETS) if seconds <= bound),
                     len(SETUP_BUCKETS))
        self._bucket_counts[index] += 1
        self._setup_sum += seconds

    def snapshot(self, live_calls: Iterable[Any]) -> Snapshot:
        """Totals as of now: ended calls plus the live ones (their bridges read now)."""
        media = dict(self.media)
        for call in live_calls:
            self.observe_setup(call)  # answered since the last scrape
            bridge = getattr(call, "bridge", None)
            stats = bridge.stats() if bridge is not None else None
            for key, value in media_counters(call, stats).items():
                media[key] = media.get(key, 0) + value
        cumulative, running = [], 0
        for count in self._bucket_counts:
            running += count
            cumulative.append(running)
        return Snapshot(dict(self.ended), SETUP_BUCKETS, cumulative, self._setup_sum, media)
