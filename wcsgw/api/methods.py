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

Secrets: ``sipPassword`` is never logged, never echoed in an error, and never kept here beyond
building the :class:`~wcsgw.sip.account.SipAccount` (whose ``repr`` masks it).  The
``iceServers`` of ``connect`` carry TURN credentials minted for the session
(:mod:`wcsgw.api.iceservers`), never the shared secret they are minted from, and are not logged.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Callable, Mapping, cast

from twisted.logger import Logger

from wcsgw.api import jsonrpc
from wcsgw.api.iceservers import IceServers
from wcsgw.api.jsonrpc import Request
from wcsgw.calls.gateway import CallError, CallGateway
from wcsgw.calls.ids import id_problem
from wcsgw.sip.account import SipAccount

__all__ = [
    "METHODS",
    "ParamError",
    "SessionMethods",
]

log = Logger()

_MAX_NAME = 256  # logins, domains, callees, header values: generous, but bounded
_MAX_SDP = 128 * 1024  # an audio+video offer from Chrome is ~5-15 KB
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$"
)
_MAX_DTMF = 32  # digits per sendDtmf: a PIN or a menu path, not a tone-dialled novel
_DTMF = re.compile(rf"^[0-9*#A-Da-d]{{1,{_MAX_DTMF}}}$")


class ParamError(Exception):
    """A param is missing or wrong: answered -32602 with ``data.field``."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field} {problem}")
        self.field = field
        self.problem = problem


# ---------------------------------------------------------------------------------------------
# Param readers: each takes the params object and a name and returns the typed value or raises
# ParamError naming the field.


def describe_type(value: Any) -> str:
    """A JSON value's type in words, for errors that name what was sent (JSON-RPC, REST)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _string(
    params: Mapping[str, Any],
    name: str,
    *,
    required: bool = False,
    max_len: int = _MAX_NAME,
    multiline: bool = False,
) -> str:
    """A string param; absent or null is "" (an error when ``required``, as is "")."""
    value = params.get(name)
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ParamError(name, f"must be a string, got {describe_type(value)}")
    if len(value) > max_len:
        raise ParamError(name, f"is too long (at most {max_len} characters)")
    if not multiline and _CONTROL.search(value):
        raise ParamError(name, "must not contain control characters (CR, LF, ...)")
    if required and not value.strip():
        raise ParamError(name, "is required")
    return value


def _boolean(params: Mapping[str, Any], name: str, default: bool) -> bool:
    value = params.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ParamError(name, f"must be true or false, got {describe_type(value)}")
    return value


def _port(params: Mapping[str, Any], name: str, default: int) -> int:
    """A port as a number, or as decimal text (HTML form fields give text); "" is the default."""
    value = params.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParamError(name, f"must be a port number, got {describe_type(value)}")
    if not 1 <= value <= 65535:
        raise ParamError(name, f"must be from 1 to 65535, got {value}")
    return value


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


def _host(params: Mapping[str, Any], name: str) -> str:
    """A host name or IP address (IPv6 with or without brackets), or "".

    No ``:port``: docs/contract.md puts the port in ``sipPort`` and the policy compares bare
    hosts, so ``pbx.example.com:5070`` is refused with a message saying where the port goes.
    """
    text = _string(params, name).strip()
    if not text:
        return ""
    bare = text[1:-1] if text.startswith("[") and text.endswith("]") and ":" in text else text
    if _is_ip(bare) or _HOSTNAME.match(bare):
        return bare
    hint = " (the port goes in sipPort)" if re.search(r":\d*$", text) else ""
    raise ParamError(name, "must be a host name or IP address" + hint)


def _choice(params: Mapping[str, Any], name: str, choices: tuple[str, ...], default: str) -> str:
    value = params.get(name)
    if value is None or value == "":
        return default
    if not isinstance(value, str) or value.lower() not in [c.lower() for c in choices]:
        raise ParamError(name, f"must be one of {', '.join(choices)}")
    return next(c for c in choices if c.lower() == value.lower())


