"""Per-leg RTP stream state: what we send (:class:`OutboundStream`) and what we receive
(:class:`InboundStream`).

A gateway re-originates each leg's stream: the far end must see *one* continuous RTP stream
from us (our SSRC, our sequence and timestamp spaces), whatever happens on the other leg — the
browser renegotiating, a PBX switching the media source to a new SSRC, music on hold, a
re-INVITE. :class:`OutboundStream` maps each incoming (SSRC, sequence, timestamp) onto that
continuous stream by offsets, and re-bases the offsets when the source changes or jumps.

Timestamps are mapped through *deltas* scaled by the clock-rate ratio (48 kHz Opus <-> 8 kHz
G.711), never by counting packets, so lost packets (sequence gaps) and silence suppression keep
the outgoing clock aligned with the incoming one.

:class:`InboundStream` keeps the RFC 3550 receiver statistics (A.1 sequence validation,
A.3 loss, A.8 interarrival jitter) that our RTCP reports carry back to the sender.

Everything here is sans-IO: ``now`` (seconds, float) is passed in.
"""

from __future__ import annotations

import math
import random

from wcsgw.media.rtp import signed16

__all__ = ["MAX_DROPOUT", "MAX_LATENESS", "MAX_MISORDER", "MAX_TIMESTAMP_SKEW", "OutboundStream",
           "InboundStream"]

RTP_SEQ_MOD = 1 << 16
#: RFC 3550 A.1: a sequence step forward larger than this is a jump, not loss.
MAX_DROPOUT = 3000
#: RFC 3550 A.1: a sequence step backward larger than this is a jump, not reordering.
MAX_MISORDER = 100
#: A timestamp step that disagrees with the wall-clock time between two packets by more than
#: this many seconds is a jump of the source's clock (a new source behind the same SSRC), not
#: network jitter or silence suppression: the mapping is re-based.
MAX_TIMESTAMP_SKEW = 5.0
#: A packet no newer than the last one, after this many seconds with none from the source,
#: is not a straggler (no network holds a packet that long): the source restarted its numbers
#: behind where it stopped (a phone back from a long hold).  Mapped as it is, it would reuse
#: numbers the receiver has seen: SRTP replay failures, then audio it takes for late.
MAX_LATENESS = 2.0


