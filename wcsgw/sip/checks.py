"""The UAS checks of RFC 3261 §8.2 that need no dialog or transaction state.

:func:`check_request` runs after :func:`wcsgw.sip.parser.parse_message` has accepted a
request and before the request reaches the user-agent logic.  It returns the response to
send (stateless is fine: each is final and the request is refused) or None.

Order, and why:

1. 400 for what parses but is still unusable: several values in a header allowed once
   (RFC 4475 multi01), a body without Content-Type (§20.15 MUST), a REGISTER whose To is
   not a SIP/SIPS address-of-record (§10.3, RFC 4475 unksm2).
2. §8.2.1 method inspection: 405 with Allow for a method we know but do not take, 501 for
   one we have never heard of (§21.5.2; RFC 4475 intmeth, esc02).
3. §8.2.2.1: 416 for a Request-URI scheme we do not handle (unkscm, novelsc).
4. 483 for Max-Forwards 0, only when the request would be relayed (``relaying=True``) and
   is not an OPTIONS (§16.3 item 3). An endpoint processes it normally (RFC 4475 zeromf).
   A Max-Forwards that is not a number 0..255 is treated as absent (RFC 4475 scalar02).
5. §8.2.2.3: 420 with Unsupported for Require tags we do not know (bext01). Proxy-Require
   is for proxies and ignored here; ACK and CANCEL are exempt from Require.
6. §8.2.3: 415 with Accept (and Accept-Encoding) for a body we cannot take (invut).
7. 406 when the request's Accept excludes every type we could answer with
   (``produced_content_types``; RFC 4475 sdp01).

ACK is never answered (§17.1.1.3), so it always passes.
"""

from __future__ import annotations

import secrets
from typing import Collection

from wcsgw.sip.errors import SipParseError
from wcsgw.sip.message import Request, Response
from wcsgw.sip.parser import split_list
from wcsgw.sip.responses import make_response
from wcsgw.sip.uri import parse_uri

#: Methods defined by RFC 3261 and its extensions: unknown ones get 501, known ones 405.
KNOWN_METHODS: frozenset[str] = frozenset(
    {
        "INVITE", "ACK", "OPTIONS", "BYE", "CANCEL", "REGISTER", "PRACK", "SUBSCRIBE",
        "NOTIFY", "PUBLISH", "INFO", "REFER", "MESSAGE", "UPDATE",
    }
)

#: Headers a request may carry at most once.
SINGLETON_HEADERS: tuple[str, ...] = (
    "To", "From", "Call-ID", "CSeq", "Max-Forwards", "Content-Type", "Expires", "Date",
)


def check_request(
    request: Request,
    *,
    allowed_methods: Collection[str],
    supported_extensions: Collection[str] = (),
    accepted_content_types: Collection[str] = ("application/sdp",),
    accepted_encodings: Collection[str] = ("identity",),
    supported_schemes: Collection[str] = ("sip", "sips", "tel"),
    produced_content_types: Collection[str] = (),
    relaying: bool = False,
    to_tag: str | None = None,
) -> Response | None:
    """The response refusing ``request`` per RFC 3261 §8.2, or None to go on (see module doc).

    ``to_tag`` is put in the refusal's To when the request has none (§8.2.6.2); a random one
    is made when it is not given.
    """
    if request.method == "ACK":
        return None
    tag = to_tag if to_tag is not None else secrets.token_hex(6)

    def refuse(status: int, reason: str | None = None,
               headers: tuple[tuple[str, str], ...] = ()) -> Response:
        return make_response(request, status, reason, to_tag=tag, headers=headers)

    bad = _malformed(request)
    if bad is not None:
        return refuse(400, bad)
    if request.method not in allowed_methods:
        allow = (("Allow", ", ".join(sorted(allowed_methods))),)
        if request.method in KNOWN_METHODS:
            return refuse(405, headers=allow)
        return refuse(501, headers=allow)
    if _scheme(request.uri) not in supported_schemes:
        return refuse(416)
    if relaying and request.method != "OPTIONS" and _max_forwards(request) == 0:
        return refuse(483)
    if request.method != "CANCEL":
        unknown = _unsupported(request, supported_extensions)
        if unknown:
            return refuse(420, headers=(("Unsupported", ", ".join(unknown)),))
    if request.body:
        refusal = _check_body(request, accepted_content_types, accepted_encodings)
        if refusal is not None:
            return refuse(415, headers=refusal)
    if produced_content_types and not _accepts_any(request, produced_content_types):
        accept = (("Accept", ", ".join(produced_content_types)),)
        return refuse(406, headers=accept)
    return None


def _malformed(request: Request) -> str | None:
    for name in SINGLETON_HEADERS:
        if len(request.headers.get_all(name)) > 1:
            return f"Bad Request (several {name})"
    if request.body and request.headers.get("Content-Type") is None:
        return "Bad Request (body without Content-Type)"
    if request.method == "REGISTER":
        try:
            scheme = request.to.uri.scheme
        except SipParseError:
            return "Bad Request (malformed To)"
        if scheme not in ("sip", "sips"):
            return "Bad Request (To is not a SIP address-of-record)"
    return None


def _scheme(uri: str) -> str:
    try:
        return parse_uri(uri).scheme
    except SipParseError:
        return ""


def _max_forwards(request: Request) -> int | None:
    value = (request.headers.get("Max-Forwards") or "").strip()
    if not value.isdigit() or not value.isascii() or len(value) > 3 or int(value) > 255:
        return None
    return int(value)


def _tokens(request: Request, name: str) -> list[str]:
    return [t for value in request.headers.get_all(name) for t in split_list(value) if t]


def _unsupported(request: Request, supported: Collection[str]) -> list[str]:
    known = {s.lower() for s in supported}
    out: list[str] = []
    for tag in _tokens(request, "Require"):
        if tag.lower() not in known and tag not in out:
            out.append(tag)
    return out


def _media_type(value: str) -> str:
    return value.partition(";")[0].strip(" \t").lower()


def _check_body(
    request: Request, accepted: Collection[str], encodings: Collection[str]
) -> tuple[tuple[str, str], ...] | None:
    """The headers of a 415 when the body's type or encoding is not ours, else None."""
    refusal = (
        ("Accept", ", ".join(accepted)),
        ("Accept-Encoding", ", ".join(encodings)),
    )
    content_type = _media_type(request.headers.get("Content-Type") or "")
    if content_type not in {a.lower() for a in accepted}:
        return refusal
    known = {e.lower() for e in encodings}
    for coding in _tokens(request, "Content-Encoding"):
        if coding.lower() not in known:
            return refusal
    return None


def _accepts_any(request: Request, produced: Collection[str]) -> bool:
    """Does the request's Accept (absent: application/sdp, §20.1) allow one of ``produced``?"""
    ranges = [_media_type(v) for v in _tokens(request, "Accept")]
    if not request.headers.get_all("Accept"):
        ranges = ["application/sdp"]
    elif not ranges:
        return False  # "An empty Accept header field means that no formats are acceptable"
    for media in produced:
        kind = media.lower().partition("/")[0]
        for accepted in ranges:
            if accepted in ("*/*", media.lower(), f"{kind}/*"):
                return True
    return False
