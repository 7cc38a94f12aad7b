"""The gateway's offer (wcsgw.webrtc.offer.offer_for_browser) against real headless Chromium.

An incoming call reverses the roles of tests/test_webrtc_chromium.py: the gateway offers and the
browser answers, while the leg stays ICE-lite and the DTLS *server* (the browser answers
``a=setup:active``).  The browser's fake microphone plays 440 Hz; the leg sends every packet
it receives straight back with the SSRC the offer announced, so the browser hearing 440 Hz
(AnalyserNode FFT in the page) proves the offer, the parsed answer, STUN, DTLS with the
browser as client, and SRTP both ways.

Run in a loopback-only namespace (``tests/isolated``) like the other browser tests.
"""

from __future__ import annotations

import struct
from typing import Any, Sequence

from twisted.internet import reactor
from twisted.trial import unittest

from tests.peers.chromium import (
    Chromium,
    close_leg_and_browser,
    describe,
    dominant_frequency,
    evaluate,
    open_call_page,
)
from tests.peers.ports import free_port
from tests.support import EventLog, assert_near, inline, with_ssrc
from wcsgw.media.ports import PortAllocator
from wcsgw.sdp.codecs import OPUS, PCMU, TELEPHONE_EVENT_8000, TELEPHONE_EVENT_48000, Codec
from wcsgw.sdp.parser import parse_sdp, serialize_sdp
from wcsgw.webrtc.leg import WebRtcLeg
from wcsgw.webrtc.offer import BrowserAnswer, offer_for_browser, parse_browser_answer

HOST = "127.0.0.1"
TONE = 440.0
OUR_SSRC = 0x0FFE12ED
G729 = Codec("G729", 8000, payload_type=18)  # not in Chromium: must be passed over

#: Answer the gateway's offer from the page, the way an incoming-call page would:
#: microphone first, then the offer, then our track on the transceiver the offer created
#: (addTrack reuses it, so the answer is sendrecv).  Fills ``window.wcsgwTest`` like its own
#: ``offer()`` does, so its waitConnection/waitDtls/remoteStream helpers work.  Returns the
#: answer at once: the gateway is ICE-lite and needs no browser candidates, only the
#: browser's ufrag/pwd, which are in the answer.
ANSWER_JS = """
async (offerSdp) => {
  const t = window.wcsgwTest;
  const pc = await t.newPeer();
  await pc.setRemoteDescription({type: "offer", sdp: offerSdp});
  for (const track of t.localStream.getTracks()) pc.addTrack(track, t.localStream);
  await pc.setLocalDescription(await pc.createAnswer());
  return pc.localDescription.sdp;
}
"""


class ChromiumAnswersOurOfferTests(unittest.TestCase):
    timeout = 90

    async def open_browser(self) -> tuple[Chromium, Any]:
        return await open_call_page(self, TONE)

    async def call(
        self, page: Any, codecs: Sequence[Codec]
    ) -> tuple[WebRtcLeg, EventLog, EventLog, BrowserAnswer]:
        """Offer ``codecs`` from a fresh leg, apply the browser's answer, echo; leg connected."""
        base = min(free_port("udp"), 65535 - 20)
        self.ports = PortAllocator(HOST, base, base + 19)
        leg = WebRtcLeg(reactor, HOST, HOST, self.ports)
        self.addCleanup(leg.close)
        states, packets = EventLog(), EventLog()
        leg.on_state = states

        def echo(packet: bytes, now: float) -> None:
            leg.send_rtp(with_ssrc(packet, OUR_SSRC))
            packets(packet)  # after sending: a waiting test resumes inside this call

        leg.on_rtp = echo
        offer = offer_for_browser(leg, codecs, OUR_SSRC, "wcsgwoffertest")
        answer_text = await evaluate(page, ANSWER_JS, serialize_sdp(offer))
        self.answered_at = reactor.seconds()
        answer = parse_browser_answer(offer, parse_sdp(answer_text))
        self.assertEqual(answer.setup, "active", answer_text)
        leg.set_remote(answer.ice_ufrag, answer.ice_pwd, answer.fingerprint)
        leg.start()
        await states.wait_for(lambda s: s != "checking", timeout=15)
        self.assertEqual(states.events, ["checking", "connected"], describe(answer_text))
        return leg, states, packets, answer

    async def assert_hears_tone(self, page: Any, packets: EventLog, payload_type: int) -> None:
        # 50 packets = 1 s of the browser's audio, every one echoed back.
        await packets.wait_for(lambda p: len(packets.events) >= 50, timeout=10)
        self.assertEqual({p[1] & 0x7F for p in packets.events}, {payload_type})
        peak = await dominant_frequency(page, ms=1500)
        self.assertGreater(peak["level"], -80, describe(peak))  # a tone, not silence
        assert_near(self, peak["frequency"], TONE, 15)

    @inline
    async def test_pcmu_first_is_answered_and_the_echo_is_heard_then_close(self) -> None:
        browser, page = await self.open_browser()
        codecs = [PCMU, OPUS, TELEPHONE_EVENT_8000, TELEPHONE_EVENT_48000]
        leg, states, packets, answer = await self.call(page, codecs)

        self.assertEqual((answer.codec.name, answer.codec.payload_type), ("PCMU", 0))
        self.assertEqual(answer.telephone_event,
                         Codec("telephone-event", 8000, payload_type=126, fmtp=None))
        self.assertEqual(answer.direction, "sendrecv")
        self.assertIsNotNone(answer.ssrc)
        await evaluate(page, "wcsgwTest.waitConnection('connected', 10000)")
        await self.assert_hears_tone(page, packets, 0)
        self.assertEqual(leg.srtp_errors, 0)
        self.assertEqual({p[8:12] for p in packets.events}, {struct.pack("!I", answer.ssrc)})
        print(f"\n  after the browser's answer: DTLS done"
              f" {1000 * (leg.connected_at - self.answered_at):.0f} ms, first RTP"
              f" {1000 * (leg.first_rtp_at - self.answered_at):.0f} ms; SRTP {leg.srtp.profile}")

        await close_leg_and_browser(self, leg, states, page, browser, self.ports)

    @inline
    async def test_first_codec_the_browser_has_wins(self) -> None:
        """G.729 (which Chromium lacks) first, then Opus: Opus is answered, at 111."""
        _, page = await self.open_browser()
        leg, _, packets, answer = await self.call(
            page, [G729, OPUS, PCMU, TELEPHONE_EVENT_48000, TELEPHONE_EVENT_8000]
        )
        self.assertEqual([c.name for c in answer.codecs][:1], ["opus"])
        self.assertNotIn("G729", [c.name for c in answer.codecs])
        self.assertEqual(answer.codec.payload_type, 111)
        self.assertEqual((answer.telephone_event.clock_rate, answer.telephone_event.payload_type),
                         (48000, 110))
        await self.assert_hears_tone(page, packets, 111)
