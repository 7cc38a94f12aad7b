"""Recording what the far end of a REST call sends into a WAV file (the other half of
:mod:`wcsgw.media.wavfile`, which plays files and reads their format).  Sans-IO like it: the
call layer hands every received RTP packet (or payload) to :class:`WavRecorder`; the file is
created by :func:`create_new`, which never follows or truncates what a name points at.

Writing: mono 16-bit PCM via :mod:`wave` **at the codec's own sample rate** — 8 kHz for G.711,
G.729 and Speex NB, 16 kHz for G.722 and Speex WB, 48 kHz for Opus.  Why not always 16 kHz:
the decoder's output is written as it is, with no resampler in the way (no filter, no latency,
no lost band: an Opus PBX that sends fullband audio is recorded fullband), and an 8 kHz call is
not stored at twice its size.  The header is rewritten on every write, so the file on disk is a
valid WAV at every moment (a crash loses at most the packets not yet written).

Payloads are placed by RTP timestamp: a reordered packet within 60 ms is put back in its place,
a duplicate is dropped, and a jump of more than ``max_gap`` seconds (or a new SSRC) is taken as
a new stream that continues where the file is, not as hours of silence.  Decoding waits until a
packet's place is final (60 ms of later audio have arrived, or the file is closed), because
every codec but G.711 keeps state from one frame to the next and must see its frames in order.
A hole in time is filled, so the file has none: when sequence numbers are missing before it
(packets were lost) up to ``max_conceal`` (100 ms, as the transcoder) is the codec's own
packet-loss concealment (:meth:`~wcsgw.media.audiocodec.AudioCodec.conceal`) and the rest
silence; when no sequence number is missing (silence suppression, DTX, hold) it is silence.
"""

from __future__ import annotations

import os
import stat
import wave
from pathlib import Path
from typing import BinaryIO

import numpy as np

from wcsgw.media.audiocodec import AudioCodec, CodecError, as_int16, concealment, make_codec
from wcsgw.media.rtp import RtpError, parse_rtp

__all__ = ["WavRecorder", "create_new"]

_G711 = ("pcmu", "pcma")
#: RFC 3551 static payload types of the codecs we record (the rest are dynamic)
_STATIC_PT = {0: "pcmu", 8: "pcma", 9: "g722", 18: "g729"}
#: how many non-audio sequence numbers (telephone-event, CN) are remembered, so that a gap in
#: the audio's sequence numbers they explain is not taken for a loss
_SKIPPED_MEMORY = 256


def create_new(folder: str | Path, name: str, mode: int = 0o640) -> BinaryIO:
    """A new, empty file ``name`` directly inside ``folder``, open for writing.

    Why not ``open(folder / name, "wb")``: that follows a symlink planted at the name and
    truncates whatever it points at, and a name with ``/`` or ``..`` lands anywhere.  Here:

    * ``name`` must be a plain file name (no ``/``, not ``.`` or ``..``, no NUL): ValueError;
    * the folder is resolved once (a folder that is itself a symlink is the operator's choice
      and fine) and opened ``O_DIRECTORY|O_NOFOLLOW``; the file is created relative to that
      descriptor with ``O_CREAT|O_EXCL|O_NOFOLLOW``: an existing file or a symlink at the name
      (dangling or not) is refused (FileExistsError / OSError ELOOP), never followed or
      truncated;
    * the result is checked to be a regular file whose resolved path is inside the folder.

    The caller owns the returned file object (:class:`WavRecorder` closes it)."""
    if not name or "/" in name or "\x00" in name or name in (".", ".."):
        raise ValueError(f"{name!r} is not a plain file name")
    root = Path(folder).resolve(strict=True)
    directory = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     mode, dir_fd=directory)
    finally:
        os.close(directory)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{name} is not a regular file")
        real = (root / name).resolve(strict=True)
        if real.parent != root:
            raise OSError(f"{name} resolves outside {root}")
        return os.fdopen(fd, "wb")
    except BaseException:
        os.close(fd)
        raise


