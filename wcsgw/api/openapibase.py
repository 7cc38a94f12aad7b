"""The building blocks of the REST API's OpenAPI document: field schemas, the error body, what
each error status means, and one operation's entry.

Why a module of its own: the document is assembled from two parts — WCS's call control
(:mod:`wcsgw.api.openapi`) and the operations (:mod:`wcsgw.api.openapiops`) — which must
describe fields, errors and operations the same way.  Pure data, no Twisted.
"""

from __future__ import annotations

from typing import Any, Mapping

from wcsgw.api.restrules import BOOLEAN_TEXT, MAX_TEXT, TEXT

__all__ = ["EMPTY", "ERROR", "ERRORS", "flag", "json_content", "operation", "text"]


def text(description: str, pattern: str = TEXT, max_length: int = MAX_TEXT, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "pattern": pattern, "maxLength": max_length,
            "description": description, **extra}


def flag(description: str, default: bool) -> dict[str, Any]:
    return {
        "description": description + ' JSON true/false, or the strings "true"/"false" (WCS sends those).',
        "default": default,
        "anyOf": [{"type": "boolean"}, {"type": "string", "enum": list(BOOLEAN_TEXT)}],
    }


ERROR: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "additionalProperties": False,
    "properties": {
        "error": {"type": "string", "description": "What is wrong, naming the field."},
        "field": {"type": "string", "description": "The request field at fault, when one is."},
    },
}

EMPTY = {"type": "object", "maxProperties": 0}

#: What each error status means (an operation may say it more precisely).
ERRORS = {
    "400": "Bad body: not JSON, not an object, or a field is wrong (named in error/field).",
    "401": "Tokens are configured and the request has no valid Authorization: Bearer token.",
    "403": "The policy refuses the account or destination.",
    "404": "No such call (or session).",
    "405": "Wrong HTTP method (the Allow header says which).",
    "409": "Conflict: duplicate callId, or the call cannot do that in its state.",
    "413": "Body larger than http.max_body (default 65536 bytes), refused from its "
           "Content-Length before the body is read and before the token is checked.",
    "415": "Content-Type is not application/json.",
    "410": "In a cluster: the node that held the call is gone (docs/scaling.md).",
    "502": "In a cluster: the node holding the call did not answer in time (docs/scaling.md).",
    "500": "The gateway failed internally (logged; no details are sent).",
    "501": "The gateway does not support this yet.",
    "429": "A [limits] cap: the client address's call rate, or the session's call cap.",
    "503": "No media ports free (or only the reserve kept for sessions' first calls), or the "
           "gateway takes no new calls for now: \"Gateway draining\" or \"Gateway "
           "overloaded\" (ask another gateway).",
}


def json_content(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def operation(path: str, summary: str, body: dict[str, Any] | None, ok: str,
              ok_content: dict[str, Any], errors: tuple[str, ...],
              meaning: Mapping[str, str] | None = None, method: str = "post",
              **extra: Any) -> dict[str, Any]:
    """One path's item: ``ok_content`` is the 200 reply's content (by media type),
    ``errors`` the error statuses it can answer (an Error body each), described by
    ``meaning`` where it says more than :data:`ERRORS`."""
    responses: dict[str, Any] = {"200": {"description": ok, "content": ok_content}}
    for status in errors:
        responses[status] = {"description": (meaning or {}).get(status, ERRORS[status]),
                             "content": json_content({"$ref": "#/components/schemas/Error"})}
    if "401" in responses:
        responses["401"]["headers"] = {
            "WWW-Authenticate": {"description": "Bearer (RFC 6750)", "schema": {"type": "string"}}}
    item: dict[str, Any] = {
        "operationId": path.strip("/").replace("/", "_").replace("{", "").replace("}", ""),
        "summary": summary,
        **extra,
    }
    if body is not None:
        item["requestBody"] = {"required": True, "content": json_content(body)}
    item["responses"] = responses
    return {method: item}
