"""An outgoing call's SIP signalling, sans-IO: the INVITE client session (RFC 3261 §13-§15, §9).

:class:`OutgoingInvite` is the transaction user above one INVITE: it builds the INVITE, answers
digest challenges, follows provisional responses and early dialogs, ACKs the 2xx, cancels,
hangs up with BYE and takes the peer's BYE.  What the call layer needs to know comes out as
four events — :class:`Provisional`, :class:`Answered`, :class:`Failed`, :class:`Ended` — given to
the ``listener`` synchronously.  A started session ends with exactly one :class:`Failed` or
:class:`Ended`; nothing follows it.

Like the rest of ``wcsgw.sip`` it never reads a clock or touches a socket: ``now`` is passed in,
requests go through :meth:`SipEndpoint.send_request`, and the session's own timers (the
no-answer timeout, the CANCEL guard) are Deadlines of their own in the endpoint's timer heap
(:class:`~wcsgw.sip.timers.Deadline`).  A caller that calls :meth:`OutgoingInvite.start` or
:meth:`OutgoingInvite.hangup` from outside the endpoint (a WebSocket message, a REST call)
does nothing more: the endpoint wakes its transport adapter, which sends what was queued and
re-arms the endpoint's timer.

Rules and where they come from:

* the INVITE, and again after a 401/407 (:class:`~wcsgw.sip.initialinvite.InitialInvite`); a
  challenge that refuses the credentials just sent ends the call as :class:`Failed`;
* 1xx: :class:`Provisional` (with the SDP of early media, 183); a To tag makes an early
  dialog, one per fork (:class:`~wcsgw.sip.forks.Forks`);
* 2xx: the dialog is confirmed and ACKed (each retransmission again), :class:`Answered`; a
  2xx of another fork is ACKed and then ended with BYE (§13.2.2.4: "the UAC core MUST ... send
  a BYE" when it does not want a second dialog);
* 3xx-6xx: :class:`Failed` with ``"<code> <reason>"`` (the transaction ACKs it, §17.1.1.3);
* hang-up before a final answer: CANCEL (:class:`~wcsgw.sip.cancels.OutgoingCancel`, §9.1:
  not before a provisional response), then the INVITE's final (487) ends the call.  If a 2xx
  crosses the CANCEL, it is ACKed and the dialog ended with BYE.  With no final within 64*T1
  of the CANCEL the call is given up;
* hang-up once confirmed: BYE (§15.1.1); the call has ended when its final response (or its
  timeout) comes;
* a BYE from the peer: 200 and :class:`Ended` with ``by_remote=True`` (§15.1.2);
* no answer within ``no_answer_timeout``: CANCEL, then :class:`Failed` ``(None, "Failed by
  request timeout")``; Timer B (no response at all) ends the same way.

Once the call is up, the in-dialog functions — re-INVITE (hold, unhold, re-targeting) both
ways, INFO, REFER and its NOTIFYs both ways — come from
:class:`~wcsgw.sip.session.InviteSession`, the base shared with the incoming session, and so
do their events (:data:`InviteEvent` includes them); so do the BYE path and what an in-dialog
request gets.  We own the Call-ID here, so a re-INVITE refused 491 is retried after 2.1-4 s
(§14.1).  The events themselves live in :mod:`wcsgw.sip.events`.
"""

from __future__ import annotations

import enum
import random
from typing import Callable, Iterable, Union

from twisted.logger import Logger

from wcsgw.sip.account import SipAccount, escape_user
from wcsgw.sip.cancels import OutgoingCancel, build_cancel
from wcsgw.sip.dialog import Dialog
from wcsgw.sip.dialogs import DialogRouter
from wcsgw.sip.digest import DigestClient
from wcsgw.sip.endpoint import SipEndpoint
from wcsgw.sip.events import (
    REASON_NORMAL,
    REASON_TIMEOUT,
    REASON_TRANSPORT,
    Answered,
    DialogEvent,
    Ended,
    Failed,
    Provisional,
    sdp_of,
)
from wcsgw.sip.forks import Forks, to_tag
from wcsgw.sip.ids import new_call_id, new_tag
from wcsgw.sip.initialinvite import InitialInvite, check_extra_headers
from wcsgw.sip.message import Request, Response
from wcsgw.sip.session import InviteSession
from wcsgw.sip.target import Target, unbracket
from wcsgw.sip.transaction import ClientTransaction
from wcsgw.sip.uri import parse_uri

__all__ = [
    "Answered", "DialogEvent", "Ended", "Failed", "InviteEvent", "InviteState", "OutgoingInvite",
    "Provisional", "build_cancel", "REASON_NORMAL", "REASON_TIMEOUT", "REASON_TRANSPORT",
]

