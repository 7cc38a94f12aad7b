"""The media end of a call with server-side media: a WAV played and a recording made, in RTP.

A REST call with ``playFile``/``record`` has no browser: this stands where the browser's
WebRTC leg would, with the same small media interface (``on_rtp``/``on_rtcp`` callbacks with
the arrival time, ``send_rtp``/``send_rtcp``, ``start``, ``close``), so the call's media
session and bridge treat it as any leg's media end.  It speaks the codec the SIP side chose
(:meth:`FileMedia.use_codec`) itself — the WAV encoded once, the far end's audio decoded once
into the recording — which is why the bridge in front of it always relays.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any, Callable

import numpy as np
from twisted.internet import task

from wcsgw.media.audiocodec import AudioCodec, make_codec, packet_samples
from wcsgw.media.rtp import build_rtp
from wcsgw.media.wavfile import WavSource
from wcsgw.media.wavrecord import WavRecorder, create_new
from wcsgw.sdp.codecs import Codec

__all__ = ["FileMedia", "MAX_CATCH_UP"]

#: At most this many packets are sent at once to catch up after the reactor was late; a longer
#: stall becomes a gap in time (the timestamps move on) rather than a burst.
MAX_CATCH_UP = 5


class FileMedia:
    """The media end of a server-side call: a WAV player and a WAV recorder speaking RTP in
    the codec the SIP side chose (:meth:`use_codec`)."""

    def __init__(self, reactor: Any, play_file: Path | None, record_file: Path | None) -> None:
        self.reactor = reactor
        self.play_file = play_file
        self.record_file = record_file
        self.on_rtp: Callable[[bytes, float], None] = lambda packet, now: None
        self.on_rtcp: Callable[[bytes, float], None] = lambda packet, now: None
        self.on_state: Callable[[str], None] = lambda state: None
        self.state = "new"
        self.codec = Codec("PCMU", 8000, 1, 0)
        self.ptime = 20
        self._source: WavSource | None = None
        self._recorder: WavRecorder | None = None
        self._silence_codec: AudioCodec | None = None
        self._silence_samples = np.zeros(0, dtype=np.int16)
        self._ticks = 160  # RTP timestamp step per packet
        self._interval = 0.020
        self._started = 0.0
        self._packets = 0  # packet times accounted for since the start
        self._loop: task.LoopingCall | None = None
        self._ssrc = secrets.randbits(32)
        self._seq = secrets.randbits(16)
        self._ts = secrets.randbits(32)
        self._first = True

    def use_codec(self, codec: Codec, ptime: int | None = None) -> None:
        """The SIP side's choice (its payload type and fmtp) and its ``a=ptime`` (None: 20)."""
        self.codec = codec
        self.ptime = ptime or 20

    def set_remote(self, *args: Any) -> None:  # a file has no ICE/DTLS peer
        pass

    def start(self) -> None:
        """Open the file and the recording in the codec, and send a packet every ptime.
        Raises CodecError (the codec's library is missing) or OSError/WavError."""
        codec = self.codec
        fmtp = codec.fmtp_params
        try:
            if self.play_file is not None:
                self._source = WavSource(self.play_file, codec.name, ptime=self.ptime,
                                         clock_rate=codec.clock_rate, fmtp=fmtp)
                self._ticks = self._source.rtp_ticks
                interval = self._source.ptime / 1000
            else:
                encoder = self._silence_codec = make_codec(codec.name, codec.clock_rate, fmtp)
                samples = packet_samples(encoder, self.ptime)
                self._silence_samples = np.zeros(samples, dtype=np.int16)
                self._ticks = samples * encoder.rtp_clock // encoder.sample_rate
                interval = samples / encoder.sample_rate
            if self.record_file is not None:
                # Created here, exclusively: never an existing file or a planted symlink.
                created = create_new(self.record_file.parent, self.record_file.name)
                self._recorder = WavRecorder(created, codec.name,
                                             payload_type=codec.payload_type,
                                             clock_rate=codec.clock_rate, fmtp=fmtp)
        except BaseException:
            self.close()
            raise
        self._interval = interval
        self._started = self.reactor.seconds()
        self._loop = task.LoopingCall(self._tick)
        self._loop.clock = self.reactor
        self._loop.start(interval, now=True)
        self.state = "connected"

    def _tick(self) -> None:
        """The packets due by now (one, unless the reactor was late): the file's next ones,
        or silence once it has ended.  Counted from the start time rather than trusted to
        LoopingCall's count, which float rounding makes skip a beat now and then."""
        now = self.reactor.seconds()
        elapsed = now - self._started
        due = int(elapsed / self._interval + 1e-6) + 1 - self._packets
        if due <= 0:
            return
        self._packets += due
        late = max(0, due - MAX_CATCH_UP)
        self._ts = (self._ts + late * self._ticks) & 0xFFFFFFFF
        for _ in range(due - late):
            payload = self._silence_payload() if self._source is None else self._source.read()
            if payload is None:  # the file has ended
                payload = self._source.silence()  # type: ignore[union-attr]
            packet = build_rtp(payload_type=self.codec.payload_type or 0, sequence=self._seq,
                               timestamp=self._ts, ssrc=self._ssrc, payload=payload,
                               marker=self._first or late > 0)
            self._first = False
            late = 0
            self._seq = (self._seq + 1) & 0xFFFF
            self._ts = (self._ts + self._ticks) & 0xFFFFFFFF
            self.on_rtp(packet, now)

    def _silence_payload(self) -> bytes:
        """Silence encoded now: G.722 (ADPCM), G.729, Speex and Opus encode relative to their
        state, so one payload sent over and over would not decode as silence."""
        assert self._silence_codec is not None
        return self._silence_codec.encode(self._silence_samples)

    def send_rtp(self, packet: bytes) -> None:
        """What the SIP side sends (relayed by the bridge): into the recording."""
        if self._recorder is not None:
            self._recorder.write_rtp(packet)

    def send_rtcp(self, packet: bytes) -> None:
        pass

    @property
    def recorder(self) -> WavRecorder | None:
        return self._recorder

    def close(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None
        if self._source is not None:
            self._source.close()
        if self._recorder is not None:
            self._recorder.close()
        if self._silence_codec is not None:
            self._silence_codec.close()
            self._silence_codec = None
        self.state = "closed"
