"""Free loopback ports for peers and the gateway under test.

Ports are never fixed in tests: parallel runs, a developer's own Kamailio on 5060 or a port
still in TIME_WAIT would make fixed ports flaky.  A port is chosen by letting the kernel bind
port 0, then checked free for every protocol asked for (SIP uses UDP *and* TCP on one port).
Ports handed out in this process are remembered and never handed out again, because a peer
started later may not have bound its port yet when the next port is picked.
"""

from __future__ import annotations

import socket

__all__ = ["free_port"]

_handed_out: set[int] = set()

_KINDS = {"udp": (socket.SOCK_DGRAM,), "tcp": (socket.SOCK_STREAM,),
          "udp+tcp": (socket.SOCK_STREAM, socket.SOCK_DGRAM),
          "tcp+udp": (socket.SOCK_STREAM, socket.SOCK_DGRAM)}


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _bindable(host: str, port: int, kinds: tuple[int, ...]) -> bool:
    sockets = []
    try:
        for kind in kinds:
            s = socket.socket(_family(host), kind)
            sockets.append(s)
            if kind == socket.SOCK_STREAM:
                # Same option as Twisted's and Kamailio's listeners, so a port in TIME_WAIT
                # (free for them) is not refused here.
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        for s in sockets:
            s.close()


def free_port(kind: str = "udp+tcp", host: str = "127.0.0.1", span: int = 1) -> int:
    """A port on ``host`` free for ``kind`` ("udp", "tcp" or "udp+tcp").

    ``span`` > 1 asks for that many consecutive free ports and returns the first (baresip, for
    one, also binds TLS on SIP port + 1).  Raises RuntimeError if none is found after many tries.
    """
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {', '.join(_KINDS)}, got {kind!r}")
    kinds = _KINDS[kind]
    for _ in range(500):
        with socket.socket(_family(host), kinds[0]) as probe:
            probe.bind((host, 0))
            first = probe.getsockname()[1]
        block = range(first, first + span)
        if block[-1] > 65535 or any(p in _handed_out for p in block):
            continue
        if all(_bindable(host, p, kinds) for p in block):
            _handed_out.update(block)
            return first
    raise RuntimeError(f"no free {kind} port (span {span}) found on {host}")
