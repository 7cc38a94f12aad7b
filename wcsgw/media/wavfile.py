"""Server-side media for REST calls: play a WAV file into a call as G.711, record the far end's
G.711 into a WAV file.  Sans-IO in the sense of the other media modules: no timers, no sockets —
the call layer asks :class:`WavSource` for the next 20 ms payload on its own 20 ms cadence and
hands every received payload (or RTP packet) to :class:`WavRecorder`.

Reading: RIFF/WAVE with 16-bit PCM samples (format tag 1, or WAVE_FORMAT_EXTENSIBLE with the
PCM sub-format, as Audacity and sox write for some layouts), any number of channels (mixed down
to mono by averaging) and any sample rate from 1 kHz to 384 kHz.  Python 3.11's :mod:`wave`
refuses WAVE_FORMAT_EXTENSIBLE, so the header is parsed here; the samples are read lazily in
small blocks, so a long file is never held in memory.

Rate conversion to 8 kHz, from any rate, is :class:`wcsgw.media.resample.Resampler`, the
transcoder's (libspeexdsp): any ratio (the 44.1 kHz family included), its cut-off set by the
lower of the two rates (so a 6 kHz file's images are removed too), flat through the telephone
band, aliases and images below the int16 floor.

Writing: 8 kHz mono 16-bit PCM via :mod:`wave`, whose header is rewritten on every write, so the
file on disk is a valid WAV at every moment (a crash loses at most the packets not yet written).
Payloads are placed by RTP timestamp: a gap becomes silence, a reordered packet within 60 ms is
put back in its place, a duplicate is dropped, and a jump of more than ``max_gap`` seconds (or a
new SSRC) is taken as a new stream that continues where the file is, not as hours of silence.
"""

from __future__ import annotations

import struct
import wave
from pathlib import Path
from typing import BinaryIO, Iterator

import attr
import numpy as np

from wcsgw.media import g711
from wcsgw.media.resample import Resampler
from wcsgw.media.rtp import RtpError, parse_rtp

__all__ = [
    "FRAME_SAMPLES",
    "RATE",
    "WavError",
    "WavFormat",
    "WavRecorder",
    "WavSource",
    "read_wav_format",
]

RATE = 8000  #: G.711 sample rate
FRAME_SAMPLES = 160  #: 20 ms at 8 kHz
_CODECS = ("PCMU", "PCMA")
_STATIC_PT = {0: "PCMU", 8: "PCMA"}
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


class WavSource:
    """20 ms G.711 payloads (160 bytes) from a WAV file, as an iterator.

    ``next(source)`` gives the next payload; at the end of the file the iterator stops, or
    with ``loop=True`` starts over (seamlessly: the resampler keeps its state).  The last
    payload is padded with silence.  :attr:`format` is the file's layout, :attr:`duration` its
    length in seconds.  Close with :meth:`close` (or use ``with``).
    """

    def __init__(self, path: str | Path, codec: str, *, loop: bool = False) -> None:
        if codec.upper() not in _CODECS:
            raise ValueError(f"codec must be PCMU or PCMA, not {codec!r}")
        self.codec = codec.upper()
        self.loop = loop
        self._file: BinaryIO = open(path, "rb")
        try:
            self.format = _read_format(self._file)
            if self.format.frames == 0:
                raise WavError("the file holds no samples")
        except BaseException:
            self._file.close()
            raise
        rate = self.format.sample_rate
        self._resampler = Resampler(rate, RATE)
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

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        payload = self.read()
        if payload is None:
            raise StopIteration
        return payload

    def read(self) -> bytes | None:
        """The next 20 ms payload, or None at the end (never None with ``loop``)."""
        while len(self._pending) < FRAME_SAMPLES and self._remaining_real is None:
            self._fill()
        if self._remaining_real is not None:
            if self._remaining_real <= 0:
                return None
            self._remaining_real -= FRAME_SAMPLES
            if len(self._pending) < FRAME_SAMPLES:
                self._pending = np.concatenate(
                    (self._pending, np.zeros(FRAME_SAMPLES - len(self._pending), np.float32)))
        frame, self._pending = self._pending[:FRAME_SAMPLES], self._pending[FRAME_SAMPLES:]
        self.frames_sent += 1
        return g711.encode(self.codec, frame)

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


