"""A reorder buffer with zero added delay for packets that arrive in order (sans-IO).

Used on the transcode path only (relayed packets are never decoded, so the receiver's own jitter
buffer deals with them). One :class:`JitterBuffer` per transcode direction, fed every RTP packet
of the source with its arrival time; it hands packets to the decoder in sequence order.

Why not a playout buffer (hold every packet for a fixed or adaptive delay, then play on a
clock)? The browser and the phone each have a jitter buffer of their own that already absorbs
network jitter for the whole path; a gateway that added a playout delay in front of theirs would
add that delay to *every* packet of the call, and make the end-to-end latency worse without
making the audio better. What a decoder does need is packets in order, and a decision about a
missing one: conceal it, or wait a little because it is only late. So:

* a packet that is the next expected sequence number is released at once (no delay);
* when a gap appears, later packets are held for at most :attr:`JitterBuffer.wait` seconds
  (counted from the arrival of the first packet after the gap) for the missing ones to turn up;
  if they do, everything is released in order with nothing lost;
* when the wait expires, the missing packets are declared lost (the released packet carries
  ``lost_before``, the count, so the caller conceals the gap) and the held packets go out;
* a packet behind the playout point is late: dropped and counted (:attr:`late`); one seen
  before is a duplicate: dropped and counted (:attr:`duplicates`);
* a sequence jump of more than :data:`MAX_JUMP` either way, a timestamp jump of more than
  :data:`MAX_TS_JUMP` seconds, or a new SSRC is a new stream: whatever is held goes out, and
  the new packet is released at once with ``resync`` set — no concealment across it.  So is a
  packet behind the playout point after :data:`~wcsgw.media.stream.MAX_LATENESS` seconds
  with nothing from the source: not late (nothing is delayed that long) but a source that
  restarted its numbers a little behind where it stopped, as a phone may after a long hold —
  taken for late, up to ``MAX_JUMP`` packets of the resumed audio would be dropped.

The wait adapts: it is twice the RFC 3550 (A.8) interarrival jitter, clamped to
``min_wait``..``max_wait`` (10..80 ms), and starts at 20 ms. Twice the mean deviation covers
the common case; a packet later than that is rare enough to be better concealed than waited
for.

Packets of the source that carry no audio (telephone-event, comfort noise) still use sequence
numbers: the caller marks them with :meth:`JitterBuffer.skip` so they do not look like losses.

The caller drives time: after :meth:`push`, :meth:`skip` or :meth:`poll`, :meth:`next_deadline`
says when :meth:`poll` must run to release held packets whose wait has expired.
"""

from __future__ import annotations

from collections import deque
from typing import NamedTuple

from wcsgw.media.rtp import signed16, signed32
from wcsgw.media.stream import MAX_LATENESS

__all__ = ["JitterBuffer", "Played", "MAX_JUMP", "MAX_TS_JUMP"]

#: A sequence step of more than this (forward or back) starts a new stream, not a loss.
MAX_JUMP = 100
#: A timestamp step of more than this many seconds starts a new stream.
MAX_TS_JUMP = 2.0
#: At most this many packets are held waiting for a gap to fill (a bound, not a delay).
MAX_HELD = 64
#: How far back released sequence numbers are remembered, to tell a duplicate from a late one.
_HISTORY = 128


class Played(NamedTuple):
    """One audio packet, released in sequence order."""

    seq: int
    ts: int
    payload: bytes
    #: sequence numbers declared lost right before this one (0: none)
    lost_before: int
    #: the first packet of a new stream (or the very first): no concealment before it
    resync: bool


class _Held:
    __slots__ = ("ts", "payload", "arrived")

    def __init__(self, ts: int, payload: bytes | None, arrived: float) -> None:
        self.ts = ts
        self.payload = payload  # None: a skipped (non-audio) sequence number
        self.arrived = arrived


