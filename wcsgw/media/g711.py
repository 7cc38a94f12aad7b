"""G.711 µ-law (PCMU) and A-law (PCMA) as numpy lookup tables.

``audioop`` is deprecated (and gone in Python 3.13), so the companding laws are built here once,
at import, as tables: 256 entries to decode, 65536 entries to encode (indexed by the 16-bit
sample itself), which makes a 160-sample frame one ``take`` each way.

The rules are those of ITU-T G.711 as the ITU-T Software Tool Library (G.191, ``g711.c``)
implements them, which is what "bit-exact G.711" means in practice:

* µ-law works on the 14 most significant bits, A-law on the 13 most significant bits of a
  16-bit sample;
* negative samples are quantised by their **one's complement** (``~x``), so -1 maps to the
  "negative zero" code, not to the first negative step (the Sun reference code, copied by many,
  differs here for small negative values);
* µ-law adds the bias 33 (in 14-bit units; 132 in 16-bit units) before finding the segment;
  A-law inverts the even bits (XOR 0x55), µ-law inverts all magnitude bits.

Decoded values are 16-bit (left-justified), e.g. µ-law 0x80 -> +32124, A-law 0xAA -> +32256.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "ULAW_DECODE",
    "ALAW_DECODE",
    "ULAW_ENCODE",
    "ALAW_ENCODE",
    "ulaw_encode",
    "ulaw_decode",
    "alaw_encode",
    "alaw_decode",
    "encode",
    "decode",
    "to_int16",
    "SILENCE",
]


def _ulaw_compress(x: np.ndarray) -> np.ndarray:
    """ITU-T G.191 ``ulaw_compress``, vectorised over int16 samples."""
    x = x.astype(np.int32)
    absno = np.where(x < 0, (~x) >> 2, x >> 2) + 33
    absno = np.minimum(absno, 0x1FFF)
    # segno = 1 + number of significant bits of (absno >> 6)
    i = absno >> 6
    segno = np.ones_like(absno)
    while np.any(i):
        segno += i != 0
        i >>= 1
    high = 8 - segno
    low = 0x0F - ((absno >> segno) & 0x0F)
    out = (high << 4) | low
    out = np.where(x >= 0, out | 0x80, out)
    result: np.ndarray = out.astype(np.uint8)
    return result


def _ulaw_expand(code: np.ndarray) -> np.ndarray:
    """ITU-T G.191 ``ulaw_expand``."""
    code = code.astype(np.int32)
    sign = np.where(code < 0x80, -1, 1)
    mantissa = ~code
    exponent = (mantissa >> 4) & 0x07
    segment = exponent + 1
    mantissa &= 0x0F
    step = 4 << segment
    pcm: np.ndarray = (sign * ((0x80 << exponent) + step * mantissa + step // 2 - 4 * 33)).astype(np.int16)
    return pcm


def _alaw_compress(x: np.ndarray) -> np.ndarray:
    """ITU-T G.191 ``alaw_compress``."""
    x = x.astype(np.int32)
    ix = np.where(x < 0, (~x) >> 4, x >> 4)  # 0 <= ix < 2048
    out = ix.copy()
    big = ix > 15
    # exponent = number of shifts needed to bring ix into 16..31, plus one
    iexp = np.ones_like(ix)
    m = ix.copy()
    while np.any(big & (m > 31)):
        sel = big & (m > 31)
        m = np.where(sel, m >> 1, m)
        iexp = np.where(sel, iexp + 1, iexp)
    out = np.where(big, (m - 16) + (iexp << 4), ix)
    out = np.where(x >= 0, out | 0x80, out)
    return (out ^ 0x55).astype(np.uint8)


def _alaw_expand(code: np.ndarray) -> np.ndarray:
    """ITU-T G.191 ``alaw_expand``."""
    code = code.astype(np.int32)
    ix = (code ^ 0x55) & 0x7F
    iexp = ix >> 4
    mant = ix & 0x0F
    mant = np.where(iexp > 0, mant + 16, mant)
    mant = (mant << 4) + 8
    mant = np.where(iexp > 1, mant << np.maximum(iexp - 1, 0), mant)
    return np.where(code > 127, mant, -mant).astype(np.int16)


_ALL_SAMPLES = np.arange(65536, dtype=np.uint32).astype(np.uint16).view(np.int16)
_ALL_CODES = np.arange(256, dtype=np.int32)

#: code byte -> 16-bit sample
ULAW_DECODE: np.ndarray = _ulaw_expand(_ALL_CODES)
ALAW_DECODE: np.ndarray = _alaw_expand(_ALL_CODES)
#: 16-bit sample (as its unsigned bit pattern, ``x.view(np.uint16)``) -> code byte
ULAW_ENCODE: np.ndarray = _ulaw_compress(_ALL_SAMPLES)
ALAW_ENCODE: np.ndarray = _alaw_compress(_ALL_SAMPLES)
for _t in (ULAW_DECODE, ALAW_DECODE, ULAW_ENCODE, ALAW_ENCODE):
    _t.flags.writeable = False

#: One byte of silence per codec (the code that decodes to the smallest positive level).
SILENCE = {"PCMU": 0xFF, "PCMA": 0xD5}


def to_int16(samples: np.ndarray) -> np.ndarray:
    """Round and saturate float samples to int16 (int16 input is returned as is)."""
    if samples.dtype == np.int16:
        return samples
    saturated: np.ndarray = np.clip(np.rint(samples), -32768, 32767).astype(np.int16)
    return saturated


def ulaw_encode(samples: np.ndarray) -> bytes:
    """16-bit samples (int16, or float in int16 scale) -> µ-law bytes."""
    return ULAW_ENCODE.take(to_int16(samples).view(np.uint16)).tobytes()


def alaw_encode(samples: np.ndarray) -> bytes:
    """16-bit samples (int16, or float in int16 scale) -> A-law bytes."""
    return ALAW_ENCODE.take(to_int16(samples).view(np.uint16)).tobytes()


def ulaw_decode(data: bytes | bytearray | memoryview) -> np.ndarray:
    """µ-law bytes -> int16 samples."""
    return ULAW_DECODE.take(np.frombuffer(data, dtype=np.uint8))


def alaw_decode(data: bytes | bytearray | memoryview) -> np.ndarray:
    """A-law bytes -> int16 samples."""
    return ALAW_DECODE.take(np.frombuffer(data, dtype=np.uint8))


def encode(codec: str, samples: np.ndarray) -> bytes:
    """Encode with the codec named as in SDP (``PCMU``/``PCMA``, any case)."""
    name = codec.upper()
    if name == "PCMU":
        return ulaw_encode(samples)
    if name == "PCMA":
        return alaw_encode(samples)
    raise ValueError(f"not a G.711 codec: {codec!r}")


def decode(codec: str, data: bytes | bytearray | memoryview) -> np.ndarray:
    """Decode with the codec named as in SDP (``PCMU``/``PCMA``, any case)."""
    name = codec.upper()
    if name == "PCMU":
        return ulaw_decode(data)
    if name == "PCMA":
        return alaw_decode(data)
    raise ValueError(f"not a G.711 codec: {codec!r}")
