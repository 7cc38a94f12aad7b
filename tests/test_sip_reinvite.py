"""re-INVITE both ways, on both INVITE sessions, sans-IO: bytes in, bytes out, explicit now.

Each scenario runs on an :class:`OutgoingInvite` that is up (we called, through a
Record-Routing proxy: in-dialog requests carry a Route) and on an :class:`IncomingInvite` that
is up (we were called straight, no route set), through a real :class:`SipEndpoint` with its
transaction layer.  The peer's side is played with requests built here and responses made from
what the session actually sent; the assertions are on the parsed messages that come out, when
they come out, and on the events.  The harness (:class:`Side`, :func:`uac`, :func:`uas`) is
shared with the INFO and REFER tests.
"""

from __future__ import annotations

import random
from typing import Callable

from twisted.trial import unittest

from tests.test_sip_invite import CALLEE_CONTACT, CallHarness
from tests.test_sip_uas import CALLER, CALLER_CONTACT, UasHarness
from wcsgw.sip.account import SipAccount
from wcsgw.sip.dialog import DialogState
from wcsgw.sip.dialogs import DialogRouter
from wcsgw.sip.digest import DigestClient
from wcsgw.sip.invite import Ended, OutgoingInvite
from wcsgw.sip.message import Request, Response
from wcsgw.sip.parser import parse_message
from wcsgw.sip.responses import make_response
from wcsgw.sip.session import (
    MAX_GLARE_RETRIES,
    REASON_ACK_TIMEOUT,
    REASON_TIMEOUT,
    IncomingInvites,
    InfoAnswered,
    ReferAccepted,
    ReinviteAnswered,
    ReinviteCancelled,
    ReinviteConfirmed,
    ReinviteFailed,
    ReinviteOffered,
)
from wcsgw.sip.target import Target
from wcsgw.sip.uas import IncomingInvite

T1 = 0.5
T2 = 4.0
TIMEOUT = 64 * T1
PROXY = Target("UDP", "127.0.0.1", 5060)
RECORD_ROUTE = "<sip:127.0.0.1:5060;lr>"
OUR_CONTACT = "<sip:1001@127.0.0.1:5099>"

HOLD = (
    b"v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendonly\r\n"
)
HELD = (
    b"v=0\r\no=- 2 3 IN IP4 192.0.2.20\r\ns=-\r\nc=IN IP4 192.0.2.20\r\nt=0 0\r\n"
    b"m=audio 50000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=recvonly\r\n"
)
MOVED = (
    b"v=0\r\no=- 2 4 IN IP4 192.0.2.30\r\ns=-\r\nc=IN IP4 192.0.2.30\r\nt=0 0\r\n"
    b"m=audio 52000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
)


class FixedRng(random.Random):
    """``randint`` returns the given values in turn (then the low bound), checking each lies
    in the range asked for, and records the ranges: exact glare and Retry-After values."""

    def __init__(self, *values: int) -> None:
        super().__init__(0)
        self.values = list(values)
        self.ranges: list[tuple[int, int]] = []

    def randint(self, a: int, b: int) -> int:
        self.ranges.append((a, b))
        value = self.values.pop(0) if self.values else a
        assert a <= value <= b, (value, a, b)
        return value


