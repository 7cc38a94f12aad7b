"""UAS request checks (wcsgw.sip.checks) and responses (wcsgw.sip.responses)."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from wcsgw.sip.checks import check_request
from wcsgw.sip.message import Request
from wcsgw.sip.parser import parse_message, serialize
from wcsgw.sip.responses import REASON_PHRASES, make_response, reason_phrase

ALLOWED = frozenset({"INVITE", "ACK", "CANCEL", "BYE", "OPTIONS"})


def request(method: str = "INVITE", uri: str = "sip:bob@biloxi.com", extra: str = "", body: str = "") -> Request:
    data = (
        f"{method} {uri} SIP/2.0\r\n"
        "Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bKnashds8\r\n"
        "Via: SIP/2.0/UDP bigbox3.site3.atlanta.com;branch=z9hG4bK77ef4c2312983.1\r\n"
        "Max-Forwards: 70\r\n"
        "To: Bob <sip:bob@biloxi.com>\r\n"
        "From: Alice <sip:alice@atlanta.com>;tag=1928301774\r\n"
        "Call-ID: a84b4c76e66710\r\n"
        f"CSeq: 314159 {method}\r\n"
        "Timestamp: 54\r\n"
        f"{extra}Content-Length: {len(body)}\r\n\r\n{body}"
    )
    msg = parse_message(data.encode())
    assert isinstance(msg, Request)
    return msg


def check(req: Request, **kwargs: object) -> object:
    options: dict = dict(
        allowed_methods=ALLOWED,
        supported_extensions=("replaces", "timer"),
        accepted_content_types=("application/sdp",),
        to_tag="uas",
    )
    options.update(kwargs)
    return check_request(req, **options)


class Responses(SynchronousTestCase):
    def test_copies_per_8_2_6(self) -> None:
        req = request()
        resp = make_response(req, 486, to_tag="987")
        self.assertEqual((resp.status, resp.reason), (486, "Busy Here"))
        self.assertEqual(resp.headers.get_all("Via"), req.headers.get_all("Via"))
        self.assertEqual(resp.headers.get("From"), req.headers.get("From"))
        self.assertEqual(resp.headers.get("To"), "Bob <sip:bob@biloxi.com>;tag=987")
        self.assertEqual(resp.headers.get("Call-ID"), "a84b4c76e66710")
        self.assertEqual(resp.headers.get("CSeq"), "314159 INVITE")
        self.assertEqual(resp.headers.get("Content-Length"), "0")
        self.assertNotIn("Timestamp", resp.headers)
        self.assertNotIn("Max-Forwards", resp.headers)
        parse_message(serialize(resp))

    def test_existing_to_tag_kept(self) -> None:
        req = request()
        req.headers.set("To", "<sip:bob@biloxi.com>;tag=abc")
        self.assertEqual(make_response(req, 200, to_tag="new").to.tag, "abc")

    def test_trying_echoes_timestamp_and_takes_no_tag(self) -> None:
        resp = make_response(request(), 100)
        self.assertEqual(resp.reason, "Trying")
        self.assertEqual(resp.headers.get("Timestamp"), "54")
        self.assertIsNone(resp.to.tag)

    def test_extra_headers_and_reason(self) -> None:
        resp = make_response(request(), 405, "Nope", headers=[("Allow", "INVITE, ACK")])
        self.assertEqual(resp.reason, "Nope")
        self.assertEqual(resp.headers.get("Allow"), "INVITE, ACK")
        self.assertEqual([n for n, _ in resp.headers][-1], "Content-Length")

    def test_reason_cannot_inject(self) -> None:
        resp = make_response(request(), 400, "bad\r\nVia: x")
        self.assertNotIn(b"\r\nVia: x", serialize(resp))

    def test_raw_partial_to(self) -> None:
        partial = Request("INVITE", "sip:x", [("Via", "SIP/2.0/UDP h"), ("To", '"unterminated <sip:a@b>')])
        resp = make_response(partial, 400, to_tag="t")
        self.assertEqual(resp.headers.get("To"), '"unterminated <sip:a@b>;tag=t')
        partial.headers.set("To", '"unterminated <sip:a@b>;tag=x')
        self.assertEqual(make_response(partial, 400, to_tag="t").headers.get("To"), '"unterminated <sip:a@b>;tag=x')

    def test_phrases(self) -> None:
        self.assertEqual(REASON_PHRASES[481], "Call/Transaction Does Not Exist")
        self.assertEqual(reason_phrase(420), "Bad Extension")
        self.assertEqual(reason_phrase(499), "Bad Request")
        self.assertEqual(reason_phrase(299), "OK")


class Checks(SynchronousTestCase):
    def test_ok(self) -> None:
        self.assertIsNone(check(request()))
        self.assertIsNone(check(request(extra="Content-Type: application/SDP; charset=x\r\n", body="v=0\r\n")))
        self.assertIsNone(check(request(extra="Require: Timer\r\n")))

    def test_ack_is_never_answered(self) -> None:
        self.assertIsNone(check(request("ACK", uri="bogus:x", extra="Require: foo\r\n"), allowed_methods=()))

    def test_405_and_501(self) -> None:
        r = check(request("SUBSCRIBE"))
        self.assertEqual(r.status, 405)
        self.assertEqual(r.headers.get("Allow"), "ACK, BYE, CANCEL, INVITE, OPTIONS")
        self.assertEqual(r.to.tag, "uas")
        self.assertEqual(check(request("FROB")).status, 501)

    def test_416(self) -> None:
        self.assertEqual(check(request(uri="mailto:bob@biloxi.com")).status, 416)
        self.assertIsNone(check(request(uri="tel:+15550100")))
        self.assertEqual(check(request(uri="tel:+15550100"), supported_schemes=("sip",)).status, 416)

    def test_420_lists_unknown_tags_once(self) -> None:
        r = check(request(extra="Require: timer, foo\r\nRequire: bar, foo\r\nProxy-Require: baz\r\n"))
        self.assertEqual(r.status, 420)
        self.assertEqual(r.headers.get("Unsupported"), "foo, bar")

    def test_cancel_exempt_from_require(self) -> None:
        self.assertIsNone(check(request("CANCEL", extra="Require: foo\r\n")))

    def test_415(self) -> None:
        r = check(request(extra="Content-Type: text/plain\r\n", body="hi"))
        self.assertEqual(r.status, 415)
        self.assertEqual(r.headers.get("Accept"), "application/sdp")
        r = check(request(extra="Content-Type: application/sdp\r\nContent-Encoding: gzip\r\n", body="x"))
        self.assertEqual(r.status, 415)
        self.assertEqual(r.headers.get("Accept-Encoding"), "identity")

    def test_body_without_content_type(self) -> None:
        self.assertEqual(check(request(body="v=0\r\n")).status, 400)

    def test_multiple_singletons(self) -> None:
        for extra in ["Max-Forwards: 5\r\n", "Call-ID: other\r\n", "From: <sip:x@y>;tag=2\r\n", "Expires: 5\r\nExpires: 6\r\n"]:
            with self.subTest(extra=extra):
                r = check(request(extra=extra))
                self.assertEqual(r.status, 400)
                self.assertIn("several", r.reason)

    def test_483_only_when_relaying(self) -> None:
        req = request()
        req.headers.set("Max-Forwards", "0")
        self.assertIsNone(check(req))
        self.assertEqual(check(req, relaying=True).status, 483)
        opt = request("OPTIONS")
        opt.headers.set("Max-Forwards", "0")
        self.assertIsNone(check(opt, relaying=True))

    def test_unusable_max_forwards_is_ignored(self) -> None:
        """RFC 4475 scalar02: an out-of-range Max-Forwards may be treated as absent."""
        for value in ["300", "abc", "", "0x0"]:
            req = request()
            req.headers.set("Max-Forwards", value)
            with self.subTest(value=value):
                self.assertIsNone(check(req, relaying=True))

    def test_406(self) -> None:
        sdp = ("application/sdp",)
        self.assertIsNone(check(request(), produced_content_types=sdp))  # no Accept: SDP
        self.assertIsNone(check(request(extra="Accept: application/*\r\n"), produced_content_types=sdp))
        self.assertIsNone(check(request(extra="Accept: */*\r\n"), produced_content_types=sdp))
        self.assertEqual(check(request(extra="Accept: text/plain\r\n"), produced_content_types=sdp).status, 406)
        self.assertEqual(check(request(extra="Accept:\r\n"), produced_content_types=sdp).status, 406)

    def test_register_needs_sip_aor(self) -> None:
        reg = request("REGISTER", uri="sip:example.com")
        reg.headers.set("To", "<tel:+15550100>")
        allowed = ALLOWED | {"REGISTER"}
        self.assertEqual(check(reg, allowed_methods=allowed).status, 400)
        reg.headers.set("To", "<sips:bob@example.com>")
        self.assertIsNone(check(reg, allowed_methods=allowed))

    def test_order_400_before_405(self) -> None:
        self.assertEqual(check(request("FROB", extra="Max-Forwards: 1\r\n")).status, 400)

    def test_order_405_before_416(self) -> None:
        self.assertEqual(check(request("SUBSCRIBE", uri="mailto:x@y")).status, 405)

    def test_random_tag_when_none_given(self) -> None:
        r = check_request(request("FROB"), allowed_methods=ALLOWED)
        self.assertTrue(r.to.tag)
        self.assertNotEqual(r.to.tag, check_request(request("FROB"), allowed_methods=ALLOWED).to.tag)
