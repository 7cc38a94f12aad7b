"""A rolling restart of a gateway pair loses no call (issue 15, item 2, "done when").

Two gateway processes, A and B, both registered at one Kamailio as the server-held account
1001 and placing REST ``playFile`` calls (1 kHz) to baresip phones.  The test's client is what
an operator's dispatcher does: it asks the gateways in order and takes the first that does not
refuse.  A call goes up on A; A drains (SIGTERM); the next call is refused by A (503 ``Gateway
draining``) and goes to B; A's call carries on until its phone hangs up, then A unregisters and
exits 0.  A restarts (same ports); B drains (REST ``gateway/drain``); the next call is refused
by B and goes to the new A; B's call finishes, B exits 0.  Every call ends by its phone's own
hangup — no phone saw its call closed before the test hung it up — and every phone heard the
file's 1 kHz in its last two seconds."""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path

from twisted.internet import reactor, task

from tests.peers.baresip import Baresip, write_tone
from tests.peers.kamailio import Kamailio
from tests.peers.ports import free_port
from tests.support import assert_near, inline
from tests.test_drain_process import http, tail_hz, until
from tests.test_twistd import Gateway, TwistdTestCase, _write


class Node:
    """One gateway of the pair: its ports and config stay, its process may be restarted."""

    def __init__(self, case: "RollingRestartTests", name: str, media: str, kam_port: int) -> None:
        self.case, self.name = case, name
        self.http_port, self.sip_port = free_port("tcp"), free_port("udp+tcp")
        first = free_port("udp", span=40)
        config = (f'[http]\nlisten = "127.0.0.1"\nport = {self.http_port}\n'
                  f'[sip]\nlisten = "127.0.0.1"\nport = {self.sip_port}\n'
                  f'[media]\nport_min = {first}\nport_max = {first + 39}\n'
                  f'[rest]\nmedia_folder = "{media}"\n'
                  f'[limits]\ndrain_seconds = 600\nmax_loop_lag_ms = 0\nmax_cpu_percent = 0\n'
                  f'[[accounts]]\nname = "main"\nlogin = "1001"\npassword = "pass1001"\n'
                  f'domain = "127.0.0.1"\nport = {kam_port}\nexpires = 600\n')
        self.config = _write(case.tmpdir(), f"{name}.toml", config)
        self.process: Gateway | None = None
        #: every process this node ran (a restart adds one)
        self.processes: list[Gateway] = []

    async def start(self) -> None:
        self.process = Gateway(self.case, ["-n", "--pidfile=", "--logfile=-", "wcsgw",
                                           "--config", self.config])
        self.processes.append(self.process)
        await self.process.wait_health(self.http_port)

    def startup(self, callee: str) -> tuple[int, dict]:
        status, body = http(self.http_port, "/rest-api/call/startup",
                            {"account": "main", "callee": callee, "playFile": "tone1k.wav"})
        return status, json.loads(body)

    async def exit_code(self) -> int:
        assert self.process is not None
        return await self.process.wait_exit(timeout=20)


