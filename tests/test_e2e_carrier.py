"""Issue 14 "done when", end to end: the browser (Phone UI, fake 440 Hz microphone) calls a
baresip phone (``mediaenc=srtp-mand``, 1 kHz) over SIP-TLS with SDES-SRTP (mandatory) through
a Kamailio the gateway finds by DNS (RFC 3263), whose first SRV target is dead.

- DNS: a server the suite starts (tests/peers/dnsserver.py) holds ``_sips._tcp.carrier.test``:
  priority 10 -> a TCP port nobody listens on, priority 20 -> Kamailio's TLS port; both A
  records are 127.0.0.1.  The gateway has ``[sip] dns_location = true`` and ``dns_servers``
  set to it, and ``tls_ca`` = the test CA (tests/peers/testca.py), which issued Kamailio's
  certificate for ``carrier.test`` only: the name the address was located from is checked.
- The account: ``[[accounts]] name = "carrier"``, login 1001 at Kamailio's domain with
  ``outbound_proxy = "carrier.test"`` (Kamailio's config is ours only for its own domain,
  127.0.0.1), ``transport = "tls"``, ``srtp = "mandatory"``; the service registers it (over
  TLS, Kamailio's binding says so), and the browser's session is bound to it as
  ``connect_named`` binds one (the Phone UI logs in, then its session takes the account).
- Checked: audio both ways by frequency, the INVITE reached Kamailio over TLS (its log), the
  dead target was tried first (failover count, located order, the SRV asked), the SIP SDPs
  are RTP/SAVP with a=crypto (baresip's SIP trace), and a clean hang-up.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import attrs
from twisted.internet import reactor, task
from twisted.trial import unittest

from tests.e2e import Gateway, Phone, SipPhoneMixin, gateway_config
from tests.peers.baresip import Baresip, write_tone
from tests.peers.dnsserver import DnsServer
from tests.peers.kamailio import Kamailio
from tests.peers.ports import free_port
from tests.peers.testca import make_ca
from tests.support import EventLog, assert_near, inline
from wcsgw.config import Account
from wcsgw.sip.dnslocator import LocatingSipService
from wcsgw.sip.registration import Registered, RegistrationFailed
from wcsgw.sip.target import Target

CARRIER = "carrier.test"


def zone(tls_port: int, dead_port: int) -> list[tuple]:
    """carrier.test over TLS: SRV priority 10 is dead, priority 20 is Kamailio's TLS port."""
    return [
        (f"_sips._tcp.{CARRIER}", "SRV", [10, 0, dead_port, f"dead.{CARRIER}"]),
        (f"_sips._tcp.{CARRIER}", "SRV", [20, 0, tls_port, f"kam.{CARRIER}"]),
        (f"dead.{CARRIER}", "A", "127.0.0.1"),
        (f"kam.{CARRIER}", "A", "127.0.0.1"),
    ]


