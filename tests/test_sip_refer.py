"""REFER and its NOTIFYs both ways on both INVITE sessions, and the helpers of
wcsgw.sip.refer (Replaces, Refer-To escaping, sipfrag); sans-IO, explicit now."""

from __future__ import annotations

from typing import Callable

from twisted.trial import unittest

from tests.test_sip_reinvite import TIMEOUT, FixedRng, Side, uac, uas
from wcsgw.sip.dialog import Dialog
from wcsgw.sip.invite import Ended
from wcsgw.sip.message import Request
from wcsgw.sip.refer import (
    parse_replaces,
    parse_sipfrag,
    refer_to_value,
    replaces_param,
    sipfrag_body,
    split_refer_to,
)
from wcsgw.sip.session import (
    REFER_EXPIRES,
    ReferAccepted,
    ReferFailed,
    ReferProgress,
    ReferReceived,
)

SIPFRAG = "message/sipfrag;version=2.0"


class HelperTests(unittest.TestCase):
    def dialog(self) -> Dialog:
        return Dialog(call_id="a84b4c76e66710@pc33.example.com", local_tag="1928301774",
                      remote_tag="a6c85cf", local_uri="sip:alice@example.com",
                      remote_uri="sip:bob@example.com", remote_target="sip:bob@192.0.2.4")

    def test_replaces_param_names_the_dialog_from_the_other_end(self) -> None:
        # RFC 3891 §6.1: to-tag is the tag of the UA receiving the Replaces (our peer).
        self.assertEqual(replaces_param(self.dialog()),
                         "a84b4c76e66710@pc33.example.com;to-tag=a6c85cf;from-tag=1928301774")

    def test_refer_to_blind_and_attended(self) -> None:
        self.assertEqual(refer_to_value("sip:1003@127.0.0.1:5060"), "<sip:1003@127.0.0.1:5060>")
        self.assertEqual(
            refer_to_value("sip:carol@example.com", replaces_param(self.dialog())),
            "<sip:carol@example.com?Replaces=a84b4c76e66710%40pc33.example.com"
            "%3Bto-tag%3Da6c85cf%3Bfrom-tag%3D1928301774>")
        self.assertEqual(refer_to_value("tel:+4930123"), "<tel:+4930123>")
        with self.assertRaises(ValueError):
            refer_to_value("tel:+4930123", "x;to-tag=a;from-tag=b")
        with self.assertRaises(ValueError):
            refer_to_value("not a uri")

    def test_split_refer_to(self) -> None:
        value = refer_to_value("sip:carol@example.com;transport=tcp", "c@h;to-tag=t;from-tag=f")
        self.assertEqual(split_refer_to(value),
                         ("sip:carol@example.com;transport=tcp", "c@h;to-tag=t;from-tag=f"))
        self.assertEqual(split_refer_to('"Carol" <sip:carol@example.com?X-Y=1>'),
                         ("sip:carol@example.com?X-Y=1", None))
        self.assertEqual(split_refer_to("sip:carol@example.com"), ("sip:carol@example.com", None))
        with self.assertRaises(ValueError):
            split_refer_to("<>")

    def test_parse_replaces(self) -> None:
        self.assertEqual(parse_replaces("c@h;to-tag=t;from-tag=f"), ("c@h", "t", "f"))
        self.assertEqual(parse_replaces("c%40h%3Bfrom-tag%3Df%3Bto-tag%3Dt%3Bearly-only"),
                         ("c@h", "t", "f"))
        self.assertEqual(parse_replaces(replaces_param(self.dialog())),
                         ("a84b4c76e66710@pc33.example.com", "a6c85cf", "1928301774"))
        for bad in ("c@h;to-tag=t", ";to-tag=t;from-tag=f", "c@h;from-tag=f", "c@h;to-tag=;from-tag=f"):
            with self.assertRaises(ValueError, msg=bad):
                parse_replaces(bad)

    def test_sipfrag(self) -> None:
        self.assertEqual(sipfrag_body(100, "Trying"), b"SIP/2.0 100 Trying\r\n")
        self.assertEqual(sipfrag_body(200, "OK"), b"SIP/2.0 200 OK\r\n")
        self.assertEqual(parse_sipfrag(b"SIP/2.0 180 Ringing\r\n"), (180, "Ringing"))
        self.assertEqual(parse_sipfrag(b"SIP/2.0 200 OK"), (200, "OK"))
        self.assertEqual(parse_sipfrag(b"\r\nSIP/2.0 486 Busy Here\r\nContent-Length: 0\r\n"),
                         (486, "Busy Here"))
        self.assertEqual(parse_sipfrag(b"SIP/2.0 503"), (503, ""))
        self.assertIsNone(parse_sipfrag(b"INVITE sip:bob@example.com SIP/2.0\r\n"))
        self.assertIsNone(parse_sipfrag(b""))
        self.assertIsNone(parse_sipfrag(b"SIP/2.0 99 Low\r\n"))
        with self.assertRaises(ValueError):
            sipfrag_body(99, "x")


