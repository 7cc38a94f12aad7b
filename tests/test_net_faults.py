"""Faults on a real network (issue 15): a lossy, jittery SIP path, and a PBX restarted mid-call.

    GATEWAY 10.78.1.1 -- 10.78.1.2 ROUTER 10.78.2.1 -- 10.78.2.2 Kamailio + baresip 1002

The gateway runs in this process, in the test's own namespace (tests/isolated); the router and
the PBX are namespaces of :mod:`tests.peers.netns`.  Two kinds of calls, no Chromium:

* the operator's REST calls (``call/startup`` with ``playFile`` and ``record``): through the
  gateway's SIP stack, Kamailio's digest challenge and record-routing, to a phone that
  answers by itself; the phone hears the gateway's 440 Hz file, the gateway records the
  phone's 1 kHz;
* a browser session's calls (a real WebSocket JSON-RPC session registered at Kamailio), whose
  browser is :class:`PythonBrowser`: aiortc's RTCPeerConnection in this process — ICE,
  DTLS-SRTP and Opus as a browser does them — with a 440 Hz microphone, keeping what it hears
  for an FFT.

* :class:`LossyPathTests`: the router loses 20 % of the SIP packets both ways and delays each
  of the others by a uniform 0-200 ms (so they overtake each other), by
  :mod:`tests.peers.impair` (no netem here).  RTP is not impaired: what is under test is
  that SIP's retransmissions (RFC 3261 §17, the gateway's with the default T1 = 500 ms, and
  the phone's and Kamailio's) carry every transaction through — the session's REGISTER, the
  digest-challenged INVITEs out, the phone's INVITEs in (the gateway as UAS re-sending its 200
  until the ACK gets through), the ACKs, the BYEs both ways.  The session must register, and
  every call of the test must set up, carry audio both ways and end with the far end hearing
  the BYE: with 20 % loss each way a request and its answer get through together 64 % of the
  time, so a non-INVITE transaction's 11 sends within Timer F fail together with probability
  0.36^11 ≈ 1e-5, and an INVITE's stops needing retransmission once the 100 Trying is through.
* :class:`PbxRestartTests`: Kamailio is killed (SIGKILL, as a crash) during an established call
  — a REST call, and the session's own call from its browser — and started again on the same
  address and port, with nothing of its state: the call's media never went through it and
  goes on without a hole; the call still hangs up — the BYE follows the dialog's route set
  (Kamailio's Record-Route) and the new Kamailio relays it by ``loose_route()`` alone, which
  needs no dialog state; and the session hears its registration fail while Kamailio is gone
  and come back (REGISTERED) once the REGISTER client's retry reaches the new one.  Kamailio
  grants bindings of 12 s here, as PBXs behind NAT do, so the refresh falls inside the outage.
  The REST call is run over UDP and over TCP (where the crash resets the connections and new
  ones are opened to the new Kamailio).
* :class:`RestartedRegistrarTests`: the registration bug the restart showed, sans-IO.
"""

from __future__ import annotations

import asyncio
import fractions
import os
import shutil
import signal
import time
import wave
from pathlib import Path
from typing import Any

import av
import numpy as np
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError
from twisted.internet import reactor, task
from twisted.internet.defer import Deferred
from twisted.trial import unittest

from tests.e2e import TOKEN, Gateway, RestMixin, dominant_hz
from tests.peers.chromium import write_tone_wav
from tests.peers.impair import ImpairingRouter, udp_from, udp_to
from tests.peers.netns import BaresipIn, KamailioIn, network_for, tone_phone_in
from tests.support import assert_near, inline
from tests.test_api_fakes import ws_connect
from wcsgw.config import (
    Config,
    HttpSettings,
    LimitsSettings,
    MediaSettings,
    PolicySettings,
    RecordingSettings,
    RestSettings,
    SipSettings,
)
from wcsgw.sip.digest import DigestClient, parse_authorization
from wcsgw.sip.message import Request, Response
from wcsgw.sip.registration import (
    Registered,
    Registration,
    RegistrationFailed,
    RegistrationState,
)

GW, ROUTER_IN, ROUTER_OUT, PBX = "10.78.1.1", "10.78.1.2", "10.78.2.1", "10.78.2.2"
PBX_NET = "10.78.2.0/24"
#: the binding lifetime the restarted-PBX test's Kamailio grants (its min_expires is 10)
SHORT_BINDING = 12


