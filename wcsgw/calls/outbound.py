"""A browser's own call: the page offered (``call`` with its SDP), the SIP side is called.

The codec plan (wcsgw.calls.plan) is fixed before the INVITE goes out: the SIP offer lists the
codecs that can be relayed first and those that would need transcoding after them, so
transcoding happens only when the SIP side takes none of the browser's codecs.  The browser
gets its SDP answer once the SIP side has answered with SDP (183 early media or the 2xx):
only then is the codec known.
"""

from __future__ import annotations

from twisted.logger import Logger

from wcsgw.calls.browserleg import OfferingBrowser, check_browser_offer
from wcsgw.calls.call import Call
from wcsgw.calls.errors import CallError, Codes
from wcsgw.calls.plan import CodecRefusal, browser_answer_codecs, plan_codecs, settle_outbound
from wcsgw.calls.status import Info
from wcsgw.calls.video import VideoPath

log = Logger(namespace="wcsgw.calls")

#: the call's info when SRTP was mandatory and the SIP side answered without it
SRTP_REFUSED = "SRTP required"

__all__ = ["OutboundCall"]


class OutboundCall(Call):
    """A call from a browser (it offered) to a SIP destination."""

    def start(self) -> None:
        """Check the offer, open the media sockets and send the INVITE.  A bad offer raises
        :class:`CallError` (the request that started the call gets the error)."""
        offer = check_browser_offer(self.browser_offer_text)
        audio = offer.first_audio()
        assert audio is not None  # checked
        offered = audio.codecs()  # parsed once for the plan and for the browser's answer
        self.plan = plan_codecs(list(offered), self.env.codecs)
        log.info("call {call_id}: SIP offer {offer}", call_id=self.call_id,
                 session_id=self.session_id, offer=", ".join(c.rtpmap for c in self.plan.sip_offer))
        if self.account is None:
            raise CallError(Codes.FORBIDDEN, Info.FORBIDDEN, "callee")
        env = self.env
        self._take_near(OfferingBrowser(self._open_browser_media(), self.cname, offer, offered))
        if self.has_video:
            self.video = VideoPath.outbound(env, self.call_id, offer, {
                c.payload_type for c in self.plan.sip_offer if c.payload_type is not None})
            self.has_video = self.video is not None
        self._place_invite()

    def _connect_media(self, sip_sdp: bytes) -> None:
        """The SIP side has chosen: answer the browser and start moving packets."""
        browser = self.near
        assert self.plan is not None and isinstance(browser, OfferingBrowser)
        answer = self._parse_sip_answer(sip_sdp)
        if answer is None:
            return
        audio = answer.first_audio()
        if audio is None:
            self._fail_sip(Info.NO_CODECS)
            return
        if self.sip_sdp.sdes.refuses_answer(answer):
            log.info("call {call_id}: srtp is mandatory and the answer keys none of our "
                     "a=crypto lines", call_id=self.call_id)
            self._fail_sip(SRTP_REFUSED)
            return
        plan = self.plan
        try:
            settle_outbound(plan, browser.codecs, audio.codecs(), self.env.codecs,
                            sip_ptime=audio.ptime, browser_ptime=browser.ptime)
        except CodecRefusal as exc:
            log.info("call {call_id}: {reason}", call_id=self.call_id, reason=exc.message)
            self._fail_sip(exc.info)
            return
        assert plan.browser_codec is not None
        self._retarget(sip_sdp, parsed=answer)
        video_spec = self.video.settle_sip_answer(answer) if self.video is not None else None
        if self.video is not None and video_spec is None:
            self.video.reject()  # the SIP side has no video for us: audio-only
            self.has_video = False
        self.browser_answer = browser.answer(browser_answer_codecs(plan), video_spec)
        self._start_media()
