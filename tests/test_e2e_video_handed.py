"""A video call handed to a browser over REST (``call/startup`` with ``sessionId`` and
``hasVideo``), with real peers: the Phone UI in headless Chromium (fake camera) rings with
"Incoming video call", answers with video, and the gateway then calls a baresip phone with a
video source through Kamailio.  Video is checked as really decoded on both sides (as in
test_e2e_video), audio by content.
"""

from __future__ import annotations

from twisted.trial import unittest

from tests.e2e import VideoPhoneMixin
from tests.support import inline


class HandedVideoCallTests(VideoPhoneMixin, unittest.TestCase):
    timeout = 120

    @inline
    async def test_rest_startup_handed_with_video(self) -> None:
        ui, phone = await self.setup_video_call()
        await self.start_handed_call(ui, hasVideo=True)
        self.assertIn("Incoming video call", await ui.status_text("incoming-text"))
        await ui.click("Answer with video")
        await ui.wait_state("call-status", "established")
        await phone.wait_event("CALL_ESTABLISHED")
        [call] = self.gateway.calls.values()
        described = call.describe()
        self.assertTrue(described["hasVideo"], described)
        self.assertEqual(described["media"]["video"]["sipCodec"], "VP8/90000", described)
        await self.assert_browser_decodes_video(ui)
        await self.assert_phone_decodes_video(phone)
        await self.assert_browser_hears_1k(ui)
        mark = phone.mark()
        await ui.click("Hangup")
        await ui.wait_state("call-status", "finish")
        await phone.wait_event("CALL_CLOSED", since=mark)
        await self.assert_clean()
