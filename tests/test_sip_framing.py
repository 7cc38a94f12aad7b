"""Stream framing (wcsgw.sip.framing): RFC 3261 §18.3 Content-Length framing, RFC 5626
keep-alives, bounded memory, fatal errors."""

from __future__ import annotations

import os

from hypothesis import given, strategies as st
from twisted.trial.unittest import SynchronousTestCase

from wcsgw.sip.errors import SipParseError
from wcsgw.sip.framing import FramingError, StreamFramer
from wcsgw.sip.parser import parse_message

DATA = os.path.join(os.path.dirname(__file__), "data", "rfc4475")


def message(body: bytes = b"", length: int | None = None, extra: bytes = b"") -> bytes:
    cl = b"" if length == -1 else b"Content-Length: %d\r\n" % (len(body) if length is None else length)
    return (
        b"MESSAGE sip:bob@biloxi.com SIP/2.0\r\n"
        b"Via: SIP/2.0/TCP pc33.atlanta.com;branch=z9hG4bK776asdhds\r\n"
        b"To: <sip:bob@biloxi.com>\r\nFrom: <sip:alice@atlanta.com>;tag=1\r\n"
        b"Call-ID: a84b4c76e66710\r\nCSeq: 1 MESSAGE\r\n" + extra + cl + b"\r\n" + body
    )


A = message(b"hello")
B = message(b"")
C = message(b"x" * 1000)


class Framing(SynchronousTestCase):
    def test_one_message(self) -> None:
        f = StreamFramer()
        self.assertEqual(f.feed(A), [A])
        self.assertEqual(f.buffered, 0)

    def test_back_to_back(self) -> None:
        self.assertEqual(StreamFramer().feed(A + B + C), [A, B, C])

    def test_byte_by_byte(self) -> None:
        f = StreamFramer()
        out: list[bytes] = []
        for i in range(len(A + B)):
            out += f.feed((A + B)[i : i + 1])
        self.assertEqual(out, [A, B])

    def test_split_inside_header_terminator(self) -> None:
        f = StreamFramer()
        cut = A.index(b"\r\n\r\n") + 2
        self.assertEqual(f.feed(A[:cut]), [])
        self.assertEqual(f.feed(A[cut:]), [A])

    def test_compact_content_length_and_case(self) -> None:
        m = message(b"abc", length=-1, extra=b"l:   3\r\n")
        self.assertEqual(StreamFramer().feed(m + B), [m, B])
        m = message(b"abc", length=-1, extra=b"CONTENT-LENGTH : 3\r\n")
        self.assertEqual(StreamFramer().feed(m), [m])

    def test_bare_lf_headers(self) -> None:
        m = message(b"abc").replace(b"\r\n", b"\n")
        self.assertEqual(StreamFramer().feed(m), [m])

    def test_body_with_empty_lines(self) -> None:
        m = message(b"\r\n\r\nline\r\n\r\n")
        self.assertEqual(StreamFramer().feed(m + B), [m, B])

    def test_frames_parse(self) -> None:
        with open(os.path.join(DATA, "mpart01.dat"), "rb") as f:
            data = f.read()
        [frame] = StreamFramer().feed(data)
        self.assertEqual(len(parse_message(frame).body), 553)