def _object(params: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = params.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ParamError(name, f"must be an object, got {describe_type(value)}")
    return value


def _sip_headers(params: Mapping[str, Any], policy: Any, name: str = "sipHeaders") -> dict[str, str]:
    """Extra SIP headers for the INVITE, checked by the gateway's outbound policy
    (:meth:`wcsgw.calls.policy.Policy.outgoing_headers`: the one place that decides what
    leaves the gateway — allow-list, no routing or identity headers, one-line values); a
    refusal is -32602 naming ``sipHeaders.<name>``."""
    headers = _object(params, name)
    try:
        return cast("dict[str, str]", policy.outgoing_headers(headers, name))
    except CallError as e:
        field = e.field or name
        problem = e.message[len(field):].strip() if e.message.startswith(field) else e.message
        raise ParamError(field, problem) from None


def _call_id(params: Mapping[str, Any]) -> str:
    """The ``callId`` of an existing call (required; whether it is this session's call is the
    gateway's check: 1003 otherwise)."""
    return _string(params, "callId", required=True, max_len=128)


# ---------------------------------------------------------------------------------------------


class SessionMethods:
    """The methods one WebSocket session can call.  Holds the gateway and the session id the
    transport assigned; no state of its own (the call layer owns calls and registrations).

    ``ice_servers``: the ``[webrtc] ice_servers`` that ``connect`` hands the browser (the
    WebSocket factory's, wcsgw.api.ws); None: none."""

    def __init__(self, gateway: CallGateway, session_id: str,
                 ice_servers: IceServers | None = None) -> None:
        self.gateway = gateway
        self.session_id = session_id
        self.ice_servers = ice_servers
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
        }

    def handle(self, request: Request) -> str | None:
        """Run one request; returns the response frame (None for a client notification).
        Never raises: an unexpected exception from the call layer is logged and answered -32603
        so one bug cannot take the session (or other sessions) down."""
        method = self._table.get(request.method)
        if method is None:
            return request.error(
                jsonrpc.METHOD_NOT_FOUND,
                f"Method not found: {request.method[:64]}",
                {"method": request.method[:64]},
            )
        try:
            value = method(request.params)
        except ParamError as e:
            return request.error(
                jsonrpc.INVALID_PARAMS, f"Invalid params: {e.field} {e.problem}", {"field": e.field}
            )
        except CallError as e:
            code = int(getattr(e, "code", 1000))
            message = str(getattr(e, "message", "") or e)
            field = getattr(e, "field", None)
            log.info(
                "session {session}: {method} refused: {code} {reason}",
                session=self.session_id, method=request.method, code=code, reason=message,
            )
            return request.error(code, message, {"field": field} if field else None)
        except Exception:
            # Params are deliberately not part of this event: they may hold sipPassword.
            log.failure(
                "session {session}: {method} failed inside the gateway",
                session=self.session_id, method=request.method,
            )
            return request.error(jsonrpc.INTERNAL_ERROR, "Internal error")
        return request.result(value)

    # -- implemented methods ------------------------------------------------------------------

    def _connect(self, params: dict[str, Any]) -> dict[str, Any]:
        domain = _host(params, "sipDomain")
        login = _string(params, "sipLogin", required=bool(domain))
        auth_name = _string(params, "sipAuthenticationName")
        password = _string(params, "sipPassword")
        proxy = _host(params, "sipOutboundProxy")
        port = _port(params, "sipPort", 5060)
        transport = _choice(params, "sipTransport", ("udp", "tcp"), "udp")
        register = _boolean(params, "sipRegisterRequired", True)
        _string(params, "appKey")  # accepted for WCS compatibility; no REST hooks yet
        _object(params, "custom")
        account: SipAccount | None = None
        if domain:
            account = SipAccount(
                login=login.strip(),
                auth_name=auth_name.strip() or None,
                password=password,
                domain=domain,
                outbound_proxy=proxy or None,
                port=port,
                transport=transport,
                register=register,
            )
            log.info(
                "session {session}: connect as {aor} via {transport} (register: {register})",
                session=self.session_id, aor=account.aor(), transport=transport, register=register,
            )
        else:
            log.info("session {session}: connect to the built-in test lines", session=self.session_id)
        self.gateway.connect(self.session_id, account, register if account else False)
        result: dict[str, Any] = {"sessionId": self.session_id}
        if self.ice_servers:
            # Minted once the gateway took the session: a refused connect hands out nothing.
            result["iceServers"] = self.ice_servers.for_session(self.session_id)
        return result

    def _disconnect(self, params: dict[str, Any]) -> dict[str, Any]:
        self.gateway.disconnect(self.session_id)
        return {}

    def _call(self, params: dict[str, Any]) -> dict[str, Any]:
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
        headers = _sip_headers(params, self.gateway.policy)
        returned = self.gateway.call(
            self.session_id,
            call_id=call_id,
            callee=callee,
            visible_name=visible_name,
            has_audio=has_audio,
            has_video=has_video,
            sdp=sdp,
            sip_headers=headers,
        )
        return {"callId": returned}

    def _hangup(self, params: dict[str, Any]) -> dict[str, Any]:
        self.gateway.hangup(self.session_id, _call_id(params))
        return {}

    def _answer(self, params: dict[str, Any]) -> dict[str, Any]:
        call_id = _call_id(params)
        sdp = _string(params, "sdp", required=True, max_len=_MAX_SDP, multiline=True)
        # Checked like the INVITE's, but not used yet: the call layer's 200 OK has no extras.
        _sip_headers(params, self.gateway.policy)
        self.gateway.answer(self.session_id, call_id, sdp)
        return {}

    def _hold(self, params: dict[str, Any]) -> dict[str, Any]:
        self.gateway.hold(self.session_id, _call_id(params))
        return {}

    def _unhold(self, params: dict[str, Any]) -> dict[str, Any]:
        self.gateway.unhold(self.session_id, _call_id(params))
        return {}

    def _transfer(self, params: dict[str, Any]) -> dict[str, Any]:
        call_id = _call_id(params)
        # A user part or URI (blind) or another callId of this session (attended): which one it
        # is, and whether the destination is allowed, is the call layer's decision.
        target = _string(params, "target", required=True).strip()
        self.gateway.transfer(self.session_id, call_id, target)
        return {}

    def _answer_transfer(self, params: dict[str, Any]) -> dict[str, Any]:
        """The answer to a ``transferRequest`` notification: ``accept`` true lets the far
        end's REFER proceed, false declines it (603).  ``accept`` is required: a browser that
        forgot it must not transfer the call by default."""
        call_id = _call_id(params)
        if params.get("accept") is None:
            raise ParamError("accept", "is required (true or false)")
        accept = _boolean(params, "accept", False)
        self.gateway.answer_transfer(self.session_id, call_id, accept)
        return {}

    def _send_dtmf(self, params: dict[str, Any]) -> dict[str, Any]:
        call_id = _call_id(params)
        dtmf = _string(params, "dtmf", required=True)
        if not _DTMF.match(dtmf):
            raise ParamError("dtmf", f"must be 1 to {_MAX_DTMF} of the digits 0-9 * # A-D")
        dtmf_type = _choice(params, "type", ("RFC2833", "INFO"), "RFC2833")
        # a-d are taken as A-D: RFC 4733 events 12-15 and the INFO "Signal=" value are upper case.
        self.gateway.send_dtmf(self.session_id, call_id, dtmf.upper(), dtmf_type)
        return {}



#: Methods a session answers: all of docs/contract.md's.
METHODS = ("connect", "disconnect", "call", "hangup", "answer", "hold", "unhold", "transfer", "sendDtmf",
           "answerTransfer")
