"""The OpenAPI 3.1 document of the REST API (``GET /rest-api/openapi.json``).

Why a document at all: clients (and schemathesis in ``tests/test_api_rest_schema.py``) learn
every route, field and status from it instead of from prose.  The field syntax it publishes is
:mod:`wcsgw.api.restrules`', the very patterns the server checks with, so the two cannot
disagree.

What the document cannot say (a file exists, a session is connected, the policy allows a
domain) is checked by the server and named in each field's ``x-wcsgw-checked-by-server``: a 400
for a body that matches the schema may only come from such a field, and the schema test enforces
exactly that.

Pure data, no Twisted: :func:`openapi_document` returns a dict; the resource serialises it.
"""

from __future__ import annotations

import copy
from typing import Any

from wcsgw.api.hookschema import WEBHOOKS
from wcsgw.api.openapibase import (
    EMPTY as _EMPTY,
    ERROR as _ERROR,
    flag as _flag,
    json_content as _json,
    operation as build_operation,
    text as _text,
)
from wcsgw.api.openapiops import OPS_PATHS, OPS_SCHEMAS
from wcsgw.api.restrules import (
    ACCOUNT_NAME,
    CALL_ID,
    DTMF,
    DTMF_TYPES,
    HOST,
    HOST_OR_EMPTY,
    MAX_BODY,
    MAX_CALL_ID,
    MAX_PATH,
    NONBLANK,
    PLAY_FILE,
    PLAY_FILE_FORBIDDEN,
    PORT_TEXT,
    SRTP_POLICIES,
    STATUSES,
    TOKEN,
    TRANSPORTS,
)

__all__ = ["openapi_document"]


# -- schema building blocks ----------------------------------------------------------------------

_CALL_ID = _text("The call's id.", CALL_ID, MAX_CALL_ID, minLength=1)

_SERVER_CHECKED = "x-wcsgw-checked-by-server"

_STARTUP_PROPERTIES: dict[str, Any] = {
    "callId": _text("Optional, client-chosen, unique among live calls (else 409). The gateway "
                    "picks one when absent. Never used in a file name.", CALL_ID, MAX_CALL_ID,
                    minLength=1),
    # arg-type: mypy takes the ** dict below for a possible max_length (an int)
    "callee": _text("Who to call: a user part (dialled at sipDomain) or a sip:/sips:/tel: URI.",
                    TOKEN, minLength=1,
                    **{_SERVER_CHECKED: "the policy (policy.allowed_domains) may refuse it: 400/403"}),  # type: ignore[arg-type]
    "sipLogin": _text("SIP user (From, To of REGISTER). Required with sipDomain.", NONBLANK,
                      minLength=1),
    "sipAuthenticationName": _text("Digest user name; defaults to sipLogin."),
    "sipPassword": _text("Digest password. Never logged or echoed.", format="password"),
    "sipDomain": _text("SIP domain of the account. Absent: no account (the gateway's test lines "
                       "only).", HOST, 253, minLength=1,
                       **{_SERVER_CHECKED: "the policy must allow the domain (else 403)"}),
    "sipOutboundProxy": _text("Host to send requests to (default: the domain); \"\" = unset.",
                              HOST_OR_EMPTY, 253,
                              **{_SERVER_CHECKED: "the policy must allow the proxy (else 403)"}),
    "sipPort": {
        "description": "Port of the proxy or domain (default 5060, 5061 with tls): a number, or decimal text "
                       "as WCS sends it; \"\" = default.",
        "default": 5060,
        "anyOf": [{"type": "integer", "minimum": 1, "maximum": 65535},
                  {"type": "string", "pattern": PORT_TEXT}],
    },
    "sipTransport": {"type": "string", "enum": list(TRANSPORTS), "default": "udp",
                     "description": "udp, tcp or tls (either case); \"\" = udp."},
    "sipRegisterRequired": _flag("REGISTER the account before calling.", False),
    "sipSrtp": {"type": "string", "enum": list(SRTP_POLICIES), "default": "off",
                "description": "SDES-SRTP toward the SIP side: off, optional or mandatory; "
                               "\"\" = off; not with account (it brings its own)."},
    "account": _text("A server-held account ([[accounts]] name) to call on, instead of the "
                     "sip* account fields; its password stays on the server.", ACCOUNT_NAME, 64,
                     minLength=1,
                     **{_SERVER_CHECKED: "must name a configured account (else 400, field "
                        "account); not with sipLogin or sipDomain"}),
    "visibleName": _text("Display name in From."),
    "hasAudio": _flag("Offer audio.", True),
    "hasVideo": _flag("Offer video (only with sessionId: server-side media is audio only).", False),
    "sessionId": _text("Hand the call to this connected WebSocket session: the browser gets an "
                       "incomingCall-style offer and the call's statuses, and carries the media. "
                       "Cannot be combined with playFile or record.", CALL_ID, MAX_CALL_ID,
                       minLength=1,
                       **{_SERVER_CHECKED: "must name a connected session (else 404)"}),
    "playFile": {
        "type": "string", "minLength": 1, "maxLength": MAX_PATH, "pattern": PLAY_FILE,
        "not": {"pattern": PLAY_FILE_FORBIDDEN},
        "description": "Server-side media: a WAV file (16-bit PCM, mono or stereo, any rate) "
                       "under the configured media folder, by name or relative path; played "
                       "into the call as G.711. No absolute paths, no \"..\".",
        _SERVER_CHECKED: "must exist inside the media folder after resolving symlinks and be a "
                         "supported WAV (else 400, field playFile)",
    },
    "record": {
        **_flag("Server-side media: record what the far end sends, as a mono WAV (at the "
                "codec's rate) in the recordings folder ([recording] folder), under a name the gateway chooses (the "
                "call object's recording).", False),
        _SERVER_CHECKED: "needs recording configured (else 400, field record)",
    },
}

