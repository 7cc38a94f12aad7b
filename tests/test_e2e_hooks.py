"""A "call us" button, end to end: a page with no SIP credentials in it (Chromium, the Web
SDK with only an ``appKey``), a real backend (its own process) that binds the visitor to the
server-held account 1001 and sends the call to 1002, Kamailio, and baresip 1002 answering
with a 1 kHz tone — heard in the browser by its frequency, and the browser's 440 Hz heard by
the phone (docs/hooks.md: the newcomer's case of issue 13)."""

from __future__ import annotations

import os
from typing import Any

import attrs
from twisted.internet import defer, reactor, task
from twisted.trial import unittest

from tests.e2e import Gateway, dominant_hz, gateway_config
from tests.peers.backend import Backend
from tests.peers.baresip import Baresip, write_tone
from tests.peers.chromium import Chromium, aio, dominant_frequency, evaluate, write_tone_wav
from tests.peers.kamailio import Kamailio
from tests.support import assert_near
from tests.test_hooks_backend import SECRET, assert_documented
from wcsgw.config.settings import Account, AppSettings

#: The whole "call us" page: a button, and the SDK told nothing but the app's key.
CALL_US_PAGE = """async () => {
    document.body.innerHTML = '<button id="call-us">Call us</button>' +
        '<audio id="remote" autoplay></audio><p id="state" role="status"></p>';
    const wcsgw = await import('/sdk/wcsgw.js');
    const state = document.getElementById('state');
    document.getElementById('call-us').onclick = () => {
        const session = wcsgw.createSession({urlServer: `ws://${location.host}/ws`,
                                             appKey: 'shop'});
        session.on(wcsgw.SESSION_STATUS.ESTABLISHED, () => {
            const call = session.createCall({callee: 'sales',
                remoteVideoDisplay: document.getElementById('remote'),
                constraints: {audio: true, video: false}});
            call.on(wcsgw.CALL_STATUS.ESTABLISHED, () => { state.textContent = 'established'; });
            call.on(wcsgw.CALL_STATUS.FAILED, c => { state.textContent = 'failed'; });
            window.callUs = call;
            call.call();
        });
        session.on(wcsgw.SESSION_STATUS.FAILED, s => { state.textContent = 'refused'; });
    };
}"""


class CallUsButtonTests(unittest.TestCase):
    timeout = 120

    async def test_visitor_without_credentials_talks_to_the_phone(self) -> None:
        kam = Kamailio()
        self.addCleanup(kam.stop)
        await kam.start()
        backend = Backend(SECRET)
        await backend.start()
        self.addCleanup(lambda: defer.ensureDeferred(backend.stop()))
        await backend.script(connect={"body": {"account": "office"}},
                             call={"body": {"callee": "1002"}})
        office = Account(name="office", login="1001", password="pass1001", domain="127.0.0.1",
                         outbound_proxy="127.0.0.1", port=kam.port)
        config = attrs.evolve(gateway_config(t1=0.1, t2=0.8), accounts=(office,), apps=(
            AppSettings(hook_url=backend.url, secret=SECRET, key="shop", timeout=3.0),))
        gateway = Gateway(config)
        gateway.start()
        self.addCleanup(gateway.stop)
        tone = write_tone(os.path.abspath(self.mktemp()) + ".wav", frequency=1000.0, rate=8000,
                          seconds=30.0)
        phone = Baresip("1002", "pass1002", registrar_port=kam.port, outbound=True, tone=tone,
                        codecs="PCMU", answermode="auto", ausrc_srate=8000, ausrc_channels=1)
        self.addCleanup(phone.stop)
        await phone.start()
        await phone.registered()
        browser = Chromium(fake_audio=write_tone_wav(self.mktemp() + "-mic.wav", 440.0))
        await browser.start()
        self.addCleanup(browser.stop)

        page = await browser.new_page()
        await aio(page.goto(gateway.url + "health"))  # the gateway's origin, nothing of the UI
        await evaluate(page, CALL_US_PAGE)
        html = await evaluate(page, "() => document.documentElement.outerHTML")
        self.assertNotIn("pass1001", html)
        await aio(page.get_by_role("button", name="Call us", exact=True).click())
        await self._wait_state(page, "established")
        await phone.wait_event("CALL_ESTABLISHED")

        peak = await dominant_frequency(page, "document.getElementById('remote').srcObject", 1500)
        assert_near(self, peak["frequency"], 1000, 15)
        self.assertGreater(peak["level"], -60)
        [call] = gateway.calls.values()
        self.assertEqual(call.account.login, "1001")  # the hook's account carried it
        await task.deferLater(reactor, 1.5, lambda: None)  # the phone records the browser
        await evaluate(page, "() => window.callUs.hangup()")
        await phone.wait_event("CALL_CLOSED")
        [recording] = phone.recordings()
        frequency, level = dominant_hz(recording)
        assert_near(self, frequency, 440, 10)
        self.assertGreater(level, 300)

        events = await backend.wait_events(lambda es: any(
            e["event"] == "callStatus" and e["status"] == "FINISH" for e in es))
        self.assertTrue(all(e["verified"] for e in events))
        self.assertEqual([e["event"] for e in events][:2], ["connect", "sessionStatus"])
        self.assertNotIn("pass1001", str(events))
        assert_documented(self, events)

    async def _wait_state(self, page: Any, state: str, timeout: float = 20.0) -> None:
        handle = await aio(page.wait_for_function(
            "() => { const s = document.getElementById('state').textContent;"
            " return ['established', 'failed', 'refused'].includes(s) ? s : false; }",
            timeout=timeout * 1000))
        self.assertEqual(await aio(handle.json_value()), state)
