"""A far end silent on hold for two hours, then back: does the browser still hear it? (issue 15)

Janus users met this one: after a long hold the far end's RTP resumes with a sequence number
far from the last one (it kept counting, restarted, or a new source took over), the gateway
passes the jump on, and the browser's SRTP receiver — whose rollover counter (ROC) is a guess
from the sequence number (RFC 3711 §3.3.1) and whose replay window remembers the last numbers
— rejects everything after the unhold: silence until the call is redialled.

Here the media path toward the browser is the real one, driven by a
:class:`twisted.internet.task.Clock` (two hours pass in a few milliseconds): the SIP side's
RTP enters :class:`~wcsgw.media.bridge.MediaBridge` and leaves through a real pylibsrtp
session keyed and configured as aiortc configures the gateway's (``SSRC_ANY_OUTBOUND``,
replay window 1024, AES-256-GCM as Chromium picks), and a second pylibsrtp session decrypts
it as the browser would.  The RTCP the bridge sends the browser during the silence goes
through SRTCP the same way.  For each way a far end comes back, every packet after the unhold
must decrypt, in order, with sequence numbers that go on from where they stopped (the
browser's extended numbers strictly +1), and — relayed — carry the far end's payload.

What broke before this test: a far end restarting its numbers a little *behind* where it
stopped (within :data:`~wcsgw.media.stream.MAX_MISORDER`) was taken for reordering — relayed,
its packets reused numbers the browser had seen (SRTP replay failures for up to a second);
transcoded, the reorder buffer dropped them as late.  Both now take a packet no newer than the
last after :data:`~wcsgw.media.stream.MAX_LATENESS` of silence for a restart.
"""

from __future__ import annotations

import os
import random
from typing import Callable

import numpy as np
import pylibsrtp
from twisted.internet import task
from twisted.trial.unittest import SynchronousTestCase

from wcsgw.media import g711
from wcsgw.media.bridge import BridgeSettings, LegMedia, MediaBridge
from wcsgw.media.jitter import JitterBuffer
from wcsgw.media.opus import OpusDecoder
from wcsgw.media.rtp import build_rtp, parse_rtp
from wcsgw.media.stream import MAX_LATENESS, OutboundStream

HOLD = 2 * 3600.0  # seconds of fake time with no RTP from the far end
FRAME = 0.02
W_SSRC, S_SSRC = 0x0B0B0B0B, 0x5151515
RATE = 8000
SAMPLES = 160  # 20 ms of PCMU


def pcmu_tone(index: int, frequency: float = 1000.0) -> bytes:
    """The ``index``-th 20 ms of a continuous tone, PCMU."""
    t = (np.arange(SAMPLES) + index * SAMPLES) / RATE
    return g711.encode("PCMU", (np.sin(2 * np.pi * frequency * t) * 8000).astype(np.int16))


class FarEnd:
    """The SIP side's RTP source: one packet per 20 ms."""

    def __init__(self, seq: int, ts: int, ssrc: int = S_SSRC) -> None:
        self.seq, self.ts, self.ssrc = seq, ts, ssrc
        self.index = 0  # packets made so far (the tone's phase)
        self.payloads: list[bytes] = []

    def next(self) -> bytes:
        payload = pcmu_tone(self.index)
        packet = build_rtp(payload_type=0, sequence=self.seq & 0xFFFF,
                           timestamp=self.ts & 0xFFFFFFFF, ssrc=self.ssrc, payload=payload)
        self.payloads.append(payload)
        self.index += 1
        self.seq += 1
        self.ts += SAMPLES
        return packet


class Browser:
    """The browser's SRTP receiver and what it made of each packet."""

    def __init__(self, key: bytes, profile: int) -> None:
        policy = pylibsrtp.Policy(key=key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND,
                                  srtp_profile=profile)
        policy.allow_repeat_tx = True
        policy.window_size = 1024
        self.rx = pylibsrtp.Session(policy)
        self.rtp: list[bytes] = []  # decrypted, in arrival order
        self.failures: list[str] = []
        self.rtcp = 0
        self.rtcp_failures: list[str] = []

    def receive(self, packet: bytes) -> None:
        try:
            self.rtp.append(self.rx.unprotect(packet))
        except pylibsrtp.Error as exc:
            self.failures.append(str(exc))

    def receive_rtcp(self, packet: bytes) -> None:
        try:
            self.rx.unprotect_rtcp(packet)
            self.rtcp += 1
        except pylibsrtp.Error as exc:
            self.rtcp_failures.append(str(exc))

    def extended_sequences(self, start: int = 0) -> list[int]:
        """The sequence numbers of the packets from ``start`` on, unwrapped as a receiver
        keeps them (RFC 3711 §3.3.1's index without the guess: we saw every packet)."""
        out: list[int] = []
        for packet in self.rtp[start:]:
            seq = parse_rtp(packet).sequence
            if out:
                last = out[-1]
                step = (seq - last) & 0xFFFF
                out.append(last + (step - 0x10000 if step >= 0x8000 else step))
            else:
                out.append(seq)
        return out


