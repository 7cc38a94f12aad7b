"""A real Kamailio (registrar + proxy with digest auth) for tests, on loopback.

Usage inside a trial test (the reactor is running)::

    kam = Kamailio()                      # port picked free at run time
    await kam.start()                     # ready: its control socket answers
    self.addCleanup(kam.stop)             # stop() is idempotent and returns a Deferred
    ... send SIP to (kam.host, kam.port) ...
    rows = await kam.bindings("1001")     # [{"user", "contact", "expires", "callid", ...}]

Users 1001..1004 with passwords pass1001..pass1004 come from ``users.cfg`` beside this file
(``users={"1001": "secret"}`` writes another list).  Domain: any; ``127.0.0.1`` is "myself".

Why a process group: Kamailio forks about ten children, and some can outlive a SIGTERM of the
main process; starting it in its own session and signalling the whole group is the only way to
be sure nothing is left running (and nothing keeps the SIP port) after a test.

Waiting never blocks the reactor: polls are spaced with ``task.deferLater`` and ``kamcmd`` runs
through ``reactor.spawnProcess``, so this works inside trial (asyncio reactor or not).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Mapping

from twisted.internet import defer, protocol, task
from twisted.internet.error import ProcessDone

from tests.peers.ports import free_port
from tests.peers.process import KeepsLog, stop_group

__all__ = ["Kamailio", "KamailioError", "parse_kamcmd", "parse_ul_dump", "run_command"]

HERE = Path(__file__).resolve().parent
CFG_TEMPLATE = HERE / "kamailio.cfg"
USERS_FILE = HERE / "users.cfg"

START_TIMEOUT = 10.0
STOP_GRACE = 2.0
POLL = 0.05


class KamailioError(RuntimeError):
    """Kamailio failed to start, or kamcmd failed; the message carries the log tail."""


def _find(binary: str) -> str:
    path = shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/usr/bin:/sbin")
    if path is None:
        raise KamailioError(
            f"{binary} not found: install Debian's kamailio package (`make test` does)"
        )
    return path


def _reactor() -> Any:
    from twisted.internet import reactor

    return reactor


class _Collect(protocol.ProcessProtocol):
    """Collects stdout/stderr of a short command and fires with (out, err, exit code)."""

    def __init__(self, done: defer.Deferred) -> None:
        self.done = done
        self.out: list[bytes] = []
        self.err: list[bytes] = []

    def outReceived(self, data: bytes) -> None:  # noqa: N802 (Twisted API)
        self.out.append(data)

    def errReceived(self, data: bytes) -> None:  # noqa: N802
        self.err.append(data)

    def processEnded(self, reason: Any) -> None:  # noqa: N802
        code = 0 if reason.check(ProcessDone) else getattr(reason.value, "exitCode", None)
        if code is None:
            code = -1
        self.done.callback((b"".join(self.out).decode(errors="replace"),
                            b"".join(self.err).decode(errors="replace"), code))


def run_command(argv: list[str], timeout: float = 5.0) -> "defer.Deferred[tuple[str, str, int]]":
    """Run ``argv`` without blocking the reactor; fire with (stdout, stderr, exit code).

    Killed (and fails with KamailioError) after ``timeout`` seconds, so a wedged peer cannot
    hang a test run.
    """
    reactor = _reactor()
    done: defer.Deferred = defer.Deferred()
    proto = _Collect(done)
    transport = reactor.spawnProcess(proto, argv[0], argv, env=dict(os.environ))

    def expire() -> None:
        try:
            transport.signalProcess("KILL")
        except Exception:
            pass

    timer = reactor.callLater(timeout, expire)

    def finished(result: tuple[str, str, int]) -> tuple[str, str, int]:
        if timer.active():
            timer.cancel()
            return result
        raise KamailioError(f"{' '.join(argv)}: no answer within {timeout:g} s")

    return done.addCallback(finished)


# ---------------------------------------------------------------------------------------------
# kamcmd's text output: nested "Key: {" ... "}" blocks and "Key: value" leaves, keys repeating
# (one "Info" per AoR, one "Contact" per binding).  Parsed into nested lists of (key, value).


def parse_kamcmd(text: str) -> list[tuple[str, Any]]:
    """Parse kamcmd's structured text into ``[(key, value-or-nested-list), ...]``."""
    root: list[tuple[str, Any]] = []
    stack = [root]
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line == "{":  # the anonymous outermost block
            continue
        if line == "}":
            if len(stack) > 1:
                stack.pop()
            continue
        key, sep, value = line.partition(":")
        value = value.strip()
        if not sep:
            stack[-1].append((line, None))
        elif value == "{":
            child: list[tuple[str, Any]] = []
            stack[-1].append((key.strip(), child))
            stack.append(child)
        else:
            stack[-1].append((key.strip(), value))
    return root


