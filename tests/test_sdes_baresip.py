"""SDES-SRTP toward the SIP side with real peers: baresip with ``mediaenc=srtp-mand`` (it takes
and offers RTP/SAVP only, RFC 4568) registered at Kamailio, the browser (Phone UI, fake 440 Hz
microphone, its own DTLS-SRTP leg) logged in as 1001 with ``srtp = "mandatory"``.

Both ways — the browser calls the phone, the phone calls the browser — audio is checked by
content (the phone's recording is 440 Hz, the browser hears 1 kHz), which only happens if the
gateway protects what it relays to the phone with the key it offered or answered and
unprotects the phone's SRTP with the phone's: baresip drops RTP that does not authenticate.
The SIP SDPs Kamailio relayed (baresip's ``-s`` trace) show RTP/SAVP with a=crypto both ways;
the gateway's log holds none of the keys.  A phone without SRTP is refused both ways (488);
``optional`` keys with a best-effort phone (``mediaenc=srtp``).
"""

from __future__ import annotations

import base64
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import attrs
from twisted.internet import reactor, task
from twisted.logger import globalLogPublisher
from twisted.trial import unittest

from tests.e2e import (
    TOKEN,
    Gateway,
    Phone,
    RestMixin,
    SipPhoneMixin,
    dominant_hz,
    gateway_config,
    write_tone_wav,
)
from tests.peers.kamailio import Kamailio
from tests.peers.testca import make_ca
from tests.support import assert_near, inline
from wcsgw.config import Account, RecordingSettings, RestSettings
from wcsgw.sdp.crypto import parse_crypto


class SdesBaresipTests(SipPhoneMixin, unittest.TestCase):
    async def start_srtp(self, answermode: str = "auto",
                              mediaenc: str | None = "srtp-mand",
                              policy: str = "mandatory") -> tuple[Phone, Any]:
        """Kamailio, baresip 1002 with ``mediaenc``, the browser logged in as 1001; its
        session's account then takes ``srtp = policy`` (what connect's ``sipSrtp`` sets;
        the Phone UI has no field for it)."""
        self.logged: list[str] = []
        globalLogPublisher.addObserver(self._observe)
        self.addCleanup(globalLogPublisher.removeObserver, self._observe)
        await self.start_pbx_and_phone(answermode=answermode, codecs="PCMU",
                                       ausrc_srate=8000, ausrc_channels=1,
                                       mediaenc=mediaenc)
        await self.start_browser()
        ui = await self.logged_in_ui()
        [session] = self.gateway.top.call_gateway.sessions.values()
        session.account = attrs.evolve(session.account, srtp=policy)
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

    async def audio_then_hangup(self, ui: Phone, phone: Any) -> None:
        """The call is up both ways: audio checked by content, the browser hangs up, the
        phone heard the browser, no key was logged, nothing is left."""
        await phone.wait_event("CALL_ESTABLISHED")
        await self.check_audio(ui, phone)
        mark = phone.mark()
        await ui.click("Hangup")
        await phone.wait_event("CALL_CLOSED", since=mark)
        self.assert_phone_heard_440(phone)
        self.assert_no_key_logged(self.crypto_in_trace(phone))
        await self.assert_clean()

    @inline
    async def test_the_browser_calls_a_phone_that_wants_srtp(self) -> None:
        ui, phone = await self.start_srtp()
        await ui.call("1002")
        await ui.wait_state("call-status", "established")
        await self.audio_then_hangup(ui, phone)

    @inline
    async def test_a_phone_that_wants_srtp_calls_the_browser(self) -> None:
        ui, phone = await self.start_srtp()
        await phone.command("dial", f"sip:1001@127.0.0.1:{self.kam.port}")
        await ui.ringing()
        await ui.click("Answer")
        await ui.wait_state("call-status", "established")
        await self.audio_then_hangup(ui, phone)

    @inline
    async def test_a_plain_phone_is_refused_both_ways(self) -> None:
        """The gateway's SRTP is mandatory, the phone has none: the phone refuses our
        RTP/SAVP offer (488, the browser's call fails showing it), and the gateway refuses
        the phone's RTP/AVP offer with 488: no call carries clear media."""
        ui, phone = await self.start_srtp(mediaenc=None)
        mark = phone.mark()
        await ui.call("1002")
        await ui.wait_state("call-status", "failed")
        self.assertIn("488", await ui.status_text("call-status"))
        await phone.wait_event("CALL_CLOSED", since=mark)
        mark = phone.mark()
        await phone.command("dial", f"sip:1001@127.0.0.1:{self.kam.port}")
        closed = await phone.wait_event("CALL_CLOSED", since=mark)
        self.assertIn("488", closed.get("param", ""))
        self.assertEqual(phone.recordings(), [])
        await self.assert_clean()

    @inline
    async def test_optional_meets_a_best_effort_phone_and_keys(self) -> None:
        """``optional`` offers RTP/AVP with a=crypto; baresip's ``mediaenc=srtp`` (best
        effort) answers with one line: the call is SRTP, audio both ways."""
        ui, phone = await self.start_srtp(mediaenc="srtp", policy="optional")
        await ui.call("1002")
        await ui.wait_state("call-status", "established")
        await phone.wait_event("CALL_ESTABLISHED")
        await self.check_audio(ui, phone)
        mark = phone.mark()
        await ui.click("Hangup")
        await phone.wait_event("CALL_CLOSED", since=mark)
        self.assert_phone_heard_440(phone)
        await self.assert_clean()