class Call:
    """One call's media toward the browser: the bridge, the gateway's SRTP, the browser."""

    def __init__(self, webrtc: LegMedia, profile: int = pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_256_GCM,
                 key_length: int = 44) -> None:
        self.clock = task.Clock()
        self.clock.advance(1000.0)
        key = os.urandom(key_length)
        policy = pylibsrtp.Policy(key=key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND,
                                  srtp_profile=profile)
        policy.allow_repeat_tx = True
        policy.window_size = 1024
        self.tx = pylibsrtp.Session(policy)
        self.browser = Browser(key, profile)
        self.bridge = MediaBridge(
            webrtc, LegMedia("PCMU", 0, telephone_event=101, ssrc=S_SSRC),
            lambda p: self.browser.receive(self.tx.protect(p)), lambda p: None,
            now=self.clock.seconds(), settings=BridgeSettings(rng=random.Random(7)))
        self.bridge.send_rtcp_to_webrtc = lambda p: self.browser.receive_rtcp(self.tx.protect_rtcp(p))
        self.bridge.send_rtcp_to_sip = lambda p: None

    def run(self, seconds: float, far: FarEnd | None = None) -> int:
        """``seconds`` of fake time in 20 ms steps; the far end sends a packet each step
        (None: silent, on hold).  Timers (transcoding, RTCP) run as the owner runs them.
        Returns the packets sent."""
        sent = 0
        for _ in range(round(seconds / FRAME)):
            self.clock.advance(FRAME)
            now = self.clock.seconds()
            if far is not None:
                self.bridge.from_sip(far.next(), now)
                sent += 1
            self.poll(now)
        return sent

    def silence(self, seconds: float) -> None:
        """A long silence, a second at a time (nothing happens in between but RTCP)."""
        for _ in range(round(seconds)):
            self.clock.advance(1.0)
            self.poll(self.clock.seconds())

    def poll(self, now: float) -> None:
        deadline = self.bridge.next_deadline()
        if deadline is not None and deadline <= now:
            self.bridge.poll(now)
        self.bridge.poll_rtcp(now)


#: How a far end comes back after the hold, from (its last sequence number, its last
#: timestamp): (sequence, timestamp, SSRC) of its first packet after it.
Resume = Callable[[int, int], tuple[int, int, int]]
TICKS = round(HOLD * RATE)
RESUMES: dict[str, Resume] = {
    # its clock ran on through the hold, numbers go on: the well-behaved phone
    "continues": lambda seq, ts: (seq, ts + TICKS, S_SSRC),
    # its clock paused while on hold (timestamps go on from the last one)
    "clock paused": lambda seq, ts: (seq, ts, S_SSRC),
    # it kept counting packets it did not send: a jump of 360 000 (mod 65 536)
    "kept counting": lambda seq, ts: (seq + round(HOLD / FRAME), ts + TICKS, S_SSRC),
    # a new stream under the same SSRC: sequence and timestamp restarted at random
    "restarted": lambda seq, ts: (random.Random(5).getrandbits(16), 12345, S_SSRC),
    # restarted a little behind where it stopped (within a reorder's reach of the last)
    "restarted just behind": lambda seq, ts: (seq - 50, ts - 50 * SAMPLES, S_SSRC),
    # restarted at the very number it stopped at
    "restarted at the same number": lambda seq, ts: (seq - 1, ts + TICKS, S_SSRC),
    # a new source (music-on-hold server replaced by the phone, a new media server)
    "new SSRC": lambda seq, ts: (seq + 7, ts + 999, 0x77777777),
}


