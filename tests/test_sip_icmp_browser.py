"""A newcomer types a wrong SIP port: the Phone UI says within seconds which host:port did not
answer, instead of showing ``ESTABLISHED`` for 32 s and then "timeout".

The real gateway (RFC 3261 default timers: a timeout would take 32 s) and the Phone UI in
Chromium; the SIP port is a free UDP port on 127.0.0.1 where nothing listens, so the kernel
answers with ICMP port unreachable.  The waits give up after 10 s: a failure within them,
naming the port, is the ICMP error's.
"""

from __future__ import annotations

from twisted.trial import unittest

from tests.e2e import Phone, gateway_and_phone, gateway_config
from tests.peers.chromium import aio
from tests.peers.ports import free_port
from tests.support import inline


class WrongSipPortTests(unittest.TestCase):
    timeout = 120

    async def start(self) -> Phone:
        self.gateway, phone = await gateway_and_phone(
            self, gateway_config(allowed_domains=("127.0.0.1",)))
        return phone

    async def log_in(self, phone: Phone, port: int, register: bool) -> None:
        """The login form filled as a person would, with the wrong port."""
        for label, value in (("Login", "1001"), ("Password", "pass1001"),
                             ("Domain", "127.0.0.1"), ("Port", str(port))):
            await phone.fill(label, value)
        box = phone.page.get_by_label("Register", exact=True)
        if await aio(box.is_checked()) != register:
            await aio(box.click())
        await phone.click("Log in")

    @inline
    async def test_register_to_a_wrong_port_fails_within_seconds_naming_it(self) -> None:
        phone = await self.start()
        port = free_port("udp+tcp")
        await self.log_in(phone, port, register=True)
        await phone.wait_state("session-status", "failed", timeout=10.0)
        text = await phone.status_text("session-status")
        self.assertIn(f"No SIP server answers at 127.0.0.1:{port}", text)
        self.assertIn("ICMP port unreachable", text)

    @inline
    async def test_call_to_a_wrong_port_fails_within_seconds_naming_it(self) -> None:
        phone = await self.start()
        port = free_port("udp+tcp")
        await self.log_in(phone, port, register=False)
        await phone.wait_state("session-status", "established")
        await phone.call("1002")
        await phone.wait_state("call-status", "failed", timeout=10.0)
        text = await phone.status_text("call-status")
        self.assertIn(f"No SIP server answers at 127.0.0.1:{port}", text)
        await self.gateway.when_idle()
