"""The operator's REST API at ``/rest-api/``: Flashphoner WCS's ``/call/*`` methods, over HTTP.

Every method is ``POST`` with a JSON object body and answers JSON (docs/contract.md, REST).  The
order of checks is fixed and documented (docs/rest-api.md) because each one answers a different
status — after the site's front door (:mod:`wcsgw.api.front`: Host 421, Content-Length over
``http.max_body`` 413 before the body is read, slow clients 408): unknown path 404,
missing/wrong bearer token 401, wrong method 405, body larger than ``http.max_body`` 413,
Content-Type not JSON 415, body not a JSON object 400 — all here — then a field wrong 400
naming it (:mod:`wcsgw.api.restfields`, called by :mod:`wcsgw.api.restcalls`), then the call
layer (404 unknown call, 409 duplicate callId or bad state, 403 policy).

This module is the HTTP face only: routing, authentication, body limits, strict JSON and
writing the reply; what a request does is :class:`~wcsgw.api.restcalls.RestApi`'s.

Secrets: tokens are compared in constant time (SHA-256 of both sides with
:func:`hmac.compare_digest`, so neither content nor length leaks).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from pathlib import Path
from typing import Any, Sequence

from twisted.internet import defer
from twisted.logger import Logger
from twisted.protocols.basic import FileSender
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from wcsgw.api import openapi, restcluster
from wcsgw.api.restcalls import RestApi, RestReply
from wcsgw.api.restfields import RestError
from wcsgw.api.restops import content_type_of
from wcsgw.api.restrules import MAX_BODY, RECORDING_ROUTE, route_of

__all__ = ["RestResource", "build_rest_resource"]

log = Logger(namespace="wcsgw.rest")

_JSON = b"application/json"
_REALM = b'Bearer realm="wcsgw"'


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
                 max_body: int = MAX_BODY) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.api = api
        self.max_body = max_body
        self._token_digests = [_digest(t.encode("utf-8")) for t in tokens]
        self._cluster: restcluster.ClusterRest | None = None
        self._document = json.dumps(
            openapi.openapi_document(auth=bool(tokens), max_body=max_body), indent=1,
            sort_keys=False).encode("utf-8")

    def render(self, request: Request) -> Any:
        try:
            reply = self._route(request)
            if isinstance(reply, Path):
                return self._send_file(request, reply)
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
        if b"content-type" not in reply.headers:  # an Attachment (CSV) brings its own
            request.setHeader(b"content-type", _JSON)  # type: ignore[no-untyped-call]
        for name, value in reply.headers.items():
            request.setHeader(name, value)  # type: ignore[no-untyped-call]
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

    def _route(self, request: Request) -> RestReply | defer.Deferred[RestReply] | Path:
        assert request.postpath is not None  # a leaf resource: the site has set it
        segments = [p.decode("utf-8", "replace") for p in request.postpath]
        path = route_of(segments)
        if path is None:
            shown = "/" + "/".join(segments)
            raise RestError(404, f"no such endpoint: /rest-api{shown[:100]}")
        if path == "/openapi.json":
            # The document is public: it holds no secrets and tells clients how to authenticate.
            if request.method not in (b"GET", b"HEAD"):
                raise RestError(405, "use GET", headers={b"allow": b"GET, HEAD"})
            return RestReply(200, self._document)
        # [cluster]: another node's signed request stands for a token (wcsgw.api.restcluster)
        cluster = getattr(self.api.gateway, "cluster", None)
        handed_over = cluster is not None and restcluster.check_signature(
            cluster, request, path, lambda: self._read_body(request, self.max_body),
            self._cluster_clock().seconds())
        if not handed_over:
            self._authenticate(request)
        if path == RECORDING_ROUTE:
            if request.method not in (b"GET", b"HEAD"):
                raise RestError(405, "use GET", headers={b"allow": b"GET, HEAD"})
            return self.api.ops.recording_file(segments[1])
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
        if cluster is not None:
            if self._cluster is None:
                self._cluster = restcluster.ClusterRest(self.api, cluster, self._cluster_clock())
            return self._cluster.handle(path, body, peer=peer, handed_over=handed_over)
        return self.api.handle(path, body, peer=peer)

    @staticmethod
    def _cluster_clock() -> Any:
        from twisted.internet import reactor
        return reactor

    def _send_file(self, request: Request, path: Path) -> Any:
        """Stream a recording (FileSender: a chunk at a time, as the client reads), never the
        whole file in memory; HEAD gets the headers alone."""
        try:
            handle = path.open("rb")
        except OSError:
            return self._finish(request, RestReply(404, {"error": "name: no such recording",
                                                         "field": "name"}))
        size = os.fstat(handle.fileno()).st_size
        for name, value in ((b"content-type", content_type_of(path.name)),
                            (b"content-length", str(size).encode()),
                            (b"content-disposition",
                             f'attachment; filename="{path.name}"'.encode()),
                            (b"cache-control", b"no-store"),
                            (b"x-content-type-options", b"nosniff")):
            request.setHeader(name, value)  # type: ignore[no-untyped-call]
        if request.method == b"HEAD":
            handle.close()
            return b""
        log.info("rest: sending recording {name} ({size} bytes)", name=path.name, size=size)

        def done(result: Any) -> None:
            handle.close()
            if not request.finished and not request._disconnected:
                request.finish()  # type: ignore[no-untyped-call]

        FileSender().beginFileTransfer(handle, request).addBoth(done)  # type: ignore[no-untyped-call]
        return NOT_DONE_YET

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
    max_body: int = MAX_BODY,
) -> Resource:
    """The resource the service mounts at ``/rest-api``.

    ``tokens``: the ``[rest] tokens`` list; empty means no authentication.  ``media_folder``:
    where ``playFile`` names are looked up (None: playFile is refused).  ``record: true`` writes into the
    gateway's recordings folder (``gateway.recordings``, ``[recording] folder``).
    ``max_body``: ``http.max_body`` (the OpenAPI document states it).
    """
    api = RestApi(
        gateway,
        media_folder=Path(media_folder) if media_folder is not None else None,
    )
    return RestResource(api, tokens, max_body)