# ------------------------------------------------------------------------------ our REFER


class ReferOutTests:
    make: Callable[..., Side]
    first_cseq: int
    assertEqual: Callable[..., None]
    assertIn: Callable[..., None]
    assertTrue: Callable[..., None]
    assertFalse: Callable[..., None]
    assertRaises: Callable[..., object]

    def notify(self, s: Side, body: bytes | None, state: str, event: str = "refer",
               at: float | None = None) -> None:
        extra = [("Event", event), ("Subscription-State", state)]
        request = s.peer_request("NOTIFY", body=body or b"", content_type=SIPFRAG,
                                 extra=tuple(extra))
        s.feed(request, at)

    def test_blind_refer(self) -> None:
        s = self.make()
        s.session.refer("sip:1003@127.0.0.1:5060", 2.0)
        [(refer, target)] = s.sent()
        assert isinstance(refer, Request)
        self.assertEqual(refer.method, "REFER")
        self.assertEqual(target, s.next_hop)
        self.assertEqual(refer.uri, s.remote_target)
        self.assertEqual(refer.cseq, (self.first_cseq, "REFER"))
        self.assertEqual(refer.headers.get("Refer-To"), "<sip:1003@127.0.0.1:5060>")
        self.assertEqual(refer.headers.get("Referred-By"), f"<{s.our_uri_of_dialog()}>")
        self.assertEqual(refer.headers.get("Contact"), f"<{s.session.contact}>")
        self.assertTrue(s.session.refer_in_progress)
        s.reply(refer, 202, at=2.1)
        self.assertEqual(s.events, [ReferAccepted(202)])

        self.notify(s, b"SIP/2.0 100 Trying\r\n", "active;expires=60", at=2.2)
        self.notify(s, b"SIP/2.0 180 Ringing\r\n", "active;expires=60", at=2.3)
        self.notify(s, b"SIP/2.0 200 OK\r\n", "terminated;reason=noresource", at=2.4)
        answers = s.responses()
        self.assertEqual([(r.status, r.cseq[1]) for r in answers], [(200, "NOTIFY")] * 3)
        self.assertEqual(s.events, [
            ReferAccepted(202),
            ReferProgress(100, False, "Trying"),
            ReferProgress(180, False, "Ringing"),
            ReferProgress(200, True, "OK"),
        ])
        self.assertFalse(s.session.refer_in_progress)
        # The subscription's late last words are answered, without an event.
        self.notify(s, b"SIP/2.0 200 OK\r\n", "terminated;reason=noresource", at=2.5)
        self.assertEqual([r.status for r in s.responses()], [200])
        self.assertEqual(len(s.events), 4)

    def test_attended_refer_escapes_replaces(self) -> None:
        s = self.make()
        other = Dialog(call_id="c2@127.0.0.1", local_tag="ours", remote_tag="theirs",
                       local_uri="sip:1001@127.0.0.1", remote_uri="sip:1003@127.0.0.1",
                       remote_target="sip:1003@127.0.0.1:5070")
        s.session.refer("sip:1003@127.0.0.1", 2.0, replaces=replaces_param(other))
        [refer] = s.requests("REFER")
        self.assertEqual(refer.headers.get("Refer-To"),
                         "<sip:1003@127.0.0.1?Replaces=c2%40127.0.0.1%3Bto-tag%3Dtheirs"
                         "%3Bfrom-tag%3Dours>")

    def test_final_failure_status_in_the_sipfrag(self) -> None:
        s = self.make()
        s.session.refer("sip:1003@127.0.0.1", 2.0)
        [refer] = s.requests("REFER")
        s.reply(refer, 202, at=2.1)
        self.notify(s, b"SIP/2.0 486 Busy Here\r\n", "terminated;reason=noresource", at=2.2)
        self.assertEqual(s.events, [ReferAccepted(202), ReferProgress(486, True, "Busy Here")])

    def test_final_status_with_the_subscription_still_active_is_final(self) -> None:
        s = self.make()
        s.session.refer("sip:1003@127.0.0.1", 2.0)
        [refer] = s.requests("REFER")
        s.reply(refer, 202, at=2.1)
        self.notify(s, b"SIP/2.0 200 OK\r\n", "active;expires=30", at=2.2)
        self.assertEqual(s.events[-1], ReferProgress(200, True, "OK"))
        self.assertFalse(s.session.refer_in_progress)

    def test_notify_before_the_202_counts_as_acceptance(self) -> None:
        s = self.make()
        s.session.refer("sip:1003@127.0.0.1", 2.0)
        [refer] = s.requests("REFER")
        self.notify(s, b"SIP/2.0 100 Trying\r\n", "active;expires=60", at=2.05)
        s.reply(refer, 202, at=2.1)
        self.assertEqual(s.events, [ReferAccepted(202), ReferProgress(100, False, "Trying")])

    def test_refer_refused(self) -> None:
        s = self.make()
        s.session.refer("sip:1003@127.0.0.1", 2.0)
        [refer] = s.requests("REFER")
        s.reply(refer, 603, at=2.1)
        self.assertEqual(s.events, [ReferFailed(603, "603 Decline")])
        self.assertFalse(s.session.refer_in_progress)
        self.assertFalse(s.session.terminated)
        s.session.refer("sip:1004@127.0.0.1", 3.0)  # another may go
        [again] = s.requests("REFER")
        self.assertEqual(again.cseq, (self.first_cseq + 1, "REFER"))

    def test_refer_481_ends_the_call(self) -> None:
        s = self.make()
        s.session.refer("sip:1003@127.0.0.1", 2.0)
        [refer] = s.requests("REFER")
        s.reply(refer, 481, at=2.1)
        text = "481 Call/Transaction Does Not Exist"
        self.assertEqual(s.events, [ReferFailed(481, text), Ended(text, by_remote=True)])

    def test_refer_unanswered(self) -> None:
        s = self.make()
        s.session.refer("sip:1003@127.0.0.1", 2.0)
        s.advance(2.0 + TIMEOUT)
        self.assertEqual(s.events, [ReferFailed(None, "Failed by request timeout")])
        self.assertFalse(s.session.terminated)

    def test_no_final_notify_within_the_expiry(self) -> None:
        s = self.make()
        s.session.refer("sip:1003@127.0.0.1", 2.0)
        [refer] = s.requests("REFER")
        s.reply(refer, 202, at=2.1)
        self.assertEqual(s.ep.next_deadline() is not None, True)  # type: ignore[attr-defined]
        self.notify(s, b"SIP/2.0 100 Trying\r\n", "active;expires=20", at=3.0)
        s.advance(3.0 + 20 + TIMEOUT - 0.01)
        self.assertEqual(s.events, [ReferAccepted(202), ReferProgress(100, False, "Trying")])
        s.advance(3.0 + 20 + TIMEOUT)
        self.assertEqual(s.events[-1], ReferFailed(None, "no final NOTIFY for the transfer"))
        self.assertFalse(s.session.refer_in_progress)

    def test_default_expiry_without_notify(self) -> None:
        s = self.make()
        s.session.refer("sip:1003@127.0.0.1", 2.0)
        [refer] = s.requests("REFER")
        s.reply(refer, 202, at=2.1)
        s.advance(2.1 + REFER_EXPIRES + TIMEOUT - 0.01)
        self.assertEqual(s.events, [ReferAccepted(202)])
        s.advance(2.1 + REFER_EXPIRES + TIMEOUT)
        self.assertEqual(s.events[-1], ReferFailed(None, "no final NOTIFY for the transfer"))

    def test_terminated_without_sipfrag(self) -> None:
        s = self.make()
        s.session.refer("sip:1003@127.0.0.1", 2.0)
        [refer] = s.requests("REFER")
        s.reply(refer, 202, at=2.1)
        self.notify(s, None, "terminated;reason=timeout", at=2.2)
        self.assertEqual(s.events[-1],
                         ReferFailed(None, "transfer subscription ended without a final status"))

    def test_one_refer_at_a_time(self) -> None:
        s = self.make()
        s.session.refer("sip:1003@127.0.0.1", 2.0)
        with self.assertRaises(RuntimeError):
            s.session.refer("sip:1004@127.0.0.1", 2.1)
        with self.assertRaises(ValueError):
            self.make().session.refer("nonsense", 2.1)

    def test_notify_of_other_events_and_without_refer(self) -> None:
        s = self.make()
        self.notify(s, b"SIP/2.0 200 OK\r\n", "active", at=2.0)
        self.notify(s, b"", "active", event="presence", at=2.1)
        self.assertEqual([r.status for r in s.responses()], [481, 489])
        self.assertEqual(s.events, [])


