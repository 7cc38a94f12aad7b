"""A call's record as it ended (docs/contract.md "Records"), and the watcher that files it.

Why a registry watcher and not code in the call: the record is a view of facts the call keeps
anyway (its times, who ended it, its plan, its counters as it ended); reading them once, at
the end, from :attr:`CallRegistry.watchers` costs nothing while the call runs and nothing on
the media path.  Building the dict is cheap and happens on the reactor; the write is queued
(:mod:`wcsgw.records`), and the ``cdr`` hook event goes through the hooks' notice queue, so
neither ever delays a call's end.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from wcsgw.calls.callobject import call_object
from wcsgw.calls.callstats import LEGS, call_stats, media_counters
from wcsgw.calls.hooks.taps import HookTap

__all__ = ["CdrWatcher", "cdr_record", "iso_time"]


def iso_time(when: float | None) -> str | None:
    """Epoch seconds as ISO 8601 UTC with milliseconds (``2026-12-07T17:30:12.345Z``)."""
    if when is None:
        return None
    text = datetime.fromtimestamp(when, tz=timezone.utc).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def _stats(call: Any) -> dict[str, Any]:
    """The ``callStats`` figures as the call ended, and per leg the packets received from
    and sent to it (``packetsReceived``/``packetsSent``: a call that carried no audio
    shows 0 or null at a glance)."""
    stats = call_stats(call)
    counters = media_counters(call) or {}
    for name, key in LEGS:
        leg = counters.get(key) or {}
        stats[name]["packetsReceived"] = leg.get("packets_received")
        stats[name]["packetsSent"] = leg.get("packets_sent")
    return stats


def _account(call: Any, account_name: str | None) -> str:
    """A server-held account's name, else the account's AOR (never its password)."""
    if account_name:
        return account_name
    account = getattr(call, "account", None)
    return str(account.aor()) if account is not None else ""


def cdr_record(call: Any, *, app_key: str = "", account_name: str | None = None,
               first_uri: str | None = None,
               transfer: TransferLinks | None = None) -> dict[str, Any]:
    """The record of ``call`` (a :class:`~wcsgw.calls.core.CallCore` that ended).

    ``app_key``: its session's app ("" for none); ``account_name``: the ``[[accounts]]``
    name of its account, if server-held; ``first_uri``: its Request-URI when it started —
    a call that followed a REFER (wcsgw.calls.transferee) has another one now, the
    transfer target, recorded as ``transferredTo``; ``transfer``: what the call's own
    transfer (the browser's, wcsgw.calls.transferor) completed, if it did."""
    answered = call.answer_time
    ended = call.end_time
    duration = round(ended - answered, 3) if answered is not None and ended is not None else 0
    now_uri = getattr(call, "request_uri", None)
    transferred = now_uri if first_uri is not None and now_uri and now_uri != first_uri else None
    replaces = None
    if transfer is not None and transfer.completed:
        transferred, replaces = transfer.target, transfer.replaces
    return {
        "callId": call.call_id,
        "sessionId": call.session_id,
        "appKey": app_key,
        "direction": "incoming" if call.incoming else "outgoing",
        "caller": call.caller,
        "callee": call.callee,
        "account": _account(call, account_name),
        "startTime": iso_time(call.start_time),
        "ringTime": iso_time(call.ring_time),
        "answerTime": iso_time(answered),
        "endTime": iso_time(ended),
        "duration": max(duration, 0),
        "endReason": call.info,
        "endedBy": call.ended_by,
        "sipStatus": call.sip_status,
        "status": call.status.value,
        "media": call_object(call)["media"],
        "stats": _stats(call),
        "transferredTo": transferred,
        "replaces": replaces,
        "recording": getattr(call, "recording", None),
    }


class TransferLinks:
    """What the browser's transfer of one call (wcsgw.calls.transferor) joined it to, read
    from the ``transferStatus`` notices the call sends anyway: while the transfer runs
    (ACCEPTED, TRYING) the transferor holds its target and, attended, the other call; at
    COMPLETED it lets go of them and the call ends — so they are noted on the way."""

    def __init__(self, call: Any) -> None:
        self.call = call
        self.target: str | None = None
        #: the callId of the session's other call whose dialog the target was asked to
        #: replace (an attended transfer), else None
        self.replaces: str | None = None
        self.completed = False
        self._notify = call.notify
        call.notify = self.notify

    def notify(self, method: str, params: dict[str, Any]) -> None:
        if method == "transferStatus":
            active = getattr(getattr(self.call, "transferor", None), "active", None)
            if active is not None:
                self.target = active.target
                other = active.replaces_call
                self.replaces = other.call_id if other is not None else None
            if params.get("status") == "COMPLETED" and self.target is not None:
                self.completed = True
        self._notify(method, params)


class CdrWatcher:
    """Files every ended call's record with ``records`` (``add(record)``, never blocking)
    and, when the call's session has an app, sends it as the ``cdr`` hook event.

    What it needs of the session (its app) it notes when the call starts: by the end the
    session may be gone (a closed session ends its calls after leaving the gateway)."""

    def __init__(self, gateway: Any, records: Any) -> None:
        self.gateway = gateway
        self.records = records
        #: per live call: its session's app (None: none), its first Request-URI, and the
        #: links its own transfer makes
        self._started: dict[str, tuple[Any, str | None, TransferLinks | None]] = {}

    def call_started(self, call: Any) -> None:
        session = self.gateway.sessions.get(call.session_id) if call.session_id else None
        listener = getattr(session, "listener", None)
        app = listener.app if isinstance(listener, HookTap) else None
        links = TransferLinks(call) if hasattr(call, "transferor") else None
        self._started[call.call_id] = (app, getattr(call, "request_uri", None), links)

    def call_ended(self, call: Any) -> None:
        app, first_uri, links = self._started.pop(call.call_id, (None, None, None))
        if call.end_time is None:
            return  # a start the gateway refused: no call took place
        record = cdr_record(call, app_key=app.key if app is not None else "",
                            account_name=self.gateway.accounts.name_of(call.account),
                            first_uri=first_uri, transfer=links)
        self.records.add(record)
        hooks = self.gateway.hooks
        if app is not None and hooks is not None:
            fields = {k: v for k, v in record.items() if k not in ("sessionId", "appKey")}
            hooks.notice(app, call.call_id, "cdr", call.session_id, fields)
