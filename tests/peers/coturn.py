"""A real TURN server (Debian's coturn, ``turnserver``) for tests, on loopback.

Usage inside a trial test (the reactor is running)::

    turn = Coturn()                       # ports picked free at run time, a random secret
    await turn.start()                    # ready: it answers a STUN Binding request
    self.addCleanup(turn.stop)            # idempotent, returns a Deferred
    ... [webrtc] ice_servers = [{urls = [turn.url], secret = turn.secret}] ...

It runs the TURN REST API scheme the gateway mints credentials for (``use-auth-secret`` with
``static-auth-secret``), over UDP and TCP only (no TLS/DTLS listeners, no CLI, no web admin),
with its SQLite database, pid file and config in a temporary folder of its own, and the log
on its standard output (:meth:`log_text`; ``verbose`` logs each session's username).  The
secret is in the config file, not on the command line.  Loopback peers are allowed
(``allow-loopback-peers``): the gateway the browser relays to is on 127.0.0.1 here.

Why a process group: the peer is stopped by signalling its whole group (see
``tests/peers/process.py``), so nothing is left listening after a test.  Waiting never blocks
the reactor: readiness is a STUN Binding request re-sent (as STUN itself does) until the
server answers it.
"""

from __future__ import annotations

import os
import secrets
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from twisted.internet import defer, protocol
from twisted.python import failure

from tests.peers.ports import free_port
from tests.peers.process import KeepsLog, stop_group

__all__ = ["Coturn", "CoturnError", "binding_request"]

START_TIMEOUT = 10.0
STOP_GRACE = 2.0
RESEND = 0.05
#: relay ports (one per allocation: a browser makes one per TURN URL it gathers over)
RELAY_PORTS = 16
REALM = "wcsgw.test"
_MAGIC = 0x2112A442


class CoturnError(RuntimeError):
    """coturn failed to start; the message carries its log's tail."""


def _reactor() -> Any:
    from twisted.internet import reactor

    return reactor


def binding_request(transaction: bytes) -> bytes:
    """A STUN Binding request (RFC 5389) with no attributes."""
    return struct.pack("!HHI", 0x0001, 0, _MAGIC) + transaction


class _Probe(protocol.DatagramProtocol):
    """Sends Binding requests to ``target`` every RESEND seconds until a success response
    with our transaction id comes back; ``answered`` fires then."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.transaction = secrets.token_bytes(12)
        self.answered: defer.Deferred = defer.Deferred()
        self._timer: Any = None

    def startProtocol(self) -> None:  # noqa: N802 (Twisted API)
        self._send()

    def _send(self) -> None:
        if self.transport is None or self.answered.called:
            return
        self.transport.write(binding_request(self.transaction), self.target)
        self._timer = _reactor().callLater(RESEND, self._send)

    def datagramReceived(self, data: bytes, addr: Any) -> None:  # noqa: N802 (Twisted API)
        if (len(data) >= 20 and data[:2] == b"\x01\x01" and data[8:20] == self.transaction
                and not self.answered.called):
            self.answered.callback(None)

    def stop(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()


class Coturn(KeepsLog):
    """One turnserver on ``host:port`` (UDP and TCP) relaying from ``host``.

    Attributes: ``host``, ``port``, ``secret`` (``static-auth-secret``), ``realm``, ``url``
    (``turn:host:port``), ``relay_ports`` (the range it allocates from), ``rundir``,
    ``log_path``.
    """

    def __init__(self, secret: str | None = None, host: str = "127.0.0.1",
                 verbose: bool = True) -> None:
        self.host = host
        self.secret = secret if secret is not None else secrets.token_urlsafe(24)
        self.realm = REALM
        self.verbose = verbose
        self.port = free_port("udp+tcp", host)
        first = free_port("udp", host, span=RELAY_PORTS)
        self.relay_ports = range(first, first + RELAY_PORTS)
        self.rundir = Path(tempfile.mkdtemp(prefix="wcsgw-turn-"))
        self.log_path = self.rundir / "turnserver.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._stopping: defer.Deferred | None = None
        self._watch: Any = None

    @property
    def url(self) -> str:
        return f"turn:{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def config_text(self) -> str:
        lines = [
            f"listening-ip={self.host}", f"listening-port={self.port}",
            f"relay-ip={self.host}",
            f"min-port={self.relay_ports[0]}", f"max-port={self.relay_ports[-1]}",
            "use-auth-secret", f"static-auth-secret={self.secret}", f"realm={self.realm}",
            "no-tls", "no-dtls", "no-cli", "no-software-attribute",
            "allow-loopback-peers",
            "log-file=stdout", "simple-log",
            f"pidfile={self.rundir / 'turnserver.pid'}",
            f"userdb={self.rundir / 'turndb'}",
        ]
        if self.verbose:
            lines.append("verbose")
        return "\n".join(lines) + "\n"

    def command(self) -> list[str]:
        binary = shutil.which("turnserver") or shutil.which(
            "turnserver", path="/usr/bin:/usr/sbin:/bin:/sbin")
        if binary is None:
            raise CoturnError("turnserver not found: install Debian's coturn package "
                              "(`make test` does)")
        return [binary, "-c", str(self.rundir / "turnserver.conf")]

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    async def _start(self) -> "Coturn":
        if self._proc is not None:
            raise CoturnError("already started")
        conf = self.rundir / "turnserver.conf"
        conf.write_text(self.config_text())
        os.chmod(conf, 0o600)  # it holds the secret
        argv = self.command()
        self._log_file = open(self.log_path, "ab")
        self._proc = subprocess.Popen(
            argv, cwd=self.rundir, stdin=subprocess.DEVNULL, stdout=self._log_file,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
        reactor = _reactor()
        probe = _Probe((self.host, self.port))
        listening = reactor.listenUDP(0, probe, interface=self.host)
        exited: defer.Deferred = defer.Deferred()
        self._watch = reactor.callLater(0, self._watch_exit, exited)
        timeout = reactor.callLater(START_TIMEOUT, lambda: exited.called or exited.callback(
            f"not ready within {START_TIMEOUT:g} s"))
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
        raise CoturnError(f"turnserver {result}; log tail:\n{self.log_tail()}")

    def _watch_exit(self, exited: defer.Deferred) -> None:
        """Fires ``exited`` if turnserver ends during start-up (checked every RESEND)."""
        if exited.called or self._proc is None:
            return
        if self._proc.poll() is not None:
            exited.callback(f"exited with status {self._proc.returncode} during start-up")
            return
        self._watch = _reactor().callLater(RESEND, self._watch_exit, exited)

    def start(self) -> "defer.Deferred[Coturn]":
        """Start turnserver; fires with self once it answers STUN on its port.  On failure,
        stops what was started and fails with the log tail."""
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
