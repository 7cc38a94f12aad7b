"""Graceful drain of the gateway as its own process (issue 15, item 2), as an init system and
a load balancer see it: a live call (REST ``playFile`` on a server-held account, through a
real Kamailio to a baresip phone), then SIGTERM: ``/health`` turns 503 ``draining``, a new
session is refused (1011: a new socket opens, a fresh `connect` does not), the call carries on — its RTP counters keep growing both ways and
the phone keeps hearing the file's 1 kHz — and only when the phone hangs up does the process
unregister from Kamailio and exit 0.  A second SIGTERM during a drain stops at once (the
live call ended with BYE, well before ``limits.drain_seconds``)."""

from __future__ import annotations

import json
import os
import re
import signal
import urllib.error
import urllib.request
import wave
from pathlib import Path
from typing import Any

import numpy as np
from autobahn.twisted.websocket import WebSocketClientFactory
from twisted.internet import defer, reactor, task

from tests.peers.baresip import Baresip, write_tone
from tests.peers.kamailio import Kamailio
from tests.peers.ports import free_port
from tests.support import EventLog, assert_near, inline
from tests.test_api_fakes import Connection, WsClient
from tests.test_twistd import Gateway, TwistdTestCase, _write
from wcsgw.calls.errors import Codes

DRAIN_SECONDS = 600


