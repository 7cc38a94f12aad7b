"""The second half of the call set-up, 200 OK -> ``ESTABLISHED`` (docs/performance.md, "Lever:
call set-up"): the SIP side's answer is parsed once on the way to the status, the browser's
offered codecs once per call, and the ladder's redaction skips the URI-password regex where it
cannot match — each with the behaviour the cut must keep (the hold's reading of the answer, the
browser's answer, the secrets hidden).
"""

from __future__ import annotations

import random
from typing import Any

from twisted.trial import unittest

from tests import test_calls_hold as hold
from wcsgw.calls import call as call_module, core as core_module, sipsdp as sipsdp_module
from wcsgw.calls.browserleg import OfferingBrowser
from wcsgw.calls.status import CallStatus
from wcsgw.sdp.model import MediaDescription
from wcsgw.sdp.parser import parse_sdp
from wcsgw.sip import redact as redact_module
from wcsgw.sip.invite import Answered, Provisional
from wcsgw.sip.redact import HIDDEN, redact


class AnswerParsedOnceTests(hold.HoldCase):
    """Counted where the call layer parses SDP (its own modules' ``parse_sdp``)."""

    def setUp(self) -> None:
        super().setUp()
        self.parsed: list[bytes] = []
        for module in (call_module, core_module, sipsdp_module):
            self.patch(module, "parse_sdp", self.counting(module.parse_sdp))

    def counting(self, parse: Any) -> Any:
        def counted(data: Any) -> Any:
            self.parsed.append(bytes(data) if isinstance(data, (bytes, bytearray))
                               else str(data).encode())
            return parse(data)
        return counted

    def test_a_2xx_answer_is_parsed_once_before_established(self) -> None:
        call = self.started()
        answer = hold.phone_sdp(1)
        self.parsed.clear()  # the browser's offer, parsed at the start
        call.sip.heard(Answered(answer))
        self.assertEqual(call.status, CallStatus.ESTABLISHED)
        self.assertEqual(self.parsed.count(answer), 1)
        self.assertEqual([s["status"] for s in self.statuses[-1:]], ["ESTABLISHED"])
        self.assertEqual(self.browser_speaks(call), 1)

    def test_the_kept_parse_still_decides_the_hold(self) -> None:
        """A sendonly 2xx: the direction the status takes is the kept parse's (HOLD)."""
        call = self.started()
        answer = hold.phone_sdp(1, "sendonly")
        self.parsed.clear()
        call.sip.heard(Answered(answer))
        self.assertEqual(call.status, CallStatus.HOLD)
        self.assertEqual(self.parsed.count(answer), 1)
        self.assertEqual(self.browser_speaks(call), 0)

    def test_a_2xx_without_sdp_reads_the_early_answer_once(self) -> None:
        call = self.started()
        early = hold.phone_sdp(1, "sendonly")
        self.parsed.clear()
        call.sip.heard(Provisional(183, "Session Progress", early))
        call.sip.heard(Answered(b""))
        self.assertEqual(call.status, CallStatus.HOLD)
        self.assertEqual(self.parsed.count(early), 1)

    def test_the_kept_parse_is_taken_once(self) -> None:
        """Nothing of the answer stays on the call after the status (memory per call), and
        other bytes are never answered from it."""
        call = self.started()
        call.sip.heard(Answered(hold.phone_sdp(1)))
        self.assertIsNone(call._parsed_answer)
        other = hold.phone_sdp(2, "inactive")
        parsed = call._sip_answer(other)
        assert parsed is not None
        self.assertEqual(parsed.direction_for(parsed.media[0]), "inactive")


class BrowserCodecsParsedOnceTests(hold.HoldCase):
    def test_the_browsers_offer_codecs_are_parsed_once_per_call(self) -> None:
        """Once at the start (the plan), not again for the answer at the 2xx."""
        seen: list[Any] = []
        codecs = MediaDescription.codecs

        def counted(section: MediaDescription) -> Any:
            seen.append(section)
            return codecs(section)

        self.patch(MediaDescription, "codecs", counted)
        call = self.started()
        browser = call.near
        assert isinstance(browser, OfferingBrowser)
        call.sip.heard(Answered(hold.phone_sdp(1)))
        self.assertEqual(call.status, CallStatus.ESTABLISHED)
        self.assertEqual(sum(1 for section in seen if section is browser._audio), 1)
        answer = parse_sdp(browser.answer(browser.codecs[:1], None))  # the same, asked again
        self.assertEqual([c.rtpmap for c in answer.media[0].codecs()],
                         [browser.codecs[0].rtpmap])
        self.assertEqual(self.browser_speaks(call), 1)

    def test_the_kept_codecs_are_a_copy(self) -> None:
        call = self.started()
        browser = call.near
        assert isinstance(browser, OfferingBrowser)
        first = browser.codecs
        first.clear()
        self.assertEqual(browser.codecs, browser._audio.codecs())


def _words(rng: random.Random) -> str:
    parts = ["sip:", "sips:", "tel:", "alice", ":", "@", "secret", "example.com", ";", ">",
             "<", " ", '"', "?", "x", "1001", "pw"]
    return "".join(rng.choice(parts) for _ in range(rng.randint(0, 12)))


class UriPasswordTests(unittest.TestCase):
    def test_the_guard_changes_nothing(self) -> None:
        """With or without an ``@``, the text is what the regex alone makes of it."""
        rng = random.Random(19)
        pattern, hidden = redact_module._URI_PASSWORD, rf"\1:{HIDDEN}@"
        for _ in range(5000):
            text = _words(rng)
            self.assertEqual(redact_module._uri_passwords(text), pattern.sub(hidden, text), text)

    def test_passwords_in_uris_are_still_hidden(self) -> None:
        message = (b"INVITE sip:bob:hunter2@example.com SIP/2.0\r\n"
                   b"Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n"
                   b"From: <sip:alice:s3cret@example.com>;tag=1\r\n"
                   b"To: <sip:bob@example.com>\r\nCall-ID: x@y\r\nCSeq: 1 INVITE\r\n"
                   b"Content-Length: 0\r\n\r\n")
        shown = redact(message)
        self.assertNotIn("hunter2", shown)
        self.assertNotIn("s3cret", shown)
        self.assertIn(f"sip:bob:{HIDDEN}@example.com", shown)
        self.assertIn("Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1", shown)
