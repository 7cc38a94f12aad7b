"""Caller identity (RFC 3325) against real peers: a call on a server-held account with
``asserted_identity`` and ``privacy`` goes through Kamailio (digest auth, record-route) to a
baresip phone, whose SIP trace shows the operator's P-Asserted-Identity and Privacy; a
browser's own P-Asserted-Identity in ``sipHeaders`` is refused (-32602) even though the
operator listed it in ``policy.allowed_headers``, and nothing reaches the phone."""

from __future__ import annotations

import attrs
from twisted.trial import unittest

from tests.e2e import Gateway, gateway_config
from tests.peers.baresip import Baresip
from tests.peers.kamailio import Kamailio
from tests.support import inline
from tests.test_api_fakes import ws_connect
from tests.test_calls_fakes import CHROME_OFFER
from wcsgw.config import Account, PolicySettings

PAI = "sip:+441234567890@127.0.0.1"


class IdentityKamailioTests(unittest.TestCase):
    timeout = 90

    @inline
    async def test_the_accounts_identity_reaches_the_phone_the_browsers_never(self) -> None:
        kam = Kamailio()
        self.addCleanup(kam.stop)
        await kam.start()
        office = Account(name="office", login="1001", password="pass1001", domain="127.0.0.1",
                         port=kam.port, register=False, asserted_identity=PAI, privacy="id")
        config = attrs.evolve(
            gateway_config(allowed_domains=(), t1=0.1, t2=0.8), accounts=(office,),
            policy=PolicySettings(allowed_headers=("X-*", "P-Asserted-Identity", "Privacy")))
        gateway = Gateway(config)
        gateway.start()
        self.addCleanup(gateway.stop)
        phone = Baresip("1002", "pass1002", registrar_port=kam.port, outbound=True,
                        answermode="manual", sip_trace=True)
        self.addCleanup(phone.stop)  # added after Kamailio's: runs first
        await phone.start()
        await phone.registered()

        calls = gateway.top.call_gateway
        before = set(calls.sessions)
        ws = await ws_connect(self, gateway.top.getServiceNamed("http").address[1])
        (session_id,) = set(calls.sessions) - before
        calls.connect_named(session_id, "office")
        await ws.notification("sessionStatus", status="ESTABLISHED")

        mark = phone.mark()
        refused = await ws.request("call", {"callee": "1002", "sdp": CHROME_OFFER,
                                            "sipHeaders": {"P-Asserted-Identity":
                                                           "<sip:boss@127.0.0.1>"}})
        self.assertEqual(refused["error"]["code"], -32602, refused)
        self.assertEqual(refused["error"]["data"]["field"], "sipHeaders.P-Asserted-Identity")
        self.assertEqual(calls.calls, {})

        placed = await ws.request("call", {"callee": "1002", "callId": "asserted",
                                           "sdp": CHROME_OFFER,
                                           "sipHeaders": {"X-Tenant": "acme"}})
        self.assertEqual(placed.get("result"), {"callId": "asserted"}, placed)
        await phone.wait_event("CALL_INCOMING", since=mark)
        trace = phone.log_text()
        self.assertIn(f"P-Asserted-Identity: <{PAI}>", trace)
        self.assertIn("Privacy: id", trace)
        self.assertIn("X-Tenant: acme", trace)
        self.assertNotIn("sip:boss@", trace)  # the refused call never left the gateway
        await ws.request("hangup", {"callId": "asserted"})
        await phone.wait_event("CALL_CLOSED", since=mark)
        await gateway.when_idle()
