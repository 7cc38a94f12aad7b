"""The REST hooks in the OpenAPI document: its ``webhooks`` (OpenAPI 3.1), one JSON Schema per
event (docs/hooks.md).

Why in the REST document: a backend developer generates or checks their hook handler from the
same document as their REST client.  The reply schemas publish the keys
:mod:`wcsgw.calls.hooks.replies` takes (its ``CHANGES`` table); their meaning — a callee the
policy must allow, an account that must exist — is checked by the gateway, as for REST fields.
Its own module for the size of :mod:`wcsgw.api.openapi`.  Pure data.
"""

from __future__ import annotations

from typing import Any

from wcsgw.calls.hooks.replies import CHANGES
from wcsgw.calls.hooks.signing import HEADER

__all__ = ["WEBHOOKS"]

_STR = {"type": "string"}
_NULLABLE_STR = {"type": ["string", "null"]}
_TIME = {"type": "string", "format": "date-time"}
_NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}
_HEADERS = {"type": "object", "additionalProperties": {"type": "string", "maxLength": 1024}}


def _body(event: str, required: list[str], **fields: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["event", "appKey", "sessionId", *required],
        "additionalProperties": True,
        "properties": {"event": {"const": event}, "appKey": _STR, "sessionId": _NULLABLE_STR,
                       **fields},
    }


#: event -> (summary, request body schema)
_EVENTS: dict[str, tuple[str, dict[str, Any]]] = {
    "connect": ("A session connects: allow, change its sip* params, or bind it to a "
                "server-held account. The params as sent, without sipPassword.",
                _body("connect", [], sipLogin=_STR, sipDomain=_STR, custom={"type": "object"})),
    "call": ("A session places a call: allow, or change callee, visibleName, sipHeaders, "
             "account.",
             _body("call", ["callId", "callee"], callId=_STR, callee=_STR,
                   visibleName=_NULLABLE_STR, sipHeaders=_HEADERS, caller=_STR,
                   hasVideo={"type": "boolean"})),
    "incomingCall": ("An INVITE for a session or a server-held account: ring the session "
                     "named, or reject with a SIP status.",
                     _body("incomingCall", ["caller", "callee"], caller=_STR, callee=_STR,
                           visibleName=_NULLABLE_STR, account=_NULLABLE_STR,
                           sipHeaders=_HEADERS)),
    "transferRequest": ("The far end of a call asks (REFER) to transfer it: allow or refuse.",
                        _body("transferRequest", ["callId", "target"], callId=_STR,
                              target=_STR)),
    "sessionStatus": ("Notice: a session's status, as the browser's notification.",
                      _body("sessionStatus", ["status"], status=_STR,
                            sipStatus={"type": ["integer", "null"]}, info=_STR)),
    "callStatus": ("Notice: a call's status, as the browser's notification (without sdp).",
                   _body("callStatus", ["callId", "status"], callId=_STR, status=_STR)),
    "transferStatus": ("Notice: a transfer's progress.",
                       _body("transferStatus", ["callId", "status"], callId=_STR,
                             status=_STR)),
    "dtmf": ("Notice: digits from the SIP side.",
             _body("dtmf", ["callId", "dtmf"], callId=_STR, dtmf=_STR, type=_STR)),
    "cdr": ("Notice: a call's record as it ended (docs/operations.md, Call records), after "
            "its last callStatus.",
            _body("cdr", ["callId", "direction", "startTime", "endTime", "duration", "status",
                          "endedBy"],
                  callId=_STR, direction={"enum": ["outgoing", "incoming"]}, caller=_STR,
                  callee=_STR, account=_STR, startTime=_TIME, ringTime=_NULLABLE_TIME,
                  answerTime=_NULLABLE_TIME, endTime=_TIME,
                  duration={"type": "number", "minimum": 0}, endReason=_STR,
                  endedBy={"enum": ["browser", "sip", "gateway"]},
                  sipStatus={"type": ["integer", "null"]},
                  status={"enum": ["BUSY", "FINISH", "FAILED"]}, media={"type": "object"},
                  stats={"type": "object"}, transferredTo=_NULLABLE_STR,
                  replaces=_NULLABLE_STR, recording=_NULLABLE_STR)),
}

#: the shape of each key a decision reply may change (the gateway checks the meaning)
_REPLY_KEYS: dict[str, dict[str, Any]] = {
    "sipLogin": _STR, "sipAuthenticationName": _STR, "sipPassword": _STR, "sipDomain": _STR,
    "sipOutboundProxy": _STR, "sipPort": {"type": ["integer", "string"]},
    "sipTransport": _STR, "sipRegisterRequired": {"type": "boolean"}, "account": _STR,
    "callee": _STR, "visibleName": _STR,
    "sipHeaders": {"oneOf": [_HEADERS, {"type": "array", "items": _STR}]}, "record": {"type": "boolean"},
    "sessionId": _STR, "reject": {"type": "integer", "minimum": 400, "maximum": 699},
}


def _reply(event: str) -> dict[str, Any]:
    keys = {key: _REPLY_KEYS[key] for key in CHANGES[event]}
    return {"type": "object", "additionalProperties": True,
            "properties": {"allow": {"type": "boolean", "description": "false refuses"},
                           "error": {"type": "string", "description": "shown to the browser "
                                     "when refusing (non-2xx or allow false)"}, **keys}}


def _webhook(event: str, summary: str, body: dict[str, Any]) -> dict[str, Any]:
    decision = event in CHANGES
    reply = ({"description": "2xx allows with these changes; any other status, no reply "
                             "within the app's timeout or a bad reply refuses (fail closed).",
              "content": {"application/json": {"schema": _reply(event)}}} if decision else
             {"description": "Delivered (any 2xx); otherwise retried with backoff."})
    return {"post": {
        "operationId": f"hook_{event}",
        "summary": summary,
        "parameters": [{"name": HEADER, "in": "header", "required": True,
                        "description": 't=<unix seconds>,v1=<hex HMAC-SHA256(secret, '
                                       '"<t>.<raw body>")>',
                        "schema": {"type": "string", "pattern": "^t=[0-9]+,v1=[0-9a-f]{64}$"}}],
        "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
        "responses": {"200": reply},
    }}


#: the OpenAPI 3.1 ``webhooks`` object
WEBHOOKS: dict[str, Any] = {event: _webhook(event, summary, body)
                            for event, (summary, body) in _EVENTS.items()}
