"""TURN for browsers, end to end: a real coturn (``use-auth-secret``), the gateway handing
out credentials minted for the session (``[webrtc] ice_servers``), and the Phone UI opened
with ``?iceTransportPolicy=relay`` in Chromium, so the browser may only send through the TURN
server.  A call to the ``echo`` test line must connect through the relay (getStats: the
selected pair's local candidate is a relay candidate of that coturn, the remote one the
gateway's host candidate — the gateway stays ICE-lite) and the browser must hear its own
440 Hz back, checked by content.

The SDK's side alone (against the fake gateway, no TURN server needed): the connect result's
``iceServers`` reach every RTCPeerConnection with the transport policy asked for, a bad
policy is refused, and "relay" without any TURN server fails the call locally at once.
"""

from __future__ import annotations

from typing import Any

import attrs
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial import unittest

from tests.e2e import Gateway, Phone, gateway_config
from tests.peers.chromium import LAST_PEER, Chromium, evaluate, write_tone_wav
from tests.peers.coturn import Coturn
from tests.support import assert_near, inline
from tests.test_api_browser import PLACE_CALL_JS, SDK_SETUP_JS, BrowserTestCase
from wcsgw.api.iceservers import IceServers, ice_servers_for
from wcsgw.config import IceServer, WebRtcSettings

#: Keeps the configuration of every RTCPeerConnection the page creates in ``window.__configs``.
RECORD_CONFIGS_JS = """() => {
  const Original = window.RTCPeerConnection;
  window.__configs = [];
  window.RTCPeerConnection = class extends Original {
    constructor(config, ...rest) { window.__configs.push(config); super(config, ...rest); }
  };
}"""

#: ``[options, callOptions]``: a second session with ``options``, its call's end status and info.
RELAY_WITHOUT_TURN_JS = """async ([options, callOptions]) => {
  const session = window.wcsgw.createSession({
    urlServer: location.origin.replace("http", "ws") + "/ws", sipOptions: {domain: ""}, ...options});
  await new Promise((resolve) => session.on(window.wcsgw.SESSION_STATUS.ESTABLISHED, resolve));
  const call = session.createCall({callee: "echo", ...callOptions});
  const ended = new Promise((resolve) => call.on(window.wcsgw.CALL_STATUS.FAILED, resolve));
  call.call();
  await ended;
  return [call.status(), call.getInfo(), call.getPeerConnection()];
}"""

#: The current call's selected candidate pair (both candidates) and the offer's candidates.
_PATH_JS = """
async (expr) => {
  const pc = eval(expr);
  if (!pc) return null;
  const report = await pc.getStats();
  let pair = null;
  report.forEach((s) => {
    if (s.type === "transport" && s.selectedCandidatePairId) pair = report.get(s.selectedCandidatePairId);
  });
  const candidate = (id) => {
    const c = id && report.get(id);
    return c ? {type: c.candidateType, address: c.address, port: c.port, protocol: c.protocol,
                relayProtocol: c.relayProtocol ?? null, url: c.url ?? null} : null;
  };
  const offered = (pc.localDescription ? pc.localDescription.sdp : "").split("\\r\\n")
    .filter((line) => line.startsWith("a=candidate:"));
  return {state: pair ? pair.state : null, local: candidate(pair && pair.localCandidateId),
          remote: candidate(pair && pair.remoteCandidateId), offered,
          bytesSent: pair ? pair.bytesSent : 0, bytesReceived: pair ? pair.bytesReceived : 0};
}
"""


