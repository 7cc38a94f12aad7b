"""The peer's UPDATE in a confirmed dialog (RFC 3311 §5.2).

UPDATE is what carriers send to refresh a session (RFC 4028 §7.4) and what some send to move
media before an answer.  Without a body it changes nothing but the remote target and the
session timer, so it is answered here at once; an offer in it obeys the same one-at-a-time
rule as a re-INVITE (491 while our offer is unanswered, 500 + Retry-After while the peer's
is) and is otherwise refused 488, which leaves the session as it was (§5.2: the offer is
rejected, the dialog stays).
"""

from __future__ import annotations

from wcsgw.sip.events import sdp_of
from wcsgw.sip.frontdoor import capability_headers
from wcsgw.sip.message import Request
from wcsgw.sip.responses import make_response
from wcsgw.sip.usage.host import UsageHost, contact_value, retry_after
from wcsgw.sip.usage.sessiontimer import SessionTimer

__all__ = ["receive_update"]


def receive_update(host: UsageHost, request: Request, now: float, *,
                   timer: SessionTimer | None, reinvite_pending: bool,
                   ours_pending: bool = False) -> None:
    """Answer the peer's UPDATE ``request``; ``reinvite_pending``: an offer/answer by
    re-INVITE is under way (``ours_pending``: ours, whose answer is awaited)."""
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
