"""WebRtcLeg over real loopback UDP against a scripted browser (aioice STUN + aiortc DTLS client).

The Chromium test (test_webrtc_chromium) proves interop; these pin the leg's own rules with
a peer we control: what is answered, what is dropped, the timeouts and the close path.
"""

from __future__ import annotations

import socket
import struct
from typing import Any, Optional

from aioice import stun
from aiortc.rtcdtlstransport import (
    RTCCertificate,
    RTCDtlsFingerprint,
    RTCDtlsParameters,
    RTCDtlsTransport,
)
from twisted.internet import defer, reactor
from twisted.internet.protocol import DatagramProtocol
from twisted.trial import unittest

from tests.dtlspeer import DatagramChannel
from tests.peers.ports import free_port
from tests.support import EventLog, deferred_sleep, inline
from wcsgw.loop import as_deferred
from wcsgw.media.ports import PortAllocator
from wcsgw.webrtc.leg import LegError, WebRtcLeg
from wcsgw.webrtc.stun import make_ice_credentials

HOST = "127.0.0.1"


def rtp(seq: int, ssrc: int = 0xCAFE, pt: int = 0) -> bytes:
    return struct.pack("!BBHII", 0x80, pt, seq, seq * 160, ssrc) + bytes([seq & 0xFF]) * 160


def rtcp_rr(ssrc: int = 0xCAFE) -> bytes:
    return struct.pack("!BBHI", 0x80, 201, 1, ssrc)


class ScriptedBrowser(DatagramProtocol):
    """Just enough of a browser: checks with the leg's credentials, DTLS client, SRTP."""

    def __init__(self, leg: WebRtcLeg) -> None:
        self.leg = leg
        self.target = (leg.host, leg.port)
        self.creds = make_ice_credentials()
        self.responses = EventLog()
        self.rtp = EventLog()
        self.rtcp = EventLog()
        self.channel = DatagramChannel(self._send)
        self.cert = RTCCertificate.generateCertificate()
        self.dtls = RTCDtlsTransport(self.channel, [self.cert])  # type: ignore[arg-type]
        self.dtls._set_role("client")
        self.dtls_states = EventLog()
        self.dtls.on("statechange", lambda: self.dtls_states(self.dtls.state))
        self.port = reactor.listenUDP(0, self, interface=HOST)
        self.address = (HOST, self.port.getHost().port)

    @property
    def fingerprint(self) -> tuple[str, str]:
        f = self.dtls.getLocalParameters().fingerprints[0]
        return (f.algorithm, f.value)

    def _send(self, data: bytes) -> None:
        self.transport.write(data, self.target)

    def datagramReceived(self, data: bytes, addr: Any) -> None:  # noqa: N802
        if data[0] < 4:
            self.responses(stun.parse_message(data))
        elif 19 < data[0] < 64:
            self.channel.feed(data)
        elif self.dtls._rx_srtp is not None:
            if 191 < data[1] < 224:
                self.rtcp(self.dtls._rx_srtp.unprotect_rtcp(data))
            else:
                self.rtp(self.dtls._rx_srtp.unprotect(data))

    def check(self, use_candidate: bool = False, key: Optional[str] = None,
              via: Optional[DatagramProtocol] = None) -> bytes:
        msg = stun.Message(stun.Method.BINDING, stun.Class.REQUEST)
        msg.attributes["USERNAME"] = f"{self.leg.ice_ufrag}:{self.creds.ufrag}"
        msg.attributes["PRIORITY"] = 100
        msg.attributes["ICE-CONTROLLING"] = 1
        if use_candidate:
            msg.attributes["USE-CANDIDATE"] = None
        msg.add_message_integrity((key or self.leg.ice_pwd).encode())
        (via or self).transport.write(bytes(msg), self.target)
        return msg.transaction_id

    async def answered(self, tid: bytes) -> stun.Message:
        return await self.responses.wait_for(lambda m: m.transaction_id == tid, timeout=5)

    def start_dtls(self) -> defer.Deferred:
        algo, value = self.leg.fingerprint
        return as_deferred(self.dtls.start(
            RTCDtlsParameters(fingerprints=[RTCDtlsFingerprint(algo, value)], role="server")))

    def send_rtp(self, packet: bytes, via: Optional[DatagramProtocol] = None) -> None:
        (via or self).transport.write(self.dtls._tx_srtp.protect(packet), self.target)

    def send_rtcp(self, packet: bytes) -> None:
        self.transport.write(self.dtls._tx_srtp.protect_rtcp(packet), self.target)

    async def close(self) -> None:
        self.channel.close()
        await as_deferred(self.dtls.stop())
        await defer.maybeDeferred(self.port.stopListening)


