"""Shared checks for the AudioCodec tests (wcsgw.media.audiocodec and the codec modules).

:class:`CodecContract` is a mixin, not a TestCase: each test module combines it with
``SynchronousTestCase`` and says how to make its codec and what a 20 ms payload weighs, so
every codec is held to the same contract (tone in, same tone out; conceal; bad payloads are a
CodecError, never a crash) without trial running one module's cases twice.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Iterator

import numpy as np

from wcsgw.media.audiocodec import AudioCodec, CodecError

AMPLITUDE = 8000.0  # about -12 dBFS: a loud talker, no clipping in any codec


def tone(freq: float, rate: int, samples: int, amplitude: float = AMPLITUDE) -> np.ndarray:
    return np.rint(amplitude * np.sin(2 * np.pi * freq * np.arange(samples) / rate)).astype(np.int16)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.asarray(x, dtype=float) ** 2)))


def level_db(y: np.ndarray, x: np.ndarray) -> float:
    return 20 * np.log10(rms(y) / rms(x) + 1e-12)


def dominant(x: np.ndarray, rate: int) -> float:
    """The strongest frequency, refined by parabolic interpolation between FFT bins."""
    spectrum = np.abs(np.fft.rfft(np.asarray(x, dtype=float) * np.hanning(len(x))))
    k = int(spectrum[1:].argmax()) + 1
    if 0 < k < len(spectrum) - 1:
        a, b, c = np.log(spectrum[k - 1 : k + 2] + 1e-12)
        k = k + 0.5 * (a - c) / (a - 2 * b + c)
    return float(k * rate / len(x))


def through(codec: AudioCodec, pcm: np.ndarray, packet: int) -> tuple[np.ndarray, list[bytes]]:
    """Encode ``pcm`` in packets of ``packet`` samples and decode each; (audio, payloads)."""
    payloads = [codec.encode(pcm[i : i + packet]) for i in range(0, len(pcm) - packet + 1, packet)]
    return np.concatenate([codec.decode(p) for p in payloads]), payloads


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Silence fd 2 for a block: libspeex prints a notice for every corrupt frame it meets."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class CodecContract:
    """Mixin: set ``payload_20ms`` (bytes in a 20 ms payload, None if variable) and define
    ``make()``; ``has_plc`` False for a codec whose conceal() may be silence."""

    payload_20ms: int | None = None
    has_plc = True
    level_tolerance_db = 3.0
    strict_length = True  # G.711 takes any number of samples

    def make(self) -> AudioCodec:
        raise NotImplementedError

    # helpers
    def packet(self, codec: AudioCodec) -> int:
        return codec.sample_rate // 50

    def codec(self) -> AudioCodec:
        c = self.make()
        self.addCleanup(c.close)  # type: ignore[attr-defined]
        return c

    # the contract
    def test_tones_come_back_at_frequency_and_level(self) -> None:
        for freq in (1000.0, 300.0):
            c = self.codec()
            rate = c.sample_rate
            x = tone(freq, rate, rate)
            y, _ = through(c, x, self.packet(c))
            self.assertEqual(len(y), len(x))  # type: ignore[attr-defined]
            steady = slice(rate // 10, None)  # the codec's start-up is not the point
            got = dominant(y[steady], rate)
            self.assertLessEqual(abs(got - freq), freq * 0.01, f"{c.name}: {freq} Hz came back at {got:.1f}")  # type: ignore[attr-defined]
            db = level_db(y[steady], x[steady])
            self.assertLessEqual(abs(db), self.level_tolerance_db, f"{c.name}: {freq} Hz level {db:.2f} dB")  # type: ignore[attr-defined]

    def test_payload_size_of_20ms(self) -> None:
        c = self.codec()
        _, payloads = through(c, tone(1000.0, c.sample_rate, c.sample_rate // 5), self.packet(c))
        if self.payload_20ms is not None:
            self.assertEqual({len(p) for p in payloads}, {self.payload_20ms})  # type: ignore[attr-defined]
        self.assertEqual(self.packet(c) % c.frame_samples, 0)  # type: ignore[attr-defined]

    def test_conceal_length_not_silent_and_decoding_goes_on(self) -> None:
        c = self.codec()
        reference = self.codec()  # the same packets, none lost
        n = self.packet(c)
        rate = c.sample_rate
        x = tone(440.0, rate, rate * 2)
        payloads = [c.encode(x[i : i + n]) for i in range(0, len(x), n)]
        half = len(payloads) // 4  # 500 ms of voice, then a loss
        for p in payloads[:half]:
            c.decode(p)
            reference.decode(p)
        for i, asked in enumerate((n, c.frame_samples, 3 * n)):
            z = c.conceal(asked)
            self.assertEqual(len(z), asked)  # type: ignore[attr-defined]
            self.assertEqual(z.dtype, np.int16)  # type: ignore[attr-defined]
            if self.has_plc and i == 0:
                # right after voiced audio the stand-in is not silence (>= -20 dB of the tone)
                self.assertGreater(level_db(z, x), -20.0, f"{c.name}: concealment is silent")  # type: ignore[attr-defined]
        self.assertEqual(len(c.conceal(0)), 0)  # type: ignore[attr-defined]
        # decoding goes on: same lengths, and within a second the audio is what a decoder
        # that lost nothing makes (the tone, its level within 3 dB: G.729 takes ~1 s to
        # settle after 100 ms of erasure, a pure tone being the worst case for its predictors)
        rest = payloads[half + 5 :]
        got = [c.decode(p) for p in rest]
        want = [reference.decode(p) for p in payloads[half:]][5:]
        self.assertEqual([len(g) for g in got], [n] * len(rest))  # type: ignore[attr-defined]
        tail_got, tail_want = np.concatenate(got[-10:]), np.concatenate(want[-10:])
        self.assertLessEqual(abs(level_db(tail_got, tail_want)), 3.0, c.name)  # type: ignore[attr-defined]
        self.assertLessEqual(abs(dominant(tail_got, rate) - 440.0), 4.4)  # type: ignore[attr-defined]

    def test_random_payloads_are_codec_errors_never_crashes(self) -> None:
        c = self.codec()
        rng = np.random.default_rng(7)
        decoded = rejected = 0
        with quiet_stderr():
            for _ in range(1500):
                payload = rng.bytes(int(rng.integers(1, 200)))
                try:
                    y = c.decode(payload)
                except CodecError:
                    rejected += 1
                    continue
                self.assertEqual(y.dtype, np.int16)  # type: ignore[attr-defined]
                decoded += 1
        self.assertEqual(decoded + rejected, 1500)  # type: ignore[attr-defined]
        self.assertRaises(CodecError, c.decode, b"")  # type: ignore[attr-defined]
        # the codec still works after all that
        y, _ = through(c, tone(1000.0, c.sample_rate, c.sample_rate // 2), self.packet(c))
        self.assertLessEqual(abs(dominant(y[len(y) // 2 :], c.sample_rate) - 1000.0), 10.0)  # type: ignore[attr-defined]

    def test_truncated_payloads(self) -> None:
        c = self.codec()
        _, payloads = through(c, tone(1000.0, c.sample_rate, c.sample_rate // 10), self.packet(c))
        with quiet_stderr():
            for cut in range(1, len(payloads[-1])):
                try:
                    y = c.decode(payloads[-1][:cut])
                except CodecError:
                    continue
                self.assertEqual(y.dtype, np.int16)  # type: ignore[attr-defined]

    def test_wrong_pcm_length_and_closed_codec(self) -> None:
        c = self.codec()
        if self.strict_length:
            self.assertRaises(CodecError, c.encode, np.zeros(c.frame_samples + 1, dtype=np.int16))  # type: ignore[attr-defined]
        self.assertRaises(ValueError, c.encode, np.zeros(0, dtype=np.int16))  # type: ignore[attr-defined]
        good = c.encode(np.zeros(self.packet(c), dtype=np.int16))
        c.close()
        c.close()  # twice is fine
        self.assertRaises(CodecError, c.decode, good)  # type: ignore[attr-defined]

    def test_attributes(self) -> None:
        c: Any = self.codec()
        for attr in ("name", "sample_rate", "rtp_clock", "frame_samples"):
            self.assertTrue(getattr(c, attr), attr)  # type: ignore[attr-defined]
        self.assertEqual(c.name, c.name.lower())  # type: ignore[attr-defined]
