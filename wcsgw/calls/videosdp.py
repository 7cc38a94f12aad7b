"""The SDP side of a call's video: what each leg is offered and how an answer's lines are made.

:class:`~wcsgw.calls.video.VideoPath` keeps one call's video state and its socket and relay;
the decisions that need none of that — which formats a handed call's browser is offered and
which ``[codecs] video`` allows, which m-line is the SIP side's video, the bandwidth we take
from it, our direction toward SIP, which formats may carry the same stream, and the m-lines
after the audio one in our SDP toward SIP (RFC 3264: as many as offered, in order, port 0
for those we refuse) — are plain functions of SDP here, testable without a call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Optional

from wcsgw.sdp.codecs import Codec
from wcsgw.sdp.model import MediaDescription, SessionDescription
from wcsgw.sdp.video import VIDEO_KBPS, VIDEO_MAX_KBPS, bandwidth_kbps

if TYPE_CHECKING:
    from wcsgw.calls.video import VideoPath

__all__ = [
    "HANDED_VIDEO_OFFER",
    "combined_direction",
    "extra_sip_media",
    "peer_kbps",
    "rejected_like",
    "same_stream",
    "sip_video",
    "video_codec_names",
]

DEFAULT_VIDEO_CODECS = ("VP8", "H264")

#: What a browser is offered for a call handed to it over REST (no SIP offer to take formats
#: from: the INVITE is placed once the browser has answered): VP8 and H.264 constrained
#: baseline in both packetization-modes — what SIP video phones decode.  The browser's
#: answer keeps one, and the INVITE offers only that one (the browser cannot change it).
HANDED_VIDEO_OFFER = (
    Codec("VP8", 90000),
    Codec("H264", 90000,
          fmtp="level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"),
    Codec("H264", 90000,
          fmtp="level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f"),
)


def video_codec_names(env: Any) -> tuple[str, ...]:
    """The ``[codecs] video`` list from the call environment (``env.codecs.video``: catalogue
    entries or names), as lower-case keys; VP8, H264 when none is configured."""
    codecs = getattr(env, "codecs", None)
    names = getattr(codecs, "video", None) or DEFAULT_VIDEO_CODECS
    return tuple(str(getattr(n, "key", n)).lower() for n in names)


def sip_video(sd: SessionDescription) -> Optional[MediaDescription]:
    """The first plain-RTP video m-line, rejected or not (None: the SDP has no video)."""
    return next((m for m in sd.media if m.kind == "video"), None)


def rejected_like(media: MediaDescription) -> MediaDescription:
    """An answer's port-0 line for an m-line we do not take (RFC 3264 §6)."""
    return MediaDescription(media.kind, 0, media.proto, list(media.formats) or ["0"])


def peer_kbps(media: MediaDescription) -> int:
    """The peer's b=AS/TIAS, capped at :data:`VIDEO_MAX_KBPS`; :data:`VIDEO_KBPS` when none."""
    value = bandwidth_kbps(media)
    return min(value, VIDEO_MAX_KBPS) if value else VIDEO_KBPS

def combined_direction(wanted: str, browser: str) -> str:
    """Our direction toward SIP: we send only what ``wanted`` (hold) allows and the browser
    sends, and receive only what both take (a browser that only watches: recvonly)."""
    send = wanted in ("sendrecv", "sendonly") and browser in ("sendrecv", "sendonly")
    receive = wanted in ("sendrecv", "recvonly") and browser in ("sendrecv", "recvonly")
    return {(True, True): "sendrecv", (True, False): "sendonly",
            (False, True): "recvonly", (False, False): "inactive"}[(send, receive)]


def same_stream(a: Codec, b: Codec) -> bool:
    """Whether a sender could label the same bitstream with either format: same codec and,
    for H.264, the same packetization-mode (profiles are what peers disagree about)."""
    if a.key != b.key or a.clock_rate != b.clock_rate:
        return False
    if a.key == "h264":
        mode: Callable[[Codec], str] = lambda c: (  # noqa: E731
            c.fmtp_params.get("packetization-mode") or "0").strip()
        return mode(a) == mode(b)
    return True


def extra_sip_media(video: Optional[VideoPath], direction: str,
                    offer: Optional[SessionDescription] = None,
                    reoffer_video: Optional[MediaDescription] = None) -> list[MediaDescription]:
    """The m-lines after the audio one in our SDP toward SIP: our video (a new offer), or —
    answering ``offer`` — one line per offered m-line after the first audio: the video answer
    ``reoffer_video`` in the video slot, every other one rejected (RFC 3264 §6: as many
    m-lines as offered, in order)."""
    if offer is None:
        return [video.sip_offer_media(direction)] if video is not None else []
    out: list[MediaDescription] = []
    audio_seen = False
    for media in offer.media:
        if media.kind == "audio" and not audio_seen:
            audio_seen = True
            continue
        if media.kind == "video" and reoffer_video is not None:
            out.append(reoffer_video)
            reoffer_video = None
        else:
            out.append(rejected_like(media))
    return out
