"""The events of an INVITE session (the call's own: Provisional, Answered, Failed, Ended; and
its dialog's once it is up: re-INVITE, INFO, REFER and its NOTIFYs, both ways), and the
``info`` texts both INVITE sessions end calls with; and the REGISTER client's events.

A session's go to its ``listener``, a registration's to the listener given to
:meth:`~wcsgw.sip.endpoint.SipEndpoint.register`.  Plain frozen values: the sessions, the usages
of :mod:`wcsgw.sip.usage` and :class:`~wcsgw.sip.registration.Registration` make them, the call
layer reads them; :mod:`wcsgw.sip.invite`, :mod:`wcsgw.sip.session` and
:mod:`wcsgw.sip.registration` re-export them where they always were.
"""

from __future__ import annotations

from typing import Any, Union

import attr

from wcsgw.sip.message import Request, Response
from wcsgw.sip.target import Target

__all__ = [
    "Answered",
    "Cancelled",
    "Confirmed",
    "DialogEvent",
    "Ended",
    "Failed",
    "Provisional",
    "InfoAnswered",
    "InfoReceived",
    "REASON_ACK_TIMEOUT",
    "REASON_NORMAL",
    "REASON_TIMEOUT",
    "REASON_TRANSPORT",
    "Registered",
    "RegistrationEvent",
    "RegistrationFailed",
    "Unregistered",
    "ReferAccepted",
    "ReferFailed",
    "ReferProgress",
    "ReferReceived",
    "ReinviteAnswered",
    "ReinviteCancelled",
    "ReinviteConfirmed",
    "ReinviteFailed",
    "ReinviteOffered",
    "sdp_of",
]

#: ``info`` strings of the contract (docs/contract.md, call statuses).
REASON_NORMAL = "Normal call clearing"
REASON_TIMEOUT = "Failed by request timeout"
REASON_TRANSPORT = "Failed by transport error"
#: Our 2xx (to the INVITE or a re-INVITE) was never acknowledged (§13.3.1.4).
REASON_ACK_TIMEOUT = "ACK timeout"


def sdp_of(message: Request | Response) -> bytes | None:
    """The body when it is SDP (RFC 3261 §13.2.1: the offer or answer of an exchange)."""
    if not message.body:
        return None
    content_type = (message.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
    return message.body if content_type == "application/sdp" else None


# -- the INVITE sessions' own (OutgoingInvite; IncomingInvite adds Confirmed and Cancelled)


@attr.s(frozen=True, slots=True, auto_attribs=True)
class Provisional:
    """A 1xx arrived: 100 Trying, 180 Ringing, 183 Session Progress (``sdp``: early media).
    ``source``: where it came from (the media of its SDP is latched to that IP, or the SDP's)."""

    status: int
    reason: str
    sdp: bytes | None = None
    source: Target | None = attr.ib(default=None, eq=False)  # not part of what happened


@attr.s(frozen=True, slots=True, auto_attribs=True)
class Answered:
    """The call is up: a 2xx arrived and was ACKed; ``sdp`` is the callee's answer,
    ``source`` where the 2xx came from."""

    sdp: bytes
    source: Target | None = attr.ib(default=None, eq=False)  # not part of what happened


@attr.s(frozen=True, slots=True, auto_attribs=True)
class Failed:
    """The call never came up.  ``status`` is the SIP final (486, 404, 487 ...) or None for a
    timeout or transport error; ``reason`` is ``"<code> <reason phrase>"`` or one of the
    docs/contract.md's ``Failed by ...`` texts."""

    status: int | None
    reason: str


@attr.s(frozen=True, slots=True, auto_attribs=True)
class Ended:
    """The call is over: hung up by us (``by_remote=False``: our BYE or CANCEL is settled)
    or by the peer (its BYE, answered 200)."""

    reason: str
    by_remote: bool


@attr.s(frozen=True, slots=True, auto_attribs=True)
class Confirmed:
    """The ACK of our 2xx arrived: the call is up.  ``ack_sdp`` is the caller's answer when
    the INVITE had no offer (late offer: our 200 carried it), else None.  ``source``: the
    ACK's sender (a late offer's answer is latched to that IP, or its SDP's)."""

    ack_sdp: bytes | None = None
    source: Target | None = attr.ib(default=None, eq=False)  # not part of what happened


@attr.s(frozen=True, slots=True, auto_attribs=True)
class Cancelled:
    """The caller gave up before our final answer (CANCEL, or BYE on the early dialog); the
    INVITE was answered 487."""


# -- the dialog's, once the call is up


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


# -- the REGISTER client's (Registration; the endpoint hands them to the listener)


@attr.s(frozen=True, slots=True, auto_attribs=True)
class Registered:
    """The registrar accepted the binding (first time and every refresh)."""

    expires: int
    contact: str


@attr.s(frozen=True, slots=True, auto_attribs=True)
class RegistrationFailed:
    """An attempt failed.  ``status`` is the SIP code, None for a timeout or transport error;
    ``auth`` marks a refused identity (401/407 with credentials rejected, 403, or a challenge we
    cannot answer) — sessionStatus ``AUTHENTICATION_FAIL`` rather than ``FAILED``.
    ``retry_in`` is the backoff delay, None when no retry is scheduled."""

    status: int | None
    reason: str
    auth: bool
    retry_in: float | None = None


@attr.s(frozen=True, slots=True, auto_attribs=True)
class Unregistered:
    """The binding is gone (or was never made) after :meth:`~wcsgw.sip.registration.Registration.stop`."""

    reason: str = "stopped"


RegistrationEvent = Union[Registered, RegistrationFailed, Unregistered]
