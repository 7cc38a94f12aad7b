"""The gateway's WebRTC offer (offer_for_browser) and the browser's answer to it
(parse_browser_answer), for calls toward the browser.  Real-browser test:
tests/test_webrtc_offer_chromium.py."""

from __future__ import annotations

import attr
from twisted.trial import unittest

from wcsgw.sdp.codecs import (
    G722,
    OPUS,
    PCMA,
    PCMU,
    TELEPHONE_EVENT_8000,
    TELEPHONE_EVENT_48000,
    Codec,
)
from wcsgw.sdp.errors import SdpNegotiationError
from wcsgw.sdp.parser import parse_sdp, serialize_sdp
from wcsgw.webrtc.offer import offer_for_browser, offer_payload_types, parse_browser_answer

FINGERPRINT = ":".join(["AB"] * 32)


@attr.s(auto_attribs=True)
class FakeLeg:
    host: str = "127.0.0.1"
    port: int = 40000
    ice_ufrag: str = "srvU"
    ice_pwd: str = "serverpasswordserverpw1"
    fingerprint: tuple[str, str] = ("sha-256", FINGERPRINT)


#: The codec list the Chromium test offers, and what the offer numbers them.
CODECS = (PCMU, OPUS, TELEPHONE_EVENT_8000, TELEPHONE_EVENT_48000)


def offer(codecs=CODECS, leg=None, **kw):
    kw.setdefault("session_id", 4242)
    kw.setdefault("stream_id", "s1")
    kw.setdefault("track_id", "t1")
    return offer_for_browser(leg or FakeLeg(), list(codecs), 0x1234ABCD, "wcsgwcname", **kw)


EXPECTED_OFFER = "\r\n".join([
    "v=0",
    "o=- 4242 1 IN IP4 127.0.0.1",
    "s=-",
    "c=IN IP4 127.0.0.1",
    "t=0 0",
    "a=ice-lite",
    "a=group:BUNDLE 0",
    "a=msid-semantic: WMS s1",
    "m=audio 40000 UDP/TLS/RTP/SAVPF 0 111 126 110",
    "c=IN IP4 127.0.0.1",
    "a=mid:0",
    "a=ice-ufrag:srvU",
    "a=ice-pwd:serverpasswordserverpw1",
    f"a=fingerprint:sha-256 {FINGERPRINT}",
    "a=setup:actpass",
    "a=sendrecv",
    "a=msid:s1 t1",
    "a=rtcp-mux",
    "a=rtcp-rsize",
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:111 opus/48000/2",
    "a=fmtp:111 minptime=10;useinbandfec=1",
    "a=rtpmap:126 telephone-event/8000",
    "a=fmtp:126 0-15",
    "a=rtpmap:110 telephone-event/48000",
    "a=fmtp:110 0-15",
    "a=ptime:20",
    "a=ssrc:305441741 cname:wcsgwcname",
    "a=ssrc:305441741 msid:s1 t1",
    "a=candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host",
    "a=end-of-candidates",
    "",
])

#: Headless Chromium 156's answer to the offer of CODECS (PCMU first), captured from
#: tests/test_webrtc_offer_chromium.py.
CHROME_ANSWER = """v=0
o=- 2310608837000554899 2 IN IP4 127.0.0.1
s=-
t=0 0
a=group:BUNDLE 0
a=msid-semantic: WMS 2b35f287-602f-4a7c-b33d-fa72307f0d96
m=audio 9 UDP/TLS/RTP/SAVPF 0 111 126 110
c=IN IP4 0.0.0.0
a=rtcp:9 IN IP4 0.0.0.0
a=ice-ufrag:EoVV
a=ice-pwd:geDFoHwWYVBocDzlkM2wvO60
a=ice-options:trickle
a=fingerprint:sha-256 F5:E5:A9:BB:5B:4B:FA:D3:91:CD:FD:35:A8:13:65:3A:F3:46:95:C1:07:F0:5A:29:E3:B3:FA:B4:1A:C8:2A:93
a=setup:active
a=mid:0
a=sendrecv
a=msid:2b35f287-602f-4a7c-b33d-fa72307f0d96 b42256f6-9eab-48b3-b56f-079aa69e320e
a=rtcp-mux
a=rtcp-rsize
a=rtpmap:0 PCMU/8000
a=rtpmap:111 opus/48000/2
a=fmtp:111 minptime=10;useinbandfec=1
a=rtpmap:126 telephone-event/8000
a=rtpmap:110 telephone-event/48000
a=ssrc:877105215 cname:Msj65dg0SjXY7vWG
"""

