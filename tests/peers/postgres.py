"""A throwaway PostgreSQL 15 for a test, on loopback (the call records' second database).

Usage inside a trial test (the reactor is running)::

    pg = PostgreSQL()                  # port picked free at run time
    await pg.start()                   # initdb, postgres, createdb: ready for connections
    self.addCleanup(pg.stop)           # idempotent; the server and its folder are gone after
    config: cdr.database = pg.url      # postgresql://postgres:<password>@127.0.0.1:<port>/cdr

Why as the ``postgres`` user: initdb and postgres refuse to run as root, and CI runs as root;
the data folder is made over to that user and both run through ``setpriv`` (which execs, so
the process group is the server's own).  Password authentication (scram) with a password made
per run, so the tests see a URL with a password in it, as an operator writes one.  ``fsync``
off: the data is thrown away.

Waiting never blocks the reactor: initdb and createdb run in a thread, readiness is polled
with ``task.deferLater``.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from twisted.internet import defer, task, threads

from tests.peers.ports import free_port
from tests.peers.process import KeepsLog, stop_group

__all__ = ["BIN", "PostgreSQL", "PostgreSQLError", "missing"]

BIN = Path("/usr/lib/postgresql/15/bin")
START_TIMEOUT = 30.0
POLL = 0.1
USER = "postgres"


class PostgreSQLError(RuntimeError):
    """The server failed to start; the message carries the log tail."""


def missing() -> str | None:
    """Why PostgreSQL cannot be started here (a skip reason), or None."""
    for name in ("initdb", "postgres", "createdb", "pg_isready"):
        if not (BIN / name).exists():
            return f"{BIN / name} not found: install Debian's postgresql (make test does)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(USER)
        except KeyError:
            return "no postgres user to run the server as (Debian's postgresql makes one)"
    return None


def _reactor() -> Any:
    from twisted.internet import reactor

    return reactor


class PostgreSQL(KeepsLog):
    """One server on 127.0.0.1:``port`` (and a unix socket in its folder) with a database
    ``cdr``; :attr:`url` names it with the superuser's password."""

    def __init__(self, host: str = "127.0.0.1", database: str = "cdr") -> None:
        self.host = host
        self.database = database
        self.port = free_port("tcp", host)
        self.password = secrets.token_hex(12)
        self.rundir = Path(tempfile.mkdtemp(prefix="wcsgw-pg-"))
        self.data = self.rundir / "data"
        self.log_path = self.rundir / "postgres.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._stopping: defer.Deferred[None] | None = None

    @property
    def url(self) -> str:
        return (f"postgresql://{USER}:{self.password}@{self.host}:{self.port}/"
                f"{self.database}")

    def _as_postgres(self, argv: list[str]) -> list[str]:
        if os.geteuid() != 0:
            return argv
        return ["setpriv", f"--reuid={USER}", f"--regid={USER}", "--init-groups", "--", *argv]

    def _run(self, argv: list[str]) -> None:
        """A short command (initdb, createdb), in a thread; its output to the log."""
        env = dict(os.environ, PGPASSWORD=self.password, LC_ALL="C.UTF-8")
        with open(self.log_path, "ab") as log:
            done = subprocess.run(self._as_postgres(argv), cwd=self.rundir, env=env,
                                  stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                  timeout=START_TIMEOUT, check=False)
        if done.returncode != 0:
            raise PostgreSQLError(f"{argv[0]} exited with {done.returncode}; log tail:\n"
                                  f"{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def start(self) -> defer.Deferred[PostgreSQL]:
        return defer.ensureDeferred(self._start())

    async def _start(self) -> PostgreSQL:
        why = missing()
        if why is not None:
            raise PostgreSQLError(why)
        if os.geteuid() == 0:
            user = pwd.getpwnam(USER)
            os.chown(self.rundir, user.pw_uid, user.pw_gid)
        pwfile = self.rundir / "pw"
        pwfile.write_text(self.password + "\n")
        if os.geteuid() == 0:
            os.chown(pwfile, pwd.getpwnam(USER).pw_uid, -1)
        try:
            await threads.deferToThread(self._run, [
                str(BIN / "initdb"), "-D", str(self.data), "-U", USER, "-E", "UTF8",
                "--auth=scram-sha-256", f"--pwfile={pwfile}", "--no-sync", "--no-instructions"])
            pwfile.unlink()
            self._log_file = open(self.log_path, "ab")
            self._proc = subprocess.Popen(
                self._as_postgres([str(BIN / "postgres"), "-D", str(self.data),
                                   "-h", self.host, "-p", str(self.port),
                                   "-k", str(self.rundir), "-c", "fsync=off",
                                   "-c", "full_page_writes=off",
                                   "-c", "synchronous_commit=off"]),
                cwd=self.rundir, stdin=subprocess.DEVNULL, stdout=self._log_file,
                stderr=subprocess.STDOUT, start_new_session=True)
            await self._ready()
            await threads.deferToThread(self._run, [
                str(BIN / "createdb"), "-h", self.host, "-p", str(self.port), "-U", USER,
                self.database])
        except BaseException:
            await self.stop()
            raise
        return self

    async def _ready(self) -> None:
        reactor = _reactor()
        deadline = reactor.seconds() + START_TIMEOUT
        argv = [str(BIN / "pg_isready"), "-q", "-h", self.host, "-p", str(self.port)]
        while reactor.seconds() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise PostgreSQLError(f"postgres exited with {self._proc.returncode}; log "
                                      f"tail:\n{self.log_tail()}")
            ready = await threads.deferToThread(subprocess.call, argv,
                                                stdout=subprocess.DEVNULL,
                                                stderr=subprocess.DEVNULL)
            if ready == 0:
                return
            await task.deferLater(reactor, POLL, lambda: None)
        raise PostgreSQLError(f"postgres not ready within {START_TIMEOUT:g} s; log tail:\n"
                              f"{self.log_tail()}")

    async def _stop(self) -> None:
        if self._proc is not None:
            # SIGINT first: a fast shutdown (clients cut off); SIGTERM would wait for them
            await stop_group(self._proc, 2.0, _reactor(), interrupt=5.0)
        self._close_log()
        shutil.rmtree(self.rundir, ignore_errors=True)

    def stop(self) -> defer.Deferred[None]:
        """Stop the server's whole process group and remove its folder.  Idempotent."""
        if self._stopping is None:
            self._stopping = defer.ensureDeferred(self._stop())
        result: defer.Deferred[None] = defer.Deferred()
        self._stopping.addBoth(lambda value: result.callback(None))
        return result
