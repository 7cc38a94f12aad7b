"""The built-in test lines over real sockets on 127.0.0.1.

A second SipService plays the gateway: it INVITEs the test lines with an OutgoingInvite (as the
gateway's call layer does for a session with an empty SIP domain) carrying a PCMU offer that
points at a test RtpSocket.  ``tone`` must send a 1 kHz tone (dominant FFT frequency over more
than 0.5 s of decoded audio), ``echo`` must send back the 440 Hz we send it; BYE, the time limit
and stopping the service end calls and give the media ports back; an unknown line is 404 and an
offer without G.711 488.  Ports are picked at run time; every wait is on an event.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from twisted.internet import defer, reactor, task
from twisted.trial.unittest import TestCase

from tests.peers.ports import free_port
from tests.support import EventLog, inline
from wcsgw.calls.testcall import _Media, first_g711
from wcsgw.calls.testlines import MAX_CALL_DURATION, TestCall, TestLines
from wcsgw.calls.testtone import tone_frame
from wcsgw.config import SipSettings
from wcsgw.media import g711
from wcsgw.media.ports import PortAllocator
from wcsgw.media.rtp import RtpHeader, build_rtp, parse_rtp
from wcsgw.media.udp import RtpSocket
from wcsgw.sdp.codecs import G722, PCMA, PCMU, TELEPHONE_EVENT_8000, Codec
from wcsgw.sdp.negotiate import audio_answer, audio_offer
from wcsgw.sdp.parser import parse_sdp, serialize_sdp
from wcsgw.sip.account import SipAccount
from wcsgw.sip.dialog import Dialog
from wcsgw.sip.dialogs import dialog_target
from wcsgw.sip.invite import REASON_NORMAL, Answered, Ended, Failed, OutgoingInvite
from wcsgw.sip.message import Request
from wcsgw.sip.service import SipService
from wcsgw.sip.target import Target

HOST = "127.0.0.1"
RATE = 8000


def port_range(span: int) -> tuple[int, int]:
    first = free_port("udp", HOST, span=span)
    return first, first + span - 1


def dominant_hz(samples: np.ndarray) -> float:
    """The strongest frequency of ``samples`` (8 kHz), DC left out."""
    x = samples.astype(np.float64)
    x = (x - x.mean()) * np.hanning(len(x))
    spectrum = np.abs(np.fft.rfft(x))
    freqs = np.fft.rfftfreq(len(x), 1 / RATE)
    return float(freqs[1 + int(np.argmax(spectrum[1:]))])


def pcmu_offer(port: int, codecs: list[Codec] | None = None) -> bytes:
    sd = audio_offer(HOST, port, codecs or [PCMU, TELEPHONE_EVENT_8000], session_id=42)
    return serialize_sdp(sd).encode()


class Packets:
    """RTP packets a test socket received, and a Deferred for "at least n of them"."""

    def __init__(self) -> None:
        self.packets: list[tuple[RtpHeader, bytes]] = []
        self._waiters: list[tuple[int, defer.Deferred]] = []

    def __call__(self, data: bytes) -> None:
        header = parse_rtp(data)
        self.packets.append((header, header.payload(data)))
        for pair in list(self._waiters):
            if len(self.packets) >= pair[0]:
                self._waiters.remove(pair)
                pair[1].callback(None)

    def wait(self, count: int, timeout: float = 10.0) -> defer.Deferred:
        d: defer.Deferred = defer.Deferred()
        if len(self.packets) >= count:
            d.callback(None)
            return d
        self._waiters.append((count, d))
        d.addTimeout(timeout, reactor)
        return d

    def audio(self, codec: str = "PCMU") -> np.ndarray:
        ordered = sorted(self.packets, key=lambda p: p[0].sequence)
        return np.concatenate([g711.decode(codec, payload) for _, payload in ordered])


class TestLinesTests(TestCase):
    timeout = 60

    def setUp(self) -> None:
        lo, hi = port_range(16)
        self.lines_ports = PortAllocator(HOST, lo, hi)
        self.lines = self.start_lines()
        self.gateway = SipService(SipSettings(listen=HOST, port=0, user_agent="gw-test"),
                                  reactor=reactor)
        self.gateway.startService()
        self.addCleanup(self.gateway.stopService)
        lo, hi = port_range(8)
        self.gateway_ports = PortAllocator(HOST, lo, hi)
        self.received = Packets()
        self.rtp = RtpSocket(reactor, self.gateway_ports, on_rtp=lambda packet, now: self.received(packet))
        self.addCleanup(self.rtp.close)
        self.account = SipAccount(login="wcsgw", domain=HOST, port=self.lines.port,
                                  register=False)

    def start_lines(self, **kwargs: Any) -> TestLines:
        lines = TestLines(reactor, allocator=self.lines_ports, **kwargs)
        lines.startService()
        self.addCleanup(lambda: lines.stopService() if lines.running else None)
        return lines

    def call(self, line: str, sdp: bytes | None = None, lines: TestLines | None = None
             ) -> tuple[OutgoingInvite, EventLog]:
        lines = lines or self.lines
        events = EventLog()
        assert self.gateway.endpoint is not None
        account = SipAccount(login="wcsgw", domain=HOST, port=lines.port, register=False)
        invite = OutgoingInvite(self.gateway.endpoint, account, lines.uri(line),
                                sdp if sdp is not None else pcmu_offer(self.rtp.rtp_port),
                                listener=events)
        invite.start(reactor.seconds())
        return invite, events

    async def answered(self, events: EventLog) -> Answered:
        """Wait for the 2xx and point the test socket at the line's media (as the gateway's
        call does with the SIP answer)."""
        event = await events.wait_for(lambda e: isinstance(e, (Answered, Failed, Ended)))
        self.assertIsInstance(event, Answered)
        answer = parse_sdp(event.sdp)
        m = answer.media[0]
        if m.port:
            self.rtp.set_remote(answer.connection_for(m).address, m.port)  # type: ignore[union-attr]
        return event

    async def hang_up(self, invite: OutgoingInvite, events: EventLog) -> None:
        invite.hangup(reactor.seconds())
        ended = await events.wait_for(lambda e: isinstance(e, (Ended, Failed)))
        self.assertEqual(ended, Ended(REASON_NORMAL, by_remote=False))
        await self.lines.wait_idle()
        self.assertEqual(self.lines.active_calls, 0)
        self.assertEqual(self.lines_ports.in_use, frozenset())

    # ------------------------------------------------------------------ the lines

    def test_uri(self) -> None:
        self.assertEqual(self.lines.uri("echo"), f"sip:echo@127.0.0.1:{self.lines.port}")
        self.assertNotEqual(self.lines.port, self.gateway.port)
        self.assertEqual(self.lines.active_calls, 0)

    @inline
    async def test_tone_is_1khz_pcmu(self) -> None:
        invite, events = self.call("tone")
        answered = await self.answered(events)
        answer = parse_sdp(answered.sdp)
        [m] = answer.media
        self.assertEqual([c.name for c in m.codecs()], ["PCMU", "telephone-event"])
        self.assertEqual(answer.connection_for(m).address, HOST)  # type: ignore[union-attr]
        self.assertTrue(self.lines_ports.port_min <= m.port <= self.lines_ports.port_max)
        self.assertEqual(self.lines.active_calls, 1)
        await self.received.wait(30)  # 0.6 s of audio
        headers = [h for h, _ in self.received.packets[:30]]
        self.assertEqual({h.payload_type for h in headers}, {0})
        self.assertEqual(len({h.ssrc for h in headers}), 1)
        self.assertTrue(headers[0].marker)
        steps = [((b.sequence - a.sequence) & 0xFFFF, (b.timestamp - a.timestamp) & 0xFFFFFFFF)
                 for a, b in zip(headers, headers[1:])]
        # +1 / +160 per packet; only a reactor stalled for over 100 ms makes the clock jump
        self.assertTrue(all(seq == 1 and ts >= 160 and ts % 160 == 0 for seq, ts in steps), steps)
        self.assertGreater(steps.count((1, 160)), len(steps) * 0.8, steps)
        self.assertTrue(all(len(p) == 160 for _, p in self.received.packets))
        audio = self.received.audio("PCMU")
        self.assertGreaterEqual(len(audio), RATE // 2)
        self.assertAlmostEqual(dominant_hz(audio), 1000.0, delta=10)
        self.assertGreater(np.abs(audio).max(), 4000)  # a tone, not near-silence
        await self.hang_up(invite, events)

    @inline
    async def test_tone_in_pcma_when_offered_first(self) -> None:
        invite, events = self.call("tone", pcmu_offer(self.rtp.rtp_port, [PCMA, PCMU]))
        answered = await self.answered(events)
        [m] = parse_sdp(answered.sdp).media
        self.assertEqual([c.name for c in m.codecs()], ["PCMA"])  # the first G.711 only
        await self.received.wait(30)
        self.assertEqual({h.payload_type for h, _ in self.received.packets}, {8})
        self.assertAlmostEqual(dominant_hz(self.received.audio("PCMA")), 1000.0, delta=10)
        await self.hang_up(invite, events)

    @inline
    async def test_echo_returns_440hz(self) -> None:
        invite, events = self.call("echo")
        await self.answered(events)
        ssrc, sent = 0x1234ABCD, 0
        n = np.arange(160)

        def send() -> None:
            nonlocal sent
            samples = 8000 * np.sin(2 * np.pi * 440 * (n + 160 * sent) / RATE)
            self.rtp.send_rtp(build_rtp(payload_type=0, sequence=1000 + sent,
                                        timestamp=5000 + 160 * sent, ssrc=ssrc,
                                        payload=g711.encode("PCMU", samples)))
            sent += 1

        sender = task.LoopingCall(send)
        sender.clock = reactor
        sender.start(0.02)
        try:
            await self.received.wait(30)
        finally:
            sender.stop()
        headers = [h for h, _ in self.received.packets[:30]]
        self.assertEqual({h.payload_type for h in headers}, {0})
        [their_ssrc] = {h.ssrc for h in headers}
        self.assertNotEqual(their_ssrc, ssrc)  # the line's own stream
        for a, b in zip(headers, headers[1:]):
            self.assertEqual((b.sequence - a.sequence) & 0xFFFF, 1)
            self.assertEqual((b.timestamp - a.timestamp) & 0xFFFFFFFF, 160)
        audio = self.received.audio("PCMU")
        self.assertAlmostEqual(dominant_hz(audio), 440.0, delta=10)
        await self.hang_up(invite, events)

    @inline
    async def test_echo_returns_telephone_events_and_drops_other_types(self) -> None:
        invite, events = self.call("echo")
        answered = await self.answered(events)
        [m] = parse_sdp(answered.sdp).media
        te = next(c for c in m.codecs() if c.name == "telephone-event")
        event = bytes([5, 0x0A, 0x00, 0xA0])  # digit 5, volume 10, duration 160
        self.rtp.send_rtp(build_rtp(payload_type=9, sequence=1, timestamp=0, ssrc=7,
                                    payload=b"\x00" * 160))  # G.722: not agreed, dropped
        self.rtp.send_rtp(build_rtp(payload_type=te.payload_type or 0, sequence=2,
                                    timestamp=160, ssrc=7, payload=event, marker=True))
        await self.received.wait(1)
        [(header, payload)] = self.received.packets
        self.assertEqual((header.payload_type, payload), (te.payload_type, event))
        await self.hang_up(invite, events)

    # ------------------------------------------------------------------ endings

    @inline
    async def test_time_limit_ends_the_call_with_our_bye(self) -> None:
        self.assertEqual(MAX_CALL_DURATION, 600.0)
        quick = self.start_lines(max_duration=0.5)
        invite, events = self.call("tone", lines=quick)
        await self.answered(events)
        ended = await events.wait_for(lambda e: isinstance(e, (Ended, Failed)))
        self.assertEqual(ended, Ended(REASON_NORMAL, by_remote=True))
        await quick.wait_idle()
        self.assertEqual(quick.active_calls, 0)
        self.assertTrue(invite.terminated)

    @inline
    async def test_stopping_the_service_ends_live_calls(self) -> None:
        invite, events = self.call("echo")
        await self.answered(events)
        self.assertEqual(self.lines.active_calls, 1)
        await self.lines.stopService()
        ended = await events.wait_for(lambda e: isinstance(e, (Ended, Failed)))
        self.assertEqual(ended, Ended(REASON_NORMAL, by_remote=True))
        self.assertEqual(self.lines.active_calls, 0)
        self.assertEqual(self.lines_ports.in_use, frozenset())

    # ------------------------------------------------------------------ refusals

    @inline
    async def test_unknown_line_is_404(self) -> None:
        _invite, events = self.call("nobody")
        failed = await events.wait_for(lambda e: isinstance(e, (Answered, Failed)))
        self.assertEqual(failed, Failed(404, "404 Not Found"))
        self.assertEqual(self.lines.active_calls, 0)

    @inline
    async def test_reinvite_for_a_call_that_is_gone_is_481(self) -> None:
        # In-dialog (To tag) but no such dialog: 481 (RFC 3261 §12.2.2), not a new call.
        ep = self.gateway.endpoint
        assert ep is not None
        uri = self.lines.uri("echo")
        bye = Request("INVITE", uri, [
            ("From", "<sip:wcsgw@127.0.0.1>;tag=old1"), ("To", f"<{uri}>;tag=gone"),
            ("Call-ID", "gone-1"), ("CSeq", "2 INVITE"),
            ("Contact", f"<{ep.contact_uri('wcsgw', 'UDP')}>"),
        ])
        answers = EventLog()
        ep.send_request(bye, Target("UDP", HOST, self.lines.port), reactor.seconds(),
                        lambda r, _now: answers(r))
        self.assertEqual((await answers.wait_for(lambda r: r.status >= 200)).status, 481)
        self.assertEqual(self.lines.active_calls, 0)

    @inline
    async def test_offer_without_g711_is_488(self) -> None:
        _invite, events = self.call("echo", pcmu_offer(self.rtp.rtp_port, [G722]))
        failed = await events.wait_for(lambda e: isinstance(e, (Answered, Failed)))
        self.assertEqual(failed, Failed(488, "488 Not Acceptable Here"))
        self.assertEqual(self.lines.active_calls, 0)
        self.assertEqual(self.lines_ports.in_use, frozenset())

    @inline
    async def test_late_offer_without_answer_in_ack_is_hung_up(self) -> None:
        # OutgoingInvite sends no SDP in its ACK: the line offered, got no answer, and says BYE.
        invite, events = self.call("tone", b"")
        answered = await self.answered(events)
        [m] = parse_sdp(answered.sdp).media
        self.assertEqual([c.name for c in m.codecs()], ["PCMU", "PCMA", "telephone-event"])
        ended = await events.wait_for(lambda e: isinstance(e, (Ended, Failed)))
        self.assertEqual(ended, Ended(REASON_NORMAL, by_remote=True))
        await self.lines.wait_idle()
        self.assertEqual(self.lines_ports.in_use, frozenset())
        self.assertEqual(self.received.packets, [])

    @inline
    async def test_late_offer_answered_in_the_ack(self) -> None:
        """An INVITE without SDP, played by hand: the 200 offers PCMU, PCMA and
        telephone-event; the ACK answers PCMA, and the tone comes in PCMA."""
        ep = self.gateway.endpoint
        assert ep is not None
        uri = self.lines.uri("tone")
        invite = Request("INVITE", uri, [
            ("From", "<sip:wcsgw@127.0.0.1>;tag=late1"), ("To", f"<{uri}>"),
            ("Call-ID", "late-offer-1"), ("CSeq", "1 INVITE"),
            ("Contact", f"<{ep.contact_uri('wcsgw', 'UDP')}>"),
        ])
        responses = EventLog()
        target = Target("UDP", HOST, self.lines.port)
        ep.send_request(invite, target, reactor.seconds(), lambda r, _now: responses(r))
        ok = await responses.wait_for(lambda r: r.status >= 200)
        self.assertEqual(ok.status, 200)
        offer = parse_sdp(ok.body)
        [m] = offer.media
        self.assertEqual([c.name for c in m.codecs()], ["PCMU", "PCMA", "telephone-event"])
        # as the gateway does: hear the line (only) from where its offer and its 200 came
        self.rtp.set_remote(offer.connection_for(m).address, m.port)  # type: ignore[union-attr]
        dialog = Dialog.from_uac(invite, ok)
        answer = audio_answer(offer, HOST, self.rtp.rtp_port, [PCMA], session_id=7)
        ack = dialog.create_ack(1, [("Content-Type", "application/sdp")],
                                serialize_sdp(answer).encode())
        ep.send_request(ack, dialog_target(dialog), reactor.seconds(), lambda r, _now: None)
        await self.received.wait(30)
        self.assertEqual({h.payload_type for h, _ in self.received.packets}, {8})
        self.assertAlmostEqual(dominant_hz(self.received.audio("PCMA")), 1000.0, delta=10)
        bye_answers = EventLog()
        bye = dialog.create_request("BYE")
        ep.send_request(bye, dialog_target(dialog), reactor.seconds(),
                        lambda r, _now: bye_answers(r))
        self.assertEqual((await bye_answers.wait_for(lambda r: r.status >= 200)).status, 200)
        await self.lines.wait_idle()
        self.assertEqual(self.lines_ports.in_use, frozenset())


class FakeRtp:
    def __init__(self) -> None:
        self.sent: list[RtpHeader] = []

    def send_rtp(self, data: bytes) -> None:
        self.sent.append(parse_rtp(data))

    def close(self) -> defer.Deferred:
        return defer.succeed(None)


class ToneClockTests(TestCase):
    """The tone's packet clock on a fake reactor: one packet per 20 ms tick, a burst to catch
    up with a late reactor, and a timestamp jump (no burst) for a long stall."""

    def setUp(self) -> None:
        self.clock = task.Clock()
        lines = TestLines(self.clock, allocator=PortAllocator(HOST, 40000, 40001))
        self.call = TestCall(lines, "tone")
        self.rtp = FakeRtp()
        self.call.rtp = self.rtp  # type: ignore[assignment]
        self.call.media = _Media(PCMU, None, sends=True)
        self.call._start_media()
        self.addCleanup(self.call.close)

    def steps(self) -> list[tuple[int, int]]:
        h = self.rtp.sent
        return [((b.sequence - a.sequence) & 0xFFFF, (b.timestamp - a.timestamp) & 0xFFFFFFFF)
                for a, b in zip(h, h[1:])]

    def test_one_packet_per_tick(self) -> None:
        for _ in range(10):
            self.clock.advance(0.02)
        self.clock.advance(0.001)  # float sums: make sure the 10th tick's instant has come
        self.assertEqual(len(self.rtp.sent), 11)  # one at start, then one per tick
        self.assertEqual(self.steps(), [(1, 160)] * 10)
        self.assertTrue(self.rtp.sent[0].marker)
        self.assertFalse(any(h.marker for h in self.rtp.sent[1:]))

    def test_late_reactor_bursts_then_skips(self) -> None:
        self.clock.advance(0.061)  # 3 ticks late: a burst of 3
        self.assertEqual(self.steps(), [(1, 160)] * 3)
        self.rtp.sent[:] = self.rtp.sent[-1:]
        self.clock.advance(0.16)  # 8 ticks: 5 sent, 3 skipped (the first one jumps)
        self.assertEqual(self.steps(), [(1, 160 * 4)] + [(1, 160)] * 4)

    def test_closing_stops_the_tone(self) -> None:
        self.call.close()
        count = len(self.rtp.sent)
        self.clock.advance(1.0)
        self.assertEqual(len(self.rtp.sent), count)


class HelperTests(TestCase):
    def test_tone_frame_is_exactly_20_periods(self) -> None:
        for codec in ("PCMU", "PCMA"):
            frame = tone_frame(codec)
            self.assertEqual(len(frame), 160)
            samples = g711.decode(codec, frame * 10)
            self.assertAlmostEqual(dominant_hz(samples), 1000.0, delta=10)

    def test_first_g711(self) -> None:
        def offer(*media: str) -> bytes:
            return (b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                    + b"".join(m.encode() for m in media))

        self.assertEqual(first_g711(parse_sdp(offer("m=audio 4000 RTP/AVP 9 8 0\r\n"))).name, "PCMA")
        self.assertIsNone(first_g711(parse_sdp(offer("m=audio 4000 RTP/AVP 9 18\r\n"))))
        # rejected and encrypted streams do not count; the next audio stream does
        sd = parse_sdp(offer("m=audio 0 RTP/AVP 0\r\n", "m=audio 4000 RTP/SAVP 0\r\n",
                             "m=video 4002 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n",
                             "m=audio 4004 RTP/AVP 8\r\n"))
        codec = first_g711(sd)
        self.assertIsNotNone(codec)
        assert codec is not None
        self.assertEqual((codec.name, codec.payload_type), ("PCMA", 8))
