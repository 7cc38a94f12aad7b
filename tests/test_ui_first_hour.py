"""The Phone UI's first-hour stumbles, in headless Chromium: against the fake gateway, and
(wrong password) against Kamailio and the real gateway.

A refused login frees the form at once (no Log out needed), Answer/Decline look and are
inactive until a call rings, and a 403 to a call says what usually causes it.  The page is
driven by the contract's accessible names, as in tests/test_api_browser.py (whose harness
this reuses).
"""

from __future__ import annotations

from typing import Any

from twisted.trial import unittest

from tests.e2e import PeersMixin, Phone
from tests.peers.chromium import aio
from tests.support import inline
from tests.test_api_browser import OFFERER_JS, BrowserTestCase

#: the computed background of a button, to tell the grey of an inactive one from green/red
BACKGROUND_JS = "(name) => getComputedStyle(document.getElementById(name)).backgroundColor"
#: true once the named buttons run no CSS transition (their colours change by one)
SETTLED_JS = "[%s].every((n) => document.getElementById(n).getAnimations().length === 0)"


class FirstHourTests(BrowserTestCase):
    async def log_in(self) -> str:
        await aio(self.button("Log in").click())
        (_, session_id, _a, _r) = await self.gateway.events.wait_for(lambda e: e[0] == "connect")
        await aio(self.expect(self.page.locator("#session-status")).to_contain_text("ESTABLISHED"))
        return str(session_id)

    @inline
    async def test_wrong_password_then_corrected_logs_in_without_log_out(self) -> None:
        self.gateway.register_outcome = ("AUTHENTICATION_FAIL", 403, "Forbidden")
        await aio(self.field("Login").fill("1001"))
        await aio(self.field("Password").fill("wrong"))
        await aio(self.field("Domain").fill("pbx.example.com"))
        await aio(self.button("Log in").click())
        (_, first, _a, _r) = await self.gateway.events.wait_for(lambda e: e[0] == "connect")
        await aio(self.expect(self.page.get_by_role("alert")).to_contain_text("Registration failed"))
        # The refused session is closed as Log out closes it ...
        await self.gateway.events.wait_for(lambda e: e[:2] == ("disconnect", first))
        await self.gateway.events.wait_for(lambda e: e[:2] == ("close_session", first))
        # ... and the form is free: the message stays, Password is enabled and focused.
        await aio(self.expect(self.page.locator("#session-status")).to_contain_text("AUTHENTICATION_FAIL"))
        await aio(self.expect(self.button("Log in")).to_be_enabled())
        await aio(self.expect(self.button("Log out")).to_be_disabled())
        await aio(self.expect(self.field("Password")).to_be_focused())
        await aio(self.expect(self.page.get_by_role("alert")).to_contain_text("Registration failed"))

        self.gateway.register_outcome = ("REGISTERED", 200, "")
        await aio(self.field("Password").fill("pass1001"))
        await aio(self.button("Log in").click())
        (_, second, account, _r) = await self.gateway.events.wait_for(
            lambda e: e[0] == "connect" and e[1] != first)
        self.assertEqual((account.login, account.password), ("1001", "pass1001"))
        await aio(self.expect(self.page.locator("#session-status")).to_contain_text("REGISTERED"))
        await aio(self.expect(self.button("Voice call")).to_be_enabled())
        await aio(self.expect(self.page.get_by_role("alert")).to_be_hidden())

    @inline
    async def test_refused_connection_frees_the_form(self) -> None:
        await aio(self.field("Login").fill("1001"))
        await aio(self.field("Domain").fill("pbx.example.com"))
        await aio(self.field("Port").fill("99999"))  # refused by the gateway's checks
        await aio(self.button("Log in").click())
        await aio(self.expect(self.page.locator("#session-status")).to_contain_text("FAILED"))
        await aio(self.expect(self.field("Port")).to_be_enabled())
        await aio(self.field("Port").fill("5060"))
        await aio(self.button("Log in").click())
        await aio(self.expect(self.page.locator("#session-status")).to_contain_text("REGISTERED"))

    @inline
    async def test_answer_and_decline_inactive_until_a_call_rings(self) -> None:
        session_id = await self.log_in()
        for name in ("Answer", "Decline"):
            await aio(self.expect(self.button(name)).to_be_disabled())
        await self.until(SETTLED_JS % "'answer', 'decline', 'mute'")
        idle = {n: await self.js(BACKGROUND_JS, n) for n in ("answer", "decline", "mute")}
        # Inactive Answer/Decline are grey like any idle control, not faded green/red.
        self.assertEqual(idle["answer"], idle["mute"])
        self.assertEqual(idle["decline"], idle["mute"])

        offer = await self.js(OFFERER_JS)
        self.gateway.offer_call(session_id, "in-1", "1002", offer)
        await aio(self.expect(self.page.get_by_text("Incoming call from 1002")).to_be_visible())
        for name in ("Answer", "Decline"):
            await aio(self.expect(self.button(name)).to_be_enabled())
        # the colour change is a CSS transition: read the colours once it has run (read at
        # once, a loaded machine can still show the idle grey)
        await self.until(SETTLED_JS % "'answer', 'decline'")
        ringing = {n: await self.js(BACKGROUND_JS, n) for n in ("answer", "decline")}
        self.assertNotEqual(ringing["answer"], idle["answer"])
        self.assertNotEqual(ringing["decline"], idle["decline"])
        self.assertNotEqual(ringing["answer"], ringing["decline"])

        await aio(self.button("Decline").click())
        await self.gateway.events.wait_for(lambda e: e[0] == "hangup")
        for name in ("Answer", "Decline"):
            await aio(self.expect(self.button(name)).to_be_disabled())

    async def submit_without_script(self, path: str, script: str, field: str,
                                    button: str) -> None:
        """Open ``path`` with its module ``script`` refused (a proxy that blocked it, a
        network that dropped it), type a secret into ``field`` and press ``button``: the
        native form submission that would follow must not happen — it would carry the secret
        in a GET URL, into history and access logs."""
        page = await aio(self.context.new_page())
        await aio(page.route(f"**/{script}", lambda route: route.abort()))
        urls: list[str] = []
        page.on("request", lambda r: urls.append(r.url))
        await aio(page.goto(self.base + path))
        await aio(page.get_by_label(field, exact=True).fill("s3cret-value"))
        await aio(page.get_by_role("button", name=button, exact=True).click())
        await aio(page.get_by_label(field, exact=True).press("Enter"))
        # Prove the page is still the same document, then look at every request it made.
        self.assertEqual(await aio(page.evaluate("() => location.href")), self.base + path)
        self.assertEqual([u for u in urls if "s3cret" in u], [])
        self.assertTrue(any(u.endswith(script) for u in urls), urls)
        await aio(page.close())

    @inline
    async def test_the_login_form_never_submits_natively(self) -> None:
        await self.submit_without_script("", "phone.js", "Password", "Log in")

    @inline
    async def test_the_admin_sign_in_never_submits_natively(self) -> None:
        await self.submit_without_script("admin", "admin.js", "REST token", "Sign in")

    async def call_refused(self, info: str) -> Any:
        session_id = await self.log_in()
        await aio(self.field("Callee").fill("1002"))
        await aio(self.button("Voice call").click())
        (_, _s, call) = await self.gateway.events.wait_for(lambda e: e[0] == "call")
        self.gateway.listeners[session_id].call_status(
            self.gateway.call_dict(call["call_id"], "FAILED", sipStatus=403, info=info))
        await aio(self.expect(self.page.locator("#call-status")).to_contain_text("FAILED"))
        return self.page.get_by_role("alert")

    @inline
    async def test_403_relaying_forbidden_explains_the_likely_cause(self) -> None:
        alert = await self.call_refused("403 Relaying forbidden")
        await aio(self.expect(alert).to_have_text(
            "The PBX refused the call (403 Relaying forbidden): it may not recognise the domain"
            " without its port — see docs/first-call.md troubleshooting"))

    @inline
    async def test_any_403_to_a_call_gets_the_hint(self) -> None:
        alert = await self.call_refused("403 Forbidden")
        await aio(self.expect(alert).to_contain_text("The PBX refused the call (403 Forbidden)"))


