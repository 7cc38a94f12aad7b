"""SDES-SRTP toward the SIP side (RFC 4568): the a=crypto grammar (wcsgw.sdp.crypto), the
policy table (wcsgw.calls.sipsdes), and a call's media through the SRTP wrapper
(wcsgw.media.srtpsip) with fake sockets on a task.Clock — protected toward the phone,
unprotected toward the browser, keys never in the logs."""

from __future__ import annotations

import base64
import os
from typing import Any

import pylibsrtp
from twisted.logger import globalLogPublisher
from twisted.trial import unittest

from tests.call_fakes import Account, FakeIncomingInvite, fake_call_setup, fake_env
from tests.support import inline
from tests.test_api_methods import MethodsTestCase
from tests.test_api_rest import RestTestCase
from tests.test_calls_hold import browser_answer
from wcsgw.calls.errors import CallError
from wcsgw.calls.inbound import InboundCall
from wcsgw.calls.outbound import OutboundCall
from wcsgw.calls.sipsdes import Sdes
from wcsgw.calls.status import CallStatus
from wcsgw.config import ConfigError, parse_config
from wcsgw.media.rtcp import build_rr
from wcsgw.media.rtp import build_rtp, parse_rtp
from wcsgw.media.srtpsip import PROFILES, SrtpSipSocket
from wcsgw.sdp.crypto import (
    Crypto,
    CryptoError,
    accepted_crypto,
    answer_crypto,
    offer_cryptos,
    parse_crypto,
)
from wcsgw.sdp.parser import parse_sdp
from wcsgw.sip.account import SipAccount
from wcsgw.sip.invite import Answered
from wcsgw.sip.service import account_from_settings
from wcsgw.sip.session import ReinviteAnswered, ReinviteOffered
from wcsgw.sip.uas import Confirmed

HERE = os.path.dirname(__file__)
CHROME_OFFER = open(os.path.join(HERE, "data", "chromium_offer_av.sdp")).read()
BROWSER_AUDIO_SSRC = 3684613860
KEY30 = bytes(range(30))
B64 = base64.b64encode(KEY30).decode()
PHONE_KEY = bytes(range(100, 130))


def counting_keys() -> Any:
    """A key source whose keys are distinct and recognisable (tests only)."""
    counter = [0]

    def keys(n: int) -> bytes:
        counter[0] += 1
        return bytes([counter[0]]) * n
    return keys


class GrammarTests(unittest.TestCase):
    def test_a_plain_line_round_trips(self) -> None:
        crypto = parse_crypto(f"1 AES_CM_128_HMAC_SHA1_80 inline:{B64}")
        self.assertEqual((crypto.tag, crypto.suite, crypto.key), (1, "AES_CM_128_HMAC_SHA1_80",
                                                                   KEY30))
        self.assertEqual(parse_crypto(crypto.value()), crypto)

    def test_the_aead_suites_and_their_key_sizes(self) -> None:
        for suite, size in (("AEAD_AES_128_GCM", 28), ("AEAD_AES_256_GCM", 44)):
            key = base64.b64encode(bytes(size)).decode()
            self.assertEqual(parse_crypto(f"2 {suite} inline:{key}").suite, suite)
            self.assertIn(suite, PROFILES)
        with self.assertRaises(CryptoError):  # a 30-byte key is not a GCM-128 key and salt
            parse_crypto(f"2 AEAD_AES_128_GCM inline:{B64}")

    def test_a_long_lifetime_is_taken_a_short_one_refused(self) -> None:
        self.assertEqual(parse_crypto(f"1 AES_CM_128_HMAC_SHA1_80 inline:{B64}|2^31").key, KEY30)
        self.assertEqual(parse_crypto(f"1 AES_CM_128_HMAC_SHA1_32 inline:{B64}|2^48").tag, 1)
        with self.assertRaisesRegex(CryptoError, "lifetime"):
            parse_crypto(f"1 AES_CM_128_HMAC_SHA1_80 inline:{B64}|2^20")
        with self.assertRaisesRegex(CryptoError, "lifetime"):
            parse_crypto(f"1 AES_CM_128_HMAC_SHA1_80 inline:{B64}|1000")

    def test_mki_session_parameters_and_unknown_suites_are_refused(self) -> None:
        refused = {
            f"1 AES_CM_128_HMAC_SHA1_80 inline:{B64}|2^31|1:4": "MKI",
            f"1 AES_CM_128_HMAC_SHA1_80 inline:{B64}|1:4": "MKI",
            f"1 AES_CM_128_HMAC_SHA1_80 inline:{B64} UNENCRYPTED_SRTP": "UNENCRYPTED_SRTP",
            f"1 AES_CM_128_HMAC_SHA1_80 inline:{B64} KDR=1": "KDR",
            f"1 F8_128_HMAC_SHA1_80 inline:{B64}": "suite",
            f"1 AES_CM_128_HMAC_SHA1_80 inline:{B64};inline:{B64}": "more than one key",
            "1 AES_CM_128_HMAC_SHA1_80 inline:not*base64": "base64",
            "x AES_CM_128_HMAC_SHA1_80": "malformed",
        }
        for line, why in refused.items():
            with self.assertRaisesRegex(CryptoError, why, msg=line) as caught:
                parse_crypto(line)
            self.assertNotIn(B64, str(caught.exception))

    def test_the_key_is_masked_in_repr(self) -> None:
        crypto = Crypto(1, "AES_CM_128_HMAC_SHA1_80", KEY30)
        self.assertNotIn(B64, repr(crypto))
        self.assertNotIn(repr(KEY30), repr(crypto))
        self.assertIn(B64, crypto.value())


