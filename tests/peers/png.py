"""Read the PNG files peers write (baresip's snapshot module) into numpy arrays.

A few dozen lines rather than a new test dependency (Pillow): the files are 8-bit RGB/RGBA or
grey, non-interlaced, which is all libpng's defaults produce for a video frame.  The five
row filters of the PNG spec (ISO/IEC 15948 §9) are undone row by row.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

__all__ = ["read_png", "PngError"]

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}  # colour type -> samples per pixel


class PngError(ValueError):
    """Not a PNG this reader handles (interlaced, 16-bit, palette) or a damaged file."""


def read_png(path: str | Path) -> np.ndarray:
    """Pixels as a ``uint8`` array of shape (height, width, channels)."""
    data = Path(path).read_bytes()
    if not data.startswith(_SIGNATURE):
        raise PngError(f"{path}: not a PNG file")
    pos = len(_SIGNATURE)
    header = None
    compressed = bytearray()
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            compressed += body
        elif kind == b"IEND":
            break
    if header is None:
        raise PngError(f"{path}: no IHDR chunk")
    width, height, depth, colour, _method, _filter, interlace = header
    if depth != 8 or interlace or colour not in _CHANNELS:
        raise PngError(f"{path}: depth {depth}, colour type {colour}, interlace {interlace} "
                       "not supported")
    channels = _CHANNELS[colour]
    stride = width * channels
    raw = np.frombuffer(zlib.decompress(bytes(compressed)), dtype=np.uint8)
    if raw.size != height * (stride + 1):
        raise PngError(f"{path}: {raw.size} bytes of pixel data for {width}x{height}")
    rows = raw.reshape(height, stride + 1)
    out = np.zeros((height, stride), dtype=np.uint8)
    previous = np.zeros(stride, dtype=np.int32)
    for y in range(height):
        kind, line = rows[y, 0], rows[y, 1:].astype(np.int32)
        if kind == 0:
            current = line
        elif kind == 2:
            current = (line + previous) & 0xFF
        else:
            current = _unfilter_row(kind, line, previous, channels)
        out[y] = current
        previous = current.astype(np.int32)
    return out.reshape(height, width, channels)


def _unfilter_row(kind: int, line: np.ndarray, previous: np.ndarray, bpp: int) -> np.ndarray:
    """Sub (1), Average (3) and Paeth (4) depend on the pixel to the left: done per byte."""
    current = np.zeros_like(line)
    for i in range(line.size):
        left = int(current[i - bpp]) if i >= bpp else 0
        up = int(previous[i])
        if kind == 1:
            predictor = left
        elif kind == 3:
            predictor = (left + up) >> 1
        elif kind == 4:
            up_left = int(previous[i - bpp]) if i >= bpp else 0
            p = left + up - up_left
            pa, pb, pc = abs(p - left), abs(p - up), abs(p - up_left)
            predictor = left if pa <= pb and pa <= pc else (up if pb <= pc else up_left)
        else:
            raise PngError(f"unknown PNG row filter {kind}")
        current[i] = (int(line[i]) + predictor) & 0xFF
    return current
