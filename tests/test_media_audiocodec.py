"""The AudioCodec interface (wcsgw.media.audiocodec): the factory and registry, the G.711 and
Opus adapters held to the common contract, G.711 concealment (spandsp PLC and the fall-back)."""

from __future__ import annotations

import numpy as np
from twisted.trial.unittest import SynchronousTestCase

from tests.codec_support import CodecContract, level_db, quiet_stderr, rms, through, tone
from wcsgw.media import g711
from wcsgw.media.audiocodec import (
    AudioCodec,
    CodecError,
    G711Codec,
    load_library,
    make_codec,
)
from wcsgw.media.codeclibs import available
from wcsgw.media.opuscodec import OpusCodec
from wcsgw.media.plc import Concealer, FadeConcealer


class PcmuContractTests(CodecContract, SynchronousTestCase):
    payload_20ms = 160
    strict_length = False

    def make(self) -> AudioCodec:
        return make_codec("PCMU")


class PcmaContractTests(CodecContract, SynchronousTestCase):
    payload_20ms = 160
    strict_length = False

    def make(self) -> AudioCodec:
        return make_codec("pcma", 8000)


class OpusContractTests(CodecContract, SynchronousTestCase):
    payload_20ms = None  # variable bit rate

    def make(self) -> AudioCodec:
        return make_codec("opus", 48000, {"useinbandfec": "1"}, bitrate=24000)


class RegistryTests(SynchronousTestCase):
    def test_unknown_codec_is_a_clear_codec_error(self) -> None:
        with self.assertRaises(CodecError) as ctx:
            make_codec("iLBC")
        message = str(ctx.exception)
        self.assertIn("'iLBC'", message)
        self.assertIn("g729", message)  # says what is known
        self.assertTrue(issubclass(CodecError, ValueError))

    def test_names_are_case_insensitive_and_keys_canonical(self) -> None:
        for name, key, rate, clock in (
            ("PCMU", "pcmu", 8000, 8000),
            ("pcma", "pcma", 8000, 8000),
            ("G729", "g729", 8000, 8000),
            ("speex", "speex", 8000, 8000),
            ("OPUS", "opus", 48000, 48000),
            ("G722", "g722", 16000, 8000),
        ):
            c = make_codec(name)
            self.addCleanup(c.close)
            self.assertIsInstance(c, AudioCodec)
            self.assertEqual((c.name, c.sample_rate, c.rtp_clock), (key, rate, clock), name)
        wb = make_codec("SPEEX", 16000)
        self.addCleanup(wb.close)
        self.assertEqual((wb.sample_rate, wb.rtp_clock, wb.frame_samples), (16000, 16000, 320))

    def test_frame_samples(self) -> None:
        expected = {"pcmu": 80, "pcma": 80, "g729": 80, "speex": 160, "opus": 960, "g722": 160}
        for key, frame in expected.items():
            c = make_codec(key)
            self.addCleanup(c.close)
            self.assertEqual(c.frame_samples, frame, key)

    def test_bad_clock_rates_and_options(self) -> None:
        self.assertRaises(CodecError, make_codec, "PCMU", 16000)
        self.assertRaises(CodecError, make_codec, "opus", 8000)
        self.assertRaises(CodecError, make_codec, "speex", 32000)
        self.assertRaises(CodecError, make_codec, "G722", 16000)  # RFC 3551: G.722's clock is 8000
        self.assertRaises(CodecError, make_codec, "G729", None, None, colour="blue")
        self.assertRaises(CodecError, make_codec, "opus", None, None, max_bandwidth="huge")

    def test_available_lists_what_loads_here(self) -> None:
        # The Makefile installs every codec library on this machine.
        self.assertEqual(sorted(available()), ["g722", "g729", "opus", "pcma", "pcmu", "speex"])

    def test_missing_library_names_the_debian_package(self) -> None:
        with self.assertRaises(CodecError) as ctx:
            load_library("libnot-a-codec.so.9", "libnot-a-codec9")
        self.assertIn("libnot-a-codec9", str(ctx.exception))
        self.assertIn("install", str(ctx.exception))

    def test_g729_annexb_from_fmtp(self) -> None:
        # We send with VAD off unless asked; asked, only if the peer allows Annex B.
        plain = make_codec("G729")
        asked = make_codec("G729", None, {"annexb": "yes"}, vad=True)
        refused = make_codec("G729", None, {"annexb": "no"}, vad=True)
        for c in (plain, asked, refused):
            self.addCleanup(c.close)
        self.assertEqual((plain.vad, asked.vad, refused.vad), (False, True, False))  # type: ignore[attr-defined]


