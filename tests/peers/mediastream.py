"""A raw-RTP audio peer for codecs baresip lacks (G.729, Speex): mediastreamer2's
``mediastream`` command (Debian ``libmediastreamer-tools``), playing a WAV and recording what
it receives.

Usage inside a trial test (the reactor is running)::

    ms = Mediastream("G729/8000", remote=("127.0.0.1", 30000), payload_type=18,
                     infile=tone_wav, outfile=Path(self.mktemp() + ".wav"))
    self.addCleanup(ms.stop)             # idempotent
    await ms.start()                     # fires once its RTP port is bound
    ... RTP flows both ways between ms.port and the remote ...
    await ms.stop()                      # SIGINT: the recording is finalised
    dominant_hz(ms.outfile)

What was found out about this build (mediastreamer2 5.1.64, see ``mediastream --help``):

* ``--payload NAME`` ("audio/G729/8000") makes a *custom* payload type, always number 114,
  even for G.729, whose static number is 18.  A *number* picks oRTP's ``av_profile`` entry
  instead: 18 is G.729, 110 speex/8000, 111 speex/16000 (0 PCMU, 8 PCMA, 9 G.722).  So it is
  started with the number, and sends *and* expects that one payload type only.  Those numbers
  clash with an offer's dynamic ones (Chromium's telephone-event/48000 is 110, its Opus 111,
  and a gateway offers them on), and RFC 3264 §5.1/§6.1 has the answerer send with the
  offer's numbers.  Hence ``payload_type``: when the far end uses another number for the
  codec, a :class:`PayloadTypeRelay` in this process sits between the two and rewrites the
  number both ways; :attr:`Mediastream.port` is then the relay's.
* ``--bitrate`` is required for G.729 ("Default bitrate specified for codec G729/8000 ...":
  it exits otherwise); 24000 (the IP bitrate of 8 kbit/s at 20 ms) works; Speex accepts
  32000 (encoder mode follows the bitrate).  20 ms packets: G.729 20 bytes, Speex NB 38 bytes,
  Speex WB 32 bytes.
* ``--infile`` must be a 16-bit mono WAV at the codec's rate and is played ONCE (no loop):
  after its end mediastream sends silence.  Write it longer than any call.
* ``--outfile`` is a WAV at the codec's rate whose header is only written when mediastream
  exits cleanly: SIGINT.  SIGTERM leaves a file without RIFF header.  So :meth:`stop` sends
  SIGINT to the process group, waits, and only then falls back to ``stop_group``
  (SIGTERM, SIGKILL).
* RTP on ``--local P``, RTCP on P + 1 (no rtcp-mux); RTCP is sent to remote port + 1.
* ALSA complains about missing sound cards on start; harmless (files replace the cards).

The process runs in its own session (process group), stdin from /dev/null, stdout and stderr
to ``DIR/mediastream.log``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import attr
from twisted.internet import defer, protocol, task

from tests.peers.ports import free_port
from tests.peers.process import KeepsLog, stop_group

__all__ = ["CODECS", "MsCodec", "Mediastream", "MediastreamError", "PayloadTypeRelay",
           "udp_port_bound"]

BINARY = "/usr/bin/mediastream"
START_TIMEOUT = 5.0
#: How long a SIGINT gets to finalise the recording before SIGTERM/SIGKILL.
INT_GRACE = 3.0
POLL = 0.05


class MediastreamError(RuntimeError):
    """mediastream is missing, exited during start-up, or did not bind its port."""


@attr.s(frozen=True, auto_attribs=True)
class MsCodec:
    """One codec as mediastream is started with it and as an SDP names it."""

    #: rtpmap encoding name as the SDP writes it
    name: str
    clock_rate: int
    #: oRTP av_profile number given to ``--payload``
    payload_type: int
    #: ``--bitrate`` (required for G.729)
    bitrate: int
    #: PCM rate of --infile / --outfile
    sample_rate: int
    fmtp: str | None = None

    @property
    def rtpmap(self) -> str:
        return f"{self.name}/{self.clock_rate}"


#: The codecs verified with this build (two mediastream processes talking to each other, a
#: tone each way, dominant frequency within 0.1 %).
CODECS: dict[str, MsCodec] = {
    "G729/8000": MsCodec("G729", 8000, 18, 24000, 8000, fmtp="annexb=no"),
    "speex/8000": MsCodec("speex", 8000, 110, 32000, 8000),
    "speex/16000": MsCodec("speex", 16000, 111, 32000, 16000),
    "PCMU/8000": MsCodec("PCMU", 8000, 0, 64000, 8000),
    "PCMA/8000": MsCodec("PCMA", 8000, 8, 64000, 8000),
}


def _reactor() -> Any:
    from twisted.internet import reactor

    return reactor


def udp_port_bound(port: int, host: str = "127.0.0.1") -> bool:
    """Whether some process has bound UDP ``host:port`` (read from /proc/net/udp, so no
    socket of ours takes the port even for a moment)."""
    octets = [int(x) for x in host.split(".")]
    wanted = "%08X:%04X" % (octets[3] << 24 | octets[2] << 16 | octets[1] << 8 | octets[0], port)
    any_host = "00000000:%04X" % port
    try:
        with open("/proc/net/udp") as f:
            next(f)
            for line in f:
                local = line.split()[1]
                if local in (wanted, any_host):
                    return True
    except OSError:
        pass
    return False


class _Side(protocol.DatagramProtocol):
    def __init__(self, relay: "PayloadTypeRelay", inside: bool) -> None:
        self.relay = relay
        self.inside = inside

    def datagramReceived(self, data: bytes, addr: Any) -> None:  # noqa: N802 (Twisted API)
        self.relay._forward(data, self.inside)


class PayloadTypeRelay:
    """Two UDP sockets on 127.0.0.1 that pass RTP between a far end (``outside``) and a
    local peer (``inside``), rewriting one payload type number: ``outside_pt`` on the far
    end's side, ``inside_pt`` on the peer's.  Other packets pass unchanged; RTCP is not
    relayed (the gateway's RTP timeout watches RTP only).  Packets go out from the socket
    facing their destination, so each side sees one steady source address (symmetric RTP).
    """

    def __init__(self, outside_pt: int, inside_pt: int, outside_port: int = 0) -> None:
        """``outside_port``: where the far end sends (0: any free port)."""
        self.outside_pt = outside_pt
        self.inside_pt = inside_pt
        self.far: tuple[str, int] | None = None
        self.peer: tuple[str, int] | None = None
        self.forwarded = [0, 0]  # [to the far end, to the peer]
        reactor = _reactor()
        self._outside = reactor.listenUDP(outside_port, _Side(self, inside=False),
                                          interface="127.0.0.1")
        self._inside = reactor.listenUDP(0, _Side(self, inside=True), interface="127.0.0.1")

    @property
    def outside_port(self) -> int:
        """Where the far end sends (the port an SDP names)."""
        return self._outside.getHost().port

    @property
    def inside_port(self) -> int:
        """Where the local peer sends (its ``--remote``)."""
        return self._inside.getHost().port

    def _forward(self, data: bytes, from_inside: bool) -> None:
        if len(data) < 12 or data[0] >> 6 != 2:
            return
        pt = data[1] & 0x7F
        old, new = ((self.inside_pt, self.outside_pt) if from_inside
                    else (self.outside_pt, self.inside_pt))
        if pt == old:
            data = bytes([data[0], (data[1] & 0x80) | new]) + data[2:]
        if from_inside and self.far is not None:
            self._outside.write(data, self.far)
            self.forwarded[0] += 1
        elif not from_inside and self.peer is not None:
            self._inside.write(data, self.peer)
            self.forwarded[1] += 1

    def stop(self) -> defer.Deferred:
        return defer.gatherResults([defer.maybeDeferred(self._outside.stopListening),
                                    defer.maybeDeferred(self._inside.stopListening)])


class Mediastream(KeepsLog):
    """One ``mediastream`` process: sends ``infile`` to ``remote`` in ``codec``, records what
    it receives to ``outfile``.

    ``codec``: a key of :data:`CODECS` ("G729/8000", "speex/8000", "speex/16000") or an
    :class:`MsCodec`.  ``payload_type``: the number the far end uses for the codec (the
    offer's); when it is not mediastream's own, a :class:`PayloadTypeRelay` rewrites it and
    :attr:`port` is the relay's.  ``port``: where the far end sends RTP (mediastream's own
    RTP port with RTCP on port + 1, or the relay's; free by default) — given when an SDP
    named it before the peer could start (an offer we make).  ``jitter``: mediastream's
    jitter buffer in ms.
    """

    def __init__(self, codec: str | MsCodec, remote: tuple[str, int], infile: Path | str,
                 outfile: Path | str, *, payload_type: int | None = None,
                 port: int | None = None, jitter: int = 60, rundir: str | None = None) -> None:
        self.codec = CODECS[codec] if isinstance(codec, str) else codec
        self.infile = Path(infile)
        self.outfile = Path(outfile)
        self.relay: PayloadTypeRelay | None = None
        relayed = payload_type is not None and payload_type != self.codec.payload_type
        #: mediastream's own --local port
        self.local_port = port if port is not None and not relayed else free_port("udp", span=2)
        if relayed:
            assert payload_type is not None
            self.relay = PayloadTypeRelay(payload_type, self.codec.payload_type,
                                          outside_port=port or 0)
            self.relay.far = remote
            self.relay.peer = ("127.0.0.1", self.local_port)
            self.remote = ("127.0.0.1", self.relay.inside_port)
            self.port = self.relay.outside_port
        else:
            self.remote = remote
            self.port = self.local_port
        self.jitter = jitter
        self._own_dir = rundir is None
        self.dir = Path(rundir or tempfile.mkdtemp(prefix="wcsgw-mediastream-"))
        self.log_path = self.dir / "mediastream.log"
        self.pid: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file: Any = None
        self._stopping: defer.Deferred | None = None
        self._final_log: str | None = None
        #: the process's exit status once stopped (0: a clean SIGINT exit)
        self.returncode: int | None = None

    def argv(self) -> list[str]:
        host, port = self.remote
        return [BINARY, "--local", str(self.local_port), "--remote", f"{host}:{port}",
                "--payload", str(self.codec.payload_type), "--bitrate", str(self.codec.bitrate),
                "--jitter", str(self.jitter),
                "--infile", str(self.infile), "--outfile", str(self.outfile)]

    async def _start(self) -> "Mediastream":
        if not os.access(BINARY, os.X_OK):
            raise MediastreamError(f"{BINARY} not found: install Debian's libmediastreamer-tools")
        self.dir.mkdir(parents=True, exist_ok=True)
        self._log_file = open(self.log_path, "wb")
        self._proc = subprocess.Popen(
            self.argv(), stdin=subprocess.DEVNULL, stdout=self._log_file,
            stderr=subprocess.STDOUT, start_new_session=True, cwd=str(self.dir))
        self.pid = self._proc.pid
        reactor = _reactor()
        deadline = reactor.seconds() + START_TIMEOUT
        while not udp_port_bound(self.local_port):
            if self._proc.poll() is not None:
                code = self._proc.returncode
                await self.stop()
                raise MediastreamError(f"mediastream exited ({code}) during start-up; log "
                                       f"tail:\n{self.log_tail()}")
            if reactor.seconds() > deadline:
                await self.stop()
                raise MediastreamError(f"mediastream did not bind UDP {self.local_port} within "
                                       f"{START_TIMEOUT:g} s; log tail:\n{self.log_tail()}")
            await task.deferLater(reactor, POLL, lambda: None)
        return self

    def start(self) -> "defer.Deferred[Mediastream]":
        """Start it; fires once its RTP port is bound (it is sending by then)."""
        return defer.ensureDeferred(self._start())

    async def _stop(self) -> None:
        proc = self._proc
        if proc is not None:
            await stop_group(proc, 1.0, _reactor(), interrupt=INT_GRACE)
            self.returncode = proc.returncode
        if self.relay is not None:
            await self.relay.stop()
        self._close_log()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def stop(self) -> "defer.Deferred[None]":
        """SIGINT the process group (mediastream then writes the WAV header and exits), up to
        3 s, then SIGTERM/SIGKILL.  Idempotent; every call fires once all is gone."""
        if self._stopping is None:
            self._stopping = defer.ensureDeferred(self._stop())
        result: defer.Deferred = defer.Deferred()
        self._stopping.addBoth(lambda r: (result.callback(None), r)[1])
        return result

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        """The last ``lines`` lines, without ALSA's complaints about missing sound cards."""
        kept = [line for line in self.log_text().splitlines() if "alsa error" not in line]
        return "\n".join(kept[-lines:])
