"""The client transactions (RFC 3261 §17.1): INVITE (Figure 5, with RFC 6026's Accepted
state) and non-INVITE (Figure 6), each a table of responses and a table of timers; and
:func:`build_ack`, the ACK the INVITE client transaction sends for a non-2xx final."""

from __future__ import annotations

from typing import Callable, ClassVar

from wcsgw.sip.message import Headers, Request, Response
from wcsgw.sip.parser import serialize
from wcsgw.sip.target import Target
from wcsgw.sip.transaction.events import ResponseReceived
from wcsgw.sip.transaction.machine import (
    ResponseClass,
    State,
    Transaction,
    TransactionHost,
    classify,
)
from wcsgw.sip.transaction.matching import Key


def build_ack(invite: Request, response: Response) -> Request:
    """The ACK an INVITE client transaction sends for a 3xx-6xx final (§17.1.1.3).

    Request-URI, the single top Via (same branch), From, Call-ID and the CSeq number come from
    the INVITE, To from the response (it carries the tag), and the INVITE's Route headers.
    """
    headers = Headers()
    headers.add("Via", _require(invite, "Via"))
    for route in invite.headers.get_all("Route"):
        headers.add("Route", route)
    headers.add("Max-Forwards", invite.headers.get("Max-Forwards") or "70")
    headers.add("From", _require(invite, "From"))
    headers.add("To", _require(response, "To"))
    headers.add("Call-ID", _require(invite, "Call-ID"))
    headers.add("CSeq", f"{invite.cseq[0]} ACK")
    headers.add("Content-Length", "0")
    return Request("ACK", invite.uri, headers)


def _require(msg: Request | Response, name: str) -> str:
    value = msg.headers.get(name)
    assert value is not None, f"{name} checked when the message was matched"
    return value


class ClientTransaction(Transaction):
    """A request we sent, until its final response is settled (§17.1)."""

    _RESPONSES: ClassVar[dict[tuple[State, ResponseClass], Callable[..., None]]] = {}

    def __init__(self, layer: TransactionHost, request: Request, key: Key,
                 target: Target) -> None:
        super().__init__(layer, request, key, target)
        #: serialized once; every retransmission reuses these bytes
        self.wire = serialize(request)

    def start(self, now: float) -> None:
        raise NotImplementedError

    def on_response(self, response: Response, now: float) -> None:
        handler = self._RESPONSES.get((self.state, classify(response.status)))
        if handler is not None:
            handler(self, response, now)

    def _pass_up(self, response: Response, now: float) -> None:
        self._emit(ResponseReceived(response, self))