_TRUE = {"anyOf": [{"const": True}, {"const": "true"}]}
_FALSE = {"anyOf": [{"const": False}, {"const": "false"}]}

_STARTUP_BODY: dict[str, Any] = {
    "type": "object",
    "description": "WCS's /call/startup fields; fields this gateway does not use (toStream, "
                   "rtmpUrl, appKey, ...) are accepted and ignored.",
    "required": ["callee"],
    "properties": _STARTUP_PROPERTIES,
    "dependentRequired": {"sipDomain": ["sipLogin"]},
    "allOf": [
        {"not": {"description": "a call needs media: hasAudio false needs hasVideo true",
                 "required": ["hasAudio"],
                 "properties": {"hasAudio": _FALSE, "hasVideo": _FALSE}}},
        {"not": {"description": "playFile is server-side media: not with sessionId",
                 "required": ["sessionId", "playFile"]}},
        {"not": {"description": "record is server-side media: not with sessionId",
                 "required": ["sessionId", "record"], "properties": {"record": _TRUE}}},
        {"not": {"description": "a server-held account brings its own srtp: no sipSrtp "
                                "(but \"\") with account",
                 "required": ["account", "sipSrtp"],
                 "properties": {"sipSrtp": {"enum": ["off", "optional", "mandatory"]}}}},
    ],
    "additionalProperties": True,
}


def _call_body(*, optional: tuple[str, ...] = (), **more: Any) -> dict[str, Any]:
    """A body naming one call (callId) and ``more`` fields, required unless ``optional``."""
    required = ["callId", *(name for name in more if name not in optional)]
    return {"type": "object", "required": required, "additionalProperties": True,
            "properties": {"callId": _CALL_ID, **more}}


_FIND_BODY: dict[str, Any] = {
    "type": "object",
    "description": "Filters; a call matches when every given field equals the call's. {} "
                   "matches every call. Other fields are refused (400), so a typo never widens "
                   "the result.",
    "additionalProperties": False,
    "properties": {
        "callId": _CALL_ID,
        "status": {"type": "string", "enum": list(STATUSES)},
        "caller": _text("Caller URI or user."),
        "callee": _text("Callee as given at call time."),
        "sessionId": _text("WebSocket session id.", max_length=MAX_CALL_ID),
    },
}

