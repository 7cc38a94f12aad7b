"""``GET /metrics``: what the gateway is doing, in the Prometheus text exposition format 0.0.4.

Why hand-written rather than prometheus_client: every value here is read at scrape time from
objects the gateway already keeps (the call registry, the bridges' and legs' counters, the SIP
endpoint's stats, the port allocator), so prometheus_client would only contribute its
exposition writer and a process-wide registry we do not want (two gateways in one test
process would share it).  The format is small — HELP/TYPE lines, escaped label values,
``_bucket``/``_sum``/``_count`` for the one histogram — and is written out in
:func:`render`; no dependency is added.

Nothing here runs per packet: a scrape walks the live calls once.  Counters that must outlive
a call (media packets, ended calls) are kept by :class:`wcsgw.calls.totals.CallTotals`, fed
where every call ends.

Safe by default: the site listens on 127.0.0.1 unless configured, and when ``[rest] tokens``
is non-empty ``/metrics`` wants the same ``Authorization: Bearer <token>`` (401 otherwise).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from typing import Any, Callable, Iterable, Sequence

import attr
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import Request

from wcsgw.calls.totals import direction_of

__all__ = ["CONTENT_TYPE", "Family", "MetricsResource", "collect", "escape_label", "render"]

log = Logger(namespace="wcsgw.api.metrics")

CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"
_REALM = b'Bearer realm="wcsgw"'
IMPORTED_AT = time.time()

#: Live call statuses, each always exposed (0 included) so sums never come back empty.
_LIVE_STATUSES = ("NEW", "PENDING", "TRYING", "RING", "RING_MEDIA", "SESSION_PROGRESS",
                  "ESTABLISHED", "HOLD")
_REGISTRATION_STATES = ("idle", "registering", "registered", "unregistering", "backoff", "failed")
_LEGS = ("webrtc", "sip")

Labels = tuple[tuple[str, str], ...]


@attr.s(auto_attribs=True)
class Family:
    """One metric family: its samples are ``(sample name suffix, labels, value)``."""

    name: str
    type: str  # counter, gauge, histogram
    help: str
    samples: list[tuple[str, Labels, float]] = attr.ib(factory=list)

    def add(self, value: float, suffix: str = "", **labels: str) -> "Family":
        self.samples.append((suffix, tuple(labels.items()), value))
        return self


# -- the text format -----------------------------------------------------------------------


def escape_label(value: str) -> str:
    r"""Label values escape ``\``, ``"`` and newline (the format's only three)."""
    return value.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value: float) -> str:
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def render(families: Iterable[Family]) -> bytes:
    """The exposition: per family ``# HELP``, ``# TYPE``, then its samples."""
    lines: list[str] = []
    for family in families:
        lines.append(f"# HELP {family.name} {_escape_help(family.help)}")
        lines.append(f"# TYPE {family.name} {family.type}")
        for suffix, labels, value in family.samples:
            text = ",".join(f'{key}="{escape_label(str(v))}"' for key, v in labels)
            lines.append(f"{family.name}{suffix}{{{text}}} {_number(value)}" if labels
                         else f"{family.name}{suffix} {_number(value)}")
    return ("\n".join(lines) + "\n").encode("utf-8")


# -- what is exposed -----------------------------------------------------------------------


def session_families(gateway: Any) -> list[Family]:
    sessions = list(gateway.sessions.values())
    connected = sum(1 for s in sessions if s.connected)
    # waiting for a resume: their WebSocket dropped, their calls and registration go on
    detached = sum(1 for s in sessions if s.connected and s.relay is not None
                   and not s.relay.attached)
    family = Family("wcsgw_websocket_sessions", "gauge",
                    "Browser sessions: connected (after connect), detached (connected, their "
                    "WebSocket gone, waiting for a resume) or open (not yet, or after "
                    "disconnect).")
    family.add(connected - detached, state="connected").add(detached, state="detached")
    family.add(len(sessions) - connected, state="open")
    families = [family]
    refusals = getattr(gateway, "refusals", None)
    if refusals is not None:
        refused = Family("wcsgw_limit_refusals_total", "counter",
                         "Sessions and calls refused by a [limits] setting, by limit (ports: "
                         "the media port range was exhausted).")
        for limit, count in refusals.items():
            refused.add(count, limit=limit)
        families.append(refused)
    return families