class JitterBuffer:
    """Reorder, gap-wait and loss decisions for one incoming stream (see the module doc)."""

    def __init__(
        self,
        clock_rate: int,
        *,
        min_wait: float = 0.010,
        max_wait: float = 0.080,
        initial_wait: float = 0.020,
        max_held: int = MAX_HELD,
    ) -> None:
        self.clock_rate = clock_rate
        self.min_wait = min_wait
        self.max_wait = max_wait
        self.max_held = max_held
        #: RFC 3550 interarrival jitter estimate, in seconds
        self.jitter = initial_wait / 2.0
        self._ssrc: int | None = None
        self._expected: int | None = None  # next sequence number to release
        self._last_ts: int | None = None  # timestamp of the newest packet seen (for jumps)
        self._last_arrival = 0.0  # when the newest packet of the source came
        self._held: dict[int, _Held] = {}  # seq -> packet waiting behind a gap
        self._recent: set[int] = set()  # released (or skipped) seqs, for duplicate detection
        self._recent_order: deque[int] = deque()
        self._pending: tuple[int, bool] | None = None  # news for the next audio packet
        self._transit: float | None = None
        self.released = 0
        self.late = 0
        self.duplicates = 0
        self.lost = 0
        self.reordered = 0
        self.resyncs = 0

    # -- public ----------------------------------------------------------------------------

    @property
    def wait(self) -> float:
        """How long packets after a gap wait for the missing ones: 2 x jitter, clamped."""
        return min(self.max_wait, max(self.min_wait, 2.0 * self.jitter))

    @property
    def held(self) -> int:
        return len(self._held)

    def next_deadline(self) -> float | None:
        """When :meth:`poll` must run (the wait of the first held packet expires), or None."""
        if not self._held:
            return None
        first = self._first_held()
        return self._held[first].arrived + self.wait

    def push(self, seq: int, ts: int, payload: bytes, now: float, ssrc: int = 0) -> list[Played]:
        """An audio packet arrived; return the packets released now, in order."""
        return self._arrive(seq, ts, payload, now, ssrc)

    def skip(self, seq: int, ts: int, now: float, ssrc: int = 0) -> list[Played]:
        """A non-audio packet of the same stream arrived (telephone-event, CN): its sequence
        number is accounted so it is not taken for a loss. May release held packets."""
        return self._arrive(seq, ts, None, now, ssrc)

    def poll(self, now: float) -> list[Played]:
        """Release what waited long enough: the missing packets before it are declared lost."""
        out: list[Played] = []
        while self._held:
            first = self._first_held()
            if self._held[first].arrived + self.wait > now:
                break
            self._release_from(first, out)
        return out

    def flush(self) -> list[Played]:
        """Release everything held now (end of call, or before a change of stream)."""
        out: list[Played] = []
        while self._held:
            self._release_from(self._first_held(), out)
        return out

    # -- internals -------------------------------------------------------------------------

    def _first_held(self) -> int:
        expected = self._expected
        assert expected is not None
        return min(self._held, key=lambda s: (s - expected) & 0xFFFF)

    def _arrive(self, seq: int, ts: int, payload: bytes | None, now: float, ssrc: int) -> list[Played]:
        out: list[Played] = []
        expected = self._expected
        if expected is None or ssrc != self._ssrc or self._jumped(seq, ts, now - self._last_arrival):
            self._last_arrival = now
            if expected is not None:
                self.resyncs += 1
                out.extend(self.flush())
            self._ssrc = ssrc
            self._transit = None
            self._recent.clear()
            self._recent_order.clear()
            self._expected = seq
            self._last_ts = ts
            self._pending = None
            self._accept(seq, ts, payload, out, resync=True, lost_before=0)
            self._measure(ts, now)
            return out
        d = signed16(seq - expected)
        if d < 0:
            if seq in self._recent:
                self.duplicates += 1
            else:
                self.late += 1
            return out
        self._last_arrival = now  # (a straggler is not news from the source)
        if seq in self._held:
            self.duplicates += 1
            return out
        if payload is not None:
            self._measure(ts, now)
        if signed32(ts - self._last_ts) > 0:  # type: ignore[operator]
            self._last_ts = ts
        if d == 0:
            if self._held:
                self.reordered += 1  # it filled the head of a gap
            self._accept(seq, ts, payload, out, resync=False, lost_before=0)
            self._drain(out)
            return out
        self._held[seq] = _Held(ts, payload, now)
        if len(self._held) > self.max_held:
            self._release_from(self._first_held(), out)
        return out

    def _jumped(self, seq: int, ts: int, silent: float) -> bool:
        d = signed16(seq - self._expected)  # type: ignore[operator]
        if d > MAX_JUMP or d < -MAX_JUMP or (d < 0 and silent > MAX_LATENESS):
            return True
        return abs(signed32(ts - self._last_ts)) > MAX_TS_JUMP * self.clock_rate  # type: ignore[operator]

    def _measure(self, ts: int, now: float) -> None:
        # RFC 3550 A.8 in seconds; a transit step beyond 1 s is a timestamp jump (silence
        # suppression, a new talkspurt), not network jitter.
        transit = now - ts / self.clock_rate
        if self._transit is not None:
            d = abs(transit - self._transit)
            if d < 1.0:
                self.jitter += (d - self.jitter) / 16.0
        self._transit = transit

    def _accept(
        self, seq: int, ts: int, payload: bytes | None, out: list[Played], *, resync: bool, lost_before: int
    ) -> None:
        self._remember(seq)
        self._expected = (seq + 1) & 0xFFFF
        pending = self._pending
        if payload is None:
            # A skipped (non-audio) packet passes the news on to the next audio packet.
            if resync or lost_before:
                if pending is not None:
                    lost_before += pending[0]
                    resync = resync or pending[1]
                self._pending = (lost_before, resync)
            return
        if pending is not None:
            lost_before += pending[0]
            resync = resync or pending[1]
            self._pending = None
        self.released += 1
        out.append(Played(seq, ts, payload, lost_before, resync))

    def _drain(self, out: list[Played]) -> None:
        """Release held packets that follow on without a gap."""
        held = self._held
        while held:
            entry = held.pop(self._expected, None)  # type: ignore[arg-type]
            if entry is None:
                break
            self._release(self._expected, entry, out, 0)  # type: ignore[arg-type]

    def _release(self, seq: int, entry: _Held, out: list[Played], lost_before: int) -> None:
        self._accept(seq, entry.ts, entry.payload, out, resync=False, lost_before=lost_before)

    def _release_from(self, seq: int, out: list[Played]) -> None:
        """Give up on the packets missing before ``seq``: declare them lost, release ``seq``
        and whatever follows it without a gap."""
        lost = (seq - self._expected) & 0xFFFF  # type: ignore[operator]
        self.lost += lost
        entry = self._held.pop(seq)
        self._release(seq, entry, out, lost)
        self._drain(out)

    def _remember(self, seq: int) -> None:
        self._recent.add(seq)
        self._recent_order.append(seq)
        if len(self._recent_order) > _HISTORY:
            self._recent.discard(self._recent_order.popleft())
