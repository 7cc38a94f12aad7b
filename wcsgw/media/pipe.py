"""One direction of transcoding: decode -> resample -> re-packetize -> encode, on its own
clock (sans-IO). :class:`~wcsgw.media.transcode.Transcoder` holds one per direction; the
pipeline as a whole is described there.

**Timing.** The pipe owns the outgoing clock. Audio is handled in *segments*: runs of audio
that are continuous in time. A segment starts at the input timestamp of its first packet,
mapped to the target RTP clock; every output packet's timestamp is that start plus the samples
already sent in the segment. Decoded audio and concealment both advance it, so a lost packet
that is concealed leaves no hole and never shifts later audio. A gap that is not concealed
(silence suppression, DTX, a loss longer than the concealment cap, a new stream) ends the
segment: its last partial packet is completed with silence and sent, and the next audio starts
a new segment at its own timestamp, so a gap in time stays a gap in time. A short hole (up to
two packets plus the resampler's latency) is filled with silence instead, so that a segment's
end always fits in the gap and no two packets overlap in time. A DTMF event or comfort noise
from the source ends the segment too (the audio before the event goes out before it).
G.722 runs its RTP clock at half its sample rate, Opus at 48 kHz whatever rate its PCM is at
(the transcoder runs it at the other leg's rate): every conversion goes through
``rtp_clock / sample_rate``.

**The resampler's latency** (libspeexdsp, 5 ms at 8 kHz) is real delay and stays; what the pipe
keeps honest is the *timestamps*: the first ``delay`` of each segment's resampled output (the
resampler's start-up silence) is dropped, and at the segment's end silence pushes the last
real audio out, so each packet's timestamp is where its audio was at the source, and n packets
in make n packets out.

**Loss.** The jitter buffer says how many packets were lost before a packet; the timestamp gap
says how much audio that was. Up to ``max_conceal`` (100 ms) of it is concealed by the source
codec's own PLC (:meth:`AudioCodec.conceal`), or for Opus by decoding the in-band FEC copy of
the last lost frame that the next packet may carry (libopus falls back to PLC when it carries
none). A longer loss is concealed for 100 ms and the rest left as a gap: 2 s of synthetic
vowel is worse than silence. A payload the decoder rejects counts in :attr:`Pipe.codec_errors`
and is then treated as lost.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from wcsgw.media.audiocodec import AudioCodec, CodecError, as_int16, packet_samples
from wcsgw.media.jitter import JitterBuffer, Played
from wcsgw.media.resample import Resampler
from wcsgw.media.rtp import signed32

__all__ = ["Pipe", "Output"]


class Output(NamedTuple):
    """One encoded packet for the target leg."""

    #: RTP timestamp in the target clock (32 bits), of the packet's first sample
    ts: int
    payload: bytes
    #: first packet after a gap in time (a talkspurt starts): the RTP marker bit
    marker: bool
    #: changes when the source became a new stream: the bridge re-bases its outgoing mapping
    epoch: int



class Pipe:
    """One direction of transcoding, ``src`` codec to ``dst`` codec, with its jitter buffer.

    ``receive``/``skip``/``poll`` return the :class:`Output` packets ready now; ``next_deadline``
    says when ``poll`` must run next. ``ptime`` is the target leg's packet time in ms.
    """

    def __init__(
        self,
        src: AudioCodec,
        dst: AudioCodec,
        *,
        ptime: int = 20,
        max_conceal: float = 0.100,
        jitter: JitterBuffer | None = None,
    ) -> None:
        self.src = src
        self.dst = dst
        self.jitter = jitter or JitterBuffer(src.rtp_clock)
        self.packet = packet_samples(dst, ptime)
        #: the target ptime actually used, in ms (after rounding to the codec's frames)
        self.ptime = 1000 * self.packet // dst.sample_rate
        # RTP ticks and samples differ by a ratio each way (G.722: 2 samples per tick; Opus at
        # 8 kHz: 6 ticks per sample), so every conversion multiplies by one rate, divides by
        # the other.
        self._src_rate, self._src_clock = src.sample_rate, src.rtp_clock
        self._dst_rate, self._dst_clock = dst.sample_rate, dst.rtp_clock
        self._fec_step = src.sample_rate // 400  # Opus decodes whole 2.5 ms steps
        self._max_conceal = int(max_conceal * src.rtp_clock)  # in source RTP ticks
        self._resampler = None if src.sample_rate == dst.sample_rate else Resampler(src.sample_rate, dst.sample_rate)
        # Concealment and fills come in whole groups of samples when decimating, so that the
        # resampler's output stays sample-exact.
        self._quantum = max(1, src.sample_rate // dst.sample_rate)
        # The resampler's output lags its input by ``delay``: the first that many samples of a
        # segment are dropped (so a packet's timestamp is where its audio really was), and the
        # same again is pushed out with silence at the segment's end.
        tail = lead = 0
        if self._resampler is not None:
            lead = int(round(self._resampler.delay * dst.sample_rate))
            tail = int(np.ceil(self._resampler.delay * src.sample_rate)) + self._quantum
            tail += -tail % self._quantum
        self._tail = tail
        self._lead = lead
        self._discard = 0  # output samples still to drop at this segment's start
        self._fed = 0  # source samples that went into this segment
        # A gap in time up to this long (source samples) is filled with silence rather than
        # ending the segment: ending one costs the tail flush and a padded packet, which must
        # fit in the gap so that no two packets overlap in time.
        self._fill_limit = 2 * (self.packet * src.sample_rate // dst.sample_rate) + tail
        self._fifo = np.zeros(0, dtype=np.int16)
        self._ts_ref: int | None = None  # unwrapped timestamp of the newest packet
        self._seg_in: int | None = None  # segment start, unwrapped source ticks
        self._seg_out = 0  # segment start, unwrapped target ticks
        self._sent = 0  # target samples sent in this segment
        self._expected = 0  # unwrapped source tick where the next audio should start
        self._first = True  # next output packet starts a talkspurt
        self._error_pending = False
        self._last_frame = src.frame_samples  # samples of the last decoded packet
        self._fec = _fec_decoder(src)
        self.epoch = 0
        self._resync_seen = 0
        self.codec_errors = 0
        #: source samples made up by concealment (PLC or FEC)
        self.concealed_samples = 0
        #: lost frames rebuilt from Opus in-band FEC
        self.fec_frames = 0
        #: losses too long to conceal whole (the rest was left as a gap)
        self.gaps_left = 0
        self.packets_in = 0
        self.packets_out = 0

    # -- API ---------------------------------------------------------------------------------

    def receive(self, seq: int, ts: int, payload: bytes, now: float, ssrc: int = 0) -> list[Output]:
        """One audio packet of the source, as it arrived."""
        out: list[Output] = []
        for p in self.jitter.push(seq, ts, payload, now, ssrc):
            self._play(p, out)
        self._note_resync(out)
        return out

    def skip(self, seq: int, ts: int, now: float, ssrc: int = 0) -> list[Output]:
        """A non-audio packet of the source (telephone-event, CN): keeps the sequence count.
        In its turn (nothing held before it) it also ends the audio: a DTMF event replaces
        the audio, comfort noise says silence began, so the audio so far goes out now,
        before the event does."""
        out: list[Output] = []
        for p in self.jitter.skip(seq, ts, now, ssrc):
            self._play(p, out)
        self._note_resync(out)
        if not self.jitter.held and self._seg_in is not None:
            self._end_segment(out)
            self._seg_in = None
        return out

    def poll(self, now: float) -> list[Output]:
        """Release (and conceal before) packets whose wait for a missing one has expired."""
        out: list[Output] = []
        for p in self.jitter.poll(now):
            self._play(p, out)
        return out

    def next_deadline(self) -> float | None:
        return self.jitter.next_deadline()

    def map_ts(self, ts: int) -> int:
        """A source timestamp (a DTMF event's, say) in the target clock, on the same mapping
        the audio uses."""
        u = self._unwrap(ts, move=False)
        return (u * self.dst.rtp_clock // self.src.rtp_clock) & 0xFFFFFFFF

    def flush(self) -> list[Output]:
        """The end of the source's audio: what is held, and the last partial packet (completed
        with silence), now. Audio after it starts a new talkspurt."""
        out: list[Output] = []
        for p in self.jitter.flush():
            self._play(p, out)
        if self._seg_in is not None:
            self._end_segment(out)
            self._seg_in = None
        return out

    # -- internals ---------------------------------------------------------------------------

    def _note_resync(self, out: list[Output]) -> None:
        # A new stream announced by a skipped packet (an event from a new SSRC): the outgoing
        # mapping must re-base before that packet goes out, not only at the next audio.
        if self.jitter.resyncs != self._resync_seen and self._seg_in is not None:
            self._resync_seen = self.jitter.resyncs
            self._end_segment(out)
            self._seg_in = None
            self._ts_ref = None
            self.epoch += 1

    def _unwrap(self, ts: int, move: bool = True) -> int:
        ref = self._ts_ref
        if ref is None:
            u = ts
        else:
            u = ref + signed32(ts - ref)
        if move and (ref is None or u > ref):
            self._ts_ref = u
        return u

    def _play(self, p: Played, out: list[Output]) -> None:
        self.packets_in += 1
        if p.resync and self._seg_in is not None:
            self._resync_seen = self.jitter.resyncs
            self._end_segment(out)
            self._seg_in = None
            self._ts_ref = None
            self.epoch += 1
        u = self._unwrap(p.ts)
        if self._seg_in is None:
            self._start_segment(u)
            self._resync_seen = self.jitter.resyncs
        else:
            gap = u - self._expected
            if gap > 0:
                if p.lost_before or self._error_pending:
                    gap = self._conceal(gap, p.payload, out)
                if gap > 0:
                    samples = gap * self._src_rate // self._src_clock
                    if samples <= self._fill_limit:
                        # a short hole (in the sender's timestamps, or what concealment left):
                        # silence keeps the segment, and the clock, continuous
                        samples -= samples % self._quantum
                        self._feed(np.zeros(samples, dtype=np.int16), out)
                    else:
                        self._restart(u, out)  # silence suppression / DTX / a long loss
                self._expected = u
            elif gap < -self.src.rtp_clock:
                self._restart(u, out)  # a step back of over a second: the sender restarted
        self._error_pending = False
        try:
            pcm = self.src.decode(p.payload)
        except (CodecError, ValueError):
            self.codec_errors += 1
            self._error_pending = True  # what it held is a loss, concealed before the next
            return
        if len(pcm) == 0:
            return
        self._last_frame = len(pcm)
        self._expected = u + len(pcm) * self._src_clock // self._src_rate
        self._feed(pcm, out)

    def _conceal(self, gap: int, payload: bytes, out: list[Output]) -> int:
        """``gap`` source ticks were lost right before ``payload``: conceal up to the cap;
        return the ticks left unconcealed."""
        whole = gap <= self._max_conceal
        ticks = gap if whole else self._max_conceal
        samples = ticks * self._src_rate // self._src_clock
        samples -= samples % self._quantum
        fec = 0
        if whole and self._fec is not None:
            fec = min(samples, self._last_frame)
            fec -= fec % self._fec_step
        try:
            if samples - fec > 0:
                self._feed(as_int16(self.src.conceal(samples - fec)), out)
            if fec > 0:
                self._feed(self._fec(payload, fec), out)
                self.fec_frames += 1
        except (CodecError, ValueError):
            self.codec_errors += 1
        self.concealed_samples += samples
        left = gap - ticks
        if left * self._src_rate // self._src_clock > self._fill_limit:
            self.gaps_left += 1
        return left

    def _start_segment(self, u: int) -> None:
        self._seg_in = u
        self._seg_out = u * self.dst.rtp_clock // self.src.rtp_clock
        self._sent = 0
        self._expected = u
        self._first = True
        self._discard = self._lead
        self._fed = 0

    def _restart(self, u: int, out: list[Output]) -> None:
        self._end_segment(out)
        self._start_segment(u)

    def _end_segment(self, out: list[Output]) -> None:
        """Push the resampler's tail out, send the partial packet completed with silence."""
        if self._resampler is not None and self._fed:
            fed = self._fed
            self._feed(np.zeros(self._tail, dtype=np.int16), out, tail=True)
            # keep just the segment's own audio: what the tail pushed out beyond it is silence
            keep = max(0, fed * self.dst.sample_rate // self.src.sample_rate - self._sent)
            self._fifo = self._fifo[:keep]
        self._fed = 0
        if len(self._fifo):
            pad = np.zeros(self.packet - len(self._fifo), dtype=np.int16)
            self._fifo = np.concatenate((self._fifo, pad))
            self._encode_ready(out)
        self._fifo = np.zeros(0, dtype=np.int16)
        if self._resampler is not None:
            self._resampler.reset()

    def _feed(self, pcm: np.ndarray, out: list[Output], tail: bool = False) -> None:
        if self._resampler is not None:
            if not tail:
                self._fed += len(pcm)
            pcm = as_int16(self._resampler.process(pcm))
            if self._discard:
                drop = min(self._discard, len(pcm))
                self._discard -= drop
                pcm = pcm[drop:]
        if len(self._fifo):
            self._fifo = np.concatenate((self._fifo, pcm))
        else:
            self._fifo = pcm
        self._encode_ready(out)

    def _encode_ready(self, out: list[Output]) -> None:
        n = self.packet
        fifo = self._fifo
        start = 0
        while len(fifo) - start >= n:
            frame = fifo[start : start + n]
            start += n
            try:
                payload = self.dst.encode(frame)
            except (CodecError, ValueError):
                self.codec_errors += 1
                payload = b""
            ts = self._seg_out + self._sent * self._dst_clock // self._dst_rate
            self._sent += n
            if payload:
                out.append(Output(ts & 0xFFFFFFFF, payload, self._first, self.epoch))
                self.packets_out += 1
                self._first = False
        if start:
            self._fifo = fifo[start:]


def _fec_decoder(codec: AudioCodec) -> Any:
    """For Opus: a callable ``(next_payload, samples) -> pcm`` that decodes the in-band FEC
    copy of the lost frame before ``next_payload`` (libopus runs PLC when there is none).

    Uses the codec's public ``decode_fec`` when it has one; the Opus adapter of
    :mod:`wcsgw.media.audiocodec` does not (yet), so fall back to its decoder object, which
    takes ``fec=True``. None for every other codec."""
    if codec.name != "opus":
        return None
    public = getattr(codec, "decode_fec", None)
    if public is not None:
        return public
    decoder = getattr(codec, "_decoder", None)
    if decoder is None or not hasattr(decoder, "last_frame_samples"):
        return None

    def decode_fec(payload: bytes, samples: int) -> np.ndarray:
        last = decoder.last_frame_samples
        decoder.last_frame_samples = samples
        try:
            concealed: np.ndarray = decoder.decode(bytes(payload), fec=True)
            return concealed
        except Exception as exc:  # OpusError: the packet is not Opus
            raise CodecError(f"opus: FEC decode failed ({exc})") from None
        finally:
            decoder.last_frame_samples = last

    return decode_fec
