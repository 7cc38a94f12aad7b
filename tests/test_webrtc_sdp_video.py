"""Video in the SDP: the browser's answer and offer (wcsgw.webrtc.sdp) and the SIP side's
m=video (wcsgw.sdp.negotiate), against Chromium's real audio+video offer."""

from __future__ import annotations

import os

from twisted.trial import unittest

from wcsgw.sdp.codecs import Codec
from wcsgw.sdp.model import Bandwidth
from wcsgw.sdp.negotiate import VideoAnswer, audio_answer, audio_offer, video_media
from wcsgw.sdp.parser import parse_sdp, serialize_sdp
from wcsgw.sdp.video import (
    bandwidth_kbps,
    h264_profile_level,
    rtcp_feedback,
    same_video_codec,
    select_video_codecs,
    video_answer_codec,
)
from wcsgw.webrtc.offer import offer_for_browser, parse_browser_answer, parse_browser_video
from wcsgw.webrtc.sdp import VideoSpec, answer_for_browser, video_section

HERE = os.path.dirname(__file__)
#: Chromium 14x's offer for addTransceiver("audio") + addTransceiver("video") (Debian build).
CHROME_OFFER = open(os.path.join(HERE, "data", "chromium_offer_av.sdp")).read()

OPUS = Codec("opus", 48000, 2, 111, "minptime=10;useinbandfec=1")


class Leg:
    host = "127.0.0.1"
    port = 40000
    ice_ufrag = "ufrg"
    ice_pwd = "p" * 24
    fingerprint = ("sha-256", "AB:" * 31 + "CD")


def h264(pt, pm="1", plid="42e01f", lasym=True) -> Codec:
    fmtp = (("level-asymmetry-allowed=1;" if lasym else "")
            + f"packetization-mode={pm};profile-level-id={plid}")
    return Codec("H264", 90000, 1, pt, fmtp)


class H264Tests(unittest.TestCase):
    def test_profiles(self) -> None:
        self.assertEqual(h264_profile_level(h264(1, plid="42e01f")), ("constrained-baseline", 0x1F))
        self.assertEqual(h264_profile_level(h264(1, plid="42001f")), ("baseline", 0x1F))
        self.assertEqual(h264_profile_level(h264(1, plid="4d001f")), ("main", 0x1F))
        self.assertEqual(h264_profile_level(h264(1, plid="640c34")), ("constrained-high", 0x34))
        self.assertEqual(h264_profile_level(Codec("H264", 90000, 1, 1)), ("baseline", 0x10))
        self.assertEqual(h264_profile_level(h264(1, plid="zz")), (None, 0))

    def test_same_video_codec_needs_profile_and_packetization_mode(self) -> None:
        self.assertTrue(same_video_codec(h264(1, "1", "42e01f"), h264(2, "1", "42e033")))
        self.assertTrue(same_video_codec(h264(1, "1", "42e01f"), h264(2, "1", "42c01f")))
        self.assertFalse(same_video_codec(h264(1, "1", "42e01f"), h264(2, "0", "42e01f")))
        self.assertFalse(same_video_codec(h264(1, "1", "42e01f"), h264(2, "1", "4d001f")))
        self.assertFalse(same_video_codec(h264(1, "1", "42e01f"), h264(2, "1", "42001f")))
        vp8 = Codec("VP8", 90000, 1, 96)
        self.assertTrue(same_video_codec(vp8, Codec("vp8", 90000, 1, 100)))
        self.assertFalse(same_video_codec(vp8, h264(1)))
        self.assertFalse(same_video_codec(Codec("VP9", 90000, 1, 98), Codec("VP9", 90000, 1, 98)))

    def test_answer_level_never_above_the_offer(self) -> None:
        answered = video_answer_codec(h264(102, plid="42e01f"), h264(96, plid="42e028"))
        self.assertEqual(answered.payload_type, 102)
        self.assertEqual(answered.fmtp_params["profile-level-id"], "42e01f")
        answered = video_answer_codec(h264(102, plid="42e028"), h264(96, plid="42e01f"))
        self.assertEqual(answered.fmtp_params["profile-level-id"], "42e01f")
        self.assertEqual(answered.fmtp_params["packetization-mode"], "1")
        self.assertEqual(answered.fmtp_params.get("level-asymmetry-allowed"), "1")
        # kept only when both sides allow it
        answered = video_answer_codec(h264(102), h264(96, lasym=False))
        self.assertNotIn("level-asymmetry-allowed", answered.fmtp_params)

    def test_select_by_config_order_drops_rtx_and_unknown(self) -> None:
        chrome = video_section(parse_sdp(CHROME_OFFER))
        chosen = select_video_codecs(chrome.codecs(), ["h264", "vp8"])
        self.assertEqual(chosen[-1].key, "vp8")
        self.assertEqual({c.key for c in chosen}, {"h264", "vp8"})
        self.assertEqual([c.payload_type for c in chosen], [102, 104, 108, 114, 116, 39, 96])
        self.assertEqual([c.payload_type for c in select_video_codecs(chrome.codecs(), ["vp8"])],
                         [96])


