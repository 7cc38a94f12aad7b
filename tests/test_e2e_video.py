"""Video calls with real peers: the Phone UI's ``Video call`` in headless Chromium (fake camera,
fake 440 Hz microphone) through the gateway and Kamailio to a baresip phone with a video
source (fakevideo's moving bars), a display and the snapshot filter.

"Really decoded" is checked on both sides: the browser's ``getStats`` shows framesDecoded
growing and a canvas draw of the remote <video> is not uniform; baresip's snapshot of the
picture it DECODED (``snapshot_recv``) is not uniform either.  Audio is checked by content
(FFT) alongside.  Each test ends with the gateway holding no call and no media port.
"""

from __future__ import annotations

from twisted.internet import reactor, task
from twisted.trial import unittest

from tests.e2e import VideoPhoneMixin
from tests.peers.chromium import LAST_PEER, aio, evaluate
from tests.support import inline

#: How long "frames stop" is watched while the call is held (after in-flight frames drained).
HELD_WATCH = 2.0


def sleep(seconds: float):
    return task.deferLater(reactor, seconds, lambda: None)


class VideoCallTests(VideoPhoneMixin, unittest.TestCase):
    async def video_both_ways(self, *, video_codecs: str, page_query: str = "") -> dict:
        """One video call, checked both ways for video and audio, hung up from the browser.
        Returns the browser's last video statistics."""
        ui, phone = await self.setup_video_call(video_codecs=video_codecs, page_query=page_query)
        call = await self.established_video_call(ui, phone)
        self.assertTrue(call.describe()["hasVideo"], call.describe())
        stats = await self.assert_browser_decodes_video(ui)
        self.assertGreater(stats["outbound"]["framesEncoded"] or 0, 0, stats)
        await ui.wait_state("call-status", "established")
        self.assertEqual(await ui.video_state(), "playing")
        # Our own camera shows in the small picture (the fake camera's pattern).
        self.assertGreater((await ui.local_pixels())["std"], 8.0)
        await self.assert_phone_decodes_video(phone)
        await self.assert_browser_hears_1k(ui)
        await sleep(1.5)  # a good second of the browser's tone in the phone's recording
        mark = phone.mark()
        await ui.click("Hangup")
        await ui.wait_state("call-status", "finish")
        await phone.wait_event("CALL_CLOSED", since=mark)
        self.assert_phone_heard_440(phone)
        self.assertEqual(await ui.video_state(), "idle")
        self.assertTrue(await evaluate(ui.page, "document.getElementById('video-area').hidden"))
        await self.assert_clean()
        return stats

    @inline
    async def test_vp8_video_both_ways(self) -> None:
        stats = await self.video_both_ways(video_codecs="VP8")
        self.assertEqual(stats["inbound"]["codec"], "video/VP8", stats)
        self.assertEqual(stats["outbound"]["codec"], "video/VP8", stats)

    @inline
    async def test_h264_packetization_mode_1_both_ways(self) -> None:
        """Debian's Chromium 156 offers H.264 (42001f/42e01f/4d001f, packetization-mode 0 and
        1: RTCRtpSender.getCapabilities('video')); baresip's avcodec has 42e01f in both modes.
        ``?codecs=H264`` makes the browser offer H.264 only."""
        stats = await self.video_both_ways(video_codecs="H264", page_query="?codecs=H264")
        for direction in ("inbound", "outbound"):
            self.assertEqual(stats[direction]["codec"], "video/H264", stats)
            self.assertIn("packetization-mode=1", stats[direction]["fmtp"] or "", stats)

    @inline
    async def test_phone_without_video_call_goes_on_audio_only(self) -> None:
        ui, phone = await self.setup_video_call(phone_video=False)
        call = await self.established_video_call(ui, phone)
        # The browser's video m-section was rejected (port 0) or left inactive by the answer
        # (Chromium drops a rejected transceiver once the answer is applied) ...
        answer = await evaluate(ui.page, f"{LAST_PEER}.currentRemoteDescription.sdp")
        [video_line] = [line for line in answer.splitlines() if line.startswith("m=video")]
        section = answer[answer.index(video_line):]
        self.assertTrue(video_line.startswith("m=video 0 ") or "a=inactive" in section, answer)
        transceivers = await ui.video_transceivers()
        self.assertTrue(all(t["currentDirection"] in (None, "inactive", "stopped")
                            for t in transceivers), transceivers)
        # ... the Phone UI says so, and the gateway's call object does not claim video.
        await aio(ui.page.wait_for_function(
            "document.getElementById('video-area').dataset.state === 'audio-only'",
            timeout=5000))
        self.assertFalse(call.describe()["hasVideo"], call.describe())
        self.assertEqual(await ui.frames_decoded(), 0)
        # Audio flows both ways.
        await self.assert_browser_hears_1k(ui)
        await sleep(1.5)
        mark = phone.mark()
        await ui.click("Hangup")
        await phone.wait_event("CALL_CLOSED", since=mark)
        self.assert_phone_heard_440(phone)
        await self.assert_clean()

    @inline
    async def test_hold_stops_video_and_unhold_resumes_it(self) -> None:
        ui, phone = await self.setup_video_call()
        await self.established_video_call(ui, phone)
        await self.assert_browser_decodes_video(ui, frames=10)

        await ui.click("Hold")
        await ui.wait_state("call-status", "hold")
        self.assertEqual(await ui.video_state(), "hold")
        await sleep(1.0)  # frames already on their way when the re-INVITE went out
        held = await ui.frames_decoded()
        await sleep(HELD_WATCH)
        self.assertEqual(await ui.frames_decoded(), held,
                         f"video kept flowing while held: {await ui.video_stats()}")

        keyframes_before = (await ui.video_stats())["inbound"]["keyFramesDecoded"] or 0
        await ui.click("Unhold")
        await ui.wait_state("call-status", "established")
        # A keyframe request when the leg resumes: decoding restarts within a few seconds.
        await ui.wait_frames_decoded(held + 10, timeout=5.0)
        stats = await ui.video_stats()
        self.assertGreater(stats["inbound"]["keyFramesDecoded"] or 0, keyframes_before, stats)
        self.assertGreater((await ui.remote_pixels())["std"], 8.0)
        await self.assert_phone_decodes_video(phone)

        mark = phone.mark()
        await ui.click("Hangup")
        await phone.wait_event("CALL_CLOSED", since=mark)
        await self.assert_clean()

    async def incoming_video_call(self) -> tuple:
        """baresip 1002 (video) dials the browser user 1001 through Kamailio; the Phone UI
        rings with "Incoming video call"."""
        ui, phone = await self.setup_video_call()
        await phone.command("dial", f"sip:1001@127.0.0.1:{self.kam.port}")
        await ui.ringing()
        self.assertIn("Incoming video call", await ui.status_text("incoming-text"))
        [call] = self.gateway.calls.values()
        self.assertTrue(call.describe()["incoming"])
        return ui, phone, call

    @inline
    async def test_incoming_video_call_answered_with_video(self) -> None:
        ui, phone, call = await self.incoming_video_call()
        await ui.click("Answer with video")
        await ui.wait_state("call-status", "established")
        await phone.wait_event("CALL_ESTABLISHED")
        self.assertTrue(call.describe()["hasVideo"], call.describe())
        await self.assert_browser_decodes_video(ui)
        await self.assert_phone_decodes_video(phone)
        await self.assert_browser_hears_1k(ui)
        mark = phone.mark()
        await ui.click("Hangup")
        await phone.wait_event("CALL_CLOSED", since=mark)
        await self.assert_clean()

    @inline
    async def test_incoming_video_call_answered_audio_only(self) -> None:
        ui, phone, call = await self.incoming_video_call()
        await ui.click("Answer")
        await ui.wait_state("call-status", "established")
        await phone.wait_event("CALL_ESTABLISHED")
        self.assertFalse(call.describe()["hasVideo"], call.describe())
        self.assertTrue(await evaluate(ui.page, "document.getElementById('video-area').hidden"))
        await self.assert_browser_hears_1k(ui, stream="document.getElementById('remote-audio').srcObject")
        await sleep(2.0)
        self.assertEqual(await ui.frames_decoded(), 0)
        with self.assertRaises(Exception):  # noqa: B017 - baresip gets no video to decode
            await phone.snapshot_received(timeout=2.0)
        mark = phone.mark()
        await ui.click("Hangup")
        await phone.wait_event("CALL_CLOSED", since=mark)
        await self.assert_clean()
