"""RTP packet headers (RFC 3550 §5.1): parse, build and rewrite, fast.

The relay path touches every packet of every call (50 packets/s per direction per call), so the
hot helpers here are plain functions over a precompiled :class:`struct.Struct`: no attrs object
is built per packet. :class:`RtpHeader` (a full parse including CSRCs, the header extension and
padding) is for the cases that need it — packets whose first byte is not the plain ``0x80``,
tests, and debugging.

Bit layout of the fixed header (network order)::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    |V=2|P|X|  CC   |M|     PT      |       sequence number         |
    |                           timestamp                           |
    |           synchronization source (SSRC) identifier            |
"""

from __future__ import annotations

import struct

import attrs

__all__ = [
    "RTP_VERSION",
    "FIXED_HEADER",
    "RtpError",
    "RtpHeader",
    "parse_rtp",
    "build_rtp",
    "is_rtcp",
    "is_rtp",
    "rtp_payload",
    "rewrite_header",
    "rewrite_header_into",
    "signed16",
    "signed32",
]

RTP_VERSION = 2

#: The 12-byte fixed header: (V/P/X/CC byte, M/PT byte, sequence, timestamp, SSRC).
FIXED_HEADER = struct.Struct("!BBHII")
_REWRITE = struct.Struct("!BHII")  # the fixed header from byte 1 on: M/PT, seq, ts, SSRC
_EXT_HEADER = struct.Struct("!HH")  # profile-defined 16 bits, length in 32-bit words


class RtpError(ValueError):
    """The bytes are not a well-formed RTP packet (the reason says why)."""


@attrs.frozen(slots=True)
class RtpHeader:
    """Everything in an RTP header, decoded.

    ``header_length`` counts the fixed header, CSRCs and the extension, so the payload is
    ``packet[header_length:len(packet) - padding_length]``.
    """

    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    marker: bool = False
    padding: bool = False
    extension: bool = False
    csrcs: tuple[int, ...] = ()
    extension_profile: int | None = None
    extension_data: bytes = b""
    header_length: int = 12
    padding_length: int = 0
    version: int = RTP_VERSION

    @property
    def csrc_count(self) -> int:
        return len(self.csrcs)

    @classmethod
    def parse(cls, packet: bytes | bytearray | memoryview) -> "RtpHeader":
        return parse_rtp(packet)

    def payload(self, packet: bytes | bytearray | memoryview) -> bytes:
        """The payload of ``packet`` (whose header this is), padding removed."""
        return bytes(packet[self.header_length : len(packet) - self.padding_length])


def parse_rtp(packet: bytes | bytearray | memoryview) -> RtpHeader:
    """Decode a full RTP header; raise :class:`RtpError` for anything malformed."""
    size = len(packet)
    if size < 12:
        raise RtpError(f"RTP packet too short ({size} bytes)")
    b0, b1, seq, ts, ssrc = FIXED_HEADER.unpack_from(packet)
    version = b0 >> 6
    if version != RTP_VERSION:
        raise RtpError(f"RTP version {version}, expected 2")
    cc = b0 & 0x0F
    offset = 12 + 4 * cc
    if size < offset:
        raise RtpError("RTP packet shorter than its CSRC list")
    csrcs = struct.unpack_from(f"!{cc}I", packet, 12) if cc else ()
    extension = bool(b0 & 0x10)
    profile: int | None = None
    ext_data = b""
    if extension:
        if size < offset + 4:
            raise RtpError("RTP packet shorter than its extension header")
        profile, words = _EXT_HEADER.unpack_from(packet, offset)
        offset += 4
        if size < offset + 4 * words:
            raise RtpError("RTP packet shorter than its header extension")
        ext_data = bytes(packet[offset : offset + 4 * words])
        offset += 4 * words
    padding = bool(b0 & 0x20)
    pad_len = 0
    if padding:
        pad_len = packet[size - 1]
        if pad_len == 0 or offset + pad_len > size:
            raise RtpError(f"bad RTP padding length {pad_len}")
    return RtpHeader(
        payload_type=b1 & 0x7F,
        sequence=seq,
        timestamp=ts,
        ssrc=ssrc,
        marker=bool(b1 & 0x80),
        padding=padding,
        extension=extension,
        csrcs=tuple(csrcs),
        extension_profile=profile,
        extension_data=ext_data,
        header_length=offset,
        padding_length=pad_len,
        version=version,
    )


