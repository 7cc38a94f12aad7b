"""The per-call media bridge (wcsgw.media.bridge), sans-IO: relay rewrites headers only
(SSRC/sequence/timestamp continuity, payload-type and telephone-event maps), transcode converts
Opus <-> G.711 with rate-scaled timestamps, DTMF crosses as events, RTCP is terminated per leg,
and inactivity is measured per direction."""

from __future__ import annotations

import random
import struct

import numpy as np
from twisted.internet import task
from twisted.trial.unittest import SynchronousTestCase

from wcsgw.media import g711
from wcsgw.media.bridge import (
    RELAY,
    SIP,
    TRANSCODE,
    WEBRTC,
    BridgeSettings,
    LegMedia,
    MediaBridge,
    choose_mode,
)
from wcsgw.media.opus import OpusDecoder, OpusEncoder
from wcsgw.media.rtcp import ReceiverReport, SenderReport, SourceDescription, build_rr, parse_rtcp
from wcsgw.media.rtp import build_rtp, parse_rtp

T0 = 1_700_000_000.0
W_SSRC = 0x0000AAAA  # our SSRC toward the browser
S_SSRC = 0x0000BBBB  # our SSRC toward the SIP side


def event(digit: int, end: bool, volume: int, duration: int) -> bytes:
    """RFC 4733 §2.3 payload."""
    return struct.pack("!BBH", digit, (0x80 if end else 0) | volume, duration)


class Harness:
    def __init__(self, webrtc: LegMedia, sip: LegMedia) -> None:
        self.to_webrtc: list[bytes] = []
        self.to_sip: list[bytes] = []
        self.rtcp_webrtc: list[bytes] = []
        self.rtcp_sip: list[bytes] = []
        self.bridge = MediaBridge(
            webrtc,
            sip,
            self.to_webrtc.append,
            self.to_sip.append,
            now=T0,
            settings=BridgeSettings(cname="gw-test", rng=random.Random(3)),
        )
        self.bridge.send_rtcp_to_webrtc = self.rtcp_webrtc.append
        self.bridge.send_rtcp_to_sip = self.rtcp_sip.append


def pcmu_legs(**kw) -> tuple[LegMedia, LegMedia]:
    return (
        LegMedia("PCMU", 0, telephone_event=126, ssrc=W_SSRC),
        LegMedia("pcmu", 0, telephone_event=101, ssrc=S_SSRC, **kw),
    )


class RelayTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.h = Harness(*pcmu_legs())
        self.b = self.h.bridge

    def test_mode_and_header_rewrite_only(self) -> None:
        self.assertEqual(self.b.mode, RELAY)
        payload = bytes(range(160))
        for i in range(3):
            self.b.from_webrtc(build_rtp(payload_type=0, sequence=500 + i, timestamp=9000 + 160 * i, ssrc=0x1234, payload=payload), T0 + 0.02 * i)
        headers = [parse_rtp(p) for p in self.h.to_sip]
        self.assertEqual([h.ssrc for h in headers], [S_SSRC] * 3)
        self.assertEqual([h.payload_type for h in headers], [0] * 3)
        seqs = [h.sequence for h in headers]
        tss = [h.timestamp for h in headers]
        self.assertEqual([(s - seqs[0]) & 0xFFFF for s in seqs], [0, 1, 2])
        self.assertEqual([(t - tss[0]) & 0xFFFFFFFF for t in tss], [0, 160, 320])
        self.assertEqual([h.marker for h in headers], [True, False, False])  # first packet of a source
        self.assertEqual({h.payload(p) for h, p in zip(headers, self.h.to_sip)}, {payload})
        self.assertEqual(self.h.to_webrtc, [])

    def test_pcmu_relay_is_bit_exact(self) -> None:
        rng = random.Random(7)
        payloads = [bytes(rng.getrandbits(8) for _ in range(160)) for _ in range(50)]
        payloads[0] = bytes(range(160)) + b""  # every code value crosses at least once
        payloads[1] = bytes(range(96, 256))
        for i, payload in enumerate(payloads):
            self.b.from_sip(build_rtp(payload_type=0, sequence=9 + i, timestamp=160 * i, ssrc=0x77, payload=payload), T0 + 0.02 * i)
            self.b.from_webrtc(build_rtp(payload_type=0, sequence=300 + i, timestamp=160 * i, ssrc=0x78, payload=payload), T0 + 0.02 * i)
        for sent in (self.h.to_webrtc, self.h.to_sip):
            self.assertEqual([parse_rtp(p).payload(p) for p in sent], payloads)
        self.assertIsNone(self.b.transcoder)

    def test_payload_type_map(self) -> None:
        h = Harness(LegMedia("PCMA", 8, ssrc=W_SSRC), LegMedia("PCMA", 8, ssrc=S_SSRC))
        h.bridge.from_sip(build_rtp(payload_type=8, sequence=1, timestamp=1, ssrc=9, payload=b"\xd5" * 160), T0)
        self.assertEqual(parse_rtp(h.to_webrtc[0]).payload_type, 8)
        # Opus relayed with different dynamic payload types on each leg
        h = Harness(LegMedia("opus", 111, ssrc=W_SSRC), LegMedia("OPUS", 96, ssrc=S_SSRC))
        h.bridge.from_webrtc(build_rtp(payload_type=111, sequence=1, timestamp=1, ssrc=9, payload=b"op"), T0)
        h.bridge.from_sip(build_rtp(payload_type=96, sequence=1, timestamp=1, ssrc=8, payload=b"us"), T0)
        self.assertEqual((parse_rtp(h.to_sip[0]).payload_type, parse_rtp(h.to_webrtc[0]).payload_type), (96, 111))
        self.assertEqual(h.bridge.mode, RELAY)

    def test_ssrc_change_and_sequence_wrap_stay_continuous(self) -> None:
        t = T0
        seqs = [65533, 65534, 65535, 0, 1]  # the PBX's own sequence wraps...
        for i, q in enumerate(seqs):
            self.b.from_sip(build_rtp(payload_type=0, sequence=q, timestamp=1000 + 160 * i, ssrc=0x1111, payload=b"\xff" * 160), t)
            t += 0.02
        # ...then it switches the media source (new SSRC, unrelated numbers)
        for i in range(3):
            self.b.from_sip(build_rtp(payload_type=0, sequence=40000 + i, timestamp=7_000_000 + 160 * i, ssrc=0x2222, payload=b"\xff" * 160), t)
            t += 0.02
        headers = [parse_rtp(p) for p in self.h.to_webrtc]
        self.assertEqual({h.ssrc for h in headers}, {W_SSRC})
        first = headers[0]
        self.assertEqual([(h.sequence - first.sequence) & 0xFFFF for h in headers], list(range(8)))
        self.assertEqual([(h.timestamp - first.timestamp) & 0xFFFFFFFF for h in headers], [160 * i for i in range(8)])
        self.assertEqual([h.marker for h in headers], [True, False, False, False, False, True, False, False])

    def test_our_own_sequence_wraps_at_65535(self) -> None:
        legs = (LegMedia("PCMU", 0, ssrc=W_SSRC), LegMedia("PCMU", 0, ssrc=S_SSRC))
        h = Harness(*legs)
        h.bridge.to_sip._initial_seq = 65534  # start our outgoing stream just before the wrap
        for i in range(4):
            h.bridge.from_webrtc(build_rtp(payload_type=0, sequence=100 + i, timestamp=160 * i, ssrc=5, payload=b"x"), T0 + 0.02 * i)
        self.assertEqual([parse_rtp(p).sequence for p in h.to_sip], [65534, 65535, 0, 1])

    def test_telephone_event_passes_with_mapped_payload_type(self) -> None:
        self.b.from_webrtc(build_rtp(payload_type=0, sequence=10, timestamp=800, ssrc=7, payload=b"\xff" * 160), T0)
        ev = event(5, False, 10, 160)
        self.b.from_webrtc(build_rtp(payload_type=126, sequence=11, timestamp=960, ssrc=7, payload=ev, marker=True), T0 + 0.02)
        end = event(5, True, 10, 800)
        for k in range(3):  # the end packet is sent three times (RFC 4733 §2.5.1.4)
            self.b.from_webrtc(build_rtp(payload_type=126, sequence=12 + k, timestamp=960, ssrc=7, payload=end), T0 + 0.1 + 0.001 * k)
        audio, *events = [parse_rtp(p) for p in self.h.to_sip]
        self.assertEqual([e.payload_type for e in events], [101] * 4)
        self.assertEqual([e.timestamp for e in events], [audio.timestamp + 160] * 4)
        self.assertEqual([e.sequence for e in events], [(audio.sequence + k) & 0xFFFF for k in range(1, 5)])
        self.assertTrue(events[0].marker)
        self.assertEqual(events[0].payload(self.h.to_sip[1]), ev)
        self.assertEqual(events[-1].payload(self.h.to_sip[-1]), end)
        self.assertEqual(self.b.stats()[WEBRTC]["dtmf_packets"], 4)

    def test_events_dropped_when_the_other_leg_has_none(self) -> None:
        h = Harness(LegMedia("PCMU", 0, telephone_event=126), LegMedia("PCMU", 0))
        h.bridge.from_webrtc(build_rtp(payload_type=126, sequence=1, timestamp=1, ssrc=1, payload=event(1, False, 10, 160)), T0)
        self.assertEqual(h.to_sip, [])
        self.assertEqual(h.bridge.stats()[WEBRTC]["dropped"], 1)

    def test_unknown_payload_types_and_garbage_are_dropped(self) -> None:
        self.b.from_sip(build_rtp(payload_type=13, sequence=1, timestamp=1, ssrc=1, payload=b"\x40"), T0)  # CN
        self.b.from_sip(b"\x80\x00\x00", T0)
        self.b.from_sip(b"\x40" + bytes(20), T0)
        self.b.from_sip(bytes([0x82]) + build_rtp(payload_type=0, sequence=1, timestamp=1, ssrc=1)[1:], T0)  # CSRCs missing
        self.assertEqual(self.h.to_webrtc, [])
        st = self.b.stats()[SIP]
        self.assertEqual((st["dropped"], st["malformed"]), (1, 3))

    def test_csrc_extension_and_padding_are_carried_through(self) -> None:
        pkt = build_rtp(payload_type=0, sequence=1, timestamp=1, ssrc=1, payload=b"\xff" * 160, csrcs=(4,), extension=(0xBEDE, b"\x10\x01\x00\x00"), padding=4)
        self.b.from_webrtc(pkt, T0)
        out = self.h.to_sip[0]
        self.assertEqual(out[12:], pkt[12:])
        self.assertEqual(parse_rtp(out).payload(out), b"\xff" * 160)
        self.assertEqual(self.b.to_sip.octets_sent, 160)


class TranscodeTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.h = Harness(
            LegMedia("opus", 111, telephone_event=110, ssrc=W_SSRC),
            LegMedia("PCMA", 8, telephone_event=101, ssrc=S_SSRC),
        )
        self.b = self.h.bridge
        self.encoder = OpusEncoder()

    def opus_packet(self, seq: int, ts: int, pcm: np.ndarray | None = None) -> bytes:
        if pcm is None:
            pcm = np.zeros(960, dtype=np.int16)
        return build_rtp(payload_type=111, sequence=seq, timestamp=ts, ssrc=0xB0B, payload=self.encoder.encode(pcm))

    def feed(self, entry, packet: bytes, at: float) -> None:
        """Deliver ``packet`` at ``at``, running the bridge's deadlines that fall before."""
        while (deadline := self.b.next_deadline()) is not None and deadline <= at:
            self.b.poll(deadline)
        entry(packet, at)

    def test_mode_choice(self) -> None:
        self.assertEqual(self.b.mode, TRANSCODE)
        self.assertIsNotNone(self.b.transcoder)
        self.assertEqual(choose_mode(LegMedia("opus", 111), LegMedia("PCMU", 0)), TRANSCODE)
        self.assertEqual(choose_mode(LegMedia("opus", 111), LegMedia("G722", 9)), TRANSCODE)
        self.assertEqual(choose_mode(LegMedia("PCMU", 0), LegMedia("speex", 97, 16000)), TRANSCODE)
        self.assertEqual(choose_mode(LegMedia("PCMA", 8), LegMedia("G729", 18)), TRANSCODE)
        self.assertRaises(ValueError, choose_mode, LegMedia("opus", 111), LegMedia("GSM", 3, 8000))
        self.assertRaises(ValueError, MediaBridge, LegMedia("opus", 111), LegMedia("PCMU", 0), print, print, now=T0, settings=BridgeSettings(mode=RELAY))
        self.assertRaises(ValueError, MediaBridge, LegMedia("PCMU", 0), LegMedia("PCMU", 0), print, print, now=T0, settings=BridgeSettings(mode=TRANSCODE))
        self.assertRaises(ValueError, LegMedia, "speex", 97)
        self.assertEqual(LegMedia("speex", 97, clock_rate=16000).clock_rate, 16000)
        self.assertRaises(ValueError, LegMedia, "PCMU", 0, ptime=0)

    def test_webrtc_to_sip_g711_frames_with_loss_concealed_in_time(self) -> None:
        tone = (8000 * np.sin(2 * np.pi * 440 * np.arange(48000) / 48000)).astype(np.int16)
        for i in range(50):
            if i in (20, 21, 22):  # lost on the way
                continue
            self.feed(self.b.from_webrtc, self.opus_packet(1000 + i, 5000 + 960 * i, tone[960 * i : 960 * (i + 1)]), T0 + 0.02 * i)
        self.b.flush(T0 + 1.0)
        headers = [parse_rtp(p) for p in self.h.to_sip]
        # the 60 ms lost are concealed (Opus PLC): one G.711 packet per 20 ms, no hole in time
        self.assertEqual(len(headers), 50)
        self.assertEqual({h.payload_type for h in headers}, {8})
        self.assertEqual({len(h.payload(p)) for h, p in zip(headers, self.h.to_sip)}, {160})
        t0, s0 = headers[0].timestamp, headers[0].sequence
        self.assertEqual([(h.timestamp - t0) & 0xFFFFFFFF for h in headers], [160 * i for i in range(50)])
        self.assertEqual([(h.sequence - s0) & 0xFFFF for h in headers], list(range(50)))
        self.assertEqual(self.b.stats()[WEBRTC]["concealed_ms"], 60.0)
        self.assertEqual(self.b.stats()[WEBRTC]["packets_lost"], 3)
        audio = g711.alaw_decode(b"".join(h.payload(p) for h, p in zip(headers, self.h.to_sip)))[1600:]
        spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
        peak = float(np.fft.rfftfreq(len(audio), 1 / 8000)[spectrum.argmax()])
        self.assertTrue(436 <= peak <= 444, peak)

    def test_sip_to_webrtc_opus_with_timestamps_times_six(self) -> None:
        tone = g711.alaw_encode(8000 * np.sin(2 * np.pi * 1000 * np.arange(8000) / 8000))
        for i in range(50):
            self.b.from_sip(build_rtp(payload_type=8, sequence=7 + i, timestamp=160 * i, ssrc=0xCAFE, payload=tone[160 * i : 160 * (i + 1)]), T0 + 0.02 * i)
        self.b.flush(T0 + 1.0)
        headers = [parse_rtp(p) for p in self.h.to_webrtc]
        self.assertEqual(len(headers), 50)
        self.assertEqual({h.payload_type for h in headers}, {111})
        self.assertEqual({h.ssrc for h in headers}, {W_SSRC})
        self.assertEqual([h.marker for h in headers[:2]], [True, False])
        t0 = headers[0].timestamp
        self.assertEqual([(h.timestamp - t0) & 0xFFFFFFFF for h in headers], [960 * i for i in range(50)])
        decoder = OpusDecoder()
        pcm = np.concatenate([decoder.decode(h.payload(p)) for h, p in zip(headers, self.h.to_webrtc)])[9600:]
        spectrum = np.abs(np.fft.rfft(pcm * np.hanning(len(pcm))))
        peak = float(np.fft.rfftfreq(len(pcm), 1 / 48000)[spectrum.argmax()])
        self.assertTrue(990 <= peak <= 1010, peak)

    def test_30ms_sip_packets_become_20ms_opus_packets_back_to_back(self) -> None:
        for i in range(6):
            self.b.from_sip(build_rtp(payload_type=8, sequence=i, timestamp=240 * i, ssrc=1, payload=b"\xd5" * 240), T0 + 0.03 * i)
        self.b.flush(T0 + 0.2)
        headers = [parse_rtp(p) for p in self.h.to_webrtc]
        t0 = headers[0].timestamp
        # 180 ms in: nine 20 ms Opus packets, each starting where the previous ended
        self.assertEqual([(h.timestamp - t0) & 0xFFFFFFFF for h in headers], [960 * i for i in range(9)])

    def test_silence_suppression_stays_a_gap_with_a_marker(self) -> None:
        payload = b"\xd5" * 160
        for i, ts in enumerate([0, 160, 320, 8000, 8160]):  # 960 ms not sent after the third
            self.b.from_sip(build_rtp(payload_type=8, sequence=i, timestamp=ts, ssrc=1, payload=payload), T0 + ts / 8000)
        self.b.flush(T0 + 1.1)
        headers = [parse_rtp(p) for p in self.h.to_webrtc]
        t0 = headers[0].timestamp
        # 60 ms, a 960 ms gap, 40 ms: each talkspurt complete (its last packet padded), the gap kept
        self.assertEqual([(h.timestamp - t0) & 0xFFFFFFFF for h in headers], [0, 960, 1920, 48000, 48960])
        self.assertEqual([h.marker for h in headers], [True, False, False, True, False])
        self.assertEqual(self.b.stats()[SIP]["concealed_ms"], 0.0)

    def test_dtmf_is_restamped_and_rescaled_not_transcoded(self) -> None:
        self.b.from_webrtc(self.opus_packet(1, 48000), T0)
        ev = event(11, False, 10, 4800)  # '#', 100 ms at 48 kHz
        self.b.from_webrtc(build_rtp(payload_type=110, sequence=2, timestamp=48960, ssrc=0xB0B, payload=ev, marker=True), T0 + 0.02)
        # the event ends the audio before it: that goes out first (the resampler's tail too)
        audio, dtmf = [parse_rtp(p) for p in self.h.to_sip]
        self.assertEqual(dtmf.payload_type, 101)
        self.assertEqual((dtmf.timestamp - audio.timestamp) & 0xFFFFFFFF, 160)
        self.assertEqual(dtmf.sequence, (audio.sequence + 1) & 0xFFFF)
        self.assertTrue(dtmf.marker)
        self.assertEqual(dtmf.payload(self.h.to_sip[1]), event(11, False, 10, 800))
        # the event's sequence number is no loss: audio after it goes out at once, no PLC
        self.b.from_webrtc(self.opus_packet(3, 48000 + 960 * 7), T0 + 0.14)
        self.b.flush(T0 + 0.16)
        self.assertEqual(len(self.h.to_sip), 3)
        self.assertEqual((parse_rtp(self.h.to_sip[2]).timestamp - audio.timestamp) & 0xFFFFFFFF, 160 * 7)
        self.assertIsNone(self.b.next_deadline())
        self.assertEqual(self.b.stats()[WEBRTC]["concealed_ms"], 0.0)
        # and back: 8 kHz SIP event -> 48 kHz browser event
        self.b.from_sip(build_rtp(payload_type=8, sequence=1, timestamp=0, ssrc=2, payload=b"\xd5" * 160), T0)
        self.b.from_sip(build_rtp(payload_type=101, sequence=2, timestamp=160, ssrc=2, payload=event(1, True, 7, 1600)), T0 + 0.2)
        audio_w, dtmf_w = [parse_rtp(p) for p in self.h.to_webrtc]
        self.assertEqual(dtmf_w.payload_type, 110)
        self.assertEqual((dtmf_w.timestamp - audio_w.timestamp) & 0xFFFFFFFF, 960)
        self.assertEqual(dtmf_w.payload(self.h.to_webrtc[1]), event(1, True, 7, 9600))

    def test_held_audio_is_not_concealed_when_it_resumes(self) -> None:
        for i in range(10):
            if i == 3:
                self.b.paused_to_sip = True  # local hold: the browser's audio stops here
            if i == 7:
                self.b.paused_to_sip = False
            self.feed(self.b.from_webrtc, self.opus_packet(100 + i, 960 * i), T0 + 0.02 * i)
        self.b.flush(T0 + 0.2)
        headers = [parse_rtp(p) for p in self.h.to_sip]
        t0 = headers[0].timestamp
        # 3 packets, the 4 held ones neither sent nor concealed (a gap in time), then 3 more
        self.assertEqual([(h.timestamp - t0) & 0xFFFFFFFF for h in headers], [0, 160, 320, 1120, 1280, 1440])
        self.assertEqual([h.marker for h in headers], [True, False, False, True, False, False])
        self.assertEqual(self.b.stats()[WEBRTC]["concealed_ms"], 0.0)
        self.assertEqual(self.b.stats()[WEBRTC]["packets_received"], 10)

    def test_corrupt_opus_is_counted_not_raised(self) -> None:
        self.b.from_webrtc(build_rtp(payload_type=111, sequence=1, timestamp=1, ssrc=1, payload=b"\xff\xff\xff\xff\xff"), T0)
        self.assertEqual(self.b.stats()[WEBRTC]["codec_errors"], 1)
        self.assertEqual(self.h.to_sip, [])


