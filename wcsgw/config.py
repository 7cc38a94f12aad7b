"""The config file (TOML) -> typed, validated, frozen settings.

Why this module is strict: a gateway that starts with a typo'd key silently ignored, or a port
of ``"5060"`` taken as a string, fails much later and far from the cause (no registration, a
bind error, calls to the wrong place).  So every key has a safe default (listen on loopback),
and an unknown section or key, a wrong type or an impossible value stops start-up with a
:class:`ConfigError` whose text is *one line naming the key*, e.g.
``sip.port: must be an integer from 0 to 65535, got "x"``.

Settings are attrs frozen classes: other layers get plain typed attributes, cannot change them
by accident, and secrets (passwords, REST tokens) are masked in ``repr`` so they never reach a
log line through an innocent ``log.info("{config}")``.

Environment overrides ``WCSGW_<SECTION>_<KEY>`` (``WCSGW_SIP_PORT=5070``) exist for containers
and tests that want one value changed without writing a file.  ``WCSGW_CONFIG`` is not an
override: it names the config file for ``twistd.tac``.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import tomllib
from typing import Any, Callable, Mapping, Sequence

import attrs

from wcsgw import __version__
from wcsgw.sdp.catalogue import parse_codec_name

__all__ = [
    "ConfigError",
    "Config",
    "HttpSettings",
    "SipSettings",
    "RestSettings",
    "PolicySettings",
    "LimitsSettings",
    "LogSettings",
    "CodecSettings",
    "Account",
    "LOG_LEVELS",
    "ENV_PREFIX",
    "CONFIG_PATH_ENV",
    "load_config",
    "parse_config",
]

#: Prefix of environment overrides, ``WCSGW_<SECTION>_<KEY>``.
ENV_PREFIX = "WCSGW_"
#: Environment variable naming the config file (read by twistd.tac); never an override.
CONFIG_PATH_ENV = "WCSGW_CONFIG"
#: Accepted ``[log] level`` values, least to most severe.
LOG_LEVELS = ("debug", "info", "warn", "error")

_PORT_MAX = 65535
_INT32_MAX = 2**31 - 1


class ConfigError(ValueError):
    """A config problem, as one line that names the key (``section.key: what is wrong``)."""

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        self.problem = problem
        line = f"{key}: {problem}" if key else problem
        # One line, always: multi-line messages get mangled by twistd and log collectors.
        super().__init__(" ".join(line.split()))


def _mask(value: str) -> str:
    return "'***'" if value else "''"


def _mask_list(values: Sequence[str]) -> str:
    return "[" + ", ".join("'***'" for _ in values) + "]"


def advertised(advertised_address: str, listen: str) -> str:
    """The address peers are told to use: the configured advertised address, else the listen
    address, else 127.0.0.1 when listening on a wildcard (a wildcard is no address a peer
    could send to, and loopback is the safe guess for a default install)."""
    if advertised_address:
        return advertised_address
    if listen in ("0.0.0.0", "::"):
        return "127.0.0.1"
    return listen


@attrs.frozen
class HttpSettings:
    """The one twisted.web site (Phone UI, SDK, WebSocket, REST, health)."""

    listen: str = "127.0.0.1"
    port: int = 8080
    allowed_origins: tuple[str, ...] = ()
    #: Host header values accepted besides IP literals and localhost (DNS rebinding defence)
    server_names: tuple[str, ...] = ()
    #: seconds a client has to send a request's headers, then its body (slow-loris defence)
    header_timeout: float = 10.0
    body_timeout: float = 10.0
    #: largest request body (REST JSON), bytes; checked on Content-Length before reading
    max_body: int = 64 * 1024


@attrs.frozen
class SipSettings:
    """The SIP endpoint: one UDP and one TCP listener on the same port, and RFC 3261 timers."""

    listen: str = "127.0.0.1"
    port: int = 5060
    advertised_address: str = ""
    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0
    max_message_size: int = 65535
    max_connections: int = 1024
    idle_timeout: float = 300.0
    user_agent: str = f"wcsgw/{__version__}"
    no_answer_timeout: float = 60.0
    decline_status: int = 603

    @property
    def advertised_host(self) -> str:
        """Host to put in Via/Contact (see :func:`advertised`)."""
        return advertised(self.advertised_address, self.listen)


@attrs.frozen
class MediaSettings:
    """Media sockets of both legs: the browser's (ICE-lite, DTLS-SRTP, one port per call) and
    the SIP side's (RTP on an even port, RTCP on the next), all from one port range."""

    listen: str = "127.0.0.1"
    advertised_address: str = ""
    port_min: int = 20000
    port_max: int = 29999
    rtp_timeout: float = 30.0

    @property
    def advertised_host(self) -> str:
        """Address put in SDP and ICE candidates (see :func:`advertised`)."""
        return advertised(self.advertised_address, self.listen)


