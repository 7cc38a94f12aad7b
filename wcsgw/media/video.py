"""The per-call video relay between the WebRTC leg and the SIP leg (sans-IO).

Video is relayed, never decoded: both legs carry the same codec (VP8, or H.264 with the same
profile and packetization-mode) on a 90 kHz clock, so a packet only gets a new header — the
other leg's payload type, our SSRC toward that leg, sequence and timestamp mapped by
:class:`~wcsgw.media.stream.OutboundStream` (continuous when the source changes SSRC, e.g. a
PBX switching media) — and the marker bit is kept as it came, because for video it means
"last packet of a frame", not "talkspurt start".

RTCP is terminated per leg, like audio (an :class:`~wcsgw.media.reporter.RtcpReporter` for each
leg's video stream), except the feedback a relay must pass on:

* **Key-frame requests.**  A PLI or FIR from one leg about our stream becomes a request to
  the *sender* on the other leg (about its SSRC, as we receive it), as PLI — or FIR with our
  own command sequence numbers when that peer negotiated ``ccm fir`` but not ``nack pli``.
  Requests are throttled to one per :data:`KEYFRAME_INTERVAL` per direction (a decoder asks
  for every broken frame; one key frame answers them all).  The relay asks on its own too
  (:meth:`VideoRelay.request_keyframes`): when the path starts, when the SIP side re-targets
  and on unhold, so the receiver does not wait for the encoder's next periodic key frame.
  A request made before the sender's SSRC is known waits for its first packet.
* **Bit rate.**  REMB from the browser (what it can receive) is forwarded to the SIP sender
  when the SIP side negotiated ``goog-remb``, else turned into TMMBR when it negotiated
  ``ccm tmmbr``, else kept (stats only).  Toward the browser the relay *generates* REMB every
  report tick (:meth:`VideoRelay.make_rtcp_for_webrtc`): the SIP side's b=AS, lowered by any
  REMB or TMMBR the SIP side sends — Chrome without transport-cc feedback otherwise starts low
  and climbs slowly.  A TMMBR from the SIP side is answered with TMMBN (RFC 5104 §4.2.2).
* **NACK** (generic, RTPFB FMT 1) is dropped and counted: sequence numbers are rewritten and
  we keep no packet history, so it cannot be answered or translated faithfully; the SDP never
  negotiates plain ``nack``, so browsers do not send it.

Time ``now`` is wall-clock seconds (``reactor.seconds()``), as for RTCP SR.

The per-packet header rewrite, one way, is :class:`~wcsgw.media.videodirection.VideoDirection`;
this module holds the relay's two directions together with the feedback above.
"""

from __future__ import annotations

import random
from typing import Callable, Iterable, Optional

import attrs

from wcsgw.media.reporter import RtcpReporter
from wcsgw.media.rtcp import Feedback, ReceiverReport, RtcpError, SenderReport, parse_rtcp
from wcsgw.media.rtcpfb import (
    build_fir,
    build_pli,
    build_remb,
    build_tmmbn,
    build_tmmbr,
    parse_remb,
    parse_tmmb,
)
from wcsgw.media.videodirection import Send, VideoDirection

__all__ = ["KEYFRAME_INTERVAL", "VideoLeg", "VideoRelay", "WEBRTC", "SIP"]

WEBRTC = "webrtc"
SIP = "sip"

#: At most one key-frame request per direction in this many seconds.
KEYFRAME_INTERVAL = 0.5


@attrs.define
class VideoLeg:
    """One leg's side of the video path: the payload type it uses for the relayed codec, the
    RTCP feedback it negotiated (``{"nack pli", "ccm fir", "goog-remb", "ccm tmmbr"}``), and
    further payload types it may *send* the same stream with.

    Why ``also_receive``: when we offered a SIP peer several formats of one codec (Chromium
    offers H.264 under six numbers), RFC 3264 lets it send with any offered number it finds
    compatible — baresip answers 116 yet sends 102, the first H.264 of the offer — and the
    bitstream is the same, so those numbers are relayed too."""

    payload_type: int
    feedback: frozenset[str] = frozenset({"nack pli", "ccm fir", "goog-remb"})
    also_receive: frozenset[int] = frozenset()

    @property
    def keyframe_by_fir(self) -> bool:
        return "ccm fir" in self.feedback and "nack pli" not in self.feedback