class DeadlineTests(SynchronousTestCase):
    """The owner's single timer: on_deadline reports a new earlier deadline, poll() at it."""

    def setUp(self) -> None:
        self.clock = task.Clock()
        self.clock.advance(T0)
        self.to_sip: list[bytes] = []
        self.reported: list[float] = []
        self.timer = None
        # PCMU -> G.729: no resampling, so each packet in is a packet out at once
        self.b = MediaBridge(LegMedia("PCMU", 0, ssrc=W_SSRC), LegMedia("G729", 18, ssrc=S_SSRC),
                             lambda p: None, self.to_sip.append, now=T0)
        self.b.on_deadline = self.arm

    def arm(self, deadline: float) -> None:
        """What the call layer does: one timer, re-armed at the bridge's deadline."""
        self.reported.append(deadline)
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        self.timer = self.clock.callLater(max(0.0, deadline - self.clock.seconds()), self.tick)

    def tick(self) -> None:
        self.timer = None
        deadline = self.b.poll(self.clock.seconds())
        if deadline is not None:
            self.arm(deadline)

    def send(self, seq: int, at: float) -> None:
        self.clock.advance(at - self.clock.seconds())
        self.b.from_webrtc(build_rtp(payload_type=0, sequence=seq, timestamp=160 * seq, ssrc=3, payload=b"\xff" * 160), at)

    def test_a_gap_arms_the_timer_and_the_held_packet_goes_out_when_it_fires(self) -> None:
        self.send(0, T0)
        self.send(1, T0 + 0.02)
        self.assertEqual((self.reported, len(self.to_sip)), ([], 2))
        self.send(3, T0 + 0.06)  # 2 is missing: 3 waits
        self.assertEqual(len(self.to_sip), 2)
        wait = self.b.transcoder.w2s.jitter.wait
        self.assertEqual(self.reported, [T0 + 0.06 + wait])
        self.clock.advance(wait - 0.001)
        self.assertEqual(len(self.to_sip), 2)
        self.clock.advance(0.001)
        # fired on time: 2 concealed, 3 decoded, both sent, nothing pending
        self.assertEqual(len(self.to_sip), 4)
        self.assertIsNone(self.timer)
        headers = [parse_rtp(p) for p in self.to_sip]
        self.assertEqual([(h.timestamp - headers[0].timestamp) & 0xFFFFFFFF for h in headers], [0, 160, 320, 480])

    def test_a_deadline_past_without_a_poll_is_reported_again(self) -> None:
        reported: list[float] = []
        self.b.on_deadline = reported.append  # an owner whose timer never fired
        self.send(0, T0)
        self.send(2, T0 + 0.04)
        self.assertEqual(len(reported), 1)
        self.send(3, T0 + 0.2)
        # still due (its wait grew with the jitter 3 showed), and past: said again
        self.assertEqual(len(reported), 2)
        self.assertLess(reported[1], T0 + 0.2)
        self.assertEqual(len(self.to_sip), 1)
        self.b.poll(T0 + 0.2)
        self.assertEqual(len(self.to_sip), 4)

    def test_a_later_deadline_is_not_reported_the_armed_poll_returns_it(self) -> None:
        self.send(0, T0)
        self.send(2, T0 + 0.04)  # 1 missing
        self.send(5, T0 + 0.045)  # 3, 4 missing: a later deadline, behind the first
        self.assertEqual(len(self.reported), 1)
        self.clock.pump([0.001] * 200)
        # re-armed from poll's returns (the wait also grew with the jitter 5 showed), in order
        self.assertGreaterEqual(len(self.reported), 2)
        self.assertEqual(self.reported, sorted(self.reported))
        self.assertIsNone(self.b.next_deadline())
        self.assertEqual(len(self.to_sip), 6)


class RtcpAndActivityTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.h = Harness(*pcmu_legs())
        self.b = self.h.bridge

    def test_incoming_rtcp_is_terminated_not_forwarded(self) -> None:
        rr = build_rr(0x777)
        self.b.from_webrtc(rr, T0)  # muxed on the RTP path
        self.b.rtcp_from_sip(rr, T0)
        self.assertEqual((self.h.to_sip, self.h.to_webrtc), ([], []))
        self.assertEqual(self.b.rtcp[WEBRTC].remote_ssrc, 0x777)
        self.assertEqual(self.b.rtcp[SIP].reports_received, 1)

    def test_each_leg_gets_its_own_reports(self) -> None:
        self.assertEqual(self.b.poll_rtcp(T0), self.b.rtcp_due())
        self.assertEqual(self.h.rtcp_webrtc + self.h.rtcp_sip, [])
        for i in range(50):
            self.b.from_webrtc(build_rtp(payload_type=0, sequence=i, timestamp=160 * i, ssrc=0x1234, payload=b"\xff" * 160), T0 + 0.02 * i)
        now = T0 + 10.0
        deadline = self.b.poll_rtcp(now)
        self.assertGreater(deadline, now)
        (to_w,) = self.h.rtcp_webrtc
        (to_s,) = self.h.rtcp_sip
        # toward the browser: we sent it nothing, but received 50 packets from it -> RR + block
        rr, sdes = parse_rtcp(to_w)
        self.assertIsInstance(rr, ReceiverReport)
        self.assertEqual(rr.ssrc, W_SSRC)
        self.assertEqual(rr.reports[0].ssrc, 0x1234)
        self.assertEqual(rr.reports[0].highest_sequence, 49)
        self.assertIsInstance(sdes, SourceDescription)
        self.assertEqual(sdes.cname(W_SSRC), "gw-test")
        # toward the SIP side: we relayed 50 packets to it -> SR with our counts
        sr, _ = parse_rtcp(to_s)
        self.assertIsInstance(sr, SenderReport)
        self.assertEqual((sr.ssrc, sr.packet_count, sr.octet_count, sr.reports), (S_SSRC, 50, 8000, ()))
        self.assertEqual(parse_rtcp(self.b.make_rtcp(SIP, now + 1))[0].ssrc, S_SSRC)
        self.assertIn(b"bye", self.b.make_bye(WEBRTC, "bye"))

    def test_inactivity_per_direction(self) -> None:
        self.assertEqual(self.b.inactive_for(T0 + 3), 3)
        self.b.from_webrtc(build_rtp(payload_type=0, sequence=1, timestamp=1, ssrc=1, payload=b"\xff"), T0 + 5)
        self.assertEqual(self.b.inactive_for(T0 + 6, WEBRTC), 1)
        self.assertEqual(self.b.inactive_for(T0 + 6, SIP), 6)
        self.assertEqual(self.b.inactive_for(T0 + 6), 6)  # the longer silence counts
        self.b.from_sip(build_rtp(payload_type=0, sequence=1, timestamp=1, ssrc=1, payload=b"\xff"), T0 + 6)
        self.assertEqual(self.b.inactive_for(T0 + 8), 3)
        self.assertEqual(self.b.last_activity, {WEBRTC: T0 + 5, SIP: T0 + 6})
        # RTCP and dropped payload types do not count as RTP activity
        self.b.from_sip(build_rr(9), T0 + 20)
        self.b.from_sip(build_rtp(payload_type=13, sequence=2, timestamp=2, ssrc=1, payload=b"\x40"), T0 + 20)
        self.assertEqual(self.b.inactive_for(T0 + 20, SIP), 14)

    def test_leg_media_from_negotiated_codecs(self) -> None:
        class Codec:  # what wcsgw.sdp.codecs.Codec offers, duck-typed
            def __init__(self, name: str, rate: int, pt: int) -> None:
                self.name, self.clock_rate, self.payload_type = name, rate, pt

        leg = LegMedia.from_codecs(
            [Codec("opus", 48000, 111), Codec("telephone-event", 8000, 126), Codec("telephone-event", 48000, 110)],
            ssrc=5,
        )
        self.assertEqual(leg, LegMedia("opus", 111, 48000, 110, 5))
        leg = LegMedia.from_codecs([Codec("CN", 8000, 13), Codec("PCMA", 8000, 8)])
        self.assertEqual((leg.codec, leg.payload_type, leg.telephone_event), ("PCMA", 8, None))
        self.assertRaises(ValueError, LegMedia.from_codecs, [Codec("telephone-event", 8000, 101)])

    def test_codec_keywords_and_late_start(self) -> None:
        class Codec:
            def __init__(self, name: str, rate: int, pt: int) -> None:
                self.name, self.clock_rate, self.payload_type = name, rate, pt

        out: list[bytes] = []
        b = MediaBridge(
            LegMedia.negotiated(Codec("PCMU", 8000, 0), Codec("telephone-event", 8000, 126), W_SSRC),
            LegMedia.negotiated(Codec("PCMU", 8000, 0), Codec("telephone-event", 8000, 101)),
            out.append, out.append, settings=BridgeSettings(mode="relay"),
        )
        self.assertEqual(b.webrtc, LegMedia("PCMU", 0, 8000, 126, W_SSRC))
        self.assertEqual(b.sip.telephone_event, 101)
        self.assertIsNone(b.started_at)
        # without a start time, the first check starts the clocks: nothing is inactive yet
        self.assertEqual(b.inactive_for(T0), 0.0)
        self.assertEqual(b.inactive_for(T0 + 4), 4.0)
        b.started_at = T0 + 10  # or the owner says when media may start
        self.assertEqual(b.inactive_for(T0 + 12), 2.0)
        b.from_sip(build_rtp(payload_type=0, sequence=1, timestamp=1, ssrc=1, payload=b"\xff"), T0 + 12)
        self.assertEqual(parse_rtp(out[0]).ssrc, W_SSRC)
        (report,) = b.make_rtcp_for_webrtc(T0 + 13)
        self.assertEqual(parse_rtcp(report)[0].ssrc, W_SSRC)
        self.assertEqual(len(b.make_rtcp_for_sip(T0 + 13)), 1)
        self.assertRaises(TypeError, MediaBridge, sip_codec=Codec("PCMU", 8000, 0), send_to_webrtc=print, send_to_sip=print)

    def test_codec_keywords_carry_ptime_and_fmtp_to_the_transcoder(self) -> None:
        from wcsgw.sdp.codecs import Codec

        reported: list[float] = []
        b = MediaBridge(
            LegMedia.negotiated(Codec("opus", 48000, 2, 111, "minptime=10;useinbandfec=1"), ptime=None),
            LegMedia.negotiated(Codec("G729", 8000, 1, 18, "annexb=no"), ptime=30),
            print, print,
        )
        b.on_deadline = reported.append
        self.assertEqual((b.sip.ptime, b.webrtc.ptime, b.sip.fmtp), (30, 20, "annexb=no"))
        self.assertEqual((b.transcoder.w2s.ptime, b.transcoder.s2w.ptime), (30, 20))
        self.assertEqual(b.on_deadline, reported.append)

    def test_stats_shape(self) -> None:
        self.b.from_sip(build_rtp(payload_type=0, sequence=1, timestamp=1, ssrc=1, payload=b"\xff" * 160), T0)
        st = self.b.stats()
        self.assertEqual(st[SIP]["packets_received"], 1)
        self.assertEqual(st[WEBRTC]["packets_sent"], 1)
        self.assertIsNone(st[WEBRTC]["rtt_ms"])


