"""The outbound policy (wcsgw.calls.policy): where a call may go and what a browser may add to
the INVITE.  Sans-IO: every probe of issue 10 (items 6 and 8) is a plain call on Policy.

The property the destination check must keep: what is checked is what is sent.  The callee is
parsed once with the SIP stack's own URI parser, the parsed host, port and user are checked,
and the Request-URI is *built* from those parts; the browser's text never reaches the wire.
"""

from __future__ import annotations

import re

from hypothesis import given, settings, strategies as st
from twisted.trial import unittest

from wcsgw.calls.errors import CallError, Codes
from wcsgw.calls.policy import Policy
from wcsgw.sip.account import SipAccount
from wcsgw.sip.uri import parse_uri

TESTLINES = "sip:{user}@127.0.0.1:5999"
PREMIUM = r"\+?1?900\d*"


def account(domain: str = "pbx.example", proxy: str | None = None, port: int = 5060,
            transport: str = "udp") -> SipAccount:
    return SipAccount(login="1001", password="pw", domain=domain, outbound_proxy=proxy,
                      port=port, transport=transport)


class PolicyCase(unittest.TestCase):
    def setUp(self) -> None:
        self.policy = Policy(["pbx.example", "127.0.0.1", "[::1]", "media.example:5070"],
                             TESTLINES, denied_numbers=[PREMIUM])

    def refused(self, callee: str, code: int = Codes.FORBIDDEN, field: str = "callee",
                policy: Policy | None = None, acct: SipAccount | None = None) -> CallError:
        with self.assertRaises(CallError) as caught:
            (policy or self.policy).request_uri(acct or account(), callee, field)
        self.assertEqual((caught.exception.code, caught.exception.field), (code, field))
        if code == Codes.FORBIDDEN:
            self.assertTrue(caught.exception.message.startswith("Forbidden destination: "),
                            caught.exception.message)
        return caught.exception


