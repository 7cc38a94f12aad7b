"""Structured headers (wcsgw.sip.headers): Via, name-addr, CSeq, generic parameters."""

from __future__ import annotations

from hypothesis import given, strategies as st
from twisted.trial.unittest import SynchronousTestCase

from tests.test_sip_uri import name_addrs, vias
from wcsgw.sip.errors import SipParseError
from wcsgw.sip.headers import (
    MAGIC_COOKIE,
    NameAddr,
    Via,
    parse_cseq,
    parse_name_addr,
    parse_params,
    parse_via,
    quote_string,
    unquote_string,
)
from wcsgw.sip.uri import URI


class Params(SynchronousTestCase):
    def test_basic(self) -> None:
        self.assertEqual(parse_params(";a=1;B;c=x"), {"a": "1", "b": None, "c": "x"})

    def test_whitespace_around_separators(self) -> None:
        self.assertEqual(parse_params(" ; a = 1 ;\tb "), {"a": "1", "b": None})

    def test_quoted_value_keeps_quotes(self) -> None:
        self.assertEqual(
            parse_params(';+sip.instance="<urn:uuid:1;2>";x="a\\"b"'),
            {"+sip.instance": '"<urn:uuid:1;2>"', "x": '"a\\"b"'},
        )

    def test_ipv6_values(self) -> None:
        self.assertEqual(parse_params(";received=2001:db8::1;maddr=[::1]"), {"received": "2001:db8::1", "maddr": "[::1]"})

    def test_first_duplicate_wins(self) -> None:
        self.assertEqual(parse_params(";tag=a;tag=b"), {"tag": "a"})

    def test_empty(self) -> None:
        self.assertEqual(parse_params(""), {})
        self.assertEqual(parse_params("  "), {})

    def test_malformed(self) -> None:
        for bad in [";", ";;", "a=1", ";a=", ";a b", ';a="x', ";a=<x>", ";=1"]:
            with self.subTest(bad=bad):
                self.assertRaises(SipParseError, parse_params, bad)


class ViaTests(SynchronousTestCase):
    def test_typical(self) -> None:
        v = parse_via("SIP/2.0/UDP pc33.atlanta.com:5066;branch=z9hG4bK776asdhds;rport")
        self.assertEqual(v, Via("UDP", "pc33.atlanta.com", 5066, {"branch": "z9hG4bK776asdhds", "rport": None}))
        self.assertEqual(v.branch, "z9hG4bK776asdhds")
        self.assertTrue(v.rfc3261_branch)
        self.assertEqual(v.sent_by, "pc33.atlanta.com:5066")
        self.assertEqual(str(v), "SIP/2.0/UDP pc33.atlanta.com:5066;branch=z9hG4bK776asdhds;rport")

    def test_lws_everywhere(self) -> None:
        v = parse_via("SIP / 2.0 / tcp  Host.Example.com : 5060 ; branch = z9hG4bKx ; received=192.0.2.1 ; rport=4000 ; ttl=16 ; maddr=224.2.0.1")
        self.assertEqual((v.protocol, v.transport, v.host, v.port), ("SIP/2.0", "TCP", "host.example.com", 5060))
        self.assertEqual(v.params, {"branch": "z9hG4bKx", "received": "192.0.2.1", "rport": "4000", "ttl": "16", "maddr": "224.2.0.1"})
        self.assertEqual(v.received, "192.0.2.1")

    def test_ipv6(self) -> None:
        v = parse_via("SIP/2.0/WSS [2001:DB8::9]:443;branch=z9hG4bKa;received=2001:db8::1")
        self.assertEqual((v.host, v.port), ("[2001:db8::9]", 443))
        self.assertEqual(str(v), "SIP/2.0/WSS [2001:db8::9]:443;branch=z9hG4bKa;received=2001:db8::1")

    def test_rfc2543_branchless(self) -> None:
        v = parse_via("SIP/2.0/UDP iftgw.example.com")
        self.assertIsNone(v.branch)
        self.assertFalse(v.rfc3261_branch)
        self.assertFalse(parse_via(f"SIP/2.0/UDP h;branch={MAGIC_COOKIE}").rfc3261_branch)

    def test_malformed(self) -> None:
        for bad in [
            "", "SIP/2.0/UDP", "SIP/2.0 host", "SIP/2.0/UDP host;;", "SIP/2.0/UDP host:70000",
            "SIP/2.0/UDP host:x", "SIP/2.0/UDP ho st", "SIP/2.0/UDP [::1", "SIP/2.0/UDP host;branch=",
            "SIP/2.0/UDP host,", "SIP/2.0/UDP 192.0.2.15;;,;,,",
        ]:
            with self.subTest(bad=bad):
                self.assertRaises(SipParseError, parse_via, bad)

    @given(vias())
    def test_round_trip(self, via: Via) -> None:
        self.assertEqual(parse_via(str(via)), via)


