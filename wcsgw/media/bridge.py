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
    :class:`~wcsgw.media.transcode.Pipe`: a zero-delay reorder buffer
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

DTMF of our own (:mod:`wcsgw.media.dtmf`): :meth:`MediaBridge.send_dtmf_to_sip` (and
``_to_webrtc``) puts generated event packets *into* the outgoing stream of that leg — our SSRC,
the next sequence numbers, event timestamps read off the stream's clock — so the far end sees
one continuous stream. While an event is on the air the audio toward that leg is held back
(received, counted, decoded when transcoding, not sent), and the audio that follows is
numbered right after our last event packet. The owner drives the 50 ms cadence with
:meth:`MediaBridge.next_deadline` / :meth:`MediaBridge.poll`. Events received from either leg
go through a :class:`~wcsgw.media.dtmf.DtmfDetector`; the SIP side's digits are reported
through ``on_dtmf_from_sip`` (once per key press) and still forwarded to the browser.

RTCP is terminated per leg by one :class:`~wcsgw.media.rtcp.RtcpReporter` each; incoming RTCP
(``rtcp_from_*``) is consumed, never forwarded. The sockets tell RTCP muxed on the RTP port
apart (RFC 5761) before the bridge sees it, so the RTP path does not test for it again.
"""

from __future__ import annotations

import random
from typing import Any, Callable, Iterable

import attrs

from wcsgw.media.dtmf import DtmfDetector, DtmfError, DtmfGenerator, DtmfPacket
from wcsgw.media.rtcp import RtcpReporter
from wcsgw.media.rtp import FIXED_HEADER, RtpError, parse_rtp, signed16
from wcsgw.media.stream import MAX_MISORDER, InboundStream, OutboundStream
from wcsgw.media.transcode import Output, Pipe, Transcoder

__all__ = [
    "WEBRTC",
    "SIP",
    "RELAY",
    "TRANSCODE",
    "DtmfError",
    "BridgeSettings",
    "LegMedia",
    "MediaBridge",
    "choose_mode",
]

WEBRTC = "webrtc"
SIP = "sip"
RELAY = "relay"
TRANSCODE = "transcode"

#: RTP clock rates of the codecs we know by name (RFC 3551, RFC 7587; G.722's is 8000 by
#: RFC 3551's famous exception). Speex has none by name: 8000 (nb) or 16000 (wb) must be given.
CLOCK_RATES = {"opus": 48000, "pcmu": 8000, "pcma": 8000, "g722": 8000, "g729": 8000}
#: Codecs the transcoder speaks (by lower-case rtpmap name); see wcsgw.media.audiocodec.
TRANSCODABLE = frozenset({"opus", "pcmu", "pcma", "g729", "speex", "g722"})

Send = Callable[[bytes], None]
OnDigit = Callable[[str], None]
OnDeadline = Callable[[float], None]

_unpack_from = FIXED_HEADER.unpack_from
_pack = FIXED_HEADER.pack


@attrs.frozen
class LegMedia:
    """What one leg negotiated, as plain names and numbers (no SDP types needed).

    ``codec`` is the encoding name as in ``a=rtpmap`` (``opus``, ``PCMU``, ``PCMA``; any case);
    ``telephone_event`` the payload type of ``telephone-event`` at the *same* clock rate as the
    codec (RFC 4733 §2.1), if negotiated; ``ssrc`` the SSRC we send on this leg (the one the
    SDP we gave this leg announces; random when None). ``event_rate`` is the
    ``telephone-event`` rate, the unit of event durations: the codec's clock rate unless the
    peer negotiated another (``opus/48000`` with ``telephone-event/8000`` is seen in the wild).

    Only the transcoder reads the last two: ``ptime`` is the packet time in ms this leg wants
    (SDP ``a=ptime``; the transcoder cuts its packets to it, rounded to the codec's frames),
    ``fmtp`` the leg's fmtp parameters for the codec (a dict, or the fmtp string), e.g.
    G.729 ``annexb=no`` or Opus ``useinbandfec=1``.
    """

    codec: str
    payload_type: int
    clock_rate: int = attrs.field(default=0)
    telephone_event: int | None = None
    ssrc: int | None = None
    event_rate: int = 0
    ptime: int = 20
    fmtp: Any = None

    @classmethod
    def from_codecs(cls, codecs: Iterable[Any], ssrc: int | None = None) -> "LegMedia":
        """From a leg's negotiated codec list (``wcsgw.sdp.codecs.Codec`` or anything with
        ``name``, ``clock_rate`` and ``payload_type``): the first audio codec, plus the
        telephone-event at that codec's clock rate if there is one."""
        audio = None
        events: dict[int, int] = {}
        for c in codecs:
            name = c.name.lower()
            if name == "telephone-event":
                events.setdefault(c.clock_rate, c.payload_type)
            elif name not in ("cn", "red", "rtx", "ulpfec") and audio is None:
                audio = c
        if audio is None:
            raise ValueError("no audio codec among the negotiated ones")
        return cls(
            audio.name,
            audio.payload_type,
            audio.clock_rate,
            events.get(audio.clock_rate),
            ssrc,
            fmtp=getattr(audio, "fmtp", None),
        )

    @classmethod
    def negotiated(
        cls, codec: Any, dtmf: Any = None, ssrc: int | None = None, ptime: int | None = None
    ) -> "LegMedia":
        """From the call layer's negotiated objects: ``codec`` and optional ``dtmf`` (anything
        with ``name``, ``clock_rate``, ``payload_type``, e.g. ``wcsgw.sdp`` Codec), our
        ``ssrc`` on this leg and the leg's ``a=ptime`` (None: 20; kept within 10..200 ms,
        whatever a peer's SDP says)."""
        return cls(
            codec.name,
            codec.payload_type,
            codec.clock_rate,
            None if dtmf is None else dtmf.payload_type,
            ssrc,
            0 if dtmf is None else (dtmf.clock_rate or 0),
            min(200, max(10, ptime or 20)),
            getattr(codec, "fmtp", None),
        )

    def __attrs_post_init__(self) -> None:
        if not self.clock_rate:
            rate = CLOCK_RATES.get(self.codec.lower())
            if rate is None:
                raise ValueError(f"clock rate of {self.codec!r} must be given")
            object.__setattr__(self, "clock_rate", rate)
        if not self.event_rate:
            object.__setattr__(self, "event_rate", self.clock_rate)
        if not 1 <= self.ptime <= 200:
            raise ValueError(f"ptime {self.ptime} ms out of range")
        for pt in (self.payload_type, self.telephone_event):
            if pt is not None and not 0 <= pt <= 127:
                raise ValueError(f"payload type {pt} out of range")