class ShortBindingKamailio(KamailioIn):
    """:class:`KamailioIn` whose registrar grants at most :data:`SHORT_BINDING` seconds."""

    def _write_config(self) -> Path:
        cfg = super()._write_config()
        text = cfg.read_text()
        old = 'modparam("registrar", "max_expires", 3600)'
        if old not in text:
            raise AssertionError("kamailio.cfg no longer sets max_expires as expected")
        cfg.write_text(text.replace(old, f'modparam("registrar", "max_expires", {SHORT_BINDING})'))
        return cfg


class FaultTopology(RestMixin):
    """The network of the module docstring, the PBX and phone in it, and the gateway here;
    everything is removed at clean-up (the network last).  ``rest``/``startup_body`` come
    from :class:`~tests.e2e.RestMixin`."""

    timeout = 180

    def build_network(self) -> None:
        self.net = network_for(self)  # removed last, after every peer
        self.router_ns = self.net.namespace("router")
        self.pbx_ns = self.net.namespace("pbx")
        self.net.link(None, f"gw{self.net.tag}", f"{GW}/24", self.router_ns, "lan",
                      f"{ROUTER_IN}/24")
        self.net.link(self.router_ns, "wan", f"{ROUTER_OUT}/24", self.pbx_ns, "eth0",
                      f"{PBX}/24")
        self.net.route(None, PBX_NET, ROUTER_IN)
        self.net.route(self.pbx_ns, "default", ROUTER_OUT)
        self.router_ns.run(["sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"])

    async def start_pbx_in(self, kamailio: type[KamailioIn] = KamailioIn,
                           port: int | None = None) -> KamailioIn:
        kam = kamailio(self.pbx_ns, PBX, **({} if port is None else {"port": port}))
        self.addCleanup(kam.stop)
        await kam.start()
        self.kam = kam
        return kam

    async def start_phone_in(self) -> BaresipIn:
        self.phone = await tone_phone_in(self, self.pbx_ns, PBX, self.kam.port)
        return self.phone

    def start_gateway_here(self, sip: SipSettings, seconds: float = 3.0) -> Gateway:
        self.media = os.path.abspath(self.mktemp())
        self.recordings = os.path.abspath(self.mktemp())
        os.makedirs(self.media)
        os.makedirs(self.recordings)
        self.addCleanup(shutil.rmtree, self.media, True)
        self.addCleanup(shutil.rmtree, self.recordings, True)
        write_tone_wav(os.path.join(self.media, "tone440.wav"), 440.0, seconds=seconds)
        self.gateway = Gateway(Config(
            http=HttpSettings(listen="127.0.0.1", port=0),
            sip=sip,
            media=MediaSettings(listen=GW, port_min=30000, port_max=30999, rtp_timeout=10.0),
            policy=PolicySettings(allowed_domains=(PBX,)),
            # Overload control off: on a loaded 2-core CI machine it would refuse the test's
            # calls ("Gateway overloaded"), which is not the fault under test here.
            limits=LimitsSettings(max_loop_lag_ms=0, max_cpu_percent=0),
            rest=RestSettings(tokens=(TOKEN,), media_folder=self.media),
            recording=RecordingSettings(folder=self.recordings)))
        self.gateway.start()
        self.addCleanup(self.gateway.stop)
        return self.gateway

    #: the SIP transport of the calls and registrations toward Kamailio
    transport = "udp"

    def startup_body(self, **extra: object) -> dict:
        return {"callee": "1002", "sipLogin": "1001", "sipPassword": "pass1001",
                "sipDomain": PBX, "sipOutboundProxy": PBX, "sipPort": self.kam.port,
                "sipTransport": self.transport, "playFile": "tone440.wav", "record": True,
                **extra}

    async def start_call(self, call_id: str, timeout: float = 40.0) -> dict:
        """A REST call to the phone, up on both sides; what call/find said of it."""
        mark = self.phone.mark()
        code, reply = await self.rest("call/startup", self.startup_body(callId=call_id))
        self.assertEqual((code, reply), (200, {"callId": call_id}))
        await self.phone.wait_event("CALL_ESTABLISHED", since=mark, timeout=timeout)
        code, found = await self.rest("call/find", {"callId": call_id})
        self.assertEqual(code, 200, found)
        return found[0]

    async def hang_up(self, call_id: str, timeout: float = 40.0) -> None:
        """call/terminate: the phone hears the BYE, the gateway ends the call on both legs."""
        mark = self.phone.mark()
        self.assertEqual(await self.rest("call/terminate", {"callId": call_id}), (200, {}))
        await self.phone.wait_event("CALL_CLOSED", since=mark, timeout=timeout)
        await self.gateway.when_idle()

    def assert_audio_both_ways(self, found: dict, calls: int) -> None:
        """The phone's newest recording holds the gateway's 440 Hz, the gateway's the phone's
        1 kHz."""
        heard = self.phone.recordings()
        self.assertEqual(len(heard), calls)
        frequency, level = dominant_hz(heard[-1])
        assert_near(self, frequency, 440, 10)
        self.assertGreater(level, 300)
        frequency, level = dominant_hz(os.path.join(self.recordings, found["recording"]))
        assert_near(self, frequency, 1000, 10)
        self.assertGreater(level, 300)

    def assert_clean(self) -> None:
        self.assertEqual(self.gateway.calls, {})
        self.assertEqual(self.gateway.ports_in_use, 0)


