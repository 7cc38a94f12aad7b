"""G.722 (64 kbit/s SB-ADPCM, 16 kHz audio) through spandsp (Debian ``libspandsp2``), via ctypes.

spandsp is the telephony DSP library behind FreeSWITCH and Asterisk's G.722; four calls do the
work (spandsp 0.0.6, ``spandsp/g722.h``)::

    g722_encode_state_t *g722_encode_init(g722_encode_state_t *s, int rate, int options);
    int g722_encode(g722_encode_state_t *s, uint8_t out[], const int16_t amp[], int len);
    g722_decode_state_t *g722_decode_init(g722_decode_state_t *s, int rate, int options);
    int g722_decode(g722_decode_state_t *s, int16_t amp[], const uint8_t in[], int len);

(``s=NULL`` lets spandsp allocate; ``g722_*_free`` releases.) Options 0 means 16 kHz PCM and one
code byte per two samples, the RTP payload format of RFC 3551 §4.5.2.

The RFC 3551 quirk: G.722's RTP clock is **8000** (an error in RFC 1890 kept for
compatibility) while the audio is sampled at 16 kHz. So ``sample_rate`` is 16000 and
``rtp_clock`` 8000: 20 ms is 320 samples, 160 bytes and a timestamp step of 160.

G.722 has no concealment of its own; :class:`wcsgw.media.plc.Concealer` (spandsp's
pitch-repeating PLC) supplies it on the decoded 16 kHz audio. The ADPCM decoder simply
continues from its last state when packets resume, as common G.722 stacks do.
"""

from __future__ import annotations

import ctypes

import numpy as np

from wcsgw.media.audiocodec import CodecError, as_int16, check_frames, load_library

__all__ = ["G722Codec"]

_u8_p = ctypes.POINTER(ctypes.c_uint8)
_i16_p = ctypes.POINTER(ctypes.c_int16)


_SIGNATURES = {
    # (state or NULL to allocate, bit rate, options) -> state or NULL
    "g722_encode_init": ([ctypes.c_void_p, ctypes.c_int, ctypes.c_int], ctypes.c_void_p),
    "g722_decode_init": ([ctypes.c_void_p, ctypes.c_int, ctypes.c_int], ctypes.c_void_p),
    "g722_encode_free": ([ctypes.c_void_p], ctypes.c_int),
    "g722_decode_free": ([ctypes.c_void_p], ctypes.c_int),
    "g722_encode": ([ctypes.c_void_p, _u8_p, _i16_p, ctypes.c_int], ctypes.c_int),
    "g722_decode": ([ctypes.c_void_p, _i16_p, _u8_p, ctypes.c_int], ctypes.c_int),
}


class G722Codec:
    """G.722 at 64 kbit/s, encoder + decoder (+ spandsp PLC) for one call leg."""

    name = "g722"
    sample_rate = 16000
    rtp_clock = 8000
    frame_samples = 160  # 10 ms at 16 kHz -> 80 bytes

    def __init__(self, *, bitrate: int = 64000) -> None:
        if bitrate not in (64000, 56000, 48000):
            raise CodecError(f"g722: bit rate must be 64000, 56000 or 48000, not {bitrate}")
        self._lib = load_library("libspandsp.so.2", "libspandsp2", _SIGNATURES)
        self._enc = self._lib.g722_encode_init(None, bitrate, 0)
        self._dec = self._lib.g722_decode_init(None, bitrate, 0)
        if not self._enc or not self._dec:
            self.close()
            raise CodecError("spandsp: g722 init failed")
        from wcsgw.media.plc import Concealer

        self._plc = Concealer()

    def encode(self, pcm: np.ndarray) -> bytes:
        if not self._enc:
            raise CodecError("g722: codec closed")
        pcm = as_int16(pcm)
        check_frames(self, pcm)
        out = (ctypes.c_uint8 * (len(pcm) // 2))()
        n = self._lib.g722_encode(self._enc, out, pcm.ctypes.data_as(_i16_p), len(pcm))
        return bytes(out[:n]) if n != len(out) else bytes(out)

    def decode(self, payload: bytes) -> np.ndarray:
        if not self._dec:
            raise CodecError("g722: codec closed")
        if not payload:
            raise CodecError("g722: empty payload")
        data = (ctypes.c_uint8 * len(payload)).from_buffer_copy(payload)
        out = np.empty(2 * len(payload), dtype=np.int16)
        n = self._lib.g722_decode(self._dec, out.ctypes.data_as(_i16_p), data, len(payload))
        return self._plc.received(out[:n])

    def conceal(self, samples: int) -> np.ndarray:
        return self._plc.fill(samples)

    def close(self) -> None:
        lib = getattr(self, "_lib", None)
        if lib is None:
            return
        enc, self._enc = getattr(self, "_enc", None), None
        dec, self._dec = getattr(self, "_dec", None), None
        if enc:
            lib.g722_encode_free(enc)
        if dec:
            lib.g722_decode_free(dec)
        plc = getattr(self, "_plc", None)
        if plc is not None:
            plc.close()

    __del__ = close
