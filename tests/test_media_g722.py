"""G.722 through spandsp (wcsgw.media.g722): the AudioCodec contract, 64 kbit/s payload size,
the RFC 3551 clock quirk (16 kHz audio, 8000 Hz RTP clock), wideband content, spandsp PLC."""

from __future__ import annotations

import numpy as np
from twisted.trial.unittest import SynchronousTestCase

from tests.codec_support import CodecContract, dominant, level_db, through, tone
from wcsgw.media.audiocodec import AudioCodec, CodecError, make_codec
from wcsgw.media.g722 import G722Codec


class G722ContractTests(CodecContract, SynchronousTestCase):
    payload_20ms = 160  # 320 samples at 16 kHz, 4 bits each

    def make(self) -> AudioCodec:
        return make_codec("G722", 8000)


class G722Tests(SynchronousTestCase):
    def test_clock_quirk(self) -> None:
        c = G722Codec()
        self.addCleanup(c.close)
        self.assertEqual((c.sample_rate, c.rtp_clock), (16000, 8000))
        payload = c.encode(np.zeros(320, dtype=np.int16))
        # 20 ms: 160 bytes and 160 RTP clock ticks
        self.assertEqual(len(payload), 20 * c.rtp_clock // 1000)

    def test_wideband_tones_pass(self) -> None:
        # 5 and 6.5 kHz are beyond any narrowband codec: G.722 keeps them.
        for freq in (5000.0, 6500.0):
            c = G722Codec()
            self.addCleanup(c.close)
            x = tone(freq, 16000, 16000)
            y, _ = through(c, x, 320)
            self.assertLessEqual(abs(dominant(y[1600:], 16000) - freq), freq * 0.01)
            self.assertLessEqual(abs(level_db(y[1600:], x[1600:])), 3.0, f"{freq} Hz")

    def test_lower_rates_and_bad_rate(self) -> None:
        for rate, size in ((56000, 160), (48000, 160)):
            c = G722Codec(bitrate=rate)
            self.addCleanup(c.close)
            y, payloads = through(c, tone(1000.0, 16000, 3200), 320)
            self.assertEqual({len(p) for p in payloads}, {size})  # spandsp packs 8 bits/sample pair
            self.assertLessEqual(abs(dominant(y[800:], 16000) - 1000.0), 10.0)
        self.assertRaises(CodecError, G722Codec, bitrate=32000)
