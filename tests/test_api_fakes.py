"""A fake :class:`~wcsgw.calls.gateway.CallGateway` for the API tests (no SIP, no media).

It records every call into it (``events``, an :class:`~tests.support.EventLog` tests can await)
and answers the way the real gateway's interface promises: ``connect`` reports ESTABLISHED
(then REGISTERED when asked) through the session's listener, ``call`` reports NEW, ``hangup``
reports FINISH, ``disconnect`` reports DISCONNECTED.  ``fail[method] = CallError(...)`` makes
a method refuse.
"""

from __future__ import annotations

from typing import Any

from wcsgw.calls.gateway import CallError, Codes
from wcsgw.sip.account import SipAccount

from tests.support import EventLog


class FakeGateway:
    def __init__(self) -> None:
        self.listeners: dict[str, Any] = {}
        self.accounts: dict[str, SipAccount | None] = {}
        self.calls: dict[str, dict[str, Any]] = {}
        self.events = EventLog()
        self.fail: dict[str, Exception] = {}
        self.register_outcome: tuple[str, int | None, str] = ("REGISTERED", 200, "")

    def _check(self, method: str) -> None:
        error = self.fail.get(method)
        if error is not None:
            raise error

    def open_session(self, session_id: str, listener: Any) -> None:
        self._check("open_session")
        self.listeners[session_id] = listener
        self.events("open_session", session_id)

    def connect(self, session_id: str, account: SipAccount | None, register: bool) -> None:
        self._check("connect")
        self.events("connect", session_id, account, register)
        self.accounts[session_id] = account
        listener = self.listeners[session_id]
        listener.session_status("ESTABLISHED", None, "")
        if account is not None and register:
            listener.session_status(*self.register_outcome)

    def disconnect(self, session_id: str) -> None:
        self._check("disconnect")
        self.events("disconnect", session_id)
        self.listeners[session_id].session_status("DISCONNECTED", None, "")

    def call(self, session_id: str, **kwargs: Any) -> str:
        self._check("call")
        call_id = kwargs["call_id"] or f"gw-{len(self.calls) + 1}"
        if call_id in self.calls:
            raise CallError(Codes.DUPLICATE_CALL, f"callId {call_id} is already in use", "callId")
        self.events("call", session_id, kwargs)
        self.calls[call_id] = {"session": session_id, **kwargs}
        self.listeners[session_id].call_status(self.call_dict(call_id, "NEW"))
        return call_id

    def call_dict(self, call_id: str, status: str, **extra: Any) -> dict[str, Any]:
        call = self.calls[call_id]
        return {"callId": call_id, "status": status, "sipStatus": None, "info": "",
                "incoming": False, "caller": "", "callee": call["callee"], **extra}

    def hangup(self, session_id: str, call_id: str) -> None:
        self._check("hangup")
        self.events("hangup", session_id, call_id)
        call = self.calls.get(call_id)
        if call is None or call["session"] != session_id:
            raise CallError(Codes.UNKNOWN_CALL, f"no call {call_id} in this session", "callId")
        self.listeners[session_id].call_status(self.call_dict(call_id, "FINISH", info="Normal call clearing"))
        del self.calls[call_id]

    def close_session(self, session_id: str) -> None:
        self.events("close_session", session_id)
        self.listeners.pop(session_id, None)


class RecordingListener:
    """A SessionListener that keeps what it hears (for SessionMethods tests without a socket)."""

    def __init__(self) -> None:
        self.heard: list[tuple[str, Any]] = []

    def session_status(self, status: str, sip_status: int | None, info: str) -> None:
        self.heard.append(("sessionStatus", (status, sip_status, info)))

    def call_status(self, call: dict[str, Any]) -> None:
        self.heard.append(("callStatus", call))
