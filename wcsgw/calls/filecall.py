"""Calls with server-side media (REST ``call/startup`` with ``playFile`` / ``record``).

No browser is involved: a :class:`FileLeg` stands where the WebRTC leg would, with the same
small interface (``on_rtp``, ``send_rtp``, ``start``, ``close`` ...).  It plays a WAV file as
G.711 RTP in the SIP side's own codec (so the bridge relays: nothing is transcoded) and
records what the SIP side sends.  Everything else — statuses, hold, DTMF, transfer, the RTP
timeout, hang-up — is the ordinary :class:`~wcsgw.calls.call.Call`.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any, Callable

from twisted.internet import task
from twisted.logger import Logger

from wcsgw.calls.call import Call, CodecPlan, TELEPHONE_EVENT_8K, TRANSCODE_SIP_CODECS, _first_audio
from wcsgw.calls.errors import CallError, Codes
from wcsgw.calls.status import Info
from wcsgw.media.rtp import build_rtp
from wcsgw.media.udp import RtpSocket
from wcsgw.media.wavfile import WavRecorder, WavSource
from wcsgw.sdp.codecs import is_auxiliary
from wcsgw.sdp.errors import SdpError
from wcsgw.sdp.parser import parse_sdp

log = Logger(namespace="wcsgw.calls")

FRAME = 0.020  # seconds of audio per packet
G711_SILENCE = {"PCMU": b"\xff" * 160, "PCMA": b"\xd5" * 160}


class FileLeg:
    """The media end of a server-side call: a WAV player and a WAV recorder speaking RTP."""

    def __init__(self, reactor: Any, play_file: Path | None, record_file: Path | None) -> None:
        self.reactor = reactor
        self.play_file = play_file
        self.record_file = record_file
        self.on_rtp: Callable[[bytes], None] = lambda packet: None
        self.on_rtcp: Callable[[bytes], None] = lambda packet: None
        self.on_state: Callable[[str], None] = lambda state: None
        self.state = "new"
        self._codec = "PCMU"
        self._payload_type = 0
        self._source: WavSource | None = None
        self._recorder: WavRecorder | None = None
        self._loop: task.LoopingCall | None = None
        self._ssrc = secrets.randbits(32)
        self._seq = secrets.randbits(16)
        self._ts = secrets.randbits(32)

    def use_codec(self, name: str, payload_type: int) -> None:
        self._codec, self._payload_type = name.upper(), payload_type

    def set_remote(self, *args: Any) -> None:  # a file has no ICE/DTLS peer
        pass

    def start(self) -> None:
        if self.play_file is not None:
            self._source = WavSource(self.play_file, self._codec)
        if self.record_file is not None:
            self._recorder = WavRecorder(self.record_file, self._codec)
        self._loop = task.LoopingCall(self._tick)
        self._loop.clock = self.reactor
        self._loop.start(FRAME, now=True)
        self.state = "connected"

    def _tick(self) -> None:
        """One 20 ms packet: the file's next frame, or silence once it has ended."""
        payload = self._source.read() if self._source is not None else None
        if payload is None:
            payload = G711_SILENCE[self._codec]
        packet = build_rtp(payload_type=self._payload_type, sequence=self._seq,
                           timestamp=self._ts, ssrc=self._ssrc, payload=payload)
        self._seq = (self._seq + 1) & 0xFFFF
        self._ts = (self._ts + len(payload)) & 0xFFFFFFFF
        self.on_rtp(packet)

    def send_rtp(self, packet: bytes) -> None:
        if self._recorder is not None:
            self._recorder.write_rtp(packet)

    def send_rtcp(self, packet: bytes) -> None:
        pass

    def close(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None
        if self._source is not None:
            self._source.close()
        if self._recorder is not None:
            self._recorder.close()
        self.state = "closed"


class FileCall(Call):
    """A call the operator started over REST, with file media instead of a browser."""

    def __init__(self, *, play_file: Path | None, record_file: Path | None, **kwargs: Any) -> None:
        super().__init__(browser_offer="", **kwargs)
        self.play_file = play_file
        self.record_file = record_file

    def describe(self, with_sdp: bool = False) -> dict[str, Any]:
        out = super().describe(with_sdp=False)
        out["playFile"] = self.play_file.name if self.play_file else None
        out["record"] = str(self.record_file) if self.record_file else None
        return out

    def start(self) -> None:
        env = self.env
        if self.account is None:
            raise CallError(Codes.FORBIDDEN, Info.FORBIDDEN, "callee")
        self.plan = CodecPlan("relay", TRANSCODE_SIP_CODECS + [TELEPHONE_EVENT_8K])
        self.rtp = RtpSocket(env.reactor, env.allocator, env.media_host)
        self.leg = FileLeg(env.reactor, self.play_file, self.record_file)  # type: ignore[assignment]
        self._place_invite()

    def _connect_media(self, sip_sdp: bytes) -> None:
        """The SIP side answered: play and record in its codec, relayed as is."""
        plan, leg = self.plan, self.leg
        assert plan is not None and isinstance(leg, FileLeg)
        try:
            answer = parse_sdp(sip_sdp)
        except SdpError as exc:
            self._fail_sip(f"the SIP side's SDP does not parse: {exc}")
            return
        audio = _first_audio(answer)
        chosen = [c for c in audio.codecs() if not is_auxiliary(c)] if audio else []
        if not chosen or chosen[0].key not in ("pcmu", "pcma"):
            self._fail_sip(Info.NO_CODECS)
            return
        plan.sip_codec = plan.browser_codec = chosen[0]
        plan.sip_dtmf = plan.browser_dtmf = next(
            (c for c in audio.codecs() if c.key == "telephone-event"), None)  # type: ignore[union-attr]
        leg.use_codec(chosen[0].name, chosen[0].payload_type or 0)
        self._retarget(sip_sdp, parsed=answer)
        self._start_media(secrets.randbits(32))
