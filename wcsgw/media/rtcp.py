"""RTCP (RFC 3550 §6, RFC 4585 feedback): the packets, built and parsed.

The packets' meaning lives beside: one leg's reports (when, what, and what the peer reported)
in :mod:`wcsgw.media.reporter`, the video feedback (PLI, FIR, TMMBR/TMMBN, REMB) in
:mod:`wcsgw.media.rtcpfb`.  NTP timestamps are wall-clock seconds since 1900 (32.32 fixed
point, RFC 3550 §4): :func:`ntp_timestamp` takes Unix time.
"""
from __future__ import annotations

import struct
from typing import Union

import attrs

__all__ = [
    "RtcpError",
    "ReportBlock",
    "SenderReport",
    "ReceiverReport",
    "SourceDescription",
    "Bye",
    "Feedback",
    "UnknownRtcp",
    "RtcpPacket",
    "ntp_timestamp",
    "ntp_to_unix",
    "build_sr",
    "build_rr",
    "build_sdes",
    "build_bye",
    "parse_rtcp",
    "SR",
    "RR",
    "SDES",
    "BYE",
    "RTPFB",
    "PSFB",
]

SR, RR, SDES, BYE, APP, RTPFB, PSFB = 200, 201, 202, 203, 204, 205, 206
_NTP_EPOCH_OFFSET = 2208988800  # 1900-01-01 -> 1970-01-01 in seconds
_HEADER = struct.Struct("!BBH")
_SR_INFO = struct.Struct("!IIIIII")  # ssrc, ntp sec, ntp frac, rtp ts, packets, octets
_BLOCK = struct.Struct("!IIIIII")  # ssrc, fraction/lost, ext max seq, jitter, lsr, dlsr
_FB = struct.Struct("!II")
_SDES_CNAME = 1


class RtcpError(ValueError):
    """Malformed RTCP (the reason says what)."""


@attrs.frozen(slots=True)
class ReportBlock:
    """RFC 3550 §6.4.1 reception report block."""

    ssrc: int
    fraction_lost: int  # 1/256 units
    cumulative_lost: int  # signed 24 bit
    highest_sequence: int  # extended
    jitter: int  # RTP timestamp units
    lsr: int = 0  # middle 32 bits of the NTP time of the last SR received from ssrc
    dlsr: int = 0  # delay since that SR, 1/65536 s

    def pack(self) -> bytes:
        lost = self.cumulative_lost & 0xFFFFFF
        return _BLOCK.pack(
            self.ssrc,
            (self.fraction_lost & 0xFF) << 24 | lost,
            self.highest_sequence & 0xFFFFFFFF,
            self.jitter & 0xFFFFFFFF,
            self.lsr & 0xFFFFFFFF,
            self.dlsr & 0xFFFFFFFF,
        )

    @classmethod
    def unpack(cls, data: bytes | memoryview, offset: int) -> "ReportBlock":
        ssrc, word, ext, jitter, lsr, dlsr = _BLOCK.unpack_from(data, offset)
        lost = word & 0xFFFFFF
        if lost & 0x800000:
            lost -= 0x1000000
        return cls(ssrc, word >> 24, lost, ext, jitter, lsr, dlsr)


@attrs.frozen(slots=True)
class SenderReport:
    ssrc: int
    ntp_timestamp: int  # 64-bit NTP
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: tuple[ReportBlock, ...] = ()

    @property
    def lsr(self) -> int:
        """The middle 32 bits of the NTP timestamp, as echoed in LSR."""
        return (self.ntp_timestamp >> 16) & 0xFFFFFFFF


@attrs.frozen(slots=True)
class ReceiverReport:
    ssrc: int
    reports: tuple[ReportBlock, ...] = ()


@attrs.frozen(slots=True)
class SourceDescription:
    chunks: tuple[tuple[int, tuple[tuple[int, bytes], ...]], ...]  # (ssrc, ((type, value), ...))

    def cname(self, ssrc: int) -> str | None:
        for chunk_ssrc, items in self.chunks:
            if chunk_ssrc == ssrc:
                for kind, value in items:
                    if kind == _SDES_CNAME:
                        return value.decode("utf-8", "replace")
        return None


