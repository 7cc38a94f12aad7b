"""The API side of the decision hooks: what ``connect`` and ``call`` ask the session's
backend, how its answer changes the request, and how the late response reaches the browser.

Why these rules: a reply is untrusted input (docs/security.md).  A value it puts in place of
the browser's goes through the very readers and call-layer checks the browser's own value
goes through — a callee through the outbound policy's domain and number rules, headers
through the allow-list, an account through the book of server-held accounts — and one that
fails them refuses the request (fail closed), naming the key of the reply, never -32602
blaming the browser for it.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from twisted.internet import defer
from twisted.logger import Logger

from wcsgw.api.params import ParamError, _sip_headers
from wcsgw.calls.errors import CallError, Codes
from wcsgw.calls.hooks.replies import REFUSED, Decision
from wcsgw.calls.hooks.runtime import App
from wcsgw.calls.hooks.taps import HookTap

log = Logger(namespace="wcsgw.api")

__all__ = ["app_for", "ask", "call_change", "call_fields", "connect_change", "connect_fields",
           "deliver", "record_asked", "tap", "untap"]


def _hooks(gateway: Any) -> Any:
    hooks = getattr(gateway, "hooks", None)
    return hooks if hooks is not None and hooks.enabled else None


def app_for(gateway: Any, app_key: str) -> App | None:
    """The session's app by its ``appKey`` (None: no ``[[apps]]``); an unknown key is a
    :class:`CallError` naming ``appKey``."""
    hooks = _hooks(gateway)
    return None if hooks is None else hooks.app_for(app_key)  # type: ignore[no-any-return,unused-ignore]


def ask(gateway: Any, app: App, event: str, session_id: str,
        fields: Mapping[str, Any]) -> defer.Deferred[Decision]:
    return _hooks(gateway).decide(app, event, session_id, fields)  # type: ignore[no-any-return]


def _refuse(decision: Decision) -> None:
    if not decision.allowed:
        raise CallError(Codes.FORBIDDEN, decision.error or REFUSED)


def _bad_reply(key: str) -> CallError:
    return CallError(Codes.FORBIDDEN, f"{REFUSED} (its reply's {key} is not allowed)")


# -- connect ------------------------------------------------------------------------------


def connect_fields(params: Mapping[str, Any]) -> dict[str, Any]:
    """The ``connect`` event's fields: the params as sent, without the password."""
    return {k: v for k, v in params.items() if k not in ("sipPassword", "appKey")}


def connect_change(methods: Any, params: Mapping[str, Any],
                   decision: Decision) -> tuple[Any, bool]:
    """(account, register) for ``connect`` after the backend's ``decision``: a server-held
    account's name when the reply names one, else the SIP account of the params with the
    reply's ``sip*`` values in place, read by the same readers."""
    _refuse(decision)
    changes = dict(decision.changes)
    name = changes.pop("account", None)
    if name is not None:
        return name, False
    try:
        return methods._read_account({**params, **changes})  # type: ignore[no-any-return]
    except ParamError as e:
        if e.field in changes:
            raise _bad_reply(e.field) from None
        raise


# -- call ---------------------------------------------------------------------------------


def call_id_for(gateway: Any, call_id: str | None) -> str:
    """The callId the backend is told: the browser's (checked free now, and again when the
    call starts) or one chosen now."""
    return gateway.registry.new_call_id(call_id)  # type: ignore[no-any-return]


def call_fields(gateway: Any, session_id: str, args: Mapping[str, Any]) -> dict[str, Any]:
    session = gateway.sessions.get(session_id)
    account = getattr(session, "account", None)
    return {"callId": args["call_id"], "callee": args["callee"],
            "visibleName": args["visible_name"], "sipHeaders": args["sip_headers"],
            "caller": account.login if account is not None else "",
            "hasVideo": args["has_video"]}


def call_change(gateway: Any, args: Mapping[str, Any], decision: Decision) -> dict[str, Any]:
    """The ``call`` arguments after the backend's ``decision``.  The callee it names is
    checked by the gateway's policy as the browser's would be (when the call is placed);
    headers by the allow-list here; an account must be a server-held one."""
    _refuse(decision)
    changed = dict(args)
    changes = decision.changes
    if "callee" in changes:
        changed["callee"] = changes["callee"].strip()
        if not changed["callee"]:
            raise _bad_reply("callee")
    if "visibleName" in changes:
        changed["visible_name"] = changes["visibleName"] or None
    if "sipHeaders" in changes:
        try:
            changed["sip_headers"] = _sip_headers(changes, gateway.policy)
        except ParamError:
            raise _bad_reply("sipHeaders") from None
    if "account" in changes:
        try:
            changed["account"] = gateway.accounts.named(changes["account"])
        except CallError:
            raise _bad_reply("account") from None
    if changes.get("record") is True:
        changed["record"] = True  # not a call argument: recorded once placed (record_asked)
    return changed


def record_asked(gateway: Any, session_id: str, call_id: str) -> None:
    """The ``call`` hook's reply said ``record: true``: the call is recorded from its answer.
    Without recording configured, or for a call that cannot be, the call goes on unrecorded
    (logged): the backend asked for a record, not for the call to fail."""
    recordings = getattr(gateway, "recordings", None)
    try:
        if recordings is None:
            raise CallError(Codes.INVALID, "recording is not configured", "record")
        recordings.record(session_id, call_id, True)
    except CallError as exc:
        log.warn("call {call_id}: the hook asked to record it, but {error}", call_id=call_id,
                 error=exc.message)


# -- the session's listener and the late reply -------------------------------------------


def tap(gateway: Any, session_id: str, app: App | None) -> Callable[[], None]:
    """Tap the session's listener for ``app``'s notices (nothing without an app); returns
    the undo."""
    session = gateway.sessions.get(session_id) if app is not None else None
    if app is None or session is None:
        return lambda: None
    inner = session.listener
    session.listener = HookTap(inner, _hooks(gateway), app, session_id)

    def undo() -> None:
        session.listener = inner
    return undo


def untap(gateway: Any, session_id: str) -> None:
    session = gateway.sessions.get(session_id)
    if session is not None and isinstance(session.listener, HookTap):
        session.listener = session.listener.inner


def deliver(gateway: Any, session_id: str, run: Callable[[], str | None]) -> None:
    """Send a response that waited on a hook, ahead of the notifications its work causes
    (docs/contract.md: a notification comes after the response of the request that caused
    it): the WebSocket's ``deliver`` does that (a test's listener without one gets the reply
    as ``reply``).  A session that went away meanwhile gets nothing."""
    session = gateway.sessions.get(session_id)
    if session is None:
        return
    socket = session.listener
    while isinstance(socket, HookTap):
        socket = socket.inner
    own = getattr(socket, "deliver", None)
    if own is not None:
        own(run)
        return
    reply = run()  # not a WebSocket (a test's listener)
    if reply is not None and hasattr(socket, "reply"):
        socket.reply(reply)