class WavRecorder:
    """Writes received G.711 to an 8 kHz mono 16-bit WAV file, placed by RTP timestamp.

    :meth:`write` takes a payload with its RTP timestamp (and codec; default ``codec``);
    :meth:`write_rtp` takes a whole RTP packet and skips anything that is not PCMU/PCMA
    (telephone-event, comfort noise).  Packets are held back ``reorder_window`` seconds so a
    late one still lands in place; :meth:`close` writes what is held and closes the file.
    Counters: ``samples_written``, ``late`` (dropped: older than what is written),
    ``duplicates``, ``discontinuities``.
    """

    def __init__(self, path: str | Path, codec: str = "PCMU", *, reorder_window: float = 0.06,
                 max_gap: float = 10.0) -> None:
        if codec.upper() not in _CODECS:
            raise ValueError(f"codec must be PCMU or PCMA, not {codec!r}")
        self.codec = codec.upper()
        self.path = Path(path)
        self._reorder = int(reorder_window * RATE)
        self._max_gap = int(max_gap * RATE)
        self._wav = wave.open(str(self.path), "wb")
        self._wav.setnchannels(1)
        self._wav.setsampwidth(2)
        self._wav.setframerate(RATE)
        self._wav.writeframes(b"")  # the header is on disk from the start
        self._base: int | None = None  # RTP timestamp of file sample 0 (mod 2**32)
        self._ssrc: int | None = None
        self._pending: dict[int, np.ndarray] = {}  # file position -> samples
        self._end = 0  # one past the last pending/written sample
        self.samples_written = 0
        self.late = 0
        self.duplicates = 0
        self.discontinuities = 0
        self.closed = False

    @property
    def duration(self) -> float:
        return self.samples_written / RATE

    def __enter__(self) -> "WavRecorder":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def write_rtp(self, packet: bytes) -> bool:
        """Record one RTP packet; False when it is not G.711 audio (or not RTP)."""
        try:
            header = parse_rtp(packet)
        except RtpError:
            return False
        codec = _STATIC_PT.get(header.payload_type)
        if codec is None:
            return False
        payload = header.payload(packet)
        if self._ssrc is not None and header.ssrc != self._ssrc:
            self._rebase(header.timestamp)
        self._ssrc = header.ssrc
        self.write(payload, header.timestamp, codec)
        return True

    def write(self, payload: bytes, timestamp: int, codec: str | None = None) -> None:
        if self.closed:
            raise ValueError("the recorder is closed")
        if not payload:
            return
        samples = g711.decode(codec or self.codec, payload)
        if self._base is None:
            self._base = timestamp & 0xFFFFFFFF
        # Signed offset of this packet from the end of what we have, modulo 2**32.
        expected = (self._base + self._end) & 0xFFFFFFFF
        delta = ((timestamp - expected + 0x80000000) & 0xFFFFFFFF) - 0x80000000
        if delta > self._max_gap or delta < -RATE:
            self._rebase(timestamp)  # a new stream: continue at the end, no padding
            delta = 0
        position = self._end + delta
        if position + len(samples) <= self.samples_written:
            self.late += 1
            return
        if position in self._pending:
            self.duplicates += 1
            return
        if position < self.samples_written:  # straddles the written edge: keep the new part
            samples = samples[self.samples_written - position :]
            position = self.samples_written
        self._pending[position] = samples
        self._end = max(self._end, position + len(samples))
        self._commit(self._end - self._reorder)

    def _rebase(self, timestamp: int) -> None:
        """The next packet with ``timestamp`` goes right after what we have."""
        self.discontinuities += 1
        self._base = (timestamp - self._end) & 0xFFFFFFFF

    def _commit(self, upto: int) -> None:
        """Write everything before file position ``upto``: pending data, silence in the gaps."""
        chunks: list[np.ndarray] = []
        cursor = self.samples_written
        for position in sorted(p for p in self._pending if p < upto):
            samples = self._pending.pop(position)
            if position < cursor:  # overlaps what is written: keep the new part only
                samples = samples[cursor - position :]
                position = cursor
            if position > cursor:
                chunks.append(np.zeros(position - cursor, dtype=np.int16))
            chunks.append(samples.astype(np.int16, copy=False))
            cursor = position + len(samples)
        if chunks:
            data = np.concatenate(chunks).astype("<i2")
            self._wav.writeframes(data.tobytes())
            self.samples_written = cursor

    def close(self) -> None:
        """Write what is held back and close the file (a valid WAV).  Idempotent."""
        if self.closed:
            return
        try:
            self._commit(self._end)
        finally:
            self.closed = True
            self._wav.close()
