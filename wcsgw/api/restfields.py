"""Reading a REST request body's fields: each reader returns the typed value or raises
:class:`RestError` (400) naming the field, in words an operator reads ("sipPort must be a port
number from 1 to 65535").

Why hand-written readers and not a JSON-Schema validator run at request time: the messages
name the field and say what it must be, and the gateway has no runtime dependency on a
validator.  The patterns are :mod:`wcsgw.api.restrules`', the ones the OpenAPI document
publishes, so the document and the server agree by construction.  What no pattern can say
about ``playFile`` (the file exists inside the media folder and is a WAV the player reads) is
:func:`resolve_play_file`'s.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Any, Mapping, Sequence

from wcsgw.api.methods import describe_type
from wcsgw.api.restrules import BOOLEAN_TEXT, MAX_TEXT, PORT_TEXT
from wcsgw.calls import ids

__all__ = [
    "HOST_PROBLEM",
    "NONBLANK_PROBLEM",
    "TEXT_PROBLEM",
    "TOKEN_PROBLEM",
    "RestError",
    "bad",
    "call_id",
    "choice",
    "flag",
    "ident",
    "matches",
    "port",
    "resolve_play_file",
    "string",
    "text",
]


class RestError(Exception):
    """An answer other than 200: HTTP status, message (naming the field), the field."""

    def __init__(self, status: int, message: str, field: str | None = None,
                 headers: Mapping[bytes, bytes] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.headers = dict(headers or {})


# -- field readers: typed value or RestError(400) naming the field ---------------------------------

_RE: dict[str, re.Pattern[str]] = {}


def matches(pattern: str, value: str) -> bool:
    compiled = _RE.get(pattern)
    if compiled is None:
        compiled = _RE[pattern] = re.compile(pattern)
    return compiled.search(value) is not None


def bad(field: str, problem: str) -> RestError:
    return RestError(400, f"{field} {problem}", field)


def text(body: Mapping[str, Any], field: str, required: bool) -> str | None:
    """The field if it is a string, None when absent (400 when required or not a string)."""
    if field not in body:
        if required:
            raise bad(field, "is required")
        return None
    value = body[field]
    if not isinstance(value, str):
        raise bad(field, f"must be a string, got {describe_type(value)}")
    return value


def string(body: Mapping[str, Any], field: str, pattern: str, problem: str, *,
           required: bool = False, max_length: int = MAX_TEXT,
           min_length: int = 0) -> str | None:
    """The field as a string, None when absent; ``problem`` says what the pattern demands."""
    value = text(body, field, required)
    if value is None:
        return None
    if len(value) > max_length:
        raise bad(field, f"is too long (at most {max_length} characters)")
    if len(value) < min_length:
        raise bad(field, "must not be empty")
    if not matches(pattern, value):
        raise bad(field, problem)
    return value


def flag(body: Mapping[str, Any], field: str, default: bool) -> bool:
    if field not in body:
        return default
    value = body[field]
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value in BOOLEAN_TEXT:
        return value == "true"
    raise bad(field, f'must be true or false (or "true"/"false"), got {describe_type(value)}')


def port(body: Mapping[str, Any], field: str, default: int) -> int:
    if field not in body:
        return default
    value = body[field]
    if isinstance(value, str) and matches(PORT_TEXT, value):
        return int(value) if value else default
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # JSON Schema's "integer" includes 5060.0
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535:
        return value
    raise bad(field, "must be a port number from 1 to 65535 (a number or decimal text)")


def choice(body: Mapping[str, Any], field: str, choices: Sequence[str]) -> str | None:
    if field not in body:
        return None
    value = body[field]
    if not isinstance(value, str) or value not in choices:
        shown = ", ".join(repr(c) for c in choices)
        raise bad(field, f"must be one of {shown}")
    return value


TEXT_PROBLEM = "must be one line (no control characters)"
NONBLANK_PROBLEM = "must be one line that is not blank"
TOKEN_PROBLEM = "must be a number, user name or URI without spaces or control characters"
HOST_PROBLEM = "must be a host name or IP address (the port goes in sipPort)"


def ident(body: Mapping[str, Any], field: str, required: bool = True) -> str | None:
    """An id (callId, sessionId) held to the one shape of :mod:`wcsgw.calls.ids`: it becomes
    a registry key, and no id may ever reach a file name or a log line unchecked."""
    value = text(body, field, required)
    if value is None:
        return None
    problem = ids.id_problem(value)
    if problem is not None:
        raise bad(field, problem)
    return value


def call_id(body: Mapping[str, Any], required: bool = True) -> str | None:
    return ident(body, "callId", required)


# -- media paths --------------------------------------------------------------------------------


def resolve_play_file(folder: Path | None, name: str) -> Path:
    """The real path of ``name`` inside the media ``folder``, or RestError(400, playFile).

    Refused: absolute paths and ``..`` segments (also by the schema), and anything that resolves
    outside the folder through a symlink (the folder itself is resolved too, so a media folder
    that is itself a symlink works).  The file must be a WAV the player can read.  The lead
    opens the returned real path; nothing here holds it open.
    """
    if folder is None:
        raise bad("playFile", "cannot be used: no media folder is configured")
    if name.startswith("/") or ".." in PurePosixPath(name).parts or "\x00" in name:
        raise bad("playFile", "must be a file name or relative path under the media folder")
    try:
        root = folder.resolve(strict=True)
        real = (root / name).resolve(strict=True)
    except (OSError, RuntimeError):  # missing, or a symlink loop
        raise bad("playFile", "names no file in the media folder") from None
    if not real.is_relative_to(root):
        raise bad("playFile", "resolves outside the media folder")
    if not real.is_file():
        raise bad("playFile", "is not a regular file")
    # the WAV reader brings numpy and the codecs: a file call's, not every start's (issue 19)
    from wcsgw.media.wavfile import WavError, read_wav_format

    try:
        read_wav_format(real)
    except (WavError, OSError) as exc:
        raise bad("playFile", f"is not a WAV file the gateway can play: {exc}") from None
    return real
