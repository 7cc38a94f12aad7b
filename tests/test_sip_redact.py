"""wcsgw.sip.redact: every credential gone, the message still readable, its size bounded."""

from __future__ import annotations

import pathlib

from hypothesis import given, settings, strategies as st
from twisted.trial.unittest import SynchronousTestCase

from wcsgw.sip.digest import Credentials, DigestClient
from wcsgw.sip.message import Request, Response
from wcsgw.sip.redact import HIDDEN, redact

DATA = pathlib.Path(__file__).parent / "data"

SDES_KEY = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"
ICE_PWD = "asd88fgpdd777uzjYhagZg"

OFFER = (
    "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
    "k=base64:c2VjcmV0LWtleQ==\r\n"
    "m=audio 4000 RTP/SAVP 0 101\r\n"
    f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{SDES_KEY}|2^20|1:32\r\n"
    f"a=crypto:2 AES_256_CM_HMAC_SHA1_80 inline:{SDES_KEY}AAAA;inline:{SDES_KEY}BBBB\r\n"
    f"a=ice-pwd:{ICE_PWD}\r\na=ice-ufrag:8hhY\r\n"
    "a=key-mgmt:mikey AQAFgM0XflABAAAAAAAAAAAAAAsAyONQ6gAAAAAJAAAQbWlrZXlAZXhhbXBsZS5jb20=\r\n"
    "a=fingerprint:sha-256 4A:AD:B9:B1:3F:82:18:3B\r\na=rtpmap:0 PCMU/8000\r\n"
)


def authorized_invite(user: str = "alice", password: str = "wonderland") -> tuple[bytes, str]:
    """A real INVITE with the Proxy-Authorization our digest client computes; the response."""
    client = DigestClient(Credentials(user, password), cnonce_factory=lambda: "0a4f113b")
    headers = [("Via", "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds"),
               ("From", "<sip:alice@example.com>;tag=1928301774"),
               ("To", "<sip:bob@example.com>"), ("Call-ID", "a84b4c76e66710"),
               ("CSeq", "2 INVITE"), ("Content-Type", "application/sdp")]
    first = Request("INVITE", "sip:bob@example.com", list(headers), OFFER.encode())
    challenge = Response(407, "Proxy Authentication Required", [
        ("Proxy-Authenticate",
         'Digest realm="example.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", '
         'opaque="5ccc069c403ebaf9f0171e9517f40e41", qop="auth", algorithm=MD5')])
    client.handle_challenge(first, challenge, to_server=True)
    retry = Request("INVITE", "sip:bob@example.com", list(headers), OFFER.encode())
    client.authorize(retry, to_server=True)
    value = retry.headers.get("Proxy-Authorization") or ""
    response = value.split('response="', 1)[1].split('"', 1)[0]
    return retry.to_bytes(), response


