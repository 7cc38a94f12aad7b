"""The video relay (wcsgw.media.video) and the video RTCP it relies on (sans-IO)."""

from __future__ import annotations

import random
import struct

from twisted.trial import unittest

from wcsgw.media.rtcp import Feedback, ReceiverReport, SenderReport, build_rr, parse_rtcp
from wcsgw.media.rtcpfb import (
    build_fir,
    build_pli,
    build_remb,
    build_tmmbn,
    build_tmmbr,
    encode_bitrate,
    fir_entries,
    parse_remb,
    parse_tmmb,
)
from wcsgw.media.rtp import build_rtp, parse_rtp
from wcsgw.media.video import KEYFRAME_INTERVAL, SIP, WEBRTC, VideoLeg, VideoRelay

BROWSER_SSRC = 0x11111111
PHONE_SSRC = 0x22222222
OUR_WEBRTC_SSRC = 0xAAAA0001
OUR_SIP_SSRC = 0xBBBB0002
T0 = 1_700_000_000.0


class FeedbackPacketTests(unittest.TestCase):
    def test_fir_layout(self) -> None:
        (fir,) = parse_rtcp(build_fir(1, 0xCAFE, 7))
        self.assertTrue(fir.is_fir)
        self.assertEqual(fir.media_ssrc, 0)  # RFC 5104 §4.3.1.1: target is in the FCI
        self.assertEqual(fir_entries(fir), [(0xCAFE, 7)])

    def test_remb_round_trip_and_rounding_down(self) -> None:
        for bitrate in (0, 1, 262143, 262144, 1_000_000, 2_500_000, 30_000_000):
            (remb,) = parse_rtcp(build_remb(5, bitrate, [9, 10]))
            self.assertTrue(remb.is_remb and not remb.is_pli)
            got, ssrcs = parse_remb(remb)
            self.assertEqual(ssrcs, (9, 10))
            self.assertLessEqual(got, bitrate)
            self.assertGreater(got, bitrate * 0.9999 - 1)

    def test_remb_is_not_any_fmt15(self) -> None:
        afb = Feedback(206, 15, 1, 0, b"XXXX\x00\x00\x00\x00")
        self.assertFalse(afb.is_remb)
        self.assertIsNone(parse_remb(afb))

    def test_tmmbr_and_tmmbn(self) -> None:
        (tmmbr,) = parse_rtcp(build_tmmbr(1, 0xABC, 800_000, overhead=28))
        self.assertTrue(tmmbr.is_tmmbr and not tmmbr.is_nack)
        self.assertEqual(parse_tmmb(tmmbr), [(0xABC, 800_000, 28)])
        (tmmbn,) = parse_rtcp(build_tmmbn(2, [(0xABC, 500_000, 40)]))
        self.assertTrue(tmmbn.is_tmmbn)
        self.assertEqual(parse_tmmb(tmmbn), [(0xABC, 500_000, 40)])

    def test_encode_bitrate_fits_the_field(self) -> None:
        exp, mantissa = encode_bitrate(10**9, 17)
        self.assertLess(mantissa, 1 << 17)
        self.assertLessEqual(mantissa << exp, 10**9)


class Harness:
    """A relay between two lists of sent packets."""

    def __init__(self, *, webrtc_fb=None, sip_fb=None, browser_ssrc=None, kbps=1000,
                 sip_also=frozenset()) -> None:
        self.to_webrtc: list[bytes] = []
        self.to_sip: list[bytes] = []
        self.rtcp_to_webrtc: list[bytes] = []
        self.rtcp_to_sip: list[bytes] = []
        kwargs = {}
        if webrtc_fb is not None:
            kwargs["webrtc"] = VideoLeg(96, frozenset(webrtc_fb))
        else:
            kwargs["webrtc"] = VideoLeg(96)
        kwargs["sip"] = VideoLeg(100, frozenset(sip_fb) if sip_fb is not None
                                 else frozenset({"nack pli", "ccm fir"}), frozenset(sip_also))
        self.relay = VideoRelay(
            **kwargs, webrtc_ssrc=OUR_WEBRTC_SSRC, sip_ssrc=OUR_SIP_SSRC,
            send_to_webrtc=self.to_webrtc.append, send_to_sip=self.to_sip.append,
            send_rtcp_to_webrtc=self.rtcp_to_webrtc.append,
            send_rtcp_to_sip=self.rtcp_to_sip.append,
            cname="test", now=T0, kbps=kbps, browser_ssrc=browser_ssrc, rng=random.Random(1),
        )


