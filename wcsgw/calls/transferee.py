"""The far end's REFER (RFC 3515): this call as the transferee.

A REFER makes the gateway dial on the session's account at the word of whoever controls the
far end, so it is a toll-fraud door and goes through the same gates as a browser's own call,
in this order: the call must be up with no transfer running or asked about; the Refer-To must
pass the destination check a ``callee`` passes (:meth:`Policy.request_uri`: domains, URI
parameters and headers, number rules) — else 403 and nothing is dialled; then
``policy.incoming_transfers``: "refuse" (403), "accept" (:meth:`Transferee._follow`), or "ask"
the browser (``transferRequest``; its ``answerTransfer`` decides, silence is 603 Decline).  A
call without a browser (a REST file call) has nobody to ask: "ask" refuses there.  The browser
is told nothing of a REFER the policy refuses: the call simply goes on.

Why an object of its own: all of this is one conversation with the far end and the browser,
with its own two timers (the browser's answer, the old dialog's end), that touches the call
at three points only — the call's SIP leg to answer the REFER on, a new INVITE of the call's
media toward the target (:meth:`TransfereeHost.place_transfer_invite`), and the hand-over of
the call to the target's dialog once it answers (:meth:`TransfereeHost.take_over_dialog`).
Built by the call environment's ``make_transferee`` factory.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Protocol

import attr
from twisted.logger import Logger

from wcsgw.calls.errors import CallError, Codes
from wcsgw.calls.hooks.taps import HookTap
from wcsgw.calls.status import CallStatus
from wcsgw.sip.events import Answered, Ended, Failed, Provisional, ReferReceived

log = Logger(namespace="wcsgw.calls")

__all__ = ["OLD_DIALOG_GRACE", "REFER_ANSWER_MARGIN", "Transferee", "TransfereeHost"]

#: How long a transferor has to end the dialog it transferred before we end it ourselves.
OLD_DIALOG_GRACE = 32.0

#: How much earlier than the SIP session's own deadline for answering a REFER (it answers 500
#: itself at half of Timer F, wcsgw.sip.usage) a browser's silence is taken as a refusal, so
#: the far end hears our 603 Decline, not a 500.
REFER_ANSWER_MARGIN = 0.5


class TransfereeHost(Protocol):
    """What the transferee needs of its call."""

    call_id: str
    status: CallStatus
    #: the call's SIP leg now (an OutgoingInvite or IncomingInvite)
    invite: Any

    @property
    def finished(self) -> bool: ...

    @property
    def transferring(self) -> bool:
        """A transfer of ours (our REFER) is running."""
        ...

    def notify(self, method: str, params: dict[str, Any]) -> None: ...

    def place_transfer_invite(self, target: str, extra_headers: list[tuple[str, str]],
                              listener: Callable[[Any], None]) -> Any:
        """A new INVITE (not started) to ``target`` offering the call's media as it is."""
        ...

    def take_over_dialog(self, new: Any, event: Answered) -> None:
        """The target answered ``new``: it becomes the call's SIP leg."""
        ...


def _app_asker(host: Any) -> Any:
    """The decision hook of the call's session app, or None.  A call's ``notify`` is its
    session's listener's; with an app that listener is a
    :class:`~wcsgw.calls.hooks.taps.HookTap`, which asks the app (docs/hooks.md)."""
    listener = getattr(host.notify, "__self__", None)
    return listener.ask if isinstance(listener, HookTap) else None


def _refer_answer_limit(invite: Any) -> float | None:
    """Seconds the SIP session gives us to answer a REFER before it answers 500 itself (half
    of Timer F), or None when it cannot be known (a test's fake)."""
    try:
        return float(invite.endpoint.config.timers.timeout) / 2
    except (AttributeError, TypeError, ValueError):
        return None


@attr.s(auto_attribs=True, eq=False)
class TransferRequest:
    """A far end's REFER that passed the policy and waits for the browser's ``answerTransfer``
    (``policy.incoming_transfers = "ask"``)."""

    #: the Request-URI the policy built from the Refer-To: what accepting dials
    target: str
    #: the ReferReceived event (Replaces, Referred-By)
    event: ReferReceived
    #: the IDelayedCall that declines it when the browser does not answer in time
    timer: Any


