"""SIP transactions, sans-IO: RFC 3261 §17 with the RFC 6026 fixes for 2xx to INVITE.

Messages, transport errors and the time come in as method calls with ``now`` passed explicitly;
datagrams to send (:meth:`TransactionLayer.take_outgoing`), events for the transaction user
(:meth:`TransactionLayer.take_events`) and the next instant the layer wants to be woken
(:meth:`TransactionLayer.next_deadline`) come out.  Nothing here reads a clock or touches a
socket, so every timer rule is a unit test with a fake clock (see ``wcsgw.sip.driver``).

The four state machines are small transition tables keyed by ``(state, input)``; an input with
no entry in the table is absorbed, which is how the RFC's "MUST be discarded" rules read.
Matching is a dict lookup per message: client transactions by (top-Via branch, CSeq method)
(§17.1.3), server transactions by (branch, sent-by, method) (§17.2.3), with the RFC 2543
fall-back keys for branches lacking the magic cookie.
"""

from __future__ import annotations

import enum
from typing import Callable, ClassVar, Hashable, Union

import attr

from wcsgw.sip.headers import Via
from wcsgw.sip.message import Headers, Request, Response
from wcsgw.sip.parser import serialize
from wcsgw.sip.responses import make_response
from wcsgw.sip.target import Target, default_port, response_target, unbracket
from wcsgw.sip.timers import TimerConfig, TimerQueue

__all__ = [
    "State",
    "TimerConfig",
    "Transaction",
    "ClientTransaction",
    "InviteClientTransaction",
    "NonInviteClientTransaction",
    "ServerTransaction",
    "InviteServerTransaction",
    "NonInviteServerTransaction",
    "TransactionLayer",
    "RequestReceived",
    "ResponseReceived",
    "StrayResponse",
    "TransactionTimeout",
    "TransportFailed",
    "TransactionTerminated",
    "Event",
    "build_ack",
]


class State(enum.Enum):
    """Transaction states; the names are the RFC's (Figures 5-8, RFC 6026 Figures 3-5)."""

    CALLING = "Calling"
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"
    ACCEPTED = "Accepted"
    TERMINATED = "Terminated"


class _Class(enum.Enum):
    """Response classes as the state machines tell them apart."""

    PROVISIONAL = "1xx"
    SUCCESS = "2xx"
    FAILURE = "3xx-6xx"


def _classify(status: int) -> _Class:
    if status < 200:
        return _Class.PROVISIONAL
    if status < 300:
        return _Class.SUCCESS
    return _Class.FAILURE


# --------------------------------------------------------------------------------- events


@attr.s(frozen=True, slots=True, auto_attribs=True)
class RequestReceived:
    """A new request for the TU (retransmissions are absorbed by its server transaction).

    ``transaction`` is None for an ACK that matched no transaction or matched an INVITE
    server transaction in Accepted: the ACK of a 2xx, which belongs to the dialog (RFC 6026).
    """

    request: Request
    source: Target
    transaction: "ServerTransaction | None"


@attr.s(frozen=True, slots=True, auto_attribs=True)
class ResponseReceived:
    """A response for the TU: 1xx and the first final, plus 2xx retransmissions while an
    INVITE client transaction is Accepted (RFC 6026 §8.4: the TU must re-ACK them)."""

    response: Response
    transaction: "ClientTransaction"


@attr.s(frozen=True, slots=True, auto_attribs=True)
class StrayResponse:
    """A response matching no client transaction (§18.1.2 hands it to the core; a stray 2xx
    to INVITE is typically ACKed and BYEd by the TU)."""

    response: Response
    source: Target


@attr.s(frozen=True, slots=True, auto_attribs=True)
class TransactionTimeout:
    """Timer B, F or H fired.  For H the TU learns that the ACK to its final never came."""

    transaction: "Transaction"


@attr.s(frozen=True, slots=True, auto_attribs=True)
class TransportFailed:
    """The transport reported that sending to the transaction's peer failed (§17.1.1.2,
    §17.1.2.2, §17.2.4); the transaction is terminated right after this event."""

    transaction: "Transaction"


@attr.s(frozen=True, slots=True, auto_attribs=True)
class TransactionTerminated:
    """The transaction reached Terminated and is gone from the layer (bookkeeping)."""

    transaction: "Transaction"


