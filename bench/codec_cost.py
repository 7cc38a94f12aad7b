"""CPU cost of each AudioCodec (wcsgw.media.audiocodec) and of the resampler, per 20 ms frame.

Run: ``.venv/bin/python bench/codec_cost.py [--quick] [--bridge]``. Prints a table: codec,
encode µs p50/p99, decode µs p50/p99, conceal µs p50 (one 20 ms stand-in), payload bytes; then
the resampler (wcsgw.media.resample) per 20 ms for the rate pairs the transcoder uses, and
Speex encode cost by complexity (why the default is 3).

``--bridge`` prints only the whole transcoded call instead: a ``MediaBridge`` in transcode
mode, Opus against PCMU and against G.722, both directions, as process CPU time
(utime+stime, what a busy machine cannot inflate the way it inflates wall time) per
call-second of audio, and the transcoder's Opus settings. Each pair is fed the browser's Opus
two ways: fullband at 32 kbit/s (a browser left to itself; what it sent before
the gateway asked for a band) and band-limited as Chromium encodes once our fmtp says
``maxplaybackrate`` (wcsgw.sdp.opusband): narrowband at 12 kbit/s against PCMU, wideband at
20 kbit/s against G.722 (WebRTC's default bitrates for those rates). To compare two trees,
run a copy of this file from outside the repository (it puts its own tree first on the path)
with ``PYTHONPATH`` set to each tree in turn (docs/performance.md, "Lever: transcoding").

The input is speech-like, not silence (codecs take shortcuts on zeros): a 150 Hz pulse train
through a vowel-like resonance plus a little noise, -18 dBFS. Every call is timed on its own
with ``perf_counter_ns`` so p99 includes GC pauses and scheduler noise. Not a test: numbers
depend on the machine and its load; compare runs on one machine.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Callable

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402

from wcsgw.media.audiocodec import AudioCodec, make_codec  # noqa: E402
from wcsgw.media.resample import Resampler  # noqa: E402

CODECS: list[tuple[str, str, int | None, dict]] = [
    # label, name, clock_rate, options
    ("PCMU", "PCMU", None, {}),
    ("PCMA", "PCMA", None, {}),
    ("G.729A", "G729", None, {}),
    ("G.729A+B (VAD)", "G729", None, {"vad": True}),
    ("G.722", "G722", None, {}),
    ("Speex NB q8 c3", "speex", 8000, {}),
    ("Speex WB q8 c3", "speex", 16000, {}),
    ("Opus 24k c5 NB", "opus", None, {"bitrate": 24000, "complexity": 5, "max_bandwidth": "narrowband"}),
    ("Opus 32k c5 WB", "opus", None, {"bitrate": 32000, "complexity": 5, "max_bandwidth": "wideband"}),
    # what the transcoder runs (issue 19): PCM at the other leg's rate, complexity 3
    ("Opus 24k c3 NB 8k", "opus", None,
     {"bitrate": 24000, "complexity": 3, "max_bandwidth": "narrowband", "sample_rate": 8000}),
    ("Opus 32k c3 WB 16k", "opus", None,
     {"bitrate": 32000, "complexity": 3, "max_bandwidth": "wideband", "sample_rate": 16000}),
]


def speechlike(rate: int, seconds: float, seed: int = 0) -> np.ndarray:
    """A voiced-speech stand-in: 150 Hz glottal pulses through two formant resonators."""
    n = int(rate * seconds)
    x = np.zeros(n)
    x[:: rate // 150] = 1.0
    for freq, bw in ((700.0, 130.0), (1220.0, 70.0)):
        r = np.exp(-np.pi * bw / rate)
        a1, a2 = -2 * r * np.cos(2 * np.pi * freq / rate), r * r
        y = np.zeros(n)
        for i in range(n):  # a plain IIR, once at start-up
            y[i] = x[i] - a1 * (y[i - 1] if i else 0) - a2 * (y[i - 2] if i > 1 else 0)
        x = y
    x += np.random.default_rng(seed).normal(0, 0.02 * np.std(x), n)
    x *= 4100 / np.sqrt(np.mean(x**2))  # -18 dBFS
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)


def measure(fn: Callable[[int], object], n: int) -> tuple[float, float]:
    """Time fn(i) one call at a time after a warm-up; (p50, p99) in µs."""
    for i in range(min(n // 10, 200)):
        fn(i)
    times = np.empty(n)
    for i in range(n):
        t0 = time.perf_counter_ns()
        fn(i)
        times[i] = time.perf_counter_ns() - t0
    return float(np.percentile(times, 50)) / 1000, float(np.percentile(times, 99)) / 1000


def codec_row(label: str, name: str, clock: int | None, options: dict, n: int) -> str:
    codec: AudioCodec = make_codec(name, clock, None, **options)
    frame = codec.sample_rate // 50
    pcm = speechlike(codec.sample_rate, 2.0)
    frames = [pcm[i : i + frame] for i in range(0, len(pcm) - frame + 1, frame)]
    payloads = [codec.encode(f) for f in frames]
    sizes = sorted({len(p) for p in payloads})
    enc = measure(lambda i: codec.encode(frames[i % len(frames)]), n)
    decoder = make_codec(name, clock, None, **options)
    voiced = [p for p in payloads if p]
    dec = measure(lambda i: decoder.decode(voiced[i % len(voiced)]), n)
    plc = measure(lambda i: decoder.conceal(frame), max(50, n // 10))
    codec.close()
    decoder.close()
    size = f"{sizes[0]}" if len(sizes) == 1 else f"{sizes[0]}-{sizes[-1]}"
    return f"{label:<18} {enc[0]:>8.1f} {enc[1]:>8.1f} {dec[0]:>8.1f} {dec[1]:>8.1f} {plc[0]:>8.1f}  {size}"


#: What Chromium's Opus encoder runs at (complexity 9 on desktop; WebRTC's default bitrate for
#: the receiver's maxplaybackrate), by the band our fmtp asks for: None = not asked.
BROWSER_OPUS: dict[str | None, dict] = {
    None: {"complexity": 9, "bitrate": 32000},
    "narrowband": {"complexity": 9, "bitrate": 12000, "max_bandwidth": "narrowband"},
    "wideband": {"complexity": 9, "bitrate": 20000, "max_bandwidth": "wideband"},
}


def bridge_cost(sip: str, seconds: float, band: str | None = None) -> tuple[float, str]:
    """CPU ms per call-second of a transcoded Opus <-> ``sip`` call through the bridge (both
    directions, 50 packets/s each), and the Opus settings the transcoder chose; ``band``: the
    browser's Opus limited to it (:data:`BROWSER_OPUS`), None for fullband."""
    from wcsgw.media.bridge import MediaBridge
    from wcsgw.media.legmedia import LegMedia
    from wcsgw.media.rtp import build_rtp

    frames = int(seconds * 50)
    browser = make_codec("opus", None, None, **BROWSER_OPUS[band])  # as a browser sends
    x48 = speechlike(48000, 2.0)
    opus = [browser.encode(x48[960 * k : 960 * (k + 1)]) for k in range(100)]
    far = make_codec(sip)
    x_far = speechlike(far.sample_rate, 2.0)
    n_far = far.sample_rate // 50
    ticks_far = n_far * far.rtp_clock // far.sample_rate
    pt = {"pcmu": 0, "g722": 9}[sip.lower()]
    sip_payloads = [far.encode(x_far[n_far * k : n_far * (k + 1)]) for k in range(100)]
    w = [build_rtp(payload_type=111, sequence=i & 0xFFFF, timestamp=960 * i, ssrc=0x77,
                   payload=opus[i % 100]) for i in range(frames)]
    s = [build_rtp(payload_type=pt, sequence=i & 0xFFFF, timestamp=ticks_far * i, ssrc=0x88,
                   payload=sip_payloads[i % 100]) for i in range(frames)]
    bridge = MediaBridge(LegMedia("opus", 111), LegMedia(sip, pt), lambda p: None, lambda p: None, now=0.0)
    enc = bridge.transcoder.webrtc_codec if bridge.transcoder is not None else None
    settings = f"opus pcm {getattr(enc, 'sample_rate', '?')} Hz"
    if enc is not None and getattr(enc, "_encoder", None) is not None:
        import opuslib.api.ctl
        import opuslib.api.encoder

        cx = opuslib.api.encoder.encoder_ctl(enc._encoder._state, opuslib.api.ctl.get_complexity)
        settings += f", complexity {cx}"
    for i in range(50):  # warm-up
        bridge.from_webrtc(w[i], 0.02 * i)
        bridge.from_sip(s[i], 0.02 * i)
    t0 = time.process_time()
    for i in range(50, frames):
        bridge.from_webrtc(w[i], 0.02 * i)
        bridge.from_sip(s[i], 0.02 * i)
    cpu = time.process_time() - t0
    browser.close()
    far.close()
    return 1000 * cpu / ((frames - 50) / 50), settings


