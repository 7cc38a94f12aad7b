"""The ``dtmf`` test line's stream: silence, and each digit it hears said back, twice over.

A user who presses keys on a call to ``dtmf`` must learn two things with no PBX anywhere:
that the digits arrive, and what they sound like.  So each digit received is

* sent back as a DTMF *event* the way it came — RFC 4733 telephone-event packets in this
  stream when it came as RTP events (the gateway reports them to the browser: the Web SDK's
  ``dtmf`` event, the Phone UI's "Received DTMF"); a digit that came by SIP INFO is answered
  by an INFO of the call's (:mod:`wcsgw.calls.testcall`), not here;
* then *played*: its two DTMF frequencies (697-941 Hz row, 1209-1633 Hz column) as 200 ms of
  G.711 audio, so the user hears it whatever the far end does with events.

Between digits the line sends silence, not nothing: the gateway's RTP timeout watches the
SIP side's RTP, and a line that only spoke when spoken to would be hung up.  The events and
the audio share one SSRC, sequence and clock (RFC 4733 §2.1); an event's packets carry the
timestamp of its first tick, the audio goes on after it.  Same packet clock as ``tone``
(:mod:`wcsgw.calls.testtone`): a late reactor gets a burst of up to 100 ms, a longer stall is
skipped with the timestamps moved on.  Sans-IO: digits and tick counts in, packets out.

numpy and the G.711 tables are imported when a ``dtmf`` call starts (:class:`DigitPlayer`),
not with this module: the test lines are built at every start (idle memory, issue 19).
"""

from __future__ import annotations

import functools
import random
from collections import deque
from typing import TYPE_CHECKING, Callable

import attrs

from wcsgw.calls.testtone import FRAME_SAMPLES, MAX_TONE_BURST, SAMPLE_RATE
from wcsgw.media.dtmf import DIGITS, TelephoneEvent, event_code
from wcsgw.media.dtmfdetector import DtmfDetector
from wcsgw.media.rtp import RtpError, build_rtp, parse_rtp
from wcsgw.sdp.codecs import Codec

if TYPE_CHECKING:
    import numpy as np

__all__ = ["DTMF_PAIRS", "DigitPlayer", "digit_from_rtp", "pair_samples"]

#: Each key's (row, column) frequencies in Hz (ITU-T Q.23).
DTMF_PAIRS: dict[str, tuple[int, int]] = {
    key: (row, col)
    for row, keys in zip((697, 770, 852, 941), ("123A", "456B", "789C", "*0#D"))
    for col, key in zip((1209, 1336, 1477, 1633), keys)
}
#: 20 ms ticks of one event's packets (100 ms, the gateway's own DTMF duration).
EVENT_FRAMES = 5
#: The end packet goes out this many times in all (RFC 4733 §2.5.1.4).
END_PACKETS = 3
#: 20 ms ticks of the played tone pair (200 ms: long enough to hear and to measure).
TONE_FRAMES = 10
#: 20 ms ticks of silence after each digit, so two equal digits are heard as two.
GAP_FRAMES = 5
#: Digits waiting beyond this are dropped: a flood of events must not grow the queue.
MAX_PENDING = 32
#: Each frequency at -14 dBFS: the pair peaks near -8 dBFS, loud and far from clipping.
PAIR_AMPLITUDE = 0.2 * 32767
#: Fade in and out over 5 ms, so the tone starts and stops without a click.
RAMP_SAMPLES = 40
#: The volume field of our event reports, -dBm0 (RFC 4733 §2.3.2).
EVENT_VOLUME = 10


def pair_samples(digit: str) -> np.ndarray:
    """The played tone of ``digit``: :data:`TONE_FRAMES` frames of its two sines, faded in
    and out (float samples at 8 kHz)."""
    import numpy as np

    low, high = DTMF_PAIRS[digit.upper()]
    n = np.arange(TONE_FRAMES * FRAME_SAMPLES)
    samples = PAIR_AMPLITUDE * (np.sin(2 * np.pi * low * n / SAMPLE_RATE)
                                + np.sin(2 * np.pi * high * n / SAMPLE_RATE))
    ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(RAMP_SAMPLES) / RAMP_SAMPLES)
    samples[:RAMP_SAMPLES] *= ramp
    samples[-RAMP_SAMPLES:] *= ramp[::-1]
    return samples


def digit_from_rtp(detector: DtmfDetector, data: bytes, payload_type: int | None) -> str | None:
    """The digit a received packet begins, if it is a telephone-event packet of
    ``payload_type`` starting a new key press (:class:`DtmfDetector` reports each press once);
    None for audio, other payload types and anything that does not parse."""
    if payload_type is None:
        return None
    try:
        header = parse_rtp(data)
        if header.payload_type != payload_type:
            return None
        return detector.receive(header.payload(data), header.timestamp, header.ssrc)
    except (RtpError, ValueError):
        return None


