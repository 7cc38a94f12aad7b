"""A real network (issue 12): the browser behind a masquerading NAT, the gateway between a
public and a private network, the PBX (Kamailio) and the phone (baresip) on the private
network only.

    browser 10.77.0.2 -- 10.77.0.1 NAT 203.0.113.2 -- 203.0.113.1 pub  GATEWAY  priv 192.168.77.1
                                                                         |
                                             Kamailio + baresip 192.168.77.2 (no route out)

The gateway runs in this process, in the test's own network namespace (tests/isolated), with
HTTPS on its public address (the Phone UI at ``https://gw.example.test``: a test CA's
certificate for that name, which the browser resolves to the public address and trusts by its
key), ``media.browser_address`` = the public address and
``media.sip_address`` / ``sip.advertised_address`` = the private one (sockets bind 0.0.0.0).
The browser (headless Chromium in its namespace) uses the Phone UI; the NAT rewrites its
address and ports (``--random-fully``), so media flows only because the gateway answers where
the browser's packets came from.

Each test places a call both ways, audio checked by content both ways (the browser's
microphone plays 440 Hz, the phone 1 kHz): with a port per call over UDP; with UDP dropped for
the browser's namespace, over ICE-TCP to ``media.browser_port``; and with the page asking for
``iceTransportPolicy: "relay"``, through coturn beside the gateway on its public address, with
the credentials the gateway minted (``webrtc.ice_servers`` with a secret).  What each side
could see is checked on the wire: a tap on the gateway's private interface records every
packet the PBX network got — no byte of it names the public address; the SDP the browser got
names the public address and never the private one; and the public wire carries the page and
its WebSocket (with the SIP password) only inside TLS.
"""

from __future__ import annotations

import shutil

import attrs
from twisted.internet import reactor, task
from twisted.trial import unittest

from tests.e2e import Gateway, Phone, dominant_hz
from tests.peers.chromium import LAST_PEER, Chromium, evaluate, write_tone_wav
from tests.peers.coturn import Coturn
from tests.peers.netns import (
    KamailioIn,
    Tap,
    chromium_in,
    network_for,
    scratch_folder,
    tone_phone_in,
)
from tests.peers.ports import free_port
from tests.peers.testca import make_ca, spki_sha256
from tests.support import assert_near, inline
from wcsgw.config import (
    Config,
    HttpSettings,
    IceServer,
    MediaSettings,
    PolicySettings,
    SipSettings,
    WebRtcSettings,
)

CLIENT, CLIENT_ROUTER = "10.77.0.2", "10.77.0.1"
NAT_OUTSIDE, PUBLIC = "203.0.113.2", "203.0.113.1"
PRIVATE, PBX = "192.168.77.1", "192.168.77.2"
PUBLIC_NET, PRIVATE_NET = b"203.0.113.", b"192.168.77."
#: the gateway's public name: the browser maps it to PUBLIC, its certificate names it
GW_NAME = "gw.example.test"

#: The browser's side of its current call: the SDP it was given, the candidates its
#: connection uses (from getStats' selected pair).
CALL_VIEW_JS = """async (expr) => {
  const pc = eval(expr);
  if (!pc) return null;
  const stats = await pc.getStats();
  let pair = null;
  stats.forEach((s) => { if (s.type === "transport" && s.selectedCandidatePairId)
                           pair = stats.get(s.selectedCandidatePairId); });
  const cand = (id) => { const c = id && stats.get(id);
                         return c ? {address: c.address, port: c.port, type: c.candidateType,
                                     protocol: c.protocol} : null; };
  return {remoteSdp: pc.remoteDescription ? pc.remoteDescription.sdp : null,
          local: pair && cand(pair.localCandidateId), remote: pair && cand(pair.remoteCandidateId)};
}"""


def nat_config(http_port: int = 0) -> Config:
    """The gateway as deployed between the two networks (docs/deployment.md)."""
    return Config(
        http=HttpSettings(listen=PUBLIC, port=http_port),
        sip=SipSettings(listen=PRIVATE, port=0, advertised_address=PRIVATE, t1=0.1, t2=0.8),
        media=MediaSettings(listen="0.0.0.0", browser_address=PUBLIC, sip_address=PRIVATE,
                            port_min=30000, port_max=30999, rtp_timeout=10.0),
        policy=PolicySettings(allowed_domains=(PBX,)),
    )


