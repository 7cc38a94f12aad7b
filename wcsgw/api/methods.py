"""The JSON-RPC methods of one browser session: check params, call the gateway, shape replies.

Why this sits between the WebSocket and the call layer: docs/contract.md fixes the wire names
(``sipLogin``, ``callee``, ``hasAudio``...) and says every bad input gets a precise error
(-32602 with ``data.field``); the call layer wants typed Python arguments and raises
:class:`~wcsgw.calls.gateway.CallError` for application failures.  This module is the
translation, and it is sans-IO: :meth:`SessionMethods.handle` takes a parsed
:class:`~wcsgw.api.jsonrpc.Request` and returns the response frame (or None for a client
notification), so every rule is unit-tested without a socket.

Validation is strict about types (``hasAudio: "yes"`` is an error, not true) and about
characters that could change the meaning of a SIP message (CR, LF and other control
characters in anything that ends up in a header), and liberal about *extra* params: WCS-style
SDKs send fields we do not use (``mediaProviders``, ``clientVersion``...) and those are ignored.

With ``[[apps]]`` (docs/hooks.md), ``connect`` and ``call`` first ask the session's app
(:mod:`wcsgw.api.asking`): the method then returns a Deferred of the rest of its work, and
:meth:`SessionMethods.handle` answers once the backend replied — only that request waits.

Session resume (docs/websocket-api.md, "Resuming a session"): ``connect`` hands out an
``authToken``; ``connect {authToken}`` on a new socket takes the session over
(:meth:`wcsgw.calls.gateway.CallGateway.resume`), and this object then speaks for that
session.  ``ping`` answers ``{}`` so that a browser can find out its socket is dead.

Secrets: ``sipPassword`` is never logged, never echoed in an error, and never kept here beyond
building the :class:`~wcsgw.sip.account.SipAccount` (whose ``repr`` masks it).  The
``iceServers`` of ``connect`` carry TURN credentials minted for the session
(:mod:`wcsgw.api.iceservers`), never the shared secret they are minted from, and are not logged.
Nor is an ``authToken``, in either direction.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet import defer
from twisted.logger import Logger

from wcsgw.api import asking, jsonrpc
from wcsgw.api.callmethods import CallMethods
from wcsgw.api.iceservers import IceServers
from wcsgw.api.jsonrpc import Request
from wcsgw.api.messagemethods import MessageMethods
from wcsgw.api.params import (
    _MAX_SDP,
    ParamError,
    _boolean,
    _choice,
    _host,
    _object,
    _port,
    _sip_headers,
    _string,
    describe_type,
)
from wcsgw.calls.errors import Codes
from wcsgw.calls.gateway import CallError, CallGateway
from wcsgw.calls.hooks.runtime import App
from wcsgw.calls.hooks.taps import HookTap
from wcsgw.calls.ids import id_problem
from wcsgw.sip.account import SRTP_POLICIES, SipAccount

__all__ = ["METHODS", "ParamError", "SessionMethods", "describe_type"]

log = Logger()



def _refusal(text: str, field: str | None) -> Callable[[], Any]:
    """The rest of a refused resume, once the cluster said why (``SessionMethods._resume``)."""
    def then() -> Any:
        raise CallError(Codes.SESSION_EXPIRED, text, field)
    return then


class SessionMethods(CallMethods, MessageMethods):
    """The methods one WebSocket session can call.  Holds the gateway and the session id the
    transport assigned; no state of its own (the call layer owns calls and registrations).

    ``ice_servers``: the ``[webrtc] ice_servers`` that ``connect`` hands the browser (the
    WebSocket factory's, wcsgw.api.ws); None: none."""

    def __init__(self, gateway: CallGateway, session_id: str,
                 ice_servers: IceServers | None = None) -> None:
        self.gateway = gateway
        self.session_id = session_id
        self.ice_servers = ice_servers
        #: the session's ``[[apps]]`` entry once it connected under one (None: no hooks)
        self.app: App | None = None
        self._asking = False  # a connect waits on its hook
        #: told the session id this socket speaks for after a resume, before anything is
        #: sent under it (the WebSocket's notifications carry it)
        self.on_resumed: Callable[[str], None] = lambda session_id: None
        self._table: dict[str, Callable[[dict[str, Any]], Any]] = {
            "connect": self._connect,
            "disconnect": self._disconnect,
            "call": self._call,
            "hangup": self._hangup,
            "answer": self._answer,
            "hold": self._hold,
            "unhold": self._unhold,
            "transfer": self._transfer,
            "sendDtmf": self._send_dtmf,
            "answerTransfer": self._answer_transfer,
            "restartIce": self._restart_ice,
            "record": self._record,
            "stopRecording": self._stop_recording,
            "sendMessage": self._send_message,
            "ping": self._ping,
        }

    def handle(self, request: Request) -> str | None:
        """Run one request; returns the response frame (None for a client notification, or
        for a request waiting on a hook: its response is delivered when the backend answers,
        :func:`wcsgw.api.asking.deliver`).  Never raises: an unexpected exception from the
        call layer is logged and answered -32603 so one bug cannot take the session (or
        other sessions) down."""
        method = self._table.get(request.method)
        if method is None:
            return request.error(
                jsonrpc.METHOD_NOT_FOUND,
                f"Method not found: {request.method[:64]}",
                {"method": request.method[:64]},
            )
        ladders = getattr(self.gateway, "ladders", None)
        if ladders is not None:  # the browser's arrows of the call's SIP ladder
            ladders.browser_request(self.session_id, request.method, request.params)
        return self._run(request, lambda: method(request.params))

    def _run(self, request: Request, work: Callable[[], Any]) -> str | None:
        try:
            value = work()
        except ParamError as e:
            return request.error(
                jsonrpc.INVALID_PARAMS, f"Invalid params: {e.field} {e.problem}", {"field": e.field}
            )
        except CallError as e:
            code = int(getattr(e, "code", 1000))
            message = str(getattr(e, "message", "") or e)
            field = getattr(e, "field", None)
            log.info(
                "session {session_id}: {method} refused: {code} {reason}",
                session_id=self.session_id, method=request.method, code=code, reason=message,
            )
            return request.error(code, message, {"field": field} if field else None)
        except Exception:
            # Params are deliberately not part of this event: they may hold sipPassword.
            log.failure(
                "session {session_id}: {method} failed inside the gateway",
                session_id=self.session_id, method=request.method,
            )
            return request.error(jsonrpc.INTERNAL_ERROR, "Internal error")
        if isinstance(value, defer.Deferred):
            # A decision hook: the backend's answer is the rest of the work (a callable).
            value.addCallback(lambda then: asking.deliver(
                self.gateway, self.session_id, lambda: self._run(request, then)))
            value.addErrback(lambda f: log.failure("session {session_id}: delivering a reply",
                                                   f, session_id=self.session_id))
            return None
        return request.result(value)

    # -- implemented methods ------------------------------------------------------------------

    def _read_account(self, params: dict[str, Any]) -> tuple[SipAccount | None, bool]:
        """The SIP account of ``connect`` params (None: the test lines) and whether to
        register; every bad param a :class:`ParamError` naming it."""
        domain = _host(params, "sipDomain")
        login = _string(params, "sipLogin", required=bool(domain))
        auth_name = _string(params, "sipAuthenticationName")
        password = _string(params, "sipPassword")
        proxy = _host(params, "sipOutboundProxy")
        port = _port(params, "sipPort", 0)  # 0: the transport's default (5061 for tls)
        transport = _choice(params, "sipTransport", ("udp", "tcp", "tls"), "udp")
        register = _boolean(params, "sipRegisterRequired", True)
        srtp = _choice(params, "sipSrtp", SRTP_POLICIES, "off")  # docs/call-control.md
        display = _string(params, "sipVisibleName").strip()  # WCS: the calls' default From name
        _object(params, "custom")
        if not domain:
            return None, False
        return SipAccount(
            login=login.strip(),
            auth_name=auth_name.strip() or None,
            password=password,
            domain=domain,
            outbound_proxy=proxy or None,
            port=port,
            transport=transport,
            register=register,
            srtp=srtp,
            display_name=display or None,
        ), register

    def _connect(self, params: dict[str, Any]) -> Any:
        if "authToken" in params:
            return self._resume(params)
        app = asking.app_for(self.gateway, _string(params, "appKey"))
        account, register = self._read_account(params)  # the browser's own values first
        if app is None:
            return self._connect_as(account, register, None)
        if self.app is not None or self._asking:
            raise CallError(1006, "already connected; disconnect first")
        self._asking = True

        def decided(decision: Any) -> Callable[[], Any]:
            self._asking = False
            return lambda: self._connect_as(*asking.connect_change(
                self, params, decision), app)

        return asking.ask(self.gateway, app, "connect", self.session_id,
                          asking.connect_fields(params)).addCallback(decided)

    def _connect_as(self, account: SipAccount | str | None, register: bool,
                    app: App | None) -> dict[str, Any]:
        """Connect with ``account`` (a server-held account's name: bound by name), the
        session's listener tapped for ``app``'s notices first so the backend hears
        ``ESTABLISHED`` too."""
        if isinstance(account, SipAccount):
            log.info(
                "session {session_id}: connect as {aor} via {transport} (register: {register})",
                session_id=self.session_id, aor=account.aor(), transport=account.transport,
                register=register,
            )
        elif account is None:
            log.info("session {session_id}: connect to the built-in test lines", session_id=self.session_id)
        untap = asking.tap(self.gateway, self.session_id, app)
        try:
            if isinstance(account, str):
                log.info("session {session_id}: connect on the server-held account {name}",
                         session_id=self.session_id, name=account)
                self.gateway.connect_named(self.session_id, account)
            else:
                self.gateway.connect(self.session_id, account, register if account else False)
        except BaseException:
            untap()
            raise
        self.app = app
        return self._connected(self.gateway.auth_token(self.session_id))

    def _connected(self, token: str) -> dict[str, Any]:
        result: dict[str, Any] = {"sessionId": self.session_id, "authToken": token,
                                  "resumeSeconds": self.gateway.resume_seconds}
        if self.ice_servers:
            # Minted once the gateway took the session: a refused connect hands out nothing.
            result["iceServers"] = self.ice_servers.for_session(self.session_id)
        return result

    def _resume(self, params: dict[str, Any]) -> Any:
        """``connect {authToken}``: this socket takes over the session the token belongs to
        (its fresh session, never connected, is dropped); the reply, then what the session
        missed and its current state, follow (wcsgw.calls.resuming)."""
        extra = sorted(name for name in params if name != "authToken")
        if extra:
            raise ParamError(extra[0], "must not be sent with authToken (a resume takes "
                                       "only the token)")
        token = _string(params, "authToken", required=True, max_len=128)

        def adopt(session_id: str) -> None:
            self.session_id = session_id
            self.on_resumed(session_id)

        try:
            _session_id, new_token = self.gateway.resume(self.session_id, token, adopt)
        except CallError as refused:
            cluster = getattr(self.gateway, "cluster", None)
            if cluster is None or refused.code != Codes.SESSION_EXPIRED:
                raise
            # In a cluster the session may be on another node, or lost with one: the refusal
            # says which (wcsgw.cluster.resumes), never the token.
            return cluster.resume_refusal(token).addCallback(_refusal, refused.field)
        session = self.gateway.sessions.get(self.session_id)
        listener = getattr(session, "listener", None)
        self.app = listener.app if isinstance(listener, HookTap) else None
        return {**self._connected(new_token), "resumed": True}

    def _ping(self, params: dict[str, Any]) -> dict[str, Any]:
        """Keep-alive from the browser's side: an answer proves the socket works."""
        return {}

    def _disconnect(self, params: dict[str, Any]) -> dict[str, Any]:
        self.gateway.disconnect(self.session_id)
        if self.app is not None:
            asking.untap(self.gateway, self.session_id)
            self.app = None
        return {}

    def _call(self, params: dict[str, Any]) -> Any:
        call_id = params.get("callId") or None  # absent, null or "": the gateway picks one
        if call_id is not None:
            problem = id_problem(call_id)  # a registry key: the one id shape (calls/ids.py)
            if problem is not None:
                raise ParamError("callId", problem)
        callee = _string(params, "callee", required=True).strip()
        visible_name = _string(params, "visibleName") or None
        has_audio = _boolean(params, "hasAudio", True)
        has_video = _boolean(params, "hasVideo", False)
        if not (has_audio or has_video):
            raise ParamError("hasAudio", "must be true when hasVideo is false (a call needs media)")
        sdp = _string(params, "sdp", required=True, max_len=_MAX_SDP, multiline=True)
        args: dict[str, Any] = {
            "call_id": call_id, "callee": callee, "visible_name": visible_name,
            "has_audio": has_audio, "has_video": has_video, "sdp": sdp,
            "sip_headers": _sip_headers(params, self.gateway.policy),
        }
        if self.app is None:
            return {"callId": self.gateway.call(self.session_id, **args)}
        session_id = self.session_id
        args["call_id"] = asking.call_id_for(self.gateway, call_id)

        def decided(decision: Any) -> Callable[[], Any]:
            def then() -> dict[str, Any]:
                changed = asking.call_change(self.gateway, args, decision)
                record = changed.pop("record", False)
                call_id = self.gateway.call(session_id, **changed)
                if record:  # the hook's reply: record this call (from its answer)
                    asking.record_asked(self.gateway, session_id, call_id)
                return {"callId": call_id}
            return then

        return asking.ask(self.gateway, self.app, "call", self.session_id,
                          asking.call_fields(self.gateway, self.session_id, args)
                          ).addCallback(decided)


#: Methods a session answers: all of docs/contract.md's.
METHODS = ("connect", "disconnect", "call", "hangup", "answer", "hold", "unhold", "transfer", "sendDtmf",
           "answerTransfer", "ping", "restartIce", "record", "stopRecording", "sendMessage")