class VideoRelay:
    """Relays one call's video both ways and the feedback that goes with it.

    ``webrtc`` / ``sip`` describe the legs (payload type of the relayed codec on that leg,
    negotiated feedback); ``webrtc_ssrc`` / ``sip_ssrc`` are *our* SSRCs toward each leg
    (the browser's answer/offer named ``webrtc_ssrc`` in ``a=ssrc``).  The four callables
    send RTP and RTCP out of each leg.  ``kbps`` is the bit rate the browser is asked to keep
    to (the SIP side's b=AS), ``browser_ssrc`` the browser's video SSRC when its SDP said it.
    ``now`` is the owner's monotonic clock and ``wall_offset`` the wall-clock time minus it,
    for the RTCP NTP timestamps (:class:`~wcsgw.media.reporter.RtcpReporter`).
    """

    def __init__(
        self,
        *,
        webrtc: VideoLeg,
        sip: VideoLeg,
        webrtc_ssrc: int,
        sip_ssrc: int,
        send_to_webrtc: Send,
        send_to_sip: Send,
        send_rtcp_to_webrtc: Send,
        send_rtcp_to_sip: Send,
        cname: str,
        now: float,
        kbps: int = 1000,
        browser_ssrc: Optional[int] = None,
        rng: Optional[random.Random] = None,
        wall_offset: float = 0.0,
    ) -> None:
        rng = rng or random.Random()
        self.webrtc = webrtc
        self.sip = sip
        self._w2s = VideoDirection(webrtc.payload_type, sip.payload_type, sip_ssrc, send_to_sip, rng)
        self._s2w = VideoDirection(sip.payload_type, webrtc.payload_type, webrtc_ssrc, send_to_webrtc,
                               rng, sip.also_receive)
        self._send_rtcp = {WEBRTC: send_rtcp_to_webrtc, SIP: send_rtcp_to_sip}
        # The reporter of a leg describes what we send it and what it sends us.
        self.rtcp = {
            # Every ~1 s toward the browser: these reports carry the REMB (Chrome reads it as
            # its receiver's estimate; 5 s would leave it at its start rate for long).
            WEBRTC: RtcpReporter(self._s2w.outbound, self._w2s.inbound, cname, now=now,
                                 interval=1.0, rng=rng, wall_offset=wall_offset),
            SIP: RtcpReporter(self._w2s.outbound, self._s2w.inbound, cname, now=now, rng=rng,
                              wall_offset=wall_offset),
        }
        self.browser_ssrc = browser_ssrc
        #: the bit rate (bit/s) the browser is told to keep to: the SIP side's b=AS ...
        self.max_bitrate = kbps * 1000
        #: ... lowered by what the SIP side's own REMB/TMMBR said, if it sent any
        self.sip_bitrate: Optional[int] = None
        #: the browser's last REMB (what it can receive), bit/s
        self.browser_bitrate: Optional[int] = None
        self._fir_seq = {WEBRTC: 0, SIP: 0}
        self._last_keyframe_request = {WEBRTC: -1e9, SIP: -1e9}
        self._pending_keyframe = {WEBRTC: False, SIP: False}
        #: counters: key-frame requests received from each leg, sent to each leg; NACKs dropped
        self.keyframe_requests_from = {WEBRTC: 0, SIP: 0}
        self.keyframe_requests_to = {WEBRTC: 0, SIP: 0}
        self.nacks_dropped = 0
        self.remb_forwarded = 0
        self.tmmbr_sent = 0
        #: called ``(leg, now, forced)`` after each key-frame request to a leg went out (the
        #: call layer adds SIP INFO fast update for SIP peers without RTCP feedback)
        self.on_keyframe_request: Optional[Callable[[str, float, bool], None]] = None

    # -- RTP ---------------------------------------------------------------------------------

    @property
    def video_ssrcs(self) -> tuple[int, int]:
        """Our SSRCs toward the browser and toward the SIP side."""
        return self._s2w.outbound.ssrc, self._w2s.outbound.ssrc

    def is_video(self, payload_type: int) -> bool:
        """Whether a browser packet of this payload type belongs to the video path."""
        return payload_type == self.webrtc.payload_type

    def claims_rtcp(self, packet: bytes) -> bool:
        """Whether a browser RTCP compound is about video (BUNDLE: audio's and video's share
        the socket): sent by its video SSRC, feedback about our video SSRC (PLI, FIR, NACK)
        or a REMB, or report blocks about our video."""
        try:
            parts = parse_rtcp(packet)
        except RtcpError:
            return False
        ours = self.video_ssrcs[0]
        theirs = self.browser_ssrc
        for part in parts:
            if isinstance(part, (SenderReport, ReceiverReport)):
                if theirs is not None and part.ssrc == theirs:
                    return True
                if any(block.ssrc == ours for block in part.reports):
                    return True
            elif isinstance(part, Feedback):
                if part.media_ssrc == ours or part.is_remb or part.is_fir:
                    return True
        return False

    def from_webrtc(self, packet: bytes, now: float) -> None:
        d = self._w2s
        first = d.packets == 0
        d.handle(packet, now)
        if first and d.packets:
            self.browser_ssrc = d.inbound.ssrc
            self._flush_pending(WEBRTC, now)

    def from_sip(self, packet: bytes, now: float) -> None:
        d = self._s2w
        first = d.packets == 0
        d.handle(packet, now)
        if first and d.packets:
            self._flush_pending(SIP, now)

    @property
    def paused_to_sip(self) -> bool:
        return self._w2s.paused

    @paused_to_sip.setter
    def paused_to_sip(self, value: bool) -> None:
        self._w2s.paused = value

    @property
    def paused_to_webrtc(self) -> bool:
        return self._s2w.paused

    @paused_to_webrtc.setter
    def paused_to_webrtc(self, value: bool) -> None:
        self._s2w.paused = value

    def set_sip_payload_type(self, payload_type: int, feedback: Optional[Iterable[str]] = None) -> None:
        """The SIP side re-negotiated (re-INVITE, transfer): its number for the same codec."""
        self.sip = VideoLeg(payload_type, frozenset(feedback) if feedback is not None
                            else self.sip.feedback, self.sip.also_receive)
        self._w2s.pt_out = payload_type
        self._s2w.pt_in = payload_type
        self._s2w.pts_in = frozenset({payload_type}) | self.sip.also_receive

    # -- key frames --------------------------------------------------------------------------

    def _sender_ssrc(self, leg: str) -> Optional[int]:
        """The SSRC the sender on ``leg`` uses, as we receive it."""
        if leg == WEBRTC:
            return self._w2s.inbound.ssrc or self.browser_ssrc
        return self._s2w.inbound.ssrc

    def request_keyframe(self, leg: str, now: float, *, force: bool = False) -> bool:
        """Ask the sender on ``leg`` for a key frame (PLI, or FIR if that is all it takes).

        Throttled to one per :data:`KEYFRAME_INTERVAL` unless ``force``; remembered and sent
        with its first packet when its SSRC is not known yet.  True when a request went out.
        """
        target = self._sender_ssrc(leg)
        if target is None:
            self._pending_keyframe[leg] = True
            return False
        if not force and now - self._last_keyframe_request[leg] < KEYFRAME_INTERVAL:
            return False
        self._last_keyframe_request[leg] = now
        self._pending_keyframe[leg] = False
        ours = self.rtcp[leg].outbound.ssrc
        peer = self.webrtc if leg == WEBRTC else self.sip
        if peer.keyframe_by_fir:
            self._fir_seq[leg] = (self._fir_seq[leg] + 1) & 0xFF
            packet = build_fir(ours, target, self._fir_seq[leg])
        else:
            packet = build_pli(ours, target)
        self.keyframe_requests_to[leg] += 1
        self._send_rtcp[leg](self._compound(leg, packet, now))
        if self.on_keyframe_request is not None:
            self.on_keyframe_request(leg, now, force)
        return True

    def request_keyframes(self, now: float) -> None:
        """Ask both senders for a key frame now (path start, re-target, unhold)."""
        self.request_keyframe(WEBRTC, now, force=True)
        self.request_keyframe(SIP, now, force=True)

    def request_keyframes_on_first_packet(self) -> None:
        """Ask each sender for a key frame with its first packet (the path just started: the
        browser's transport may not even be up, so a request now could not be sent)."""
        self._pending_keyframe[WEBRTC] = self._pending_keyframe[SIP] = True

    def _flush_pending(self, leg: str, now: float) -> None:
        if self._pending_keyframe[leg]:
            self.request_keyframe(leg, now, force=True)

    def _compound(self, leg: str, feedback: bytes, now: float) -> bytes:
        """Feedback as RFC 4585 wants it outside reduced-size RTCP: after an RR/SR + SDES.
        Both legs take compound packets (RFC 5506 reduced-size is optional for the peer)."""
        return self.rtcp[leg].make(now) + feedback

    # -- RTCP in -----------------------------------------------------------------------------

    def rtcp_from_webrtc(self, packet: bytes, now: float) -> None:
        """The browser's RTCP: reports are read, PLI/FIR asked of the SIP sender, REMB
        passed on as the SIP side negotiated, NACK dropped."""
        for part in self._receive(WEBRTC, packet, now):
            if part.is_pli or part.is_fir:
                self.keyframe_requests_from[WEBRTC] += 1
                self.request_keyframe(SIP, now)
            elif part.is_remb:
                remb = parse_remb(part)
                if remb is not None:
                    self.browser_bitrate = remb[0]
                    self._bitrate_to_sip(remb[0], now)
            elif part.is_nack:
                self.nacks_dropped += 1

    def rtcp_from_sip(self, packet: bytes, now: float) -> None:
        """The SIP side's RTCP: PLI/FIR asked of the browser, REMB/TMMBR lower the rate the
        browser is told (TMMBR answered with TMMBN), NACK dropped."""
        for part in self._receive(SIP, packet, now):
            if part.is_pli or part.is_fir:
                self.keyframe_requests_from[SIP] += 1
                self.request_keyframe(WEBRTC, now)
            elif part.is_remb:
                remb = parse_remb(part)
                if remb is not None:
                    self.sip_bitrate = remb[0]
            elif part.is_tmmbr:
                ours = self._w2s.outbound.ssrc
                entries = [e for e in parse_tmmb(part) if e[0] == ours]
                if entries:
                    self.sip_bitrate = entries[0][1]
                    self._send_rtcp[SIP](self._compound(
                        SIP, build_tmmbn(ours, [(ours, entries[0][1], entries[0][2])]), now))
            elif part.is_nack:
                self.nacks_dropped += 1

    def _receive(self, leg: str, packet: bytes, now: float) -> list[Feedback]:
        try:
            parts = parse_rtcp(packet)
        except RtcpError:
            return []
        self.rtcp[leg].receive(packet, now)
        return [p for p in parts if isinstance(p, Feedback)]

    def _bitrate_to_sip(self, bitrate: int, now: float) -> None:
        target = self._s2w.inbound.ssrc
        if target is None:
            return
        ours = self._w2s.outbound.ssrc
        if "goog-remb" in self.sip.feedback:
            self.remb_forwarded += 1
            self._send_rtcp[SIP](self._compound(SIP, build_remb(ours, bitrate, [target]), now))
        elif "ccm tmmbr" in self.sip.feedback:
            self.tmmbr_sent += 1
            self._send_rtcp[SIP](self._compound(SIP, build_tmmbr(ours, target, bitrate), now))

    # -- RTCP out ----------------------------------------------------------------------------

    @property
    def browser_target_bitrate(self) -> int:
        """What the browser is told to send at: b=AS, or less if the SIP side asked for less."""
        if self.sip_bitrate is not None:
            return min(self.max_bitrate, self.sip_bitrate)
        return self.max_bitrate

    def make_rtcp_for_webrtc(self, now: float) -> list[bytes]:
        """SR/RR + SDES about the browser's video, with REMB when the browser negotiated it."""
        packet = self.rtcp[WEBRTC].make(now)
        target = self._sender_ssrc(WEBRTC)
        if "goog-remb" in self.webrtc.feedback and target is not None:
            packet += build_remb(self._s2w.outbound.ssrc, self.browser_target_bitrate, [target])
        return [packet]

    def make_rtcp_for_sip(self, now: float) -> list[bytes]:
        return [self.rtcp[SIP].make(now)]

    # -- stats -------------------------------------------------------------------------------

    def inactive_for(self, now: float) -> float:
        """Seconds since the last video packet from either side (inf: none yet)."""
        times = [t for t in (self._w2s.last_packet_at, self._s2w.last_packet_at) if t is not None]
        return now - max(times) if times else float("inf")

    def stats(self) -> dict[str, dict[str, object]]:
        """Per leg: packets received from it and sent to it, and the feedback counts."""
        out: dict[str, dict[str, object]] = {}
        for leg, d_in, d_out in ((WEBRTC, self._w2s, self._s2w), (SIP, self._s2w, self._w2s)):
            rtt = self.rtcp[leg].rtt
            out[leg] = {
                "packets_received": d_in.packets,
                "packets_lost": d_in.inbound.cumulative_lost,
                "packets_sent": d_out.outbound.packets_sent,
                "octets_sent": d_out.outbound.octets_sent,
                "dropped": d_in.dropped,
                "malformed": d_in.malformed,
                "keyframe_requests_received": self.keyframe_requests_from[leg],
                "keyframe_requests_sent": self.keyframe_requests_to[leg],
                "rtt_ms": None if rtt is None else 1000.0 * rtt,
            }
        out[WEBRTC]["remb_bitrate"] = self.browser_bitrate
        out[SIP]["remb_bitrate"] = self.sip_bitrate
        return out
