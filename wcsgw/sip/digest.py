"""Client side of HTTP Digest authentication as SIP uses it.

References: RFC 2617 (Digest, MD5, qop), RFC 7616 (SHA-256, SHA-512/256, ``-sess``,
``userhash``), RFC 8760 (those algorithms in SIP, and "prefer the strongest"), RFC 3261 §22
(401 -> ``Authorization``, 407 -> ``Proxy-Authorization``; one header per realm).

Three layers:

* :func:`parse_challenges` turns a ``WWW-Authenticate``/``Proxy-Authenticate`` value into
  :class:`Challenge` objects (quoted strings with escapes, commas inside quotes, several
  challenges in one value, case-insensitive names);
* :func:`compute_response` / :func:`build_authorization` are the pure RFC arithmetic, tested
  against the RFCs' own vectors;
* :class:`DigestClient` is the stateful part a user agent keeps per account: the last challenge
  per realm (so later requests are pre-authorized, RFC 3261 §22.3), the nonce count, and the
  judgement of whether a new challenge means "retry" (first challenge, ``stale=true``, an old
  cached nonce) or "the password is wrong" (the nonce we had just been given was refused).

Credentials never appear in ``repr()`` and this module logs nothing, so a password cannot leak
through a log line or a traceback that prints locals' reprs.
"""

from __future__ import annotations

import enum
import hashlib
from typing import Callable, Iterable

import attr

from wcsgw.sip.ids import new_cnonce
from wcsgw.sip.message import Request, Response

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

_HASHLIB_NAMES: dict[str, str] = {"MD5": "md5", "SHA-256": "sha256", "SHA-512-256": "sha512_256"}


def _hash_available(base: str) -> bool:
    try:
        hashlib.new(_HASHLIB_NAMES[base])
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


# --------------------------------------------------------------------------------------------
# Arithmetic (RFC 7616 §3.4.1 - §3.4.3)


def _h(algorithm: str, data: str | bytes) -> str:
    base = algorithm.upper().removesuffix("-SESS")
    name = _HASHLIB_NAMES.get(base)
    if name is None:
        raise DigestError(f"unsupported digest algorithm {algorithm!r}")
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return hashlib.new(name, raw).hexdigest()


def compute_response(
    *,
    algorithm: str,
    username: str,
    realm: str,
    password: str,
    method: str,
    uri: str,
    nonce: str,
    cnonce: str | None = None,
    nc: int = 1,
    qop: str | None = None,
    body: bytes = b"",
) -> str:
    """The ``response`` parameter: KD(H(A1), nonce:nc:cnonce:qop:H(A2)) (RFC 7616 §3.4.1).

    ``-sess`` algorithms fold the nonce and cnonce into A1 (§3.4.2); ``qop=auth-int`` folds the
    hash of the body into A2 (§3.4.3).  Without qop it is the RFC 2069 form
    KD(H(A1), nonce:H(A2)).
    """
    algorithm = algorithm.upper()
    ha1 = _h(algorithm, f"{username}:{realm}:{password}")
    if algorithm.endswith("-SESS"):
        if cnonce is None:
            raise DigestError("-sess algorithms need a cnonce")
        ha1 = _h(algorithm, f"{ha1}:{nonce}:{cnonce}")
    if qop == "auth-int":
        ha2 = _h(algorithm, f"{method}:{uri}:{_h(algorithm, body)}")
    else:
        ha2 = _h(algorithm, f"{method}:{uri}")
    if qop is None:
        return _h(algorithm, f"{ha1}:{nonce}:{ha2}")
    if cnonce is None:
        raise DigestError("qop needs a cnonce")
    return _h(algorithm, f"{ha1}:{nonce}:{nc:08x}:{cnonce}:{qop}:{ha2}")


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def build_authorization(
    challenge: Challenge,
    credentials: Credentials,
    *,
    method: str,
    uri: str,
    cnonce: str,
    nc: int = 1,
    body: bytes = b"",
) -> str:
    """The ``Authorization``/``Proxy-Authorization`` value answering ``challenge``.

    Parameter order follows RFC 3261 §22.4's examples; ``algorithm`` and ``qop`` are tokens
    (unquoted, RFC 3261 §25.1 / RFC 8760 §2.3), ``nc`` is eight hex digits.  With
    ``userhash=true`` the username is sent hashed (RFC 7616 §3.4.4).
    """
    if not challenge.supported:
        raise DigestError(f"cannot answer a {challenge.algorithm} challenge with qop {challenge.qop!r}")
    qop = challenge.chosen_qop()
    use_cnonce = qop is not None or challenge.algorithm.endswith("-SESS")
    response = compute_response(
        algorithm=challenge.algorithm,
        username=credentials.username,
        realm=challenge.realm,
        password=credentials.password,
        method=method,
        uri=uri,
        nonce=challenge.nonce,
        cnonce=cnonce if use_cnonce else None,
        nc=nc,
        qop=qop,
        body=body,
    )
    username = credentials.username
    if challenge.userhash:
        username = _h(challenge.algorithm, f"{username}:{challenge.realm}")
    parts = [
        f"username={_quote(username)}",
        f"realm={_quote(challenge.realm)}",
        f"nonce={_quote(challenge.nonce)}",
        f"uri={_quote(uri)}",
        f"response={_quote(response)}",
        f"algorithm={_algorithm_token(challenge.algorithm)}",
    ]
    if use_cnonce:
        parts.append(f"cnonce={_quote(cnonce)}")
    if challenge.opaque is not None:
        parts.append(f"opaque={_quote(challenge.opaque)}")
    if qop is not None:
        parts.append(f"qop={qop}")
        parts.append(f"nc={nc:08x}")
    if challenge.userhash:
        parts.append("userhash=true")
    return "Digest " + ", ".join(parts)


