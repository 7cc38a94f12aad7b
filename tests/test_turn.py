"""TURN for browsers: ``[webrtc] ice_servers`` checked at start-up, and the ``iceServers`` of
``connect`` with TURN REST API credentials minted per session (wcsgw.api.iceservers).

The minting runs on a fixed clock against values computed independently (OpenSSL's HMAC),
and against a real coturn (Debian's ``turnserver`` with ``use-auth-secret``): a TURN
allocation with the minted credentials succeeds, one with a wrong secret or an expired
username is refused.  The secret never appears in the connect result, in a log event, in a
config error or in a ``repr``.
"""

from __future__ import annotations

import asyncio
import json
import tomllib
from pathlib import Path
from typing import Any

from aioice import stun, turn
from twisted.internet import defer, task
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial import unittest

from tests.peers.coturn import Coturn
from tests.peers.process import group_alive
from tests.test_api_fakes import FakeGateway, RecordingListener
from wcsgw.api.iceservers import IceServers, ice_servers_for, turn_credential, turn_username
from wcsgw.api.jsonrpc import Request
from wcsgw.api.methods import SessionMethods
from wcsgw.calls.gateway import CallError, Codes
from wcsgw.config import Config, ConfigError, IceServer, WebRtcSettings, load_config, parse_config
from wcsgw.service import make_root, make_service

SECRET = "n0rth-W1nd-s3cret"
STATIC_PASSWORD = "st4tic-Pa55word"
SESSION = "0d6b1f7e-2c4a-4c1e-9a57-1c1f0b7c9e11"
NOW = 1_700_000_000
DOCS = Path(__file__).resolve().parent.parent / "docs"


def servers() -> tuple[IceServer, ...]:
    return (
        IceServer(urls=("stun:stun.example.com:3478",)),
        IceServer(urls=("turn:turn.example.com:3478", "turn:turn.example.com:3478?transport=tcp"),
                  secret=SECRET, ttl=3600),
        IceServer(urls=("turns:relay.example.net:5349",), username="fixed",
                  credential=STATIC_PASSWORD),
    )


class MintingTests(unittest.TestCase):
    def test_credential_is_coturns_hmac_sha1_in_base64(self) -> None:
        # printf '%s' "1700000000:s-1" | openssl dgst -sha1 -hmac north -binary | base64
        self.assertEqual(turn_credential("north", "1700000000:s-1"),
                         "UcHaId2GfkVxqpxty8TdNBKTGbQ=")

    def test_username_is_the_expiry_then_the_session(self) -> None:
        self.assertEqual(turn_username("s-1", NOW + 0.9, 3600), f"{NOW + 3600}:s-1")

    def test_each_kind_of_entry(self) -> None:
        stun_only, minted, static = ice_servers_for(servers(), SESSION, NOW)
        self.assertEqual(stun_only, {"urls": ["stun:stun.example.com:3478"]})
        username = f"{NOW + 3600}:{SESSION}"
        self.assertEqual(minted, {
            "urls": ["turn:turn.example.com:3478", "turn:turn.example.com:3478?transport=tcp"],
            "username": username, "credential": turn_credential(SECRET, username)})
        self.assertEqual(static, {"urls": ["turns:relay.example.net:5349"],
                                  "username": "fixed", "credential": STATIC_PASSWORD})

    def test_minted_on_the_clock_given(self) -> None:
        clock = task.Clock()
        clock.advance(NOW)
        ice = IceServers(servers(), clock=clock.seconds)
        first = ice.for_session(SESSION)[1]
        clock.advance(60)
        later = ice.for_session(SESSION)[1]
        self.assertEqual(first["username"], f"{NOW + 3600}:{SESSION}")
        self.assertEqual(later["username"], f"{NOW + 3660}:{SESSION}")
        self.assertNotEqual(first["credential"], later["credential"])
        other = ice.for_session("another-session")[1]
        self.assertNotEqual(other["credential"], later["credential"])

    def test_no_secret_in_what_is_minted_or_its_repr(self) -> None:
        ice = IceServers(servers(), clock=lambda: NOW)
        self.assertNotIn(SECRET, json.dumps(ice.for_session(SESSION)))
        for text in (repr(ice), repr(servers()), repr(Config(webrtc=WebRtcSettings(servers())))):
            self.assertNotIn(SECRET, text)
            self.assertNotIn(STATIC_PASSWORD, text)
        self.assertFalse(IceServers((), clock=lambda: NOW))


