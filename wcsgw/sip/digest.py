"""Client side of HTTP Digest authentication as SIP uses it: the state a user agent keeps per
account, and the rule of whom it answers.

References: RFC 2617 (Digest, MD5, qop), RFC 7616 (SHA-256, SHA-512/256, ``-sess``,
``userhash``), RFC 8760 (those algorithms in SIP, and "prefer the strongest"), RFC 3261 §22
(401 -> ``Authorization``, 407 -> ``Proxy-Authorization``; one header per realm).

Three layers, three modules:

* :mod:`wcsgw.sip.digestgrammar`: :func:`parse_challenges` turns a
  ``WWW-Authenticate``/``Proxy-Authenticate`` value into :class:`Challenge` objects (quoted
  strings with escapes, commas inside quotes, several challenges in one value,
  case-insensitive names), and :func:`select_challenges` picks what to answer;
* :mod:`wcsgw.sip.digestmath`: :func:`compute_response` / :func:`build_authorization` are the
  pure RFC arithmetic, tested against the RFCs' own vectors;
* here, :class:`DigestClient` is the stateful part a user agent keeps per account: the last
  challenge per realm (so later requests are pre-authorized, RFC 3261 §22.3), the nonce count,
  and the judgement of whether a new challenge means "retry" (first challenge, ``stale=true``,
  an old cached nonce) or "the password is wrong" (the nonce we had just been given was
  refused) — and whether to answer at all (:class:`RealmPin`, the account's own servers).

The grammar's and the arithmetic's public names are re-exported here, where the rest of the
stack and the tests have always imported them.

Credentials never appear in ``repr()`` and these modules log nothing, so a password cannot leak
through a log line or a traceback that prints locals' reprs.
"""

from __future__ import annotations

import enum
from typing import Callable

import attr

from wcsgw.sip.digestgrammar import (
    Challenge,
    Credentials,
    DigestError,
    challenges_from_response,
    choose_challenge,
    parse_authorization,
    parse_challenges,
    select_challenges,
)
from wcsgw.sip.digestmath import build_authorization, compute_response
from wcsgw.sip.ids import new_cnonce
from wcsgw.sip.message import Request, Response

#: the client's own names, and the grammar's and arithmetic's that the tests and account.py
#: import from here
__all__ = [
    "Challenge",
    "ChallengeOutcome",
    "Credentials",
    "DigestClient",
    "DigestError",
    "RealmPin",
    "build_authorization",
    "choose_challenge",
    "compute_response",
    "parse_authorization",
    "parse_challenges",
    "select_challenges",
]


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
