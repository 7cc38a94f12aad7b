"""The browser WebSocket at ``/ws``: one JSON-RPC session per connection (Autobahn adapter).

This is the thin Twisted side of the API: frames in -> :func:`~wcsgw.api.jsonrpc.parse_frame`
-> :class:`~wcsgw.api.methods.SessionMethods` -> frames out, and the gateway's status
callbacks -> notifications.  All decisions about *content* live in those two sans-IO modules.

Decisions (documented in docs/websocket-api.md):

* **One session per connection.**  The session id is random (a UUID4), made when the
  WebSocket opens, registered with the gateway (``open_session``) right away, and returned by
  ``connect``.  When the connection goes — cleanly, by error, or because keep-alive pings went
  unanswered — the gateway hears ``close_session`` exactly once: a connected session is
  detached and waits ``http.resume_seconds`` for a resume, any other ends with its calls.
* **A resume moves the session to this connection.**  ``connect {authToken}`` makes this
  socket speak for the token's session (its own fresh one is dropped): notifications carry
  that ``sessionId`` from then on.  A socket whose session is resumed elsewhere (a half-open
  connection the pings have not caught yet) is closed with :data:`RESUMED_ELSEWHERE` and
  hears nothing more.
* **A response goes out before the notifications its request caused.**  The gateway may call
  the listener synchronously inside ``connect`` (``sessionStatus ESTABLISHED``) or ``call``;
  those notifications are held until the response frame is written, so a client always learns
  its ``sessionId``/``callId`` first.
* **Bad input never closes the socket.**  Invalid JSON, invalid UTF-8 (Autobahn's own
  validation, which would close with 1007, is off so the JSON layer answers -32700 instead) and
  binary frames (answered -32600 with ``id: null``) get an error response; the next valid
  request works.  Only WebSocket-level violations and frames over :data:`MAX_MESSAGE_SIZE`
  close the connection, as RFC 6455 requires.
* Keep-alive: the server pings every :data:`PING_INTERVAL` seconds; a browser that does not
  answer within :data:`PING_TIMEOUT` is dropped (its session detached, then ended after the
  resume window), so a vanished laptop does not keep a SIP call up until the RTP timeout.  The
  browser's side: the JSON-RPC method ``ping``.
"""

from __future__ import annotations

import enum
import uuid
from typing import Any, Callable, Mapping, Sequence

from autobahn.exception import Disconnected
from autobahn.twisted.resource import WebSocketResource
from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.types import ConnectionDeny
from twisted.logger import Logger

from wcsgw.api import jsonrpc
from wcsgw.api.front import host_allowed
from wcsgw.api.iceservers import IceServers
from wcsgw.api.methods import SessionMethods
from wcsgw.calls.gateway import CallError, CallGateway

__all__ = [
    "MAX_MESSAGE_SIZE",
    "PING_INTERVAL",
    "PING_TIMEOUT",
    "RESUMED_ELSEWHERE",
    "GatewaySocket",
    "GatewaySocketFactory",
    "make_ws_resource",
    "write_now",
]

log = Logger()

#: Largest message accepted (an SDP offer with video and many candidates is ~20 KB).
MAX_MESSAGE_SIZE = 1024 * 1024
PING_INTERVAL = 20.0
PING_TIMEOUT = 20.0
#: The close code a socket gets when its session was resumed on another connection
#: (4000-4999: for applications, RFC 6455 §7.4.2).
RESUMED_ELSEWHERE = 4001


