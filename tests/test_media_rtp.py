"""RTP header parse/build/rewrite (wcsgw.media.rtp): round trips with CSRCs, extension, padding;
RFC 5761 demultiplexing; the in-place and copying rewrite helpers."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from wcsgw.media.rtp import (
    RtpError,
    RtpHeader,
    build_rtp,
    is_rtcp,
    is_rtp,
    parse_rtp,
    rewrite_header,
    rewrite_header_into,
    rtp_payload,
)


class ParseBuildTests(SynchronousTestCase):
    def test_plain_header_fields_and_bytes(self) -> None:
        pkt = build_rtp(payload_type=0, sequence=0x1234, timestamp=0xDEADBEEF, ssrc=0x01020304, payload=b"\xff" * 160)
        self.assertEqual(pkt[:12], bytes.fromhex("80001234deadbeef01020304"))
        h = parse_rtp(pkt)
        self.assertEqual(
            (h.version, h.padding, h.extension, h.csrc_count, h.marker, h.payload_type),
            (2, False, False, 0, False, 0),
        )
        self.assertEqual((h.sequence, h.timestamp, h.ssrc, h.header_length), (0x1234, 0xDEADBEEF, 0x01020304, 12))
        self.assertEqual(h.payload(pkt), b"\xff" * 160)
        self.assertEqual(rtp_payload(pkt), b"\xff" * 160)

    def test_round_trip_with_csrc_extension_padding_and_marker(self) -> None:
        pkt = build_rtp(
            payload_type=111,
            sequence=65535,
            timestamp=4294967295,
            ssrc=0xFFFFFFFF,
            payload=b"opus-frame",
            marker=True,
            csrcs=(1, 2, 0xCAFEBABE),
            extension=(0xBEDE, b"\x10\xaa\x00\x00"),
            padding=6,
        )
        self.assertEqual(pkt[0], 0x80 | 0x20 | 0x10 | 3)
        self.assertEqual(pkt[1], 0x80 | 111)
        self.assertEqual(pkt[-1], 6)
        h = RtpHeader.parse(pkt)
        self.assertTrue(h.marker and h.padding and h.extension)
        self.assertEqual(h.csrcs, (1, 2, 0xCAFEBABE))
        self.assertEqual(h.extension_profile, 0xBEDE)
        self.assertEqual(h.extension_data, b"\x10\xaa\x00\x00")
        self.assertEqual(h.header_length, 12 + 12 + 4 + 4)
        self.assertEqual(h.padding_length, 6)
        self.assertEqual(h.payload(pkt), b"opus-frame")
        self.assertEqual(rtp_payload(pkt), b"opus-frame")
        rebuilt = build_rtp(
            payload_type=h.payload_type,
            sequence=h.sequence,
            timestamp=h.timestamp,
            ssrc=h.ssrc,
            payload=h.payload(pkt),
            marker=h.marker,
            csrcs=h.csrcs,
            extension=(h.extension_profile, h.extension_data),
            padding=h.padding_length,
        )
        self.assertEqual(rebuilt, pkt)

    def test_malformed_packets_are_rejected(self) -> None:
        good = build_rtp(payload_type=0, sequence=1, timestamp=2, ssrc=3, payload=b"x")
        self.assertRaises(RtpError, parse_rtp, good[:11])
        self.assertRaises(RtpError, parse_rtp, bytes([0x40]) + good[1:])  # version 1
        self.assertRaises(RtpError, parse_rtp, bytes([0x82]) + good[1:])  # 2 CSRCs missing
        self.assertRaises(RtpError, parse_rtp, bytes([0x90]) + good[1:])  # extension missing
        self.assertRaises(RtpError, parse_rtp, bytes([0xA0]) + good[1:-1] + b"\x00")  # pad 0
        self.assertRaises(RtpError, parse_rtp, bytes([0xA0]) + good[1:-1] + b"\x09")  # pad > len
        ext_too_long = bytes([0x90]) + good[1:12] + b"\xbe\xde\x00\x05"
        self.assertRaises(RtpError, parse_rtp, ext_too_long)

    def test_build_validates_arguments(self) -> None:
        self.assertRaises(ValueError, build_rtp, payload_type=128, sequence=0, timestamp=0, ssrc=0)
        self.assertRaises(ValueError, build_rtp, payload_type=0, sequence=0, timestamp=0, ssrc=0, csrcs=range(16))
        self.assertRaises(
            ValueError, build_rtp, payload_type=0, sequence=0, timestamp=0, ssrc=0, extension=(1, b"abc")
        )

    def test_sequence_and_timestamp_are_wrapped(self) -> None:
        h = parse_rtp(build_rtp(payload_type=8, sequence=65536 + 5, timestamp=(1 << 32) + 7, ssrc=1))
        self.assertEqual((h.sequence, h.timestamp), (5, 7))


class DemuxTests(SynchronousTestCase):
    def test_rfc5761_second_byte_ranges(self) -> None:
        rtp = build_rtp(payload_type=111, sequence=1, timestamp=1, ssrc=1, marker=True)  # byte 1 = 239
        self.assertFalse(is_rtcp(rtp))
        self.assertTrue(is_rtp(rtp))
        for pt in (192, 200, 201, 205, 206, 223):
            pkt = bytes([0x80, pt, 0, 1]) + bytes(8)
            self.assertTrue(is_rtcp(pkt), pt)
            self.assertFalse(is_rtp(pkt), pt)
        for b1 in (0, 8, 96, 127, 128, 191, 224):
            pkt = bytes([0x80, b1]) + bytes(10)
            self.assertFalse(is_rtcp(pkt), b1)
        self.assertFalse(is_rtcp(b"\x80"))
        self.assertFalse(is_rtp(bytes([0x40, 0]) + bytes(10)))


class RewriteTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.pkt = build_rtp(
            payload_type=111,
            sequence=10,
            timestamp=1000,
            ssrc=0xAAAA,
            payload=b"payload",
            csrcs=(7,),
            extension=(0xBEDE, b"\x01\x02\x03\x04"),
            padding=4,
        )

    def test_rewrite_keeps_everything_after_the_fixed_header(self) -> None:
        out = rewrite_header(self.pkt, 0, 65535 + 3, (1 << 32) + 9, 0xBBBB, True)
        self.assertIsInstance(out, bytes)
        self.assertEqual(out[12:], self.pkt[12:])
        self.assertEqual(out[0], self.pkt[0])
        h = parse_rtp(out)
        self.assertEqual((h.payload_type, h.sequence, h.timestamp, h.ssrc, h.marker), (0, 2, 9, 0xBBBB, True))
        self.assertEqual(h.csrcs, (7,))
        self.assertEqual(h.payload(out), b"payload")

    def test_rewrite_into_a_bytearray(self) -> None:
        buf = bytearray(self.pkt)
        rewrite_header_into(buf, 101, 42, 43, 44, False)
        h = parse_rtp(buf)
        self.assertEqual((h.payload_type, h.sequence, h.timestamp, h.ssrc, h.marker), (101, 42, 43, 44, False))
        self.assertEqual(bytes(buf[12:]), self.pkt[12:])
