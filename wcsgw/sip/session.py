"""What both INVITE sessions share: the dialog once it is up, its in-dialog usages, the BYE.

:class:`~wcsgw.sip.invite.OutgoingInvite` (we called) and :class:`~wcsgw.sip.uas.IncomingInvite`
(we were called) are :class:`InviteSession` s.  The base holds what does not depend on who sent
the first INVITE: requests on the dialog (:meth:`InviteSession.receive_in_dialog`: CSeq order,
BYE, the ``on_request`` hook, then the usages, else a default answer), ending the call from
within (:meth:`InviteSession.end_call`), the BYE with its challenges, the credentials of every
in-dialog request, and the in-dialog API below.  Each exchange of that API is a usage object of
:mod:`wcsgw.sip.usage` (re-INVITE client and server, REFER client and server with their
subscription, INFO); the session composes them, keeps the rule that spans two of them (one
offer/answer at a time, §14.1) and is their :class:`~wcsgw.sip.usage.host.UsageHost`; the
exchanges under way, and the in-dialog requests they take, are its
:class:`~wcsgw.sip.usage.ongoing.OngoingUsages`.  Events go to the session's ``listener`` like
the session's own (:mod:`wcsgw.sip.events`).

The API (the rules, with their RFC sections, are in docs/sip-stack.md, "In-dialog functions",
and in each usage's module):

* :meth:`InviteSession.reinvite` — our offer (hold, unhold, new address): ``ReinviteAnswered``
  or ``ReinviteFailed`` (481, 408 and no answer then end the call); 491 is glare, retried
  after a random back-off (2.1-4 s when we own the Call-ID, 0-2 s otherwise, at most
  :data:`MAX_GLARE_RETRIES` times).  One offer/answer at a time (§14.1):
  :attr:`InviteSession.reinvite_in_progress`.
* The peer's re-INVITE: ``ReinviteOffered``, answered with :meth:`InviteSession.answer_reinvite`
  (``ReinviteConfirmed`` on the ACK) or :meth:`InviteSession.reject_reinvite`; 491 while ours
  is in flight, 500 + Retry-After while an earlier one is unsettled, 500 when left unanswered
  for 32*T1; ``ReinviteCancelled`` on its CANCEL.
* :meth:`InviteSession.send_info` — ``InfoAnswered``; the peer's INFO: 200 and
  ``InfoReceived``.
* :meth:`InviteSession.refer` — ``ReferAccepted`` / ``ReferFailed``, then ``ReferProgress``
  per NOTIFY of the implicit subscription.  The peer's REFER: ``ReferReceived``, answered with
  :meth:`InviteSession.accept_refer` then :meth:`InviteSession.notify_refer`, or
  :meth:`InviteSession.reject_refer`.

A session that ends (either BYE, or one of the failures above) answers what it still owes the
peer: 487 to a re-INVITE or REFER not yet answered (§15.1.2).  No event follows the session's
terminal one.  As everywhere in ``wcsgw.sip``: no clock, no socket; what a caller's action
queues is sent by the transport adapter, which the endpoint wakes.
"""

from __future__ import annotations

import abc
import random
from typing import Any, Callable

from twisted.logger import Logger

from wcsgw.sip.account import SipAccount
from wcsgw.sip.cancels import IncomingInvites, build_cancel
from wcsgw.sip.challenges import MAX_CHALLENGES, DialogCredentials
from wcsgw.sip.dialog import Dialog, DialogState
from wcsgw.sip.dialogs import DialogRouter, dialog_target
from wcsgw.sip.digest import DigestClient
from wcsgw.sip.endpoint import SipEndpoint
from wcsgw.sip.events import (
    REASON_ACK_TIMEOUT,
    REASON_NORMAL,
    REASON_TIMEOUT,
    REASON_TRANSPORT,
    DialogEvent,
    Ended,
    InfoAnswered,
    InfoReceived,
    ReferAccepted,
    ReferFailed,
    ReferProgress,
    ReferReceived,
    ReinviteAnswered,
    ReinviteCancelled,
    ReinviteConfirmed,
    ReinviteFailed,
    ReinviteOffered,
    sdp_of,
)
from wcsgw.sip.message import Request, Response
from wcsgw.sip.refer import refer_to_value
from wcsgw.sip.responses import make_response
from wcsgw.sip.target import Target
from wcsgw.sip.transaction import ServerTransaction
from wcsgw.sip.usage.info import InfoClient
from wcsgw.sip.usage.ongoing import OngoingUsages
from wcsgw.sip.usage.refer import REFER_EXPIRES
from wcsgw.sip.usage.reinvite import MAX_GLARE_RETRIES

