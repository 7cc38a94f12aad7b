"""rtpengine (Debian package ``rtpengine-daemon``) as the side-by-side benchmark peer.

:class:`Rtpengine` starts ``rtpengine`` in userspace only (``--table=-1``: no kernel module, no
iptables — every packet is forwarded by its own threads, the figure the issue compares with),
on 127.0.0.1 with a free ng control port and a media port range of its own, logging to
``<workdir>/rtpengine.log``, in its own process group (``harness.Proc``: stopped as a group,
whatever happens), and waits until it answers the ng ``ping``.  ``pid`` is rtpengine itself
(``--foreground``), so the bench's /proc figures are its media plane alone: the signalling
front (:mod:`bench.rtpengine_front`) runs inside the load caller.

Calls are deleted at once on ``delete`` (``--delete-delay=0``), so a run's RSS figures do not
carry the previous calls, and the media timeout is long enough for any bench window.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import time

from bench.harness import Proc

__all__ = ["Rtpengine", "ng_ping", "udp_port"]


def udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ng_ping(port: int, timeout: float = 0.3) -> bool:
    """One ng ``ping``; True when rtpengine answered ``pong``."""
    cookie = secrets.token_hex(6).encode()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(cookie + b" d7:command4:pinge", ("127.0.0.1", port))
        try:
            data = s.recv(2048)
        except OSError:
            return False
    return data.startswith(cookie + b" ") and b"4:pong" in data


class Rtpengine:
    name = "rtpengine"

    def __init__(self, workdir: str, media_ports: str = "20000-29999",
                 start_timeout: float = 20.0) -> None:
        binary = shutil.which("rtpengine") or shutil.which(
            "rtpengine", path="/usr/bin:/usr/sbin:/bin:/sbin")
        if binary is None:
            raise RuntimeError("rtpengine not found: install Debian's rtpengine-daemon "
                               "(`make bench` does)")
        low, high = (int(p) for p in media_ports.split("-"))
        self.ng_port = udp_port()
        self.log_path = os.path.join(workdir, "rtpengine.log")
        self.p = Proc([binary, "--config-file=none", "--foreground", "--log-stderr",
                       "--table=-1", "--interface=127.0.0.1",
                       f"--listen-ng=127.0.0.1:{self.ng_port}",
                       f"--port-min={low}", f"--port-max={high}", "--delete-delay=0",
                       "--timeout=600", f"--pidfile={os.path.join(workdir, 'rtpengine.pid')}"],
                      self.log_path)
        self.pid = self.p.pid
        deadline = time.monotonic() + start_timeout
        while not ng_ping(self.ng_port):
            if self.p.proc.poll() is not None or time.monotonic() > deadline:
                self.p.stop()
                raise RuntimeError(f"rtpengine did not start; see {self.log_path}")

    def caller_args(self, echo_port: int) -> list[str]:
        return ["--adapter", "rtpengine", "--ng", f"127.0.0.1:{self.ng_port}",
                "--sip-domain", "127.0.0.1", "--sip-port", str(echo_port)]

    def stop(self) -> None:
        self.p.stop()
