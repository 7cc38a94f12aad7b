"""SDP toward the browser when the gateway offers (calls toward the browser): the offer, and
reading the browser's answer.

The gateway is the *offerer* (:func:`offer_for_browser`) and still the ICE-lite agent and the
DTLS server.  The offer must say ``a=setup:actpass`` (RFC 5763 §5: an offerer may not pick its
role), so the DTLS role is settled by the answer: the browser answers ``active`` and becomes
the client, which is what the leg expects; :func:`parse_browser_answer` refuses anything else
rather than start a leg that could never complete its handshake.  What the browser needs of
the SDP, and the video m-section: :mod:`wcsgw.webrtc.sdp`.
"""

from __future__ import annotations

import uuid
from typing import Optional, Sequence

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
from wcsgw.sdp.model import (
    Attribute,
    Connection,
    MediaDescription,
    SessionDescription,
)
from wcsgw.sdp.video import rtcp_feedback, same_video_codec
from wcsgw.webrtc.sdp import (
    LegAddress,
    VideoSpec,
    bandwidths,
    browser_session,
    leg_candidates,
    video_attributes,
)

__all__ = [
    "BrowserAnswer",
    "BrowserVideo",
    "first_ssrc",
    "offer_for_browser",
    "offer_payload_types",
    "parse_browser_answer",
    "parse_browser_video",
]



#: The numbers Chromium itself gives these codecs.  Any dynamic number would do (the answer
#: keeps ours), but with the browser's own the packets look the same whichever side offered,
#: which keeps captures and relay maps of the two call directions comparable.
BROWSER_PAYLOAD_TYPES: tuple[tuple[Codec, int], ...] = (
    (Codec("opus", 48000, 2), 111),
    (Codec("telephone-event", 48000), 110),
    (Codec("telephone-event", 8000), 126),
)

#: The mids of our offers' audio and video m-sections.
AUDIO_MID = "0"
VIDEO_MID = "1"

#: Chromium's own numbers for the video formats (VP8 96, H.264 102/104/108/114...): used when
#: free, like :data:`BROWSER_PAYLOAD_TYPES` for audio.
BROWSER_VIDEO_PAYLOAD_TYPES = (96, 102, 104, 108, 114, 116, 39, 98, 100)


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
    video: "VideoSpec | bool | None" = None,
    stream_id: Optional[str] = None,
    track_id: Optional[str] = None,
) -> SessionDescription:
    """A WebRTC offer for ``leg``: one sendrecv audio stream with ``audio_codecs``.

    Chromium and Firefox accept it from an ICE-lite server: ``a=ice-lite``, a BUNDLE group of
    the one audio m-section (mid "0", ``UDP/TLS/RTP/SAVPF``), the leg's ICE credentials and
    fingerprint, ``a=setup:actpass`` (see the module docstring), ``a=rtcp-mux`` and
    ``a=rtcp-rsize``, ``a=msid`` + ``a=ssrc`` cname/msid (``ssrc``/``cname``: what we will
    send), ``a=ptime:20``, our host candidates (UDP; ICE-TCP on the shared port) and
    ``a=end-of-candidates`` (nothing trickles from a lite agent).  ``audio_codecs`` go on the
    m-line in the given order, numbered by :func:`offer_payload_types`; the browser answers
    with the first of them it supports.

    ``video`` (a :class:`VideoSpec`) adds a video m-section (mid "1") to the BUNDLE group;
    its formats get Chromium's numbers where free (never one audio uses: the call tells the
    streams apart by payload type).  ``video=True`` without a spec raises
    NotImplementedError (there is nothing to offer).  SdpNegotiationError when
    ``audio_codecs`` has no codec that carries audio (only telephone-event/CN, or nothing).
    """
    if video is True:
        raise NotImplementedError("video toward the browser needs a VideoSpec (codecs, ssrc)")
    codecs = offer_payload_types(audio_codecs)
    if primary_codec(codecs) is None:
        raise SdpNegotiationError(
            "No common codecs: nothing to offer the browser but "
            + (", ".join(c.rtpmap for c in codecs) or "nothing")
        )
    stream_id = stream_id or str(uuid.uuid4())
    track_id = track_id or str(uuid.uuid4())

    attrs_: list[Attribute] = []
    def add(name: str, value: Optional[str] = None) -> None:
        attrs_.append(Attribute(name, value))

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
    for candidate in leg_candidates(leg):
        add("candidate", candidate)
    add("end-of-candidates")

    audio = MediaDescription(
        kind="audio",
        port=leg.port,
        proto="UDP/TLS/RTP/SAVPF",
        formats=[str(c.payload_type) for c in codecs],
        connection=Connection(address=leg.host),
        attributes=attrs_,
    )
    media = [audio]
    if isinstance(video, VideoSpec) and video.codecs:
        video_codecs = video_payload_types(video.codecs, {c.payload_type for c in codecs})
        media.append(MediaDescription(
            kind="video",
            port=leg.port,
            proto="UDP/TLS/RTP/SAVPF",
            formats=[str(c.payload_type) for c in video_codecs],
            connection=Connection(address=leg.host),
            bandwidths=bandwidths(video.kbps),
            attributes=video_attributes(
                leg, VIDEO_MID, "actpass", video.direction, video_codecs, None, video.ssrc,
                cname, stream_id, True),
        ))
    return browser_session(leg, session_id, [
        Attribute("ice-lite"),
        Attribute("group", "BUNDLE " + " ".join(m.mid or "" for m in media)),
        Attribute("msid-semantic", f" WMS {stream_id}"),
    ], media)


