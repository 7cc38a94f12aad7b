"""Browser legs on one shared port (wcsgw.webrtc.sharedport) over real loopback UDP and
ICE-TCP, against scripted browsers (aioice STUN + aiortc DTLS client, as test_webrtc_leg):
each leg hears only its own browser, a forged check moves nothing, media from unproven
addresses is dropped, closing a leg unregisters it, and ICE-TCP carries a whole leg with the
connection limits held."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer, reactor
from twisted.internet.protocol import ClientCreator, Protocol
from twisted.trial import unittest

from tests.support import EventLog, inline
from tests.test_webrtc_leg import HOST, Bystander, ScriptedBrowser, rtp
from wcsgw.api.browserportmetrics import browser_port_families
from wcsgw.api.metrics import render
from wcsgw.webrtc.framing import FrameDecoder, frame
from wcsgw.webrtc.leg import WebRtcLeg
from wcsgw.webrtc.mux import TcpAddress
from wcsgw.webrtc.sharedport import SharedPort


class TcpPath(Protocol):
    """A browser's ICE-TCP active connection: frames both ways (RFC 4571)."""

    def __init__(self) -> None:
        self.decoder = FrameDecoder()
        self.browser: Any = None
        self.lost: defer.Deferred[None] = defer.Deferred()
        self.transport_: Any = None

    def dataReceived(self, data: bytes) -> None:  # noqa: N802
        for packet in self.decoder.feed(data):
            self.browser.datagramReceived(packet, None)

    def connectionLost(self, reason: object = None) -> None:  # noqa: N802
        self.lost.callback(None)

    def write(self, data: bytes, target: object = None) -> None:
        self.transport.write(frame(data))  # type: ignore[union-attr]


class Via:
    """What ScriptedBrowser's ``via`` needs: an object whose ``transport.write`` sends."""

    def __init__(self, path: TcpPath) -> None:
        self.transport = path


class TcpBrowser(ScriptedBrowser):
    """The scripted browser with every packet over one ICE-TCP connection."""

    def __init__(self, leg: WebRtcLeg, path: TcpPath) -> None:
        super().__init__(leg)
        self.path = path
        path.browser = self

    def _send(self, data: bytes) -> None:
        self.path.write(data)

    def check(self, use_candidate: bool = False, key: Any = None, via: Any = None) -> bytes:
        return super().check(use_candidate, key, via or Via(self.path))

    def send_rtp(self, packet: bytes, via: Any = None) -> None:
        super().send_rtp(packet, via or Via(self.path))


