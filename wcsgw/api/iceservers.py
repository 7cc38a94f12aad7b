"""The ``iceServers`` of a ``connect`` result (docs/contract.md): the STUN/TURN servers of
``[webrtc] ice_servers`` as ``RTCIceServer`` dictionaries, with TURN credentials minted for
the session.

Why minted: a TURN server open to anyone is an open relay, and a fixed password handed to
every browser is public the moment one page loads.  The TURN REST API scheme (coturn's
``use-auth-secret``; draft-uberti-behave-turn-rest) shares one secret between the gateway
and the TURN server instead: the gateway gives each session the username
``"<unix expiry>:<session id>"`` and the credential ``base64(HMAC-SHA1(secret, username))``;
the TURN server recomputes the credential from the username with the same secret and refuses
it after the expiry.  So a credential is good for one session's lifetime (``ttl``) and tells
nothing about the secret, which never leaves the gateway and is never logged.

Sans-IO: :func:`ice_servers_for` takes the servers, the session id and ``now`` (Unix
seconds) and returns plain dictionaries; nothing here reads a clock or the config.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any, Callable, Protocol, Sequence

__all__ = ["IceServerLike", "IceServers", "ice_servers_for", "turn_credential",
           "turn_username"]


class IceServerLike(Protocol):
    """What is read of a configured server (:class:`wcsgw.config.IceServer`)."""

    @property
    def urls(self) -> tuple[str, ...]: ...
    @property
    def username(self) -> str: ...
    @property
    def credential(self) -> str: ...
    @property
    def secret(self) -> str: ...
    @property
    def ttl(self) -> int: ...


def turn_username(session_id: str, now: float, ttl: int) -> str:
    """``"<unix expiry>:<session id>"``: coturn reads the expiry before the colon."""
    return f"{int(now) + ttl}:{session_id}"


def turn_credential(secret: str, username: str) -> str:
    """``base64(HMAC-SHA1(secret, username))``, as coturn computes it for ``use-auth-secret``."""
    digest = hmac.new(secret.encode("utf-8"), username.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def _entry(server: IceServerLike, session_id: str, now: float) -> dict[str, Any]:
    entry: dict[str, Any] = {"urls": list(server.urls)}
    if server.secret:
        username = turn_username(session_id, now, server.ttl)
        entry["username"] = username
        entry["credential"] = turn_credential(server.secret, username)
    elif server.username:
        entry["username"] = server.username
        entry["credential"] = server.credential
    return entry


def ice_servers_for(servers: Sequence[IceServerLike], session_id: str,
                    now: float) -> list[dict[str, Any]]:
    """The ``RTCIceServer`` list for one session at ``now`` (Unix seconds)."""
    return [_entry(server, session_id, now) for server in servers]


class IceServers:
    """The configured servers and the wall clock, for the API layer: one object the service
    builds from ``[webrtc]`` and the session methods ask (``for_session``).  The clock is Unix
    time because the TURN server compares the expiry with its own wall clock."""

    def __init__(self, servers: Sequence[IceServerLike], clock: Callable[[], float]) -> None:
        self.servers = tuple(servers)
        self.clock = clock

    def __bool__(self) -> bool:
        return bool(self.servers)

    def __repr__(self) -> str:
        # The servers' own repr masks secrets; the count is all a log line needs.
        return f"IceServers({len(self.servers)} configured)"

    def for_session(self, session_id: str) -> list[dict[str, Any]]:
        return ice_servers_for(self.servers, session_id, self.clock())
