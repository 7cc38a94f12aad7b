"""Video in a call (wcsgw.calls.video and its hooks in Call / InboundCall).

The SIP dialog, the browser's WebRTC leg and the SIP-side media sockets are fakes (the SDP they
carry and the packets they would send are recorded; tests/call_fakes.py: no socket is opened);
the phone's packets are handed to the call's sockets at a clock time, through their latches.
The ports come from a PortAllocator, so the tests also check that every video port goes back
to it.  Timers run on a task.Clock.
"""

from __future__ import annotations

import os
from types import SimpleNamespace
from typing import Any

from twisted.internet import defer
from twisted.trial import unittest

from tests.call_fakes import Account, FakeIncomingInvite, FakeRtpSocket, fake_call_setup, fake_env
from wcsgw.calls.call import Call
from wcsgw.calls.handed import HandedCall
from wcsgw.calls.inbound import InboundCall
from wcsgw.calls.outbound import OutboundCall
from wcsgw.calls.status import CallStatus
from wcsgw.media.rtcp import Feedback, build_rr, build_sdes, build_sr, parse_rtcp
from wcsgw.media.rtcpfb import build_pli
from wcsgw.media.rtp import build_rtp, parse_rtp
from wcsgw.sdp.parser import parse_sdp
from wcsgw.sdp.video import rtcp_feedback
from wcsgw.sip.invite import Answered
from wcsgw.sip.mediacontrol import MEDIA_CONTROL, parse_media_control
from wcsgw.sip.session import InfoAnswered, InfoReceived, ReinviteAnswered, ReinviteOffered
from wcsgw.sip.target import Target

HERE = os.path.dirname(__file__)
CHROME_OFFER = open(os.path.join(HERE, "data", "chromium_offer_av.sdp")).read()
BROWSER_AUDIO_SSRC = 3684613860  # the a=ssrc lines of that offer
BROWSER_VIDEO_SSRC = 140199583
PHONE_VIDEO_SSRC = 0x5EED0001
#: a SIP caller's offer: PCMU and telephone-event, VP8 and H.264 with PLI/FIR feedback
CALLER_OFFER = (
    "v=0\r\no=- 7 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 32000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n"
    "m=video 32002 RTP/AVP 100 97\r\nb=AS:1500\r\na=rtpmap:100 VP8/90000\r\n"
    "a=rtpmap:97 H264/90000\r\na=fmtp:97 packetization-mode=0;profile-level-id=42e01f\r\n"
    "a=rtcp-fb:* ccm fir\r\na=rtcp-fb:* nack pli\r\n")


def sip_answer(video: str | None = "m=video {vport} RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n"
               "a=rtcp-fb:96 nack pli\r\na=rtcp-fb:96 goog-remb\r\nb=AS:800\r\n",
               vport: int = 0, aport: int = 0, direction: str = "sendrecv", version: int = 1) -> bytes:
    text = (f"v=0\r\no=- 5 {version} IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            f"m=audio {aport} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
            f"a=rtpmap:101 telephone-event/8000\r\na={direction}\r\n")
    if video is not None:
        text += video.format(vport=vport) + f"a={direction}\r\n"
    return text.encode()


def answer_to_gateway_offer(offer_text: str, video_pt: int | None, direction: str = "sendrecv",
                            fmtp: str | None = None) -> str:
    """A browser's answer to the gateway's offer: its first audio format, and video with
    ``video_pt`` (None: video rejected, port 0)."""
    offer = parse_sdp(offer_text)
    audio = offer.media[0].codecs()[0]
    text = ("v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n"
            f"m=audio 9 UDP/TLS/RTP/SAVPF {audio.payload_type}\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n"
            "a=ice-ufrag:abcd\r\na=ice-pwd:" + "q" * 24 + "\r\na=fingerprint:sha-256 "
            + "01:" * 31 + "02\r\na=setup:active\r\na=sendrecv\r\na=rtcp-mux\r\n"
            f"a=rtpmap:{audio.payload_type} {audio.rtpmap}\r\n"
            + (f"a=fmtp:{audio.payload_type} {audio.fmtp}\r\n" if audio.fmtp else ""))
    if video_pt is None:
        return text + "m=video 0 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\n"
    codec = next(c for c in offer.media[1].codecs() if c.payload_type == video_pt)
    fmtp = fmtp if fmtp is not None else codec.fmtp
    return text + (f"m=video 9 UDP/TLS/RTP/SAVPF {video_pt}\r\nc=IN IP4 0.0.0.0\r\n"
                   f"a=mid:1\r\na={direction}\r\na=rtcp-mux\r\na=rtpmap:{video_pt} {codec.rtpmap}\r\n"
                   f"a=rtcp-fb:{video_pt} nack pli\r\na=rtcp-fb:{video_pt} goog-remb\r\n"
                   + (f"a=fmtp:{video_pt} {fmtp}\r\n" if fmtp else "")
                   + f"a=ssrc:{BROWSER_VIDEO_SSRC} cname:x\r\n")


def video_packet(pt: int, seq: int, ts: int, ssrc: int, marker: bool = True) -> bytes:
    return build_rtp(payload_type=pt, sequence=seq, timestamp=ts, ssrc=ssrc,
                     payload=b"\x10\x00\x9d\x01\x2a" + bytes(300), marker=marker)


def feedback(packets: list[bytes]) -> list[Feedback]:
    return [p for packet in packets for p in parse_rtcp(packet) if isinstance(p, Feedback)]


