"""ICE-lite STUN answering (wcsgw.webrtc.stun): no sockets, synthetic clock."""

from __future__ import annotations

from aioice import stun
from twisted.trial import unittest

from wcsgw.webrtc.stun import (
    IceCredentials,
    IceLiteResponder,
    is_stun,
    make_ice_credentials,
)

LOCAL = IceCredentials(ufrag="lcl1", pwd="localpasswordlocalpass1")
REMOTE_UFRAG = "brws"
BROWSER = ("127.0.0.1", 50000)


def binding_request(
    username: str = f"{LOCAL.ufrag}:{REMOTE_UFRAG}",
    key: bytes = LOCAL.pwd.encode(),
    use_candidate: bool = False,
    integrity: bool = True,
) -> tuple[bytes, bytes]:
    """A check as Chrome sends it: USERNAME, PRIORITY, ICE-CONTROLLING, integrity, FINGERPRINT."""
    msg = stun.Message(stun.Method.BINDING, stun.Class.REQUEST)
    msg.attributes["USERNAME"] = username
    msg.attributes["PRIORITY"] = 1853824767
    msg.attributes["ICE-CONTROLLING"] = 0x1234567890
    if use_candidate:
        msg.attributes["USE-CANDIDATE"] = None
    if integrity:
        msg.add_message_integrity(key)
    else:
        msg.add_fingerprint()
    return bytes(msg), msg.transaction_id


def responder() -> IceLiteResponder:
    r = IceLiteResponder(LOCAL, remote_ufrag=REMOTE_UFRAG)
    r.start(100.0)
    return r


class CredentialsTests(unittest.TestCase):
    def test_lengths_and_charset(self) -> None:
        c = make_ice_credentials()
        self.assertGreaterEqual(len(c.ufrag), 4)
        self.assertGreaterEqual(len(c.pwd), 22)
        self.assertTrue((c.ufrag + c.pwd).isalnum())

    def test_random(self) -> None:
        self.assertNotEqual(make_ice_credentials(), make_ice_credentials())

    def test_too_short_refused(self) -> None:
        self.assertRaises(ValueError, make_ice_credentials, 3, 24)
        self.assertRaises(ValueError, make_ice_credentials, 4, 21)


class DemuxTests(unittest.TestCase):
    def test_stun_recognised(self) -> None:
        data, _ = binding_request()
        self.assertTrue(is_stun(data))

    def test_rtp_dtls_and_short_rejected(self) -> None:
        self.assertFalse(is_stun(b"\x80" + bytes(30)))  # RTP
        self.assertFalse(is_stun(b"\x16\xfe\xfd" + bytes(30)))  # DTLS record
        self.assertFalse(is_stun(b"\x00\x01\x00\x00"))  # too short
        self.assertFalse(is_stun(b"\x00\x01\x00\x00" + b"\x00\x00\x00\x00" + bytes(12)))  # cookie


