"""How a message finds its transaction (RFC 3261 §17.1.3, §17.2.3): the keys, a dict lookup
per message, with the RFC 2543 fall-back keys for branches lacking the magic cookie; and the
``received``/``rport`` stamp a request gets on arrival (§18.2.1, RFC 3581 §4)."""

from __future__ import annotations

from typing import Hashable

from wcsgw.sip.headers import Via
from wcsgw.sip.message import Request, Response
from wcsgw.sip.target import Target, default_port, unbracket

Key = tuple[Hashable, ...]


def is_rfc3261(via: Via) -> bool:
    """§17.2.3: only a branch starting with the magic cookie (and carrying something after it,
    RFC 4475 badbranch) is trusted to be unique."""
    return via.rfc3261_branch


def _sent_by(via: Via) -> tuple[str, int]:
    return via.host.lower(), via.port or default_port(via.transport)


def _via_identity(via: Via) -> tuple[Hashable, ...]:
    """What "the top Via matches" means for RFC 2543 matching.  Parameters the server adds on
    receipt (received, rport) are left out so the request and its responses agree."""
    return (via.transport.upper(), *_sent_by(via), via.branch)


def server_key_3261(via: Via, method: str) -> Key:
    # §17.2.3: branch + sent-by + method, where an ACK belongs to the INVITE's transaction.
    return ("3261", via.branch, *_sent_by(via), "INVITE" if method == "ACK" else method)


def request_key_2543(request: Request, via: Via, method: str) -> Key:
    """§17.2.3 fall-back: Request-URI, To tag, From tag, Call-ID, CSeq and top Via."""
    number, _ = request.cseq
    return (
        "2543",
        request.uri,
        request.to.tag,
        request.from_.tag,
        request.call_id,
        number,
        method,
        _via_identity(via),
    )


def ack_key_2543(request: Request, via: Via, to_tag: str | None) -> Key:
    """§17.2.3 fall-back for ACK: as the INVITE but CSeq number only, and the To tag of the
    *response* the server transaction sent (which the ACK copies)."""
    number, _ = request.cseq
    return ("2543-ACK", request.uri, request.from_.tag, request.call_id, number,
            _via_identity(via), to_tag)


def response_key_2543(msg: Request | Response, via: Via) -> Key:
    """How a TU's response finds its RFC 2543 server transaction: the response carries no
    Request-URI and gains a To tag, so the key uses what it copies unchanged (§8.2.6.2)."""
    number, method = msg.cseq
    return ("2543-R", msg.call_id, msg.from_.tag, number, method, _via_identity(via))


def incoming_request_key(request: Request, via: Via) -> Key:
    if is_rfc3261(via):
        return server_key_3261(via, request.method)
    if request.method == "ACK":
        return ack_key_2543(request, via, request.to.tag)
    return request_key_2543(request, via, request.method)


def outgoing_response_key(response: Response, via: Via) -> Key:
    if is_rfc3261(via):
        return server_key_3261(via, response.cseq[1])
    return response_key_2543(response, via)


def stamp_received(request: Request, source: Target) -> None:
    """§18.2.1 and RFC 3581 §4: record where the request really came from in its top Via, so
    responses (stateful or not, built by copying the Via) find their way back."""
    via = request.top_via
    params = via.params
    changed = False
    if "rport" in params and params["rport"] is None:
        params["rport"] = str(source.port)
        params["received"] = source.host  # RFC 3581: always, with rport
        changed = True
    elif unbracket(via.host) != source.host and params.get("received") != source.host:
        params["received"] = source.host
        changed = True
    if changed:
        request.headers.remove_first("Via")
        request.headers.prepend("Via", str(via))
