"""ICE restart on the gateway's side (issue 15 item 4: a browser network change), without a
browser: the ICE-lite responder's switch to new credentials (sans-IO), the shared port's
demultiplexer re-keyed, the SDP answer to a restart offer and what it refuses, the browser
leg and the ``restartIce`` method, a real leg (UDP socket, DTLS, SRTP) that moves to a
new address, and one on the shared port that moves from ICE-TCP to UDP (its old connection
closed).  Chromium against the whole gateway: tests.test_e2e_ice_restart."""

from __future__ import annotations

from typing import Any

import attr
from aioice import stun
from twisted.internet import reactor
from twisted.internet.protocol import ClientCreator
from twisted.trial import unittest

from tests import test_webrtc_leg as legs, test_webrtc_sharedport as shared_tests
from tests.support import EventLog, inline
from tests.test_api_methods import MethodsTestCase
from tests.test_webrtc_mux import BROWSER, OTHER, SRTP, binding
from tests.test_webrtc_sdp import CHROME_OFFER, VIDEO_SECTION, FakeLeg
from tests.test_webrtc_stun import LOCAL, REMOTE_UFRAG, binding_request
from wcsgw.api import jsonrpc
from wcsgw.calls.browserleg import AnsweringBrowser, OfferingBrowser
from wcsgw.calls.errors import CallError, Codes
from wcsgw.sdp.codecs import OPUS, PCMA, PCMU, TELEPHONE_EVENT_8000, TELEPHONE_EVENT_48000
from wcsgw.sdp.errors import SdpNegotiationError
from wcsgw.sdp.parser import parse_sdp, serialize_sdp
from wcsgw.webrtc.control import LegError
from wcsgw.webrtc.mux import Demux, TcpAddress
from wcsgw.webrtc.restart import plan_restart
from wcsgw.webrtc.sdp import VideoSpec, answer_for_browser
from wcsgw.webrtc.sharedport import SharedPort
from wcsgw.webrtc.stun import IceCredentials, IceLiteResponder, make_ice_credentials

NEW = IceCredentials(ufrag="new1", pwd="newpasswordnewpassword1")
NEW_REMOTE = "brw2"
MOVED = ("127.0.0.1", 50002)
OLD = ("127.0.0.1", 50000)


def check(creds: IceCredentials = NEW, remote: str = NEW_REMOTE, nominate: bool = False) -> bytes:
    return binding_request(f"{creds.ufrag}:{remote}", creds.pwd.encode(), use_candidate=nominate)[0]


class ResponderRestartTests(unittest.TestCase):
    def setUp(self) -> None:
        self.ice = IceLiteResponder(LOCAL, remote_ufrag=REMOTE_UFRAG)
        self.ice.start(100.0)
        self.assertIsNotNone(self.ice.receive(check(LOCAL, REMOTE_UFRAG, True), OLD, 101.0))
        self.ice.restart(NEW, NEW_REMOTE)

    def test_old_credentials_are_refused_once_restarted(self) -> None:
        self.assertIsNone(self.ice.receive(check(LOCAL, REMOTE_UFRAG), OLD, 102.0))
        # the new ufrag keyed with the old password, and the old browser ufrag, too
        self.assertIsNone(self.ice.receive(check(IceCredentials(NEW.ufrag, LOCAL.pwd)), OLD, 102.0))
        self.assertIsNone(self.ice.receive(check(NEW, REMOTE_UFRAG), OLD, 102.0))
        self.assertEqual(self.ice.requests_ignored, 3)
        self.assertEqual(self.ice.restarts, 1)

    def test_new_address_nominated_with_new_credentials_takes_over(self) -> None:
        # before the new pair is nominated, media on the old one still goes on
        self.assertTrue(self.ice.is_authenticated(OLD))
        self.assertEqual(self.ice.selected, OLD)
        first = self.ice.receive(check(), MOVED, 103.0)
        assert first is not None
        self.assertEqual((first.first, first.new_address, first.forgotten), (False, True, ()))
        self.assertTrue(self.ice.is_authenticated(OLD))
        nominated = self.ice.receive(check(nominate=True), MOVED, 103.1)
        assert nominated is not None
        self.assertEqual(nominated.forgotten, (OLD,))
        self.assertEqual((self.ice.selected, self.ice.nominated), (MOVED, MOVED))
        self.assertFalse(self.ice.is_authenticated(OLD))
        self.assertEqual(self.ice.consent_deadline(30.0), 133.1)
        # the answer is keyed with the new password
        response = stun.parse_message(nominated.response)
        self.assertTrue(response.check_message_integrity(NEW.pwd.encode()))

    def test_restart_on_the_same_address_forgets_nothing(self) -> None:
        outcome = self.ice.receive(check(nominate=True), OLD, 103.0)
        assert outcome is not None
        self.assertEqual(outcome.forgotten, ())
        self.assertTrue(self.ice.is_authenticated(OLD))
        self.assertEqual(self.ice.selected, OLD)

    def test_consent_runs_on_while_no_new_check_comes(self) -> None:
        self.assertEqual(self.ice.consent_deadline(30.0), 131.0)


