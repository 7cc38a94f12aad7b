"""RFC 4571 framing of ICE-TCP (wcsgw.webrtc.framing), sans-IO: frames cut anywhere by TCP
come out whole, several in one read come out in order, and a stream that breaks the rules
(an oversize or empty frame) is refused for good."""

from __future__ import annotations

from twisted.trial import unittest

from wcsgw.webrtc.framing import MAX_FRAME, FrameDecoder, FramingError, frame


class FramingTests(unittest.TestCase):
    def test_frame_prefixes_the_length(self) -> None:
        self.assertEqual(frame(b"abc"), b"\x00\x03abc")
        self.assertEqual(frame(b"x" * 300)[:2], b"\x01\x2c")

    def test_frame_refuses_empty_and_oversize_packets(self) -> None:
        self.assertRaises(FramingError, frame, b"")
        self.assertRaises(FramingError, frame, b"x" * 65536)

    def test_whole_frame_in_one_read(self) -> None:
        self.assertEqual(FrameDecoder().feed(frame(b"hello")), [b"hello"])

    def test_frame_split_byte_by_byte(self) -> None:
        decoder = FrameDecoder()
        data = frame(b"hello") + frame(b"world!")
        out: list[bytes] = []
        for i in range(len(data)):
            out += decoder.feed(data[i:i + 1])
            if i < 6:
                self.assertEqual(out, [])
        self.assertEqual(out, [b"hello", b"world!"])
        self.assertEqual(decoder.buffered, 0)

    def test_several_frames_and_a_partial_one_in_one_read(self) -> None:
        decoder = FrameDecoder()
        data = frame(b"a") + frame(b"bb") + frame(b"ccc") + frame(b"dddd")[:3]
        self.assertEqual(decoder.feed(data), [b"a", b"bb", b"ccc"])
        self.assertEqual(decoder.buffered, 3)
        self.assertEqual(decoder.feed(b"ddd"), [b"dddd"])

    def test_largest_frame_is_taken(self) -> None:
        packet = bytes(range(256)) * (MAX_FRAME // 256)
        self.assertEqual(len(packet), MAX_FRAME)
        self.assertEqual(FrameDecoder().feed(frame(packet)), [packet])

    def test_oversize_frame_is_refused_before_its_body_is_held(self) -> None:
        decoder = FrameDecoder(max_frame=100)
        with self.assertRaises(FramingError):
            decoder.feed((101).to_bytes(2, "big") + b"x")
        self.assertEqual(decoder.buffered, 0)
        # broken for good: the stream cannot be trusted to be in step again
        self.assertRaises(FramingError, decoder.feed, frame(b"ok"))

    def test_empty_frame_is_refused(self) -> None:
        self.assertRaises(FramingError, FrameDecoder().feed, b"\x00\x00")

    def test_frames_before_a_bad_one_are_not_delivered_twice(self) -> None:
        decoder = FrameDecoder(max_frame=10)
        self.assertEqual(decoder.feed(frame(b"good")), [b"good"])
        self.assertRaises(FramingError, decoder.feed, frame(b"y" * 11))

    def test_buffer_never_exceeds_one_frame(self) -> None:
        decoder = FrameDecoder(max_frame=50)
        decoder.feed((50).to_bytes(2, "big") + b"z" * 49)
        self.assertEqual(decoder.buffered, 51)
        self.assertEqual(decoder.feed(b"z"), [b"z" * 50])
        self.assertEqual(decoder.buffered, 0)
