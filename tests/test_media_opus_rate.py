"""Opus with its PCM at the other leg's rate (issue 19, transcoding lever): the transcoder runs
libopus at 8 kHz against G.711/G.729 and 16 kHz against G.722, so neither pipe has a resampler
of its own; the RTP clock stays 48 kHz. Checked by content (tests.quality) against a peer that
runs Opus at 48 kHz like a browser, through loss (PLC and in-band FEC in 2.5 ms steps of the
lower rate) and with the timestamps exact.
"""

from __future__ import annotations

import numpy as np
from twisted.trial.unittest import SynchronousTestCase

from tests.quality import LEVEL, db, dominant, rms, run_direction, tone
from tests.support import assert_near
from tests.test_media_transcode import receive_opus_losing_every_tenth
from wcsgw.media.audiocodec import CodecError, make_codec, packet_samples
from wcsgw.media.bridge import LegMedia
from wcsgw.media.pipe import Pipe
from wcsgw.media.transcode import Transcoder

T0 = 1000.0


class OpusRateTests(SynchronousTestCase):
    def test_frames_and_packets_follow_the_rate(self) -> None:
        for rate, frame in ((8000, 160), (16000, 320), (48000, 960)):
            codec = make_codec("opus", sample_rate=rate)
            self.assertEqual((codec.sample_rate, codec.rtp_clock, codec.frame_samples), (rate, 48000, frame))
            self.assertEqual(packet_samples(codec, 20), frame)
            self.assertEqual(packet_samples(codec, 30), frame)  # not an Opus frame: 20 ms
            self.assertEqual(packet_samples(codec, 60), 3 * frame)
            codec.close()

    def test_a_bad_rate_or_frame_is_a_clear_error(self) -> None:
        with self.assertRaisesRegex(CodecError, "sample_rate"):
            make_codec("opus", sample_rate=44100)
        codec = make_codec("opus", sample_rate=8000)
        self.assertRaises(CodecError, codec.encode, np.zeros(960, dtype=np.int16))
        self.assertRaises(CodecError, codec.decode_fec, b"\x08", 30)  # not whole 2.5 ms steps at 8 kHz
        self.assertRaises(CodecError, codec.decode_fec, b"\x08", 980)  # over 120 ms at 8 kHz
        self.assertEqual(len(codec.decode_fec(b"\x08", 960)), 960)
        codec.close()

    def test_8k_stream_decodes_at_48k_and_back(self) -> None:
        """What we send a browser, it decodes at 48 kHz; what it sends, we decode at 8 kHz."""
        ours, browser = make_codec("opus", sample_rate=8000, bitrate=24000), make_codec("opus")
        x8, x48 = tone(1000.0, 8000, 1.0), tone(1000.0, 48000, 1.0)
        heard = np.concatenate([browser.decode(ours.encode(x8[i : i + 160])) for i in range(0, 8000, 160)])
        got = np.concatenate([ours.decode(browser.encode(x48[i : i + 960])) for i in range(0, 48000, 960)])
        self.assertEqual((len(heard), len(got)), (48000, 8000))
        for pcm, rate in ((heard[9600:], 48000), (got[1600:], 8000)):
            assert_near(self, dominant(pcm, rate), 1000.0, 10.0)
            assert_near(self, db(rms(pcm) / (LEVEL / np.sqrt(2))), 0.0, 3.0)
        self.assertEqual(len(ours.conceal(170)), 170)  # PLC rounds up to 2.5 ms steps, then trims
        ours.close()
        browser.close()


    def test_the_encoders_reused_input_buffer_keeps_frames_apart(self) -> None:
        """The encoder copies each frame into one buffer of its own: a longer frame than it
        holds is libopus's bad argument, and the same input still gives the same packets."""
        from wcsgw.media.opus import OpusEncoder, OpusError

        a, b = OpusEncoder(8000, complexity=3), OpusEncoder(8000, complexity=3)
        self.assertRaises(OpusError, a.encode, np.zeros(961, dtype=np.int16))
        x = tone(440.0, 8000, 0.2)
        frames = [x[i : i + 160] for i in range(0, 1600, 160)]
        first = [a.encode(f) for f in frames]
        self.assertEqual([b.encode(f.astype(np.float64)) for f in frames], first)


class TranscoderRateTests(SynchronousTestCase):
    def test_opus_runs_at_the_other_legs_rate_without_a_resampler(self) -> None:
        for sip, rate in ((LegMedia("PCMU", 0), 8000), (LegMedia("G729", 18), 8000), (LegMedia("G722", 9), 16000)):
            t = Transcoder(LegMedia("opus", 111), sip)
            self.assertEqual(t.webrtc_codec.sample_rate, rate, sip.codec)
            self.assertIsNone(t.w2s._resampler, sip.codec)
            self.assertIsNone(t.s2w._resampler, sip.codec)
            t.close()

    def test_timestamps_and_content_both_directions(self) -> None:
        for sip in (("PCMU", 8000), ("G722", 8000)):
            for to_sip, step in ((True, 160), (False, 960)):
                run = run_direction(("opus", 48000), sip, to_sip=to_sip, freq=440.0)
                self.assertEqual(set(run.steps), {step}, (sip, to_sip))
                self.assertEqual(len(run.timestamps), 50, (sip, to_sip))
                freq, level, snr = run.measure(440.0)
                assert_near(self, freq, 440.0, 4.4)
                assert_near(self, level, 0.0, 3.0)
                self.assertGreater(snr, 20.0, (sip, to_sip))

    def test_loss_is_concealed_from_fec_at_8k_without_a_hole(self) -> None:
        pipe = Pipe(make_codec("opus", sample_rate=8000), make_codec("pcmu"))
        out = receive_opus_losing_every_tenth(pipe)
        self.assertEqual(pipe.fec_frames, 5)
        self.assertEqual(pipe.concealed_samples, 5 * 160)
        self.assertEqual([(o.ts - out[0].ts) & 0xFFFFFFFF for o in out], [160 * i for i in range(50)])
        pcm = make_codec("pcmu").decode(b"".join(o.payload for o in out))[1600:]
        assert_near(self, dominant(pcm, 8000), 440.0, 4.4)
        assert_near(self, db(rms(pcm) / (LEVEL / np.sqrt(2))), 0.0, 3.0)
