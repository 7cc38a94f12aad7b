"""The static side of build_site over real HTTP: content types, no listings, no path escapes,
extra children (health), and the Phone UI page carrying the contract's accessible names."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from importlib import resources

from twisted.trial import unittest
from twisted.web.resource import Resource

from tests.support import inline
from tests.test_api_fakes import FakeGateway, http_get, listen_site

#: contract.md, "Phone UI".
CONTRACT_FIELDS = ["Login", "Authentication name", "Password", "Domain", "Outbound proxy", "Port",
                   "Callee", "Transfer to"]
CONTRACT_BUTTONS = ["Log in", "Log out", "Voice call", "Video call", "Hangup", "Answer", "Decline",
                    "Hold", "Unhold", "Transfer", "Mute", *"0123456789", "*", "#"]


class _Page(HTMLParser):
    """Collects, per element, the attributes and the accessible-name sources we use: label
    text (for=), aria-label, and a button's own text."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[dict] = []
        self._open: list[dict] = []  # label/button elements collecting text

    def handle_starttag(self, tag: str, attrs: list) -> None:
        element = {"tag": tag, **{k: v or "" for k, v in attrs}, "text": ""}
        self.elements.append(element)
        if tag in ("label", "button", "span", "strong", "small"):
            self._open.append(element)

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self._open) - 1, -1, -1):
            if self._open[i]["tag"] == tag:
                del self._open[i]
                break

    def handle_data(self, data: str) -> None:
        for element in self._open:
            if element["tag"] in ("label", "button"):
                element["text"] += data

    def by_id(self, element_id: str) -> dict:
        (element,) = [e for e in self.elements if e.get("id") == element_id]
        return element

    def label_for(self, name: str) -> dict:
        """The control a <label> with exactly this text names (for= or wrapping)."""
        labels = [e for e in self.elements if e["tag"] == "label" and " ".join(e["text"].split()) == name]
        if len(labels) != 1:
            raise AssertionError(f"{len(labels)} labels named {name!r}")
        label = labels[0]
        if label.get("for"):
            return self.by_id(label["for"])
        after = self.elements[self.elements.index(label) + 1:]
        return next(e for e in after if e["tag"] == "input")

    def buttons_named(self, name: str) -> list[dict]:
        return [e for e in self.elements if e["tag"] == "button"
                and (e.get("aria-label") or " ".join(e["text"].split())) == name]


class SiteTestCase(unittest.TestCase):
    def setUp(self) -> None:
        self.port = listen_site(self, FakeGateway(), children={"health": _Health()})
        self.base = f"http://127.0.0.1:{self.port}"

    async def get(self, path: str, method: bytes = b"GET") -> tuple:
        return await http_get(self, self.base + path, method)

    def header(self, response, name: str) -> str:
        values = response.headers.getRawHeaders(name.encode())
        return values[0].decode() if values else ""


class _Health(Resource):
    isLeaf = True

    def render_GET(self, request):  # type: ignore[no-untyped-def]
        request.setHeader(b"content-type", b"application/json")
        return b'{"status": "ok"}'


