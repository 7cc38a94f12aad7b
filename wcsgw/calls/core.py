"""A call's life between its two legs: opened, set up, ended — what every kind of call shares.

The call is the B2BUA's unit.  It coordinates a near leg — the browser (wcsgw.calls.browserleg:
the page offered, or answers our offer) or a file (wcsgw.calls.filecall) — and a far leg, the
SIP side (wcsgw.calls.sipleg: UAC or UAS), which both tell it what happens in the call-control
events of wcsgw.calls.events (:meth:`CallCore._heard`: one handler per event type, from
:attr:`CallCore.CONTROL_HANDLERS`).  What moves packets is
:class:`~wcsgw.calls.callmedia.CallMedia` (a bridge that relays untouched when both sides use
the same codec and transcodes when they cannot); video, when both sides have it, is a
:class:`~wcsgw.calls.video.VideoPath`.

This module is the setup and the end: the legs and sockets opened, the SIP side's ring, early
media, answer or failure, the media started once both legs are negotiated, the statuses, and
:meth:`CallCore._finish` — every way a call can end (either side hangs up, the SIP side
refuses, ICE or DTLS fail, RTP stops, the browser's session vanishes) goes through it, which
reports the terminal status once and releases every resource.  What a call does once it is up
(hold, DTMF, re-offers, transfer) is :class:`~wcsgw.calls.call.Call`'s; how each kind starts
is its own (:mod:`wcsgw.calls.outbound`, :mod:`wcsgw.calls.offered`, :mod:`wcsgw.calls.filecall`).
"""

from __future__ import annotations

import abc
import time
from typing import Any, Callable, ClassVar, Mapping

from twisted.logger import Logger

from wcsgw.calls import events as cc
from wcsgw.calls.callmedia import CallMedia
from wcsgw.calls.callobject import call_object
from wcsgw.calls.environment import CallEnvironment
from wcsgw.calls.errors import CallError, Codes
from wcsgw.calls.leg import Leg
from wcsgw.calls.plan import CodecPlan
from wcsgw.calls.sipleg import OutgoingSipLeg, SipLeg
from wcsgw.calls.sipsdp import SipSdp
from wcsgw.calls.status import CallStatus, Info, status_for_failure, status_for_provisional
from wcsgw.calls.video import VideoPath
from wcsgw.media.bridge import MediaBridge
from wcsgw.media.udp import RtpSocket
from wcsgw.sdp.errors import SdpError
from wcsgw.sdp.model import SessionDescription
from wcsgw.sdp.parser import parse_sdp
from wcsgw.sip.account import SipAccount

log = Logger(namespace="wcsgw.calls")

__all__ = ["CallCore", "parsed_sdp"]


def parsed_sdp(sdp: bytes | None) -> SessionDescription | None:
    """``sdp`` parsed; None when there is none or it does not parse."""
    if not sdp:
        return None
    try:
        return parse_sdp(sdp)
    except SdpError:
        return None


def _no_listener(event: Any) -> None:
    """An INVITE's listener until its SIP leg takes it over."""


