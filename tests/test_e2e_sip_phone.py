"""The first call, with real peers: a person in headless Chromium uses the Phone UI to call a
baresip phone registered at Kamailio, through the gateway.

The browser's fake microphone plays 440 Hz; the phone auto-answers playing 1 kHz and records
what it hears.  Audio is checked by content both ways: the phone's recording is dominated by
440 Hz, the browser's received stream by 1 kHz.  Each test ends with the gateway holding no
call and no media port.
"""

from __future__ import annotations

import os
import wave

import numpy as np
from twisted.internet import reactor, task
from twisted.trial import unittest

from tests.e2e import Gateway, Phone, gateway_config
from tests.peers.baresip import Baresip, write_tone
from tests.peers.chromium import Chromium, aio, write_tone_wav
from tests.peers.kamailio import Kamailio
from tests.support import assert_near, inline


def dominant_hz(path) -> tuple[float, float]:
    """(dominant frequency, RMS level) of a WAV, past its first half second."""
    with wave.open(str(path)) as w:
        rate = w.getframerate()
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(float)
        if w.getnchannels() > 1:
            samples = samples.reshape(-1, w.getnchannels())[:, 0]
    samples = samples[rate // 2:]
    if len(samples) < rate // 4:
        return 0.0, 0.0
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum)) * rate / len(samples), float(np.sqrt(np.mean(samples ** 2)))


class SipPhoneCallTests(unittest.TestCase):
    timeout = 120

    async def setup_call(self, *, answermode: str = "auto", page_query: str = "",
                         phone_user: str = "1002") -> tuple[Phone, Baresip]:
        self.kam = Kamailio()
        self.addCleanup(self.kam.stop)
        await self.kam.start()
        self.gateway = Gateway(gateway_config(allowed_domains=("127.0.0.1",), t1=0.1, t2=0.8))
        self.gateway.start()
        self.addCleanup(self.gateway.stop)
        tone = write_tone(os.path.abspath(self.mktemp()) + ".wav", frequency=1000.0, rate=8000)
        self.phone = Baresip(phone_user, f"pass{phone_user}", registrar_port=self.kam.port,
                             answermode=answermode, codecs="PCMU", tone=tone)
        self.addCleanup(self.phone.stop)  # added after Kamailio's: runs first
        await self.phone.start()
        await self.phone.registered()
        self.browser = Chromium(fake_audio=write_tone_wav(self.mktemp() + "-mic.wav", 440.0))
        await self.browser.start()
        self.addCleanup(self.browser.stop)
        ui = await Phone.open(self.browser, self.gateway.url + page_query)
        await ui.login(login="1001", password="pass1001", domain="127.0.0.1",
                       proxy="127.0.0.1", port=str(self.kam.port), register=True)
        return ui, self.phone

    async def assert_clean(self) -> None:
        """No call, no media port, no SIP session timer left behind."""
        await self.gateway.when_idle()
        self.assertEqual(self.gateway.calls, {})
        self.assertEqual(self.gateway.ports_in_use, 0)
        self.assertEqual(self.gateway.sip.endpoint.timed_users, [])

    async def talk_and_check_audio(self, ui: Phone, phone: Baresip, mode: str) -> None:
        await ui.wait_state("call-status", "established")
        await phone.wait_event("CALL_ESTABLISHED")
        [call] = self.gateway.calls.values()
        self.assertEqual(call.describe()["media"]["mode"], mode)
        peak = await ui.received_frequency()
        assert_near(self, peak["frequency"], 1000, 15)
        self.assertGreater(peak["level"], -60)
        # Let the phone record a good second of the browser's tone.
        await task.deferLater(reactor, 1.5, lambda: None)

    def assert_phone_heard_440(self, phone: Baresip) -> None:
        [recording] = phone.recordings()
        frequency, level = dominant_hz(recording)
        assert_near(self, frequency, 440, 10)
        self.assertGreater(level, 300)

    @inline
    async def test_relay_call_both_ways_hangup_from_browser(self) -> None:
        ui, phone = await self.setup_call()
        await ui.call("1002")
        await self.talk_and_check_audio(ui, phone, "relay")
        mark = phone.mark()
        await ui.click("Hangup")
        await ui.wait_state("call-status", "finish")
        await phone.wait_event("CALL_CLOSED", since=mark)
        states = await ui.call_states()
        self.assertEqual(states[0], "pending")
        self.assertLess(states.index("trying"), states.index("established"))
        self.assertEqual(states[-1], "finish")
        self.assert_phone_heard_440(phone)
        await self.assert_clean()

    @inline
    async def test_transcode_call_both_ways_hangup_from_phone(self) -> None:
        ui, phone = await self.setup_call(page_query="?codecs=opus")
        await ui.call("1002")
        await self.talk_and_check_audio(ui, phone, "transcode")
        [call] = self.gateway.calls.values()
        self.assertEqual(call.describe()["media"]["webrtcCodec"], "opus/48000/2")
        self.assertEqual(call.describe()["media"]["sipCodec"], "PCMU/8000")
        await phone.command("hangup")
        await ui.wait_state("call-status", "finish")
        self.assertIn("Normal call clearing", await ui.status_text("call-status"))
        self.assert_phone_heard_440(phone)
        await self.assert_clean()

    @inline
    async def test_busy_callee(self) -> None:
        ui, phone = await self.setup_call(answermode="manual")
        await ui.call("1002")
        await phone.wait_event("CALL_INCOMING")
        await ui.wait_state("call-status", "ring", "ring_media", "session_progress", "trying")
        await phone.command("hangup")  # baresip declines a ringing call with 486
        await ui.wait_state("call-status", "busy")
        self.assertIn("486", await ui.status_text("call-status"))
        await self.assert_clean()

    @inline
    async def test_unknown_callee(self) -> None:
        ui, _ = await self.setup_call()
        await ui.call("1004")  # a valid user that is not registered
        await ui.wait_state("call-status", "failed")
        self.assertIn("404", await ui.status_text("call-status"))
        await self.assert_clean()

    @inline
    async def test_cancel_while_ringing(self) -> None:
        ui, phone = await self.setup_call(answermode="manual")
        await ui.call("1002")
        await phone.wait_event("CALL_INCOMING")
        await ui.wait_state("call-status", "ring", "ring_media", "session_progress")
        mark = phone.mark()
        await ui.click("Hangup")
        await ui.wait_state("call-status", "finish")
        await phone.wait_event("CALL_CLOSED", since=mark)
        self.assertEqual(phone.recordings(), [])
        await self.assert_clean()

    @inline
    async def test_tab_closed_mid_call_ends_sip_leg(self) -> None:
        ui, phone = await self.setup_call()
        await ui.call("1002")
        await ui.wait_state("call-status", "established")
        await phone.wait_event("CALL_ESTABLISHED")
        mark = phone.mark()
        closed_at = reactor.seconds()
        await aio(ui.page.close())
        await phone.wait_event("CALL_CLOSED", since=mark, timeout=2.0)
        self.assertLess(reactor.seconds() - closed_at, 2.0)
        await self.assert_clean()

    @inline
    async def test_gateway_stop_ends_calls_with_bye(self) -> None:
        """SIGTERM (stopService): live calls are hung up and their BYEs answered first."""
        ui, phone = await self.setup_call()
        await ui.call("1002")
        await ui.wait_state("call-status", "established")
        await phone.wait_event("CALL_ESTABLISHED")
        mark = phone.mark()
        await self.gateway.stop()
        await phone.wait_event("CALL_CLOSED", since=mark)
        self.assertEqual(self.gateway.top.call_gateway.unsettled, set())
