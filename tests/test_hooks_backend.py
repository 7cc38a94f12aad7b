"""The REST hooks against a real backend web server (tests/peers/backend.py, its own process):
the whole gateway in this process, a JSON-RPC client on its /ws.

What a customer's backend relies on: every request carries a signature it can verify; a
``connect`` or ``call`` it refuses, or does not answer in time, is refused with its reason
shown to the browser (fail closed); what it changes is applied — and checked like the
browser's own values; and it hears every call's statuses, complete and in order.
"""

from __future__ import annotations

import json
import os
from typing import Any

import attrs
from twisted.internet import defer
from twisted.trial import unittest

from tests.e2e import Gateway, gateway_config
from tests.peers.backend import Backend
from tests.peers.sipua import SipUA
from tests.test_api_fakes import http_get, ws_connect
from wcsgw.api.openapi import openapi_document
from wcsgw.config import Config
from wcsgw.config.settings import Account, AppSettings
from wcsgw.sdp.codecs import PCMU
from wcsgw.sip.account import SipAccount

SECRET = "hook-secret-for-the-tests-0123"
HERE = os.path.dirname(__file__)
CHROME_OFFER = open(os.path.join(HERE, "data", "chromium_offer_av.sdp")).read()


class HookBackendTests(unittest.TestCase):
    timeout = 60

    async def start(self, timeout: float = 2.0, key: str = "shop", backend_secret: str = SECRET,
                    **more: Any) -> Any:
        backend = Backend(backend_secret)
        await backend.start()
        self.addCleanup(lambda: defer.ensureDeferred(backend.stop()))
        config: Config = attrs.evolve(gateway_config(), apps=(
            AppSettings(hook_url=backend.url, secret=SECRET, key=key, timeout=timeout),),
            **more)
        gateway = Gateway(config)
        gateway.start()
        self.addCleanup(gateway.stop)
        port = int(gateway.url.rsplit(":", 1)[1].strip("/"))
        ws = await ws_connect(self, port)
        return backend, gateway, ws

    async def test_connect_is_signed_asked_and_noticed_without_the_password(self) -> None:
        backend, _, ws = await self.start()
        reply = await ws.request("connect", {"appKey": "shop", "sipPassword": "not-sent",
                                             "custom": {"visitor": "v-1"}})
        self.assertIn("result", reply, reply)
        events = await backend.wait_events(
            lambda es: any(e["event"] == "sessionStatus" for e in es))
        self.assertTrue(all(e["verified"] for e in events), events)
        connect = events[0]
        self.assertEqual((connect["event"], connect["appKey"], connect["sessionId"]),
                         ("connect", "shop", reply["result"]["sessionId"]))
        self.assertEqual(connect["custom"], {"visitor": "v-1"})
        self.assertNotIn("sipPassword", connect)
        self.assertEqual(events[1]["status"], "ESTABLISHED")
        # The late response still comes before the notification its work caused.
        frames = ws.frames.events
        response = next(i for i, f in enumerate(frames) if f.get("id") == reply["id"])
        established = next(i for i, f in enumerate(frames) if f.get("method") == "sessionStatus")
        self.assertLess(response, established)

    async def test_a_request_signed_with_another_secret_fails_the_backends_check(self) -> None:
        backend, _, ws = await self.start(backend_secret="the-backends-own-secret-9876")
        reply = await ws.request("connect", {"appKey": "shop"})
        self.assertEqual(reply["error"]["message"], "bad signature")  # its 401, shown
        [event] = await backend.events()
        self.assertFalse(event["verified"])

    async def test_unknown_app_key_is_refused_without_asking(self) -> None:
        backend, _, ws = await self.start()
        reply = await ws.request("connect", {"appKey": "nobody"})
        self.assertEqual(reply["error"]["data"], {"field": "appKey"})
        self.assertEqual(await backend.events(), [])

    async def test_refusal_shows_the_backends_reason(self) -> None:
        backend, _, ws = await self.start()
        await backend.script(connect={"status": 403, "body": {"error": "Shop is closed"}})
        reply = await ws.request("connect", {"appKey": "shop"})
        self.assertEqual(reply["error"]["code"], 1004)
        self.assertEqual(reply["error"]["message"], "Shop is closed")
        # refused: not connected, so a call is refused too
        reply = await ws.request("call", {"callee": "echo", "sdp": CHROME_OFFER})
        self.assertEqual(reply["error"]["code"], 1001)

    async def test_no_answer_in_time_refuses(self) -> None:
        backend, gateway, ws = await self.start(timeout=0.5)
        await backend.script(connect={"delay": 3})
        other = await ws_connect(self, ws.protocol.transport.getPeer().port)
        pending = ws.request("connect", {"appKey": "shop"})
        # Meanwhile the gateway serves others: a connect that asks no one waits for no one.
        reply = await other.request("connect", {"appKey": "nobody"})
        self.assertEqual(reply["error"]["data"], {"field": "appKey"})  # answered at once
        self.assertFalse(pending.called)  # while the first still waits
        reply = await pending
        self.assertEqual(reply["error"]["message"], "Refused by application")
        _, body = await http_get(self, gateway.url + "metrics")
        self.assertIn(b"wcsgw_hook_failures_total 1", body)
        self.assertIn(b"wcsgw_hook_requests_total 1", body)

    async def test_call_changes_applied_and_checked_and_statuses_in_order(self) -> None:
        backend, gateway, ws = await self.start()
        await backend.script(call=[
            {"body": {"callee": "sip:someone@evil.example"}},  # the policy refuses it
            {"body": {"callee": "echo", "visibleName": "Shop"}},
        ])
        await ws.request("connect", {"appKey": "shop"})
        reply = await ws.request("call", {"callee": "sales", "sdp": CHROME_OFFER})
        self.assertEqual(reply["error"]["code"], 1004, reply)  # the changed callee, refused
        reply = await ws.request("call", {"callId": "c-1", "callee": "sales",
                                          "sdp": CHROME_OFFER})
        self.assertEqual(reply["result"], {"callId": "c-1"})
        self.assertEqual(gateway.calls["c-1"].callee, "echo")
        await ws.notification("callStatus", callId="c-1", status="ESTABLISHED")
        await ws.request("hangup", {"callId": "c-1"})
        events = await backend.wait_events(lambda es: any(
            e["event"] == "callStatus" and e["status"] == "FINISH" for e in es))
        asked = [e for e in events if e["event"] == "call"]
        self.assertEqual([e["callee"] for e in asked], ["sales", "sales"])
        statuses = [e["status"] for e in events
                    if e["event"] == "callStatus" and e["callId"] == "c-1"]
        heard = [f["params"]["status"] for f in ws.frames.events
                 if f.get("method") == "callStatus" and f["params"]["callId"] == "c-1"]
        self.assertEqual(statuses, heard)  # complete and in the order the browser heard
        self.assertEqual(statuses[-1], "FINISH")
        self.assertIn("ESTABLISHED", statuses)
        assert_documented(self, events)


