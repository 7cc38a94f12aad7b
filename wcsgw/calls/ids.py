"""Ids that come from outside, and names the gateway makes itself.

Why one check for every id: a ``callId`` or ``sessionId`` sent by a browser or an operator
becomes a registry key (``CallGateway.calls``, ``sessions``), appears in logs and, before issue
10, became a file name (``<callId>.wav``: ``"../outside/victim"`` wrote outside the recordings
folder).  Rather than guard each use, every such id is held to one shape at the door, the same
in JSON-RPC, REST and the call layer: :data:`ID_PATTERN` (one regex, published as is in the
OpenAPI document) — 1 to :data:`MAX_ID` characters of ``A-Z a-z 0-9 _ . ~ : @ + = -``, starting
with a letter, digit or ``_``, never two dots in a row.  So no ``/`` or ``\\``, no ``..``, no
control characters, no spaces, no percent-escapes, nothing that means something to a file
system, a shell, a log line or a SIP header.  UUIDs (what the Web SDK and WCS clients send)
and the short ids people type (``c1``, ``rest-2``) pass.

And why recordings are not named after any id: even a well-formed id is the caller's choice
(two operators, or an attacker guessing the next one, could aim at the same name).  A recording
is named by :func:`recording_name` — UTC time plus 64 random bits — and created with
``O_EXCL|O_NOFOLLOW`` (:func:`wcsgw.media.wavfile.create_new`).

Pure functions, no I/O.
"""

from __future__ import annotations

import re
import secrets
import time
from typing import Any, cast

from wcsgw.calls.errors import CallError, Codes

__all__ = ["ID_PATTERN", "ID_SHAPE", "MAX_ID", "check_id", "id_problem", "recording_name"]

#: Longest id accepted (characters).
MAX_ID = 128
#: The shape of every outside id (anchored; the same meaning in Python ``re`` and ECMA-262,
#: and no look-around, so schema-driven generators handle it): a dot is always followed by a
#: character that is not a dot (or ends the id).  The length (:data:`MAX_ID`) is checked apart.
ID_PATTERN = r"^[A-Za-z0-9_]([A-Za-z0-9_~:@+=-]|\.[A-Za-z0-9_~:@+=-])*\.?$"
_ID = re.compile(ID_PATTERN)
#: What :data:`ID_PATTERN` asks for, in words (error messages).
ID_SHAPE = ("must be 1 to 128 of the characters A-Z a-z 0-9 _ . ~ : @ + = - (starting with a "
            "letter, digit or _; no '..', '/', spaces or control characters)")


def id_problem(value: Any) -> str | None:
    """What is wrong with ``value`` as an id, in words (None: it is fine)."""
    if not isinstance(value, str):
        return "must be a string"
    if len(value) > MAX_ID:
        return f"is too long (at most {MAX_ID} characters)"
    if _ID.fullmatch(value) is None:
        return ID_SHAPE
    return None


def check_id(value: Any, field: str) -> str:
    """``value`` if it is a well-formed id, else ``CallError(INVALID)`` naming ``field``
    (JSON-RPC answers it with ``data.field``, REST with 400 and ``field``)."""
    problem = id_problem(value)
    if problem is not None:
        raise CallError(Codes.INVALID, f"{field} {problem}", field)
    return cast(str, value)  # id_problem found nothing: it is a str


def recording_name(now: float | None = None) -> str:
    """A fresh recording file name, ``YYYYMMDDTHHMMSSZ-<16 hex>.wav``: sortable by start time,
    unguessable, and made from nothing a client sent."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))
    return f"{stamp}-{secrets.token_hex(8)}.wav"
