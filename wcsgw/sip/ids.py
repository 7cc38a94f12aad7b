"""Random identifiers a SIP user agent mints: tags, Call-IDs, Via branches, cnonces.

All of them come from :mod:`secrets`, not :mod:`random`: RFC 3261 §19.3 asks for at least
32 bits of cryptographic randomness in tags and "globally unique" Call-IDs, and §8.1.1.7 asks
that branches be unique across space and time.  A predictable branch or tag lets an off-path
attacker forge a CANCEL/BYE for someone else's call, so these are security identifiers, not
just labels.  Hex keeps every value inside the SIP ``token`` / ``word`` grammars, so nothing
needs quoting or escaping wherever it is placed.
"""

from __future__ import annotations

import secrets

#: RFC 3261 §8.1.1.7: a branch made by an RFC 3261 element starts with this cookie.
BRANCH_MAGIC_COOKIE = "z9hG4bK"


def new_tag() -> str:
    """A From/To tag (RFC 3261 §19.3): 64 random bits, far above the 32 required."""
    return secrets.token_hex(8)


def new_call_id(host: str | None = None) -> str:
    """A Call-ID (RFC 3261 §8.1.1.4): 128 random bits, ``@host`` appended when given.

    The host part is optional in the grammar (``word [ "@" word ]``); it only helps humans
    reading traces, uniqueness comes from the random part.
    """
    local = secrets.token_hex(16)
    return f"{local}@{host}" if host else local


def new_branch() -> str:
    """A Via branch (RFC 3261 §8.1.1.7): the magic cookie followed by 96 random bits."""
    return BRANCH_MAGIC_COOKIE + secrets.token_hex(12)


def new_cnonce() -> str:
    """A Digest client nonce (RFC 7616 §3.4): 128 random bits, hex so it never needs escaping."""
    return secrets.token_hex(16)
