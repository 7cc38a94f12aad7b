"""Calls whose browser leg the gateway offers and the browser answers: the incoming call
(:class:`~wcsgw.calls.inbound.InboundCall`) and the REST call handed to a browser session
(:class:`~wcsgw.calls.handed.HandedCall`).

What they share, and only that: the gateway's WebRTC offer to the browser (``incomingCall``,
status RING), the ring timer while the browser decides, and the settling of a SIP answer
against the codec the browser chose.  Both are a :class:`OfferedCall`; neither reaches past
it into :class:`~wcsgw.calls.call.Call`.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.logger import Logger

from wcsgw.calls.browserleg import AnsweringBrowser
from wcsgw.calls.call import Call
from wcsgw.calls.errors import CallError, Codes
from wcsgw.calls.plan import CodecRefusal, settle_outbound
from wcsgw.calls.status import CallStatus, Info
from wcsgw.sdp.codecs import Codec
from wcsgw.sdp.model import SessionDescription
from wcsgw.webrtc.offer import BrowserAnswer, BrowserVideo

log = Logger(namespace="wcsgw.calls")

__all__ = ["OfferedCall"]


class OfferedCall(Call):
    """A call whose browser leg answers the gateway's offer (see the module docstring)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(browser_offer="", sip_headers={}, **kwargs)
        self._ring_timer: Any = None
        #: the browser's answered codec (and telephone-event), when the SIP offer is made for
        #: it (late offer, handed call): what the SIP side's answer is settled against
        self._browser_chosen: list[Codec] = []

    def _ring_browser(self, codecs: list[Codec], no_answer: Callable[[], None]) -> None:
        """Offer the call to the browser (:meth:`_offer_to_browser`) and give it
        ``sip.no_answer_timeout`` to answer, then ``no_answer``."""
        self._offer_to_browser(codecs)
        self._ring_timer = self.env.reactor.callLater(self.env.no_answer_timeout, no_answer)

    def _offer_to_browser(self, codecs: list[Codec]) -> None:
        """Open both media sockets and ring the browser: ``incomingCall`` with our offer."""
        browser = AnsweringBrowser(self._open_browser_media(), self.cname)
        self._take_near(browser)
        self.browser_offer_text = browser.make_offer(
            codecs, self.video.browser_offer_spec() if self.video is not None else None)
        if self.video is not None:
            assert browser.offer is not None
            self.video.note_browser_offer(browser.offer)
        self.status = CallStatus.RING  # before the notification: the page sees it ring
        self.notify("incomingCall", {
            "callId": self.call_id, "caller": self.caller, "callee": self.callee,
            "visibleName": self.visible_name, "hasAudio": True, "hasVideo": self.has_video,
            "sdp": self.browser_offer_text,
        })
        self._set_status(CallStatus.RING)

    def _take_browser_answer(self, text: str) -> tuple[BrowserAnswer, BrowserVideo | None]:
        """The page's ``answer`` to our offer, while the call rings (else :class:`CallError`,
        field ``callId``): its codec and video (:meth:`AnsweringBrowser.take_answer`)."""
        if self.status is not CallStatus.RING:
            raise CallError(Codes.BAD_STATE, f"the call is {self.status.value}", "callId")
        assert isinstance(self.near, AnsweringBrowser)
        return self.near.take_answer(text)

    def _cancel_ring_timer(self) -> None:
        if self._ring_timer is not None and self._ring_timer.active():
            self._ring_timer.cancel()
        self._ring_timer = None

    def _settle_sip_audio(self, answer: SessionDescription | None) -> bool:
        """The SIP side's answer to our offer settles the plan against the codec the browser
        chose (relay or transcode); False when it cannot, the call failed then."""
        plan = self.plan
        assert plan is not None
        audio = answer.first_audio() if answer is not None else None
        if audio is None:
            self._fail_sip(Info.NO_CODECS)
            return False
        try:
            settle_outbound(plan, self._browser_chosen, audio.codecs(), self.env.codecs,
                            sip_ptime=audio.ptime)
        except CodecRefusal as exc:
            log.info("call {call_id}: {reason}", call_id=self.call_id, reason=exc.message)
            self._fail_sip(exc.info)
            return False
        return True

    def _finish(self, status: CallStatus, sip_status: int | None, info: str) -> None:
        self._cancel_ring_timer()
        super()._finish(status, sip_status, info)

    def abandon(self) -> None:
        self._cancel_ring_timer()
        super().abandon()