class TurnRelayTests(unittest.TestCase):
    timeout = 120

    @inline
    async def test_relay_only_browser_calls_echo_through_coturn(self) -> None:
        logged: list[str] = []

        def observe(event: dict[str, Any]) -> None:
            logged.append(formatEvent(event) or "")

        globalLogPublisher.addObserver(observe)
        self.addCleanup(globalLogPublisher.removeObserver, observe)
        turn = Coturn()
        self.addCleanup(turn.stop)
        await turn.start()
        entry = IceServer(urls=(turn.url,), secret=turn.secret, ttl=600)
        gateway = Gateway(attrs.evolve(gateway_config(), webrtc=WebRtcSettings((entry,))))
        gateway.start()
        self.addCleanup(gateway.stop)
        browser = Chromium(fake_audio=write_tone_wav(self.mktemp() + ".wav", 440.0))
        self.addCleanup(browser.stop)
        await browser.start()

        phone = await Phone.open(browser, gateway.url + "?iceTransportPolicy=relay",
                                 record_peers=True)
        await phone.login()
        [session_id] = gateway.top.call_gateway.sessions
        await phone.call("echo")
        await phone.wait_state("call-status", "established")
        peak = await phone.received_frequency()
        assert_near(self, peak["frequency"], 440, 15)
        self.assertGreater(peak["level"], -60)

        path: dict[str, Any] = await evaluate(phone.page, _PATH_JS, LAST_PEER)
        self.assertEqual(path["state"], "succeeded", path)
        self.assertEqual(path["local"]["type"], "relay", path)
        self.assertEqual(path["local"]["address"], turn.host, path)
        self.assertIn(path["local"]["port"], turn.relay_ports, path)
        [call] = gateway.calls.values()
        # The far side of the relay is the gateway's own host candidate (ICE-lite).
        self.assertEqual(path["remote"]["type"], "host", path)
        self.assertEqual(path["remote"]["address"], "127.0.0.1", path)
        media = gateway.config.media
        self.assertIn(path["remote"]["port"], range(media.port_min, media.port_max + 1), path)
        self.assertGreater(path["bytesReceived"], 0, path)
        # The browser offered relay candidates only (the policy held), and the TURN server
        # saw this session's minted username, not a fixed account.
        self.assertTrue(path["offered"], path)
        for line in path["offered"]:
            self.assertIn(" typ relay", line)
        self.assertIn(f":{session_id}", turn.log_text())
        self.assertEqual(call.describe()["media"]["mode"], "relay")

        await phone.click("Hangup")
        await phone.wait_state("call-status", "finish")
        await gateway.when_idle()
        await gateway.testlines.wait_idle()
        self.assertEqual(gateway.calls, {})
        # The gateway logged its session and call, and never the secret.
        self.assertTrue(any(session_id in line for line in logged))
        self.assertFalse([line for line in logged if turn.secret in line])


NOW = 1_700_000_000
SERVERS = (IceServer(urls=("turn:127.0.0.1:9",), secret="sdk-test-secret", ttl=600),
           IceServer(urls=("stun:127.0.0.1:9",)))


class SdkIceServersTests(BrowserTestCase):
    site_options = {"ice_servers": IceServers(SERVERS, clock=lambda: NOW)}

    @inline
    async def test_ice_servers_and_policy_reach_the_peer_connection(self) -> None:
        await self.js(RECORD_CONFIGS_JS)
        session_id = await self.js(SDK_SETUP_JS)
        minted = ice_servers_for(SERVERS, session_id, NOW)
        self.assertEqual(await self.js("window.session.getIceServers()"), minted)
        await self.js(PLACE_CALL_JS, {"callee": "echo", "iceTransportPolicy": "relay"})
        await self.until("window.__configs.length === 1")
        self.assertEqual(await self.js("window.__configs[0]"),
                         {"iceServers": minted, "iceTransportPolicy": "relay"})
        await self.js("window.call.hangup()")

        refused = await self.js("""() => {
            try { window.wcsgw.createSession({urlServer: "ws://127.0.0.1:9/ws",
                                              iceTransportPolicy: "none"}); return "created"; }
            catch (e) { return e.name + ": " + e.message; } }""")
        self.assertIn('TypeError: options.iceTransportPolicy must be "all" or "relay"', refused)

        # The page's own (empty) list replaces the gateway's: "relay" has nothing to relay
        # through, and the call fails at once, media released, before anything is sent.
        calls_before = len([e for e in self.gateway.events.events if e[0] == "call"])
        status, info, pc = await self.js(RELAY_WITHOUT_TURN_JS, [
            {"mediaOptions": {"iceServers": []}, "iceTransportPolicy": "relay"}, {}])
        self.assertEqual((status, pc), ("FAILED", None))
        self.assertIn('iceTransportPolicy "relay" needs a TURN server', info)
        self.assertEqual(len([e for e in self.gateway.events.events if e[0] == "call"]),
                         calls_before)
