"""SDP text (wcsgw.sdp.parser): real-world descriptions, tolerated oddities, errors, round trips.

The fixtures at the top are shared with the other SDP tests (and anyone who needs a browser
or phone offer): a hand-written Chromium 156 offer, a captured baresip 1.0.0 offer, a
Firefox-style offer and the RFC 8866 example.  The Hypothesis strategies here generate
*canonical* models, so the round-trip property is the strict ``parse(serialize(x)) == x``.
"""

from __future__ import annotations

import ipaddress

import attr
from hypothesis import HealthCheck, example, given, settings, strategies as st
from twisted.trial.unittest import SynchronousTestCase

from wcsgw.sdp.codecs import Codec
from wcsgw.sdp.errors import SdpParseError
from wcsgw.sdp.model import (
    Attribute,
    Bandwidth,
    Connection,
    MediaDescription,
    Origin,
    SessionDescription,
    Timing,
)
from wcsgw.sdp.parser import parse_sdp, serialize_sdp

# -- fixtures ---------------------------------------------------------------------------------
#: Chromium 156 `createOffer()` for an audio + video call after ICE gathering completed (as
#: `pc.localDescription.sdp`), written by hand in Chrome's exact layout: unified plan, BUNDLE,
#: session-level msid-semantic with its odd space, per-m-section ICE/DTLS, candidates
#: before a=ice-ufrag, rtpmap/rtcp-fb/fmtp interleaved per payload type, ssrc lines last.
CHROME_OFFER = "\r\n".join([
    "v=0",
    "o=- 6054093392514871408 2 IN IP4 127.0.0.1",
    "s=-",
    "t=0 0",
    "a=group:BUNDLE 0 1",
    "a=extmap-allow-mixed",
    "a=msid-semantic: WMS 4f8a1c2e-7b3d-4e5f-9a6b-1c2d3e4f5a6b",
    "m=audio 54321 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126",
    "c=IN IP4 127.0.0.1",
    "a=rtcp:9 IN IP4 0.0.0.0",
    "a=candidate:1467250027 1 udp 2122260223 127.0.0.1 54321 typ host generation 0 network-id 1",
    "a=candidate:2503131855 1 tcp 1518280447 127.0.0.1 9 typ host tcptype active generation 0 network-id 1",
    "a=ice-ufrag:Kx7q",
    "a=ice-pwd:pY2vB9sZ3nQ8wE1rT6uI0oLk",
    "a=ice-options:trickle",
    "a=fingerprint:sha-256 65:83:C2:CF:82:81:5B:C3:D4:8A:07:5B:B9:AA:99:09:E8:52:54:4B:EB:17:C2:B9:9C:FC:BB:2D:54:31:A5:E6",
    "a=setup:actpass",
    "a=mid:0",
    "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
    "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
    "a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
    "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
    "a=sendrecv",
    "a=msid:4f8a1c2e-7b3d-4e5f-9a6b-1c2d3e4f5a6b 9d3e6a10-2b4c-4d8e-8f1a-3b5c7d9e0f12",
    "a=rtcp-mux",
    "a=rtcp-rsize",
    "a=rtpmap:111 opus/48000/2",
    "a=rtcp-fb:111 transport-cc",
    "a=fmtp:111 minptime=10;useinbandfec=1",
    "a=rtpmap:63 red/48000/2",
    "a=fmtp:63 111/111",
    "a=rtpmap:9 G722/8000",
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:8 PCMA/8000",
    "a=rtpmap:13 CN/8000",
    "a=rtpmap:110 telephone-event/48000",
    "a=rtpmap:126 telephone-event/8000",
    "a=ssrc:3735928559 cname:Vx3aQ9LmP2kR8sTn",
    "a=ssrc:3735928559 msid:4f8a1c2e-7b3d-4e5f-9a6b-1c2d3e4f5a6b 9d3e6a10-2b4c-4d8e-8f1a-3b5c7d9e0f12",
    "m=video 54322 UDP/TLS/RTP/SAVPF 96 97 98 99 100 101 102 103 104 105 45 46 116 117 118",
    "c=IN IP4 127.0.0.1",
    "a=rtcp:9 IN IP4 0.0.0.0",
    "a=candidate:1467250027 1 udp 2122260223 127.0.0.1 54322 typ host generation 0 network-id 1",
    "a=candidate:2503131855 1 tcp 1518280447 127.0.0.1 9 typ host tcptype active generation 0 network-id 1",
    "a=ice-ufrag:Kx7q",
    "a=ice-pwd:pY2vB9sZ3nQ8wE1rT6uI0oLk",
    "a=ice-options:trickle",
    "a=fingerprint:sha-256 65:83:C2:CF:82:81:5B:C3:D4:8A:07:5B:B9:AA:99:09:E8:52:54:4B:EB:17:C2:B9:9C:FC:BB:2D:54:31:A5:E6",
    "a=setup:actpass",
    "a=mid:1",
    "a=extmap:14 urn:ietf:params:rtp-hdrext:toffset",
    "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
    "a=extmap:13 urn:3gpp:video-orientation",
    "a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
    "a=extmap:5 http://www.webrtc.org/experiments/rtp-hdrext/playout-delay",
    "a=extmap:6 http://www.webrtc.org/experiments/rtp-hdrext/video-content-type",
    "a=extmap:7 http://www.webrtc.org/experiments/rtp-hdrext/video-timing",
    "a=extmap:8 http://www.webrtc.org/experiments/rtp-hdrext/color-space",
    "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
    "a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id",
    "a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id",
    "a=sendrecv",
    "a=msid:4f8a1c2e-7b3d-4e5f-9a6b-1c2d3e4f5a6b 0c7e2f4a-6b8d-4a1c-9e3f-5d7b9a1c3e5f",
    "a=rtcp-mux",
    "a=rtcp-rsize",
    "a=rtpmap:96 VP8/90000",
    "a=rtcp-fb:96 goog-remb",
    "a=rtcp-fb:96 transport-cc",
    "a=rtcp-fb:96 ccm fir",
    "a=rtcp-fb:96 nack",
    "a=rtcp-fb:96 nack pli",
    "a=rtpmap:97 rtx/90000",
    "a=fmtp:97 apt=96",
    "a=rtpmap:98 VP9/90000",
    "a=rtcp-fb:98 goog-remb",
    "a=rtcp-fb:98 transport-cc",
    "a=rtcp-fb:98 ccm fir",
    "a=rtcp-fb:98 nack",
    "a=rtcp-fb:98 nack pli",
    "a=fmtp:98 profile-id=0",
    "a=rtpmap:99 rtx/90000",
    "a=fmtp:99 apt=98",
    "a=rtpmap:100 VP9/90000",
    "a=rtcp-fb:100 goog-remb",
    "a=rtcp-fb:100 transport-cc",
    "a=rtcp-fb:100 ccm fir",
    "a=rtcp-fb:100 nack",
    "a=rtcp-fb:100 nack pli",
    "a=fmtp:100 profile-id=2",
    "a=rtpmap:101 rtx/90000",
    "a=fmtp:101 apt=100",
    "a=rtpmap:102 H264/90000",
    "a=rtcp-fb:102 goog-remb",
    "a=rtcp-fb:102 transport-cc",
    "a=rtcp-fb:102 ccm fir",
    "a=rtcp-fb:102 nack",
    "a=rtcp-fb:102 nack pli",
    "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f",
    "a=rtpmap:103 rtx/90000",
    "a=fmtp:103 apt=102",
    "a=rtpmap:104 H264/90000",
    "a=rtcp-fb:104 goog-remb",
    "a=rtcp-fb:104 transport-cc",
    "a=rtcp-fb:104 ccm fir",
    "a=rtcp-fb:104 nack",
    "a=rtcp-fb:104 nack pli",
    "a=fmtp:104 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
    "a=rtpmap:105 rtx/90000",
    "a=fmtp:105 apt=104",
    "a=rtpmap:45 AV1/90000",
    "a=rtcp-fb:45 goog-remb",
    "a=rtcp-fb:45 transport-cc",
    "a=rtcp-fb:45 ccm fir",
    "a=rtcp-fb:45 nack",
    "a=rtcp-fb:45 nack pli",
    "a=fmtp:45 level-idx=5;profile=0;tier=0",
    "a=rtpmap:46 rtx/90000",
    "a=fmtp:46 apt=45",
    "a=rtpmap:116 red/90000",
    "a=rtpmap:117 rtx/90000",
    "a=fmtp:117 apt=116",
    "a=rtpmap:118 ulpfec/90000",
    "a=ssrc-group:FID 2882400001 2882400002",
    "a=ssrc:2882400001 cname:Vx3aQ9LmP2kR8sTn",
    "a=ssrc:2882400001 msid:4f8a1c2e-7b3d-4e5f-9a6b-1c2d3e4f5a6b 0c7e2f4a-6b8d-4a1c-9e3f-5d7b9a1c3e5f",
    "a=ssrc:2882400002 cname:Vx3aQ9LmP2kR8sTn",
    "a=ssrc:2882400002 msid:4f8a1c2e-7b3d-4e5f-9a6b-1c2d3e4f5a6b 0c7e2f4a-6b8d-4a1c-9e3f-5d7b9a1c3e5f",
    "",
])

