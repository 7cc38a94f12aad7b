"""A person opens the Phone UI of a freshly started gateway and calls the built-in test lines:
no PBX anywhere, the whole B2BUA in between (WebRTC leg, SIP INVITE to the test lines, media)."""

from __future__ import annotations

from twisted.trial import unittest

from tests.e2e import Gateway, Phone, gateway_config
from tests.peers.chromium import Chromium, processes_using, write_tone_wav
from tests.support import assert_near, inline


class TestLinesTests(unittest.TestCase):
    timeout = 120

    async def start(self, **config: float) -> Phone:
        self.gateway = Gateway(gateway_config(**config))
        self.gateway.start()
        self.addCleanup(self.gateway.stop)
        wav = write_tone_wav(self.mktemp() + ".wav", 440.0)
        browser = self.browser = Chromium(fake_audio=wav)
        await browser.start()
        self.addCleanup(browser.stop)
        phone = await Phone.open(browser, self.gateway.url)
        await phone.login()
        return phone

    @inline
    async def test_echo_returns_your_own_voice(self) -> None:
        phone = await self.start()
        await phone.call("echo")
        await phone.wait_state("call-status", "established")
        peak = await phone.received_frequency()
        assert_near(self, peak["frequency"], 440, 15)
        self.assertGreater(peak["level"], -60)
        [call] = self.gateway.calls.values()
        self.assertEqual(call.describe()["media"]["mode"], "relay")
        await phone.click("Hangup")
        await phone.wait_state("call-status", "finish")
        await self.gateway.testlines.wait_idle()
        self.assertEqual(self.gateway.calls, {})

    @inline
    async def test_tone_plays_1khz(self) -> None:
        phone = await self.start()
        await phone.call("tone")
        await phone.wait_state("call-status", "established")
        peak = await phone.received_frequency()
        assert_near(self, peak["frequency"], 1000, 15)
        await phone.click("Hangup")
        await phone.wait_state("call-status", "finish")

    @inline
    async def test_frozen_browser_fails_by_rtp_activity(self) -> None:
        """A browser that stops sending (here: frozen with SIGSTOP, its WebSocket still open)
        is noticed by RTP inactivity: FAILED "Failed by RTP activity" and BYE to the far end."""
        phone = await self.start(rtp_timeout=2.0)
        await phone.call("tone")
        await phone.wait_state("call-status", "established")
        [call] = self.gateway.calls.values()
        frozen = processes_using(self.browser.user_data_dir)
        self.assertTrue(frozen)
        for proc in frozen:
            proc.suspend()
        try:
            await self.gateway.when_idle()
            await self.gateway.testlines.wait_idle()
        finally:
            for proc in frozen:
                proc.resume()
        self.assertEqual(call.status.value, "FAILED")
        self.assertEqual(call.info, "Failed by RTP activity")
        await phone.wait_state("call-status", "failed")
        self.assertIn("Failed by RTP activity", await phone.status_text("call-status"))

    @inline
    async def test_hold_and_unhold_a_test_line(self) -> None:
        """The test lines answer re-INVITEs (hold mirrored to recvonly), so Hold works there."""
        phone = await self.start()
        await phone.call("tone")
        await phone.wait_state("call-status", "established")
        await phone.click("Hold")
        await phone.wait_state("call-status", "hold")
        await phone.click("Unhold")
        await phone.wait_state("call-status", "established")
        peak = await phone.received_frequency()
        assert_near(self, peak["frequency"], 1000, 15)
        await phone.click("Hangup")
        await phone.wait_state("call-status", "finish")
