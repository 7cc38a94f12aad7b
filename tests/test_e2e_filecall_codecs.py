"""REST playFile/record on a wideband codec, against Kamailio and a real phone.

baresip is restricted to G.722, so the gateway's file call (which offers every configured
codec it can encode) must speak G.722 itself: the phone hears the played file (by content) and
the recording — 16 kHz, G.722's own rate — holds the phone's tone.
"""

from __future__ import annotations

import os
import wave

from twisted.trial import unittest

from tests.e2e import RestMixin, dominant_hz
from tests.support import assert_near, inline


class FileCallCodecTests(RestMixin, unittest.TestCase):
    @inline
    async def test_g722_phone_hears_the_file_and_is_recorded(self) -> None:
        # ausrc_*: baresip resamples the 8 kHz tone for the codec's rate
        phone = await self.setup("G722/16000/1", ausrc_srate=8000, ausrc_channels=1)
        found = await self.play_and_record(phone, "g722-1")
        self.assertEqual((found[0]["media"]["sipCodec"], found[0]["media"]["mode"]),
                         ("G722/8000", "relay"))
        recorded = os.path.join(self.recordings, found[0]["recording"])  # the gateway's name
        with wave.open(recorded) as w:
            self.assertEqual((w.getframerate(), w.getnchannels(), w.getsampwidth()), (16000, 1, 2))
            self.assertGreater(w.getnframes(), 16000 * 2)  # ~2.5 s of call, no hours of gap
            self.assertLess(w.getnframes(), 16000 * 5)
        frequency, level = dominant_hz(recorded)
        assert_near(self, frequency, 1000, 10)
        self.assertGreater(level, 300)
        self.assertEqual(self.gateway.calls, {})