Event = Union[
    RequestReceived,
    ResponseReceived,
    StrayResponse,
    TransactionTimeout,
    TransportFailed,
    TransactionTerminated,
]


# ------------------------------------------------------------------------------- matching

Key = tuple[Hashable, ...]


def _is_rfc3261(via: Via) -> bool:
    """§17.2.3: only a branch starting with the magic cookie (and carrying something after it,
    RFC 4475 badbranch) is trusted to be unique."""
    return via.rfc3261_branch


def _sent_by(via: Via) -> tuple[str, int]:
    return via.host.lower(), via.port or default_port(via.transport)


def _via_identity(via: Via) -> tuple[Hashable, ...]:
    """What "the top Via matches" means for RFC 2543 matching.  Parameters the server adds on
    receipt (received, rport) are left out so the request and its responses agree."""
    return (via.transport.upper(), *_sent_by(via), via.branch)


def _server_key_3261(via: Via, method: str) -> Key:
    # §17.2.3: branch + sent-by + method, where an ACK belongs to the INVITE's transaction.
    return ("3261", via.branch, *_sent_by(via), "INVITE" if method == "ACK" else method)


def _request_key_2543(request: Request, via: Via, method: str) -> Key:
    """§17.2.3 fall-back: Request-URI, To tag, From tag, Call-ID, CSeq and top Via."""
    number, _ = request.cseq
    return (
        "2543",
        request.uri,
        request.to.tag,
        request.from_.tag,
        request.call_id,
        number,
        method,
        _via_identity(via),
    )


def _ack_key_2543(request: Request, via: Via, to_tag: str | None) -> Key:
    """§17.2.3 fall-back for ACK: as the INVITE but CSeq number only, and the To tag of the
    *response* the server transaction sent (which the ACK copies)."""
    number, _ = request.cseq
    return ("2543-ACK", request.uri, request.from_.tag, request.call_id, number,
            _via_identity(via), to_tag)


def _response_key_2543(msg: Request | Response, via: Via) -> Key:
    """How a TU's response finds its RFC 2543 server transaction: the response carries no
    Request-URI and gains a To tag, so the key uses what it copies unchanged (§8.2.6.2)."""
    number, method = msg.cseq
    return ("2543-R", msg.call_id, msg.from_.tag, number, method, _via_identity(via))


def _incoming_request_key(request: Request, via: Via) -> Key:
    if _is_rfc3261(via):
        return _server_key_3261(via, request.method)
    if request.method == "ACK":
        return _ack_key_2543(request, via, request.to.tag)
    return _request_key_2543(request, via, request.method)


def _outgoing_response_key(response: Response, via: Via) -> Key:
    if _is_rfc3261(via):
        return _server_key_3261(via, response.cseq[1])
    return _response_key_2543(response, via)


def _stamp_received(request: Request, source: Target) -> None:
    """§18.2.1 and RFC 3581 §4: record where the request really came from in its top Via, so
    responses (stateful or not, built by copying the Via) find their way back."""
    via = request.top_via
    params = via.params
    changed = False
    if "rport" in params and params["rport"] is None:
        params["rport"] = str(source.port)
        params["received"] = source.host  # RFC 3581: always, with rport
        changed = True
    elif unbracket(via.host) != source.host and params.get("received") != source.host:
        params["received"] = source.host
        changed = True
    if changed:
        request.headers.remove_first("Via")
        request.headers.prepend("Via", str(via))


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


# --------------------------------------------------------------------------- transactions


