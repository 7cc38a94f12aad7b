"""REST on any node (docs/scaling.md): the internal channel's signature (sans-IO), the routing
rule, and two REST APIs over real HTTP on loopback handing requests to each other through a
fake cluster state (the interface of wcsgw.cluster: owner_of_call, live_nodes, lost_call)."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

from twisted.internet import defer, reactor
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import globalLogPublisher
from twisted.trial import unittest

from tests.support import inline
from tests.test_api_rest import FakeCallGateway, Reply, call_object, request, serve_rest
from wcsgw.api.restcalls import RestApi
from wcsgw.api.restcluster import ClusterRest
from wcsgw.calls.errors import CallError, Codes
from wcsgw.cluster import forward
from wcsgw.cluster.forwardroute import Route, after_lookup, merge_lists, route
from wcsgw.cluster.nodes import Node

SECRET = "0123456789abcdef-cluster"
TOKEN = "operator-token"
AUTH = {"authorization": f"Bearer {TOKEN}"}


class SignatureTests(unittest.TestCase):
    body = b'{"callId":"c1"}'

    nonce = "0f" * 12

    def signed(self) -> bytes:
        return forward.sign(SECRET, "node-b", "POST", "/call/terminate", self.body, 1000.0,
                            nonce=self.nonce)

    def test_good(self) -> None:
        header = self.signed()
        checked = forward.verify(SECRET, header, "POST", "/call/terminate", self.body, 1010.0)
        self.assertEqual(checked, forward.Signed("node-b", 1000, self.nonce))
        self.assertNotIn(SECRET.encode(), header)

    def test_wrong_secret(self) -> None:
        with self.assertRaisesRegex(forward.SignatureError, "does not match"):
            forward.verify(SECRET + "x", self.signed(), "POST", "/call/terminate", self.body,
                           1000.0)

    def test_stale_and_future(self) -> None:
        for now in (1000.0 + forward.WINDOW + 1, 1000.0 - forward.WINDOW - 1):
            with self.assertRaisesRegex(forward.SignatureError, "time window"):
                forward.verify(SECRET, self.signed(), "POST", "/call/terminate", self.body, now)
        forward.verify(SECRET, self.signed(), "POST", "/call/terminate", self.body,
                       1000.0 + forward.WINDOW)

    def test_replayed_with_another_body_path_method_or_node(self) -> None:
        header = self.signed()
        for method, path, body, head in (
                ("POST", "/call/terminate", b'{"callId":"c2"}', header),
                ("POST", "/call/hold", self.body, header),
                ("GET", "/call/terminate", self.body, header),
                ("POST", "/call/terminate", self.body, header.replace(b"node-b", b"node-c")),
                ("POST", "/call/terminate", self.body, header.replace(b"n=0f", b"n=1f"))):
            with self.assertRaisesRegex(forward.SignatureError, "does not match"):
                forward.verify(SECRET, head, method, path, body, 1000.0)

    def test_malformed(self) -> None:
        good = self.signed()
        for header in (b"", b"t=1000", good + b",extra=1", b"t=x,node=a,n=" + b"0" * 16 + b",v1=0",
                       b"t=1000,t=1000,node=a,v1=00", "t=1,node=\u00e9,v1=0".encode(),
                       b"t=1000,node=a,n=short,v1=00", b"t=1000,node=a,v1=00",
                       b"v1=" + b"0" * 600):
            with self.assertRaises(forward.SignatureError):
                forward.verify(SECRET, header, "POST", "/call/terminate", self.body, 1000.0)

    def test_each_request_is_accepted_once(self) -> None:
        guard = forward.ReplayGuard(capacity=2)
        first = forward.verify(SECRET, self.signed(), "POST", "/call/terminate", self.body, 1000.0)
        guard.admit(first, 1000.0)
        with self.assertRaisesRegex(forward.SignatureError, "replayed"):
            guard.admit(first, 1005.0)
        # the same request signed twice in one second: two nonces, two requests
        again = forward.sign(SECRET, "node-b", "POST", "/call/terminate", self.body, 1000.0)
        guard.admit(forward.verify(SECRET, again, "POST", "/call/terminate", self.body, 1000.0),
                    1000.0)
        third = forward.Signed("node-b", 1000, "ab" * 8)
        with self.assertRaisesRegex(forward.SignatureError, "too many"):
            guard.admit(third, 1000.0 + forward.WINDOW)  # full, nothing expired yet: refused
        guard.admit(third, 1000.0 + forward.WINDOW + 1)  # the old ones expired: forgotten
        self.assertEqual(len(guard), 1)

    def test_a_node_id_that_would_break_the_header_is_refused(self) -> None:
        with self.assertRaises(ValueError):
            forward.sign(SECRET, "a,node=b", "POST", "/call/find", b"{}", 1.0)


class RouteTests(unittest.TestCase):
    def test_first_step(self) -> None:
        here = {"mine"}.__contains__
        cases = [
            ("/call/terminate", {"callId": "mine"}, False, Route.LOCAL),
            ("/call/terminate", {"callId": "theirs"}, False, Route.OWNER),
            ("/call/ladder", {"callId": "theirs"}, False, Route.OWNER),
            ("/call/record", {"callId": "theirs"}, False, Route.OWNER),
            ("/call/find", {"callId": "theirs"}, False, Route.OWNER),
            ("/call/find", {"status": "ESTABLISHED"}, False, Route.FAN_OUT),
            ("/call/find_all", {}, False, Route.FAN_OUT),
            ("/call/startup", {"callId": "theirs", "callee": "echo"}, False, Route.LOCAL),
            ("/call/hold", {}, False, Route.LOCAL),  # its field check answers here
            ("/call/hold", {"callId": 7}, False, Route.LOCAL),
            ("/cdr/find", {"callId": "theirs"}, False, Route.LOCAL),
            # handed over by another node: never handed on (no loops), never fanned out
            ("/call/terminate", {"callId": "theirs"}, True, Route.LOCAL),
            ("/call/find_all", {}, True, Route.LOCAL),
        ]
        for path, body, handed_over, expected in cases:
            self.assertEqual(route(path, body, handed_over=handed_over, held_here=here),
                             expected, (path, body, handed_over))

    def test_after_lookup(self) -> None:
        b = Node("b", "http://b")
        self.assertEqual(after_lookup(b, "a", lost=False), Route.OWNER)
        self.assertEqual(after_lookup(Node("a", "http://a"), "a", lost=False), Route.LOCAL)
        self.assertEqual(after_lookup(None, "a", lost=False), Route.LOCAL)
        self.assertEqual(after_lookup(None, "a", lost=True), Route.LOST)

    def test_merge(self) -> None:
        self.assertEqual(merge_lists([[{"callId": "1"}], None, {"error": "x"}, [{"callId": "2"}]]),
                         [{"callId": "1"}, {"callId": "2"}])


class FakeCluster:
    """The cluster state's interface (docs/scaling.md) over plain dicts shared by the nodes."""

    def __init__(self, node: Node, owners: dict[str, Node], live: list[Node],
                 lost: dict[str, dict[str, Any]]) -> None:
        self.node_id, self.internal_url, self.secret = node.node_id, node.internal_url, SECRET
        self.owners, self.live, self.lost = owners, live, lost

    def owner_of_call(self, call_id: str) -> defer.Deferred[Node | None]:
        return defer.succeed(self.owners.get(call_id))

    def live_nodes(self) -> defer.Deferred[list[Node]]:
        return defer.succeed(list(self.live))

    def lost_call(self, call_id: str) -> defer.Deferred[dict[str, Any] | None]:
        return defer.succeed(self.lost.get(call_id))