@attrs.frozen(slots=True)
class Bye:
    ssrcs: tuple[int, ...]
    reason: str | None = None


@attrs.frozen(slots=True)
class Feedback:
    """RTPFB (205) or PSFB (206), RFC 4585 §6.1: ``fmt`` is in the header's count field."""

    packet_type: int
    fmt: int
    sender_ssrc: int
    media_ssrc: int
    fci: bytes = b""

    @property
    def is_pli(self) -> bool:
        return self.packet_type == PSFB and self.fmt == 1

    @property
    def is_fir(self) -> bool:  # RFC 5104 §4.3.1
        return self.packet_type == PSFB and self.fmt == 4

    @property
    def is_nack(self) -> bool:
        return self.packet_type == RTPFB and self.fmt == 1

    @property
    def is_tmmbr(self) -> bool:  # RFC 5104 §4.2.1
        return self.packet_type == RTPFB and self.fmt == 3

    @property
    def is_tmmbn(self) -> bool:  # RFC 5104 §4.2.2
        return self.packet_type == RTPFB and self.fmt == 4

    @property
    def is_remb(self) -> bool:
        """Application layer feedback (PSFB FMT 15) whose FCI starts with "REMB"."""
        return self.packet_type == PSFB and self.fmt == 15 and self.fci[:4] == b"REMB"


@attrs.frozen(slots=True)
class UnknownRtcp:
    packet_type: int
    count: int
    body: bytes


RtcpPacket = Union[SenderReport, ReceiverReport, SourceDescription, Bye, Feedback, UnknownRtcp]


def ntp_timestamp(unix_time: float) -> int:
    """Unix seconds -> 64-bit NTP timestamp (32.32 fixed point since 1900)."""
    seconds = int(unix_time)
    fraction = int((unix_time - seconds) * 4294967296.0) & 0xFFFFFFFF
    return ((seconds + _NTP_EPOCH_OFFSET) & 0xFFFFFFFF) << 32 | fraction


def ntp_to_unix(ntp: int) -> float:
    return (ntp >> 32) - _NTP_EPOCH_OFFSET + (ntp & 0xFFFFFFFF) / 4294967296.0


