"""The call layer's unit tests open no socket: the fakes of tests/call_fakes.py stand in for
every one a call opens (the SIP side's RTP pairs, audio and video; the browser's leg), and the
ports come from an allocator that binds none.  Why it matters: a test that binds a socket
waits on the kernel, may find its port taken, and is not exact about time; a call driven on a
task.Clock through the fakes is.

Checked here two ways: a whole call runs on a reactor whose ``listenUDP`` fails the test, with
``socket.socket`` refusing too; and the fake socket pair keeps what the real one does that the
calls rely on (the latch, the RFC 5761 split, ``close`` giving the ports back).
"""

from __future__ import annotations

import os
import socket
from typing import Any

from twisted.internet import task
from twisted.trial import unittest

from tests.call_fakes import (
    Account,
    FakeIncomingInvite,
    FakePortAllocator,
    FakeRtpSocket,
    fake_env,
    sip_answer,
)
from wcsgw.calls.filecall import FileCall
from wcsgw.calls.inbound import InboundCall
from wcsgw.calls.outbound import OutboundCall
from wcsgw.calls.status import CallStatus
from wcsgw.media.rtcp import build_rr
from wcsgw.media.rtp import build_rtp, parse_rtp
from wcsgw.sdp.parser import parse_sdp
from wcsgw.sip.invite import Answered

HERE = os.path.dirname(__file__)
CHROME_OFFER = open(os.path.join(HERE, "data", "chromium_offer_av.sdp")).read()
BROWSER_AUDIO_SSRC = 3684613860  # the a=ssrc lines of that offer
PHONE = ("127.0.0.1", 30000)


class NoSockets(task.Clock):
    """A reactor for timers only: a call that binds a UDP socket on it fails the test."""

    def listenUDP(self, *args: Any, **kwargs: Any) -> Any:  # noqa: N802 (Twisted API)
        raise AssertionError(f"a call's unit test bound a UDP socket: {args}")


