"""Reason phrases and building a response to a request (RFC 3261 §8.2.6, §21)."""

from __future__ import annotations

import re
from typing import Iterable

from wcsgw.sip.errors import SipParseError
from wcsgw.sip.headers import parse_name_addr
from wcsgw.sip.message import Headers, Request, Response

#: RFC 3261 §21 plus the codes later RFCs added that real peers send.
REASON_PHRASES: dict[int, str] = {
    100: "Trying",
    180: "Ringing",
    181: "Call Is Being Forwarded",
    182: "Queued",
    183: "Session Progress",
    199: "Early Dialog Terminated",  # RFC 6228
    200: "OK",
    202: "Accepted",  # RFC 3265
    204: "No Notification",  # RFC 5839
    300: "Multiple Choices",
    301: "Moved Permanently",
    302: "Moved Temporarily",
    305: "Use Proxy",
    380: "Alternative Service",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    410: "Gone",
    412: "Conditional Request Failed",  # RFC 3903
    413: "Request Entity Too Large",
    414: "Request-URI Too Long",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    417: "Unknown Resource-Priority",  # RFC 4412
    420: "Bad Extension",
    421: "Extension Required",
    422: "Session Interval Too Small",  # RFC 4028
    423: "Interval Too Brief",
    428: "Use Identity Header",  # RFC 4474
    429: "Provide Referrer Identity",  # RFC 3892
    433: "Anonymity Disallowed",  # RFC 5079
    436: "Bad Identity-Info",
    437: "Unsupported Certificate",
    438: "Invalid Identity Header",
    439: "First Hop Lacks Outbound Support",  # RFC 5626
    440: "Max-Breadth Exceeded",  # RFC 5393
    469: "Bad Info Package",  # RFC 6086
    470: "Consent Needed",  # RFC 5360
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    484: "Address Incomplete",
    485: "Ambiguous",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    489: "Bad Event",  # RFC 3265
    491: "Request Pending",
    493: "Undecipherable",
    494: "Security Agreement Required",  # RFC 3329
    500: "Server Internal Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Server Time-out",
    505: "Version Not Supported",
    513: "Message Too Large",
    580: "Precondition Failure",  # RFC 3312
    600: "Busy Everywhere",
    603: "Decline",
    604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
    607: "Unwanted",  # RFC 8197
}

_COPIED_ONCE = ("From", "To", "Call-ID", "CSeq")
_TAG_RE = re.compile(r";[ \t]*tag[ \t]*=", re.I)


def reason_phrase(status: int) -> str:
    """The standard phrase, or the class's generic one for codes we do not list."""
    phrase = REASON_PHRASES.get(status)
    if phrase is None:
        phrase = REASON_PHRASES.get(status // 100 * 100, "Unknown")
    return phrase


def _has_tag(to: str) -> bool:
    try:
        return parse_name_addr(to).tag is not None
    except SipParseError:  # a partial request's raw To: look for the text instead
        return _TAG_RE.search(to) is not None


def make_response(
    request: Request,
    status: int,
    reason: str | None = None,
    to_tag: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
) -> Response:
    """A response to ``request`` per RFC 3261 §8.2.6: Vias in order, From, To (plus
    ``;tag=to_tag`` unless it already has one), Call-ID, CSeq, then ``headers``, and
    Content-Length 0.  A 100 also echoes Timestamp (§8.2.6.1).

    Works on the raw text of the request's headers, so it never raises on a ``partial``
    request from a parse error; CR/LF in ``reason`` become spaces for the same reason.
    """
    if reason is None:
        reason = reason_phrase(status)
    elif "\r" in reason or "\n" in reason:
        reason = reason.replace("\r", " ").replace("\n", " ")
    out = Headers()
    for via in request.headers.get_all("Via"):
        out.add("Via", via)
    for name in _COPIED_ONCE:  # the first one only, should a bad request carry several
        value = request.headers.get(name)
        if value is None:
            continue
        if name == "To" and to_tag is not None and not _has_tag(value):
            value = f"{value};tag={to_tag}"
        out.add(name, value)
    if status == 100:
        timestamp = request.headers.get("Timestamp")
        if timestamp is not None:
            out.add("Timestamp", timestamp)
    for name, value in headers:
        out.add(name, value)
    out.set("Content-Length", "0")
    return Response(status, reason, out)