class ToneTrack(MediaStreamTrack):
    """A microphone that plays a sine: 20 ms frames of 48 kHz mono, paced in real time."""

    kind = "audio"
    RATE, SAMPLES = 48000, 960

    def __init__(self, frequency: float) -> None:
        super().__init__()
        self.frequency = frequency
        self._start: float | None = None
        self._pts = 0

    async def recv(self) -> Any:
        if self._start is None:
            self._start = time.monotonic()
        else:
            self._pts += self.SAMPLES
            # pacing the media clock (what a sound card does), not test synchronisation
            await asyncio.sleep(max(0.0, self._start + self._pts / self.RATE - time.monotonic()))
        t = (np.arange(self.SAMPLES) + self._pts) / self.RATE
        samples = (np.sin(2 * np.pi * self.frequency * t) * 8000).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = self.RATE
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, self.RATE)
        return frame


class PythonBrowser:
    """A browser's media end without a browser: aiortc's RTCPeerConnection (ICE, DTLS-SRTP,
    Opus/PCMU as Chromium's stack does them) with a 440 Hz microphone, keeping what it hears.
    Its host candidates are this namespace's veth addresses (aioice leaves out 127.0.0.1)."""

    def __init__(self, frequency: float = 440.0) -> None:
        self.pc = RTCPeerConnection()
        self.pc.addTrack(ToneTrack(frequency))
        self.heard: list[np.ndarray] = []
        self.arrivals: list[float] = []  # when each frame came (time.monotonic())
        self.rate = 48000
        self._readers: list[Any] = []
        self.pc.on("track", self._track)

    def _track(self, track: Any) -> None:
        self._readers.append(asyncio.ensure_future(self._read(track)))

    async def _read(self, track: Any) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            self.arrivals.append(time.monotonic())
            self.rate = frame.sample_rate
            data = frame.to_ndarray()
            self.heard.append(data.reshape(-1, len(frame.layout.channels))[:, 0]
                              if data.size else data)

    def answer(self, offer: str) -> Any:
        async def run() -> str:
            await self.pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
            await self.pc.setLocalDescription(await self.pc.createAnswer())
            return str(self.pc.localDescription.sdp)

        return Deferred.fromFuture(asyncio.ensure_future(run()))

    def offer(self) -> Any:
        """The complete offer (every candidate gathered), as a page gives ``call``."""
        async def run() -> str:
            await self.pc.setLocalDescription(await self.pc.createOffer())
            return str(self.pc.localDescription.sdp)

        return Deferred.fromFuture(asyncio.ensure_future(run()))

    def accept(self, answer: str) -> Any:
        return Deferred.fromFuture(asyncio.ensure_future(
            self.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))))

    def dominant(self, seconds: float = 1.0) -> tuple[float, float]:
        """(frequency, RMS) of the last ``seconds`` heard."""
        if not self.heard:
            return 0.0, 0.0
        samples = np.concatenate(self.heard)[-int(seconds * self.rate):].astype(float)
        spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
        return (float(np.argmax(spectrum)) * self.rate / len(samples),
                float(np.sqrt(np.mean(samples ** 2))))

    def close(self) -> Any:
        async def run() -> None:
            await self.pc.close()
            for reader in self._readers:
                reader.cancel()

        return Deferred.fromFuture(asyncio.ensure_future(run()))


