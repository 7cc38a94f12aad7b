"""The call's SIP leg behind one small interface, whichever way its INVITE went.

A call's SIP side is an :class:`~wcsgw.sip.invite.OutgoingInvite` (we are the UAC: a
browser's call, a handed or file call, the INVITE a far end's REFER makes us send) or an
:class:`~wcsgw.sip.uas.IncomingInvite` (we are the UAS: a call from the SIP side).  What the
call asks of it — begin, end, refuse before an answer, undo a start that failed, re-INVITE,
INFO, answer a re-offer — is the same request either way; how it goes on the wire (INVITE or
180, CANCEL or a final response, whether undoing sends anything) differs, and that difference
lives here, in one class per direction, so the call never asks which leg it has.

The leg also speaks for its session's events: :func:`to_control` turns each SIP event
(wcsgw.sip.events) into the call-control event it means (wcsgw.calls.events) — a 1xx into a
ring or early media, a re-INVITE into a re-offer, an INFO into digits or a key-frame request,
BYE and CANCEL into a disconnect — so the call handles call-control events, not SIP ones.

The leg holds the SIP session (:attr:`SipLeg.session`) for the parts that speak SIP to the
dialog itself: the transferor's REFER, the transferee's answers to a far end's REFER.
"""

from __future__ import annotations

import abc
from typing import Any, Callable, Mapping

from wcsgw.calls import events as cc
from wcsgw.calls.leg import Leg
from wcsgw.calls.status import Info
from wcsgw.sip.events import (
    Answered,
    Cancelled,
    Confirmed,
    Ended,
    Failed,
    InfoAnswered,
    InfoReceived,
    Provisional,
    ReferAccepted,
    ReferFailed,
    ReferProgress,
    ReferReceived,
    ReinviteAnswered,
    ReinviteConfirmed,
    ReinviteFailed,
    ReinviteOffered,
)
from wcsgw.sip.info import parse_dtmf_info
from wcsgw.sip.mediacontrol import is_media_control

__all__ = ["IncomingSipLeg", "OutgoingSipLeg", "SipLeg", "to_control"]


def _info(event: InfoReceived) -> Any:
    """An INFO is RFC 5168 media control, DTMF digits (dtmf-relay), or nothing to the call."""
    if is_media_control(event.content_type):
        return cc.KeyFrameRequest(event.body)
    digits = parse_dtmf_info(event.content_type, event.body)
    return cc.Dtmf(digits) if digits else None


#: What each SIP event means to the call (an event without an entry means nothing to it).
_CONTROL: Mapping[type, Callable[[Any], Any]] = {
    Provisional: lambda e: (cc.Ring(e.status) if e.sdp is None
                            else cc.EarlyMedia(e.status, e.sdp)),
    Answered: lambda e: cc.Connect(e.sdp),
    Confirmed: lambda e: cc.Confirm(e.ack_sdp),
    ReinviteOffered: lambda e: cc.Reoffer(e.sdp),
    ReinviteConfirmed: lambda e: cc.ReofferConfirmed(e.ack_sdp),
    ReinviteAnswered: lambda e: cc.ReofferAnswered(e.sdp),
    ReinviteFailed: lambda e: cc.ReofferFailed(e.reason),
    InfoReceived: _info,
    InfoAnswered: lambda e: cc.InfoDone(e.status),
    ReferReceived: cc.TransferRequest,
    ReferAccepted: cc.TransferAccepted,
    ReferProgress: cc.TransferProgress,
    ReferFailed: cc.TransferFailed,
    Failed: lambda e: cc.Fail(e.status, e.reason),
    Ended: lambda e: cc.Disconnect(None, e.reason or Info.NORMAL),
    Cancelled: lambda e: cc.Disconnect(487, "Cancelled by the caller"),
}


def to_control(event: Any) -> Any:
    """The call-control event (wcsgw.calls.events) a SIP leg's ``event`` means, or None."""
    translate = _CONTROL.get(type(event))
    return translate(event) if translate is not None else None


