"""Where the notice events come from: the session's own listener, tapped.

Why a tap on the listener: every ``sessionStatus``, ``callStatus``, ``transferStatus`` and
``dtmf`` the browser is told already goes through its session's listener, in order; telling
the backend the same thing from the same place keeps the two views identical and adds no
hook call to the call code.  The browser hears first; the backend's copy is only queued.
"""

from __future__ import annotations

from typing import Any, Mapping

from wcsgw.calls.hooks.runtime import App, Hooks

__all__ = ["HookTap", "NOTICES"]

#: the notice events; all but ``cdr`` are what the browser is told, tapped here — ``cdr``, a
#: call's record as it ended, is sent by the call records' watcher (wcsgw.calls.cdr)
NOTICES = ("sessionStatus", "callStatus", "transferStatus", "dtmf", "cdr")


class HookTap:
    """A session listener that forwards to ``inner`` (the WebSocket) and queues the same
    events for the session's app."""

    def __init__(self, inner: Any, hooks: Hooks, app: App, session_id: str) -> None:
        self.inner = inner
        self.hooks = hooks
        self.app = app
        self.session_id = session_id

    def session_status(self, status: str, sip_status: int | None, info: str) -> None:
        self.inner.session_status(status, sip_status, info)
        self.hooks.notice(self.app, self.session_id, "sessionStatus", self.session_id,
                          {"status": status, "sipStatus": sip_status, "info": info})

    def call_status(self, call: Mapping[str, Any]) -> None:
        self.inner.call_status(call)
        fields = {k: v for k, v in call.items() if k not in ("sdp", "sessionId")}
        self.hooks.notice(self.app, str(call.get("callId")), "callStatus", self.session_id,
                          fields)

    def notify(self, method: str, params: Mapping[str, Any]) -> None:
        self.inner.notify(method, params)
        if method in NOTICES:
            self.hooks.notice(self.app, str(params.get("callId")), method, self.session_id,
                              dict(params))

    def ask(self, event: str, fields: Mapping[str, Any]) -> Any:
        """A decision event of this session's app (``transferRequest`` from a call's
        :class:`~wcsgw.calls.transferee.Transferee`): a Deferred firing with a Decision."""
        return self.hooks.decide(self.app, event, self.session_id, fields)

    def __getattr__(self, name: str) -> Any:
        # Anything else the WebSocket side offers (deliver, ...) is the inner listener's.
        return getattr(self.inner, name)
