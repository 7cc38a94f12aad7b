"""What a call does inside its dialog once it is up, sans-IO: re-INVITE, INFO, REFER and NOTIFY.

Both INVITE sessions — :class:`~wcsgw.sip.invite.OutgoingInvite` (we called) and
:class:`~wcsgw.sip.uas.IncomingInvite` (we were called) — get the same in-dialog API from
:class:`InDialog`, a mixin with one implementation of the parts that do not depend on who sent
the first INVITE.  The session supplies its dialog, endpoint, listener and a few hooks (see
:class:`InDialog`); events go to the session's ``listener`` like the session's own.

The API, and where the rules come from:

* :meth:`InDialog.reinvite` — a re-INVITE with the caller's SDP offer (hold, unhold, new
  address): new CSeq, our Contact (a target refresh, §12.2.1.1), Allow, 401/407 answered like
  the INVITE's.  A 2xx is ACKed (every retransmission of it again, §13.2.2.4) and given as
  :class:`ReinviteAnswered`; the remote target changes only then (§12.2.1.2).  A non-2xx
  leaves the session as it was (§14.1): :class:`ReinviteFailed`.  491 is glare (§14.1): the
  same offer is sent again after a random 2.1-4 s when we own the Call-ID (we sent the first
  INVITE), 0-2 s otherwise, in 10 ms steps, kept as a Deadline in the endpoint's timer
  heap, no event in between; after :data:`MAX_GLARE_RETRIES` retries a further
  491 is a plain refusal (:class:`ReinviteFailed` ``(491, ...)``, the call stays as it was), so
  a peer that answers every re-INVITE 491 cannot keep ours pending for ever.  481, 408 and no
  response at all end the call (§12.2.1.2, §14.1): :class:`ReinviteFailed` then ``Ended(reason, by_remote=True)`` (a BYE
  goes out first unless the answer was 481: that dialog is gone).  A re-INVITE that only got
  provisional answers for 64*T1 is CANCELled (its 487 is then the failure).
  **One offer/answer at a time** (§14.1: no re-INVITE while another INVITE transaction is in
  progress in either direction): :meth:`reinvite` raises RuntimeError while one is, including
  the glare back-off and a re-INVITE from the peer not yet answered and ACKed; the owner can
  look at :attr:`InDialog.reinvite_in_progress` first.
* A re-INVITE from the peer: :class:`ReinviteOffered` with its SDP (None: a late offer — our
  2xx then carries an offer and the ACK the answer).  The owner answers with
  :meth:`InDialog.answer_reinvite` (200 + SDP, re-sent at T1, 2T1 ... T2 until the ACK, which
  is given as :class:`ReinviteConfirmed`; no ACK within 64*T1 ends the call, §13.3.1.4) or
  :meth:`InDialog.reject_reinvite` (488 ...; nothing changes).  While our own re-INVITE is in
  flight it gets 491 (§14.2); a second one while the first is unanswered gets 500 with
  Retry-After (§14.2).  A CANCEL of it before the answer: 487 and :class:`ReinviteCancelled`.
  An offer the owner leaves unanswered for 32*T1 (half the peer's Timer B) is refused 500, so
  a listener that ignores the event cannot hang the peer.
* :meth:`InDialog.send_info` — INFO with any body (DTMF: :mod:`wcsgw.sip.info`), answered as
  :class:`InfoAnswered`; an INFO from the peer is answered 200 and given as
  :class:`InfoReceived`.
* :meth:`InDialog.refer` — REFER (RFC 3515) with Refer-To (and ``?Replaces=`` for an attended
  transfer, RFC 3891) and Referred-By (RFC 3892): :class:`ReferAccepted` on its 2xx,
  :class:`ReferFailed` otherwise; the NOTIFYs of the implicit subscription (``Event: refer``,
  ``message/sipfrag``) are answered 200 and given as :class:`ReferProgress`, final when the
  subscription is terminated or the fragment's status is final.  A NOTIFY that overtakes the
  REFER's 202 counts as acceptance.  No final NOTIFY within the subscription's expiry (+64*T1):
  :class:`ReferFailed` ``(None, ...)``.  One REFER at a time.
* A REFER from the peer: :class:`ReferReceived`; the owner calls
  :meth:`InDialog.accept_refer` (202, then the first NOTIFY ``SIP/2.0 100 Trying``) and
  :meth:`InDialog.notify_refer` as its new call progresses, or :meth:`InDialog.reject_refer`.

A session that ends (either BYE, or one of the failures above) answers what it still owes the
peer: 487 to a re-INVITE or REFER not yet answered (§15.1.2).  No event follows the session's
terminal one.  As everywhere in ``wcsgw.sip``: no clock, no socket; what a caller's action
queues is sent by the transport adapter, which the endpoint wakes.
"""

from __future__ import annotations

import random
import re
from typing import Any, Callable, Union

import attr
from twisted.logger import Logger

from wcsgw.sip.dialog import Dialog, DialogState, format_name_addr
from wcsgw.sip.dialogs import dialog_target
from wcsgw.sip.digest import ChallengeOutcome, DigestClient
from wcsgw.sip.endpoint import ALLOWED_METHODS, SUPPORTED_EXTENSIONS, SipEndpoint
from wcsgw.sip.errors import SipParseError
from wcsgw.sip.headers import parse_params
from wcsgw.sip.message import Headers, Request, Response
from wcsgw.sip.refer import (
    SIPFRAG,
    parse_replaces,
    parse_sipfrag,
    refer_to_value,
    sipfrag_body,
    split_refer_to,
)
from wcsgw.sip.responses import make_response
from wcsgw.sip.target import Target
from wcsgw.sip.timers import Deadline
from wcsgw.sip.transaction import ClientTransaction, ServerTransaction

