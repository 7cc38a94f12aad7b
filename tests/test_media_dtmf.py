"""RFC 4733 DTMF (wcsgw.media.dtmf, .dtmfgenerator, .dtmfdetector), sans-IO: the generator's
packets byte for byte (event codes, marker, one timestamp per event, durations in 50 ms steps,
three end packets, volume, cadence), and the detector (each digit once, whatever is lost,
reordered or retransmitted)."""

from __future__ import annotations

import random
import struct

from twisted.trial.unittest import SynchronousTestCase

from tests.support import assert_near
from wcsgw.media.dtmf import (
    DIGITS,
    DtmfError,
    TelephoneEvent,
    event_code,
    event_digit,
    normalize_digits,
)
from wcsgw.media.dtmfdetector import DtmfDetector
from wcsgw.media.dtmfgenerator import DtmfGenerator, schedule_rtp
from wcsgw.media.rtp import build_rtp, parse_rtp

T0 = 1_700_000_000.0
SSRC = 0x11223344


def clock(rate: int, origin_ts: int = 1000):
    """The stream clock a generator reads event timestamps from: ``origin_ts`` at T0."""
    return lambda t: (origin_ts + round((t - T0) * rate)) & 0xFFFFFFFF


def ev(code: int, end: bool = False, duration: int = 400, volume: int = 10) -> bytes:
    return struct.pack("!BBH", code, (0x80 if end else 0) | volume, duration)


class CodesTests(SynchronousTestCase):
    def test_event_codes(self) -> None:
        self.assertEqual([event_code(d) for d in "0123456789"], list(range(10)))
        self.assertEqual([event_code(d) for d in "*#ABCD"], [10, 11, 12, 13, 14, 15])
        self.assertEqual([event_code(d) for d in "abcd"], [12, 13, 14, 15])
        self.assertEqual("".join(event_digit(c) for c in range(16)), DIGITS)  # type: ignore[misc]
        self.assertIsNone(event_digit(16))  # flash: an event, not a digit
        for bad in ("E", "x", " ", "-", "11"):
            self.assertRaises(DtmfError, event_code, bad)

    def test_digit_strings(self) -> None:
        self.assertEqual(normalize_digits("12ab#*"), "12AB#*")
        self.assertRaises(DtmfError, normalize_digits, "")
        with self.assertRaises(DtmfError) as caught:
            normalize_digits("12 3")
        self.assertIn("' '", str(caught.exception))
        self.assertTrue(issubclass(DtmfError, ValueError))

    def test_payload_pack_and_parse(self) -> None:
        self.assertEqual(TelephoneEvent(11, True, 10, 800).pack(), bytes.fromhex("0b8a0320"))
        self.assertEqual(TelephoneEvent.parse(bytes.fromhex("058a0320")), TelephoneEvent(5, True, 10, 800))
        # two reports in one packet: the packet's timestamp is the last one's
        self.assertEqual(TelephoneEvent.parse(ev(1, True, 800) + ev(2, False, 160)).event, 2)
        self.assertRaises(DtmfError, TelephoneEvent.parse, b"\x01\x0a\x01")
        self.assertRaises(DtmfError, TelephoneEvent(1, duration=0x10000).pack)
        self.assertEqual(TelephoneEvent(1).digit, "1")