class Transaction:
    """What all four machines share: identity, timers, output, and table dispatch.

    Each concrete class fills ``_TIMERS`` (``(state, timer name) -> handler``) and
    ``_FAIL_ON_TRANSPORT_ERROR``; a timer or input the table does not list is ignored.
    """

    _INITIAL: ClassVar[State]
    _TIMERS: ClassVar[dict[tuple[State, str], Callable[..., None]]] = {}
    _FAIL_ON_TRANSPORT_ERROR: ClassVar[frozenset[State]] = frozenset()

    def __init__(self, layer: "TransactionLayer", request: Request, key: Key,
                 target: Target) -> None:
        self.request = request
        self.key = key
        #: client: where the request goes; server: where responses go (§18.2.2).
        self.target = target
        self.state = self._INITIAL
        self._layer = layer
        self._config = layer.timers
        self._interval = 0.0  # current retransmission interval of Timer A, E or G

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.request.method} {self.state.value} {self.key!r}>"

    @property
    def deadlines(self) -> dict[str, float]:
        """Armed timers by RFC name (``{"A": 1.5, "B": 32.0}``): for tests and debugging."""
        return self._layer._queue.armed(self)

    # -- inputs the layer feeds in --

    def on_timer(self, name: str, now: float) -> None:
        handler = self._TIMERS.get((self.state, name))
        if handler is not None:
            handler(self, now)

    def on_transport_error(self, now: float) -> None:
        if self.state in self._FAIL_ON_TRANSPORT_ERROR:
            self._layer._emit(TransportFailed(self))
            self._terminate()

    # -- helpers for the state machines --

    def _arm(self, name: str, delay: float, now: float) -> None:
        self._layer._queue.arm(self, name, now + delay)

    def _cancel(self, *names: str) -> None:
        for name in names:
            self._layer._queue.cancel(self, name)

    def _enter(self, state: State) -> None:
        """Move to ``state``, dropping every timer of the state left behind."""
        self._layer._queue.cancel_all(self)
        self.state = state

    def _linger(self, name: str, unreliable_delay: float, now: float) -> None:
        """Arm a wait-for-retransmissions timer (D, I, J, K): zero on reliable transports,
        where "Terminated immediately" is what the RFC means."""
        if self.target.reliable or unreliable_delay <= 0:
            self._terminate()
        else:
            self._arm(name, unreliable_delay, now)

    def _send(self, data: bytes) -> None:
        self._layer._outgoing.append((data, self.target))

    def _emit(self, event: Event) -> None:
        self._layer._emit(event)

    def _terminate(self, now: float = 0.0) -> None:
        self._layer._terminate(self)

    def _timeout(self, now: float) -> None:
        self._emit(TransactionTimeout(self))
        self._terminate()


class ClientTransaction(Transaction):
    """A request we sent, until its final response is settled (§17.1)."""

    _RESPONSES: ClassVar[dict[tuple[State, _Class], Callable[..., None]]] = {}

    def __init__(self, layer: "TransactionLayer", request: Request, key: Key,
                 target: Target) -> None:
        super().__init__(layer, request, key, target)
        #: serialized once; every retransmission reuses these bytes
        self.wire = serialize(request)

    def start(self, now: float) -> None:
        raise NotImplementedError

    def on_response(self, response: Response, now: float) -> None:
        handler = self._RESPONSES.get((self.state, _classify(response.status)))
        if handler is not None:
            handler(self, response, now)

    def _pass_up(self, response: Response, now: float) -> None:
        self._emit(ResponseReceived(response, self))


class InviteClientTransaction(ClientTransaction):
    """§17.1.1 (Figure 5) with RFC 6026 §7.2 (Accepted state, Timer M)."""

    _INITIAL = State.CALLING

    def __init__(self, layer: "TransactionLayer", request: Request, key: Key,
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
        (State.CALLING, _Class.PROVISIONAL): _proceed,
        (State.PROCEEDING, _Class.PROVISIONAL): ClientTransaction._pass_up,
        (State.CALLING, _Class.SUCCESS): _accept,
        (State.PROCEEDING, _Class.SUCCESS): _accept,
        (State.CALLING, _Class.FAILURE): _complete,
        (State.PROCEEDING, _Class.FAILURE): _complete,
        (State.COMPLETED, _Class.FAILURE): _resend_ack,
        (State.ACCEPTED, _Class.SUCCESS): ClientTransaction._pass_up,
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
        (State.TRYING, _Class.PROVISIONAL): _proceed,
        (State.PROCEEDING, _Class.PROVISIONAL): _proceed,
        (State.TRYING, _Class.SUCCESS): _complete,
        (State.PROCEEDING, _Class.SUCCESS): _complete,
        (State.TRYING, _Class.FAILURE): _complete,
        (State.PROCEEDING, _Class.FAILURE): _complete,
    }
    _TIMERS = {
        (State.TRYING, "E"): _retransmit_trying,
        (State.PROCEEDING, "E"): _retransmit_proceeding,
        (State.TRYING, "F"): Transaction._timeout,
        (State.PROCEEDING, "F"): Transaction._timeout,
        (State.COMPLETED, "K"): Transaction._terminate,
    }
    _FAIL_ON_TRANSPORT_ERROR = frozenset({State.TRYING, State.PROCEEDING})


