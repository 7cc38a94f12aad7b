"""The server transactions (RFC 3261 §17.2): INVITE (Figure 7, with RFC 6026's Accepted
state) and non-INVITE (Figure 8), each a table of requests (retransmissions, the ACK), a table
of the TU's responses and a table of timers."""

from __future__ import annotations

from typing import Callable, ClassVar

from wcsgw.sip.message import Request, Response
from wcsgw.sip.parser import serialize
from wcsgw.sip.responses import make_response
from wcsgw.sip.target import Target
from wcsgw.sip.transaction.events import RequestReceived
from wcsgw.sip.transaction.machine import (
    ResponseClass,
    State,
    Transaction,
    TransactionHost,
    classify,
)
from wcsgw.sip.transaction.matching import Key


class ServerTransaction(Transaction):
    """A request we received, until our final response is settled (§17.2)."""

    _REQUESTS: ClassVar[dict[tuple[State, bool], Callable[..., None]]] = {}
    _TU_RESPONSES: ClassVar[dict[tuple[State, ResponseClass], Callable[..., None]]] = {}

    def __init__(self, layer: TransactionHost, request: Request, key: Key,
                 source: Target, target: Target) -> None:
        super().__init__(layer, request, key, target)
        #: where the request came from (with its stream connection, if any)
        self.source = source
        self.last_response: Response | None = None
        self._last_wire: bytes | None = None

    def start(self, now: float) -> None:
        raise NotImplementedError

    def on_request(self, request: Request, source: Target, now: float) -> None:
        """A retransmission of our request, or (INVITE) the ACK of our final."""
        handler = self._REQUESTS.get((self.state, request.method == "ACK"))
        if handler is not None:
            handler(self, request, source, now)

    def on_tu_response(self, response: Response, now: float) -> None:
        handler = self._TU_RESPONSES.get((self.state, classify(response.status)))
        if handler is not None:
            handler(self, response, now)

    def _respond(self, response: Response) -> None:
        self.last_response = response
        self._last_wire = serialize(response)
        self._send(self._last_wire)

    def _resend_last(self, request: Request, source: Target, now: float) -> None:
        if self._last_wire is not None:
            self._send(self._last_wire)

    def _absorb(self, request: Request, source: Target, now: float) -> None:
        pass


class InviteServerTransaction(ServerTransaction):
    """§17.2.1 (Figure 7) with RFC 6026 §7.1 (Accepted state, Timer L)."""

    _INITIAL = State.PROCEEDING

    def start(self, now: float) -> None:
        # §17.2.1: a 100 Trying unless the TU answers within 200 ms.
        self._arm("Trying", self._config.trying, now)

    def _send_trying(self, now: float) -> None:
        # make_response echoes Timestamp and adds no To tag, as §8.2.6.1 asks of a 100.
        self._respond(make_response(self.request, 100))

    def _provisional(self, response: Response, now: float) -> None:
        self._cancel("Trying")
        self._respond(response)

    def _accept(self, response: Response, now: float) -> None:
        # RFC 6026 §8.5: the TU retransmits the 2xx; we absorb INVITE retransmissions and
        # pass ACKs up until Timer L.
        self._enter(State.ACCEPTED)
        self._respond(response)
        self._arm("L", self._config.timeout, now)

    def _resend_2xx(self, response: Response, now: float) -> None:
        self._respond(response)  # the TU's own 2xx retransmission (RFC 6026 §8.6)

    def _complete(self, response: Response, now: float) -> None:
        self._enter(State.COMPLETED)
        self._respond(response)
        if not self.target.reliable:
            self._interval = self._config.t1
            self._arm("G", self._interval, now)
        self._arm("H", self._config.timeout, now)

    def _retransmit_final(self, now: float) -> None:
        # Timer G doubles, capped at T2 (§17.2.1).
        assert self._last_wire is not None
        self._send(self._last_wire)
        self._interval = min(2 * self._interval, self._config.t2)
        self._arm("G", self._interval, now)

    def _confirm(self, request: Request, source: Target, now: float) -> None:
        # The ACK of our non-2xx: absorbed; Timer I soaks up its retransmissions.
        self._enter(State.CONFIRMED)
        self._linger("I", self._config.t4, now)

    def _ack_to_tu(self, request: Request, source: Target, now: float) -> None:
        # RFC 6026 §8.7: in Accepted an ACK is the 2xx's, which belongs to the dialog.
        self._emit(RequestReceived(request, source, None))

    _REQUESTS = {
        (State.PROCEEDING, False): ServerTransaction._resend_last,
        (State.COMPLETED, False): ServerTransaction._resend_last,
        (State.COMPLETED, True): _confirm,
        (State.ACCEPTED, True): _ack_to_tu,
        # absorbed: INVITE in Confirmed/Accepted, ACK in Proceeding/Confirmed
    }
    _TU_RESPONSES = {
        (State.PROCEEDING, ResponseClass.PROVISIONAL): _provisional,
        (State.PROCEEDING, ResponseClass.SUCCESS): _accept,
        (State.PROCEEDING, ResponseClass.FAILURE): _complete,
        (State.ACCEPTED, ResponseClass.SUCCESS): _resend_2xx,
    }
    _TIMERS = {
        (State.PROCEEDING, "Trying"): _send_trying,
        (State.COMPLETED, "G"): _retransmit_final,
        (State.COMPLETED, "H"): Transaction._timeout,
        (State.CONFIRMED, "I"): Transaction._terminate,
        (State.ACCEPTED, "L"): Transaction._terminate,
    }
    _FAIL_ON_TRANSPORT_ERROR = frozenset({State.PROCEEDING, State.COMPLETED, State.ACCEPTED})


class NonInviteServerTransaction(ServerTransaction):
    """§17.2.2 (Figure 8)."""

    _INITIAL = State.TRYING

    def start(self, now: float) -> None:
        pass  # Trying: waiting for the TU, no timers (Figure 8)

    def _provisional(self, response: Response, now: float) -> None:
        self.state = State.PROCEEDING
        self._respond(response)

    def _complete(self, response: Response, now: float) -> None:
        self._enter(State.COMPLETED)
        self._respond(response)
        # Timer J absorbs request retransmissions: 64*T1 unreliable, 0 reliable.
        self._linger("J", self._config.timeout, now)

    _REQUESTS = {
        # Trying: retransmissions are discarded (the TU has not answered yet)
        (State.PROCEEDING, False): ServerTransaction._resend_last,
        (State.COMPLETED, False): ServerTransaction._resend_last,
    }
    _TU_RESPONSES = {
        (State.TRYING, ResponseClass.PROVISIONAL): _provisional,
        (State.PROCEEDING, ResponseClass.PROVISIONAL): _provisional,
        (State.TRYING, ResponseClass.SUCCESS): _complete,
        (State.PROCEEDING, ResponseClass.SUCCESS): _complete,
        (State.TRYING, ResponseClass.FAILURE): _complete,
        (State.PROCEEDING, ResponseClass.FAILURE): _complete,
    }
    _TIMERS = {(State.COMPLETED, "J"): Transaction._terminate}
    _FAIL_ON_TRANSPORT_ERROR = frozenset({State.TRYING, State.PROCEEDING, State.COMPLETED})
