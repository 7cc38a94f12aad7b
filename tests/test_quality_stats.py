"""Per-leg call quality (wcsgw.calls.callstats) and the ``callStats`` timer
(wcsgw.calls.statsticker) on stand-in calls and task.Clock (issue 16, part 3)."""

from __future__ import annotations

from typing import Any

import attr
from twisted.internet import task
from twisted.trial.unittest import SynchronousTestCase

from wcsgw.calls.callstats import call_stats
from wcsgw.calls.hooks.taps import NOTICES
from wcsgw.calls.registry import CallRegistry
from wcsgw.calls.resume import Relay
from wcsgw.calls.sessions import Session
from wcsgw.calls.statsticker import StatsTicker, session_attached
from wcsgw.media.bridge import MediaBridge
from wcsgw.media.legmedia import LegMedia
from wcsgw.media.rtcp import ReportBlock, SenderReport, build_rr, parse_rtcp
from wcsgw.media.rtp import build_rtp
from wcsgw.sdp.codecs import Codec


def leg(received: int = 0, lost: int = 0, sent: int = 0, jitter: float = 2.0,
        rtt: float | None = 10.0, remote_fraction: float | None = 0.0,
        remote_lost: int | None = 0) -> dict[str, Any]:
    return {"packets_received": received, "packets_lost": lost, "packets_sent": sent,
            "jitter_ms": jitter, "rtt_ms": rtt, "remote_fraction_lost": remote_fraction,
            "remote_packets_lost": remote_lost}


class FakeBridge:
    def __init__(self) -> None:
        self.counters = {"webrtc": leg(), "sip": leg()}

    def stats(self) -> dict[str, Any]:
        return {k: dict(v) for k, v in self.counters.items()}


@attr.s(auto_attribs=True)
class FakePlan:
    browser_codec: Codec | None = Codec("opus", 48000, 2, 111)
    sip_codec: Codec | None = Codec("PCMU", 8000, 1, 0)


class FakeCall:
    def __init__(self, call_id: str = "c1") -> None:
        self.call_id = call_id
        self.bridge: FakeBridge | None = FakeBridge()
        self.final_media_stats: Any = None
        self.plan = FakePlan()
        self.heard: list[tuple[str, dict[str, Any]]] = []

    def notify(self, method: str, params: dict[str, Any]) -> None:
        self.heard.append((method, params))

    def end(self) -> None:
        assert self.bridge is not None
        self.final_media_stats, self.bridge = self.bridge.stats(), None


class CallStatsTest(SynchronousTestCase):
    def test_no_media(self) -> None:
        call = FakeCall()
        call.bridge = None
        stats = call_stats(call)
        self.assertEqual(set(stats), {"browser", "sip"})
        for name in ("packetsLost", "fractionLost", "jitterMs", "rttMs", "mos"):
            self.assertIsNone(stats["sip"][name])

    def test_cumulative_and_interval_loss(self) -> None:
        call = FakeCall()
        assert call.bridge is not None
        call.bridge.counters["sip"] = leg(received=90, lost=10, sent=100)
        first = call.bridge.stats()
        self.assertEqual(call_stats(call)["sip"]["fractionLostIn"], 0.1)
        # the next 100 packets all arrive: the interval says 0, the call as a whole 5 %
        call.bridge.counters["sip"] = leg(received=190, lost=10, sent=200)
        interval = call_stats(call, previous=first)["sip"]
        whole = call_stats(call)["sip"]
        self.assertEqual(interval["fractionLostIn"], 0.0)
        self.assertEqual(whole["fractionLostIn"], 0.05)
        self.assertEqual(whole["packetsLost"], 10)
        self.assertGreater(interval["mos"], whole["mos"])

    def test_worse_direction_counts(self) -> None:
        """fractionLost is the worse of ours (in) and the far end's report (out)."""
        call = FakeCall()
        assert call.bridge is not None
        call.bridge.counters["webrtc"] = leg(received=100, sent=100, remote_fraction=0.25,
                                             remote_lost=20)
        live = call_stats(call, previous={"webrtc": leg(), "sip": leg()})["browser"]
        self.assertEqual((live["fractionLostIn"], live["fractionLostOut"], live["fractionLost"]),
                         (0.0, 0.25, 0.25))
        whole = call_stats(call)["browser"]
        self.assertEqual(whole["fractionLostOut"], 0.2)  # 20 of the 100 we sent
        clean = FakeCall()
        assert clean.bridge is not None
        clean.bridge.counters["webrtc"] = leg(received=100, sent=100)
        self.assertLess(live["mos"], call_stats(clean)["browser"]["mos"])
        self.assertIsNone(call_stats(FakeCall())["browser"]["mos"])  # no packets: no score

    def test_clean_leg_mos_rtt_jitter(self) -> None:
        call = FakeCall()
        assert call.bridge is not None
        call.bridge.counters["sip"] = leg(received=250, sent=250, jitter=3.14159, rtt=1.26)
        sip = call_stats(call)["sip"]
        self.assertEqual((sip["jitterMs"], sip["rttMs"], sip["fractionLost"]), (3.1, 1.3, 0.0))
        self.assertTrue(4.3 <= sip["mos"] <= 4.5, sip)

    def test_ended_call_keeps_its_figures(self) -> None:
        """The call record asks an ended call: its counters as it ended."""
        call = FakeCall()
        assert call.bridge is not None
        call.bridge.counters["sip"] = leg(received=95, lost=5, sent=100)
        call.end()
        self.assertEqual(call_stats(call)["sip"]["fractionLostIn"], 0.05)