class Side:
    """An INVITE session that is up, and the peer's end of its dialog."""

    session: OutgoingInvite | IncomingInvite

    def __init__(self, ep: object, events: list[object], peer_source: Target, peer_uri: str,
                 peer_tag: str, our_uri: str, our_target_uri: str, peer_contact: str,
                 next_hop: Target, peer_cseq: int) -> None:
        self.ep = ep  # type: ignore[assignment]
        self.events = events
        self.peer_source = peer_source
        self.peer_uri = peer_uri
        self.peer_tag = peer_tag
        self.our_uri = our_uri
        self.our_target_uri = our_target_uri
        self.peer_contact = peer_contact
        #: where our in-dialog requests go (the proxy, or the peer itself)
        self.next_hop = next_hop
        self.peer_cseq = peer_cseq
        self.now = 1.0
        self._branch = 0
        self.ep.take_outgoing()  # type: ignore[attr-defined]

    # -- the wire --

    def feed(self, msg: Request | Response, at: float | None = None) -> None:
        if at is not None:
            self.now = at
        self.ep.receive_bytes(msg.to_bytes(), self.peer_source, self.now)  # type: ignore[attr-defined]

    def sent(self) -> list[tuple[Request | Response, Target]]:
        return [(parse_message(d), t) for d, t in self.ep.take_outgoing()]  # type: ignore[attr-defined]

    def requests(self, method: str | None = None) -> list[Request]:
        return [m for m, _ in self.sent()
                if isinstance(m, Request) and (method is None or m.method == method)]

    def responses(self) -> list[Response]:
        return [m for m, _ in self.sent() if isinstance(m, Response)]

    def advance(self, until: float) -> list[tuple[float, Request | Response]]:
        """Fire every endpoint deadline up to ``until`` in order; what went out, and when."""
        out: list[tuple[float, Request | Response]] = [(self.now, m) for m, _ in self.sent()]
        while True:
            deadline = self.ep.next_deadline()  # type: ignore[attr-defined]
            if deadline is None or deadline > until:
                break
            self.now = max(self.now, deadline)
            self.ep.handle_timer(self.now)  # type: ignore[attr-defined]
            out += [(self.now, m) for m, _ in self.sent()]
        self.now = until
        return out

    # -- the peer --

    def peer_request(self, method: str, *, body: bytes = b"", content_type: str | None = None,
                     contact: str | None = None, extra: tuple[tuple[str, str], ...] = (),
                     cseq: int | None = None) -> Request:
        """A request of the peer in our dialog (Contact on target refresh requests)."""
        self._branch += 1
        if cseq is None:
            self.peer_cseq += 1
            cseq = self.peer_cseq
        headers = [
            ("Via", f"SIP/2.0/UDP {self.peer_source.host}:{self.peer_source.port}"
                    f";branch=z9hG4bKpeer{self._branch}"),
            ("Max-Forwards", "70"),
            ("From", f"<{self.peer_uri}>;tag={self.peer_tag}"),
            ("To", f"<{self.our_uri}>;tag={self.session.local_tag}"),
            ("Call-ID", self.session.call_id),
            ("CSeq", f"{cseq} {method}"),
        ]
        if method in ("INVITE", "UPDATE", "NOTIFY") or contact is not None:
            headers.append(("Contact", contact or self.peer_contact))
        if body:
            headers.append(("Content-Type", content_type or "application/sdp"))
        headers += list(extra)
        return Request(method, self.our_target_uri, headers, body)

    def peer_ack(self, invite: Request, body: bytes = b"") -> Request:
        """The peer's ACK of our 2xx to its re-INVITE ``invite``."""
        self._branch += 1
        headers = [
            ("Via", f"SIP/2.0/UDP {self.peer_source.host}:{self.peer_source.port}"
                    f";branch=z9hG4bKpeerack{self._branch}"),
            ("Max-Forwards", "70"),
            ("From", invite.headers.get("From") or ""),
            ("To", f"<{self.our_uri}>;tag={self.session.local_tag}"),
            ("Call-ID", invite.call_id),
            ("CSeq", f"{invite.cseq[0]} ACK"),
        ]
        if body:
            headers.append(("Content-Type", "application/sdp"))
        return Request("ACK", self.our_target_uri, headers, body)

    def peer_cancel(self, invite: Request) -> Request:
        headers = [
            ("Via", invite.headers.get("Via") or ""),
            ("Max-Forwards", "70"),
            ("From", invite.headers.get("From") or ""),
            ("To", invite.headers.get("To") or ""),
            ("Call-ID", invite.call_id),
            ("CSeq", f"{invite.cseq[0]} CANCEL"),
        ]
        return Request("CANCEL", invite.uri, headers)

    def reply(self, request: Request, status: int, *, body: bytes | None = None,
              content_type: str = "application/sdp", contact: str | None = None,
              extra: tuple[tuple[str, str], ...] = (), at: float | None = None) -> Response:
        """The peer's answer to a request we sent in the dialog."""
        response = make_response(request, status, headers=extra)
        if contact is not None:
            response.headers.add("Contact", contact)
        if body is not None:
            response.headers.add("Content-Type", content_type)
            response.body = body
        self.feed(response, at)
        return response

    @property
    def remote_target(self) -> str:
        assert self.session.dialog is not None
        return self.session.dialog.remote_target


def uac(rng: random.Random | None = None) -> Side:
    """We called 1002 through a proxy that Record-Routes; the call is up (CSeq 1 used)."""
    h = CallHarness(rng=rng or FixedRng())
    h.answered(record_route=(RECORD_ROUTE,))
    side = Side(h.ep, h.events, PROXY, "sip:1002@127.0.0.1", "b1", "sip:1001@127.0.0.1",
                "sip:1001@127.0.0.1:5099", CALLEE_CONTACT, PROXY, peer_cseq=0)
    side.session = h.call
    h.events.clear()
    return side


def uas(rng: random.Random | None = None, *, digest: DigestClient | None = None,
        account: SipAccount | None = None,
        taker: Callable[[UasHarness], object] | None = None) -> Side:
    """alice called echo straight (no route set); answered and ACKed (her CSeq was 7).
    ``digest``/``account``: the session's credentials for challenged requests, and the
    account whose servers may be answered; ``taker``: the handler that makes the
    IncomingInvite from the harness (default: one made here)."""
    h = UasHarness()
    h.ep.handlers = [x for x in h.ep.handlers if not hasattr(x, "harness")]

    class Taker:
        def handle_request(self, request: Request, transaction: object, source: Target,
                           now: float) -> bool:
            if request.method != "INVITE" or request.to.tag:
                return False
            h.sessions.append(IncomingInvite(h.ep, request, transaction,  # type: ignore[arg-type]
                                             listener=h.events.append, rng=rng or FixedRng(),
                                             digest=digest, account=account))
            return True

    h.ep.handlers.append(taker(h) if taker is not None else Taker())
    h.answered()
    h.feed(h.ack(), at=0.1)
    side = Side(h.ep, h.events, CALLER, "sip:alice@127.0.0.1", h.from_tag,
                "sip:echo@127.0.0.1:5099", "sip:echo@127.0.0.1:5099", CALLER_CONTACT,
                CALLER, peer_cseq=7)
    side.session = h.session
    h.events.clear()
    return side


