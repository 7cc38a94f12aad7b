"""Offer/answer (RFC 3264): directions, codec selection, and short builders for SIP-side SDP.

:func:`select_codecs` and :func:`answer_direction` are the two decisions of RFC 3264 §6;
:func:`audio_offer` and :func:`audio_answer` put them together into the plain RTP/AVP audio
descriptions the gateway sends toward SIP (the browser side has its own builder in
``wcsgw.webrtc.sdp``, which uses the same pieces: :func:`select_codecs`,
:func:`codec_attributes`).

Video (relayed only, never transcoded) adds one optional ``m=video`` line to those
descriptions: :func:`video_media` builds it (``b=AS``/``b=TIAS``, ``a=rtcp-fb`` for PLI, FIR
and REMB, the codec's fmtp) with the same pieces as the audio line.  Which video formats can
be relayed into each other, and the format an answer gives back, are
:mod:`wcsgw.sdp.video`'s (H.264 profiles and levels need codec knowledge the audio rules do
not).
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Iterable

import attr

from wcsgw.sdp.codecs import Codec, assign_payload_types, is_auxiliary, same_codec
from wcsgw.sdp.errors import SdpNegotiationError
from wcsgw.sdp.model import (
    DIRECTIONS,
    Attribute,
    Bandwidth,
    Connection,
    MediaDescription,
    Origin,
    SessionDescription,
)
from wcsgw.sdp.video import VIDEO_KBPS, VIDEO_RTCP_FB, rtcp_feedback

#: m-line protocols :func:`audio_answer` accepts: plain RTP (AVPF feedback is harmless to
#: ignore); SAVP/SAVPF would need SDES or DTLS keys the SIP side does not do.
PLAIN_RTP_PROTOS = ("RTP/AVP", "RTP/AVPF")


def answer_direction(offered: str, wanted: str = "sendrecv") -> str:
    """The direction to answer an offered one with (RFC 3264 §6.1).

    ``wanted`` is what we would like (sendonly to put the call on hold); the answer sends
    only if we want to send and the offerer is willing to receive, and receives only if we
    want to receive and the offerer sends: sendrecv -> ``wanted``, sendonly -> recvonly,
    recvonly -> sendonly, inactive -> inactive.  ValueError for an unknown direction.
    """
    for value in (offered, wanted):
        if value not in DIRECTIONS:
            raise ValueError(f"unknown direction {value!r}")
    peer_sends = offered in ("sendrecv", "sendonly")
    peer_receives = offered in ("sendrecv", "recvonly")
    send = peer_receives and wanted in ("sendrecv", "sendonly")
    receive = peer_sends and wanted in ("sendrecv", "recvonly")
    return {
        (True, True): "sendrecv",
        (True, False): "sendonly",
        (False, True): "recvonly",
        (False, False): "inactive",
    }[(send, receive)]


def select_codecs(offered: list[Codec], supported: list[Codec]) -> list[Codec]:
    """The offered codecs we support, in the offerer's order and with its payload types.

    RFC 3264 §6.1: the answer lists formats from the offer, and the offerer's numbers are
    the ones both sides then use.  The offered :class:`Codec` objects are returned as they
    are (fmtp included: it says what the offerer can receive); an answer that wants its own
    fmtp replaces it with ``attr.evolve``.

    Auxiliary formats are kept only beside the primary codecs they serve:
    telephone-event and CN only at the clock rate of a selected primary codec
    (telephone-event/8000 with PCMU, /48000 with Opus), rtx only when its ``apt`` is
    selected, red only when every payload type it carries is selected, FEC only with some
    primary codec.  With no primary codec in common the result is empty.
    """
    chosen = [o for o in offered if any(same_codec(o, s) for s in supported)]
    primaries = [c for c in chosen if not is_auxiliary(c)]
    if not primaries:
        return []
    rates = {c.clock_rate for c in primaries}
    primary_pts = {str(c.payload_type) for c in primaries}
    result = []
    for codec in chosen:
        key = codec.key
        if key in ("telephone-event", "cn"):
            keep = codec.clock_rate in rates
        elif key == "rtx":
            keep = codec.fmtp_params.get("apt") in primary_pts
        elif key == "red":
            carried = [pt.strip() for pt in (codec.fmtp or "").split("/") if pt.strip()]
            keep = bool(carried) and all(pt in primary_pts for pt in carried)
        else:
            keep = True
        if keep:
            result.append(codec)
    return result


def codec_attributes(codecs: Iterable[Codec]) -> list[Attribute]:
    """``a=rtpmap`` (for static payload types too, as RFC 8866 §6.6 allows and most peers
    expect) and ``a=fmtp`` lines for codecs that carry payload types."""
    attributes = []
    for codec in codecs:
        if codec.payload_type is None:
            raise ValueError(f"codec {codec.rtpmap} has no payload type")
        attributes.append(Attribute("rtpmap", f"{codec.payload_type} {codec.rtpmap}"))
        if codec.fmtp:
            attributes.append(Attribute("fmtp", f"{codec.payload_type} {codec.fmtp}"))
    return attributes


def new_session_id() -> int:
    """A random o= session id (RFC 8866 §5.2 suggests an NTP-like unique number; 62 bits
    stay clear of peers that read it as a signed 64-bit integer)."""
    return secrets.randbits(62)


def _connection(address: str) -> Connection:
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:  # a host name: IP4 is what every peer expects
        return Connection(address=address, addrtype="IP4")
    return Connection(address=str(ip), addrtype=f"IP{ip.version}")


def _audio_media(
    port: int, codecs: list[Codec], ptime: int | None, direction: str, proto: str,
    rtcp_mux: bool,
) -> MediaDescription:
    attributes = codec_attributes(codecs)
    if ptime:
        attributes.append(Attribute("ptime", str(ptime)))
    if rtcp_mux:
        attributes.append(Attribute("rtcp-mux"))
    attributes.append(Attribute(direction))
    return MediaDescription(
        "audio", port, proto, [str(c.payload_type) for c in codecs], attributes=attributes
    )


def _session(
    address: str, session_id: int, version: int, media: list[MediaDescription]
) -> SessionDescription:
    connection = _connection(address)
    return SessionDescription(
        origin=Origin(
            session_id=session_id,
            session_version=version,
            address=connection.address,
            addrtype=connection.addrtype,
        ),
        connection=connection,
        media=media,
    )


def video_media(
    port: int,
    codecs: list[Codec],
    direction: str = "sendrecv",
    *,
    kbps: int = VIDEO_KBPS,
    proto: str = "RTP/AVP",
    feedback: Iterable[str] = VIDEO_RTCP_FB,
) -> MediaDescription:
    """Our ``m=video`` line toward SIP: the codecs (payload types assigned), ``b=AS`` and
    ``b=TIAS`` (RFC 3890; TIAS excludes IP/UDP/RTP overhead, so it is set a little lower),
    ``a=rtcp-fb`` per codec for ``feedback`` (written on RTP/AVP too: RFC 4585 peers use it,
    others ignore it), the direction.  RTCP on port + 1 (no rtcp-mux: SIP video phones
    rarely do it)."""
    codecs = assign_payload_types(codecs)
    attributes = codec_attributes(codecs)
    for codec in codecs:
        for fb in feedback:
            attributes.append(Attribute("rtcp-fb", f"{codec.payload_type} {fb}"))
    attributes.append(Attribute(direction))
    return MediaDescription(
        "video", port, proto, [str(c.payload_type) for c in codecs],
        bandwidths=[Bandwidth("AS", kbps), Bandwidth("TIAS", kbps * 950)],
        attributes=attributes,
    )


def audio_offer(
    address: str,
    port: int,
    codecs: list[Codec],
    ptime: int | None = 20,
    direction: str = "sendrecv",
    *,
    session_id: int,
    version: int = 0,
    proto: str = "RTP/AVP",
    rtcp_mux: bool = False,
    video: MediaDescription | None = None,
) -> SessionDescription:
    """A one-stream audio offer for the SIP side, in the shape every SIP peer reads
    (``video``: an ``m=video`` line from :func:`video_media` to add after the audio).

    c= at session level, ``a=rtpmap`` for every format, ``a=ptime``, the direction written
    out; codecs without a payload type get their static number or a dynamic one
    (:func:`assign_payload_types`).  No rtcp-mux by default: RTCP goes to port + 1.
    Bump ``version`` for every new offer of the session (a re-INVITE for hold).
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"unknown direction {direction!r}")
    media = _audio_media(port, assign_payload_types(codecs), ptime, direction, proto, rtcp_mux)
    return _session(address, session_id, version, [media] + ([video] if video is not None else []))


