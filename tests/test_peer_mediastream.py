"""The mediastream peer on its own (no gateway, no browser): two mediastream processes talk
a codec to each other and each recording must hold the other's tone.

This is what the codec e2e tests (tests/test_e2e_codecs.py) take for granted: the payload
numbers in tests.peers.mediastream.CODECS, ``--bitrate``, the WAV finalised on stop, and the
payload-type relay rewriting both ways.  When an e2e test fails, this one tells whether the
peer or the gateway is to blame.
"""

from __future__ import annotations

import math
import os
import wave
from pathlib import Path

import numpy as np
from twisted.internet import reactor, task
from twisted.python import log
from twisted.trial import unittest

from tests.peers.chromium import write_tone_wav
from tests.peers.mediastream import CODECS, Mediastream, udp_port_bound
from tests.peers.ports import free_port
from tests.support import assert_near, inline

SECONDS = 3.0
AMPLITUDE = 0.25
#: Not near 1 kHz: mediastream's Speex encoder now and then turns a 1000 or 1004 Hz tone into
#: a stream that decodes to DC and noise (+4..+10 dB) — see tests/test_e2e_codecs.py
#: MEDIASTREAM_HZ; 440, 660 and 880 Hz come through clean.
A_HZ = 660.0


def heard(path: Path) -> tuple[float, float]:
    """(dominant frequency, level in dB against the sent tone) past the first half second."""
    with wave.open(str(path)) as w:
        rate = w.getframerate()
        x = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(float)[rate // 2:]
    x -= x.mean()  # mediastream's Speex WB decoder adds a DC offset
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    frequency = float(np.argmax(spectrum)) * rate / len(x)
    rms = float(np.sqrt(np.mean(x ** 2)))
    return frequency, 20 * math.log10(max(rms, 1e-9) / (AMPLITUDE * 32767 / math.sqrt(2)))


class MediastreamPeerTests(unittest.TestCase):
    timeout = 30

    async def talk(self, codec: str, relay_pt: int | None = None) -> tuple[Mediastream, ...]:
        """A plays 660 Hz, B 440 Hz, for SECONDS; with ``relay_pt`` both sit behind a relay
        and the wire between the relays carries ``relay_pt`` instead of mediastream's own
        number."""
        rate = CODECS[codec].sample_rate
        base = os.path.abspath(self.mktemp())
        tone_a = write_tone_wav(base + "-a.wav", A_HZ, seconds=10, rate=rate, amplitude=AMPLITUDE)
        tone_b = write_tone_wav(base + "-b.wav", 440.0, seconds=10, rate=rate, amplitude=AMPLITUDE)
        port_a, port_b = free_port("udp", span=2), free_port("udp", span=2)
        a = Mediastream(codec, ("127.0.0.1", port_b), tone_a, base + "-a-heard.wav",
                        payload_type=relay_pt, port=port_a)
        b = Mediastream(codec, ("127.0.0.1", port_a), tone_b, base + "-b-heard.wav",
                        payload_type=relay_pt, port=port_b)
        for ms in (a, b):
            self.addCleanup(ms.stop)
        self.assertEqual((a.port, b.port), (port_a, port_b))
        await a.start()
        await b.start()
        await task.deferLater(reactor, SECONDS, lambda: None)
        await a.stop()
        await b.stop()
        self.assertEqual((a.returncode, b.returncode), (0, 0), a.log_tail() + b.log_tail())
        for ms in (a, b):
            self.assertFalse(udp_port_bound(ms.local_port), "mediastream left its port bound")
        return a, b

    def assert_heard(self, ms: Mediastream, frequency: float) -> None:
        """The other's tone within 1 %, its level within 3 dB."""
        got, level = heard(ms.outfile)
        log.msg(f"mediastream {ms.codec.rtpmap} heard {got:.2f} Hz at {level:+.1f} dB")
        assert_near(self, got, frequency, frequency / 100)
        assert_near(self, level, 0.0, 3.0)

    @inline
    async def test_g729_direct(self) -> None:
        a, b = await self.talk("G729/8000")
        self.assertIsNone(a.relay)
        self.assert_heard(a, 440.0)
        self.assert_heard(b, A_HZ)

    @inline
    async def test_speex_narrowband_through_relays(self) -> None:
        a, b = await self.talk("speex/8000", relay_pt=97)
        assert a.relay is not None and b.relay is not None
        self.assertGreater(min(a.relay.forwarded + b.relay.forwarded), 100)
        self.assert_heard(a, 440.0)
        self.assert_heard(b, A_HZ)

    @inline
    async def test_speex_wideband_through_relays(self) -> None:
        a, b = await self.talk("speex/16000", relay_pt=96)
        self.assert_heard(a, 440.0)
        self.assert_heard(b, A_HZ)
