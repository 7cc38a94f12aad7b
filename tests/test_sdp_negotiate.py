"""Offer/answer (wcsgw.sdp.negotiate): RFC 3264 §6 directions, codec choice, SIP-side builders."""

from __future__ import annotations

from hypothesis import given, strategies as st
from twisted.trial.unittest import SynchronousTestCase

from tests.test_sdp_parser import BARESIP_OFFER, CHROME_OFFER, HEAD, sdp
from wcsgw.sdp.codecs import (
    CN,
    G722,
    OPUS,
    PCMA,
    PCMU,
    TELEPHONE_EVENT_8000,
    TELEPHONE_EVENT_48000,
    Codec,
    is_auxiliary,
    same_codec,
)
from wcsgw.sdp.errors import SdpNegotiationError
from wcsgw.sdp.model import Attribute, Connection, SessionDescription
from wcsgw.sdp.negotiate import (
    answer_direction,
    audio_answer,
    audio_offer,
    codec_attributes,
    new_session_id,
    select_codecs,
)
from wcsgw.sdp.parser import parse_sdp, serialize_sdp

CHROME_AUDIO = parse_sdp(CHROME_OFFER).media[0].codecs()
BARESIP = parse_sdp(BARESIP_OFFER)


def names(codecs: list[Codec]) -> list[tuple[str, int, int | None]]:
    return [(c.name, c.clock_rate, c.payload_type) for c in codecs]


class Directions(SynchronousTestCase):
    def test_rfc3264_table(self) -> None:
        expected = {
            # offered:   wanted = sendrecv, sendonly, recvonly, inactive
            "sendrecv": ("sendrecv", "sendonly", "recvonly", "inactive"),
            "sendonly": ("recvonly", "inactive", "recvonly", "inactive"),
            "recvonly": ("sendonly", "sendonly", "inactive", "inactive"),
            "inactive": ("inactive", "inactive", "inactive", "inactive"),
        }
        for offered, answers in expected.items():
            for wanted, answer in zip(("sendrecv", "sendonly", "recvonly", "inactive"), answers):
                self.assertEqual(answer_direction(offered, wanted), answer, (offered, wanted))
        self.assertEqual(answer_direction("sendonly"), "recvonly")

    def test_unknown_direction(self) -> None:
        for args in (("SENDRECV",), ("sendrecv", "hold"), ("",)):
            with self.assertRaises(ValueError):
                answer_direction(*args)


