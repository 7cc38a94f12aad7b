"""A throwaway redis-server for a test, on loopback (the cluster's shared state).

Usage inside a trial test (the reactor is running)::

    redis = RedisServer()              # port picked free at run time
    await redis.start()                # ready once it answers PING
    self.addCleanup(redis.stop)        # idempotent; the server and its folder are gone after
    config: cluster.redis_url = redis.url

Why these flags: nothing may outlive the test (``--save ""``, ``--appendonly no``, its own
temporary ``--dir``), nothing but this host may reach it (``--bind 127.0.0.1``,
``--protected-mode yes``), and a password, so the tests see a URL with a password in it as
an operator writes one.  :meth:`kill` (SIGKILL) and a second :meth:`start` on the same port
stand for a Redis that dies and comes back empty.  Readiness is a PING on a plain socket,
polled with ``task.deferLater``: waiting never blocks the reactor.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from twisted.internet import defer, task

from tests.peers.ports import free_port
from tests.peers.process import KeepsLog, stop_group

__all__ = ["BINARY", "RedisServer", "RedisError", "missing"]

BINARY = shutil.which("redis-server") or "/usr/bin/redis-server"
START_TIMEOUT = 10.0
POLL = 0.05


class RedisError(RuntimeError):
    """The server failed to start; the message carries the log tail."""


def missing() -> str | None:
    """Why redis-server cannot be started here (a skip reason), or None."""
    if not os.path.exists(BINARY):
        return "redis-server not found: install Debian's redis-server (make test does)"
    return None


def _reactor() -> Any:
    from twisted.internet import reactor

    return reactor


class RedisServer(KeepsLog):
    """One redis-server on 127.0.0.1:``port`` with a password made per run; :attr:`url`."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = free_port("tcp", host)
        self.password = secrets.token_hex(12)
        self.rundir = Path(tempfile.mkdtemp(prefix="wcsgw-redis-"))
        self.log_path = self.rundir / "redis.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._stopping: defer.Deferred[None] | None = None

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@{self.host}:{self.port}/0"

    def start(self) -> defer.Deferred[RedisServer]:
        return defer.ensureDeferred(self._start())

    async def _start(self) -> RedisServer:
        why = missing()
        if why is not None:
            raise RedisError(why)
        self._stopping = None
        self._log_file = open(self.log_path, "ab")
        self._proc = subprocess.Popen(
            [BINARY, "--port", str(self.port), "--bind", self.host, "--protected-mode", "yes",
             "--save", "", "--appendonly", "no", "--dir", str(self.rundir),
             "--requirepass", self.password, "--daemonize", "no", "--logfile", ""],
            cwd=self.rundir, stdin=subprocess.DEVNULL, stdout=self._log_file,
            stderr=subprocess.STDOUT, start_new_session=True)
        try:
            await self._ready()
        except BaseException:
            await self._stop()
            raise
        return self

    def _ping(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5) as s:
                s.sendall(f"AUTH {self.password}\r\nPING\r\n".encode())
                data = b""
                while b"PONG" not in data:
                    chunk = s.recv(256)
                    if not chunk:
                        return False
                    data += chunk
                return True
        except OSError:
            return False

    async def _ready(self) -> None:
        reactor = _reactor()
        deadline = reactor.seconds() + START_TIMEOUT
        while reactor.seconds() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise RedisError(f"redis-server exited with {self._proc.returncode}; log "
                                 f"tail:\n{self.log_text()[-2000:]}")
            if self._ping():
                return
            await task.deferLater(reactor, POLL, lambda: None)
        raise RedisError(f"redis-server not ready within {START_TIMEOUT:g} s; log tail:\n"
                         f"{self.log_text()[-2000:]}")

    def kill(self) -> None:
        """SIGKILL the server (a Redis that dies); :meth:`start` brings it back, empty."""
        if self._proc is not None and self._proc.poll() is None:
            os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait()

    async def _stop(self) -> None:
        if self._proc is not None:
            await stop_group(self._proc, 2.0, _reactor())
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def stop(self) -> defer.Deferred[None]:
        """Stop the server's process group and remove its folder.  Idempotent."""
        if self._stopping is None:
            self._stopping = defer.ensureDeferred(self._stop())
            self._stopping.addBoth(lambda _: self._cleanup())
        result: defer.Deferred[None] = defer.Deferred()
        self._stopping.addBoth(lambda value: result.callback(None))
        return result

    def _cleanup(self) -> None:
        self._final_log = self._read_log()
        shutil.rmtree(self.rundir, ignore_errors=True)