class KeepAlives(SynchronousTestCase):
    def test_ping(self) -> None:
        f = StreamFramer()
        self.assertEqual(f.feed(b"\r\n\r\n"), [])
        self.assertEqual(f.take_pings(), 1)
        self.assertEqual(f.take_pings(), 0)
        self.assertEqual(f.take_pongs(), 0)

    def test_pings_between_messages(self) -> None:
        f = StreamFramer()
        self.assertEqual(f.feed(b"\r\n\r\n" + A + b"\r\n\r\n\r\n\r\n" + B), [A, B])
        self.assertEqual(f.take_pings(), 3)

    def test_ping_split_in_the_middle_of_its_second_crlf(self) -> None:
        f = StreamFramer()
        self.assertEqual(f.feed(b"\r\n\r"), [])
        self.assertEqual(f.feed(b"\n"), [])
        self.assertEqual(f.take_pings(), 1)
        self.assertEqual(f.take_pongs(), 0)

    def test_pong(self) -> None:
        f = StreamFramer()
        self.assertEqual(f.feed(b"\r\n"), [])
        self.assertEqual(f.take_pongs(), 1)
        self.assertEqual(f.feed(b"\r\n" + A), [A])
        self.assertEqual(f.take_pongs(), 1)
        self.assertEqual(f.take_pings(), 0)

    def test_stray_lf_ignored(self) -> None:
        f = StreamFramer()
        self.assertEqual(f.feed(b"\n" + A), [A])


class Errors(SynchronousTestCase):
    def assertFatal(self, f: StreamFramer, data: bytes, status: int | None = None) -> FramingError:
        exc = self.assertRaises(FramingError, f.feed, data)
        self.assertIsInstance(exc, SipParseError)
        if status is not None:
            self.assertEqual(exc.status, status)
        # fatal: the framer refuses anything more, even good data
        self.assertRaises(FramingError, f.feed, A)
        self.assertEqual(f.buffered, 0)
        return exc

    def test_missing_content_length(self) -> None:
        exc = self.assertFatal(StreamFramer(), message(b"", length=-1))
        self.assertIn("missing Content-Length", exc.reason)

    def test_malformed_content_length(self) -> None:
        for bad in [b"-1", b"abc", b"", b"1 2", b"12345678901"]:
            with self.subTest(bad=bad):
                self.assertFatal(StreamFramer(), message(length=-1, extra=b"Content-Length: " + bad + b"\r\n"))

    def test_conflicting_content_lengths(self) -> None:
        with open(os.path.join(DATA, "mcl01.dat"), "rb") as f:
            self.assertFatal(StreamFramer(), f.read())

    def test_body_too_large(self) -> None:
        f = StreamFramer(max_message_size=2000)
        self.assertFatal(f, message(length=5000), status=413)

    def test_headers_too_large_without_end(self) -> None:
        f = StreamFramer(max_header_size=1024)
        self.assertEqual(f.feed(b"INVITE sip:a@b SIP/2.0\r\n"), [])
        exc = self.assertFatal(f, b"X-Junk: " + b"a" * 2000, status=513)
        self.assertIn("1024", exc.reason)

    def test_headers_too_large_with_end(self) -> None:
        f = StreamFramer(max_header_size=300)
        self.assertFatal(f, message(extra=b"X-Pad: " + b"p" * 400 + b"\r\n"), status=513)

    def test_stray_cr(self) -> None:
        self.assertFatal(StreamFramer(), b"\rX")


class Bounded(SynchronousTestCase):
    @given(st.lists(st.binary(min_size=1, max_size=200), max_size=30))
    def test_garbage_never_grows_past_the_limit(self, chunks: list[bytes]) -> None:
        f = StreamFramer(max_message_size=1500, max_header_size=500)
        for chunk in chunks:
            try:
                frames = f.feed(chunk)
            except FramingError:
                return
            for frame in frames:
                self.assertLessEqual(len(frame), 1500)
            self.assertLessEqual(f.buffered, 1500)

    @given(st.lists(st.sampled_from([A, B, C, b"\r\n\r\n"]), max_size=12), st.data())
    def test_any_chunking_gives_the_same_messages(self, parts: list[bytes], data: st.DataObject) -> None:
        stream = b"".join(parts)
        cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
        f = StreamFramer()
        out: list[bytes] = []
        prev = 0
        for cut in cuts + [len(stream)]:
            out += f.feed(stream[prev:cut])
            prev = cut
        self.assertEqual(out, [p for p in parts if p != b"\r\n\r\n"])
        self.assertEqual(f.buffered, 0)
