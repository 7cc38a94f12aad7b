"""The checks a config value passes: each takes the dotted key (for the message) and the raw
TOML value, and returns the typed value or raises :class:`~wcsgw.config.errors.ConfigError`
naming the key.

Why small composable checkers (``int_range(1, 1000)``, ``string_list(nonempty=True)``): the
table of :mod:`wcsgw.config.sections` then reads as the rules themselves, one per key, and
every message says what the key must be and what was given (``got "x"``).
"""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Any, Callable

from wcsgw.config.errors import ConfigError
from wcsgw.sdp.catalogue import parse_codec_name

__all__ = [
    "INT32_MAX",
    "PORT_MAX",
    "boolean",
    "cluster_secret",
    "codec_list",
    "dns_server_list",
    "header_list",
    "host",
    "host_list",
    "int_range",
    "internal_url",
    "ip_literal",
    "node_id",
    "nonempty_string",
    "one_of",
    "one_of_ints",
    "optional_address",
    "optional_host",
    "pattern_list",
    "port",
    "positive_float",
    "redis_url",
    "show",
    "string",
    "string_list",
]

PORT_MAX = 65535
INT32_MAX = 2**31 - 1


def show(value: Any) -> str:
    """A value as the user wrote it, TOML-ish and short, for 'got ...' in messages."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (str, list, dict)):
        text = json.dumps(value, default=str, ensure_ascii=False)
    else:
        text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_int(value: Any) -> bool:
    # bool is a subclass of int in Python; in TOML `true` is not a number.
    return isinstance(value, int) and not isinstance(value, bool)


def int_range(lo: int, hi: int) -> Callable[[str, Any], int]:
    def check(key: str, value: Any) -> int:
        if not _is_int(value) or not lo <= value <= hi:
            raise ConfigError(key, f"must be an integer from {lo} to {hi}, got {show(value)}")
        return int(value)

    return check


def positive_float(key: str, value: Any) -> float:
    if not (_is_int(value) or isinstance(value, float)):
        raise ConfigError(key, f"must be a number of seconds, got {show(value)}")
    if not value > 0 or value != value or value == float("inf"):
        raise ConfigError(key, f"must be greater than 0, got {show(value)}")
    return float(value)


def string(key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError(key, f"must be a string, got {show(value)}")
    return value


def nonempty_string(key: str, value: Any) -> str:
    text = string(key, value)
    if not text.strip():
        raise ConfigError(key, "must not be empty")
    return text


def boolean(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(key, f"must be true or false, got {show(value)}")
    return value


def ip_literal(key: str, value: Any) -> str:
    text = string(key, value)
    try:
        ipaddress.ip_address(text)
    except ValueError:
        raise ConfigError(
            key, f"must be an IP address such as 127.0.0.1, 0.0.0.0 or ::, got {show(value)}"
        ) from None
    return text


_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)"
    r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$"
)


def _is_host(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip("[]"))
        return True
    except ValueError:
        return bool(_HOSTNAME.match(text))


def host(key: str, value: Any) -> str:
    text = nonempty_string(key, value)
    if not _is_host(text):
        raise ConfigError(key, f"must be a host name or IP address, got {show(value)}")
    return text.strip("[]")


def optional_host(key: str, value: Any) -> str:
    text = string(key, value)
    return host(key, text) if text else ""


def optional_address(key: str, value: Any) -> str:
    """An address peers are told to send media to, or "" (not set): an IP literal (an ICE
    candidate holds no name), never a wildcard (``c=IN IP4 0.0.0.0`` means hold), multicast
    or an IPv6 zone (meaningless off this host).  Given back in its one canonical spelling."""
    text = string(key, value)
    if not text:
        return ""
    try:
        ip = ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        raise ConfigError(
            key, f"must be an IP address such as 203.0.113.7 or 2001:db8::7, got {show(value)}"
        ) from None
    if ip.is_unspecified or ip.is_multicast or getattr(ip, "scope_id", None):
        raise ConfigError(key, f"must be a unicast address peers can send to, got {show(value)}")
    return str(ip)


def string_list(nonempty: bool) -> Callable[[str, Any], tuple[str, ...]]:
    def check(key: str, value: Any) -> tuple[str, ...]:
        if not isinstance(value, list):
            raise ConfigError(key, f"must be an array of strings, got {show(value)}")
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise ConfigError(f"{key}[{i}]", f"must be a string, got {show(item)}")
            if nonempty and not item.strip():
                raise ConfigError(f"{key}[{i}]", "must not be empty")
        return tuple(value)

    return check


def one_of(*choices: str) -> Callable[[str, Any], str]:
    def check(key: str, value: Any) -> str:
        if not isinstance(value, str) or value.lower() not in choices:
            raise ConfigError(key, f"must be one of {', '.join(choices)}; got {show(value)}")
        return value.lower()

    return check


port = int_range(0, PORT_MAX)


def host_list(key: str, value: Any) -> tuple[str, ...]:
    names = string_list(nonempty=True)(key, value)
    for i, name in enumerate(names):
        if not _is_host(name):
            raise ConfigError(f"{key}[{i}]", f"must be a host name or IP address, got {show(name)}")
    return tuple(name.strip("[]").lower() for name in names)


def dns_server_list(key: str, value: Any) -> tuple[str, ...]:
    """DNS servers as a resolver needs them: IP addresses, each with an optional port
    (``"192.0.2.53"``, ``"127.0.0.1:5353"``, ``"[::1]:53"``)."""
    servers = string_list(nonempty=False)(key, value)
    for i, text in enumerate(servers):
        match = re.fullmatch(r"\[([^\]]+)\](?::(\d{1,5}))?|([^:\[\]]+)(?::(\d{1,5}))?|([0-9a-fA-F:]+)",
                             text.strip())
        address = match and (match.group(1) or match.group(3) or match.group(5))
        number = match and (match.group(2) or match.group(4))
        try:
            ipaddress.ip_address(address or "")
            ok = not number or 0 < int(number) <= PORT_MAX
        except ValueError:
            ok = False
        if not ok:
            raise ConfigError(f"{key}[{i}]", "must be an IP address with an optional :port, "
                              f"got {show(text)}")
    return tuple(s.strip() for s in servers)


def pattern_list(key: str, value: Any) -> tuple[str, ...]:
    """Regular expressions, each matched against the whole dialled number."""
    patterns = string_list(nonempty=True)(key, value)
    for i, pattern in enumerate(patterns):
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ConfigError(f"{key}[{i}]", f"not a regular expression: {exc}") from None
    return patterns


_HEADER_NAME = re.compile(r"^[A-Za-z0-9!%'+._`~-]+\*?$")


def header_list(key: str, value: Any) -> tuple[str, ...]:
    """SIP header names; a trailing ``*`` makes a prefix (``X-*``)."""
    names = string_list(nonempty=False)(key, value)
    for i, name in enumerate(names):
        if not _HEADER_NAME.match(name):
            raise ConfigError(f"{key}[{i}]", f"must be a SIP header name such as X-Tenant or "
                              f"a prefix such as X-*, got {show(name)}")
    return names


def one_of_ints(*choices: int) -> Callable[[str, Any], int]:
    def check(key: str, value: Any) -> int:
        if not _is_int(value) or value not in choices:
            raise ConfigError(key, f"must be one of {', '.join(map(str, choices))}; got {show(value)}")
        return int(value)

    return check

def codec_list(kind: str, browser: bool = False) -> Callable[[str, Any], tuple[str, ...]]:
    """A non-empty array of codec names of one kind (audio or video), no duplicates; for the
    browser leg only codecs browsers can take.  Returns the catalogue's spellings."""

    def check(key: str, value: Any) -> tuple[str, ...]:
        # Errors name the key itself (not key[i]) so an environment override is named too.
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(key, f"must be an array of codec names, got {show(value)}")
        if not value:
            raise ConfigError(key, f"must list at least one {kind} codec")
        labels: list[str] = []
        for name in value:
            try:
                entry = parse_codec_name(name)
            except ValueError as exc:
                raise ConfigError(key, str(exc)) from None
            if entry.kind != kind:
                raise ConfigError(key, f"{name!r} is a codec for {entry.kind}, not {kind}")
            if browser and not entry.browser:
                raise ConfigError(key, f"{name!r} is not a codec browsers can take")
            if entry.label in labels:
                raise ConfigError(key, f"{name!r} is listed twice")
            labels.append(entry.label)
        return tuple(labels)

    return check