class DestinationTests(PolicyCase):
    """Issue 10 item 8: policy and Request-URI agree."""

    def test_user_part_in_front_of_the_real_host(self) -> None:
        # "127.0.0.1;x" is the *user* part; the host is evil.example (RFC 3261 §25.1).
        error = self.refused("sip:127.0.0.1;x@evil.example")
        self.assertIn("evil.example", error.message)
        self.refused("sip:127.0.0.1;x@evil.example", acct=account(domain="127.0.0.1"))

    def test_maddr_redirects(self) -> None:
        error = self.refused("sip:1002@127.0.0.1;maddr=127.0.0.2")
        self.assertIn("maddr", error.message)
        self.refused("sip:1002@pbx.example;MADDR=evil.example")

    def test_uri_headers_smuggle(self) -> None:
        for callee in ("sip:1002@127.0.0.1?X-A=1", "sip:1002@pbx.example?Route=%3Csip:evil.example%3E",
                       "sip:1002@pbx.example?P-Asserted-Identity=sip:boss%40pbx.example",
                       "sip:1002@pbx.example?body=x"):
            with self.subTest(callee=callee):
                self.assertIn("header", self.refused(callee).message)

    def test_routing_and_unknown_params_refused(self) -> None:
        for param in ("lr", "method=BYE", "ttl=5", "transport=tcp", "transport=tls", "x",
                      "user=dialstring", "ob", "gr=abc"):
            with self.subTest(param=param):
                self.refused(f"sip:1002@pbx.example;{param}")

    def test_harmless_params_kept(self) -> None:
        self.assertEqual(self.policy.request_uri(account(), "sip:+4930123@pbx.example;user=phone"),
                         "sip:+4930123@pbx.example;user=phone")
        self.assertEqual(self.policy.request_uri(account(), "sip:1002@pbx.example;Transport=UDP"),
                         "sip:1002@pbx.example;transport=udp")
        tcp = account(transport="tcp")
        self.assertEqual(self.policy.request_uri(tcp, "sip:1002@pbx.example;transport=tcp"),
                         "sip:1002@pbx.example;transport=tcp")
        self.refused("sip:1002@pbx.example;transport=udp", acct=tcp)

    def test_ports(self) -> None:
        # The account's own port, or one allowed_domains names as host:port; nothing else.
        self.assertEqual(self.policy.request_uri(account(), "sip:1002@pbx.example:5060"),
                         "sip:1002@pbx.example:5060")
        self.assertIn("5080", self.refused("sip:1002@pbx.example:5080").message)
        self.assertEqual(self.policy.request_uri(account(port=5080), "sip:1002@pbx.example:5080"),
                         "sip:1002@pbx.example:5080")
        self.assertEqual(self.policy.request_uri(account(), "sip:1002@media.example:5070"),
                         "sip:1002@media.example:5070")
        self.refused("sip:1002@media.example:5071")
        # media.example is only allowed on 5070: a URI without a port means the account's
        self.refused("sip:1002@media.example")
        self.assertEqual(self.policy.request_uri(account(domain="media.example", port=5070),
                                                 "sip:1002@media.example"),
                         "sip:1002@media.example")

    def test_hosts_compare_as_the_stack_routes_them(self) -> None:
        self.assertEqual(self.policy.request_uri(account(), "SIP:1002@PBX.Example."),
                         "sip:1002@pbx.example")
        self.assertEqual(self.policy.request_uri(account(), "sip:1002@[0:0::1]"),
                         "sip:1002@[::1]")
        for host in ("evil.example", "pbx.example.evil.example", "127.0.0.2", "127.1",
                     "2130706433", "[::2]", "pbx-example"):
            with self.subTest(host=host):
                self.refused(f"sip:1002@{host}")

    def test_request_uri_is_built_not_passed_through(self) -> None:
        # Escapes decode once, with the stack's parser; the built URI says the same thing.
        self.assertEqual(self.policy.request_uri(account(), "sip:%31%30%30%32@pbx.example"),
                         "sip:1002@pbx.example")
        # An escaped "@" in the user part stays part of the user: no other host appears.
        self.refused("sip:1002%40evil.example@pbx.example", Codes.INVALID)

    def test_malformed_and_odd_uris(self) -> None:
        for callee in ("sip:", "sip:1002@", "sip:1002@pbx.example?", "sip:1002@pbx example",
                       "sip:1002@pbx.example>", "<sip:1002@pbx.example>", "http://evil.example/",
                       "sip:1002:secret@pbx.example", "1002@evil.example", "evil.example:5060",
                       "sips:1002@pbx.example", "tel:+4930123;ext=900", "tel:+4930;phone-context=x"):
            with self.subTest(callee=callee):
                with self.assertRaises(CallError) as caught:
                    self.policy.request_uri(account(), callee)
                self.assertIn(caught.exception.code, (Codes.INVALID, Codes.FORBIDDEN))
                self.assertEqual(caught.exception.field, "callee")

    def test_sips_needs_tls(self) -> None:
        # sips: asks for TLS on every hop; the account's transport is UDP or TCP.
        for transport in ("udp", "tcp"):
            self.assertIn("tls", self.refused("sips:1002@pbx.example", Codes.INVALID,
                                              acct=account(transport=transport)).message)

    def test_tel_goes_through_the_account(self) -> None:
        self.assertEqual(self.policy.request_uri(account(), "tel:+49-30-123"),
                         "sip:+4930123@pbx.example;user=phone")

    def test_field_is_named(self) -> None:
        self.refused("sip:1002@evil.example", field="target")
        self.refused("sip:1002@pbx.example;maddr=x", field="Refer-To")

    def test_existing_behaviour(self) -> None:
        self.assertEqual(self.policy.request_uri(account(), "1002"), "sip:1002@pbx.example")
        self.assertEqual(self.policy.request_uri(account(domain="::1"), "1002"), "sip:1002@[::1]")
        self.assertEqual(self.policy.request_uri(account(), "sip:alice@pbx.example"),
                         "sip:alice@pbx.example")
        self.assertEqual(self.policy.request_uri(None, "echo"), "sip:echo@127.0.0.1:5999")
        with self.assertRaises(CallError):
            self.policy.request_uri(None, "sip:echo@127.0.0.1:5999")


