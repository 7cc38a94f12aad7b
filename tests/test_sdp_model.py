"""SDP model and codec catalogue (wcsgw.sdp.model, wcsgw.sdp.codecs): the helpers callers use."""

from __future__ import annotations

from hypothesis import given, strategies as st
from twisted.trial.unittest import SynchronousTestCase

from tests.test_sdp_parser import BARESIP_OFFER, CHROME_OFFER, FIREFOX_OFFER, HEAD, sdp
from wcsgw.sdp import codecs as catalogue
from wcsgw.sdp.codecs import (
    STATIC_PAYLOAD_TYPES,
    Codec,
    assign_payload_types,
    is_auxiliary,
    parse_fmtp,
    parse_rtpmap,
    primary_codec,
    same_codec,
)
from wcsgw.sdp.model import Attribute, Connection, MediaDescription, Origin, SessionDescription
from wcsgw.sdp.parser import parse_sdp


def audio(*lines: str, formats: str = "0") -> MediaDescription:
    """The first m-section of a description with ``m=audio 4000 RTP/AVP <formats>`` + lines."""
    return parse_sdp(sdp(*HEAD, f"m=audio 4000 RTP/AVP {formats}", *lines)).media[0]


class Codecs(SynchronousTestCase):
    def test_static_payload_types_without_rtpmap(self) -> None:
        m = audio(formats="0 8 9 18 13 3 4")
        self.assertEqual(
            [(c.name, c.clock_rate, c.channels, c.payload_type) for c in m.codecs()],
            [("PCMU", 8000, 1, 0), ("PCMA", 8000, 1, 8), ("G722", 8000, 1, 9),
             ("G729", 8000, 1, 18), ("CN", 8000, 1, 13), ("GSM", 8000, 1, 3),
             ("G723", 8000, 1, 4)],
        )

    def test_static_table(self) -> None:
        for pt, codec in STATIC_PAYLOAD_TYPES.items():
            self.assertEqual(codec.payload_type, pt)
        self.assertEqual(STATIC_PAYLOAD_TYPES[10], Codec("L16", 44100, 2, 10))
        self.assertEqual(STATIC_PAYLOAD_TYPES[34], Codec("H263", 90000, 1, 34))
        self.assertNotIn(2, STATIC_PAYLOAD_TYPES)  # G721 was withdrawn

    def test_dynamic_payload_types_via_rtpmap_with_fmtp(self) -> None:
        m = audio("a=rtpmap:111 opus/48000/2", "a=fmtp:111 minptime=10;useinbandfec=1",
                  "a=rtpmap:101 telephone-event/8000", formats="111 101")
        opus, te = m.codecs()
        self.assertEqual(opus, Codec("opus", 48000, 2, 111, "minptime=10;useinbandfec=1"))
        self.assertEqual(opus.fmtp_params, {"minptime": "10", "useinbandfec": "1"})
        self.assertEqual(te, Codec("telephone-event", 8000, 1, 101, None))

    def test_channels_default_to_one(self) -> None:
        (c,) = audio("a=rtpmap:96 L16/16000", formats="96").codecs()
        self.assertEqual(c.channels, 1)
        self.assertEqual(c.rtpmap, "L16/16000")
        self.assertEqual(Codec("opus", 48000, 2).rtpmap, "opus/48000/2")

    def test_rtpmap_overrides_static_table(self) -> None:
        """A (non-conforming but seen) remapping of a static number is honoured."""
        (c,) = audio("a=rtpmap:8 PCMU/8000", formats="8").codecs()
        self.assertEqual((c.name, c.payload_type), ("PCMU", 8))

    def test_unresolvable_formats_are_left_out(self) -> None:
        m = audio("a=rtpmap:97 broken", "a=rtpmap:98 x/abc", "a=rtpmap:300 y/8000",
                  "a=rtpmap:0 PCMU/8000", formats="96 97 98 0 abc 1000")
        self.assertEqual([c.payload_type for c in m.codecs()], [0])

    def test_first_rtpmap_and_fmtp_win_and_fmtp_without_params(self) -> None:
        m = audio("a=rtpmap:96 opus/48000/2", "a=rtpmap:96 speex/8000",
                  "a=fmtp:96", "a=fmtp:96 a=1", formats="96")
        self.assertEqual(m.codecs(), [Codec("opus", 48000, 2, 96, None)])

    def test_rtpmap_tolerates_whitespace(self) -> None:
        m = audio("a=rtpmap:96  opus/48000/2 ", formats="96")
        self.assertEqual(m.codecs()[0].rtpmap, "opus/48000/2")

    def test_non_rtp_media_has_no_codecs(self) -> None:
        sd = parse_sdp(sdp(*HEAD, "m=image 4000 udptl t38", "m=audio 4000 RTP/SAVP 0"))
        self.assertEqual(sd.media[0].codecs(), [])
        self.assertEqual(sd.media[1].codecs(), [catalogue.PCMU])

    def test_parse_rtpmap(self) -> None:
        self.assertEqual(parse_rtpmap("111 opus/48000/2"), Codec("opus", 48000, 2, 111))
        self.assertEqual(parse_rtpmap("9 G722/8000/1"), Codec("G722", 8000, 1, 9))
        for bad in ("", "111", "111 opus", "x opus/48000", "128 a/8000", "1 a/8000/x", "1 a/b/8000"):
            self.assertIsNone(parse_rtpmap(bad), bad)

    def test_parse_fmtp(self) -> None:
        self.assertEqual(parse_fmtp(None), {})
        self.assertEqual(parse_fmtp("0-15"), {"0-15": None})
        self.assertEqual(
            parse_fmtp(" Stereo=1; useinbandfec = 1;;stereo=0"), {"stereo": "1", "useinbandfec": "1"}
        )
        self.assertEqual(parse_fmtp("apt=96")["apt"], "96")

    def test_same_codec(self) -> None:
        self.assertTrue(same_codec(Codec("OPUS", 48000, 2, 111, "x"), catalogue.OPUS))
        self.assertTrue(same_codec(Codec("pcmu", 8000, 1, 0), catalogue.PCMU))
        self.assertFalse(same_codec(Codec("opus", 48000, 1), catalogue.OPUS))
        self.assertFalse(same_codec(catalogue.PCMU, catalogue.PCMA))
        self.assertTrue(same_codec(Codec("telephone-event", 8000, 1, 126), catalogue.TELEPHONE_EVENT_8000))
        self.assertFalse(same_codec(catalogue.TELEPHONE_EVENT_48000, catalogue.TELEPHONE_EVENT_8000))

    def test_auxiliary_and_primary(self) -> None:
        chrome = parse_sdp(CHROME_OFFER).media[0].codecs()
        self.assertEqual([c.name for c in chrome if is_auxiliary(c)],
                         ["red", "CN", "telephone-event", "telephone-event"])
        self.assertEqual(primary_codec(chrome).name, "opus")
        self.assertEqual(primary_codec(chrome[1:]).name, "G722")
        self.assertIsNone(primary_codec([catalogue.TELEPHONE_EVENT_8000, catalogue.CN]))

    def test_assign_payload_types(self) -> None:
        assigned = assign_payload_types([
            catalogue.OPUS, catalogue.PCMA, Codec("PCMU", 8000), catalogue.TELEPHONE_EVENT_48000,
            catalogue.TELEPHONE_EVENT_8000, Codec("G722", 8000, payload_type=96),
        ])
        self.assertEqual([c.payload_type for c in assigned], [97, 8, 0, 98, 99, 96])
        self.assertEqual(assigned[0].fmtp, catalogue.OPUS.fmtp)
        with self.assertRaises(ValueError):
            assign_payload_types([catalogue.PCMU, Codec("x", 8000, payload_type=0)])
        with self.assertRaises(ValueError):
            assign_payload_types([Codec(f"c{i}", 8000) for i in range(33)])

    @given(st.lists(st.sampled_from([
        catalogue.OPUS, catalogue.PCMU, catalogue.PCMA, catalogue.G722, catalogue.CN,
        catalogue.TELEPHONE_EVENT_8000, catalogue.TELEPHONE_EVENT_48000, Codec("x", 16000),
        Codec("y", 8000, payload_type=100),
    ]), max_size=12, unique=True))
    def test_assigned_payload_types_are_unique_and_valid(self, codecs: list[Codec]) -> None:
        assigned = assign_payload_types(codecs)
        pts = [c.payload_type for c in assigned]
        self.assertEqual(len(set(pts)), len(pts))
        for before, after in zip(codecs, assigned):
            self.assertTrue(same_codec(before, after))
            if before.payload_type is not None:
                self.assertEqual(after.payload_type, before.payload_type)
            elif after.payload_type < 96:
                self.assertTrue(same_codec(STATIC_PAYLOAD_TYPES[after.payload_type], after))