#: baresip 1.0.0's INVITE offer, captured on this machine (audio_codecs=PCMU,PCMA,
#: G722/16000/1,opus/48000/2): RTP/AVP, c= at session level, rtpmap even for static types,
#: a=ptime, no rtcp-mux.  Kamailio relays it untouched, so this is also what arrives from it.
BARESIP_OFFER = (
    b"v=0\r\n"
    b"o=- 4094903272 836293156 IN IP4 127.0.0.1\r\n"
    b"s=-\r\n"
    b"c=IN IP4 127.0.0.1\r\n"
    b"t=0 0\r\n"
    b"a=tool:baresip 1.0.0\r\n"
    b"m=audio 21212 RTP/AVP 0 8 9 96 101\r\n"
    b"a=rtpmap:0 PCMU/8000\r\n"
    b"a=rtpmap:8 PCMA/8000\r\n"
    b"a=rtpmap:9 G722/8000\r\n"
    b"a=rtpmap:96 opus/48000/2\r\n"
    b"a=fmtp:96 stereo=1;sprop-stereo=1;maxaveragebitrate=28000\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\n"
    b"a=fmtp:101 0-15\r\n"
    b"a=sendrecv\r\n"
    b"a=label:1\r\n"
    b"a=rtcp-rsize\r\n"
    b"a=ssrc:896480980 cname:sip:1001@127.0.0.1:35999\r\n"
    b"a=minptime:20\r\n"
    b"a=ptime:20\r\n"
)

#: Firefox-style offer: fingerprint, BUNDLE and ice-options at *session* level, ufrag/pwd
#: per m-section, attributes sorted by name, G722/8000/1.
FIREFOX_OFFER = "\r\n".join([
    "v=0",
    "o=mozilla...THIS_IS_SDPARTA-128.0 5713406428420585155 0 IN IP4 0.0.0.0",
    "s=-",
    "t=0 0",
    "a=fingerprint:sha-256 BB:B9:AE:21:29:BC:AB:F7:BF:65:73:DF:26:40:75:A0:C5:F1:F0:E8:34:BF:46:F2:51:3A:79:B1:89:E0:86:C5",
    "a=group:BUNDLE 0",
    "a=ice-options:trickle",
    "a=msid-semantic:WMS *",
    "m=audio 9 UDP/TLS/RTP/SAVPF 109 9 0 8 101",
    "c=IN IP4 0.0.0.0",
    "a=sendrecv",
    "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
    "a=extmap:2/recvonly urn:ietf:params:rtp-hdrext:csrc-audio-level",
    "a=extmap:3 urn:ietf:params:rtp-hdrext:sdes:mid",
    "a=fmtp:109 maxplaybackrate=48000;stereo=1;useinbandfec=1",
    "a=fmtp:101 0-15",
    "a=ice-pwd:1b2c3d4e5f60718293a4b5c6d7e8f901",
    "a=ice-ufrag:8f3a2b1c",
    "a=mid:0",
    "a=msid:{1c2d3e4f-aaaa-bbbb-cccc-1234567890ab} {5e6f7a8b-dddd-eeee-ffff-0987654321ba}",
    "a=rtcp-mux",
    "a=rtpmap:109 opus/48000/2",
    "a=rtpmap:9 G722/8000/1",
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:8 PCMA/8000",
    "a=rtpmap:101 telephone-event/8000",
    "a=setup:actpass",
    "a=ssrc:2655508255 cname:{735484ea-4f6c-f74a-bd66-7425f8476c2e}",
    "",
])

