"""The Phone UI and the Web SDK in headless Chromium, against build_site and the fake gateway.

What a browser adds over the socket tests: the page finds its controls by the contract's
accessible names (Playwright's get_by_role / get_by_label, exact), "Log in" leads to a shown
session status, and a real RTCPeerConnection goes through the SDK: the offer is complete
(non-trickle), ``codecs`` restricts it, the gateway's SDP is applied, audio flows (the remote
level meter moves), and hangup releases the media.

The far end of the media is a second RTCPeerConnection in the same page, answering with a
1 kHz oscillator: the test plays the gateway's part (takes the offer the fake gateway
received, answers it, reports ESTABLISHED with that SDP).  Everything stays inside the browser,
so this works in a loopback-only network namespace too.

Skipped when /usr/bin/chromium or playwright is missing.
"""

from __future__ import annotations

import shutil
import tempfile
from typing import Any

from twisted.trial import unittest

from tests.peers.chromium import BASE_ARGS, CHROMIUM, aio
from tests.support import inline
from tests.test_api_fakes import FakeGateway, listen_site

#: In-page far end: answers `offer` with a 1 kHz tone; resolves with the complete answer SDP.
ANSWERER_JS = """
async (offer) => {
  const pc = new RTCPeerConnection();
  window.__far = pc;
  const ctx = new AudioContext();
  await ctx.resume();
  const osc = ctx.createOscillator();
  osc.frequency.value = 1000;
  const gain = ctx.createGain();
  gain.gain.value = 0.5;
  const dest = ctx.createMediaStreamDestination();
  osc.connect(gain).connect(dest);
  osc.start();
  await pc.setRemoteDescription({type: "offer", sdp: offer});
  const transceiver = pc.getTransceivers()[0];
  await transceiver.sender.replaceTrack(dest.stream.getAudioTracks()[0]);
  transceiver.direction = "sendrecv";
  await pc.setLocalDescription(await pc.createAnswer());
  if (pc.iceGatheringState !== "complete") {
    await new Promise((resolve) => pc.addEventListener("icegatheringstatechange",
      () => pc.iceGatheringState === "complete" && resolve()));
  }
  return pc.localDescription.sdp;
}
"""


#: In-page far end of an incoming call: offers a 1 kHz tone; resolves with the complete offer.
OFFERER_JS = """
async () => {
  const pc = new RTCPeerConnection();
  window.__far = pc;
  const ctx = new AudioContext();
  await ctx.resume();
  const osc = ctx.createOscillator();
  osc.frequency.value = 1000;
  const dest = ctx.createMediaStreamDestination();
  osc.connect(dest);
  osc.start();
  pc.addTransceiver(dest.stream.getAudioTracks()[0], {direction: "sendrecv"});
  await pc.setLocalDescription(await pc.createOffer());
  if (pc.iceGatheringState !== "complete") {
    await new Promise((resolve) => pc.addEventListener("icegatheringstatechange",
      () => pc.iceGatheringState === "complete" && resolve()));
  }
  return pc.localDescription.sdp;
}
"""


def audio_formats(sdp: str) -> list[str]:
    (line,) = [x for x in sdp.splitlines() if x.startswith("m=audio ")]
    return line.split()[3:]


class BrowserTestCase(unittest.TestCase):
    # No skip when Chromium or Playwright is missing: `make test` installs both, and a suite
    # that quietly skipped its browser tests would claim what it never checked.
    timeout = 60
    #: what the site is built with besides the gateway (wcsgw.api.site.build_site)
    site_options: dict[str, Any] = {}

    def setUp(self) -> Any:
        self.gateway = FakeGateway()
        self.port = listen_site(self, self.gateway, **self.site_options)
        self.base = f"http://127.0.0.1:{self.port}/"
        self.console: list[str] = []
        return aio(self._launch())

    async def _launch(self) -> None:
        from playwright.async_api import async_playwright

        profile = tempfile.mkdtemp(prefix="wcsgw-api-chromium-")
        self.addCleanup(shutil.rmtree, profile, True)
        self.playwright = await async_playwright().start()
        self.addCleanup(lambda: aio(self.playwright.stop()))
        self.context = await self.playwright.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=list(BASE_ARGS))
        self.addCleanup(lambda: aio(self.context.close()))
        self.page = await self.context.new_page()
        self.page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        self.page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))
        await self.page.goto(self.base)
        await self.page.wait_for_selector("html[data-ready=true]")

    def js(self, expression: str, arg: Any = None) -> Any:
        return aio(self.page.evaluate(expression, arg))

    def until(self, predicate: str, timeout_ms: int = 15000) -> Any:
        """Wait until the page expression (or async function) ``predicate`` is truthy.

        Not Playwright's wait_for_function: that evaluates strings with eval(), which the
        Phone UI's Content-Security-Policy (rightly) forbids; a function passed to evaluate()
        is compiled by DevTools, outside the page's CSP."""
        body = predicate if predicate.lstrip().startswith("async") else f"() => ({predicate})"
        return self.js(
            "async ([ms, label]) => {"
            "  const deadline = performance.now() + ms;"
            f"  const check = {body};"
            "  for (;;) {"
            "    if (await check()) return true;"
            "    if (performance.now() > deadline) throw new Error('page never satisfied: ' + label);"
            "    await new Promise((r) => setTimeout(r, 25));"
            "  }"
            "}",
            [timeout_ms, predicate.strip()[:200]],
        )

    def expect(self, locator: Any) -> Any:
        from playwright.async_api import expect

        return expect(locator)

    def button(self, name: str) -> Any:
        return self.page.get_by_role("button", name=name, exact=True)

    def field(self, name: str) -> Any:
        return self.page.get_by_label(name, exact=True)

    async def far_end_answers(self, offer: str) -> str:
        return await self.js(ANSWERER_JS, offer)