class InviteClientTransaction(ClientTransaction):
    """§17.1.1 (Figure 5) with RFC 6026 §7.2 (Accepted state, Timer M)."""

    _INITIAL = State.CALLING

    def __init__(self, layer: TransactionHost, request: Request, key: Key,
                 target: Target) -> None:
        super().__init__(layer, request, key, target)
        #: the ACK this transaction sent for a 3xx-6xx final (§17.1.1.3), once it has
        self.ack: Request | None = None
        self._ack_wire = b""

    def start(self, now: float) -> None:
        self._send(self.wire)
        if not self.target.reliable:  # §17.1.1.2: Timer A only over unreliable transports
            self._interval = self._config.t1
            self._arm("A", self._interval, now)
        self._arm("B", self._config.timeout, now)

    def _retransmit(self, now: float) -> None:
        # Timer A doubles without a cap; Timer B ends it at 64*T1.
        self._send(self.wire)
        self._interval *= 2
        self._arm("A", self._interval, now)

    def _proceed(self, response: Response, now: float) -> None:
        # No retransmissions in Proceeding, and Timer B only guards Calling (§17.1.1.2).
        self._enter(State.PROCEEDING)
        self._pass_up(response, now)

    def _accept(self, response: Response, now: float) -> None:
        # RFC 6026 §8.4: stay around (Timer M) so 2xx retransmissions reach the TU.
        self._enter(State.ACCEPTED)
        self._pass_up(response, now)
        self._arm("M", self._config.timeout, now)

    def _complete(self, response: Response, now: float) -> None:
        # §17.1.1.3: the transaction, not the TU, ACKs a non-2xx final.
        self._enter(State.COMPLETED)
        self.ack = build_ack(self.request, response)
        self._ack_wire = serialize(self.ack)
        self._send(self._ack_wire)
        self._pass_up(response, now)
        self._linger("D", self._config.d, now)

    def _resend_ack(self, response: Response, now: float) -> None:
        self._send(self._ack_wire)

    _RESPONSES = {
        (State.CALLING, ResponseClass.PROVISIONAL): _proceed,
        (State.PROCEEDING, ResponseClass.PROVISIONAL): ClientTransaction._pass_up,
        (State.CALLING, ResponseClass.SUCCESS): _accept,
        (State.PROCEEDING, ResponseClass.SUCCESS): _accept,
        (State.CALLING, ResponseClass.FAILURE): _complete,
        (State.PROCEEDING, ResponseClass.FAILURE): _complete,
        (State.COMPLETED, ResponseClass.FAILURE): _resend_ack,
        (State.ACCEPTED, ResponseClass.SUCCESS): ClientTransaction._pass_up,
    }
    _TIMERS = {
        (State.CALLING, "A"): _retransmit,
        (State.CALLING, "B"): Transaction._timeout,
        (State.COMPLETED, "D"): Transaction._terminate,
        (State.ACCEPTED, "M"): Transaction._terminate,
    }
    # Figure 5: Calling and Completed report transport errors; Proceeding is waiting on the
    # peer's answer over the same path, so a failure there means the answer cannot come.
    _FAIL_ON_TRANSPORT_ERROR = frozenset({State.CALLING, State.PROCEEDING, State.COMPLETED})


class NonInviteClientTransaction(ClientTransaction):
    """§17.1.2 (Figure 6)."""

    _INITIAL = State.TRYING

    def start(self, now: float) -> None:
        self._send(self.wire)
        if not self.target.reliable:
            self._interval = self._config.t1
            self._arm("E", self._interval, now)
        self._arm("F", self._config.timeout, now)

    def _retransmit_trying(self, now: float) -> None:
        # §17.1.2.2: E doubles, capped at T2.
        self._send(self.wire)
        self._interval = min(2 * self._interval, self._config.t2)
        self._arm("E", self._interval, now)

    def _retransmit_proceeding(self, now: float) -> None:
        # §17.1.2.2: once a provisional arrived, E fires every T2.
        self._send(self.wire)
        self._interval = self._config.t2
        self._arm("E", self._interval, now)

    def _proceed(self, response: Response, now: float) -> None:
        self.state = State.PROCEEDING  # E and F keep running
        self._pass_up(response, now)

    def _complete(self, response: Response, now: float) -> None:
        self._enter(State.COMPLETED)
        self._pass_up(response, now)
        # Timer K absorbs retransmitted finals: T4 unreliable, 0 reliable.
        self._linger("K", self._config.t4, now)

    _RESPONSES = {
        (State.TRYING, ResponseClass.PROVISIONAL): _proceed,
        (State.PROCEEDING, ResponseClass.PROVISIONAL): _proceed,
        (State.TRYING, ResponseClass.SUCCESS): _complete,
        (State.PROCEEDING, ResponseClass.SUCCESS): _complete,
        (State.TRYING, ResponseClass.FAILURE): _complete,
        (State.PROCEEDING, ResponseClass.FAILURE): _complete,
    }
    _TIMERS = {
        (State.TRYING, "E"): _retransmit_trying,
        (State.PROCEEDING, "E"): _retransmit_proceeding,
        (State.TRYING, "F"): Transaction._timeout,
        (State.PROCEEDING, "F"): Transaction._timeout,
        (State.COMPLETED, "K"): Transaction._terminate,
    }
    _FAIL_ON_TRANSPORT_ERROR = frozenset({State.TRYING, State.PROCEEDING})