class RealBridgeTest(SynchronousTestCase):
    """The figures from a real MediaBridge's counters and RTCP: our receiver's loss, the
    peer's report of ours, and the round trip from our SR echoed in its RR."""

    def test_sip_leg_loss_both_ways_and_rtt(self) -> None:
        now = 1000.0
        bridge = MediaBridge(LegMedia("PCMU", 0), LegMedia("PCMU", 0),
                             lambda p: None, lambda p: None, now=now)
        call = FakeCall()
        call.bridge = bridge  # type: ignore[assignment]
        for i in range(100):  # the phone's packets: 10 of 100 never arrive
            if i % 10 != 5:
                bridge.from_sip(build_rtp(payload_type=0, sequence=i, timestamp=160 * i,
                                          ssrc=0x5151, payload=b"\xff" * 160), now + 0.02 * i)
        for i in range(50):  # the browser's, relayed to the phone
            bridge.from_webrtc(build_rtp(payload_type=0, sequence=i, timestamp=160 * i,
                                         ssrc=0x7777, payload=b"\xff" * 160), now + 0.02 * i)
        now += 2.0
        [sr] = [p for p in parse_rtcp(bridge.make_rtcp_for_sip(now)[0]) if isinstance(p, SenderReport)]
        # the phone's RR 50 ms later: it held our SR 10 ms, missed a quarter lately, 5 in all
        block = ReportBlock(sr.ssrc, 64, 5, 49, 8, sr.lsr, int(0.010 * 65536))
        bridge.rtcp_from_sip(build_rr(0x5151, [block]), now + 0.050)
        whole = call_stats(call)["sip"]
        self.assertEqual(whole["packetsLost"], 10)
        self.assertEqual(whole["fractionLostIn"], 0.1)  # 10 of the 100 sent
        self.assertEqual(whole["fractionLostOut"], 0.1)  # 5 of the 50 we sent
        self.assertTrue(39.0 <= whole["rttMs"] <= 41.0, whole)
        live = call_stats(call, previous={"sip": {"packets_received": 90, "packets_lost": 10}})["sip"]
        self.assertEqual((live["fractionLostOut"], live["fractionLost"]), (0.25, 0.25))
        self.assertLess(live["mos"], whole["mos"])
        self.assertIsNone(call_stats(call)["browser"]["rttMs"])  # no report from the browser yet

    def test_call_stats_are_not_a_hook_notice(self) -> None:
        self.assertNotIn("callStats", NOTICES)


class StatsTickerTest(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = task.Clock()
        self.registry = CallRegistry()
        self.ticker = StatsTicker(self.clock)
        self.registry.watchers.append(self.ticker)

    def test_one_timer_a_notification_per_call_every_5s_none_after_end(self) -> None:
        a, b = FakeCall("a"), FakeCall("b")
        waiting = FakeCall("w")
        waiting.bridge = None  # no media yet: nothing to say
        for call in (a, b, waiting):
            self.registry.add(call)
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.clock.advance(4.9)
        self.assertEqual(a.heard, [])
        self.clock.advance(0.1)
        self.assertEqual([m for m, _ in a.heard], ["callStats"])
        self.assertEqual([m for m, _ in b.heard], ["callStats"])
        self.assertEqual(waiting.heard, [])
        method, params = a.heard[0]
        self.assertEqual(params["callId"], "a")
        self.assertEqual(set(params), {"callId", "browser", "sip"})
        self.clock.advance(5.0)
        self.assertEqual(len(a.heard), 2)
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        a.end()
        self.registry.gone(a)
        self.clock.advance(5.0)
        self.assertEqual(len(a.heard), 2)
        self.assertEqual(len(b.heard), 3)
        b.end()
        self.registry.gone(b)
        self.registry.gone(waiting)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual(self.ticker.previous, {})

    def test_samples_are_intervals(self) -> None:
        call = FakeCall()
        self.registry.add(call)
        assert call.bridge is not None
        call.bridge.counters["sip"] = leg(received=80, lost=20, sent=100)
        self.clock.advance(5.0)
        call.bridge.counters["sip"] = leg(received=180, lost=20, sent=200)
        self.clock.advance(5.0)
        losses = [params["sip"]["fractionLostIn"] for _, params in call.heard]
        self.assertEqual(losses, [0.2, 0.0])

    def test_not_while_detached(self) -> None:
        ticker = StatsTicker(self.clock, listening=lambda call: False)
        call = FakeCall()
        ticker.call_started(call)
        self.clock.advance(10.0)
        self.assertEqual(call.heard, [])
        self.assertIn(call.call_id, ticker.previous)  # still sampled: the interval stays right
        ticker.call_ended(call)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_heard_only_while_the_session_is_attached(self) -> None:
        relay = Relay(object(), session_id="s1")
        sessions = {"s1": Session("s1", relay, relay=relay)}
        listening = session_attached(sessions)
        call = FakeCall()
        call.session_id = "s1"  # type: ignore[attr-defined]
        self.assertTrue(listening(call))
        relay.detach()  # the socket is gone: waiting for a resume
        self.assertFalse(listening(call))
        call.session_id = None  # type: ignore[attr-defined]  # a REST call: nobody to tell
        self.assertFalse(listening(call))
        call.session_id = "gone"  # type: ignore[attr-defined]
        self.assertFalse(listening(call))