class DemuxRekeyTests(unittest.TestCase):
    def test_rekeyed_leg_is_found_by_its_new_ufrag_only_and_keeps_its_addresses(self) -> None:
        demux: Demux[str] = Demux()
        demux.register("old1", "leg")
        demux.register("othr", "other leg")
        demux.prove(BROWSER, "old1")
        demux.rekey("old1", "new1")
        self.assertIsNone(demux.route(binding("old1:brws"), BROWSER))
        self.assertEqual(demux.route(binding("new1:brw2"), OTHER), "leg")
        self.assertEqual(demux.route(SRTP, BROWSER), "leg")  # its media still reaches it
        self.assertEqual(demux.owner(BROWSER), "new1")
        self.assertNotIn("old1", demux)
        demux.forget(BROWSER)  # the leg dropped the old pair after the new one was nominated
        self.assertIsNone(demux.route(SRTP, BROWSER))
        demux.prove(OTHER, "new1")
        self.assertEqual(demux.unregister("new1"), {OTHER})
        self.assertEqual(len(demux), 1)

    def test_rekey_to_a_taken_ufrag_is_refused_and_changes_nothing(self) -> None:
        demux: Demux[str] = Demux()
        demux.register("old1", "leg")
        demux.register("othr", "other leg")
        with self.assertRaises(ValueError):
            demux.rekey("old1", "othr")
        self.assertEqual(demux.route(binding("old1:x"), BROWSER), "leg")
        self.assertEqual(demux.route(binding("othr:x"), BROWSER), "other leg")


def restarted(text: str, ufrag: str = "rst2", pwd: str = "restartpasswordrestart9") -> str:
    """The browser's restart offer: the same SDP with new ICE credentials and version."""
    return (text.replace("a=ice-ufrag:ihil", f"a=ice-ufrag:{ufrag}")
            .replace("a=ice-pwd:EuEpvqmg5jLB7e8yLagxZoWb", f"a=ice-pwd:{pwd}")
            .replace(" 2 IN IP4 127.0.0.1", " 3 IN IP4 127.0.0.1"))


BROWSER_FINGERPRINT = ("sha-256", "A8:22:C8:59:A5:16:C1:F6:78:BD:6A:C9:FB:AF:C3:02:24:56:47:A0:"
                       "98:50:45:C1:F0:84:C8:E2:9F:1E:51:E8")


