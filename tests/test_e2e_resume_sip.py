"""Session resume with real peers: a session registered at Kamailio calls baresip, its WebSocket
drops mid-call, and the SIP side never notices.

The "browser" is a WebSocket client (Autobahn) plus a scripted media end: ICE as the
controlling agent with consent checks, aiortc's DTLS client, SRTP, and a 440 Hz PCMU tone every
20 ms — everything a browser does on the media path, which does not go through the WebSocket.
The socket is cut with ``abortConnection`` (no close frame: a network change, a proxy's idle
timeout).  What must hold:

* with a resume: baresip's call and the binding at Kamailio stay; a ``connect {authToken}``
  on a new socket gets the same session and the call re-announced ESTABLISHED; hanging up
  over the new socket sends baresip its BYE, and what baresip received up to then is still
  the browser's tone (FFT);
* without one: the call ends — baresip gets the BYE — once ``http.resume_seconds`` is over,
  not before, and the session's binding is removed.
"""

from __future__ import annotations

import time
import wave
from typing import Any

import attrs
import numpy as np
from aioice import stun
from aiortc.rtcdtlstransport import (
    RTCCertificate,
    RTCDtlsFingerprint,
    RTCDtlsParameters,
    RTCDtlsTransport,
)
from twisted.internet import reactor, task
from twisted.internet.protocol import DatagramProtocol
from twisted.trial import unittest

from tests.dtlspeer import DatagramChannel
from tests.e2e import PeersMixin, gateway_config
from tests.support import EventLog, assert_near, deferred_sleep, inline
from tests.test_api_fakes import ws_connect
from wcsgw.loop import as_deferred
from wcsgw.media.g711 import ulaw_encode
from wcsgw.webrtc.stun import make_ice_credentials

HOST = "127.0.0.1"
TONE_HZ = 440.0


