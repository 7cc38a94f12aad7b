"""The browser's side of a call: its WebRTC media end and the SDP exchange with the page.

Two roles, one leg.  An :class:`OfferingBrowser` is a page that placed a call with its own SDP
offer (``call``); the gateway answers it only once the SIP side has chosen a codec, so the
offer is checked up front and answered later.  An :class:`AnsweringBrowser` is a page the
gateway offers a call to (an incoming call, a REST call handed to a session: ``incomingCall``
with our offer), which answers with ``answer``.  Either way the gateway stays the ICE-lite
agent and the DTLS server, the media end is a :class:`~wcsgw.webrtc.leg.WebRtcLeg` built by
the environment (so tests give a fake), and a handshake that fails reaches the call as the
call-control event :class:`~wcsgw.calls.events.MediaFailed`.

Why a leg of its own: the call coordinates a browser and a SIP side without knowing who
offered; what differs between the two roles — which SDP is built when, and what is checked —
lives here.

An ICE restart (``restartIce``: the browser's network changed) is the same for both roles:
the browser offers, the leg answers from the last SDP it sent (:mod:`wcsgw.webrtc.restart`)
and its media end switches to new ICE credentials, keeping DTLS and SRTP.  Nothing of it
reaches the SIP side: the call's SIP leg did not change.
"""

from __future__ import annotations

import secrets
from typing import Any, Mapping

from wcsgw.calls import events as cc
from wcsgw.calls.errors import CallError, Codes
from wcsgw.calls.leg import Leg
from wcsgw.calls.status import Info
from wcsgw.sdp.codecs import Codec
from wcsgw.sdp.errors import SdpError
from wcsgw.sdp.model import MediaDescription, SessionDescription
from wcsgw.sdp.parser import parse_sdp, serialize_sdp
from wcsgw.webrtc.control import LegError
from wcsgw.webrtc.offer import (
    BrowserAnswer,
    BrowserVideo,
    offer_for_browser,
    parse_browser_answer,
    parse_browser_video,
)
from wcsgw.webrtc.restart import plan_restart
from wcsgw.webrtc.sdp import VideoSpec, answer_for_browser, browser_transport

__all__ = ["AnsweringBrowser", "BrowserLeg", "OfferingBrowser", "check_browser_offer"]

#: What the media end's states (wcsgw.webrtc.leg, ``on_state``) mean to the call; the others
#: are nothing to it.
_STATES: Mapping[str, Any] = {
    "failed:ice": cc.MediaFailed(Info.ICE),
    "failed:dtls": cc.MediaFailed(Info.DTLS),
}


def check_browser_offer(text: str) -> SessionDescription:
    """The page's SDP offer, parsed and checked before anything is opened for it: it must
    parse, have audio, and carry ICE credentials and a DTLS fingerprint.  :class:`CallError`
    (field ``sdp``) says what is wrong."""
    try:
        offer = parse_sdp(text)
    except SdpError as exc:
        raise CallError(Codes.INVALID, f"the SDP offer does not parse: {exc}", "sdp") from None
    audio = offer.first_audio()
    if audio is None:
        raise CallError(Codes.NO_CODECS, f"{Info.NO_CODECS}: the offer has no audio", "sdp")
    if offer.ice_ufrag_for(audio) is None or offer.fingerprint_for(audio) is None:
        raise CallError(Codes.INVALID, "the offer lacks ICE credentials or a DTLS fingerprint",
                        "sdp")
    try:  # what answering it needs (rtcp-mux, a=setup), before the INVITE, not after the 200
        browser_transport(offer)
    except SdpError as exc:
        raise CallError(Codes.INVALID, f"the SDP offer cannot be answered: {exc}", "sdp") from None
    return offer


