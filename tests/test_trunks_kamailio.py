"""Trunk health against real peers: a Kamailio that answers OPTIONS and a trunk where nothing
listens, through the whole gateway service tree (config -> TrunkService -> endpoint -> UDP).

The live trunk stays up; the dead one goes down after ``options_failures`` probes, shows as 0
in /metrics, and a browser session's call on it is refused at once (1004 naming the account,
no INVITE sent); once a second Kamailio starts on the dead trunk's port the next probe marks it
up and a call on it goes out again.
"""

from __future__ import annotations

from typing import Any

import attrs
from twisted.trial import unittest

from tests.e2e import Gateway, gateway_config
from tests.peers.kamailio import Kamailio
from tests.peers.ports import free_port
from tests.support import EventLog, inline
from tests.test_api_fakes import ws_connect
from tests.test_api_metrics import parse_exposition
from tests.test_calls_fakes import CHROME_OFFER
from wcsgw.api.metrics import collect, render
from wcsgw.config import Account


class TrunkHealthKamailioTests(unittest.TestCase):
    timeout = 90

    def trunk_up(self) -> dict[str, float]:
        """/metrics' wcsgw_trunk_up, by account, as a scraper would read it."""
        families = parse_exposition(render(collect(self.calls)).decode())
        return {dict(labels)["account"]: value for (_name, labels), value
                in families["wcsgw_trunk_up"]["samples"].items()}

    def invites_sent(self) -> int:
        return int(self.gateway.sip.endpoint.stats.messages_out.get("INVITE", 0))

    async def session_on(self, name: str) -> Any:
        before = set(self.calls.sessions)
        ws = await ws_connect(self, self.gateway.top.getServiceNamed("http").address[1])
        (session_id,) = set(self.calls.sessions) - before
        self.calls.connect_named(session_id, name)
        await ws.notification("sessionStatus", status="ESTABLISHED")
        return ws

    @inline
    async def test_dead_trunk_down_refused_fast_then_up_when_it_answers(self) -> None:
        self.kam = Kamailio()
        self.addCleanup(self.kam.stop)
        await self.kam.start()
        dead_port = free_port("udp+tcp")
        office = Account(name="office", login="1001", password="pass1001", domain="127.0.0.1",
                         port=self.kam.port, register=False, options_interval=1,
                         options_failures=2)
        backup = Account(name="backup", login="1003", password="pass1003", domain="127.0.0.1",
                         port=dead_port, register=False, options_interval=1,
                         options_failures=2)
        config = attrs.evolve(gateway_config(allowed_domains=(), t1=0.05, t2=0.4),
                              accounts=(office, backup))
        self.gateway = Gateway(config)
        self.calls = self.gateway.top.call_gateway
        changes = EventLog()
        self.calls.trunks.observers.append(changes)
        self.gateway.start()
        self.addCleanup(self.gateway.stop)

        went_down = await changes.wait_for(lambda e: e[0] == "backup" and not e[1].up,
                                           timeout=30)
        self.assertTrue(went_down[1].reason)
        self.assertEqual(self.trunk_up(), {"office": 1.0, "backup": 0.0})
        office_health = self.calls.trunks.get("office").health
        self.assertTrue(office_health.up)
        self.assertEqual(office_health.last_reason, "SIP 200")  # Kamailio's "Keepalive"
        self.assertNotIn("office", [name for name, _ in changes.events])

        ws = await self.session_on("backup")
        sent_before = self.invites_sent()
        refused = await ws.request("call", {"callee": "1002", "callId": "to-dead",
                                            "sdp": CHROME_OFFER})
        self.assertEqual(refused["error"]["code"], 1004, refused)
        self.assertIn("Trunk down: account 'backup'", refused["error"]["message"])
        self.assertNotIn("pass1003", refused["error"]["message"])
        self.assertEqual(self.invites_sent(), sent_before)  # nothing went out
        self.assertEqual(self.calls.calls, {})

        # the trunk comes back: a Kamailio on its port answers the next probe
        revived = Kamailio(port=dead_port)
        self.addCleanup(revived.stop)
        await revived.start()
        back = await changes.wait_for(lambda e: e[0] == "backup" and e[1].up, timeout=30)
        self.assertEqual(back[1].reason, "SIP 200")
        self.assertEqual(self.trunk_up(), {"office": 1.0, "backup": 1.0})

        placed = await ws.request("call", {"callee": "1002", "callId": "to-revived",
                                           "sdp": CHROME_OFFER})
        self.assertEqual(placed.get("result"), {"callId": "to-revived"}, placed)
        self.assertGreater(self.invites_sent(), sent_before)  # this one went out
        await ws.request("hangup", {"callId": "to-revived"})
        await self.gateway.when_idle()
