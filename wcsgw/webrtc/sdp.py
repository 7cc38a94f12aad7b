"""SDP toward the browser: the answer a WebRtcLeg gives to a browser's offer.

What a browser needs from an ICE-lite, DTLS-passive, audio-only server (measured with
Chromium 156, see /work/shared/field-notes.md): ``a=ice-lite``, our ufrag/pwd and sha-256
fingerprint, ``a=setup:passive`` (the browser is the DTLS client), ``a=rtcp-mux`` (one socket:
the browser refuses to connect without it under ``rtcpMuxPolicy: require``), a BUNDLE group
and ``a=mid`` echoing the offer's mids, ``a=msid`` + ``a=ssrc ... cname`` so ``ontrack``
delivers a stream, ``a=ptime:20``, one UDP host candidate (on the shared browser port also an
ICE-TCP passive one) and ``a=end-of-candidates``.  No ``a=extmap`` and no ``a=rtcp-fb``: we
relay packets and do not implement header extensions or transport-cc feedback, and answering
them would make the browser expect both.

m-sections we do not take (data channels, a second audio or video, video when the call has
none) are answered with port 0 and left out of the BUNDLE group (RFC 8843 §7.3.3 / RFC 3264 §6).

Video (a :class:`VideoSpec` given to :func:`answer_for_browser` or to
:func:`~wcsgw.webrtc.offer.offer_for_browser`)
is one more m-section in the same BUNDLE group, on the same ICE/DTLS transport and port: the
call tells audio from video by payload type, so the two sections never share a number.  It
carries ``a=rtcp-fb`` ``nack pli``, ``ccm fir`` and ``goog-remb`` (key-frame requests and the
bit rate the gateway tells the browser to send at; no generic ``nack`` since we keep no packet
history, no ``transport-cc`` since it needs a header extension), ``b=AS``/``b=TIAS`` (what the
SIP side can take), and ``a=ssrc`` for our video stream so the browser's ``ontrack`` fires.
No rtx, red or ulpfec: packets are relayed as they come.

For calls toward the browser the gateway is the *offerer*: :mod:`wcsgw.webrtc.offer`, which
builds on the parts here (the video m-section, the session, the host candidate).
"""

from __future__ import annotations

import secrets
import uuid
from typing import Optional, Protocol, Sequence

import attr

from wcsgw.sdp.codecs import (
    Codec,
    primary_codec,
    same_codec,
)
from wcsgw.sdp.errors import SdpNegotiationError
from wcsgw.sdp.model import (
    Attribute,
    Bandwidth,
    Connection,
    MediaDescription,
    Origin,
    SessionDescription,
)
from wcsgw.sdp.negotiate import answer_direction as _negotiated_direction
from wcsgw.sdp.video import VIDEO_KBPS, VIDEO_RTCP_FB, rtcp_feedback

__all__ = [
    "BrowserTransport",
    "LegAddress",
    "VideoSpec",
    "answer_direction",
    "answer_for_browser",
    "bandwidths",
    "browser_session",
    "browser_transport",
    "host_candidate",
    "leg_candidates",
    "tcp_candidate",
    "video_attributes",
    "video_section",
]

#: RFC 8445 §5.1.2.1 type preference 126 for host, local preference 65535, component 1.
HOST_PRIORITY = (126 << 24) | (65535 << 8) | (256 - 1)

_ANSWER_DIRECTION = {
    "sendrecv": "sendrecv",
    "sendonly": "recvonly",
    "recvonly": "sendonly",
    "inactive": "inactive",
}


class LegAddress(Protocol):
    """What the answer needs of a :class:`wcsgw.webrtc.leg.WebRtcLeg`."""

    host: str
    port: int
    ice_ufrag: str
    ice_pwd: str
    fingerprint: tuple[str, str]


@attr.s(frozen=True, slots=True, auto_attribs=True)
class BrowserTransport:
    """The browser's ICE credentials and DTLS fingerprint: what ``leg.set_remote`` takes."""

    ice_ufrag: str
    ice_pwd: str
    fingerprint: tuple[str, str]
    mid: Optional[str]