class SipVideoLineTests(unittest.TestCase):
    def test_video_media_has_bandwidth_and_feedback(self) -> None:
        media = video_media(5000, [Codec("VP8", 90000, 1, 96), h264(102)], kbps=1200)
        text = serialize_sdp(audio_offer("10.0.0.1", 4000, [Codec("PCMU", 8000, 1, 0)],
                                         session_id=1, video=media))
        self.assertIn("m=video 5000 RTP/AVP 96 102\r\n", text)
        self.assertIn("b=AS:1200\r\n", text)
        self.assertIn("b=TIAS:1140000\r\n", text)
        for line in ("a=rtcp-fb:96 nack pli", "a=rtcp-fb:96 ccm fir", "a=rtcp-fb:102 goog-remb",
                     "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;"
                     "profile-level-id=42e01f"):
            self.assertIn(line + "\r\n", text)
        sd = parse_sdp(text)
        self.assertEqual(bandwidth_kbps(sd.media[1]), 1140)  # TIAS first
        self.assertEqual(rtcp_feedback(sd.media[1], 96), {"nack pli", "ccm fir", "goog-remb"})

    def test_answer_accepts_video_with_the_offer_payload_type(self) -> None:
        offer = parse_sdp(
            "v=0\r\no=- 1 1 IN IP4 10.0.0.9\r\ns=-\r\nc=IN IP4 10.0.0.9\r\nt=0 0\r\n"
            "m=audio 7000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n"
            "m=video 7002 RTP/AVP 100 96\r\nb=AS:3000\r\na=rtpmap:100 VP8/90000\r\n"
            "a=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=0;profile-level-id=42e01f\r\n"
            "a=rtcp-fb:* ccm fir\r\na=sendrecv\r\n")
        answer = audio_answer(offer, "10.0.0.1", 4000, [Codec("PCMU", 8000, 1, 0)], session_id=2,
                              video=VideoAnswer(Codec("VP8", 90000, 1, 100), 4002, 800))
        video = answer.media[1]
        self.assertEqual((video.kind, video.port, video.formats), ("video", 4002, ["100"]))
        self.assertIn(Bandwidth("AS", 800), video.bandwidths)
        # only the feedback the offer had
        self.assertEqual(rtcp_feedback(video, 100), {"ccm fir"})
        # without a VideoAnswer the video line is rejected, the m-line count kept
        plain = audio_answer(offer, "10.0.0.1", 4000, [Codec("PCMU", 8000, 1, 0)], session_id=2)
        self.assertEqual([(m.kind, m.port) for m in plain.media], [("audio", 4000), ("video", 0)])