def wait(seconds: float) -> Any:
    return task.deferLater(reactor, seconds, lambda: None)


def notification(ws: Any, method: str, since: int, timeout: float) -> Any:
    """The first notification ``method`` among the frames from index ``since`` on."""
    frames = ws.frames
    return frames.wait_for(lambda frame: frame.get("method") == method and any(
        frame is seen for seen in frames.events[since:]), timeout=timeout)


def session_status(ws: Any, status: str | None, since: int, timeout: float) -> Any:
    """The first ``sessionStatus`` of ``status`` (None: any) among the frames from index
    ``since`` on."""
    frames = ws.frames

    def match(frame: Any) -> bool:
        return (frame.get("method") == "sessionStatus"
                and status in (None, frame.get("params", {}).get("status"))
                and any(frame is seen for seen in frames.events[since:]))

    return frames.wait_for(match, timeout=timeout)


class LossyPathTests(FaultTopology, unittest.TestCase):
    CALLS = 5

    async def lossy(self) -> tuple[KamailioIn, ImpairingRouter, Gateway, Any]:
        """The network, the PBX and phone, the impairing router on the SIP path, the gateway
        and a browser session registered as 1003 through that path (REGISTER, 401, REGISTER)."""
        self.build_network()
        kam = await self.start_pbx_in()
        await self.start_phone_in()
        router = ImpairingRouter(self.router_ns, [("lan", udp_to(kam.port)),
                                                  ("wan", udp_from(kam.port))],
                                 loss=0.2, delay=0.2, seed=15)
        self.addCleanup(router.stop)
        await router.start()
        # RFC 3261's own timers (T1 500 ms, T2 4 s): what a deployed gateway runs with.
        gateway = self.start_gateway_here(SipSettings(listen=GW, port=0))
        ws = await ws_connect(self, gateway.top.getServiceNamed("http").address[1])
        connected = await ws.request("connect", {
            "sipLogin": "1003", "sipPassword": "pass1003", "sipDomain": PBX,
            "sipOutboundProxy": PBX, "sipPort": kam.port})
        self.assertIn("result", connected, connected)
        await session_status(ws, "REGISTERED", 0, timeout=60)
        self.assertEqual(len(await kam.bindings("1003")), 1)
        return kam, router, gateway, ws

    def assert_impaired(self, router: ImpairingRouter, packets: int) -> None:
        """The impairment happened, on the SIP path: packets of both sides lost, packets
        overtaken."""
        counts = router.counts()
        self.assertGreater(counts["dropped"], 0, counts)
        self.assertEqual(set(counts["dropped_from"]), {GW, PBX}, counts)
        self.assertGreater(counts["reordered"], 0, counts)
        self.assertGreaterEqual(counts["received"], packets, counts)

    @inline
    async def test_incoming_calls_reach_a_browser_session_through_loss(self) -> None:
        """The phone calls the session's browser (aiortc, in this process) through the lossy
        path: the gateway as UAS re-sends its 200 until the ACK gets through; audio both ways;
        the browser hangs up (our BYE through the loss)."""
        kam, router, gateway, ws = await self.lossy()
        for n in range(1, 4):
            browser = PythonBrowser(440.0)
            self.addCleanup(browser.close)
            mark, frames = self.phone.mark(), len(ws.frames.events)
            await self.phone.command("dial", f"sip:1003@{PBX}:{kam.port}")
            offered = await notification(ws, "incomingCall", frames, timeout=40)
            call_id = offered["params"]["callId"]
            answer = await browser.answer(offered["params"]["sdp"])
            self.assertEqual((await ws.request("answer", {"callId": call_id, "sdp": answer}))
                             .get("result"), {})
            await self.phone.wait_event("CALL_ESTABLISHED", since=mark, timeout=40)
            await wait(2.5)  # both sides hear and record
            frequency, level = browser.dominant()
            assert_near(self, frequency, 1000, 15)
            self.assertGreater(level, 300)
            mark = self.phone.mark()
            self.assertEqual((await ws.request("hangup", {"callId": call_id})).get("result"), {})
            await self.phone.wait_event("CALL_CLOSED", since=mark, timeout=40)
            await gateway.when_idle()
            await browser.close()
            await self.gateway.ports_released()
            heard = self.phone.recordings()
            self.assertEqual(len(heard), n)
            frequency, level = dominant_hz(heard[-1])
            assert_near(self, frequency, 440, 10)
            self.assert_clean()
        self.assert_impaired(router, packets=8 * 3)

    @inline
    async def test_calls_set_up_carry_audio_and_end_through_20_percent_loss_and_jitter(self) -> None:
        kam, router, gateway, ws = await self.lossy()
        for n in range(1, self.CALLS + 1):
            found = await self.start_call(f"lossy-{n}")
            await wait(2.5)  # the file plays, both sides record
            await self.hang_up(f"lossy-{n}")
            self.assert_audio_both_ways(found, calls=n)
            self.assert_clean()
        self.assert_impaired(router, packets=8 * self.CALLS)
        # Kamailio saw every call's INVITE twice (challenged) and every BYE.
        log = kam.log_text()
        self.assertGreaterEqual(log.count("REQ BYE"), self.CALLS)
        self.assertGreaterEqual(log.count("REQ INVITE"), 2 * self.CALLS)  # each challenged


