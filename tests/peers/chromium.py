"""Headless Chromium with a fake microphone, driven by Playwright, for tests.

Usage inside a trial test (``trial --reactor=asyncio``; Playwright runs on the same loop)::

    wav = write_tone_wav(self.mktemp() + ".wav", 440.0)
    browser = Chromium(fake_audio=wav)
    await browser.start()                       # Deferred: awaitable from trial coroutines
    self.addCleanup(browser.stop)               # idempotent; kills leftovers by process group
    page = await browser.call_page()            # a page with the RTCPeerConnection helpers
    offer = await evaluate(page, "wcsgwTest.offer()")
    await evaluate(page, "sdp => wcsgwTest.answer(sdp)", answer)
    peak = await dominant_frequency(page)       # {"frequency": Hz, "level": dBFS}

Video: ``--use-fake-device-for-media-stream`` also gives a fake camera (a moving test pattern
with a frame counter), so ``getUserMedia({video: true})`` works headless.  A page opened after
:func:`record_peer_connections` keeps every RTCPeerConnection it creates in
``window.wcsgwPeers``; :func:`video_stats` reads their inbound/outbound video statistics
(``framesDecoded``, ``framesEncoded``, keyframes, PLI/FIR counts, codec) and
:func:`video_pixels` draws a <video> element on a canvas and returns pixel statistics (a
uniform picture — black, a frozen blank — has a standard deviation near 0).

Why every Playwright call goes through :func:`aio` (or :func:`evaluate`): a trial test
coroutine is driven by Twisted, which can await Deferreds but not asyncio futures, while
Playwright's coroutines must run as asyncio Tasks.  ``aio`` turns one into a Task wrapped in a
Deferred (``wcsgw.loop.as_deferred``).

Flags (see /work/shared/peers.md): fake UI and device, the WAV as the microphone (it loops),
``--allow-loopback-in-peer-connection`` (without it Chromium offers no 127.0.0.1 candidate and
never connects inside a loopback-only network namespace), no sandbox (tests run as root), no
background networking, a fresh user-data-dir per browser.  No browser download: Debian's
``/usr/bin/chromium`` (``make test`` installs it).

Cleanup: :meth:`Chromium.stop` closes the context and Playwright's driver, then kills — by
process group — any process still running with this browser's user-data-dir on its command
line (only ours: the directory is unique), and removes the directory.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import tempfile
import wave
from pathlib import Path
from typing import Any, Awaitable, Optional, Sequence

import numpy as np
import psutil
from twisted.internet import defer

from wcsgw.loop import as_deferred, as_future

__all__ = [
    "CHROMIUM",
    "CALL_PAGE_HTML",
    "Chromium",
    "ChromiumError",
    "aio",
    "open_call_page",
    "dominant_frequency",
    "evaluate",
    "processes_using",
    "record_peer_connections",
    "video_pixels",
    "video_stats",
    "write_tone_wav",
]

CHROMIUM = "/usr/bin/chromium"

BASE_ARGS = (
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--no-sandbox",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--autoplay-policy=no-user-gesture-required",
)

STOP_GRACE = 2.0


class ChromiumError(RuntimeError):
    """The browser could not be started (missing binary, Playwright not installed, ...)."""


def aio(awaitable: Awaitable[Any]) -> defer.Deferred:
    """Run a Playwright coroutine as an asyncio Task; await the returned Deferred."""
    return as_deferred(awaitable)


def evaluate(page: Any, expression: str, arg: Any = None) -> defer.Deferred:
    """``page.evaluate`` from a trial coroutine (see :func:`aio`)."""
    return aio(page.evaluate(expression, arg))


def write_tone_wav(
    path: str | os.PathLike[str],
    frequency: float,
    seconds: float = 2.0,
    rate: int = 48000,
    amplitude: float = 0.5,
) -> Path:
    """A mono 16-bit sine WAV (Chromium's fake microphone loops it; a whole number of periods
    is not needed at these lengths).  Returns the path."""
    t = np.arange(int(seconds * rate)) / rate
    samples = (amplitude * 32767 * np.sin(2 * np.pi * frequency * t)).astype("<i2")
    path = Path(path)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return path


#: A blank page with helpers for one RTCPeerConnection toward a gateway (served from
#: http://127.0.0.1, a secure context, by :meth:`Chromium.call_page`):
#: ``wcsgwTest.newPeer()`` (getUserMedia + an RTCPeerConnection with the recorders below, for a
#: page that answers an offer), ``wcsgwTest.offer()`` (newPeer + offer, no waiting for
#: candidates: the gateway is
#: ICE-lite and never checks toward the browser), ``wcsgwTest.answer(sdp)``,
#: ``waitConnection(state, ms)`` / ``waitDtls(state, ms)`` (promises; reject on timeout),
#: ``dtlsState()``, ``inboundAudio()`` (inbound-rtp stats), ``states`` / ``iceStates`` (every
#: state seen), ``remoteStream`` (also played by a muted <audio> element: Chromium has long fed
#: remote WebRTC audio to WebAudio only while a media element plays it), ``close()``.
CALL_PAGE_HTML = """<!doctype html>
<html><head><meta charset="utf-8"><title>wcsgw test call</title></head><body>
<script>
window.wcsgwTest = {
  pc: null, states: [], iceStates: [], remoteStream: null, localStream: null,
  async newPeer(constraints) {
    const t = window.wcsgwTest;
    t.localStream = await navigator.mediaDevices.getUserMedia(constraints || {audio: true});
    const pc = new RTCPeerConnection({bundlePolicy: "max-bundle", rtcpMuxPolicy: "require"});
    t.pc = pc;
    pc.onconnectionstatechange = () => t.states.push(pc.connectionState);
    pc.oniceconnectionstatechange = () => t.iceStates.push(pc.iceConnectionState);
    pc.ontrack = (ev) => {
      const stream = ev.streams[0] || new MediaStream([ev.track]);
      t.remoteStream = stream;
      const audio = document.createElement("audio");
      audio.muted = true;
      audio.autoplay = true;
      audio.srcObject = stream;
      document.body.appendChild(audio);
      audio.play().catch(() => {});
    };
    return pc;
  },
  async offer(constraints) {
    const t = window.wcsgwTest;
    const pc = await t.newPeer(constraints);
    for (const track of t.localStream.getTracks()) pc.addTrack(track, t.localStream);
    await pc.setLocalDescription(await pc.createOffer());
    return pc.localDescription.sdp;
  },
  async answer(sdp) {
    await window.wcsgwTest.pc.setRemoteDescription({type: "answer", sdp: sdp});
  },
  waitConnection(state, timeoutMs) {
    const pc = window.wcsgwTest.pc;
    return new Promise((resolve, reject) => {
      if (pc.connectionState === state) return resolve(state);
      const timer = setTimeout(
        () => reject(new Error("connectionState " + pc.connectionState + ", wanted " + state)),
        timeoutMs || 10000);
      pc.addEventListener("connectionstatechange", () => {
        if (pc.connectionState === state) { clearTimeout(timer); resolve(state); }
      });
    });
  },
  dtlsState() {
    const sender = window.wcsgwTest.pc.getSenders()[0];
    return sender && sender.transport ? sender.transport.state : null;
  },
  waitDtls(state, timeoutMs) {
    const transport = window.wcsgwTest.pc.getSenders()[0].transport;
    return new Promise((resolve, reject) => {
      if (transport.state === state) return resolve(state);
      const timer = setTimeout(
        () => reject(new Error("DTLS transport " + transport.state + ", wanted " + state)),
        timeoutMs || 10000);
      transport.addEventListener("statechange", () => {
        if (transport.state === state) { clearTimeout(timer); resolve(state); }
      });
    });
  },
  async inboundAudio() {
    const stats = await window.wcsgwTest.pc.getStats();
    let found = null;
    stats.forEach((s) => { if (s.type === "inbound-rtp" && s.kind === "audio") found = s; });
    return found && {packetsReceived: found.packetsReceived, bytesReceived: found.bytesReceived,
                     packetsLost: found.packetsLost};
  },
  close() { if (window.wcsgwTest.pc) window.wcsgwTest.pc.close(); },
};
</script>
</body></html>
"""

#: Page-side FFT: average the AnalyserNode spectrum over ``ms`` milliseconds and return the
#: strongest bin above 50 Hz, refined by parabolic interpolation, with its level in dBFS.
_DOMINANT_JS = """
async ([expr, ms, fftSize]) => {
  const stream = eval(expr);
  if (!stream) throw new Error("no stream at " + expr);
  const ctx = new AudioContext();
  await ctx.resume();
  const source = ctx.createMediaStreamSource(stream);
  const analyser = ctx.createAnalyser();
  analyser.fftSize = fftSize;
  analyser.smoothingTimeConstant = 0;
  source.connect(analyser);
  const bins = analyser.frequencyBinCount;
  const sum = new Float64Array(bins);
  const frame = new Float32Array(bins);
  let frames = 0;
  const end = performance.now() + ms;
  while (performance.now() < end) {
    await new Promise((r) => setTimeout(r, 50));
    analyser.getFloatFrequencyData(frame);
    for (let i = 0; i < bins; i++) sum[i] += Math.pow(10, frame[i] / 10);
    frames++;
  }
  source.disconnect();
  await ctx.close();
  const hz = ctx.sampleRate / fftSize;
  let best = Math.ceil(50 / hz);
  for (let i = best; i < bins - 1; i++) if (sum[i] > sum[best]) best = i;
  const db = (i) => 10 * Math.log10(sum[i] / frames + 1e-30);
  let shift = 0;
  if (best > 0 && best < bins - 1) {
    const a = db(best - 1), b = db(best), c = db(best + 1);
    const den = a - 2 * b + c;
    if (den !== 0) shift = 0.5 * (a - c) / den;
  }
  return {frequency: (best + shift) * hz, level: db(best), sampleRate: ctx.sampleRate, frames};
}
"""


#: Wraps RTCPeerConnection so every instance the page makes lands in ``window.wcsgwPeers``
#: (an init script: it must run before the page's own scripts).
PEER_RECORDER_JS = """
(() => {
  const Native = window.RTCPeerConnection;
  if (!Native || Native.wcsgwRecorded) return;
  window.wcsgwPeers = [];
  class Recorded extends Native {
    constructor(...args) { super(...args); window.wcsgwPeers.push(this); }
  }
  Recorded.wcsgwRecorded = true;
  window.RTCPeerConnection = Recorded;
})();
"""

#: The last recorded PeerConnection (the page's current call).
LAST_PEER = "window.wcsgwPeers && window.wcsgwPeers[window.wcsgwPeers.length - 1]"

_VIDEO_STATS_JS = """
async (expr) => {
  const pc = eval(expr);
  if (!pc) return null;
  const report = await pc.getStats();
  const codecs = {};
  report.forEach((s) => { if (s.type === "codec") codecs[s.id] = s; });
  const pick = (s, names) => {
    const out = {};
    for (const n of names) out[n] = s[n] ?? null;
    const codec = codecs[s.codecId];
    out.codec = codec ? codec.mimeType : null;
    out.fmtp = codec ? (codec.sdpFmtpLine ?? null) : null;
    out.payloadType = codec ? codec.payloadType : null;
    return out;
  };
  let inbound = null, outbound = null;
  report.forEach((s) => {
    if (s.kind !== "video") return;
    if (s.type === "inbound-rtp") inbound = pick(s, ["framesDecoded", "framesReceived",
      "keyFramesDecoded", "framesDropped", "frameWidth", "frameHeight", "packetsReceived",
      "packetsLost", "bytesReceived", "pliCount", "firCount", "nackCount", "decoderImplementation"]);
    if (s.type === "outbound-rtp") outbound = pick(s, ["framesEncoded", "framesSent",
      "keyFramesEncoded", "frameWidth", "frameHeight", "packetsSent", "bytesSent", "pliCount",
      "firCount", "nackCount", "targetBitrate", "encoderImplementation",
      "qualityLimitationReason"]);
  });
  return {inbound, outbound};
}
"""

_VIDEO_PIXELS_JS = """
(expr) => {
  const video = eval(expr);
  if (!video) throw new Error("no video element at " + expr);
  const w = video.videoWidth, h = video.videoHeight;
  if (!w || !h) return {width: w || 0, height: h || 0, mean: 0, std: 0, grid: []};
  const canvas = document.createElement("canvas");
  canvas.width = w; canvas.height = h;
  const ctx = canvas.getContext("2d", {willReadFrequently: true});
  ctx.drawImage(video, 0, 0, w, h);
  const data = ctx.getImageData(0, 0, w, h).data;
  const cols = 16, rows = 12;
  const sums = new Float64Array(cols * rows), counts = new Float64Array(cols * rows);
  let sum = 0, sq = 0, n = 0;
  for (let y = 0; y < h; y += 2) {
    for (let x = 0; x < w; x += 2) {
      const i = (y * w + x) * 4;
      const luma = 0.299 * data[i] + 0.587 * data[i + 1] + 0.114 * data[i + 2];
      sum += luma; sq += luma * luma; n++;
      const cell = Math.floor(y * rows / h) * cols + Math.floor(x * cols / w);
      sums[cell] += luma; counts[cell]++;
    }
  }
  const mean = sum / n;
  return {width: w, height: h, mean, std: Math.sqrt(Math.max(0, sq / n - mean * mean)),
          grid: Array.from(sums, (v, i) => counts[i] ? v / counts[i] : 0)};
}
"""


def record_peer_connections(page: Any) -> defer.Deferred:
    """Keep every RTCPeerConnection ``page`` creates from now on in ``window.wcsgwPeers``
    (call before ``page.goto``: it is an init script)."""
    return aio(page.add_init_script(PEER_RECORDER_JS))


def video_stats(page: Any, pc_expr: str = LAST_PEER) -> defer.Deferred:
    """Fires with ``{"inbound": {...} | None, "outbound": {...} | None}``: the video
    inbound-rtp (``framesDecoded``, ``keyFramesDecoded``, ``frameWidth``, ``pliCount``,
    ``codec`` mime type, ``fmtp`` ...) and outbound-rtp (``framesEncoded``, ``pliCount`` ...)
    statistics of the PeerConnection at ``pc_expr``; None when there is no such connection."""
    return evaluate(page, _VIDEO_STATS_JS, pc_expr)


def video_pixels(page: Any, video_expr: str) -> defer.Deferred:
    """Draw the <video> at ``video_expr`` on a canvas; fires with ``{"width", "height",
    "mean", "std", "grid"}`` — luma mean and standard deviation (0-255) over the picture and
    16x12 block means (``grid``), so two draws can be compared for motion.  A video with no
    frame yet gives width 0."""
    return evaluate(page, _VIDEO_PIXELS_JS, video_expr)


async def open_call_page(case: Any, frequency: float = 440.0) -> tuple["Chromium", Any]:
    """A browser with a fake microphone playing ``frequency`` and its call page; stopped at
    the test's cleanup."""
    wav = write_tone_wav(case.mktemp() + ".wav", frequency)
    browser = Chromium(fake_audio=wav)
    case.addCleanup(browser.stop)
    await browser.start()
    page = await browser.call_page()
    return browser, page


