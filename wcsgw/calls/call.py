"""One outbound call: the browser's WebRTC leg, the SIP INVITE leg and the media between them.

The call is the B2BUA's unit.  It owns its two media sockets (ICE-lite/DTLS-SRTP toward the
browser, plain RTP toward the SIP side), the :class:`OutgoingInvite`, and a
:class:`MediaBridge` that relays packets untouched when both sides use the same codec and
transcodes when they cannot; video, when both sides have it, is relayed by a
:class:`~wcsgw.calls.video.VideoPath`.  The codec plan (:mod:`wcsgw.calls.plan`) is fixed
before the INVITE goes out: the SIP offer lists the codecs that can be relayed first and those
that would need transcoding after them, so transcoding happens only when the SIP side takes
none of the browser's codecs.

The browser gets its SDP answer once the SIP side has answered with SDP (183 early media or the
2xx): only then is the codec known.  Every way a call can end — either side hangs up, the SIP
side refuses, ICE or DTLS fail, RTP stops, the browser's session vanishes — goes through
:meth:`Call._finish`, which reports the terminal status once and releases every resource.
"""

from __future__ import annotations

import secrets
import time
from typing import Any, Callable, ClassVar, Mapping

from twisted.logger import Logger

from wcsgw.calls import events as cc
from wcsgw.calls.environment import CallEnvironment
from wcsgw.calls.errors import CallError, Codes
from wcsgw.calls.plan import (
    CodecPlan,
    CodecRefusal,
    plan_codecs,
    settle_outbound,
)
from wcsgw.calls.sipleg import OutgoingSipLeg, SipLeg, to_control
from wcsgw.calls.sipsdp import SipSdp
from wcsgw.calls.status import CallStatus, Info, status_for_failure, status_for_provisional
from wcsgw.calls.transferor import Transfer
from wcsgw.calls.video import VideoPath
from wcsgw.media.bridge import BridgeSettings, LegMedia, MediaBridge
from wcsgw.media.session import MediaSession
from wcsgw.media.udp import RtpSocket
from wcsgw.sdp.codecs import Codec, is_auxiliary, same_codec
from wcsgw.sdp.errors import SdpError
from wcsgw.sdp.model import MediaDescription, SessionDescription
from wcsgw.sdp.negotiate import answer_direction
from wcsgw.sdp.parser import parse_sdp, serialize_sdp
from wcsgw.sip.account import SipAccount
from wcsgw.sip.invite import Answered, OutgoingInvite
from wcsgw.webrtc.leg import WebRtcLeg
from wcsgw.webrtc.sdp import answer_for_browser

log = Logger(namespace="wcsgw.calls")

#: How often the media session sends RTCP reports (it is asked every MEDIA_TICK).
RTCP_INTERVAL = 5.0


def _parsed(sdp: bytes | None) -> SessionDescription | None:
    """``sdp`` parsed; None when there is none or it does not parse."""
    if not sdp:
        return None
    try:
        return parse_sdp(sdp)
    except SdpError:
        return None


