"""The two-hop call of the seed, with real peers: a number typed in the Phone UI (headless
Chromium) reaches a mobile phone through the gateway, the operator's SIP server and a PSTN/GSM
gateway.

    browser ── wcsgw ── operator's SIP server ── "GSM gateway" ── mobile phone
    Chromium            Kamailio (1001 registers; numbers      baresip, attached to the
    440 Hz mic          go to its trunk)   Kamailio (E.164     GSM gateway as its MSISDN,
                                           only, rewritten     plays 1 kHz, auto-answers
                                           to the MSISDN) +
                                           rtpengine (media)

The operator's server (tests/peers/kamailio.cfg with ``GSM_GATEWAY``) relays phone numbers to
the GSM gateway hop (tests/peers/gsm-gateway.cfg, :class:`~tests.peers.gsmgateway.GsmGateway`),
which takes only E.164 numbers from its one trunk, rewrites the number to the subscriber's
MSISDN and forwards the call to the phone's registered contact.  Both hops stay in the
dialog, so the ACK and both BYEs cross them.  The GSM gateway also anchors the media, as a
real one terminates it: its rtpengine (tests/peers/rtpengine.py) is named in the SDP both ways,
so the audio and the RFC 4733 digits cross that hop too (the operator's server, like most,
leaves media alone).

The browser dials the number as a person in the UK writes it, in national format with a
space (``07700 900123``); the gateway's dial plan (``[dialplan] country_code = "44"``, a
``[[routes]]`` entry for UK mobiles adding ``;user=phone``, docs/dial-plan.md) sends
``sip:+447700900123@...;user=phone``, and the GSM hop, which refuses what is not E.164, takes
it.

Checked by content: the phone's recording is dominated by the browser's 440 Hz, the browser's
received stream by the phone's 1 kHz; RFC 4733 digits both ways (dial pad -> the phone's
CALL_DTMF_START; the phone's ``sndcode`` -> the page's "Received DTMF"); the call ended from
the browser, then from the phone; each hop's log shows the request it routed; the gateway
holds no call, media port or SIP timer afterwards.
"""

from __future__ import annotations

import os
import re

import attrs
from twisted.trial import unittest

from tests.e2e import Gateway, Phone, SipPhoneMixin, gateway_config, phone_digits
from tests.peers.baresip import Baresip, write_tone
from tests.peers.chromium import aio
from tests.peers.gsmgateway import GsmGateway
from tests.peers.kamailio import Kamailio
from tests.peers.ports import free_port
from tests.peers.rtpengine import RtpEngine
from tests.support import inline
from wcsgw.config.dialplan import DialPlanSettings, RouteSettings

#: what the person types in the Phone UI's Callee field: a UK mobile in national format
DIALLED = "07700 900123"
#: what the gateway's dial plan makes of it, and the GSM gateway must be sent: E.164
E164 = "+447700900123"
#: the gateway's dial plan: UK national numbers to E.164, UK mobiles marked as phone numbers
DIAL_PLAN = {"dialplan": DialPlanSettings(country_code="44"),
             "routes": (RouteSettings(prefix="+447", user_phone=True),)}
#: the subscriber the GSM gateway rewrites it to (the phone registers as this)
MSISDN = "447700900123"
MOBILE_PASSWORD = "mobile-secret"


def contact_uri(phone: Baresip) -> str:
    """A pattern for the phone's registered contact: baresip adds its own suffix to the user
    (``447700900123-0x55...``)."""
    return rf"sip:{MSISDN}(?:-[^@;>\s]*)?@127\.0\.0\.1:{phone.sip_port}\b"


