"""WavSource (WAV -> 20 ms G.711) and WavRecorder (G.711 by RTP timestamp -> WAV), checked by
content: tones are found by FFT at the right frequency and level, aliases are measured, gaps are
silence where the timestamps say."""

from __future__ import annotations

import struct
import wave
from pathlib import Path

import numpy as np
from twisted.trial import unittest

from tests.support import assert_near
from wcsgw.media import g711
from wcsgw.media.rtp import build_rtp
from wcsgw.media.wavfile import FRAME_SAMPLES, WavError, WavSource, read_wav_format
from wcsgw.media.wavrecord import WavRecorder

AMPLITUDE = 10000.0


def tone(rate: int, freq: float, seconds: float, amplitude: float = AMPLITUDE,
         phase: float = 0.0) -> np.ndarray:
    t = np.arange(int(round(rate * seconds))) / rate
    return amplitude * np.sin(2 * np.pi * freq * t + phase)


def write_wav(path: Path, rate: int, channels: list[np.ndarray]) -> Path:
    data = np.stack([np.clip(np.rint(c), -32768, 32767).astype("<i2") for c in channels], axis=1)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(len(channels))
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(data.tobytes())
    return path


def riff(fmt: bytes, data: bytes, extra_chunks: bytes = b"", data_size: int | None = None) -> bytes:
    """A hand-built RIFF/WAVE file: fmt chunk, optional chunks, data chunk."""
    size = len(data) if data_size is None else data_size
    body = (b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + extra_chunks
            + b"data" + struct.pack("<I", size) + data)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def pcm_fmt(rate: int, channels: int, bits: int = 16, tag: int = 1) -> bytes:
    align = channels * bits // 8
    return struct.pack("<HHIIHH", tag, channels, rate, rate * align, align, bits)


def extensible_fmt(rate: int, channels: int) -> bytes:
    guid = b"\x01\x00\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
    return pcm_fmt(rate, channels, tag=0xFFFE) + struct.pack("<HHI", 22, 16, 3) + guid


def spectrum(samples: np.ndarray, rate: int = 8000) -> tuple[np.ndarray, np.ndarray]:
    x = samples.astype(np.float64)
    window = np.hanning(len(x))
    mag = np.abs(np.fft.rfft(x * window)) / (window.sum() / 2)  # a sine's amplitude at its bin
    return np.fft.rfftfreq(len(x), 1 / rate), mag


def level_at(samples: np.ndarray, freq: float, rate: int = 8000) -> float:
    """Amplitude of the component at ``freq`` (the largest bin within 20 Hz)."""
    freqs, mag = spectrum(samples, rate)
    near = np.abs(freqs - freq) <= 20
    return float(mag[near].max())


def peak(samples: np.ndarray, rate: int = 8000) -> float:
    freqs, mag = spectrum(samples, rate)
    return float(freqs[mag.argmax()])


def snr_db(samples: np.ndarray, freq: float, rate: int = 8000) -> float:
    """Power within 40 Hz of ``freq`` over the power everywhere else."""
    freqs, mag = spectrum(samples, rate)
    near = np.abs(freqs - freq) <= 40
    return 10 * np.log10((mag[near] ** 2).sum() / (mag[~near] ** 2).sum())


def played(source: WavSource) -> np.ndarray:
    payloads = list(source)
    for p in payloads:
        assert len(p) == FRAME_SAMPLES, len(p)
    return g711.decode(source.codec, b"".join(payloads)).astype(np.float64)


