"""A call's media once both legs are negotiated: its sockets, the bridge, the bridge's timer.

Why an object of its own: the call coordinates legs and statuses; what moves packets — the
media session holding the near leg's media end and the SIP side's RTP pair
(wcsgw.media.session), the :class:`~wcsgw.media.bridge.MediaBridge` built from the codec plan,
and the one timer the bridge's deadlines need (RFC 4733 digit cadence, a transcoder's wait
behind a gap) — is this, and the call only tells it what changed (hold, a new payload type, a
digit to send).  The sockets read the clock once per datagram and hand it on with the packet:
the bridge takes them as they come, with no clock read and no closure in between.
"""

from __future__ import annotations

from typing import Any, Callable, cast

from twisted.logger import Logger

from wcsgw.calls.environment import CallEnvironment
from wcsgw.calls.plan import CodecPlan
from wcsgw.media.bridge import BridgeSettings, LegMedia, MediaBridge
from wcsgw.media.session import BrowserSocket, MediaSession
from wcsgw.media.srtpsip import SrtpSipSocket
from wcsgw.media.udp import RtpSocket

log = Logger(namespace="wcsgw.calls")

__all__ = ["CallMedia", "RTCP_INTERVAL"]

#: How often the media session sends RTCP reports (it is asked every MEDIA_TICK).
RTCP_INTERVAL = 5.0


class CallMedia:
    """One call's media plane (see the module docstring)."""

    def __init__(self, env: CallEnvironment, near: BrowserSocket, rtp: RtpSocket) -> None:
        """``near``: the near leg's media end (the browser's WebRTC leg, a file); ``rtp``: the
        SIP side's socket pair.  Both are open (their ports are in the SDP already); from
        here on this object closes them."""
        self.env = env
        #: the SIP side's sockets as the session sees them: SRTP once SDES keys them
        self.sip = SrtpSipSocket(rtp)
        self.session = MediaSession(near, cast(RtpSocket, self.sip), rtcp_interval=RTCP_INTERVAL)
        self.bridge: MediaBridge | None = None
        self._timer: Any = None
        self._closed = False

    def start(self, plan: CodecPlan, near_ssrc: int,
              on_dtmf: Callable[[str], None]) -> MediaBridge:
        """Both legs are negotiated (``plan`` complete): build the bridge and connect the
        sockets to it; ``on_dtmf`` hears the digits the SIP side sends in RTP."""
        assert plan.browser_codec is not None and plan.sip_codec is not None
        session = self.session
        bridge = self.bridge = MediaBridge(
            LegMedia.negotiated(plan.browser_codec, plan.browser_dtmf, near_ssrc,
                                plan.browser_ptime),
            LegMedia.negotiated(plan.sip_codec, plan.sip_dtmf, None, plan.sip_ptime),
            session.browser.send_rtp, session.sip.send_rtp,
            settings=BridgeSettings(mode=plan.mode, wall_offset=self.env.clock.wall_offset()),
        )
        bridge.on_deadline = lambda deadline: self._arm()
        session.connect(bridge, self.env.clock.now())
        bridge.on_dtmf_from_sip = on_dtmf
        return bridge

    def key_sip(self, suite: str, ours: bytes, theirs: bytes) -> None:
        """SDES settled (wcsgw.calls.sipsdes): the SIP side's packets are SRTP of ``suite``
        from now on, ``ours`` protecting what we send, ``theirs`` what it sends."""
        self.sip.key(suite, ours, theirs)

    def require_srtp(self) -> None:
        """SRTP is mandatory toward the SIP side: until keyed, nothing goes to it or comes
        from it (fail closed, whichever kind of call checks the answer)."""
        self.sip.require()

    def rekey_sip(self, theirs: bytes) -> None:
        """The SIP side's re-offer brought a new key for what it sends."""
        self.sip.rekey_inbound(theirs)

    def send_dtmf(self, digits: str) -> None:
        """Digits toward the SIP side as RFC 4733 events; ValueError when the SIP side took no
        telephone-event (or the media is not up)."""
        if self.bridge is None:
            raise ValueError("the media is not up")
        self.bridge.send_dtmf_to_sip(digits, self.env.reactor.seconds())
        self._arm()

    def hold(self, quiet: bool, remote: bool) -> None:
        """Nothing of the near leg goes to the SIP side while ``quiet`` (either side holds);
        no DTMF events either while the SIP side holds us (RFC 3264 §6.1: they are media)."""
        if self.bridge is not None:
            self.bridge.paused_to_sip = quiet
            self.bridge.dtmf_paused_to_sip = remote

    def set_sip_payload_types(self, codec_pt: int, dtmf_pt: int | None) -> None:
        """The SIP side renumbered our codec (a re-offer, a new dialog after a transfer)."""
        if self.bridge is not None:
            self.bridge.set_sip_payload_types(codec_pt, dtmf_pt)

    @property
    def armed(self) -> bool:
        """A bridge deadline is waited for (a digit's next packet, a packet behind a gap)."""
        return self._timer is not None and self._timer.active()

    def _arm(self) -> None:
        """One timer for the bridge's next deadline, re-armed at each."""
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        bridge = self.bridge
        if bridge is None or self._closed:
            return
        deadline = bridge.next_deadline()
        if deadline is None:
            return
        delay = max(0.0, deadline - self.env.reactor.seconds())
        self._timer = self.env.reactor.callLater(delay, self._tick)

    def _tick(self) -> None:
        self._timer = None
        if self.bridge is not None:
            self.bridge.poll(self.env.reactor.seconds())
            self._arm()

    def close(self) -> Any:
        """Stop the timer, close the sockets; returns the media counters as the call ended
        (the bridge's stats, None when media never started), for the gateway's totals."""
        self._closed = True
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        self.session.close()
        stats = self.bridge.stats() if self.bridge is not None else None
        self.bridge = None
        return stats
