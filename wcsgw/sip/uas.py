"""An incoming call's SIP signalling, sans-IO: the INVITE server session (RFC 3261 §13.3, §14,
§15, §9.2).

:class:`IncomingInvite` is the transaction user above one received INVITE: it rings, answers
(and retransmits its 2xx until the ACK comes), rejects, hangs up with BYE, and takes the peer's
CANCEL, ACK and BYE.  It is the mirror image of :class:`~wcsgw.sip.invite.OutgoingInvite` and
speaks the same event vocabulary where the meaning is the same: :class:`Confirmed` (the ACK of
our 2xx came; the call is up), :class:`Cancelled` (the caller gave up before our final answer),
:class:`~wcsgw.sip.invite.Failed` (the call never came up) and :class:`~wcsgw.sip.invite.Ended`
(it was answered and is over).  A session ends with exactly one of Cancelled, Failed or Ended;
nothing follows it.

Whoever takes INVITEs (the test lines, the call layer) is a
:class:`~wcsgw.sip.endpoint.RequestHandler` that builds an IncomingInvite from the request and
its server transaction.  The CANCEL of that INVITE reaches the session through the endpoint's
CANCEL registry (:class:`~wcsgw.sip.cancels.IncomingInvites`); requests inside the dialog (ACK,
BYE, ...) come through the :class:`~wcsgw.sip.dialogs.DialogRouter`.

As everywhere in ``wcsgw.sip``, nothing reads a clock or touches a socket.  The session's own
timers — the 2xx retransmission and the wait for the ACK — are Deadlines of their own in the
endpoint's timer heap (:class:`~wcsgw.sip.timers.Deadline`).  A caller acting from outside the
endpoint (the browser answered, a test line's media is ready) does nothing more: the endpoint
wakes its transport adapter, which sends what was queued and re-arms its timer.

Rules and where they come from:

* every response but the 100 (which the transaction sends on its own) carries the same To tag,
  so 18x and 2xx make one dialog; 18x and 2xx copy Record-Route and carry our Contact
  (§12.1.1); the first 18x makes an early dialog, the 2xx confirms it;
* ``ring``: 180 Ringing, or 183 Session Progress with SDP (early media);
* ``answer``: 200 with Contact and SDP, re-sent by the UAS core until the ACK arrives
  (:class:`~wcsgw.sip.retransmit.OkRetransmission`, §13.3.1.4).  No ACK within 64*T1: BYE,
  and :class:`~wcsgw.sip.invite.Failed` ``(None, "ACK timeout")``;
* a late offer (an INVITE without SDP, §13.3.1.1 / RFC 3264): the 200 carries our offer and the
  ACK the answer, given as :attr:`Confirmed.ack_sdp`; :attr:`IncomingInvite.offer_sdp` is None;
* ``reject``: a 3xx-6xx final with our To tag (the transaction retransmits it and absorbs the
  ACK, §17.2.1), then ``Failed(status, "<status> <reason>")``;
* ``hangup``: before a final answer a UAS declines (603 Decline) — it cannot CANCEL; once
  answered, BYE (§15.1.1), but not before the ACK came or the wait for it is over (§15: the
  callee "MUST NOT send a BYE on a confirmed dialog until it has received an ACK for its 2xx
  response or until the server transaction times out").  ``Ended(by_remote=False)`` follows
  once the BYE is answered (or timed out); a 401/407 to it is answered once more with the
  ``digest`` credentials, like every in-dialog request of ours;
* CANCEL before our final: 200 to the CANCEL, 487 to the INVITE, :class:`Cancelled` (§9.2);
  after it: 200 only, the call goes on;
* the caller's BYE: 200 and ``Ended(by_remote=True)`` (§15.1.2); on an early dialog (allowed to
  the caller, §15) it is a cancel: 200, 487 to the INVITE, :class:`Cancelled`;
* once the call is up (the ACK came), re-INVITE both ways, INFO, REFER and NOTIFY are the
  in-dialog functions of :class:`~wcsgw.sip.session.InviteSession`, the base shared with the
  outgoing session (with the BYE path and the default answers), with their events; the
  peer owns the Call-ID, so a re-INVITE of ours refused 491 is retried after 0-2 s (§14.1);
* other in-dialog requests: an ``on_request`` hook may answer them first; otherwise
  :func:`~wcsgw.sip.usage.ongoing.default_answer` (488 to a re-INVITE before the call is up).
"""

from __future__ import annotations

import enum
import random
from typing import Callable, Iterable, Union

from twisted.logger import Logger