class Bystander(DatagramProtocol):
    """Another socket on the same host (a stranger, or the browser's second candidate)."""

    def __init__(self) -> None:
        self.received = EventLog()

    def datagramReceived(self, data: bytes, addr: Any) -> None:  # noqa: N802
        self.received(data)


def allocator(size: int = 40) -> PortAllocator:
    """A real allocator on a range starting at a port free right now."""
    base = min(free_port("udp"), 65535 - size)
    return PortAllocator(HOST, base, base + size - 1)


class RacingAllocator(PortAllocator):
    """Hands out a port someone else took after the bind test (the race the leg retries)."""

    def __init__(self, busy: int) -> None:
        super().__init__(HOST, 1024, 65535)
        self.busy = busy
        self.calls: list[list[int]] = []
        self.released: list[int] = []

    def allocate(self, count: int = 1, even: bool = False) -> list[int]:
        ports = [self.busy] if not self.calls else super().allocate(count, even)
        self.calls.append(ports)
        return ports

    def release(self, ports) -> None:  # type: ignore[override]
        self.released.extend(ports)
        super().release(ports)


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
        return True


class LegTests(unittest.TestCase):
    def make_leg(self, **kwargs: Any) -> tuple[WebRtcLeg, ScriptedBrowser, EventLog]:
        leg = WebRtcLeg(reactor, HOST, **kwargs)
        states = EventLog()
        leg.on_state = states
        self.addCleanup(leg.close)
        browser = ScriptedBrowser(leg)
        self.addCleanup(browser.close)
        leg.set_remote(browser.creds.ufrag, browser.creds.pwd, browser.fingerprint)
        return leg, browser, states

    async def connect(self, leg: WebRtcLeg, browser: ScriptedBrowser, states: EventLog) -> None:
        leg.start()
        await browser.answered(browser.check())
        dtls = browser.start_dtls()
        await states.wait_for(lambda s: s == "connected", timeout=5)
        await dtls
        self.assertEqual(browser.dtls.state, "connected")

    def test_attributes_ready_before_start(self) -> None:
        leg, _, _ = self.make_leg(advertised_host="192.0.2.10")
        self.assertEqual(leg.host, "192.0.2.10")
        self.assertGreater(leg.port, 0)
        self.assertGreaterEqual(len(leg.ice_ufrag), 4)
        self.assertGreaterEqual(len(leg.ice_pwd), 22)
        self.assertEqual(leg.fingerprint[0], "sha-256")
        self.assertEqual(leg.state, "new")

    def test_port_taken_after_the_bind_test_is_retried(self) -> None:
        squatter = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(squatter.close)
        squatter.bind((HOST, 0))
        busy = squatter.getsockname()[1]
        alloc = RacingAllocator(busy)
        leg = WebRtcLeg(reactor, HOST, allocator=alloc)
        self.addCleanup(leg.close)
        self.assertEqual(alloc.released, [busy])
        self.assertEqual(len(alloc.calls), 2)
        self.assertEqual(leg.port, alloc.calls[1][0])
        self.assertNotEqual(leg.port, busy)

    def test_start_needs_set_remote_and_runs_once(self) -> None:
        leg = WebRtcLeg(reactor, HOST)
        self.addCleanup(leg.close)
        self.assertRaises(LegError, leg.start)
        leg.set_remote("abcd", "x" * 22, ("sha-256", ":".join(["AA"] * 32)))
        leg.start()
        self.assertRaises(LegError, leg.start)

    @inline
    async def test_call_path_media_both_ways_then_close(self) -> None:
        alloc = allocator()
        leg, browser, states = self.make_leg(allocator=alloc)
        self.assertEqual(alloc.in_use, {leg.port})
        got_rtp, got_rtcp = EventLog(), EventLog()
        leg.on_rtp = lambda packet, now: got_rtp(packet)
        leg.on_rtcp = lambda packet, now: got_rtcp(packet)
        await self.connect(leg, browser, states)
        self.assertEqual(states.events, ["checking", "connected"])
        self.assertEqual(leg.remote_address, browser.address)
        self.assertIn(leg.srtp.profile, ("SRTP_AEAD_AES_256_GCM", "SRTP_AEAD_AES_128_GCM",
                                         "SRTP_AES128_CM_SHA1_80"))

        browser.send_rtp(rtp(1))
        browser.send_rtcp(rtcp_rr())
        self.assertEqual(await got_rtp.wait_for(lambda p: True, timeout=5), rtp(1))
        self.assertEqual(await got_rtcp.wait_for(lambda p: True, timeout=5), rtcp_rr())

        leg.send_rtp(rtp(7, ssrc=0xBEEF))
        leg.send_rtcp(rtcp_rr(0xBEEF))
        self.assertEqual(await browser.rtp.wait_for(lambda p: True, timeout=5), rtp(7, ssrc=0xBEEF))
        self.assertEqual(await browser.rtcp.wait_for(lambda p: True, timeout=5), rtcp_rr(0xBEEF))
        self.assertEqual((leg.rtp_in, leg.rtcp_in, leg.rtp_out, leg.rtcp_out), (1, 1, 1, 1))
        self.assertLessEqual(leg.started_at, leg.ice_connected_at)
        self.assertLessEqual(leg.ice_connected_at, leg.connected_at)
        self.assertLessEqual(leg.connected_at, leg.first_rtp_at)

        port = leg.port
        self.assertFalse(port_is_free(port))
        await leg.close()
        self.assertEqual(states.events[-1], "closed")
        self.assertTrue(port_is_free(port))
        self.assertEqual(alloc.in_use, frozenset())
        # The browser was told: close_notify ends its DTLS transport.
        await browser.dtls_states.wait_for(lambda s: s == "closed", timeout=5)
        # A second close is harmless and reports nothing new.
        await leg.close()
        self.assertEqual(states.events.count("closed"), 1)

    @inline
    async def test_media_from_unchecked_address_dropped(self) -> None:
        leg, browser, states = self.make_leg()
        got = EventLog()
        leg.on_rtp = lambda packet, now: got(packet)
        await self.connect(leg, browser, states)
        stranger = Bystander()
        p = reactor.listenUDP(0, stranger, interface=HOST)
        self.addCleanup(p.stopListening)
        browser.send_rtp(rtp(1), via=stranger)  # valid SRTP, but from an unchecked address
        browser.send_rtp(rtp(2))
        self.assertEqual(await got.wait_for(lambda pk: True, timeout=5), rtp(2))
        self.assertEqual(got.events, [rtp(2)])
        self.assertEqual(leg.dropped_in, 1)

    @inline
    async def test_second_checked_address_accepted_nomination_moves_sending(self) -> None:
        leg, browser, states = self.make_leg()
        got = EventLog()
        leg.on_rtp = lambda packet, now: got(packet)
        await self.connect(leg, browser, states)
        other = Bystander()
        p = reactor.listenUDP(0, other, interface=HOST)
        self.addCleanup(p.stopListening)
        # Chrome may check (and nominate) another pair: both are then allowed to send.
        tid = browser.check(use_candidate=True, via=other)
        answer = stun.parse_message(await other.received.wait_for(lambda d: True, timeout=5))
        self.assertEqual(answer.transaction_id, tid)
        self.assertEqual(answer.attributes["XOR-MAPPED-ADDRESS"], (HOST, p.getHost().port))
        browser.send_rtp(rtp(3), via=other)
        self.assertEqual(await got.wait_for(lambda pk: True, timeout=5), rtp(3))
        self.assertEqual(leg.remote_address, ("127.0.0.1", p.getHost().port))

    @inline
    async def test_bad_integrity_unanswered_and_not_authenticated(self) -> None:
        leg, browser, states = self.make_leg()
        leg.start()
        bad = browser.check(key="notthepasswordnotthepassword")
        good = browser.check()
        await browser.answered(good)
        self.assertEqual([m.transaction_id for m in browser.responses.events], [good])
        self.assertNotIn(bad, [m.transaction_id for m in browser.responses.events])

    @inline
    async def test_send_before_connected_dropped(self) -> None:
        leg, browser, states = self.make_leg()
        leg.start()
        await browser.answered(browser.check())
        leg.send_rtp(rtp(1))
        leg.send_rtcp(rtcp_rr())
        self.assertEqual(leg.dropped_out, 2)
        self.assertEqual(leg.rtp_out, 0)

    @inline
    async def test_no_checks_at_all_fails_ice(self) -> None:
        leg, browser, states = self.make_leg(consent_timeout=0.3)
        leg.start()
        await states.wait_for(lambda s: s.startswith("failed"), timeout=5)
        self.assertEqual(states.events, ["checking", "failed:ice"])

    @inline
    async def test_consent_lost_after_connected_fails_ice(self) -> None:
        leg, browser, states = self.make_leg(consent_timeout=0.5)
        await self.connect(leg, browser, states)
        start = reactor.seconds()
        await states.wait_for(lambda s: s == "failed:ice", timeout=5)
        elapsed = reactor.seconds() - start
        self.assertGreater(elapsed, 0.2)
        self.assertLess(elapsed, 2.0)
        # A failed leg answers nothing more and forwards nothing.
        tid = browser.check()
        got = EventLog()
        leg.on_rtp = lambda packet, now: got(packet)
        browser.send_rtp(rtp(5))
        await leg.close()
        self.assertNotIn(tid, [m.transaction_id for m in browser.responses.events])
        self.assertEqual(got.events, [])
        self.assertEqual(states.events, ["checking", "connected", "failed:ice", "closed"])

    @inline
    async def test_checks_keep_consent(self) -> None:
        leg, browser, states = self.make_leg(consent_timeout=0.6)
        await self.connect(leg, browser, states)
        for _ in range(6):  # 1.2 s of checks every 0.2 s: twice the timeout
            await browser.answered(browser.check())
            await deferred_sleep(0.2)  # the scenario: a check every 0.2 s
        self.assertEqual(leg.state, "connected")
        await states.wait_for(lambda s: s == "failed:ice", timeout=5)

    @inline
    async def test_no_dtls_after_ice_fails_dtls(self) -> None:
        leg, browser, states = self.make_leg(dtls_timeout=0.3)
        leg.start()
        await browser.answered(browser.check())
        await states.wait_for(lambda s: s.startswith("failed"), timeout=5)
        self.assertEqual(states.events, ["checking", "failed:dtls"])

    @inline
    async def test_wrong_fingerprint_fails_dtls(self) -> None:
        leg, browser, states = self.make_leg()
        leg.set_remote(browser.creds.ufrag, browser.creds.pwd, ("sha-256", ":".join(["00"] * 32)))
        leg.start()
        await browser.answered(browser.check())
        browser.start_dtls()
        await states.wait_for(lambda s: s.startswith("failed"), timeout=5)
        self.assertEqual(states.events, ["checking", "failed:dtls"])

    @inline
    async def test_browser_close_notify_closes_leg(self) -> None:
        leg, browser, states = self.make_leg()
        await self.connect(leg, browser, states)
        await as_deferred(browser.dtls.stop())
        await states.wait_for(lambda s: s == "closed", timeout=5)
        port = leg.port
        self.assertFalse(port_is_free(port))  # the port is kept until close()
        await leg.close()
        self.assertTrue(port_is_free(port))
        self.assertEqual(states.events, ["checking", "connected", "closed"])
