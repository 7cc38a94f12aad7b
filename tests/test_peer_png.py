"""tests/peers/png.py, the PNG reader the video tests use for baresip's snapshots: every row
filter of the PNG spec undone exactly, the formats it refuses refused."""

from __future__ import annotations

import struct
import zlib

import numpy as np
from twisted.trial import unittest

from tests.peers.png import PngError, read_png


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else c)


def _filter_row(kind: int, row: np.ndarray, prev: np.ndarray, bpp: int) -> bytes:
    """The encoder's side of filter ``kind`` (ISO/IEC 15948 §9.2)."""
    out = bytearray()
    for i, x in enumerate(row.tolist()):
        a = int(row[i - bpp]) if i >= bpp else 0
        b = int(prev[i])
        c = int(prev[i - bpp]) if i >= bpp else 0
        predictor = {0: 0, 1: a, 2: b, 3: (a + b) >> 1, 4: _paeth(a, b, c)}[kind]
        out.append((x - predictor) & 0xFF)
    return bytes([kind]) + bytes(out)


def write_png(path: str, pixels: np.ndarray, colour: int, filters: list[int],
              depth: int = 8, interlace: int = 0) -> None:
    height, width, channels = pixels.shape
    flat = pixels.reshape(height, width * channels)
    raw = b""
    prev = np.zeros(width * channels, dtype=np.uint8)
    for y in range(height):
        raw += _filter_row(filters[y % len(filters)], flat[y], prev, channels)
        prev = flat[y]
    header = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, interlace)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header)
                + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b""))


class ReadPngTests(unittest.TestCase):
    def test_every_row_filter_round_trips(self) -> None:
        rng = np.random.default_rng(7)
        for colour, channels in ((0, 1), (2, 3), (4, 2), (6, 4)):
            pixels = rng.integers(0, 256, size=(10, 9, channels), dtype=np.uint8)
            path = self.mktemp()
            write_png(path, pixels, colour, filters=[0, 1, 2, 3, 4])
            with self.subTest(colour=colour):
                np.testing.assert_array_equal(read_png(path), pixels)

    def test_refuses_what_it_cannot_read(self) -> None:
        pixels = np.zeros((2, 2, 3), dtype=np.uint8)
        interlaced = self.mktemp()
        write_png(interlaced, pixels, 2, filters=[0], interlace=1)
        self.assertRaises(PngError, read_png, interlaced)
        not_png = self.mktemp()
        with open(not_png, "wb") as f:
            f.write(b"GIF89a")
        self.assertRaises(PngError, read_png, not_png)
