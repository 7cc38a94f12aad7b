"""The operator's REST API at ``/rest-api/``: Flashphoner WCS's ``/call/*`` methods.

Every method is ``POST`` with a JSON object body and answers JSON (docs/contract.md, REST).  The
order of checks is fixed and documented (docs/rest-api.md) because each one answers a different
status — after the site's front door (:mod:`wcsgw.api.front`: Host 421, Content-Length over
``http.max_body`` 413 before the body is read, slow clients 408): unknown path 404,
missing/wrong bearer token 401, wrong method 405, body larger than ``http.max_body`` 413,
Content-Type not JSON 415, body not a JSON object 400, a field wrong 400 naming it, then the
call layer (404 unknown call, 409 duplicate callId or bad state, 403 policy).

Why the field checks are hand-written and not a JSON-Schema validator run at request time:
the messages name the field in words an operator reads ("sipPort must be a port number from 1
to 65535"), and the gateway has no runtime dependency on a validator.  The patterns are the
ones :mod:`wcsgw.api.openapi` publishes, so the document and the server agree by construction,
and ``tests/test_api_rest_schema.py`` checks it with schemathesis.

The call layer is :class:`~wcsgw.calls.gateway.CallGateway`, used with ``session_id=None``
(the operator may act on any call).  Replies may come back synchronously or as a Deferred;
either way nothing the gateway raises reaches the client as a traceback: a
:class:`~wcsgw.calls.errors.CallError` is mapped to a status, anything else is logged and
answered 500 ``{"error": "internal error"}``.

Secrets: ``sipPassword`` is never logged or echoed; tokens are compared in constant time
(SHA-256 of both sides with :func:`hmac.compare_digest`, so neither content nor length leaks).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Mapping, Sequence

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from wcsgw.api import openapi
from wcsgw.api.methods import describe_type
from wcsgw.calls import ids
from wcsgw.calls.errors import CallError, Codes
from wcsgw.media.wavfile import WavError, read_wav_format
from wcsgw.sip.account import SipAccount

__all__ = ["RestApi", "RestError", "RestReply", "RestResource", "build_rest_resource"]

log = Logger(namespace="wcsgw.rest")

_JSON = b"application/json"
_REALM = b'Bearer realm="wcsgw"'


class RestError(Exception):
    """An answer other than 200: HTTP status, message (naming the field), the field."""

    def __init__(self, status: int, message: str, field: str | None = None,
                 headers: Mapping[bytes, bytes] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.headers = dict(headers or {})


class RestReply:
    """What to send back: status, JSON-able body, extra headers."""

    __slots__ = ("status", "body", "headers")

    def __init__(self, status: int, body: Any, headers: Mapping[bytes, bytes] | None = None) -> None:
        self.status = status
        self.body = body
        self.headers = dict(headers or {})

    @classmethod
    def of_error(cls, error: RestError) -> "RestReply":
        body: dict[str, Any] = {"error": error.message}
        if error.field:
            body["field"] = error.field
        return cls(error.status, body, error.headers)


#: CallError code -> HTTP status.  NOT_CONNECTED is "sessionId names no connected session".
_STATUS_OF_CODE: dict[int, int] = {
    Codes.INVALID: 400,
    Codes.NOT_CONNECTED: 404,
    Codes.DUPLICATE_CALL: 409,
    Codes.UNKNOWN_CALL: 404,
    Codes.FORBIDDEN: 403,
    Codes.NO_CODECS: 400,
    Codes.BAD_STATE: 409,
    Codes.NOT_SUPPORTED: 501,
    # [limits]: the caller should slow down (429), or the gateway is full for now (503)
    Codes.TOO_MANY_CALLS: 429,
    Codes.TOO_MANY_SESSIONS: 429,
    Codes.CALL_RATE: 429,
    Codes.NO_PORTS: 503,
}


# -- field readers: typed value or RestError(400) naming the field ---------------------------------

_RE: dict[str, re.Pattern[str]] = {}


def _matches(pattern: str, value: str) -> bool:
    compiled = _RE.get(pattern)
    if compiled is None:
        compiled = _RE[pattern] = re.compile(pattern)
    return compiled.search(value) is not None


def _bad(field: str, problem: str) -> RestError:
    return RestError(400, f"{field} {problem}", field)




def _text(body: Mapping[str, Any], field: str, required: bool) -> str | None:
    """The field if it is a string, None when absent (400 when required or not a string)."""
    if field not in body:
        if required:
            raise _bad(field, "is required")
        return None
    value = body[field]
    if not isinstance(value, str):
        raise _bad(field, f"must be a string, got {describe_type(value)}")
    return value


def _string(body: Mapping[str, Any], field: str, pattern: str, problem: str, *,
            required: bool = False, max_length: int = openapi.MAX_TEXT,
            min_length: int = 0) -> str | None:
    """The field as a string, None when absent; ``problem`` says what the pattern demands."""
    value = _text(body, field, required)
    if value is None:
        return None
    if len(value) > max_length:
        raise _bad(field, f"is too long (at most {max_length} characters)")
    if len(value) < min_length:
        raise _bad(field, "must not be empty")
    if not _matches(pattern, value):
        raise _bad(field, problem)
    return value


def _flag(body: Mapping[str, Any], field: str, default: bool) -> bool:
    if field not in body:
        return default
    value = body[field]
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value in openapi.BOOLEAN_TEXT:
        return value == "true"
    raise _bad(field, f'must be true or false (or "true"/"false"), got {describe_type(value)}')


def _port(body: Mapping[str, Any], field: str, default: int) -> int:
    if field not in body:
        return default
    value = body[field]
    if isinstance(value, str) and _matches(openapi.PORT_TEXT, value):
        return int(value) if value else default
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # JSON Schema's "integer" includes 5060.0
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535:
        return value
    raise _bad(field, "must be a port number from 1 to 65535 (a number or decimal text)")


def _choice(body: Mapping[str, Any], field: str, choices: Sequence[str]) -> str | None:
    if field not in body:
        return None
    value = body[field]
    if not isinstance(value, str) or value not in choices:
        shown = ", ".join(repr(c) for c in choices)
        raise _bad(field, f"must be one of {shown}")
    return value


_TEXT_PROBLEM = "must be one line (no control characters)"
_NONBLANK_PROBLEM = "must be one line that is not blank"
_TOKEN_PROBLEM = "must be a number, user name or URI without spaces or control characters"
_HOST_PROBLEM = "must be a host name or IP address (the port goes in sipPort)"


def _id(body: Mapping[str, Any], field: str, required: bool = True) -> str | None:
    """An id (callId, sessionId) held to the one shape of :mod:`wcsgw.calls.ids`: it becomes
    a registry key, and no id may ever reach a file name or a log line unchecked."""
    value = _text(body, field, required)
    if value is None:
        return None
    problem = ids.id_problem(value)
    if problem is not None:
        raise _bad(field, problem)
    return value


def _call_id(body: Mapping[str, Any], required: bool = True) -> str | None:
    return _id(body, "callId", required)


# -- media paths --------------------------------------------------------------------------------


def resolve_play_file(folder: Path | None, name: str) -> Path:
    """The real path of ``name`` inside the media ``folder``, or RestError(400, playFile).

    Refused: absolute paths and ``..`` segments (also by the schema), and anything that resolves
    outside the folder through a symlink (the folder itself is resolved too, so a media folder
    that is itself a symlink works).  The file must be a WAV the player can read.  The lead
    opens the returned real path; nothing here holds it open.
    """
    if folder is None:
        raise _bad("playFile", "cannot be used: no media folder is configured")
    if name.startswith("/") or ".." in PurePosixPath(name).parts or "\x00" in name:
        raise _bad("playFile", "must be a file name or relative path under the media folder")
    try:
        root = folder.resolve(strict=True)
        real = (root / name).resolve(strict=True)
    except (OSError, RuntimeError):  # missing, or a symlink loop
        raise _bad("playFile", "names no file in the media folder") from None
    if not real.is_relative_to(root):
        raise _bad("playFile", "resolves outside the media folder")
    if not real.is_file():
        raise _bad("playFile", "is not a regular file")
    try:
        read_wav_format(real)
    except (WavError, OSError) as exc:
        raise _bad("playFile", f"is not a WAV file the gateway can play: {exc}") from None
    return real


# -- the API core: one request in, one reply out ----------------------------------------------------


class RestApi:
    """The REST methods over a gateway.  ``handle(path, body)`` returns a reply (maybe in a
    Deferred); authentication and HTTP framing are :class:`RestResource`'s."""

    def __init__(self, gateway: Any, *, media_folder: Path | None = None,
                 recordings_folder: Path | None = None) -> None:
        self.gateway = gateway
        self.media_folder = media_folder
        self.recordings_folder = recordings_folder
        self.methods: dict[str, Callable[[dict[str, Any]], Any]] = {
            "/call/startup": self.startup,
            "/call/terminate": self.terminate,
            "/call/find": self.find,
            "/call/find_all": self.find_all,
            "/call/send_dtmf": self.send_dtmf,
            "/call/hold": self.hold,
            "/call/unhold": self.unhold,
            "/call/transfer": self.transfer,
        }

    def handle(self, path: str, body: dict[str, Any], peer: str | None = None) -> defer.Deferred[RestReply]:
        """Run one method; the Deferred fires with a :class:`RestReply` (never errbacks).
        ``peer``: the client's TCP address; ``call/startup`` counts against
        ``limits.calls_per_minute_per_ip`` by it."""
        method = self.methods[path]
        extra = {"peer": peer} if method == self.startup else {}
        d = defer.maybeDeferred(method, body, **extra)
        d.addCallback(lambda value: RestReply(200, value))
        d.addErrback(self._failed, path)
        return d

    def _failed(self, failure: Failure, path: str) -> RestReply:
        exc = failure.value
        if isinstance(exc, RestError):
            return RestReply.of_error(exc)
        if isinstance(exc, CallError):
            status = _STATUS_OF_CODE.get(exc.code, 500)
            if status == 500:
                log.error("rest {path}: unexpected call-layer code {code}: {message}",
                          path=path, code=exc.code, message=exc.message)
                return RestReply(500, {"error": "internal error"})
            field = exc.field
            if field is None and exc.code == Codes.NOT_CONNECTED:
                field = "sessionId"
            message = exc.message
            if field and field not in message:
                message = f"{field}: {message}"
            log.info("rest {path} refused: {status} {message}", path=path, status=status,
                     message=message)
            return RestReply.of_error(RestError(status, message, field))
        # The body is deliberately not logged: it may hold sipPassword.
        log.failure("rest {path} failed inside the gateway", failure, path=path)
        return RestReply(500, {"error": "internal error"})

    # -- methods ------------------------------------------------------------------------------

    def startup(self, body: dict[str, Any], peer: str | None = None) -> Any:
        call_id = _call_id(body, required=False)
        callee = _string(body, "callee", openapi.TOKEN, _TOKEN_PROBLEM, required=True,
                         min_length=1)
        login = _string(body, "sipLogin", openapi.NONBLANK, _NONBLANK_PROBLEM, min_length=1)
        auth_name = _string(body, "sipAuthenticationName", openapi.TEXT, _TEXT_PROBLEM)
        password = _string(body, "sipPassword", openapi.TEXT, _TEXT_PROBLEM)
        domain = _string(body, "sipDomain", openapi.HOST, _HOST_PROBLEM, max_length=253,
                         min_length=1)
        proxy = _string(body, "sipOutboundProxy", openapi.HOST_OR_EMPTY, _HOST_PROBLEM,
                        max_length=253)
        port = _port(body, "sipPort", 5060)
        transport = (_choice(body, "sipTransport", openapi.TRANSPORTS) or "udp").lower()
        register = _flag(body, "sipRegisterRequired", False)
        visible_name = _string(body, "visibleName", openapi.TEXT, _TEXT_PROBLEM)
        has_audio = _flag(body, "hasAudio", True)
        has_video = _flag(body, "hasVideo", False)
        session_id = _id(body, "sessionId", required=False)
        play_name = _string(body, "playFile", openapi.PLAY_FILE,
                            "must be a file name or relative path under the media folder",
                            max_length=openapi.MAX_PATH, min_length=1)
        if play_name is not None and _matches(openapi.PLAY_FILE_FORBIDDEN, play_name):
            raise _bad("playFile", 'must not contain ".." segments')
        record = _flag(body, "record", False)
        if domain is not None and login is None:
            raise _bad("sipLogin", "is required with sipDomain")
        if not has_audio and not has_video:
            raise _bad("hasAudio", "must be true when hasVideo is false (a call needs media)")
        if session_id is not None and play_name is not None:
            raise _bad("playFile", "cannot be used with sessionId (the session carries the media)")
        if session_id is not None and record:
            raise _bad("record", "cannot be used with sessionId (the session carries the media)")
        play_file = None
        if play_name is not None:
            play_file = str(resolve_play_file(self.media_folder, play_name))
        if record and (self.recordings_folder is None or not self.recordings_folder.is_dir()):
            raise _bad("record", "cannot be used: no recordings folder is configured")

        account = None
        if domain is not None:
            assert login is not None
            try:
                account = SipAccount(
                    login=login.strip(), auth_name=(auth_name or "").strip() or None,
                    password=password or "", domain=domain.strip("[]"),
                    outbound_proxy=(proxy or "").strip("[]") or None, port=port,
                    transport=transport, register=register, display_name=visible_name or None,
                )
            except ValueError as exc:  # the schema's rules should make this unreachable
                raise _bad("sipDomain", f"does not make a SIP account: {exc}") from None
        log.info("rest startup: call {callee} as {aor} (session {session}, play {play}, "
                 "record {record})", callee=callee, aor=account.aor() if account else "test lines",
                 session=session_id, play=play_name, record=record)
        d = defer.maybeDeferred(
            self.gateway.startup, call_id=call_id, callee=callee, account=account,
            register=register, visible_name=visible_name or None, has_audio=has_audio,
            has_video=has_video, session_id=session_id, play_file=play_file, record=record,
            peer=peer)
        return d.addCallback(lambda returned: {"callId": str(returned)})

    def terminate(self, body: dict[str, Any]) -> Any:
        call_id = _call_id(body)
        return defer.maybeDeferred(self.gateway.terminate, call_id).addCallback(lambda _: {})

    def find(self, body: dict[str, Any]) -> Any:
        filters: dict[str, str] = {}
        for field in body:
            if field not in ("callId", "status", "caller", "callee", "sessionId"):
                raise _bad(field, "is not a filter (callId, status, caller, callee, sessionId)")
        if "callId" in body:
            filters["callId"] = _call_id(body) or ""
        status = _choice(body, "status", openapi.STATUSES)
        if status is not None:
            filters["status"] = status
        for field, limit in (("caller", openapi.MAX_TEXT), ("callee", openapi.MAX_TEXT),
                             ("sessionId", openapi.MAX_CALL_ID)):
            value = _string(body, field, openapi.TEXT, _TEXT_PROBLEM, max_length=limit)
            if value is not None:
                filters[field] = value

        def found(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
            if not calls:
                raise RestError(404, "no call matches the filters")
            return list(calls)

        return defer.maybeDeferred(self.gateway.find, filters).addCallback(found)

    def find_all(self, body: dict[str, Any]) -> Any:
        return defer.maybeDeferred(self.gateway.find_all).addCallback(list)

    def send_dtmf(self, body: dict[str, Any]) -> Any:
        call_id = _call_id(body)
        dtmf = _string(body, "dtmf", openapi.DTMF, "must be 1 to 64 of the digits 0-9 * # A-D",
                       required=True)
        kind = _choice(body, "type", openapi.DTMF_TYPES) or "RFC2833"
        assert dtmf is not None
        return defer.maybeDeferred(self.gateway.send_dtmf, None, call_id, dtmf.upper(),
                                   kind).addCallback(lambda _: {})

    def hold(self, body: dict[str, Any]) -> Any:
        call_id = _call_id(body)
        return defer.maybeDeferred(self.gateway.hold, None, call_id).addCallback(lambda _: {})

    def unhold(self, body: dict[str, Any]) -> Any:
        call_id = _call_id(body)
        return defer.maybeDeferred(self.gateway.unhold, None, call_id).addCallback(lambda _: {})

    def transfer(self, body: dict[str, Any]) -> Any:
        call_id = _call_id(body)
        target = _string(body, "target", openapi.TOKEN, _TOKEN_PROBLEM, required=True,
                         min_length=1)
        return defer.maybeDeferred(self.gateway.transfer, None, call_id,
                                   target).addCallback(lambda _: {})


# -- HTTP ---------------------------------------------------------------------------------------


def _digest(token: bytes) -> bytes:
    return hashlib.sha256(token).digest()


def _parse_json(raw: bytes) -> Any:
    """Strict JSON: UTF-8, no NaN/Infinity, no duplicate keys (which would hide a field)."""

    def no_constant(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                raise ValueError(f"duplicate key {key!r}")
            out[key] = value
        return out

    return json.loads(raw.decode("utf-8"), parse_constant=no_constant, object_pairs_hook=pairs)


class RestResource(Resource):
    """``/rest-api``: a leaf; the rest of the URL picks the method."""

    isLeaf = True

    def __init__(self, api: RestApi, tokens: Sequence[str],
                 max_body: int = openapi.MAX_BODY) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.api = api
        self.max_body = max_body
        self._token_digests = [_digest(t.encode("utf-8")) for t in tokens]
        self._document = json.dumps(
            openapi.openapi_document(auth=bool(tokens), max_body=max_body), indent=1,
            sort_keys=False).encode("utf-8")

    def render(self, request: Request) -> Any:
        try:
            reply = self._route(request)
        except RestError as error:
            reply = RestReply.of_error(error)
        except Exception:
            log.failure("rest: request handling failed")
            reply = RestReply(500, {"error": "internal error"})
        if isinstance(reply, defer.Deferred):
            finished = request.notifyFinish()
            gone: list[bool] = []
            finished.addErrback(lambda _: gone.append(True))

            def write(result: RestReply) -> None:
                if not gone:
                    request.write(self._finish(request, result))  # type: ignore[no-untyped-call]
                    request.finish()  # type: ignore[no-untyped-call]

            reply.addCallback(write)
            reply.addErrback(lambda f: log.failure("rest: writing the reply failed", f))
            return NOT_DONE_YET
        return self._finish(request, reply)

    def _finish(self, request: Request, reply: RestReply) -> bytes:
        request.setResponseCode(reply.status)
        for name, value in reply.headers.items():
            request.setHeader(name, value)  # type: ignore[no-untyped-call]
        request.setHeader(b"content-type", _JSON)  # type: ignore[no-untyped-call]
        request.setHeader(b"cache-control", b"no-store")  # type: ignore[no-untyped-call]
        request.setHeader(b"x-content-type-options", b"nosniff")  # type: ignore[no-untyped-call]
        if isinstance(reply.body, bytes):
            data = reply.body
        else:
            data = json.dumps(reply.body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        if request.method == b"HEAD":
            request.setHeader(b"content-length", str(len(data)).encode())  # type: ignore[no-untyped-call]
            return b""
        return data

    def _route(self, request: Request) -> RestReply | defer.Deferred[RestReply]:
        assert request.postpath is not None  # a leaf resource: the site has set it
        path = "/" + "/".join(p.decode("utf-8", "replace") for p in request.postpath)
        method = openapi.ROUTES.get(path)
        if method is None:
            raise RestError(404, f"no such endpoint: /rest-api{path[:100]}")
        if path == "/openapi.json":
            # The document is public: it holds no secrets and tells clients how to authenticate.
            if request.method not in (b"GET", b"HEAD"):
                raise RestError(405, "use GET", headers={b"allow": b"GET, HEAD"})
            return RestReply(200, self._document)
        self._authenticate(request)
        if request.method != b"POST":
            raise RestError(405, "use POST with a JSON body", headers={b"allow": b"POST"})
        raw = self._read_body(request, self.max_body)
        content_type = (request.getHeader(b"content-type") or b"").split(b";", 1)[0]
        if content_type.strip().lower() != _JSON:
            raise RestError(415, "Content-Type must be application/json")
        try:
            body = _parse_json(raw)
        except (ValueError, RecursionError) as exc:
            raise RestError(400, f"the body is not valid JSON: {str(exc)[:200]}") from None
        if not isinstance(body, dict):
            raise RestError(400, "the body must be a JSON object")
        # The TCP peer, never X-Forwarded-For (anyone can send that header).
        peer = getattr(request.getClientAddress(), "host", None)  # type: ignore[no-untyped-call]
        return self.api.handle(path, body, peer=peer)

    def _authenticate(self, request: Request) -> None:
        if not self._token_digests:
            return
        header = request.getHeader(b"authorization") or b""
        scheme, _, token = header.strip().partition(b" ")
        if scheme.lower() != b"bearer" or not token.strip():
            raise RestError(401, "a bearer token is required (Authorization: Bearer <token>)",
                            headers={b"www-authenticate": _REALM})
        given = _digest(token.strip())
        ok = False
        for digest in self._token_digests:  # no early exit: the time says nothing
            ok |= hmac.compare_digest(given, digest)
        if not ok:
            raise RestError(401, "the bearer token is not valid",
                            headers={b"www-authenticate": _REALM + b', error="invalid_token"'})

    @staticmethod
    def _read_body(request: Request, max_body: int) -> bytes:
        """At most ``max_body`` bytes, else 413.  In the gateway the site's front door
        (:mod:`wcsgw.api.front`) has already refused a larger Content-Length or chunked body
        before reading it and before this resource ran; this check remains for a resource
        mounted on a plain Site (tests) and as a second line."""
        length = request.getHeader(b"content-length")
        if length is not None and length.strip().isdigit() and int(length) > max_body:
            raise RestError(413, f"the body is larger than {max_body} bytes (http.max_body)")
        content = request.content
        if content is None:
            return b""
        content.seek(0, os.SEEK_SET)
        raw: bytes = content.read(max_body + 1)
        if len(raw) > max_body:
            raise RestError(413, f"the body is larger than {max_body} bytes (http.max_body)")
        return raw


def build_rest_resource(
    gateway: Any,
    tokens: Sequence[str],
    *,
    media_folder: str | os.PathLike[str] | None = None,
    recordings_folder: str | os.PathLike[str] | None = None,
    max_body: int = openapi.MAX_BODY,
) -> Resource:
    """The resource the service mounts at ``/rest-api``.

    ``tokens``: the ``[rest] tokens`` list; empty means no authentication.  ``media_folder``:
    where ``playFile`` names are looked up (None: playFile is refused).  ``recordings_folder``:
    must exist for ``record: true`` (None: record is refused); the call layer writes there.
    ``max_body``: ``http.max_body`` (the OpenAPI document states it).
    """
    api = RestApi(
        gateway,
        media_folder=Path(media_folder) if media_folder is not None else None,
        recordings_folder=Path(recordings_folder) if recordings_folder is not None else None,
    )
    return RestResource(api, tokens, max_body)