log = Logger(namespace="wcsgw.sip.invite")

# The REASON_* (docs/contract.md's ``info`` strings) live in wcsgw.sip.events, for both sessions.

#: Everything an OutgoingInvite's listener gets: the call's own events and, once it is up,
#: the in-dialog ones (:data:`wcsgw.sip.session.DialogEvent`).
InviteEvent = Union[Provisional, Answered, Failed, Ended, DialogEvent]


class InviteState(enum.Enum):
    IDLE = "idle"  # built, not started
    CALLING = "calling"  # INVITE sent, no provisional response yet
    PROCEEDING = "proceeding"  # a provisional response arrived
    CANCELLING = "cancelling"  # hang-up before a final: CANCEL sent or waiting to be sent
    CONFIRMED = "confirmed"  # 2xx ACKed: the call is up
    TERMINATING = "terminating"  # our BYE is in flight
    TERMINATED = "terminated"  # the terminal event was given


#: The states in which the INVITE's final answer is still awaited.
_UNSETTLED = (InviteState.CALLING, InviteState.PROCEEDING, InviteState.CANCELLING)


# -------------------------------------------------------------------------------- session


class OutgoingInvite(InviteSession):
    """One outgoing INVITE session, from the first INVITE to the last BYE response."""

    def __init__(
        self,
        endpoint: SipEndpoint,
        account: SipAccount,
        request_uri: str,
        sdp: bytes,
        *,
        listener: Callable[[InviteEvent], None],
        display_name: str | None = None,
        extra_headers: Iterable[tuple[str, str]] = (),
        no_answer_timeout: float | None = 60.0,
        digest: DigestClient | None = None,
        rng: random.Random | None = None,
    ) -> None:
        """``request_uri`` is whom to call (``sip:1002@pbx.example.com``), ``sdp`` the offer.
        ``display_name`` overrides the account's for this call's From.  ``extra_headers``
        (``X-...``, ``P-Asserted-Identity`` ...) go into the INVITE; headers the session
        builds itself are refused.  ``no_answer_timeout`` None waits as long as the peer
        rings.  ``digest`` shares a DigestClient (and its cached nonces) with other requests
        of the account; by default each call has its own.  ``rng`` draws the 491 back-off
        and Retry-After values (tests pass a seeded one)."""
        #: the account's credentials, for the INVITE and (through the base) in-dialog requests
        self._account_digest = digest or account.digest_client()
        super().__init__(endpoint, listener, account, self._account_digest, rng)
        self.account: SipAccount = account
        self.request_uri = request_uri
        self.sdp = sdp
        self.display_name = display_name if display_name is not None else account.display_name
        scheme = parse_uri(request_uri).scheme  # SipParseError (a ValueError) when broken
        if scheme not in ("sip", "sips", "tel"):
            raise ValueError(f"cannot call a {scheme}: URI")
        self.extra_headers = check_extra_headers(extra_headers)
        self.no_answer_timeout = no_answer_timeout

        host, port, transport = account.next_hop()
        #: where the INVITE (and the CANCEL, §9.1) goes: the outbound proxy or the domain
        self.target = Target(transport.upper(), unbracket(host), port)
        self.transport = self.target.transport
        self.contact = endpoint.contact_uri(escape_user(account.login), transport)
        self.call_id = new_call_id()
        self.local_tag = new_tag()
        self.state = InviteState.IDLE
        #: the INVITE in flight (the latest one: a digest retry replaces it), Via included
        self.invite: Request | None = None
        self._invites = InitialInvite(account, self._account_digest, request_uri, sdp,
                                      display_name=self.display_name,
                                      extra_headers=self.extra_headers, contact=self.contact,
                                      call_id=self.call_id, local_tag=self.local_tag)
        self._forks = Forks(endpoint, self.contact, self.transport,
                            to_server=self.credentials.to_server, route=self._route,
                            unroute=self._unroute)
        #: early dialogs by the callee's To tag (one per fork that sent a 1xx with a tag)
        self.early_dialogs: dict[str, Dialog] = self._forks.early
        #: status of the INVITE's final response (200, 486, 487 ...), None until one came
        self.final_status: int | None = None

        self._no_answer = endpoint.deadlines.new(self._no_answer_due)
        self._cancel = OutgoingCancel(endpoint, self._cancel_guard_due)  # §9.1
        self._router = None
        self._invite_txn: ClientTransaction | None = None
        #: we sent the dialog's first INVITE: the longer glare back-off is ours (§14.1)
        self.owns_call_id = True

    def __repr__(self) -> str:
        return f"<OutgoingInvite {self.request_uri} {self.state.name} call_id={self.call_id!r}>"

    # ------------------------------------------------------------------ public API

    def start(self, now: float) -> None:
        """Send the INVITE."""
        if self.state is not InviteState.IDLE:
            raise RuntimeError(f"start() in state {self.state.name}")
        self._router = DialogRouter.install(self.endpoint)
        self.endpoint.keep(self)
        self.state = InviteState.CALLING
        self._invites.extra_headers += self.usages.invite_headers()  # RFC 3262, 4028
        if self.no_answer_timeout is not None:
            self._no_answer.set(now + self.no_answer_timeout)
        self._send_invite(now)

    def hangup(self, now: float) -> None:
        """End the call from our side, whatever its state: CANCEL before a final answer
        (queued until a provisional came), BYE once confirmed, nothing when already ending.
        The terminal event (:class:`Ended`, ``by_remote=False``) follows once the peer has
        answered (or the request timed out)."""
        state = self.state
        if state is InviteState.IDLE:
            self.state = InviteState.TERMINATED
            self._done = True
        elif state in (InviteState.CALLING, InviteState.PROCEEDING):
            self._outcome = Ended(REASON_NORMAL, by_remote=False)
            self._cancel_invite(now)
        elif state is InviteState.CONFIRMED:
            self._outcome = Ended(REASON_NORMAL, by_remote=False)
            self.state = InviteState.TERMINATING
            self.usages.abort(now)
            assert self.dialog is not None
            self._send_bye(self.dialog, now, final=True)

    def next_deadline(self) -> float | None:
        """The no-answer timeout, the CANCEL guard or an in-dialog timer (re-INVITE
        back-off, 2xx retransmission, ...), whichever comes first: each is a Deadline of
        its own in the endpoint's heap."""
        deadlines = [d for d in (self._no_answer.at, self._cancel.deadline,
                                 self.usages.deadline()) if d is not None]
        return min(deadlines) if deadlines else None

    def _no_answer_due(self, now: float) -> None:
        if self.state in (InviteState.CALLING, InviteState.PROCEEDING):
            log.info("no answer to {uri} within {t} s: cancelling",
                     uri=self.request_uri, t=self.no_answer_timeout)
            self._outcome = Failed(None, REASON_TIMEOUT)
            self._cancel_invite(now)

    def _cancel_guard_due(self, now: float) -> None:
        if self.state is InviteState.CANCELLING:
            # §9.1: no final response 64*T1 after the CANCEL: consider it cancelled.
            if self._invite_txn is not None:
                self.endpoint.abandon(self._invite_txn, now)
            self._finish(self._outcome or Failed(None, REASON_TIMEOUT))

    @property
    def terminated(self) -> bool:
        return self.state is InviteState.TERMINATED

    # ------------------------------------------------------------------ INVITE

    def _send_invite(self, now: float) -> None:
        invite = self._invites.build()
        self.invite = invite
        self._cancel.new_invite()
        self._invite_txn = self.endpoint.send_request(
            invite, self.target, now,
            lambda response, now: self._on_response(invite, response, now),
            lambda reason, now: self._on_invite_failure(invite, reason, now))

    def _on_response(self, invite: Request, response: Response, now: float) -> None:
        status = response.status
        if 200 <= status < 300:
            self._on_success(invite, response, now)  # re-ACKs whatever the state
        elif invite is not self.invite:
            return  # the transaction of a challenged INVITE, settled already
        elif status < 200:
            self._on_provisional(response, now)
        else:
            self._on_final_failure(response, now)

    def _on_provisional(self, response: Response, now: float) -> None:
        if self.state not in _UNSETTLED:
            return
        self._cancel.provisional()
        tag = to_tag(response)
        assert self.invite is not None
        if tag and response.status > 100:
            self._forks.provisional(self.invite, response, tag)
            if not self.usages.receive_provisional(self._forks.early.get(tag), self.invite, response, now):
                return  # a reliable 1xx again (RFC 3262 §4)
        if self.state is InviteState.CANCELLING:
            # the CANCEL that waited for this provisional, unless it went already
            self._cancel.send_when_due(self.invite, self.target, now)
            return
        self.state = InviteState.PROCEEDING
        self.emit(Provisional(response.status, response.reason, sdp_of(response),
                               source=response.source))

    def _on_success(self, invite: Request, response: Response, now: float) -> None:
        tag = to_tag(response)
        if tag is None:
            log.warn("2xx to INVITE without To tag from {uri}: ignored", uri=self.request_uri)
            return
        if self._forks.ack_again(tag, now):
            return  # a retransmission: the UAS has not seen our ACK (§13.2.2.4)
        wanted = invite is self.invite and self.dialog is None and self.state in _UNSETTLED
        if not wanted:
            # Another fork answered too (or the call is over): ACK it, then end it.
            dialog = self._forks.ack_unwanted(invite, response, now)
            log.info("second 2xx (To tag {tag}) for {sip_call_id}: ACK and BYE",
                     tag=tag, sip_call_id=self.call_id)
            self._send_bye(dialog, now, final=False)
            return
        self.final_status = response.status
        self._no_answer.clear()
        self._cancel.stop()
        dialog = self.dialog = self._forks.confirm(invite, response, tag, now)
        if self.state is InviteState.CANCELLING:
            # The 2xx crossed our CANCEL (or the no-answer timeout): the call is up on the
            # far side, so end it properly.
            self.state = InviteState.TERMINATING
            self._send_bye(dialog, now, final=True)
            return
        self.state = InviteState.CONFIRMED
        self.usages.agree_as_uac(response, now)  # RFC 4028 §7.2
        self.emit(Answered(response.body, source=response.source))

    def _on_final_failure(self, response: Response, now: float) -> None:
        if self.state not in _UNSETTLED:
            return
        status = response.status
        self.final_status = status
        self._forks.drop_early()
        if self.state is InviteState.CANCELLING:
            # 487 for our CANCEL, or whatever final crossed it: the hang-up is complete.
            assert self._outcome is not None
            self._finish(self._outcome)
            return
        text = f"{status} {response.reason}"
        if status in (401, 407, 422):  # a challenge; 422: a longer Session-Expires (RFC 4028)
            assert self.invite is not None
            if (self.usages.retry_422(self._invites.extra_headers, response) if status == 422
                    else self._invites.retry_challenged(self.invite, response)):
                self.state = InviteState.CALLING
                self._send_invite(now)
                return
            log.info("INVITE to {uri}: refused ({text})", uri=self.request_uri, text=text)
        self._finish(Failed(status, text))

    def _on_invite_failure(self, invite: Request, reason: str, now: float) -> None:
        """Timer B (no response at all) or a transport error for the INVITE in flight."""
        if invite is not self.invite:
            return
        if self.state in (InviteState.CALLING, InviteState.PROCEEDING):
            self._finish(Failed(None, REASON_TIMEOUT if reason == "timeout" else REASON_TRANSPORT
                                if reason == "transport" else reason))  # ICMP: names host:port
        elif self.state is InviteState.CANCELLING:
            assert self._outcome is not None
            self._finish(self._outcome)

    def _cancel_invite(self, now: float) -> None:
        self.state = InviteState.CANCELLING
        self._no_answer.clear()
        assert self.invite is not None
        # §9.1: now if a provisional came, else once one comes (_on_provisional)
        self._cancel.send_when_due(self.invite, self.target, now)

    # ------------------------------------------------------------------ in-dialog requests

    def _own_ack(self, ack: Request, now: float) -> bool:
        return False  # ours are ACKs we send

    def _on_bye(self, dialog: Dialog, now: float) -> None:
        self._unroute(dialog)
        if dialog is self.dialog and self.state is InviteState.CONFIRMED:
            self.usages.abort(now)
            self._finish(Ended(REASON_NORMAL, by_remote=True))
        elif dialog is not self.dialog:
            # A BYE on an early dialog (§15: only the caller may, but be lenient): that fork
            # is gone; the INVITE's final response still settles the call.
            self._forks.early.pop(dialog.remote_tag, None)
        # TERMINATING: BYEs crossed; our BYE's answer ends the session.

    def _is_up(self) -> bool:
        return self.state is InviteState.CONFIRMED

    def _terminating(self) -> None:
        self.state = InviteState.TERMINATING

    # ------------------------------------------------------------------ internals

    def _route(self, dialog: Dialog) -> None:
        # The responses that made the dialog came back from our next hop, which is the
        # account's proxy or registrar: those, and the dialog's own next hop, may send on it.
        if self._router is not None:
            self._router.add(dialog, self, self.account.server_hosts())

    def _finish(self, event: InviteEvent) -> None:
        if self._done:
            return
        self._done = True
        self.state = InviteState.TERMINATED
        self._no_answer.clear()
        self._cancel.stop()
        self._forks.drop_early()
        if self.dialog is not None:
            self.dialog.terminate()
            self._unroute(self.dialog)
        self.endpoint.release(self)
        log.info("call {sip_call_id} to {uri}: {event}", sip_call_id=self.call_id, uri=self.request_uri,
                 event=event)
        self.emit(event)
