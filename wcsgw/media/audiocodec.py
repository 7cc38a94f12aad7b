"""One interface for every audio codec the transcoder speaks, and the factory that makes them.

The transcoder (:mod:`wcsgw.media.transcode`) should not know how G.729 marks a SID frame or
that G.722 runs its RTP clock at half its sample rate. Each codec therefore sits behind
:class:`AudioCodec`: int16 mono PCM at the codec's own ``sample_rate`` in, one RTP payload out,
and back; plus ``conceal()`` for a lost packet, done by the codec's own packet-loss
concealment where it has one, because only the decoder knows how to continue its own state.

The native codecs (bcg729, libspeex, spandsp) are reached through ``ctypes``, not compiled
extensions: the Debian packages ship the shared libraries, the C APIs are a handful of
functions each, and ctypes keeps the gateway a pure-Python install. A library that is missing
makes :func:`make_codec` raise :class:`CodecError` naming the Debian package, so a config that
asks for G.729 on a machine without ``libbcg729-0`` fails at start with a clear message, and
:func:`wcsgw.media.codeclibs.available` (which loads only the libraries) lets the SDP layer
offer only what this machine can transcode.

Codec modules import this one (for :class:`CodecError` and :func:`load_library`); this module
imports them only inside the factories, so loading it never loads a native library.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from typing import Any, Callable, Protocol, runtime_checkable

import numpy as np

__all__ = [
    "concealment",
    "AudioCodec",
    "CodecError",
    "make_codec",
    "load_library",
    "as_int16",
    "packet_samples",
    "OPUS_FRAMES",
    "G711Codec",
]


class CodecError(ValueError):
    """A payload the codec cannot parse, PCM of the wrong length, an unknown codec or a
    missing native library. A ``ValueError`` so that callers that already catch bad input
    (the bridge drops a bad packet and counts it) catch this too."""


@runtime_checkable
class AudioCodec(Protocol):
    """Encoder and decoder of one codec, for one call leg (both directions' state)."""

    #: canonical lower-case key: "pcmu", "pcma", "g729", "speex", "opus", "g722"
    name: str
    #: PCM rate in and out of this codec (g722: 16000, speex wb: 16000, opus: 48000 or the
    #: rate asked for, 8000..48000)
    sample_rate: int
    #: RTP timestamp clock (g722: 8000, opus: 48000, speex wb: 16000)
    rtp_clock: int
    #: the encoder's frame at ``sample_rate`` (g711/g729: 80, speex nb 160, wb 320, g722 160,
    #: opus 960 at 48 kHz)
    frame_samples: int

    def encode(self, pcm: np.ndarray) -> bytes:
        """int16 mono, ``len`` a multiple of ``frame_samples`` (opus: exactly one of its valid
        sizes, 2.5..60 ms) -> one RTP payload holding all those frames."""

    def decode(self, payload: bytes) -> np.ndarray:
        """One RTP payload -> int16 mono at ``sample_rate`` (all frames in it).
        Raises :class:`CodecError` on a payload it cannot parse."""

    def conceal(self, samples: int) -> np.ndarray:
        """int16 audio to stand in for ``samples`` lost samples, from the codec's own
        packet-loss concealment. Keeps decoder state continuous."""

    def close(self) -> None:
        """Free native state now (it is freed on garbage collection too)."""


# --------------------------------------------------------------------------- native libraries

_LIBRARIES: dict[str, ctypes.CDLL] = {}


#: C signature of a native function: (argtypes, restype)
Signature = tuple[Any, Any]
_DECLARED: set[tuple[str, str]] = set()


def load_library(
    soname: str, debian_package: str, signatures: dict[str, Signature] | None = None
) -> ctypes.CDLL:
    """``ctypes.CDLL(soname)`` once per process; :class:`CodecError` naming the Debian
    package when it is not installed.

    ``signatures`` (function name -> (argtypes, restype)) are declared on the library the first
    time they are asked for: without them ctypes passes and returns C ``int``, which truncates
    the 64-bit state pointers these libraries hand out. Two modules may share one library
    (spandsp: G.722 and PLC), each declaring the functions it calls."""
    lib = _LIBRARIES.get(soname)
    if lib is None:
        try:
            lib = ctypes.CDLL(soname)
        except OSError as exc:
            raise CodecError(
                f"{soname} cannot be loaded ({exc}); install the Debian package {debian_package}"
            ) from None
        _LIBRARIES[soname] = lib
    for name, (argtypes, restype) in (signatures or {}).items():
        if (soname, name) not in _DECLARED:
            func = getattr(lib, name)
            func.argtypes = argtypes
            func.restype = restype
            _DECLARED.add((soname, name))
    return lib


def as_int16(pcm: np.ndarray) -> np.ndarray:
    """Contiguous int16 view/copy of ``pcm`` (float input is rounded and saturated)."""
    pcm = np.asarray(pcm)
    if pcm.dtype != np.int16:
        pcm = np.clip(np.rint(pcm), -32768, 32767).astype(np.int16)
    return np.ascontiguousarray(pcm)


def concealment(codec: AudioCodec, samples: int) -> tuple[np.ndarray, bool]:
    """Exactly ``samples`` of ``codec``'s loss concealment, padded with silence; False when
    the codec failed (then it is all silence).  The recorders' one way to fill a gap."""
    try:
        pcm, ok = as_int16(codec.conceal(samples))[:samples], True
    except (CodecError, ValueError):
        pcm, ok = np.zeros(0, dtype=np.int16), False
    if len(pcm) < samples:
        pcm = np.concatenate((pcm, np.zeros(samples - len(pcm), dtype=np.int16)))
    return pcm, ok


def check_frames(codec: AudioCodec, pcm: np.ndarray) -> int:
    """Number of whole frames in ``pcm``; :class:`CodecError` if it is not a positive
    multiple of the codec's frame."""
    n = len(pcm)
    if n == 0 or n % codec.frame_samples:
        raise CodecError(
            f"{codec.name}: {n} samples is not a positive multiple of the {codec.frame_samples}-"
            "sample frame"
        )
    return n // codec.frame_samples


#: Opus frame sizes at 48 kHz we encode (10..60 ms; shorter ones cannot use SILK)
OPUS_FRAMES = (480, 960, 1920, 2880)


def packet_samples(codec: AudioCodec, ptime_ms: int) -> int:
    """Samples (at the codec's sample rate) in one packet of ``ptime_ms``: the nearest whole
    number of the codec's frames (Speex at 30 ms sends 40 ms: its frame is 20 ms); for Opus the
    longest valid frame not above it (30 ms -> 20 ms; one frame per packet)."""
    n = codec.sample_rate * max(1, ptime_ms) // 1000
    if codec.name == "opus":  # OPUS_FRAMES are at 48 kHz; an Opus codec may run at 8-48 kHz
        frames = [s * codec.sample_rate // 48000 for s in OPUS_FRAMES]
        fitting = [s for s in frames if s <= n]
        return fitting[-1] if fitting else frames[0]
    frame = codec.frame_samples
    return max(frame, int(round(n / frame)) * frame)


# --------------------------------------------------------------------------- G.711


class G711Codec:
    """PCMU / PCMA: table look-ups from :mod:`wcsgw.media.g711`, spandsp PLC for losses.

    G.711 is sample-by-sample, so ``encode`` takes any non-zero length (``frame_samples`` = 80,
    10 ms, is only the nominal unit). Concealment is spandsp's ``plc_*`` (pitch-synchronous
    repetition of the last period, fading to silence over 50 ms, with an overlap-add back into
    the first real audio): every decoded block is fed to it so it always holds the history it
    needs. Without libspandsp the codec still works and conceals by repeating the last 10 ms
    with a fade-out.
    """

    sample_rate = 8000
    rtp_clock = 8000
    frame_samples = 80

    def __init__(self, name: str, *, plc: bool = True) -> None:
        from wcsgw.media import g711

        self.name = name.lower()
        if self.name == "pcmu":
            self._enc, self._dec = g711.ULAW_ENCODE, g711.ULAW_DECODE
        elif self.name == "pcma":
            self._enc, self._dec = g711.ALAW_ENCODE, g711.ALAW_DECODE
        else:
            raise CodecError(f"not a G.711 codec: {name!r}")
        self._plc: Any = None
        if plc:
            try:
                from wcsgw.media.plc import Concealer

                self._plc = Concealer()
            except CodecError:
                self._plc = None
        if self._plc is None:
            from wcsgw.media.plc import FadeConcealer

            self._plc = FadeConcealer(self.frame_samples)

    def encode(self, pcm: np.ndarray) -> bytes:
        pcm = as_int16(pcm)
        if len(pcm) == 0:
            raise CodecError(f"{self.name}: nothing to encode")
        return self._enc.take(pcm.view(np.uint16)).tobytes()

    def decode(self, payload: bytes) -> np.ndarray:
        if not payload:
            raise CodecError(f"{self.name}: empty payload")
        if self._plc is None:
            raise CodecError(f"{self.name}: codec closed")
        pcm = self._dec.take(np.frombuffer(payload, dtype=np.uint8))
        received: np.ndarray = self._plc.received(pcm)
        return received

    def conceal(self, samples: int) -> np.ndarray:
        if self._plc is None:
            raise CodecError(f"{self.name}: codec closed")
        filled: np.ndarray = self._plc.fill(samples)
        return filled

    def close(self) -> None:
        plc, self._plc = self._plc, None
        if plc is not None:
            plc.close()


# --------------------------------------------------------------------------- registry


def _make_g711(name: str) -> Callable[..., AudioCodec]:
    def factory(clock_rate: int | None, fmtp: dict[str, str | None], options: dict[str, Any]) -> AudioCodec:
        if clock_rate not in (None, 8000):
            raise CodecError(f"{name}: clock rate must be 8000, not {clock_rate}")
        return G711Codec(name, **options)

    return factory


def _make_opus(clock_rate: int | None, fmtp: dict[str, str | None], options: dict[str, Any]) -> AudioCodec:
    from wcsgw.media.opuscodec import OpusCodec, opus_options

    if clock_rate not in (None, 48000):
        raise CodecError(f"opus: clock rate must be 48000, not {clock_rate}")
    return OpusCodec(**opus_options(fmtp, options))


def _make_g729(clock_rate: int | None, fmtp: dict[str, str | None], options: dict[str, Any]) -> AudioCodec:
    from wcsgw.media.g729 import G729Codec

    if clock_rate not in (None, 8000):
        raise CodecError(f"g729: clock rate must be 8000, not {clock_rate}")
    # annexb in the fmtp says whether the peer *accepts* SID/no-transmission (RFC 4856,
    # default yes). We send with VAD off unless asked (options vad=True) and the peer allows it.
    peer_annexb = (fmtp.get("annexb") or "yes").lower() != "no"
    vad = bool(options.pop("vad", False)) and peer_annexb
    return G729Codec(vad=vad, **options)


def _make_speex(clock_rate: int | None, fmtp: dict[str, str | None], options: dict[str, Any]) -> AudioCodec:
    from wcsgw.media.speex import SpeexCodec

    rate = 8000 if clock_rate is None else clock_rate
    return SpeexCodec(rate, **options)


def _make_g722(clock_rate: int | None, fmtp: dict[str, str | None], options: dict[str, Any]) -> AudioCodec:
    from wcsgw.media.g722 import G722Codec

    if clock_rate not in (None, 8000):
        raise CodecError(f"g722: the RTP clock rate of G.722 is 8000, not {clock_rate}")
    return G722Codec(**options)


_FACTORIES: dict[str, Callable[[int | None, dict[str, str | None], dict[str, Any]], AudioCodec]] = {
    "pcmu": _make_g711("pcmu"),
    "pcma": _make_g711("pcma"),
    "g729": _make_g729,
    "speex": _make_speex,
    "opus": _make_opus,
    "g722": _make_g722,
}

#: rtpmap spellings that mean one of the keys above
_ALIASES = {"g729a": "g729", "g.729": "g729", "g.722": "g722", "g711u": "pcmu", "g711a": "pcma"}


def make_codec(
    name: str,
    clock_rate: int | None = None,
    fmtp: dict[str, str | None] | None = None,
    **options: Any,
) -> AudioCodec:
    """Factory: ``name`` as in the SDP rtpmap, any case ("PCMU", "PCMA", "G729", "speex",
    "opus", "G722"); ``clock_rate`` selects Speex narrowband (8000) or wideband (16000);
    ``fmtp`` the remote's fmtp parameters, e.g. ``{"annexb": "no"}`` for G.729 or
    ``{"useinbandfec": "1", "maxaveragebitrate": "20000"}`` for Opus; ``options`` go to the
    codec class (opus: sample_rate, complexity, bitrate, max_bandwidth, fec, dtx; speex: quality, complexity;
    g729: vad). Raises :class:`CodecError` for an unknown codec or a missing library."""
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    factory = _FACTORIES.get(key)
    if factory is None:
        raise CodecError(f"unknown audio codec {name!r}; known: {', '.join(sorted(_FACTORIES))}")
    try:
        return factory(clock_rate, dict(fmtp or {}), dict(options))
    except TypeError as exc:  # an option the codec does not take
        raise CodecError(f"{key}: {exc}") from None
    except ImportError as exc:
        raise CodecError(f"{key}: not available ({exc})") from None