class StaticFilesTests(SiteTestCase):
    @inline
    async def test_content_types(self) -> None:
        expected = {
            "/": "text/html; charset=utf-8",
            "/index.html": "text/html; charset=utf-8",
            "/phone.js": "text/javascript; charset=utf-8",
            "/phone.css": "text/css; charset=utf-8",
            "/sdk/wcsgw.js": "text/javascript; charset=utf-8",
        }
        for path, content_type in expected.items():
            with self.subTest(path=path):
                response, body = await self.get(path)
                self.assertEqual(response.code, 200)
                self.assertEqual(self.header(response, "content-type"), content_type)
                self.assertEqual(self.header(response, "x-content-type-options"), "nosniff")
                self.assertTrue(body)

    @inline
    async def test_bodies_are_the_packaged_files(self) -> None:
        web = resources.files("wcsgw.web")
        for path, name in (("/", "index.html"), ("/sdk/wcsgw.js", "wcsgw.js"),
                           ("/phone.js", "phone.js"), ("/phone.css", "phone.css")):
            with self.subTest(path=path):
                _response, body = await self.get(path)
                self.assertEqual(body, web.joinpath(name).read_bytes())

    @inline
    async def test_sdk_is_an_es_module_with_the_contract_exports(self) -> None:
        _response, body = await self.get("/sdk/wcsgw.js")
        text = body.decode()
        for export in ("export function createSession", "export const SESSION_STATUS",
                       "export const CALL_STATUS"):
            self.assertIn(export, text)

    @inline
    async def test_head(self) -> None:
        response, body = await self.get("/sdk/wcsgw.js", b"HEAD")
        self.assertEqual(response.code, 200)
        self.assertEqual(self.header(response, "content-type"), "text/javascript; charset=utf-8")
        self.assertEqual(body, b"")

    @inline
    async def test_page_has_a_content_security_policy(self) -> None:
        response, _body = await self.get("/")
        csp = self.header(response, "content-security-policy")
        self.assertIn("default-src 'self'", csp)
        self.assertIn("script-src 'self'", csp)
        self.assertNotIn("unsafe-inline", csp)

    @inline
    async def test_no_listings_and_no_escapes(self) -> None:
        for path in ("/sdk", "/sdk/", "/sdk/../wcsgw/service.py", "/sdk/%2e%2e/phone.js",
                     "/phone.js/", "/phone.js/x", "/web/", "/wcsgw/web/index.html",
                     "/__init__.py", "/sdk/__init__.py", "/..%2fconfig.py", "/nope",
                     "/sdk/wcsgw.js/../../etc/passwd"):
            with self.subTest(path=path):
                response, body = await self.get(path)
                self.assertEqual(response.code, 404, path)
                self.assertNotIn(b"Index of", body)
                self.assertNotIn(b"__init__", body)

    @inline
    async def test_extra_children(self) -> None:
        response, body = await self.get("/health")
        self.assertEqual(response.code, 200)
        self.assertEqual(body, b'{"status": "ok"}')


class PhoneUiPageTests(unittest.TestCase):
    """The page itself, parsed: every contract name, statuses, nothing from the network."""

    def setUp(self) -> None:
        self.html = resources.files("wcsgw.web").joinpath("index.html").read_text("utf-8")
        self.page = _Page()
        self.page.feed(self.html)

    def test_fields_are_labelled(self) -> None:
        for name in CONTRACT_FIELDS:
            with self.subTest(field=name):
                control = self.page.label_for(name)
                self.assertEqual(control["tag"], "input")
                self.assertNotIn(control.get("type"), ("hidden", "checkbox"))

    def test_register_checkbox(self) -> None:
        control = self.page.label_for("Register")
        self.assertEqual(control.get("type"), "checkbox")

    def test_buttons_are_named_once(self) -> None:
        for name in CONTRACT_BUTTONS:
            with self.subTest(button=name):
                self.assertEqual(len(self.page.buttons_named(name)), 1)

    def test_status_regions(self) -> None:
        statuses = [e for e in self.page.elements if e.get("role") == "status"]
        self.assertEqual(sorted(e["id"] for e in statuses), ["call-status", "session-status"])
        for element in statuses:
            self.assertEqual(element.get("aria-live"), "polite")

    def test_later_work_controls_start_disabled(self) -> None:
        for name in ("Hold", "Unhold", "Transfer", "Answer", "Decline", "Video call", "Hangup",
                     "Log out", "Mute"):
            with self.subTest(button=name):
                (button,) = self.page.buttons_named(name)
                self.assertIn("disabled", button)

    def test_domain_placeholder_explains_the_test_lines(self) -> None:
        self.assertEqual(self.page.label_for("Domain")["placeholder"],
                         "empty: built-in test lines (echo, tone)")

    def test_nothing_loads_from_the_network(self) -> None:
        urls = [e.get(attr) for e in self.page.elements for attr in ("src", "href") if e.get(attr)]
        self.assertTrue(urls)
        for url in urls:
            with self.subTest(url=url):
                self.assertNotRegex(url, r"^(https?:)?//")
        css = resources.files("wcsgw.web").joinpath("phone.css").read_text("utf-8")
        self.assertIsNone(re.search(r"@import|url\(\s*['\"]?(https?:)?//", css))
        for name in ("phone.js", "wcsgw.js"):
            script = resources.files("wcsgw.web").joinpath(name).read_text("utf-8")
            self.assertNotRegex(script, r"import[^;]*from\s*['\"](https?:)?//")

    def test_module_script_and_relative_sdk_import(self) -> None:
        (script,) = [e for e in self.page.elements if e["tag"] == "script"]
        self.assertEqual((script.get("type"), script.get("src")), ("module", "phone.js"))
        phone = resources.files("wcsgw.web").joinpath("phone.js").read_text("utf-8")
        self.assertIn('from "./sdk/wcsgw.js"', phone)