class PhoneUiTests(BrowserTestCase):
    @inline
    async def test_controls_by_accessible_name(self) -> None:
        for name in ("Login", "Authentication name", "Password", "Domain", "Outbound proxy",
                     "Port", "Callee", "Transfer to"):
            await aio(self.expect(self.field(name)).to_have_count(1))
            await aio(self.expect(self.field(name)).to_be_visible())
        await aio(self.expect(self.page.get_by_role("checkbox", name="Register", exact=True)).to_be_checked())
        for name in ("Log in", "Log out", "Voice call", "Video call", "Hangup", "Answer", "Decline",
                     "Hold", "Unhold", "Transfer", "Mute", *"0123456789", "*", "#"):
            await aio(self.expect(self.button(name)).to_have_count(1))
        # Camera is a video-call control: hidden (out of the accessibility tree) until then.
        await aio(self.expect(self.button("Camera")).to_be_hidden())
        for name in ("Log out", "Voice call", "Video call", "Hangup", "Answer", "Decline", "Hold",
                     "Unhold", "Transfer", "Mute"):
            await aio(self.expect(self.button(name)).to_be_disabled())
        await aio(self.expect(self.button("Log in")).to_be_enabled())
        await aio(self.expect(self.field("Domain")).to_have_attribute(
            "placeholder", "empty: built-in test lines (echo, tone)"))
        statuses = self.page.get_by_role("status")
        await aio(self.expect(statuses).to_have_count(2))
        self.assertEqual([c for c in self.console if c.startswith(("error", "pageerror"))], [])

    @inline
    async def test_log_in_to_test_lines_shows_the_session_status(self) -> None:
        await aio(self.button("Log in").click())
        opened = await self.gateway.events.wait_for(lambda e: e[0] == "connect")
        self.assertIsNone(opened[2])  # empty Domain: the test lines, no account
        await aio(self.expect(self.page.locator("#session-status")).to_contain_text("ESTABLISHED"))
        await aio(self.expect(self.button("Voice call")).to_be_enabled())
        await aio(self.expect(self.button("Log out")).to_be_enabled())
        await aio(self.expect(self.field("Login")).to_be_disabled())
        await aio(self.expect(self.button("Hold")).to_be_disabled())

    @inline
    async def test_log_in_with_account_waits_for_registration(self) -> None:
        self.gateway.register_outcome = ("AUTHENTICATION_FAIL", 403, "Forbidden")
        await aio(self.field("Login").fill("1001"))
        await aio(self.field("Password").fill("pass1001"))
        await aio(self.field("Domain").fill("pbx.example.com"))
        await aio(self.field("Port").fill("5070"))
        await aio(self.button("Log in").click())
        (_, _, account, register) = await self.gateway.events.wait_for(lambda e: e[0] == "connect")
        self.assertEqual((account.login, account.password, account.domain, account.port, register),
                         ("1001", "pass1001", "pbx.example.com", 5070, True))
        status = self.page.locator("#session-status")
        await aio(self.expect(status).to_contain_text("AUTHENTICATION_FAIL"))
        await aio(self.expect(self.page.get_by_role("alert")).to_contain_text("Registration failed"))
        await aio(self.expect(self.button("Voice call")).to_be_disabled())  # not REGISTERED

    @inline
    async def test_field_error_from_the_gateway_points_at_the_field(self) -> None:
        await aio(self.field("Login").fill("1001"))
        await aio(self.field("Domain").fill("pbx.example.com"))
        await aio(self.field("Port").fill("99999"))
        await aio(self.button("Log in").click())
        await aio(self.expect(self.page.locator("#session-status")).to_contain_text("FAILED"))
        await aio(self.expect(self.page.get_by_role("alert")).to_contain_text("Port"))
        await aio(self.expect(self.field("Port")).to_have_attribute("aria-invalid", "true"))
        await aio(self.expect(self.button("Log in")).to_be_enabled())  # try again

    @inline
    async def test_voice_call_with_audio_then_hangup(self) -> None:
        await aio(self.button("Log in").click())
        await aio(self.expect(self.button("Voice call")).to_be_enabled())
        await aio(self.field("Callee").fill("echo"))
        await aio(self.button("Voice call").click())
        (_, session_id, call) = await self.gateway.events.wait_for(lambda e: e[0] == "call")
        self.assertEqual((call["callee"], call["has_audio"], call["has_video"]), ("echo", True, False))
        self.assertIn("a=candidate:", call["sdp"])  # non-trickle: the whole offer at once
        await aio(self.expect(self.button("Hangup")).to_be_enabled())
        await aio(self.expect(self.button("Voice call")).to_be_disabled())

        answer = await self.far_end_answers(call["sdp"])
        listener = self.gateway.listeners[session_id]
        listener.call_status(self.gateway.call_dict(call["call_id"], "ESTABLISHED", sipStatus=200, sdp=answer))
        await aio(self.expect(self.page.locator("#call-status")).to_contain_text("ESTABLISHED"))
        await aio(self.expect(self.button("Hold")).to_be_enabled())
        await aio(self.expect(self.button("Mute")).to_be_enabled())
        # The remote 1 kHz tone reaches the meter, and the timer runs.
        await self.until("document.getElementById('level').value > 0.3")
        await self.until("document.getElementById('call-timer').textContent !== '00:00'")

        await aio(self.button("Mute").click())
        await aio(self.expect(self.button("Mute")).to_have_attribute("aria-pressed", "true"))

        await aio(self.button("Hangup").click())
        hung = await self.gateway.events.wait_for(lambda e: e[0] == "hangup")
        self.assertEqual(hung[2], call["call_id"])
        await aio(self.expect(self.page.locator("#call-status")).to_contain_text("FINISH"))
        await aio(self.expect(self.button("Voice call")).to_be_enabled())
        await aio(self.expect(self.button("Hangup")).to_be_disabled())
        self.assertIsNone(await self.js("document.getElementById('remote-audio').srcObject"))
        self.assertEqual(await self.js("document.getElementById('level').value"), 0)

    @inline
    async def test_dial_pad_types_into_callee(self) -> None:
        for key in ("1", "0", "*", "#"):
            await aio(self.button(key).click())
        await aio(self.expect(self.field("Callee")).to_have_value("10*#"))

    @inline
    async def test_log_out(self) -> None:
        await aio(self.button("Log in").click())
        await aio(self.expect(self.button("Log out")).to_be_enabled())
        await aio(self.button("Log out").click())
        await self.gateway.events.wait_for(lambda e: e[0] == "disconnect")
        await self.gateway.events.wait_for(lambda e: e[0] == "close_session")
        await aio(self.expect(self.page.locator("#session-status")).to_contain_text("DISCONNECTED"))
        await aio(self.expect(self.button("Log in")).to_be_enabled())


