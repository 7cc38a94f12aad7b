"""Opus <-> G.711 transcoding (wcsgw.media.transcode, wcsgw.media.opus): tones survive both
directions with their frequency (numpy FFT) and roughly their level; framing for 20 ms and
for odd ptimes; stereo Opus decodes to mono."""

from __future__ import annotations

import numpy as np
import opuslib
from twisted.trial.unittest import SynchronousTestCase

from wcsgw.media import g711
from wcsgw.media.opus import OpusDecoder, OpusEncoder
from wcsgw.media.transcode import Transcoder


class ToleranceMixin:
    def assert_close(self, actual: float, expected: float, delta: float, msg: str = "") -> None:
        if abs(actual - expected) > delta:
            self.fail(f"{actual} is not within {delta} of {expected} {msg}".rstrip())  # type: ignore[attr-defined]


def tone(freq: float, rate: int, seconds: float, amplitude: float = 8000.0) -> np.ndarray:
    return amplitude * np.sin(2 * np.pi * freq * np.arange(int(rate * seconds)) / rate)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.asarray(x, dtype=float) ** 2)))


def dominant(x: np.ndarray, rate: int) -> float:
    x = np.asarray(x, dtype=float)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[spectrum.argmax()])


class SipToWebrtcTests(ToleranceMixin, SynchronousTestCase):
    def check_1khz(self, codec: str) -> None:
        t = Transcoder(codec)
        x8 = tone(1000.0, 8000, 2.0)
        decoder = OpusDecoder()
        out = []
        for i in range(0, len(x8), 160):
            payload = g711.encode(codec, x8[i : i + 160])
            self.assertEqual(len(payload), 160)
            opus = t.sip_to_webrtc(payload)
            self.assertGreater(len(opus), 0)
            self.assertEqual(t.last_opus_samples, 960)
            self.assertEqual(t.sip_backlog, 0)
            pcm = decoder.decode(opus)
            self.assertEqual(len(pcm), 960)
            out.append(pcm)
        y = np.concatenate(out)[48000 // 5 :]  # skip codec start-up
        self.assert_close(dominant(y, 48000), 1000.0, delta=20)
        self.assert_close(rms(y) / rms(x8), 1.0, delta=0.25)

    def test_1khz_pcmu_to_opus_and_back(self) -> None:
        self.check_1khz("PCMU")

    def test_1khz_pcma_to_opus_and_back(self) -> None:
        self.check_1khz("pcma")

    def test_30ms_ptime_goes_through_the_fifo(self) -> None:
        t = Transcoder("PCMU")
        x8 = tone(1000.0, 8000, 0.24)
        sizes = []
        for i in range(0, len(x8), 240):
            opus = t.sip_to_webrtc(g711.ulaw_encode(x8[i : i + 240]))
            self.assertGreater(len(opus), 0)
            sizes.append((t.last_opus_samples, t.sip_backlog))
        # 30 ms in: 20 ms out (10 ms kept), then 40 ms out (nothing kept), and so on
        self.assertEqual(sizes, [(960, 80), (1920, 0)] * 4)

    def test_short_odd_packets_wait_for_a_10ms_frame(self) -> None:
        # 3.75 ms (30 bytes) is no Opus frame size: buffer until 10 ms can be encoded.
        t = Transcoder("PCMU")
        self.assertEqual(t.sip_to_webrtc(b"\xff" * 30), b"")
        self.assertEqual(t.sip_backlog, 30)
        self.assertEqual(t.sip_to_webrtc(b"\xff" * 30), b"")
        self.assertNotEqual(t.sip_to_webrtc(b"\xff" * 30), b"")
        self.assertEqual((t.last_opus_samples, t.sip_backlog), (480, 10))


class WebrtcToSipTests(ToleranceMixin, SynchronousTestCase):
    def test_440hz_opus_to_pcmu(self) -> None:
        t = Transcoder("PCMU")
        encoder = OpusEncoder(complexity=5)
        x48 = tone(440.0, 48000, 2.0).astype(np.int16)
        payloads = [t.webrtc_to_sip(encoder.encode(x48[i : i + 960])) for i in range(0, len(x48), 960)]
        self.assertEqual({len(p) for p in payloads}, {160})
        y = g711.ulaw_decode(b"".join(payloads))[1600:]
        self.assert_close(dominant(y, 8000), 440.0, delta=20)
        self.assert_close(rms(y) / rms(x48), 1.0, delta=0.25)

    def test_stereo_opus_decodes_to_mono_and_40ms_gives_320_bytes(self) -> None:
        t = Transcoder("PCMA")
        stereo = opuslib.Encoder(48000, 2, "audio")
        left = tone(440.0, 48000, 1.0).astype(np.int16)
        interleaved = np.repeat(left, 2)
        out = []
        for i in range(0, len(left), 1920):
            packet = stereo.encode(interleaved[2 * i : 2 * (i + 1920)].tobytes(), 1920)
            self.assertEqual(opuslib.api.decoder.packet_get_nb_channels(packet), 2)
            g = t.webrtc_to_sip(packet)
            self.assertEqual(len(g), 320)
            out.append(g)
        y = g711.alaw_decode(b"".join(out))[1600:]
        self.assert_close(dominant(y, 8000), 440.0, delta=20)
        self.assertGreater(rms(y), 0.5 * rms(left))

    def test_loss_concealment_yields_one_frame(self) -> None:
        t = Transcoder("PCMU")
        encoder = OpusEncoder()
        t.webrtc_to_sip(encoder.encode(tone(440.0, 48000, 0.02).astype(np.int16)))
        self.assertEqual(len(t.conceal_webrtc_loss()), 160)


class CodecArgumentTests(ToleranceMixin, SynchronousTestCase):
    def test_only_g711_on_the_sip_side(self) -> None:
        self.assertRaises(ValueError, Transcoder, "G722")
        self.assertEqual(Transcoder("pcmu").sip_codec, "PCMU")

    def test_opus_encoder_rejects_bad_frame_sizes(self) -> None:
        self.assertRaises(opuslib.OpusError, OpusEncoder().encode, np.zeros(1000, dtype=np.int16))
