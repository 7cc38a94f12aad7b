"""A call's two directions in one stereo WAV: left what the browser sent, right the SIP side.

Sans-IO apart from the file it is given: :meth:`StereoRecorder.add` takes one tapped packet
(:mod:`wcsgw.media.recordtap`) with its arrival time, :meth:`StereoRecorder.advance` writes
what is final, :meth:`StereoRecorder.close` the rest.  The worker thread
(:mod:`wcsgw.media.recordworker`) drives it; tests drive it directly with made-up times.

Why placed by arrival time *and* RTP timestamp, not by timestamp alone as the mono recorder
(:mod:`wcsgw.media.wavrecord`) does: two streams from two senders share no clock, so only the
gateway's arrival time can say which words on the left were spoken while which words on the
right were.  Each channel's first packet is placed at its arrival (a side that starts late
begins with silence); later packets by their RTP timestamp from there, so network jitter does
not smear the audio.  When the timestamp and the arrival disagree by more than
:data:`REANCHOR_SECONDS` — a new SSRC, a sender's timestamp jump, a long pause the timestamp
does not show — the channel is placed anew at the arrival.  Clock drift between a phone and
us (about 0.1 % at worst) is absorbed the same way, by an occasional re-placement.

Each channel is decoded in order with its own decoder (:mod:`wcsgw.media.audiocodec`), holes
filled as the transcoder fills them: after lost packets (missing sequence numbers) up to
100 ms of the codec's own concealment, then silence; a pause without loss (DTX, hold) is
silence.  Then both go through a :class:`~wcsgw.media.resample.Resampler` to one rate:
**16 kHz when either side's codec is wideband** (Opus, G.722, Speex WB), else 8 kHz — a
browser's Opus is not cut to telephone band, and an all-G.711 call is not stored at twice its
size.  The resamplers' fixed delay (at most 5 ms) is not corrected.

Writing lags arrival by ``hold`` seconds (300 ms): packets reordered within that still land in
place; one later than that is dropped and counted (``late``).  The WAV header is rewritten at
every write (:mod:`wave` does, the file being seekable), so a crash leaves a readable file up
to the last write.
"""

from __future__ import annotations

import wave
from typing import BinaryIO

import numpy as np

from wcsgw.media.audiocodec import AudioCodec, CodecError, as_int16, concealment
from wcsgw.media.resample import Resampler

__all__ = ["REANCHOR_SECONDS", "ChannelTrack", "StereoRecorder", "output_rate"]

#: how many non-audio sequence numbers (telephone-event) a channel remembers, so that the gap
#: they leave in the audio's numbers is not taken for a loss
_SKIPPED_MEMORY = 256

#: arrival and timestamp may disagree this much before a channel is placed anew
REANCHOR_SECONDS = 1.0
#: the writing unit: 10 ms, a whole number of samples at every rate we meet
_BLOCKS_PER_SECOND = 100


def output_rate(left: AudioCodec, right: AudioCodec) -> int:
    """16000 when either side is wideband, else 8000."""
    return 16000 if max(left.sample_rate, right.sample_rate) > 8000 else 8000


