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

* the INVITE: From with a fresh tag, To without one, a new Call-ID, CSeq 1, Contact (where the
  peer sends its in-dialog requests), Allow, Content-Type ``application/sdp`` (§8.1.1, §13.2.1);
* 401/407: the same INVITE again with credentials, CSeq + 1, a new branch (§22.2, §8.1.3.5);
  a challenge that refuses the credentials just sent ends the call as :class:`Failed`;
* 1xx: :class:`Provisional` (with the SDP of early media, 183); a To tag makes an early
  dialog (§12.1.2, §13.2.2.1), one per fork;
* 2xx: the dialog is confirmed, the ACK (a new transaction, the INVITE's CSeq number and its
  credentials, §13.2.2.4) goes out, :class:`Answered`; every retransmission of that 2xx is
  ACKed again; a 2xx of another fork is ACKed and then ended with BYE (§13.2.2.4: "the UAC
  core MUST ... send a BYE" when it does not want a second dialog);
* 3xx-6xx: :class:`Failed` with ``"<code> <reason>"`` (the transaction ACKs it, §17.1.1.3);
* hang-up before a final answer: CANCEL (§9.1), but only once a provisional response has
  arrived — before that the CANCEL would overtake the INVITE at a stateless hop — and then the
  INVITE's final (487) ends the call.  If a 2xx crosses the CANCEL, it is ACKed and the
  dialog ended with BYE.  With no final within 64*T1 of the CANCEL the call is given up;
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
from wcsgw.sip.cancels import build_cancel
from wcsgw.sip.dialog import Dialog
from wcsgw.sip.dialogs import DialogRouter, dialog_target
from wcsgw.sip.digest import ChallengeOutcome, DigestClient
from wcsgw.sip.endpoint import SipEndpoint
from wcsgw.sip.errors import SipParseError
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
from wcsgw.sip.frontdoor import ALLOWED_METHODS, SUPPORTED_EXTENSIONS
from wcsgw.sip.headers import format_name_addr
from wcsgw.sip.ids import new_call_id, new_tag
from wcsgw.sip.message import Headers, Request, Response, canonical_name
from wcsgw.sip.session import MAX_CHALLENGES, InviteSession
from wcsgw.sip.target import Target, unbracket
from wcsgw.sip.transaction import ClientTransaction
from wcsgw.sip.uri import parse_uri
from wcsgw.sip.usage.host import ignore_failure, ignore_response

__all__ = [
    "Answered",
    "DialogEvent",
    "Ended",
    "Failed",
    "InviteEvent",
    "InviteState",
    "OutgoingInvite",
    "Provisional",
    "build_cancel",
    "REASON_NORMAL",
    "REASON_TIMEOUT",
    "REASON_TRANSPORT",
]

log = Logger(namespace="wcsgw.sip.invite")

# REASON_NORMAL, REASON_TIMEOUT, REASON_TRANSPORT (docs/contract.md's ``info`` strings) and
# MAX_CHALLENGES (challenges answered per request: a server answering every INVITE with
# ``stale=true`` must not make us loop) live in wcsgw.sip.session, shared by both sessions.

#: Headers the session owns in the INVITE; ``extra_headers`` may not set them.
_OWN_HEADERS = frozenset({
    "Via", "From", "To", "Call-ID", "CSeq", "Contact", "Content-Type", "Content-Length",
    "Authorization", "Proxy-Authorization",
})


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
        self.extra_headers = [(canonical_name(n), v) for n, v in extra_headers]
        for name, value in self.extra_headers:
            if name in _OWN_HEADERS:
                raise ValueError(f"{name} is set by the INVITE session, not by the caller")
            if "\r" in value or "\n" in value:
                raise ValueError(f"CR or LF in the value of {name}")
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
        #: early dialogs by the callee's To tag (one per fork that sent a 1xx with a tag)
        self.early_dialogs: dict[str, Dialog] = {}
        #: status of the INVITE's final response (200, 486, 487 ...), None until one came
        self.final_status: int | None = None

        self._cseq = 0
        self._challenges = 0
        self._provisional_seen = False  # for the INVITE in flight (§9.1)
        self._cancel_sent = False
        self._no_answer = endpoint.deadlines.new(self._no_answer_due)
        self._cancel_guard = endpoint.deadlines.new(self._cancel_guard_due)  # §9.1
        self._acks: dict[str, tuple[Request, Target]] = {}  # To tag -> ACK as sent
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
            self._cancel(now)
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
        deadlines = [d for d in (self._no_answer.at, self._cancel_guard.at,
                                 self.usages.deadline()) if d is not None]
        return min(deadlines) if deadlines else None

    def _no_answer_due(self, now: float) -> None:
        if self.state in (InviteState.CALLING, InviteState.PROCEEDING):
            log.info("no answer to {uri} within {t} s: cancelling",
                     uri=self.request_uri, t=self.no_answer_timeout)
            self._outcome = Failed(None, REASON_TIMEOUT)
            self._cancel(now)

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

    def _build_invite(self) -> Request:
        self._cseq += 1
        h = Headers()
        h.add("From", format_name_addr(self.account.aor(), self.display_name, self.local_tag))
        h.add("To", format_name_addr(self.request_uri))
        h.add("Call-ID", self.call_id)
        h.add("CSeq", f"{self._cseq} INVITE")
        h.add("Contact", f"<{self.contact}>")
        h.add("Allow", ", ".join(ALLOWED_METHODS))
        if SUPPORTED_EXTENSIONS:
            h.add("Supported", ", ".join(SUPPORTED_EXTENSIONS))
        h.add("Content-Type", "application/sdp")
        for name, value in self.extra_headers:
            h.add(name, value)
        request = Request("INVITE", self.request_uri, h, self.sdp)
        # The INVITE goes to the account's next hop (self.target): its own proxy/registrar.
        self._account_digest.authorize(request, to_server=True)
        return request

    def _send_invite(self, now: float) -> None:
        invite = self._build_invite()
        self.invite = invite
        self._provisional_seen = False
        self._cancel_sent = False

        def on_response(response: Response, now: float) -> None:
            self._on_response(invite, response, now)

        def on_failure(reason: str, now: float) -> None:
            self._on_invite_failure(invite, reason, now)

        self._invite_txn = self.endpoint.send_request(invite, self.target, now, on_response,
                                                      on_failure)

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
        if self.state not in (InviteState.CALLING, InviteState.PROCEEDING, InviteState.CANCELLING):
            return
        self._provisional_seen = True
        tag = self._to_tag(response)
        if tag and response.status > 100:
            dialog = self.early_dialogs.get(tag)
            if dialog is None:
                assert self.invite is not None
                dialog = Dialog.from_uac(self.invite, response, local_contact=f"<{self.contact}>")
                self.early_dialogs[tag] = dialog
                self._route(dialog)
            else:
                dialog.receive_response(response)
        if self.state is InviteState.CANCELLING:
            if not self._cancel_sent:
                self._send_cancel(now)  # the CANCEL that waited for this provisional
            return
        self.state = InviteState.PROCEEDING
        self.emit(Provisional(response.status, response.reason, sdp_of(response),
                               source=response.source))

    def _on_success(self, invite: Request, response: Response, now: float) -> None:
        tag = self._to_tag(response)
        if tag is None:
            log.warn("2xx to INVITE without To tag from {uri}: ignored", uri=self.request_uri)
            return
        sent = self._acks.get(tag)
        if sent is not None:
            # A retransmission: the UAS has not seen our ACK (§13.2.2.4).
            ack, target = sent
            self.endpoint.send_request(ack, target, now, ignore_response, stamp=False)
            return
        wanted = (
            invite is self.invite
            and self.dialog is None
            and self.state in (InviteState.CALLING, InviteState.PROCEEDING, InviteState.CANCELLING)
        )
        if not wanted:
            # Another fork answered too (or the call is over): ACK it, then end it.
            dialog = Dialog.from_uac(invite, response, local_contact=f"<{self.contact}>")
            self._send_ack(dialog, invite, now)
            log.info("second 2xx (To tag {tag}) for {call_id}: ACK and BYE",
                     tag=tag, call_id=self.call_id)
            self._send_bye(dialog, now, final=False)
            return
        self.final_status = response.status
        self._no_answer.clear()
        self._cancel_guard.clear()
        early = self.early_dialogs.pop(tag, None)
        if early is not None:
            early.receive_response(response)  # confirms; route set from the 2xx
            dialog = early
        else:
            dialog = Dialog.from_uac(invite, response, local_contact=f"<{self.contact}>")
            self._route(dialog)
        self.dialog = dialog
        self._drop_early_dialogs()
        self._send_ack(dialog, invite, now)
        if self.state is InviteState.CANCELLING:
            # The 2xx crossed our CANCEL (or the no-answer timeout): the call is up on the
            # far side, so end it properly.
            self.state = InviteState.TERMINATING
            self._send_bye(dialog, now, final=True)
            return
        self.state = InviteState.CONFIRMED
        self.emit(Answered(response.body, source=response.source))

    def _on_final_failure(self, response: Response, now: float) -> None:
        if self.state not in (InviteState.CALLING, InviteState.PROCEEDING, InviteState.CANCELLING):
            return
        status = response.status
        self.final_status = status
        self._drop_early_dialogs()
        if self.state is InviteState.CANCELLING:
            # 487 for our CANCEL, or whatever final crossed it: the hang-up is complete.
            assert self._outcome is not None
            self._finish(self._outcome)
            return
        text = f"{status} {response.reason}"
        if status in (401, 407):
            assert self.invite is not None
            outcome = self._account_digest.handle_challenge(self.invite, response, to_server=True)
            self._challenges += 1
            if outcome is ChallengeOutcome.RETRY and self._challenges <= MAX_CHALLENGES:
                self.state = InviteState.CALLING
                self._send_invite(now)
                return
            log.info("INVITE to {uri}: credentials refused ({text})", uri=self.request_uri, text=text)
        self._finish(Failed(status, text))

    def _on_invite_failure(self, invite: Request, reason: str, now: float) -> None:
        """Timer B (no response at all) or a transport error for the INVITE in flight."""
        if invite is not self.invite:
            return
        if self.state in (InviteState.CALLING, InviteState.PROCEEDING):
            self._finish(Failed(None, REASON_TIMEOUT if reason == "timeout" else REASON_TRANSPORT))
        elif self.state is InviteState.CANCELLING:
            assert self._outcome is not None
            self._finish(self._outcome)

    # ------------------------------------------------------------------ CANCEL

    def _cancel(self, now: float) -> None:
        self.state = InviteState.CANCELLING
        self._no_answer.clear()
        if self._provisional_seen:
            self._send_cancel(now)
        # else: §9.1 — wait for a provisional (then _on_provisional sends it); a final or
        # Timer B settles the call without one.

    def _send_cancel(self, now: float) -> None:
        assert self.invite is not None
        self._cancel_sent = True
        cancel = build_cancel(self.invite)
        # §9.1: same destination, port and transport as the INVITE; the Via is the INVITE's.
        self.endpoint.send_request(cancel, self.target, now, ignore_response, ignore_failure,
                                   stamp=False)
        self._cancel_guard.set(now + self.endpoint.config.timers.timeout)

    # ------------------------------------------------------------------ ACK and BYE

    def _send_ack(self, dialog: Dialog, invite: Request, now: float) -> None:
        # §13.2.2.4: the INVITE's CSeq number, and the same credentials as the INVITE — but
        # only when the ACK goes to the account's proxy: without a Record-Route it goes
        # straight to the callee, which must not get a response hash to search offline.
        target = dialog_target(dialog, self.target.transport)
        credentials = [
            (name, value) for name in ("Authorization", "Proxy-Authorization")
            for value in invite.headers.get_all(name)
        ] if self.credentials.to_server(target) else []
        ack = dialog.create_ack(invite.cseq[0], credentials)
        self.endpoint.send_request(ack, target, now, ignore_response)
        self._acks[dialog.remote_tag] = (ack, target)

    # ------------------------------------------------------------------ in-dialog requests

    def _own_ack(self, ack: Request, now: float) -> bool:
        return False  # ours are ACKs we send

    def _on_bye(self, dialog: Dialog, now: float) -> None:
        if self._router is not None:
            self._router.remove(dialog)
        if dialog is self.dialog and self.state is InviteState.CONFIRMED:
            self.usages.abort(now)
            self._finish(Ended(REASON_NORMAL, by_remote=True))
        elif dialog is not self.dialog:
            # A BYE on an early dialog (§15: only the caller may, but be lenient): that fork
            # is gone; the INVITE's final response still settles the call.
            self.early_dialogs.pop(dialog.remote_tag, None)
        # TERMINATING: BYEs crossed; our BYE's answer ends the session.

    def _is_up(self) -> bool:
        return self.state is InviteState.CONFIRMED

    def _terminating(self) -> None:
        self.state = InviteState.TERMINATING

    # ------------------------------------------------------------------ internals

    @staticmethod
    def _to_tag(response: Response) -> str | None:
        try:
            return response.to.tag or None
        except (SipParseError, ValueError):
            return None

    def _route(self, dialog: Dialog) -> None:
        # The responses that made the dialog came back from our next hop, which is the
        # account's proxy or registrar: those, and the dialog's own next hop, may send on it.
        if self._router is not None:
            self._router.add(dialog, self, self.account.server_hosts())

    def _drop_early_dialogs(self) -> None:
        for dialog in self.early_dialogs.values():
            dialog.terminate()
            if self._router is not None:
                self._router.remove(dialog)
        self.early_dialogs.clear()

    def _finish(self, event: InviteEvent) -> None:
        if self._done:
            return
        self._done = True
        self.state = InviteState.TERMINATED
        self._no_answer.clear()
        self._cancel_guard.clear()
        self._drop_early_dialogs()
        if self.dialog is not None:
            self.dialog.terminate()
            if self._router is not None:
                self._router.remove(self.dialog)
        self.endpoint.release(self)
        log.info("call {call_id} to {uri}: {event}", call_id=self.call_id, uri=self.request_uri,
                 event=event)
        self.emit(event)