@attrs.frozen
class TestLinesSettings:
    """The built-in test lines: ``echo`` (returns your audio) and ``tone`` (1 kHz), reachable
    with an empty SIP domain, so a fresh install can make a call with no PBX anywhere."""

    __test__ = False  # not a test case, whatever its name says

    enabled: bool = True


@attrs.frozen
class RestSettings:
    """REST API access: non-empty ``tokens`` means ``Authorization: Bearer <token>`` is needed."""

    tokens: tuple[str, ...] = attrs.field(default=(), repr=_mask_list)
    media_folder: str = ""
    recordings_folder: str = ""


@attrs.frozen
class PolicySettings:
    """Where sessions may register/call; empty = only the gateway's own test lines."""

    allowed_domains: tuple[str, ...] = ()
    #: regular expressions a dialled number must match one of (empty: any number)
    allowed_numbers: tuple[str, ...] = ()
    #: regular expressions no dialled number may match (checked after allowed_numbers)
    denied_numbers: tuple[str, ...] = ()
    #: SIP header names browsers may add to their INVITEs (``X-*``: a prefix)
    allowed_headers: tuple[str, ...] = ("X-*",)
    #: a far end's REFER: "ask" the browser, "accept" within policy, or "refuse" (403)
    incoming_transfers: str = "ask"
    #: seconds the browser has to answer a transferRequest before it counts as refused
    transfer_timeout: float = 15.0


@attrs.frozen
class LimitsSettings:
    """Caps that keep one browser, one address or one session from taking the gateway for
    itself; each refusal is a clear error, and nothing of a refused call is left behind."""

    calls_per_session: int = 4
    sessions_per_ip: int = 20
    calls_per_minute_per_ip: int = 30
    max_sessions: int = 1000
    #: media ports kept for sessions that have no call yet: a session with a live call cannot
    #: take the last ``port_reserve`` free ports (at most a quarter of the range), so it cannot
    #: starve the others
    port_reserve: int = 64


@attrs.frozen
class LogSettings:
    """Minimum level of log events that are written."""

    level: str = "info"


@attrs.frozen
class CodecSettings:
    """Which codecs each leg is offered, in order, and whether the gateway may transcode.

    Names are the catalogue's spellings (:mod:`wcsgw.sdp.catalogue`: ``"opus"``, ``"PCMU"``,
    ``"speex/16000"``), normalised whatever case the file used.  telephone-event is never
    listed: it is added at each clock rate an offer needs."""

    sip: tuple[str, ...] = ("opus", "G722", "PCMU", "PCMA", "G729", "speex/16000", "speex/8000")
    webrtc: tuple[str, ...] = ("opus", "PCMU", "PCMA", "G722")
    video: tuple[str, ...] = ("VP8", "H264")
    transcoding: bool = True