#: RFC 8866 §5 example (multicast c= with TTL, i= u= e= at session level, no c= per m-line).
RFC8866_EXAMPLE = "\r\n".join([
    "v=0",
    "o=jdoe 3724394400 3724394405 IN IP4 198.51.100.1",
    "s=Call to John Smith",
    "i=SDP Offer #1",
    "u=http://www.jdoe.example.com/home.html",
    "e=Jane Doe <jane@jdoe.example.com>",
    "p=+1 617 555-6011",
    "c=IN IP4 198.51.100.1",
    "t=0 0",
    "m=audio 49170 RTP/AVP 0",
    "m=audio 49180 RTP/AVP 0",
    "m=video 51372 RTP/AVP 99",
    "c=IN IP6 2001:db8::2",
    "a=rtpmap:99 h263-1998/90000",
    "",
])

ALL_FIXTURES = {
    "chrome": CHROME_OFFER,
    "baresip": BARESIP_OFFER.decode(),
    "firefox": FIREFOX_OFFER,
    "rfc8866": RFC8866_EXAMPLE,
}


def sdp(*lines: str) -> str:
    """CRLF-joined lines with the final CRLF, like a real body."""
    return "\r\n".join(lines) + "\r\n"


HEAD = ("v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "t=0 0")


# -- strategies -------------------------------------------------------------------------------
TOKEN_CHARS = "!#$%&'*+-.0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ^_`abcdefghijklmnopqrstuvwxyz{|}~"
tokens = st.text(TOKEN_CHARS, min_size=1, max_size=10)
#: byte-string (RFC 8866 §9): anything but NUL, CR, LF
values = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\x00"), max_size=20
)
#: non-ws-string: no space/tab (the parser's field separators) and no NUL/CR/LF
non_ws = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters=" \t\r\n\x00"),
    min_size=1,
    max_size=12,
)
numbers = st.integers(0, 10**20 - 1)
ports = st.integers(0, 65535)
typed_times = st.builds(
    lambda n, unit: f"{n}{unit}", st.integers(0, 10**6), st.sampled_from(["", "d", "h", "m", "s"])
)
repeats = st.lists(typed_times, min_size=3, max_size=5).map(" ".join)
zones = st.lists(
    st.builds(lambda t, neg, off: f"{t} {neg}{off}", numbers, st.sampled_from(["", "-"]), typed_times),
    min_size=1,
    max_size=3,
).map(" ".join)
ip4 = st.ip_addresses(v=4).map(str)
ip6 = st.ip_addresses(v=6).map(lambda a: ipaddress.IPv6Address(a).compressed)
hostnames = st.from_regex(r"[a-z0-9]([a-z0-9.-]{0,20}[a-z0-9])?", fullmatch=True)
other_addrtypes = tokens.filter(lambda t: t.upper() not in ("IP4", "IP6"))


@st.composite
def connections(draw: st.DrawFn) -> Connection:
    kind = draw(st.sampled_from(["IP4", "IP6", "other"]))
    nettype = draw(st.sampled_from(["IN"]) | tokens)
    if kind == "IP4":
        ttl = draw(st.none() | st.integers(0, 255))
        count = draw(st.none() | st.integers(1, 99)) if ttl is not None else None
        address = draw(ip4 | hostnames)
        return Connection(nettype=nettype, addrtype="IP4", address=address, ttl=ttl, count=count)
    if kind == "IP6":
        address = draw(ip6 | hostnames)
        return Connection(
            nettype=nettype, addrtype="IP6", address=address,
            count=draw(st.none() | st.integers(1, 99)),
        )
    return Connection(nettype=nettype, addrtype=draw(other_addrtypes), address=draw(non_ws))


attributes = st.builds(Attribute, tokens, st.none() | values)
bandwidths = st.builds(Bandwidth, tokens, numbers)
protos = st.lists(tokens, min_size=1, max_size=4).map("/".join)


@st.composite
def media_descriptions(draw: st.DrawFn) -> MediaDescription:
    connection = draw(st.none() | connections())
    return MediaDescription(
        kind=draw(tokens),
        port=draw(ports),
        proto=draw(protos),
        formats=draw(st.lists(tokens, max_size=6)),
        connection=connection,
        bandwidths=draw(st.lists(bandwidths, max_size=2)),
        attributes=draw(st.lists(attributes, max_size=6)),
        port_count=draw(st.none() | st.integers(1, 65535)),
        information=draw(st.none() | values),
        key=draw(st.none() | values),
        extra_connections=draw(st.lists(connections(), max_size=2)) if connection else [],
    )


@st.composite
def session_descriptions(draw: st.DrawFn) -> SessionDescription:
    return SessionDescription(
        origin=Origin(
            username=draw(non_ws),
            session_id=draw(numbers),
            session_version=draw(numbers),
            nettype=draw(tokens),
            addrtype=draw(tokens),
            address=draw(non_ws),
        ),
        session_name=draw(values.filter(bool)),
        connection=draw(st.none() | connections()),
        bandwidths=draw(st.lists(bandwidths, max_size=2)),
        timing=(draw(numbers), draw(numbers)),
        attributes=draw(st.lists(attributes, max_size=6)),
        media=draw(st.lists(media_descriptions(), max_size=3)),
        information=draw(st.none() | values),
        uri=draw(st.none() | values),
        emails=draw(st.lists(values, max_size=2)),
        phones=draw(st.lists(values, max_size=2)),
        repeats=draw(st.lists(repeats, max_size=2)),
        more_timings=draw(
            st.lists(
                st.builds(Timing, numbers, numbers, st.lists(repeats, max_size=2).map(tuple)),
                max_size=2,
            )
        ),
        time_zones=draw(st.none() | zones),
        key=draw(st.none() | values),
    )


