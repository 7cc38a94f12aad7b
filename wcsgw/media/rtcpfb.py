"""RTCP feedback for video (relayed by :mod:`wcsgw.media.video`): PLI (RFC 4585 §6.3.1), FIR
(RFC 5104 §4.3.1), TMMBR/TMMBN (RFC 5104 §4.2.1/§4.2.2) and Chrome's REMB
(draft-alvestrand-rmcat-remb: PSFB FMT 15, FCI "REMB").  Bit rates in TMMBR and REMB are
``mantissa * 2**exp``; :func:`encode_bitrate` picks the smallest exponent that fits.  The
packets' common format is :mod:`wcsgw.media.rtcp`'s.
"""

from __future__ import annotations

import struct

from wcsgw.media.rtcp import _FB, PSFB, RTPFB, Feedback, RtcpPacket, _header

__all__ = [
    "build_pli",
    "build_fir",
    "build_remb",
    "build_tmmbr",
    "build_tmmbn",
    "encode_bitrate",
    "parse_remb",
    "parse_tmmb",
    "fir_entries",
    "wants_keyframe",
]


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


def wants_keyframe(packets: list[RtcpPacket]) -> bool:
    """True if any part asks for a key frame (PLI or FIR): to be passed on for video."""
    return any(isinstance(p, Feedback) and (p.is_pli or p.is_fir) for p in packets)