class PhoneUiInCallTests(BrowserTestCase):
    """The Phone UI during a call: dial pad -> sendDtmf, Hold/Unhold, Transfer, received DTMF."""

    async def established(self, media: bool = False) -> tuple[Any, str]:
        """Log in to the test lines, call 1002 and let the fake gateway report ESTABLISHED;
        with ``media`` the in-page far end answers, so the call has real audio."""
        await aio(self.button("Log in").click())
        await aio(self.field("Callee").fill("1002"))
        await aio(self.button("Voice call").click())
        (_, session_id, call) = await self.gateway.events.wait_for(lambda e: e[0] == "call")
        extra = {"sdp": await self.far_end_answers(call["sdp"])} if media else {}
        listener = self.gateway.listeners[session_id]
        listener.call_status(self.gateway.call_dict(call["call_id"], "ESTABLISHED", sipStatus=200, **extra))
        await aio(self.expect(self.page.locator("#call-status")).to_contain_text("ESTABLISHED"))
        return listener, call["call_id"]

    def gateway_calls(self, name: str) -> list[tuple]:
        return [e for e in self.gateway.events.events if e[0] == name]

    @inline
    async def test_dial_pad_sends_dtmf_during_a_call(self) -> None:
        _listener, call_id = await self.established(media=True)
        for key in ("1", "2", "#"):
            await aio(self.button(key).click())
        await self.gateway.events.wait_for(lambda e: e[0] == "send_dtmf" and e[3] == "#")
        self.assertEqual([e[2:] for e in self.gateway_calls("send_dtmf")],
                         [(call_id, "1", "RFC2833"), (call_id, "2", "RFC2833"), (call_id, "#", "RFC2833")])
        await aio(self.expect(self.page.locator("#dtmf-sent")).to_have_text("Sent DTMF: 12#"))
        # Typed digits (focus outside the text fields) go out the same way.
        await aio(self.page.locator("#call-peer").click())
        await aio(self.page.keyboard.press("5"))
        await self.gateway.events.wait_for(lambda e: e[0] == "send_dtmf" and e[3] == "5")
        await aio(self.expect(self.page.locator("#dtmf-sent")).to_have_text("Sent DTMF: 12#5"))
        await aio(self.expect(self.field("Callee")).to_have_value("1002"))  # not typed into the callee
        self.assertEqual(self.gateway_calls("send_dtmf")[-1][1:], (self.gateway_calls("call")[0][1], call_id, "5", "RFC2833"))

    @inline
    async def test_gateway_refusing_dtmf_is_shown(self) -> None:
        from wcsgw.calls.gateway import CallError, Codes

        await self.established()
        self.gateway.fail["send_dtmf"] = CallError(Codes.INVALID, "the SIP side negotiated no telephone-event", "type")
        await aio(self.button("3").click())
        await aio(self.expect(self.page.get_by_role("alert")).to_contain_text("no telephone-event"))
        await aio(self.expect(self.page.locator("#dtmf-sent")).to_be_hidden())
        await aio(self.expect(self.page.locator("#call-status")).to_contain_text("ESTABLISHED"))

    @inline
    async def test_hold_then_unhold(self) -> None:
        _listener, call_id = await self.established()
        await aio(self.expect(self.button("Hold")).to_be_enabled())
        await aio(self.expect(self.button("Unhold")).to_be_disabled())
        await aio(self.button("Hold").click())
        self.assertEqual((await self.gateway.events.wait_for(lambda e: e[0] == "hold"))[2], call_id)
        await aio(self.expect(self.page.locator("#call-status")).to_contain_text("HOLD"))
        await aio(self.expect(self.page.locator("#call-status")).to_contain_text("on hold"))
        await aio(self.expect(self.button("Hold")).to_be_disabled())
        await aio(self.expect(self.button("Unhold")).to_be_enabled())
        await aio(self.expect(self.button("Hangup")).to_be_enabled())
        # On hold the dial pad sends nothing (a request would reach the fake before unhold's).
        await aio(self.button("7").click())
        await aio(self.button("Unhold").click())
        self.assertEqual((await self.gateway.events.wait_for(lambda e: e[0] == "unhold"))[2], call_id)
        await aio(self.expect(self.page.locator("#call-status")).to_contain_text("ESTABLISHED"))
        await aio(self.expect(self.button("Hold")).to_be_enabled())
        await aio(self.expect(self.button("Unhold")).to_be_disabled())
        self.assertEqual(self.gateway_calls("send_dtmf"), [])
        self.assertEqual([c for c in self.console if c.startswith(("error", "pageerror"))], [])

    @inline
    async def test_blind_transfer_shows_its_progress(self) -> None:
        listener, call_id = await self.established()
        await aio(self.expect(self.button("Transfer")).to_be_disabled())  # no target yet
        await aio(self.field("Transfer to").fill("1003"))
        await aio(self.button("Transfer").click())
        (_, _, transferred, target) = await self.gateway.events.wait_for(lambda e: e[0] == "transfer")
        self.assertEqual((transferred, target), (call_id, "1003"))
        line = self.page.locator("#transfer-status")
        await aio(self.expect(line).to_contain_text("Transfer REQUESTED"))
        listener.notify("transferStatus", {"callId": call_id, "status": "ACCEPTED", "sipStatus": 202})
        await aio(self.expect(line).to_contain_text("Transfer ACCEPTED"))
        await aio(self.expect(line).to_contain_text("(202)"))
        listener.notify("transferStatus", {"callId": call_id, "status": "TRYING", "sipStatus": 100})
        await aio(self.expect(line).to_contain_text("calling 1003"))
        listener.notify("transferStatus", {"callId": call_id, "status": "COMPLETED", "sipStatus": 200})
        listener.call_status(self.gateway.call_dict(call_id, "FINISH", info="Normal call clearing"))
        await aio(self.expect(self.page.locator("#call-status")).to_contain_text("FINISH"))
        await aio(self.expect(line).to_contain_text("Transfer COMPLETED"))  # still shown after the end
        await aio(self.expect(line).to_contain_text("talking to 1003"))
        await aio(self.expect(self.button("Voice call")).to_be_enabled())
        await aio(self.expect(self.page.get_by_role("alert")).to_be_hidden())

    @inline
    async def test_failed_transfer_keeps_the_call(self) -> None:
        listener, call_id = await self.established()
        await aio(self.field("Transfer to").fill("sip:1009@pbx.example.com"))
        await aio(self.button("Transfer").click())
        await self.gateway.events.wait_for(lambda e: e[0] == "transfer")
        listener.notify("transferStatus", {"callId": call_id, "status": "FAILED", "sipStatus": 486})
        await aio(self.expect(self.page.locator("#transfer-status")).to_contain_text("Transfer FAILED"))
        await aio(self.expect(self.page.get_by_role("alert")).to_contain_text("Transfer to sip:1009@pbx.example.com failed (486)"))
        await aio(self.expect(self.page.locator("#call-status")).to_contain_text("ESTABLISHED"))
        await aio(self.expect(self.button("Hangup")).to_be_enabled())

    @inline
    async def test_refused_transfer_points_at_the_field(self) -> None:
        from wcsgw.calls.gateway import CallError, Codes

        await self.established()
        self.gateway.fail["transfer"] = CallError(Codes.FORBIDDEN, "Forbidden destination", "target")
        await aio(self.field("Transfer to").fill("sip:x@evil.example"))
        await aio(self.button("Transfer").click())
        await aio(self.expect(self.page.get_by_role("alert")).to_contain_text("Forbidden destination (Transfer to)"))
        await aio(self.expect(self.field("Transfer to")).to_have_attribute("aria-invalid", "true"))
        await aio(self.expect(self.page.locator("#transfer-status")).to_be_hidden())

    @inline
    async def test_received_dtmf_is_shown(self) -> None:
        listener, call_id = await self.established()
        await aio(self.expect(self.page.locator("#dtmf-received")).to_be_hidden())
        listener.notify("dtmf", {"callId": call_id, "dtmf": "5", "type": "RFC2833"})
        await aio(self.expect(self.page.locator("#dtmf-received")).to_have_text("Received DTMF: 5"))
        listener.notify("dtmf", {"callId": call_id, "dtmf": "#", "type": "INFO"})
        await aio(self.expect(self.page.locator("#dtmf-received")).to_have_text("Received DTMF: 5#"))
        listener.notify("dtmf", {"callId": "some-other-call", "dtmf": "9", "type": "RFC2833"})
        listener.notify("dtmf", {"callId": call_id, "dtmf": "0", "type": "RFC2833"})
        await aio(self.expect(self.page.locator("#dtmf-received")).to_have_text("Received DTMF: 5#0"))
        await aio(self.expect(self.page.get_by_role("status")).to_have_count(2))  # still only the two


