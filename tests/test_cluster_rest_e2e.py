"""REST on any node with the real pieces (issue 17, item 6): two whole gateways (the service
tree of tests.e2e, each its own HTTP, SIP and media ports) sharing a real redis-server; calls
to the built-in test lines (REST call/startup with playFile, the lightest real call).

A call held by node b is found, sent DTMF and terminated through node a's REST API: the
request goes from a to b over the signed internal channel, b's call ends FINISH; a's
call/find_all lists b's calls with ``node`` = b."""

from __future__ import annotations

import json
from io import BytesIO
from pathlib import Path
from typing import Any, Awaitable, Callable

import attrs
from twisted.internet import reactor, task
from twisted.trial import unittest
from twisted.web.client import Agent, FileBodyProducer, readBody
from twisted.web.http_headers import Headers

from tests.e2e import TOKEN, Gateway, gateway_config
from tests.peers.ports import free_port
from tests.peers.redis import RedisServer, missing
from tests.support import inline
from tests.test_media_wavfile import tone, write_wav
from wcsgw.config import ClusterSettings, RestSettings

SECRET = "cluster-secret-for-the-e2e-test"


async def until(check: Callable[[], Awaitable[Any]], what: str, timeout: float = 10.0) -> Any:
    """``check()`` once it is truthy; a bounded wait for a condition, never a fixed sleep."""
    deadline = reactor.seconds() + timeout
    while True:
        value = await check()
        if value:
            return value
        if reactor.seconds() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        await task.deferLater(reactor, 0.05, lambda: None)


class RestOnAnyNodeTests(unittest.TestCase):
    timeout = 90

    def setUp(self) -> None:
        why = missing()
        if why is not None:
            raise unittest.SkipTest(why)

    async def start(self) -> None:
        self.redis = RedisServer()
        self.addCleanup(self.redis.stop)
        await self.redis.start()
        media = Path(self.mktemp()).resolve()
        media.mkdir()
        write_wav(media / "hello.wav", 8000, [tone(8000, 440, 2.0)])
        self.nodes: dict[str, Gateway] = {}
        for name in ("a", "b"):
            port = free_port("tcp")
            first = free_port("udp", span=20)
            base = gateway_config()
            config = attrs.evolve(
                base,
                http=attrs.evolve(base.http, port=port),
                media=attrs.evolve(base.media, port_min=first, port_max=first + 19),
                rest=RestSettings(tokens=(TOKEN,), media_folder=str(media)),
                cluster=ClusterSettings(redis_url=self.redis.url, node_id=name,
                                        internal_url=f"http://127.0.0.1:{port}", secret=SECRET))
            gateway = Gateway(config)
            gateway.start()
            self.addCleanup(gateway.stop)
            self.addCleanup(self.hang_up, gateway)  # runs first: a gateway stops once idle
            self.nodes[name] = gateway

    @staticmethod
    def hang_up(gateway: Gateway) -> Any:
        for call_id in list(gateway.calls):
            gateway.top.call_gateway.terminate(call_id)
        return gateway.when_idle()

    async def rest(self, node: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        headers = Headers({b"content-type": [b"application/json"],
                           b"authorization": [f"Bearer {TOKEN}".encode()]})
        url = f"{self.nodes[node].url}rest-api/{path}"
        response = await Agent(reactor).request(
            b"POST", url.encode(), headers, FileBodyProducer(BytesIO(json.dumps(body).encode())))
        return response.code, json.loads(await readBody(response))

    async def established_call(self, node: str, call_id: str, callee: str) -> Any:
        status, reply = await self.rest(node, "call/startup", {
            "callId": call_id, "callee": callee, "playFile": "hello.wav"})
        self.assertEqual((status, reply), (200, {"callId": call_id}))
        gateway = self.nodes[node]

        async def up() -> bool:
            call = gateway.calls.get(call_id)
            return call is not None and call.status.value == "ESTABLISHED"
        await until(up, f"{call_id} established on {node}")
        cluster = self.nodes["a"].top.call_gateway.cluster

        async def known() -> bool:
            owner = await cluster.owner_of_call(call_id)
            return owner is not None and owner.node_id == node
        await until(known, f"the cluster knows {node} holds {call_id}")
        return gateway.calls[call_id]

    @inline
    async def test_a_call_on_b_through_as_rest(self) -> None:
        await self.start()
        await self.established_call("a", "ca-1", "echo")
        call_b = await self.established_call("b", "cb-1", "tone")
        self.assertNotIn("cb-1", self.nodes["a"].calls)

        status, found = await self.rest("a", "call/find_all", {})
        self.assertEqual(status, 200, found)
        self.assertEqual(sorted((c["callId"], c["node"], c["status"]) for c in found),
                         [("ca-1", "a", "ESTABLISHED"), ("cb-1", "b", "ESTABLISHED")])
        status, found = await self.rest("a", "call/find", {"callId": "cb-1"})
        self.assertEqual((status, [(c["callId"], c["node"]) for c in found]),
                         (200, [("cb-1", "b")]))

        # send_dtmf through a reaches b's call: b's gateway is asked, with a's digits
        asked: list[tuple[Any, ...]] = []
        gateway_b = self.nodes["b"].top.call_gateway
        send = gateway_b.send_dtmf

        def recorded(*args: Any) -> Any:
            asked.append(args)
            return send(*args)
        gateway_b.send_dtmf = recorded
        status, reply = await self.rest("a", "call/send_dtmf", {"callId": "cb-1", "dtmf": "42#"})
        self.assertEqual((status, reply), (200, {}))
        self.assertEqual(asked, [(None, "cb-1", "42#", "RFC2833")])

        status, reply = await self.rest("a", "call/terminate", {"callId": "cb-1"})
        self.assertEqual((status, reply), (200, {}))
        await self.nodes["b"].when_idle()
        self.assertEqual(call_b.status.value, "FINISH")
        self.assertIn("ca-1", self.nodes["a"].calls)  # a's own call untouched

        # gone everywhere now: a 404 naming callId, as on one gateway
        async def forgotten() -> bool:
            return await self.nodes["a"].top.call_gateway.cluster.owner_of_call("cb-1") is None
        await until(forgotten, "the cluster forgets cb-1")
        status, reply = await self.rest("a", "call/terminate", {"callId": "cb-1"})
        self.assertEqual((status, reply.get("field")), (404, "callId"))
        # and the other way round: b ends a's call
        status, reply = await self.rest("b", "call/terminate", {"callId": "ca-1"})
        self.assertEqual((status, reply), (200, {}))
        await self.nodes["a"].when_idle()