class ReadFormatTests(unittest.TestCase):
    def setUp(self) -> None:
        self.dir = Path(self.mktemp())
        self.dir.mkdir()

    def file(self, name: str, content: bytes) -> Path:
        path = self.dir / name
        path.write_bytes(content)
        return path

    def test_plain_pcm(self) -> None:
        path = write_wav(self.dir / "a.wav", 16000, [tone(16000, 440, 0.5)])
        fmt = read_wav_format(path)
        self.assertEqual((fmt.sample_rate, fmt.channels, fmt.bits_per_sample, fmt.frames),
                         (16000, 1, 16, 8000))
        assert_near(self, fmt.duration, 0.5, 1e-9)

    def test_extensible_and_extra_chunks(self) -> None:
        """WAVE_FORMAT_EXTENSIBLE with the PCM sub-format, a LIST chunk of odd size (padded)
        between fmt and data: found, and the data offset is right."""
        samples = struct.pack("<4h", 1, 2, 3, 4)
        listing = b"LIST" + struct.pack("<I", 5) + b"INFOx" + b"\x00"
        path = self.file("x.wav", riff(extensible_fmt(44100, 2), samples, listing))
        fmt = read_wav_format(path)
        self.assertEqual((fmt.sample_rate, fmt.channels, fmt.frames), (44100, 2, 2))
        with open(path, "rb") as f:
            f.seek(fmt.data_offset)
            self.assertEqual(f.read(8), samples)

    def test_truncated_data_plays_what_is_there(self) -> None:
        path = self.file("t.wav", riff(pcm_fmt(8000, 1), b"\x01\x00" * 100 + b"\x01",
                                       data_size=10_000))
        self.assertEqual(read_wav_format(path).frames, 100)

    def test_refused(self) -> None:
        cases = {
            "not riff": b"RIFX" + b"\x00" * 40,
            "8-bit": riff(pcm_fmt(8000, 1, bits=8), b"\x80" * 10),
            "float": riff(pcm_fmt(8000, 1, bits=32, tag=3), b"\x00" * 16),
            "ulaw": riff(pcm_fmt(8000, 1, bits=8, tag=7), b"\xff" * 10),
            "no data": riff(pcm_fmt(8000, 1), b"")[: -8],
            "rate": riff(pcm_fmt(500, 1), b"\x00\x00" * 4),
        }
        for name, content in cases.items():
            path = self.file(name.replace(" ", "_") + ".wav", content)
            with self.assertRaises(WavError, msg=name):
                read_wav_format(path)

    def test_empty_file_refused_by_source(self) -> None:
        path = self.file("e.wav", riff(pcm_fmt(8000, 1), b""))
        with self.assertRaises(WavError):
            WavSource(path, "PCMU")


