"""Any-to-any transcoding (wcsgw.media.transcode) through the bridge: timing (odd ptimes,
G.722's half-rate clock, silence kept as gaps), loss (concealed without a hole in time, capped),
reordering, duplicates, late packets, garbage payloads, Opus in-band FEC, a new source stream.

Tones are measured by content (tests.quality); the full codec matrix is in test_media_quality.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from twisted.trial.unittest import SynchronousTestCase

from tests.quality import LEVEL, db, dominant, rms, run_direction, tone
from tests.support import assert_near
from wcsgw.media.audiocodec import CodecError, make_codec, packet_samples
from wcsgw.media.bridge import SIP, WEBRTC, LegMedia
from wcsgw.media.jitter import JitterBuffer
from wcsgw.media.pipe import Pipe
from wcsgw.media.transcode import Transcoder

OPUS = ("opus", 48000)
PCMU = ("PCMU", 8000)
PCMA = ("PCMA", 8000)
G722 = ("G722", 8000)
G729 = ("G729", 8000)
SPEEX_WB = ("speex", 16000)
T0 = 1000.0



def receive_opus_losing_every_tenth(pipe: Pipe) -> list[Any]:
    """One second of a 440 Hz tone as 48 kHz Opus with in-band FEC into ``pipe``, every tenth
    packet lost (so FEC can rebuild each from the next); what ``pipe`` sent out."""
    enc = make_codec("opus", fmtp={"useinbandfec": "1"}, packet_loss_percent=30, bitrate=32000)
    x = tone(440.0, 48000, 1.0)
    out: list[Any] = []
    for i in range(50):
        payload = enc.encode(x[960 * i : 960 * (i + 1)])
        if i % 10 == 5:
            continue
        out += pipe.receive(i, 960 * i, payload, T0 + 0.02 * i)
        out += pipe.poll(T0 + 0.02 * i + 0.1)
    out += pipe.flush()
    return out

class PacketSizeTests(SynchronousTestCase):
    def test_ptime_rounded_to_the_codecs_frames(self) -> None:
        cases = {
            ("pcmu", 8000, 30): 240,
            ("pcmu", 8000, 10): 80,
            ("g729", 8000, 60): 480,
            ("g722", 8000, 30): 480,  # 16 kHz samples
            ("speex", 8000, 10): 160,  # one 20 ms frame at least
            ("speex", 16000, 60): 960,
            ("opus", 48000, 30): 960,  # not an Opus frame: 20 ms
            ("opus", 48000, 60): 2880,
            ("opus", 48000, 5): 480,
        }
        for (name, rate, ptime), samples in cases.items():
            codec = make_codec(name, rate)
            self.assertEqual(packet_samples(codec, ptime), samples, (name, rate, ptime))
            codec.close()


class TimestampTests(SynchronousTestCase):
    """Output timestamps advance by exactly each packet's duration, both directions."""

    def check(self, browser, sip, ptime: int, to_sip: bool) -> None:
        run = run_direction(browser, sip, to_sip=to_sip, sip_ptime=ptime, freq=440.0)
        target = make_codec(*(sip if to_sip else browser))
        step = packet_samples(target, ptime if to_sip else 20) // (target.sample_rate // target.rtp_clock)
        self.assertEqual(set(run.steps), {step}, (browser, sip, ptime, to_sip))
        self.assertEqual(set(run.packet_ticks), {step})
        freq, level, _ = run.measure(440.0)
        assert_near(self, freq, 440.0, 4.4)
        assert_near(self, level, 0.0, 3.0)

    def test_odd_sip_ptimes_both_directions(self) -> None:
        for sip in (PCMU, G729, G722):
            for ptime in (10, 30, 40, 60):
                for to_sip in (True, False):
                    self.check(OPUS, sip, ptime, to_sip)
        for ptime in (10, 30, 40, 60):
            for to_sip in (True, False):
                self.check(PCMA, SPEEX_WB, ptime, to_sip)

    def test_g722_runs_its_clock_at_half_the_sample_rate(self) -> None:
        run = run_direction(PCMU, G722, to_sip=True)
        self.assertEqual(set(run.steps), {160})  # 20 ms = 320 samples = 160 ticks
        self.assertEqual(set(run.sizes), {160})
        run = run_direction(PCMU, G722, to_sip=False)
        self.assertEqual(set(run.steps), {160})

    def test_one_packet_out_per_packet_in_at_equal_ptimes(self) -> None:
        run = run_direction(OPUS, G729, to_sip=True, seconds=0.2)
        self.assertEqual(len(run.timestamps), 10)
        self.assertEqual(set(run.sizes), {20})  # two 10-byte G.729 frames
        self.assertEqual(run.bridge.stats()[SIP]["packets_sent"], 10)


