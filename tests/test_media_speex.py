"""Speex NB and WB through libspeex (wcsgw.media.speex): the AudioCodec contract, payload
sizes at quality 8 (CBR), several frames per RFC 5574 payload, decoder PLC."""

from __future__ import annotations

import numpy as np
from twisted.trial.unittest import SynchronousTestCase

from tests.codec_support import CodecContract, dominant, level_db, quiet_stderr, through, tone
from wcsgw.media.audiocodec import AudioCodec, CodecError, make_codec
from wcsgw.media.speex import FRAME_BYTES, SpeexCodec


class SpeexNarrowbandContractTests(CodecContract, SynchronousTestCase):
    # quality 8 = narrowband mode 5, 15 kbit/s: 300 bits -> 38 bytes per 20 ms
    payload_20ms = 38

    def make(self) -> AudioCodec:
        return make_codec("speex", 8000)


class SpeexWidebandContractTests(CodecContract, SynchronousTestCase):
    # quality 8 wideband: 27.8 kbit/s, 556 bits -> 70 bytes per 20 ms
    payload_20ms = 70

    def make(self) -> AudioCodec:
        return make_codec("SPEEX", 16000)


class SpeexTests(SynchronousTestCase):
    def codec(self, rate: int, **kw: int) -> SpeexCodec:
        c = SpeexCodec(rate, **kw)
        self.addCleanup(c.close)
        return c

    def test_documented_sizes(self) -> None:
        self.assertEqual(FRAME_BYTES, {(8000, 8): 38, (16000, 8): 70})
        for rate, frame in ((8000, 160), (16000, 320)):
            self.assertEqual(self.codec(rate).frame_samples, frame)

    def test_several_frames_in_one_payload(self) -> None:
        for rate in (8000, 16000):
            c = self.codec(rate)
            n = c.frame_samples
            x = tone(1000.0, rate, rate)
            sizes = []
            for frames in (1, 2, 3):
                payload = c.encode(x[: frames * n])
                sizes.append(len(payload))
                self.assertEqual(len(c.decode(payload)), frames * n)
            # bit-packed back to back: 2 frames fit in fewer bytes than 2 payloads
            self.assertLessEqual(sizes[1], 2 * sizes[0])
            y, _ = through(c, x, 3 * n)
            self.assertLessEqual(abs(dominant(y[rate // 10 :], rate) - 1000.0), 10.0)

    def test_wideband_codes_the_high_band(self) -> None:
        # Speech-like: a 500 Hz tone plus noise in 5-7 kHz, which only wideband can carry.
        n = 16000
        rng = np.random.default_rng(0)
        spectrum = np.fft.rfft(rng.normal(0, 1, n))
        freqs = np.fft.rfftfreq(n, 1 / 16000)
        spectrum[(freqs < 5000) | (freqs > 7000)] = 0
        high = np.fft.irfft(spectrum, n)
        x = (high / np.sqrt(np.mean(high**2)) * 2000 + tone(500.0, 16000, n)).astype(np.int16)
        y, _ = through(self.codec(16000), x, 320)

        def band_db(lo: float, hi: float) -> float:
            f = np.fft.rfftfreq(n - 1600, 1 / 16000)
            sel = (f > lo) & (f < hi)
            out = np.abs(np.fft.rfft(y[1600:].astype(float)))[sel] ** 2
            ref = np.abs(np.fft.rfft(x[1600:].astype(float)))[sel] ** 2
            return float(10 * np.log10(out.sum() / ref.sum()))

        self.assertLessEqual(abs(band_db(5000, 7000)), 3.0)
        self.assertLessEqual(abs(band_db(400, 600)), 1.0)

    def test_garbage_that_destabilises_the_decoder_resets_it(self) -> None:
        # Found by the fuzz test: random bits can make the wideband synthesis filter diverge
        # (NaN ever after); the decoder is reset and the next real packets decode normally.
        c = self.codec(16000)
        good = SpeexCodec(16000)
        self.addCleanup(good.close)
        x = tone(1000.0, 16000, 8000)
        payloads = [good.encode(x[i : i + 320]) for i in range(0, len(x), 320)]
        rng = np.random.default_rng(7)
        with quiet_stderr():
            for _ in range(300):
                try:
                    c.decode(rng.bytes(int(rng.integers(1, 200))))
                except CodecError:
                    pass
        y = np.concatenate([c.decode(p) for p in payloads])
        self.assertLessEqual(abs(level_db(y[4000:], x[4000:])), 3.0)

    def test_quality_changes_the_size(self) -> None:
        low = self.codec(8000, quality=3)
        payload = low.encode(np.zeros(160, dtype=np.int16))
        self.assertLess(len(payload), 38)
        self.assertRaises(CodecError, SpeexCodec, 8000, quality=11)
        self.assertRaises(CodecError, SpeexCodec, 32000)

    def test_a_terminator_alone_is_no_frame(self) -> None:
        c = self.codec(8000)
        self.assertRaises(CodecError, c.decode, b"\x7f")  # 0 + 1111111: mode 15 terminator


class SpeexResyncTests(SynchronousTestCase):
    """A steady tone, one lost frame or a decoder joining mid-stream: the decoder must be back
    at the undisturbed decoder's level within a few frames, at every frequency.

    Without refresh frames libspeex's pitch predictor, fitted by the encoder to a steady tone,
    amplifies any difference between the decoder's excitation history and the encoder's: many
    tones (1000 Hz among them) ended about +14 dB over the undisturbed level, clipped, for
    good (wcsgw.media.speex, "Refresh frames"). The reference is the same payloads decoded
    without a loss, so the test is about recovery, not about what Speex makes of a pure tone
    (wideband codes tones above ~4.6 kHz 20-40 dB down, loss or not)."""

    frames = 100  # 2 s: the runaway took up to ~90 frames to pass 3 dB
    lost = 31  # not on a refresh frame: the worst wait for the next one
    settle = 6  # frames allowed after the disturbance (refresh every 5)
    tolerance_db = 3.0

    def frequencies(self, rate: int) -> list[float]:
        top = 3400 if rate == 8000 else 7000
        return [float(f) for f in range(200, top + 1, 50)]  # 1000 Hz, the one reported, among them

    def deviations(self, rate: int, freq: float, mid_stream: bool) -> np.ndarray:
        """|level - undisturbed level| in dB for each frame from ``lost + settle`` on."""
        n = rate // 50
        encoder = SpeexCodec(rate)
        clean = SpeexCodec(rate)
        decoder = SpeexCodec(rate)
        for c in (encoder, clean, decoder):
            self.addCleanup(c.close)
        x = tone(freq, rate, n * self.frames)
        out = []
        for i in range(self.frames):
            payload = encoder.encode(x[i * n : (i + 1) * n])
            reference = clean.decode(payload)
            if i < self.lost and mid_stream:
                continue
            y = decoder.conceal(n) if i == self.lost and not mid_stream else decoder.decode(payload)
            if i >= self.lost + self.settle:
                out.append(_frame_db(y) - _frame_db(reference))
        return np.abs(np.array(out))

    def check(self, mid_stream: bool) -> None:
        failures = []
        for rate in (8000, 16000):
            for freq in self.frequencies(rate):
                dev = self.deviations(rate, freq, mid_stream)
                if dev.max() > self.tolerance_db:
                    failures.append((rate, freq, round(float(dev.max()), 1)))
        self.assertEqual(failures, [])

    def test_one_concealed_frame_recovers_at_every_frequency(self) -> None:
        self.check(mid_stream=False)

    def test_a_decoder_started_mid_stream_locks_on_at_every_frequency(self) -> None:
        self.check(mid_stream=True)

    def test_refresh_is_available_and_can_be_turned_off(self) -> None:
        for rate in (8000, 16000):
            on, off = SpeexCodec(rate), SpeexCodec(rate, refresh=0)
            self.addCleanup(on.close)
            self.addCleanup(off.close)
            self.assertTrue(on.refreshes)  # this libspeex's encoder state is as expected
            self.assertFalse(off.refreshes)
        self.assertRaises(CodecError, SpeexCodec, 8000, refresh=-1)

    def test_refresh_frames_keep_the_tone_level(self) -> None:
        # The bounded-pitch frames code the first 5 ms without the pitch predictor: still the
        # same tone at the same level, frame by frame.
        for rate in (8000, 16000):
            c = SpeexCodec(rate)
            self.addCleanup(c.close)
            n = rate // 50
            x = tone(440.0, rate, n * 40)
            y, _ = through(c, x, n)
            levels = [_frame_db(y[i : i + n]) for i in range(10 * n, len(y), n)]
            self.assertLessEqual(max(levels) - min(levels), 1.0)
            self.assertLessEqual(abs(level_db(y[10 * n :], x[10 * n :])), 1.0)


def _frame_db(y: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(np.asarray(y, dtype=float) ** 2)) + 1.0))