_CALL: dict[str, Any] = {
    "type": "object",
    "description": "A call (docs/contract.md). More fields may be added.",
    "required": ["callId", "sessionId", "status", "sipStatus", "info", "incoming", "caller",
                 "callee", "visibleName", "hasAudio", "hasVideo", "holdForTransfer",
                 "startTime", "answerTime", "media"],
    "additionalProperties": True,
    "properties": {
        "callId": {"type": "string"},
        "sessionId": {"type": ["string", "null"],
                      "description": "The WebSocket session that owns the call; null for "
                                     "server-side media."},
        "status": {"type": "string", "enum": list(STATUSES)},
        "sipStatus": {"type": ["integer", "null"], "description": "Last SIP status code."},
        "info": {"type": "string", "description": "Reason text (\"Normal call clearing\", ...)."},
        "incoming": {"type": "boolean"},
        "caller": {"type": ["string", "null"]},
        "callee": {"type": ["string", "null"]},
        "visibleName": {"type": ["string", "null"]},
        "hasAudio": {"type": "boolean"},
        "hasVideo": {"type": "boolean"},
        "holdForTransfer": {"type": "boolean"},
        "startTime": {"type": "integer", "description": "Unix time, milliseconds."},
        "answerTime": {"type": ["integer", "null"], "description": "Unix time, ms; null "
                                                                     "until answered."},
        "node": {"type": "string", "description": "In a cluster ([cluster] redis_url): the "
                 "node_id of the node holding the call; absent on a single gateway."},
        "recording": {"type": ["string", "null"],
                      "description": "Server-side media: the recording's file name within the "
                                     "recordings folder (UTC time + random hex, chosen by the "
                                     "gateway); null when the call is not recorded."},
        "stats": {"type": "object", "additionalProperties": True,
                  "description": "Per leg (browser, sip): packetsLost, fractionLost (0..1), "
                                 "fractionLostIn, fractionLostOut, jitterMs, rttMs, mos (E-model "
                                 "1.0-4.5), since the media started (docs/operations.md)."},
        "media": {
            "type": "object",
            "required": ["webrtcCodec", "sipCodec", "mode"],
            "additionalProperties": True,
            "properties": {
                "webrtcCodec": {"type": ["string", "null"], "description": "rtpmap, e.g. opus/48000/2"},
                "sipCodec": {"type": ["string", "null"], "description": "rtpmap, e.g. PCMU/8000"},
                "mode": {"type": ["string", "null"], "enum": ["relay", "transcode", None]},
                "video": {
                    "type": ["object", "null"],
                    "description": "The relayed video stream once both sides agreed; null for "
                                   "an audio call.",
                    "required": ["webrtcCodec", "sipCodec", "webrtcPayloadType",
                                 "sipPayloadType", "kbps"],
                    "properties": {
                        "webrtcCodec": {"type": "string", "description": "rtpmap, e.g. VP8/90000"},
                        "sipCodec": {"type": "string"},
                        "webrtcPayloadType": {"type": "integer"},
                        "sipPayloadType": {"type": "integer"},
                        "kbps": {"type": ["integer", "null"],
                                 "description": "bandwidth agreed with the SIP side (b=AS)"},
                    },
                },
            },
        },
    },
}

_DRAIN_BODY: dict[str, Any] = {
    "type": "object", "maxProperties": 0, "additionalProperties": False,
    "description": "Empty: {}.",
}

_DRAIN_STATE: dict[str, Any] = {
    "type": "object",
    "required": ["status", "calls"],
    "additionalProperties": True,
    "properties": {
        "status": {"type": "string", "enum": ["draining", "ending", "done"],
                   "description": "draining: live calls go on; ending: the drain time is "
                                  "over and the rest are being hung up; done: stopping."},
        "calls": {"type": "integer", "minimum": 0, "description": "Live calls now."},
        "secondsLeft": {"type": "integer", "minimum": 0,
                        "description": "Until the calls still live are hung up "
                                       "(limits.drain_seconds after the drain began)."},
    },
}

#: Which error statuses each operation can answer.
_OPERATION_ERRORS: dict[str, tuple[str, ...]] = {
    "/call/startup": ("400", "401", "403", "404", "409", "413", "415", "429", "500", "501",
                      "503"),
    "/call/terminate": ("400", "401", "404", "409", "410", "413", "415", "500", "502"),
    "/call/find": ("400", "401", "404", "413", "415", "500", "502"),
    "/call/find_all": ("400", "401", "413", "415", "500"),
    "/call/send_dtmf": ("400", "401", "403", "404", "409", "410", "413", "415", "500", "501",
                       "502"),
    "/call/hold": ("400", "401", "404", "409", "410", "413", "415", "500", "501", "502"),
    "/call/unhold": ("400", "401", "404", "409", "410", "413", "415", "500", "501", "502"),
    "/call/transfer": ("400", "401", "403", "404", "409", "410", "413", "415", "500", "501",
                       "502"),
    "/gateway/drain": ("400", "401", "413", "415", "500", "501"),
}


