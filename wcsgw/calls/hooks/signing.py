"""The ``X-Wcsgw-Signature`` header of every hook request (docs/contract.md, fixed there).

Why a timestamp inside the MAC: a backend that checks ``t`` against its own clock refuses a
request recorded and replayed later; why the raw body: the backend verifies the bytes it
received, before parsing them, so no JSON re-serialisation can make two sides disagree.
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["HEADER", "sign", "verify"]

#: the header's name (docs/contract.md)
HEADER = "X-Wcsgw-Signature"


def sign(secret: str, body: bytes, now: int) -> str:
    """The header value ``t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>``."""
    mac = hmac.new(secret.encode(), str(now).encode() + b"." + body, hashlib.sha256)
    return f"t={now},v1={mac.hexdigest()}"


def verify(secret: str, body: bytes, header: str, now: int, tolerance: int = 300) -> bool:
    """What a backend does with the header (the test backend and docs/hooks.md use it):
    well-formed, within ``tolerance`` seconds of ``now``, and the MAC equal in constant time."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    stamp, given = fields.get("t", ""), fields.get("v1", "")
    if not stamp.isdigit() or abs(now - int(stamp)) > tolerance:
        return False
    expected = sign(secret, body, int(stamp)).rpartition("v1=")[2]
    return hmac.compare_digest(expected, given)
