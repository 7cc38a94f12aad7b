"""One way through the media bridge: what arrives from one leg and goes out to the other.

The per-packet path of :class:`~wcsgw.media.bridge.MediaBridge` (relay: a header rewrite;
transcode: the direction's :class:`~wcsgw.media.pipe.Pipe`), RFC 4733 events crossing
and detected, and our own events spliced into the outgoing stream.  The bridge holds two and
documents the rules (:mod:`wcsgw.media.bridge`); this module is where they run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from wcsgw.media.dtmf import DtmfError
from wcsgw.media.dtmfdetector import DtmfDetector
from wcsgw.media.dtmfgenerator import DtmfGenerator, DtmfPacket
from wcsgw.media.legmedia import LegMedia
from wcsgw.media.recordtap import Tap
from wcsgw.media.reporter import RtcpReporter
from wcsgw.media.rtp import FIXED_HEADER, RtpError, parse_rtp, signed16
from wcsgw.media.stream import MAX_MISORDER, InboundStream, OutboundStream

if TYPE_CHECKING:  # numpy and the codecs: a transcoded call's, not every start's (issue 19)
    from wcsgw.media.pipe import Output, Pipe

__all__ = ["Direction", "Send", "OnDigit"]

Send = Callable[[bytes], None]
OnDigit = Callable[[str], None]

_unpack_from = FIXED_HEADER.unpack_from
_pack = FIXED_HEADER.pack


class Direction:
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
        "tap",
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
        #: recording (wcsgw.media.recordtap): each audio packet not muted, each event; None: off
        self.tap: Tap | None = None

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
            if self.tap is not None and not self.muted:
                self.tap.audio(packet, now)
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
            if self.tap is not None:  # not audio: its number is not a loss in the recording
                self.tap.event(packet, now)
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

    # -- what waits for a time: the pipe's packets behind a gap, our digits' next packet ----

    def next_deadline(self) -> float | None:
        """When :meth:`poll` must next run for this direction (None: nothing pending)."""
        deadline: float | None = None
        g = self.generator
        if g is not None:
            deadline = g.next_deadline()
        if self.pipe is not None:
            t = self.pipe.next_deadline()
            if t is not None and (deadline is None or t < deadline):
                deadline = t
        return deadline

    def poll(self, now: float) -> None:
        """Send what is due at ``now``: transcoding, what waited behind a gap (the packets that
        did not come in time concealed); then our digits' packets."""
        if self.pipe is not None:
            self._emit(self.pipe.poll(now), now)
        g = self.generator
        if g is not None:
            packets = g.poll(now)
            if packets:
                self.inject(packets)

    def flush(self, now: float) -> None:
        """Transcoding: send all the pipe still holds (the source's audio ended)."""
        if self.pipe is not None:
            self._emit(self.pipe.flush(), now)

    # -- our own events in this direction's outgoing stream --------------------------------
    #
    # The outgoing OutboundStream numbers them (send_own) and renumbers the source after them
    # (resume_after_own); here: when the slow path is on, what is held back, and when the
    # fast path comes back.

    def send_dtmf(self, who: str, digits: str, now: float, duration: float, gap: float) -> None:
        """Queue ``digits`` as our own events toward the leg packets go to, and send the first
        now. DtmfError when that leg (``who``, for the message) holds the call or negotiated
        no telephone-event; the generator is made at the first digit, on the outgoing
        stream's clock, so event timestamps sit among the audio's."""
        if self.events_muted:
            raise DtmfError(f"{who} holds the call: it takes no RTP now (RFC 3264 §6.1)")
        if self.event_out < 0:
            raise DtmfError(f"{who} negotiated no telephone-event: RFC 4733 DTMF cannot be sent")
        generator = self.generator
        if generator is None:
            out = self.outbound
            generator = self.generator = DtmfGenerator(
                self.event_out,
                out.clock_rate,
                timestamp_at=out.rtp_timestamp_at,
                event_rate=self.event_rate_out,
                duration=duration,
                gap=gap,
            )
        generator.payload_type = self.event_out
        generator.send(digits, now)
        self.spliced = True
        self.inject(generator.poll(now))

    @property
    def own_digits(self) -> str:
        """Our digits still to be sent (the one on the air first); empty when idle."""
        g = self.generator
        return "" if g is None else (g.current_digit or "") + g.pending

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
            seq = out.send_own(p.timestamp, p.at, len(p.payload), p.marker)
            if p.marker:  # an event starts: the source resumes after it, renumbered
                self.spliced = True
                self.resync = True
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
        if self.resync:
            if not self.outbound.resume_after_own(ssrc, seq):
                self.held_back += 1  # from before our event
                return False
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
