"""A video call handed to a browser over REST (``call/startup`` with ``sessionId`` and
``hasVideo``), with real peers: the Phone UI in headless Chromium (fake camera) rings with
"Incoming video call", answers with video, and the gateway then calls a baresip phone with a
video source through Kamailio.  Video is checked as really decoded on both sides (as in
test_e2e_video), audio by content.
"""

from __future__ import annotations

from twisted.trial import unittest

from tests.e2e import RestMixin, VideoPhoneMixin
from tests.peers.chromium import aio
from tests.support import inline


class HandedVideoCallTests(VideoPhoneMixin, unittest.TestCase):
    timeout = 120

    @inline
    async def test_rest_startup_handed_with_video(self) -> None:
        ui, phone = await self.setup_video_call()
        [session_id] = self.gateway.top.call_gateway.sessions
        body = {"callId": "handed", "callee": "1002", "sessionId": session_id, "hasVideo": True,
                "sipLogin": "1001", "sipPassword": "pass1001", "sipDomain": "127.0.0.1",
                "sipOutboundProxy": "127.0.0.1", "sipPort": self.kam.port}
        code, reply = await RestMixin.rest(self, "call/startup", body, token=None)
        self.assertEqual((code, reply), (200, {"callId": "handed"}))
        await aio(ui.page.wait_for_function(
            "() => !document.getElementById('answer').disabled", timeout=15000))
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
