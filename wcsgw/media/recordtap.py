"""The recording tap: what the media bridge hands a call's recording, packet by packet.

Why a queue between the bridge and the recording: the bridge runs on the event loop, for
every call at once, and must never wait — least of all for a decoder or a disk.  So while a
call is recorded each direction of its bridge (:attr:`wcsgw.media.direction.Direction.tap`)
gives every valid audio packet it takes (SRTP already removed, nothing decoded) to
:meth:`RecordingTap.put`, which copies out the payload, the RTP numbers and the arrival time
and queues them; a worker thread (:mod:`wcsgw.media.recordworker`) decodes and writes.  The
queue is bounded (:data:`QUEUE_SECONDS` of audio for both directions at 20 ms packets): when
the worker falls that far behind — a disk that stalls — packets are dropped and counted
(:attr:`RecordingTap.dropped`), never waited for.  The recording then has a gap, the call has
none.

When no recording is on the bridge pays one attribute check per packet (``tap is None``).
Telephone-event packets reach the tap as events (:meth:`Tap.event`): DTMF is not audio and is
not recorded, but its sequence numbers are queued (with no payload) so that the writer does not
take the gap they leave in the audio's numbers for a loss to conceal.
"""

from __future__ import annotations

import queue
import struct
from typing import Protocol

from wcsgw.media.rtp import RtpError, parse_rtp

__all__ = ["QUEUE_SECONDS", "Tap", "TapItem", "RecordingTap"]

#: how much audio the queue holds before it drops (both directions, 20 ms packets)
QUEUE_SECONDS = 2.0
#: (side: 0 browser / 1 SIP side, arrival time, sequence number, RTP timestamp, SSRC, payload
#: type, payload — empty for an event: only its number counts)
TapItem = tuple[int, float, int, int, int, int, bytes]


class Tap(Protocol):
    """What one direction of a bridge hands a recording (``Direction.tap``)."""

    def audio(self, packet: bytes, now: float) -> None:
        """An audio packet of the direction's codec, as it arrived (SRTP removed)."""

    def event(self, packet: bytes, now: float) -> None:
        """A telephone-event packet (not recorded; its sequence number is accounted)."""


class _SideTap:
    """:class:`Tap` of one side of a :class:`RecordingTap`."""

    __slots__ = ("_put", "_side")

    def __init__(self, owner: "RecordingTap", side: int) -> None:
        self._put = owner._put
        self._side = side

    def audio(self, packet: bytes, now: float) -> None:
        self._put(self._side, packet, now, True)

    def event(self, packet: bytes, now: float) -> None:
        self._put(self._side, packet, now, False)

_HEADER = struct.Struct("!BBHII")


class RecordingTap:
    """One recorded call's queue, and the two :class:`Tap` its bridge's directions call
    (:attr:`from_webrtc`, :attr:`from_sip`)."""

    def __init__(self, seconds: float = QUEUE_SECONDS) -> None:
        # 50 packets a second in each of two directions
        self.queue: queue.Queue[TapItem] = queue.Queue(maxsize=max(1, int(seconds * 100)))
        #: packets not queued because the queue was full (the recording has a gap there)
        self.dropped = 0
        #: packets taken that were not well-formed RTP after all (counted, not queued)
        self.malformed = 0
        self.from_webrtc: Tap = _SideTap(self, 0)
        self.from_sip: Tap = _SideTap(self, 1)

    def _put(self, side: int, packet: bytes, now: float, audio: bool) -> None:
        b0, b1, seq, ts, ssrc = _HEADER.unpack_from(packet)
        if not audio:
            payload = b""
        elif b0 == 0x80:
            payload = packet[12:]
        else:  # CSRCs, an extension or padding: the full parse
            try:
                payload = parse_rtp(packet).payload(packet)
            except RtpError:
                self.malformed += 1
                return
        try:
            self.queue.put_nowait((side, now, seq, ts, ssrc, b1 & 0x7F, payload))
        except queue.Full:
            self.dropped += 1
