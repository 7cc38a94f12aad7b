"""Issue 16 "done when" (part 4), end to end: the Phone UI draws the SIP ladder of a live call.

Headless Chromium (Phone UI, fake 440 Hz microphone) calls a baresip phone (1 kHz, PCMU)
registered at Kamailio, through the gateway, all on loopback.  Kamailio challenges the INVITE
(407), so the ladder must show INVITE, 407, INVITE again with credentials, 100, 180/200, ACK —
and after the browser hangs up, BYE and its 200 — each arrow a button found by its accessible
name, as a person with a screen reader finds it.  Opening an arrow shows its message.  The
digest response and nonces the gateway really sent (read from its own capture, beside the
ladder's) appear nowhere: not in the page, not in any WebSocket frame the browser received.
A call from the phone to the browser draws its ladder too, from the INVITE that came before
the call existed.
"""

from __future__ import annotations

import re
from typing import Any

from twisted.trial import unittest

from tests.e2e import SipPhoneMixin
from tests.peers.chromium import aio
from tests.support import inline

#: a digest parameter's value in a raw message (response, nonce, cnonce)
SECRET = re.compile(rb'\b(response|nonce|cnonce)="([^"]+)"')


class PhoneUiLadderTests(SipPhoneMixin, unittest.TestCase):
    def wiretap(self) -> list[bytes]:
        """Every raw message the gateway's endpoint sees, before the ladder redacts it."""
        endpoint = self.gateway.sip.endpoint
        ladder_capture = endpoint.capture
        self.assertIsNotNone(ladder_capture)  # the service installed the ladders' observer
        raw: list[bytes] = []

        def both(direction: str, data: bytes, peer: Any, now: float) -> None:
            raw.append(data)
            ladder_capture(direction, data, peer, now)

        endpoint.capture = both
        return raw

    def arrow(self, ui: Any, name: str) -> Any:
        """The ladder's arrow buttons whose accessible name starts with ``name``."""
        region = ui.page.get_by_role("region", name="SIP ladder", exact=True)
        return region.get_by_role("button", name=re.compile("^" + re.escape(name) + r"(,|$)"))

    async def wait_arrow(self, ui: Any, name: str, count: int = 1) -> None:
        try:
            await aio(self.arrow(ui, name).nth(count - 1).wait_for(state="visible",
                                                                  timeout=15000))
        except Exception as exc:  # noqa: BLE001 - failed: say what the ladder did show
            self.fail(f"no arrow {name!r} (x{count}) in {await self.names(ui)}: {exc}")

    async def names(self, ui: Any) -> list[str]:
        """The accessible names of the ladder's arrows, in order."""
        return list(await aio(ui.page.eval_on_selector_all(
            ".ladder-arrow", "bs => bs.map(b => b.getAttribute('aria-label'))")))

    @inline
    async def test_ladder_of_a_live_call_through_kamailio(self) -> None:
        await self.start_pbx_and_phone(codecs="PCMU", ausrc_srate=8000, ausrc_channels=1)
        browser = await self.start_browser()
        frames: list[str] = []
        browser.context.on("page", lambda page: page.on(
            "websocket", lambda ws: ws.on("framereceived", lambda p: frames.append(str(p)))))
        raw = self.wiretap()
        ui = await self.logged_in_ui()
        await ui.call("1002")
        await ui.wait_state("call-status", "established")
        await self.phone.wait_event("CALL_ESTABLISHED")
        await aio(ui.page.get_by_text("SIP ladder", exact=True).click())  # open the panel

        # the SIP side, in order of what the gateway did: challenged, then with credentials
        for name in ("call, Browser to Gateway", "INVITE, Gateway to SIP server",
                     "407, SIP server to Gateway", "100, SIP server to Gateway",
                     "200, SIP server to Gateway", "ACK, Gateway to SIP server",
                     "callStatus ESTABLISHED, Gateway to Browser"):
            await self.wait_arrow(ui, name)
        await self.wait_arrow(ui, "INVITE, Gateway to SIP server", count=2)
        names = await self.names(ui)
        sip_labels = [n.split(",")[0] for n in names if "SIP server" in n]
        # in this order (a 180 may come between the 100 and the 200)
        left = iter(sip_labels)
        for label in ("INVITE", "407", "ACK", "INVITE", "100", "200", "ACK"):
            self.assertIn(label, left, sip_labels)  # consumes up to it: an ordered subsequence

        # drawn in lanes (ladder.css): the browser's arrows left of the SIP side's
        browser_side = await aio(self.arrow(ui, "call, Browser to Gateway").bounding_box())
        sip_side = await aio(self.arrow(ui, "INVITE, Gateway to SIP server").first
                             .bounding_box())
        self.assertLess(browser_side["x"] + browser_side["width"] / 2, sip_side["x"])

        # opening the INVITE sent with credentials shows the message, credentials redacted
        retry = self.arrow(ui, "INVITE, Gateway to SIP server").nth(1)
        await aio(retry.click())
        self.assertEqual(await aio(retry.get_attribute("aria-expanded")), "true")
        shown = await aio(ui.page.locator(
            "#" + await aio(retry.get_attribute("aria-controls"))).text_content())
        self.assertIn("INVITE sip:1002@127.0.0.1", shown)
        self.assertIn('Proxy-Authorization: Digest username="1001"', shown)
        self.assertIn('response="…"', shown)
        self.assertIn("m=audio", shown)  # the SDP offer is there, readable

        # the browser hangs up: BYE and the phone's 200 for it join the ladder
        await ui.click("Hangup")
        await ui.wait_state("call-status", "finish")
        await self.wait_arrow(ui, "hangup, Browser to Gateway")
        await self.wait_arrow(ui, "BYE, Gateway to SIP server")
        names = await self.names(ui)
        bye = names.index("BYE, Gateway to SIP server")
        self.assertTrue(any(n == "200, SIP server to Gateway" for n in names[bye:]), names)
        await self.assert_clean()

        # no credential the gateway really sent or was sent is anywhere the browser got
        secrets = {m.group(2).decode() for data in raw for m in SECRET.finditer(data)}
        self.assertTrue(any('response="' in d.decode("utf-8", "replace") for d in raw))
        self.assertTrue(secrets)
        for arrow in await aio(ui.page.locator(".ladder-arrow").all()):
            if await aio(arrow.get_attribute("aria-expanded")) == "false":
                await aio(arrow.click())  # every message open: all of it in the page
        page = await aio(ui.page.content())
        self.assertIn("Proxy-Authorization: Digest", page)
        ladder_frames = [f for f in frames if '"sipLadder"' in f]
        self.assertGreater(len(ladder_frames), 8)
        for secret in secrets:
            self.assertNotIn(secret, page)
            for frame in frames:
                self.assertNotIn(secret, frame)
        # the gateway keeps the ended call's ladder for the operator
        [session_id] = self.gateway.top.call_gateway.sessions
        [call_id] = {re.search(r'"callId": ?"([^"]+)"', f).group(1)  # type: ignore[union-attr]
                     for f in ladder_frames}
        entries = self.gateway.top.call_gateway.ladders.entries(session_id, call_id)
        self.assertEqual([e["label"] for e in entries if e["from"] == "browser"][:1], ["call"])
        self.assertIn("BYE", [e["label"] for e in entries])

    @inline
    async def test_ladder_of_an_incoming_call(self) -> None:
        """The phone calls the browser: the INVITE comes before the call exists (and before
        the page's incomingCall), yet it is the first arrow; the browser's answer, the 200
        and its ACK, then the phone's BYE follow."""
        ui, phone = await self.setup_call()
        await phone.command("dial", f"sip:1001@127.0.0.1:{self.kam.port}")
        await ui.ringing()
        await aio(ui.page.get_by_text("SIP ladder", exact=True).click())
        await self.wait_arrow(ui, "incomingCall, Gateway to Browser")
        await self.wait_arrow(ui, "180, Gateway to SIP server")
        names = await self.names(ui)
        self.assertEqual(names[0], "INVITE, SIP server to Gateway", names)
        await ui.click("Answer")
        await ui.wait_state("call-status", "established")
        for name in ("answer, Browser to Gateway", "200, Gateway to SIP server",
                     "ACK, SIP server to Gateway"):
            await self.wait_arrow(ui, name)
        mark = phone.mark()
        await phone.command("hangup")
        await phone.wait_event("CALL_CLOSED", since=mark)
        await ui.wait_state("call-status", "finish")
        for name in ("BYE, SIP server to Gateway", "callStatus FINISH, Gateway to Browser"):
            await self.wait_arrow(ui, name)
        names = await self.names(ui)
        bye = names.index("BYE, SIP server to Gateway")
        self.assertIn("200, Gateway to SIP server", names[bye:])
        await self.assert_clean()