class OutboundStream:
    """What one leg sends: our SSRC, and sequence/timestamp continuity across source changes.

    ``clock_rate`` is the RTP clock of the stream we send; ``source_clock_rate`` the clock of
    the packets we are fed (they differ when transcoding; equal when relaying). Telephone-event
    packets must use the same clocks as the audio they accompany (RFC 4733 §2.1), so they go
    through the same stream and share its sequence space.

    Call :meth:`translate` once per packet that is actually sent; it also keeps the counters
    (packets, payload octets, last timestamp and when it was sent) that RTCP SR needs.
    """

    __slots__ = (
        "ssrc",
        "clock_rate",
        "source_clock_rate",
        "packets_sent",
        "octets_sent",
        "last_timestamp",
        "last_sent_at",
        "rebases",
        "_num",
        "_den",
        "_inv_source_rate",
        "_source",
        "_seq_offset",
        "_last_in_seq",
        "_last_in_at",
        "_in_anchor",
        "_out_anchor",
        "_frac",
        "_last_out_seq",
        "_frame",
        "_max_frame",
        "_initial_seq",
        "_initial_ts",
    )

    def __init__(
        self,
        ssrc: int | None = None,
        clock_rate: int = 8000,
        *,
        source_clock_rate: int | None = None,
        sequence: int | None = None,
        timestamp: int | None = None,
        rng: random.Random | None = None,
    ) -> None:
        rng = rng or random.SystemRandom()
        # RFC 3550 §5.1: SSRC, initial sequence and timestamp are random.
        self.ssrc: int = rng.getrandbits(32) if ssrc is None else ssrc & 0xFFFFFFFF
        self.clock_rate = clock_rate
        self.source_clock_rate = source_clock_rate or clock_rate
        g = math.gcd(self.clock_rate, self.source_clock_rate)
        self._num = self.clock_rate // g
        self._den = self.source_clock_rate // g
        self._inv_source_rate = 1.0 / self.source_clock_rate
        self._initial_seq = rng.getrandbits(16) if sequence is None else sequence & 0xFFFF
        self._initial_ts = rng.getrandbits(32) if timestamp is None else timestamp & 0xFFFFFFFF
        self.packets_sent = 0
        self.octets_sent = 0
        self.last_timestamp: int | None = None
        self.last_sent_at: float | None = None
        self.rebases = 0
        self._source: int | None = None
        self._seq_offset = 0
        self._last_in_seq = 0
        self._last_in_at = 0.0
        self._in_anchor = 0
        self._out_anchor = 0  # unwrapped (may exceed 32 bits); masked on output
        self._frac = 0
        self._last_out_seq = (self._initial_seq - 1) & 0xFFFF
        # Duration of one packet in our clock, learned from the source; 20 ms until known.
        self._frame = max(1, self.clock_rate // 50)
        # A step longer than 200 ms is silence suppression, not a packet's duration.
        self._max_frame = self.clock_rate // 5

    @property
    def source_ssrc(self) -> int | None:
        """The SSRC of the source currently mapped onto this stream."""
        return self._source

    def translate(
        self, source_ssrc: int, sequence: int, timestamp: int, now: float, payload_octets: int = 0
    ) -> tuple[int, int, bool]:
        """Map one incoming packet onto our stream; return ``(sequence, timestamp, rebased)``.

        ``rebased`` is True when this packet starts a new mapping (new SSRC or a jump): the
        caller sets the RTP marker bit on it so the receiver resynchronises its jitter buffer
        (the common practice of media relays).
        """
        if source_ssrc == self._source:
            dseq = (sequence - self._last_in_seq) & 0xFFFF
            if dseq >= 0x8000:
                dseq -= 0x10000
            d = (timestamp - self._in_anchor) & 0xFFFFFFFF
            if d >= 0x80000000:
                d -= 0x100000000
            silent = now - self._last_in_at
            rebased = (
                dseq > MAX_DROPOUT
                or dseq < -MAX_MISORDER
                or (dseq > 0 and abs(d * self._inv_source_rate - silent) > MAX_TIMESTAMP_SKEW)
                or (dseq <= 0 and silent > MAX_LATENESS)
            )
        else:
            rebased = True
        if rebased:
            self._rebase(source_ssrc, sequence, timestamp, now)
            out_ts = self._out_anchor
            newest = advanced = True
        else:
            if self._num == self._den:
                q = d
                step = d
            else:
                q = self._frac + d * self._num
                step = q // self._den
            out_ts = self._out_anchor + step
            newest = dseq > 0
            advanced = newest and d > 0
            if advanced:
                # Move the anchor to the newest packet; the remainder of the scaled step is
                # carried so that rounding never accumulates into drift.
                self._in_anchor = timestamp
                self._out_anchor = out_ts
                if self._num != self._den:
                    self._frac = q % self._den
                if dseq == 1 and step <= self._max_frame:
                    self._frame = step
        out_seq = (sequence + self._seq_offset) & 0xFFFF
        if newest:
            # Only the newest packet moves the baselines: a late (reordered) one must not.
            self._last_out_seq = out_seq
            self._last_in_seq = sequence
            self._last_in_at = now
        if advanced:
            # (Not for packets that repeat a timestamp, like the packets of one DTMF event:
            # the SR clock extrapolates from the last packet whose timestamp moved on.)
            self.last_timestamp = out_ts & 0xFFFFFFFF
            self.last_sent_at = now
        self.packets_sent += 1
        self.octets_sent += payload_octets
        return out_seq, out_ts & 0xFFFFFFFF, rebased

    def _rebase(self, source_ssrc: int, sequence: int, timestamp: int, now: float) -> None:
        if self.last_sent_at is None or self.last_timestamp is None:
            out_seq = self._initial_seq
            out_ts = self._initial_ts
        else:
            out_seq = (self._last_out_seq + 1) & 0xFFFF
            # The new source continues where the old one stopped, as far on as wall-clock time
            # has moved, but at least one packet duration so timestamps never repeat.
            elapsed = max(0.0, now - self.last_sent_at)
            out_ts = self.last_timestamp + max(int(round(elapsed * self.clock_rate)), self._frame)
        if self._source is not None:
            self.rebases += 1
        self._source = source_ssrc
        self._seq_offset = (out_seq - sequence) & 0xFFFF
        self._in_anchor = timestamp
        self._out_anchor = out_ts
        self._frac = 0
        self._last_out_seq = (out_seq - 1) & 0xFFFF

    # -- packets of our own spliced into the stream (the DTMF events we generate) ----------
    #
    # Source packets are mapped by offsets. Our own packets take the next sequence numbers
    # after the last packet sent; the source's packets that follow are then renumbered right
    # after ours by moving the sequence offset (the timestamp mapping is untouched: audio
    # stays on the source's clock), and stragglers from before are refused so no number is
    # used twice.

    def send_own(self, timestamp: int, at: float, octets: int, starts: bool) -> int:
        """A packet of our own goes out on this stream: its sequence number (the next one),
        counted for RTCP.  ``starts`` (an event's first packet): the stream's clock stands at
        ``timestamp`` at ``at`` from now on — RTCP SR and a source that starts later
        extrapolate from there."""
        seq = self._last_out_seq = (self._last_out_seq + 1) & 0xFFFF
        if starts:
            self.last_timestamp = timestamp
            self.last_sent_at = at
        self.packets_sent += 1
        self.octets_sent += octets
        return seq

    def resume_after_own(self, source_ssrc: int, sequence: int) -> bool:
        """The source's first packet after packets of our own: renumber the source right
        after them.  False when the packet, of the current source, is from before them (a
        straggler that would reuse a number).  A new source needs nothing: :meth:`translate`
        re-bases it onto the next number by itself."""
        if source_ssrc == self._source:
            if signed16(sequence - self._last_in_seq) <= 0:
                return False
            self._seq_offset = (self._last_out_seq + 1 - sequence) & 0xFFFF
        return True

    def rtp_timestamp_at(self, now: float) -> int:
        """Our RTP clock extrapolated to ``now`` (for the RTP timestamp of an RTCP SR)."""
        if self.last_timestamp is None or self.last_sent_at is None:
            return self._initial_ts
        return (self.last_timestamp + int(round((now - self.last_sent_at) * self.clock_rate))) & 0xFFFFFFFF


class InboundStream:
    """Reception statistics of the stream one leg sends us (RFC 3550 A.1, A.3, A.8).

    Only the most recent source is tracked: a new SSRC restarts the statistics (it is a new
    stream as far as the reports are concerned).
    """

    __slots__ = (
        "clock_rate",
        "ssrc",
        "probation_packets",
        "base_seq",
        "max_seq",
        "bad_seq",
        "cycles",
        "received",
        "octets_received",
        "expected_prior",
        "received_prior",
        "probation",
        "transit",
        "jitter",
        "last_received_at",
        "received_since_report",
    )

    def __init__(self, clock_rate: int, *, probation: int = 1) -> None:
        """``probation`` is RFC 3550's MIN_SEQUENTIAL. The RFC suggests 2 for open sessions;
        our packets come from a latched/authenticated peer, so by default the first one counts."""
        self.clock_rate = clock_rate
        self.probation_packets = max(1, probation)
        self.ssrc: int | None = None
        self.base_seq = 0
        self.max_seq = 0
        self.bad_seq = RTP_SEQ_MOD + 1
        self.cycles = 0
        self.received = 0
        self.octets_received = 0
        self.expected_prior = 0
        self.received_prior = 0
        self.probation = 0
        self.transit: int | None = None
        self.jitter = 0.0
        self.last_received_at: float | None = None
        self.received_since_report = False

    def _init_seq(self, seq: int) -> None:
        self.base_seq = seq
        self.max_seq = seq
        self.bad_seq = RTP_SEQ_MOD + 1
        self.cycles = 0
        self.received = 0
        self.received_prior = 0
        self.expected_prior = 0

    def update(
        self,
        ssrc: int,
        sequence: int,
        timestamp: int,
        now: float,
        payload_octets: int = 0,
        timing: bool = True,
    ) -> bool:
        """Account one received packet; return False when A.1 does not count it as valid.

        ``timing=False`` keeps the packet out of the jitter estimate: telephone-event packets
        carry the event's *start* time in every packet of the event, so their transit time
        says nothing about network jitter.
        """
        self.last_received_at = now
        self.received_since_report = True
        if ssrc != self.ssrc:
            self.ssrc = ssrc
            self._init_seq(sequence)
            self.max_seq = (sequence - 1) & 0xFFFF
            self.probation = self.probation_packets
            self.transit = None
            self.jitter = 0.0
        if timing:
            # A.8: transit time in RTP units; only differences matter, so wrapping is fine.
            transit = (int(now * self.clock_rate) - timestamp) & 0xFFFFFFFF
            if self.transit is not None:
                d = (transit - self.transit) & 0xFFFFFFFF
                if d >= 0x80000000:
                    d = 0x100000000 - d
                self.jitter += (d - self.jitter) / 16.0
            self.transit = transit
        return self._update_seq(sequence, payload_octets)

    def _update_seq(self, seq: int, octets: int) -> bool:
        # RFC 3550 A.1, transcribed.
        udelta = (seq - self.max_seq) & 0xFFFF
        if self.probation:
            if seq == (self.max_seq + 1) & 0xFFFF:
                self.probation -= 1
                self.max_seq = seq
                if self.probation == 0:
                    self._init_seq(seq)
                    self.received += 1
                    self.octets_received += octets
                    return True
            else:
                self.probation = self.probation_packets - 1
                self.max_seq = seq
            return False
        if udelta < MAX_DROPOUT:
            if seq < self.max_seq:
                self.cycles += RTP_SEQ_MOD  # wrapped
            self.max_seq = seq
        elif udelta <= RTP_SEQ_MOD - MAX_MISORDER:
            if seq == self.bad_seq:
                # Two sequential packets after a big jump: the source restarted; resync.
                self._init_seq(seq)
            else:
                self.bad_seq = (seq + 1) & 0xFFFF
                return False
        # else: duplicate or reordered packet
        self.received += 1
        self.octets_received += octets
        return True

    @property
    def extended_max_seq(self) -> int:
        return self.cycles + self.max_seq

    @property
    def expected(self) -> int:
        return self.extended_max_seq - self.base_seq + 1 if self.received else 0

    @property
    def cumulative_lost(self) -> int:
        """A.3, clamped to the 24-bit signed field of a report block."""
        lost = self.expected - self.received
        return max(-0x800000, min(0x7FFFFF, lost))

    def interval_report(self) -> tuple[int, int, int, int]:
        """Close a reporting interval: ``(fraction_lost, cumulative_lost, extended_max_seq,
        jitter)`` as RFC 3550 §6.4.1 fields (fraction in 1/256, jitter in RTP units)."""
        expected = self.expected
        expected_interval = expected - self.expected_prior
        self.expected_prior = expected
        received_interval = self.received - self.received_prior
        self.received_prior = self.received
        lost_interval = expected_interval - received_interval
        if expected_interval == 0 or lost_interval <= 0:
            fraction = 0
        else:
            fraction = min(255, (lost_interval << 8) // expected_interval)
        self.received_since_report = False
        return fraction, self.cumulative_lost, self.extended_max_seq & 0xFFFFFFFF, int(self.jitter)