CHROME_FINGERPRINT = ("sha-256", "F5:E5:A9:BB:5B:4B:FA:D3:91:CD:FD:35:A8:13:65:3A:F3:46:95:C1:"
                      "07:F0:5A:29:E3:B3:FA:B4:1A:C8:2A:93")

#: Firefox's layout (written by hand after Firefox's format, not captured): fingerprint and
#: ice-options at session level, ufrag/pwd per m-section, no a=rtcp, extmap kept.
FIREFOX_ANSWER = """v=0
o=mozilla...THIS_IS_SDPARTA-99.0 6107429364564151213 0 IN IP4 0.0.0.0
s=-
t=0 0
a=fingerprint:sha-256 11:22:33:44:55:66:77:88:99:00:AA:BB:CC:DD:EE:FF:11:22:33:44:55:66:77:88:99:00:AA:BB:CC:DD:EE:FF
a=group:BUNDLE 0
a=ice-options:trickle
a=msid-semantic:WMS *
m=audio 9 UDP/TLS/RTP/SAVPF 111 0 110
c=IN IP4 0.0.0.0
a=sendrecv
a=fmtp:111 maxplaybackrate=48000;stereo=1;useinbandfec=1
a=fmtp:110 0-15
a=ice-pwd:0bcb7bd9d28a9ad4e49d2a9f2ec9b1a5
a=ice-ufrag:4a1f2ef3
a=mid:0
a=msid:{c2e1c2a1-0c4c-4b47-9f2f-0d6d4b5f3e11} {5b3b0c61-8e7a-4b8e-a1b8-a7d0b1f3a9c2}
a=rtcp-mux
a=rtpmap:111 opus/48000/2
a=rtpmap:0 PCMU/8000
a=rtpmap:110 telephone-event/48000
a=setup:active
a=ssrc:2771563110 cname:{0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d}
"""


def parse(answer_text: str = CHROME_ANSWER, codecs=CODECS):
    return parse_browser_answer(offer(codecs), parse_sdp(answer_text))


class OfferContentTests(unittest.TestCase):
    def test_exact_text(self) -> None:
        self.assertEqual(serialize_sdp(offer()), EXPECTED_OFFER)

    def test_what_a_browser_needs_from_a_lite_server(self) -> None:
        sd = parse_sdp(serialize_sdp(offer()))
        self.assertTrue(sd.ice_lite)
        self.assertEqual(sd.groups("BUNDLE"), [["0"]])
        [m] = sd.media
        self.assertEqual((m.kind, m.port, m.proto, m.mid),
                         ("audio", 40000, "UDP/TLS/RTP/SAVPF", "0"))
        self.assertEqual((m.ice_ufrag, m.ice_pwd), ("srvU", "serverpasswordserverpw1"))
        self.assertEqual(m.fingerprint, ("sha-256", FINGERPRINT))
        self.assertEqual(m.setup, "actpass")  # RFC 5763 §5: an offerer says actpass
        self.assertTrue(m.rtcp_mux and m.has("rtcp-rsize"))
        self.assertEqual(m.direction, "sendrecv")
        self.assertEqual(m.ptime, 20)
        self.assertEqual(m.candidates, ["1 1 udp 2130706431 127.0.0.1 40000 typ host"])
        self.assertTrue(m.has("end-of-candidates"))
        for absent in ("extmap", "rtcp-fb", "ice-options"):
            self.assertFalse(m.has(absent) or sd.has(absent), absent)

    def test_codecs_in_the_given_order_with_their_numbers(self) -> None:
        m = offer().media[0]
        self.assertEqual(
            [(c.name, c.clock_rate, c.channels, c.payload_type, c.fmtp) for c in m.codecs()],
            [("PCMU", 8000, 1, 0, None),
             ("opus", 48000, 2, 111, "minptime=10;useinbandfec=1"),
             ("telephone-event", 8000, 1, 126, "0-15"),
             ("telephone-event", 48000, 1, 110, "0-15")],
        )

    def test_ids_are_fresh_unless_given(self) -> None:
        a, b = (offer_for_browser(FakeLeg(), list(CODECS), 1, "c") for _ in range(2))
        self.assertNotEqual(a.origin.session_id, b.origin.session_id)
        self.assertNotEqual(a.media[0].get("msid"), b.media[0].get("msid"))
        self.assertEqual(a.get("msid-semantic").split()[1], a.media[0].get("msid").split()[0])

    def test_ipv6_leg(self) -> None:
        sd = offer(leg=FakeLeg(host="::1", port=50002))
        self.assertEqual((sd.connection.addrtype, sd.origin.addrtype), ("IP6", "IP6"))
        self.assertEqual(sd.media[0].candidates, ["1 1 udp 2130706431 ::1 50002 typ host"])

    def test_only_auxiliary_codecs_is_refused(self) -> None:
        for codecs in ([], [TELEPHONE_EVENT_8000], [Codec("CN", 8000, payload_type=13)]):
            with self.assertRaises(SdpNegotiationError, msg=repr(codecs)) as cm:
                offer(codecs)
            self.assertIn("No common codecs", str(cm.exception))

    def test_video_is_not_offered_yet(self) -> None:
        self.assertRaises(NotImplementedError, offer, video=True)