def feedback(packets: list[bytes]) -> list[Feedback]:
    return [p for packet in packets for p in parse_rtcp(packet) if isinstance(p, Feedback)]


def vp8(pt: int, seq: int, ts: int, ssrc: int, marker: bool = False, size: int = 900) -> bytes:
    return build_rtp(payload_type=pt, sequence=seq, timestamp=ts, ssrc=ssrc,
                     payload=bytes([0x10]) + bytes(size - 1), marker=marker)


class RelayRtpTests(unittest.TestCase):
    def test_browser_to_sip_rewrites_header_keeps_marker_and_payload(self) -> None:
        h = Harness()
        sent = [vp8(96, 1000 + i, 5000, BROWSER_SSRC, marker=(i == 2)) for i in range(3)]
        sent.append(vp8(96, 1003, 5000 + 3000, BROWSER_SSRC, marker=True))
        for i, packet in enumerate(sent):
            h.relay.from_webrtc(packet, T0 + i * 0.01)
        self.assertEqual(len(h.to_sip), 4)
        headers = [parse_rtp(p) for p in h.to_sip]
        self.assertEqual({x.payload_type for x in headers}, {100})
        self.assertEqual({x.ssrc for x in headers}, {OUR_SIP_SSRC})
        self.assertEqual([x.marker for x in headers], [False, False, True, True])
        seqs = [x.sequence for x in headers]
        self.assertEqual([(s - seqs[0]) & 0xFFFF for s in seqs], [0, 1, 2, 3])
        # one frame shares its timestamp; the next is 3000 ticks (33 ms at 90 kHz) later
        self.assertEqual(headers[0].timestamp, headers[2].timestamp)
        self.assertEqual((headers[3].timestamp - headers[0].timestamp) & 0xFFFFFFFF, 3000)
        for original, relayed in zip(sent, h.to_sip):
            self.assertEqual(original[12:], relayed[12:])

    def test_sip_to_browser_maps_payload_type_back(self) -> None:
        h = Harness()
        h.relay.from_sip(vp8(100, 7, 1, PHONE_SSRC, True), T0)
        (out,) = h.to_webrtc
        header = parse_rtp(out)
        self.assertEqual((header.payload_type, header.ssrc, header.marker), (96, OUR_WEBRTC_SSRC, True))

    def test_other_payload_types_are_dropped_and_counted(self) -> None:
        h = Harness()
        h.relay.from_sip(vp8(101, 7, 1, PHONE_SSRC), T0)  # e.g. an rtx the phone sends anyway
        h.relay.from_sip(b"\x80\x64", T0)
        self.assertEqual(h.to_webrtc, [])
        stats = h.relay.stats()[SIP]
        self.assertEqual((stats["dropped"], stats["malformed"]), (1, 1))

    def test_new_source_ssrc_continues_our_stream(self) -> None:
        h = Harness()
        h.relay.from_sip(vp8(100, 100, 90000, PHONE_SSRC), T0)
        h.relay.from_sip(vp8(100, 101, 93000, PHONE_SSRC), T0 + 0.033)
        h.relay.from_sip(vp8(100, 5, 7, 0x33333333), T0 + 0.066)  # the PBX switched sources
        seqs = [parse_rtp(p).sequence for p in h.to_webrtc]
        self.assertEqual({parse_rtp(p).ssrc for p in h.to_webrtc}, {OUR_WEBRTC_SSRC})
        self.assertEqual([(s - seqs[0]) & 0xFFFF for s in seqs], [0, 1, 2])

    def test_paused_to_sip_drops_browser_video(self) -> None:
        h = Harness()
        h.relay.paused_to_sip = True
        h.relay.from_webrtc(vp8(96, 1, 1, BROWSER_SSRC), T0)
        self.assertEqual(h.to_sip, [])
        h.relay.paused_to_sip = False
        h.relay.from_webrtc(vp8(96, 2, 3001, BROWSER_SSRC), T0 + 0.03)
        self.assertEqual(len(h.to_sip), 1)

    def test_sip_side_may_send_with_another_offered_number(self) -> None:
        # baresip answers H.264 as 116 but sends with 102, the offer's first H.264
        h = Harness(sip_also={102})
        h.relay.from_sip(vp8(102, 1, 1, PHONE_SSRC), T0)
        h.relay.from_sip(vp8(100, 2, 1, PHONE_SSRC), T0)
        h.relay.from_sip(vp8(104, 3, 1, PHONE_SSRC), T0)  # not one of them: dropped
        self.assertEqual([parse_rtp(p).payload_type for p in h.to_webrtc], [96, 96])
        h.relay.set_sip_payload_type(120)  # a re-INVITE keeps the extra numbers
        h.relay.from_sip(vp8(102, 4, 1, PHONE_SSRC), T0)
        self.assertEqual(len(h.to_webrtc), 3)

    def test_sip_payload_type_change(self) -> None:
        h = Harness()
        h.relay.set_sip_payload_type(120)
        h.relay.from_webrtc(vp8(96, 1, 1, BROWSER_SSRC), T0)
        h.relay.from_sip(vp8(120, 1, 1, PHONE_SSRC), T0)
        h.relay.from_sip(vp8(100, 2, 1, PHONE_SSRC), T0)  # the old number is no longer ours
        self.assertEqual(parse_rtp(h.to_sip[0]).payload_type, 120)
        self.assertEqual(len(h.to_webrtc), 1)