class RollingRestartTests(TwistdTestCase):
    timeout = 180

    async def phone(self, user: str) -> Baresip:
        # baresip ends a call when its microphone file ends: one longer than the test
        tone = write_tone(Path(self.tmpdir()) / "mic440.wav", 440.0, seconds=60.0)
        phone = Baresip(user, f"pass{user}", registrar_port=self.kam.port, outbound=True,
                        tone=tone)
        self.addCleanup(phone.stop)  # added after Kamailio's: runs first
        await phone.start()
        await phone.registered()
        return phone

    def place(self, nodes: list[Node], callee: str) -> tuple[Node, str, list[tuple[str, int]]]:
        """The client: the first gateway that takes the call; the refusals on the way."""
        refused = []
        for node in nodes:
            status, body = node.startup(callee)
            if status == 200:
                return node, body["callId"], refused
            self.assertEqual((status, body), (503, {"error": "Gateway draining"}))
            refused.append((node.name, status))
        raise AssertionError(f"no gateway took the call to {callee}: {refused}")

    async def contacts(self) -> set[int]:
        """The SIP ports of 1001's bindings at Kamailio: which gateways are registered."""
        rows = await self.kam.bindings("1001")
        return {int(m.group(1)) for row in rows
                if (m := re.search(r"@[^:;>]+:(\d+)", row["contact"])) is not None}

    async def registered(self, *nodes: Node) -> None:
        ports = {node.sip_port for node in nodes}
        for _ in range(100):
            if await self.contacts() == ports:
                return
            await task.deferLater(reactor, 0.05, lambda: None)
        self.assertEqual(await self.contacts(), ports, self.kam.log_tail())

    async def established(self, phone: Baresip, since: int) -> int:
        """The phone answered; returns the mark after its CALL_ESTABLISHED."""
        await phone.wait_event("CALL_ESTABLISHED", since=since)
        return phone.mark()

    async def hang_up(self, phone: Baresip, since: int) -> None:
        """The phone ends its call itself — after checking nobody else ended it first."""
        closed = [e for e in phone.events[since:] if e.get("type") == "CALL_CLOSED"]
        self.assertEqual(closed, [], f"{phone.user}'s call was ended by someone else")
        mark = phone.mark()
        await phone.command("hangup")
        await phone.wait_event("CALL_CLOSED", since=mark)

    def heard_the_file(self, phone: Baresip) -> None:
        [heard] = phone.recordings()
        frequency, level = tail_hz(heard, 2.0)
        assert_near(self, frequency, 1000, 10)
        self.assertGreater(level, 300)

    @inline
    async def test_rolling_restart_of_a_pair_loses_no_call(self) -> None:
        self.kam = Kamailio()
        self.addCleanup(self.kam.stop)
        await self.kam.start()
        media = self.tmpdir()
        write_tone(Path(media) / "tone1k.wav", 1000.0, seconds=30.0)
        first, second, third = (await self.phone("1002"), await self.phone("1003"),
                                await self.phone("1004"))
        a, b = Node(self, "A", media, self.kam.port), Node(self, "B", media, self.kam.port)
        await a.start()
        await b.start()
        await self.registered(a, b)

        # A call on A; A drains (SIGTERM, as an init system stopping it).
        node, call_a, refused = self.place([a, b], "1002")
        self.assertEqual((node, refused), (a, []))
        mark_a = await self.established(first, 0)
        assert a.process is not None
        os.killpg(a.process.proc.pid, signal.SIGTERM)
        await until(lambda: http(a.http_port, "/health")[0] == 503, "A draining")

        # The next call: A refuses it, B takes it.
        node, call_b, refused = self.place([a, b], "1003")
        self.assertEqual((node, refused), (b, [("A", 503)]))
        mark_b = await self.established(second, 0)
        await task.deferLater(reactor, 2.0, lambda: None)  # both calls' media for a while

        # A's call finishes normally; then A unregisters and exits 0 — B stays registered.
        self.assertIsNone(a.process.proc.poll())
        await self.hang_up(first, mark_a)
        self.assertEqual(await a.exit_code(), 0, a.process.output)
        self.assertEqual(await self.contacts(), {b.sip_port})
        self.heard_the_file(first)

        # A restarts; B drains (REST, as a deploy script would); the next call goes to A.
        await a.start()
        await self.registered(a, b)
        status, body = http(b.http_port, "/rest-api/gateway/drain", {})
        self.assertEqual((status, json.loads(body)["status"], json.loads(body)["calls"]),
                         (200, "draining", 1))
        node, call_c, refused = self.place([b, a], "1004")
        self.assertEqual((node, refused), (a, [("B", 503)]))
        mark_c = await self.established(third, 0)
        await task.deferLater(reactor, 2.0, lambda: None)

        assert b.process is not None
        await self.hang_up(second, mark_b)
        self.assertEqual(await b.exit_code(), 0, b.process.output)
        self.assertEqual(await self.contacts(), {a.sip_port})
        self.heard_the_file(second)

        await self.hang_up(third, mark_c)
        self.heard_the_file(third)
        assert a.process is not None
        os.killpg(a.process.proc.pid, signal.SIGTERM)  # no call left: it stops at once
        self.assertEqual(await a.exit_code(), 0, a.process.output)
        for process in a.processes + b.processes:
            self.assertNotIn("Traceback", process.output)
        self.assertEqual((len(a.processes), len(b.processes)), (2, 1))
        self.assertEqual(len({call_a, call_b, call_c}), 3)
