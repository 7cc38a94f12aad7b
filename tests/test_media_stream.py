"""Per-leg stream state (wcsgw.media.stream): outgoing sequence/timestamp continuity across
source changes, jumps, wrap-around, loss and clock-rate scaling; RFC 3550 A.1/A.3/A.8
reception statistics."""

from __future__ import annotations

import random

from twisted.trial.unittest import SynchronousTestCase

from wcsgw.media.stream import InboundStream, OutboundStream


def out_stream(**kw) -> OutboundStream:
    kw.setdefault("ssrc", 0x5555)
    kw.setdefault("sequence", 1000)
    kw.setdefault("timestamp", 50000)
    return OutboundStream(**kw)


class OutboundContinuityTests(SynchronousTestCase):
    def test_first_packet_starts_at_our_random_bases(self) -> None:
        s = OutboundStream(clock_rate=8000, rng=random.Random(7))
        r = random.Random(7)
        ssrc, seq, ts = r.getrandbits(32), r.getrandbits(16), r.getrandbits(32)
        self.assertEqual(s.ssrc, ssrc)
        self.assertEqual(s.translate(0xAAAA, 17, 123456, 0.0, 160), (seq, ts, True))

    def test_steady_stream_is_offset_only(self) -> None:
        s = out_stream()
        got = [s.translate(0xAAAA, 17 + i, 999 + 160 * i, 0.02 * i, 160) for i in range(5)]
        self.assertEqual(got, [(1000 + i, 50000 + 160 * i, i == 0) for i in range(5)])
        self.assertEqual((s.packets_sent, s.octets_sent), (5, 800))

    def test_ssrc_change_continues_the_stream(self) -> None:
        s = out_stream()
        for i in range(3):
            s.translate(0xAAAA, 100 + i, 1000 + 160 * i, 0.02 * i)
        # A new source with unrelated numbers, 20 ms after the last packet
        seq, ts, rebased = s.translate(0xBBBB, 40000, 77777777, 0.06)
        self.assertEqual((seq, ts, rebased), (1003, 50000 + 3 * 160, True))
        self.assertEqual(s.translate(0xBBBB, 40001, 77777777 + 160, 0.08), (1004, 50000 + 4 * 160, False))
        self.assertEqual(s.source_ssrc, 0xBBBB)
        self.assertEqual(s.rebases, 1)

    def test_source_change_after_a_pause_advances_timestamp_by_wall_clock(self) -> None:
        s = out_stream()
        s.translate(0xAAAA, 1, 0, 10.0)
        _, ts, _ = s.translate(0xBBBB, 9, 5, 12.5)  # 2.5 s later
        self.assertEqual(ts, 50000 + 20000)

    def test_sequence_wraps_at_65535_without_rebase(self) -> None:
        s = out_stream(sequence=65534)
        got = [s.translate(0xAAAA, 100 + i, 160 * i, 0.02 * i)[:1] for i in range(4)]
        self.assertEqual(got, [(65534,), (65535,), (0,), (1,)])
        # and the incoming side wrapping is just as continuous
        s = out_stream()
        incoming = [65534, 65535, 0, 1]
        got = [s.translate(0xAAAA, q, 160 * i, 0.02 * i) for i, q in enumerate(incoming)]
        self.assertEqual([g[0] for g in got], [1000, 1001, 1002, 1003])
        self.assertEqual([g[2] for g in got], [True, False, False, False])

    def test_timestamp_wraps_at_2_32(self) -> None:
        s = out_stream(timestamp=0xFFFFFF00)
        ts = [s.translate(0xAAAA, i, 0xFFFFFFF0 + 160 * i, 0.02 * i)[1] for i in range(3)]
        self.assertEqual(ts, [0xFFFFFF00, 0xFFFFFFA0, 0x00000040])

    def test_loss_keeps_timestamps_in_step(self) -> None:
        s = out_stream()
        s.translate(0xAAAA, 10, 1000, 0.0)
        # packets 11..13 lost
        self.assertEqual(s.translate(0xAAAA, 14, 1000 + 4 * 160, 0.08), (1004, 50000 + 640, False))

    def test_reordered_packet_maps_back_and_does_not_move_the_baseline(self) -> None:
        s = out_stream()
        s.translate(0xAAAA, 10, 1000, 0.0)
        s.translate(0xAAAA, 12, 1320, 0.04)
        self.assertEqual(s.translate(0xAAAA, 11, 1160, 0.045), (1001, 50160, False))
        self.assertEqual(s.translate(0xAAAA, 13, 1480, 0.06), (1003, 50480, False))

    def test_sequence_jump_is_rebased(self) -> None:
        s = out_stream()
        s.translate(0xAAAA, 10, 1000, 0.0)
        self.assertEqual(s.translate(0xAAAA, 20000, 1160, 0.02), (1001, 50160, True))
        self.assertEqual(s.translate(0xAAAA, 20001, 1320, 0.04), (1002, 50320, False))

    def test_timestamp_jump_is_rebased_but_silence_suppression_is_not(self) -> None:
        s = out_stream()
        s.translate(0xAAAA, 10, 1000, 0.0)
        # silence suppression: 3 s without packets, the timestamp moved on by 3 s -> kept
        self.assertEqual(s.translate(0xAAAA, 11, 1000 + 24000, 3.0), (1001, 50000 + 24000, False))
        # the source's clock leaps by an hour in 20 ms -> re-based onto wall-clock time
        self.assertEqual(s.translate(0xAAAA, 12, 999999999, 3.02), (1002, 50000 + 24000 + 160, True))

    def test_telephone_event_packets_repeat_a_timestamp(self) -> None:
        s = out_stream()
        s.translate(0xAAAA, 10, 1000, 0.0)
        got = [s.translate(0xAAAA, 11 + i, 1160, 0.02 * (i + 1)) for i in range(3)]
        self.assertEqual(got, [(1001 + i, 50160, False) for i in range(3)])
        self.assertEqual(s.translate(0xAAAA, 14, 1160 + 480, 0.08), (1004, 50640, False))