def build_rtp(
    *,
    payload_type: int,
    sequence: int,
    timestamp: int,
    ssrc: int,
    payload: bytes = b"",
    marker: bool = False,
    csrcs: tuple[int, ...] | list[int] = (),
    extension: tuple[int, bytes] | None = None,
    padding: int = 0,
) -> bytes:
    """Serialize an RTP packet.

    ``extension`` is ``(profile, data)`` with ``len(data)`` a multiple of 4 (RFC 3550 §5.3.1);
    ``padding`` is the total number of padding bytes to append (1..255, the last one holds the
    count), as SRTP or a fixed-block cipher would want.
    """
    if not 0 <= payload_type <= 127:
        raise ValueError(f"payload type {payload_type} out of range")
    if len(csrcs) > 15:
        raise ValueError("at most 15 CSRCs")
    if not 0 <= padding <= 255:
        raise ValueError("padding must be 0..255 bytes")
    b0 = 0x80 | len(csrcs)
    if extension is not None:
        b0 |= 0x10
    if padding:
        b0 |= 0x20
    parts = [
        FIXED_HEADER.pack(
            b0,
            (0x80 if marker else 0) | payload_type,
            sequence & 0xFFFF,
            timestamp & 0xFFFFFFFF,
            ssrc & 0xFFFFFFFF,
        )
    ]
    if csrcs:
        parts.append(struct.pack(f"!{len(csrcs)}I", *csrcs))
    if extension is not None:
        profile, data = extension
        if len(data) % 4:
            raise ValueError("header extension data must be a multiple of 4 bytes")
        parts.append(_EXT_HEADER.pack(profile, len(data) // 4))
        parts.append(bytes(data))
    parts.append(bytes(payload))
    if padding:
        parts.append(bytes(padding - 1) + bytes((padding,)))
    return b"".join(parts)


def is_rtcp(packet: bytes | bytearray | memoryview) -> bool:
    """RFC 5761 §4 demultiplexing: RTCP packet types 192..223 sit where RTP has M+PT.

    (RTP payload types 64..95 would collide and are therefore not used when muxing.)
    """
    return len(packet) >= 2 and 192 <= packet[1] <= 223


def is_rtp(packet: bytes | bytearray | memoryview) -> bool:
    """Version 2, at least a fixed header, and not RTCP by the RFC 5761 rule."""
    return len(packet) >= 12 and (packet[0] >> 6) == RTP_VERSION and not 192 <= packet[1] <= 223


def rtp_payload(packet: bytes | bytearray | memoryview) -> bytes:
    """The payload bytes, with a fast path for the plain 12-byte header without padding."""
    if packet[0] == 0x80:
        return bytes(packet[12:])
    return parse_rtp(packet).payload(packet)


def rewrite_header(
    packet: bytes | bytearray | memoryview,
    payload_type: int,
    sequence: int,
    timestamp: int,
    ssrc: int,
    marker: bool,
) -> bytes:
    """A copy of ``packet`` with a new M/PT, sequence, timestamp and SSRC.

    Everything after the fixed header (CSRCs, extension, payload, padding) is kept byte for byte.
    One ``pack`` and one slice: measured faster than copying into a bytearray and patching it,
    and it yields the ``bytes`` that SRTP and sockets want.
    """
    return (
        FIXED_HEADER.pack(
            packet[0],
            (0x80 if marker else 0) | payload_type,
            sequence & 0xFFFF,
            timestamp & 0xFFFFFFFF,
            ssrc,
        )
        + packet[12:]
    )


def rewrite_header_into(
    buf: bytearray | memoryview,
    payload_type: int,
    sequence: int,
    timestamp: int,
    ssrc: int,
    marker: bool,
) -> None:
    """Patch M/PT, sequence, timestamp and SSRC of a packet held in a writable buffer."""
    _REWRITE.pack_into(
        buf,
        1,
        (0x80 if marker else 0) | payload_type,
        sequence & 0xFFFF,
        timestamp & 0xFFFFFFFF,
        ssrc,
    )


def signed16(x: int) -> int:
    """A sequence-number difference as a signed step (RFC 3550 sequence numbers wrap at 2**16).

    ``signed16(b - a)`` is how far ``b`` is ahead of ``a`` (negative: behind), right across the
    wrap, as long as the two are less than half the space apart.
    """
    x &= 0xFFFF
    return x - 0x10000 if x >= 0x8000 else x


def signed32(x: int) -> int:
    """A timestamp difference as a signed step (RTP timestamps wrap at 2**32); see :func:`signed16`."""
    x &= 0xFFFFFFFF
    return x - 0x100000000 if x >= 0x80000000 else x