class ScriptedMediaEnd(DatagramProtocol):
    """A browser's media path: offer, ICE checks (controlling; consent every 2 s), DTLS client,
    SRTP, a PCMU tone."""

    def __init__(self) -> None:
        self.creds = make_ice_credentials()
        self.channel = DatagramChannel(self._send)
        self.dtls = RTCDtlsTransport(self.channel, [RTCCertificate.generateCertificate()])  # type: ignore[arg-type]
        self.dtls._set_role("client")
        self.responses = EventLog()
        self.port = reactor.listenUDP(0, self, interface=HOST)
        self.remote: tuple[str, int] | None = None
        self.remote_ufrag = self.remote_pwd = ""
        self.seq = self.samples = 0
        self.loops: list[task.LoopingCall] = []

    def offer(self) -> str:
        port = self.port.getHost().port
        algo, value = (lambda f: (f.algorithm, f.value))(
            self.dtls.getLocalParameters().fingerprints[0])
        return "\r\n".join([
            "v=0", f"o=- 4242 2 IN IP4 {HOST}", "s=-", "t=0 0", "a=group:BUNDLE 0",
            "a=msid-semantic: WMS test", f"m=audio {port} UDP/TLS/RTP/SAVPF 0 126",
            f"c=IN IP4 {HOST}", f"a=candidate:1 1 udp 2130706431 {HOST} {port} typ host",
            "a=end-of-candidates", f"a=ice-ufrag:{self.creds.ufrag}",
            f"a=ice-pwd:{self.creds.pwd}", f"a=fingerprint:{algo} {value}", "a=setup:actpass",
            "a=mid:0", "a=sendrecv", "a=rtcp-mux", "a=rtpmap:0 PCMU/8000",
            "a=rtpmap:126 telephone-event/8000", "a=ptime:20", "a=ssrc:1234 cname:test", "",
        ])

    def _send(self, data: bytes) -> None:
        if self.remote is not None:
            self.transport.write(data, self.remote)

    def datagramReceived(self, data: bytes, addr: Any) -> None:  # noqa: N802 (Twisted API)
        if data[0] < 4:
            self.responses(stun.parse_message(data))
        elif 19 < data[0] < 64:
            self.channel.feed(data)

    def check(self) -> bytes:
        msg = stun.Message(stun.Method.BINDING, stun.Class.REQUEST)
        msg.attributes["USERNAME"] = f"{self.remote_ufrag}:{self.creds.ufrag}"
        msg.attributes["PRIORITY"] = 2130706431
        msg.attributes["ICE-CONTROLLING"] = 1
        msg.attributes["USE-CANDIDATE"] = None
        msg.add_message_integrity(self.remote_pwd.encode())
        self._send(bytes(msg))
        return msg.transaction_id

    async def connect(self, answer: str) -> None:
        """ICE with the gateway's candidate, DTLS, then the tone and consent checks run."""
        fingerprint = ("", "")
        for line in answer.splitlines():
            if line.startswith("a=ice-ufrag:"):
                self.remote_ufrag = line.split(":", 1)[1].strip()
            elif line.startswith("a=ice-pwd:"):
                self.remote_pwd = line.split(":", 1)[1].strip()
            elif line.startswith("a=fingerprint:"):
                algo, value = line.split(":", 1)[1].split()
                fingerprint = (algo.lower(), value.upper())
            elif line.startswith("a=candidate:") and self.remote is None:
                fields = line.split()
                if fields[2].lower() == "udp":
                    self.remote = (fields[4], int(fields[5]))
        tid = self.check()
        await self.responses.wait_for(lambda m: m.transaction_id == tid, timeout=5)
        await as_deferred(self.dtls.start(RTCDtlsParameters(
            fingerprints=[RTCDtlsFingerprint(*fingerprint)], role="server")))
        assert self.dtls.state == "connected", self.dtls.state
        for interval, work in ((0.02, self._tone), (2.0, self.check)):
            loop = task.LoopingCall(work)
            loop.start(interval, now=False)
            self.loops.append(loop)

    def _tone(self) -> None:
        n = np.arange(self.samples, self.samples + 160)
        self.samples += 160
        self.seq = (self.seq + 1) & 0xFFFF
        pcm = (8000 * np.sin(2 * np.pi * TONE_HZ * n / 8000)).astype(np.int16)
        header = bytes([0x80, 0]) + self.seq.to_bytes(2, "big") + \
            (self.samples & 0xFFFFFFFF).to_bytes(4, "big") + (1234).to_bytes(4, "big")
        self._send(self.dtls._tx_srtp.protect(header + ulaw_encode(pcm)))

    async def close(self) -> None:
        for loop in self.loops:
            if loop.running:
                loop.stop()
        self.channel.close()
        await as_deferred(self.dtls.stop())
        await self.port.stopListening()


def tail_hz(path: Any, seconds: float = 1.0) -> tuple[float, float]:
    """(dominant frequency, RMS) of a WAV's last ``seconds``."""
    with wave.open(str(path)) as w:
        rate = w.getframerate()
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(float)
        if w.getnchannels() > 1:
            samples = samples.reshape(-1, w.getnchannels())[:, 0]
    samples = samples[-int(rate * seconds):]
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum)) * rate / len(samples), float(np.sqrt(np.mean(samples ** 2)))


