"""``GET /health``: what load balancers and service managers ask before sending work here."""

from __future__ import annotations

import json
from typing import Any

from twisted.web.resource import Resource
from twisted.web.server import Request

from wcsgw import __version__

__all__ = ["HealthResource"]


class HealthResource(Resource):
    """``GET /health`` -> 200 ``{"status": "ok", "version": ...}``, for load balancers and
    service managers: it answers as soon as the HTTP site is up.  A draining gateway
    (``gateway.drain``) answers 503 ``{"status": "draining", ...}`` so a load balancer stops
    sending new browsers here while the live calls finish.  An overloaded one stays 200
    (``"overloaded": true``): it still serves its sessions, and only new calls are refused —
    taking it out of the pool would move its browsers' reconnections onto the others."""

    isLeaf = True

    def __init__(self, gateway: Any = None) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.gateway = gateway

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", b"application/json")  # type: ignore[no-untyped-call]
        request.setHeader(b"cache-control", b"no-store")  # type: ignore[no-untyped-call]
        body: dict[str, Any] = {"status": "ok", "version": __version__}
        drain = getattr(self.gateway, "drain", None)
        if drain is not None and drain.draining:
            request.setResponseCode(503)
            body = {**drain.describe(), "status": "draining", "version": __version__}
        overload = getattr(self.gateway, "overload", None)
        if overload is not None and overload.overloaded:
            body["overloaded"] = True
        return json.dumps(body).encode()

    render_HEAD = render_GET
