"""The whole cluster on loopback (issue 17, item 6): Redis, Kamailio (registrar + dispatcher),
HAProxy and two gateway processes sharing state, and a baresip phone.

Each node is a real ``twistd`` process from ONE config file with its ports and name in its
environment (tests/test_cluster_e2e_front.py's ``Node``), ``[cluster] redis_url`` and
``secret`` set, and the same server-held account ``main`` (1001 at Kamailio) to place REST
calls from.  One test walks the story, sharing the one topology (starting it costs more than
the checks):

1. REST on node A ends a call node B holds: the phone heard B's 1 kHz file (FFT), A's
   ``call/find`` shows the call with ``node`` "b", A's ``call/terminate`` ends it (the phone
   sees the BYE).
2. B drained (SIGTERM) with a call up: HAProxy and the dispatcher take it out at once (its
   503s), A still finds the call up past the time a dead node's calls are declared lost, the
   call ends by the phone's hangup, B exits 0 and restarts.
3. kill -9 of B with a call up: within seconds A reports the call ``FAILED`` "Node b lost",
   HAProxy has taken B out and Kamailio's dispatcher marks it inactive; a new REST call through
   HAProxy is placed by A.
"""

from __future__ import annotations

import json
import secrets
import signal
from pathlib import Path
from typing import Any

from twisted.internet import reactor, task

from tests.peers.baresip import Baresip, write_tone
from tests.peers.dispatcher import Dispatcher
from tests.peers.redis import RedisServer
from tests.support import assert_near
from tests.test_cluster_e2e_front import SHARED_CONFIG, start_balancer, start_nodes
from tests.test_drain_process import http, tail_hz, until
from tests.test_twistd import TwistdTestCase


def rest(port: int, route: str, body: dict[str, Any]) -> tuple[int, Any]:
    status, raw = http(port, f"/rest-api/{route}", body)
    return status, json.loads(raw) if raw else None


