"""The config file (TOML) -> typed, validated, frozen settings.

Why this package is strict: a gateway that starts with a typo'd key silently ignored, or a port
of ``"5060"`` taken as a string, fails much later and far from the cause (no registration, a
bind error, calls to the wrong place).  So every key has a safe default (listen on loopback),
and an unknown section or key, a wrong type or an impossible value stops start-up with a
:class:`ConfigError` whose text is *one line naming the key*, e.g.
``sip.port: must be an integer from 0 to 65535, got "x"``.

Settings are attrs frozen classes (:mod:`wcsgw.config.settings`): other layers get plain typed
attributes, cannot change them by accident, and secrets (passwords, REST tokens) are masked in
``repr`` so they never reach a log line through an innocent ``log.info("{config}")``.  The
rules each key is held to are :mod:`wcsgw.config.checks`' and :mod:`wcsgw.config.sections`'
(which also checks the keys against each other: :func:`parse_config`).

Environment overrides ``WCSGW_<SECTION>_<KEY>`` (``WCSGW_SIP_PORT=5070``) exist for containers
and tests that want one value changed without writing a file (:mod:`wcsgw.config.load`, with
reading the file: :func:`load_config`).  ``WCSGW_CONFIG`` is not an override: it names the
config file for ``twistd.tac``.

Everything is importable from here, the one place the rest of the gateway imports it from.
"""

from __future__ import annotations

from wcsgw.config.errors import ConfigError
from wcsgw.config.load import CONFIG_PATH_ENV, ENV_PREFIX, load_config
from wcsgw.config.sections import parse_config
from wcsgw.config.settings import (
    LOG_LEVELS,
    Account,
    CdrSettings,
    ClusterSettings,
    CodecSettings,
    Config,
    HttpSettings,
    IceServer,
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
    advertised,
)

__all__ = [
    "ConfigError",
    "Config",
    "HttpSettings",
    "SipSettings",
    "MediaSettings",
    "TestLinesSettings",
    "RestSettings",
    "PolicySettings",
    "LimitsSettings",
    "LogSettings",
    "StateSettings",
    "CdrSettings",
    "ClusterSettings",
    "RecordingSettings",
    "CodecSettings",
    "WebRtcSettings",
    "IceServer",
    "Account",
    "LOG_LEVELS",
    "ENV_PREFIX",
    "CONFIG_PATH_ENV",
    "advertised",
    "load_config",
    "parse_config",
]
