"""WCS parity in the Web SDK (issue 18, Deliver 5), in headless Chromium against the fake
gateway (tests/test_api_browser.py's BrowserTestCase): ``sipHeaders`` as WCS's array,
``sipOptions.visibleName`` as the calls' display name, ``getInfo()``/``getErrorInfo()``,
``holdForTransfer()``, and devices and volume — ``getMediaDevices()``, ``switchMic()`` /
``switchCam()`` (replaceTrack, no renegotiation), ``setVolume()``, ``setAudioOutputId()``.

Media runs between the SDK's RTCPeerConnection and an in-page far end (the test plays the
gateway's part), with Chromium's fake devices; every wait is on an event or a page condition.
"""

from __future__ import annotations

from typing import Any

from tests import test_api_browser
from tests.peers.chromium import aio
from tests.support import inline
from tests.test_api_browser import (
    PLACE_CALL_JS,
    RECORD_PCS_JS,
    SDK_SETUP_JS,
    VIDEO_FAR_END_JS,
    BrowserTestCase,
)

#: A session on an account (the fake gateway registers it) whose sipOptions carry visibleName.
ACCOUNT_SETUP_JS = """
async () => {
  const wcsgw = await import("/sdk/wcsgw.js");
  window.wcsgw = wcsgw;
  window.events = [];
  const session = wcsgw.createSession({urlServer: location.origin.replace("http", "ws") + "/ws",
    sipOptions: {login: "1001", password: "pass1001", domain: "pbx.example.com",
                 visibleName: "Alice Example"}});
  window.session = session;
  await new Promise((resolve) => session.on(wcsgw.SESSION_STATUS.REGISTERED, resolve));
  return session.id();
}
"""

#: Bytes the far end (window.__far) has received as audio so far.
FAR_END_AUDIO_BYTES = """async () => {
  let bytes = 0;
  (await window.__far.getStats()).forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "audio") bytes = s.bytesReceived; });
  return bytes;
}"""