from wcsgw.sip.account import SipAccount, escape_user
from wcsgw.sip.cancels import IncomingInvites
from wcsgw.sip.dialog import Dialog, DialogState
from wcsgw.sip.dialogs import DialogRouter
from wcsgw.sip.digest import DigestClient
from wcsgw.sip.endpoint import SipEndpoint
from wcsgw.sip.errors import SipParseError
from wcsgw.sip.events import (
    REASON_ACK_TIMEOUT,
    REASON_NORMAL,
    Cancelled,
    Confirmed,
    DialogEvent,
    Ended,
    Failed,
    sdp_of,
)
from wcsgw.sip.frontdoor import capability_headers
from wcsgw.sip.ids import new_tag
from wcsgw.sip.message import Request, Response
from wcsgw.sip.responses import make_response, reason_phrase
from wcsgw.sip.retransmit import OkRetransmission, acknowledges
from wcsgw.sip.session import InviteSession
from wcsgw.sip.transaction import ServerTransaction
from wcsgw.sip.uri import parse_uri

__all__ = [
    "Cancelled",
    "Confirmed",
    "Ended",
    "Failed",
    "IncomingInvite",
    "IncomingInvites",
    "UasEvent",
    "UasState",
    "REASON_ACK_TIMEOUT",
]

log = Logger(namespace="wcsgw.sip.uas")

# REASON_ACK_TIMEOUT (``Failed.reason`` when our 2xx was never acknowledged, §13.3.1.4) lives
# in wcsgw.sip.events and IncomingInvites (the CANCEL registry) in wcsgw.sip.cancels, shared
# with re-INVITEs; Confirmed and Cancelled too are in wcsgw.sip.events, with the other events.

#: What ``hangup`` sends before a final answer: the user explicitly declined (§21.6.2).
DECLINE = 603


#: Everything an IncomingInvite's listener gets: the call's own events and, once it is up,
#: the in-dialog ones (:data:`wcsgw.sip.session.DialogEvent`).
UasEvent = Union[Confirmed, Cancelled, Failed, Ended, DialogEvent]


class UasState(enum.Enum):
    RECEIVED = "received"  # INVITE taken, no final response yet (maybe ringing)
    ANSWERED = "answered"  # 2xx sent, waiting for the ACK
    CONFIRMED = "confirmed"  # the ACK came: the call is up
    TERMINATING = "terminating"  # our BYE is in flight
    TERMINATED = "terminated"  # the terminal event was given


# -------------------------------------------------------------------------------- session