class ServerHeldAccountTests(unittest.TestCase):
    """The "call us" case: the page logs in with no SIP credentials at all; the backend binds
    the session to a server-held account, and the call goes out on it."""

    timeout = 60

    async def test_no_password_in_the_browser_the_call_goes_out_on_the_hooks_account(self) -> None:
        ua = SipUA(PCMU, _quiet_media, user="1003")
        ua.start()
        self.addCleanup(ua.stop)
        office = Account(name="office", login="office", password="office-pass-never-sent",
                         domain="127.0.0.1", port=ua.port, register=False)
        backend, gateway, ws = await HookBackendTests.start(self, accounts=(office,))
        await backend.script(connect={"body": {"account": "office"}},
                             call={"body": {"callee": "1003"}})
        reply = await ws.request("connect", {"appKey": "shop"})  # nothing else: no password
        self.assertIn("result", reply, reply)
        reply = await ws.request("call", {"callId": "c-9", "callee": "sales",
                                          "sdp": CHROME_OFFER})
        self.assertEqual(reply["result"], {"callId": "c-9"})
        taken = await ua.next_call()
        self.assertEqual(taken.request.from_.uri.user, "office")
        self.assertEqual(taken.request.to.uri.user, "1003")
        await ws.notification("callStatus", callId="c-9", status="ESTABLISHED")
        await ws.request("hangup", {"callId": "c-9"})
        await taken.ended()
        frames = json.dumps(ws.frames.events)
        self.assertNotIn("office-pass-never-sent", frames)
        events = await backend.wait_events(lambda es: any(
            e.get("status") == "FINISH" for e in es))
        self.assertNotIn("office-pass-never-sent", json.dumps(events))


class _QuietMedia:
    """A media peer that sends nothing (these tests look at signalling)."""

    port = 9

    def stop(self) -> defer.Deferred[None]:
        return defer.succeed(None)


async def _quiet_media(*args: Any) -> Any:
    return _QuietMedia()


class IncomingHookTests(unittest.TestCase):
    """An INVITE to a server-held account's contact (no browser registered it): the backend
    names the session that rings, or the SIP status to answer with."""

    timeout = 60

    async def test_routed_to_the_named_session_or_rejected_with_its_code(self) -> None:
        backend, gateway, first = await HookBackendTests.start(
            self, key="", accounts=(Account(name="desk", login="desk", domain="127.0.0.1",
                                            register=False),))
        port = int(gateway.url.rsplit(":", 1)[1].strip("/"))
        second = await ws_connect(self, port)
        await first.request("connect", {})
        agent = (await second.request("connect", {}))["result"]["sessionId"]
        await backend.script(incomingCall=[{"body": {"sessionId": agent}},
                                           {"body": {"reject": 486}}])
        ua = SipUA(PCMU, _no_media, user="caller")
        ua.start()
        self.addCleanup(ua.stop)
        caller = SipAccount(login="caller", domain="127.0.0.1", port=gateway.sip.port)
        target = f"sip:desk@127.0.0.1:{gateway.sip.port}"
        ua.call(caller, target)
        offered = await second.notification("incomingCall")
        self.assertEqual(offered["params"]["caller"], "caller")
        self.assertFalse([f for f in first.frames.events if f.get("method") == "incomingCall"])
        await second.request("hangup", {"callId": offered["params"]["callId"]})
        refused = ua.call(caller, target)
        outcome = await refused.ended()
        self.assertEqual(getattr(outcome, "status", None), 486)
        events = await backend.events()
        asked = [e for e in events if e["event"] == "incomingCall"]
        self.assertEqual([(e["callee"], e["account"]) for e in asked],
                         [("desk", "desk"), ("desk", "desk")])
        self.assertTrue(all(e["verified"] for e in events))
        assert_documented(self, events)


async def _no_media(*args: Any) -> Any:
    raise AssertionError("no call is answered in these tests")


def assert_documented(testcase: unittest.TestCase, events: list[dict[str, Any]]) -> None:
    """Every body the backend got matches its event's schema in the OpenAPI ``webhooks``."""
    import jsonschema_rs

    webhooks = openapi_document(auth=False)["webhooks"]
    for event in events:
        body = {k: v for k, v in event.items() if k not in ("verified", "path")}
        operation = webhooks[body["event"]]["post"]
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        errors = [e.message for e in jsonschema_rs.validator_for(schema).iter_errors(body)]
        testcase.assertEqual(errors, [], body)
