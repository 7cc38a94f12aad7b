"""The codec plan (wcsgw.calls.plan): relay whenever a common codec exists, transcode only when
none does and transcoding is allowed, the exact WCS info strings otherwise.  Sans-IO."""

from __future__ import annotations

import itertools

from twisted.trial import unittest

from wcsgw.calls.errors import CallError, Codes
from wcsgw.calls.plan import (
    CodecPlan,
    CodecPolicy,
    CodecRefusal,
    browser_offer_codecs,
    check_policy,
    plan_codecs,
    settle_inbound,
    settle_outbound,
)
from wcsgw.calls.status import Info
from wcsgw.config import CodecSettings, ConfigError
from wcsgw.sdp.codecs import Codec

ALL_KEYS = ("pcmu", "pcma", "g729", "speex", "opus", "g722")

#: What Chromium offers (payload types as it numbers them).
OPUS = Codec("opus", 48000, 2, 111, "minptime=10;useinbandfec=1")
RED = Codec("red", 48000, 2, 63, "111/111")
G722 = Codec("G722", 8000, 1, 9)
PCMU = Codec("PCMU", 8000, 1, 0)
PCMA = Codec("PCMA", 8000, 1, 8)
TE48 = Codec("telephone-event", 48000, 1, 110)
TE8 = Codec("telephone-event", 8000, 1, 126)

#: What a SIP side may answer with (its own numbers where they are dynamic).
SIP_ANSWERS = {
    "opus": Codec("opus", 48000, 2, 107, "useinbandfec=1"),
    "G722": Codec("G722", 8000, 1, 9),
    "PCMU": Codec("PCMU", 8000, 1, 0),
    "PCMA": Codec("PCMA", 8000, 1, 8),
    "G729": Codec("G729", 8000, 1, 18, "annexb=no"),
    "speex/16000": Codec("speex", 16000, 1, 98),
    "speex/8000": Codec("speex", 8000, 1, 97),
}
SIP_TE = Codec("telephone-event", 8000, 1, 101, "0-16")

BROWSERS = {
    "opus+pcmu+pcma": [OPUS, RED, PCMU, PCMA, TE48, TE8],
    "opus only": [OPUS, TE48],
    "pcmu only": [PCMU, TE8],
}


def policy(transcoding: bool = True, keys=ALL_KEYS, webrtc_keys=None, **lists) -> CodecPolicy:
    """The default [codecs] lists (or ``lists``), with an any-to-any transcoder for ``keys``."""
    d = CodecSettings()
    return CodecPolicy.from_names(lists.get("sip", d.sip), lists.get("webrtc", d.webrtc),
                                  d.video, transcoding, keys, webrtc_keys)


def names(codecs) -> list[str]:
    return [c.rtpmap if c.key != "telephone-event" else f"te/{c.clock_rate}" for c in codecs]


class CatalogueUseTests(unittest.TestCase):
    def test_policy_from_names_normalises_and_video(self) -> None:
        p = CodecPolicy.from_names(["pcmu", "SPEEX/8000"], ["OPUS"], ["h264"], True, ["pcmu"])
        self.assertEqual([e.label for e in p.sip], ["PCMU", "speex/8000"])
        self.assertEqual([c.rtpmap for c in p.video_codecs], ["H264/90000"])
        self.assertIn("packetization-mode=1", p.video_codecs[0].fmtp)
        self.assertTrue(p.can_transcode(p.sip[0]))
        self.assertFalse(p.can_transcode(p.sip[1]))