class ServerTransaction(Transaction):
    """A request we received, until our final response is settled (§17.2)."""

    _REQUESTS: ClassVar[dict[tuple[State, bool], Callable[..., None]]] = {}
    _TU_RESPONSES: ClassVar[dict[tuple[State, _Class], Callable[..., None]]] = {}

    def __init__(self, layer: "TransactionLayer", request: Request, key: Key,
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
        handler = self._TU_RESPONSES.get((self.state, _classify(response.status)))
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
        (State.PROCEEDING, _Class.PROVISIONAL): _provisional,
        (State.PROCEEDING, _Class.SUCCESS): _accept,
        (State.PROCEEDING, _Class.FAILURE): _complete,
        (State.ACCEPTED, _Class.SUCCESS): _resend_2xx,
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
        (State.TRYING, _Class.PROVISIONAL): _provisional,
        (State.PROCEEDING, _Class.PROVISIONAL): _provisional,
        (State.TRYING, _Class.SUCCESS): _complete,
        (State.PROCEEDING, _Class.SUCCESS): _complete,
        (State.TRYING, _Class.FAILURE): _complete,
        (State.PROCEEDING, _Class.FAILURE): _complete,
    }
    _TIMERS = {(State.COMPLETED, "J"): Transaction._terminate}
    _FAIL_ON_TRANSPORT_ERROR = frozenset({State.TRYING, State.PROCEEDING, State.COMPLETED})


# ---------------------------------------------------------------------------------- layer