class NegotiationTests(unittest.TestCase):
    def test_our_offer_has_one_line_per_suite_each_its_own_key(self) -> None:
        offered = offer_cryptos(os.urandom)
        self.assertEqual([c.tag for c in offered], [1, 2, 3, 4])
        self.assertEqual(offered[0].suite, "AES_CM_128_HMAC_SHA1_80")
        self.assertEqual(len({c.key for c in offered}), 4)

    def test_the_answer_takes_the_first_line_we_support_with_its_tag_and_our_key(self) -> None:
        theirs, ours = answer_crypto([
            f"1 F8_128_HMAC_SHA1_80 inline:{B64}",
            f"2 AES_CM_128_HMAC_SHA1_32 inline:{B64}|2^10",
            f"3 AES_CM_128_HMAC_SHA1_32 inline:{B64}",
            f"4 AES_CM_128_HMAC_SHA1_80 inline:{B64}"], counting_keys()) or (None, None)
        assert theirs is not None and ours is not None
        self.assertEqual((theirs.tag, ours.tag, ours.suite), (3, 3, "AES_CM_128_HMAC_SHA1_32"))
        self.assertNotEqual(ours.key, theirs.key)
        self.assertIsNone(answer_crypto([f"1 F8_128_HMAC_SHA1_80 inline:{B64}"], os.urandom))

    def test_an_answer_must_name_one_of_our_tags_with_its_suite(self) -> None:
        ours = offer_cryptos(counting_keys())
        line = f"2 AEAD_AES_128_GCM inline:{base64.b64encode(bytes(28)).decode()}"
        mine, theirs = accepted_crypto(ours, [line]) or (None, None)
        self.assertEqual((mine, theirs and theirs.tag), (ours[1], 2))
        wrong_suite = f"1 AES_CM_128_HMAC_SHA1_32 inline:{B64}"
        unknown_tag = f"9 AES_CM_128_HMAC_SHA1_80 inline:{B64}"
        for lines in ([wrong_suite], [unknown_tag], [], [line, line]):
            self.assertIsNone(accepted_crypto(ours, lines), lines)

    def test_the_policy_table_for_offers_we_get(self) -> None:
        def offer(proto: str, crypto: bool) -> Any:
            line = f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{B64}\r\n" if crypto else ""
            return parse_sdp(("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
                              f"t=0 0\r\nm=audio 4000 {proto} 0\r\n{line}").encode())
        table = {  # (policy, proto, crypto line) -> refused?
            ("off", "RTP/AVP", False): False, ("off", "RTP/AVP", True): False,
            ("off", "RTP/SAVP", True): True,
            ("optional", "RTP/AVP", False): False, ("optional", "RTP/AVP", True): False,
            ("optional", "RTP/SAVP", True): False, ("optional", "RTP/SAVP", False): True,
            ("mandatory", "RTP/AVP", False): True, ("mandatory", "RTP/AVP", True): True,
            ("mandatory", "RTP/SAVP", True): False, ("mandatory", "RTP/SAVP", False): True,
        }
        for (policy, proto, crypto), refused in table.items():
            reason = Sdes(policy).refusal(offer(proto, crypto))
            self.assertEqual(reason is not None, refused, (policy, proto, crypto, reason))

    def test_the_config_key_reaches_the_sip_account_and_a_bad_one_names_itself(self) -> None:
        account = {"login": "1001", "domain": "pbx.example.com"}
        config = parse_config({"accounts": [{**account, "srtp": "mandatory"}]})
        self.assertEqual(account_from_settings(config.accounts[0]).srtp, "mandatory")
        self.assertEqual(parse_config({"accounts": [account]}).accounts[0].srtp, "off")
        with self.assertRaises(ConfigError) as caught:
            parse_config({"accounts": [{**account, "srtp": "yes"}]})
        self.assertEqual(caught.exception.key, "accounts[0].srtp")

    def test_the_account_takes_a_policy_and_refuses_others(self) -> None:
        self.assertEqual(SipAccount(login="a", domain="d").srtp, "off")
        self.assertEqual(SipAccount(login="a", domain="d", srtp="Mandatory").srtp, "mandatory")
        with self.assertRaisesRegex(ValueError, "srtp"):
            SipAccount(login="a", domain="d", srtp="yes")