class SdesOverTlsTests(RestMixin, unittest.TestCase):
    """SRTP keyed over SIP-TLS, set from the config file: ``[[accounts]] name = "trunk"`` with
    ``transport = "tls"`` (Kamailio's tls module, a test CA made at run time) and
    ``srtp = "mandatory"``; a REST call on it plays a 440 Hz file to baresip
    (``mediaenc=srtp-mand``) and records the phone's 1 kHz, both checked by frequency.  Over
    TLS no "keys travel in clear" warning is logged, and no key is."""

    def startup_body(self, **extra: object) -> dict:
        return {"callee": "1002", "account": "trunk", **extra}

    @inline
    async def test_a_rest_call_on_a_tls_account_with_mandatory_srtp(self) -> None:
        logged: list[str] = []

        def observe(event: dict[str, Any]) -> None:
            logged.append(repr(event))
        globalLogPublisher.addObserver(observe)
        self.addCleanup(globalLogPublisher.removeObserver, observe)
        self.media = os.path.abspath(self.mktemp())
        self.recordings = os.path.abspath(self.mktemp())
        os.makedirs(self.media)
        os.makedirs(self.recordings)
        write_tone_wav(os.path.join(self.media, "tone440.wav"), 440.0, seconds=3.0)
        folder = Path(tempfile.mkdtemp(prefix="wcsgw-sdes-tls-"))
        ca = make_ca(folder / "ca")
        self.kam = Kamailio(tls=ca.issue(["127.0.0.1"], folder))
        self.addCleanup(self.kam.stop)
        await self.kam.start()
        trunk = Account(name="trunk", login="1001", password="pass1001", domain="127.0.0.1",
                        port=self.kam.tls_port, transport="tls", srtp="mandatory",
                        register=False)
        config = attrs.evolve(
            gateway_config(allowed_domains=("127.0.0.1",), t1=0.1, t2=0.8,
                           tls_ca=str(ca.cert_path)),
            accounts=(trunk,),
            rest=RestSettings(tokens=(TOKEN,), media_folder=self.media),
            recording=RecordingSettings(folder=self.recordings))
        self.gateway = Gateway(config)
        self.gateway.start()
        self.addCleanup(self.gateway.stop)
        phone = await self.start_phone(mediaenc="srtp-mand")
        found = await self.play_and_record(phone, "sdes-tls")
        invites = [line for line in self.kam.log_tail(400).splitlines()
                   if "REQ INVITE" in line and "fu=sip:1001@" in line]
        self.assertTrue(invites)
        self.assertTrue(all("(tls)" in line for line in invites), invites)
        recorded = os.path.join(self.recordings, found[0]["recording"])
        frequency, _level = dominant_hz(recorded)
        assert_near(self, frequency, 1000, 10)  # the phone's SRTP, unprotected and recorded
        lines = re.findall(r"a=crypto:([^\r\n]+)", phone.log_path.read_text(errors="replace"))
        keys = {base64.b64encode(parse_crypto(line.strip()).key).decode() for line in lines}
        self.assertGreaterEqual(len(keys), 2)  # ours (offered) and the phone's (answered)
        self.assertEqual([e for e in logged if any(k in e for k in keys)], [])
        self.assertEqual([e for e in logged if "travel in SDP over" in e], [])