def dominant_frequency(
    page: Any, stream_expr: str = "window.wcsgwTest.remoteStream", ms: int = 1000,
    fft_size: int = 8192,
) -> defer.Deferred:
    """Fires with ``{"frequency": Hz, "level": dBFS, ...}`` of the stream at ``stream_expr``
    (a page expression), measured over ``ms`` ms.  A silent stream gives a level near -300
    dB: assert on the level too, else a noise peak would pass for a tone."""
    return evaluate(page, _DOMINANT_JS, [stream_expr, ms, fft_size])


class Chromium:
    """One headless Chromium (a persistent context on a fresh profile directory)."""

    def __init__(
        self,
        fake_audio: Optional[str | os.PathLike[str]] = None,
        extra_args: Sequence[str] = (),
        executable: str = CHROMIUM,
    ) -> None:
        self.fake_audio = fake_audio
        self.extra_args = tuple(extra_args)
        self.executable = executable
        self.user_data_dir: Optional[str] = None
        self.context: Any = None
        self._playwright: Any = None
        self._stopped: Optional[defer.Deferred] = None
        self._site_port: Any = None
        self.console: list[str] = []  # page console messages, for failure diagnosis

    @property
    def args(self) -> list[str]:
        args = list(BASE_ARGS)
        if self.fake_audio is not None:
            args.append(f"--use-file-for-fake-audio-capture={os.fspath(self.fake_audio)}")
        args.extend(self.extra_args)
        return args

    def start(self) -> defer.Deferred:
        return aio(self._start())

    async def _start(self) -> None:
        if not os.access(self.executable, os.X_OK):
            raise ChromiumError(
                f"{self.executable} not found: install Debian's chromium package (make test does)"
            )
        try:
            from playwright.async_api import async_playwright
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ChromiumError("playwright is not installed (pip install '.[test]')") from exc
        self.user_data_dir = tempfile.mkdtemp(prefix="wcsgw-chromium-")
        self._playwright = await async_playwright().start()
        try:
            self.context = await self._playwright.chromium.launch_persistent_context(
                self.user_data_dir,
                executable_path=self.executable,
                headless=True,
                args=self.args,
            )
        except BaseException:
            await self._stop()
            raise

    def new_page(self) -> defer.Deferred:
        """A blank page in this browser (console messages go to :attr:`console`)."""
        return aio(self._new_page())

    async def _new_page(self) -> Any:
        page = await self.context.new_page()
        page.on("console", lambda msg: self.console.append(f"{msg.type}: {msg.text}"))
        page.on("pageerror", lambda err: self.console.append(f"pageerror: {err}"))
        return page

    def call_page(self) -> defer.Deferred:
        """A page holding :data:`CALL_PAGE_HTML` (``window.wcsgwTest``)."""
        return aio(self._call_page())

    async def _call_page(self) -> Any:
        # getUserMedia needs a secure context, which about:blank (page.set_content) is not,
        # but http://127.0.0.1 is: serve the page from a tiny twisted.web site on port 0.
        if self._site_port is None:
            from twisted.internet import reactor
            from twisted.web import resource, server, static

            root = resource.Resource()
            root.putChild(b"", static.Data(CALL_PAGE_HTML.encode(), "text/html; charset=utf-8"))
            root.putChild(b"favicon.ico", static.Data(b"", "image/x-icon"))
            self._site_port = reactor.listenTCP(0, server.Site(root), interface="127.0.0.1")
        page = await self._new_page()
        await page.goto(f"http://127.0.0.1:{self._site_port.getHost().port}/")
        return page

    def stop(self) -> defer.Deferred:
        """Close the browser and the driver; kill leftovers by process group.  Idempotent."""
        if self._stopped is None:
            self._stopped = aio(self._stop())
        d: defer.Deferred = defer.Deferred()
        self._stopped.addBoth(lambda r: (d.callback(None), r)[1])
        return d

    async def _stop(self) -> None:
        # Each step runs even if an earlier one failed: a stale browser or profile directory
        # must never outlive the test.
        if self.context is not None:
            try:
                await self.context.close()
            except Exception:
                pass
            self.context = None
        if self._playwright is not None:
            try:
                await self._playwright.stop()
            except Exception:
                pass
            self._playwright = None
        if self.user_data_dir is not None:
            await _kill_leftovers(self.user_data_dir)
            shutil.rmtree(self.user_data_dir, ignore_errors=True)
            self.user_data_dir = None
        if self._site_port is not None:
            port, self._site_port = self._site_port, None
            # This runs as an asyncio Task: a Deferred must become a Future to be awaited.
            await as_future(defer.maybeDeferred(port.stopListening))


