"""Calls with server-side media (REST ``call/startup`` with ``playFile`` / ``record``).

No browser is involved: a :class:`FileLeg` stands where the WebRTC leg would, with the same
small interface (``on_rtp``, ``send_rtp``, ``start``, ``close`` ...).  Everything else —
statuses, hold, DTMF, transfer, the RTP timeout, hang-up — is the ordinary
:class:`~wcsgw.calls.call.Call`.

**Codecs.**  The INVITE offers every ``[codecs] sip`` codec (in that order) this machine can
encode — its native library loads (:func:`wcsgw.media.audiocodec.available`) — with
telephone-event at each of their clock rates.  Whatever the SIP side picks, the leg speaks it
itself: the WAV is encoded once, in the chosen codec, at the codec's sample rate and the
answer's ``a=ptime``; what the SIP side sends is decoded once into the recording (concealing
lost packets).  The bridge between the leg and the SIP socket therefore always *relays* (a
header rewrite): there is no second codec to transcode to, which is why ``[codecs]
transcoding = false`` does not limit file calls — encoding a file is not transcoding a call.
A G.729-only or an Opus/G.722 PBX gets the file as well as a G.711 one.

The recording is a mono 16-bit WAV at the codec's own rate (8 kHz for G.711/G.729/Speex NB,
16 kHz for G.722/Speex WB, 48 kHz for Opus): see :mod:`wcsgw.media.wavfile`.  Its name is the
gateway's (UTC time + random hex, :func:`wcsgw.calls.ids.recording_name`), given to the
operator as the call object's ``recording``; it is created exclusively, inside the recordings
folder, when media starts — a call that never connects leaves no file.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
from twisted.internet import task
from twisted.logger import Logger

from wcsgw.calls.call import Call
from wcsgw.calls.errors import CallError, Codes
from wcsgw.calls.plan import CodecPlan, CodecPolicy
from wcsgw.calls.status import Info
from wcsgw.media.audiocodec import AudioCodec, CodecError, make_codec, packet_samples
from wcsgw.media.rtp import build_rtp
from wcsgw.media.wavfile import WavSource
from wcsgw.media.wavrecord import WavRecorder, create_new
from wcsgw.sdp.codecs import Codec, assign_payload_types, is_auxiliary, same_codec

log = Logger(namespace="wcsgw.calls")

__all__ = ["FileCall", "FileLeg", "file_call_offer", "settle_file_answer"]

TELEPHONE_EVENT = "telephone-event"
#: telephone-event's usual number at 8 kHz (the other rates get a dynamic one)
_EVENT_PAYLOAD_TYPES = {8000: 101}
#: At most this many packets are sent at once to catch up after the reactor was late; a longer
#: stall becomes a gap in time (the timestamps move on) rather than a burst.
MAX_CATCH_UP = 5


def encodable() -> frozenset[str]:
    """Codec keys whose native library loads here."""
    from wcsgw.media.audiocodec import available

    return frozenset(available())


def file_call_offer(policy: CodecPolicy, loaded: Iterable[str]) -> list[Codec]:
    """The SDP offer of a file call: the ``codecs.sip`` codecs whose key is in ``loaded``, in
    that order, then telephone-event at each of their clock rates; payload types assigned.
    Empty when none is loadable (the caller refuses the call)."""
    keys = frozenset(loaded)
    offer = [e.codec() for e in policy.sip if e.key in keys]
    rates: list[int] = []
    for codec in offer:
        if codec.clock_rate not in rates:
            rates.append(codec.clock_rate)
    taken = {c.payload_type for c in offer}
    events = []
    for rate in rates:
        pt = _EVENT_PAYLOAD_TYPES.get(rate)
        events.append(Codec(TELEPHONE_EVENT, rate, 1, pt if pt not in taken else None, "0-16"))
    return assign_payload_types(offer + events) if offer else []


def settle_file_answer(offer: Sequence[Codec], answer: Sequence[Codec]) -> tuple[Codec, Codec | None]:
    """(the codec, telephone-event or None) a file call uses, from the SIP side's answer: its
    first audio codec that we offered (with the answer's payload type and fmtp: what the far
    end wants to receive), and its telephone-event at that codec's rate, else at any rate.
    ValueError when the answer holds nothing we offered."""
    offered = [c for c in offer if not is_auxiliary(c)]
    chosen = next((c for c in answer if not is_auxiliary(c)
                   and any(same_codec(c, o) for o in offered)), None)
    if chosen is None:
        raise ValueError("the answer has none of the offered codecs: "
                         + (", ".join(c.rtpmap for c in answer) or "none"))
    events = [c for c in answer if c.key == TELEPHONE_EVENT]
    dtmf = next((c for c in events if c.clock_rate == chosen.clock_rate), None)
    return chosen, dtmf or (events[0] if events else None)


class FileLeg:
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


class FileCall(Call):
    """A call the operator started over REST, with file media instead of a browser."""

    def __init__(self, *, play_file: Path | None, record_file: Path | None, **kwargs: Any) -> None:
        """``record_file``: where the recording goes — the recordings folder joined with a name
        the gateway chose (:func:`wcsgw.calls.ids.recording_name`), never a client's id; the
        file is created when media starts, with ``O_EXCL|O_NOFOLLOW``
        (:func:`~wcsgw.media.wavfile.create_new`)."""
        super().__init__(browser_offer="", **kwargs)
        self.play_file = play_file
        self.record_file = record_file
        #: the recording's file name within the recordings folder (docs/contract.md), or None
        self.recording = record_file.name if record_file is not None else None
        #: the media end, where a browser call has its WebRTC leg (also ``leg``), once started
        self.file_leg: FileLeg | None = None

    def describe(self, with_sdp: bool = False) -> dict[str, Any]:
        out = super().describe(with_sdp=False)
        out["playFile"] = self.play_file.name if self.play_file else None
        # A file name, never the server's path: the operator knows the folder.
        out["record"] = self.record_file is not None
        out["recording"] = self.recording
        return out

    def start(self) -> None:
        env = self.env
        if self.account is None:
            raise CallError(Codes.FORBIDDEN, Info.FORBIDDEN, "callee")
        offer = file_call_offer(env.codecs, encodable())
        if not offer:
            raise CallError(Codes.NO_CODECS, f"{Info.NO_CODECS}: no codecs.sip codec can be "
                            "encoded on this machine", "playFile")
        self.plan = CodecPlan("relay", offer)
        log.info("call {call_id}: file call, SIP offer {offer}", call_id=self.call_id,
                 offer=", ".join(c.rtpmap for c in offer))
        self.rtp = env.make_rtp_socket(env.reactor, env.allocator, env.media_host)
        self.file_leg = FileLeg(env.reactor, self.play_file, self.record_file)
        self.leg = self.file_leg  # type: ignore[assignment]
        self._open_media_session()
        self._place_invite()

    def _connect_media(self, sip_sdp: bytes) -> None:
        """The SIP side answered: play and record in its codec; the bridge relays."""
        plan, leg = self.plan, self.file_leg
        assert plan is not None and leg is not None
        answer = self._parse_sip_answer(sip_sdp)
        if answer is None:
            return
        audio = answer.first_audio()
        try:
            if audio is None:
                raise ValueError("the answer has no audio")
            chosen, dtmf = settle_file_answer(plan.sip_offer, audio.codecs())
        except ValueError as exc:
            log.info("call {call_id}: {reason}", call_id=self.call_id, reason=str(exc))
            self._fail_sip(Info.NO_CODECS)
            return
        assert audio is not None
        plan.sip_codec = plan.browser_codec = chosen
        plan.sip_dtmf = plan.browser_dtmf = dtmf
        plan.sip_ptime = plan.browser_ptime = audio.ptime
        leg.use_codec(chosen, audio.ptime)
        self._retarget(sip_sdp, parsed=answer)
        try:
            self._start_media(secrets.randbits(32))
        except (CodecError, OSError, ValueError) as exc:  # the file or a library went away
            log.warn("call {call_id}: server-side media failed: {error}", call_id=self.call_id,
                     error=str(exc))
            self._fail_sip(f"server-side media failed: {exc}")