SIDES: dict[str, Callable[..., Side]] = {"uac": uac, "uas": uas}


# ---------------------------------------------------------------------------- our re-INVITE


class ReinviteOutTests:
    """Our re-INVITE; run for each side by the subclasses below."""

    make: Callable[..., Side]
    first_cseq: int  # the CSeq of our first in-dialog request
    assertEqual: Callable[..., None]
    assertIs: Callable[..., None]
    assertIsNone: Callable[..., None]
    assertRaises: Callable[..., object]
    assertTrue: Callable[..., None]
    assertFalse: Callable[..., None]

    def test_reinvite_request(self) -> None:
        s = self.make()
        s.session.reinvite(HOLD, 2.0)
        sent = s.sent()
        [(invite, target)] = sent
        assert isinstance(invite, Request)
        self.assertEqual(invite.method, "INVITE")
        self.assertEqual(target, s.next_hop)
        self.assertEqual(invite.uri, s.remote_target)
        self.assertEqual(invite.cseq, (self.first_cseq, "INVITE"))
        self.assertEqual(invite.call_id, s.session.call_id)
        self.assertEqual(invite.from_.tag, s.session.local_tag)
        self.assertEqual(invite.to.tag, s.peer_tag)
        self.assertEqual(invite.headers.get("Contact"), f"<{s.session.contact}>")
        self.assertEqual(invite.headers.get("Content-Type"), "application/sdp")
        self.assertIn("REFER", ", ".join(invite.headers.get_all("Allow")))
        self.assertEqual(invite.body, HOLD)
        self.assertTrue(s.session.reinvite_in_progress)
        self.assertEqual(s.events, [])

    def test_2xx_acked_answered_and_target_refreshed(self) -> None:
        s = self.make()
        s.session.reinvite(HOLD, 2.0)
        [invite] = s.requests("INVITE")
        s.reply(invite, 100, at=2.05)
        self.assertEqual(s.remote_target, parse_contact(s.peer_contact))  # not on a 1xx
        ok = s.reply(invite, 200, body=HELD, contact="<sip:moved@192.0.2.99:5080>", at=2.1)
        [(ack, target)] = s.sent()
        assert isinstance(ack, Request)
        self.assertEqual(ack.method, "ACK")
        self.assertEqual(ack.cseq, (self.first_cseq, "ACK"))
        self.assertEqual(ack.uri, "sip:moved@192.0.2.99:5080")  # the refreshed target
        self.assertEqual(target, s.next_hop if s.next_hop == PROXY else
                         Target("UDP", "192.0.2.99", 5080))
        self.assertEqual(s.remote_target, "sip:moved@192.0.2.99:5080")
        self.assertEqual(s.events, [ReinviteAnswered(HELD)])
        self.assertFalse(s.session.reinvite_in_progress)
        # The 2xx again (our ACK was lost): the same ACK again, no new event.
        s.feed(ok, at=2.6)
        [(again, _)] = s.sent()
        self.assertEqual(again.to_bytes(), ack.to_bytes())
        self.assertEqual(s.events, [ReinviteAnswered(HELD)])

    def test_one_at_a_time_and_cseq_increments(self) -> None:
        s = self.make()
        s.session.reinvite(HOLD, 2.0)
        [first] = s.requests("INVITE")
        with self.assertRaises(RuntimeError):  # type: ignore[attr-defined]
            s.session.reinvite(MOVED, 2.1)
        s.reply(first, 200, body=HELD, at=2.2)
        s.session.reinvite(MOVED, 3.0)
        [second] = s.requests("INVITE")
        self.assertEqual(second.cseq, (self.first_cseq + 1, "INVITE"))
        self.assertEqual(second.body, MOVED)

    def test_refused_leaves_the_session_as_it_was(self) -> None:
        s = self.make()
        before = s.remote_target
        s.session.reinvite(HOLD, 2.0)
        [invite] = s.requests("INVITE")
        s.reply(invite, 488, contact="<sip:moved@192.0.2.99:5080>", at=2.1)
        # The transaction ACKs a non-2xx itself: same branch, the INVITE's CSeq (§17.1.1.3).
        [ack] = s.requests("ACK")
        self.assertEqual(ack.top_via.branch, invite.top_via.branch)
        self.assertEqual(ack.cseq, (self.first_cseq, "ACK"))
        self.assertEqual(s.events, [ReinviteFailed(488, "488 Not Acceptable Here")])
        self.assertEqual(s.remote_target, before)
        self.assertFalse(s.session.terminated)
        self.assertIs(s.session.dialog.state, DialogState.CONFIRMED)  # type: ignore[union-attr]
        s.session.reinvite(HOLD, 3.0)  # and the next one may go
        self.assertEqual([r.cseq for r in s.requests("INVITE")], [(self.first_cseq + 1, "INVITE")])

    def test_481_ends_the_call_without_bye(self) -> None:
        s = self.make()
        s.session.reinvite(HOLD, 2.0)
        [invite] = s.requests("INVITE")
        s.reply(invite, 481, at=2.1)
        text = "481 Call/Transaction Does Not Exist"
        self.assertEqual(s.events, [ReinviteFailed(481, text), Ended(text, by_remote=True)])
        self.assertEqual(s.requests("BYE"), [])
        self.assertTrue(s.session.terminated)
        self.assertEqual(len(DialogRouter.install(s.ep)), 0)  # type: ignore[arg-type]
        self.assertEqual(s.ep.timed_users, [])  # type: ignore[attr-defined]

    def test_408_ends_the_call_with_bye(self) -> None:
        s = self.make()
        s.session.reinvite(HOLD, 2.0)
        [invite] = s.requests("INVITE")
        s.reply(invite, 408, at=2.1)
        text = "408 Request Timeout"
        self.assertEqual(s.events, [ReinviteFailed(408, text), Ended(text, by_remote=True)])
        [bye] = s.requests("BYE")
        self.assertEqual(bye.cseq, (self.first_cseq + 1, "BYE"))
        self.assertTrue(s.session.terminated)

    def test_no_answer_at_all_ends_the_call_at_timer_b(self) -> None:
        s = self.make()
        s.session.reinvite(HOLD, 2.0)
        out = s.advance(2.0 + TIMEOUT - 0.01)
        self.assertEqual({m.method for _, m in out}, {"INVITE"})  # retransmissions only
        self.assertEqual(s.events, [])
        out = s.advance(2.0 + TIMEOUT)
        self.assertEqual([m.method for _, m in out if isinstance(m, Request)], ["BYE"])
        self.assertEqual(s.events, [ReinviteFailed(None, REASON_TIMEOUT),
                                    Ended(REASON_TIMEOUT, by_remote=True)])

    def test_only_provisionals_for_64_t1_cancels_and_the_487_is_the_failure(self) -> None:
        s = self.make()
        s.session.reinvite(HOLD, 2.0)
        [invite] = s.requests("INVITE")
        s.reply(invite, 100, at=2.1)
        out = s.advance(2.0 + TIMEOUT - 0.01)
        self.assertEqual(out, [])
        out = s.advance(2.0 + TIMEOUT)
        [(when, cancel)] = out
        assert isinstance(cancel, Request)
        self.assertEqual((when, cancel.method), (2.0 + TIMEOUT, "CANCEL"))
        self.assertEqual(cancel.top_via.branch, invite.top_via.branch)
        self.assertEqual(cancel.cseq, (self.first_cseq, "CANCEL"))
        s.reply(invite, 487, at=2.0 + TIMEOUT + 0.1)
        self.assertEqual(s.events, [ReinviteFailed(487, "487 Request Terminated")])
        self.assertFalse(s.session.terminated)
        self.assertFalse(s.session.reinvite_in_progress)

    def test_cancelled_reinvite_without_any_final_ends_the_call(self) -> None:
        s = self.make()
        s.session.reinvite(HOLD, 2.0)
        [invite] = s.requests("INVITE")
        s.reply(invite, 100, at=2.1)
        s.advance(2.0 + TIMEOUT)  # the CANCEL
        out = s.advance(2.0 + 2 * TIMEOUT - 0.01)
        self.assertEqual({m.method for _, m in out if isinstance(m, Request)}, {"CANCEL"})
        self.assertEqual(s.events, [])
        layer_size = len(s.ep.layer)  # type: ignore[attr-defined]
        out = s.advance(2.0 + 2 * TIMEOUT)
        self.assertEqual([m.method for _, m in out if isinstance(m, Request)], ["BYE"])
        self.assertEqual(s.events, [ReinviteFailed(None, REASON_TIMEOUT),
                                    Ended(REASON_TIMEOUT, by_remote=True)])
        # The INVITE transaction (stuck in Proceeding) was given up, not leaked.
        self.assertLessEqual(len(s.ep.layer), layer_size)  # type: ignore[attr-defined]
        self.assertTrue(all(t.request.method != "INVITE"  # type: ignore[attr-defined]
                            for t in s.ep.layer._clients.values()))  # type: ignore[attr-defined]

    def test_491_retries_are_bounded_then_a_failure(self) -> None:
        """A peer that answers every offer 491: MAX_GLARE_RETRIES back-offs and re-sends,
        then the next 491 is a plain refusal; the call stays up and a new offer may go."""
        s = self.make()
        s.session.reinvite(HOLD, 2.0)
        [invite] = s.requests("INVITE")
        for attempt in range(MAX_GLARE_RETRIES):
            s.reply(invite, 491, at=s.now + 0.1)
            self.assertEqual(s.events, [])
            self.assertTrue(s.session.reinvite_in_progress)
            out = s.advance(s.now + 4.0)  # the longest back-off (§14.1)
            sent = [m for _, m in out if isinstance(m, Request) and m.method == "INVITE"]
            invite = sent[0]  # then its UDP retransmissions
            self.assertEqual({m.to_bytes() for m in sent}, {invite.to_bytes()})
            self.assertEqual(invite.cseq, (self.first_cseq + attempt + 1, "INVITE"))
            self.assertEqual(invite.body, HOLD)
        s.reply(invite, 491, at=s.now + 0.1)
        self.assertEqual(s.events, [ReinviteFailed(491, "491 Request Pending")])
        self.assertFalse(s.session.reinvite_in_progress)
        self.assertFalse(s.session.terminated)
        out = s.advance(s.now + 10.0)
        self.assertEqual([m.method for _, m in out if isinstance(m, Request)
                          and m.method != "ACK"], [])  # no retry left pending
        s.session.reinvite(MOVED, s.now)
        [fresh] = s.requests("INVITE")
        self.assertEqual(fresh.body, MOVED)

    def test_refused_before_the_call_is_up(self) -> None:
        s = self.make()
        s.session.hangup(2.0)
        with self.assertRaises(RuntimeError):  # type: ignore[attr-defined]
            s.session.reinvite(HOLD, 2.1)

    def test_hangup_while_our_reinvite_is_pending(self) -> None:
        s = self.make()
        s.session.reinvite(HOLD, 2.0)
        [invite] = s.requests("INVITE")
        s.session.hangup(2.1)
        [bye] = s.requests("BYE")
        s.reply(invite, 200, body=HELD, at=2.2)
        [ack] = s.requests("ACK")  # a 2xx is always ACKed
        self.assertEqual(ack.cseq, (self.first_cseq, "ACK"))
        s.reply(bye, 200, at=2.3)
        self.assertEqual(s.events, [Ended("Normal call clearing", by_remote=False)])