class CarrierCallTests(SipPhoneMixin, unittest.TestCase):
    timeout = 240

    async def start_carrier(self) -> Phone:
        folder = Path(tempfile.mkdtemp(prefix="wcsgw-carrier-"))
        ca = make_ca(folder / "ca")
        self.kam = Kamailio(tls=ca.issue([CARRIER], folder))
        self.addCleanup(self.kam.stop)
        await self.kam.start()
        self.dead_port = free_port("tcp")  # nothing listens: a connect is refused
        self.dns = DnsServer(zone(self.kam.tls_port, self.dead_port))
        self.addCleanup(self.dns.stop)
        await self.dns.start()
        carrier = Account(name="carrier", login="1001", password="pass1001",
                          domain="127.0.0.1", outbound_proxy=CARRIER, port=5061,
                          transport="tls", srtp="mandatory", expires=300)
        config = attrs.evolve(
            gateway_config(allowed_domains=("127.0.0.1",), t1=0.1, t2=0.8,
                           tls_ca=str(ca.cert_path), dns_location=True,
                           dns_servers=(f"127.0.0.1:{self.dns.port}",)),
            accounts=(carrier,))
        self.gateway = Gateway(config)
        self.registrations = EventLog()
        self.gateway.sip.registration_listeners.append(self.registrations)
        self.gateway.start()
        self.addCleanup(self.gateway.stop)
        self.assertIsInstance(self.gateway.sip, LocatingSipService)
        tone = write_tone(os.path.abspath(self.mktemp()) + ".wav", frequency=1000.0, rate=8000,
                          seconds=30.0)
        self.phone = Baresip("1002", "pass1002", registrar_port=self.kam.port, outbound=True,
                             tone=tone, codecs="PCMU", ausrc_srate=8000, ausrc_channels=1,
                             mediaenc="srtp-mand")
        self.addCleanup(self.phone.stop)  # added after Kamailio's: runs first
        await self.phone.start()
        await self.phone.registered()
        _, event = await self.registrations.wait_for(
            lambda e: isinstance(e[1], (Registered, RegistrationFailed)), timeout=30)
        self.assertIsInstance(event, Registered)
        await self.start_browser()
        ui = await Phone.open(self.browser, self.gateway.url)
        await ui.login(login="1001", password="pass1001", domain="127.0.0.1",
                       proxy="127.0.0.1", port=str(self.kam.port), register=False)
        # the session takes the server-held account, as connect_named binds one
        calls = self.gateway.top.call_gateway
        [session] = calls.sessions.values()
        session.account, session.account_name = calls.accounts.named("carrier"), "carrier"
        return ui

    @inline
    async def test_a_browser_call_over_located_tls_with_sdes(self) -> None:
        ui = await self.start_carrier()
        [row] = await self.kam.bindings("1001")  # the service's one registration, over TLS
        self.assertIn("transport=tls", row["contact"])

        await ui.call("1002")
        await ui.wait_state("call-status", "established", timeout=30)
        await self.phone.wait_event("CALL_ESTABLISHED", timeout=30)
        [call] = self.gateway.calls.values()
        self.assertEqual(call.describe()["media"]["mode"], "relay")
        self.assertTrue(call.media.sip.keyed)
        peak = await ui.received_frequency()
        assert_near(self, peak["frequency"], 1000, 15)  # the phone's SRTP, relayed
        self.assertGreater(peak["level"], -60)
        await task.deferLater(reactor, 1.5, lambda: None)  # the phone records the browser
        self.assertEqual(call.media.sip.rejected, 0)

        # the INVITE reached Kamailio over TLS
        invites = [line for line in self.kam.log_tail(400).splitlines()
                   if "REQ INVITE" in line and "fu=sip:1001@" in line]
        self.assertTrue(invites)
        self.assertTrue(all("(tls)" in line for line in invites), invites)
        # ... located by DNS, the dead first SRV target tried first
        failover = self.gateway.sip.endpoint.layer.failover
        self.assertGreaterEqual(failover.retries, 1)
        located = failover.locations.get(Target("TLS", CARRIER, 5061), reactor.seconds())
        self.assertEqual([t.port for t in located or []], [self.dead_port, self.kam.tls_port])
        self.assertIn((f"_sips._tcp.{CARRIER}", "SRV"), self.dns.queries())
        self.assertEqual([s.transport_name for s in self.gateway.sip.transport.streams],
                         ["TLS"])
        # the SIP side's SDPs (baresip's trace: our offer, its answer): RTP/SAVP, a=crypto
        trace = self.phone.log_path.read_text(errors="replace")
        self.assertIn("RTP/SAVP", trace)
        self.assertNotRegex(trace, r"m=audio \d+ RTP/AVP ")
        self.assertGreaterEqual(len(set(re.findall(r"a=crypto:[^\r\n]*inline:([^|\s]+)",
                                                   trace))), 2)

        mark = self.phone.mark()
        await ui.click("Hangup")
        await self.phone.wait_event("CALL_CLOSED", since=mark, timeout=30)
        self.assert_phone_heard_440(self.phone)
        await self.assert_clean()
