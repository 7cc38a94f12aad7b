"""Speex narrowband (8 kHz) and wideband (16 kHz) through libspeex (Debian ``libspeex1``), via ctypes.

libspeex 1.2 is Xiph's reference codec and the only Speex there is; its API is a state pointer,
a ``SpeexBits`` bit-packer and an ``*_ctl`` call for settings (``speex/speex.h``,
``speex/speex_bits.h``)::

    void *speex_encoder_init(const SpeexMode *mode);     mode = speex_lib_get_mode(0 nb | 1 wb)
    int speex_encode_int(void *state, spx_int16_t *in, SpeexBits *bits);
    int speex_decode_int(void *state, SpeexBits *bits, spx_int16_t *out);  bits NULL = PLC
    int speex_bits_write(SpeexBits *, char *out, int max);   pads with 0 then 1s (terminator)

RTP payload (RFC 5574): one or more frames back to back, bit-packed, the last padded to a byte
boundary. Decoding loops over the frames until the decoder reports the terminator (-1) or
the bits run out, so a packet of 2 or 3 frames (40/60 ms ptime) decodes whole.

Settings: constant bit rate (VBR off, so sizes are fixed and predictable for bandwidth),
quality 8 and complexity 3 by default. Quality 8 is narrowband mode 5 (15 kbit/s, 300 bits ->
38 bytes per 20 ms) and wideband 27.8 kbit/s (556 bits -> 70 bytes). Encoding is most of the
cost and grows with complexity (bench/codec_cost.py, this machine, µs per 20 ms NB/WB):
c1 31/77, c3 50/114, c6 87/196, c10 139/305; 3 is the knee before the search gets expensive.

Refresh frames. libspeex's encoder chooses its 3-tap pitch (long-term) predictor by analysis by
synthesis, and for a steady tone the taps it picks can have a gain above 1 at some frequency
(the tone's own, or one where the tone has no energy: 701 Hz for 1000 Hz). Its own excitation
stays in check because every subframe's innovation is fitted to the input, but any decoder
whose excitation history differs from the encoder's -- after one concealed frame, or started
mid-stream -- carries an error that the same taps amplify frame after frame. It ends in a limit cycle bounded only by
libspeex clamping the excitation at ±32767: about +14 dB over an 8000-amplitude tone, clipped,
for good (so the ``_DIVERGED`` check, meant for NaN/1e6 blow-ups, never sees it). Measured before
this fix against an undisturbed decoder: after one concealed frame 44 of 65 narrowband tones
(200..3400 Hz every 50 Hz) were still more than 3 dB off 6 frames later or at some point after,
14 of them (1000 Hz among them) for good; wideband (200..7000 Hz) 65 of 137, 28 for good; a
decoder started mid-stream 51 and 76. No setting cures it: not the decoder's enhancer, not our
own concealment instead of libspeex's, not the int or float API, not resetting the decoder (a
reset state is as foreign to the stream as a concealed one), not the encoder's PLC_TUNING (up
to its cap of 30), quality or complexity. PJSIP conceals the same way we did
(``speex_decode_int(dec, NULL, out)``), so its decoders run away too; speech, whose pitch keeps
moving, rarely shows it.

The encoder already knows how to emit a frame that needs no past excitation: its
``bounded_pitch`` flag, set on a fresh or reset encoder and after a DTX frame, restricts that
frame's pitch lags to the frame itself, and a decoder that receives such a frame is back in step
with the encoder (measured: 0.0 dB from an undisturbed decoder afterwards). libspeex has no ctl
for the flag alone (``SPEEX_RESET_STATE`` clears far more -- LPC, synthesis and weighting
memories: 2.5 dB worse speech SNR -- and on a wideband encoder does not reach the narrowband
core at all, so wideband still diverged with it), so we set it in the narrowband encoder
state every ``refresh`` frames (default 5: any decoder is back within 100 ms). The field's place
is checked once against the state's known signature (mode pointer, ``first``, ``cumul_gain``
= 1024, the flag cleared by an encode and set again by a reset); if this libspeex is laid out
differently, refresh is off and everything else works as before. Cost: the refresh frame codes
its first 5 ms without the pitch predictor. Speech-like SNR 11.4 -> 11.1 dB narrowband, 14.9 ->
14.3 dB wideband; a steady pure tone pays more, 34 -> 20 dB SINAD (wideband 37 -> 22) at 1 kHz,
none at 440 Hz; refresh every 16 frames would keep 1 kHz at ~25/28 dB but take up to 320 ms to
recover. No CPU to speak of (one int write per 5 frames).
This protects every decoder of the streams we encode; a foreign encoder's stream still
carries the flaw into our decoder.
"""

