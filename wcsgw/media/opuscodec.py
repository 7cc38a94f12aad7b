"""Opus behind the :class:`~wcsgw.media.audiocodec.AudioCodec` interface: mono (PCM at 48 kHz
unless the transcoder asks for its other leg's rate, see :class:`OpusCodec`) over
:mod:`wcsgw.media.opus` (which owns the libopus calls), and the remote side's fmtp turned into
our encoder's settings (:func:`opus_options`).  Like the other codec modules (g729, speex,
g722), :func:`~wcsgw.media.audiocodec.make_codec` imports it only when an Opus codec is made;
libopus itself is loaded when the first :class:`OpusCodec` is, so a machine without it gets a
:class:`~wcsgw.media.audiocodec.CodecError` naming the Debian package, not an ImportError.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from wcsgw.media.audiocodec import CodecError, as_int16

__all__ = ["OpusCodec", "opus_options", "SAMPLE_RATES"]


_BANDWIDTH_BY_PLAYBACK_RATE = ((8000, "narrowband"), (12000, "mediumband"), (16000, "wideband"),
                               (24000, "superwideband"))


#: PCM rates libopus encodes from and decodes to (its RTP clock is 48 kHz whatever the rate)
SAMPLE_RATES = (8000, 12000, 16000, 24000, 48000)


class OpusCodec:
    """Opus, mono, over :mod:`wcsgw.media.opus` (which owns the libopus calls).

    ``sample_rate`` is the PCM rate on *our* side, 48 kHz unless asked: the transcoder asks
    for the rate of the other leg's audio (8 kHz for G.711/G.729, 16 kHz for G.722), because
    libopus takes and gives PCM at 8-48 kHz itself. Its SILK layer codes narrowband speech at
    8 kHz internally anyway, so a 48 kHz interface only adds a resampler on each side of the
    codec (ours 8k->48k, libopus's own 48k->8k) for nothing; at 8 kHz both are gone and
    the encoder also skips its 48 kHz analysis. The RTP clock stays 48 kHz (RFC 7587), so a
    20 ms packet is 960 ticks whatever ``sample_rate`` is.

    ``encode`` takes exactly one Opus frame (2.5..60 ms; 20 ms is what we send). ``conceal``
    runs the decoder's own PLC (``opus_decode`` with no data), which only makes whole 2.5 ms
    steps: a request that is not a multiple of 2.5 ms is rounded up and the surplus (under
    2.5 ms of synthetic audio) dropped.
    """

    name = "opus"
    rtp_clock = 48000

    def __init__(
        self,
        *,
        sample_rate: int = 48000,
        complexity: int = 5,
        bitrate: int | None = None,
        max_bandwidth: str | None = None,
        fec: bool = False,
        packet_loss_percent: int = 0,
        dtx: bool = False,
    ) -> None:
        try:
            from wcsgw.media import opus
        except (ImportError, OSError) as exc:  # opuslib raises at import without libopus
            raise CodecError(f"opus unavailable ({exc}); install the Debian package libopus0") from None
        if sample_rate not in SAMPLE_RATES:
            raise CodecError(f"opus: sample_rate must be one of {SAMPLE_RATES}, not {sample_rate!r}")
        self._opus = opus
        self.sample_rate = sample_rate
        self.frame_samples = sample_rate // 50
        self._step = sample_rate // 400  # 2.5 ms, the step of the decoder's PLC and FEC
        self._frames = tuple(n * sample_rate // 48000 for n in opus.VALID_FRAME_SIZES_48K)
        self._max_samples = opus.MAX_FRAME_SAMPLES * sample_rate // 48000
        try:
            self._encoder: Any = opus.OpusEncoder(
                sample_rate,
                1,
                complexity=complexity,
                bitrate=bitrate,
                max_bandwidth=max_bandwidth,
                fec=fec,
                packet_loss_percent=packet_loss_percent,
                dtx=dtx,
            )
            self._decoder: Any = opus.OpusDecoder(sample_rate, 1)
        except (opus.OpusError, KeyError) as exc:
            raise CodecError(f"opus: bad options ({exc})") from None

    def encode(self, pcm: np.ndarray) -> bytes:
        pcm = as_int16(pcm)
        if len(pcm) not in self._frames:
            raise CodecError(f"opus: {len(pcm)} samples is not one Opus frame {self._frames}")
        if self._encoder is None:
            raise CodecError("opus: codec closed")
        try:
            encoded: bytes = self._encoder.encode(pcm)
        except self._opus.OpusError as exc:
            raise CodecError(f"opus: encode failed ({exc})") from None
        return encoded

    def decode(self, payload: bytes) -> np.ndarray:
        if not payload:
            raise CodecError("opus: empty payload")
        if self._decoder is None:
            raise CodecError("opus: codec closed")
        try:
            decoded: np.ndarray = self._decoder.decode(bytes(payload))
        except self._opus.OpusError as exc:
            raise CodecError(f"opus: cannot decode a {len(payload)}-byte payload ({exc})") from None
        return decoded

    def decode_fec(self, payload: bytes, samples: int) -> np.ndarray:
        """Stand-in for the ``samples`` lost just before ``payload``, from the in-band FEC
        (LBRR) copy that ``payload`` carries when the sender used ``useinbandfec``; libopus
        falls back to its PLC when there is none. Decode ``payload`` itself afterwards."""
        if not payload:
            raise CodecError("opus: empty payload")
        if self._decoder is None:
            raise CodecError("opus: codec closed")
        if samples <= 0 or samples % self._step or samples > self._max_samples:
            raise CodecError(f"opus: FEC needs a multiple of 2.5 ms up to 120 ms, not {samples} samples")
        dec = self._decoder
        last = dec.last_frame_samples
        dec.last_frame_samples = samples
        try:
            concealed: np.ndarray = dec.decode(bytes(payload), fec=True)
        except self._opus.OpusError as exc:
            raise CodecError(f"opus: FEC decode failed ({exc})") from None
        finally:
            dec.last_frame_samples = last
        return concealed

    def conceal(self, samples: int) -> np.ndarray:
        if samples <= 0:
            return np.zeros(0, dtype=np.int16)
        if self._decoder is None:
            raise CodecError("opus: codec closed")
        dec = self._decoder
        last = dec.last_frame_samples
        want = -(-samples // self._step) * self._step
        parts = []
        try:
            while want > 0:
                step = min(want, self._max_samples)
                dec.last_frame_samples = step
                parts.append(dec.decode(None))
                want -= step
        except self._opus.OpusError as exc:
            raise CodecError(f"opus: concealment failed ({exc})") from None
        finally:
            dec.last_frame_samples = last
        return np.concatenate(parts)[:samples] if len(parts) > 1 else parts[0][:samples]

    def close(self) -> None:
        for attr in ("_encoder", "_decoder"):
            obj = getattr(self, attr, None)
            if obj is not None:
                obj.__del__()
                setattr(self, attr, None)


def opus_options(fmtp: dict[str, str | None], options: dict[str, Any]) -> dict[str, Any]:
    """fmtp parameters of the *remote* side (what it wants to receive, RFC 7587 §6.1) turned
    into our encoder's settings; explicit ``options`` win."""
    out: dict[str, Any] = {}
    if fmtp.get("maxaveragebitrate"):
        try:
            out["bitrate"] = max(6000, min(510000, int(fmtp["maxaveragebitrate"] or 0)))
        except ValueError:
            pass
    if fmtp.get("useinbandfec") == "1":
        out["fec"] = True
        out["packet_loss_percent"] = 10
    if fmtp.get("usedtx") == "1":
        out["dtx"] = True
    rate = fmtp.get("maxplaybackrate")
    if rate:
        try:
            r = int(rate)
        except ValueError:
            r = 48000
        for limit, band in _BANDWIDTH_BY_PLAYBACK_RATE:
            if r <= limit:
                out["max_bandwidth"] = band
                break
    out.update(options)
    return out