def parse_contact(value: str) -> str:
    return value.strip("<>")


class UacReinviteOutTests(ReinviteOutTests, unittest.TestCase):
    make = staticmethod(uac)
    first_cseq = 2  # the INVITE was CSeq 1

    def test_challenge_answered_with_credentials_in_the_ack(self) -> None:
        s = self.make()
        s.session.reinvite(HOLD, 2.0)
        [invite] = s.requests("INVITE")
        s.reply(invite, 407, extra=(("Proxy-Authenticate",
                                     'Digest realm="127.0.0.1", nonce="n2", qop="auth"'),),
                at=2.1)
        [again] = s.requests("INVITE")
        self.assertEqual(again.cseq, (3, "INVITE"))
        credentials = again.headers.get("Proxy-Authorization")
        self.assertIn('nonce="n2"', credentials)
        self.assertIn('username="1001"', credentials)
        self.assertEqual(again.body, HOLD)
        s.reply(again, 200, body=HELD, at=2.2)
        [ack] = s.requests("ACK")
        self.assertEqual(ack.cseq, (3, "ACK"))
        self.assertEqual(ack.headers.get("Proxy-Authorization"), credentials)
        self.assertEqual(s.events, [ReinviteAnswered(HELD)])

    def test_491_owner_backs_off_2_1_to_4_s(self) -> None:
        for ticks, wait in ((210, 2.1), (400, 4.0), (333, 3.33)):
            rng = FixedRng(ticks)
            s = uac(rng)
            s.session.reinvite(HOLD, 2.0)
            [invite] = s.requests("INVITE")
            s.reply(invite, 491, at=2.5)
            self.assertEqual(rng.ranges, [(210, 400)])
            self.assertEqual(s.events, [])
            self.assertTrue(s.session.reinvite_in_progress)
            self.assertEqual(s.ep.next_deadline(), 2.5 + wait)  # type: ignore[attr-defined]
            out = s.advance(2.5 + wait - 0.001)
            self.assertEqual([m.method for _, m in out if isinstance(m, Request)], ["ACK"])
            out = s.advance(2.5 + wait)
            [(when, retry)] = out
            assert isinstance(retry, Request)
            self.assertEqual((when, retry.method, retry.cseq[0]), (2.5 + wait, "INVITE", 3))
            self.assertEqual(retry.body, HOLD)
            s.reply(retry, 200, body=HELD, at=2.5 + wait + 0.1)
            self.assertEqual(s.events, [ReinviteAnswered(HELD)])

    def test_glare_both_ways(self) -> None:
        """Both sides re-INVITE at once: theirs gets 491 from us, ours 491 from them; their
        retry comes during our back-off and is offered to the owner; ours waits until that
        exchange is over (§14.1: never two INVITE transactions at once), then goes out."""
        s = uac(FixedRng(250))
        s.session.reinvite(HOLD, 2.0)
        [ours] = s.requests("INVITE")
        theirs = s.peer_request("INVITE", body=MOVED)
        s.feed(theirs, at=2.01)
        [refused] = s.responses()
        self.assertEqual(refused.status, 491)
        s.reply(ours, 491, at=2.02)
        self.assertEqual(s.events, [])
        again = s.peer_request("INVITE", body=MOVED)
        s.feed(again, at=2.5)
        self.assertEqual(s.events, [ReinviteOffered(MOVED)])
        with self.assertRaises(RuntimeError):
            s.session.reinvite(HOLD, 2.6)
        out = s.advance(2.02 + 2.5 + 0.5)  # our back-off is over, their exchange is not
        self.assertEqual([m.method for _, m in out if isinstance(m, Request)], ["ACK"])
        s.session.answer_reinvite(HELD, s.now)
        [ok] = s.responses()
        self.assertEqual(ok.status, 200)
        s.feed(s.peer_ack(again), at=s.now + 0.01)
        [retry] = s.requests("INVITE")
        self.assertEqual(retry.cseq, (3, "INVITE"))
        self.assertEqual(s.events, [ReinviteOffered(MOVED), ReinviteConfirmed(None)])