class AnswerTests(unittest.TestCase):
    def test_answer_carries_integrity_with_our_pwd_and_xor_mapped_address(self) -> None:
        r = responder()
        data, tid = binding_request()
        outcome = r.receive(data, BROWSER, 101.0)
        assert outcome is not None
        response = stun.parse_message(outcome.response)  # also verifies FINGERPRINT
        self.assertEqual(response.message_method, stun.Method.BINDING)
        self.assertEqual(response.message_class, stun.Class.RESPONSE)
        self.assertEqual(response.transaction_id, tid)
        self.assertEqual(response.attributes["XOR-MAPPED-ADDRESS"], BROWSER)
        self.assertTrue(response.check_message_integrity(LOCAL.pwd.encode()))
        self.assertFalse(response.check_message_integrity(b"someone else's password!"))
        self.assertIn("FINGERPRINT", response.attributes)
        # The FINGERPRINT is the last attribute on the wire (RFC 8489 §14.7).
        self.assertEqual(outcome.response[-8:-4], b"\x80\x28\x00\x04")

    def test_ipv6_source_mapped(self) -> None:
        r = responder()
        data, _ = binding_request()
        outcome = r.receive(data, ("::1", 40000), 101.0)
        assert outcome is not None
        response = stun.parse_message(outcome.response)
        self.assertEqual(response.attributes["XOR-MAPPED-ADDRESS"], ("::1", 40000))

    def test_bad_integrity_ignored(self) -> None:
        r = responder()
        data, _ = binding_request(key=b"wrongpasswordwrongpassw")
        self.assertIsNone(r.receive(data, BROWSER, 101.0))
        self.assertFalse(r.is_authenticated(BROWSER))
        self.assertIsNone(r.selected)
        self.assertEqual(r.requests_ignored, 1)

    def test_missing_integrity_ignored(self) -> None:
        r = responder()
        data, _ = binding_request(integrity=False)
        self.assertIsNone(r.receive(data, BROWSER, 101.0))
        self.assertFalse(r.is_authenticated(BROWSER))

    def test_their_pwd_is_not_our_key(self) -> None:
        """Integrity keyed with the *browser's* password (a classic mistake) is refused."""
        r = responder()
        data, _ = binding_request(key=b"browserpasswordbrowserp")
        self.assertIsNone(r.receive(data, BROWSER, 101.0))

    def test_unknown_ufrag_ignored(self) -> None:
        r = responder()
        data, _ = binding_request(username=f"zzzz:{REMOTE_UFRAG}")
        self.assertIsNone(r.receive(data, BROWSER, 101.0))
        self.assertFalse(r.is_authenticated(BROWSER))

    def test_wrong_remote_ufrag_ignored(self) -> None:
        r = responder()
        data, _ = binding_request(username=f"{LOCAL.ufrag}:other")
        self.assertIsNone(r.receive(data, BROWSER, 101.0))

    def test_username_without_colon_ignored(self) -> None:
        r = responder()
        data, _ = binding_request(username=LOCAL.ufrag)
        self.assertIsNone(r.receive(data, BROWSER, 101.0))

    def test_any_remote_ufrag_before_it_is_known(self) -> None:
        r = IceLiteResponder(LOCAL)
        data, _ = binding_request(username=f"{LOCAL.ufrag}:anything")
        self.assertIsNotNone(r.receive(data, BROWSER, 1.0))

    def test_corrupted_fingerprint_ignored(self) -> None:
        r = responder()
        data, _ = binding_request()
        corrupted = data[:-1] + bytes([data[-1] ^ 1])
        self.assertIsNone(r.receive(corrupted, BROWSER, 101.0))

    def test_garbage_ignored(self) -> None:
        r = responder()
        self.assertIsNone(r.receive(b"\x00\x01\x00\x08\x21\x12\xa4\x42" + bytes(12), BROWSER, 1))
        self.assertIsNone(r.receive(b"\x00\x01\x00", BROWSER, 1))

    def test_indications_and_responses_not_answered(self) -> None:
        r = responder()
        for cls in (stun.Class.INDICATION, stun.Class.RESPONSE):
            msg = stun.Message(stun.Method.BINDING, cls)
            msg.attributes["USERNAME"] = f"{LOCAL.ufrag}:{REMOTE_UFRAG}"
            msg.add_message_integrity(LOCAL.pwd.encode())
            self.assertIsNone(r.receive(bytes(msg), BROWSER, 101.0))
        self.assertFalse(r.is_authenticated(BROWSER))


class SelectionAndConsentTests(unittest.TestCase):
    def test_first_check_then_nomination(self) -> None:
        r = responder()
        other = ("10.0.0.5", 50001)
        a = r.receive(binding_request()[0], other, 101.0)
        assert a is not None
        self.assertTrue(a.first)
        self.assertTrue(a.new_address)
        self.assertFalse(a.nominated)
        self.assertEqual(r.selected, other)
        b = r.receive(binding_request(use_candidate=True)[0], BROWSER, 101.1)
        assert b is not None
        self.assertFalse(b.first)
        self.assertTrue(b.nominated)
        self.assertEqual(r.selected, BROWSER)
        self.assertEqual(r.nominated, BROWSER)
        # Once nominated, a later check elsewhere does not move where we send.
        r.receive(binding_request()[0], other, 101.2)
        self.assertEqual(r.selected, BROWSER)
        self.assertTrue(r.is_authenticated(other))

    def test_traffic_moves_selection_only_before_nomination_and_only_if_authenticated(self) -> None:
        r = responder()
        other = ("10.0.0.5", 50001)
        r.receive(binding_request()[0], BROWSER, 101.0)
        r.receive(binding_request()[0], other, 101.1)
        self.assertEqual(r.selected, other)
        r.note_traffic(BROWSER)
        self.assertEqual(r.selected, BROWSER)
        r.note_traffic(("192.0.2.1", 9))  # never checked
        self.assertEqual(r.selected, BROWSER)
        r.receive(binding_request(use_candidate=True)[0], other, 101.2)
        r.note_traffic(BROWSER)
        self.assertEqual(r.selected, other)

    def test_consent_deadline_runs_from_start_then_from_last_check(self) -> None:
        r = IceLiteResponder(LOCAL, remote_ufrag=REMOTE_UFRAG)
        self.assertIsNone(r.consent_deadline(30.0))
        r.start(100.0)
        self.assertEqual(r.consent_deadline(30.0), 130.0)
        r.receive(binding_request()[0], BROWSER, 105.0)
        self.assertEqual(r.consent_deadline(30.0), 135.0)
        r.receive(binding_request()[0], BROWSER, 107.5)
        self.assertEqual(r.consent_deadline(30.0), 137.5)

    def test_failed_checks_do_not_refresh_consent(self) -> None:
        r = responder()
        r.receive(binding_request()[0], BROWSER, 105.0)
        r.receive(binding_request(key=b"x" * 23)[0], BROWSER, 120.0)
        self.assertEqual(r.consent_deadline(30.0), 135.0)
