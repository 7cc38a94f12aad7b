"""RFC 4733 DTMF against a real phone (baresip), on loopback, without a proxy.

The gateway's SipService calls the phone's own contact with a PCMU + telephone-event offer
pointing at an RtpSocket; a MediaBridge sits behind the socket exactly as in a call (its
WebRTC leg is played by this test: PCMU — or Opus, to transcode — every 20 ms from a
LoopingCall, packets toward the "browser" collected), and its DTMF cadence is driven by
reactor.callLater at the bridge's deadlines, the way the call layer does it. The phone must report the digits we generate
(CALL_DTMF_START/END), and the digits it sends (``sndcode``) must come out of the bridge's
``on_dtmf_from_sip`` once each, in order.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from twisted.internet import reactor, task
from twisted.trial import unittest

from tests.peers.baresip import Baresip
from tests.peers.ports import free_port
from tests.support import EventLog, inline
from wcsgw.config import SipSettings
from wcsgw.media.bridge import SIP, LegMedia, MediaBridge
from wcsgw.media.dtmfdetector import DtmfDetector
from wcsgw.media.opus import OpusEncoder
from wcsgw.media.ports import PortAllocator
from wcsgw.media.rtp import build_rtp, parse_rtp
from wcsgw.media.udp import RtpSocket
from wcsgw.sdp.parser import parse_sdp
from wcsgw.sip.account import SipAccount
from wcsgw.sip.invite import Answered, Ended, Failed, OutgoingInvite
from wcsgw.sip.service import SipService

FAST = SipSettings(listen="127.0.0.1", port=0, t1=0.05, t2=0.4, t4=0.5)
HOST = "127.0.0.1"
TE = 101


def offer(rtp_port: int) -> bytes:
    return (
        "v=0\r\n"
        "o=wcsgw 1 1 IN IP4 127.0.0.1\r\n"
        "s=-\r\n"
        "c=IN IP4 127.0.0.1\r\n"
        "t=0 0\r\n"
        f"m=audio {rtp_port} RTP/AVP 0 {TE}\r\n"
        "a=rtpmap:0 PCMU/8000\r\n"
        f"a=rtpmap:{TE} telephone-event/8000\r\n"
        f"a=fmtp:{TE} 0-15\r\n"
        "a=ptime:20\r\n"
        "a=sendrecv\r\n"
    ).encode()


class DtmfWithBaresipTests(unittest.TestCase):
    timeout = 60

    async def call_phone(self, transcode: bool = False) -> tuple[Baresip, MediaBridge, EventLog, list[bytes], EventLog]:
        gateway = SipService(FAST)
        gateway.startService()
        self.addCleanup(gateway.stopService)
        phone = Baresip("1002", codecs="PCMU")  # no registrar: called at its contact
        self.addCleanup(phone.stop)  # (cleanups run last-in first-out: the phone stops first)
        await phone.start()

        first = free_port("udp", HOST, span=4)
        rtp = RtpSocket(reactor, PortAllocator(HOST, first, first + 3))
        self.addCleanup(rtp.close)
        account = SipAccount(login="1001", domain=HOST, port=phone.sip_port, register=False)
        events = EventLog()
        assert gateway.endpoint is not None and gateway.transport is not None
        mark = phone.mark()
        invite = OutgoingInvite(gateway.endpoint, account, phone.contact, offer(rtp.port), listener=events)
        invite.start(reactor.seconds())
        answered = await events.wait_for(lambda e: isinstance(e, (Answered, Failed)))
        self.assertIsInstance(answered, Answered)
        await phone.wait_event("CALL_ESTABLISHED", since=mark)

        def hangup() -> Any:
            if not any(isinstance(e, (Ended, Failed)) for e in events.events):
                invite.hangup(reactor.seconds())
                return events.wait_for(lambda e: isinstance(e, Ended))
            return None

        self.addCleanup(hangup)

        answer = parse_sdp(answered.sdp)
        audio = answer.media[0]
        codecs = {c.name.lower(): c for c in audio.codecs()}
        self.assertIn("telephone-event", codecs)  # baresip takes RFC 4733
        rtp.set_remote(answer.connection_for(audio).address, audio.port)

        to_browser: list[bytes] = []
        sent_to_sip: list[bytes] = []

        def send_to_sip(packet: bytes) -> None:
            sent_to_sip.append(packet)
            rtp.send_rtp(packet)

        digits = EventLog()
        if transcode:  # the browser sends Opus: events go out on the G.711 stream made from it
            browser_leg = LegMedia("opus", 111, telephone_event=110)
            frame, pt, step = OpusEncoder().encode(np.zeros(960, dtype=np.int16)), 111, 960
        else:
            browser_leg = LegMedia("PCMU", 0, telephone_event=126)
            frame, pt, step = b"\xff" * 160, 0, 160
        bridge = MediaBridge(
            browser_leg,
            LegMedia("PCMU", 0, telephone_event=codecs["telephone-event"].payload_type),
            to_browser.append, send_to_sip, now=reactor.seconds(),
        )
        bridge.on_dtmf_from_sip = digits
        from_phone = EventLog()  # the phone's packets, after the bridge has seen them

        def on_rtp(packet: bytes, now: float) -> None:
            bridge.from_sip(packet, now)
            from_phone(packet)

        rtp.on_rtp = on_rtp

        # the "browser": silence every 20 ms, so the DTMF sits inside a live stream
        count = [0]

        def browser_audio() -> None:
            i = count[0]
            count[0] += 1
            bridge.from_webrtc(build_rtp(payload_type=pt, sequence=(4000 + i) & 0xFFFF, timestamp=step * i,
                                         ssrc=0xB0B, payload=frame), reactor.seconds())

        loop = task.LoopingCall(browser_audio)
        loop.start(0.02)
        self.addCleanup(lambda: loop.running and loop.stop())
        return phone, bridge, digits, sent_to_sip, from_phone

    def drive(self, bridge: MediaBridge) -> None:
        """Poll the bridge's DTMF at its deadlines (what Call._arm_dtmf does)."""
        timer: list[Any] = [None]

        def arm() -> None:
            deadline = bridge.next_deadline()
            if deadline is not None:
                timer[0] = reactor.callLater(max(0.0, deadline - reactor.seconds()), tick)

        def tick() -> None:
            bridge.poll(reactor.seconds())
            arm()

        arm()
        self.addCleanup(lambda: timer[0] is not None and timer[0].active() and timer[0].cancel())

    async def nth_event(self, phone: Baresip, type_: str, n: int, since: int) -> list[dict[str, Any]]:
        found = []
        for _ in range(n):
            event = await phone.wait_event(type_, since=since)
            found.append(event)
            since = next(i for i, e in enumerate(phone.events) if e is event) + 1
        return found

    @inline
    async def test_phone_hears_our_digits(self) -> None:
        await self.phone_hears_our_digits(transcode=False)

    @inline
    async def test_phone_hears_our_digits_transcoding(self) -> None:
        await self.phone_hears_our_digits(transcode=True)

    async def phone_hears_our_digits(self, transcode: bool) -> None:
        phone, bridge, _, sent, _ = await self.call_phone(transcode)
        self.assertEqual(bridge.mode, "transcode" if transcode else "relay")
        mark = phone.mark()
        bridge.send_dtmf_to_sip("123#", reactor.seconds())
        self.drive(bridge)
        starts = await self.nth_event(phone, "CALL_DTMF_START", 4, mark)
        self.assertEqual([e["param"] for e in starts], ["1", "2", "3", "#"])
        ends = await self.nth_event(phone, "CALL_DTMF_END", 4, mark)
        self.assertEqual(len(ends), 4)
        # what went to the phone: one stream (one SSRC, no gap in the numbers) with 4 events in it
        headers = [parse_rtp(p) for p in sent]
        self.assertEqual(len({h.ssrc for h in headers}), 1)
        seqs = [h.sequence for h in headers]
        self.assertEqual([(b - a) & 0xFFFF for a, b in zip(seqs, seqs[1:])], [1] * (len(seqs) - 1))
        # no audio inside an event: each is its five packets in a row
        self.assertRegex("".join("E" if h.payload_type == TE else "a" for h in headers), r"^a*(E{5}a*){4}$")
        detector = DtmfDetector()
        for h, p in zip(headers, sent):
            if h.payload_type == TE:
                detector.receive(h.payload(p), h.timestamp, h.ssrc)
        self.assertEqual(detector.digits, list("123#"))
        self.assertEqual(bridge.stats()[SIP]["dtmf_sent"], 20)

    @inline
    async def test_digits_from_the_phone(self) -> None:
        phone, bridge, digits, _, from_phone = await self.call_phone()
        await phone.command("sndcode", "9*")

        def end_packets() -> int:
            headers = [(parse_rtp(p), p) for p in from_phone.events]
            return sum(1 for h, p in headers if h.payload_type == TE and h.payload(p)[1] & 0x80)

        # every packet of both events has arrived once the second digit's three end packets have
        await from_phone.wait_for(lambda p: end_packets() >= 6)
        self.assertEqual(digits.events, ["9", "*"])  # each once, in order
        self.assertGreater(bridge.stats()[SIP]["dtmf_packets"], 6)  # starts, updates, ends
        self.assertEqual(bridge.stats()[SIP]["dtmf_digits"], 2)