def _header(packet_type: int, count: int, body_length: int) -> bytes:
    if body_length % 4:
        raise ValueError("RTCP body must be a multiple of 4 bytes")
    return _HEADER.pack(0x80 | count, packet_type, (4 + body_length) // 4 - 1)


def build_sr(
    ssrc: int,
    ntp: int,
    rtp_timestamp: int,
    packet_count: int,
    octet_count: int,
    reports: tuple[ReportBlock, ...] | list[ReportBlock] = (),
) -> bytes:
    """RFC 3550 §6.4.1 SR; ``ntp`` is the 64-bit NTP timestamp (see :func:`ntp_timestamp`)."""
    if len(reports) > 31:
        raise ValueError("at most 31 report blocks")
    body = _SR_INFO.pack(
        ssrc,
        (ntp >> 32) & 0xFFFFFFFF,
        ntp & 0xFFFFFFFF,
        rtp_timestamp & 0xFFFFFFFF,
        packet_count & 0xFFFFFFFF,
        octet_count & 0xFFFFFFFF,
    ) + b"".join(r.pack() for r in reports)
    return _header(SR, len(reports), len(body)) + body


def build_rr(ssrc: int, reports: tuple[ReportBlock, ...] | list[ReportBlock] = ()) -> bytes:
    """RFC 3550 §6.4.2 RR (an empty one is what a sender that heard nobody sends first)."""
    if len(reports) > 31:
        raise ValueError("at most 31 report blocks")
    body = struct.pack("!I", ssrc) + b"".join(r.pack() for r in reports)
    return _header(RR, len(reports), len(body)) + body


def build_sdes(ssrc: int, cname: str) -> bytes:
    """RFC 3550 §6.5 SDES with one chunk holding the CNAME item."""
    value = cname.encode("utf-8")[:255]
    chunk = struct.pack("!IBB", ssrc, _SDES_CNAME, len(value)) + value
    # the item list ends with a null octet, then pads to a 32-bit boundary (1..4 nulls)
    chunk += bytes(4 - len(chunk) % 4)
    return _header(SDES, 1, len(chunk)) + chunk


def build_bye(ssrc: int, reason: str | None = None) -> bytes:
    body = struct.pack("!I", ssrc)
    if reason:
        text = reason.encode("utf-8")[:255]
        body += bytes((len(text),)) + text
        body += bytes(-len(body) % 4)
    return _header(BYE, 1, len(body)) + body


def parse_rtcp(data: bytes | bytearray | memoryview) -> list[RtcpPacket]:
    """Split a (compound) RTCP packet into its parts; :class:`RtcpError` if malformed.

    Lenient where RFC 5506 (reduced-size RTCP) allows: a compound need not start with SR/RR.
    """
    data = bytes(data)
    packets: list[RtcpPacket] = []
    offset = 0
    size = len(data)
    if size < 4:
        raise RtcpError(f"RTCP packet too short ({size} bytes)")
    while offset < size:
        if size - offset < 4:
            raise RtcpError("trailing bytes after the last RTCP packet")
        b0, packet_type, words = _HEADER.unpack_from(data, offset)
        if b0 >> 6 != 2:
            raise RtcpError(f"RTCP version {b0 >> 6}, expected 2")
        length = 4 * (words + 1)
        if offset + length > size:
            raise RtcpError("RTCP length field runs past the datagram")
        count = b0 & 0x1F
        end = offset + length
        if b0 & 0x20:  # padding (only legal in the last packet)
            pad = data[end - 1]
            if pad == 0 or pad > length - 4:
                raise RtcpError("bad RTCP padding")
            end -= pad
        body = data[offset + 4 : end]
        packets.append(_parse_one(packet_type, count, body))
        offset += length
    return packets


def _blocks(body: bytes, start: int, count: int) -> tuple[ReportBlock, ...]:
    if len(body) < start + 24 * count:
        raise RtcpError("report blocks run past the packet")
    return tuple(ReportBlock.unpack(body, start + 24 * i) for i in range(count))


def _parse_one(packet_type: int, count: int, body: bytes) -> RtcpPacket:
    if packet_type == SR:
        if len(body) < 24:
            raise RtcpError("SR too short")
        ssrc, sec, frac, rtp_ts, packets, octets = _SR_INFO.unpack_from(body)
        return SenderReport(ssrc, sec << 32 | frac, rtp_ts, packets, octets, _blocks(body, 24, count))
    if packet_type == RR:
        if len(body) < 4:
            raise RtcpError("RR too short")
        return ReceiverReport(struct.unpack_from("!I", body)[0], _blocks(body, 4, count))
    if packet_type == SDES:
        return _parse_sdes(body, count)
    if packet_type == BYE:
        if len(body) < 4 * count:
            raise RtcpError("BYE too short")
        ssrcs = struct.unpack_from(f"!{count}I", body)
        reason = None
        rest = body[4 * count :]
        if rest:
            n = rest[0]
            reason = rest[1 : 1 + n].decode("utf-8", "replace")
        return Bye(tuple(ssrcs), reason)
    if packet_type in (RTPFB, PSFB):
        if len(body) < 8:
            raise RtcpError("feedback packet too short")
        sender, media = _FB.unpack_from(body)
        return Feedback(packet_type, count, sender, media, body[8:])
    return UnknownRtcp(packet_type, count, body)


def _parse_sdes(body: bytes, count: int) -> SourceDescription:
    chunks = []
    offset = 0
    for _ in range(count):
        if len(body) < offset + 4:
            raise RtcpError("SDES chunk too short")
        ssrc = struct.unpack_from("!I", body, offset)[0]
        offset += 4
        items = []
        while True:
            if offset >= len(body):
                raise RtcpError("SDES items not terminated")
            kind = body[offset]
            if kind == 0:
                offset += 1
                offset += -offset % 4  # skip to the next 32-bit boundary
                break
            if offset + 2 > len(body) or offset + 2 + body[offset + 1] > len(body):
                raise RtcpError("SDES item runs past the packet")
            n = body[offset + 1]
            items.append((kind, body[offset + 2 : offset + 2 + n]))
            offset += 2 + n
        chunks.append((ssrc, tuple(items)))
    return SourceDescription(tuple(chunks))
