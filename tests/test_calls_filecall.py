"""Server-side media calls (REST playFile/record: wcsgw.calls.filecall) on every codec.

A real FileCall with a fake SIP dialog and SIP-side RTP socket (tests/call_fakes.py: no socket
is opened; what it sends is recorded, the far end's packets are handed to it at a clock time),
and every timer on a task.Clock.  For each codec the SIP side may choose: the INVITE offers the
configured codecs, a 1 kHz WAV played is received as 1 kHz (the RTP we send, decoded with a
fresh decoder), and a tone sent in — with a packet lost and two swapped — is recorded at 1 kHz
at the codec's rate, with no hole where the packet was lost.

The tone is 1004 Hz, not 1000: an exact 1 kHz puts libspeex's decoder in a state it never leaves
after one concealed frame (a property of the library, seen in the mediastream peer tests).
"""

from __future__ import annotations

import wave
from pathlib import Path
from typing import Any

import numpy as np
from twisted.internet import defer
from twisted.trial import unittest

import wcsgw.calls.filecall as filecall_module
from tests.call_fakes import Account, FakeRtpSocket, fake_call_setup, fake_env, sip_answer
from tests.support import assert_near
from wcsgw.calls.environment import CallEnvironment
from wcsgw.calls.errors import CallError, Codes
from wcsgw.calls.filecall import FileCall, file_call_offer, settle_file_answer
from wcsgw.calls.plan import CodecPolicy
from wcsgw.calls.status import CallStatus
from wcsgw.media.audiocodec import make_codec, packet_samples
from wcsgw.media.rtp import build_rtp, parse_rtp
from wcsgw.sdp.codecs import Codec
from wcsgw.sip.invite import Answered

TONE = 1004.0
AMPLITUDE = 8000.0
FILE_RATE = 44100  # the file is resampled to every codec's rate

#: (config name, rtpmap the SIP side answers, fmtp it answers, its a=ptime, WAV rate expected)
CODECS = {
    "PCMU": ("PCMU/8000", None, None, 8000),
    "PCMA": ("PCMA/8000", None, 30, 8000),
    "G729": ("G729/8000", "annexb=no", 40, 8000),
    "speex/8000": ("speex/8000", None, None, 8000),
    "speex/16000": ("speex/16000", None, None, 16000),
    "opus": ("opus/48000/2", "useinbandfec=1", None, 48000),
    "G722": ("G722/8000", None, None, 16000),
}


def tone(rate: int, seconds: float, freq: float = TONE) -> np.ndarray:
    t = np.arange(int(round(rate * seconds))) / rate
    return AMPLITUDE * np.sin(2 * np.pi * freq * t)


def write_wav(path: Path, rate: int, samples: np.ndarray) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.clip(np.rint(samples), -32768, 32767).astype("<i2").tobytes())
    return path


def dominant(samples: np.ndarray, rate: int) -> tuple[float, float]:
    """(frequency of the strongest bin, RMS)."""
    x = samples.astype(np.float64)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum)) * rate / len(x), float(np.sqrt(np.mean(x**2)))


class FileCallCase(unittest.TestCase):
    def setUp(self) -> None:
        fake_call_setup(self)
        self.dir = Path(self.mktemp())
        self.dir.mkdir()
        self.statuses: list[dict[str, Any]] = []

    def env(self, sip: list[str]) -> CallEnvironment:
        policy = CodecPolicy.from_names(sip, ["opus"], transcodable=())
        return fake_env(self, codecs=policy)

    def make_call(self, sip: list[str], play: Path | None, record: Path | None) -> FileCall:
        call = FileCall(env=self.env(sip), call_id="rest-1", session_id=None, account=Account(),
                        request_uri="sip:bob@127.0.0.1", callee="bob", visible_name=None,
                        has_audio=True, has_video=False, sip_headers={},
                        on_status=self.statuses.append, on_gone=lambda c: None,
                        play_file=play, record_file=record)
        self.addCleanup(self.close, call)
        call.start()
        self.call = call
        return call

    @property
    def sent(self) -> list[bytes]:
        """The RTP the call sent to the SIP side (its fake socket's record)."""
        assert isinstance(self.call.rtp, FakeRtpSocket)
        return self.call.rtp.rtp_packets

    def close(self, call: FileCall) -> defer.Deferred:
        call.hangup()
        return call.rtp.close() if call.rtp is not None else defer.succeed(None)

    def answer(self, call: FileCall, name: str) -> Codec:
        """The SIP side answers the offer's ``name`` codec (and telephone-event)."""
        rtpmap, fmtp, ptime, _ = CODECS[name]
        offered = {c.rtpmap.lower(): c for c in call.invite.offered_codecs()}
        codec = offered[rtpmap.lower()]
        event = offered.get(f"telephone-event/{codec.clock_rate}")
        formats = [(codec.payload_type, rtpmap, fmtp)]
        if event is not None:
            formats.append((event.payload_type, event.rtpmap, "0-16"))
        call.sip.heard(Answered(sip_answer(formats, ptime=ptime)))
        self.assertEqual(call.status, CallStatus.ESTABLISHED)
        return codec