class CallVideoCase(unittest.TestCase):
    def setUp(self) -> None:
        fake_call_setup(self)
        self.env = fake_env(self)
        self.statuses: list[dict[str, Any]] = []
        self.notifications: list[tuple[str, dict[str, Any]]] = []
        self.calls: list[Call] = []

    def sip_video(self) -> FakeRtpSocket:
        """The latest call's SIP video socket pair (a fake: it records what it is sent)."""
        video = self.calls[-1].video
        assert video is not None and isinstance(video.rtp, FakeRtpSocket)
        return video.rtp

    @property
    def phone_video(self) -> list[bytes]:
        """The video RTP our relay sent toward the phone (the latest call's)."""
        return self.sip_video().rtp_packets

    @property
    def phone_video_rtcp(self) -> list[bytes]:
        """The video RTCP our relay sent toward the phone (the latest call's)."""
        return self.sip_video().rtcp_packets

    def make_call(self, has_video: bool = True, offer: str = CHROME_OFFER) -> Call:
        call = OutboundCall(env=self.env, call_id=f"c{len(self.calls)}", session_id="s", account=Account(),
                    request_uri="sip:bob@127.0.0.1", callee="bob", visible_name=None,
                    has_audio=True, has_video=has_video, browser_offer=offer, sip_headers={},
                    on_status=self.statuses.append, on_gone=lambda c: None,
                    notify=lambda m, p: self.notifications.append((m, p)))
        self.calls.append(call)
        self.addCleanup(self.close_sockets, call)
        call.start()
        return call

    def incoming(self, offer: str = CALLER_OFFER, source: Target | None = None) -> InboundCall:
        """An incoming call offering ``offer``, started (the browser has been offered it);
        ``source``: where its INVITE came from."""
        invite = FakeIncomingInvite(offer.encode())
        if source is not None:
            invite.transaction = SimpleNamespace(source=source)  # type: ignore[attr-defined]
        call = InboundCall(invite=invite, caller="sip:carol@x",
                           env=self.env, call_id="in", session_id="s", account=Account(),
                           callee="alice", visible_name=None, has_audio=True, has_video=False,
                           on_status=self.statuses.append, on_gone=lambda c: None,
                           notify=lambda m, p: self.notifications.append((m, p)))
        self.calls.append(call)
        self.addCleanup(self.close_sockets, call)
        call.start()
        return call

    def browser_video_pt(self, call: InboundCall, key: str) -> int:
        """The number the browser's offer gave ``key`` ("vp8", "h264")."""
        video = parse_sdp(call.browser_offer_text).media[1]
        return next(c.payload_type for c in video.codecs() if c.key == key)

    def close_sockets(self, call: Call) -> defer.Deferred:
        """Whatever a failed test left open (closing is idempotent)."""
        closing = [s.close() for s in (call.rtp, call.video and call.video.rtp) if s is not None]
        if call.leg is not None:
            closing.append(call.leg.close())
        return defer.gatherResults(closing)

    def sip_vp8_pt(self, call: Call) -> int:
        """The number our INVITE gave VP8."""
        video = parse_sdp(call.invite.offer).media[1]
        return next(c.payload_type for c in video.codecs() if c.key == "vp8")

    def vp8_answer(self, call: Call, **kw: Any) -> bytes:
        pt = self.sip_vp8_pt(call)
        return sip_answer(f"m=video {{vport}} RTP/AVP {pt}\r\na=rtpmap:{pt} VP8/90000\r\n"
                          f"a=rtcp-fb:{pt} nack pli\r\na=rtcp-fb:{pt} goog-remb\r\nb=AS:800\r\n",
                          **kw)

    @defer.inlineCallbacks
    def end_and_check_ports(self, call: Call):
        call.hangup()
        closing = [call.rtp.close()]
        if call.video is not None:
            closing.append(call.video.rtp.close())
        yield defer.gatherResults(closing)
        self.assertEqual(self.allocator.in_use, frozenset())