class SharedPortTests(unittest.TestCase):
    timeout = 30

    def setUp(self) -> None:
        self.shared = SharedPort(reactor, HOST, 0, max_connections=2, idle_timeout=5.0)
        self.shared.start()
        self.addCleanup(self.shared.stop)

    def make_leg(self, browser_class: Any = ScriptedBrowser, *args: Any
                 ) -> tuple[WebRtcLeg, Any, EventLog]:
        leg = WebRtcLeg(reactor, HOST, mux=self.shared)
        states = EventLog()
        leg.on_state = states
        self.addCleanup(leg.close)
        browser = browser_class(leg, *args)
        self.addCleanup(browser.close)
        leg.set_remote(browser.creds.ufrag, browser.creds.pwd, browser.fingerprint)
        return leg, browser, states

    async def connect(self, leg: WebRtcLeg, browser: Any, states: EventLog) -> None:
        leg.start()
        await browser.answered(browser.check())
        dtls = browser.start_dtls()
        await states.wait_for(lambda s: s == "connected", timeout=5)
        await dtls

    async def tcp_path(self) -> TcpPath:
        path: TcpPath = await ClientCreator(reactor, TcpPath).connectTCP(HOST, self.shared.port)
        self.addCleanup(lambda: path.transport.loseConnection())  # type: ignore[union-attr]
        return path

    def test_legs_share_the_port_and_offer_tcp_on_it(self) -> None:
        a = WebRtcLeg(reactor, HOST, mux=self.shared)
        b = WebRtcLeg(reactor, HOST, mux=self.shared)
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        self.assertEqual((a.port, b.port, a.tcp_port), (self.shared.port,) * 3)
        self.assertNotEqual(a.ice_ufrag, b.ice_ufrag)
        self.assertEqual(len(self.shared.demux), 2)

    @inline
    async def test_two_legs_each_hear_only_their_own_browser(self) -> None:
        leg_a, browser_a, states_a = self.make_leg()
        leg_b, browser_b, states_b = self.make_leg()
        heard_a, heard_b = EventLog(), EventLog()
        leg_a.on_rtp = lambda packet, now: heard_a(packet)
        leg_b.on_rtp = lambda packet, now: heard_b(packet)
        await self.connect(leg_a, browser_a, states_a)
        await self.connect(leg_b, browser_b, states_b)
        browser_a.send_rtp(rtp(1, ssrc=0xA))
        browser_b.send_rtp(rtp(1, ssrc=0xB))
        self.assertEqual((await heard_a.wait_for(lambda p: True, timeout=5))[8:12], b"\0\0\0\x0a")
        self.assertEqual((await heard_b.wait_for(lambda p: True, timeout=5))[8:12], b"\0\0\0\x0b")
        leg_a.send_rtp(rtp(7, ssrc=0xAA))
        leg_b.send_rtp(rtp(7, ssrc=0xBB))
        self.assertEqual((await browser_a.rtp.wait_for(lambda p: True, timeout=5))[8:12],
                         b"\0\0\0\xaa")
        self.assertEqual((await browser_b.rtp.wait_for(lambda p: True, timeout=5))[8:12],
                         b"\0\0\0\xbb")
        self.assertEqual((len(heard_a.events), len(heard_b.events)), (1, 1))
        self.assertEqual(len(browser_a.rtp.events), 1)
        self.assertEqual(leg_a.remote_address, browser_a.address)

    @inline
    async def test_a_forged_check_never_moves_a_leg(self) -> None:
        """A stranger who read the ufrag (it is in SDP) but not the password: its check is
        routed to the leg, ignored there, and its address proves nothing."""
        leg, browser, states = self.make_leg()
        heard = EventLog()
        leg.on_rtp = lambda packet, now: heard(packet)
        await self.connect(leg, browser, states)
        stranger = Bystander()
        port = reactor.listenUDP(0, stranger, interface=HOST)
        self.addCleanup(port.stopListening)
        address = (HOST, port.getHost().port)
        dropped = self.shared.demux.dropped
        browser.check(use_candidate=True, key="x" * 24, via=stranger)
        # SRTP under the browser's keys, replayed from the stranger's address
        browser.send_rtp(rtp(2), via=stranger)
        browser.send_rtp(rtp(3))  # the real browser, after: heard
        await heard.wait_for(lambda p: p[2:4] == b"\0\x03", timeout=5)
        self.assertEqual([p[2:4] for p in heard.events], [b"\0\x03"])
        self.assertIsNone(self.shared.demux.owner(address))
        self.assertEqual(leg.remote_address, browser.address)
        self.assertEqual(self.shared.demux.dropped, dropped + 1)  # the replayed SRTP
        self.assertEqual(len(stranger.received.events), 0)  # never answered
        self.assertEqual(leg.control.ice.requests_ignored, 1)
        # ... and the operator sees it in /metrics
        text = render(browser_port_families(self.shared)).decode()
        self.assertIn(f"wcsgw_browser_port_dropped_total {dropped + 1}\n", text)
        self.assertIn("wcsgw_browser_port_tcp_connections 0\n", text)

    @inline
    async def test_closing_a_leg_unregisters_it(self) -> None:
        leg, browser, states = self.make_leg()
        await self.connect(leg, browser, states)
        other = WebRtcLeg(reactor, HOST, mux=self.shared)
        self.addCleanup(other.close)
        self.assertEqual(self.shared.demux.owner(browser.address), leg.ice_ufrag)
        await leg.close()
        self.assertNotIn(leg.ice_ufrag, self.shared.demux)
        self.assertIsNone(self.shared.demux.owner(browser.address))
        self.assertEqual(len(self.shared.demux), 1)
        await other.close()
        self.assertEqual(len(self.shared.demux), 0)
        self.assertEqual(self.shared.demux._proven, {})

    @inline
    async def test_a_whole_leg_over_ice_tcp(self) -> None:
        path = await self.tcp_path()
        leg, browser, states = self.make_leg(TcpBrowser, path)
        heard = EventLog()
        leg.on_rtp = lambda packet, now: heard(packet)
        await self.connect(leg, browser, states)
        address = leg.remote_address
        self.assertIsInstance(address, TcpAddress)
        self.assertEqual(self.shared.demux.owner(address), leg.ice_ufrag)
        browser.send_rtp(rtp(5))
        await heard.wait_for(lambda p: p[2:4] == b"\0\x05", timeout=5)
        leg.send_rtp(rtp(6))
        await browser.rtp.wait_for(lambda p: p[2:4] == b"\0\x06", timeout=5)
        self.assertEqual(self.shared.tcp_connections, 1)
        # closing the leg closes its connection and forgets its address
        await leg.close()
        await path.lost
        self.assertIsNone(self.shared.demux.owner(address))
        self.assertEqual(self.shared.tcp_connections, 0)

    @inline
    async def test_connections_over_the_limit_are_refused(self) -> None:
        paths = [await self.tcp_path() for _ in range(3)]
        await paths[2].lost
        self.assertEqual(self.shared.tcp_refused, 1)
        self.assertEqual(self.shared.tcp_connections, 2)
        self.assertFalse(paths[0].lost.called)

    @inline
    async def test_an_oversize_frame_closes_the_connection(self) -> None:
        path = await self.tcp_path()
        path.transport.write((5000).to_bytes(2, "big") + b"x" * 10)  # type: ignore[union-attr]
        await path.lost
        self.assertEqual(self.shared.tcp_refused, 1)

    @inline
    async def test_a_connection_that_proves_nothing_is_closed(self) -> None:
        self.shared.idle_timeout = 0.3
        path = await self.tcp_path()
        started = reactor.seconds()
        path.write(b"\x80" + bytes(40))  # SRTP-looking, from an unproven address: dropped
        await path.lost
        self.assertGreaterEqual(reactor.seconds() - started, 0.25)
        self.assertEqual(self.shared.tcp_connections, 0)


