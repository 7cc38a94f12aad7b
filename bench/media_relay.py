"""Per-packet cost of the media bridge: relay header rewrite and Opus <-> G.711 transcoding.

Run: ``.venv/bin/python bench/media_relay.py [--quick]``. Prints p50/p99 (µs) of

* the bare RTP header rewrite (``rewrite_header``),
* ``MediaBridge.from_webrtc`` / ``from_sip`` in relay mode (PCMU both legs): parse, stats,
  sequence/timestamp mapping, rewrite, hand-off to a no-op send,
* the same in transcode mode, per 20 ms frame, with the codec steps measured on their own,
* for context, the I/O around it on this machine: SRTP protect/unprotect (pylibsrtp), a
  loopback ``sendto``, and the media socket layer, Twisted's ``udp.Port`` against
  ``wcsgw.media.fastudp`` (write per datagram; read per datagram in 64-datagram wake-ups,
  and in one-datagram wake-ups drained until EAGAIN or read once),

then calls-per-core estimates. Not a test: numbers depend on the machine and its load; compare
runs on one machine. Every call is timed on its own with ``perf_counter_ns`` (timer overhead,
measured, is subtracted), so p99 includes GC pauses and scheduler noise, as production would.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from typing import Callable

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402

from wcsgw.media import g711  # noqa: E402
from wcsgw.media.bridge import LegMedia, MediaBridge  # noqa: E402
from wcsgw.media.opus import OpusDecoder, OpusEncoder  # noqa: E402
from wcsgw.media.resample import Resampler  # noqa: E402
from wcsgw.media.rtp import build_rtp, rewrite_header  # noqa: E402

PACKETS_PER_SECOND = 50  # 20 ms ptime, per direction


def _timer_overhead() -> float:
    samples = []
    for _ in range(20000):
        t0 = time.perf_counter_ns()
        t1 = time.perf_counter_ns()
        samples.append(t1 - t0)
    return float(np.median(samples))


OVERHEAD_NS = 0.0


def warmup_count(n: int) -> int:
    return min(n // 10, 1000)


def measure(fn: Callable[[int], object], n: int) -> tuple[float, float]:
    """Time fn(i) one call at a time, after a warm-up; indices run on without repeating
    (0 .. warm-up + n - 1), so streams stay continuous and SRTP sees no replays.
    Returns (p50, p99) in µs."""
    w = warmup_count(n)
    for i in range(w):
        fn(i)
    samples = np.empty(n, dtype=np.float64)
    clock = time.perf_counter_ns
    for i in range(n):
        t0 = clock()
        fn(w + i)
        samples[i] = clock() - t0
    samples = np.maximum(samples - OVERHEAD_NS, 0.0) / 1000.0
    return float(np.percentile(samples, 50)), float(np.percentile(samples, 99))


def best_of(runs: int, fn: Callable[[int], object], n: int) -> tuple[float, float]:
    """The run with the lowest p50 of ``runs`` (the first run on a VM often pays for CPU
    frequency ramp-up and cache warm-up); each run continues the stream where the last ended."""
    offset = 0
    best: tuple[float, float] | None = None
    for _ in range(runs):
        base = offset
        result = measure(lambda i, base=base: fn(base + i), n)
        offset += n + warmup_count(n)
        if best is None or result[0] < best[0]:
            best = result
    assert best is not None
    return best


def row(name: str, p50: float, p99: float) -> None:
    print(f"| {name:<58} | {p50:7.2f} | {p99:7.2f} |")


def sockets_layer(packets: list[bytes], target: tuple[str, int], sink: socket.socket) -> None:
    """The media socket layer on its own: Twisted's ``udp.Port`` (what carried media before
    ``wcsgw.media.fastudp``) against ``FastUdpPort``, per datagram.  Writes: one call each,
    the sink drained every 64.  Reads: 64 datagrams queued, then one wake-up (``doRead`` /
    ``_drain``) timed and divided by 64; the reactor's own per-wake-up wrappers
    (``callWithLogger``/``callWithContext``), which only the Twisted port went through, are not
    in these figures (py-spy sees them, docs/performance.md)."""
    import asyncio

    from twisted.internet import udp
    from twisted.internet.protocol import DatagramProtocol

    from wcsgw.media.fastudp import FastUdpPort

    class Null(DatagramProtocol):
        def datagramReceived(self, data: bytes, addr: object) -> None:  # noqa: N802
            pass

    twisted_port = udp.Port(0, Null(), "127.0.0.1")
    twisted_port._bindSocket()
    loop = asyncio.SelectorEventLoop()
    fast_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    fast_sock.bind(("127.0.0.1", 0))
    fast_sock.setblocking(False)
    fast = FastUdpPort(loop, fast_sock, lambda data, addr: None)

    def drain_sink() -> None:
        try:
            while True:
                sink.recv(2048)
        except BlockingIOError:
            pass

    for name, write in (("Twisted udp.Port.write", twisted_port.write), ("FastUdpPort.write", fast.write)):
        def send(i: int, write=write) -> None:  # type: ignore[no-untyped-def]
            write(packets[i & 0xFFFF], target)
            if i & 63 == 63:
                drain_sink()

        row(f"media socket write: {name}", *best_of(3, send, 20000))
    feeder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for name, sock, wake in (("Twisted udp.Port.doRead", twisted_port.socket, twisted_port.doRead),
                             ("FastUdpPort._drain", fast_sock, fast._drain)):
        where = sock.getsockname()
        samples = []
        for _ in range(400):
            for j in range(64):
                feeder.sendto(packets[j], where)
            t0 = time.perf_counter_ns()
            wake()
            samples.append((time.perf_counter_ns() - t0 - OVERHEAD_NS) / 64 / 1000.0)
        samples = samples[40:]
        row(f"media socket read, 64 per wake-up: {name}",
            float(np.percentile(samples, 50)), float(np.percentile(samples, 99)))
    # The usual media socket: one datagram per wake-up (50/s per call).  Draining until
    # EAGAIN (what _drain did before the PROBE rule, forced here with _single = 0) against one
    # read per wake-up (what it does after a drain found one).
    import select

    where = fast_sock.getsockname()
    for name, single in (("FastUdpPort._drain until EAGAIN", 0), ("FastUdpPort._drain, one read", 1 << 30)):
        samples = []
        for j in range(4000):
            feeder.sendto(packets[j], where)
            select.select([fast_sock], [], [], 5.0)
            fast._single = single
            t0 = time.perf_counter_ns()
            fast._drain()
            samples.append((time.perf_counter_ns() - t0 - OVERHEAD_NS) / 1000.0)
        samples = samples[400:]
        row(f"media socket read, 1 per wake-up: {name}",
            float(np.percentile(samples, 50)), float(np.percentile(samples, 99)))
    feeder.close()
    fast.stopListening()
    twisted_port.socket.close()
    loop.close()


def main() -> None:
    global OVERHEAD_NS
    quick = "--quick" in sys.argv
    n_relay = 20000 if quick else 200000
    n_codec = 1000 if quick else 10000
    OVERHEAD_NS = _timer_overhead()
    print(f"timer overhead subtracted: {OVERHEAD_NS:.0f} ns; relay n={n_relay}, codec n={n_codec}\n")
    print(f"| {'step':<58} | p50 µs  | p99 µs  |")
    print(f"|{'-' * 60}|---------|---------|")
    results: dict[str, tuple[float, float]] = {}

    pcmu = bytes(range(256))[:160]
    # one full sequence cycle, so a stream indexed i & 0xFFFF wraps like a real one
    packets = [
        build_rtp(payload_type=0, sequence=i, timestamp=160 * i, ssrc=0x1234, payload=pcmu) for i in range(65536)
    ]

    def rewrite(i: int) -> object:
        return rewrite_header(packets[i & 0xFFFF], 0, i, 160 * i, 0xBBBB, False)

    results["rewrite"] = best_of(3, rewrite, n_relay)
    row("RTP header rewrite alone (172-byte PCMU packet)", *results["rewrite"])

    def discard(data: bytes) -> None:
        pass

    relay = MediaBridge(
        LegMedia("PCMU", 0, telephone_event=126),
        LegMedia("PCMU", 0, telephone_event=101),
        discard,
        discard,
        now=0.0,
    )
    w2s, s2w = relay.from_webrtc, relay.from_sip

    def relay_w2s(i: int) -> None:
        w2s(packets[i & 0xFFFF], 0.02 * i)

    def relay_s2w(i: int) -> None:
        s2w(packets[i & 0xFFFF], 0.02 * i)

    results["relay_w2s"] = best_of(3, relay_w2s, n_relay)
    row("relay WebRTC->SIP: MediaBridge.from_webrtc", *results["relay_w2s"])
    results["relay_s2w"] = best_of(3, relay_s2w, n_relay)
    row("relay SIP->WebRTC: MediaBridge.from_sip", *results["relay_s2w"])

    # -- transcode -----------------------------------------------------------------------
    rng = np.random.default_rng(0)
    t48 = np.arange(48000 * 2) / 48000
    speechlike = (
        6000 * np.sin(2 * np.pi * 220 * t48) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t48))
        + 2000 * np.sin(2 * np.pi * 1800 * t48)
        + rng.normal(0, 500, t48.size)
    ).astype(np.int16)
    browser_encoder = OpusEncoder(complexity=9, bitrate=32000)  # as a browser would send
    opus_frames = [browser_encoder.encode(speechlike[960 * k : 960 * (k + 1)]) for k in range(100)]
    speech8 = g711.ulaw_encode(Resampler(48000, 8000).process(speechlike))
    print(f"|{' ' * 60}|         |         |")
    bridge = MediaBridge(LegMedia("opus", 111, telephone_event=110),
                         LegMedia("PCMU", 0, telephone_event=101), discard, discard, now=0.0)
    tw2s, ts2w = bridge.from_webrtc, bridge.from_sip

    def build_opus(frame: bytes, i: int) -> bytes:
        return build_rtp(payload_type=111, sequence=i & 0xFFFF, timestamp=960 * i, ssrc=0x77, payload=frame)

    # pre-build packets with continuous numbering so the bridge sees a clean stream
    total = n_codec + warmup_count(n_codec)
    w_stream = [build_opus(opus_frames[i % 100], i) for i in range(total)]
    s_stream = [
        build_rtp(payload_type=0, sequence=i & 0xFFFF, timestamp=160 * i, ssrc=0x88,
                  payload=speech8[160 * (i % 100) : 160 * (i % 100 + 1)])
        for i in range(total)
    ]

    def transcode_w2s(i: int) -> None:
        tw2s(w_stream[i], 0.02 * i)

    def transcode_s2w(i: int) -> None:
        ts2w(s_stream[i], 0.02 * i)

    results["tc_w2s"] = measure(transcode_w2s, n_codec)
    row("transcode WebRTC->SIP per 20 ms (Opus dec to 8k, PCMU)", *results["tc_w2s"])
    bridge2 = MediaBridge(LegMedia("opus", 111), LegMedia("PCMU", 0), discard, discard, now=0.0)
    ts2w = bridge2.from_sip
    results["tc_s2w"] = measure(transcode_s2w, n_codec)
    row("transcode SIP->WebRTC per 20 ms (PCMU, Opus enc at 8k c3)", *results["tc_s2w"])

    # The transcoder runs Opus at the G.711 leg's 8 kHz (issue 19): no resampler in the path.
    dec = OpusDecoder(8000)
    results["opus_dec"] = measure(lambda i: dec.decode(opus_frames[i % 100]), n_codec)
    row("  of which: Opus decode 20 ms to 8 kHz (browser-like 32 kbit/s)", *results["opus_dec"])
    pcm8 = [g711.ulaw_decode(speech8[160 * k : 160 * (k + 1)]) for k in range(100)]
    results["g711"] = measure(lambda i: g711.ulaw_decode(g711.ulaw_encode(pcm8[i % 100])), n_codec)
    row("  of which: G.711 encode + decode 160 samples", *results["g711"])
    enc = OpusEncoder(8000, complexity=3, bitrate=24000, max_bandwidth="narrowband")
    pcm8_16 = [g711.to_int16(p) for p in pcm8]
    results["opus_enc"] = measure(lambda i: enc.encode(pcm8_16[i % 100]), n_codec)
    row("  of which: Opus encode 20 ms mono at 8 kHz, complexity 3, narrowband", *results["opus_enc"])

    # -- the I/O around the bridge, for context --------------------------------------------
    print(f"|{' ' * 60}|         |         |")
    try:
        import pylibsrtp

        key = os.urandom(30)
        tx = pylibsrtp.Session(pylibsrtp.Policy(key=key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND))
        rx = pylibsrtp.Session(pylibsrtp.Policy(key=key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND))
        n_srtp = 20000
        protected = [tx.protect(packets[i]) for i in range(n_srtp + warmup_count(n_srtp))]
        tx2 = pylibsrtp.Session(pylibsrtp.Policy(key=key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND))
        srtp_in = measure(lambda i: rx.unprotect(protected[i]), n_srtp)
        srtp_out = measure(lambda i: tx2.protect(packets[i]), n_srtp)
        row("SRTP unprotect (AES128-CM-SHA1-80, pylibsrtp)", *srtp_in)
        row("SRTP protect", *srtp_out)
        results["srtp"] = (srtp_in[0] + srtp_out[0], 0.0)
    except Exception as exc:  # pragma: no cover - context only
        print(f"(SRTP not measured: {exc})")
        results["srtp"] = (3.2, 0.0)
    sink_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink_sock.bind(("127.0.0.1", 0))
    sink_sock.setblocking(False)
    out_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    target = sink_sock.getsockname()

    def send(i: int) -> None:
        out_sock.sendto(packets[i & 0xFFFF], target)
        if i & 63 == 63:
            try:
                while True:
                    sink_sock.recv(2048)
            except BlockingIOError:
                pass

    results["sendto"] = measure(send, 20000)
    row("UDP sendto on loopback (plus draining the sink)", *results["sendto"])
    sockets_layer(packets, target, sink_sock)
    io_cost = results["srtp"][0] + 2 * results["sendto"][0]
    sink_sock.close()
    out_sock.close()

    # -- estimates -------------------------------------------------------------------------
    relay_bridge = results["relay_w2s"][0] + results["relay_s2w"][0]
    transcode_bridge = results["tc_w2s"][0] + results["tc_s2w"][0]
    receive_us = 13.5  # field notes: Twisted receive on the asyncio reactor, 200 sockets, 12-15 µs
    per_call_io = PACKETS_PER_SECOND * (io_cost + 2 * receive_us)  # µs of CPU per second per call
    print()
    print("Calls per core (one CPU second per second; 50 packets/s each way; 20 ms ptime):")
    print(f"  relay, bridge work only      : {1e6 / (PACKETS_PER_SECOND * relay_bridge):8.0f} calls "
          f"({PACKETS_PER_SECOND * relay_bridge / 1000:.3f} ms CPU per call-second)")
    print(f"  transcode, bridge work only  : {1e6 / (PACKETS_PER_SECOND * transcode_bridge):8.0f} calls "
          f"({PACKETS_PER_SECOND * transcode_bridge / 1000:.2f} ms CPU per call-second)")
    print(f"  with I/O (SRTP one leg, 2 sendto, 2 receives at {receive_us} µs from the field notes):")
    print(f"    relay                      : {1e6 / (PACKETS_PER_SECOND * relay_bridge + per_call_io):8.0f} calls "
          f"(at 70 % load: {0.7e6 / (PACKETS_PER_SECOND * relay_bridge + per_call_io):.0f})")
    print(f"    transcode                  : {1e6 / (PACKETS_PER_SECOND * transcode_bridge + per_call_io):8.0f} calls "
          f"(at 70 % load: {0.7e6 / (PACKETS_PER_SECOND * transcode_bridge + per_call_io):.0f})")


if __name__ == "__main__":
    main()
