"""Digest authentication (wcsgw.sip.digest): grammar, RFC vectors, client state."""

from __future__ import annotations

import hashlib
import itertools

from hypothesis import given, strategies as st
from twisted.trial.unittest import SynchronousTestCase

from wcsgw.sip import ids
from wcsgw.sip.account import SipAccount
from wcsgw.sip.digest import (
    Challenge,
    ChallengeOutcome,
    Credentials,
    DigestClient,
    DigestError,
    build_authorization,
    choose_challenge,
    compute_response,
    parse_authorization,
    parse_challenges,
    select_challenges,
)
from wcsgw.sip.message import Request, Response


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def auth_params(value: str) -> dict[str, str]:
    return parse_authorization(value)


class ParseTests(SynchronousTestCase):
    def test_basic_challenge(self) -> None:
        [c] = parse_challenges(
            'Digest realm="biloxi.com", qop="auth,auth-int", '
            'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
        )
        self.assertEqual(c.realm, "biloxi.com")
        self.assertEqual(c.nonce, "dcd98b7102dd2f0e8b11d0f600bfb0c093")
        self.assertEqual(c.opaque, "5ccc069c403ebaf9f0171e9517f40e41")
        self.assertEqual(c.qop, ("auth", "auth-int"))
        self.assertEqual(c.algorithm, "MD5")  # RFC 2617 §3.2.1: absent means MD5
        self.assertFalse(c.stale)
        self.assertTrue(c.supported)
        self.assertEqual(c.chosen_qop(), "auth")

    def test_case_insensitive_names_and_values(self) -> None:
        [c] = parse_challenges('digest REALM="r", Nonce="n", ALGORITHM=sha-256-Sess, Stale=TRUE, QOP="AUTH"')
        self.assertEqual((c.realm, c.nonce, c.algorithm, c.stale, c.qop), ("r", "n", "SHA-256-SESS", True, ("auth",)))

    def test_escapes_and_commas_inside_quotes(self) -> None:
        [c] = parse_challenges(r'Digest realm="a \"quoted\", realm\\x", nonce="n,1=2", opaque="o"')
        self.assertEqual(c.realm, 'a "quoted", realm\\x')
        self.assertEqual(c.nonce, "n,1=2")

    def test_unquoted_values_and_odd_whitespace(self) -> None:
        [c] = parse_challenges('Digest  realm = "r" ,nonce=abc/de+f==,\talgorithm = MD5 , qop=auth,stale=false')
        self.assertEqual((c.realm, c.nonce, c.algorithm, c.qop, c.stale), ("r", "abc/de+f==", "MD5", ("auth",), False))

    def test_several_challenges_in_one_value(self) -> None:
        cs = parse_challenges(
            'Digest realm="r", nonce="1", algorithm=MD5, Digest realm="r", nonce="2", algorithm=SHA-256'
        )
        self.assertEqual([(c.nonce, c.algorithm) for c in cs], [("1", "MD5"), ("2", "SHA-256")])

    def test_other_schemes_skipped(self) -> None:
        cs = parse_challenges('Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==, Digest realm="r", nonce="n"')
        self.assertEqual([c.realm for c in cs], ["r"])
        self.assertEqual(parse_challenges('Basic realm="x"'), [])

    def test_missing_nonce_is_an_error(self) -> None:
        self.assertRaises(DigestError, parse_challenges, 'Digest realm="r"')
        self.assertRaises(DigestError, parse_challenges, 'Digest realm="r, nonce="n')

    def test_unknown_algorithm_or_qop_unsupported(self) -> None:
        [c] = parse_challenges('Digest realm="r", nonce="n", algorithm=AKAv1-MD5')
        self.assertFalse(c.supported)
        [c] = parse_challenges('Digest realm="r", nonce="n", qop="auth-conf"')
        self.assertFalse(c.supported)

    def test_auth_int_only_when_alone(self) -> None:
        [c] = parse_challenges('Digest realm="r", nonce="n", qop="auth-int"')
        self.assertEqual(c.chosen_qop(), "auth-int")
        [c] = parse_challenges('Digest realm="r", nonce="n", qop="auth-int,auth"')
        self.assertEqual(c.chosen_qop(), "auth")
        [c] = parse_challenges('Digest realm="r", nonce="n"')
        self.assertIsNone(c.chosen_qop())

    def test_best_challenge_sha256_over_md5(self) -> None:
        cs = parse_challenges('Digest realm="r", nonce="1", algorithm=MD5') + parse_challenges(
            'Digest realm="r", nonce="2", algorithm=SHA-256'
        ) + parse_challenges('Digest realm="r", nonce="3", algorithm=AKAv1-MD5')
        self.assertEqual(choose_challenge(cs).nonce, "2")  # type: ignore[union-attr]
        self.assertEqual(choose_challenge(reversed(cs)).nonce, "2")  # type: ignore[union-attr]
        cs += parse_challenges('Digest realm="other", nonce="4"')
        self.assertEqual({r: c.nonce for r, c in select_challenges(cs).items()}, {"r": "2", "other": "4"})
        self.assertIsNone(choose_challenge(parse_challenges('Digest realm="r", nonce="n", algorithm=foo')))