class SrtpAccount(Account):
    transport = "udp"

    def __init__(self, srtp: str) -> None:
        self.srtp = srtp

    def aor(self) -> str:
        return "sip:alice@127.0.0.1"


def phone_answer(port: int, proto: str, crypto: str | None) -> bytes:
    line = f"a=crypto:{crypto}\r\n" if crypto else ""
    return ("v=0\r\no=- 5 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            f"m=audio {port} {proto} 0\r\na=rtpmap:0 PCMU/8000\r\n{line}a=sendrecv\r\n").encode()


def payload_of(packet: bytes) -> bytes:
    return parse_rtp(packet).payload(packet)


def session(suite: str, key: bytes, inbound: bool) -> pylibsrtp.Session:
    kind = pylibsrtp.Policy.SSRC_ANY_INBOUND if inbound else pylibsrtp.Policy.SSRC_ANY_OUTBOUND
    return pylibsrtp.Session(pylibsrtp.Policy(key=key, ssrc_type=kind,
                                              srtp_profile=PROFILES[suite]))


class CallMediaTests(unittest.TestCase):
    """A browser's call to a phone with SDES, fake sockets, the phone's SRTP made here."""

    def setUp(self) -> None:
        fake_call_setup(self)
        self.logged: list[str] = []

        def observe(event: dict[str, Any]) -> None:
            self.logged.append(repr(event))
        globalLogPublisher.addObserver(observe)
        self.addCleanup(globalLogPublisher.removeObserver, observe)

    def call(self, policy: str) -> OutboundCall:
        call = OutboundCall(env=fake_env(self), call_id="c1", session_id="s",
                            account=SrtpAccount(policy), request_uri="sip:bob@127.0.0.1",
                            callee="bob", visible_name=None, has_audio=True, has_video=False,
                            browser_offer=CHROME_OFFER, sip_headers={},
                            on_status=lambda status: None, on_gone=lambda c: None,
                            notify=lambda m, p: None)
        call.start()
        return call

    def test_mandatory_relays_srtp_both_ways_without_keys_in_the_logs(self) -> None:
        call = self.call("mandatory")
        audio = parse_sdp(call.invite.offer).first_audio()
        assert audio is not None
        self.assertEqual(audio.proto, "RTP/SAVP")
        offered = [parse_crypto(v) for v in audio.get_all("crypto")]
        self.assertEqual(len(offered), 4)
        ours = offered[0]
        phone_line = Crypto(1, ours.suite, PHONE_KEY)
        call.sip.heard(Answered(phone_answer(30000, "RTP/SAVP", phone_line.value())))
        self.assertEqual(call.status, CallStatus.ESTABLISHED)
        # the browser speaks: the phone gets SRTP it unprotects with our offer's key
        payload = bytes(range(160))
        call.leg.on_rtp(build_rtp(payload_type=0, sequence=1, timestamp=160,
                                  ssrc=BROWSER_AUDIO_SSRC, payload=payload), self.clock.seconds())
        (sent,) = call.rtp.rtp_packets
        self.assertNotIn(payload, sent)
        phone_rx = session(ours.suite, ours.key, inbound=True)
        self.assertEqual(payload_of(phone_rx.unprotect(sent)), payload)
        # the phone speaks SRTP with its key: the browser gets the plain packet
        phone_tx = session(ours.suite, PHONE_KEY, inbound=False)
        spoken = bytes(reversed(payload))
        call.rtp.receive(phone_tx.protect(build_rtp(payload_type=0, sequence=9, timestamp=900,
                                                    ssrc=0x5EED, payload=spoken)))
        ((_, heard),) = call.leg.rtp
        self.assertEqual(payload_of(heard), spoken)
        # plain RTP once keyed does not authenticate: dropped, counted
        call.rtp.receive(build_rtp(payload_type=0, sequence=10, timestamp=1060, ssrc=0x5EED,
                                   payload=spoken))
        self.assertEqual(len(call.leg.rtp), 1)
        self.assertEqual(call.media.sip.rejected, 1)
        # SRTCP both ways: our reports go out protected, the phone's come in
        self.clock.advance(6)
        self.assertTrue(call.rtp.rtcp_packets)
        self.assertTrue(phone_rx.unprotect_rtcp(call.rtp.rtcp_packets[0]))
        rr = phone_tx.protect_rtcp(build_rr(0x5EED, []))
        call.rtp.receive(rr, rtcp_port=True)
        call.rtp.receive(build_rr(0x5EED, []), rtcp_port=True)  # plain RTCP: dropped
        self.assertEqual((call.media.sip.rejected, call.media.sip.rejected_rtcp), (1, 1))
        call.hangup()
        keys = [base64.b64encode(c.key).decode() for c in offered] + [
            base64.b64encode(PHONE_KEY).decode()]
        # SDES over UDP is allowed, and warned about (the keys are in clear SIP)
        self.assertTrue([e for e in self.logged if "travel in SDP over" in e])
        for key in keys:
            self.assertFalse([e for e in self.logged if key in e])

    def test_mandatory_fails_a_plain_answer(self) -> None:
        call = self.call("mandatory")
        call.sip.heard(Answered(phone_answer(30000, "RTP/AVP", None)))
        self.assertEqual((call.status, call.info), (CallStatus.FAILED, "SRTP required"))

    def test_optional_offers_crypto_in_rtp_avp_and_takes_a_plain_answer(self) -> None:
        call = self.call("optional")
        audio = parse_sdp(call.invite.offer).first_audio()
        assert audio is not None
        self.assertEqual((audio.proto, len(audio.get_all("crypto"))), ("RTP/AVP", 4))
        call.sip.heard(Answered(phone_answer(30000, "RTP/AVP", None)))
        self.assertEqual(call.status, CallStatus.ESTABLISHED)
        self.assertFalse(call.media.sip.keyed)
        spoken = bytes(range(160))
        call.rtp.receive(build_rtp(payload_type=0, sequence=9, timestamp=900, ssrc=0x5EED,
                                   payload=spoken))
        self.assertEqual([payload_of(p) for _, p in call.leg.rtp], [spoken])

    def test_off_is_todays_rtp_avp(self) -> None:
        call = self.call("off")
        audio = parse_sdp(call.invite.offer).first_audio()
        assert audio is not None
        self.assertEqual((audio.proto, audio.get_all("crypto")), ("RTP/AVP", []))

    def test_a_hold_reoffer_repeats_the_line_in_use(self) -> None:
        call = self.call("mandatory")
        ours = parse_crypto(parse_sdp(call.invite.offer).media[0].get_all("crypto")[1])
        call.sip.heard(Answered(phone_answer(30000, "RTP/SAVP",
                                             Crypto(2, ours.suite, bytes(28)).value())))
        self.assertEqual(call.media.sip.suite, "AEAD_AES_128_GCM")
        reoffer = parse_sdp(call.sip_sdp.reoffer("sendonly")).media[0]
        self.assertEqual((reoffer.proto, reoffer.get_all("crypto")), ("RTP/SAVP", [ours.value()]))

    def incoming(self, policy: str, offer: bytes | None) -> InboundCall:
        return InboundCall(invite=FakeIncomingInvite(offer), caller="sip:bob@127.0.0.1",
                           env=fake_env(self), call_id="c2", session_id="s",
                           account=SrtpAccount(policy), callee="alice", visible_name=None,
                           has_audio=True, has_video=False, on_status=lambda status: None,
                           on_gone=lambda c: None, notify=lambda m, p: None)

    def test_an_incoming_plain_offer_is_refused_when_mandatory(self) -> None:
        call = self.incoming("mandatory", phone_answer(30000, "RTP/AVP", None))
        with self.assertRaisesRegex(CallError, "mandatory"):
            call.start()

    def test_an_incoming_savp_offer_is_answered_with_our_key_and_keys_the_media(self) -> None:
        theirs = Crypto(7, "AES_CM_128_HMAC_SHA1_32", PHONE_KEY)
        call = self.incoming("mandatory", phone_answer(30000, "RTP/SAVP", theirs.value()))
        invite = call.uas.session
        call.start()
        call.answer(browser_answer(call.browser_offer_text))
        assert invite.answered is not None
        audio = parse_sdp(invite.answered).media[0]
        (line,) = audio.get_all("crypto")
        ours = parse_crypto(line)
        self.assertEqual((audio.proto, ours.tag, ours.suite), ("RTP/SAVP", 7, theirs.suite))
        self.assertNotEqual(ours.key, PHONE_KEY)
        self.assertEqual(call.status, CallStatus.ESTABLISHED)
        phone_tx = session(theirs.suite, PHONE_KEY, inbound=False)
        spoken = bytes(range(160))
        call.rtp.receive(phone_tx.protect(build_rtp(payload_type=0, sequence=9, timestamp=900,
                                                    ssrc=0x5EED, payload=spoken)))
        self.assertEqual([payload_of(p) for _, p in call.leg.rtp], [spoken])


class ConnectParamTests(MethodsTestCase):
    """connect's ``sipSrtp`` sets the session's account policy; a bad value names the field."""

    def test_sip_srtp_reaches_the_account(self) -> None:
        base = {"sipLogin": "1001", "sipDomain": "pbx.example.com"}
        self.assertResult(self.rpc("connect", {**base, "sipSrtp": "Mandatory"}))
        self.assertEqual(self.gateway_calls("connect")[0][2].srtp, "mandatory")

    def test_the_default_is_off_and_a_bad_value_is_refused(self) -> None:
        base = {"sipLogin": "1001", "sipDomain": "pbx.example.com"}
        self.assertResult(self.rpc("connect", base))
        self.assertEqual(self.gateway_calls("connect")[0][2].srtp, "off")
        self.assertError(self.rpc("connect", {**base, "sipSrtp": "yes"}), -32602, "sipSrtp")


class LateOfferAndFailClosedTests(unittest.TestCase):
    """An INVITE without SDP (our 200 offers, the ACK answers), and mandatory SRTP failing
    closed in the media itself whatever kind of call reads the answer."""

    setUp = CallMediaTests.setUp
    incoming = CallMediaTests.incoming

    def test_a_late_offer_is_offered_with_crypto_and_keyed_by_the_ack(self) -> None:
        call = self.incoming("mandatory", None)  # type: ignore[arg-type]
        invite = call.uas.session
        call.start()
        call.answer(browser_answer(call.browser_offer_text))
        audio = parse_sdp(invite.answered).media[0]
        self.assertEqual((audio.proto, len(audio.get_all("crypto"))), ("RTP/SAVP", 4))
        ours = parse_crypto(audio.get_all("crypto")[0])
        call.sip.heard(Confirmed(phone_answer(30000, "RTP/SAVP",
                                              Crypto(1, ours.suite, PHONE_KEY).value())))
        self.assertTrue(call.media.sip.keyed)
        self.assertIsNotNone(call.bridge)

    def test_a_late_offer_whose_ack_is_plain_fails_when_mandatory(self) -> None:
        call = self.incoming("mandatory", None)  # type: ignore[arg-type]
        call.start()
        call.answer(browser_answer(call.browser_offer_text))
        call.sip.heard(Confirmed(phone_answer(30000, "RTP/AVP", None)))
        self.assertEqual((call.status, call.info), (CallStatus.FAILED, "SRTP required"))

    def test_required_and_unkeyed_the_wrapper_sends_and_hears_nothing(self) -> None:
        inner = FakeInner()
        sock = SrtpSipSocket(inner)
        heard: list[bytes] = []
        sock.on_rtp = lambda packet, now: heard.append(packet)
        packet = build_rtp(payload_type=0, sequence=1, timestamp=0, ssrc=1, payload=bytes(160))
        inner.on_rtp(packet, 0.0)
        sock.send_rtp(packet)
        self.assertEqual((heard, inner.sent), ([packet], [packet]))  # not required: plain
        sock.require()
        inner.on_rtp(packet, 0.0)
        sock.send_rtp(packet)
        sock.send_rtcp(build_rr(1, []))
        self.assertEqual((len(heard), len(inner.sent), sock.rejected), (1, 1, 1))
        sock.key("AES_CM_128_HMAC_SHA1_80", KEY30, PHONE_KEY)  # keyed: SRTP flows
        sock.send_rtp(packet)
        self.assertEqual(len(inner.sent), 2)
        self.assertNotEqual(inner.sent[1], packet)


class FakeInner:
    def __init__(self) -> None:
        self.on_rtp: Any = None
        self.on_rtcp: Any = None
        self.sent: list[bytes] = []

    def send_rtp(self, packet: bytes) -> None:
        self.sent.append(packet)

    def send_rtcp(self, packet: bytes) -> None:
        self.sent.append(packet)


class RestParamTests(RestTestCase):
    """call/startup's ``sipSrtp``: the account it builds carries it; with ``account`` (a
    server-held one brings its own policy) or a bad value it is refused naming the field."""

    @inline
    async def test_sip_srtp_reaches_the_account(self) -> None:
        body = {"callee": "1002", "sipLogin": "1001", "sipDomain": "pbx.example.com"}
        self.assert_json(await self.post("/call/startup", {**body, "sipSrtp": "mandatory"}), 200)
        self.assertEqual(self.gateway.log[-1][1]["account"].srtp, "mandatory")
        self.assert_json(await self.post("/call/startup", {**body, "sipSrtp": ""}), 200)
        self.assertEqual(self.gateway.log[-1][1]["account"].srtp, "off")

    @inline
    async def test_refused_with_account_or_a_bad_value(self) -> None:
        body = {"callee": "1002", "sipLogin": "1001", "sipDomain": "pbx.example.com"}
        self.assert_field_error(await self.post("/call/startup", {**body, "sipSrtp": "yes"}),
                                "sipSrtp")
        self.assert_field_error(await self.post("/call/startup", {
            "callee": "1002", "account": "office", "sipSrtp": "optional"}), "sipSrtp")


class ReofferTests(unittest.TestCase):
    """Keys across re-offers: our hold re-offer keeps our line; the SIP side's answer to it,
    or its own re-offer, may bring a new key, which re-keys what we receive."""

    setUp = CallMediaTests.setUp
    call = CallMediaTests.call

    def keyed_call(self) -> tuple[OutboundCall, Crypto]:
        call = self.call("mandatory")
        ours = parse_crypto(parse_sdp(call.invite.offer).media[0].get_all("crypto")[0])
        call.sip.heard(Answered(phone_answer(30000, "RTP/SAVP",
                                             Crypto(1, ours.suite, PHONE_KEY).value())))
        return call, ours

    def phone_says(self, call: OutboundCall, key: bytes, sequence: int) -> None:
        tx = session("AES_CM_128_HMAC_SHA1_80", key, inbound=False)
        call.rtp.receive(tx.protect(build_rtp(payload_type=0, sequence=sequence,
                                              timestamp=160 * sequence, ssrc=0x5EED,
                                              payload=bytes(160))))

    def test_a_new_key_in_the_answer_to_our_hold_rekeys_what_we_hear(self) -> None:
        call, ours = self.keyed_call()
        call.hold()
        (reoffer,) = call.invite.reinvites
        self.assertEqual(parse_sdp(reoffer).media[0].get_all("crypto"), [ours.value()])
        new_key = bytes(range(50, 80))
        call.sip.heard(ReinviteAnswered(phone_answer(30000, "RTP/SAVP",
                                                     Crypto(1, ours.suite, new_key).value())))
        self.phone_says(call, new_key, 1)
        self.assertEqual((len(call.leg.rtp), call.media.sip.rejected), (1, 0))
        self.phone_says(call, PHONE_KEY, 2)  # the old key no longer authenticates
        self.assertEqual(call.media.sip.rejected, 1)

    def test_a_reoffer_without_a_line_we_take_is_refused_and_keeps_the_keys(self) -> None:
        call, _ = self.keyed_call()
        call.sip.heard(ReinviteOffered(phone_answer(30000, "RTP/AVP", None)))
        self.assertEqual(call.invite.reinvite_answers, [b"488"])
        self.phone_says(call, PHONE_KEY, 1)
        self.assertEqual(len(call.leg.rtp), 1)
