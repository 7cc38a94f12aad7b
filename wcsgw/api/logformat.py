"""The gateway's log output: what a line says, in which format, at which level.

An operator reads these lines in two ways: as text in a terminal or journal, and as JSON in a
log shipper (Loki, Elasticsearch ...) that indexes fields.  Both come out of one observer,
:class:`GatewayLogObserver`, which does three things twisted.logger's stock observers do not:

* **quiet Twisted**: a call opens and closes UDP sockets, and Twisted logs each one at info
  ("RtpProtocol starting on 30012", "(UDP Port 30012 Closed)", "Starting protocol ...").
  Hundreds of calls an hour bury the lines that matter, so those events are treated as debug
  (:func:`is_socket_noise`) — kept for a debug log, not lost;
* **ids on every call line**: the calls layer logs ``call_id``; the session a call belongs to is
  filled in from :class:`CallIds` (a registry watcher), so a log search by session finds its
  calls' lines, the last ones after the call ended included;
* **JSON lines** (:func:`json_line`): one object per line, not Twisted's RS-separated
  ``jsonFileLogObserver`` records (which no shipper reads as plain JSON lines), with the
  event's own plain fields and never a field named like a secret.

Text lines are Twisted's classic format, unchanged: the call lines already say
``call <id>: ...``; the session id is a JSON field only (a text suffix on every line would
break the grep patterns operators already have, and JSON is what is searched by field).
"""

from __future__ import annotations

import collections
import datetime
import json
import math
import re
from typing import IO, Any, Callable

from twisted.logger import (
    ILogObserver,
    LogEvent,
    LogLevel,
    LogLevelFilterPredicate,
    PredicateResult,
    formatEvent,
    formatEventAsClassicLogText,
)
from twisted.python.failure import Failure
from zope.interface import implementer  # type: ignore[import-untyped]

__all__ = ["CallIds", "GatewayLogObserver", "is_secret_key", "is_socket_noise", "json_line",
           "make_log_observer", "without_secrets"]

LEVELS = {"debug": LogLevel.debug, "info": LogLevel.info, "warn": LogLevel.warn,
          "error": LogLevel.error}

#: A field whose name holds one of these is never written, whatever its value (a log call
#: that passes one by mistake must not leak it into an indexed store).
SECRET_WORDS = ("password", "passwd", "token", "authorization", "secret", "credential")

#: What Twisted itself logs at info for every socket a call opens or closes (udp.py, tcp.py,
#: protocol.py): per-call noise, demoted to debug.
_NOISE = re.compile(
    r"\((?:UDP|TCP|TLS) Port \d+ Closed\)"
    r"|Starting protocol .*|Stopping protocol .*"
    r"|Starting factory .*|Stopping factory .*"
    r"|\S+ starting on \d+",
    re.DOTALL,
)
_TWISTED_NAMESPACES = ("log_legacy", "twisted.")
#: twisted.internet.protocol.Factory's start/stop lines, in the namespace of each factory class
_FACTORY_FORMATS = frozenset({"Starting factory {factory!r}", "Stopping factory {factory!r}"})

#: Keys of a legacy (``twisted.python.log``) event and of our own output, not event fields.
_NOT_FIELDS = frozenset({"message", "isError", "system", "time", "format", "why", "failure",
                         "level", "namespace", "printed"})


def is_secret_key(key: str) -> bool:
    """Whether a field name suggests a secret (``sipPassword``, ``auth_token``, ...)."""
    lowered = key.lower()
    return any(word in lowered for word in SECRET_WORDS)


def without_secrets(event: LogEvent) -> LogEvent:
    """``event`` without its secret-named fields (a copy if it had any).  Also before the text
    is formatted: a format naming a dropped field, or one that fails, is written as Twisted's
    "Unable to format event" with the event's repr, which must not show a secret either."""
    if not any(is_secret_key(key) or isinstance(value, dict) for key, value in event.items()):
        return event
    return {key: _scrub(value) for key, value in event.items() if not is_secret_key(key)}


def _scrub(value: Any, depth: int = 0) -> Any:
    """A dict field without its secret-named keys, a few levels down (a copy)."""
    if depth < 3 and isinstance(value, dict):
        return {k: _scrub(v, depth + 1) for k, v in value.items()
                if not (isinstance(k, str) and is_secret_key(k))}
    return value


