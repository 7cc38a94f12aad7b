"""Dialogs (RFC 3261 §12): the peer-to-peer state that in-dialog requests are built from.

A :class:`Dialog` is pure state plus the §12 rules that read and write it:

* creation from the UAC side (:meth:`Dialog.from_uac`, §12.1.2: route set = Record-Route of the
  response *reversed*, remote target = its Contact) and the UAS side (:meth:`Dialog.from_uas`,
  §12.1.1: Record-Route of the request *in order*, remote target = the request's Contact);
* building requests inside the dialog (:meth:`Dialog.create_request`, §12.2.1.1) with loose
  routing (``;lr``, RFC 3261 §16.12) and the RFC 2543 strict-routing fallback, CSeq numbering,
  and the ACK for a 2xx (:meth:`Dialog.create_ack`, §13.2.2.4: the INVITE's CSeq number);
* accepting requests (:meth:`Dialog.receive_request`, §12.2.2: CSeq ordering, target refresh)
  and responses (:meth:`Dialog.receive_response`, §12.2.1.2 / §13.2.2.4: confirmation, route
  set recomputation, target refresh, termination on 481/408).

No Via is added here: the transport core owns Via and branch (it knows the socket the request
leaves from).  Nothing reads a clock or touches a socket.
"""

from __future__ import annotations

import enum
from typing import Iterable

import attr

from wcsgw.sip.headers import format_name_addr, parse_name_addr, split_header_list
from wcsgw.sip.message import Headers, Request, Response, canonical_name
from wcsgw.sip.uri import parse_uri


class DialogState(enum.Enum):
    """§12: a dialog is early (1xx with a To tag), confirmed (2xx), or over."""

    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


#: Requests whose Contact replaces the remote target: re-INVITE (RFC 3261 §12.2),
#: UPDATE (RFC 3311 §5.1), SUBSCRIBE and NOTIFY (RFC 6665 §4.1.2.1, §4.2.2).
TARGET_REFRESH_METHODS: frozenset[str] = frozenset({"INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY"})

#: Headers the dialog itself owns in requests it builds; callers must not pass them.
_DIALOG_HEADERS: frozenset[str] = frozenset({"From", "To", "Call-ID", "CSeq", "Route", "Via"})

#: Headers a caller may pass to replace the dialog's default.
_OVERRIDABLE: frozenset[str] = frozenset({"Contact", "Max-Forwards"})

DEFAULT_MAX_FORWARDS = 70  # RFC 3261 §8.1.1.6


def _all_entries(message: Request | Response, name: str) -> list[str]:
    out: list[str] = []
    for value in message.headers.get_all(name):
        out.extend(split_header_list(value))
    return out


def _contact_uri(message: Request | Response) -> str | None:
    entries = _all_entries(message, "Contact")
    for entry in entries:
        if entry.strip() == "*":
            continue
        return str(parse_name_addr(entry).uri)
    return None


def _is_loose(route: str) -> bool:
    """A route entry whose URI carries ``lr`` is a loose router (RFC 3261 §16.12)."""
    return "lr" in parse_name_addr(route).uri.params


def _request_uri_from_route(route: str) -> str:
    """A strict router's URI as a Request-URI: parameters not allowed there are stripped
    (RFC 3261 §12.2.1.1 and the §19.1.1 table: ``method`` and URI headers)."""
    uri = parse_name_addr(route).uri
    params = {k: v for k, v in uri.params.items() if k.lower() != "method"}
    return str(attr.evolve(uri, params=params, headers={}))


def _make_response(request: Request, status: int, reason: str) -> Response:
    from wcsgw.sip.responses import make_response

    return make_response(request, status, reason)