class BrowserAnswerTests(unittest.TestCase):
    def answer(self, spec=VideoSpec([Codec("VP8", 90000, 1, 96)], 0x1234, 1500)):
        offer = parse_sdp(CHROME_OFFER)
        return answer_for_browser(offer, Leg(), [OPUS], 0x99, "cn", video=spec)

    def test_video_section_is_bundled_with_audio(self) -> None:
        answer = self.answer()
        text = serialize_sdp(answer)
        self.assertIn("a=group:BUNDLE 0 1\r\n", text)
        audio, video = answer.media
        self.assertEqual((video.kind, video.port, video.formats), ("video", Leg.port, ["96"]))
        self.assertEqual(video.mid, "1")
        self.assertEqual(video.setup, "passive")
        self.assertTrue(video.rtcp_mux)
        self.assertIn("1234 cname:cn".replace("1234", str(0x1234)), video.get_all("ssrc"))
        self.assertEqual(rtcp_feedback(video, 96), {"nack pli", "ccm fir", "goog-remb"})
        self.assertNotIn("96 nack", video.get_all("rtcp-fb"))  # no generic NACK
        self.assertNotIn("96 transport-cc", video.get_all("rtcp-fb"))
        self.assertEqual(bandwidth_kbps(video), 1425)
        self.assertIn("b=AS:1500\r\n", text)
        self.assertFalse(video.has("extmap"))
        # the audio and video numbers never overlap (the call demultiplexes by them)
        self.assertFalse(set(audio.formats) & set(video.formats))
        # one stream for both tracks
        self.assertEqual(audio.get("msid").split()[0], video.get("msid").split()[0])

    def test_h264_answer_keeps_browser_payload_type_and_fmtp(self) -> None:
        spec = VideoSpec([video_answer_codec(h264(102, plid="42001f"), h264(0, plid="42e01f"))],
                         7, 1000)
        video = self.answer(spec).media[1]
        self.assertEqual(video.formats, ["102"])
        self.assertEqual(video.codecs()[0].fmtp,
                         "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f")

    def test_without_a_spec_video_is_rejected(self) -> None:
        answer = answer_for_browser(parse_sdp(CHROME_OFFER), Leg(), [OPUS], 0x99, "cn")
        self.assertEqual(answer.media[1].port, 0)
        self.assertIn("a=group:BUNDLE 0\r\n", serialize_sdp(answer))

    def test_sendonly_browser_video_is_answered_recvonly_without_our_ssrc(self) -> None:
        offer = CHROME_OFFER.replace("a=mid:1\r\n", "a=mid:1\r\n", 1)
        parts = offer.split("m=video", 1)
        offer = parts[0] + "m=video" + parts[1].replace("a=sendrecv", "a=sendonly", 1)
        answer = answer_for_browser(parse_sdp(offer), Leg(), [OPUS], 0x99, "cn",
                                    video=VideoSpec([Codec("VP8", 90000, 1, 96)], 5))
        video = answer.media[1]
        self.assertEqual(video.direction, "recvonly")
        self.assertEqual(video.get_all("ssrc"), [])


class BrowserOfferTests(unittest.TestCase):
    def test_offer_with_video_and_the_chromium_style_answer(self) -> None:
        sip_formats = [Codec("VP8", 90000, 1, None), h264(None, "0", "42e01f", lasym=False)]
        offer = offer_for_browser(Leg(), [OPUS, Codec("telephone-event", 48000, 1, None)], 1,
                                  "cn", video=VideoSpec(sip_formats, 77, 900))
        text = serialize_sdp(offer)
        self.assertIn("a=group:BUNDLE 0 1\r\n", text)
        video = offer.media[1]
        self.assertEqual(video.formats, ["96", "102"])
        self.assertEqual(video.setup, "actpass")
        self.assertEqual(rtcp_feedback(video, 102), {"nack pli", "ccm fir", "goog-remb"})
        self.assertIn("b=AS:900\r\n", text)
        # a Chromium-style answer keeping H.264 only
        answer_text = (
            "v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n"
            "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n"
            "a=ice-ufrag:abcd\r\na=ice-pwd:" + "q" * 24 + "\r\na=fingerprint:sha-256 "
            + "01:" * 31 + "02\r\na=setup:active\r\na=sendrecv\r\na=rtcp-mux\r\n"
            "a=rtpmap:111 opus/48000/2\r\n"
            "m=video 9 UDP/TLS/RTP/SAVPF 102\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=sendrecv\r\n"
            "a=rtcp-mux\r\na=rtpmap:102 H264/90000\r\na=rtcp-fb:102 nack pli\r\n"
            "a=fmtp:102 packetization-mode=0;profile-level-id=42e01f\r\n"
            "a=ssrc:4242 cname:x\r\n")
        parsed = parse_sdp(answer_text)
        self.assertEqual(parse_browser_answer(offer, parsed).codec.name, "opus")
        video_answer = parse_browser_video(offer, parsed)
        self.assertEqual(video_answer.codec.payload_type, 102)
        self.assertEqual(video_answer.ssrc, 4242)
        self.assertEqual(video_answer.feedback, frozenset({"nack pli"}))
        # a rejected video section: audio-only
        rejected = answer_text.replace("m=video 9 ", "m=video 0 ")
        self.assertIsNone(parse_browser_video(offer, parse_sdp(rejected)))

    def test_video_payload_types_avoid_audio_ones(self) -> None:
        audio = [Codec("opus", 48000, 2, 96), Codec("PCMU", 8000, 1, 0)]
        offer = offer_for_browser(Leg(), audio, 1, "cn",
                                  video=VideoSpec([Codec("VP8", 90000, 1, None)], 2))
        self.assertEqual(offer.media[0].formats, ["96", "0"])
        self.assertEqual(offer.media[1].formats, ["102"])

    def test_video_true_without_spec_is_refused(self) -> None:
        self.assertRaises(NotImplementedError, offer_for_browser, Leg(), [OPUS], 1, "cn",
                          video=True)
