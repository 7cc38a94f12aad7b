"""Issue 10 items 6 and 8 through real sockets: a real gateway (make_service on free ports), a
WebSocket JSON-RPC client, and raw UDP listeners where the INVITE would go.

The session's account names a raw UDP socket as its SIP server (``sipDomain`` 127.0.0.1,
``sipPort`` the socket's port), so every request the gateway sends for it lands there; a
second socket on 127.0.0.2 (same port) stands for a ``maddr`` redirect's destination.  Each
attack must be refused with the right JSON-RPC error and send nothing; then a legitimate call
with an ``X-`` header goes out and its INVITE is the *first* datagram either socket saw — UDP
on loopback keeps order, so anything an attack had leaked would have arrived before it.  That
is the "nothing was sent" proof without a sleep.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
from twisted.internet import defer, reactor
from twisted.internet.protocol import DatagramProtocol
from twisted.trial import unittest

from tests.e2e import PeersMixin, gateway_config
from tests.support import EventLog, inline
from tests.test_api_fakes import ws_connect
from wcsgw.api import jsonrpc
from wcsgw.calls.errors import Codes
from wcsgw.config import (
    Config,
    HttpSettings,
    MediaSettings,
    PolicySettings,
    SipSettings,
    TestLinesSettings,
)
from wcsgw.service import make_service
from wcsgw.sip.message import Request, Response
from wcsgw.sip.parser import parse_message, serialize

CHROME_OFFER = (Path(__file__).parent / "data" / "chromium_offer_av.sdp").read_text()
PREMIUM = r"\+?1?900\d*"


class RawSip(DatagramProtocol):
    """A UDP socket that keeps every datagram (parsed when it parses) and can answer one."""

    def __init__(self) -> None:
        self.received = EventLog()

    def datagramReceived(self, data: bytes, addr: Any) -> None:
        try:
            message = parse_message(data)
        except Exception:  # noqa: BLE001 - anything at all counts as "something was sent"
            message = data
        self.received((message, addr))

    def busy(self, invite: Request, addr: Any) -> None:
        """486 to the INVITE, so the call ends (the gateway ACKs it) and nothing is left."""
        response = Response(486, "Busy Here")
        for name in ("Via", "From", "Call-ID", "CSeq"):
            for value in invite.headers.get_all(name):
                response.headers.add(name, value)
        response.headers.add("To", invite.headers.get("To") + ";tag=raw486")
        response.headers.add("Content-Length", "0")
        self.transport.write(serialize(response), addr)


class OutboundPolicyTests(unittest.TestCase):
    timeout = 60

    def setUp(self) -> None:
        self.server = RawSip()
        port = reactor.listenUDP(0, self.server, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        self.sip_port = port.getHost().port
        self.elsewhere = RawSip()  # where ;maddr=127.0.0.2 would send the INVITE
        other = reactor.listenUDP(self.sip_port, self.elsewhere, interface="127.0.0.2")
        self.addCleanup(other.stopListening)

        config = Config(
            http=HttpSettings(listen="127.0.0.1", port=0),
            sip=SipSettings(listen="127.0.0.1", port=0),
            media=MediaSettings(listen="127.0.0.1", port_min=31000, port_max=31099),
            testlines=TestLinesSettings(enabled=False),
            policy=PolicySettings(allowed_domains=("127.0.0.1",), denied_numbers=(PREMIUM,)),
        )
        self.top = make_service(config)
        self.top.startService()
        self.addCleanup(lambda: defer.maybeDeferred(self.top.stopService))
        self.http_port = self.top.getServiceNamed("http").address[1]

    async def connected(self) -> Any:
        ws = await ws_connect(self, self.http_port)
        response = await ws.request("connect", {
            "sipLogin": "1001", "sipPassword": "pw", "sipDomain": "127.0.0.1",
            "sipPort": self.sip_port, "sipRegisterRequired": False})
        self.assertIn("result", response)
        return ws

    async def call(self, ws: Any, callee: str, **params: Any) -> dict:
        return await ws.request("call", {"callee": callee, "sdp": CHROME_OFFER, "hasAudio": True,
                                         "hasVideo": False, **params})

    def assertRefused(self, response: dict, code: int, field: str, words: str) -> None:
        self.assertIn("error", response, f"not refused: {response}")
        error = response["error"]
        self.assertEqual((error["code"], error.get("data", {}).get("field")), (code, field), error)
        self.assertIn(words, error["message"])
        self.assertEqual(self.top.call_gateway.calls, {})  # nothing of it is left

    @inline
    async def test_attacks_refused_and_nothing_sent_then_legit_call_carries_x_header(self) -> None:
        ws = await self.connected()
        p = self.sip_port
        attacks = [
            # item 8: the host the policy checked was not the host the URI names
            ("sip:127.0.0.1;x@evil.example", {}, Codes.FORBIDDEN, "callee", "evil.example"),
            (f"sip:1002@127.0.0.1:{p};maddr=127.0.0.2", {}, Codes.FORBIDDEN, "callee", "maddr"),
            ("sip:1002@127.0.0.1?X-A=1", {}, Codes.FORBIDDEN, "callee", "header"),
            ("sip:1002@127.0.0.1:5999", {}, Codes.FORBIDDEN, "callee", "5999"),
            ("+1 900 555 0199", {}, Codes.FORBIDDEN, "callee", "denied_numbers"),
            ("tel:+1-900-555-0199", {}, Codes.FORBIDDEN, "callee", "denied_numbers"),
            # item 6: caller-ID spoofing through sipHeaders
            ("1002", {"sipHeaders": {"X-Ok": "1", "P-Asserted-Identity": "<sip:boss@127.0.0.1>"}},
             jsonrpc.INVALID_PARAMS, "sipHeaders.P-Asserted-Identity", "P-Asserted-Identity"),
            ("1002", {"sipHeaders": {"Remote-Party-ID": "<sip:boss@127.0.0.1>;party=calling"}},
             jsonrpc.INVALID_PARAMS, "sipHeaders.Remote-Party-ID", "Remote-Party-ID"),
        ]
        for callee, extra, code, field, words in attacks:
            with self.subTest(callee=callee, extra=extra):
                self.assertRefused(await self.call(ws, callee, **extra), code, field, words)

        # The legitimate call: its INVITE must be the first thing the server socket ever got.
        ok = await self.call(ws, "sip:1002@127.0.0.1", callId="legit",
                             sipHeaders={"X-Tenant": "acme"})
        self.assertEqual(ok.get("result"), {"callId": "legit"}, ok)
        first, addr = await self.server.received.wait_for(lambda _: True)
        self.assertIsInstance(first, Request, first)
        self.assertEqual((first.method, first.uri), ("INVITE", "sip:1002@127.0.0.1"))
        self.assertEqual(first.headers.get("X-Tenant"), "acme")
        self.assertEqual(first.headers.get_all("P-Asserted-Identity"), [])
        self.assertEqual(self.elsewhere.received.events, [])
        self.server.busy(first, addr)
        status = await ws.notification("callStatus", callId="legit", status="BUSY")
        self.assertEqual(status["params"]["sipStatus"], 486)
        await self.top.call_gateway.when_idle()
        # Every INVITE that reached the server was the legitimate one (retransmissions aside).
        invites = {m.headers.get("Call-ID") for m, _ in self.server.received.events
                   if isinstance(m, Request) and m.method == "INVITE"}
        self.assertEqual(invites, {first.headers.get("Call-ID")})
        self.assertEqual(self.elsewhere.received.events, [])


class KamailioLegitimatePathTests(PeersMixin, unittest.TestCase):
    """The legitimate destinations still reach the phone through a real proxy: a full
    ``sip:`` URI (rebuilt from its parts), a ``tel:`` number (dialled through the account's
    domain with ``user=phone``) and a number with visual separators (dialled without them),
    each with an ``X-`` header, from a WebSocket session at Kamailio (Record-Route) to
    baresip 1002 ringing.  (That nothing of a refused call is sent is the raw-socket test's
    proof above; here the denied number is only shown to be refused with these settings.)"""

    timeout = 90

    @inline
    async def test_uri_tel_and_number_ring_the_phone(self) -> None:
        config = gateway_config(allowed_domains=("127.0.0.1",), t1=0.1, t2=0.8)
        config = attrs.evolve(config, policy=attrs.evolve(
            config.policy, denied_numbers=(r"\+?1?900\d*",), allowed_numbers=(r"100\d", r"\+?1900\d+")))
        phone = await self.start_pbx_and_phone(config, answermode="manual")
        ws = await ws_connect(self, self.gateway.top.getServiceNamed("http").address[1])
        response = await ws.request("connect", {
            "sipLogin": "1001", "sipPassword": "pass1001", "sipDomain": "127.0.0.1",
            "sipOutboundProxy": "127.0.0.1", "sipPort": self.kam.port,
            "sipRegisterRequired": False})
        self.assertIn("result", response)
        # allowed by allowed_numbers, refused by denied_numbers: nothing reaches the proxy
        refused = await ws.request("call", {"callee": "+1 900 555 0199", "sdp": CHROME_OFFER,
                                            "sipHeaders": {"X-Tenant": "acme"}})
        self.assertEqual((refused["error"]["code"], refused["error"]["data"]["field"]),
                         (Codes.FORBIDDEN, "callee"))
        for n, callee in enumerate((f"sip:1002@127.0.0.1:{self.kam.port}", "tel:1002",
                                    "1-0-0-2")):
            with self.subTest(callee=callee):
                mark = phone.mark()
                call_id = f"legit-{n}"
                placed = await ws.request("call", {"callee": callee, "callId": call_id,
                                                   "sdp": CHROME_OFFER,
                                                   "sipHeaders": {"X-Tenant": "acme"}})
                self.assertEqual(placed.get("result"), {"callId": call_id}, placed)
                await phone.wait_event("CALL_INCOMING", since=mark)
                await ws.notification("callStatus", callId=call_id, status="RING")
                self.assertEqual((await ws.request("hangup", {"callId": call_id})).get("result"), {})
                await phone.wait_event("CALL_CLOSED", since=mark)
                await self.gateway.when_idle()
        self.assertEqual(self.gateway.calls, {})  # and no trace of the refused one
