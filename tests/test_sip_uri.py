"""URIs (wcsgw.sip.uri): RFC 3261 §19.1 / RFC 3966 grammar, escaping, comparison.

The Hypothesis strategies for the whole SIP grammar live at the top of this module (the
other grammar tests import them): generated values are *canonical* (lower-case hosts and
parameter names, as the parser produces them), so the properties can be the strict
``parse(str(x)) == x``.
"""

from __future__ import annotations

import ipaddress

from hypothesis import strategies as st

from wcsgw.sip.headers import NameAddr, Via, quote_string
from wcsgw.sip.message import Request, Response, canonical_name
from wcsgw.sip.uri import URI

TOKEN_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~"
WORD_CHARS = TOKEN_CHARS + "()<>:\\\"/[]?{}"

#: any text but surrogates (not representable in UTF-8) -- escapes handle the rest
any_text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)
safe_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=8)
#: text that can sit in a header line (no CR/LF)
line_text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=20
)
tokens = st.text(TOKEN_CHARS, min_size=1, max_size=10)
lower_tokens = tokens.map(str.lower)


def _lowered(s: str) -> bool:
    return s == s.lower()


labels = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
hostnames = st.lists(labels, min_size=1, max_size=4).map(".".join)
ipv4 = st.ip_addresses(v=4).map(str)
ipv6 = st.ip_addresses(v=6).map(lambda a: f"[{ipaddress.IPv6Address(a).compressed}]")
hosts = st.one_of(hostnames, ipv4, ipv6)
ports = st.none() | st.integers(0, 65535)

uri_params = st.dictionaries(
    any_text.map(str.lower).filter(_lowered), st.none() | any_text, max_size=4
)


@st.composite
def sip_uris(draw: st.DrawFn, headers: bool = True) -> URI:
    user = draw(st.none() | any_text)
    return URI(
        draw(st.sampled_from(["sip", "sips"])),
        user=user,
        password=draw(st.none() | safe_text) if user else None,
        host=draw(hosts),
        port=draw(ports),
        params=draw(uri_params),
        headers=draw(st.dictionaries(any_text, safe_text, max_size=3)) if headers else {},
    )


tel_uris = st.builds(
    lambda number, params: URI("tel", user=number, params=params),
    st.from_regex(r"\+[0-9]([0-9.\-()]{0,12}[0-9])?", fullmatch=True),
    st.dictionaries(
        st.from_regex(r"[a-z0-9\-]{1,8}", fullmatch=True), st.none() | any_text, max_size=3
    ),
)
opaque_uris = st.builds(
    lambda scheme, rest: URI(scheme, opaque=rest),
    st.from_regex(r"[a-z][a-z0-9+.\-]{0,8}", fullmatch=True).filter(
        lambda s: s not in ("sip", "sips", "tel")
    ),
    st.from_regex(r"[A-Za-z0-9\-_.!~*'();/?:@&=+$,#]{1,20}", fullmatch=True),
)
uris = st.one_of(sip_uris(), tel_uris, opaque_uris)

#: header parameters: token names, token or quoted-string values
header_params = st.dictionaries(
    lower_tokens, st.none() | tokens | line_text.map(quote_string), max_size=4
)


@st.composite
def name_addrs(draw: st.DrawFn) -> NameAddr:
    return NameAddr(
        draw(uris), draw(st.none() | line_text), draw(header_params)
    )


@st.composite
def vias(draw: st.DrawFn) -> Via:
    params = {"branch": "z9hG4bK" + draw(tokens)}
    if draw(st.booleans()):
        params["rport"] = draw(st.none() | st.integers(1, 65535).map(str))
    if draw(st.booleans()):
        params["received"] = draw(ipv4)
    params.update(draw(st.dictionaries(lower_tokens, st.none() | tokens, max_size=2)))
    return Via(
        draw(st.sampled_from(["UDP", "TCP", "TLS", "WS", "WSS", "SCTP"]) | tokens.map(str.upper)),
        draw(hosts),
        draw(ports),
        params,
    )


