"""The first call, with real peers: a person in headless Chromium uses the Phone UI to call a
baresip phone registered at Kamailio, through the gateway.

The browser's fake microphone plays 440 Hz; the phone auto-answers playing 1 kHz and records
what it hears.  Audio is checked by content both ways: the phone's recording is dominated by
440 Hz, the browser's received stream by 1 kHz.  Each test ends with the gateway holding no
call and no media port.
"""

from __future__ import annotations

from twisted.internet import reactor
from twisted.trial import unittest

from tests.e2e import SipPhoneMixin
from tests.peers.chromium import aio
from tests.support import inline


class SipPhoneCallTests(SipPhoneMixin, unittest.TestCase):
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

    async def relayed_when_the_phone_has_it(self, phone_codec: str, sip_codec: str) -> None:
        """The browser's codec goes to a phone that has it untouched: relayed, not decoded."""
        ui, phone = await self.setup_call(codecs=phone_codec)
        await ui.call("1002")
        await self.talk_and_check_audio(ui, phone, "relay")
        [call] = self.gateway.calls.values()
        self.assertEqual(call.describe()["media"]["sipCodec"], sip_codec)
        mark = phone.mark()
        await ui.click("Hangup")
        await phone.wait_event("CALL_CLOSED", since=mark)
        self.assert_phone_heard_440(phone)
        await self.assert_clean()

    @inline
    async def test_opus_relayed_when_the_phone_has_it(self) -> None:
        await self.relayed_when_the_phone_has_it("opus/48000/2", "opus/48000/2")

    @inline
    async def test_g722_relayed_when_the_phone_has_it(self) -> None:
        """Wideband G.722 (written G722/8000 in SDP, RFC 3551) from Chromium to a G.722 phone."""
        await self.relayed_when_the_phone_has_it("G722/16000/1", "G722/8000")

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
        # resume off: the session ends with its socket (with resume: tests.test_e2e_resume_sip)
        self.gateway.top.call_gateway.resume_seconds = 0
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
