"""Errors the call layer reports to API clients: a stable code (>= 1000, JSON-RPC application
range), a message a person can read, and the request field at fault when there is one."""

from __future__ import annotations


class Codes:
    INVALID = 1000  # a parameter has a value the gateway cannot use
    NOT_CONNECTED = 1001  # call before connect
    DUPLICATE_CALL = 1002  # callId already in use
    UNKNOWN_CALL = 1003  # no such call (or not this session's)
    FORBIDDEN = 1004  # policy: destination or server not allowed
    NO_CODECS = 1005  # the offer has nothing the gateway can bridge
    BAD_STATE = 1006  # the call cannot do that now (e.g. hangup after the end)
    # [limits]: each refusal names the setting (REST: 429 for the first three, 503 for ports)
    TOO_MANY_CALLS = 1007  # limits.calls_per_session live calls already (incoming: 486)
    TOO_MANY_SESSIONS = 1008  # limits.sessions_per_ip or limits.max_sessions reached
    CALL_RATE = 1009  # limits.calls_per_minute_per_ip calls from this address in 60 s
    NO_PORTS = 1010  # no media ports free (or only the reserve, limits.port_reserve)
    # the gateway takes no new work for now (REST 503, SIP 503 with Retry-After)
    DRAINING = 1011  # "Gateway draining": sessions and calls refused until it restarts
    OVERLOADED = 1012  # "Gateway overloaded": calls refused while the event loop lags
    # session resume (docs/websocket-api.md): connect {authToken} with a token that is not
    # (or no longer) good: unknown, used once already, disconnected, or its resume window over
    SESSION_EXPIRED = 1013  # "Session expired or unknown authToken", field authToken
    NOT_SUPPORTED = 1099  # a docs/contract.md method not implemented yet


class CallError(Exception):
    def __init__(self, code: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