class OutboundVideoTests(CallVideoCase):
    def test_invite_offers_the_browsers_vp8_and_h264(self) -> None:
        call = self.make_call()
        offer = parse_sdp(call.invite.offer)
        self.assertEqual([m.kind for m in offer.media], ["audio", "video"])
        video = offer.media[1]
        self.assertEqual(video.port, call.video.rtp.port)
        self.assertNotEqual(video.port, offer.media[0].port)
        self.assertEqual(video.proto, "RTP/AVP")
        # VP8 then H.264 (default config order), no rtx/red/VP9/AV1; Chromium's numbers
        # unless the audio offer took one (never shared: the answer must be unambiguous)
        self.assertEqual([c.rtpmap for c in video.codecs()], ["VP8/90000"] + ["H264/90000"] * 6)
        self.assertFalse(set(video.formats) & set(offer.media[0].formats))
        self.assertEqual(video.formats[1:], ["102", "104", "108", "114", "116", "39"])
        pt = self.sip_vp8_pt(call)
        self.assertEqual(rtcp_feedback(video, pt), {"nack pli", "ccm fir", "goog-remb"})
        self.assertEqual([(b.bwtype, b.value) for b in video.bandwidths],
                         [("AS", 1000), ("TIAS", 950000)])
        return self.end_and_check_ports(call)

    def test_browser_that_only_watches_offers_recvonly_video(self) -> None:
        parts = CHROME_OFFER.split("m=video", 1)
        offer = parts[0] + "m=video" + parts[1].replace("a=sendrecv", "a=recvonly", 1)
        call = self.make_call(offer=offer)
        self.assertEqual(parse_sdp(call.invite.offer).media[1].direction, "recvonly")
        call.sip.heard(Answered(self.vp8_answer(call, vport=30002, aport=30000)))
        self.assertEqual(parse_sdp(call.browser_answer).media[1].direction, "sendonly")
        call.hold()  # held: neither way
        self.assertEqual(parse_sdp(call.invite.reinvites[-1]).media[1].direction, "inactive")
        return self.end_and_check_ports(call)

    def test_no_video_when_the_call_does_not_ask_for_it(self) -> None:
        call = self.make_call(has_video=False)
        self.assertIsNone(call.video)
        self.assertEqual([m.kind for m in parse_sdp(call.invite.offer).media], ["audio"])
        return self.end_and_check_ports(call)

    def test_answer_with_video_bundles_it_for_the_browser(self) -> None:
        call = self.make_call()
        sip_pt = self.sip_vp8_pt(call)
        call.sip.heard(Answered(self.vp8_answer(call, vport=30002, aport=30000)))
        self.assertEqual(call.status, CallStatus.ESTABLISHED)
        answer = parse_sdp(call.browser_answer)
        self.assertIn("BUNDLE 0 1", answer.get("group"))
        video = answer.media[1]
        self.assertEqual((video.kind, video.formats, video.port), ("video", ["96"], call.leg.port))
        self.assertEqual(rtcp_feedback(video, 96), {"nack pli", "ccm fir", "goog-remb"})
        self.assertEqual([(b.bwtype, b.value) for b in video.bandwidths][0], ("AS", 800))
        media = call.describe()["media"]["video"]
        self.assertEqual((media["webrtcCodec"], media["sipCodec"], media["webrtcPayloadType"],
                          media["sipPayloadType"]), ("VP8/90000", "VP8/90000", 96, sip_pt))
        self.assertTrue(call.describe()["hasVideo"])
        self.assertEqual(call.video.rtp.remote_rtp, ("127.0.0.1", 30002))
        self.assertEqual(call.video.rtp.remote_rtcp, ("127.0.0.1", 30003))
        return self.end_and_check_ports(call)

    def test_audio_and_video_latch_only_to_the_sdp_or_signalling_ip(self) -> None:
        """RTP bleed: the 2xx came from 192.0.2.50 (a proxy, a NAT box) and its SDP names
        127.0.0.1; both SIP-side sockets take packets from those IPs only (the first one
        latches), and a re-INVITE from elsewhere moves what they take."""
        call = self.make_call()
        call.sip.heard(Answered(self.vp8_answer(call, vport=30002, aport=30000),
                                    source=Target("UDP", "192.0.2.50", 5060)))
        for sock in (call.rtp, call.video.rtp):
            self.assertEqual(sock.rtp_latch.allowed_ips, {"127.0.0.1", "192.0.2.50"})
            self.assertEqual(sock.rtcp_latch.allowed_ips, {"127.0.0.1", "192.0.2.50"})
        got: list[bytes] = []
        call.video.rtp.on_rtp = lambda packet, now: got.append(packet)
        packet = video_packet(self.sip_vp8_pt(call), 1, 1, PHONE_VIDEO_SSRC)
        call.video.rtp.receive(packet, ("198.51.100.9", 30002))  # a stranger
        call.video.rtp.receive(packet, ("192.0.2.50", 41000))  # NAT: the 2xx's IP
        call.video.rtp.receive(packet, ("127.0.0.1", 30004))  # latched: not it now
        self.assertEqual(len(got), 1)
        self.assertEqual(call.video.rtp.remote_rtp, ("192.0.2.50", 41000))
        self.assertEqual(call.video.rtp.dropped, 2)
        call.sip.heard(ReinviteOffered(
            self.vp8_answer(call, vport=31002, aport=31000, version=2),
            source=Target("UDP", "192.0.2.60", 5060)))
        for sock in (call.rtp, call.video.rtp):
            self.assertEqual(sock.rtp_latch.allowed_ips, {"127.0.0.1", "192.0.2.60"})
            self.assertFalse(sock.rtp_latch.latched)
        self.assertEqual(call.video.rtp.remote_rtp, ("127.0.0.1", 31002))
        return self.end_and_check_ports(call)

    def test_h264_answer_maps_payload_types(self) -> None:
        call = self.make_call()
        h264 = ("m=video {vport} RTP/AVP 126\r\na=rtpmap:126 H264/90000\r\n"
                "a=fmtp:126 packetization-mode=1;profile-level-id=42e01e\r\n")
        call.sip.heard(Answered(sip_answer(h264, vport=30002, aport=30000)))
        video = parse_sdp(call.browser_answer).media[1]
        # Chromium's 108 is H.264 constrained baseline, mode 1; level lowered to the phone's
        self.assertEqual(video.formats, ["108"])
        self.assertEqual(video.codecs()[0].fmtp_params["profile-level-id"], "42e01e")
        call.leg.on_rtp(video_packet(108, 1, 1000, BROWSER_VIDEO_SSRC), self.clock.seconds())
        call.video.rtp.receive(video_packet(126, 9, 5000, PHONE_VIDEO_SSRC))
        self.assertEqual([parse_rtp(p).payload_type for p in self.phone_video], [126])
        to_browser = [parse_rtp(p) for p in call.leg.rtp_packets if parse_rtp(p).payload_type == 108]
        self.assertEqual(len(to_browser), 1)
        return self.end_and_check_ports(call)

    def test_h264_phone_that_sends_with_another_offered_number(self) -> None:
        """baresip (avcodec) answers Chromium's H.264 list with 116 and 39 (its own fmtp),
        then sends with 102: the offer's first H.264 of its packetization-mode."""
        call = self.make_call()
        offered = {c.payload_type: c for c in parse_sdp(call.invite.offer).media[1].codecs()}
        self.assertEqual(offered[102].fmtp_params["profile-level-id"], "42001f")
        baresip = ("m=video {vport} RTP/AVP 116 39\r\na=rtpmap:116 H264/90000\r\n"
                   "a=fmtp:116 packetization-mode=1;profile-level-id=42e01f\r\n"
                   "a=rtpmap:39 H264/90000\r\n"
                   "a=fmtp:39 packetization-mode=0;profile-level-id=42e01f\r\n")
        call.sip.heard(Answered(sip_answer(baresip, vport=30002, aport=30000)))
        video = parse_sdp(call.browser_answer).media[1]
        self.assertEqual(video.formats, ["108"])  # Chromium's constrained baseline, mode 1
        for pt in (102, 116, 108, 104):  # 104 is mode 0: not this stream
            call.video.rtp.receive(video_packet(pt, pt, 1, PHONE_VIDEO_SSRC))
        self.assertEqual([parse_rtp(p).payload_type for p in call.leg.rtp_packets], [108, 108, 108])
        # toward the phone: the number its answer gave
        call.leg.on_rtp(video_packet(108, 1, 1000, BROWSER_VIDEO_SSRC), self.clock.seconds())
        self.assertEqual([parse_rtp(p).payload_type for p in self.phone_video], [116])
        return self.end_and_check_ports(call)

    def test_sip_side_rejects_video_call_goes_on_audio_only(self) -> None:
        call = self.make_call()
        video_port = call.video.rtp.port
        call.sip.heard(Answered(sip_answer("m=video 0 RTP/AVP 96\r\n", aport=30000)))
        self.assertEqual(call.status, CallStatus.ESTABLISHED)
        answer = parse_sdp(call.browser_answer)
        self.assertEqual(answer.media[1].port, 0)
        self.assertIn("BUNDLE 0", answer.get("group"))
        self.assertNotIn("1", answer.get("group").split()[1:])
        self.assertFalse(call.describe()["hasVideo"])
        self.assertIsNone(call.describe()["media"]["video"])
        # the video socket is closed at once; a re-offer keeps the m-line with port 0
        self.assertTrue(call.video.rejected)
        call.hold()
        reoffer = parse_sdp(call.invite.reinvites[-1])
        self.assertEqual([(m.kind, m.port) for m in reoffer.media][1], ("video", 0))
        self.assertNotEqual(reoffer.media[1].port, video_port)
        return self.end_and_check_ports(call)

    def test_inactive_video_in_the_sip_answer_declines_it(self) -> None:
        call = self.make_call()
        pt = self.sip_vp8_pt(call)
        answer = sip_answer(f"m=video {{vport}} RTP/AVP {pt}\r\na=rtpmap:{pt} VP8/90000\r\n"
                            "a=inactive\r\n", vport=30002, aport=30000)
        call.sip.heard(Answered(answer))
        self.assertEqual(parse_sdp(call.browser_answer).media[1].port, 0)
        self.assertFalse(call.has_video)
        return self.end_and_check_ports(call)

    def test_answer_without_a_video_line(self) -> None:
        call = self.make_call()
        call.sip.heard(Answered(sip_answer(None, aport=30000)))
        self.assertEqual(parse_sdp(call.browser_answer).media[1].port, 0)
        self.assertFalse(call.has_video)
        return self.end_and_check_ports(call)