class NatTopology:
    """The mixin that builds the network of the module docstring and starts the peers in it;
    everything is removed at clean-up (the network last)."""

    timeout = 150

    def build_network(self) -> None:
        self.net = network_for(self)  # removed last, after every peer
        self.browser_ns = self.net.namespace("browser")
        self.nat_ns = self.net.namespace("nat")
        self.pbx_ns = self.net.namespace("pbx")
        self.pub_if, self.priv_if = f"pub{self.net.tag}", f"prv{self.net.tag}"
        self.net.link(self.browser_ns, "eth0", f"{CLIENT}/24",
                      self.nat_ns, "lan", f"{CLIENT_ROUTER}/24")
        self.net.link(self.nat_ns, "wan", f"{NAT_OUTSIDE}/24", None, self.pub_if, f"{PUBLIC}/24")
        self.net.link(self.pbx_ns, "eth0", f"{PBX}/24", None, self.priv_if, f"{PRIVATE}/24")
        self.net.route(self.browser_ns, "default", CLIENT_ROUTER)
        self.net.masquerade(self.nat_ns, "wan")
        # The private wire, tapped before anything is sent on it.
        self.private_tap = Tap(self.priv_if)
        self.addCleanup(self.private_tap.close)
        self.public_tap = Tap(self.pub_if)
        self.addCleanup(self.public_tap.close)
        self.scratch = scratch_folder()
        self.addCleanup(shutil.rmtree, self.scratch, True)

    async def start_peers(self, config: Config | None = None, *,
                          browser_args: tuple[str, ...] = (), page_query: str = "") -> Phone:
        """Kamailio and baresip 1002 (1 kHz, auto-answer) in the PBX namespace, the gateway
        here, Chromium in the browser namespace with the Phone UI logged in as 1001."""
        self.kam = KamailioIn(self.pbx_ns, PBX)
        self.addCleanup(self.kam.stop)
        await self.kam.start()
        self.phone = await tone_phone_in(self, self.pbx_ns, PBX, self.kam.port)
        # HTTPS as deployed: a certificate for the gateway's name (from a test CA, made now),
        # which the browser resolves to the public address and trusts by its key alone.
        cert, key = make_ca(self.scratch).issue([GW_NAME], self.scratch)
        config = config or nat_config()
        config = attrs.evolve(config, http=attrs.evolve(
            config.http, tls_cert=str(cert), tls_key=str(key), server_names=(GW_NAME,)))
        self.gateway = Gateway(config)
        self.gateway.start()
        self.addCleanup(self.gateway.stop)
        _, http_port = self.gateway.top.getServiceNamed("http").address
        self.url = f"https://{GW_NAME}:{http_port}/"
        self.browser = Chromium(
            fake_audio=write_tone_wav(self.mktemp() + "-mic.wav", 440.0),
            executable=chromium_in(self.browser_ns, self.scratch),
            extra_args=(f"--host-resolver-rules=MAP {GW_NAME} {PUBLIC}",
                        f"--ignore-certificate-errors-spki-list={spki_sha256(cert.read_bytes())}",
                        *browser_args))
        await self.browser.start()
        self.addCleanup(self.browser.stop)
        ui = await Phone.open(self.browser, self.url + page_query, record_peers=True)
        await ui.login(login="1001", password="pass1001", domain=PBX, proxy=PBX,
                       port=str(self.kam.port), register=True)
        return ui

    async def call_view(self, ui: Phone) -> dict:
        view = await evaluate(ui.page, CALL_VIEW_JS, LAST_PEER)
        self.assertIsNotNone(view, "the page made no RTCPeerConnection")
        return view

    async def assert_audio_both_ways(self, ui: Phone) -> None:
        """The browser hears the phone's 1 kHz; the phone records the browser's 440 Hz
        (checked once the call is over, on its newest recording)."""
        await ui.wait_state("call-status", "established")
        await self.phone.wait_event("CALL_ESTABLISHED")
        peak = await ui.received_frequency()
        assert_near(self, peak["frequency"], 1000, 15)
        self.assertGreater(peak["level"], -60)
        await task.deferLater(reactor, 1.5, lambda: None)  # the phone records a good second

    def assert_phone_heard_440(self, calls: int) -> None:
        recordings = self.phone.recordings()
        self.assertEqual(len(recordings), calls)
        frequency, level = dominant_hz(recordings[-1])
        assert_near(self, frequency, 440, 10)
        self.assertGreater(level, 300)

    def assert_browser_sdp_public_only(self, view: dict) -> None:
        sdp = view["remoteSdp"]
        self.assertIn(f"c=IN IP4 {PUBLIC}", sdp)
        self.assertNotIn(PRIVATE_NET.decode(), sdp)
        candidates = [line for line in sdp.splitlines() if line.startswith("a=candidate:")]
        self.assertTrue(candidates)
        for line in candidates:
            self.assertEqual(line.split()[4], PUBLIC, line)

    async def assert_clean(self) -> None:
        await self.gateway.when_idle()
        self.assertEqual(self.gateway.calls, {})
        self.assertEqual(await self.gateway.ports_released(), 0)

    async def calls_both_ways(self, ui: Phone) -> list[dict]:
        """The browser calls the phone, then the phone calls the browser; audio checked by
        content both ways each time.  The browser's view of each call (:data:`CALL_VIEW_JS`)."""
        views = []
        await ui.call("1002")
        await self.assert_audio_both_ways(ui)
        views.append(await self.call_view(ui))
        await self.hang_up(ui)
        self.assert_phone_heard_440(calls=1)

        await self.phone.command("dial", f"sip:1001@{PBX}:{self.kam.port}")
        await ui.ringing()
        await ui.click("Answer")
        await self.assert_audio_both_ways(ui)
        views.append(await self.call_view(ui))
        await self.hang_up(ui)
        self.assert_phone_heard_440(calls=2)
        return views

    async def hang_up(self, ui: Phone) -> None:
        mark = self.phone.mark()
        await ui.click("Hangup")
        await self.phone.wait_event("CALL_CLOSED", since=mark)
        await self.assert_clean()

    def assert_pbx_never_saw_the_public_address(self) -> None:
        """Every packet on the private wire (both ways, but the test's own baresip control
        connection), read through the kernel with nothing dropped."""
        tap = self.private_tap
        tap.doRead()
        self.assertEqual(tap.dropped, 0)
        leaks = list(tap.containing(PUBLIC_NET, skip_ports=(self.phone.ctrl_port,)))
        self.assertEqual(leaks, [], "the PBX network saw the public address")
        self.assertNotIn(PUBLIC_NET.decode(), self.kam.log_text())
        # The tap did see the calls: INVITEs both ways with SDP naming the private address,
        # and RTP both ways between the gateway's and the phone's private addresses.
        invites = [p for p in tap.packets if p.payload.startswith(b"INVITE sip:")]
        self.assertTrue([p for p in invites if p.src == PRIVATE
                         and f"c=IN IP4 {PRIVATE}".encode() in p.payload], "no INVITE sent")
        self.assertTrue([p for p in invites if p.dst == PRIVATE], "no INVITE received")
        rtp = [p for p in tap.packets if p.protocol == 17 and p.payload[:1] == b"\x80"]
        self.assertTrue([p for p in rtp if (p.src, p.dst) == (PRIVATE, PBX)])
        self.assertTrue([p for p in rtp if (p.src, p.dst) == (PBX, PRIVATE)])

    def assert_signalling_encrypted(self) -> None:
        """The page, the WebSocket and its JSON-RPC (the SIP password in ``connect``) went
        over TLS: the public wire saw a TLS handshake to the HTTPS port, and none of what
        plain HTTP/WS would carry in clear (request and status lines, the upgrade, the
        server's unmasked notification frames)."""
        tap = self.public_tap
        tap.doRead()
        _, http_port = self.gateway.top.getServiceNamed("http").address
        self.assertTrue([p for p in tap.packets if p.protocol == 6 and p.dport == http_port
                         and p.payload[:1] == b"\x16"], "no TLS handshake to the HTTPS port")
        for clear in (b"HTTP/1.1", b"Upgrade: websocket", b"sessionStatus", b"pass1001"):
            self.assertEqual(list(tap.containing(clear)), [], clear)

    def assert_media_crossed_the_nat(self, view: dict) -> None:
        """The browser's pair runs from the NAT's outside address (a peer-reflexive candidate:
        the gateway's STUN answer told the browser how it looks from outside) to the public
        address; the gateway got that media from the NAT's outside address, never the
        client's own."""
        self.assertEqual((view["local"]["address"], view["local"]["type"]),
                         (NAT_OUTSIDE, "prflx"), view)
        self.assertEqual((view["remote"]["address"], view["remote"]["type"]), (PUBLIC, "host"),
                         view)
        tap = self.public_tap
        tap.doRead()
        from_nat = [p for p in tap.packets if p.protocol == 17 and p.src == NAT_OUTSIDE
                    and p.dst == PUBLIC and p.dport == view["remote"]["port"]]
        self.assertTrue(from_nat, "no media from the NAT's outside address")
        self.assertFalse([p for p in tap.packets if CLIENT in (p.src, p.dst)])


