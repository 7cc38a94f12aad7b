"""What a backend's reply to a decision event means (docs/hooks.md).

Why here and strict: a reply is untrusted input from another server.  Fail closed — no
reply, a transport error, a non-2xx status, a body that is not a JSON object, or a change
of the wrong type all refuse, and the browser sees the reply's ``error`` text or
``Refused by application``.  This module only checks a change's *shape*; what a change
*means* (a callee the policy must allow, an account that must exist, headers on the
allow-list) is checked by the caller through the same code as the browser's own value.
"""

from __future__ import annotations

import json
from typing import Any, Callable

import attr

__all__ = ["REFUSED", "Decision", "read_reply", "refused"]

#: the browser's message when the backend gave no reason of its own
REFUSED = "Refused by application"
_MAX_ERROR = 200


def _text(value: Any) -> bool:
    return isinstance(value, str) and len(value) <= 1024 and "\r" not in value and "\n" not in value


def _headers(value: Any) -> bool:
    """An object ``{name: value}`` or WCS's array of ``"Name: value"`` strings."""
    if isinstance(value, list):
        return all(_text(line) for line in value)
    return isinstance(value, dict) and all(_text(k) and _text(v) for k, v in value.items())


def _sip_status(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 400 <= value <= 699


def _port(value: Any) -> bool:
    return (isinstance(value, (int, str)) and not isinstance(value, bool)
            and str(value).isdigit() and 1 <= int(value) <= 65535)


#: event -> the keys a 2xx reply may change, each with its shape check
CHANGES: dict[str, dict[str, Callable[[Any], bool]]] = {
    "connect": {
        "sipLogin": _text, "sipAuthenticationName": _text, "sipPassword": _text,
        "sipDomain": _text, "sipOutboundProxy": _text, "sipPort": _port,
        "sipTransport": _text, "sipRegisterRequired": lambda v: isinstance(v, bool),
        "account": _text,
    },
    "call": {"callee": _text, "visibleName": _text, "sipHeaders": _headers, "account": _text,
             "record": lambda v: isinstance(v, bool)},
    "incomingCall": {"sessionId": _text, "reject": _sip_status},
    "transferRequest": {},
}


@attr.s(auto_attribs=True, frozen=True)
class Decision:
    """The backend's answer: ``allowed`` with ``changes`` (only keys of :data:`CHANGES`), or
    refused with ``error`` for the browser (never the backend's raw body)."""

    allowed: bool
    error: str = ""
    changes: dict[str, Any] = attr.ib(factory=dict)


def refused(error: str = "") -> Decision:
    """A refusal; ``error`` cut to one short line (it is shown to the browser)."""
    text = " ".join(str(error).split())[:_MAX_ERROR]
    return Decision(False, text or REFUSED)


def read_reply(event: str, status: int, body: bytes) -> Decision:
    """A decision from the HTTP status and body of the backend's reply to ``event``."""
    try:
        data = json.loads(body) if body.strip() else {}
    except ValueError:
        data = None
    if not 200 <= status < 300:
        error = data.get("error") if isinstance(data, dict) else None
        return refused(error if isinstance(error, str) else "")
    if not isinstance(data, dict):
        return refused()
    if data.get("allow") is False:  # a 200 that says no is a no
        error = data.get("error")
        return refused(error if isinstance(error, str) else "")
    allowed = CHANGES.get(event, {})
    changes: dict[str, Any] = {}
    for key, check in allowed.items():
        if key in data and data[key] is not None:
            if not check(data[key]):
                return refused(f"{REFUSED} (bad {key} in the application's reply)")
            changes[key] = data[key]
    return Decision(True, "", changes)
