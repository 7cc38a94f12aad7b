"""RTP bleed (issue 10, item 5), through real sockets.

The SIP side's media port is a UDP port anyone can send to.  Before the fix the first packet
from any source latched it (the gateway then sent the call's audio there), and after ~1 s of
silence from the real phone any other source took it back.  Now the latch takes only a
source whose IP is the SDP's ``c=`` or the IP the SDP's SIP message came from, and moves
only with a new offer/answer (wcsgw/media/udp.py).

The gateway places a REST call (``playFile`` 440 Hz, ``record``: a FileCall, so what the
gateway sends and what it received are both checked by content) to a far end that is either
a scripted phone (tests/peers/sipua.py answering, an in-process RTP peer playing 1 kHz that
talks, goes quiet and talks again on cue) or a real baresip through Kamailio.  The attacker
is a raw UDP socket on another loopback address (127.0.0.2: all of 127/8 is on lo in the
tests' namespace) spraying RTP (3 kHz) and RTCP at the gateway's SIP-side ports from the
moment the INVITE leaves until the call ends: before the phone's first packet, while it
talks, and while it is quiet.  It must receive nothing, the phone must hear the file, and
the recording must hold the phone's tone, not the attacker's.

NAT: a phone whose SDP names one port (or a private address) but whose packets come from
another port of the signalling's IP is latched, and hears the call there.
"""

from __future__ import annotations

import os
from typing import Any, Callable

import attrs
import numpy as np
from twisted.internet import defer, reactor, task
from twisted.internet.protocol import DatagramProtocol
from twisted.trial import unittest

from tests.e2e import TOKEN, Gateway, PeersMixin, dominant_hz, gateway_config
from tests.peers.chromium import write_tone_wav
from tests.peers.sipua import SipUA
from tests.quality import dominant, tone
from tests.support import EventLog, assert_near, inline
from wcsgw.config import RecordingSettings, RestSettings
from wcsgw.media.g711 import ulaw_decode, ulaw_encode
from wcsgw.media.rtcp import build_rr
from wcsgw.media.rtp import build_rtp, is_rtcp, rtp_payload
from wcsgw.sdp.codecs import Codec

HOST = "127.0.0.1"
ATTACKER_HOST = "127.0.0.2"
#: a NATed phone's own (private) address, named in its SDP; nothing listens there
PRIVATE_HOST = "127.0.0.3"
PHONE_HZ, FILE_HZ, ATTACKER_HZ = 1000.0, 440.0, 3000.0
RATE, FRAME = 8000, 160  # PCMU, 20 ms


async def until(condition: Callable[[], bool], timeout: float = 15.0, what: str = "") -> None:
    """Wait for ``condition`` (a gateway counter, ...), checked every 10 ms."""
    deadline = reactor.seconds() + timeout
    while not condition():
        if reactor.seconds() > deadline:
            raise AssertionError(f"not within {timeout} s: {what or condition}")
        await task.deferLater(reactor, 0.01, lambda: None)


class _Socket(DatagramProtocol):
    def __init__(self, log: EventLog) -> None:
        self.log = log

    def datagramReceived(self, data: bytes, addr: Any) -> None:  # noqa: N802 (Twisted API)
        self.log((data, (addr[0], addr[1])))