class Transferee:
    """One call's side of the far end's REFERs (see the module docstring)."""

    def __init__(self, host: TransfereeHost, env: Any, *, account: Any, can_ask: bool) -> None:
        """``env``: the call's CallEnvironment, read when a REFER comes (its ``policy``,
        None refusing every REFER; ``incoming_transfers``; ``transfer_timeout``);
        ``account``: whose destinations the Refer-To is checked as (None: the test lines
        only); ``can_ask``: a browser hears this call's notifications."""
        self.host = host
        self.env = env
        self.reactor = env.reactor
        self.account = account
        self.can_ask = can_ask
        #: the call waits on the target of a REFER it follows (``holdForTransfer``)
        self.following = False
        #: a far end's REFER waiting for the browser's answer (one at a time)
        self._request: TransferRequest | None = None
        self._old_dialog_timer: Any = None
        #: the session's app is being asked about a REFER (``transferRequest``)
        self._asking_app = False

    def refer_received(self, event: ReferReceived) -> None:
        """The far end asks us to call someone else: the gates of the module docstring."""
        host = self.host
        if (host.status not in (CallStatus.ESTABLISHED, CallStatus.HOLD) or host.transferring
                or self.following or self._request is not None or self._asking_app):
            self._refuse(403, "Forbidden (no transfer now)")
            return
        try:
            target = self._destination(event.refer_to)
        except CallError as exc:
            log.info("call {call_id}: REFER to {target} refused: {reason}",
                     call_id=host.call_id, target=event.refer_to, reason=exc.message)
            self._refuse(403, "Forbidden (destination not allowed)")
            return
        ask = _app_asker(host)
        if ask is not None:
            # The session's backend decides first (fail closed); only this REFER waits.
            self._asking_app = True  # a second REFER meanwhile is refused ("no transfer now")
            ask("transferRequest", {"callId": host.call_id, "target": target}).addCallback(
                self._app_decided, target, event)
            return
        self._proceed(target, event)

    def _app_decided(self, decision: Any, target: str, event: ReferReceived) -> None:
        self._asking_app = False
        if self.host.finished:
            return
        if not decision.allowed:
            log.info("call {call_id}: REFER to {target} refused by the application",
                     call_id=self.host.call_id, target=target)
            self._refuse(403, "Forbidden (refused by application)")
            return
        self._proceed(target, event)

    def _proceed(self, target: str, event: ReferReceived) -> None:
        """``policy.incoming_transfers`` decides: follow, ask the browser, or refuse."""
        host = self.host
        mode = self.env.incoming_transfers
        if mode == "ask" and not self.can_ask:
            mode = "refuse"
        if mode == "accept":
            try:
                self._follow(target, event)
            except CallError:  # answered already by the SIP session: nothing left to do
                pass
        elif mode == "ask":
            self._ask(target, event)
        else:
            log.info("call {call_id}: REFER to {target} refused (policy.incoming_transfers)",
                     call_id=host.call_id, target=target)
            self._refuse(403, "Forbidden (transfers refused)")

    def answer(self, accept: bool) -> None:
        """The browser's ``answerTransfer``: accept -> 202 and the transfer proceeds as with
        "accept"; refuse -> 603 Decline.  :class:`CallError` (field ``callId``) when no
        transfer request is pending on this call (never asked, already answered, timed out)."""
        request = self._request
        if request is None or self.host.finished:
            raise CallError(Codes.BAD_STATE, "no transfer request is pending on this call",
                            "callId")
        self._clear_request()
        if accept:
            self._follow(request.target, request.event)
        else:
            log.info("call {call_id}: the browser refused the transfer to {target}",
                     call_id=self.host.call_id, target=request.target)
            self._refuse(603, "Decline")

    def close(self) -> None:
        """The call ended: no timer of ours is left (the SIP session answers a REFER still
        pending 487 as it ends)."""
        self._clear_request()
        self._cancel_old_dialog_timer()

    # -- the gates ----------------------------------------------------------------------

    def _destination(self, refer_to: str) -> str:
        """The Request-URI a REFER would make us call: the Refer-To through the gateway's one
        destination check, exactly as a ``target`` of the browser's own transfer (a session
        without an account: the test lines only).  Raises :class:`CallError` when refused."""
        policy = self.env.policy
        if policy is None:
            raise CallError(Codes.FORBIDDEN, "no destination policy", "target")
        return str(policy.request_uri(self.account, refer_to, field="target"))

    def _refuse(self, status: int, reason: str) -> None:
        """Refuse the far end's REFER (403, 603).  The SIP session may have answered it
        already (its own deadline, or the call ended): nothing is owed then."""
        try:
            self.host.invite.reject_refer(status, self.reactor.seconds(), reason)
        except RuntimeError:
            pass

    def _ask(self, target: str, event: ReferReceived) -> None:
        """Put the REFER to the browser: ``transferRequest`` {callId, target, timeout}; its
        ``answerTransfer`` or the timeout decides.  The wait is a timer, so neither this call
        nor any other is held up meanwhile.  ``timeout`` is ``policy.transfer_timeout``, cut
        short when the SIP session's own deadline for the answer (half of Timer F: 16 s with
        the default T1) would come first."""
        wait = self.env.transfer_timeout
        limit = _refer_answer_limit(self.host.invite)
        if limit is not None:
            wait = max(0.0, min(wait, limit - REFER_ANSWER_MARGIN))
        timer = self.reactor.callLater(wait, self._expired)
        self._request = TransferRequest(target, event, timer)
        log.info("call {call_id}: asking the browser about a transfer to {target}",
                 call_id=self.host.call_id, target=target)
        self.host.notify("transferRequest", {"callId": self.host.call_id, "target": target,
                                             "timeout": wait})

    def _expired(self) -> None:
        request, self._request = self._request, None
        if request is None or self.host.finished:
            return
        log.info("call {call_id}: no answer about the transfer to {target}: declined",
                 call_id=self.host.call_id, target=request.target)
        self._refuse(603, "Decline")

    def _clear_request(self) -> None:
        request, self._request = self._request, None
        if request is not None and request.timer.active():
            request.timer.cancel()

    # -- following the REFER ------------------------------------------------------------

    def _follow(self, target: str, event: ReferReceived) -> None:
        """Do what the REFER asks (it passed the policy and the browser, or "accept"): 202,
        call ``target`` on the same account, report progress with NOTIFYs, and once it
        answers move the call to the new dialog; the transferor then hangs the old one up."""
        now = self.reactor.seconds()
        old = self.host.invite
        try:
            old.accept_refer(now)
        except RuntimeError:  # the SIP session answered it already (its deadline passed)
            raise CallError(Codes.BAD_STATE, "the transfer request has expired",
                            "callId") from None
        extra = [("Referred-By", event.referred_by)] if event.referred_by else []
        if event.replaces:
            extra.append(("Replaces", "{call_id};to-tag={to_tag};from-tag={from_tag}".format(
                **event.replaces)))
        replacement: Any = None

        def listener(e: Any) -> None:
            self._replacement_event(old, replacement, e)

        replacement = self.host.place_transfer_invite(target, extra, listener)
        self.following = True
        replacement.start(now)

    def _replacement_event(self, old: Any, new: Any, event: Any) -> None:
        """Events of the INVITE the REFER made us send; ``old`` is the dialog being replaced.
        Its progress goes to the transferor (NOTIFY); its answer takes the call over."""
        handler = _REPLACEMENT_HANDLERS.get(type(event))
        if handler is None:
            return
        now = self.reactor.seconds()
        if self.host.finished:
            if type(event) is Answered:
                new.hangup(now)
            return
        handler(self, old, new, event, now)

    def _target_ringing(self, old: Any, new: Any, event: Provisional, now: float) -> None:
        old.notify_refer(event.status, event.reason, now)

    def _target_answered(self, old: Any, new: Any, event: Answered, now: float) -> None:
        old.notify_refer(200, "OK", now, final=True)
        self.following = False
        old.listener = self._old_dialog_event  # the transferor ends it; we only watch
        # The transferor should BYE the old dialog; if it does not, we do (RFC 3515 §2.4.7
        # leaves it to the transferor, but a dialog must not outlive its use).
        self._old_dialog_timer = self.reactor.callLater(OLD_DIALOG_GRACE, self._end_old_dialog,
                                                        old)
        self.host.take_over_dialog(new, event)

    def _target_failed(self, old: Any, new: Any, event: Failed | Ended, now: float) -> None:
        status = getattr(event, "status", None) or 503
        old.notify_refer(status, event.reason, now, final=True)
        self.following = False

    def _old_dialog_event(self, event: Any) -> None:
        if type(event) in (Failed, Ended):
            self._cancel_old_dialog_timer()

    def _cancel_old_dialog_timer(self) -> None:
        timer, self._old_dialog_timer = self._old_dialog_timer, None
        if timer is not None and timer.active():
            timer.cancel()

    def _end_old_dialog(self, old: Any) -> None:
        self._old_dialog_timer = None
        if not old.terminated:
            old.hangup(self.reactor.seconds())


#: What each event of the target's INVITE does.
_REPLACEMENT_HANDLERS: Mapping[type, Callable[..., None]] = {
    Provisional: Transferee._target_ringing,
    Answered: Transferee._target_answered,
    Failed: Transferee._target_failed,
    Ended: Transferee._target_failed,
}
