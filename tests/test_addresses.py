"""Two sides, two addresses (issue 12): what browsers are told (``media.browser_address``) and
what the SIP side is told (``media.sip_address``), each apart from what sockets bind to.

The config half checks the keys refuse bad addresses with one line naming the key; the call
half (below, on the socketless fakes of tests/call_fakes.py) checks that every SDP toward one
side carries that side's address and never the other's."""

from __future__ import annotations

import os
from typing import Any, ClassVar

from twisted.internet import defer
from twisted.trial import unittest

from tests.call_fakes import Account, FakeIncomingInvite, FakeInvite, fake_call_setup, fake_env
from wcsgw.calls.addresses import sendable
from wcsgw.calls.filecall import FileCall
from wcsgw.calls.handed import HandedCall
from wcsgw.calls.inbound import InboundCall
from wcsgw.calls.outbound import OutboundCall
from wcsgw.calls.policy import Policy
from wcsgw.calls.status import CallStatus
from wcsgw.config import Config, ConfigError, parse_config
from wcsgw.media.rtp import build_rtp
from wcsgw.sdp.parser import parse_sdp
from wcsgw.sip.account import SipAccount
from wcsgw.sip.invite import Answered, Failed
from wcsgw.sip.session import ReferReceived, ReinviteOffered

PUBLIC, PRIVATE = "203.0.113.7", "10.0.0.7"
PUBLIC6 = "2001:db8::7"
CHROME_OFFER = open(os.path.join(os.path.dirname(__file__), "data", "chromium_offer_av.sdp")).read()


def media(**keys: Any) -> Config:
    return parse_config({"media": keys})


def media_error(**keys: Any) -> str:
    try:
        media(**keys)
    except ConfigError as exc:
        message = str(exc)
        assert "\n" not in message
        return message
    raise AssertionError(f"{keys} was accepted")


class ConfigTests(unittest.TestCase):
    def test_defaults_are_as_before(self) -> None:
        """Both empty: each side is told media.advertised_address, else the listen address."""
        self.assertEqual((Config().media.browser_host, Config().media.sip_host),
                         ("127.0.0.1", "127.0.0.1"))
        old = media(listen="0.0.0.0", advertised_address=PUBLIC).media
        self.assertEqual((old.browser_host, old.sip_host), (PUBLIC, PUBLIC))
        wildcard = media(listen="0.0.0.0").media
        self.assertEqual((wildcard.browser_host, wildcard.sip_host), ("127.0.0.1", "127.0.0.1"))

    def test_each_side_its_own(self) -> None:
        m = media(listen="0.0.0.0", advertised_address="192.0.2.1",
                  browser_address=PUBLIC, sip_address=PRIVATE).media
        self.assertEqual((m.browser_host, m.sip_host), (PUBLIC, PRIVATE))
        self.assertEqual(media(browser_address=PUBLIC).media.sip_host, "127.0.0.1")

    def test_ipv6_toward_browsers(self) -> None:
        self.assertEqual(media(listen="::", browser_address="[2001:DB8:0::7]").media.browser_host,
                         PUBLIC6)  # brackets dropped, one canonical spelling
        self.assertEqual(media(listen="::1", browser_address="::1").media.browser_host, "::1")

    def test_bad_addresses_name_the_key(self) -> None:
        for key in ("browser_address", "sip_address"):
            for bad in ("gw.example.com", "0.0.0.0", "::", "224.0.0.1", "fe80::1%eth0",
                        "10.0.0.300", 7):
                message = media_error(listen="::", **{key: bad})
                self.assertTrue(message.startswith(f"media.{key}"), message)

    def test_family_the_sockets_cannot_receive(self) -> None:
        message = media_error(listen="0.0.0.0", browser_address=PUBLIC6)
        self.assertTrue(message.startswith("media.browser_address"), message)
        self.assertIn("IPv6", message)
        message = media_error(listen="::1", sip_address=PRIVATE)
        self.assertTrue(message.startswith("media.sip_address"), message)
        # "::" binds dual-stack sockets: both families
        m = media(listen="::", browser_address=PUBLIC6, sip_address=PRIVATE).media
        self.assertEqual((m.browser_host, m.sip_host), (PUBLIC6, PRIVATE))

    def test_environment_override(self) -> None:
        from wcsgw.config import load_config

        config = load_config(None, {"WCSGW_MEDIA_BROWSER_ADDRESS": PUBLIC,
                                    "WCSGW_MEDIA_SIP_ADDRESS": PRIVATE})
        self.assertEqual((config.media.browser_host, config.media.sip_host), (PUBLIC, PRIVATE))


