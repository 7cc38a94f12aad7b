"""The REST hooks' sans-IO core (wcsgw.calls.hooks): the signature byte for byte as
docs/contract.md fixes it, the notice queue's order under retries on a task.Clock and its
bound, what a decision reply may change, and the fail-closed decisions."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from twisted.internet import defer, task
from twisted.trial import unittest

from wcsgw.calls.hooks.queue import NoticeQueue
from wcsgw.calls.hooks.replies import REFUSED, read_reply
from wcsgw.calls.hooks.runtime import App, Hooks, encode
from wcsgw.calls.hooks.signing import sign, verify
from wcsgw.config import ConfigError
from wcsgw.config.sections import parse_config

SECRET = "0123456789abcdef-secret"
APP = App("shop", "http://127.0.0.1:9/hook", SECRET, 2.0)


class SigningTests(unittest.TestCase):
    def test_header_is_the_contracts_hmac_of_t_dot_body(self) -> None:
        body = b'{"event":"connect","appKey":"shop","sessionId":"s"}'
        expected = hmac.new(SECRET.encode(), b"1700000000." + body, hashlib.sha256).hexdigest()
        self.assertEqual(sign(SECRET, body, 1700000000), f"t=1700000000,v1={expected}")

    def test_verify_takes_the_header_and_refuses_any_change(self) -> None:
        body = b'{"a":1}'
        header = sign(SECRET, body, 1000)
        self.assertTrue(verify(SECRET, body, header, 1000))
        self.assertFalse(verify(SECRET, body + b" ", header, 1000))
        self.assertFalse(verify("another-secret-0000", body, header, 1000))
        self.assertFalse(verify(SECRET, body, header, 1000 + 301))  # replayed later
        self.assertFalse(verify(SECRET, body, "t=x,v1=00", 1000))

    def test_body_carries_event_app_key_and_session(self) -> None:
        data = json.loads(encode("callStatus", APP, "s-1", {"callId": "c", "status": "RING"}))
        self.assertEqual(data, {"event": "callStatus", "appKey": "shop", "sessionId": "s-1",
                                "callId": "c", "status": "RING"})


class QueueTests(unittest.TestCase):
    def test_one_in_flight_per_key_and_in_order(self) -> None:
        q = NoticeQueue()
        for i in range(3):
            q.push("call-a", i, 0.0)
        q.push("call-b", "b0", 0.0)
        first = q.due(0.0)
        self.assertEqual(sorted(str(n.item) for n in first), ["0", "b0"])
        self.assertEqual(q.due(0.0), [])  # call-a's 1 waits for its 0
        q.done(first[0], True, 0.0)
        self.assertEqual([n.item for n in q.due(0.0)], [1])

    def test_failure_retries_with_backoff_and_keeps_order(self) -> None:
        q = NoticeQueue(backoff=(1.0, 2.0))
        q.push("c", "first", 0.0)
        q.push("c", "second", 0.0)
        (n,) = q.due(0.0)
        q.done(n, False, 0.0)
        self.assertEqual(q.next_deadline(), 1.0)
        self.assertEqual(q.due(0.5), [])
        (again,) = q.due(1.0)
        self.assertEqual(again.item, "first")
        q.done(again, False, 1.0)
        (third,) = q.due(3.0)
        q.done(third, False, 3.0)  # attempts exhausted: given up, counted
        self.assertEqual(q.dropped, 1)
        self.assertEqual([n.item for n in q.due(3.0)], ["second"])
        self.assertEqual(q.failures, 3)

    def test_full_queue_drops_the_oldest_waiting_and_counts(self) -> None:
        q = NoticeQueue(limit=3)
        q.push("a", 1, 0.0)
        (in_flight,) = q.due(0.0)
        for item in (2, 3, 4):
            q.push("a", item, 0.0)
        self.assertEqual(q.dropped, 1)
        self.assertEqual([n.item for n in q], [1, 3, 4])  # the one in flight is kept
        self.assertEqual(q.size, 3)


class ReplyTests(unittest.TestCase):
    def test_2xx_allows_with_the_changes_of_its_event(self) -> None:
        body = json.dumps({"callee": "1002", "visibleName": "Shop", "ignored": 1}).encode()
        decision = read_reply("call", 200, body)
        self.assertTrue(decision.allowed)
        self.assertEqual(decision.changes, {"callee": "1002", "visibleName": "Shop"})

    def test_empty_2xx_allows_unchanged(self) -> None:
        self.assertEqual(read_reply("connect", 204, b"").changes, {})

    def test_non_2xx_refuses_with_its_error_or_the_default(self) -> None:
        self.assertEqual(read_reply("call", 403, b'{"error": "No calls at night"}').error,
                         "No calls at night")
        self.assertEqual(read_reply("call", 500, b"<html>oops</html>").error, REFUSED)
        self.assertEqual(read_reply("call", 302, b"").error, REFUSED)

    def test_wrong_shapes_refuse(self) -> None:
        for event, body in (("call", {"callee": 5}), ("call", {"sipHeaders": {"X": "a\r\nB: c"}}),
                            ("incomingCall", {"reject": 200}), ("connect", {"sipPort": 0})):
            decision = read_reply(event, 200, json.dumps(body).encode())
            self.assertFalse(decision.allowed, body)
        self.assertFalse(read_reply("call", 200, b"[1]").allowed)
        self.assertFalse(read_reply("call", 200, b'{"allow": false}').allowed)


class FakePoster:
    """Records posts; each is answered by the test through its Deferred."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, bytes, defer.Deferred[tuple[int, bytes]]]] = []

    def post(self, url: str, secret: str, body: bytes,
             timeout: float) -> defer.Deferred[tuple[int, bytes]]:
        d: defer.Deferred[tuple[int, bytes]] = defer.Deferred()
        self.posts.append((url, body, d))
        return d

    def events(self) -> list[Any]:
        return [json.loads(body) for _, body, _ in self.posts]


