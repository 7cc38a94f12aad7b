"""Calls that come and go: N concurrent calls through wcsgw, each living a random time, for a
soak run (``bench/soak.py``).

The call itself is ``load_caller.py``'s (one WebSocket session per call, ICE, DTLS client,
SRTP; nothing of it is repeated here), with two differences a soak needs:

* **churn**: each of ``--calls`` slots places a call, holds it a random ``--life`` (default
  5–60 s), hangs up (``hangup``, then ``callStatus FINISH`` must come), closes the WebSocket
  and at once places the next one, until ``--seconds`` have passed; then every live call is
  hung up the same way;
* **audio checked by content**: every call sends a PCMU tone of its own frequency (a multiple
  of 50 Hz, so each 20 ms frame holds whole periods and one frame repeated is a continuous
  tone; neighbouring calls differ by 50 Hz); the echo sends the payload back through the
  gateway, and the first ``CHECK_PACKETS`` packets received (0.5 s) are decoded and their FFT
  peak must be that frequency (± 10 Hz) — silence, another call's tone or noise is a failure.
  Packets sent and received over the call's whole life give its loss.

Stdout, one JSON object a line: ``{"event": "end", ...}`` per call that ended (``ok`` and, if
not, a short ``reason``: the failures are counted by it), ``{"event": "live", ...}`` every
``--report`` seconds, and ``{"event": "done", ...}`` once every call is down.

Run: ``python bench/churn_caller.py --ws ws://127.0.0.1:8080/ws --sip-domain 127.0.0.1
--sip-port PORT --calls 100 --seconds 300`` (against ``bench/echo_uas.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import struct
import sys
import time
from typing import Any

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from aiortc.rtcdtlstransport import RTCCertificate  # noqa: E402 - after sys.path

from bench.load_caller import (  # noqa: E402
    SLOTS,
    MediaLeg,
    Stats,
    WcsgwSignalling,
    parse_answer,
    rtp_payload_offset,
    ticker_dynamic,
)
from wcsgw.media.g711 import ulaw_decode, ulaw_encode  # noqa: E402

CHECK_PACKETS = 25  # 0.5 s of 20 ms frames: a 2 Hz FFT bin
TOLERANCE_HZ = 10.0
FREQUENCIES = [400 + 50 * k for k in range(30)]  # 400 .. 1850 Hz


def tone_frame(freq: float) -> bytes:
    t = np.arange(160) / 8000
    return ulaw_encode((8000 * np.sin(2 * np.pi * freq * t)).astype(np.int16))


def peak_hz(payloads: list[bytes]) -> float:
    pcm = np.concatenate([ulaw_decode(p) for p in payloads]).astype(np.float64)
    spectrum = np.abs(np.fft.rfft(pcm * np.hanning(len(pcm))))
    spectrum[:5] = 0  # DC
    return float(np.argmax(spectrum) * 8000 / len(pcm))


class ToneLeg(MediaLeg):
    """A load-caller leg whose RTP is a tone, checked when it comes back."""

    def __init__(self, index: int, cert: RTCCertificate, fingerprint: str, stats: Stats,
                 freq: float) -> None:
        super().__init__(index, cert, fingerprint, "pcmu", stats)
        self.freq = freq
        self.frame = tone_frame(freq)
        self.heard: list[bytes] = []
        self.checked_audio: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.sent = 0
        self.received = 0

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if not (127 < data[0] < 192) or 191 < data[1] < 224:
            super().datagram_received(data, addr)  # STUN, DTLS, RTCP
            return
        if self.rx is None:
            return
        try:
            packet = self.rx.unprotect(data)
        except Exception:  # noqa: BLE001 (forged or replayed: drop, as the gateway does)
            return
        self.received += 1
        if len(self.heard) < CHECK_PACKETS:
            self.heard.append(packet[rtp_payload_offset(packet):])
            if len(self.heard) == CHECK_PACKETS and not self.checked_audio.done():
                self.checked_audio.set_result(peak_hz(self.heard))

    def send_frame(self, now_ns: int) -> None:
        if not self.media_ready or self.closed:
            return
        self.seq = (self.seq + 1) & 0xFFFF
        self.ts = (self.ts + 160) & 0xFFFFFFFF
        header = struct.pack("!BBHII", 0x80, self.pt, self.seq, self.ts, self.ssrc)
        try:
            self.transport.sendto(self.tx.protect(header + self.frame), self.remote)
            self.sent += 1
        except Exception:  # noqa: BLE001, S110 (a send that fails shows as loss)
            pass


def short_reason(exc: BaseException) -> str:
    """Failures are counted by reason: keep what names the cause, drop ids and numbers."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    text = re.sub(r"b[0-9a-f]{6}-\d+", "<call>", text)
    return re.sub(r"\d+(\.\d+)?", "N", text)[:120]


