"""The ``tone`` test line's stream: a 1 kHz sine in G.711, 20 ms a packet, on a true clock.

Kept apart from the call (:mod:`wcsgw.calls.testcall`) because it is the one part of a test
line with timing rules of its own, and they are easiest to get right — and to test on a fake
clock — with no SIP around: the payload is computed once (1 kHz at 8 kHz sampling repeats
exactly in 20 ms), and the packet clock follows the wall clock whatever the reactor does.  A
late reactor catches up with a burst of up to 100 ms, so the listener hears no gap; a longer
stall is skipped, but the timestamps still move on by it, so the receiver's clock stays true.

numpy and the G.711 tables are imported by :func:`tone_frame`, when a ``tone`` call starts:
the test lines are built at every start, and a gateway that only relays never needs them
(idle memory, issue 19).
"""

from __future__ import annotations

import random

from wcsgw.media.rtp import build_rtp
from wcsgw.sdp.codecs import Codec

__all__ = ["FRAME_SECONDS", "SAMPLE_RATE", "Tone", "tone_frame"]

TONE_HZ = 1000.0
SAMPLE_RATE = 8000
FRAME_SAMPLES = 160  # 20 ms at 8 kHz
FRAME_SECONDS = FRAME_SAMPLES / SAMPLE_RATE
#: Packets the tone sends at once to catch up with a late reactor (100 ms); longer stalls
#: are skipped.
MAX_TONE_BURST = 5
#: -12 dBFS: clearly audible, far from clipping after any gain a phone adds.
TONE_AMPLITUDE = 0.25 * 32767


def tone_frame(codec: str) -> bytes:
    """One 20 ms packet of the 1 kHz tone in ``codec`` (PCMU/PCMA).

    1 kHz at 8 kHz sampling is 8 samples per period, so 160 samples hold exactly 20 periods:
    the same payload, sent again and again, is a continuous sine.
    """
    import numpy as np

    from wcsgw.media import g711

    n = np.arange(FRAME_SAMPLES)
    samples = TONE_AMPLITUDE * np.sin(2 * np.pi * TONE_HZ * n / SAMPLE_RATE)
    return g711.encode(codec, samples)


class Tone:
    """One tone stream in ``codec``: its SSRC, sequence numbers and timestamps (random
    starts, RFC 3550 §5.1).  ``first``: whether its first packet still has to go (it carries
    the marker, and the numbers advance only after it)."""

    def __init__(self, codec: Codec, *, first: bool = True) -> None:
        self.payload = tone_frame(codec.name)
        self.payload_type = codec.payload_type or 0
        rng = random.SystemRandom()
        self.ssrc, self.seq, self.ts = rng.getrandbits(32), rng.getrandbits(16), rng.getrandbits(32)
        self.first = first

    def packets(self, count: int) -> list[bytes]:
        """The packets due when ``count`` 20 ms ticks have passed since the last call
        (``LoopingCall.withCount``): up to :data:`MAX_TONE_BURST` of them; the ticks beyond
        are skipped, but the timestamps still advance by them so our clock stays true to the
        wall clock."""
        burst = min(count, MAX_TONE_BURST)
        skipped = count - burst
        out: list[bytes] = []
        for _ in range(burst):
            if not self.first:
                self.ts = (self.ts + FRAME_SAMPLES * (1 + skipped)) & 0xFFFFFFFF
                self.seq = (self.seq + 1) & 0xFFFF
            skipped = 0
            out.append(build_rtp(
                payload_type=self.payload_type, sequence=self.seq,
                timestamp=self.ts, ssrc=self.ssrc, payload=self.payload, marker=self.first,
            ))
            self.first = False
        return out