class CallCore(abc.ABC):
    """One call between a near leg (a browser, a file) and the SIP side, from its start to its
    end (see the module docstring); each kind says how it starts."""

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
        on_gone: Callable[["CallCore"], None],
        on_settled: Callable[["CallCore"], None] = lambda call: None,
        notify: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> None:
        """``on_gone``: the call reached its terminal status (it leaves the registry);
        ``on_settled``: later or at the same time, its SIP leg is over too (the BYE or
        CANCEL was answered or timed out), so nothing of it is left."""
        self.env = env
        self.call_id = call_id
        #: the RTCP CNAME of what we send the near leg
        self.cname = f"wcsgw-{call_id}"
        self.session_id = session_id
        #: the session's own account; None: a session without one, whose calls go out on
        #: the test lines' account (``account``) and are held to "test lines only"
        self.session_account = account
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
        #: the session's notifications other than callStatus (dtmf, transferStatus, ...)
        self.notify: Callable[[str, dict[str, Any]], None] = notify or (lambda method, params: None)
        self.status = CallStatus.NEW
        self.sip_status: int | None = None
        self.info = ""
        #: wall-clock times of the call record (wcsgw.calls.cdr): start, first ring, answer, end
        self.start_time = time.time()
        self.ring_time: float | None = None
        self.answer_time: float | None = None
        self.end_time: float | None = None
        #: who ended the call (docs/contract.md ``endedBy``): "browser", "sip" or "gateway";
        #: the gateway sets it before the hangups it makes, the end says "sip" otherwise
        self.ended_by: str | None = None
        self.plan: CodecPlan | None = None
        self.browser_answer: str | None = None
        #: the two legs: the near one (browser or file) and the SIP side, once there
        self.near: Any = None
        self.sip: SipLeg | None = None
        #: the near leg's media end (a WebRtcLeg, or a file's) and the SIP side's RTP pair
        self.leg: Any = None
        self.rtp: RtpSocket | None = None
        #: the call's media plane (wcsgw.calls.callmedia), once both sockets are open
        self.media: CallMedia | None = None
        #: the call's video (wcsgw.calls.video), None when the first offer had none
        self.video: VideoPath | None = None
        #: RTP supervision and RTCP, from the INVITE on (wcsgw.calls.supervision)
        self.supervision = env.make_supervision(env.reactor, env.rtp_timeout,
                                                status=lambda: self.status,
                                                on_silence=lambda: self._fail_sip(Info.RTP))
        self._finished = False
        #: our SDP session toward the SIP side, and where the SIP side's media is
        self.sip_sdp = SipSdp(env.sip_address, self)
        #: hold as we asked for it (re-INVITE sendonly) and as the SIP side asked for it
        self.holds = env.make_hold(reoffer=self._send_reoffer, apply=self._apply_hold)
        #: the SDP of the last 1xx that had one: the answer, when the 2xx brings none
        self._early_sdp: bytes | None = None
        #: the media counters as the call ended, for the gateway's running totals (/metrics)
        self.final_media_stats: Any = None

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
    def bridge(self) -> MediaBridge | None:
        return self.media.bridge if self.media is not None else None

    @property
    def finished(self) -> bool:
        """The call reached its terminal status (or its start was undone)."""
        return self._finished

    def describe(self, with_sdp: bool = False) -> dict[str, Any]:
        """The call object of docs/contract.md (notifications, REST)."""
        return call_object(self, with_sdp)

    @abc.abstractmethod
    def start(self) -> None:
        r"""Open the media sockets and begin both legs as this kind of call does; a request it
        cannot take raises :class:`CallError` (the request that started the call gets it,
        and the gateway :meth:`abandon`\ s the call)."""

    def _take_near(self, near: Leg) -> None:
        """``near`` is the call's near leg; from here on its media end and ``rtp`` are held by
        the call's :class:`CallMedia` (which connects them to the bridge and closes them)."""
        assert self.rtp is not None
        self.near = near
        self.leg = near.media  # type: ignore[attr-defined]
        near.listen(self._heard)
        self.media = CallMedia(self.env, self.leg, self.rtp)

    def _place_invite(self) -> None:
        """The SIP leg: an INVITE offering ``plan.sip_offer`` from our RTP socket; PENDING."""
        env = self.env
        assert self.plan is not None and self.rtp is not None and self.account is not None
        offer = self.sip_sdp.invite_offer(self.plan.sip_offer)
        self._take_sip(OutgoingSipLeg(env.make_invite(
            env.sip.endpoint, self.account, self.request_uri, offer,
            listener=_no_listener, display_name=self.visible_name,
            extra_headers=list(self.sip_headers.items()),
            no_answer_timeout=env.no_answer_timeout,
        )))
        self._set_status(CallStatus.PENDING)
        self.sip.start(env.reactor.seconds())  # type: ignore[union-attr]

    def _take_sip(self, leg: SipLeg) -> None:
        self.sip = leg
        leg.listen(self._heard)

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

    def _send_reoffer(self, direction: str) -> None:
        """The hold's way out: our re-INVITE with ``direction``."""
        assert self.sip is not None
        if self.sip.reinvite_in_progress:
            raise CallError(Codes.BAD_STATE, "a re-INVITE is already in progress; try again")
        try:
            self.sip.reinvite(self.sip_sdp.reoffer(direction), self.env.reactor.seconds())
        except RuntimeError as exc:  # e.g. our 2xx not yet ACKed
            raise CallError(Codes.BAD_STATE, f"cannot re-INVITE now: {exc}") from None

    def _apply_hold(self, local: bool, remote: bool, info: str) -> None:
        """Apply the two holds to the media and the status (HOLD while either holds)."""
        # Nothing of the browser goes to the far end while we hold it (it hears silence, not
        # us), nor while it holds us: it offered sendonly/inactive (or c=0.0.0.0), and RFC
        # 3264 §6.1 forbids sending then — DTMF events included, they are media too.
        quiet = held = local or remote
        if self.media is not None:
            self.media.hold(quiet, remote)
        if self.video is not None:
            self.video.set_hold(quiet, held)
        self._set_status(CallStatus.HOLD if held else CallStatus.ESTABLISHED, info)

    # -- what the legs say ----------------------------------------------------------------

    #: What the legs' call-control events do (wcsgw.calls.events): one handler per event
    #: type — here the call's setup and end; the in-call events are the subclass's
    #: (wcsgw.calls.call), and an incoming call adds its Confirm.  An event without an entry
    #: is nothing to the call.
    CONTROL_HANDLERS: ClassVar[Mapping[type, str]] = {
        cc.Ring: "_ring",
        cc.EarlyMedia: "_early_media",
        cc.Connect: "_connected",
        cc.Fail: "_failed",
        cc.Disconnect: "_disconnected",
        cc.MediaFailed: "_media_failed",
    }
    #: The events after which the SIP leg is over (its BYE or CANCEL settled, or it never
    #: came up): the gateway hears ``on_settled`` then, even when the call had finished.
    SETTLING: ClassVar[frozenset[type]] = frozenset({cc.Fail, cc.Disconnect})

    def _heard(self, event: Any) -> None:
        """The legs' listener: settle, then hand ``event`` to its handler while the call
        lasts."""
        if type(event) in self.SETTLING:
            self.env.reactor.callLater(0, self.on_settled, self)
        if self._finished:
            return
        name = self.CONTROL_HANDLERS.get(type(event))
        if name is not None:
            getattr(self, name)(event)

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
        self.holds.take_direction(self._sip_answer(event.sdp or self._early_sdp))

    def _sip_answer(self, sdp: bytes | None) -> SessionDescription | None:
        """``sdp`` parsed, for the hold's direction (a Call reuses its media start's parse)."""
        return parsed_sdp(sdp)

    def _failed(self, event: cc.Fail) -> None:
        self._finish(status_for_failure(event.status), event.status, event.reason)

    def _disconnected(self, event: cc.Disconnect) -> None:
        self._finish(CallStatus.FINISH,
                     self.sip_status if event.status is None else event.status, event.reason)

    def _media_failed(self, event: cc.MediaFailed) -> None:
        self._fail_sip(event.reason)

    # -- media ----------------------------------------------------------------------------

    @abc.abstractmethod
    def _connect_media(self, sip_sdp: bytes) -> None:
        """The SIP side answered our INVITE's offer with ``sip_sdp`` (a 1xx or the 2xx):
        settle the codecs against the near leg and start the media (:meth:`_start_media`)."""

    def _start_media(self) -> None:
        """Both legs are negotiated (``plan`` complete, the near leg knows its peer): the
        bridge starts, the video relay joins, the near leg starts."""
        plan, media, near = self.plan, self.media, self.near
        assert plan is not None and media is not None and near is not None
        bridge = media.start(plan, near.ssrc, lambda digit: self.notify(
            "dtmf", {"callId": self.call_id, "dtmf": digit, "type": "RFC2833"}))
        self.supervision.watch(bridge, media.session)
        now = self.env.clock.now()
        if self.video is not None and self.video.ready:
            self.video.send_fast_update = self._send_fast_update  # INFO, for phones without RTCP fb
            media.session.connect_video(self.video.start(self.leg, now), self.video.rtp)
        near.start(now)
        assert plan.browser_codec is not None and plan.sip_codec is not None
        log.info("call {call_id}: media {mode} {webrtc} <-> {sip}", call_id=self.call_id,
                 mode=plan.mode, webrtc=plan.browser_codec.rtpmap, sip=plan.sip_codec.rtpmap)

    @abc.abstractmethod
    def _send_fast_update(self) -> bool:
        """The video path's way to ask the SIP side for a key frame by INFO (for phones
        without RTCP feedback); False when it cannot now."""

    def _retarget(self, sip_sdp: bytes | None, parsed: SessionDescription | None = None) -> None:
        """Point the SIP-side sockets at what the SIP SDP names (:meth:`SipSdp.retarget`)."""
        assert self.rtp is not None
        if sip_sdp:
            self.sip_sdp.retarget(self.rtp, self.video, sip_sdp, parsed,
                                  source=self.sip.source if self.sip is not None else None)

    # -- status and the end -------------------------------------------------------------

    def _fail_sip(self, info: str) -> None:
        self.ended_by = self.ended_by or "gateway"
        if self.sip is not None:
            self.sip.hangup(self.env.reactor.seconds())
        self._finish(CallStatus.FAILED, self.sip_status, info)

    def _set_status(self, status: CallStatus, info: str | None = None) -> None:
        self.status = status
        if info is not None:
            self.info = info
        if self.ring_time is None and status.value.startswith(("RING", "SESSION_PROGRESS")):
            self.ring_time = time.time()
        self.on_status(self.describe(with_sdp=self.browser_answer is not None))

    def _finish(self, status: CallStatus, sip_status: int | None, info: str) -> None:
        if self._finished:
            return
        self._finished = True
        self.sip_status = sip_status
        self.info = info
        self.end_time = time.time()
        self.ended_by = self.ended_by or "sip"
        self.supervision.stop()
        if self.media is not None:
            self.final_media_stats = self.media.close()
        if self.video is not None:
            self.video.close()
        self._set_status(status)
        self.on_gone(self)
        if self.sip is None or self.sip.terminated:
            self.env.reactor.callLater(0, self.on_settled, self)
        log.info("call {call_id}: {status} ({info})", call_id=self.call_id, status=status.value,
                 info=info)
