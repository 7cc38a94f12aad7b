"""RTCP (RFC 3550 §6, RFC 4585 feedback): build and parse packets, and one leg's reporter.

Video feedback lives here too (relayed by :mod:`wcsgw.media.video`): PLI (RFC 4585 §6.3.1),
FIR (RFC 5104 §4.3.1), TMMBR/TMMBN (RFC 5104 §4.2.1/§4.2.2) and Chrome's REMB
(draft-alvestrand-rmcat-remb: PSFB FMT 15, FCI "REMB").  Bit rates in TMMBR and REMB are
``mantissa * 2**exp``; :func:`encode_bitrate` picks the smallest exponent that fits.

The gateway *terminates* RTCP per leg: each side gets reports about the stream we send it (SR)
and the stream it sends us (report blocks), computed from our own
:class:`~wcsgw.media.stream.OutboundStream` / :class:`~wcsgw.media.stream.InboundStream`. Reports
from a peer are consumed here (round-trip time, their view of our loss and jitter) and never
forwarded to the other leg, whose numbers would be about a different stream.

Times: ``now`` is the owner's monotonic clock (``reactor.seconds()``, which on the asyncio
reactor counts from boot): it times the reports, the RTP timestamps of the SR and the delay
since the peer's last SR (DLSR). An SR also carries an NTP timestamp (RFC 3550 §4: wall-clock
seconds since 1900, 32.32 fixed point), which the peer uses for lip sync and echoes back for
round-trip times (LSR/DLSR, §6.4.1): the reporter reads it as ``now + wall_offset``, the
offset taken once per call from a :class:`~wcsgw.media.clock.MediaClock`. One offset per call,
not a wall-clock read per report, so a step of the system clock mid-call (NTP slewing, a
manual set) neither jumps the SR timestamps nor corrupts the round-trip times computed from
them.
"""

from __future__ import annotations

import random
import struct
from typing import Union

import attrs

from wcsgw.media.stream import InboundStream, OutboundStream

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
    "build_pli",
    "build_fir",
    "build_remb",
    "build_tmmbr",
    "build_tmmbn",
    "encode_bitrate",
    "parse_rtcp",
    "parse_remb",
    "parse_tmmb",
    "fir_entries",
    "wants_keyframe",
    "RtcpReporter",
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


def build_pli(sender_ssrc: int, media_ssrc: int) -> bytes:
    """RFC 4585 §6.3.1 Picture Loss Indication: "send me a key frame" to ``media_ssrc``."""
    return _header(PSFB, 1, 8) + _FB.pack(sender_ssrc, media_ssrc)


def build_fir(sender_ssrc: int, media_ssrc: int, sequence: int) -> bytes:
    """RFC 5104 §4.3.1 Full Intra Request.  The media SSRC of the common header is 0; the
    FCI names the target and carries our command sequence number, which must go up by one
    per *new* request (a repetition of the same request keeps it, §4.3.1.2)."""
    fci = struct.pack("!IB3x", media_ssrc, sequence & 0xFF)
    return _header(PSFB, 4, 8 + len(fci)) + _FB.pack(sender_ssrc, 0) + fci


def fir_entries(feedback: Feedback) -> list[tuple[int, int]]:
    """The ``(ssrc, sequence)`` entries of a FIR (one per target), empty when malformed."""
    fci = feedback.fci
    return [struct.unpack_from("!IB", fci, i) for i in range(0, len(fci) - len(fci) % 8, 8)]


def encode_bitrate(bitrate: int, mantissa_bits: int) -> tuple[int, int]:
    """``(exp, mantissa)`` with ``mantissa * 2**exp <= bitrate`` as close as the field allows
    (rounding down: a limit must never be read as more than was meant)."""
    bitrate = max(0, int(bitrate))
    exp = 0
    while bitrate >> exp >= 1 << mantissa_bits:
        exp += 1
    return exp, bitrate >> exp