class PhoneUiIncomingTests(BrowserTestCase):
    """An incoming call (incomingCall from the gateway) answered or declined in the Phone UI."""

    async def ring(self) -> Any:
        await aio(self.button("Log in").click())
        (_, session_id, _a, _r) = await self.gateway.events.wait_for(lambda e: e[0] == "connect")
        await aio(self.expect(self.page.locator("#session-status")).to_contain_text("ESTABLISHED"))
        offer = await self.js(OFFERER_JS)
        self.gateway.offer_call(session_id, "in-1", "1002", offer)
        await aio(self.expect(self.page.get_by_text("Incoming call from 1002")).to_be_visible())
        await aio(self.expect(self.button("Answer")).to_be_enabled())
        await aio(self.expect(self.button("Decline")).to_be_enabled())
        return session_id

    @inline
    async def test_answer_with_audio(self) -> None:
        session_id = await self.ring()
        await aio(self.button("Answer").click())
        (_, sid, call_id, answer) = await self.gateway.events.wait_for(lambda e: e[0] == "answer")
        self.assertEqual((sid, call_id), (session_id, "in-1"))
        self.assertIn("a=candidate:", answer)  # non-trickle, as for outgoing calls
        await self.js("(sdp) => window.__far.setRemoteDescription({type: 'answer', sdp})", answer)
        await aio(self.expect(self.page.locator("#call-status")).to_contain_text("ESTABLISHED"))
        await self.until("document.getElementById('level').value > 0.3")
        await aio(self.expect(self.button("Hold")).to_be_enabled())
        await aio(self.expect(self.button("Answer")).to_be_disabled())

    @inline
    async def test_decline(self) -> None:
        session_id = await self.ring()
        await aio(self.button("Decline").click())
        self.assertEqual(await self.gateway.events.wait_for(lambda e: e[0] == "hangup"),
                         ("hangup", session_id, "in-1"))
        await aio(self.expect(self.page.locator("#call-status")).to_contain_text("FINISH"))
        await aio(self.expect(self.button("Answer")).to_be_disabled())
        self.assertEqual([e for e in self.gateway.events.events if e[0] == "answer"], [])


SDK_SETUP_JS = """
async () => {
  const wcsgw = await import("/sdk/wcsgw.js");
  window.wcsgw = wcsgw;
  window.events = [];
  const session = wcsgw.createSession({urlServer: location.origin.replace("http", "ws") + "/ws",
                                       sipOptions: {domain: ""}});
  window.session = session;
  for (const s of Object.values(wcsgw.SESSION_STATUS)) session.on(s, (_, e) => window.events.push("session:" + s));
  await new Promise((resolve) => session.on(wcsgw.SESSION_STATUS.ESTABLISHED, resolve));
  return session.id();
}
"""

PLACE_CALL_JS = """
(options) => {
  const call = window.session.createCall(options);
  window.call = call;
  for (const s of Object.values(window.wcsgw.CALL_STATUS)) call.on(s, (c) => window.events.push("call:" + s));
  call.call();
  return call.id();
}
"""


