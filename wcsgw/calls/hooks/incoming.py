"""The ``incomingCall`` decision: what the backend is told of an INVITE and where its answer
sends the call (docs/hooks.md).

Why apart from :mod:`wcsgw.calls.inbound`: the router stays the one decision point and only
learns "ring this session" or "answer with this status"; which session a reply may name (a
connected one of the same app — a backend never reaches another app's browsers) and which
headers leave the gateway toward the backend are decided here.
"""

from __future__ import annotations

from typing import Any

from wcsgw.calls.hooks.replies import Decision
from wcsgw.calls.hooks.runtime import App
from wcsgw.calls.hooks.taps import HookTap

__all__ = ["app_of", "incoming_fields", "routed"]

#: headers of the INVITE the backend is told besides any ``X-`` header (identity, not routing)
_TOLD = ("From", "To", "Call-ID", "P-Asserted-Identity", "Diversion", "Subject")
_MAX_HEADERS = 32


def app_of(gateway: Any, session: Any, account_name: str | None) -> App | None:
    """The app that decides an INVITE: its session's (None: the session connected under no
    app), or for a server-held account's contact (no session) the app with key ``""``."""
    hooks = getattr(gateway, "hooks", None)
    if hooks is None or not hooks.enabled:
        return None
    if session is not None:
        listener = getattr(session, "listener", None)
        return listener.app if isinstance(listener, HookTap) else None
    if account_name is not None:
        return hooks.apps.get("")  # type: ignore[no-any-return]
    return None


def incoming_fields(request: Any, account_name: str | None) -> dict[str, Any]:
    """The event's fields: caller, callee (user parts, else the URI), the caller's display
    name, the server-held account called (if any) and the INVITE's identity headers."""
    caller, callee = request.from_, request.to
    headers: dict[str, str] = {}
    for name, value in request.headers:
        if (name in _TOLD or name.lower().startswith("x-")) and len(headers) < _MAX_HEADERS:
            headers.setdefault(name, value[:1024])
    return {"caller": caller.uri.user or str(caller.uri),
            "callee": callee.uri.user or str(callee.uri),
            "visibleName": caller.display_name, "account": account_name,
            "sipHeaders": headers}


def routed(gateway: Any, app: App, session: Any, decision: Decision) -> tuple[Any, tuple[int, str] | None]:
    """(the session to ring, None) or (None, (status, reason) to answer the INVITE with)."""
    if not decision.allowed:
        return None, (403, "Forbidden")
    reject = decision.changes.get("reject")
    if reject is not None:
        from wcsgw.sip.responses import reason_phrase

        return None, (int(reject), reason_phrase(int(reject)))
    named = decision.changes.get("sessionId")
    if named is not None:
        session = gateway.sessions.get(named)
        if session is None or not session.connected or app_of(gateway, session, None) is not app:
            return None, (480, "Temporarily Unavailable")
    if session is None:
        return None, (480, "Temporarily Unavailable")
    return session, None
