"""WebRtcLeg against real headless Chromium: connect, echo the browser's own tone back, close.

The browser's fake microphone plays a 440 Hz WAV; the leg answers its offer (ICE-lite,
DTLS passive, Opus), and ``on_rtp`` sends every packet straight back with the SSRC the answer
announced.  The browser then *hears* 440 Hz — measured in the page with an AnalyserNode — which
proves the whole path: STUN, DTLS, SRTP both ways, payload untouched.

Only 127.0.0.1 is in the answer; run the suite in a loopback-only namespace
(``tests/isolated``, as ``make test`` does) so Chromium has no other address to use.
"""

from __future__ import annotations

import wave
from typing import Any

import numpy as np
from twisted.internet import reactor
from twisted.trial import unittest

from tests.peers.chromium import (
    Chromium,
    aio,
    close_leg_and_browser,
    describe,
    dominant_frequency,
    evaluate,
    open_call_page,
    write_tone_wav,
)
from tests.peers.ports import free_port
from tests.support import EventLog, inline, with_ssrc
from wcsgw.media.ports import PortAllocator
from wcsgw.sdp.codecs import OPUS, TELEPHONE_EVENT_48000
from wcsgw.sdp.parser import parse_sdp, serialize_sdp
from wcsgw.webrtc.leg import WebRtcLeg
from wcsgw.webrtc.sdp import answer_for_browser, browser_transport
from wcsgw.webrtc.srtp import SRTP_AES128_CM_SHA1_80

HOST = "127.0.0.1"
TONE = 440.0
OUR_SSRC = 0x5EC0DE01


