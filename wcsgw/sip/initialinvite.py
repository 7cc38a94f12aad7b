"""The initial INVITE of an outgoing call, as first sent and as sent again after a challenge.

RFC 3261 §8.1.1, §13.2.1: From with our tag, To without one, the call's Call-ID, CSeq,
Contact (where the peer sends its in-dialog requests), Allow, Content-Type
``application/sdp``, and the caller's extra headers (``X-...``, ``P-Asserted-Identity``
...), which may not set what the session writes itself.  A 401/407 is answered with the same
INVITE again, credentials added and CSeq one higher (§22.2, §8.1.3.5; the endpoint gives it a
new branch), at most :data:`~wcsgw.sip.challenges.MAX_CHALLENGES` times, so a server answering
every INVITE with ``stale=true`` cannot make us loop.  The INVITE goes to the account's next
hop, its own proxy or registrar: it always carries the account's credentials.
"""

from __future__ import annotations

from typing import Iterable

from wcsgw.sip.account import SipAccount
from wcsgw.sip.challenges import MAX_CHALLENGES
from wcsgw.sip.digest import ChallengeOutcome, DigestClient
from wcsgw.sip.frontdoor import capability_headers
from wcsgw.sip.headers import format_name_addr
from wcsgw.sip.message import Headers, Request, Response, canonical_name

__all__ = ["InitialInvite", "check_extra_headers"]

#: Headers the session owns in the INVITE; ``extra_headers`` may not set them.
_OWN_HEADERS = frozenset({
    "Via", "From", "To", "Call-ID", "CSeq", "Contact", "Content-Type", "Content-Length",
    "Authorization", "Proxy-Authorization",
})


def check_extra_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The caller's extra headers with canonical names; ValueError for one the session
    writes itself, or for a value with CR or LF (a header of the caller's choosing)."""
    checked = [(canonical_name(n), v) for n, v in headers]
    for name, value in checked:
        if name in _OWN_HEADERS:
            raise ValueError(f"{name} is set by the INVITE session, not by the caller")
        if "\r" in value or "\n" in value:
            raise ValueError(f"CR or LF in the value of {name}")
    return checked


class InitialInvite:
    """The INVITEs of one call to ``request_uri``: :meth:`build` makes the next one."""

    def __init__(self, account: SipAccount, digest: DigestClient, request_uri: str, sdp: bytes,
                 *, display_name: str | None, extra_headers: list[tuple[str, str]],
                 contact: str, call_id: str, local_tag: str) -> None:
        self.account = account
        self.digest = digest
        self.request_uri = request_uri
        self.sdp = sdp
        self.display_name = display_name
        self.extra_headers = extra_headers
        self.contact = contact
        self.call_id = call_id
        self.local_tag = local_tag
        self._cseq = 0
        self._challenges = 0

    def build(self) -> Request:
        """The next INVITE (CSeq + 1), with the account's credentials when it has some."""
        self._cseq += 1
        h = Headers()
        h.add("From", format_name_addr(self.account.aor(), self.display_name, self.local_tag))
        h.add("To", format_name_addr(self.request_uri))
        h.add("Call-ID", self.call_id)
        h.add("CSeq", f"{self._cseq} INVITE")
        h.add("Contact", f"<{self.contact}>")
        for name, value in capability_headers():
            h.add(name, value)
        h.add("Content-Type", "application/sdp")
        for name, value in self.extra_headers:
            h.add(name, value)
        request = Request("INVITE", self.request_uri, h, self.sdp)
        self.digest.authorize(request, to_server=True)
        return request

    def retry_challenged(self, invite: Request, response: Response) -> bool:
        """``response`` is a 401/407 to ``invite``: True when a new INVITE answers it."""
        outcome = self.digest.handle_challenge(invite, response, to_server=True)
        self._challenges += 1
        return outcome is ChallengeOutcome.RETRY and self._challenges <= MAX_CHALLENGES
