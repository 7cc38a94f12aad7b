"""Dialogs (wcsgw.sip.dialog): RFC 3261 §12 creation, in-dialog requests, receiving."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from wcsgw.sip.dialog import Dialog, DialogState, format_name_addr, split_header_list
from wcsgw.sip.message import Request, Response

ALICE_CONTACT = "<sip:alice@192.0.2.1:5060>"


def invite(cseq: int = 314159, uri: str = "sip:bob@biloxi.com", record_route: tuple[str, ...] = ()) -> Request:
    headers = [
        ("Via", "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKnashds8"),
        ("Max-Forwards", "70"),
        ("To", "Bob <sip:bob@biloxi.com>"),
        ("From", '"Alice" <sip:alice@atlanta.com>;tag=1928301774'),
        ("Call-ID", "a84b4c76e66710@pc33.atlanta.com"),
        ("CSeq", f"{cseq} INVITE"),
        ("Contact", ALICE_CONTACT),
    ]
    headers += [("Record-Route", rr) for rr in record_route]
    return Request("INVITE", uri, headers)


def response_to(request: Request, status: int, reason: str = "OK", *, to_tag: str | None = "a6c85cf",
                contact: str | None = "<sip:bob@192.0.2.4>", extra: tuple[tuple[str, str], ...] = ()) -> Response:
    to = request.headers.get("To") or ""
    if to_tag:
        to += f";tag={to_tag}"
    headers = [(n, v) for n, v in request.headers if n in ("Via", "From", "Call-ID", "CSeq")]
    headers.append(("To", to))
    if contact:
        headers.append(("Contact", contact))
    headers += list(extra)
    return Response(status, reason, headers)


def uac_dialog(routes: tuple[str, ...] = (), status: int = 200) -> Dialog:
    req = invite()
    resp = response_to(req, status, extra=tuple(("Record-Route", r) for r in routes))
    return Dialog.from_uac(req, resp)


def in_dialog_request(dialog: Dialog, method: str, cseq: int, contact: str | None = None) -> Request:
    """A request from the peer (Bob) to us (Alice) in ``dialog``."""
    headers = [
        ("Via", "SIP/2.0/UDP 192.0.2.4;branch=z9hG4bKbob1"),
        ("From", f"<sip:bob@biloxi.com>;tag={dialog.remote_tag}"),
        ("To", f"<sip:alice@atlanta.com>;tag={dialog.local_tag}"),
        ("Call-ID", dialog.call_id),
        ("CSeq", f"{cseq} {method}"),
    ]
    if contact:
        headers.append(("Contact", contact))
    return Request(method, "sip:alice@192.0.2.1:5060", headers)


class CreationTests(SynchronousTestCase):
    def test_from_uac_2xx(self) -> None:
        d = uac_dialog(routes=("<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"))
        self.assertEqual(d.call_id, "a84b4c76e66710@pc33.atlanta.com")
        self.assertEqual(d.local_tag, "1928301774")
        self.assertEqual(d.remote_tag, "a6c85cf")
        self.assertEqual(d.dialog_id, ("a84b4c76e66710@pc33.atlanta.com", "1928301774", "a6c85cf"))
        self.assertEqual(d.local_uri, "sip:alice@atlanta.com")
        self.assertEqual(d.remote_uri, "sip:bob@biloxi.com")
        self.assertEqual(d.remote_target, "sip:bob@192.0.2.4")
        self.assertEqual(d.local_cseq, 314159)
        self.assertIsNone(d.remote_cseq)
        # §12.1.2: the UAC's route set is the Record-Route of the response, reversed
        self.assertEqual(d.route_set, ["<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>"])
        self.assertIs(d.state, DialogState.CONFIRMED)
        self.assertFalse(d.secure)
        self.assertEqual(d.local_contact, ALICE_CONTACT)

    def test_from_uac_joined_record_route_value(self) -> None:
        req = invite()
        resp = response_to(req, 200, extra=(("Record-Route", "<sip:p1.example.com;lr>, <sip:p2.example.com;lr>"),))
        self.assertEqual(Dialog.from_uac(req, resp).route_set, ["<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>"])

    def test_from_uac_1xx_is_early(self) -> None:
        d = uac_dialog(status=180)
        self.assertIs(d.state, DialogState.EARLY)

    def test_from_uac_sips_is_secure(self) -> None:
        req = invite(uri="sips:bob@biloxi.com")
        self.assertTrue(Dialog.from_uac(req, response_to(req, 200)).secure)
        self.assertFalse(Dialog.from_uac(req, response_to(req, 200), secure=False).secure)

    def test_from_uac_needs_to_tag(self) -> None:
        req = invite()
        self.assertRaises(ValueError, Dialog.from_uac, req, response_to(req, 180, to_tag=None))
        self.assertRaises(ValueError, Dialog.from_uac, req, response_to(req, 100))
        self.assertRaises(ValueError, Dialog.from_uac, req, response_to(req, 486))

    def test_from_uac_without_contact_falls_back_to_request_uri(self) -> None:
        req = invite()
        self.assertEqual(Dialog.from_uac(req, response_to(req, 200, contact=None)).remote_target, "sip:bob@biloxi.com")

    def test_from_uas(self) -> None:
        req = invite(record_route=("<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"))
        d = Dialog.from_uas(req, "uas-tag", local_contact="<sip:bob@192.0.2.4>")
        self.assertEqual(d.dialog_id, ("a84b4c76e66710@pc33.atlanta.com", "uas-tag", "1928301774"))
        self.assertEqual(d.local_uri, "sip:bob@biloxi.com")
        self.assertEqual(d.remote_uri, "sip:alice@atlanta.com")
        self.assertEqual(d.remote_target, "sip:alice@192.0.2.1:5060")
        # §12.1.1: the UAS's route set is the Record-Route of the request, in order
        self.assertEqual(d.route_set, ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"])
        self.assertEqual(d.remote_cseq, 314159)
        self.assertIsNone(d.local_cseq)
        self.assertIs(d.state, DialogState.CONFIRMED)
        self.assertIs(Dialog.from_uas(req, "t", state=DialogState.EARLY).state, DialogState.EARLY)

    def test_from_uas_needs_contact_and_from_tag(self) -> None:
        req = invite()
        req.headers.remove("Contact")
        self.assertRaises(ValueError, Dialog.from_uas, req, "t")
        req = invite()
        req.headers.set("From", "<sip:alice@atlanta.com>")
        self.assertRaises(ValueError, Dialog.from_uas, req, "t")


class RequestTests(SynchronousTestCase):
    def test_no_route_set(self) -> None:
        d = uac_dialog()
        bye = d.create_request("BYE")
        self.assertEqual(bye.method, "BYE")
        self.assertEqual(bye.uri, "sip:bob@192.0.2.4")
        self.assertEqual(bye.headers.get_all("Route"), [])
        self.assertNotIn("Via", bye.headers)  # the transport core adds it
        self.assertEqual(bye.headers.get("CSeq"), "314160 BYE")
        self.assertEqual(bye.headers.get("Call-ID"), d.call_id)
        self.assertEqual(bye.headers.get("From"), '"Alice" <sip:alice@atlanta.com>;tag=1928301774')
        self.assertEqual(bye.headers.get("To"), '"Bob" <sip:bob@biloxi.com>;tag=a6c85cf')
        self.assertEqual(bye.headers.get("Max-Forwards"), "70")
        self.assertNotIn("Contact", bye.headers)  # BYE is not a target refresh request
        self.assertEqual(bye.from_.tag, "1928301774")
        self.assertEqual(bye.to.tag, "a6c85cf")

    def test_loose_routing(self) -> None:
        d = uac_dialog(routes=("<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"))
        req = d.create_request("INFO", [("Content-Type", "application/dtmf-relay")], b"Signal=5\r\n")
        self.assertEqual(req.uri, "sip:bob@192.0.2.4")
        self.assertEqual(req.headers.get_all("Route"), ["<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>"])
        self.assertEqual(req.body, b"Signal=5\r\n")
        self.assertEqual(req.headers.get("Content-Type"), "application/dtmf-relay")

    def test_strict_routing(self) -> None:
        """§12.2.1.1: a first route without ;lr takes the Request-URI; the target goes last."""
        req = invite()
        resp = response_to(req, 200, extra=(
            ("Record-Route", "<sip:p1.example.com;lr>"),
            ("Record-Route", "<sip:strict.example.com;method=INVITE;transport=tcp?x=y>"),
        ))
        d = Dialog.from_uac(req, resp)
        bye = d.create_request("BYE")
        self.assertEqual(bye.uri, "sip:strict.example.com;transport=tcp")
        self.assertEqual(bye.headers.get_all("Route"), ["<sip:p1.example.com;lr>", "<sip:bob@192.0.2.4>"])

    def test_cseq_increments_and_ack_reuses_invite_number(self) -> None:
        d = uac_dialog()
        reinvite = d.create_request("INVITE", body=b"v=0\r\n")
        self.assertEqual(reinvite.cseq, (314160, "INVITE"))
        ack = d.create_ack(314160)
        self.assertEqual(ack.method, "ACK")
        self.assertEqual(ack.cseq, (314160, "ACK"))
        self.assertEqual(ack.uri, "sip:bob@192.0.2.4")
        self.assertEqual(d.local_cseq, 314160)  # the ACK did not consume a number
        self.assertEqual(d.create_request("BYE").cseq, (314161, "BYE"))
        self.assertRaises(ValueError, d.create_request, "ACK")
        self.assertRaises(ValueError, d.create_request, "CANCEL")

    def test_ack_routes_like_other_requests(self) -> None:
        d = uac_dialog(routes=("<sip:p1.example.com;lr>",))
        ack = d.create_ack(314159, body=b"v=0\r\n")
        self.assertEqual(ack.headers.get_all("Route"), ["<sip:p1.example.com;lr>"])
        self.assertEqual(ack.body, b"v=0\r\n")

    def test_uas_first_request_starts_cseq(self) -> None:
        d = Dialog.from_uas(invite(), "uas-tag")
        bye = d.create_request("BYE")
        self.assertEqual(bye.cseq, (1, "BYE"))
        self.assertEqual(bye.uri, "sip:alice@192.0.2.1:5060")
        self.assertEqual(bye.headers.get("From"), '"Bob" <sip:bob@biloxi.com>;tag=uas-tag')
        self.assertEqual(bye.headers.get("To"), '"Alice" <sip:alice@atlanta.com>;tag=1928301774')

    def test_contact_in_target_refresh_requests(self) -> None:
        d = uac_dialog()
        self.assertEqual(d.create_request("INVITE").headers.get("Contact"), ALICE_CONTACT)
        self.assertEqual(d.create_request("UPDATE").headers.get("Contact"), ALICE_CONTACT)
        self.assertNotIn("Contact", d.create_request("INFO").headers)
        d.local_contact = "sip:alice@198.51.100.7"
        self.assertEqual(d.create_request("UPDATE").headers.get("Contact"), "<sip:alice@198.51.100.7>")

    def test_caller_headers(self) -> None:
        d = uac_dialog()
        req = d.create_request("INVITE", [("Contact", "<sip:other@192.0.2.9>"), ("Max-Forwards", "10"),
                                          ("X-Custom", "1"), ("Supported", "timer")])
        self.assertEqual(req.headers.get_all("Contact"), ["<sip:other@192.0.2.9>"])
        self.assertEqual(req.headers.get_all("Max-Forwards"), ["10"])
        self.assertEqual(req.headers.get("X-Custom"), "1")
        for owned in ("From", "to", "Call-ID", "CSeq", "Route", "v"):
            self.assertRaises(ValueError, d.create_request, "INFO", [(owned, "x")])

    def test_terminated_dialog_refuses_requests(self) -> None:
        d = uac_dialog()
        d.terminate()
        self.assertRaises(ValueError, d.create_request, "BYE")

    def test_serializes(self) -> None:
        d = uac_dialog(routes=("<sip:p1.example.com;lr>",))
        data = d.create_request("BYE").to_bytes()
        self.assertTrue(data.startswith(b"BYE sip:bob@192.0.2.4 SIP/2.0\r\n"))


class ReceiveRequestTests(SynchronousTestCase):
    def test_first_request_sets_remote_cseq(self) -> None:
        d = uac_dialog()
        self.assertIs(d.receive_request(in_dialog_request(d, "INFO", 5)), True)
        self.assertEqual(d.remote_cseq, 5)
        self.assertIs(d.receive_request(in_dialog_request(d, "INFO", 7)), True)
        self.assertEqual(d.remote_cseq, 7)

    def test_lower_cseq_is_500(self) -> None:
        d = uac_dialog()
        d.receive_request(in_dialog_request(d, "INFO", 7))
        old = in_dialog_request(d, "INFO", 6)
        result = d.receive_request(old)
        self.assertIsInstance(result, Response)
        assert isinstance(result, Response)
        self.assertEqual(result.status, 500)
        self.assertEqual(result.headers.get("Call-ID"), d.call_id)
        self.assertEqual(result.headers.get("CSeq"), "6 INFO")
        self.assertEqual(d.remote_cseq, 7)

    def test_ack_skips_ordering(self) -> None:
        d = Dialog.from_uas(invite(cseq=10), "uas")
        self.assertIs(d.receive_request(in_dialog_request(d, "UPDATE", 11)), True)
        self.assertIs(d.receive_request(in_dialog_request(d, "ACK", 10)), True)
        self.assertEqual(d.remote_cseq, 11)

    def test_target_refresh(self) -> None:
        d = uac_dialog()
        d.receive_request(in_dialog_request(d, "INVITE", 1, contact="<sip:bob@203.0.113.5:5070>"))
        self.assertEqual(d.remote_target, "sip:bob@203.0.113.5:5070")
        d.receive_request(in_dialog_request(d, "UPDATE", 2, contact="<sip:bob@203.0.113.6>"))
        self.assertEqual(d.remote_target, "sip:bob@203.0.113.6")
        d.receive_request(in_dialog_request(d, "INFO", 3, contact="<sip:bob@203.0.113.7>"))
        self.assertEqual(d.remote_target, "sip:bob@203.0.113.6")  # INFO refreshes nothing
        d.receive_request(in_dialog_request(d, "INVITE", 4))
        self.assertEqual(d.remote_target, "sip:bob@203.0.113.6")  # no Contact, no change
        self.assertEqual(d.create_request("BYE").uri, "sip:bob@203.0.113.6")

    def test_bye_terminates(self) -> None:
        d = uac_dialog()
        self.assertIs(d.receive_request(in_dialog_request(d, "BYE", 1)), True)
        self.assertIs(d.state, DialogState.TERMINATED)

    def test_foreign_request_is_481(self) -> None:
        d = uac_dialog()
        req = in_dialog_request(d, "BYE", 1)
        req.headers.set("To", "<sip:alice@atlanta.com>;tag=someone-else")
        result = d.receive_request(req)
        assert isinstance(result, Response)
        self.assertEqual(result.status, 481)
        self.assertIs(d.state, DialogState.CONFIRMED)


class ReceiveResponseTests(SynchronousTestCase):
    def test_early_then_confirmed_recomputes_route_set(self) -> None:
        req = invite()
        d = Dialog.from_uac(req, response_to(req, 183, extra=(("Record-Route", "<sip:early.example.com;lr>"),)))
        self.assertIs(d.state, DialogState.EARLY)
        self.assertTrue(d.receive_response(response_to(req, 180, contact="<sip:bob@192.0.2.5>")))
        self.assertEqual(d.remote_target, "sip:bob@192.0.2.5")
        ok = response_to(req, 200, contact="<sip:bob@192.0.2.6>", extra=(
            ("Record-Route", "<sip:p1.example.com;lr>"), ("Record-Route", "<sip:p2.example.com;lr>")))
        self.assertTrue(d.receive_response(ok))
        self.assertIs(d.state, DialogState.CONFIRMED)
        self.assertEqual(d.route_set, ["<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>"])
        self.assertEqual(d.remote_target, "sip:bob@192.0.2.6")

    def test_early_dialog_ends_on_failure(self) -> None:
        req = invite()
        d = Dialog.from_uac(req, response_to(req, 180))
        d.receive_response(response_to(req, 486, "Busy Here"))
        self.assertIs(d.state, DialogState.TERMINATED)

    def test_forked_response_of_other_dialog_ignored(self) -> None:
        req = invite()
        d = Dialog.from_uac(req, response_to(req, 180))
        self.assertFalse(d.receive_response(response_to(req, 200, to_tag="other-fork")))
        self.assertIs(d.state, DialogState.EARLY)

    def _response_in_dialog(self, d: Dialog, request: Request, status: int, contact: str | None = None) -> Response:
        headers = [(n, v) for n, v in request.headers if n in ("From", "To", "Call-ID", "CSeq")]
        if contact:
            headers.append(("Contact", contact))
        return Response(status, "X", headers)

    def test_2xx_to_reinvite_refreshes_target_and_failed_reinvite_keeps_dialog(self) -> None:
        d = uac_dialog()
        reinvite = d.create_request("INVITE")
        d.receive_response(self._response_in_dialog(d, reinvite, 488))
        self.assertIs(d.state, DialogState.CONFIRMED)
        d.receive_response(self._response_in_dialog(d, reinvite, 200, "<sip:bob@203.0.113.9>"))
        self.assertEqual(d.remote_target, "sip:bob@203.0.113.9")

    def test_481_and_408_terminate(self) -> None:
        for status in (481, 408):
            d = uac_dialog()
            info = d.create_request("INFO")
            d.receive_response(self._response_in_dialog(d, info, status))
            self.assertIs(d.state, DialogState.TERMINATED)

    def test_bye_answer_terminates(self) -> None:
        d = uac_dialog()
        bye = d.create_request("BYE")
        d.receive_response(self._response_in_dialog(d, bye, 200))
        self.assertIs(d.state, DialogState.TERMINATED)


class HelperTests(SynchronousTestCase):
    def test_split_header_list(self) -> None:
        self.assertEqual(
            split_header_list('<sip:a;lr>, "x, \\"y\\"" <sip:b?h=1,2>;p=1 ,<sip:c>'),
            ["<sip:a;lr>", '"x, \\"y\\"" <sip:b?h=1,2>;p=1', "<sip:c>"],
        )
        self.assertEqual(split_header_list(""), [])

    def test_format_name_addr(self) -> None:
        self.assertEqual(format_name_addr("sip:a@b"), "<sip:a@b>")
        self.assertEqual(format_name_addr("sip:a@b", 'A "B"', "t"), '"A \\"B\\"" <sip:a@b>;tag=t')