class ConnectResultTests(unittest.TestCase):
    def setUp(self) -> None:
        self.gateway = FakeGateway()
        self.gateway.open_session(SESSION, RecordingListener())
        clock = task.Clock()
        clock.advance(NOW)
        self.ice = IceServers(servers(), clock=clock.seconds)
        self.logged: list[str] = []

        def observe(event: dict[str, Any]) -> None:
            self.logged.append(formatEvent(event) + repr(event))

        globalLogPublisher.addObserver(observe)
        self.addCleanup(globalLogPublisher.removeObserver, observe)

    def connect(self, methods: SessionMethods, **params: Any) -> dict[str, Any]:
        reply = methods.handle(Request("connect", params, 1))
        assert reply is not None
        return json.loads(reply)

    def test_connect_result_carries_minted_ice_servers(self) -> None:
        methods = SessionMethods(self.gateway, SESSION, self.ice)
        frame = self.connect(methods, sipDomain="")
        result = frame["result"]
        self.assertEqual(result["sessionId"], SESSION)
        self.assertEqual(result["iceServers"], ice_servers_for(servers(), SESSION, NOW))
        self.assertNotIn(SECRET, json.dumps(frame))
        minted = result["iceServers"][1]["credential"]
        self.assertTrue(self.logged)  # connect logs a line: it is checked, not absent
        for line in self.logged:
            self.assertNotIn(SECRET, line)
            self.assertNotIn(minted, line)
            self.assertNotIn(STATIC_PASSWORD, line)

    def test_none_configured_no_ice_servers_key(self) -> None:
        methods = SessionMethods(self.gateway, SESSION, IceServers((), clock=lambda: NOW))
        self.assertNotIn("iceServers", self.connect(methods)["result"])

    def test_refused_connect_hands_out_nothing(self) -> None:
        self.gateway.fail["connect"] = CallError(Codes.BAD_STATE, "already connected")
        frame = self.connect(SessionMethods(self.gateway, SESSION, self.ice))
        self.assertNotIn("result", frame)
        self.assertNotIn("iceServers", json.dumps(frame))

    def test_service_hands_the_config_to_the_websocket_factory(self) -> None:
        """The site's /ws factory carries [webrtc] ice_servers to each session's methods."""
        def factory_of(config: Config) -> Any:
            root = make_root(config, make_service(config).call_gateway)
            return root.children[b"ws"]._factory

        factory = factory_of(Config(webrtc=WebRtcSettings(servers())))
        self.assertIsInstance(factory.ice_servers, IceServers)
        self.assertEqual(factory.ice_servers.servers, servers())
        self.assertFalse(factory_of(Config()).ice_servers)


def ice_config(*entries: Any) -> Config:
    return parse_config({"webrtc": {"ice_servers": list(entries)}})