class SdkParityTests(BrowserTestCase):
    async def media_call(self) -> tuple[Any, str]:
        """A placed voice call with media flowing to the in-page far end (ESTABLISHED)."""
        await self.js(RECORD_PCS_JS)
        await self.js(SDK_SETUP_JS)
        call_id = await self.js(PLACE_CALL_JS, {"callee": "1002"})
        (_, sid, call) = await self.gateway.events.wait_for(lambda e: e[0] == "call")
        answer = await self.far_end_answers(call["sdp"])
        listener = self.gateway.listeners[sid]
        listener.call_status(self.gateway.call_dict(call_id, "ESTABLISHED", sipStatus=200, sdp=answer))
        await self.until("window.call.status() === 'ESTABLISHED'")
        await self.until(f"async () => (await ({FAR_END_AUDIO_BYTES})()) > 1000")
        return listener, call_id

    @inline
    async def test_sip_headers_array_and_the_accounts_visible_name(self) -> None:
        await self.js(ACCOUNT_SETUP_JS)
        (_, _, account, _) = await self.gateway.events.wait_for(lambda e: e[0] == "connect")
        self.assertEqual(account.display_name, "Alice Example")  # sent as sipVisibleName
        await self.js(PLACE_CALL_JS, {"callee": "1002", "sipHeaders": ["X-Tenant: acme", "X-Ref: 7"]})
        (_, _, call) = await self.gateway.events.wait_for(lambda e: e[0] == "call")
        self.assertEqual(call["sip_headers"], {"X-Tenant": "acme", "X-Ref": "7"})
        self.assertEqual(call["visible_name"], "Alice Example")
        self.assertEqual(await self.js("[window.call.visibleName(), window.call.caller(), window.call.callee()]"),
                         ["Alice Example", "1001", "1002"])
        # The call's own visibleName wins over the account's.
        own = await self.js("window.session.createCall({callee: '1003', visibleName: 'Desk 3'}).visibleName()")
        self.assertEqual(own, "Desk 3")

    @inline
    async def test_a_refused_header_entry_fails_the_call_naming_it(self) -> None:
        await self.js(SDK_SETUP_JS)
        await self.js(PLACE_CALL_JS, {"callee": "echo", "sipHeaders": ["X-A: 1", "Via: forged"]})
        await self.until("window.call.status() === 'FAILED'")
        self.assertIn("sipHeaders[1]", await self.js("window.call.getInfo()"))
        self.assertEqual([e for e in self.gateway.events.events if e[0] == "call"], [])

    @inline
    async def test_get_info_and_get_error_info(self) -> None:
        await self.js(SDK_SETUP_JS)
        # A local failure: the microphone refused.  getInfo() says so, getErrorInfo() has the
        # browser's own error text; nothing reached the gateway.
        await self.js("""() => {
            navigator.mediaDevices.getUserMedia = () =>
              Promise.reject(new DOMException("Permission denied by test", "NotAllowedError")); }""")
        await self.js(PLACE_CALL_JS, {"callee": "1002"})
        await self.until("window.call.status() === 'FAILED'")
        self.assertEqual(await self.js("[window.call.getInfo(), window.call.getErrorInfo()]"),
                         ["Local error: microphone/camera access was denied", "Permission denied by test"])
        self.assertEqual([e for e in self.gateway.events.events if e[0] == "call"], [])

    @inline
    async def test_hold_for_transfer_then_transfer(self) -> None:
        await self.js(SDK_SETUP_JS)
        call_id = await self.js(PLACE_CALL_JS, {"callee": "1002"})
        (_, sid, _call) = await self.gateway.events.wait_for(lambda e: e[0] == "call")
        self.gateway.listeners[sid].call_status(self.gateway.call_dict(call_id, "ESTABLISHED", sipStatus=200))
        await self.until("window.call.status() === 'ESTABLISHED'")
        self.assertIsNone(await self.js("window.call.holdForTransfer()"))
        await self.until("window.call.status() === 'HOLD'")
        await self.js("window.call.transfer('1003')")
        self.assertEqual([e for e in self.gateway.events.events if e[0] in ("hold", "transfer")],
                         [("hold", sid, call_id, "for_transfer"), ("transfer", sid, call_id, "1003")])

    @inline
    async def test_media_devices_lists_the_fake_devices(self) -> None:
        await self.js(SDK_SETUP_JS)
        # Labels need a permission first (the browser's rule); the fake UI grants it.
        await self.js("navigator.mediaDevices.getUserMedia({audio: true}).then((s) => s.getTracks().forEach((t) => t.stop()))")
        devices = await self.js("window.wcsgw.getMediaDevices()")
        self.assertEqual(set(devices), {"audioInputs", "audioOutputs", "videoInputs"})
        self.assertGreaterEqual(len(devices["audioInputs"]), 1)
        self.assertGreaterEqual(len(devices["videoInputs"]), 1)
        for device in devices["audioInputs"] + devices["videoInputs"]:
            self.assertEqual(set(device), {"deviceId", "label", "groupId"})
            self.assertTrue(device["deviceId"])

    @inline
    async def test_switch_mic_keeps_audio_flowing_without_renegotiating(self) -> None:
        await self.media_call()
        local_sdp = await self.js("window.__pcs[0].localDescription.sdp")
        before = await self.js("window.call.getLocalStream().getAudioTracks()[0].id")
        await self.js("window.call.muteAudio()")
        target = await self.js("""async () => {
            const inputs = (await window.wcsgw.getMediaDevices()).audioInputs;
            return inputs[inputs.length - 1].deviceId; }""")
        await self.js("(id) => window.call.switchMic(id)", target)
        sent = await self.js("""() => {
            const sender = window.__pcs[0].getSenders().find((s) => s.track && s.track.kind === "audio");
            const local = window.call.getLocalStream().getAudioTracks();
            return {id: sender.track.id, same: local.length === 1 && local[0] === sender.track,
                    device: sender.track.getSettings().deviceId, enabled: sender.track.enabled}; }""")
        self.assertNotEqual(sent["id"], before)
        self.assertEqual((sent["same"], sent["device"], sent["enabled"]), (True, target, False))
        self.assertTrue(await self.js("window.call.isAudioMuted()"))  # a muted call stays muted
        await self.js("window.call.unmuteAudio()")
        # The far end still receives audio after the switch.
        bytes_then = await self.js(FAR_END_AUDIO_BYTES)
        await self.until(f"async () => (await ({FAR_END_AUDIO_BYTES})()) > {bytes_then + 2000}")
        self.assertEqual(await self.js("window.__pcs[0].localDescription.sdp"), local_sdp)
        self.assertEqual(await self.js("window.__pcs[0].signalingState"), "stable")
        # A device that does not exist: rejected, the old track goes on.
        error = await self.js("window.call.switchMic('no-such-device').then(() => null, (e) => e.name)")
        self.assertEqual(error, "OverconstrainedError")
        self.assertEqual(await self.js("window.call.getLocalStream().getAudioTracks()[0].id"), sent["id"])
        # A voice call has no camera to switch.
        self.assertEqual(await self.js("window.call.switchCam('x').then(() => null, (e) => e.message)"),
                         "switchCam() needs a call that sends a camera")

    @inline
    async def test_set_volume_and_audio_output(self) -> None:
        await self.media_call()
        element = "document.querySelector('audio:not(#remote-audio)')"
        self.assertEqual(await self.js("window.call.getVolume()"), 100)
        await self.js("window.call.setVolume(0)")
        self.assertEqual(await self.js(f"[{element}.volume, window.call.getVolume()]"), [0, 0])
        await self.js("window.call.setVolume(55)")
        self.assertEqual(await self.js(f"[{element}.volume, window.call.getVolume()]"), [0.55, 55])
        for bad in ("-1", "101", "'loud'"):
            with self.subTest(volume=bad):
                self.assertEqual(await self.js(
                    f"(() => {{ try {{ window.call.setVolume({bad}); return null; }} catch (e) {{ return e.name; }} }})()"),
                    "RangeError")
        self.assertEqual(await self.js(f"{element}.volume"), 0.55)
        # Chromium has setSinkId: the default output is accepted.
        self.assertIsNone(await self.js("window.call.setAudioOutputId('default')"))
        self.assertEqual(await self.js(f"{element}.sinkId"), "default")
        # A browser without it: a clear rejection, not a TypeError from deep inside.
        message = await self.js("""() => {
            delete HTMLMediaElement.prototype.setSinkId;
            return window.call.setAudioOutputId("default").then(() => null, (e) => e.message); }""")
        self.assertEqual(message, "this browser cannot choose the audio output (no HTMLMediaElement.setSinkId)")

    @inline
    async def test_switch_cam_replaces_the_camera_track(self) -> None:
        await self.js(RECORD_PCS_JS)
        await self.js(SDK_SETUP_JS)
        await self.js("""() => {
            const call = window.session.createCall({callee: "1002", constraints: {audio: true, video: true}});
            window.call = call;
            call.call(); }""")
        (_, sid, call) = await self.gateway.events.wait_for(lambda e: e[0] == "call")
        answer = await self.js(VIDEO_FAR_END_JS, [call["sdp"], True])
        self.gateway.listeners[sid].call_status(
            self.gateway.call_dict(call["call_id"], "ESTABLISHED", sipStatus=200, sdp=answer))
        await self.until("window.call.status() === 'ESTABLISHED'")
        local_sdp = await self.js("window.__pcs[0].localDescription.sdp")
        before = await self.js("window.call.getLocalStream().getVideoTracks()[0].id")
        camera = await self.js("window.wcsgw.getMediaDevices().then((d) => d.videoInputs[0].deviceId)")
        await self.js("(id) => window.call.switchCam(id)", camera)
        sent = await self.js("""() => {
            const sender = window.__pcs[0].getSenders().find((s) => s.track && s.track.kind === "video");
            return [sender.track.id, sender.track.readyState]; }""")
        self.assertNotEqual(sent[0], before)
        self.assertEqual(sent[1], "live")
        self.assertEqual(await self.js("window.call.getLocalStream().getVideoTracks().map((t) => t.id)"), [sent[0]])
        self.assertEqual(await self.js("window.__pcs[0].localDescription.sdp"), local_sdp)


