"""re-INVITE both ways (RFC 3261 §14): our offer with its glare back-off, and the peer's.

:class:`ReinviteClient` is one re-INVITE of ours from the first send to its final answer,
491 retries included; :class:`ReinviteServer` one re-INVITE of the peer's from its arrival to
the ACK of our 2xx (or our refusal, or its CANCEL).  The session holds at most one of each
and keeps the rule between them (one offer/answer at a time): the client's glare retry waits
for the server's exchange to settle (:meth:`ReinviteClient.resume`); a re-INVITE that
arrives while ours is in flight is refused 491 by the session.  The rules themselves are in
:mod:`wcsgw.sip.session`'s module doc.
"""

from __future__ import annotations

from typing import Callable

from twisted.logger import Logger

from wcsgw.sip.cancels import build_cancel
from wcsgw.sip.events import (
    REASON_ACK_TIMEOUT,
    REASON_TIMEOUT,
    REASON_TRANSPORT,
    ReinviteAnswered,
    ReinviteCancelled,
    ReinviteConfirmed,
    ReinviteFailed,
    ReinviteOffered,
    sdp_of,
)
from wcsgw.sip.frontdoor import capability_headers
from wcsgw.sip.message import Request, Response
from wcsgw.sip.responses import make_response
from wcsgw.sip.retransmit import OkRetransmission, acknowledges
from wcsgw.sip.target import Target
from wcsgw.sip.transaction import ClientTransaction, ServerTransaction
from wcsgw.sip.usage.host import (
    UsageHost,
    contact_value,
    credentials_of,
    ignore_failure,
    ignore_response,
)

__all__ = ["MAX_GLARE_RETRIES", "ReinviteClient", "ReinviteServer"]

log = Logger(namespace="wcsgw.sip.session")

#: Times our re-INVITE is sent again after a 491 (§14.1) before the next 491 is its failure.
#: §14.1 sets no limit; three back-offs (at most 12 s for the Call-ID's owner) outlast any
#: real glare, while a peer that refuses every offer 491 would otherwise hold the exchange
#: (and every later hold/unhold of the call) forever.
MAX_GLARE_RETRIES = 3