_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x2FF, exclude_characters="\x7f"), min_size=1)


def _q(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class PropertyTests(SynchronousTestCase):
    @given(realm=_text, nonce=_text, opaque=_text, stale=st.booleans(),
           algorithm=st.sampled_from(["MD5", "sha-256", "SHA-256-sess", "MD5-sess", "SHA-512-256"]))
    def test_quoted_values_round_trip(self, realm: str, nonce: str, opaque: str, stale: bool,
                                      algorithm: str) -> None:
        value = (f"Digest realm={_q(realm)},nonce={_q(nonce)} , opaque={_q(opaque)}, "
                 f"algorithm={algorithm}, stale={'TRUE' if stale else 'false'}, qop=\"auth\"")
        [c] = parse_challenges(value + ", " + value)[:1]
        self.assertEqual((c.realm, c.nonce, c.opaque, c.stale, c.algorithm),
                         (realm, nonce, opaque, stale, algorithm.upper()))

    @given(username=_text, realm=_text, nonce=_text, uri=_text)
    def test_authorization_parses_back(self, username: str, realm: str, nonce: str, uri: str) -> None:
        c = Challenge(realm=realm, nonce=nonce, qop=("auth",))
        p = parse_authorization(build_authorization(c, Credentials(username, "pw"), method="REGISTER",
                                                    uri=uri, cnonce="c"))
        self.assertEqual((p["username"], p["realm"], p["nonce"], p["uri"]), (username, realm, nonce, uri))


class VectorTests(SynchronousTestCase):
    def test_rfc2617_section_3_5(self) -> None:
        """RFC 2617 §3.5: MD5, qop=auth."""
        r = compute_response(
            algorithm="MD5",
            username="Mufasa",
            realm="testrealm@host.com",
            password="Circle Of Life",
            method="GET",
            uri="/dir/index.html",
            nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
            cnonce="0a4f113b",
            nc=1,
            qop="auth",
        )
        self.assertEqual(r, "6629fae49393a05397450978507c4ef1")

    def test_rfc7616_section_3_9_1(self) -> None:
        """RFC 7616 §3.9.1: the same request answered with SHA-256 and with MD5."""
        [sha, md] = parse_challenges(
            'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, '
            'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", '
            'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS", '
            'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=MD5, '
            'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", '
            'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"'
        )
        creds = Credentials("Mufasa", "Circle of Life")
        cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
        value = build_authorization(sha, creds, method="GET", uri="/dir/index.html", cnonce=cnonce)
        p = auth_params(value)
        self.assertEqual(p["response"], "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1")
        self.assertEqual(
            (p["username"], p["realm"], p["uri"], p["algorithm"], p["nc"], p["qop"], p["cnonce"], p["opaque"]),
            ("Mufasa", "http-auth@example.org", "/dir/index.html", "SHA-256", "00000001", "auth", cnonce,
             "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"),
        )
        p = auth_params(build_authorization(md, creds, method="GET", uri="/dir/index.html", cnonce=cnonce))
        self.assertEqual(p["response"], "8ca523f5e9506fed4657c9700eebdbec")
        self.assertEqual(choose_challenge([md, sha]), sha)

    def test_sip_register_by_hand(self) -> None:
        """A REGISTER answer computed step by step (RFC 3261 §22.4 with qop=auth)."""
        ha1 = md5("1001:asterisk:s3cr3t")
        ha2 = md5("REGISTER:sip:pbx.example.com")
        expected = md5(f"{ha1}:5f2c1a0b:00000002:abcdef01:auth:{ha2}")
        self.assertEqual(expected, "04e54110a9c2a30fdc6000ed677ac8c1")
        [c] = parse_challenges('Digest realm="asterisk", nonce="5f2c1a0b", qop="auth", algorithm=MD5')
        value = build_authorization(
            c, Credentials("1001", "s3cr3t"), method="REGISTER", uri="sip:pbx.example.com", cnonce="abcdef01", nc=2
        )
        p = auth_params(value)
        self.assertEqual(p["response"], expected)
        self.assertEqual(p["nc"], "00000002")
        self.assertNotIn("opaque", p)
        self.assertTrue(value.startswith('Digest username="1001", realm="asterisk", nonce="5f2c1a0b", '))
        self.assertIn(", algorithm=MD5, ", value)
        self.assertIn(", qop=auth, nc=00000002", value)

    def test_rfc2069_mode_without_qop(self) -> None:
        """No qop: response = H(HA1:nonce:HA2), and no cnonce/nc/qop are sent."""
        [c] = parse_challenges('Digest realm="biloxi.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093"')
        value = build_authorization(
            c, Credentials("bob", "zanzibar"), method="REGISTER", uri="sip:biloxi.com", cnonce="x"
        )
        p = auth_params(value)
        ha1, ha2 = md5("bob:biloxi.com:zanzibar"), md5("REGISTER:sip:biloxi.com")
        self.assertEqual(p["response"], md5(f"{ha1}:dcd98b7102dd2f0e8b11d0f600bfb0c093:{ha2}"))
        self.assertEqual(p["response"], "4441045a8075db3ead543693997e2a0e")
        for absent in ("cnonce", "nc", "qop"):
            self.assertNotIn(absent, p)

    def test_auth_int_hashes_body(self) -> None:
        body = b"v=0\r\n"
        [c] = parse_challenges('Digest realm="r", nonce="n", qop="auth-int"')
        p = auth_params(build_authorization(c, Credentials("u", "p"), method="INVITE", uri="sip:x@r", cnonce="c", body=body))
        ha1 = md5("u:r:p")
        ha2 = md5(f"INVITE:sip:x@r:{hashlib.md5(body).hexdigest()}")
        self.assertEqual(p["qop"], "auth-int")
        self.assertEqual(p["response"], md5(f"{ha1}:n:00000001:c:auth-int:{ha2}"))

    def test_sess_variants(self) -> None:
        [c] = parse_challenges('Digest realm="r", nonce="n", qop="auth", algorithm=SHA-256-sess')
        p = auth_params(build_authorization(c, Credentials("u", "p"), method="BYE", uri="sip:x@r", cnonce="c"))
        sha = lambda t: hashlib.sha256(t.encode()).hexdigest()  # noqa: E731
        ha1 = sha(f"{sha('u:r:p')}:n:c")
        self.assertEqual(p["algorithm"], "SHA-256-sess")
        self.assertEqual(p["response"], sha(f"{ha1}:n:00000001:c:auth:{sha('BYE:sip:x@r')}"))
        # MD5-sess without qop still needs (and sends) a cnonce
        [c] = parse_challenges('Digest realm="r", nonce="n", algorithm=MD5-sess')
        p = auth_params(build_authorization(c, Credentials("u", "p"), method="BYE", uri="sip:x@r", cnonce="c"))
        self.assertEqual(p["cnonce"], "c")
        ha1 = md5(md5("u:r:p") + ":n:c")
        self.assertEqual(p["response"], md5(f"{ha1}:n:" + md5("BYE:sip:x@r")))

    def test_sha512_256_and_userhash(self) -> None:
        [c] = parse_challenges('Digest realm="r", nonce="n", qop="auth", algorithm=SHA-512-256, userhash=true')
        p = auth_params(build_authorization(c, Credentials("u", "p"), method="GET", uri="/", cnonce="c"))
        h = lambda t: hashlib.new("sha512_256", t.encode()).hexdigest()  # noqa: E731
        self.assertEqual(p["username"], h("u:r"))  # RFC 7616 §3.4.4
        self.assertEqual(p["userhash"], "true")
        self.assertEqual(p["response"], h(f"{h('u:r:p')}:n:00000001:c:auth:{h('GET:/')}"))

    def test_quoting_of_output(self) -> None:
        [c] = parse_challenges(r'Digest realm="we \"quote\"", nonce="n"')
        value = build_authorization(c, Credentials('a"b', "p"), method="GET", uri="/", cnonce="c")
        p = auth_params(value)
        self.assertEqual((p["username"], p["realm"]), ('a"b', 'we "quote"'))


def make_request(method: str = "REGISTER", cseq: int = 1) -> Request:
    return Request(
        method,
        "sip:example.com",
        [("Call-ID", "abc"), ("CSeq", f"{cseq} {method}"), ("From", "<sip:u@example.com>;tag=1"),
         ("To", "<sip:u@example.com>")],
    )


def challenge_response(status: int, *values: str) -> Response:
    name = "Proxy-Authenticate" if status == 407 else "WWW-Authenticate"
    return Response(status, "Unauthorized", [(name, v) for v in values])


class ClientTests(SynchronousTestCase):
    def setUp(self) -> None:
        counter = itertools.count(1)
        self.client = DigestClient(Credentials("alice", "wonder"), cnonce_factory=lambda: f"cn{next(counter)}")

    def test_first_challenge_then_authorize(self) -> None:
        req = make_request()
        self.assertFalse(self.client.authorize(req, to_server=True))  # nothing cached: nothing added
        resp = challenge_response(401, 'Digest realm="example.com", nonce="N1", qop="auth"')
        self.assertIs(self.client.handle_challenge(req, resp, to_server=True), ChallengeOutcome.RETRY)
        retry = make_request(cseq=2)
        self.assertTrue(self.client.authorize(retry, to_server=True))
        p = auth_params(retry.headers.get("Authorization") or "")
        self.assertNotIn("Proxy-Authorization", retry.headers)
        self.assertEqual((p["nonce"], p["nc"], p["cnonce"], p["uri"]), ("N1", "00000001", "cn1", "sip:example.com"))
        expected = compute_response(algorithm="MD5", username="alice", realm="example.com", password="wonder",
                                    method="REGISTER", uri="sip:example.com", nonce="N1", cnonce="cn1", nc=1,
                                    qop="auth")
        self.assertEqual(p["response"], expected)
        # pre-authorization of the next request: same nonce, nc increments, one header only
        nxt = make_request(cseq=3)
        nxt.headers.add("Authorization", "Digest junk")
        self.client.authorize(nxt, to_server=True)
        self.assertEqual(len(nxt.headers.get_all("Authorization")), 1)
        self.assertEqual(auth_params(nxt.headers.get("Authorization") or "")["nc"], "00000002")

    def test_proxy_challenge_goes_to_proxy_authorization(self) -> None:
        req = make_request("INVITE")
        resp = challenge_response(407, 'Digest realm="proxy", nonce="P", algorithm=SHA-256, qop="auth"')
        self.assertIs(self.client.handle_challenge(req, resp, to_server=True), ChallengeOutcome.RETRY)
        retry = make_request("INVITE", 2)
        self.client.authorize(retry, to_server=True)
        self.assertNotIn("Authorization", retry.headers)
        self.assertEqual(auth_params(retry.headers.get("Proxy-Authorization") or "")["algorithm"], "SHA-256")

    def test_same_nonce_again_is_rejection(self) -> None:
        resp = challenge_response(401, 'Digest realm="example.com", nonce="N1", qop="auth"')
        self.client.handle_challenge(make_request(), resp, to_server=True)
        retry = make_request(cseq=2)
        self.client.authorize(retry, to_server=True)
        self.assertIs(self.client.handle_challenge(retry, resp, to_server=True), ChallengeOutcome.REJECTED)

    def test_fresh_nonce_right_after_answering_is_rejection(self) -> None:
        """Asterisk-style: a wrong password gets a new nonce each time, never stale."""
        self.client.handle_challenge(make_request(), challenge_response(401, 'Digest realm="r", nonce="N1", qop="auth"'), to_server=True)
        retry = make_request(cseq=2)
        self.client.authorize(retry, to_server=True)
        outcome = self.client.handle_challenge(retry, challenge_response(401, 'Digest realm="r", nonce="N2", qop="auth"'), to_server=True)
        self.assertIs(outcome, ChallengeOutcome.REJECTED)

    def test_fresh_nonce_without_qop_after_answering_is_rejection(self) -> None:
        self.client.handle_challenge(make_request(), challenge_response(401, 'Digest realm="r", nonce="N1"'), to_server=True)
        retry = make_request(cseq=2)
        self.client.authorize(retry, to_server=True)
        outcome = self.client.handle_challenge(retry, challenge_response(401, 'Digest realm="r", nonce="N2"'), to_server=True)
        self.assertIs(outcome, ChallengeOutcome.REJECTED)

    def test_stale_is_not_a_failure(self) -> None:
        self.client.handle_challenge(make_request(), challenge_response(401, 'Digest realm="r", nonce="N1", qop="auth"'), to_server=True)
        retry = make_request(cseq=2)
        self.client.authorize(retry, to_server=True)
        outcome = self.client.handle_challenge(
            retry, challenge_response(401, 'Digest realm="r", nonce="N2", qop="auth", stale=TRUE')
        , to_server=True)
        self.assertIs(outcome, ChallengeOutcome.RETRY)
        again = make_request(cseq=3)
        self.client.authorize(again, to_server=True)
        p = auth_params(again.headers.get("Authorization") or "")
        self.assertEqual((p["nonce"], p["nc"]), ("N2", "00000001"))  # nc restarts per nonce

    def test_reused_cached_nonce_gets_one_retry(self) -> None:
        """A server may retire an old nonce without stale=true: after nc>1, retry once."""
        self.client.handle_challenge(make_request(), challenge_response(401, 'Digest realm="r", nonce="N1", qop="auth"'), to_server=True)
        for cseq in (2, 3):
            req = make_request(cseq=cseq)
            self.client.authorize(req, to_server=True)
        outcome = self.client.handle_challenge(req, challenge_response(401, 'Digest realm="r", nonce="N2", qop="auth"'), to_server=True)
        self.assertIs(outcome, ChallengeOutcome.RETRY)
        req = make_request(cseq=4)
        self.client.authorize(req, to_server=True)
        outcome = self.client.handle_challenge(req, challenge_response(401, 'Digest realm="r", nonce="N3", qop="auth"'), to_server=True)
        self.assertIs(outcome, ChallengeOutcome.REJECTED)

    def test_unsupported(self) -> None:
        req = make_request()
        self.assertIs(self.client.handle_challenge(req, Response(401, "Unauthorized"), to_server=True), ChallengeOutcome.UNSUPPORTED)
        resp = challenge_response(401, 'Digest realm="r", nonce="n", algorithm=AKAv1-MD5')
        self.assertIs(self.client.handle_challenge(req, resp, to_server=True), ChallengeOutcome.UNSUPPORTED)
        resp = challenge_response(401, 'Digest realm=broken "', 'Digest realm="r", nonce="n"')
        self.assertIs(self.client.handle_challenge(req, resp, to_server=True), ChallengeOutcome.RETRY)
        self.assertRaises(ValueError, self.client.handle_challenge, req, Response(200, "OK"), to_server=True)

    def test_realm_bound_credentials(self) -> None:
        client = DigestClient(Credentials("u", "p", realm="mine"))
        resp = challenge_response(401, 'Digest realm="theirs", nonce="n"')
        self.assertIs(client.handle_challenge(make_request(), resp, to_server=True), ChallengeOutcome.UNSUPPORTED)

    def test_two_realms_answered_separately(self) -> None:
        resp = challenge_response(407, 'Digest realm="p1", nonce="a"', 'Digest realm="p2", nonce="b", algorithm=SHA-256')
        self.assertIs(self.client.handle_challenge(make_request("INVITE"), resp, to_server=True), ChallengeOutcome.RETRY)
        retry = make_request("INVITE", 2)
        self.client.authorize(retry, to_server=True)
        realms = sorted(auth_params(v)["realm"] for v in retry.headers.get_all("Proxy-Authorization"))
        self.assertEqual(realms, ["p1", "p2"])
        self.assertEqual(sorted(self.client.realms()), ["p1", "p2"])
        self.client.forget("p1")
        self.assertEqual(self.client.realms(), ["p2"])
        self.client.forget()
        self.assertEqual(self.client.realms(), [])


class SecrecyTests(SynchronousTestCase):
    """Passwords never show up in repr() (and so not in logs or tracebacks)."""

    def test_credentials_repr_masks_password(self) -> None:
        c = Credentials("alice", "hunter2-secret")
        self.assertNotIn("hunter2-secret", repr(c))
        self.assertIn("***", repr(c))
        self.assertIn("alice", repr(c))
        self.assertNotIn("hunter2-secret", str(c))

    def test_client_repr(self) -> None:
        client = DigestClient(Credentials("alice", "hunter2-secret"))
        client.handle_challenge(make_request(), challenge_response(401, 'Digest realm="r", nonce="n"'), to_server=True)
        self.assertNotIn("hunter2-secret", repr(client))
        self.assertNotIn("hunter2-secret", repr(client.challenge_for("r")))
        self.assertNotIn("hunter2-secret", repr(client.__dict__))

    def test_account_repr(self) -> None:
        a = SipAccount(login="1001", password="hunter2-secret", domain="pbx.example.com")
        self.assertNotIn("hunter2-secret", repr(a))
        self.assertIn("***", repr(a))
        self.assertNotIn("hunter2-secret", repr(a.credentials()))


class AccountTests(SynchronousTestCase):
    def test_defaults(self) -> None:
        a = SipAccount(login="1001", password="pw", domain="pbx.example.com")
        self.assertEqual(a.auth_name, "1001")
        self.assertEqual((a.port, a.transport, a.expires, a.register), (5060, "udp", 600, True))
        self.assertEqual(a.aor(), "sip:1001@pbx.example.com")
        self.assertEqual(a.registrar_uri(), "sip:pbx.example.com")
        self.assertEqual(a.next_hop(), ("pbx.example.com", 5060, "udp"))
        self.assertEqual(a.credentials().username, "1001")
        self.assertEqual(a.name_addr(), "<sip:1001@pbx.example.com>")

    def test_explicit(self) -> None:
        a = SipAccount(login="+4930123", auth_name="acme-1001", password="pw", domain="sip.example.com",
                       outbound_proxy="10.0.0.1", port=5080, transport="TCP", display_name='Al "Bo"')
        self.assertEqual(a.next_hop(), ("10.0.0.1", 5080, "tcp"))
        self.assertEqual(a.credentials(), Credentials("acme-1001", "pw"))
        self.assertEqual(a.aor(), "sip:+4930123@sip.example.com")
        self.assertEqual(a.from_header("t1"), '"Al \\"Bo\\"" <sip:+4930123@sip.example.com>;tag=t1')

    def test_empty_strings_mean_unset(self) -> None:
        a = SipAccount(login="1001", auth_name="", outbound_proxy="", domain="d")
        self.assertEqual((a.auth_name, a.outbound_proxy), ("1001", None))
        self.assertEqual(a.next_hop()[0], "d")

    def test_ipv6_and_host_port_domains(self) -> None:
        self.assertEqual(SipAccount(login="1", domain="2001:db8::1").aor(), "sip:1@[2001:db8::1]")
        self.assertEqual(SipAccount(login="1", domain="[2001:db8::1]").registrar_uri(), "sip:[2001:db8::1]")
        self.assertEqual(SipAccount(login="1", domain="pbx.example.com:5080").aor(), "sip:1@pbx.example.com:5080")

    def test_user_part_escaped(self) -> None:
        self.assertEqual(SipAccount(login="a b@c", domain="d").aor(), "sip:a%20b%40c@d")

    def test_validation(self) -> None:
        self.assertRaises(ValueError, SipAccount, login="1", domain="d", transport="sctp")
        self.assertRaises(ValueError, SipAccount, login="1", domain="d", port=-1)
        self.assertRaises(ValueError, SipAccount, login="1", domain="d", port=65536)
        # 0 is "the transport's default" (RFC 3261 §19.1.2), not an error
        self.assertEqual(SipAccount(login="1", domain="d", port=0).port, 5060)
        self.assertEqual(SipAccount(login="1", domain="d", transport="tls").port, 5061)
        self.assertRaises(ValueError, SipAccount, login="1", domain="d", expires=0)
        self.assertRaises(ValueError, SipAccount, login="1", domain="")
        self.assertRaises(ValueError, SipAccount, login="", domain="d")


class IdTests(SynchronousTestCase):
    def test_shapes_and_uniqueness(self) -> None:
        tags = {ids.new_tag() for _ in range(200)}
        self.assertEqual(len(tags), 200)
        self.assertTrue(all(len(t) == 16 and t.isalnum() for t in tags))
        b = ids.new_branch()
        self.assertTrue(b.startswith("z9hG4bK"))
        self.assertGreater(len(b), len("z9hG4bK") + 16)
        self.assertNotEqual(ids.new_branch(), b)
        cid = ids.new_call_id("gw.example.com")
        self.assertTrue(cid.endswith("@gw.example.com"))
        self.assertNotIn("@", ids.new_call_id())
        self.assertEqual(len(ids.new_cnonce()), 32)