@attr.s(frozen=True, slots=True, auto_attribs=True)
class VideoSpec:
    """The video m-section the gateway writes toward the browser.

    In an answer, ``codecs`` is the one format the call relays, with the browser's payload
    type (the browser sends what the answer lists first); in an offer, the formats to offer
    (payload types chosen here when None).  ``ssrc``: our video stream's SSRC; ``kbps``:
    b=AS (the SIP side's limit); ``direction``: what we want (sendrecv; sendonly/recvonly
    on hold), answered per RFC 3264 against the offer's.
    """

    codecs: Sequence[Codec]
    ssrc: int
    kbps: int = VIDEO_KBPS
    direction: str = "sendrecv"


def video_section(sd: SessionDescription) -> Optional[MediaDescription]:
    """The first usable video m-section of ``sd`` (RTP, not rejected), else None."""
    return next((m for m in sd.media if m.kind == "video" and not m.rejected and m.is_rtp), None)


def video_attributes(
    leg: LegAddress,
    mid: Optional[str],
    setup: str,
    direction: str,
    codecs: Sequence[Codec],
    feedback: dict[int, set[str]] | None,
    ssrc: int,
    cname: str,
    stream_id: str,
    rtcp_rsize: bool,
) -> list[Attribute]:
    """The attributes of our video m-section (``feedback``: per payload type, the rtcp-fb the
    offer had, for an answer; None in an offer: all of :data:`VIDEO_RTCP_FB`)."""
    attrs_: list[Attribute] = []
    def add(name: str, value: Optional[str] = None) -> None:
        attrs_.append(Attribute(name, value))

    we_send = direction in ("sendrecv", "sendonly")
    track_id = str(uuid.uuid4())
    if mid is not None:
        add("mid", mid)
    add("ice-ufrag", leg.ice_ufrag)
    add("ice-pwd", leg.ice_pwd)
    add("fingerprint", f"{leg.fingerprint[0]} {leg.fingerprint[1]}")
    add("setup", setup)
    add(direction)
    if we_send:
        add("msid", f"{stream_id} {track_id}")
    add("rtcp-mux")
    if rtcp_rsize:
        add("rtcp-rsize")
    for codec in codecs:
        add("rtpmap", f"{codec.payload_type} {codec.rtpmap}")
        wanted = VIDEO_RTCP_FB if feedback is None else [
            fb for fb in VIDEO_RTCP_FB if fb in feedback.get(codec.payload_type or -1, set())]
        for fb in wanted:
            add("rtcp-fb", f"{codec.payload_type} {fb}")
        if codec.fmtp:
            add("fmtp", f"{codec.payload_type} {codec.fmtp}")
    if we_send:
        add("ssrc", f"{ssrc} cname:{cname}")
        add("ssrc", f"{ssrc} msid:{stream_id} {track_id}")
    for candidate in leg_candidates(leg):
        add("candidate", candidate)
    add("end-of-candidates")
    return attrs_


def bandwidths(kbps: int) -> list[Bandwidth]:
    """b=AS (kbit/s) and b=TIAS (bit/s without IP/UDP/RTP overhead, RFC 3890): Chrome takes
    TIAS when both are given; AS is what older peers read."""
    return [Bandwidth("AS", kbps), Bandwidth("TIAS", kbps * 950)]


def answer_direction(offered: str) -> str:
    """RFC 3264 §6.1: sendonly is answered recvonly and vice versa."""
    return _ANSWER_DIRECTION.get(offered, "sendrecv")


def _audio_section(offer: SessionDescription) -> MediaDescription:
    for media in offer.media:
        if media.kind == "audio" and not media.rejected and media.is_rtp:
            return media
    raise SdpNegotiationError("the offer has no audio stream")


