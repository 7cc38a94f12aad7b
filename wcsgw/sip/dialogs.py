"""Routing in-dialog requests to whoever owns the dialog (RFC 3261 §12.2.2).

A request that carries a To tag belongs to a dialog; the UAS core finds that dialog by its ID
(Call-ID, local tag = the request's To tag, remote tag = its From tag) and hands the request to
the session that owns it.  When no dialog matches, §12.2.2 says to answer 481 (Call/Transaction
Does Not Exist): answering anything else, or letting a default handler treat it as a new
request, would let a stray BYE or re-INVITE act on nothing — or on a call that is gone.

One :class:`DialogRouter` serves the whole endpoint (:meth:`DialogRouter.install` is
idempotent), so outgoing calls now and incoming calls later share one table.  It is a plain
:class:`~wcsgw.sip.endpoint.RequestHandler`: sans-IO, no clock, no sockets.

It is also the one place that decides whether a request on a dialog may act on it at all.
The Call-ID and tags are no secret from anyone on the signalling path (and guessable from
logs, traces or a leaked SIP message), so matching them proves nothing; what does is where the
request came from.  A request (BYE, REFER, re-INVITE, INFO, ACK ...) is taken only when its
source IP is one of:

* the dialog's next hop toward the peer — the first entry of the route set (a proxy that
  Record-Routes, so in-dialog requests come from it), or without a route set the remote target
  (the peer's Contact) — by IP, resolved where the transport resolves names
  (:class:`~wcsgw.sip.trust.AddressBook`);
* the hosts its owner vouched for when it added the dialog: the address the dialog-forming
  INVITE actually came from, and the account's outbound proxy and domain.

Anything else is dropped without an answer (:meth:`SipEndpoint.drop_untrusted`: a 403 over
UDP would be reflected to a forged source) and changes nothing.

:func:`dialog_target` answers the other half of in-dialog routing: where a request built from a
dialog is sent (§8.1.2 / §12.2.1.1: the first route of the route set, else the remote target).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, Protocol

from twisted.logger import Logger

from wcsgw.sip.dialog import Dialog
from wcsgw.sip.errors import SipParseError
from wcsgw.sip.headers import parse_name_addr
from wcsgw.sip.message import Request
from wcsgw.sip.responses import make_response
from wcsgw.sip.target import Target, default_port, unbracket
from wcsgw.sip.transaction import ServerTransaction
from wcsgw.sip.uri import parse_uri

if TYPE_CHECKING:
    from wcsgw.sip.endpoint import SipEndpoint

__all__ = ["DialogId", "DialogOwner", "DialogRouter", "dialog_target"]

log = Logger(namespace="wcsgw.sip.dialogs")

#: (Call-ID, local tag, remote tag): the dialog ID of RFC 3261 §12.
DialogId = tuple[str, str, str]


class DialogOwner(Protocol):
    """A session holding dialogs: it gets every request the router matches to one of them."""

    def receive_in_dialog(
        self,
        dialog: Dialog,
        request: Request,
        transaction: ServerTransaction | None,
        source: Target,
        now: float,
    ) -> None: ...


def next_hop_host(dialog: Dialog) -> str | None:
    """The host (name or literal) of the dialog's next hop: the route set's first entry, else
    the remote target (``maddr`` when present, as :func:`dialog_target` sends), or None when
    it does not parse."""
    try:
        if dialog.route_set:
            uri = parse_name_addr(dialog.route_set[0]).uri
        else:
            uri = parse_uri(dialog.remote_target)
    except (SipParseError, ValueError):
        return None
    return unbracket(uri.params.get("maddr") or uri.host)


def dialog_target(dialog: Dialog, default_transport: str = "UDP") -> Target:
    """Where a request built by ``dialog`` goes next (RFC 3261 §12.2.1.1 with §8.1.2).

    The first entry of the route set when there is one (loose or strict router alike: either
    way that element is the next hop), else the remote target.  The transport is the URI's
    ``transport`` parameter, TLS for a ``sips`` URI, and otherwise ``default_transport`` —
    the transport the dialog-creating INVITE used, since a proxy that Record-Routes without a
    transport parameter expects in-dialog requests on the transport it received the INVITE
    over (Kamailio adds the parameter only when it changes transport).
    """
    if dialog.route_set:
        uri = parse_name_addr(dialog.route_set[0]).uri
    else:
        uri = parse_uri(dialog.remote_target)
    transport = uri.params.get("transport")
    if transport:
        transport = transport.upper()
    elif uri.scheme == "sips":
        transport = "TLS"
    else:
        transport = default_transport.upper()
    host = uri.params.get("maddr") or uri.host
    return Target(transport, unbracket(host), uri.port or default_port(transport))


class DialogRouter:
    """The endpoint's table of live dialogs, and the 481 for requests matching none."""

    def __init__(self, endpoint: "SipEndpoint") -> None:
        self.endpoint = endpoint
        self._dialogs: dict[DialogId, tuple[Dialog, DialogOwner, tuple[str, ...]]] = {}

    @classmethod
    def install(cls, endpoint: "SipEndpoint") -> "DialogRouter":
        """The endpoint's router, created and put first in ``endpoint.handlers`` the first time.

        First, because a request with a To tag is in-dialog whatever its method: no handler
        for new requests should see it.
        """
        for handler in endpoint.handlers:
            if isinstance(handler, cls):
                return handler
        router = cls(endpoint)
        endpoint.handlers.insert(0, router)
        return router

    # -- the table --

    def add(self, dialog: Dialog, owner: DialogOwner, peers: Iterable[str] = ()) -> None:
        """Route ``dialog``'s requests to ``owner``.  ``peers`` are the hosts (names or
        literals) the owner vouches for besides the dialog's next hop: the source of the
        dialog-forming INVITE and the account's outbound proxy and domain."""
        peers = tuple(p for p in peers if p)
        self._dialogs[dialog.dialog_id] = (dialog, owner, peers)
        hop = next_hop_host(dialog)
        self.endpoint.addresses.want((*peers, hop) if hop else peers)

    def remove(self, dialog: Dialog) -> None:
        entry = self._dialogs.get(dialog.dialog_id)
        if entry is not None and entry[0] is dialog:
            del self._dialogs[dialog.dialog_id]

    def find(self, dialog_id: DialogId) -> tuple[Dialog, DialogOwner] | None:
        entry = self._dialogs.get(dialog_id)
        return (entry[0], entry[1]) if entry is not None else None

    def trusted_hosts(self, dialog_id: DialogId) -> tuple[str, ...]:
        """The hosts whose addresses may send requests on that dialog (empty: unknown)."""
        entry = self._dialogs.get(dialog_id)
        if entry is None:
            return ()
        dialog, _owner, peers = entry
        hop = next_hop_host(dialog)
        return (hop, *peers) if hop else peers

    def __len__(self) -> int:
        return len(self._dialogs)

    def __contains__(self, dialog_id: object) -> bool:
        return dialog_id in self._dialogs

    # -- RequestHandler --

    def handle_request(
        self, request: Request, transaction: ServerTransaction | None, source: Target, now: float
    ) -> bool:
        method = request.method
        if method == "CANCEL":
            # A CANCEL names the transaction it cancels, not a dialog (§9.2): the endpoint
            # finds that transaction, whatever the To tag says.
            return False
        try:
            remote_tag = request.from_.tag
            local_tag = request.to.tag
            call_id = request.call_id
        except (SipParseError, ValueError):
            return False
        if not local_tag:
            return False  # a new request: not ours
        dialog_id = (call_id, local_tag, remote_tag or "")
        entry = self._dialogs.get(dialog_id)
        if entry is not None:
            dialog, owner, _peers = entry
            hosts = self.trusted_hosts(dialog_id)
            if not self.endpoint.addresses.admits(source.host, hosts):
                self.endpoint.addresses.want(hosts)  # a name not resolved yet: next time
                self.endpoint.drop_untrusted(
                    request, transaction, source,
                    f"not the peer or proxy of dialog {call_id} ({', '.join(hosts)})", now)
                return True
            owner.receive_in_dialog(dialog, request, transaction, source, now)
            return True
        if method == "ACK":
            return False  # an ACK for a 2xx of a dialog that is gone: the endpoint absorbs it
        log.debug("{method} for unknown dialog {sip_call_id}: 481", method=method, sip_call_id=call_id)
        self.endpoint.respond(make_response(request, 481, "Call/Transaction Does Not Exist"), now)
        return True