def exercise(sd: SessionDescription) -> None:
    """Every helper a caller may use on a parsed description; none may raise."""
    sd.groups()
    sd.ice_lite  # noqa: B018 - a property that must not raise
    for m in sd.media:
        m.codecs()
        for name in ("direction", "mid", "rtcp_mux", "candidates", "rtcp", "ptime",
                     "fingerprint", "setup", "rejected", "is_rtp"):
            getattr(m, name)
        sd.direction_for(m)
        sd.connection_for(m)
        sd.ice_ufrag_for(m)
        sd.ice_pwd_for(m)
        sd.fingerprint_for(m)
        sd.setup_for(m)


# -- real-world descriptions --------------------------------------------------------------------
class RealWorld(SynchronousTestCase):
    def test_chrome_offer(self) -> None:
        sd = parse_sdp(CHROME_OFFER)
        self.assertEqual(sd.origin, Origin(session_id=6054093392514871408, session_version=2,
                                           address="127.0.0.1"))
        self.assertEqual(sd.groups("BUNDLE"), [["0", "1"]])
        self.assertTrue(sd.has("extmap-allow-mixed"))
        self.assertIsNone(sd.get("extmap-allow-mixed"))
        self.assertEqual(sd.get("msid-semantic"), " WMS 4f8a1c2e-7b3d-4e5f-9a6b-1c2d3e4f5a6b")
        self.assertIsNone(sd.connection)
        self.assertEqual([m.kind for m in sd.media], ["audio", "video"])

        audio, video = sd.media
        self.assertEqual((audio.port, audio.proto), (54321, "UDP/TLS/RTP/SAVPF"))
        self.assertEqual(audio.formats, ["111", "63", "9", "0", "8", "13", "110", "126"])
        self.assertEqual(sd.connection_for(audio), Connection(address="127.0.0.1"))
        self.assertEqual(
            [(c.name, c.clock_rate, c.channels, c.payload_type, c.fmtp) for c in audio.codecs()],
            [
                ("opus", 48000, 2, 111, "minptime=10;useinbandfec=1"),
                ("red", 48000, 2, 63, "111/111"),
                ("G722", 8000, 1, 9, None),
                ("PCMU", 8000, 1, 0, None),
                ("PCMA", 8000, 1, 8, None),
                ("CN", 8000, 1, 13, None),
                ("telephone-event", 48000, 1, 110, None),
                ("telephone-event", 8000, 1, 126, None),
            ],
        )
        self.assertEqual(audio.mid, "0")
        self.assertEqual(sd.ice_ufrag_for(audio), "Kx7q")
        self.assertEqual(sd.ice_pwd_for(audio), "pY2vB9sZ3nQ8wE1rT6uI0oLk")
        self.assertEqual(audio.get("ice-options"), "trickle")
        self.assertEqual(
            sd.fingerprint_for(audio),
            ("sha-256", "65:83:C2:CF:82:81:5B:C3:D4:8A:07:5B:B9:AA:99:09:"
                        "E8:52:54:4B:EB:17:C2:B9:9C:FC:BB:2D:54:31:A5:E6"),
        )
        self.assertEqual(sd.setup_for(audio), "actpass")
        self.assertEqual(sd.direction_for(audio), "sendrecv")
        self.assertTrue(audio.rtcp_mux)
        self.assertTrue(audio.has("rtcp-rsize"))
        self.assertEqual(audio.rtcp, 9)
        self.assertIsNone(audio.ptime)
        self.assertEqual(len(audio.candidates), 2)
        self.assertTrue(audio.candidates[0].endswith("127.0.0.1 54321 typ host generation 0 network-id 1"))
        self.assertEqual(len(audio.get_all("extmap")), 4)
        self.assertEqual(audio.get_all("rtcp-fb"), ["111 transport-cc"])
        self.assertEqual(
            audio.get_all("ssrc"),
            ["3735928559 cname:Vx3aQ9LmP2kR8sTn",
             "3735928559 msid:4f8a1c2e-7b3d-4e5f-9a6b-1c2d3e4f5a6b 9d3e6a10-2b4c-4d8e-8f1a-3b5c7d9e0f12"],
        )
        self.assertFalse(audio.rejected)

        self.assertEqual(video.mid, "1")
        codecs = {c.payload_type: c for c in video.codecs()}
        self.assertEqual(len(codecs), len(video.formats))
        self.assertEqual(codecs[96], Codec("VP8", 90000, 1, 96))
        self.assertEqual(codecs[97], Codec("rtx", 90000, 1, 97, "apt=96"))
        self.assertEqual(codecs[100].fmtp, "profile-id=2")
        self.assertEqual(codecs[104].fmtp_params["profile-level-id"], "42e01f")
        self.assertEqual(codecs[45].name, "AV1")
        self.assertEqual([codecs[pt].name for pt in (116, 118)], ["red", "ulpfec"])
        self.assertEqual(video.get("ssrc-group"), "FID 2882400001 2882400002")
        self.assertEqual(len(video.get_all("rtcp-fb")), 30)

    def test_chrome_offer_round_trips_byte_for_byte(self) -> None:
        self.assertEqual(serialize_sdp(parse_sdp(CHROME_OFFER)), CHROME_OFFER)
        self.assertEqual(parse_sdp(CHROME_OFFER.encode()), parse_sdp(CHROME_OFFER))

    def test_chrome_offer_before_gathering(self) -> None:
        """createOffer() without candidates: port 9 and 0.0.0.0 (trickle ICE)."""
        text = (
            CHROME_OFFER.replace("m=audio 54321", "m=audio 9")
            .replace("m=video 54322", "m=video 9")
            .replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0")
        )
        text = "".join(line for line in text.splitlines(True) if not line.startswith("a=candidate"))
        sd = parse_sdp(text)
        self.assertEqual([m.port for m in sd.media], [9, 9])
        self.assertEqual(sd.media[0].candidates, [])
        self.assertEqual(sd.connection_for(sd.media[1]).address, "0.0.0.0")
        self.assertEqual(serialize_sdp(sd), text)

    def test_baresip_offer(self) -> None:
        sd = parse_sdp(BARESIP_OFFER)
        (audio,) = sd.media
        self.assertEqual((audio.kind, audio.port, audio.proto), ("audio", 21212, "RTP/AVP"))
        self.assertIsNone(audio.connection)
        self.assertEqual(sd.connection_for(audio), Connection(address="127.0.0.1"))
        self.assertEqual(sd.get("tool"), "baresip 1.0.0")
        self.assertEqual(audio.ptime, 20)
        self.assertEqual(audio.get("minptime"), "20")
        self.assertFalse(audio.rtcp_mux)
        self.assertIsNone(audio.rtcp)
        self.assertEqual(sd.direction_for(audio), "sendrecv")
        self.assertEqual(
            audio.codecs(),
            [
                Codec("PCMU", 8000, 1, 0),
                Codec("PCMA", 8000, 1, 8),
                Codec("G722", 8000, 1, 9),
                Codec("opus", 48000, 2, 96, "stereo=1;sprop-stereo=1;maxaveragebitrate=28000"),
                Codec("telephone-event", 8000, 1, 101, "0-15"),
            ],
        )
        self.assertIsNone(sd.fingerprint_for(audio))
        self.assertEqual(serialize_sdp(sd).encode(), BARESIP_OFFER)

    def test_firefox_offer_session_level_fallbacks(self) -> None:
        sd = parse_sdp(FIREFOX_OFFER)
        (audio,) = sd.media
        self.assertEqual(sd.origin.username, "mozilla...THIS_IS_SDPARTA-128.0")
        self.assertIsNone(audio.fingerprint)
        self.assertEqual(sd.fingerprint_for(audio)[0], "sha-256")
        self.assertEqual(sd.fingerprint_for(audio), sd.fingerprint)
        self.assertEqual(sd.ice_ufrag_for(audio), "8f3a2b1c")
        self.assertEqual(sd.get("msid-semantic"), "WMS *")
        self.assertEqual(audio.get("extmap").split()[0], "1")
        self.assertEqual(audio.get_all("extmap")[1], "2/recvonly urn:ietf:params:rtp-hdrext:csrc-audio-level")
        self.assertEqual(
            [(c.name, c.channels, c.payload_type) for c in audio.codecs()],
            [("opus", 2, 109), ("G722", 1, 9), ("PCMU", 1, 0), ("PCMA", 1, 8),
             ("telephone-event", 1, 101)],
        )
        self.assertEqual(serialize_sdp(sd), FIREFOX_OFFER)

    def test_rfc8866_example(self) -> None:
        sd = parse_sdp(RFC8866_EXAMPLE)
        self.assertEqual(sd.origin.username, "jdoe")
        self.assertEqual(sd.session_name, "Call to John Smith")
        self.assertEqual(sd.information, "SDP Offer #1")
        self.assertEqual(sd.uri, "http://www.jdoe.example.com/home.html")
        self.assertEqual(sd.emails, ["Jane Doe <jane@jdoe.example.com>"])
        self.assertEqual(sd.phones, ["+1 617 555-6011"])
        first, second, video = sd.media
        self.assertEqual(sd.connection_for(first), Connection(address="198.51.100.1"))
        self.assertEqual(first.codecs(), [Codec("PCMU", 8000, 1, 0)])
        self.assertEqual(second.port, 49180)
        self.assertEqual(
            sd.connection_for(video), Connection(addrtype="IP6", address="2001:db8::2")
        )
        self.assertEqual(video.codecs(), [Codec("h263-1998", 90000, 1, 99)])
        self.assertEqual(serialize_sdp(sd), RFC8866_EXAMPLE)


