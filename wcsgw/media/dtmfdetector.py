"""Receiving RFC 4733 DTMF: the digits a peer's telephone-event packets carry, each key
press reported once however many packets (updates, three end packets, long-event segments)
tell of it. The payload format is :mod:`wcsgw.media.dtmf`'s.
"""

from __future__ import annotations

from wcsgw.media.dtmf import MAX_DURATION, DtmfError, TelephoneEvent
from wcsgw.media.rtp import RtpError, parse_rtp

__all__ = ["DtmfDetector"]


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
