"""The transaction layer: every transaction of one SIP stack, found by its key, their timers
in one queue, and the sans-IO outputs (datagrams to send, events for the TU, the next
deadline)."""

from __future__ import annotations

from wcsgw.sip.locate import Locations
from wcsgw.sip.message import Request, Response
from wcsgw.sip.parser import serialize
from wcsgw.sip.target import Target, response_target
from wcsgw.sip.timers import TimerConfig, TimerQueue
from wcsgw.sip.transaction.client import (
    ClientTransaction,
    InviteClientTransaction,
    NonInviteClientTransaction,
)
from wcsgw.sip.transaction.events import (
    Event,
    RequestReceived,
    StrayResponse,
    TransactionTerminated,
    TransactionTimeout,
    TransportFailed,
)
from wcsgw.sip.transaction.failover import Failover
from wcsgw.sip.transaction.machine import State, Transaction
from wcsgw.sip.transaction.matching import (
    Key,
    ack_key_2543,
    incoming_request_key,
    is_rfc3261,
    outgoing_response_key,
    request_key_2543,
    response_key_2543,
    server_key_3261,
    stamp_received,
)
from wcsgw.sip.transaction.server import (
    InviteServerTransaction,
    NonInviteServerTransaction,
    ServerTransaction,
)


def old_enough(started: float, now: float, grace: float) -> bool:
    """Whether a transaction started at ``started`` has tried for ``grace`` seconds.

    Why a grace at all: an ICMP port unreachable also answers a request sent in the moment a
    server is (re)starting — a PBX restarted, a peer started a moment before it is called —
    and over UDP the RFC's retransmissions would have reached it a little later.  So an ICMP
    error fails only a transaction that has been retransmitting for a while (still seconds,
    not Timer B/F's 32); a younger one goes on, and its next retransmission's ICMP decides."""
    return now - started >= grace


