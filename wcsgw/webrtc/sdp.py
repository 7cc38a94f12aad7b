"""SDP toward the browser: the answer a WebRtcLeg gives to a browser's offer.

What a browser needs from an ICE-lite, DTLS-passive, audio-only server (measured with
Chromium 156, see /work/shared/field-notes.md): ``a=ice-lite``, our ufrag/pwd and sha-256
fingerprint, ``a=setup:passive`` (the browser is the DTLS client), ``a=rtcp-mux`` (one socket:
the browser refuses to connect without it under ``rtcpMuxPolicy: require``), a BUNDLE group
and ``a=mid`` echoing the offer's mids, ``a=msid`` + ``a=ssrc ... cname`` so ``ontrack``
delivers a stream, ``a=ptime:20``, one host candidate and ``a=end-of-candidates``.  No
``a=extmap`` and no ``a=rtcp-fb``: we relay packets and do not implement header extensions or
transport-cc feedback, and answering them would make the browser expect both.

m-sections we do not take (video for now, data channels, a second audio) are answered with
port 0 and left out of the BUNDLE group (RFC 8843 §7.3.3 / RFC 3264 §6).
"""

from __future__ import annotations

import secrets
import uuid
from typing import Optional, Protocol, Sequence

import attr

from wcsgw.sdp.codecs import Codec, primary_codec, same_codec
from wcsgw.sdp.errors import SdpNegotiationError
from wcsgw.sdp.model import Attribute, Connection, MediaDescription, Origin, SessionDescription

__all__ = [
    "BrowserTransport",
    "LegAddress",
    "answer_direction",
    "answer_for_browser",
    "browser_transport",
    "host_candidate",
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
) -> SessionDescription:
    """Answer ``offer`` for ``leg``, accepting its first audio stream with ``audio_codecs``.

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
    codecs = _match(audio.codecs(), audio_codecs)
    if primary_codec(codecs) is None:
        raise SdpNegotiationError("No common codecs")

    stream_id = stream_id or str(uuid.uuid4())
    track_id = track_id or str(uuid.uuid4())
    direction = answer_direction(offer.direction_for(audio))
    we_send = direction in ("sendrecv", "sendonly")

    attrs_: list[Attribute] = []
    add = lambda name, value=None: attrs_.append(Attribute(name, value))  # noqa: E731
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
    add("candidate", host_candidate(leg.host, leg.port))
    add("end-of-candidates")

    accepted = MediaDescription(
        kind="audio",
        port=leg.port,
        proto=audio.proto,
        formats=[str(c.payload_type) for c in codecs],
        connection=Connection(address=leg.host),
        attributes=attrs_,
    )

    media: list[MediaDescription] = []
    for section in offer.media:
        if section is audio:
            media.append(accepted)
        else:
            media.append(_rejected(section))

    session_attrs = [Attribute("ice-lite")]
    if transport.mid is not None:
        session_attrs.append(Attribute("group", f"BUNDLE {transport.mid}"))
    if we_send:
        session_attrs.append(Attribute("msid-semantic", f" WMS {stream_id}"))

    return SessionDescription(
        origin=Origin(
            session_id=session_id if session_id is not None else secrets.randbits(62),
            session_version=1,
            address=leg.host,
        ),
        session_name="-",
        # Session level, so the rejected m-sections (which carry none) are covered too.
        connection=Connection(address=leg.host),
        timing=(0, 0),
        attributes=session_attrs,
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