class OutboundScalingTests(SynchronousTestCase):
    def test_48k_to_8k_divides_timestamp_steps(self) -> None:
        s = out_stream(clock_rate=8000, source_clock_rate=48000)
        got = [s.translate(0xAAAA, i, 123 + 960 * i, 0.02 * i) for i in range(3)]
        self.assertEqual([g[1] for g in got], [50000, 50160, 50320])

    def test_8k_to_48k_multiplies_and_loss_stays_in_step(self) -> None:
        s = out_stream(clock_rate=48000, source_clock_rate=8000)
        s.translate(0xAAAA, 0, 7, 0.0)
        self.assertEqual(s.translate(0xAAAA, 1, 167, 0.02)[1], 50960)
        self.assertEqual(s.translate(0xAAAA, 5, 167 + 4 * 160, 0.1)[1], 50960 + 4 * 960)

    def test_incoming_wrap_while_scaling(self) -> None:
        s = out_stream(clock_rate=8000, source_clock_rate=48000)
        base = 0xFFFFFFFF - 960
        ts = [s.translate(0xAAAA, i, (base + 960 * i) & 0xFFFFFFFF, 0.02 * i)[1] for i in range(4)]
        self.assertEqual(ts, [50000, 50160, 50320, 50480])

    def test_fractional_steps_do_not_drift(self) -> None:
        # 44.1 -> 8 kHz is not used by us, but the remainder carry must keep exact long-run time
        s = out_stream(clock_rate=8000, source_clock_rate=44100)
        last = 0
        for i in range(1, 1001):
            last = s.translate(0xAAAA, i, 441 * i, 0.01 * i)[1]
        self.assertEqual(last - 50000, 80 * 999)

    def test_sr_clock_extrapolates(self) -> None:
        s = out_stream()
        self.assertEqual(s.rtp_timestamp_at(5.0), 50000)
        s.translate(0xAAAA, 1, 0, 10.0)
        self.assertEqual(s.rtp_timestamp_at(10.5), 54000)


