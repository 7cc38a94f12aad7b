"""A router that loses and delays packets: netem's job, done by a TUN device and a small program.

Usage inside a trial test, with :mod:`tests.peers.netns` (the router namespace forwards
between ``lan`` and ``wan``)::

    router = ImpairingRouter(router_ns, [("lan", udp_to(sip_port)), ("wan", udp_from(sip_port))],
                             loss=0.2, delay=0.2, seed=15)
    await router.start()              # the program runs in router_ns, its own process group
    self.addCleanup(router.stop)      # stop() is idempotent and returns a Deferred
    ... traffic ...
    counts = router.counts()          # {"received", "forwarded", "dropped", "reordered",
                                      #  "dropped_from": {source address: count}}

Why not ``tc qdisc ... netem``: the kernels this suite runs on may lack ``sch_netem`` (the CI
machine's does: "Specified qdisc kind is unknown"), and a loss test that skips where it matters
proves nothing.  ``tbf`` and iptables' ``-m statistic`` exist, but neither delays packets, and
random *delay* — each packet its own, so packets overtake each other as they do with netem's
jitter — is half of what SIP retransmissions must survive.  So the router's forwarding path
goes through user space instead:

* a TUN device (``imp0``) in the router namespace, read and written by :func:`main`, this
  module run as a program (``python3 impair.py --tun imp0 ...``) inside the namespace;
* policy routing: ``ip rule add iif <interface> [selector] lookup 100`` for each path to
  impair, table 100 holding one route, ``default dev imp0`` — so what the router would forward
  from that interface goes into the TUN device instead; the program drops each packet with
  probability ``loss``, or writes it back after a uniform random ``0..delay`` seconds; the
  kernel takes the written packet as arriving *on imp0* (no rule matches ``iif imp0``), looks
  it up in the main table and forwards it where it was going;
* reverse-path filtering off (a packet from the LAN's address arriving on imp0 would fail it),
  and no ICMP redirects.

Selectors are ``ip rule`` words (``ipproto udp dport 5060``): :func:`udp_to` and
:func:`udp_from` impair one UDP port's traffic (the SIP path) and leave the rest (RTP, the
test's control connections) alone; an empty selector impairs everything from that interface.
The program writes its counts to a JSON file (atomically, at most every 50 ms and at exit), so
a test can assert that the impairment really happened: ``dropped`` and ``reordered`` (written
after a packet that arrived later) above 0.  It never forwards a packet twice and never
invents one; it needs only the standard library, so the namespace needs no virtualenv.
"""

from __future__ import annotations

import argparse
import fcntl
import heapq
import json
import os
import random
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

__all__ = ["ImpairingRouter", "main", "udp_from", "udp_to"]

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
TABLE = "100"
STATS_EVERY = 0.05
START_TIMEOUT = 10.0


def udp_to(port: int) -> list[str]:
    """The ``ip rule`` selector of UDP packets to ``port``."""
    return ["ipproto", "udp", "dport", str(port)]


def udp_from(port: int) -> list[str]:
    """The ``ip rule`` selector of UDP packets from ``port``."""
    return ["ipproto", "udp", "sport", str(port)]


# -- the program (runs inside the router namespace) --------------------------------------------


class Impairer:
    """Drop or delay each packet (sans-IO: packets and "now" in, packets due out)."""

    def __init__(self, loss: float, delay: float, rng: random.Random) -> None:
        self.loss = loss
        self.delay = delay
        self.rng = rng
        self._queue: list[tuple[float, int, bytes]] = []
        self._arrivals = 0
        self._newest_out = -1
        self.counts: dict[str, Any] = {"received": 0, "forwarded": 0, "dropped": 0,
                                       "reordered": 0, "dropped_from": {}}

    def arrive(self, packet: bytes, now: float) -> None:
        if len(packet) < 20 or packet[0] >> 4 != 4:
            # Not IPv4: what the kernel itself says on the device (IPv6 router solicitations
            # before disable_ipv6 took effect); no rule routes anything else here.
            self.counts["ignored"] = self.counts.get("ignored", 0) + 1
            return
        self.counts["received"] += 1
        if self.rng.random() < self.loss:
            self.counts["dropped"] += 1
            source = ".".join(str(b) for b in packet[12:16])
            dropped_from = self.counts["dropped_from"]
            dropped_from[source] = dropped_from.get(source, 0) + 1
            return
        heapq.heappush(self._queue, (now + self.rng.uniform(0.0, self.delay), self._arrivals,
                                     packet))
        self._arrivals += 1

    def next_due(self) -> float | None:
        return self._queue[0][0] if self._queue else None

    def due(self, now: float) -> list[bytes]:
        out = []
        while self._queue and self._queue[0][0] <= now:
            _, order, packet = heapq.heappop(self._queue)
            if order < self._newest_out:
                self.counts["reordered"] += 1
            self._newest_out = max(self._newest_out, order)
            self.counts["forwarded"] += 1
            out.append(packet)
        return out


