"""What the endpoint's front door knows before any transaction user sees a message: the
methods, extensions and bodies it accepts (RFC 3261 §8.2, the §8.2 checks themselves are
:func:`~wcsgw.sip.checks.check_request`), and the counters it keeps of what came in, what went
out and what was refused (:class:`FrontDoorStats`, read by /metrics and the flood test), and
what it answers to a request no transaction user takes (:func:`unhandled_answers`).

The sessions use the same lists for their ``Allow``/``Supported`` headers
(:func:`capability_headers`), so what the endpoint answers and what its dialogs advertise
cannot drift apart.
"""

from __future__ import annotations

from typing import Callable

import attr

from wcsgw.sip.ids import new_tag
from wcsgw.sip.message import Request, Response
from wcsgw.sip.responses import make_response
from wcsgw.sip.transaction import ServerTransaction

#: Methods this endpoint understands; anything else gets 405 (RFC 3261 §8.2.1).
ALLOWED_METHODS: tuple[str, ...] = (
    "INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "INFO", "REFER", "NOTIFY", "UPDATE", "PRACK",
    "MESSAGE",
)
#: Extensions we implement (a Require: of anything else is refused with 420).
SUPPORTED_EXTENSIONS: tuple[str, ...] = ()
ACCEPTED_CONTENT_TYPES: tuple[str, ...] = (
    "application/sdp", "application/dtmf-relay", "application/dtmf", "message/sipfrag",
)
#: A MESSAGE's bodies (RFC 3428; wcsgw.sip.messaging says why only these): its own list, so
#: that no INVITE or INFO gets past the front door with a text body.
MESSAGE_CONTENT_TYPES: tuple[str, ...] = ("text/plain", "application/json")


def capability_headers() -> list[tuple[str, str]]:
    """``Allow`` (and ``Supported``, once we implement an extension) for the INVITEs and
    2xx that set up a dialog, so the peer learns what it may send on it (§13.2.1, §13.3.1.4)."""
    headers = [("Allow", ", ".join(ALLOWED_METHODS))]
    if SUPPORTED_EXTENSIONS:
        headers.append(("Supported", ", ".join(SUPPORTED_EXTENSIONS)))
    return headers


#: Methods counted by name in :class:`FrontDoorStats`; any other becomes "other", so a peer
#: inventing methods cannot grow the metrics without bound.
COUNTED_METHODS = frozenset(ALLOWED_METHODS) | {"REGISTER", "SUBSCRIBE", "MESSAGE", "PUBLISH"}


def message_key(first_line: bytes) -> str:
    """What a SIP message is counted as: its method, or its response class ("2xx")."""
    if first_line.startswith(b"SIP/2.0 ") and first_line[8:9].isdigit():
        return first_line[8:9].decode() + "xx"
    method = first_line.split(b" ", 1)[0].decode("ascii", "replace")
    return method if method in COUNTED_METHODS else "other"


@attr.s(auto_attribs=True)
class FrontDoorStats:
    """Counters an operator (and the flood test) reads: what came in and what was refused,
    and — for /metrics — messages by method or response class (``2xx``) each way, sent ones
    counting retransmissions, and transactions that timed out (Timer B, F or H)."""

    received: int = 0
    malformed: int = 0
    answered_400: int = 0
    dropped: int = 0
    messages_in: dict[str, int] = attr.ib(factory=dict)
    messages_out: dict[str, int] = attr.ib(factory=dict)
    transaction_timeouts: int = 0
    transport_failures: int = 0
    #: requests dropped because their source is not trusted for what they ask (an in-dialog
    #: request from outside the dialog's peer and the account's servers, a foreign CANCEL)
    untrusted: int = 0


def unhandled_answers(
    request: Request, find_server_invite: Callable[[Request], ServerTransaction | None]
) -> list[Response]:
    """What the endpoint answers, in order, to a request (not an ACK) that passed the §8.2
    checks and that no transaction user took: 200 with our capabilities to OPTIONS; to a
    CANCEL, 487 to its INVITE then 200 (481 when the INVITE is gone, §9.2); 480 to an INVITE;
    404 to a MESSAGE;
    481 to what would belong to a dialog; 405 to the rest."""
    method = request.method
    if method == "OPTIONS":
        response = make_response(request, 200, to_tag=new_tag())
        response.headers.add("Allow", ", ".join(ALLOWED_METHODS))
        response.headers.add("Accept", "application/sdp")
        if SUPPORTED_EXTENSIONS:
            response.headers.add("Supported", ", ".join(SUPPORTED_EXTENSIONS))
    elif method == "CANCEL":
        invite = find_server_invite(request)
        if invite is None:
            response = make_response(request, 481)
        else:
            # Nobody took the INVITE (a handler that did would have matched first).
            return [make_response(invite.request, 487, to_tag=new_tag()),
                    make_response(request, 200)]
    elif method == "INVITE":
        response = make_response(request, 480, to_tag=new_tag())
    elif method == "MESSAGE":  # nobody here it could be for (RFC 3428 §7: like an INVITE)
        response = make_response(request, 404, to_tag=new_tag())
    elif method in ("BYE", "INFO", "NOTIFY", "UPDATE", "PRACK", "REFER"):
        response = make_response(request, 481)
    else:
        response = make_response(request, 405)
        response.headers.add("Allow", ", ".join(ALLOWED_METHODS))
    return [response]