class SendableTests(unittest.TestCase):
    def test_ipv4_on_a_dual_stack_socket_is_mapped(self) -> None:
        self.assertEqual(sendable("192.0.2.5", "::"), "::ffff:192.0.2.5")
        self.assertEqual(sendable("2001:db8::5", "::"), "2001:db8::5")
        self.assertEqual(sendable("192.0.2.5", "0.0.0.0"), "192.0.2.5")
        self.assertEqual(sendable("pbx.example", "::"), "pbx.example")


# -- the calls: each side hears its own address, never the other's ---------------------------

BROWSER_ANSWER_AUDIO = (
    "v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF {pt}\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n"
    "a=ice-ufrag:abcd\r\na=ice-pwd:" + "q" * 24 + "\r\na=fingerprint:sha-256 "
    + "01:" * 31 + "02\r\na=setup:active\r\na=sendrecv\r\na=rtcp-mux\r\n"
    "a=rtpmap:{pt} {rtpmap}\r\n")


def browser_answer(offer_text: str) -> str:
    """A browser's answer to the gateway's offer: its first audio format, no video."""
    offer = parse_sdp(offer_text)
    codec = offer.media[0].codecs()[0]
    text = BROWSER_ANSWER_AUDIO.format(pt=codec.payload_type, rtpmap=codec.rtpmap)
    if codec.fmtp:
        text += f"a=fmtp:{codec.payload_type} {codec.fmtp}\r\n"
    for extra in offer.media[1:]:
        text += f"m={extra.kind} 0 {extra.proto} {extra.formats[0]}\r\nc=IN IP4 0.0.0.0\r\n"
    return text


def phone_sdp(version: int, direction: str = "sendrecv", address: str = "192.0.2.50") -> bytes:
    """The phone's SDP (offer, answer or re-offer), from an address of neither side's."""
    return (f"v=0\r\no=- 5 {version} IN IP4 {address}\r\ns=-\r\nc=IN IP4 {address}\r\nt=0 0\r\n"
            "m=audio 30000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
            f"a=rtpmap:101 telephone-event/8000\r\na={direction}\r\n").encode()


class RecordingInvite(FakeInvite):
    """The fake dialog, every one of them kept (a transfer's new INVITE is a second one), and
    the far end's REFER answered as the session would."""

    created: ClassVar[list[RecordingInvite]] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.started = False
        RecordingInvite.created.append(self)

    def start(self, now: float) -> None:
        self.started = True

    def accept_refer(self, now: float, *, notify_trying: bool = True) -> None:
        pass

    def notify_refer(self, status: int, reason: str, now: float, final: bool | None = None) -> None:
        pass


class SidesCase(unittest.TestCase):
    """Calls between the browser side (told ``browser``) and the SIP side (told ``sip``),
    sockets bound to ``bind``: every SDP out is checked for its own side's address only."""

    bind, browser, sip = "0.0.0.0", PUBLIC, PRIVATE

    def setUp(self) -> None:
        fake_call_setup(self)
        RecordingInvite.created = []
        self.env = fake_env(self, media_host=self.bind, browser_address=self.browser,
                            sip_address=self.sip, make_invite=RecordingInvite,
                            policy=Policy(["192.0.2.50"]), incoming_transfers="accept")
        self.notes: list[tuple[str, dict[str, Any]]] = []
        self.addCleanup(lambda: self.assertEqual(self.allocator.in_use, frozenset()))  # last

    def notify(self, method: str, params: dict[str, Any]) -> None:
        self.notes.append((method, dict(params)))

    def assert_toward_sip(self, sdp: bytes | str | None) -> None:
        """Our SDP toward the SIP side: ``sip`` in c= and o=, the browser's address nowhere."""
        assert sdp is not None
        text = sdp.decode() if isinstance(sdp, bytes) else sdp
        parsed = parse_sdp(text)
        self.assertEqual(parsed.origin.address, self.sip)
        self.assertEqual({m.connection.address if m.connection else parsed.connection.address
                          for m in parsed.media if m.port}, {self.sip})
        self.assertNotIn(self.browser, text)
        self.assertNotIn(self.bind, text.replace(f"IN IP4 {self.sip}", ""))

    def assert_toward_browser(self, sdp: str | None) -> None:
        """Our SDP toward the browser: ``browser`` in c=, o= and the candidate, the SIP side's
        address nowhere."""
        assert sdp is not None
        parsed = parse_sdp(sdp)
        family = "IP6" if ":" in self.browser else "IP4"
        self.assertIn(f"c=IN {family} {self.browser}\r\n", sdp)
        self.assertEqual(parsed.origin.address, self.browser)
        candidates = [a.value for m in parsed.media for a in m.attributes if a.name == "candidate"]
        self.assertTrue(candidates)
        for candidate in candidates:
            assert candidate is not None
            self.assertEqual(candidate.split()[4], self.browser)
        self.assertNotIn(self.sip, sdp)

    @defer.inlineCallbacks
    def close(self, call: Any):
        call.hangup()
        self.clock.advance(0)
        sockets = [call.rtp, call.video and call.video.rtp]
        yield defer.gatherResults([s.close() for s in sockets if s is not None])
        for invite in RecordingInvite.created[1:]:
            invite.listener(Failed(487, "Request Terminated"))  # a transfer's INVITE ends
        self.clock.advance(0)

    def outbound(self, video: bool = False) -> OutboundCall:
        account = SipAccount(login="1001", domain="192.0.2.50")
        call = OutboundCall(env=self.env, call_id="c1", session_id="s", account=account,
                            request_uri="sip:bob@192.0.2.50", callee="bob", visible_name=None,
                            has_audio=True, has_video=video, browser_offer=CHROME_OFFER,
                            sip_headers={}, on_status=lambda d: None, on_gone=lambda c: None,
                            notify=self.notify)
        self.addCleanup(self.close, call)
        call.start()
        return call