class OutboundOfferTests(unittest.TestCase):
    """plan_codecs: the SIP offer made from the browser's offer."""

    def offer(self, browser: str, transcoding: bool = True, **kw) -> list[str]:
        return names(plan_codecs(BROWSERS[browser], policy(transcoding, **kw)).sip_offer)

    def test_relayable_first_then_transcodable_in_config_order(self) -> None:
        self.assertEqual(self.offer("opus+pcmu+pcma"),
                         ["opus/48000/2", "PCMU/8000", "PCMA/8000", "G722/8000", "G729/8000",
                          "speex/16000", "speex/8000", "te/48000", "te/8000", "te/16000"])
        self.assertEqual(self.offer("opus only"),
                         ["opus/48000/2", "G722/8000", "PCMU/8000", "PCMA/8000", "G729/8000",
                          "speex/16000", "speex/8000", "te/48000", "te/8000", "te/16000"])
        self.assertEqual(self.offer("pcmu only"),
                         ["PCMU/8000", "opus/48000/2", "G722/8000", "PCMA/8000", "G729/8000",
                          "speex/16000", "speex/8000", "te/8000", "te/48000", "te/16000"])

    def test_transcoding_off_offers_only_what_relays(self) -> None:
        self.assertEqual(self.offer("opus+pcmu+pcma", False),
                         ["opus/48000/2", "PCMU/8000", "PCMA/8000", "te/48000", "te/8000"])
        self.assertEqual(self.offer("opus only", False), ["opus/48000/2", "te/48000"])
        self.assertEqual(self.offer("pcmu only", False), ["PCMU/8000", "te/8000"])

    def test_browser_payload_types_and_fmtp_kept_for_relay(self) -> None:
        offer = plan_codecs(BROWSERS["opus+pcmu+pcma"], policy()).sip_offer
        by_name = {c.rtpmap: c for c in offer}
        self.assertEqual(by_name["opus/48000/2"].payload_type, 111)
        self.assertEqual(by_name["opus/48000/2"].fmtp, "minptime=10;useinbandfec=1")
        self.assertEqual(by_name["G729/8000"].payload_type, 18)
        self.assertEqual(by_name["G729/8000"].fmtp, "annexb=no")
        events = {c.clock_rate: c.payload_type for c in offer if c.key == "telephone-event"}
        self.assertEqual(events[48000], 110)  # the browser's own numbers
        self.assertEqual(events[8000], 126)
        pts = [c.payload_type for c in offer]
        self.assertEqual(len(pts), len(set(pts)))
        self.assertTrue(all(pt is not None for pt in pts))

    def test_our_telephone_event_takes_101_when_free(self) -> None:
        offer = plan_codecs([OPUS], policy(sip=["opus", "PCMU"]))
        self.assertEqual([(c.rtpmap, c.payload_type) for c in offer.sip_offer],
                         [("opus/48000/2", 111), ("PCMU/8000", 0),
                          ("telephone-event/48000", 96), ("telephone-event/8000", 101)])

    def test_static_number_used_by_the_browser_for_something_else(self) -> None:
        odd = Codec("opus", 48000, 2, 0)  # a browser that numbers Opus 0 (never seen, allowed)
        offer = plan_codecs([odd], policy(sip=["opus", "PCMU"])).sip_offer
        pcmu = next(c for c in offer if c.key == "pcmu")
        self.assertNotEqual(pcmu.payload_type, 0)
        self.assertGreaterEqual(pcmu.payload_type, 96)

    def test_config_restricts_the_sip_side(self) -> None:
        self.assertEqual(self.offer("opus+pcmu+pcma", sip=["PCMA", "G729"]),
                         ["PCMA/8000", "G729/8000", "te/8000"])
        self.assertEqual(self.offer("opus+pcmu+pcma", webrtc=["PCMU"]),
                         ["PCMU/8000", "opus/48000/2", "G722/8000", "PCMA/8000", "G729/8000",
                          "speex/16000", "speex/8000", "te/8000", "te/48000", "te/16000"])

    def test_only_what_the_media_layer_can_transcode_is_added(self) -> None:
        # Today's bridge: Opus on the browser side <-> G.711 on the SIP side.
        self.assertEqual(self.offer("opus only", keys=("pcmu", "pcma"), webrtc_keys=("opus",)),
                         ["opus/48000/2", "PCMU/8000", "PCMA/8000", "te/48000", "te/8000"])
        # ... and a PCMU-only browser cannot be transcoded at all by it.
        self.assertEqual(self.offer("pcmu only", keys=("pcmu", "pcma"), webrtc_keys=("opus",)),
                         ["PCMU/8000", "te/8000"])

    def assert_refused(self, info: str, browser, p: CodecPolicy) -> None:
        with self.assertRaises(CodecRefusal) as caught:
            plan_codecs(browser, p)
        self.assertEqual(caught.exception.info, info)
        self.assertEqual(caught.exception.code, Codes.NO_CODECS)
        self.assertTrue(caught.exception.message.startswith(info))
        self.assertIsInstance(caught.exception, CallError)

    def test_transcoding_required_but_disabled(self) -> None:
        self.assert_refused(Info.TRANSCODING_DISABLED, BROWSERS["opus only"],
                            policy(False, sip=["PCMU", "G729"]))
        self.assert_refused(Info.TRANSCODING_DISABLED, BROWSERS["pcmu only"],
                            policy(False, sip=["opus"]))

    def test_no_common_codecs(self) -> None:
        self.assert_refused(Info.NO_CODECS, [RED, TE48], policy())
        self.assert_refused(Info.NO_CODECS, [Codec("ISAC", 16000, 1, 103)], policy())
        # G.722 from the browser, the SIP side allows only G.729 and nothing transcodes G.722
        self.assert_refused(Info.NO_CODECS, [G722], policy(sip=["G729"], keys=("g729",)))
        # a browser codec codecs.webrtc does not allow is as good as absent
        self.assert_refused(Info.NO_CODECS, BROWSERS["opus only"], policy(webrtc=["PCMU"]))
        # transcoding off and nothing transcodable either: no common codecs, not "disabled"
        self.assert_refused(Info.NO_CODECS, [G722], policy(False, sip=["G729"], keys=()))


