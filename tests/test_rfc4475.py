"""RFC 4475 torture messages: one test per message, asserting the outcome the RFC expects.

The messages live byte-exact in tests/data/rfc4475 (copied, never re-typed: several carry
NUL, DEL, BEL, raw UTF-8 and binary bodies on purpose).  Where the RFC lets an element be
either strict or lenient, the choice made by wcsgw is stated next to the test.
"""

from __future__ import annotations

import os

from twisted.trial.unittest import SynchronousTestCase

from wcsgw.sip.checks import check_request
from wcsgw.sip.errors import SipParseError
from wcsgw.sip.message import Request, Response
from wcsgw.sip.parser import parse_message, serialize
from wcsgw.sip.responses import make_response
from wcsgw.sip.uri import URI, parse_uri, uri_equal

DATA = os.path.join(os.path.dirname(__file__), "data", "rfc4475")

#: what a gateway UAS answers (the real list is the endpoint's; these make the RFC's cases)
ALLOWED = frozenset({"INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "REGISTER", "MESSAGE"})


def load(name: str) -> bytes:
    with open(os.path.join(DATA, name + ".dat"), "rb") as f:
        return f.read()


def check(request: Request, **kwargs: object) -> Response | None:
    options: dict = dict(
        allowed_methods=ALLOWED,
        supported_extensions=("replaces", "timer"),
        accepted_content_types=("application/sdp",),
        to_tag="uas1",
    )
    options.update(kwargs)
    return check_request(request, **options)


class TortureCase(SynchronousTestCase):
    def parse(self, name: str) -> Request | Response:
        msg = parse_message(load(name))
        # every message we accept must survive our own serializer
        again = parse_message(serialize(msg))
        self.assertEqual(again.body, msg.body)
        self.assertEqual(
            [h for h in again.headers if h[0] != "Content-Length"],
            [h for h in msg.headers if h[0] != "Content-Length"],
        )
        return msg

    def request(self, name: str) -> Request:
        msg = self.parse(name)
        assert isinstance(msg, Request)
        return msg

    def rejected(self, name: str, status: int = 400) -> SipParseError:
        exc = self.assertRaises(SipParseError, parse_message, load(name))
        self.assertEqual(exc.status, status)
        return exc

    def rejected_request(self, name: str, status: int = 400) -> SipParseError:
        """An invalid request: refused, yet addressable so that a 400 can be sent."""
        exc = self.rejected(name, status)
        self.assertIsInstance(exc.partial, Request)
        response = make_response(exc.partial, exc.status, to_tag="t")
        self.assertEqual(response.status, status)
        self.assertTrue(response.headers.get_all("Via"))
        self.assertTrue(serialize(response).startswith(b"SIP/2.0 %d " % status))
        return exc


class ValidMessages(TortureCase):
    """RFC 4475 §3.1.1: must parse and be handled as well-formed."""

    def test_wsinv(self) -> None:
        m = self.request("wsinv")
        self.assertEqual(m.method, "INVITE")
        self.assertEqual(m.uri, "sip:vivekg@chair-dnrc.example.com;unknownparam")
        self.assertEqual(m.to.tag, "1918181833n")
        self.assertEqual(m.from_.display_name, 'J Rosenberg \\"')
        self.assertEqual(m.from_.tag, "98asjd8")
        self.assertEqual(m.headers.get("Max-Forwards"), "0068")
        self.assertEqual(m.cseq, (9, "INVITE"))  # folded over two lines
        vias = m.vias
        self.assertEqual([v.transport for v in vias], ["UDP", "TCP", "UDP"])
        self.assertEqual([v.host for v in vias], ["192.0.2.2", "spindle.example.com", "192.168.255.111"])
        self.assertEqual([v.branch for v in vias], ["390skdjuw", "z9hG4bK9ikj8", "z9hG4bK30239"])
        self.assertEqual(m.headers.get("Subject"), "")
        self.assertEqual(
            m.headers.get("NewFangledHeader"), "newfangled value continued newfangled value"
        )
        # unknown header: its commas are not list separators
        self.assertEqual(m.headers.get_all("UnknownHeaderWithUnusualValue"), [";;,,;;,;"])
        [route] = m.headers.get_all("Route")
        self.assertEqual(route, "<sip:services.example.com;lr;unknownwith=value;unknown-no-value>")
        [contact] = m.contacts
        self.assertEqual(contact.display_name, 'Quoted string ""')
        self.assertEqual(contact.params, {"newparam": "newvalue", "secondparam": None, "q": "0.33"})
        self.assertEqual(len(m.body), 150)

    def test_intmeth(self) -> None:
        m = self.request("intmeth")
        self.assertEqual(m.method, "!interesting-Method0123456789_*+`.%indeed'~")
        self.assertEqual(m.cseq, (139122385, m.method))
        uri = parse_uri(m.uri)
        self.assertEqual(uri.user, "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
        self.assertEqual(uri.password, "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)")
        self.assertEqual(uri.host, "example.com")
        self.assertEqual(m.to.display_name, "BEL:\x07 NUL:\x00 DEL:\x7f")
        self.assertEqual(m.to.uri.user, "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
        self.assertEqual(m.from_.display_name, "token1~` token2'+_ token3*%!.-")
        self.assertEqual(m.from_.tag, "_token~1'+`*%!-.")
        self.assertEqual(
            m.from_.params["fromparam''~+*_!.-%"], '"\u0440\u0430\u0431\u043e\u0442\u0430\u044e\u0449\u0438\u0439"'
        )
        self.assertEqual(m.call_id, "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{")
        self.assertEqual(m.headers.get("extensionHeader-!.%*+_`'~"), "\ufeff\u5927\u505c\u96fb")
        # a method nobody has heard of: 501 (RFC 3261 §21.5.2), with Allow
        response = check(m)
        assert response is not None
        self.assertEqual(response.status, 501)
        self.assertIn("INVITE", response.headers.get("Allow") or "")

    def test_esc01(self) -> None:
        m = self.request("esc01")
        ruri = parse_uri(m.uri)
        self.assertEqual(ruri.user, "sips:user@example.com")
        self.assertEqual(ruri.host, "example.net")
        self.assertEqual(m.to.uri.user, "user")
        self.assertTrue(uri_equal(m.to.uri, parse_uri("sip:user@example.com")))
        self.assertEqual(m.from_.uri.user, "I have spaces")
        [contact] = m.contacts
        self.assertEqual(contact.uri.user, "caller")
        self.assertEqual(contact.uri.params, {"lr": None, "name": "value%41"})
        self.assertEqual(str(contact.uri), "sip:caller@host5.example.net;lr;name=value%2541")
        self.assertIsNone(check(m))

    def test_escnull(self) -> None:
        m = self.request("escnull")
        self.assertEqual(m.to.uri.user, "null-\x00-null")
        self.assertEqual(m.from_.uri.user, "null-\x00-null")
        self.assertEqual([c.uri.user for c in m.contacts], ["\x00", "\x00\x00"])
        self.assertEqual(str(m.to.uri), "sip:null-%00-null@example.com")
        self.assertEqual(m.headers.get("Content-Length"), "0")  # "L:0", compact, no space

    def test_esc02(self) -> None:
        m = self.request("esc02")
        # %-escapes are not decoded in a method: this is not a REGISTER
        self.assertEqual(m.method, "RE%47IST%45R")
        self.assertEqual(m.cseq, (29344, "RE%47IST%45R"))
        self.assertEqual(m.to.display_name, "%Z%45")
        self.assertEqual(m.top_via.branch, "z9hG4bK209%fzsnel234")
        # "C%6Fntact" is an extension header, not a third Contact
        self.assertEqual([c.uri.host for c in m.contacts], ["host1.example.com", "host3.example.com"])
        self.assertEqual(m.headers.get("C%6fntact"), "<sip:alias2@host2.example.com>")
        response = check(m)
        assert response is not None
        self.assertEqual(response.status, 501)

    def test_lwsdisp(self) -> None:
        m = self.request("lwsdisp")
        self.assertEqual(m.from_.display_name, "caller")
        self.assertEqual(m.from_.uri.user, "caller")
        self.assertEqual(m.from_.tag, "323")

    def test_longreq(self) -> None:
        m = self.request("longreq")
        self.assertEqual(len(m.headers.get_all("Via")), 34)
        self.assertEqual(len(m.headers), 43)
        display = m.to.display_name or ""
        self.assertTrue(display.startswith("I have a user name of extremeextreme"))
        self.assertTrue(display.endswith("extreme proportion"))
        self.assertEqual(m.to.uri.port, 6000)
        self.assertEqual(len(m.to.uri.params), 3)
        self.assertIsNone(m.to.uri.params["verylonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglongparameternamewithnovalue"])
        self.assertEqual(m.to.tag, None)
        self.assertIn("longcallid", m.call_id)
        self.assertEqual(m.from_.uri.user.count("amazinglylongcallername"), 5)
        self.assertEqual(len(m.body), 150)
        [long_branch] = [v.branch for v in m.vias if v.branch]
        self.assertTrue(long_branch.endswith("longbranchvalue"))
        self.assertEqual(sum(1 for v in m.vias if v.host.startswith("sip")), 33)

    def test_dblreq(self) -> None:
        """A datagram with a REGISTER and, after its Content-Length 0, an INVITE: only the
        REGISTER counts; the INVITE is not a second message and must be ignored."""
        m = self.request("dblreq")
        self.assertEqual(m.method, "REGISTER")
        self.assertEqual(m.body, b"")
        self.assertEqual(m.call_id, "dblreq.0ha0isndaksdj99sdfafnl3lk233412")
        self.assertNotIn("INVITE", m.headers.get("CSeq") or "")

    def test_semiuri(self) -> None:
        m = self.request("semiuri")
        uri = parse_uri(m.uri)
        self.assertEqual(uri.user, "user;par=u@example.net")
        self.assertEqual(uri.host, "example.com")
        self.assertEqual(uri.params, {})
        self.assertEqual(
            m.headers.get_all("Accept"),
            [
                "application/sdp", "application/pkcs7-mime", "multipart/mixed",
                "multipart/signed", "message/sip", "message/sipfrag",
            ],
        )

    def test_transports(self) -> None:
        m = self.request("transports")
        self.assertEqual([v.transport for v in m.vias], ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"])
        self.assertEqual(m.call_id, "transports.kijh4akdnaqjkwendsasfdj")

    def test_mpart01(self) -> None:
        m = self.request("mpart01")
        self.assertEqual(len(m.body), 553)
        self.assertTrue(m.body.startswith(b"--7a9cbec02ceef655\r\n"))
        self.assertTrue(m.body.endswith(b"--7a9cbec02ceef655--\r\n"))
        self.assertIn(b"\x00", m.body)  # binary part, untouched
        self.assertEqual(m.top_via.params["rport"], None)
        # multipart/mixed is not a type we take: 415 with Accept
        response = check(m)
        assert response is not None
        self.assertEqual(response.status, 415)
        self.assertEqual(response.headers.get("Accept"), "application/sdp")

    def test_unreason(self) -> None:
        m = self.parse("unreason")
        assert isinstance(m, Response)
        self.assertEqual(m.status, 200)
        self.assertTrue(m.reason.startswith("= 2**3 * 5**2 \u043d\u043e \u0441\u0442\u043e"))
        self.assertIn("\u043f\u0440\u043e\u0441\u0442\u043e\u0435", m.reason)
        self.assertEqual(len(m.body), 154)

    def test_noreason(self) -> None:
        m = self.parse("noreason")
        assert isinstance(m, Response)
        self.assertEqual((m.status, m.reason), (100, ""))
        self.assertTrue(serialize(m).startswith(b"SIP/2.0 100 \r\n"))


class InvalidMessages(TortureCase):
    """RFC 4475 §3.1.2: must be rejected; a request with a Via gets a 400 back."""

    def test_badinv01(self) -> None:
        exc = self.rejected_request("badinv01")
        self.assertIn("param", exc.reason)

    def test_clerr(self) -> None:
        exc = self.rejected_request("clerr")
        self.assertIn("Content-Length", exc.reason)

    def test_ncl(self) -> None:
        exc = self.rejected_request("ncl")
        self.assertIn("Content-Length", exc.reason)

    def test_scalar02(self) -> None:
        """CSeq beyond 2**31-1 is the fatal error; the over-large Max-Forwards and Expires
        alone would be tolerated (see test_sip_checks)."""
        exc = self.rejected_request("scalar02")
        self.assertIn("CSeq", exc.reason)

    def test_scalarlg(self) -> None:
        exc = self.rejected("scalarlg")
        self.assertIsNone(exc.partial)  # a response: dropped, never answered

    def test_quotbal(self) -> None:
        exc = self.rejected_request("quotbal")
        self.assertIn("quoted", exc.reason)

    def test_ltgtruri(self) -> None:
        self.rejected_request("ltgtruri")

    def test_lwsruri(self) -> None:
        self.rejected_request("lwsruri")

    def test_lwsstart(self) -> None:
        """Strict choice: the RFC allows ignoring the extra SPs, we refuse them."""
        self.rejected_request("lwsstart")

    def test_trws(self) -> None:
        """Strict choice again: trailing SP after SIP/2.0 is refused."""
        exc = self.rejected_request("trws")
        self.assertEqual(exc.partial.uri, "sip:remote-target@example.com")

    def test_escruri(self) -> None:
        exc = self.rejected_request("escruri")
        self.assertIn("Request-URI", exc.reason)

    def test_baddate(self) -> None:
        """The RFC allows either rejecting or ignoring a non-GMT Date; we reject."""
        exc = self.rejected_request("baddate")
        self.assertIn("Date", exc.reason)

    def test_regbadct(self) -> None:
        """The RFC allows inferring the brackets; we do not: the URI's '?' needs <>."""
        exc = self.rejected_request("regbadct")
        self.assertIn("<>", exc.reason)

    def test_badaspec(self) -> None:
        exc = self.rejected_request("badaspec")
        self.assertIn("whitespace", exc.reason)

    def test_baddn(self) -> None:
        """Also: the file has no empty line after its last header; a datagram ending on a
        line end is read as headers without body, so the display name is what fails."""
        exc = self.rejected_request("baddn")
        self.assertIn("display name", exc.reason)

    def test_badvers(self) -> None:
        exc = self.rejected_request("badvers", status=505)
        self.assertEqual(exc.partial.method, "OPTIONS")

    def test_mismatch01(self) -> None:
        exc = self.rejected_request("mismatch01")
        self.assertIn("CSeq", exc.reason)

    def test_mismatch02(self) -> None:
        exc = self.rejected_request("mismatch02")
        self.assertIn("NEWMETHOD", exc.reason)

    def test_bigcode(self) -> None:
        exc = self.rejected("bigcode")
        self.assertIsNone(exc.partial)


class TransactionSemantics(TortureCase):
    def test_badbranch(self) -> None:
        """A branch that is only the magic cookie parses; it cannot be unique, so the
        transaction layer must match it with RFC 2543 rules (rfc3261_branch is False)."""
        m = self.request("badbranch")
        self.assertEqual(m.top_via.branch, "z9hG4bK")
        self.assertFalse(m.top_via.rfc3261_branch)
        self.assertIsNone(check(m))


class ApplicationSemantics(TortureCase):
    """RFC 4475 §3.3: well-formed (or at least parseable) requests the UAS must refuse."""

    def test_insuf(self) -> None:
        """No To, From, Call-ID: the RFC wants a 400. The parser refuses requests missing
        the §8.1.1 headers (the layers above rely on them) and still offers a partial
        request, so the 400 goes out along the Via."""
        exc = self.rejected_request("insuf")
        self.assertIn("missing", exc.reason)
        response = make_response(exc.partial, 400)
        self.assertEqual(response.headers.get("CSeq"), "193942 INVITE")

    def test_unkscm(self) -> None:
        m = self.request("unkscm")
        self.assertEqual(parse_uri(m.uri), URI("nobodyknowsthisscheme", opaque="totallyopaquecontent"))
        self.assertEqual(check(m).status, 416)

    def test_novelsc(self) -> None:
        m = self.request("novelsc")
        self.assertEqual(parse_uri(m.uri).scheme, "soap.beep")
        self.assertEqual(check(m).status, 416)

    def test_unksm2(self) -> None:
        """Unknown schemes in To/From/Contact parse; a registrar answers 400 because the
        To of a REGISTER must be a SIP(S) address-of-record (RFC 4475 §3.3.3)."""
        m = self.request("unksm2")
        self.assertEqual(m.to.uri, URI("isbn", opaque="2983792873"))
        self.assertEqual(m.from_.uri.scheme, "http")
        self.assertEqual(m.contacts[0].uri, URI("name", opaque="John_Smith"))
        response = check(m)
        self.assertEqual(response.status, 400)

    def test_bext01(self) -> None:
        m = self.request("bext01")
        response = check(m)
        self.assertEqual(response.status, 420)
        # a UAS lists the Require tags; Proxy-Require is a proxy's business
        self.assertEqual(
            response.headers.get("Unsupported"), "nothingSupportsThis, nothingSupportsThisEither"
        )
        self.assertEqual(response.to.tag, "uas1")

    def test_invut(self) -> None:
        m = self.request("invut")
        response = check(m)
        self.assertEqual(response.status, 415)
        self.assertEqual(response.headers.get("Accept"), "application/sdp")

    def test_regaut01(self) -> None:
        """An unknown Authorization scheme is well-formed: no refusal here (whether to
        challenge is the registrar's affair, digest lives elsewhere)."""
        m = self.request("regaut01")
        self.assertEqual(m.headers.get("Authorization"), "NoOneKnowsThisScheme opaque-data=here")
        self.assertIsNone(check(m))
        self.assertEqual(check(m, allowed_methods={"INVITE"}).status, 405)

    def test_multi01(self) -> None:
        m = self.request("multi01")
        self.assertEqual(len(m.headers.get_all("CSeq")), 2)
        response = check(m)
        self.assertEqual(response.status, 400)
        # the refusal copies one of each, not both
        self.assertEqual(len(response.headers.get_all("To")), 1)
        self.assertEqual(len(response.headers.get_all("CSeq")), 1)

    def test_mcl01(self) -> None:
        """Two different Content-Lengths: no way to find the body, so the parser refuses
        (with a partial, for the 400 the RFC asks for)."""
        exc = self.rejected_request("mcl01")
        self.assertIn("Content-Length", exc.reason)

    def test_bcast(self) -> None:
        m = self.parse("bcast")
        assert isinstance(m, Response)
        self.assertEqual(m.vias[1].host, "255.255.255.255")

    def test_zeromf(self) -> None:
        """An endpoint processes Max-Forwards 0 normally; only a relaying element answers
        483, and not to OPTIONS (RFC 3261 §16.3 item 3)."""
        m = self.request("zeromf")
        self.assertIsNone(check(m))
        self.assertIsNone(check(m, relaying=True))
        m.method = "INFO"
        m.headers.set("CSeq", "39234321 INFO")
        self.assertEqual(check(m, relaying=True, allowed_methods={"INFO"}).status, 483)

    def test_cparam01(self) -> None:
        m = self.request("cparam01")
        [contact] = m.contacts
        self.assertEqual(contact.params, {"unknownparam": None})
        self.assertEqual(contact.uri.params, {})
        self.assertEqual(str(contact), "<sip:+19725552222@gw1.example.net>;unknownparam")

    def test_cparam02(self) -> None:
        m = self.request("cparam02")
        [contact] = m.contacts
        self.assertEqual(contact.params, {})
        self.assertEqual(contact.uri.params, {"unknownparam": None})

    def test_regescrt(self) -> None:
        m = self.request("regescrt")
        [contact] = m.contacts
        self.assertEqual(contact.uri.headers, {"Route": "<sip:sip.example.com>"})
        self.assertEqual(str(contact.uri), "sip:user@example.com?Route=%3Csip:sip.example.com%3E")
        self.assertIsNone(check(m))

    def test_sdp01(self) -> None:
        """Accept excludes SDP, the only thing an INVITE answer can carry: 406."""
        m = self.request("sdp01")
        self.assertIsNone(check(m))  # nothing to produce declared: no opinion
        response = check(m, produced_content_types=("application/sdp",))
        self.assertEqual(response.status, 406)
        self.assertEqual(response.headers.get("Accept"), "application/sdp")


class BackwardCompatibility(TortureCase):
    def test_inv2543(self) -> None:
        """RFC 2543 syntax: no branch, no From tag, no Content-Length (body = rest of the
        datagram), no Max-Forwards. Accepted."""
        m = self.request("inv2543")
        self.assertIsNone(m.top_via.branch)
        self.assertIsNone(m.from_.tag)
        self.assertNotIn("Content-Length", m.headers)
        self.assertNotIn("Max-Forwards", m.headers)
        self.assertTrue(m.body.startswith(b"v=0\r\n"))
        self.assertTrue(m.body.endswith(b"m=audio 49217 RTP/AVP 0\r\n"))
        # addr-spec form: ";user=phone" is a To parameter, not a URI one (RFC 3261 §20.10)
        self.assertEqual(m.to.params, {"user": "phone"})
        self.assertEqual(m.to.uri.params, {})
        self.assertEqual(m.from_.uri.params, {"user": "phone"})  # bracketed: a URI parameter
        self.assertIsNone(check(m))


class Coverage(SynchronousTestCase):
    def test_every_message_has_a_test(self) -> None:
        names = {f[:-4] for f in os.listdir(DATA) if f.endswith(".dat")}
        self.assertEqual(len(names), 49)
        tested = {
            attr[5:]
            for cls in (ValidMessages, InvalidMessages, TransactionSemantics,
                        ApplicationSemantics, BackwardCompatibility)
            for attr in dir(cls)
            if attr.startswith("test_")
        }
        self.assertEqual(names - tested, set())