class LossTests(SynchronousTestCase):
    def test_one_in_ten_lost_is_concealed_without_holes(self) -> None:
        for browser, sip in ((OPUS, PCMU), (PCMA, G722), (PCMU, SPEEX_WB), (PCMA, OPUS)):
            for to_sip in (True, False):
                run = run_direction(browser, sip, to_sip=to_sip, freq=440.0, seconds=2.0,
                                    lose=lambda i: i % 10 == 5, jitter=0.004)
                side = WEBRTC if to_sip else SIP
                stats = run.bridge.stats()[side]
                what = (browser, sip, to_sip)
                self.assertEqual(stats["packets_lost"], 10, what)
                assert_near(self, stats["concealed_ms"], 200.0, 0.5)
                # 100 packets of 20 ms, back to back: the losses left no gap in time
                self.assertEqual(len(run.timestamps), 100, what)
                self.assertEqual(len(set(run.steps)), 1, what)
                freq, level, _ = run.measure(440.0)
                assert_near(self, freq, 440.0, 4.4)
                assert_near(self, level, 0.0, 3.0)

    def test_a_long_loss_is_concealed_for_100ms_then_left_as_a_gap(self) -> None:
        run = run_direction(PCMU, PCMA, to_sip=True, freq=440.0, lose=lambda i: 10 <= i < 30)
        stats = run.bridge.stats()[WEBRTC]
        self.assertEqual(stats["concealed_ms"], 100.0)
        self.assertEqual(run.bridge.transcoder.w2s.gaps_left, 1)
        # 10 packets, 5 concealed, the rest of the 400 ms lost stays a 300 ms hole, 20 packets
        self.assertEqual(len(run.timestamps), 35)
        self.assertEqual(run.steps[14], 160 + 300 * 8)
        self.assertEqual(set(run.steps[:14] + run.steps[15:]), {160})
        self.assertLess(rms(run.audio[8000 * 15 // 50 : 8000 * 29 // 50]), 1.0)  # the hole is silence

    def test_reordered_pair_is_delivered_in_order_without_concealment(self) -> None:
        def swap(idx: list[int]) -> list[int]:
            idx = list(idx)
            idx[20], idx[21] = idx[21], idx[20]
            return idx

        clean = run_direction(OPUS, G729, to_sip=True)
        run = run_direction(OPUS, G729, to_sip=True, order=swap)
        stats = run.bridge.stats()[WEBRTC]
        self.assertEqual((stats["concealed_ms"], stats["reordered"], stats["late"]), (0.0, 1, 0))
        # exactly what the in-order run sent: nothing concealed, nothing re-ordered on the way out
        self.assertEqual(run.steps, clean.steps)
        self.assertEqual(set(run.steps), {160})
        self.assertTrue(np.array_equal(run.audio, clean.audio))

    def test_duplicates_are_dropped(self) -> None:
        clean = run_direction(PCMU, OPUS, to_sip=False)
        run = run_direction(PCMU, OPUS, to_sip=False, order=lambda idx: [i for i in idx for _ in (0, 1)])
        self.assertEqual(run.bridge.stats()[SIP]["duplicates"], 50)
        self.assertTrue(np.array_equal(run.audio, clean.audio))

    def test_late_packet_is_dropped_and_counted(self) -> None:
        def late(idx: list[int]) -> list[int]:
            idx = [i for i in idx if i != 10]
            return idx[:20] + [10] + idx[20:]  # arrives 200 ms after its turn

        run = run_direction(OPUS, PCMU, to_sip=True, order=late)
        stats = run.bridge.stats()[WEBRTC]
        self.assertEqual((stats["late"], stats["concealed_ms"]), (1, 20.0))
        self.assertEqual(len(set(run.steps)), 1)

    def test_garbage_payload_is_counted_and_concealed(self) -> None:
        pipe = Pipe(make_codec("opus"), make_codec("pcmu"))
        enc = make_codec("opus")
        x = tone(1000.0, 48000, 0.2)
        out = []
        for i in range(10):
            payload = b"\xff\xff\xff\xff\xff" if i == 4 else enc.encode(x[960 * i : 960 * (i + 1)])
            got = pipe.receive(100 + i, 960 * i, payload, T0 + 0.02 * i)
            if i == 4:
                self.assertEqual(got, [])  # nothing sent for it
            out += got
        out += pipe.flush()
        self.assertEqual(pipe.codec_errors, 1)
        self.assertEqual(len(out), 10)  # the next packet brought its concealment along
        self.assertEqual([(b.ts - a.ts) & 0xFFFFFFFF for a, b in zip(out, out[1:])], [160] * 9)
        self.assertEqual(pipe.concealed_samples, 960)

    def test_opus_inband_fec_rebuilds_the_lost_frame(self) -> None:
        pipe = Pipe(make_codec("opus"), make_codec("pcmu"))
        out = receive_opus_losing_every_tenth(pipe)
        self.assertEqual(pipe.fec_frames, 5)
        self.assertEqual(len(out), 50)
        pcm = make_codec("pcmu").decode(b"".join(o.payload for o in out))[1600:]
        assert_near(self, dominant(pcm, 8000), 440.0, 4.4)
        assert_near(self, db(rms(pcm) / (LEVEL / np.sqrt(2))), 0.0, 3.0)


class StreamChangeTests(SynchronousTestCase):
    def test_new_ssrc_rebases_the_outgoing_stream(self) -> None:
        pipe = Pipe(make_codec("pcmu"), make_codec("g722"), jitter=JitterBuffer(8000))
        enc = make_codec("pcmu")
        out = []
        for i in range(5):
            out += pipe.receive(i, 160 * i, enc.encode(np.zeros(160, dtype=np.int16)), T0 + 0.02 * i, ssrc=1)
        for i in range(5):
            out += pipe.receive(7000 + i, 999999 + 160 * i, enc.encode(np.zeros(160, dtype=np.int16)),
                                T0 + 0.1 + 0.02 * i, ssrc=2)
        out += pipe.flush()
        # the old stream's audio is all sent before the new one's (its last packet padded)
        self.assertEqual([o.epoch for o in out], [0] * 5 + [1] * 5)
        self.assertEqual([o.marker for o in out], [True] + [False] * 4 + [True] + [False] * 4)
        self.assertEqual([(o.ts - out[5].ts) & 0xFFFFFFFF for o in out[5:]], [160 * i for i in range(5)])
        self.assertEqual(pipe.concealed_samples, 0)

    def test_bridge_keeps_its_stream_continuous_across_a_new_source(self) -> None:
        sent: list[bytes] = []
        from wcsgw.media.bridge import MediaBridge
        from wcsgw.media.rtp import build_rtp, parse_rtp

        b = MediaBridge(LegMedia("PCMU", 0, ssrc=5), LegMedia("G729", 18, ssrc=6), lambda p: None, sent.append, now=T0)
        enc = make_codec("pcmu")
        payload = enc.encode(np.zeros(160, dtype=np.int16))
        for i in range(3):
            b.from_webrtc(build_rtp(payload_type=0, sequence=i, timestamp=160 * i, ssrc=1, payload=payload), T0 + 0.02 * i)
        for i in range(3):
            b.from_webrtc(build_rtp(payload_type=0, sequence=900 + i, timestamp=5_000_000 + 160 * i, ssrc=9,
                                    payload=payload), T0 + 0.06 + 0.02 * i)
        headers = [parse_rtp(p) for p in sent]
        self.assertEqual({h.ssrc for h in headers}, {6})
        self.assertEqual([(h.sequence - headers[0].sequence) & 0xFFFF for h in headers], list(range(6)))
        self.assertEqual([(h.timestamp - headers[0].timestamp) & 0xFFFFFFFF for h in headers],
                         [0, 160, 320, 480, 640, 800])
        self.assertEqual([h.marker for h in headers], [True, False, False, True, False, False])


class TranscoderTests(SynchronousTestCase):
    def test_legs_and_ptime(self) -> None:
        t = Transcoder(LegMedia("opus", 111), LegMedia("G729", 18, ptime=40, fmtp="annexb=no"))
        self.assertEqual((t.webrtc_codec.name, t.sip_codec.name), ("opus", "g729"))
        self.assertEqual((t.w2s.ptime, t.s2w.ptime), (40, 20))
        t.close()

    def test_unknown_codec_is_refused(self) -> None:
        self.assertRaises(CodecError, Transcoder, LegMedia("opus", 111), LegMedia("GSM", 3, 8000))
