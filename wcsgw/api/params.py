"""The param readers of the session's JSON-RPC methods: each takes the params object and a
name and returns the typed value or raises :class:`ParamError` naming the field.

Why apart from :mod:`wcsgw.api.methods`: the same readers check the browser's own values and
the values a hook reply puts in their place (:mod:`wcsgw.api.asking`), so both go through one
set of rules; and the methods module stays about the methods.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Mapping, cast

from wcsgw.calls.gateway import CallError

__all__ = ["ParamError", "describe_type"]

_MAX_NAME = 256  # logins, domains, callees, header values: generous, but bounded
_MAX_SDP = 128 * 1024  # an audio+video offer from Chrome is ~5-15 KB
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$"
)
_MAX_DTMF = 32  # digits per sendDtmf: a PIN or a menu path, not a tone-dialled novel
_DTMF = re.compile(rf"^[0-9*#A-Da-d]{{1,{_MAX_DTMF}}}$")


class ParamError(Exception):
    """A param is missing or wrong: answered -32602 with ``data.field``."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field} {problem}")
        self.field = field
        self.problem = problem


# ---------------------------------------------------------------------------------------------
# Param readers: each takes the params object and a name and returns the typed value or raises
# ParamError naming the field.


def describe_type(value: Any) -> str:
    """A JSON value's type in words, for errors that name what was sent (JSON-RPC, REST)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _string(
    params: Mapping[str, Any],
    name: str,
    *,
    required: bool = False,
    max_len: int = _MAX_NAME,
    multiline: bool = False,
) -> str:
    """A string param; absent or null is "" (an error when ``required``, as is "")."""
    value = params.get(name)
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ParamError(name, f"must be a string, got {describe_type(value)}")
    if len(value) > max_len:
        raise ParamError(name, f"is too long (at most {max_len} characters)")
    if not multiline and _CONTROL.search(value):
        raise ParamError(name, "must not contain control characters (CR, LF, ...)")
    if required and not value.strip():
        raise ParamError(name, "is required")
    return value


def _boolean(params: Mapping[str, Any], name: str, default: bool) -> bool:
    value = params.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ParamError(name, f"must be true or false, got {describe_type(value)}")
    return value


def _port(params: Mapping[str, Any], name: str, default: int) -> int:
    """A port as a number, or as decimal text (HTML form fields give text); "" is the default."""
    value = params.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParamError(name, f"must be a port number, got {describe_type(value)}")
    if not 1 <= value <= 65535:
        raise ParamError(name, f"must be from 1 to 65535, got {value}")
    return value


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


def _host(params: Mapping[str, Any], name: str) -> str:
    """A host name or IP address (IPv6 with or without brackets), or "".

    No ``:port``: docs/contract.md puts the port in ``sipPort`` and the policy compares bare
    hosts, so ``pbx.example.com:5070`` is refused with a message saying where the port goes.
    """
    text = _string(params, name).strip()
    if not text:
        return ""
    bare = text[1:-1] if text.startswith("[") and text.endswith("]") and ":" in text else text
    if _is_ip(bare) or _HOSTNAME.match(bare):
        return bare
    hint = " (the port goes in sipPort)" if re.search(r":\d*$", text) else ""
    raise ParamError(name, "must be a host name or IP address" + hint)


def _choice(params: Mapping[str, Any], name: str, choices: tuple[str, ...], default: str) -> str:
    value = params.get(name)
    if value is None or value == "":
        return default
    if not isinstance(value, str) or value.lower() not in [c.lower() for c in choices]:
        raise ParamError(name, f"must be one of {', '.join(choices)}")
    return next(c for c in choices if c.lower() == value.lower())


def _object(params: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = params.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ParamError(name, f"must be an object, got {describe_type(value)}")
    return value


def _sip_headers(params: Mapping[str, Any], policy: Any, name: str = "sipHeaders") -> dict[str, str]:
    """Extra SIP headers for the INVITE, checked by the gateway's outbound policy
    (:meth:`wcsgw.calls.policy.Policy.outgoing_headers`: the one place that decides what
    leaves the gateway — allow-list, no routing or identity headers, one-line values); a
    refusal is -32602 naming ``sipHeaders.<name>``.  Also WCS's array form, ``["Name: value",
    ...]``, read into the same object first (:func:`_header_lines`)."""
    value = params.get(name)
    if isinstance(value, list):
        return _header_lines(value, policy, name)
    headers = _object(params, name)
    return _policy_headers(policy, headers, name)


def _policy_headers(policy: Any, headers: dict[str, Any], name: str,
                    where: str | None = None) -> dict[str, str]:
    """``policy.outgoing_headers`` with its refusal as a :class:`ParamError`; ``where`` (an
    array entry, ``sipHeaders[2]``) replaces the field it names."""
    try:
        return cast("dict[str, str]", policy.outgoing_headers(headers, name))
    except CallError as e:
        field = e.field or name
        problem = e.message[len(field):].strip() if e.message.startswith(field) else e.message
        if where is not None:
            raise ParamError(where, f"({field[len(name) + 1:] or name}) {problem}") from None
        raise ParamError(field, problem) from None


def _header_lines(lines: list[Any], policy: Any, name: str) -> dict[str, str]:
    """WCS's ``sipHeaders`` array: each entry one ``Name: value`` string, checked entry by
    entry so that a refusal names ``sipHeaders[i]`` (the browser's own index), then as a whole
    (the count limit).  A name given twice is refused: the headers are one object inside."""
    headers: dict[str, str] = {}
    for i, line in enumerate(lines):
        where = f"{name}[{i}]"
        if not isinstance(line, str):
            raise ParamError(where, f"must be a \"Name: value\" string, got {describe_type(line)}")
        header, colon, text = line.partition(":")
        header = header.strip()
        if not colon or not header:
            raise ParamError(where, 'must be a "Name: value" string')
        if any(header.lower() == seen.lower() for seen in headers):
            raise ParamError(where, f"repeats the header {header[:64]}")
        headers.update(_policy_headers(policy, {header: text.strip(" \t")}, name, where))
    return _policy_headers(policy, headers, name)


def _call_id(params: Mapping[str, Any]) -> str:
    """The ``callId`` of an existing call (required; whether it is this session's call is the
    gateway's check: 1003 otherwise)."""
    return _string(params, "callId", required=True, max_len=128)