class PhoneUiParityTests(BrowserTestCase):
    """The Phone UI's Display name and its Microphone, Speaker, Camera and Volume controls
    (devices.js), found by their accessible names (docs/contract.md)."""

    #: log in, call 1002, ESTABLISHED: the helper, not its class (whose tests would run here too)
    established = test_api_browser.PhoneUiInCallTests.established

    @inline
    async def test_device_controls_by_accessible_name(self) -> None:
        await aio(self.expect(self.field("Display name")).to_be_visible())
        for name in ("Microphone", "Speaker", "Camera"):
            await aio(self.expect(self.page.get_by_role("combobox", name=name, exact=True)).to_have_count(1))
        slider = self.page.get_by_role("slider", name="Volume", exact=True)
        await aio(self.expect(slider).to_have_value("100"))
        # Before a call the lists hold the browser's devices (Chromium's fake ones).
        await self.until("document.getElementById('microphone-device').options.length > 1")
        self.assertEqual([c for c in self.console if c.startswith(("error", "pageerror"))], [])

    @inline
    async def test_display_name_is_the_accounts_visible_name(self) -> None:
        await aio(self.field("Login").fill("1001"))
        await aio(self.field("Domain").fill("pbx.example.com"))
        await aio(self.field("Display name").fill("Alice Example"))
        await aio(self.button("Log in").click())
        (_, _, account, _) = await self.gateway.events.wait_for(lambda e: e[0] == "connect")
        self.assertEqual(account.display_name, "Alice Example")
        await aio(self.expect(self.page.locator("#session-status")).to_contain_text("REGISTERED"))
        await aio(self.expect(self.field("Display name")).to_be_disabled())

    @inline
    async def test_volume_and_microphone_reach_the_call(self) -> None:
        await self.js(RECORD_PCS_JS)
        await self.established(media=True)
        await self.until("document.getElementById('level').value > 0.3")
        await aio(self.page.get_by_role("slider", name="Volume", exact=True).fill("0"))
        await self.until("document.getElementById('remote-audio').volume === 0")
        await self.until("document.getElementById('microphone-device').options.length > 2")
        chosen = await self.js("""() => {
            const options = document.getElementById('microphone-device').options;
            return options[options.length - 1].value; }""")
        await aio(self.page.get_by_role("combobox", name="Microphone", exact=True).select_option(chosen))
        await self.until(f"""window.__pcs[0].getSenders().some((s) => s.track && s.track.kind === "audio"
                             && s.track.getSettings().deviceId === {chosen!r})""")
        self.assertEqual([c for c in self.console if c.startswith(("error", "pageerror"))], [])