class G711Tests(SynchronousTestCase):
    def test_bit_exact_with_the_tables(self) -> None:
        x = np.random.default_rng(3).integers(-32768, 32767, 800).astype(np.int16)
        for name in ("PCMU", "PCMA"):
            c = G711Codec(name, plc=False)
            payload = c.encode(x)
            self.assertEqual(payload, g711.encode(name, x))
            np.testing.assert_array_equal(c.decode(payload), g711.decode(name, payload))
            every_byte = bytes(range(256))
            np.testing.assert_array_equal(c.decode(every_byte), g711.decode(name, every_byte))

    def test_any_length_encodes(self) -> None:
        c = G711Codec("pcmu")
        self.addCleanup(c.close)
        self.assertEqual(len(c.encode(np.zeros(200, dtype=np.int16))), 200)  # 25 ms ptime

    def test_plc_is_spandsp_and_recovers_without_a_click(self) -> None:
        c = G711Codec("pcma")
        self.addCleanup(c.close)
        self.assertIsInstance(c._plc, Concealer)
        x = tone(440.0, 8000, 8000)
        y, payloads = through(c, x[:4000], 160)
        z = c.conceal(160)
        # pitch-synchronous repetition: the stand-in still has the tone's frequency and level
        self.assertGreater(level_db(z, x), -3.0)
        spectrum = np.abs(np.fft.rfft(z * np.hanning(160), 1600))
        self.assertLessEqual(abs(spectrum.argmax() * 8000 / 1600 - 440.0), 20.0)
        # long losses fade out (G.711 Appendix I style: silence after 50-60 ms)
        c.conceal(480)
        self.assertLess(rms(c.conceal(160)), 100.0)
        back = c.decode(c.encode(x[4160:4320]))
        self.assertEqual(len(back), 160)


class ConcealerTests(SynchronousTestCase):
    def test_fade_concealer_fallback(self) -> None:
        f = FadeConcealer(80, 400)
        x = tone(500.0, 8000, 800)
        np.testing.assert_array_equal(f.received(x), x)
        z = f.fill(160)
        self.assertEqual(len(z), 160)
        # repeats the last 10 ms, fading by 1/400 per sample
        np.testing.assert_allclose(z[:80], x[-80:] * (1 - np.arange(80) / 400), atol=1)
        self.assertEqual(int(np.abs(f.fill(400)[-100:]).max()), 0)

    def test_spandsp_concealer_before_any_audio_is_silent(self) -> None:
        c = Concealer()
        self.addCleanup(c.close)
        self.assertEqual(int(np.abs(c.fill(160)).max()), 0)


class OpusAdapterTests(SynchronousTestCase):
    def test_fmtp_sets_the_encoder(self) -> None:
        from wcsgw.media.opuscodec import opus_options

        got = opus_options({"maxaveragebitrate": "20000", "useinbandfec": "1", "usedtx": "1",
                             "maxplaybackrate": "16000"}, {})
        self.assertEqual(got["bitrate"], 20000)
        self.assertTrue(got["fec"])
        self.assertTrue(got["dtx"])
        self.assertEqual(got["max_bandwidth"], "wideband")
        self.assertEqual(opus_options({"maxaveragebitrate": "20000"}, {"bitrate": 32000})["bitrate"], 32000)

    def test_only_whole_opus_frames(self) -> None:
        c = OpusCodec()
        self.addCleanup(c.close)
        for n in (120, 240, 480, 960, 1920, 2880):
            self.assertGreater(len(c.encode(np.zeros(n, dtype=np.int16))), 0)
        self.assertRaises(CodecError, c.encode, np.zeros(1000, dtype=np.int16))
        self.assertRaises(CodecError, c.encode, np.zeros(3840, dtype=np.int16))

    def test_fec_recovers_the_lost_frame(self) -> None:
        send = make_codec("opus", 48000, {"useinbandfec": "1"}, bitrate=24000)
        recv = make_codec("opus")
        self.addCleanup(send.close)
        self.addCleanup(recv.close)
        x = tone(440.0, 48000, 960 * 10)
        payloads = [send.encode(x[i : i + 960]) for i in range(0, len(x), 960)]
        for p in payloads[:5]:
            recv.decode(p)
        # packet 5 lost: its FEC copy rides in packet 6
        fec = recv.decode_fec(payloads[6], 960)  # type: ignore[attr-defined]
        self.assertEqual(len(fec), 960)
        self.assertGreater(level_db(fec, x), -6.0)
        self.assertEqual(len(recv.decode(payloads[6])), 960)
        self.assertRaises(CodecError, recv.decode_fec, payloads[7], 1000)  # type: ignore[attr-defined]

    def test_conceal_of_odd_sizes(self) -> None:
        c = OpusCodec()
        self.addCleanup(c.close)
        c.decode(c.encode(tone(440.0, 48000, 960)))
        for n in (1, 100, 960, 7000):
            self.assertEqual(len(c.conceal(n)), n)

    def test_random_opus_payloads_via_quiet_stderr_helper(self) -> None:
        # the helper restores stderr (later tests still print)
        import os

        before = os.fstat(2).st_ino
        with quiet_stderr():
            pass
        self.assertEqual(os.fstat(2).st_ino, before)
