"""Any-to-any audio transcoding for one call: decode -> resample -> re-packetize -> encode.

Used by the bridge (:mod:`wcsgw.media.bridge`) only when the two legs share no codec. Any
browser codec (Opus, PCMU, PCMA) meets any SIP codec (PCMU, PCMA, G.729, Speex nb/wb, Opus,
G.722): the codecs themselves come from :func:`wcsgw.media.audiocodec.make_codec`, one
instance per leg (each holds that leg's encoder *and* decoder, so the two directions share
nothing but the object). Only payloads and their timing are handled here; RTP headers, SSRC and
sequence numbers, DTMF and RTCP are the bridge's.

One :class:`~wcsgw.media.pipe.Pipe` per direction::

    RTP (seq, ts, payload, arrival)
      -> JitterBuffer        reorder; zero delay in order; wait <= 2 x jitter for a gap
      -> decode / conceal    the source codec (Opus: in-band FEC for the last lost frame)
      -> Resampler           source sample rate -> target sample rate (none when equal)
      -> FIFO                cut into packets of the target leg's ptime
      -> encode              the target codec
      -> (ts, payload)       ts = where the packet's first sample is, in the target RTP clock

How each pipe keeps time, conceals loss and hides the resampler's
latency is told in :mod:`wcsgw.media.pipe`; here the two legs' codecs are made and paired.
"""

from __future__ import annotations

from typing import Any

from wcsgw.media.audiocodec import AudioCodec, CodecError, make_codec
from wcsgw.media.pipe import Pipe
from wcsgw.sdp.codecs import parse_fmtp

__all__ = ["Transcoder"]


def _leg_codec(leg: Any, other: Any, **options: Any) -> AudioCodec:
    """A codec instance for one leg from its description (``codec``/``name``, ``clock_rate``,
    ``fmtp``). An Opus encoder gets the band of the other leg's audio (nothing above 4 kHz
    from an 8 kHz codec: no bits spent on empty bands)."""
    name = getattr(leg, "codec", None) or leg.name
    fmtp = getattr(leg, "fmtp", None)
    if isinstance(fmtp, str) or fmtp is None:
        fmtp = parse_fmtp(fmtp) if fmtp else {}
    if name.lower() == "opus":
        other_name = (getattr(other, "codec", None) or other.name).lower()
        other_rate = 16000 if other_name == "g722" else (getattr(other, "clock_rate", 8000) or 8000)
        band = "narrowband" if other_rate <= 8000 else "wideband"
        # 3: the lowest that keeps the quality floors (docs/performance.md, "Lever: transcoding")
        options.setdefault("complexity", 3)
        options.setdefault("max_bandwidth", band)
        # PCM at the other leg's rate: libopus converts inside, so no resampler of ours
        options.setdefault("sample_rate", 8000 if other_rate <= 8000 else 16000 if other_rate <= 16000 else 48000)
        if not fmtp.get("maxaveragebitrate"):
            options.setdefault("bitrate", 24000 if band == "narrowband" else 32000)
    return make_codec(name, getattr(leg, "clock_rate", None) or None, fmtp, **options)


class Transcoder:
    """One call's transcoding: ``Transcoder(webrtc, sip)`` with each leg described by anything
    with ``codec`` (or ``name``), ``clock_rate``, ``fmtp`` (dict or fmtp string) and ``ptime``
    (ms; default 20) — :class:`wcsgw.media.bridge.LegMedia` is one. ``w2s`` and ``s2w`` are
    the two :class:`Pipe` s. Raises :class:`~wcsgw.media.audiocodec.CodecError` (a
    ValueError) when a codec is unknown or its library is missing."""

    def __init__(self, webrtc: Any, sip: Any, *, max_conceal: float = 0.100) -> None:
        self.webrtc_codec = _leg_codec(webrtc, sip)
        try:
            self.sip_codec = _leg_codec(sip, webrtc)
        except CodecError:
            self.webrtc_codec.close()
            raise
        self.w2s = Pipe(
            self.webrtc_codec, self.sip_codec, ptime=getattr(sip, "ptime", 20) or 20, max_conceal=max_conceal
        )
        self.s2w = Pipe(
            self.sip_codec, self.webrtc_codec, ptime=getattr(webrtc, "ptime", 20) or 20, max_conceal=max_conceal
        )

    def close(self) -> None:
        """Free the codecs' native state (packets still buffered are dropped)."""
        self.webrtc_codec.close()
        self.sip_codec.close()
