"""SIP MESSAGE for browser sessions (docs/contract.md ``sendMessage`` and the ``message``
notification): ``gateway.messages``.

Why here and not in the call code: a message belongs to a session, not to a call, and holds no
media; but it leaves through the same gate as a call — the session's account, its servers
only, and a destination the outbound policy (:class:`~wcsgw.calls.policy.Policy`, the dial
plan included) checked and rebuilt — so a page cannot use messages to reach what it could not
call.  An incoming MESSAGE is routed like an incoming INVITE
(:class:`~wcsgw.calls.inbound.InboundRouter`): by the session's own contact, and only from
that session's registrar/proxy.  It is delivered to a connected session whether or not its
registration is current at that moment (the registrar may still hold the binding); a session
whose socket dropped gets it when it resumes (the relay queues it).

Both ways are limited per session (:data:`SEND_PER_MINUTE`, :data:`RECEIVE_PER_MINUTE`) with
the ``[limits]`` sliding window, so neither a page nor a far end can flood the other.  Bodies
and their text are never logged.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.application.service import MultiService, Service
from twisted.internet.defer import Deferred
from twisted.logger import Logger

from wcsgw.calls.errors import CallError, Codes
from wcsgw.calls.limits import SlidingWindow
from wcsgw.sip.message import Request
from wcsgw.sip.messaging import (
    MessageResult,
    OutgoingMessage,
    incoming_refusal,
    media_type,
    send_message,
)
from wcsgw.sip.responses import make_response
from wcsgw.sip.target import Target
from wcsgw.sip.transaction import ServerTransaction
from wcsgw.sip.uri import parse_uri

__all__ = ["MESSAGE_FAILED", "RECEIVE_PER_MINUTE", "SEND_PER_MINUTE", "TOO_MANY_MESSAGES",
           "Messages", "MessagesService", "make_messages"]

log = Logger(namespace="wcsgw.calls")

#: JSON-RPC error of a message the SIP side did not accept (the message names the status)
MESSAGE_FAILED = 1014
#: JSON-RPC error of a message over :data:`SEND_PER_MINUTE`
TOO_MANY_MESSAGES = 1015
#: messages a session may send in any 60 s
SEND_PER_MINUTE = 30
#: messages a session may be given in any 60 s; more are answered 486 Busy Here
RECEIVE_PER_MINUTE = 60


class Messages:
    """Sending and delivering SIP MESSAGEs for the gateway's sessions; ``clock``: the
    reactor's seconds (the SIP transport's ``now``)."""

    def __init__(self, gateway: Any, clock: Callable[[], float]) -> None:
        self.gateway = gateway
        self.clock = clock
        self.sent = SlidingWindow(SEND_PER_MINUTE)
        self.received = SlidingWindow(RECEIVE_PER_MINUTE)

    # -- out ------------------------------------------------------------------------------

    def send(self, session_id: str, to: str, body: str,
             content_type: str = "text/plain") -> Deferred[MessageResult]:
        """Send ``body`` to ``to`` through the session's account; the Deferred fires with the
        result (never errs).  Refusals before anything is sent are :class:`CallError`:
        not connected, no account (the test lines only), a destination the policy refuses
        (naming ``to``), too many messages."""
        session = self.gateway.sessions.get(session_id)
        if session is None or not session.connected:
            raise CallError(Codes.NOT_CONNECTED, "connect before sending messages")
        if session.account is None:
            raise CallError(Codes.FORBIDDEN, "Messages need a SIP account: this session has "
                            "no sipDomain (the test lines take no messages)", "to")
        held = session.account_name is not None
        account, uri = self.gateway.policy.routed(session.account, to, "to", held=held)
        now = self.clock()
        if not self.sent.admit(session_id, now):
            wait = max(1, round(self.sent.retry_after(session_id, now)))
            raise CallError(TOO_MANY_MESSAGES, f"Too many messages: at most {SEND_PER_MINUTE} a "
                            f"minute per session; try again in {wait} s")
        endpoint = self.gateway.sip.endpoint
        if endpoint is None:
            raise CallError(Codes.BAD_STATE, "the SIP side is not running")
        try:
            message = OutgoingMessage(account, uri, body.encode("utf-8"), content_type)
        except ValueError as exc:
            raise CallError(Codes.INVALID, str(exc), "body") from None
        done: Deferred[MessageResult] = Deferred()

        def settled(result: MessageResult) -> None:
            if not done.called:
                done.callback(result)

        send_message(endpoint.send_request, message, now, settled)
        return done

    # -- in: an endpoint RequestHandler -----------------------------------------------------

    def handle_request(self, request: Request, transaction: ServerTransaction | None,
                       source: Target, now: float) -> bool:
        """Take every MESSAGE outside a dialog: deliver it or refuse it, never leave it."""
        if request.method != "MESSAGE" or transaction is None:
            return False
        status, reason = self._deliver(request, source, now)
        self.gateway.sip.endpoint.respond(make_response(request, status, reason), now)
        return True

    def _deliver(self, request: Request, source: Target, now: float) -> tuple[int, str]:
        try:
            user = parse_uri(request.uri).user or ""
        except Exception:  # noqa: BLE001 - the parser let it through; refuse, never crash
            user = ""
        session = self.gateway.session_for_contact(user) if user else None
        if session is None:
            return 404, "Not Found"
        if not session.connected:
            return 480, "Temporarily Unavailable"
        account = session.account
        servers = account.server_hosts() if account is not None else ()
        addresses = self.gateway.sip.endpoint.addresses
        if not addresses.admits(source.host, servers):
            addresses.want(servers)
            log.warn("MESSAGE for session {session_id} from {host}:{port}, not its "
                     "registrar/proxy: 403", session_id=session.id, host=source.host,
                     port=source.port)
            return 403, "Forbidden"
        refusal = incoming_refusal(request)
        if refusal is not None:
            return refusal
        if not self.received.admit(session.id, now):
            return 486, "Busy Here"
        notify = getattr(session.listener, "notify", None)
        if notify is None:
            return 480, "Temporarily Unavailable"
        notify("message", {
            "from": str(request.from_.uri), "to": str(request.to.uri),
            "body": request.body.decode("utf-8"),
            "contentType": media_type(request.headers.get("Content-Type")) or "text/plain",
        })
        return 200, "OK"


class MessagesService(Service):
    """Puts :class:`Messages` among the endpoint's request handlers once the SIP service
    made its endpoint (started after it), and takes it out at stop."""

    def __init__(self, messages: Messages) -> None:
        self.messages = messages

    def startService(self) -> None:  # noqa: N802 (Twisted API)
        super().startService()  # type: ignore[no-untyped-call]
        endpoint = self.messages.gateway.sip.endpoint
        if endpoint is not None and self.messages not in endpoint.handlers:
            endpoint.handlers.append(self.messages)

    def stopService(self) -> Any:  # noqa: N802 (Twisted API)
        endpoint = self.messages.gateway.sip.endpoint
        if endpoint is not None and self.messages in endpoint.handlers:
            endpoint.handlers.remove(self.messages)
        return super().stopService()  # type: ignore[no-untyped-call]


def make_messages(gateway: Any, parent: MultiService) -> None:
    """``gateway.messages`` and the service that hands it incoming MESSAGEs."""
    gateway.messages = Messages(gateway, gateway.clock)
    MessagesService(gateway.messages).setServiceParent(parent)  # type: ignore[no-untyped-call]
