"""INFO both ways on both INVITE sessions, and the DTMF bodies of wcsgw.sip.info; sans-IO."""

from __future__ import annotations

from typing import Callable

from twisted.trial import unittest

from tests.test_sip_reinvite import TIMEOUT, Side, uac, uas
from wcsgw.sip.info import DTMF_RELAY, dtmf_relay_body, parse_dtmf_info
from wcsgw.sip.invite import Ended
from wcsgw.sip.message import Request
from wcsgw.sip.session import InfoAnswered, InfoReceived


class DtmfBodyTests(unittest.TestCase):
    def test_dtmf_relay_body(self) -> None:
        self.assertEqual(dtmf_relay_body("5"), b"Signal=5\r\nDuration=250\r\n")
        self.assertEqual(dtmf_relay_body("#", 100), b"Signal=#\r\nDuration=100\r\n")
        self.assertEqual(dtmf_relay_body("*"), b"Signal=*\r\nDuration=250\r\n")
        self.assertEqual(dtmf_relay_body("d"), b"Signal=D\r\nDuration=250\r\n")

    def test_dtmf_relay_body_refuses_what_is_not_one_key(self) -> None:
        for bad in ("", "12", "E", " ", "10", "\r"):
            with self.assertRaises(ValueError, msg=repr(bad)):
                dtmf_relay_body(bad)
        with self.assertRaises(ValueError):
            dtmf_relay_body("1", 0)

    def test_parse_dtmf_relay(self) -> None:
        cases = {
            b"Signal=5\r\nDuration=250\r\n": "5",
            b"Signal= 9\r\nDuration= 160\r\n": "9",
            b"signal=#\nduration=100\n": "#",
            b"Duration=100\r\nSignal=*\r\n": "*",
            b"Signal=10\r\nDuration=100\r\n": "*",  # RFC 4733 event codes, as some send
            b"Signal=11\r\n": "#",
            b"Signal=a\r\n": "A",
            b"Signal=15\r\n": "D",
        }
        for body, digit in cases.items():
            self.assertEqual(parse_dtmf_info("application/dtmf-relay", body), digit, body)

    def test_parse_content_type_variants(self) -> None:
        self.assertEqual(parse_dtmf_info("Application/DTMF-Relay;charset=x", b"Signal=3"), "3")
        self.assertEqual(parse_dtmf_info("application/dtmf", b"7"), "7")
        self.assertEqual(parse_dtmf_info("application/dtmf", b" 7\r\n"), "7")

    def test_not_dtmf_is_none(self) -> None:
        for content_type, body in (
            ("application/dtmf-relay", b"Duration=100\r\n"),
            ("application/dtmf-relay", b"Signal=55\r\n"),
            ("application/dtmf-relay", b"Signal=E\r\n"),
            ("application/dtmf-relay", b"\xff\xfe"),
            ("application/dtmf", b"12"),
            ("application/sdp", b"Signal=5\r\n"),
            ("", b"Signal=5\r\n"),
        ):
            self.assertIsNone(parse_dtmf_info(content_type, body), (content_type, body))

    def test_round_trip(self) -> None:
        for digit in "0123456789*#ABCD":
            self.assertEqual(parse_dtmf_info(DTMF_RELAY, dtmf_relay_body(digit)), digit)


class InfoTests:
    make: Callable[..., Side]
    first_cseq: int
    assertEqual: Callable[..., None]
    assertTrue: Callable[..., None]
    assertFalse: Callable[..., None]
    assertRaises: Callable[..., object]

    def test_send_info(self) -> None:
        s = self.make()
        s.session.send_info(DTMF_RELAY, dtmf_relay_body("5"), 2.0)
        [(info, target)] = s.sent()
        assert isinstance(info, Request)
        self.assertEqual(info.method, "INFO")
        self.assertEqual(target, s.next_hop)
        self.assertEqual(info.uri, s.remote_target)
        self.assertEqual(info.cseq, (self.first_cseq, "INFO"))
        self.assertEqual(info.headers.get("Content-Type"), "application/dtmf-relay")
        self.assertEqual(info.body, b"Signal=5\r\nDuration=250\r\n")
        self.assertEqual(info.headers.get("Content-Length"), "24")
        self.assertEqual(info.to.tag, s.peer_tag)
        s.reply(info, 200, at=2.1)
        self.assertEqual(s.events, [InfoAnswered(200)])

    def test_infos_in_a_row_number_on(self) -> None:
        s = self.make()
        for i, digit in enumerate("12#"):
            s.session.send_info(DTMF_RELAY, dtmf_relay_body(digit), 2.0 + i)
        infos = s.requests("INFO")
        self.assertEqual([i.cseq[0] for i in infos],
                         [self.first_cseq, self.first_cseq + 1, self.first_cseq + 2])
        self.assertEqual([parse_dtmf_info(DTMF_RELAY, i.body) for i in infos], ["1", "2", "#"])
        s.reply(infos[1], 415, at=5.0)
        s.reply(infos[0], 200, at=5.1)
        self.assertEqual(s.events, [InfoAnswered(415), InfoAnswered(200)])

    def test_unanswered_info_is_reported_and_the_call_goes_on(self) -> None:
        s = self.make()
        s.session.send_info(DTMF_RELAY, dtmf_relay_body("1"), 2.0)
        s.advance(2.0 + TIMEOUT - 0.01)
        self.assertEqual(s.events, [])
        s.advance(2.0 + TIMEOUT)
        self.assertEqual(s.events, [InfoAnswered(None)])
        self.assertFalse(s.session.terminated)

    def test_481_ends_the_call(self) -> None:
        s = self.make()
        s.session.send_info(DTMF_RELAY, dtmf_relay_body("1"), 2.0)
        [info] = s.requests("INFO")
        s.reply(info, 481, at=2.1)
        self.assertEqual(s.events, [InfoAnswered(481),
                                    Ended("481 Call/Transaction Does Not Exist", by_remote=True)])
        self.assertTrue(s.session.terminated)

    def test_refused_when_not_up_or_header_injection(self) -> None:
        s = self.make()
        with self.assertRaises(ValueError):
            s.session.send_info("application/dtmf-relay\r\nX: y", b"", 2.0)
        s.session.hangup(2.0)
        with self.assertRaises(RuntimeError):
            s.session.send_info(DTMF_RELAY, dtmf_relay_body("1"), 2.1)

    def test_incoming_info_200_and_event(self) -> None:
        s = self.make()
        info = s.peer_request("INFO", body=b"Signal=9\r\nDuration=160\r\n",
                              content_type="application/dtmf-relay")
        s.feed(info, at=2.0)
        [ok] = s.responses()
        self.assertEqual((ok.status, ok.cseq), (200, info.cseq))
        self.assertEqual(s.events, [InfoReceived("application/dtmf-relay",
                                                 b"Signal=9\r\nDuration=160\r\n")])
        event = s.events[0]
        assert isinstance(event, InfoReceived)
        self.assertEqual(parse_dtmf_info(event.content_type, event.body), "9")

    def test_incoming_info_without_body(self) -> None:
        s = self.make()
        s.feed(s.peer_request("INFO"), at=2.0)
        self.assertEqual([r.status for r in s.responses()], [200])
        self.assertEqual(s.events, [InfoReceived("", b"")])


class UacInfoTests(InfoTests, unittest.TestCase):
    make = staticmethod(uac)
    first_cseq = 2


class UasInfoTests(InfoTests, unittest.TestCase):
    make = staticmethod(uas)
    first_cseq = 1