class VideoMediaTests(CallVideoCase):
    def established(self) -> Call:
        call = self.make_call()
        self.pt = self.sip_vp8_pt(call)
        call.sip.heard(Answered(self.vp8_answer(call, vport=30002, aport=30000)))
        self.our_browser_ssrc = int(parse_sdp(call.browser_answer).media[1].get("ssrc").split()[0])
        return call

    def test_packets_demultiplexed_by_payload_type(self) -> None:
        call = self.established()
        call.leg.on_rtp(video_packet(96, 1, 1000, BROWSER_VIDEO_SSRC), self.clock.seconds())
        call.leg.on_rtp(build_rtp(payload_type=0, sequence=1, timestamp=160,
                                  ssrc=BROWSER_AUDIO_SSRC, payload=bytes(160)), self.clock.seconds())
        # only the video packet reached the SIP video socket, with the phone's number
        (relayed,) = self.phone_video
        self.assertEqual(parse_rtp(relayed).payload_type, self.pt)
        self.assertEqual(call.video.relay.stats()["webrtc"]["packets_received"], 1)
        # and back: the phone's video goes to the browser with the SSRC our answer named
        call.video.rtp.receive(video_packet(self.pt, 50, 9000, PHONE_VIDEO_SSRC))
        (header,) = [parse_rtp(p) for p in call.leg.rtp_packets]
        self.assertEqual((header.payload_type, header.ssrc), (96, self.our_browser_ssrc))
        return self.end_and_check_ports(call)

    def test_keyframe_requests_at_start_and_relayed_pli(self) -> None:
        call = self.established()
        # the phone's first packet brings our PLI to it (the path started)
        call.video.rtp.receive(video_packet(self.pt, 50, 9000, PHONE_VIDEO_SSRC))
        (first,) = feedback(self.phone_video_rtcp)
        self.assertTrue(first.is_pli)
        self.assertEqual(first.media_ssrc, PHONE_VIDEO_SSRC)
        # the browser's first video packet brings one to it
        call.leg.on_rtp(video_packet(96, 1, 1000, BROWSER_VIDEO_SSRC), self.clock.seconds())
        (to_browser,) = feedback(call.leg.rtcp)
        self.assertEqual((to_browser.is_pli, to_browser.media_ssrc), (True, BROWSER_VIDEO_SSRC))
        # a PLI from the browser (compound, from its video SSRC) reaches the phone
        self.clock.advance(1)
        call.leg.on_rtcp(build_rr(BROWSER_VIDEO_SSRC) + build_sdes(BROWSER_VIDEO_SSRC, "x")
                         + build_pli(BROWSER_VIDEO_SSRC, self.our_browser_ssrc), self.clock.seconds())
        self.assertEqual(len(feedback(self.phone_video_rtcp)), 2)
        self.assertEqual(call.video.relay.stats()["webrtc"]["keyframe_requests_received"], 1)
        return self.end_and_check_ports(call)

    def test_audio_rtcp_stays_with_the_audio_bridge(self) -> None:
        call = self.established()
        audio_reports = call.bridge.rtcp["webrtc"].reports_received
        call.leg.on_rtcp(build_sr(BROWSER_AUDIO_SSRC, 1 << 32, 0, 1, 1) +
                         build_sdes(BROWSER_AUDIO_SSRC, "x"), self.clock.seconds())
        self.assertEqual(call.bridge.rtcp["webrtc"].reports_received, audio_reports + 1)
        video_reports = call.video.relay.rtcp["webrtc"].reports_received
        self.assertEqual(video_reports, 0)
        call.leg.on_rtcp(build_sr(BROWSER_VIDEO_SSRC, 1 << 32, 0, 1, 1) +
                         build_sdes(BROWSER_VIDEO_SSRC, "x"), self.clock.seconds())
        self.assertEqual(call.bridge.rtcp["webrtc"].reports_received, audio_reports + 1)
        self.assertEqual(call.video.relay.rtcp["webrtc"].reports_received, 1)
        return self.end_and_check_ports(call)

    def test_remb_toward_the_browser_from_the_phones_bandwidth(self) -> None:
        call = self.established()
        call.leg.on_rtp(video_packet(96, 1, 1000, BROWSER_VIDEO_SSRC), self.clock.seconds())
        call.leg.rtcp.clear()
        self.clock.advance(3)  # the ticker runs each second; video reports every ~1 s
        rembs = [f for f in feedback(call.leg.rtcp) if f.is_remb]
        self.assertTrue(rembs)
        from wcsgw.media.rtcpfb import parse_remb

        bitrate, ssrcs = parse_remb(rembs[-1])
        self.assertEqual(ssrcs, (BROWSER_VIDEO_SSRC,))
        self.assertTrue(790_000 < bitrate <= 800_000, bitrate)  # the phone's b=AS:800
        return self.end_and_check_ports(call)

    def test_hold_and_unhold_cover_video(self) -> None:
        call = self.established()
        call.video.rtp.receive(video_packet(self.pt, 50, 9000, PHONE_VIDEO_SSRC))
        call.leg.on_rtp(video_packet(96, 1, 1000, BROWSER_VIDEO_SSRC), self.clock.seconds())
        call.hold()
        held = parse_sdp(call.invite.reinvites[-1])
        self.assertEqual([m.direction for m in held.media], ["sendonly", "sendonly"])
        self.assertEqual(held.media[1].formats, [str(self.pt)])  # only the codec in use
        call.sip.heard(ReinviteAnswered(self.vp8_answer(call, vport=30002, aport=30000,
                                                       direction="recvonly", version=2)))
        self.assertEqual(call.status, CallStatus.HOLD)
        sent = len(self.phone_video)
        call.leg.on_rtp(video_packet(96, 2, 4000, BROWSER_VIDEO_SSRC), self.clock.seconds())
        self.assertEqual(len(self.phone_video), sent)  # held: not forwarded
        before_phone = len(feedback(self.phone_video_rtcp))
        before_browser = len(feedback(call.leg.rtcp))
        call.unhold()
        call.sip.heard(ReinviteAnswered(self.vp8_answer(call, vport=30002, aport=30000, version=3)))
        self.assertEqual(call.status, CallStatus.ESTABLISHED)
        # resumed: a key frame asked of both senders, and the browser's video flows again
        self.assertEqual(len(feedback(self.phone_video_rtcp)), before_phone + 1)
        self.assertEqual(len(feedback(call.leg.rtcp)), before_browser + 1)
        call.leg.on_rtp(video_packet(96, 3, 7000, BROWSER_VIDEO_SSRC), self.clock.seconds())
        self.assertEqual(len(self.phone_video), sent + 1)
        return self.end_and_check_ports(call)

    def test_sip_reinvite_moves_video_and_asks_for_a_keyframe(self) -> None:
        call = self.established()
        call.video.rtp.receive(video_packet(self.pt, 50, 9000, PHONE_VIDEO_SSRC))
        before = len(feedback(self.phone_video_rtcp))
        self.clock.advance(1)
        call.sip.heard(ReinviteOffered(self.vp8_answer(call, vport=31002, aport=31000, version=2)))
        (answer_bytes,) = call.invite.reinvite_answers
        answer = parse_sdp(answer_bytes)
        self.assertEqual([(m.kind, m.port) for m in answer.media],
                         [("audio", call.rtp.port), ("video", call.video.rtp.port)])
        self.assertEqual(answer.media[1].formats, [str(self.pt)])
        self.assertEqual(call.video.rtp.remote_rtp, ("127.0.0.1", 31002))
        self.assertEqual(len(feedback(self.phone_video_rtcp)), before + 1)
        return self.end_and_check_ports(call)

    def test_sip_reinvite_holding_video(self) -> None:
        call = self.established()
        call.sip.heard(ReinviteOffered(self.vp8_answer(call, vport=30002, aport=30000,
                                                      direction="sendonly", version=2)))
        answer = parse_sdp(call.invite.reinvite_answers[-1])
        self.assertEqual([m.direction for m in answer.media], ["recvonly", "recvonly"])
        self.assertEqual(call.status, CallStatus.HOLD)
        call.leg.on_rtp(video_packet(96, 1, 1000, BROWSER_VIDEO_SSRC), self.clock.seconds())
        self.assertEqual(self.phone_video, [])  # the phone does not receive video now
        return self.end_and_check_ports(call)

    def test_reinvite_with_extra_m_lines_is_answered_line_for_line(self) -> None:
        call = self.established()
        offer = self.vp8_answer(call, vport=30002, aport=30000, version=2) + (
            b"m=application 5000 UDP/BFCP *\r\n")
        call.sip.heard(ReinviteOffered(offer))
        answer = parse_sdp(call.invite.reinvite_answers[-1])
        self.assertEqual([(m.kind, m.port == 0) for m in answer.media],
                         [("audio", False), ("video", False), ("application", True)])
        return self.end_and_check_ports(call)