class GeneratorTests(SynchronousTestCase):
    def rtp(self, digits: str, rate: int, pt: int) -> list[tuple[float, bytes]]:
        gen = DtmfGenerator(pt, rate, timestamp_at=clock(rate))
        return [(at - T0, pkt) for at, pkt in schedule_rtp(gen.packets_for(digits, T0), 7, SSRC)]

    def test_digit_1_at_8000_byte_exact(self) -> None:
        #      V  M|PT  seq   timestamp  SSRC      ev E|vol duration
        expected = [
            (0.00, "80e5 0007 000003e8 11223344 01 0a 0190"),  # start: marker, 50 ms = 400
            (0.05, "8065 0008 000003e8 11223344 01 0a 0320"),  # update: 100 ms = 800
            (0.10, "8065 0009 000003e8 11223344 01 8a 0320"),  # end (E bit), final duration
            (0.15, "8065 000a 000003e8 11223344 01 8a 0320"),  # end, retransmitted
            (0.20, "8065 000b 000003e8 11223344 01 8a 0320"),  # end, retransmitted
        ]
        got = self.rtp("1", 8000, 101)
        self.assertEqual([p for _, p in got], [bytes.fromhex(h.replace(" ", "")) for _, h in expected])
        for (at, _), (want, _) in zip(got, expected):
            assert_near(self, at, want, 1e-6)

    def test_digit_hash_at_48000_byte_exact(self) -> None:
        expected = [
            "80ee 0007 000003e8 11223344 0b 0a 0960",  # '#' = 11; 50 ms at 48 kHz = 2400
            "806e 0008 000003e8 11223344 0b 0a 12c0",  # 4800
            "806e 0009 000003e8 11223344 0b 8a 12c0",
            "806e 000a 000003e8 11223344 0b 8a 12c0",
            "806e 000b 000003e8 11223344 0b 8a 12c0",
        ]
        got = self.rtp("#", 48000, 110)
        self.assertEqual([p for _, p in got], [bytes.fromhex(h.replace(" ", "")) for h in expected])
        self.assertEqual([round(at, 3) for at, _ in got], [0.0, 0.05, 0.1, 0.15, 0.2])

    def test_digit_hash_at_8000_and_1_at_48000(self) -> None:
        for digit, rate, pt, durations in (("#", 8000, 101, [400, 800]), ("1", 48000, 110, [2400, 4800])):
            packets = [parse_rtp(p) for _, p in self.rtp(digit, rate, pt)]
            raw = [p for _, p in self.rtp(digit, rate, pt)]
            self.assertEqual([h.marker for h in packets], [True, False, False, False, False])
            self.assertEqual({h.payload_type for h in packets}, {pt})
            self.assertEqual({h.timestamp for h in packets}, {1000})
            reports = [TelephoneEvent.parse(h.payload(r)) for h, r in zip(packets, raw)]
            self.assertEqual({r.event for r in reports}, {event_code(digit)})
            self.assertEqual({r.volume for r in reports}, {10})
            self.assertEqual([r.duration for r in reports], durations + [durations[-1]] * 3)
            self.assertEqual([r.end for r in reports], [False, False, True, True, True])

    def test_cadence_of_a_string(self) -> None:
        gen = DtmfGenerator(101, 8000, timestamp_at=clock(8000, origin_ts=0xFFFFF000))
        packets = gen.packets_for("123#", T0)
        self.assertEqual(len(packets), 4 * 5)
        starts = [p for p in packets if p.marker]
        self.assertEqual([p.digit for p in starts], list("123#"))
        # each digit starts 70 ms after the previous digit's last end packet (at +200 ms)
        for k, p in enumerate(starts):
            assert_near(self, p.at - T0, 0.27 * k, 1e-6)
        # every event's timestamp is the stream clock at its start (here across the wrap)
        self.assertEqual([p.timestamp for p in starts], [(0xFFFFF000 + 2160 * k) & 0xFFFFFFFF for k in range(4)])
        for p in packets:
            start = next(s for s in starts if s.digit == p.digit)
            self.assertEqual(p.timestamp, start.timestamp)
        # no packet of one digit after the next digit's start
        self.assertEqual([p.digit for p in packets], [d for d in "123#" for _ in range(5)])
        self.assertEqual((gen.events_sent, gen.packets_sent, gen.busy), (4, 20, False))

    def test_sans_io_deadlines_and_late_polls(self) -> None:
        gen = DtmfGenerator(101, 8000, timestamp_at=clock(8000))
        self.assertIsNone(gen.next_deadline())
        self.assertEqual(gen.poll(T0), [])
        gen.send("5", T0)
        self.assertEqual(gen.next_deadline(), T0)
        self.assertTrue(gen.busy)
        self.assertFalse(gen.active)  # queued, nothing on the air yet
        (start,) = gen.poll(T0)
        self.assertTrue(start.marker and gen.active)
        assert_near(self, gen.next_deadline(), T0 + 0.05, 1e-6)
        self.assertEqual(gen.poll(T0 + 0.049), [])
        # a caller 120 ms late gets everything due, in order, with the scheduled contents
        late = gen.poll(T0 + 0.17)
        self.assertEqual([(p.duration, p.end) for p in late], [(800, False), (800, True), (800, True)])
        assert_near(self, late[-1].at, T0 + 0.15, 1e-6)
        (last,) = gen.poll(T0 + 0.2)
        self.assertTrue(last.end)
        self.assertFalse(gen.busy)
        self.assertIsNone(gen.next_deadline())
        # a digit asked for right away waits for the gap after the last end packet
        gen.send("6", T0 + 0.21)
        assert_near(self, gen.next_deadline(), T0 + 0.27, 1e-6)
        # and one asked for while another plays is queued behind it
        gen.poll(T0 + 0.27)
        gen.send("7", T0 + 0.3)
        self.assertEqual((gen.current_digit, gen.pending), ("6", "7"))
        rest = gen.poll(T0 + 10)
        self.assertEqual([p.digit for p in rest if p.marker], ["7"])
        assert_near(self, next(p.at for p in rest if p.marker), T0 + 0.27 + 0.27, 1e-6)

    def test_bad_digits_queue_nothing(self) -> None:
        gen = DtmfGenerator(101)
        self.assertRaises(DtmfError, gen.send, "12x", T0)
        self.assertFalse(gen.busy)
        self.assertIsNone(gen.next_deadline())

    def test_cancel_lets_the_current_event_end(self) -> None:
        gen = DtmfGenerator(101, timestamp_at=clock(8000))
        gen.send("12", T0)
        gen.poll(T0)
        gen.cancel()
        rest = gen.poll(T0 + 5)
        self.assertEqual({p.digit for p in rest}, {"1"})
        self.assertEqual(sum(p.end for p in rest), 3)

    def test_shape_options_and_limits(self) -> None:
        gen = DtmfGenerator(101, 8000, timestamp_at=clock(8000), duration=0.12, gap=0.05, volume=6)
        packets = gen.packets_for("9", T0)
        # 120 ms: updates at 0, 50, 100 ms (400, 800, 960), ends from 120 ms
        self.assertEqual([p.duration for p in packets], [400, 800, 960, 960, 960, 960])
        self.assertEqual([round(p.at - T0, 3) for p in packets], [0.0, 0.05, 0.1, 0.12, 0.17, 0.22])
        self.assertEqual({p.payload[1] & 0x3F for p in packets}, {6})
        # the 16-bit duration: 8.19 s at 8 kHz, 1.36 s at 48 kHz; no segments are generated
        DtmfGenerator(101, 8000, duration=8.0)
        self.assertRaises(DtmfError, DtmfGenerator, 101, 48000, duration=2.0)
        self.assertRaises(DtmfError, DtmfGenerator, 128)
        self.assertRaises(DtmfError, DtmfGenerator, 101, volume=64)
        # durations count in the telephone-event rate when a peer set it apart from the clock
        gen = DtmfGenerator(101, 48000, event_rate=8000, timestamp_at=clock(48000))
        self.assertEqual([p.duration for p in gen.packets_for("1", T0)][:2], [400, 800])

    def test_own_clock_without_a_stream(self) -> None:
        gen = DtmfGenerator(101, 8000, rng=random.Random(1))
        packets = gen.packets_for("12", T0)
        starts = [p.timestamp for p in packets if p.marker]
        self.assertEqual((starts[1] - starts[0]) & 0xFFFFFFFF, 2160)  # 270 ms at 8 kHz