class ChromiumEchoTests(unittest.TestCase):
    timeout = 90

    async def open_browser(self) -> tuple[Chromium, Any]:
        return await open_call_page(self, TONE)

    async def call(self, page: Any, **leg_kwargs: Any) -> tuple[WebRtcLeg, EventLog, EventLog, dict]:
        """Offer from the page, answer from a fresh leg, echo on; returns when the leg is up."""
        offer_text = await evaluate(page, "wcsgwTest.offer()")
        times = {"offer": reactor.seconds()}
        offer = parse_sdp(offer_text)
        remote = browser_transport(offer)
        base = min(free_port("udp"), 65535 - 20)
        self.ports = PortAllocator(HOST, base, base + 19)
        leg = WebRtcLeg(reactor, HOST, HOST, self.ports, **leg_kwargs)
        self.assertEqual(self.ports.in_use, {leg.port})
        self.addCleanup(leg.close)
        states, packets = EventLog(), EventLog()
        leg.on_state = states

        def echo(packet: bytes, now: float) -> None:
            leg.send_rtp(with_ssrc(packet, OUR_SSRC))
            packets(packet)  # after sending: a waiting test resumes inside this call

        leg.on_rtp = echo
        answer = answer_for_browser(offer, leg, [OPUS, TELEPHONE_EVENT_48000], OUR_SSRC, "wcsgwtest")
        leg.set_remote(remote.ice_ufrag, remote.ice_pwd, remote.fingerprint)
        leg.start()
        await evaluate(page, "sdp => wcsgwTest.answer(sdp)", serialize_sdp(answer))
        await states.wait_for(lambda s: s != "checking", timeout=15)
        self.assertEqual(states.events, ["checking", "connected"])
        return leg, states, packets, times

    @inline
    async def test_echo_of_own_tone_then_close(self) -> None:
        browser, page = await self.open_browser()
        leg, states, packets, times = await self.call(page)
        opus_pt = 111  # the offer's number for opus/48000/2, which the answer keeps
        await evaluate(page, "wcsgwTest.waitConnection('connected', 10000)")

        # 50 packets = 1 s of audio echoed back.
        await packets.wait_for(lambda p: len(packets.events) >= 50, timeout=10)
        payload_types = {p[1] & 0x7F for p in packets.events}
        self.assertEqual(payload_types, {opus_pt})
        self.assertGreaterEqual(leg.rtp_out, 50)
        self.assertEqual(leg.srtp_errors, 0)

        inbound = await evaluate(page, "wcsgwTest.inboundAudio()")
        self.assertIsNotNone(inbound, "the browser has no inbound audio stream")
        self.assertGreater(inbound["packetsReceived"], 0, describe(inbound))

        peak = await dominant_frequency(page, ms=1500)
        self.assertGreater(peak["level"], -80, describe(peak))  # a tone, not silence
        self.assertLessEqual(abs(peak["frequency"] - TONE), 15, describe(peak))

        # Control: without the echo the browser hears nothing — the tone above was ours, not
        # something the page picked up elsewhere.  The first window holds the jitter buffer's
        # fade-out (measured: ~-49 dB at 440 Hz), the second is silent (-300 dB measured).
        leg.on_rtp = lambda packet, now: None
        fading = await dominant_frequency(page, ms=500)
        quiet = await dominant_frequency(page, ms=500)
        self.assertLess(quiet["level"], peak["level"] - 40, describe([peak, fading, quiet]))

        print(
            f"\n  timings after the offer: DTLS done {1000 * (leg.connected_at - times['offer']):.0f} ms,"
            f" first RTP {1000 * (leg.first_rtp_at - times['offer']):.0f} ms;"
            f" SRTP {leg.srtp.profile}; echo heard at {peak['frequency']:.1f} Hz"
            f" ({peak['level']:.0f} dB; {quiet['level']:.0f} dB without echo)"
        )

        await close_leg_and_browser(self, leg, states, page, browser, self.ports)

    @inline
    async def test_echo_with_aes128_cm_sha1_80(self) -> None:
        """The profile every DTLS-SRTP peer has (Chromium prefers AES-256-GCM when offered)."""
        browser, page = await self.open_browser()
        leg, states, packets, _ = await self.call(page, srtp_profiles=[SRTP_AES128_CM_SHA1_80])
        self.assertEqual(leg.srtp.profile, SRTP_AES128_CM_SHA1_80)
        await packets.wait_for(lambda p: len(packets.events) >= 25, timeout=10)
        peak = await dominant_frequency(page, ms=700)
        self.assertGreater(peak["level"], -80, describe(peak))
        self.assertLessEqual(abs(peak["frequency"] - TONE), 15, describe(peak))
        self.assertEqual(leg.srtp_errors, 0)

    @inline
    async def test_page_closed_fails_ice_within_consent_timeout(self) -> None:
        browser, page = await self.open_browser()
        consent = 3.0
        leg, states, packets, _ = await self.call(page, consent_timeout=consent)
        await packets.wait_for(lambda p: True, timeout=10)
        closed_at = reactor.seconds()
        await aio(page.close())
        state = await states.wait_for(lambda s: s.startswith("failed") or s == "closed",
                                      timeout=consent + 10)
        elapsed = reactor.seconds() - closed_at
        self.assertEqual(state, "failed:ice", describe(states.events))
        # Consent runs from the last check (Chrome checks every ~2.5 s once stable, more often
        # at first), so failure comes at most `consent` after the page went away.
        self.assertLessEqual(elapsed, consent + 0.5)
        print(f"\n  page closed -> {state} after {elapsed:.2f} s (consent timeout {consent} s)")
        received = leg.rtp_in
        await leg.close()
        self.assertEqual(states.events, ["checking", "connected", "failed:ice", "closed"])
        self.assertGreater(received, 0)


class ToneWavTests(unittest.TestCase):
    def test_tone_wav_is_48k_mono_int16_at_the_frequency(self) -> None:
        path = write_tone_wav(self.mktemp() + ".wav", 1000.0, seconds=1.0)
        with wave.open(str(path)) as w:
            self.assertEqual((w.getnchannels(), w.getsampwidth(), w.getframerate()), (1, 2, 48000))
            samples = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(float)
        self.assertEqual(len(samples), 48000)
        spectrum = np.abs(np.fft.rfft(samples))
        self.assertAlmostEqual(float(np.argmax(spectrum)) * 48000 / len(samples), 1000.0, delta=1)
        self.assertLessEqual(np.max(np.abs(samples)), 32767 * 0.5 + 1)
