"""The check of ``[[apps]]``: the backends whose REST hooks decide for sessions (docs/hooks.md).

Why a module of its own: an entry is a table with required keys and a rule across entries
(one app per ``key``), and it holds a secret, which no message here ever shows.  The hook URL
is the operator's choice (the gateway will POST to whatever it names, internal addresses
included); only its form is checked: ``http://`` or ``https://`` with a host, no credentials.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from wcsgw.config.checks import positive_float, show
from wcsgw.config.errors import ConfigError
from wcsgw.config.settings import AppSettings

__all__ = ["MAX_TIMEOUT", "app_list"]

#: a decision holds its request this long at most: seconds
MAX_TIMEOUT = 30.0
_KEYS = ("key", "hook_url", "secret", "timeout")


def _key(key: str, value: Any) -> str:
    if not isinstance(value, str) or len(value) > 128 or any(ord(c) < 32 for c in value):
        raise ConfigError(key, f"must be a string of at most 128 printable characters, got {show(value)}")
    return value


def _url(key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError(key, f"must be a string, got {show(value)}")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(key, "must be an http:// or https:// URL with a host")
    if "@" in parts.netloc:
        raise ConfigError(key, "must not hold credentials (user:password@): requests are signed "
                          "with secret")
    return value


def _secret(key: str, value: Any) -> str:
    if not isinstance(value, str) or len(value) < 16:
        raise ConfigError(key, "must be a string of at least 16 characters")
    return value


def _timeout(key: str, value: Any) -> float:
    seconds = positive_float(key, value)
    if seconds > MAX_TIMEOUT:
        raise ConfigError(key, f"must be at most {MAX_TIMEOUT:g} seconds, got {seconds:g}")
    return seconds


_RULES = {"key": _key, "hook_url": _url, "secret": _secret, "timeout": _timeout}


def _app(index: int, raw: Any) -> AppSettings:
    where = f"apps[{index}]"
    if not isinstance(raw, dict):
        raise ConfigError(where, "must be a table ([[apps]])")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in _RULES:
            raise ConfigError(f"{where}.{key}", f"unknown key (known: {', '.join(_KEYS)})")
        values[key] = _RULES[key](f"{where}.{key}", value)
    for key in ("hook_url", "secret"):
        if key not in values:
            raise ConfigError(f"{where}.{key}", "required")
    return AppSettings(**values)


def app_list(raw: Any) -> tuple[AppSettings, ...]:
    """``[[apps]]`` as settings; one app per ``key``."""
    if not isinstance(raw, list):
        raise ConfigError("apps", f"must be an array of tables ([[apps]]), got {show(raw)}")
    apps = tuple(_app(i, item) for i, item in enumerate(raw))
    seen: dict[str, int] = {}
    for i, app in enumerate(apps):
        if app.key in seen:
            raise ConfigError(f"apps[{i}].key", f"duplicate of apps[{seen[app.key]}] "
                              f"({app.key!r})")
        seen[app.key] = i
    return apps