class SdkTests(BrowserTestCase):
    async def session(self) -> str:
        return await self.js(SDK_SETUP_JS)

    @inline
    async def test_constants(self) -> None:
        await self.session()
        constants = await self.js("[window.wcsgw.SESSION_STATUS, window.wcsgw.CALL_STATUS]")
        self.assertEqual(
            set(constants[0]),
            {"PENDING", "CONNECTED", "ESTABLISHED", "REGISTERED", "UNREGISTERED",
             "AUTHENTICATION_FAIL", "DISCONNECTED", "FAILED", "WARN", "INCOMING_CALL",
             "RECONNECTING"})
        self.assertEqual(constants[1], {s: s for s in (
            "NEW", "PENDING", "TRYING", "RING", "RING_MEDIA", "SESSION_PROGRESS", "ESTABLISHED",
            "HOLD", "BUSY", "FINISH", "FAILED")})

    @inline
    async def test_call_with_forced_codec_media_and_cleanup(self) -> None:
        session_id = await self.session()
        call_id = await self.js(PLACE_CALL_JS, {"callee": "echo", "codecs": ["PCMU"],
                                                "sipHeaders": {"X-Test": "1"}})
        (_, sid, call) = await self.gateway.events.wait_for(lambda e: e[0] == "call")
        self.assertEqual((sid, call["call_id"], call["sip_headers"]), (session_id, call_id, {"X-Test": "1"}))
        self.assertEqual(audio_formats(call["sdp"]), ["0"])  # codecs: ["PCMU"] only
        self.assertIn("a=candidate:", call["sdp"])

        answer = await self.far_end_answers(call["sdp"])
        self.gateway.listeners[sid].call_status(
            self.gateway.call_dict(call_id, "ESTABLISHED", sipStatus=200, sdp=answer))
        await self.until("window.call.status() === 'ESTABLISHED'")
        # ESTABLISHED fires after the answer is applied: the remote stream is there.
        self.assertTrue(await self.js("window.call.getRemoteStream() !== null"))
        await self.until("""async () => {
            const stats = await window.call.getStats();
            let bytes = 0;
            stats.forEach((s) => { if (s.type === "inbound-rtp" && s.kind === "audio") bytes = s.bytesReceived; });
            return bytes > 1000; }""")
        # No remoteVideoDisplay given: the SDK plays the far end through an <audio> of its own
        # (the page's own #remote-audio is the Phone UI's, untouched here).
        self.assertEqual(await self.js("document.querySelectorAll('audio:not(#remote-audio)').length"), 1)
        await self.js("window.call.muteAudio()")
        self.assertTrue(await self.js("window.call.isAudioMuted()"))

        await self.js("window.localTracks = window.call.getLocalStream().getTracks(); window.call.hangup()")
        await self.gateway.events.wait_for(lambda e: e[0] == "hangup")
        await self.until("window.call.status() === 'FINISH'")
        released = await self.js("""({
            pc: window.call.getPeerConnection(),
            tracks: window.localTracks.map((t) => t.readyState),
            audio: document.querySelectorAll('audio:not(#remote-audio)').length,
            stats: null })""")
        self.assertEqual(released, {"pc": None, "tracks": ["ended"], "audio": 0, "stats": None})
        self.assertIsNone(await self.js("window.call.getStats()"))
        events = await self.js("window.events")
        self.assertEqual([e for e in events if e.startswith("call:")],
                         ["call:PENDING", "call:NEW", "call:ESTABLISHED", "call:FINISH"])

    async def established_call(self) -> tuple[Any, str]:
        """A placed call the fake gateway reports ESTABLISHED (no media needed here)."""
        await self.session()
        call_id = await self.js(PLACE_CALL_JS, {"callee": "1002"})
        (_, sid, _call) = await self.gateway.events.wait_for(lambda e: e[0] == "call")
        listener = self.gateway.listeners[sid]
        listener.call_status(self.gateway.call_dict(call_id, "ESTABLISHED", sipStatus=200))
        await self.until("window.call.status() === 'ESTABLISHED'")
        return listener, call_id

    @inline
    async def test_in_call_constants(self) -> None:
        await self.session()
        constants = await self.js("[window.wcsgw.CALL_EVENT, window.wcsgw.TRANSFER_STATUS, window.wcsgw.DTMF_TYPE]")
        self.assertEqual(constants, [
            {"TRANSFER_STATUS": "transferStatus", "DTMF": "dtmf", "TRANSFER_REQUEST": "transferRequest",
             "STATS": "callStats", "LADDER": "sipLadder"},
            {s: s for s in ("ACCEPTED", "TRYING", "COMPLETED", "FAILED")},
            {"RFC2833": "RFC2833", "INFO": "INFO"},
        ])

    @inline
    async def test_hold_and_unhold_fire_hold_then_established(self) -> None:
        _listener, call_id = await self.established_call()
        self.assertIsNone(await self.js("window.call.hold()"))
        await self.until("window.call.status() === 'HOLD'")
        await self.js("window.call.unhold()")
        await self.until("window.call.status() === 'ESTABLISHED' && window.events.includes('call:HOLD')")
        self.assertEqual([e[0] for e in self.gateway.events.events if e[0] in ("hold", "unhold")], ["hold", "unhold"])
        events = await self.js("window.events")
        self.assertEqual([e for e in events if e.startswith("call:")][-3:],
                         ["call:ESTABLISHED", "call:HOLD", "call:ESTABLISHED"])

    @inline
    async def test_send_dtmf_goes_to_the_gateway_not_rtcdtmfsender(self) -> None:
        _listener, call_id = await self.established_call()
        await self.js("""() => {
            window.insertDTMFCalls = 0;
            const original = RTCDTMFSender.prototype.insertDTMF;
            RTCDTMFSender.prototype.insertDTMF = function (...args) {
              window.insertDTMFCalls += 1; return original.apply(this, args); }; }""")
        await self.js("window.call.sendDTMF('12#')")
        await self.js("window.call.sendDTMF(5, window.wcsgw.DTMF_TYPE.INFO)")
        sent = [e[2:] for e in self.gateway.events.events if e[0] == "send_dtmf"]
        self.assertEqual(sent, [(call_id, "12#", "RFC2833"), (call_id, "5", "INFO")])
        self.assertEqual(await self.js("window.insertDTMFCalls"), 0)
        error = await self.js("window.call.sendDTMF('12x').then(() => null, (e) => [e.name, e.code, e.data])")
        self.assertEqual(error, ["RpcError", -32602, {"field": "dtmf"}])

    @inline
    async def test_transfer_targets(self) -> None:
        _listener, call_id = await self.established_call()
        await self.js("window.call.transfer(' sip:1003@pbx.example.com ')")
        # Another call of the session as the target: attended transfer, by its callId.
        second = await self.js("""() => {
            window.second = window.session.createCall({callee: "1004", callId: "second-call"});
            return window.second.id(); }""")
        await self.js("window.call.transfer(window.second)")
        transfers = [e[2:] for e in self.gateway.events.events if e[0] == "transfer"]
        self.assertEqual(transfers, [(call_id, "sip:1003@pbx.example.com"), (call_id, second)])
        refused = await self.js("""async () => {
            const out = [];
            for (const target of ["", "   ", null, window.call]) {
              try { await window.call.transfer(target); out.push("sent"); } catch (e) { out.push(e.name); }
            }
            return out; }""")
        self.assertEqual(refused, ["TypeError"] * 4)
        self.assertEqual(len([e for e in self.gateway.events.events if e[0] == "transfer"]), 2)

    @inline
    async def test_transfer_status_and_dtmf_events(self) -> None:
        listener, call_id = await self.established_call()
        await self.js("""() => {
            window.heard = [];
            const { CALL_EVENT } = window.wcsgw;
            window.call.on(CALL_EVENT.DTMF, (c, e) => window.heard.push(["dtmf", c.id(), e.dtmf, e.type]));
            window.call.on(CALL_EVENT.TRANSFER_STATUS,
                           (c, e) => window.heard.push(["transfer", c.id(), e.status, e.sipStatus])); }""")
        listener.notify("dtmf", {"callId": call_id, "dtmf": "5", "type": "RFC2833"})
        listener.notify("transferStatus", {"callId": call_id, "status": "ACCEPTED", "sipStatus": 202})
        listener.notify("transferStatus", {"callId": call_id, "status": "FAILED", "sipStatus": 486})
        await self.until("window.heard.length === 3")
        # A failed transfer is not a failed call.
        self.assertEqual(await self.js("window.call.status()"), "ESTABLISHED")
        # The last NOTIFY of a transfer may come after the call's FINISH: it still arrives.
        listener.call_status(self.gateway.call_dict(call_id, "FINISH", info="Normal call clearing"))
        await self.until("window.call.status() === 'FINISH'")
        listener.notify("transferStatus", {"callId": call_id, "status": "COMPLETED", "sipStatus": 200})
        await self.until("window.heard.length === 4")
        self.assertEqual(await self.js("window.heard"), [
            ["dtmf", call_id, "5", "RFC2833"],
            ["transfer", call_id, "ACCEPTED", 202],
            ["transfer", call_id, "FAILED", 486],
            ["transfer", call_id, "COMPLETED", 200],
        ])
        events = await self.js("window.events")
        self.assertNotIn("call:FAILED", events)

    @inline
    async def test_gateway_error_fails_the_call_and_releases_media(self) -> None:
        from wcsgw.calls.gateway import CallError, Codes

        await self.session()
        self.gateway.fail["call"] = CallError(Codes.FORBIDDEN, "Forbidden destination", "callee")
        await self.js(PLACE_CALL_JS, {"callee": "sip:x@evil.example"})
        await self.until("window.call.status() === 'FAILED'")
        self.assertEqual(await self.js("[window.call.getInfo(), window.call.getPeerConnection()]"),
                         ["Forbidden destination", None])

    @inline
    async def test_failed_status_from_gateway_releases_media(self) -> None:
        await self.session()
        call_id = await self.js(PLACE_CALL_JS, {"callee": "1002"})
        (_, sid, _call) = await self.gateway.events.wait_for(lambda e: e[0] == "call")
        self.gateway.listeners[sid].call_status(
            self.gateway.call_dict(call_id, "BUSY", sipStatus=486, info="486 Busy Here"))
        await self.until("window.call.status() === 'BUSY'")
        self.assertEqual(await self.js("[window.call.getSipStatus(), window.call.getInfo(), window.call.getPeerConnection()]"),
                         [486, "486 Busy Here", None])

    @inline
    async def test_socket_loss_fails_session_and_calls(self) -> None:
        await self.session()
        await self.js(PLACE_CALL_JS, {"callee": "echo"})
        (_, sid, _call) = await self.gateway.events.wait_for(lambda e: e[0] == "call")
        self.gateway.listeners[sid].dropConnection(abort=True)
        await self.until("window.session.status() === 'FAILED'")
        self.assertEqual(await self.js("[window.call.status(), window.call.getInfo(), window.call.getPeerConnection()]"),
                         ["FAILED", "Session closed", None])

    @inline
    async def test_disconnect(self) -> None:
        session_id = await self.session()
        await self.js("window.session.disconnect()")
        await self.gateway.events.wait_for(lambda e: e == ("disconnect", session_id))
        await self.gateway.events.wait_for(lambda e: e == ("close_session", session_id))
        await self.until("window.session.status() === 'DISCONNECTED'")
        events = await self.js("window.events")
        self.assertEqual(events.count("session:DISCONNECTED"), 1)

    @inline
    async def test_create_call_needs_a_ready_session(self) -> None:
        message = await self.js("""async () => {
            const wcsgw = await import("/sdk/wcsgw.js");
            const s = wcsgw.createSession({urlServer: "ws://127.0.0.1:9/ws"});
            try { s.createCall({callee: "echo"}); return "created"; } catch (e) { return e.message; } }""")
        self.assertIn("ESTABLISHED or REGISTERED", message)


