"""Toll fraud by REFER (issue 10, item 2), through real sockets.

The far end of an established call is a real SIP user agent (tests/peers/sipua.py: the
gateway's own SIP stack as a scripted phone) that is also the account's outbound proxy, so
every INVITE the gateway sends on that account reaches it: what it receives is exactly what
the gateway dialled.  The browser is a real WebSocket client on the gateway's ``/ws``
speaking JSON-RPC (Chromium's recorded offer, no media: only signalling matters here).

The attack: inside the call, the far end sends ``REFER`` with ``Refer-To`` a premium number on
an allowed host.  Before the fix the gateway answered 202 and dialled it on the session's
credentials.  Now: the same destination check as a ``callee`` (403, nothing dialled, the
browser not even asked); then ``policy.incoming_transfers`` — "ask" puts an allowed target to
the browser (``transferRequest`` / ``answerTransfer``), "refuse" answers 403.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import attrs
from twisted.internet import defer, reactor
from twisted.internet.protocol import DatagramProtocol
from twisted.trial import unittest

from tests.e2e import Gateway, gateway_config
from tests.peers.sipua import SipUA
from tests.support import EventLog, inline
from tests.test_api_fakes import ws_connect
from wcsgw.sdp.codecs import Codec
from wcsgw.sip.session import ReferAccepted, ReferFailed, ReferProgress

HERE = os.path.dirname(__file__)
CHROME_OFFER = Path(HERE, "data", "chromium_offer_av.sdp").read_text()
PREMIUM = "+19005550199"


class Sink:
    """The far end's media: a UDP port that takes whatever comes."""

    def __init__(self) -> None:
        self.listening = reactor.listenUDP(0, DatagramProtocol(), interface="127.0.0.1")
        self.port = self.listening.getHost().port

    def stop(self) -> defer.Deferred:
        return defer.maybeDeferred(self.listening.stopListening)


async def sink(host: str, port: int, pt: int, local: Any) -> Sink:
    return Sink()


class ReferAttackCase(unittest.TestCase):
    timeout = 60

    async def established(self, mode: str = "ask", transfer_timeout: float = 15.0) -> Any:
        """The far end (``self.ua``, also the outbound proxy), the gateway (number rules:
        +1900... denied) and a browser session (``self.ws``) whose call to 1002 is up.
        Returns the far end's side of the call."""
        self.ua = SipUA(Codec("PCMU", 8000, 1, 0), sink, user="1002")
        self.ua.start()
        self.addCleanup(self.ua.stop)
        config = gateway_config(allowed_domains=("127.0.0.1",), t1=0.1, t2=0.8)
        config = attrs.evolve(config, policy=attrs.evolve(
            config.policy, denied_numbers=(r"\+?1?900\d*",), incoming_transfers=mode,
            transfer_timeout=transfer_timeout))
        self.gateway = Gateway(config)
        self.gateway.start()
        self.addCleanup(self.gateway.stop)
        http_port = self.gateway.top.getServiceNamed("http").address[1]
        self.ws = await ws_connect(self, http_port)
        connected = await self.ws.request("connect", {
            "sipLogin": "1001", "sipPassword": "pass1001", "sipDomain": "127.0.0.1",
            "sipOutboundProxy": "127.0.0.1", "sipPort": self.ua.port,
            "sipRegisterRequired": False})
        self.assertIn("result", connected)
        placed = await self.ws.request("call", {"callId": "c1", "callee": "1002",
                                                "sdp": CHROME_OFFER, "hasVideo": False})
        self.assertEqual(placed.get("result"), {"callId": "c1"})
        far = await self.ua.next_call(0)
        await far.confirmed()
        await self.ws.notification("callStatus", callId="c1", status="ESTABLISHED")
        # What the far end hears back about its REFERs (and the NOTIFYs of an accepted one).
        self.refer_events = EventLog()
        session = far.session
        inner = session.listener

        def listener(event: Any) -> None:
            if isinstance(event, (ReferAccepted, ReferFailed, ReferProgress)):
                self.refer_events(event)
            inner(event)

        session.listener = listener
        return far

    async def refer(self, far: Any, target: str) -> Any:
        """The far end REFERs the gateway to ``target``: its 202 or its refusal."""
        count = len(self.refer_events.events)
        far.session.refer(target, reactor.seconds())
        # (Events compare by value: a new one is told by the log having grown.)
        return await self.refer_events.wait_for(
            lambda e: len(self.refer_events.events) > count
            and isinstance(e, (ReferAccepted, ReferFailed)))

    def transfer_requests(self) -> list[dict[str, Any]]:
        return [f["params"] for f in self.ws.frames.events if f.get("method") == "transferRequest"]

    def dialled(self) -> list[str]:
        """Request-URIs of every INVITE the gateway sent after the call's own."""
        return [str(call.request.uri) for call in self.ua.calls[1:]]


