"""Key frames through SIP INFO (RFC 5168) for a call's video path.

A SIP video phone that negotiated neither ``nack pli`` nor ``ccm fir`` may only honour
``picture_fast_update`` in an INFO (:mod:`wcsgw.sip.mediacontrol`), so every key-frame request
the relay makes of the SIP sender (a browser PLI/FIR, path start, unhold, re-target) is also
sent that way — through ``send_fast_update``, which the call provides (the INFO goes in its
dialog, queued with DTMF INFO), paced by a :class:`~wcsgw.sip.mediacontrol.FastUpdateSender`.
An INFO fast update *from* the SIP side is a PLI toward the browser, throttled like one that
came by RTCP.  This is a second way to the same end as the relay's RTCP, with
rules of its own (pacing, a phone that says it cannot, a dialog that cannot take an INFO
now), so it reads apart from the path's SDP decisions and socket: :class:`KeyFramesByInfo`
is the part of :class:`~wcsgw.calls.video.VideoPath` that does it, on the path's own state.
"""

from __future__ import annotations

from typing import Callable, Optional

from twisted.logger import Logger

from wcsgw.media.video import SIP, WEBRTC, VideoRelay
from wcsgw.sip.mediacontrol import FastUpdateSender, parse_media_control

__all__ = ["KeyFramesByInfo"]

log = Logger(namespace="wcsgw.calls")


class KeyFramesByInfo:
    """The INFO key-frame requests of a video path: a base of
    :class:`~wcsgw.calls.video.VideoPath`, which sets these attributes up."""

    call_id: str
    relay: Optional[VideoRelay]
    sip_feedback: frozenset[str]
    _closed: bool
    #: sends an INFO picture_fast_update in the call's dialog, False when it could not
    #: (set by the call; None: no INFO fast update)
    send_fast_update: Optional[Callable[[], bool]]
    fast_update: FastUpdateSender
    #: INFO fast updates received from the SIP side
    fast_updates_received: int

    @property
    def sip_needs_info(self) -> bool:
        """The SIP side negotiated no RTCP key-frame request (neither ``nack pli`` nor ``ccm
        fir``): it is asked by INFO too.  The RTCP PLI still goes out: many such phones
        honour it anyway, and it costs one small packet."""
        feedback = self.relay.sip.feedback if self.relay is not None else self.sip_feedback
        return not ({"nack pli", "ccm fir"} & feedback)

    def _keyframe_requested(self, leg: str, now: float, forced: bool) -> None:
        """The relay asked a sender for a key frame by RTCP: for a SIP side without RTCP
        feedback, ask by INFO as well."""
        if leg == SIP and self.sip_needs_info:
            self.request_fast_update(now, force=forced)

    def request_fast_update(self, now: float, *, force: bool = False) -> bool:
        """Send an INFO picture_fast_update if the pacing allows (one in flight, one per
        :data:`~wcsgw.sip.mediacontrol.FAST_UPDATE_INTERVAL` unless ``force``).  True when
        one went out."""
        if self.send_fast_update is None or self._closed:
            return False
        if not self.fast_update.request(now, force=force):
            return False
        if not self.send_fast_update():
            self.fast_update.answered(None)  # the dialog could not take it now
            return False
        log.debug("call {call_id}: INFO picture_fast_update to the SIP side", call_id=self.call_id)
        return True

    def fast_update_answered(self, status: Optional[int]) -> None:
        """The final answer to our INFO fast update (None: none came)."""
        self.fast_update.answered(status)
        if not self.fast_update.enabled:
            log.info("call {call_id}: INFO fast update answered {status}: not sent again",
                     call_id=self.call_id, status=status)

    def info_from_sip(self, body: bytes, now: float) -> bool:
        """An INFO ``application/media_control+xml`` from the SIP side: a
        ``picture_fast_update`` becomes a PLI/FIR to the browser (the relay's throttle, as
        for one that came by RTCP); a ``general_error`` (the phone could not act on our
        request) stops our INFO fast updates.  True when it asked for a key frame."""
        control = parse_media_control(body)
        if control.general_error is not None:
            log.info("call {call_id}: the SIP side reports a media_control error ({text}): "
                     "no more INFO fast updates", call_id=self.call_id, text=control.general_error)
            self.fast_update.disable()
        if not control.picture_fast_update:
            if control.general_error is None:
                log.debug("call {call_id}: media_control INFO ignored", call_id=self.call_id)
            return False
        self.fast_updates_received += 1
        relay = self.relay
        if relay is None:  # no video flowing (refused, not started): nothing to refresh
            return False
        relay.keyframe_requests_from[SIP] += 1
        relay.request_keyframe(WEBRTC, now)
        return True