@attrs.frozen
class Account:
    """A static SIP account the gateway registers at start and unregisters at stop (trunk-style).

    ``auth_name`` (the digest username) defaults to ``login``; an empty one means the same.
    """

    login: str
    domain: str
    auth_name: str = ""
    password: str = attrs.field(default="", repr=_mask)
    outbound_proxy: str = ""
    port: int = 5060
    transport: str = "udp"
    register: bool = True
    expires: int = 600
    display_name: str = ""

    def __attrs_post_init__(self) -> None:
        if not self.auth_name:
            object.__setattr__(self, "auth_name", self.login)  # frozen: set once, here

    @property
    def aor(self) -> str:
        """Address of record, ``sip:login@domain``."""
        return f"sip:{self.login}@{self.domain}"

    @property
    def server_host(self) -> str:
        """Where requests go: the outbound proxy if set, else the domain (port: :attr:`port`)."""
        return self.outbound_proxy or self.domain


@attrs.frozen
class Config:
    """The whole validated configuration.  ``Config()`` is the built-in defaults."""

    http: HttpSettings = HttpSettings()
    sip: SipSettings = SipSettings()
    media: MediaSettings = MediaSettings()
    testlines: TestLinesSettings = TestLinesSettings()
    rest: RestSettings = RestSettings()
    policy: PolicySettings = PolicySettings()
    limits: LimitsSettings = LimitsSettings()
    log: LogSettings = LogSettings()
    codecs: CodecSettings = CodecSettings()
    accounts: tuple[Account, ...] = ()


# --------------------------------------------------------------------------------------------
# Validation helpers.  Each takes the dotted key (for the message) and the raw TOML value, and
# returns the typed value or raises ConfigError.


def _show(value: Any) -> str:
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


def _int_range(lo: int, hi: int) -> Callable[[str, Any], int]:
    def check(key: str, value: Any) -> int:
        if not _is_int(value) or not lo <= value <= hi:
            raise ConfigError(key, f"must be an integer from {lo} to {hi}, got {_show(value)}")
        return int(value)

    return check


def _positive_float(key: str, value: Any) -> float:
    if not (_is_int(value) or isinstance(value, float)):
        raise ConfigError(key, f"must be a number of seconds, got {_show(value)}")
    if not value > 0 or value != value or value == float("inf"):
        raise ConfigError(key, f"must be greater than 0, got {_show(value)}")
    return float(value)


