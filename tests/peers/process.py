"""Process-group handling shared by every peer the tests start (Kamailio, baresip, twistd).

Each peer runs in its own session (``start_new_session=True``), so its pid is its process
group's id and the whole group — children included — can be signalled and waited for.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Any

from twisted.internet import task

POLL = 0.05


def group_alive(pgid: int) -> bool:
    """Any non-zombie process left in the group?  (A zombie holds no port.)"""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # Fields after the ")" that ends the command name: state ppid pgrp ...
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] != b"Z":
            return True
    return False


async def stop_group(proc: subprocess.Popen[Any], grace: float, reactor: Any, *,
                     interrupt: float = 0.0) -> None:
    """SIGTERM the group, wait up to ``grace`` seconds for all of it to go, then SIGKILL and
    wait again (bounded); never blocks the reactor.  With ``interrupt``, SIGINT first and wait
    up to that long: for a process that finishes its files on SIGINT (mediastream writes its
    WAV header) but may be killed by SIGTERM before it has."""
    pgid = proc.pid
    steps = ((signal.SIGINT, interrupt),) if interrupt else ()
    for sig, wait in steps + ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            pass
        deadline = reactor.seconds() + wait
        while reactor.seconds() < deadline:
            proc.poll()
            if proc.returncode is not None and not group_alive(pgid):
                return
            await task.deferLater(reactor, POLL, lambda: None)
    proc.poll()


class KeepsLog:
    """A peer whose process writes its output to ``log_path`` (through ``_log_file``, the open
    file handed to it): :meth:`log_text` reads the file while the peer runs, and the copy
    :meth:`_close_log` kept once it has stopped, when the peer's folder may be gone."""

    log_path: Path
    _log_file: Any = None
    _final_log: str | None = None

    def _read_log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def _close_log(self) -> None:
        """The process is gone: close our handle and keep what it wrote."""
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        self._final_log = self._read_log()

    def log_text(self) -> str:
        """Everything the process wrote so far (kept after stop removes its folder)."""
        return self._final_log if self._final_log is not None else self._read_log()
