"""The SDP answer to a browser (wcsgw.webrtc.sdp), from a real Chromium 156 offer."""

from __future__ import annotations

import attr
from twisted.trial import unittest

from wcsgw.sdp.codecs import OPUS, PCMA, PCMU, TELEPHONE_EVENT_8000, TELEPHONE_EVENT_48000, Codec
from wcsgw.sdp.errors import SdpNegotiationError
from wcsgw.sdp.parser import parse_sdp, serialize_sdp
from wcsgw.webrtc.sdp import (
    answer_direction,
    answer_for_browser,
    browser_transport,
    host_candidate,
)

#: Captured from headless Chromium 156 (tests/peers/chromium.py CALL_PAGE_HTML, audio only).
CHROME_OFFER = """v=0
o=- 3776896265283212789 2 IN IP4 127.0.0.1
s=-
t=0 0
a=group:BUNDLE 0
a=extmap-allow-mixed
a=msid-semantic: WMS ad81af37-bea7-475c-a1f5-810cd6f5b869
m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126
c=IN IP4 0.0.0.0
a=rtcp:9 IN IP4 0.0.0.0
a=ice-ufrag:ihil
a=ice-pwd:EuEpvqmg5jLB7e8yLagxZoWb
a=ice-options:trickle
a=fingerprint:sha-256 A8:22:C8:59:A5:16:C1:F6:78:BD:6A:C9:FB:AF:C3:02:24:56:47:A0:98:50:45:C1:F0:84:C8:E2:9F:1E:51:E8
a=setup:actpass
a=mid:0
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level
a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid
a=sendrecv
a=msid:ad81af37-bea7-475c-a1f5-810cd6f5b869 1739555f-07f5-4382-b0df-dba5b9dbf4d6
a=rtcp-mux
a=rtcp-rsize
a=rtcp-xr:rcvr-rtt=all
a=rtpmap:111 opus/48000/2
a=rtcp-fb:111 transport-cc
a=fmtp:111 minptime=10;useinbandfec=1
a=rtpmap:63 red/48000/2
a=fmtp:63 111/111
a=rtpmap:9 G722/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:13 CN/8000
a=rtpmap:110 telephone-event/48000
a=rtpmap:126 telephone-event/8000
a=ssrc:3565493015 cname:opJaDZOQQQieNOhp
a=ssrc:3565493015 msid:ad81af37-bea7-475c-a1f5-810cd6f5b869 1739555f-07f5-4382-b0df-dba5b9dbf4d6
"""

VIDEO_SECTION = """m=video 9 UDP/TLS/RTP/SAVPF 96 97
c=IN IP4 0.0.0.0
a=ice-ufrag:ihil
a=ice-pwd:EuEpvqmg5jLB7e8yLagxZoWb
a=fingerprint:sha-256 A8:22:C8:59:A5:16:C1:F6:78:BD:6A:C9:FB:AF:C3:02:24:56:47:A0:98:50:45:C1:F0:84:C8:E2:9F:1E:51:E8
a=setup:actpass
a=mid:1
a=sendrecv
a=rtcp-mux
a=rtpmap:96 VP8/90000
a=rtpmap:97 rtx/90000
a=fmtp:97 apt=96
"""


@attr.s(auto_attribs=True)
class FakeLeg:
    host: str = "127.0.0.1"
    port: int = 40000
    ice_ufrag: str = "srvU"
    ice_pwd: str = "serverpasswordserverpw1"
    fingerprint: tuple[str, str] = ("sha-256", ":".join(["AB"] * 32))


def answer(offer_text: str = CHROME_OFFER, codecs=(OPUS, TELEPHONE_EVENT_48000), **kw):
    return answer_for_browser(parse_sdp(offer_text), kw.pop("leg", FakeLeg()), list(codecs),
                              0x1234ABCD, "wcsgwcname", **kw)


