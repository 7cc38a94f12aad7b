"""The peer's UPDATE in a confirmed dialog (RFC 3311 §5.2).

UPDATE is what carriers send to refresh a session (RFC 4028 §7.4) and what some send to move
media without a re-INVITE.  Without a body it changes nothing but the remote target and the
session timer, so it is answered here at once; an offer in it obeys the same one-at-a-time
rule as a re-INVITE (491 while our offer is unanswered, 500 + Retry-After while the peer's
is) and otherwise goes to the call as a re-offer (:class:`UpdateServer`).
"""

from __future__ import annotations

from typing import Callable

from wcsgw.sip.events import ReinviteOffered, sdp_of
from wcsgw.sip.frontdoor import capability_headers
from wcsgw.sip.message import Request, Response
from wcsgw.sip.responses import make_response
from wcsgw.sip.usage.host import UsageHost, contact_value, retry_after
from wcsgw.sip.usage.sessiontimer import SessionTimer

__all__ = ["UpdateServer", "receive_update"]


def receive_update(host: UsageHost, request: Request, now: float, *,
                   timer: SessionTimer | None, reinvite_pending: bool,
                   ours_pending: bool = False) -> None:
    """Answer the peer's UPDATE ``request`` that no :class:`UpdateServer` takes:
    ``reinvite_pending``: an offer/answer is under way (``ours_pending``: ours, whose answer
    is awaited); an offer otherwise gets 488 (the session stays as it was)."""
    endpoint = host.endpoint
    if sdp_of(request) is not None:
        if ours_pending:
            endpoint.respond(make_response(request, 491), now)
        elif reinvite_pending:
            endpoint.respond(retry_after(host.rng, request, 500), now)
        else:
            endpoint.respond(make_response(request, 488), now)
        return
    dialog = host.confirmed_dialog()
    dialog.refresh_target(request)
    response = make_response(request, 200)
    response.headers.add("Contact", contact_value(dialog))
    for name, value in capability_headers():
        response.headers.add(name, value)
    if timer is not None:
        for name, value in timer.peer_refreshed(request, now):
            response.headers.add(name, value)
    endpoint.respond(response, now)


class UpdateServer:
    """The peer's UPDATE carrying an offer, given to the owner as a :class:`ReinviteOffered`
    (the call answers it as it answers a re-INVITE's: :meth:`answer` or :meth:`reject`).
    It takes the re-INVITE server's slot, so the one-offer-at-a-time rules hold across both
    methods; unlike a re-INVITE, no ACK follows our 2xx (§5.2)."""

    def __init__(self, host: UsageHost, request: Request, timer: SessionTimer | None,
                 on_done: Callable[[], None], now: float) -> None:
        self.host = host
        self.request = request
        self.timer = timer
        self._on_done = on_done
        self.answered = False
        self.closed = False
        # As for a re-INVITE: an offer the owner leaves unanswered for 32*T1 is refused 500.
        self._answer_by = host.endpoint.deadlines.new(self._unanswered)
        self._answer_by.set(now + host.endpoint.config.timers.timeout / 2)

    def offer(self) -> ReinviteOffered:
        return ReinviteOffered(sdp_of(self.request), source=self.request.source)

    def deadline(self) -> float | None:
        return self._answer_by.at

    def close(self) -> None:
        self.closed = True
        self._answer_by.clear()

    def answer(self, sdp: bytes, now: float) -> None:
        dialog = self.host.confirmed_dialog()
        dialog.refresh_target(self.request)
        response = make_response(self.request, 200)
        response.headers.add("Contact", contact_value(dialog))
        for name, value in capability_headers():
            response.headers.add(name, value)
        if self.timer is not None:
            for name, value in self.timer.peer_refreshed(self.request, now):
                response.headers.add(name, value)
        response.headers.add("Content-Type", "application/sdp")
        response.body = sdp
        self.answered = True
        self._settle(response, now)

    def reject(self, status: int, now: float, reason: str | None = None) -> None:
        self._settle(make_response(self.request, status, reason), now)

    def receive_ack(self, ack: Request, now: float) -> None:
        pass  # no ACK belongs to an UPDATE

    def abort(self, now: float) -> None:
        """The call is ending: 487 if still unanswered."""
        if not self.closed and not self.answered:
            self.host.endpoint.respond(make_response(self.request, 487), now)
        self.close()

    def _settle(self, response: Response, now: float) -> None:
        self.close()
        self._on_done()
        self.host.endpoint.respond(response, now)
        self.host.resume_reinvite(now)

    def _unanswered(self, now: float) -> None:
        if not self.closed and not self.host.terminated:
            self.reject(500, now)