class InboundVideoTests(CallVideoCase):
    def test_incoming_call_offers_the_callers_video(self) -> None:
        call = self.incoming()
        (method, params), = [n for n in self.notifications if n[0] == "incomingCall"]
        self.assertTrue(params["hasVideo"])
        offer = parse_sdp(params["sdp"])
        video = offer.media[1]
        self.assertEqual(video.kind, "video")
        self.assertEqual([c.rtpmap for c in video.codecs()], ["VP8/90000", "H264/90000"])
        self.assertFalse(set(video.formats) & set(offer.media[0].formats))
        self.assertIn("BUNDLE 0 1", offer.get("group"))
        self.assertEqual(video.bandwidths[0].value, 1500)
        return self.end_and_check_ports(call)

    def test_browser_takes_h264_sip_answer_uses_the_callers_number(self) -> None:
        call = self.incoming()
        h264_pt = self.browser_video_pt(call, "h264")
        call.answer(answer_to_gateway_offer(call.browser_offer_text, h264_pt))
        answer = parse_sdp(call.invite.answered)
        video = answer.media[1]
        self.assertEqual((video.port, video.formats), (call.video.rtp.port, ["97"]))
        self.assertEqual(video.codecs()[0].fmtp_params["packetization-mode"], "0")
        self.assertEqual(rtcp_feedback(video, 97), {"nack pli", "ccm fir"})
        self.assertEqual(call.video.rtp.remote_rtp, ("127.0.0.1", 32002))
        self.assertTrue(call.describe()["hasVideo"])
        # media: the caller's 97 becomes the browser's number
        call.video.rtp.receive(video_packet(97, 1, 1, PHONE_VIDEO_SSRC))
        self.assertEqual([parse_rtp(p).payload_type for p in call.leg.rtp_packets], [h264_pt])
        return self.end_and_check_ports(call)

    def test_caller_media_latches_to_the_sdp_or_the_invites_ip(self) -> None:
        """RTP bleed, incoming: the INVITE came from 192.0.2.70, its SDP names 127.0.0.1."""
        call = self.incoming(source=Target("UDP", "192.0.2.70", 5060))
        call.answer(answer_to_gateway_offer(call.browser_offer_text,
                                            self.browser_video_pt(call, "vp8")))
        for sock in (call.rtp, call.video.rtp):
            self.assertEqual(sock.rtp_latch.allowed_ips, {"127.0.0.1", "192.0.2.70"})
            self.assertEqual(sock.rtcp_latch.allowed_ips, {"127.0.0.1", "192.0.2.70"})
        call.rtp.receive(b"\x80\x00" + bytes(170), ("198.51.100.9", 32000))
        self.assertEqual((call.rtp.dropped, call.rtp.rtp_latch.latched), (1, False))
        return self.end_and_check_ports(call)

    def test_browser_declines_video(self) -> None:
        call = self.incoming()
        call.answer(answer_to_gateway_offer(call.browser_offer_text, None))
        answer = parse_sdp(call.invite.answered)
        self.assertEqual([(m.kind, m.port == 0) for m in answer.media],
                         [("audio", False), ("video", True)])
        self.assertFalse(call.describe()["hasVideo"])
        return self.end_and_check_ports(call)

    def test_browser_answers_video_inactive(self) -> None:
        """The Web SDK's "Answer" (no camera, no remote video) answers video a=inactive."""
        call = self.incoming()
        vp8 = self.browser_video_pt(call, "vp8")
        call.answer(answer_to_gateway_offer(call.browser_offer_text, vp8, "inactive"))
        answer = parse_sdp(call.invite.answered)
        self.assertEqual(answer.media[1].port, 0)
        self.assertFalse(call.describe()["hasVideo"])
        return self.end_and_check_ports(call)

    def test_browser_only_watches(self) -> None:
        call = self.incoming()
        vp8 = self.browser_video_pt(call, "vp8")
        call.answer(answer_to_gateway_offer(call.browser_offer_text, vp8, "recvonly"))
        video = parse_sdp(call.invite.answered).media[1]
        self.assertEqual((video.formats, video.direction), (["100"], "recvonly"))
        self.assertTrue(call.describe()["hasVideo"])
        return self.end_and_check_ports(call)

    def test_caller_without_video(self) -> None:
        call = self.incoming(CALLER_OFFER.split("m=video")[0])
        (_, params), = [n for n in self.notifications if n[0] == "incomingCall"]
        self.assertFalse(params["hasVideo"])
        self.assertEqual(len(parse_sdp(params["sdp"]).media), 1)
        self.assertIsNone(call.video)
        return self.end_and_check_ports(call)



FAST_UPDATE = (b'<?xml version="1.0" encoding="utf-8" ?>\r\n<media_control><vc_primitive>'
               b"<to_encoder><picture_fast_update/></to_encoder></vc_primitive></media_control>")


def fast_updates(infos: list[tuple[str, bytes]]) -> int:
    """How many of the INFOs sent are RFC 5168 key-frame requests."""
    return sum(1 for ctype, body in infos
               if ctype == MEDIA_CONTROL and parse_media_control(body).picture_fast_update)


def plis_to_browser(call: Call) -> list[Feedback]:
    return [f for f in feedback(call.leg.rtcp) if f.is_pli]