class AnswerContentTests(unittest.TestCase):
    def test_everything_chrome_needs(self) -> None:
        sd = answer(stream_id="s1", track_id="t1")
        self.assertTrue(sd.ice_lite)
        self.assertEqual(sd.groups("BUNDLE"), [["0"]])
        self.assertEqual(sd.get("msid-semantic").split(), ["WMS", "s1"])
        self.assertEqual(len(sd.media), 1)
        m = sd.media[0]
        self.assertEqual((m.kind, m.port, m.proto), ("audio", 40000, "UDP/TLS/RTP/SAVPF"))
        self.assertEqual(sd.connection_for(m).address, "127.0.0.1")
        self.assertEqual(m.mid, "0")
        self.assertEqual(m.ice_ufrag, "srvU")
        self.assertEqual(m.ice_pwd, "serverpasswordserverpw1")
        self.assertEqual(m.fingerprint, ("sha-256", ":".join(["AB"] * 32)))
        self.assertEqual(m.setup, "passive")
        self.assertTrue(m.rtcp_mux)
        self.assertEqual(m.direction, "sendrecv")
        self.assertEqual(m.ptime, 20)
        self.assertEqual(m.get("msid"), "s1 t1")
        self.assertEqual(m.get_all("ssrc"), ["305441741 cname:wcsgwcname", "305441741 msid:s1 t1"])
        self.assertEqual(m.candidates, ["1 1 udp 2130706431 127.0.0.1 40000 typ host"])
        self.assertTrue(m.has("end-of-candidates"))
        # What we do not implement is not answered.
        for absent in ("extmap", "rtcp-fb", "rtcp-rsize", "ice-options", "extmap-allow-mixed"):
            self.assertFalse(m.has(absent) or sd.has(absent), absent)

    def test_codecs_keep_the_offers_payload_types_in_our_order(self) -> None:
        m = answer(codecs=(PCMU, OPUS, TELEPHONE_EVENT_8000)).media[0]
        self.assertEqual(m.formats, ["0", "111", "126"])
        self.assertEqual([(c.name, c.payload_type) for c in m.codecs()],
                         [("PCMU", 0), ("opus", 111), ("telephone-event", 126)])
        opus = m.codecs()[1]
        self.assertEqual((opus.clock_rate, opus.channels), (48000, 2))
        self.assertEqual(opus.fmtp, OPUS.fmtp)
        self.assertEqual(m.codecs()[2].fmtp, "0-15")

    def test_offers_fmtp_kept_when_we_give_none(self) -> None:
        m = answer(codecs=(Codec("opus", 48000, 2),)).media[0]
        self.assertEqual(m.codecs()[0].fmtp, "minptime=10;useinbandfec=1")

    def test_codecs_not_offered_are_left_out(self) -> None:
        m = answer(codecs=(Codec("G729", 8000, payload_type=18), PCMA)).media[0]
        self.assertEqual(m.formats, ["8"])

    def test_no_common_codec(self) -> None:
        with self.assertRaises(SdpNegotiationError) as cm:
            answer(codecs=(Codec("G729", 8000, payload_type=18),))
        self.assertIn("No common codecs", str(cm.exception))

    def test_only_telephone_event_is_no_common_codec(self) -> None:
        self.assertRaises(SdpNegotiationError, answer, codecs=(TELEPHONE_EVENT_8000,))

    def test_round_trips_through_the_serializer(self) -> None:
        sd = answer()
        text = serialize_sdp(sd)
        self.assertTrue(text.startswith("v=0\r\no=- "))
        self.assertIn("\r\na=ice-lite\r\n", text)
        self.assertIn("\r\na=setup:passive\r\n", text)
        self.assertEqual(serialize_sdp(parse_sdp(text)), text)

    def test_video_answered_with_port_zero_and_left_out_of_bundle(self) -> None:
        offer = CHROME_OFFER.replace("a=group:BUNDLE 0", "a=group:BUNDLE 0 1") + VIDEO_SECTION
        sd = answer(offer)
        self.assertEqual([(m.kind, m.port) for m in sd.media], [("audio", 40000), ("video", 0)])
        video = sd.media[1]
        self.assertEqual(video.mid, "1")
        self.assertEqual(video.formats, ["96", "97"])
        self.assertTrue(video.rejected)
        self.assertEqual(sd.groups("BUNDLE"), [["0"]])
        parse_sdp(serialize_sdp(sd))  # still a valid description

    def test_video_first_still_answers_audio_in_place(self) -> None:
        head, audio = CHROME_OFFER.split("m=audio", 1)
        offer = head.replace("a=group:BUNDLE 0", "a=group:BUNDLE 1 0") + VIDEO_SECTION + "m=audio" + audio
        sd = answer(offer)
        self.assertEqual([(m.kind, m.port, m.mid) for m in sd.media],
                         [("video", 0, "1"), ("audio", 40000, "0")])

    def test_sendonly_offer_gets_recvonly_without_our_ssrc(self) -> None:
        sd = answer(CHROME_OFFER.replace("a=sendrecv", "a=sendonly"))
        m = sd.media[0]
        self.assertEqual(m.direction, "recvonly")
        self.assertEqual(m.get_all("ssrc"), [])
        self.assertFalse(m.has("msid"))

    def test_ipv6_host(self) -> None:
        sd = answer(leg=FakeLeg(host="::1"))
        self.assertEqual(sd.connection.addrtype, "IP6")
        self.assertEqual(sd.media[0].candidates, ["1 1 udp 2130706431 ::1 40000 typ host"])

    def test_answer_direction(self) -> None:
        self.assertEqual([answer_direction(d) for d in ("sendrecv", "sendonly", "recvonly", "inactive")],
                         ["sendrecv", "recvonly", "sendonly", "inactive"])

    def test_host_candidate_priority(self) -> None:
        # RFC 8445 §5.1.2.1: (2^24)*126 + (2^8)*65535 + (256 - 1)
        self.assertEqual(host_candidate("192.0.2.1", 5000).split()[3], str(2**24 * 126 + 2**8 * 65535 + 255))


