"""The REST API's field rules, shared by the server (:mod:`wcsgw.api.restfields`) and its
OpenAPI document (:mod:`wcsgw.api.openapi`): each field's syntax as regular-expression *text*,
the length limits, the enumerations, and the routes.

Why one module both sides import: the server checks each field with the same pattern the
document publishes (compiled with :mod:`re`; the patterns use only character classes,
alternation and quantifiers, which mean the same in Python and ECMA-262, and they are anchored
``^...$`` so JSON Schema's "search" semantics and :func:`re.fullmatch` agree).  Then a client
that validates against the document and the server can never disagree on syntax, and
``tests/test_api_rest_schema.py`` proves it by letting schemathesis generate valid and invalid
requests from the document and checking every reply.

Pure data: no Twisted, no I/O.
"""

from __future__ import annotations

from wcsgw.calls.ids import ID_PATTERN, MAX_ID

__all__ = [
    "ACCOUNT_NAME",
    "BOOLEAN_TEXT",
    "CALL_ID",
    "DTMF",
    "DTMF_TYPES",
    "HOST",
    "HOST_OR_EMPTY",
    "MAX_BODY",
    "MAX_CALL_ID",
    "MAX_PATH",
    "MAX_TEXT",
    "NONBLANK",
    "PLAY_FILE",
    "PLAY_FILE_FORBIDDEN",
    "PORT_TEXT",
    "RECORDING_NAME",
    "RECORDING_ROUTE",
    "ROUTES",
    "STATUSES",
    "TEXT",
    "TOKEN",
    "TRANSPORTS",
    "SRTP_POLICIES",
    "CDR_LIMIT",
    "MAX_EPOCH_MS",
    "route_of",
]

#: Largest request body accepted by default (bytes; ``http.max_body``); larger -> 413.
MAX_BODY = 64 * 1024
MAX_TEXT = 256  # names, logins, passwords, callee, target
MAX_CALL_ID = MAX_ID
MAX_PATH = 1024  # playFile

# -- field syntax (anchored; same meaning in Python re and ECMA-262) -------------------------------

#: One line of text: no control characters (CR/LF would change a SIP header's meaning).
TEXT = r"^[^\x00-\x1f\x7f]*$"
#: One line with at least one character that is not a space.
NONBLANK = r"^[^\x00-\x1f\x7f]*[^\x00-\x20\x7f][^\x00-\x1f\x7f]*$"
#: A callId or sessionId: the one id shape of :mod:`wcsgw.calls.ids` (no "/", no "..", no
#: control characters, at most MAX_CALL_ID characters), checked by the same function.
CALL_ID = ID_PATTERN
#: A callee or transfer target: a number, user name, callId or URI — no spaces, no controls.
TOKEN = r"^[^\x00-\x20\x7f]+$"
#: A host: DNS name or IPv4 literal, or an IPv6 literal with or without brackets.  No ``:port``
#: (the port goes in ``sipPort``).  Whether the host is *allowed* is the policy's question.
_HOST_BODY = (
    r"\[[0-9A-Fa-f:.]{2,45}\]"
    r"|[0-9A-Fa-f.]*:[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*"
    r"|[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?"
)
HOST = rf"^({_HOST_BODY})$"
HOST_OR_EMPTY = rf"^({_HOST_BODY})?$"
#: A port written as decimal text, 1..65535 without leading zeros, or "" for the default.
PORT_TEXT = r"^([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])?$"
#: A server-held account's name (``[[accounts]] name``, wcsgw.config.sections).
ACCOUNT_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
#: WCS documents booleans sent as text; these two spellings are accepted.
BOOLEAN_TEXT = ("true", "false")
TRANSPORTS = ("udp", "tcp", "tls", "UDP", "TCP", "TLS", "")
#: sipSrtp: SDES-SRTP toward the SIP side (docs/call-control.md); "" = off
SRTP_POLICIES = ("off", "optional", "mandatory", "")
DTMF = r"^[0-9*#A-Da-d]{1,64}$"
DTMF_TYPES = ("RFC2833", "INFO")
#: playFile: relative (does not start with "/"), one line ...
PLAY_FILE = r"^[^/\x00-\x1f\x7f][^\x00-\x1f\x7f]*$"
#: ... and no ".." path segment anywhere.
PLAY_FILE_FORBIDDEN = r"(^|/)\.\.(/|$)"

#: Call statuses (docs/contract.md), for the call object and the ``find`` filter.
STATUSES = (
    "NEW", "PENDING", "TRYING", "RING", "RING_MEDIA", "SESSION_PROGRESS", "ESTABLISHED",
    "HOLD", "BUSY", "FINISH", "FAILED",
)

#: /cdr/find and /cdr/export: ``since``/``until`` are Unix time in milliseconds (as the call
#: object's startTime), 0 .. the last millisecond of year 9999; ``limit`` 1..1000 (default 100).
MAX_EPOCH_MS = 253_402_300_799_999
CDR_LIMIT = (1, 1000, 100)

#: A recording's name in ``GET /rest-api/recording/<name>``: one plain file name with an
#: audio extension.  Only a first sieve (no "/", no "..", no leading dot): whether the gateway
#: made that recording is ``gateway.recordings.path``'s answer.
RECORDING_NAME = r"^[0-9A-Za-z][0-9A-Za-z_-]{0,127}(\.[0-9A-Za-z_-]{1,32})*\.(wav|ogg)$"
RECORDING_ROUTE = "/recording/{name}"

#: Every route the REST resource serves, relative to ``/rest-api``: path -> HTTP method.
ROUTES: dict[str, str] = {
    "/call/startup": "POST",
    "/call/terminate": "POST",
    "/call/find": "POST",
    "/call/find_all": "POST",
    "/call/send_dtmf": "POST",
    "/call/hold": "POST",
    "/call/unhold": "POST",
    "/call/transfer": "POST",
    "/gateway/drain": "POST",
    "/call/record": "POST",
    "/call/ladder": "POST",
    "/cdr/find": "POST",
    "/cdr/export": "POST",
    "/recording/find_all": "POST",
    "/session/find_all": "POST",
    RECORDING_ROUTE: "GET",
    "/openapi.json": "GET",
}


def route_of(segments: list[str]) -> str | None:
    """The :data:`ROUTES` key a request path (its segments after ``/rest-api``) is served by,
    None for none.  Only ``/recording/<name>`` has a variable part: one segment, whatever it
    holds (the resource refuses a bad name with 400, never a 404 that would hide why)."""
    path = "/" + "/".join(segments)
    if path in ROUTES and path != RECORDING_ROUTE:
        return path
    if len(segments) == 2 and segments[0] == "recording":
        return RECORDING_ROUTE
    return None
