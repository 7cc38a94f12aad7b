"""The stereo call recording's media half: the tap's queue, the placement and decoding of two
streams into one WAV (wcsgw.media.recordtap, stereorecord, recordworker)."""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import wave
from pathlib import Path

import numpy as np
from twisted.trial import unittest

from tests.quality import dominant, rms, tone
from tests.support import assert_near
from wcsgw.media.audiocodec import make_codec
from wcsgw.media.bridge import LegMedia, MediaBridge
from wcsgw.media.recordtap import RecordingTap
from wcsgw.media.recordworker import RecordingWorker
from wcsgw.media.rtp import build_rtp as _build
from wcsgw.media.stereorecord import StereoRecorder
from wcsgw.media.wavrecord import create_new

START = 1000.0


def build_rtp(pt: int, seq: int, ts: int, ssrc: int, payload: bytes) -> bytes:
    return _build(payload_type=pt, sequence=seq, timestamp=ts, ssrc=ssrc, payload=payload)


def packets(codec_name: str, freq: float, *, begin: float, seconds: float,
            ssrc: int, pt: int) -> list[tuple[float, bytes]]:
    """(arrival time, RTP packet) of a tone sent in 20 ms packets from ``begin``."""
    codec = make_codec(codec_name)
    frame = codec.sample_rate // 50
    pcm = tone(freq, codec.sample_rate, seconds)
    out = []
    ts = 12345
    for i in range(len(pcm) // frame):
        payload = codec.encode(pcm[i * frame:(i + 1) * frame])
        out.append((begin + i * 0.02, build_rtp(pt, (100 + i) & 0xFFFF, ts & 0xFFFFFFFF, ssrc, payload)))
        ts += codec.rtp_clock // 50
    codec.close()
    return out


def read_stereo(data: bytes | str | Path) -> tuple[int, np.ndarray]:
    with wave.open(io.BytesIO(data) if isinstance(data, bytes) else str(data)) as w:
        assert w.getnchannels() == 2 and w.getsampwidth() == 2
        rate = w.getframerate()
        frames = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, 2)
    return rate, frames


class NamedBytes(io.BytesIO):
    """A seekable in-memory file that keeps its bytes after close."""

    value = b""

    def close(self) -> None:
        self.value = self.getvalue()
        super().close()


def feed(recorder: StereoRecorder, side: int, stream: list[tuple[float, bytes]]) -> None:
    tap = RecordingTap()
    put = tap.from_webrtc if side == 0 else tap.from_sip
    for now, packet in stream:
        put.audio(packet, now)
        recorder.add(*tap.queue.get_nowait())
        recorder.advance()


class StereoRecorderTests(unittest.TestCase):
    def test_opus_left_pcmu_right_with_loss_reordering_and_a_late_start(self) -> None:
        """Browser: Opus 440 Hz from 0 s, every 10th packet lost; phone: PCMU 1 kHz from
        1.0 s, pairs swapped in arrival.  Left holds 440 Hz, right 1 kHz only from 1 s."""
        left = packets("opus", 440, begin=START, seconds=3.0, ssrc=1, pt=111)
        left = [p for i, p in enumerate(left) if i % 10 != 5]
        right = packets("pcmu", 1000, begin=START + 1.0, seconds=2.0, ssrc=2, pt=0)
        for i in range(0, len(right) - 1, 2):  # swap each pair's packets, keep their times
            (t0, a), (t1, b) = right[i], right[i + 1]
            right[i], right[i + 1] = (t0, b), (t1, a)
        out = NamedBytes()
        recorder = StereoRecorder(out, make_codec("opus"), make_codec("pcmu"), START)
        merged = sorted([(t, 0, p) for t, p in left] + [(t, 1, p) for t, p in right])
        tap = RecordingTap()
        for now, side, packet in merged:
            (tap.from_webrtc if side == 0 else tap.from_sip).audio(packet, now)
            recorder.add(*tap.queue.get_nowait())
            recorder.advance()
        recorder.close()
        rate, frames = read_stereo(out.value)
        self.assertEqual(rate, 16000)  # Opus is wideband
        assert_near(self, len(frames) / rate, 3.0, 0.15)
        left_ch, r = frames[:, 0], frames[:, 1]
        second = slice(int(1.3 * rate), int(2.8 * rate))
        assert_near(self, dominant(left_ch[int(0.2 * rate):int(0.9 * rate)], rate), 440, 5)
        assert_near(self, dominant(left_ch[second], rate), 440, 5)
        assert_near(self, dominant(r[second], rate), 1000, 5)
        self.assertLess(rms(r[int(0.05 * rate):int(0.95 * rate)]), 10)  # silence before 1 s
        self.assertGreater(rms(r[int(1.05 * rate):int(1.2 * rate)]), 1000)  # the tone at 1 s
        self.assertGreater(rms(left_ch[second]), 1000)
        self.assertEqual(recorder.tracks[1].late, 0)  # the swaps were put back in place
        self.assertEqual(recorder.tracks[0].concealed_samples, 15 * 960)  # each loss concealed

    def test_all_g711_is_8khz_and_a_timestamp_jump_is_placed_by_arrival(self) -> None:
        """A new SSRC at 2 s (a re-INVITE, a transfer) starting at an unrelated timestamp is
        placed at its arrival, not where its timestamp would put it."""
        first = packets("pcma", 700, begin=START, seconds=1.0, ssrc=5, pt=8)
        second = [(t + 1.0, p) for t, p in packets("pcma", 1300, begin=START + 1.0, seconds=1.0,
                                                   ssrc=6, pt=8)]
        out = NamedBytes()
        recorder = StereoRecorder(out, make_codec("pcmu"), make_codec("pcma"), START)
        feed(recorder, 1, first + second)
        recorder.close()
        rate, frames = read_stereo(out.value)
        self.assertEqual(rate, 8000)
        r = frames[:, 1]
        assert_near(self, dominant(r[int(0.2 * rate):int(0.9 * rate)], rate), 700, 5)
        self.assertLess(rms(r[int(1.1 * rate):int(1.9 * rate)]), 10)  # nothing came then
        assert_near(self, dominant(r[int(2.2 * rate):int(2.9 * rate)], rate), 1300, 5)
        self.assertLess(rms(frames[:, 0]), 1)  # the other side sent nothing
        self.assertEqual(recorder.tracks[1].reanchored, 1)

    def test_dtmf_numbers_are_not_a_loss(self) -> None:
        """Ten audio packets replaced by telephone-event packets (same numbers): silence there,
        nothing concealed; the same ten simply lost: concealed."""
        audio = packets("pcmu", 500, begin=START, seconds=1.0, ssrc=1, pt=0)
        for events in (True, False):
            out = NamedBytes()
            recorder = StereoRecorder(out, make_codec("pcmu"), make_codec("pcmu"), START)
            tap = RecordingTap()
            for i, (now, packet) in enumerate(audio):
                if 20 <= i < 30:
                    if events:
                        tap.from_sip.event(build_rtp(101, 100 + i, 12345 + 20 * 160, 1,
                                                     b"\x01\x0a\x00\xa0"), now)
                else:
                    tap.from_sip.audio(packet, now)
                while not tap.queue.empty():
                    recorder.add(*tap.queue.get_nowait())
                recorder.advance()
            recorder.close()
            concealed = recorder.tracks[1].concealed_samples
            if events:
                self.assertEqual(concealed, 0)
                rate, frames = read_stereo(out.value)
                self.assertLess(rms(frames[int(0.42 * rate):int(0.58 * rate), 1]), 1)  # DTMF: silence
            else:
                self.assertEqual(concealed, 800)  # 100 ms of the codec's concealment

    def test_header_is_valid_before_close(self) -> None:
        """A crash leaves a readable file up to the last write."""
        folder = Path(tempfile.mkdtemp())
        self.addCleanup(shutil.rmtree, folder)
        file = create_new(folder, "r.wav", 0o600)
        recorder = StereoRecorder(file, make_codec("pcmu"), make_codec("pcmu"), START)
        self.addCleanup(recorder.close)
        feed(recorder, 0, packets("pcmu", 500, begin=START, seconds=2.0, ssrc=1, pt=0))
        rate, frames = read_stereo(folder / "r.wav")
        self.assertGreater(len(frames) / rate, 1.5)  # all but the last hold (0.3 s)
        self.assertEqual(oct(os.stat(folder / "r.wav").st_mode & 0o777), "0o600")


