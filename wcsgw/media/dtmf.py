"""RFC 4733 DTMF events: the payload, a sans-IO generator and a detector.

DTMF crosses a call as *events*, not tones: ``telephone-event`` packets in the audio's RTP
stream (same SSRC, sequence space and clock as the audio, RFC 4733 §2.1). Each packet carries
one 4-byte report (§2.3)::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    |     event     |E|R| volume    |          duration             |

``event`` is 0-9 for the digits, 10 ``*``, 11 ``#``, 12-15 ``A``-``D`` (§3.2); ``volume`` the
power level in -dBm0; ``duration`` how long the event has lasted so far, in timestamp units.
Every packet of one event carries the same RTP timestamp: the instant the event began.

:class:`DtmfGenerator` produces the packet schedule for a digit string (sans-IO: it is asked
what is due at ``now`` and when it next needs to be asked); :class:`DtmfDetector` turns the
packets a peer sends into digits, once each. The media bridge puts both into its streams.

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
detector does understand segments from peers (see :class:`DtmfDetector`).
"""

from __future__ import annotations

import random
from collections import deque
from typing import Callable, Sequence

import attrs

from wcsgw.media.rtp import FIXED_HEADER, RtpError, parse_rtp

__all__ = [
    "DIGITS",
    "DtmfError",
    "DtmfDetector",
    "DtmfGenerator",
    "DtmfPacket",
    "TelephoneEvent",
    "event_code",
    "event_digit",
    "normalize_digits",
    "schedule_rtp",
]

#: The DTMF digits in event-code order (RFC 4733 §3.2): code = index.
DIGITS = "0123456789*#ABCD"
_CODES = {d: i for i, d in enumerate(DIGITS)}
_CODES.update({d.lower(): i for d, i in _CODES.items() if d.isalpha()})

MAX_DURATION = 0xFFFF
#: Small tolerance when comparing ``now`` with a deadline: a timer that fires "at" the
#: deadline may see a float a hair below it.
_EPSILON = 1e-6


class DtmfError(ValueError):
    """A digit string or an event payload that cannot be used (the message says why)."""


def event_code(digit: str) -> int:
    """The RFC 4733 event code of one DTMF digit (``A``-``D`` in either case)."""
    try:
        return _CODES[digit]
    except KeyError:
        raise DtmfError(f"{digit!r} is not a DTMF digit (0-9, *, #, A-D)") from None


def event_digit(code: int) -> str | None:
    """The digit of an event code, or None for events that are not DTMF (16 and up)."""
    return DIGITS[code] if 0 <= code < 16 else None


def normalize_digits(digits: object) -> str:
    """Check a digit string and return it upper-cased; DtmfError names the first bad one.

    Separators people type (spaces, dashes) are errors, not skipped: the API says which
    digits are sent, and a silently shortened string would be worse than a clear refusal."""
    if not isinstance(digits, str) or not digits:
        raise DtmfError("no digits to send")
    for d in digits:
        event_code(d)
    return digits.upper()


