"""DTMF through the media bridge (wcsgw.media.bridge + the DTMF generator and detector), sans-IO
with explicit times: our digits spliced into the SIP (or browser) stream — same SSRC, continuous
sequence numbers, event timestamps from the stream's clock, audio held back while an event plays
— in relay and transcode modes; digits the SIP side sends reported once each and still
forwarded; the browser's digits (telephone-event/48000 or /8000) reaching the SIP side rescaled."""

from __future__ import annotations

import random
from typing import Callable

import numpy as np
from twisted.trial.unittest import SynchronousTestCase

from wcsgw.media.bridge import SIP, WEBRTC, BridgeSettings, LegMedia, MediaBridge
from wcsgw.media.dtmf import DtmfError, TelephoneEvent
from wcsgw.media.dtmfdetector import DtmfDetector
from wcsgw.media.dtmfgenerator import DtmfGenerator
from wcsgw.media.opus import OpusEncoder
from wcsgw.media.rtp import RtpHeader, build_rtp, parse_rtp

T0 = 1_700_000_000.0
W_SSRC = 0x0000AAAA  # ours toward the browser
S_SSRC = 0x0000BBBB  # ours toward the SIP side
BROWSER = 0x1234  # the browser's SSRC
PHONE = 0xCAFE  # the SIP side's SSRC


class Harness:
    def __init__(self, webrtc: LegMedia, sip: LegMedia) -> None:
        self.to_webrtc: list[bytes] = []
        self.to_sip: list[bytes] = []
        self.from_sip_digits: list[str] = []
        self.from_webrtc_digits: list[str] = []
        self.bridge = MediaBridge(
            webrtc, sip, self.to_webrtc.append, self.to_sip.append, now=T0,
            settings=BridgeSettings(rng=random.Random(3)),
        )
        # set the way the call layer does it, after construction
        self.bridge.on_dtmf_from_webrtc = self.from_webrtc_digits.append
        self.bridge.on_dtmf_from_sip = self.from_sip_digits.append

    def run(self, until: float, feeds: list["Feed"], actions: list[tuple[float, Callable[[], None]]] = ()) -> None:
        """Deliver every feed's packets, run the actions and poll the bridge's DTMF at its
        deadlines, all in time order, up to ``until``."""
        pending = sorted(actions, key=lambda a: a[0])
        while True:
            options: list[tuple[float, int, Callable[[float], None]]] = []
            deadline = self.bridge.next_deadline()
            if deadline is not None:
                options.append((deadline, 0, self.bridge.poll))
            if pending:
                at, action = pending[0]
                options.append((at, 1, lambda now, action=action: (pending.pop(0), action())))
            for k, feed in enumerate(feeds):
                if feed.next_at is not None:
                    options.append((feed.next_at, 2 + k, feed.deliver))
            if not options:
                return
            at, _, run = min(options, key=lambda o: (o[0], o[1]))
            if at > until:
                return
            run(at)


class Feed:
    """One leg's packets, every 20 ms from ``start``: ``make(i)`` builds packet ``i``."""

    def __init__(self, deliver: Callable[[bytes, float], None], make: Callable[[int], bytes], start: float = T0,
                 skip: set[int] = frozenset(), count: int = 10_000) -> None:
        self._deliver, self._make, self._start, self._skip, self._count = deliver, make, start, skip, count
        self.i = 0

    @property
    def next_at(self) -> float | None:
        while self.i in self._skip:
            self.i += 1
        return self._start + 0.02 * self.i if self.i < self._count else None

    def deliver(self, now: float) -> None:
        self._deliver(self._make(self.i), now)
        self.i += 1


def pcmu(i: int, ssrc: int = BROWSER, seq0: int = 100, ts0: int = 9000) -> bytes:
    return build_rtp(payload_type=0, sequence=seq0 + i, timestamp=ts0 + 160 * i, ssrc=ssrc, payload=bytes([i & 0xFF]) * 160)


def headers(packets: list[bytes]) -> list[RtpHeader]:
    return [parse_rtp(p) for p in packets]


def is_event(h: RtpHeader, pt: int) -> bool:
    return h.payload_type == pt


