"""The codec catalogue: what an RTP payload format is, and the static payload types.

A :class:`Codec` is what an ``a=rtpmap`` line (or a static payload type, RFC 3551 §6) plus an
optional ``a=fmtp`` line say about one format of an m-line.  ``channels`` is the rtpmap's
"encoding parameters" for audio and defaults to 1, as RFC 4566 §6 says; so
``opus/48000/2`` (RFC 7587 always writes 2) has ``channels == 2``.

The constants below (``OPUS``, ``PCMU`` ...) describe the codecs the gateway knows, with no
payload type unless it is a static one: offers assign dynamic numbers, answers take the
offerer's (RFC 3264 §6.1).
"""

from __future__ import annotations

import re

import attr


@attr.s(frozen=True, slots=True, auto_attribs=True)
class Codec:
    """One RTP payload format: ``name/clock_rate[/channels]``, its payload type and fmtp.

    ``name`` keeps the spelling it was written with (``opus``, ``PCMU``, ``G722``);
    compare codecs with :func:`same_codec`, which ignores case.
    """

    name: str
    clock_rate: int
    channels: int = 1
    payload_type: int | None = None
    fmtp: str | None = None

    @property
    def rtpmap(self) -> str:
        """The rtpmap encoding: ``opus/48000/2``, ``PCMU/8000`` (channels only when not 1)."""
        if self.channels != 1:
            return f"{self.name}/{self.clock_rate}/{self.channels}"
        return f"{self.name}/{self.clock_rate}"

    @property
    def key(self) -> str:
        """Lower-case name for comparisons and dispatch (``"telephone-event"``, ``"pcmu"``)."""
        return self.name.lower()

    def with_payload_type(self, payload_type: int) -> Codec:
        return attr.evolve(self, payload_type=payload_type)

    @property
    def fmtp_params(self) -> dict[str, str | None]:
        """The fmtp as a dict (see :func:`parse_fmtp`)."""
        return parse_fmtp(self.fmtp)


#: RFC 3551 table 4 and 5: payload types that need no rtpmap.  Keep ``channels`` at 1
#: except L16/44100/2 (payload type 10).
STATIC_PAYLOAD_TYPES: dict[int, Codec] = {
    c.payload_type: c  # type: ignore[misc]
    for c in [
        Codec("PCMU", 8000, 1, 0),
        Codec("GSM", 8000, 1, 3),
        Codec("G723", 8000, 1, 4),
        Codec("DVI4", 8000, 1, 5),
        Codec("DVI4", 16000, 1, 6),
        Codec("LPC", 8000, 1, 7),
        Codec("PCMA", 8000, 1, 8),
        # G.722 samples at 16 kHz but RFC 3551 §4.5.2 fixes its RTP clock at 8000.
        Codec("G722", 8000, 1, 9),
        Codec("L16", 44100, 2, 10),
        Codec("L16", 44100, 1, 11),
        Codec("QCELP", 8000, 1, 12),
        Codec("CN", 8000, 1, 13),
        Codec("MPA", 90000, 1, 14),
        Codec("G728", 8000, 1, 15),
        Codec("DVI4", 11025, 1, 16),
        Codec("DVI4", 22050, 1, 17),
        Codec("G729", 8000, 1, 18),
        Codec("CelB", 90000, 1, 25),
        Codec("JPEG", 90000, 1, 26),
        Codec("nv", 90000, 1, 28),
        Codec("H261", 90000, 1, 31),
        Codec("MPV", 90000, 1, 32),
        Codec("MP2T", 90000, 1, 33),
        Codec("H263", 90000, 1, 34),
    ]
}

#: First and last dynamic payload type (RFC 3551 §3).
DYNAMIC_PAYLOAD_TYPES = range(96, 128)

# -- the codecs the gateway speaks ------------------------------------------------------------
OPUS = Codec("opus", 48000, 2, fmtp="minptime=10;useinbandfec=1")
PCMU = Codec("PCMU", 8000, payload_type=0)
PCMA = Codec("PCMA", 8000, payload_type=8)
G722 = Codec("G722", 8000, payload_type=9)
CN = Codec("CN", 8000, payload_type=13)
TELEPHONE_EVENT_8000 = Codec("telephone-event", 8000, fmtp="0-15")
TELEPHONE_EVENT_48000 = Codec("telephone-event", 48000, fmtp="0-15")

