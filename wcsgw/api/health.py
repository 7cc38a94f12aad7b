"""``GET /health``: what load balancers and service managers ask before sending work here."""

from __future__ import annotations

import json

from twisted.web.resource import Resource
from twisted.web.server import Request

from wcsgw import __version__

__all__ = ["HealthResource"]


class HealthResource(Resource):
    """``GET /health`` -> 200 ``{"status": "ok", "version": ...}``, for load balancers and
    service managers: it answers as soon as the HTTP site is up."""

    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", b"application/json")  # type: ignore[no-untyped-call]
        request.setHeader(b"cache-control", b"no-store")  # type: ignore[no-untyped-call]
        return json.dumps({"status": "ok", "version": __version__}).encode()

    render_HEAD = render_GET