call_ids = st.text(WORD_CHARS, min_size=1, max_size=20) | st.builds(
    lambda a, b: f"{a}@{b}", st.text(WORD_CHARS, min_size=1, max_size=10), st.text(WORD_CHARS, min_size=1, max_size=10)
)
#: extension headers: names that are neither list headers nor validated ones
extension_headers = st.lists(
    st.tuples(
        st.from_regex(r"X-[A-Za-z0-9\-]{1,10}", fullmatch=True).map(canonical_name),
        line_text.map(lambda v: v.strip(" \t")),
    ),
    max_size=4,
)


@st.composite
def common_headers(draw: st.DrawFn, method: str) -> list[tuple[str, str]]:
    items = [("Via", str(v)) for v in draw(st.lists(vias(), min_size=1, max_size=3))]
    items += [
        ("From", str(draw(name_addrs()))),
        ("To", str(draw(name_addrs()))),
        ("Call-ID", draw(call_ids)),
        ("CSeq", f"{draw(st.integers(0, 2**31 - 1))} {method}"),
        ("Max-Forwards", str(draw(st.integers(0, 255)))),
    ]
    items += [("Contact", str(draw(name_addrs()))) for _ in range(draw(st.integers(0, 2)))]
    items += draw(extension_headers)
    return items


@st.composite
def requests(draw: st.DrawFn) -> Request:
    method = draw(tokens)
    uri = draw(sip_uris(headers=False) | tel_uris | opaque_uris)
    body = draw(st.binary(max_size=200))
    headers = draw(common_headers(method))
    if body:
        headers.append(("Content-Type", "application/octet-stream"))
    return Request(method, str(uri), headers, body)


@st.composite
def responses(draw: st.DrawFn) -> Response:
    method = draw(tokens)
    reason = draw(line_text)
    return Response(
        draw(st.integers(100, 699)), reason, draw(common_headers(method)), draw(st.binary(max_size=200))
    )


messages = requests() | responses()


# -- tests ---------------------------------------------------------------------------------

from hypothesis import example, given  # noqa: E402
from twisted.trial.unittest import SynchronousTestCase  # noqa: E402

from wcsgw.sip.errors import SipParseError  # noqa: E402
from wcsgw.sip.uri import parse_uri, uri_equal  # noqa: E402


class ParseSip(SynchronousTestCase):
    def test_full(self) -> None:
        u = parse_uri("sips:alice:secret@Example.COM:5061;transport=TCP;lr;Maddr=239.255.255.1?Subject=hi%20there&Priority=urgent")
        self.assertEqual(u.scheme, "sips")
        self.assertEqual((u.user, u.password, u.host, u.port), ("alice", "secret", "example.com", 5061))
        self.assertEqual(u.params, {"transport": "TCP", "lr": None, "maddr": "239.255.255.1"})
        self.assertEqual(u.headers, {"Subject": "hi there", "Priority": "urgent"})
        self.assertEqual(
            str(u), "sips:alice:secret@example.com:5061;transport=TCP;lr;maddr=239.255.255.1?Subject=hi%20there&Priority=urgent"
        )

    def test_host_only(self) -> None:
        u = parse_uri("sip:example.com")
        self.assertEqual(u, URI("sip", host="example.com"))
        self.assertEqual(str(u), "sip:example.com")
        self.assertEqual(u.hostport, "example.com")

    def test_ipv4_and_ipv6(self) -> None:
        self.assertEqual(parse_uri("sip:bob@192.0.2.4:5070").host, "192.0.2.4")
        u = parse_uri("sip:[2001:DB8::10]:5070;transport=udp")
        self.assertEqual((u.host, u.port), ("[2001:db8::10]", 5070))
        self.assertEqual(str(u), "sip:[2001:db8::10]:5070;transport=udp")

    def test_scheme_case_insensitive(self) -> None:
        self.assertEqual(parse_uri("SIP:a@b").scheme, "sip")

    def test_escapes_are_undone_and_redone(self) -> None:
        u = parse_uri("sip:%61lice%20x@host;na%6De=v%3Cal")
        self.assertEqual(u.user, "alice x")
        self.assertEqual(u.params, {"name": "v<al"})
        self.assertEqual(str(u), "sip:alice%20x@host;name=v%3Cal")

    def test_user_with_telephone_subscriber(self) -> None:
        u = parse_uri("sip:+1-212-555-1212;isub=1411;postd=pp22@gw.example.com;user=phone")
        self.assertEqual(u.user, "+1-212-555-1212;isub=1411;postd=pp22")
        self.assertEqual(u.params, {"user": "phone"})

    def test_non_utf8_escape_survives(self) -> None:
        u = parse_uri("sip:caf%E9@host")
        self.assertEqual(str(u), "sip:caf%E9@host")

    def test_malformed(self) -> None:
        for bad in [
            "", "sip:", "sip:@host", "sip:user@", "sip:host:99999", "sip:host:port",
            "sip:us er@host", "sip:user@ho st", "sip:%zz@host", "sip:[::1", "sip:[zz::1]",
            "<sip:host>", "sip:host;=v", "sip:host;a=", "sip:host?x", "sip:a@b@c",
            "sip:host;lr ", "tel:", "tel:xyz", "tel:+", "nocolon", "1sip:x", "http:", "x: y",
        ]:
            with self.subTest(bad=bad):
                self.assertRaises(SipParseError, parse_uri, bad)