def build_remb(sender_ssrc: int, bitrate: int, ssrcs: list[int] | tuple[int, ...]) -> bytes:
    """REMB (draft-alvestrand-rmcat-remb §2.2): the receiver's estimate of the total bit rate
    (bit/s) it can take for the media ``ssrcs``.  Chrome lowers its send rate to it when the
    answer has ``a=rtcp-fb:<pt> goog-remb``."""
    exp, mantissa = encode_bitrate(bitrate, 18)
    fci = b"REMB" + struct.pack("!BBH", len(ssrcs) & 0xFF, exp << 2 | mantissa >> 16,
                                mantissa & 0xFFFF)
    fci += b"".join(struct.pack("!I", s & 0xFFFFFFFF) for s in ssrcs)
    return _header(PSFB, 15, 8 + len(fci)) + _FB.pack(sender_ssrc, 0) + fci


def parse_remb(feedback: Feedback) -> tuple[int, tuple[int, ...]] | None:
    """``(bitrate, ssrcs)`` of a REMB, None when it is not one or is malformed."""
    fci = feedback.fci
    if not feedback.is_remb or len(fci) < 8:
        return None
    count, b1, low = struct.unpack_from("!BBH", fci, 4)
    bitrate = ((b1 & 0x03) << 16 | low) << (b1 >> 2)
    if len(fci) < 8 + 4 * count:
        return None
    return bitrate, struct.unpack_from(f"!{count}I", fci, 8)


def _tmmb(fmt: int, sender_ssrc: int, entries: list[tuple[int, int, int]]) -> bytes:
    fci = b""
    for ssrc, bitrate, overhead in entries:
        exp, mantissa = encode_bitrate(bitrate, 17)
        fci += struct.pack("!II", ssrc & 0xFFFFFFFF,
                           exp << 26 | mantissa << 9 | (overhead & 0x1FF))
    return _header(RTPFB, fmt, 8 + len(fci)) + _FB.pack(sender_ssrc, 0) + fci


def build_tmmbr(sender_ssrc: int, media_ssrc: int, bitrate: int, overhead: int = 40) -> bytes:
    """RFC 5104 §4.2.1 TMMBR: ask the sender of ``media_ssrc`` to stay below ``bitrate``
    bit/s (``overhead``: the per-packet bytes below RTP that the limit includes)."""
    return _tmmb(3, sender_ssrc, [(media_ssrc, bitrate, overhead)])


def build_tmmbn(sender_ssrc: int, entries: list[tuple[int, int, int]]) -> bytes:
    """RFC 5104 §4.2.2 TMMBN: the bounding set a media sender applies, ``(ssrc, bitrate,
    overhead)`` each — what a TMMBR must be answered with."""
    return _tmmb(4, sender_ssrc, entries)


def parse_tmmb(feedback: Feedback) -> list[tuple[int, int, int]]:
    """The ``(ssrc, bitrate, overhead)`` entries of a TMMBR or TMMBN."""
    if not (feedback.is_tmmbr or feedback.is_tmmbn):
        return []
    fci, out = feedback.fci, []
    for i in range(0, len(fci) - len(fci) % 8, 8):
        ssrc, word = struct.unpack_from("!II", fci, i)
        out.append((ssrc, ((word >> 9) & 0x1FFFF) << (word >> 26), word & 0x1FF))
    return out


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


def wants_keyframe(packets: list[RtcpPacket]) -> bool:
    """True if any part asks for a key frame (PLI or FIR): to be passed on for video."""
    return any(isinstance(p, Feedback) and (p.is_pli or p.is_fir) for p in packets)