class KeyframeTests(unittest.TestCase):
    def test_pli_from_browser_becomes_pli_to_the_phone(self) -> None:
        h = Harness()
        h.relay.from_sip(vp8(100, 1, 1, PHONE_SSRC), T0)
        h.rtcp_to_sip.clear()
        h.relay.rtcp_from_webrtc(build_rr(BROWSER_SSRC) + build_pli(BROWSER_SSRC, OUR_WEBRTC_SSRC),
                                 T0 + 1)
        (pli,) = feedback(h.rtcp_to_sip)
        self.assertTrue(pli.is_pli)
        self.assertEqual((pli.sender_ssrc, pli.media_ssrc), (OUR_SIP_SSRC, PHONE_SSRC))
        # sent as a compound: SR/RR first (RFC 4585 §3.1)
        first = parse_rtcp(h.rtcp_to_sip[0])[0]
        self.assertIsInstance(first, (SenderReport, ReceiverReport))

    def test_fir_to_a_peer_that_only_does_fir(self) -> None:
        h = Harness(sip_fb={"ccm fir"})
        h.relay.from_sip(vp8(100, 1, 1, PHONE_SSRC), T0)
        h.rtcp_to_sip.clear()
        h.relay.rtcp_from_webrtc(build_pli(BROWSER_SSRC, OUR_WEBRTC_SSRC), T0 + 1)
        h.relay.rtcp_from_webrtc(build_pli(BROWSER_SSRC, OUR_WEBRTC_SSRC), T0 + 2)
        firs = feedback(h.rtcp_to_sip)
        self.assertEqual([f.is_fir for f in firs], [True, True])
        # a new request each time: the FIR command sequence number goes up (RFC 5104 §4.3.1.2)
        self.assertEqual([fir_entries(f) for f in firs], [[(PHONE_SSRC, 1)], [(PHONE_SSRC, 2)]])

    def test_fir_from_phone_becomes_pli_to_the_browser(self) -> None:
        h = Harness(browser_ssrc=BROWSER_SSRC)
        h.relay.rtcp_from_sip(build_fir(PHONE_SSRC, OUR_SIP_SSRC, 1), T0)
        (pli,) = feedback(h.rtcp_to_webrtc)
        self.assertTrue(pli.is_pli)
        self.assertEqual((pli.sender_ssrc, pli.media_ssrc), (OUR_WEBRTC_SSRC, BROWSER_SSRC))
        self.assertEqual(h.relay.stats()[SIP]["keyframe_requests_received"], 1)

    def test_requests_are_throttled(self) -> None:
        h = Harness(browser_ssrc=BROWSER_SSRC)
        for i in range(5):
            h.relay.rtcp_from_sip(build_pli(PHONE_SSRC, OUR_SIP_SSRC), T0 + i * 0.1)
        h.relay.rtcp_from_sip(build_pli(PHONE_SSRC, OUR_SIP_SSRC), T0 + KEYFRAME_INTERVAL + 0.01)
        self.assertEqual(len(feedback(h.rtcp_to_webrtc)), 2)

    def test_request_waits_for_the_senders_first_packet(self) -> None:
        h = Harness()
        h.relay.request_keyframes_on_first_packet()
        self.assertEqual((h.rtcp_to_sip, h.rtcp_to_webrtc), ([], []))
        h.relay.from_sip(vp8(100, 1, 1, PHONE_SSRC), T0)
        (to_phone,) = feedback(h.rtcp_to_sip)
        self.assertEqual(to_phone.media_ssrc, PHONE_SSRC)
        h.relay.from_webrtc(vp8(96, 1, 1, BROWSER_SSRC), T0)
        (to_browser,) = feedback(h.rtcp_to_webrtc)
        self.assertEqual(to_browser.media_ssrc, BROWSER_SSRC)
        h.relay.from_webrtc(vp8(96, 2, 3001, BROWSER_SSRC), T0 + 0.03)
        self.assertEqual(len(feedback(h.rtcp_to_webrtc)), 1)  # once

    def test_request_keyframes_now_ignores_the_throttle(self) -> None:
        h = Harness(browser_ssrc=BROWSER_SSRC)
        h.relay.from_sip(vp8(100, 1, 1, PHONE_SSRC), T0)
        h.relay.request_keyframes(T0)
        h.relay.request_keyframes(T0 + 0.01)
        self.assertEqual(len(feedback(h.rtcp_to_webrtc)), 2)
        self.assertEqual(len(feedback(h.rtcp_to_sip)), 2)

    def test_nack_is_dropped_and_counted(self) -> None:
        h = Harness(browser_ssrc=BROWSER_SSRC)
        h.relay.from_sip(vp8(100, 1, 1, PHONE_SSRC), T0)
        h.rtcp_to_sip.clear()
        # RFC 4585 §6.2.1 generic NACK (PID 1, no BLP), built by hand
        packet = struct.pack("!BBHIIHH", 0x81, 205, 3, BROWSER_SSRC, OUR_WEBRTC_SSRC, 1, 0)
        self.assertTrue(parse_rtcp(packet)[0].is_nack)
        h.relay.rtcp_from_webrtc(packet, T0 + 1)
        self.assertEqual(h.rtcp_to_sip, [])
        self.assertEqual(h.relay.nacks_dropped, 1)