def browser_transport(offer: SessionDescription) -> BrowserTransport:
    """ICE/DTLS parameters of the offer's audio section (media level, else session level).

    Raises SdpNegotiationError when the offer is not a WebRTC offer we can answer: no ICE
    credentials, no fingerprint, no rtcp-mux, or a browser that wants to be the DTLS server.
    """
    audio = _audio_section(offer)
    ufrag, pwd = offer.ice_ufrag_for(audio), offer.ice_pwd_for(audio)
    fingerprint = offer.fingerprint_for(audio)
    if not ufrag or not pwd:
        raise SdpNegotiationError("the offer has no ICE credentials (a=ice-ufrag/a=ice-pwd)")
    if fingerprint is None:
        raise SdpNegotiationError("the offer has no DTLS fingerprint (a=fingerprint)")
    if not audio.rtcp_mux:
        raise SdpNegotiationError("the offer does not allow rtcp-mux; we use one port")
    setup = offer.setup_for(audio)
    if setup not in (None, "actpass", "active"):
        raise SdpNegotiationError(f"the offer has a=setup:{setup}; we can only be passive")
    return BrowserTransport(ufrag.strip(), pwd.strip(), fingerprint, audio.mid)


def host_candidate(host: str, port: int, foundation: str = "1") -> str:
    """``a=candidate`` value of our single UDP host candidate (component 1: rtcp-mux)."""
    return f"{foundation} 1 udp {HOST_PRIORITY} {host} {port} typ host"


def tcp_candidate(host: str, port: int, foundation: str = "2") -> str:
    """``a=candidate`` value of our ICE-TCP passive host candidate (RFC 6544 §4.5): below the
    UDP one in priority (local preference 2^13 x 4 for passive + 8191, §4.2), so a browser that
    can use UDP does."""
    priority = (126 << 24) | ((4 << 13 | 8191) << 8) | (256 - 1)
    return f"{foundation} 1 tcp {priority} {host} {port} typ host tcptype passive"


def leg_candidates(leg: LegAddress) -> list[str]:
    """Our candidates for ``leg``: the UDP host candidate, and the ICE-TCP passive one when
    the leg sits on the shared browser port (``tcp_port`` non-zero; legs without the
    attribute have none)."""
    candidates = [host_candidate(leg.host, leg.port)]
    tcp_port = getattr(leg, "tcp_port", 0)
    if tcp_port:
        candidates.append(tcp_candidate(leg.host, tcp_port))
    return candidates


def _match(offered: list[Codec], wanted: Sequence[Codec]) -> list[Codec]:
    """Codecs in ``wanted`` order that the offer has, with the offer's payload type.

    Our fmtp wins when we give one (it says what we want to receive), else the offer's.
    """
    chosen: list[Codec] = []
    for want in wanted:
        for have in offered:
            if same_codec(want, have) and have not in chosen:
                chosen.append(attr.evolve(have, fmtp=want.fmtp or have.fmtp))
                break
    return chosen