from __future__ import annotations

import ctypes
import functools

import numpy as np

from wcsgw.media.audiocodec import CodecError, as_int16, check_frames, load_library

__all__ = ["SpeexCodec", "FRAME_BYTES"]

_SPEEX_SET_ENH = 0
_SPEEX_GET_FRAME_SIZE = 3
_SPEEX_SET_QUALITY = 4
_SPEEX_SET_VBR = 12
_SPEEX_SET_COMPLEXITY = 16
_SPEEX_RESET_STATE = 26
_DIVERGED = 1e6  # |sample| beyond any real audio: the synthesis filter has gone unstable
_MODE_ID = {8000: 0, 16000: 1}
_MAX_FRAMES = 16  # 320 ms at most in one packet; more is not Speex over RTP
_REFRESH_FRAMES = 5  # a bounded-pitch frame every 100 ms (see "Refresh frames" above)
_MAX_BYTES = 2048

#: bytes per 20 ms frame at each quality for (rate, quality): only the ones we document/test
FRAME_BYTES = {(8000, 8): 38, (16000, 8): 70}

_i16_p = ctypes.POINTER(ctypes.c_int16)
_f32_p = ctypes.POINTER(ctypes.c_float)


class _SpeexBits(ctypes.Structure):
    _fields_ = [
        ("chars", ctypes.c_char_p),
        ("nbBits", ctypes.c_int),
        ("charPtr", ctypes.c_int),
        ("bitPtr", ctypes.c_int),
        ("owner", ctypes.c_int),
        ("overflow", ctypes.c_int),
        ("buf_size", ctypes.c_int),
        ("reserved1", ctypes.c_int),
        ("reserved2", ctypes.c_void_p),
    ]


_bits_p = ctypes.POINTER(_SpeexBits)


_SIGNATURES = {
    "speex_lib_get_mode": ([ctypes.c_int], ctypes.c_void_p),
    "speex_encoder_init": ([ctypes.c_void_p], ctypes.c_void_p),
    "speex_encoder_destroy": ([ctypes.c_void_p], None),
    "speex_encoder_ctl": ([ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p], ctypes.c_int),
    "speex_encode_int": ([ctypes.c_void_p, _i16_p, _bits_p], ctypes.c_int),
    "speex_decoder_init": ([ctypes.c_void_p], ctypes.c_void_p),
    "speex_decoder_destroy": ([ctypes.c_void_p], None),
    "speex_decoder_ctl": ([ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p], ctypes.c_int),
    "speex_decode_int": ([ctypes.c_void_p, _bits_p, _i16_p], ctypes.c_int),
    "speex_decode": ([ctypes.c_void_p, _bits_p, _f32_p], ctypes.c_int),
    "speex_bits_init": ([_bits_p], None),
    "speex_bits_destroy": ([_bits_p], None),
    "speex_bits_reset": ([_bits_p], None),
    "speex_bits_read_from": ([_bits_p, ctypes.c_char_p, ctypes.c_int], None),
    "speex_bits_write": ([_bits_p, ctypes.c_char_p, ctypes.c_int], ctypes.c_int),
    "speex_bits_remaining": ([_bits_p], ctypes.c_int),
}


def _library() -> ctypes.CDLL:
    return load_library("libspeex.so.1", "libspeex1", _SIGNATURES)


def _nb_state(lib: ctypes.CDLL, enc: int, rate: int) -> int:
    """The narrowband encoder state: ``enc`` itself, or the wideband state's ``st_low``
    (its second field, after the mode pointer)."""
    if rate == 8000:
        return enc
    return ctypes.c_void_p.from_address(enc + ctypes.sizeof(ctypes.c_void_p)).value or 0


def _bounded_pitch_fields(nb: int) -> tuple[ctypes.c_int, ctypes.c_int, ctypes.c_int]:
    """``first``, ``cumul_gain`` and ``bounded_pitch``: the three ints after the mode pointer
    in libspeex 1.2's narrowband ``EncState``."""
    ptr = ctypes.sizeof(ctypes.c_void_p)
    return (ctypes.c_int.from_address(nb + ptr), ctypes.c_int.from_address(nb + ptr + 4),
            ctypes.c_int.from_address(nb + ptr + 8))


_CUMUL_1024 = (1024, ctypes.c_int.from_buffer_copy(ctypes.c_float(1024.0)).value)  # fixed/float