def hook_families(hooks: Any) -> list[Family]:
    """The REST hooks of ``[[apps]]`` (docs/hooks.md): requests, failures, notices dropped."""
    return [Family("wcsgw_hook_requests_total", "counter", "Hook requests sent (decisions "
                   "and notices, retries included).").add(hooks.requests),
            Family("wcsgw_hook_failures_total", "counter", "Hook requests that failed: no "
                   "reply in time, a connection error or a non-2xx.").add(hooks.failures),
            Family("wcsgw_hook_notices_dropped_total", "counter", "Notice events given up: "
                   "the queue was full, or every retry failed.").add(hooks.queue.dropped)]


def call_families(gateway: Any) -> list[Family]:
    live = list(gateway.calls.values())
    by_status = dict.fromkeys(_LIVE_STATUSES, 0)
    active: dict[tuple[str, str, str, str], int] = {}
    for call in live:
        described = call.describe()
        status = str(described.get("status"))
        by_status[status] = by_status.get(status, 0) + 1
        media = described.get("media") or {}
        key = (direction_of(call), media.get("mode") or "none", media.get("webrtcCodec") or "",
               media.get("sipCodec") or "")
        active[key] = active.get(key, 0) + 1
    calls = Family("wcsgw_calls", "gauge", "Live calls by call status (docs/contract.md statuses).")
    for status, count in by_status.items():
        calls.add(count, status=status)
    by_media = Family("wcsgw_calls_active", "gauge",
                      "Live calls by direction, media mode (relay, transcode; none before both "
                      "legs agreed) and codec pair (rtpmap on each leg).")
    for (direction, mode, webrtc_codec, sip_codec), count in sorted(active.items()):
        by_media.add(count, direction=direction, mode=mode, webrtc_codec=webrtc_codec,
                     sip_codec=sip_codec)

    snap = gateway.totals.snapshot(live)
    ended = Family("wcsgw_calls_ended_total", "counter",
                   "Calls ended, by direction, final status (FINISH, BUSY, FAILED) and info "
                   "(a docs/contract.md reason, 'SIP response' with sip_code, or 'other').")
    for (direction, status, info, sip_code), count in sorted(snap.ended.items()):
        ended.add(count, direction=direction, status=status, info=info, sip_code=sip_code)
    setup = Family("wcsgw_call_setup_seconds", "histogram",
                   "Time from a call's start to its answer (ringing included), answered calls.")
    for bound, count in zip(snap.setup_buckets, snap.setup_counts):
        setup.add(count, "_bucket", le=_number(float(bound)))
    setup.add(snap.setup_counts[-1], "_bucket", le="+Inf")
    setup.add(snap.setup_sum, "_sum").add(snap.setup_counts[-1], "_count")
    return [calls, by_media, ended, setup] + media_families(snap.media)


