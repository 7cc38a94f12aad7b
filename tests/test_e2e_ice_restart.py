"""A browser's network change mid-call, end to end (issue 15 item 4): headless Chromium in a
network namespace calls the ``tone`` test line with the Web SDK, hears the 1 kHz tone (FFT),
then its address changes under it — the old one deleted, a new one added — and the call's
``restartIce()`` (the SDK's ICE restart: a new offer with new ICE credentials through
``restartIce``) brings the media back: the tone is heard again, the gateway's leg answers only
its new credentials, sends to the new address and kept its DTLS association and SRTP keys,
and the SIP side saw nothing (no re-INVITE: the tone line's dialog is where it was).

    browser namespace                                  the test's namespace (the gateway)
      sig 10.76.0.2/24 ---------- page + WebSocket --- 10.76.0.1 (HTTP)
      net 10.78.0.2/24 -> 10.78.0.3/24 ---- media ---- 10.78.0.1 (media.browser_address)

Signalling has a link of its own whose address never changes, so the WebSocket (and with it
the session) outlives the change, as it would behind a resuming session; the browser's
namespace lets nothing but that TCP out of the signalling address, so media can only use the
``net`` link.  Run with a port per call and with the shared ``media.browser_port``, and in a
call the gateway offered (a REST call to the tone line handed to the page, which answered):
the browser makes the restart offer there too.
"""

from __future__ import annotations

import json
import shutil
from io import BytesIO
from typing import Any

from twisted.internet import reactor, task
from twisted.trial import unittest
from twisted.web.client import Agent, FileBodyProducer, readBody
from twisted.web.http_headers import Headers

from tests.e2e import Gateway
from tests.peers.chromium import Chromium, aio, dominant_frequency, evaluate, write_tone_wav
from tests.peers.netns import chromium_in, network_for, scratch_folder
from tests.peers.ports import free_port
from tests.support import assert_near, inline
from tests.test_api_browser import PLACE_CALL_JS, SDK_SETUP_JS
from wcsgw.config import Config, HttpSettings, MediaSettings, SipSettings

SIG_BROWSER, SIG_GATEWAY = "10.76.0.2", "10.76.0.1"
OLD, NEW, MEDIA_GATEWAY = "10.78.0.2", "10.78.0.3", "10.78.0.1"
REMOTE = "window.call.getRemoteStream()"

#: Whether the browser's WebRTC sees ``address`` among its own now (a throwaway connection's
#: host candidates): a restart before that would offer the old network only.
SEES_ADDRESS_JS = """async (address) => {
  const pc = new RTCPeerConnection();
  pc.addTransceiver("audio");
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((resolve) => {
    const done = () => pc.iceGatheringState === "complete" && resolve();
    pc.addEventListener("icegatheringstatechange", done);
    done();
    setTimeout(resolve, 3000);
  });
  const sdp = pc.localDescription.sdp;
  pc.close();
  return sdp.split("\\r\\n").some((l) => l.startsWith("a=candidate:") && l.includes(" " + address + " "));
}"""

#: The session answers the next incoming call (it becomes ``window.call``).
#: Arms the page to answer the next incoming call; returns once armed (so that the call the
#: test then starts cannot arrive before the handler), ``window.answered`` its call's id.
ANSWER_NEXT_JS = """() => {
  window.answered = new Promise((resolve) => {
    window.session.on(window.wcsgw.SESSION_STATUS.INCOMING_CALL, (call) => {
      window.call = call;
      call.answer().then(() => resolve(call.id()));
    });
  });
  return true;
}"""

ESTABLISHED_JS = """() => new Promise((resolve, reject) => {
  if (window.call.status() === "ESTABLISHED") return resolve(true);
  if (["FAILED", "FINISH", "BUSY"].includes(window.call.status()))
    return reject(new Error(window.call.status() + ": " + window.call.getInfo()));
  window.call.on(window.wcsgw.CALL_STATUS.ESTABLISHED, () => resolve(true));
  window.call.on(window.wcsgw.CALL_STATUS.FAILED, () => reject(new Error(window.call.getInfo())));
})"""


async def until(predicate: Any, timeout: float = 15.0, what: str = "") -> None:
    """Poll a gateway-side condition (no event to wait on there) every 50 ms, with a deadline."""
    deadline = reactor.seconds() + timeout
    while not predicate():
        if reactor.seconds() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await task.deferLater(reactor, 0.05, lambda: None)