class BrowserLeg(Leg):
    """A browser's WebRTC leg in a call (see the module docstring)."""

    def __init__(self, media: Any, cname: str) -> None:
        """``media``: the WebRTC media end (its socket, ICE-lite, DTLS-SRTP); ``cname``: the
        RTCP CNAME of what we send the page."""
        #: the media end (a WebRtcLeg): what the call's MediaSession connects to the bridge
        self.media = media
        self.cname = cname
        #: the SSRC of the audio we send the page (named in our SDP)
        self.ssrc = secrets.randbits(32)
        #: the last SDP we sent the page and the last it sent us, once both exist: what an
        #: ICE restart starts from
        self.local: SessionDescription | None = None
        self.remote: SessionDescription | None = None
        media.on_state = self._state

    def _state(self, state: str) -> None:
        control = _STATES.get(state)
        if control is not None:
            self.emit(control)

    def start(self, now: float) -> None:
        """Both sides' ICE and DTLS parameters are known: serve the page's checks."""
        self.media.start()

    def hangup(self, now: float) -> None:
        self.media.close()

    def restart_ice(self, text: str) -> str:
        """The page's ICE restart offer ``text``: checked against the last offer/answer, the
        media end switched to new ICE credentials, our answer returned.  :class:`CallError`:
        field ``sdp`` for an offer that is not a pure ICE restart (nothing has changed then),
        ``callId`` when the call has no complete offer/answer or its media has ended."""
        if self.local is None or self.remote is None:
            raise CallError(Codes.BAD_STATE, "the call's offer and answer are not complete",
                            "callId")
        try:
            plan = plan_restart(parse_sdp(text), self.local, self.remote,
                                self.media.remote_fingerprint)
        except SdpError as exc:
            raise CallError(Codes.INVALID, f"not an ICE restart offer: {exc}", "sdp") from None
        try:
            self.media.restart_ice(plan.transport.ice_ufrag, plan.transport.ice_pwd)
        except LegError:
            raise CallError(Codes.BAD_STATE, "the call's media has ended", "callId") from None
        answer = plan.answer(self.media)
        self.local, self.remote = answer, plan.offer
        return serialize_sdp(answer)


class OfferingBrowser(BrowserLeg):
    """A page that offered the call; the gateway answers once the codec is known."""

    def __init__(self, media: Any, cname: str, offer: SessionDescription,
                 codecs: list[Codec] | None = None) -> None:
        """``offer``: the page's offer, as :func:`check_browser_offer` passed it; ``codecs``:
        its audio codecs when the caller parsed them already."""
        super().__init__(media, cname)
        self.offer = offer
        audio = offer.first_audio()
        assert audio is not None  # check_browser_offer refused offers without
        self._audio: MediaDescription = audio
        self._codecs = None if codecs is None else list(codecs)

    @property
    def codecs(self) -> list[Codec]:
        """The page's audio codecs, in its order (a copy of one parse: the 2xx reads them twice
        on the way to ESTABLISHED, and the offer does not change under this leg)."""
        if self._codecs is None:
            self._codecs = self._audio.codecs()
        return list(self._codecs)

    @property
    def ptime(self) -> int | None:
        return self._audio.ptime

    def answer(self, codecs: list[Codec], video: VideoSpec | None) -> str:
        """Our SDP answer to the page: ``codecs`` (the one we use, then telephone-event),
        ``video`` when the call keeps video; the media end learns the page's ICE and DTLS
        parameters from the offer."""
        offer, audio = self.offer, self._audio
        ufrag, fingerprint = offer.ice_ufrag_for(audio), offer.fingerprint_for(audio)
        assert ufrag is not None and fingerprint is not None  # check_browser_offer refused
        # an a=ice-pwd-less offer passes None: a lite agent never reads the browser's password
        pwd: str = offer.ice_pwd_for(audio)  # type: ignore[assignment]
        self.media.set_remote(ufrag, pwd, fingerprint)
        self.local = answer_for_browser(offer, self.media, codecs, ssrc=self.ssrc,
                                        cname=self.cname, video=video, offered=self.codecs)
        self.remote = offer
        return serialize_sdp(self.local)


class AnsweringBrowser(BrowserLeg):
    """A page the gateway offers the call to; it answers (``answer``)."""

    def __init__(self, media: Any, cname: str) -> None:
        super().__init__(media, cname)
        #: our offer to the page, once made
        self.offer: SessionDescription | None = None

    def make_offer(self, codecs: list[Codec], video: VideoSpec | None) -> str:
        """Our SDP offer to the page: ``codecs`` (relayable first), ``video`` when offered."""
        self.offer = offer_for_browser(self.media, codecs, self.ssrc, self.cname, video=video)
        return serialize_sdp(self.offer)

    def take_answer(self, text: str) -> tuple[BrowserAnswer, BrowserVideo | None]:
        """The page's answer: its codec and telephone-event, and its video (None: refused or
        not offered); the media end learns its ICE and DTLS parameters.  :class:`CallError`
        (field ``sdp``) when the answer is not one the gateway can use."""
        assert self.offer is not None
        try:
            answered = parse_sdp(text)
            answer = parse_browser_answer(self.offer, answered)
            video = parse_browser_video(self.offer, answered)
        except (SdpError, ValueError) as exc:
            raise CallError(Codes.INVALID, f"the SDP answer is not usable: {exc}", "sdp") from None
        self.media.set_remote(answer.ice_ufrag, answer.ice_pwd, answer.fingerprint)
        self.local, self.remote = self.offer, answered
        return answer, video
