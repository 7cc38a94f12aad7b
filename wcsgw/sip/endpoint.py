"""The SIP endpoint core: bytes in, bytes out, time passed in.

``SipEndpoint`` sits between the transport adapters (which own sockets) and the transaction
users above (registrations now, calls later).  It is where the front door is kept: every
datagram or stream frame is parsed here, a malformed request is answered 400 (or dropped when
no response can be addressed), and RFC 3261 §8.2 checks run before any transaction user sees a
request.  Like the transaction
layer below it, it never touches a socket or a clock: ``now`` is an argument, outgoing bytes
are collected with :meth:`take_outgoing`, and :meth:`next_deadline` says when to call
:meth:`handle_timer` again.

Nobody above ``wcsgw.sip`` flushes: whenever the endpoint has queued output or its deadline
may have moved it calls :attr:`SipEndpoint.wake`, which the Twisted adapter installs
(:class:`~wcsgw.sip.transport.SipTransport`: it sends, in order and in the same reactor turn,
and re-arms its one timer) — aioquic's protocol wrapper calling ``transmit()`` after each API
call.  Transaction users therefore never need to know that an adapter exists.

The registrations the endpoint keeps are :class:`~wcsgw.sip.registrations.Registrations`;
``AccountRegistration`` is re-exported here for the call layer, which imports it from here,
``EndpointConfig`` (:mod:`~wcsgw.sip.endpointconfig`) with the endpoint it configures,
and ``message_key`` (:mod:`~wcsgw.sip.frontdoor`) for the metrics tests.
"""

from __future__ import annotations

import random
from typing import Any, Callable, Protocol

import attr
from twisted.logger import Logger

from wcsgw.sip.account import SipAccount
from wcsgw.sip.capture import Observer
from wcsgw.sip.checks import check_request
from wcsgw.sip.endpointconfig import EndpointConfig as EndpointConfig
from wcsgw.sip.errors import SipParseError
from wcsgw.sip.frontdoor import (
    ACCEPTED_CONTENT_TYPES,
    ALLOWED_METHODS,
    COUNTED_METHODS,
    MESSAGE_CONTENT_TYPES,
    SUPPORTED_EXTENSIONS,
    FrontDoorStats,
    message_key as message_key,
    unhandled_answers,
)
from wcsgw.sip.ids import new_branch
from wcsgw.sip.message import Request, Response
from wcsgw.sip.parser import parse_message
from wcsgw.sip.registrations import AccountRegistration as AccountRegistration, Registrations
from wcsgw.sip.responses import make_response
from wcsgw.sip.target import Target
from wcsgw.sip.timers import Deadlines
from wcsgw.sip.transaction import (
    ClientTransaction,
    RequestReceived,
    ResponseReceived,
    ServerTransaction,
    StrayResponse,
    Transaction,
    TransactionLayer,
    TransactionTerminated,
    TransactionTimeout,
    TransportFailed,
)
from wcsgw.sip.trust import AddressBook

log = Logger(namespace="wcsgw.sip")

ResponseCallback = Callable[[Response, float], None]
FailureCallback = Callable[[str, float], None]


class RequestHandler(Protocol):
    """A transaction user that takes new requests (the call layer, test lines, ...).

    Return True when the request was taken; the handler then owns the answer through
    :meth:`SipEndpoint.respond`.  False passes the request on to the next handler.
    """

    def handle_request(
        self, request: Request, transaction: ServerTransaction | None, source: Target, now: float
    ) -> bool: ...


@attr.s(auto_attribs=True)
class _Pending:
    on_response: ResponseCallback
    on_failure: FailureCallback | None


