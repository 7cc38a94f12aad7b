"""A transcoded call (browser Opus <-> SIP PCMA or G.722) with loss and reordering on the SIP
side, driven through the call layer's single timer.

A real :class:`~wcsgw.calls.call.Call` with a fake browser leg, SIP dialog and SIP-side RTP
socket (tests/call_fakes.py: no socket is opened); the SIP-side packets are handed to that
socket at the times a task.Clock says, which also runs every timer.  What is checked is the
wiring between the layers: a packet that arrives behind a gap waits in the transcoder's reorder
buffer, the bridge reports the deadline (``on_deadline``), the call arms its one timer
(``Call._arm_dtmf``) and, when the Clock reaches it, ``bridge.poll`` conceals the missing packet
and releases the held one — before the next packet arrives, so by the timer and not by traffic;
a packet that is only reordered is put back in place; the browser gets one continuous Opus
stream at 1 kHz; and after the hang-up nothing is left armed.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from twisted.internet import defer
from twisted.trial import unittest

from tests.call_fakes import Account, fake_call_setup, fake_env, sip_answer
from tests.support import assert_near
from wcsgw.calls.call import Call
from wcsgw.calls.outbound import OutboundCall
from wcsgw.calls.plan import CodecPolicy
from wcsgw.calls.status import CallStatus
from wcsgw.media.audiocodec import make_codec
from wcsgw.media.rtp import build_rtp, parse_rtp
from wcsgw.sip.invite import Answered

HERE = os.path.dirname(__file__)
CHROME_OFFER = open(os.path.join(HERE, "data", "chromium_offer_av.sdp")).read()
OPUS_PT = 111  # Chromium's, in that offer
TONE = 1004.0  # not exactly 1 kHz: see tests/test_calls_filecall.py
AMPLITUDE = 8000.0
STEP = 0.005  # the Clock moves in 5 ms steps: timers fire between packet arrivals
PACKETS = 100
LOST = 20  # never arrives
SWAPPED = (40, 41)  # 41 arrives first, 40 five milliseconds later (inside the wait)


def schedule() -> list[tuple[float, int]]:
    """(arrival time from the start, packet index), in arrival order."""
    events = []
    for i in range(PACKETS):
        if i == LOST:
            continue
        t = i * 0.020
        if i == SWAPPED[1]:
            t = SWAPPED[0] * 0.020
        elif i == SWAPPED[0]:
            t = SWAPPED[0] * 0.020 + STEP
        events.append((round(t, 6), i))
    return sorted(events)


class TranscodeLossTests(unittest.TestCase):
    def setUp(self) -> None:
        fake_call_setup(self)

    def make_call(self, sip_codec: str) -> Call:
        policy = CodecPolicy.from_names([sip_codec], ["opus"],
                                        transcodable=["opus", sip_codec.lower()])
        env = fake_env(self, codecs=policy)
        call = OutboundCall(env=env, call_id="c1", session_id="s", account=Account(),
                    request_uri="sip:bob@127.0.0.1", callee="bob", visible_name=None,
                    has_audio=True, has_video=False, browser_offer=CHROME_OFFER, sip_headers={},
                    on_status=lambda status: None, on_gone=lambda c: None)
        self.addCleanup(self.close, call)
        call.start()
        return call

    def close(self, call: Call) -> defer.Deferred:
        call.hangup()
        closing = [s.close() for s in (call.rtp, call.leg) if s is not None]
        return defer.gatherResults(closing)

    def run_call(self, sip_codec: str, pt: int, rtpmap: str) -> None:
        call = self.make_call(sip_codec)
        self.assertEqual([c.rtpmap for c in call.invite.offered_codecs()],
                         [rtpmap, "telephone-event/8000"])
        call.sip.heard(Answered(sip_answer([(pt, rtpmap, None), (101, "telephone-event/8000",
                                                                      "0-16")])))
        self.assertEqual(call.status, CallStatus.ESTABLISHED)
        self.assertEqual(call.describe()["media"]["mode"], "transcode")
        leg: Any = call.leg

        far = make_codec(sip_codec)
        self.addCleanup(far.close)
        step = far.sample_rate // 50
        signal = AMPLITUDE * np.sin(2 * np.pi * TONE * np.arange(PACKETS * step) / far.sample_rate)
        packets = [build_rtp(payload_type=pt, sequence=(65500 + i) & 0xFFFF,  # wraps, too
                             timestamp=(3_000_000 + i * 160) & 0xFFFFFFFF, ssrc=0x51D,
                             payload=far.encode(signal[i * step:(i + 1) * step]))
                   for i in range(PACKETS)]
        start = self.clock.seconds()
        events = schedule()
        sent_at: dict[int, float] = {}  # packet index -> when it was handed to the call
        armed_while_held = False
        while events:
            now = round(self.clock.seconds() - start, 6)
            while events and events[0][0] <= now + 1e-9:
                _, i = events.pop(0)
                call.rtp.receive(packets[i])  # from the address the answer names, now
                sent_at[i] = now
            if LOST + 1 in sent_at and LOST + 2 not in sent_at:
                armed_while_held = armed_while_held or (
                    call.media.armed)
            self.clock.advance(STEP)
        for _ in range(20):
            self.clock.advance(STEP)
        self.assertTrue(armed_while_held, "no timer was armed for the packet behind the gap")

        # The packet after the loss was released by the timer: something went to the browser
        # after it arrived and before the next one did.
        after_loss = [t - start for t, _ in leg.rtp
                      if sent_at[LOST + 1] + 1e-6 < t - start < sent_at[LOST + 2] - 1e-6]
        self.assertTrue(after_loss, "the held packet waited for the next packet, not the timer")
        stats = call.bridge.stats()["sip"]
        self.assertEqual(stats["late"], 0)  # the reordered packet came in time
        self.assertGreaterEqual(stats["reordered"], 1)
        assert_near(self, stats["concealed_ms"], 20.0, 0.01)  # the lost packet, and only it

        # One continuous Opus stream: every timestamp step 20 ms, no sequence gap.
        opus = [parse_rtp(p) for _, p in leg.rtp]
        self.assertEqual({h.payload_type for h in opus}, {OPUS_PT})
        pairs = list(zip(opus, opus[1:]))
        self.assertEqual({(b.timestamp - a.timestamp) & 0xFFFFFFFF for a, b in pairs}, {960})
        self.assertEqual({(b.sequence - a.sequence) & 0xFFFF for a, b in pairs}, {1})
        assert_near(self, len(opus), PACKETS, 1)
        decoder = make_codec("opus")
        self.addCleanup(decoder.close)
        pcm = np.concatenate([decoder.decode(h.payload(p)) for h, (_, p) in zip(opus, leg.rtp)])
        x = pcm[4800:].astype(np.float64)  # from 100 ms on
        spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
        assert_near(self, float(np.argmax(spectrum)) * 48000 / len(x), TONE, 5)
        blocks = x[: len(x) // 480 * 480 - 960].reshape(-1, 480)  # 10 ms blocks
        rms = np.sqrt((blocks**2).mean(axis=1))
        self.assertGreater(rms.min(), 0.25 * np.median(rms), "a hole in the audio")

        # A packet held behind a gap when the call ends: its timer goes with the call.
        last = PACKETS + 1
        call.rtp.receive(build_rtp(payload_type=pt, sequence=(65500 + last) & 0xFFFF,
                                   timestamp=(3_000_000 + last * 160) & 0xFFFFFFFF, ssrc=0x51D,
                                   payload=far.encode(np.zeros(step))))
        self.assertTrue(call.media.armed)
        call.hangup()
        self.assertFalse(call.media.armed)
        self.assertIsNone(call.bridge)
        self.clock.advance(0)  # on_settled, called soon after the end
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_pcma_phone(self) -> None:
        self.run_call("PCMA", 8, "PCMA/8000")

    def test_g722_phone(self) -> None:
        self.run_call("G722", 9, "G722/8000")
