"""JSON-RPC 2.0 framing for the browser WebSocket, sans-IO: text in, text out.

Why a module of its own: the WebSocket adapter (:mod:`wcsgw.api.ws`) must stay thin, and the
rules of JSON-RPC 2.0 (https://www.jsonrpc.org/specification) are exactly the kind of thing
that wants fast, exhaustive unit tests without a socket.  docs/contract.md says a bad frame never
closes the socket or disturbs other calls, so :func:`parse_frame` *never raises*: whatever the
browser sends, it returns either a :class:`Request` to dispatch or a :class:`BadFrame` whose
:meth:`BadFrame.response` is the error to send back.

Decisions (documented in docs/websocket-api.md):

* **No batches.**  A JSON array is answered with one -32600 error (``id: null``).  The gateway's
  methods are few and each changes call state; one request per frame keeps the ordering of a
  response and the notifications it causes obvious.  An empty array is -32600 as the spec says.
* **Params must be an object** (or absent, meaning ``{}``).  By-position arrays and scalars are
  -32602 *invalid params*.  This is checked after the request is otherwise valid, so the error
  echoes the request's ``id``.
* **The id** must be a string, a number or null; a boolean/object/array id is -32600.  When
  the id of an invalid request is readable it is echoed (more useful to a client than the
  spec's minimal ``null``); when it is not, the error has ``id: null``.
* **Notifications** (no ``id`` member) from the client are dispatched but never answered, not
  even with an error: that is what the spec says, and the browser SDK never sends them.
* Unknown top-level members are ignored (liberal in what we accept from SDKs that add fields).
* ``NaN``/``Infinity`` (which Python's json would accept) and frames that are not UTF-8 are
  -32700 parse errors; so is JSON nested deeper than the parser can take.
"""

from __future__ import annotations

import json
import math
from typing import Any, Mapping, Union

import attrs

__all__ = [
    "PARSE_ERROR",
    "INVALID_REQUEST",
    "METHOD_NOT_FOUND",
    "INVALID_PARAMS",
    "INTERNAL_ERROR",
    "RequestId",
    "Request",
    "BadFrame",
    "parse_frame",
    "result",
    "error",
    "notification",
]

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603

#: What a request id may be: a string, a number, or null (JSON-RPC 2.0 §4).
RequestId = Union[str, int, float, None]


def _dumps(message: Mapping[str, Any]) -> str:
    # Compact, real UTF-8 (no \\u escapes for non-ASCII names), and never NaN: a browser's
    # JSON.parse rejects it, which would turn our bug into a broken session.
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def result(request_id: RequestId, value: Any) -> str:
    """A success response frame."""
    return _dumps({"jsonrpc": "2.0", "id": request_id, "result": value})


def error(request_id: RequestId, code: int, message: str, data: Any = None) -> str:
    """An error response frame; ``data`` is left out when None (the spec makes it optional)."""
    err: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        err["data"] = data
    return _dumps({"jsonrpc": "2.0", "id": request_id, "error": err})


def notification(method: str, params: Mapping[str, Any]) -> str:
    """A server -> client notification frame (a request without ``id``)."""
    return _dumps({"jsonrpc": "2.0", "method": method, "params": dict(params)})


@attrs.frozen
class Request:
    """A valid request (``notification`` False) or client notification (True, no reply)."""

    method: str
    params: dict[str, Any]
    id: RequestId = None
    notification: bool = False

    def result(self, value: Any) -> str | None:
        """The success frame for this request, or None for a notification."""
        return None if self.notification else result(self.id, value)

    def error(self, code: int, message: str, data: Any = None) -> str | None:
        """The error frame for this request, or None for a notification."""
        return None if self.notification else error(self.id, code, message, data)


@attrs.frozen
class BadFrame:
    """A frame that is not a dispatchable request; :meth:`response` is the answer to send
    (None only for a client notification with bad params, which the spec says to not answer)."""

    code: int
    message: str
    id: RequestId = None
    notification: bool = False

    def response(self) -> str | None:
        return None if self.notification else error(self.id, self.code, self.message)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _valid_id(value: Any) -> bool:
    if isinstance(value, bool):  # bool is an int in Python, not a number in JSON
        return False
    if isinstance(value, float):
        return math.isfinite(value)
    return value is None or isinstance(value, (str, int))


def parse_frame(frame: str | bytes) -> Request | BadFrame:
    """One WebSocket text frame -> a :class:`Request` or a :class:`BadFrame`.  Never raises."""
    try:
        text = frame.decode("utf-8") if isinstance(frame, (bytes, bytearray)) else frame
        message = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError, TypeError):
        # ValueError covers JSONDecodeError, UnicodeDecodeError and our NaN rejection.
        return BadFrame(PARSE_ERROR, "Parse error: the frame is not valid JSON")
    if isinstance(message, list):
        if not message:
            return BadFrame(INVALID_REQUEST, "Invalid request: empty batch")
        return BadFrame(
            INVALID_REQUEST, "Invalid request: batch requests are not supported; send one request per frame"
        )
    if not isinstance(message, dict):
        return BadFrame(INVALID_REQUEST, "Invalid request: a request must be a JSON object")

    has_id = "id" in message
    request_id = message.get("id")
    if not _valid_id(request_id):
        return BadFrame(INVALID_REQUEST, "Invalid request: id must be a string, a number or null")
    if message.get("jsonrpc") != "2.0":
        return BadFrame(INVALID_REQUEST, 'Invalid request: "jsonrpc" must be "2.0"', request_id)
    method = message.get("method")
    if not isinstance(method, str) or not method:
        if "result" in message or "error" in message:
            why = "Invalid request: the server sends no requests, so it takes no responses"
        else:
            why = 'Invalid request: "method" must be a non-empty string'
        return BadFrame(INVALID_REQUEST, why, request_id)
    params = message.get("params", {})
    if not isinstance(params, dict):
        return BadFrame(
            INVALID_PARAMS, "Invalid params: params must be an object", request_id, not has_id
        )
    return Request(method, params, request_id, not has_id)