class InfoFastUpdateTests(CallVideoCase):
    """SIP INFO picture_fast_update (RFC 5168) both ways, and its queueing with DTMF INFO."""

    def established(self, feedback_lines: str = "") -> Call:
        call = self.make_call()
        self.pt = pt = self.sip_vp8_pt(call)
        call.sip.heard(Answered(sip_answer(
            f"m=video {{vport}} RTP/AVP {pt}\r\na=rtpmap:{pt} VP8/90000\r\n"
            + feedback_lines.format(pt=pt), vport=30002, aport=30000)))
        self.our_browser_ssrc = int(parse_sdp(call.browser_answer).media[1].get("ssrc").split()[0])
        return call

    def browser_pli(self, call: Call) -> None:
        call.leg.on_rtcp(build_rr(BROWSER_VIDEO_SSRC) + build_sdes(BROWSER_VIDEO_SSRC, "x")
                         + build_pli(BROWSER_VIDEO_SSRC, self.our_browser_ssrc), self.clock.seconds())

    def test_phone_without_rtcp_feedback_is_asked_by_info(self) -> None:
        call = self.established()
        self.assertTrue(call.video.sip_needs_info)
        self.assertEqual(call.invite.infos, [])  # nothing before the phone's first packet
        call.video.rtp.receive(video_packet(self.pt, 50, 9000, PHONE_VIDEO_SSRC))
        # path start: the RTCP PLI and the INFO
        self.assertEqual(len(feedback(self.phone_video_rtcp)), 1)
        self.assertEqual(fast_updates(call.invite.infos), 1)
        # a browser PLI while that INFO is unanswered: PLI by RTCP, no second INFO
        self.clock.advance(2)
        self.browser_pli(call)
        self.assertEqual(len(feedback(self.phone_video_rtcp)), 2)
        self.assertEqual(fast_updates(call.invite.infos), 1)
        call.sip.heard(InfoAnswered(200))
        # answered: the next request goes by INFO again ...
        self.clock.advance(2)
        self.browser_pli(call)
        self.assertEqual(fast_updates(call.invite.infos), 2)
        call.sip.heard(InfoAnswered(200))
        # ... but not within the INFO interval (the RTCP throttle has passed: 0.6 s)
        self.clock.advance(0.6)
        self.browser_pli(call)
        self.assertEqual(len(feedback(self.phone_video_rtcp)), 4)
        self.assertEqual(fast_updates(call.invite.infos), 2)
        self.assertEqual(call.video.fast_update.suppressed, 2)
        return self.end_and_check_ports(call)

    def test_phone_with_pli_or_fir_gets_no_info(self) -> None:
        for lines in ("a=rtcp-fb:{pt} nack pli\r\n", "a=rtcp-fb:{pt} ccm fir\r\n"):
            call = self.established(lines)
            self.assertFalse(call.video.sip_needs_info)
            call.video.rtp.receive(video_packet(self.pt, 50, 9000, PHONE_VIDEO_SSRC))
            self.clock.advance(2)
            self.browser_pli(call)
            self.assertEqual(len(feedback(self.phone_video_rtcp)), 2)
            self.assertEqual(call.invite.infos, [])
            call.hangup()
        return self.end_and_check_ports(call)

    def test_refusing_answer_turns_info_off_for_the_call(self) -> None:
        for status in (415, 405, 501):
            call = self.established()
            call.video.rtp.receive(video_packet(self.pt, 50, 9000, PHONE_VIDEO_SSRC))
            self.assertEqual(fast_updates(call.invite.infos), 1)
            call.sip.heard(InfoAnswered(status))
            self.clock.advance(2)
            self.browser_pli(call)
            self.assertEqual(fast_updates(call.invite.infos), 1)  # no more INFO ...
            self.assertEqual(len(feedback(self.phone_video_rtcp)), 2)  # ... RTCP goes on
            self.assertEqual(call.video.fast_update.disabled_by, status)
            self.assertEqual(call.status, CallStatus.ESTABLISHED)
            call.hangup()
        return self.end_and_check_ports(call)

    def test_retarget_forces_an_info_within_the_interval(self) -> None:
        call = self.established()
        call.video.rtp.receive(video_packet(self.pt, 50, 9000, PHONE_VIDEO_SSRC))
        call.sip.heard(InfoAnswered(200))
        self.clock.advance(0.2)
        pt = self.pt
        call.sip.heard(ReinviteOffered(sip_answer(
            f"m=video {{vport}} RTP/AVP {pt}\r\na=rtpmap:{pt} VP8/90000\r\n",
            vport=31002, aport=31000, version=2)))
        self.assertEqual(call.video.rtp.remote_rtp, ("127.0.0.1", 31002))
        self.assertEqual(fast_updates(call.invite.infos), 2)
        return self.end_and_check_ports(call)

    def test_info_from_the_phone_becomes_a_pli_to_the_browser(self) -> None:
        call = self.established("a=rtcp-fb:{pt} nack pli\r\n")
        call.leg.on_rtp(video_packet(96, 1, 1000, BROWSER_VIDEO_SSRC), self.clock.seconds())
        self.assertEqual(len(plis_to_browser(call)), 1)  # path start
        self.clock.advance(1)
        call.sip.heard(InfoReceived("Application/Media_Control+XML; charset=utf-8",
                                        FAST_UPDATE))
        plis = plis_to_browser(call)
        self.assertEqual(len(plis), 2)
        self.assertEqual(plis[-1].media_ssrc, BROWSER_VIDEO_SSRC)
        self.assertEqual(call.video.relay.stats()["sip"]["keyframe_requests_received"], 1)
        # the RTCP path's throttle: a second request right away is not passed on
        call.sip.heard(InfoReceived(MEDIA_CONTROL, FAST_UPDATE))
        self.assertEqual(len(plis_to_browser(call)), 2)
        self.assertEqual(call.video.fast_updates_received, 2)
        # garbage and other commands: ignored, no DTMF notification, nothing raised
        self.clock.advance(1)
        for body in (b"<media_control><vc_primitive>", b"Signal=5\r\n",
                     b"<media_control><vc_primitive><to_encoder><mute/></to_encoder>"
                     b"</vc_primitive></media_control>"):
            call.sip.heard(InfoReceived(MEDIA_CONTROL, body))
        self.assertEqual(len(plis_to_browser(call)), 2)
        self.assertEqual([n for n in self.notifications if n[0] == "dtmf"], [])
        self.assertEqual(call.status, CallStatus.ESTABLISHED)
        return self.end_and_check_ports(call)

    def test_general_error_from_the_phone_stops_our_info(self) -> None:
        call = self.established()
        call.sip.heard(InfoReceived(MEDIA_CONTROL, b"<media_control><general_error>"
                                        b"Unknown command</general_error></media_control>"))
        call.video.rtp.receive(video_packet(self.pt, 50, 9000, PHONE_VIDEO_SSRC))
        self.assertEqual(len(feedback(self.phone_video_rtcp)), 1)
        self.assertEqual(call.invite.infos, [])
        return self.end_and_check_ports(call)

    def test_dtmf_info_keeps_working_and_queues_with_fast_update(self) -> None:
        call = self.established()
        call.send_dtmf("12", "INFO")
        self.assertEqual(call.invite.infos, [("application/dtmf-relay",
                                              b"Signal=1\r\nDuration=250\r\n")])
        # a key-frame request while "1" is unanswered: queued, ahead of "2"
        call.video.rtp.receive(video_packet(self.pt, 50, 9000, PHONE_VIDEO_SSRC))
        self.assertEqual(len(call.invite.infos), 1)
        call.sip.heard(InfoAnswered(200))
        self.assertEqual(fast_updates(call.invite.infos[1:]), 1)
        # the fast update's 415 is its own: DTMF INFO goes on, fast update stops
        call.sip.heard(InfoAnswered(415))
        self.assertEqual(call.invite.infos[2], ("application/dtmf-relay",
                                                b"Signal=2\r\nDuration=250\r\n"))
        self.assertFalse(call.video.fast_update.enabled)
        call.sip.heard(InfoAnswered(200))
        self.assertEqual(len(call.invite.infos), 3)
        # and DTMF INFO from the phone is still a dtmf notification
        call.sip.heard(InfoReceived("application/dtmf-relay", b"Signal=7\r\nDuration=160\r\n"))
        self.assertEqual([p["dtmf"] for m, p in self.notifications if m == "dtmf"], ["7"])
        return self.end_and_check_ports(call)

    def test_no_info_before_the_call_is_established(self) -> None:
        """Early media (183 with SDP): the relay runs, but INFO needs the confirmed dialog."""
        from wcsgw.sip.invite import Provisional

        call = self.make_call()
        pt = self.sip_vp8_pt(call)
        call.sip.heard(Provisional(183, "Session Progress", sip_answer(
            f"m=video {{vport}} RTP/AVP {pt}\r\na=rtpmap:{pt} VP8/90000\r\n",
            vport=30002, aport=30000)))
        self.assertIsNotNone(call.video.relay)
        call.video.rtp.receive(video_packet(pt, 50, 9000, PHONE_VIDEO_SSRC))
        self.assertEqual(call.video.fast_update.sent, 1)  # wanted (path start) ...
        self.assertEqual(call.invite.infos, [])  # ... but not sent in the early dialog
        self.assertFalse(call.video.fast_update.in_flight)  # not stuck: the next one may go
        return self.end_and_check_ports(call)

    def test_incoming_call_from_a_phone_without_feedback(self) -> None:
        offer = CALLER_OFFER.replace("a=rtcp-fb:* ccm fir\r\n", "").replace(
            "a=rtcp-fb:* nack pli\r\n", "")
        call = self.incoming(offer)
        vp8 = self.browser_video_pt(call, "vp8")
        call.answer(answer_to_gateway_offer(call.browser_offer_text, vp8))
        self.assertEqual(call.status, CallStatus.ESTABLISHED)
        self.assertTrue(call.video.sip_needs_info)
        call.video.rtp.receive(video_packet(100, 1, 1, PHONE_VIDEO_SSRC))
        self.assertEqual(fast_updates(call.invite.infos), 1)
        # and the caller's INFO reaches the browser as a PLI
        call.leg.on_rtp(video_packet(vp8, 1, 1000, BROWSER_VIDEO_SSRC), self.clock.seconds())
        before = len(plis_to_browser(call))
        self.clock.advance(1)
        call.sip.heard(InfoReceived(MEDIA_CONTROL, FAST_UPDATE))
        self.assertEqual(len(plis_to_browser(call)), before + 1)
        return self.end_and_check_ports(call)