def _plain(value: Any) -> Any:
    """Enum statuses (the call layer's ``CallStatus``) as their wire strings, SDP bytes as text."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    return value


class GatewaySocket(WebSocketServerProtocol):
    """One browser connection = one gateway session; also the session's ``SessionListener``."""

    factory: "GatewaySocketFactory"

    def __init__(self) -> None:
        super().__init__()
        self.session_id: str | None = None
        self.methods: SessionMethods | None = None
        self._held: list[str] | None = None  # notifications waiting for a response to go first
        self._gone = False

    # -- WebSocket events ---------------------------------------------------------------------

    def onConnect(self, request: Any) -> None:
        # DNS rebinding: the gateway's site refuses a foreign Host on every path before any
        # resource runs (wcsgw/api/front.py); checked here again so that /ws mounted on any
        # other Site is no weaker.  Only then is "Origin names the Host" a same-origin check.
        names = self.factory.server_names
        if names is not None and not host_allowed(
                request.headers.get("host", "").encode("latin-1", "replace"), names):
            log.warn("WebSocket for host {host} refused (see http.server_names)",
                     host=request.headers.get("host", "")[:100])
            raise ConnectionDeny(421, "misdirected request: host not served here")  # type: ignore[no-untyped-call]
        if self.factory.same_origin_only:
            origin = request.headers.get("origin")
            host = request.headers.get("host", "")
            if origin is not None and origin.partition("://")[2].lower() != host.lower():
                log.warn("WebSocket from origin {origin} refused (same-origin only; see "
                         "http.allowed_origins)", origin=origin)
                raise ConnectionDeny(403, "origin not allowed")  # type: ignore[no-untyped-call]
        # [limits]: sessions per address and in all.  Refused here, before the upgrade, with
        # 503 and the reason naming the limit: no session is made and the socket closes.
        # Nothing runs between this and onOpen, which opens the session (and checks again).
        try:
            self.factory.gateway.admit_session(self._peer_ip())
        except CallError as exc:
            log.info("WebSocket from {peer} refused: {reason}", peer=self.peer,
                     reason=exc.message)
            raise ConnectionDeny(503, exc.message) from None  # type: ignore[no-untyped-call]

    def _peer_ip(self) -> str | None:
        """The TCP peer's IP address (X-Forwarded-For is not trusted: anyone can send it)."""
        peer = self.transport.getPeer() if self.transport is not None else None  # type: ignore[misc]  # zope Interface
        return getattr(peer, "host", None)

    def onOpen(self) -> None:
        gateway = self.factory.gateway
        self.session_id = str(uuid.uuid4())
        self.methods = SessionMethods(gateway, self.session_id, self.factory.ice_servers)
        self.methods.on_resumed = self._resumed
        log.info("session {session_id} opened from {peer}", session_id=self.session_id, peer=self.peer)
        try:
            gateway.open_session(self.session_id, self, peer=self._peer_ip())
        except CallError as exc:  # a limit reached after all: refuse as a policy violation
            log.info("session {session_id} refused: {reason}", session_id=self.session_id,
                     reason=exc.message)
            self._gone = True
            self.sendCloseFrame(code=1008, reasonUtf8=exc.message.encode()[:120], isReply=False)
        except Exception:
            log.failure("session {session_id}: the gateway refused to open it", session_id=self.session_id)
            self._gone = True  # nothing to close at the gateway
            # 1011 "internal error" is a protocol-level code, which sendClose() refuses.
            self.sendCloseFrame(code=1011, reasonUtf8=b"gateway error", isReply=False)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        if self.methods is None or self._gone:
            return
        if isBinary:
            self._send_frame(
                jsonrpc.error(
                    None,
                    jsonrpc.INVALID_REQUEST,
                    "Invalid request: binary frames are not supported; send JSON-RPC as text frames",
                )
            )
            return
        parsed = jsonrpc.parse_frame(payload)
        if isinstance(parsed, jsonrpc.BadFrame):
            reply = parsed.response()
            if reply is not None:
                self._send_frame(reply)
            return
        methods = self.methods
        self.deliver(lambda: methods.handle(parsed))

    def deliver(self, run: Callable[[], str | None]) -> None:
        """Send the response ``run`` returns before the notifications its work causes
        (docs/contract.md: a notification comes after the response of the request that caused
        it): a request's own, or one that waited on a hook (wcsgw.api.asking.deliver)."""
        self._held = []
        try:
            reply = run()
        finally:
            held, self._held = self._held, None
        if reply is not None:
            self._send_frame(reply)
        for frame in held:
            self._send_frame(frame)

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        if self.session_id is None or self._gone:
            return
        self._gone = True
        log.info(
            "session {session_id} closed (code {code}, clean: {clean})",
            session_id=self.session_id, code=code, clean=wasClean,
        )
        try:
            self.factory.gateway.close_session(self.session_id)
        except Exception:
            log.failure("session {session_id}: close_session failed", session_id=self.session_id)

    def _resumed(self, session_id: str) -> None:
        log.info("session {fresh} resumes session {session_id}", fresh=self.session_id,
                 session_id=session_id)
        self.session_id = session_id

    def gateway_stopped(self) -> None:
        """The gateway is stopping and this session ends with it: a normal close (1000), so
        the Web SDK reports the session ended at once instead of trying to resume it on a
        gateway that will not be there (docs/websocket-api.md)."""
        if self._gone:
            return
        self._gone = True
        try:
            self.sendClose(code=1000, reason="gateway stopped")
        except Exception:  # noqa: BLE001 - a socket already half gone: dropping it is all we want
            self.dropConnection(abort=True)

    def superseded(self) -> None:
        """The session was resumed on another connection: this one hears nothing more and
        is closed; its close does not touch the session."""
        if self._gone:
            return
        self._gone = True
        log.info("session {session_id}: resumed on another connection; closing this one",
                 session_id=self.session_id)
        try:
            self.sendClose(code=RESUMED_ELSEWHERE, reason="resumed elsewhere")
        except Exception:  # noqa: BLE001 - a socket already half gone: dropping it is all we want
            self.dropConnection(abort=True)

    # -- SessionListener ----------------------------------------------------------------------

    def session_status(self, status: str, sip_status: int | None, info: str) -> None:
        """``sessionStatus`` notification (docs/contract.md)."""
        self.notify(
            "sessionStatus",
            {"sessionId": self.session_id, "status": _plain(status), "sipStatus": sip_status,
             "info": info},
        )

    def call_status(self, call: Mapping[str, Any]) -> None:
        """``callStatus`` notification: the call dict as the gateway gives it, written to the
        socket at once (:func:`write_now`)."""
        self.notify("callStatus", {key: _plain(value) for key, value in call.items()})
        if self._held is None and not self._gone:
            write_now(self.transport)

    def notify(self, method: str, params: Mapping[str, Any]) -> None:
        """Any other server -> client notification: ``dtmf`` {callId, dtmf, type} (digits from
        the SIP side), ``transferStatus`` {callId, status, sipStatus}, ``transferRequest``
        {callId, target, timeout} (a far end's REFER put to the browser, answered with the
        method ``answerTransfer``), ``incomingCall``.  Sending never waits on the peer, so
        one session's notification cannot hold up another call.  The
        call layer names the method; values are sent as for ``callStatus`` (enums as their
        strings, bytes as text).  Dropped quietly once the socket is gone."""
        if self._gone:
            return
        try:
            frame = jsonrpc.notification(method, {key: _plain(value) for key, value in params.items()})
        except (TypeError, ValueError, AttributeError):
            log.failure("session {session_id}: {method} notification is not JSON", session_id=self.session_id,
                        method=method)
            return
        if self._held is not None:
            self._held.append(frame)
        else:
            self._send_frame(frame)

    # -- helpers ------------------------------------------------------------------------------

    # Not called _send: that name is autobahn's own send-queue flush, which a method here
    # would silently replace.
    def _send_frame(self, frame: str) -> None:
        try:
            self.sendMessage(frame.encode("utf-8"), isBinary=False)  # type: ignore[no-untyped-call]
        except Disconnected:
            pass  # the close is on its way; onClose tells the gateway


