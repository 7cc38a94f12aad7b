"""The call-control events: what a leg tells the call, in the call's words, not the protocol's.

The browser's leg says one thing in them: its media could not be set up
(:class:`MediaFailed`, from the WebRTC leg's ``failed:ice`` and ``failed:dtls`` states).

sippy's idea (``CCEvents``), typed: the SIP leg (wcsgw.calls.sipleg) turns its SIP session's
events — responses, re-INVITEs, INFO, REFER, BYE, CANCEL, as wcsgw.sip.events names them —
into these, so the call coordinates a ring, a connect, a hold offered, a digit, a transfer, a
disconnect or a failure, and never learns which SIP message said so or which way the INVITE
went.  Each is a frozen attrs class; the call looks up its handler by type
(``Call.CONTROL_HANDLERS``).

The transfer events carry the SIP event they come from: the transferor and the transferee
(wcsgw.calls.transferor, wcsgw.calls.transferee) speak REFER and NOTIFY on the dialog
themselves, and need what the request said.
"""

from __future__ import annotations

from typing import Any

import attr

__all__ = [
    "Confirm", "Connect", "Disconnect", "Dtmf", "EarlyMedia", "Fail", "InfoDone",
    "KeyFrameRequest", "MediaFailed", "Reoffer", "ReofferAnswered", "ReofferConfirmed", "ReofferFailed",
    "Ring", "TransferAccepted", "TransferFailed", "TransferProgress", "TransferRequest",
]


# -- the call's setup


@attr.s(frozen=True, slots=True, auto_attribs=True)
class Ring:
    """The far end is being alerted (180, or a 1xx without SDP): ``status`` as it said it."""

    status: int


@attr.s(frozen=True, slots=True, auto_attribs=True)
class EarlyMedia:
    """The far end answered our offer before answering the call (a 1xx with ``sdp``)."""

    status: int
    sdp: bytes


@attr.s(frozen=True, slots=True, auto_attribs=True)
class Connect:
    """The far end took our call; ``sdp`` its answer (empty: the early one stands)."""

    sdp: bytes


@attr.s(frozen=True, slots=True, auto_attribs=True)
class Confirm:
    """The far end confirmed the call we answered (the ACK); ``sdp`` its answer when our
    answer was the offer (a late-offer call), else None or a new SDP."""

    sdp: bytes | None


# -- the session changing once it is up: hold, unhold, a new address


@attr.s(frozen=True, slots=True, auto_attribs=True)
class Reoffer:
    """The far end offers the session anew (hold, unhold, a new address or port; ``sdp``
    None: it asks us to offer)."""

    sdp: bytes | None


@attr.s(frozen=True, slots=True, auto_attribs=True)
class ReofferConfirmed:
    """The far end's answer to the offer we made when it asked for one (None: no answer)."""

    sdp: bytes | None


@attr.s(frozen=True, slots=True, auto_attribs=True)
class ReofferAnswered:
    """The far end accepted our new offer (our hold or unhold): ``sdp`` its answer."""

    sdp: bytes


@attr.s(frozen=True, slots=True, auto_attribs=True)
class ReofferFailed:
    """The far end refused our new offer; the session stays as it was."""

    reason: str


# -- in the call: digits, key frames


@attr.s(frozen=True, slots=True, auto_attribs=True)
class Dtmf:
    """Digits the far end sent out of the media stream (SIP INFO)."""

    digits: str


@attr.s(frozen=True, slots=True, auto_attribs=True)
class KeyFrameRequest:
    """The far end's media control (RFC 5168: a key-frame request, or its error report)."""

    body: bytes


@attr.s(frozen=True, slots=True, auto_attribs=True)
class InfoDone:
    """The far end answered one of our INFOs (digits, key-frame requests): ``status``."""

    status: int | None


# -- transfer


@attr.s(frozen=True, slots=True, auto_attribs=True)
class TransferRequest:
    """The far end asks us to call someone else (its REFER, in ``refer``)."""

    refer: Any


@attr.s(frozen=True, slots=True, auto_attribs=True)
class TransferAccepted:
    """The far end took our transfer request (``sip``: its answer)."""

    sip: Any


@attr.s(frozen=True, slots=True, auto_attribs=True)
class TransferProgress:
    """How our transfer goes at the far end (``sip``: its NOTIFY)."""

    sip: Any


@attr.s(frozen=True, slots=True, auto_attribs=True)
class TransferFailed:
    """The far end refused our transfer request, or it failed (``sip``: why)."""

    sip: Any


# -- the end: after these the leg is over on the wire too (it settles)


@attr.s(frozen=True, slots=True, auto_attribs=True)
class Disconnect:
    """The call is over: either side hung up, or the caller gave up before the answer.
    ``status``: a SIP status that says how (487 for the caller's CANCEL), None to keep the
    last one; ``reason``: the call's info."""

    status: int | None
    reason: str


@attr.s(frozen=True, slots=True, auto_attribs=True)
class Fail:
    """The call never came up: ``status`` the far end's final (None: a timeout or transport
    error), ``reason`` why."""

    status: int | None
    reason: str


@attr.s(frozen=True, slots=True, auto_attribs=True)
class MediaFailed:
    """The media toward the browser could not be set up (ICE or DTLS failed): the call fails
    with ``reason`` and its SIP leg is hung up."""

    reason: str