class NameAddrTests(SynchronousTestCase):
    def test_quoted_display(self) -> None:
        na = parse_name_addr('"Alice \\"A\\" Liddell" <sip:alice@example.com>;tag=1928301774')
        self.assertEqual(na.display_name, 'Alice "A" Liddell')
        self.assertEqual(na.uri, URI("sip", user="alice", host="example.com"))
        self.assertEqual(na.tag, "1928301774")
        self.assertEqual(str(na), '"Alice \\"A\\" Liddell" <sip:alice@example.com>;tag=1928301774')

    def test_token_display(self) -> None:
        na = parse_name_addr("Bob   Smith <sip:bob@biloxi.com>")
        self.assertEqual(na.display_name, "Bob Smith")
        self.assertEqual(str(na), '"Bob Smith" <sip:bob@biloxi.com>')

    def test_no_display(self) -> None:
        na = parse_name_addr("<sip:bob@biloxi.com;transport=tcp>;expires=60")
        self.assertIsNone(na.display_name)
        self.assertEqual(na.uri.params, {"transport": "tcp"})
        self.assertEqual(na.params, {"expires": "60"})

    def test_empty_quoted_display(self) -> None:
        self.assertEqual(parse_name_addr('"" <sip:a@b>').display_name, "")

    def test_addr_spec_params_belong_to_header(self) -> None:
        na = parse_name_addr("sip:+12125551212@server.phone2net.com;tag=887s;user=phone")
        self.assertEqual(na.uri.params, {})
        self.assertEqual(na.params, {"tag": "887s", "user": "phone"})
        self.assertEqual(str(na), "<sip:+12125551212@server.phone2net.com>;tag=887s;user=phone")

    def test_other_schemes(self) -> None:
        self.assertEqual(parse_name_addr("<tel:+1-555-0100>").uri.user, "+1-555-0100")
        self.assertEqual(parse_name_addr("<urn:service:sos>").uri.opaque, "service:sos")

    def test_controls_in_display_name_round_trip(self) -> None:
        na = NameAddr(URI("sip", host="h"), "a\x00b\x7fc\\d\"e\tf")
        self.assertEqual(parse_name_addr(str(na)), na)

    def test_crlf_in_display_name_cannot_inject(self) -> None:
        text = str(NameAddr(URI("sip", host="h"), "x\r\nVia: evil"))
        self.assertNotIn("\r", text)
        self.assertNotIn("\n", text)

    def test_utf8_display(self) -> None:
        self.assertEqual(parse_name_addr('"Jürgen 大" <sip:j@h>').display_name, "Jürgen 大")

    def test_malformed(self) -> None:
        for bad in [
            "", '"unterminated <sip:a@b>', '"x" sip:a@b', "Bell, Alexander <sip:a@b>",
            "< sip:a@b >", "<sip:a@b", "sip:a@b?x=y", "sip:a@b,c", "<sip:a@b>;;", "<>",
            "<sip:a@b> junk", "a@b",
        ]:
            with self.subTest(bad=bad):
                self.assertRaises(SipParseError, parse_name_addr, bad)

    @given(name_addrs())
    def test_round_trip(self, na: NameAddr) -> None:
        self.assertEqual(parse_name_addr(str(na)), na)


class QuotedStrings(SynchronousTestCase):
    @given(st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n")))
    def test_round_trip(self, text: str) -> None:
        self.assertEqual(unquote_string(quote_string(text)), text)


class CSeq(SynchronousTestCase):
    def test_ok(self) -> None:
        self.assertEqual(parse_cseq("4711 INVITE"), (4711, "INVITE"))
        self.assertEqual(parse_cseq(" 0009 \t INVITE "), (9, "INVITE"))
        self.assertEqual(parse_cseq(f"{2**31 - 1} ACK"), (2**31 - 1, "ACK"))

    def test_malformed(self) -> None:
        for bad in ["", "INVITE", "1", "-1 INVITE", f"{2**31} INVITE", "1 INV ITE", "1x INVITE",
                    "36893488147419103232 REGISTER", "1 INVITE;x"]:
            with self.subTest(bad=bad):
                self.assertRaises(SipParseError, parse_cseq, bad)