def is_socket_noise(event: LogEvent) -> bool:
    """One of Twisted's per-socket lines (see the module doc), whatever its level says."""
    if event.get("log_failure") is not None:
        return False
    if event.get("log_format") in _FACTORY_FORMATS:  # logged in the factory's own namespace
        return True
    namespace = event.get("log_namespace") or ""
    if not namespace.startswith(_TWISTED_NAMESPACES):
        return False
    try:
        text = formatEvent(event)
    except Exception:  # noqa: BLE001 - a bad format is not noise; the writer reports it
        return False
    return _NOISE.fullmatch(text.strip()) is not None


def _plain(value: Any, depth: int = 0) -> Any:
    """``value`` if it is plain JSON (recursively, shallow), else a marker that drops it."""
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else _DROP
    if depth < 2 and isinstance(value, (list, tuple)):
        items = [_plain(v, depth + 1) for v in value]
        return _DROP if any(v is _DROP for v in items) else items
    if depth < 2 and isinstance(value, dict) and all(isinstance(k, str) for k in value):
        out = {k: _plain(v, depth + 1) for k, v in value.items() if not is_secret_key(k)}
        return _DROP if any(v is _DROP for v in out.values()) else out
    return _DROP


_DROP = object()


def _iso_time(when: float) -> str:
    moment = datetime.datetime.fromtimestamp(when, datetime.timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def json_record(event: LogEvent) -> dict[str, Any]:
    """The JSON object of one event (see :func:`json_line`)."""
    event = without_secrets(event)
    level = event.get("log_level")
    record: dict[str, Any] = {
        "time": _iso_time(float(event.get("log_time") or 0.0)),
        "level": getattr(level, "name", "info"),
        "namespace": event.get("log_namespace") or "",
        "message": formatEvent(event),
    }
    failure = event.get("log_failure")
    if isinstance(failure, Failure):
        record["traceback"] = failure.getTraceback()
    for key, value in event.items():
        if key.startswith("log_") or key in _NOT_FIELDS or key in record or is_secret_key(key):
            continue
        plain = _plain(value)
        if plain is not _DROP:
            record[key] = plain
    if "call_id" in record:  # a call's line names its session, null when it has none (REST)
        record.setdefault("session_id", None)
    return record


def json_line(event: LogEvent) -> str:
    """One line of JSON: ``time`` (ISO 8601 UTC, ms), ``level``, ``namespace``, ``message``
    (the formatted text), ``traceback`` for a failure, then the event's own fields that are
    plain JSON values — never one named like a secret (:func:`is_secret_key`)."""
    return json.dumps(json_record(event), ensure_ascii=False, separators=(",", ":"),
                      allow_nan=False) + "\n"


class CallIds:
    """Which call and session a line belongs to, when it names only part of that.

    A :class:`~wcsgw.calls.registry.CallRegistry` watcher: live calls from their start, and the
    last ``keep`` ended ones (a call's final lines — BYE answered, sockets closed — come after
    its end).  A line of the calls layer names the call (``call_id``): its ``session_id`` is
    added.  A line of a lower layer names a part of a call — the SIP dialog (``sip_call_id``,
    the Call-ID header) or the browser leg (``webrtc_leg``, its port) — and gets the call's
    ``call_id`` and ``session_id``.  The parts are read from the live calls when a line names
    one not indexed yet (a dialog exists once the INVITE is built, a transfer replaces it), so
    nothing is done per call unless a line asks — at most once a second unless calls started
    or ended since, so a flood of lines about calls that never were (INVITEs refused while
    overloaded) does not scan the live calls for each; ended calls' parts are kept with them,
    and a live call's part wins over an ended one's (ports are reused).  Bounded, so a
    long-running gateway holds a fixed amount whatever its traffic.
    """

    def __init__(self, keep: int = 1000) -> None:
        self.keep = keep
        self._live: dict[str, Any] = {}  # call_id -> the call
        self._ended: collections.OrderedDict[str, str | None] = collections.OrderedDict()
        self._live_parts: dict[tuple[str, str], str] = {}  # (field, value) -> call_id
        self._ended_parts: collections.OrderedDict[tuple[str, str], str] = \
            collections.OrderedDict()
        self._changed = True  # calls started or ended since the parts were last read
        self._read_at = -math.inf

    #: a part not found is looked for again among unchanged live calls after this long
    REREAD = 1.0

    def call_started(self, call: Any) -> None:
        self._live[call.call_id] = call
        self._changed = True

    def call_ended(self, call: Any) -> None:
        self._live.pop(call.call_id, None)
        self._changed = True
        self._ended[call.call_id] = call.session_id
        self._ended.move_to_end(call.call_id)
        for part in _parts(call):
            if self._live_parts.get(part) == call.call_id:
                del self._live_parts[part]
            self._ended_parts[part] = call.call_id
            self._ended_parts.move_to_end(part)
        while len(self._ended) > self.keep:
            self._ended.popitem(last=False)
        while len(self._ended_parts) > 2 * self.keep:
            self._ended_parts.popitem(last=False)

    def _session_of(self, call_id: str) -> tuple[bool, str | None]:
        call = self._live.get(call_id)
        if call is not None:
            return True, call.session_id
        if call_id in self._ended:
            return True, self._ended[call_id]
        return False, None

    def _call_of(self, part: tuple[str, str], now: float) -> str | None:
        call_id = self._live_parts.get(part)
        if call_id is not None and call_id not in self._live:
            call_id = None
        if call_id is None and (self._changed or now - self._read_at >= self.REREAD):
            self._live_parts = {found: live_id for live_id, call in self._live.items()
                                for found in _parts(call)}
            self._changed, self._read_at = False, now
            call_id = self._live_parts.get(part)
        return call_id if call_id is not None else self._ended_parts.get(part)

    def enrich(self, event: LogEvent) -> LogEvent:
        """``event`` with ``call_id``/``session_id`` filled in where the line names a known
        call or a part of one and not them (a copy: other observers see the event as it was
        logged)."""
        added: dict[str, Any] = {}
        call_id = event.get("call_id")
        if call_id is None:
            for field in _PART_FIELDS:
                value = event.get(field)
                if value is not None:
                    call_id = self._call_of((field, str(value)),
                                            float(event.get("log_time") or 0.0))
                    break
            if call_id is None:
                return event
            added["call_id"] = call_id
        if not isinstance(call_id, str):
            return event
        if event.get("session_id") is None:
            known, session_id = self._session_of(call_id)
            if known:
                added["session_id"] = session_id
        return {**event, **added} if added else event


def _attr(thing: Any, *path: str) -> Any:
    for name in path:
        thing = getattr(thing, name, None)
    return thing


#: the fields naming a part of a call, and where a call keeps each (duck-typed: the calls
#: layer is above this one)
_PART_FIELDS = {
    "sip_call_id": ("invite", "call_id"),  # the current SIP dialog's Call-ID
    "webrtc_leg": ("near", "media", "control", "label"),  # the WebRTC leg's port (/ufrag)
}


def _parts(call: Any) -> list[tuple[str, str]]:
    """The (field, value) parts the call has now."""
    found = []
    for field, path in _PART_FIELDS.items():
        value = _attr(call, *path)
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            found.append((field, str(value)))
    return found


@implementer(ILogObserver)
class GatewayLogObserver:
    """Level filter, Twisted's socket noise as debug, call ids, then one writer."""

    def __init__(self, level: str, write: Callable[[LogEvent], None],
                 call_ids: CallIds | None = None) -> None:
        self._predicate = LogLevelFilterPredicate(defaultLogLevel=LEVELS[level])
        self._debug = LEVELS[level] == LogLevel.debug
        self._write = write
        #: the gateway's service wiring adds it to the call registry's watchers
        self.call_ids = call_ids if call_ids is not None else CallIds()

    def __call__(self, event: LogEvent) -> None:
        if not self._debug and is_socket_noise(event):
            return  # debug, and this log is above debug
        if self._predicate(event) is PredicateResult.no:
            return
        self._write(self.call_ids.enrich(without_secrets(event)))


def _text_writer(output: IO[str]) -> Callable[[LogEvent], None]:
    def write(event: LogEvent) -> None:
        text = formatEventAsClassicLogText(event)
        if text:
            output.write(text)
            output.flush()
    return write


def _json_writer(output: IO[str]) -> Callable[[LogEvent], None]:
    def write(event: LogEvent) -> None:
        try:
            line = json_line(event)
        except Exception:  # noqa: BLE001 - a log line must never break the caller
            line = json.dumps({"time": _iso_time(float(event.get("log_time") or 0.0)),
                               "level": "error", "namespace": "wcsgw.log",
                               "message": "unwritable log event"}) + "\n"
        output.write(line)
        output.flush()
    return write


def make_log_observer(level: str, output: IO[str], format: str = "text") -> GatewayLogObserver:
    """The observer of ``[log]``: ``level`` and ``format`` (``text`` or ``json``) on
    ``output``."""
    writer = _json_writer(output) if format == "json" else _text_writer(output)
    return GatewayLogObserver(level, writer)
