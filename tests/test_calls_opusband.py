"""Narrowband Opus from the browser on transcoded calls (wcsgw.sdp.opusband, wcsgw.calls.plan):
``maxplaybackrate``/``sprop-maxcapturerate`` at the SIP codec's audio rate in the Opus fmtp
we write toward the browser when — and only when — the call is transcoded.  Sans-IO."""

from __future__ import annotations

from twisted.trial import unittest

from tests.test_calls_plan import OPUS, PCMU, SIP_ANSWERS, SIP_TE, TE48, policy
from tests.test_webrtc_sdp import answer
from wcsgw.calls.plan import (
    CodecPlan,
    browser_answer_codecs,
    browser_offer_codecs,
    settle_outbound,
)
from wcsgw.sdp.codecs import Codec, parse_fmtp
from wcsgw.sdp.opusband import audio_rate, band_limited_opus
from wcsgw.sdp.parser import serialize_sdp

NB = "minptime=10;useinbandfec=1;maxplaybackrate=8000;sprop-maxcapturerate=8000"
WB = "minptime=10;useinbandfec=1;maxplaybackrate=16000;sprop-maxcapturerate=16000"


class BandLimitedOpusTests(unittest.TestCase):
    def test_rate_follows_the_sip_codec_audio(self) -> None:
        for sip, fmtp in (("PCMU", NB), ("PCMA", NB), ("G729", NB), ("speex/8000", NB),
                          ("G722", WB), ("speex/16000", WB)):
            with self.subTest(sip=sip):
                self.assertEqual(band_limited_opus(OPUS, SIP_ANSWERS[sip]).fmtp, fmtp)

    def test_g722_audio_is_16_khz_under_its_8000_clock(self) -> None:
        self.assertEqual(audio_rate(SIP_ANSWERS["G722"]), 16000)
        self.assertEqual(audio_rate(SIP_ANSWERS["PCMU"]), 8000)

    def test_fullband_sip_codec_and_non_opus_unchanged(self) -> None:
        self.assertIs(band_limited_opus(OPUS, SIP_ANSWERS["opus"]), OPUS)
        self.assertIs(band_limited_opus(PCMU, SIP_ANSWERS["G729"]), PCMU)

    def test_existing_limits_lower_kept_higher_or_bad_replaced(self) -> None:
        lower = Codec("opus", 48000, 2, 111, "maxplaybackrate=8000;stereo=1")
        self.assertEqual(parse_fmtp(band_limited_opus(lower, SIP_ANSWERS["G722"]).fmtp),
                         {"stereo": "1", "maxplaybackrate": "8000",
                          "sprop-maxcapturerate": "16000"})
        higher = Codec("opus", 48000, 2, 111, "MaxPlaybackRate=48000;sprop-maxcapturerate=x")
        self.assertEqual(band_limited_opus(higher, PCMU).fmtp,
                         "maxplaybackrate=8000;sprop-maxcapturerate=8000")
        bare = Codec("opus", 48000, 2, 111)
        self.assertEqual(band_limited_opus(bare, PCMU).fmtp,
                         "maxplaybackrate=8000;sprop-maxcapturerate=8000")


class OutboundAnswerTests(unittest.TestCase):
    """The browser offered; our answer's codecs once the SIP answer settled the plan."""

    def settled(self, browser: list[Codec], sip_answer: list[Codec]) -> CodecPlan:
        plan = CodecPlan("relay", [])
        settle_outbound(plan, browser, sip_answer, policy())
        return plan

    def test_transcoded_to_pcmu_asks_for_narrowband(self) -> None:
        plan = self.settled([OPUS, TE48], [SIP_ANSWERS["PCMU"], SIP_TE])
        self.assertEqual(plan.mode, "transcode")
        codecs = browser_answer_codecs(plan)
        self.assertEqual([c.rtpmap for c in codecs], ["opus/48000/2", "telephone-event/48000"])
        self.assertEqual(codecs[0].fmtp, NB)
        # the plan (what the media is built from) keeps the browser's own fmtp
        self.assertEqual(plan.browser_codec.fmtp, OPUS.fmtp)

    def test_transcoded_to_g722_asks_for_wideband(self) -> None:
        plan = self.settled([OPUS, TE48], [SIP_ANSWERS["G722"]])
        self.assertEqual(browser_answer_codecs(plan)[0].fmtp, WB)

    def test_relayed_opus_untouched(self) -> None:
        plan = self.settled([OPUS, TE48], [SIP_ANSWERS["opus"], SIP_TE])
        self.assertEqual(plan.mode, "relay")
        self.assertEqual(browser_answer_codecs(plan)[0].fmtp, OPUS.fmtp)

    def test_relayed_pcmu_untouched(self) -> None:
        plan = self.settled([OPUS, PCMU, TE48], [SIP_ANSWERS["PCMU"]])
        self.assertEqual(plan.mode, "relay")
        self.assertEqual(browser_answer_codecs(plan), [PCMU])

    def test_answer_sdp_carries_it(self) -> None:
        plan = self.settled([OPUS, TE48], [SIP_ANSWERS["PCMU"], SIP_TE])
        text = serialize_sdp(answer(codecs=browser_answer_codecs(plan)))
        self.assertIn(f"a=fmtp:111 {NB}\r\n", text)


class InboundOfferTests(unittest.TestCase):
    """The SIP side offered; the Opus we offer the browser."""

    def opus(self, sip: list[Codec]) -> Codec:
        [opus] = [c for c in browser_offer_codecs(sip, policy()) if c.key == "opus"]
        return opus

    def test_transcode_fallback_asks_for_the_first_target_band(self) -> None:
        self.assertEqual(self.opus([SIP_ANSWERS["G729"], SIP_TE]).fmtp, NB)
        self.assertEqual(self.opus([SIP_ANSWERS["speex/16000"], SIP_ANSWERS["G729"]]).fmtp, WB)
        self.assertEqual(self.opus([PCMU]).fmtp, NB)

    def test_relayed_opus_keeps_the_sip_fmtp(self) -> None:
        self.assertEqual(self.opus([SIP_ANSWERS["opus"], PCMU]).fmtp, "useinbandfec=1")

    def test_late_offer_unchanged(self) -> None:
        self.assertEqual(self.opus(None).fmtp, OPUS.fmtp)  # type: ignore[arg-type]