class CredentialTests(SynchronousTestCase):
    def test_digest_credentials_keep_scheme_username_realm(self) -> None:
        data, response = authorized_invite()
        shown = redact(data)
        self.assertNotIn(response, shown)
        self.assertNotIn("dcd98b7102dd2f0e8b11d0f600bfb0c093", shown)  # the nonce
        self.assertNotIn("0a4f113b", shown)  # the cnonce
        self.assertNotIn("5ccc069c403ebaf9f0171e9517f40e41", shown)  # the opaque
        line = next(x for x in shown.split("\r\n") if x.startswith("Proxy-Authorization:"))
        self.assertTrue(line.startswith("Proxy-Authorization: Digest "), line)
        self.assertIn('username="alice"', line)
        self.assertIn('realm="example.com"', line)
        self.assertIn(f'response="{HIDDEN}"', line)
        self.assertIn(f'nonce="{HIDDEN}"', line)
        # still readable: the request line and the other headers as they were
        self.assertTrue(shown.startswith("INVITE sip:bob@example.com SIP/2.0\r\n"))
        self.assertIn("Call-ID: a84b4c76e66710", shown)

    def test_hide_user(self) -> None:
        data, response = authorized_invite(user="trunk-login")
        shown = redact(data, hide_user=True)
        self.assertNotIn("trunk-login", shown)
        self.assertNotIn(response, shown)
        self.assertIn(f'username="{HIDDEN}"', shown)

    def test_challenges_lose_their_nonce(self) -> None:
        for name in ("WWW-Authenticate", "Proxy-Authenticate"):
            data = (f"SIP/2.0 401 Unauthorized\r\nCall-ID: x\r\nCSeq: 1 REGISTER\r\n"
                    f'{name}: Digest realm="atlanta.com", nonce="84a4cc6f3082121f32b42a2187831a9e",'
                    ' opaque="", stale=FALSE, algorithm=MD5, qop="auth"\r\n'
                    f'{name}: Digest realm="b.com",nonce="SECONDNONCE", Digest realm="c",'
                    ' nonce="THIRDNONCE"\r\nContent-Length: 0\r\n\r\n').encode()
            shown = redact(data)
            for nonce in ("84a4cc6f3082121f32b42a2187831a9e", "SECONDNONCE", "THIRDNONCE"):
                self.assertNotIn(nonce, shown)
            self.assertIn('realm="atlanta.com"', shown)
            self.assertIn("stale=FALSE", shown)
            self.assertIn('realm="c"', shown)

    def test_folded_and_odd_spacing(self) -> None:
        data = ("REGISTER sip:example.com SIP/2.0\r\nCall-ID: f\r\n"
                'authorization  :   Digest username="bob",\r\n  realm="r",\r\n\tnonce="FOLDEDNONCE",'
                ' response="FOLDEDRESPONSE"\r\n\r\n').encode()
        shown = redact(data)
        self.assertNotIn("FOLDEDNONCE", shown)
        self.assertNotIn("FOLDEDRESPONSE", shown)
        self.assertIn('username="bob"', shown)

    def test_other_schemes_and_garbage_hidden_whole(self) -> None:
        cases = {
            "Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==": "QWxhZGRpbjpvcGVuIHNlc2FtZQ",
            "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.ZRrHA": "eyJhbGciOiJIUzI1NiJ9",
            'Proxy-Authorization: Digest response="UNTERMINATED': "UNTERMINATED",
            'Authorization: Digest username="a", response=@@@SECRET': "SECRET",
            "Authorization: NoOneKnowsThisScheme opaque-data=here": "opaque-data=here",
            "Authentication-Info: nextnonce=\"NEXT\", rspauth=\"RSPAUTH\"": "RSPAUTH",
        }
        for header, secret in cases.items():
            shown = redact(f"REGISTER sip:a SIP/2.0\r\nCall-ID: g\r\n{header}\r\n\r\n".encode())
            self.assertNotIn(secret, shown, header)
            self.assertIn(header.split(":")[0] + ":", shown)

    def test_mangled_line_with_a_credential_is_hidden(self) -> None:
        data = b'INVITE sip:a SIP/2.0\r\nCall-ID: h\r\nAuthorization Digest response="LEAK"\r\n\r\n'
        self.assertNotIn("LEAK", redact(data))

    def test_uri_passwords(self) -> None:
        data = (b"INVITE sip:alice:secretpw@example.com SIP/2.0\r\n"
                b"From: <sips:carol:pw2@example.com:5061>;tag=1\r\nTo: <sip:bob@b.com:5060>\r\n"
                b"Contact: <sip:192.0.2.4:5060;transport=tcp>\r\nCall-ID: u\r\n\r\n")
        shown = redact(data)
        self.assertNotIn("secretpw", shown)
        self.assertNotIn("pw2", shown)
        self.assertIn(f"sip:alice:{HIDDEN}@example.com", shown)
        self.assertIn("<sip:bob@b.com:5060>", shown)  # a port is no password
        self.assertIn("<sip:192.0.2.4:5060;transport=tcp>", shown)