class SelectCodecs(SynchronousTestCase):
    def test_chrome_offer_everything_we_speak(self) -> None:
        supported = [PCMU, PCMA, OPUS, TELEPHONE_EVENT_8000, TELEPHONE_EVENT_48000]
        self.assertEqual(
            names(select_codecs(CHROME_AUDIO, supported)),
            [("opus", 48000, 111), ("PCMU", 8000, 0), ("PCMA", 8000, 8),
             ("telephone-event", 48000, 110), ("telephone-event", 8000, 126)],
        )

    def test_telephone_event_only_at_selected_rates(self) -> None:
        both = [TELEPHONE_EVENT_8000, TELEPHONE_EVENT_48000]
        self.assertEqual(names(select_codecs(CHROME_AUDIO, [PCMU, *both])),
                         [("PCMU", 8000, 0), ("telephone-event", 8000, 126)])
        self.assertEqual(names(select_codecs(CHROME_AUDIO, [OPUS, *both])),
                         [("opus", 48000, 111), ("telephone-event", 48000, 110)])
        self.assertEqual(names(select_codecs(CHROME_AUDIO, [PCMU, TELEPHONE_EVENT_48000])),
                         [("PCMU", 8000, 0)])
        # G722's RTP clock is 8000 (RFC 3551), so it takes telephone-event/8000
        self.assertEqual(names(select_codecs(CHROME_AUDIO, [G722, *both]))[-1],
                         ("telephone-event", 8000, 126))

    def test_offerer_order_and_payload_types_and_fmtp_kept(self) -> None:
        chosen = select_codecs(CHROME_AUDIO, [PCMA, PCMU, OPUS.with_payload_type(96)])
        self.assertEqual([c.payload_type for c in chosen], [111, 0, 8])
        self.assertEqual(chosen[0].fmtp, "minptime=10;useinbandfec=1")
        self.assertIs(chosen[0], CHROME_AUDIO[0])

    def test_nothing_or_only_auxiliary_in_common(self) -> None:
        self.assertEqual(select_codecs(CHROME_AUDIO, [Codec("G729", 8000)]), [])
        self.assertEqual(select_codecs(CHROME_AUDIO, [TELEPHONE_EVENT_8000, CN]), [])
        self.assertEqual(select_codecs([], [PCMU]), [])

    def test_comfort_noise_follows_the_rate_rule(self) -> None:
        self.assertEqual(names(select_codecs(CHROME_AUDIO, [PCMU, CN]))[-1], ("CN", 8000, 13))
        self.assertEqual(names(select_codecs(CHROME_AUDIO, [OPUS, CN])), [("opus", 48000, 111)])

    def test_red_and_rtx_only_with_what_they_carry(self) -> None:
        red = Codec("red", 48000, 2)
        self.assertEqual(names(select_codecs(CHROME_AUDIO, [OPUS, red])),
                         [("opus", 48000, 111), ("red", 48000, 63)])
        self.assertEqual(names(select_codecs(CHROME_AUDIO, [PCMU, red])), [("PCMU", 8000, 0)])
        video = parse_sdp(CHROME_OFFER).media[1].codecs()
        rtx = Codec("rtx", 90000)
        self.assertEqual(names(select_codecs(video, [Codec("VP8", 90000), rtx])),
                         [("VP8", 90000, 96), ("rtx", 90000, 97)])
        self.assertEqual(names(select_codecs(video, [Codec("vp8", 90000), Codec("H264", 90000)])),
                         [("VP8", 90000, 96), ("H264", 90000, 102), ("H264", 90000, 104)])

    @given(
        st.lists(st.sampled_from(CHROME_AUDIO + BARESIP.media[0].codecs()), max_size=10),
        st.lists(st.sampled_from([OPUS, PCMU, PCMA, G722, CN, TELEPHONE_EVENT_8000,
                                  TELEPHONE_EVENT_48000, Codec("red", 48000, 2)]), max_size=8),
    )
    def test_properties(self, offered: list[Codec], supported: list[Codec]) -> None:
        chosen = select_codecs(offered, supported)
        # a subsequence of the offer (order and payload types kept) ...
        it = iter(offered)
        self.assertTrue(all(any(c is o for o in it) for c in chosen))
        # ... of codecs we support ...
        self.assertTrue(all(any(same_codec(c, s) for s in supported) for c in chosen))
        primaries = [c for c in chosen if not is_auxiliary(c)]
        # ... never auxiliary formats alone, DTMF/CN only at a primary codec's rate ...
        self.assertEqual(bool(chosen), bool(primaries))
        rates = {c.clock_rate for c in primaries}
        for c in chosen:
            if c.key in ("telephone-event", "cn"):
                self.assertIn(c.clock_rate, rates)
        # ... and every supported primary codec that was offered is there.
        for o in offered:
            if not is_auxiliary(o) and any(same_codec(o, s) for s in supported):
                self.assertIn(o, chosen)