class OfferTests(FileCallCase):
    def test_offer_follows_codecs_sip_and_what_can_be_encoded(self) -> None:
        policy = CodecPolicy.from_names(["G729", "opus", "PCMA", "speex/16000", "G722"], ["opus"],
                                        transcodable=())
        offer = file_call_offer(policy, {"g729", "opus", "pcma", "g722", "pcmu"})
        self.assertEqual([c.rtpmap for c in offer],
                         ["G729/8000", "opus/48000/2", "PCMA/8000", "G722/8000",
                          "telephone-event/8000", "telephone-event/48000"])
        numbers = {c.rtpmap: c.payload_type for c in offer}
        self.assertEqual([numbers[n] for n in ("G729/8000", "PCMA/8000", "G722/8000",
                                               "telephone-event/8000")], [18, 8, 9, 101])
        self.assertGreaterEqual(numbers["opus/48000/2"], 96)
        self.assertGreaterEqual(numbers["telephone-event/48000"], 96)
        self.assertEqual(file_call_offer(policy, {"pcmu"}), [])

    def test_answer_picks_the_first_offered_codec_and_its_event(self) -> None:
        offer = [Codec("G722", 8000, 1, 9), Codec("opus", 48000, 2, 96),
                 Codec("telephone-event", 8000, 1, 101), Codec("telephone-event", 48000, 1, 97)]
        answer = [Codec("GSM", 8000, 1, 3), Codec("opus", 48000, 2, 111, "useinbandfec=1"),
                  Codec("telephone-event", 8000, 1, 101), Codec("telephone-event", 48000, 1, 110)]
        chosen, event = settle_file_answer(offer, answer)
        self.assertEqual((chosen.payload_type, chosen.fmtp, event.payload_type),
                         (111, "useinbandfec=1", 110))
        with self.assertRaises(ValueError):
            settle_file_answer(offer, [Codec("GSM", 8000, 1, 3)])

    def test_call_refused_when_nothing_can_be_encoded(self) -> None:
        self.patch(filecall_module, "encodable", lambda: frozenset({"pcmu"}))
        call = FileCall(env=self.env(["G729"]), call_id="x", session_id=None, account=Account(),
                        request_uri="sip:bob@127.0.0.1", callee="bob", visible_name=None,
                        has_audio=True, has_video=False, sip_headers={},
                        on_status=self.statuses.append, on_gone=lambda c: None,
                        play_file=None, record_file=None)
        with self.assertRaises(CallError) as caught:
            call.start()
        self.assertEqual(caught.exception.code, Codes.NO_CODECS)
        self.assertIsNone(call.invite)

    def test_answer_with_a_codec_not_offered_fails_the_call(self) -> None:
        call = self.make_call(["PCMU", "G722"], None, None)
        call.sip.heard(Answered(sip_answer([(18, "G729/8000", None)])))
        self.assertEqual((call.status, call.info), (CallStatus.FAILED, "No common codecs"))
        self.assertTrue(call.invite.hung_up)


    def test_file_gone_by_the_answer_fails_the_call_cleanly(self) -> None:
        play = write_wav(self.dir / "gone.wav", 8000, tone(8000, 0.2))
        call = self.make_call(["PCMU"], play, self.dir / "rec.wav")
        play.unlink()  # checked by the REST layer, removed before the far end answered
        call.sip.heard(Answered(sip_answer([(0, "PCMU/8000", None)])))
        self.assertEqual(call.status, CallStatus.FAILED)
        self.assertIn("server-side media failed", call.info)
        self.assertTrue(call.invite.hung_up)
        self.assertIsNone(call.bridge)
        self.clock.advance(0)
        self.assertEqual(self.clock.getDelayedCalls(), [])


