"""A call once it is up: hold, DTMF, re-offers from the SIP side, INFO, and transfer.

:class:`Call` is a :class:`~wcsgw.calls.core.CallCore` (its legs, setup and end) with the
in-call functions the browser and the operator use (JSON-RPC and REST: ``hold``, ``unhold``,
``sendDTMF``, ``transfer``, ``answerTransfer``) and the SIP side's in-call events (re-offers,
INFO digits and key-frame requests, REFER and its NOTIFYs).  Each of those is an object of
its own, made by the environment's factories so tests give the call others: the holds
(wcsgw.calls.hold), the INFO queue (wcsgw.calls.infoqueue), the far end's REFER
(wcsgw.calls.transferee) and the browser's (wcsgw.calls.transferor); our SDP toward the SIP
side answers re-offers keeping the codec in use (wcsgw.calls.sipsdp).  The call here only
routes between them and the legs.  Every kind of call is a :class:`Call`: the browser's own
(wcsgw.calls.outbound), the offered ones (wcsgw.calls.offered) and the file call.
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar, Mapping

from twisted.logger import Logger

from wcsgw.calls import events as cc
from wcsgw.calls.core import CallCore, parsed_sdp
from wcsgw.calls.errors import CallError, Codes
from wcsgw.calls.reoffer import taken_in_answer
from wcsgw.calls.sipleg import OutgoingSipLeg
from wcsgw.calls.status import CallStatus
from wcsgw.calls.transferor import Transfer
from wcsgw.sdp.codecs import Codec
from wcsgw.sdp.errors import SdpError
from wcsgw.sdp.model import SessionDescription
from wcsgw.sdp.parser import parse_sdp
from wcsgw.sip.invite import Answered, OutgoingInvite

log = Logger(namespace="wcsgw.calls")

__all__ = ["Call"]


class Call(CallCore):
    """A call with its in-call functions (see the module docstring)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        env = self.env
        #: the far end's REFERs: a session without an account of its own (the test lines)
        #: is held to the same "test lines only" rule as for its own callees; a browser
        #: session hears this call's notifications (REST file calls have none), so a REFER
        #: can be put to it
        self.transferee = env.make_transferee(
            self, env, account=self.session_account and self.account,
            can_ask=kwargs.get("notify") is not None)
        #: the browser's own transfers (our REFERs)
        self.transferor = env.make_transferor(status=self._transfer_status,
                                              completed=self._transferred)
        #: INFO to send, one at a time: DTMF digits and video key-frame requests (RFC 5168)
        self.info_queue = env.make_info_queue(self._send_info, self._fast_update_answered)

    #: The in-call events of the legs (wcsgw.calls.events), beside the setup and end ones.
    CONTROL_HANDLERS: ClassVar[Mapping[type, str]] = {
        **CallCore.CONTROL_HANDLERS,
        cc.ReofferConfirmed: "_reoffer_confirmed",
        cc.ReofferAnswered: "_reoffer_answered",
        cc.ReofferFailed: "_reoffer_failed",
        cc.Reoffer: "_reoffered",
        cc.InfoDone: "_info_done",
        cc.Dtmf: "_dtmf_received",
        cc.KeyFrameRequest: "_key_frame_requested",
        cc.TransferRequest: "_transfer_requested",
        cc.TransferAccepted: "_transfer_accepted",
        cc.TransferFailed: "_transfer_failed",
        cc.TransferProgress: "_transfer_progress",
    }

    def _open_browser_media(self) -> Any:
        """The sockets of a call between a browser and the SIP side, from the environment:
        the SIP side's RTP pair (``rtp``), then the browser's WebRTC media end (returned)."""
        env = self.env
        self.rtp = env.make_rtp_socket(env.reactor, env.allocator, env.media_host)
        return env.make_browser_leg(env.reactor, env.media_host, env.browser_address,
                                    env.allocator, certificate=env.certificate)

    def _parse_sip_answer(self, sip_sdp: bytes) -> SessionDescription | None:
        """The SIP side's answer parsed, or None after failing the call with why it does not
        parse (the call cannot go on with media it cannot read).  The parse is kept for
        :meth:`_sip_answer`, which reads the same bytes next on the way to ESTABLISHED."""
        try:
            parsed = parse_sdp(sip_sdp)
        except SdpError as exc:
            self._fail_sip(f"the SIP side's SDP does not parse: {exc}")
            return None
        self._parsed_answer = (sip_sdp, parsed)
        return parsed

    #: the SIP SDP the media start parsed and its parse, until :meth:`_sip_answer` takes it
    _parsed_answer: tuple[bytes, SessionDescription] | None = None

    def _sip_answer(self, sdp: bytes | None) -> SessionDescription | None:
        """The hold's reading of the 2xx's answer: the parse the media start made of these
        very bytes (the same object, so the same text) when there is one — a parse of an
        answer costs about as much as the status it delays — else parsed here."""
        kept, self._parsed_answer = self._parsed_answer, None
        if kept is not None and sdp is kept[0]:
            return kept[1]
        return parsed_sdp(sdp)

    #: the browser's last hold asked ``holdForTransfer`` (WCS): cleared by every hold/unhold
    _for_transfer: bool = False

    @property
    def hold_for_transfer(self) -> bool:
        """The call object's ``holdForTransfer`` (docs/contract.md), one field for the two ways
        a call waits on a transfer: it follows a far end's REFER, or the browser held it with
        ``holdForTransfer`` and that hold holds (our re-INVITE answered, no unhold since)."""
        return self.transferee.following or (self._for_transfer and self.holds.local)

    @property
    def transferring(self) -> bool:
        """A transfer of the browser's (our REFER) is running."""
        return self.transferor.active is not None

    def hold(self, for_transfer: bool = False) -> None:
        """Local hold: re-INVITE with a=sendonly; HOLD once the SIP side agreed.  While held,
        the browser's audio is not forwarded (the far end hears silence, not us).
        ``for_transfer``: WCS's ``holdForTransfer``, shown in the call object (only a flag:
        the hold itself is the same)."""
        self._require(CallStatus.ESTABLISHED, CallStatus.HOLD)
        self.holds.ask(True)
        self._for_transfer = for_transfer

    def unhold(self) -> None:
        self._require(CallStatus.HOLD, CallStatus.ESTABLISHED)
        self.holds.ask(False)
        self._for_transfer = False

    def send_dtmf(self, digits: str, method: str = "RFC2833") -> None:
        """Digits toward the SIP side: RFC 4733 events in the RTP stream, or SIP INFO
        (application/dtmf-relay), one request per digit, in order."""
        self._require(CallStatus.ESTABLISHED, CallStatus.HOLD)
        if method.upper() == "INFO":
            self.info_queue.send_digits(digits)
            return
        assert self.media is not None
        try:
            self.media.send_dtmf(digits)
        except ValueError as exc:
            raise CallError(Codes.BAD_STATE, f"RFC 2833 DTMF is not possible on this call: {exc}",
                            "type") from None

    def transfer(self, target_uri: str, replaces_call: "Call | None" = None) -> None:
        """Blind transfer (REFER to ``target_uri``), or attended when ``replaces_call`` is the
        session's other call: the far end is asked to replace that call's dialog, joining the
        two far ends.  Progress comes as transferStatus notifications; on success this call
        ends (FINISH), on failure it goes on (wcsgw.calls.transferor)."""
        self._require(CallStatus.ESTABLISHED, CallStatus.HOLD)
        assert self.sip is not None
        if self.transferring or self.transferee.following or self.sip.refer_in_progress:
            raise CallError(Codes.BAD_STATE, "a transfer of this call is already in progress")
        self.transferor.start(self.invite, target_uri, self.env.reactor.seconds(),
                              replaces_call)

    def answer(self, browser_sdp: str) -> None:
        """The browser answers the gateway's offer: only a call whose browser leg was offered
        (wcsgw.calls.offered) has one; here :class:`CallError` (field ``callId``)."""
        raise CallError(Codes.BAD_STATE, "only an incoming call can be answered", "callId")

    def restart_ice(self, sdp: str) -> str:
        """The browser's ICE restart (its network changed): its new offer answered by the
        browser leg, which switches to new ICE credentials and keeps DTLS and SRTP; our answer
        is returned.  Nothing goes to the SIP side — its leg did not change.  A call whose
        near leg is not a browser (a file call) or that is over: :class:`CallError` naming
        ``callId``; an offer that changes more than ICE: naming ``sdp`` (wcsgw.webrtc.restart)."""
        restart = getattr(self.near, "restart_ice", None)
        if self._finished or restart is None:
            raise CallError(Codes.BAD_STATE, f"the call is {self.status.value}", "callId")
        answer: str = restart(sdp)
        log.info("call {call_id}: ICE restart", call_id=self.call_id)
        return answer

    def answer_transfer(self, accept: bool) -> None:
        """The browser's ``answerTransfer`` of a far end's REFER it was asked about
        (wcsgw.calls.transferee).  :class:`CallError` (field ``callId``) when none is
        pending."""
        self.transferee.answer(accept)

    def _require(self, *states: CallStatus) -> None:
        if self._finished or self.status not in states or self.sip is None:
            raise CallError(Codes.BAD_STATE, f"the call is {self.status.value}", "callId")

    def _send_info(self, content_type: str, body: bytes) -> None:
        """The INFO queue's way out: an INFO in the call's current dialog."""
        if self.sip is None or self._finished:
            raise RuntimeError("the call has no dialog")
        self.sip.send_info(content_type, body, self.env.reactor.seconds())

    def _fast_update_answered(self, status: int | None) -> None:
        if self.video is not None:
            self.video.fast_update_answered(status)

    def _send_fast_update(self) -> bool:
        """The video path asks the SIP side for a key frame by INFO: ahead of queued DTMF.
        False when the dialog is not up (early media, ended)."""
        if (self._finished or self.sip is None
                or self.status not in (CallStatus.ESTABLISHED, CallStatus.HOLD)):
            return False
        return self.info_queue.fast_update()

    def _reoffer_confirmed(self, event: cc.ReofferConfirmed) -> None:
        """The ACK answering the offer of our 2xx to an offerless re-INVITE."""
        if event.sdp and self.status in (CallStatus.ESTABLISHED, CallStatus.HOLD):
            sd = parsed_sdp(event.sdp)
            if sd is not None:
                self._retarget(event.sdp, parsed=sd)
                self.holds.take_direction(sd)

    def _reoffer_answered(self, event: cc.ReofferAnswered) -> None:
        self._retarget(event.sdp)
        self.holds.answered()

    def _reoffer_failed(self, event: cc.ReofferFailed) -> None:
        self.holds.refused()
        # The call stays as it was (RFC 3261 §14.1); say why the change did not happen.
        self._set_status(self.status, f"re-INVITE failed: {event.reason}")

    def _reoffered(self, event: cc.Reoffer) -> None:
        """The SIP side re-offers (hold, unhold, new address or port): answer keeping our
        codec and our own hold (:meth:`SipSdp.answer_reoffer`), re-target the media; 488
        when our codec is gone (the call stays as it was)."""
        now = self.env.reactor.seconds()
        assert self.sip is not None
        if event.sdp is None:  # late offer in a re-INVITE: we offer what we use
            self.sip.answer_reinvite(self.sip_sdp.reoffer(self.holds.direction), now)
            return
        offer = parsed_sdp(event.sdp)
        answered = self.sip_sdp.answer_reoffer(offer, self.holds.direction)
        if answered is None or offer is None:
            self.sip.reject_reinvite(488, now)
            return
        answer, codec, dtmf = answered
        self._use_sip_codec(codec, dtmf)
        self.sip.answer_reinvite(answer, now)
        self._retarget(event.sdp, parsed=offer)
        self.holds.reoffered(offer)

    def _use_sip_codec(self, codec: Codec, dtmf: Codec | None) -> None:
        """The SIP side's numbers for our codec and its telephone-event, from now on."""
        assert self.plan is not None and codec.payload_type is not None  # from an m-line
        if self.media is not None:
            self.media.set_sip_payload_types(codec.payload_type,
                                             dtmf.payload_type if dtmf else None)
        self.plan.sip_codec, self.plan.sip_dtmf = codec, dtmf

    def _info_done(self, event: cc.InfoDone) -> None:
        self.info_queue.answered(event.status)

    def _key_frame_requested(self, event: cc.KeyFrameRequest) -> None:
        if self.video is not None:  # RFC 5168 key-frame request (or error report)
            self.video.info_from_sip(event.body, self.env.reactor.seconds())

    def _dtmf_received(self, event: cc.Dtmf) -> None:
        self.notify("dtmf", {"callId": self.call_id, "dtmf": event.digits, "type": "INFO"})

    def _transfer_requested(self, event: cc.TransferRequest) -> None:
        self.transferee.refer_received(event.refer)

    def place_transfer_invite(self, target: str, extra_headers: list[tuple[str, str]],
                              listener: Callable[[Any], None]) -> OutgoingInvite:
        """The INVITE a far end's REFER makes us send (not started): the call's media as it
        is — only the codec in use (the near leg and a transcoder cannot change mid-call),
        from the same socket — in a new SDP session."""
        offer = self.sip_sdp.invite_offer(self.sip_sdp.in_use())
        return self.env.make_invite(
            self.env.sip.endpoint, self.account, target, offer,
            listener=listener, extra_headers=extra_headers,
            no_answer_timeout=self.env.no_answer_timeout)

    def take_over_dialog(self, new: OutgoingInvite, event: Answered) -> None:
        """The target of a far end's REFER answered: its dialog becomes the call's SIP leg
        (the transferee watches the old one until the transferor ends it); its media latches
        to its answerer, maybe with a new payload type and address."""
        self._take_sip(OutgoingSipLeg(new, source=getattr(event, "source", None)))
        self.request_uri = new.request_uri
        parsed = parsed_sdp(event.sdp)
        audio = parsed.first_audio() if parsed is not None else None
        if parsed is not None and audio is not None and self.plan is not None:
            taken = taken_in_answer(audio)
            if taken is not None and self.bridge is not None:
                self._use_sip_codec(*taken)
            self._retarget(event.sdp, parsed=parsed)
        self.holds.new_dialog(parsed, info="Transferred")

    def _transfer_accepted(self, event: cc.TransferAccepted) -> None:
        self.transferor.accepted(event.sip)

    def _transfer_failed(self, event: cc.TransferFailed) -> None:
        self.transferor.failed(event.sip)

    def _transfer_progress(self, event: cc.TransferProgress) -> None:
        self.transferor.progress(event.sip)

    def _transferred(self, transfer: Transfer) -> None:
        """Our transfer completed: our part is done (the far end BYEs us, or we BYE it now).
        Attended: the target should have replaced the other call's dialog and BYE'd it; a
        target that ignores Replaces would leave it up, so end it too."""
        self.hangup()
        if transfer.replaces_call is not None:
            transfer.replaces_call.hangup()

    def _transfer_status(self, status: str, sip_status: int | None) -> None:
        self.notify("transferStatus", {"callId": self.call_id, "status": status,
                                       "sipStatus": sip_status})

    def _finish(self, status: CallStatus, sip_status: int | None, info: str) -> None:
        if not self.finished:
            self.info_queue.close()
            self.transferee.close()  # the SIP session answers a pending REFER 487 as it ends
        super()._finish(status, sip_status, info)
