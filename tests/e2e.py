"""Helpers for end-to-end tests: a whole gateway in this process, the Phone UI in Chromium.

The gateway is the real service tree (``make_service``) on free ports; the browser drives the
real Phone UI by the accessible names of contract.md, as a person would.
"""

from __future__ import annotations

from typing import Any

import attrs
from twisted.internet import defer

from tests.peers.chromium import Chromium, aio, dominant_frequency, evaluate
from wcsgw.config import Config, HttpSettings, MediaSettings, PolicySettings, SipSettings
from wcsgw.service import make_service

REMOTE_STREAM = "document.getElementById('remote-audio').srcObject"


def gateway_config(allowed_domains: tuple[str, ...] = (), rtp_timeout: float = 10.0,
                   **sip: Any) -> Config:
    return Config(
        http=HttpSettings(listen="127.0.0.1", port=0),
        sip=attrs.evolve(SipSettings(listen="127.0.0.1", port=0), **sip),
        media=MediaSettings(listen="127.0.0.1", port_min=30000, port_max=30999,
                            rtp_timeout=rtp_timeout),
        policy=PolicySettings(allowed_domains=allowed_domains),
    )


class Gateway:
    """The gateway's whole service tree, started in this process."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.top = make_service(config)

    def start(self) -> None:
        self.top.startService()

    def stop(self) -> defer.Deferred:
        if not self.top.running:
            return defer.succeed(None)
        return defer.maybeDeferred(self.top.stopService)

    @property
    def url(self) -> str:
        host, port = self.top.getServiceNamed("http").address
        return f"http://{host}:{port}/"

    @property
    def sip(self) -> Any:
        return self.top.getServiceNamed("sip")

    @property
    def calls(self) -> dict[str, Any]:
        """Live calls by callId (the call registry)."""
        return self.top.call_gateway.calls

    def when_idle(self) -> defer.Deferred:
        """Every call over on both legs (the last BYE answered)."""
        return self.top.call_gateway.when_idle()

    @property
    def ports_in_use(self) -> int:
        return len(self.top.call_gateway.media_ports.in_use)

    @property
    def testlines(self) -> Any:
        return self.top.getServiceNamed("testlines")


class Phone:
    """The Phone UI in one page, used through its labels and buttons."""

    def __init__(self, page: Any) -> None:
        self.page = page

    @classmethod
    async def open(cls, browser: Chromium, url: str) -> "Phone":
        page = await browser.new_page()
        await aio(page.goto(url))
        # Every call status the page shows, in order (a person sees them go by).
        await evaluate(page, """() => {
            window.seenCallStates = [];
            const e = document.getElementById('call-status');
            new MutationObserver(() => {
                const s = e.dataset.state;
                if (s && window.seenCallStates[window.seenCallStates.length - 1] !== s)
                    window.seenCallStates.push(s);
            }).observe(e, {attributes: true, childList: true, subtree: true});
        }""")
        return cls(page)

    async def call_states(self) -> list[str]:
        return await evaluate(self.page, "window.seenCallStates")

    async def fill(self, label: str, value: str) -> None:
        await aio(self.page.get_by_label(label, exact=True).fill(value))

    async def click(self, name: str) -> None:
        await aio(self.page.get_by_role("button", name=name, exact=True).click())

    async def login(self, login: str = "", password: str = "", domain: str = "",
                    proxy: str = "", port: str = "", register: bool = False) -> None:
        for label, value in (("Login", login), ("Password", password), ("Domain", domain),
                             ("Outbound proxy", proxy), ("Port", port)):
            if value:
                await self.fill(label, value)
        box = self.page.get_by_label("Register", exact=True)
        if await aio(box.is_checked()) != register:
            await aio(box.click())
        await self.click("Log in")
        await self.wait_state("session-status", "registered" if register else "established")

    async def wait_state(self, element_id: str, *states: str, timeout: float = 15.0) -> str:
        """Wait until the status element shows one of ``states`` (lower case); returns it."""
        script = (
            "([id, states]) => { const e = document.getElementById(id);"
            " return e && states.includes(e.dataset.state) ? e.dataset.state : false; }"
        )
        handle = await aio(self.page.wait_for_function(
            script, arg=[element_id, list(states)], timeout=timeout * 1000))
        return await aio(handle.json_value())

    async def status_text(self, element_id: str) -> str:
        return await evaluate(self.page, f"document.getElementById('{element_id}').textContent")

    async def call(self, callee: str) -> None:
        await self.fill("Callee", callee)
        await self.click("Voice call")

    async def received_frequency(self, ms: int = 1500) -> dict[str, Any]:
        return await dominant_frequency(self.page, REMOTE_STREAM, ms)