class OutboundTests(SidesCase):
    def test_invite_answer_and_every_reoffer(self) -> None:
        call = self.outbound(video=True)
        self.assert_toward_sip(call.invite.offer)
        call.sip.heard(Answered(phone_sdp(1)))
        self.assertEqual(call.status, CallStatus.ESTABLISHED)
        self.assert_toward_browser(call.browser_answer)
        call.hold()  # our re-INVITE
        call.sip.heard(ReinviteOffered(phone_sdp(2, "sendonly")))  # the phone holds us
        self.assertEqual((len(call.invite.reinvites), len(call.invite.reinvite_answers)), (1, 1))
        for sdp in call.invite.reinvites + call.invite.reinvite_answers:
            self.assert_toward_sip(sdp)
        self.assertEqual(call.rtp.remote_rtp, ("192.0.2.50", 30000))

    def test_transfers_new_invite(self) -> None:
        """The far end's REFER (accepted): the new INVITE toward the target says ``sip``."""
        call = self.outbound()
        call.sip.heard(Answered(phone_sdp(1)))
        call.invite.listener(ReferReceived("sip:carol@192.0.2.50", None, None))
        dialled = [invite for invite in RecordingInvite.created[1:] if invite.started]
        self.assertEqual(len(dialled), 1)
        self.assert_toward_sip(dialled[0].offer)


class OfferedTests(SidesCase):
    def browser_offer(self) -> str:
        ((method, params),) = [(m, p) for m, p in self.notes if m == "incomingCall"]
        return str(params["sdp"])

    def test_incoming_call(self) -> None:
        invite = FakeIncomingInvite(phone_sdp(1))
        call = InboundCall(invite=invite, caller="sip:carol@192.0.2.50", env=self.env,
                           call_id="in", session_id="s", account=Account(), callee="alice",
                           visible_name=None, has_audio=True, has_video=False,
                           on_status=lambda d: None, on_gone=lambda c: None, notify=self.notify)
        self.addCleanup(self.close, call)
        call.start()
        offer = self.browser_offer()
        self.assert_toward_browser(offer)
        call.answer(browser_answer(offer))
        self.assert_toward_sip(invite.answered)

    def test_incoming_call_without_an_offer(self) -> None:
        """A late offer: our 200 carries the offer, toward the SIP side."""
        invite = FakeIncomingInvite(None)  # type: ignore[arg-type]
        call = InboundCall(invite=invite, caller="sip:carol@192.0.2.50", env=self.env,
                           call_id="in", session_id="s", account=Account(), callee="alice",
                           visible_name=None, has_audio=True, has_video=False,
                           on_status=lambda d: None, on_gone=lambda c: None, notify=self.notify)
        self.addCleanup(self.close, call)
        call.start()
        offer = self.browser_offer()
        self.assert_toward_browser(offer)
        call.answer(browser_answer(offer))
        self.assert_toward_sip(invite.answered)

    def test_handed_call(self) -> None:
        call = HandedCall(request_uri="sip:bob@192.0.2.50", env=self.env, call_id="h",
                          session_id="s", account=Account(), callee="bob", visible_name=None,
                          has_audio=True, has_video=True, on_status=lambda d: None,
                          on_gone=lambda c: None, notify=self.notify)
        self.addCleanup(self.close, call)
        call.start()
        offer = self.browser_offer()
        self.assert_toward_browser(offer)
        call.answer(browser_answer(offer))
        self.assert_toward_sip(call.invite.offer)
        call.sip.heard(Answered(phone_sdp(1)))
        self.assertEqual(call.status, CallStatus.ESTABLISHED)


