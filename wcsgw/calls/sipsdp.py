"""Our SDP toward the SIP side, and where the SIP side's media goes.

Why an object of its own: every SDP we send the SIP side — the INVITE's offer, a re-offer, an
answer to its re-offer or to its INVITE, the offer of a transfer's new INVITE — is a version
of one SDP session per dialog (RFC 3264 §8: same ``o=`` session id, the version up by one),
and every SDP the SIP side sends moves its media's address and the latch of our sockets
(docs/security.md, RTP bleed) to what it names and to the IP the message came from.  That
bookkeeping is this; what the SDP says (codecs, direction, video) the call decides.
"""

from __future__ import annotations

from typing import Any

from wcsgw.calls.video import VideoPath
from wcsgw.calls.videosdp import extra_sip_media
from wcsgw.sdp.codecs import Codec
from wcsgw.sdp.errors import SdpError
from wcsgw.sdp.model import MediaDescription, SessionDescription
from wcsgw.sdp.negotiate import audio_offer, new_session_id
from wcsgw.sdp.parser import parse_sdp, serialize_sdp

__all__ = ["SipSdp"]


class SipSdp:
    """One call's SDP toward the SIP side (see the module docstring)."""

    def __init__(self, advertised: str) -> None:
        """``advertised``: the media address our SDP names."""
        self.advertised = advertised
        self.session_id = 0
        self.version = 0
        #: where the SIP side's latest SDP-carrying message came from (a Target): its IP,
        #: with the SDP's c=, is whom the SIP-side media latches to (wcsgw.media.udp)
        self.source: Any = None

    def new_session(self) -> int:
        """A new dialog, a new SDP session (its first version)."""
        self.session_id = new_session_id()
        self.version = 0
        return self.session_id

    def first_offer(self, port: int, codecs: list[Codec], video: VideoPath | None) -> bytes:
        """The offer of a new INVITE (a new session): ``codecs`` from our RTP ``port``, the
        video path's m-line after the audio."""
        offer = audio_offer(self.advertised, port, codecs, session_id=self.new_session(),
                            video=video.sip_offer_media() if video else None)
        return serialize_sdp(offer).encode()

    def next_version(self, port: int, codecs: list[Codec], direction: str,
                     video: VideoPath | None, offer: SessionDescription | None = None,
                     video_answer: MediaDescription | None = None) -> bytes:
        """A re-offer or an answer in the same session, one version up; the video m-line
        after the audio (answering ``offer``: ``video_answer`` in its video slot, other extra
        m-lines rejected)."""
        self.version += 1
        sdp = audio_offer(self.advertised, port, codecs, direction=direction,
                          session_id=self.session_id, version=self.version)
        sdp.media += extra_sip_media(video, direction, offer, video_answer)
        return serialize_sdp(sdp).encode()

    def note_source(self, event: Any) -> None:
        """Remember where an SDP-carrying SIP event's message came from (the events that
        carry an SDP have a ``source``), for the next :meth:`retarget`."""
        source = getattr(event, "source", None)
        if source is not None:
            self.source = source

    def signalling_ips(self) -> tuple[str, ...]:
        """The IP the SIP side's current SDP came from (none known: only the SDP's c=)."""
        host = getattr(self.source, "host", None)
        return (host,) if host else ()

    def retarget(self, rtp: Any, video: VideoPath | None, sip_sdp: bytes,
                 parsed: SessionDescription | None = None) -> None:
        """Point the SIP-side sockets (``rtp``, the video path's) at the address and port the
        SIP SDP names, and let them hear only that address's IP and the IP the SDP's message
        came from (a new offer/answer is the only thing that moves the latch)."""
        try:
            sd = parsed or parse_sdp(sip_sdp)
        except SdpError:
            return
        signalling = self.signalling_ips()
        if video is not None:
            video.retarget(sd, signalling)
        audio = sd.first_audio()
        connection = sd.connection_for(audio) if audio else None
        if audio is None or connection is None:
            return
        rtcp = audio.rtcp or audio.port + 1
        rtp.set_remote(connection.address, audio.port, rtcp, signalling=signalling)
