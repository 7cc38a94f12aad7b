"""The usages under way on one INVITE session's dialog, and the in-dialog requests they take.

A session holds at most one re-INVITE and one REFER each way at a time.  Those four slots, and
the rules that span two usages, live here rather than in
:class:`~wcsgw.sip.session.InviteSession`, so the session is left with its own life (the
dialog, the BYE, ending the call) and a public API that checks the call is up and delegates:
the peer's re-INVITE while ours is in flight gets 491 and one before the last is settled 500 +
Retry-After (§14.1, §14.2); the peer's second REFER meanwhile gets 500 + Retry-After; the
NOTIFYs of our REFER's subscription go to it.  An in-dialog request no usage takes gets
:func:`default_answer`."""

from __future__ import annotations

from typing import Callable

from wcsgw.sip.dialog import Dialog, DialogState
from wcsgw.sip.events import sdp_of
from wcsgw.sip.frontdoor import ALLOWED_METHODS
from wcsgw.sip.message import Request, Response
from wcsgw.sip.responses import make_response
from wcsgw.sip.transaction import ServerTransaction
from wcsgw.sip.usage.host import UsageHost, retry_after
from wcsgw.sip.usage.info import receive_info
from wcsgw.sip.usage.policy import session_policy
from wcsgw.sip.usage.prack import (
    PrackPolicy,
    PrackSender,
    ReliableProvisionals,
    uac_invite_headers,
    uas_wants_reliable,
)
from wcsgw.sip.usage.refer import ReferClient, ReferServer, accept_notify
from wcsgw.sip.usage.reinvite import ReinviteClient, ReinviteServer
from wcsgw.sip.usage.sessiontimer import (
    SessionTimer,
    TimerAgreement,
    TimerPolicy,
    retry_after_422,
    uac_negotiate,
    uac_request_headers,
    uas_negotiate,
    uas_response_headers,
)
from wcsgw.sip.usage.update import UpdateServer, receive_update

__all__ = ["OngoingUsages", "default_answer"]

_Receiver = Callable[[Request, ServerTransaction | None, float], bool]