def main() -> None:
    n = 300 if "--quick" in sys.argv else 3000
    if "--bridge" in sys.argv:
        seconds = 20.0 if "--quick" in sys.argv else 120.0
        print(f"transcoded call through MediaBridge, process CPU per call-second ({seconds:.0f} s of audio)")
        for sip, band in (("PCMU", "narrowband"), ("G722", "wideband")):
            for browser_band in (None, band):
                ms, settings = bridge_cost(sip, seconds, browser_band)
                fed = f"browser {browser_band or 'fullband'} {BROWSER_OPUS[browser_band]['bitrate'] // 1000}k"
                print(f"  opus <-> {sip:<5} {fed:<24} {ms:7.2f} ms/s  ({100 * ms / 1000:.2f} % of a core "
                      f"per call; {1000 / ms:.0f} calls per core, bridge work only)  [{settings}]")
        return
    print(f"per 20 ms frame, µs, {n} calls each ({os.cpu_count()} CPUs, pid {os.getpid()})")
    print(f"{'codec':<18} {'enc p50':>8} {'enc p99':>8} {'dec p50':>8} {'dec p99':>8} {'plc p50':>8}  bytes")
    for label, name, clock, options in CODECS:
        print(codec_row(label, name, clock, options, n))

    print()
    print(f"{'resampler (speex q5)':<22} {'p50':>8} {'p99':>8}  delay ms")
    for a, b in ((48000, 8000), (8000, 48000), (48000, 16000), (16000, 48000)):
        r = Resampler(a, b)
        chunk = speechlike(a, 0.2)[: a // 50]
        p50, p99 = measure(lambda i, r=r, chunk=chunk: r.process(chunk), n)
        print(f"{a // 1000:>2}k -> {b // 1000:>2}k{'':<13} {p50:>8.1f} {p99:>8.1f}  {r.delay * 1000:.2f}")

    print()
    print("Speex encode p50 µs by complexity (quality 8)")
    for rate in (8000, 16000):
        pcm = speechlike(rate, 2.0)
        frame = rate // 50
        frames = [pcm[i : i + frame] for i in range(0, len(pcm) - frame + 1, frame)]
        cells = []
        for complexity in (1, 2, 3, 4, 6, 8, 10):
            c = make_codec("speex", rate, None, complexity=complexity)
            p50, _ = measure(lambda i, c=c, frames=frames: c.encode(frames[i % len(frames)]),
                             max(100, n // 5))
            cells.append(f"c{complexity}={p50:.0f}")
            c.close()
        print(f"  {'NB' if rate == 8000 else 'WB'}: " + "  ".join(cells))


if __name__ == "__main__":
    main()