class Call:
    """One call from a browser to a SIP destination."""

    def __init__(
        self,
        *,
        env: CallEnvironment,
        call_id: str,
        session_id: str,
        account: SipAccount | None,
        request_uri: str,
        callee: str,
        visible_name: str | None,
        has_audio: bool,
        has_video: bool,
        browser_offer: str,
        sip_headers: dict[str, str],
        on_status: Callable[[dict[str, Any]], None],
        on_gone: Callable[["Call"], None],
        on_settled: Callable[["Call"], None] = lambda call: None,
        notify: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> None:
        """``on_gone``: the call reached its terminal status (it leaves the registry);
        ``on_settled``: later or at the same time, its SIP leg is over too (the BYE or
        CANCEL was answered or timed out), so nothing of it is left."""
        self.env = env
        self.call_id = call_id
        self.session_id = session_id
        if account is None and env.testlines_account is not None:
            account = env.testlines_account()
        self.account = account
        self.request_uri = request_uri
        self.callee = callee
        self.visible_name = visible_name
        self.has_audio = has_audio
        self.has_video = has_video
        self.browser_offer_text = browser_offer
        self.sip_headers = dict(sip_headers)
        self.on_status = on_status
        self.on_gone = on_gone
        self.on_settled = on_settled
        #: the far end's REFERs: a session without an account of its own (the test lines)
        #: is held to the same "test lines only" rule as for its own callees; a browser
        #: session hears this call's notifications (REST file calls have none), so a REFER
        #: can be put to it
        self.transferee = env.make_transferee(
            self, env, account=None if account is None else self.account,
            can_ask=notify is not None)
        #: the browser's own transfers (our REFERs)
        self.transferor = env.make_transferor(status=self._transfer_status,
                                              completed=self._transferred)

        self.status = CallStatus.NEW
        self.sip_status: int | None = None
        self.info = ""
        self.start_time = time.time()
        self.answer_time: float | None = None
        self.plan: CodecPlan | None = None
        self.browser_answer: str | None = None
        #: the SIP side (wcsgw.calls.sipleg), once there is one
        self.sip: SipLeg | None = None
        self.leg: WebRtcLeg | None = None
        self.rtp: RtpSocket | None = None
        self.bridge: MediaBridge | None = None
        self._offer: SessionDescription | None = None
        #: the call's video (wcsgw.calls.video), None when the first offer had none
        self.video: VideoPath | None = None
        #: RTP supervision and RTCP, from the INVITE on (wcsgw.calls.supervision)
        self.supervision = env.make_supervision(env.reactor, env.rtp_timeout,
                                                status=lambda: self.status,
                                                on_silence=lambda: self._fail_sip(Info.RTP))
        #: the call's media sockets and what connects them (wcsgw.media.session), once open
        self.media: MediaSession | None = None
        self._finished = False
        #: our SDP session toward the SIP side, and where the SIP side's media is
        self.sip_sdp = SipSdp(env.media_advertised)
        #: hold as we asked for it (re-INVITE sendonly) and as the SIP side asked for it
        self.holds = env.make_hold(reoffer=self._send_reoffer, apply=self._apply_hold)
        #: the SDP of the last 1xx that had one: the answer, when the 2xx brings none
        self._early_sdp: bytes | None = None
        self._dtmf_call: Any = None
        #: INFO to send, one at a time: DTMF digits and video key-frame requests (RFC 5168)
        self.info_queue = env.make_info_queue(self._send_info, self._fast_update_answered)
        #: the session's notifications other than callStatus (dtmf, transferStatus)
        self.notify: Callable[[str, dict[str, Any]], None] = notify or (lambda method, params: None)

    # -- the public face ----------------------------------------------------------------

    @property
    def caller(self) -> str:
        return self.account.login if self.account is not None else ""

    @property
    def incoming(self) -> bool:
        return False

    @property
    def invite(self) -> Any:
        """The SIP leg's session, for what speaks SIP to the dialog itself (the transferor's
        REFER, the transferee's answers to one); None before the call has a SIP leg."""
        return self.sip.session if self.sip is not None else None

    @property
    def local_hold(self) -> bool:
        return self.holds.local

    @property
    def remote_hold(self) -> bool:
        return self.holds.remote

    @property
    def finished(self) -> bool:
        """The call reached its terminal status (or its start was undone)."""
        return self._finished

    @property
    def hold_for_transfer(self) -> bool:
        """The call waits on the target of a far end's REFER it follows."""
        return self.transferee.following

    @property
    def transferring(self) -> bool:
        """A transfer of the browser's (our REFER) is running."""
        return self.transferor.active is not None

    def describe(self, with_sdp: bool = False) -> dict[str, Any]:
        """The call object of docs/contract.md (notifications, REST)."""
        out: dict[str, Any] = {
            "callId": self.call_id,
            "sessionId": self.session_id,
            "status": self.status.value,
            "sipStatus": self.sip_status,
            "info": self.info,
            "incoming": self.incoming,
            "caller": self.caller,
            "callee": self.callee,
            "visibleName": self.visible_name,
            "hasAudio": self.has_audio,
            "hasVideo": self.has_video,
            "holdForTransfer": self.hold_for_transfer,
            "startTime": int(self.start_time * 1000),
            "answerTime": int(self.answer_time * 1000) if self.answer_time else None,
            "media": {
                "webrtcCodec": self.plan.browser_codec.rtpmap if self.plan and self.plan.browser_codec else None,
                "sipCodec": self.plan.sip_codec.rtpmap if self.plan and self.plan.sip_codec else None,
                "mode": self.plan.mode if self.plan else None,
                "video": self.video.describe() if self.video is not None else None,
            },
        }
        if with_sdp and self.browser_answer is not None:
            out["sdp"] = self.browser_answer
        return out

    def start(self) -> None:
        """Check the offer, open the media sockets and send the INVITE.  A bad offer raises
        :class:`CallError` (the request that started the call gets the error)."""
        try:
            self._offer = parse_sdp(self.browser_offer_text)
        except SdpError as exc:
            raise CallError(Codes.INVALID, f"the SDP offer does not parse: {exc}", "sdp") from None
        audio = self._offer.first_audio()
        if audio is None:
            raise CallError(Codes.NO_CODECS, f"{Info.NO_CODECS}: the offer has no audio", "sdp")
        if self._offer.ice_ufrag_for(audio) is None or self._offer.fingerprint_for(audio) is None:
            raise CallError(Codes.INVALID, "the offer lacks ICE credentials or a DTLS fingerprint",
                            "sdp")
        self.plan = plan_codecs(audio.codecs(), self.env.codecs)
        log.info("call {call_id}: SIP offer {offer}", call_id=self.call_id,
                 offer=", ".join(c.rtpmap for c in self.plan.sip_offer))
        if self.account is None:
            raise CallError(Codes.FORBIDDEN, Info.FORBIDDEN, "callee")
        env = self.env
        self._open_browser_media()
        if self.has_video:
            self.video = VideoPath.outbound(env, self.call_id, self._offer, {
                c.payload_type for c in self.plan.sip_offer if c.payload_type is not None})
            self.has_video = self.video is not None
        self._place_invite()

    def _open_browser_media(self) -> WebRtcLeg:
        """The sockets of a call between a browser and the SIP side: the SIP side's RTP pair
        and the browser's WebRTC leg (both from the environment), held by a MediaSession.
        Returns the leg (also ``self.leg``)."""
        env = self.env
        self.rtp = env.make_rtp_socket(env.reactor, env.allocator, env.media_host)
        leg = self.leg = env.make_browser_leg(env.reactor, env.media_host, env.media_advertised,
                                              env.allocator, certificate=env.certificate)
        leg.on_state = self._on_leg_state
        self._open_media_session()
        return leg

    def _open_media_session(self) -> None:
        """From here on the call's sockets (``leg``, the browser's or a file, and ``rtp``) are
        held by its MediaSession: it connects them to the bridge, reports, closes them."""
        assert self.leg is not None and self.rtp is not None
        self.media = MediaSession(self.leg, self.rtp, rtcp_interval=RTCP_INTERVAL)

    def _place_invite(self) -> None:
        """The SIP leg: an INVITE offering ``plan.sip_offer`` from our RTP socket; PENDING."""
        env = self.env
        assert self.plan is not None and self.rtp is not None and self.account is not None
        offer = self.sip_sdp.first_offer(self.rtp.port, self.plan.sip_offer, self.video)
        self.sip = OutgoingSipLeg(env.make_invite(
            env.sip.endpoint, self.account, self.request_uri, offer,
            listener=self._on_sip_event, display_name=self.visible_name,
            extra_headers=list(self.sip_headers.items()),
            no_answer_timeout=env.no_answer_timeout,
        ))
        self._set_status(CallStatus.PENDING)
        self.sip.start(env.reactor.seconds())

    def hangup(self) -> None:
        """The browser hangs up (or its session went away)."""
        if self._finished:
            return
        if self.sip is not None:
            self.sip.hangup(self.env.reactor.seconds())
        self._finish(CallStatus.FINISH, self.sip_status, Info.NORMAL)

    def abandon(self) -> None:
        """Undo a :meth:`start` that raised (the gateway calls it, then forgets the call):
        close the media sockets it opened — their ports go back — and stop its timers,
        quietly: no status goes out, the request that started the call gets the error."""
        if self._finished:
            return
        self._finished = True
        if self.sip is not None:
            self.sip.withdraw(self.env.reactor.seconds())
        self.supervision.stop()
        for part in (self.video, self.leg, self.rtp):
            if part is not None:
                part.close()

    # -- in-call functions (JSON-RPC and REST) -------------------------------------------

    def hold(self) -> None:
        """Local hold: re-INVITE with a=sendonly; HOLD once the SIP side agreed.  While held,
        the browser's audio is not forwarded (the far end hears silence, not us)."""
        self._require(CallStatus.ESTABLISHED, CallStatus.HOLD)
        self.holds.ask(True)

    def unhold(self) -> None:
        self._require(CallStatus.HOLD, CallStatus.ESTABLISHED)
        self.holds.ask(False)

    def send_dtmf(self, digits: str, method: str = "RFC2833") -> None:
        """Digits toward the SIP side: RFC 4733 events in the RTP stream, or SIP INFO
        (application/dtmf-relay), one request per digit, in order."""
        self._require(CallStatus.ESTABLISHED, CallStatus.HOLD)
        if method.upper() == "INFO":
            self.info_queue.send_digits(digits)
            return
        assert self.bridge is not None
        try:
            self.bridge.send_dtmf_to_sip(digits, self.env.reactor.seconds())
        except ValueError as exc:
            raise CallError(Codes.BAD_STATE, f"RFC 2833 DTMF is not possible on this call: {exc}",
                            "type") from None
        self._arm_dtmf()

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

    def answer_transfer(self, accept: bool) -> None:
        """The browser's ``answerTransfer`` of a far end's REFER it was asked about
        (wcsgw.calls.transferee).  :class:`CallError` (field ``callId``) when none is
        pending."""
        self.transferee.answer(accept)

    def _require(self, *states: CallStatus) -> None:
        if self._finished or self.status not in states or self.sip is None:
            raise CallError(Codes.BAD_STATE, f"the call is {self.status.value}", "callId")

    def _send_reoffer(self, direction: str) -> None:
        """The hold's way out: our re-INVITE with ``direction``."""
        assert self.sip is not None
        if self.sip.reinvite_in_progress:
            raise CallError(Codes.BAD_STATE, "a re-INVITE is already in progress; try again")
        assert self.plan is not None and self.rtp is not None
        try:
            self.sip.reinvite(self._sip_sdp(direction), self.env.reactor.seconds())
        except RuntimeError as exc:  # e.g. our 2xx not yet ACKed
            raise CallError(Codes.BAD_STATE, f"cannot re-INVITE now: {exc}") from None

    def _sip_sdp(self, direction: str, codecs: list[Codec] | None = None,
                 offer: SessionDescription | None = None,
                 video_answer: MediaDescription | None = None) -> bytes:
        """Our SDP toward the SIP side (a re-offer or an answer): the codecs in use, a new
        version of the same session (RFC 3264 §8); the video m-line after the audio (answering
        ``offer``: ``video_answer`` in its video slot, other extra m-lines rejected)."""
        assert self.plan is not None and self.rtp is not None
        if codecs is None:
            codecs = [c for c in (self.plan.sip_codec, self.plan.sip_dtmf) if c is not None]
        return self.sip_sdp.next_version(self.rtp.port, codecs, direction, self.video, offer,
                                         video_answer)

    def _apply_hold(self, local: bool, remote: bool, info: str) -> None:
        """Apply the two holds to the media and the status (HOLD while either holds)."""
        # Nothing of the browser goes to the far end while we hold it (it hears silence, not
        # us), nor while it holds us: it offered sendonly/inactive (or c=0.0.0.0), and RFC
        # 3264 §6.1 forbids sending then — DTMF events included, they are media too.
        quiet = held = local or remote
        if self.bridge is not None:
            self.bridge.paused_to_sip = quiet
            self.bridge.dtmf_paused_to_sip = remote
        if self.video is not None:
            self.video.set_hold(quiet, held)
        self._set_status(CallStatus.HOLD if held else CallStatus.ESTABLISHED, info)

    def _take_sip_direction(self, sd: SessionDescription | None, info: str = "") -> None:
        """The SIP side's SDP of a call that is up says whether it holds us
        (:meth:`Hold.take_direction`)."""
        self.holds.take_direction(sd, info)

    def _arm_dtmf(self) -> None:
        """Drive the bridge's timers — the RFC 4733 cadence, a transcoder's wait behind a gap
        (one timer, re-armed at its next deadline)."""
        if self._dtmf_call is not None and self._dtmf_call.active():
            self._dtmf_call.cancel()
        self._dtmf_call = None
        bridge = self.bridge
        if bridge is None or self._finished:
            return
        deadline = bridge.next_deadline()
        if deadline is None:
            return
        delay = max(0.0, deadline - self.env.reactor.seconds())
        self._dtmf_call = self.env.reactor.callLater(delay, self._dtmf_tick)

    def _dtmf_tick(self) -> None:
        self._dtmf_call = None
        if self.bridge is not None:
            self.bridge.poll(self.env.reactor.seconds())
            self._arm_dtmf()

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

    # -- SIP side -----------------------------------------------------------------------

    #: What the legs' call-control events do (wcsgw.calls.events): one handler per event
    #: type.  A subclass whose SIP leg says more (an incoming call's Confirm) extends the
    #: table; an event without an entry is nothing to the call.
    CONTROL_HANDLERS: ClassVar[Mapping[type, str]] = {
        cc.Ring: "_ring",
        cc.EarlyMedia: "_early_media",
        cc.Connect: "_connected",
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
        cc.Fail: "_failed",
        cc.Disconnect: "_disconnected",
        cc.MediaFailed: "_media_failed",
    }
    #: What the browser leg's states (wcsgw.webrtc.leg, ``on_state``) mean to the call; the
    #: others are nothing to it.
    BROWSER_STATES: ClassVar[Mapping[str, Any]] = {
        "failed:ice": cc.MediaFailed(Info.ICE),
        "failed:dtls": cc.MediaFailed(Info.DTLS),
    }
    #: The events after which the SIP leg is over (its BYE or CANCEL settled, or it never
    #: came up): the gateway hears ``on_settled`` then, even when the call had finished.
    SETTLING: ClassVar[frozenset[type]] = frozenset({cc.Fail, cc.Disconnect})

    def _on_sip_event(self, event: Any) -> None:
        """The SIP leg's listener: its event in the call's words (:func:`to_control`); settle,
        then hand it to its handler while the call lasts (remembering where an SDP-carrying
        message came from first)."""
        control = to_control(event)
        if type(control) in self.SETTLING:
            self.env.reactor.callLater(0, self.on_settled, self)
        if self._finished:
            return
        self.sip_sdp.note_source(event)
        name = self.CONTROL_HANDLERS.get(type(control))
        if name is not None:
            getattr(self, name)(control)

    def _ring(self, event: cc.Ring) -> None:
        self.sip_status = event.status
        self._set_status(status_for_provisional(event.status, False))

    def _early_media(self, event: cc.EarlyMedia) -> None:
        self.sip_status = event.status
        if event.sdp:
            self._early_sdp = event.sdp
        if event.sdp and self.bridge is None:
            self._connect_media(event.sdp)
        self._set_status(status_for_provisional(event.status, True))

    def _connected(self, event: cc.Connect) -> None:
        self.sip_status = 200
        if self.bridge is None:
            self._connect_media(event.sdp)
        elif self.plan is not None:
            self._retarget(event.sdp)
        if self._finished:
            return
        self.answer_time = time.time()
        # ESTABLISHED, or HOLD when the answer holds us (sendonly/inactive/c=0.0.0.0);
        # a 2xx without SDP leaves the 1xx's answer in force (RFC 3261 §13.2.1).
        self._take_sip_direction(_parsed(event.sdp or self._early_sdp))

    def _reoffer_confirmed(self, event: cc.ReofferConfirmed) -> None:
        """The ACK answering the offer of our 2xx to an offerless re-INVITE."""
        if event.sdp and self.status in (CallStatus.ESTABLISHED, CallStatus.HOLD):
            sd = _parsed(event.sdp)
            if sd is not None:
                self._retarget(event.sdp, parsed=sd)
                self._take_sip_direction(sd)

    def _reoffer_answered(self, event: cc.ReofferAnswered) -> None:
        self._retarget(event.sdp)
        self.holds.answered()

    def _reoffer_failed(self, event: cc.ReofferFailed) -> None:
        self.holds.refused()
        # The call stays as it was (RFC 3261 §14.1); say why the change did not happen.
        self._set_status(self.status, f"re-INVITE failed: {event.reason}")

    def _reoffered(self, event: cc.Reoffer) -> None:
        self._answer_reinvite(event.sdp)

    def _info_done(self, event: cc.InfoDone) -> None:
        self.info_queue.answered(event.status)

    def _key_frame_requested(self, event: cc.KeyFrameRequest) -> None:
        if self.video is not None:  # RFC 5168 key-frame request (or error report)
            self.video.info_from_sip(event.body, self.env.reactor.seconds())

    def _dtmf_received(self, event: cc.Dtmf) -> None:
        self.notify("dtmf", {"callId": self.call_id, "dtmf": event.digits, "type": "INFO"})

    def _failed(self, event: cc.Fail) -> None:
        self._finish(status_for_failure(event.status), event.status, event.reason)

    def _disconnected(self, event: cc.Disconnect) -> None:
        self._finish(CallStatus.FINISH,
                     self.sip_status if event.status is None else event.status, event.reason)

    def _connect_media(self, sip_sdp: bytes) -> None:
        """The SIP side has chosen: answer the browser and start moving packets."""
        assert self.plan is not None and self._offer is not None
        assert self.leg is not None and self.rtp is not None
        answer = self._parse_sip_answer(sip_sdp)
        if answer is None:
            return
        audio = answer.first_audio()
        if audio is None:
            self._fail_sip(Info.NO_CODECS)
            return
        plan = self.plan
        browser_audio = self._offer.first_audio()
        assert browser_audio is not None
        try:
            settle_outbound(plan, browser_audio.codecs(), audio.codecs(), self.env.codecs,
                            sip_ptime=audio.ptime, browser_ptime=browser_audio.ptime)
        except CodecRefusal as exc:
            log.info("call {call_id}: {reason}", call_id=self.call_id, reason=exc.message)
            self._fail_sip(exc.info)
            return
        assert plan.browser_codec is not None
        self._retarget(sip_sdp, parsed=answer)

        offer_audio = self._offer.first_audio()
        assert offer_audio is not None
        ufrag = self._offer.ice_ufrag_for(offer_audio)
        fingerprint = self._offer.fingerprint_for(offer_audio)
        assert ufrag is not None and fingerprint is not None  # start() refused offers without
        # an a=ice-pwd-less offer passes None: a lite agent never reads the browser's password
        pwd: str = self._offer.ice_pwd_for(offer_audio)  # type: ignore[assignment]
        self.leg.set_remote(ufrag, pwd, fingerprint)
        ssrc = secrets.randbits(32)
        browser_side = [plan.browser_codec] + ([plan.browser_dtmf] if plan.browser_dtmf else [])
        video_spec = self.video.settle_sip_answer(answer) if self.video is not None else None
        if self.video is not None and video_spec is None:
            self.video.reject()  # the SIP side has no video for us: audio-only
            self.has_video = False
        self.browser_answer = serialize_sdp(answer_for_browser(
            self._offer, self.leg, browser_side, ssrc=ssrc, cname=f"wcsgw-{self.call_id}",
            video=video_spec))
        self._start_media(ssrc)

    def _start_media(self, webrtc_ssrc: int) -> None:
        """Both legs are negotiated (``plan`` complete, the leg knows the browser's ICE and
        DTLS parameters): build the bridge, connect the sockets to it, start the leg."""
        plan, leg, rtp = self.plan, self.leg, self.rtp
        assert plan is not None and leg is not None and rtp is not None
        assert plan.browser_codec is not None and plan.sip_codec is not None
        bridge = self.bridge = MediaBridge(
            LegMedia.negotiated(plan.browser_codec, plan.browser_dtmf, webrtc_ssrc,
                                plan.browser_ptime),
            LegMedia.negotiated(plan.sip_codec, plan.sip_dtmf, None, plan.sip_ptime),
            leg.send_rtp, rtp.send_rtp,
            settings=BridgeSettings(mode=plan.mode, wall_offset=self.env.clock.wall_offset()),
        )
        # transcoding: packets behind a gap wait for the missing one; the DTMF timer serves
        # that deadline too
        bridge.on_deadline = lambda deadline: self._arm_dtmf()
        media = self.media
        assert media is not None
        self.supervision.watch(bridge, media)
        now = self.env.clock.now()
        # The sockets read the clock once per datagram and hand it on with the packet: the
        # bridge takes them as they come, no clock read and no closure in between.
        media.connect(bridge, now)
        bridge.on_dtmf_from_sip = lambda digit: self.notify(
            "dtmf", {"callId": self.call_id, "dtmf": digit, "type": "RFC2833"})
        if self.video is not None and self.video.ready:
            self.video.send_fast_update = self._send_fast_update  # INFO, for phones without RTCP fb
            media.connect_video(self.video.start(leg, now), self.video.rtp)
        leg.start()
        log.info("call {call_id}: media {mode} {webrtc} <-> {sip}", call_id=self.call_id,
                 mode=plan.mode, webrtc=plan.browser_codec.rtpmap, sip=plan.sip_codec.rtpmap)

    def _retarget(self, sip_sdp: bytes, parsed: SessionDescription | None = None) -> None:
        """Point the SIP-side sockets at what the SIP SDP names (:meth:`SipSdp.retarget`)."""
        assert self.rtp is not None
        self.sip_sdp.retarget(self.rtp, self.video, sip_sdp, parsed)

    def _answer_reinvite(self, sdp: bytes | None) -> None:
        """The SIP side re-offers (hold, unhold, new address or port): keep our codec if it is
        still offered (the browser side cannot change codec mid-call), answer the direction,
        re-target the media."""
        now = self.env.reactor.seconds()
        assert self.sip is not None and self.plan is not None
        wanted = self.holds.direction  # our own hold stays
        if sdp is None:  # late offer in a re-INVITE: we offer what we use
            self.sip.answer_reinvite(self._sip_sdp(wanted), now)
            return
        try:
            offer = parse_sdp(sdp)
        except SdpError:
            self.sip.reject_reinvite(488, now)
            return
        audio = offer.first_audio()
        current = self.plan.sip_codec
        offered = audio.codecs() if audio is not None else []
        same = next((c for c in offered if current is not None and same_codec(c, current)), None)
        if audio is None or same is None:
            self.sip.reject_reinvite(488, now)
            return
        dtmf = next((c for c in offered if c.key == "telephone-event"
                     and c.clock_rate == same.clock_rate), None)
        assert current is not None  # ``same`` matched it
        if same.payload_type != current.payload_type and self.bridge is not None:
            assert same.payload_type is not None  # parsed from an m-line's formats
            self.bridge.set_sip_payload_types(same.payload_type,
                                              dtmf.payload_type if dtmf else None)
        self.plan.sip_codec, self.plan.sip_dtmf = same, dtmf
        direction = offer.direction_for(audio)
        video_answer = (self.video.answer_reoffer(offer, wanted)[0]
                        if self.video is not None else None)
        answer = self._sip_sdp(answer_direction(direction, wanted),
                               [c for c in (same, dtmf) if c is not None], offer, video_answer)
        self.sip.answer_reinvite(answer, now)
        self._retarget(sdp, parsed=offer)
        self.holds.reoffered(offer)

    def _transfer_requested(self, event: cc.TransferRequest) -> None:
        self.transferee.refer_received(event.refer)

    def place_transfer_invite(self, target: str, extra_headers: list[tuple[str, str]],
                              listener: Callable[[Any], None]) -> OutgoingInvite:
        """The INVITE a far end's REFER makes us send (not started): the call's media as it
        is — only the codec in use (the browser side and a transcoder cannot change
        mid-call), from the same socket — in a new SDP session."""
        assert self.plan is not None and self.rtp is not None
        codecs = [c for c in (self.plan.sip_codec, self.plan.sip_dtmf) if c is not None]
        offer = self.sip_sdp.first_offer(self.rtp.port, codecs, self.video)
        return self.env.make_invite(
            self.env.sip.endpoint, self.account, target, offer,
            listener=listener, extra_headers=extra_headers,
            no_answer_timeout=self.env.no_answer_timeout)

    def take_over_dialog(self, new: OutgoingInvite, event: Answered) -> None:
        """The target of a far end's REFER answered: its dialog becomes the call's SIP leg
        (the transferee watches the old one until the transferor ends it)."""
        self.sip = OutgoingSipLeg(new)
        self.sip.listen(self._on_sip_event)
        self.request_uri = new.request_uri
        self.sip_sdp.note_source(event)  # the new dialog's media latches to its answerer
        self._adopt_answer(event.sdp)
        self.holds.new_dialog(_parsed(event.sdp), info="Transferred")

    def _adopt_answer(self, sdp: bytes) -> None:
        """A new SIP dialog answered (after a transfer): same media socket, maybe a new
        payload type and address."""
        try:
            parsed = parse_sdp(sdp)
        except SdpError:
            return
        audio = parsed.first_audio()
        if audio is None or self.plan is None:
            return
        chosen = [c for c in audio.codecs() if not is_auxiliary(c)]
        dtmf = next((c for c in audio.codecs() if c.key == "telephone-event"), None)
        if chosen and self.bridge is not None:
            assert chosen[0].payload_type is not None  # parsed from an m-line's formats
            self.bridge.set_sip_payload_types(chosen[0].payload_type,
                                              dtmf.payload_type if dtmf else None)
            self.plan.sip_codec, self.plan.sip_dtmf = chosen[0], dtmf
        self._retarget(sdp, parsed=parsed)

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

    def _parse_sip_answer(self, sip_sdp: bytes) -> SessionDescription | None:
        """The SIP side's answer parsed, or None after failing the call with why it does not
        parse (the call cannot go on with media it cannot read)."""
        try:
            return parse_sdp(sip_sdp)
        except SdpError as exc:
            self._fail_sip(f"the SIP side's SDP does not parse: {exc}")
            return None

    def _fail_sip(self, info: str) -> None:
        if self.sip is not None:
            self.sip.hangup(self.env.reactor.seconds())
        self._finish(CallStatus.FAILED, self.sip_status, info)

    # -- WebRTC side and media supervision ----------------------------------------------

    def _on_leg_state(self, state: str) -> None:
        """The browser leg's listener: its state in the call's words (:attr:`BROWSER_STATES`)."""
        control = self.BROWSER_STATES.get(state)
        if control is not None:
            getattr(self, self.CONTROL_HANDLERS[type(control)])(control)

    def _media_failed(self, event: cc.MediaFailed) -> None:
        self._fail_sip(event.reason)

    # -- status and the end -------------------------------------------------------------

    def _set_status(self, status: CallStatus, info: str | None = None) -> None:
        self.status = status
        if info is not None:
            self.info = info
        self.on_status(self.describe(with_sdp=self.browser_answer is not None))

    def _finish(self, status: CallStatus, sip_status: int | None, info: str) -> None:
        if self._finished:
            return
        self._finished = True
        self.sip_status = sip_status
        self.info = info
        self.supervision.stop()
        self.info_queue.close()
        if self._dtmf_call is not None and self._dtmf_call.active():
            self._dtmf_call.cancel()
        self._dtmf_call = None
        self.transferee.close()  # the SIP session answers a pending REFER 487 as it ends
        if self.media is not None:
            self.media.close()
        if self.video is not None:
            self.video.close()
        #: the media counters as the call ended, for the gateway's running totals (/metrics)
        self.final_media_stats = self.bridge.stats() if self.bridge is not None else None
        self.bridge = None
        self._set_status(status)
        self.on_gone(self)
        if self.sip is None or self.sip.terminated:
            self.env.reactor.callLater(0, self.on_settled, self)
        log.info("call {call_id}: {status} ({info})", call_id=self.call_id, status=status.value,
                 info=info)