class BrowserPortConfigTests(unittest.TestCase):
    """``[media] browser_port``: off by default, refused with one line naming it when it
    collides, and the service tree has the shared port only when it is set."""

    def test_default_is_off_and_the_tree_has_no_shared_port(self) -> None:
        from wcsgw.config import Config
        from wcsgw.service import make_service

        self.assertEqual(Config().media.browser_port, 0)
        top = make_service(Config())
        self.assertRaises(KeyError, top.getServiceNamed, "browser-port")

    def test_collisions_are_refused_naming_the_key(self) -> None:
        from wcsgw.config import ConfigError, parse_config

        for media, sip, http in ((25000, 5060, 8080), (5060, 5060, 8080), (8080, 5060, 8080)):
            with self.assertRaises(ConfigError) as caught:
                parse_config({"media": {"browser_port": media}, "sip": {"port": sip},
                              "http": {"port": http}})
            self.assertEqual(caught.exception.key, "media.browser_port")
        self.assertRaises(ConfigError, parse_config, {"media": {"browser_port": 70000}})
        self.assertEqual(parse_config({"media": {"browser_port": 3478}}).media.browser_port, 3478)

    def test_set_it_makes_the_shared_port_and_legs_register_there(self) -> None:
        import attrs

        from wcsgw.config import Config
        from wcsgw.service import make_service

        config = Config()
        config = attrs.evolve(config, media=attrs.evolve(config.media, browser_port=3478))
        top = make_service(config)
        shared = top.getServiceNamed("browser-port").shared
        self.assertEqual((shared.host, shared.port, shared.tcp_port), ("127.0.0.1", 3478, 3478))
        env = top.call_gateway.inbound_factory.keywords["env"]
        self.assertIs(env.make_browser_leg.keywords["mux"], shared)
