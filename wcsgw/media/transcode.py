"""Opus (browser, 48 kHz) <-> G.711 (SIP, 8 kHz) payload transcoding, with state.

Only payloads go through here; RTP headers, timing and DTMF are the bridge's business
(:mod:`wcsgw.media.bridge`). Each direction keeps its own codec and filter state for the whole
call: the Opus decoder (whose prediction spans frames), the anti-aliasing/anti-imaging filters
(whose history makes frame edges seamless) and the Opus encoder.

WebRTC -> SIP: Opus decode to 48 kHz mono -> low-pass + decimate by 6 -> G.711 encode. An Opus
packet of N ms yields N * 8 bytes of G.711 (160 bytes for 20 ms).

SIP -> WebRTC: G.711 decode -> interpolate by 6 -> Opus encode (mono, complexity 5, coded
band capped at narrowband: the source holds nothing above 4 kHz). Opus only takes frames of
2.5/5/10/20/40/60 ms; G.711 packets of such a duration are encoded one-for-one. Other
durations (30 ms ptime, say) go through a FIFO: each call encodes the longest valid frame the
FIFO holds, so every packet still yields one Opus packet (30 ms packets alternate 20/40 ms).
:attr:`Transcoder.sip_backlog` says how much audio waits in that FIFO, which the bridge needs
to stamp the Opus packet's timestamp exactly.
"""

from __future__ import annotations

import numpy as np

from wcsgw.media import g711
from wcsgw.media.opus import VALID_FRAME_SIZES_48K, OpusDecoder, OpusEncoder
from wcsgw.media.resample import Resampler

__all__ = ["Transcoder", "SIP_RATE", "WEBRTC_RATE"]

SIP_RATE = 8000
WEBRTC_RATE = 48000
_RATIO = WEBRTC_RATE // SIP_RATE
_VALID_DESC = tuple(sorted(VALID_FRAME_SIZES_48K, reverse=True))


class Transcoder:
    """``Transcoder("PCMU")`` or ``Transcoder("PCMA")``: one call's worth of codec state."""

    def __init__(
        self,
        sip_codec: str,
        *,
        opus_complexity: int = 5,
        opus_bitrate: int | None = 24000,
        opus_max_bandwidth: str | None = "narrowband",
    ) -> None:
        name = sip_codec.upper()
        if name == "PCMU":
            self._g711_enc = g711.ULAW_ENCODE
            self._g711_dec = g711.ULAW_DECODE
        elif name == "PCMA":
            self._g711_enc = g711.ALAW_ENCODE
            self._g711_dec = g711.ALAW_DECODE
        else:
            raise ValueError(f"SIP side codec must be PCMU or PCMA, not {sip_codec!r}")
        self.sip_codec = name
        self._decoder = OpusDecoder(WEBRTC_RATE, 1)
        self._encoder = OpusEncoder(
            WEBRTC_RATE,
            1,
            complexity=opus_complexity,
            bitrate=opus_bitrate,
            max_bandwidth=opus_max_bandwidth,
        )
        self._down = Resampler(WEBRTC_RATE, SIP_RATE)
        self._up = Resampler(SIP_RATE, WEBRTC_RATE)
        self._fifo = np.zeros(0, dtype=np.int16)
        #: 48 kHz samples in the last Opus packet :meth:`sip_to_webrtc` returned.
        self.last_opus_samples = 0

    @property
    def sip_backlog(self) -> int:
        """8 kHz samples received from SIP but not yet encoded to Opus (0 for 20 ms ptime)."""
        return len(self._fifo) // _RATIO

    def webrtc_to_sip(self, opus_payload: bytes) -> bytes:
        """One Opus packet -> the G.711 payload of the same duration."""
        pcm48 = self._decoder.decode(opus_payload)
        return self._to_g711(pcm48)

    def conceal_webrtc_loss(self) -> bytes:
        """G.711 for one lost Opus packet, by Opus packet-loss concealment (same duration as the
        last packet). Optional: the bridge leaves concealment to the SIP receiver by default."""
        return self._to_g711(self._decoder.decode(None))

    def _to_g711(self, pcm48: np.ndarray) -> bytes:
        pcm8 = self._down.process(pcm48)
        return self._g711_enc.take(g711.to_int16(pcm8).view(np.uint16)).tobytes()

    def sip_to_webrtc(self, g711_payload: bytes) -> bytes:
        """One G.711 payload -> one Opus payload (``b""`` only if less than 10 ms is buffered)."""
        pcm8 = self._g711_dec.take(np.frombuffer(g711_payload, dtype=np.uint8))
        pcm48 = g711.to_int16(self._up.process(pcm8))
        if len(self._fifo) == 0 and len(pcm48) in VALID_FRAME_SIZES_48K:
            self.last_opus_samples = len(pcm48)
            return self._encoder.encode(pcm48)
        fifo = np.concatenate((self._fifo, pcm48)) if len(self._fifo) else pcm48
        for size in _VALID_DESC:
            if size <= len(fifo) and size >= 480:  # >= 10 ms: shorter frames cannot use SILK
                self._fifo = fifo[size:].copy()
                self.last_opus_samples = size
                return self._encoder.encode(fifo[:size])
        self._fifo = fifo
        self.last_opus_samples = 0
        return b""
