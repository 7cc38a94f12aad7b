"""SDES-SRTP toward the SIP side with real peers: baresip with ``mediaenc=srtp-mand`` (it takes
and offers RTP/SAVP only, RFC 4568) registered at Kamailio, the browser (Phone UI, fake 440 Hz
microphone, its own DTLS-SRTP leg) logged in as 1001 with ``srtp = "mandatory"``.

Both ways — the browser calls the phone, the phone calls the browser — audio is checked by
content (the phone's recording is 440 Hz, the browser hears 1 kHz), which only happens if the
gateway protects what it relays to the phone with the key it offered or answered and
unprotects the phone's SRTP with the phone's: baresip drops RTP that does not authenticate.
The SIP SDPs Kamailio relayed (baresip's ``-s`` trace) show RTP/SAVP with a=crypto both ways;
the gateway's log holds none of the keys.
"""

from __future__ import annotations

import base64
import re
from typing import Any

import attrs
from twisted.internet import reactor, task
from twisted.logger import globalLogPublisher
from twisted.trial import unittest

from tests.e2e import Phone, SipPhoneMixin, dominant_hz
from tests.support import assert_near, inline
from wcsgw.sdp.crypto import parse_crypto


class SdesBaresipTests(SipPhoneMixin, unittest.TestCase):
    async def start_mandatory(self, answermode: str = "auto") -> tuple[Phone, Any]:
        """Kamailio, baresip 1002 with mandatory SRTP, the browser logged in as 1001; its
        session's account then takes ``srtp = "mandatory"`` (what connect's ``sipSrtp``
        sets; the Phone UI has no field for it)."""
        self.logged: list[str] = []
        globalLogPublisher.addObserver(self._observe)
        self.addCleanup(globalLogPublisher.removeObserver, self._observe)
        await self.start_pbx_and_phone(answermode=answermode, codecs="PCMU",
                                       ausrc_srate=8000, ausrc_channels=1,
                                       mediaenc="srtp-mand")
        await self.start_browser()
        ui = await self.logged_in_ui()
        [session] = self.gateway.top.call_gateway.sessions.values()
        session.account = attrs.evolve(session.account, srtp="mandatory")
        return ui, self.phone

    def _observe(self, event: dict[str, Any]) -> None:
        self.logged.append(repr(event))

    def crypto_in_trace(self, phone: Any) -> list[str]:
        """The a=crypto values of every SDP in the phone's SIP trace (RTP/SAVP m-lines)."""
        text = phone.log_path.read_text(errors="replace")
        self.assertIn("RTP/SAVP", text)
        return re.findall(r"a=crypto:([^\r\n]+)", text)

    def assert_no_key_logged(self, lines: list[str]) -> None:
        keys = {base64.b64encode(parse_crypto(line.strip()).key).decode()
                for line in lines if "inline:" in line}
        self.assertTrue(keys)
        self.assertTrue(self.logged)
        for key in keys:
            self.assertEqual([e for e in self.logged if key in e], [])

    async def check_audio(self, ui: Phone, phone: Any) -> None:
        [call] = self.gateway.calls.values()
        self.assertEqual(call.describe()["media"]["mode"], "relay")
        self.assertTrue(call.media.sip.keyed)
        peak = await ui.received_frequency()
        assert_near(self, peak["frequency"], 1000, 15)
        self.assertGreater(peak["level"], -60)
        await task.deferLater(reactor, 1.5, lambda: None)  # the phone records the browser
        self.assertEqual(call.media.sip.rejected, 0)

    def assert_phone_heard_440(self, phone: Any) -> None:
        [recording] = phone.recordings()
        frequency, level = dominant_hz(recording)
        assert_near(self, frequency, 440, 10)
        self.assertGreater(level, 300)

    @inline
    async def test_the_browser_calls_a_phone_that_wants_srtp(self) -> None:
        ui, phone = await self.start_mandatory()
        await ui.call("1002")
        await ui.wait_state("call-status", "established")
        await phone.wait_event("CALL_ESTABLISHED")
        await self.check_audio(ui, phone)
        mark = phone.mark()
        await ui.click("Hangup")
        await phone.wait_event("CALL_CLOSED", since=mark)
        self.assert_phone_heard_440(phone)
        self.assert_no_key_logged(self.crypto_in_trace(phone))
        await self.assert_clean()

    @inline
    async def test_a_phone_that_wants_srtp_calls_the_browser(self) -> None:
        ui, phone = await self.start_mandatory()
        await phone.command("dial", f"sip:1001@127.0.0.1:{self.kam.port}")
        await ui.ringing()
        await ui.click("Answer")
        await ui.wait_state("call-status", "established")
        await phone.wait_event("CALL_ESTABLISHED")
        await self.check_audio(ui, phone)
        mark = phone.mark()
        await ui.click("Hangup")
        await phone.wait_event("CALL_CLOSED", since=mark)
        self.assert_phone_heard_440(phone)
        self.assert_no_key_logged(self.crypto_in_trace(phone))
        await self.assert_clean()
