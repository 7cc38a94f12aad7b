"""RTCP (wcsgw.media.rtcp): SR/RR/SDES/BYE/feedback wire format and parsing, NTP time, and the
per-leg reporter (SR vs RR, report block loss/jitter/LSR/DLSR, RTT, scheduling)."""

from __future__ import annotations

import random
import struct

from twisted.trial.unittest import SynchronousTestCase

from wcsgw.media.reporter import RtcpReporter
from wcsgw.media.rtcp import (
    Bye,
    Feedback,
    ReceiverReport,
    ReportBlock,
    RtcpError,
    SenderReport,
    SourceDescription,
    UnknownRtcp,
    build_bye,
    build_rr,
    build_sdes,
    build_sr,
    ntp_timestamp,
    ntp_to_unix,
    parse_rtcp,
)
from wcsgw.media.rtcpfb import build_pli, wants_keyframe
from wcsgw.media.rtp import is_rtcp
from wcsgw.media.stream import InboundStream, OutboundStream

# 2024-01-01T00:00:00Z, and the same instant in NTP seconds (since 1900)
UNIX_2024 = 1704067200
NTP_2024 = UNIX_2024 + 2208988800


class NtpTests(SynchronousTestCase):
    def test_epoch_offset_and_fraction(self) -> None:
        ntp = ntp_timestamp(UNIX_2024 + 0.5)
        self.assertEqual(ntp >> 32, NTP_2024)
        self.assertEqual(ntp & 0xFFFFFFFF, 0x80000000)
        self.assertEqual(ntp_to_unix(ntp), UNIX_2024 + 0.5)
        self.assertEqual(ntp_timestamp(0.25) & 0xFFFFFFFF, 0x40000000)


