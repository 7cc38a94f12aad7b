"""The media bridge's RTCP, terminated on each leg (sans-IO).

RTCP is never forwarded between the legs: each leg has its own :class:`RtcpReporter` that
reads what that leg reports and makes ours to it, because our SSRCs, sequence numbers and
(when transcoding) the payloads toward a leg are ours, not the other leg's. The bridge builds
the two reporters over its streams; this is the face through which the owner feeds and drains
them, apart from the per-packet media path.
"""

from __future__ import annotations

from wcsgw.media.direction import Send
from wcsgw.media.legmedia import SIP, WEBRTC
from wcsgw.media.reporter import RtcpReporter

__all__ = ["BridgeRtcp"]


class BridgeRtcp:
    """RTCP on both legs of a bridge: :attr:`rtcp` holds each leg's reporter (by leg name).

    Reports go out one of two ways: the owner pulls them on its own timer
    (:meth:`make_rtcp_for_webrtc` / :meth:`make_rtcp_for_sip`, as the media session does),
    or sets ``send_rtcp_to_webrtc`` / ``send_rtcp_to_sip`` and calls :meth:`poll_rtcp` when
    :meth:`rtcp_due` says so."""

    rtcp: dict[str, RtcpReporter]
    send_rtcp_to_webrtc: Send | None
    send_rtcp_to_sip: Send | None

    def rtcp_from_webrtc(self, packet: bytes, now: float) -> None:
        self.rtcp[WEBRTC].receive(packet, now)

    def rtcp_from_sip(self, packet: bytes, now: float) -> None:
        self.rtcp[SIP].receive(packet, now)

    def rtcp_due(self, side: str | None = None) -> float:
        """When the next report is due for ``side`` (or the earliest of both), in ``now`` time."""
        if side is None:
            return min(r.next_due for r in self.rtcp.values())
        return self.rtcp[side].next_due

    def make_rtcp(self, side: str, now: float) -> bytes:
        """The compound SR/RR + SDES for ``side`` (and schedule its next one)."""
        return self.rtcp[side].make(now)

    def poll_rtcp(self, now: float) -> float:
        """Send every due report through the RTCP callables; return the next deadline."""
        for side, reporter in self.rtcp.items():
            send = self.send_rtcp_to_webrtc if side == WEBRTC else self.send_rtcp_to_sip
            if send is not None and reporter.due(now):
                send(reporter.make(now))
        return self.rtcp_due()

    def make_rtcp_for_webrtc(self, now: float) -> list[bytes]:
        """Caller-timed variant of :meth:`make_rtcp`: the report(s) to send the browser now."""
        return [self.make_rtcp(WEBRTC, now)]

    def make_rtcp_for_sip(self, now: float) -> list[bytes]:
        """Caller-timed variant of :meth:`make_rtcp`: the report(s) to send the SIP side now."""
        return [self.make_rtcp(SIP, now)]

    def make_bye(self, side: str, reason: str | None = None) -> bytes:
        return self.rtcp[side].make_bye(reason)