def reports(packets: list[bytes], pt: int) -> list[TelephoneEvent]:
    return [TelephoneEvent.parse(h.payload(p)) for h, p in zip(headers(packets), packets) if h.payload_type == pt]


class SpliceChecks:
    """What every stream we send with our events spliced in must satisfy."""

    def assert_one_continuous_stream(self: SynchronousTestCase, packets: list[bytes], ssrc: int) -> list[RtpHeader]:
        hs = headers(packets)
        self.assertEqual({h.ssrc for h in hs}, {ssrc})
        s0 = hs[0].sequence
        self.assertEqual([(h.sequence - s0) & 0xFFFF for h in hs], list(range(len(hs))))
        return hs


class SendToSipRelayTests(SynchronousTestCase, SpliceChecks):
    def setUp(self) -> None:
        self.h = Harness(LegMedia("PCMU", 0, telephone_event=126, ssrc=W_SSRC),
                         LegMedia("PCMU", 0, telephone_event=101, ssrc=S_SSRC))
        self.b = self.h.bridge

    def test_digit_spliced_into_the_audio(self) -> None:
        browser = Feed(self.b.from_webrtc, pcmu)
        self.h.run(T0 + 0.6, [browser], [(T0 + 0.105, lambda: self.b.send_dtmf_to_sip("1", T0 + 0.105))])
        hs = self.assert_one_continuous_stream(self.h.to_sip, S_SSRC)
        kinds = ["E" if h.payload_type == 101 else "a" for h in hs]
        # audio 0..5 (to 100 ms), the event (105..305 ms), audio from the packet of 320 ms on
        self.assertEqual("".join(kinds[:11]), "aaaaaaEEEEE")
        self.assertEqual(set(kinds[11:]), {"a"})
        audio = [(h, p) for h, p in zip(hs, self.h.to_sip) if h.payload_type == 0]
        self.assertEqual([p[12] for _, p in audio], list(range(6)) + list(range(16, 31)))  # 6..15 held back
        ts0 = audio[0][0].timestamp
        # audio keeps the browser's clock: packet i at ts0 + 160 i, before and after the event
        self.assertEqual([(h.timestamp - ts0) & 0xFFFFFFFF for h, _ in audio], [160 * p[12] for _, p in audio])
        events = [h for h in hs if h.payload_type == 101]
        # the event's timestamp: the stream's clock at the send, 5 ms after packet 5 (800 + 40)
        self.assertEqual({(h.timestamp - ts0) & 0xFFFFFFFF for h in events}, {840})
        self.assertEqual([h.marker for h in events], [True] + [False] * 4)
        self.assertEqual([(r.event, r.end, r.volume, r.duration) for r in reports(self.h.to_sip, 101)],
                         [(1, False, 10, 400), (1, False, 10, 800)] + [(1, True, 10, 800)] * 3)
        st = self.b.stats()[SIP]
        self.assertEqual((st["dtmf_sent"], st["held_back"]), (5, 10))
        self.assertEqual(st["packets_sent"], len(self.h.to_sip))  # RTCP SR counts the events too
        self.assertEqual(self.b.to_sip.octets_sent, 21 * 160 + 5 * 4)
        self.assertIsNone(self.b.next_deadline())

    def test_a_string_with_audio_in_the_gaps(self) -> None:
        browser = Feed(self.b.from_webrtc, pcmu)
        self.h.run(T0 + 2.0, [browser], [
            (T0 + 0.205, lambda: self.b.send_dtmf_to_sip("12", T0 + 0.205)),
            (T0 + 0.31, lambda: self.b.send_dtmf_to_sip("#", T0 + 0.31)),  # queued behind
        ])
        hs = self.assert_one_continuous_stream(self.h.to_sip, S_SSRC)
        detector = DtmfDetector()
        digits = [detector.receive(h.payload(p), h.timestamp, h.ssrc) for h, p in zip(hs, self.h.to_sip) if h.payload_type == 101]
        self.assertEqual("".join(d for d in digits if d), "12#")
        # between the events (their 70 ms gaps) the audio flows again
        kinds = "".join("E" if h.payload_type == 101 else "a" for h in hs)
        self.assertRegex(kinds, r"^a+E{5}a+E{5}a+E{5}a+$")
        # each event starts where the stream's clock is: 70 ms (560) after the previous last end
        # packet, which is 200 ms (1600) after its start
        starts = [h.timestamp for h in hs if h.payload_type == 101 and h.marker]
        self.assertEqual([(b - a) & 0xFFFFFFFF for a, b in zip(starts, starts[1:])], [2160, 2160])

    def test_events_before_any_audio(self) -> None:
        self.b.send_dtmf_to_sip("9", T0)
        self.h.run(T0 + 0.3, [])
        browser = Feed(self.b.from_webrtc, pcmu, start=T0 + 0.5, count=3)
        self.h.run(T0 + 1, [browser])
        hs = self.assert_one_continuous_stream(self.h.to_sip, S_SSRC)
        self.assertEqual([h.payload_type for h in hs], [101] * 5 + [0] * 3)
        # the audio that follows goes on from the event's start by the time that passed
        self.assertEqual((hs[5].timestamp - hs[0].timestamp) & 0xFFFFFFFF, 4000)
        self.assertTrue(hs[5].marker)

    def test_late_audio_from_before_the_event_is_dropped(self) -> None:
        for i in range(5):
            self.b.from_webrtc(pcmu(i), T0 + 0.02 * i)
        self.b.send_dtmf_to_sip("4", T0 + 0.085)
        self.h.run(T0 + 0.3, [])
        self.b.from_webrtc(pcmu(14), T0 + 0.30)  # the first packet after the event
        self.b.from_webrtc(pcmu(3), T0 + 0.31)  # a straggler from before: its number is taken
        self.b.from_webrtc(pcmu(13), T0 + 0.32)  # reordered just behind the first one
        self.b.from_webrtc(pcmu(15), T0 + 0.32)
        hs = self.assert_one_continuous_stream(self.h.to_sip, S_SSRC)
        self.assertEqual([p[12] for h, p in zip(hs, self.h.to_sip) if h.payload_type == 0], [0, 1, 2, 3, 4, 14, 15])
        self.assertEqual(self.b.stats()[SIP]["held_back"], 2)

    def test_browser_digits_wait_while_ours_play(self) -> None:
        for i in range(3):
            self.b.from_webrtc(pcmu(i), T0 + 0.02 * i)
        self.b.send_dtmf_to_sip("1", T0 + 0.05)
        # the browser's own event in the middle of ours: not forwarded (still detected)
        self.b.from_webrtc(build_rtp(payload_type=126, sequence=103, timestamp=9480, ssrc=BROWSER,
                                     payload=TelephoneEvent(7, False, 10, 160).pack(), marker=True), T0 + 0.06)
        self.h.run(T0 + 0.3, [])
        hs = self.assert_one_continuous_stream(self.h.to_sip, S_SSRC)
        self.assertEqual([r.event for r in reports(self.h.to_sip, 101)], [1] * 5)
        self.assertEqual(self.h.from_webrtc_digits, ["7"])
        self.assertEqual(self.b.stats()[WEBRTC]["dropped"], 1)
        # afterwards the browser's events pass again, numbered after ours
        self.b.from_webrtc(build_rtp(payload_type=126, sequence=120, timestamp=12000, ssrc=BROWSER,
                                     payload=TelephoneEvent(8, False, 10, 160).pack(), marker=True), T0 + 0.4)
        hs = self.assert_one_continuous_stream(self.h.to_sip, S_SSRC)
        self.assertEqual(TelephoneEvent.parse(hs[-1].payload(self.h.to_sip[-1])).event, 8)

    def test_deadlines_for_the_owner(self) -> None:
        self.assertIsNone(self.b.next_deadline())
        self.assertIsNone(self.b.poll(T0))
        self.b.send_dtmf_to_sip("55", T0)
        self.assertEqual(len(self.h.to_sip), 1)  # the start packet goes at once
        self.assertEqual(self.b.dtmf_sending, {SIP: "55", WEBRTC: ""})
        self.assertAlmostEqual(self.b.next_deadline(), T0 + 0.05, places=5)
        self.assertAlmostEqual(self.b.poll(T0 + 0.05), T0 + 0.1, places=5)
        self.assertEqual(len(self.h.to_sip), 2)
        self.b.poll(T0 + 0.2)
        self.assertAlmostEqual(self.b.next_deadline(), T0 + 0.27, places=5)  # the second 5
        self.assertEqual(self.b.dtmf_sending[SIP], "5")
        self.b.poll(T0 + 1)
        self.assertIsNone(self.b.next_deadline())
        self.assertEqual(self.b.dtmf_sending[SIP], "")
        self.assertEqual(len(self.h.to_sip), 10)

    def test_sip_payload_types_renegotiated(self) -> None:
        """A re-INVITE moves telephone-event to 96: our digits, the digits we detect and the
        browser's forwarded digits all follow; without it any more, sending is refused."""
        self.b.send_dtmf_to_sip("1", T0)
        self.b.poll(T0 + 0.05)
        self.b.set_sip_payload_types(0, 96)
        self.b.poll(T0 + 1)
        self.assertEqual([parse_rtp(p).payload_type for p in self.h.to_sip], [101, 101, 96, 96, 96])
        self.assertEqual(self.b.sip.telephone_event, 96)
        self.b.from_sip(build_rtp(payload_type=101, sequence=1, timestamp=1, ssrc=PHONE,
                                  payload=TelephoneEvent(3).pack()), T0 + 1)
        self.b.from_sip(build_rtp(payload_type=96, sequence=2, timestamp=2, ssrc=PHONE,
                                  payload=TelephoneEvent(4).pack()), T0 + 1)
        self.assertEqual(self.h.from_sip_digits, ["4"])
        self.assertEqual([parse_rtp(p).payload_type for p in self.h.to_webrtc], [126])
        self.b.send_dtmf_to_sip("2", T0 + 2)
        self.b.set_sip_payload_types(0, None)  # while "2" plays: it stops
        self.b.poll(T0 + 3)
        self.assertEqual(len(self.h.to_sip), 6)
        self.assertIsNone(self.b.next_deadline())
        self.assertRaises(DtmfError, self.b.send_dtmf_to_sip, "3", T0 + 4)
        self.assertRaises(ValueError, self.b.set_sip_payload_types, 0, 128)

    def test_refused_without_telephone_event_or_with_bad_digits(self) -> None:
        h = Harness(LegMedia("PCMU", 0, telephone_event=126), LegMedia("PCMU", 0))
        with self.assertRaises(DtmfError) as caught:
            h.bridge.send_dtmf_to_sip("1", T0)
        self.assertIn("SIP side negotiated no telephone-event", str(caught.exception))
        self.assertRaises(ValueError, h.bridge.send_dtmf_to_sip, "1", T0)  # what the call layer catches
        self.assertRaises(DtmfError, self.b.send_dtmf_to_sip, "1x", T0)
        self.assertEqual((h.to_sip, self.h.to_sip), ([], []))
        self.assertIsNone(self.b.next_deadline())
        self.assertRaises(ValueError, MediaBridge, LegMedia("PCMU", 0), LegMedia("PCMU", 0), print, print,
                          settings=BridgeSettings(dtmf_duration=10.0))


