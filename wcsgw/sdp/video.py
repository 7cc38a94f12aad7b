"""Video formats over SIP (relayed only, never transcoded): which the gateway relays, whether
two can be relayed into each other, the format an answer gives back, and what a video m-line
asks for (RTCP feedback, bandwidth).

Why apart from :mod:`wcsgw.sdp.negotiate`: audio is chosen by RFC 3264's generic rules (same
name, clock and channels), while video needs codec-specific knowledge — H.264's
profile-level-id and packetization-mode (RFC 6184 §8.1, §8.2.2) decide whether relaying is
possible at all, and the level may be lowered in the answer.  The builders that put these
decisions into SDP (:func:`~wcsgw.sdp.negotiate.video_media`, ``VideoAnswer``) stay beside the
audio builders they share their pieces with.
"""

from __future__ import annotations

from collections.abc import Iterable

import attr

from wcsgw.sdp.codecs import Codec
from wcsgw.sdp.model import MediaDescription

#: Video codecs the gateway relays (config ``[codecs] video`` picks and orders them).
VIDEO_CODECS = ("vp8", "h264")

#: The RTCP feedback we ask for on video m-lines and understand when we get it: key-frame
#: requests (RFC 4585 PLI, RFC 5104 FIR) and the receiver's bit rate estimate (REMB).  No
#: generic NACK (we keep no packet history to answer it: sequence numbers are rewritten) and no
#: transport-cc (it needs a header extension we do not negotiate).
VIDEO_RTCP_FB = ("nack pli", "ccm fir", "goog-remb")

#: b=AS for our video m-lines when nothing else is configured, and the most we accept.
VIDEO_KBPS = 1000
VIDEO_MAX_KBPS = 2000

# RFC 6184 profile_idc / profile-iop patterns, as libwebrtc reads them (h264_profile_level_id):
# (profile_idc, mask over profile-iop, value) -> profile.  "x" bits of the RFC tables are masked.
_H264_PROFILES = (
    (0x42, 0x4F, 0x40, "constrained-baseline"),
    (0x4D, 0x8F, 0x80, "constrained-baseline"),
    (0x58, 0xCF, 0xC0, "constrained-baseline"),
    (0x42, 0x4F, 0x00, "baseline"),
    (0x58, 0xCF, 0x80, "baseline"),
    (0x4D, 0xAF, 0x00, "main"),
    (0x64, 0xFF, 0x00, "high"),
    (0x64, 0xFF, 0x0C, "constrained-high"),
)


def h264_profile_level(codec: Codec) -> tuple[str | None, int]:
    """``(profile, level_idc)`` of an H.264 format's profile-level-id (RFC 6184 §8.1; absent:
    420010, Baseline level 1.0).  The profile is None when the value is malformed or names a
    profile nobody in a browser call uses (they are then never matched)."""
    value = codec.fmtp_params.get("profile-level-id") or "420010"
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        return None, 0
    if len(raw) != 3:
        return None, 0
    idc, iop, level = raw
    for profile_idc, mask, bits, name in _H264_PROFILES:
        if idc == profile_idc and iop & mask == bits:
            return name, level
    return None, level


def _packetization_mode(codec: Codec) -> str:
    return (codec.fmtp_params.get("packetization-mode") or "0").strip()


def same_video_codec(a: Codec, b: Codec) -> bool:
    """Whether packets of format ``a`` can be relayed as format ``b`` (and back).

    VP8 is VP8.  H.264 must agree on packetization-mode (0 single NAL unit, 1 non-interleaved:
    a mode-0 receiver cannot take FU-A fragments) and on the profile (RFC 6184 §8.2.2); the
    level is negotiated (:func:`video_answer_codec`).  Other formats never match.
    """
    if a.key != b.key or a.clock_rate != b.clock_rate or a.key not in VIDEO_CODECS:
        return False
    if a.key == "h264":
        pa, pb = h264_profile_level(a)[0], h264_profile_level(b)[0]
        return pa is not None and pa == pb and _packetization_mode(a) == _packetization_mode(b)
    return True


def video_answer_codec(offered: Codec, ours: Codec) -> Codec:
    """The format an answer gives for ``offered`` (its payload type) when ``ours`` is what
    we can take: for H.264 the offered fmtp with the level lowered to ours when ours is lower
    (RFC 6184 §8.2.2: the answer's level may not exceed the offer's) and
    ``level-asymmetry-allowed`` kept when both sides say it."""
    if offered.key != "h264":
        return offered
    params = offered.fmtp_params
    profile_hex = (params.get("profile-level-id") or "420010")[:4]
    level = min(h264_profile_level(offered)[1], h264_profile_level(ours)[1])
    parts = []
    if params.get("level-asymmetry-allowed") == "1" and \
            ours.fmtp_params.get("level-asymmetry-allowed") == "1":
        parts.append("level-asymmetry-allowed=1")
    parts.append(f"packetization-mode={_packetization_mode(offered)}")
    parts.append(f"profile-level-id={profile_hex}{level:02x}")
    return attr.evolve(offered, fmtp=";".join(parts))


def select_video_codecs(offered: list[Codec], names: Iterable[str] = VIDEO_CODECS) -> list[Codec]:
    """The offered video formats the gateway relays, ordered by ``names`` (config order,
    lower-case VP8/H264), offer order within one name; rtx/red/ulpfec and unknown formats
    are left out (we neither repair nor protect: packets are relayed as they come)."""
    out: list[Codec] = []
    for name in names:
        for codec in offered:
            if codec.key == name.lower() and codec.key in VIDEO_CODECS and codec not in out:
                if codec.key != "h264" or h264_profile_level(codec)[0] is not None:
                    out.append(codec)
    return out


def rtcp_feedback(media: MediaDescription, payload_type: int | None) -> set[str]:
    """The ``a=rtcp-fb`` values given for ``payload_type`` (and for ``*``), lower-case:
    {"nack pli", "ccm fir", "goog-remb", ...}."""
    found = set()
    for value in media.get_all("rtcp-fb"):
        pt, _, rest = value.strip().partition(" ")
        if pt == "*" or (payload_type is not None and pt == str(payload_type)):
            found.add(" ".join(rest.lower().split()))
    return found


def bandwidth_kbps(media: MediaDescription) -> int | None:
    """The m-line's bandwidth in kbit/s: b=TIAS (bit/s, RFC 3890) if given, else b=AS."""
    for bw in media.bandwidths:
        if bw.bwtype.upper() == "TIAS" and bw.value > 0:
            return max(1, bw.value // 1000)
    for bw in media.bandwidths:
        if bw.bwtype.upper() == "AS" and bw.value > 0:
            return bw.value
    return None