class RuntimeTests(unittest.TestCase):
    def setUp(self) -> None:
        self.clock = task.Clock()
        self.poster = FakePoster()
        self.hooks = Hooks([APP], self.poster, self.clock)

    def test_unknown_app_key_refused_and_no_apps_is_no_hooks(self) -> None:
        from wcsgw.calls.errors import CallError

        self.assertIs(self.hooks.app_for("shop"), APP)
        self.assertRaises(CallError, self.hooks.app_for, "other")
        self.assertRaises(CallError, self.hooks.app_for, "")
        self.assertIsNone(Hooks([], self.poster, self.clock).app_for("anything"))

    def test_decision_failure_refuses(self) -> None:
        results: list[Any] = []
        self.hooks.decide(APP, "call", "s", {}).addCallback(results.append)
        self.poster.posts[0][2].errback(defer.TimeoutError())
        self.assertFalse(results[0].allowed)
        self.assertEqual(results[0].error, REFUSED)
        self.assertEqual(self.hooks.failures, 1)

    def test_notices_of_a_call_in_order_under_retries(self) -> None:
        for status in ("TRYING", "RING", "ESTABLISHED"):
            self.hooks.notice(APP, "c1", "callStatus", "s", {"callId": "c1", "status": status})
        self.assertEqual(len(self.poster.posts), 1)
        self.poster.posts[0][2].errback(ConnectionRefusedError())  # backend down
        self.clock.advance(0.5)
        self.assertEqual(len(self.poster.posts), 1)  # nothing overtakes the failed one
        self.clock.advance(0.5)
        self.assertEqual(len(self.poster.posts), 2)
        self.poster.posts[1][2].callback((200, b""))
        self.poster.posts[2][2].callback((204, b""))
        self.poster.posts[3][2].callback((200, b""))
        statuses = [e["status"] for e in self.poster.events()]
        self.assertEqual(statuses, ["TRYING", "TRYING", "RING", "ESTABLISHED"])
        self.assertEqual(self.hooks.queue.delivered, 3)
        self.assertEqual(self.clock.getDelayedCalls(), [])


class ConfigTests(unittest.TestCase):
    def test_apps_parse_with_defaults_and_mask_the_secret(self) -> None:
        config = parse_config({"apps": [{"hook_url": "https://backend.example/hooks",
                                         "secret": SECRET}]})
        (app,) = config.apps
        self.assertEqual((app.key, app.timeout), ("", 5.0))
        self.assertNotIn(SECRET, repr(config))

    def test_no_apps_is_the_default(self) -> None:
        self.assertEqual(parse_config({}).apps, ())

    def test_bad_entries_name_the_key(self) -> None:
        cases = [
            ({"secret": SECRET}, "apps[0].hook_url"),
            ({"hook_url": "ftp://x", "secret": SECRET}, "apps[0].hook_url"),
            ({"hook_url": "http://u:p@x/", "secret": SECRET}, "apps[0].hook_url"),
            ({"hook_url": "http://x/", "secret": "short"}, "apps[0].secret"),
            ({"hook_url": "http://x/", "secret": SECRET, "timeout": 0}, "apps[0].timeout"),
            ({"hook_url": "http://x/", "secret": SECRET, "color": 1}, "apps[0].color"),
        ]
        for entry, key in cases:
            with self.assertRaises(ConfigError) as caught:
                parse_config({"apps": [entry]})
            self.assertEqual(caught.exception.key, key)
            self.assertNotIn(SECRET, str(caught.exception))
        with self.assertRaises(ConfigError) as caught:
            parse_config({"apps": [{"hook_url": "http://x/", "secret": SECRET}] * 2})
        self.assertEqual(caught.exception.key, "apps[1].key")


class WebhooksDocumentTests(unittest.TestCase):
    def test_every_event_has_a_schema_and_decisions_their_reply(self) -> None:
        from wcsgw.api.openapi import openapi_document
        from wcsgw.calls.hooks.replies import CHANGES
        from wcsgw.calls.hooks.taps import NOTICES

        webhooks = openapi_document(auth=False)["webhooks"]
        self.assertEqual(set(webhooks), set(CHANGES) | set(NOTICES))
        for event, changes in CHANGES.items():
            reply = webhooks[event]["post"]["responses"]["200"]["content"]["application/json"]
            self.assertLessEqual(set(changes), set(reply["schema"]["properties"]), event)
