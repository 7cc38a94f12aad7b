"""One way of the video relay: the per-packet header rewrite (sans-IO).

Split from :mod:`wcsgw.media.video` like the audio bridge's :mod:`wcsgw.media.direction`: the
per-packet path, which runs for every video packet, apart from the relay's RTCP feedback
handling, which runs a few times a second.
"""

from __future__ import annotations

import random
from typing import Callable, Optional

from wcsgw.media.rtp import FIXED_HEADER
from wcsgw.media.stream import InboundStream, OutboundStream

__all__ = ["VIDEO_CLOCK", "Send", "VideoDirection"]

#: every video codec we relay (VP8, H.264) runs its RTP clock at 90 kHz (RFC 7741, RFC 6184)
VIDEO_CLOCK = 90000

Send = Callable[[bytes], None]

_unpack_from = FIXED_HEADER.unpack_from
_pack = FIXED_HEADER.pack


class VideoDirection:
    """One way of the relay: packets from one leg to the other, only their header rewritten.

    ``pts_in`` holds every payload type the source may send the relayed codec with
    (``also_in``: see :class:`~wcsgw.media.video.VideoLeg`); the marker bit passes as it
    came, because for video it means "last packet of a frame"."""

    __slots__ = (
        "pt_in", "pts_in", "pt_out", "outbound", "inbound", "send", "packets", "dropped", "malformed",
        "paused", "last_packet_at",
    )

    def __init__(self, pt_in: int, pt_out: int, ssrc: int, send: Send, rng: random.Random,
                 also_in: frozenset[int] = frozenset()) -> None:
        self.pt_in = pt_in
        self.pts_in = frozenset({pt_in}) | also_in
        self.pt_out = pt_out
        self.outbound = OutboundStream(ssrc, VIDEO_CLOCK, rng=rng)
        self.inbound = InboundStream(VIDEO_CLOCK)
        self.send = send
        self.packets = 0
        self.dropped = 0
        self.malformed = 0
        self.paused = False
        self.last_packet_at: Optional[float] = None

    def handle(self, packet: bytes, now: float) -> bool:
        """Relay one packet; False when it was not (wrong payload type, malformed, paused)."""
        if len(packet) < 12:
            self.malformed += 1
            return False
        b0, b1, seq, ts, ssrc = _unpack_from(packet)
        if b0 >> 6 != 2:
            self.malformed += 1
            return False
        if b1 & 0x7F != self.pt_in and b1 & 0x7F not in self.pts_in:
            self.dropped += 1
            return False
        self.packets += 1
        self.last_packet_at = now
        self.inbound.update(ssrc, seq, ts, now, len(packet) - 12)
        if self.paused:
            return False
        out_seq, out_ts, _ = self.outbound.translate(ssrc, seq, ts, now, len(packet) - 12)
        self.send(_pack(b0, (b1 & 0x80) | self.pt_out, out_seq, out_ts, self.outbound.ssrc)
                  + packet[12:])
        return True