class SipEndpoint:
    """Sans-IO SIP user agent core shared by every SIP leg of the gateway."""

    def __init__(self, config: EndpointConfig, rng: random.Random | None = None) -> None:
        self.config = config
        self.layer = TransactionLayer(config.timers)
        self.stats = FrontDoorStats()
        self.handlers: list[RequestHandler] = []
        #: extensions a request may Require besides the front door's own (RFC 3261 §8.2.2.3):
        #: what the sessions' policy takes on (wcsgw.sip.usage.policy sets them)
        self.extensions: tuple[str, ...] = ()
        self._rng = rng or random.SystemRandom()
        self._pending: dict[Transaction, _Pending] = {}  # by client transaction
        self._outgoing: list[tuple[bytes, Target]] = []
        self._malformed_logged_at = -1e9
        #: the usages' timers (a call's no-answer timeout, a re-INVITE's glare back-off ...),
        #: one heap for all: see :class:`~wcsgw.sip.timers.Deadline`
        self.deadlines = Deadlines(self._wake)
        #: the live sessions on this endpoint (``keep``/``release``), for their owners to
        #: check that none is left behind; never scanned for timers
        self._sessions: dict[object, None] = {}
        #: addresses of the host names the transport resolved, for the trust checks
        #: (:mod:`wcsgw.sip.trust`); the transport adapter feeds it and drains its lookups
        self.addresses = AddressBook(wanted=self._wake)
        self._untrusted_logged_at = -1e9
        self._registrations = Registrations(self.send_request, self.deadlines, self.addresses,
                                            self.contact_uri, self._rng, self._wake)
        #: called with each registration the endpoint stops keeping (after its un-REGISTER)
        self.registration_removed = self._registrations.removed
        self._event_handlers: dict[type, Callable[[Any, float], None]] = {
            RequestReceived: self._request_event,
            ResponseReceived: self._response_event,
            TransactionTimeout: self._timeout_event,
            TransportFailed: self._transport_event,
            StrayResponse: self._stray_event,
            TransactionTerminated: self._terminated_event,
        }
        #: called (no arguments) when there is output to send or the deadline may have
        #: moved; the transport adapter installs its flush here (nothing above sip/ pumps)
        self.wake: Callable[[], None] | None = None
        #: every message in and out, to the SIP ladders (wcsgw.sip.capture); None: no cost
        self.capture: Observer | None = None

    # -- input from the transports ------------------------------------------------------

    def receive_bytes(self, data: bytes, source: Target, now: float) -> None:
        """One datagram or one framed stream message from ``source``."""
        self.stats.received += 1
        if not data.strip(b"\r\n"):
            return  # keep-alive (RFC 5626 §3.5.1 CRLF) — nothing to parse
        if self.capture is not None:
            self.capture("received", data, source, now)
        try:
            msg = parse_message(data)
        except SipParseError as exc:
            self.malformed(exc, source, now)
            return
        if isinstance(msg, Response):
            key = f"{msg.status // 100}xx"
        else:
            key = msg.method if msg.method in COUNTED_METHODS else "other"
        self.stats.messages_in[key] = self.stats.messages_in.get(key, 0) + 1
        try:
            self.layer.receive(msg, source, now)
        except SipParseError as exc:  # a header the layer reads that the parser let through
            self.malformed(exc, source, now)
            return
        self._dispatch(now)

    def transport_error(self, target: Target, now: float, reason: str = "transport",
                        grace: float = 0.0) -> None:
        """Sending to ``target`` failed; ``reason``: the transport's words for it, if any
        (an ICMP error's names the host:port, wcsgw.sip.udperrors); ``grace``: only the
        transactions trying for that long fail (TransactionLayer.transport_error)."""
        self.layer.transport_error(target, now, reason, grace)
        self._dispatch(now)

    def handle_timer(self, now: float) -> None:
        self.layer.handle_timer(now)
        self._dispatch(now)
        self.deadlines.fire_due(now)
        self._dispatch(now)

    def next_deadline(self) -> float | None:
        live = [d for d in (self.layer.next_deadline(), self.deadlines.next_deadline())
                if d is not None]
        return min(live) if live else None

    @property
    def timed_users(self) -> list[object]:
        """The live sessions (:meth:`keep`), oldest first."""
        return list(self._sessions)

    def keep(self, session: object) -> None:
        """A session starts living on this endpoint (its timers are its own Deadlines)."""
        self._sessions[session] = None

    def release(self, session: object) -> None:
        self._sessions.pop(session, None)

    def take_outgoing(self) -> list[tuple[bytes, Target]]:
        self._flush_layer()
        out, self._outgoing = self._outgoing, []
        return out

    # -- for transaction users ----------------------------------------------------------

    def send_request(
        self,
        request: Request,
        target: Target,
        now: float,
        on_response: ResponseCallback,
        on_failure: FailureCallback | None = None,
        *,
        stamp: bool = True,
    ) -> ClientTransaction | None:
        """Send ``request`` in a new client transaction (ACK: statelessly) to ``target``.

        The endpoint adds what is its own to say: the top Via (sent-by, fresh branch, rport),
        Max-Forwards and User-Agent.  ``stamp=False`` sends a request that already carries
        its Via as it is: a CANCEL, which must copy the INVITE's top Via (RFC 3261 §9.1), or
        the ACK of a 2xx sent again for a retransmitted 2xx (§13.2.2.4).
        """
        if stamp:
            self.stamp_outgoing(request, target)
        if request.method == "ACK":
            self.layer.send_stateless(request, target)
            self._wake()
            return None
        txn = self.layer.send_request(request, target, now)
        if txn is not None:
            self._pending[txn] = _Pending(on_response, on_failure)
        self._wake()
        return txn

    def abandon(self, txn: ClientTransaction, now: float) -> None:
        """Give up a client transaction the TU no longer waits for (see TransactionLayer.abandon)."""
        self._pending.pop(txn, None)
        self.layer.abandon(txn)
        self._dispatch(now)

    def stamp_outgoing(self, request: Request, target: Target) -> None:
        via = f"SIP/2.0/{target.transport} {self.config.sent_by(target.transport)};branch={new_branch()};rport"
        request.headers.prepend("Via", via)
        if "Max-Forwards" not in request.headers:
            request.headers.add("Max-Forwards", "70")
        if "User-Agent" not in request.headers:
            request.headers.add("User-Agent", self.config.user_agent)

    def respond(self, response: Response, now: float) -> None:
        if "Server" not in response.headers:
            response.headers.add("Server", self.config.user_agent)
        self.layer.send_response(response, now)
        self._dispatch(now)

    def contact_uri(self, user: str | None, transport: str) -> str:
        return self.config.contact_uri(user, transport)

    # -- registrations ------------------------------------------------------------------

    def register(
        self,
        account: SipAccount,
        now: float,
        listener: Callable[[object], None] | None = None,
        contact_user: str | None = None,
    ) -> AccountRegistration:
        """Start keeping ``account`` registered; ``listener`` gets each RegistrationEvent.
        ``contact_user`` (default: the login) is the user part of the Contact registered:
        browser sessions of one account each register their own, so calls can find them."""
        return self._registrations.register(account, now, listener, contact_user)

    def unregister(self, reg: AccountRegistration, now: float) -> None:
        """Remove the binding (Expires: 0) if there is one, and stop refreshing."""
        self._registrations.unregister(reg, now)

    def unregister_all(self, now: float) -> None:
        for reg in self._registrations:
            self.unregister(reg, now)

    @property
    def registrations(self) -> list[AccountRegistration]:
        return list(self._registrations)

    # -- internals ----------------------------------------------------------------------

    def _dispatch(self, now: float) -> None:
        """Hand what the transaction layer reports to its handler (one per event type)."""
        for event in self.layer.take_events():
            self._event_handlers[type(event)](event, now)
        self._flush_layer()
        self._wake()

    def _request_event(self, event: RequestReceived, now: float) -> None:
        self._on_request(event.request, event.transaction, event.source, now)

    def _response_event(self, event: ResponseReceived, now: float) -> None:
        pending = self._pending.get(event.transaction)
        if pending is not None:
            if event.response.status >= 200 and event.transaction.request.method != "INVITE":
                del self._pending[event.transaction]
            pending.on_response(event.response, now)

    def _timeout_event(self, event: TransactionTimeout, now: float) -> None:
        self.stats.transaction_timeouts += 1
        self._transaction_failed(event.transaction, "timeout", now)

    def _transport_event(self, event: TransportFailed, now: float) -> None:
        self.stats.transport_failures += 1
        self._transaction_failed(event.transaction, event.reason, now)

    def _transaction_failed(self, txn: Transaction, reason: str, now: float) -> None:
        pending = self._pending.pop(txn, None)
        if pending is not None and pending.on_failure is not None:
            pending.on_failure(reason, now)

    def _stray_event(self, event: StrayResponse, now: float) -> None:
        log.debug("stray response {status}", status=event.response.status)

    def _terminated_event(self, event: TransactionTerminated, now: float) -> None:
        self._pending.pop(event.transaction, None)  # an INVITE client's callbacks

    def _on_request(
        self, request: Request, txn: ServerTransaction | None, source: Target, now: float
    ) -> None:
        method = request.method
        if method != "ACK":
            refusal = check_request(
                request,
                allowed_methods=ALLOWED_METHODS,
                supported_extensions=SUPPORTED_EXTENSIONS + self.extensions,
                accepted_content_types=MESSAGE_CONTENT_TYPES if method == "MESSAGE"
                else ACCEPTED_CONTENT_TYPES,
            )
            if refusal is not None:
                self.respond(refusal, now)
                return
        for handler in self.handlers:
            if handler.handle_request(request, txn, source, now):
                return
        if method == "ACK":
            return  # an ACK for a 2xx nobody here sent: absorb
        for response in unhandled_answers(request, self.layer.find_server_invite):
            self.respond(response, now)

    def drop_untrusted(self, request: Request, txn: ServerTransaction | None, source: Target,
                       why: str, now: float) -> None:
        """Drop ``request`` from a source not trusted for it, without an answer: over UDP a
        response would go to whatever address the sender forged (a reflection), and any
        answer tells a prober that the Call-ID and tags it guessed are live.  Its server
        transaction is discarded (a non-INVITE one has no timer of its own in Trying and
        would stay forever).  Counted, and logged at most once a second."""
        self.stats.untrusted += 1
        if txn is not None:
            self.layer.abandon(txn)
        if now - self._untrusted_logged_at >= 1.0:
            self._untrusted_logged_at = now
            log.warn(
                "dropped {method} from {host}:{port}: {why}; {n} so far",
                method=request.method, host=source.host, port=source.port, why=why,
                n=self.stats.untrusted,
            )
        self._dispatch(now)

    def malformed(self, exc: SipParseError, source: Target, now: float) -> None:
        """Answer 400 when the request can be addressed, otherwise drop; never raise."""
        self.stats.malformed += 1
        partial = exc.partial
        if isinstance(partial, Request) and partial.method != "ACK":
            try:
                response = make_response(partial, exc.status, exc.reason[:100])
                self.layer.send_stateless(response, source)
                self.stats.answered_400 += 1
            except SipParseError:
                self.stats.dropped += 1
        else:
            self.stats.dropped += 1
        # One line a second at most: a flood of garbage must not become a flood of logs.
        if now - self._malformed_logged_at >= 1.0:
            self._malformed_logged_at = now
            log.warn(
                "malformed SIP from {host}:{port} ({reason}); {n} so far",
                host=source.host, port=source.port, reason=exc.reason, n=self.stats.malformed,
            )
        self._flush_layer()
        self._wake()

    def _wake(self) -> None:
        """Tell the adapter there may be output or a new deadline (see :attr:`wake`)."""
        if self.wake is not None:
            self.wake()

    def _flush_layer(self) -> None:
        out = self.layer.take_outgoing()
        counts = self.stats.messages_out
        for data, _target in out:
            key = message_key(data[:12])
            counts[key] = counts.get(key, 0) + 1
        self._outgoing.extend(out)
