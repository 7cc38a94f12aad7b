"""Hold as the two ends ask for it, at the call level: what the browser's media may reach the
SIP side.

RFC 3264 §6.1: when the far end re-offers ``sendonly`` (it holds us) we answer ``recvonly``
and MUST NOT send; ``inactive`` (or the RFC 2543 ``c=0.0.0.0``): neither way.  Our own hold
(re-INVITE ``sendonly``) stops the browser's audio too.  The two combine: the browser is heard
again only when neither end holds.  A real :class:`~wcsgw.calls.call.Call` with a fake dialog,
WebRTC leg and SIP-side sockets (tests/call_fakes.py: no socket is opened); the sockets record
what the bridge and the video relay send to the phone.  Timers run on a task.Clock.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.internet import defer
from twisted.trial import unittest

from tests.call_fakes import Account, FakeIncomingInvite, FakeRtpSocket, fake_call_setup, fake_env
from wcsgw.calls.call import Call
from wcsgw.calls.errors import CallError
from wcsgw.calls.inbound import InboundCall
from wcsgw.calls.outbound import OutboundCall
from wcsgw.calls.status import CallStatus
from wcsgw.media.rtp import build_rtp, parse_rtp
from wcsgw.sdp.parser import parse_sdp
from wcsgw.sip.invite import Answered, Provisional
from wcsgw.sip.session import ReinviteAnswered, ReinviteConfirmed, ReinviteOffered
from wcsgw.sip.uas import Confirmed

HERE = os.path.dirname(__file__)
CHROME_OFFER = open(os.path.join(HERE, "data", "chromium_offer_av.sdp")).read()
BROWSER_AUDIO_SSRC = 3684613860  # the a=ssrc lines of that offer
BROWSER_VIDEO_SSRC = 140199583
BROWSER_EVENT_PT = 126  # telephone-event/8000 in that offer


def phone_sdp(version: int, direction: str = "sendrecv", video_pt: int | None = None,
              address: str = "127.0.0.1") -> bytes:
    """The phone's SDP (answer or re-offer): PCMU and telephone-event, VP8 with ``video_pt``;
    ``direction`` on every m-line; ``address`` in c= (0.0.0.0: RFC 2543 hold)."""
    text = (f"v=0\r\no=- 5 {version} IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 {address}\r\nt=0 0\r\n"
            "m=audio 30000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
            f"a=rtpmap:101 telephone-event/8000\r\na={direction}\r\n")
    if video_pt is not None:
        text += (f"m=video 30002 RTP/AVP {video_pt}\r\na=rtpmap:{video_pt} VP8/90000\r\n"
                 f"a=rtcp-fb:{video_pt} nack pli\r\na={direction}\r\n")
    return text.encode()


class HoldCase(unittest.TestCase):
    def setUp(self) -> None:
        fake_call_setup(self)
        self.env = fake_env(self)
        self.statuses: list[dict[str, Any]] = []
        self.seq = 0
        self.version = 1

    @property
    def to_phone(self) -> list[bytes]:
        """The audio and events the bridge sent to the phone (the call's fake socket)."""
        assert isinstance(self.call.rtp, FakeRtpSocket)
        return self.call.rtp.rtp_packets

    @property
    def video_to_phone(self) -> list[bytes]:
        """The video the relay sent to the phone."""
        assert self.call.video is not None and isinstance(self.call.video.rtp, FakeRtpSocket)
        return self.call.video.rtp.rtp_packets

    def started(self, video: bool = False) -> Call:
        """A browser's call to the phone, INVITE sent; what it sends the phone is recorded."""
        call = OutboundCall(env=self.env, call_id="c1", session_id="s", account=Account(),
                    request_uri="sip:bob@127.0.0.1", callee="bob", visible_name=None,
                    has_audio=True, has_video=video, browser_offer=CHROME_OFFER, sip_headers={},
                    on_status=self.statuses.append, on_gone=lambda c: None,
                    notify=lambda m, p: None)
        self.addCleanup(self.close, call)
        call.start()
        self.call = call
        return call

    def established(self, video: bool = False) -> Call:
        """A browser's call to the phone, answered (PCMU relayed, telephone-event both sides)."""
        call = self.started(video)
        self.video_pt: int | None = None
        if video:
            assert call.video is not None
            offer = parse_sdp(call.invite.offer)
            self.video_pt = next(c.payload_type for c in offer.media[1].codecs() if c.key == "vp8")
        call.sip.heard(Answered(phone_sdp(1, video_pt=self.video_pt)))
        self.assertEqual(call.status, CallStatus.ESTABLISHED)
        self.assertEqual(call.plan.mode, "relay")
        return call

    @defer.inlineCallbacks
    def close(self, call: Call):
        call.hangup()
        closing = [s.close() for s in (call.rtp, call.video and call.video.rtp) if s is not None]
        yield defer.gatherResults(closing)
        self.assertEqual(self.allocator.in_use, frozenset())

    # -- the browser speaks --

    def browser_speaks(self, call: Call) -> int:
        """One audio packet from the browser: how many packets reached the phone."""
        before = len(self.to_phone)
        self.seq += 1
        call.leg.on_rtp(build_rtp(payload_type=0, sequence=self.seq, timestamp=160 * self.seq,
                                  ssrc=BROWSER_AUDIO_SSRC, payload=bytes(160)), self.clock.seconds())
        return len(self.to_phone) - before

    def browser_presses_a_key(self, call: Call) -> int:
        """One RFC 4733 event packet from the browser (digit 5): how many reached the phone."""
        before = len(self.to_phone)
        self.seq += 1
        call.leg.on_rtp(build_rtp(payload_type=BROWSER_EVENT_PT, sequence=self.seq,
                                  timestamp=160 * self.seq, ssrc=BROWSER_AUDIO_SSRC,
                                  payload=bytes([5, 10, 0, 160]), marker=True), self.clock.seconds())
        return len(self.to_phone) - before

    def browser_video(self, call: Call) -> int:
        before = len(self.video_to_phone)
        self.seq += 1
        call.leg.on_rtp(build_rtp(payload_type=96, sequence=self.seq, timestamp=3000 * self.seq,
                                  ssrc=BROWSER_VIDEO_SSRC, payload=b"\x10\x00\x9d\x01\x2a"
                                  + bytes(300), marker=True), self.clock.seconds())
        return len(self.video_to_phone) - before

    # -- the phone re-offers --

    def phone_reoffers(self, call: Call, direction: str, address: str = "127.0.0.1") -> list[str]:
        """The phone's re-INVITE; the directions of our answer's m-lines."""
        self.version += 1
        call.sip.heard(ReinviteOffered(phone_sdp(self.version, direction, self.video_pt,
                                                     address)))
        return [m.direction for m in parse_sdp(call.invite.reinvite_answers[-1]).media]

    def phone_answers_our_reoffer(self, call: Call, direction: str) -> None:
        self.version += 1
        call.sip.heard(ReinviteAnswered(phone_sdp(self.version, direction, self.video_pt)))


class RemoteHoldTests(HoldCase):
    def test_sendonly_stops_the_browsers_audio_and_dtmf_until_resumed(self) -> None:
        call = self.established()
        self.assertEqual(self.browser_speaks(call), 1)
        self.assertEqual(self.phone_reoffers(call, "sendonly"), ["recvonly"])
        self.assertEqual(call.status, CallStatus.HOLD)
        self.assertEqual(self.browser_speaks(call), 0)
        self.assertEqual(self.browser_presses_a_key(call), 0)
        with self.assertRaises(CallError):  # our own RFC 4733 events: media too
            call.send_dtmf("1")
        call.send_dtmf("1", "INFO")  # signalling, not media: still allowed
        self.assertEqual(len(call.invite.infos), 1)
        self.assertEqual(self.phone_reoffers(call, "sendrecv"), ["sendrecv"])
        self.assertEqual(call.status, CallStatus.ESTABLISHED)
        self.assertEqual(self.browser_speaks(call), 1)
        self.assertEqual(self.browser_presses_a_key(call), 1)
        [event] = [parse_rtp(p) for p in self.to_phone[-1:]]
        self.assertEqual(event.payload_type, 101)
        call.send_dtmf("1")

    def test_inactive_stops_the_browsers_audio(self) -> None:
        call = self.established()
        self.assertEqual(self.phone_reoffers(call, "inactive"), ["inactive"])
        self.assertEqual(call.status, CallStatus.HOLD)
        self.assertEqual(self.browser_speaks(call), 0)
        self.phone_reoffers(call, "sendrecv")
        self.assertEqual(self.browser_speaks(call), 1)

    def test_rfc2543_hold_address_stops_the_browsers_audio(self) -> None:
        call = self.established()
        self.phone_reoffers(call, "sendrecv", address="0.0.0.0")
        self.assertEqual(call.status, CallStatus.HOLD)
        self.assertEqual(self.browser_speaks(call), 0)
        self.phone_reoffers(call, "sendrecv")
        self.assertEqual(call.status, CallStatus.ESTABLISHED)
        self.assertEqual(self.browser_speaks(call), 1)

    def test_recvonly_is_not_a_hold_of_us(self) -> None:
        """The phone only stops sending: it still wants to hear the browser."""
        call = self.established()
        self.assertEqual(self.phone_reoffers(call, "recvonly"), ["sendonly"])
        self.assertEqual(self.browser_speaks(call), 1)

    def test_video_stops_too_on_rfc2543_hold(self) -> None:
        """c=0.0.0.0 with both m-lines still sendrecv: the video relay pauses with the audio."""
        call = self.established(video=True)
        self.assertEqual(self.browser_video(call), 1)
        self.phone_reoffers(call, "sendrecv", address="0.0.0.0")
        self.assertEqual(self.browser_video(call), 0)
        self.assertEqual(self.browser_speaks(call), 0)
        self.phone_reoffers(call, "sendrecv")
        self.assertEqual(self.browser_video(call), 1)
        self.assertEqual(self.browser_speaks(call), 1)


class BothHoldTests(HoldCase):
    def test_local_then_remote_hold_and_back(self) -> None:
        call = self.established()
        call.hold()
        self.phone_answers_our_reoffer(call, "recvonly")
        self.assertEqual(call.status, CallStatus.HOLD)
        self.assertEqual(self.browser_speaks(call), 0)
        # the phone holds us too: neither end sends
        self.assertEqual(self.phone_reoffers(call, "sendonly"), ["inactive"])
        # the phone resumes: our own hold stays, in the answer and in the media
        self.assertEqual(self.phone_reoffers(call, "sendrecv"), ["sendonly"])
        self.assertEqual(call.status, CallStatus.HOLD)
        self.assertEqual(self.browser_speaks(call), 0)
        call.unhold()
        self.phone_answers_our_reoffer(call, "sendrecv")
        self.assertEqual(call.status, CallStatus.ESTABLISHED)
        self.assertEqual(self.browser_speaks(call), 1)

    def test_our_unhold_while_the_phone_holds_us_stays_quiet(self) -> None:
        call = self.established()
        self.phone_reoffers(call, "sendonly")
        call.hold()
        self.phone_answers_our_reoffer(call, "inactive")
        call.unhold()
        self.phone_answers_our_reoffer(call, "recvonly")  # still holding us
        self.assertEqual(call.status, CallStatus.HOLD)
        self.assertEqual(self.browser_speaks(call), 0)
        self.phone_reoffers(call, "sendrecv")
        self.assertEqual(call.status, CallStatus.ESTABLISHED)
        self.assertEqual(self.browser_speaks(call), 1)


def browser_answer(offer_text: str) -> str:
    """The browser's audio-only answer to the gateway's offer of an incoming call: its first
    format, sendrecv."""
    audio = parse_sdp(offer_text).media[0].codecs()[0]
    return ("v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n"
            f"m=audio 9 UDP/TLS/RTP/SAVPF {audio.payload_type}\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n"
            "a=ice-ufrag:abcd\r\na=ice-pwd:" + "q" * 24 + "\r\na=fingerprint:sha-256 "
            + "01:" * 31 + "02\r\na=setup:active\r\na=sendrecv\r\na=rtcp-mux\r\n"
            f"a=rtpmap:{audio.payload_type} {audio.rtpmap}\r\n"
            f"a=ssrc:{BROWSER_AUDIO_SSRC} cname:x\r\n")


class FirstAnswerHoldTests(HoldCase):
    """The far end may hold the call from its first answer on (RFC 3264 §6.1 applies to every
    answer, not only to re-offers): an answered call whose answer is sendonly/inactive (or
    c=0.0.0.0) is HOLD, and nothing of the browser goes to it."""

    def answered(self, direction: str, address: str = "127.0.0.1") -> Call:
        call = self.started()
        self.video_pt = None
        call.sip.heard(Answered(phone_sdp(1, direction, address=address)))
        return call

    def test_sendonly_answer_holds_until_the_phone_resumes(self) -> None:
        call = self.answered("sendonly")
        self.assertEqual(call.status, CallStatus.HOLD)
        self.assertEqual(self.browser_speaks(call), 0)
        self.assertEqual(self.browser_presses_a_key(call), 0)
        with self.assertRaises(CallError):
            call.send_dtmf("1")
        self.assertEqual(self.phone_reoffers(call, "sendrecv"), ["sendrecv"])
        self.assertEqual(call.status, CallStatus.ESTABLISHED)
        self.assertEqual(self.browser_speaks(call), 1)

    def test_inactive_answer_holds(self) -> None:
        call = self.answered("inactive")
        self.assertEqual(call.status, CallStatus.HOLD)
        self.assertEqual(self.browser_speaks(call), 0)

    def test_rfc2543_hold_address_in_the_answer_holds(self) -> None:
        call = self.answered("sendrecv", address="0.0.0.0")
        self.assertEqual(call.status, CallStatus.HOLD)
        self.assertEqual(self.browser_speaks(call), 0)

    def test_sendrecv_answer_is_established(self) -> None:
        call = self.answered("sendrecv")
        self.assertEqual(call.status, CallStatus.ESTABLISHED)
        self.assertEqual([s["status"] for s in self.statuses[-1:]], ["ESTABLISHED"])
        self.assertEqual(self.browser_speaks(call), 1)

    def test_sendonly_early_media_is_ringback_not_hold(self) -> None:
        """183 sendonly is the far end playing ringback: no HOLD before the answer; a
        sendrecv 2xx then makes the call ESTABLISHED with the browser heard."""
        call = self.started()
        call.sip.heard(Provisional(183, "Session Progress", phone_sdp(1, "sendonly")))
        self.assertNotIn(CallStatus.HOLD.value, [s["status"] for s in self.statuses])
        self.assertFalse(call.holds.remote)
        call.sip.heard(Answered(phone_sdp(1, "sendrecv")))
        self.assertEqual(call.status, CallStatus.ESTABLISHED)
        self.assertEqual(self.browser_speaks(call), 1)

    def test_2xx_without_sdp_keeps_the_early_answer(self) -> None:
        """The 183's sendonly answer stands when the 2xx brings no SDP (RFC 3261 §13.2.1):
        once answered, that is a hold."""
        call = self.started()
        call.sip.heard(Provisional(183, "Session Progress", phone_sdp(1, "sendonly")))
        call.sip.heard(Answered(b""))
        self.assertEqual(call.status, CallStatus.HOLD)
        self.assertEqual(self.browser_speaks(call), 0)


class LateOfferHoldTests(HoldCase):
    def test_ack_answer_to_our_offer_holds_and_resumes(self) -> None:
        """An offerless re-INVITE: our 2xx offers, the ACK answers sendonly — a hold."""
        call = self.established()
        call.sip.heard(ReinviteOffered(None))
        self.assertEqual(parse_sdp(call.invite.reinvite_answers[-1]).media[0].direction, "sendrecv")
        call.sip.heard(ReinviteConfirmed(phone_sdp(2, "sendonly")))
        self.assertEqual(call.status, CallStatus.HOLD)
        self.assertEqual(self.browser_speaks(call), 0)
        call.sip.heard(ReinviteOffered(None))
        call.sip.heard(ReinviteConfirmed(phone_sdp(3, "sendrecv")))
        self.assertEqual(call.status, CallStatus.ESTABLISHED)
        self.assertEqual(self.browser_speaks(call), 1)

    def test_ack_without_sdp_changes_nothing(self) -> None:
        call = self.established()
        call.sip.heard(ReinviteOffered(phone_sdp(2, "sendonly")))
        call.sip.heard(ReinviteConfirmed(None))
        self.assertEqual(call.status, CallStatus.HOLD)


class DtmfIntoHoldTests(HoldCase):
    def test_queued_digits_are_dropped_and_the_one_on_the_air_ends(self) -> None:
        """Our digits playing when the phone holds: the digit on the air ends with its end
        packets (E bit), the queued ones are never sent."""
        call = self.established()
        call.send_dtmf("123")
        self.clock.advance(0.02)  # digit 1's start packet is out, its end is not
        self.phone_reoffers(call, "sendonly")
        self.assertEqual(call.bridge.dtmf_sending["sip"], "1")
        for _ in range(100):  # 2 s of the call's timers
            self.clock.advance(0.02)
        events = [parse_rtp(p).payload(p) for p in self.to_phone if parse_rtp(p).payload_type == 101]
        self.assertEqual({e[0] for e in events}, {1})  # digit 1 only
        self.assertEqual(sum(1 for e in events if e[1] & 0x80), 3)  # its three ends
        self.assertTrue(events[-1][1] & 0x80)
        self.assertEqual(call.bridge.dtmf_sending["sip"], "")


class InboundHoldTests(HoldCase):
    def incoming(self, offer: bytes | None) -> InboundCall:
        """An incoming call offering ``offer`` (None: late offer), answered by the browser."""
        invite = FakeIncomingInvite(offer)
        invite.reinvite_answers = []  # type: ignore[attr-defined]  # the caller may re-offer
        invite.answer_reinvite = lambda sdp, now: invite.reinvite_answers.append(sdp)  # type: ignore[attr-defined]
        self.video_pt = None
        call = InboundCall(invite=invite, caller="sip:carol@x",
                           env=self.env, call_id="in", session_id="s", account=Account(),
                           callee="alice", visible_name=None, has_audio=True, has_video=False,
                           on_status=self.statuses.append, on_gone=lambda c: None,
                           notify=lambda m, p: None)
        self.addCleanup(self.close, call)
        call.start()
        self.call = call
        call.answer(browser_answer(call.browser_offer_text))
        return call

    def test_caller_offering_sendonly_holds_from_the_answer_on(self) -> None:
        call = self.incoming(phone_sdp(1, "sendonly"))
        self.assertEqual(parse_sdp(call.invite.answered).media[0].direction, "recvonly")
        self.assertEqual(call.status, CallStatus.HOLD)
        self.assertEqual(self.browser_speaks(call), 0)
        self.assertEqual(self.phone_reoffers(call, "sendrecv"), ["sendrecv"])
        self.assertEqual(call.status, CallStatus.ESTABLISHED)
        self.assertEqual(self.browser_speaks(call), 1)

    def test_silent_caller_fails_the_call_by_rtp_activity(self) -> None:
        """Incoming calls are supervised like outgoing ones: a caller that vanishes without a
        BYE (and a browser that sends nothing) ends the call after ``rtp_timeout``."""
        call = self.incoming(phone_sdp(1, "sendrecv"))
        self.assertEqual(call.status, CallStatus.ESTABLISHED)
        self.clock.advance(self.env.rtp_timeout + 2)
        self.assertEqual(call.status, CallStatus.FAILED)
        self.assertEqual(self.statuses[-1]["info"], "Failed by RTP activity")

    def test_caller_offering_sendrecv_is_established(self) -> None:
        call = self.incoming(phone_sdp(1, "sendrecv"))
        self.assertEqual(call.status, CallStatus.ESTABLISHED)
        self.assertEqual(self.browser_speaks(call), 1)

    def test_late_offer_ack_answer_inactive_holds(self) -> None:
        call = self.incoming(None)
        self.assertEqual(call.status, CallStatus.ESTABLISHED)
        call.sip.heard(Confirmed(phone_sdp(1, "inactive")))
        self.assertIsNotNone(call.bridge)
        self.assertEqual(call.status, CallStatus.HOLD)
        self.assertEqual(self.browser_speaks(call), 0)