class AccountTests(PolicyCase):
    """The servers a session uses: a bare entry allows its host at any sipPort, host:port
    only that port (for the next hop: the outbound proxy, else the domain)."""

    def test_ports_of_the_next_hop(self) -> None:
        self.policy.check_account(account(port=5080))
        self.policy.check_account(account(domain="media.example", port=5070))
        with self.assertRaises(CallError) as caught:
            self.policy.check_account(account(domain="media.example", port=5060))
        self.assertEqual((caught.exception.code, caught.exception.field),
                         (Codes.FORBIDDEN, "sipPort"))
        self.policy.check_account(account(domain="media.example", proxy="pbx.example"))
        with self.assertRaises(CallError) as caught:
            self.policy.check_account(account(domain="pbx.example", proxy="media.example"))
        self.assertEqual(caught.exception.field, "sipPort")
        with self.assertRaises(CallError) as caught:
            self.policy.check_account(account(domain="pbx.example", proxy="evil.example"))
        self.assertEqual(caught.exception.field, "sipOutboundProxy")

    def test_host_spellings(self) -> None:
        self.policy.check_account(account(domain="PBX.example."))
        self.policy.check_account(account(domain="0:0::1"))
        policy = Policy(["[2001:db8::1]:5070", "2001:db8::2"], None)
        policy.check_account(account(domain="2001:db8::1", port=5070))
        policy.check_account(account(domain="2001:db8:0::2", port=5099))
        with self.assertRaises(CallError):
            policy.check_account(account(domain="2001:db8::1", port=5060))


class NumberTests(PolicyCase):
    """Number rules: allowed_numbers (any must match), denied_numbers (none may)."""

    def test_denied_number_in_every_spelling(self) -> None:
        for callee in ("+19005550199", "19005550199", "+1 (900) 555-0199", "+1.900.555.0199",
                       "sip:+19005550199@pbx.example", "sip:+1-900-555-0199@pbx.example;user=phone",
                       "sip:%2B19005550199@pbx.example", "tel:+1-900-555-0199", "9005550199"):
            with self.subTest(callee=callee):
                error = self.refused(callee)
                self.assertIn("denied_numbers", error.message)

    def test_number_in_the_request_uri_is_the_checked_one(self) -> None:
        # Visual separators are removed from the number that is sent, not only for the check.
        self.assertEqual(self.policy.request_uri(account(), "+49 (30) 123-45"),
                         "sip:+493012345@pbx.example")
        self.assertEqual(self.policy.request_uri(account(), "sip:+49-30-12345@pbx.example"),
                         "sip:+493012345@pbx.example")

    def test_allowed_numbers(self) -> None:
        policy = Policy(["pbx.example"], None, allowed_numbers=[r"1\d{3}", r"\+4930\d+"],
                        denied_numbers=[r"\+49301234"])
        self.assertEqual(policy.request_uri(account(), "1002"), "sip:1002@pbx.example")
        self.assertEqual(policy.request_uri(account(), "+49 30 555"), "sip:+4930555@pbx.example")
        for callee in ("2002", "10020", "alice", "sip:alice@pbx.example", "+4940123",
                       "tel:+4940123", "sip:pbx.example", "+49301234"):
            with self.subTest(callee=callee):
                error = self.refused(callee, policy=policy)
                self.assertIn("_numbers", error.message)

    def test_transfer_target_checked_too(self) -> None:
        self.refused("+19005550199", field="target")

    def test_names_are_not_normalised(self) -> None:
        self.assertEqual(self.policy.request_uri(account(), "alice.smith"),
                         "sip:alice.smith@pbx.example")


HEADERS = ("P-Asserted-Identity", "P-Preferred-Identity", "Remote-Party-ID", "Identity",
           "Privacy", "Diversion", "History-Info", "P-Charge-Info")
