"""Which keys each config section has and the rule each is held to, and the checks across
keys: a parsed TOML document in, a :class:`~wcsgw.config.settings.Config` out.

Why a table (:data:`SCHEMA`: section -> settings class and key -> checker): the attrs classes
give the defaults, the table gives the rules, and an unknown section or key is refused with the
known ones listed, so a typo never passes silently.  The environment overrides of
:mod:`wcsgw.config.load` are checked against the same table.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Callable, Mapping, Sequence

from wcsgw.config.apps import app_list
from wcsgw.config.checks import (
    INT32_MAX,
    PORT_MAX,
    boolean,
    cluster_secret,
    codec_list,
    dns_server_list,
    header_list,
    host,
    host_list,
    int_range,
    internal_url,
    ip_literal,
    node_id,
    nonempty_string,
    one_of,
    one_of_ints,
    optional_address,
    optional_host,
    pattern_list,
    port,
    positive_float,
    redis_url,
    show,
    string,
    string_list,
)
from wcsgw.config.dialplan import check_routes, dialplan_section, route_list
from wcsgw.config.errors import ConfigError
from wcsgw.config.iceservers import ice_server_list
from wcsgw.config.settings import (
    LOG_LEVELS,
    Account,
    CdrSettings,
    ClusterSettings,
    CodecSettings,
    Config,
    HttpSettings,
    LimitsSettings,
    LogSettings,
    MediaSettings,
    PolicySettings,
    RecordingSettings,
    RestSettings,
    SipSettings,
    StateSettings,
    TestLinesSettings,
    WebRtcSettings,
)

__all__ = ["SCHEMA", "parse_config"]


# section -> key -> checker.  The attrs class gives the defaults; this table gives the rules.
SCHEMA: dict[str, tuple[type, dict[str, Callable[[str, Any], Any]]]] = {
    "http": (HttpSettings, {"listen": ip_literal, "port": port,
                            "allowed_origins": string_list(nonempty=True),
                            "server_names": host_list,
                            "header_timeout": positive_float,
                            "body_timeout": positive_float,
                            "max_body": int_range(1024, 64 * 1024 * 1024),
                            "tls_cert": string, "tls_key": string,
                            "resume_seconds": int_range(0, 3600)}),
    "sip": (
        SipSettings,
        {
            "listen": ip_literal,
            "port": port,
            "advertised_address": optional_host,
            "t1": positive_float,
            "t2": positive_float,
            "t4": positive_float,
            "max_message_size": int_range(1024, 16 * 1024 * 1024),
            "max_connections": int_range(1, 1_000_000),
            "idle_timeout": positive_float,
            "user_agent": string,
            "no_answer_timeout": positive_float,
            "decline_status": one_of_ints(486, 603),
            "tls_port": port,
            "tls_cert": string,
            "tls_key": string,
            "tls_ca": string,
            "tls_client_cert": string,
            "tls_client_key": string,
            "keepalive_interval": int_range(0, 3600),
            "dns_location": boolean,
            "dns_servers": dns_server_list,
            "session_expires": int_range(0, 86400),
            "min_se": int_range(90, 86400),
            "prack": one_of("off", "supported", "required"),
        },
    ),
    "media": (
        MediaSettings,
        {
            "listen": ip_literal,
            "advertised_address": optional_host,
            "browser_address": optional_address,
            "sip_address": optional_address,
            "port_min": int_range(1024, PORT_MAX),
            "port_max": int_range(1024, PORT_MAX),
            "rtp_timeout": positive_float,
            "browser_port": port,
        },
    ),
    "testlines": (TestLinesSettings, {"enabled": boolean}),
    "rest": (RestSettings, {"tokens": string_list(nonempty=True), "media_folder": string}),
    "policy": (PolicySettings, {"allowed_domains": string_list(nonempty=True),
                                "allowed_numbers": pattern_list,
                                "denied_numbers": pattern_list,
                                "allowed_headers": header_list,
                                "incoming_transfers": one_of("ask", "accept", "refuse"),
                                "transfer_timeout": positive_float}),
    "limits": (LimitsSettings, {"calls_per_session": int_range(1, 1000),
                                "sessions_per_ip": int_range(1, 1_000_000),
                                "calls_per_minute_per_ip": int_range(1, 1_000_000),
                                "max_sessions": int_range(1, 1_000_000),
                                "port_reserve": int_range(0, PORT_MAX),
                                "drain_seconds": int_range(0, 86400),
                                "max_loop_lag_ms": int_range(0, 10_000),
                                "max_cpu_percent": int_range(0, 100)}),
    "log": (LogSettings, {"level": one_of(*LOG_LEVELS), "format": one_of("text", "json")}),
    "state": (StateSettings, {"folder": nonempty_string}),
    "cluster": (ClusterSettings, {"redis_url": redis_url, "node_id": node_id,
                                  "internal_url": internal_url, "secret": string}),
    "cdr": (CdrSettings, {"database": string, "retention_days": int_range(0, 36500)}),
    "recording": (RecordingSettings, {"folder": string, "all_calls": boolean}),
    "codecs": (CodecSettings, {"sip": codec_list("audio"),
                               "webrtc": codec_list("audio", browser=True),
                               "video": codec_list("video", browser=True),
                               "transcoding": boolean}),
    "webrtc": (WebRtcSettings, {"ice_servers": ice_server_list}),
}

def _account_name(key: str, value: Any) -> str:
    """A server-held account's name travels in hook replies, REST bodies and messages: a
    plain token, so it cannot be mistaken for anything else there.  "" = no name."""
    text = string(key, value)
    if text and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", text):
        raise ConfigError(key, "must be 1-64 letters, digits, '_', '.' or '-' (starting with a "
                          f"letter or digit), got {show(text)}")
    return text


def _asserted_identity(key: str, value: Any) -> str:
    """RFC 3325 P-Asserted-Identity: one sip:, sips: or tel: URI, nothing that could end the
    header or the name-addr around it.  "" = none."""
    text = string(key, value)
    if text and not re.fullmatch(r"(sips?|tel):[^\s<>\"]+", text):
        raise ConfigError(key, f"must be a sip:, sips: or tel: URI, got {show(text)}")
    return text


_PRIVACY = ("id", "header", "session", "user", "critical")


def _privacy(key: str, value: Any) -> str:
    """RFC 3323 §4.2 / RFC 3325 §7 priv-values, ';'-separated; "none" only alone.  "" = none."""
    text = string(key, value)
    values = text.split(";") if text else []
    if values != ["none"] and any(v not in _PRIVACY for v in values):
        raise ConfigError(key, f"must be \"none\" or ';'-separated {', '.join(_PRIVACY)}, "
                          f"got {show(text)}")
    return text


_ACCOUNT_KEYS: dict[str, Callable[[str, Any], Any]] = {
    "name": _account_name,
    "login": nonempty_string,
    "auth_name": string,
    "password": string,
    "domain": host,
    "outbound_proxy": optional_host,
    "port": int_range(1, PORT_MAX),
    "transport": one_of("udp", "tcp", "tls"),
    "register": boolean,
    "expires": int_range(1, INT32_MAX),
    "display_name": string,
    "srtp": one_of("off", "optional", "mandatory"),
    "options_interval": int_range(0, 86400),
    "options_failures": int_range(1, 100),
    "asserted_identity": _asserted_identity,
    "privacy": _privacy,
}
_ACCOUNT_REQUIRED = ("login", "domain")
#: what only a server-held account (with a name, which routes and sessions use) can have
_NAMED_ONLY = ("options_interval", "asserted_identity", "privacy")


#: keys that existed once: an old config setting one is refused with where it went
REMOVED = {
    "rest.recordings_folder": "was removed: use recording.folder (one folder for every recording)",
}


def _section(name: str, raw: Any) -> Any:
    cls, rules = SCHEMA[name]
    if not isinstance(raw, dict):
        raise ConfigError(name, f"must be a table ([{name}]), got {show(raw)}")
    values = {}
    for key, value in raw.items():
        if key not in rules:
            if f"{name}.{key}" in REMOVED:  # an old config: say where the setting went
                raise ConfigError(f"{name}.{key}", REMOVED[f"{name}.{key}"])
            raise ConfigError(f"{name}.{key}", f"unknown key (known: {', '.join(rules)})")
        values[key] = rules[key](f"{name}.{key}", value)
    return cls(**values)


def _account(index: int, raw: Any) -> Account:
    where = f"accounts[{index}]"
    if not isinstance(raw, dict):
        raise ConfigError(where, f"must be a table ([[accounts]]), got {show(raw)}")
    values = {}
    for key, value in raw.items():
        if key not in _ACCOUNT_KEYS:
            known = ", ".join(_ACCOUNT_KEYS)
            raise ConfigError(f"{where}.{key}", f"unknown key (known: {known})")
        values[key] = _ACCOUNT_KEYS[key](f"{where}.{key}", value)
    for key in _ACCOUNT_REQUIRED:
        if key not in values:
            raise ConfigError(f"{where}.{key}", "required")
    for key in _NAMED_ONLY:
        if values.get(key) and not values.get("name"):
            raise ConfigError(f"{where}.{key}", "needs a name (a server-held account)")
    if values.get("transport") == "tls":
        values.setdefault("port", 5061)  # RFC 3261 §19.1.2: the SIPS/TLS default port
    return Account(**values)


def _check_timers(sip: SipSettings) -> None:
    if sip.t2 < sip.t1:
        raise ConfigError("sip.t2", f"must not be less than sip.t1 ({sip.t1:g}), got {sip.t2:g}")
    if 0 < sip.session_expires < sip.min_se:
        raise ConfigError("sip.session_expires", f"must be 0 or at least sip.min_se "
                          f"({sip.min_se}), got {sip.session_expires}")


def _check_media(media: MediaSettings) -> None:
    if media.port_max - media.port_min < 3:
        raise ConfigError(
            "media.port_max",
            f"must leave at least 4 ports above media.port_min ({media.port_min}), got {media.port_max}",
        )
    if media.port_min <= media.browser_port <= media.port_max:
        raise ConfigError("media.browser_port", f"must be outside media.port_min..port_max "
                          f"({media.port_min}-{media.port_max}), got {media.browser_port}")
    for key in ("browser_address", "sip_address"):
        _check_family(f"media.{key}", getattr(media, key), media.listen)


def _check_family(key: str, address: str, listen: str) -> None:
    """Both sides' sockets bind ``media.listen``: an address of the other IP family would be
    told to peers whose packets no socket of ours could receive.  ``::`` binds dual-stack
    sockets (Linux's default), so it takes both families."""
    if not address or listen == "::":
        return
    told, bound = ipaddress.ip_address(address).version, ipaddress.ip_address(listen).version
    if told != bound:
        raise ConfigError(key, f"is IPv{told} but media.listen ({listen}) binds IPv{bound} "
                          f"sockets only; set media.listen to an IPv{told} address or \"::\" "
                          "(both families)")


def _check_browser_port(config: Config) -> None:
    """The shared browser port takes UDP and TCP on its number: not the SIP or HTTP port's."""
    taken = {"sip.port": config.sip.port, "http.port": config.http.port}
    for key, number in taken.items():
        if config.media.browser_port and config.media.browser_port == number:
            raise ConfigError("media.browser_port", f"must differ from {key} ({number})")


def _check_sip_tls_port(config: Config) -> None:
    """The SIP TLS listener is TCP on a number of its own: a clash would only show as a bind
    error at start, without naming the key."""
    taken = {"sip.port": config.sip.port, "http.port": config.http.port,
             "media.browser_port": config.media.browser_port}
    for key, number in taken.items():
        if config.sip.tls_port and config.sip.tls_port == number:
            raise ConfigError("sip.tls_port", f"must differ from {key} ({number})")


def _check_tls(http: HttpSettings) -> None:
    """A certificate without its key (or the reverse) is half a setup: refused, rather than
    silently served as plain HTTP.  The files themselves are read when the site is built
    (wcsgw.api.tls), which names the key of the one that is not usable."""
    for key, other in (("tls_key", "tls_cert"), ("tls_cert", "tls_key")):
        if getattr(http, other) and not getattr(http, key):
            raise ConfigError(f"http.{key}", f"must be set when http.{other} is (HTTPS needs "
                              "both the certificate and its key)")


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
    names: dict[str, int] = {}
    for i, account in enumerate(accounts):
        if account.name in names:
            raise ConfigError(f"accounts[{i}].name", f"duplicate of accounts[{names[account.name]}]"
                              f".name ({account.name})")
        if account.name:
            names[account.name] = i
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
        raise ConfigError("", f"config must be a TOML table, got {show(data)}")
    parts: dict[str, Any] = {}
    for name, raw in data.items():
        if name == "accounts":
            if not isinstance(raw, list):
                raise ConfigError(
                    "accounts", f"must be an array of tables ([[accounts]]), got {show(raw)}"
                )
            parts["accounts"] = tuple(_account(i, item) for i, item in enumerate(raw))
        elif name in ("dialplan", "routes"):
            parts[name] = dialplan_section(raw) if name == "dialplan" else route_list(raw)
        elif name == "apps":
            parts["apps"] = app_list(raw)
        elif name in SCHEMA:
            parts[name] = _section(name, raw)
        else:
            known = ", ".join([*SCHEMA, "accounts", "apps", "dialplan", "routes"])
            raise ConfigError(name, f"unknown section (known: {known})")
    config = Config(**parts)
    _check_timers(config.sip)
    _check_media(config.media)
    _check_browser_port(config)
    _check_sip_tls_port(config)
    _check_accounts(config.accounts)
    check_routes(config.routes, [account.name for account in config.accounts])
    _check_exposure(config)
    _check_tls(config.http)
    cluster_secret(config.cluster.redis_url, config.cluster.secret)
    return config
