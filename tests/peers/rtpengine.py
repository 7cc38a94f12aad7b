"""A real media relay (Debian's rtpengine, userspace only) for tests, on loopback.

Usage inside a trial test (the reactor is running)::

    relay = RtpEngine()                   # control and media ports picked free at run time
    await relay.start()                   # ready: it answers the ng protocol's "ping"
    self.addCleanup(relay.stop)           # idempotent, returns a Deferred
    ... a Kamailio with modparam("rtpengine", "rtpengine_sock", relay.ng_socket) ...

A SIP proxy that calls ``rtpengine_manage()`` anchors the media there: both ends' SDP is
rewritten to name the relay, and every RTP packet (RFC 4733 events too) crosses it.  That is
what a PSTN/GSM gateway does with a call's media, so the GSM gateway hop of
tests/test_e2e_two_hop.py uses it.  No kernel module and no iptables (``--table=-1``); its log
(``--log-stderr``, each ng command and each call's final packet counts) is :meth:`log_text`.

Why a process group: stopped by signalling its whole group (``tests/peers/process.py``), so
nothing is left listening after a test.  Waiting never blocks the reactor: readiness is a
``ping`` re-sent until ``pong`` comes back.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from twisted.internet import defer, protocol
from twisted.python import failure

from tests.peers.ports import free_port
from tests.peers.process import KeepsLog, stop_group

__all__ = ["RtpEngine", "RtpEngineError"]

START_TIMEOUT = 10.0
STOP_GRACE = 2.0
RESEND = 0.05
#: media ports: four per call (RTP and RTCP toward each side), a few calls at once
MEDIA_PORTS = 24


class RtpEngineError(RuntimeError):
    """rtpengine failed to start; the message carries its log's tail."""


def _reactor() -> Any:
    from twisted.internet import reactor

    return reactor


class _Ping(protocol.DatagramProtocol):
    """Sends the ng ``ping`` (bencoded, after a cookie) every RESEND seconds until the
    matching ``pong``; ``answered`` fires then."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.cookie = secrets.token_hex(6).encode()
        self.answered: defer.Deferred = defer.Deferred()
        self._timer: Any = None

    def startProtocol(self) -> None:  # noqa: N802 (Twisted API)
        self._send()

    def _send(self) -> None:
        if self.transport is None or self.answered.called:
            return
        self.transport.write(self.cookie + b" d7:command4:pinge", self.target)
        self._timer = _reactor().callLater(RESEND, self._send)

    def datagramReceived(self, data: bytes, addr: Any) -> None:  # noqa: N802 (Twisted API)
        if data.startswith(self.cookie + b" ") and b"4:pong" in data and not self.answered.called:
            self.answered.callback(None)

    def stop(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()


class RtpEngine(KeepsLog):
    """One rtpengine: ng control on ``host:ng_port`` (UDP), media on ``host`` from
    ``media_ports``.  Attributes: ``host``, ``ng_port``, ``ng_socket`` (Kamailio's
    ``rtpengine_sock``), ``media_ports``, ``rundir``, ``log_path``."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.ng_port = free_port("udp", host)
        first = free_port("udp", host, span=MEDIA_PORTS)
        self.media_ports = range(first, first + MEDIA_PORTS)
        self.rundir = Path(tempfile.mkdtemp(prefix="wcsgw-rtpe-"))
        self.log_path = self.rundir / "rtpengine.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._stopping: defer.Deferred | None = None
        self._watch: Any = None

    @property
    def ng_socket(self) -> str:
        return f"udp:{self.host}:{self.ng_port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def command(self) -> list[str]:
        binary = shutil.which("rtpengine") or shutil.which(
            "rtpengine", path="/usr/bin:/usr/sbin:/bin:/sbin")
        if binary is None:
            raise RtpEngineError("rtpengine not found: install Debian's rtpengine-daemon "
                                 "package (`make test` does)")
        return [binary, "--config-file=none", "--foreground", "--log-stderr", "--table=-1",
                f"--interface={self.host}", f"--listen-ng={self.host}:{self.ng_port}",
                f"--port-min={self.media_ports[0]}", f"--port-max={self.media_ports[-1]}",
                f"--pidfile={self.rundir / 'rtpengine.pid'}"]

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    async def _start(self) -> "RtpEngine":
        if self._proc is not None:
            raise RtpEngineError("already started")
        self._log_file = open(self.log_path, "ab")
        self._proc = subprocess.Popen(
            self.command(), cwd=self.rundir, stdin=subprocess.DEVNULL, stdout=self._log_file,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
        reactor = _reactor()
        ping = _Ping((self.host, self.ng_port))
        listening = reactor.listenUDP(0, ping, interface=self.host)
        exited: defer.Deferred = defer.Deferred()
        self._watch = reactor.callLater(0, self._watch_exit, exited)
        timeout = reactor.callLater(START_TIMEOUT, lambda: exited.called or exited.callback(
            f"not ready within {START_TIMEOUT:g} s"))
        try:
            first = await defer.DeferredList([ping.answered, exited], fireOnOneCallback=True,
                                             consumeErrors=True)
        finally:
            ping.stop()
            await listening.stopListening()
            for timer in (self._watch, timeout):
                if timer.active():
                    timer.cancel()
        result, index = first
        if index == 0:
            return self
        await self.stop()
        raise RtpEngineError(f"rtpengine {result}; log tail:\n{self.log_tail()}")

    def _watch_exit(self, exited: defer.Deferred) -> None:
        """Fires ``exited`` if rtpengine ends during start-up (checked every RESEND)."""
        if exited.called or self._proc is None:
            return
        if self._proc.poll() is not None:
            exited.callback(f"exited with status {self._proc.returncode} during start-up")
            return
        self._watch = _reactor().callLater(RESEND, self._watch_exit, exited)

    def start(self) -> "defer.Deferred[RtpEngine]":
        """Start rtpengine; fires with self once it answers ``ping``.  On failure, stops what
        was started and fails with the log tail."""
        return defer.ensureDeferred(self._start())

    async def _stop(self) -> None:
        proc = self._proc
        if proc is None:
            return
        await stop_group(proc, STOP_GRACE, _reactor())
        self._close_log()
        shutil.rmtree(self.rundir, ignore_errors=True)

    def stop(self) -> "defer.Deferred[None]":
        """Stop the whole process group (SIGTERM, up to 2 s, then SIGKILL) and remove its
        folder.  Idempotent."""
        if self._proc is None:
            shutil.rmtree(self.rundir, ignore_errors=True)
            return defer.succeed(None)
        if self._stopping is None:
            self._stopping = defer.ensureDeferred(self._stop())
        result: defer.Deferred = defer.Deferred()

        def relay(value: Any) -> None:
            if isinstance(value, failure.Failure):
                result.errback(value)
            else:
                result.callback(None)

        self._stopping.addBoth(relay)
        return result