def _operation(path: str, summary: str, body: dict[str, Any], ok: str,
               ok_schema: dict[str, Any]) -> dict[str, Any]:
    return build_operation(path, summary, body, ok, _json(ok_schema), _OPERATION_ERRORS[path])


_DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "wcsgw REST API",
        "version": "1",
        "description": "Operator control of SIP calls, Flashphoner WCS style: POST with a JSON "
                       "body to /rest-api/call/..., JSON replies. See docs/rest-api.md.",
    },
    "servers": [{"url": "/rest-api"}],
    "paths": {
        "/call/startup": _operation(
            "/call/startup", "Place a SIP call (media: a WebSocket session, or a WAV file and "
            "recording on the server)", _STARTUP_BODY, "Accepted; follow the call with find.",
            {"type": "object", "required": ["callId"], "additionalProperties": False,
             "properties": {"callId": {"type": "string"}}}),
        "/call/terminate": _operation("/call/terminate", "Hang up a call", _call_body(),
                                      "Hangup started.", _EMPTY),
        "/call/find": _operation("/call/find", "Calls matching filters", _FIND_BODY,
                                 "The matching calls (at least one).",
                                 {"type": "array", "minItems": 1,
                                  "items": {"$ref": "#/components/schemas/Call"}}),
        "/call/find_all": _operation("/call/find_all", "Every live call",
                                     {"type": "object", "additionalProperties": True},
                                     "All live calls (maybe none).",
                                     {"type": "array", "items": {"$ref": "#/components/schemas/Call"}}),
        "/call/send_dtmf": _operation(
            "/call/send_dtmf", "Send DTMF digits to the SIP side",
            _call_body(
                optional=("type",),
                dtmf={"type": "string", "pattern": DTMF, "description": "Digits 0-9 * # A-D."},
                type={"type": "string", "enum": list(DTMF_TYPES), "default": "RFC2833",
                      "description": "RFC2833 (RFC 4733 telephone-event) or INFO "
                                     "(application/dtmf-relay)."},
            ),
            "Digits queued.", _EMPTY),
        "/call/hold": _operation("/call/hold", "Put a call on hold (re-INVITE a=sendonly)",
                                 _call_body(), "Hold started (status HOLD follows).", _EMPTY),
        "/call/unhold": _operation("/call/unhold", "Resume a held call (re-INVITE a=sendrecv)",
                                   _call_body(), "Resume started.", _EMPTY),
        "/call/transfer": _operation(
            "/call/transfer", "Transfer a call (REFER)",
            _call_body(target=_text("A number or sip:/sips:/tel: URI (blind), or the callId of "
                                    "another call of the same session (attended).", TOKEN,
                                    minLength=1)),
            "Transfer started (transferStatus notifications follow for sessions).", _EMPTY),
        "/gateway/drain": _operation(
            "/gateway/drain", "Drain this gateway: refuse new sessions and calls, let the live "
            "calls finish (at most limits.drain_seconds), then stop the process (as SIGTERM)",
            _DRAIN_BODY, "Draining (asking again changes nothing).", _DRAIN_STATE),
        # records, recordings, ladders, sessions: wcsgw.api.openapiops
        **OPS_PATHS,
        "/openapi.json": {"get": {
            "operationId": "openapi",
            "summary": "This document",
            "security": [],
            "responses": {"200": {"description": "OpenAPI 3.1 document",
                                  "content": _json({"type": "object"})}},
        }},
    },
    # What the gateway POSTs to an [[apps]] backend (docs/hooks.md), one schema per event.
    "webhooks": WEBHOOKS,
    "components": {
        "schemas": {"Call": _CALL, "Error": _ERROR, **OPS_SCHEMAS},
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                       "description": "One of [rest] tokens from the config."}},
    },
}


def openapi_document(auth: bool, max_body: int = MAX_BODY) -> dict[str, Any]:
    """The document; ``auth`` (tokens are configured) adds the global bearer requirement;
    ``max_body`` (``http.max_body``) is stated in every 413."""
    doc = copy.deepcopy(_DOCUMENT)
    text = (f"Body larger than {max_body} bytes (http.max_body), refused from its "
            "Content-Length before the body is read and before the token is checked.")
    for item in doc["paths"].values():
        for operation in item.values():
            if "413" in operation["responses"]:
                operation["responses"]["413"]["description"] = text
    if auth:
        doc["security"] = [{"bearer": []}]
    return doc
