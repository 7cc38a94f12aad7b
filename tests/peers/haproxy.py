"""A throwaway HAProxy (Debian 2.6) in front of several gateway nodes' HTTP ports, on loopback.

Usage inside a trial test (the reactor is running)::

    lb = HAProxy([("a", 8001), ("b", 8002)])     # front port picked free at run time
    await lb.start()                              # ready: the front port accepts connections
    self.addCleanup(lb.stop)                      # idempotent, returns a Deferred
    ... http://127.0.0.1:{lb.port}/ ...
    await lb.until_state("a", "DOWN")             # its /health answered 503 (drain) or nothing
    states = lb.states()                          # {"a": "UP", "b": "DOWN"}

What the config does, and why (the same text is the example in docs/scaling.md):

* ``option httpchk GET /health``: a draining node answers 503 and leaves the rotation, a dead
  one stops answering; ``inter``/``fall``/``rise`` are short here so a test sees it within a
  second (production values are in docs/scaling.md).
* ``cookie WCSGWNODE insert indirect nocache``: stickiness.  The page and the WebSocket
  upgrade both come through HAProxy, so HAProxy sets the cookie on the first response (the
  page, or the 101 of an upgrade that came without one) and the browser sends it with every
  later request of that origin — the Web SDK's reconnect included — which goes back to the
  node that holds the session.  A cookie naming a node that is DOWN is ignored
  (``option redispatch``): the reconnect lands on a healthy node instead.
* ``timeout tunnel``: an upgraded WebSocket is a tunnel; without it ``timeout client/server``
  would cut an idle signalling socket.
* ``http-response set-header X-Wcsgw-Backend %s``: which server answered — for the tests
  only; a production config leaves it out.

Why a process group: as every peer here (tests/peers/process.py), so a stop leaves nothing.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Sequence

from twisted.internet import defer, task

from tests.peers.ports import free_port
from tests.peers.process import KeepsLog, stop_group

__all__ = ["HAProxy", "HAProxyError", "config_text"]

START_TIMEOUT = 10.0
STOP_GRACE = 2.0
POLL = 0.05
#: the stickiness cookie's name
COOKIE = "WCSGWNODE"
#: the response header naming the server that answered (tests only)
BACKEND_HEADER = "X-Wcsgw-Backend"


class HAProxyError(RuntimeError):
    """HAProxy failed to start or its stats socket failed; the message carries the log tail."""


def _reactor() -> Any:
    from twisted.internet import reactor

    return reactor


def config_text(port: int, servers: Sequence[tuple[str, int]], stats_socket: str = "",
                host: str = "127.0.0.1", check_ms: int = 200, tunnel: str = "1h") -> str:
    """The haproxy.cfg: one front on ``host:port``, one backend of ``servers`` (name, port)."""
    lines = ["global", "    maxconn 4096"]
    if stats_socket:
        lines.append(f"    stats socket {stats_socket} mode 600 level admin")
    lines += [
        "",
        "defaults",
        "    mode http",
        "    option redispatch",
        "    retries 2",
        "    timeout connect 2s",
        "    timeout client 30s",
        "    timeout server 30s",
        f"    timeout tunnel {tunnel}",
        "",
        "frontend web",
        f"    bind {host}:{port}",
        "    default_backend nodes",
        "",
        "backend nodes",
        "    balance roundrobin",
        "    option httpchk GET /health",
        "    http-check expect status 200",
        f"    cookie {COOKIE} insert indirect nocache",
        f"    http-response set-header {BACKEND_HEADER} %s",
        f"    default-server inter {check_ms}ms fall 2 rise 2",
    ]
    lines += [f"    server {name} {host}:{node_port} check cookie {name}"
              for name, node_port in servers]
    return "\n".join(lines) + "\n"


class HAProxy(KeepsLog):
    """One HAProxy process on ``host:port`` with its own run directory (config, stats socket,
    log).  Attributes: ``host``, ``port``, ``servers``, ``rundir``, ``log_path``."""

    def __init__(self, servers: Sequence[tuple[str, int]], port: int | None = None,
                 host: str = "127.0.0.1", check_ms: int = 200) -> None:
        self.host = host
        self.port = port if port is not None else free_port("tcp", host)
        self.servers = list(servers)
        self.check_ms = check_ms
        # Short path under /tmp: the stats socket path must fit in a sockaddr_un.
        self.rundir = Path(tempfile.mkdtemp(prefix="wcsgw-hap-"))
        self.stats_socket = self.rundir / "admin.sock"
        self.log_path = self.rundir / "haproxy.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._stopping: defer.Deferred[None] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def command(self) -> list[str]:
        binary = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/sbin")
        if binary is None:
            raise HAProxyError("haproxy not found: install Debian's haproxy package "
                               "(`make test` does)")
        # -db: foreground, no daemon (so the process group is the whole of it)
        return [binary, "-db", "-f", str(self.rundir / "haproxy.cfg")]

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def start(self) -> defer.Deferred["HAProxy"]:
        """Start HAProxy; fires with self once the front port accepts connections.  On
        failure, stops what was started and fails with HAProxyError and the log tail."""
        return defer.ensureDeferred(self._start())

    async def _start(self) -> "HAProxy":
        if self._proc is not None:
            raise HAProxyError("already started")
        (self.rundir / "haproxy.cfg").write_text(config_text(
            self.port, self.servers, str(self.stats_socket), self.host, self.check_ms))
        argv = self.command()
        self._log_file = open(self.log_path, "ab")
        self._proc = subprocess.Popen(
            argv, cwd=self.rundir, stdin=subprocess.DEVNULL, stdout=self._log_file,
            stderr=subprocess.STDOUT, start_new_session=True)
        reactor = _reactor()
        deadline = reactor.seconds() + START_TIMEOUT
        while True:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                await self.stop()
                raise HAProxyError(f"haproxy exited with status {code} during start-up; "
                                   f"log tail:\n{self.log_tail()}")
            if self.stats_socket.exists() and self._accepts():
                return self
            if reactor.seconds() > deadline:
                await self.stop()
                raise HAProxyError(f"haproxy not ready within {START_TIMEOUT:g} s; "
                                   f"log tail:\n{self.log_tail()}")
            await task.deferLater(reactor, POLL, lambda: None)

    def _accepts(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=1):
                return True
        except OSError:
            return False

    def stop(self) -> defer.Deferred[None]:
        """Stop the whole process group (SIGTERM, up to 2 s, then SIGKILL), keep the log,
        remove the folder.  Idempotent."""
        if self._proc is None:
            shutil.rmtree(self.rundir, ignore_errors=True)
            return defer.succeed(None)
        if self._stopping is None:
            self._stopping = defer.ensureDeferred(self._stop())
        result: defer.Deferred[None] = defer.Deferred()
        self._stopping.addBoth(lambda value: result.callback(None) or value)
        return result

    async def _stop(self) -> None:
        assert self._proc is not None
        await stop_group(self._proc, STOP_GRACE, _reactor())
        self._close_log()
        shutil.rmtree(self.rundir, ignore_errors=True)

    # -- inspection (the admin socket: local, answers at once) ----------------------------

    def admin(self, command: str) -> str:
        """One command on the stats socket (``show stat``, ``show servers state`` ...)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(2)
            s.connect(str(self.stats_socket))
            s.sendall(command.encode() + b"\n")
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode(errors="replace")

    def states(self) -> dict[str, str]:
        """Each server's health as HAProxy sees it: "UP", "DOWN", "UP 1/2", "MAINT" ..."""
        text = self.admin("show stat")
        header, *rows = [line for line in text.splitlines() if line.strip()]
        names = header.lstrip("# ").split(",")
        found = {}
        for row in rows:
            fields = dict(zip(names, row.split(",")))
            if fields.get("pxname") == "nodes" and fields.get("svname") not in (
                    "BACKEND", "FRONTEND"):
                found[fields["svname"]] = fields.get("status", "")
        return found

    async def until_state(self, server: str, state: str, timeout: float = 10.0) -> None:
        """Wait (bounded) until HAProxy's check has put ``server`` in ``state`` ("UP"/"DOWN")."""
        reactor = _reactor()
        deadline = reactor.seconds() + timeout
        while self.states().get(server) != state:
            if reactor.seconds() > deadline:
                raise AssertionError(f"haproxy: {server} not {state} within {timeout:g} s "
                                     f"({self.states()}); log tail:\n{self.log_tail()}")
            await task.deferLater(reactor, POLL, lambda: None)