class DetectorTests(SynchronousTestCase):
    def feed(self, det: DtmfDetector, packets: list[tuple[bytes, int]], ssrc: int = 1) -> list[str]:
        out = []
        for payload, ts in packets:
            digit = det.receive(payload, ts, ssrc)
            if digit is not None:
                out.append(digit)
        return out

    def event(self, code: int, ts: int) -> list[tuple[bytes, int]]:
        """A whole event as the generator sends it: start, update, three ends."""
        return [(ev(code, False, 400), ts), (ev(code, False, 800), ts)] + [(ev(code, True, 800), ts)] * 3

    def test_each_digit_once(self) -> None:
        det = DtmfDetector()
        packets = self.event(1, 1000) + self.event(1, 3160) + self.event(11, 5320)
        self.assertEqual(self.feed(det, packets), ["1", "1", "#"])  # the same key twice: two digits
        self.assertEqual(det.digits, ["1", "1", "#"])
        self.assertEqual(det.ignored, 12)

    def test_lost_start_packets(self) -> None:
        det = DtmfDetector()
        first = self.event(2, 1000)[1:]  # start lost: the update reports it
        second = self.event(3, 3160)[2:]  # start and update lost: the end reports it
        third = self.event(4, 5320)[4:]  # only the last retransmission arrives
        self.assertEqual(self.feed(det, first + second + third), ["2", "3", "4"])

    def test_reordering_and_late_retransmissions(self) -> None:
        det = DtmfDetector()
        a, b = self.event(5, 1000), self.event(6, 3160)
        # b's start overtakes a's last end packets; a's leftovers are then ignored
        order = a[:3] + b[:1] + a[3:] + b[1:]
        self.assertEqual(self.feed(det, order), ["5", "6"])
        # an update that overtakes its own start packet
        det = DtmfDetector()
        c = self.event(7, 9000)
        self.assertEqual(self.feed(det, [c[1], c[0]] + c[2:]), ["7"])

    def test_timestamp_wrap_and_new_source(self) -> None:
        det = DtmfDetector()
        self.assertEqual(self.feed(det, self.event(8, 0xFFFFFF00) + self.event(9, 0x00000780)), ["8", "9"])
        # another SSRC behind the stream starts afresh, even with an "old" timestamp
        self.assertEqual(self.feed(det, self.event(8, 0xFFFFFF00), ssrc=2), ["8"])

    def test_long_event_segments_are_one_digit(self) -> None:
        det = DtmfDetector()
        packets = [(ev(0, False, 400), 1000), (ev(0, False, 0xFFFF), 1000)]
        # §2.5.1.3: the next segment continues at timestamp + 0xFFFF, duration from zero
        packets += [(ev(0, False, 400), 1000 + 0xFFFF), (ev(0, True, 4000), 1000 + 0xFFFF)]
        packets += [(ev(0, True, 4000), 1000 + 0xFFFF)] * 2
        packets += self.event(0, 1000 + 0xFFFF + 8000)  # the key pressed again
        self.assertEqual(self.feed(det, packets), ["0", "0"])

    def test_non_dtmf_events_and_rtp_helper(self) -> None:
        det = DtmfDetector()
        self.assertIsNone(det.receive(ev(16), 10, 1))  # flash
        packet = build_rtp(payload_type=101, sequence=1, timestamp=500, ssrc=1, payload=ev(12), marker=True)
        self.assertEqual(det.receive_rtp(packet), "A")
        self.assertRaises(DtmfError, det.receive, b"\x01", 10, 1)
        self.assertRaises(DtmfError, det.receive_rtp, b"\x80\x65")

    def test_generator_to_detector_with_loss(self) -> None:
        gen = DtmfGenerator(101, 8000, timestamp_at=clock(8000))
        packets = gen.packets_for(DIGITS + "55", T0)
        rng = random.Random(7)
        det = DtmfDetector()
        got = []
        for p in packets:
            # every start packet lost, and a third of the rest, but never a whole event
            if p.marker or (not p.end and rng.random() < 0.33):
                continue
            digit = det.receive(p.payload, p.timestamp, SSRC)
            if digit:
                got.append(digit)
        self.assertEqual("".join(got), DIGITS + "55")