class WavSourceTests(unittest.TestCase):
    def setUp(self) -> None:
        self.dir = Path(self.mktemp())
        self.dir.mkdir()

    def test_every_rate_gives_the_tone_at_level(self) -> None:
        """1 kHz at 10000 peak, one second, from each common rate: 50 payloads of 160 bytes,
        the tone at 1 kHz within 1 dB of its level, 30 dB above everything else (G.711's own
        quantisation noise is ~38 dB down)."""
        for rate in (8000, 11025, 16000, 22050, 32000, 44100, 48000, 96000, 6000):
            for codec in ("PCMU", "PCMA"):
                path = write_wav(self.dir / f"{rate}.wav", rate, [tone(rate, 1000, 1.0)])
                with WavSource(path, codec) as source:
                    out = played(source)
                self.assertEqual(len(out), 8000, (rate, codec))
                middle = out[400:-400]
                self.assertEqual(round(peak(middle)), 1000, (rate, codec))
                assert_near(self, 20 * np.log10(level_at(middle, 1000) / AMPLITUDE), 0.0, 1.0)
                self.assertGreater(snr_db(middle, 1000), 30, (rate, codec))

    def test_stereo_is_mixed_to_mono(self) -> None:
        """Left 700 Hz, right 1900 Hz: both come through at half level (the average)."""
        rate = 48000
        path = write_wav(self.dir / "s.wav", rate, [tone(rate, 700, 1.0), tone(rate, 1900, 1.0)])
        with WavSource(path, "PCMU") as source:
            self.assertEqual(source.format.channels, 2)
            out = played(source)[400:-400]
        for freq in (700, 1900):
            assert_near(self, 20 * np.log10(level_at(out, freq) / (AMPLITUDE / 2)), 0.0, 1.0)

    def test_rational_rate_rejects_aliases(self) -> None:
        """A 44.1 kHz file holding 5 kHz and 6 kHz (above 8 kHz's Nyquist): what reaches the
        call is at least 50 dB below the input (no alias at 3 kHz or 2 kHz)."""
        rate = 44100
        x = tone(rate, 5000, 1.0) + tone(rate, 6000, 1.0)
        path = write_wav(self.dir / "alias.wav", rate, [x / 2])
        with WavSource(path, "PCMU") as source:
            out = played(source)[400:-400]
        rms = np.sqrt(np.mean(out**2))
        self.assertLess(20 * np.log10(max(rms, 1e-9) / (AMPLITUDE / 2 / np.sqrt(2))), -50)

    def test_stop_at_end_pads_the_last_payload(self) -> None:
        """0.23 s at 8 kHz = 1840 samples: 12 payloads, the last 80 samples silence."""
        path = write_wav(self.dir / "short.wav", 8000, [tone(8000, 500, 0.23)])
        with WavSource(path, "PCMU") as source:
            payloads = list(source)
            self.assertIsNone(source.read())
        self.assertEqual(len(payloads), 12)
        last = g711.decode("PCMU", payloads[-1])
        self.assertTrue(np.all(np.abs(last[80:]) <= 8), last[80:])
        self.assertGreater(np.abs(last[:80]).max(), 5000)

    def test_loop_is_seamless(self) -> None:
        """A 0.25 s file of whole 400 Hz periods, looped: 3 s of output is one clean tone —
        no click at the seams (a seam glitch would spread energy over the spectrum)."""
        rate = 44100
        path = write_wav(self.dir / "loop.wav", rate, [tone(rate, 400, 0.25)])
        with WavSource(path, "PCMA", loop=True) as source:
            payloads = [next(source) for _ in range(150)]
        out = g711.decode("PCMA", b"".join(payloads)).astype(np.float64)[400:]
        self.assertEqual(round(peak(out)), 400)
        self.assertGreater(snr_db(out, 400), 30)
        # and the level holds across every seam (each 250 ms block has the same RMS)
        blocks = out[: len(out) // 2000 * 2000].reshape(-1, 2000)
        rms = np.sqrt((blocks**2).mean(axis=1))
        assert_near(self, float(rms.min() / rms.max()), 1.0, 0.02)

    def test_bad_codec(self) -> None:
        path = write_wav(self.dir / "c.wav", 8000, [tone(8000, 500, 0.1)])
        with self.assertRaises(ValueError):
            WavSource(path, "GSM")


def rtp(payload: bytes, seq: int, ts: int, pt: int = 0, ssrc: int = 0x1234) -> bytes:
    return build_rtp(payload_type=pt, sequence=seq & 0xFFFF, timestamp=ts & 0xFFFFFFFF,
                     ssrc=ssrc, payload=payload)


class WavRecorderTests(unittest.TestCase):
    def setUp(self) -> None:
        self.dir = Path(self.mktemp())
        self.dir.mkdir()
        self.signal = tone(8000, 440, 1.0)
        self.frames = [g711.encode("PCMU", self.signal[i : i + 160]) for i in range(0, 8000, 160)]

    def read(self, path: Path) -> np.ndarray:
        with wave.open(str(path), "rb") as w:
            self.assertEqual((w.getnchannels(), w.getsampwidth(), w.getframerate()), (1, 2, 8000))
            return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)

    def test_in_order_round_trip(self) -> None:
        path = self.dir / "r.wav"
        with WavRecorder(path) as rec:
            for i, frame in enumerate(self.frames):
                rec.write(frame, 1000 + i * 160)
        out = self.read(path)
        self.assertEqual(len(out), 8000)
        self.assertEqual(round(peak(out)), 440)
        assert_near(self, 20 * np.log10(level_at(out, 440) / AMPLITUDE), 0.0, 0.5)
        self.assertGreater(snr_db(out, 440), 30)

    def test_gap_is_silence_reorder_and_duplicates(self) -> None:
        """Packets 10-19 lost (200 ms of silence in place), 30 and 31 swapped, 40 sent twice:
        the file is the tone with a silent hole exactly there, and nothing else changed."""
        path = self.dir / "g.wav"
        order = [i for i in range(50) if not 10 <= i < 20]
        a, b = order.index(30), order.index(31)
        order[a], order[b] = order[b], order[a]
        order.insert(order.index(40) + 1, 40)
        with WavRecorder(path) as rec:
            for i in order:
                rec.write(self.frames[i], 7 + i * 160)
        self.assertEqual(rec.duplicates, 1)
        out = self.read(path)
        self.assertEqual(len(out), 8000)
        self.assertTrue(np.all(out[1600:3200] == 0))
        expected = g711.decode("PCMU", b"".join(self.frames)).astype(np.float64)
        np.testing.assert_array_equal(out[:1600], expected[:1600])
        np.testing.assert_array_equal(out[3200:], expected[3200:])

    def test_timestamp_wraps(self) -> None:
        path = self.dir / "w.wav"
        start = 2**32 - 160 * 25
        with WavRecorder(path, "PCMA") as rec:
            for i in range(50):
                rec.write(g711.encode("PCMA", self.signal[i * 160 : (i + 1) * 160]),
                          (start + i * 160) & 0xFFFFFFFF)
        out = self.read(path)
        self.assertEqual(len(out), 8000)
        self.assertEqual(rec.discontinuities, 0)
        self.assertGreater(snr_db(out, 440), 30)

    def test_jump_is_a_new_stream_not_hours_of_silence(self) -> None:
        path = self.dir / "j.wav"
        with WavRecorder(path, max_gap=10.0) as rec:
            for i in range(25):
                rec.write(self.frames[i], i * 160)
            for i in range(25, 50):  # the far end restarted its clock 3 hours on
                rec.write(self.frames[i], 8000 * 3600 * 3 + i * 160)
        self.assertEqual(rec.discontinuities, 1)
        self.assertEqual(len(self.read(path)), 8000)

    def test_rtp_packets_ssrc_change_and_non_audio(self) -> None:
        """write_rtp: PCMU/PCMA recorded by payload type, telephone-event (101) and CN (13)
        skipped; a new SSRC with an unrelated clock continues the file without a gap."""
        path = self.dir / "p.wav"
        with WavRecorder(path) as rec:
            for i in range(25):
                self.assertTrue(rec.write_rtp(rtp(self.frames[i], i, 5000 + i * 160)))
            self.assertFalse(rec.write_rtp(rtp(b"\x01\x0a\x00\xa0", 99, 9000, pt=101)))
            self.assertFalse(rec.write_rtp(rtp(b"\x40", 98, 9000, pt=13)))
            self.assertFalse(rec.write_rtp(b"\x00\x01"))
            for i in range(25, 50):
                pcma = g711.encode("PCMA", self.signal[i * 160 : (i + 1) * 160])
                self.assertTrue(rec.write_rtp(rtp(pcma, 7000 + i, 123456789 + i * 160, pt=8,
                                                  ssrc=0x9999)))
        out = self.read(path)
        self.assertEqual(len(out), 8000)
        self.assertGreater(snr_db(out, 440), 30)
        self.assertEqual(rec.discontinuities, 1)

    def test_file_is_valid_while_recording_and_close_is_idempotent(self) -> None:
        path = self.dir / "v.wav"
        rec = WavRecorder(path, reorder_window=0.0)
        for i in range(10):
            rec.write(self.frames[i], i * 160)
        self.assertEqual(len(self.read(path)), 1600)  # readable before close
        rec.close()
        rec.close()
        self.assertEqual(len(self.read(path)), 1600)
        with self.assertRaises(ValueError):
            rec.write(self.frames[0], 0)

    def test_loss_is_concealed_silence_suppression_is_not(self) -> None:
        """write_rtp with sequence numbers: a missing one (packet 10) is a loss, concealed by
        the codec's PLC (the tone goes on, no silent hole); a telephone-event packet between
        two audio packets is no loss; a timestamp gap with no sequence number missing
        (silence suppression, 200 ms after packet 29) stays silence."""
        path = self.dir / "c.wav"
        with WavRecorder(path) as rec:
            seq = 100
            for i in range(50):
                ts = 5000 + i * 160 + (1600 if i >= 30 else 0)
                if i == 20:  # a DTMF packet takes a sequence number
                    self.assertFalse(rec.write_rtp(rtp(b"\x01\x0a\x00\xa0", seq, ts, pt=101)))
                    seq += 1
                if i != 10:
                    self.assertTrue(rec.write_rtp(rtp(self.frames[i], seq, ts)))
                seq += 1
        self.assertEqual(rec.concealed_samples, 160)
        out = self.read(path)
        self.assertEqual(len(out), 8000 + 1600)
        hidden = out[1600:1760]
        self.assertGreater(np.sqrt(np.mean(hidden**2)), AMPLITUDE / np.sqrt(2) / 2)
        self.assertTrue(np.all(out[4800:6400] == 0))
        self.assertGreater(snr_db(out[:1600], 440), 30)

    def test_any_codec_at_its_own_rate(self) -> None:
        """G.722 (RTP clock 8000, audio 16 kHz) by its static payload type: the file is
        16 kHz, the timestamps are placed at two samples a tick."""
        from wcsgw.media.audiocodec import make_codec

        enc = make_codec("G722")
        self.addCleanup(enc.close)
        signal = tone(16000, 1004, 1.0)
        path = self.dir / "g722.wav"
        with WavRecorder(path, "G722") as rec:
            for i in range(50):
                self.assertTrue(rec.write_rtp(rtp(enc.encode(signal[i * 320:(i + 1) * 320]), i,
                                                  90 + i * 160, pt=9)))
            self.assertFalse(rec.write_rtp(rtp(self.frames[0], 50, 90 + 50 * 160, pt=0)))
        with wave.open(str(path), "rb") as w:
            self.assertEqual(w.getframerate(), 16000)
            out = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)
        self.assertEqual(len(out), 16000)
        assert_near(self, peak(out[1600:], 16000), 1004, 5)
