"""One call's media data plane: its sockets, where their packets go, and its RTCP reports.

A call has up to three media sockets: the browser leg's (one UDP socket carrying STUN, DTLS,
SRTP and SRTCP, :class:`~wcsgw.webrtc.leg.WebRtcLeg`; a REST call's
:class:`~wcsgw.media.filemedia.FileMedia` stands in for it), the SIP side's RTP/RTCP pair
(:class:`~wcsgw.media.udp.RtpSocket`) and, with video, the SIP side's video pair.  The
:class:`MediaSession` holds them and connects them to the call's
:class:`~wcsgw.media.bridge.MediaBridge` and :class:`~wcsgw.media.video.VideoRelay`.

Per datagram, the work is done once: the socket reads the clock (once) and tells RTP from
RTCP (RFC 5761, once); the session hands the packet and that time to the bridge or the relay
as plain arguments.  Without video the browser's and the SIP side's receivers *are* the
bridge's entry points (no call in between); with video the browser's packets are told apart
here, RTP by payload type and RTCP by what it reports on (:meth:`VideoRelay.claims_rtcp`),
because BUNDLE puts both streams on the one socket.  The control of the browser leg (ICE,
DTLS, its timers: :mod:`wcsgw.webrtc.control`) stays beside this path, in the leg.

The session is driven by its owner: :meth:`MediaSession.report` once a second sends the RTCP
reports that are due (the audio ones every ``rtcp_interval``, the video relay's on its own
schedule), :meth:`MediaSession.close` closes every socket.  Nothing here reads a clock.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Protocol

from twisted.internet import defer

from wcsgw.media.bridge import MediaBridge
from wcsgw.media.settled import settled
from wcsgw.media.udp import RtpSocket
from wcsgw.media.video import SIP, WEBRTC, VideoRelay

__all__ = ["MediaSession", "BrowserSocket"]

Receive = Callable[[bytes, float], None]


class BrowserSocket(Protocol):
    """What the session uses of the browser's side (a WebRtcLeg, or a FileMedia)."""

    on_rtp: Receive
    on_rtcp: Receive

    def send_rtp(self, packet: bytes) -> None: ...

    def send_rtcp(self, packet: bytes) -> None: ...

    def close(self) -> Any: ...


class MediaSession:
    """The media sockets of one call and what connects them (see the module docstring).

    ``browser`` and ``sip`` are open already (their ports are in the SDP before media can
    flow); the SIP side's video socket joins with the relay (:meth:`connect_video`).
    """

    def __init__(
        self, browser: BrowserSocket, sip: RtpSocket, *, rtcp_interval: float = 5.0
    ) -> None:
        self.browser = browser
        self.sip = sip
        self.sip_video: Optional[RtpSocket] = None
        self.rtcp_interval = rtcp_interval
        self.bridge: Optional[MediaBridge] = None
        self.video: Optional[VideoRelay] = None
        self._last_report = 0.0
        self._closed: Optional[defer.Deferred[None]] = None

    def connect(self, bridge: MediaBridge, now: float) -> None:
        """Audio can flow: the sockets feed ``bridge`` directly, its inactivity clocks start
        at ``now``.  RTCP is terminated per leg: read (RTT, the peer's loss), never forwarded."""
        self.bridge = bridge
        bridge.started_at = now
        self.browser.on_rtp = bridge.from_webrtc
        self.browser.on_rtcp = bridge.rtcp_from_webrtc
        self.sip.on_rtp = bridge.from_sip
        self.sip.on_rtcp = bridge.rtcp_from_sip

    def connect_video(self, relay: VideoRelay, sip_video: RtpSocket) -> None:
        """Video can flow too (after :meth:`connect`): ``sip_video``, the SIP side's video
        socket, feeds ``relay`` (and is the session's to close from now on), and the
        browser's packets are told apart by payload type (RTP) and by what they report on
        (RTCP)."""
        self.video = relay
        self.sip_video = sip_video
        sip_video.on_rtp = relay.from_sip
        sip_video.on_rtcp = relay.rtcp_from_sip
        self.browser.on_rtp = self._browser_rtp
        self.browser.on_rtcp = self._browser_rtcp

    def _browser_rtp(self, packet: bytes, now: float) -> None:
        relay, bridge = self.video, self.bridge
        assert relay is not None and bridge is not None
        if len(packet) > 1 and relay.is_video(packet[1] & 0x7F):
            relay.from_webrtc(packet, now)
        else:
            bridge.from_webrtc(packet, now)

    def _browser_rtcp(self, packet: bytes, now: float) -> None:
        relay, bridge = self.video, self.bridge
        assert relay is not None and bridge is not None
        if relay.claims_rtcp(packet):
            relay.rtcp_from_webrtc(packet, now)
        else:
            bridge.rtcp_from_webrtc(packet, now)

    def report(self, now: float) -> None:
        """Send the RTCP reports due at ``now``: the bridge's to both legs every
        ``rtcp_interval`` (the first at the first call), the video relay's when it says so
        (every ~1 s toward the browser: they carry the REMB)."""
        relay = self.video
        if relay is not None:
            if relay.rtcp[WEBRTC].due(now):
                for packet in relay.make_rtcp_for_webrtc(now):
                    self.browser.send_rtcp(packet)
            if relay.rtcp[SIP].due(now) and self.sip_video is not None:
                for packet in relay.make_rtcp_for_sip(now):
                    self.sip_video.send_rtcp(packet)
        bridge = self.bridge
        if bridge is not None and now - self._last_report >= self.rtcp_interval:
            self._last_report = now
            for packet in bridge.make_rtcp_for_webrtc(now):
                self.browser.send_rtcp(packet)
            for packet in bridge.make_rtcp_for_sip(now):
                self.sip.send_rtcp(packet)

    def close(self) -> defer.Deferred[None]:
        """Close every socket (ports back to the allocator); idempotent.  The bridge and the
        relay stay readable (their counters are the call's final statistics)."""
        if self._closed is None:
            sockets = [self.browser, self.sip] + ([self.sip_video] if self.sip_video else [])
            closing = [defer.maybeDeferred(s.close) for s in sockets]
            self._closed = defer.gatherResults(closing, consumeErrors=True).addBoth(
                lambda _: None)
        return settled(self._closed)
