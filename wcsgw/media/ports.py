"""UDP port allocation for media from a configured range.

Firewalls and NAT rules on a gateway open a fixed RTP range, so every media socket (SIP-side
RTP/RTCP pairs, the WebRTC leg's socket) takes its port from here. The allocator

* hands out a port only after a bind test (another process may hold it),
* never hands out a port twice while it is in use (until :meth:`PortAllocator.release`),
* walks the range round-robin, so a port just released is the *last* to be reused: late
  packets of a finished call do not land in the next call.

The bind test closes its socket again, so a window remains in which another process can take
the port; callers retry on ``CannotListenError`` (release the ports, allocate again).
"""

from __future__ import annotations

import socket
from typing import Iterable

__all__ = ["PortAllocator", "PortsExhausted"]


class PortsExhausted(RuntimeError):
    """No free (or bindable) ports left in the range."""


class PortAllocator:
    def __init__(self, host: str, port_min: int, port_max: int) -> None:
        if not 0 < port_min <= port_max <= 65535:
            raise ValueError(f"bad port range {port_min}-{port_max}")
        self.host = host
        self.port_min = port_min
        self.port_max = port_max
        self._in_use: set[int] = set()
        self._next = port_min
        self._family = socket.AF_INET6 if ":" in host else socket.AF_INET

    @property
    def in_use(self) -> frozenset[int]:
        return frozenset(self._in_use)

    @property
    def size(self) -> int:
        return self.port_max - self.port_min + 1

    def _bindable(self, port: int) -> bool:
        s = socket.socket(self._family, socket.SOCK_DGRAM)
        try:
            s.bind((self.host, port))
        except OSError:
            return False
        finally:
            s.close()
        return True

    def allocate(self, count: int = 1, even: bool = False) -> list[int]:
        """``count`` consecutive free ports, the first one even if ``even`` (RTP/RTCP pairs:
        ``allocate(2, even=True)``, RFC 3550 §11). Raises :class:`PortsExhausted`."""
        if count < 1:
            raise ValueError("count must be at least 1")
        step = 2 if even else 1
        first = self.port_min + (self.port_min % 2 if even else 0)
        candidates = range(first, self.port_max - count + 2, step)
        if not candidates:
            raise PortsExhausted(f"range {self.port_min}-{self.port_max} cannot hold {count} ports")
        # start the scan at the cursor (round robin), wrapping once through the range
        start = self._next
        if even and start % 2:
            start += 1
        ordered = [p for p in candidates if p >= start] + [p for p in candidates if p < start]
        for base in ordered:
            ports = list(range(base, base + count))
            if any(p in self._in_use for p in ports):
                continue
            if all(self._bindable(p) for p in ports):
                self._in_use.update(ports)
                self._next = base + count if base + count <= self.port_max else self.port_min
                return ports
        raise PortsExhausted(
            f"no {count} free port(s) in {self.port_min}-{self.port_max} on {self.host} ({len(self._in_use)} in use)"
        )

    def release(self, ports: Iterable[int]) -> None:
        """Give ports back (unknown ports are ignored, so a double release is harmless)."""
        for p in ports:
            self._in_use.discard(p)