class NatCallTests(NatTopology, unittest.TestCase):
    @inline
    async def test_calls_both_ways_across_nat_and_two_networks(self) -> None:
        """A port per call (browser_port 0): the browser reaches it over UDP through the NAT."""
        self.build_network()
        ui = await self.start_peers()
        for view in await self.calls_both_ways(ui):
            self.assert_browser_sdp_public_only(view)
            self.assert_media_crossed_the_nat(view)
            self.assertEqual(view["local"]["protocol"], "udp")
        self.assert_signalling_encrypted()
        self.assert_pbx_never_saw_the_public_address()

    @inline
    async def test_udp_dropped_calls_connect_over_ice_tcp(self) -> None:
        """The browser's network lets no UDP through: with media.browser_port the gateway
        also offers an ICE-TCP passive candidate on that number, and both calls connect over
        TCP through the NAT — no UDP crosses the public wire at all."""
        self.build_network()
        self.net.drop_udp(self.browser_ns)
        port = free_port("udp+tcp", "0.0.0.0")
        config = nat_config()
        config = attrs.evolve(config, media=attrs.evolve(config.media, browser_port=port))
        ui = await self.start_peers(config)
        for view in await self.calls_both_ways(ui):
            self.assert_browser_sdp_public_only(view)
            self.assertIn(f"{PUBLIC} {port} typ host tcptype passive", view["remoteSdp"])
            self.assertEqual((view["local"]["protocol"], view["remote"]["protocol"]),
                             ("tcp", "tcp"), view)
            self.assertEqual((view["remote"]["address"], view["remote"]["port"]),
                             (PUBLIC, port), view)
        self.public_tap.doRead()
        self.assertEqual([p for p in self.public_tap.packets if p.protocol == 17], [])
        media = [p for p in self.public_tap.packets
                 if p.protocol == 6 and (p.src, p.dst, p.dport) == (NAT_OUTSIDE, PUBLIC, port)
                 and p.payload]
        self.assertTrue(media, "no ICE-TCP frames from the NAT's outside address")
        self.assert_signalling_encrypted()
        self.assert_pbx_never_saw_the_public_address()

    @inline
    async def test_relay_only_browser_through_coturn(self) -> None:
        """The page asks for iceTransportPolicy "relay": the browser sends media only through
        coturn (beside the gateway, on its public address, use-auth-secret), with the
        credentials the gateway minted for its session, and the relay reaches the gateway's
        host candidate."""
        self.build_network()
        turn = Coturn(host=PUBLIC)
        self.addCleanup(turn.stop)
        await turn.start()
        port = free_port("udp+tcp", "0.0.0.0")
        config = nat_config()
        config = attrs.evolve(
            config, media=attrs.evolve(config.media, browser_port=port),
            webrtc=WebRtcSettings(ice_servers=(IceServer(urls=(turn.url,), secret=turn.secret),)))
        ui = await self.start_peers(config, page_query="?iceTransportPolicy=relay")
        [session_id] = self.gateway.top.call_gateway.sessions
        for view in await self.calls_both_ways(ui):
            self.assert_browser_sdp_public_only(view)
            self.assertEqual(view["local"]["type"], "relay", view)
            self.assertEqual((view["remote"]["address"], view["remote"]["port"]),
                             (PUBLIC, port), view)
        # The browser's UDP went to coturn's port only (the relay reaches the gateway on this
        # host), and coturn took the credentials minted for this session.
        self.public_tap.doRead()
        udp = {(p.dst, p.dport) for p in self.public_tap.packets
               if p.protocol == 17 and p.src == NAT_OUTSIDE}
        self.assertEqual(udp, {(PUBLIC, turn.port)})
        self.assertIn(f":{session_id}", turn.log_text())
        self.assertNotIn(turn.secret, turn.log_text())
        self.assert_signalling_encrypted()
        self.assert_pbx_never_saw_the_public_address()
