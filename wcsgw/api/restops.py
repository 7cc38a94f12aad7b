"""The operator's operations over REST: call records (``/cdr/find``, ``/cdr/export``),
recordings (``/call/record``, ``/recording/find_all``, ``GET /recording/<name>``), a call's SIP
ladder (``/call/ladder``) and the live sessions (``/session/find_all``).

Why apart from :mod:`wcsgw.api.restcalls`: those are WCS's call-control methods; these read
what the gateway keeps about calls (records, files, SIP messages, sessions) for the admin page
and for scripts, through the gateway's ``cdr``, ``recordings`` and ``ladders`` attributes
(None while the feature is off: 503 naming it).  Each method checks its body here (400 naming
the field) and returns JSON-able data, an :class:`Attachment` (CSV), or raises; the HTTP face
is :mod:`wcsgw.api.rest`, which also streams a recording from :meth:`RestOps.recording_file`
without reading it into memory.

Secrets: nothing here reads a password; sessions are described by
:mod:`wcsgw.api.sessionview`, which leaves the account's password and the resume token out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping

from twisted.internet import defer

from wcsgw.api import restfields as fields
from wcsgw.api.restfields import RestError
from wcsgw.api.restrules import CDR_LIMIT, MAX_EPOCH_MS, RECORDING_NAME
from wcsgw.api.sessionview import describe_sessions
from wcsgw.calls.errors import CallError

__all__ = ["Attachment", "RestOps", "content_type_of"]

_CDR_FIELDS = ("callId", "since", "until", "limit")


class Attachment:
    """A reply that is a file to save, not JSON: the bytes, their type and a file name."""

    __slots__ = ("body", "content_type", "filename")

    def __init__(self, body: bytes, content_type: bytes, filename: str) -> None:
        self.body = body
        self.content_type = content_type
        self.filename = filename

    def headers(self) -> dict[bytes, bytes]:
        return {b"content-type": self.content_type,
                b"content-disposition": f'attachment; filename="{self.filename}"'.encode()}


def content_type_of(name: str) -> bytes:
    """A recording's Content-Type by its extension (the gateway writes WAV, or Opus in Ogg)."""
    return b"audio/ogg" if name.endswith(".ogg") else b"audio/wav"


def _off(what: str, key: str) -> RestError:
    return RestError(503, f"{what} are off on this gateway ({key})")


def _integer(body: Mapping[str, Any], field: str, low: int, high: int) -> int | None:
    """A JSON integer in ``low..high`` (5.0 counts: JSON Schema's integer includes it)."""
    if field not in body:
        return None
    value = body[field]
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise fields.bad(field, f"must be an integer from {low} to {high}")
    return value


def cdr_query(body: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments of ``gateway.cdr.find``/``export_csv`` from a body: ``callId``,
    ``since``/``until`` (Unix ms in the body, seconds for the store), ``limit``.  Any other
    field is refused, so a typo never widens a search."""
    for field in body:
        if field not in _CDR_FIELDS:
            raise fields.bad(str(field)[:64], "is not a field (callId, since, until, limit)")
    query: dict[str, Any] = {"call_id": fields.call_id(body, required=False)}
    for field in ("since", "until"):
        ms = _integer(body, field, 0, MAX_EPOCH_MS)
        query[field] = ms / 1000.0 if ms is not None else None
    low, high, default = CDR_LIMIT
    limit = _integer(body, "limit", low, high)
    query["limit"] = default if limit is None else limit
    return query


def recording_name(name: str) -> str:
    """``name`` if it has the shape of a recording's name (one file name, no path), else 400
    naming ``name``; whether the gateway made it is asked next."""
    if len(name) > 200 or not fields.matches(RECORDING_NAME, name):
        raise fields.bad("name", "must be a recording's file name (as recording/find_all "
                                 "lists them)")
    return name


class RestOps:
    """The operations' methods over a gateway; ``methods`` is merged into
    :class:`~wcsgw.api.restcalls.RestApi`'s table."""

    def __init__(self, gateway: Any) -> None:
        self.gateway = gateway
        self.methods: dict[str, Callable[[dict[str, Any]], Any]] = {
            "/call/record": self.call_record,
            "/call/ladder": self.call_ladder,
            "/cdr/find": self.cdr_find,
            "/cdr/export": self.cdr_export,
            "/recording/find_all": self.recording_find_all,
            "/session/find_all": self.session_find_all,
        }

    def _part(self, name: str, what: str, key: str) -> Any:
        part = getattr(self.gateway, name, None)
        if part is None:
            raise _off(what, key)
        return part

    # -- call records ---------------------------------------------------------------------

    def cdr_find(self, body: dict[str, Any]) -> Any:
        query = cdr_query(body)
        cdr = self._part("cdr", "call records", "[cdr]")
        return defer.maybeDeferred(cdr.find, **query).addCallback(list)

    def cdr_export(self, body: dict[str, Any]) -> Any:
        query = cdr_query(body)
        cdr = self._part("cdr", "call records", "[cdr]")

        def attach(text: str) -> Attachment:
            return Attachment(text.encode("utf-8"), b"text/csv; charset=utf-8", "cdr.csv")

        return defer.maybeDeferred(cdr.export_csv, **query).addCallback(attach)

    # -- recordings -----------------------------------------------------------------------

    def call_record(self, body: dict[str, Any]) -> Any:
        call_id = fields.call_id(body)
        if "enable" not in body:
            raise fields.bad("enable", "is required")
        enable = fields.flag(body, "enable", True)
        recordings = self._part("recordings", "recordings", "[recording]")
        name = recordings.record(None, call_id, enable)
        return {"recording": name}

    def recording_find_all(self, body: dict[str, Any]) -> Any:
        for field in body:
            raise fields.bad(str(field)[:64], "is not a field of recording/find_all (send {})")
        recordings = self._part("recordings", "recordings", "[recording]")
        return defer.maybeDeferred(recordings.list).addCallback(list)

    def recording_file(self, name: str) -> Path:
        """The file of the recording ``name``: 400 for a name of the wrong shape, 404 for one
        the gateway does not hold (``gateway.recordings.path`` decides: a name it did not make,
        or a file gone) — never a path built from the client's text."""
        recording_name(name)
        recordings = self._part("recordings", "recordings", "[recording]")
        try:
            path: Path = recordings.path(name)
        except CallError:
            raise RestError(404, f"name: no such recording: {name}", "name") from None
        return path

    # -- live state -----------------------------------------------------------------------

    def call_ladder(self, body: dict[str, Any]) -> Any:
        call_id = fields.call_id(body)
        ladders = self._part("ladders", "SIP ladders", "the ladder")
        return list(ladders.entries(None, call_id))

    def session_find_all(self, body: dict[str, Any]) -> Any:
        for field in body:
            raise fields.bad(str(field)[:64], "is not a field of session/find_all (send {})")
        return describe_sessions(self.gateway)