class ParseOther(SynchronousTestCase):
    def test_tel(self) -> None:
        u = parse_uri("tel:+1-201-555-0123;ext=1234;phone-context=example.com")
        self.assertEqual(u.scheme, "tel")
        self.assertEqual(u.user, "+1-201-555-0123")
        self.assertEqual(u.params, {"ext": "1234", "phone-context": "example.com"})
        self.assertEqual(str(u), "tel:+1-201-555-0123;ext=1234;phone-context=example.com")

    def test_tel_local(self) -> None:
        self.assertEqual(parse_uri("tel:7042;phone-context=example.com").user, "7042")

    def test_opaque(self) -> None:
        u = parse_uri("urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6")
        self.assertEqual(u, URI("urn", opaque="uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6"))
        self.assertEqual(str(u), "urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6")


class Equality(SynchronousTestCase):
    """RFC 3261 §19.1.4 examples."""

    def test_equivalent(self) -> None:
        pairs = [
            ("sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp"),
            ("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"),
            ("sip:carol@chicago.com;security=on", "sip:carol@chicago.com;newparam=5"),
            ("sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
             "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com"),
            ("sip:alice@atlanta.com?subject=project%20x&priority=urgent",
             "sip:alice@atlanta.com?priority=urgent&subject=project%20x"),
            ("tel:+1-201-555-0123", "tel:+12015550123"),
        ]
        for a, b in pairs:
            with self.subTest(a=a, b=b):
                self.assertTrue(uri_equal(parse_uri(a), parse_uri(b)))
                self.assertTrue(uri_equal(parse_uri(b), parse_uri(a)))

    def test_different(self) -> None:
        pairs = [
            ("SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP"),
            ("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"),
            ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"),
            ("sip:bob@biloxi.com", "sip:bob@biloxi.com:6000;transport=tcp"),
            ("sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting"),
            ("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"),
            ("sip:carol@chicago.com;security=on", "sip:carol@chicago.com;security=off"),
            ("sip:a@b", "sips:a@b"),
            ("sip:a@b", "tel:+1"),
            ("urn:x", "urn:y"),
        ]
        for a, b in pairs:
            with self.subTest(a=a, b=b):
                self.assertFalse(uri_equal(parse_uri(a), parse_uri(b)))


class Properties(SynchronousTestCase):
    @given(uris)
    @example(URI("sip", user="a@b:c d%", password="p@ss:", host="h", params={"x y": "%;="}))
    @example(URI("sip", user="\x00\udc80", host="h"))
    def test_round_trip(self, uri: URI) -> None:
        self.assertEqual(parse_uri(str(uri)), uri)

    @given(uris)
    def test_equal_to_itself(self, uri: URI) -> None:
        self.assertTrue(uri_equal(uri, parse_uri(str(uri))))

    @given(st.text(max_size=40))
    def test_garbage_raises_only_parse_errors(self, text: str) -> None:
        try:
            uri = parse_uri(text)
        except SipParseError:
            return
        self.assertEqual(parse_uri(str(uri)), uri)

    @given(st.text("sip:@;=?&%[]:.abc019AF<> ", max_size=30))
    def test_grammar_soup(self, text: str) -> None:
        try:
            uri = parse_uri(text)
        except SipParseError:
            return
        self.assertEqual(parse_uri(str(uri)), uri)
