"""A fake :class:`~wcsgw.calls.gateway.CallGateway` for the API tests (no SIP, no media), and
helpers to serve :func:`~wcsgw.api.site.build_site` on a free port and talk to it (Autobahn's
Twisted WebSocket client, twisted.web's Agent).

It records every call into it (``events``, an :class:`~tests.support.EventLog` tests can await)
and answers the way the real gateway's interface promises: ``connect`` reports ESTABLISHED
(then REGISTERED when asked) through the session's listener, ``call`` reports NEW, ``hangup``
reports FINISH, ``disconnect`` reports DISCONNECTED, ``hold``/``unhold`` report HOLD/ESTABLISHED;
``transfer`` and ``send_dtmf`` only record (tests send ``transferStatus``/``dtmf`` through the
listener's ``notify``).  ``fail[method] = CallError(...)`` makes a method refuse.
"""

from __future__ import annotations

import json
from typing import Any

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from twisted.internet import defer, reactor
from twisted.web.client import Agent, HTTPConnectionPool, PartialDownloadError, readBody
from twisted.web.server import Site

from tests.support import EventLog
from wcsgw.api.site import build_site
from wcsgw.calls.gateway import CallError, Codes
from wcsgw.calls.policy import Policy
from wcsgw.sip.account import SipAccount


class FakeGateway:
    def __init__(self) -> None:
        self.listeners: dict[str, Any] = {}
        self.accounts: dict[str, SipAccount | None] = {}
        self.calls: dict[str, dict[str, Any]] = {}
        self.events = EventLog()
        self.fail: dict[str, Exception] = {}
        self.register_outcome: tuple[str, int | None, str] = ("REGISTERED", 200, "")
        self.peers: dict[str, str | None] = {}  # sessionId -> the TCP peer's address
        #: the real outbound policy with its defaults: the API layer checks sipHeaders with it
        self.policy = Policy([], None)

    def _check(self, method: str) -> None:
        error = self.fail.get(method)
        if error is not None:
            raise error

    def admit_session(self, peer: str | None) -> None:
        self._check("admit_session")

    def open_session(self, session_id: str, listener: Any, peer: str | None = None) -> None:
        self._check("open_session")
        self.listeners[session_id] = listener
        self.peers[session_id] = peer
        self.events("open_session", session_id)

    def connect(self, session_id: str, account: SipAccount | None, register: bool) -> None:
        self._check("connect")
        self.events("connect", session_id, account, register)
        self.accounts[session_id] = account
        listener = self.listeners[session_id]
        listener.session_status("ESTABLISHED", None, "")
        if account is not None and register:
            listener.session_status(*self.register_outcome)

    def disconnect(self, session_id: str) -> None:
        self._check("disconnect")
        self.events("disconnect", session_id)
        self.listeners[session_id].session_status("DISCONNECTED", None, "")

    def call(self, session_id: str, **kwargs: Any) -> str:
        self._check("call")
        call_id = kwargs["call_id"] or f"gw-{len(self.calls) + 1}"
        if call_id in self.calls:
            raise CallError(Codes.DUPLICATE_CALL, f"callId {call_id} is already in use", "callId")
        self.calls[call_id] = {"session": session_id, **kwargs}
        self.listeners[session_id].call_status(self.call_dict(call_id, "NEW"))
        # Last, so a test woken by this event sees the call in place.
        self.events("call", session_id, kwargs)
        return call_id

    def call_dict(self, call_id: str, status: str, **extra: Any) -> dict[str, Any]:
        call = self.calls[call_id]
        return {"callId": call_id, "status": status, "sipStatus": None, "info": "",
                "incoming": call.get("incoming", False), "caller": call.get("caller", ""),
                "callee": call["callee"], **extra}

    def hangup(self, session_id: str, call_id: str) -> None:
        self._check("hangup")
        self.events("hangup", session_id, call_id)
        call = self.calls.get(call_id)
        if call is None or call["session"] != session_id:
            raise CallError(Codes.UNKNOWN_CALL, f"no call {call_id} in this session", "callId")
        self.listeners[session_id].call_status(self.call_dict(call_id, "FINISH", info="Normal call clearing"))
        del self.calls[call_id]

    def _own_call(self, session_id: str | None, call_id: str) -> dict[str, Any]:
        call = self.calls.get(call_id)
        if call is None or (session_id is not None and call["session"] != session_id):
            raise CallError(Codes.UNKNOWN_CALL, f"no call {call_id} in this session", "callId")
        return call

    def answer(self, session_id: str, call_id: str, sdp: str) -> None:
        """Answers an incoming call that ``offer_call`` made: records it and reports ESTABLISHED."""
        self._check("answer")
        call = self._own_call(session_id, call_id)
        if not call.get("incoming"):
            raise CallError(Codes.BAD_STATE, "only an incoming call can be answered", "callId")
        self.events("answer", session_id, call_id, sdp)
        self.listeners[session_id].call_status(self.call_dict(call_id, "ESTABLISHED", sipStatus=200))

    def offer_call(self, session_id: str, call_id: str, caller: str, sdp: str) -> None:
        """An incoming call for the session, as the call layer announces one (``incomingCall``)."""
        self.calls[call_id] = {"session": session_id, "callee": "", "caller": caller, "incoming": True}
        self.listeners[session_id].notify("incomingCall", {
            "callId": call_id, "caller": caller, "callee": "", "visibleName": caller,
            "hasAudio": True, "hasVideo": False, "sdp": sdp})

    def hold(self, session_id: str | None, call_id: str, for_transfer: bool = False) -> None:
        self._check("hold")
        call = self._own_call(session_id, call_id)
        self.events("hold", session_id, call_id, *(("for_transfer",) if for_transfer else ()))
        self.listeners[call["session"]].call_status(self.call_dict(
            call_id, "HOLD", sipStatus=200, holdForTransfer=for_transfer))

    def unhold(self, session_id: str | None, call_id: str) -> None:
        self._check("unhold")
        call = self._own_call(session_id, call_id)
        self.events("unhold", session_id, call_id)
        self.listeners[call["session"]].call_status(self.call_dict(call_id, "ESTABLISHED", sipStatus=200))

    def transfer(self, session_id: str | None, call_id: str, target: str) -> None:
        """Records the request only: tests play the REFER's progress with ``notify``."""
        self._check("transfer")
        self._own_call(session_id, call_id)
        self.events("transfer", session_id, call_id, target)

    def send_dtmf(self, session_id: str | None, call_id: str, digits: str, type: str) -> None:
        self._check("send_dtmf")
        self._own_call(session_id, call_id)
        self.events("send_dtmf", session_id, call_id, digits, type)

    def close_session(self, session_id: str) -> None:
        self.events("close_session", session_id)
        self.listeners.pop(session_id, None)

    #: connect's ``resumeSeconds`` (the real gateway's http.resume_seconds)
    resume_seconds = 0

    def auth_token(self, session_id: str) -> str:
        return f"token-of-{session_id}"

    def resume(self, fresh_id: str, token: str, on_session: Any = None) -> tuple[str, str]:
        """Resume is the real gateway's (tests.test_ws_resume): every token is unknown here."""
        self._check("resume")
        raise CallError(Codes.SESSION_EXPIRED, "Session expired or unknown authToken", "authToken")