class RestartAnswerTests(unittest.TestCase):
    """The answer to a restart offer of a call the browser placed."""

    def setUp(self) -> None:
        self.leg = FakeLeg()
        self.offer = parse_sdp(CHROME_OFFER)
        self.local = answer_for_browser(self.offer, self.leg, [OPUS, TELEPHONE_EVENT_48000],
                                        0x1234ABCD, "cname")

    def plan(self, text: str, fingerprint: tuple[str, str] = BROWSER_FINGERPRINT) -> Any:
        return plan_restart(parse_sdp(text), self.local, self.offer, fingerprint)

    def test_answer_keeps_all_but_ice_and_says_passive(self) -> None:
        plan = self.plan(restarted(CHROME_OFFER))
        self.assertEqual((plan.transport.ice_ufrag, plan.transport.ice_pwd),
                         ("rst2", "restartpasswordrestart9"))
        new_leg = attr.evolve(self.leg, ice_ufrag="gwN2", ice_pwd="gatewaynewpasswordgw12")
        answer = plan.answer(new_leg)
        audio = answer.media[0]
        self.assertEqual((audio.ice_ufrag, audio.ice_pwd), ("gwN2", "gatewaynewpasswordgw12"))
        self.assertEqual(audio.setup, "passive")
        self.assertEqual(audio.fingerprint, self.local.media[0].fingerprint)
        self.assertEqual(audio.formats, ["111", "110"])
        self.assertEqual(audio.get_all("msid"), self.local.media[0].get_all("msid"))
        self.assertEqual(audio.get_all("ssrc"), self.local.media[0].get_all("ssrc"))
        self.assertEqual(audio.direction, "sendrecv")
        self.assertEqual(audio.get_all("candidate"), [
            f"1 1 udp 2130706431 {self.leg.host} {self.leg.port} typ host"])
        self.assertEqual(answer.origin.session_id, self.local.origin.session_id)
        self.assertEqual(answer.origin.session_version, self.local.origin.session_version + 1)
        self.assertTrue(answer.ice_lite)
        self.assertEqual(answer.groups(), [["0"]])
        text = serialize_sdp(answer)
        self.assertNotIn(self.leg.ice_ufrag, text)
        self.assertEqual(text.count("a=ice-ufrag:"), 1)
        self.assertEqual(parse_sdp(text).media[0].formats, ["111", "110"])

    def test_a_second_restart_starts_from_the_first(self) -> None:
        first = self.plan(restarted(CHROME_OFFER))
        self.local, self.offer = first.answer(self.leg), first.offer
        second = self.plan(restarted(CHROME_OFFER, "rst3", "restartpasswordrestart3"))
        self.assertEqual(second.answer(self.leg).origin.session_version,
                         self.local.origin.session_version + 1)

    def test_refused(self) -> None:
        def refused(text: str, fingerprint: tuple[str, str] = BROWSER_FINGERPRINT) -> str:
            with self.assertRaises(SdpNegotiationError) as caught:
                self.plan(text, fingerprint)
            return str(caught.exception)

        self.assertIn("keeps the ICE credentials", refused(CHROME_OFFER))
        self.assertIn("fingerprint", refused(restarted(CHROME_OFFER), ("sha-256", "AB:CD")))
        self.assertIn("m-lines", refused(restarted(CHROME_OFFER) + VIDEO_SECTION))
        self.assertIn("opus/48000/2", refused(restarted(CHROME_OFFER).replace(
            "UDP/TLS/RTP/SAVPF 111 63", "UDP/TLS/RTP/SAVPF 63")))
        self.assertIn("opus/48000/2", refused(restarted(CHROME_OFFER).replace(
            "a=rtpmap:111 opus/48000/2", "a=rtpmap:111 ISAC/16000")))
        self.assertIn("mid", refused(restarted(CHROME_OFFER).replace("a=mid:0", "a=mid:7")))
        self.assertIn("passive", refused(restarted(CHROME_OFFER).replace(
            "a=setup:actpass", "a=setup:passive")))
        # upper or lower case hex is the same certificate
        lower = (BROWSER_FINGERPRINT[0].upper(), BROWSER_FINGERPRINT[1].lower())
        self.assertTrue(self.plan(restarted(CHROME_OFFER), lower).answer(self.leg))

    def test_video_kept_with_its_format_only(self) -> None:
        with_video = CHROME_OFFER.replace("a=group:BUNDLE 0", "a=group:BUNDLE 0 1") + VIDEO_SECTION
        self.offer = parse_sdp(with_video)
        vp8 = self.offer.media[1].codecs()[0]
        self.local = answer_for_browser(self.offer, self.leg, [OPUS, TELEPHONE_EVENT_48000],
                                        1, "c", video=VideoSpec([vp8], ssrc=2))
        answer = self.plan(restarted(with_video)).answer(self.leg)
        self.assertEqual([m.formats for m in answer.media], [["111", "110"], ["96"]])
        self.assertEqual(answer.groups(), [["0", "1"]])
        self.assertEqual(answer.media[1].setup, "passive")


