"""The Digest header grammar as SIP uses it: the algorithms we can answer, the values
(:class:`Credentials`, :class:`Challenge`), the parsing of ``WWW-Authenticate`` /
``Proxy-Authenticate`` and ``Authorization`` values, and which challenge to answer.

References: RFC 7235 §2.1 and RFC 3261 §25.1 (auth grammar, read leniently), RFC 7616 §3.3
(the challenge), RFC 8760 §2.4 (prefer the strongest algorithm offered), RFC 3261 §22.3 (one
answer per realm).  The arithmetic is in :mod:`wcsgw.sip.digestmath`, the stateful client and
its trust rule in :mod:`wcsgw.sip.digest`.
"""

from __future__ import annotations

import hashlib
from typing import Iterable

import attr

from wcsgw.sip.message import Response

#: Algorithms we can answer, strongest first (RFC 8760 §2.4: a UAC MUST use the topmost
#: algorithm it supports among those offered).  ``-sess`` variants rank just below their base.
ALGORITHM_PREFERENCE: tuple[str, ...] = (
    "SHA-512-256",
    "SHA-512-256-SESS",
    "SHA-256",
    "SHA-256-SESS",
    "MD5",
    "MD5-SESS",
)

HASHLIB_NAMES: dict[str, str] = {"MD5": "md5", "SHA-256": "sha256", "SHA-512-256": "sha512_256"}


def _hash_available(base: str) -> bool:
    try:
        hashlib.new(HASHLIB_NAMES[base])
    except (KeyError, ValueError):
        return False
    return True


#: What this Python's hashlib can actually compute (SHA-512/256 depends on OpenSSL).
SUPPORTED_ALGORITHMS: frozenset[str] = frozenset(
    a for a in ALGORITHM_PREFERENCE if _hash_available(a.removesuffix("-SESS"))
)


def _mask(_: object) -> str:
    return "'***'"


@attr.s(frozen=True, slots=True, auto_attribs=True)
class Credentials:
    """A username and password, optionally bound to one realm.

    ``realm=None`` answers any realm, which is what a softphone account does: the SIP server
    names its realm in the challenge and the user only knows login and password.  The password
    is masked in ``repr()`` (and left out of equality-based debugging output) on purpose.
    """

    username: str
    password: str = attr.ib(repr=_mask)
    realm: str | None = None

    def answers(self, realm: str) -> bool:
        return self.realm is None or self.realm == realm


class DigestError(ValueError):
    """A challenge we cannot answer (unknown algorithm or qop, missing nonce)."""


@attr.s(frozen=True, slots=True, auto_attribs=True)
class Challenge:
    """One parsed ``Digest`` challenge (RFC 7616 §3.3).

    ``algorithm`` is upper case (``MD5`` when the server omitted it, RFC 2617 §3.2.1);
    ``qop`` holds the offered options lower case, empty when the server sent no ``qop``
    (the RFC 2069 compatibility mode).  ``proxy`` says it came from ``Proxy-Authenticate``
    (a 407), so the answer goes into ``Proxy-Authorization``.
    """

    realm: str
    nonce: str
    algorithm: str = "MD5"
    qop: tuple[str, ...] = ()
    opaque: str | None = None
    stale: bool = False
    userhash: bool = False
    domain: str | None = None
    proxy: bool = False
    scheme: str = "Digest"
    #: every parameter as received, names lower case (for extensions we do not interpret)
    params: dict[str, str] = attr.ib(factory=dict, eq=False)

    @property
    def supported(self) -> bool:
        """Whether we can compute an answer: a known algorithm and a usable qop (or none)."""
        if self.algorithm not in SUPPORTED_ALGORITHMS or not self.nonce:
            return False
        return not self.qop or "auth" in self.qop or "auth-int" in self.qop

    def chosen_qop(self) -> str | None:
        """``auth`` whenever offered; ``auth-int`` only if it is the only option.

        ``auth`` is preferred because ``auth-int`` hashes the body, which proxies and B2BUAs
        along the way may legitimately rewrite (SDP in particular), making it fragile.
        """
        if not self.qop:
            return None
        if "auth" in self.qop:
            return "auth"
        if "auth-int" in self.qop:
            return "auth-int"
        raise DigestError(f"no supported qop in {self.qop!r}")


# --------------------------------------------------------------------------------------------
# Parsing (RFC 7235 §2.1 / RFC 3261 §25.1 auth grammar, leniently)

_WS = " \t\r\n"