class HoldSupportTests(SynchronousTestCase):
    """What the call layer uses while a call is on hold."""

    def test_paused_to_sip_drops_audio_but_counts_activity(self) -> None:
        sent_sip: list[bytes] = []
        bridge = MediaBridge(LegMedia("PCMU", 0), LegMedia("PCMU", 0),
                             lambda p: None, sent_sip.append, now=0.0)
        packet = build_rtp(payload_type=0, sequence=1, timestamp=160, ssrc=7, payload=b"\xff" * 160)
        bridge.paused_to_sip = True
        bridge.from_webrtc(packet, 1.0)
        self.assertEqual(sent_sip, [])
        self.assertEqual(bridge.inactive_for(1.0, "webrtc"), 0.0)
        bridge.paused_to_sip = False
        bridge.from_webrtc(build_rtp(payload_type=0, sequence=2, timestamp=320, ssrc=7,
                                     payload=b"\xff" * 160), 1.02)
        self.assertEqual(len(sent_sip), 1)

    def test_dtmf_paused_to_sip_drops_events_and_refuses_ours(self) -> None:
        """Remote hold: the browser's RFC 4733 events stop too, and so do our own."""
        sent_sip: list[bytes] = []
        bridge = MediaBridge(LegMedia("PCMU", 0, telephone_event=126),
                             LegMedia("PCMU", 0, telephone_event=101),
                             lambda p: None, sent_sip.append, now=0.0)
        event = build_rtp(payload_type=126, sequence=1, timestamp=160, ssrc=7,
                          payload=bytes([5, 10, 0, 160]), marker=True)
        bridge.dtmf_paused_to_sip = True
        bridge.from_webrtc(event, 1.0)
        self.assertEqual(sent_sip, [])
        self.assertEqual(bridge.inactive_for(1.0, "webrtc"), 0.0)  # still activity
        with self.assertRaises(ValueError):
            bridge.send_dtmf_to_sip("1", 1.0)
        self.assertEqual(sent_sip, [])
        bridge.dtmf_paused_to_sip = False
        bridge.from_webrtc(build_rtp(payload_type=126, sequence=2, timestamp=480, ssrc=7,
                                     payload=bytes([6, 10, 0, 160]), marker=True), 1.1)
        self.assertEqual([parse_rtp(p).payload_type for p in sent_sip], [101])
        bridge.send_dtmf_to_sip("1", 1.2)
        self.assertEqual(len(sent_sip), 2)

    def test_mark_active_restarts_the_clocks(self) -> None:
        bridge = MediaBridge(LegMedia("PCMU", 0), LegMedia("PCMU", 0),
                             lambda p: None, lambda p: None, now=0.0)
        self.assertEqual(bridge.inactive_for(40.0), 40.0)
        bridge.mark_active(40.0)
        self.assertEqual(bridge.inactive_for(41.0), 1.0)