class BodyTests(SynchronousTestCase):
    def test_sdp_keys_gone_rest_kept(self) -> None:
        data, _response = authorized_invite()
        shown = redact(data)
        for secret in (SDES_KEY, ICE_PWD, "c2VjcmV0LWtleQ", "AQAFgM0XflAB"):
            self.assertNotIn(secret, shown)
        self.assertIn(f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{HIDDEN}", shown)
        self.assertIn(f"a=ice-pwd:{HIDDEN}", shown)
        self.assertIn(f"k=base64:{HIDDEN}", shown)
        self.assertIn("a=ice-ufrag:8hhY", shown)
        self.assertIn("a=fingerprint:sha-256 4A:AD:B9:B1:3F:82:18:3B", shown)  # not a secret
        self.assertIn("m=audio 4000 RTP/SAVP 0 101", shown)

    def test_chromium_offer(self) -> None:
        sdp = (DATA / "chromium_offer_av.sdp").read_bytes()
        pwd = next(line.split(":", 1)[1].strip() for line in sdp.decode().splitlines()
                   if line.startswith("a=ice-pwd:"))
        data = (b"INVITE sip:b@c SIP/2.0\r\nc: application/sdp\r\nl: %d\r\n\r\n" % len(sdp)) + sdp
        shown = redact(data)
        self.assertNotIn(pwd, shown)
        self.assertIn("a=group:BUNDLE", shown)

    def test_other_bodies_by_type_and_length(self) -> None:
        body = b"Signal=1\r\nDuration=160\r\n"
        data = (b"INFO sip:b@c SIP/2.0\r\nContent-Type: application/dtmf-relay\r\n"
                b"Content-Length: %d\r\n\r\n" % len(body)) + body
        shown = redact(data)
        self.assertNotIn("Signal=1", shown)
        self.assertTrue(shown.endswith(f"[application/dtmf-relay, {len(body)} bytes]"), shown)
        untyped = redact(b"MESSAGE sip:b@c SIP/2.0\r\nCall-ID: m\r\n\r\npin 1234")
        self.assertTrue(untyped.endswith("[body, 8 bytes]"), untyped)


class BoundsTests(SynchronousTestCase):
    def test_size_bound_marked(self) -> None:
        body = ("a=x-filler:" + "y" * 100 + "\r\n") * 200
        data = ("INVITE sip:b@c SIP/2.0\r\nContent-Type: application/sdp\r\n\r\n" + body).encode()
        shown = redact(data)
        self.assertLess(len(shown), 8192 + 100)
        self.assertIn("truncated", shown[-80:])
        self.assertNotIn("truncated", redact(data, limit=10**6))

    def test_torture_messages_readable(self) -> None:
        """Every RFC 4475 message: no exception, its start line still there, and no
        Authorization value but its scheme."""
        files = sorted((DATA / "rfc4475").glob("*.dat"))
        self.assertGreater(len(files), 40)
        for path in files:
            raw = path.read_bytes()
            shown = redact(raw)
            first = raw.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8", "replace")
            self.assertTrue(shown.startswith(first[:40]) or "truncated" in shown, path.name)
        shown = redact((DATA / "rfc4475" / "regaut01.dat").read_bytes())
        self.assertIn(f"Authorization: NoOneKnowsThisScheme {HIDDEN}", shown)
        self.assertNotIn("opaque-data", shown)

    @settings(max_examples=300, deadline=None)
    @given(st.binary(max_size=600), st.text(min_size=6, max_size=20,
                                            alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ"))
    def test_any_bytes_never_leak_a_response(self, noise: bytes, secret: str) -> None:
        data = (b"INVITE sip:a SIP/2.0\r\n" + noise + b"\r\nAuthorization: Digest username=\"u\", "
                b"response=\"" + secret.encode() + b"\"\r\n\r\n")
        shown = redact(data)
        self.assertNotIn(f'response="{secret}"', shown)