class HandedVideoTests(CallVideoCase):
    """REST call/startup with sessionId and hasVideo: the browser answers the gateway's offer
    first, then the INVITE offers the video format it kept."""

    def handed(self, has_video: bool = True) -> HandedCall:
        call = HandedCall(request_uri="sip:bob@127.0.0.1", env=self.env, call_id="h",
                          session_id="s", account=Account(), callee="bob", visible_name=None,
                          has_audio=True, has_video=has_video,
                          on_status=self.statuses.append, on_gone=lambda c: None,
                          notify=lambda m, p: self.notifications.append((m, p)))
        self.calls.append(call)
        self.addCleanup(self.close_sockets, call)
        call.start()
        return call

    def browser_video(self, call: HandedCall, key: str, mode: str | None = None) -> Any:
        return next(c for c in parse_sdp(call.browser_offer_text).media[1].codecs()
                    if c.key == key and (mode is None
                                         or c.fmtp_params.get("packetization-mode") == mode))

    def test_browser_is_offered_vp8_and_h264(self) -> None:
        call = self.handed()
        (_, params), = [n for n in self.notifications if n[0] == "incomingCall"]
        self.assertTrue(params["hasVideo"])
        offer = parse_sdp(params["sdp"])
        self.assertEqual([m.kind for m in offer.media], ["audio", "video"])
        video = offer.media[1]
        self.assertIn("BUNDLE 0 1", offer.get("group"))
        self.assertEqual([c.rtpmap for c in video.codecs()],
                         ["VP8/90000", "H264/90000", "H264/90000"])
        self.assertEqual(sorted(c.fmtp_params.get("packetization-mode")
                                for c in video.codecs()[1:]), ["0", "1"])
        self.assertFalse(set(video.formats) & set(offer.media[0].formats))
        self.assertIsNone(call.invite)  # the INVITE waits for the browser's answer
        return self.end_and_check_ports(call)

    def test_vp8_both_ways(self) -> None:
        call = self.handed()
        vp8 = self.browser_video(call, "vp8")
        call.answer(answer_to_gateway_offer(call.browser_offer_text, vp8.payload_type))
        invite = parse_sdp(call.invite.offer)
        self.assertEqual([m.kind for m in invite.media], ["audio", "video"])
        video = invite.media[1]
        self.assertEqual([c.rtpmap for c in video.codecs()], ["VP8/90000"])  # only the kept one
        self.assertEqual(video.port, call.video.rtp.port)
        sip_pt = video.codecs()[0].payload_type
        self.assertFalse({str(sip_pt)} & set(invite.media[0].formats))
        call.sip.heard(Answered(sip_answer(
            f"m=video {{vport}} RTP/AVP {sip_pt}\r\na=rtpmap:{sip_pt} VP8/90000\r\n"
            f"a=rtcp-fb:{sip_pt} nack pli\r\nb=AS:600\r\n", vport=30002, aport=30000)))
        self.assertEqual(call.status, CallStatus.ESTABLISHED)
        self.assertTrue(call.describe()["hasVideo"])
        media = call.describe()["media"]["video"]
        self.assertEqual((media["webrtcCodec"], media["webrtcPayloadType"], media["sipPayloadType"],
                          media["kbps"]), ("VP8/90000", vp8.payload_type, sip_pt, 600))
        self.assertEqual(call.video.rtp.remote_rtp, ("127.0.0.1", 30002))
        # packets both ways, renumbered per leg
        call.leg.on_rtp(video_packet(vp8.payload_type, 1, 1000, BROWSER_VIDEO_SSRC), self.clock.seconds())
        call.video.rtp.receive(video_packet(sip_pt, 7, 5000, PHONE_VIDEO_SSRC))
        self.assertEqual([parse_rtp(p).payload_type for p in self.phone_video], [sip_pt])
        to_browser = [parse_rtp(p) for p in call.leg.rtp_packets]
        self.assertEqual([(h.payload_type, h.ssrc) for h in to_browser],
                         [(vp8.payload_type, call.video.webrtc_ssrc)])
        return self.end_and_check_ports(call)

    def test_h264_mode_1(self) -> None:
        call = self.handed()
        h264 = self.browser_video(call, "h264", "1")
        call.answer(answer_to_gateway_offer(
            call.browser_offer_text, h264.payload_type,
            fmtp="level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"))
        (offered,) = parse_sdp(call.invite.offer).media[1].codecs()
        self.assertEqual((offered.key, offered.fmtp_params["packetization-mode"],
                          offered.fmtp_params["profile-level-id"]), ("h264", "1", "42e01f"))
        pt = offered.payload_type
        call.sip.heard(Answered(sip_answer(
            f"m=video {{vport}} RTP/AVP {pt}\r\na=rtpmap:{pt} H264/90000\r\n"
            f"a=fmtp:{pt} packetization-mode=1;profile-level-id=42e01e\r\n",
            vport=30002, aport=30000)))
        self.assertEqual(call.describe()["media"]["video"]["webrtcPayloadType"], h264.payload_type)
        call.video.rtp.receive(video_packet(pt, 7, 5000, PHONE_VIDEO_SSRC))
        self.assertEqual([parse_rtp(p).payload_type for p in call.leg.rtp_packets], [h264.payload_type])
        return self.end_and_check_ports(call)

    def test_browser_declines_video_invite_is_audio_only(self) -> None:
        call = self.handed()
        call.answer(answer_to_gateway_offer(call.browser_offer_text, None))
        self.assertEqual([m.kind for m in parse_sdp(call.invite.offer).media], ["audio"])
        self.assertIsNone(call.video)
        self.assertFalse(call.describe()["hasVideo"])
        call.sip.heard(Answered(sip_answer(None, aport=30000)))
        self.assertEqual(call.status, CallStatus.ESTABLISHED)
        return self.end_and_check_ports(call)

    def test_browser_answers_video_inactive(self) -> None:
        call = self.handed()
        vp8 = self.browser_video(call, "vp8")
        call.answer(answer_to_gateway_offer(call.browser_offer_text, vp8.payload_type, "inactive"))
        self.assertEqual([m.kind for m in parse_sdp(call.invite.offer).media], ["audio"])
        self.assertFalse(call.describe()["hasVideo"])
        return self.end_and_check_ports(call)

    def test_sip_side_refuses_video_call_goes_on_audio_only(self) -> None:
        call = self.handed()
        vp8 = self.browser_video(call, "vp8")
        call.answer(answer_to_gateway_offer(call.browser_offer_text, vp8.payload_type))
        call.sip.heard(Answered(sip_answer("m=video 0 RTP/AVP 96\r\n", aport=30000)))
        self.assertEqual(call.status, CallStatus.ESTABLISHED)
        self.assertFalse(call.describe()["hasVideo"])
        self.assertIsNone(call.describe()["media"]["video"])
        self.assertIsNone(call.video.relay)
        # the browser's video (its m-section stays negotiated) goes nowhere, audio still flows
        call.leg.on_rtp(video_packet(vp8.payload_type, 1, 1000, BROWSER_VIDEO_SSRC), self.clock.seconds())
        # a re-offer keeps the refused line at port 0 (RFC 3264 §8.2)
        call.hold()
        self.assertEqual([(m.kind, m.port) for m in parse_sdp(call.invite.reinvites[-1]).media][1],
                         ("video", 0))
        return self.end_and_check_ports(call)

    def test_without_has_video_no_video_is_offered(self) -> None:
        call = self.handed(has_video=False)
        self.assertEqual(len(parse_sdp(call.browser_offer_text).media), 1)
        self.assertIsNone(call.video)
        return self.end_and_check_ports(call)

    def test_phone_without_feedback_gets_info_fast_update(self) -> None:
        call = self.handed()
        vp8 = self.browser_video(call, "vp8")
        call.answer(answer_to_gateway_offer(call.browser_offer_text, vp8.payload_type))
        sip_pt = parse_sdp(call.invite.offer).media[1].codecs()[0].payload_type
        call.sip.heard(Answered(sip_answer(
            f"m=video {{vport}} RTP/AVP {sip_pt}\r\na=rtpmap:{sip_pt} VP8/90000\r\n",
            vport=30002, aport=30000)))
        call.video.rtp.receive(video_packet(sip_pt, 7, 5000, PHONE_VIDEO_SSRC))
        self.assertEqual(fast_updates(call.invite.infos), 1)
        return self.end_and_check_ports(call)


