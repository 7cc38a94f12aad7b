"""The registry of a gateway's calls: live ones by callId, and those still ending.

REST finds calls by callId, a session's in-call functions look theirs up (scoped: a session
sees only its own calls, the operator every call), and a graceful shutdown waits until no
call is live *or still ending on the SIP side*.  Those three needs share one bookkeeping,
kept here apart from the sessions and the limits (:class:`~wcsgw.calls.gateway.CallGateway`
composes them): a call is added when it starts, leaves ``calls`` at its terminal status
(:meth:`CallRegistry.gone`) and ``unsettled`` once its SIP leg is over
(:meth:`CallRegistry.settled`), which may be later — the answer to its BYE or CANCEL.
"""

from __future__ import annotations

import secrets
from typing import Any

from twisted.internet import defer
from twisted.logger import Logger

from wcsgw.calls import ids
from wcsgw.calls.errors import CallError, Codes
from wcsgw.calls.totals import CallTotals

__all__ = ["CallRegistry"]

log = Logger(namespace="wcsgw.calls")


class CallRegistry:
    """Live calls by callId, the calls not settled yet, and what ended calls counted."""

    def __init__(self) -> None:
        self.calls: dict[str, Any] = {}
        #: calls whose SIP leg is not over yet (a call leaves ``calls`` at its terminal status
        #: but may still be waiting for the answer to its BYE or CANCEL)
        self.unsettled: set[Any] = set()
        #: what ended calls counted (for /metrics: counters must survive a call's end)
        self.totals = CallTotals()
        #: what follows every call from its start to its end (the call records, the SIP
        #: ladders, the live statistics): objects with ``call_started(call)`` and
        #: ``call_ended(call)``; one that raises is logged and the call goes on
        self.watchers: list[Any] = []
        self._idle_waiters: list[defer.Deferred[None]] = []

    def get(self, session_id: str | None, call_id: str) -> Any:
        """The call ``call_id`` of session ``session_id``, or of anyone for the operator
        (None); :class:`CallError` (UNKNOWN_CALL) naming ``callId`` when there is none."""
        call = self.calls.get(call_id)
        if call is None or (session_id is not None and call.session_id != session_id):
            where = "" if session_id is None else " in this session"
            raise CallError(Codes.UNKNOWN_CALL, f"no call {call_id}{where}", "callId")
        return call

    def new_call_id(self, call_id: str | None) -> str:
        """The client's callId if it is free (409 otherwise), or a fresh one."""
        if call_id is None:
            return secrets.token_hex(8)
        ids.check_id(call_id, "callId")  # a registry key, logged: one shape (calls/ids.py)
        if call_id in self.calls:
            raise CallError(Codes.DUPLICATE_CALL, f"callId {call_id} is already in use", "callId")
        return call_id

    def add(self, call: Any) -> None:
        """A call about to start: live and unsettled."""
        self.unsettled.add(call)
        self.calls[call.call_id] = call
        self._tell("call_started", call)

    def gone(self, call: Any) -> None:
        """The call reached its terminal status: counted, and no longer live."""
        self.totals.call_ended(call)
        if self.calls.pop(call.call_id, None) is not None:
            self._tell("call_ended", call)

    def _tell(self, what: str, call: Any) -> None:
        for watcher in self.watchers:
            try:
                getattr(watcher, what)(call)
            except Exception:  # noqa: BLE001 - a watcher's bug must not end or keep a call
                log.failure("call {call_id}: {watcher} {what} failed", call_id=call.call_id,
                            watcher=type(watcher).__name__, what=what)

    def settled(self, call: Any) -> None:
        """The call's SIP leg is over; the last one to settle fires :meth:`when_idle`."""
        self.unsettled.discard(call)
        if not self.unsettled and not self.calls:
            waiters, self._idle_waiters = self._idle_waiters, []
            for d in waiters:
                d.callback(None)

    def when_idle(self) -> defer.Deferred[None]:
        """Fires once no call is live or still ending on the SIP side (graceful shutdown)."""
        if not self.unsettled and not self.calls:
            return defer.succeed(None)
        d: defer.Deferred[None] = defer.Deferred()
        self._idle_waiters.append(d)
        return d

    def find(self, filters: dict[str, Any]) -> list[dict[str, Any]]:
        """Calls whose fields equal every given filter (callId, status, caller, callee,
        sessionId ...); no filter: every live call."""
        found = []
        for call in self.calls.values():
            described = call.describe()
            if all(str(described.get(key)) == str(value) for key, value in filters.items()):
                found.append(described)
        return found