class Churn:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.cert = RTCCertificate.generateCertificate()
        self.fingerprint = next(f.value for f in self.cert.getFingerprints()
                                if f.algorithm == "sha-256")
        self.stats = Stats()
        self.slots: list[list[MediaLeg]] = [[] for _ in range(SLOTS)]
        self.signalling = WcsgwSignalling(args.ws, args.sip_domain, args.sip_port, args.callee)
        self.setups = asyncio.Semaphore(args.concurrency)
        self.next_index = 0
        self.run_id = f"{random.getrandbits(24):06x}"
        self.live = 0
        self.started = 0
        self.ended = 0
        self.failed = 0

    def emit(self, **fields: Any) -> None:
        print(json.dumps({"t": round(time.monotonic(), 3), **fields}), flush=True)

    async def slot(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            await self.one_call(deadline)

    async def one_call(self, deadline: float) -> None:
        i = self.next_index
        self.next_index += 1
        call_id = f"b{self.run_id}-{i}"
        lo, hi = self.args.life
        life = random.uniform(lo, hi)
        leg = ToneLeg(i, self.cert, self.fingerprint, self.stats, FREQUENCIES[i % len(FREQUENCIES)])
        result: dict[str, Any] = {"event": "end", "id": call_id, "freq": leg.freq}
        handle: Any = None
        stage = "setup"
        t0 = time.monotonic()
        self.started += 1
        try:
            async with self.setups:
                await leg.open()
                answer, t_call, t_est, handle = await self.signalling.open_call(call_id, leg.offer())
                result["setup_ms"] = round(1000 * (t_est - t_call), 2)
                stage = "media"
                await leg.connect(parse_answer(answer))
            self.slots[i % SLOTS].append(leg)
            self.live += 1
            try:
                stage = "audio"
                heard = await asyncio.wait_for(asyncio.shield(leg.checked_audio), 5.0)
                result["heard_hz"] = heard
                if abs(heard - leg.freq) > TOLERANCE_HZ:
                    raise ValueError(f"wrong tone: sent {leg.freq:.0f} Hz, heard {heard:.0f} Hz")
                stage = "call"
                end = min(t0 + life, deadline)
                await self.hold(handle, end)
                stage = "hangup"
                leg.media_ready = False  # the last echoes come back before the count is taken
                await asyncio.sleep(0.2)
                await self.hangup(call_id, handle)
                handle = None
            finally:
                self.live -= 1
                self.slots[i % SLOTS].remove(leg)
            result["ok"] = True
        except Exception as exc:  # noqa: BLE001 - every failure is counted by its reason
            result["ok"] = False
            result["reason"] = f"{stage}: {short_reason(exc)}"
            self.failed += 1
            if handle is not None:
                await self.signalling.close_call(call_id, handle)
        finally:
            await leg.close()
            self.ended += 1
        result["lived_s"] = round(time.monotonic() - t0, 2)
        result["sent"], result["received"] = leg.sent, leg.received
        self.emit(**result)

    async def hold(self, handle: Any, end: float) -> None:
        """Until ``end``; a ``callStatus`` that ends the call on its own is a failure."""
        _proto, _send, inbox = handle
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return
            try:
                msg = await asyncio.wait_for(inbox.get(), left)
            except TimeoutError:
                return
            if msg.get("closed"):
                raise ConnectionError("WebSocket closed during the call")
            params = msg.get("params") or {}
            if msg.get("method") == "callStatus" and params.get("status") in ("FINISH", "FAILED", "BUSY"):
                raise RuntimeError(f"call ended by the gateway: {params.get('status')} "
                                   f"{params.get('info')}")

    async def hangup(self, call_id: str, handle: Any) -> None:
        proto, send, inbox = handle
        send("hangup", {"callId": call_id})
        end = time.monotonic() + 10
        while True:
            msg = await asyncio.wait_for(inbox.get(), max(0.01, end - time.monotonic()))
            if msg.get("closed"):
                raise ConnectionError("WebSocket closed before FINISH")
            if "error" in msg:
                raise RuntimeError(f"hangup refused: {msg['error']}")
            params = msg.get("params") or {}
            if msg.get("method") == "callStatus" and params.get("status") in ("FINISH", "FAILED"):
                if params["status"] != "FINISH":
                    raise RuntimeError(f"hangup ended {params['status']} {params.get('info')}")
                break
        proto.sendClose(1000)

    async def report(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), self.args.report)
            except TimeoutError:
                self.emit(event="live", live=self.live, started=self.started, ended=self.ended,
                          failed=self.failed)

    async def run(self) -> None:
        stop = asyncio.Event()
        ticker = asyncio.ensure_future(ticker_dynamic(self.slots, self.stats, stop))
        reporter = asyncio.ensure_future(self.report(stop))
        deadline = time.monotonic() + self.args.seconds
        try:
            await asyncio.gather(*(self.slot(deadline) for _ in range(self.args.calls)))
        finally:
            stop.set()
            await ticker
            await reporter
        self.emit(event="done", started=self.started, ended=self.ended, failed=self.failed)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--adapter", choices=("wcsgw",), default="wcsgw", help="wcsgw only")
    p.add_argument("--ws", default="ws://127.0.0.1:8080/ws")
    p.add_argument("--sip-domain", default="", help="empty: the gateway's built-in test lines")
    p.add_argument("--sip-port", type=int, default=5060)
    p.add_argument("--callee", default="echo")
    p.add_argument("--calls", type=int, default=100, help="concurrent calls kept")
    p.add_argument("--seconds", type=float, default=300.0, help="new calls start until then")
    p.add_argument("--life", type=float, nargs=2, default=(5.0, 60.0), metavar=("MIN", "MAX"),
                   help="each call lives a random time in this range, seconds")
    p.add_argument("--concurrency", type=int, default=10, help="call set-ups in flight")
    p.add_argument("--report", type=float, default=10.0, help="seconds between live lines")
    return p


def main() -> None:
    args = parser().parse_args()
    asyncio.run(Churn(args).run())


if __name__ == "__main__":
    main()
