"""The ``dtmf`` test line: each digit it hears is said back (RFC 4733 events or SIP INFO, the
way it came) and played as its DTMF tone pair; silence otherwise.

The stream itself (:class:`DigitPlayer`) is checked on tick counts, no clock; then the line
over real sockets on 127.0.0.1: a SipService plays the gateway, sends digits as events and as
INFO, and reads what comes back (event reports, INFOs, the tone pair by FFT).  Every wait is on
an event, with a generous timeout.
"""

from __future__ import annotations

import numpy as np
from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from tests.support import EventLog, inline
from tests.test_testlines import HOST, RATE, Packets, pcmu_offer, port_range
from wcsgw.calls.testdtmf import (
    DTMF_PAIRS,
    END_PACKETS,
    EVENT_FRAMES,
    GAP_FRAMES,
    MAX_PENDING,
    TONE_FRAMES,
    DigitPlayer,
    digit_from_rtp,
)
from wcsgw.calls.testlines import LINES, TestLines
from wcsgw.config import SipSettings
from wcsgw.media import g711
from wcsgw.media.dtmf import TelephoneEvent
from wcsgw.media.dtmfdetector import DtmfDetector
from wcsgw.media.dtmfgenerator import DtmfGenerator
from wcsgw.media.ports import PortAllocator
from wcsgw.media.rtp import RtpHeader, build_rtp, parse_rtp
from wcsgw.media.udp import RtpSocket
from wcsgw.sdp.codecs import PCMA, PCMU
from wcsgw.sdp.parser import parse_sdp
from wcsgw.sip.account import SipAccount
from wcsgw.sip.events import InfoReceived
from wcsgw.sip.info import DTMF_RELAY, dtmf_relay_body, parse_dtmf_info
from wcsgw.sip.invite import REASON_NORMAL, Answered, Ended, Failed, OutgoingInvite
from wcsgw.sip.service import SipService

ROWS = (697, 770, 852, 941)
COLUMNS = (1209, 1336, 1477, 1633)


def dtmf_key(samples: np.ndarray, rate: int = RATE) -> str | None:
    """The DTMF key whose two frequencies stand out in ``samples`` (at ``rate`` Hz), or None.

    The power at each of the eight DTMF frequencies (one DFT bin each, Hann window): the
    strongest row and column must each be 10 times (10 dB) the next of their group, and the
    pair must hold most of the signal's power, else it is no key (silence, a single tone,
    noise)."""
    x = np.asarray(samples, dtype=np.float64)
    if len(x) < rate // 50:
        return None
    x = (x - x.mean()) * np.hanning(len(x))
    t = np.arange(len(x)) / rate

    def power(f: float) -> float:
        return float(abs(np.dot(x, np.exp(-2j * np.pi * f * t))) ** 2)

    energy = float(np.dot(x, x))
    if energy < len(x) * 100.0 ** 2:  # quieter than RMS 100 (-50 dBFS): silence
        return None
    rows = sorted(((power(f), f) for f in ROWS), reverse=True)
    cols = sorted(((power(f), f) for f in COLUMNS), reverse=True)
    if rows[0][0] < 10 * rows[1][0] or cols[0][0] < 10 * cols[1][0]:
        return None
    # a Hann-windowed sine's |X(f)|^2 is N/3 times its windowed energy: the pair's share
    if (rows[0][0] + cols[0][0]) * 3 / len(x) < 0.5 * energy:
        return None
    pair = (int(rows[0][1]), int(cols[0][1]))
    return next(key for key, p in DTMF_PAIRS.items() if p == pair)


def decoded(packets: list[bytes], codec: str = "PCMU", payload_type: int = 0) -> np.ndarray:
    frames = [g711.decode(codec, parse_rtp(p).payload(p)) for p in packets
              if parse_rtp(p).payload_type == payload_type]
    return np.concatenate(frames) if frames else np.zeros(0)


