"""A call that survives its WebSocket: the Phone UI in Chromium, the real gateway, the tone line.

Issue 15 item 1 end to end.  The browser's socket is cut on the gateway's side (the
GatewaySocket's ``transport.abortConnection()``: no close frame, as when a proxy or a network
drops it).  The SDK reconnects by itself and resumes the session with its ``authToken``; the
Phone UI says "Reconnecting…" meanwhile and leaves the call alone.  What must hold: the same
session id, a new single-use token, the call ESTABLISHED throughout (no other call status
shown), the same RTCPeerConnection still connected, the tone still heard (FFT), and Hangup
working on the resumed session.  And when the gateway stays unreachable past its resume
window (``http.resume_seconds``, small here), the SDK gives up: the session FAILED, the call
FINISH "Session lost" in the page, and the gateway ended the call on its side too.  A Hangup
pressed while reconnecting goes out first thing on the resumed socket.  A socket that stays
open but carries nothing (the gateway stops reading it: a half-open connection) is found dead
by the SDK's ``ping`` and replaced the same way.

The browser's other half of a network change, the automatic ICE restart, is here too (a
loopback-only stand-in for tests.test_e2e_ice_restart's namespaces): the gateway's leg stops
answering the page's connectivity checks, the page's ICE goes ``disconnected``, and the SDK
restarts ICE by itself — in a call the page placed and in one it answered.

The page's WebSocket traffic is recorded by an init script (:data:`RECORD_SOCKETS_JS`) so the
test reads the two ``connect`` exchanges as the browser saw them.
"""

from __future__ import annotations

import json
from typing import Any

import attrs
from twisted.internet import defer, reactor
from twisted.trial import unittest

from tests.e2e import Gateway, PeersMixin, Phone, gateway_config
from tests.peers.chromium import Chromium, aio, evaluate, write_tone_wav
from tests.support import assert_near, inline

#: Every WebSocket the page opens, with the frames it sent and received, in
#: ``window.wcsgwSockets`` (the SDK builds its sockets from ``globalThis.WebSocket``).
RECORD_SOCKETS_JS = """(() => {
  if (window.wcsgwSockets) return;
  window.wcsgwSockets = [];
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.wcsgwRecord = {url: String(args[0]), sent: [], received: []};
      window.wcsgwSockets.push(this.wcsgwRecord);
      this.addEventListener("message", (e) => this.wcsgwRecord.received.push(e.data));
    }
    send(data) {
      this.wcsgwRecord.sent.push(data);
      super.send(data);
    }
  };
})();"""

#: The session status states the page shows, in order, and its text while reconnecting.
WATCH_SESSION_JS = """() => {
  window.seenSessionStates = [];
  window.reconnectingText = "";
  const e = document.getElementById('session-status');
  new MutationObserver(() => {
    const s = e.dataset.state;
    if (s === 'reconnecting') window.reconnectingText = e.textContent;
    if (s && window.seenSessionStates[window.seenSessionStates.length - 1] !== s)
      window.seenSessionStates.push(s);
  }).observe(e, {attributes: true, childList: true, subtree: true});
}"""

#: The page's RTCPeerConnections as a test can compare them: how many, and their states.
PEERS_JS = """() => (window.wcsgwPeers || []).map((pc) => (
  {connection: pc.connectionState, signaling: pc.signalingState}))"""


def connect_exchanges(sockets: list[dict[str, Any]]) -> list[tuple[dict, dict]]:
    """(params, result or error) of every ``connect`` the page sent, in order."""
    exchanges = []
    for socket in sockets:
        received = [json.loads(frame) for frame in socket["received"]]
        for frame in socket["sent"]:
            request = json.loads(frame)
            if request.get("method") != "connect":
                continue
            [answer] = [m for m in received if m.get("id") == request["id"]] or [{}]
            exchanges.append((request["params"], answer))
    return exchanges


