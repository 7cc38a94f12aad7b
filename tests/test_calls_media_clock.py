"""The media plane's two clocks at the call level: RTCP sender reports carry wall-clock NTP
time even though the reactor's clock (what timers, RTP timestamps and intervals run on) is
monotonic and counts from boot, as it does on Twisted's asyncio reactor (issue 11).

A real :class:`~wcsgw.calls.call.Call` with a fake dialog, WebRTC leg and SIP-side socket
(tests/call_fakes.py) on a task.Clock that stands one hour after "boot"; the reports the call
sends are recorded with the time they went out.
"""

from __future__ import annotations

import os
import time
from typing import Any

from twisted.internet import defer, task
from twisted.trial import unittest

from tests.call_fakes import Account, FakeRtpSocket, fake_call_setup, fake_env
from wcsgw.calls.call import Call
from wcsgw.calls.callmedia import RTCP_INTERVAL
from wcsgw.calls.outbound import OutboundCall
from wcsgw.calls.status import CallStatus
from wcsgw.calls.supervision import MEDIA_TICK
from wcsgw.media.clock import FakeClock
from wcsgw.media.rtcp import SenderReport, ntp_to_unix, parse_rtcp
from wcsgw.media.rtp import build_rtp
from wcsgw.sip.invite import Answered

HERE = os.path.dirname(__file__)
CHROME_OFFER = open(os.path.join(HERE, "data", "chromium_offer_av.sdp")).read()
PHONE_SDP = (b"v=0\r\no=- 5 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
             b"m=audio 30000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
             b"a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n")
SINCE_BOOT = 3600.0  # what a monotonic reactor clock reads an hour after boot


class SenderReportTimeTests(unittest.TestCase):
    def setUp(self) -> None:
        fake_call_setup(self)
        self.clock = task.Clock()  # monotonic, not the epoch
        self.clock.advance(SINCE_BOOT)

    def established(self, **env: Any) -> Call:
        call = OutboundCall(env=fake_env(self, **env), call_id="c1", session_id="s", account=Account(),
                    request_uri="sip:bob@127.0.0.1", callee="bob", visible_name=None,
                    has_audio=True, has_video=False, browser_offer=CHROME_OFFER,
                    sip_headers={}, on_status=lambda status: None, on_gone=lambda c: None,
                    notify=lambda m, p: None)
        self.addCleanup(self.close, call)
        call.start()
        call.sip.heard(Answered(PHONE_SDP))
        self.assertEqual(call.status, CallStatus.ESTABLISHED)
        # the browser speaks for a second (relayed to the phone), then the reports go out
        for seq in range(1, 51):
            call.leg.on_rtp(build_rtp(payload_type=0, sequence=seq, timestamp=160 * seq,
                                      ssrc=0x1234, payload=bytes(160)), self.clock.seconds())
            self.clock.advance(0.02)
        self.clock.advance(RTCP_INTERVAL + MEDIA_TICK)
        return call

    @defer.inlineCallbacks
    def close(self, call: Call):
        call.hangup()
        yield call.rtp.close()

    def sender_report(self, call: Call) -> SenderReport:
        assert isinstance(call.rtp, FakeRtpSocket)
        self.assertTrue(call.rtp.rtcp, "no RTCP went to the phone")
        report = parse_rtcp(call.rtp.rtcp_packets[0])[0]
        assert isinstance(report, SenderReport)
        return report

    def test_sr_ntp_time_is_wall_clock_time_not_time_since_boot(self) -> None:
        """The production clock (the env's default): NTP from the system's wall clock."""
        call = self.established()
        sent = ntp_to_unix(self.sender_report(call).ntp_timestamp)
        self.assertLess(abs(sent - time.time()), 60.0)

    def test_sr_ntp_time_follows_the_injected_wall_clock(self) -> None:
        """An injected clock: NTP is its wall time when the report went out (a tick of the
        call's media timer, while the call ran on the monotonic task clock)."""
        wall_at_zero = 1_800_000_000.0
        call = self.established(clock=FakeClock(self.clock, wall_at_zero))
        sent = ntp_to_unix(self.sender_report(call).ntp_timestamp)
        self.assertGreaterEqual(sent, wall_at_zero + SINCE_BOOT)
        self.assertLessEqual(sent, wall_at_zero + self.clock.seconds() + 0.001)
        assert isinstance(call.rtp, FakeRtpSocket)
        sent_at = call.rtp.rtcp[0][0]  # the task clock's time when it went out
        self.assertAlmostEqual(sent, wall_at_zero + sent_at, places=3)
