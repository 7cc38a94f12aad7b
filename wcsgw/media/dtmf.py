"""RFC 4733 DTMF events: the payload format, the digits and their event codes.

DTMF crosses a call as *events*, not tones: ``telephone-event`` packets in the audio's RTP
stream (same SSRC, sequence space and clock as the audio, RFC 4733 §2.1). Each packet carries
one 4-byte report (§2.3)::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    |     event     |E|R| volume    |          duration             |

``event`` is 0-9 for the digits, 10 ``*``, 11 ``#``, 12-15 ``A``-``D`` (§3.2); ``volume`` the
power level in -dBm0; ``duration`` how long the event has lasted so far, in timestamp units.
Every packet of one event carries the same RTP timestamp: the instant the event began.

What both ends share lives here; sending is :class:`~wcsgw.media.dtmfgenerator.DtmfGenerator`
(the packet schedule for a digit string), receiving
:class:`~wcsgw.media.dtmfdetector.DtmfDetector` (each key press once). The media bridge puts
both into its streams.
"""

from __future__ import annotations

import attrs

__all__ = [
    "DIGITS",
    "MAX_DURATION",
    "DtmfError",
    "TelephoneEvent",
    "event_code",
    "event_digit",
    "normalize_digits",
]

#: The DTMF digits in event-code order (RFC 4733 §3.2): code = index.
DIGITS = "0123456789*#ABCD"
_CODES = {d: i for i, d in enumerate(DIGITS)}
_CODES.update({d.lower(): i for d, i in _CODES.items() if d.isalpha()})

#: The 16-bit duration field's limit, in timestamp units (§2.5.1.3: longer events go on in
#: segments).
MAX_DURATION = 0xFFFF


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

