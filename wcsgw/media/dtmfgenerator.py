"""Sending RFC 4733 DTMF: the packet schedule for a digit string (sans-IO).

The generator is asked what is due at ``now`` and when it next needs to be asked, so the
owner keeps one timer and tests run on plain numbers. The payload format is
:mod:`wcsgw.media.dtmf`'s.

The generated cadence, per digit (defaults; ``I`` = 50 ms update interval, ``D`` = 100 ms)::

    t0          marker, duration I          (the start packet)
    t0 + I      duration 2I                 (updates every I, up to D)
    t0 + D      E bit, duration D           (the end packet ...)
    t0 + D + I  E bit, duration D           (... sent three times in all, §2.5.1.4)
    t0 + D + 2I E bit, duration D
    (gap: 70 ms without event packets, then the next digit's start packet)

The next digit starts only after the previous digit's last end packet: a receiver that tracks
one event at a time (baresip's does) would otherwise take a late end retransmission for the
end of the new digit.

Long events: the 16-bit duration field holds 65535 ticks (8.19 s at 8 kHz, 1.37 s at 48 kHz).
§2.5.1.3 then has the sender start a new segment; the generator does not produce such events —
a tone longer than the field allows is refused at construction (DTMF digits last ~100 ms). The
detector does understand segments from peers (see :class:`~wcsgw.media.dtmfdetector.DtmfDetector`).
"""

from __future__ import annotations

import random
from collections import deque
from typing import Callable, Sequence

import attrs

from wcsgw.media.dtmf import MAX_DURATION, DtmfError, event_code, normalize_digits
from wcsgw.media.rtp import FIXED_HEADER

__all__ = ["DtmfGenerator", "DtmfPacket", "schedule_rtp"]

#: Small tolerance when comparing ``now`` with a deadline: a timer that fires "at" the
#: deadline may see a float a hair below it.
_EPSILON = 1e-6


@attrs.frozen(slots=True)
class DtmfPacket:
    """One event packet the generator wants sent at ``at`` (the scheduled time; a late poll
    sends it late, with the same contents)."""

    at: float
    digit: str
    payload_type: int
    timestamp: int
    marker: bool
    payload: bytes

    @property
    def end(self) -> bool:
        return bool(self.payload[1] & 0x80)

    @property
    def duration(self) -> int:
        return self.payload[2] << 8 | self.payload[3]

    def rtp(self, sequence: int, ssrc: int) -> bytes:
        """The packet with a plain 12-byte RTP header."""
        return (
            FIXED_HEADER.pack(
                0x80,
                (0x80 if self.marker else 0) | self.payload_type,
                sequence & 0xFFFF,
                self.timestamp & 0xFFFFFFFF,
                ssrc & 0xFFFFFFFF,
            )
            + self.payload
        )


class _Event:
    """The digit on the air: its start, timestamp and how far its packets have got."""

    __slots__ = ("digit", "code", "start", "timestamp", "updates_sent", "ends_sent")

    def __init__(self, digit: str, start: float, timestamp: int) -> None:
        self.digit = digit
        self.code = event_code(digit)
        self.start = start
        self.timestamp = timestamp & 0xFFFFFFFF
        self.updates_sent = 0
        self.ends_sent = 0


