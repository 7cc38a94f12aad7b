"""What one leg of a call negotiated, in the terms the media bridge needs (plain names and
numbers, no SDP types), and which of the bridge's two modes two legs need.

Split from :mod:`wcsgw.media.bridge` so the bridge's two directions
(:mod:`wcsgw.media.direction`) and the bridge itself share it without importing each other.
"""

from __future__ import annotations

from typing import Any, Iterable

import attrs

__all__ = ["WEBRTC", "SIP", "RELAY", "TRANSCODE", "CLOCK_RATES", "TRANSCODABLE", "LegMedia",
           "check_mode", "choose_mode"]

WEBRTC = "webrtc"
SIP = "sip"
RELAY = "relay"
TRANSCODE = "transcode"

#: RTP clock rates of the codecs we know by name (RFC 3551, RFC 7587; G.722's is 8000 by
#: RFC 3551's famous exception). Speex has none by name: 8000 (nb) or 16000 (wb) must be given.
CLOCK_RATES = {"opus": 48000, "pcmu": 8000, "pcma": 8000, "g722": 8000, "g729": 8000}
#: Codecs the transcoder speaks (by lower-case rtpmap name); see wcsgw.media.audiocodec.
TRANSCODABLE = frozenset({"opus", "pcmu", "pcma", "g729", "speex", "g722"})


@attrs.frozen
class LegMedia:
    """What one leg negotiated, as plain names and numbers (no SDP types needed).

    ``codec`` is the encoding name as in ``a=rtpmap`` (``opus``, ``PCMU``, ``PCMA``; any case);
    ``telephone_event`` the payload type of ``telephone-event`` at the *same* clock rate as the
    codec (RFC 4733 §2.1), if negotiated; ``ssrc`` the SSRC we send on this leg (the one the
    SDP we gave this leg announces; random when None). ``event_rate`` is the
    ``telephone-event`` rate, the unit of event durations: the codec's clock rate unless the
    peer negotiated another (``opus/48000`` with ``telephone-event/8000`` is seen in the wild).

    Only the transcoder reads the last two: ``ptime`` is the packet time in ms this leg wants
    (SDP ``a=ptime``; the transcoder cuts its packets to it, rounded to the codec's frames),
    ``fmtp`` the leg's fmtp parameters for the codec (a dict, or the fmtp string), e.g.
    G.729 ``annexb=no`` or Opus ``useinbandfec=1``.
    """

    codec: str
    payload_type: int
    clock_rate: int = attrs.field(default=0)
    telephone_event: int | None = None
    ssrc: int | None = None
    event_rate: int = 0
    ptime: int = 20
    fmtp: Any = None

    @classmethod
    def from_codecs(cls, codecs: Iterable[Any], ssrc: int | None = None) -> "LegMedia":
        """From a leg's negotiated codec list (``wcsgw.sdp.codecs.Codec`` or anything with
        ``name``, ``clock_rate`` and ``payload_type``): the first audio codec, plus the
        telephone-event at that codec's clock rate if there is one."""
        audio = None
        events: dict[int, int] = {}
        for c in codecs:
            name = c.name.lower()
            if name == "telephone-event":
                events.setdefault(c.clock_rate, c.payload_type)
            elif name not in ("cn", "red", "rtx", "ulpfec") and audio is None:
                audio = c
        if audio is None:
            raise ValueError("no audio codec among the negotiated ones")
        return cls(
            audio.name,
            audio.payload_type,
            audio.clock_rate,
            events.get(audio.clock_rate),
            ssrc,
            fmtp=getattr(audio, "fmtp", None),
        )

    @classmethod
    def negotiated(
        cls, codec: Any, dtmf: Any = None, ssrc: int | None = None, ptime: int | None = None
    ) -> "LegMedia":
        """From the call layer's negotiated objects: ``codec`` and optional ``dtmf`` (anything
        with ``name``, ``clock_rate``, ``payload_type``, e.g. ``wcsgw.sdp`` Codec), our
        ``ssrc`` on this leg and the leg's ``a=ptime`` (None: 20; kept within 10..200 ms,
        whatever a peer's SDP says)."""
        return cls(
            codec.name,
            codec.payload_type,
            codec.clock_rate,
            None if dtmf is None else dtmf.payload_type,
            ssrc,
            0 if dtmf is None else (dtmf.clock_rate or 0),
            min(200, max(10, ptime or 20)),
            getattr(codec, "fmtp", None),
        )

    def __attrs_post_init__(self) -> None:
        if not self.clock_rate:
            rate = CLOCK_RATES.get(self.codec.lower())
            if rate is None:
                raise ValueError(f"clock rate of {self.codec!r} must be given")
            object.__setattr__(self, "clock_rate", rate)
        if not self.event_rate:
            object.__setattr__(self, "event_rate", self.clock_rate)
        if not 1 <= self.ptime <= 200:
            raise ValueError(f"ptime {self.ptime} ms out of range")
        for pt in (self.payload_type, self.telephone_event):
            if pt is not None and not 0 <= pt <= 127:
                raise ValueError(f"payload type {pt} out of range")


def choose_mode(webrtc: LegMedia, sip: LegMedia) -> str:
    """``relay`` when both legs use the same codec at the same rate, ``transcode`` when both
    codecs are ones the transcoder speaks (:data:`TRANSCODABLE`); ValueError for anything else.
    (Whether this machine has the codec's library is found when the bridge is built.)"""
    if webrtc.codec.lower() == sip.codec.lower() and webrtc.clock_rate == sip.clock_rate:
        return RELAY
    if webrtc.codec.lower() in TRANSCODABLE and sip.codec.lower() in TRANSCODABLE:
        return TRANSCODE
    raise ValueError(f"cannot bridge {webrtc.codec}/{webrtc.clock_rate} with {sip.codec}/{sip.clock_rate}")


def check_mode(webrtc: LegMedia, sip: LegMedia, mode: str | None) -> str:
    """The mode a bridge between these legs runs in: ``mode`` when the legs allow it, else
    ValueError saying why (None: :func:`choose_mode`'s choice). Checked before anything is
    built, so a bad settings object fails the call at once, not at the first packet."""
    auto = choose_mode(webrtc, sip)
    if mode is None:
        return auto
    if mode == RELAY and auto != RELAY:
        raise ValueError(f"relay needs the same codec on both legs, not {webrtc.codec} and {sip.codec}")
    if mode == TRANSCODE and auto == RELAY:
        raise ValueError("transcode between identical codecs is not supported")
    if mode not in (RELAY, TRANSCODE):
        raise ValueError(f"unknown mode {mode!r}")
    return mode