class TransactionLayer:
    """All transactions of one SIP stack: matching, timers, and the sans-IO outputs."""

    def __init__(self, timers: TimerConfig = TimerConfig(),
                 locations: Locations | None = None) -> None:
        self.timers = timers
        #: every transaction's timers (:class:`~wcsgw.sip.transaction.machine.TransactionHost`)
        self.timer_queue: TimerQueue[Transaction] = TimerQueue()
        self._clients: dict[Key, ClientTransaction] = {}
        #: several keys may lead to one server transaction (RFC 2543 request/response/ACK)
        self._servers: dict[Key, ServerTransaction] = {}
        self._server_keys: dict[ServerTransaction, list[Key]] = {}
        self._by_target: dict[Target, set[Transaction]] = {}
        self._outgoing: list[tuple[bytes, Target]] = []
        self._events: list[Event] = []
        #: RFC 3263 targets of named hosts (None: send by name, the transport resolves)
        self.failover = Failover(self, locations)

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
        self.failover.begin(txn, now)
        return txn

    def launch(self, txn: ClientTransaction, now: float) -> None:
        """Register ``txn`` under its key and target and send it (Failover's too)."""
        self._clients[txn.key] = txn
        self._by_target.setdefault(txn.target, set()).add(txn)
        txn.started = now
        txn.start(now)

    def located(self, now: float) -> None:
        """New located targets arrived: launch the transactions that waited for them."""
        self.failover.located(now)

    def send_response(self, response: Response, now: float) -> None:
        """Send a TU response through its server transaction, else statelessly (§18.2.2)."""
        via = response.top_via
        txn = self._servers.get(outgoing_response_key(response, via))
        if txn is None:
            self.send_stateless(response, response_target(via))
            return
        before = txn.state
        txn.on_tu_response(response, now)
        if (
            isinstance(txn, InviteServerTransaction)
            and before is State.PROCEEDING
            and txn.state in (State.COMPLETED, State.ACCEPTED)
            and not is_rfc3261(txn.request.top_via)
        ):
            # §17.2.3: an RFC 2543 ACK is matched by the To tag of the response it acknowledges.
            top = txn.request.top_via
            self._add_server_key(txn, ack_key_2543(txn.request, top, response.to.tag))

    def send_stateless(self, msg: Request | Response, target: Target) -> None:
        """Queue ``msg`` for ``target`` with no transaction (ACK of 2xx, stateless replies)."""
        self.transmit(serialize(msg), target)

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
        stamp_received(request, source)
        via = request.top_via
        key = incoming_request_key(request, via)
        txn = self._servers.get(key)
        if txn is not None:
            txn.on_request(request, source, now)
            return
        if request.method == "ACK":
            self.emit(RequestReceived(request, source, None))  # the ACK of a 2xx: TU's
            return
        cls = (InviteServerTransaction if request.method == "INVITE"
               else NonInviteServerTransaction)
        new = cls(self, request, key, source, response_target(via, source.connection))
        self._server_keys[new] = []
        self._add_server_key(new, key)
        if not is_rfc3261(via):
            self._add_server_key(new, response_key_2543(request, via))
        self._by_target.setdefault(new.target, set()).add(new)
        self.emit(RequestReceived(request, source, new))
        new.started = now
        new.start(now)

    def _receive_response(self, response: Response, source: Target, now: float) -> None:
        branch = response.top_via.branch  # §17.1.3: branch + CSeq method
        txn = self._clients.get((branch, response.cseq[1])) if branch else None
        if txn is None:
            self.emit(StrayResponse(response, source))
        else:
            txn.on_response(response, now)

    def transport_error(self, target: Target, now: float, reason: str = "transport",
                        grace: float = 0.0) -> None:
        """Sending to ``target`` failed (connection refused/reset, ICMP unreachable): the
        transactions whose peer is exactly ``target`` — same transport, address and port, the
        one index :attr:`_by_target` — fail now (§8.1.3.1: as a 503), with ``reason``
        (:class:`TransportFailed`); a transaction to any other address or port is untouched.
        ``grace``: only those started at least that long ago fail (:func:`old_enough`)."""
        self.failover.now = now
        for txn in list(self._by_target.get(target, ())):
            if old_enough(txn.started, now, grace):
                txn.on_transport_error(now, reason)

    def find_server_invite(self, cancel: Request) -> ServerTransaction | None:
        """The INVITE server transaction a received CANCEL cancels (§9.2), if still live."""
        via = cancel.top_via
        if is_rfc3261(via):
            key = server_key_3261(via, "INVITE")
        else:
            key = request_key_2543(cancel, via, "INVITE")
        txn = self._servers.get(key)
        return txn if isinstance(txn, InviteServerTransaction) else None

    # -- time and outputs --

    def handle_timer(self, now: float) -> None:
        """Fire every timer due at ``now``."""
        self.failover.now = now
        while (due := self.timer_queue.pop_due(now)) is not None:
            txn, name = due
            txn.on_timer(name, now)

    def next_deadline(self) -> float | None:
        return self.timer_queue.next_deadline()

    def take_outgoing(self) -> list[tuple[bytes, Target]]:
        out, self._outgoing = self._outgoing, []
        return out

    def take_events(self) -> list[Event]:
        events, self._events = self._events, []
        return events

    def __len__(self) -> int:
        return len(self._clients) + len(self._server_keys)

    # -- what the transactions ask of the layer (TransactionHost) --

    def transmit(self, data: bytes, target: Target) -> None:
        self._outgoing.append((data, target))

    def emit(self, event: Event) -> None:
        if isinstance(event, (TransactionTimeout, TransportFailed)) and isinstance(
                event.transaction, ClientTransaction) and self.failover.failed(event.transaction):
            return  # retried at its next target instead (RFC 3263 §4.3)
        self._events.append(event)

    def _add_server_key(self, txn: ServerTransaction, key: Key) -> None:
        self._servers[key] = txn
        self._server_keys[txn].append(key)

    def abandon(self, txn: Transaction) -> None:
        """Destroy ``txn`` now, whatever its state: RFC 3261 §9.1, an INVITE whose CANCEL got
        no final response within 64*T1 is considered cancelled (it has no timer of its own in
        Proceeding, so without this it would live forever)."""
        self.terminate(txn)

    def terminate(self, txn: Transaction) -> None:
        """``txn`` is over: forget it, drop its timers, :class:`TransactionTerminated`."""
        if txn.state is State.TERMINATED:
            return
        if isinstance(txn, ClientTransaction) and self.failover.retry(txn):
            return
        txn.state = State.TERMINATED
        self.timer_queue.cancel_all(txn)
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
        self.emit(TransactionTerminated(txn))