def _find_all(tree: list[tuple[str, Any]], key: str) -> list[Any]:
    return [v for k, v in tree if k == key]


def _walk(tree: list[tuple[str, Any]], key: str) -> list[Any]:
    """Every value under ``key`` at any depth (blocks are not searched past a match)."""
    found = []
    for k, v in tree:
        if k == key:
            found.append(v)
        elif isinstance(v, list):
            found.extend(_walk(v, key))
    return found


def _int_or_text(value: str | None) -> int | str | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return value


def parse_ul_dump(text: str) -> list[dict[str, Any]]:
    """Bindings from ``kamcmd ul.dump``: one dict per contact, with ``user`` (the AoR),
    ``contact``, ``expires`` (seconds left, int; or text like "permanent"), ``callid``,
    ``cseq``, ``user_agent``, ``received``, ``socket`` and ``state``."""
    rows = []
    for info in _walk(parse_kamcmd(text), "Info"):
        if not isinstance(info, list):
            continue
        aor = (_find_all(info, "AoR") or [None])[0]
        for contacts in _find_all(info, "Contacts"):
            for contact in _find_all(contacts, "Contact"):
                fields = dict((k, v) for k, v in contact if not isinstance(v, list))
                rows.append({
                    "user": aor,
                    "contact": fields.get("Address"),
                    "expires": _int_or_text(fields.get("Expires")),
                    "callid": fields.get("Call-ID"),
                    "cseq": _int_or_text(fields.get("CSeq")),
                    "user_agent": fields.get("User-Agent"),
                    "received": fields.get("Received"),
                    "socket": fields.get("Socket"),
                    "state": fields.get("State"),
                })
    return rows


