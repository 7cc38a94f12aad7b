"""UDP port allocation for media from a configured range.

Firewalls and NAT rules on a gateway open a fixed RTP range, so every media socket (SIP-side
RTP/RTCP pairs, the WebRTC leg's socket) takes its port from here. The allocator

* hands out a port only after a bind test (another process may hold it),
* never hands out a port twice while it is in use (until :meth:`PortAllocator.release`),
* walks the range round-robin, so a port just released is the *last* to be reused: late
  packets of a finished call do not land in the next call.

The bind test closes its socket again, so a window remains in which another process can take
the port; callers retry on ``CannotListenError`` (release the ports, allocate again).

**The reserve** (``limits.port_reserve``): inside :meth:`PortAllocator.keeping`, an allocation
that would leave fewer than the given number of ports free is refused with
:class:`PortsReserved`.  The call gateway wraps the start of a call of a session that already
has one, so that session cannot take the last ports and every other session can still place
its first call.  Why a block around the start and not a parameter of :meth:`allocate`: the
sockets of a call (SIP-side RTP, the browser leg, video) are opened deep inside the call and
media layers, which neither know nor should know whose call it is; every one of them is
opened synchronously inside ``start()``, so the block covers exactly that call's ports.
"""

from __future__ import annotations

import itertools
import socket
from contextlib import contextmanager
from typing import Iterable, Iterator

__all__ = ["PortAllocator", "PortsExhausted", "PortsReserved"]


class PortsExhausted(RuntimeError):
    """No free (or bindable) ports left in the range."""


class PortsReserved(PortsExhausted):
    """Ports are free, but only the reserve: refused inside :meth:`PortAllocator.keeping`."""

    def __init__(self, message: str, reserve: int) -> None:
        super().__init__(message)
        self.reserve = reserve


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
        self._keep = 0

    @property
    def in_use(self) -> frozenset[int]:
        return frozenset(self._in_use)

    @property
    def size(self) -> int:
        return self.port_max - self.port_min + 1

    @property
    def free(self) -> int:
        """Ports of the range not handed out (another process may still hold some)."""
        return self.size - len(self._in_use)

    @contextmanager
    def keeping(self, reserve: int) -> Iterator[None]:
        """Within the block, :meth:`allocate` refuses (:class:`PortsReserved`) whatever would
        leave fewer than ``reserve`` ports free.  Blocks nest; the largest reserve holds."""
        outer = self._keep
        self._keep = max(outer, reserve)
        try:
            yield
        finally:
            self._keep = outer

    def _bindable(self, port: int) -> bool:
        s = socket.socket(self._family, socket.SOCK_DGRAM)
        try:
            s.bind((self.host, port))
        except OSError:
            return False
        finally:
            s.close()
        return True

    def _partner_taken(self, port: int) -> bool:
        """Can ``port`` no longer be half of an even RTP/RTCP pair?"""
        partner = port ^ 1
        return not self.port_min <= partner <= self.port_max or partner in self._in_use

    def _holes(self) -> set[int]:
        """The free ports whose partner is taken: partners of ports in use, and an end of the
        range whose partner lies outside it."""
        holes = {p ^ 1 for p in self._in_use}
        holes.update(p for p in (self.port_min, self.port_max) if self._partner_taken(p))
        return {p for p in holes
                if self.port_min <= p <= self.port_max and p not in self._in_use
                and self._partner_taken(p)}

    def allocate(self, count: int = 1, even: bool = False) -> list[int]:
        """``count`` consecutive free ports, the first one even if ``even`` (RTP/RTCP pairs:
        ``allocate(2, even=True)``, RFC 3550 §11). Raises :class:`PortsExhausted`."""
        if count < 1:
            raise ValueError("count must be at least 1")
        if self._keep and self.free - count < self._keep:
            raise PortsReserved(
                f"{self.free} port(s) free in {self.port_min}-{self.port_max}; the last "
                f"{self._keep} are kept in reserve", self._keep)
        step = 2 if even else 1
        first = self.port_min + (self.port_min % 2 if even else 0)
        candidates = range(first, self.port_max - count + 2, step)
        if not candidates:
            raise PortsExhausted(f"range {self.port_min}-{self.port_max} cannot hold {count} ports")
        # start the scan at the cursor (round robin), wrapping once through the range; range
        # slices, not lists: a call set-up must not cost a walk over the whole range
        start = self._next
        if even and start % 2:
            start += 1
        split = max(0, -(-(start - first) // step))  # the first candidate >= start
        ordered = itertools.chain(candidates[split:], candidates[:split])
        if count == 1 and not even:
            # A single port (a browser leg) goes first into a hole — a free port whose
            # RTP/RTCP partner is taken — without moving the cursor: otherwise every call's
            # single port splits a pair, and a range can have ports free but no pair for the
            # next call's RTP socket (the reserve would be free ports no call can use).
            # The holes are found from the ports in use (and the range's two ends), not by
            # walking the range, then tried in the same round-robin order.
            for port in sorted(self._holes(), key=lambda p: (p < start, p)):
                if self._bindable(port):
                    self._in_use.add(port)
                    return [port]
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