NEVER = ("Via", "v", "Route", "Record-Route", "From", "f", "To", "Call-ID", "i", "CSeq",
         "Contact", "m", "Max-Forwards", "Content-Type", "Content-Length", "Content-Disposition",
         "Authorization", "Proxy-Authorization", "Require", "Proxy-Require", "Supported", "k",
         "Allow", "Expires", "Session-Expires", "x", "Refer-To", "r", "Referred-By", "b",
         "Replaces", "Event", "o", "Path", "RAck")


class HeaderTests(unittest.TestCase):
    """Issue 10 item 6: identity and routing headers never come from browsers."""

    def refused(self, policy: Policy, headers: dict, field: str) -> None:
        with self.assertRaises(CallError) as caught:
            policy.outgoing_headers(headers)
        self.assertEqual((caught.exception.code, caught.exception.field), (Codes.INVALID, field))

    def test_default_is_x_headers_only(self) -> None:
        policy = Policy([], None)
        self.assertEqual(policy.outgoing_headers({"X-Tenant": "acme", "x-agent": "7"}),
                         {"X-Tenant": "acme", "x-agent": "7"})
        self.assertEqual(policy.outgoing_headers({}), {})
        for name in HEADERS + NEVER + ("Subject", "User-Agent", "Xtra"):
            with self.subTest(name=name):
                self.refused(policy, {"X-Ok": "1", name: "sip:boss@pbx.example"},
                             f"sipHeaders.{name}")

    def test_identity_headers_only_when_named_exactly(self) -> None:
        prefix = Policy([], None, allowed_headers=["X-*", "P-*", "Remote-*", "I*", "D*", "H*"])
        for name in HEADERS:
            with self.subTest(name=name):
                self.refused(prefix, {name: "<sip:1000@pbx.example>"}, f"sipHeaders.{name}")
        exact = Policy([], None, allowed_headers=["remote-party-id", "Diversion"])
        self.assertEqual(exact.outgoing_headers({"Remote-Party-ID": "<sip:1000@pbx.example>",
                                                 "diversion": "<sip:1@pbx.example>"}),
                         {"Remote-Party-ID": "<sip:1000@pbx.example>",
                          "diversion": "<sip:1@pbx.example>"})
        self.refused(exact, {"X-A": "1"}, "sipHeaders.X-A")  # X-* is not in this list

    def test_routing_headers_never_even_if_listed(self) -> None:
        policy = Policy([], None, allowed_headers=list(NEVER) + ["R*", "V*", "C*", "E*"])
        for name in NEVER:
            with self.subTest(name=name):
                self.refused(policy, {name: "x"}, f"sipHeaders.{name}")

    def test_other_listed_headers(self) -> None:
        policy = Policy([], None, allowed_headers=["Subject", "Call-Info", "X-*"])
        self.assertEqual(policy.outgoing_headers({"subject": "hi", "Call-Info": "<http://x>"}),
                         {"subject": "hi", "Call-Info": "<http://x>"})
        self.assertEqual(policy.outgoing_headers({"s": "hi"}), {"s": "hi"})  # compact Subject

    def test_values(self) -> None:
        policy = Policy([], None)
        for value in ("b\r\nVia: evil", "b\nP-Asserted-Identity: x", "a\x00b", "a\x7fb", "\tb",
                      "x" * 1025, 7, None, ["a"]):
            with self.subTest(value=value):
                self.refused(policy, {"X-A": value}, "sipHeaders.X-A")
        self.assertEqual(policy.outgoing_headers({"X-A": "x" * 1024}), {"X-A": "x" * 1024})

    def test_names_and_count(self) -> None:
        policy = Policy([], None)
        for name in ("Bad Name", "X-A:", "X-\u00e9", "", "X-" + "a" * 70):
            with self.subTest(name=name):
                self.refused(policy, {name: "v"}, f"sipHeaders.{name}")
        self.refused(policy, {f"X-{i}": "v" for i in range(40)}, "sipHeaders")
        with self.assertRaises(CallError) as caught:
            policy.outgoing_headers(["X-A: b"])  # type: ignore[arg-type]
        self.assertEqual(caught.exception.field, "sipHeaders")

    def test_field_prefix(self) -> None:
        with self.assertRaises(CallError) as caught:
            Policy([], None).outgoing_headers({"Via": "x"}, field="body.sipHeaders")
        self.assertEqual(caught.exception.field, "body.sipHeaders.Via")