class PbxRestartTests(FaultTopology, unittest.TestCase):
    async def registered_session(self, transport: str = "udp"
                                 ) -> tuple[Gateway, Any, str, Registration]:
        """Kamailio granting 12 s bindings, the phone, the gateway (Timer F in 6.4 s) and a
        browser session registered as 1001 through Kamailio over ``transport``."""
        self.build_network()
        kam = await self.start_pbx_in(ShortBindingKamailio)
        await self.start_phone_in()
        sip = SipSettings(listen=GW, port=0, t1=0.1, t2=0.8)
        gateway = self.start_gateway_here(sip, seconds=60.0)
        ws = await ws_connect(self, gateway.top.getServiceNamed("http").address[1])
        connected = await ws.request("connect", {
            "sipLogin": "1001", "sipPassword": "pass1001", "sipDomain": PBX,
            "sipOutboundProxy": PBX, "sipPort": kam.port, "sipTransport": transport})
        session_id = connected["result"]["sessionId"]
        await session_status(ws, "REGISTERED", 0, timeout=15)
        registration = gateway.top.call_gateway.sessions[session_id].registration.registration
        self.assertEqual(registration.granted_expires, SHORT_BINDING)
        self.assertEqual(len(await kam.bindings("1001")), 1)
        return gateway, ws, session_id, registration

    async def restart_pbx(self, gateway: Gateway, ws: Any, session_id: str,
                          registration: Registration, call_id: str) -> tuple[KamailioIn, float]:
        """Kill Kamailio during the call ``call_id``, wait for the session to hear the
        registration fail, start Kamailio again on the same address and port, wait for the
        session's REGISTERED; the new Kamailio, and how long the PBX was gone."""
        kam = self.kam
        # The PBX crashes: every process of it killed at once, nothing saved.
        os.killpg(kam.pid, signal.SIGKILL)  # type: ignore[arg-type]
        await kam.stop()
        killed_at = reactor.seconds()
        # The refresh (at 6 s of the 12) meets nobody: Timer F ends it, and the session is
        # told its registration is lost for now — UNREGISTERED naming the retry, not FAILED,
        # which the Web SDK and the Phone UI would take for the session's end.
        mark = len(ws.frames.events)
        failed = await session_status(ws, None, mark, timeout=30)
        self.assertEqual(failed["params"]["status"], "UNREGISTERED", failed)
        self.assertIn("Registration lost", failed["params"]["info"])
        self.assertIn(session_id, gateway.top.call_gateway.sessions)
        self.assertEqual(registration.state, RegistrationState.BACKOFF)
        retry_in = registration.next_deadline() - reactor.seconds()  # type: ignore[operator]
        # RFC 5626 §4.5 backoff, first failure: 50-100 % of 2 s, never below retry_min (1 s).
        self.assertTrue(0.5 <= retry_in <= 2.0, (retry_in, failed))
        # The same Kamailio comes back on the same address and port, knowing nothing.
        restarted = await self.start_pbx_in(ShortBindingKamailio, port=kam.port)
        restarted_at = reactor.seconds()
        mark = len(ws.frames.events)
        await session_status(ws, "REGISTERED", mark, timeout=retry_in + 10)
        self.assertLess(reactor.seconds() - restarted_at, retry_in + 6.4)
        self.assertEqual(len(await restarted.bindings("1001")), 1)
        self.assertIn(call_id, gateway.calls)  # the call never noticed
        return restarted, restarted_at - killed_at

    @inline
    async def test_call_survives_a_pbx_restart_and_the_registration_comes_back(self) -> None:
        """An operator's REST call (the gateway plays and records) through the restart."""
        await self.rest_call_through_restart("udp")

    @inline
    async def test_over_tcp(self) -> None:
        """The same over TCP: the crash resets the connections (the refresh fails at once,
        not by Timer F), and the BYE and the REGISTER retry open new ones to the new
        Kamailio."""
        await self.rest_call_through_restart("tcp")

    async def rest_call_through_restart(self, transport: str) -> None:
        gateway, ws, session_id, registration = await self.registered_session(transport)
        self.transport = transport
        found = await self.start_call("restart")
        await wait(1.0)
        restarted, outage = await self.restart_pbx(gateway, ws, session_id, registration,
                                                   "restart")
        await wait(2.0)
        # The call still hangs up: the BYE through the new Kamailio, by loose routing.
        await self.hang_up("restart")
        byes = [line for line in restarted.log_text().splitlines() if "REQ BYE" in line]
        self.assertTrue(byes, "no BYE crossed the new Kamailio")
        self.assertIn(f"({transport})", byes[0])
        self.assert_audio_both_ways(found, calls=1)
        self.assert_clean()
        # Media went on through the outage: both recordings hold the tone in every half
        # second from their first second to their end (which is after the restart).
        for path, frequency in ((self.phone.recordings()[-1], 440),
                                (os.path.join(self.recordings, found["recording"]), 1000)):
            self.assert_tone_throughout(path, frequency, at_least=outage + 3.0)
        self.assertEqual((await ws.request("disconnect")).get("result"), {})
        await self.phone.stop()  # before the Kamailio it un-REGISTERs at (clean-up is LIFO)

    @inline
    async def test_a_browser_sessions_call_survives_a_pbx_restart(self) -> None:
        """The session's own call, placed by its browser (aiortc in this process: ICE,
        DTLS-SRTP, Opus or PCMU), through the restart; the browser hangs up after it."""
        gateway, ws, session_id, registration = await self.registered_session()
        browser = PythonBrowser(440.0)
        self.addCleanup(browser.close)
        offer = await browser.offer()
        mark, frames = self.phone.mark(), len(ws.frames.events)
        placed = await ws.request("call", {"callee": "1002", "callId": "browser", "sdp": offer})
        self.assertEqual(placed.get("result"), {"callId": "browser"}, placed)
        answered = await ws.frames.wait_for(
            lambda f: f.get("method") == "callStatus" and "sdp" in f.get("params", {})
            and any(f is seen for seen in ws.frames.events[frames:]), timeout=20)
        await browser.accept(answered["params"]["sdp"])
        await self.phone.wait_event("CALL_ESTABLISHED", since=mark)
        await wait(1.0)
        self.assertTrue(browser.heard, "the browser heard nothing before the restart")
        first_heard = browser.arrivals[0]
        _, outage = await self.restart_pbx(gateway, ws, session_id, registration, "browser")
        await wait(2.0)
        frequency, level = browser.dominant()
        assert_near(self, frequency, 1000, 15)
        self.assertGreater(level, 300)
        # no hole in what the browser received, from its first packet on
        gaps = np.diff(np.array(browser.arrivals))
        self.assertLess(float(gaps.max()), 0.5, "the browser's audio stopped for a while")
        self.assertGreater(browser.arrivals[-1] - first_heard, outage + 2.5)
        mark = self.phone.mark()
        self.assertEqual((await ws.request("hangup", {"callId": "browser"})).get("result"), {})
        await self.phone.wait_event("CALL_CLOSED", since=mark)
        await gateway.when_idle()
        self.assertIn("REQ BYE", self.kam.log_text())
        self.assert_tone_throughout(self.phone.recordings()[-1], 440, at_least=outage + 3.0)
        await self.gateway.ports_released()
        self.assert_clean()
        self.assertEqual((await ws.request("disconnect")).get("result"), {})
        await self.phone.stop()

    def assert_tone_throughout(self, path: Any, frequency: float, at_least: float) -> None:
        with wave.open(str(path)) as w:
            rate = w.getframerate()
            samples = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(float)
            if w.getnchannels() > 1:
                samples = samples.reshape(-1, w.getnchannels())[:, 0]
        self.assertGreater(len(samples) / rate, at_least, path)
        chunk = rate // 2
        for start in range(rate, len(samples) - chunk, chunk):
            part = samples[start:start + chunk]
            spectrum = np.abs(np.fft.rfft(part * np.hanning(len(part))))
            peak = float(np.argmax(spectrum)) * rate / len(part)
            level = float(np.sqrt(np.mean(part ** 2)))
            self.assertTrue(abs(peak - frequency) <= 15 and level > 300,
                            f"{path}: at {start / rate:.1f} s {peak:.0f} Hz, RMS {level:.0f}")


