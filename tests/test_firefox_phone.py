"""The Phone UI in Firefox ESR, with real peers: the first call, an incoming call and DTMF.

The same set-up as the Chromium tests (tests/test_e2e_sip_phone.py, test_e2e_incoming.py,
test_e2e_in_call.py): Kamailio, the gateway, baresip 1002 registered and the Phone UI logged
in as 1001 — but the browser is headless Firefox ESR driven over WebDriver BiDi
(tests/peers/firefox.py).  Firefox's fake microphone plays 1 kHz (:data:`FAKE_TONE_HZ`), so
the phone plays 440 Hz here: each direction is checked by its own tone, the page's received
stream by an in-page FFT, the phone's recording by numpy's.

The UI is driven by the accessible names of docs/contract.md (labels, button names), through
page scripts: a ``<label>``'s control, a button by its aria-label or text.
"""

from __future__ import annotations

import os
from typing import Any, Callable

from twisted.internet import reactor, task
from twisted.trial import unittest

from tests.e2e import REMOTE_STREAM, PeersMixin, dominant_hz, phone_digits
from tests.peers.baresip import Baresip, write_tone
from tests.peers.firefox import FAKE_TONE_HZ, Firefox, Page, dominant_frequency
from tests.peers.process import group_alive
from tests.support import assert_near, inline, ready_or_reload_once

PHONE_TONE_HZ = 440.0
#: Generous: two cores shared with the rest of the suite.
WAIT = 30.0

#: Page helpers: the control of the <label> named ``name`` and the visible button named
#: ``name`` (aria-label, else its text), as a person finds them.
_FIND_JS = """
window.wcsgwFind = {
  label(name) {
    for (const l of document.querySelectorAll("label")) {
      if (l.textContent.trim() === name && l.control) return l.control;
    }
    return null;
  },
  button(name) {
    for (const b of document.querySelectorAll("button")) {
      const n = (b.getAttribute("aria-label") || b.textContent).trim();
      if (n === name && !b.hidden && b.getClientRects().length) return b;
    }
    return null;
  },
};
"""