class OutboundAnswerMatrixTests(unittest.TestCase):
    """settle_outbound for browser {opus+pcmu+pcma, opus only, pcmu only} x every SIP answer
    x transcoding on/off."""

    def test_matrix(self) -> None:
        for (bname, browser), (aname, answered), on in itertools.product(
                BROWSERS.items(), SIP_ANSWERS.items(), (True, False)):
            with self.subTest(browser=bname, answer=aname, transcoding=on):
                p = policy(on)
                plan = plan_codecs(browser, p)
                common = next((b for b in browser if b.key == answered.key
                               and b.clock_rate == answered.clock_rate), None)
                if common is None and not on:
                    with self.assertRaises(CodecRefusal) as caught:
                        settle_outbound(plan, browser, [answered, SIP_TE], p)
                    self.assertEqual(caught.exception.info, Info.TRANSCODING_DISABLED)
                    continue
                settle_outbound(plan, browser, [answered, SIP_TE], p, sip_ptime=30)
                self.assertIs(plan.sip_codec, answered)  # the answer's number and fmtp
                self.assertEqual(plan.sip_dtmf, SIP_TE)
                self.assertEqual(plan.sip_ptime, 30)
                if common is not None:
                    self.assertEqual(plan.mode, "relay")
                    self.assertIs(plan.browser_codec, common)  # the browser's number
                else:
                    self.assertEqual(plan.mode, "transcode")
                    # Opus when the browser offered it, else G.711 (codecs.webrtc order)
                    expected = OPUS if OPUS in browser else PCMU
                    self.assertIs(plan.browser_codec, expected)
                rate = plan.browser_codec.clock_rate
                expected_te = next((c for c in browser if c.key == "telephone-event"
                                    and c.clock_rate == rate), None)
                self.assertEqual(plan.browser_dtmf, expected_te)
                media = plan.describe()
                self.assertEqual(media, {"webrtcCodec": plan.browser_codec.rtpmap,
                                         "sipCodec": answered.rtpmap, "mode": plan.mode})

    def test_first_relayable_answered_codec_wins_over_an_earlier_transcodable(self) -> None:
        browser = BROWSERS["opus+pcmu+pcma"]
        plan = plan_codecs(browser, policy())
        settle_outbound(plan, browser, [SIP_ANSWERS["G729"], SIP_ANSWERS["PCMA"]], policy())
        self.assertEqual((plan.mode, plan.sip_codec.rtpmap, plan.browser_codec.rtpmap),
                         ("relay", "PCMA/8000", "PCMA/8000"))

    def test_first_transcodable_when_nothing_relays(self) -> None:
        browser = BROWSERS["opus only"]
        plan = plan_codecs(browser, policy())
        settle_outbound(plan, browser, [SIP_ANSWERS["speex/8000"], SIP_ANSWERS["G729"]],
                        policy())
        self.assertEqual((plan.mode, plan.sip_codec.rtpmap, plan.browser_codec.rtpmap),
                         ("transcode", "speex/8000", "opus/48000/2"))

    def test_browser_side_follows_codecs_webrtc_order(self) -> None:
        browser = BROWSERS["opus+pcmu+pcma"]
        p = policy(webrtc=["PCMA", "opus", "PCMU"])
        plan = plan_codecs(browser, p)
        settle_outbound(plan, browser, [SIP_ANSWERS["G729"]], p)
        self.assertEqual(plan.browser_codec, PCMA)

    def test_sip_telephone_event_at_another_rate_is_used(self) -> None:
        browser = BROWSERS["opus only"]
        plan = plan_codecs(browser, policy())
        settle_outbound(plan, browser, [SIP_ANSWERS["opus"], SIP_TE], policy())
        self.assertEqual(plan.sip_dtmf, SIP_TE)  # opus/48000 with telephone-event/8000

    def test_answer_without_audio_or_with_what_we_cannot_transcode(self) -> None:
        browser = BROWSERS["opus only"]
        for answer, p in (([SIP_TE], policy()),
                          ([Codec("GSM", 8000, 1, 3)], policy()),
                          ([SIP_ANSWERS["G729"]], policy(keys=("pcmu", "opus")))):
            plan = plan_codecs(browser, policy())
            with self.assertRaises(CodecRefusal) as caught:
                settle_outbound(plan, browser, answer, p)
            self.assertEqual(caught.exception.info, Info.NO_CODECS)