def http(port: int, path: str, body: dict | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """One request to the gateway process (blocking, local: instant); any status."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=data,
        headers={**({"content-type": "application/json"} if data else {}), **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=5) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def rtp_packets(metrics: bytes) -> dict[str, float]:
    """``wcsgw_rtp_packets_total`` by ``leg/direction``."""
    out = {}
    for match in re.finditer(rb'^wcsgw_rtp_packets_total\{([^}]*)\} (\S+)$', metrics, re.M):
        labels = dict(re.findall(rb'(\w+)="([^"]*)"', match.group(1)))
        out[f"{labels[b'leg'].decode()}/{labels[b'direction'].decode()}"] = float(match.group(2))
    return out


def tail_hz(path: Path, seconds: float) -> tuple[float, float]:
    """(dominant frequency, RMS level) of the last ``seconds`` of a mono 16-bit WAV."""
    with wave.open(str(path)) as w:
        rate = w.getframerate()
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(float)
    samples = samples[-int(rate * seconds):]
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum)) * rate / len(samples), float(np.sqrt(np.mean(samples ** 2)))


async def until(condition: Any, what: str, timeout: float = 10.0) -> None:
    """Poll a state of another process that no event of ours announces (bounded)."""
    for _ in range(int(timeout / 0.05)):
        if condition():
            return
        await task.deferLater(reactor, 0.05, lambda: None)
    raise AssertionError(f"not reached in {timeout} s: {what}")


class DrainProcessTests(TwistdTestCase):
    timeout = 120

    async def start(self, account: str = "") -> tuple[Gateway, int, int]:
        http_port, sip_port = free_port("tcp"), free_port("udp+tcp")
        media_port = free_port("udp", span=40)
        self.media = self.tmpdir()
        write_tone(Path(self.media) / "tone1k.wav", 1000.0, seconds=30.0)
        config = (f'[http]\nlisten = "127.0.0.1"\nport = {http_port}\n'
                  f'[sip]\nlisten = "127.0.0.1"\nport = {sip_port}\n'
                  f'[media]\nport_min = {media_port}\nport_max = {media_port + 39}\n'
                  f'[rest]\nmedia_folder = "{self.media}"\n'
                  f'[limits]\ndrain_seconds = {DRAIN_SECONDS}\nmax_loop_lag_ms = 0\n'
                  f'max_cpu_percent = 0\n{account}')
        path = _write(self.tmpdir(), "gw.toml", config)
        gateway = Gateway(self, ["-n", "--pidfile=", "--logfile=-", "wcsgw", "--config", path])
        await gateway.wait_health(http_port)
        return gateway, http_port, sip_port

    def draining(self, http_port: int) -> bool:
        status, body = http(http_port, "/health")
        return status == 503 and json.loads(body)["status"] == "draining"

    async def assert_connect_refused(self, http_port: int) -> None:
        """A new WebSocket still opens (it may be a session coming back with its authToken),
        but a fresh ``connect`` is refused: 1011 Gateway draining."""
        factory = WebSocketClientFactory(f"ws://127.0.0.1:{http_port}/ws")
        factory.protocol = WsClient
        factory.frames = EventLog()
        factory.opened, factory.closed = defer.Deferred(), defer.Deferred()
        reactor.connectTCP("127.0.0.1", http_port, factory)
        ws = Connection(await factory.opened, factory)
        try:
            error = (await ws.request("connect", {}))["error"]
            self.assertEqual((error["code"], error["message"]), (Codes.DRAINING, "Gateway draining"))
        finally:
            await ws.close()

    @inline
    async def test_sigterm_lets_the_live_call_finish_then_unregisters_and_exits_0(self) -> None:
        kam = Kamailio()
        self.addCleanup(kam.stop)
        await kam.start()
        # baresip ends a call when its microphone file ends: one longer than the test
        tone = write_tone(Path(self.tmpdir()) / "mic440.wav", 440.0, seconds=60.0)
        phone = Baresip("1002", "pass1002", registrar_port=kam.port, outbound=True, tone=tone)
        self.addCleanup(phone.stop)  # added after Kamailio's: runs first
        await phone.start()
        await phone.registered()
        gateway, http_port, _ = await self.start(
            f'[[accounts]]\nname = "main"\nlogin = "1001"\npassword = "pass1001"\n'
            f'domain = "127.0.0.1"\nport = {kam.port}\nexpires = 600\n')
        rows: list = []
        for _ in range(100):
            rows = await kam.bindings("1001")
            if rows:
                break
            await task.deferLater(reactor, 0.05, lambda: None)
        self.assertEqual(len(rows), 1, kam.log_tail())

        status, body = http(http_port, "/rest-api/call/startup",
                            {"account": "main", "callee": "1002", "playFile": "tone1k.wav"})
        self.assertEqual(status, 200, body)
        call_id = json.loads(body)["callId"]
        await phone.wait_event("CALL_ESTABLISHED")
        await task.deferLater(reactor, 1.0, lambda: None)  # media for a while before

        os.killpg(gateway.proc.pid, signal.SIGTERM)
        await until(lambda: self.draining(http_port), "/health 503 draining")
        status, body = http(http_port, "/health")
        self.assertEqual(json.loads(body)["calls"], 1)
        await self.assert_connect_refused(http_port)
        status, body = http(http_port, "/rest-api/call/startup",
                            {"account": "main", "callee": "1002", "playFile": "tone1k.wav"})
        self.assertEqual((status, json.loads(body)), (503, {"error": "Gateway draining"}))

        # The live call carries on: its media keeps flowing both ways, it is still up.
        before = rtp_packets(http(http_port, "/metrics")[1])
        await task.deferLater(reactor, 2.0, lambda: None)
        after = rtp_packets(http(http_port, "/metrics")[1])
        for key in ("sip/in", "sip/out"):
            self.assertGreater(after[key] - before[key], 50, (key, before, after))
        status, body = http(http_port, "/rest-api/call/find", {"callId": call_id})
        self.assertEqual((status, json.loads(body)[0]["status"]), (200, "ESTABLISHED"))
        self.assertIsNone(gateway.proc.poll())

        # The far end hangs up: the last call is over, the gateway unregisters and exits 0.
        mark = phone.mark()
        await phone.command("hangup")
        await phone.wait_event("CALL_CLOSED", since=mark)
        self.assertEqual(await gateway.wait_exit(), 0, gateway.output)
        self.assertEqual(await kam.bindings("1001"), [], kam.log_tail())
        output = gateway.output
        self.assertIn("draining (SIGTERM)", output)
        self.assertIn("drained: no call left", output)
        self.assertNotIn("Traceback", output)
        self.assertNotIn("pass1001", output)
        # What the phone heard in its last 2 s, after the SIGTERM, was still the file.
        [heard] = phone.recordings()
        frequency, level = tail_hz(heard, 2.0)
        assert_near(self, frequency, 1000, 10)
        self.assertGreater(level, 300)

    @inline
    async def test_second_sigterm_during_a_drain_stops_at_once(self) -> None:
        gateway, http_port, _ = await self.start()
        status, body = http(http_port, "/rest-api/call/startup",
                            {"callee": "echo", "playFile": "tone1k.wav"})
        self.assertEqual(status, 200, body)
        call_id = json.loads(body)["callId"]
        await until(lambda: json.loads(http(http_port, "/rest-api/call/find",
                                             {"callId": call_id})[1])[0]["status"]
                    == "ESTABLISHED", "the echo call answered")
        os.killpg(gateway.proc.pid, signal.SIGTERM)
        await until(lambda: self.draining(http_port), "/health 503 draining")
        self.assertIsNone(gateway.proc.poll())  # the call holds the drain open
        started = reactor.seconds()
        os.killpg(gateway.proc.pid, signal.SIGTERM)
        self.assertIn(await gateway.wait_exit(timeout=15), (0, -signal.SIGTERM), gateway.output)
        self.assertLess(reactor.seconds() - started, 10)  # not limits.drain_seconds
        output = gateway.output
        self.assertIn("second SIGTERM while draining: stopping now", output)
        self.assertNotIn("Traceback", output)
