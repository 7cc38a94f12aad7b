"""The load caller's signalling adapter for Janus: HTTP API + SIP plugin, no REGISTER.

Per call: ``create`` a session, ``attach`` ``janus.plugin.sip``, ``register`` as a ``guest``
(nothing is sent to SIP), ``call`` ``sip:<callee>@<domain>:<port>`` with the offer as a
non-trickle JSEP and an ``X-Bench-Id`` header, long-poll the session until the ``accepted``
event brings the answer.  Sessions do not time out (the bench's Janus config says
``session_timeout = 0``), so nothing polls while media flows.  Hang-up: ``hangup``, then
``destroy`` the session.

HTTP is a few lines over asyncio streams (``Connection: close``), so the bench needs no HTTP
client library.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from typing import Any
from urllib.parse import urlsplit


async def http_json(method: str, url: str, body: Any = None, timeout: float = 35.0) -> Any:
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    data = json.dumps(body).encode() if body is not None else b""
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        writer.write(
            f"{method} {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n".encode() + data)
        raw = await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()
    head, _, payload = raw.partition(b"\r\n\r\n")
    if b"transfer-encoding: chunked" in head.lower():
        out, rest = b"", payload
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line.split(b";")[0] or b"0", 16)
            if size == 0:
                break
            out, rest = out + rest[:size], rest[size + 2:]
        payload = out
    return json.loads(payload)


def _tx() -> str:
    return secrets.token_hex(6)


class JanusSignalling:
    def __init__(self, url: str, sip_domain: str, sip_port: int, callee: str) -> None:
        self.url = url.rstrip("/")
        self.uri = f"sip:{callee}@{sip_domain}:{sip_port}"
        self.identity = f"sip:bench@{sip_domain}"

    async def _post(self, path: str, body: dict[str, Any]) -> Any:
        body = {**body, "transaction": _tx()}
        reply = await http_json("POST", self.url + path, body)
        if reply.get("janus") == "error":
            raise RuntimeError(f"Janus error: {reply.get('error')}")
        return reply

    async def _event(self, session: int, want: Any, deadline: float) -> dict[str, Any]:
        """Long-poll the session until ``want(event)`` is true; raise on a SIP error/hangup."""
        while time.monotonic() < deadline:
            events = await http_json("GET", f"{self.url}/{session}?maxev=5&rid={_tx()}")
            for ev in events if isinstance(events, list) else [events]:
                data = (ev.get("plugindata") or {}).get("data") or {}
                result = data.get("result") or {}
                if data.get("error") or result.get("event") == "hangup":
                    raise RuntimeError(f"Janus SIP: {data.get('error') or result}")
                if want(ev, result):
                    return ev
        raise TimeoutError("no answer from Janus")

    async def open_call(self, call_id: str, offer: str) -> tuple[str, float, float, Any]:
        session = (await self._post("", {"janus": "create"}))["data"]["id"]
        handle = (await self._post(f"/{session}", {"janus": "attach",
                                                   "plugin": "janus.plugin.sip"}))["data"]["id"]
        base = f"/{session}/{handle}"
        deadline = time.monotonic() + 20
        await self._post(base, {"janus": "message", "body": {
            "request": "register", "type": "guest", "username": self.identity}})
        await self._event(session, lambda ev, r: r.get("event") == "registered", deadline)
        t_call = time.monotonic()
        await self._post(base, {"janus": "message",
                                "body": {"request": "call", "uri": self.uri,
                                         "headers": {"X-Bench-Id": call_id}},
                                "jsep": {"type": "offer", "sdp": offer, "trickle": False}})
        ev = await self._event(session, lambda ev, r: r.get("event") == "accepted" and "jsep" in ev,
                               deadline)
        t_est = time.monotonic()
        return ev["jsep"]["sdp"], t_call, t_est, (session, handle)

    async def close_call(self, call_id: str, handle: Any) -> None:
        session, h = handle
        try:
            await self._post(f"/{session}/{h}", {"janus": "message", "body": {"request": "hangup"}})
            await asyncio.sleep(0.2)
        finally:
            await self._post(f"/{session}", {"janus": "destroy"})