def write_now(transport: Any) -> None:
    """Hand what is queued on a plain TCP transport to the kernel now, not when the reactor
    next finds the socket writable.  Why: a status the browser waits on (the 200 OK's
    ``ESTABLISHED``) would otherwise go out only after every other event of the loop's next
    turn — typically the DTLS handshake of the same call, which the browser starts as soon as
    it has the answer: measured, 1-3 ms of the set-up (docs/performance.md, "Lever: call
    set-up").  It runs the transport's own ``doWrite``, exactly what the reactor would run,
    and only on a connected TCP transport that is not closing (TLS or wrapped transports
    have no ``doWrite`` and keep the reactor's timing); a write error is left for the
    reactor, whose writer stays registered, to find and close the connection as before."""
    do_write = getattr(transport, "doWrite", None)
    if (do_write is None or not getattr(transport, "connected", False)
            or getattr(transport, "disconnecting", True)
            or getattr(transport, "_writeDisconnecting", True)):
        return
    do_write()


def _origin_pattern(origin: str) -> str:
    """An origin as people write it (``https://phone.example.com``) -> Autobahn's pattern, which
    is matched against ``scheme://host:port`` with the port always present."""
    if origin == "*" or origin.count(":") >= 2:
        return origin
    scheme = origin.partition(":")[0].lower()
    return f"{origin}:{443 if scheme == 'https' else 80}"


