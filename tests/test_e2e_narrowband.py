"""Chromium honours the narrowband Opus the gateway asks for on a transcoded call.

A browser restricted to Opus (``?codecs=opus``) calls baresip forced to PCMU: the gateway
transcodes, and its answer's Opus fmtp says ``maxplaybackrate=8000`` (wcsgw.sdp.opusband);
and the other way, baresip calling the browser, where our offer's Opus says it.
The browser's fake microphone plays 440 Hz plus a weaker 6 kHz tone, so a browser left to
itself has something above 4 kHz to spend bits on and encodes wideband or more — the control
test shows it does.  What the browser sends is observed in the gateway, in this process: the
TOC byte (RFC 6716 §3.1) of every Opus payload its decoder is handed, through a wrapper put
on that one call's decoder object for the test (nothing in the gateway changes, nothing costs
per packet).  Narrowband is configs 0-3 (SILK NB) and 16-19 (CELT NB).  The tones are
checked by content both ways, as tests/test_e2e_codecs.py checks them (its checks reused).
"""

from __future__ import annotations

import os
import wave

import numpy as np
from twisted.internet import defer, reactor, task
from twisted.python import log
from twisted.trial import unittest

import tests.test_e2e_codecs as chain
from tests.e2e import SipPhoneMixin, raw_microphone
from tests.peers.chromium import Chromium
from tests.support import inline
from wcsgw.calls import plan as plan_module

#: RFC 6716 §3.1: the TOC configurations that code narrowband audio.
NARROWBAND_CONFIGS = frozenset((0, 1, 2, 3, 16, 17, 18, 19))
#: How many of the browser's Opus frames are looked at (1.2 s of 20 ms frames).
FRAMES = 60
#: The microphone's second tone: above what 8 kHz audio carries, ~14 dB under the first.
HIGH_HZ, HIGH_AMPLITUDE = 6000.0, 0.1


def write_two_tone_wav(path: str, rate: int = 48000, seconds: float = 2.0) -> str:
    t = np.arange(int(seconds * rate)) / rate
    x = (chain.BROWSER_AMPLITUDE * np.sin(2 * np.pi * chain.BROWSER_HZ * t)
         + HIGH_AMPLITUDE * np.sin(2 * np.pi * HIGH_HZ * t))
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((x * 32767).astype("<i2").tobytes())
    return path


class NarrowbandFromBrowserTests(SipPhoneMixin, unittest.TestCase):
    timeout = 120
    peer_amplitude = chain.BARESIP_AMPLITUDE
    # the codec chain tests' checks, reused as they are
    assert_media = chain.CodecChainTests.assert_media
    assert_browser_heard = chain.CodecChainTests.assert_browser_heard
    assert_heard = chain.CodecChainTests.assert_heard
    assert_phone_heard = chain.CodecChainTests.assert_phone_heard

    async def start_browser(self, raw_mic: bool = False) -> Chromium:
        """As SipPhoneMixin's, with the two-tone microphone."""
        mic = write_two_tone_wav(os.path.abspath(self.mktemp()) + "-mic.wav")
        self.browser = Chromium(fake_audio=mic)
        await self.browser.start()
        self.addCleanup(self.browser.stop)
        if raw_mic:
            await raw_microphone(self.browser)
        return self.browser

    async def browser_opus_configs(self, count: int = FRAMES) -> list[int]:
        """The TOC configuration of the next ``count`` Opus payloads the call's transcoder
        decodes from the browser."""
        [call] = self.gateway.calls.values()
        codec = call.bridge.transcoder.webrtc_codec
        decode = codec.decode
        configs: list[int] = []
        enough: defer.Deferred[None] = defer.Deferred()

        def watching(payload: bytes) -> np.ndarray:
            if len(configs) < count:
                configs.append(payload[0] >> 3)
                if len(configs) == count:
                    enough.callback(None)
            return decode(payload)

        codec.decode = watching
        try:
            await enough.addTimeout(60, reactor)
        finally:
            del codec.decode  # the class's method again
        log.msg(f"narrowband e2e: the browser's Opus TOC configs {sorted(set(configs))}")
        return configs

    async def transcoded_call(self, incoming: bool = False) -> list[int]:
        """The browser (Opus only) calls baresip (PCMU) — or, ``incoming``, baresip calls
        the browser (our offer's Opus is the transcoding fallback): transcoded; the
        browser's Opus configs; the tones both ways; hang up, nothing left behind."""
        # incoming: ``codecs.webrtc`` Opus only, or the browser would take the relayable PCMU
        config = chain.loopback_config(webrtc=("opus",)) if incoming else chain.loopback_config()
        ui, phone = await self.setup_call(codecs="PCMU", page_query="?codecs=opus",
                                          config=config, raw_mic=True)
        if incoming:
            await phone.command("dial", f"sip:1001@127.0.0.1:{self.kam.port}")
            await ui.ringing()
            await ui.click("Answer")
        else:
            await ui.call("1002")
        await ui.wait_state("call-status", "established")
        await phone.wait_event("CALL_ESTABLISHED")
        self.assert_media("transcode", sip_codec="PCMU/8000", webrtc_codec="opus/48000/2")
        configs = await self.browser_opus_configs()
        await self.assert_browser_heard(ui)
        await task.deferLater(reactor, chain.RECORD_SECONDS, lambda: None)
        mark = phone.mark()
        await ui.click("Hangup")
        await phone.wait_event("CALL_CLOSED", since=mark)
        self.assert_phone_heard(phone)
        await self.assert_clean()
        return configs

    @inline
    async def test_browser_sends_narrowband_opus_to_a_pcmu_call(self) -> None:
        configs = await self.transcoded_call()
        self.assertEqual(len(configs), FRAMES)
        self.assertEqual(set(configs) - NARROWBAND_CONFIGS, set(), configs)

    @inline
    async def test_browser_sends_narrowband_opus_answering_a_pcmu_caller(self) -> None:
        configs = await self.transcoded_call(incoming=True)
        self.assertEqual(len(configs), FRAMES)
        self.assertEqual(set(configs) - NARROWBAND_CONFIGS, set(), configs)

    @inline
    async def test_control_without_the_hint_the_browser_sends_a_wider_band(self) -> None:
        """The same call with the fmtp as before (no band asked): the browser codes the
        6 kHz tone, above narrowband — so the test above can tell the hint from no hint."""
        self.patch(plan_module, "band_limited_opus", lambda browser, sip: browser)
        configs = await self.transcoded_call()
        self.assertEqual(len(configs), FRAMES)
        self.assertTrue(set(configs) - NARROWBAND_CONFIGS, configs)