@attr.s(slots=True, auto_attribs=True)
class Dialog:
    """The dialog state of RFC 3261 §12 plus what building requests needs.

    ``local_uri``/``remote_uri``/``remote_target`` are URIs as text; ``route_set`` entries are
    name-addr texts as they appeared in Record-Route (``<sip:p1.example.com;lr>``), so their
    parameters pass through untouched.  ``local_cseq`` is ``None`` until we send our first
    request (a UAS dialog), ``remote_cseq`` until the peer sends one (a UAC dialog).
    ``local_contact`` is our Contact (name-addr or URI) put into target refresh requests.
    """

    call_id: str
    local_tag: str
    remote_tag: str
    local_uri: str
    remote_uri: str
    remote_target: str
    local_cseq: int | None = None
    remote_cseq: int | None = None
    route_set: list[str] = attr.ib(factory=list)
    secure: bool = False
    state: DialogState = DialogState.EARLY
    local_display_name: str | None = None
    remote_display_name: str | None = None
    local_contact: str | None = None

    # ------------------------------------------------------------------ creation

    @classmethod
    def from_uac(
        cls,
        request: Request,
        response: Response,
        *,
        local_contact: str | None = None,
        secure: bool | None = None,
    ) -> "Dialog":
        """The dialog a UAC gets from a 1xx (early) or 2xx (confirmed) carrying a To tag.

        RFC 3261 §12.1.2.  ``secure`` defaults to "the Request-URI was a SIPS URI" (the
        transport being TLS is the caller's knowledge; pass it when it is not).  A response
        without Contact (a broken peer) leaves the Request-URI as remote target, which is
        where the request went anyway.
        """
        if not 100 < response.status < 300:
            raise ValueError(f"a {response.status} response does not create a dialog")
        to = response.to
        if not to.tag:
            raise ValueError("the response has no To tag: no dialog")
        frm = request.from_
        if not frm.tag:
            raise ValueError("the request has no From tag")
        target = _contact_uri(response) or request.uri
        routes = list(reversed(_all_entries(response, "Record-Route")))
        return cls(
            call_id=request.call_id,
            local_tag=frm.tag,
            remote_tag=to.tag,
            local_uri=str(frm.uri),
            remote_uri=str(request.to.uri),
            remote_target=target,
            local_cseq=request.cseq[0],
            remote_cseq=None,
            route_set=routes,
            secure=parse_uri(request.uri).scheme == "sips" if secure is None else secure,
            state=DialogState.CONFIRMED if response.status >= 200 else DialogState.EARLY,
            local_display_name=frm.display_name,
            remote_display_name=request.to.display_name,
            local_contact=local_contact if local_contact is not None else request.headers.get("Contact"),
        )

    @classmethod
    def from_uas(
        cls,
        request: Request,
        local_tag: str,
        *,
        state: DialogState = DialogState.CONFIRMED,
        local_contact: str | None = None,
        secure: bool | None = None,
    ) -> "Dialog":
        """The dialog a UAS gets when it answers ``request`` with ``local_tag`` in To.

        RFC 3261 §12.1.1: route set = Record-Route in order, remote target = Contact of the
        request, remote CSeq = the request's; local CSeq stays empty until we send.  ``state``
        is EARLY when the answer is a 1xx, CONFIRMED for a 2xx (:meth:`confirm` moves an
        early dialog on later).
        """
        frm = request.from_
        if not frm.tag:
            raise ValueError("the request has no From tag (RFC 2543 peer): no dialog")
        to = request.to
        target = _contact_uri(request)
        if target is None:
            raise ValueError("the request has no Contact: no remote target")
        return cls(
            call_id=request.call_id,
            local_tag=local_tag,
            remote_tag=frm.tag,
            local_uri=str(to.uri),
            remote_uri=str(frm.uri),
            remote_target=target,
            local_cseq=None,
            remote_cseq=request.cseq[0],
            route_set=_all_entries(request, "Record-Route"),
            secure=parse_uri(request.uri).scheme == "sips" if secure is None else secure,
            state=state,
            local_display_name=to.display_name,
            remote_display_name=frm.display_name,
            local_contact=local_contact,
        )

    # ------------------------------------------------------------------ identity & state

    @property
    def dialog_id(self) -> tuple[str, str, str]:
        """(Call-ID, local tag, remote tag): the §12 dialog ID, a dict key for lookup."""
        return (self.call_id, self.local_tag, self.remote_tag)

    def confirm(self) -> None:
        if self.state is DialogState.EARLY:
            self.state = DialogState.CONFIRMED

    def terminate(self) -> None:
        self.state = DialogState.TERMINATED

    # ------------------------------------------------------------------ building requests

    def _routing(self) -> tuple[str, list[str]]:
        """(Request-URI, Route values) per RFC 3261 §12.2.1.1."""
        if not self.route_set:
            return self.remote_target, []
        first = self.route_set[0]
        if _is_loose(first):
            return self.remote_target, list(self.route_set)
        # strict router (RFC 2543): it gets the Request-URI, the remote target goes last
        return _request_uri_from_route(first), self.route_set[1:] + [f"<{self.remote_target}>"]

    def _build(self, method: str, cseq: int, headers: Iterable[tuple[str, str]], body: bytes) -> Request:
        ruri, routes = self._routing()
        h = Headers()
        h.add("Max-Forwards", str(DEFAULT_MAX_FORWARDS))
        for route in routes:
            h.add("Route", route)
        h.add("From", format_name_addr(self.local_uri, self.local_display_name, self.local_tag))
        h.add("To", format_name_addr(self.remote_uri, self.remote_display_name, self.remote_tag))
        h.add("Call-ID", self.call_id)
        h.add("CSeq", f"{cseq} {method}")
        if method in TARGET_REFRESH_METHODS and self.local_contact:
            contact = self.local_contact
            h.add("Contact", contact if "<" in contact else f"<{contact}>")
        for name, value in headers:
            cname = canonical_name(name)
            if cname in _DIALOG_HEADERS:
                raise ValueError(f"{cname} is set by the dialog, not by the caller")
            if cname in _OVERRIDABLE and cname in h:
                h.set(cname, value)
            else:
                h.add(cname, value)
        return Request(method, ruri, h, body)

    def create_request(
        self, method: str, headers: Iterable[tuple[str, str]] = (), body: bytes = b""
    ) -> Request:
        """A new request inside the dialog (RFC 3261 §12.2.1.1), without Via.

        The local CSeq increments by one per request (starting at 1 if we never sent one).
        ACK and CANCEL are refused: the ACK for a 2xx reuses the INVITE's number
        (:meth:`create_ack`), and a CANCEL is built from the INVITE it cancels, same Via
        branch and CSeq, by the transaction layer (§9.1).
        """
        method = method.upper()
        if method == "ACK":
            raise ValueError("use create_ack(invite_cseq): an ACK reuses the INVITE's CSeq number")
        if method == "CANCEL":
            raise ValueError("a CANCEL copies the INVITE's branch and CSeq: build it from the INVITE")
        if self.state is DialogState.TERMINATED:
            raise ValueError("the dialog is terminated")
        self.local_cseq = 1 if self.local_cseq is None else self.local_cseq + 1
        return self._build(method, self.local_cseq, headers, body)

    def create_ack(
        self, invite_cseq: int, headers: Iterable[tuple[str, str]] = (), body: bytes = b""
    ) -> Request:
        """The ACK for a 2xx to the INVITE numbered ``invite_cseq`` (RFC 3261 §13.2.2.4).

        Routed like any in-dialog request, CSeq number of the INVITE with method ACK, and the
        local CSeq is left alone.  ``body`` carries the SDP answer when the INVITE had no offer.
        """
        return self._build("ACK", invite_cseq, headers, body)

    # ------------------------------------------------------------------ receiving

    def matches(self, message: Request | Response, *, incoming_request: bool) -> bool:
        """Whether ``message`` belongs to this dialog (Call-ID and both tags, §12)."""
        try:
            if message.call_id != self.call_id:
                return False
            frm, to = message.from_.tag, message.to.tag
        except ValueError:
            return False
        if incoming_request:
            return frm == self.remote_tag and to == self.local_tag
        return frm == self.local_tag and to == self.remote_tag

    def receive_request(self, request: Request, *, refresh_target: bool = True) -> bool | Response:
        """Apply an in-dialog request from the peer (RFC 3261 §12.2.2).

        Returns ``True`` when the request may be processed, or the response to send instead:
        481 when it is not ours, 500 when its CSeq is lower than the last one seen (out of
        order).  ACK (it carries the INVITE's number) and CANCEL (handled by transactions)
        skip the ordering check.  A target refresh request with a Contact replaces the remote
        target — unless ``refresh_target`` is False: a UA that may still refuse the request
        (a re-INVITE answered 488 or 491) passes False and calls :meth:`refresh_target` when
        it answers 2xx, since a refused target refresh must leave the dialog as it was
        (RFC 6141 on target refreshes, clarifying §12.2.2).  A BYE terminates the dialog.
        """
        if not self.matches(request, incoming_request=True):
            return _make_response(request, 481, "Call/Transaction Does Not Exist")
        if request.method in ("ACK", "CANCEL"):
            return True
        number, _method = request.cseq
        if self.remote_cseq is not None and number < self.remote_cseq:
            return _make_response(request, 500, "Server Internal Error")
        self.remote_cseq = number
        if refresh_target:
            self.refresh_target(request)
        if request.method == "BYE":
            self.state = DialogState.TERMINATED
        return True

    def refresh_target(self, request: Request) -> None:
        """Take the Contact of a target refresh request from the peer as the remote target
        (re-INVITE, UPDATE, SUBSCRIBE, NOTIFY with a Contact; anything else changes
        nothing).  Called on accepting it with a 2xx (see :meth:`receive_request`)."""
        if request.method in TARGET_REFRESH_METHODS:
            target = _contact_uri(request)
            if target is not None:
                self.remote_target = target

    def receive_response(self, response: Response) -> bool:
        """Apply a response to a request we sent in (or to create) this dialog.

        RFC 3261 §12.2.1.2 / §13.2.2.4: a 2xx to INVITE confirms an early dialog and
        recomputes its route set from the 2xx (reversed Record-Route); a 1xx/2xx to a target
        refresh request with a Contact replaces the remote target; a 481 or 408 terminates the
        dialog, as does a non-2xx final answer to the INVITE of an early dialog (§12.3) and
        any final answer to our BYE.  Returns False (and changes nothing) for a response of
        another dialog (a forked 1xx/2xx with another To tag).
        """
        if not self.matches(response, incoming_request=False):
            return False
        _number, method = response.cseq
        status = response.status
        if status < 200 and method == "INVITE" and self.state is DialogState.EARLY:
            target = _contact_uri(response)
            if target is not None:
                self.remote_target = target
            return True
        if 200 <= status < 300:
            if method == "INVITE" and self.state is DialogState.EARLY:
                self.state = DialogState.CONFIRMED
                self.route_set = list(reversed(_all_entries(response, "Record-Route")))
            if method in TARGET_REFRESH_METHODS:
                target = _contact_uri(response)
                if target is not None:
                    self.remote_target = target
        if status in (408, 481):
            self.state = DialogState.TERMINATED
        elif status >= 300 and method == "INVITE" and self.state is DialogState.EARLY:
            self.state = DialogState.TERMINATED
        if status >= 200 and method == "BYE":
            self.state = DialogState.TERMINATED
        return True


#: format_name_addr and split_header_list (wcsgw.sip.headers) are re-exported for the tests
__all__ = [
    "Dialog",
    "DialogState",
    "TARGET_REFRESH_METHODS",
    "format_name_addr",
    "split_header_list",
]
