"""Audio measured by content, for the transcoding tests and bench/codec_quality.py.

A tone is encoded the way the sending peer would (a fresh codec instance, real RTP packets),
pushed through a :class:`~wcsgw.media.bridge.MediaBridge` in transcode mode with arrival times,
and what comes out is decoded by a fresh instance of the receiving peer's codec, each packet
placed at its RTP timestamp (so a gap in time shows as silence, an overlap as a clash). The
result is measured: dominant frequency, RMS level, and SNR — the tone fitted at its measured
frequency against everything else (noise, distortion, clicks: strictly SINAD).

No TestCase lives here (trial would run it twice); tests import the functions.
"""

from __future__ import annotations

import random
import time
from typing import Callable, Iterable

import attrs
import numpy as np

from wcsgw.media.audiocodec import AudioCodec, make_codec
from wcsgw.media.bridge import BridgeSettings, LegMedia, MediaBridge
from wcsgw.media.rtp import build_rtp, parse_rtp

#: (name, clock rate) of each codec a leg can have
BROWSER_CODECS = [("opus", 48000), ("PCMU", 8000), ("PCMA", 8000)]
SIP_CODECS = [("PCMU", 8000), ("PCMA", 8000), ("G729", 8000), ("speex", 8000), ("speex", 16000),
              ("opus", 48000), ("G722", 8000)]
#: -12 dBFS (peak)
LEVEL = 32768 * 10 ** (-12 / 20)
T0 = 1_700_000_000.0
PAYLOAD_TYPES = {"pcmu": 0, "pcma": 8, "g722": 9, "g729": 18, "opus": 111, "speex": 97}


def label(name: str, rate: int) -> str:
    key = name.lower()
    if key == "speex":
        return "speex-wb" if rate == 16000 else "speex-nb"
    return key


def chains() -> list[tuple[tuple[str, int], tuple[str, int]]]:
    """Every (browser, sip) pair that is transcoded (identical codecs are relayed)."""
    return [(w, s) for w in BROWSER_CODECS for s in SIP_CODECS if w[0].lower() != s[0].lower()]


def leg(name: str, rate: int, ssrc: int, ptime: int = 20) -> LegMedia:
    return LegMedia(name, PAYLOAD_TYPES[name.lower()], rate, telephone_event=None, ssrc=ssrc, ptime=ptime)


def peer_codec(name: str, rate: int) -> AudioCodec:
    """What the far peer runs (full band Opus, like a browser)."""
    return make_codec(name, rate)


def tone(freq: float, rate: int, seconds: float, level: float = LEVEL) -> np.ndarray:
    return (level * np.sin(2 * np.pi * freq * np.arange(int(rate * seconds)) / rate)).astype(np.int16)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.asarray(x, dtype=float) ** 2))) if len(x) else 0.0


def db(ratio: float) -> float:
    return 20.0 * float(np.log10(max(ratio, 1e-12)))


def dominant(x: np.ndarray, rate: int) -> float:
    """Dominant frequency, FFT peak refined by parabolic interpolation of the log spectrum."""
    x = np.asarray(x, dtype=float)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x)))) + 1e-9
    k = int(spectrum[1:].argmax()) + 1
    if 1 <= k < len(spectrum) - 1:
        a, b, c = np.log(spectrum[k - 1 : k + 2])
        k = k + 0.5 * (a - c) / (a - 2 * b + c)
    return float(k * rate / len(x))


def snr(x: np.ndarray, rate: int, freq: float) -> float:
    """dB of the best-fitting sinusoid at ``freq`` against the residual (noise + distortion)."""
    x = np.asarray(x, dtype=float)
    t = np.arange(len(x)) / rate
    basis = np.stack([np.sin(2 * np.pi * freq * t), np.cos(2 * np.pi * freq * t), np.ones_like(t)], axis=1)
    coef, *_ = np.linalg.lstsq(basis, x, rcond=None)
    fit = basis @ coef
    return 10.0 * float(np.log10(np.sum(fit**2) / max(np.sum((x - fit) ** 2), 1e-9)))


@attrs.define
class Run:
    """What came out of the bridge for one direction."""

    rate: int  # of ``audio``
    audio: np.ndarray  # decoded by the receiving peer, each packet at its timestamp
    timestamps: list[int]  # RTP timestamps as sent, in order
    steps: list[int]  # timestamp step between consecutive packets
    packet_ticks: list[int]  # RTP ticks each packet's audio covers
    sizes: list[int]
    bridge: MediaBridge
    encode_us: list[float] = attrs.field(factory=list)  # bridge time per input packet

    def measure(self, freq: float, skip: float = 0.2, end: float = 0.1) -> tuple[float, float, float]:
        """(frequency Hz, level dB against -12 dBFS, SNR dB) after ``skip`` seconds of start-up.
        The SNR fits the tone at the frequency that was *sent*: a transcoder that shifted it
        (a clock or resampling error) loses SNR for it too. The last ``end`` seconds are left
        out: the tone stops there, and the last packet is completed with silence."""
        y = self.audio[int(skip * self.rate) : len(self.audio) - int(end * self.rate)]
        return dominant(y, self.rate), db(rms(y) / (LEVEL / np.sqrt(2))), snr(y, self.rate, freq)