class DigitPlayerTests(TestCase):
    """The stream on tick counts (20 ms each), no clock and no socket."""

    def player(self, event_pt: int | None = 101, codec=PCMU) -> DigitPlayer:
        return DigitPlayer(codec, event_pt)

    def ticks(self, player: DigitPlayer, n: int) -> list[list[bytes]]:
        return [player.packets(1) for _ in range(n)]

    def test_silence_while_nothing_is_pressed(self) -> None:
        p = self.player()
        first, second = self.ticks(p, 2)
        [a], [b] = first, second
        ha, hb = parse_rtp(a), parse_rtp(b)
        self.assertTrue(ha.marker)
        self.assertFalse(hb.marker)
        self.assertEqual((ha.payload_type, len(ha.payload(a))), (0, 160))
        self.assertEqual(((hb.sequence - ha.sequence) & 0xFFFF, (hb.timestamp - ha.timestamp)
                          & 0xFFFFFFFF), (1, 160))
        self.assertEqual(np.abs(g711.decode("PCMU", ha.payload(a))).max(), 0)

    def test_an_event_digit_is_said_back_then_played(self) -> None:
        p = self.player(event_pt=101)
        self.ticks(p, 1)
        self.assertTrue(p.press("1", event=True))
        self.assertEqual(p.pending, 1)
        ticks = self.ticks(p, EVENT_FRAMES + TONE_FRAMES + GAP_FRAMES)
        events = [parse_rtp(x) for tick in ticks for x in tick if parse_rtp(x).payload_type == 101]
        reports = [TelephoneEvent.parse(h.payload(x)) for tick in ticks for x in tick
                   for h in [parse_rtp(x)] if h.payload_type == 101]
        self.assertEqual(len(reports), EVENT_FRAMES + END_PACKETS - 1)
        self.assertEqual({r.event for r in reports}, {1})
        self.assertEqual([r.duration for r in reports[:EVENT_FRAMES]],
                         [160 * (k + 1) for k in range(EVENT_FRAMES)])
        self.assertEqual([r.end for r in reports],
                         [False] * (EVENT_FRAMES - 1) + [True] * END_PACKETS)
        self.assertEqual(len({h.timestamp for h in events}), 1)  # all the event's start
        self.assertEqual([h.marker for h in events], [True] + [False] * (len(events) - 1))
        # the event's ticks carry no audio; the tone follows it
        for tick in ticks[:EVENT_FRAMES]:
            self.assertEqual([parse_rtp(x).payload_type for x in tick], [101])
        tone = decoded([x for tick in ticks[EVENT_FRAMES:EVENT_FRAMES + TONE_FRAMES]
                        for x in tick])
        self.assertEqual(len(tone), TONE_FRAMES * 160)
        self.assertEqual(dtmf_key(tone), "1")
        self.assertGreater(np.abs(tone).max(), 8000)
        gap = decoded([x for tick in ticks[-GAP_FRAMES:] for x in tick])
        self.assertIsNone(dtmf_key(gap))
        self.assertEqual(p.pending, 0)
        self.assertEqual(p.digits_played, 1)
        # one sequence for events and audio, no gap and no repeat
        seqs = [parse_rtp(x).sequence for tick in ticks for x in tick]
        self.assertEqual([(b - a) & 0xFFFF for a, b in zip(seqs, seqs[1:])], [1] * (len(seqs) - 1))

    def test_each_key_plays_its_own_pair(self) -> None:
        for key in "0123456789*#ABCD":
            p = self.player(event_pt=None, codec=PCMA)
            p.press(key.lower(), event=True)  # no event type agreed: played only
            ticks = self.ticks(p, TONE_FRAMES)
            self.assertTrue(all(parse_rtp(x).payload_type == 8 for t in ticks for x in t))
            self.assertEqual(dtmf_key(decoded([x for t in ticks for x in t], "PCMA", 8)), key)

    def test_an_info_digit_is_played_at_once_without_events(self) -> None:
        p = self.player(event_pt=101)
        p.press("#", event=False)
        ticks = self.ticks(p, TONE_FRAMES)
        self.assertTrue(all(parse_rtp(x).payload_type == 0 for t in ticks for x in t))
        self.assertEqual(dtmf_key(decoded([x for t in ticks for x in t])), "#")

    def test_digits_play_one_after_the_other(self) -> None:
        p = self.player(event_pt=None)
        for key in "15#":
            p.press(key, event=False)
        self.assertEqual(p.pending, 3)
        keys = []
        for _ in range(3):
            ticks = self.ticks(p, TONE_FRAMES + GAP_FRAMES)
            keys.append(dtmf_key(decoded([x for t in ticks[:TONE_FRAMES] for x in t])))
        self.assertEqual(keys, ["1", "5", "#"])
        self.assertEqual(p.pending, 0)

    def test_bad_digits_and_floods_are_dropped(self) -> None:
        p = self.player()
        self.assertFalse(p.press("x", event=True))
        self.assertFalse(p.press("12", event=True))
        for _ in range(MAX_PENDING):
            self.assertTrue(p.press("9", event=True))
        self.assertFalse(p.press("9", event=True))
        self.assertEqual((p.pending, p.dropped), (MAX_PENDING, 1))

    def test_late_reactor_bursts_then_skips(self) -> None:
        p = self.player()
        [first] = p.packets(1)
        packets = p.packets(50)  # a 1 s stall: 100 ms sent, the rest skipped
        self.assertEqual(len(packets), 5)
        t0, t1 = parse_rtp(first).timestamp, parse_rtp(packets[-1]).timestamp
        self.assertEqual((t1 - t0) & 0xFFFFFFFF, 50 * 160)

    def test_digit_from_rtp_reports_each_press_once(self) -> None:
        detector = DtmfDetector()
        generator = DtmfGenerator(101)
        packets = [x.rtp(i, 7) for i, x in enumerate(generator.packets_for("5#", 0.0))]
        heard = [digit_from_rtp(detector, x, 101) for x in packets]
        self.assertEqual([d for d in heard if d], ["5", "#"])
        audio = build_rtp(payload_type=0, sequence=1, timestamp=0, ssrc=7, payload=b"\xff" * 160)
        self.assertIsNone(digit_from_rtp(detector, audio, 101))
        self.assertIsNone(digit_from_rtp(detector, packets[0], None))
        self.assertIsNone(digit_from_rtp(detector, b"\x80\x65", 101))  # too short to parse


