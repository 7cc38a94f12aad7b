"""Recording a real browser-to-phone call end to end: Chromium (the Web SDK, a fake 440 Hz
microphone) calls baresip 1002 (a 1 kHz tone) through Kamailio and the gateway; the gateway's
stereo WAV must hold 440 Hz on the left (the browser) and 1 kHz on the right (the phone),
measured by FFT, and last about as long as the call talked.  Relayed (PCMU both sides, asked
with JSON-RPC ``record`` through ``call.record()``) and transcoded (Opus browser, PCMU phone,
``[recording] all_calls``)."""

from __future__ import annotations

import os
import wave
from typing import Any

import attrs
import numpy as np
from twisted.internet import reactor, task
from twisted.trial import unittest

from tests.e2e import SipPhoneMixin, gateway_config
from tests.peers.chromium import aio, evaluate
from tests.quality import dominant, rms
from tests.support import assert_near, inline
from tests.test_security_rtp import until
from wcsgw.config import Config, RecordingSettings

#: how long the test lets the two talk once the call is established
TALK_SECONDS = 3.0

#: A page of its own on the Web SDK: calls 1002 as 1001 (no registration), records the call
#: with call.record() once the gateway took the call (before or after the answer, whichever
#: comes first: both must work), and says what happened in window.rec.
CALL_PAGE = """async ([port, codecs, record]) => {
    document.body.innerHTML = '<audio id="remote" autoplay></audio>';
    const wcsgw = await import('/sdk/wcsgw.js');
    window.rec = {state: 'connecting', recording: null, error: null};
    const session = wcsgw.createSession({urlServer: `ws://${location.host}/ws`,
        sipOptions: {login: '1001', password: 'pass1001', domain: '127.0.0.1',
                     outboundProxy: '127.0.0.1', port: port, registerRequired: false}});
    session.on(wcsgw.SESSION_STATUS.ESTABLISHED, async () => {
        const call = session.createCall({callee: '1002', codecs: codecs,
            remoteVideoDisplay: document.getElementById('remote'),
            constraints: {audio: true, video: false}});
        window.recCall = call;
        call.on(wcsgw.CALL_STATUS.ESTABLISHED, () => { window.rec.state = 'established'; });
        call.on(wcsgw.CALL_STATUS.FAILED, () => { window.rec.state = 'failed'; });
        call.on(wcsgw.CALL_STATUS.FINISH, () => { window.rec.state = 'finished'; });
        await call.call();
        if (record) {
            try { window.rec.recording = await call.record(); }
            catch (e) { window.rec.error = String(e && e.message || e); }
        }
    });
}"""


def read_stereo(path: str) -> tuple[int, np.ndarray]:
    with wave.open(path) as w:
        assert (w.getnchannels(), w.getsampwidth()) == (2, 2), (w.getnchannels(), w.getsampwidth())
        rate = w.getframerate()
        frames = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, 2)
    return rate, frames


