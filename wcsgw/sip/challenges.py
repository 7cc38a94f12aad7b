"""Credentials for the requests an INVITE session sends inside its dialog (re-INVITE, INFO,
REFER, BYE), and the one judgement of whether a 401/407 to them is answered.

One judgement for every in-dialog request of both sessions, so an incoming call's requests
are answered like an outgoing call's, and a dialog peer that challenges our BYE itself gets
nothing computed from the password (issue 10: credentials only to the account's servers).
"""

from __future__ import annotations

from typing import Callable

from twisted.logger import Logger

from wcsgw.sip.digest import ChallengeOutcome, DigestClient
from wcsgw.sip.message import Request, Response
from wcsgw.sip.target import Target
from wcsgw.sip.trust import AddressBook

__all__ = ["MAX_CHALLENGES", "DialogCredentials"]

log = Logger(namespace="wcsgw.sip.session")

#: Challenges answered per request before giving up.
MAX_CHALLENGES = 3


class DialogCredentials:
    """``digest`` (None: no credentials, every challenge is a failure) for requests toward
    ``server_hosts`` (the account's registrar/proxy; () without an account) only;
    ``next_hop`` gives where the dialog's requests go, ``addresses`` what names resolved to."""

    def __init__(self, digest: DigestClient | None, server_hosts: tuple[str, ...],
                 addresses: AddressBook, next_hop: Callable[[], Target]) -> None:
        self.digest = digest
        self.server_hosts = server_hosts
        self._addresses = addresses
        self._next_hop = next_hop

    def authorize(self, request: Request, challenges: int, target: Target | None = None) -> None:
        """Credentials on a re-sent in-dialog request (``challenges`` > 0: it was challenged).
        The first send goes without: most proxies challenge nothing inside a dialog.  Only
        toward the account's server (:meth:`to_server`; ``target`` defaults to the dialog's
        next hop)."""
        if challenges and self.digest is not None:
            self.digest.authorize(request, to_server=self.to_server(target))

    def answers_challenge(self, request: Request, response: Response, challenges: int,
                          target: Target | None = None, call_id: str = "?") -> bool:
        """True when ``response`` is a 401/407 to ``request`` that we answer: there are
        credentials, fewer than MAX_CHALLENGES were answered for this request, and the
        DigestClient judges a retry worthwhile — which it never does when the request did not
        go to the account's own registrar/proxy (``target``, by default the dialog's next
        hop: :meth:`to_server`) or the realm is not the account's pinned one, nor when the
        credentials just sent were refused (§22.2).  The caller then sends the request again
        (new CSeq, §8.1.3.5) through :meth:`authorize`."""
        if response.status not in (401, 407) or self.digest is None:
            return False
        if challenges >= MAX_CHALLENGES:
            return False
        outcome = self.digest.handle_challenge(request, response,
                                               to_server=self.to_server(target))
        if outcome is ChallengeOutcome.UNTRUSTED:
            log.warn("{method} of {sip_call_id} challenged {status} by a peer that is not the "
                     "account's registrar/proxy (or in another realm): not answered",
                     method=request.method, sip_call_id=call_id, status=response.status)
        return outcome is ChallengeOutcome.RETRY

    def to_server(self, target: Target | None = None) -> bool:
        """Whether a request to ``target`` (default: the dialog's next hop) goes to the
        account's own registrar/proxy, by name or resolved address."""
        if not self.server_hosts:
            return False
        if target is None:
            target = self._next_hop()
        return self._addresses.same_host(target.host, self.server_hosts)
