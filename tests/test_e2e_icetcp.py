"""One media port for every browser leg ([media] browser_port) with real Chromium: two calls
at once to the built-in test lines share one UDP port, each hearing its own audio (checked by
content); and with UDP to that port dropped by the firewall, the browser connects over ICE-TCP
to the same number and audio still flows.

The firewall rule goes into this process's own network namespace (``tests/isolated`` gives
the suite one with only loopback), never the machine's: the test checks that it is in such a
namespace before touching iptables, and removes the rule at clean-up.
"""

from __future__ import annotations

import os
import socket
import subprocess
from typing import Any

import attrs
from twisted.trial import unittest

from tests.e2e import Gateway, Phone, gateway_config
from tests.peers.chromium import LAST_PEER, Chromium, evaluate, write_tone_wav
from tests.peers.ports import free_port
from tests.support import assert_near, inline
from wcsgw.webrtc.mux import TcpAddress

#: The candidate pair the page's PeerConnection selected, once connected: its candidates'
#: protocol and port (getStats: transport.selectedCandidatePairId).
SELECTED_PAIR_JS = """
async (expr) => {
  const pc = eval(expr);
  if (!pc) return null;
  // ICE and DTLS may still be under way when the call shows "established": wait for them.
  await new Promise((resolve) => {
    const done = () => { if (pc.connectionState !== "new" &&
                             pc.connectionState !== "connecting") resolve(); };
    pc.addEventListener("connectionstatechange", done);
    setTimeout(resolve, 20000);
    done();
  });
  const report = await pc.getStats();
  let pairId = null;
  report.forEach((s) => { if (s.type === "transport" && s.selectedCandidatePairId)
                            pairId = s.selectedCandidatePairId; });
  if (!pairId) return null;
  const pair = report.get(pairId);
  const local = report.get(pair.localCandidateId), remote = report.get(pair.remoteCandidateId);
  return {connection: pc.connectionState, state: pair.state, localProtocol: local.protocol, remoteProtocol: remote.protocol,
          remotePort: remote.port, tcpType: remote.tcpType || null};
}
"""


def in_own_namespace() -> bool:
    """Only loopback here: the namespace tests/isolated made (a rule added here dies with it)."""
    return [name for _, name in socket.if_nameindex()] == ["lo"]


def iptables(*args: str) -> None:
    subprocess.run(["iptables", "-w", *args], check=True, capture_output=True, timeout=10)


class SharedPortTests(unittest.TestCase):
    timeout = 120

    async def start(self) -> None:
        self.port = free_port("udp+tcp")
        config = gateway_config()
        self.gateway = Gateway(attrs.evolve(
            config, media=attrs.evolve(config.media, browser_port=self.port)))
        self.gateway.start()
        self.addCleanup(self.gateway.stop)
        wav = write_tone_wav(self.mktemp() + ".wav", 440.0)
        self.browser = Chromium(fake_audio=wav)
        await self.browser.start()
        self.addCleanup(self.browser.stop)

    @property
    def shared(self) -> Any:
        return self.gateway.top.getServiceNamed("browser-port").shared

    async def phone(self) -> Phone:
        phone = await Phone.open(self.browser, self.gateway.url, record_peers=True)
        await phone.login()
        return phone

    async def selected_pair(self, phone: Phone) -> dict[str, Any]:
        pair = await evaluate(phone.page, SELECTED_PAIR_JS, LAST_PEER)
        self.assertIsNotNone(pair, "no selected candidate pair")
        self.assertEqual((pair["connection"], pair["state"]), ("connected", "succeeded"), pair)
        return pair  # type: ignore[no-any-return]

    async def hang_up(self, *phones: Phone) -> None:
        for phone in phones:
            await phone.click("Hangup")
            await phone.wait_state("call-status", "finish")
        await self.gateway.when_idle()
        await self.gateway.testlines.wait_idle()
        self.assertEqual(self.gateway.calls, {})
        self.assertEqual(len(self.shared.demux), 0)  # every leg unregistered
        self.assertEqual(await self.gateway.ports_released(), 0)

    @inline
    async def test_two_calls_share_one_udp_port(self) -> None:
        await self.start()
        echo, tone = await self.phone(), await self.phone()
        await echo.call("echo")
        await tone.call("tone")
        await echo.wait_state("call-status", "established")
        await tone.wait_state("call-status", "established")
        self.assertEqual(len(self.shared.demux), 2)
        legs = [call.leg for call in self.gateway.calls.values()]
        self.assertEqual([leg.port for leg in legs], [self.port, self.port])
        for phone in (echo, tone):
            pair = await self.selected_pair(phone)
            self.assertEqual((pair["remoteProtocol"], pair["remotePort"]), ("udp", self.port))
        heard_echo = await echo.received_frequency()
        heard_tone = await tone.received_frequency()
        assert_near(self, heard_echo["frequency"], 440, 15)
        assert_near(self, heard_tone["frequency"], 1000, 15)
        self.assertGreater(heard_echo["level"], -60)
        self.assertGreater(heard_tone["level"], -60)
        await self.hang_up(echo, tone)

    @inline
    async def test_udp_blocked_connects_over_ice_tcp(self) -> None:
        if os.geteuid() != 0 or not in_own_namespace():
            raise unittest.SkipTest("needs root in a namespace of its own (run via tests/isolated)")
        await self.start()
        rule = ("INPUT", "-p", "udp", "--dport", str(self.port), "-j", "DROP")
        iptables("-A", *rule)
        self.addCleanup(iptables, "-D", *rule)
        phone = await self.phone()
        await phone.call("echo")
        await phone.wait_state("call-status", "established", timeout=30)
        pair = await self.selected_pair(phone)
        self.assertEqual(pair["remoteProtocol"], "tcp", pair)
        self.assertEqual((pair["remotePort"], pair["tcpType"]), (self.port, "passive"), pair)
        heard = await phone.received_frequency()
        assert_near(self, heard["frequency"], 440, 15)
        self.assertGreater(heard["level"], -60)
        self.assertEqual(self.shared.tcp_connections, 1)
        [call] = self.gateway.calls.values()
        self.assertIsInstance(call.leg.remote_address, TcpAddress)  # we send over TCP too
        await self.hang_up(phone)