class InboundStatsTests(SynchronousTestCase):
    def feed(self, s: InboundStream, seqs, ssrc: int = 0x1234, start: float = 0.0) -> None:
        for i, q in enumerate(seqs):
            s.update(ssrc, q & 0xFFFF, 160 * i, start + 0.02 * i, 160)

    def test_no_loss(self) -> None:
        s = InboundStream(8000)
        self.feed(s, range(100, 150))
        self.assertEqual(s.received, 50)
        self.assertEqual(s.interval_report()[:3], (0, 0, 149))

    def test_loss_fraction_and_cumulative(self) -> None:
        s = InboundStream(8000)
        seqs = [q for q in range(0, 100) if q % 4 != 3]  # 25 of 100 lost (the last one too)
        self.feed(s, seqs)
        fraction, cumulative, ext_max, _ = s.interval_report()
        self.assertEqual(ext_max, 98)  # 99 lost, so 98 is the highest seen
        self.assertEqual(cumulative, 99 - 75)
        self.assertEqual(fraction, (24 << 8) // 99)
        # a second interval with no loss reports 0 fraction but keeps the cumulative count
        self.feed(s, range(99, 120), start=2.0)
        fraction, cumulative, ext_max, _ = s.interval_report()
        self.assertEqual((fraction, cumulative, ext_max), (0, 24, 119))

    def test_sequence_wrap_extends_the_highest_sequence(self) -> None:
        s = InboundStream(8000)
        self.feed(s, range(65530, 65540))
        _, lost, ext_max, _ = s.interval_report()
        self.assertEqual((lost, ext_max), (0, 65536 + 3))
        self.assertEqual(s.cycles, 65536)

    def test_duplicates_make_loss_negative(self) -> None:
        s = InboundStream(8000)
        self.feed(s, [1, 2, 3, 3, 4])
        self.assertEqual(s.cumulative_lost, -1)

    def test_jitter_is_zero_for_perfect_timing_and_grows_with_variation(self) -> None:
        s = InboundStream(8000)
        for i in range(50):
            s.update(1, i, 160 * i, 100.0 + 0.02 * i)
        self.assertLess(s.jitter, 1.0)
        # arrivals alternately 5 ms late and 5 ms early: |D| = 10 ms = 80 samples on every
        # packet, so J (a running mean of |D|) converges to 80
        for i in range(50, 400):
            offset = 0.005 if i % 2 else -0.005
            s.update(1, i, 160 * i, 100.0 + 0.02 * i + offset)
        jitter = s.interval_report()[3]
        self.assertTrue(78 <= jitter <= 80, jitter)

    def test_timing_false_keeps_events_out_of_jitter(self) -> None:
        s = InboundStream(8000)
        for i in range(20):
            s.update(1, i, 160 * i, 0.02 * i)
        for i in range(20, 40):  # an event: same timestamp, packets every 50 ms
            s.update(1, i, 3200, 0.4 + 0.05 * (i - 20), timing=False)
        self.assertLess(s.jitter, 1.0)
        self.assertEqual(s.received, 40)

    def test_new_ssrc_restarts_statistics(self) -> None:
        s = InboundStream(8000)
        self.feed(s, [1, 2, 5])
        self.feed(s, [900, 901], ssrc=0x9999, start=5.0)
        self.assertEqual((s.ssrc, s.received, s.cumulative_lost, s.base_seq), (0x9999, 2, 0, 900))

    def test_probation_two_as_in_rfc3550(self) -> None:
        s = InboundStream(8000, probation=2)
        self.assertFalse(s.update(1, 10, 0, 0.0))
        self.assertTrue(s.update(1, 11, 160, 0.02))
        self.assertEqual((s.received, s.base_seq), (1, 11))

    def test_big_jump_resyncs_after_two_sequential_packets(self) -> None:
        s = InboundStream(8000)
        self.feed(s, [1, 2, 3])
        self.assertFalse(s.update(0x1234, 30000, 0, 1.0))
        self.assertTrue(s.update(0x1234, 30001, 160, 1.02))
        self.assertEqual((s.base_seq, s.received), (30001, 1))