class WrongPasswordAtKamailioTests(PeersMixin, unittest.TestCase):
    """Kamailio refuses the REGISTER's credentials for real (AUTHENTICATION_FAIL)."""

    timeout = 120

    @inline
    async def test_wrong_password_fixed_in_the_same_form(self) -> None:
        await self.start_pbx()
        await self.start_browser()
        ui = await Phone.open(self.browser, self.gateway.url)
        for label, value in (("Login", "1001"), ("Password", "wrong"), ("Domain", "127.0.0.1"),
                             ("Outbound proxy", "127.0.0.1"), ("Port", str(self.kam.port))):
            await ui.fill(label, value)
        await ui.click("Log in")
        await ui.wait_state("session-status", "authentication_fail")
        await aio(ui.page.get_by_role("alert").filter(has_text="Registration failed").wait_for())
        self.assertTrue(await aio(ui.page.get_by_role("button", name="Log in", exact=True).is_enabled()))
        self.assertTrue(await aio(ui.page.get_by_label("Password", exact=True).is_editable()))
        self.assertEqual(await self.kam.bindings("1001"), [])

        await ui.fill("Password", "pass1001")
        await ui.click("Log in")
        await ui.wait_state("session-status", "registered")
        self.assertEqual(len(await self.kam.bindings("1001")), 1)
        await ui.click("Log out")
        await ui.wait_state("session-status", "disconnected")
