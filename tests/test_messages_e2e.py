"""SIP MESSAGE both ways with real peers: a person in headless Chromium uses the Phone UI's chat
panel (logged in as 1001 at Kamailio, through the gateway) and phone 1002 is SIPp (Debian
``sip-tester``; baresip 1.0 cannot send a MESSAGE outside a call): one SIPp registers 1002
with the Contact of another, which takes the gateway's MESSAGE and checks its text; a third
sends to 1001 through Kamailio, with its digest.

What a user sees is checked in the page: the sent text marked sent, the received one in the
log `Messages` as text — its HTML is not markup —, a refused destination and a refused type.
"""

from __future__ import annotations

import errno
import socket
from typing import Any

from twisted.internet import reactor, task
from twisted.trial import unittest

from tests.e2e import PeersMixin, Phone
from tests.peers.chromium import aio, evaluate
from tests.peers.process import POLL
from tests.peers.sipp import Sipp
from tests.support import inline

#: what the browser sends; message_uas.xml checks that the phone got it
BROWSER_TEXT = "Hello from the browser: <i>not markup</i>"
#: what the phone sends: HTML that must show as these characters
PHONE_TEXT = "<b>bold</b> & <img src=x onerror=alert(1)>"
#: how long a user waits for an entry of the log (generous: a loaded CI machine)
WAIT = 30.0


class MessagesE2ETests(PeersMixin, unittest.TestCase):
    timeout = 180

    async def sipp(self, scenario: str, *extra: str, remote: bool = True) -> Sipp:
        sipp = Sipp(scenario, remote=f"127.0.0.1:{self.kam.port}" if remote else None,
                    extra=extra)
        self.addCleanup(sipp.stop)
        sipp.start()
        return sipp

    async def listening(self, sipp: Sipp) -> None:
        """Until ``sipp`` holds its UDP port (a MESSAGE sent before would be lost)."""
        deadline = reactor.seconds() + WAIT
        while True:
            probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                probe.bind(("127.0.0.1", sipp.port))
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    return
                raise
            finally:
                probe.close()
            self.assertLess(reactor.seconds(), deadline,
                            f"SIPp did not listen within {WAIT:g} s:\n{sipp.logs_now()}")
            await task.deferLater(reactor, POLL, lambda: None)

    async def passed(self, sipp: Sipp) -> None:
        status = await sipp.finished()
        self.assertEqual(status, 0, f"SIPp {sipp.scenario.name} failed:\n{sipp.logs}")

    async def entries(self, ui: Phone) -> list[dict[str, Any]]:
        return await evaluate(ui.page, """() => [...document.querySelectorAll('#chat-log li')]
            .map(li => ({direction: li.dataset.direction, state: li.dataset.state,
                         peer: li.querySelector('.chat-peer').textContent,
                         text: li.querySelector('.chat-text').textContent,
                         note: li.querySelector('.chat-note').textContent,
                         elements: li.querySelector('.chat-text').children.length}))""")

    async def wait_entry(self, ui: Phone, index: int, *states: str) -> dict[str, Any]:
        """The log's entry ``index`` once it is in one of ``states``."""
        await aio(ui.page.wait_for_function(
            """([index, states]) => { const li = document.querySelectorAll('#chat-log li')[index];
                return li !== undefined && states.includes(li.dataset.state); }""",
            arg=[index, list(states)], timeout=WAIT * 1000))
        return (await self.entries(ui))[index]

    async def send(self, ui: Phone, to: str, text: str) -> None:
        await ui.fill("Message to", to)
        await ui.fill("Message", text)
        await ui.click("Send")

    @inline
    async def test_browser_and_phone_message_each_other(self) -> None:
        await self.start_pbx()
        await self.start_browser()
        ui = await self.logged_in_ui()
        uas = await self.sipp("message_uas.xml", remote=False)
        await self.listening(uas)
        await self.passed(await self.sipp("message_register.xml", "-key", "uas_port",
                                          str(uas.port)))

        # browser -> phone: the phone's SIPp checks the text; the page marks it sent
        await self.send(ui, "1002", BROWSER_TEXT)
        sent = await self.wait_entry(ui, 0, "sent", "failed")
        self.assertEqual((sent["direction"], sent["state"], sent["note"]), ("out", "sent", ""),
                         f"{sent}\nthe phone's SIPp:\n{uas.logs_now()}")
        self.assertEqual(sent["text"], BROWSER_TEXT)
        await self.passed(uas)

        # phone -> browser: its HTML is shown as text, nothing of it becomes an element
        await ui.fill("Message to", "")
        await self.passed(await self.sipp("message_uac.xml", "-key", "body", PHONE_TEXT,
                                          "-key", "ctype", "text/plain;charset=UTF-8"))
        received = await self.wait_entry(ui, 1, "received")
        self.assertEqual(received["direction"], "in")
        self.assertEqual(received["peer"], "From sip:1002@127.0.0.1")
        self.assertEqual(received["text"].strip(), PHONE_TEXT)
        self.assertEqual(received["elements"], 0)
        self.assertEqual(await evaluate(ui.page, "document.querySelectorAll("
                                        "'#chat-log b, #chat-log img').length"), 0)
        # a reply goes back to the sender: its address filled in for the user
        self.assertEqual(await aio(ui.page.get_by_label("Message to", exact=True)
                                   .input_value()), "sip:1002@127.0.0.1")

    @inline
    async def test_refusals(self) -> None:
        await self.start_pbx()
        await self.start_browser()
        ui = await self.logged_in_ui()

        # a domain the policy does not allow: refused by the gateway, shown on the entry
        await self.send(ui, "sip:1002@evil.example", "hi")
        refused = await self.wait_entry(ui, 0, "sent", "failed")
        self.assertEqual(refused["state"], "failed")
        self.assertIn("Forbidden destination", refused["note"])

        # a user nobody registered: Kamailio's 404 reaches the page
        await self.send(ui, "1009", "anyone there?")
        missing = await self.wait_entry(ui, 1, "sent", "failed")
        self.assertEqual(missing["state"], "failed")
        self.assertIn("404", missing["note"])

        # a type the gateway does not deliver (text/html): 415 to the phone, nothing shown
        await self.passed(await self.sipp("message_uac_refused.xml", "-key", "body",
                                          "<b>html</b>", "-key", "ctype", "text/html"))
        self.assertEqual(len(await self.entries(ui)), 2)
