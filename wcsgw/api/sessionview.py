"""What ``/rest-api/session/find_all`` shows of a browser session: the operator's view of who
is logged in, from where, on which account, registered or not, with which calls.

Why a view and not the session itself: a :class:`~wcsgw.calls.sessions.Session` holds the SIP
account, whose password must never leave the server, and the resume token; this picks the
fields an operator needs (the admin page's "Sessions" table) and nothing else.  Pure: reads the
gateway's objects, changes nothing.
"""

from __future__ import annotations

from typing import Any

from wcsgw.calls.hooks.taps import HookTap

__all__ = ["describe_session", "describe_sessions"]


def _state(session: Any) -> str:
    """open (not yet connected, or after disconnect), connected, or detached (connected, its
    WebSocket gone, waiting for a resume) — the states of the wcsgw_websocket_sessions gauge."""
    if not session.connected:
        return "open"
    relay = session.relay
    if relay is not None and not relay.attached:
        return "detached"
    return "connected"


def _registration(session: Any) -> str | None:
    """The REGISTER client's state (idle, registering, registered, unregistering, backoff,
    failed); None when the session registers nothing."""
    kept = session.registration
    if kept is None:
        return None
    state = getattr(kept.registration, "state", None)
    return str(getattr(state, "value", state)) if state is not None else None


def describe_session(session: Any) -> dict[str, Any]:
    account = session.account
    listener = session.listener
    return {
        "sessionId": session.id,
        "state": _state(session),
        # the [limits] address key of the TCP peer (IPv4 address, or the IPv6 /64)
        "peer": session.peer,
        "account": account.aor() if account is not None else None,
        "accountName": session.account_name,
        "appKey": listener.app.key if isinstance(listener, HookTap) else None,
        "registration": _registration(session),
        "calls": sorted(session.calls),
    }


def describe_sessions(gateway: Any) -> list[dict[str, Any]]:
    """Every session the gateway keeps (open, connected or detached), by session id."""
    sessions = getattr(gateway, "sessions", None) or {}
    return [describe_session(s) for _, s in sorted(sessions.items())]