class Helpers(SynchronousTestCase):
    def test_direction_media_then_session_then_default(self) -> None:
        sd = parse_sdp(sdp(*HEAD, "a=sendonly", "m=audio 1 RTP/AVP 0", "a=inactive",
                           "m=audio 2 RTP/AVP 0"))
        self.assertEqual([m.direction for m in sd.media], ["inactive", None])
        self.assertEqual([sd.direction_for(m) for m in sd.media], ["inactive", "sendonly"])
        plain = parse_sdp(sdp(*HEAD, "m=audio 1 RTP/AVP 0"))
        self.assertEqual(plain.direction_for(plain.media[0]), "sendrecv")

    def test_ice_and_dtls_fallbacks(self) -> None:
        sd = parse_sdp(sdp(*HEAD, "a=ice-ufrag:sess", "a=ice-pwd:sesspwd", "a=setup:ACTIVE",
                           "a=fingerprint:SHA-1 AA:BB", "a=ice-lite",
                           "m=audio 1 RTP/AVP 0", "a=ice-ufrag:media",
                           "m=audio 2 RTP/AVP 0", "a=fingerprint:bogus",
                           "a=fingerprint:sha-256 CC:DD", "a=setup:passive"))
        one, two = sd.media
        self.assertTrue(sd.ice_lite)
        self.assertEqual((sd.ice_ufrag_for(one), sd.ice_pwd_for(one)), ("media", "sesspwd"))
        self.assertEqual(sd.ice_ufrag_for(two), "sess")
        self.assertEqual(sd.fingerprint_for(one), ("sha-1", "AA:BB"))
        self.assertEqual(two.fingerprint, ("sha-256", "CC:DD"))  # the malformed one is skipped
        self.assertEqual((sd.setup_for(one), sd.setup_for(two)), ("active", "passive"))
        self.assertIsNone(parse_sdp(sdp(*HEAD)).fingerprint)

    def test_rtcp_port(self) -> None:
        self.assertEqual(audio("a=rtcp:53020").rtcp, 53020)
        self.assertEqual(audio("a=rtcp:53020 IN IP4 126.16.64.4").rtcp, 53020)
        for bad in ("a=rtcp:x", "a=rtcp:70000", "a=rtcp", "a=rtcp:5302x"):
            self.assertIsNone(audio(bad).rtcp, bad)
        self.assertIsNone(audio().rtcp)

    def test_ptime(self) -> None:
        self.assertEqual(audio("a=ptime:20").ptime, 20)
        self.assertEqual(audio("a=ptime: 30").ptime, 30)
        self.assertEqual(audio("a=ptime:22.5").ptime, 22)
        self.assertIsNone(audio("a=ptime:abc").ptime)
        self.assertIsNone(audio().ptime)

    def test_mid_rtcp_mux_candidates(self) -> None:
        m = audio("a=mid:audio", "a=rtcp-mux", "a=candidate:1 1 udp 5 192.0.2.1 4000 typ host")
        self.assertEqual((m.mid, m.rtcp_mux), ("audio", True))
        self.assertEqual(m.candidates, ["1 1 udp 5 192.0.2.1 4000 typ host"])
        self.assertEqual((audio().mid, audio().rtcp_mux, audio().candidates), (None, False, []))

    def test_rejected(self) -> None:
        sd = parse_sdp(sdp(*HEAD, "m=audio 0 RTP/AVP 0", "m=video 0 RTP/AVP 96", "a=bundle-only",
                           "m=audio 4000 RTP/AVP 0"))
        self.assertEqual([m.rejected for m in sd.media], [True, False, False])

    def test_groups_and_media_by_mid(self) -> None:
        sd = parse_sdp(CHROME_OFFER)
        self.assertEqual(sd.groups(), [["0", "1"]])
        self.assertEqual(sd.groups("LS"), [])
        self.assertIs(sd.media_by_mid("1"), sd.media[1])
        self.assertIsNone(sd.media_by_mid("2"))
        self.assertEqual(parse_sdp(FIREFOX_OFFER).groups("bundle"), [["0"]])

    def test_get_get_all_has(self) -> None:
        m = parse_sdp(BARESIP_OFFER).media[0]
        self.assertEqual(m.get("RTPMAP"), "0 PCMU/8000")
        self.assertEqual(len(m.get_all("rtpmap")), 5)
        self.assertEqual(m.get_all("nothing"), [])
        self.assertIsNone(m.get("nothing"))
        self.assertTrue(m.has("sendrecv"))
        self.assertFalse(m.has("rtcp-mux"))

    def test_value_types(self) -> None:
        self.assertEqual(Connection(address="::1").addrtype, "IP6")
        self.assertEqual(Connection(address="192.0.2.1").addrtype, "IP4")
        self.assertEqual(Connection(address="h", addrtype="IP6").addrtype, "IP6")
        self.assertEqual(Connection(address="233.252.0.1", ttl=127, count=2).value, "233.252.0.1/127/2")
        o = Origin(session_id=1, session_version=2, address="2001:db8::1")
        self.assertEqual((o.username, o.nettype, o.addrtype), ("-", "IN", "IP6"))
        with self.assertRaises(TypeError):
            Connection("IN", "IP4", "192.0.2.1")  # type: ignore[misc]  # keywords only
        self.assertEqual(Attribute("sendrecv").value, None)
        sd = SessionDescription(o)
        self.assertEqual((sd.session_name, sd.timing, sd.media, sd.attributes), ("-", (0, 0), [], []))
        a, b = SessionDescription(o), SessionDescription(o)
        a.attributes.append(Attribute("x"))
        self.assertEqual(b.attributes, [])  # no shared default lists