class InboundTests(unittest.TestCase):
    """browser_offer_codecs and settle_inbound: SIP offer -> browser offer -> browser answer."""

    def test_relayable_first_then_fallback(self) -> None:
        sip = [PCMU, PCMA, SIP_TE]
        self.assertEqual(names(browser_offer_codecs(sip, policy())),
                         ["PCMU/8000", "PCMA/8000", "opus/48000/2", "G722/8000",
                          "te/48000", "te/8000"])
        self.assertEqual(names(browser_offer_codecs(sip, policy(False))),
                         ["PCMU/8000", "PCMA/8000", "te/8000"])

    def test_browser_order_is_codecs_webrtc(self) -> None:
        sip = [SIP_ANSWERS["G722"], PCMA, SIP_ANSWERS["opus"]]
        offer = browser_offer_codecs(sip, policy(False))
        self.assertEqual(names(offer), ["opus/48000/2", "PCMA/8000", "G722/8000"])
        self.assertIsNone(offer[0].payload_type)  # dynamic: the browser offer numbers it

    def test_non_browser_sip_codecs_get_the_fallback_or_a_refusal(self) -> None:
        sip = [SIP_ANSWERS["G729"], SIP_TE]
        self.assertEqual(names(browser_offer_codecs(sip, policy())),
                         ["opus/48000/2", "PCMU/8000", "PCMA/8000", "G722/8000",
                          "te/48000", "te/8000"])
        for p, info in ((policy(False), Info.TRANSCODING_DISABLED),
                        (policy(keys=("opus", "pcmu")), Info.NO_CODECS),
                        (policy(sip=["PCMU"]), Info.NO_CODECS)):
            with self.assertRaises(CodecRefusal) as caught:
                browser_offer_codecs(sip, p)
            self.assertEqual(caught.exception.info, info)
            self.assertEqual(caught.exception.code, Codes.NO_CODECS)  # -> 488 to the caller
        with self.assertRaises(CodecRefusal) as caught:
            browser_offer_codecs([Codec("GSM", 8000, 1, 3)], policy())
        self.assertEqual(caught.exception.info, Info.NO_CODECS)

    def test_no_telephone_event_unless_the_sip_side_offered_it(self) -> None:
        self.assertEqual(names(browser_offer_codecs([PCMU], policy(False))), ["PCMU/8000"])

    def settle(self, sip, chosen, p=None):
        p = p or policy()
        plan = CodecPlan("relay", sip, sip_ptime=40)
        settle_inbound(plan, chosen, None, sip, p, sip_ptime=40)
        return plan

    def test_browser_picks_a_relayable_codec(self) -> None:
        opus_sip = SIP_ANSWERS["opus"]
        plan = self.settle([SIP_ANSWERS["G729"], opus_sip, SIP_TE], OPUS)
        self.assertEqual(plan.mode, "relay")
        self.assertIs(plan.sip_codec, opus_sip)  # the caller's payload type 107
        self.assertEqual(plan.sip_dtmf, SIP_TE)
        self.assertEqual(plan.sip_ptime, 40)

    def test_browser_picks_the_fallback_first_sip_codec_transcoded(self) -> None:
        g729, speex = SIP_ANSWERS["G729"], SIP_ANSWERS["speex/8000"]
        plan = self.settle([speex, g729, PCMU, SIP_TE], OPUS)
        self.assertEqual((plan.mode, plan.sip_codec), ("transcode", speex))
        self.assertEqual(plan.sip_dtmf, SIP_TE)

    def test_codecs_sip_restricts_what_is_accepted_from_the_caller(self) -> None:
        g729 = SIP_ANSWERS["G729"]
        plan = self.settle([SIP_ANSWERS["speex/8000"], g729], OPUS, policy(sip=["PCMU", "G729"]))
        self.assertEqual((plan.mode, plan.sip_codec), ("transcode", g729))

    def test_browser_picks_what_we_did_not_offer(self) -> None:
        with self.assertRaises(CodecRefusal) as caught:
            self.settle([SIP_ANSWERS["G729"]], Codec("ISAC", 16000, 1, 103))
        self.assertEqual(caught.exception.info, Info.NO_CODECS)

    def test_late_offer(self) -> None:
        offer = browser_offer_codecs(None, policy())
        self.assertEqual(names(offer), ["opus/48000/2", "PCMU/8000", "PCMA/8000", "G722/8000",
                                        "te/48000", "te/8000"])
        # Our 200 offers the browser's choice first, then what we can transcode it to; the
        # plan is provisional (the first codec) until the ACK's answer settles it.
        plan = CodecPlan("relay", [])
        settle_inbound(plan, PCMU, None, None, policy(sip=["PCMA", "PCMU", "G729"]))
        self.assertEqual(names(plan.sip_offer), ["PCMU/8000", "PCMA/8000", "G729/8000", "te/8000"])
        self.assertEqual((plan.mode, plan.sip_codec.rtpmap, plan.sip_dtmf.payload_type),
                         ("relay", "PCMU/8000", 101))
        settle_outbound(plan, [PCMU], [PCMA, SIP_TE], policy(sip=["PCMA", "PCMU", "G729"]))
        self.assertEqual((plan.mode, plan.sip_codec, plan.browser_codec),
                         ("transcode", PCMA, PCMU))
        # Opus when codecs.sip does not list it: transcoded, G.729 first
        plan = CodecPlan("relay", [])
        settle_inbound(plan, OPUS, TE48, None, policy(sip=["G729", "PCMU"]))
        self.assertEqual(names(plan.sip_offer), ["G729/8000", "PCMU/8000", "te/8000"])
        self.assertEqual((plan.mode, plan.sip_codec.payload_type), ("transcode", 18))
        with self.assertRaises(CodecRefusal) as caught:
            settle_inbound(CodecPlan("relay", []), OPUS, None, None,
                           policy(False, sip=["G729", "PCMU"]))
        self.assertEqual(caught.exception.info, Info.TRANSCODING_DISABLED)

    def test_late_offer_only_offers_browsers_what_can_reach_the_sip_side(self) -> None:
        self.assertEqual(names(browser_offer_codecs(None, policy(False, sip=["PCMA"]))),
                         ["PCMA/8000", "te/8000"])
        with self.assertRaises(CodecRefusal):
            browser_offer_codecs(None, policy(False, sip=["G729"]))


