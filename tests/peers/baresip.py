"""A real SIP phone for tests: baresip 1.0, headless, driven over its ctrl_tcp socket.

Usage inside a trial test (the reactor is running)::

    phone = Baresip("1002", "pass1002", registrar_port=kam.port)   # ports picked free
    self.addCleanup(phone.stop)           # add it after Kamailio's: phones stop first
    await phone.start()                   # ready: its ctrl_tcp port answers
    await phone.registered()              # reginfo says OK (or kam.bindings("1002"))
    mark = phone.mark()
    ... call sip:1002@127.0.0.1:<kam.port> ...
    event = await phone.wait_event("CALL_ESTABLISHED", since=mark)
    await phone.command("hangup")
    phone.recordings()                    # [DIR/dump-<time>-dec.wav, ...] what it received

Every phone has its own folder (config, accounts, log, recordings).  The config is written
here rather than by a shell script so the test suite stands alone: ``sip_listen`` on a free
port (baresip also binds TLS on port + 1, hence ``free_port(span=2)``), ``net_interface
127.0.0.1`` so its SDP names loopback, a tone WAV as microphone (``aufile``), a silent
player (``aubridge``), received audio recorded by ``sndfile``, RTP ports from a free block,
and ``ctrl_tcp`` on another free port.

The control protocol is netstring-framed JSON: ``{"command": "dial", "params": "sip:...",
"token": "7"}`` is answered ``{"response": true, "ok": true, "data": "...", "token": "7"}``;
events (``CALL_INCOMING``, ``CALL_RINGING``, ``CALL_ESTABLISHED``, ``CALL_CLOSED`` with the
reason in ``param``, ``CALL_DTMF_START`` ...) are pushed to connected clients only, which is
why one connection is opened at start and kept.

baresip runs in its own session (process group) with stdin from /dev/null; :meth:`stop`
signals the group (SIGTERM, then SIGKILL) and is idempotent.  Stop phones before the
registrar: a phone whose un-REGISTER goes unanswered keeps retrying for ~27 s.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import struct
import subprocess
import tempfile
import wave
from pathlib import Path
from typing import Any, Callable, Sequence

from twisted.internet import defer, protocol, task
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.protocols.basic import NetstringReceiver
from twisted.python import failure

from tests.peers.ports import free_port
from tests.peers.process import KeepsLog, stop_group

__all__ = ["Baresip", "BaresipError", "write_tone"]

START_TIMEOUT = 10.0
STOP_GRACE = 3.0
COMMAND_TIMEOUT = 5.0
POLL = 0.05
#: starts tried when the SIP port picked turns out taken ("Address already in use")
BIND_ATTEMPTS = 3
MODULE_PATH = "/usr/lib/baresip/modules"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class BaresipError(RuntimeError):
    """baresip failed to start, a command failed or timed out; carries the log tail."""


def _reactor() -> Any:
    from twisted.internet import reactor

    return reactor


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def write_tone(path: Path, frequency: float = 440.0, rate: int = 8000, seconds: float = 4.0,
               channels: int = 1, amplitude: int = 8000) -> Path:
    """A 16-bit PCM sine WAV (the phone's microphone; aufile loops it)."""
    frames = bytearray()
    for i in range(int(rate * seconds)):
        sample = int(amplitude * math.sin(2 * math.pi * frequency * i / rate))
        frames += struct.pack("<h", sample) * channels
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(bytes(frames))
    return path


class _Ctrl(NetstringReceiver):
    """One ctrl_tcp connection: netstrings of JSON both ways."""

    MAX_LENGTH = 1 << 20

    def __init__(self, owner: "Baresip") -> None:
        self.owner = owner

    def stringReceived(self, string: bytes) -> None:  # noqa: N802 (Twisted API)
        try:
            message = json.loads(string.decode("utf-8", "replace"))
        except ValueError:
            return
        self.owner._message(message)

    def send(self, message: dict[str, Any]) -> None:
        self.sendString(json.dumps(message).encode())

    def connectionLost(self, reason: Any = None) -> None:  # noqa: N802
        self.owner._ctrl_lost()


class _CtrlFactory(protocol.Factory):
    def __init__(self, owner: "Baresip") -> None:
        self.owner = owner

    def buildProtocol(self, addr: Any) -> _Ctrl:  # noqa: N802
        return _Ctrl(self.owner)


class Baresip(KeepsLog):
    """One baresip phone with its own folder, SIP port and control connection.

    Attributes: ``user``, ``sip_port``, ``ctrl_port``, ``rtp_ports`` (first, last), ``dir``,
    ``aor``, ``contact`` (``sip:user@127.0.0.1:sip_port``), ``events`` (every event dict
    received, in order), ``pid`` (None when not started).
    """

    def __init__(
        self,
        user: str,
        password: str = "",
        *,
        registrar_port: int | None = None,
        registrar_host: str = "127.0.0.1",
        transport: str = "udp",
        answermode: str = "auto",
        codecs: str | Sequence[str] = "PCMU",
        tone: Path | str | None = None,
        ausrc_srate: int | None = None,
        ausrc_channels: int | None = None,
        ptime: int = 20,
        sip_trace: bool = True,
        rundir: str | None = None,
        outbound: bool = False,
        video: bool = False,
        video_codecs: str | Sequence[str] = "VP8",
        mediaenc: str | None = None,
    ) -> None:
        """``registrar_port`` None: no registration (``regint=0``), the phone still answers
        calls sent straight to ``contact``.  ``answermode`` "auto" answers at once, "manual"
        rings until ``command("accept")`` (or ``command("hangup")``: 486).  ``codecs`` as
        baresip spells them (``PCMU``, ``G722/16000/1``, ``opus/48000/2``).  ``tone``: the
        microphone WAV; by default a 440 Hz 8 kHz mono sine written into the phone's folder
        (its rate must match the codec unless ``ausrc_srate``/``ausrc_channels`` are set).
        ``video``: also a camera and a screen that need no device — ``fakevideo`` draws moving
        bars as the source and is the display (without a usable display baresip refuses video
        calls), and ``snapshot`` so the decoded received picture can be saved
        (:meth:`snapshot_received`).  ``video_codecs`` (``VP8``, ``H264``) picks the codec
        modules loaded, in that order: ``vp8`` and ``avcodec`` (H.264 packetization-mode 0
        and 1, profile-level-id 42e01f).  ``mediaenc``: the account's media encryption
        (``srtp``: SDES offered as best effort in RTP/AVP; ``srtp-mand``: RTP/SAVP only,
        RFC 4568), with the ``srtp`` module loaded; None: plain RTP."""
        if answermode not in ("auto", "manual", "early"):
            raise ValueError(f"answermode must be auto, manual or early, not {answermode!r}")
        self.user = user
        self.password = password
        #: send every request through the registrar (an outbound proxy), not to the R-URI
        self.outbound = outbound
        self.registrar = (registrar_host, registrar_port) if registrar_port else None
        self.transport = transport.lower()
        self.answermode = answermode
        self.codecs = codecs if isinstance(codecs, str) else ",".join(codecs)
        self.video = video
        self.video_codecs = video_codecs if isinstance(video_codecs, str) else ",".join(video_codecs)
        self.mediaenc = mediaenc
        self.ausrc_srate = ausrc_srate
        self.ausrc_channels = ausrc_channels
        self.ptime = ptime
        self.sip_trace = sip_trace
        self._pick_ports()
        self._own_dir = rundir is None
        self.dir = Path(rundir or tempfile.mkdtemp(prefix=f"wcsgw-baresip-{user}-"))
        self.tone = Path(tone) if tone is not None else None
        self.log_path = self.dir / "baresip.log"
        self.events: list[dict[str, Any]] = []
        self.pid: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file: Any = None
        self._ctrl: _Ctrl | None = None
        self._token = 0
        self._pending: dict[str, defer.Deferred] = {}
        self._waiters: list[tuple[Callable[[dict[str, Any]], bool], int, defer.Deferred]] = []
        self._stopping: defer.Deferred | None = None
        self._final_log: str | None = None

    def _pick_ports(self) -> None:
        self.sip_port = free_port("udp+tcp", span=2)  # TLS binds sip_port + 1
        self.ctrl_port = free_port("tcp")
        first_rtp = free_port("udp", span=10)
        self.rtp_ports = (first_rtp, first_rtp + 9)

    # -- addresses ------------------------------------------------------------------------

    @property
    def aor(self) -> str:
        host, port = self.registrar or ("127.0.0.1", self.sip_port)
        return f"sip:{self.user}@{host}:{port}"

    @property
    def contact(self) -> str:
        """Where the phone itself listens (for calls that bypass the registrar)."""
        return f"sip:{self.user}@127.0.0.1:{self.sip_port}"

    # -- config ---------------------------------------------------------------------------

    def write_config(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        if self.tone is None:
            self.tone = write_tone(self.dir / "tone.wav")
        elif self.tone.parent != self.dir:
            # baresip keeps audio_source in a 128-byte buffer and silently truncates longer
            # paths (trial temp paths under a deep checkout are longer): use a short copy.
            self.tone = Path(shutil.copyfile(self.tone, self.dir / "tone.wav"))
        lines = [
            ("poll_method", "epoll"),
            ("sip_listen", f"127.0.0.1:{self.sip_port}"),
            ("net_interface", "127.0.0.1"),
            ("call_local_timeout", "120"),
            ("call_max_calls", "4"),
            ("audio_path", "/usr/share/baresip"),
            ("audio_source", f"aufile,{self.tone}"),
            ("audio_player", f"aubridge,nil-{self.user}-{self.sip_port}"),
            ("audio_alert", f"aubridge,nil-{self.user}-{self.sip_port}"),
            ("audio_level", "no"),
            ("ausrc_format", "s16"),
            ("auplay_format", "s16"),
            ("auenc_format", "s16"),
            ("audec_format", "s16"),
            ("audio_buffer", "20-160"),
            ("rtp_ports", f"{self.rtp_ports[0]}-{self.rtp_ports[1]}"),
            ("rtcp_mux", "no"),
            ("jitter_buffer_delay", "5-10"),
            ("rtp_stats", "no"),
            ("module_path", MODULE_PATH),
            ("module", "g711.so"),
            ("module", "opus.so"),
            ("module", "g722.so"),
            ("module", "sndfile.so"),
            ("module", "aufile.so"),
            ("module", "aubridge.so"),
            ("module_tmp", "uuid.so"),
            ("module_tmp", "account.so"),
            ("module_app", "menu.so"),
            ("module_app", "ctrl_tcp.so"),
            ("ctrl_tcp_listen", f"127.0.0.1:{self.ctrl_port}"),
            ("snd_path", str(self.dir)),
            ("ringback_disabled", "yes"),
            ("menu_bell", "no"),
            ("statmode_default", "off"),
            ("opus_bitrate", "28000"),
        ]
        if self.video:
            lines.extend(self.video_config())
        if self.mediaenc:
            lines.append(("module", "srtp.so"))
        if self.ausrc_srate:
            lines.append(("ausrc_srate", str(self.ausrc_srate)))
        if self.ausrc_channels:
            lines.append(("ausrc_channels", str(self.ausrc_channels)))
        (self.dir / "config").write_text("".join(f"{k}\t\t{v}\n" for k, v in lines))
        (self.dir / "accounts").write_text(self.account_line() + "\n")
        (self.dir / "contacts").write_text("")

    def video_config(self) -> list[tuple[str, str]]:
        """Config lines for a video phone without camera or screen.  fakevideo is both the
        source (moving bars) and the display.  A display is needed: baresip 1.0 decodes
        received video on its way to the display (the snapshot filter sits on that path), and
        with no usable display it does not start video at all — measured: ``video_display
        nil,nil`` gives "could not set vidisp" and the call is refused with 486.  H.264 comes
        from avcodec (libx264 encoder, FFmpeg's h264 decoder)."""
        modules = {"VP8": "vp8.so", "H264": "avcodec.so"}
        wanted = [name.strip().upper() for name in self.video_codecs.split(",") if name.strip()]
        unknown = [name for name in wanted if name not in modules]
        if unknown or not wanted:
            raise ValueError(f"video_codecs: {self.video_codecs!r}; known: VP8, H264")
        return [
            *(("module", modules[name]) for name in wanted),
            ("module", "fakevideo.so"),
            ("module", "snapshot.so"),
            ("video_source", "fakevideo,nil"),
            ("video_display", "fakevideo,nil"),
            ("video_size", "352x288"),
            ("video_bitrate", "500000"),
            ("video_fps", "15.00"),
            ("video_fullscreen", "no"),
            ("avcodec_h264enc", "libx264"),
            ("avcodec_h264dec", "h264"),
        ]

    def account_line(self) -> str:
        if self.registrar is not None:
            host, port = self.registrar
            regint = 600
        else:
            host, port = "127.0.0.1", self.sip_port
            regint = 0
        params = [f"answermode={self.answermode}", f"audio_codecs={self.codecs}",
                  f"regint={regint}", f"ptime={self.ptime}"]
        if self.mediaenc:
            params.append(f"mediaenc={self.mediaenc}")
        # No video_codecs= account parameter: baresip 1.0 looks each name up once, so
        # "H264" would keep only the first variant (packetization-mode=0).  The modules
        # loaded (video_config) decide which video codecs the phone has.
        if self.password:
            params.insert(0, f"auth_pass={self.password}")
        if self.registrar is not None and self.outbound:
            # Every request through the registrar/proxy, as a phone behind a PBX works: a
            # transfer target like sip:1003@127.0.0.1 (the domain) must reach Kamailio.
            params.append(f'outbound="sip:{host}:{port};transport={self.transport}"')
        return (f"<sip:{self.user}@{host}:{port};transport={self.transport}>;"
                + ";".join(params))

    # -- lifecycle ------------------------------------------------------------------------

    def command_line(self) -> list[str]:
        baresip = shutil.which("baresip")
        if baresip is None:
            raise BaresipError("baresip not found: install Debian's baresip-core package")
        argv = [baresip, "-f", str(self.dir)]
        if self.sip_trace:
            argv.append("-s")
        return argv

    async def _start(self) -> "Baresip":
        if self._proc is not None:
            raise BaresipError("already started")
        reactor = _reactor()
        for attempt in range(BIND_ATTEMPTS):
            self.write_config()
            self._log_file = open(self.log_path, "ab")
            offset = self._log_file.tell()
            self._proc = subprocess.Popen(
                self.command_line(), cwd=self.dir, stdin=subprocess.DEVNULL,
                stdout=self._log_file, stderr=subprocess.STDOUT, start_new_session=True,
            )
            self.pid = self._proc.pid
            started = await self._until_ctrl(reactor)
            # A free port picked at construction can be taken by someone else before baresip
            # binds it (the suite starts many peers): pick new ones and start again.
            if started or "Address already in use" not in self._read_log()[offset:] \
                    or attempt == BIND_ATTEMPTS - 1:
                break
            self._close_log()
            self._final_log = None  # the next attempt appends to the same file
            self._proc = None
            self._pick_ports()
        return await self._started_or_raise(reactor)

    async def _until_ctrl(self, reactor: Any) -> bool:
        """Wait until baresip's ctrl socket can be reached (True) or the process has exited
        (False); a timeout is left to :meth:`_started_or_raise`."""
        deadline = reactor.seconds() + START_TIMEOUT
        while self._proc is not None and self._proc.poll() is None:
            if await self._try_ctrl(reactor) or reactor.seconds() > deadline:
                return self._ctrl is not None
            await task.deferLater(reactor, POLL, lambda: None)
        return False

    async def _try_ctrl(self, reactor: Any) -> bool:
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", self.ctrl_port, timeout=1)
        try:
            self._ctrl = await endpoint.connect(_CtrlFactory(self))
            return True
        except Exception:
            return False

    async def _started_or_raise(self, reactor: Any) -> "Baresip":
        assert self._proc is not None
        if self._ctrl is not None:
            return self
        if self._proc.poll() is not None:
            code = self._proc.returncode
            await self.stop()
            raise BaresipError(f"baresip exited with status {code} during start-up; "
                               f"log tail:\n{self.log_tail()}")
        await self.stop()
        raise BaresipError(f"ctrl_tcp not answering within {START_TIMEOUT:g} s; "
                           f"log tail:\n{self.log_tail()}")

    def start(self) -> "defer.Deferred[Baresip]":
        """Start baresip; fires with self once its ctrl_tcp port answers (SIP is bound by
        then: modules load before the ctrl socket opens)."""
        return defer.ensureDeferred(self._start())

    async def _stop(self) -> None:
        if self._ctrl is not None and self._ctrl.transport is not None:
            self._ctrl.transport.loseConnection()
        self._ctrl = None
        for d in list(self._pending.values()):
            if not d.called:
                d.errback(BaresipError("baresip stopped"))
        self._pending.clear()
        proc = self._proc
        if proc is not None:
            reactor = _reactor()
            await stop_group(proc, STOP_GRACE, reactor)
        self._close_log()
        for _predicate, _since, d in self._waiters:
            if not d.called:
                d.errback(BaresipError("baresip stopped"))
        self._waiters.clear()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def stop(self) -> "defer.Deferred[None]":
        """Stop the process group (SIGTERM, up to 3 s for its un-REGISTER, then SIGKILL) and
        remove the phone's folder.  Idempotent: every call fires once all is gone."""
        if self._stopping is None:
            self._stopping = defer.ensureDeferred(self._stop())
        result: defer.Deferred = defer.Deferred()

        def relay(outcome: Any) -> None:
            if isinstance(outcome, failure.Failure):
                result.errback(outcome)
            else:
                result.callback(None)

        self._stopping.addBoth(relay)
        return result

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # -- control --------------------------------------------------------------------------

    def command(self, name: str, params: str | None = None,
                timeout: float = COMMAND_TIMEOUT) -> "defer.Deferred[dict[str, Any]]":
        """Send a ctrl_tcp command (``dial``, ``accept``, ``hangup``, ``reginfo``,
        ``listcalls``, ``answermode`` ...); fires with the response dict (``data`` is the
        text baresip printed), fails with BaresipError when ``ok`` is false or no answer
        comes within ``timeout``."""
        if self._ctrl is None:
            return defer.fail(BaresipError("not connected (start() first)"))
        self._token += 1
        token = str(self._token)
        message: dict[str, Any] = {"command": name, "token": token}
        if params is not None:
            message["params"] = params
        d: defer.Deferred = defer.Deferred()
        self._pending[token] = d
        self._ctrl.send(message)
        reactor = _reactor()

        def expire() -> None:
            pending = self._pending.pop(token, None)
            if pending is not None and not pending.called:
                pending.errback(BaresipError(f"no answer to {name!r} within {timeout:g} s"))

        call = reactor.callLater(timeout, expire)

        def done(response: dict[str, Any]) -> dict[str, Any]:
            if call.active():
                call.cancel()
            if not response.get("ok", False):
                raise BaresipError(f"{name} {params or ''} failed: {response.get('data')!r}")
            return response

        def failed(reason: Any) -> Any:
            if call.active():
                call.cancel()
            return reason

        return d.addCallbacks(done, failed)

    def mark(self) -> int:
        """A position in :attr:`events`; ``wait_event(..., since=mark)`` ignores older ones."""
        return len(self.events)

    def wait_event(self, type_: str, *, since: int = 0, timeout: float = 15.0,
                   where: Callable[[dict[str, Any]], bool] | None = None
                   ) -> "defer.Deferred[dict[str, Any]]":
        """The first event of ``type_`` (``CALL_CLOSED`` ...) at index >= ``since``, already
        received or still to come; fails after ``timeout`` seconds."""

        def predicate(event: dict[str, Any]) -> bool:
            return event.get("type") == type_ and (where is None or where(event))

        for event in self.events[since:]:
            if predicate(event):
                return defer.succeed(event)
        d: defer.Deferred = defer.Deferred()
        entry = (predicate, since, d)
        self._waiters.append(entry)
        reactor = _reactor()

        def expire() -> None:
            if entry in self._waiters:
                self._waiters.remove(entry)
            if not d.called:
                seen = [e.get("type") for e in self.events[since:]]
                d.errback(BaresipError(f"no {type_} within {timeout:g} s (saw {seen}); "
                                       f"log tail:\n{self.log_tail()}"))

        call = reactor.callLater(timeout, expire)
        d.addBoth(lambda r: (call.active() and call.cancel(), r)[1])
        return d

    async def _registered(self, timeout: float) -> str:
        reactor = _reactor()
        deadline = reactor.seconds() + timeout
        while True:
            info = strip_ansi((await self.command("reginfo")).get("data", ""))
            if re.search(r"\bOK\b", info):
                return info
            if reactor.seconds() > deadline:
                raise BaresipError(f"not registered within {timeout:g} s: {info.strip()!r}")
            await task.deferLater(reactor, POLL * 2, lambda: None)

    def registered(self, timeout: float = 10.0) -> "defer.Deferred[str]":
        """Fires with ``reginfo``'s text once the account shows OK (REGISTER_OK events are
        only pushed to clients connected at the time, and registration starts before the
        control socket opens, so the state is read rather than awaited)."""
        return defer.ensureDeferred(self._registered(timeout))

    def _message(self, message: dict[str, Any]) -> None:
        if message.get("response"):
            d = self._pending.pop(str(message.get("token")), None)
            if d is not None and not d.called:
                d.callback(message)
            return
        if message.get("event"):
            self.events.append(message)
            index = len(self.events) - 1
            for entry in list(self._waiters):
                predicate, since, d = entry
                if index >= since and predicate(message):
                    self._waiters.remove(entry)
                    if not d.called:
                        d.callback(message)

    def _ctrl_lost(self) -> None:
        self._ctrl = None

    # -- inspection -----------------------------------------------------------------------

    async def _snapshot_received(self, path: Path | None, timeout: float) -> Path:
        path = Path(path) if path is not None else self.dir / f"recv-{self._token + 1}.png"
        # snapshot_recv arms a flag; the next decoded frame is written as PNG (nothing is
        # written while no frame is decoded, which is what tests want to find out).
        await self.command("snapshot_recv", str(path))
        reactor = _reactor()
        deadline = reactor.seconds() + timeout
        while True:
            if path.exists() and path.stat().st_size > 0:
                await task.deferLater(reactor, POLL * 2, lambda: None)  # let libpng finish
                return path
            if reactor.seconds() > deadline:
                raise BaresipError(f"no received video frame saved to {path} within "
                                   f"{timeout:g} s; log tail:\n{self.log_tail()}")
            await task.deferLater(reactor, POLL, lambda: None)

    def snapshot_received(self, path: Path | str | None = None,
                          timeout: float = 10.0) -> "defer.Deferred[Path]":
        """Save the next DECODED received video frame as a PNG (the snapshot module's
        ``snapshot_recv <path>``); fires with the path once the file is written, fails when
        no frame is decoded within ``timeout``.  Needs ``video=True``."""
        if not self.video:
            return defer.fail(BaresipError("snapshot_received needs Baresip(video=True)"))
        return defer.ensureDeferred(self._snapshot_received(
            Path(path) if path is not None else None, timeout))

    def recordings(self) -> list[Path]:
        """What the phone received, decoded: ``DIR/dump-<time>-dec.wav`` (one per call)."""
        return sorted(self.dir.glob("dump-*-dec.wav"))

    def sent_recordings(self) -> list[Path]:
        """What the phone sent, before encoding: ``DIR/dump-<time>-enc.wav``."""
        return sorted(self.dir.glob("dump-*-enc.wav"))

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(strip_ansi(self.log_text()).splitlines()[-lines:])