async def until(predicate: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    """Wait (polling every 0.1 s, up to ``timeout``) until ``predicate()`` holds."""
    deadline = reactor.seconds() + timeout
    while not predicate():
        if reactor.seconds() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        await task.deferLater(reactor, 0.1, lambda: None)


class FirefoxPhone:
    """The Phone UI in one Firefox page, used through its labels and buttons."""

    def __init__(self, browser: Firefox, page: Page) -> None:
        self.browser = browser
        self.page = page

    @classmethod
    async def open(cls, browser: Firefox, url: str) -> "FirefoxPhone":
        page = await browser.new_page()
        await page.goto(url)
        # As tests/e2e.py's Phone: a page whose module did not load is reloaded once, saying why.
        await ready_or_reload_once(
            lambda: page.wait_for("() => document.documentElement.dataset.ready === 'true'"),
            page.reload,
            lambda: (f"the Phone UI at {url} did not become ready in Firefox; "
                     f"console: {browser.console[-20:]}"))
        await page.call(f"() => {{ {_FIND_JS} }}")
        return cls(browser, page)

    async def fill(self, label: str, value: str) -> None:
        await self.page.call("""([name, value]) => {
            const e = wcsgwFind.label(name);
            if (!e) throw new Error("no field labelled " + name);
            e.value = value;
            e.dispatchEvent(new Event("input", {bubbles: true}));
            e.dispatchEvent(new Event("change", {bubbles: true}));
        }""", [label, value])

    async def click(self, name: str) -> None:
        """Click the button ``name`` once it is visible and enabled (as a person waits)."""
        await self.page.wait_for(
            "(name) => { const b = wcsgwFind.button(name); return !!b && !b.disabled; }",
            name, timeout=WAIT)
        await self.page.call("(name) => { wcsgwFind.button(name).click(); }", name)

    async def set_checked(self, label: str, checked: bool) -> None:
        await self.page.call("""([name, checked]) => {
            const e = wcsgwFind.label(name);
            if (!e) throw new Error("no checkbox labelled " + name);
            if (e.checked !== checked) e.click();
        }""", [label, checked])

    async def wait_state(self, element_id: str, *states: str) -> str:
        return await self.page.wait_for(
            "([id, states]) => { const e = document.getElementById(id);"
            " return e && states.includes(e.dataset.state) ? e.dataset.state : false; }",
            [element_id, list(states)], timeout=WAIT)

    async def login(self, kam_port: int) -> None:
        for label, value in (("Login", "1001"), ("Password", "pass1001"),
                             ("Domain", "127.0.0.1"), ("Outbound proxy", "127.0.0.1"),
                             ("Port", str(kam_port))):
            await self.fill(label, value)
        await self.set_checked("Register", True)
        await self.click("Log in")
        await self.wait_state("session-status", "registered")

    async def received_frequency(self) -> dict[str, Any]:
        await self.page.wait_for(f"() => !!({REMOTE_STREAM})", timeout=WAIT)
        return await dominant_frequency(self.page, REMOTE_STREAM, 1500)


class FirefoxPhoneTests(PeersMixin, unittest.TestCase):
    timeout = 180

    async def setup(self, answermode: str = "auto") -> tuple[FirefoxPhone, Baresip]:
        await self.start_pbx()
        tone = write_tone(os.path.abspath(self.mktemp()) + ".wav", frequency=PHONE_TONE_HZ,
                          rate=8000, seconds=30.0)
        self.phone = Baresip("1002", "pass1002", registrar_port=self.kam.port, outbound=True,
                             tone=tone, codecs="PCMU", answermode=answermode)
        self.addCleanup(self.phone.stop)  # added after Kamailio's: runs first
        await self.phone.start()
        await self.phone.registered()
        self.firefox = Firefox(media_origins=[self.gateway.url])
        self.addCleanup(self.firefox.stop)
        await self.firefox.start()
        ui = await FirefoxPhone.open(self.firefox, self.gateway.url)
        await ui.login(self.kam.port)
        return ui, self.phone

    async def assert_audio_both_ways(self, ui: FirefoxPhone, phone: Baresip) -> None:
        """The page hears the phone's 440 Hz; the phone records Firefox's 1 kHz."""
        [call] = self.gateway.calls.values()
        self.assertEqual(call.describe()["media"]["mode"], "relay")
        peak = await ui.received_frequency()
        assert_near(self, peak["frequency"], PHONE_TONE_HZ, 15)
        self.assertGreater(peak["level"], -60)
        await task.deferLater(reactor, 1.5, lambda: None)  # the phone records Firefox's tone
        mark = phone.mark()
        await ui.click("Hangup")
        await phone.wait_event("CALL_CLOSED", since=mark, timeout=WAIT)
        [recording] = phone.recordings()
        frequency, level = dominant_hz(recording)
        assert_near(self, frequency, FAKE_TONE_HZ, 10)
        self.assertGreater(level, 300)
        await self.gateway.when_idle()
        self.assertEqual(self.gateway.calls, {})
        # The browser leg's port is released a moment after the last BYE (measured: < 0.5 s).
        await until(lambda: self.gateway.ports_in_use == 0, "the media ports are released")
        self.assertEqual(self.firefox.console_errors(), [])

    @inline
    async def test_first_call_audio_both_ways(self) -> None:
        ui, phone = await self.setup()
        self.assertIn("Firefox/", await ui.page.call("() => navigator.userAgent"))
        await ui.fill("Callee", "1002")
        await ui.click("Voice call")
        await ui.wait_state("call-status", "established")
        await phone.wait_event("CALL_ESTABLISHED", timeout=WAIT)
        await self.assert_audio_both_ways(ui, phone)
        pgid = self.firefox.pgid
        assert pgid is not None
        self.assertTrue(group_alive(pgid), "Firefox should be running before stop()")
        await self.firefox.stop()
        self.assertFalse(group_alive(pgid), "Firefox processes left after stop()")

    @inline
    async def test_incoming_call_answered(self) -> None:
        ui, phone = await self.setup()
        await phone.command("dial", f"sip:1001@127.0.0.1:{self.kam.port}")
        await ui.page.wait_for("() => !document.getElementById('answer').disabled",
                               timeout=WAIT)
        self.assertIn("1002", await ui.page.call(
            "() => document.getElementById('incoming-text').textContent"))
        await ui.click("Answer")
        await ui.wait_state("call-status", "established")
        await phone.wait_event("CALL_ESTABLISHED", timeout=WAIT)
        await self.assert_audio_both_ways(ui, phone)

    @inline
    async def test_dtmf_both_ways(self) -> None:
        ui, phone = await self.setup()
        await ui.fill("Callee", "1002")
        await ui.click("Voice call")
        await ui.wait_state("call-status", "established")
        await phone.wait_event("CALL_ESTABLISHED", timeout=WAIT)
        mark = phone.mark()
        for key in ("4", "2", "#"):
            await ui.click(key)
        self.assertEqual(await phone_digits(phone, mark, 3), ["4", "2", "#"])
        await phone.command("sndcode", "7*")
        await ui.page.wait_for(
            "() => document.body.textContent.includes('Received DTMF: 7*')", timeout=WAIT)


class FirefoxFakeMicrophoneTests(unittest.TestCase):
    """What the checks above rely on: Firefox's fake microphone is a steady FAKE_TONE_HZ sine,
    measured in the page (getUserMedia, AnalyserNode) of a plain http://127.0.0.1 site."""

    timeout = 120

    @inline
    async def test_fake_microphone_is_a_1khz_tone(self) -> None:
        from twisted.web import resource, server, static

        root = resource.Resource()
        root.putChild(b"", static.Data(b"<!doctype html><title>mic</title>", "text/html"))
        port = reactor.listenTCP(0, server.Site(root), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        origin = f"http://127.0.0.1:{port.getHost().port}"
        firefox = Firefox(media_origins=[origin])
        self.addCleanup(firefox.stop)
        await firefox.start()
        page = await firefox.new_page()
        await page.goto(origin + "/")
        states = await page.call("""async () => {
            window.mic = await navigator.mediaDevices.getUserMedia({audio: true});
            return window.mic.getAudioTracks().map((t) => t.readyState);
        }""")
        self.assertEqual(states, ["live"])
        peak = await dominant_frequency(page, "window.mic", 1500)
        assert_near(self, peak["frequency"], FAKE_TONE_HZ, 5)
        self.assertGreater(peak["level"], -60)
