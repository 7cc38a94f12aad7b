"""One leg's RTCP: when to report, what to report, and what the peer reported.

The gateway *terminates* RTCP per leg: each side gets reports about the stream we send it (SR)
and the stream it sends us (report blocks), computed from our own
:class:`~wcsgw.media.stream.OutboundStream` / :class:`~wcsgw.media.stream.InboundStream`. Reports
from a peer are consumed here (round-trip time, their view of our loss and jitter) and never
forwarded to the other leg, whose numbers would be about a different stream.

Times: ``now`` is the owner's monotonic clock (``reactor.seconds()``, which on the asyncio
reactor counts from boot): it times the reports, the RTP timestamps of the SR and the delay
since the peer's last SR (DLSR). An SR also carries an NTP timestamp (RFC 3550 §4: wall-clock
seconds since 1900, 32.32 fixed point), which the peer uses for lip sync and echoes back for
round-trip times (LSR/DLSR, §6.4.1): the reporter reads it as ``now + wall_offset``, the
offset taken once per call from a :class:`~wcsgw.media.clock.MediaClock`. One offset per call,
not a wall-clock read per report, so a step of the system clock mid-call (NTP slewing, a
manual set) neither jumps the SR timestamps nor corrupts the round-trip times computed from
them.
"""

from __future__ import annotations

import random

from wcsgw.media.rtcp import (
    Bye,
    Feedback,
    ReceiverReport,
    ReportBlock,
    RtcpError,
    RtcpPacket,
    SenderReport,
    SourceDescription,
    build_bye,
    build_rr,
    build_sdes,
    build_sr,
    ntp_timestamp,
    parse_rtcp,
)
from wcsgw.media.stream import InboundStream, OutboundStream

__all__ = ["RtcpReporter"]


class RtcpReporter:
    """RTCP for one leg: when to report, what to report, and what the peer reported.

    Interval: RFC 3550 §6.2 allows a fixed 5 s minimum for small sessions; the actual
    interval is randomised over [0.5, 1.5] x (§6.3.1) so that the two ends do not
    synchronise, and the first report goes out after half an interval (§6.2, "initial").
    """

    def __init__(
        self,
        outbound: OutboundStream,
        inbound: InboundStream,
        cname: str,
        *,
        now: float,
        interval: float = 5.0,
        rng: random.Random | None = None,
        wall_offset: float = 0.0,
    ) -> None:
        self.outbound = outbound
        #: wall-clock time minus ``now`` (see the module docstring): NTP = ``now + wall_offset``
        self.wall_offset = wall_offset
        self.inbound = inbound
        self.cname = cname
        self.interval = interval
        self._rng = rng or random.Random()
        self.next_due = now + self._jitter(interval / 2)
        self._packets_at_last_report = 0
        self._packets_at_report_before_last = 0
        self._last_sr_ntp_middle = 0  # LSR: middle 32 bits of the peer's last SR
        self._last_sr_at: float | None = None
        #: Round-trip time (seconds) from the peer's last report block about our stream.
        self.rtt: float | None = None
        #: The peer's last report block about our stream (its view of loss and jitter).
        self.remote_report: ReportBlock | None = None
        self.remote_ssrc: int | None = None
        self.remote_cname: str | None = None
        self.remote_bye = False
        self.reports_sent = 0
        self.reports_received = 0
        self.keyframe_requests = 0

    def _jitter(self, base: float) -> float:
        return base * self._rng.uniform(0.5, 1.5)

    def due(self, now: float) -> bool:
        return now >= self.next_due

    def _report_block(self, now: float) -> ReportBlock | None:
        inbound = self.inbound
        if inbound.ssrc is None or not inbound.received_since_report:
            return None
        fraction, lost, ext_max, jitter = inbound.interval_report()
        dlsr = 0
        if self._last_sr_at is not None:
            dlsr = int(max(0.0, now - self._last_sr_at) * 65536) & 0xFFFFFFFF
        return ReportBlock(inbound.ssrc, fraction, lost, ext_max, jitter, self._last_sr_ntp_middle, dlsr)

    def make(self, now: float) -> bytes:
        """The compound report for ``now`` (SR if we sent media since the last report, else RR,
        then SDES CNAME), and schedule the next one."""
        block = self._report_block(now)
        blocks = (block,) if block is not None else ()
        out = self.outbound
        # RFC 3550 §6.4: SR if we sent data since the report before last, else RR.
        if out.packets_sent > self._packets_at_report_before_last:
            first = build_sr(
                out.ssrc,
                ntp_timestamp(now + self.wall_offset),
                out.rtp_timestamp_at(now),
                out.packets_sent,
                out.octets_sent,
                blocks,
            )
        else:
            first = build_rr(out.ssrc, blocks)
        self._packets_at_report_before_last = self._packets_at_last_report
        self._packets_at_last_report = out.packets_sent
        self.next_due = now + self._jitter(self.interval)
        self.reports_sent += 1
        return first + build_sdes(out.ssrc, self.cname)

    def make_bye(self, reason: str | None = None) -> bytes:
        """A final RR + SDES + BYE compound, for when the leg ends."""
        return build_rr(self.outbound.ssrc) + build_sdes(self.outbound.ssrc, self.cname) + build_bye(
            self.outbound.ssrc, reason
        )

    def receive(self, data: bytes, now: float) -> list[RtcpPacket]:
        """Consume the peer's RTCP; returns its parts (empty if it was malformed)."""
        try:
            packets = parse_rtcp(data)
        except RtcpError:
            return []
        self.reports_received += 1
        for p in packets:
            if isinstance(p, (SenderReport, ReceiverReport)):
                self.remote_ssrc = p.ssrc
                if isinstance(p, SenderReport):
                    self._last_sr_ntp_middle = p.lsr
                    self._last_sr_at = now
                for block in p.reports:
                    if block.ssrc == self.outbound.ssrc:
                        self.remote_report = block
                        if block.lsr:
                            # RFC 3550 §6.4.1: A - LSR - DLSR, in 1/65536 s, modulo 2^32
                            arrival = (ntp_timestamp(now + self.wall_offset) >> 16) & 0xFFFFFFFF
                            rtt = (arrival - block.lsr - block.dlsr) & 0xFFFFFFFF
                            if rtt < 0x80000000:
                                self.rtt = rtt / 65536.0
            elif isinstance(p, SourceDescription):
                for ssrc, _ in p.chunks:
                    name = p.cname(ssrc)
                    if name is not None and (self.remote_ssrc is None or ssrc == self.remote_ssrc):
                        self.remote_cname = name
            elif isinstance(p, Bye):
                self.remote_bye = True
            elif isinstance(p, Feedback) and (p.is_pli or p.is_fir):
                self.keyframe_requests += 1
        return packets