class SipLeg(Leg):
    """The SIP side of a call, UAC or UAS alike (see the module docstring)."""

    def __init__(self, session: Any, source: Any = None) -> None:
        """``source``: where the dialog's latest SDP-carrying message came from, when it is
        known before this leg hears anything (a transfer target's answer, the UAS's INVITE)."""
        #: the SIP session (OutgoingInvite or IncomingInvite) this leg drives
        self.session = session
        #: where the SIP side's latest SDP-carrying message came from (a Target): its IP, with
        #: the SDP's c=, is whom the SIP-side media latches to (wcsgw.media.udp)
        self.source = source
        session.listener = self.heard

    def heard(self, event: Any) -> None:
        """The session's listener: its SIP event (wcsgw.sip.events) as the call-control event
        it means, to the call; remembers where an SDP-carrying message came from first."""
        source = getattr(event, "source", None)
        if source is not None:
            self.source = source
        control = to_control(event)
        if control is not None:
            self.emit(control)

    @property
    def terminated(self) -> bool:
        """The session gave its terminal event: nothing of this leg is left on the wire."""
        return bool(self.session.terminated)

    @property
    def reinvite_in_progress(self) -> bool:
        return bool(self.session.reinvite_in_progress)

    @property
    def refer_in_progress(self) -> bool:
        return bool(self.session.refer_in_progress)

    def hangup(self, now: float) -> None:
        """End the leg from our side, whatever its state (the session says how: CANCEL,
        603 or BYE); its terminal event follows."""
        self.session.hangup(now)

    @abc.abstractmethod
    def refuse(self, status: int, reason: str, now: float) -> None:
        """End a leg that was never answered, with ``status`` where the leg can say one."""

    @abc.abstractmethod
    def withdraw(self, now: float) -> None:
        """Undo a call's start that raised: take back what already went out, quietly."""

    def reinvite(self, sdp: bytes, now: float) -> None:
        self.session.reinvite(sdp, now)

    def answer_reinvite(self, sdp: bytes, now: float) -> None:
        self.session.answer_reinvite(sdp, now)

    def reject_reinvite(self, status: int, now: float) -> None:
        self.session.reject_reinvite(status, now)

    def send_info(self, content_type: str, body: bytes, now: float) -> None:
        self.session.send_info(content_type, body, now)


class OutgoingSipLeg(SipLeg):
    """We sent the INVITE (UAC)."""

    def start(self, now: float) -> None:
        self.session.start(now)

    def refuse(self, status: int, reason: str, now: float) -> None:
        """A UAC refuses its own unanswered call by CANCEL: the status is the callee's."""
        self.session.hangup(now)

    def withdraw(self, now: float) -> None:
        """The INVITE went out already: CANCEL it."""
        if not self.session.terminated:
            self.session.hangup(now)


class IncomingSipLeg(SipLeg):
    """The SIP side called us (UAS)."""

    def __init__(self, session: Any) -> None:
        # The caller's SDP came with the INVITE: its media latches to the INVITE's source IP
        # (or the SDP's) first; a late offer's ACK and re-INVITEs move it.
        super().__init__(session, getattr(getattr(session, "transaction", None), "source", None))

    def start(self, now: float) -> None:
        """180 Ringing while the browser decides."""
        self.session.ring(now)

    def answer(self, sdp: bytes, now: float) -> None:
        """200 OK with ``sdp`` (our answer, or our offer to a late-offer INVITE)."""
        self.session.answer(sdp, now)

    def refuse(self, status: int, reason: str, now: float) -> None:
        """A final response: 480 unanswered, 486/603 declined, 488 no common codec."""
        self.session.reject(status, reason, now)

    def withdraw(self, now: float) -> None:
        """Nothing: the INVITE's taker answers it when the call's start raised
        (wcsgw.calls.inbound.InboundRouter)."""

    @property
    def offer_sdp(self) -> bytes | None:
        """The caller's offer in the INVITE (None: a late offer, our 200 offers)."""
        sdp: bytes | None = self.session.offer_sdp
        return sdp