class OfferPayloadTypeTests(unittest.TestCase):
    def numbers(self, codecs) -> list[tuple[str, int]]:
        return [(c.rtpmap, c.payload_type) for c in offer_payload_types(codecs)]

    def test_browser_numbers_statics_then_from_96(self) -> None:
        speex = Codec("speex", 16000)
        self.assertEqual(
            self.numbers([OPUS, speex, PCMA, G722, TELEPHONE_EVENT_48000, TELEPHONE_EVENT_8000,
                          Codec("PCMU", 8000)]),
            [("opus/48000/2", 111), ("speex/16000", 96), ("PCMA/8000", 8), ("G722/8000", 9),
             ("telephone-event/48000", 110), ("telephone-event/8000", 126), ("PCMU/8000", 0)],
        )

    def test_a_given_number_is_kept_and_wins_over_ours(self) -> None:
        self.assertEqual(
            self.numbers([OPUS.with_payload_type(107),
                          Codec("telephone-event", 8000, payload_type=111),
                          TELEPHONE_EVENT_48000]),
            [("opus/48000/2", 107), ("telephone-event/8000", 111), ("telephone-event/48000", 110)],
        )
        self.assertEqual(self.numbers([Codec("speex", 8000, payload_type=111), OPUS]),
                         [("speex/8000", 111), ("opus/48000/2", 96)])

    def test_opus_gets_fec_fmtp_unless_it_has_one(self) -> None:
        bare = offer_payload_types([Codec("opus", 48000, 2)])
        own = offer_payload_types([Codec("opus", 48000, 2, fmtp="useinbandfec=0")])
        self.assertEqual(bare[0].fmtp, "minptime=10;useinbandfec=1")
        self.assertEqual(own[0].fmtp, "useinbandfec=0")

    def test_duplicates_kept_once_at_first_place(self) -> None:
        codecs = [PCMU, OPUS, Codec("pcmu", 8000), OPUS.with_payload_type(120)]
        self.assertEqual(self.numbers(codecs), [("PCMU/8000", 0), ("opus/48000/2", 111)])

    def test_two_codecs_claiming_one_number(self) -> None:
        self.assertRaises(ValueError, offer_payload_types,
                          [PCMU, Codec("speex", 8000, payload_type=0)])