# -- odd but legal (or tolerated) -------------------------------------------------------------
class Tolerated(SynchronousTestCase):
    def test_lf_line_ends(self) -> None:
        for name, text in ALL_FIXTURES.items():
            lf = text.replace("\r\n", "\n")
            self.assertEqual(parse_sdp(lf), parse_sdp(text), name)
            self.assertEqual(serialize_sdp(parse_sdp(lf)), text, name)

    def test_mixed_line_ends_blank_lines_and_no_final_newline(self) -> None:
        text = "v=0\n\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\n\r\nt=0 0\nm=audio 4000 RTP/AVP 0"
        sd = parse_sdp(text)
        self.assertEqual(sd.media[0].formats, ["0"])
        self.assertEqual(serialize_sdp(sd), sdp(*HEAD, "m=audio 4000 RTP/AVP 0"))

    def test_media_connection_overrides_session(self) -> None:
        sd = parse_sdp(sdp(
            "v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "c=IN IP4 192.0.2.1", "t=0 0",
            "m=audio 4000 RTP/AVP 0", "m=audio 4002 RTP/AVP 0", "c=IN IP4 198.51.100.7",
        ))
        self.assertEqual(sd.connection_for(sd.media[0]).address, "192.0.2.1")
        self.assertEqual(sd.connection_for(sd.media[1]).address, "198.51.100.7")
        self.assertEqual(sd.media[1].connection, Connection(address="198.51.100.7"))

    def test_missing_or_empty_session_name(self) -> None:
        """Decision: tolerated (some old phones), read as "-"; "s= " (RFC's blank) is kept."""
        missing = parse_sdp(sdp("v=0", "o=- 1 1 IN IP4 192.0.2.1", "t=0 0"))
        self.assertEqual(missing.session_name, "-")
        self.assertEqual(serialize_sdp(missing), sdp(*HEAD))
        self.assertEqual(parse_sdp(sdp("v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=", "t=0 0")).session_name, "-")
        self.assertEqual(parse_sdp(sdp("v=0", "o=- 1 1 IN IP4 192.0.2.1", "s= ", "t=0 0")).session_name, " ")

    def test_missing_timing(self) -> None:
        sd = parse_sdp(sdp("v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "m=audio 4000 RTP/AVP 0"))
        self.assertEqual(sd.timing, (0, 0))
        self.assertEqual(serialize_sdp(sd), sdp(*HEAD, "m=audio 4000 RTP/AVP 0"))

    def test_attribute_without_value_and_with_empty_value(self) -> None:
        sd = parse_sdp(sdp(*HEAD, "a=recvonly", "a=empty:", "a=sendrecv \t"))
        self.assertEqual(
            sd.attributes, [Attribute("recvonly"), Attribute("empty", ""), Attribute("sendrecv")]
        )
        self.assertEqual(sd.get("empty"), "")
        self.assertIsNone(sd.get("recvonly"))
        self.assertTrue(sd.has("RECVONLY"))
        self.assertEqual(sd.direction, "recvonly")  # the first direction attribute wins
        self.assertEqual(serialize_sdp(sd), sdp(*HEAD, "a=recvonly", "a=empty:", "a=sendrecv"))

    def test_attribute_values_kept_verbatim(self) -> None:
        sd = parse_sdp(sdp(*HEAD, "a=x-note: spaced  value ", "a=weird:a:b:c"))
        self.assertEqual(sd.get_all("x-note"), [" spaced  value "])
        self.assertEqual(sd.get("weird"), "a:b:c")

    def test_repeated_attributes(self) -> None:
        sd = parse_sdp(sdp(*HEAD, "m=audio 4000 RTP/AVP 0", "a=candidate:1 1 udp 1 192.0.2.1 4000 typ host",
                           "a=candidate:2 1 udp 1 192.0.2.2 4000 typ host", "a=Candidate:3 x"))
        m = sd.media[0]
        self.assertEqual(m.get("candidate"), "1 1 udp 1 192.0.2.1 4000 typ host")
        self.assertEqual([c.split()[0] for c in m.candidates], ["1", "2", "3"])
        self.assertEqual(m.attributes[2].name, "Candidate")  # case kept as written

    def test_port_and_number_of_ports(self) -> None:
        text = sdp(*HEAD, "m=audio 49170/2 RTP/AVP 0")
        sd = parse_sdp(text)
        self.assertEqual((sd.media[0].port, sd.media[0].port_count), (49170, 2))
        self.assertEqual(serialize_sdp(sd), text)

    def test_ipv6(self) -> None:
        text = sdp("v=0", "o=- 1 1 IN IP6 2001:db8::1", "s=-", "c=IN IP6 2001:db8::1", "t=0 0",
                   "m=audio 4000 RTP/AVP 0", "c=IN IP6 FF15::101/3")
        sd = parse_sdp(text)
        self.assertEqual(sd.origin.addrtype, "IP6")
        self.assertEqual(sd.connection, Connection(address="2001:db8::1"))
        self.assertEqual(sd.connection.addrtype, "IP6")
        self.assertEqual(sd.media[0].connection,
                         Connection(addrtype="IP6", address="FF15::101", count=3))
        self.assertEqual(serialize_sdp(sd), text)

    def test_ip4_multicast_ttl_and_count(self) -> None:
        text = sdp(*HEAD[:3], "c=IN IP4 233.252.0.1/127/3", "t=0 0")
        sd = parse_sdp(text)
        self.assertEqual(sd.connection, Connection(address="233.252.0.1", ttl=127, count=3))
        self.assertEqual(serialize_sdp(sd), text)

    def test_bandwidth_lines(self) -> None:
        text = sdp(*HEAD[:3], "b=CT:128", "t=0 0", "m=audio 4000 RTP/AVP 0", "b=AS:64", "b=TIAS:64000")
        sd = parse_sdp(text)
        self.assertEqual(sd.bandwidths, [Bandwidth("CT", 128)])
        self.assertEqual(sd.media[0].bandwidths, [Bandwidth("AS", 64), Bandwidth("TIAS", 64000)])
        self.assertEqual(serialize_sdp(sd), text)

    def test_fields_out_of_order_within_a_section(self) -> None:
        """Some stacks write a= before c= or t= last; the serializer restores RFC order."""
        sd = parse_sdp(sdp(
            "v=0", "a=tool:x", "o=- 1 1 IN IP4 192.0.2.1", "c=IN IP4 192.0.2.1", "s=-", "t=0 0",
            "m=audio 4000 RTP/AVP 0", "a=sendrecv", "c=IN IP4 192.0.2.2", "b=AS:64",
        ))
        self.assertEqual(serialize_sdp(sd), sdp(
            "v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "c=IN IP4 192.0.2.1", "t=0 0", "a=tool:x",
            "m=audio 4000 RTP/AVP 0", "c=IN IP4 192.0.2.2", "b=AS:64", "a=sendrecv",
        ))

    def test_extra_whitespace_in_structured_lines(self) -> None:
        sd = parse_sdp(sdp("v=0 ", "o=-  1\t1 IN IP4 192.0.2.1 ", "s=-", "t=0  0",
                           "m=audio  4000   RTP/AVP 0  8 ", "c=IN  IP4 192.0.2.1"))
        self.assertEqual(sd.media[0].formats, ["0", "8"])
        self.assertEqual(sd.origin.session_id, 1)
        self.assertEqual(serialize_sdp(sd), sdp(
            *HEAD, "m=audio 4000 RTP/AVP 0 8", "c=IN IP4 192.0.2.1"))

    def test_all_session_fields(self) -> None:
        text = sdp(
            "v=0", "o=alice 2890844526 2890842807 IN IP4 192.0.2.1", "s=Seminar",
            "i=About SDP", "u=http://example.com/sdp.pdf", "e=a@example.com", "e=b@example.com",
            "p=+1 555 0100", "c=IN IP4 233.252.0.1/127", "b=CT:64",
            "t=3034423619 3042462419", "r=604800 3600 0 90000", "r=7d 1h 0 25h",
            "t=3034423620 0", "z=2882844526 -1h 2898848070 0", "k=prompt", "a=recvonly",
            "m=audio 49170 RTP/AVP 0", "i=voice", "c=IN IP4 233.252.0.1/127",
            "c=IN IP4 233.252.0.2/127", "b=AS:64", "k=clear:secret", "a=ptime:20",
        )
        sd = parse_sdp(text)
        self.assertEqual(sd.timing, (3034423619, 3042462419))
        self.assertEqual(sd.repeats, ["604800 3600 0 90000", "7d 1h 0 25h"])
        self.assertEqual(sd.more_timings, [Timing(3034423620, 0, ())])
        self.assertEqual(sd.time_zones, "2882844526 -1h 2898848070 0")
        self.assertEqual(sd.key, "prompt")
        m = sd.media[0]
        self.assertEqual((m.information, m.key), ("voice", "clear:secret"))
        self.assertEqual(m.extra_connections, [Connection(address="233.252.0.2", ttl=127)])
        self.assertEqual(serialize_sdp(sd), text)

    def test_media_line_without_formats(self) -> None:
        sd = parse_sdp(sdp(*HEAD, "m=audio 0 RTP/AVP"))
        self.assertEqual(sd.media[0].formats, [])
        self.assertEqual(sd.media[0].codecs(), [])

    def test_non_utf8_octets_read_as_latin1(self) -> None:
        sd = parse_sdp(b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=Caf\xe9\r\nt=0 0\r\n")
        self.assertEqual(sd.session_name, "Caf\xe9")
        self.assertEqual(parse_sdp("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=Café\r\n".encode()).session_name, "Café")

    def test_other_media_kinds(self) -> None:
        text = sdp(*HEAD, "m=application 9 UDP/DTLS/SCTP webrtc-datachannel", "a=sctp-port:5000",
                   "m=image 0 udptl t38")
        sd = parse_sdp(text)
        self.assertEqual([m.is_rtp for m in sd.media], [False, False])
        self.assertEqual([m.codecs() for m in sd.media], [[], []])
        self.assertEqual(serialize_sdp(sd), text)


# -- refused ----------------------------------------------------------------------------------
BAD = [
    # (description text, words the reason must contain, line number or None)
    ("", "empty", None),
    ("\r\n \r\n", "empty", None),
    ("o=- 1 1 IN IP4 192.0.2.1\r\nv=0\r\n", "v=0", 1),
    ("v=1\r\no=- 1 1 IN IP4 192.0.2.1\r\n", "v=0", 1),
    ("v=0\r\ns=-\r\nt=0 0\r\n", "no o=", None),
    (sdp(*HEAD, "garbage"), "not a <type>=<value>", 5),
    (sdp(*HEAD, "x=1"), "unknown type 'x'", 5),
    (sdp(*HEAD, "A=sendrecv"), "unknown type 'A'", 5),
    (sdp(*HEAD, "v=0"), "second v=", 5),
    (sdp("v=0", "o=- 1 1 IN IP4"), "o= needs", 2),
    (sdp("v=0", "o=- x 1 IN IP4 192.0.2.1"), "session id 'x' is not a number", 2),
    (sdp("v=0", "o=- 1 1 IN IP4 192.0.2.1", "o=- 1 1 IN IP4 192.0.2.1"), "second o=", 3),
    (sdp("v=0", "o=- 1 \u0661 IN IP4 192.0.2.1"), "not a number", 2),
    (sdp("v=0", "o=- " + "9" * 5000 + " 1 IN IP4 192.0.2.1"), "not a number", 2),
    (sdp(*HEAD, "c=IN IP4"), "c= needs", 5),
    (sdp(*HEAD, "c=IN IP4 192.0.2.1/x"), "bad IP4 connection address", 5),
    (sdp(*HEAD, "c=IN IP6 ff15::1/1/2"), "bad IP6 connection address", 5),
    (sdp(*HEAD[:3], "c=IN IP4 192.0.2.1", "c=IN IP4 192.0.2.1"), "second c=", 5),
    (sdp(*HEAD, "c=I\"N IP4 192.0.2.1"), "not a token", 5),
    (sdp(*HEAD, "b=AS64"), "b= needs", 5),
    (sdp(*HEAD, "t=0"), "t= needs", 5),
    (sdp(*HEAD[:3], "r=7d 1h 0"), "r= without a t=", 4),
    (sdp(*HEAD, "r=7d 1h"), "r= needs", 5),
    (sdp(*HEAD, "z=2882844526"), "z= needs", 5),
    (sdp(*HEAD, "m=audio"), "m= needs", 5),
    (sdp(*HEAD, "m=audio 4000"), "m= needs", 5),
    (sdp(*HEAD, "m=audio x RTP/AVP 0"), "bad port 'x'", 5),
    (sdp(*HEAD, "m=audio 70000 RTP/AVP 0"), "out of range", 5),
    (sdp(*HEAD, "m=audio 4000/0 RTP/AVP 0"), "out of range", 5),
    (sdp(*HEAD, "m=audio 4000 RTP//AVP 0"), "bad transport protocol", 5),
    (sdp(*HEAD, "m=audio 4000 RTP/AVP 0 \"8\""), "format", 5),
    (sdp(*HEAD, "m=audio 4000 RTP/AVP 0", "t=0 0"), "not allowed in a media description", 6),
    (sdp(*HEAD, "m=audio 4000 RTP/AVP 0", "s=x"), "not allowed in a media description", 6),
    (sdp(*HEAD, "m=audio 4000 RTP/AVP 0", "i=a", "i=b"), "second i=", 7),
    (sdp(*HEAD, "a=:value"), "attribute name", 5),
    (sdp(*HEAD, "a=two words:1"), "attribute name", 5),
    (sdp(*HEAD, "a="), "attribute name", 5),
    (sdp(*HEAD, "a=tool:x\x00y"), "NUL", 5),
    ("v=0\no=- 1 1 IN IP4 192.0.2.1\ns=a\rb\n", "CR", 3),
]


class Refused(SynchronousTestCase):
    def test_malformed_descriptions(self) -> None:
        for text, words, line_number in BAD:
            with self.subTest(text=text[:60]):
                with self.assertRaises(SdpParseError) as cm:
                    parse_sdp(text)
                e = cm.exception
                self.assertIsInstance(e, ValueError)
                self.assertIn(words, str(e))
                self.assertEqual(e.line_number, line_number)
                if line_number is not None:
                    self.assertTrue(str(e).startswith(f"line {line_number}: "), str(e))
                    self.assertIn(repr(e.line[:40])[1:-1], str(e))

    def test_reason_quotes_the_line_shortened(self) -> None:
        with self.assertRaises(SdpParseError) as cm:
            parse_sdp(sdp(*HEAD, "m=audio x RTP/AVP " + "0 " * 100))
        self.assertIn("'m=audio x RTP/AVP 0 0", str(cm.exception))
        self.assertLess(len(str(cm.exception)), 160)

    def test_serializer_refuses_line_breaks_in_values(self) -> None:
        sd = parse_sdp(sdp(*HEAD))
        for evil in ("x\r\na=injected", "x\ny", "x\x00"):
            with self.subTest(evil=evil):
                with self.assertRaises(ValueError):
                    serialize_sdp(attr.evolve(sd, attributes=[Attribute("tool", evil)]))
                with self.assertRaises(ValueError):
                    serialize_sdp(attr.evolve(sd, session_name=evil))


# -- serialization ----------------------------------------------------------------------------
class Serialize(SynchronousTestCase):
    def test_canonical_order_and_crlf(self) -> None:
        sd = SessionDescription(
            origin=Origin(session_id=7, session_version=1, address="192.0.2.1"),
            media=[
                MediaDescription(
                    "audio", 4000, "RTP/AVP", ["0", "101"],
                    attributes=[Attribute("rtpmap", "101 telephone-event/8000"), Attribute("sendonly")],
                    bandwidths=[Bandwidth("AS", 80)],
                    connection=Connection(address="192.0.2.2"),
                    information="voice",
                )
            ],
            attributes=[Attribute("tool", "wcsgw")],
            connection=Connection(address="2001:db8::5"),
            bandwidths=[Bandwidth("CT", 100)],
            uri="http://x",
            information="info",
            emails=["e@x"],
            phones=["+1"],
            key="prompt",
            session_name="call",
        )
        self.assertEqual(serialize_sdp(sd), sdp(
            "v=0", "o=- 7 1 IN IP4 192.0.2.1", "s=call", "i=info", "u=http://x", "e=e@x", "p=+1",
            "c=IN IP6 2001:db8::5", "b=CT:100", "t=0 0", "k=prompt", "a=tool:wcsgw",
            "m=audio 4000 RTP/AVP 0 101", "i=voice", "c=IN IP4 192.0.2.2", "b=AS:80",
            "a=rtpmap:101 telephone-event/8000", "a=sendonly",
        ))

    def test_empty_session_name_written_as_dash(self) -> None:
        sd = SessionDescription(Origin(session_id=1, session_version=1, address="h"), session_name="")
        self.assertIn("\r\ns=-\r\n", serialize_sdp(sd))


# -- properties -------------------------------------------------------------------------------
class Properties(SynchronousTestCase):
    @given(session_descriptions())
    @settings(suppress_health_check=[HealthCheck.too_slow], max_examples=300)
    def test_round_trip(self, sd: SessionDescription) -> None:
        text = serialize_sdp(sd)
        self.assertTrue(text.endswith("\r\n"))
        self.assertNotIn("\n", text.replace("\r\n", ""))
        parsed = parse_sdp(text)
        self.assertEqual(parsed, sd)
        self.assertEqual(parse_sdp(text.encode()), sd)
        self.assertEqual(parse_sdp(text.replace("\r\n", "\n")), sd)
        exercise(parsed)

    @given(st.binary(max_size=400))
    @example(b"v=0\r\no=- 1 1 IN IP4 x\r\nm=audio 1 RTP/AVP 99\r\na=rtpmap:99 x/99999999999999\r\n")
    @example(b"v=0\no=- 1 1 IN IP4 x\nm=audio 1 RTP/AVP 1\na=rtpmap:1 a/1/999999\na=rtcp:99999\n")
    def test_random_bytes_only_raise_sdp_parse_error(self, data: bytes) -> None:
        self._parse_or_refuse(b"v=0\r\n" + data)
        self._parse_or_refuse(data)

    @given(st.lists(
        st.tuples(st.sampled_from("vosiuepcbtrzkamxV "), st.sampled_from(["=", "", " ="]),
                  st.text("0123456789 /:IN P46audioRTP/AVP.-abc\t\x00\r", max_size=30)),
        max_size=12,
    ))
    def test_random_lines_only_raise_sdp_parse_error(self, lines: list[tuple[str, str, str]]) -> None:
        text = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\n" + "".join(f"{k}{eq}{v}\n" for k, eq, v in lines)
        self._parse_or_refuse(text)

    @given(
        st.sampled_from(sorted(ALL_FIXTURES)),
        st.lists(
            st.tuples(
                st.sampled_from(["delete", "duplicate", "swap", "insert", "truncate", "replace"]),
                st.integers(0, 200), st.integers(0, 200),
                st.text("vosiuepcbtrzkam=: /0123456789\x00\r-xX", max_size=8),
            ),
            min_size=1, max_size=4,
        ),
    )
    @settings(suppress_health_check=[HealthCheck.too_slow], max_examples=300)
    def test_mutated_real_descriptions(self, name: str, ops: list[tuple[str, int, int, str]]) -> None:
        lines = ALL_FIXTURES[name].split("\r\n")
        for op, i, j, text in ops:
            if not lines:
                break
            i, j = i % len(lines), j % len(lines)
            if op == "delete":
                del lines[i]
            elif op == "duplicate":
                lines.insert(j, lines[i])
            elif op == "swap":
                lines[i], lines[j] = lines[j], lines[i]
            elif op == "insert":
                lines.insert(i, text)
            elif op == "truncate":
                lines[i] = lines[i][: j % (len(lines[i]) + 1)]
            else:
                k = j % (len(lines[i]) + 1)
                lines[i] = lines[i][:k] + text + lines[i][k + 1:]
        self._parse_or_refuse("\r\n".join(lines))

    def _parse_or_refuse(self, data: str | bytes) -> None:
        try:
            sd = parse_sdp(data)
        except SdpParseError:
            return
        exercise(sd)
        text = serialize_sdp(sd)
        self.assertEqual(parse_sdp(text), sd)
        self.assertEqual(serialize_sdp(parse_sdp(text)), text)