#: Formats that carry no media of their own and only make sense beside a "primary" codec:
#: DTMF events and comfort noise (bound to a clock rate), redundancy, retransmission, FEC.
AUXILIARY = frozenset({"telephone-event", "cn", "red", "rtx", "ulpfec", "flexfec", "flexfec-03"})

_RTPMAP_RE = re.compile(
    r"[ \t]*([0-9]{1,3})[ \t]+([^/ \t]+)/([0-9]{1,10})(?:/([0-9]{1,3}))?[ \t]*", re.ASCII
)


def parse_rtpmap(value: str) -> Codec | None:
    """``"111 opus/48000/2"`` -> Codec; ``None`` when the value is malformed.

    Malformed rtpmaps are not errors of the description (RFC 8866 keeps attribute values
    opaque); the format they name simply cannot be used, which negotiation then reports.
    """
    m = _RTPMAP_RE.fullmatch(value)
    if m is None:
        return None
    pt = int(m.group(1))
    if pt > 127:
        return None
    channels = int(m.group(4)) if m.group(4) else 1
    return Codec(m.group(2), int(m.group(3)), channels or 1, pt)


def parse_fmtp(fmtp: str | None) -> dict[str, str | None]:
    """``"minptime=10;useinbandfec=1"`` -> ``{"minptime": "10", "useinbandfec": "1"}``.

    Names are lower-cased (RFC 7587 / RFC 6184 parameter names are case-insensitive);
    an item without ``=`` maps to None (``"0-15"`` -> ``{"0-15": None}``); the first
    occurrence of a repeated name wins.
    """
    params: dict[str, str | None] = {}
    if not fmtp:
        return params
    for item in fmtp.split(";"):
        item = item.strip()
        if not item:
            continue
        name, eq, value = item.partition("=")
        name = name.strip().lower()
        if name not in params:
            params[name] = value.strip() if eq else None
    return params


def same_codec(a: Codec, b: Codec) -> bool:
    """Whether two formats are the same codec: name (any case), clock rate and channels.

    Payload types and fmtp are not compared: the same codec travels under different numbers
    on the two legs, and audio fmtp parameters (Opus ``useinbandfec``, telephone-event
    ranges) are preferences, not a different codec.  So telephone-event/8000 and
    telephone-event/48000 are different formats, matched by their rate.
    """
    return a.key == b.key and a.clock_rate == b.clock_rate and a.channels == b.channels


def is_auxiliary(codec: Codec) -> bool:
    """telephone-event, CN, red, rtx, FEC: formats that only make sense beside a primary."""
    return codec.key in AUXILIARY


def primary_codec(codecs: list[Codec]) -> Codec | None:
    """The first codec that carries media itself (not telephone-event, CN, red, rtx, FEC)."""
    for codec in codecs:
        if not is_auxiliary(codec):
            return codec
    return None


def assign_payload_types(codecs: list[Codec]) -> list[Codec]:
    """Give every codec without a payload type one: its static number, else a free dynamic one.

    Codecs that already have a number keep it; dynamic numbers are taken from 96 upwards,
    skipping numbers in use.  Raises ValueError when two codecs claim one number or the
    dynamic range runs out.
    """
    used = [c.payload_type for c in codecs if c.payload_type is not None]
    if len(used) != len(set(used)):
        raise ValueError(f"payload type used twice in {[c.rtpmap for c in codecs]}")
    taken = set(used)
    result: list[Codec] = []
    free = (pt for pt in DYNAMIC_PAYLOAD_TYPES if pt not in taken)
    for codec in codecs:
        if codec.payload_type is None:
            static = next(
                (pt for pt, s in STATIC_PAYLOAD_TYPES.items()
                 if same_codec(s, codec) and pt not in taken),
                None,
            )
            pt = static if static is not None else next(free, None)
            if pt is None:
                raise ValueError("no free dynamic payload type left (96-127)")
            taken.add(pt)
            codec = codec.with_payload_type(pt)
        result.append(codec)
    return result
