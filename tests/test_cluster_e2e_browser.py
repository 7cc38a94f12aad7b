"""Browsers through HAProxy to either node of a cluster, calls both ways through Kamailio
(issue 17, items 2, 3 and 6).

The topology of tests/test_cluster_e2e.py (Redis, Kamailio registrar + dispatcher, two
gateway processes, HAProxy) with headless Chromium on the Phone UI and a baresip phone (1 kHz,
auto-answer).  Two pages, each from a browser without cookies, land on different nodes (round
robin; the cookie HAProxy set names the node), log in and register at Kamailio through the
node they landed on:

* page 1 calls the phone and hears its 1 kHz (FFT in the page); REST ``call/find`` through
  HAProxy shows the call on the page's node;
* the phone calls page 2's user at Kamailio: the INVITE goes to the Contact that user's
  session registered — page 2's node, which REST ``call/find`` names — and the page answers
  and hears the phone.
"""

from __future__ import annotations

import os
import secrets
from typing import Any

from tests.e2e import Phone
from tests.peers.baresip import Baresip, write_tone
from tests.peers.chromium import Chromium, aio, write_tone_wav
from tests.peers.dispatcher import Dispatcher
from tests.peers.haproxy import COOKIE
from tests.peers.redis import RedisServer
from tests.support import assert_near
from tests.test_cluster_e2e import rest
from tests.test_cluster_e2e_front import SHARED_CONFIG, start_balancer, start_nodes
from tests.test_twistd import TwistdTestCase


class BrowserThroughClusterTests(TwistdTestCase):
    timeout = 180

    async def page_on_a_node(self, browser: Chromium, url: str) -> tuple[Phone, str]:
        """A fresh visitor (no cookie) opens the Phone UI through HAProxy: the page and the
        node HAProxy's cookie names."""
        await aio(browser.context.clear_cookies())
        ui = await Phone.open(browser, url)
        cookies = await aio(browser.context.cookies())
        [node] = [c["value"] for c in cookies if c["name"] == COOKIE]
        return ui, node

    async def register(self, ui: Phone, user: str, kam_port: int) -> None:
        await ui.login(login=user, password=f"pass{user}", domain="127.0.0.1",
                       proxy="127.0.0.1", port=str(kam_port), register=True)

    async def hears_1k(self, ui: Phone) -> None:
        await ui.wait_state("call-status", "established")
        peak = await ui.received_frequency()
        assert_near(self, peak["frequency"], 1000, 15)
        self.assertGreater(peak["level"], -60)

    def held_by(self, lb_port: int, **filters: Any) -> list[tuple[str, bool, str]]:
        status, calls = rest(lb_port, "call/find", filters)
        self.assertEqual(status, 200, calls)
        return [(c["status"], c["incoming"], c["node"]) for c in calls]

    async def test_browsers_on_both_nodes_call_out_and_are_called(self) -> None:
        redis = RedisServer()
        self.addCleanup(redis.stop)
        await redis.start()
        kam = Dispatcher([], ping=1)
        config = SHARED_CONFIG + (
            '[policy]\nallowed_domains = ["127.0.0.1"]\n'
            f'[cluster]\nredis_url = "{redis.url}"\nsecret = "{secrets.token_hex(16)}"\n')
        nodes = await start_nodes(self, config)
        lb = await start_balancer(self, nodes, kam)

        tone = write_tone(os.path.abspath(self.mktemp()) + ".wav", frequency=1000.0,
                          rate=8000, seconds=60.0)
        phone = Baresip("1002", "pass1002", registrar_port=kam.port, outbound=True, tone=tone,
                        codecs="PCMU", ausrc_srate=8000, ausrc_channels=1)
        self.addCleanup(phone.stop)  # added after Kamailio's: runs first
        await phone.start()
        await phone.registered()
        browser = Chromium(fake_audio=write_tone_wav(self.mktemp() + "-mic.wav", 440.0))
        await browser.start()
        self.addCleanup(browser.stop)

        caller, caller_node = await self.page_on_a_node(browser, lb.url + "/")
        await self.register(caller, "1003", kam.port)
        # Round robin sends the next cookie-less visitor to the other node; should anything
        # else of the browser's have come between, another fresh visit does (before logging in).
        for _ in range(4):
            callee, callee_node = await self.page_on_a_node(browser, lb.url + "/")
            if callee_node != caller_node:
                break
            await aio(callee.page.close())
        self.assertEqual({caller_node, callee_node}, {"a", "b"})  # one page on each node
        await self.register(callee, "1004", kam.port)

        # Page 1 calls the phone: its node places the call; the page hears the phone.
        mark = phone.mark()
        await caller.call("1002")
        await phone.wait_event("CALL_ESTABLISHED", since=mark)
        await self.hears_1k(caller)
        self.assertEqual(self.held_by(lb.port, callee="1002"),
                         [("ESTABLISHED", False, caller_node)])
        mark = phone.mark()
        await caller.click("Hangup")
        await phone.wait_event("CALL_CLOSED", since=mark)

        # The phone calls page 2's user: Kamailio looks it up and sends the INVITE to the
        # Contact page 2's session registered, on page 2's node.
        mark = phone.mark()
        await phone.command("dial", f"sip:1004@127.0.0.1:{kam.port}")
        await callee.ringing()
        await callee.click("Answer")
        await self.hears_1k(callee)
        self.assertEqual(self.held_by(lb.port, status="ESTABLISHED"),
                         [("ESTABLISHED", True, callee_node)])
        await callee.click("Hangup")
        await phone.wait_event("CALL_CLOSED", since=mark)
        for n in nodes:
            assert n.process is not None
            self.assertNotIn("Traceback", n.process.output)
