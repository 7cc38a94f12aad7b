"""A server-held account against real peers: Kamailio (registrar + proxy with digest auth) and
a baresip phone, driven through the real JSON-RPC WebSocket.

Two browser sessions are bound by name to ``[[accounts]] name = "office"`` (login 1001): the
registrar holds ONE binding for the account however many sessions use it, each session's call
goes out on it (Kamailio authenticates the INVITE with the account's password, which only the
gateway holds, and the phone rings showing 1001), and the password is in no frame either
browser ever received.  The account's domain is not in ``policy.allowed_domains``: a
server-held account's servers are the operator's own.
"""

from __future__ import annotations

import json
import os
from typing import Any

import attrs
from twisted.trial import unittest

from tests.e2e import Gateway, gateway_config
from tests.peers.baresip import Baresip, write_tone
from tests.peers.kamailio import Kamailio
from tests.support import EventLog, inline
from tests.test_api_fakes import ws_connect
from tests.test_calls_fakes import CHROME_OFFER
from wcsgw.config import Account, PolicySettings
from wcsgw.config.dialplan import DialPlanSettings, RouteSettings
from wcsgw.sip.registration import Registered

PASSWORD = "pass1001"


class SharedAccountTests(unittest.TestCase):
    timeout = 90

    async def start(self, **plan: Any) -> None:
        """Kamailio, the gateway with "office" (and ``plan``: more Config fields), baresip."""
        self.kam = Kamailio()
        self.addCleanup(self.kam.stop)
        await self.kam.start()
        office = Account(name="office", login="1001", password=PASSWORD, domain="127.0.0.1",
                         port=self.kam.port, expires=300)
        config = attrs.evolve(gateway_config(allowed_domains=(), t1=0.1, t2=0.8),
                              accounts=(office,), **plan)
        self.gateway = Gateway(config)
        self.registrations = EventLog()
        self.gateway.sip.registration_listeners.append(self.registrations)
        self.gateway.start()
        self.addCleanup(self.gateway.stop)
        tone = write_tone(os.path.abspath(self.mktemp()) + ".wav", frequency=1000.0, rate=8000,
                          seconds=30.0)
        self.phone = Baresip("1002", "pass1002", registrar_port=self.kam.port, outbound=True,
                             tone=tone, codecs="PCMU", answermode="manual")
        self.addCleanup(self.phone.stop)  # added after Kamailio's: runs first
        await self.phone.start()
        await self.phone.registered()
        await self.registrations.wait_for(lambda e: isinstance(e[1], Registered))

    async def bound_session(self) -> tuple[Any, str]:
        """A WebSocket session bound to "office" as a hook's decision would bind it."""
        calls = self.gateway.top.call_gateway
        before = set(calls.sessions)
        ws = await ws_connect(self, self.gateway.top.getServiceNamed("http").address[1])
        (session_id,) = set(calls.sessions) - before
        calls.connect_named(session_id, "office")
        await ws.notification("sessionStatus", status="ESTABLISHED")
        return ws, session_id

    @inline
    async def test_two_sessions_one_registration_calls_on_the_shared_account(self) -> None:
        await self.start()
        (a, _), (b, _) = await self.bound_session(), await self.bound_session()
        rows = await self.kam.bindings("1001")
        self.assertEqual(len(rows), 1, rows)  # the service's one binding, none per browser
        self.assertEqual(len([e for e in self.registrations.events
                              if isinstance(e[1], Registered)]), 1)

        for n, ws in enumerate((a, b)):
            mark = self.phone.mark()
            call_id = f"shared-{n}"
            placed = await ws.request("call", {"callee": "1002", "callId": call_id,
                                               "sdp": CHROME_OFFER})
            self.assertEqual(placed.get("result"), {"callId": call_id}, placed)
            incoming = await self.phone.wait_event("CALL_INCOMING", since=mark)
            self.assertIn("1001", json.dumps(incoming))  # From: the shared account
            await ws.notification("callStatus", callId=call_id, status="RING")
            self.assertEqual((await ws.request("hangup", {"callId": call_id})).get("result"), {})
            await self.phone.wait_event("CALL_CLOSED", since=mark)
            await self.gateway.when_idle()

        self.assertEqual(len(await self.kam.bindings("1001")), 1)
        for ws in (a, b):
            frames = json.dumps(ws.frames.events)
            self.assertIn("callStatus", frames)  # the frames are the ones of the calls above
            self.assertNotIn(PASSWORD, frames)

    @inline
    async def test_a_typed_national_number_through_the_dial_plan(self) -> None:
        """``0 10-02`` is +491002 once normalised; the premium-rate route refuses naming
        itself before any call is started; the German route strips +49 and marks
        ``user=phone``, and the phone rings from the shared account."""
        await self.start(
            dialplan=DialPlanSettings(country_code="49"),
            routes=(RouteSettings(prefix="+49900", refuse=True),
                    RouteSettings(prefix="+49", strip=3, user_phone=True)),
            policy=PolicySettings(denied_numbers=(r"\+4919[0-9]*",)))
        ws, _ = await self.bound_session()
        for typed, words in (("0900 123", "routes[0] (prefix +49900)"),
                             ("0049 19 12", "policy.denied_numbers")):
            refused = await ws.request("call", {"callee": typed, "sdp": CHROME_OFFER})
            self.assertEqual(refused["error"]["data"]["field"], "callee", refused)
            self.assertIn(words, refused["error"]["message"])
        self.assertEqual(self.gateway.calls, {})  # nothing of them was started
        mark = self.phone.mark()
        placed = await ws.request("call", {"callee": "0 10-02", "callId": "national",
                                           "sdp": CHROME_OFFER})
        self.assertEqual(placed.get("result"), {"callId": "national"}, placed)
        call = self.gateway.calls["national"]
        self.assertEqual(call.request_uri, "sip:1002@127.0.0.1;user=phone")
        incoming = await self.phone.wait_event("CALL_INCOMING", since=mark)
        self.assertIn("1001", json.dumps(incoming))
        await ws.notification("callStatus", callId="national", status="RING")
        self.assertEqual((await ws.request("hangup", {"callId": "national"})).get("result"), {})
        await self.phone.wait_event("CALL_CLOSED", since=mark)
        await self.gateway.when_idle()
        self.assertNotIn(PASSWORD, json.dumps(ws.frames.events))