def _our_uri_of_dialog(self: Side) -> str:
    assert self.session.dialog is not None
    return self.session.dialog.local_uri


Side.our_uri_of_dialog = _our_uri_of_dialog  # type: ignore[attr-defined]


class UacReferOutTests(ReferOutTests, unittest.TestCase):
    make = staticmethod(uac)
    first_cseq = 2


class UasReferOutTests(ReferOutTests, unittest.TestCase):
    make = staticmethod(uas)
    first_cseq = 1


# ---------------------------------------------------------------------------- their REFER


class ReferInTests:
    make: Callable[..., Side]
    first_cseq: int
    assertEqual: Callable[..., None]
    assertIsNone: Callable[..., None]
    assertTrue: Callable[..., None]
    assertFalse: Callable[..., None]
    assertRaises: Callable[..., object]

    def refer(self, s: Side, refer_to: str, at: float,
              extra: tuple[tuple[str, str], ...] = (
                  ("Referred-By", "<sip:1002@127.0.0.1>"),)) -> Request:
        request = s.peer_request("REFER", extra=(("Refer-To", refer_to), *extra),
                                 contact=s.peer_contact)
        s.feed(request, at)
        return request

    def test_blind_refer_accepted_and_notified(self) -> None:
        s = self.make()
        refer = self.refer(s, "<sip:1003@127.0.0.1:5060>", 2.0)
        self.assertEqual(s.events, [ReferReceived("sip:1003@127.0.0.1:5060", None,
                                                  "<sip:1002@127.0.0.1>")])
        self.assertEqual(s.responses(), [])
        s.session.accept_refer(2.1)
        sent = s.sent()
        accepted = [m for m, _ in sent if not isinstance(m, Request)]
        notifies = [(m, t) for m, t in sent if isinstance(m, Request)]
        [ok] = accepted
        self.assertEqual((ok.status, ok.reason, ok.cseq), (202, "Accepted", refer.cseq))
        self.assertEqual(ok.headers.get("Contact"), f"<{s.session.contact}>")
        [(trying, target)] = notifies
        self.assertEqual(trying.method, "NOTIFY")
        self.assertEqual(target, s.next_hop)
        self.assertEqual(trying.cseq, (self.first_cseq, "NOTIFY"))
        self.assertEqual(trying.headers.get("Event"), "refer")
        self.assertEqual(trying.headers.get("Subscription-State"), "active;expires=60")
        self.assertEqual(trying.headers.get("Content-Type"), "message/sipfrag;version=2.0")
        self.assertEqual(trying.headers.get("Contact"), f"<{s.session.contact}>")
        self.assertEqual(trying.body, b"SIP/2.0 100 Trying\r\n")

        s.session.notify_refer(180, "Ringing", 3.0)
        s.session.notify_refer(200, "OK", 4.0)
        ringing, done = s.requests("NOTIFY")
        self.assertEqual(ringing.cseq, (self.first_cseq + 1, "NOTIFY"))
        self.assertEqual(ringing.body, b"SIP/2.0 180 Ringing\r\n")
        self.assertEqual(ringing.headers.get("Subscription-State"), "active;expires=60")
        self.assertEqual(done.cseq, (self.first_cseq + 2, "NOTIFY"))
        self.assertEqual(done.body, b"SIP/2.0 200 OK\r\n")
        self.assertEqual(done.headers.get("Subscription-State"), "terminated;reason=noresource")
        with self.assertRaises(RuntimeError):
            s.session.notify_refer(200, "OK", 4.1)
        s.reply(done, 200, at=4.2)
        self.assertEqual(len(s.events), 1)

    def test_attended_refer_replaces(self) -> None:
        s = self.make()
        self.refer(s, "<sip:1003@127.0.0.1?Replaces=c2%40127.0.0.1%3Bto-tag%3Dtheirs"
                      "%3Bfrom-tag%3Dours>", 2.0, extra=())
        self.assertEqual(s.events, [ReferReceived(
            "sip:1003@127.0.0.1",
            {"call_id": "c2@127.0.0.1", "to_tag": "theirs", "from_tag": "ours",
             "early_only": False},
            None)])

    def test_second_refer_notifies_with_its_id(self) -> None:
        s = self.make()
        self.refer(s, "<sip:1003@127.0.0.1>", 2.0)
        s.session.accept_refer(2.1, notify_trying=False)
        s.session.notify_refer(503, "Service Unavailable", 2.2)
        s.sent()
        second = self.refer(s, "<sip:1004@127.0.0.1>", 3.0)
        s.session.accept_refer(3.1)
        [notify] = s.requests("NOTIFY")
        self.assertEqual(notify.headers.get("Event"), f"refer;id={second.cseq[0]}")

    def test_reject_refer(self) -> None:
        s = self.make()
        refer = self.refer(s, "<sip:1003@127.0.0.1>", 2.0)
        s.session.reject_refer(603, 2.1)
        [refused] = s.responses()
        self.assertEqual((refused.status, refused.cseq), (603, refer.cseq))
        with self.assertRaises(RuntimeError):
            s.session.accept_refer(2.2)
        with self.assertRaises(ValueError):
            s.session.reject_refer(202, 2.2)

    def test_malformed_refers_400(self) -> None:
        s = self.make()
        s.feed(s.peer_request("REFER"), at=2.0)
        self.refer(s, "<sip:1003@127.0.0.1?Replaces=c2%3Bto-tag%3Dx>", 2.1)
        request = s.peer_request("REFER", extra=(("Refer-To", "<sip:a@b>"), ("Refer-To", "<sip:c@d>")))
        s.feed(request, at=2.2)
        self.assertEqual([r.status for r in s.responses()], [400, 400, 400])
        self.assertEqual(s.events, [])

    def test_refer_while_one_is_pending_500_retry_after(self) -> None:
        s = self.make()
        s.session.rng = FixedRng(4)
        self.refer(s, "<sip:1003@127.0.0.1>", 2.0)
        self.refer(s, "<sip:1004@127.0.0.1>", 2.1)
        [busy] = s.responses()
        self.assertEqual((busy.status, busy.headers.get("Retry-After")), (500, "4"))
        self.assertEqual(len(s.events), 1)

    def test_unanswered_refer_refused_500(self) -> None:
        s = self.make()
        self.refer(s, "<sip:1003@127.0.0.1>", 2.0)
        s.advance(2.0 + TIMEOUT / 2 - 0.01)
        self.assertEqual(s.responses(), [])
        out = s.advance(2.0 + TIMEOUT / 2)
        self.assertEqual([m.status for _, m in out], [500])  # type: ignore[union-attr]

    def test_subscription_runs_out_without_a_final_report(self) -> None:
        s = self.make()
        self.refer(s, "<sip:1003@127.0.0.1>", 2.0)
        s.session.accept_refer(2.1)
        s.session.notify_refer(180, "Ringing", 10.0)
        for notify in s.requests("NOTIFY"):
            s.reply(notify, 200, at=10.1)  # answered: no retransmissions from here on
        out = s.advance(10.0 + REFER_EXPIRES - 0.01)
        self.assertEqual([m for _, m in out if isinstance(m, Request)], [])
        out = s.advance(10.0 + REFER_EXPIRES)
        [notify] = [m for _, m in out if isinstance(m, Request)]
        self.assertEqual(notify.headers.get("Subscription-State"), "terminated;reason=timeout")
        self.assertEqual(notify.body, b"SIP/2.0 180 Ringing\r\n")

    def test_transferor_hangs_up_before_our_final_notify(self) -> None:
        s = self.make()
        self.refer(s, "<sip:1003@127.0.0.1>", 2.0)
        s.session.accept_refer(2.1)
        s.feed(s.peer_request("BYE"), at=2.2)
        s.sent()
        s.session.notify_refer(200, "OK", 3.0)  # the new call came up later: no dialog left
        s.session.accept_refer(3.0)
        s.session.reject_refer(603, 3.0)
        self.assertEqual(s.sent(), [])

    def test_bye_with_a_refer_unanswered_gets_it_487(self) -> None:
        s = self.make()
        self.refer(s, "<sip:1003@127.0.0.1>", 2.0)
        s.feed(s.peer_request("BYE"), at=2.1)
        self.assertEqual(sorted((r.status, r.cseq[1]) for r in s.responses()),
                         [(200, "BYE"), (487, "REFER")])
        self.assertTrue(s.session.terminated)


class UacReferInTests(ReferInTests, unittest.TestCase):
    make = staticmethod(uac)
    first_cseq = 2


class UasReferInTests(ReferInTests, unittest.TestCase):
    make = staticmethod(uas)
    first_cseq = 1