class WavRecorder:
    """Decodes received audio to a mono 16-bit WAV at the codec's sample rate, placed by RTP
    timestamp, with the codec's concealment for lost packets.

    ``codec``: a name as in the rtpmap (with ``clock_rate`` / ``fmtp`` as for
    :func:`~wcsgw.media.audiocodec.make_codec`) or an AudioCodec the recorder then owns and
    closes.  :meth:`write_rtp` takes a whole RTP packet: audio of ``payload_type`` (and of the
    codec's static number; with G.711, PCMU and PCMA both, as the far end may switch) is
    recorded, anything else (telephone-event, comfort noise) is skipped — its sequence number
    noted, so it does not look like a loss.  :meth:`write` takes a payload with its RTP
    timestamp (and codec name, for G.711; and ``seq``: without it no gap is taken for a loss).
    Packets are held back ``reorder_window`` seconds of audio so a late one still lands in
    place; :meth:`close` writes what is held and closes the file.  Counters:
    ``samples_written``, ``late`` (dropped: older than what is written), ``duplicates``,
    ``discontinuities``, ``concealed_samples``, ``codec_errors`` (payloads the decoder
    refused: concealed like a loss).
    """

    def __init__(self, path: str | Path | BinaryIO, codec: str | AudioCodec = "PCMU", *,
                 payload_type: int | None = None, clock_rate: int | None = None,
                 fmtp: dict[str, str | None] | None = None, reorder_window: float = 0.06,
                 max_gap: float = 10.0, max_conceal: float = 0.100) -> None:
        primary = codec if not isinstance(codec, str) else make_codec(codec, clock_rate, fmtp)
        self._codecs: dict[str, AudioCodec] = {primary.name: primary}
        self._key = primary.name
        #: the primary codec's upper-case name ("PCMU", "G722" ...)
        self.codec = primary.name.upper()
        self.rate = primary.sample_rate
        self._clock = primary.rtp_clock
        self._per_tick = primary.sample_rate // primary.rtp_clock  # G.722: 2
        self._by_pt = {pt: key for pt, key in _STATIC_PT.items()
                       if key == self._key or (key in _G711 and self._key in _G711)}
        if payload_type is not None:
            self._by_pt[payload_type] = self._key
        #: the file written: ``path`` as given, or an open file's name (None if it has none)
        self._file: BinaryIO | None = None
        if isinstance(path, (str, os.PathLike)):
            self.path: Path | None = Path(path)
        else:
            self._file = path  # ours to close (wave does not close a file object it is given)
            name = getattr(path, "name", None)
            self.path = Path(name) if isinstance(name, str) else None
        # Every position below is in RTP ticks of the codec's clock.
        self._reorder = int(reorder_window * self._clock)
        self._max_gap = int(max_gap * self._clock)
        self._max_conceal = int(max_conceal * self._clock)
        self._frame_ticks = self._clock // 50  # a packet's length until one is decoded
        try:
            self._wav = wave.open(self._file if self._file is not None else str(self.path), "wb")
        except BaseException:
            primary.close()
            if self._file is not None:
                self._file.close()
            raise
        self._wav.setnchannels(1)
        self._wav.setsampwidth(2)
        self._wav.setframerate(self.rate)
        self._wav.writeframes(b"")  # the header is on disk from the start
        self._base: int | None = None  # RTP timestamp of file position 0 (mod 2**32)
        self._ssrc: int | None = None
        #: file position (ticks) -> (payload, codec key, sequence number or None)
        self._pending: dict[int, tuple[bytes, str, int | None]] = {}
        self._end = 0  # one past the last pending/written tick (estimated for pending)
        self._written = 0  # ticks written to the file
        self._last_seq: int | None = None  # of the last audio packet decoded
        self._skipped: dict[int, None] = {}  # non-audio sequence numbers, oldest first
        self.samples_written = 0
        self.late = 0
        self.duplicates = 0
        self.discontinuities = 0
        self.concealed_samples = 0
        self.codec_errors = 0
        self.closed = False

    @property
    def duration(self) -> float:
        return self.samples_written / self.rate

    def __enter__(self) -> "WavRecorder":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def write_rtp(self, packet: bytes) -> bool:
        """Record one RTP packet; False when it is not audio of this codec (or not RTP)."""
        try:
            header = parse_rtp(packet)
        except RtpError:
            return False
        key = self._by_pt.get(header.payload_type)
        if key is None:
            if self._ssrc is None or header.ssrc == self._ssrc:
                self._skipped[header.sequence] = None
                if len(self._skipped) > _SKIPPED_MEMORY:
                    del self._skipped[next(iter(self._skipped))]
            return False
        payload = header.payload(packet)
        if self._ssrc is not None and header.ssrc != self._ssrc:
            self._rebase(header.timestamp)
            self._last_seq = None  # no concealment across streams
            self._skipped.clear()
        self._ssrc = header.ssrc
        self.write(payload, header.timestamp, key, seq=header.sequence)
        return True

    def _codec(self, key: str) -> AudioCodec:
        codec = self._codecs.get(key)
        if codec is None:  # the other G.711 law (the only other codec _by_pt can name)
            codec = self._codecs[key] = make_codec(key)
        return codec

    def write(self, payload: bytes, timestamp: int, codec: str | None = None,
              seq: int | None = None) -> None:
        if self.closed:
            raise ValueError("the recorder is closed")
        if not payload:
            return
        key = (codec or self._key).lower()
        if key != self._key and not (key in _G711 and self._key in _G711):
            raise ValueError(f"this recorder decodes {self.codec}, not {codec}")
        # G.711 is one byte a sample; for the others the last decoded packet says.
        length = len(payload) if key in _G711 else self._frame_ticks
        if self._base is None:
            self._base = timestamp & 0xFFFFFFFF
        # Signed offset of this packet from the end of what we have, modulo 2**32.
        expected = (self._base + self._end) & 0xFFFFFFFF
        delta = ((timestamp - expected + 0x80000000) & 0xFFFFFFFF) - 0x80000000
        if delta > self._max_gap or delta < -self._clock:
            self._rebase(timestamp)  # a new stream: continue at the end, no padding
            self._last_seq = None
            delta = 0
        position = self._end + delta
        if position + length <= self._written:
            self.late += 1
            return
        if position in self._pending:
            self.duplicates += 1
            return
        self._pending[position] = (bytes(payload), key, seq)
        self._end = max(self._end, position + length)
        self._commit(self._end - self._reorder)

    def _rebase(self, timestamp: int) -> None:
        """The next packet with ``timestamp`` goes right after what we have."""
        self.discontinuities += 1
        self._base = (timestamp - self._end) & 0xFFFFFFFF

    def _lost_before(self, seq: int | None) -> bool:
        """Whether sequence numbers are missing between the last decoded packet and ``seq``
        that no skipped (non-audio) packet accounts for."""
        last = self._last_seq
        if seq is None or last is None:
            return False
        step = (seq - last) & 0xFFFF
        if step <= 1 or step > 1000:
            return False
        return any(((last + i) & 0xFFFF) not in self._skipped for i in range(1, step))

    def _commit(self, upto: int) -> None:
        """Decode and write, in order, everything placed before tick ``upto``; fill the holes
        (concealment after a loss, else silence)."""
        ready = sorted(p for p in self._pending if p < upto)
        if not ready:
            return
        chunks: list[np.ndarray] = []
        cursor = self._written
        for position in ready:
            payload, key, seq = self._pending.pop(position)
            codec = self._codec(key)
            gap = position - cursor
            if gap > 0:
                hidden = min(gap, self._max_conceal) if self._lost_before(seq) else 0
                if hidden:
                    chunks.append(self._conceal(codec, hidden * self._per_tick))
                if gap > hidden:
                    chunks.append(np.zeros((gap - hidden) * self._per_tick, dtype=np.int16))
                cursor = position
            try:
                pcm = as_int16(codec.decode(payload))
            except (CodecError, ValueError):
                self.codec_errors += 1
                pcm = self._conceal(codec, self._frame_ticks * self._per_tick)
            if seq is not None:
                self._last_seq = seq
            ticks = len(pcm) // self._per_tick
            if ticks == 0:
                continue
            if key not in _G711:
                self._frame_ticks = ticks
            if position < cursor:  # overlaps what is written: keep the new part only
                pcm = pcm[(cursor - position) * self._per_tick :]
            chunks.append(pcm)
            cursor = max(cursor, position + ticks)
        if chunks:
            data = np.concatenate(chunks).astype("<i2")
            self._wav.writeframes(data.tobytes())
            self.samples_written += len(data)
        self._written = cursor
        self._end = max(self._end, cursor)

    def _conceal(self, codec: AudioCodec, samples: int) -> np.ndarray:
        """Exactly ``samples`` of the codec's concealment (silence if it fails)."""
        pcm, ok = concealment(codec, samples)
        self.codec_errors += not ok
        self.concealed_samples += samples
        return pcm

    def close(self) -> None:
        """Write what is held back, close the file (a valid WAV) and the codecs.  Idempotent."""
        if self.closed:
            return
        try:
            self._commit(self._end + 1)
        finally:
            self.closed = True
            try:
                self._wav.close()
            finally:
                if self._file is not None:
                    self._file.close()
                for codec in self._codecs.values():
                    codec.close()
