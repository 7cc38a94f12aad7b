"""Our SDP toward the SIP side, and where the SIP side's media goes.

Why an object of its own: every SDP we send the SIP side — the INVITE's offer, a re-offer, an
answer to its re-offer or to its INVITE, the offer of a transfer's new INVITE — is a version
of one SDP session per dialog (RFC 3264 §8: same ``o=`` session id, the version up by one),
and every SDP the SIP side sends moves its media's address and the latch of our sockets
(docs/security.md, RTP bleed) to what it names and to the IP the message came from.  That
bookkeeping is this, with what our SDP says to each of the SIP side's: the INVITE's offer
(the plan's codecs, or the codec in use for a transfer's new INVITE), a re-offer for a hold,
and the answer to its re-offer — which keeps the codec in use or refuses (the near leg cannot
change codec mid-call; wcsgw.calls.reoffer).  It reads the call's socket, plan and video
through a narrow host (:class:`SdpHost`); the call sends what it returns.  SDES (RFC 4568)
rides along: every SDP we write gets the proto and ``a=crypto`` lines of the account's
``srtp`` policy, every answer we read keys the call's media (:mod:`wcsgw.calls.sipsdes`).
"""

from __future__ import annotations

from typing import Any, Protocol

from twisted.logger import Logger

from wcsgw.calls.addresses import sendable
from wcsgw.calls.plan import CodecPlan
from wcsgw.calls.reoffer import kept_in_reoffer
from wcsgw.calls.sipsdes import Sdes
from wcsgw.calls.video import VideoPath
from wcsgw.calls.videosdp import extra_sip_media
from wcsgw.sdp.codecs import Codec
from wcsgw.sdp.errors import SdpError
from wcsgw.sdp.model import MediaDescription, SessionDescription
from wcsgw.sdp.negotiate import answer_direction, audio_offer, new_session_id
from wcsgw.sdp.parser import parse_sdp, serialize_sdp

__all__ = ["SdpHost", "SipSdp"]

log = Logger(namespace="wcsgw.calls")


class SdpHost(Protocol):
    """What our SDP toward the SIP side reads of its call, when it is asked for one."""

    rtp: Any  # wcsgw.media.udp.RtpSocket: its port is in our SDP
    plan: CodecPlan | None
    video: VideoPath | None
    account: Any  # wcsgw.sip.account.SipAccount | None: its srtp policy
    media: Any  # wcsgw.calls.callmedia.CallMedia | None: keyed by the SDES answers



class SipSdp:
    """One call's SDP toward the SIP side (see the module docstring)."""

    def __init__(self, advertised: str, host: SdpHost | None = None) -> None:
        """``advertised``: the media address our SDP names; ``host``: the call, for the
        offers and answers that read its socket, plan and video (not needed by the
        port-and-codec builders :meth:`first_offer` and :meth:`next_version`)."""
        self.advertised = advertised
        self.host = host
        self.session_id = 0
        self.version = 0
        account = getattr(host, "account", None)
        self.sdes = Sdes(getattr(account, "srtp", "off"))
        transport = getattr(account, "transport", "tls")
        if account is not None and self.sdes.policy != "off" and transport != "tls":
            # allowed (a LAN PBX, a test), never silent: docs/security.md, SDES
            log.warn("SRTP keys for {aor} travel in SDP over {transport}: whoever sees the "
                     "signalling can decrypt the media; use TLS", aor=account.aor(),
                     transport=transport)
        #: the last answer we wrote refused the SIP side's re-offer's crypto (488 it)
        self.sdes_refused = False

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
        self.sdes.decorate(offer.first_audio(), fresh=True)
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
        if offer is None:
            self.sdes.decorate(sdp.first_audio(), fresh=False)
        else:
            self.sdes_refused = not self.sdes.answer(offer, sdp.first_audio(),
                                                     getattr(self.host, "media", None))
        sdp.media += extra_sip_media(video, direction, offer, video_answer)
        return serialize_sdp(sdp).encode()

    def retarget(self, rtp: Any, video: VideoPath | None, sip_sdp: bytes,
                 parsed: SessionDescription | None = None, source: Any = None) -> None:
        """Point the SIP-side sockets (``rtp``, the video path's) at the address and port the
        SIP SDP names, and let them hear only that address's IP and the IP the SDP's message
        came from (``source``, a Target; a new offer/answer is the only thing that moves the
        latch)."""
        try:
            sd = parsed or parse_sdp(sip_sdp)
        except SdpError:
            return
        self.sdes.take_answer(sd, getattr(self.host, "media", None))
        host = getattr(source, "host", None)
        signalling: tuple[str, ...] = (host,) if host else ()
        if video is not None:
            video.retarget(sd, signalling)
        audio = sd.first_audio()
        connection = sd.connection_for(audio) if audio else None
        if audio is None or connection is None:
            return
        rtcp = audio.rtcp or audio.port + 1
        rtp.set_remote(sendable(connection.address, rtp.host), audio.port, rtcp,
                       signalling=signalling)

    # -- what the call asks for (through its host) ----------------------------------------

    def _host(self) -> SdpHost:
        assert self.host is not None and self.host.rtp is not None
        return self.host

    def in_use(self) -> list[Codec]:
        """The codec in use toward the SIP side and its telephone-event."""
        plan = self._host().plan
        assert plan is not None
        return [c for c in (plan.sip_codec, plan.sip_dtmf) if c is not None]

    def invite_offer(self, codecs: list[Codec]) -> bytes:
        """The offer of a new INVITE from the call's socket: ``codecs`` (the plan's offer, or
        :meth:`in_use` for a transfer's new INVITE), the call's video after them."""
        host = self._host()
        return self.first_offer(host.rtp.port, codecs, host.video)

    def reoffer(self, direction: str, codecs: list[Codec] | None = None,
                offer: SessionDescription | None = None,
                video_answer: MediaDescription | None = None) -> bytes:
        """Our SDP toward the SIP side in the call's session (a re-offer, or an answer to
        ``offer``): the codecs in use unless given, one version up."""
        host = self._host()
        return self.next_version(host.rtp.port, codecs if codecs is not None else self.in_use(),
                                 direction, host.video, offer, video_answer)

    def answer_reoffer(self, offer: SessionDescription | None, wanted: str
                       ) -> tuple[bytes, Codec, Codec | None] | None:
        """Our answer to the SIP side's re-offer (parsed; None: it did not parse), keeping
        our own hold (``wanted``: our direction), with the codec in use under the offer's
        numbers and its telephone-event: (answer, codec, telephone-event); None when the
        offer dropped our codec (answer 488 then, and the call stays as it was)."""
        host = self._host()
        plan = host.plan
        assert plan is not None
        audio = offer.first_audio() if offer is not None else None
        kept = kept_in_reoffer(audio, plan.sip_codec)
        if offer is None or audio is None or kept is None:
            return None
        video_answer = (host.video.answer_reoffer(offer, wanted)[0]
                        if host.video is not None else None)
        answer = self.reoffer(answer_direction(offer.direction_for(audio), wanted),
                              [c for c in kept if c is not None], offer, video_answer)
        if self.sdes_refused:
            return None
        return answer, kept[0], kept[1]
