"""Incoming calls with real peers: a baresip phone calls the browser user through Kamailio.

The browser (Phone UI, fake 440 Hz microphone) logs in as 1001 and registers; baresip 1002
(1 kHz) dials sip:1001@127.0.0.1 at Kamailio, which forks to every contact of 1001 — the
browser sessions' own contacts at the gateway.
"""

from __future__ import annotations

import attrs
import numpy as np
from twisted.internet import reactor, task
from twisted.trial import unittest

from tests.e2e import PeersMixin, Phone, dominant_hz
from tests.peers.baresip import Baresip
from tests.peers.chromium import aio, evaluate
from tests.support import EventLog, assert_near, inline
from wcsgw.config import SipSettings
from wcsgw.media.g711 import ulaw_decode
from wcsgw.media.ports import PortAllocator
from wcsgw.media.rtp import rtp_payload
from wcsgw.media.udp import RtpSocket
from wcsgw.sdp.codecs import Codec
from wcsgw.sdp.negotiate import audio_answer, new_session_id
from wcsgw.sdp.parser import parse_sdp, serialize_sdp
from wcsgw.sip.dialog import Dialog
from wcsgw.sip.dialogs import dialog_target
from wcsgw.sip.ids import new_call_id, new_tag
from wcsgw.sip.message import Request
from wcsgw.sip.service import SipService
from wcsgw.sip.target import Target


class IncomingCallTests(PeersMixin, unittest.TestCase):
    timeout = 120

    async def setup(self, *, sessions: int = 1) -> tuple[list[Phone], Baresip]:
        await self.start_pbx_and_phone()
        await self.start_browser()
        uis = [await self.logged_in_ui() for _ in range(sessions)]
        self.assertEqual(len(await self.kam.bindings("1001")), sessions)
        return uis, self.phone

    @inline
    async def test_answer_audio_both_ways(self) -> None:
        [ui], phone = await self.setup()
        await phone.command("dial", f"sip:1001@127.0.0.1:{self.kam.port}")
        await ui.ringing()
        self.assertIn("1002", await ui.status_text("incoming-text"))
        self.assertEqual(await evaluate(ui.page, "document.getElementById('incoming').dataset.ringing"),
                         "true")  # the ring plays
        [call] = self.gateway.calls.values()
        self.assertTrue(call.describe()["incoming"])
        await ui.click("Answer")
        await ui.wait_state("call-status", "established")
        await phone.wait_event("CALL_ESTABLISHED")
        self.assertEqual(await evaluate(ui.page, "document.getElementById('incoming').dataset.ringing"),
                         "false")  # answered: the ring stops
        self.assertEqual(call.describe()["media"]["mode"], "relay")
        peak = await ui.received_frequency()
        assert_near(self, peak["frequency"], 1000, 15)
        await task.deferLater(reactor, 1.5, lambda: None)  # let the phone record the browser
        mark = phone.mark()
        await ui.click("Hangup")
        await phone.wait_event("CALL_CLOSED", since=mark)
        [recording] = phone.recordings()
        frequency, level = dominant_hz(recording)
        assert_near(self, frequency, 440, 10)
        self.assertGreater(level, 300)
        await self.assert_clean()

    @inline
    async def test_decline(self) -> None:
        [ui], phone = await self.setup()
        mark = phone.mark()
        await phone.command("dial", f"sip:1001@127.0.0.1:{self.kam.port}")
        await ui.ringing()
        await ui.click("Decline")
        closed = await phone.wait_event("CALL_CLOSED", since=mark)
        self.assertIn("603", closed.get("param", ""))
        await ui.wait_state("call-status", "finish")
        await self.assert_clean()

    @inline
    async def test_caller_cancels_while_ringing(self) -> None:
        [ui], phone = await self.setup()
        await phone.command("dial", f"sip:1001@127.0.0.1:{self.kam.port}")
        await ui.ringing()
        await phone.command("hangup")
        await ui.wait_state("call-status", "finish")
        await self.assert_clean()

    @inline
    async def test_two_sessions_first_answer_wins(self) -> None:
        (first, second), phone = await self.setup(sessions=2)
        await phone.command("dial", f"sip:1001@127.0.0.1:{self.kam.port}")
        await first.ringing()
        await second.ringing()
        await second.click("Answer")
        await second.wait_state("call-status", "established")
        await first.wait_state("call-status", "finish")  # Kamailio CANCELs the other fork
        await phone.wait_event("CALL_ESTABLISHED")
        peak = await second.received_frequency()
        assert_near(self, peak["frequency"], 1000, 15)
        await second.click("Hangup")
        await self.assert_clean()

    @inline
    async def test_session_gone_gets_480_not_silence(self) -> None:
        [ui], phone = await self.setup()
        self.gateway.top.call_gateway.resume_seconds = 0  # the session ends with its socket
        contact = (await self.kam.bindings("1001"))[0]["contact"]
        await aio(ui.page.close())  # the WebSocket closes; the binding is removed (Expires: 0)
        await self.gateway.when_idle()
        for _ in range(50):
            if not await self.kam.bindings("1001"):
                break
            await task.deferLater(reactor, 0.05, lambda: None)
        self.assertEqual(await self.kam.bindings("1001"), [])
        # A caller that still has the old contact (a stale binding elsewhere) gets 480: a phone
        # with no proxy dials the gateway's contact straight.
        stray = Baresip("1004", codecs="PCMU")
        self.addCleanup(stray.stop)
        await stray.start()
        mark = stray.mark()
        await stray.command("dial", contact.strip("<>").split(";")[0])
        closed = await stray.wait_event("CALL_CLOSED", since=mark)
        self.assertIn("480", closed.get("param", ""))