class ChromiumAnswerTests(unittest.TestCase):
    def test_captured_answer(self) -> None:
        a = parse()
        self.assertEqual((a.ice_ufrag, a.ice_pwd), ("EoVV", "geDFoHwWYVBocDzlkM2wvO60"))
        self.assertEqual(a.fingerprint, CHROME_FINGERPRINT)
        self.assertEqual((a.setup, a.mid, a.direction, a.ssrc),
                         ("active", "0", "sendrecv", 877105215))
        self.assertEqual(a.codecs, [PCMU, OPUS.with_payload_type(111)])
        self.assertEqual(a.codec, PCMU)
        # telephone-event at the rate of the codec the browser sends; its answer has no fmtp.
        self.assertEqual(a.telephone_event, Codec("telephone-event", 8000, payload_type=126))

    def test_answer_order_decides_and_telephone_event_follows_the_rate(self) -> None:
        codecs = (OPUS, PCMU, TELEPHONE_EVENT_48000, TELEPHONE_EVENT_8000)
        text = CHROME_ANSWER.replace(" 0 111 126 110", " 111 0 110 126")
        a = parse(text, codecs)
        self.assertEqual([c.name for c in a.codecs], ["opus", "PCMU"])
        te = a.telephone_event
        self.assertEqual((te.clock_rate, te.payload_type), (48000, 110))

    def test_no_telephone_event_at_the_senders_rate(self) -> None:
        text = CHROME_ANSWER.replace(" 0 111 126 110", " 0 111 110")
        self.assertIsNone(parse(text).telephone_event)

    def test_recvonly_browser_without_microphone(self) -> None:
        text = CHROME_ANSWER.replace("a=sendrecv", "a=recvonly")
        text = "\n".join(x for x in text.splitlines() if not x.startswith(("a=ssrc", "a=msid:")))
        a = parse(text + "\n")
        self.assertEqual((a.direction, a.ssrc), ("recvonly", None))

    def test_formats_we_did_not_offer_are_ignored(self) -> None:
        # G722 was not offered; PT 111 reused for another codec is not our opus either.
        text = CHROME_ANSWER.replace(" 0 111 126 110", " 9 111 0").replace(
            "a=rtpmap:111 opus/48000/2", "a=rtpmap:111 ISAC/16000")
        a = parse(text)
        self.assertEqual(a.codecs, [PCMU])

    def test_sha256_preferred_among_fingerprints(self) -> None:
        text = CHROME_ANSWER.replace(
            "a=fingerprint:sha-256", "a=fingerprint:sha-512 00:11\na=fingerprint:sha-256")
        self.assertEqual(parse(text).fingerprint, CHROME_FINGERPRINT)

    def test_firefox_layout(self) -> None:
        codecs = (OPUS, PCMU, TELEPHONE_EVENT_48000)
        a = parse(FIREFOX_ANSWER, codecs)
        self.assertEqual((a.ice_ufrag, a.ice_pwd), ("4a1f2ef3", "0bcb7bd9d28a9ad4e49d2a9f2ec9b1a5"))
        self.assertEqual(a.fingerprint[0], "sha-256")
        self.assertTrue(a.fingerprint[1].startswith("11:22:33"))
        self.assertEqual(a.codec.payload_type, 111)
        self.assertEqual(a.codec.fmtp, "maxplaybackrate=48000;stereo=1;useinbandfec=1")
        self.assertEqual(a.telephone_event.payload_type, 110)
        self.assertEqual(a.ssrc, 2771563110)


class RefusalTests(unittest.TestCase):
    def assert_refused(self, old: str, new: str, reason: str, codecs=CODECS) -> None:
        self.assertIn(old, CHROME_ANSWER)
        with self.assertRaises(SdpNegotiationError) as cm:
            parse(CHROME_ANSWER.replace(old, new), codecs)
        self.assertIn(reason, str(cm.exception))

    def test_setup_passive(self) -> None:
        self.assert_refused("a=setup:active", "a=setup:passive",
                            "a=setup:passive; the browser must be active")

    def test_setup_actpass(self) -> None:
        self.assert_refused("a=setup:active", "a=setup:actpass", "a=setup:actpass")

    def test_setup_missing_means_passive(self) -> None:
        self.assert_refused("a=setup:active\n", "", "no a=setup (passive by RFC 4145)")

    def test_no_fingerprint(self) -> None:
        self.assert_refused("a=fingerprint:", "a=x-fingerprint:", "no DTLS fingerprint")

    def test_no_ice_credentials(self) -> None:
        self.assert_refused("a=ice-pwd:geDFoHwWYVBocDzlkM2wvO60\n", "", "no ICE credentials")
        self.assert_refused("a=ice-ufrag:EoVV\n", "", "no ICE credentials")

    def test_rejected_audio(self) -> None:
        self.assert_refused("m=audio 9", "m=audio 0", "rejected the audio stream")

    def test_no_audio_codec_kept(self) -> None:
        self.assert_refused(" 0 111 126 110", " 126 110", "No common codecs")

    def test_no_rtcp_mux(self) -> None:
        self.assert_refused("a=rtcp-mux\n", "", "rtcp-mux")

    def test_ice_lite_browser(self) -> None:
        self.assert_refused("t=0 0\n", "t=0 0\na=ice-lite\n", "ice-lite")

    def test_other_mid(self) -> None:
        self.assert_refused("a=mid:0", "a=mid:1", "mid '1'")

    def test_other_number_of_m_sections(self) -> None:
        extra = "m=video 0 UDP/TLS/RTP/SAVPF 96\nc=IN IP4 0.0.0.0\na=mid:1\n"
        with self.assertRaises(SdpNegotiationError) as cm:
            parse(CHROME_ANSWER + extra)
        self.assertIn("2 m-sections for the 1 offered", str(cm.exception))

    def test_video_where_audio_was_offered(self) -> None:
        self.assert_refused("m=audio 9", "m=video 9", "m=video where we offered audio")