class DtmfLineTests(TestCase):
    """The line over real sockets: a SipService INVITEs ``dtmf`` as the gateway would."""

    timeout = 60

    def setUp(self) -> None:
        lo, hi = port_range(16)
        self.lines = TestLines(reactor, allocator=PortAllocator(HOST, lo, hi))
        self.lines.startService()
        self.addCleanup(lambda: self.lines.stopService() if self.lines.running else None)
        self.gateway = SipService(SipSettings(listen=HOST, port=0, user_agent="gw-test"),
                                  reactor=reactor)
        self.gateway.startService()
        self.addCleanup(self.gateway.stopService)
        lo, hi = port_range(8)
        self.received = Packets()
        self.raw: list[bytes] = []

        def heard(packet: bytes, now: float) -> None:
            self.raw.append(packet)
            self.received(packet)

        self.rtp = RtpSocket(reactor, PortAllocator(HOST, lo, hi), on_rtp=heard)
        self.addCleanup(self.rtp.close)

    async def call_dtmf(self) -> tuple[OutgoingInvite, EventLog, int]:
        """Call the line; the telephone-event payload type it answered with."""
        self.assertIn("dtmf", LINES)
        events = EventLog()
        assert self.gateway.endpoint is not None
        account = SipAccount(login="wcsgw", domain=HOST, port=self.lines.port, register=False)
        invite = OutgoingInvite(self.gateway.endpoint, account, self.lines.uri("dtmf"),
                                pcmu_offer(self.rtp.rtp_port), listener=events)
        invite.start(reactor.seconds())
        answered = await events.wait_for(lambda e: isinstance(e, (Answered, Failed, Ended)))
        self.assertIsInstance(answered, Answered)
        answer = parse_sdp(answered.sdp)
        [m] = answer.media
        self.rtp.set_remote(answer.connection_for(m).address, m.port)  # type: ignore[union-attr]
        te = next(c for c in m.codecs() if c.name == "telephone-event")
        return invite, events, te.payload_type or 0

    def headers(self) -> list[RtpHeader]:
        return [h for h, _ in self.received.packets]

    async def wait_packets(self, predicate, count: int) -> None:
        """Until ``count`` received packets satisfy ``predicate`` (more arrive every 20 ms)."""
        while sum(1 for h, p in self.received.packets if predicate(h, p)) < count:
            await self.received.wait(len(self.received.packets) + 1, timeout=15.0)

    async def hang_up(self, invite: OutgoingInvite, events: EventLog) -> None:
        invite.hangup(reactor.seconds())
        ended = await events.wait_for(lambda e: isinstance(e, (Ended, Failed)))
        self.assertEqual(ended, Ended(REASON_NORMAL, by_remote=False))
        await self.lines.wait_idle()

    @inline
    async def test_events_are_said_back_and_played(self) -> None:
        invite, events, te = await self.call_dtmf()
        await self.received.wait(5)  # silence flows before any key
        self.assertEqual({h.payload_type for h in self.headers()}, {0})
        generator = DtmfGenerator(te)
        for i, packet in enumerate(generator.packets_for("5", 0.0)):
            self.rtp.send_rtp(packet.rtp(100 + i, 0x5EED))
        # its reports come back, then the tone: wait for the tone's frames after the events
        await self.wait_packets(lambda h, p: h.payload_type == te, EVENT_FRAMES + END_PACKETS - 1)
        start = next(i for i, p in enumerate(self.raw) if parse_rtp(p).payload_type == te)
        await self.wait_packets(lambda h, p: True, start + EVENT_FRAMES + END_PACKETS
                                - 1 + TONE_FRAMES)
        reports = [TelephoneEvent.parse(parse_rtp(p).payload(p)) for p in self.raw
                   if parse_rtp(p).payload_type == te]
        self.assertEqual({r.digit for r in reports}, {"5"})
        self.assertTrue(reports[-1].end)
        tone = decoded(self.raw[start:])[:TONE_FRAMES * 160]
        self.assertEqual(dtmf_key(tone), "5")
        await self.hang_up(invite, events)

    @inline
    async def test_info_is_answered_by_info_and_played(self) -> None:
        invite, events, _ = await self.call_dtmf()
        await self.received.wait(1)
        before = len(self.raw)
        invite.send_info(DTMF_RELAY, dtmf_relay_body("#"), reactor.seconds())
        info = await events.wait_for(lambda e: isinstance(e, InfoReceived))
        self.assertEqual(parse_dtmf_info(info.content_type, info.body), "#")
        await self.wait_packets(lambda h, p: True, before + 30)
        self.assertEqual({parse_rtp(p).payload_type for p in self.raw}, {0})  # no events
        audio = decoded(self.raw[before:])
        keys = {dtmf_key(audio[i:i + 800]) for i in range(0, len(audio) - 800, 160)}
        self.assertIn("#", keys)
        self.assertEqual(keys - {"#", None}, set())
        await self.hang_up(invite, events)
