"""The admin page (/admin) in Chromium against a real gateway, found by accessible names as a
person would: a wrong token shows "Token refused" and nothing else; with the token, a Phone UI
session registered at Kamailio is listed under "Sessions", and a live REST call to a baresip phone behind Kamailio appears under "Calls" with its codecs, ladder and
quality graphs, is hung up from the page, and is then found under "Call records" by its
callId; the CSV download and the call's recording download through the page."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import attrs
from twisted.internet import reactor, task
from twisted.trial import unittest

from tests.e2e import TOKEN, Gateway, RestMixin, gateway_config
from tests.peers.chromium import Chromium, aio, write_tone_wav
from tests.support import inline
from wcsgw.config import RestSettings

WAIT_MS = 15000


def expect(locator: Any) -> Any:
    from playwright.async_api import expect as playwright_expect

    return playwright_expect(locator)


async def download(page: Any, button: Any) -> tuple[str, bytes]:
    """Press ``button`` (an asyncio coroutine: run it with aio) and return the file the page
    handed to the browser: (suggested name, content)."""
    async with page.expect_download(timeout=WAIT_MS) as info:
        await button.click()
    got = await info.value
    return got.suggested_filename, Path(await got.path()).read_bytes()


class AdminPageMixin:
    async def open_admin(self, url: str) -> Any:
        self.browser = Chromium(fake_audio=write_tone_wav(self.mktemp() + "-mic.wav", 440.0))
        await self.browser.start()
        self.addCleanup(self.browser.stop)
        page = await self.browser.new_page()
        await aio(page.goto(url + "admin"))
        return page

    async def sign_in(self, page: Any, token: str) -> None:
        await aio(page.get_by_label("REST token", exact=True).fill(token))
        await aio(page.get_by_role("button", name="Sign in", exact=True).click())

    def assert_no_page_errors(self) -> None:
        errors = [line for line in self.browser.console if line.startswith("pageerror")]
        self.assertEqual(errors, [])


class WrongTokenTests(AdminPageMixin, unittest.TestCase):
    timeout = 90

    @inline
    async def test_wrong_token_shows_token_refused_and_nothing_else(self) -> None:
        gateway = Gateway(attrs.evolve(gateway_config(), rest=RestSettings(tokens=(TOKEN,))))
        gateway.start()
        self.addCleanup(gateway.stop)
        page = await self.open_admin(gateway.url)
        await self.sign_in(page, "not-the-token")
        await aio(expect(page.get_by_role("alert")).to_have_text("Token refused",
                                                                   timeout=WAIT_MS))
        for heading in ("Sessions", "Calls", "Call records", "Recordings"):
            await aio(expect(page.get_by_role("heading", name=heading, exact=True)).to_be_hidden())
        self.assertIsNone(await aio(page.evaluate(
            "() => sessionStorage.getItem('wcsgw.admin.token')")))
        # and the right one opens the page (an empty gateway: nothing live yet)
        await self.sign_in(page, TOKEN)
        await aio(expect(page.get_by_role("heading", name="Sessions", exact=True)).to_be_visible(
            timeout=WAIT_MS))
        await aio(expect(page.get_by_text("No live calls.")).to_be_visible())
        await aio(expect(page.get_by_role("alert")).to_have_count(0))
        self.assertEqual(await aio(page.evaluate(
            "() => [sessionStorage.getItem('wcsgw.admin.token'), localStorage.length]")),
            [TOKEN, 0])
        self.assert_no_page_errors()


class LiveCallTests(AdminPageMixin, RestMixin, unittest.TestCase):
    timeout = 180

    async def record_of(self, call_id: str) -> list[Any]:
        """The call's CDR once the gateway has filed it (written off the signalling path, so
        shortly after the call ended): asked until it is there, for at most 10 s."""
        deadline = time.monotonic() + 10
        while True:
            code, found = await self.rest("cdr/find", {"callId": call_id})
            self.assertEqual(code, 200, found)
            assert isinstance(found, list)
            if found or time.monotonic() > deadline:
                return found
            await task.deferLater(reactor, 0.1, lambda: None)

    @inline
    async def test_live_call_ladder_graphs_hang_up_records_and_downloads(self) -> None:
        phone = await self.setup()
        page = await self.open_admin(self.gateway.url)
        ui = await self.logged_in_ui()  # a Phone UI session registered as 1001 at Kamailio
        await self.sign_in(page, TOKEN)
        await aio(expect(page.get_by_text("No live calls.")).to_be_visible(timeout=WAIT_MS))
        sessions = page.get_by_role("table", name="Sessions")
        row = sessions.get_by_role("row").filter(has_text="sip:1001@127.0.0.1")
        await aio(expect(row).to_have_count(1, timeout=WAIT_MS))
        await aio(expect(row.get_by_role("cell", name="registered", exact=True)).to_be_visible(
            timeout=WAIT_MS))
        await aio(expect(row.get_by_role("cell", name="connected", exact=True)).to_be_visible())
        await aio(expect(sessions).not_to_contain_text("pass1001"))

        # the browser calls the phone; the operator records the call over REST
        await ui.call("1002")
        await phone.wait_event("CALL_ESTABLISHED")
        await ui.wait_state("call-status", "established")
        [call_id] = self.gateway.calls
        code, reply = await self.rest("call/record", {"callId": call_id, "enable": True})
        self.assertEqual(code, 200, reply)
        assert isinstance(reply, dict)
        recording = reply["recording"]
        call = page.get_by_role("article", name=f"Call {call_id}")
        await aio(expect(call).to_be_visible(timeout=WAIT_MS))
        await aio(expect(call).to_contain_text("ESTABLISHED", timeout=WAIT_MS))
        await aio(expect(call).to_contain_text("PCMU/8000"))
        await aio(expect(call).to_contain_text("1002"))
        await aio(expect(row).to_contain_text(call_id, timeout=WAIT_MS))  # the session's call
        await aio(expect(call).to_contain_text(recording, timeout=WAIT_MS))

        # the quality graphs (wcsgw/web/graphs.js) from the call object's stats
        for leg in ("Browser leg quality", "SIP leg quality"):
            await aio(expect(call.get_by_role("figure", name=leg)).to_be_visible(timeout=WAIT_MS))
        await aio(expect(call.get_by_role("figure", name="SIP leg quality")).to_contain_text(
            "Jitter"))

        # the ladder (wcsgw/web/ladder.js): the INVITE went out, the phone's 200 came back
        await aio(call.get_by_text("SIP ladder", exact=True).click())
        ladder = call.get_by_role("region", name=f"SIP ladder of {call_id}")
        invite = ladder.get_by_role("button", name=re.compile(r"^INVITE, Gateway to SIP server"))
        await aio(expect(invite.first).to_be_visible(timeout=WAIT_MS))
        await aio(expect(ladder.get_by_role("button", name=re.compile(r"^200, SIP server to Gateway"))
                         .first).to_be_visible(timeout=WAIT_MS))
        await aio(invite.first.click())  # opens the (redacted) message text
        await aio(expect(ladder.get_by_text(re.compile(r"INVITE sip:1002@"))).to_be_visible())
        await aio(expect(ladder).not_to_contain_text("pass1001"))

        # hang up from the page: the phone hears the BYE, the call leaves both pages
        mark = phone.mark()
        await aio(call.get_by_role("button", name="Hang up", exact=True).click())
        await phone.wait_event("CALL_CLOSED", since=mark)
        await aio(expect(call).to_have_count(0, timeout=WAIT_MS))
        await self.gateway.when_idle()

        # its record, found by callId on the page
        [record] = await self.record_of(call_id)
        self.assertEqual(record["recording"], recording)
        await aio(page.get_by_label("Call ID", exact=True).fill(call_id))
        await aio(page.get_by_role("button", name="Search", exact=True).click())
        records = page.get_by_role("table", name="Call records")
        await aio(expect(records.get_by_role("cell", name=call_id, exact=True)).to_be_visible(
            timeout=WAIT_MS))
        await aio(expect(records.get_by_role("row")).to_have_count(2))  # the header and it
        await aio(expect(records).to_contain_text("gateway"))  # ended by: the operator, here
        # Since/Until narrow the search (the browser's local time, sent as Unix ms)
        since = page.get_by_label("Since", exact=True)
        await aio(since.fill("2099-01-01T00:00:00"))
        await aio(page.get_by_role("button", name="Search", exact=True).click())
        await aio(expect(page.get_by_text("No records found.")).to_be_visible(timeout=WAIT_MS))
        await aio(since.fill(""))
        await aio(page.get_by_label("Until", exact=True).fill("2099-01-01T00:00:00"))
        await aio(page.get_by_role("button", name="Search", exact=True).click())
        await aio(expect(records.get_by_role("cell", name=call_id, exact=True)).to_be_visible(
            timeout=WAIT_MS))
        name, csv = await aio(download(page, page.get_by_role("button", name="Download CSV",
                                                                 exact=True)))
        self.assertEqual(name, "cdr.csv")
        lines = csv.decode().splitlines()
        self.assertIn("callId", lines[0].split(","))
        self.assertEqual(len(lines), 2, lines)
        self.assertIn(call_id, lines[1])

        # the recording the operator started, listed and downloaded through the page
        link = page.get_by_role("list", name="Recordings").get_by_role("link", name=recording)
        await aio(expect(link).to_be_visible(timeout=WAIT_MS))
        name, wav = await aio(download(page, link))
        self.assertEqual(name, recording)
        self.assertEqual(wav[:4], b"RIFF")
        self.assertEqual(int.from_bytes(wav[22:24], "little"), 2)  # both sides, one file
        self.assertGreater(len(wav), 8000)  # more than a header: audio
        self.assert_no_page_errors()
