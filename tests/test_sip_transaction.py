"""SIP transaction layer (wcsgw.sip.transaction): RFC 3261 §17 timers and matching, RFC 6026.

Time is a ``task.Clock`` driven through ``wcsgw.sip.driver.ClockDriver``, advanced from one
deadline to the next so every send is stamped with the exact instant the RFC prescribes.
"""

from __future__ import annotations

from typing import Iterable

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from wcsgw.sip.driver import ClockDriver
from wcsgw.sip.message import Request, Response
from wcsgw.sip.parser import parse_message
from wcsgw.sip.target import Target
from wcsgw.sip.transaction import (
    ClientTransaction,
    Event,
    InviteClientTransaction,
    InviteServerTransaction,
    NonInviteClientTransaction,
    NonInviteServerTransaction,
    RequestReceived,
    ResponseReceived,
    State,
    StrayResponse,
    TimerConfig,
    TransactionLayer,
    TransactionTerminated,
    TransactionTimeout,
    TransportFailed,
)

PEER_HOST = "192.0.2.10"
UDP_PEER = Target("UDP", PEER_HOST, 5060)
TCP_PEER = Target("TCP", PEER_HOST, 5060, connection=object())
OTHER_PEER = Target("UDP", "198.51.100.7", 5060)

# What RFC 3261 prescribes with the default T1 = 0.5 s, T2 = 4 s, T4 = 5 s.
TIMER_A_SENDS = [0.0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
CAPPED_SENDS = [0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]  # E and G


def make_request(
    method: str = "INVITE",
    branch: str | None = "z9hG4bK-c1",
    transport: str = "UDP",
    cseq: int = 1,
    cseq_method: str | None = None,
    to_tag: str | None = None,
    via_host: str = PEER_HOST,
    via_params: str = "",
    uri: str = "sip:bob@example.com",
    extra: Iterable[tuple[str, str]] = (),
) -> Request:
    via = f"SIP/2.0/{transport} {via_host}:5060"
    if branch is not None:
        via += f";branch={branch}"
    via += via_params
    to = "Bob <sip:bob@example.com>" + (f";tag={to_tag}" if to_tag else "")
    headers = [
        ("Via", via),
        ("Max-Forwards", "70"),
        ("From", "Alice <sip:alice@example.com>;tag=a-tag"),
        ("To", to),
        ("Call-ID", "call-1@example.com"),
        ("CSeq", f"{cseq} {cseq_method or method}"),
        ("Contact", "<sip:alice@192.0.2.10:5060>"),
        *extra,
        ("Content-Length", "0"),
    ]
    return Request(method, uri, headers)


def make_reply(request: Request, status: int, to_tag: str | None = None,
               reason: str = "Reason") -> Response:
    """A response as a peer (or the TU) builds it: §8.2.6.2 copies Via, From, To, Call-ID,
    CSeq, adding a To tag."""
    headers = [(name, value) for name, value in request.headers
               if name in ("Via", "From", "To", "Call-ID", "CSeq")]
    if to_tag is not None:
        headers = [(n, v + f";tag={to_tag}" if n == "To" else v) for n, v in headers]
    headers.append(("Content-Length", "0"))
    return Response(status, reason, headers)


class Harness:
    """A layer on a fake clock; every datagram is recorded with the instant it left."""

    def __init__(self, timers: TimerConfig = TimerConfig()) -> None:
        self.clock = Clock()
        self.layer = TransactionLayer(timers)
        self.sent: list[tuple[float, bytes, Target]] = []
        self.events: list[tuple[float, Event]] = []
        self.driver = ClockDriver(self.layer, self.clock, self._send, self._deliver)

    def _send(self, data: bytes, target: Target) -> None:
        self.sent.append((self.clock.seconds(), data, target))

    def _deliver(self, event: Event) -> None:
        self.events.append((self.clock.seconds(), event))

    @property
    def now(self) -> float:
        return self.clock.seconds()

    def send_request(self, request: Request, target: Target) -> ClientTransaction:
        txn = self.layer.send_request(request, target, self.now)
        self.driver.pump()
        assert txn is not None
        return txn

    def receive(self, msg: Request | Response, source: Target = UDP_PEER) -> None:
        self.layer.receive(msg, source, self.now)
        self.driver.pump()

    def respond(self, response: Response) -> None:
        self.layer.send_response(response, self.now)
        self.driver.pump()

    def run_until(self, t: float) -> None:
        """Advance to ``t`` stopping at every deadline, as a real reactor would."""
        while (deadline := self.layer.next_deadline()) is not None and deadline <= t:
            self.clock.advance(max(0.0, deadline - self.now))
        self.clock.advance(t - self.now)

    def take_events(self) -> list[Event]:
        events = [e for _, e in self.events]
        self.events.clear()
        return events

    def take_sent(self) -> list[tuple[float, bytes, Target]]:
        sent, self.sent = self.sent, []
        return sent

    def sent_messages(self) -> list[Request | Response]:
        return [parse_message(data) for _, data, _ in self.take_sent()]


def event_types(events: list[Event]) -> list[type]:
    return [type(e) for e in events]


class LayerTestCase(SynchronousTestCase):
    def setUp(self) -> None:
        self.h = Harness()

    def assertInstants(self, actual: list[float], expected: list[float]) -> None:
        """Equal to the millisecond."""
        self.assertEqual([round(t, 3) for t in actual], [round(t, 3) for t in expected])

    def assertCleanedUp(self) -> None:
        self.assertEqual(len(self.h.layer), 0)
        self.assertIsNone(self.h.layer.next_deadline())


# ------------------------------------------------------------------------ INVITE client


class InviteClientTests(LayerTestCase):
    def test_timer_a_retransmits_then_timer_b_times_out(self) -> None:
        """§17.1.1.2: A starts at T1 and doubles; B fires at 64*T1 = 32 s."""
        txn = self.h.send_request(make_request(), UDP_PEER)
        self.assertIsInstance(txn, InviteClientTransaction)
        self.assertEqual(txn.state, State.CALLING)
        self.h.run_until(31.999)
        self.assertEqual(self.h.take_events(), [])
        self.h.run_until(32.0)
        sent = self.h.take_sent()
        self.assertInstants([t for t, _, _ in sent], TIMER_A_SENDS)
        # serialized once: every retransmission is the very same bytes object
        self.assertTrue(all(data is sent[0][1] for _, data, _ in sent))
        self.assertEqual({target for _, _, target in sent}, {UDP_PEER})
        self.assertEqual(
            self.h.events,
            [(32.0, TransactionTimeout(txn)), (32.0, TransactionTerminated(txn))],
        )
        self.assertEqual(txn.state, State.TERMINATED)
        self.assertCleanedUp()

    def test_no_retransmissions_over_tcp(self) -> None:
        txn = self.h.send_request(make_request(transport="TCP"), TCP_PEER)
        self.assertEqual(set(txn.deadlines), {"B"})
        self.h.run_until(40)
        self.assertInstants([t for t, _, _ in self.h.take_sent()], [0.0])
        self.assertEqual(event_types(self.h.take_events()),
                         [TransactionTimeout, TransactionTerminated])
        self.assertCleanedUp()

    def test_provisional_stops_retransmissions_and_timer_b(self) -> None:
        request = make_request()
        txn = self.h.send_request(request, UDP_PEER)
        self.h.run_until(1.0)
        ringing = make_reply(request, 180, to_tag="b-tag")
        self.h.receive(ringing)
        self.assertEqual(txn.state, State.PROCEEDING)
        self.assertEqual(txn.deadlines, {})  # neither A nor B runs in Proceeding
        self.assertEqual(self.h.take_events(), [ResponseReceived(ringing, txn)])
        self.h.run_until(100.0)
        self.assertInstants([t for t, _, _ in self.h.take_sent()], [0.0, 0.5])
        self.assertEqual(self.h.take_events(), [])  # no Timer B in Proceeding
        self.assertEqual(len(self.h.layer), 1)
        again = make_reply(request, 183, to_tag="b-tag")
        self.h.receive(again)
        self.assertEqual(self.h.take_events(), [ResponseReceived(again, txn)])

    def test_ack_for_non_2xx_is_built_by_the_transaction(self) -> None:
        """§17.1.1.3: Request-URI, top Via, From, Call-ID, CSeq number and Route of the INVITE;
        To of the response; a single Via; sent where the INVITE went."""
        routes = [("Route", "<sip:p1.example.com;lr>"), ("Route", "<sip:p2.example.com;lr>")]
        request = make_request(extra=routes)
        request.headers.add("Via", "SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bK-lower")
        txn = self.h.send_request(request, UDP_PEER)
        self.h.take_sent()
        busy = make_reply(request, 486, to_tag="busy-tag")
        self.h.receive(busy)
        self.assertEqual(txn.state, State.COMPLETED)
        self.assertEqual(self.h.take_events(), [ResponseReceived(busy, txn)])
        [(at, data, target)] = self.h.take_sent()
        self.assertEqual(target, UDP_PEER)
        ack = parse_message(data)
        self.assertIsInstance(ack, Request)
        assert isinstance(ack, Request)
        self.assertEqual(ack.method, "ACK")
        self.assertEqual(ack.uri, "sip:bob@example.com")
        self.assertEqual(len(ack.headers.get_all("Via")), 1)
        self.assertEqual(ack.top_via.branch, "z9hG4bK-c1")
        self.assertEqual(ack.top_via.host, PEER_HOST)
        self.assertEqual(ack.from_.tag, "a-tag")
        self.assertEqual(ack.to.tag, "busy-tag")
        self.assertEqual(ack.call_id, "call-1@example.com")
        self.assertEqual(ack.cseq, (1, "ACK"))
        self.assertEqual(ack.headers.get_all("Route"),
                         ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"])
        self.assertEqual(ack.headers.get("Max-Forwards"), "70")
        self.assertNotIn("Contact", ack.headers)
        self.assertEqual(ack.body, b"")

    def test_final_retransmission_is_reacked_not_passed_up_and_timer_d(self) -> None:
        request = make_request()
        txn = self.h.send_request(request, UDP_PEER)
        self.h.run_until(2.0)
        self.h.take_sent()
        busy = make_reply(request, 486, to_tag="busy-tag")
        self.h.receive(busy)
        [(_, first_ack, _)] = self.h.take_sent()
        self.h.take_events()
        self.h.run_until(10.0)
        self.h.receive(make_reply(request, 486, to_tag="busy-tag"))
        [(_, second_ack, _)] = self.h.take_sent()
        self.assertIs(second_ack, first_ack)
        self.assertEqual(self.h.take_events(), [])
        # Timer D: 32 s after entering Completed (at 2.0), no retransmissions of the INVITE.
        self.h.run_until(33.999)
        self.assertEqual(len(self.h.layer), 1)
        self.h.run_until(34.0)
        self.assertEqual(self.h.events, [(34.0, TransactionTerminated(txn))])
        self.assertEqual(self.h.take_sent(), [])
        self.assertCleanedUp()

    def test_timer_d_is_zero_over_tcp(self) -> None:
        request = make_request(transport="TCP")
        txn = self.h.send_request(request, TCP_PEER)
        busy = make_reply(request, 603, to_tag="t")
        self.h.receive(busy, TCP_PEER)
        self.assertEqual(self.h.take_events(),
                         [ResponseReceived(busy, txn), TransactionTerminated(txn)])
        self.assertEqual(len(self.h.take_sent()), 2)  # the INVITE and the ACK
        self.assertCleanedUp()

    def test_2xx_moves_to_accepted_and_retransmissions_reach_the_tu(self) -> None:
        """RFC 6026 §8.4: no ACK from the transaction; 2xx retransmissions go up; Timer M."""
        request = make_request()
        txn = self.h.send_request(request, UDP_PEER)
        self.h.run_until(0.7)
        ok = make_reply(request, 200, to_tag="b-tag")
        self.h.receive(ok)
        self.assertEqual(txn.state, State.ACCEPTED)
        self.assertEqual(self.h.take_events(), [ResponseReceived(ok, txn)])
        self.h.run_until(5.0)
        ok_again = make_reply(request, 200, to_tag="b-tag")
        self.h.receive(ok_again)
        self.assertEqual(self.h.take_events(), [ResponseReceived(ok_again, txn)])
        self.assertInstants([t for t, _, _ in self.h.take_sent()], [0.0, 0.5])  # no ACK, no A
        # a 2xx from another fork (different To tag) is passed up too
        forked = make_reply(request, 200, to_tag="fork-2")
        self.h.receive(forked)
        self.assertEqual(self.h.take_events(), [ResponseReceived(forked, txn)])
        self.h.run_until(32.699)
        self.assertEqual(len(self.h.layer), 1)
        self.h.run_until(32.7)  # Timer M: 64*T1 after the first 2xx
        self.assertEqual(self.h.events, [(32.7, TransactionTerminated(txn))])
        self.h.take_events()
        late = make_reply(request, 200, to_tag="b-tag")
        self.h.receive(late)
        self.assertEqual(self.h.take_events(), [StrayResponse(late, UDP_PEER)])
        self.assertCleanedUp()

    def test_ack_is_sent_statelessly(self) -> None:
        ack = make_request("ACK", branch="z9hG4bK-ack2xx")
        self.assertIsNone(self.h.layer.send_request(ack, UDP_PEER, 0.0))
        self.h.driver.pump()
        [(_, data, target)] = self.h.take_sent()
        self.assertEqual(target, UDP_PEER)
        self.assertEqual(parse_message(data).cseq, (1, "ACK"))
        self.assertCleanedUp()

    def test_duplicate_branch_is_refused(self) -> None:
        self.h.send_request(make_request(), UDP_PEER)
        self.assertRaises(ValueError, self.h.layer.send_request, make_request(), UDP_PEER, 0.0)
        no_branch = make_request(branch=None)
        self.assertRaises(ValueError, self.h.layer.send_request, no_branch, UDP_PEER, 0.0)


class ResponseMatchingTests(LayerTestCase):
    def test_response_with_unknown_branch_is_stray(self) -> None:
        self.h.send_request(make_request(), UDP_PEER)
        stray = make_reply(make_request(branch="z9hG4bK-other"), 200, to_tag="x")
        self.h.receive(stray, OTHER_PEER)
        self.assertEqual(self.h.take_events(), [StrayResponse(stray, OTHER_PEER)])

    def test_cseq_method_is_part_of_the_client_key(self) -> None:
        """§17.1.3: a CANCEL shares the INVITE's branch; its 200 must not end the INVITE."""
        invite = make_request()
        cancel = make_request("CANCEL")
        invite_txn = self.h.send_request(invite, UDP_PEER)
        cancel_txn = self.h.send_request(cancel, UDP_PEER)
        self.assertIsInstance(cancel_txn, NonInviteClientTransaction)
        ok = make_reply(cancel, 200, to_tag="b")
        self.h.receive(ok)
        self.assertEqual(self.h.take_events()[0], ResponseReceived(ok, cancel_txn))
        self.assertEqual(invite_txn.state, State.CALLING)
        self.assertEqual(cancel_txn.state, State.COMPLETED)
        terminated = make_reply(invite, 487, to_tag="b")
        self.h.receive(terminated)
        self.assertEqual(self.h.take_events(), [ResponseReceived(terminated, invite_txn)])


# -------------------------------------------------------------------- non-INVITE client


class NonInviteClientTests(LayerTestCase):
    def test_timer_e_doubles_capped_at_t2_and_timer_f(self) -> None:
        txn = self.h.send_request(make_request("OPTIONS"), UDP_PEER)
        self.assertEqual(txn.state, State.TRYING)
        self.h.run_until(40.0)
        self.assertInstants([t for t, _, _ in self.h.take_sent()], CAPPED_SENDS)
        self.assertEqual(self.h.events,
                         [(32.0, TransactionTimeout(txn)), (32.0, TransactionTerminated(txn))])
        self.assertCleanedUp()

    def test_timer_e_switches_to_t2_after_a_provisional(self) -> None:
        """§17.1.2.2: in Proceeding, E fires every T2 (the armed E still fires first)."""
        request = make_request("REGISTER")
        txn = self.h.send_request(request, UDP_PEER)
        self.h.run_until(0.7)
        trying = make_reply(request, 100)
        self.h.receive(trying)
        self.assertEqual(txn.state, State.PROCEEDING)
        self.assertEqual(self.h.take_events(), [ResponseReceived(trying, txn)])
        self.h.run_until(14.0)
        self.assertInstants([t for t, _, _ in self.h.take_sent()],
                            [0.0, 0.5, 1.5, 5.5, 9.5, 13.5])
        self.h.run_until(40.0)  # Timer F still ends it at 64*T1
        self.assertEqual(self.h.events,
                         [(32.0, TransactionTimeout(txn)), (32.0, TransactionTerminated(txn))])

    def test_final_response_and_timer_k(self) -> None:
        request = make_request("OPTIONS")
        txn = self.h.send_request(request, UDP_PEER)
        self.h.run_until(1.0)
        ok = make_reply(request, 200, to_tag="b")
        self.h.receive(ok)
        self.assertEqual(txn.state, State.COMPLETED)
        self.assertEqual(self.h.take_events(), [ResponseReceived(ok, txn)])
        self.h.run_until(2.0)
        self.h.receive(make_reply(request, 200, to_tag="b"))  # absorbed in Completed
        self.assertEqual(self.h.take_events(), [])
        self.h.run_until(5.999)
        self.assertEqual(len(self.h.layer), 1)
        self.h.run_until(6.0)  # Timer K = T4
        self.assertEqual(self.h.events, [(6.0, TransactionTerminated(txn))])
        self.assertInstants([t for t, _, _ in self.h.take_sent()], [0.0, 0.5])
        self.assertCleanedUp()

    def test_tcp_no_timer_e_and_timer_k_zero(self) -> None:
        request = make_request("BYE", transport="TCP", to_tag="b")
        txn = self.h.send_request(request, TCP_PEER)
        self.assertEqual(set(txn.deadlines), {"F"})
        self.h.run_until(10.0)
        ok = make_reply(request, 200)
        self.h.receive(ok, TCP_PEER)
        self.assertEqual(self.h.take_events(),
                         [ResponseReceived(ok, txn), TransactionTerminated(txn)])
        self.assertInstants([t for t, _, _ in self.h.take_sent()], [0.0])
        self.assertCleanedUp()

    def test_timer_f_over_tcp(self) -> None:
        txn = self.h.send_request(make_request("OPTIONS", transport="TCP"), TCP_PEER)
        self.h.run_until(31.9)
        self.assertEqual(self.h.take_events(), [])
        self.h.run_until(32.0)
        self.assertEqual(self.h.take_events(),
                         [TransactionTimeout(txn), TransactionTerminated(txn)])


# ------------------------------------------------------------------------ INVITE server


class InviteServerTests(LayerTestCase):
    def receive_invite(self, request: Request | None = None,
                       source: Target = UDP_PEER) -> InviteServerTransaction:
        request = request or make_request()
        self.h.receive(request, source)
        [event] = self.h.take_events()
        assert isinstance(event, RequestReceived)
        self.assertIs(event.request, request)
        self.assertEqual(event.source, source)
        txn = event.transaction
        assert isinstance(txn, InviteServerTransaction)
        self.assertEqual(txn.state, State.PROCEEDING)
        return txn

    def test_auto_100_trying_after_200_ms(self) -> None:
        """§17.2.1: the transaction answers 100 if the TU has not sent a provisional."""
        txn = self.receive_invite(make_request(extra=[("Timestamp", "54.2")]))
        self.h.run_until(0.199)
        self.assertEqual(self.h.take_sent(), [])
        self.h.run_until(0.2)
        [(at, data, target)] = self.h.take_sent()
        self.assertInstants([at], [0.2])
        self.assertEqual(target, UDP_PEER)
        trying = parse_message(data)
        assert isinstance(trying, Response)
        self.assertEqual(trying.status, 100)
        self.assertIsNone(trying.to.tag)  # §8.2.6.1
        self.assertEqual(trying.top_via.branch, "z9hG4bK-c1")
        self.assertEqual(trying.cseq, (1, "INVITE"))
        self.assertEqual(trying.headers.get("Timestamp"), "54.2")  # §8.2.6.1
        self.assertIs(txn.last_response.status, 100)  # type: ignore[union-attr]
        # a retransmitted INVITE now gets the 100 again, and the TU does not see it
        self.h.run_until(0.5)
        self.h.receive(make_request(extra=[("Timestamp", "54.2")]))
        [(_, again, _)] = self.h.take_sent()
        self.assertIs(again, data)
        self.assertEqual(self.h.take_events(), [])

    def test_tu_provisional_suppresses_the_100(self) -> None:
        request = make_request()
        txn = self.receive_invite(request)
        self.h.run_until(0.1)
        ringing = make_reply(request, 180, to_tag="b")
        self.h.respond(ringing)
        self.h.run_until(1.0)
        [(at, data, _)] = self.h.take_sent()
        self.assertInstants([at], [0.1])
        self.assertEqual(parse_message(data).status, 180)  # type: ignore[union-attr]
        self.assertIs(txn.last_response, ringing)

    def test_retransmitted_invite_resends_last_provisional_only(self) -> None:
        request = make_request()
        self.receive_invite(request)
        self.h.receive(make_request())  # before any provisional: nothing to resend
        self.assertEqual(self.h.take_sent(), [])
        self.h.respond(make_reply(request, 180, to_tag="b"))
        self.h.respond(make_reply(request, 183, to_tag="b"))
        last = self.h.take_sent()[-1][1]
        self.h.receive(make_request())
        self.h.receive(make_request())
        self.assertEqual([d for _, d, _ in self.h.take_sent()], [last, last])
        self.assertEqual(self.h.take_events(), [])

    def test_timer_g_retransmits_final_until_timer_h(self) -> None:
        request = make_request()
        txn = self.receive_invite(request)
        self.h.respond(make_reply(request, 486, to_tag="b"))
        self.assertEqual(txn.state, State.COMPLETED)
        self.h.run_until(31.999)
        self.assertEqual(self.h.take_events(), [])
        self.h.run_until(40.0)
        sent = self.h.take_sent()
        self.assertInstants([t for t, _, _ in sent], CAPPED_SENDS)
        self.assertEqual(len({d for _, d, _ in sent}), 1)
        # Timer H: the ACK never came, the TU is told
        self.assertEqual(self.h.events,
                         [(32.0, TransactionTimeout(txn)), (32.0, TransactionTerminated(txn))])
        self.assertCleanedUp()

    def test_retransmitted_invite_in_completed_gets_the_final_again(self) -> None:
        request = make_request()
        self.receive_invite(request)
        self.h.respond(make_reply(request, 404, to_tag="b"))
        [(_, final, _)] = self.h.take_sent()
        self.h.run_until(0.2)
        self.h.receive(make_request())
        self.assertEqual([d for _, d, _ in self.h.take_sent()], [final])
        self.assertEqual(self.h.take_events(), [])

    def test_ack_is_absorbed_confirmed_then_timer_i(self) -> None:
        request = make_request()
        txn = self.receive_invite(request)
        self.h.respond(make_reply(request, 486, to_tag="b"))
        self.h.run_until(1.0)
        self.h.receive(make_request("ACK", to_tag="b"))
        self.assertEqual(txn.state, State.CONFIRMED)
        self.assertEqual(self.h.take_events(), [])  # absorbed, not for the TU
        self.h.run_until(2.0)
        self.h.receive(make_request("ACK", to_tag="b"))  # retransmitted ACK absorbed too
        self.assertEqual(self.h.take_events(), [])
        self.h.run_until(5.999)
        self.assertEqual(len(self.h.layer), 1)
        self.h.run_until(6.0)  # Timer I = T4 after the ACK
        self.assertEqual(self.h.events, [(6.0, TransactionTerminated(txn))])
        # G stopped with the ACK: the final went at 0 and 0.5 only
        self.assertInstants([t for t, _, _ in self.h.take_sent()], [0.0, 0.5])
        self.assertCleanedUp()

    def test_tcp_no_timer_g_and_timer_i_zero(self) -> None:
        request = make_request(transport="TCP")
        txn = self.receive_invite(request, TCP_PEER)
        self.h.respond(make_reply(request, 486, to_tag="b"))
        self.assertEqual(set(txn.deadlines), {"H"})
        [(_, _, target)] = self.h.take_sent()
        self.assertIs(target.connection, TCP_PEER.connection)  # §18.2.2: same connection
        self.h.receive(make_request("ACK", transport="TCP", to_tag="b"), TCP_PEER)
        self.assertEqual(self.h.take_events(), [TransactionTerminated(txn)])
        self.assertCleanedUp()

    def test_2xx_accepted_absorbs_invites_passes_acks_and_timer_l(self) -> None:
        """RFC 6026 §7.1: Accepted; TU retransmits 2xx; ACKs go to the TU; Timer L."""
        request = make_request()
        txn = self.receive_invite(request)
        ok = make_reply(request, 200, to_tag="b")
        self.h.respond(ok)
        self.assertEqual(txn.state, State.ACCEPTED)
        self.assertEqual(len(self.h.take_sent()), 1)  # sent once, no Timer G
        self.h.run_until(0.5)
        self.h.receive(make_request())  # INVITE retransmission: absorbed
        self.assertEqual(self.h.take_sent(), [])
        self.assertEqual(self.h.take_events(), [])
        self.h.respond(ok)  # the TU's own 2xx retransmission goes out
        self.assertInstants([t for t, _, _ in self.h.take_sent()], [0.5])
        ack = make_request("ACK", branch="z9hG4bK-ack", to_tag="b")
        self.h.receive(ack)
        self.assertEqual(self.h.take_events(), [RequestReceived(ack, UDP_PEER, None)])
        same_branch_ack = make_request("ACK", to_tag="b")  # matches the transaction
        self.h.receive(same_branch_ack)
        self.assertEqual(self.h.take_events(),
                         [RequestReceived(same_branch_ack, UDP_PEER, None)])
        self.assertEqual(txn.state, State.ACCEPTED)
        self.h.run_until(31.999)
        self.assertEqual(len(self.h.layer), 1)
        self.h.run_until(32.0)  # Timer L = 64*T1 after the 2xx
        self.assertEqual(self.h.events, [(32.0, TransactionTerminated(txn))])
        self.assertCleanedUp()

    def test_retransmission_after_termination_is_a_new_request(self) -> None:
        request = make_request()
        first = self.receive_invite(request)
        self.h.respond(make_reply(request, 200, to_tag="b"))
        self.h.run_until(40.0)
        self.assertCleanedUp()
        self.h.take_events()
        second = self.receive_invite(make_request())
        self.assertIsNot(second, first)

    def test_late_final_responses_are_discarded(self) -> None:
        request = make_request()
        self.receive_invite(request)
        self.h.respond(make_reply(request, 486, to_tag="b"))
        self.h.take_sent()
        self.h.respond(make_reply(request, 200, to_tag="b"))  # §17.2.1: discarded
        self.h.respond(make_reply(request, 180, to_tag="b"))
        self.assertEqual(self.h.take_sent(), [])


# -------------------------------------------------------------------- non-INVITE server


class NonInviteServerTests(LayerTestCase):
    def test_retransmissions_absorbed_and_answered_then_timer_j(self) -> None:
        request = make_request("OPTIONS")
        self.h.receive(request)
        [event] = self.h.take_events()
        assert isinstance(event, RequestReceived)
        txn = event.transaction
        self.assertIsInstance(txn, NonInviteServerTransaction)
        assert txn is not None
        self.assertEqual(txn.state, State.TRYING)
        self.h.receive(make_request("OPTIONS"))  # Trying: nothing to resend, TU not told
        self.assertEqual((self.h.take_sent(), self.h.take_events()), ([], []))
        self.h.run_until(0.3)
        self.assertEqual(self.h.take_sent(), [])  # no automatic 100 for non-INVITE
        self.h.respond(make_reply(request, 100))
        self.assertEqual(txn.state, State.PROCEEDING)
        self.h.receive(make_request("OPTIONS"))
        self.assertEqual(len(self.h.take_sent()), 2)  # 100 and its resend
        self.h.run_until(1.0)
        self.h.respond(make_reply(request, 200, to_tag="b"))
        self.assertEqual(txn.state, State.COMPLETED)
        [(_, final, _)] = self.h.take_sent()
        self.h.receive(make_request("OPTIONS"))
        self.assertEqual([d for _, d, _ in self.h.take_sent()], [final])
        self.h.respond(make_reply(request, 500, to_tag="b"))  # a second final: discarded
        self.assertEqual(self.h.take_sent(), [])
        self.assertEqual(self.h.take_events(), [])
        self.h.run_until(32.999)
        self.assertEqual(len(self.h.layer), 1)
        self.h.run_until(33.0)  # Timer J = 64*T1 after the final
        self.assertEqual(self.h.events, [(33.0, TransactionTerminated(txn))])
        self.assertCleanedUp()

    def test_timer_j_zero_over_tcp(self) -> None:
        request = make_request("OPTIONS", transport="TCP")
        self.h.receive(request, TCP_PEER)
        [event] = self.h.take_events()
        self.h.respond(make_reply(request, 200, to_tag="b"))
        self.assertEqual(self.h.take_events(), [TransactionTerminated(event.transaction)])
        self.assertCleanedUp()


class StatelessResponseTests(LayerTestCase):
    def test_response_without_transaction_follows_the_via(self) -> None:
        """§18.2.2: no transaction (e.g. a 400 to a broken request) -> sent-by of the Via."""
        request = make_request("OPTIONS", via_host="192.0.2.44")
        self.h.respond(make_reply(request, 400))
        [(_, data, target)] = self.h.take_sent()
        self.assertEqual(target, Target("UDP", "192.0.2.44", 5060))
        self.assertEqual(parse_message(data).status, 400)  # type: ignore[union-attr]
        self.assertCleanedUp()

    def test_received_and_rport_are_stamped_and_used(self) -> None:
        """§18.2.1 and RFC 3581: a NATed client gets its answers at the address it sent from."""
        nat = Target("UDP", "203.0.113.5", 40000)
        request = make_request("OPTIONS", via_host="10.0.0.2", via_params=";rport")
        self.h.receive(request, nat)
        via = request.top_via
        self.assertEqual(via.params["received"], "203.0.113.5")
        self.assertEqual(via.params["rport"], "40000")
        [event] = self.h.take_events()
        self.assertEqual(event.transaction.target, nat)  # type: ignore[union-attr]
        self.h.respond(make_reply(request, 200, to_tag="b"))
        [(_, data, target)] = self.h.take_sent()
        self.assertEqual(target, nat)
        reply_via = parse_message(data).top_via
        self.assertEqual((reply_via.params["received"], reply_via.params["rport"]),
                         ("203.0.113.5", "40000"))

    def test_received_without_rport_keeps_sent_by_port(self) -> None:
        source = Target("UDP", "203.0.113.5", 40000)
        request = make_request("OPTIONS", via_host="pc.example.com")
        self.h.receive(request, source)
        self.assertEqual(request.top_via.params["received"], "203.0.113.5")
        self.assertNotIn("rport", request.top_via.params)
        [event] = self.h.take_events()
        self.assertEqual(event.transaction.target,  # type: ignore[union-attr]
                         Target("UDP", "203.0.113.5", 5060))

    def test_via_left_alone_when_sent_by_is_the_source(self) -> None:
        request = make_request("OPTIONS")
        before = request.headers.get("Via")
        self.h.receive(request, UDP_PEER)
        self.assertEqual(request.headers.get("Via"), before)


# ------------------------------------------------------------------- RFC 2543 matching


class Rfc2543MatchingTests(LayerTestCase):
    """§17.2.3: without the magic cookie, match on Request-URI, tags, Call-ID, CSeq, Via."""

    def test_invite_retransmission_and_ack_by_response_to_tag(self) -> None:
        request = make_request(branch="old-2543-branch")
        self.h.receive(request)
        [event] = self.h.take_events()
        txn = event.transaction  # type: ignore[union-attr]
        assert isinstance(txn, InviteServerTransaction)
        self.h.receive(make_request(branch="old-2543-branch"))
        self.assertEqual(self.h.take_events(), [])  # retransmission absorbed
        other_call = make_request(branch="old-2543-branch", cseq=2)
        self.h.receive(other_call)
        [new_event] = self.h.take_events()
        self.assertIsNot(new_event.transaction, txn)  # type: ignore[union-attr]
        # the TU's final finds the transaction although its To now has a tag
        self.h.respond(make_reply(request, 404, to_tag="srv-tag"))
        self.assertEqual(txn.state, State.COMPLETED)
        self.assertIn("G", txn.deadlines)
        # an ACK with another To tag is not ours: up to the TU
        wrong = make_request("ACK", branch="old-2543-branch", to_tag="someone-else")
        self.h.receive(wrong)
        self.assertEqual(self.h.take_events(), [RequestReceived(wrong, UDP_PEER, None)])
        self.assertEqual(txn.state, State.COMPLETED)
        self.h.receive(make_request("ACK", branch="old-2543-branch", to_tag="srv-tag"))
        self.assertEqual(self.h.take_events(), [])
        self.assertEqual(txn.state, State.CONFIRMED)

    def test_no_branch_at_all(self) -> None:
        request = make_request("OPTIONS", branch=None)
        self.h.receive(request)
        [event] = self.h.take_events()
        txn = event.transaction  # type: ignore[union-attr]
        self.assertIsInstance(txn, NonInviteServerTransaction)
        self.h.respond(make_reply(request, 200, to_tag="b"))
        self.assertEqual(txn.state, State.COMPLETED)  # type: ignore[union-attr]
        [(_, final, _)] = self.h.take_sent()
        self.h.receive(make_request("OPTIONS", branch=None))
        self.assertEqual([d for _, d, _ in self.h.take_sent()], [final])
        self.assertEqual(self.h.take_events(), [])
        self.h.run_until(40)
        self.assertCleanedUp()

    def test_different_request_uri_or_via_is_a_different_transaction(self) -> None:
        self.h.receive(make_request("OPTIONS", branch="x1"))
        self.h.receive(make_request("OPTIONS", branch="x1", uri="sip:carol@example.com"))
        self.h.receive(make_request("OPTIONS", branch="x1", via_host="192.0.2.11"))
        self.h.receive(make_request("OPTIONS", branch="x1", transport="TCP"), TCP_PEER)
        self.assertEqual(event_types(self.h.take_events()), [RequestReceived] * 4)
        self.assertEqual(len(self.h.layer), 4)


# -------------------------------------------------------------------------------- CANCEL


class CancelMatchingTests(LayerTestCase):
    def test_cancel_is_its_own_transaction_and_finds_the_invite(self) -> None:
        invite = make_request()
        self.h.receive(invite)
        [invite_event] = self.h.take_events()
        cancel = make_request("CANCEL")
        self.h.receive(cancel)
        [cancel_event] = self.h.take_events()
        assert isinstance(cancel_event, RequestReceived)
        cancel_txn = cancel_event.transaction
        self.assertIsInstance(cancel_txn, NonInviteServerTransaction)
        self.assertIs(self.h.layer.find_server_invite(cancel),
                      invite_event.transaction)  # type: ignore[union-attr]
        # each response finds its own transaction by CSeq method
        self.h.respond(make_reply(cancel, 200, to_tag="b"))
        self.h.respond(make_reply(invite, 487, to_tag="b"))
        self.assertEqual(cancel_txn.state, State.COMPLETED)  # type: ignore[union-attr]
        self.assertEqual(invite_event.transaction.state,  # type: ignore[union-attr]
                         State.COMPLETED)

    def test_cancel_for_unknown_or_finished_invite(self) -> None:
        self.assertIsNone(self.h.layer.find_server_invite(make_request("CANCEL")))
        invite = make_request(transport="TCP")
        self.h.receive(invite, TCP_PEER)
        self.h.respond(make_reply(invite, 200, to_tag="b"))
        self.h.run_until(40)
        self.assertIsNone(self.h.layer.find_server_invite(make_request("CANCEL", transport="TCP")))

    def test_cancel_of_other_sent_by_does_not_match(self) -> None:
        self.h.receive(make_request())
        self.assertIsNone(self.h.layer.find_server_invite(
            make_request("CANCEL", via_host="192.0.2.99")))

    def test_rfc2543_cancel(self) -> None:
        self.h.receive(make_request(branch="plain"))
        [event] = self.h.take_events()
        cancel = make_request("CANCEL", branch="plain")
        self.assertIs(self.h.layer.find_server_invite(cancel),
                      event.transaction)  # type: ignore[union-attr]
        self.assertIsNone(self.h.layer.find_server_invite(
            make_request("CANCEL", branch="plain", cseq=7)))


# ------------------------------------------------------------------------ transport errors


class TransportErrorTests(LayerTestCase):
    def test_client_transactions_to_the_target_fail(self) -> None:
        invite = self.h.send_request(make_request(transport="TCP"), TCP_PEER)
        options = self.h.send_request(make_request("OPTIONS", branch="z9hG4bK-o",
                                                   transport="TCP"), TCP_PEER)
        elsewhere = self.h.send_request(make_request("OPTIONS", branch="z9hG4bK-e"), OTHER_PEER)
        self.h.layer.transport_error(Target("TCP", PEER_HOST, 5060), self.h.now)
        self.h.driver.pump()
        events = self.h.take_events()
        self.assertCountEqual(events, [TransportFailed(invite), TransactionTerminated(invite),
                                       TransportFailed(options), TransactionTerminated(options)])
        self.assertEqual(elsewhere.state, State.TRYING)
        self.assertEqual(len(self.h.layer), 1)

    def test_accepted_invite_is_not_failed(self) -> None:
        request = make_request()
        txn = self.h.send_request(request, UDP_PEER)
        self.h.receive(make_reply(request, 200, to_tag="b"))
        self.h.take_events()
        self.h.layer.transport_error(UDP_PEER, self.h.now)
        self.assertEqual(self.h.layer.take_events(), [])
        self.assertEqual(txn.state, State.ACCEPTED)

    def test_server_transaction_response_failure(self) -> None:
        """§17.2.4: a response that cannot be delivered is reported to the TU."""
        request = make_request(transport="TCP")
        self.h.receive(request, TCP_PEER)
        [event] = self.h.take_events()
        self.h.respond(make_reply(request, 180, to_tag="b"))
        self.h.layer.transport_error(TCP_PEER, self.h.now)
        self.h.driver.pump()
        self.assertEqual(self.h.take_events(), [TransportFailed(event.transaction),
                                                TransactionTerminated(event.transaction)])
        self.assertCleanedUp()


class ScaleTests(LayerTestCase):
    def test_many_transactions_all_cleaned_up(self) -> None:
        """Hundreds of mixed transactions end on their timers; nothing lingers."""
        for i in range(300):
            request = make_request("OPTIONS" if i % 2 else "INVITE", branch=f"z9hG4bK-{i}")
            txn = self.h.send_request(request, UDP_PEER)
            if i % 3 == 0:
                self.h.receive(make_reply(request, 200 if i % 2 else 486, to_tag="b"))
            incoming = make_request("OPTIONS" if i % 2 else "INVITE", branch=f"z9hG4bK-in{i}")
            self.h.receive(incoming)
            self.h.respond(make_reply(incoming, 200 if i % 2 else 603, to_tag="s"))
            self.assertIn(txn.state, (State.CALLING, State.TRYING, State.COMPLETED))
        self.assertEqual(len(self.h.layer), 600)
        self.h.run_until(100)
        self.assertCleanedUp()
        self.assertEqual(len(self.h.layer.timer_queue), 0)
        self.assertEqual(self.h.layer._by_target, {})
