"""G.711 tables (wcsgw.media.g711) against ITU-T G.711 / G.191 known values: the µ-law bias,
segment edges, one's-complement treatment of negatives, A-law even-bit inversion, and
consistency of the encode and decode tables over every input."""

from __future__ import annotations

import numpy as np
from twisted.trial.unittest import SynchronousTestCase

from wcsgw.media import g711


def enc(table: np.ndarray, x: int) -> int:
    return int(table[np.int16(x).view(np.uint16)])


class UlawTests(SynchronousTestCase):
    def test_decode_known_values(self) -> None:
        d = g711.ULAW_DECODE
        # 0xFF/0x7F are +0/-0; the largest codes are ±32124 (8159 in 14-bit units, times 4)
        self.assertEqual(
            [int(d[c]) for c in (0xFF, 0x7F, 0xFE, 0x7E, 0x80, 0x00, 0xEF, 0x8F, 0xF0)],
            [0, 0, 8, -8, 32124, -32124, 132, 16764, 120],
        )

    def test_decode_includes_the_bias(self) -> None:
        # ITU-T G.711 µ-law: decoded value = ((2 * mantissa + 33) << exponent) - 33, in 14 bits
        for code in range(256):
            inv = ~code & 0xFF
            exponent = (inv >> 4) & 7
            mantissa = inv & 0x0F
            magnitude = (((2 * mantissa + 33) << exponent) - 33) * 4
            expected = magnitude if code & 0x80 else -magnitude
            self.assertEqual(int(g711.ULAW_DECODE[code]), expected, hex(code))

    def test_encode_known_values_and_segment_edges(self) -> None:
        e = g711.ULAW_ENCODE
        cases = {
            0: 0xFF,
            -1: 0x7F,  # one's complement: -1..-4 are "negative zero" (G.191), not 0x7E
            -4: 0x7F,
            -5: 0x7E,
            4: 0xFE,
            123: 0xF0,  # last value of segment 0 ((123 >> 2) + 33 = 63)
            124: 0xEF,  # first value of segment 1 ((124 >> 2) + 33 = 64)
            32767: 0x80,
            -32768: 0x00,
            32124: 0x80,
        }
        for x, code in cases.items():
            self.assertEqual(enc(e, x), code, f"{x} -> {enc(e, x):#x}, expected {code:#x}")
        # Every segment edge (biased 14-bit magnitude 64, 128, ... 4096): the code steps from
        # the top of one segment (low nibble 0 after inversion) to the bottom of the next.
        for segment in range(1, 8):
            first = ((32 << segment) - 33) * 4
            self.assertEqual(enc(e, first) & 0x7F, (7 - segment) << 4 | 0x0F, segment)
            self.assertEqual(enc(e, first - 4) & 0x7F, (8 - segment) << 4 | 0x00, segment)

    def test_every_reconstruction_level_encodes_to_its_own_code(self) -> None:
        for code in range(256):
            if code == 0x7F:
                continue  # -0 decodes to 0, which is +0 (0xFF)
            self.assertEqual(enc(g711.ULAW_ENCODE, int(g711.ULAW_DECODE[code])), code, hex(code))

    def test_quantisation_is_monotonic_and_bounded(self) -> None:
        x = np.arange(-32768, 32768)
        y = g711.ULAW_DECODE[g711.ULAW_ENCODE[x.astype(np.int16).view(np.uint16)]].astype(int)
        self.assertTrue(np.all(np.diff(y) >= 0))
        inside = np.abs(x) <= 32124
        # error never exceeds half the largest step (1024 / 2) inside the range
        self.assertLessEqual(int(np.abs(y - x)[inside].max()), 512)


class AlawTests(SynchronousTestCase):
    def test_decode_known_values(self) -> None:
        d = g711.ALAW_DECODE
        self.assertEqual(
            [int(d[c]) for c in (0xD5, 0x55, 0xAA, 0x2A, 0xD4, 0xC5, 0xDA)],
            [8, -8, 32256, -32256, 24, 264, 248],
        )

    def test_encode_known_values_and_segment_edges(self) -> None:
        e = g711.ALAW_ENCODE
        cases = {0: 0xD5, -1: 0x55, 15: 0xD5, 16: 0xD4, 255: 0xDA, 256: 0xC5, 32767: 0xAA, -32768: 0x2A}
        for x, code in cases.items():
            self.assertEqual(enc(e, x), code, f"{x} -> {enc(e, x):#x}, expected {code:#x}")
        # segment s >= 1 starts at 16 << (s + 3) (16-bit units): the unscrambled code steps
        # from (s-1, 15) to (s, 0) there
        for segment in range(1, 8):
            first = 16 << (segment + 3)
            self.assertEqual((enc(e, first) ^ 0x55) & 0x7F, segment << 4, segment)
            self.assertEqual((enc(e, first - 1) ^ 0x55) & 0x7F, (segment - 1) << 4 | 0x0F, segment)

    def test_every_reconstruction_level_encodes_to_its_own_code(self) -> None:
        for code in range(256):
            self.assertEqual(enc(g711.ALAW_ENCODE, int(g711.ALAW_DECODE[code])), code, hex(code))

    def test_quantisation_is_monotonic(self) -> None:
        x = np.arange(-32768, 32768)
        y = g711.ALAW_DECODE[g711.ALAW_ENCODE[x.astype(np.int16).view(np.uint16)]].astype(int)
        self.assertTrue(np.all(np.diff(y) >= 0))
        self.assertLessEqual(int(np.abs(y - x).max()), 512)


class ApiTests(SynchronousTestCase):
    def test_byte_api_round_trip_and_float_input(self) -> None:
        pcm = np.array([0, 1000, -1000, 32767, -32768], dtype=np.int16)
        for name in ("PCMU", "pcma"):
            data = g711.encode(name, pcm)
            self.assertEqual(len(data), 5)
            back = g711.decode(name, data)
            self.assertEqual(back.dtype, np.int16)
            self.assertTrue(np.all(np.abs(back[:3].astype(int) - pcm[:3]) <= 32))
            # floats are rounded and saturated, not wrapped
            self.assertEqual(g711.encode(name, np.array([1e6, -1e6, 999.6])), g711.encode(name, np.array([32767, -32768, 1000], dtype=np.int16)))
        self.assertRaises(ValueError, g711.encode, "G722", pcm)
        self.assertRaises(ValueError, g711.decode, "opus", b"\x00")

    def test_tables_are_read_only(self) -> None:
        with self.assertRaises(ValueError):
            g711.ULAW_ENCODE[0] = 1