class RestartedRegistrarTests(unittest.SynchronousTestCase):
    """What the real Kamailio showed, sans-IO: its challenges carry no qop (RFC 2069 style,
    so no nc tells a reused nonce from a fresh one), and after a restart it refuses the nonce
    it handed out before with a plain 401 and a new nonce — no ``stale=true``.  The REGISTER
    client took that for a wrong password (AUTHENTICATION_FAIL, then 30 s of auth backoff);
    now it answers the new nonce once, and only a refusal of *that* is a wrong password."""

    CONTACT = "sip:1001-x@10.78.1.1:5070"

    def challenge(self, request: Request, nonce: str) -> Response:
        return self.reply(request, 401, ("WWW-Authenticate",
                                         f'Digest realm="{PBX}", nonce="{nonce}"'))

    def reply(self, request: Request, status: int, *extra: tuple[str, str]) -> Response:
        headers = [(n, v) for n, v in request.headers if n in ("From", "Call-ID", "CSeq")]
        headers.append(("To", (request.headers.get("To") or "") + ";tag=reg"))
        if status == 200:
            headers.append(("Contact", f"<{self.CONTACT}>;expires={SHORT_BINDING}"))
        return Response(status, "Reason", [*headers, *extra])

    def registered_then_lost(self) -> tuple[Registration, Request]:
        """Registered with nonce N1; the refresh timed out; the retry, carrying N1 again."""
        from wcsgw.sip.account import SipAccount

        account = SipAccount(login="1001", password="pass1001", domain=PBX)
        reg = Registration(account, self.CONTACT,
                           digest=DigestClient(account.credentials(), cnonce_factory=lambda: "c"))
        first = reg.start(0.0)
        second = reg.receive_response(self.challenge(first, "N1"), 0.0)
        assert second is not None
        self.assertIsNone(reg.receive_response(self.reply(second, 200), 0.0))
        refresh = reg.handle_timer(reg.next_deadline())  # type: ignore[arg-type]
        assert refresh is not None
        reg.transaction_failed(6.0 + 6.4, "timeout")
        self.assertIs(reg.state, RegistrationState.BACKOFF)
        retry = reg.handle_timer(reg.next_deadline())  # type: ignore[arg-type]
        assert retry is not None
        self.assertEqual(parse_authorization(retry.headers.get("Authorization"))["nonce"], "N1")
        reg.take_events()
        return reg, retry

    def test_a_forgotten_nonce_is_answered_with_the_new_one(self) -> None:
        reg, retry = self.registered_then_lost()
        again = reg.receive_response(self.challenge(retry, "N2"), 20.0)
        assert again is not None
        self.assertEqual(parse_authorization(again.headers.get("Authorization"))["nonce"], "N2")
        self.assertIsNone(reg.receive_response(self.reply(again, 200), 20.0))
        self.assertEqual([type(e) for e in reg.take_events()], [Registered])

    def test_a_wrong_password_is_still_one(self) -> None:
        reg, retry = self.registered_then_lost()
        again = reg.receive_response(self.challenge(retry, "N2"), 20.0)
        assert again is not None
        self.assertIsNone(reg.receive_response(self.challenge(again, "N3"), 20.0))
        [failed] = reg.take_events()
        assert isinstance(failed, RegistrationFailed)
        self.assertTrue(failed.auth)
        self.assertGreaterEqual(failed.retry_in, reg.auth_retry_min)