class ResumeWithPeersTests(PeersMixin, unittest.TestCase):
    timeout = 120

    async def start(self, resume_seconds: int) -> None:
        base = gateway_config(allowed_domains=("127.0.0.1",), rtp_timeout=60.0, t1=0.1, t2=0.8)
        await self.start_pbx_and_phone(
            attrs.evolve(base, http=attrs.evolve(base.http, resume_seconds=resume_seconds)))
        gateway = self.gateway.top.call_gateway
        self.closes = EventLog()  # the gateway heard a socket close
        close_session = gateway.close_session

        def closing(session_id: str) -> None:
            close_session(session_id)
            self.closes(session_id)

        gateway.close_session = closing
        self.port = self.gateway.top.getServiceNamed("http").address[1]

    async def call_phone(self) -> tuple[Any, dict[str, Any]]:
        """A session as 1001 at Kamailio, registered, in a call with baresip 1002."""
        ws = await ws_connect(self, self.port)
        first = (await ws.request("connect", {
            "sipLogin": "1001", "sipPassword": "pass1001", "sipDomain": "127.0.0.1",
            "sipOutboundProxy": "127.0.0.1", "sipPort": self.kam.port}))["result"]
        await ws.notification("sessionStatus", status="REGISTERED")
        media = ScriptedMediaEnd()
        self.addCleanup(media.close)
        reply = await ws.request("call", {"callId": "c1", "callee": "1002", "sdp": media.offer(),
                                          "hasAudio": True, "hasVideo": False})
        self.assertEqual(reply.get("result"), {"callId": "c1"}, reply)
        answered = await ws.frames.wait_for(
            lambda f: f.get("method") == "callStatus" and f["params"].get("sdp")
            or f.get("params", {}).get("status") == "FAILED")
        self.assertNotEqual(answered["params"]["status"], "FAILED", answered)
        await media.connect(answered["params"]["sdp"])
        await ws.notification("callStatus", callId="c1", status="ESTABLISHED")
        await self.phone.wait_event("CALL_ESTABLISHED")
        self.assertEqual(len(await self.kam.bindings("1001")), 1)
        return ws, first

    async def cut(self, ws: Any, session_id: str) -> None:
        ws.protocol.transport.abortConnection()
        await self.closes.wait_for(lambda sid: sid == session_id)

    @inline
    async def test_dropped_mid_call_then_resumed_the_phone_never_notices(self) -> None:
        await self.start(resume_seconds=30)
        ws, first = await self.call_phone()
        session_id = first["sessionId"]
        mark = self.phone.mark()
        await self.cut(ws, session_id)
        await deferred_sleep(2.0)  # the scenario: two seconds without a socket
        self.assertFalse([e for e in self.phone.events[mark:] if e.get("type") == "CALL_CLOSED"])
        self.assertIn("c1", self.gateway.calls)
        self.assertEqual(len(await self.kam.bindings("1001")), 1)

        again = await ws_connect(self, self.port)
        reply = await again.request("connect", {"authToken": first["authToken"]})
        self.assertEqual(reply["result"]["sessionId"], session_id)
        self.assertTrue(reply["result"]["resumed"])
        announced = await again.notification("callStatus", callId="c1", status="ESTABLISHED")
        after = again.frames.events[again.frames.events.index(reply) + 1:]
        self.assertEqual([(f["method"], f["params"]["status"]) for f in after][-2:],
                         [("sessionStatus", "REGISTERED"), ("callStatus", "ESTABLISHED")])
        self.assertEqual(announced["params"]["callee"], "1002")
        await deferred_sleep(1.5)  # the phone records the tone after the resume
        self.assertEqual((await again.request("hangup", {"callId": "c1"}))["result"], {})
        await self.phone.wait_event("CALL_CLOSED", since=mark)
        await again.notification("callStatus", callId="c1", status="FINISH")
        await self.gateway.when_idle()
        self.assertEqual(self.gateway.calls, {})
        [recording] = self.phone.recordings()
        frequency, level = tail_hz(recording)
        assert_near(self, frequency, TONE_HZ, 10)
        self.assertGreater(level, 300)

    @inline
    async def test_no_resume_within_the_window_ends_the_call(self) -> None:
        window = 2
        await self.start(resume_seconds=window)
        ws, first = await self.call_phone()
        mark = self.phone.mark()
        dropped_at = time.monotonic()
        await self.cut(ws, first["sessionId"])
        closed = await self.phone.wait_event("CALL_CLOSED", since=mark, timeout=window + 10)
        elapsed = time.monotonic() - dropped_at
        self.assertGreaterEqual(elapsed, window - 0.2, closed)
        self.assertLess(elapsed, window + 5, closed)
        await self.gateway.when_idle()
        self.assertEqual(self.gateway.calls, {})
        for _ in range(50):  # the un-REGISTER is answered a moment after the BYE
            if not await self.kam.bindings("1001"):
                break
            await deferred_sleep(0.05)
        self.assertEqual(await self.kam.bindings("1001"), [])
        late = await ws_connect(self, self.port)
        error = (await late.request("connect", {"authToken": first["authToken"]}))["error"]
        self.assertEqual(error["data"], {"field": "authToken"})
