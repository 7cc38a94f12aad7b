"""The transcode path's reorder buffer (wcsgw.media.jitter): zero delay in order, a bounded
wait for a gap, loss/late/duplicate decisions, new-stream detection, the adaptive wait."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from tests.support import assert_near
from wcsgw.media.jitter import JitterBuffer, Played

T0 = 1000.0


def seqs(played: list[Played]) -> list[int]:
    return [p.seq for p in played]


class InOrderTests(SynchronousTestCase):
    def test_in_order_packets_are_released_at_once(self) -> None:
        jb = JitterBuffer(8000)
        for i in range(5):
            out = jb.push(100 + i, 160 * i, b"p%d" % i, T0 + 0.02 * i)
            self.assertEqual(seqs(out), [100 + i])
            self.assertEqual(out[0].payload, b"p%d" % i)
            self.assertIsNone(jb.next_deadline())
        self.assertEqual((jb.released, jb.lost, jb.late, jb.duplicates), (5, 0, 0, 0))

    def test_first_packet_is_marked_resync_and_others_not(self) -> None:
        jb = JitterBuffer(8000)
        first = jb.push(1, 0, b"a", T0)[0]
        second = jb.push(2, 160, b"b", T0 + 0.02)[0]
        self.assertEqual((first.resync, second.resync), (True, False))
        self.assertEqual((first.lost_before, second.lost_before), (0, 0))

    def test_sequence_wrap_is_in_order(self) -> None:
        jb = JitterBuffer(8000)
        out = []
        for i, s in enumerate([65534, 65535, 0, 1]):
            out += jb.push(s, 160 * i, b"x", T0 + 0.02 * i)
        self.assertEqual(seqs(out), [65534, 65535, 0, 1])
        self.assertEqual(jb.lost, 0)


class GapTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.jb = JitterBuffer(8000)
        self.jb.push(10, 0, b"10", T0)

    def test_reordered_pair_is_released_in_order_without_loss(self) -> None:
        jb = self.jb
        self.assertEqual(jb.push(12, 320, b"12", T0 + 0.040), [])  # 11 is missing: wait
        self.assertEqual(jb.held, 1)
        out = jb.push(11, 160, b"11", T0 + 0.045)  # ...and here it is
        self.assertEqual(seqs(out), [11, 12])
        self.assertEqual([p.lost_before for p in out], [0, 0])
        self.assertEqual((jb.lost, jb.reordered, jb.held), (0, 1, 0))
        self.assertIsNone(jb.next_deadline())

    def test_the_wait_expires_and_the_gap_is_declared_lost(self) -> None:
        jb = self.jb
        jb.push(12, 320, b"12", T0 + 0.040)
        jb.push(13, 480, b"13", T0 + 0.060)
        deadline = jb.next_deadline()
        assert_near(self, deadline, T0 + 0.040 + jb.wait, 1e-9)  # from the first held packet
        self.assertEqual(jb.poll(deadline - 0.001), [])
        out = jb.poll(deadline)
        self.assertEqual(seqs(out), [12, 13])
        self.assertEqual([p.lost_before for p in out], [1, 0])
        self.assertEqual(jb.lost, 1)
        self.assertIsNone(jb.next_deadline())

    def test_a_packet_behind_the_playout_point_is_late(self) -> None:
        jb = self.jb
        jb.push(12, 320, b"12", T0 + 0.040)
        jb.poll(T0 + 1.0)
        self.assertEqual(jb.push(11, 160, b"11", T0 + 1.01), [])
        self.assertEqual((jb.late, jb.duplicates), (1, 0))

    def test_duplicates_are_dropped_released_or_held(self) -> None:
        jb = self.jb
        self.assertEqual(jb.push(10, 0, b"10", T0 + 0.001), [])
        jb.push(12, 320, b"12", T0 + 0.040)
        self.assertEqual(jb.push(12, 320, b"12", T0 + 0.041), [])
        self.assertEqual(seqs(jb.push(11, 160, b"11", T0 + 0.042)), [11, 12])
        self.assertEqual((jb.duplicates, jb.late), (2, 0))

    def test_two_gaps_wait_each_from_their_own_packet(self) -> None:
        jb = self.jb
        jb.push(12, 320, b"12", T0 + 0.040)  # 11 missing
        jb.push(15, 800, b"15", T0 + 0.100)  # 13, 14 missing
        first = jb.next_deadline()
        out = jb.poll(first)
        self.assertEqual(seqs(out), [12])
        self.assertEqual(jb.next_deadline(), T0 + 0.100 + jb.wait)
        out = jb.poll(jb.next_deadline())
        self.assertEqual([(p.seq, p.lost_before) for p in out], [(15, 2)])

    def test_held_packets_are_bounded(self) -> None:
        jb = JitterBuffer(8000, max_held=3)
        jb.push(1, 0, b"1", T0)
        out = []
        for s in range(3, 6):  # 2 never comes; packets pile up within one wait...
            out += jb.push(s, 160 * (s - 1), b"x", T0 + 0.001 * s)
        self.assertEqual((out, jb.held), ([], 3))
        out = jb.push(6, 800, b"x", T0 + 0.006)  # ...one too many: give up on 2 now
        self.assertEqual(seqs(out), [3, 4, 5, 6])
        self.assertEqual(out[0].lost_before, 1)
        self.assertEqual(jb.held, 0)


class SkipTests(SynchronousTestCase):
    def test_event_sequence_numbers_are_not_losses(self) -> None:
        jb = JitterBuffer(8000)
        jb.push(1, 0, b"a", T0)
        self.assertEqual(jb.skip(2, 160, T0 + 0.02), [])
        self.assertEqual(jb.skip(3, 160, T0 + 0.04), [])
        out = jb.push(4, 800, b"b", T0 + 0.06)
        self.assertEqual([(p.seq, p.lost_before) for p in out], [(4, 0)])
        self.assertIsNone(jb.next_deadline())

    def test_a_skipped_packet_fills_a_gap_too(self) -> None:
        jb = JitterBuffer(8000)
        jb.push(1, 0, b"a", T0)
        jb.push(3, 320, b"c", T0 + 0.04)
        out = jb.skip(2, 160, T0 + 0.045)
        self.assertEqual([(p.seq, p.lost_before) for p in out], [(3, 0)])

    def test_loss_before_a_skipped_packet_is_passed_on(self) -> None:
        jb = JitterBuffer(8000)
        jb.push(1, 0, b"a", T0)
        jb.skip(3, 320, T0 + 0.04)  # 2 missing, 3 is an event
        out = jb.push(4, 480, b"d", T0 + 0.06)
        self.assertEqual(out, [])
        out = jb.poll(jb.next_deadline())
        self.assertEqual([(p.seq, p.lost_before) for p in out], [(4, 1)])


class NewStreamTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.jb = JitterBuffer(8000)
        self.jb.push(10, 1000, b"a", T0, ssrc=7)

    def test_sequence_jump_is_a_new_stream(self) -> None:
        out = self.jb.push(5000, 1160, b"b", T0 + 0.02, ssrc=7)
        self.assertEqual([(p.seq, p.resync, p.lost_before) for p in out], [(5000, True, 0)])
        self.assertEqual((self.jb.resyncs, self.jb.lost, self.jb.late), (1, 0, 0))

    def test_backward_jump_is_a_new_stream_not_late(self) -> None:
        out = self.jb.push(10 - 500, 1160, b"b", T0 + 0.02, ssrc=7)
        self.assertEqual([p.resync for p in out], [True])
        self.assertEqual(self.jb.late, 0)

    def test_timestamp_jump_is_a_new_stream(self) -> None:
        out = self.jb.push(11, 1000 + 3 * 8000, b"b", T0 + 0.02, ssrc=7)
        self.assertEqual([p.resync for p in out], [True])

    def test_new_ssrc_flushes_what_was_held(self) -> None:
        self.jb.push(12, 1320, b"c", T0 + 0.04, ssrc=7)
        out = self.jb.push(300, 99, b"n", T0 + 0.05, ssrc=8)
        self.assertEqual([(p.seq, p.resync) for p in out], [(12, False), (300, True)])
        self.assertEqual(out[0].lost_before, 1)
        self.assertIsNone(self.jb.next_deadline())


class AdaptiveWaitTests(SynchronousTestCase):
    def test_starts_at_20ms_and_settles_at_the_floor_on_a_clean_network(self) -> None:
        jb = JitterBuffer(8000)
        assert_near(self, jb.wait, 0.020, 1e-9)
        for i in range(200):
            jb.push(i, 160 * i, b"x", T0 + 0.02 * i)
        assert_near(self, jb.wait, 0.010, 1e-9)

    def test_grows_with_jitter_up_to_the_cap(self) -> None:
        jb = JitterBuffer(8000)
        for i in range(200):
            jb.push(i, 160 * i, b"x", T0 + 0.02 * i + (0.015 if i % 2 else 0.0))
        # RFC 3550 jitter of an alternating 15 ms delay is ~15 ms: wait ~30 ms
        assert_near(self, jb.wait, 0.030, 0.003)
        jb2 = JitterBuffer(8000)
        for i in range(200):
            jb2.push(i, 160 * i, b"x", T0 + 0.02 * i + (0.2 if i % 2 else 0.0))
        assert_near(self, jb2.wait, 0.080, 1e-9)