class TwoNodesTests(unittest.TestCase):
    """Nodes a and b, each a REST API with the operator's token; b holds call cb."""

    def setUp(self) -> None:
        self.a, self.b = FakeCallGateway(), FakeCallGateway()
        self.a.calls["ca"] = call_object("ca")
        self.b.calls["cb"] = call_object("cb")
        url_a = serve_rest(self, self.a, (TOKEN,))
        url_b = serve_rest(self, self.b, (TOKEN,))
        self.node_a = Node("a", url_a.removesuffix("/rest-api"))
        self.node_b = Node("b", url_b.removesuffix("/rest-api"))
        self.owners = {"ca": self.node_a, "cb": self.node_b}
        self.live = [self.node_a, self.node_b]
        self.lost: dict[str, dict[str, Any]] = {}
        self.a.cluster = FakeCluster(self.node_a, self.owners, self.live, self.lost)
        self.b.cluster = FakeCluster(self.node_b, self.owners, self.live, self.lost)
        self.url_a, self.url_b = url_a, url_b
        self.logged: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(self.logged.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.logged.append)

    async def on_a(self, path: str, body: Any, **kwargs: Any) -> Reply:
        return await request(self, self.url_a + path, body, headers=AUTH, **kwargs)

    @inline
    async def test_in_call_functions_reach_the_owner(self) -> None:
        for path, body, logged in (
                ("/call/send_dtmf", {"callId": "cb", "dtmf": "12#"},
                 ("send_dtmf", (None, "cb", "12#", "RFC2833"))),
                ("/call/hold", {"callId": "cb"}, ("hold", (None, "cb"))),
                ("/call/unhold", {"callId": "cb"}, ("unhold", (None, "cb"))),
                ("/call/transfer", {"callId": "cb", "target": "1003"},
                 ("transfer", (None, "cb", "1003"))),
                ("/call/terminate", {"callId": "cb"}, ("terminate", "cb"))):
            reply = await self.on_a(path, body)
            self.assertEqual((reply.status, reply.json), (200, {}), path)
            self.assertEqual(self.b.log[-1], logged)
        self.assertEqual(self.a.log, [])

    @inline
    async def test_find_names_the_node(self) -> None:
        reply = await self.on_a("/call/find", {"callId": "cb"})
        self.assertEqual(reply.status, 200, reply.raw)
        self.assertEqual([(c["callId"], c["node"]) for c in reply.json], [("cb", "b")])
        reply = await self.on_a("/call/find", {"callId": "ca"})
        self.assertEqual([(c["callId"], c["node"]) for c in reply.json], [("ca", "a")])

    @inline
    async def test_find_all_and_filtered_find_merge_every_node(self) -> None:
        reply = await self.on_a("/call/find_all", {})
        self.assertEqual(reply.status, 200, reply.raw)
        self.assertEqual(sorted((c["callId"], c["node"]) for c in reply.json),
                         [("ca", "a"), ("cb", "b")])
        self.b.calls["cb"]["callee"] = "4242"
        reply = await self.on_a("/call/find", {"callee": "4242"})
        self.assertEqual([(c["callId"], c["node"]) for c in reply.json], [("cb", "b")])
        reply = await self.on_a("/call/find", {"callee": "nobody"})
        self.assertEqual(reply.status, 404)

    @inline
    async def test_a_node_that_does_not_answer_is_left_out_and_named(self) -> None:
        port = reactor.listenTCP(0, Factory(), interface="127.0.0.1")
        dead_url = f"http://127.0.0.1:{port.getHost().port}"
        await port.stopListening()  # nothing listens there now: refused
        self.live.append(Node("c", dead_url))
        reply = await self.on_a("/call/find_all", {})
        self.assertEqual(sorted(c["callId"] for c in reply.json), ["ca", "cb"])
        said = [e for e in self.logged if e.get("log_format", "").startswith("rest {path}: node")]
        self.assertEqual([e["node"] for e in said], ["c"])
        self.owners["cc"] = Node("c", dead_url)
        reply = await self.on_a("/call/terminate", {"callId": "cc"})
        self.assertEqual((reply.status, reply.json["field"]), (502, "callId"))

    @inline
    async def test_a_node_that_accepts_but_never_answers_times_out(self) -> None:
        """A node that is up but stuck (accepts, never replies): left out after the timeout,
        its connection closed, the reply still comes."""
        silent = Factory.forProtocol(Protocol)
        port = reactor.listenTCP(0, silent, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        stuck = Node("s", f"http://127.0.0.1:{port.getHost().port}")
        self.live.append(stuck)
        self.owners["cs"] = stuck
        api = ClusterRest(RestApi(self.a), self.a.cluster, reactor, timeout=0.3)
        reply = await api.handle("/call/find_all", {}, peer=None, handed_over=False)
        self.assertEqual(sorted(c["callId"] for c in reply.body), ["ca", "cb"])
        reply = await api.handle("/call/hold", {"callId": "cs"}, peer=None, handed_over=False)
        self.assertEqual((reply.status, reply.body["field"]), (502, "callId"))
        said = [e for e in self.logged if e.get("node") == "s" and e.get("log_level")]
        self.assertEqual(len(said), 2, said)

    @inline
    async def test_the_owners_refusal_comes_back_unchanged(self) -> None:
        self.b.fail["hold"] = CallError(Codes.BAD_STATE, "the call is not established", "callId")
        reply = await self.on_a("/call/hold", {"callId": "cb"})
        direct = await request(self, self.url_b + "/call/hold", {"callId": "cb"}, headers=AUTH)
        self.assertEqual((reply.status, reply.raw), (409, direct.raw))

    @inline
    async def test_a_dead_nodes_call(self) -> None:
        self.owners.pop("cb")
        self.b.calls.pop("cb")
        self.lost["cb"] = call_object("cb", status="FAILED", info="Node b lost", node="b")
        reply = await self.on_a("/call/find", {"callId": "cb"})
        self.assertEqual(reply.status, 200, reply.raw)
        self.assertEqual([(c["status"], c["info"]) for c in reply.json], [("FAILED", "Node b lost")])
        reply = await self.on_a("/call/terminate", {"callId": "cb"})
        self.assertEqual((reply.status, reply.json["field"]), (410, "callId"))
        reply = await self.on_a("/call/terminate", {"callId": "nowhere"})
        self.assertEqual((reply.status, reply.json["field"]), (404, "callId"))

    @inline
    async def test_an_ended_calls_ladder_from_the_node_that_keeps_it(self) -> None:
        """An ended call has no owner in the cluster; its node still has its ladder."""
        def ladders(kept: dict[str, list[dict[str, Any]]]) -> Any:
            def entries(session_id: str | None, call_id: str) -> list[dict[str, Any]]:
                if call_id not in kept:
                    raise CallError(Codes.UNKNOWN_CALL, f"no call {call_id}", "callId")
                return kept[call_id]
            return SimpleNamespace(entries=entries)
        self.a.ladders = ladders({"ca-old": [{"label": "INVITE", "from": "a"}]})
        self.b.ladders = ladders({"cb-old": [{"label": "INVITE", "from": "b"}]})
        for call_id, side in (("cb-old", "b"), ("ca-old", "a")):
            reply = await self.on_a("/call/ladder", {"callId": call_id})
            self.assertEqual((reply.status, reply.json), (200, [{"label": "INVITE", "from": side}]))
        reply = await self.on_a("/call/ladder", {"callId": "nowhere"})
        self.assertEqual((reply.status, reply.json["field"]), (404, "callId"))

    @inline
    async def test_startup_stays_here(self) -> None:
        reply = await self.on_a("/call/startup", {"callId": "cb2", "callee": "echo"})
        self.assertEqual(reply.status, 200, reply.raw)
        self.assertIn("cb2", self.a.calls)
        self.assertEqual(self.b.log, [])

    def signed(self, path: str, body: bytes, secret: str = SECRET, node: str = "a") -> dict[str, str]:
        header = forward.sign(secret, node, "POST", path, body, reactor.seconds())
        return {"x-wcsgw-cluster": header.decode()}

    @inline
    async def test_a_signed_request_stands_for_the_token_only_when_good(self) -> None:
        raw = json.dumps({"callId": "cb"}).encode()
        good = await request(self, self.url_b + "/call/hold", raw=raw,
                             headers=self.signed("/call/hold", raw))
        self.assertEqual(good.status, 200, good.raw)
        for headers in (self.signed("/call/hold", raw, secret=SECRET + "!"),
                        self.signed("/call/unhold", raw), {}):
            bad = await request(self, self.url_b + "/call/hold", raw=raw, headers=headers)
            self.assertEqual(bad.status, 401, headers)
        # the very same request again (a capture replayed within the window): refused
        replayed = self.signed("/call/unhold", raw)
        first = await request(self, self.url_b + "/call/unhold", raw=raw, headers=replayed)
        again = await request(self, self.url_b + "/call/unhold", raw=raw, headers=replayed)
        self.assertEqual((first.status, again.status), (200, 401))
        self.assertEqual(self.b.log.pop(), ("unhold", (None, "cb")))
        # only the routes nodes hand each other: not startup, drain, the operations
        for path in ("/call/startup", "/gateway/drain", "/session/find_all"):
            body = json.dumps({"callee": "echo"} if path == "/call/startup" else {}).encode()
            refused = await request(self, self.url_b + path, raw=body,
                                    headers=self.signed(path, body))
            self.assertEqual(refused.status, 401, path)
        self.assertEqual(self.b.log, [("hold", (None, "cb"))])
        values = [str(v) for e in self.logged for v in e.values()]
        self.assertFalse([v for v in values if "v1=" in v])  # the header's value is never logged

    @inline
    async def test_a_handed_over_request_is_never_handed_on(self) -> None:
        raw = json.dumps({"callId": "cb"}).encode()
        # a believes it holds nothing: a request b signed for cb must not go back to b
        reply = await request(self, self.url_a + "/call/terminate", raw=raw,
                              headers=self.signed("/call/terminate", raw, node="b"))
        self.assertEqual((reply.status, reply.json["field"]), (404, "callId"))
        self.assertEqual(self.b.log, [])
        # and a handed-over find_all answers for this node's calls alone
        raw = b"{}"
        reply = await request(self, self.url_a + "/call/find_all", raw=raw,
                              headers=self.signed("/call/find_all", raw, node="b"))
        self.assertEqual([(c["callId"], c["node"]) for c in reply.json], [("ca", "a")])


class WithoutClusterTests(unittest.TestCase):
    """No ``gateway.cluster``: the signature header means nothing, no ``node`` appears."""

    @inline
    async def test_nothing_changes(self) -> None:
        gateway = FakeCallGateway()
        gateway.calls["c1"] = call_object("c1")
        url = serve_rest(self, gateway, (TOKEN,))
        raw = b"{}"
        header = forward.sign(SECRET, "a", "POST", "/call/find_all", raw, reactor.seconds())
        refused = await request(self, url + "/call/find_all", raw=raw,
                                headers={"x-wcsgw-cluster": header.decode()})
        self.assertEqual(refused.status, 401)
        reply = await request(self, url + "/call/find_all", raw=raw, headers=AUTH)
        self.assertEqual(reply.json, [call_object("c1")])
