"""G.729 Annex A (with Annex B VAD/DTX/CNG) through bcg729 (Debian ``libbcg729-0``), via ctypes.

bcg729 is the maintained free G.729A implementation (Belledonne, used by Linphone, Asterisk's
codec_g729 ports and FreeSWITCH's mod_bcg729); its API is six C functions on opaque
per-channel contexts, so a ctypes binding is the whole binding. Signatures (bcg729 1.1.1,
``include/bcg729/{encoder,decoder}.h``)::

    ctx *initBcg729EncoderChannel(uint8_t enableVAD);
    void bcg729Encoder(ctx *, const int16_t in[80], uint8_t out[10], uint8_t *outLength);
    ctx *initBcg729DecoderChannel(void);
    void bcg729Decoder(ctx *, const uint8_t in[], uint8_t inLength, uint8_t frameErasureFlag,
                       uint8_t SIDFrameFlag, uint8_t rfc3389PayloadFlag, int16_t out[80]);

A frame is 10 ms (80 samples at 8 kHz) -> 10 bytes; with VAD on, silence gives a 2-byte SID
frame (Annex B) or nothing at all (an untransmitted frame). An RTP payload (RFC 3551 §4.5.6)
is zero or more 10-byte frames followed by at most one 2-byte SID frame, so its length is
``10*n`` or ``10*n + 2``; any other length is not G.729 and raises :class:`CodecError`.

Loss and DTX gaps are both handed to the decoder as erased frames (``frameErasureFlag``): after
speech that is the G.729 concealment (repeat the last excitation with decaying gains), after a
SID frame it is comfort noise at the SID's level and spectrum, which is what Annex B asks the
receiver to play while the sender is silent.
"""

from __future__ import annotations

import ctypes

import numpy as np

from wcsgw.media.audiocodec import CodecError, as_int16, check_frames, load_library

__all__ = ["G729Codec", "FRAME_SAMPLES", "FRAME_BYTES", "SID_BYTES"]

FRAME_SAMPLES = 80
FRAME_BYTES = 10
SID_BYTES = 2

_u8_p = ctypes.POINTER(ctypes.c_uint8)
_i16_p = ctypes.POINTER(ctypes.c_int16)


_SIGNATURES = {
    "initBcg729EncoderChannel": ([ctypes.c_uint8], ctypes.c_void_p),
    "closeBcg729EncoderChannel": ([ctypes.c_void_p], None),
    "bcg729Encoder": ([ctypes.c_void_p, _i16_p, _u8_p, _u8_p], None),
    "initBcg729DecoderChannel": ([], ctypes.c_void_p),
    "closeBcg729DecoderChannel": ([ctypes.c_void_p], None),
    "bcg729Decoder": (
        [ctypes.c_void_p, _u8_p, ctypes.c_uint8, ctypes.c_uint8, ctypes.c_uint8, ctypes.c_uint8, _i16_p],
        None,
    ),
}


class G729Codec:
    """G.729A encoder + decoder for one call leg.

    ``vad=True`` turns on Annex B in the *encoder*: silent frames become SID frames or are not
    sent at all, so :meth:`encode` may return a 2-byte payload or ``b""`` (send no packet). A SID
    frame followed by speech in the same packet cannot be expressed in RFC 3551's layout (SID
    only last), so such a SID is dropped: the speech right after it is what matters. The decoder
    always understands SID frames, whatever ``vad`` says.
    """

    name = "g729"
    sample_rate = 8000
    rtp_clock = 8000
    frame_samples = FRAME_SAMPLES

    def __init__(self, *, vad: bool = False) -> None:
        self._lib = load_library("libbcg729.so.0", "libbcg729-0", _SIGNATURES)
        self.vad = bool(vad)
        self._enc = self._lib.initBcg729EncoderChannel(int(self.vad))
        self._dec = self._lib.initBcg729DecoderChannel()
        if not self._enc or not self._dec:
            self.close()
            raise CodecError("bcg729: cannot create a channel")
        self._bits = (ctypes.c_uint8 * FRAME_BYTES)()
        self._bits_len = ctypes.c_uint8()
        self._zero_bits = (ctypes.c_uint8 * FRAME_BYTES)()
        self._in = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        self._in_p = self._in.ctypes.data_as(_i16_p)

    def encode(self, pcm: np.ndarray) -> bytes:
        if not self._enc:
            raise CodecError("g729: codec closed")
        pcm = as_int16(pcm)
        frames = check_frames(self, pcm)
        out = bytearray()
        sid = b""
        encoder = self._lib.bcg729Encoder
        for i in range(frames):
            self._in[:] = pcm[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES]
            encoder(self._enc, self._in_p, self._bits, ctypes.byref(self._bits_len))
            n = self._bits_len.value
            if n == FRAME_BYTES:
                out += bytes(self._bits)
                sid = b""  # a SID may only end a packet; speech after it supersedes it
            elif n == SID_BYTES:
                sid = bytes(self._bits[:SID_BYTES])
        return bytes(out) + sid

    def decode(self, payload: bytes) -> np.ndarray:
        if not self._dec:
            raise CodecError("g729: codec closed")
        size = len(payload)
        frames, rest = divmod(size, FRAME_BYTES)
        if size == 0 or rest not in (0, SID_BYTES):
            raise CodecError(f"g729: a {size}-byte payload is not 10*n (+2 for SID) bytes")
        buf = (ctypes.c_uint8 * size).from_buffer_copy(payload)
        count = frames + (1 if rest else 0)
        out = np.empty(count * FRAME_SAMPLES, dtype=np.int16)
        base = ctypes.addressof(buf)
        decoder = self._lib.bcg729Decoder
        for i in range(count):
            sid = i == frames
            bits = ctypes.cast(base + i * FRAME_BYTES, _u8_p)
            decoder(
                self._dec, bits, SID_BYTES if sid else FRAME_BYTES, 0, int(sid), 0,
                out[i * FRAME_SAMPLES :].ctypes.data_as(_i16_p),
            )
        return out

    def conceal(self, samples: int) -> np.ndarray:
        """Erased frames (G.729 PLC after speech, comfort noise after a SID). Whole 10 ms frames
        are decoded; a request that is not a multiple of 80 samples gets the first ``samples``."""
        if not self._dec:
            raise CodecError("g729: codec closed")
        if samples <= 0:
            return np.zeros(0, dtype=np.int16)
        count = -(-samples // FRAME_SAMPLES)
        out = np.empty(count * FRAME_SAMPLES, dtype=np.int16)
        for i in range(count):
            self._lib.bcg729Decoder(
                self._dec, self._zero_bits, FRAME_BYTES, 1, 0, 0,
                out[i * FRAME_SAMPLES :].ctypes.data_as(_i16_p),
            )
        return out[:samples]

    def close(self) -> None:
        lib = getattr(self, "_lib", None)
        if lib is None:
            return
        enc, self._enc = getattr(self, "_enc", None), None
        dec, self._dec = getattr(self, "_dec", None), None
        if enc:
            lib.closeBcg729EncoderChannel(enc)
        if dec:
            lib.closeBcg729DecoderChannel(dec)

    __del__ = close