#: a node id's shape: the same as every outside id (wcsgw.calls.ids.ID_PATTERN, which config
#: may not import; tests.test_cluster_state checks the two agree): node ids are Redis keys
#: and log fields
NODE_ID_PATTERN = r"^[A-Za-z0-9_]([A-Za-z0-9_~:@+=-]|\.[A-Za-z0-9_~:@+=-])*\.?$"
MIN_SECRET = 16


def _url_parts(key: str, value: Any, schemes: tuple[str, ...]) -> str:
    """``value`` if it is "" or a URL of one of ``schemes`` with a host.  The message shows
    only the scheme and host: a URL may carry a password."""
    text = string(key, value)
    if not text:
        return text
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(text)
        hostname = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise ConfigError(key, f"must be a {' or '.join(s + '://' for s in schemes)} URL, "
                               "got one that does not parse") from None
    if parts.scheme not in schemes or not hostname:
        shown = f"{parts.scheme}://{hostname or ''}" if parts.scheme else "no scheme"
        raise ConfigError(key, f"must be a {' or '.join(s + '://' for s in schemes)} URL "
                               f"with a host, got {shown}")
    return text


def redis_url(key: str, value: Any) -> str:
    """"" (no cluster) or redis:// / rediss:// with a host; never echoes the password."""
    return _url_parts(key, value, ("redis", "rediss"))


def internal_url(key: str, value: Any) -> str:
    return _url_parts(key, value, ("http", "https"))


def node_id(key: str, value: Any) -> str:
    text = string(key, value)
    if text and (len(text) > 128 or re.fullmatch(NODE_ID_PATTERN, text) is None):
        raise ConfigError(key, "must be 1 to 128 of the characters A-Z a-z 0-9 _ . ~ : @ + = - "
                               f"(starting with a letter, digit or _; no '..'), got {show(text)}")
    return text


def cluster_secret(redis: str, secret: str) -> None:
    """With a ``redis_url``, ``secret`` signs the nodes' requests to each other: required,
    at least :data:`MIN_SECRET` characters; its value is never shown."""
    if redis and len(secret) < MIN_SECRET:
        raise ConfigError("cluster.secret", f"must be at least {MIN_SECRET} characters when "
                                            "cluster.redis_url is set (the same on every node)")