class UasReinviteOutTests(ReinviteOutTests, unittest.TestCase):
    make = staticmethod(uas)
    first_cseq = 1  # a UAS dialog starts its own numbering (§12.1.1)

    def test_491_other_side_backs_off_0_to_2_s(self) -> None:
        for ticks, wait in ((0, 0.0), (200, 2.0), (57, 0.57)):
            rng = FixedRng(ticks)
            s = uas(rng)
            s.session.reinvite(HOLD, 2.0)
            [invite] = s.requests("INVITE")
            s.reply(invite, 491, at=2.5)
            self.assertEqual(rng.ranges, [(0, 200)])
            self.assertEqual(s.ep.next_deadline(), 2.5 + wait)  # type: ignore[attr-defined]
            out = s.advance(2.5 + wait)
            retries = [(when, m.cseq) for when, m in out
                       if isinstance(m, Request) and m.method == "INVITE"]
            self.assertEqual(retries, [(2.5 + wait, (2, "INVITE"))])

    def test_challenge_without_credentials_is_a_failure(self) -> None:
        s = self.make()
        s.session.reinvite(HOLD, 2.0)
        [invite] = s.requests("INVITE")
        s.reply(invite, 401, extra=(("WWW-Authenticate", 'Digest realm="x", nonce="n"'),), at=2.1)
        self.assertEqual(s.events, [ReinviteFailed(401, "401 Unauthorized")])
        self.assertEqual(s.requests("INVITE"), [])


