"""The Opus a browser sends, for the load caller: which encoder settings the gateway's answer
leads Chromium to, and the frames they give.

The gateway asks the browser for a narrower Opus band on a transcoded call
(``maxplaybackrate`` in its fmtp, :mod:`wcsgw.sdp.opusband`), and what that saves is the
gateway's decoding of the browser's stream.  A bench caller that encoded fullband whatever the
answer said could not show it end to end, so the caller maps the answer's fmtp the way WebRTC
does (``audio_encoder_opus.cc``): ``maxplaybackrate`` -> the encoder's maximum bandwidth
(<= 8000 narrowband, <= 12000 mediumband, <= 16000 wideband, <= 24000 superwideband, else
fullband) and, without ``maxaveragebitrate``, the default bitrate for that rate (12 kbit/s up
to 8 kHz, 20 up to 16 kHz, 32 above); complexity 9, WebRTC's desktop default (the same
settings ``bench/codec_cost.py --bridge`` uses as "the browser, band-limited").
``sprop-maxcapturerate`` in the answer is what the *gateway* sends, so the sender ignores it.
An answer without ``maxplaybackrate`` keeps the caller's earlier settings (fullband,
32 kbit/s, complexity 5), so figures taken before stay comparable.

The frames are encoded once per settings, before any call: a phase-continuous 440 Hz tone,
one second of it (50 frames; 440 whole cycles, so the loop has no seam), sent in a cycle —
the per-packet cost of the caller is an index, whatever the band.  The encoder's input runs
at the band's own rate (8 kHz for narrowband...), which gives the same bitstream class as a
48 kHz microphone through a band-limited encoder, for less of the caller's CPU at start-up.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FRAMES_PER_CYCLE", "OpusSend", "encode_tone", "opus_send_settings"]

#: One second of 20 ms frames: 440 Hz completes whole cycles, the loop is seamless.
FRAMES_PER_CYCLE = 50
#: Frames encoded and thrown away first: a fresh encoder's first frames are larger and odd.
_WARMUP = 10
#: WebRTC's (desktop) Opus complexity.
CHROMIUM_COMPLEXITY = 9
#: (highest maxplaybackrate, libopus max bandwidth, encoder input rate, default bitrate)
_BANDS = (
    (8000, "narrowband", 8000, 12000),
    (12000, "mediumband", 12000, 20000),
    (16000, "wideband", 16000, 20000),
    (24000, "superwideband", 24000, 32000),
)


@dataclass(frozen=True)
class OpusSend:
    """Encoder settings of the caller's Opus stream; ``max_bandwidth`` None: not limited."""

    rate: int
    bitrate: int
    complexity: int
    max_bandwidth: str | None = None

    @property
    def label(self) -> str:
        return f"{self.max_bandwidth or 'fullband'} {self.bitrate // 1000}k c{self.complexity}"


#: No ``maxplaybackrate`` in the answer (or ``--opus-band fullband``): the caller's settings
#: from before it honoured the fmtp.
UNLIMITED = OpusSend(rate=48000, bitrate=32000, complexity=5)


def _int_param(params: dict[str, str], name: str) -> int | None:
    try:
        value = int(params.get(name, ""))
    except ValueError:
        return None
    return value if value > 0 else None


def opus_send_settings(fmtp: str | None, *, honour: bool = True) -> OpusSend:
    """The settings Chromium would encode with, given the Opus fmtp of the gateway's answer
    (``"minptime=10;useinbandfec=1;maxplaybackrate=8000"``); :data:`UNLIMITED` when the fmtp
    has no (valid) ``maxplaybackrate`` or ``honour`` is False."""
    params: dict[str, str] = {}
    for item in (fmtp or "").split(";"):
        name, _, value = item.partition("=")
        params.setdefault(name.strip().lower(), value.strip())
    playback = _int_param(params, "maxplaybackrate")
    if not honour or playback is None:
        return UNLIMITED
    average = _int_param(params, "maxaveragebitrate")
    if average is not None:
        average = min(max(average, 6000), 510000)  # RFC 7587 §6.1's range
    for limit, bandwidth, rate, bitrate in _BANDS:
        if playback <= limit:
            return OpusSend(rate, average or bitrate, CHROMIUM_COMPLEXITY, bandwidth)
    return OpusSend(48000, average or 32000, CHROMIUM_COMPLEXITY, "fullband")


def encode_tone(send: OpusSend) -> list[bytes]:
    """:data:`FRAMES_PER_CYCLE` consecutive 20 ms Opus frames of a 440 Hz tone, as ``send``
    encodes them (after a warm-up)."""
    import numpy as np

    from wcsgw.media.opus import OpusEncoder

    n = send.rate // 50
    encoder = OpusEncoder(send.rate, complexity=send.complexity, bitrate=send.bitrate,
                          max_bandwidth=send.max_bandwidth)
    t = np.arange(n * FRAMES_PER_CYCLE) / send.rate
    pcm = (3000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    frames = [encoder.encode(pcm[n * (k % FRAMES_PER_CYCLE): n * (k % FRAMES_PER_CYCLE + 1)])
              for k in range(_WARMUP + FRAMES_PER_CYCLE)]
    return frames[_WARMUP:]