class GatewaySocketFactory(WebSocketServerFactory):
    """Builds :class:`GatewaySocket`\\ s that share one gateway."""

    protocol = GatewaySocket  # type: ignore[assignment]  # Twisted types protocol for its own factories

    def __init__(
        self,
        gateway: CallGateway,
        *,
        allowed_origins: Sequence[str] = (),
        ping_interval: float = PING_INTERVAL,
        ping_timeout: float = PING_TIMEOUT,
        server_names: Sequence[str] | None = None,
        ice_servers: IceServers | None = None,
    ) -> None:
        """``allowed_origins`` empty (the default): only pages served by this gateway itself
        (the Origin names the Host the browser connected to) and non-browser clients (no
        Origin) may open a session — else any web page a visitor opens could place calls
        through their browser.  ``["*"]`` allows every origin.  ``server_names``
        (``http.server_names``; None: no Host check here): the handshake's Host must be an
        IP literal, ``localhost`` or one of them (:func:`wcsgw.api.front.host_allowed`).
        ``ice_servers`` (``[webrtc] ice_servers``): what each session's ``connect`` hands its
        browser; None: nothing."""
        super().__init__()  # type: ignore[no-untyped-call]
        self.gateway = gateway
        self.ice_servers = ice_servers
        self.server_names = None if server_names is None else tuple(server_names)
        self.same_origin_only = not allowed_origins
        allowed_origins = allowed_origins or ("*",)
        self.setProtocolOptions(  # type: ignore[no-untyped-call]
            maxMessagePayloadSize=MAX_MESSAGE_SIZE,
            maxFramePayloadSize=MAX_MESSAGE_SIZE,
            utf8validateIncoming=False,  # invalid UTF-8 -> -32700 from jsonrpc, not a close
            autoPingInterval=ping_interval,
            autoPingTimeout=ping_timeout,
            openHandshakeTimeout=10,
            allowedOrigins=[_origin_pattern(origin) for origin in allowed_origins],
            # Autobahn's status page for a plain GET would also follow ?redirect= (an open
            # redirect); without it a GET that is not an upgrade is refused with 400.
            webStatus=False,
        )


def make_ws_resource(gateway: CallGateway, **options: Any) -> WebSocketResource:
    """The ``/ws`` resource for the twisted.web site (options: see GatewaySocketFactory)."""
    return WebSocketResource(GatewaySocketFactory(gateway, **options))  # type: ignore[no-untyped-call]
