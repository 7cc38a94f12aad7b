"""In-call functions with real peers: DTMF, hold and transfer from the Phone UI (and REST for
the attended transfer), against baresip phones registered at Kamailio."""

from __future__ import annotations

import os
import wave

import numpy as np
from twisted.internet import reactor, task
from twisted.trial import unittest

from tests.e2e import Phone, RestMixin, SipPhoneMixin, phone_digits
from tests.peers.baresip import Baresip, write_tone
from tests.peers.chromium import aio
from tests.support import assert_near, inline


def tail_frequency(path, seconds: float = 1.0) -> tuple[float, float]:
    """Dominant frequency and RMS of the last ``seconds`` of a WAV."""
    with wave.open(str(path)) as w:
        rate = w.getframerate()
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(float)
    samples = samples[-int(rate * seconds):]
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum)) * rate / len(samples), float(np.sqrt(np.mean(samples ** 2)))


class PhoneUiInCallTests(SipPhoneMixin, unittest.TestCase):
    """The first-call set-up: browser 1001 (440 Hz) calls baresip 1002 (1 kHz)."""

    timeout = 120

    async def established(self) -> tuple[Phone, Baresip]:
        ui, phone = await self.setup_call()
        await ui.call("1002")
        await ui.wait_state("call-status", "established")
        await phone.wait_event("CALL_ESTABLISHED")
        return ui, phone

    @inline
    async def test_dtmf_both_ways(self) -> None:
        ui, phone = await self.established()
        mark = phone.mark()
        for key in ("4", "2", "#"):
            await ui.click(key)
        digits = await phone_digits(phone, mark, 3)
        self.assertEqual(digits, ["4", "2", "#"])
        await phone.command("sndcode", "7*")
        await aio(ui.page.wait_for_function(
            "() => document.body.textContent.includes('Received DTMF: 7*')", timeout=10000))

    @inline
    async def test_hold_stops_audio_unhold_resumes(self) -> None:
        ui, phone = await self.established()
        peak = await ui.received_frequency()
        assert_near(self, peak["frequency"], 1000, 15)
        mark = phone.mark()
        await ui.click("Hold")
        await ui.wait_state("call-status", "hold")
        offer = await phone.wait_event("CALL_REMOTE_SDP", since=mark)
        self.assertEqual(offer["param"], "offer")  # our re-INVITE ...
        self.assertIn("a=sendonly", phone.log_text())  # ... put the phone on hold
        await task.deferLater(reactor, 0.5, lambda: None)  # the far end's last packets drain
        silent = await ui.received_frequency()
        self.assertLess(silent["level"], -70)  # nothing comes from the held phone
        mark = phone.mark()
        await ui.click("Unhold")
        await ui.wait_state("call-status", "established")
        await phone.wait_event("CALL_REMOTE_SDP", since=mark)
        log = phone.log_text()
        self.assertGreater(log.rindex("a=sendrecv"), log.rindex("a=sendonly"))
        await task.deferLater(reactor, 0.5, lambda: None)
        peak = await ui.received_frequency()
        assert_near(self, peak["frequency"], 1000, 15)
        self.assertGreater(peak["level"], -60)
        await ui.click("Hangup")
        await self.assert_clean()

    @inline
    async def test_remote_hold_shown_to_the_browser(self) -> None:
        ui, phone = await self.established()
        await phone.command("hold")
        await ui.wait_state("call-status", "hold")
        await phone.command("resume")
        await ui.wait_state("call-status", "established")
        peak = await ui.received_frequency()
        assert_near(self, peak["frequency"], 1000, 15)
        await ui.click("Hangup")
        await self.assert_clean()

    @inline
    async def test_phone_transfers_the_browser(self) -> None:
        """The SIP side REFERs us (we are the transferee): the page asks first
        (``policy.incoming_transfers = "ask"``, the default), the user clicks "Accept
        transfer", the gateway calls 1003 and the browser now hears 1003."""
        ui, phone = await self.established()
        tone = write_tone(os.path.abspath(self.mktemp()) + ".wav", frequency=700.0, rate=8000, seconds=30.0)
        third = Baresip("1003", "pass1003", registrar_port=self.kam.port, outbound=True, codecs="PCMU", tone=tone)
        self.addCleanup(third.stop)
        await third.start()
        await third.registered()
        mark = phone.mark()
        await phone.command("transfer", "sip:1003@127.0.0.1")
        await aio(ui.page.get_by_role("button", name="Accept transfer", exact=True).wait_for())
        self.assertIn("sip:1003@127.0.0.1", await ui.status_text("transfer-request-text"))
        # nothing dialled before the user said yes
        self.assertEqual([e for e in third.events if e.get("type") == "CALL_INCOMING"], [])
        await ui.click("Accept transfer")
        await third.wait_event("CALL_ESTABLISHED")
        await phone.wait_event("CALL_CLOSED", since=mark)  # the transferor is out
        await task.deferLater(reactor, 0.5, lambda: None)
        peak = await ui.received_frequency()
        assert_near(self, peak["frequency"], 700, 15)
        [call] = self.gateway.calls.values()
        self.assertEqual(call.describe()["status"], "ESTABLISHED")
        mark = third.mark()
        await ui.click("Hangup")
        await third.wait_event("CALL_CLOSED", since=mark)
        await self.assert_clean()

    @inline
    async def test_blind_transfer_moves_the_phone(self) -> None:
        ui, phone = await self.established()
        tone = write_tone(os.path.abspath(self.mktemp()) + ".wav", frequency=700.0, rate=8000, seconds=30.0)
        third = Baresip("1003", "pass1003", registrar_port=self.kam.port, outbound=True, codecs="PCMU", tone=tone)
        self.addCleanup(third.stop)
        await third.start()
        await third.registered()
        await ui.fill("Transfer to", "1003")
        await ui.click("Transfer")
        await ui.wait_state("call-status", "finish")
        await third.wait_event("CALL_ESTABLISHED")
        await aio(ui.page.wait_for_function(
            "() => document.body.textContent.includes('COMPLETED')", timeout=10000))
        await task.deferLater(reactor, 2.0, lambda: None)  # the two phones talk
        mark = third.mark()
        await third.command("hangup")
        await third.wait_event("CALL_CLOSED", since=mark)
        [heard] = third.recordings()
        frequency, level = tail_frequency(heard)
        assert_near(self, frequency, 1000, 15)  # 1003 hears 1002, not the browser
        self.assertGreater(level, 300)
        await self.assert_clean()


