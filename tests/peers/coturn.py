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
server answers it.  Starting, the readiness race and stopping are
``tests/peers/daemon.py``'s, shared with rtpengine; this module holds coturn's own parts.
"""

from __future__ import annotations

import os
import secrets
import shutil
import struct

from tests.peers.daemon import ResendProbe, UdpDaemon
from tests.peers.ports import free_port

__all__ = ["Coturn", "CoturnError", "binding_request"]

#: relay ports (one per allocation: a browser makes one per TURN URL it gathers over)
RELAY_PORTS = 16
REALM = "wcsgw.test"
_MAGIC = 0x2112A442


class CoturnError(RuntimeError):
    """coturn failed to start; the message carries its log's tail."""


def binding_request(transaction: bytes) -> bytes:
    """A STUN Binding request (RFC 5389) with no attributes."""
    return struct.pack("!HHI", 0x0001, 0, _MAGIC) + transaction


class _Probe(ResendProbe):
    """Binding requests, answered by a success response with our transaction id."""

    def __init__(self, target: tuple[str, int]) -> None:
        super().__init__(target)
        self.transaction = secrets.token_bytes(12)

    def request(self) -> bytes:
        return binding_request(self.transaction)

    def is_answer(self, data: bytes) -> bool:
        return len(data) >= 20 and data[:2] == b"\x01\x01" and data[8:20] == self.transaction


class Coturn(UdpDaemon):
    """One turnserver on ``host:port`` (UDP and TCP) relaying from ``host``.

    Attributes: ``host``, ``port``, ``secret`` (``static-auth-secret``), ``realm``, ``url``
    (``turn:host:port``), ``relay_ports`` (the range it allocates from), ``rundir``,
    ``log_path``.  :meth:`start` fires once it answers STUN on its port.
    """

    program = "turnserver"
    error = CoturnError

    def __init__(self, secret: str | None = None, host: str = "127.0.0.1",
                 verbose: bool = True) -> None:
        self.secret = secret if secret is not None else secrets.token_urlsafe(24)
        self.realm = REALM
        self.verbose = verbose
        self.port = free_port("udp+tcp", host)
        first = free_port("udp", host, span=RELAY_PORTS)
        self.relay_ports = range(first, first + RELAY_PORTS)
        super().__init__(host, "wcsgw-turn-", "turnserver.log")

    @property
    def url(self) -> str:
        return f"turn:{self.host}:{self.port}"

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

    def _prepare(self) -> None:
        conf = self.rundir / "turnserver.conf"
        conf.write_text(self.config_text())
        os.chmod(conf, 0o600)  # it holds the secret

    def _probe(self) -> ResendProbe:
        return _Probe((self.host, self.port))