#: In-page far end with a camera of its own: a canvas drawing moving bars (captureStream).
#: ``[sdp, video]``: answers ``sdp`` (an offer) — its video m-section with the canvas when
#: ``video`` is true, rejected (port 0) when false — or, with ``sdp`` null, makes an offer with
#: audio and video.  Resolves with the complete SDP.
VIDEO_FAR_END_JS = """
async ([sdp, video]) => {
  const pc = new RTCPeerConnection();
  window.__far = pc;
  const ctx = new AudioContext();
  await ctx.resume();
  const osc = ctx.createOscillator();
  osc.frequency.value = 1000;
  const dest = ctx.createMediaStreamDestination();
  osc.connect(dest);
  osc.start();
  const canvas = document.createElement("canvas");
  canvas.width = 320; canvas.height = 240;
  const g = canvas.getContext("2d");
  let x = 0;
  window.__farTimer = setInterval(() => {
    g.fillStyle = "#123"; g.fillRect(0, 0, 320, 240);
    g.fillStyle = "#fc3"; for (let i = 0; i < 320; i += 40) g.fillRect((i + x) % 320, 0, 16, 240);
    x = (x + 4) % 320;
  }, 33);
  const camera = canvas.captureStream(30).getVideoTracks()[0];
  const microphone = dest.stream.getAudioTracks()[0];
  if (sdp === null) {
    pc.addTransceiver(microphone, {direction: "sendrecv"});
    pc.addTransceiver(camera, {direction: "sendrecv"});
    await pc.setLocalDescription(await pc.createOffer());
  } else {
    await pc.setRemoteDescription({type: "offer", sdp});
    for (const t of pc.getTransceivers()) {
      if (t.receiver.track.kind === "audio") {
        await t.sender.replaceTrack(microphone);
        t.direction = "sendrecv";
      } else if (video) {
        await t.sender.replaceTrack(camera);
        t.direction = "sendrecv";
      } else {
        t.stop();
      }
    }
    await pc.setLocalDescription(await pc.createAnswer());
  }
  if (pc.iceGatheringState !== "complete") {
    await new Promise((resolve) => pc.addEventListener("icegatheringstatechange",
      () => pc.iceGatheringState === "complete" && resolve()));
  }
  return pc.localDescription.sdp;
}
"""


def video_section(sdp: str) -> str:
    """The m=video section of ``sdp`` (up to the next m= line)."""
    start = sdp.index("m=video ")
    end = sdp.find("\nm=", start)
    return sdp[start:] if end < 0 else sdp[start:end]


#: Frames the <video> at the selector decoded (getVideoPlaybackQuality; 0 without frames).
FRAMES_SHOWN = "(sel) => document.querySelector(sel).getVideoPlaybackQuality().totalVideoFrames"

#: Keeps every RTCPeerConnection the page creates in ``window.__pcs`` (run before the call).
RECORD_PCS_JS = """() => {
  const Original = window.RTCPeerConnection;
  window.__pcs = [];
  window.RTCPeerConnection = class extends Original {
    constructor(...args) { super(...args); window.__pcs.push(this); }
  };
}"""

#: ``enabled`` of the track the SDK's (first) peer connection sends as video (null: none).
SENT_VIDEO_ENABLED = """() => {
  const sender = window.__pcs[0].getSenders().find((s) => s.track && s.track.kind === "video");
  return sender ? sender.track.enabled : null;
}"""