def _write_stats(path: str, counts: dict[str, Any]) -> None:
    temp = f"{path}.tmp"
    with open(temp, "w") as f:
        json.dump(counts, f)
    os.replace(temp, path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="lose and delay what a TUN device carries")
    parser.add_argument("--tun", required=True)
    parser.add_argument("--loss", type=float, required=True)
    parser.add_argument("--delay", type=float, required=True, help="maximum delay, seconds")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--stats", required=True)
    args = parser.parse_args(argv)
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", args.tun.encode(), IFF_TUN | IFF_NO_PI))
    os.set_blocking(fd, False)
    impairer = Impairer(args.loss, args.delay, random.Random(args.seed))
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    written = dict(impairer.counts, ready=True)
    _write_stats(args.stats, written)
    while not stopping:
        now = time.monotonic()
        due = impairer.next_due()
        timeout = STATS_EVERY if due is None else min(STATS_EVERY, max(0.0, due - now))
        try:
            readable, _, _ = select.select([fd], [], [], timeout)
        except InterruptedError:
            continue
        now = time.monotonic()
        while readable:
            try:
                impairer.arrive(os.read(fd, 65535), now)
            except BlockingIOError:
                break
        for packet in impairer.due(time.monotonic()):
            try:
                os.write(fd, packet)
            except OSError:
                impairer.counts["forwarded"] -= 1  # the kernel refused it: lost after all
        if impairer.counts != {k: written[k] for k in impairer.counts}:
            written = json.loads(json.dumps(dict(impairer.counts, ready=True)))  # a deep copy
            _write_stats(args.stats, written)
    _write_stats(args.stats, dict(impairer.counts, ready=True, stopped=True))
    return 0


# -- the test's side -----------------------------------------------------------------------------


class ImpairingRouter:
    """The impairing path in ``ns`` (a router namespace of :mod:`tests.peers.netns` that
    already forwards), for what arrives on each ``(interface, selector)`` of ``paths``."""

    def __init__(self, ns: Any, paths: Sequence[tuple[str, Sequence[str]]], *, loss: float,
                 delay: float, seed: int | None = None, device: str = "imp0") -> None:
        if not 0.0 <= loss < 1.0 or delay < 0.0:
            raise ValueError("need 0 <= loss < 1 and delay >= 0")
        self.ns = ns
        self.paths = [(interface, list(selector)) for interface, selector in paths]
        self.loss, self.delay, self.seed, self.device = loss, delay, seed, device
        self.folder = Path(tempfile.mkdtemp(prefix="wcsgw-impair-"))
        self.stats_path = self.folder / "counts.json"
        self.log_path = self.folder / "impair.log"
        self._proc: subprocess.Popen[Any] | None = None
        self._stopping: Any = None
        self._final: dict[str, Any] | None = None
        self._final_log: str | None = None

    def _set_up_routing(self) -> None:
        run = self.ns.run
        run(["ip", "tuntap", "add", "dev", self.device, "mode", "tun"])
        # IPv4 only: without this the kernel sends its own IPv6 chatter into the device
        run(["sh", "-c", f"echo 1 > /proc/sys/net/ipv6/conf/{self.device}/disable_ipv6"],
            check=False)
        run(["ip", "link", "set", self.device, "up"])
        run(["ip", "route", "add", "default", "dev", self.device, "table", TABLE])
        sysctls = ["echo 1 > /proc/sys/net/ipv4/ip_forward"]
        for name in ("all", "default", self.device):
            sysctls += [f"echo 0 > /proc/sys/net/ipv4/conf/{name}/rp_filter",
                        f"echo 0 > /proc/sys/net/ipv4/conf/{name}/send_redirects"]
        run(["sh", "-c", " && ".join(sysctls)])
        for interface, selector in self.paths:
            run(["ip", "rule", "add", "iif", interface, *selector, "lookup", TABLE])

    async def _start(self) -> "ImpairingRouter":
        from twisted.internet import reactor, task

        self._set_up_routing()
        argv = [sys.executable, str(Path(__file__).resolve()), "--tun", self.device,
                "--loss", str(self.loss), "--delay", str(self.delay),
                "--stats", str(self.stats_path)]
        if self.seed is not None:
            argv += ["--seed", str(self.seed)]
        with open(self.log_path, "ab") as log:
            self._proc = self.ns.popen(argv, stdout=log, stderr=subprocess.STDOUT)
        deadline = reactor.seconds() + START_TIMEOUT
        while not self.counts().get("ready"):
            if self._proc.poll() is not None or reactor.seconds() > deadline:
                await self.stop()
                raise RuntimeError(f"the impairing program did not start: {self.log_text()}")
            await task.deferLater(reactor, 0.05, lambda: None)
        return self

    def start(self) -> Any:
        """Route the paths through the TUN device and start the program; fires once it
        holds the device (packets sent before would meet a device without a reader)."""
        from twisted.internet import defer

        return defer.ensureDeferred(self._start())

    def counts(self) -> dict[str, Any]:
        """The program's latest counts (empty before it started; the last ones once stopped)."""
        if self._final is not None:
            return dict(self._final)
        try:
            return dict(json.loads(self.stats_path.read_text()))
        except (OSError, ValueError):
            return {}

    def log_text(self) -> str:
        if self._final_log is not None:
            return self._final_log
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    async def _stop(self) -> None:
        from twisted.internet import reactor

        from tests.peers.process import stop_group

        if self._proc is not None:
            await stop_group(self._proc, 2.0, reactor)
        self._final = self.counts()
        self._final_log = self.log_text()
        shutil.rmtree(self.folder, ignore_errors=True)

    def stop(self) -> Any:
        """Stop the program (its process group: SIGTERM, then SIGKILL); its last counts stay
        readable.  Idempotent."""
        from twisted.internet import defer

        if self._stopping is None:
            self._stopping = defer.ensureDeferred(self._stop())
        result: defer.Deferred[None] = defer.Deferred()
        self._stopping.addBoth(lambda value: (result.callback(None), value)[1])
        return result


if __name__ == "__main__":
    sys.exit(main())