def choose_mode(webrtc: LegMedia, sip: LegMedia) -> str:
    """``relay`` when both legs use the same codec at the same rate, ``transcode`` when both
    codecs are ones the transcoder speaks (:data:`TRANSCODABLE`); ValueError for anything else.
    (Whether this machine has the codec's library is found when the bridge is built.)"""
    if webrtc.codec.lower() == sip.codec.lower() and webrtc.clock_rate == sip.clock_rate:
        return RELAY
    if webrtc.codec.lower() in TRANSCODABLE and sip.codec.lower() in TRANSCODABLE:
        return TRANSCODE
    raise ValueError(f"cannot bridge {webrtc.codec}/{webrtc.clock_rate} with {sip.codec}/{sip.clock_rate}")


class _Direction:
    """One way through the bridge: what arrives from one leg and goes out to the other."""

    __slots__ = (
        "name",
        "inbound",
        "outbound",
        "audio_in",
        "audio_out",
        "event_in",
        "event_out",
        "send",
        "pipe",
        "sseq",
        "notify",
        "reporter",
        "last_activity",
        "packets",
        "dropped",
        "malformed",
        "codec_errors",
        "events",
        "event_rate_out",
        "event_scale_num",
        "event_scale_den",
        "detector",
        "on_digit",
        "generator",
        "spliced",
        "resync",
        "resume_seq",
        "guard",
        "held_back",
        "dtmf_sent",
        "muted",
        "events_muted",
    )

    def __init__(
        self,
        name: str,
        src: LegMedia,
        dst: LegMedia,
        send: Send,
        inbound: InboundStream,
        outbound: OutboundStream,
        reporter: RtcpReporter,
        now: float | None,
    ) -> None:
        self.name = name
        self.inbound = inbound
        self.outbound = outbound
        self.reporter = reporter  # RTCP of the leg packets come *from*
        self.audio_in = src.payload_type
        self.audio_out = dst.payload_type
        # Events from the source are read (detected) whenever it negotiated them, and
        # forwarded when the other leg did too.
        self.event_in = -1 if src.telephone_event is None else src.telephone_event
        self.event_out = -1 if dst.telephone_event is None else dst.telephone_event
        self.send = send
        #: transcode mode: this direction's pipe (None: relay)
        self.pipe: Pipe | None = None
        self.sseq = 0  # transcode mode: our own count of packets sent (the mapping's "source")
        self.notify: Callable[[float], None] | None = None  # transcode mode: deadlines may have moved
        self.last_activity: float | None = now
        #: audio counted as activity but not forwarded (the far end is on hold by us)
        self.muted = False
        #: RFC 4733 events not forwarded nor generated either (the far end holds the call)
        self.events_muted = False
        self.packets = 0
        self.dropped = 0
        self.malformed = 0
        self.codec_errors = 0
        self.events = 0
        # DTMF: durations count in telephone-event units, which follow the event rates.
        self.event_rate_out = dst.event_rate
        self.event_scale_num = dst.event_rate
        self.event_scale_den = src.event_rate
        self.detector = DtmfDetector()
        self.on_digit: OnDigit | None = None
        self.generator: DtmfGenerator | None = None
        # Splicing our own event packets into the outgoing stream (see _resume):
        self.spliced = False  # the slow path is on: our events are (or were just) on the air
        self.resync = False  # the next source packet must be renumbered after our packets
        self.resume_seq = 0  # the source sequence number that resumed after our packets
        self.guard = 0  # while set, source packets from before resume_seq are stragglers
        self.held_back = 0  # source packets not sent because our event was on the air
        self.dtmf_sent = 0

    def handle(self, packet: bytes, now: float) -> None:
        if len(packet) < 12:
            if len(packet) >= 8 and 192 <= packet[1] <= 223:  # an empty RR is 8 bytes
                self.reporter.receive(packet, now)
            else:
                self.malformed += 1
            return
        b0, b1, seq, ts, ssrc = _unpack_from(packet)
        if b0 & 0xC0 != 0x80:
            self.malformed += 1
            return
        # (RTCP muxed on the RTP path was told apart by the socket, RFC 5761, and went to
        # rtcp_from_*: the test runs once per packet, there.)
        pt = b1 & 0x7F
        if pt == self.audio_in:
            self.last_activity = now
            self.packets += 1
            if self.pipe is None:
                # relay: header rewrite only
                if self.muted:
                    return
                if self.spliced and not self._admit_audio(packet, b0, seq, ts, ssrc, now):
                    return
                octets = len(packet) - 12 if b0 == 0x80 else _payload_length(packet)
                if octets < 0:
                    self.malformed += 1
                    return
                self.inbound.update(ssrc, seq, ts, now, octets)
                out = self.outbound
                oseq, ots, rebased = out.translate(ssrc, seq, ts, now, octets)
                self.send(
                    _pack(b0, (0x80 if rebased else (b1 & 0x80)) | self.audio_out, oseq, ots, out.ssrc)
                    + packet[12:]
                )
                return
            self._transcode(packet, b0, b1, seq, ts, ssrc, now)
        elif pt == self.event_in:
            self.last_activity = now
            self.packets += 1
            if self.events_muted:
                return
            self._event(packet, b0, b1, seq, ts, ssrc, now)
        else:
            self.dropped += 1
            if self.pipe is not None:  # comfort noise & co. still use sequence numbers
                self._emit(self.pipe.skip(seq, ts, now, ssrc), now)
                self.notify(now)  # type: ignore[misc]

    def _transcode(self, packet: bytes, b0: int, b1: int, seq: int, ts: int, ssrc: int, now: float) -> None:
        payload = _payload(packet, b0)
        if payload is None:
            self.malformed += 1
            return
        self.inbound.update(ssrc, seq, ts, now, len(payload))
        pipe = self.pipe
        if self.muted:
            # On hold by us: not decoded, but its number is accounted (not a loss later); the
            # audio from before the hold still in the transcoder goes out.
            self._emit(pipe.skip(seq, ts, now, ssrc), now, muted=False)  # type: ignore[union-attr]
            return
        self._emit(pipe.receive(seq, ts, payload, now, ssrc), now)  # type: ignore[union-attr]
        self.notify(now)  # type: ignore[misc]

    def _emit(self, packets: list[Output], now: float, muted: bool | None = None) -> None:
        """Send the transcoder's packets: our sequence numbers, its timestamps (re-based by
        the outgoing stream when the source became a new stream)."""
        if not packets or (self.muted if muted is None else muted):
            return
        out = self.outbound
        for p in packets:
            self.sseq = seq = (self.sseq + 1) & 0xFFFF
            if self.spliced:
                generator = self.generator
                if generator is not None and generator.active:
                    self.held_back += 1  # our own event is on the air
                    continue
                if not self._resume(seq, p.epoch):
                    continue
            oseq, ots, rebased = out.translate(p.epoch, seq, p.ts, now, len(p.payload))
            marker = 0x80 if (rebased or p.marker) else 0
            self.send(_pack(0x80, marker | self.audio_out, oseq, ots, out.ssrc) + p.payload)

    def _event(self, packet: bytes, b0: int, b1: int, seq: int, ts: int, ssrc: int, now: float) -> None:
        payload = _payload(packet, b0)
        if payload is None or len(payload) < 4:
            self.malformed += 1
            return
        self.events += 1
        self.inbound.update(ssrc, seq, ts, now, len(payload), timing=False)
        digit = self.detector.receive(payload, ts, ssrc)
        generator = self.generator
        pipe = self.pipe
        if pipe is not None:
            # Transcoding: the event's number is accounted (no loss to conceal), audio held
            # behind it goes first; the event goes out on our numbering and the pipe's clock.
            self._emit(pipe.skip(seq, ts, now, ssrc), now)
            self.notify(now)  # type: ignore[misc]
        if self.event_out < 0 or (generator is not None and generator.busy):
            # Nowhere to go, or our own digits own the outgoing events now (two event
            # streams interleaved in one RTP stream would garble both).
            self.dropped += 1
        elif pipe is not None:
            self.sseq = seq = (self.sseq + 1) & 0xFFFF
            if not self.spliced or self._resume(seq, pipe.epoch):
                self._forward_event(packet, payload, b0, b1, seq, pipe.map_ts(ts), pipe.epoch, now)
        elif not self.spliced or self._resume(seq, ssrc):
            self._forward_event(packet, payload, b0, b1, seq, ts, ssrc, now)
        if digit is not None and self.on_digit is not None:
            self.on_digit(digit)

    def _forward_event(
        self, packet: bytes, payload: bytes, b0: int, b1: int, seq: int, ts: int, ssrc: int, now: float
    ) -> None:
        out = self.outbound
        oseq, ots, rebased = out.translate(ssrc, seq, ts, now, len(payload))
        marker = 0x80 if rebased else (b1 & 0x80)
        if self.event_scale_num == self.event_scale_den:
            self.send(_pack(b0, marker | self.event_out, oseq, ots, out.ssrc) + packet[12:])
            return
        # RFC 4733 §2.3.5: the duration is in timestamp units, so it follows the clock change
        # (the timestamp itself was scaled by translate()). Every report in the payload is
        # rescaled. A segment longer than 16 bits allows (1.36 s at 48 kHz) saturates.
        body = bytearray(payload[: len(payload) // 4 * 4])
        for off in range(0, len(body), 4):
            duration = (body[off + 2] << 8 | body[off + 3]) * self.event_scale_num // self.event_scale_den
            duration = min(duration, 0xFFFF)
            body[off + 2] = duration >> 8
            body[off + 3] = duration & 0xFF
        self.send(_pack(0x80, marker | self.event_out, oseq, ots, out.ssrc) + bytes(body))

    # -- our own events in this direction's outgoing stream --------------------------------
    #
    # The outgoing OutboundStream maps source packets by offsets. Our event packets take the
    # next sequence numbers after the last packet sent; the source's packets that follow are
    # then renumbered right after ours by moving the stream's sequence offset (its timestamp
    # mapping is untouched: audio stays on the source's clock), and stragglers from before
    # (reordered packets) are dropped so no number is used twice. This reaches into
    # OutboundStream's private mapping state; the splice belongs there as a method, and
    # lives here only because stream.py is not this change's to edit.

    def inject(self, packets: list[DtmfPacket]) -> None:
        """Send our own event packets (from this direction's generator) on the outgoing stream."""
        out = self.outbound
        pt = self.event_out
        if pt < 0:
            # telephone-event renegotiated away while digits played: stop, send nothing more
            if self.generator is not None:
                self.generator.cancel()
            return
        for p in packets:
            seq = (out._last_out_seq + 1) & 0xFFFF
            out._last_out_seq = seq
            if p.marker:
                # An event starts: the stream's clock stands at its timestamp now. RTCP SR and
                # a source that starts later extrapolate from here.
                out.last_timestamp = p.timestamp
                out.last_sent_at = p.at
                self.spliced = True
                self.resync = True
            out.packets_sent += 1
            out.octets_sent += len(p.payload)
            self.dtmf_sent += 1
            self.send(_pack(0x80, (0x80 if p.marker else 0) | pt, seq, p.timestamp, out.ssrc) + p.payload)

    def _admit_audio(self, packet: bytes, b0: int, seq: int, ts: int, ssrc: int, now: float) -> bool:
        """Relayed audio while splicing: held back while our event is on the air, else
        renumbered. (Transcoded audio is decoded all the same, to keep the codec state in step
        with the sender, and held back in :meth:`_emit`.)"""
        generator = self.generator
        if generator is not None and generator.active:
            # Received and counted, and decoded when transcoding so the codec state stays in
            # step with the sender, but not sent: the far end hears the event, not the audio.
            payload = _payload(packet, b0)
            if payload is None:
                self.malformed += 1
                return False
            self.inbound.update(ssrc, seq, ts, now, len(payload))
            self.held_back += 1
            return False
        return self._resume(seq, ssrc)

    def _resume(self, seq: int, ssrc: int) -> bool:
        """A source packet to forward after our own packets: renumber the source after them
        (the first time), drop stragglers from before. True when the packet may go on."""
        out = self.outbound
        if self.resync:
            if out._source == ssrc:
                if signed16(seq - out._last_in_seq) <= 0:
                    self.held_back += 1  # from before our event
                    return False
                out._seq_offset = (out._last_out_seq + 1 - seq) & 0xFFFF
            # (from another source, translate() re-bases onto the next number by itself)
            self.resync = False
            self.resume_seq = seq
            self.guard = 1
        elif self.guard:
            d = signed16(seq - self.resume_seq)
            if d < 0:
                self.held_back += 1  # a straggler from before our event
                return False
            if d > MAX_MISORDER:
                self.guard = 0  # nothing that old can still be on its way
        if not self.resync and not self.guard and (self.generator is None or not self.generator.busy):
            self.spliced = False  # back to the fast path
        return True


def _payload_length(packet: bytes) -> int:
    try:
        h = parse_rtp(packet)
    except RtpError:
        return -1
    return len(packet) - h.header_length - h.padding_length


def _payload(packet: bytes, b0: int) -> bytes | None:
    if b0 == 0x80:
        return packet[12:]
    try:
        return parse_rtp(packet).payload(packet)
    except RtpError:
        return None


@attrs.frozen
class BridgeSettings:
    """How a bridge behaves, apart from what it connects (the two legs and their sends).

    ``mode``: ``relay`` or ``transcode`` (None: :func:`choose_mode`); ``cname``: the RTCP
    CNAME on both legs (None: a random one); ``rtcp_interval``: seconds between reports
    (RFC 3550 §6.2's fixed minimum for small sessions); ``dtmf_duration``/``dtmf_gap``: the
    shape of the digits we send (:class:`~wcsgw.media.dtmf.DtmfGenerator`); ``wall_offset``:
    wall-clock seconds since the epoch minus the bridge's ``now`` (a monotonic clock), for the
    NTP timestamps of RTCP (see :class:`~wcsgw.media.rtcp.RtcpReporter`); ``rng``: the
    randomness of the report intervals (tests give a seeded one)."""

    mode: str | None = None
    cname: str | None = None
    rtcp_interval: float = 5.0
    dtmf_duration: float = 0.1
    dtmf_gap: float = 0.07
    wall_offset: float = 0.0
    rng: random.Random | None = attrs.field(default=None, eq=False)


class MediaBridge:
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
        auto = choose_mode(webrtc, sip)
        mode = settings.mode
        if mode is None:
            mode = auto
        elif mode == RELAY and auto != RELAY:
            raise ValueError(f"relay needs the same codec on both legs, not {webrtc.codec} and {sip.codec}")
        elif mode == TRANSCODE and auto == RELAY:
            raise ValueError("transcode between identical codecs is not supported")
        elif mode not in (RELAY, TRANSCODE):
            raise ValueError(f"unknown mode {mode!r}")
        self.mode = mode
        self.webrtc = webrtc
        self.sip = sip
        rng = settings.rng or random.Random()
        sysrng = random.SystemRandom()
        self.cname = settings.cname or f"wcsgw-{sysrng.getrandbits(64):016x}"
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
        self._w2s = _Direction(
            WEBRTC, webrtc, sip, send_to_sip, from_webrtc_stats, self.to_sip, self.rtcp[WEBRTC], now
        )
        self._s2w = _Direction(
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
        self._send_dtmf(self._w2s, "the SIP side", digits, now)

    def send_dtmf_to_webrtc(self, digits: str, now: float) -> None:
        """The same toward the browser (when it negotiated telephone-event)."""
        self._send_dtmf(self._s2w, "the browser", digits, now)

    def _send_dtmf(self, d: _Direction, who: str, digits: str, now: float) -> None:
        if d.events_muted:
            raise DtmfError(f"{who} holds the call: it takes no RTP now (RFC 3264 §6.1)")
        if d.event_out < 0:
            raise DtmfError(f"{who} negotiated no telephone-event: RFC 4733 DTMF cannot be sent")
        generator = d.generator
        if generator is None:
            out = d.outbound
            generator = d.generator = DtmfGenerator(
                d.event_out,
                out.clock_rate,
                timestamp_at=out.rtp_timestamp_at,
                event_rate=d.event_rate_out,
                duration=self._dtmf_duration,
                gap=self._dtmf_gap,
            )
        generator.payload_type = d.event_out
        generator.send(digits, now)
        d.spliced = True
        d.inject(generator.poll(now))
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
        result = {}
        for side, d in ((SIP, self._w2s), (WEBRTC, self._s2w)):
            g = d.generator
            result[side] = "" if g is None else (g.current_digit or "") + g.pending
        return result

    def next_deadline(self) -> float | None:
        """When :meth:`poll` must next be called (None: nothing pending): for DTMF we send,
        and when transcoding for packets waiting behind a gap (their wait expires)."""
        deadline: float | None = None
        for d in (self._w2s, self._s2w):
            g = d.generator
            if g is not None:
                t = g.next_deadline()
                if t is not None and (deadline is None or t < deadline):
                    deadline = t
            if d.pipe is not None:
                t = d.pipe.next_deadline()
                if t is not None and (deadline is None or t < deadline):
                    deadline = t
        return deadline

    def poll(self, now: float) -> float | None:
        """Do what is due at ``now`` (DTMF packets; transcoding: conceal the packets that did
        not come in time and send what waited behind them); return the next deadline, which
        the owner arms a timer for (it counts as reported, see :attr:`on_deadline`)."""
        for d in (self._w2s, self._s2w):
            if d.pipe is not None:
                d._emit(d.pipe.poll(now), now)
            g = d.generator
            if g is not None:
                packets = g.poll(now)
                if packets:
                    d.inject(packets)
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

    # -- RTCP ------------------------------------------------------------------------------

    def rtcp_from_webrtc(self, packet: bytes, now: float) -> None:
        self.rtcp[WEBRTC].receive(packet, now)

    def rtcp_from_sip(self, packet: bytes, now: float) -> None:
        self.rtcp[SIP].receive(packet, now)

    def rtcp_due(self, side: str | None = None) -> float:
        """When the next report is due for ``side`` (or the earliest of both), in ``now`` time."""
        if side is None:
            return min(r.next_due for r in self.rtcp.values())
        return self.rtcp[side].next_due

    def make_rtcp(self, side: str, now: float) -> bytes:
        """The compound SR/RR + SDES for ``side`` (and schedule its next one)."""
        return self.rtcp[side].make(now)

    def poll_rtcp(self, now: float) -> float:
        """Send every due report through the RTCP callables; return the next deadline."""
        for side, reporter in self.rtcp.items():
            send = self.send_rtcp_to_webrtc if side == WEBRTC else self.send_rtcp_to_sip
            if send is not None and reporter.due(now):
                send(reporter.make(now))
        return self.rtcp_due()

    def make_rtcp_for_webrtc(self, now: float) -> list[bytes]:
        """Caller-timed variant of :meth:`make_rtcp`: the report(s) to send the browser now."""
        return [self.make_rtcp(WEBRTC, now)]

    def make_rtcp_for_sip(self, now: float) -> list[bytes]:
        """Caller-timed variant of :meth:`make_rtcp`: the report(s) to send the SIP side now."""
        return [self.make_rtcp(SIP, now)]

    def make_bye(self, side: str, reason: str | None = None) -> bytes:
        return self.rtcp[side].make_bye(reason)

    def flush(self, now: float) -> None:
        """Transcoding: send what the transcoder still holds (packets waiting behind a gap,
        the resampler's last few ms, a partial packet padded with silence) — at the end of a
        stream, before the owner stops feeding the bridge. Nothing to do when relaying."""
        for d in (self._w2s, self._s2w):
            if d.pipe is not None:
                d._emit(d.pipe.flush(), now)

    def close(self) -> None:
        """Free the transcoder's native codec state now (garbage collection does it too)."""
        if self.transcoder is not None:
            self.transcoder.close()

    # -- stats -----------------------------------------------------------------------------

    def stats(self) -> dict[str, dict[str, float | int | None]]:
        """Per leg: what we received from it and sent to it, and what RTCP told us."""
        result: dict[str, dict[str, float | int | None]] = {}
        for side, d_in, d_out, out in (
            (WEBRTC, self._w2s, self._s2w, self.to_webrtc),
            (SIP, self._s2w, self._w2s, self.to_sip),
        ):
            inbound = d_in.inbound
            reporter = self.rtcp[side]
            remote = reporter.remote_report
            result[side] = {
                "packets_received": d_in.packets,
                "octets_received": inbound.octets_received,  # payload octets, valid packets
                "packets_lost": inbound.cumulative_lost,
                "jitter_ms": 1000.0 * inbound.jitter / inbound.clock_rate,
                "packets_sent": out.packets_sent,
                "octets_sent": out.octets_sent,
                "dropped": d_in.dropped,
                "malformed": d_in.malformed,
                "codec_errors": d_in.codec_errors + (0 if d_in.pipe is None else d_in.pipe.codec_errors),
                "dtmf_packets": d_in.events,
                "dtmf_digits": len(d_in.detector.digits),
                "dtmf_sent": d_out.dtmf_sent,
                "held_back": d_out.held_back,
                "rtt_ms": None if reporter.rtt is None else 1000.0 * reporter.rtt,
                "remote_fraction_lost": None if remote is None else remote.fraction_lost / 256.0,
            }
            pipe = d_in.pipe
            if pipe is not None:
                # what the transcoder's reorder buffer and concealment did with this leg's audio
                jb = pipe.jitter
                result[side].update(
                    {
                        "late": jb.late,
                        "duplicates": jb.duplicates,
                        "reordered": jb.reordered,
                        "concealed_ms": 1000.0 * pipe.concealed_samples / pipe.src.sample_rate,
                        "fec_frames": pipe.fec_frames,
                        "wait_ms": 1000.0 * jb.wait,
                    }
                )
        return result