def media_families(media: dict[tuple[str, str], float]) -> list[Family]:
    """Audio media counters summed over live and ended calls, per leg (webrtc: the browser
    side — the file player for REST file calls; sip: the SIP side)."""

    def per_leg(name: str, type_: str, help_: str, key: str, **extra: str) -> Family:
        family = Family(name, type_, help_)
        for leg in _LEGS:
            family.add(media.get((leg, key), 0), leg=leg, **extra)
        return family

    packets = Family("wcsgw_rtp_packets_total", "counter",
                     "Audio RTP packets received from (in) and sent to (out) each leg.")
    octets = Family("wcsgw_rtp_payload_bytes_total", "counter",
                    "Audio RTP payload bytes received from (in) and sent to (out) each leg.")
    for leg in _LEGS:
        packets.add(media.get((leg, "packets_received"), 0), leg=leg, direction="in")
        packets.add(media.get((leg, "packets_sent"), 0), leg=leg, direction="out")
        octets.add(media.get((leg, "octets_received"), 0), leg=leg, direction="in")
        octets.add(media.get((leg, "octets_sent"), 0), leg=leg, direction="out")
    families = [
        packets, octets,
        per_leg("wcsgw_rtp_dropped_packets_total", "counter",
                "RTP packets from each leg with a payload type the call did not negotiate.",
                "dropped"),
        per_leg("wcsgw_rtp_malformed_packets_total", "counter",
                "Packets from each leg that are not RTP/RTCP or whose RTP is malformed.",
                "malformed"),
        per_leg("wcsgw_transcoder_codec_errors_total", "counter",
                "Frames from each leg the transcoder could not decode (or encode).",
                "codec_errors"),
        per_leg("wcsgw_transcoder_concealed_seconds_total", "counter",
                "Audio from each leg the transcoder concealed (loss, late packets), seconds.",
                "concealed_ms"),
        per_leg("wcsgw_transcoder_late_packets_total", "counter",
                "Packets from each leg that came too late for the transcoder's reorder buffer.",
                "late"),
        per_leg("wcsgw_transcoder_duplicate_packets_total", "counter",
                "Duplicate packets from each leg dropped by the transcoder's reorder buffer.",
                "duplicates"),
    ]
    srtp = Family("wcsgw_srtp_errors_total", "counter",
                  "SRTP/SRTCP packets from browsers that failed authentication or replay checks.")
    srtp.add(media.get(("webrtc_leg", "srtp_errors"), 0))
    dropped = Family("wcsgw_webrtc_dropped_packets_total", "counter",
                     "Browser-leg packets dropped by the WebRTC leg (in: from an address ICE "
                     "did not authenticate, or before the DTLS keys; out: before the keys, "
                     "after the call, or a failed send).")
    dropped.add(media.get(("webrtc_leg", "dropped_in"), 0), direction="in")
    dropped.add(media.get(("webrtc_leg", "dropped_out"), 0), direction="out")
    return families + [srtp, dropped]


def port_families(allocator: Any) -> list[Family]:
    return [
        Family("wcsgw_rtp_ports_in_use", "gauge",
               "UDP media ports taken from the [media] port range (RTP, RTCP, WebRTC, video)."
               ).add(len(allocator.in_use)),
        Family("wcsgw_rtp_ports_capacity", "gauge",
               "Size of the [media] port range (port_max - port_min + 1).").add(allocator.size),
    ]


def sip_families(sip: Any) -> list[Family]:
    endpoint = getattr(sip, "endpoint", None)
    transport = getattr(sip, "transport", None)
    if endpoint is None:
        return []
    stats = endpoint.stats
    families = []
    for way, counts in (("received", stats.messages_in), ("sent", stats.messages_out)):
        requests = Family(f"wcsgw_sip_requests_{way}_total", "counter",
                          f"SIP requests {way} by method (unknown methods: other)"
                          + (", retransmissions included." if way == "sent" else "."))
        responses = Family(f"wcsgw_sip_responses_{way}_total", "counter",
                           f"SIP responses {way} by class (1xx-6xx)"
                           + (", retransmissions included." if way == "sent" else "."))
        for key, count in sorted(counts.items()):
            if key.endswith("xx"):
                responses.add(count, **{"class": key})
            else:
                requests.add(count, method=key)
        families += [requests, responses]
    families += [
        Family("wcsgw_sip_malformed_messages_total", "counter",
               "SIP messages that did not parse (answered 400 when possible, else dropped)."
               ).add(stats.malformed),
        Family("wcsgw_sip_untrusted_requests_total", "counter",
               "SIP requests on a live dialog (or CANCELs) from an address that is not the "
               "dialog's peer or the account's proxy: dropped unanswered (docs/security.md)."
               ).add(stats.untrusted),
        Family("wcsgw_sip_transaction_timeouts_total", "counter",
               "SIP transactions that timed out (Timer B, F or H).").add(stats.transaction_timeouts),
        Family("wcsgw_sip_transport_failures_total", "counter",
               "SIP transactions ended because the transport could not send."
               ).add(stats.transport_failures),
        Family("wcsgw_sip_transactions", "gauge", "SIP transactions in progress."
               ).add(len(endpoint.layer)),
    ]
    registrations = Family("wcsgw_sip_registrations", "gauge",
                           "SIP registrations kept by the gateway (accounts and browser "
                           "sessions), by state.")
    states = dict.fromkeys(_REGISTRATION_STATES, 0)
    for reg in endpoint.registrations:
        state = reg.registration.state.value
        states[state] = states.get(state, 0) + 1
    for state, count in states.items():
        registrations.add(count, state=state)
    families.append(registrations)
    if transport is not None:
        families += [
            Family("wcsgw_sip_tcp_connections", "gauge", "Open SIP TCP connections."
                   ).add(len(transport.streams)),
            Family("wcsgw_sip_tcp_connections_refused_total", "counter",
                   "SIP TCP connections refused at [sip] max_connections."
                   ).add(transport.refused_connections),
        ]
    return families