class HandedGatewayTests(unittest.TestCase):
    """The REST path to a HandedCall: ``hasVideo`` reaches it (it used to be forced off)."""

    def test_startup_with_session_passes_has_video(self) -> None:
        from wcsgw.calls.gateway import CallGateway
        from wcsgw.calls.policy import Policy
        from wcsgw.sip.account import SipAccount

        made: list[dict[str, Any]] = []

        class Recorded:
            def __init__(self, **kw: Any) -> None:
                made.append(kw)
                self.call_id = kw["call_id"]
                self.session_id = kw["session_id"]

            def start(self) -> None:
                pass

        class Sip:
            def register(self, account: Any, listener: Any = None, contact_user: Any = None) -> Any:
                return account

        class Listener:
            def session_status(self, *args: Any) -> None:
                pass

            def call_status(self, call: Any) -> None:
                pass

        gateway = CallGateway(Sip(), Policy(["pbx.example"], "sip:{user}@127.0.0.1:5999"),
                              Recorded)
        gateway.handed_call_factory = Recorded
        gateway.open_session("s1", Listener())
        gateway.connect("s1", SipAccount(login="1001", password="pw", domain="pbx.example"),
                        register=False)
        for has_video in (True, False):
            gateway.startup(call_id=f"h{has_video}", callee="1002", account=None,
                            has_video=has_video, session_id="s1")
        self.assertEqual([(kw["call_id"], kw["has_video"]) for kw in made],
                         [("hTrue", True), ("hFalse", False)])
