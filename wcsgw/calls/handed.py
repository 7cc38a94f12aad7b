"""A call the operator places over REST and hands to a browser session (``call/startup`` with
``sessionId``): the browser answers the gateway's offer as for an incoming call, then the
gateway places the SIP call with the codec the browser chose.

It is an :class:`~wcsgw.calls.offered.OfferedCall` (the browser leg is offered) with an
outgoing SIP leg, as a browser's own :class:`~wcsgw.calls.call.Call` has: outwardly
(``incoming``, ``caller``) it is an outgoing call.
"""

from __future__ import annotations

from wcsgw.calls.errors import CallError, Codes
from wcsgw.calls.offered import OfferedCall
from wcsgw.calls.plan import CodecPlan, browser_offer_codecs, plan_codecs
from wcsgw.calls.status import CallStatus, Info
from wcsgw.calls.video import VideoPath

__all__ = ["HandedCall"]


class HandedCall(OfferedCall):
    """A call the operator places over REST and hands to a browser session (``sessionId``).

    The browser side is an incoming call (``incomingCall`` with the gateway's offer; the page
    answers); once it has answered, its codec decides the SIP offer — the same codec to
    relay, or G.711 to transcode from Opus — and the INVITE goes out like a browser's own call.

    With ``hasVideo`` the browser is offered video too (VP8, H.264: the video path's
    :meth:`~wcsgw.calls.video.VideoPath.handed`); the format its answer keeps is the only
    one the INVITE offers.  If the SIP side then refuses it, the call goes on audio-only
    (``hasVideo`` false); the browser's video m-section stays as it answered it (the gateway
    does not re-offer to the browser), its video packets are dropped and it receives none.
    """

    def start(self) -> None:
        env = self.env
        if self.account is None:
            raise CallError(Codes.FORBIDDEN, Info.FORBIDDEN, "callee")
        self.plan = CodecPlan("relay", [])
        if self.has_video:
            self.video = VideoPath.handed(env, self.call_id)
            self.has_video = self.video is not None
        self._ring_browser(browser_offer_codecs(None, env.codecs), self._no_answer)

    def answer(self, browser_sdp: str) -> None:
        if self.sip is not None:
            raise CallError(Codes.BAD_STATE, f"the call is {self.status.value}", "callId")
        answer, video = self._take_browser_answer(browser_sdp)
        # The browser's codec is fixed now: the SIP offer is made as for a browser that
        # offered only it (relayed if the SIP side takes it, else transcoded).
        chosen = [answer.codecs[0]] + ([answer.telephone_event] if answer.telephone_event else [])
        plan = self.plan = plan_codecs(chosen, self.env.codecs)
        plan.browser_codec, plan.browser_dtmf = answer.codecs[0], answer.telephone_event
        self._browser_chosen = chosen
        if self.video is not None:  # the browser's video format is the INVITE's only one
            taken = {c.payload_type for c in plan.sip_offer if c.payload_type is not None}
            if not self.video.settle_handed_answer(video, taken):
                self.video.close()  # before the INVITE: no video line at all
                self.video = None
                self.has_video = False
        self._cancel_ring_timer()
        self._place_invite()

    def hangup(self) -> None:
        if self._finished:
            return
        if self.sip is None:  # the browser never answered: nothing on the SIP side yet
            self._finish(CallStatus.FINISH, None, "Declined" if self.status is CallStatus.RING
                         else Info.NORMAL)
            self.env.reactor.callLater(0, self.on_settled, self)
            return
        super().hangup()

    def _no_answer(self) -> None:
        self._ring_timer = None
        if self.sip is None and not self._finished:
            self._finish(CallStatus.FINISH, None, "No answer")
            self.env.reactor.callLater(0, self.on_settled, self)

    def _connect_media(self, sip_sdp: bytes) -> None:
        """The SIP side answered: its codec must be the browser's (relay) or one we can
        transcode to the browser's; then the bridge starts (the browser has its SDP)."""
        answer = self._parse_sip_answer(sip_sdp)
        if answer is None:
            return
        if not self._settle_sip_audio(answer):
            return
        if self.video is not None and self.video.settle_sip_answer(answer) is None:
            self.video.reject()  # the SIP side has no video for us: audio-only
            self.has_video = False
        self._retarget(sip_sdp, parsed=answer)
        self._start_media()