@attrs.frozen(slots=True)
class TelephoneEvent:
    """One RFC 4733 §2.3 event report."""

    event: int
    end: bool = False
    volume: int = 10
    duration: int = 0

    @property
    def digit(self) -> str | None:
        return event_digit(self.event)

    def pack(self) -> bytes:
        if not 0 <= self.event <= 255 or not 0 <= self.volume <= 63 or not 0 <= self.duration <= MAX_DURATION:
            raise DtmfError(f"event report out of range: {self!r}")
        return bytes((self.event, (0x80 if self.end else 0) | self.volume, self.duration >> 8, self.duration & 0xFF))

    @classmethod
    def parse(cls, payload: bytes) -> "TelephoneEvent":
        """The report a packet is about. A payload may hold several 4-byte reports (§2.5.1.5:
        a sender may pack the final report of an event that just ended with the report of the
        next); the packet's timestamp is that of the last one, so the last one is returned."""
        if len(payload) < 4:
            raise DtmfError(f"telephone-event payload of {len(payload)} bytes (at least 4)")
        off = (len(payload) // 4 - 1) * 4
        b = payload[off + 1]
        return cls(payload[off], bool(b & 0x80), b & 0x3F, payload[off + 2] << 8 | payload[off + 3])


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
        self.code = _CODES[digit]
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


class DtmfDetector:
    """Digits from received telephone-event packets, each reported once.

    An event is identified by its RTP timestamp (all its packets share it, §2.5.2.1): the
    first packet seen with a new timestamp — normally the start packet, or an update or an
    end packet when the earlier ones were lost — reports the digit; updates, the end
    packets and their retransmissions only refresh the state. A packet whose timestamp is
    older than the current event's (reordered, or a late retransmission) is ignored.

    Long events (§2.5.1.3) arrive as segments: when the duration reaches the 16-bit limit
    the sender goes on with a new timestamp (the old one plus the duration) and no marker.
    A new timestamp for the same, not yet ended event whose last report was near the limit
    is such a continuation, not a new key press.

    A new SSRC (another source behind the stream) starts afresh. Events that are not DTMF
    (codes 16 and up: flash, tones) are tracked but not reported.
    """

    __slots__ = ("_ssrc", "_timestamp", "_code", "_ended", "_duration", "digits", "ignored")

    def __init__(self) -> None:
        self._ssrc: int | None = None
        self._timestamp: int | None = None
        self._code = -1
        self._ended = False
        self._duration = 0
        #: every digit reported, in order
        self.digits: list[str] = []
        #: packets that reported nothing new (updates, retransmissions, late packets)
        self.ignored = 0

    def receive(self, payload: bytes, timestamp: int, ssrc: int | None = None) -> str | None:
        """Account one telephone-event payload with its packet's RTP timestamp (and SSRC);
        return the digit when it begins a new DTMF event, else None. DtmfError for a payload
        shorter than one report."""
        report = TelephoneEvent.parse(payload)
        if ssrc != self._ssrc:
            self._ssrc = ssrc
            self._timestamp = None
        timestamp &= 0xFFFFFFFF
        last = self._timestamp
        if last is not None:
            delta = (timestamp - last) & 0xFFFFFFFF
            if delta >= 0x80000000:  # older than the current event: a late packet
                self.ignored += 1
                return None
            if delta == 0:
                if report.event == self._code:
                    self._duration = max(self._duration, report.duration)
                    self._ended = self._ended or report.end
                    self.ignored += 1
                    return None
                # a different event with the same timestamp: a new event after all
            elif (
                report.event == self._code
                and not self._ended
                and self._duration >= MAX_DURATION - 0x1000
                and delta <= MAX_DURATION + 0x1000
            ):
                # the next segment of a long event
                self._timestamp = timestamp
                self._duration = report.duration
                self._ended = report.end
                self.ignored += 1
                return None
        self._timestamp = timestamp
        self._code = report.event
        self._ended = report.end
        self._duration = report.duration
        digit = report.digit
        if digit is None:
            self.ignored += 1
            return None
        self.digits.append(digit)
        return digit

    def receive_rtp(self, packet: bytes) -> str | None:
        """:meth:`receive` for a whole RTP packet (the caller has checked its payload type)."""
        try:
            header = parse_rtp(packet)
        except RtpError as exc:
            raise DtmfError(str(exc)) from None
        return self.receive(header.payload(packet), header.timestamp, header.ssrc)


def schedule_rtp(packets: Sequence[DtmfPacket], sequence: int, ssrc: int) -> list[tuple[float, bytes]]:
    """``(at, rtp)`` for a schedule from :meth:`DtmfGenerator.packets_for`, numbered from
    ``sequence`` (for a stream of events alone, as in tests)."""
    return [(p.at, p.rtp(sequence + i, ssrc)) for i, p in enumerate(packets)]