class LongHoldTests(SynchronousTestCase):
    def hold_and_resume(self, name: str, webrtc: LegMedia, *, before: float = 3.0,
                        after: float = 3.0, start_seq: int = 40000) -> Call:
        """Talk ``before`` seconds, silence for :data:`HOLD`, talk ``after`` seconds with the
        far end resumed as :data:`RESUMES` ``[name]`` says; the browser's view is checked."""
        call = Call(webrtc)
        far = FarEnd(start_seq, 4242)
        sent = call.run(before, far)
        received_before = len(call.browser.rtp)
        rtcp_before = call.browser.rtcp
        call.silence(HOLD)
        self.assertEqual(len(call.browser.rtp), received_before)  # nothing made up meanwhile
        self.assertGreater(call.browser.rtcp, rtcp_before + 100)  # reports went on, decrypted
        far.seq, far.ts, far.ssrc = RESUMES[name](far.seq, far.ts)
        first_after = far.index
        sent += call.run(after, far)
        browser = call.browser
        self.assertEqual((browser.failures, browser.rtcp_failures), ([], []), name)
        resumed = browser.extended_sequences(received_before - 1)
        steps = {b - a for a, b in zip(resumed, resumed[1:])}
        self.assertEqual(steps, {1}, f"{name}: the browser's sequence numbers jump or repeat")
        if webrtc.codec.upper() == "PCMU":
            # Relayed: every packet after the unhold, with the far end's payload, in order.
            self.assertEqual(len(browser.rtp), sent, name)
            heard = [parse_rtp(p).payload(p) for p in browser.rtp[received_before:]]
            self.assertEqual(heard, far.payloads[first_after:], name)
        return call

    def test_relayed_pcmu_every_way_back(self) -> None:
        for name in RESUMES:
            with self.subTest(name):
                self.hold_and_resume(name, LegMedia("PCMU", 0, telephone_event=126, ssrc=W_SSRC))

    def test_relayed_through_a_rollover_before_the_hold(self) -> None:
        """23 minutes of talk first: the browser's sequence numbers wrap (its ROC is 1) before
        the silence, so a wrong guess after it would show."""
        for name in ("continues", "kept counting", "restarted"):
            with self.subTest(name):
                call = self.hold_and_resume(name, LegMedia("PCMU", 0, ssrc=W_SSRC),
                                            before=70000 * FRAME, after=2.0)
                sequences = call.browser.extended_sequences()
                self.assertGreater(sequences[-1] - sequences[0], 0x10000)

    def test_transcoded_to_opus_every_way_back(self) -> None:
        """PCMU from the SIP side, Opus to the browser (the transcoder numbers and stamps
        what it sends): after the unhold the browser decodes the far end's 1 kHz again."""
        for name in RESUMES:
            with self.subTest(name):
                call = self.hold_and_resume(
                    name, LegMedia("opus", 111, telephone_event=126, ssrc=W_SSRC))
                browser = call.browser
                decoder = OpusDecoder()
                pcm = np.concatenate([decoder.decode(parse_rtp(p).payload(p))
                                      for p in browser.rtp[-100:]])
                pcm = pcm[len(pcm) // 4:].astype(float)
                spectrum = np.abs(np.fft.rfft(pcm * np.hanning(len(pcm))))
                self.assertAlmostEqual(float(np.argmax(spectrum)) * 48000 / len(pcm), 1000.0,
                                       delta=15, msg=name)
                # one Opus packet per 20 ms, but the last, still in the encoder
                self.assertGreaterEqual(len(browser.rtp), 300 - 1, name)


class RestartOrStragglerTests(SynchronousTestCase):
    """The rule the fix added, at its edge: within :data:`MAX_LATENESS` a packet behind the
    last is still a straggler (reordering is untouched); after it, a restart."""

    def test_outbound_stream(self) -> None:
        out = OutboundStream(1, 8000, sequence=100, timestamp=0)
        out.translate(5, 1000, 0, 10.0)
        out.translate(5, 1001, 160, 10.02)
        self.assertEqual(out.translate(5, 999, 2 ** 32 - 160, 10.02 + MAX_LATENESS - 0.1)[::2],
                         (99, False))  # late: its own old number, not a new mapping
        self.assertEqual(out.translate(5, 990, 0, 10.02 + MAX_LATENESS + 0.1)[::2], (102, True))
        self.assertEqual(out.translate(5, 991, 160, 10.04 + MAX_LATENESS + 0.1)[::2], (103, False))

    def test_jitter_buffer(self) -> None:
        jb = JitterBuffer(8000)
        jb.push(1000, 0, b"a", 10.0)
        jb.push(1001, 160, b"b", 10.02)
        self.assertEqual(jb.push(999, 2 ** 32 - 160, b"z", 10.02 + MAX_LATENESS - 0.1), [])
        self.assertEqual(jb.late, 1)
        [played] = jb.push(990, 0, b"c", 10.02 + MAX_LATENESS + 0.1)
        self.assertEqual((played.seq, played.payload, played.resync), (990, b"c", True))