class ClusterTests(TwistdTestCase):
    timeout = 180

    async def test_rest_across_nodes_a_drain_and_a_node_killed(self) -> None:
        redis = RedisServer()
        self.addCleanup(redis.stop)
        await redis.start()
        kam = Dispatcher([], ping=1)  # the nodes' SIP ports are known once they exist
        media = self.tmpdir()
        write_tone(Path(media) / "tone1k.wav", 1000.0, seconds=60.0)
        config = SHARED_CONFIG + (
            f'[rest]\nmedia_folder = "{media}"\n'
            f'[cluster]\nredis_url = "{redis.url}"\nsecret = "{secrets.token_hex(16)}"\n'
            f'[[accounts]]\nname = "main"\nlogin = "1001"\npassword = "pass1001"\n'
            f'domain = "127.0.0.1"\nport = {kam.port}\nexpires = 600\n')
        nodes = await start_nodes(self, config)
        a, b = nodes
        lb = await start_balancer(self, nodes, kam)
        await kam.until_active({"a": True, "b": True})

        tone = write_tone(Path(self.tmpdir()) / "mic440.wav", 440.0, seconds=60.0)
        phone = Baresip("1002", "pass1002", registrar_port=kam.port, outbound=True, tone=tone)
        self.addCleanup(phone.stop)  # added after Kamailio's: runs first
        await phone.start()
        await phone.registered()

        # 1. A call on B; A sees it (node "b") and ends it.
        status, body = rest(b.http_port, "call/startup",
                            {"account": "main", "callee": "1002", "playFile": "tone1k.wav"})
        self.assertEqual(status, 200, body)
        call_b = body["callId"]
        await phone.wait_event("CALL_ESTABLISHED", since=0)
        mark = phone.mark()
        status, found = rest(a.http_port, "call/find", {"callId": call_b})
        self.assertEqual(status, 200, found)
        self.assertEqual([(c["callId"], c["node"], c["status"]) for c in found],
                         [(call_b, "b", "ESTABLISHED")])
        await until(lambda: bool(phone.recordings()), "the phone records")
        await task.deferLater(reactor, 2.0, lambda: None)  # two seconds of the file
        status, answer = rest(a.http_port, "call/terminate", {"callId": call_b})
        self.assertEqual((status, answer), (200, {}))
        await phone.wait_event("CALL_CLOSED", since=mark)
        [heard] = phone.recordings()
        frequency, level = tail_hz(heard, 1.5)
        assert_near(self, frequency, 1000, 10)
        self.assertGreater(level, 300)

        # 2. Another call on B; B drains (SIGTERM): both fronts take it out at once (its
        # /health and OPTIONS answer 503), but its call is not lost: A still finds it up past
        # the time a dead node's calls are declared lost; it ends by the phone's hangup, then
        # B exits 0 and the cluster forgets the call.  B restarts on the same ports.
        status, body = rest(b.http_port, "call/startup",
                            {"account": "main", "callee": "1002", "playFile": "tone1k.wav"})
        self.assertEqual(status, 200, body)
        call_drained = body["callId"]
        await phone.wait_event("CALL_ESTABLISHED", since=mark)
        mark = phone.mark()
        b.signal(signal.SIGTERM)
        await lb.until_state("b", "DOWN")
        await kam.until_active({"a": True, "b": False})
        assert b.process is not None
        self.assertIsNone(b.process.proc.poll())  # alive: out of both fronts by its 503s
        for _ in range(16):  # 8 s > beat + expiry + check (6 s): never reported lost
            status, found = rest(a.http_port, "call/find", {"callId": call_drained})
            self.assertEqual((status, [(c["status"], c["node"]) for c in found]),
                             (200, [("ESTABLISHED", "b")]))
            await task.deferLater(reactor, 0.5, lambda: None)
        await phone.command("hangup")
        await phone.wait_event("CALL_CLOSED", since=mark)
        self.assertEqual(await b.process.wait_exit(timeout=20), 0, b.process.output)
        status, _ = rest(a.http_port, "call/find", {"callId": call_drained})
        self.assertEqual(status, 404)
        await b.start()
        await lb.until_state("b", "UP")
        await kam.until_active({"a": True, "b": True})
        mark = phone.mark()

        # 3. Another call on B; kill -9 of B.
        status, body = rest(b.http_port, "call/startup",
                            {"account": "main", "callee": "1002", "playFile": "tone1k.wav"})
        self.assertEqual(status, 200, body)
        call_lost = body["callId"]
        await phone.wait_event("CALL_ESTABLISHED", since=mark)
        mark = phone.mark()
        started = reactor.seconds()
        b.signal(signal.SIGKILL)

        last: list[Any] = []

        def reported_lost() -> bool:
            status, found = rest(a.http_port, "call/find", {"callId": call_lost})
            last[:] = [status, found]
            return status == 200 and [(c["status"], c["info"]) for c in found] == [
                ("FAILED", "Node b lost")]

        try:
            await until(reported_lost, "A reports B's call lost", timeout=15)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; A's last answer {last}; A's log:\n"
                                 f"{a.process.output[-6000:]}") from None
        self.assertLess(reactor.seconds() - started, 10.0)  # beat + expiry + check = 6 s
        status, answer = rest(a.http_port, "call/terminate", {"callId": call_lost})
        self.assertEqual(status, 410, answer)
        await lb.until_state("b", "DOWN")
        await kam.until_active({"a": True, "b": False})
        # a new call through HAProxy: A places it
        status, body = rest(lb.port, "call/startup",
                            {"account": "main", "callee": "1002", "playFile": "tone1k.wav"})
        self.assertEqual(status, 200, body)
        status, found = rest(lb.port, "call/find", {"callId": body["callId"]})
        self.assertEqual((status, found[0]["node"]), (200, "a"))
        assert a.process is not None
        self.assertNotIn("Traceback", a.process.output)
