"""SIP over TLS and the CRLF keep-alive (issue 14 items 1 and 5), without peers of others' making.

* :class:`KeepAliveClockTests` — the sans-IO :class:`CrlfKeepAlive` (RFC 5626 §4.4.1).
* :class:`KeepAliveStreamTests` — a :class:`SipStream` on a ``task.Clock``: pings on time, pongs
  answer them, a missing pong closes the connection and fails the flow's transactions.
* :class:`TlsConfigTests` — the ``[sip] tls_*`` keys: accepted, and bad files refused naming
  the key.
* :class:`TlsLoopbackTests` — two gateway SIP services on loopback, one listening on TLS with a
  certificate from the test CA: an OPTIONS goes over TLS (Via says TLS, one connection reused
  for two requests), and a wrong CA or a wrong name fails the request at once.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from twisted.internet import reactor, task
from twisted.internet.testing import StringTransport
from twisted.trial import unittest

from tests.peers.ports import free_port
from tests.peers.testca import make_ca
from tests.support import EventLog, inline
from wcsgw.config import ConfigError, SipSettings, parse_config
from wcsgw.sip.account import SipAccount
from wcsgw.sip.ids import new_call_id, new_tag
from wcsgw.sip.message import Request, Response
from wcsgw.sip.service import SipService
from wcsgw.sip.stream import SipStream
from wcsgw.sip.target import Target
from wcsgw.sip.tls import SipTls, TlsSetupError
from wcsgw.sip.transport import SipTransport
from wcsgw.sip.transportkeepalive import PING, CrlfKeepAlive, KeepAliveAction

FAST = dict(listen="127.0.0.1", port=0, t1=0.05, t2=0.4, t4=0.5)


class KeepAliveClockTests(unittest.TestCase):
    def test_ping_each_interval_while_pongs_come(self) -> None:
        ka = CrlfKeepAlive(30.0, now=100.0)
        self.assertEqual(ka.deadline(), 130.0)
        self.assertIs(ka.fire(129.9), KeepAliveAction.NOTHING)
        self.assertIs(ka.fire(130.0), KeepAliveAction.PING)
        self.assertEqual(ka.deadline(), 140.0)  # the pong is due within 10 s
        ka.pong(131.0)
        self.assertEqual(ka.deadline(), 161.0)  # next ping an interval after the pong
        self.assertIs(ka.fire(161.0), KeepAliveAction.PING)
        self.assertEqual(ka.pings_sent, 2)

    def test_missing_pong_is_a_dead_flow(self) -> None:
        ka = CrlfKeepAlive(30.0, now=0.0)
        self.assertIs(ka.fire(30.0), KeepAliveAction.PING)
        self.assertIs(ka.fire(39.9), KeepAliveAction.NOTHING)
        self.assertIs(ka.fire(40.0), KeepAliveAction.DEAD)
        self.assertTrue(ka.dead)
        self.assertIsNone(ka.deadline())
        ka.pong(41.0)  # too late: a dead flow stays dead
        self.assertIs(ka.fire(100.0), KeepAliveAction.NOTHING)

    def test_unasked_pong_changes_nothing(self) -> None:
        ka = CrlfKeepAlive(30.0, now=0.0)
        ka.pong(5.0)
        self.assertEqual(ka.deadline(), 30.0)

    def test_interval_must_be_positive(self) -> None:
        self.assertRaises(ValueError, CrlfKeepAlive, 0.0, 0.0)


class _Endpoint:
    """Just what SipTransport asks of an endpoint, noting transport errors."""

    def __init__(self) -> None:
        self.errors: list[Target] = []
        self.addresses = self
        self.wake: Any = None

    def transport_error(self, target: Target, now: float) -> None:
        self.errors.append(target)

    def take_outgoing(self) -> list[Any]:
        return []

    def take_lookups(self) -> list[str]:
        return []

    def next_deadline(self) -> None:
        return None


class KeepAliveStreamTests(unittest.TestCase):
    def setUp(self) -> None:
        self.clock = task.Clock()
        self.owner = SipTransport(self.clock, "127.0.0.1", 0,  # type: ignore[arg-type]
                                  keepalive_interval=30.0)
        self.endpoint = _Endpoint()
        self.owner.endpoint = self.endpoint  # type: ignore[assignment]
        self.named = Target("TCP", "proxy.example.test", 5060)
        self.wire = StringTransport()

    def connect(self, outbound: bool = True) -> SipStream:
        key = ("TCP", "192.168.1.1", 54321) if outbound else None
        stream = SipStream(self.owner, outbound_key=key, named=self.named if outbound else None)
        stream.makeConnection(self.wire)
        return stream

    def test_pings_on_time_and_pongs_keep_the_flow(self) -> None:
        stream = self.connect()
        self.clock.advance(29.0)
        self.assertEqual(self.wire.value(), b"")
        self.clock.advance(1.0)
        self.assertEqual(self.wire.value(), PING)
        stream.dataReceived(b"\r\n")  # the pong
        self.clock.advance(30.0)
        self.assertEqual(self.wire.value(), PING + PING)
        stream.dataReceived(b"\r\n")
        self.clock.advance(20.0)
        self.assertFalse(self.wire.disconnecting)
        self.assertEqual(self.endpoint.errors, [])

    def test_missing_pong_closes_and_fails_the_flow(self) -> None:
        stream = self.connect()
        self.assertIn(stream, self.owner.streams)
        self.clock.advance(30.0)
        self.assertEqual(self.wire.value(), PING)
        self.clock.advance(10.0)
        self.assertTrue(self.wire.disconnecting)  # aborted
        self.assertNotIn(stream, self.owner.streams)
        self.clock.advance(0)  # transport errors are reported in the next turn
        self.assertIn(self.named, self.endpoint.errors)
        self.assertIn(Target("TCP", "192.168.1.1", 54321), self.endpoint.errors)

    def test_inbound_connection_does_not_ping_but_answers_pings(self) -> None:
        stream = self.connect(outbound=False)
        self.clock.advance(300.0 - 1)
        self.assertEqual(self.wire.value(), b"")
        stream.dataReceived(PING)
        self.assertEqual(self.wire.value(), b"\r\n")

    def test_off_by_default(self) -> None:
        self.owner.keepalive_interval = SipSettings().keepalive_interval
        self.assertEqual(self.owner.keepalive_interval, 0)
        stream = self.connect()
        self.assertIsNone(stream.keepalive)
        self.clock.advance(1000.0)
        self.assertEqual(self.wire.value(), b"")


class TlsConfigTests(unittest.TestCase):
    def setUp(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="wcsgw-siptls-"))
        self.ca = make_ca(self.dir / "ca")
        self.cert, self.key = self.ca.issue(["localhost", "127.0.0.1"], self.dir)

    def refused(self, **keys: Any) -> str:
        with self.assertRaises(TlsSetupError) as caught:
            SipTls(SipSettings(**keys))
        return caught.exception.key

    def test_keys_parse_and_default_off(self) -> None:
        default = parse_config({}).sip
        self.assertEqual((default.tls_port, default.tls_cert, default.keepalive_interval),
                         (0, "", 0))
        sip = parse_config({"sip": {"tls_port": 5061, "tls_cert": "/c.pem", "tls_key": "/k.pem",
                                    "tls_ca": "/ca.pem", "keepalive_interval": 90}}).sip
        self.assertEqual((sip.tls_port, sip.tls_ca, sip.keepalive_interval),
                         (5061, "/ca.pem", 90))
        with self.assertRaises(ConfigError) as caught:
            parse_config({"sip": {"keepalive_interval": -1}})
        self.assertEqual(caught.exception.key, "sip.keepalive_interval")
        for clash in ({"sip": {"port": 5061}}, {"http": {"port": 5061}},
                      {"media": {"browser_port": 5061}}):
            with self.assertRaises(ConfigError) as caught:
                parse_config({**clash, "sip": {**clash.get("sip", {}), "tls_port": 5061}})
            self.assertEqual(caught.exception.key, "sip.tls_port")

    def test_account_transport_tls_defaults_to_5061(self) -> None:
        config = parse_config({"accounts": [{"login": "1001", "domain": "pbx.example.test",
                                             "transport": "tls"}]})
        self.assertEqual((config.accounts[0].transport, config.accounts[0].port), ("tls", 5061))
        account = SipAccount(login="1001", domain="pbx.example.test", transport="tls")
        self.assertEqual(account.next_hop(), ("pbx.example.test", 5061, "tls"))
        self.assertEqual(SipAccount(login="1", domain="d").port, 5060)

    def test_bad_files_refused_naming_the_key(self) -> None:
        self.assertEqual(self.refused(tls_ca=str(self.dir / "missing.pem")), "sip.tls_ca")
        self.assertEqual(self.refused(tls_ca=str(self.key)), "sip.tls_ca")  # no certificate
        self.assertEqual(self.refused(tls_port=5061), "sip.tls_cert")
        self.assertEqual(self.refused(tls_cert=str(self.cert)), "sip.tls_key")
        self.assertEqual(self.refused(tls_cert=str(self.cert), tls_key=str(self.cert)),
                         "sip.tls_key")
        _other_cert, other_key = self.ca.issue(["localhost"], self.dir)
        self.assertEqual(self.refused(tls_cert=str(self.cert), tls_key=str(other_key)),
                         "sip.tls_key")  # does not match
        self.assertEqual(self.refused(tls_client_cert=str(self.cert)), "sip.tls_client_key")

    def test_good_files_accepted(self) -> None:
        tls = SipTls(SipSettings(tls_port=5061, tls_cert=str(self.cert), tls_key=str(self.key),
                                 tls_ca=str(self.ca.cert_path)))
        self.assertIsNotNone(tls.server)
        self.assertIs(tls.client("localhost"), tls.client("localhost"))  # made once per name


class TlsLoopbackTests(unittest.TestCase):
    """Real sockets on loopback; each service is stopped by the test."""

    def setUp(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="wcsgw-siptls-"))
        self.ca = make_ca(self.dir / "ca")

    def service(self, **keys: Any) -> SipService:
        service = SipService(SipSettings(**{**FAST, **keys}))
        service.startService()
        self.addCleanup(service.stopService)
        return service

    def server(self, names: list[str]) -> SipService:
        cert, key = self.ca.issue(names, self.dir)
        return self.service(tls_port=free_port("tcp"), tls_cert=str(cert), tls_key=str(key))

    def options(self, client: SipService, host: str, port: int) -> EventLog:
        answers = EventLog()
        uri = f"sip:{host}:{port};transport=tls"
        request = Request("OPTIONS", uri, [
            ("From", f"<sip:tester@example.invalid>;tag={new_tag()}"), ("To", f"<{uri}>"),
            ("Call-ID", new_call_id("127.0.0.1")), ("CSeq", "1 OPTIONS")])
        assert client.endpoint is not None
        client.endpoint.send_request(request, Target("TLS", host, port), reactor.seconds(),
                                     lambda r, now: answers(r), lambda why, now: answers(why))
        return answers

    @inline
    async def test_options_over_verified_tls_reuses_the_connection(self) -> None:
        server = self.server(["localhost", "127.0.0.1"])
        assert server.transport is not None
        client = self.service(tls_ca=str(self.ca.cert_path))
        assert client.transport is not None
        first = await self.options(client, "127.0.0.1", server.transport.tls_port).wait_for(
            lambda e: True, timeout=5)
        self.assertIsInstance(first, Response)
        self.assertEqual(first.status, 200)
        self.assertEqual(first.headers.get("Via").split()[0], "SIP/2.0/TLS")
        second = await self.options(client, "127.0.0.1", server.transport.tls_port).wait_for(
            lambda e: True, timeout=5)
        self.assertEqual(second.status, 200)
        self.assertEqual(len(client.transport.streams), 1)  # one connection, reused
        self.assertEqual([s.transport_name for s in server.transport.streams], ["TLS"])

    @inline
    async def test_certificate_from_another_ca_is_refused(self) -> None:
        server = self.server(["127.0.0.1"])
        assert server.transport is not None
        other = make_ca(self.dir / "other")
        client = self.service(tls_ca=str(other.cert_path))
        got = await self.options(client, "127.0.0.1", server.transport.tls_port).wait_for(
            lambda e: True, timeout=2)  # far less than Timer F (64*T1 = 3.2 s)
        self.assertNotIsInstance(got, Response)
        assert client.transport is not None
        self.assertEqual(len(client.transport.streams), 0)

    @inline
    async def test_certificate_for_another_name_is_refused(self) -> None:
        server = self.server(["sip.example.test"])
        assert server.transport is not None
        client = self.service(tls_ca=str(self.ca.cert_path))
        got = await self.options(client, "127.0.0.1", server.transport.tls_port).wait_for(
            lambda e: True, timeout=2)
        self.assertNotIsInstance(got, Response)


class StartPathTests(unittest.TestCase):
    def test_unusable_file_refuses_start_naming_the_key(self) -> None:
        from wcsgw.service import _sip_service

        config = parse_config({"sip": {"tls_port": 5061, "tls_cert": "/nonexistent/sip.pem",
                                       "tls_key": "/nonexistent/sip.key"}})
        with self.assertRaises(ConfigError) as caught:
            _sip_service(config)
        self.assertEqual(caught.exception.key, "sip.tls_cert")
        self.assertEqual(str(caught.exception).count("\n"), 0)