class StartupCheckTests(unittest.TestCase):
    def test_all_present_no_warnings(self) -> None:
        self.assertEqual(check_policy(policy(), ALL_KEYS), [])

    def test_missing_library_warns_with_the_package(self) -> None:
        p = policy(keys=("opus", "pcmu", "pcma", "g722"))
        warnings = check_policy(p, ("opus", "pcmu", "pcma", "g722"))
        self.assertEqual(len(warnings), 3)
        self.assertIn("codecs.sip: G729", warnings[0])
        self.assertIn("libbcg729-0", warnings[0])
        self.assertIn("libspeex1", warnings[1])

    def test_library_present_but_no_transcoder(self) -> None:
        p = policy(keys=("pcmu", "pcma"), webrtc_keys=("opus",))
        warnings = check_policy(p, ALL_KEYS)
        self.assertIn("codecs.sip: G729 is left out of SIP offers: the media bridge cannot "
                      "transcode it yet", warnings)

    def test_leg_left_with_nothing_refuses_to_start(self) -> None:
        with self.assertRaises(ConfigError) as caught:
            check_policy(policy(sip=["G729"], keys=("opus", "pcmu")), ("opus", "pcmu"))
        self.assertEqual(caught.exception.key, "codecs.sip")
        self.assertIn("libbcg729-0", str(caught.exception))
        with self.assertRaises(ConfigError) as caught:
            check_policy(policy(False, sip=["G729"]), ALL_KEYS)
        self.assertEqual(caught.exception.key, "codecs.sip")

    def test_relay_only_needs_no_library(self) -> None:
        self.assertEqual(check_policy(policy(sip=["PCMU"], webrtc=["PCMU"], keys=()), ()), [])


