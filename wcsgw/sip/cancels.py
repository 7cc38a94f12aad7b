"""CANCEL both ways (RFC 3261 §9): the CANCEL of an INVITE we sent, when to send it and how
long to wait for the INVITE's final answer after it, and the registry that hands a CANCEL we
receive to the session whose INVITE (or re-INVITE) it cancels."""

from __future__ import annotations

from typing import Callable, Protocol

from wcsgw.sip.endpoint import SipEndpoint
from wcsgw.sip.message import Headers, Request
from wcsgw.sip.target import Target
from wcsgw.sip.transaction import ServerTransaction

__all__ = ["CancellableInvite", "IncomingInvites", "OutgoingCancel", "build_cancel"]


def build_cancel(invite: Request) -> Request:
    """The CANCEL of ``invite`` (RFC 3261 §9.1), which must already carry its Via.

    Request-URI, Call-ID, From, To and the CSeq number are the INVITE's (method CANCEL); the
    single Via is the INVITE's top Via, branch included, so every hop matches the CANCEL to
    the INVITE's transaction; the Route headers are the INVITE's.  No credentials: a CANCEL
    cannot be challenged (§22.1).
    """
    via = invite.headers.get("Via")
    if via is None:
        raise ValueError("the INVITE has not been sent (no Via)")
    h = Headers()
    h.add("Via", via)
    for route in invite.headers.get_all("Route"):
        h.add("Route", route)
    h.add("Max-Forwards", invite.headers.get("Max-Forwards") or "70")
    for name in ("From", "To", "Call-ID"):
        value = invite.headers.get(name)
        assert value is not None
        h.add(name, value)
    h.add("CSeq", f"{invite.cseq[0]} CANCEL")
    user_agent = invite.headers.get("User-Agent")
    if user_agent is not None:
        h.add("User-Agent", user_agent)
    h.add("Content-Length", "0")
    return Request("CANCEL", invite.uri, h)


def _ignore(*_: object) -> None:
    """A CANCEL's own answer tells nothing: the INVITE's final answer settles the call."""


class OutgoingCancel:
    """The CANCEL of the initial INVITE of ours in flight (§9.1), sent at most once.

    Only once a provisional response to that INVITE has arrived: before that the CANCEL could
    overtake the INVITE at a stateless hop (the INVITE's final, or Timer B, then settles the
    call without one).  With no final answer within 64*T1 of the CANCEL, ``on_given_up(now)``:
    the call is considered cancelled.
    """

    def __init__(self, endpoint: SipEndpoint, on_given_up: Callable[[float], None]) -> None:
        self.endpoint = endpoint
        self._provisional_seen = False  # for the INVITE in flight
        self._sent = False
        self._guard = endpoint.deadlines.new(on_given_up)

    @property
    def deadline(self) -> float | None:
        return self._guard.at

    def new_invite(self) -> None:
        """Another INVITE is in flight (a challenge answered): nothing seen or sent for it."""
        self._provisional_seen = False
        self._sent = False

    def provisional(self) -> None:
        self._provisional_seen = True

    def send_when_due(self, invite: Request, target: Target, now: float) -> None:
        """The CANCEL of ``invite`` to ``target``, once a provisional came, unless sent."""
        if not self._provisional_seen or self._sent:
            return
        self._sent = True
        # §9.1: same destination, port and transport as the INVITE; the Via is the INVITE's.
        self.endpoint.send_request(build_cancel(invite), target, now, _ignore, _ignore,
                                   stamp=False)
        self._guard.set(now + self.endpoint.config.timers.timeout)

    def stop(self) -> None:
        self._guard.clear()


class CancellableInvite(Protocol):
    """An INVITE server session: its INVITE's transaction and what to do with its CANCEL."""

    @property
    def transaction(self) -> ServerTransaction: ...

    def receive_cancel(self, cancel: Request, now: float) -> None: ...


class IncomingInvites:
    """The endpoint's INVITE server transactions that a session owns, for the CANCEL.

    A CANCEL names a transaction, not a dialog (§9.2), so neither the DialogRouter nor a
    handler of new INVITEs sees it; this handler, first in ``endpoint.handlers``, takes the
    CANCELs of INVITEs a live session still has to answer — an
    :class:`~wcsgw.sip.uas.IncomingInvite`'s INVITE, or a re-INVITE of either session — and
    leaves the others to the endpoint (481 when the INVITE transaction is unknown, 200 + 487
    when nobody took it).
    """

    def __init__(self, endpoint: SipEndpoint) -> None:
        self.endpoint = endpoint
        self._owners: dict[ServerTransaction, tuple[object, Callable[[Request, float], None]]] = {}

    @classmethod
    def install(cls, endpoint: SipEndpoint) -> "IncomingInvites":
        """The endpoint's registry, created and put first in ``endpoint.handlers`` once."""
        for handler in endpoint.handlers:
            if isinstance(handler, cls):
                return handler
        registry = cls(endpoint)
        endpoint.handlers.insert(0, registry)
        return registry

    def add(self, session: CancellableInvite) -> None:
        """Register an IncomingInvite's own INVITE (``session.transaction``)."""
        self.add_transaction(session.transaction, session, session.receive_cancel)

    def remove(self, session: CancellableInvite) -> None:
        self.remove_transaction(session.transaction, session)

    def add_transaction(self, transaction: ServerTransaction, owner: object,
                        on_cancel: Callable[[Request, float], None]) -> None:
        self._owners[transaction] = (owner, on_cancel)

    def remove_transaction(self, transaction: ServerTransaction, owner: object) -> None:
        entry = self._owners.get(transaction)
        if entry is not None and entry[0] is owner:
            del self._owners[transaction]

    def __len__(self) -> int:
        return len(self._owners)

    def __contains__(self, session: object) -> bool:
        return any(owner is session for owner, _ in self._owners.values())

    # -- RequestHandler --

    def handle_request(
        self, request: Request, transaction: ServerTransaction | None, source: Target, now: float
    ) -> bool:
        if request.method != "CANCEL":
            return False
        invite = self.endpoint.layer.find_server_invite(request)
        entry = self._owners.get(invite) if invite is not None else None
        if entry is None:
            return False
        assert invite is not None
        # §9.1: a CANCEL goes where its INVITE went, so it comes from the hop the INVITE came
        # from; from anywhere else it is someone who learnt the branch, ending our ringing call.
        if not self.endpoint.addresses.admits(source.host, (invite.source.host,)):
            self.endpoint.drop_untrusted(request, transaction, source,
                                         "CANCEL not from the INVITE's sender", now)
            return True
        entry[1](request, now)
        return True