class IncomingInvite(InviteSession):
    """One received INVITE session, from the INVITE to the last BYE response."""

    def __init__(
        self,
        endpoint: SipEndpoint,
        request: Request,
        transaction: ServerTransaction,
        *,
        listener: Callable[[UasEvent], None],
        contact_user: str | None = None,
        digest: DigestClient | None = None,
        account: SipAccount | None = None,
        rng: random.Random | None = None,
    ) -> None:
        """``request`` is the INVITE and ``transaction`` its server transaction, as a
        RequestHandler got them.  ``contact_user`` is the user part of our Contact (default:
        the Request-URI's, so a call to ``sip:echo@host`` gets ``sip:echo@us`` as Contact).
        ``digest`` answers challenges to our in-dialog requests (re-INVITE, INFO, REFER, BYE
        through a proxy that wants credentials: the call layer gives the called session's
        account); without it a challenge is a failure.  ``account`` is the account the call
        came in for (the session's, or an ``[[accounts]]`` entry): its outbound proxy and
        domain may send requests on the dialog, and only requests to them are ever answered
        with credentials (by default ``digest`` is then the account's).  ``rng`` draws the 491
        back-off and Retry-After values (tests pass a seeded one).

        Raises ValueError for an INVITE no dialog can be made from (no From tag: an RFC 2543
        peer; no Contact): the caller answers it 400 itself.
        """
        if request.method != "INVITE":
            raise ValueError(f"not an INVITE: {request.method}")
        try:
            has_tag = bool(request.from_.tag)
            has_contact = bool(request.contacts)
        except (SipParseError, ValueError) as exc:
            raise ValueError(f"unusable From or Contact: {exc}") from exc
        if not has_tag:
            raise ValueError("the INVITE has no From tag: no dialog can be made")
        if not has_contact:
            raise ValueError("the INVITE has no Contact: no remote target")
        if digest is None and account is not None:
            digest = account.digest_client()
        super().__init__(endpoint, listener, account, digest, rng)
        self.request = request
        self.transaction = transaction
        self.call_id = request.call_id
        #: our To tag, the same in every response (one dialog, §12.1.1)
        self.local_tag = new_tag()
        #: the transport the INVITE came over: Contact and in-dialog requests use it
        self.transport = transaction.source.transport
        if contact_user is None:
            try:
                # escaped again: a %40 or %3A in it would make our Contact not parse (esc01)
                contact_user = escape_user(parse_uri(request.uri).user or "") or None
            except SipParseError:
                contact_user = None
        self.contact = endpoint.contact_uri(contact_user, self.transport)
        #: the caller's SDP offer, or None: a late offer (our 2xx offers, the ACK answers)
        self.offer_sdp = sdp_of(request)
        self.state = UasState.RECEIVED
        #: our final response's status once sent
        self.final_status: int | None = None

        #: our 2xx, re-sent until the ACK (64*T1 at most)
        self._ok = OkRetransmission(endpoint, waiting=lambda: self.state is UasState.ANSWERED,
                                    on_no_ack=self._ack_wait_over)
        self._hangup_pending = False  # hangup() while waiting for the ACK
        #: the caller sent the dialog's first INVITE: the shorter glare back-off is ours
        self.owns_call_id = False
        self._router: DialogRouter = DialogRouter.install(endpoint)
        self._registry = IncomingInvites.install(endpoint)
        self._registry.add(self)
        endpoint.keep(self)

    def __repr__(self) -> str:
        return f"<IncomingInvite {self.request.uri} {self.state.name} call_id={self.call_id!r}>"

    # ------------------------------------------------------------------ public API

    @property
    def terminated(self) -> bool:
        return self.state is UasState.TERMINATED

    def ring(self, now: float, sdp: bytes | None = None) -> None:
        """180 Ringing, or 183 Session Progress carrying ``sdp`` (early media)."""
        self._require(UasState.RECEIVED, "ring")
        status = 183 if sdp is not None else 180
        response = self._response(status, body=sdp)
        if self.dialog is None:
            self._new_dialog(DialogState.EARLY)
        self.usages.send_provisional(self.request, response, now, lambda t: self.reject(500, None, t))

    def answer(self, sdp: bytes, now: float) -> None:
        """200 OK with our Contact and ``sdp`` (the answer, or our offer on a late offer)."""
        self._require(UasState.RECEIVED, "answer")
        self.final_status = 200
        ok = self._response(200, body=sdp, headers=self.usages.agree_as_uas(self.request, now))
        if self.dialog is None:
            self._new_dialog(DialogState.CONFIRMED)
        else:
            self.dialog.confirm()
        self.state = UasState.ANSWERED
        self._registry.remove(self)  # a CANCEL now has no effect: the endpoint answers 200
        self._ok.send(ok, now)

    def reject(self, status: int, reason: str | None, now: float,
               headers: Iterable[tuple[str, str]] = ()) -> None:
        """Decline the call with a 3xx-6xx final (486, 480, 488, 603 ...), then
        ``Failed(status, "<status> <reason>")``.  ``headers`` (Retry-After, Warning ...) go
        into the response."""
        if not 300 <= status < 700:
            raise ValueError(f"a rejection is a 3xx-6xx final, not {status}")
        self._require(UasState.RECEIVED, "reject")
        response = self._response(status, reason, headers=headers, dialog=False)
        self.final_status = status
        self.endpoint.respond(response, now)
        self._finish(Failed(status, f"{status} {response.reason}"))

    def hangup(self, now: float) -> None:
        """End the call from our side, whatever its state: 603 Decline before a final answer,
        BYE once answered (deferred until the ACK came or stopped being awaited), nothing when
        already ending.  The terminal event is ``Ended(REASON_NORMAL, by_remote=False)``."""
        state = self.state
        if state is UasState.RECEIVED:
            response = self._response(DECLINE, dialog=False)
            self.final_status = DECLINE
            self.endpoint.respond(response, now)
            self._finish(Ended(REASON_NORMAL, by_remote=False))
        elif state is UasState.ANSWERED:
            self._hangup_pending = True  # §15: no BYE before the ACK (or its timeout)
        elif state is UasState.CONFIRMED:
            self.usages.abort(now)
            self._bye(now)

    # ------------------------------------------------------------------ timers

    def next_deadline(self) -> float | None:
        """The next 2xx retransmission, the end of the wait for the ACK, or an in-dialog
        timer (re-INVITE back-off, its 2xx retransmission, ...): each a Deadline of its own
        in the endpoint's heap."""
        deadlines = [d for d in (*self._ok.deadlines(), self.usages.deadline()) if d is not None]
        return min(deadlines) if deadlines else None

    def _ack_wait_over(self, now: float) -> None:
        if self.state is not UasState.ANSWERED:
            return
        self._ok.stop()
        log.info("no ACK for the 2xx of {sip_call_id} within 64*T1: BYE", sip_call_id=self.call_id)
        if self._hangup_pending:
            self._bye(now)
        else:
            # §13.3.1.4: the dialog is confirmed but the session SHOULD be terminated.
            assert self.dialog is not None
            self._send_bye(self.dialog, now, final=False)
            self._finish(Failed(None, REASON_ACK_TIMEOUT))

    # ------------------------------------------------------------------ from the peer

    def receive_cancel(self, cancel: Request, now: float) -> None:
        """The caller's CANCEL of our INVITE (via :class:`IncomingInvites`, §9.2)."""
        self.endpoint.respond(make_response(cancel, 200), now)
        if self.state is UasState.RECEIVED:
            self._terminated_early(now)

    def _own_ack(self, ack: Request, now: float) -> bool:
        if self.state is not UasState.ANSWERED:
            return False  # of our 2xx to a re-INVITE, if any
        self._on_ack(ack, now)
        return True

    def _on_ack(self, ack: Request, now: float) -> None:
        if self.state is not UasState.ANSWERED or not acknowledges(ack, self.request):
            return  # a stray or repeated ACK, or not the ACK of our 2xx: absorbed
        self._ok.stop()
        if self._hangup_pending:
            self._bye(now)
            return
        self.state = UasState.CONFIRMED
        self.emit(Confirmed(sdp_of(ack), source=ack.source))

    def _on_bye(self, dialog: Dialog, now: float) -> None:
        state = self.state
        if state is UasState.RECEIVED:
            # The caller may end an early dialog with BYE (§15); our INVITE still needs its
            # final answer, and 487 is the RECOMMENDED one (§15.1.2).
            self._terminated_early(now)
        elif state in (UasState.ANSWERED, UasState.CONFIRMED):
            self._ok.stop()
            self.usages.abort(now)
            if self._hangup_pending:
                self._finish(Ended(REASON_NORMAL, by_remote=False))
            else:
                self._finish(Ended(REASON_NORMAL, by_remote=True))
        # TERMINATING: BYEs crossed; our BYE's answer ends the session.

    def _terminated_early(self, now: float) -> None:
        self.final_status = 487
        self.endpoint.respond(self._response(487, dialog=False), now)
        self._finish(Cancelled())

    # ------------------------------------------------------------------ BYE

    def _bye(self, now: float) -> None:
        """Our BYE, whose answer ends the session."""
        assert self.dialog is not None
        self.state = UasState.TERMINATING
        self._send_bye(self.dialog, now, final=True)

    # ------------------------------------------------------------------ InviteSession hooks

    def _is_up(self) -> bool:
        return self.state is UasState.CONFIRMED

    def _terminating(self) -> None:
        self.state = UasState.TERMINATING

    # ------------------------------------------------------------------ internals

    def _require(self, state: UasState, action: str) -> None:
        if self.state is not state:
            raise RuntimeError(f"{action}() in state {self.state.name}")

    def _response(
        self,
        status: int,
        reason: str | None = None,
        *,
        body: bytes | None = None,
        headers: Iterable[tuple[str, str]] = (),
        dialog: bool = True,
    ) -> Response:
        """A response to the INVITE with our To tag; ``dialog``: one that makes or confirms
        the dialog (18x, 2xx), so it copies Record-Route and carries our Contact (§12.1.1)."""
        response = make_response(
            self.request, status, reason or reason_phrase(status), to_tag=self.local_tag,
            headers=headers,
        )
        if dialog:
            for record_route in self.request.headers.get_all("Record-Route"):
                response.headers.add("Record-Route", record_route)
            response.headers.add("Contact", f"<{self.contact}>")
        if 200 <= status < 300:
            for name, value in capability_headers():
                response.headers.add(name, value)
        if body is not None:
            response.headers.add("Content-Type", "application/sdp")
            response.body = body  # serialize() writes Content-Length
        return response

    def _new_dialog(self, state: DialogState) -> None:
        """The dialog our 18x (EARLY) or 2xx (CONFIRMED) makes, routed to us.  Who besides
        its next hop may send on it: the address the INVITE came from (the caller, or the
        proxy that forwarded it) and the account's servers."""
        self.dialog = Dialog.from_uas(self.request, self.local_tag, state=state,
                                      local_contact=f"<{self.contact}>")
        vouched = (self.transaction.source.host, *self.credentials.server_hosts)
        self._router.add(self.dialog, self, vouched)

    def _finish(self, event: UasEvent) -> None:
        if self._done:
            return
        self._done = True
        self.state = UasState.TERMINATED
        self._ok.stop()
        self._registry.remove(self)
        if self.dialog is not None:
            self.dialog.terminate()
            self._router.remove(self.dialog)
        self.endpoint.release(self)
        log.info("incoming call {sip_call_id} to {uri}: {event}", sip_call_id=self.call_id,
                 uri=self.request.uri, event=event)
        self.emit(event)

