"""The resource tree of the gateway's one twisted.web site: Phone UI, Web SDK, ``/ws``.

Why static files are a fixed table and not a ``twisted.web.static.File`` on the folder:
``File`` lists directories, guesses content types from the platform's mime database (which
may say ``application/javascript`` or nothing for ``.js``) and serves whatever lands in the
folder.  The gateway ships a few named browser files, so each URL maps to one named file of
the ``wcsgw.web`` package: no listing, no path to escape through, a fixed Content-Type
(``text/javascript`` for ES modules, as the HTML spec wants), and ``nosniff``.

The files are read on each request (they are small): a developer editing the Phone UI sees the
change on reload, and an installed package reads them from wherever pip put ``wcsgw/web``.

Tree built by :func:`build_site`::

    /                 Phone UI (index.html)      /phone.js, /phone.css  its script and style
    /sdk/wcsgw.js     the Web SDK (ES module)    /ws                    JSON-RPC WebSocket
    /admin            the admin page (admin.html) /admin.js, /admin.css its script and style
    + whatever ``children`` the caller adds (``health`` today, ``rest-api`` later)

The tree is served by :class:`wcsgw.api.front.GatewaySite` (``service.make_site``): before any
resource here runs, every request's Host is checked (DNS rebinding), its Content-Length
against ``http.max_body``, and its headers and body against ``http.header_timeout`` /
``http.body_timeout``.
"""

from __future__ import annotations

from importlib import resources
from typing import Any, Mapping

from twisted.web.resource import NoResource, Resource
from twisted.web.server import Request

from wcsgw.api.ws import make_ws_resource
from wcsgw.calls.gateway import CallGateway

__all__ = ["build_site", "StaticFile", "STATIC_FILES"]

_HTML = b"text/html; charset=utf-8"
_JS = b"text/javascript; charset=utf-8"
_CSS = b"text/css; charset=utf-8"

#: URL path segments -> (file in wcsgw/web, Content-Type).
STATIC_FILES: dict[tuple[bytes, ...], tuple[str, bytes]] = {
    (b"",): ("index.html", _HTML),
    (b"index.html",): ("index.html", _HTML),
    (b"phone.js",): ("phone.js", _JS),
    (b"phone.css",): ("phone.css", _CSS),
    (b"ladder.js",): ("ladder.js", _JS),  # the SIP ladder: the Phone UI and /admin
    (b"ladder.css",): ("ladder.css", _CSS),  # its look (ladder.js links it)
    (b"graphs.js",): ("graphs.js", _JS),  # call-quality graphs: the Phone UI and /admin
    (b"lines.js",): ("lines.js", _JS),  # the Phone UI's several lines (call waiting, Switch to)
    (b"chat.js",): ("chat.js", _JS),  # the Phone UI's chat panel (SIP MESSAGE)
    (b"devices.js",): ("devices.js", _JS),  # the Phone UI's device choices and volume
    (b"sdk", b"wcsgw.js"): ("wcsgw.js", _JS),
    # the admin page: holds no data, reads the REST API with the operator's token
    (b"admin",): ("admin.html", _HTML),
    (b"admin.js",): ("admin.js", _JS),
    (b"admin.css",): ("admin.css", _CSS),
}

# The Phone UI loads nothing from the network but this site; a CSP says so to the browser,
# which then refuses injected scripts and third-party loads.  connect-src allows ws:/wss: for
# the SDK's urlServer (pages may point it at another gateway).
_CSP = (
    b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    b"media-src 'self' blob: mediastream:; connect-src 'self' ws: wss:; "
    b"object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'"
)


class StaticFile(Resource):
    """One packaged file at one URL.  Not a leaf: ``/phone.js/x`` is a 404, not the file."""

    def __init__(self, name: str, content_type: bytes) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.name = name
        self.content_type = content_type

    def getChild(self, path: bytes, request: Request) -> Resource:
        return NoResource()

    def render_GET(self, request: Request) -> bytes:
        body = resources.files("wcsgw.web").joinpath(self.name).read_bytes()
        request.setHeader(b"content-type", self.content_type)  # type: ignore[no-untyped-call]
        request.setHeader(b"x-content-type-options", b"nosniff")  # type: ignore[no-untyped-call]
        request.setHeader(b"cache-control", b"no-cache")  # type: ignore[no-untyped-call]
        request.setHeader(b"referrer-policy", b"no-referrer")  # type: ignore[no-untyped-call]
        if self.content_type == _HTML:
            request.setHeader(b"content-security-policy", _CSP)  # type: ignore[no-untyped-call]
        return body

    def render_HEAD(self, request: Request) -> bytes:
        return self.render_GET(request)


class _Folder(Resource):
    """A path segment with named children only: its own URL (``/sdk/``) is a 404, never a
    listing."""

    def render(self, request: Request) -> bytes:
        return NoResource().render(request)  # type: ignore[no-untyped-call,no-any-return]


def build_site(
    gateway: CallGateway,
    *,
    children: Mapping[str, Resource] | None = None,
    **ws_options: Any,
) -> Resource:
    """The root resource of the gateway's site.

    ``children``: more top-level resources by name — the service adds ``{"health":
    HealthResource()}`` (and later ``"rest-api"``).  ``ws_options`` go to
    :class:`~wcsgw.api.ws.GatewaySocketFactory` (``allowed_origins``, ``ping_interval``,
    ``ping_timeout``).
    """
    # arg-type below: putChild wants an IResource, a zope Interface mypy cannot match a class to
    root = Resource()  # type: ignore[no-untyped-call]
    for segments, (name, content_type) in STATIC_FILES.items():
        parent = root
        for segment in segments[:-1]:
            child = parent.children.get(segment)
            if child is None:
                child = _Folder()  # type: ignore[no-untyped-call]
                parent.putChild(segment, child)  # type: ignore[arg-type]
            parent = child
        parent.putChild(segments[-1], StaticFile(name, content_type))  # type: ignore[arg-type]
    root.putChild(b"ws", make_ws_resource(gateway, **ws_options))  # type: ignore[arg-type]
    for name, resource in (children or {}).items():
        root.putChild(name.encode("ascii"), resource)  # type: ignore[arg-type]
    return root
