"""Audio quality by content through every transcoding chain (issue 7).

Every browser codec (Opus, PCMU, PCMA) against every SIP codec (PCMU, PCMA, G.729, Speex
nb/wb, Opus, G.722), except identical pairs (those are relayed, bit-exact), both directions:
a 1 kHz and a 440 Hz tone at -12 dBFS in 20 ms RTP packets from a real encoder, through the
bridge, decoded on the far side by a fresh codec instance. The dominant frequency must be
within 1 %, the level within 3 dB, and the SNR (tone against everything else) above the floor
of the weaker codec of the chain — floors measured (bench/codec_quality.py, table in
docs/performance.md) and set a few dB under the worst figure seen.

A codec whose library is missing fails here (make_codec raises): the Makefile installs them.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from tests.quality import chains, label, run_direction
from tests.support import assert_near

#: SNR floors in dB, per codec; a chain's floor is the lower of its two codecs'.
#: Opus: our encoder (narrowband, 24 kbit/s, at 8 kHz and complexity 3 since issue 19 - 0 and 2
#: fall under 20 dB here, docs/performance.md "Lever: transcoding"; audio from an 8 kHz leg) codes a
#: steady pure tone at 22-34 dB depending only on where the frames fall on the waveform (the
#: same tone shifted by 1447 or 1440 samples: 21.9 and 33.1 dB); wideband at 32 kbit/s would
#: hold 33 dB but costs ~50 µs more per frame. Speech does not lock onto it the same way.
SNR_FLOOR = {
    "pcmu": 30.0,
    "pcma": 30.0,
    "opus": 20.0,
    "g722": 30.0,
    # Speex: a steady 1 kHz tone loses ~14 dB to the encoder's refresh frame every 100 ms
    # (wcsgw.media.speex, "Refresh frames": what lets a decoder recover from a lost packet);
    # chains' worst 22.0 wb / 19.9 nb with it (27.0 / 25.0 without); speech loses 0.3 dB.
    "speex-wb": 20.0,
    "speex-nb": 18.0,
    "g729": 20.0,
}


class ChainQualityTests(SynchronousTestCase):
    def check_chain(self, browser: tuple[str, int], sip: tuple[str, int], to_sip: bool) -> None:
        floor = min(SNR_FLOOR[label(*browser)], SNR_FLOOR[label(*sip)])
        for freq in (1000.0, 440.0):
            run = run_direction(browser, sip, to_sip=to_sip, freq=freq)
            what = f"{label(*browser)} {'->' if to_sip else '<-'} {label(*sip)} {freq:.0f} Hz"
            self.assertEqual(len(run.timestamps), 50, what)
            self.assertEqual(len(set(run.steps)), 1, what)
            got, level, snr = run.measure(freq)
            assert_near(self, got, freq, 0.01 * freq)
            assert_near(self, level, 0.0, 3.0)
            self.assertGreater(snr, floor, what)
            side = "webrtc" if to_sip else "sip"
            self.assertEqual(run.bridge.stats()[side]["codec_errors"], 0, what)


def _add(browser: tuple[str, int], sip: tuple[str, int], to_sip: bool) -> None:
    name = f"test_{label(*browser)}_{'to' if to_sip else 'from'}_{label(*sip)}".replace("-", "_")
    setattr(ChainQualityTests, name, lambda self: self.check_chain(browser, sip, to_sip))


for _browser, _sip in chains():
    for _to_sip in (True, False):
        _add(_browser, _sip, _to_sip)
