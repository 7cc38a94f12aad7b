"""A call's video path: the SIP-side video socket, the relay, and the SDP each leg gets.

Video is relayed, never transcoded (:mod:`wcsgw.media.video`), so a call has video only when
both legs agree on one codec from the ``[codecs] video`` list (VP8, H.264 with the same
profile and packetization-mode).  The path is created when the first offer has video and the
call wants it; it is dropped — socket closed, port back to the allocator — as soon as the
other leg rejects video, and the call goes on audio-only.

The browser side shares the audio's ICE/DTLS transport (BUNDLE): the call's
:class:`~wcsgw.media.session.MediaSession` gives the relay the browser's packets of its
payload type and the RTCP compounds that are about video.  The SIP side has its own RTP/RTCP
socket pair, as SIP video phones expect (a second m-line, its own port), which the session
connects to the relay too.

Outbound (browser -> SIP): :meth:`VideoPath.outbound` picks the browser's VP8/H.264 formats
for the INVITE (its payload types, so relaying needs no renumbering when the SIP side keeps
them); :meth:`VideoPath.settle_sip_answer` reads the SIP answer and gives the
:class:`~wcsgw.webrtc.sdp.VideoSpec` for the browser's answer.  Inbound (SIP -> browser):
:meth:`VideoPath.inbound` makes the browser offer's video formats from the SIP offer;
:meth:`VideoPath.settle_browser_answer` reads the browser's answer and gives the SIP answer's
video m-line.

The SDP decisions that need no path are :mod:`wcsgw.calls.videosdp`; key frames asked and
given by SIP INFO (RFC 5168) are :mod:`wcsgw.calls.keyframeinfo`.
"""

from __future__ import annotations

import secrets
from typing import Any, Callable, Iterable, Optional

from twisted.logger import Logger

from wcsgw.calls.addresses import sendable
from wcsgw.calls.keyframeinfo import KeyFramesByInfo
from wcsgw.calls.videosdp import (
    HANDED_VIDEO_OFFER,
    combined_direction,
    peer_kbps,
    rejected_like,
    same_stream,
    sip_video,
    video_codec_names,
)
from wcsgw.media.video import VideoLeg, VideoRelay
from wcsgw.sdp.codecs import Codec
from wcsgw.sdp.model import MediaDescription, SessionDescription
from wcsgw.sdp.negotiate import PLAIN_RTP_PROTOS, VideoAnswer, answer_direction, video_media
from wcsgw.sdp.video import (
    VIDEO_KBPS,
    VIDEO_RTCP_FB,
    rtcp_feedback,
    same_video_codec,
    select_video_codecs,
    video_answer_codec,
)
from wcsgw.sip.mediacontrol import FastUpdateSender
from wcsgw.webrtc.offer import BrowserVideo, first_ssrc
from wcsgw.webrtc.sdp import VideoSpec, video_section

log = Logger(namespace="wcsgw.calls")

__all__ = ["VideoPath"]

