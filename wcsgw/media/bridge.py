"""The per-call media bridge between the WebRTC leg and the SIP leg (sans-IO).

Packets come in through :meth:`MediaBridge.from_webrtc` / :meth:`MediaBridge.from_sip` with the
time they arrived, and leave through the two callables given at construction. Nothing here
touches a socket or a clock, so every rule is a fast unit test.

Two modes, chosen when the call's codecs are known:

``relay``
    Both legs negotiated the same codec (the normal case: G.711 or Opus on both sides). The
    payload is never decoded: each packet gets a new header — our SSRC toward that leg, sequence
    and timestamp mapped by :class:`~wcsgw.media.stream.OutboundStream` (continuous across
    source changes), the other leg's payload type — and that is all. This path runs for every
    packet (50/s per direction per call), so it is a struct unpack, a few integer operations
    and one pack + slice.

``transcode``
    The legs share no codec: any browser codec (Opus, PCMU, PCMA) against any SIP codec
    (PCMU, PCMA, G.729, Speex, Opus, G.722). Each direction is a
    :class:`~wcsgw.media.pipe.Pipe`: a zero-delay reorder buffer
    (:mod:`wcsgw.media.jitter`), decode with loss concealment, resample, re-packetize to the
    target leg's ptime (:attr:`LegMedia.ptime`), encode. The pipe owns the outgoing timestamps
    (each packet's first sample, derived from the input timestamps, so concealment fills a
    loss and silence stays a gap); sequence numbers are the bridge's own, one per packet sent.
    A gap in the incoming sequence makes later packets wait (at most 2 x jitter, 10..80 ms)
    for the missing one; the owner runs :meth:`MediaBridge.poll` at
    :meth:`MediaBridge.next_deadline`, and learns of a new, earlier deadline through
    :attr:`MediaBridge.on_deadline`.

In both modes telephone-event packets (RFC 4733 DTMF) cross as events: same stream, payload
type mapped, timestamp re-based onto the outgoing clock, and — when the clocks differ — the
event duration field rescaled too (it is in timestamp units). They are never transcoded.
Packets of any other payload type (comfort noise, RED, a codec the other leg did not agree to)
are dropped and counted.

DTMF of our own (:mod:`wcsgw.media.dtmfgenerator`): :meth:`MediaBridge.send_dtmf_to_sip` (and
``_to_webrtc``) puts generated event packets *into* the outgoing stream of that leg — our SSRC,
the next sequence numbers, event timestamps read off the stream's clock — so the far end sees
one continuous stream. While an event is on the air the audio toward that leg is held back
(received, counted, decoded when transcoding, not sent), and the audio that follows is
numbered right after our last event packet. The owner drives the 50 ms cadence with
:meth:`MediaBridge.next_deadline` / :meth:`MediaBridge.poll`. Events received from either leg
go through a :class:`~wcsgw.media.dtmfdetector.DtmfDetector`; the SIP side's digits are reported
through ``on_dtmf_from_sip`` (once per key press) and still forwarded to the browser.

RTCP is terminated per leg by one :class:`~wcsgw.media.reporter.RtcpReporter` each; incoming RTCP
(``rtcp_from_*``) is consumed, never forwarded. The sockets tell RTCP muxed on the RTP port
apart (RFC 5761) before the bridge sees it, so the RTP path does not test for it again.

Where the parts live: the per-packet work of each direction (and its timers, and the digits
we send) in :mod:`wcsgw.media.direction`, what a leg negotiated (:class:`LegMedia`,
:func:`choose_mode`) in :mod:`wcsgw.media.legmedia`, both re-exported here, the bridge's one
face; the RTCP methods the bridge inherits in :mod:`wcsgw.media.bridgertcp`, the figures of
:meth:`MediaBridge.stats` in :mod:`wcsgw.media.bridgestats`.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Callable

import attrs

from wcsgw.media.bridgertcp import BridgeRtcp
from wcsgw.media.bridgestats import LegStats, leg_stats
from wcsgw.media.direction import Direction, OnDigit, Send
from wcsgw.media.dtmf import DtmfError
from wcsgw.media.dtmfgenerator import DtmfGenerator
from wcsgw.media.legmedia import (
    CLOCK_RATES,
    RELAY,
    SIP,
    TRANSCODABLE,
    TRANSCODE,
    WEBRTC,
    LegMedia,
    check_mode,
    choose_mode,
)
from wcsgw.media.recordtap import Tap
from wcsgw.media.reporter import RtcpReporter
from wcsgw.media.stream import InboundStream, OutboundStream

if TYPE_CHECKING:  # numpy and the codecs: a transcoded call's, not every start's (issue 19)
    from wcsgw.media.transcode import Transcoder

__all__ = [
    "WEBRTC",
    "SIP",
    "RELAY",
    "TRANSCODE",
    "CLOCK_RATES",
    "TRANSCODABLE",
    "DtmfError",
    "BridgeSettings",
    "LegMedia",
    "MediaBridge",
    "choose_mode",
]

OnDeadline = Callable[[float], None]

#: the report intervals' randomness when the settings bring none: one for every bridge (a
#: Mersenne Twister's state is ~2.5 kB; RTCP jitter needs no stream of its own per call)
_RNG = random.Random()
#: the random CNAMEs: one for every bridge, for the same reason
_SYSRNG = random.SystemRandom()


@attrs.frozen
class BridgeSettings:
    """How a bridge behaves, apart from what it connects (the two legs and their sends).

    ``mode``: ``relay`` or ``transcode`` (None: :func:`choose_mode`); ``cname``: the RTCP
    CNAME on both legs (None: a random one); ``rtcp_interval``: seconds between reports
    (RFC 3550 §6.2's fixed minimum for small sessions); ``dtmf_duration``/``dtmf_gap``: the
    shape of the digits we send (:class:`~wcsgw.media.dtmfgenerator.DtmfGenerator`); ``wall_offset``:
    wall-clock seconds since the epoch minus the bridge's ``now`` (a monotonic clock), for the
    NTP timestamps of RTCP (see :class:`~wcsgw.media.reporter.RtcpReporter`); ``rng``: the
    randomness of the report intervals (tests give a seeded one)."""

    mode: str | None = None
    cname: str | None = None
    rtcp_interval: float = 5.0
    dtmf_duration: float = 0.1
    dtmf_gap: float = 0.07
    wall_offset: float = 0.0
    rng: random.Random | None = attrs.field(default=None, eq=False)


class MediaBridge(BridgeRtcp):
    """One call's media between the WebRTC leg and the SIP leg.

    ``webrtc``/``sip`` say what each leg negotiated; ``send_to_webrtc``/``send_to_sip`` take
    the RTP packets for each leg. ``now`` (the owner's monotonic clock) at construction starts
    the inactivity clocks; None starts them at the first :meth:`inactive_for` call (or when
    :attr:`started_at` is set), so a bridge built before media can flow is not already
    "inactive". Everything else is in ``settings``.

    The per-packet entry points are :attr:`from_webrtc` and :attr:`from_sip` ``(packet,
    now)``: an RTP packet (SRTP already removed) from that leg, RTCP already told apart by the
    socket (an 8-byte empty RR, which no RTP packet can be, is still consumed). Callbacks
    are attributes, set after construction: :attr:`on_deadline`, :attr:`on_dtmf_from_sip`,
    :attr:`on_dtmf_from_webrtc`, and ``send_rtcp_to_webrtc`` / ``send_rtcp_to_sip`` for
    :meth:`poll_rtcp` (without them the owner pulls reports with :meth:`make_rtcp` when
    :meth:`rtcp_due` says so).
    """

    def __init__(
        self,
        webrtc: LegMedia,
        sip: LegMedia,
        send_to_webrtc: Send,
        send_to_sip: Send,
        *,
        now: float | None = None,
        settings: BridgeSettings = BridgeSettings(),
    ) -> None:
        start = 0.0 if now is None else now
        self.mode = mode = check_mode(webrtc, sip, settings.mode)
        self.webrtc = webrtc
        self.sip = sip
        rng = settings.rng or _RNG
        self.cname = settings.cname or f"wcsgw-{_SYSRNG.getrandbits(64):016x}"
        # Relayed packets keep the source's clock (scaled when the rates differ); transcoded
        # ones are stamped in the target clock by the transcoder already.
        relay = mode == RELAY
        self.to_webrtc = OutboundStream(
            webrtc.ssrc, webrtc.clock_rate, source_clock_rate=sip.clock_rate if relay else webrtc.clock_rate
        )
        self.to_sip = OutboundStream(
            sip.ssrc, sip.clock_rate, source_clock_rate=webrtc.clock_rate if relay else sip.clock_rate
        )
        from_webrtc_stats = InboundStream(webrtc.clock_rate)
        from_sip_stats = InboundStream(sip.clock_rate)
        self.rtcp: dict[str, RtcpReporter] = {
            side: RtcpReporter(
                out, inbound, self.cname, now=start, interval=settings.rtcp_interval, rng=rng,
                wall_offset=settings.wall_offset,
            )
            for side, out, inbound in (
                (WEBRTC, self.to_webrtc, from_webrtc_stats),
                (SIP, self.to_sip, from_sip_stats),
            )
        }
        self.send_rtcp_to_webrtc: Send | None = None
        self.send_rtcp_to_sip: Send | None = None
        self._w2s = Direction(
            WEBRTC, webrtc, sip, send_to_sip, from_webrtc_stats, self.to_sip, self.rtcp[WEBRTC], now
        )
        self._s2w = Direction(
            SIP, sip, webrtc, send_to_webrtc, from_sip_stats, self.to_webrtc, self.rtcp[SIP], now
        )
        self._started_at = now
        self._dtmf_duration = settings.dtmf_duration
        self._dtmf_gap = settings.dtmf_gap
        # refuse a bad shape now, not at the first digit
        DtmfGenerator(0, 8000, duration=self._dtmf_duration, gap=self._dtmf_gap)
        self.on_deadline: OnDeadline | None = None
        self._reported: float | None = None  # the last deadline the owner was told of
        self.transcoder: Transcoder | None = None
        if mode == TRANSCODE:
            from wcsgw.media.transcode import Transcoder

            self.transcoder = Transcoder(webrtc, sip)
            self._w2s.pipe = self.transcoder.w2s
            self._s2w.pipe = self.transcoder.s2w
            self._w2s.notify = self._s2w.notify = self._deadline_moved
        # The per-packet entry points are the directions' own handlers: a packet costs one
        # call, not two.
        self.from_webrtc: Callable[[bytes, float], None] = self._w2s.handle
        self.from_sip: Callable[[bytes, float], None] = self._s2w.handle

    @property
    def started_at(self) -> float | None:
        """When the inactivity clocks started (``now`` at construction, or set later)."""
        return self._started_at

    @started_at.setter
    def started_at(self, now: float) -> None:
        self._started_at = now
        for d in (self._w2s, self._s2w):
            if d.packets == 0:
                d.last_activity = now
        for reporter in self.rtcp.values():
            if reporter.reports_sent == 0:
                reporter.next_due = now + reporter.interval / 2

    @property
    def last_activity(self) -> dict[str, float | None]:
        """When RTP last arrived from each leg (the start time until the first packet)."""
        return {WEBRTC: self._w2s.last_activity, SIP: self._s2w.last_activity}

    @property
    def paused_to_sip(self) -> bool:
        """True while the browser's audio is not forwarded to the SIP side (local hold: the
        far end hears nothing of us); DTMF still goes through."""
        return self._w2s.muted

    @paused_to_sip.setter
    def paused_to_sip(self, value: bool) -> None:
        self._w2s.muted = value

    @property
    def dtmf_paused_to_sip(self) -> bool:
        """True while no RFC 4733 event goes to the SIP side either — neither the browser's
        nor :meth:`send_dtmf_to_sip`'s (which then raises DtmfError).  For remote hold: the far
        end offered sendonly/inactive, and events are media of that stream (RFC 3264 §6.1:
        the answerer MUST NOT send); local hold pauses the audio only."""
        return self._w2s.events_muted

    @dtmf_paused_to_sip.setter
    def dtmf_paused_to_sip(self, value: bool) -> None:
        self._w2s.events_muted = value
        generator = self._w2s.generator
        if value and generator is not None:
            # Our digits still queued are dropped (they would play into a hold, or long after
            # it, out of context).  The one on the air ends properly: its end packets go out
            # on its schedule (within duration + 2 intervals, 200 ms by default), so a far
            # end still listening stops the tone cleanly instead of waiting for its own
            # timeout (RFC 4733 §2.5.1.4); cutting it shorter would save at most one update.
            generator.cancel()

    def mark_active(self, now: float) -> None:
        """Restart the inactivity clocks (a call on hold may rightly be silent)."""
        self._w2s.last_activity = self._s2w.last_activity = now

    def inactive_for(self, now: float, side: str | None = None) -> float:
        """Seconds without RTP: from ``side``, or (default) the longer of the two silences —
        the figure behind "Failed by RTP activity". Only RTP (audio or events) counts; RTCP
        alone does not keep a call alive. The call layer pauses the check while on hold."""
        if self._started_at is None:
            self.started_at = now
        # (set by now: at construction, by started_at, or by a packet)
        webrtc, sip = self._w2s.last_activity, self._s2w.last_activity
        assert webrtc is not None and sip is not None
        if side == WEBRTC:
            return now - webrtc
        if side == SIP:
            return now - sip
        return now - min(webrtc, sip)

    # -- DTMF ------------------------------------------------------------------------------

    @property
    def on_dtmf_from_sip(self) -> OnDigit | None:
        """Called with each digit the SIP side sends as RFC 4733 events (relay and transcode
        alike; the packets still go on to the browser when it negotiated telephone-event)."""
        return self._s2w.on_digit

    @on_dtmf_from_sip.setter
    def on_dtmf_from_sip(self, callback: OnDigit | None) -> None:
        self._s2w.on_digit = callback

    @property
    def on_dtmf_from_webrtc(self) -> OnDigit | None:
        """Called with each digit the browser sends (RTCDTMFSender)."""
        return self._w2s.on_digit

    @on_dtmf_from_webrtc.setter
    def on_dtmf_from_webrtc(self, callback: OnDigit | None) -> None:
        self._w2s.on_digit = callback

    def send_dtmf_to_sip(self, digits: str, now: float) -> None:
        """Send ``digits`` to the SIP side as RFC 4733 events in our RTP stream toward it:
        its negotiated telephone-event payload type, our SSRC and next sequence numbers,
        timestamps from the stream's clock at each digit's start. The first packet goes out
        now; call :meth:`poll` at :meth:`next_deadline` for the rest. Digits sent while others
        play are queued behind them. :class:`~wcsgw.media.dtmf.DtmfError` (a ValueError) when
        the SIP side negotiated no telephone-event or a digit is not 0-9, *, #, A-D."""
        self._w2s.send_dtmf("the SIP side", digits, now, self._dtmf_duration, self._dtmf_gap)
        self._deadline_moved(now)

    def send_dtmf_to_webrtc(self, digits: str, now: float) -> None:
        """The same toward the browser (when it negotiated telephone-event)."""
        self._s2w.send_dtmf("the browser", digits, now, self._dtmf_duration, self._dtmf_gap)
        self._deadline_moved(now)

    def set_sip_payload_types(self, audio: int, telephone_event: int | None) -> None:
        """The SIP side renegotiated (a re-INVITE) the same codec under another payload type,
        and/or its telephone-event type (None: none any more). Both directions follow at once;
        DTMF we are sending continues under the new type, or stops if there is none."""
        for pt in (audio, telephone_event):
            if pt is not None and not 0 <= pt <= 127:
                raise ValueError(f"payload type {pt} out of range")
        self.sip = attrs.evolve(self.sip, payload_type=audio, telephone_event=telephone_event)
        event = -1 if telephone_event is None else telephone_event
        self._w2s.audio_out = audio
        self._w2s.event_out = event
        self._s2w.audio_in = audio
        self._s2w.event_in = event
        if self._w2s.generator is not None:
            if event < 0:
                self._w2s.generator.cancel()
            else:
                self._w2s.generator.payload_type = event

    @property
    def dtmf_sending(self) -> dict[str, str]:
        """Per leg, the digits still to be sent (the one on the air first); empty when idle."""
        return {SIP: self._w2s.own_digits, WEBRTC: self._s2w.own_digits}

    def next_deadline(self) -> float | None:
        """When :meth:`poll` must next be called (None: nothing pending): for DTMF we send,
        and when transcoding for packets waiting behind a gap (their wait expires)."""
        pending = [t for t in (self._w2s.next_deadline(), self._s2w.next_deadline()) if t is not None]
        return min(pending) if pending else None

    def poll(self, now: float) -> float | None:
        """Do what is due at ``now`` (DTMF packets; transcoding: conceal the packets that did
        not come in time and send what waited behind them); return the next deadline, which
        the owner arms a timer for (it counts as reported, see :attr:`on_deadline`)."""
        self._w2s.poll(now)
        self._s2w.poll(now)
        self._reported = deadline = self.next_deadline()
        return deadline

    #: :attr:`on_deadline` is called with the new deadline when one appears that is earlier
    #: than the last one the owner learnt of (from this callback or :meth:`poll`'s return
    #: value) — a packet arrived behind a gap and now waits, or DTMF started. The owner
    #: (re)arms its single timer for it and calls :meth:`poll` then. A deadline later than the
    #: armed one is not reported: the armed timer's :meth:`poll` returns it (unless the armed
    #: one is already past: then the new one is reported too). Never called from inside
    #: :meth:`poll`.

    def _deadline_moved(self, now: float) -> None:
        callback = self.on_deadline
        if callback is None:
            return
        deadline = self.next_deadline()
        reported = self._reported
        # (a reported deadline already past is one the owner's timer has served, or missed)
        if deadline is not None and (reported is None or deadline < reported or reported < now):
            self._reported = deadline
            callback(deadline)

    def flush(self, now: float) -> None:
        """Transcoding: send what the transcoder still holds (packets waiting behind a gap,
        the resampler's last few ms, a partial packet padded with silence) — at the end of a
        stream, before the owner stops feeding the bridge. Nothing to do when relaying."""
        self._w2s.flush(now)
        self._s2w.flush(now)

    def set_taps(self, from_webrtc: Tap | None, from_sip: Tap | None) -> None:
        """Recording (wcsgw.media.recordtap): each side's packets also go there; None: off."""
        self._w2s.tap, self._s2w.tap = from_webrtc, from_sip

    # -- stats -----------------------------------------------------------------------------

    def stats(self) -> dict[str, LegStats]:
        """Per leg: what we received from it and sent to it, and what RTCP told us."""
        return {WEBRTC: leg_stats(self._w2s, self._s2w), SIP: leg_stats(self._s2w, self._w2s)}