#: What Chromium answers our offer with (PCMU and telephone-event taken), then its restart offer.
BROWSER_ANSWER = """v=0
o=- 4611731400430051336 2 IN IP4 127.0.0.1
s=-
t=0 0
a=group:BUNDLE 0
a=msid-semantic: WMS
m=audio 9 UDP/TLS/RTP/SAVPF 0 126
c=IN IP4 0.0.0.0
a=rtcp:9 IN IP4 0.0.0.0
a=ice-ufrag:ihil
a=ice-pwd:EuEpvqmg5jLB7e8yLagxZoWb
a=fingerprint:{fp}
a=setup:active
a=mid:0
a=sendrecv
a=msid:- 1739555f
a=rtcp-mux
a=rtcp-rsize
a=rtpmap:0 PCMU/8000
a=rtpmap:126 telephone-event/8000
a=ssrc:11 cname:x
""".format(fp=" ".join(BROWSER_FINGERPRINT))

BROWSER_RESTART_OFFER = BROWSER_ANSWER.replace("a=setup:active", "a=setup:actpass").replace(
    "SAVPF 0 126", "SAVPF 111 0 8 126").replace(
    "a=rtpmap:0 PCMU/8000", "a=rtpmap:111 opus/48000/2\na=rtpmap:0 PCMU/8000\n"
    "a=rtpmap:8 PCMA/8000").replace(" 2 IN IP4", " 3 IN IP4")


@attr.s(auto_attribs=True)
class FakeMedia(FakeLeg):
    """A browser leg's media end: what the SDP and a restart use of a WebRtcLeg."""

    on_state: Any = None
    remote: Any = None
    restarts: list[tuple[str, str]] = attr.Factory(list)
    ended: bool = False

    @property
    def remote_fingerprint(self) -> Any:
        return self.remote and self.remote[2]

    def set_remote(self, ufrag: str, pwd: str, fingerprint: tuple[str, str]) -> None:
        self.remote = (ufrag, pwd, fingerprint)

    def restart_ice(self, ufrag: str, pwd: str) -> None:
        if self.ended:
            raise LegError("ICE restart in state failed:ice")
        self.restarts.append((ufrag, pwd))
        self.ice_ufrag, self.ice_pwd = "gwN" + str(len(self.restarts)), "gatewaypassword" * 2


class BrowserLegRestartTests(unittest.TestCase):
    def test_offering_browser(self) -> None:
        media = FakeMedia()
        leg = OfferingBrowser(media, "cname", parse_sdp(CHROME_OFFER))
        with self.assertRaises(CallError) as caught:
            leg.restart_ice(restarted(CHROME_OFFER))
        self.assertEqual((caught.exception.code, caught.exception.field), (Codes.BAD_STATE, "callId"))
        leg.answer([OPUS, TELEPHONE_EVENT_48000], None)
        answer = parse_sdp(leg.restart_ice(restarted(CHROME_OFFER)))
        self.assertEqual(media.restarts, [("rst2", "restartpasswordrestart9")])
        self.assertEqual(answer.media[0].ice_ufrag, "gwN1")
        for bad in ("not sdp", restarted(CHROME_OFFER, "rst2", "restartpasswordrestart9"),
                    restarted(CHROME_OFFER, "rst4", "restartpasswordrestart4").replace(
                        "A8:22:C8", "A9:22:C8")):
            with self.assertRaises(CallError) as caught:
                leg.restart_ice(bad)
            self.assertEqual((caught.exception.code, caught.exception.field),
                             (Codes.INVALID, "sdp"))
        self.assertEqual(len(media.restarts), 1)  # nothing changed by a refused offer
        media.ended = True
        with self.assertRaises(CallError) as caught:
            leg.restart_ice(restarted(CHROME_OFFER, "rst5", "restartpasswordrestart5"))
        self.assertEqual(caught.exception.field, "callId")

    def test_answering_browser_answers_what_was_agreed(self) -> None:
        media = FakeMedia()
        leg = AnsweringBrowser(media, "cname")
        ours = leg.make_offer([PCMU, PCMA, TELEPHONE_EVENT_8000], None)
        leg.take_answer(BROWSER_ANSWER.replace("a=mid:0", f"a=mid:{parse_sdp(ours).media[0].mid}"))
        text = leg.restart_ice(restarted(BROWSER_RESTART_OFFER))
        answer = parse_sdp(text)
        audio = answer.media[0]
        self.assertEqual(audio.formats, ["0", "126"])
        self.assertEqual(audio.setup, "passive")
        self.assertEqual(audio.ice_ufrag, "gwN1")
        self.assertEqual(audio.get_all("ssrc")[0], f"{leg.ssrc} cname:cname")
        self.assertTrue(audio.has("rtcp-rsize"))
        self.assertNotIn("a=rtpmap:8 ", text)
        self.assertEqual(answer.origin.session_id, parse_sdp(ours).origin.session_id)


