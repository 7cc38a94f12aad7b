"""Opus encoder and decoder: a thin layer over opuslib's ctypes bindings to libopus.

opuslib's high-level ``Encoder.encode``/``Decoder.decode`` allocate a fresh ctypes buffer and
go through a Python list of samples on every call (~20 µs per 20 ms frame of pure overhead), and
its ``dtx``/``inband_fec`` setters are broken in 3.0.1. We use opuslib only for what it does
well — finding libopus and declaring the C signatures — and call ``opus_encode``/``opus_decode``
with buffers allocated once, numpy arrays in and out.

The browser side of the gateway is 48 kHz. We always *decode to mono*: libopus down-mixes a
stereo stream itself when the decoder is created with one channel (the browser may send stereo
with ``stereo=1``), and *encode mono*, which ``opus/48000/2`` in SDP allows (RFC 7587 §7).
"""

from __future__ import annotations

import ctypes

import numpy as np
import opuslib
import opuslib.api
import opuslib.api.ctl
import opuslib.api.decoder
import opuslib.api.encoder

__all__ = ["OpusError", "OpusEncoder", "OpusDecoder", "VALID_FRAME_SIZES_48K", "MAX_FRAME_SAMPLES"]

OpusError = opuslib.OpusError

#: Samples per channel of a 2.5/5/10/20/40/60 ms frame at 48 kHz (what opus_encode accepts).
VALID_FRAME_SIZES_48K = (120, 240, 480, 960, 1920, 2880)
#: 120 ms at 48 kHz: the longest an Opus packet can decode to.
MAX_FRAME_SAMPLES = 5760
_MAX_PACKET = 1500

_int16_p = opuslib.api.c_int16_pointer

_BANDWIDTHS = {
    "narrowband": opuslib.BANDWIDTH_NARROWBAND,
    "mediumband": opuslib.BANDWIDTH_MEDIUMBAND,
    "wideband": opuslib.BANDWIDTH_WIDEBAND,
    "superwideband": opuslib.BANDWIDTH_SUPERWIDEBAND,
    "fullband": opuslib.BANDWIDTH_FULLBAND,
}


class OpusEncoder:
    """Mono (or stereo) Opus encoder at 48 kHz (or another Opus rate).

    ``complexity`` 5 is the usual real-time compromise (Asterisk's default too): the field
    notes measured complexity 10 at 67-130 µs per frame on this class of machine.
    ``max_bandwidth`` caps the coded audio band: for audio that came from G.711 there is nothing
    above 4 kHz, so ``"narrowband"`` spends no bits (and no CPU) on empty bands.
    """

    def __init__(
        self,
        sample_rate: int = 48000,
        channels: int = 1,
        *,
        application: str = "voip",
        complexity: int = 5,
        bitrate: int | None = None,
        max_bandwidth: str | None = None,
        fec: bool = False,
        packet_loss_percent: int = 0,
        dtx: bool = False,
    ) -> None:
        self.sample_rate = sample_rate
        self.channels = channels
        self._state = opuslib.api.encoder.create_state(
            sample_rate, channels, opuslib.APPLICATION_TYPES_MAP[application]
        )
        ctl = opuslib.api.encoder.encoder_ctl
        ctl(self._state, opuslib.api.ctl.set_complexity, complexity)
        ctl(self._state, opuslib.api.ctl.set_signal, opuslib.SIGNAL_VOICE)
        if bitrate is not None:
            ctl(self._state, opuslib.api.ctl.set_bitrate, bitrate)
        if max_bandwidth is not None:
            ctl(self._state, opuslib.api.ctl.set_max_bandwidth, _BANDWIDTHS[max_bandwidth])
        ctl(self._state, opuslib.api.ctl.set_inband_fec, int(fec))
        ctl(self._state, opuslib.api.ctl.set_packet_loss_perc, packet_loss_percent)
        ctl(self._state, opuslib.api.ctl.set_dtx, int(dtx))
        self._out = ctypes.create_string_buffer(_MAX_PACKET)
        self._encode = opuslib.api.encoder.libopus_encode
        # The input goes through one buffer whose pointer is made once: numpy's
        # ``ctypes.data_as`` costs a few µs per call, 5 % of a transcoding gateway's CPU.
        self._in = np.zeros(MAX_FRAME_SAMPLES * sample_rate // 48000 * channels, dtype=np.int16)
        self._in_p = self._in.ctypes.data_as(_int16_p)

    def __del__(self) -> None:
        state = getattr(self, "_state", None)
        if state is not None:
            opuslib.api.encoder.destroy(state)
            self._state = None

    def encode(self, pcm: np.ndarray) -> bytes:
        """Encode one frame of int16 samples (interleaved if stereo); the frame must be one of
        the Opus durations (2.5-60 ms)."""
        count = len(pcm)
        if count > len(self._in):
            raise OpusError(opuslib.BAD_ARG)
        self._in[:count] = pcm
        n = self._encode(self._state, self._in_p, count // self.channels, self._out, _MAX_PACKET)
        if n < 0:
            raise OpusError(n)
        return ctypes.string_at(self._out, n)


class OpusDecoder:
    """Opus decoder to int16 at 48 kHz (mono by default, whatever the stream's channels)."""

    def __init__(self, sample_rate: int = 48000, channels: int = 1) -> None:
        self.sample_rate = sample_rate
        self.channels = channels
        self._state = opuslib.api.decoder.create_state(sample_rate, channels)
        self._max = MAX_FRAME_SAMPLES * sample_rate // 48000
        self._pcm = np.zeros(self._max * channels, dtype=np.int16)
        self._pcm_p = self._pcm.ctypes.data_as(_int16_p)
        self._decode = opuslib.api.decoder.libopus_decode
        self.last_frame_samples = 20 * sample_rate // 1000

    def __del__(self) -> None:
        state = getattr(self, "_state", None)
        if state is not None:
            opuslib.api.decoder.destroy(state)
            self._state = None

    def decode(self, payload: bytes | None, *, fec: bool = False) -> np.ndarray:
        """Decode one packet to int16 samples (a new array).

        ``payload=None`` runs packet-loss concealment for one frame of the last packet's
        duration; ``fec=True`` decodes the in-band FEC copy of the *previous* frame carried in
        ``payload``.
        """
        if payload is None:
            n = self._decode(self._state, None, 0, self._pcm_p, self.last_frame_samples, 0)
        else:
            frame = self.last_frame_samples if fec else self._max
            n = self._decode(self._state, payload, len(payload), self._pcm_p, frame, int(fec))
        if n < 0:
            raise OpusError(n)
        if payload is not None and not fec:
            self.last_frame_samples = n
        return self._pcm[: n * self.channels].copy()