def audio_answer(
    offer: SessionDescription,
    address: str,
    port: int,
    supported: list[Codec],
    ptime: int | None = 20,
    direction: str = "sendrecv",
    *,
    session_id: int,
    version: int = 0,
    rtcp_mux: bool = True,
    fmtp: dict[str, str | None] | None = None,
    video: "VideoAnswer | None" = None,
) -> SessionDescription:
    """Answer a SIP peer's offer with one audio stream (RFC 3264 §6).

    The first audio m-line over plain RTP (``PLAIN_RTP_PROTOS``) with a codec in common is
    accepted; every other m-line is rejected with port 0 and its offered formats, so the
    answer has exactly as many m-lines as the offer, in order (§6).  The accepted stream
    lists :func:`select_codecs` (offerer's payload types) and answers the offered direction
    with :func:`answer_direction`.  ``rtcp_mux``: accept rtcp-mux when offered (RFC 5761).
    ``fmtp`` maps a lower-case codec name to the fmtp we want instead of the offered one
    (None to drop it).  ``video``: accept the first plain-RTP video m-line with the one format
    it names (the offer's payload type, see :class:`VideoAnswer`); without it video is
    rejected like any other stream.  Raises :class:`SdpNegotiationError` when no stream can
    be accepted (SIP: 488 Not Acceptable Here).
    """
    media: list[MediaDescription] = []
    accepted = False
    video_done = video is None
    for m in offer.media:
        if (not video_done and video is not None and m.kind == "video" and not m.rejected
                and m.proto.upper() in PLAIN_RTP_PROTOS
                and any(c.payload_type == video.codec.payload_type for c in m.codecs())):
            video_done = True
            offered_fb = rtcp_feedback(m, video.codec.payload_type)
            media.append(video_media(
                video.port, [video.codec], answer_direction(offer.direction_for(m), video.direction),
                kbps=video.kbps, proto=m.proto,
                feedback=[fb for fb in VIDEO_RTCP_FB if fb in offered_fb]))
            continue
        codecs = (
            select_codecs(m.codecs(), supported)
            if not accepted and m.kind == "audio" and not m.rejected
            and m.proto.upper() in PLAIN_RTP_PROTOS
            else []
        )
        if not codecs:
            media.append(MediaDescription(m.kind, 0, m.proto, list(m.formats) or ["0"]))
            continue
        accepted = True
        if fmtp:
            codecs = [
                attr.evolve(c, fmtp=fmtp[c.key]) if c.key in fmtp else c for c in codecs
            ]
        media.append(
            _audio_media(
                port, codecs, ptime, answer_direction(offer.direction_for(m), direction),
                m.proto, rtcp_mux and m.rtcp_mux,
            )
        )
    if not accepted:
        raise SdpNegotiationError("No common codecs")
    return _session(address, session_id, version, media)


@attr.s(frozen=True, slots=True, auto_attribs=True)
class VideoAnswer:
    """How :func:`audio_answer` accepts a video m-line: ``codec`` with the offer's payload
    type (from :func:`video_answer_codec`), our ``port``, ``kbps`` for b=AS, and the direction
    we want (sendrecv, or sendonly/recvonly/inactive)."""

    codec: Codec
    port: int
    kbps: int = VIDEO_KBPS
    direction: str = "sendrecv"