__all__ = [
    "DialogEvent",
    "InDialog",
    "IncomingInvites",
    "InfoAnswered",
    "InfoReceived",
    "MAX_GLARE_RETRIES",
    "REASON_ACK_TIMEOUT",
    "REASON_NORMAL",
    "REASON_TIMEOUT",
    "REASON_TRANSPORT",
    "REFER_EXPIRES",
    "ReferAccepted",
    "ReferFailed",
    "ReferProgress",
    "ReferReceived",
    "ReinviteAnswered",
    "ReinviteCancelled",
    "ReinviteConfirmed",
    "ReinviteFailed",
    "ReinviteOffered",
    "build_cancel",
    "sdp_of",
]

log = Logger(namespace="wcsgw.sip.session")

#: ``info`` strings of the contract (contract.md, call statuses).
REASON_NORMAL = "Normal call clearing"
REASON_TIMEOUT = "Failed by request timeout"
REASON_TRANSPORT = "Failed by transport error"
#: Our 2xx (to the INVITE or a re-INVITE) was never acknowledged (§13.3.1.4).
REASON_ACK_TIMEOUT = "ACK timeout"

#: Challenges answered per request before giving up.
MAX_CHALLENGES = 3
#: Times our re-INVITE is sent again after a 491 (§14.1) before the next 491 is its failure.
#: §14.1 sets no limit; three back-offs (at most 12 s for the Call-ID's owner) outlast any
#: real glare, while a peer that refuses every offer 491 would otherwise hold the exchange
#: (and every later hold/unhold of the call) forever.
MAX_GLARE_RETRIES = 3
#: How long the subscription a REFER creates lasts, in the NOTIFYs we send (RFC 3515 §2.4.4
#: leaves it to the notifier; 60 s is what baresip and Asterisk use), and how long we wait for
#: a final NOTIFY when the notifier names no expiry.
REFER_EXPIRES = 60


# ------------------------------------------------------------------------------------ events


@attr.s(frozen=True, slots=True, auto_attribs=True)
class ReinviteAnswered:
    """Our re-INVITE got a 2xx (ACKed): ``sdp`` is the peer's answer (empty if it sent none),
    ``source`` where the 2xx came from."""

    sdp: bytes
    source: Target | None = attr.ib(default=None, eq=False)  # not part of what happened


@attr.s(frozen=True, slots=True, auto_attribs=True)
class ReinviteFailed:
    """Our re-INVITE was refused (``"<code> <reason>"``) or got no answer (``status`` None).
    The session is as it was before — unless an ``Ended`` follows (481, 408, no answer)."""

    status: int | None
    reason: str


@attr.s(frozen=True, slots=True, auto_attribs=True)
class ReinviteOffered:
    """The peer sent a re-INVITE: ``sdp`` is its offer, or None for a late offer (our answer
    then carries an offer and :class:`ReinviteConfirmed` the peer's answer).  Answer it with
    ``answer_reinvite`` or ``reject_reinvite``.  ``source``: where the re-INVITE came from."""

    sdp: bytes | None
    source: Target | None = attr.ib(default=None, eq=False)  # not part of what happened


@attr.s(frozen=True, slots=True, auto_attribs=True)
class ReinviteConfirmed:
    """The ACK of our 2xx to the peer's re-INVITE came; ``ack_sdp`` is the peer's answer when
    the re-INVITE had no offer, else None.  The exchange is over.  ``source``: the ACK's sender."""

    ack_sdp: bytes | None = None
    source: Target | None = attr.ib(default=None, eq=False)  # not part of what happened


@attr.s(frozen=True, slots=True, auto_attribs=True)
class ReinviteCancelled:
    """The peer cancelled its re-INVITE before we answered (it got 487): nothing to answer."""


@attr.s(frozen=True, slots=True, auto_attribs=True)
class InfoAnswered:
    """The final answer to our INFO: its status, or None when none came (timeout, transport)."""

    status: int | None


@attr.s(frozen=True, slots=True, auto_attribs=True)
class InfoReceived:
    """An INFO from the peer (answered 200).  ``content_type`` is the header as received
    (``""`` without one); see :func:`wcsgw.sip.info.parse_dtmf_info`."""

    content_type: str
    body: bytes


@attr.s(frozen=True, slots=True, auto_attribs=True)
class ReferAccepted:
    """Our REFER was accepted (202, or 200), or a NOTIFY of its subscription came first."""

    status: int


@attr.s(frozen=True, slots=True, auto_attribs=True)
class ReferFailed:
    """Our REFER was refused (``status`` its final), or its subscription ended without a final
    report (``status`` None)."""

    status: int | None
    reason: str


@attr.s(frozen=True, slots=True, auto_attribs=True)
class ReferProgress:
    """A NOTIFY about the call our REFER triggered: the status line of its ``message/sipfrag``
    (100, 180, 200, 486 ...); ``final`` when the subscription is terminated or the status is
    final (>= 200) — no more progress follows then."""

    sipfrag_status: int
    final: bool
    reason: str = ""


@attr.s(frozen=True, slots=True, auto_attribs=True)
class ReferReceived:
    """The peer asks us to call ``refer_to`` (the Refer-To URI without its Replaces header).
    ``replaces``: for an attended transfer, the dialog the new call replaces —
    ``{"call_id", "to_tag", "from_tag", "early_only"}``, tags as the Replaces header of the
    new INVITE names them (RFC 3891) — else None.  ``referred_by``: the Referred-By header as
    received.  Answer with ``accept_refer`` or ``reject_refer``."""

    refer_to: str
    replaces: dict[str, Any] | None
    referred_by: str | None


DialogEvent = Union[
    ReinviteAnswered, ReinviteFailed, ReinviteOffered, ReinviteConfirmed, ReinviteCancelled,
    InfoAnswered, InfoReceived, ReferAccepted, ReferFailed, ReferProgress, ReferReceived,
]


# -------------------------------------------------------------------------------- helpers


