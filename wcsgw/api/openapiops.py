"""The operations' part of the OpenAPI document (:mod:`wcsgw.api.openapi` merges it): call
records, recordings, a call's SIP ladder, the live sessions.

Why apart: they are :mod:`wcsgw.api.restops`' routes, not WCS's call control, and two of them
answer something other than JSON (``/cdr/export`` CSV, ``GET /recording/{name}`` audio), which
the document must describe so that clients — and schemathesis — accept those replies.  The
field rules are :mod:`wcsgw.api.restrules`', as everywhere in the document.  Pure data.
"""

from __future__ import annotations

from typing import Any

from wcsgw.api.openapibase import flag, json_content, operation, text
from wcsgw.api.restrules import CALL_ID, CDR_LIMIT, MAX_CALL_ID, MAX_EPOCH_MS, RECORDING_NAME

__all__ = ["OPS_PATHS", "OPS_SCHEMAS"]

_SERVER_CHECKED = "x-wcsgw-checked-by-server"
_NULLABLE_STR = {"type": ["string", "null"]}
_NULLABLE_INT = {"type": ["integer", "null"]}
_TIME = {"type": ["string", "null"],
         "description": "ISO 8601 UTC with milliseconds (2026-12-07T17:30:12.345Z); null when "
                        "the call did not get there."}
_EXAMPLE_RECORDING = "20261207T171500Z-5f0c2a9e41b7d3c8.wav"


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _ms(description: str) -> dict[str, Any]:
    return {"type": "integer", "minimum": 0, "maximum": MAX_EPOCH_MS, "description": description}


_CDR_QUERY: dict[str, Any] = {
    "type": "object",
    "description": "Which records: every given field narrows the search; {} is the newest "
                   "records. Other fields are refused (400), so a typo never widens it.",
    "additionalProperties": False,
    "properties": {
        "callId": text("Only this call's record.", CALL_ID, MAX_CALL_ID, minLength=1),
        "since": _ms("Calls that started at or after this Unix time, in milliseconds."),
        "until": _ms("Calls that started at or before this Unix time, in milliseconds."),
        "limit": {"type": "integer", "minimum": CDR_LIMIT[0], "maximum": CDR_LIMIT[1],
                  "default": CDR_LIMIT[2], "description": "At most this many records."},
    },
}

_CDR: dict[str, Any] = {
    "type": "object",
    "description": "One call detail record, written when the call ended (docs/contract.md, "
                   "Records). More fields may be added.",
    "required": ["callId"],
    "additionalProperties": True,
    "properties": {
        "callId": {"type": "string"},
        "sessionId": _NULLABLE_STR,
        "appKey": _NULLABLE_STR,
        "direction": _NULLABLE_STR,
        "caller": _NULLABLE_STR,
        "callee": _NULLABLE_STR,
        "account": _NULLABLE_STR,
        "startTime": _TIME,
        "ringTime": _TIME,
        "answerTime": _TIME,
        "endTime": _TIME,
        "duration": {"type": "number", "minimum": 0,
                     "description": "Answered seconds (0 if never answered)."},
        "endReason": _NULLABLE_STR,
        "endedBy": {"type": ["string", "null"], "enum": ["browser", "sip", "gateway", None]},
        "sipStatus": _NULLABLE_INT,
        "status": _NULLABLE_STR,
        "media": {"type": ["object", "null"]},
        "stats": {"type": ["object", "null"]},
        "recording": _NULLABLE_STR,
    },
}

_RECORD_BODY: dict[str, Any] = {
    "type": "object",
    "required": ["callId", "enable"],
    "additionalProperties": True,
    "properties": {
        "callId": text("The live call to record (any session's).", CALL_ID, MAX_CALL_ID,
                       minLength=1, **{_SERVER_CHECKED: "must name a live call (else 404)"}),
        "enable": {**flag("true starts recording both sides into one file; false stops it.",
                          True),
                   _SERVER_CHECKED: "the call must be one that can be recorded (else 400, "
                                    "field enable)"},
    },
}

_NOTHING: dict[str, Any] = {"type": "object", "maxProperties": 0,
                            "additionalProperties": False, "description": "Empty: {}."}

_RECORDING: dict[str, Any] = {
    "type": "object",
    "required": ["name", "size", "modified"],
    "additionalProperties": True,
    "properties": {
        "name": {"type": "string", "description": "The file name the gateway chose; "
                                                  "download it at GET /recording/{name}."},
        "size": {"type": "integer", "minimum": 0, "description": "Bytes."},
        "modified": {"type": "number", "description": "Last written, Unix time in seconds."},
    },
}

