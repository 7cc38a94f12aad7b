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
Telephone-event packets never reach the tap: DTMF is not audio.
"""

from __future__ import annotations

import queue
import struct

from wcsgw.media.rtp import RtpError, parse_rtp

__all__ = ["QUEUE_SECONDS", "TapItem", "RecordingTap"]

#: how much audio the queue holds before it drops (both directions, 20 ms packets)
QUEUE_SECONDS = 2.0
#: (side: 0 browser / 1 SIP side, arrival time, sequence number, RTP timestamp, SSRC, payload)
TapItem = tuple[int, float, int, int, int, bytes]

_HEADER = struct.Struct("!BBHII")


class RecordingTap:
    """One recorded call's queue, and the two callables its bridge's directions call
    (:attr:`from_webrtc`, :attr:`from_sip`: ``(packet, now)``)."""

    def __init__(self, seconds: float = QUEUE_SECONDS) -> None:
        # 50 packets a second in each of two directions
        self.queue: queue.Queue[TapItem] = queue.Queue(maxsize=max(1, int(seconds * 100)))
        #: packets not queued because the queue was full (the recording has a gap there)
        self.dropped = 0
        #: packets taken that were not well-formed RTP after all (counted, not queued)
        self.malformed = 0

    def from_webrtc(self, packet: bytes, now: float) -> None:
        self._put(0, packet, now)

    def from_sip(self, packet: bytes, now: float) -> None:
        self._put(1, packet, now)

    def _put(self, side: int, packet: bytes, now: float) -> None:
        b0, _, seq, ts, ssrc = _HEADER.unpack_from(packet)
        if b0 == 0x80:
            payload = packet[12:]
        else:  # CSRCs, an extension or padding: the full parse
            try:
                payload = parse_rtp(packet).payload(packet)
            except RtpError:
                self.malformed += 1
                return
        try:
            self.queue.put_nowait((side, now, seq, ts, ssrc, payload))
        except queue.Full:
            self.dropped += 1