def video_payload_types(codecs: Sequence[Codec], taken: set[Optional[int]]) -> list[Codec]:
    """Payload types for the video formats of an offer to a browser: Chromium's own numbers
    (:data:`BROWSER_VIDEO_PAYLOAD_TYPES`) in order, then any free dynamic one; never one in
    ``taken`` (the audio section's)."""
    used = {pt for pt in taken if pt is not None}
    preferred = (pt for pt in BROWSER_VIDEO_PAYLOAD_TYPES)
    out: list[Codec] = []
    for codec in codecs:
        pt = next((p for p in preferred if p not in used), None)
        if pt is None:
            pt = next((p for p in range(96, 128) if p not in used), None)
        if pt is None:
            raise SdpNegotiationError("no free payload type left for video")
        used.add(pt)
        out.append(codec.with_payload_type(pt))
    return out


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


def first_ssrc(media: MediaDescription) -> Optional[int]:
    """The SSRC of the section's first ``a=ssrc`` line (RFC 5576), the one the browser sends
    with; None without a usable one."""
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
        ssrc=first_ssrc(theirs),
    )


@attr.s(frozen=True, slots=True, auto_attribs=True)
class BrowserVideo:
    """What the browser's answer says about the video m-section of our offer.

    ``codec`` is the first format it kept (what it will send), with our offer's payload
    type and the answer's fmtp; ``feedback`` the rtcp-fb it answered for that format;
    ``ssrc`` its video SSRC from ``a=ssrc`` when given; ``kbps`` its b=AS/TIAS.
    """

    codec: Codec
    direction: str
    feedback: frozenset[str]
    ssrc: Optional[int] = None
    kbps: Optional[int] = None


def parse_browser_video(offer: SessionDescription, answer: SessionDescription) -> Optional[BrowserVideo]:
    """The browser's answer to our video m-section, None when we offered none or the browser
    rejected it (port 0) or kept no format we offered (then the call is audio-only)."""
    from wcsgw.sdp.video import bandwidth_kbps

    index = next((i for i, m in enumerate(offer.media) if m.kind == "video" and not m.rejected),
                 None)
    if index is None or index >= len(answer.media):
        return None
    ours, theirs = offer.media[index], answer.media[index]
    if theirs.kind != "video" or theirs.rejected:
        return None
    offered = {c.payload_type: c for c in ours.codecs()}
    for codec in theirs.codecs():
        mine = offered.get(codec.payload_type)
        if mine is not None and same_video_codec(mine, codec):
            return BrowserVideo(
                codec=attr.evolve(mine, fmtp=codec.fmtp),
                direction=answer.direction_for(theirs),
                feedback=frozenset(rtcp_feedback(theirs, codec.payload_type)),
                ssrc=first_ssrc(theirs),
                kbps=bandwidth_kbps(theirs),
            )
    return None
