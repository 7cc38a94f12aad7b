"""Reading the config file, and the ``WCSGW_<SECTION>_<KEY>`` environment overrides laid over
it, before :func:`~wcsgw.config.sections.parse_config` validates the result.

Why overrides are applied to the parsed file and not to the settings: they then pass the very
same checks as the file's keys, and an error names the variable it came from
(``sip.port (from WCSGW_SIP_PORT): ...``).  ``WCSGW_CONFIG`` is not an override: it names the
config file for ``twistd.tac``.
"""

from __future__ import annotations

import os
import tomllib
from typing import Any, Mapping

import attrs

from wcsgw.config.checks import show
from wcsgw.config.errors import ConfigError
from wcsgw.config.sections import REMOVED, SCHEMA, parse_config
from wcsgw.config.settings import Config

__all__ = ["CONFIG_PATH_ENV", "ENV_PREFIX", "load_config"]

#: Prefix of environment overrides, ``WCSGW_<SECTION>_<KEY>``.
ENV_PREFIX = "WCSGW_"
#: Environment variable naming the config file (read by twistd.tac); never an override.
CONFIG_PATH_ENV = "WCSGW_CONFIG"


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
        if section not in SCHEMA:
            known = ", ".join(f"{ENV_PREFIX}{s.upper()}_<KEY>" for s in SCHEMA)
            raise ConfigError(name, f"unknown section {section!r} (expected {known})")
        cls, rules = SCHEMA[section]
        if key not in rules:
            if f"{section}.{key}" in REMOVED:  # an old deployment: say where it went
                raise ConfigError(name, REMOVED[f"{section}.{key}"])
            raise ConfigError(
                name, f"unknown key {section}.{key} (known: {', '.join(rules)})"
            )
        default = attrs.fields_dict(cls)[key].default
        table = data.get(section)
        if table is None:
            table = data[section] = {}
        elif not isinstance(table, dict):
            raise ConfigError(section, f"must be a table ([{section}]), got {show(table)}")
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
        # The key, or a part of its value (an array item, a table's key: key[0].ttl).
        source = next((var for key, var in from_env.items() if e.key == key
                       or e.key.startswith((f"{key}[", f"{key}."))), None)
        if source is not None:
            raise ConfigError(f"{e.key} (from {source})", e.problem) from None
        raise