class PlayAndRecordTests(FileCallCase):
    """Each codec: what is played is the file's 1 kHz, what is recorded is the far end's."""

    PACKETS_IN = 50  # one second of the far end's tone, at its 20 ms

    def play_and_record(self, name: str) -> None:
        rtpmap, fmtp, ptime, wav_rate = CODECS[name]
        play = write_wav(self.dir / "play.wav", FILE_RATE, tone(FILE_RATE, 1.0))
        record = self.dir / "rec.wav"
        # G.722 and Opus come after PCMU in the config: the SIP side's choice is what counts.
        call = self.make_call(["PCMU", name] if name != "PCMU" else ["PCMU"], play, record)
        offered = [c.rtpmap for c in call.invite.offered_codecs()]
        self.assertEqual(offered[0], "PCMU/8000")
        self.assertIn(rtpmap, offered)
        self.assertIn("telephone-event/8000", offered)
        codec = self.answer(call, name)
        media = call.describe()["media"]
        self.assertEqual((media["sipCodec"], media["mode"]), (codec.rtpmap, "relay"))

        # The far end's tone, encoded by a codec of its own, 20 ms a packet; packet 20 lost,
        # 30 and 31 swapped.
        far = make_codec(codec.name, codec.clock_rate)
        self.addCleanup(far.close)
        step = packet_samples(far, 20)
        ticks = step * far.rtp_clock // far.sample_rate
        signal = tone(far.sample_rate, 1.0)
        packets = [build_rtp(payload_type=codec.payload_type, sequence=(4000 + i) & 0xFFFF,
                             timestamp=(77 + i * ticks) & 0xFFFFFFFF, ssrc=0xFA4,
                             payload=far.encode(signal[i * step:(i + 1) * step]))
                   for i in range(self.PACKETS_IN)]
        order = [i for i in range(self.PACKETS_IN) if i != 20]
        a, b = order.index(30), order.index(31)
        order[a], order[b] = order[b], order[a]
        for i in order:
            call.rtp.receive(packets[i])  # from the address the answer names, now
            self.clock.advance(0.020)
        for _ in range(25):  # the file (1 s) is over: silence follows
            self.clock.advance(0.020)
        call.hangup()

        # What we sent: the answered payload type, one packet per ptime, continuous.
        headers = [parse_rtp(p) for p in self.sent]
        self.assertEqual({h.payload_type for h in headers}, {codec.payload_type})
        decoder = make_codec(codec.name, codec.clock_rate)
        self.addCleanup(decoder.close)
        expect_samples = packet_samples(decoder, ptime or 20)
        expect_ticks = expect_samples * decoder.rtp_clock // decoder.sample_rate
        steps = {(b.timestamp - a.timestamp) & 0xFFFFFFFF for a, b in zip(headers, headers[1:])}
        self.assertEqual(steps, {expect_ticks})
        self.assertEqual({(b.sequence - a.sequence) & 0xFFFF for a, b in zip(headers, headers[1:])},
                         {1})
        elapsed = self.PACKETS_IN * 0.020 - 0.020 + 0.5
        assert_near(self, len(headers), elapsed * 1000 / (ptime or 20) + 1, 2)
        pcm = np.concatenate([decoder.decode(h.payload(p)) for h, p in zip(headers, self.sent)])
        rate = decoder.sample_rate
        heard = pcm[rate // 10: rate * 9 // 10]  # the middle of the 1 s file
        frequency, level = dominant(heard, rate)
        assert_near(self, frequency, TONE, 5)
        self.assertGreater(level, AMPLITUDE / np.sqrt(2) / 2, name)  # within 6 dB
        self.assertLess(np.sqrt(np.mean(pcm[int(rate * 1.2):].astype(float) ** 2)), 100,
                        "silence after the end of the file")

        # What we recorded: the codec's rate, all of it (the lost packet concealed), 1 kHz.
        with wave.open(str(record), "rb") as w:
            self.assertEqual((w.getnchannels(), w.getsampwidth(), w.getframerate()),
                             (1, 2, wav_rate))
            recorded = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(float)
        self.assertEqual(len(recorded), self.PACKETS_IN * step)
        recorder = call.leg.recorder
        self.assertEqual((recorder.concealed_samples, recorder.late, recorder.codec_errors),
                         (step, 0, 0))
        frequency, level = dominant(recorded[wav_rate // 10:], wav_rate)
        assert_near(self, frequency, TONE, 5)
        self.assertGreater(level, AMPLITUDE / np.sqrt(2) / 2, name)
        # No hole in time: every 10 ms from 100 ms on carries the tone (the lost packet's
        # 20 ms, at 400 ms, included).
        body = recorded[wav_rate // 10: len(recorded) - wav_rate // 50]
        blocks = body[: len(body) // (wav_rate // 100) * (wav_rate // 100)].reshape(-1, wav_rate // 100)
        rms = np.sqrt((blocks**2).mean(axis=1))
        self.assertGreater(rms.min(), 0.25 * np.median(rms), (name, rms.argmin()))

    def test_pcmu(self) -> None:
        self.play_and_record("PCMU")

    def test_pcma_ptime_30(self) -> None:
        self.play_and_record("PCMA")

    def test_g729_ptime_40(self) -> None:
        self.play_and_record("G729")

    def test_speex_nb(self) -> None:
        self.play_and_record("speex/8000")

    def test_speex_wb(self) -> None:
        self.play_and_record("speex/16000")

    def test_opus(self) -> None:
        self.play_and_record("opus")

    def test_g722(self) -> None:
        self.play_and_record("G722")


class WithoutFilesTests(FileCallCase):
    def test_no_play_file_sends_silence_in_the_codec_and_nothing_is_left_armed(self) -> None:
        call = self.make_call(["G722"], None, None)
        codec = self.answer(call, "G722")
        for _ in range(10):
            self.clock.advance(0.020)
        self.clock.advance(0.001)  # the Clock's float sum may land just short of 200 ms
        self.assertEqual(len(self.sent), 11)
        decoder = make_codec("G722")
        self.addCleanup(decoder.close)
        pcm = np.concatenate([decoder.decode(parse_rtp(p).payload(p)) for p in self.sent])
        self.assertEqual(len(pcm), 11 * 320)
        self.assertLess(np.abs(pcm.astype(int)).max(), 50)
        self.assertEqual({parse_rtp(p).payload_type for p in self.sent}, {codec.payload_type})
        call.hangup()
        self.clock.advance(0)  # on_settled, called soon after the end
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual(call.leg.state, "closed")