def refuse_sockets(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("a call's unit test opened a socket")


def phone_answer(video_pt: int) -> bytes:
    return ("v=0\r\no=- 5 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            f"m=audio {PHONE[1]} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
            f"m=video 30002 RTP/AVP {video_pt}\r\na=rtpmap:{video_pt} VP8/90000\r\n"
            f"a=rtcp-fb:{video_pt} nack pli\r\na=sendrecv\r\n").encode()


class NoSocketTests(unittest.TestCase):
    def setUp(self) -> None:
        self.patch(socket, "socket", refuse_sockets)
        self.clock = NoSockets()
        self.clock.advance(1_700_000_000)
        self.allocator = FakePortAllocator("127.0.0.1", 20000, 20200)

    def test_a_call_with_audio_and_video_opens_no_socket(self) -> None:
        """Placed, answered, media both ways, reports, hung up and closed: no socket."""
        call = OutboundCall(env=fake_env(self), call_id="c1", session_id="s", account=Account(),
                    request_uri="sip:bob@127.0.0.1", callee="bob", visible_name=None,
                    has_audio=True, has_video=True, browser_offer=CHROME_OFFER, sip_headers={},
                    on_status=lambda status: None, on_gone=lambda c: None,
                    notify=lambda m, p: None)
        call.start()
        assert isinstance(call.rtp, FakeRtpSocket) and call.video is not None
        self.assertIsInstance(call.video.rtp, FakeRtpSocket)
        vp8 = next(c.payload_type for c in parse_sdp(call.invite.offer).media[1].codecs()
                   if c.key == "vp8")
        call.sip.heard(Answered(phone_answer(vp8)))
        self.assertEqual(call.status, CallStatus.ESTABLISHED)
        # the browser speaks: the phone is sent it, at the clock's time
        call.leg.on_rtp(build_rtp(payload_type=0, sequence=1, timestamp=160,
                                  ssrc=BROWSER_AUDIO_SSRC, payload=bytes(160)),
                        self.clock.seconds())
        self.assertEqual([t for t, _ in call.rtp.rtp], [self.clock.seconds()])
        # the phone speaks a second later: the browser gets it then
        self.clock.advance(1)
        call.rtp.receive(build_rtp(payload_type=0, sequence=9, timestamp=900, ssrc=0x5EED,
                                   payload=bytes(160)))
        ((when, packet),) = call.leg.rtp
        self.assertEqual((when, parse_rtp(packet).payload_type), (self.clock.seconds(), 0))
        self.assertEqual(call.rtp.remote_rtp, PHONE)  # latched to the SDP's address
        self.clock.advance(6)  # the reports that are due go out
        self.assertTrue(call.rtp.rtcp)
        call.hangup()
        call.rtp.close()
        call.video.rtp.close()
        self.clock.advance(0)
        self.assertFalse(call.rtp.listening or call.video.rtp.listening)
        self.assertEqual(self.allocator.in_use, frozenset())

    def test_an_incoming_call_opens_no_socket(self) -> None:
        invite = FakeIncomingInvite(sip_answer([(0, "PCMU/8000", None)], port=PHONE[1]))
        call = InboundCall(invite=invite, caller="sip:carol@x", env=fake_env(self),
                           call_id="in", session_id="s", account=Account(), callee="alice",
                           visible_name=None, has_audio=True, has_video=False,
                           on_status=lambda status: None, on_gone=lambda c: None,
                           notify=lambda m, p: None)
        call.start()
        self.assertIsInstance(call.rtp, FakeRtpSocket)
        call.hangup()
        self.clock.advance(0)
        self.assertEqual(self.allocator.in_use, frozenset())

    def test_a_file_call_opens_no_socket(self) -> None:
        call = FileCall(env=fake_env(self), call_id="rest-1", session_id=None,
                        account=Account(), request_uri="sip:bob@127.0.0.1", callee="bob",
                        visible_name=None, has_audio=True, has_video=False, sip_headers={},
                        on_status=lambda status: None, on_gone=lambda c: None,
                        play_file=None, record_file=None)
        call.start()
        assert isinstance(call.rtp, FakeRtpSocket)
        call.sip.heard(Answered(sip_answer([(0, "PCMU/8000", None)], port=PHONE[1])))
        self.assertEqual(call.status, CallStatus.ESTABLISHED)
        self.clock.advance(0.1)  # silence goes out every 20 ms
        self.assertTrue(call.rtp.rtp)
        call.hangup()
        call.rtp.close()
        self.clock.advance(0)
        self.assertEqual(self.allocator.in_use, frozenset())


class FakeRtpSocketTests(unittest.TestCase):
    """What the calls rely on of the real socket pair, kept by the fake."""

    def setUp(self) -> None:
        self.patch(socket, "socket", refuse_sockets)
        self.clock = NoSockets()
        self.clock.advance(100)
        self.allocator = FakePortAllocator("127.0.0.1", 20001, 20010)
        self.sock = FakeRtpSocket(self.clock, self.allocator, "127.0.0.1")
        self.heard: list[tuple[str, bytes, float]] = []
        self.sock.on_rtp = lambda data, now: self.heard.append(("rtp", data, now))
        self.sock.on_rtcp = lambda data, now: self.heard.append(("rtcp", data, now))

    def test_an_even_pair_from_the_allocator_given_back_on_close(self) -> None:
        self.assertEqual((self.sock.port, self.sock.rtcp_port), (20002, 20003))
        self.assertEqual(self.allocator.in_use, frozenset({20002, 20003}))
        closed = self.sock.close()
        self.assertIsNone(self.successResultOf(closed))
        self.assertEqual(self.allocator.in_use, frozenset())
        self.sock.set_remote(*PHONE)
        self.sock.receive(b"\x80\x00" + bytes(10))  # a closed socket hears nothing
        self.assertEqual(self.heard, [])

    def test_received_through_the_latch_at_the_clocks_time(self) -> None:
        self.sock.set_remote(*PHONE, signalling=["192.0.2.5"])
        rtp = build_rtp(payload_type=0, sequence=1, timestamp=0, ssrc=1, payload=bytes(4))
        self.sock.receive(rtp, ("198.51.100.9", 30000))  # a stranger: dropped
        self.clock.advance(0.5)
        self.sock.receive(rtp)  # from the SDP's address, now
        self.sock.receive(build_rr(1))  # RTCP on the RTP port: told apart (RFC 5761)
        self.sock.receive(build_rr(1), rtcp_port=True)  # from the SDP's RTCP port
        self.assertEqual(self.heard, [("rtp", rtp, 100.5), ("rtcp", build_rr(1), 100.5),
                                      ("rtcp", build_rr(1), 100.5)])
        self.assertEqual(self.sock.dropped, 1)

    def test_what_is_sent_is_recorded_with_the_clocks_time(self) -> None:
        self.sock.send_rtp(b"a")
        self.clock.advance(0.02)
        self.sock.send_rtcp(b"b")
        self.assertEqual((self.sock.rtp, self.sock.rtcp), ([(100.0, b"a")], [(100.02, b"b")]))
        self.assertEqual((self.sock.rtp_packets, self.sock.rtcp_packets), ([b"a"], [b"b"]))
