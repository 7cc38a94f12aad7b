"""Sans-IO message framing for stream transports (TCP, TLS): RFC 3261 §18.3, RFC 5626 §3.5.1.

A stream carries messages back to back; each ends after its headers' empty line plus
Content-Length bytes of body, so Content-Length is mandatory here (a missing one leaves no
way to find the next message).  Between messages a peer may send keep-alives: a double
CRLF is an RFC 5626 *ping* (the transport answers a single CRLF *pong*), a single CRLF is a
pong answering our own ping.  Both are counted, not returned, so ``feed()`` yields only
messages: the transport asks :meth:`StreamFramer.take_pings` after each feed and writes one
``b"\\r\\n"`` when it is non-zero; client-side keep-alive logic reads
:meth:`StreamFramer.take_pongs`.  A single CRLF is reported as a pong at once, since waiting
for a second one would delay every real pong; a ping split exactly between its two CRLFs
thus counts as two pongs, which costs nothing but a missed reply.

Any :class:`FramingError` is fatal for the connection: the byte stream can no longer be
resynchronised.  Memory stays bounded: what is kept between calls never exceeds
``max_header_size`` (while looking for the end of the headers) or ``max_message_size``.
"""

from __future__ import annotations

import re

from wcsgw.sip.errors import SipParseError

_CONTENT_LENGTH_RE = re.compile(rb"^(?:content-length|l)[ \t]*:[ \t]*([^\r\n]*?)[ \t]*\r?$", re.I | re.M)
_DIGITS_RE = re.compile(rb"[0-9]{1,10}")


class FramingError(SipParseError):
    """The stream is broken (oversized, or a message without a usable Content-Length):
    close the connection; the framer refuses any further data."""


class StreamFramer:
    """Cut a byte stream into complete SIP messages."""

    def __init__(self, max_message_size: int = 65535, max_header_size: int = 16384) -> None:
        self.max_message_size = max_message_size
        self.max_header_size = min(max_header_size, max_message_size)
        self._buf = bytearray()
        self._scan = 0  # where the search for the end of the headers resumes
        self._need: int | None = None  # full length of the message being received
        self._pings = 0
        self._pongs = 0
        self._failed: FramingError | None = None

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; return the messages they complete, in order."""
        if self._failed is not None:
            raise self._failed
        self._buf += data
        out: list[bytes] = []
        try:
            while self._step(out):
                pass
        except FramingError as exc:
            self._failed = exc
            self._buf = bytearray()
            raise
        return out

    def take_pings(self) -> int:
        """RFC 5626 pings (double CRLF) received since the last call: answer with CRLF."""
        pings, self._pings = self._pings, 0
        return pings

    def take_pongs(self) -> int:
        """Single-CRLF pongs received since the last call (our own pings were answered)."""
        pongs, self._pongs = self._pongs, 0
        return pongs

    @property
    def buffered(self) -> int:
        """Bytes held while waiting for the rest of a message."""
        return len(self._buf)

    def _step(self, out: list[bytes]) -> bool:
        """Make one unit of progress; False when more data is needed."""
        buf = self._buf
        if self._need is None:
            if not self._skip_keepalives():
                return False
            if not self._find_header_end():
                return False
        need = self._need
        assert need is not None
        if len(buf) < need:
            return False
        out.append(bytes(buf[:need]))
        del buf[:need]
        self._need = None
        self._scan = 0
        return bool(buf)

    def _skip_keepalives(self) -> bool:
        """Consume CRLF keep-alives before a message; False when the buffer ran out."""
        buf = self._buf
        while buf and buf[0] in b"\r\n":
            if buf[:4] == b"\r\n\r\n":
                self._pings += 1
                del buf[:4]
            elif buf[:1] == b"\n":
                del buf[:1]  # a stray LF: tolerated, like the CRLFs of RFC 3261 §7.5
            elif len(buf) < 2 or buf[:3] == b"\r\n\r":
                return False  # a keep-alive cut short: wait for its end
            elif buf[:2] == b"\r\n":
                self._pongs += 1
                del buf[:2]
            else:
                raise FramingError("stray CR between messages")
        return bool(buf)

    def _find_header_end(self) -> bool:
        buf = self._buf
        start = max(0, self._scan - 2)
        i_crlf = buf.find(b"\n\r\n", start)
        i_lf = buf.find(b"\n\n", start)
        if i_crlf < 0 and i_lf < 0:
            if len(buf) > self.max_header_size:
                raise FramingError(
                    f"no end of headers within {self.max_header_size} bytes", status=513
                )
            self._scan = len(buf)
            return False
        if i_lf < 0 or 0 <= i_crlf < i_lf:
            body_start = i_crlf + 3
        else:
            body_start = i_lf + 2
        if body_start > self.max_header_size:
            raise FramingError(f"header section over {self.max_header_size} bytes", status=513)
        length = self._content_length(bytes(buf[:body_start]))
        if body_start + length > self.max_message_size:
            raise FramingError(
                f"message of {body_start + length} bytes exceeds {self.max_message_size}",
                status=413,
            )
        self._need = body_start + length
        return True

    @staticmethod
    def _content_length(head: bytes) -> int:
        values = _CONTENT_LENGTH_RE.findall(head)
        if not values:
            raise FramingError("missing Content-Length on a stream transport")
        lengths = set()
        for value in values:
            if not _DIGITS_RE.fullmatch(value):
                raise FramingError(f"malformed Content-Length {value[:20]!r}")
            lengths.add(int(value))
        if len(lengths) > 1:
            raise FramingError("conflicting Content-Length values")
        return lengths.pop()