@attrs.frozen(slots=True)
class _Step:
    """What one 20 ms tick sends: an audio frame and/or one event report."""

    audio: bytes | None
    event: TelephoneEvent | None = None
    #: the event's first packet (marker, and its timestamp is this tick's)
    starts: bool = False
    #: the digit's last tick: it is played out
    done: bool = False


class DigitPlayer:
    """The ``dtmf`` line's stream in ``codec`` (PCMU/PCMA); ``event_payload_type`` is the
    agreed telephone-event type (None: the digits are only played).  Random SSRC, sequence
    and timestamp starts (RFC 3550 §5.1)."""

    def __init__(self, codec: Codec, event_payload_type: int | None,
                 rng: random.Random | None = None) -> None:
        self.codec = codec.name
        self.payload_type = codec.payload_type or 0
        self.event_payload_type = event_payload_type
        rng = rng or random.SystemRandom()
        self.ssrc, self.seq, self.ts = rng.getrandbits(32), rng.getrandbits(16), rng.getrandbits(32)
        import numpy as np

        from wcsgw.media import g711

        #: G.711 in this stream's codec (PCMU/PCMA), float or int16 samples in
        self._encode: Callable[[np.ndarray], bytes] = functools.partial(g711.encode, self.codec)
        self.silence = self._encode(np.zeros(FRAME_SAMPLES))
        self.first = True
        self.digits_played = 0
        self.dropped = 0
        self._steps: deque[_Step] = deque()
        self._pending = 0
        self._event_ts = self.ts

    @property
    def pending(self) -> int:
        """Digits queued and not played out yet."""
        return self._pending

    def press(self, digit: str, *, event: bool) -> bool:
        """Queue ``digit`` (0-9 * # A-D): its event reports first when ``event`` (and an
        event type was agreed), then its tone pair, then a short silence.  False when it is
        not a DTMF digit or too many wait already (then it is dropped)."""
        digit = digit.upper()
        if len(digit) != 1 or digit not in DIGITS:
            return False
        if self._pending >= MAX_PENDING:
            self.dropped += 1
            return False
        self._pending += 1
        steps = self._steps
        code = event_code(digit)
        with_event = event and self.event_payload_type is not None
        if with_event:
            for k in range(EVENT_FRAMES):
                report = TelephoneEvent(code, end=k == EVENT_FRAMES - 1, volume=EVENT_VOLUME,
                                        duration=(k + 1) * FRAME_SAMPLES)
                steps.append(_Step(None, report, starts=k == 0))
        tone = pair_samples(digit)
        end = TelephoneEvent(code, end=True, volume=EVENT_VOLUME,
                             duration=EVENT_FRAMES * FRAME_SAMPLES)
        for k in range(TONE_FRAMES):
            frame = self._encode(tone[k * FRAME_SAMPLES:(k + 1) * FRAME_SAMPLES])
            # the end report's repeats ride along with the first frames of the tone
            again = end if with_event and k < END_PACKETS - 1 else None
            steps.append(_Step(frame, again))
        steps.extend(_Step(self.silence) for _ in range(GAP_FRAMES - 1))
        steps.append(_Step(self.silence, done=True))
        return True

    def packets(self, count: int) -> list[bytes]:
        """The packets due when ``count`` 20 ms ticks have passed since the last call: up to
        :data:`MAX_TONE_BURST` ticks of them; the ticks beyond are skipped, but the
        timestamps still move on by them."""
        burst = min(count, MAX_TONE_BURST)
        if not self.first:
            self.ts = (self.ts + FRAME_SAMPLES * (count - burst)) & 0xFFFFFFFF
        out: list[bytes] = []
        for _ in range(burst):
            step = self._steps.popleft() if self._steps else None
            if step is None:
                out.append(self._rtp(self.payload_type, self.ts, self.silence, self.first))
            else:
                self._send(step, out)
            self.first = False
            self.ts = (self.ts + FRAME_SAMPLES) & 0xFFFFFFFF
        return out

    def _send(self, step: _Step, out: list[bytes]) -> None:
        if step.event is not None:
            assert self.event_payload_type is not None
            if step.starts:
                self._event_ts = self.ts
            out.append(self._rtp(self.event_payload_type, self._event_ts, step.event.pack(),
                                 step.starts))
        if step.done:
            self._pending -= 1
            self.digits_played += 1
        if step.audio is not None:
            out.append(self._rtp(self.payload_type, self.ts, step.audio, self.first))

    def _rtp(self, payload_type: int, timestamp: int, payload: bytes, marker: bool) -> bytes:
        packet = build_rtp(payload_type=payload_type, sequence=self.seq, timestamp=timestamp,
                           ssrc=self.ssrc, payload=payload, marker=marker)
        self.seq = (self.seq + 1) & 0xFFFF
        return packet