def _algorithm_token(algorithm: str) -> str:
    """Canonical spelling: ``MD5-sess``, ``SHA-256-sess`` as the RFCs write them."""
    return algorithm[:-5] + "-sess" if algorithm.endswith("-SESS") else algorithm


# --------------------------------------------------------------------------------------------
# The stateful client


class ChallengeOutcome(enum.Enum):
    """What a 401/407 means for the request it answered."""

    #: send the request again (new CSeq) with credentials: :meth:`DigestClient.authorize`
    RETRY = "retry"
    #: the credentials were refused (the nonce we were just given, answered, was challenged
    #: again without ``stale``): retrying would only hammer the server with a wrong password
    REJECTED = "rejected"
    #: nothing we can answer: no Digest challenge, unknown algorithm/qop, realm not ours
    UNSUPPORTED = "unsupported"
    #: not answered on principle: the request did not go to the account's own registrar or
    #: proxy (a dialog peer challenging us), or the realm is not the one the account's server
    #: first challenged with (:class:`RealmPin`) — nothing computed from the password goes out
    UNTRUSTED = "untrusted"


class RealmPin:
    """The realm(s) an account's own server challenged with first, shared by every
    :class:`DigestClient` of that account (its registration, its calls).

    A challenge naming another realm later is refused (:attr:`ChallengeOutcome.UNTRUSTED`):
    a response hash for a realm the attacker chose is as good as the hash for the real one to
    an offline password search, so the only realm ever answered is the one the account's
    registrar or proxy used first.  A server whose realm really changes needs the account to
    be set up again (a new session; a restart for ``[[accounts]]``).
    """

    __slots__ = ("realms",)

    def __init__(self) -> None:
        #: None until the first challenge from the account's server
        self.realms: frozenset[str] | None = None

    def __repr__(self) -> str:
        return f"<RealmPin {sorted(self.realms) if self.realms is not None else None!r}>"


@attr.s(slots=True, auto_attribs=True)
class _RealmState:
    challenge: Challenge
    nc: int = 0  # uses of challenge.nonce so far


def parse_authorization(value: str) -> dict[str, str]:
    """The parameters of a Digest ``Authorization``/``Proxy-Authorization`` value, names
    lower case, quotes and escapes removed.  Raises :class:`DigestError` if it is not Digest."""
    for scheme, params in _parse_auth_items(value):
        if scheme.lower() == "digest":
            return params
    raise DigestError("not a Digest credentials value")


def _authorization_params(value: str) -> dict[str, str] | None:
    try:
        return parse_authorization(value)
    except DigestError:
        return None