class SdkVideoTests(BrowserTestCase):
    """The SDK's video calls: camera into localVideoDisplay, the far end's video into
    remoteVideoDisplay, ``hasVideo`` in the `call` request and on the Call, incoming video
    offers answered with or without the camera."""

    async def placed_video_call(self, far_end_video: bool) -> dict:
        await self.js(SDK_SETUP_JS)
        await self.js("""() => {
            for (const id of ["local", "remote"]) {
              const v = document.createElement("video");
              v.id = id; v.autoplay = true; v.playsInline = true;
              document.body.appendChild(v);
            }}""")
        await self.js("""() => {
            const call = window.session.createCall({callee: "1002",
              localVideoDisplay: document.getElementById("local"),
              remoteVideoDisplay: document.getElementById("remote"),
              constraints: {audio: true, video: true}});
            window.call = call;
            window.hasVideoBefore = call.hasVideo();
            call.call();
        }""")
        (_, sid, call) = await self.gateway.events.wait_for(lambda e: e[0] == "call")
        answer = await self.js(VIDEO_FAR_END_JS, [call["sdp"], far_end_video])
        self.gateway.listeners[sid].call_status(
            self.gateway.call_dict(call["call_id"], "ESTABLISHED", sipStatus=200, sdp=answer))
        await self.until("window.call.status() === 'ESTABLISHED'")
        return call

    @inline
    async def test_video_call_shows_both_pictures(self) -> None:
        call = await self.placed_video_call(far_end_video=True)
        self.assertTrue(call["has_video"])
        section = video_section(call["sdp"])
        self.assertIn("a=sendrecv", section)
        self.assertIn("a=ssrc:", section)  # the camera is sent
        self.assertTrue(await self.js("window.hasVideoBefore"))
        self.assertTrue(await self.js("window.call.hasVideo()"))
        # Our camera in the local display, muted; the far end's bars in the remote one.
        await self.until("document.getElementById('local').videoWidth > 0")
        self.assertTrue(await self.js("document.getElementById('local').muted"))
        await self.until(f"({FRAMES_SHOWN})('#remote') > 10")
        self.assertEqual(await self.js("document.getElementById('remote').videoWidth"), 320)
        await self.js("window.call.hangup()")
        await self.until("window.call.status() === 'FINISH'")
        self.assertIsNone(await self.js("document.getElementById('remote').srcObject"))
        self.assertTrue(await self.js("window.call.hasVideo()"))  # what the call had

    @inline
    async def test_mute_video_disables_the_sent_track_without_renegotiating(self) -> None:
        await self.js(RECORD_PCS_JS)
        await self.placed_video_call(far_end_video=True)
        local_sdp = await self.js("window.__pcs[0].localDescription.sdp")
        self.assertIs(await self.js(SENT_VIDEO_ENABLED), True)
        self.assertFalse(await self.js("window.call.isVideoMuted()"))
        await self.js("window.call.muteVideo()")
        self.assertIs(await self.js(SENT_VIDEO_ENABLED), False)
        self.assertTrue(await self.js("window.call.isVideoMuted()"))
        self.assertFalse(await self.js("window.call.isAudioMuted()"))  # the microphone stays on
        await self.js("window.call.unmuteVideo()")
        self.assertIs(await self.js(SENT_VIDEO_ENABLED), True)
        self.assertFalse(await self.js("window.call.isVideoMuted()"))
        # Same track, same SDP: nothing was renegotiated.
        self.assertEqual(await self.js("window.__pcs[0].localDescription.sdp"), local_sdp)
        self.assertEqual(await self.js("window.__pcs[0].signalingState"), "stable")

    @inline
    async def test_video_rejected_by_the_far_end_goes_on_audio_only(self) -> None:
        await self.placed_video_call(far_end_video=False)
        self.assertFalse(await self.js("window.call.hasVideo()"))
        # Audio still plays through the remote display element.
        await self.until("""async () => {
            const stats = await window.call.getStats();
            let bytes = 0;
            stats.forEach((s) => { if (s.type === "inbound-rtp" && s.kind === "audio") bytes = s.bytesReceived; });
            return bytes > 1000; }""")

    @inline
    async def test_receive_video_without_a_camera(self) -> None:
        await self.js(SDK_SETUP_JS)
        await self.js("""() => { window.call = window.session.createCall({callee: "1002",
            constraints: {audio: true, video: false}, receiveVideo: true}); window.call.call(); }""")
        (_, _sid, call) = await self.gateway.events.wait_for(lambda e: e[0] == "call")
        self.assertTrue(call["has_video"])
        self.assertIn("a=recvonly", video_section(call["sdp"]))
        self.assertEqual(await self.js("window.call.getLocalStream().getVideoTracks().length"), 0)

    @inline
    async def test_voice_call_offers_no_video(self) -> None:
        await self.js(SDK_SETUP_JS)
        await self.js("""() => { window.call = window.session.createCall({callee: "1002"});
            window.call.call(); }""")
        (_, _sid, call) = await self.gateway.events.wait_for(lambda e: e[0] == "call")
        self.assertFalse(call["has_video"])
        self.assertNotIn("m=video", call["sdp"])
        self.assertFalse(await self.js("window.call.hasVideo()"))

    @inline
    async def test_mute_video_in_a_voice_call_does_nothing(self) -> None:
        await self.js(SDK_SETUP_JS)
        await self.js("""() => { window.call = window.session.createCall({callee: "1002"});
            window.call.call(); }""")
        await self.gateway.events.wait_for(lambda e: e[0] == "call")
        self.assertFalse(await self.js("window.call.isVideoMuted()"))
        await self.js("window.call.muteVideo()")  # no camera: no error, no change
        self.assertFalse(await self.js("window.call.isVideoMuted()"))
        self.assertEqual(await self.js("window.call.getLocalStream().getVideoTracks().length"), 0)
        self.assertTrue(await self.js("window.call.getLocalStream().getAudioTracks()[0].enabled"))
        await self.js("window.call.unmuteVideo()")
        self.assertFalse(await self.js("window.call.isAudioMuted()"))


