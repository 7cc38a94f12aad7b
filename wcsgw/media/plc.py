"""Packet-loss concealment for codecs that have none of their own (G.711, G.722).

:class:`Concealer` wraps spandsp's ``plc_*`` (libspandsp2): on the first lost block it finds
the pitch period of the recent history (autocorrelation over 20 ms), repeats that period with
a short overlap-add at the seams, and fades it out by 1/400 per sample (silence after 50 ms at
8 kHz); when audio arrives again it overlap-adds the synthetic tail into the first real
samples, so the recovery is click-free too. That is the G.711 Appendix I approach and what
Asterisk/FreeSWITCH use. spandsp's pitch search is written for 8 kHz (periods of 40..120
samples); at 16 kHz (G.722) it covers 133..400 Hz voices, which is most speech, and the fade
is twice as fast.

:class:`FadeConcealer` is the fall-back when libspandsp is missing: repeat the last 10 ms,
fading to silence.

Both need to see every decoded block (``received``) to hold the history they repeat.
"""

from __future__ import annotations

import ctypes

import numpy as np

from wcsgw.media.audiocodec import CodecError, load_library

__all__ = ["Concealer", "FadeConcealer"]

_int16_p = ctypes.POINTER(ctypes.c_int16)


_SIGNATURES = {
    "plc_init": ([ctypes.c_void_p], ctypes.c_void_p),
    "plc_free": ([ctypes.c_void_p], ctypes.c_int),
    "plc_rx": ([ctypes.c_void_p, _int16_p, ctypes.c_int], ctypes.c_int),
    "plc_fillin": ([ctypes.c_void_p, _int16_p, ctypes.c_int], ctypes.c_int),
}


class Concealer:
    """spandsp PLC state for one decoder. Raises :class:`CodecError` without libspandsp."""

    def __init__(self) -> None:
        self._lib = load_library("libspandsp.so.2", "libspandsp2", _SIGNATURES)
        self._state = self._lib.plc_init(None)
        if not self._state:
            raise CodecError("spandsp plc_init failed")

    def received(self, pcm: np.ndarray) -> np.ndarray:
        """Record decoded audio (and smooth the join after a concealment); returns the audio to
        play, a new array."""
        out = np.array(pcm, dtype=np.int16, copy=True)
        if len(out) and self._state:
            self._lib.plc_rx(self._state, out.ctypes.data_as(_int16_p), len(out))
        return out

    def fill(self, samples: int) -> np.ndarray:
        """``samples`` of synthetic audio for a gap."""
        out = np.zeros(max(0, samples), dtype=np.int16)
        if len(out) and self._state:
            self._lib.plc_fillin(self._state, out.ctypes.data_as(_int16_p), len(out))
        return out

    def close(self) -> None:
        state, self._state = getattr(self, "_state", None), None
        if state:
            self._lib.plc_free(state)

    __del__ = close


class FadeConcealer:
    """Repeat the last ``period`` samples, fading linearly to silence over ``fade`` samples."""

    def __init__(self, period: int = 80, fade: int = 400) -> None:
        self._history = np.zeros(period, dtype=np.int16)
        self._fade = fade
        self._pos = 0  # samples concealed since the last real audio

    def received(self, pcm: np.ndarray) -> np.ndarray:
        pcm = np.asarray(pcm, dtype=np.int16)
        n = len(self._history)
        if len(pcm) >= n:
            self._history = pcm[-n:].copy()
        elif len(pcm):
            self._history = np.concatenate((self._history[len(pcm):], pcm))
        self._pos = 0
        return pcm.copy()

    def fill(self, samples: int) -> np.ndarray:
        if samples <= 0:
            return np.zeros(0, dtype=np.int16)
        idx = self._pos + np.arange(samples)
        base = self._history[idx % len(self._history)].astype(np.float32)
        gain = np.clip(1.0 - idx / self._fade, 0.0, 1.0)
        self._pos += samples
        return np.rint(base * gain).astype(np.int16)

    def close(self) -> None:
        pass
