"""RFC 4571 framing for ICE-TCP, sans-IO: a 2-byte big-endian length before every packet.

A TCP stream has no packet boundaries, so STUN, DTLS and SRTP each travel as one frame
(RFC 6544 §3).  Reads from the socket cut frames anywhere: :class:`FrameDecoder` takes the
bytes as they come and hands back whole packets, holding at most one frame's worth.

Why frames have a limit far below the 65535 the length field allows: a browser's packets are
datagrams sized for a path MTU (~1200-1500 bytes), so a larger frame is not a browser and
buffering it would let any stranger who opens a connection make us hold 64 KiB each.
"""

from __future__ import annotations

__all__ = ["FrameDecoder", "FramingError", "MAX_FRAME", "frame"]

#: Largest packet taken or sent in one frame (bytes): a browser's are MTU-sized.
MAX_FRAME = 4096


class FramingError(ValueError):
    """The stream broke the framing rules (a frame over the limit, an empty frame): the
    connection cannot be trusted to stay in step and must be closed."""


def frame(packet: bytes) -> bytes:
    """``packet`` with its RFC 4571 length prefix."""
    if not packet or len(packet) > 0xFFFF:
        raise FramingError(f"cannot frame a packet of {len(packet)} bytes")
    return len(packet).to_bytes(2, "big") + packet


class FrameDecoder:
    """Whole frames out of a byte stream.  After a :class:`FramingError` the decoder stays
    broken (every later :meth:`feed` raises): the caller closes the connection."""

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self.max_frame = max_frame
        self._buffer = bytearray()
        self._broken: FramingError | None = None

    @property
    def buffered(self) -> int:
        """Bytes held for a frame not complete yet (never more than ``max_frame + 2``)."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        """The frames ``data`` completes, in order (possibly none)."""
        if self._broken is not None:
            raise self._broken
        buffer = self._buffer
        buffer += data
        frames: list[bytes] = []
        start = 0
        while len(buffer) - start >= 2:
            length = int.from_bytes(buffer[start:start + 2], "big")
            if length == 0 or length > self.max_frame:
                self._broken = FramingError(
                    f"frame of {length} bytes (1..{self.max_frame} accepted)")
                buffer.clear()
                raise self._broken
            end = start + 2 + length
            if len(buffer) < end:
                break
            frames.append(bytes(buffer[start + 2:end]))
            start = end
        del buffer[:start]
        return frames