class IceRestartTests(unittest.TestCase):
    timeout = 150

    def build_network(self) -> None:
        self.net = network_for(self)  # removed last, after every peer
        self.ns = self.net.namespace("browser")
        tag = self.net.tag
        self.net.link(self.ns, "sig", f"{SIG_BROWSER}/24", None, f"sg{tag}", f"{SIG_GATEWAY}/24")
        self.net.link(self.ns, "net", f"{OLD}/24", None, f"nt{tag}", f"{MEDIA_GATEWAY}/24")
        self.scratch = scratch_folder()
        self.addCleanup(shutil.rmtree, self.scratch, True)

    def start_gateway(self, browser_port: int) -> Gateway:
        http_port = free_port("tcp", SIG_GATEWAY)
        # Only the page and its WebSocket leave from the signalling address (media could
        # otherwise go out of the other link with that source, which never changes).
        for rule in (["-s", SIG_BROWSER, "-p", "tcp", "--dport", str(http_port), "-j", "ACCEPT"],
                     ["-s", SIG_BROWSER, "-j", "DROP"]):
            self.ns.run(["iptables", "-A", "OUTPUT", *rule])
        gateway = Gateway(Config(
            http=HttpSettings(listen=SIG_GATEWAY, port=http_port),
            sip=SipSettings(listen="127.0.0.1", port=0),
            media=MediaSettings(listen="0.0.0.0", browser_address=MEDIA_GATEWAY,
                                sip_address="127.0.0.1", port_min=30000, port_max=30999,
                                rtp_timeout=30.0, browser_port=browser_port),
        ))
        gateway.start()
        self.addCleanup(gateway.stop)
        return gateway

    async def hears_tone(self, page: Any) -> None:
        peak = await dominant_frequency(page, REMOTE, 1500)
        assert_near(self, peak["frequency"], 1000, 15)
        self.assertGreater(peak["level"], -60)

    async def rest_call(self, gateway: Gateway, body: dict[str, Any]) -> int:
        """POST ``/rest-api/call/startup`` (no tokens configured: open, as on a test bench)."""
        response = await Agent(reactor).request(
            b"POST", f"{gateway.url}rest-api/call/startup".encode(),
            Headers({b"content-type": [b"application/json"]}),
            FileBodyProducer(BytesIO(json.dumps(body).encode())))
        await readBody(response)
        return int(response.code)

    async def network_change_mid_call(self, browser_port: int = 0,
                                      answered: bool = False) -> None:
        self.build_network()
        gateway = self.start_gateway(browser_port)
        url = f"http://{SIG_GATEWAY}:{gateway.top.getServiceNamed('http').address[1]}"
        # getUserMedia needs a secure context: this origin counts as one (as https would)
        browser = Chromium(fake_audio=write_tone_wav(self.mktemp() + ".wav", 440.0),
                           executable=chromium_in(self.ns, self.scratch),
                           extra_args=(f"--unsafely-treat-insecure-origin-as-secure={url}",))
        await browser.start()
        self.addCleanup(browser.stop)
        page = await browser.new_page()
        await aio(page.goto(url + "/"))
        session_id = await evaluate(page, SDK_SETUP_JS)
        if answered:  # the gateway offers (a REST call to the tone line handed to the page)
            self.assertTrue(await evaluate(page, ANSWER_NEXT_JS))
            self.assertEqual(await self.rest_call(gateway, {
                "callId": "handed", "callee": "tone", "sessionId": session_id}), 200)
            self.assertEqual(await evaluate(page, "() => window.answered"), "handed")
        else:
            await evaluate(page, PLACE_CALL_JS, {"callee": "tone"})
        await evaluate(page, ESTABLISHED_JS)
        await self.hears_tone(page)

        [call] = gateway.calls.values()
        leg = call.leg
        await until(lambda: leg.remote_address is not None and leg.srtp is not None,
                    what="the leg's peer")
        old_peer = leg.remote_address
        self.assertEqual(old_peer[0], OLD)
        if browser_port:
            self.assertEqual(leg.port, browser_port)
        ufrag, keys, connected_at = leg.ice_ufrag, leg.srtp, leg.connected_at
        sip_version = call.sip_sdp.version

        # The network changes: the old address goes, a new one comes.
        self.ns.run(["ip", "addr", "del", f"{OLD}/24", "dev", "net"])
        self.ns.run(["ip", "addr", "add", f"{NEW}/24", "dev", "net"])
        deadline = reactor.seconds() + 20
        while not await evaluate(page, SEES_ADDRESS_JS, NEW):
            self.assertLess(reactor.seconds(), deadline, "Chromium never saw its new address")
        before = leg.rtp_in

        await evaluate(page, "() => window.call.restartIce()")
        await until(lambda: leg.remote_address is not None and leg.remote_address[0] == NEW
                    and leg.rtp_in > before + 25, what="media from the new address")
        await self.hears_tone(page)
        # The gateway restarted ICE only: new credentials, the same DTLS and keys, the old
        # address forgotten, the call up, nothing sent to the SIP side.
        self.assertNotEqual(leg.ice_ufrag, ufrag)
        self.assertGreaterEqual(leg.control.ice.restarts, 1)
        self.assertIs(leg.srtp, keys)
        self.assertEqual(leg.connected_at, connected_at)
        self.assertFalse(leg.control.admits(old_peer))
        self.assertEqual(call.describe()["status"], "ESTABLISHED")
        self.assertEqual(call.sip_sdp.version, sip_version)  # no re-offer toward SIP
        if browser_port:
            port = gateway.top.call_gateway.browser_port
            self.assertIn(leg.ice_ufrag, port.demux)
            self.assertNotIn(ufrag, port.demux)
        remote_sdp = await evaluate(page, "() => window.call.getPeerConnection()"
                                          ".currentRemoteDescription.sdp")
        self.assertIn(f"a=ice-ufrag:{leg.ice_ufrag}", remote_sdp)

        await evaluate(page, "() => window.call.hangup()")
        await gateway.when_idle()
        await gateway.testlines.wait_idle()
        self.assertEqual(gateway.calls, {})

    @inline
    async def test_network_change_with_a_port_per_call(self) -> None:
        await self.network_change_mid_call()

    @inline
    async def test_network_change_in_a_call_the_page_answered(self) -> None:
        """The gateway offered this call (the page answered): the restart offer is the
        browser's all the same, and the gateway answers it keeping its DTLS server role."""
        await self.network_change_mid_call(answered=True)

    @inline
    async def test_network_change_on_the_shared_browser_port(self) -> None:
        await self.network_change_mid_call(free_port("udp+tcp", "0.0.0.0"))