__all__ = [
    "DialogEvent",
    "IncomingInvites",
    "InfoAnswered",
    "InfoReceived",
    "InviteSession",
    "MAX_CHALLENGES",
    "MAX_GLARE_RETRIES",
    "REASON_ACK_TIMEOUT",
    "REASON_NORMAL",
    "REASON_TIMEOUT",
    "REASON_TRANSPORT",
    "REFER_EXPIRES",
    "ReferAccepted",
    "ReferFailed",
    "ReferProgress",
    "ReferReceived",
    "ReinviteAnswered",
    "ReinviteCancelled",
    "ReinviteConfirmed",
    "ReinviteFailed",
    "ReinviteOffered",
    "build_cancel",
    "sdp_of",
]

log = Logger(namespace="wcsgw.sip.session")

#: one for every session: a SystemRandom draws from os.urandom and never uses the ~2.5 kB
#: Mersenne Twister state each Random instance carries, so one per call was memory for nothing
_SYSRNG = random.SystemRandom()

#: Listener of a session: its own events and the dialog's.
Listener = Callable[[Any], None]


class InviteSession(abc.ABC):
    """One INVITE dialog usage, either direction (see the module doc).

    A subclass sets ``call_id``, ``transport`` (of the dialog-creating INVITE),
    ``owns_call_id`` and ``_router`` (the endpoint's DialogRouter, once it routes) in its
    constructor, and provides its state machine
    through the abstract methods.
    """

    call_id: str
    transport: str
    owns_call_id: bool
    _router: DialogRouter | None

    def __init__(self, endpoint: SipEndpoint, listener: Listener, account: SipAccount | None,
                 digest: DigestClient | None, rng: random.Random | None) -> None:
        self.endpoint = endpoint
        self.listener = listener
        #: whose servers (outbound proxy, domain) may send on the dialog, and are the only
        #: hosts our in-dialog requests carry credentials to; None: nobody's
        self.account = account
        hosts = account.server_hosts() if account is not None else ()
        self.credentials = DialogCredentials(digest, hosts, endpoint.addresses, self.next_hop)
        #: randomness of the glare back-off and Retry-After values (tests pass a seeded one)
        self.rng: random.Random = rng or _SYSRNG
        #: the confirmed dialog (an early one for IncomingInvite), None before
        self.dialog: Dialog | None = None
        #: optional hook for in-dialog requests other than ACK and BYE (re-INVITE, INFO ...);
        #: return True when it answered the request through ``endpoint.respond``
        self.on_request: Callable[[Request, ServerTransaction | None, float], bool] | None = None
        self._done = False
        self._outcome: Any = None  # the terminal event a hang-up decided, if any
        #: the re-INVITEs and REFERs under way on the dialog, each way
        self.usages = OngoingUsages(self)

    # ------------------------------------------------------------------ the subclass's part

    @property
    @abc.abstractmethod
    def terminated(self) -> bool: ...

    @abc.abstractmethod
    def _is_up(self) -> bool:
        """The call is up (confirmed): the in-dialog functions work."""

    @abc.abstractmethod
    def _own_ack(self, ack: Request, now: float) -> bool:
        """True when ``ack`` was the session's own business (the ACK of its 2xx)."""

    @abc.abstractmethod
    def _on_bye(self, dialog: Dialog, now: float) -> None:
        """The peer's BYE on ``dialog``, answered 200 already."""

    @abc.abstractmethod
    def _terminating(self) -> None:
        """The call ends from within: later hang-ups do nothing."""

    @abc.abstractmethod
    def _finish(self, event: Any) -> None:
        """Give the terminal ``event`` (once) and let go of everything."""

    # ------------------------------------------------------------------ in-dialog API

    @property
    def reinvite_in_progress(self) -> bool:
        """An offer/answer exchange by re-INVITE is under way in either direction (ours in
        flight or backing off after 491, or the peer's not yet answered and ACKed):
        :meth:`reinvite` would raise."""
        return self.usages.reinvite_in_progress

    @property
    def refer_in_progress(self) -> bool:
        """Our REFER is unanswered or its subscription still reports: :meth:`refer` would raise."""
        return self.usages.refer_client is not None

    def reinvite(self, sdp: bytes, now: float) -> None:
        """Send a re-INVITE offering ``sdp``; :class:`ReinviteAnswered` or
        :class:`ReinviteFailed` follows (after 491 back-offs, if any).  Raises RuntimeError
        when the call is not up or an offer/answer is already in progress."""
        self._require_up("reinvite")
        self.usages.start_reinvite(sdp, now)

    def answer_reinvite(self, sdp: bytes, now: float) -> None:
        """200 OK with ``sdp`` to the peer's re-INVITE (the answer, or our offer when it had
        none), re-sent until the ACK; the peer's Contact becomes the remote target.  Does
        nothing once the call has ended (the peer got 487 then)."""
        if not self.terminated:
            self.usages.unanswered_reinvite("answer_reinvite").answer(sdp, now)

    def reject_reinvite(self, status: int, now: float, reason: str | None = None) -> None:
        """Refuse the peer's re-INVITE with a 3xx-6xx (488 Not Acceptable Here ...): the
        session stays as it was (§14.2).  Does nothing once the call has ended."""
        if not 300 <= status < 700:
            raise ValueError(f"a rejection is a 3xx-6xx final, not {status}")
        if not self.terminated:
            self.usages.unanswered_reinvite("reject_reinvite").reject(status, now, reason)

    def send_info(self, content_type: str, body: bytes, now: float) -> None:
        """INFO with ``body`` of ``content_type`` (e.g. ``application/dtmf-relay`` and
        :func:`wcsgw.sip.info.dtmf_relay_body`); :class:`InfoAnswered` follows.  Several may
        be in flight; their answers come in the order the peer sends them."""
        self._require_up("send_info")
        InfoClient(self, content_type, body).send(now)

    def refer(self, target_uri: str, now: float, replaces: str | None = None) -> None:
        """Ask the peer to call ``target_uri`` (blind transfer), or — with ``replaces``, a
        value from :func:`wcsgw.sip.refer.replaces_param` — to replace that dialog with its
        new call (attended transfer).  :class:`ReferAccepted` / :class:`ReferFailed`, then
        :class:`ReferProgress` per NOTIFY.  Raises RuntimeError when the call is not up or a
        REFER is still in progress, ValueError for a target that does not parse."""
        self._require_up("refer")
        self.usages.start_refer(refer_to_value(target_uri, replaces), now)

    def accept_refer(self, now: float, *, notify_trying: bool = True) -> None:
        """202 Accepted to the peer's REFER and — unless ``notify_trying`` is False — the
        first NOTIFY (``SIP/2.0 100 Trying``) that RFC 3515 §2.4.4 requires right away.
        Report the new call with :meth:`notify_refer`.  Does nothing once the call has
        ended."""
        if not self.terminated:
            self.usages.unanswered_refer("accept_refer").accept(now, notify_trying=notify_trying)

    def notify_refer(self, status: int, reason: str, now: float, final: bool | None = None) -> None:
        """NOTIFY the peer how the call it asked for goes: ``message/sipfrag`` body
        ``SIP/2.0 <status> <reason>``, ``Event: refer``, ``Subscription-State: active``
        (``terminated;reason=noresource`` when ``final``, by default when status >= 200).
        After a final NOTIFY the REFER is done.  Does nothing once the call has ended: the
        transferor often hangs up before the new call is answered, and the NOTIFY would
        have no dialog to go in."""
        if self.terminated:
            return
        server = self.usages.refer_server
        if server is None or not server.accepted:
            raise RuntimeError("notify_refer() without an accepted REFER")
        server.notify(status, reason, now, final)

    def reject_refer(self, status: int, now: float, reason: str | None = None) -> None:
        """Refuse the peer's REFER with a 3xx-6xx (403, 603 Decline ...).  Does nothing once
        the call has ended."""
        if not 300 <= status < 700:
            raise ValueError(f"a rejection is a 3xx-6xx final, not {status}")
        if not self.terminated:
            self.usages.unanswered_refer("reject_refer").reject(status, now, reason)

    # ------------------------------------------------------------------ requests on the dialog

    def receive_in_dialog(
        self,
        dialog: Dialog,
        request: Request,
        transaction: ServerTransaction | None,
        source: Target,
        now: float,
    ) -> None:
        """A request the DialogRouter matched to one of our dialogs (DialogOwner)."""
        method = request.method
        if method == "ACK":
            if not self._own_ack(request, now) and dialog is self.dialog:
                self.usages.receive_ack(request, now)  # of our 2xx to a re-INVITE, if any
            return
        # The target is refreshed only by a request we accept with a 2xx (RFC 6141).
        verdict = dialog.receive_request(request, refresh_target=False)
        if verdict is not True:
            assert isinstance(verdict, Response)
            self.endpoint.respond(verdict, now)  # 500 for an out-of-order CSeq
            return
        if method == "BYE":
            self.endpoint.respond(make_response(request, 200), now)
            self._on_bye(dialog, now)
            return
        if self.on_request is not None and self.on_request(request, transaction, now):
            return
        self.usages.receive(request, transaction, now, up=dialog is self.dialog and self._is_up())

    # ------------------------------------------------------------------ the usages' host

    def emit(self, event: Any) -> None:
        self.listener(event)

    @property
    def cancels(self) -> IncomingInvites:
        return IncomingInvites.install(self.endpoint)

    @property
    def peer_reinvite_pending(self) -> bool:
        return self.usages.reinvite_server is not None

    def resume_reinvite(self, now: float) -> None:
        self.usages.resume_reinvite(now)

    def next_hop(self) -> Target:
        dialog = self.dialog
        assert dialog is not None
        return dialog_target(dialog, self.transport)

    def confirmed_dialog(self) -> Dialog:
        dialog = self.dialog
        if dialog is None or dialog.state is DialogState.TERMINATED:
            raise RuntimeError("no confirmed dialog")
        return dialog

    def end_call(self, reason: str, now: float, *, bye: bool, first: Any = None) -> None:
        """The dialog failed under us (481, 408, no answer, no ACK): ``first`` (the failed
        request's event), then ``Ended(reason, by_remote=True)``; with ``bye`` a BYE first
        tells the peer, which may still think the call is up."""
        if self._done:
            return
        self._terminating()  # a hangup() from the listener does nothing now
        self.usages.abort(now)
        if first is not None:
            self.emit(first)
        dialog = self.dialog
        if bye and dialog is not None and dialog.state is not DialogState.TERMINATED:
            self._send_bye(dialog, now, final=False)
        self._finish(Ended(reason, by_remote=True))

    def authorize(self, request: Request, challenges: int, target: Target | None = None) -> None:
        self.credentials.authorize(request, challenges, target)

    def answers_challenge(self, request: Request, response: Response, challenges: int,
                          target: Target | None = None) -> bool:
        return self.credentials.answers_challenge(request, response, challenges, target,
                                                  self.call_id)

    # ------------------------------------------------------------------ internals

    def _send_bye(self, dialog: Dialog, now: float, *, final: bool, challenged: int = 0) -> None:
        """BYE in ``dialog``; ``final``: its answer (or timeout) ends this session.  A 401/407
        is answered with the session's credentials like every in-dialog request of ours; a
        refused or unanswerable challenge settles it like any final: the dialog is over for
        us either way."""
        bye = dialog.create_request("BYE")
        target = dialog_target(dialog, self.transport)
        self.authorize(bye, challenged, target)

        def settled() -> None:
            dialog.terminate()
            self._unroute(dialog)
            if final:
                self._finish(self._outcome or Ended(REASON_NORMAL, by_remote=False))

        def on_response(response: Response, now: float) -> None:
            if response.status < 200:
                return
            if self.answers_challenge(bye, response, challenged, target):
                self._send_bye(dialog, now, final=final, challenged=challenged + 1)
                return
            dialog.receive_response(response)
            settled()

        def on_failure(reason: str, now: float) -> None:
            settled()

        self.endpoint.send_request(bye, target, now, on_response, on_failure)

    def _unroute(self, dialog: Dialog) -> None:
        """``dialog`` is over: the DialogRouter no longer hands us its requests."""
        if self._router is not None:
            self._router.remove(dialog)

    def _require_up(self, action: str) -> None:
        if self.dialog is None or not self._is_up():
            state = getattr(self, "state", None)
            name = getattr(state, "name", state)
            raise RuntimeError(f"{action}() in state {name}: the call is not up")
