"""The E-model MOS of wcsgw.media.quality at known points and its shape (issue 16, part 3)."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from wcsgw.media import quality


class EModelTest(SynchronousTestCase):
    def test_g711_clean_is_near_44(self) -> None:
        """No loss, no delay: G.107's default R 93.2, MOS ~4.41."""
        q = quality.score("PCMU", 0.0, 0.0)
        self.assertAlmostEqual(q.r, 93.2, places=6)
        self.assertTrue(4.40 < q.mos < 4.42, q.mos)

    def test_five_percent_loss_is_lower(self) -> None:
        clean = quality.score("PCMU", 0.0, 40.0).mos
        lossy = quality.score("PCMU", 0.05, 40.0)
        # Ie,eff = 95 * 5 / (5 + 25.1) = 15.8: R ~ 76.4 on 40 ms, MOS ~ 3.9
        self.assertAlmostEqual(lossy.r, 93.2 - 0.96 - 95 * 5 / 30.1, places=3)
        self.assertLess(lossy.mos, clean - 0.4)

    def test_300_ms_delay_is_lower(self) -> None:
        short = quality.score("PCMU", 0.0, 50.0).mos
        long = quality.score("PCMU", 0.0, 300.0)
        # Id = 0.024 * 300 + 0.11 * 122.7 = 20.7
        self.assertAlmostEqual(long.r, 93.2 - 7.2 - 0.11 * 122.7, places=3)
        self.assertLess(long.mos, short - 0.3)

    def test_monotone_in_loss_and_delay(self) -> None:
        for codec in ("PCMU", "opus", "G729", "G722", "speex", None):
            by_loss = [quality.score(codec, loss / 100, 60.0).mos for loss in range(0, 101, 2)]
            self.assertEqual(by_loss, sorted(by_loss, reverse=True), codec)
            self.assertLess(by_loss[-1], by_loss[0], codec)
            by_delay = [quality.score(codec, 0.01, float(d)).mos for d in range(0, 1001, 10)]
            self.assertEqual(by_delay, sorted(by_delay, reverse=True), codec)
            self.assertLess(by_delay[-1], by_delay[0], codec)

    def test_bounds(self) -> None:
        self.assertEqual(quality.score("PCMU", 1.0, 2000.0).mos, 1.0)
        self.assertEqual(quality.mos_from_r(120.0), 4.5)
        self.assertEqual(quality.mos_from_r(-3.0), 1.0)
        for r in range(0, 101):
            self.assertTrue(1.0 <= quality.mos_from_r(float(r)) <= 4.5)

    def test_codecs(self) -> None:
        """G.729 starts lower than G.711 (Ie 11); Opus holds up better under loss (Bpl)."""
        self.assertLess(quality.score("G729", 0.0, 0.0).mos, quality.score("PCMA", 0.0, 0.0).mos - 0.2)
        self.assertGreater(quality.score("opus", 0.05, 0.0).mos, quality.score("PCMU", 0.05, 0.0).mos)
        self.assertEqual(quality.codec_impairment("unknown"), quality.codec_impairment("PCMU"))

    def test_one_way_delay(self) -> None:
        # half the round trip, a packet time, a buffer of twice the jitter (at least a packet)
        self.assertEqual(quality.one_way_delay_ms(None, None), 40.0)
        self.assertEqual(quality.one_way_delay_ms(100.0, 30.0, 20.0), 50.0 + 20.0 + 60.0)