class BrowserTransportTests(unittest.TestCase):
    def test_from_chrome_offer(self) -> None:
        t = browser_transport(parse_sdp(CHROME_OFFER))
        self.assertEqual(t.ice_ufrag, "ihil")
        self.assertEqual(t.ice_pwd, "EuEpvqmg5jLB7e8yLagxZoWb")
        self.assertEqual(t.fingerprint[0], "sha-256")
        self.assertTrue(t.fingerprint[1].startswith("A8:22"))
        self.assertEqual(t.mid, "0")

    def test_session_level_values_firefox_style(self) -> None:
        lines = CHROME_OFFER.splitlines()
        moved = [x for x in lines if x.startswith(("a=ice-ufrag", "a=ice-pwd", "a=fingerprint"))]
        rest = [x for x in lines if x not in moved]
        at = rest.index("a=group:BUNDLE 0")
        text = "\n".join(rest[: at + 1] + moved + rest[at + 1:]) + "\n"
        t = browser_transport(parse_sdp(text))
        self.assertEqual((t.ice_ufrag, t.fingerprint[1][:5]), ("ihil", "A8:22"))

    def test_refusals(self) -> None:
        for old, new in [
            ("a=rtcp-mux\n", ""),
            ("a=setup:actpass", "a=setup:passive"),
            ("a=ice-ufrag:ihil\n", ""),
            ("a=fingerprint:sha-256", "a=x-fingerprint:sha-256"),
            ("m=audio 9", "m=audio 0"),
        ]:
            with self.assertRaises(SdpNegotiationError, msg=old):
                browser_transport(parse_sdp(CHROME_OFFER.replace(old, new)))

    def test_active_browser_accepted(self) -> None:
        browser_transport(parse_sdp(CHROME_OFFER.replace("a=setup:actpass", "a=setup:active")))