class OngoingUsages:
    """The re-INVITE and REFER exchanges under way on ``host``'s dialog, each way."""

    def __init__(self, host: UsageHost) -> None:
        self.host = host
        self.reinvite_client: ReinviteClient | None = None
        #: the peer's re-INVITE, or its UPDATE with an offer (the same rules, RFC 3311 §5.2)
        self.reinvite_server: ReinviteServer | UpdateServer | None = None
        self.refer_client: ReferClient | None = None
        self._refer_done = False  # a NOTIFY after our REFER's final one: 200, no event
        self.refer_server: ReferServer | None = None
        self._refers_received = 0
        #: the session timer running on the dialog (RFC 4028), if one was agreed
        self.session_timer: SessionTimer | None = None
        #: what our INVITEs ask for and the shortest interval we take (set by the owner)
        policy = session_policy(host.endpoint)  # [sip] session_expires, min_se, prack
        self.timer_policy: TimerPolicy = policy.timer
        #: 100rel (RFC 3262): "off", "supported" or "required"
        self.prack_policy: PrackPolicy = policy.prack
        self._retried_422 = False
        self._prack_sender: PrackSender | None = None  # our INVITE's reliable 1xx
        self.reliable: ReliableProvisionals | None = None  # the peer's INVITE's
        self._receivers: dict[str, _Receiver] = {
            "INVITE": self._receive_reinvite,
            "INFO": self._receive_info,
            "NOTIFY": self._receive_notify,
            "REFER": self._receive_refer,
            "UPDATE": self._receive_update,
        }

    @property
    def reinvite_in_progress(self) -> bool:
        return self.reinvite_client is not None or self.reinvite_server is not None

    def start_reinvite(self, sdp: bytes, now: float) -> None:
        """Our re-INVITE offering ``sdp``; RuntimeError while an offer/answer is under way."""
        if self.reinvite_in_progress:
            raise RuntimeError("a re-INVITE is already in progress on this dialog (RFC 3261 §14.1)")
        client = ReinviteClient(self.host, sdp, self._reinvite_client_done)
        self.reinvite_client = client
        client.send(now)

    def invite_headers(self) -> list[tuple[str, str]]:
        """What our dialog-creating INVITE carries for 100rel (RFC 3262 §4) and session
        timers (RFC 4028 §7.1)."""
        policy = self.timer_policy
        timer = uac_request_headers(policy.session_expires, policy.min_se)
        return [*uac_invite_headers(self.prack_policy), *timer]

    def receive_provisional(self, dialog: Dialog | None, invite: Request, response: Response,
                            now: float) -> bool:
        """Our INVITE's 1xx on ``dialog`` (its fork's early one): a reliable one is PRACKed;
        False for one to ignore (a reliable 1xx seen already, or out of order)."""
        if self._prack_sender is None:  # the PRACKs go over the INVITE's transport
            self._prack_sender = PrackSender(self.host.endpoint, invite.top_via.transport)
        return self._prack_sender.receive(dialog, invite, response, now)

    def send_provisional(self, invite: Request, response: Response, now: float,
                         on_give_up: Callable[[float], None]) -> None:
        """Our 18x to the peer's INVITE: reliably when it asked for 100rel (RFC 3262 §3),
        ``on_give_up`` when no PRACK came within 64*T1; else as is."""
        endpoint = self.host.endpoint
        if not uas_wants_reliable(invite, self.prack_policy):
            endpoint.respond(response, now)
            return
        if self.reliable is None:
            host = self.host

            def settled() -> bool:
                dialog = host.dialog
                return dialog is None or dialog.state is not DialogState.EARLY

            self.reliable = ReliableProvisionals(endpoint, invite, host.rng, settled=settled,
                                                 on_give_up=on_give_up)
        self.reliable.send(response, now)

    def retry_422(self, headers: list[tuple[str, str]], response: Response) -> bool:
        """Our INVITE got 422 (RFC 4028 §7.1): True when ``headers`` (its session-timer
        headers, changed in place) now ask for the Min-SE the 422 named; once only."""
        asked = next((int(v) for n, v in headers if n == "Session-Expires" and v.isdigit()), 0)
        wanted = retry_after_422(response, asked) if asked else None
        if wanted is None or self._retried_422:
            return False
        self._retried_422 = True
        headers[:] = [(n, v) for n, v in headers if n not in ("Session-Expires", "Min-SE")]
        headers += [("Session-Expires", str(wanted)), ("Min-SE", str(wanted))]
        return True

    def agree_as_uac(self, response: Response, now: float) -> None:
        """Our INVITE's 2xx decides the session timer (RFC 4028 §7.2)."""
        agreement = uac_negotiate(response)
        if agreement is not None:
            self.session_timer = SessionTimer(self.host, agreement, now)

    def agree_as_uas(self, request: Request, now: float) -> list[tuple[str, str]]:
        """The peer's INVITE and our policy decide the session timer (RFC 4028 §9); the
        headers of our 2xx.  (A Session-Expires below our Min-SE is clamped up here: the 422
        belongs before ringing, which the session does not do yet.)"""
        policy = self.timer_policy
        agreement = uas_negotiate(request, policy.session_expires, 0)
        if not isinstance(agreement, TimerAgreement):
            return []
        if agreement.interval < policy.min_se:
            agreement = TimerAgreement(policy.min_se, agreement.we_refresh)
        self.session_timer = SessionTimer(self.host, agreement, now)
        return uas_response_headers(agreement, request)

    def start_refer(self, refer_to: str, now: float) -> None:
        """Our REFER naming ``refer_to``; RuntimeError while the last one is in progress."""
        if self.refer_client is not None:
            raise RuntimeError("a REFER of this call is still in progress")
        client = ReferClient(self.host, refer_to, self._refer_client_done)
        self.refer_client = client
        self._refer_done = False
        client.send(now)

    def unanswered_reinvite(self, action: str) -> ReinviteServer | UpdateServer:
        server = self.reinvite_server
        if server is None or server.answered:
            raise RuntimeError(f"{action}() without a re-INVITE waiting for its answer")
        return server

    def unanswered_refer(self, action: str) -> ReferServer:
        server = self.refer_server
        if server is None or server.accepted:
            raise RuntimeError(f"{action}() without a REFER waiting for its answer")
        return server

    def receive(self, request: Request, transaction: ServerTransaction | None, now: float,
                *, up: bool) -> None:
        """An in-dialog request other than ACK and BYE: to its usage while the call is ``up``
        on this dialog, else (or when no usage takes it) :func:`default_answer`."""
        if request.method == "PRACK":  # RFC 3262 §3: in the early dialog too
            if self.reliable is not None:
                self.reliable.receive_prack(request, now)
            else:
                self.host.endpoint.respond(make_response(request, 481), now)
            return
        receiver = self._receivers.get(request.method)
        if receiver is not None and up and receiver(request, transaction, now):
            return
        self.host.endpoint.respond(default_answer(request), now)

    def receive_ack(self, ack: Request, now: float) -> None:
        """An ACK on the dialog that is not the session's own: of our 2xx to a re-INVITE."""
        if self.reinvite_server is not None:
            self.reinvite_server.receive_ack(ack, now)

    def resume_reinvite(self, now: float) -> None:
        if self.reinvite_client is not None:
            self.reinvite_client.resume(now)

    def deadline(self) -> float | None:
        """The earliest deadline of the usages (each is in the endpoint's heap itself)."""
        usages = (self.reinvite_client, self.reinvite_server, self.refer_client,
                  self.refer_server, self.session_timer, self.reliable)
        live = [d for u in usages if u is not None and (d := u.deadline()) is not None]
        return min(live) if live else None

    def abort(self, now: float) -> None:
        """The call is ending: answer what we still owe the peer (487, §15.1.2), drop the rest."""
        server, refer = self.reinvite_server, self.refer_server
        self.reinvite_server = self.refer_server = None
        if server is not None:
            server.abort(now)
        if refer is not None:
            refer.abort(now)
        for client in (self.reinvite_client, self.refer_client, self.session_timer,
                       self.reliable):
            if client is not None:
                client.close()
        self.session_timer = None
        self.reinvite_client = None
        self.refer_client = None

    # ------------------------------------------------------------------ the peer's requests

    def _receive_reinvite(self, request: Request, transaction: ServerTransaction | None,
                          now: float) -> bool:
        host = self.host
        client = self.reinvite_client
        if client is not None and client.request is not None:
            # §14.2: our INVITE transaction on this dialog is in progress.
            host.endpoint.respond(make_response(request, 491), now)
        elif self.reinvite_server is not None:
            # §14.2: a second INVITE before the first is settled.
            host.endpoint.respond(retry_after(host.rng, request, 500), now)
        else:
            server = ReinviteServer(host, request, transaction, self._reinvite_server_done, now)
            self.reinvite_server = server
            if self.session_timer is not None:  # RFC 4028 §10: a re-INVITE refreshes too
                self.session_timer.peer_refreshed(request, now)
            host.emit(server.offer())
        return True

    def _receive_update(self, request: Request, transaction: ServerTransaction | None,
                        now: float) -> bool:
        client = self.reinvite_client
        if sdp_of(request) is not None and not self.reinvite_in_progress:
            server = UpdateServer(self.host, request, self.session_timer,
                                  self._reinvite_server_done, now)
            self.reinvite_server = server
            self.host.emit(server.offer())
            return True
        receive_update(self.host, request, now, timer=self.session_timer,
                       reinvite_pending=self.reinvite_in_progress,
                       ours_pending=client is not None and client.request is not None)
        return True

    def _receive_info(self, request: Request, transaction: ServerTransaction | None,
                      now: float) -> bool:
        receive_info(self.host, request, now)
        return True

    def _receive_notify(self, request: Request, transaction: ServerTransaction | None,
                        now: float) -> bool:
        host = self.host
        event = (request.headers.get("Event") or "").split(";", 1)[0].strip().lower()
        if event != "refer":
            host.endpoint.respond(make_response(request, 489), now)
        elif self.refer_client is not None:
            self.refer_client.receive_notify(request, now)
        elif self._refer_done:  # the subscription's last words, after its final report
            accept_notify(host, request, now)
        else:
            host.endpoint.respond(make_response(request, 481, "Subscription Does Not Exist"), now)
        return True

    def _receive_refer(self, request: Request, transaction: ServerTransaction | None,
                       now: float) -> bool:
        host = self.host
        if self.refer_server is not None:
            host.endpoint.respond(retry_after(host.rng, request, 500), now)
            return True
        asked = ReferServer.parse(request)
        if isinstance(asked, Response):
            host.endpoint.respond(asked, now)
            return True
        self._refers_received += 1
        # RFC 3515 §2.4.6: NOTIFYs name the REFER's CSeq in id=, which the first REFER of a
        # dialog may omit (and older UAs expect it omitted).
        event = "refer" if self._refers_received == 1 else f"refer;id={request.cseq[0]}"
        self.refer_server = ReferServer(host, request, event, self._refer_server_done, now)
        host.emit(asked)
        return True

    # ------------------------------------------------------------------ settled usages

    def _reinvite_client_done(self) -> None:
        self.reinvite_client = None

    def _reinvite_server_done(self) -> None:
        self.reinvite_server = None

    def _refer_client_done(self, over: bool) -> None:
        self.refer_client = None
        self._refer_done = over

    def _refer_server_done(self) -> None:
        self.refer_server = None


def default_answer(request: Request) -> Response:
    """What an in-dialog request gets when neither the session's ``on_request`` hook nor a
    usage (the call is up) took it."""
    method = request.method
    if method == "OPTIONS":
        response = make_response(request, 200)
        response.headers.add("Allow", ", ".join(ALLOWED_METHODS))
        response.headers.add("Accept", "application/sdp")
        return response
    if method == "INFO":
        return make_response(request, 200)  # e.g. legacy DTMF relays: accepted, unused
    if method in ("INVITE", "UPDATE"):
        # §14.2: refusing a re-INVITE leaves the session as it was.
        return make_response(request, 488)
    return make_response(request, 501)