class Offer(SynchronousTestCase):
    def test_audio_offer_text(self) -> None:
        sd = audio_offer("192.0.2.10", 30000, [PCMU, PCMA, OPUS, TELEPHONE_EVENT_8000],
                         session_id=1234, version=1)
        self.assertEqual(serialize_sdp(sd), sdp(
            "v=0",
            "o=- 1234 1 IN IP4 192.0.2.10",
            "s=-",
            "c=IN IP4 192.0.2.10",
            "t=0 0",
            "m=audio 30000 RTP/AVP 0 8 96 97",
            "a=rtpmap:0 PCMU/8000",
            "a=rtpmap:8 PCMA/8000",
            "a=rtpmap:96 opus/48000/2",
            "a=fmtp:96 minptime=10;useinbandfec=1",
            "a=rtpmap:97 telephone-event/8000",
            "a=fmtp:97 0-15",
            "a=ptime:20",
            "a=sendrecv",
        ))
        (m,) = parse_sdp(serialize_sdp(sd)).media
        self.assertEqual([c.name for c in m.codecs()], ["PCMU", "PCMA", "opus", "telephone-event"])

    def test_hold_ipv6_no_ptime_rtcp_mux(self) -> None:
        sd = audio_offer("[2001:db8::7]", 30000, [PCMU.with_payload_type(0)], None, "sendonly",
                         session_id=5, version=2, rtcp_mux=True)
        text = serialize_sdp(sd)
        self.assertIn("o=- 5 2 IN IP6 2001:db8::7\r\n", text)
        self.assertIn("c=IN IP6 2001:db8::7\r\n", text)
        m = sd.media[0]
        self.assertEqual((m.direction, m.ptime, m.rtcp_mux), ("sendonly", None, True))
        self.assertEqual(sd.connection, Connection(address="2001:db8::7"))

    def test_host_name_address(self) -> None:
        sd = audio_offer("gw.example.com", 30000, [PCMU], session_id=1)
        self.assertEqual(sd.connection, Connection(address="gw.example.com", addrtype="IP4"))

    def test_bad_direction_and_codec_attributes_need_payload_types(self) -> None:
        with self.assertRaises(ValueError):
            audio_offer("192.0.2.1", 1, [PCMU], direction="hold", session_id=1)
        with self.assertRaises(ValueError):
            codec_attributes([OPUS])
        self.assertEqual(codec_attributes([PCMU]), [Attribute("rtpmap", "0 PCMU/8000")])

    def test_new_session_id(self) -> None:
        ids = {new_session_id() for _ in range(20)}
        self.assertEqual(len(ids), 20)
        self.assertTrue(all(0 <= i < 2**62 for i in ids))