class MethodRestartTests(MethodsTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.asked: list[tuple[str, str, str]] = []
        self.failure: CallError | None = None

        def restart_ice(session_id: str, call_id: str, sdp: str) -> str:
            self.asked.append((session_id, call_id, sdp))
            if self.failure is not None:
                raise self.failure
            return "v=0 answer"

        self.gateway.restart_ice = restart_ice  # type: ignore[attr-defined]

    def test_restart_ice(self) -> None:
        result = self.assertResult(self.rpc("restartIce", {"callId": "c1", "sdp": "v=0 offer"}))
        self.assertEqual(result, {"sdp": "v=0 answer"})
        self.assertEqual(self.asked[0][1:], ("c1", "v=0 offer"))
        self.assertError(self.rpc("restartIce", {"callId": "c1"}), jsonrpc.INVALID_PARAMS, "sdp")
        self.failure = CallError(Codes.INVALID, "not an ICE restart offer: ...", "sdp")
        error = self.assertError(self.rpc("restartIce", {"callId": "c1", "sdp": "x"}),
                                 Codes.INVALID, "sdp")
        self.assertIn("ICE restart", error["message"])
        self.assertEqual(len(self.asked), 2)


class LegRestartTests(unittest.TestCase):
    """A real leg: connected over DTLS from one address, restarted, then reached from another
    with the new credentials only; SRTP goes on with the same keys."""

    @inline
    async def test_media_moves_to_the_new_address_with_the_same_keys(self) -> None:
        leg, browser, states = legs.LegTests.make_leg(self)  # type: ignore[arg-type]
        await legs.LegTests.connect(self, leg, browser, states)  # type: ignore[arg-type]
        old_ufrag, old_pwd, keys = leg.ice_ufrag, leg.ice_pwd, leg.srtp
        moved = legs.Bystander()
        port = reactor.listenUDP(0, moved, interface=legs.HOST)
        self.addCleanup(port.stopListening)
        browser.creds = make_ice_credentials()
        leg.restart_ice(browser.creds.ufrag, browser.creds.pwd)
        self.assertNotEqual(leg.ice_ufrag, old_ufrag)
        self.assertNotEqual(leg.ice_pwd, old_pwd)
        # a check with the old credentials is ignored now
        browser.check(key=old_pwd)
        msg = stun.Message(stun.Method.BINDING, stun.Class.REQUEST)
        msg.attributes["USERNAME"] = f"{leg.ice_ufrag}:{browser.creds.ufrag}"
        msg.attributes["USE-CANDIDATE"] = None
        msg.add_message_integrity(leg.ice_pwd.encode())
        moved.transport.write(bytes(msg), browser.target)
        answer = stun.parse_message(await moved.received.wait_for(lambda d: d[0] < 4, timeout=5))
        self.assertEqual(answer.transaction_id, msg.transaction_id)
        self.assertEqual(leg.remote_address, ("127.0.0.1", port.getHost().port))
        self.assertIs(leg.srtp, keys)
        self.assertEqual(leg.state, "connected")
        got = EventLog()
        leg.on_rtp = lambda packet, now: got(packet)
        # the old address first (forgotten once the new pair was nominated), then the new one:
        # on loopback both are queued on the leg's socket in this order
        browser.send_rtp(legs.rtp(8))
        browser.send_rtp(legs.rtp(7), via=moved)
        await got.wait_for(lambda p: True, timeout=5)
        self.assertEqual([p[2:4] for p in got.events], [b"\x00\x07"])
        self.assertEqual(leg.dropped_in, 1)
        leg.send_rtp(legs.rtp(9, ssrc=0xBEEF))
        await moved.received.wait_for(lambda d: d[0] >= 128, timeout=5)
        self.assertEqual(leg.rtp_out, 1)
        self.assertNotIn("failed:ice", states.events)


class SharedPortRestartTests(unittest.TestCase):
    """On the shared browser port: a leg connected over ICE-TCP restarts ICE and comes back
    over UDP from another address; the port routes by the new ufrag only, and once the new
    pair is nominated the old address is un-routed and its ICE-TCP connection closed."""

    timeout = 30

    def setUp(self) -> None:
        self.shared = SharedPort(reactor, legs.HOST, 0)
        self.shared.start()
        self.addCleanup(self.shared.stop)

    @inline
    async def test_ice_tcp_leg_moves_to_udp_on_new_credentials(self) -> None:
        path: shared_tests.TcpPath = await ClientCreator(
            reactor, shared_tests.TcpPath).connectTCP(legs.HOST, self.shared.port)
        self.addCleanup(lambda: path.transport.loseConnection())  # type: ignore[union-attr]
        scripted: Any = shared_tests.SharedPortTests  # its helpers, on this case's port
        leg, browser, states = scripted.make_leg(self, shared_tests.TcpBrowser, path)
        await scripted.connect(self, leg, browser, states)
        old_address, old_ufrag, keys = leg.remote_address, leg.ice_ufrag, leg.srtp
        self.assertIsInstance(old_address, TcpAddress)

        browser.creds = make_ice_credentials()
        leg.restart_ice(browser.creds.ufrag, browser.creds.pwd)
        self.assertNotIn(old_ufrag, self.shared.demux)
        self.assertIn(leg.ice_ufrag, self.shared.demux)
        self.assertEqual(self.shared.demux.owner(old_address), leg.ice_ufrag)  # still its own

        moved = legs.Bystander()
        port = reactor.listenUDP(0, moved, interface=legs.HOST)
        self.addCleanup(port.stopListening)
        stale = stun.Message(stun.Method.BINDING, stun.Class.REQUEST)
        stale.attributes["USERNAME"] = f"{old_ufrag}:{browser.creds.ufrag}"
        stale.add_message_integrity(leg.ice_pwd.encode())
        dropped = self.shared.demux.dropped
        moved.transport.write(bytes(stale), browser.target)  # the old ufrag: no leg any more
        check = stun.Message(stun.Method.BINDING, stun.Class.REQUEST)
        check.attributes["USERNAME"] = f"{leg.ice_ufrag}:{browser.creds.ufrag}"
        check.attributes["USE-CANDIDATE"] = None
        check.add_message_integrity(leg.ice_pwd.encode())
        moved.transport.write(bytes(check), browser.target)
        answer = stun.parse_message(await moved.received.wait_for(lambda d: d[0] < 4, timeout=5))
        self.assertEqual(answer.transaction_id, check.transaction_id)
        self.assertEqual(self.shared.demux.dropped, dropped + 1)
        await path.lost  # the old pair's connection, closed by the port
        self.assertIsNone(self.shared.demux.owner(old_address))
        self.assertEqual(leg.remote_address, (legs.HOST, port.getHost().port))
        heard = EventLog()
        leg.on_rtp = lambda packet, now: heard(packet)
        browser.send_rtp(legs.rtp(3), via=moved)
        await heard.wait_for(lambda p: p[2:4] == b"\0\x03", timeout=5)
        self.assertIs(leg.srtp, keys)
