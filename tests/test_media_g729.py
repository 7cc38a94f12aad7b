"""G.729A/B through bcg729 (wcsgw.media.g729): the AudioCodec contract, RFC 3551 payload
layout (10-byte frames, an optional trailing 2-byte SID), SID and erased frames in the
decoder, Annex B VAD in the encoder."""

from __future__ import annotations

import numpy as np
from twisted.trial.unittest import SynchronousTestCase

from tests.codec_support import CodecContract, dominant, level_db, rms, through, tone
from wcsgw.media.audiocodec import AudioCodec, CodecError, make_codec
from wcsgw.media.g729 import G729Codec


class G729ContractTests(CodecContract, SynchronousTestCase):
    payload_20ms = 20  # two 10-byte frames

    def make(self) -> AudioCodec:
        return make_codec("G729", 8000, {"annexb": "no"})


def quiet(samples: int, seed: int = 0) -> np.ndarray:
    """Background noise at about -60 dBFS: what a muted phone sends."""
    return np.random.default_rng(seed).normal(0, 30, samples).astype(np.int16)


class G729PayloadTests(SynchronousTestCase):
    def codec(self, **kw: bool) -> G729Codec:
        c = G729Codec(**kw)
        self.addCleanup(c.close)
        return c

    def test_frames_per_packet(self) -> None:
        c = self.codec()
        x = tone(1000.0, 8000, 8000)
        for ms in (10, 20, 30, 40, 60):
            n = 8 * ms
            payload = c.encode(x[:n])
            self.assertEqual(len(payload), ms, f"{ms} ms")
            self.assertEqual(len(c.decode(payload)), n)

    def test_lengths_that_are_not_g729(self) -> None:
        c = self.codec()
        for size in (1, 3, 9, 11, 13, 19, 21, 25):
            self.assertRaises(CodecError, c.decode, bytes(size))

    def test_sid_frames_decode_to_comfort_noise(self) -> None:
        enc = self.codec(vad=True)
        dec = self.codec()
        x = np.concatenate((tone(440.0, 8000, 4000), quiet(8000)))
        payloads = [enc.encode(x[i : i + 160]) for i in range(0, len(x), 160)]
        sids = [p for p in payloads if len(p) % 10 == 2]
        self.assertTrue(sids, "the encoder made no SID frame in 1 s of quiet")
        out = []
        for p in payloads:
            # no packet, or a packet shorter than its 20 ms (a frame not transmitted), is a
            # DTX gap the receiver fills by erasure: comfort noise after a SID
            pcm = dec.decode(p) if p else np.zeros(0, dtype=np.int16)
            out.append(pcm)
            if len(pcm) < 160:
                out.append(dec.conceal(160 - len(pcm)))
        y = np.concatenate(out)
        self.assertEqual(len(y), len(x))
        self.assertEqual(len(dec.decode(sids[0])), 80)  # a lone SID frame is 10 ms
        # comfort noise: quiet, but not digital silence, and nothing like the tone
        tail = y[6000:]
        self.assertLess(rms(tail), 200.0)
        # speech + trailing SID in one payload: 20 + 2 bytes -> 30 ms of audio
        mixed = enc.encode(tone(440.0, 8000, 160)) + sids[0]
        self.assertEqual(len(dec.decode(mixed)), 240)

    def test_erased_frames_then_speech(self) -> None:
        c = self.codec()
        x = tone(440.0, 8000, 8000)
        through(c, x[:4000], 160)
        erased = c.conceal(160)
        self.assertGreater(level_db(erased, x), -10.0)  # G.729 repeats the excitation
        long_loss = c.conceal(800)
        self.assertEqual(len(long_loss), 800)
        self.assertLess(rms(long_loss[-160:]), rms(erased))  # and attenuates it
        back, _ = through(c, x[4000:], 160)
        self.assertEqual(len(back), 4000)
        self.assertLessEqual(abs(dominant(back[2000:], 8000) - 440.0), 4.4)

    def test_vad_off_never_sends_sid(self) -> None:
        c = self.codec(vad=False)
        x = np.concatenate((tone(440.0, 8000, 1600), np.zeros(8000, dtype=np.int16)))
        self.assertEqual({len(c.encode(x[i : i + 160])) for i in range(0, len(x), 160)}, {20})

    def test_vad_on_sends_sid_or_nothing_for_silence(self) -> None:
        c = self.codec(vad=True)
        x = np.concatenate((tone(440.0, 8000, 4000), quiet(16000, seed=1)))
        sizes = [len(c.encode(x[i : i + 160])) for i in range(0, len(x), 160)]
        speech, after = sizes[:25], sizes[25:]
        self.assertEqual(set(speech), {20})
        self.assertIn(2, after[:20])  # a SID frame (alone) when the talker stops
        silence = after[20:]
        self.assertLessEqual(set(silence), {0, 2})
        self.assertGreater(silence.count(0), len(silence) * 3 // 4)  # then mostly nothing sent
