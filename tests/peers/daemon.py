"""The life of a daemon the tests start that answers a UDP probe once ready (coturn, rtpengine).

A subclass of :class:`UdpDaemon` gives its own parts — ``program`` (the name its errors use),
``error`` (the exception class it raises), :meth:`~UdpDaemon.command`, the
:class:`ResendProbe` that tells it is ready (:meth:`~UdpDaemon._probe`) and, if it needs
files written first, :meth:`~UdpDaemon._prepare` — and this module runs the rest:

* start: the process in a session of its own (so its pid is its process group's id, see
  ``tests/peers/process.py``), its output to ``log_path`` in a temporary folder ``rundir``;
  ready once the probe is answered, failed if it exits first (checked every RESEND) or
  START_TIMEOUT passes; on failure it is stopped and ``error`` raised with the log's tail;
* stop: the whole process group (SIGTERM, up to STOP_GRACE, then SIGKILL), the log kept
  (:meth:`~tests.peers.process.KeepsLog.log_text`), the folder removed.  Idempotent.

Waiting never blocks the reactor.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any, ClassVar, Self

from twisted.internet import defer, protocol
from twisted.python import failure

from tests.peers.process import KeepsLog, stop_group

__all__ = ["RESEND", "START_TIMEOUT", "STOP_GRACE", "ResendProbe", "UdpDaemon"]

START_TIMEOUT = 10.0
STOP_GRACE = 2.0
RESEND = 0.05


def _reactor() -> Any:
    from twisted.internet import reactor

    return reactor


class ResendProbe(protocol.DatagramProtocol):
    """Sends :meth:`request` to ``target`` every RESEND seconds until a datagram comes back
    that :meth:`is_answer` accepts; ``answered`` fires then."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.answered: defer.Deferred[None] = defer.Deferred()
        self._timer: Any = None

    def request(self) -> bytes:
        raise NotImplementedError

    def is_answer(self, data: bytes) -> bool:
        raise NotImplementedError

    def startProtocol(self) -> None:  # noqa: N802 (Twisted API)
        self._send()

    def _send(self) -> None:
        if self.transport is None or self.answered.called:
            return
        self.transport.write(self.request(), self.target)
        self._timer = _reactor().callLater(RESEND, self._send)

    def datagramReceived(self, data: bytes, addr: Any) -> None:  # noqa: N802 (Twisted API)
        if not self.answered.called and self.is_answer(data):
            self.answered.callback(None)

    def stop(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()


class UdpDaemon(KeepsLog):
    """One daemon on ``host``, run from its own temporary folder ``rundir`` (prefixed
    ``rundir_prefix``), logging to ``rundir / log_name``."""

    #: the name its errors start with ("turnserver ...")
    program: ClassVar[str]
    #: what a failed start raises
    error: ClassVar[type[RuntimeError]]

    def __init__(self, host: str, rundir_prefix: str, log_name: str) -> None:
        self.host = host
        self.rundir = Path(tempfile.mkdtemp(prefix=rundir_prefix))
        self.log_path = self.rundir / log_name
        self._proc: subprocess.Popen[bytes] | None = None
        self._stopping: defer.Deferred[None] | None = None
        self._watch: Any = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def command(self) -> list[str]:
        """The command line (raises ``error`` when the program is not installed)."""
        raise NotImplementedError

    def _probe(self) -> ResendProbe:
        """A probe to the port that answers once the daemon is ready."""
        raise NotImplementedError

    def _prepare(self) -> None:
        """Write what the daemon reads at start (before :meth:`command`); nothing here."""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def start(self) -> defer.Deferred[Self]:
        """Start the daemon; fires with self once it answers its probe.  On failure, stops
        what was started and fails with ``error`` carrying the log tail."""
        return defer.ensureDeferred(self._start())

    async def _start(self) -> Self:
        if self._proc is not None:
            raise self.error("already started")
        self._prepare()
        argv = self.command()
        self._log_file = open(self.log_path, "ab")
        self._proc = subprocess.Popen(
            argv, cwd=self.rundir, stdin=subprocess.DEVNULL, stdout=self._log_file,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
        reactor = _reactor()
        probe = self._probe()
        listening = reactor.listenUDP(0, probe, interface=self.host)
        exited: defer.Deferred[Any] = defer.Deferred()

        def give_up() -> None:
            if not exited.called:
                exited.callback(f"not ready within {START_TIMEOUT:g} s")

        self._watch = reactor.callLater(0, self._watch_exit, exited)
        timeout = reactor.callLater(START_TIMEOUT, give_up)
        try:
            first = await defer.DeferredList([probe.answered, exited], fireOnOneCallback=True,
                                             consumeErrors=True)
        finally:
            probe.stop()
            await listening.stopListening()
            for timer in (self._watch, timeout):
                if timer.active():
                    timer.cancel()
        result, index = first
        if index == 0:
            return self
        await self.stop()
        raise self.error(f"{self.program} {result}; log tail:\n{self.log_tail()}")

    def _watch_exit(self, exited: defer.Deferred[Any]) -> None:
        """Fires ``exited`` if the daemon ends during start-up (checked every RESEND)."""
        if exited.called or self._proc is None:
            return
        if self._proc.poll() is not None:
            exited.callback(f"exited with status {self._proc.returncode} during start-up")
            return
        self._watch = _reactor().callLater(RESEND, self._watch_exit, exited)

    async def _stop(self) -> None:
        proc = self._proc
        if proc is None:
            return
        await stop_group(proc, STOP_GRACE, _reactor())
        self._close_log()
        shutil.rmtree(self.rundir, ignore_errors=True)

    def stop(self) -> defer.Deferred[None]:
        """Stop the whole process group (SIGTERM, up to STOP_GRACE, then SIGKILL) and remove
        its folder.  Idempotent."""
        if self._proc is None:
            shutil.rmtree(self.rundir, ignore_errors=True)
            return defer.succeed(None)
        if self._stopping is None:
            self._stopping = defer.ensureDeferred(self._stop())
        result: defer.Deferred[None] = defer.Deferred()

        def relay(value: Any) -> None:
            if isinstance(value, failure.Failure):
                result.errback(value)
            else:
                result.callback(None)

        self._stopping.addBoth(relay)
        return result