@functools.lru_cache(maxsize=None)
def _refresh_supported(lib: ctypes.CDLL, rate: int) -> bool:
    """Whether the ``bounded_pitch`` field is where we expect it in this libspeex, proven on a
    throw-away encoder: mode pointers, first=1, cumul_gain=1024 and bounded_pitch=1 when fresh;
    first and the flag cleared by one encode (cumul_gain moved); both set again by a reset of
    the narrowband state."""
    ok = False
    mode = lib.speex_lib_get_mode(_MODE_ID[rate])
    enc = lib.speex_encoder_init(mode)
    if enc:
        try:
            nb = _nb_state(lib, enc, rate)
            ptr_ok = (ctypes.c_void_p.from_address(enc).value == mode and nb
                      and ctypes.c_void_p.from_address(nb).value == lib.speex_lib_get_mode(0))
            if ptr_ok:
                first, cumul, bounded = _bounded_pitch_fields(nb)
                fresh = (first.value, cumul.value in _CUMUL_1024, bounded.value) == (1, True, 1)
                size = ctypes.c_int()
                lib.speex_encoder_ctl(enc, _SPEEX_GET_FRAME_SIZE, ctypes.byref(size))
                n = size.value
                pcm = (ctypes.c_int16 * n)(*(int(8000 * np.sin(0.7 * i)) for i in range(n)))
                bits = _SpeexBits()
                lib.speex_bits_init(ctypes.byref(bits))
                try:
                    lib.speex_encode_int(enc, ctypes.cast(pcm, _i16_p), ctypes.byref(bits))
                finally:
                    lib.speex_bits_destroy(ctypes.byref(bits))
                used = (first.value, cumul.value in _CUMUL_1024, bounded.value) == (0, False, 0)
                # the narrowband state itself: a wideband reset leaves its st_low alone
                lib.speex_encoder_ctl(nb, _SPEEX_RESET_STATE, None)
                reset = (first.value, bounded.value) == (1, 1)
                ok = fresh and used and reset
        finally:
            lib.speex_encoder_destroy(enc)
    return ok