class PhoneUiVideoTests(BrowserTestCase):
    """The Phone UI's ``Video call`` and the answer choices for an incoming video call."""

    async def logged_in(self) -> str:
        await aio(self.button("Log in").click())
        (_, session_id, _a, _r) = await self.gateway.events.wait_for(lambda e: e[0] == "connect")
        await aio(self.expect(self.button("Video call")).to_be_enabled())
        return session_id

    @inline
    async def test_video_call_shows_the_video_area(self) -> None:
        await self.logged_in()
        self.assertTrue(await self.js("document.getElementById('video-area').hidden"))
        await aio(self.field("Callee").fill("1002"))
        await aio(self.button("Video call").click())
        (_, session_id, call) = await self.gateway.events.wait_for(lambda e: e[0] == "call")
        self.assertEqual((call["callee"], call["has_audio"], call["has_video"]), ("1002", True, True))
        await aio(self.expect(self.page.get_by_label("Remote video")).to_be_visible())
        await aio(self.expect(self.page.get_by_label("Local video")).to_be_visible())
        await self.until("document.getElementById('local-video').videoWidth > 0")
        await aio(self.expect(self.button("Video call")).to_be_disabled())

        answer = await self.js(VIDEO_FAR_END_JS, [call["sdp"], True])
        listener = self.gateway.listeners[session_id]
        listener.call_status(self.gateway.call_dict(call["call_id"], "ESTABLISHED", sipStatus=200, sdp=answer))
        await self.until("document.getElementById('video-area').dataset.state === 'playing'")
        await self.until(f"({FRAMES_SHOWN})('#remote-video') > 10")
        await self.until("document.getElementById('level').value > 0.3")  # its audio plays too
        self.assertIsNone(await self.js("document.getElementById('remote-audio').srcObject"))

        await aio(self.button("Hangup").click())
        await self.gateway.events.wait_for(lambda e: e[0] == "hangup")
        await aio(self.expect(self.page.locator("#call-status")).to_contain_text("FINISH"))
        self.assertTrue(await self.js("document.getElementById('video-area').hidden"))
        self.assertIsNone(await self.js("document.getElementById('local-video').srcObject"))

    @inline
    async def test_camera_button_turns_the_camera_off_and_on(self) -> None:
        await self.logged_in()
        await self.js(RECORD_PCS_JS)
        await aio(self.expect(self.button("Camera")).to_be_hidden())
        await aio(self.field("Callee").fill("1002"))
        await aio(self.button("Video call").click())
        (_, session_id, call) = await self.gateway.events.wait_for(lambda e: e[0] == "call")
        answer = await self.js(VIDEO_FAR_END_JS, [call["sdp"], True])
        self.gateway.listeners[session_id].call_status(
            self.gateway.call_dict(call["call_id"], "ESTABLISHED", sipStatus=200, sdp=answer))
        camera = self.button("Camera")
        await aio(self.expect(camera).to_be_enabled())
        await aio(self.expect(camera).to_have_attribute("aria-pressed", "true"))  # pressed: on
        self.assertIs(await self.js(SENT_VIDEO_ENABLED), True)
        await aio(self.expect(self.page.get_by_text("Camera off")).to_be_hidden())

        await aio(camera.click())
        await aio(self.expect(camera).to_have_attribute("aria-pressed", "false"))
        self.assertIs(await self.js(SENT_VIDEO_ENABLED), False)
        await aio(self.expect(self.page.get_by_text("Camera off")).to_be_visible())
        self.assertEqual(await self.js("document.getElementById('video-area').dataset.camera"), "off")
        await aio(self.expect(self.button("Mute")).to_have_attribute("aria-pressed", "false"))

        await aio(camera.click())
        await aio(self.expect(camera).to_have_attribute("aria-pressed", "true"))
        self.assertIs(await self.js(SENT_VIDEO_ENABLED), True)
        await aio(self.expect(self.page.get_by_text("Camera off")).to_be_hidden())

        await aio(camera.click())  # off when the call ends: the next call starts with it on
        await aio(self.button("Hangup").click())
        await self.gateway.events.wait_for(lambda e: e[0] == "hangup")
        await aio(self.expect(camera).to_be_hidden())
        # Hidden, it has no role to find it by: read the attribute by id.
        await aio(self.expect(self.page.locator("#camera")).to_have_attribute("aria-pressed", "true"))
        await aio(self.expect(self.page.get_by_text("Camera off")).to_be_hidden())

    @inline
    async def test_voice_call_has_no_camera_button(self) -> None:
        await self.logged_in()
        await aio(self.field("Callee").fill("1002"))
        await aio(self.button("Voice call").click())
        await self.gateway.events.wait_for(lambda e: e[0] == "call")
        await aio(self.expect(self.button("Hangup")).to_be_enabled())
        await aio(self.expect(self.button("Mute")).to_be_enabled())
        await aio(self.expect(self.button("Camera")).to_be_hidden())

    @inline
    async def test_far_end_without_video_says_audio_only(self) -> None:
        await self.logged_in()
        await aio(self.field("Callee").fill("1002"))
        await aio(self.button("Video call").click())
        (_, session_id, call) = await self.gateway.events.wait_for(lambda e: e[0] == "call")
        answer = await self.js(VIDEO_FAR_END_JS, [call["sdp"], False])
        self.gateway.listeners[session_id].call_status(
            self.gateway.call_dict(call["call_id"], "ESTABLISHED", sipStatus=200, sdp=answer))
        await self.until("document.getElementById('video-area').dataset.state === 'audio-only'")
        await aio(self.expect(self.page.locator("#video-note")).to_contain_text("Audio only"))

    async def ring_with_video(self) -> str:
        session_id = await self.logged_in()
        offer = await self.js(VIDEO_FAR_END_JS, [None, True])
        self.gateway.calls["in-v"] = {"session": session_id, "callee": "", "caller": "1002",
                                      "incoming": True}
        self.gateway.listeners[session_id].notify("incomingCall", {
            "callId": "in-v", "caller": "1002", "callee": "", "visibleName": "1002",
            "hasAudio": True, "hasVideo": True, "sdp": offer})
        await aio(self.expect(self.page.get_by_text("Incoming video call from 1002")).to_be_visible())
        return session_id

    @inline
    async def test_incoming_video_call_answered_with_video(self) -> None:
        await self.ring_with_video()
        await aio(self.expect(self.button("Answer with video")).to_be_enabled())
        await aio(self.expect(self.button("Answer")).to_be_enabled())
        await aio(self.button("Answer with video").click())
        (_, _sid, _call_id, answer) = await self.gateway.events.wait_for(lambda e: e[0] == "answer")
        section = video_section(answer)
        self.assertIn("a=sendrecv", section)
        self.assertIn("a=ssrc:", section)
        await self.js("(sdp) => window.__far.setRemoteDescription({type: 'answer', sdp})", answer)
        await self.until(f"({FRAMES_SHOWN})('#remote-video') > 10")
        await self.until("document.getElementById('video-area').dataset.state === 'playing'")
        await aio(self.expect(self.button("Answer with video")).to_be_hidden())

    @inline
    async def test_incoming_video_call_answered_audio_only(self) -> None:
        await self.ring_with_video()
        await aio(self.button("Answer").click())
        (_, _sid, _call_id, answer) = await self.gateway.events.wait_for(lambda e: e[0] == "answer")
        self.assertIn("a=inactive", video_section(answer))  # the offered video is declined
        self.assertTrue(await self.js("document.getElementById('video-area').hidden"))

    @inline
    async def test_incoming_voice_call_has_no_video_answer(self) -> None:
        session_id = await self.logged_in()
        offer = await self.js(OFFERER_JS)
        self.gateway.offer_call(session_id, "in-1", "1002", offer)
        await aio(self.expect(self.page.get_by_text("Incoming call from 1002")).to_be_visible())
        await aio(self.expect(self.button("Answer")).to_be_enabled())
        await aio(self.expect(self.button("Answer with video")).to_be_hidden())
