"""The check of ``[webrtc] ice_servers``: the STUN/TURN servers browsers are told to use.

Why a module of its own: an entry is a table with rules between its keys (a ``turn:`` URL
needs credentials, ``secret`` excludes a fixed ``username``/``credential``, ``ttl`` goes with
``secret``), unlike the one-value checks of :mod:`wcsgw.config.checks`.  And it holds secrets:
no message here ever shows the value of ``secret`` or ``credential`` (nor a whole entry, which
would show them), only the key that is wrong.
"""

from __future__ import annotations

import re
from typing import Any

from wcsgw.config.checks import show
from wcsgw.config.errors import ConfigError
from wcsgw.config.settings import IceServer

__all__ = ["ICE_URL_SCHEMES", "TTL_MAX", "TTL_MIN", "ice_server_list"]

#: RFC 7064 (stun, stuns) and RFC 7065 (turn, turns): the URL schemes RTCIceServer takes.
ICE_URL_SCHEMES = ("stun", "stuns", "turn", "turns")
#: TURN REST API credentials live this long at least (a call set up after connect must find
#: them valid) and at most (a leaked one must expire): seconds.
TTL_MIN = 60
TTL_MAX = 7 * 24 * 3600

_KEYS = ("urls", "username", "credential", "secret", "ttl")
# scheme ":" host [":" port] ["?transport=udp|tcp"]; host a name, IPv4 or [IPv6].
_URL = re.compile(
    r"^(?P<scheme>stuns?|turns?):"
    r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?)"
    r"(:(?P<port>[0-9]{1,5}))?"
    r"(\?transport=(?P<transport>udp|tcp))?$"
)


def _url(key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError(key, f"must be a string, got {show(value)}")
    match = _URL.match(value)
    if match is None:
        # user:password@ has no place in these URLs; if someone wrote it, it is not shown
        got = "a URL with @ (credentials go in username/credential or secret)" \
            if "@" in value else show(value)
        raise ConfigError(key, "must be a stun:, stuns:, turn: or turns: URL such as "
                          f"turn:turn.example.com:3478?transport=udp, got {got}")
    if match["port"] is not None and not 1 <= int(match["port"]) <= 65535:
        raise ConfigError(key, f"port must be from 1 to 65535, got {show(value)}")
    if match["transport"] is not None and match["scheme"].startswith("stun"):
        raise ConfigError(key, f"?transport= is for turn: URLs only, got {show(value)}")
    return value


def _urls(key: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (_url(key, value),)
    if not isinstance(value, list) or not value:
        raise ConfigError(key, f"must be a URL or a non-empty array of URLs, got {show(value)}")
    return tuple(_url(f"{key}[{i}]", item) for i, item in enumerate(value))


def _secret_text(key: str, value: Any) -> str:
    """A string that is never shown back (a secret or a TURN password)."""
    if not isinstance(value, str):
        raise ConfigError(key, "must be a string")
    if not value.strip():
        raise ConfigError(key, "must not be empty")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise ConfigError(key, "must not contain control characters")
    return value


def _entry(key: str, raw: Any) -> IceServer:
    if not isinstance(raw, dict):
        raise ConfigError(key, "must be a table such as "
                          '{urls = ["turn:turn.example.com:3478"], secret = "..."}')
    for name in raw:
        if name not in _KEYS:
            raise ConfigError(f"{key}.{name}", f"unknown key (known: {', '.join(_KEYS)})")
    if "urls" not in raw:
        raise ConfigError(f"{key}.urls", "required")
    urls = _urls(f"{key}.urls", raw["urls"])
    values: dict[str, Any] = {"urls": urls}
    for name in ("username", "credential", "secret"):
        if name in raw:
            values[name] = _secret_text(f"{key}.{name}", raw[name])
    if "username" in raw and _CONTROL_OR_SPACE.search(values["username"]):
        raise ConfigError(f"{key}.username", "must not contain spaces or control characters")
    if "ttl" in raw:
        ttl = raw["ttl"]
        if isinstance(ttl, bool) or not isinstance(ttl, int) or not TTL_MIN <= ttl <= TTL_MAX:
            raise ConfigError(f"{key}.ttl", f"must be an integer from {TTL_MIN} to {TTL_MAX} "
                              f"(seconds), got {show(ttl)}")
        values["ttl"] = ttl
    _check_credentials(key, values)
    return IceServer(**values)


_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f]")


def _check_credentials(key: str, values: dict[str, Any]) -> None:
    """The rules between an entry's keys: a TURN server needs credentials, from a shared
    ``secret`` (minted per session) or a fixed ``username`` + ``credential``, not both."""
    has_turn = any(url.startswith("turn") for url in values["urls"])
    secret, username, credential = (name in values for name in ("secret", "username",
                                                                "credential"))
    if secret and (username or credential):
        name = "username" if username else "credential"
        raise ConfigError(f"{key}.{name}", "cannot be given with secret (the gateway mints "
                          "the username and credential from the secret)")
    if username != credential:
        missing = "credential" if username else "username"
        raise ConfigError(f"{key}.{missing}", "required with "
                          f"{'username' if username else 'credential'}")
    if "ttl" in values and not secret:
        raise ConfigError(f"{key}.ttl", "is only used with secret")
    if not has_turn and (secret or username):
        raise ConfigError(f"{key}.{'secret' if secret else 'username'}",
                          "is only used with turn: or turns: URLs")
    if has_turn and not (secret or username):
        raise ConfigError(f"{key}.secret", "required for turn: URLs (or username and "
                          "credential)")


def ice_server_list(key: str, value: Any) -> tuple[IceServer, ...]:
    """``[webrtc] ice_servers``: an array of tables (TOML ``[[webrtc.ice_servers]]`` or an
    inline array)."""
    if not isinstance(value, list):
        raise ConfigError(key, "must be an array of tables such as "
                          '[{urls = ["stun:stun.example.com"]}]')
    return tuple(_entry(f"{key}[{i}]", item) for i, item in enumerate(value))
