"""The codec catalogue: every codec the gateway can negotiate, described once.

Why one table: the SIP offer, the browser offer, the config check and the docs all need to
know the same facts about a codec — its rtpmap name and clock rate, whether its payload type is
static, the fmtp we offer, its packetization, whether a browser can take it.  Scattered
constants drifted (three copies of "what is relayable" lived in the call modules before this).

An :class:`Entry` says what a codec *is* in SDP.  It does not say whether this machine can
*transcode* it: that depends on native libraries, which the media layer knows
(``wcsgw.media.codeclibs.available()``); this layer must not import media, so the calls layer
combines the two (:mod:`wcsgw.calls.plan`).

Speex is two entries, ``speex/8000`` (narrowband) and ``speex/16000`` (wideband): the same
codec family (``key`` ``"speex"``, one library) but different RTP formats that an offer lists
separately.  G.722 samples at 16 kHz but its RTP clock is 8000 (RFC 3551 §4.5.2), and that is
what is written here because it is what SDP says.
"""

from __future__ import annotations

import attr

from wcsgw.sdp.codecs import Codec

__all__ = [
    "AUDIO",
    "CATALOGUE",
    "Entry",
    "VIDEO",
    "lookup",
    "match",
    "parse_codec_name",
]


@attr.s(frozen=True, slots=True, auto_attribs=True)
class Entry:
    """One codec as the gateway negotiates it.

    ``key`` is the codec family in lower case, the name the media layer uses (``"speex"`` for
    both speex entries); ``label`` is how config and docs spell this entry (``"PCMU"``,
    ``"speex/16000"``), unique in the catalogue.  ``payload_type`` is the RFC 3551 static
    number, None for a dynamic one.  ``fmtp`` is what we put in our offers; ``ptime`` the
    packet duration we send, in ms.  ``browser``: WebRTC browsers can send and receive it
    (Chromium, Firefox and Safari all do Opus, G.711, G.722, VP8 and H.264).  ``package``:
    the Debian package whose library transcoding this codec needs (None: no native library).
    """

    key: str
    label: str
    name: str
    clock_rate: int
    channels: int = 1
    payload_type: int | None = None
    fmtp: str | None = None
    ptime: int = 20
    kind: str = "audio"
    browser: bool = False
    package: str | None = None

    def codec(self, payload_type: int | None = None) -> Codec:
        """This entry as an SDP :class:`Codec` (static number, or ``payload_type``, or None
        to have one assigned when the offer is written)."""
        pt = self.payload_type if payload_type is None else payload_type
        return Codec(self.name, self.clock_rate, self.channels, pt, self.fmtp)

    def matches(self, codec: Codec) -> bool:
        """Whether an offered/answered format is this entry: name (any case) and clock rate.

        Channels are not compared: ``opus/48000`` without the ``/2`` RFC 7587 demands is seen
        from some phones and is still Opus."""
        return codec.key == self.name.lower() and codec.clock_rate == self.clock_rate


#: Every codec, in the order the docs list them.
CATALOGUE: tuple[Entry, ...] = (
    Entry("opus", "opus", "opus", 48000, 2, None, "minptime=10;useinbandfec=1", browser=True,
          package="libopus0"),
    Entry("g722", "G722", "G722", 8000, 1, 9, browser=True, package="libspandsp2"),
    Entry("pcmu", "PCMU", "PCMU", 8000, 1, 0, browser=True),
    Entry("pcma", "PCMA", "PCMA", 8000, 1, 8, browser=True),
    Entry("g729", "G729", "G729", 8000, 1, 18, "annexb=no", package="libbcg729-0"),
    Entry("speex", "speex/16000", "speex", 16000, package="libspeex1"),
    Entry("speex", "speex/8000", "speex", 8000, package="libspeex1"),
    Entry("vp8", "VP8", "VP8", 90000, kind="video", browser=True),
    Entry("h264", "H264", "H264", 90000,
          fmtp="profile-level-id=42e01f;packetization-mode=1;level-asymmetry-allowed=1",
          kind="video", browser=True),
)

AUDIO: tuple[Entry, ...] = tuple(e for e in CATALOGUE if e.kind == "audio")
VIDEO: tuple[Entry, ...] = tuple(e for e in CATALOGUE if e.kind == "video")


def lookup(name: str, clock_rate: int | None = None) -> Entry | None:
    """The entry for an rtpmap name (any case) and optional clock rate; None if unknown.

    Without a clock rate a name with several entries (speex) gives its first, wideband."""
    lowered = name.lower()
    for entry in CATALOGUE:
        if entry.name.lower() == lowered and (clock_rate is None or entry.clock_rate == clock_rate):
            return entry
    return None


def match(codec: Codec) -> Entry | None:
    """The entry an SDP format is (see :meth:`Entry.matches`), or None: telephone-event, CN,
    red, a codec the gateway does not know."""
    return next((e for e in CATALOGUE if e.matches(codec)), None)


def parse_codec_name(text: str) -> Entry:
    """A config spelling -> its entry: ``"opus"``, ``"PCMU"``, ``"g729"``, ``"speex/16000"``,
    ``"G722"``, ``"VP8"``, ``"H264"`` (any case).  A bare ``"speex"`` is ambiguous and
    refused, so a config says which of the two it means.  ValueError naming the text when it
    is not a codec we know."""
    if not isinstance(text, str):
        raise ValueError(f"{text!r} is not a codec name")
    spelled = text.strip()
    name, _, rate = spelled.partition("/")
    entries = [e for e in CATALOGUE if e.name.lower() == name.lower()]
    if rate:
        if not rate.isdigit():
            entries = []
        else:
            entries = [e for e in entries if e.clock_rate == int(rate)]
    known = ", ".join(e.label for e in CATALOGUE)
    if not entries:
        raise ValueError(f"unknown codec {text!r} (known: {known})")
    if len(entries) > 1:
        choices = " or ".join(f'"{e.label}"' for e in entries)
        raise ValueError(f"{text!r} is ambiguous: say {choices}")
    return entries[0]