class _Scanner:
    __slots__ = ("text", "pos")

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip_ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in _WS:
            self.pos += 1

    def skip_ws_and_commas(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in _WS + ",":
            self.pos += 1

    def token(self) -> str:
        """A run of characters up to whitespace, ``=``, ``,`` or a quote (lenient token)."""
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in _WS + '=,"':
            self.pos += 1
        return self.text[start : self.pos]

    def unquoted_value(self) -> str:
        """An unquoted parameter value: real servers put ``/``, ``=`` ... in unquoted nonces."""
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in _WS + ",":
            self.pos += 1
        return self.text[start : self.pos]

    def quoted_string(self) -> str:
        """A quoted-string with ``\\`` escapes (RFC 3261 §25.1 quoted-pair)."""
        assert self.peek() == '"'
        self.pos += 1
        out: list[str] = []
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch == "\\" and self.pos + 1 < len(self.text):
                out.append(self.text[self.pos + 1])
                self.pos += 2
                continue
            if ch == '"':
                self.pos += 1
                return "".join(out)
            out.append(ch)
            self.pos += 1
        raise DigestError("unterminated quoted string in challenge")


def _parse_auth_items(value: str) -> list[tuple[str, dict[str, str]]]:
    """Split a header value into ``(scheme, params)`` items.

    A new challenge starts where a token is followed by whitespace and another token rather
    than by ``=``; this is how ``Digest realm="a", nonce="1", Digest realm="a", nonce="2",
    algorithm=SHA-256`` (two challenges folded into one value) is told apart from parameters.
    """
    s = _Scanner(value)
    items: list[tuple[str, dict[str, str]]] = []
    s.skip_ws_and_commas()
    while not s.at_end():
        scheme = s.token()
        if not scheme:
            raise DigestError(f"expected an auth scheme at offset {s.pos}")
        params: dict[str, str] = {}
        while True:
            s.skip_ws_and_commas()
            if s.at_end():
                break
            mark = s.pos
            name = s.token()
            s.skip_ws()
            if not name or s.peek() != "=":
                # ``Scheme2 ...`` begins the next challenge (or junk: let the outer loop judge)
                s.pos = mark
                break
            s.pos += 1  # "="
            if s.peek() in ("=", ",", "") and scheme.lower() != "digest":
                # token68 of a non-Digest scheme (``Basic QWxh==``): swallow the padding
                while s.peek() == "=":
                    s.pos += 1
                continue
            s.skip_ws()
            val = s.quoted_string() if s.peek() == '"' else s.unquoted_value()
            params[name.lower()] = val
        items.append((scheme, params))
        s.skip_ws_and_commas()
    return items


def parse_challenges(value: str, *, proxy: bool = False) -> list[Challenge]:
    """Every Digest challenge in one ``WWW-Authenticate``/``Proxy-Authenticate`` value.

    Challenges of other schemes are skipped (SIP forbids Basic, RFC 3261 §22.1).  A Digest
    challenge without realm or nonce is malformed and raises :class:`DigestError`; one with an
    algorithm we do not know is returned with ``supported == False`` so the caller can still
    see it was offered.
    """
    out: list[Challenge] = []
    for scheme, params in _parse_auth_items(value):
        if scheme.lower() != "digest":
            continue
        if "realm" not in params or "nonce" not in params:
            raise DigestError("Digest challenge without realm or nonce")
        qop = tuple(q.strip().lower() for q in params["qop"].split(",") if q.strip()) if "qop" in params else ()
        out.append(
            Challenge(
                realm=params["realm"],
                nonce=params["nonce"],
                algorithm=params.get("algorithm", "MD5").strip().upper(),
                qop=qop,
                opaque=params.get("opaque"),
                stale=params.get("stale", "").strip().lower() == "true",
                userhash=params.get("userhash", "").strip().lower() == "true",
                domain=params.get("domain"),
                proxy=proxy,
                scheme=scheme,
                params=params,
            )
        )
    return out


def challenges_from_response(response: Response) -> list[Challenge]:
    """The Digest challenges of a 401 (``WWW-Authenticate``) or 407 (``Proxy-Authenticate``).

    Malformed header values are skipped rather than fatal: a proxy may add a broken challenge
    next to a good one from the registrar, and the good one should still be answered.
    """
    proxy = response.status == 407
    name = "Proxy-Authenticate" if proxy else "WWW-Authenticate"
    out: list[Challenge] = []
    for value in response.headers.get_all(name):
        try:
            out.extend(parse_challenges(value, proxy=proxy))
        except DigestError:
            continue
    return out


def _rank(challenge: Challenge) -> int:
    return ALGORITHM_PREFERENCE.index(challenge.algorithm)


def select_challenges(challenges: Iterable[Challenge]) -> dict[str, Challenge]:
    """The best supported challenge per realm, strongest algorithm first (RFC 8760 §2.4).

    Several realms can challenge one request (RFC 3261 §22.3: a forking proxy aggregates the
    401/407s of its branches), and the answer needs one header per realm.
    """
    best: dict[str, Challenge] = {}
    for ch in challenges:
        if not ch.supported:
            continue
        current = best.get(ch.realm)
        if current is None or _rank(ch) < _rank(current):
            best[ch.realm] = ch
    return best


def choose_challenge(challenges: Iterable[Challenge]) -> Challenge | None:
    """The single strongest supported challenge, or None (for one-realm callers)."""
    supported = [c for c in challenges if c.supported]
    return min(supported, key=_rank) if supported else None


def parse_authorization(value: str) -> dict[str, str]:
    """The parameters of a Digest ``Authorization``/``Proxy-Authorization`` value, names
    lower case, quotes and escapes removed.  Raises :class:`DigestError` if it is not Digest."""
    for scheme, params in _parse_auth_items(value):
        if scheme.lower() == "digest":
            return params
    raise DigestError("not a Digest credentials value")
