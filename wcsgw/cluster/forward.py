"""The internal channel's signature: how one node proves to another that a REST request it
hands over comes from the cluster (docs/scaling.md, "REST on any node"; docs/security.md).

Why a signature and not the operator's bearer token: a node must not hold (or pass on) the
operator's tokens, and the receiving node must know the request was *handed over* — so it
answers it for its own calls alone and never hands it on again (no loops).  One header::

    X-Wcsgw-Cluster: t=<unix seconds>,node=<sending node_id>,n=<random hex>,v1=<hex HMAC-SHA256>

over ``t``, ``node``, ``n``, the method, the route path (``/call/terminate``) and the SHA-256
of the body, keyed with ``[cluster] secret``.  A request is accepted within :data:`WINDOW`
seconds of ``t`` (either way: the clocks of two machines differ a little), and once: the
:class:`ReplayGuard` remembers each (node, n) for the window, so a captured request sent
again (the same DTMF twice, say) is refused.  The comparison is constant time.  No I/O: the
clock is a parameter.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

import attrs

__all__ = ["HEADER", "WINDOW", "ReplayGuard", "Signed", "SignatureError", "sign", "verify"]

#: the header that carries the signature, and marks a request as handed over
HEADER = b"x-wcsgw-cluster"
#: seconds a signed request stays good (a replay later than this is refused)
WINDOW = 30
_MAX_HEADER = 512
_NONCE = re.compile(r"[0-9a-f]{16,64}")


class SignatureError(Exception):
    """A signed request that is not good; the message says why (never the header's value)."""


@attrs.frozen
class Signed:
    """A request checked good: ``node`` handed it over at ``timestamp``."""

    node: str
    timestamp: int
    nonce: str


def _mac(secret: str, timestamp: int, node: str, nonce: str, method: str, path: str,
         body: bytes) -> str:
    message = "\n".join((str(timestamp), node, nonce, method.upper(), path,
                         hashlib.sha256(body).hexdigest()))
    return hmac.new(secret.encode("utf-8"), message.encode("utf-8"), hashlib.sha256).hexdigest()


def sign(secret: str, node: str, method: str, path: str, body: bytes, now: float,
         nonce: str | None = None) -> bytes:
    """The :data:`HEADER` value for a request ``node`` sends at ``now`` (``nonce``: random
    unless a test gives one)."""
    if "," in node or "=" in node:
        raise ValueError("a node id with ',' or '=' cannot be signed")
    timestamp = int(now)
    nonce = nonce if nonce is not None else secrets.token_hex(12)
    mac = _mac(secret, timestamp, node, nonce, method, path, body)
    return f"t={timestamp},node={node},n={nonce},v1={mac}".encode("utf-8")


def verify(secret: str, header: bytes, method: str, path: str, body: bytes,
           now: float) -> Signed:
    """The :class:`Signed` a good ``header`` says, else :class:`SignatureError`.

    The MAC is compared before the time, so a wrong key and a stale request are both refused
    without saying which part would have been right."""
    if len(header) > _MAX_HEADER:
        raise SignatureError("the cluster signature is too long")
    try:
        text = header.decode("ascii")
    except UnicodeDecodeError:
        raise SignatureError("the cluster signature is not ASCII") from None
    parts: dict[str, str] = {}
    for item in text.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep or key in parts:
            raise SignatureError("the cluster signature is malformed")
        parts[key] = value
    if (set(parts) != {"t", "node", "n", "v1"} or not parts["t"].isdigit() or not parts["node"]
            or not _NONCE.fullmatch(parts["n"])):
        raise SignatureError("the cluster signature is malformed")
    timestamp = int(parts["t"])
    expected = _mac(secret, timestamp, parts["node"], parts["n"], method, path, body)
    if not hmac.compare_digest(expected.encode("ascii"), parts["v1"].encode("ascii")):
        raise SignatureError("the cluster signature does not match")
    if abs(now - timestamp) > WINDOW:
        raise SignatureError("the cluster signature is out of its time window")
    return Signed(parts["node"], timestamp, parts["n"])


class ReplayGuard:
    """The (node, nonce) of every good request for as long as it could be replayed
    (:data:`WINDOW` after its time), at most ``capacity`` of them.  Full of unexpired entries,
    it refuses rather than forgets (fail closed): far above any REST rate."""

    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = capacity
        self._until: dict[tuple[str, str], float] = {}

    def admit(self, signed: Signed, now: float) -> None:
        """Remember ``signed``; :class:`SignatureError` if it was seen already."""
        key = (signed.node, signed.nonce)
        if key in self._until:
            raise SignatureError("the cluster request was replayed")
        if len(self._until) >= self.capacity:
            self._until = {k: t for k, t in self._until.items() if t >= now}
            if len(self._until) >= self.capacity:
                raise SignatureError("too many cluster requests to remember")
        self._until[key] = signed.timestamp + WINDOW

    def __len__(self) -> int:
        return len(self._until)