def run_direction(
    browser: tuple[str, int],
    sip: tuple[str, int],
    *,
    to_sip: bool,
    freq: float = 1000.0,
    seconds: float = 1.0,
    sip_ptime: int = 20,
    source_ptime: int | None = None,
    lose: Callable[[int], bool] = lambda i: False,
    order: Callable[[list[int]], Iterable[int]] = lambda idx: idx,
    jitter: float = 0.0,
    timed: bool = False,
    seed: int = 1,
) -> Run:
    """One direction through a transcoding bridge: the source peer encodes a tone in packets of
    ``source_ptime`` (the source leg's ptime), packet ``i`` is dropped when ``lose(i)``, sent in
    the order ``order`` gives, arriving at its nominal time plus up to ``jitter`` seconds; the
    bridge is polled at its deadlines; the receiving peer decodes."""
    w_leg = leg(*browser, ssrc=0xAAAA)
    s_leg = leg(*sip, ssrc=0xBBBB, ptime=sip_ptime)
    sent: list[bytes] = []
    sink = sent.append
    bridge = MediaBridge(w_leg, s_leg, sink if not to_sip else (lambda p: None),
                         sink if to_sip else (lambda p: None), now=T0,
                         settings=BridgeSettings(rng=random.Random(seed)))
    src, dst = (browser, sip) if to_sip else (sip, browser)
    src_leg = w_leg if to_sip else s_leg
    enc = peer_codec(*src)
    ptime = source_ptime or (20 if to_sip else sip_ptime)
    # a whole number of the source codec's frames (speex 20 ms, opus one frame)
    n = enc.sample_rate * ptime // 1000
    if enc.name != "opus":
        n = max(enc.frame_samples, n // enc.frame_samples * enc.frame_samples)
    per_tick = enc.sample_rate // enc.rtp_clock
    pcm = tone(freq, enc.sample_rate, seconds)
    packets = []
    for i in range(len(pcm) // n):
        payload = enc.encode(pcm[i * n : (i + 1) * n])
        rtp = build_rtp(payload_type=src_leg.payload_type, sequence=(4000 + i) & 0xFFFF,
                        timestamp=(123456 + i * n // per_tick) & 0xFFFFFFFF, ssrc=0x5EED, payload=payload)
        packets.append((i, T0 + i * n / enc.sample_rate, rtp))
    rng = random.Random(seed)
    idx = [i for i in range(len(packets)) if not lose(i)]
    feed = bridge.from_sip if not to_sip else bridge.from_webrtc
    costs = []
    clock = T0
    for i in order(idx):
        _, nominal, rtp = packets[i]
        at = max(clock, nominal + rng.uniform(0, jitter))
        while (deadline := bridge.next_deadline()) is not None and deadline <= at:
            clock = max(clock, deadline)
            bridge.poll(clock)
        clock = at
        if timed:
            t = time.perf_counter_ns()
            feed(rtp, clock)
            costs.append((time.perf_counter_ns() - t) / 1000.0)
        else:
            feed(rtp, clock)
    while (deadline := bridge.next_deadline()) is not None:
        clock = max(clock, deadline)
        bridge.poll(clock)
    bridge.flush(clock + 0.02)
    dec = peer_codec(*dst)
    headers = [parse_rtp(p) for p in sent]
    per_tick_out = dec.sample_rate // dec.rtp_clock
    timestamps = [h.timestamp for h in headers]
    base = timestamps[0] if timestamps else 0
    chunks = []
    ticks = []
    for h, p in zip(headers, sent):
        pcm_out = dec.decode(h.payload(p))
        chunks.append(((h.timestamp - base) & 0xFFFFFFFF, pcm_out))
        ticks.append(len(pcm_out) // per_tick_out)
    end = max((t * per_tick_out + len(c) for t, c in chunks), default=0)
    audio = np.zeros(end, dtype=np.int16)
    for t, c in chunks:
        audio[t * per_tick_out : t * per_tick_out + len(c)] = c
    steps = [(b - a) & 0xFFFFFFFF for a, b in zip(timestamps, timestamps[1:])]
    return Run(dec.sample_rate, audio, timestamps, steps, ticks, [len(h.payload(p)) for h, p in zip(headers, sent)],
               bridge, costs)
