"""The admin page's files as the site serves them (content types, the Phone UI's CSP and
headers) and the page itself, parsed: the accessible names of the brief, no inline script,
nothing from the network, no data in the page, the token kept in sessionStorage only."""

from __future__ import annotations

import re
from importlib import resources

from twisted.trial import unittest

from tests.support import inline
from tests.test_api_site import SiteTestCase, _Page

FIELDS = ["REST token", "Call ID", "Since", "Until"]
BUTTONS = ["Sign in", "Search", "Download CSV"]
HEADINGS = ["Sessions", "Calls", "Call records", "Recordings"]


def web_text(name: str) -> str:
    return resources.files("wcsgw.web").joinpath(name).read_text("utf-8")


class AdminFilesTests(SiteTestCase):
    @inline
    async def test_served_like_the_phone_ui(self) -> None:
        phone, _ = await self.get("/")
        for path, content_type, name in (
                ("/admin", "text/html; charset=utf-8", "admin.html"),
                ("/admin.js", "text/javascript; charset=utf-8", "admin.js"),
                ("/admin.css", "text/css; charset=utf-8", "admin.css")):
            with self.subTest(path=path):
                response, body = await self.get(path)
                self.assertEqual(response.code, 200)
                self.assertEqual(self.header(response, "content-type"), content_type)
                self.assertEqual(self.header(response, "x-content-type-options"), "nosniff")
                self.assertEqual(self.header(response, "referrer-policy"), "no-referrer")
                self.assertEqual(body.decode(), web_text(name))
        response, _ = await self.get("/admin")
        self.assertEqual(self.header(response, "content-security-policy"),
                         self.header(phone, "content-security-policy"))
        for path in ("/admin/", "/admin/x", "/admin.html", "/admin.js/x"):
            self.assertEqual((await self.get(path))[0].code, 404, path)


class AdminPageTests(unittest.TestCase):
    def setUp(self) -> None:
        self.html = web_text("admin.html")
        self.page = _Page()
        self.page.feed(self.html)
        self.script = web_text("admin.js")

    def test_fields_buttons_headings(self) -> None:
        for name in FIELDS:
            with self.subTest(field=name):
                self.assertEqual(self.page.label_for(name)["tag"], "input")
        self.assertEqual(self.page.label_for("REST token").get("type"), "password")
        for name in BUTTONS:
            with self.subTest(button=name):
                self.assertEqual(len(self.page.buttons_named(name)), 1)
        headings = re.findall(r"<h2 [^>]*>([^<]+)</h2>", self.html)
        self.assertEqual(headings, HEADINGS)
        # "Hang up" is one button per live call, made by the script
        self.assertIn('hangUp.textContent = "Hang up"', self.script)

    def test_no_inline_script_nothing_from_the_network(self) -> None:
        (script,) = [e for e in self.page.elements if e["tag"] == "script"]
        self.assertEqual((script.get("type"), script.get("src")), ("module", "admin.js"))
        self.assertNotRegex(self.html, r"<script(?![^>]*\bsrc=)")
        self.assertNotRegex(self.html, r"\son[a-z]+=")  # no inline handlers
        for element in self.page.elements:
            for attr in ("src", "href"):
                self.assertNotRegex(element.get(attr, ""), r"^(https?:)?//")
        self.assertNotRegex(self.script, r"import[^;]*['\"](https?:)?//")
        self.assertNotRegex(web_text("admin.css"), r"@import|url\(")

    def test_token_only_in_session_storage_and_text_only(self) -> None:
        code = re.sub(r"//[^\n]*", "", self.script)  # the comments say why, not what runs
        self.assertNotIn("localStorage", code)
        self.assertNotIn("document.cookie", code)
        self.assertNotRegex(code, r"innerHTML|outerHTML|insertAdjacentHTML|document\.write")
        self.assertIn("sessionStorage.setItem(TOKEN_KEY", self.script)
        # the page holds no data: every table and list starts empty
        for body in ("sessions", "cdr", "recordings", "calls"):
            self.assertRegex(self.html, rf'id="{body}"[^>]*></')