class ConfigTests(unittest.TestCase):
    def assertRefused(self, key: str, *entries: Any) -> str:
        with self.assertRaises(ConfigError) as caught:
            ice_config(*entries)
        self.assertEqual(caught.exception.key, key, str(caught.exception))
        text = str(caught.exception)
        self.assertNotIn(SECRET, text)
        self.assertNotIn(STATIC_PASSWORD, text)
        self.assertNotIn("\n", text)
        return text

    def test_default_is_none(self) -> None:
        self.assertEqual(Config().webrtc.ice_servers, ())
        self.assertEqual(parse_config({}).webrtc, WebRtcSettings())

    def test_the_three_kinds(self) -> None:
        config = ice_config(
            {"urls": ["turn:turn.example.com:3478"], "secret": SECRET, "ttl": 3600},
            {"urls": ["turns:[2001:db8::1]:5349?transport=tcp"], "username": "u",
             "credential": STATIC_PASSWORD},
            {"urls": "stun:stun.example.com"},
        )
        minted, static, stun_only = config.webrtc.ice_servers
        self.assertEqual((minted.urls, minted.secret, minted.ttl),
                         (("turn:turn.example.com:3478",), SECRET, 3600))
        self.assertEqual((static.username, static.credential), ("u", STATIC_PASSWORD))
        self.assertEqual((stun_only.urls, stun_only.secret), (("stun:stun.example.com",), ""))
        self.assertEqual(ice_config({"urls": ["turn:10.0.0.1"], "secret": SECRET})
                         .webrtc.ice_servers[0].ttl, 86400)

    def test_bad_entries_name_the_key(self) -> None:
        turn_url = ["turn:turn.example.com:3478"]
        cases = [
            ("webrtc.ice_servers[0]", ["turn:x"]),
            ("webrtc.ice_servers[0].urls", {"secret": SECRET}),
            ("webrtc.ice_servers[0].urls", {"urls": [], "secret": SECRET}),
            ("webrtc.ice_servers[0].urls[0]", {"urls": ["http://turn.example.com"],
                                               "secret": SECRET}),
            ("webrtc.ice_servers[0].urls[0]", {"urls": ["turn:bad host"], "secret": SECRET}),
            ("webrtc.ice_servers[0].urls[0]", {"urls": ["turn:h:70000"], "secret": SECRET}),
            ("webrtc.ice_servers[0].urls[0]", {"urls": ["stun:h?transport=udp"]}),
            ("webrtc.ice_servers[0].urls[0]", {"urls": [f"turn:u:{SECRET}@h"]}),
            ("webrtc.ice_servers[0].password", {"urls": turn_url, "password": SECRET}),
            ("webrtc.ice_servers[0].secret", {"urls": turn_url}),
            ("webrtc.ice_servers[0].secret", {"urls": turn_url, "secret": ""}),
            ("webrtc.ice_servers[0].secret", {"urls": turn_url, "secret": 5}),
            ("webrtc.ice_servers[0].username", {"urls": turn_url, "secret": SECRET,
                                                "username": "u"}),
            ("webrtc.ice_servers[0].credential", {"urls": turn_url, "username": "u"}),
            ("webrtc.ice_servers[0].username", {"urls": turn_url,
                                                "credential": STATIC_PASSWORD}),
            ("webrtc.ice_servers[0].ttl", {"urls": turn_url, "secret": SECRET, "ttl": 10}),
            ("webrtc.ice_servers[0].ttl", {"urls": turn_url, "secret": SECRET, "ttl": "1h"}),
            ("webrtc.ice_servers[0].ttl", {"urls": turn_url, "username": "u",
                                           "credential": STATIC_PASSWORD, "ttl": 600}),
            ("webrtc.ice_servers[0].secret", {"urls": ["stun:s.example.com"], "secret": SECRET}),
        ]
        for key, entry in cases:
            with self.subTest(entry=entry):
                self.assertRefused(key, entry)
        self.assertRefused("webrtc.ice_servers[1].secret", {"urls": ["stun:s"]},
                           {"urls": turn_url})

    def test_not_an_array(self) -> None:
        with self.assertRaises(ConfigError) as caught:
            parse_config({"webrtc": {"ice_servers": {"urls": ["stun:s"]}}})
        self.assertEqual(caught.exception.key, "webrtc.ice_servers")
        with self.assertRaises(ConfigError) as caught:
            parse_config({"webrtc": {"ice_sever": []}})
        self.assertEqual(caught.exception.key, "webrtc.ice_sever")

    def test_from_the_file_and_the_environment(self) -> None:
        path = self.mktemp()
        with open(path, "w") as f:
            f.write('[[webrtc.ice_servers]]\nurls = ["turn:turn.example.com:3478"]\n'
                    f'secret = "{SECRET}"\nttl = 600\n')
        self.assertEqual(load_config(path, {}).webrtc.ice_servers[0].ttl, 600)
        env = {"WCSGW_WEBRTC_ICE_SERVERS": '[{urls = ["stun:stun.example.com"]}]'}
        self.assertEqual(load_config(path, env).webrtc.ice_servers[0].urls,
                         ("stun:stun.example.com",))
        with self.assertRaises(ConfigError) as caught:
            load_config(None, {"WCSGW_WEBRTC_ICE_SERVERS":
                               f'[{{urls = ["turn:t"], secret = "{SECRET}", ttl = 1}}]'})
        self.assertIn("WCSGW_WEBRTC_ICE_SERVERS", str(caught.exception))
        self.assertNotIn(SECRET, str(caught.exception))


