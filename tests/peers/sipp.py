"""SIPp (Debian ``sip-tester``) running one scenario of ``tests/data/sipp/`` against the
gateway, for the SIP extensions a carrier's equipment uses and our usual peers (Kamailio,
baresip) do not exercise: reliable provisionals, UPDATE, session timers.

SIPp runs in a session of its own (its pid is its process group's id, see
``tests/peers/process.py``) from a temporary folder, on a free UDP port picked at run time,
with ``-m 1`` (one call, then exit), ``-timeout`` (never hangs the suite) and its message and
error logs in that folder.  :meth:`Sipp.finished` waits for its exit status without blocking
the reactor; 0 means every step of the scenario happened as written.  :meth:`Sipp.stop`
stops the whole group and removes the folder, keeping the logs' text for the failure
message.  Idempotent.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from twisted.internet import task

from tests.peers.ports import free_port
from tests.peers.process import POLL, stop_group

__all__ = ["SCENARIOS", "Sipp", "SippError"]

SCENARIOS = Path(__file__).resolve().parent.parent / "data" / "sipp"
#: SIPp's own limit on the whole run; the test's timeout is longer, so SIPp's is the one seen
RUN_TIMEOUT = 30


class SippError(Exception):
    pass


def _reactor() -> Any:
    from twisted.internet import reactor

    return reactor


class Sipp:
    """One SIPp run of ``scenario`` (a file name in tests/data/sipp/).  As a client give
    ``remote`` ("127.0.0.1:5060"); ``extra`` are more SIPp arguments (``-key name value``)."""

    def __init__(self, scenario: str, *, remote: str | None = None,
                 extra: tuple[str, ...] = ()) -> None:
        self.scenario = SCENARIOS / scenario
        if not self.scenario.is_file():
            raise SippError(f"no scenario {self.scenario}")
        self.remote = remote
        self.extra = extra
        self.port = free_port("udp")
        self.media_port = free_port("udp", span=4)  # SIPp binds audio and video (+2) RTP
        self.rundir = Path(tempfile.mkdtemp(prefix="wcsgw-sipp-"))
        self.proc: subprocess.Popen[bytes] | None = None
        self.logs = ""

    def command(self) -> list[str]:
        command = ["sipp", "-sf", str(self.scenario), "-i", "127.0.0.1", "-p", str(self.port),
                   "-t", "u1", "-mp", str(self.media_port), "-m", "1", "-nostdin", "-timeout", f"{RUN_TIMEOUT}s",
                   "-timeout_error", "-trace_msg", "-message_file", "messages.log",
                   "-trace_err", "-error_file", "errors.log", *self.extra]
        if self.remote is not None:
            command.append(self.remote)
        return command

    def start(self) -> None:
        if shutil.which("sipp") is None:
            raise SippError("sipp not found: install the Debian package sip-tester")
        with open(self.rundir / "stdout.log", "wb") as out:
            self.proc = subprocess.Popen(self.command(), cwd=self.rundir, stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)

    async def finished(self) -> int:
        """SIPp's exit status once it has exited (0: the scenario passed)."""
        reactor = _reactor()
        assert self.proc is not None
        while self.proc.poll() is None:
            await task.deferLater(reactor, POLL, lambda: None)
        self._keep_logs()
        return self.proc.returncode

    def logs_now(self) -> str:
        """What SIPp logged so far (for a failure message while it still runs)."""
        self._keep_logs()
        return self.logs

    def _keep_logs(self) -> None:
        parts = []
        for name in ("stdout.log", "errors.log", "messages.log"):
            path = self.rundir / name
            if path.exists():
                parts.append(f"--- {name}\n{path.read_text(errors='replace')[-6000:]}")
        self.logs = "\n".join(parts)

    async def stop(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                await stop_group(self.proc, 2.0, _reactor())
            if not self.logs:
                self._keep_logs()
            self.proc = None
        shutil.rmtree(self.rundir, ignore_errors=True)