BROWSER_OFFER = "\r\n".join([
    "v=0", "o=- 1 2 IN IP4 127.0.0.1", "s=-", "t=0 0", "a=group:BUNDLE 0",
    "m=audio 9 UDP/TLS/RTP/SAVPF 111 110", "c=IN IP4 0.0.0.0", "a=mid:0",
    "a=ice-ufrag:abcd", "a=ice-pwd:abcdefghijklmnopqrstuvwx",
    "a=fingerprint:sha-256 " + ":".join(["AB"] * 32), "a=setup:actpass", "a=sendrecv",
    "a=rtcp-mux", "a=rtpmap:111 opus/48000/2", "a=fmtp:111 minptime=10;useinbandfec=1",
    "a=rtpmap:110 telephone-event/48000", "",
])


class Untouchable:
    """A SIP service / port allocator that fails the test when anything uses it."""

    def __getattr__(self, name):
        raise AssertionError(f"{name} used: the call went further than its codec plan")


class CallPlanTests(unittest.TestCase):
    """The plan inside a Call: refused before any socket or INVITE; ``media`` in describe()."""

    def make_call(self, codecs: CodecPolicy):
        from wcsgw.calls.environment import CallEnvironment
        from wcsgw.calls.outbound import OutboundCall
        from wcsgw.sip.account import SipAccount

        env = CallEnvironment(reactor=Untouchable(), sip=Untouchable(), allocator=Untouchable(),
                              media_host="127.0.0.1", browser_address="127.0.0.1", sip_address="127.0.0.1",
                              codecs=codecs)
        self.statuses: list = []
        return OutboundCall(env=env, call_id="c1", session_id="s1",
                    account=SipAccount(login="1001", domain="pbx.example"),
                    request_uri="sip:1002@pbx.example", callee="1002", visible_name=None,
                    has_audio=True, has_video=False, browser_offer=BROWSER_OFFER,
                    sip_headers={}, on_status=self.statuses.append, on_gone=lambda c: None)

    def test_transcoding_disabled_refused_before_the_invite(self) -> None:
        call = self.make_call(policy(False, sip=["PCMU", "G729"]))
        with self.assertRaises(CodecRefusal) as caught:
            call.start()
        self.assertEqual(caught.exception.info, "Transcoding required, but disabled")
        self.assertIsNone(call.invite)
        self.assertIsNone(call.rtp)
        self.assertEqual(self.statuses, [])

    def test_no_common_codecs_refused_before_the_invite(self) -> None:
        call = self.make_call(policy(webrtc=["PCMU"]))
        with self.assertRaises(CodecRefusal) as caught:
            call.start()
        self.assertEqual(caught.exception.info, "No common codecs")
        self.assertIsNone(call.invite)

    def test_media_in_describe(self) -> None:
        call = self.make_call(policy())
        audio = ("webrtcCodec", "sipCodec", "mode")  # the audio part (video has its own key)
        media = call.describe()["media"]
        self.assertEqual({k: media[k] for k in audio},
                         {"webrtcCodec": None, "sipCodec": None, "mode": None})
        browser = [OPUS, TE48]
        call.plan = plan_codecs(browser, policy())
        settle_outbound(call.plan, browser, [SIP_ANSWERS["G729"], SIP_TE], policy())
        media = call.describe()["media"]
        self.assertEqual({k: media[k] for k in audio}, {"webrtcCodec": "opus/48000/2",
                                                        "sipCodec": "G729/8000",
                                                        "mode": "transcode"})


class ServicePolicyTests(unittest.TestCase):
    """wcsgw.service.codec_policy: [codecs] + this machine -> the CallEnvironment's policy."""

    def test_config_lists_become_the_policy(self) -> None:
        from wcsgw.config import parse_config
        from wcsgw.service import codec_policy

        p = codec_policy(parse_config({"codecs": {"sip": ["pcma", "opus"], "webrtc": ["OPUS"],
                                                  "video": ["h264"], "transcoding": False}}))
        self.assertEqual([e.label for e in p.sip], ["PCMA", "opus"])
        self.assertEqual([e.label for e in p.webrtc], ["opus"])
        self.assertEqual([e.label for e in p.video], ["H264"])
        self.assertFalse(p.transcoding)
        self.assertIn("pcmu", p.transcodable)  # G.711 is built in: always transcodable

    def test_a_leg_with_nothing_usable_stops_the_build(self) -> None:
        from wcsgw.config import parse_config
        from wcsgw.service import codec_policy

        with self.assertRaises(ConfigError) as caught:
            codec_policy(parse_config({"codecs": {"sip": ["G729"], "transcoding": False}}))
        self.assertEqual(caught.exception.key, "codecs.sip")
