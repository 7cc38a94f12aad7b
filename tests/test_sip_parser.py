"""Messages (wcsgw.sip.parser): parse_message, serialize, list splitting, robustness."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, example, given, settings, strategies as st
from twisted.trial.unittest import SynchronousTestCase

from tests.test_sip_uri import messages, name_addrs, vias
from wcsgw.sip import parser
from wcsgw.sip.errors import SipParseError
from wcsgw.sip.headers import parse_name_addr, parse_via
from wcsgw.sip.message import Headers, Message, Request, Response
from wcsgw.sip.parser import parse_message, serialize, split_list

DATA = os.path.join(os.path.dirname(__file__), "data", "rfc4475")
TORTURE = {
    name[:-4]: open(os.path.join(DATA, name), "rb").read()
    for name in sorted(os.listdir(DATA))
    if name.endswith(".dat")
}

HEAD = (
    "Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds\r\n"
    "Max-Forwards: 70\r\n"
    "To: Bob <sip:bob@biloxi.com>\r\n"
    "From: Alice <sip:alice@atlanta.com>;tag=1928301774\r\n"
    "Call-ID: a84b4c76e66710@pc33.atlanta.com\r\n"
    "CSeq: 314159 INVITE\r\n"
)


def invite(extra: str = "", body: str = "", length: int | None = None) -> bytes:
    cl = "" if length == -1 else f"Content-Length: {len(body) if length is None else length}\r\n"
    return f"INVITE sip:bob@biloxi.com SIP/2.0\r\n{HEAD}{extra}{cl}\r\n{body}".encode()


class Requests(SynchronousTestCase):
    def test_basic(self) -> None:
        m = parse_message(invite(body="v=0\r\n"))
        assert isinstance(m, Request)
        self.assertEqual((m.method, m.uri, m.version), ("INVITE", "sip:bob@biloxi.com", "SIP/2.0"))
        self.assertEqual(m.call_id, "a84b4c76e66710@pc33.atlanta.com")
        self.assertEqual(m.cseq, (314159, "INVITE"))
        self.assertEqual(m.from_.tag, "1928301774")
        self.assertEqual(m.body, b"v=0\r\n")

    def test_compact_forms_and_case(self) -> None:
        data = (
            b"OPTIONS sip:a@b SIP/2.0\r\nv: SIP/2.0/UDP h;branch=z9hG4bK1\r\nt: <sip:a@b>\r\n"
            b"f: <sip:c@d>;tag=1\r\ni: x@y\r\ncseq: 1 OPTIONS\r\nk: timer, 100rel\r\nl: 0\r\n\r\n"
        )
        m = parse_message(data)
        self.assertEqual(
            [n for n, _ in m.headers],
            ["Via", "To", "From", "Call-ID", "CSeq", "Supported", "Supported", "Content-Length"],
        )
        self.assertEqual(m.headers.get_all("Supported"), ["timer", "100rel"])

    def test_folding_and_bare_lf(self) -> None:
        data = invite("Subject: I know\r\n  you're there,\r\n\tpick up\r\n").replace(b"\r\n", b"\n")
        m = parse_message(data)
        self.assertEqual(m.headers.get("Subject"), "I know you're there, pick up")

    def test_leading_crlf_ignored(self) -> None:
        self.assertEqual(parse_message(b"\r\n\r\n" + invite()).method, "INVITE")

    def test_list_headers_split_respecting_quotes_and_brackets(self) -> None:
        m = parse_message(
            invite(
                'Contact: "Smith, J" <sip:j,k@h;a=1>;q=0.5, <sip:k@h>\r\n'
                "Route: <sip:p1;lr>,<sip:p2;lr>\r\n"
                "Allow: INVITE, ACK ,BYE\r\n"
                'WWW-Authenticate: Digest realm="a", nonce="b"\r\n'
                "Date: Sat, 13 Nov 2010 23:29:00 GMT\r\n"
                "Reply-To: Bob <sip:bob@biloxi.com>\r\n"
            )
        )
        self.assertEqual(m.headers.get_all("Contact"), ['"Smith, J" <sip:j,k@h;a=1>;q=0.5', "<sip:k@h>"])
        self.assertEqual(m.headers.get_all("Route"), ["<sip:p1;lr>", "<sip:p2;lr>"])
        self.assertEqual(m.headers.get_all("Allow"), ["INVITE", "ACK", "BYE"])
        self.assertEqual(len(m.headers.get_all("WWW-Authenticate")), 1)
        self.assertEqual(m.headers.get("Date"), "Sat, 13 Nov 2010 23:29:00 GMT")
        self.assertEqual([c.display_name for c in m.contacts], ["Smith, J", None])

    def test_register_wildcard_contact(self) -> None:
        data = invite("Contact: *\r\nExpires: 0\r\n").replace(b"INVITE", b"REGISTER")
        m = parse_message(data)
        self.assertEqual(m.headers.get("Contact"), "*")
        self.assertEqual(m.contacts, [])

    def test_missing_content_length_means_rest_of_datagram(self) -> None:
        self.assertEqual(parse_message(invite(body="abc", length=-1)).body, b"abc")

    def test_short_content_length_truncates(self) -> None:
        self.assertEqual(parse_message(invite(body="abcdef", length=2)).body, b"ab")

    def test_long_content_length_is_an_error(self) -> None:
        exc = self.assertRaises(SipParseError, parse_message, invite(body="abc", length=4))
        self.assertIsInstance(exc.partial, Request)

    def test_version_505(self) -> None:
        exc = self.assertRaises(SipParseError, parse_message, invite().replace(b"SIP/2.0\r\n", b"SIP/3.0\r\n", 1))
        self.assertEqual(exc.status, 505)
        self.assertEqual(exc.partial.method, "INVITE")

    def test_lower_case_version_accepted(self) -> None:
        self.assertEqual(parse_message(invite().replace(b"SIP/2.0\r\n", b"sip/2.0\r\n", 1)).version, "SIP/2.0")

    def test_missing_mandatory_headers(self) -> None:
        for name in ["Via", "From", "To", "Call-ID", "CSeq"]:
            data = b"\r\n".join(line for line in invite().split(b"\r\n") if not line.startswith(name.encode() + b":"))
            with self.subTest(name=name):
                exc = self.assertRaises(SipParseError, parse_message, data)
                self.assertIn(name, exc.reason)
                # without a Via there is nowhere to send a 400
                self.assertEqual(exc.partial is None, name == "Via")

    def test_max_forwards_may_be_missing(self) -> None:
        data = invite().replace(b"Max-Forwards: 70\r\n", b"")
        self.assertNotIn("Max-Forwards", parse_message(data).headers)

    def test_partial_keeps_raw_headers(self) -> None:
        exc = self.assertRaises(SipParseError, parse_message, invite("Contact: <sip:a@b\r\nbroken line\r\n"))
        partial = exc.partial
        self.assertEqual(partial.headers.get("Call-ID"), "a84b4c76e66710@pc33.atlanta.com")
        self.assertEqual(partial.uri, "sip:bob@biloxi.com")

    def test_malformed(self) -> None:
        bad = [
            b"", b"\r\n\r\n", b"INVITE\r\n\r\n", b"INVITE sip:a@b SIP/2.0",
            invite().replace(b"Call-ID: a84b", b"Call-ID: a 84b"),
            invite().replace(b"CSeq: 314159 INVITE", b"CSeq: 314159 BYE"),
            invite("Content-Length: 1\r\n", body="ab"),
            invite("X\x01: y\r\n"),
            invite().replace(b"\r\nMax", b"\rMax"),
            invite("Date: yesterday\r\n"),
            invite("Contact: <sip:a@b>, <sip:c@d\r\n"),
            invite().replace(b"INVITE sip", b"INV(TE sip", 1),
        ]
        for data in bad:
            with self.subTest(data=data[:60]):
                self.assertRaises(SipParseError, parse_message, data)


class Responses(SynchronousTestCase):
    def test_basic(self) -> None:
        data = f"SIP/2.0 180 Ringing\r\n{HEAD}Content-Length: 0\r\n\r\n".encode()
        m = parse_message(data)
        assert isinstance(m, Response)
        self.assertEqual((m.status, m.reason), (180, "Ringing"))

    def test_reason_with_spaces_and_utf8(self) -> None:
        data = f"SIP/2.0 486 Occupé  ici \r\n{HEAD}\r\n".encode()
        self.assertEqual(parse_message(data).reason, "Occupé  ici ")

    def test_cseq_method_free(self) -> None:
        data = f"SIP/2.0 200 OK\r\n{HEAD}\r\n".encode()
        self.assertEqual(parse_message(data).cseq, (314159, "INVITE"))

    def test_bad_status(self) -> None:
        for status in [b"99", b"700", b"2000", b"20x", b"\xd9\xa2\xd9\xa0\xd9\xa0"]:
            data = b"SIP/2.0 " + status + b" OK\r\n" + HEAD.encode() + b"\r\n"
            with self.subTest(status=status):
                exc = self.assertRaises(SipParseError, parse_message, data)
                self.assertIsNone(exc.partial)


class Serialize(SynchronousTestCase):
    def test_request(self) -> None:
        m = Request("OPTIONS", "sip:a@b", [("v", "SIP/2.0/UDP h;branch=z9hG4bK1"), ("Content-Length", "99")], b"xy")
        self.assertEqual(
            serialize(m),
            b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nContent-Length: 2\r\n\r\nxy",
        )
        self.assertEqual(m.to_bytes(), serialize(m))

    def test_content_length_added(self) -> None:
        self.assertEqual(serialize(Response(100, "Trying")), b"SIP/2.0 100 Trying\r\nContent-Length: 0\r\n\r\n")

    def test_header_injection_refused(self) -> None:
        for value in ["a\r\nVia: x", "a\nb", "a\rb"]:
            with self.subTest(value=value):
                self.assertRaises(ValueError, serialize, Response(200, "OK", [("Subject", value)]))
        self.assertRaises(ValueError, serialize, Response(200, "OK\r\nX: y"))

    def test_not_a_message(self) -> None:
        self.assertRaises(TypeError, serialize, Message())

    def test_surrogates_round_trip_bytes(self) -> None:
        data = invite("Subject: caf\xe9\r\n".encode("latin-1").decode("latin-1"))
        raw = data.replace("café".encode(), b"caf\xe9")
        m = parse_message(raw)
        self.assertEqual(serialize(m), raw)

    @given(messages)
    @settings(suppress_health_check=[HealthCheck.too_slow], max_examples=150)
    def test_round_trip(self, msg: Request | Response) -> None:
        parsed = parse_message(serialize(msg))
        self.assertIs(type(parsed), type(msg))
        if isinstance(msg, Request):
            self.assertEqual((parsed.method, parsed.uri), (msg.method, msg.uri))
        else:
            self.assertEqual((parsed.status, parsed.reason), (msg.status, msg.reason))
        expected = msg.headers.copy()
        expected.set("Content-Length", str(len(msg.body)))
        self.assertEqual(parsed.headers, expected)
        self.assertEqual(parsed.body, msg.body)
        self.assertEqual(serialize(parsed), serialize(msg))


class SplitList(SynchronousTestCase):
    def test_cases(self) -> None:
        self.assertEqual(split_list("a"), ["a"])
        self.assertEqual(split_list("a, b ,c"), ["a", "b", "c"])
        self.assertEqual(split_list("a,,b,"), ["a", "b"])
        self.assertEqual(split_list('"x,y" <a,b>, c'), ['"x,y" <a,b>', "c"])
        self.assertEqual(split_list('"x\\",y", z'), ['"x\\",y"', "z"])
        self.assertRaises(SipParseError, split_list, '"x, y')
        self.assertRaises(SipParseError, split_list, "<x, y")


class FastPaths(SynchronousTestCase):
    """The validation fast paths must accept only what the full parsers accept."""

    @given(name_addrs())
    def test_name_addr_fast_path_is_a_subset(self, na: object) -> None:
        text = str(na)
        if parser._FAST_NAME_ADDR_RE.fullmatch(text):
            parse_name_addr(text)

    @given(st.text('"<>;=:@ ab.%3Fsip,?/\\[]1', max_size=30))
    @example("sip:a;b@host")
    @example("sip:a@b:99999")
    @example('a <sip:a@b>;x="y"')
    def test_name_addr_fast_path_on_soup(self, text: str) -> None:
        if parser._FAST_NAME_ADDR_RE.fullmatch(text):
            parse_name_addr(text)

    @given(vias())
    def test_via_fast_path_is_a_subset(self, via: object) -> None:
        text = str(via)
        if parser._FAST_VIA_RE.fullmatch(text):
            self.assertEqual(parse_via(text), via)

    @given(st.text("SIP/2.0UDP ;=:.ab[]1", max_size=30).map(lambda s: "SIP/2.0/UDP " + s))
    def test_via_fast_path_on_soup(self, text: str) -> None:
        if parser._FAST_VIA_RE.fullmatch(text):
            parse_via(text)


def _mutate(data: bytes, edits: list[tuple[int, int, int]]) -> bytes:
    buf = bytearray(data)
    for kind, pos, value in edits:
        if not buf:
            break
        pos %= len(buf)
        if kind == 0:
            buf[pos] = value
        elif kind == 1:
            buf.insert(pos, value)
        else:
            del buf[pos]
    return bytes(buf)


class Robustness(SynchronousTestCase):
    """Whatever the bytes, parse_message raises SipParseError or returns a message that
    serializes and parses again."""

    def _try(self, data: bytes) -> None:
        try:
            msg = parse_message(data)
        except SipParseError as exc:
            self.assertIsInstance(exc.reason, str)
            self.assertNotIn("\n", exc.reason)
            if exc.partial is not None:
                from wcsgw.sip.responses import make_response

                try:
                    serialize(make_response(exc.partial, exc.status, exc.reason[:100], to_tag="x"))
                except ValueError:
                    pass  # a partial's raw header may hold a bare CR: the sender is refused
            return
        parse_message(serialize(msg))

    @given(st.binary(max_size=300))
    def test_random_bytes(self, data: bytes) -> None:
        self._try(data)

    @given(
        st.sampled_from(sorted(TORTURE)),
        st.lists(
            st.tuples(st.integers(0, 2), st.integers(0, 10_000), st.sampled_from(b'\x00\r\n \t:;,<>"\\@%=/?\xff\xc3sS0')),
            min_size=1,
            max_size=6,
        ),
    )
    @settings(max_examples=400)
    def test_mutated_torture_messages(self, name: str, edits: list[tuple[int, int, int]]) -> None:
        self._try(_mutate(TORTURE[name], edits))

    def test_every_torture_prefix(self) -> None:
        data = TORTURE["wsinv"]
        for end in range(len(data)):
            self._try(data[:end])


class HeadersModel(SynchronousTestCase):
    def test_parsed_headers_are_a_real_multimap(self) -> None:
        m = parse_message(invite())
        self.assertIsInstance(m.headers, Headers)
        m.headers.prepend("Via", "SIP/2.0/TCP proxy;branch=z9hG4bKp")
        self.assertEqual(m.top_via.host, "proxy")
        self.assertEqual(len(m.vias), 2)