class WireFormatTests(SynchronousTestCase):
    def test_sr_layout(self) -> None:
        block = ReportBlock(0xBBBB, 64, 1000, 70000, 42, 0x12345678, 0x00018000)
        pkt = build_sr(0xAAAA, ntp_timestamp(UNIX_2024 + 0.5), 160000, 500, 80000, [block])
        self.assertEqual(len(pkt), 28 + 24)
        self.assertEqual(pkt[0], 0x81)  # V=2, RC=1
        self.assertEqual(pkt[1], 200)
        self.assertEqual(struct.unpack("!H", pkt[2:4])[0], len(pkt) // 4 - 1)
        self.assertEqual(
            struct.unpack("!IIIIII", pkt[4:28]), (0xAAAA, NTP_2024, 0x80000000, 160000, 500, 80000)
        )
        # fraction lost in the top byte, cumulative lost in 24 bits
        self.assertEqual(pkt[32:36], bytes([64, 0, 0x03, 0xE8]))
        self.assertTrue(is_rtcp(pkt))

    def test_sr_and_rr_parse_back(self) -> None:
        blocks = [
            ReportBlock(1, 255, -5, 65536 * 3 + 7, 12, 99, 100),
            ReportBlock(2, 0, 0x7FFFFF, 1, 0, 0, 0),
        ]
        compound = build_sr(7, ntp_timestamp(UNIX_2024), 9, 10, 11, blocks) + build_rr(8, blocks[:1])
        sr, rr = parse_rtcp(compound)
        self.assertEqual(sr, SenderReport(7, NTP_2024 << 32, 9, 10, 11, tuple(blocks)))
        self.assertEqual(rr, ReceiverReport(8, (blocks[0],)))
        self.assertEqual(sr.lsr, (NTP_2024 & 0xFFFF) << 16)
        self.assertEqual(parse_rtcp(build_rr(5)), [ReceiverReport(5, ())])

    def test_sdes_cname_is_padded_and_parsed(self) -> None:
        for name in ("a", "ab", "abc", "abcd", "wcsgw-5f3a@gateway"):
            pkt = build_sdes(0xCAFE, name)
            self.assertEqual(len(pkt) % 4, 0)
            self.assertEqual(pkt[1], 202)
            (sdes,) = parse_rtcp(pkt)
            self.assertIsInstance(sdes, SourceDescription)
            self.assertEqual(sdes.cname(0xCAFE), name)
            self.assertIsNone(sdes.cname(1))

    def test_bye_with_reason_and_feedback(self) -> None:
        (bye,) = parse_rtcp(build_bye(3, "call ended"))
        self.assertEqual(bye, Bye((3,), "call ended"))
        (pli,) = parse_rtcp(build_pli(1, 2))
        self.assertEqual(pli, Feedback(206, 1, 1, 2, b""))
        self.assertTrue(pli.is_pli and not pli.is_fir and not pli.is_nack)
        fir = bytes([0x84, 206, 0, 4]) + struct.pack("!IIII", 1, 0, 2, 0x01000000)
        self.assertTrue(wants_keyframe(parse_rtcp(fir)))
        nack = bytes([0x81, 205, 0, 3]) + struct.pack("!III", 1, 2, 0x00100000)
        (n,) = parse_rtcp(nack)
        self.assertTrue(n.is_nack)
        self.assertFalse(wants_keyframe([n]))
        app = bytes([0x80, 204, 0, 1]) + b"ABCD"
        self.assertEqual(parse_rtcp(app), [UnknownRtcp(204, 0, b"ABCD")])

    def test_malformed(self) -> None:
        rr = build_rr(5, [ReportBlock(1, 0, 0, 0, 0)])
        self.assertRaises(RtcpError, parse_rtcp, rr[:-4])  # length past the datagram
        self.assertRaises(RtcpError, parse_rtcp, bytes([0x40]) + rr[1:])  # version 1
        self.assertRaises(RtcpError, parse_rtcp, b"\x80\xc9")
        self.assertRaises(RtcpError, parse_rtcp, rr + b"\x00\x00")
        bad_count = bytes([0x82]) + rr[1:]  # claims 2 blocks, has 1
        self.assertRaises(RtcpError, parse_rtcp, bad_count)


class ReporterTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.t0 = float(UNIX_2024)
        self.out = OutboundStream(0x1111, 8000, sequence=100, timestamp=8000)
        self.inb = InboundStream(8000)
        self.rep = RtcpReporter(self.out, self.inb, "gw@test", now=self.t0, interval=5.0, rng=random.Random(1))

    def test_first_report_after_half_an_interval_then_randomised(self) -> None:
        first = self.rep.next_due - self.t0
        self.assertTrue(1.25 <= first <= 3.75, first)
        self.assertFalse(self.rep.due(self.t0))
        self.assertTrue(self.rep.due(self.rep.next_due))
        gaps = []
        now = self.rep.next_due
        for _ in range(50):
            self.rep.make(now)
            gaps.append(self.rep.next_due - now)
            now = self.rep.next_due
        self.assertTrue(all(2.5 <= g <= 7.5 for g in gaps))
        self.assertGreater(max(gaps) - min(gaps), 1.0)

    def test_rr_with_sdes_before_we_send_anything(self) -> None:
        rr, sdes = parse_rtcp(self.rep.make(self.t0 + 3))
        self.assertEqual(rr, ReceiverReport(0x1111, ()))
        self.assertEqual(sdes.cname(0x1111), "gw@test")

    def test_sr_counts_ntp_and_rtp_clock(self) -> None:
        for i in range(50):  # one second of 20 ms packets, 160 payload bytes each
            self.out.translate(0x9999, i, 160 * i, self.t0 + 0.02 * i, 160)
        now = self.t0 + 1.0
        sr, _ = parse_rtcp(self.rep.make(now))
        self.assertIsInstance(sr, SenderReport)
        self.assertEqual((sr.packet_count, sr.octet_count), (50, 8000))
        self.assertEqual(sr.ntp_timestamp, ntp_timestamp(now))
        # last packet had RTP ts 8000 + 49*160 at t0+0.98; 20 ms later the clock is 160 further
        self.assertEqual(sr.rtp_timestamp, 8000 + 50 * 160)
        self.assertEqual(sr.reports, ())
        # RFC 3550 §6.4: still SR one report after we stopped sending, RR after two
        self.assertIsInstance(parse_rtcp(self.rep.make(now + 5))[0], SenderReport)
        self.assertIsInstance(parse_rtcp(self.rep.make(now + 10))[0], ReceiverReport)

    def test_report_block_loss_jitter_and_lsr_dlsr(self) -> None:
        # the peer sends us 100 packets of which 10 are lost, then an SR
        for i in range(100):
            if i % 10 != 5:
                self.inb.update(0x2222, 1000 + i, 160 * i, self.t0 + 0.02 * i, 160)
        peer_sr_time = self.t0 + 2.0
        peer_sr = build_sr(0x2222, ntp_timestamp(peer_sr_time), 0, 100, 16000)
        self.rep.receive(peer_sr, self.t0 + 2.01)
        rr, _ = parse_rtcp(self.rep.make(self.t0 + 2.51))
        (block,) = rr.reports
        self.assertEqual(block.ssrc, 0x2222)
        self.assertEqual(block.cumulative_lost, 10)
        self.assertEqual(block.fraction_lost, (10 << 8) // 100)
        self.assertEqual(block.highest_sequence, 1099)
        self.assertLessEqual(block.jitter, 1)
        self.assertEqual(block.lsr, (ntp_timestamp(peer_sr_time) >> 16) & 0xFFFFFFFF)
        self.assertEqual(block.dlsr, int(0.5 * 65536))
        # nothing received since: no block in the next report
        rr2, _ = parse_rtcp(self.rep.make(self.t0 + 8))
        self.assertEqual(rr2.reports, ())

    def test_rtt_from_the_peers_report_about_us(self) -> None:
        self.out.translate(0x9999, 0, 0, self.t0, 160)
        our_sr = parse_rtcp(self.rep.make(self.t0 + 1.0))[0]
        # the peer holds our SR 0.3 s, and its report reaches us 0.5 s after we sent ours
        block = ReportBlock(0x1111, 0, 0, 0, 3, our_sr.lsr, int(0.3 * 65536))
        packets = self.rep.receive(build_rr(0x2222, [block]) + build_sdes(0x2222, "peer"), self.t0 + 1.5)
        self.assertEqual(len(packets), 2)
        self.assertAlmostEqual(self.rep.rtt, 0.2, places=3)
        self.assertEqual(self.rep.remote_report, block)
        self.assertEqual((self.rep.remote_ssrc, self.rep.remote_cname), (0x2222, "peer"))

    def test_malformed_input_is_consumed_quietly_and_bye_noted(self) -> None:
        self.assertEqual(self.rep.receive(b"\x80\xc9\x00", self.t0), [])
        self.rep.receive(build_rr(0x2222) + build_bye(0x2222), self.t0)
        self.assertTrue(self.rep.remote_bye)
        self.rep.receive(build_pli(0x2222, 0x1111), self.t0)
        self.assertEqual(self.rep.keyframe_requests, 1)

    def test_bye_compound(self) -> None:
        parts = parse_rtcp(self.rep.make_bye("hangup"))
        self.assertEqual([type(p) for p in parts], [ReceiverReport, SourceDescription, Bye])
        self.assertEqual(parts[2].reason, "hangup")