class TapTests(unittest.TestCase):
    def test_a_full_queue_drops_and_counts_never_blocks(self) -> None:
        tap = RecordingTap(seconds=0.1)  # 10 packets
        for now, packet in packets("pcmu", 500, begin=START, seconds=0.5, ssrc=1, pt=0):
            tap.from_sip.audio(packet, now)
        self.assertEqual(tap.queue.qsize(), 10)
        self.assertEqual(tap.dropped, 15)
        side, now, seq, ts, ssrc, pt, payload = tap.queue.get_nowait()
        self.assertEqual((side, now, seq, ts, ssrc, pt, len(payload)),
                         (1, START, 100, 12345, 1, 0, 160))

    def test_the_bridge_taps_audio_and_events_numbers_only_when_on(self) -> None:
        sent: list[bytes] = []
        bridge = MediaBridge(LegMedia("PCMU", 0, 8000, telephone_event=101, ssrc=7),
                             LegMedia("PCMU", 0, 8000, telephone_event=101, ssrc=8),
                             sent.append, sent.append, now=START)
        tap = RecordingTap()
        audio = packets("pcmu", 500, begin=START, seconds=0.1, ssrc=1, pt=0)
        bridge.from_sip(audio[0][1], START)  # not recording: nothing queued
        bridge.set_taps(tap.from_webrtc, tap.from_sip)
        bridge.from_sip(audio[1][1], START + 0.02)
        bridge.from_webrtc(audio[2][1], START + 0.04)
        bridge.from_sip(build_rtp(101, 999, 0, 1, b"\x01\x0a\x00\xa0"), START + 0.05)  # DTMF
        bridge.set_taps(None, None)
        bridge.from_sip(audio[3][1], START + 0.06)
        items = [tap.queue.get_nowait() for _ in range(tap.queue.qsize())]
        self.assertEqual([(i[0], i[2], i[5], len(i[6])) for i in items],
                         [(1, 101, 0, 160), (0, 102, 0, 160), (1, 999, 101, 0)])  # an event: no audio
        self.assertEqual(len(sent), 5)  # the calls' own packets all went on


class WorkerTests(unittest.TestCase):
    def test_the_worker_writes_off_the_loop_and_reports_the_end(self) -> None:
        out = NamedBytes()
        tap = RecordingTap()
        recorder = StereoRecorder(out, make_codec("pcmu"), make_codec("pcmu"), START)
        done: list[BaseException | None] = []
        worker = RecordingWorker(recorder, tap.queue, done.append, interval=0.05)
        worker.start()
        for now, packet in packets("pcmu", 600, begin=START, seconds=1.0, ssrc=1, pt=0):
            tap.from_webrtc.audio(packet, now)
        worker.stop()
        self.assertTrue(worker.join(10))
        self.assertEqual(done, [None])
        rate, frames = read_stereo(out.value)
        assert_near(self, len(frames) / rate, 1.1, 0.05)
        assert_near(self, dominant(frames[int(0.2 * rate):int(0.9 * rate), 0], rate), 600, 5)