class Kamailio(KeepsLog):
    """One Kamailio process on ``host:port`` (UDP and TCP) with its own run directory.

    Attributes: ``host``, ``port``, ``rundir``, ``ctl`` (kamcmd socket URI), ``log_path``,
    ``pid`` (None when not started).  A subclass may run another config: ``template``.
    """

    #: the config copied into the run directory (users.cfg beside it, as the config imports)
    template: Path = CFG_TEMPLATE

    def __init__(
        self,
        port: int | None = None,
        host: str = "127.0.0.1",
        users: Mapping[str, str] | None = None,
        debug: bool = False,
        rundir: str | None = None,
        defines: Mapping[str, str] | None = None,
        tls: tuple[Path, Path] | None = None,
    ) -> None:
        """``defines``: more ``-A NAME=VALUE`` for the config's ``#!ifdef`` blocks (a string
        value carries its own double quotes, as ``CTL_SOCK`` does).  ``tls``: (certificate,
        key) files — Kamailio also listens for SIP over TLS on ``tls_port`` (its tls module,
        Debian ``kamailio-tls-modules``; TLS 1.2+, clients not asked for certificates)."""
        self.host = host
        self.port = port if port is not None else free_port("udp+tcp", host)
        self.users = dict(users) if users is not None else None
        self.debug = debug
        self.defines = dict(defines or {})
        self.tls = tls
        self.tls_port = free_port("tcp", host) if tls is not None else 0
        self._own_rundir = rundir is None
        # Short path under /tmp: the control socket path must fit in a sockaddr_un (108 bytes).
        self.rundir = Path(rundir or tempfile.mkdtemp(prefix="wcsgw-kam-"))
        self.ctl = f"unix:{self.rundir / 'ctl'}"
        self.log_path = self.rundir / "kamailio.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file: Any = None
        self._final_log: str | None = None
        self._stopping: defer.Deferred | None = None

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _write_config(self) -> Path:
        self.rundir.mkdir(parents=True, exist_ok=True)
        cfg = self.rundir / "kamailio.cfg"
        shutil.copyfile(self.template, cfg)
        users = self.rundir / "users.cfg"
        if self.users is None:
            shutil.copyfile(USERS_FILE, users)
        else:
            users.write_text("".join(
                f'$sht(users=>{name}) = "{password}";\n' for name, password in self.users.items()
            ))
        if self.tls is not None:
            cert, key = self.tls
            (self.rundir / "tls.cfg").write_text(
                "[server:default]\nmethod = TLSv1.2+\nverify_certificate = no\n"
                f"require_certificate = no\ncertificate = {cert}\nprivate_key = {key}\n\n"
                "[client:default]\nmethod = TLSv1.2+\nverify_certificate = no\n"
                "require_certificate = no\n")
        return cfg

    def command(self) -> list[str]:
        """The kamailio command line (foreground, log to stderr, ports/sockets as defines)."""
        argv = [
            _find("kamailio"), "-f", str(self.rundir / "kamailio.cfg"), "-DD", "-E",
            "-Y", str(self.rundir), "-w", str(self.rundir),
            "-A", f"SIP_PORT={self.port}", "-A", f'CTL_SOCK="{self.ctl}"',
        ]
        if self.host != "127.0.0.1":
            raise ValueError("kamailio.cfg listens on 127.0.0.1 only")
        if self.debug:
            argv += ["-A", "WITH_DEBUG"]
        if self.tls is not None:
            argv += ["-A", "WITH_TLS", "-A", f"TLS_PORT={self.tls_port}",
                     "-A", f'TLS_CFG="{self.rundir / "tls.cfg"}"']
        for name, value in self.defines.items():
            argv += ["-A", f"{name}={value}"]
        return argv

    async def _start(self) -> "Kamailio":
        if self._proc is not None:
            raise KamailioError("already started")
        self._write_config()
        argv = self.command()
        self._log_file = open(self.log_path, "ab")
        self._proc = subprocess.Popen(
            argv, cwd=self.rundir, stdin=subprocess.DEVNULL, stdout=self._log_file,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
        reactor = _reactor()
        deadline = reactor.seconds() + START_TIMEOUT
        last = ""
        while True:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                await self.stop()
                raise KamailioError(
                    f"kamailio exited with status {code} during start-up; log tail:\n"
                    + self.log_tail()
                )
            if (self.rundir / "ctl").exists():
                out, err, code = await run_command(
                    [_find("kamcmd"), "-s", self.ctl, "core.version"], timeout=2.0
                )
                if code == 0 and "kamailio" in out:
                    return self
                last = (err or out).strip()
            if reactor.seconds() > deadline:
                await self.stop()
                raise KamailioError(
                    f"kamailio not ready within {START_TIMEOUT:g} s (last kamcmd: {last!r}); "
                    "log tail:\n" + self.log_tail()
                )
            await task.deferLater(reactor, POLL, lambda: None)

    def start(self) -> "defer.Deferred[Kamailio]":
        """Start Kamailio; fires with self once its control socket answers (it has bound its
        SIP sockets by then).  On failure, stops what was started and fails with the log tail."""
        return defer.ensureDeferred(self._start())

    async def _stop(self) -> None:
        proc = self._proc
        if proc is None:
            return
        reactor = _reactor()
        await stop_group(proc, STOP_GRACE, reactor)
        self._close_log()
        if self._own_rundir:
            shutil.rmtree(self.rundir, ignore_errors=True)

    def stop(self) -> "defer.Deferred[None]":
        """Stop the whole process group: SIGTERM, up to 2 s, then SIGKILL.  Idempotent: every
        call returns a Deferred that fires once everything is gone."""
        if self._proc is None:
            return defer.succeed(None)
        if self._stopping is None:
            self._stopping = defer.ensureDeferred(self._stop())
        result: defer.Deferred = defer.Deferred()

        def relay(value: Any) -> Any:
            result.callback(None)
            return value

        def relay_failure(failure: Any) -> Any:
            result.errback(failure)
            return None

        self._stopping.addCallbacks(relay, relay_failure)
        return result

    # -- inspection -----------------------------------------------------------------------

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    async def _kamcmd(self, *args: str) -> str:
        out, err, code = await run_command([_find("kamcmd"), "-s", self.ctl, *args])
        if code != 0:
            raise KamailioError(f"kamcmd {' '.join(args)} failed ({code}): {(err or out).strip()}")
        return out

    def kamcmd(self, *args: str) -> "defer.Deferred[str]":
        """Run a kamcmd RPC (``kam.kamcmd("ul.dump")``) and fire with its text output."""
        return defer.ensureDeferred(self._kamcmd(*args))

    async def _bindings(self, aor_user: str | None) -> list[dict[str, Any]]:
        rows = parse_ul_dump(await self._kamcmd("ul.dump"))
        if aor_user is not None:
            rows = [r for r in rows if r["user"] == aor_user]
        return rows

    def bindings(self, aor_user: str | None = None) -> "defer.Deferred[list[dict[str, Any]]]":
        """Current registrations (``ul.dump``), optionally only those of one user (e.g. "1001");
        each row: user, contact, expires, callid, cseq, user_agent, received, socket, state."""
        return defer.ensureDeferred(self._bindings(aor_user))