# ------------------------------------------------- challenges on an incoming call's requests


def challenge(header: str = "Proxy-Authenticate", nonce: str = "n1") -> tuple[tuple[str, str]]:
    return ((header, f'Digest realm="127.0.0.1", nonce="{nonce}", qop="auth"'),)


def uas_with_account(**kwargs: object) -> Side:
    """An incoming call whose session has credentials (the called account's: 1001/secret),
    from the account's proxy: the account's domain is 127.0.0.1, where the call came from,
    so challenges from there are answered."""
    account = SipAccount(login="1001", password="secret", domain="127.0.0.1")
    return uas(account=account, **kwargs)  # type: ignore[arg-type]


class IncomingChallengeTests(unittest.TestCase):
    """A proxy that challenges our in-dialog requests on an incoming call: each is sent once
    more with credentials (CSeq + 1) and goes on; a second challenge to the credentials just
    sent is the request's failure, nothing more is sent."""

    def test_reinvite_challenged_then_answered(self) -> None:
        s = uas_with_account()
        s.session.reinvite(HOLD, 2.0)
        [invite] = s.requests("INVITE")
        self.assertIsNone(invite.headers.get("Proxy-Authorization"))
        s.reply(invite, 407, extra=challenge(), at=2.1)
        [again] = s.requests("INVITE")
        self.assertEqual(again.cseq, (2, "INVITE"))
        credentials = again.headers.get("Proxy-Authorization")
        self.assertIn('username="1001"', credentials)
        self.assertIn('nonce="n1"', credentials)
        self.assertEqual(again.body, HOLD)
        self.assertEqual(s.events, [])
        s.reply(again, 200, body=HELD, at=2.2)
        [ack] = s.requests("ACK")
        self.assertEqual(ack.headers.get("Proxy-Authorization"), credentials)  # §13.2.2.4
        self.assertEqual(s.events, [ReinviteAnswered(HELD)])

    def test_reinvite_challenged_twice_fails_and_the_call_stays(self) -> None:
        s = uas_with_account()
        s.session.reinvite(HOLD, 2.0)
        [invite] = s.requests("INVITE")
        s.reply(invite, 401, extra=challenge("WWW-Authenticate"), at=2.1)
        [again] = s.requests("INVITE")
        self.assertIn('username="1001"', again.headers.get("Authorization"))
        s.reply(again, 401, extra=challenge("WWW-Authenticate"), at=2.2)  # the same nonce
        self.assertEqual(s.events, [ReinviteFailed(401, "401 Unauthorized")])
        self.assertEqual(s.requests("INVITE"), [])
        self.assertFalse(s.session.terminated)
        self.assertFalse(s.session.reinvite_in_progress)

    def test_bye_challenged_then_answered(self) -> None:
        s = uas_with_account()
        s.session.hangup(2.0)
        [bye] = s.requests("BYE")
        s.reply(bye, 407, extra=challenge(), at=2.1)
        self.assertEqual(s.events, [])  # not over yet: the BYE goes again
        [again] = s.requests("BYE")
        self.assertEqual(again.cseq, (bye.cseq[0] + 1, "BYE"))
        self.assertIn('username="1001"', again.headers.get("Proxy-Authorization"))
        s.reply(again, 200, at=2.2)
        self.assertEqual(s.events, [Ended("Normal call clearing", by_remote=False)])
        self.assertEqual(s.ep.timed_users, [])  # type: ignore[attr-defined]

    def test_bye_challenged_twice_ends_the_call_anyway(self) -> None:
        s = uas_with_account()
        s.session.hangup(2.0)
        [bye] = s.requests("BYE")
        s.reply(bye, 407, extra=challenge(), at=2.1)
        [again] = s.requests("BYE")
        s.reply(again, 407, extra=challenge(), at=2.2)
        self.assertEqual(s.requests("BYE"), [])
        self.assertEqual(s.events, [Ended("Normal call clearing", by_remote=False)])
        self.assertTrue(s.session.terminated)

    def test_bye_challenged_without_credentials_ends_the_call(self) -> None:
        s = uas()
        s.session.hangup(2.0)
        [bye] = s.requests("BYE")
        s.reply(bye, 407, extra=challenge(), at=2.1)
        self.assertEqual(s.requests("BYE"), [])
        self.assertEqual(s.events, [Ended("Normal call clearing", by_remote=False)])

    def test_info_and_refer_challenged_then_answered(self) -> None:
        s = uas_with_account()
        s.session.send_info("application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n", 2.0)
        [info] = s.requests("INFO")
        s.reply(info, 401, extra=challenge("WWW-Authenticate"), at=2.1)
        [info2] = s.requests("INFO")
        self.assertIn('username="1001"', info2.headers.get("Authorization"))
        s.reply(info2, 200, at=2.2)
        self.assertEqual(s.events, [InfoAnswered(200)])
        s.events.clear()
        s.session.refer("sip:carol@127.0.0.1", 3.0)
        [refer] = s.requests("REFER")
        s.reply(refer, 407, extra=challenge(nonce="n2"), at=3.1)
        [refer2] = s.requests("REFER")
        self.assertIn('nonce="n2"', refer2.headers.get("Proxy-Authorization"))
        s.reply(refer2, 202, at=3.2)
        self.assertEqual(s.events, [ReferAccepted(202)])