class ChannelTrack:
    """One side: places payloads on the recording's time line (samples at the codec's own
    rate from the recording's start), decodes them in order, fills the holes."""

    def __init__(self, codec: AudioCodec, *, max_conceal: float = 0.100) -> None:
        self.codec = codec
        self.rate = codec.sample_rate
        self._per_tick = max(1, codec.sample_rate // codec.rtp_clock)  # G.722: 2
        self._tolerance = int(REANCHOR_SECONDS * self.rate)
        self._max_conceal = int(max_conceal * self.rate)
        self._anchor: tuple[int, int, int] | None = None  # (ssrc, timestamp, position)
        self._pending: dict[int, tuple[int, bytes]] = {}  # position -> (seq, payload)
        self._carry = np.zeros(0, dtype=np.int16)  # decoded past what was written
        self._last_seq: int | None = None
        self._skipped: dict[int, None] = {}  # non-audio sequence numbers, oldest first
        self._audio_end = 0  # where the last decoded packet ended (concealment starts there)
        #: samples handed out so far (the write frontier)
        self.written = 0
        self.packets = 0
        self.late = 0
        self.duplicates = 0
        self.reanchored = 0
        self.concealed_samples = 0
        self.codec_errors = 0

    def place(self, arrival: int, seq: int, ts: int, ssrc: int, payload: bytes) -> None:
        """``arrival``: the packet's arrival, in samples from the recording's start; an empty
        ``payload``: a packet that is not audio (an event), whose number is no loss."""
        if not payload:
            self._skipped[seq] = None
            if len(self._skipped) > _SKIPPED_MEMORY:
                del self._skipped[next(iter(self._skipped))]
            return
        anchor = self._anchor
        position: int | None = None
        if anchor is not None and anchor[0] == ssrc:
            delta = ((ts - anchor[1] + 0x80000000) & 0xFFFFFFFF) - 0x80000000
            position = anchor[2] + delta * self._per_tick
            if abs(position - arrival) > self._tolerance:
                position = None
        if position is None:
            if anchor is not None:
                self.reanchored += 1
            self._anchor = (ssrc, ts, arrival)
            self._last_seq = None  # no concealment across a new placement
            position = arrival
        if position < self.written:
            self.late += 1
            return
        if position in self._pending:
            self.duplicates += 1
            return
        self.packets += 1
        self._pending[position] = (seq, bytes(payload))

    def commit(self, frontier: int) -> np.ndarray:
        """Exactly ``frontier - written`` samples: every packet placed before ``frontier``
        decoded in order, holes filled, silence where nothing came."""
        chunks = [self._carry]
        cursor = self.written + len(self._carry)
        for position in sorted(p for p in self._pending if p < frontier):
            seq, payload = self._pending.pop(position)
            if position > cursor:
                chunks.append(self._fill(position - cursor, cursor, self._lost_before(seq)))
                cursor = position
            try:
                pcm = as_int16(self.codec.decode(payload))
            except (CodecError, ValueError):
                self.codec_errors += 1
                pcm = self._conceal(int(0.02 * self.rate))
            self._last_seq = seq
            if position < cursor:  # overlaps what is decoded (a re-placement): the new part
                pcm = pcm[cursor - position :]
            chunks.append(pcm)
            cursor += len(pcm)
            self._audio_end = cursor
        if cursor < frontier:
            # A hole up to the frontier: concealed when the next packet, already here, shows
            # that packets were lost; silence otherwise (DTX, hold, or not known yet).
            upcoming = min(self._pending, default=None)
            lost = upcoming is not None and self._lost_before(self._pending[upcoming][0])
            chunks.append(self._fill(frontier - cursor, cursor, lost))
        data = np.concatenate(chunks)
        take = frontier - self.written
        self._carry = data[take:]
        self.written = frontier
        return data[:take]

    def _fill(self, samples: int, cursor: int, lost: bool) -> np.ndarray:
        """``samples`` from ``cursor``: after a loss, the codec's concealment up to
        ``max_conceal`` past the last audio, then silence."""
        hidden = max(0, min(samples, self._audio_end + self._max_conceal - cursor)) if lost else 0
        silence = np.zeros(samples - hidden, dtype=np.int16)
        return np.concatenate((self._conceal(hidden), silence)) if hidden else silence

    def _lost_before(self, seq: int) -> bool:
        """Numbers are missing since the last packet decoded that no event accounts for."""
        last = self._last_seq
        if last is None:
            return False
        step = (seq - last) & 0xFFFF
        return 1 < step <= 1000 and any(((last + i) & 0xFFFF) not in self._skipped
                                        for i in range(1, step))

    def _conceal(self, samples: int) -> np.ndarray:
        pcm, ok = concealment(self.codec, samples)
        self.codec_errors += not ok
        self.concealed_samples += samples
        return pcm


class StereoRecorder:
    """Writes ``file`` (created by the caller, e.g. :func:`wcsgw.media.wavrecord.create_new`;
    closed here) as 16-bit stereo: left ``left``'s audio (the browser's), right ``right``'s
    (the SIP side's).  ``start``: the recording's time zero, on the clock of the arrival
    times given to :meth:`add`.  The codecs are the recorder's to close."""

    def __init__(self, file: BinaryIO, left: AudioCodec, right: AudioCodec, start: float, *,
                 hold: float = 0.3) -> None:
        self.rate = output_rate(left, right)
        self.start = start
        self.hold = hold
        self.tracks = (ChannelTrack(left), ChannelTrack(right))
        self._resamplers = (Resampler(left.sample_rate, self.rate),
                            Resampler(right.sample_rate, self.rate))
        self._file = file
        self._latest = start
        self._blocks = 0  # 10 ms blocks written
        self.closed = False
        try:
            self._wav = wave.open(file, "wb")
            self._wav.setnchannels(2)
            self._wav.setsampwidth(2)
            self._wav.setframerate(self.rate)
            self._wav.writeframes(b"")  # the header is on disk from the start
            file.flush()
        except BaseException:
            self._close_codecs()
            file.close()
            raise

    @property
    def duration(self) -> float:
        """Seconds written so far."""
        return self._blocks / _BLOCKS_PER_SECOND

    def add(self, side: int, arrival: float, seq: int, ts: int, ssrc: int, pt: int,
            payload: bytes) -> None:
        """One tapped packet (:data:`~wcsgw.media.recordtap.TapItem`): ``side`` 0 the
        browser's, 1 the SIP side's; an empty ``payload`` is an event's (not audio).  The
        payload type is not needed: each side's tap takes only its codec's audio."""
        track = self.tracks[side]
        track.place(round((arrival - self.start) * track.rate), seq, ts, ssrc, payload)
        if arrival > self._latest:
            self._latest = arrival

    def advance(self) -> None:
        """Write everything older than the latest arrival minus ``hold``."""
        self._write(int((self._latest - self.start - self.hold) * _BLOCKS_PER_SECOND))

    def close(self) -> None:
        """Write the rest (up to the latest arrival plus a packet's length), finalise the
        header, close the file and the codecs.  Idempotent."""
        if self.closed:
            return
        try:
            self._write(int((self._latest - self.start + 0.1) * _BLOCKS_PER_SECOND))
        finally:
            self.closed = True
            try:
                self._wav.close()
            finally:
                self._file.close()
                self._close_codecs()

    def _write(self, blocks: int) -> None:
        if blocks <= self._blocks or self.closed:
            return
        channels = []
        for track, resampler in zip(self.tracks, self._resamplers):
            pcm = track.commit(blocks * track.rate // _BLOCKS_PER_SECOND)
            channels.append(resampler.process(pcm))
        frames = np.column_stack(channels).astype("<i2")
        self._wav.writeframes(frames.tobytes())
        self._file.flush()
        self._blocks = blocks

    def _close_codecs(self) -> None:
        for track in self.tracks:
            track.codec.close()