class RecordingListener:
    """A SessionListener that keeps what it hears (for SessionMethods tests without a socket)."""

    def __init__(self) -> None:
        self.heard: list[tuple[str, Any]] = []

    def session_status(self, status: str, sip_status: int | None, info: str) -> None:
        self.heard.append(("sessionStatus", (status, sip_status, info)))

    def call_status(self, call: dict[str, Any]) -> None:
        self.heard.append(("callStatus", call))

    def notify(self, method: str, params: dict[str, Any]) -> None:
        self.heard.append((method, params))


# -- a live site and clients for the socket-level tests -------------------------------------------

def listen_site(testcase: Any, gateway: Any, **kwargs: Any) -> int:
    """Serve build_site(gateway) on a free loopback port for one test; returns the port."""
    site = Site(build_site(gateway, **kwargs))
    site.displayTracebacks = False
    port = reactor.listenTCP(0, site, interface="127.0.0.1")
    testcase.addCleanup(port.stopListening)
    return port.getHost().port


class WsClient(WebSocketClientProtocol):
    """Test client: every text frame (parsed JSON) goes to ``factory.frames``."""

    def onOpen(self) -> None:
        self.factory.opened.callback(self)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self.factory.frames(json.loads(payload))

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        if not self.factory.opened.called:
            self.factory.opened.errback(ConnectionError(f"WebSocket refused: {code} {reason}"))
        self.factory.closed.callback((code, reason))


class Connection:
    """One test WebSocket connection: ``send``/``request`` frames, await ``frames``."""

    def __init__(self, protocol: WsClient, factory: WebSocketClientFactory) -> None:
        self.protocol = protocol
        self.frames: EventLog = factory.frames
        self.closed: defer.Deferred = factory.closed
        self._next_id = 0

    def send(self, payload: bytes | str, binary: bool = False) -> None:
        data = payload.encode() if isinstance(payload, str) else payload
        self.protocol.sendMessage(data, isBinary=binary)

    def request(self, method: str, params: dict[str, Any] | None = None) -> defer.Deferred:
        """Send a request; the Deferred fires with the response frame (result or error)."""
        self._next_id += 1
        request_id = self._next_id
        self.send(json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method,
                               "params": params or {}}))
        return self.response(request_id)

    def response(self, request_id: Any) -> defer.Deferred:
        return self.frames.wait_for(lambda f: "method" not in f and f.get("id") == request_id)

    def notification(self, method: str, **match: Any) -> defer.Deferred:
        return self.frames.wait_for(
            lambda f: f.get("method") == method
            and all(f["params"].get(k) == v for k, v in match.items()))

    async def close(self) -> tuple:
        if not self.closed.called:
            self.protocol.sendClose(1000)
        return await self.closed


async def ws_connect(testcase: Any, port: int, path: str = "/ws", origin: str | None = None) -> Connection:
    factory = WebSocketClientFactory(f"ws://127.0.0.1:{port}{path}", origin=origin)
    factory.protocol = WsClient
    factory.frames = EventLog()
    factory.opened = defer.Deferred()
    factory.closed = defer.Deferred()
    reactor.connectTCP("127.0.0.1", port, factory)
    protocol = await factory.opened
    connection = Connection(protocol, factory)
    testcase.addCleanup(lambda: defer.ensureDeferred(connection.close()))
    return connection


async def http_get(testcase: Any, url: str, method: bytes = b"GET") -> tuple[Any, bytes]:
    """(response, body) for one request, on a non-persistent pool (nothing left open)."""
    pool = HTTPConnectionPool(reactor, persistent=False)
    testcase.addCleanup(pool.closeCachedConnections)
    response = await Agent(reactor, pool=pool).request(method, url.encode())
    try:
        body = await readBody(response)
    except PartialDownloadError as e:  # a close-delimited error body (Autobahn's 426)
        body = e.response or b""
    return response, body