def _string(key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError(key, f"must be a string, got {_show(value)}")
    return value


def _nonempty_string(key: str, value: Any) -> str:
    text = _string(key, value)
    if not text.strip():
        raise ConfigError(key, "must not be empty")
    return text


def _boolean(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(key, f"must be true or false, got {_show(value)}")
    return value


def _ip_literal(key: str, value: Any) -> str:
    text = _string(key, value)
    try:
        ipaddress.ip_address(text)
    except ValueError:
        raise ConfigError(
            key, f"must be an IP address such as 127.0.0.1, 0.0.0.0 or ::, got {_show(value)}"
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


def _host(key: str, value: Any) -> str:
    text = _nonempty_string(key, value)
    if not _is_host(text):
        raise ConfigError(key, f"must be a host name or IP address, got {_show(value)}")
    return text.strip("[]")


def _optional_host(key: str, value: Any) -> str:
    text = _string(key, value)
    return _host(key, text) if text else ""


def _string_list(nonempty: bool) -> Callable[[str, Any], tuple[str, ...]]:
    def check(key: str, value: Any) -> tuple[str, ...]:
        if not isinstance(value, list):
            raise ConfigError(key, f"must be an array of strings, got {_show(value)}")
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise ConfigError(f"{key}[{i}]", f"must be a string, got {_show(item)}")
            if nonempty and not item.strip():
                raise ConfigError(f"{key}[{i}]", "must not be empty")
        return tuple(value)

    return check


def _one_of(*choices: str) -> Callable[[str, Any], str]:
    def check(key: str, value: Any) -> str:
        if not isinstance(value, str) or value.lower() not in choices:
            raise ConfigError(key, f"must be one of {', '.join(choices)}; got {_show(value)}")
        return value.lower()

    return check


_port = _int_range(0, _PORT_MAX)


def _host_list(key: str, value: Any) -> tuple[str, ...]:
    names = _string_list(nonempty=True)(key, value)
    for i, name in enumerate(names):
        if not _is_host(name):
            raise ConfigError(f"{key}[{i}]", f"must be a host name or IP address, got {_show(name)}")
    return tuple(name.strip("[]").lower() for name in names)


def _pattern_list(key: str, value: Any) -> tuple[str, ...]:
    """Regular expressions, each matched against the whole dialled number."""
    patterns = _string_list(nonempty=True)(key, value)
    for i, pattern in enumerate(patterns):
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ConfigError(f"{key}[{i}]", f"not a regular expression: {exc}") from None
    return patterns


_HEADER_NAME = re.compile(r"^[A-Za-z0-9!%'+._`~-]+\*?$")


def _header_list(key: str, value: Any) -> tuple[str, ...]:
    """SIP header names; a trailing ``*`` makes a prefix (``X-*``)."""
    names = _string_list(nonempty=False)(key, value)
    for i, name in enumerate(names):
        if not _HEADER_NAME.match(name):
            raise ConfigError(f"{key}[{i}]", f"must be a SIP header name such as X-Tenant or "
                              f"a prefix such as X-*, got {_show(name)}")
    return names


def _one_of_ints(*choices: int) -> Callable[[str, Any], int]:
    def check(key: str, value: Any) -> int:
        if not _is_int(value) or value not in choices:
            raise ConfigError(key, f"must be one of {', '.join(map(str, choices))}; got {_show(value)}")
        return int(value)

    return check

def _codec_list(kind: str, browser: bool = False) -> Callable[[str, Any], tuple[str, ...]]:
    """A non-empty array of codec names of one kind (audio or video), no duplicates; for the
    browser leg only codecs browsers can take.  Returns the catalogue's spellings."""

    def check(key: str, value: Any) -> tuple[str, ...]:
        # Errors name the key itself (not key[i]) so an environment override is named too.
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(key, f"must be an array of codec names, got {_show(value)}")
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


# section -> key -> checker.  The attrs class gives the defaults; this table gives the rules.
_SCHEMA: dict[str, tuple[type, dict[str, Callable[[str, Any], Any]]]] = {
    "http": (HttpSettings, {"listen": _ip_literal, "port": _port,
                            "allowed_origins": _string_list(nonempty=True),
                            "server_names": _host_list,
                            "header_timeout": _positive_float,
                            "body_timeout": _positive_float,
                            "max_body": _int_range(1024, 64 * 1024 * 1024)}),
    "sip": (
        SipSettings,
        {
            "listen": _ip_literal,
            "port": _port,
            "advertised_address": _optional_host,
            "t1": _positive_float,
            "t2": _positive_float,
            "t4": _positive_float,
            "max_message_size": _int_range(1024, 16 * 1024 * 1024),
            "max_connections": _int_range(1, 1_000_000),
            "idle_timeout": _positive_float,
            "user_agent": _string,
            "no_answer_timeout": _positive_float,
            "decline_status": _one_of_ints(486, 603),
        },
    ),
    "media": (
        MediaSettings,
        {
            "listen": _ip_literal,
            "advertised_address": _optional_host,
            "port_min": _int_range(1024, _PORT_MAX),
            "port_max": _int_range(1024, _PORT_MAX),
            "rtp_timeout": _positive_float,
        },
    ),
    "testlines": (TestLinesSettings, {"enabled": _boolean}),
    "rest": (RestSettings, {"tokens": _string_list(nonempty=True), "media_folder": _string,
                            "recordings_folder": _string}),
    "policy": (PolicySettings, {"allowed_domains": _string_list(nonempty=True),
                                "allowed_numbers": _pattern_list,
                                "denied_numbers": _pattern_list,
                                "allowed_headers": _header_list,
                                "incoming_transfers": _one_of("ask", "accept", "refuse"),
                                "transfer_timeout": _positive_float}),
    "limits": (LimitsSettings, {"calls_per_session": _int_range(1, 1000),
                                "sessions_per_ip": _int_range(1, 1_000_000),
                                "calls_per_minute_per_ip": _int_range(1, 1_000_000),
                                "max_sessions": _int_range(1, 1_000_000),
                                "port_reserve": _int_range(0, _PORT_MAX)}),
    "log": (LogSettings, {"level": _one_of(*LOG_LEVELS)}),
    "codecs": (CodecSettings, {"sip": _codec_list("audio"),
                               "webrtc": _codec_list("audio", browser=True),
                               "video": _codec_list("video", browser=True),
                               "transcoding": _boolean}),
}

_ACCOUNT_KEYS: dict[str, Callable[[str, Any], Any]] = {
    "login": _nonempty_string,
    "auth_name": _string,
    "password": _string,
    "domain": _host,
    "outbound_proxy": _optional_host,
    "port": _int_range(1, _PORT_MAX),
    "transport": _one_of("udp", "tcp"),
    "register": _boolean,
    "expires": _int_range(1, _INT32_MAX),
    "display_name": _string,
}
_ACCOUNT_REQUIRED = ("login", "domain")


def _section(name: str, raw: Any) -> Any:
    cls, rules = _SCHEMA[name]
    if not isinstance(raw, dict):
        raise ConfigError(name, f"must be a table ([{name}]), got {_show(raw)}")
    values = {}
    for key, value in raw.items():
        if key not in rules:
            raise ConfigError(f"{name}.{key}", f"unknown key (known: {', '.join(rules)})")
        values[key] = rules[key](f"{name}.{key}", value)
    return cls(**values)


def _account(index: int, raw: Any) -> Account:
    where = f"accounts[{index}]"
    if not isinstance(raw, dict):
        raise ConfigError(where, f"must be a table ([[accounts]]), got {_show(raw)}")
    values = {}
    for key, value in raw.items():
        if key not in _ACCOUNT_KEYS:
            known = ", ".join(_ACCOUNT_KEYS)
            raise ConfigError(f"{where}.{key}", f"unknown key (known: {known})")
        values[key] = _ACCOUNT_KEYS[key](f"{where}.{key}", value)
    for key in _ACCOUNT_REQUIRED:
        if key not in values:
            raise ConfigError(f"{where}.{key}", "required")
    return Account(**values)


def _check_timers(sip: SipSettings) -> None:
    if sip.t2 < sip.t1:
        raise ConfigError("sip.t2", f"must not be less than sip.t1 ({sip.t1:g}), got {sip.t2:g}")


def _check_media(media: MediaSettings) -> None:
    if media.port_max - media.port_min < 3:
        raise ConfigError(
            "media.port_max",
            f"must leave at least 4 ports above media.port_min ({media.port_min}), got {media.port_max}",
        )


def _is_loopback(address: str) -> bool:
    return ipaddress.ip_address(address).is_loopback


def _check_exposure(config: Config) -> None:
    """REST and /metrics with no token are fine on loopback only: on any other address they
    would let anyone on the network place calls and read the gateway's state."""
    if not config.rest.tokens and not _is_loopback(config.http.listen):
        raise ConfigError("rest.tokens", f"must be set when http.listen ({config.http.listen}) is "
                          "not a loopback address: REST and /metrics would be open to anyone")


def _check_accounts(accounts: Sequence[Account]) -> None:
    seen: dict[tuple[str, str], int] = {}
    for i, account in enumerate(accounts):
        ident = (account.login, account.domain.lower())
        if ident in seen:
            raise ConfigError(
                f"accounts[{i}]",
                f"duplicate of accounts[{seen[ident]}] ({account.login}@{account.domain})",
            )
        seen[ident] = i


def parse_config(data: Mapping[str, Any]) -> Config:
    """Validate an already-parsed TOML document (a dict) into a :class:`Config`."""
    if not isinstance(data, Mapping):
        raise ConfigError("", f"config must be a TOML table, got {_show(data)}")
    parts: dict[str, Any] = {}
    for name, raw in data.items():
        if name == "accounts":
            if not isinstance(raw, list):
                raise ConfigError(
                    "accounts", f"must be an array of tables ([[accounts]]), got {_show(raw)}"
                )
            parts["accounts"] = tuple(_account(i, item) for i, item in enumerate(raw))
        elif name in _SCHEMA:
            parts[name] = _section(name, raw)
        else:
            known = ", ".join([*_SCHEMA, "accounts"])
            raise ConfigError(name, f"unknown section (known: {known})")
    config = Config(**parts)
    _check_timers(config.sip)
    _check_media(config.media)
    _check_accounts(config.accounts)
    _check_exposure(config)
    return config


def _env_value(raw: str, expects_string: bool) -> Any:
    """An environment value as TOML when it parses (``5070``, ``true``, ``["a"]``), else the
    text itself.  For string keys the text is kept as typed unless it is a quoted TOML string,
    so ``WCSGW_SIP_USER_AGENT=1.0`` stays ``"1.0"`` instead of failing as a float."""
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw
    if expects_string and not isinstance(value, str):
        return raw
    return value


def _apply_environ(data: dict[str, Any], environ: Mapping[str, str]) -> dict[str, str]:
    """Overlay ``WCSGW_<SECTION>_<KEY>`` variables onto the parsed file in place (the file's
    other keys stay) and return ``{"section.key": variable}`` so errors can name the variable.
    Sorted, so the first bad variable reported is the same on every run."""
    applied: dict[str, str] = {}
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or name == CONFIG_PATH_ENV:
            continue
        rest = name[len(ENV_PREFIX) :].lower()
        section, _, key = rest.partition("_")
        if section == "accounts":
            raise ConfigError(name, "accounts cannot be set from the environment; use the file")
        if section not in _SCHEMA:
            known = ", ".join(f"{ENV_PREFIX}{s.upper()}_<KEY>" for s in _SCHEMA)
            raise ConfigError(name, f"unknown section {section!r} (expected {known})")
        cls, rules = _SCHEMA[section]
        if key not in rules:
            raise ConfigError(
                name, f"unknown key {section}.{key} (known: {', '.join(rules)})"
            )
        default = attrs.fields_dict(cls)[key].default
        table = data.get(section)
        if table is None:
            table = data[section] = {}
        elif not isinstance(table, dict):
            raise ConfigError(section, f"must be a table ([{section}]), got {_show(table)}")
        table[key] = _env_value(environ[name], isinstance(default, str))
        applied[f"{section}.{key}"] = name
    return applied


def load_config(path: str | None, environ: Mapping[str, str] = os.environ) -> Config:
    """Read the TOML file at ``path`` (None: built-in defaults), apply environment overrides
    from ``environ`` and validate.  Raises :class:`ConfigError` (one line naming the key)."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            with open(path, "rb") as f:
                data = tomllib.load(f)
        except OSError as e:
            raise ConfigError(str(path), f"cannot read config file: {e.strerror or e}") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(str(path), f"not valid TOML: {e}") from None
        except UnicodeDecodeError as e:
            raise ConfigError(str(path), f"not valid UTF-8: {e}") from None
    from_env = _apply_environ(data, environ)
    try:
        return parse_config(data)
    except ConfigError as e:
        if e.key in from_env:
            raise ConfigError(f"{e.key} (from {from_env[e.key]})", e.problem) from None
        raise
