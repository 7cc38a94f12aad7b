"""REFER helpers (RFC 3515, RFC 3891, RFC 3420): Refer-To with Replaces, and sipfrag bodies.

Call transfer is a REFER inside the call's dialog: ``Refer-To`` names where the far end should
call next.  For an attended transfer that URI carries a ``Replaces`` header (RFC 3891) naming
the dialog the new call replaces, so the transfer target swaps its call with us for the call
with the transferee.  The transferee reports how its new call goes in NOTIFYs whose bodies are
``message/sipfrag`` (RFC 3420): the status line of the response it got, ``SIP/2.0 180
Ringing`` ... ``SIP/2.0 200 OK``.

What this module does is text: build and take apart ``Replaces`` values and Refer-To URIs, and
build and read sipfrag status lines.  The REFER and NOTIFY transactions themselves are the INVITE
sessions' (:mod:`wcsgw.sip.session`).  No state, no I/O.
"""

from __future__ import annotations

import re

import attr

from wcsgw.sip.dialog import Dialog
from wcsgw.sip.errors import SipParseError
from wcsgw.sip.headers import parse_name_addr, parse_params
from wcsgw.sip.uri import parse_uri, unescape

__all__ = [
    "SIPFRAG",
    "parse_replaces",
    "parse_sipfrag",
    "refer_to_value",
    "replaces_param",
    "sipfrag_body",
    "split_refer_to",
]

#: The body type of a REFER's NOTIFYs (RFC 3515 §2.4.5); ``version=2.0`` is what we send.
SIPFRAG = "message/sipfrag"

_STATUS_LINE_RE = re.compile(r"^SIP/2\.0[ \t]+([1-6][0-9][0-9])(?:[ \t]+([^\r\n]*))?", re.I)


def replaces_param(dialog: Dialog) -> str:
    """The ``Replaces`` value (RFC 3891 §6.1) naming ``dialog``, for the *other* end of it.

    ``to-tag`` and ``from-tag`` are seen from the UA that receives the INVITE with Replaces,
    which is our peer in ``dialog``: its tag (our remote tag) is the to-tag, ours the
    from-tag.  Unescaped: :func:`refer_to_value` escapes it into the Refer-To URI.
    """
    return f"{dialog.call_id};to-tag={dialog.remote_tag};from-tag={dialog.local_tag}"


def parse_replaces(text: str) -> tuple[str, str, str]:
    """``(call_id, to_tag, from_tag)`` from a Replaces value, escaped (as it appears in a
    Refer-To URI) or not.  ``early-only`` and unknown parameters are ignored.  Raises
    ValueError when the Call-ID or either tag is missing (RFC 3891 §6.1: both tags are
    mandatory)."""
    text = unescape(text.strip())
    call_id, _, rest = text.partition(";")
    call_id = call_id.strip()
    if not call_id:
        raise ValueError(f"Replaces without a Call-ID: {text!r}")
    try:
        params = parse_params(";" + rest) if rest.strip() else {}
    except SipParseError as exc:
        raise ValueError(f"malformed Replaces {text!r}: {exc}") from None
    to_tag, from_tag = params.get("to-tag"), params.get("from-tag")
    if not to_tag or not from_tag:
        raise ValueError(f"Replaces needs to-tag and from-tag: {text!r}")
    return call_id, to_tag, from_tag


def refer_to_value(target_uri: str, replaces: str | None = None) -> str:
    """The Refer-To header value: ``<target>``, or ``<target?Replaces=...>`` with the
    Replaces value %-escaped as a URI header (``;`` ``=`` ``@`` become ``%3B`` ``%3D``
    ``%40``, RFC 3261 §19.1.1 hvalue).  Raises ValueError for an unparsable target."""
    try:
        uri = parse_uri(target_uri)
    except SipParseError as exc:
        raise ValueError(f"bad transfer target {target_uri!r}: {exc}") from None
    if replaces is not None:
        if uri.scheme not in ("sip", "sips"):
            raise ValueError(f"Replaces needs a sip: or sips: target, not {target_uri!r}")
        headers = {k: v for k, v in uri.headers.items() if k.lower() != "replaces"}
        headers["Replaces"] = replaces
        uri = attr.evolve(uri, headers=headers)
    return f"<{uri}>"


def split_refer_to(value: str) -> tuple[str, str | None]:
    """A received Refer-To value -> ``(target URI without Replaces, Replaces unescaped or
    None)``.  Other URI headers stay on the target (RFC 3515 §2.1: they belong in the
    request the REFER triggers).  Raises ValueError when the value is not a name-addr."""
    try:
        uri = parse_name_addr(value).uri
    except SipParseError as exc:
        raise ValueError(f"bad Refer-To {value!r}: {exc}") from None
    replaces: str | None = None
    headers: dict[str, str] = {}
    for name, header_value in uri.headers.items():
        if name.lower() == "replaces":
            replaces = header_value  # the URI parser has unescaped it
        else:
            headers[name] = header_value
    return str(attr.evolve(uri, headers=headers)), replaces


def sipfrag_body(status: int, reason: str) -> bytes:
    """``b"SIP/2.0 200 OK\\r\\n"``: a status-line-only sipfrag (RFC 3515 §2.4.5)."""
    if not 100 <= status <= 699:
        raise ValueError(f"not a SIP status: {status}")
    reason = reason.replace("\r", " ").replace("\n", " ")
    return f"SIP/2.0 {status} {reason}\r\n".encode("utf-8")


def parse_sipfrag(body: bytes) -> tuple[int, str] | None:
    """``(status, reason)`` from a sipfrag's first line, or None when it is not a SIP status
    line (a request fragment, garbage).  Leading blank lines are skipped."""
    text = body.decode("utf-8", "replace").lstrip("\r\n \t")
    match = _STATUS_LINE_RE.match(text)
    if match is None:
        return None
    return int(match.group(1)), (match.group(2) or "").strip()
