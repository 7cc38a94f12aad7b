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

For calls toward the browser the gateway is the *offerer* (:func:`offer_for_browser`) and
still the ICE-lite agent and the DTLS server.  The offer must say ``a=setup:actpass``
(RFC 5763 §5: an offerer may not pick its role), so the DTLS role is settled by the answer:
the browser answers ``active`` and becomes the client, which is what the leg expects;
:func:`parse_browser_answer` refuses anything else rather than start a leg that could never
complete its handshake.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Optional, Protocol, Sequence

import attr

from wcsgw.sdp.codecs import (
    OPUS,
    Codec,
    assign_payload_types,
    is_auxiliary,
    primary_codec,
    same_codec,
)
from wcsgw.sdp.errors import SdpNegotiationError
from wcsgw.sdp.model import Attribute, Connection, MediaDescription, Origin, SessionDescription

__all__ = [
    "BrowserAnswer",
    "BrowserTransport",
    "LegAddress",
    "answer_direction",
    "answer_for_browser",
    "browser_transport",
    "host_candidate",
    "offer_for_browser",
    "offer_payload_types",
    "parse_browser_answer",
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


# -- the gateway as the offerer (calls toward the browser) ----------------------------------------

#: The numbers Chromium itself gives these codecs.  Any dynamic number would do (the answer
#: keeps ours), but with the browser's own the packets look the same whichever side offered,
#: which keeps captures and relay maps of the two call directions comparable.
BROWSER_PAYLOAD_TYPES: tuple[tuple[Codec, int], ...] = (
    (Codec("opus", 48000, 2), 111),
    (Codec("telephone-event", 48000), 110),
    (Codec("telephone-event", 8000), 126),
)

#: The mid of the one audio m-section of our offers.
AUDIO_MID = "0"


def offer_payload_types(codecs: Sequence[Codec]) -> list[Codec]:
    """``codecs`` with payload types for an offer to a browser, in the given order.

    A codec that has a payload type keeps it; otherwise opus/48000/2 gets 111,
    telephone-event/48000 110 and telephone-event/8000 126 (Chromium's own numbers) when
    free, static codecs their RFC 3551 number (PCMU 0, PCMA 8, G722 9), anything else a free
    number from 96 up.  Opus without fmtp gets ``minptime=10;useinbandfec=1`` (what the
    browser would offer: in-band FEC on, 10 ms frames allowed).  A codec listed twice (same
    name, rate and channels) is kept once, at its first place.
    """
    unique: list[Codec] = []
    for codec in codecs:
        if not any(same_codec(codec, seen) for seen in unique):
            unique.append(codec)
    taken = {c.payload_type for c in unique if c.payload_type is not None}
    preferred: list[Codec] = []
    for codec in unique:
        if codec.payload_type is None:
            for known, pt in BROWSER_PAYLOAD_TYPES:
                if same_codec(codec, known) and pt not in taken:
                    codec = codec.with_payload_type(pt)
                    taken.add(pt)
                    break
        if codec.key == "opus" and not codec.fmtp:
            codec = attr.evolve(codec, fmtp=OPUS.fmtp)
        preferred.append(codec)
    return assign_payload_types(preferred)


def offer_for_browser(
    leg: LegAddress,
    audio_codecs: Sequence[Codec],
    ssrc: int,
    cname: str,
    *,
    session_id: Optional[int] = None,
    video: bool = False,
    stream_id: Optional[str] = None,
    track_id: Optional[str] = None,
) -> SessionDescription:
    """A WebRTC offer for ``leg``: one sendrecv audio stream with ``audio_codecs``.

    Chromium and Firefox accept it from an ICE-lite server: ``a=ice-lite``, a BUNDLE group of
    the one audio m-section (mid "0", ``UDP/TLS/RTP/SAVPF``), the leg's ICE credentials and
    fingerprint, ``a=setup:actpass`` (see the module docstring), ``a=rtcp-mux`` and
    ``a=rtcp-rsize``, ``a=msid`` + ``a=ssrc`` cname/msid (``ssrc``/``cname``: what we will
    send), ``a=ptime:20``, one host candidate and ``a=end-of-candidates`` (nothing trickles
    from a lite agent).  ``audio_codecs`` go on the m-line in the given order, numbered by
    :func:`offer_payload_types`; the browser answers with the first of them it supports.

    ``video`` is part of the signature for calls that will carry video (issue 7); the leg and
    the media bridge carry audio only, so ``video=True`` raises NotImplementedError rather
    than offer a stream nobody would relay.  SdpNegotiationError when ``audio_codecs`` has
    no codec that carries audio (only telephone-event/CN, or nothing).
    """
    if video:
        raise NotImplementedError("video toward the browser is not supported yet (audio only)")
    codecs = offer_payload_types(audio_codecs)
    if primary_codec(codecs) is None:
        raise SdpNegotiationError(
            "No common codecs: nothing to offer the browser but "
            + (", ".join(c.rtpmap for c in codecs) or "nothing")
        )
    stream_id = stream_id or str(uuid.uuid4())
    track_id = track_id or str(uuid.uuid4())

    attrs_: list[Attribute] = []
    add = lambda name, value=None: attrs_.append(Attribute(name, value))  # noqa: E731
    add("mid", AUDIO_MID)
    add("ice-ufrag", leg.ice_ufrag)
    add("ice-pwd", leg.ice_pwd)
    add("fingerprint", f"{leg.fingerprint[0]} {leg.fingerprint[1]}")
    add("setup", "actpass")
    add("sendrecv")
    add("msid", f"{stream_id} {track_id}")
    add("rtcp-mux")
    add("rtcp-rsize")
    for codec in codecs:
        add("rtpmap", f"{codec.payload_type} {codec.rtpmap}")
        if codec.fmtp:
            add("fmtp", f"{codec.payload_type} {codec.fmtp}")
    add("ptime", "20")
    add("ssrc", f"{ssrc} cname:{cname}")
    add("ssrc", f"{ssrc} msid:{stream_id} {track_id}")
    add("candidate", host_candidate(leg.host, leg.port))
    add("end-of-candidates")

    audio = MediaDescription(
        kind="audio",
        port=leg.port,
        proto="UDP/TLS/RTP/SAVPF",
        formats=[str(c.payload_type) for c in codecs],
        connection=Connection(address=leg.host),
        attributes=attrs_,
    )
    return SessionDescription(
        origin=Origin(
            session_id=session_id if session_id is not None else secrets.randbits(62),
            session_version=1,
            address=leg.host,
        ),
        session_name="-",
        connection=Connection(address=leg.host),
        timing=(0, 0),
        attributes=[
            Attribute("ice-lite"),
            Attribute("group", f"BUNDLE {AUDIO_MID}"),
            Attribute("msid-semantic", f" WMS {stream_id}"),
        ],
        media=[audio],
    )


@attr.s(frozen=True, slots=True, auto_attribs=True)
class BrowserAnswer:
    """What the browser's answer to :func:`offer_for_browser` settles.

    ``ice_ufrag``/``ice_pwd``/``fingerprint`` go to ``leg.set_remote``; ``setup`` is always
    "active" (the browser is the DTLS client).  ``codecs`` are the audio codecs the browser
    kept, in its answer's order (it sends the first), with our offer's payload types and the
    answer's fmtp (what the browser wants to receive); telephone-event and CN are not among
    them.  ``telephone_event`` is the kept telephone-event at the clock rate of
    ``codecs[0]``, else None.  ``direction`` is the browser's (recvonly: it has no
    microphone); ``ssrc`` the browser's own from ``a=ssrc``, if it wrote one.
    """

    ice_ufrag: str
    ice_pwd: str
    fingerprint: tuple[str, str]
    setup: str
    mid: Optional[str]
    codecs: list[Codec]
    telephone_event: Optional[Codec]
    direction: str
    ssrc: Optional[int] = None

    @property
    def codec(self) -> Codec:
        """The codec the browser sends (the first it kept)."""
        return self.codecs[0]


def _answer_fingerprint(
    answer: SessionDescription, media: MediaDescription
) -> Optional[tuple[str, str]]:
    """sha-256 when the answer gives several (our leg checks any, sha-256 is what all use)."""
    values = media.get_all("fingerprint") or answer.get_all("fingerprint")
    found: list[tuple[str, str]] = []
    for value in values:
        parts = value.split()
        if len(parts) == 2:
            found.append((parts[0].lower(), parts[1]))
    for algo, value in found:
        if algo == "sha-256":
            return algo, value
    return found[0] if found else None


def _first_ssrc(media: MediaDescription) -> Optional[int]:
    for value in media.get_all("ssrc"):
        head = value.split(None, 1)[0] if value.strip() else ""
        if head.isdigit() and int(head) < 2**32:
            return int(head)
    return None


def parse_browser_answer(offer: SessionDescription, answer: SessionDescription) -> BrowserAnswer:
    """Check the browser's ``answer`` to our ``offer`` and take out what the call needs.

    Raises SdpNegotiationError, its message the reason, when the answer is unusable: another
    number of m-sections than offered, the audio stream rejected (port 0), no audio codec of
    ours kept, no ICE credentials, no fingerprint, no rtcp-mux, an ``a=ice-lite`` browser
    (then nobody would send connectivity checks), or a DTLS role other than ``active``:
    ``passive`` (or no ``a=setup``, which RFC 4145 §4 reads as passive in an answer) would
    make both sides servers, and ``actpass`` is not allowed in an answer (RFC 5763 §5).
    """
    if len(answer.media) != len(offer.media):
        raise SdpNegotiationError(
            f"the answer has {len(answer.media)} m-sections for the {len(offer.media)} offered"
        )
    index = next(
        (i for i, m in enumerate(offer.media) if m.kind == "audio" and not m.rejected), None
    )
    if index is None:
        raise SdpNegotiationError("our offer has no audio stream")
    ours, theirs = offer.media[index], answer.media[index]
    if theirs.kind != "audio":
        raise SdpNegotiationError(f"the answer has m={theirs.kind} where we offered audio")
    if theirs.rejected:
        raise SdpNegotiationError("the browser rejected the audio stream (port 0)")
    if ours.mid is not None and theirs.mid is not None and theirs.mid != ours.mid:
        raise SdpNegotiationError(f"the answer's audio has mid {theirs.mid!r}, not {ours.mid!r}")

    offered = {c.payload_type: c for c in ours.codecs()}
    kept: list[Codec] = []
    for codec in theirs.codecs():
        mine = offered.get(codec.payload_type)
        if mine is not None and same_codec(mine, codec):
            kept.append(attr.evolve(mine, fmtp=codec.fmtp))
    primaries = [c for c in kept if not is_auxiliary(c)]
    if not primaries:
        raise SdpNegotiationError(
            "No common codecs: the browser kept none of the audio codecs offered ("
            + ", ".join(c.rtpmap for c in offered.values()) + ")"
        )
    rate = primaries[0].clock_rate
    telephone_event = next(
        (c for c in kept if c.key == "telephone-event" and c.clock_rate == rate), None
    )

    if answer.ice_lite:
        raise SdpNegotiationError("the browser says a=ice-lite: nobody would check connectivity")
    ufrag, pwd = answer.ice_ufrag_for(theirs), answer.ice_pwd_for(theirs)
    if not ufrag or not pwd:
        raise SdpNegotiationError("the answer has no ICE credentials (a=ice-ufrag/a=ice-pwd)")
    fingerprint = _answer_fingerprint(answer, theirs)
    if fingerprint is None:
        raise SdpNegotiationError("the answer has no DTLS fingerprint (a=fingerprint)")
    setup = answer.setup_for(theirs)
    if setup is None:
        raise SdpNegotiationError(
            "the answer has no a=setup (passive by RFC 4145); the browser must be active"
        )
    if setup != "active":
        raise SdpNegotiationError(
            f"the answer has a=setup:{setup}; the browser must be active (we are the DTLS server)"
        )
    if not theirs.rtcp_mux:
        raise SdpNegotiationError("the browser did not accept rtcp-mux; we use one port")

    return BrowserAnswer(
        ice_ufrag=ufrag.strip(),
        ice_pwd=pwd.strip(),
        fingerprint=fingerprint,
        setup=setup,
        mid=theirs.mid,
        codecs=primaries,
        telephone_event=telephone_event,
        direction=answer.direction_for(theirs),
        ssrc=_first_ssrc(theirs),
    )