class TranscodeTests(SynchronousTestCase, SpliceChecks):
    def setUp(self) -> None:
        self.h = Harness(LegMedia("opus", 111, telephone_event=110, ssrc=W_SSRC),
                         LegMedia("PCMA", 8, telephone_event=101, ssrc=S_SSRC))
        self.b = self.h.bridge
        self.encoder = OpusEncoder()
        tone = (8000 * np.sin(2 * np.pi * 440 * np.arange(48000) / 48000)).astype(np.int16)
        self.frames = [self.encoder.encode(tone[960 * (i % 50): 960 * (i % 50 + 1)]) for i in range(60)]

    def opus(self, i: int) -> bytes:
        return build_rtp(payload_type=111, sequence=500 + i, timestamp=48000 + 960 * i, ssrc=BROWSER, payload=self.frames[i])

    def pcma(self, i: int) -> bytes:
        return build_rtp(payload_type=8, sequence=7 + i, timestamp=160 * i, ssrc=PHONE, payload=b"\xd5" * 160)

    def check_splice(self, hs, audio_pt: int, event_pt: int, step: int) -> tuple[int, int]:
        """Audio, our five event packets, audio: the audio before and after is back to back
        except for the frames held back while the event played, and the event starts where
        the audio before it ends (within a packet: the transcoder's output runs ~30-40 ms
        behind the input, and the event is stamped on the clock of what was sent). Returns
        (held back frames, event timestamp from the first audio)."""
        kinds = "".join("E" if h.payload_type == event_pt else "a" for h in hs)
        self.assertRegex(kinds, r"^a{3,}E{5}a{20,}$")
        audio = [h for h in hs if h.payload_type == audio_pt]
        ts0 = audio[0].timestamp
        rel = [(h.timestamp - ts0) & 0xFFFFFFFF for h in audio]
        before = kinds.index("E")
        self.assertEqual(rel[:before], [step * i for i in range(before)])
        held = (rel[before] - rel[before - 1]) // step - 1
        self.assertEqual(rel[before:], [rel[before] + step * i for i in range(len(rel) - before)])
        (event_ts,) = {(h.timestamp - ts0) & 0xFFFFFFFF for h in hs if h.payload_type == event_pt}
        self.assertLessEqual(rel[before - 1], event_ts)
        self.assertLessEqual(event_ts, rel[before - 1] + step)
        return held, event_ts

    def test_send_to_sip(self) -> None:
        browser = Feed(self.b.from_webrtc, self.opus, count=60)
        self.h.run(T0 + 1.2, [browser], [(T0 + 0.205, lambda: self.b.send_dtmf_to_sip("#", T0 + 0.205))])
        hs = self.assert_one_continuous_stream(self.h.to_sip, S_SSRC)
        held, _ = self.check_splice(hs, 8, 101, 160)
        self.assertEqual(held, 10)  # 10 frames held back while the event (and its gap) played
        self.assertEqual(self.b.stats()[SIP]["held_back"], 10)
        self.assertEqual([(r.event, r.end, r.duration) for r in reports(self.h.to_sip, 101)],
                         [(11, False, 400), (11, False, 800)] + [(11, True, 800)] * 3)
        self.assertEqual(self.b.stats()[WEBRTC]["codec_errors"], 0)

    def test_send_to_webrtc(self) -> None:
        phone = Feed(self.b.from_sip, self.pcma, count=40)
        self.h.run(T0 + 0.8, [phone], [(T0 + 0.105, lambda: self.b.send_dtmf_to_webrtc("7", T0 + 0.105))])
        hs = self.assert_one_continuous_stream(self.h.to_webrtc, W_SSRC)
        held, _ = self.check_splice(hs, 111, 110, 960)
        self.assertEqual(held, self.b.stats()[WEBRTC]["held_back"])
        self.assertEqual([(r.event, r.duration) for r in reports(self.h.to_webrtc, 110)],
                         [(7, 2400), (7, 4800)] + [(7, 4800)] * 3)

    def test_browser_digits_at_48000_reach_sip_at_8000(self) -> None:
        """RTCDTMFSender with Opus sends telephone-event/48000: timestamps on the Opus clock,
        durations in 48 kHz units; the SIP side gets them on its 8 kHz clock and units."""
        browser_clock = lambda t: (48000 + round((t - T0) * 48000)) & 0xFFFFFFFF  # noqa: E731
        dtmf = DtmfGenerator(110, 48000, timestamp_at=browser_clock)
        events: list[tuple[float, bytes]] = []
        for k, p in enumerate(dtmf.packets_for("#", T0 + 0.2)):
            events.append((p.at, p.rtp(600 + k, BROWSER)))
        feed = Feed(self.b.from_webrtc, self.opus, count=10)
        self.h.run(T0 + 0.19, [feed])
        for at, packet in events:
            self.b.from_webrtc(packet, at)
        hs = headers(self.h.to_sip)
        audio = [h for h in hs if h.payload_type == 8]
        out = [h for h in hs if h.payload_type == 101]
        self.assertEqual(len(out), 5)
        # 200 ms after the first audio frame: 9600 at 48 kHz became 1600 at 8 kHz
        self.assertEqual({(h.timestamp - audio[0].timestamp) & 0xFFFFFFFF for h in out}, {1600})
        self.assertEqual([(r.event, r.end, r.duration) for r in reports(self.h.to_sip, 101)],
                         [(11, False, 400), (11, False, 800)] + [(11, True, 800)] * 3)
        self.assertTrue(out[0].marker)
        self.assertEqual(self.h.from_webrtc_digits, ["#"])
        detector = DtmfDetector()
        got = [detector.receive(h.payload(p), h.timestamp) for h, p in zip(hs, self.h.to_sip) if h.payload_type == 101]
        self.assertEqual([d for d in got if d], ["#"])

    def test_digits_from_sip_reported_once_and_forwarded(self) -> None:
        _digits_from_sip(self, self.h, 110, 6)