class BitrateTests(unittest.TestCase):
    def test_browser_gets_remb_at_the_sip_sides_bandwidth(self) -> None:
        h = Harness(browser_ssrc=BROWSER_SSRC, kbps=1500)
        (report,) = h.relay.make_rtcp_for_webrtc(T0 + 1)
        (remb,) = [p for p in parse_rtcp(report) if isinstance(p, Feedback)]
        bitrate, ssrcs = parse_remb(remb)
        self.assertEqual(ssrcs, (BROWSER_SSRC,))
        self.assertLessEqual(bitrate, 1_500_000)
        self.assertGreater(bitrate, 1_490_000)

    def test_no_remb_when_the_browser_did_not_negotiate_it(self) -> None:
        h = Harness(browser_ssrc=BROWSER_SSRC, webrtc_fb={"nack pli"})
        (report,) = h.relay.make_rtcp_for_webrtc(T0 + 1)
        self.assertFalse(any(isinstance(p, Feedback) for p in parse_rtcp(report)))

    def test_sip_remb_and_tmmbr_lower_the_browsers_rate(self) -> None:
        h = Harness(browser_ssrc=BROWSER_SSRC, kbps=2000)
        h.relay.rtcp_from_sip(build_remb(PHONE_SSRC, 700_000, [OUR_SIP_SSRC]), T0)
        self.assertLessEqual(h.relay.browser_target_bitrate, 700_000)
        self.assertGreater(h.relay.browser_target_bitrate, 699_000)
        h.relay.rtcp_from_sip(build_tmmbr(PHONE_SSRC, OUR_SIP_SSRC, 300_000), T0 + 1)
        self.assertLessEqual(h.relay.browser_target_bitrate, 300_000)
        self.assertGreater(h.relay.browser_target_bitrate, 299_000)
        # TMMBR is answered with TMMBN naming our stream
        (tmmbn,) = [f for f in feedback(h.rtcp_to_sip) if f.is_tmmbn]
        self.assertEqual(parse_tmmb(tmmbn)[0][0], OUR_SIP_SSRC)

    def test_browser_remb_forwarded_as_remb_or_tmmbr_or_kept(self) -> None:
        remb = build_remb(BROWSER_SSRC, 900_000, [OUR_WEBRTC_SSRC])
        for sip_fb, expect in (({"goog-remb"}, "remb"), ({"ccm tmmbr"}, "tmmbr"), (set(), None)):
            h = Harness(sip_fb=sip_fb)
            h.relay.from_sip(vp8(100, 1, 1, PHONE_SSRC), T0)
            h.rtcp_to_sip.clear()
            h.relay.rtcp_from_webrtc(remb, T0 + 1)
            sent = feedback(h.rtcp_to_sip)
            self.assertEqual(h.relay.browser_bitrate, parse_remb(parse_rtcp(remb)[0])[0])
            if expect is None:
                self.assertEqual(sent, [])
            elif expect == "remb":
                (f,) = sent
                self.assertEqual(parse_remb(f)[1], (PHONE_SSRC,))
            else:
                (f,) = sent
                self.assertTrue(f.is_tmmbr)
                self.assertEqual(parse_tmmb(f)[0][:2], (PHONE_SSRC, parse_remb(parse_rtcp(remb)[0])[0]))

    def test_reports_describe_the_video_streams(self) -> None:
        h = Harness(browser_ssrc=BROWSER_SSRC)
        for i in range(10):
            h.relay.from_webrtc(vp8(96, i, 3000 * i, BROWSER_SSRC), T0 + i / 30)
        (report,) = h.relay.make_rtcp_for_sip(T0 + 1)
        sr = parse_rtcp(report)[0]
        self.assertIsInstance(sr, SenderReport)
        self.assertEqual((sr.ssrc, sr.packet_count), (OUR_SIP_SSRC, 10))
        (report,) = h.relay.make_rtcp_for_webrtc(T0 + 1)
        rr = parse_rtcp(report)[0]
        self.assertEqual(rr.reports[0].ssrc, BROWSER_SSRC)
        self.assertEqual(h.relay.stats()[WEBRTC]["packets_received"], 10)