# -- property: whatever passes builds a Request-URI the policy allows ---------------------------

_ALLOWED = {"pbx.example": None, "127.0.0.1": None, "media.example": 5070}
_piece = st.sampled_from(["1002", "+1900555", "alice", "127.0.0.1", ";", "@", "?", ":", "%40",
                          "%3B", "evil.example", "pbx.example", "media.example", ";maddr=",
                          ";x", ";user=phone", ";transport=udp", "?X-A=1", ":5070", ":5060",
                          ":6000", "&", "=", "%", "[::1]", ".", "-", " ", "sip:", "tel:", "<",
                          ">", "%2B", "(", ")"])
_uris = st.tuples(
    st.sampled_from(["sip:", "sips:", "SIP:", "tel:"]),
    st.one_of(st.just(""), st.lists(_piece, min_size=1, max_size=3).map(lambda p: "".join(p) + "@"),
              st.sampled_from(["1002@", "+19005550199@", "+4930123@", "alice@", "%31002@",
                               "127.0.0.1;x@", "1002%40evil.example@", "+1-900-555@"])),
    st.sampled_from(["pbx.example", "PBX.example.", "127.0.0.1", "media.example", "evil.example",
                     "[::1]", "127.0.0.2", "pbx.example.evil.example", "1002"]),
    st.sampled_from(["", ":5060", ":5070", ":6000", ":0"]),
    st.lists(st.sampled_from([";user=phone", ";user=ip", ";transport=udp", ";transport=tcp",
                              ";maddr=evil.example", ";lr", ";x", ";method=INVITE", ";ttl=1"]),
             max_size=3).map("".join),
    st.sampled_from(["", "?X-A=1", "?Route=%3Csip:evil.example%3E", "?"]),
).map("".join)
_callees = st.one_of(
    _uris, _uris,
    st.lists(_piece, min_size=1, max_size=8).map("".join),
    st.tuples(st.sampled_from(["sip:", "sips:", "tel:", "SIP:", ""]),
              st.lists(_piece, min_size=1, max_size=8).map("".join)).map("".join),
    st.text(max_size=40),
)


class PropertyTests(unittest.TestCase):
    policy = Policy(["pbx.example", "127.0.0.1", "media.example:5070"], None,
                    denied_numbers=[PREMIUM])

    @settings(max_examples=1500, deadline=None)
    @given(_callees)
    def test_whatever_passes_is_allowed_where_it_goes(self, callee: str) -> None:
        try:
            built = self.policy.request_uri(account(), callee)
        except CallError as e:
            self.assertIn(e.code, (Codes.INVALID, Codes.FORBIDDEN))
            return
        uri = parse_uri(built)
        self.assertIn(uri.scheme, ("sip",))
        self.assertIn(uri.host, _ALLOWED)
        self.assertEqual(uri.headers, {})
        self.assertEqual(uri.password, None)
        self.assertLessEqual(set(uri.params), {"user", "transport"})
        self.assertIn(uri.params.get("transport", "udp"), ("udp",))
        allowed_port = _ALLOWED[uri.host]
        self.assertIn(uri.port if uri.port is not None else 5060,
                      (5060,) if allowed_port is None else (allowed_port,))
        self.assertFalse(re.fullmatch(PREMIUM, uri.user or ""), built)
        # What is sent parses back to itself: no second reading anywhere downstream.
        self.assertEqual(str(parse_uri(built)), built)