class SpeexCodec:
    """Speex NB (``rate=8000``, 160-sample frames) or WB (``rate=16000``, 320-sample frames).

    ``rtp_clock`` equals the sample rate for Speex (RFC 5574). ``conceal`` runs the decoder's
    own PLC (``speex_decode_int`` with no bits) frame by frame.

    ``refresh``: every that many frames (default ``_REFRESH_FRAMES``) the encoder sends a frame
    that needs no past excitation, so a decoder that lost a packet or joined mid-stream is back
    in step (module docstring, "Refresh frames"); 0 turns it off. ``refreshes`` says whether
    this libspeex allows it.
    """

    name = "speex"

    def __init__(self, rate: int = 8000, *, quality: int = 8, complexity: int = 3,
                 enhancement: bool = True, refresh: int | None = None) -> None:
        if rate not in _MODE_ID:
            raise CodecError(f"speex: clock rate must be 8000 (nb) or 16000 (wb), not {rate}")
        if not 0 <= quality <= 10 or not 1 <= complexity <= 10:
            raise CodecError(f"speex: quality 0..10 and complexity 1..10, not {quality}/{complexity}")
        if refresh is None:
            refresh = _REFRESH_FRAMES
        if refresh < 0:
            raise CodecError(f"speex: refresh must be 0 (off) or a number of frames, not {refresh}")
        self.sample_rate = self.rtp_clock = rate
        self.quality = quality
        self._lib = lib = _library()
        mode = lib.speex_lib_get_mode(_MODE_ID[rate])
        self._enc = lib.speex_encoder_init(mode)
        self._dec = lib.speex_decoder_init(mode)
        if not self._enc or not self._dec:
            self.close()
            raise CodecError("speex: cannot create encoder/decoder")
        self._ctl(lib.speex_encoder_ctl, self._enc, _SPEEX_SET_VBR, 0)
        self._ctl(lib.speex_encoder_ctl, self._enc, _SPEEX_SET_QUALITY, quality)
        self._ctl(lib.speex_encoder_ctl, self._enc, _SPEEX_SET_COMPLEXITY, complexity)
        self._ctl(lib.speex_decoder_ctl, self._dec, _SPEEX_SET_ENH, int(enhancement))
        size = ctypes.c_int()
        lib.speex_encoder_ctl(self._enc, _SPEEX_GET_FRAME_SIZE, ctypes.byref(size))
        self.frame_samples = size.value  # 160 nb, 320 wb
        self._enc_bits = _SpeexBits()
        self._dec_bits = _SpeexBits()
        lib.speex_bits_init(ctypes.byref(self._enc_bits))
        lib.speex_bits_init(ctypes.byref(self._dec_bits))
        self._bits_ready = True
        self._out = ctypes.create_string_buffer(_MAX_BYTES)
        self._frame = np.zeros(self.frame_samples, dtype=np.int16)
        self._frame_p = self._frame.ctypes.data_as(_i16_p)
        self._fframe = np.zeros(self.frame_samples, dtype=np.float32)
        self._fframe_p = self._fframe.ctypes.data_as(_f32_p)
        self._bounded: ctypes.c_int | None = None
        if refresh and _refresh_supported(lib, rate):
            self._bounded = _bounded_pitch_fields(_nb_state(lib, self._enc, rate))[2]
        self.refreshes = self._bounded is not None
        self._refresh = refresh
        self._encoded = 0  # frames encoded, to place the refresh frames

    @staticmethod
    def _ctl(fn: object, state: int, request: int, value: int) -> None:
        v = ctypes.c_int(value)
        fn(state, request, ctypes.byref(v))  # type: ignore[operator]

    def encode(self, pcm: np.ndarray) -> bytes:
        if not self._enc:
            raise CodecError("speex: codec closed")
        pcm = as_int16(pcm)
        frames = check_frames(self, pcm)
        lib, bits = self._lib, ctypes.byref(self._enc_bits)
        lib.speex_bits_reset(bits)
        n = self.frame_samples
        for i in range(frames):
            # speex_encode_int may scale its input in place: hand it a copy
            self._frame[:] = pcm[i * n : (i + 1) * n]
            if self._bounded is not None and self._encoded % self._refresh == 0:
                self._bounded.value = 1  # this frame's pitch lags stay inside the frame
            self._encoded += 1
            lib.speex_encode_int(self._enc, self._frame_p, bits)
        size = lib.speex_bits_write(bits, self._out, _MAX_BYTES)
        return self._out.raw[:size]

    def decode(self, payload: bytes) -> np.ndarray:
        if not self._dec:
            raise CodecError("speex: codec closed")
        if not payload:
            raise CodecError("speex: empty payload")
        if len(payload) > _MAX_BYTES:
            raise CodecError(f"speex: {len(payload)}-byte payload is too long")
        lib, bits = self._lib, ctypes.byref(self._dec_bits)
        lib.speex_bits_read_from(bits, bytes(payload), len(payload))
        parts = []
        error = ""
        for _ in range(_MAX_FRAMES):
            if lib.speex_bits_remaining(bits) < 5:  # padding only (terminator < 1 frame header)
                break
            ret = lib.speex_decode(self._dec, bits, self._fframe_p)
            if ret == -1:  # terminator: end of the frames in this packet
                break
            if ret != 0 or lib.speex_bits_remaining(bits) < 0:  # corrupt, or read past the end
                error = f"code {ret}"
                break
            frame = self._fframe
            if not np.isfinite(frame).all() or float(np.abs(frame).max()) > _DIVERGED:
                error = "decoder diverged"
                break
            parts.append(np.clip(np.rint(frame), -32768, 32767).astype(np.int16))
        if error:
            # Garbage bits can drive the (floating-point) synthesis filters unstable, after
            # which every later frame decodes to noise or NaN: start the decoder afresh.
            self._reset_decoder()
            if not parts:
                raise CodecError(f"speex: cannot decode a {len(payload)}-byte payload ({error})")
        if not parts:
            raise CodecError(f"speex: no frame in a {len(payload)}-byte payload")
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def _reset_decoder(self) -> None:
        self._ctl(self._lib.speex_decoder_ctl, self._dec, _SPEEX_RESET_STATE, 0)

    def conceal(self, samples: int) -> np.ndarray:
        """Speex PLC, whole frames; a request that is not a multiple of the frame gets the first
        ``samples`` of the last concealed frame."""
        if not self._dec:
            raise CodecError("speex: codec closed")
        if samples <= 0:
            return np.zeros(0, dtype=np.int16)
        count = -(-samples // self.frame_samples)
        parts = []
        for _ in range(count):
            self._lib.speex_decode_int(self._dec, None, self._frame_p)
            parts.append(self._frame.copy())
        return np.concatenate(parts)[:samples]

    def close(self) -> None:
        lib = getattr(self, "_lib", None)
        if lib is None:
            return
        self._bounded = None  # points into the encoder state freed below
        enc, self._enc = getattr(self, "_enc", None), None
        dec, self._dec = getattr(self, "_dec", None), None
        if enc:
            lib.speex_encoder_destroy(enc)
        if dec:
            lib.speex_decoder_destroy(dec)
        if getattr(self, "_bits_ready", False):
            self._bits_ready = False
            lib.speex_bits_destroy(ctypes.byref(self._enc_bits))
            lib.speex_bits_destroy(ctypes.byref(self._dec_bits))

    __del__ = close
