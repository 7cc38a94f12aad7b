"""A real backend web server for the hook tests: its own process on a free port.

Why a process and not a resource in the suite's reactor: a hook that waits on the backend must
be seen to leave the gateway's reactor free, and a backend that stalls (the timeout tests) must
stall on its own; and it verifies the signature with its own code (stdlib ``hmac``), not the
gateway's, as a customer's backend would.

It records every hook request (``GET /events``: the bodies, each with ``verified``: the
signature held) and replies as the test tells it (``POST /script``: event -> a list of
replies ``{"status", "body", "delay"}`` used in turn, the last one kept).  Started in its own
process group and always stopped by the suite.

Run as ``python -m tests.peers.backend PORT SECRET`` (the server); the suite uses
:class:`Backend`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from twisted.internet import reactor, task
from twisted.web.client import Agent, FileBodyProducer, HTTPConnectionPool, readBody
from twisted.web.http_headers import Headers

from tests.peers.ports import free_port
from tests.peers.process import stop_group

ROOT = Path(__file__).resolve().parents[2]


# -- the server (in its own process) ------------------------------------------------------------

def _verified(secret: str, body: bytes, header: str) -> bool:
    fields = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    stamp = fields.get("t", "")
    if not stamp.isdigit() or abs(time.time() - int(stamp)) > 300:
        return False
    mac = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(mac, fields.get("v1", ""))


def serve(port: int, secret: str) -> None:
    events: list[dict[str, Any]] = []
    script: dict[str, list[dict[str, Any]]] = {}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _reply(self, status: int, body: Any) -> None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802
            with lock:
                self._reply(200, events)

        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.path == "/script":
                with lock:
                    script.update(json.loads(body))
                self._reply(200, {})
                return
            ok = _verified(secret, body, self.headers.get("X-Wcsgw-Signature", ""))
            event = json.loads(body)
            with lock:
                events.append({"verified": ok, "path": self.path, **event})
                replies = script.get(event.get("event"), [])
                reply = replies.pop(0) if len(replies) > 1 else (replies[0] if replies else {})
            if not ok:
                self._reply(401, {"error": "bad signature"})
                return
            # A slow backend is what some tests are about (the gateway's hook timeout): this
            # thread of the backend's own process answers late on purpose; no test waits on it.
            time.sleep(reply.get("delay", 0))
            self._reply(reply.get("status", 200), reply.get("body", {}))

    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


# -- the suite's handle on it -------------------------------------------------------------------

class Backend:
    """The backend process: ``url`` to put in ``[[apps]] hook_url``, ``script``/``events``."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.port = free_port("tcp")
        self.url = f"http://127.0.0.1:{self.port}/hooks"
        self._proc: subprocess.Popen[bytes] | None = None
        self._pool = HTTPConnectionPool(reactor, persistent=False)

    async def start(self) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "tests.peers.backend", str(self.port), self.secret],
            cwd=ROOT, start_new_session=True, stdin=subprocess.DEVNULL)
        deadline = reactor.seconds() + 10
        while True:  # up when it answers
            try:
                await self.events()
                return
            except Exception:
                if reactor.seconds() > deadline or self._proc.poll() is not None:
                    raise RuntimeError("the test backend did not start") from None
                await task.deferLater(reactor, 0.05, lambda: None)

    async def stop(self) -> None:
        if self._proc is not None:
            await stop_group(self._proc, 5.0, reactor)
            self._proc = None

    async def _request(self, method: bytes, path: str, body: Any = None) -> Any:
        producer = FileBodyProducer(__import__("io").BytesIO(json.dumps(body).encode())) \
            if body is not None else None
        response = await Agent(reactor, pool=self._pool).request(
            method, f"http://127.0.0.1:{self.port}{path}".encode(),
            Headers({"Content-Type": ["application/json"]}), producer)
        return json.loads(await readBody(response))

    async def script(self, **replies: list[dict[str, Any]] | dict[str, Any]) -> None:
        """How to answer each event: a reply or a list of replies used in turn."""
        await self._request(b"POST", "/script",
                            {k: v if isinstance(v, list) else [v] for k, v in replies.items()})

    async def events(self) -> list[dict[str, Any]]:
        return await self._request(b"GET", "/events")  # type: ignore[no-any-return]

    async def wait_events(self, predicate: Any, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Poll until ``predicate(events)`` holds (the backend is another process)."""
        deadline = reactor.seconds() + timeout
        while True:
            events = await self.events()
            if predicate(events):
                return events
            if reactor.seconds() > deadline:
                raise AssertionError(f"backend events never matched: {events}")
            await task.deferLater(reactor, 0.05, lambda: None)


if __name__ == "__main__":
    serve(int(sys.argv[1]), sys.argv[2])