class VideoPath(KeyFramesByInfo):
    """One call's video (see the module docstring).  Create with :meth:`outbound` or
    :meth:`inbound`; :meth:`close` always.  Its SDP helpers are :mod:`wcsgw.calls.videosdp`,
    its key-frame requests by INFO :class:`~wcsgw.calls.keyframeinfo.KeyFramesByInfo`
    (whose attributes it sets up)."""

    def __init__(self, env: Any, call_id: str) -> None:
        self.env = env
        self.call_id = call_id
        self.rtp = env.make_rtp_socket(env.reactor, env.allocator, env.media_host)
        #: the IP(s) the SIP side's latest SDP came from (the call tells :meth:`retarget`):
        #: with the SDP's c=, the only sources the video socket latches to
        self.signalling: tuple[str, ...] = ()
        #: the SIP side's video codec (its payload type) and the browser's (its payload type)
        self.sip_codec: Optional[Codec] = None
        self.browser_codec: Optional[Codec] = None
        self.sip_feedback: frozenset[str] = frozenset()
        self.browser_feedback: frozenset[str] = frozenset(VIDEO_RTCP_FB)
        self.browser_ssrc: Optional[int] = None
        self.sip_also_receive: frozenset[int] = frozenset()
        #: what the browser does with video (its offer's direction; "recvonly": it only
        #: watches, so the SIP side is offered recvonly too)
        self.browser_direction = "sendrecv"
        self.kbps = VIDEO_KBPS
        #: our SSRC toward the browser (in its SDP) and toward the SIP side
        self.webrtc_ssrc = secrets.randbits(32)
        self.sip_ssrc = secrets.randbits(32)
        self.relay: Optional[VideoRelay] = None
        #: the formats offered to the SIP side (outbound) or by it (inbound)
        self.offered: list[Codec] = []
        #: (browser format, SIP format) of the same codec, as offered: outbound, the browser's
        #: formats and their SIP numbers; inbound, our browser offer's and the caller's
        self._pairs: list[tuple[Codec, Codec]] = []
        self._leg: Any = None
        self._closed = False
        #: video was refused by the other leg: no socket, our SDP keeps a port-0 m-line
        self.rejected = False
        self._local_hold = False
        self._held = False
        self._sip_receives = True
        #: key frames by SIP INFO (KeyFramesByInfo): the call sets ``send_fast_update``
        self.send_fast_update: Optional[Callable[[], bool]] = None
        self.fast_update = FastUpdateSender()
        self.fast_updates_received = 0

    # -- outbound: browser offer -> SIP offer -> SIP answer -> browser answer ---------------

    @classmethod
    def outbound(cls, env: Any, call_id: str, browser_offer: SessionDescription,
                 taken: set[int]) -> Optional["VideoPath"]:
        """A path for the browser's offer, None when it has no video we can relay.
        ``taken``: payload types the SIP offer's audio uses (video must not reuse them)."""
        section = video_section(browser_offer)
        if section is None:
            return None
        codecs = select_video_codecs(section.codecs(), video_codec_names(env))
        if not codecs:
            return None
        path = cls(env, call_id)
        # The browser's numbers where the SIP offer's audio leaves them free (then the relay
        # needs no renumbering), another free dynamic number where it does not.
        used = set(taken) | {c.payload_type for c in codecs if c.payload_type not in taken}
        free = (pt for pt in range(96, 128) if pt not in used)
        for codec in codecs:
            sip = codec if codec.payload_type not in taken else codec.with_payload_type(next(free))
            path._pairs.append((codec, sip))
        path.offered = [sip for _, sip in path._pairs]
        path.browser_ssrc = first_ssrc(section)
        path.browser_direction = browser_offer.direction_for(section)
        path.browser_feedback = frozenset(
            fb for fb in VIDEO_RTCP_FB if fb in rtcp_feedback(section, codecs[0].payload_type))
        return path

    @property
    def ready(self) -> bool:
        """Both legs agreed on a codec (the relay can start)."""
        return not self.rejected and self.sip_codec is not None and self.browser_codec is not None

    def reject(self) -> None:
        """The other leg refused video: release the socket; the call goes on audio-only."""
        self.rejected = True
        self.close()

    def sip_offer_media(self, direction: str = "sendrecv") -> MediaDescription:
        """Our m=video toward the SIP side: the offered formats (first INVITE) or the one in
        use (re-offers), b=AS, rtcp-fb; port 0 once video was refused (RFC 3264 §8.2: an
        m-line is never removed from a session)."""
        codecs = [self.sip_codec] if self.sip_codec is not None else self.offered
        media = video_media(self.rtp.port, list(codecs),
                            combined_direction(direction, self.browser_direction), kbps=self.kbps)
        return rejected_like(media) if self.rejected else media

    def settle_sip_answer(self, answer: SessionDescription) -> Optional[VideoSpec]:
        """Read the SIP answer's video: the browser answer's :class:`VideoSpec`, or None
        when the SIP side rejected video (port 0, or ``a=inactive``: a first answer that
        neither sends nor receives declines video) or chose nothing we offered (the caller
        then :meth:`reject`\\ s the path and answers the browser without video)."""
        media = sip_video(answer)
        if media is None or media.rejected or answer.direction_for(media) == "inactive":
            return None
        answered = media.codecs()
        log.info("call {call_id}: SIP video answer {formats}", call_id=self.call_id,
                 formats=", ".join(f"{c.payload_type} {c.rtpmap} {c.fmtp or ''}".strip()
                                   for c in answered) or "none")
        # The answer's first format that is one we offered: by number, else by codec (the
        # answerer may use its own numbers, RFC 3264 §6.1).
        chosen = next(((browser, theirs) for theirs in answered for browser, sip in self._pairs
                       if sip.payload_type == theirs.payload_type and same_video_codec(sip, theirs)),
                      None) or next(((browser, theirs) for theirs in answered
                                     for browser, sip in self._pairs
                                     if same_video_codec(sip, theirs)), None)
        if chosen is None:
            return None
        browser, theirs = chosen
        self.sip_codec = theirs
        self.browser_codec = video_answer_codec(browser, theirs)
        # Numbers the SIP side may send this codec with: every offered or answered format of
        # the same codec and packetization (see VideoLeg.also_receive).
        self.sip_also_receive = frozenset(
            c.payload_type for c in [sip for _, sip in self._pairs] + answered
            if c.payload_type is not None and c.payload_type != theirs.payload_type
            and same_stream(c, theirs))
        self.sip_feedback = frozenset(rtcp_feedback(media, theirs.payload_type))
        self.kbps = peer_kbps(media)
        self.retarget(answer)
        return VideoSpec([self.browser_codec], self.webrtc_ssrc, self.kbps)

    # -- inbound: SIP offer -> browser offer -> browser answer -> SIP answer ----------------

    @classmethod
    def inbound(cls, env: Any, call_id: str, sip_offer: SessionDescription) -> Optional["VideoPath"]:
        """A path for the SIP caller's offer, None when it has no video we can relay."""
        media = sip_video(sip_offer)
        if (media is None or media.rejected or media.proto.upper() not in PLAIN_RTP_PROTOS):
            return None
        codecs = select_video_codecs(media.codecs(), video_codec_names(env))
        if not codecs:
            return None
        path = cls(env, call_id)
        path.offered = codecs
        path.kbps = peer_kbps(media)
        return path

    def browser_offer_spec(self) -> VideoSpec:
        """The video section of our offer to the browser: the SIP caller's formats (fmtp as
        the caller wrote it: what the SIP side can receive); payload types are chosen by the
        offer builder."""
        return VideoSpec([c.with_payload_type(None) for c in self.offered],  # type: ignore[arg-type]
                         self.webrtc_ssrc, self.kbps)

    def note_browser_offer(self, offer: SessionDescription) -> None:
        """Remember which browser payload type stands for which SIP format (offer order)."""
        section = video_section(offer)
        if section is not None:
            self._pairs = list(zip(section.codecs(), self.offered))

    def settle_browser_answer(self, browser: Optional[BrowserVideo],
                              sip_offer: SessionDescription) -> Optional[VideoAnswer]:
        """The browser kept video (``browser``) or not (None): the SIP answer's video, or
        None to reject it (then :meth:`reject`).  A browser that answers video ``inactive``
        (the Web SDK's "answer without video") declines it too; ``recvonly`` (watch only)
        and ``sendonly`` are kept and answered toward SIP the same way round."""
        if browser is None or browser.direction == "inactive":
            return None
        pair = next(((b, s) for b, s in self._pairs if b.payload_type == browser.codec.payload_type),
                    None)
        media = sip_video(sip_offer)
        if pair is None or media is None:
            return None
        self.browser_codec = browser.codec
        self.browser_direction = browser.direction
        self.browser_feedback = browser.feedback
        self.browser_ssrc = browser.ssrc
        if browser.kbps:
            self.kbps = min(self.kbps, browser.kbps)
        sip_offered = pair[1]
        self.sip_codec = video_answer_codec(sip_offered, browser.codec)
        self.sip_feedback = frozenset(
            fb for fb in rtcp_feedback(media, sip_offered.payload_type)
            if fb in VIDEO_RTCP_FB or fb == "ccm tmmbr")
        self.retarget(sip_offer)
        # The browser receives only (recvonly): we only receive from SIP, and vice versa.
        direction = {"recvonly": "recvonly", "sendonly": "sendonly"}.get(browser.direction,
                                                                         "sendrecv")
        return VideoAnswer(self.sip_codec, self.rtp.port, self.kbps, direction)

    # -- handed: our browser offer -> browser answer -> SIP offer -> SIP answer --------------

    @classmethod
    def handed(cls, env: Any, call_id: str) -> Optional["VideoPath"]:
        """A path for a call handed to a browser over REST (``sessionId``, ``hasVideo``):
        the browser is offered :data:`HANDED_VIDEO_OFFER` (as ``[codecs] video`` orders and
        filters it); None when that leaves nothing."""
        codecs = select_video_codecs(list(HANDED_VIDEO_OFFER), video_codec_names(env))
        if not codecs:
            return None
        path = cls(env, call_id)
        path.offered = codecs
        return path

    def settle_handed_answer(self, browser: Optional[BrowserVideo], taken: set[int]) -> bool:
        """The browser answered our offer of a handed call: its video format becomes the
        one format of the INVITE's m=video (its payload type, unless the SIP offer's audio
        uses it: ``taken``), after which the path goes on as an outbound one
        (:meth:`sip_offer_media`, :meth:`settle_sip_answer`).  False when the browser
        declined video (rejected, ``a=inactive``, no format of ours): the caller then
        closes the path and places an audio-only call."""
        if browser is None or browser.direction == "inactive":
            return False
        codec = browser.codec
        if codec.payload_type is None:
            return False
        sip = codec
        if codec.payload_type in taken:
            sip = codec.with_payload_type(next(pt for pt in range(96, 128) if pt not in taken))
        self._pairs = [(codec, sip)]
        self.offered = [sip]
        self.browser_ssrc = browser.ssrc
        self.browser_direction = browser.direction
        self.browser_feedback = frozenset(fb for fb in browser.feedback if fb in VIDEO_RTCP_FB)
        if browser.kbps:
            self.kbps = min(self.kbps, browser.kbps)
        return True

    # -- media ------------------------------------------------------------------------------

    def start(self, leg: Any, now: float) -> VideoRelay:
        """Both legs agreed: build the relay between ``leg`` and the SIP video socket (the
        call's MediaSession feeds it their packets).  Key frames are asked of both senders as
        soon as each one's first packet arrives."""
        assert self.sip_codec is not None and self.browser_codec is not None
        assert self.sip_codec.payload_type is not None and self.browser_codec.payload_type is not None
        relay = self.relay = VideoRelay(
            webrtc=VideoLeg(self.browser_codec.payload_type, self.browser_feedback),
            sip=VideoLeg(self.sip_codec.payload_type, self.sip_feedback, self.sip_also_receive),
            webrtc_ssrc=self.webrtc_ssrc, sip_ssrc=self.sip_ssrc,
            send_to_webrtc=leg.send_rtp, send_to_sip=self.rtp.send_rtp,
            send_rtcp_to_webrtc=leg.send_rtcp, send_rtcp_to_sip=self.rtp.send_rtcp,
            cname=f"wcsgw-{self.call_id}", now=now, kbps=self.kbps,
            browser_ssrc=self.browser_ssrc, wall_offset=self.env.clock.wall_offset(),
        )
        relay.on_keyframe_request = self._keyframe_requested
        relay.request_keyframes_on_first_packet()
        log.info("call {call_id}: video relay {webrtc} pt {wpt} <-> {sip} pt {spt}, {kbps} kbit/s",
                 call_id=self.call_id, webrtc=self.browser_codec.rtpmap,
                 wpt=self.browser_codec.payload_type, sip=self.sip_codec.rtpmap,
                 spt=self.sip_codec.payload_type, kbps=self.kbps)
        return relay

    def retarget(self, sd: SessionDescription, signalling: Iterable[str] | None = None) -> None:
        """Point the SIP video socket at the address/port the SIP SDP names, latched like
        the audio (only that IP or ``signalling``'s, where the SDP's SIP message came from;
        None: the last ones given); a new address (re-INVITE, transfer) gets a key-frame
        request each way once media flows."""
        if signalling is not None:
            self.signalling = tuple(signalling)
        media = sip_video(sd)
        if media is None or media.rejected or self._closed:
            return
        connection = sd.connection_for(media)
        if connection is None:
            return
        target = (sendable(connection.address, self.rtp.host), media.port)
        changed = self.rtp.remote_rtp is not None and self.rtp.rtp_latch.sdp_address != target
        self.rtp.set_remote(target[0], media.port, media.rtcp or media.port + 1,
                            signalling=self.signalling)
        if changed and self.relay is not None:
            self.relay.request_keyframes(self.env.reactor.seconds())

    def set_hold(self, local: bool, held: bool) -> None:
        """Hold (``local``: by us; ``held``: by either side).  The browser's video is not
        forwarded while we hold or while the SIP side does not receive video; when the call
        resumes both senders are asked for a key frame (their decoders start afresh)."""
        resumed = self._held and not held
        self._local_hold, self._held = local, held
        self._apply_pause()
        if resumed and self.relay is not None:
            self.relay.request_keyframes(self.env.reactor.seconds())

    def _apply_pause(self) -> None:
        if self.relay is not None:
            self.relay.paused_to_sip = self._local_hold or not self._sip_receives

    def answer_reoffer(self, offer: SessionDescription, direction_wanted: str
                       ) -> tuple[Optional[MediaDescription], bool]:
        """A SIP re-offer: our answer's video m-line (None: the offer has no video m-line)
        and whether the SIP side still receives our video.  A re-offer that drops our codec or
        rejects video gets video rejected (the relay stays idle)."""
        media = sip_video(offer)
        if media is None:
            return None, True
        if media.rejected or self.sip_codec is None or self.rejected:
            return rejected_like(media), True
        same = next((c for c in media.codecs() if same_video_codec(c, self.sip_codec)), None)
        if same is None or media.proto.upper() not in PLAIN_RTP_PROTOS:
            return rejected_like(media), True
        feedback = rtcp_feedback(media, same.payload_type)
        if same.payload_type != self.sip_codec.payload_type and self.relay is not None:
            self.relay.set_sip_payload_type(same.payload_type, feedback)  # type: ignore[arg-type]
        self.sip_codec = video_answer_codec(same, self.sip_codec)
        offered = offer.direction_for(media)
        self._sip_receives = offered in ("sendrecv", "recvonly")
        self._apply_pause()
        self.retarget(offer)
        answer = video_media(self.rtp.port, [self.sip_codec],
                             answer_direction(offered, combined_direction(direction_wanted,
                                                                self.browser_direction)),
                             kbps=self.kbps,
                             proto=media.proto,
                             feedback=[fb for fb in VIDEO_RTCP_FB if fb in feedback])
        return answer, self._sip_receives

    def describe(self) -> Optional[dict[str, Any]]:
        """The ``media.video`` part of the call object (None until both sides agreed)."""
        if not self.ready or self.browser_codec is None or self.sip_codec is None:
            return None
        return {
            "webrtcCodec": self.browser_codec.rtpmap,
            "sipCodec": self.sip_codec.rtpmap,
            "webrtcPayloadType": self.browser_codec.payload_type,
            "sipPayloadType": self.sip_codec.payload_type,
            "kbps": self.kbps,
        }

    def close(self) -> None:
        """Release the SIP video socket (its ports go back to the allocator)."""
        if not self._closed:
            self._closed = True
            self.relay = None
            self.rtp.close()

