"""Server-side media for REST calls: play a WAV file into a call in any codec the transcoder
speaks, record what the far end sends into a WAV file.  Sans-IO in the sense of the other media
modules: no timers, no sockets — the call layer asks :class:`WavSource` for the next packet's
payload on its own packet cadence and hands every received RTP packet (or payload) to
:class:`~wcsgw.media.wavrecord.WavRecorder`.

The codecs are :func:`wcsgw.media.audiocodec.make_codec`'s (PCMU, PCMA, G.729, Speex nb/wb,
Opus, G.722): a file call offers the SIP side whatever ``[codecs] sip`` lists and this machine
can encode, so a G.729-only or Opus/G.722 PBX gets the file too, and nothing is transcoded
between two codecs on the way (the WAV is encoded once, the answer is decoded once).

Reading: RIFF/WAVE with 16-bit PCM samples (format tag 1, or WAVE_FORMAT_EXTENSIBLE with the
PCM sub-format, as Audacity and sox write for some layouts), any number of channels (mixed down
to mono by averaging) and any sample rate from 1 kHz to 384 kHz.  Python 3.11's :mod:`wave`
refuses WAVE_FORMAT_EXTENSIBLE, so the header is parsed here; the samples are read lazily in
small blocks, so a long file is never held in memory.

Rate conversion to the codec's sample rate (8 kHz G.711/G.729/Speex NB, 16 kHz G.722/Speex WB,
48 kHz Opus), from any rate, is :class:`wcsgw.media.resample.Resampler`, the transcoder's
(libspeexdsp): any ratio (the 44.1 kHz family included), its cut-off set by the lower of the two
rates (so a 6 kHz file's images are removed too), flat through the codec's band, aliases and
images below the int16 floor.

Recording (:class:`~wcsgw.media.wavrecord.WavRecorder`, and
:func:`~wcsgw.media.wavrecord.create_new` for its file) is in :mod:`wcsgw.media.wavrecord`.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO, Iterator

import attr
import numpy as np

from wcsgw.media.audiocodec import AudioCodec, as_int16, make_codec, packet_samples
from wcsgw.media.resample import Resampler

__all__ = [
    "FRAME_SAMPLES",
    "RATE",
    "WavError",
    "WavFormat",
    "WavSource",
    "read_wav_format",
]

RATE = 8000  #: G.711 sample rate
FRAME_SAMPLES = 160  #: 20 ms at 8 kHz
_PCM = 1
_EXTENSIBLE = 0xFFFE
#: KSDATAFORMAT_SUBTYPE_PCM: the sub-format GUID of PCM in WAVE_FORMAT_EXTENSIBLE (bytes as
#: they are stored: the tag 0x0001 little-endian, then the fixed GUID tail).
_PCM_GUID = b"\x01\x00\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"


class WavError(ValueError):
    """The file is not a WAV this module can play; the message says why."""


@attr.frozen
class WavFormat:
    """What :func:`read_wav_format` found: the PCM layout and where the samples are."""

    sample_rate: int
    channels: int
    bits_per_sample: int
    data_offset: int  #: byte offset of the first sample in the file
    data_size: int  #: bytes of whole sample frames

    @property
    def frame_bytes(self) -> int:
        return self.channels * self.bits_per_sample // 8

    @property
    def frames(self) -> int:
        return self.data_size // self.frame_bytes

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate


def _read_format(f: BinaryIO) -> WavFormat:
    header = f.read(12)
    if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
        raise WavError("not a RIFF/WAVE file")
    fmt: tuple[int, int, int, int] | None = None
    while True:
        chunk = f.read(8)
        if len(chunk) < 8:
            raise WavError("no data chunk" if fmt else "no fmt chunk")
        cid, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
        if cid == b"fmt ":
            body = f.read(size)
            if len(body) < 16:
                raise WavError("fmt chunk too short")
            tag, channels, rate, _byte_rate, _align, bits = struct.unpack("<HHIIHH", body[:16])
            if tag == _EXTENSIBLE:
                if len(body) < 40 or body[24:40] != _PCM_GUID:
                    raise WavError("WAVE_FORMAT_EXTENSIBLE with a sub-format other than PCM")
                tag = _PCM
            fmt = (tag, channels, rate, bits)
        elif cid == b"data":
            if fmt is None:
                raise WavError("data chunk before the fmt chunk")
            tag, channels, rate, bits = fmt
            if tag != _PCM:
                raise WavError(f"format tag {tag:#x}: only PCM is supported")
            if bits != 16:
                raise WavError(f"{bits}-bit samples: only 16-bit PCM is supported")
            if not 1 <= channels <= 8:
                raise WavError(f"{channels} channels")
            if not 1000 <= rate <= 384000:
                raise WavError(f"sample rate {rate} Hz is out of range (1 kHz .. 384 kHz)")
            offset = f.tell()
            available = f.seek(0, 2) - offset  # a truncated file: play what is there
            frame = channels * 2
            usable = min(size, max(available, 0))
            return WavFormat(rate, channels, bits, offset, usable - usable % frame)
        else:
            f.seek(size + (size & 1), 1)  # chunks are word-aligned
        if cid == b"fmt " and size & 1:
            f.seek(1, 1)


def read_wav_format(path: str | Path) -> WavFormat:
    """The PCM layout of a WAV file, or :class:`WavError` (OSError when it cannot be read)."""
    with open(path, "rb") as f:
        return _read_format(f)


def _codec_from(codec: str | AudioCodec, clock_rate: int | None,
                fmtp: dict[str, str | None] | None) -> tuple[AudioCodec, bool]:
    """(codec instance, whether we made it and so must close it)."""
    if isinstance(codec, str):
        return make_codec(codec, clock_rate, fmtp), True
    return codec, False


class WavSource:
    """One packet's payload at a time from a WAV file, in ``codec``, as an iterator.

    ``codec`` is a name as in the SDP rtpmap (``"PCMU"``, ``"G722"``, ``"opus"``, ``"speex"``
    with ``clock_rate`` 16000 for wideband; ``fmtp``: the far end's fmtp, e.g. its Opus
    ``maxaveragebitrate``) or an :class:`~wcsgw.media.audiocodec.AudioCodec` the caller owns.
    ``ptime`` is the packet duration in ms, rounded to the codec's frames as the transcoder
    does (:func:`~wcsgw.media.audiocodec.packet_samples`); :attr:`ptime` and
    :attr:`rtp_ticks` (the RTP timestamp step per packet: G.722 counts 8000 a second) are what
    is used.  ``next(source)`` gives the next payload; at the end of the file the iterator
    stops, or with ``loop=True`` starts over (seamlessly: the resampler keeps its state).  The
    last payload is padded with silence; :meth:`silence` is one packet of it, for after the
    end.  :attr:`format` is the file's layout, :attr:`duration` its length in seconds.  Close
    with :meth:`close` (or use ``with``).  Raises :class:`~wcsgw.media.audiocodec.CodecError`
    (a ValueError) for a codec that is unknown or whose library is missing.
    """

    def __init__(self, path: str | Path, codec: str | AudioCodec = "PCMU", *, loop: bool = False,
                 ptime: int = 20, clock_rate: int | None = None,
                 fmtp: dict[str, str | None] | None = None) -> None:
        self._codec, self._owns_codec = _codec_from(codec, clock_rate, fmtp)
        #: the codec's rtpmap name in upper case ("PCMU", "G722", "OPUS")
        self.codec = self._codec.name.upper()
        self.sample_rate = self._codec.sample_rate
        self.packet_samples = packet_samples(self._codec, ptime)
        self.ptime = 1000 * self.packet_samples // self.sample_rate
        self.rtp_ticks = self.packet_samples * self._codec.rtp_clock // self.sample_rate
        self.loop = loop
        try:
            self._file: BinaryIO = open(path, "rb")
        except BaseException:
            self._close_codec()
            raise
        try:
            self.format = _read_format(self._file)
            if self.format.frames == 0:
                raise WavError("the file holds no samples")
        except BaseException:
            self._file.close()
            self._close_codec()
            raise
        rate = self.format.sample_rate
        self._resampler = Resampler(rate, self.sample_rate)
        self._block = max(1, rate // 50)  # about 20 ms of input
        self._position = 0  # frames read from the current pass
        self._pending = np.zeros(0, dtype=np.float32)  # resampled, not yet sent
        self._remaining_real: int | None = None  # output samples left at the end (no loop)
        self._file.seek(self.format.data_offset)
        self.frames_sent = 0

    @property
    def duration(self) -> float:
        return self.format.duration

    def __enter__(self) -> "WavSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._file.close()
        self._close_codec()

    def _close_codec(self) -> None:
        if self._owns_codec:
            self._owns_codec = False
            self._codec.close()

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        payload = self.read()
        if payload is None:
            raise StopIteration
        return payload

    def silence(self) -> bytes:
        """One packet of silence in the codec (keeps the stream going after the file ends;
        encoded, so a stateful encoder moves on smoothly)."""
        return self._codec.encode(np.zeros(self.packet_samples, dtype=np.int16))

    def read(self) -> bytes | None:
        """The next packet's payload, or None at the end (never None with ``loop``)."""
        n = self.packet_samples
        while len(self._pending) < n and self._remaining_real is None:
            self._fill()
        if self._remaining_real is not None:
            if self._remaining_real <= 0:
                return None
            self._remaining_real -= n
            if len(self._pending) < n:
                self._pending = np.concatenate(
                    (self._pending, np.zeros(n - len(self._pending), np.float32)))
        frame, self._pending = self._pending[:n], self._pending[n:]
        self.frames_sent += 1
        return self._codec.encode(as_int16(frame))

    def _fill(self) -> None:
        """Read one block (wrapping around with ``loop``), resample, append to the queue."""
        samples = self._read_frames(self._block)
        if len(samples) < self._block:  # end of file without loop
            out = self._resampler.process(samples)
            self._pending = np.concatenate((self._pending, out))
            self._remaining_real = len(self._pending)
            return
        self._pending = np.concatenate((self._pending, self._resampler.process(samples)))

    def _read_frames(self, count: int) -> np.ndarray:
        """Up to ``count`` mono float frames; wraps to the start with ``loop``."""
        parts: list[np.ndarray] = []
        needed = count
        while needed:
            left = self.format.frames - self._position
            if left == 0:
                if not self.loop:
                    break
                self._file.seek(self.format.data_offset)
                self._position = 0
                left = self.format.frames
            take = min(needed, left)
            raw = self._file.read(take * self.format.frame_bytes)
            got = len(raw) // self.format.frame_bytes
            if got == 0:  # the file shrank under us: this is the end, loop or not
                self._position = self.format.frames
                self.loop = False
                break
            pcm = np.frombuffer(raw[: got * self.format.frame_bytes], dtype="<i2")
            if self.format.channels > 1:
                mono = pcm.reshape(-1, self.format.channels).astype(np.float32).mean(axis=1)
            else:
                mono = pcm.astype(np.float32)
            parts.append(mono)
            self._position += got
            needed -= got
        if not parts:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate(parts)