def processes_using(marker: str) -> list[psutil.Process]:
    """Running processes with ``marker`` (a browser's unique user-data-dir) in their argv."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if any(marker in part for part in proc.info["cmdline"] or ()):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


async def _kill_leftovers(user_data_dir: str) -> None:
    """SIGTERM, then SIGKILL, the process groups of processes using ``user_data_dir``."""
    import asyncio

    procs = processes_using(user_data_dir)
    if not procs:
        return
    own_group = os.getpgid(0)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for proc in procs:
            try:
                pgid = os.getpgid(proc.pid)
                if pgid != own_group:
                    os.killpg(pgid, sig)
                else:
                    proc.send_signal(sig)
            except (ProcessLookupError, psutil.NoSuchProcess):
                continue
        gone, procs = await asyncio.get_running_loop().run_in_executor(
            None, functools.partial(psutil.wait_procs, procs, timeout=STOP_GRACE)
        )
        if not procs:
            return


def describe(obj: Any) -> str:
    """Compact JSON for assertion messages."""
    return json.dumps(obj, default=str)[:2000]


async def close_leg_and_browser(case: Any, leg: Any, states: Any, page: Any, browser: "Chromium",
                                ports: Any) -> None:
    """End a test's WebRtcLeg and its browser, asserting that nothing is left: the leg went
    checking -> connected -> closed, its port is free and back in ``ports``, our DTLS
    close_notify closed the browser's transport (Chromium keeps the RTCPeerConnection itself
    only "disconnected"), and no browser process survives ``stop()``."""
    from tests.support import udp_port_is_free

    port = leg.port
    await leg.close()
    case.assertEqual(states.events, ["checking", "connected", "closed"])
    case.assertTrue(udp_port_is_free(port), f"port {port} still bound after close")
    case.assertEqual(ports.in_use, frozenset())
    await evaluate(page, "wcsgwTest.waitDtls('closed', 5000)")
    marker = browser.user_data_dir
    case.assertTrue(processes_using(marker), "the browser should be running before stop()")
    await browser.stop()
    case.assertEqual(processes_using(marker), [], "browser processes left after stop()")
