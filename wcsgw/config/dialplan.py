"""``[dialplan]`` and ``[[routes]]``: how typed numbers are normalised and where they go
(docs/dial-plan.md; the sans-IO plan itself is :mod:`wcsgw.calls.dialplan`).

Why a module of its own: a route is a table with a choice of keys (``prefix`` or ``pattern``),
a rule across sections (its ``account`` must be an ``[[accounts]] name``) and values that end
up in Request-URIs (``prepend``), so each is checked here and a bad one names its key.  Every
key is optional; with none set the gateway dials exactly as it did without a dial plan.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Sequence

import attrs

from wcsgw.config.checks import boolean, int_range, one_of, show, string
from wcsgw.config.errors import ConfigError

__all__ = ["DialPlanSettings", "RouteSettings", "check_routes", "dialplan_section", "route_list"]


@attrs.frozen
class DialPlanSettings:
    """``[dialplan]``: numbers are normalised to E.164 only when ``country_code`` is set."""

    country_code: str = ""
    national_prefix: str = "0"
    international_prefix: str = "00"
    unrouted: str = "own"


@attrs.frozen
class RouteSettings:
    """One ``[[routes]]`` entry: ``prefix`` or ``pattern`` (a regular expression the whole
    normalised number must match), then where and how the number goes."""

    prefix: str = ""
    pattern: str = ""
    account: str = ""
    strip: int = 0
    prepend: str = ""
    user_phone: bool = False
    refuse: bool = False


def _digits(most: int, *, empty: bool = True) -> Callable[[str, Any], str]:
    def check(key: str, value: Any) -> str:
        text = string(key, value)
        if not re.fullmatch(f"[0-9]{{{0 if empty else 1},{most}}}", text):
            raise ConfigError(key, f"must be {'' if empty else '1-'}{most} digits, got "
                              f"{show(text)}")
        return text
    return check


def _number_text(key: str, value: Any) -> str:
    text = string(key, value)
    if not re.fullmatch(r"\+?[0-9*#]{0,32}", text):
        raise ConfigError(key, f"must be a number (an optional + then digits, * or #), got "
                          f"{show(text)}")
    return text


def _pattern(key: str, value: Any) -> str:
    text = string(key, value)
    try:
        re.compile(text)
    except re.error as exc:
        raise ConfigError(key, f"is not a regular expression ({exc}), got {show(text)}") from None
    return text


_SECTION: dict[str, Callable[[str, Any], Any]] = {
    "country_code": _digits(3),
    "national_prefix": _digits(4),
    "international_prefix": _digits(4),
    "unrouted": one_of("own", "refuse"),
}
_ROUTE: dict[str, Callable[[str, Any], Any]] = {
    "prefix": _number_text,
    "pattern": _pattern,
    "account": string,
    "strip": int_range(0, 32),
    "prepend": _number_text,
    "user_phone": boolean,
    "refuse": boolean,
}


def _table(where: str, raw: Any, rules: dict[str, Callable[[str, Any], Any]],
           form: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ConfigError(where, f"must be a table ({form}), got {show(raw)}")
    values = {}
    for key, value in raw.items():
        if key not in rules:
            raise ConfigError(f"{where}.{key}", f"unknown key (known: {', '.join(rules)})")
        values[key] = rules[key](f"{where}.{key}", value)
    return values


def dialplan_section(raw: Any) -> DialPlanSettings:
    return DialPlanSettings(**_table("dialplan", raw, _SECTION, "[dialplan]"))


def route_list(raw: Any) -> tuple[RouteSettings, ...]:
    if not isinstance(raw, list):
        raise ConfigError("routes", f"must be an array of tables ([[routes]]), got {show(raw)}")
    routes = []
    for i, item in enumerate(raw):
        values = _table(f"routes[{i}]", item, _ROUTE, "[[routes]]")
        if ("prefix" in values) == ("pattern" in values):
            raise ConfigError(f"routes[{i}].prefix", "exactly one of prefix and pattern must "
                              "be set")
        routes.append(RouteSettings(**values))
    return tuple(routes)


def check_routes(routes: Sequence[RouteSettings], account_names: Sequence[str]) -> None:
    """A route's ``account`` must be a server-held account's name; a refusing route carries
    nothing, so it rewrites nothing either."""
    for i, route in enumerate(routes):
        if route.account and route.account not in account_names:
            known = ", ".join(name for name in account_names if name) or "none"
            raise ConfigError(f"routes[{i}].account", f"names no [[accounts]] name (known: "
                              f"{known}), got {show(route.account)}")
        if route.refuse and (route.account or route.strip or route.prepend or route.user_phone):
            raise ConfigError(f"routes[{i}].refuse", "a refusing route takes no account, strip, "
                              "prepend or user_phone")