class DocsTests(unittest.TestCase):
    def test_documented_and_the_example_loads_when_uncommented(self) -> None:
        self.assertIn("`webrtc.ice_servers`", (DOCS / "configuration.md").read_text())
        lines = (DOCS / "example.toml").read_text().splitlines()
        start = lines.index("[webrtc]")
        end = lines.index("", start)
        block = [line for line in lines[start:end] if line != "ice_servers = []"]
        first = next(i for i, line in enumerate(lines) if line.startswith("# [[webrtc."))
        last = lines.index("", first)
        block += [line[2:] if line.startswith("# ") else "" for line in lines[first:last]]
        config = parse_config(tomllib.loads("\n".join(block)))
        minted, static, stun_only = config.webrtc.ice_servers
        self.assertTrue(minted.secret and static.credential and not stun_only.secret)


class _Sink(asyncio.DatagramProtocol):
    pass


async def allocate(server: tuple[str, int], username: str, password: str) -> tuple[str, int]:
    """A TURN allocation (aioice's client); returns the relayed address."""
    transport, _ = await asyncio.wait_for(
        turn.create_turn_endpoint(_Sink, server, username, password), 10)
    try:
        return transport.get_extra_info("sockname")  # type: ignore[no-any-return]
    finally:
        transport.close()


def as_deferred(coro: Any) -> defer.Deferred:
    return defer.Deferred.fromFuture(asyncio.ensure_future(coro))


class CoturnTests(unittest.TestCase):
    """The minted credentials against the TURN server they are for."""

    timeout = 60

    async def start_turn(self) -> Coturn:
        server = Coturn()
        self.addCleanup(server.stop)
        await server.start()
        return server

    def mint(self, server: Coturn, now: float, secret: str | None = None) -> dict[str, Any]:
        entry = IceServer(urls=(server.url,), secret=secret or server.secret, ttl=600)
        return ice_servers_for((entry,), SESSION, now)[0]

    async def assert_refused(self, server: Coturn, minted: dict[str, Any]) -> None:
        with self.assertRaises(stun.TransactionFailed) as caught:
            await as_deferred(allocate((server.host, server.port), minted["username"],
                                       minted["credential"]))
        self.assertEqual(caught.exception.response.attributes["ERROR-CODE"][0], 401)

    @defer.inlineCallbacks
    def test_coturn_accepts_what_is_minted_and_nothing_else(self) -> Any:
        import time

        server = yield defer.ensureDeferred(self.start_turn())
        minted = self.mint(server, time.time())
        host, port = yield as_deferred(allocate((server.host, server.port),
                                                minted["username"], minted["credential"]))
        self.assertEqual(host, server.host)
        self.assertIn(port, server.relay_ports)
        self.assertIn(minted["username"], server.log_text())  # verbose: its sessions' users
        yield defer.ensureDeferred(self.assert_refused(server, self.mint(
            server, time.time(), secret="not-" + server.secret)))
        yield defer.ensureDeferred(self.assert_refused(server, self.mint(
            server, time.time() - 601)))  # expired a second ago

    @defer.inlineCallbacks
    def test_stopped_with_its_whole_group(self) -> Any:
        server = yield defer.ensureDeferred(self.start_turn())
        pid = server._proc.pid  # type: ignore[union-attr]
        self.assertTrue(group_alive(pid))
        yield server.stop()
        self.assertFalse(group_alive(pid))
        self.assertFalse(server.rundir.exists())
        self.assertIn("Coturn", server.log_text())  # its log is kept after the folder went