class Answer(SynchronousTestCase):
    def test_answer_baresip(self) -> None:
        answer = audio_answer(BARESIP, "192.0.2.10", 30002, [PCMA, PCMU, TELEPHONE_EVENT_8000],
                              session_id=77)
        self.assertEqual(serialize_sdp(answer), sdp(
            "v=0",
            "o=- 77 0 IN IP4 192.0.2.10",
            "s=-",
            "c=IN IP4 192.0.2.10",
            "t=0 0",
            "m=audio 30002 RTP/AVP 0 8 101",
            "a=rtpmap:0 PCMU/8000",
            "a=rtpmap:8 PCMA/8000",
            "a=rtpmap:101 telephone-event/8000",
            "a=fmtp:101 0-15",
            "a=ptime:20",
            "a=sendrecv",
        ))

    def test_hold_offer_answered_recvonly(self) -> None:
        held = parse_sdp(BARESIP_OFFER.replace(b"a=sendrecv", b"a=sendonly"))
        answer = audio_answer(held, "192.0.2.10", 30002, [PCMU], session_id=1, version=3)
        self.assertEqual(answer.media[0].direction, "recvonly")
        self.assertEqual(answer.origin.session_version, 3)
        session_level = parse_sdp(sdp(*HEAD, "a=inactive", "m=audio 4000 RTP/AVP 0"))
        answer = audio_answer(session_level, "192.0.2.10", 1, [PCMU], direction="sendonly",
                              session_id=1)
        self.assertEqual(answer.media[0].direction, "inactive")

    def test_one_answer_line_per_offer_line(self) -> None:
        offer = parse_sdp(sdp(
            *HEAD,
            "m=audio 4000 RTP/SAVP 0",            # SRTP: not on the SIP side
            "m=video 4002 RTP/AVP 31",
            "m=audio 0 RTP/AVP 8",                # already rejected by the offerer
            "m=audio 4004 RTP/AVP 18",            # G.729: not supported
            "m=audio 4006 RTP/AVPF 96 8", "a=rtpmap:96 opus/48000/2", "a=rtcp-mux",
            "m=audio 4008 RTP/AVP 0",             # a second audio stream: we take one
            "m=image 4010 udptl t38",
        ))
        answer = audio_answer(offer, "192.0.2.10", 30002, [PCMA], session_id=1)
        self.assertEqual(
            [(m.kind, m.port, m.proto, m.formats) for m in answer.media],
            [("audio", 0, "RTP/SAVP", ["0"]), ("video", 0, "RTP/AVP", ["31"]),
             ("audio", 0, "RTP/AVP", ["8"]), ("audio", 0, "RTP/AVP", ["18"]),
             ("audio", 30002, "RTP/AVPF", ["8"]), ("audio", 0, "RTP/AVP", ["0"]),
             ("image", 0, "udptl", ["t38"])],
        )
        self.assertTrue(answer.media[4].rtcp_mux)  # offered, so accepted
        self.assertEqual([m.attributes for m in answer.media if m.port == 0], [[]] * 6)
        self.assertEqual(parse_sdp(serialize_sdp(answer)), answer)

    def test_rtcp_mux_only_when_offered_and_wanted(self) -> None:
        muxed = parse_sdp(BARESIP_OFFER + b"a=rtcp-mux\r\n")
        self.assertTrue(audio_answer(muxed, "h", 1, [PCMU], session_id=1).media[0].rtcp_mux)
        self.assertFalse(audio_answer(muxed, "h", 1, [PCMU], session_id=1,
                                      rtcp_mux=False).media[0].rtcp_mux)
        self.assertFalse(audio_answer(BARESIP, "h", 1, [PCMU], session_id=1).media[0].rtcp_mux)

    def test_fmtp_override(self) -> None:
        answer = audio_answer(BARESIP, "192.0.2.10", 1, [OPUS, TELEPHONE_EVENT_8000],
                              session_id=1,
                              fmtp={"opus": "useinbandfec=1", "telephone-event": None})
        self.assertEqual(answer.media[0].get_all("fmtp"), ["96 useinbandfec=1"])
        # telephone-event/8000 is dropped: the only primary codec, opus, runs at 48000
        self.assertEqual([c.payload_type for c in answer.media[0].codecs()], [96])

    def test_no_common_codecs(self) -> None:
        for offer in (BARESIP, parse_sdp(CHROME_OFFER), parse_sdp(sdp(*HEAD))):
            with self.assertRaises(SdpNegotiationError) as cm:
                audio_answer(offer, "192.0.2.10", 1, [Codec("G729", 8000)], session_id=1)
            self.assertEqual(str(cm.exception), "No common codecs")
            self.assertIsInstance(cm.exception, ValueError)

    @given(st.lists(st.sampled_from([PCMU, PCMA, G722, OPUS, TELEPHONE_EVENT_8000, CN]),
                    min_size=1, unique=True))
    def test_answer_to_our_own_offer(self, ours: list[Codec]) -> None:
        """What we offer, we can answer: the answer takes the offer's numbers and parses back."""
        offer = parse_sdp(serialize_sdp(audio_offer("192.0.2.1", 4000, ours, session_id=1)))
        try:
            answer = audio_answer(offer, "192.0.2.2", 5000, ours, session_id=2)
        except SdpNegotiationError:
            self.assertTrue(all(is_auxiliary(c) for c in ours))
            return
        offered = {c.payload_type: c for c in offer.media[0].codecs()}
        for c in answer.media[0].codecs():
            self.assertTrue(same_codec(c, offered[c.payload_type]))
        self.assertEqual(parse_sdp(serialize_sdp(answer)), answer)
        self.assertIsInstance(answer, SessionDescription)
