"""What an in-dialog usage needs from the INVITE session it belongs to.

A usage (a re-INVITE, a REFER, an INFO) sends and answers requests on the session's confirmed
dialog and reports to the session's listener; it never sees the session's own state machine.
:class:`UsageHost` is that narrow contract, implemented by
:class:`~wcsgw.sip.session.InviteSession`.
"""

from __future__ import annotations

import random
from typing import Protocol

from wcsgw.sip.cancels import IncomingInvites
from wcsgw.sip.dialog import Dialog
from wcsgw.sip.endpoint import SipEndpoint
from wcsgw.sip.events import DialogEvent
from wcsgw.sip.message import Request, Response
from wcsgw.sip.responses import make_response
from wcsgw.sip.target import Target

__all__ = ["UsageHost", "contact_value", "credentials_of", "ignore_failure", "ignore_response",
           "retry_after"]


class UsageHost(Protocol):
    """The session as its usages see it."""

    endpoint: SipEndpoint
    dialog: Dialog | None
    #: draws the glare back-off and Retry-After values (tests pass a seeded one)
    rng: random.Random
    #: we sent the dialog's first INVITE: the longer glare back-off is ours (§14.1)
    owns_call_id: bool
    call_id: str

    @property
    def terminated(self) -> bool: ...

    @property
    def cancels(self) -> IncomingInvites:
        """The endpoint's CANCEL registry (a CANCEL of the peer's re-INVITE)."""
        ...

    @property
    def peer_reinvite_pending(self) -> bool:
        """The peer's re-INVITE is not answered and ACKed yet (ours must wait, §14.1)."""
        ...

    def emit(self, event: DialogEvent) -> None:
        """Give ``event`` to the session's listener."""

    def end_call(self, reason: str, now: float, *, bye: bool,
                 first: DialogEvent | None = None) -> None:
        """The dialog failed under the usage (481, 408, no answer, no ACK): ``first``, then
        the session's ``Ended(reason, by_remote=True)``; with ``bye`` a BYE first."""

    def resume_reinvite(self, now: float) -> None:
        """The peer's re-INVITE is settled: ours, if it waits after a 491, goes now."""

    def next_hop(self) -> Target:
        """Where requests on the dialog go (its route set or remote target)."""
        ...

    def confirmed_dialog(self) -> Dialog:
        """The dialog, or RuntimeError when there is none (any more)."""
        ...

    def authorize(self, request: Request, challenges: int) -> None:
        """Credentials on a request sent again after ``challenges`` challenges."""

    def answers_challenge(self, request: Request, response: Response, challenges: int) -> bool:
        """True when ``response`` is a 401/407 that is answered by sending ``request`` again."""
        ...


def ignore_response(_response: Response, _now: float) -> None:
    pass


def ignore_failure(_reason: str, _now: float) -> None:
    pass


def credentials_of(request: Request) -> list[tuple[str, str]]:
    """The credentials ``request`` carried, for its ACK (§13.2.2.4: the same as the INVITE)."""
    return [(name, value) for name in ("Authorization", "Proxy-Authorization")
            for value in request.headers.get_all(name)]


def contact_value(dialog: Dialog) -> str:
    """Our Contact on ``dialog``, in angle brackets."""
    contact = dialog.local_contact or f"<{dialog.local_uri}>"
    return contact if "<" in contact else f"<{contact}>"


def retry_after(rng: random.Random, request: Request, status: int) -> Response:
    """``status`` with Retry-After: §14.2's "randomly chosen value of between 0 and 10 seconds"."""
    return make_response(request, status, headers=[("Retry-After", str(rng.randint(0, 10)))])
