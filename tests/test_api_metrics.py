"""``/metrics``: the Prometheus text exposition, read back by a strict parser.

Unit tests cover the format (escaping, histogram), the running totals of ended calls and the
SIP endpoint's counters; the gateway tests place real calls — REST ``call/startup`` with a
played file to the built-in test lines, through the gateway's own SIP stack and media bridge,
no browser — and check that the values go up, survive the call's end, and that the bearer
token of ``[rest] tokens`` is required.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
from io import BytesIO
from types import SimpleNamespace
from typing import Any

import attrs
import numpy as np
from twisted.internet import reactor
from twisted.trial import unittest
from twisted.web.client import Agent, FileBodyProducer, readBody
from twisted.web.http_headers import Headers
from twisted.web.test.requesthelper import DummyRequest

from tests.e2e import Gateway, Phone, gateway_config
from tests.peers.chromium import Chromium, write_tone_wav
from tests.support import EventLog, inline
from wcsgw.api.metrics import CONTENT_TYPE, Family, collect, escape_label, render, sip_families
from wcsgw.calls.totals import (
    MEDIA_COUNTERS,
    SETUP_BUCKETS,
    CallTotals,
    ended_labels,
    media_counters,
)
from wcsgw.config import Config, RestSettings
from wcsgw.media import g711
from wcsgw.media.bridge import LegMedia, MediaBridge
from wcsgw.media.rtp import build_rtp
from wcsgw.service import make_site
from wcsgw.sip.account import SipAccount
from wcsgw.sip.endpoint import EndpointConfig, SipEndpoint, message_key
from wcsgw.sip.parser import parse_message
from wcsgw.sip.responses import make_response
from wcsgw.sip.target import Target
from wcsgw.sip.transaction import TimerConfig

TOKEN = "metrics-secret"

# -- a strict parser of the text format 0.0.4 ----------------------------------------------

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\\\|\\"|\\n)*)"')
_SAMPLE = re.compile(rf"^({_NAME})(?:\{{(.*)\}})? (\S+)$")
_UNESCAPE = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}


def _labels(text: str) -> frozenset[tuple[str, str]]:
    out: dict[str, str] = {}
    pos = 0
    while pos < len(text):
        m = _LABEL.match(text, pos)
        if m is None:
            raise AssertionError(f"bad label set {{{text}}} at {pos}")
        key = m.group(1)
        if key in out:
            raise AssertionError(f"label {key} twice in {{{text}}}")
        out[key] = re.sub(r'\\\\|\\"|\\n', lambda e: _UNESCAPE[e.group()], m.group(2))
        pos = m.end()
        if pos < len(text):
            if text[pos] != ",":
                raise AssertionError(f"expected ',' in {{{text}}} at {pos}")
            pos += 1
    return frozenset(out.items())


def _value(text: str) -> float:
    if text in ("+Inf", "-Inf", "NaN"):
        return float(text.replace("Inf", "inf").replace("NaN", "nan"))
    if not re.fullmatch(r"-?[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?", text):
        raise AssertionError(f"bad value {text!r}")
    return float(text)


def parse_exposition(text: str) -> dict[str, dict[str, Any]]:
    """{family: {"type", "help", "samples": {(sample name, labels): value}}}; raises
    AssertionError on anything the format (or our naming rules) does not allow."""
    if not text.endswith("\n"):
        raise AssertionError("the exposition must end with a newline")
    families: dict[str, dict[str, Any]] = {}
    current: str | None = None
    for line in text[:-1].split("\n"):
        if line.startswith("# HELP "):
            name, _, help_ = line[7:].partition(" ")
            if name in families:
                raise AssertionError(f"family {name} declared twice")
            if not re.fullmatch(_NAME, name) or not name.startswith("wcsgw_"):
                raise AssertionError(f"bad family name {name}")
            if not help_.strip() or re.search(r"\\[^\\n]", help_.replace("\\\\", "")):
                raise AssertionError(f"bad HELP for {name}: {help_!r}")
            families[name] = {"help": help_, "type": None, "samples": {}}
            current = name
        elif line.startswith("# TYPE "):
            name, _, type_ = line[7:].partition(" ")
            if name != current or families[name]["type"] is not None or families[name]["samples"]:
                raise AssertionError(f"TYPE of {name} out of place")
            if type_ not in ("counter", "gauge", "histogram"):
                raise AssertionError(f"unexpected type {type_} of {name}")
            if type_ == "counter" and not name.endswith("_total"):
                raise AssertionError(f"counter {name} must end in _total")
            families[name]["type"] = type_
        elif line.startswith("#") or not line:
            raise AssertionError(f"unexpected line {line!r}")
        else:
            m = _SAMPLE.match(line)
            if m is None or current is None or families[current]["type"] is None:
                raise AssertionError(f"bad or orphan sample line {line!r}")
            name, labels, value = m.group(1), _labels(m.group(2) or ""), _value(m.group(3))
            family = families[current]
            allowed = ({current + s for s in ("_bucket", "_sum", "_count")}
                       if family["type"] == "histogram" else {current})
            if name not in allowed:
                raise AssertionError(f"sample {name} does not belong to {current}")
            if (name, labels) in family["samples"]:
                raise AssertionError(f"duplicate series {line!r}")
            if family["type"] == "counter" and (value < 0 or math.isnan(value)):
                raise AssertionError(f"negative counter {line!r}")
            family["samples"][(name, labels)] = value
    for name, family in families.items():
        if family["type"] == "histogram":
            _check_histogram(name, family["samples"])
    return families


def _check_histogram(name: str, samples: dict) -> None:
    buckets = sorted(((_value(dict(labels)["le"]), value)
                      for (sample, labels), value in samples.items() if sample == name + "_bucket"))
    counts = [value for _, value in buckets]
    if not buckets or buckets[-1][0] != math.inf or counts != sorted(counts):
        raise AssertionError(f"{name}: buckets must be cumulative up to +Inf: {buckets}")
    if samples[(name + "_count", frozenset())] != counts[-1]:
        raise AssertionError(f"{name}: _count differs from the +Inf bucket")


def value(families: dict, name: str, **labels: str) -> float:
    """One sample by family (or sample) name and its exact label set."""
    family = families.get(name) or families[re.sub(r"_(bucket|sum|count)$", "", name)]
    return family["samples"][(name, frozenset(labels.items()))]


def series(families: dict, name: str) -> dict[frozenset, float]:
    return {labels: v for (sample, labels), v in families[name]["samples"].items()
            if sample == name}


# -- the format ----------------------------------------------------------------------------


class ExpositionTests(unittest.TestCase):
    def test_escaping_and_values_read_back(self) -> None:
        family = Family("wcsgw_test_total", "counter", 'help with \\ and\nnewline')
        family.add(3, leg='we"ird\\path\nx').add(2.5, leg="plain")
        gauge = Family("wcsgw_test_gauge", "gauge", "g").add(float("inf")).add(0, extra="")
        text = render([family, gauge]).decode()
        self.assertIn('leg="we\\"ird\\\\path\\nx"', text)
        self.assertIn("# HELP wcsgw_test_total help with \\\\ and\\nnewline\n", text)
        parsed = parse_exposition(text)
        self.assertEqual(value(parsed, "wcsgw_test_total", leg='we"ird\\path\nx'), 3)
        self.assertEqual(value(parsed, "wcsgw_test_total", leg="plain"), 2.5)
        self.assertEqual(value(parsed, "wcsgw_test_gauge"), math.inf)
        self.assertEqual(escape_label('a"b'), 'a\\"b')

    def test_parser_is_strict(self) -> None:
        """The parser the other tests rely on refuses what the format does not allow."""
        good = "# HELP wcsgw_a_total a\n# TYPE wcsgw_a_total counter\nwcsgw_a_total 1\n"
        parse_exposition(good)
        for bad in (
            good.replace("wcsgw_a_total 1", 'wcsgw_a_total{x="1"'),
            good.replace("_total", ""),  # a counter without _total
            good + "wcsgw_a_total 2\n",  # the same series twice
            good.replace(" 1\n", " one\n"),
            good[:-1],
            good.replace('counter\n', 'counter\n# TYPE wcsgw_a_total counter\n'),
            "wcsgw_b 1\n",  # no HELP/TYPE
            good.replace(" 1\n", ' {x="a\\q"} 1\n'),
        ):
            with self.assertRaises(AssertionError, msg=bad):
                parse_exposition(bad)

    def test_without_a_gateway_process_families_only(self) -> None:
        parsed = parse_exposition(render(collect(None)).decode())
        [(labels, one)] = series(parsed, "wcsgw_build_info").items()
        self.assertEqual(one, 1)
        self.assertIn("version", dict(labels))
        start = value(parsed, "wcsgw_process_start_time_seconds")
        self.assertGreater(start, 1.6e9)
        self.assertEqual(value(parsed, "wcsgw_metrics_collector_errors", collector="process"), 0)


# -- running totals of ended calls ---------------------------------------------------------


class FakeLeg:
    def __init__(self) -> None:
        self.srtp_errors, self.dropped_in, self.dropped_out = 2, 1, 0


class FakeBridge:
    def __init__(self, packets: int) -> None:
        self.packets = packets

    def stats(self) -> dict:
        leg = {"packets_received": self.packets, "octets_received": 160 * self.packets,
               "packets_sent": self.packets, "octets_sent": 160 * self.packets, "dropped": 0,
               "malformed": 1, "codec_errors": 0, "jitter_ms": 3.0}
        return {"webrtc": dict(leg, concealed_ms=40.0, late=1, duplicates=0), "sip": dict(leg)}


class FakeCall:
    """What CallTotals reads of a call (weak-referenceable, like the real one)."""

    def __init__(self, **kw: Any) -> None:
        self.__dict__.update(kw)


def fake_call(status: str = "ESTABLISHED", **kw: Any) -> FakeCall:
    defaults = dict(status=status, info="", sip_status=None, incoming=False, start_time=100.0,
                    answer_time=None, bridge=None, leg=FakeLeg(), final_media_stats=None)
    return FakeCall(**{**defaults, **kw})


class CallTotalsTests(unittest.TestCase):
    def test_info_labels_are_bounded(self) -> None:
        cases = [
            (fake_call("FINISH", info="Normal call clearing", sip_status=200),
             ("outbound", "FINISH", "Normal call clearing", "")),
            (fake_call("BUSY", info="Busy Here", sip_status=486, incoming=True),
             ("incoming", "BUSY", "SIP response", "486")),
            (fake_call("FAILED", info="Failed by RTP activity", sip_status=200),
             ("outbound", "FAILED", "Failed by RTP activity", "")),
            (fake_call("FINISH", info="whatever the peer's Reason header said"),
             ("outbound", "FINISH", "other", "")),
        ]
        for call, expected in cases:
            self.assertEqual(ended_labels(call), expected)

    def test_counters_survive_the_end_and_count_once(self) -> None:
        totals = CallTotals()
        call = fake_call(answer_time=101.5, bridge=FakeBridge(10))
        live = totals.snapshot([call])
        self.assertEqual(live.media[("sip", "packets_received")], 10)
        self.assertEqual(live.media[("webrtc", "concealed_ms")], 0.04)  # seconds
        self.assertEqual(live.media[("webrtc_leg", "srtp_errors")], 2)
        self.assertEqual(live.setup_counts[-1], 1)
        # The call ends with more packets counted; the bridge is gone, its stats are kept.
        call.status, call.info = "FINISH", "Normal call clearing"
        call.final_media_stats, call.bridge = FakeBridge(12).stats(), None
        totals.call_ended(call)
        totals.call_ended(call)  # e.g. on_gone and a refused start: still once
        after = totals.snapshot([])
        self.assertEqual(after.media[("sip", "packets_received")], 12)
        self.assertEqual(after.media[("webrtc_leg", "srtp_errors")], 2)
        self.assertEqual(after.ended, {("outbound", "FINISH", "Normal call clearing", ""): 1})
        # set-up observed once (at the scrape, not again at the end), 1.5 s: the 2 s bucket
        self.assertEqual(after.setup_counts[-1], 1)
        self.assertEqual(after.setup_sum, 1.5)
        first = SETUP_BUCKETS.index(2.0)
        self.assertEqual(after.setup_counts[first - 1:first + 1], [0, 1])
        # A second live call adds on top of the ended one.
        other = fake_call(bridge=FakeBridge(5), leg=None)
        self.assertEqual(totals.snapshot([other]).media[("sip", "packets_received")], 17)

    def test_the_bridge_keys_read_are_the_bridge_s_own(self) -> None:
        """A real transcoding bridge (Opus <-> PCMA): every counter the totals read exists
        in MediaBridge.stats() — a renamed key would silently read as 0 otherwise — and a
        duplicate packet from the SIP side shows."""
        bridge = MediaBridge(LegMedia("opus", 111, ssrc=1), LegMedia("PCMA", 8, ssrc=2),
                             lambda packet: None, lambda packet: None, now=1000.0)
        self.assertEqual(bridge.mode, "transcode")
        frame = g711.alaw_encode(np.zeros(160, dtype=np.int16))
        now = 1000.0
        for seq in (1, 2, 3, 3, 4, 5):
            now += 0.02
            while (deadline := bridge.next_deadline()) is not None and deadline <= now:
                bridge.poll(deadline)
            bridge.from_sip(build_rtp(payload_type=8, sequence=seq, timestamp=160 * seq,
                                      ssrc=0x51, payload=frame), now)
        stats = bridge.stats()
        for leg in ("webrtc", "sip"):
            self.assertEqual({name for name, _ in MEDIA_COUNTERS} - set(stats[leg]), set(), leg)
        counters = media_counters(None, stats)
        self.assertEqual(counters[("sip", "packets_received")], 6)
        self.assertEqual(counters[("sip", "octets_received")], 6 * 160)  # RFC 3550 A.1 counts it
        self.assertEqual(counters[("sip", "duplicates")] + counters[("sip", "late")], 1)
        self.assertGreater(counters[("webrtc", "packets_sent")], 0)

    def test_a_call_never_up_is_not_counted(self) -> None:
        totals = CallTotals()
        totals.call_ended(fake_call("NEW"))
        self.assertEqual(totals.snapshot([]).ended, {})


# -- SIP endpoint counters -----------------------------------------------------------------


def request(method: str) -> bytes:
    return (f"{method} sip:gw@127.0.0.1:5060 SIP/2.0\r\n"
            "Via: SIP/2.0/UDP 192.0.2.7:5070;branch=z9hG4bK" + method + "\r\n"
            "Max-Forwards: 70\r\nFrom: <sip:a@example.com>;tag=a1\r\nTo: <sip:gw@127.0.0.1>\r\n"
            f"Call-ID: {method}@example.com\r\nCSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n"
            ).encode()


class SipCountersTests(unittest.TestCase):
    def setUp(self) -> None:
        self.ep = SipEndpoint(EndpointConfig(host="127.0.0.1", port=5099,
                                             timers=TimerConfig(t1=0.5)), rng=random.Random(1))
        self.sip = SimpleNamespace(endpoint=self.ep, transport=None)

    def scrape(self) -> dict:
        return parse_exposition(render(sip_families(self.sip)).decode())

    def test_message_key(self) -> None:
        self.assertEqual(message_key(b"SIP/2.0 486 Busy"), "4xx")
        self.assertEqual(message_key(b"INVITE sip:x"), "INVITE")
        self.assertEqual(message_key(b"FROB sip:x S"), "other")

    def test_requests_responses_malformed_by_kind(self) -> None:
        peer = Target("UDP", "192.0.2.7", 5070)
        self.ep.receive_bytes(request("OPTIONS"), peer, 0.0)
        self.ep.receive_bytes(request("FROBNICATE"), peer, 0.0)  # 501, counted as "other"
        self.ep.receive_bytes(b"not SIP at all\r\n\r\n", peer, 0.0)
        self.ep.take_outgoing()
        m = self.scrape()
        self.assertEqual(series(m, "wcsgw_sip_requests_received_total"),
                         {frozenset({("method", "OPTIONS")}): 1,
                          frozenset({("method", "other")}): 1})
        self.assertEqual(series(m, "wcsgw_sip_responses_sent_total"),
                         {frozenset({("class", "2xx")}): 1, frozenset({("class", "5xx")}): 1})
        self.assertEqual(value(m, "wcsgw_sip_malformed_messages_total"), 1)

    def test_untrusted_requests_are_counted(self) -> None:
        """Requests the DialogRouter dropped for their source (docs/security.md, 3a) show."""
        self.assertEqual(value(self.scrape(), "wcsgw_sip_untrusted_requests_total"), 0)
        self.ep.stats.untrusted += 2
        self.assertEqual(value(self.scrape(), "wcsgw_sip_untrusted_requests_total"), 2)

    def test_registration_states_and_timeouts(self) -> None:
        account = SipAccount(login="1001", password="p", domain="127.0.0.1", port=5060)
        self.ep.register(account, 0.0)
        [(data, _)] = self.ep.take_outgoing()
        m = self.scrape()
        self.assertEqual(value(m, "wcsgw_sip_registrations", state="registering"), 1)
        self.assertEqual(value(m, "wcsgw_sip_registrations", state="registered"), 0)
        self.assertEqual(value(m, "wcsgw_sip_requests_sent_total", method="REGISTER"), 1)
        ok = make_response(parse_message(data), 200, to_tag="r1")
        ok.headers.set("Contact", parse_message(data).headers.get("Contact") + ";expires=300")
        self.ep.receive_bytes(ok.to_bytes(), Target("UDP", "127.0.0.1", 5060), 0.1)
        m = self.scrape()
        self.assertEqual(value(m, "wcsgw_sip_registrations", state="registered"), 1)
        self.assertEqual(value(m, "wcsgw_sip_responses_received_total", **{"class": "2xx"}), 1)
        self.assertEqual(value(m, "wcsgw_sip_transaction_timeouts_total"), 0)
        # The refresh goes unanswered: Timer F (64*T1) times its transaction out.
        now = self.ep.next_deadline()
        while now is not None and now < 10000 and not self.ep.stats.transaction_timeouts:
            self.ep.handle_timer(now)
            self.ep.take_outgoing()
            now = self.ep.next_deadline()
        m = self.scrape()
        self.assertEqual(value(m, "wcsgw_sip_transaction_timeouts_total"), 1)
        self.assertGreater(value(m, "wcsgw_sip_requests_sent_total", method="REGISTER"), 2)


# -- the resource --------------------------------------------------------------------------


class ResourceTests(unittest.TestCase):
    def get(self, tokens: tuple[str, ...], header: str | None) -> DummyRequest:
        site = make_site(attrs.evolve(Config(), rest=RestSettings(tokens=tokens)))
        request = DummyRequest([b"metrics"])
        if header is not None:
            request.requestHeaders.addRawHeader(b"authorization", header.encode())
        resource = site.getResourceFor(request)
        body = resource.render(request)
        request.body = body if isinstance(body, bytes) else b""
        return request

    def test_open_without_tokens(self) -> None:
        request = self.get((), None)
        self.assertEqual(request.responseCode or 200, 200)
        self.assertEqual(request.responseHeaders.getRawHeaders(b"content-type"), [CONTENT_TYPE])
        self.assertIn("wcsgw_build_info", parse_exposition(request.body.decode()))

    def test_token_required_when_configured(self) -> None:
        for header in (None, "Bearer wrong", f"Basic {TOKEN}", "Bearer "):
            request = self.get((TOKEN, "other"), header)
            self.assertEqual(request.responseCode, 401, header)
            self.assertNotIn(b"wcsgw_", request.body)
            self.assertTrue(request.responseHeaders.getRawHeaders(b"www-authenticate"))
        request = self.get((TOKEN, "other"), f"Bearer {TOKEN}")
        self.assertEqual(request.responseCode or 200, 200)
        self.assertIn("wcsgw_build_info", parse_exposition(request.body.decode()))


# -- a whole gateway, real calls to the test lines -----------------------------------------


class GatewayMetricsTests(unittest.TestCase):
    timeout = 60

    def setUp(self) -> None:
        media = os.path.abspath(self.mktemp())
        os.makedirs(media)
        write_tone_wav(os.path.join(media, "tone.wav"), 440.0, seconds=5.0, rate=8000)
        config = attrs.evolve(gateway_config(allowed_domains=("127.0.0.1",), t1=0.1, t2=0.8),
                              rest=RestSettings(tokens=(TOKEN,), media_folder=media))
        self.gateway = Gateway(config)
        self.gateway.start()
        self.addCleanup(self.gateway.stop)

    async def http(self, method: bytes, path: str, body: dict | None = None,
                   token: str | None = TOKEN) -> tuple[int, Headers, bytes]:
        headers = Headers({b"content-type": [b"application/json"]})
        if token is not None:
            headers.addRawHeader(b"authorization", f"Bearer {token}".encode())
        producer = FileBodyProducer(BytesIO(json.dumps(body).encode())) if body else None
        response = await Agent(reactor).request(method, (self.gateway.url + path).encode(),
                                                headers, producer)
        return response.code, response.headers, await readBody(response)

    async def scrape(self) -> dict:
        code, headers, body = await self.http(b"GET", "metrics")
        self.assertEqual(code, 200)
        self.assertEqual(headers.getRawHeaders(b"content-type"), [CONTENT_TYPE])
        return parse_exposition(body.decode("utf-8"))

    async def established_with_media(self, call_id: str, packets: int) -> Any:
        """Wait (on events) until the call is ESTABLISHED and ``packets`` RTP packets came
        back from the test line."""
        call = self.gateway.calls[call_id]
        events = EventLog()
        call.on_status = events
        if call.status.value != "ESTABLISHED":
            await events.wait_for(lambda described: described["status"] == "ESTABLISHED")
        rtp = EventLog()
        forward = call.rtp.on_rtp
        call.rtp.on_rtp = lambda packet, now: (forward(packet, now), rtp(packet))
        await rtp.wait_for(lambda _: len(rtp.events) >= packets)
        return call

    @inline
    async def test_token_required(self) -> None:
        for token in (None, "wrong"):
            code, headers, body = await self.http(b"GET", "metrics", token=token)
            self.assertEqual(code, 401)
            self.assertNotIn(b"wcsgw_calls", body)
        self.assertIn("wcsgw_calls", await self.scrape())

    @inline
    async def test_a_real_call_counts_up_and_its_counters_survive_the_end(self) -> None:
        before = await self.scrape()
        for name in ("wcsgw_rtp_packets_total", "wcsgw_rtp_payload_bytes_total"):
            self.assertEqual(set(series(before, name).values()), {0})
        self.assertEqual(value(before, "wcsgw_rtp_ports_in_use"), 0)
        self.assertEqual(value(before, "wcsgw_rtp_ports_capacity"), 1000)
        self.assertEqual(series(before, "wcsgw_calls_ended_total"), {})
        self.assertEqual(value(before, "wcsgw_calls", status="ESTABLISHED"), 0)

        code, _, body = await self.http(b"POST", "rest-api/call/startup",
                                         {"callee": "echo", "callId": "m1",
                                          "playFile": "tone.wav"})
        self.assertEqual((code, json.loads(body)), (200, {"callId": "m1"}))
        await self.established_with_media("m1", 10)

        live = await self.scrape()
        self.assertEqual(value(live, "wcsgw_calls", status="ESTABLISHED"), 1)
        self.assertEqual(value(live, "wcsgw_calls_active", direction="outbound", mode="relay",
                               webrtc_codec="PCMU/8000", sip_codec="PCMU/8000"), 1)
        sip_in = value(live, "wcsgw_rtp_packets_total", leg="sip", direction="in")
        self.assertGreaterEqual(sip_in, 10)
        self.assertGreater(value(live, "wcsgw_rtp_packets_total", leg="sip", direction="out"), 0)
        self.assertGreater(value(live, "wcsgw_rtp_payload_bytes_total", leg="sip",
                                 direction="in"), 10 * 80)
        self.assertGreater(value(live, "wcsgw_rtp_ports_in_use"), 0)
        self.assertEqual(value(live, "wcsgw_sip_requests_sent_total", method="INVITE"), 1)
        self.assertEqual(value(live, "wcsgw_sip_responses_received_total", **{"class": "2xx"}), 1)
        self.assertEqual(value(live, "wcsgw_call_setup_seconds_count"), 1)
        self.assertEqual(value(live, "wcsgw_websocket_sessions", state="connected"), 0)

        code, _, _ = await self.http(b"POST", "rest-api/call/terminate", {"callId": "m1"})
        self.assertEqual(code, 200)
        await self.gateway.when_idle()
        await self.gateway.testlines.wait_idle()

        after = await self.scrape()
        self.assertEqual(series(after, "wcsgw_calls_ended_total"), {
            frozenset({("direction", "outbound"), ("status", "FINISH"),
                       ("info", "Normal call clearing"), ("sip_code", "")}): 1})
        self.assertEqual(value(after, "wcsgw_calls", status="ESTABLISHED"), 0)
        self.assertEqual(series(after, "wcsgw_calls_active"), {})
        for name in ("wcsgw_rtp_packets_total", "wcsgw_rtp_payload_bytes_total"):
            for labels, was in series(live, name).items():
                self.assertGreaterEqual(series(after, name)[labels], was, (name, labels))
        self.assertEqual(value(after, "wcsgw_rtp_ports_in_use"), 0)
        self.assertEqual(value(after, "wcsgw_sip_requests_sent_total", method="BYE"), 1)
        self.assertEqual(value(after, "wcsgw_call_setup_seconds_count"), 1)  # not twice

    @inline
    async def test_a_refused_call_is_counted_with_its_sip_code(self) -> None:
        # An account whose proxy is the test lines' SIP port: they answer 404 for "nosuchline".
        code, _, body = await self.http(b"POST", "rest-api/call/startup", {
            "callee": "nosuchline", "callId": "m2", "playFile": "tone.wav", "sipLogin": "1001",
            "sipDomain": "127.0.0.1", "sipOutboundProxy": "127.0.0.1",
            "sipPort": self.gateway.testlines.port})
        self.assertEqual(code, 200, body)
        await self.gateway.when_idle()
        after = await self.scrape()
        self.assertEqual(series(after, "wcsgw_calls_ended_total"), {
            frozenset({("direction", "outbound"), ("status", "FAILED"),
                       ("info", "SIP response"), ("sip_code", "404")}): 1})
        self.assertEqual(value(after, "wcsgw_sip_responses_received_total", **{"class": "4xx"}),
                         1)
        self.assertEqual(value(after, "wcsgw_call_setup_seconds_count"), 0)


class BrowserCallMetricsTests(unittest.TestCase):
    """A browser (headless Chromium, the Phone UI) calls the echo line: the WebRTC leg's side
    of the metrics — the session, SRTP, packets to and from the browser."""

    timeout = 120

    async def scrape(self) -> dict:
        response = await Agent(reactor).request(b"GET", (self.gateway.url + "metrics").encode())
        self.assertEqual(response.code, 200)  # no [rest] tokens: open (on 127.0.0.1)
        return parse_exposition((await readBody(response)).decode("utf-8"))

    @inline
    async def test_browser_call(self) -> None:
        self.gateway = Gateway(gateway_config())
        self.gateway.start()
        self.addCleanup(self.gateway.stop)
        browser = Chromium(fake_audio=write_tone_wav(self.mktemp() + ".wav", 440.0))
        await browser.start()
        self.addCleanup(browser.stop)
        phone = await Phone.open(browser, self.gateway.url)
        await phone.login()
        await phone.call("echo")
        await phone.wait_state("call-status", "established")
        [call] = self.gateway.calls.values()
        packets = EventLog()
        forward = call.leg.on_rtp
        call.leg.on_rtp = lambda packet, now: (forward(packet, now), packets(packet))
        await packets.wait_for(lambda _: len(packets.events) >= 25)

        live = await self.scrape()
        self.assertEqual(value(live, "wcsgw_websocket_sessions", state="connected"), 1)
        [(labels, one)] = series(live, "wcsgw_calls_active").items()
        labels = dict(labels)
        self.assertEqual((labels["direction"], labels["mode"], one), ("outbound", "relay", 1))
        self.assertEqual(labels["webrtc_codec"], labels["sip_codec"])  # relayed: one codec
        webrtc_in = value(live, "wcsgw_rtp_packets_total", leg="webrtc", direction="in")
        self.assertGreaterEqual(webrtc_in, 25)
        self.assertGreater(value(live, "wcsgw_rtp_packets_total", leg="webrtc",
                                 direction="out"), 0)
        self.assertEqual(value(live, "wcsgw_srtp_errors_total"), 0)

        await phone.click("Hangup")
        await phone.wait_state("call-status", "finish")
        await self.gateway.when_idle()
        after = await self.scrape()
        self.assertEqual(value(after, "wcsgw_calls_ended_total", direction="outbound",
                               status="FINISH", info="Normal call clearing", sip_code=""), 1)
        self.assertGreaterEqual(
            value(after, "wcsgw_rtp_packets_total", leg="webrtc", direction="in"), webrtc_in)
        self.assertEqual(series(after, "wcsgw_calls_active"), {})
