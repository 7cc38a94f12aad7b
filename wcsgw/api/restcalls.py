"""The operator's call control over REST: one method per ``/call/*`` route, from a checked
body to the call layer and back to a :class:`RestReply`.

The call layer is :class:`~wcsgw.calls.gateway.CallGateway`, used with ``session_id=None``
(the operator may act on any call).  Replies may come back synchronously or as a Deferred;
either way nothing the gateway raises reaches the client as a traceback: a
:class:`~wcsgw.calls.errors.CallError` is mapped to a status (:data:`_STATUS_OF_CODE`),
anything else is logged and answered 500 ``{"error": "internal error"}``.  Why apart from the
HTTP resource (:mod:`wcsgw.api.rest`): this is what a request *means* — the order of the
field checks, the rules between fields, the mapping of the gateway's refusals — testable with a
plain dict, without a request object.

Secrets: ``sipPassword`` is never logged or echoed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

from wcsgw.api import restfields as fields, restrules as rules
from wcsgw.api.restfields import RestError
from wcsgw.api.restops import Attachment, RestOps
from wcsgw.calls.errors import CallError, Codes
from wcsgw.sip.account import SipAccount

__all__ = ["RestApi", "RestReply"]

log = Logger(namespace="wcsgw.rest")


class RestReply:
    """What to send back: status, JSON-able body, extra headers."""

    __slots__ = ("status", "body", "headers")

    def __init__(self, status: int, body: Any, headers: Mapping[bytes, bytes] | None = None) -> None:
        self.status = status
        self.body = body
        self.headers = dict(headers or {})

    @classmethod
    def of_error(cls, error: RestError) -> "RestReply":
        body: dict[str, Any] = {"error": error.message}
        if error.field:
            body["field"] = error.field
        return cls(error.status, body, error.headers)


#: CallError code -> HTTP status.  NOT_CONNECTED is "sessionId names no connected session".
_STATUS_OF_CODE: dict[int, int] = {
    Codes.INVALID: 400,
    Codes.NOT_CONNECTED: 404,
    Codes.DUPLICATE_CALL: 409,
    Codes.UNKNOWN_CALL: 404,
    Codes.FORBIDDEN: 403,
    Codes.NO_CODECS: 400,
    Codes.BAD_STATE: 409,
    Codes.NOT_SUPPORTED: 501,
    # [limits]: the caller should slow down (429), or the gateway is full for now (503)
    Codes.TOO_MANY_CALLS: 429,
    Codes.TOO_MANY_SESSIONS: 429,
    Codes.CALL_RATE: 429,
    Codes.NO_PORTS: 503,
    # the gateway takes no new calls for now: another gateway should be asked
    Codes.DRAINING: 503,
    Codes.OVERLOADED: 503,
}


class RestApi:
    """The REST methods over a gateway.  ``handle(path, body)`` returns a reply (maybe in a
    Deferred); authentication and HTTP framing are
    :class:`~wcsgw.api.rest.RestResource`'s."""

    def __init__(self, gateway: Any, *, media_folder: Path | None = None) -> None:
        self.gateway = gateway
        self.media_folder = media_folder
        self.methods: dict[str, Callable[[dict[str, Any]], Any]] = {
            "/call/startup": self.startup,
            "/call/terminate": self.terminate,
            "/call/find": self.find,
            "/call/find_all": self.find_all,
            "/call/send_dtmf": self.send_dtmf,
            "/call/hold": self.hold,
            "/call/unhold": self.unhold,
            "/call/transfer": self.transfer,
            "/gateway/drain": self.drain,
        }
        #: the operations (records, recordings, ladders, sessions): wcsgw.api.restops
        self.ops = RestOps(gateway)
        self.methods.update(self.ops.methods)

    def handle(self, path: str, body: dict[str, Any], peer: str | None = None) -> defer.Deferred[RestReply]:
        """Run one method; the Deferred fires with a :class:`RestReply` (never errbacks).
        ``peer``: the client's TCP address; ``call/startup`` counts against
        ``limits.calls_per_minute_per_ip`` by it."""
        method = self.methods[path]
        extra = {"peer": peer} if method == self.startup else {}
        d = defer.maybeDeferred(method, body, **extra)
        d.addCallback(lambda value: RestReply(200, value.body, value.headers())
                      if isinstance(value, Attachment) else RestReply(200, value))
        d.addErrback(self._failed, path)
        return d

    def _failed(self, failure: Failure, path: str) -> RestReply:
        exc = failure.value
        if isinstance(exc, RestError):
            return RestReply.of_error(exc)
        if isinstance(exc, CallError):
            status = _STATUS_OF_CODE.get(exc.code, 500)
            if status == 500:
                log.error("rest {path}: unexpected call-layer code {code}: {message}",
                          path=path, code=exc.code, message=exc.message)
                return RestReply(500, {"error": "internal error"})
            field = exc.field
            if field is None and exc.code == Codes.NOT_CONNECTED:
                field = "sessionId"
            message = exc.message
            if field and field not in message:
                message = f"{field}: {message}"
            log.info("rest {path} refused: {status} {message}", path=path, status=status,
                     message=message)
            return RestReply.of_error(RestError(status, message, field))
        # The body is deliberately not logged: it may hold sipPassword.
        log.failure("rest {path} failed inside the gateway", failure, path=path)
        return RestReply(500, {"error": "internal error"})

    # -- methods ------------------------------------------------------------------------------

    def startup(self, body: dict[str, Any], peer: str | None = None) -> Any:
        call_id = fields.call_id(body, required=False)
        callee = fields.string(body, "callee", rules.TOKEN, fields.TOKEN_PROBLEM, required=True,
                               min_length=1)
        login = fields.string(body, "sipLogin", rules.NONBLANK, fields.NONBLANK_PROBLEM,
                              min_length=1)
        auth_name = fields.string(body, "sipAuthenticationName", rules.TEXT, fields.TEXT_PROBLEM)
        password = fields.string(body, "sipPassword", rules.TEXT, fields.TEXT_PROBLEM)
        domain = fields.string(body, "sipDomain", rules.HOST, fields.HOST_PROBLEM, max_length=253,
                               min_length=1)
        proxy = fields.string(body, "sipOutboundProxy", rules.HOST_OR_EMPTY, fields.HOST_PROBLEM,
                              max_length=253)
        port = fields.port(body, "sipPort", 0)  # 0: the transport's default (5061 for tls)
        transport = (fields.choice(body, "sipTransport", rules.TRANSPORTS) or "udp").lower()
        register = fields.flag(body, "sipRegisterRequired", False)
        srtp = fields.choice(body, "sipSrtp", rules.SRTP_POLICIES)
        visible_name = fields.string(body, "visibleName", rules.TEXT, fields.TEXT_PROBLEM)
        has_audio = fields.flag(body, "hasAudio", True)
        has_video = fields.flag(body, "hasVideo", False)
        session_id = fields.ident(body, "sessionId", required=False)
        play_name = fields.string(body, "playFile", rules.PLAY_FILE,
                                  "must be a file name or relative path under the media folder",
                                  max_length=rules.MAX_PATH, min_length=1)
        if play_name is not None and fields.matches(rules.PLAY_FILE_FORBIDDEN, play_name):
            raise fields.bad("playFile", 'must not contain ".." segments')
        record = fields.flag(body, "record", False)
        held = fields.string(body, "account", rules.ACCOUNT_NAME, "must be the name of a "
                             "server-held account ([[accounts]] name)", min_length=1,
                             max_length=64)
        if held is not None and (domain is not None or login is not None):
            raise fields.bad("account", "cannot be used with sipLogin or sipDomain (the "
                             "server-held account brings its own)")
        if domain is not None and login is None:
            raise fields.bad("sipLogin", "is required with sipDomain")
        if held is not None and srtp:
            raise fields.bad("sipSrtp", "cannot be used with account (the server-held account "
                             "brings its own srtp)")
        if not has_audio and not has_video:
            raise fields.bad("hasAudio", "must be true when hasVideo is false (a call needs media)")
        if session_id is not None and play_name is not None:
            raise fields.bad("playFile",
                             "cannot be used with sessionId (the session carries the media)")
        if session_id is not None and record:
            raise fields.bad("record",
                             "cannot be used with sessionId (the session carries the media)")
        play_file = None
        if play_name is not None:
            play_file = str(fields.resolve_play_file(self.media_folder, play_name))
        if record and getattr(self.gateway, "recordings", None) is None:
            raise fields.bad("record", "cannot be used: recording is not configured")

        account = None
        if domain is not None:
            assert login is not None
            try:
                account = SipAccount(
                    login=login.strip(), auth_name=(auth_name or "").strip() or None,
                    password=password or "", domain=domain.strip("[]"),
                    outbound_proxy=(proxy or "").strip("[]") or None, port=port,
                    transport=transport, register=register, display_name=visible_name or None,
                    srtp=srtp or "off",
                )
            except ValueError as exc:  # the schema's rules should make this unreachable
                raise fields.bad("sipDomain", f"does not make a SIP account: {exc}") from None
        if held is not None:
            if held not in self.gateway.accounts:
                known = ", ".join(sorted(self.gateway.accounts)) or "none are configured"
                raise fields.bad("account", f"names no server-held account (known: {known})")
            account = self.gateway.accounts.named(held)
        log.info("rest startup: call {callee} as {aor} (session {session_id}, play {play}, "
                 "record {record})", callee=callee, aor=account.aor() if account else "test lines",
                 session_id=session_id, play=play_name, record=record)
        d = defer.maybeDeferred(
            self.gateway.startup, call_id=call_id, callee=callee, account=account,
            register=register, visible_name=visible_name or None, has_audio=has_audio,
            has_video=has_video, session_id=session_id, play_file=play_file, record=record,
            peer=peer)
        return d.addCallback(lambda returned: {"callId": str(returned)})

    def terminate(self, body: dict[str, Any]) -> Any:
        call_id = fields.call_id(body)
        return defer.maybeDeferred(self.gateway.terminate, call_id).addCallback(lambda _: {})

    def find(self, body: dict[str, Any]) -> Any:
        filters: dict[str, str] = {}
        for field in body:
            if field not in ("callId", "status", "caller", "callee", "sessionId"):
                raise fields.bad(field,
                                 "is not a filter (callId, status, caller, callee, sessionId)")
        if "callId" in body:
            filters["callId"] = fields.call_id(body) or ""
        status = fields.choice(body, "status", rules.STATUSES)
        if status is not None:
            filters["status"] = status
        for field, limit in (("caller", rules.MAX_TEXT), ("callee", rules.MAX_TEXT),
                             ("sessionId", rules.MAX_CALL_ID)):
            value = fields.string(body, field, rules.TEXT, fields.TEXT_PROBLEM, max_length=limit)
            if value is not None:
                filters[field] = value

        def found(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
            if not calls:
                raise RestError(404, "no call matches the filters")
            return list(calls)

        return defer.maybeDeferred(self.gateway.find, filters).addCallback(found)

    def find_all(self, body: dict[str, Any]) -> Any:
        return defer.maybeDeferred(self.gateway.find_all).addCallback(list)

    def send_dtmf(self, body: dict[str, Any]) -> Any:
        call_id = fields.call_id(body)
        dtmf = fields.string(body, "dtmf", rules.DTMF, "must be 1 to 64 of the digits 0-9 * # A-D",
                             required=True)
        kind = fields.choice(body, "type", rules.DTMF_TYPES) or "RFC2833"
        assert dtmf is not None
        return defer.maybeDeferred(self.gateway.send_dtmf, None, call_id, dtmf.upper(),
                                   kind).addCallback(lambda _: {})

    def hold(self, body: dict[str, Any]) -> Any:
        call_id = fields.call_id(body)
        return defer.maybeDeferred(self.gateway.hold, None, call_id).addCallback(lambda _: {})

    def unhold(self, body: dict[str, Any]) -> Any:
        call_id = fields.call_id(body)
        return defer.maybeDeferred(self.gateway.unhold, None, call_id).addCallback(lambda _: {})

    def transfer(self, body: dict[str, Any]) -> Any:
        call_id = fields.call_id(body)
        target = fields.string(body, "target", rules.TOKEN, fields.TOKEN_PROBLEM, required=True,
                               min_length=1)
        return defer.maybeDeferred(self.gateway.transfer, None, call_id,
                                   target).addCallback(lambda _: {})

    def drain(self, body: dict[str, Any]) -> Any:
        """Stop taking new sessions and calls, let the live calls finish (at most
        ``limits.drain_seconds``), then stop the process — as the first SIGTERM does.  Asking
        again changes nothing and says how far it got."""
        for field in body:
            raise fields.bad(str(field)[:64], "is not a field of gateway/drain (send {})")
        drain = getattr(self.gateway, "drain", None)
        if drain is None:
            raise RestError(501, "this gateway cannot drain")
        log.info("rest gateway/drain")
        return defer.maybeDeferred(drain.begin, "REST gateway/drain")
