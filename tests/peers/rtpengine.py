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
``ping`` re-sent until ``pong`` comes back.  Starting, the readiness race and stopping are
``tests/peers/daemon.py``'s, shared with coturn; this module holds rtpengine's own parts.
"""

from __future__ import annotations

import secrets
import shutil

from tests.peers.daemon import ResendProbe, UdpDaemon
from tests.peers.ports import free_port

__all__ = ["RtpEngine", "RtpEngineError"]

#: media ports: four per call (RTP and RTCP toward each side), a few calls at once
MEDIA_PORTS = 24


class RtpEngineError(RuntimeError):
    """rtpengine failed to start; the message carries its log's tail."""


class _Ping(ResendProbe):
    """The ng ``ping`` (bencoded, after a cookie), answered by the matching ``pong``."""

    def __init__(self, target: tuple[str, int]) -> None:
        super().__init__(target)
        self.cookie = secrets.token_hex(6).encode()

    def request(self) -> bytes:
        return self.cookie + b" d7:command4:pinge"

    def is_answer(self, data: bytes) -> bool:
        return data.startswith(self.cookie + b" ") and b"4:pong" in data


class RtpEngine(UdpDaemon):
    """One rtpengine: ng control on ``host:ng_port`` (UDP), media on ``host`` from
    ``media_ports``.  Attributes: ``host``, ``ng_port``, ``ng_socket`` (Kamailio's
    ``rtpengine_sock``), ``media_ports``, ``rundir``, ``log_path``.  :meth:`start` fires
    once it answers ``ping``."""

    program = "rtpengine"
    error = RtpEngineError

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.ng_port = free_port("udp", host)
        first = free_port("udp", host, span=MEDIA_PORTS)
        self.media_ports = range(first, first + MEDIA_PORTS)
        super().__init__(host, "wcsgw-rtpe-", "rtpengine.log")

    @property
    def ng_socket(self) -> str:
        return f"udp:{self.host}:{self.ng_port}"

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

    def _probe(self) -> ResendProbe:
        return _Ping((self.host, self.ng_port))
