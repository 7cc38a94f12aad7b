"""The ``[codecs]`` policy: which codecs each leg may use, and what can be transcoded here.

The codec plan (:mod:`wcsgw.calls.plan`) decides per call; what it decides *from* is fixed
at start-up and lives here, apart from the per-call decisions, so the operator's settings are
read, combined with what the machine can transcode and checked in one place:

* the operator's ``[codecs]`` config: which codecs each leg may use, in which order, and
  whether transcoding is allowed (:class:`CodecPolicy`);
* what the media layer can transcode on this machine (native libraries present):
  :func:`media_transcodable`.  The sdp layer may not import media, so it is combined here;
* :func:`check_policy`, the start-up check: a policy that leaves a leg no usable codec
  stops the service (no call could ever work), one that lists useless codecs is logged.

Sans-IO like the plan; the media layer and ``config`` are read lazily, inside the functions
that need them.
"""

from __future__ import annotations

import functools
from typing import Iterable

import attr

from wcsgw.sdp.catalogue import Entry, parse_codec_name
from wcsgw.sdp.codecs import Codec

__all__ = ["CodecPolicy", "check_policy", "default_policy", "media_transcodable"]


def media_transcodable() -> tuple[frozenset[str], frozenset[str]]:
    """What the media layer can transcode on this machine: (SIP-side keys, browser-side keys).

    A codec needs its native library (``wcsgw.media.codeclibs.available()``) *and* a
    transcoder that pairs it with the other leg's codec; the bridge's ``choose_mode`` is the
    authority on pairs, so it is asked for each (browser codec, SIP codec) pair rather than
    this module assuming any-to-any.  The planner treats every (browser key, SIP key) pair of
    the two sets as possible, which holds for both transcoders the bridge has had (Opus <->
    G.711, then any-to-any)."""
    from wcsgw.media.bridge import LegMedia, choose_mode
    from wcsgw.media.codeclibs import available
    from wcsgw.sdp.catalogue import AUDIO

    entries = [e for e in AUDIO if e.key in set(available())]
    sip: set[str] = set()
    webrtc: set[str] = set()
    for w in entries:
        for s in entries:
            if w.key == s.key:
                continue
            try:
                mode = choose_mode(LegMedia(w.name, 96, w.clock_rate), LegMedia(s.name, 97, s.clock_rate))
            except (ValueError, TypeError):
                continue
            if mode == "transcode":
                webrtc.add(w.key)
                sip.add(s.key)
    return frozenset(sip), frozenset(webrtc)


@attr.s(frozen=True, auto_attribs=True)
class CodecPolicy:
    """The ``[codecs]`` config as the calls layer uses it, plus what can be transcoded here.

    ``sip``: audio codecs we offer toward (and accept from) the SIP side, in preference
    order; ``webrtc``: audio codecs we accept from and offer to browsers, in preference order;
    ``video``: video codecs (relayed only); ``transcoding``: whether the gateway may transcode
    at all; ``transcodable``: codec keys (``"opus"``, ``"g729"``, ...) the media layer can
    transcode on the SIP side, ``webrtc_transcodable`` on the browser side (None: the same
    set) — see :func:`media_transcodable`.
    """

    sip: tuple[Entry, ...]
    webrtc: tuple[Entry, ...]
    video: tuple[Entry, ...] = ()
    transcoding: bool = True
    transcodable: frozenset[str] = frozenset()
    webrtc_transcodable: frozenset[str] | None = None

    @classmethod
    def from_names(cls, sip: Iterable[str], webrtc: Iterable[str], video: Iterable[str] = (),
                   transcoding: bool = True, transcodable: Iterable[str] | None = None,
                   webrtc_transcodable: Iterable[str] | None = None) -> CodecPolicy:
        """From config spellings (``"opus"``, ``"speex/16000"``); ``transcodable`` None asks
        the media layer (:func:`media_transcodable`) for both sides."""
        webrtc_keys: frozenset[str] | None
        if transcodable is None:
            sip_keys, webrtc_keys = media_transcodable()
        else:
            sip_keys = frozenset(transcodable)
            webrtc_keys = None if webrtc_transcodable is None else frozenset(webrtc_transcodable)
        return cls(tuple(parse_codec_name(n) for n in sip),
                   tuple(parse_codec_name(n) for n in webrtc),
                   tuple(parse_codec_name(n) for n in video), transcoding, sip_keys, webrtc_keys)

    @property
    def video_codecs(self) -> list[Codec]:
        """The video codecs as SDP formats (catalogue fmtp, no payload type yet)."""
        return [e.codec() for e in self.video]

    def can_transcode(self, entry: Entry | None, browser_side: bool = False) -> bool:
        """Whether the media layer can transcode this codec on that leg (whatever
        ``transcoding`` says)."""
        if entry is None:
            return False
        if browser_side and self.webrtc_transcodable is not None:
            return entry.key in self.webrtc_transcodable
        return entry.key in self.transcodable


@functools.lru_cache(maxsize=1)
def default_policy() -> CodecPolicy:
    """The built-in ``[codecs]`` defaults with what this machine can transcode."""
    from wcsgw.config import CodecSettings

    d = CodecSettings()
    return CodecPolicy.from_names(d.sip, d.webrtc, d.video, d.transcoding)


def check_policy(policy: CodecPolicy, libraries: Iterable[str] | None = None) -> list[str]:
    """Start-up check of a policy against what can be transcoded here.

    A relayed codec (listed for both legs) is never decoded, so needs no library.  A codec
    that can be neither relayed nor transcoded is useless: each gives a warning line
    (returned for the service to log) saying why — transcoding is off, its library is
    missing (``libraries``: the codec keys whose library loads,
    ``wcsgw.media.codeclibs.available()``; None: assume missing; the Debian package to
    install is named), or the transcoder cannot pair it.  When a leg is left with no usable
    codec at all no call could ever work, and start-up is refused: ConfigError naming the
    key."""
    from wcsgw.config import ConfigError

    loaded = frozenset(libraries or ())
    on = policy.transcoding

    def why(entry: Entry, other: str) -> str:
        if not on:
            return f"not in {other}, and codecs.transcoding is false"
        if entry.key in loaded or entry.package is None:
            return "the media bridge cannot transcode it yet"
        return f"its library is missing: install the Debian package {entry.package}"

    relayable = [e for e in policy.sip if e in policy.webrtc]
    legs = (
        ("codecs.sip", "codecs.webrtc", "is left out of SIP offers",
         [e for e in policy.sip if e not in relayable and not (on and policy.can_transcode(e))],
         policy.sip),
        ("codecs.webrtc", "codecs.sip", "is not offered to browsers",
         [e for e in policy.webrtc if e not in relayable
          and not (on and policy.can_transcode(e, browser_side=True))],
         policy.webrtc),
    )
    warnings: list[str] = []
    for key, other, effect, useless, listed in legs:
        if useless and len(useless) == len(listed):
            reasons = "; ".join(f"{e.label}: {why(e, other)}" for e in useless)
            raise ConfigError(key, f"no codec is usable: {reasons}")
        warnings += [f"{key}: {e.label} {effect}: {why(e, other)}" for e in useless]
    return warnings
