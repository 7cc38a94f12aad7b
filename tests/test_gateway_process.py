"""The gateway process speaking SIP: the documented example config answers OPTIONS over UDP
and TCP, and SIGTERM un-registers the configured accounts at a real Kamailio."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from twisted.internet import reactor, task
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol

from tests.peers.kamailio import Kamailio
from tests.peers.ports import free_port
from tests.support import inline
from tests.test_front_door import TcpClient, UdpClient, options
from tests.test_twistd import Gateway, TwistdTestCase, _config, _write

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "example.toml"


class GatewaySipTests(TwistdTestCase):
    async def options_over_udp(self, port: int) -> int:
        client = UdpClient()
        listening = reactor.listenUDP(0, client, interface="127.0.0.1")
        self.addCleanup(listening.stopListening)
        # The process may still be binding: ask again until it answers (bounded).
        for attempt in range(50):
            client.transport.write(options(f"udp{attempt}"), ("127.0.0.1", port))
            try:
                reply = await client.answers.wait_for(lambda r: not isinstance(r, bytes), timeout=0.2)
                return reply.status
            except AssertionError:
                continue
        raise AssertionError("no answer to OPTIONS over UDP")

    async def options_over_tcp(self, port: int) -> bytes:
        client = TcpClient()
        await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), client)
        client.transport.write(options("tcp1", "TCP"))
        await client.answers.wait_for(lambda _d: b"\r\n\r\n" in client.received)
        client.transport.loseConnection()
        await client.lost
        return client.received

    @inline
    async def test_example_config_answers_options_and_stops(self) -> None:
        http_port, sip_port = free_port("tcp"), free_port("udp+tcp")
        gateway = Gateway(self, ["-n", "--pidfile=", "--logfile=-", "wcsgw", "--config", str(EXAMPLE)],
                          env={"WCSGW_HTTP_PORT": str(http_port), "WCSGW_SIP_PORT": str(sip_port)})
        await gateway.wait_health(http_port)
        self.assertEqual(await self.options_over_udp(sip_port), 200)
        tcp_reply = await self.options_over_tcp(sip_port)
        self.assertTrue(tcp_reply.startswith(b"SIP/2.0 200 OK\r\n"), tcp_reply)
        os.killpg(gateway.proc.pid, signal.SIGTERM)
        self.assertIn(await gateway.wait_exit(), (0, -signal.SIGTERM), gateway.output)
        self.assertNotIn("Traceback", gateway.output)

    @inline
    async def test_sigterm_unregisters_at_kamailio(self) -> None:
        kam = Kamailio()
        self.addCleanup(kam.stop)
        await kam.start()
        http_port, sip_port = free_port("tcp"), free_port("udp+tcp")
        account = (f'[[accounts]]\nlogin = "1002"\npassword = "pass1002"\n'
                   f'domain = "127.0.0.1"\nport = {kam.port}\nexpires = 600\n')
        path = _write(self.tmpdir(), "gw.toml", _config(http_port, sip_port, account))
        gateway = Gateway(self, ["-n", "--pidfile=", "--logfile=-", "wcsgw", "--config", path])
        await gateway.wait_health(http_port)

        # The registrar is the only witness outside the process: ask it until the binding is
        # there (bounded), then stop the gateway the way an init system does.
        rows: list = []
        for _ in range(100):
            rows = await kam.bindings("1002")
            if rows:
                break
            await task.deferLater(reactor, 0.05, lambda: None)
        self.assertEqual(len(rows), 1, kam.log_tail())
        self.assertIn(f"127.0.0.1:{sip_port}", rows[0]["contact"])
        self.assertGreater(rows[0]["expires"], 500)
        self.assertNotIn("pass1002", gateway.output)

        os.killpg(gateway.proc.pid, signal.SIGTERM)
        self.assertIn(await gateway.wait_exit(), (0, -signal.SIGTERM), gateway.output)
        self.assertEqual(await kam.bindings("1002"), [], kam.log_tail())
        self.assertNotIn("pass1002", gateway.output)
        self.assertNotIn("Traceback", gateway.output)