class TonePeer:
    """A UDP socket on ``host`` that can send a PCMU tone (RTP every 20 ms, an RTCP receiver
    report every 100 ms to the next port) and records whatever reaches it."""

    def __init__(self, host: str, frequency: float, ssrc: int) -> None:
        self.received = EventLog()  # (bytes, source)
        self.listening = reactor.listenUDP(0, _Socket(self.received), interface=host)
        self.port: int = self.listening.getHost().port
        self.ssrc = ssrc
        self._samples = tone(frequency, RATE, 1.0)  # a whole number of periods: loops cleanly
        self._sent = 0
        self._loop: task.LoopingCall | None = None
        self._target: tuple[str, int] = ("", 0)

    def talk(self, host: str, rtp_port: int) -> None:
        self._target = (host, rtp_port)
        if self._loop is None or not self._loop.running:
            self._loop = task.LoopingCall(self._send)
            self._loop.start(0.02)

    def quiet(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()

    @property
    def sent(self) -> int:
        return self._sent

    def _send(self) -> None:
        start = (self._sent * FRAME) % RATE
        payload = ulaw_encode(self._samples[start:start + FRAME])
        packet = build_rtp(payload_type=0, sequence=self._sent & 0xFFFF,
                           timestamp=(self._sent * FRAME) & 0xFFFFFFFF, ssrc=self.ssrc,
                           payload=payload)
        host, port = self._target
        self.listening.write(packet, (host, port))
        if self._sent % 5 == 0:
            self.listening.write(build_rr(self.ssrc), (host, port + 1))
        self._sent += 1

    def audio(self) -> np.ndarray:
        """What this socket received as RTP, decoded (PCMU), in arrival order."""
        payloads = [rtp_payload(data) for data, _ in self.received.events if not is_rtcp(data)]
        return ulaw_decode(b"".join(payloads)) if payloads else np.zeros(0, dtype=np.int16)

    def close(self) -> defer.Deferred:
        self.quiet()
        return defer.maybeDeferred(self.listening.stopListening)


class PhoneMedia:
    """The scripted phone's media (what tests/peers/sipua.py's factory returns).  Its SDP
    names ``port`` at ``address``.  Without NAT it sends from that very port; behind NAT
    (``nat``) from another socket of 127.0.0.1, as a NAT box would rewrite it."""

    def __init__(self, gateway: tuple[str, int], *, nat: bool = False,
                 address: str = HOST) -> None:
        self.gateway = gateway
        self.voice = TonePeer(HOST, PHONE_HZ, ssrc=0x1001)
        self.named = TonePeer(HOST, PHONE_HZ, ssrc=0x1001) if nat else self.voice
        self.port = self.named.port
        self.address = address

    def talk(self) -> None:
        self.voice.talk(*self.gateway)

    def quiet(self) -> None:
        self.voice.quiet()

    def stop(self) -> defer.Deferred:
        peers = {id(p): p for p in (self.voice, self.named)}.values()
        return defer.gatherResults([p.close() for p in peers], consumeErrors=True)


class RtpBleedCase(PeersMixin, unittest.TestCase):
    timeout = 90

    def folders(self) -> RestSettings:
        """A media folder with a 440 Hz file long enough for the whole call, and a
        recordings folder: REST settings for the gateway."""
        self.media = os.path.abspath(self.mktemp())
        self.recordings = os.path.abspath(self.mktemp())
        os.makedirs(self.media)
        os.makedirs(self.recordings)
        write_tone_wav(os.path.join(self.media, "tone440.wav"), FILE_HZ, seconds=30.0)
        return RestSettings(tokens=(TOKEN,), media_folder=self.media)

    def attacker(self) -> TonePeer:
        peer = TonePeer(ATTACKER_HOST, ATTACKER_HZ, ssrc=0xBAD)
        self.addCleanup(peer.close)
        return peer

    async def attack(self, attacker: TonePeer, packets: int, what: str) -> None:
        """Let the attacker send ``packets`` more RTP packets (20 ms apart; an RTCP report
        every fifth), then check it got nothing back."""
        sent = attacker.sent
        await until(lambda: attacker.sent >= sent + packets, what=what)
        self.assertEqual(attacker.received.events[:1], [], f"the attacker got packets {what}")

    async def start_call(self, body: dict[str, Any], call_id: str) -> Any:
        """REST call/startup (playFile, record) and the gateway's call object."""
        code, reply = await self.rest("call/startup", {
            **body, "callId": call_id, "playFile": "tone440.wav", "record": True})
        self.assertEqual((code, reply), (200, {"callId": call_id}))
        call = self.gateway.calls[call_id]
        self.assertIsNotNone(call.rtp)
        return call

    async def end_call(self, call_id: str) -> tuple[float, float]:
        """Terminate over REST; (dominant frequency, RMS level) of what the gateway recorded
        from the SIP side."""
        self.assertEqual(await self.rest("call/terminate", {"callId": call_id}), (200, {}))
        await self.gateway.when_idle()
        [recording] = os.listdir(self.recordings)
        return dominant_hz(os.path.join(self.recordings, recording))

    def assert_hears(self, samples: np.ndarray, frequency: float, what: str) -> None:
        samples = samples[RATE // 2:]  # past the start
        self.assertGreater(len(samples), RATE // 2, f"{what}: too little audio")
        assert_near(self, dominant(samples, RATE), frequency, 10)


class ScriptedPhoneTests(RtpBleedCase):
    """The far end is tests/peers/sipua.py with an in-process RTP peer: the test decides when
    the phone talks and when it is quiet.  The call goes straight to it (it is the account's
    outbound proxy), so the signalling comes from 127.0.0.1."""

    async def call_scripted_phone(self, *, nat: bool = False, address: str = HOST
                                  ) -> tuple[Any, PhoneMedia]:
        self.phones: list[PhoneMedia] = []

        async def media(host: str, port: int, pt: int, local: Any) -> PhoneMedia:
            phone = PhoneMedia((host, port), nat=nat, address=address)
            self.phones.append(phone)
            return phone

        self.ua = SipUA(Codec("PCMU", 8000, 1, 0), media, user="1002")
        self.ua.start()
        self.addCleanup(self.ua.stop)
        config = attrs.evolve(gateway_config(allowed_domains=("127.0.0.1",), t1=0.1, t2=0.8),
                              rest=self.folders(),
                              recording=RecordingSettings(folder=self.recordings))
        self.gateway = Gateway(config)
        self.gateway.start()
        self.addCleanup(self.gateway.stop)
        self.body = {"callee": "1002", "sipLogin": "1001", "sipPassword": "pass1001",
                     "sipDomain": "127.0.0.1", "sipOutboundProxy": "127.0.0.1",
                     "sipPort": self.ua.port}
        return self.body, self.phones

    @inline
    async def test_attacker_before_during_and_after_silence_gets_nothing(self) -> None:
        body, phones = await self.call_scripted_phone()
        attacker = self.attacker()
        call = await self.start_call(body, "bleed-1")
        rtp = call.rtp
        # Before the phone's first packet: the INVITE is out, the attacker sprays.
        attacker.talk(HOST, rtp.rtp_port)
        far = await self.ua.next_call(0)
        await far.confirmed()
        [phone] = phones
        await self.attack(attacker, 25, "before the phone's first packet")
        self.assertEqual(rtp.remote_rtp, (HOST, phone.port))  # still the SDP's address
        # The phone talks: it latches (to the same address, now confirmed by its packets).
        phone.talk()
        await until(lambda: rtp.rtp_latch.latched, what="the phone latched")
        self.assertEqual(rtp.remote_rtp, (HOST, phone.voice.port))
        # The phone goes quiet (hold music off, VAD, a long pause): longer than the 1 s after
        # which any source used to take the call over.  The gateway keeps sending it the file.
        await until(lambda: len(phone.voice.audio()) >= RATE, what="the phone hears audio")
        phone.quiet()
        heard = len(phone.voice.received.events)
        await self.attack(attacker, 100, "while the phone was quiet for 2 s")
        self.assertGreater(len(phone.voice.received.events), heard + 50)
        self.assertEqual(rtp.remote_rtp, (HOST, phone.voice.port))
        # ... and talks again: its audio still gets through.
        phone.talk()
        sent = phone.voice.sent
        await until(lambda: phone.voice.sent >= sent + 75, what="the phone talking again")
        recorded_hz, level = await self.end_call("bleed-1")
        self.assertEqual(attacker.received.events, [], "the attacker got packets")
        self.assertGreater(call.rtp.rtp_latch.rejected, 200)
        self.assertGreater(call.rtp.rtcp_latch.rejected, 40)
        self.assert_hears(phone.voice.audio(), FILE_HZ, "the phone")
        assert_near(self, recorded_hz, PHONE_HZ, 10)  # the phone's tone, not the attacker's
        self.assertGreater(level, 300)

    @inline
    async def test_nat_other_port_of_the_sdp_address_is_latched(self) -> None:
        body, phones = await self.call_scripted_phone(nat=True)
        attacker = self.attacker()
        call = await self.start_call(body, "nat-1")
        far = await self.ua.next_call(0)
        await far.confirmed()
        [phone] = phones
        self.assertNotEqual(phone.voice.port, phone.port)
        attacker.talk(HOST, call.rtp.rtp_port)
        await self.attack(attacker, 10, "before the phone's first packet")
        phone.talk()
        await until(lambda: len(phone.voice.audio()) >= 2 * RATE, what="the phone hears 2 s")
        self.assertEqual(call.rtp.remote_rtp, (HOST, phone.voice.port))
        recorded_hz, level = await self.end_call("nat-1")
        self.assert_hears(phone.voice.audio(), FILE_HZ, "the phone (NAT port)")
        assert_near(self, recorded_hz, PHONE_HZ, 10)
        self.assertGreater(level, 300)
        self.assertEqual(attacker.received.events, [])

    @inline
    async def test_nat_private_sdp_address_latched_by_signalling_ip(self) -> None:
        # The SDP names the phone's private address; its packets come from the address its
        # SIP came from (127.0.0.1), another port: that is the IP the gateway trusts.
        body, phones = await self.call_scripted_phone(nat=True, address=PRIVATE_HOST)
        attacker = self.attacker()
        call = await self.start_call(body, "nat-2")
        far = await self.ua.next_call(0)
        await far.confirmed()
        [phone] = phones
        self.assertEqual(call.rtp.remote_rtp, (PRIVATE_HOST, phone.port))  # the SDP's, at first
        attacker.talk(HOST, call.rtp.rtp_port)
        await self.attack(attacker, 10, "before the phone's first packet")
        phone.talk()
        await until(lambda: len(phone.voice.audio()) >= 2 * RATE, what="the phone hears 2 s")
        self.assertEqual(call.rtp.remote_rtp, (HOST, phone.voice.port))
        recorded_hz, level = await self.end_call("nat-2")
        self.assert_hears(phone.voice.audio(), FILE_HZ, "the phone (behind NAT)")
        assert_near(self, recorded_hz, PHONE_HZ, 10)
        self.assertGreater(level, 300)
        self.assertEqual(attacker.received.events, [])


class BaresipTests(RtpBleedCase):
    """The legitimate path with real peers: baresip 1002 through Kamailio (the signalling
    comes from Kamailio, the media from baresip, both on 127.0.0.1), attacked all along."""

    timeout = 120

    @inline
    async def test_attacker_gets_nothing_and_audio_flows_both_ways(self) -> None:
        config = attrs.evolve(gateway_config(allowed_domains=("127.0.0.1",), t1=0.1, t2=0.8),
                              rest=self.folders(),
                              recording=RecordingSettings(folder=self.recordings))
        phone = await self.start_pbx_and_phone(config, codecs="PCMU")  # it plays 1 kHz
        attacker = self.attacker()
        body = {"callee": "1002", "sipLogin": "1001", "sipPassword": "pass1001",
                "sipDomain": "127.0.0.1", "sipOutboundProxy": "127.0.0.1",
                "sipPort": self.kam.port}
        call = await self.start_call(body, "bleed-2")
        attacker.talk(HOST, call.rtp.rtp_port)  # from before the phone answers
        await phone.wait_event("CALL_ESTABLISHED")
        await self.attack(attacker, 100, "during the call")
        mark = phone.mark()
        recorded_hz, level = await self.end_call("bleed-2")
        await phone.wait_event("CALL_CLOSED", since=mark)  # its recording is complete
        self.assertEqual(attacker.received.events, [], "the attacker got packets")
        self.assertGreater(call.rtp.rtp_latch.rejected, 100)  # dropped and counted
        [heard] = phone.recordings()
        frequency, phone_level = dominant_hz(heard)
        assert_near(self, frequency, FILE_HZ, 10)
        self.assertGreater(phone_level, 300)
        assert_near(self, recorded_hz, PHONE_HZ, 10)
        self.assertGreater(level, 300)