class ReinviteClient:
    """Our re-INVITE offering ``sdp``; ``on_done`` runs once it is settled (before the event
    that says how, so the listener may start the next one)."""

    def __init__(self, host: UsageHost, sdp: bytes, on_done: Callable[[], None]) -> None:
        self.host = host
        self.sdp = sdp
        self._on_done = on_done
        #: the re-INVITE in flight; None while backing off after a 491
        self.request: Request | None = None
        self.transaction: ClientTransaction | None = None
        self.challenges = 0
        self.glare_retries = 0  # re-sent after 491 so far (bounded by MAX_GLARE_RETRIES)
        self.provisional = False
        self.retry_due = False  # the back-off is over but the peer's re-INVITE is not settled
        self.cancelled = False
        self.closed = False
        deadlines = host.endpoint.deadlines
        self._retry = deadlines.new(self._retry_now)  # glare back-off (§14.1)
        # 64*T1 with only provisionals: CANCEL; 64*T1 after the CANCEL: give up
        self._guard = deadlines.new(self._guard_over)

    def deadline(self) -> float | None:
        live = [d for d in (self._retry.at, self._guard.at) if d is not None]
        return min(live) if live else None

    def close(self) -> None:
        """Stop: no timer, no event (the call is ending, or the exchange is over)."""
        self.closed = True
        self._retry.clear()
        self._guard.clear()

    def send(self, now: float) -> None:
        host = self.host
        dialog = host.confirmed_dialog()
        headers = [*capability_headers(), ("Content-Type", "application/sdp")]
        request = dialog.create_request("INVITE", headers, self.sdp)  # Contact: the dialog's
        host.authorize(request, self.challenges)
        self.request = request
        self.provisional = False
        self.cancelled = False
        self._retry.clear()
        self.retry_due = False
        self._guard.set(now + host.endpoint.config.timers.timeout)
        acked: list[tuple[Request, Target]] = []

        def on_response(response: Response, now: float) -> None:
            self._response(request, response, acked, now)

        def on_failure(reason: str, now: float) -> None:
            if self._current(request):
                self._gone(reason, now)

        self.transaction = host.endpoint.send_request(request, host.next_hop(), now, on_response,
                                                      on_failure)

    def resume(self, now: float) -> None:
        """Send again now if the glare back-off ended while the peer's exchange ran."""
        if (not self.closed and self.request is None and self.retry_due
                and not self.host.peer_reinvite_pending and not self.host.terminated):
            self.send(now)

    def _current(self, request: Request) -> bool:
        return not self.closed and self.request is request and not self.host.terminated

    def _done(self) -> None:
        self.close()
        self._on_done()

    def _response(self, request: Request, response: Response,
                  acked: list[tuple[Request, Target]], now: float) -> None:
        host = self.host
        status = response.status
        if 200 <= status < 300:
            if acked:  # a retransmission: our ACK was lost (§13.2.2.4)
                ack, target = acked[0]
                host.endpoint.send_request(ack, target, now, ignore_response, stamp=False)
                return
            dialog = host.dialog
            assert dialog is not None
            dialog.receive_response(response)  # the target refresh (§12.2.1.2)
            ack = dialog.create_ack(request.cseq[0], credentials_of(request))
            target = host.next_hop()
            host.endpoint.send_request(ack, target, now, ignore_response)
            acked.append((ack, target))
            if self._current(request):
                self._done()
                host.emit(ReinviteAnswered(response.body, source=response.source))
            return
        if not self._current(request):
            return
        if status < 200:
            self.provisional = True
            return
        text = f"{status} {response.reason}"
        if host.answers_challenge(request, response, self.challenges):
            self.challenges += 1
            self.send(now)
            return
        if status == 491 and not self.cancelled and self.glare_retries < MAX_GLARE_RETRIES:
            # §14.1: glare.  Back off in 10 ms units, longer for the Call-ID's owner, so the
            # two sides do not collide again.
            self.glare_retries += 1
            ticks = host.rng.randint(210, 400) if host.owns_call_id else host.rng.randint(0, 200)
            self.request = None
            self._guard.clear()
            self._retry.set(now + ticks / 100)
            log.info("re-INVITE of {sip_call_id}: 491, again in {t} s", sip_call_id=host.call_id,
                     t=ticks / 100)
            return
        self._done()
        if status == 481:
            host.end_call(text, now, bye=False, first=ReinviteFailed(status, text))
        elif status == 408:
            host.end_call(text, now, bye=True, first=ReinviteFailed(status, text))
        else:
            host.emit(ReinviteFailed(status, text))

    def _gone(self, reason: str, now: float) -> None:
        """No final answer to our re-INVITE at all: §12.2.1.2 / §14.1, the dialog ends."""
        self._done()
        text = REASON_TIMEOUT if reason == "timeout" else REASON_TRANSPORT
        self.host.end_call(text, now, bye=True, first=ReinviteFailed(None, text))

    def _retry_now(self, now: float) -> None:
        if self.closed or self.host.terminated:
            return
        if self.host.peer_reinvite_pending:
            # The peer's re-INVITE came during the back-off: ours follows once that
            # exchange is over (resume), so the two never overlap.
            self.retry_due = True
        else:
            self.send(now)

    def _guard_over(self, now: float) -> None:
        request = self.request
        if request is None or not self._current(request):
            return
        host = self.host
        if self.provisional and not self.cancelled:
            # Only provisional answers for 64*T1: give the re-INVITE up with CANCEL (§9.1);
            # its 487 is then the failure, the call stays.
            self.cancelled = True
            self._guard.set(now + host.endpoint.config.timers.timeout)
            host.endpoint.send_request(build_cancel(request), host.next_hop(), now,
                                       ignore_response, ignore_failure, stamp=False)
        elif self.cancelled:
            # §9.1: no final 64*T1 after the CANCEL either: consider it gone.
            if self.transaction is not None:
                host.endpoint.abandon(self.transaction, now)
            self._gone("timeout", now)
        # else: Timer B (on_failure) settles a re-INVITE never answered