_SESSION: dict[str, Any] = {
    "type": "object",
    "required": ["sessionId", "state", "peer", "account", "accountName", "appKey",
                 "registration", "calls"],
    "additionalProperties": True,
    "properties": {
        "sessionId": {"type": "string"},
        "state": {"type": "string", "enum": ["open", "connected", "detached"],
                  "description": "open: not connected (yet, or any more); detached: its "
                                 "WebSocket is gone and it waits for a resume."},
        "peer": {**_NULLABLE_STR, "description": "The browser's address as [limits] count "
                                                 "it (IPv4, or the IPv6 /64)."},
        "account": {**_NULLABLE_STR, "description": "The SIP address of record; never a "
                                                    "password."},
        "accountName": {**_NULLABLE_STR, "description": "The [[accounts]] name, for a "
                                                        "server-held account."},
        "appKey": _NULLABLE_STR,
        "registration": {"type": ["string", "null"],
                         "enum": ["idle", "registering", "registered", "unregistering",
                                  "backoff", "failed", None],
                         "description": "The REGISTER client's state; null: not registering."},
        "calls": {"type": "array", "items": {"type": "string"}, "description": "Live callIds."},
    },
}

_LADDER_ENTRY: dict[str, Any] = {
    "type": "object",
    "description": "One SIP or signalling message of the call, credentials and keys "
                   "redacted (docs/contract.md). More fields may be added.",
    "additionalProperties": True,
}

_OFF = "The feature is off on this gateway (the error names its config)."
_ALL = ("400", "401", "413", "415", "500")

OPS_PATHS: dict[str, Any] = {
    "/call/record": operation(
        "/call/record", "Start or stop recording a live call (both sides, one file)",
        _RECORD_BODY, "The recording's file name (null once stopped).",
        json_content({"type": "object", "required": ["recording"], "additionalProperties": False,
                      "properties": {"recording": _NULLABLE_STR}}),
        (*_ALL, "404", "409", "410", "502", "503"), {"404": "No such call.", "503": _OFF}),
    "/call/ladder": operation(
        "/call/ladder", "A call's SIP ladder: its messages in order",
        {"type": "object", "required": ["callId"], "additionalProperties": True,
         "properties": {"callId": text("A live or recently ended call.", CALL_ID, MAX_CALL_ID,
                                       minLength=1)}},
        "The entries, oldest first.",
        json_content({"type": "array", "items": _ref("LadderEntry")}),
        (*_ALL, "404", "410", "502", "503"),
        {"404": "No such call (live or recently ended).", "503": _OFF}),
    "/cdr/find": operation(
        "/cdr/find", "Call detail records, newest first", _CDR_QUERY,
        "The matching records (maybe none).",
        json_content({"type": "array", "items": _ref("Cdr")}), (*_ALL, "503"), {"503": _OFF}),
    "/cdr/export": operation(
        "/cdr/export", "The same records as CSV (a download)", _CDR_QUERY,
        "CSV: a header row, then one row per record; nested fields flattened with dots "
        "(stats.sip.mos). Content-Disposition: attachment.",
        {"text/csv": {"schema": {"type": "string"}}}, (*_ALL, "503"), {"503": _OFF}),
    "/recording/find_all": operation(
        "/recording/find_all", "Every recording in the recordings folder", _NOTHING,
        "The recordings (maybe none).",
        json_content({"type": "array", "items": _ref("Recording")}), (*_ALL, "503"),
        {"503": _OFF}),
    "/session/find_all": operation(
        "/session/find_all", "Every browser session, its account and registration",
        _NOTHING, "The sessions (maybe none).",
        json_content({"type": "array", "items": _ref("Session")}), _ALL),
    "/recording/{name}": operation(
        "/recording/{name}", "Download a recording", None,
        "The file (WAV, or Opus in Ogg), streamed; Content-Disposition: attachment.",
        {"audio/wav": {"schema": {"type": "string", "format": "binary"}},
         "audio/ogg": {"schema": {"type": "string", "format": "binary"}}},
        ("400", "401", "404", "500", "503"),
        {"400": "The name is not a recording's file name (a path, \"..\", ...).",
         "404": "No such recording.", "503": _OFF},
        method="get",
        parameters=[{"name": "name", "in": "path", "required": True,
                     "example": _EXAMPLE_RECORDING,
                     "schema": {"type": "string", "pattern": RECORDING_NAME, "maxLength": 200,
                                "examples": [_EXAMPLE_RECORDING]},
                     "description": "A name from recording/find_all."}]),
}

OPS_SCHEMAS: dict[str, Any] = {
    "Cdr": _CDR,
    "Recording": _RECORDING,
    "Session": _SESSION,
    "LadderEntry": _LADDER_ENTRY,
}