def collect(gateway: Any = None) -> list[Family]:
    """Every family, read now.  A collector that fails is logged and counted, and the rest
    of the scrape still answers: one bug must not blind the operator."""
    from wcsgw.api.processmetrics import process_families  # it imports Family from here

    collectors: list[tuple[str, Callable[[], list[Family]]]] = [("process", process_families)]
    if gateway is not None:
        collectors += [("sessions", lambda: session_families(gateway)),
                       ("calls", lambda: call_families(gateway))]
        if getattr(gateway, "media_ports", None) is not None:
            collectors.append(("ports", lambda: port_families(gateway.media_ports)))
        collectors.append(("sip", lambda: sip_families(getattr(gateway, "sip", None))))
        from wcsgw.api.loadmetrics import load_families  # it imports Family from here
        collectors.append(("load", lambda: load_families(gateway)))
        if getattr(gateway, "hooks", None) is not None:
            collectors.append(("hooks", lambda: hook_families(gateway.hooks)))
        if getattr(gateway, "browser_port", None) is not None:
            from wcsgw.api.browserportmetrics import browser_port_families
            collectors.append(("browser_port", lambda: browser_port_families(gateway.browser_port)))
        from wcsgw.api.opsmetrics import ops_families  # it imports Family from here
        collectors.append(("operations", lambda: ops_families(gateway)))
        if getattr(gateway, "trunks", None) is not None:
            from wcsgw.api.trunkmetrics import trunk_families  # it imports Family from here
            collectors.append(("trunks", lambda: trunk_families(gateway.trunks)))
    families: list[Family] = []
    errors = Family("wcsgw_metrics_collector_errors", "gauge",
                    "1 when a part of this scrape failed (see the gateway log), by part.")
    for name, collector in collectors:
        try:
            families += collector()
            errors.add(0, collector=name)
        except Exception:  # noqa: BLE001 - logged; the other collectors still answer
            log.failure("metrics collector {collector} failed", collector=name)
            errors.add(1, collector=name)
    return families + [errors]


# -- the resource --------------------------------------------------------------------------


def _digest(token: bytes) -> bytes:
    return hashlib.sha256(token).digest()


class MetricsResource(Resource):
    """``GET /metrics``.  With ``tokens`` (``[rest] tokens``), a bearer token is required."""

    isLeaf = True

    def __init__(self, gateway: Any = None, tokens: Sequence[str] = ()) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.gateway = gateway
        self._token_digests = [_digest(t.encode("utf-8")) for t in tokens]

    def _authorized(self, request: Request) -> bool:
        if not self._token_digests:
            return True
        scheme, _, token = (request.getHeader(b"authorization") or b"").strip().partition(b" ")
        if scheme.lower() != b"bearer" or not token.strip():
            return False
        given = _digest(token.strip())
        ok = False
        for digest in self._token_digests:  # no early exit: the time says nothing
            ok |= hmac.compare_digest(given, digest)
        return ok

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"cache-control", b"no-store")  # type: ignore[no-untyped-call]
        if not self._authorized(request):
            request.setResponseCode(401)
            request.setHeader(b"www-authenticate", _REALM)  # type: ignore[no-untyped-call]
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")  # type: ignore[no-untyped-call]
            return b"a bearer token is required (Authorization: Bearer <token>)\n"
        request.setHeader(b"content-type", CONTENT_TYPE)  # type: ignore[no-untyped-call]
        return render(collect(self.gateway))