class RtcpReporter:
    """RTCP for one leg: when to report, what to report, and what the peer reported.

    Interval: RFC 3550 §6.2 allows a fixed 5 s minimum for small sessions; the actual
    interval is randomised over [0.5, 1.5] x (§6.3.1) so that the two ends do not
    synchronise, and the first report goes out after half an interval (§6.2, "initial").
    """

    def __init__(
        self,
        outbound: OutboundStream,
        inbound: InboundStream,
        cname: str,
        *,
        now: float,
        interval: float = 5.0,
        rng: random.Random | None = None,
        wall_offset: float = 0.0,
    ) -> None:
        self.outbound = outbound
        #: wall-clock time minus ``now`` (see the module docstring): NTP = ``now + wall_offset``
        self.wall_offset = wall_offset
        self.inbound = inbound
        self.cname = cname
        self.interval = interval
        self._rng = rng or random.Random()
        self.next_due = now + self._jitter(interval / 2)
        self._packets_at_last_report = 0
        self._packets_at_report_before_last = 0
        self._last_sr_ntp_middle = 0  # LSR: middle 32 bits of the peer's last SR
        self._last_sr_at: float | None = None
        #: Round-trip time (seconds) from the peer's last report block about our stream.
        self.rtt: float | None = None
        #: The peer's last report block about our stream (its view of loss and jitter).
        self.remote_report: ReportBlock | None = None
        self.remote_ssrc: int | None = None
        self.remote_cname: str | None = None
        self.remote_bye = False
        self.reports_sent = 0
        self.reports_received = 0
        self.keyframe_requests = 0

    def _jitter(self, base: float) -> float:
        return base * self._rng.uniform(0.5, 1.5)

    def due(self, now: float) -> bool:
        return now >= self.next_due

    def _report_block(self, now: float) -> ReportBlock | None:
        inbound = self.inbound
        if inbound.ssrc is None or not inbound.received_since_report:
            return None
        fraction, lost, ext_max, jitter = inbound.interval_report()
        dlsr = 0
        if self._last_sr_at is not None:
            dlsr = int(max(0.0, now - self._last_sr_at) * 65536) & 0xFFFFFFFF
        return ReportBlock(inbound.ssrc, fraction, lost, ext_max, jitter, self._last_sr_ntp_middle, dlsr)

    def make(self, now: float) -> bytes:
        """The compound report for ``now`` (SR if we sent media since the last report, else RR,
        then SDES CNAME), and schedule the next one."""
        block = self._report_block(now)
        blocks = (block,) if block is not None else ()
        out = self.outbound
        # RFC 3550 §6.4: SR if we sent data since the report before last, else RR.
        if out.packets_sent > self._packets_at_report_before_last:
            first = build_sr(
                out.ssrc,
                ntp_timestamp(now + self.wall_offset),
                out.rtp_timestamp_at(now),
                out.packets_sent,
                out.octets_sent,
                blocks,
            )
        else:
            first = build_rr(out.ssrc, blocks)
        self._packets_at_report_before_last = self._packets_at_last_report
        self._packets_at_last_report = out.packets_sent
        self.next_due = now + self._jitter(self.interval)
        self.reports_sent += 1
        return first + build_sdes(out.ssrc, self.cname)

    def make_bye(self, reason: str | None = None) -> bytes:
        """A final RR + SDES + BYE compound, for when the leg ends."""
        return build_rr(self.outbound.ssrc) + build_sdes(self.outbound.ssrc, self.cname) + build_bye(
            self.outbound.ssrc, reason
        )

    def receive(self, data: bytes, now: float) -> list[RtcpPacket]:
        """Consume the peer's RTCP; returns its parts (empty if it was malformed)."""
        try:
            packets = parse_rtcp(data)
        except RtcpError:
            return []
        self.reports_received += 1
        for p in packets:
            if isinstance(p, (SenderReport, ReceiverReport)):
                self.remote_ssrc = p.ssrc
                if isinstance(p, SenderReport):
                    self._last_sr_ntp_middle = p.lsr
                    self._last_sr_at = now
                for block in p.reports:
                    if block.ssrc == self.outbound.ssrc:
                        self.remote_report = block
                        if block.lsr:
                            # RFC 3550 §6.4.1: A - LSR - DLSR, in 1/65536 s, modulo 2^32
                            arrival = (ntp_timestamp(now + self.wall_offset) >> 16) & 0xFFFFFFFF
                            rtt = (arrival - block.lsr - block.dlsr) & 0xFFFFFFFF
                            if rtt < 0x80000000:
                                self.rtt = rtt / 65536.0
            elif isinstance(p, SourceDescription):
                for ssrc, _ in p.chunks:
                    name = p.cname(ssrc)
                    if name is not None and (self.remote_ssrc is None or ssrc == self.remote_ssrc):
                        self.remote_cname = name
            elif isinstance(p, Bye):
                self.remote_bye = True
            elif isinstance(p, Feedback) and (p.is_pli or p.is_fir):
                self.keyframe_requests += 1
        return packets