class TwoHopCallTests(SipPhoneMixin, unittest.TestCase):
    """Browser 1001 at the operator's Kamailio calls the mobile through the GSM gateway."""

    timeout = 90

    async def two_hops(self) -> tuple[Phone, Baresip]:
        """Both Kamailios, the gateway, the mobile attached to the GSM gateway, and the
        Phone UI logged in and registered as 1001 at the operator's server.  Clean-up stops
        them in reverse: browser, phone, gateway, GSM gateway, operator."""
        self.relay = RtpEngine()
        self.addCleanup(self.relay.stop)
        await self.relay.start()
        operator_port = free_port("udp+tcp")
        self.gsm = GsmGateway(MSISDN, MOBILE_PASSWORD, operator_port=operator_port,
                              media_relay=self.relay.ng_socket)
        self.kam = Kamailio(port=operator_port, defines=self.gsm.trunk_define())
        self.addCleanup(self.kam.stop)
        await self.kam.start()
        self.addCleanup(self.gsm.stop)
        await self.gsm.start()
        self.gateway = Gateway(attrs.evolve(
            gateway_config(allowed_domains=("127.0.0.1",), t1=0.1, t2=0.8), **DIAL_PLAN))
        self.gateway.start()
        self.addCleanup(self.gateway.stop)
        tone = write_tone(os.path.abspath(self.mktemp()) + ".wav", frequency=1000.0, rate=8000,
                          seconds=30.0)
        self.phone = Baresip(MSISDN, MOBILE_PASSWORD, registrar_port=self.gsm.port,
                             outbound=True, tone=tone, codecs="PCMU", ausrc_srate=8000,
                             ausrc_channels=1)
        self.addCleanup(self.phone.stop)
        await self.phone.start()
        await self.phone.registered()
        await self.start_browser()
        return await self.logged_in_ui(), self.phone

    async def established(self) -> tuple[Phone, Baresip]:
        """The call placed from the dial pad's Callee field, up on both ends, audio checked
        both ways by frequency (the phone's recording is read at the end)."""
        ui, phone = await self.two_hops()
        await ui.call(DIALLED)
        await self.talk_and_check_audio(ui, phone, "relay")
        self.assert_routed_over_both_hops(phone)
        return ui, phone

    def assert_routed_over_both_hops(self, phone: Baresip) -> None:
        """The operator sent the number to its trunk, the GSM gateway got it in E.164 and
        rewrote it to the MSISDN, and the INVITE the phone got came through both, in order;
        the media goes through the GSM gateway's relay both ways: the phone was offered the
        relay's address, and the gateway sends to (and hears from) the relay."""
        # the dial plan's work: E.164, and the route's user=phone
        self.assertIn(f"REQ INVITE sip:{E164}@127.0.0.1;user=phone from 127.0.0.1:"
                      f"{self.gateway.sip.port} ", self.kam.log_text())
        self.assertIn(f"TO GSM sip:{E164}@127.0.0.1;user=phone", self.kam.log_text())
        self.assertRegex(self.gsm.log_text(),
                         rf"GSM CALL {re.escape(E164)} -> {contact_uri(phone)}")
        invite = self.received_invite(phone)
        self.assertRegex(invite, rf"(?m)^To: <sip:{re.escape(E164)}@127\.0\.0\.1[;>]")
        vias = re.findall(r"(?m)^Via: SIP/2\.0/UDP 127\.0\.0\.1:(\d+)", invite)
        self.assertEqual([int(p) for p in vias[:2]], [self.gsm.port, self.kam.port], invite)
        self.assertEqual(len(vias), 3, invite)  # ... and the gateway's own, below them
        [offered_port] = re.findall(r"(?m)^m=audio (\d+) ", invite)
        self.assertIn(int(offered_port), self.relay.media_ports, invite)
        [call] = self.gateway.calls.values()
        latch = call.rtp.rtp_latch
        self.assertTrue(latch.latched)
        self.assertEqual(latch.target[0], "127.0.0.1")
        self.assertIn(latch.target[1], self.relay.media_ports)
        self.call_id = re.findall(r"(?mi)^Call-ID: (\S+)", invite)[0]
        for command in ("offer", "answer"):
            self.assertTrue(self.relay_did(command), self.relay.log_tail())

    def received_invite(self, phone: Baresip) -> str:
        """The INVITE the phone received, headers and SDP, from its SIP trace (``baresip -s``
        prints each message whole, then resets its colour: ESC [ ; m)."""
        log = phone.log_text()
        match = re.search(rf"(?ms)^INVITE {contact_uri(phone)}\S* SIP/2\.0\r?\n(.*?)\x1b\[",
                          log)
        self.assertIsNotNone(match, f"no INVITE to the phone in its trace:\n{phone.log_tail()}")
        assert match is not None
        return match.group(0)

    def relay_did(self, command: str) -> bool:
        """The relay was sent ``command`` (offer, answer, delete) for this call."""
        return f"[{self.call_id}]: [control] Received command '{command}'" in self.relay.log_text()

    def bye_seen(self, kamailio: Kamailio, source_port: int) -> bool:
        return re.search(rf"REQ BYE \S+ from 127\.0\.0\.1:{source_port} ",
                         kamailio.log_text()) is not None

    @inline
    async def test_audio_dtmf_both_ways_hangup_from_browser(self) -> None:
        ui, phone = await self.established()
        mark = phone.mark()
        for key in ("1", "9", "#"):
            await ui.click(key)
        self.assertEqual(await phone_digits(phone, mark, 3), ["1", "9", "#"])
        await phone.command("sndcode", "5*")
        await aio(ui.page.wait_for_function(
            "() => document.body.textContent.includes('Received DTMF: 5*')", timeout=10000))
        mark = phone.mark()
        await ui.click("Hangup")
        await ui.wait_state("call-status", "finish")
        await phone.wait_event("CALL_CLOSED", since=mark)
        self.assert_phone_heard_440(phone)
        await self.assert_clean()
        # The gateway's BYE crossed the operator's server, then the GSM gateway.
        gateway_sip_port = self.gateway.sip.port
        self.assertTrue(self.bye_seen(self.kam, gateway_sip_port), self.kam.log_tail())
        self.assertTrue(self.bye_seen(self.gsm, self.kam.port), self.gsm.log_tail())
        self.assertTrue(self.relay_did("delete"), self.relay.log_tail())  # its ports released

    @inline
    async def test_hangup_from_the_phone(self) -> None:
        ui, phone = await self.established()
        await phone.command("hangup")
        await ui.wait_state("call-status", "finish")
        self.assertIn("Normal call clearing", await ui.status_text("call-status"))
        self.assert_phone_heard_440(phone)
        await self.assert_clean()
        # The phone's BYE crossed the GSM gateway, then the operator's server.
        self.assertTrue(self.bye_seen(self.gsm, phone.sip_port), self.gsm.log_tail())
        self.assertTrue(self.bye_seen(self.kam, self.gsm.port), self.kam.log_tail())
        self.assertTrue(self.relay_did("delete"), self.relay.log_tail())