class PolicyFirstTests(ReferAttackCase):
    @inline
    async def test_premium_number_refused_even_when_transfers_are_accepted(self) -> None:
        far = await self.established(mode="accept")
        answer = await self.refer(far, f"sip:{PREMIUM}@127.0.0.1")
        self.assertEqual(answer.status, 403)
        self.assertEqual(self.transfer_requests(), [])
        # The legitimate transfer still works, and is the first INVITE after the call's own:
        # the premium number was never dialled (it would have come first, on the same path).
        answer = await self.refer(far, "sip:1003@127.0.0.1")
        self.assertEqual(answer, ReferAccepted(202))
        transferred = await self.ua.next_call(1)
        self.assertEqual(str(transferred.request.uri), "sip:1003@127.0.0.1")
        await transferred.confirmed()
        await self.refer_events.wait_for(lambda e: isinstance(e, ReferProgress) and e.final)
        self.assertEqual(self.dialled(), ["sip:1003@127.0.0.1"])
        await self.ws.notification("callStatus", callId="c1", info="Transferred")

    @inline
    async def test_premium_number_is_not_even_put_to_the_browser(self) -> None:
        far = await self.established(mode="ask")
        for target in (f"sip:{PREMIUM}@127.0.0.1", f"tel:{PREMIUM}",
                       f"sip:{PREMIUM}@127.0.0.1;user=phone", "sip:1003@evil.example",
                       "sip:1003@127.0.0.2", "sip:1003@127.0.0.1;maddr=127.0.0.2"):
            with self.subTest(target=target):
                answer = await self.refer(far, target)
                self.assertEqual(answer.status, 403)
        self.assertEqual(self.transfer_requests(), [])
        self.assertEqual(self.dialled(), [])
        # The call is untouched.
        [call] = self.gateway.calls.values()
        self.assertEqual(call.describe()["status"], "ESTABLISHED")


class BrowserDecidesTests(ReferAttackCase):
    @inline
    async def test_browser_accepts(self) -> None:
        far = await self.established()
        far.session.refer("sip:1003@127.0.0.1", reactor.seconds())
        asked = await self.ws.notification("transferRequest")
        self.assertEqual((asked["params"]["callId"], asked["params"]["target"]),
                         ("c1", "sip:1003@127.0.0.1"))
        self.assertEqual(self.dialled(), [])  # nothing before the answer
        self.assertEqual(self.refer_events.events, [])
        reply = await self.ws.request("answerTransfer", {"callId": "c1", "accept": True})
        self.assertEqual(reply.get("result"), {})
        accepted = await self.refer_events.wait_for(
            lambda e: isinstance(e, (ReferAccepted, ReferFailed)))
        self.assertEqual(accepted, ReferAccepted(202))
        transferred = await self.ua.next_call(1)
        self.assertEqual(str(transferred.request.uri), "sip:1003@127.0.0.1")
        await transferred.confirmed()
        await self.ws.notification("callStatus", callId="c1", info="Transferred")

    @inline
    async def test_browser_refuses(self) -> None:
        far = await self.established()
        far.session.refer("sip:1003@127.0.0.1", reactor.seconds())
        await self.ws.notification("transferRequest")
        reply = await self.ws.request("answerTransfer", {"callId": "c1", "accept": False})
        self.assertEqual(reply.get("result"), {})
        refused = await self.refer_events.wait_for(
            lambda e: isinstance(e, (ReferAccepted, ReferFailed)))
        self.assertEqual(refused.status, 603)
        self.assertEqual(self.dialled(), [])
        # Answered once: a second answer is an error naming the call.
        again = await self.ws.request("answerTransfer", {"callId": "c1", "accept": True})
        self.assertEqual(again["error"]["data"], {"field": "callId"})
        self.assertEqual(self.dialled(), [])

    @inline
    async def test_no_answer_is_603(self) -> None:
        far = await self.established(transfer_timeout=1.0)
        started = reactor.seconds()
        answer = await self.refer(far, "sip:1003@127.0.0.1")
        self.assertEqual(answer.status, 603)
        self.assertGreaterEqual(reactor.seconds() - started, 0.9)
        self.assertEqual(len(self.transfer_requests()), 1)
        self.assertEqual(self.dialled(), [])

    @inline
    async def test_answer_errors_name_the_field(self) -> None:
        await self.established()
        none_pending = await self.ws.request("answerTransfer", {"callId": "c1", "accept": True})
        self.assertEqual(none_pending["error"]["data"], {"field": "callId"})
        unknown = await self.ws.request("answerTransfer", {"callId": "nope", "accept": True})
        self.assertEqual(unknown["error"]["data"], {"field": "callId"})
        missing = await self.ws.request("answerTransfer", {"callId": "c1"})
        self.assertEqual(missing["error"]["data"], {"field": "accept"})
        self.assertEqual(self.dialled(), [])

    @inline
    async def test_refuse_mode_is_403(self) -> None:
        far = await self.established(mode="refuse")
        answer = await self.refer(far, "sip:1003@127.0.0.1")
        self.assertEqual(answer.status, 403)
        self.assertEqual(self.transfer_requests(), [])
        self.assertEqual(self.dialled(), [])