def answer_for_browser(
    offer: SessionDescription,
    leg: LegAddress,
    audio_codecs: Sequence[Codec],
    ssrc: int,
    cname: str,
    *,
    session_id: Optional[int] = None,
    stream_id: Optional[str] = None,
    track_id: Optional[str] = None,
    video: Optional[VideoSpec] = None,
    offered: Optional[list[Codec]] = None,
) -> SessionDescription:
    """Answer ``offer`` for ``leg``, accepting its first audio stream with ``audio_codecs``
    (and its first video stream with ``video``, when given; else video is rejected).
    ``offered``: that stream's codecs when the caller parsed them already (a browser's offer
    lists a dozen; parsing them again would delay the status that waits for this answer).

    ``audio_codecs`` is what we take, in our order of preference (the browser sends the first
    one it has); each is matched to the offer by name/rate/channels and keeps the *offer's*
    payload type (RFC 3264 §6.1).  Telephone-event and CN are matched like any codec, so list
    them to get them.  ``ssrc``/``cname`` describe what we will send (``a=ssrc``), which is
    what lets the browser's ``ontrack`` fire with a stream.

    Raises SdpNegotiationError (reason in the message) when no listed codec is offered or the
    offer is not one we can answer (see :func:`browser_transport`).
    """
    transport = browser_transport(offer)
    audio = _audio_section(offer)
    codecs = _match(audio.codecs() if offered is None else offered, audio_codecs)
    if primary_codec(codecs) is None:
        raise SdpNegotiationError("No common codecs")

    stream_id = stream_id or str(uuid.uuid4())
    track_id = track_id or str(uuid.uuid4())
    direction = answer_direction(offer.direction_for(audio))
    we_send = direction in ("sendrecv", "sendonly")

    attrs_: list[Attribute] = []
    def add(name: str, value: Optional[str] = None) -> None:
        attrs_.append(Attribute(name, value))

    if transport.mid is not None:
        add("mid", transport.mid)
    add("ice-ufrag", leg.ice_ufrag)
    add("ice-pwd", leg.ice_pwd)
    add("fingerprint", f"{leg.fingerprint[0]} {leg.fingerprint[1]}")
    add("setup", "passive")
    add(direction)
    if we_send:
        add("msid", f"{stream_id} {track_id}")
    add("rtcp-mux")
    for codec in codecs:
        add("rtpmap", f"{codec.payload_type} {codec.rtpmap}")
        if codec.fmtp:
            add("fmtp", f"{codec.payload_type} {codec.fmtp}")
    add("ptime", "20")
    if we_send:
        add("ssrc", f"{ssrc} cname:{cname}")
        add("ssrc", f"{ssrc} msid:{stream_id} {track_id}")
    for candidate in leg_candidates(leg):
        add("candidate", candidate)
    add("end-of-candidates")

    accepted = MediaDescription(
        kind="audio",
        port=leg.port,
        proto=audio.proto,
        formats=[str(c.payload_type) for c in codecs],
        connection=Connection(address=leg.host),
        attributes=attrs_,
    )

    offered_video = video_section(offer) if video is not None else None
    video_accepted: Optional[MediaDescription] = None
    if offered_video is not None and video is not None:
        video_dir = _negotiated_direction(offer.direction_for(offered_video), video.direction)
        feedback = {c.payload_type: rtcp_feedback(offered_video, c.payload_type)
                    for c in video.codecs if c.payload_type is not None}
        video_accepted = MediaDescription(
            kind="video",
            port=leg.port,
            proto=offered_video.proto,
            formats=[str(c.payload_type) for c in video.codecs],
            connection=Connection(address=leg.host),
            bandwidths=bandwidths(video.kbps),
            attributes=video_attributes(
                leg, offered_video.mid, "passive", video_dir, video.codecs, feedback,
                video.ssrc, cname, stream_id, offered_video.has("rtcp-rsize")),
        )
        we_send = we_send or video_dir in ("sendrecv", "sendonly")

    media: list[MediaDescription] = []
    for section in offer.media:
        if section is audio:
            media.append(accepted)
        elif section is offered_video and video_accepted is not None:
            media.append(video_accepted)
        else:
            media.append(_rejected(section))

    session_attrs = [Attribute("ice-lite")]
    if transport.mid is not None:
        mids = [transport.mid]
        if video_accepted is not None and offered_video is not None and offered_video.mid:
            mids.append(offered_video.mid)
        session_attrs.append(Attribute("group", "BUNDLE " + " ".join(mids)))
    if we_send:
        session_attrs.append(Attribute("msid-semantic", f" WMS {stream_id}"))

    return browser_session(leg, session_id, session_attrs, media)



def browser_session(leg: LegAddress, session_id: Optional[int], attributes: list[Attribute],
                     media: list[MediaDescription]) -> SessionDescription:
    """Our SDP toward a browser (offer or answer): first version of a session named after the
    leg, with the leg's address at session level, so rejected m-sections (which carry none)
    are covered too."""
    return SessionDescription(
        origin=Origin(
            session_id=session_id if session_id is not None else secrets.randbits(62),
            session_version=1,
            address=leg.host,
        ),
        session_name="-",
        connection=Connection(address=leg.host),
        timing=(0, 0),
        attributes=attributes,
        media=media,
    )

def _rejected(section: MediaDescription) -> MediaDescription:
    """Port 0 with the offer's proto and formats (an m-line needs at least one) and its mid."""
    attrs_ = [Attribute("mid", section.mid)] if section.mid is not None else []
    return MediaDescription(
        kind=section.kind,
        port=0,
        proto=section.proto,
        formats=list(section.formats) or ["0"],
        connection=None,
        attributes=attrs_,
    )