class FileCallTests(SidesCase):
    def test_file_call(self) -> None:
        call = FileCall(env=self.env, call_id="rest-1", session_id=None, account=Account(),
                        request_uri="sip:bob@192.0.2.50", callee="bob", visible_name=None,
                        has_audio=True, has_video=False, sip_headers={},
                        on_status=lambda d: None, on_gone=lambda c: None,
                        play_file=None, record_file=None)
        self.addCleanup(self.close, call)
        call.start()
        self.assert_toward_sip(call.invite.offer)
        call.sip.heard(Answered(phone_sdp(1)))
        call.sip.heard(ReinviteOffered(phone_sdp(2, "sendonly")))
        self.assertTrue(call.invite.reinvite_answers)
        for sdp in call.invite.reinvite_answers:
            self.assert_toward_sip(sdp)


class Ipv6BrowserTests(OutboundTests, OfferedTests):
    """The browser side over IPv6 on dual-stack sockets (``media.listen = "::"``), the SIP
    side over IPv4: c=IN IP6 and an IPv6 candidate toward the browser, and the PBX's IPv4
    address reached in its IPv4-mapped form."""

    bind, browser, sip = "::", PUBLIC6, PRIVATE

    def test_the_pbx_is_reached_mapped(self) -> None:
        call = self.outbound()
        call.sip.heard(Answered(phone_sdp(1)))
        self.assertEqual(call.rtp.remote_rtp, ("::ffff:192.0.2.50", 30000))
        # the phone's packets (arriving mapped) are heard
        call.rtp.receive(build_rtp(payload_type=0, sequence=1, timestamp=160, ssrc=7,
                                   payload=bytes(160)), ("::ffff:192.0.2.50", 30000))
        self.assertEqual(len(call.leg.rtp), 1)

    def test_invite_answer_and_every_reoffer(self) -> None:
        call = self.outbound(video=True)
        self.assert_toward_sip(call.invite.offer)
        call.sip.heard(Answered(phone_sdp(1)))
        self.assert_toward_browser(call.browser_answer)


class DualStackSocketTests(unittest.TestCase):
    """The claim the docs make for ``media.listen = "::"``, on real loopback sockets: the SIP
    side's socket there (an IPv6 one) reaches an IPv4 phone at the address its SDP names
    (through :func:`sendable`) and hears it back through the latch."""

    @defer.inlineCallbacks
    def test_an_ipv6_wildcard_socket_talks_with_an_ipv4_phone(self):
        from twisted.internet import reactor
        from twisted.internet.protocol import DatagramProtocol

        from wcsgw.media.ports import PortAllocator
        from wcsgw.media.udp import RtpSocket

        heard_by_phone: defer.Deferred = defer.Deferred()
        heard_by_us: defer.Deferred = defer.Deferred()

        class Phone(DatagramProtocol):
            def datagramReceived(self, data: bytes, addr: Any) -> None:  # noqa: N802
                if not heard_by_phone.called:
                    heard_by_phone.callback((data, addr))
                    self.transport.write(b"\x80\x00" + bytes(10), addr)

        phone = reactor.listenUDP(0, Phone(), interface="127.0.0.1")
        self.addCleanup(phone.stopListening)
        ours = RtpSocket(reactor, PortAllocator("::", 41000, 41999))
        self.addCleanup(ours.close)
        ours.on_rtp = lambda data, now: heard_by_us.called or heard_by_us.callback(data)
        ours.set_remote(sendable("127.0.0.1", ours.host), phone.getHost().port)
        ours.send_rtp(b"\x80\x00" + bytes(10))
        data, source = yield heard_by_phone
        self.assertEqual(source, ("127.0.0.1", ours.port))
        reply = yield heard_by_us
        self.assertEqual(reply, b"\x80\x00" + bytes(10))
        self.assertEqual(ours.send_errors, 0)