class LateOfferTests(PeersMixin, unittest.TestCase):
    """An INVITE without SDP (late offer): the gateway's 200 carries the offer, the caller's
    ACK the answer, and the browser's voice reaches the caller."""

    timeout = 120

    @inline
    async def test_late_offer_invite(self) -> None:
        await self.start_pbx()
        await self.start_browser()
        ui = await self.logged_in_ui()
        kam, gateway = self.kam, self.gateway

        # The caller: a bare SIP UA of our own stack, and an RTP socket to hear the browser.
        caller = SipService(attrs.evolve(SipSettings(listen="127.0.0.1", port=0), t1=0.1, t2=0.8))
        caller.startService()
        self.addCleanup(caller.stopService)
        heard = EventLog()
        rtp = RtpSocket(reactor, PortAllocator("127.0.0.1", 31000, 31099), "127.0.0.1",
                        on_rtp=lambda packet, now: heard(packet))
        self.addCleanup(rtp.close)
        uri = f"sip:1001@127.0.0.1:{kam.port}"
        invite = Request("INVITE", uri, [
            ("From", f"<sip:caller@example.invalid>;tag={new_tag()}"), ("To", f"<{uri}>"),
            ("Call-ID", new_call_id("127.0.0.1")), ("CSeq", "1 INVITE"),
            ("Contact", f"<sip:caller@127.0.0.1:{caller.port}>"),
        ])
        finals = EventLog()
        caller.endpoint.send_request(invite, Target("UDP", "127.0.0.1", kam.port),
                                     reactor.seconds(),
                                     lambda r, now: r.status >= 200 and finals(r))
        await ui.ringing()
        await ui.click("Answer")
        ok = await finals.wait_for(lambda r: True)
        self.assertEqual(ok.status, 200)
        offer = parse_sdp(ok.body)  # the gateway offers in its 200
        # as a phone would: hear the gateway (only) from the address its offer names
        [offered] = [m for m in offer.media if m.kind == "audio"]
        rtp.set_remote(offer.connection_for(offered).address, offered.port)  # type: ignore[union-attr]
        answer = audio_answer(offer, "127.0.0.1", rtp.port, [Codec("PCMU", 8000, 1, 0)],
                              session_id=new_session_id())
        dialog = Dialog.from_uac(invite, ok)
        ack = dialog.create_ack(1, [("Content-Type", "application/sdp")],
                                serialize_sdp(answer).encode())
        caller.endpoint.send_request(ack, dialog_target(dialog), reactor.seconds(),
                                     lambda r, now: None)
        await ui.wait_state("call-status", "established")
        # Two seconds of the browser's audio, as PCMU.
        await heard.wait_for(lambda _packet: len(heard.events) >= 100)
        pcm = np.concatenate([ulaw_decode(rtp_payload(p)) for p in heard.events[25:]])
        spectrum = np.abs(np.fft.rfft(pcm * np.hanning(len(pcm))))
        assert_near(self, float(np.argmax(spectrum)) * 8000 / len(pcm), 440, 10)
        await ui.click("Hangup")
        await gateway.when_idle()