class RecordedCallTests(SipPhoneMixin, unittest.TestCase):
    timeout = 120

    def config(self, **recording: Any) -> Config:
        self.recordings = os.path.abspath(self.mktemp())
        return attrs.evolve(gateway_config(allowed_domains=("127.0.0.1",), t1=0.1, t2=0.8),
                            recording=RecordingSettings(folder=self.recordings, **recording))

    async def recorded_call(self, config: Config, *, phone_codecs: str, browser_codecs: list[str],
                            record: bool, mode: str) -> tuple[str, int, np.ndarray]:
        """The call, talked for TALK_SECONDS and hung up by the browser; (the recording's
        name, its rate, its frames) once the gateway closed the file."""
        # ausrc_*: baresip resamples the 8 kHz tone for any codec.
        phone = await self.start_pbx_and_phone(config, codecs=phone_codecs, ausrc_srate=8000,
                                               ausrc_channels=1)
        browser = await self.start_browser(raw_mic=True)
        page = await browser.new_page()
        await aio(page.goto(self.gateway.url))
        await evaluate(page, CALL_PAGE, [self.kam.port, browser_codecs, record])
        await aio(page.wait_for_function("() => window.rec.state === 'established'",
                                         timeout=20000))
        await phone.wait_event("CALL_ESTABLISHED")
        [call] = self.gateway.calls.values()
        self.assertEqual(call.describe()["media"]["mode"], mode)
        if record:
            await aio(page.wait_for_function("() => window.rec.recording || window.rec.error",
                                             timeout=10000))
            self.assertIsNone(await evaluate(page, "window.rec.error"))
        await until(lambda: call.recording is not None, what="the recording to start")
        name = call.recording
        if record:
            self.assertEqual(await evaluate(page, "window.rec.recording"), name)
        self.assertEqual(call.describe()["recording"], name)
        await task.deferLater(reactor, TALK_SECONDS, lambda: None)
        mark = phone.mark()
        await evaluate(page, "window.recCall.hangup()")
        await phone.wait_event("CALL_CLOSED", since=mark)
        rate, frames = await self.closed_recording(name)
        return name, rate, frames

    async def closed_recording(self, name: str) -> tuple[int, np.ndarray]:
        """Once the call is over and the gateway closed its file: the only file in the
        folder, ``name``, private; its rate and frames."""
        await self.gateway.when_idle()
        recordings = self.gateway.top.call_gateway.recordings
        await until(lambda: recordings.finished >= 1, what="the recording to be closed")
        self.assertEqual(os.listdir(self.recordings), [name])
        self.assertEqual(oct(os.stat(os.path.join(self.recordings, name)).st_mode & 0o777),
                         "0o600")
        return read_stereo(os.path.join(self.recordings, name))

    def assert_tones(self, rate: int, frames: np.ndarray) -> None:
        """Left 440 Hz (the browser), right 1 kHz (the phone), each loud in its own channel,
        over the middle of the call; about as long as the call talked."""
        seconds = len(frames) / rate
        self.assertGreater(seconds, TALK_SECONDS - 0.2)
        self.assertLess(seconds, TALK_SECONDS + 3.0)
        middle = frames[int(0.5 * rate):int((seconds - 0.3) * rate)]
        left, right = middle[:, 0], middle[:, 1]
        assert_near(self, dominant(left, rate), 440, 10)
        assert_near(self, dominant(right, rate), 1000, 10)
        self.assertGreater(rms(left), 300)
        self.assertGreater(rms(right), 300)

    @inline
    async def test_relayed_call_recorded_with_record(self) -> None:
        """PCMU on both legs (relayed); the browser's ``call.record()``: 8 kHz stereo."""
        name, rate, frames = await self.recorded_call(
            self.config(), phone_codecs="PCMU", browser_codecs=["PCMU"], record=True,
            mode="relay")
        self.assertEqual(rate, 8000)
        self.assert_tones(rate, frames)

    @inline
    async def test_transcoded_call_recorded_by_all_calls(self) -> None:
        """Opus from the browser, PCMU to the phone (transcoded); ``all_calls``, nobody
        asked: 16 kHz stereo (the browser's side is wideband)."""
        name, rate, frames = await self.recorded_call(
            self.config(all_calls=True), phone_codecs="PCMU", browser_codecs=["opus"],
            record=False, mode="transcode")
        self.assertEqual(rate, 16000)
        self.assert_tones(rate, frames)

    @inline
    async def test_the_phone_ui_record_button(self) -> None:
        """The Phone UI's ``Record`` during a call (PCMU, relayed): the button then reads
        ``Stop recording``; the call's file holds both sides; after the call it reads
        ``Record`` again."""
        ui, phone = await self.setup_call(config=self.config(), raw_mic=True)
        await ui.call("1002")
        await ui.wait_state("call-status", "established")
        await phone.wait_event("CALL_ESTABLISHED")
        [call] = self.gateway.calls.values()
        await ui.click("Record")
        await aio(ui.page.get_by_role("button", name="Stop recording", exact=True).wait_for())
        name = call.recording
        self.assertIsNotNone(name)
        await task.deferLater(reactor, TALK_SECONDS, lambda: None)
        mark = phone.mark()
        await ui.click("Hangup")
        await phone.wait_event("CALL_CLOSED", since=mark)
        rate, frames = await self.closed_recording(name)
        self.assertEqual(rate, 8000)
        self.assert_tones(rate, frames)
        button = ui.page.get_by_role("button", name="Record", exact=True)
        self.assertTrue(await aio(button.is_disabled()))

    @inline
    async def test_a_stopping_gateway_closes_the_recording_first(self) -> None:
        """The gateway is stopped mid-call (all_calls, relayed): its stop ends the call and
        returns only once the file is closed and whole."""
        config = self.config(all_calls=True)
        phone = await self.start_pbx_and_phone(config, codecs="PCMU", ausrc_srate=8000,
                                               ausrc_channels=1)
        browser = await self.start_browser(raw_mic=True)
        page = await browser.new_page()
        await aio(page.goto(self.gateway.url))
        await evaluate(page, CALL_PAGE, [self.kam.port, ["PCMU"], False])
        await aio(page.wait_for_function("() => window.rec.state === 'established'",
                                         timeout=20000))
        await phone.wait_event("CALL_ESTABLISHED")
        [call] = self.gateway.calls.values()
        await until(lambda: call.recording is not None, what="the recording to start")
        recordings = self.gateway.top.call_gateway.recordings
        await task.deferLater(reactor, TALK_SECONDS, lambda: None)
        await self.gateway.stop()
        self.assertEqual(recordings.finished, 1)  # closed before the stop returned
        rate, frames = read_stereo(os.path.join(self.recordings, call.recording))
        self.assert_tones(rate, frames)