# ------------------------------------------------------------------------ the peer's re-INVITE


class ReinviteInTests:
    make: Callable[..., Side]
    assertEqual: Callable[..., None]
    assertIs: Callable[..., None]
    assertIn: Callable[..., None]
    assertNotIn: Callable[..., None]
    assertRaises: Callable[..., object]
    assertTrue: Callable[..., None]
    assertFalse: Callable[..., None]

    def test_offer_answered_200_retransmitted_until_the_ack(self) -> None:
        s = self.make()
        before = s.remote_target
        reinvite = s.peer_request("INVITE", body=HOLD, contact="<sip:new@192.0.2.77:5999>")
        s.feed(reinvite, at=2.0)
        self.assertEqual(s.events, [ReinviteOffered(HOLD)])
        self.assertEqual(s.remote_target, before)  # not before we accept it
        self.assertTrue(s.session.reinvite_in_progress)
        s.session.answer_reinvite(HELD, 2.1)
        [ok] = s.responses()
        self.assertEqual(ok.status, 200)
        self.assertEqual(ok.cseq, reinvite.cseq)
        self.assertEqual(ok.to.tag, s.session.local_tag)
        self.assertEqual(ok.headers.get("Contact"), f"<{s.session.contact}>")
        self.assertEqual(ok.headers.get("Content-Type"), "application/sdp")
        self.assertEqual(ok.body, HELD)
        self.assertEqual(s.remote_target, "sip:new@192.0.2.77:5999")
        out = s.advance(2.1 + 0.5 + 1 + 2 + 4 + 4)
        self.assertEqual([(round(when, 6), m.status) for when, m in out],  # type: ignore[union-attr]
                         [(2.6, 200), (3.6, 200), (5.6, 200), (9.6, 200), (13.6, 200)])
        s.feed(s.peer_ack(reinvite), at=14.0)
        self.assertEqual(s.events, [ReinviteOffered(HOLD), ReinviteConfirmed(None)])
        self.assertEqual(s.advance(60.0), [])
        self.assertFalse(s.session.reinvite_in_progress)
        self.assertFalse(s.session.terminated)

    def test_late_offer_answer_comes_in_the_ack(self) -> None:
        s = self.make()
        reinvite = s.peer_request("INVITE")
        s.feed(reinvite, at=2.0)
        self.assertEqual(s.events, [ReinviteOffered(None)])
        s.session.answer_reinvite(HOLD, 2.1)
        [ok] = s.responses()
        self.assertEqual(ok.body, HOLD)
        s.feed(s.peer_ack(reinvite, body=HELD), at=2.2)
        self.assertEqual(s.events[-1], ReinviteConfirmed(HELD))

    def test_reject_leaves_the_dialog_as_it_was(self) -> None:
        s = self.make()
        before = s.remote_target
        reinvite = s.peer_request("INVITE", body=HOLD, contact="<sip:new@192.0.2.77:5999>")
        s.feed(reinvite, at=2.0)
        s.session.reject_reinvite(488, 2.1)
        [refused] = s.responses()
        self.assertEqual((refused.status, refused.cseq), (488, reinvite.cseq))
        self.assertEqual(s.remote_target, before)
        self.assertFalse(s.session.reinvite_in_progress)
        with self.assertRaises(RuntimeError):
            s.session.answer_reinvite(HELD, 2.2)
        with self.assertRaises(ValueError):
            s.session.reject_reinvite(200, 2.2)
        # The transaction re-sends the 488 and absorbs its ACK; the session sees neither.
        out = s.advance(2.1 + T1)
        self.assertEqual([m.status for _, m in out], [488])  # type: ignore[union-attr]
        self.assertEqual(s.events, [ReinviteOffered(HOLD)])

    def test_no_ack_for_our_2xx_ends_the_call(self) -> None:
        s = self.make()
        s.feed(s.peer_request("INVITE", body=HOLD), at=2.0)
        s.session.answer_reinvite(HELD, 2.1)
        out = s.advance(2.1 + TIMEOUT - 0.01)
        self.assertNotIn("BYE", [m.method for _, m in out if isinstance(m, Request)])
        out = s.advance(2.1 + TIMEOUT)
        self.assertEqual([m.method for _, m in out if isinstance(m, Request)], ["BYE"])
        self.assertEqual(s.events, [ReinviteOffered(HOLD),
                                    Ended(REASON_ACK_TIMEOUT, by_remote=True)])

    def test_second_reinvite_before_the_first_is_answered_500_retry_after(self) -> None:
        s = self.make()
        s.session.rng = FixedRng(7)
        s.feed(s.peer_request("INVITE", body=HOLD), at=2.0)
        s.feed(s.peer_request("INVITE", body=MOVED), at=2.1)
        [busy] = s.responses()
        self.assertEqual(busy.status, 500)
        self.assertEqual(busy.headers.get("Retry-After"), "7")
        self.assertEqual(s.events, [ReinviteOffered(HOLD)])

    def test_peer_reinvite_while_ours_is_in_flight_491(self) -> None:
        s = self.make()
        s.session.reinvite(HOLD, 2.0)
        s.sent()
        s.feed(s.peer_request("INVITE", body=MOVED), at=2.1)
        [pending] = s.responses()
        self.assertEqual(pending.status, 491)
        self.assertEqual(s.events, [])

    def test_cancel_before_our_answer(self) -> None:
        s = self.make()
        reinvite = s.peer_request("INVITE", body=HOLD)
        s.feed(reinvite, at=2.0)
        registry = IncomingInvites.install(s.ep)  # type: ignore[arg-type]
        self.assertIn(s.session, registry)
        s.feed(s.peer_cancel(reinvite), at=2.1)
        self.assertEqual(sorted((r.status, r.cseq[1]) for r in s.responses()),
                         [(200, "CANCEL"), (487, "INVITE")])
        self.assertEqual(s.events, [ReinviteOffered(HOLD), ReinviteCancelled()])
        self.assertNotIn(s.session, registry)
        with self.assertRaises(RuntimeError):
            s.session.answer_reinvite(HELD, 2.2)
        self.assertFalse(s.session.terminated)

    def test_cancel_after_our_answer_changes_nothing(self) -> None:
        s = self.make()
        reinvite = s.peer_request("INVITE", body=HOLD)
        s.feed(reinvite, at=2.0)
        s.session.answer_reinvite(HELD, 2.1)
        s.sent()
        s.feed(s.peer_cancel(reinvite), at=2.2)
        # Nobody of ours owns the transaction any more: the endpoint answers the CANCEL.
        self.assertEqual([r.status for r in s.responses()], [200])
        s.feed(s.peer_ack(reinvite), at=2.3)
        self.assertEqual(s.events[-1], ReinviteConfirmed(None))

    def test_bye_while_a_reinvite_is_unanswered_gets_it_487(self) -> None:
        s = self.make()
        reinvite = s.peer_request("INVITE", body=HOLD)
        s.feed(reinvite, at=2.0)
        s.feed(s.peer_request("BYE"), at=2.1)
        self.assertEqual(sorted((r.status, r.cseq[1]) for r in s.responses()),
                         [(200, "BYE"), (487, "INVITE")])
        self.assertEqual(s.events, [ReinviteOffered(HOLD),
                                    Ended("Normal call clearing", by_remote=True)])

    def test_answering_after_the_call_ended_does_nothing(self) -> None:
        s = self.make()
        s.feed(s.peer_request("INVITE", body=HOLD), at=2.0)
        s.feed(s.peer_request("BYE"), at=2.1)
        s.sent()
        s.session.answer_reinvite(HELD, 2.2)  # a slow owner: no exception, nothing sent
        s.session.reject_reinvite(488, 2.2)
        self.assertEqual(s.sent(), [])

    def test_listener_answering_inside_the_event(self) -> None:
        """The call layer answers from within its listener: the session is ready for it."""
        s = self.make()
        session = s.session

        def listener(event: object) -> None:
            s.events.append(event)
            if isinstance(event, ReinviteOffered):
                session.answer_reinvite(HELD, s.now)

        session.listener = listener
        reinvite = s.peer_request("INVITE", body=HOLD)
        s.feed(reinvite, at=2.0)
        [ok] = s.responses()
        self.assertEqual((ok.status, ok.body), (200, HELD))


class UacReinviteInTests(ReinviteInTests, unittest.TestCase):
    make = staticmethod(uac)


class UasReinviteInTests(ReinviteInTests, unittest.TestCase):
    make = staticmethod(uas)