class DtmfGenerator:
    """The RFC 4733 packet schedule for digit strings, one digit after the other (sans-IO).

    ``payload_type`` is the negotiated ``telephone-event`` payload type (it may be changed
    later by assigning the attribute, e.g. after a re-INVITE). ``clock_rate`` is the RTP clock
    of the stream (the audio codec's); ``event_rate`` the ``telephone-event`` rate durations
    count in (the same, unless a peer negotiated otherwise).

    ``timestamp_at(t)`` gives the stream's RTP timestamp at time ``t``: each event's timestamp
    is the stream's clock at the event's start, so events sit correctly among the audio
    packets of the same stream. Without it the generator keeps its own clock (a random origin
    at the first digit, advancing in real time), enough for a stream of events alone.

    ``duration``, ``gap`` and ``interval`` are seconds: the tone, the pause after its last end
    packet, the time between updates. ``end_packets`` is how often the end is sent (3, §2.5.1.4).
    """

    def __init__(
        self,
        payload_type: int,
        clock_rate: int = 8000,
        *,
        timestamp_at: Callable[[float], int] | None = None,
        event_rate: int | None = None,
        duration: float = 0.1,
        gap: float = 0.07,
        interval: float = 0.05,
        volume: int = 10,
        end_packets: int = 3,
        rng: random.Random | None = None,
    ) -> None:
        if not 0 <= payload_type <= 127:
            raise DtmfError(f"payload type {payload_type} out of range")
        if clock_rate <= 0:
            raise DtmfError("clock rate must be positive")
        if not 0 <= volume <= 63:
            raise DtmfError("volume is 0..63 (-dBm0)")
        if interval <= 0 or duration <= 0 or gap < 0 or end_packets < 1:
            raise DtmfError("duration and interval must be positive, gap >= 0, end_packets >= 1")
        self.payload_type = payload_type
        self.clock_rate = clock_rate
        self.event_rate = event_rate or clock_rate
        self.duration = duration
        self.gap = gap
        self.interval = interval
        self.volume = volume
        self.end_packets = end_packets
        self._duration_ticks = round(duration * self.event_rate)
        self._interval_ticks = max(1, round(interval * self.event_rate))
        if self._duration_ticks > MAX_DURATION:
            raise DtmfError(
                f"a {duration:g} s event does not fit the 16-bit duration at {self.event_rate} Hz "
                f"(at most {MAX_DURATION / self.event_rate:.2f} s; long-event segments are not generated)"
            )
        #: updates (the start packet included) sent before the end packets
        self._updates = max(1, -(-self._duration_ticks // self._interval_ticks))
        if timestamp_at is None:
            origin_ts = (rng or random.SystemRandom()).getrandbits(32)
            origin: list[float] = []

            def timestamp_at(t: float) -> int:
                if not origin:
                    origin.append(t)
                return (origin_ts + round((t - origin[0]) * clock_rate)) & 0xFFFFFFFF

        self.timestamp_at: Callable[[float], int] = timestamp_at
        self._queue: deque[str] = deque()
        self._event: _Event | None = None
        self._next_at: float | None = None
        #: when the next digit may start (after the previous one's last end packet + gap)
        self._free_at: float | None = None
        self.events_sent = 0
        self.packets_sent = 0

    # -- state ----------------------------------------------------------------------------

    @property
    def active(self) -> bool:
        """An event is on the air: its start packet went out, its last end packet did not."""
        return self._event is not None

    @property
    def busy(self) -> bool:
        """An event on the air or digits waiting."""
        return self._event is not None or bool(self._queue)

    @property
    def pending(self) -> str:
        """Digits queued and not started yet."""
        return "".join(self._queue)

    @property
    def current_digit(self) -> str | None:
        return None if self._event is None else self._event.digit

    def next_deadline(self) -> float | None:
        """When :meth:`poll` has the next packet (None: nothing to send)."""
        return self._next_at

    # -- input ----------------------------------------------------------------------------

    def send(self, digits: str, now: float) -> None:
        """Queue ``digits`` (all checked first: nothing is queued if one is bad). The first
        starts at ``now`` unless an event is on the air or just ended (then after the gap)."""
        digits = normalize_digits(digits)
        self._queue.extend(digits)
        if self._next_at is None:
            start = now if self._free_at is None else max(now, self._free_at)
            self._next_at = start

    def cancel(self) -> None:
        """Drop queued digits; an event on the air still ends properly (its end packets)."""
        self._queue.clear()
        if self._event is None:
            self._next_at = None

    # -- output ---------------------------------------------------------------------------

    def poll(self, now: float) -> list[DtmfPacket]:
        """Every packet due at ``now`` (several when the caller is late), in order."""
        packets: list[DtmfPacket] = []
        while self._next_at is not None and self._next_at <= now + _EPSILON:
            packets.append(self._emit(self._next_at))
        return packets

    def packets_for(self, digits: str, start: float) -> list[DtmfPacket]:
        """The whole schedule for ``digits`` from ``start`` (for tests and tools): queue them
        and poll every deadline in turn."""
        self.send(digits, start)
        packets: list[DtmfPacket] = []
        while (deadline := self.next_deadline()) is not None:
            packets.extend(self.poll(deadline))
        return packets

    def _emit(self, at: float) -> DtmfPacket:
        ev = self._event
        if ev is None:
            digit = self._queue.popleft()
            ev = self._event = _Event(digit, at, self.timestamp_at(at))
            self.events_sent += 1
        if ev.updates_sent < self._updates:
            k = ev.updates_sent
            ev.updates_sent += 1
            duration = min((k + 1) * self._interval_ticks, self._duration_ticks)
            packet = self._packet(ev, at, k == 0, False, duration)
            if ev.updates_sent < self._updates:
                self._next_at = ev.start + ev.updates_sent * self.interval
            else:
                self._next_at = ev.start + self.duration
            return packet
        ev.ends_sent += 1
        packet = self._packet(ev, at, False, True, self._duration_ticks)
        if ev.ends_sent < self.end_packets:
            self._next_at = ev.start + self.duration + ev.ends_sent * self.interval
        else:
            self._event = None
            self._free_at = at + self.gap
            self._next_at = self._free_at if self._queue else None
        return packet

    def _packet(self, ev: _Event, at: float, marker: bool, end: bool, duration: int) -> DtmfPacket:
        self.packets_sent += 1
        payload = bytes((ev.code, (0x80 if end else 0) | self.volume, duration >> 8, duration & 0xFF))
        return DtmfPacket(at, ev.digit, self.payload_type, ev.timestamp, marker, payload)


def schedule_rtp(packets: Sequence[DtmfPacket], sequence: int, ssrc: int) -> list[tuple[float, bytes]]:
    """``(at, rtp)`` for a schedule from :meth:`DtmfGenerator.packets_for`, numbered from
    ``sequence`` (for a stream of events alone, as in tests)."""
    return [(p.at, p.rtp(sequence + i, ssrc)) for i, p in enumerate(packets)]
