"""The media session of a call (wcsgw.media.session): what connects its sockets to the bridge
and the video relay, its RTCP reports, and closing.  Sockets are fakes, time is a task.Clock's;
no socket is opened."""

from __future__ import annotations

import random
from typing import Any

from twisted.internet import defer, task
from twisted.trial import unittest

from wcsgw.media.bridge import BridgeSettings, LegMedia, MediaBridge
from wcsgw.media.rtcp import SenderReport, build_rr, build_sdes, parse_rtcp
from wcsgw.media.rtcpfb import build_pli
from wcsgw.media.rtp import build_rtp, parse_rtp
from wcsgw.media.session import MediaSession
from wcsgw.media.video import VideoLeg, VideoRelay

W_SSRC, S_SSRC, BROWSER, VIDEO_W, VIDEO_S = 0xAAAA, 0xBBBB, 0x1234, 0xCCCC, 0xDDDD


class FakeSocket:
    """A socket's face: receivers the session sets, what it is asked to send, closing."""

    def __init__(self) -> None:
        self.on_rtp: Any = None
        self.on_rtcp: Any = None
        self.rtp: list[bytes] = []
        self.rtcp: list[bytes] = []
        self.closed = 0

    def send_rtp(self, packet: bytes) -> None:
        self.rtp.append(packet)

    def send_rtcp(self, packet: bytes) -> None:
        self.rtcp.append(packet)

    def close(self) -> defer.Deferred[None]:
        self.closed += 1
        return defer.succeed(None)


def audio(seq: int, pt: int = 0, ssrc: int = BROWSER) -> bytes:
    return build_rtp(payload_type=pt, sequence=seq, timestamp=160 * seq, ssrc=ssrc,
                     payload=b"\xff" * 160)


class MediaSessionTests(unittest.TestCase):
    def setUp(self) -> None:
        self.clock = task.Clock()
        self.clock.advance(3600.0)  # monotonic: an hour after boot
        self.browser, self.sip, self.sip_video = FakeSocket(), FakeSocket(), FakeSocket()
        self.session = MediaSession(self.browser, self.sip, rtcp_interval=5.0)  # type: ignore[arg-type]
        self.bridge = MediaBridge(
            LegMedia("PCMU", 0, ssrc=W_SSRC), LegMedia("PCMU", 0, ssrc=S_SSRC),
            self.browser.send_rtp, self.sip.send_rtp,
            settings=BridgeSettings(rng=random.Random(1), wall_offset=1_700_000_000.0),
        )

    def connect_video(self) -> VideoRelay:
        relay = VideoRelay(
            webrtc=VideoLeg(96), sip=VideoLeg(100), webrtc_ssrc=VIDEO_W, sip_ssrc=VIDEO_S,
            send_to_webrtc=self.browser.send_rtp, send_to_sip=self.sip_video.send_rtp,
            send_rtcp_to_webrtc=self.browser.send_rtcp, send_rtcp_to_sip=self.sip_video.send_rtcp,
            cname="t", now=self.clock.seconds(), rng=random.Random(2),
        )
        self.session.connect_video(relay, self.sip_video)  # type: ignore[arg-type]
        return relay

    def test_audio_sockets_feed_the_bridge_directly(self) -> None:
        """No call in between: the sockets' receivers are the bridge's entry points, and the
        time a socket read is the time the bridge sees."""
        self.session.connect(self.bridge, self.clock.seconds())
        self.assertEqual(
            (self.browser.on_rtp, self.browser.on_rtcp, self.sip.on_rtp, self.sip.on_rtcp),
            (self.bridge.from_webrtc, self.bridge.rtcp_from_webrtc, self.bridge.from_sip,
             self.bridge.rtcp_from_sip))
        self.browser.on_rtp(audio(1), self.clock.seconds() + 2)
        self.assertEqual(parse_rtp(self.sip.rtp[0]).ssrc, S_SSRC)
        self.assertEqual(self.bridge.inactive_for(self.clock.seconds() + 3, "webrtc"), 1.0)

    def test_video_told_apart_by_payload_type_and_rtcp_subject(self) -> None:
        self.session.connect(self.bridge, self.clock.seconds())
        relay = self.connect_video()
        now = self.clock.seconds()
        self.browser.on_rtp(audio(1), now)
        self.browser.on_rtp(audio(1, pt=96, ssrc=0x5678), now)  # VP8's payload type: the relay's
        self.assertEqual(len(self.sip.rtp), 1)
        self.assertEqual(len(self.sip_video.rtp), 1)
        # RTCP about our video (a PLI on our video SSRC) goes to the relay, the rest to audio
        self.browser.on_rtcp(build_rr(BROWSER) + build_pli(BROWSER, VIDEO_W), now)
        self.assertEqual(relay.rtcp["webrtc"].reports_received, 1)
        self.browser.on_rtcp(build_rr(BROWSER) + build_sdes(BROWSER, "x"), now)
        self.assertEqual(self.bridge.rtcp["webrtc"].reports_received, 1)
        self.assertEqual(relay.rtcp["webrtc"].reports_received, 1)
        # the SIP video socket feeds the relay
        self.assertEqual((self.sip_video.on_rtp, self.sip_video.on_rtcp),
                         (relay.from_sip, relay.rtcp_from_sip))

    def test_reports_every_interval_with_wall_clock_ntp(self) -> None:
        self.session.connect(self.bridge, self.clock.seconds())
        for seq in range(1, 11):
            self.browser.on_rtp(audio(seq), self.clock.seconds())
            self.clock.advance(0.02)
        self.session.report(self.clock.seconds())
        self.assertEqual((len(self.browser.rtcp), len(self.sip.rtcp)), (1, 1))
        self.clock.advance(1.0)
        self.session.report(self.clock.seconds())  # not due yet
        self.assertEqual(len(self.sip.rtcp), 1)
        self.clock.advance(4.0)
        self.session.report(self.clock.seconds())
        self.assertEqual(len(self.sip.rtcp), 2)
        sr = parse_rtcp(self.sip.rtcp[-1])[0]
        assert isinstance(sr, SenderReport)
        sent = sr.ntp_timestamp / 2**32 - 2208988800
        self.assertLess(abs(sent - (1_700_000_000.0 + self.clock.seconds())), 0.001)

    def test_close_closes_every_socket_once(self) -> None:
        self.session.connect(self.bridge, self.clock.seconds())
        self.connect_video()
        first, second = self.session.close(), self.session.close()
        self.assertTrue(first.called and second.called)
        self.assertEqual((self.browser.closed, self.sip.closed, self.sip_video.closed), (1, 1, 1))