class DigitsFromSipTests(SynchronousTestCase):
    def test_relay(self) -> None:
        h = Harness(LegMedia("PCMU", 0, telephone_event=126, ssrc=W_SSRC),
                    LegMedia("PCMU", 0, telephone_event=101, ssrc=S_SSRC))
        _digits_from_sip(self, h, 126, 1)

    def test_reported_when_the_browser_has_no_telephone_event(self) -> None:
        h = Harness(LegMedia("PCMU", 0, ssrc=W_SSRC), LegMedia("PCMU", 0, telephone_event=101, ssrc=S_SSRC))
        _digits_from_sip(self, h, None, 1)

    def test_browser_digits_at_8000_relayed_unchanged(self) -> None:
        h = Harness(LegMedia("PCMU", 0, telephone_event=126, ssrc=W_SSRC),
                    LegMedia("PCMU", 0, telephone_event=101, ssrc=S_SSRC))
        clock = lambda t: (9000 + round((t - T0) * 8000)) & 0xFFFFFFFF  # noqa: E731
        packets = DtmfGenerator(126, 8000, timestamp_at=clock).packets_for("*", T0 + 0.1)
        for i in range(5):
            h.bridge.from_webrtc(pcmu(i), T0 + 0.02 * i)
        for k, p in enumerate(packets):
            h.bridge.from_webrtc(p.rtp(105 + k, BROWSER), p.at)
        hs = headers(h.to_sip)
        self.assertEqual([x.payload_type for x in hs], [0] * 5 + [101] * 5)
        self.assertEqual([x.payload(y) for x, y in zip(hs[5:], h.to_sip[5:])], [p.payload for p in packets])
        self.assertEqual({(x.timestamp - hs[0].timestamp) & 0xFFFFFFFF for x in hs[5:]}, {800})
        self.assertEqual(h.from_webrtc_digits, ["*"])


