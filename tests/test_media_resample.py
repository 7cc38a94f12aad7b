"""48 kHz <-> 8 kHz resampling (wcsgw.media.resample): passband gain, anti-aliasing and
anti-imaging attenuation, exact framing, and frame-by-frame output identical to one-piece
output (state kept across frames: no clicks at frame edges)."""

from __future__ import annotations

import numpy as np
from twisted.trial.unittest import SynchronousTestCase

from wcsgw.media.resample import Resampler


class ToleranceMixin:
    def assert_close(self, actual: float, expected: float, delta: float, msg: str = "") -> None:
        if abs(actual - expected) > delta:
            self.fail(f"{actual} is not within {delta} of {expected} {msg}".rstrip())  # type: ignore[attr-defined]


def tone(freq: float, rate: int, seconds: float, amplitude: float = 10000.0) -> np.ndarray:
    return amplitude * np.sin(2 * np.pi * freq * np.arange(int(rate * seconds)) / rate)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.asarray(x, dtype=float) ** 2)))


def framed(r: Resampler, x: np.ndarray, frame: int) -> np.ndarray:
    return np.concatenate([r.process(x[i : i + frame]) for i in range(0, len(x), frame)])


def dominant(x: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[spectrum.argmax()])


class DownTests(ToleranceMixin, SynchronousTestCase):
    def test_160_samples_out_for_960_in(self) -> None:
        r = Resampler(48000, 8000)
        self.assertEqual(len(r.process(np.zeros(960, dtype=np.int16))), 160)
        self.assertEqual(len(r.process(np.zeros(1920, dtype=np.int16))), 320)
        self.assertRaises(ValueError, r.process, np.zeros(7))

    def test_passband_tones_keep_their_level(self) -> None:
        for freq in (300.0, 1000.0, 3000.0, 3400.0):
            x = tone(freq, 48000, 1.0)
            y = framed(Resampler(48000, 8000), x, 960)[400:]  # skip the filter's start-up
            self.assert_close(rms(y) / rms(x), 1.0, delta=0.01, msg=f"{freq} Hz")
            self.assert_close(dominant(y, 8000), freq, delta=5)

    def test_6khz_tone_is_not_aliased_to_2khz(self) -> None:
        # Plain decimation (every 6th sample) would fold 6 kHz onto 2 kHz at full level.
        x = tone(6000.0, 48000, 1.0)
        naive = x[5::6]
        self.assertGreater(rms(naive) / rms(x), 0.9)
        y = framed(Resampler(48000, 8000), x, 960)[400:]
        attenuation_db = 20 * np.log10(rms(y) / rms(x))
        self.assertLess(attenuation_db, -60.0)

    def test_just_above_nyquist_is_attenuated(self) -> None:
        for freq in (4100.0, 5000.0, 12000.0, 20000.0):
            x = tone(freq, 48000, 0.5)
            y = framed(Resampler(48000, 8000), x, 960)[400:]
            self.assertLess(20 * np.log10(rms(y) / rms(x) + 1e-12), -60.0, f"{freq} Hz")

    def test_framewise_equals_one_piece(self) -> None:
        x = np.random.default_rng(1).normal(0, 3000, 48000 * 2)
        whole = Resampler(48000, 8000).process(x)
        for frame in (960, 480, 2880):
            np.testing.assert_allclose(framed(Resampler(48000, 8000), x, frame), whole, atol=1e-2)


class UpTests(ToleranceMixin, SynchronousTestCase):
    def test_960_samples_out_for_160_in(self) -> None:
        self.assertEqual(len(Resampler(8000, 48000).process(np.zeros(160, dtype=np.int16))), 960)

    def test_tone_level_kept_and_images_removed(self) -> None:
        x = tone(1000.0, 8000, 1.0)
        y = framed(Resampler(8000, 48000), x, 160)[2400:]
        self.assert_close(rms(y) / rms(x), 1.0, delta=0.01)
        self.assert_close(dominant(y, 48000), 1000.0, delta=5)
        # Zero-stuffing alone would leave images at 8k±1k, 16k±1k, ... at full strength.
        spectrum = np.abs(np.fft.rfft(y[:38400] * np.hanning(38400)))
        freqs = np.fft.rfftfreq(38400, 1 / 48000)
        peak = spectrum.max()
        for image in (7000.0, 9000.0, 15000.0, 17000.0):
            level = spectrum[np.argmin(np.abs(freqs - image))] / peak
            self.assertLess(20 * np.log10(level + 1e-12), -60.0, f"image at {image}")

    def test_framewise_equals_one_piece(self) -> None:
        x = np.random.default_rng(2).normal(0, 3000, 8000 * 2)
        whole = Resampler(8000, 48000).process(x)
        np.testing.assert_allclose(framed(Resampler(8000, 48000), x, 160), whole, atol=1e-2)
        np.testing.assert_allclose(framed(Resampler(8000, 48000), x, 240), whole, atol=1e-2)

    def test_frame_edges_are_smooth(self) -> None:
        # A continuous tone through frame-by-frame processing has no jump at frame edges
        # larger than the tone's own largest sample-to-sample step.
        x = tone(440.0, 8000, 0.5)
        y = framed(Resampler(8000, 48000), x, 160)[960:]
        max_step = 10000 * 2 * np.pi * 440 / 48000
        self.assertLess(float(np.abs(np.diff(y)).max()), max_step * 1.05)


class OtherRatiosTests(ToleranceMixin, SynchronousTestCase):
    def test_same_rate_is_identity_and_odd_ratios_are_refused(self) -> None:
        x = np.arange(10, dtype=np.int16)
        np.testing.assert_array_equal(Resampler(8000, 8000).process(x), x)
        self.assertRaises(ValueError, Resampler, 44100, 8000)
        self.assertGreater(Resampler(48000, 8000).delay, 0.003)