class ReinviteServer:
    """The peer's re-INVITE ``request``: :class:`ReinviteOffered` now, then the owner answers
    (:meth:`answer`) or refuses (:meth:`reject`).  ``on_done`` runs once it is settled (before
    the event that says how)."""

    def __init__(self, host: UsageHost, request: Request, transaction: ServerTransaction | None,
                 on_done: Callable[[], None], now: float) -> None:
        self.host = host
        self.request = request
        self.transaction = transaction
        self._on_done = on_done
        self.closed = False
        deadlines = host.endpoint.deadlines
        timers = host.endpoint.config.timers
        # An offer the owner leaves unanswered for 32*T1 (half the peer's Timer B) is refused.
        self._answer_by = deadlines.new(self._unanswered)
        self._ok = OkRetransmission(host.endpoint, waiting=self._waiting, on_no_ack=self._no_ack)
        self._answer_by.set(now + timers.timeout / 2)
        if transaction is not None:
            host.cancels.add_transaction(transaction, host, self.cancel)

    def offer(self) -> ReinviteOffered:
        return ReinviteOffered(sdp_of(self.request), source=self.request.source)

    @property
    def answered(self) -> bool:
        return self._ok.response is not None

    def deadline(self) -> float | None:
        live = [d for d in (self._answer_by.at, *self._ok.deadlines()) if d is not None]
        return min(live) if live else None

    def close(self) -> None:
        self.closed = True
        self._answer_by.clear()
        self._ok.stop()
        self._forget_cancel()

    def answer(self, sdp: bytes, now: float) -> None:
        """200 OK with ``sdp``, re-sent until the ACK; the peer's Contact becomes the remote
        target."""
        host = self.host
        dialog = host.confirmed_dialog()
        response = make_response(self.request, 200)
        response.headers.add("Contact", contact_value(dialog))
        for name, value in capability_headers():
            response.headers.add(name, value)
        response.headers.add("Content-Type", "application/sdp")
        response.body = sdp
        dialog.refresh_target(self.request)
        self._answer_by.clear()
        self._forget_cancel()
        self._ok.send(response, now)  # re-sent until the ACK

    def reject(self, status: int, now: float, reason: str | None = None) -> None:
        self._done()
        self.host.endpoint.respond(make_response(self.request, status, reason), now)
        self.host.resume_reinvite(now)

    def receive_ack(self, ack: Request, now: float) -> None:
        """An ACK on the dialog: the one of our 2xx ends the exchange; others are absorbed."""
        if not self.answered or not acknowledges(ack, self.request):
            return
        self._done()
        self.host.emit(ReinviteConfirmed(sdp_of(ack), source=ack.source))
        self.host.resume_reinvite(now)

    def cancel(self, cancel: Request, now: float) -> None:
        """The peer's CANCEL of this re-INVITE (through the endpoint's CANCEL registry)."""
        host = self.host
        host.endpoint.respond(make_response(cancel, 200), now)
        self._forget_cancel()
        if self.closed or self.answered:
            return  # answered already: the CANCEL changes nothing (§9.2)
        self._done()
        host.endpoint.respond(make_response(self.request, 487), now)
        host.emit(ReinviteCancelled())
        host.resume_reinvite(now)

    def abort(self, now: float) -> None:
        """The call is ending: 487 if still unanswered (§15.1.2)."""
        self.close()
        if not self.answered:
            self.host.endpoint.respond(make_response(self.request, 487), now)

    def _done(self) -> None:
        self.close()
        self._on_done()

    def _forget_cancel(self) -> None:
        if self.transaction is not None:
            self.host.cancels.remove_transaction(self.transaction, self.host)

    def _unanswered(self, now: float) -> None:
        if self.closed or self.host.terminated:
            return
        log.warn("re-INVITE of {sip_call_id} left unanswered: 500", sip_call_id=self.host.call_id)
        self.reject(500, now)

    def _no_ack(self, now: float) -> None:
        if self.closed or self.host.terminated:
            return
        # §13.3.1.4: no ACK for our 2xx: the session SHOULD be terminated, with a BYE.
        self._done()
        log.info("no ACK for our 2xx to the re-INVITE of {sip_call_id}: BYE",
                 sip_call_id=self.host.call_id)
        self.host.end_call(REASON_ACK_TIMEOUT, now, bye=True)

    def _waiting(self) -> bool:
        return not self.closed and not self.host.terminated