def sdp_of(message: Request | Response) -> bytes | None:
    """The body when it is SDP (RFC 3261 §13.2.1: the offer or answer of an exchange)."""
    if not message.body:
        return None
    content_type = (message.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
    return message.body if content_type == "application/sdp" else None


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


def _ignore_response(_response: Response, _now: float) -> None:
    pass


def _ignore_failure(_reason: str, _now: float) -> None:
    pass


def _credentials(request: Request) -> list[tuple[str, str]]:
    """The credentials ``request`` carried, for its ACK (§13.2.2.4: the same as the INVITE)."""
    return [(name, value) for name in ("Authorization", "Proxy-Authorization")
            for value in request.headers.get_all(name)]


def _check_header_value(name: str, value: str) -> None:
    if "\r" in value or "\n" in value:
        raise ValueError(f"CR or LF in the value of {name}")


_SUB_STATE_RE = re.compile(r"^\s*([A-Za-z-]+)\s*(;.*)?$", re.S)


def _subscription_state(value: str | None) -> tuple[str, int | None]:
    """``("active"|"pending"|"terminated"|"", expires or None)`` from Subscription-State."""
    if not value:
        return "", None
    match = _SUB_STATE_RE.match(value)
    if match is None:
        return "", None
    expires: int | None = None
    try:
        params = parse_params(match.group(2) or "")
        raw = params.get("expires")
        expires = int(raw) if raw is not None else None
    except (SipParseError, ValueError):
        pass
    return match.group(1).lower(), expires


# ------------------------------------------------------------------------------ registry


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

    def add(self, session: Any) -> None:
        """Register an IncomingInvite's own INVITE (``session.transaction``)."""
        self.add_transaction(session.transaction, session, session.receive_cancel)

    def remove(self, session: Any) -> None:
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


# --------------------------------------------------------------------------- in-dialog state


@attr.s(auto_attribs=True, eq=False)
class _OutgoingReinvite:
    sdp: bytes
    retry: Deadline  # glare back-off (§14.1)
    guard: Deadline  # 64*T1 with only provisionals: CANCEL; after it: give up
    request: Request | None = None  # the re-INVITE in flight; None while backing off (491)
    transaction: ClientTransaction | None = None
    challenges: int = 0
    glare_retries: int = 0  # re-sent after 491 so far (bounded by MAX_GLARE_RETRIES)
    provisional: bool = False
    retry_due: bool = False  # the back-off is over but the peer's re-INVITE is not settled
    cancelled: bool = False

    def close(self) -> None:
        self.retry.clear()
        self.guard.clear()


@attr.s(auto_attribs=True, eq=False)
class _IncomingReinvite:
    request: Request
    transaction: ServerTransaction | None
    answer_by: Deadline  # the owner's deadline to answer
    retransmit: Deadline  # our 2xx again
    ack_wait: Deadline  # the end of the wait for the ACK
    ok: Response | None = None  # our 2xx, re-sent until the ACK
    interval: float = 0.0

    def close(self) -> None:
        self.answer_by.clear()
        self.retransmit.clear()
        self.ack_wait.clear()


@attr.s(auto_attribs=True, eq=False)
class _OutgoingRefer:
    refer_to: str
    guard: Deadline  # no final NOTIFY by then: failed
    request: Request | None = None
    challenges: int = 0
    accepted: bool = False

    def close(self) -> None:
        self.guard.clear()


@attr.s(auto_attribs=True, eq=False)
class _IncomingRefer:
    request: Request
    answer_by: Deadline
    expires: Deadline  # our subscription's end
    event: str  # the Event header value of our NOTIFYs ("refer" or "refer;id=<CSeq>")
    accepted: bool = False
    last: tuple[int, str] = (100, "Trying")

    def close(self) -> None:
        self.answer_by.clear()
        self.expires.clear()


# -------------------------------------------------------------------------------- mixin


class InDialog:
    """The in-dialog API of an INVITE session (mixin; see the module doc for the rules).

    The session provides: ``endpoint``, ``dialog`` (the confirmed dialog, or None), ``state``,
    ``terminated``, ``listener``, ``_digest`` (a DigestClient or None: credentials for
    challenged requests), ``owns_call_id`` (True when we sent the dialog's first INVITE, for
    the §14.1 glare timers), and the hooks :meth:`_in_dialog_ready` (the call is up),
    :meth:`_in_dialog_transport` (the transport of the dialog-creating INVITE) and
    :meth:`_end_call` (end the call from within: state, optional BYE, ``Ended``).  It calls
    :meth:`_init_in_dialog` in its constructor, folds :meth:`_in_dialog_deadline` into its
    ``next_deadline()`` (each timer is a Deadline of its own), hands requests on its dialog to
    :meth:`_in_dialog_request` / :meth:`_in_dialog_ack`, and calls :meth:`_abort_in_dialog`
    when the call ends.
    """

    endpoint: SipEndpoint
    dialog: Dialog | None
    listener: Callable[[Any], None]
    owns_call_id: bool
    _digest: DigestClient | None

    def _init_in_dialog(self, rng: random.Random | None) -> None:
        #: randomness of the glare back-off and Retry-After values (tests pass a seeded one)
        self.rng: random.Random = rng or random.SystemRandom()
        self._out_reinvite: _OutgoingReinvite | None = None
        self._in_reinvite: _IncomingReinvite | None = None
        self._out_refer: _OutgoingRefer | None = None
        self._out_refer_done = False  # a NOTIFY after our REFER's final one: 200, no event
        self._in_refer: _IncomingRefer | None = None
        self._refers_received = 0

    # -- hooks the session provides --

    @property
    def terminated(self) -> bool:
        raise NotImplementedError

    def _in_dialog_ready(self) -> bool:
        raise NotImplementedError

    def _in_dialog_transport(self) -> str:
        raise NotImplementedError

    def _end_call(self, reason: str, now: float, *, bye: bool, first: object | None = None) -> None:
        raise NotImplementedError

    def _emit(self, event: Any) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ public API

    @property
    def reinvite_in_progress(self) -> bool:
        """An offer/answer exchange by re-INVITE is under way in either direction (ours in
        flight or backing off after 491, or the peer's not yet answered and ACKed):
        :meth:`reinvite` would raise."""
        return self._out_reinvite is not None or self._in_reinvite is not None

    @property
    def refer_in_progress(self) -> bool:
        """Our REFER is unanswered or its subscription still reports: :meth:`refer` would raise."""
        return self._out_refer is not None

    def reinvite(self, sdp: bytes, now: float) -> None:
        """Send a re-INVITE offering ``sdp``; :class:`ReinviteAnswered` or
        :class:`ReinviteFailed` follows (after 491 back-offs, if any).  Raises RuntimeError
        when the call is not up or an offer/answer is already in progress."""
        self._require_up("reinvite")
        if self.reinvite_in_progress:
            raise RuntimeError("a re-INVITE is already in progress on this dialog (RFC 3261 §14.1)")
        deadlines = self.endpoint.deadlines
        out = _OutgoingReinvite(sdp, retry=deadlines.new(lambda now: self._glare_retry_due(out, now)),
                                guard=deadlines.new(lambda now: self._reinvite_guard_due(out, now)))
        self._out_reinvite = out
        self._send_reinvite(now)

    def answer_reinvite(self, sdp: bytes, now: float) -> None:
        """200 OK with ``sdp`` to the peer's re-INVITE (the answer, or our offer when it had
        none), re-sent until the ACK; the peer's Contact becomes the remote target.  Does
        nothing once the call has ended (the peer got 487 then)."""
        if self.terminated:
            return
        incoming = self._unanswered_reinvite("answer_reinvite")
        dialog = self._confirmed_dialog()
        response = make_response(incoming.request, 200)
        response.headers.add("Contact", self._contact_value(dialog))
        response.headers.add("Allow", ", ".join(ALLOWED_METHODS))
        if SUPPORTED_EXTENSIONS:
            response.headers.add("Supported", ", ".join(SUPPORTED_EXTENSIONS))
        response.headers.add("Content-Type", "application/sdp")
        response.body = sdp
        dialog.refresh_target(incoming.request)
        timers = self.endpoint.config.timers
        incoming.ok = response
        incoming.answer_by.clear()
        incoming.interval = timers.t1
        incoming.ack_wait.set(now + timers.timeout)
        incoming.retransmit.set(now + timers.t1)
        self._forget_cancel(incoming)
        self.endpoint.respond(response, now)

    def reject_reinvite(self, status: int, now: float, reason: str | None = None) -> None:
        """Refuse the peer's re-INVITE with a 3xx-6xx (488 Not Acceptable Here ...): the
        session stays as it was (§14.2).  Does nothing once the call has ended."""
        if not 300 <= status < 700:
            raise ValueError(f"a rejection is a 3xx-6xx final, not {status}")
        if self.terminated:
            return
        incoming = self._unanswered_reinvite("reject_reinvite")
        incoming.close()
        self._in_reinvite = None
        self._forget_cancel(incoming)
        self.endpoint.respond(make_response(incoming.request, status, reason), now)
        self._resume_glare_retry(now)

    def send_info(self, content_type: str, body: bytes, now: float) -> None:
        """INFO with ``body`` of ``content_type`` (e.g. ``application/dtmf-relay`` and
        :func:`wcsgw.sip.info.dtmf_relay_body`); :class:`InfoAnswered` follows.  Several may
        be in flight; their answers come in the order the peer sends them."""
        self._require_up("send_info")
        _check_header_value("Content-Type", content_type)
        self._send_info(content_type, body, now, challenges=0)

    def refer(self, target_uri: str, now: float, replaces: str | None = None) -> None:
        """Ask the peer to call ``target_uri`` (blind transfer), or — with ``replaces``, a
        value from :func:`wcsgw.sip.refer.replaces_param` — to replace that dialog with its
        new call (attended transfer).  :class:`ReferAccepted` / :class:`ReferFailed`, then
        :class:`ReferProgress` per NOTIFY.  Raises RuntimeError when the call is not up or a
        REFER is still in progress, ValueError for a target that does not parse."""
        self._require_up("refer")
        if self._out_refer is not None:
            raise RuntimeError("a REFER of this call is still in progress")
        refer_to = refer_to_value(target_uri, replaces)
        out = _OutgoingRefer(refer_to, guard=self.endpoint.deadlines.new(
            lambda now: self._refer_guard_due(out, now)))
        self._out_refer = out
        self._out_refer_done = False
        self._send_refer(now)

    def accept_refer(self, now: float, *, notify_trying: bool = True) -> None:
        """202 Accepted to the peer's REFER and — unless ``notify_trying`` is False — the
        first NOTIFY (``SIP/2.0 100 Trying``) that RFC 3515 §2.4.4 requires right away.
        Report the new call with :meth:`notify_refer`.  Does nothing once the call has
        ended."""
        if self.terminated:
            return
        incoming = self._unanswered_refer("accept_refer")
        dialog = self._confirmed_dialog()
        response = make_response(incoming.request, 202)
        response.headers.add("Contact", self._contact_value(dialog))
        incoming.accepted = True
        incoming.answer_by.clear()
        incoming.expires.set(now + REFER_EXPIRES)
        self.endpoint.respond(response, now)
        if notify_trying:
            self.notify_refer(100, "Trying", now)

    def notify_refer(self, status: int, reason: str, now: float, final: bool | None = None) -> None:
        """NOTIFY the peer how the call it asked for goes: ``message/sipfrag`` body
        ``SIP/2.0 <status> <reason>``, ``Event: refer``, ``Subscription-State: active``
        (``terminated;reason=noresource`` when ``final``, by default when status >= 200).
        After a final NOTIFY the REFER is done.  Does nothing once the call has ended: the
        transferor often hangs up before the new call is answered, and the NOTIFY would
        have no dialog to go in."""
        if self.terminated:
            return
        incoming = self._in_refer
        if incoming is None or not incoming.accepted:
            raise RuntimeError("notify_refer() without an accepted REFER")
        if final is None:
            final = status >= 200
        incoming.last = (status, reason)
        if final:
            incoming.close()
            self._in_refer = None
            state = "terminated;reason=noresource"
        else:
            incoming.expires.set(now + REFER_EXPIRES)
            state = f"active;expires={REFER_EXPIRES}"
        self._send_notify(incoming.event, state, sipfrag_body(status, reason), now)

    def reject_refer(self, status: int, now: float, reason: str | None = None) -> None:
        """Refuse the peer's REFER with a 3xx-6xx (403, 603 Decline ...).  Does nothing once
        the call has ended."""
        if not 300 <= status < 700:
            raise ValueError(f"a rejection is a 3xx-6xx final, not {status}")
        if self.terminated:
            return
        incoming = self._unanswered_refer("reject_refer")
        incoming.close()
        self._in_refer = None
        self.endpoint.respond(make_response(incoming.request, status, reason), now)

    # ------------------------------------------------------------------ for the session

    def _in_dialog_request(self, request: Request, transaction: ServerTransaction | None,
                           now: float) -> bool:
        """A request on our confirmed dialog that passed the dialog's checks (CSeq ordering;
        the target is not refreshed yet).  True when it was answered here; False leaves the
        session's default answer to it."""
        method = request.method
        if method == "INVITE":
            return self._receive_reinvite(request, transaction, now)
        if method == "INFO":
            self.endpoint.respond(make_response(request, 200), now)
            self._emit(InfoReceived((request.headers.get("Content-Type") or "").strip(),
                                    request.body))
            return True
        if method == "NOTIFY":
            self._receive_notify(request, now)
            return True
        if method == "REFER":
            return self._receive_refer(request, now)
        return False

    def _in_dialog_ack(self, ack: Request, now: float) -> None:
        """An ACK on our dialog that is not the initial INVITE's: the ACK of our 2xx to the
        peer's re-INVITE, or a stray one (absorbed)."""
        incoming = self._in_reinvite
        if incoming is None or incoming.ok is None:
            return
        try:
            number = ack.cseq[0]
        except (SipParseError, ValueError):
            return
        if number != incoming.request.cseq[0]:
            return
        incoming.close()
        self._in_reinvite = None
        self._emit(ReinviteConfirmed(sdp_of(ack), source=ack.source))
        self._resume_glare_retry(now)

    def _in_dialog_deadline(self) -> float | None:
        """The earliest of the in-dialog Deadlines (each is in the endpoint's heap itself)."""
        deadlines: list[float | None] = []
        out = self._out_reinvite
        if out is not None:
            deadlines += [out.retry.at, out.guard.at]
        incoming = self._in_reinvite
        if incoming is not None:
            deadlines += [incoming.answer_by.at, incoming.retransmit.at, incoming.ack_wait.at]
        if self._out_refer is not None:
            deadlines.append(self._out_refer.guard.at)
        if self._in_refer is not None:
            deadlines += [self._in_refer.answer_by.at, self._in_refer.expires.at]
        live = [d for d in deadlines if d is not None]
        return min(live) if live else None

    def _abort_in_dialog(self, now: float) -> None:
        """The call is ending: answer what we still owe the peer (487, §15.1.2), drop the rest."""
        incoming = self._in_reinvite
        self._in_reinvite = None
        if incoming is not None:
            incoming.close()
            self._forget_cancel(incoming)
            if incoming.ok is None:
                self.endpoint.respond(make_response(incoming.request, 487), now)
        refer = self._in_refer
        self._in_refer = None
        if refer is not None:
            refer.close()
            if not refer.accepted:
                self.endpoint.respond(make_response(refer.request, 487), now)
        for usage in (self._out_reinvite, self._out_refer):
            if usage is not None:
                usage.close()
        self._out_reinvite = None
        self._out_refer = None

    # ------------------------------------------------------------------ re-INVITE out

    def _send_reinvite(self, now: float) -> None:
        out = self._out_reinvite
        assert out is not None
        dialog = self._confirmed_dialog()
        headers = [("Allow", ", ".join(ALLOWED_METHODS))]
        if SUPPORTED_EXTENSIONS:
            headers.append(("Supported", ", ".join(SUPPORTED_EXTENSIONS)))
        headers.append(("Content-Type", "application/sdp"))
        request = dialog.create_request("INVITE", headers, out.sdp)  # Contact: the dialog's
        self._authorize(request, out.challenges)
        out.request = request
        out.provisional = False
        out.cancelled = False
        out.retry.clear()
        out.retry_due = False
        out.guard.set(now + self.endpoint.config.timers.timeout)
        target = self._target()
        acked: list[tuple[Request, Target]] = []

        def on_response(response: Response, now: float) -> None:
            self._reinvite_response(out, request, response, acked, now)

        def on_failure(reason: str, now: float) -> None:
            if self._out_reinvite is not out or out.request is not request or self.terminated:
                return
            self._reinvite_gone(reason, now)

        out.transaction = self.endpoint.send_request(request, target, now, on_response, on_failure)

    def _reinvite_response(self, out: _OutgoingReinvite, request: Request, response: Response,
                           acked: list[tuple[Request, Target]], now: float) -> None:
        status = response.status
        if 200 <= status < 300:
            if acked:  # a retransmission: our ACK was lost (§13.2.2.4)
                ack, target = acked[0]
                self.endpoint.send_request(ack, target, now, _ignore_response, stamp=False)
                return
            dialog = self.dialog
            assert dialog is not None
            dialog.receive_response(response)  # the target refresh (§12.2.1.2)
            ack = dialog.create_ack(request.cseq[0], _credentials(request))
            target = self._target()
            self.endpoint.send_request(ack, target, now, _ignore_response)
            acked.append((ack, target))
            if self._out_reinvite is out and out.request is request and not self.terminated:
                out.close()
                self._out_reinvite = None
                self._emit(ReinviteAnswered(response.body, source=response.source))
            return
        if self._out_reinvite is not out or out.request is not request or self.terminated:
            return
        if status < 200:
            out.provisional = True
            return
        text = f"{status} {response.reason}"
        if self._answers_challenge(request, response, out.challenges):
            out.challenges += 1
            self._send_reinvite(now)
            return
        if status == 491 and not out.cancelled and out.glare_retries < MAX_GLARE_RETRIES:
            # §14.1: glare.  Back off in 10 ms units, longer for the Call-ID's owner, so the
            # two sides do not collide again.
            out.glare_retries += 1
            ticks = self.rng.randint(210, 400) if self.owns_call_id else self.rng.randint(0, 200)
            out.request = None
            out.guard.clear()
            out.retry.set(now + ticks / 100)
            log.info("re-INVITE of {call_id}: 491, again in {t} s", call_id=self._call_id(),
                     t=ticks / 100)
            return
        out.close()
        self._out_reinvite = None
        if status == 481:
            self._end_call(text, now, bye=False, first=ReinviteFailed(status, text))
        elif status == 408:
            self._end_call(text, now, bye=True, first=ReinviteFailed(status, text))
        else:
            self._emit(ReinviteFailed(status, text))

    def _reinvite_gone(self, reason: str, now: float) -> None:
        """No final answer to our re-INVITE at all: §12.2.1.2 / §14.1, the dialog ends."""
        if self._out_reinvite is not None:
            self._out_reinvite.close()
        self._out_reinvite = None
        text = REASON_TIMEOUT if reason == "timeout" else REASON_TRANSPORT
        self._end_call(text, now, bye=True, first=ReinviteFailed(None, text))

    def _glare_retry_due(self, out: _OutgoingReinvite, now: float) -> None:
        if self._out_reinvite is not out or self.terminated:
            return
        if self._in_reinvite is None:
            self._send_reinvite(now)
        else:
            # The peer's re-INVITE came during the back-off: ours follows once that
            # exchange is over (_resume_glare_retry), so the two never overlap.
            out.retry_due = True

    def _reinvite_guard_due(self, out: _OutgoingReinvite, now: float) -> None:
        if self._out_reinvite is not out or self.terminated or out.request is None:
            return
        if out.provisional and not out.cancelled:
            # Only provisional answers for 64*T1: give the re-INVITE up with CANCEL (§9.1);
            # its 487 is then the failure, the call stays.
            out.cancelled = True
            out.guard.set(now + self.endpoint.config.timers.timeout)
            self.endpoint.send_request(build_cancel(out.request), self._target(), now,
                                       _ignore_response, _ignore_failure, stamp=False)
        elif out.cancelled:
            # §9.1: no final 64*T1 after the CANCEL either: consider it gone.
            if out.transaction is not None:
                self.endpoint.abandon(out.transaction, now)
            self._reinvite_gone("timeout", now)
        # else: Timer B (on_failure) settles a re-INVITE never answered

    def _resume_glare_retry(self, now: float) -> None:
        out = self._out_reinvite
        if (out is not None and out.request is None and out.retry_due
                and self._in_reinvite is None and not self.terminated):
            self._send_reinvite(now)

    # ------------------------------------------------------------------ re-INVITE in

    def _receive_reinvite(self, request: Request, transaction: ServerTransaction | None,
                          now: float) -> bool:
        if not self._in_dialog_ready():
            return False
        out = self._out_reinvite
        if out is not None and out.request is not None:
            # §14.2: our INVITE transaction on this dialog is in progress.
            self.endpoint.respond(make_response(request, 491), now)
            return True
        if self._in_reinvite is not None:
            # §14.2: a second INVITE before the first is settled.
            self.endpoint.respond(self._retry_after(request, 500), now)
            return True
        timers = self.endpoint.config.timers
        deadlines = self.endpoint.deadlines
        incoming = _IncomingReinvite(
            request, transaction,
            answer_by=deadlines.new(lambda now: self._reinvite_answer_due(incoming, now)),
            retransmit=deadlines.new(lambda now: self._reinvite_retransmit_due(incoming, now)),
            ack_wait=deadlines.new(lambda now: self._reinvite_ack_wait_over(incoming, now)))
        incoming.answer_by.set(now + timers.timeout / 2)
        self._in_reinvite = incoming
        if transaction is not None:
            self._cancels().add_transaction(
                transaction, self, lambda cancel, now: self._cancel_reinvite(incoming, cancel, now))
        self._emit(ReinviteOffered(sdp_of(request), source=request.source))
        return True

    def _cancel_reinvite(self, incoming: _IncomingReinvite, cancel: Request, now: float) -> None:
        self.endpoint.respond(make_response(cancel, 200), now)
        self._forget_cancel(incoming)
        if self._in_reinvite is not incoming or incoming.ok is not None:
            return  # answered already: the CANCEL changes nothing (§9.2)
        incoming.close()
        self._in_reinvite = None
        self.endpoint.respond(make_response(incoming.request, 487), now)
        self._emit(ReinviteCancelled())
        self._resume_glare_retry(now)

    def _reinvite_answer_due(self, incoming: _IncomingReinvite, now: float) -> None:
        if self._in_reinvite is not incoming or self.terminated:
            return
        log.warn("re-INVITE of {call_id} left unanswered: 500", call_id=self._call_id())
        self.reject_reinvite(500, now)

    def _reinvite_ack_wait_over(self, incoming: _IncomingReinvite, now: float) -> None:
        if self._in_reinvite is not incoming or self.terminated:
            return
        # §13.3.1.4: no ACK for our 2xx: the session SHOULD be terminated, with a BYE.
        incoming.close()
        self._in_reinvite = None
        log.info("no ACK for our 2xx to the re-INVITE of {call_id}: BYE",
                 call_id=self._call_id())
        self._end_call(REASON_ACK_TIMEOUT, now, bye=True)

    def _reinvite_retransmit_due(self, incoming: _IncomingReinvite, now: float) -> None:
        if self._in_reinvite is not incoming or self.terminated:
            return
        assert incoming.ok is not None
        incoming.interval = min(2 * incoming.interval, self.endpoint.config.timers.t2)
        incoming.retransmit.set(now + incoming.interval)
        self.endpoint.respond(incoming.ok, now)

    # ------------------------------------------------------------------ INFO

    def _send_info(self, content_type: str, body: bytes, now: float, *, challenges: int) -> None:
        dialog = self._confirmed_dialog()
        request = dialog.create_request("INFO", [("Content-Type", content_type)], body)
        self._authorize(request, challenges)

        def on_response(response: Response, now: float) -> None:
            status = response.status
            if status < 200 or self.terminated:
                return
            if self._answers_challenge(request, response, challenges):
                self._send_info(content_type, body, now, challenges=challenges + 1)
                return
            if status == 481:  # the dialog is gone at the peer (§12.2.1.2)
                text = f"{status} {response.reason}"
                self._end_call(text, now, bye=False, first=InfoAnswered(status))
                return
            self._emit(InfoAnswered(status))

        def on_failure(reason: str, now: float) -> None:
            if not self.terminated:
                self._emit(InfoAnswered(None))

        self.endpoint.send_request(request, self._target(), now, on_response, on_failure)

    # ------------------------------------------------------------------ REFER out

    def _send_refer(self, now: float) -> None:
        out = self._out_refer
        assert out is not None
        dialog = self._confirmed_dialog()
        headers = [
            ("Refer-To", out.refer_to),
            ("Referred-By", format_name_addr(dialog.local_uri)),
            ("Contact", self._contact_value(dialog)),
        ]
        request = dialog.create_request("REFER", headers)
        self._authorize(request, out.challenges)
        out.request = request

        def on_response(response: Response, now: float) -> None:
            status = response.status
            if status < 200 or self._out_refer is not out or out.request is not request:
                return
            if self.terminated:
                return
            if 200 <= status < 300:
                if not out.accepted:
                    out.accepted = True
                    self._arm_refer_guard(out, None, now)
                    self._emit(ReferAccepted(status))
                return
            if self._answers_challenge(request, response, out.challenges):
                out.challenges += 1
                self._send_refer(now)
                return
            out.close()
            self._out_refer = None
            text = f"{status} {response.reason}"
            if status == 481:
                self._end_call(text, now, bye=False, first=ReferFailed(status, text))
            else:
                self._emit(ReferFailed(status, text))

        def on_failure(reason: str, now: float) -> None:
            if self._out_refer is not out or out.request is not request or self.terminated:
                return
            out.close()
            self._out_refer = None
            self._emit(ReferFailed(None, REASON_TIMEOUT if reason == "timeout" else REASON_TRANSPORT))

        self.endpoint.send_request(request, self._target(), now, on_response, on_failure)

    def _arm_refer_guard(self, out: _OutgoingRefer, expires: int | None, now: float) -> None:
        wait = REFER_EXPIRES if expires is None else expires
        out.guard.set(now + wait + self.endpoint.config.timers.timeout)

    def _receive_notify(self, request: Request, now: float) -> None:
        event = (request.headers.get("Event") or "").split(";", 1)[0].strip().lower()
        if event != "refer":
            self.endpoint.respond(make_response(request, 489), now)
            return
        out = self._out_refer
        if out is None:
            if self._out_refer_done:  # the subscription's last words, after its final report
                self._accept_notify(request, now)
            else:
                self.endpoint.respond(
                    make_response(request, 481, "Subscription Does Not Exist"), now)
            return
        self._accept_notify(request, now)
        state, expires = _subscription_state(request.headers.get("Subscription-State"))
        content_type = (request.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
        frag = parse_sipfrag(request.body) if content_type == SIPFRAG else None
        terminated = state == "terminated"
        if not out.accepted:
            out.accepted = True  # the NOTIFY overtook the REFER's 202 (RFC 3515 §2.4.4)
            self._emit(ReferAccepted(202))
            if self._out_refer is not out:
                return
        if frag is None:
            if terminated:
                out.close()
                self._out_refer = None
                self._out_refer_done = True
                self._emit(ReferFailed(None, "transfer subscription ended without a final status"))
            else:
                self._arm_refer_guard(out, expires, now)
            return
        status, reason = frag
        final = terminated or status >= 200
        if final:
            out.close()
            self._out_refer = None
            self._out_refer_done = True
        else:
            self._arm_refer_guard(out, expires, now)
        self._emit(ReferProgress(status, final, reason))

    def _accept_notify(self, request: Request, now: float) -> None:
        self.endpoint.respond(make_response(request, 200), now)
        dialog = self.dialog
        if dialog is not None:
            dialog.refresh_target(request)  # NOTIFY is a target refresh (RFC 6665 §4.2.2)

    # ------------------------------------------------------------------ REFER in

    def _receive_refer(self, request: Request, now: float) -> bool:
        if not self._in_dialog_ready():
            return False
        if self._in_refer is not None:
            self.endpoint.respond(self._retry_after(request, 500), now)
            return True
        values = request.headers.get_all("Refer-To")
        if len(values) != 1:
            self.endpoint.respond(
                make_response(request, 400, "Bad Request (exactly one Refer-To)"), now)
            return True
        replaces: dict[str, Any] | None = None
        try:
            refer_to, replaces_text = split_refer_to(values[0])
            if replaces_text is not None:
                call_id, to_tag, from_tag = parse_replaces(replaces_text)
                replaces = {"call_id": call_id, "to_tag": to_tag, "from_tag": from_tag,
                            "early_only": "early-only" in replaces_text.lower()}
        except ValueError as exc:
            self.endpoint.respond(make_response(request, 400, f"Bad Request ({exc})"[:100]), now)
            return True
        self._refers_received += 1
        # RFC 3515 §2.4.6: NOTIFYs name the REFER's CSeq in id=, which the first REFER of a
        # dialog may omit (and older UAs expect it omitted).
        event = "refer" if self._refers_received == 1 else f"refer;id={request.cseq[0]}"
        timers = self.endpoint.config.timers
        deadlines = self.endpoint.deadlines
        incoming = _IncomingRefer(
            request, event=event,
            answer_by=deadlines.new(lambda now: self._refer_answer_due(incoming, now)),
            expires=deadlines.new(lambda now: self._refer_expired(incoming, now)))
        incoming.answer_by.set(now + timers.timeout / 2)
        self._in_refer = incoming
        self._emit(ReferReceived(refer_to, replaces, request.headers.get("Referred-By")))
        return True

    def _send_notify(self, event: str, state: str, body: bytes, now: float) -> None:
        dialog = self._confirmed_dialog()
        headers = [
            ("Event", event),
            ("Subscription-State", state),
            ("Content-Type", f"{SIPFRAG};version=2.0"),
        ]
        request = dialog.create_request("NOTIFY", headers, body)  # Contact: the dialog's

        def on_response(response: Response, now: float) -> None:
            if response.status >= 300:
                log.info("NOTIFY of {call_id} answered {status}", call_id=self._call_id(),
                         status=response.status)

        self.endpoint.send_request(request, self._target(), now, on_response, _ignore_failure)

    def _refer_guard_due(self, out: _OutgoingRefer, now: float) -> None:
        if self._out_refer is not out or self.terminated:
            return
        out.close()
        self._out_refer = None
        self._emit(ReferFailed(None, "no final NOTIFY for the transfer"))

    def _refer_answer_due(self, incoming: _IncomingRefer, now: float) -> None:
        if self._in_refer is not incoming or self.terminated:
            return
        log.warn("REFER of {call_id} left unanswered: 500", call_id=self._call_id())
        self.reject_refer(500, now)

    def _refer_expired(self, incoming: _IncomingRefer, now: float) -> None:
        if self._in_refer is not incoming or self.terminated:
            return
        # Our subscription ran out without a final report (RFC 6665 §4.2.2): say so.
        incoming.close()
        self._in_refer = None
        status, reason = incoming.last
        self._send_notify(incoming.event, "terminated;reason=timeout",
                          sipfrag_body(status, reason), now)

    # ------------------------------------------------------------------ internals

    def _authorize(self, request: Request, challenges: int, target: Target | None = None) -> None:
        """Credentials on a re-sent in-dialog request (``challenges`` > 0: it was challenged).
        The first send goes without: most proxies challenge nothing inside a dialog.  Only
        toward the account's server (:meth:`_to_server`; ``target`` defaults to the
        dialog's next hop)."""
        if challenges and self._digest is not None:
            self._digest.authorize(request, to_server=self._to_server(target))

    def _answers_challenge(self, request: Request, response: Response, challenges: int,
                           target: Target | None = None) -> bool:
        """True when ``response`` is a 401/407 to ``request`` that we answer: the session has
        credentials, fewer than MAX_CHALLENGES were answered for this request, and the
        DigestClient judges a retry worthwhile — which it never does when the request did not
        go to the account's own registrar/proxy (``target``, by default the dialog's next
        hop: :meth:`_to_server`) or the realm is not the account's pinned one, nor when the
        credentials just sent were refused (§22.2).  The caller then sends the request again
        (new CSeq, §8.1.3.5) through :meth:`_authorize`.  One judgement for every in-dialog
        request of both sessions — re-INVITE, INFO, REFER, BYE — so an incoming call's
        requests are answered like an outgoing call's, and a dialog peer that challenges our
        BYE itself gets nothing computed from the password."""
        if response.status not in (401, 407) or self._digest is None:
            return False
        if challenges >= MAX_CHALLENGES:
            return False
        outcome = self._digest.handle_challenge(request, response,
                                                to_server=self._to_server(target))
        if outcome is ChallengeOutcome.UNTRUSTED:
            log.warn("{method} of {call_id} challenged {status} by a peer that is not the "
                     "account's registrar/proxy (or in another realm): not answered",
                     method=request.method, call_id=self._call_id(), status=response.status)
        return outcome is ChallengeOutcome.RETRY

    def _server_hosts(self) -> tuple[str, ...]:
        """The account's registrar/proxy hosts (``SipAccount.server_hosts``); () without an
        account.  Sessions override."""
        return ()

    def _to_server(self, target: Target | None = None) -> bool:
        """Whether a request to ``target`` (default: the dialog's next hop) goes to the
        account's own registrar/proxy, by name or resolved address."""
        hosts = self._server_hosts()
        if not hosts:
            return False
        if target is None:
            target = self._target()
        return self.endpoint.addresses.same_host(target.host, hosts)

    def _require_up(self, action: str) -> None:
        if self.dialog is None or not self._in_dialog_ready():
            state = getattr(self, "state", None)
            name = getattr(state, "name", state)
            raise RuntimeError(f"{action}() in state {name}: the call is not up")

    def _confirmed_dialog(self) -> Dialog:
        dialog = self.dialog
        if dialog is None or dialog.state is DialogState.TERMINATED:
            raise RuntimeError("no confirmed dialog")
        return dialog

    def _unanswered_reinvite(self, action: str) -> _IncomingReinvite:
        incoming = self._in_reinvite
        if incoming is None or incoming.ok is not None:
            raise RuntimeError(f"{action}() without a re-INVITE waiting for its answer")
        return incoming

    def _unanswered_refer(self, action: str) -> _IncomingRefer:
        incoming = self._in_refer
        if incoming is None or incoming.accepted:
            raise RuntimeError(f"{action}() without a REFER waiting for its answer")
        return incoming

    def _target(self) -> Target:
        dialog = self.dialog
        assert dialog is not None
        return dialog_target(dialog, self._in_dialog_transport())

    @staticmethod
    def _contact_value(dialog: Dialog) -> str:
        contact = dialog.local_contact or f"<{dialog.local_uri}>"
        return contact if "<" in contact else f"<{contact}>"

    def _retry_after(self, request: Request, status: int) -> Response:
        # §14.2: Retry-After "randomly chosen value of between 0 and 10 seconds".
        return make_response(request, status,
                             headers=[("Retry-After", str(self.rng.randint(0, 10)))])

    def _cancels(self) -> IncomingInvites:
        return IncomingInvites.install(self.endpoint)

    def _forget_cancel(self, incoming: _IncomingReinvite) -> None:
        if incoming.transaction is not None:
            self._cancels().remove_transaction(incoming.transaction, self)

    def _call_id(self) -> str:
        dialog = self.dialog
        return dialog.call_id if dialog is not None else "?"