class ResumeTests(PeersMixin, unittest.TestCase):
    timeout = 120

    async def start(self, resume_seconds: int, rtp_timeout: float = 10.0) -> Phone:
        config = gateway_config(rtp_timeout=rtp_timeout)
        config = attrs.evolve(config, http=attrs.evolve(config.http, resume_seconds=resume_seconds))
        self.gateway = Gateway(config)
        self.gateway.start()
        self.addCleanup(self.gateway.stop)
        self.browser = Chromium(fake_audio=write_tone_wav(self.mktemp() + ".wav", 440.0))
        await self.browser.start()
        self.addCleanup(self.browser.stop)
        await aio(self.browser.context.add_init_script(RECORD_SOCKETS_JS))
        phone = await Phone.open(self.browser, self.gateway.url, record_peers=True)
        await evaluate(phone.page, WATCH_SESSION_JS)
        await phone.login()
        return phone

    @property
    def sessions(self) -> dict[str, Any]:
        return self.gateway.top.call_gateway.sessions

    def drop_browser_socket(self) -> None:
        """Cut the browser's WebSocket on the gateway's side, without a close frame."""
        [session] = self.sessions.values()
        relay = getattr(session, "relay", None)
        socket = relay.socket if relay is not None else session.listener
        self.assertIsNotNone(socket, "the session has no socket to drop")
        socket.transport.abortConnection()

    async def tone_call(self, phone: Phone) -> Any:
        await phone.call("tone")
        await phone.wait_state("call-status", "established")
        peak = await phone.received_frequency()
        assert_near(self, peak["frequency"], 1000, 15)
        [call] = self.gateway.calls.values()
        return call

    async def tone_then_hangup(self, phone: Phone, call: Any) -> None:
        """The tone is heard (again), and Hangup in the page ends the call at the gateway."""
        peak = await phone.received_frequency()
        assert_near(self, peak["frequency"], 1000, 15)
        await phone.click("Hangup")
        await self.gateway.when_idle()
        self.assertEqual(call.status.value, "FINISH")

    async def sockets(self, phone: Phone) -> list[dict[str, Any]]:
        return await evaluate(phone.page, "window.wcsgwSockets")

    @inline
    async def test_call_survives_a_dropped_socket(self) -> None:
        phone = await self.start(resume_seconds=30)
        [session_id] = self.sessions
        call = await self.tone_call(phone)
        states_before = await phone.call_states()

        self.drop_browser_socket()
        await phone.wait_state("session-status", "reconnecting")
        self.assertIn("Reconnecting… the call goes on",
                      await evaluate(phone.page, "window.reconnectingText"))
        await phone.wait_state("session-status", "established")

        # The same session, resumed by the token alone on a second socket; a new token.
        sockets = await self.sockets(phone)
        self.assertEqual(len(sockets), 2)
        (first, first_answer), (again, again_answer) = connect_exchanges(sockets)
        self.assertEqual(first_answer["result"]["sessionId"], session_id)
        self.assertEqual(again, {"authToken": first_answer["result"]["authToken"]})
        resumed = again_answer["result"]
        self.assertEqual(resumed["sessionId"], session_id)
        self.assertIs(resumed["resumed"], True)
        self.assertNotEqual(resumed["authToken"], first_answer["result"]["authToken"])
        self.assertEqual(list(self.sessions), [session_id])
        self.assertEqual(await evaluate(phone.page, "window.seenSessionStates.slice(-2)"),
                         ["reconnecting", "established"])

        # The call never moved: no other status shown, the same call and PeerConnection.
        self.assertEqual(await phone.call_states(), states_before)
        self.assertEqual(states_before[-1], "established")
        self.assertFalse(await evaluate(
            phone.page, "document.getElementById('hangup').disabled"))
        self.assertEqual(list(self.gateway.calls.values()), [call])
        self.assertEqual(call.status.value, "ESTABLISHED")
        self.assertEqual(await evaluate(phone.page, PEERS_JS),
                         [{"connection": "connected", "signaling": "stable"}])
        peak = await phone.received_frequency()
        assert_near(self, peak["frequency"], 1000, 15)
        self.assertGreater(peak["level"], -60)

        # The resumed session works: Hangup reaches the gateway and ends the call there.
        await phone.click("Hangup")
        await phone.wait_state("call-status", "finish")
        await self.gateway.when_idle()
        await self.gateway.testlines.wait_idle()
        self.assertEqual(self.gateway.calls, {})
        self.assertEqual(call.status.value, "FINISH")
        await phone.wait_state("session-status", "established")

    @inline
    async def test_sdk_gives_up_after_the_resume_window(self) -> None:
        phone = await self.start(resume_seconds=3)
        [session_id] = self.sessions
        call = await self.tone_call(phone)

        # New connections refused from now on (the listening port is closed), then the
        # browser's socket cut: every attempt fails until the resume window is over.
        await defer.maybeDeferred(self.gateway.top.getServiceNamed("http").stopService)
        self.drop_browser_socket()
        await phone.wait_state("session-status", "reconnecting")
        await phone.wait_state("session-status", "failed", timeout=20.0)

        self.assertEqual((await phone.call_states())[-1], "finish")
        self.assertIn("Session lost", await phone.status_text("call-status"))
        self.assertIn("Session lost", await phone.status_text("error"))
        self.assertEqual(await evaluate(phone.page, PEERS_JS),
                         [{"connection": "closed", "signaling": "closed"}])
        # Only the first socket ever opened: the others were refused.
        self.assertEqual(len(connect_exchanges(await self.sockets(phone))), 1)

        # The gateway ended the session and its call when the window passed (BYE sent).
        await self.gateway.when_idle()
        await self.gateway.testlines.wait_idle()
        self.assertNotIn(session_id, self.sessions)
        self.assertEqual(self.gateway.calls, {})
        self.assertEqual(call.status.value, "FINISH")

    def sent_methods(self, socket: dict[str, Any]) -> list[str]:
        return [json.loads(frame).get("method") for frame in socket["sent"]]

    @inline
    async def test_hangup_while_reconnecting_goes_out_after_the_resume(self) -> None:
        phone = await self.start(resume_seconds=30)
        call = await self.tone_call(phone)
        http = self.gateway.top.getServiceNamed("http")
        _host, port = http.address
        await defer.maybeDeferred(http.stopService)
        self.drop_browser_socket()
        await phone.wait_state("session-status", "reconnecting")

        await phone.click("Hangup")  # no socket: the request waits
        self.assertEqual(call.status.value, "ESTABLISHED")
        listening = reactor.listenTCP(port, http.site, interface="127.0.0.1")
        self.addCleanup(listening.stopListening)

        await phone.wait_state("session-status", "established", timeout=20.0)
        await self.gateway.when_idle()
        await self.gateway.testlines.wait_idle()
        self.assertEqual(call.status.value, "FINISH")
        await phone.wait_state("call-status", "finish")
        sockets = await self.sockets(phone)
        # The resume first, then the hangup that waited for it.
        self.assertEqual(self.sent_methods(sockets[-1])[:2], ["connect", "hangup"])

    @inline
    async def test_a_silent_socket_is_found_by_ping_and_replaced(self) -> None:
        phone = await self.start(resume_seconds=60)
        [session_id] = self.sessions
        call = await self.tone_call(phone)
        states_before = await phone.call_states()
        [session] = self.sessions.values()
        silent = session.relay.socket
        silent.transport.pauseProducing()  # the gateway reads nothing more from it
        self.addCleanup(lambda: silent.transport and silent.transport.resumeProducing())

        # 15 s to the next ping, 10 s without its answer: dead, reconnect, resume.
        await phone.wait_state("session-status", "reconnecting", timeout=40.0)
        await phone.wait_state("session-status", "established")
        sockets = await self.sockets(phone)
        self.assertEqual(len(sockets), 2)
        self.assertIn("ping", self.sent_methods(sockets[0]))
        _first, (_, again) = connect_exchanges(sockets)
        self.assertEqual(again["result"]["sessionId"], session_id)
        self.assertIsNot(session.relay.socket, silent)  # the session moved to the new socket
        self.assertEqual(await phone.call_states(), states_before)
        self.assertEqual(call.status.value, "ESTABLISHED")
        await self.tone_then_hangup(phone, call)

    async def quiet_until_restarted(self, phone: Phone, call: Any) -> None:
        """The gateway's leg stops answering the browser's connectivity checks (the path
        looks dead, as after a network change) until the gateway is asked to restart ICE;
        then wait for the page's ICE to be connected again on new credentials."""
        states_before = await phone.call_states()
        ufrag = "() => window.wcsgwPeers[0].localDescription.sdp.match(/a=ice-ufrag:(\\S+)/)[1]"
        first_ufrag = await evaluate(phone.page, ufrag)
        control = call.near.media.control
        control.stun = lambda data, addr, now: None
        restarts: list[str] = []
        restart = call.restart_ice

        def restarted(sdp: str) -> str:
            restarts.append(sdp)
            if "stun" in vars(control):
                del control.stun  # the new path answers again
            return restart(sdp)

        call.restart_ice = restarted
        await aio(phone.page.wait_for_function(
            "() => ['disconnected', 'failed'].includes(window.wcsgwPeers[0].iceConnectionState)",
            timeout=40000))
        await aio(phone.page.wait_for_function(
            "() => window.wcsgwPeers[0].iceConnectionState === 'connected'"
            " && window.wcsgwPeers[0].signalingState === 'stable'", timeout=30000))
        # Nobody in the page called restartIce(): the SDK did, once.
        self.assertEqual(len(restarts), 1)
        self.assertNotEqual(await evaluate(phone.page, ufrag), first_ufrag)
        self.assertEqual(await phone.call_states(), states_before)
        self.assertEqual(call.status.value, "ESTABLISHED")
        await self.tone_then_hangup(phone, call)

    @inline
    async def test_ice_gone_quiet_is_restarted_by_the_sdk_itself(self) -> None:
        """The automatic ICE restart (the browser's half of a network change) in a call the
        page placed: its ICE goes ``disconnected`` (or ``failed``), the SDK restarts it
        (``restartIce``, new credentials) and the call goes on with the tone heard."""
        phone = await self.start(resume_seconds=30, rtp_timeout=60.0)
        call = await self.tone_call(phone)
        await self.quiet_until_restarted(phone, call)

    @inline
    async def test_ice_restart_in_a_call_the_page_answered(self) -> None:
        """The same in a call the page answered (a REST call to the tone line handed to the
        session): the browser makes the restart offer there too."""
        phone = await self.start(resume_seconds=30, rtp_timeout=60.0)
        [session_id] = self.sessions
        code, reply = await self.rest("call/startup", {
            "callId": "handed", "callee": "tone", "sessionId": session_id}, token=None)
        self.assertEqual((code, reply), (200, {"callId": "handed"}))
        await phone.ringing()
        await phone.click("Answer")
        await phone.wait_state("call-status", "established")
        peak = await phone.received_frequency()
        assert_near(self, peak["frequency"], 1000, 15)
        [call] = self.gateway.calls.values()
        await self.quiet_until_restarted(phone, call)