class RestAttendedTransferTests(RestMixin, unittest.TestCase):
    timeout = 120

    @inline
    async def test_attended_transfer_joins_two_phones(self) -> None:
        phone = await self.setup()
        tone = write_tone(os.path.abspath(self.mktemp()) + ".wav", frequency=700.0, rate=8000, seconds=30.0)
        third = Baresip("1003", "pass1003", registrar_port=self.kam.port, outbound=True, codecs="PCMU", tone=tone)
        self.addCleanup(third.stop)
        await third.start()
        await third.registered()
        self.assertEqual((await self.rest("call/startup", self.startup_body(callId="a")))[0], 200)
        await phone.wait_event("CALL_ESTABLISHED")
        self.assertEqual((await self.rest("call/hold", {"callId": "a"}))[0], 200)
        body = self.startup_body(callId="b", callee="1003")
        self.assertEqual((await self.rest("call/startup", body))[0], 200)
        await third.wait_event("CALL_ESTABLISHED")
        self.assertEqual(await self.rest("call/transfer", {"callId": "a", "target": "b"}),
                         (200, {}))
        await self.gateway.when_idle()  # both of the gateway's calls are over...
        await task.deferLater(reactor, 2.0, lambda: None)  # ...and the phones talk directly
        self.assertIn("Replaces=", phone.log_text())  # the REFER named the dialog to replace
        mark = third.mark()
        await third.command("hangup")
        await third.wait_event("CALL_CLOSED", since=mark)
        frequency, level = tail_frequency(third.recordings()[-1])
        assert_near(self, frequency, 1000, 15)  # 1003 hears 1002's tone
        self.assertGreater(level, 300)


class RestHandOverTests(SipPhoneMixin, unittest.TestCase):
    """REST call/startup with sessionId: the browser gets the call as an incoming one, and
    once it answers the gateway calls the phone; audio both ways."""

    timeout = 120

    @inline
    async def test_startup_handed_to_a_session(self) -> None:
        ui, phone = await self.setup_call()
        await self.start_handed_call(ui)
        await ui.click("Answer")
        await ui.wait_state("call-status", "established")
        await phone.wait_event("CALL_ESTABLISHED")
        peak = await ui.received_frequency()
        assert_near(self, peak["frequency"], 1000, 15)
        mark = phone.mark()
        await ui.click("Hangup")
        await phone.wait_event("CALL_CLOSED", since=mark)
        await self.assert_clean()