class TransactionLayer:
    """All transactions of one SIP stack: matching, timers, and the sans-IO outputs."""

    def __init__(self, timers: TimerConfig = TimerConfig()) -> None:
        self.timers = timers
        self._queue: TimerQueue[Transaction] = TimerQueue()
        self._clients: dict[Key, ClientTransaction] = {}
        #: several keys may lead to one server transaction (RFC 2543 request/response/ACK)
        self._servers: dict[Key, ServerTransaction] = {}
        self._server_keys: dict[ServerTransaction, list[Key]] = {}
        self._by_target: dict[Target, set[Transaction]] = {}
        self._outgoing: list[tuple[bytes, Target]] = []
        self._events: list[Event] = []

    # -- TU -> network --

    def send_request(self, request: Request, target: Target,
                     now: float) -> ClientTransaction | None:
        """Start a client transaction for ``request`` (its top Via already has a branch).

        An ACK is never a transaction (§17.1.1.3 for non-2xx is done by the transaction, the
        2xx ACK is the TU's): it is sent as is and None is returned.
        """
        if request.method == "ACK":
            self.send_stateless(request, target)
            return None
        branch = request.top_via.branch
        if not branch:
            raise ValueError("a request needs a branch in its top Via (§8.1.1.7)")
        key = (branch, request.method)
        if key in self._clients:
            raise ValueError(f"a {request.method} transaction with branch {branch} is live")
        cls = InviteClientTransaction if request.method == "INVITE" else NonInviteClientTransaction
        txn = cls(self, request, key, target)
        self._clients[key] = txn
        self._by_target.setdefault(target, set()).add(txn)
        txn.start(now)
        return txn

    def send_response(self, response: Response, now: float) -> None:
        """Send a TU response through its server transaction, else statelessly (§18.2.2)."""
        via = response.top_via
        txn = self._servers.get(_outgoing_response_key(response, via))
        if txn is None:
            self.send_stateless(response, response_target(via))
            return
        before = txn.state
        txn.on_tu_response(response, now)
        if (
            isinstance(txn, InviteServerTransaction)
            and before is State.PROCEEDING
            and txn.state in (State.COMPLETED, State.ACCEPTED)
            and not _is_rfc3261(txn.request.top_via)
        ):
            # §17.2.3: an RFC 2543 ACK is matched by the To tag of the response it acknowledges.
            top = txn.request.top_via
            self._add_server_key(txn, _ack_key_2543(txn.request, top, response.to.tag))

    def send_stateless(self, msg: Request | Response, target: Target) -> None:
        """Queue ``msg`` for ``target`` with no transaction (ACK of 2xx, stateless replies)."""
        self._outgoing.append((serialize(msg), target))

    # -- network -> TU --

    def receive(self, msg: Request | Response, source: Target, now: float) -> None:
        """Feed a parsed message.  Raises SipParseError (before changing any state) when the
        headers matching needs (Via, CSeq, and for RFC 2543 peers From/To/Call-ID) are bad;
        the caller treats that like any parse error (a 400 for requests)."""
        msg.source = source  # the TU may need it past the events (e.g. an answer's sender)
        if isinstance(msg, Request):
            self._receive_request(msg, source, now)
        else:
            self._receive_response(msg, source, now)

    def _receive_request(self, request: Request, source: Target, now: float) -> None:
        _stamp_received(request, source)
        via = request.top_via
        key = _incoming_request_key(request, via)
        txn = self._servers.get(key)
        if txn is not None:
            txn.on_request(request, source, now)
            return
        if request.method == "ACK":
            self._emit(RequestReceived(request, source, None))  # the ACK of a 2xx: TU's
            return
        cls = (InviteServerTransaction if request.method == "INVITE"
               else NonInviteServerTransaction)
        new = cls(self, request, key, source, response_target(via, source.connection))
        self._server_keys[new] = []
        self._add_server_key(new, key)
        if not _is_rfc3261(via):
            self._add_server_key(new, _response_key_2543(request, via))
        self._by_target.setdefault(new.target, set()).add(new)
        self._emit(RequestReceived(request, source, new))
        new.start(now)

    def _receive_response(self, response: Response, source: Target, now: float) -> None:
        branch = response.top_via.branch  # §17.1.3: branch + CSeq method
        txn = self._clients.get((branch, response.cseq[1])) if branch else None
        if txn is None:
            self._emit(StrayResponse(response, source))
        else:
            txn.on_response(response, now)

    def transport_error(self, target: Target, now: float) -> None:
        """Sending to ``target`` failed (connection refused/reset, ICMP unreachable)."""
        for txn in list(self._by_target.get(target, ())):
            txn.on_transport_error(now)

    def find_server_invite(self, cancel: Request) -> ServerTransaction | None:
        """The INVITE server transaction a received CANCEL cancels (§9.2), if still live."""
        via = cancel.top_via
        if _is_rfc3261(via):
            key = _server_key_3261(via, "INVITE")
        else:
            key = _request_key_2543(cancel, via, "INVITE")
        txn = self._servers.get(key)
        return txn if isinstance(txn, InviteServerTransaction) else None

    # -- time and outputs --

    def handle_timer(self, now: float) -> None:
        """Fire every timer due at ``now``."""
        while (due := self._queue.pop_due(now)) is not None:
            txn, name = due
            txn.on_timer(name, now)

    def next_deadline(self) -> float | None:
        return self._queue.next_deadline()

    def take_outgoing(self) -> list[tuple[bytes, Target]]:
        out, self._outgoing = self._outgoing, []
        return out

    def take_events(self) -> list[Event]:
        events, self._events = self._events, []
        return events

    def __len__(self) -> int:
        return len(self._clients) + len(self._server_keys)

    # -- internals used by the transactions --

    def _emit(self, event: Event) -> None:
        self._events.append(event)

    def _add_server_key(self, txn: ServerTransaction, key: Key) -> None:
        self._servers[key] = txn
        self._server_keys[txn].append(key)

    def abandon(self, txn: Transaction) -> None:
        """Destroy ``txn`` now, whatever its state: RFC 3261 §9.1, an INVITE whose CANCEL got
        no final response within 64*T1 is considered cancelled (it has no timer of its own in
        Proceeding, so without this it would live forever)."""
        self._terminate(txn)

    def _terminate(self, txn: Transaction) -> None:
        if txn.state is State.TERMINATED:
            return
        txn.state = State.TERMINATED
        self._queue.cancel_all(txn)
        if isinstance(txn, ClientTransaction):
            if self._clients.get(txn.key) is txn:
                del self._clients[txn.key]
        else:
            assert isinstance(txn, ServerTransaction)
            for key in self._server_keys.pop(txn, ()):
                if self._servers.get(key) is txn:
                    del self._servers[key]
        peers = self._by_target.get(txn.target)
        if peers is not None:
            peers.discard(txn)
            if not peers:
                del self._by_target[txn.target]
        self._emit(TransactionTerminated(txn))