class DigestClient:
    """Per-account Digest state: last challenge per realm, nonce counts, retry judgement.

    Usage (RFC 3261 §22.2 / §22.3)::

        outcome = client.handle_challenge(sent_request, response_401_or_407)
        if outcome is ChallengeOutcome.RETRY:
            new_request = ...same request, CSeq + 1...
            client.authorize(new_request)

    Every later request can be passed through :meth:`authorize` too: it is pre-authorized with
    the cached challenges, ``nc`` incrementing per nonce, which saves a round trip per request
    with servers that accept nonce reuse (and costs one extra challenge with those that don't).
    """

    def __init__(
        self,
        credentials: Credentials,
        *,
        cnonce_factory: Callable[[], str] = new_cnonce,
        pin: RealmPin | None = None,
    ) -> None:
        """``pin`` is the account's :class:`RealmPin` (``SipAccount.realm_pin``), shared by
        all its clients; by default this client pins for itself."""
        self._credentials = credentials
        self._cnonce_factory = cnonce_factory
        self._realms: dict[str, _RealmState] = {}
        self.pin = pin if pin is not None else RealmPin()

    def __repr__(self) -> str:
        return f"<DigestClient user={self._credentials.username!r} realms={sorted(self._realms)!r}>"

    @property
    def credentials(self) -> Credentials:
        return self._credentials

    def realms(self) -> list[str]:
        return list(self._realms)

    def challenge_for(self, realm: str) -> Challenge | None:
        state = self._realms.get(realm)
        return state.challenge if state else None

    def forget(self, realm: str | None = None) -> None:
        """Drop cached challenges (all, or one realm): e.g. after the account changed."""
        if realm is None:
            self._realms.clear()
        else:
            self._realms.pop(realm, None)

    def handle_challenge(
        self, request: Request, response: Response, *, to_server: bool
    ) -> ChallengeOutcome:
        """Judge a 401/407 to ``request`` and remember its challenges for the retry.

        First, whom we would be answering (the one check every caller — REGISTER, INVITE and
        every in-dialog request — goes through): ``to_server`` says whether ``request`` went
        to the account's own registrar/proxy (its next hop is the outbound proxy's or the
        domain's address: :meth:`wcsgw.sip.trust.AddressBook.same_host`).  When it did not,
        or when the challenge names no realm the account's server pinned
        (:class:`RealmPin`; the first server challenge pins its realms), the outcome is
        UNTRUSTED and nothing is cached: a dialog peer that answers our BYE with its own
        401 gets no hash of the password to search offline.

        Then, per realm challenged, with the credentials ``request`` carried for that realm:

        * none sent -> RETRY (the ordinary first challenge);
        * ``stale=true`` -> RETRY with the new nonce (RFC 7616 §3.3: the password was right,
          only the nonce had expired);
        * the same nonce challenged again -> REJECTED;
        * a new nonce, but the one we sent was used for the first time (nc=1, or no qop):
          we had just been given it, so the server refused the password -> REJECTED;
        * a new nonce after a reused, cached one (nc>1) -> RETRY once: the server may simply
          have retired the old nonce without saying ``stale``.

        Any REJECTED realm makes the whole outcome REJECTED; no answerable challenge at all
        is UNSUPPORTED.
        """
        if response.status not in (401, 407):
            raise ValueError(f"not a challenge: {response.status}")
        proxy = response.status == 407
        offered = select_challenges(
            c for c in challenges_from_response(response) if self._credentials.answers(c.realm)
        )
        if not to_server:
            return ChallengeOutcome.UNTRUSTED
        if not offered:
            return ChallengeOutcome.UNSUPPORTED
        if self.pin.realms is None:
            self.pin.realms = frozenset(offered)
        else:
            offered = {realm: c for realm, c in offered.items() if realm in self.pin.realms}
            if not offered:
                return ChallengeOutcome.UNTRUSTED
        sent = self._sent_credentials(request, proxy)
        rejected = False
        for realm, challenge in offered.items():
            previous = sent.get(realm)
            if previous is not None and not challenge.stale:
                same_nonce = previous.get("nonce") == challenge.nonce
                nc_text = previous.get("nc")
                try:
                    first_use = nc_text is None or int(nc_text, 16) <= 1
                except ValueError:
                    first_use = True
                if same_nonce or first_use:
                    rejected = True
            self._realms[realm] = _RealmState(challenge)
        return ChallengeOutcome.REJECTED if rejected else ChallengeOutcome.RETRY

    @staticmethod
    def _sent_credentials(request: Request, proxy: bool) -> dict[str, dict[str, str]]:
        name = "Proxy-Authorization" if proxy else "Authorization"
        out: dict[str, dict[str, str]] = {}
        for value in request.headers.get_all(name):
            params = _authorization_params(value)
            if params is not None and "realm" in params:
                out[params["realm"]] = params
        return out

    def authorize(self, request: Request, *, to_server: bool) -> bool:
        """Replace ``request``'s credentials with answers to every cached challenge.

        ``to_server`` as for :meth:`handle_challenge`: a request that does not go to the
        account's registrar/proxy leaves without any credentials.
        Returns whether any credentials were added.  Each call counts as one use of each
        cached nonce (``nc`` increments, RFC 7616 §3.4), so call it once per request sent —
        not for retransmissions, which the transaction layer repeats byte for byte.
        """
        request.headers.remove("Authorization")
        request.headers.remove("Proxy-Authorization")
        if not to_server:
            return False
        added = False
        for state in self._realms.values():
            challenge = state.challenge
            state.nc += 1
            value = build_authorization(
                challenge,
                self._credentials,
                method=request.method,
                uri=request.uri,
                cnonce=self._cnonce_factory(),
                nc=state.nc,
                body=request.body,
            )
            request.headers.add("Proxy-Authorization" if challenge.proxy else "Authorization", value)
            added = True
        return added
