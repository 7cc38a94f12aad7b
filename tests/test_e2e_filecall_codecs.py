"""REST playFile/record on a wideband codec, against Kamailio and a real phone.

baresip is restricted to G.722, so the gateway's file call (which offers every configured
codec it can encode) must speak G.722 itself: the phone hears the played file (by content) and
the recording — 16 kHz, G.722's own rate — holds the phone's tone.
"""

from __future__ import annotations

import os
import wave

import attrs
from twisted.internet import reactor, task
from twisted.trial import unittest

from tests.e2e import TOKEN, Gateway, RestMixin, dominant_hz, gateway_config, write_tone_wav
from tests.peers.baresip import Baresip, write_tone
from tests.peers.kamailio import Kamailio
from tests.support import assert_near, inline
from wcsgw.config import RestSettings


class FileCallCodecTests(RestMixin, unittest.TestCase):
    async def setup_with(self, codecs: str) -> Baresip:
        """RestMixin's setup with the phone restricted to ``codecs`` (baresip's spelling)."""
        self.kam = Kamailio()
        self.addCleanup(self.kam.stop)
        await self.kam.start()
        self.media = os.path.abspath(self.mktemp())
        self.recordings = os.path.abspath(self.mktemp())
        os.makedirs(self.media)
        os.makedirs(self.recordings)
        write_tone_wav(os.path.join(self.media, "tone440.wav"), 440.0, seconds=3.0)
        config = attrs.evolve(
            gateway_config(allowed_domains=("127.0.0.1",), t1=0.1, t2=0.8),
            rest=RestSettings(tokens=(TOKEN,), media_folder=self.media,
                              recordings_folder=self.recordings))
        self.gateway = Gateway(config)
        self.gateway.start()
        self.addCleanup(self.gateway.stop)
        tone = write_tone(os.path.abspath(self.mktemp()) + ".wav", frequency=1000.0, rate=8000,
                          seconds=30.0)
        # ausrc_*: baresip resamples the 8 kHz tone for the codec's rate
        self.phone = Baresip("1002", "pass1002", registrar_port=self.kam.port, outbound=True,
                             codecs=codecs, tone=tone, ausrc_srate=8000, ausrc_channels=1)
        self.addCleanup(self.phone.stop)
        await self.phone.start()
        await self.phone.registered()
        return self.phone

    @inline
    async def test_g722_phone_hears_the_file_and_is_recorded(self) -> None:
        phone = await self.setup_with("G722/16000/1")
        code, reply = await self.rest("call/startup", self.startup_body(
            callId="g722-1", playFile="tone440.wav", record=True))
        self.assertEqual((code, reply), (200, {"callId": "g722-1"}))
        await phone.wait_event("CALL_ESTABLISHED")
        code, found = await self.rest("call/find", {"callId": "g722-1"})
        self.assertEqual(code, 200)
        self.assertEqual((found[0]["media"]["sipCodec"], found[0]["media"]["mode"]),
                         ("G722/8000", "relay"))
        await task.deferLater(reactor, 2.5, lambda: None)  # the file plays; both sides record
        mark = phone.mark()
        self.assertEqual(await self.rest("call/terminate", {"callId": "g722-1"}), (200, {}))
        await phone.wait_event("CALL_CLOSED", since=mark)
        await self.gateway.when_idle()
        [heard] = phone.recordings()
        frequency, level = dominant_hz(heard)
        assert_near(self, frequency, 440, 10)
        self.assertGreater(level, 300)
        recorded = os.path.join(self.recordings, "g722-1.wav")
        with wave.open(recorded) as w:
            self.assertEqual((w.getframerate(), w.getnchannels(), w.getsampwidth()), (16000, 1, 2))
            self.assertGreater(w.getnframes(), 16000 * 2)  # ~2.5 s of call, no hours of gap
            self.assertLess(w.getnframes(), 16000 * 5)
        frequency, level = dominant_hz(recorded)
        assert_near(self, frequency, 1000, 10)
        self.assertGreater(level, 300)
        self.assertEqual(self.gateway.calls, {})