def _digits_from_sip(case: SynchronousTestCase, h: Harness, browser_pt: int | None, scale: int) -> None:
    """The phone sends "5", "5" again and "#" (start packets of the second 5 lost, end packets
    retransmitted) between its audio: three digits reported, each once; the event packets go
    on to the browser with its payload type and durations in its units."""
    clock = lambda t: (16000 + round((t - T0) * 8000)) & 0xFFFFFFFF  # noqa: E731
    gen = DtmfGenerator(101, 8000, timestamp_at=clock)
    events = gen.packets_for("55#", T0 + 0.1)
    del events[5]  # the second 5's start packet is lost
    seq = iter(range(1000, 2000))
    for i in range(60):
        at = T0 + 0.02 * i
        while events and events[0].at <= at:
            p = events.pop(0)
            h.bridge.from_sip(p.rtp(next(seq), PHONE), p.at)
        h.bridge.from_sip(build_rtp(payload_type=h.bridge.sip.payload_type, sequence=next(seq),
                                    timestamp=16000 + 160 * i, ssrc=PHONE, payload=b"\xff" * 160), at)
    case.assertEqual(h.from_sip_digits, ["5", "5", "#"])
    case.assertEqual(h.bridge.stats()[SIP]["dtmf_digits"], 3)
    case.assertEqual(h.bridge.stats()[SIP]["dtmf_packets"], 14)
    to_browser = [(x, y) for x, y in zip(headers(h.to_webrtc), h.to_webrtc) if x.payload_type == browser_pt]
    if browser_pt is None:
        case.assertEqual(len(h.to_webrtc), 60)  # the audio only
        return
    case.assertEqual(len(to_browser), 14)
    durations = [TelephoneEvent.parse(x.payload(y)).duration for x, y in to_browser]
    case.assertEqual(durations[:5], [400 * scale, 800 * scale] + [800 * scale] * 3)
