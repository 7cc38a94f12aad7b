"""What a media bridge counted on one leg, as the numbers a call reports.

Split from :mod:`wcsgw.media.bridge`: the bridge moves packets, and this reads what its two
:class:`~wcsgw.media.direction.Direction`\\ s, their streams and the leg's RTCP reporter counted
while it did — for the call's status, the gateway's running totals and ``/metrics`` — without
adding anything to the per-packet path.
"""

from __future__ import annotations

from wcsgw.media.direction import Direction

__all__ = ["LegStats", "leg_stats"]

LegStats = dict[str, float | int | None]


def leg_stats(received: Direction, sent: Direction) -> LegStats:
    """One leg's figures: ``received`` is the direction packets from that leg take (its
    reporter is that leg's RTCP), ``sent`` the one toward it (its outgoing stream is what
    we sent the leg)."""
    inbound = received.inbound
    out = sent.outbound
    reporter = received.reporter
    remote = reporter.remote_report
    result: LegStats = {
        "packets_received": received.packets,
        "octets_received": inbound.octets_received,  # payload octets, valid packets
        "packets_lost": inbound.cumulative_lost,
        "jitter_ms": 1000.0 * inbound.jitter / inbound.clock_rate,
        "packets_sent": out.packets_sent,
        "octets_sent": out.octets_sent,
        "dropped": received.dropped,
        "malformed": received.malformed,
        "codec_errors": received.codec_errors + (0 if received.pipe is None else received.pipe.codec_errors),
        "dtmf_packets": received.events,
        "dtmf_digits": len(received.detector.digits),
        "dtmf_sent": sent.dtmf_sent,
        "held_back": sent.held_back,
        "rtt_ms": None if reporter.rtt is None else 1000.0 * reporter.rtt,
        "remote_fraction_lost": None if remote is None else remote.fraction_lost / 256.0,
        # the far end's count of our packets it never got (its last report block)
        "remote_packets_lost": None if remote is None else remote.cumulative_lost,
    }
    pipe = received.pipe
    if pipe is not None:
        # what the transcoder's reorder buffer and concealment did with this leg's audio
        jb = pipe.jitter
        result.update(
            {
                "late": jb.late,
                "duplicates": jb.duplicates,
                "reordered": jb.reordered,
                "concealed_ms": 1000.0 * pipe.concealed_samples / pipe.src.sample_rate,
                "fec_frames": pipe.fec_frames,
                "wait_ms": 1000.0 * jb.wait,
            }
        )
    return result
