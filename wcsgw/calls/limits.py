"""The counting behind ``[limits]``, sans-IO: every decision takes ``now`` from the caller.

:class:`SlidingWindow` is the per-address call rate (``limits.calls_per_minute_per_ip``).  Why a
log of event times and not a token bucket or fixed one-minute slots: the setting promises "at
most N calls in *any* 60 s", which a fixed slot breaks at its edges (2N across a boundary) and
a bucket only approximates; keeping the times costs at most N floats per active address, and
the limit is small.  Only admitted events are recorded, so a client that keeps knocking while
refused does not push its own reopening further away.

:func:`effective_reserve` is the port reserve the gateway keeps for sessions' first calls.

:func:`address_key` is what "per IP" counts by: an IPv4 address, but an IPv6 client's /64 —
one subscriber, one host behind SLAAC privacy addresses, gets a whole /64 and could take a
fresh address for every session, so counting single IPv6 addresses would limit nothing.
"""

from __future__ import annotations

import ipaddress
from collections import deque
from typing import Hashable

__all__ = ["SlidingWindow", "address_key", "effective_reserve"]


def address_key(host: str) -> str:
    """The key an address is limited by: IPv4 as is (also when IPv4-mapped into IPv6), IPv6
    as its /64; anything that is not an IP address (a UNIX socket's name) as given."""
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class SlidingWindow:
    """At most ``limit`` admitted events per key in any ``window`` seconds."""

    def __init__(self, limit: int, window: float = 60.0) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("limit must be >= 1 and window > 0")
        self.limit = limit
        self.window = window
        self._times: dict[Hashable, deque[float]] = {}
        self._next_sweep = float("-inf")

    def __len__(self) -> int:
        """How many keys are remembered (for tests: idle keys must not pile up)."""
        return len(self._times)

    def _recent(self, key: Hashable, now: float) -> deque[float]:
        times = self._times.get(key)
        if times is None:
            return deque()
        while times and times[0] <= now - self.window:
            times.popleft()
        return times

    def _sweep(self, now: float) -> None:
        """Forget keys with nothing in the window — at most once per window, so a scan of
        every key costs O(keys) per minute, not per call."""
        if now < self._next_sweep:
            return
        self._next_sweep = now + self.window
        for key in [k for k, times in self._times.items() if not times or times[-1] <= now - self.window]:
            del self._times[key]

    def admit(self, key: Hashable, now: float) -> bool:
        """Record an event for ``key`` at ``now`` if the window has room; False otherwise
        (nothing recorded)."""
        self._sweep(now)
        times = self._recent(key, now)
        if len(times) >= self.limit:
            return False
        times.append(now)
        self._times[key] = times
        return True

    def retry_after(self, key: Hashable, now: float) -> float:
        """Seconds until ``key`` may be admitted again (0 when it may now)."""
        times = self._recent(key, now)
        if len(times) < self.limit:
            return 0.0
        return max(0.0, times[len(times) - self.limit] + self.window - now)


def effective_reserve(port_reserve: int, range_size: int) -> int:
    """``limits.port_reserve``, capped at a quarter of the media port range: a reserve larger
    than that would refuse second calls on a small range long before it is busy."""
    return max(0, min(port_reserve, range_size // 4))
