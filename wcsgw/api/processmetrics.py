"""The gateway process in /metrics: build, start time, CPU, memory, file descriptors, timers.

Read from /proc on each scrape (Linux; elsewhere only what Python knows), so a soak run or an
operator sees leaks as slopes: RSS, fds, timers.  The timers are the reactor's pending
``callLater``s: every call, session and transaction keeps a few, so a count that does not
come back to its idle value after the calls end is a timer leak (``bench/soak.py`` checks it).
"""

from __future__ import annotations

import os
import platform
from typing import Any

from wcsgw import __version__
from wcsgw.api.metrics import IMPORTED_AT, Family

__all__ = ["process_families"]


def _proc_stat() -> tuple[float, float] | None:
    """(start time, CPU seconds) of this process from /proc (Linux); None elsewhere."""
    try:
        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        with open("/proc/stat", "rb") as f:
            btime = next(int(line.split()[1]) for line in f if line.startswith(b"btime "))
        ticks = os.sysconf("SC_CLK_TCK")
    except (OSError, StopIteration, IndexError, ValueError):
        return None
    # fields[0] is field 3 (state): utime is field 14, stime 15, starttime 22
    return btime + int(fields[19]) / ticks, (int(fields[11]) + int(fields[12])) / ticks


def _delayed_calls(reactor: Any) -> int | None:
    """Pending timers of the running reactor; None when it cannot say (no IReactorTime)."""
    pending = getattr(reactor, "getDelayedCalls", None)
    if pending is None:
        return None
    return len(pending())


def process_families(reactor: Any = None) -> list[Family]:
    """``reactor``: whose timers to count; the global one (imported here, at scrape time, so
    importing this module installs no reactor) when None."""
    info = Family("wcsgw_build_info", "gauge", "Always 1; the labels say which build runs.")
    info.add(1, version=__version__, python=platform.python_version())
    families = [info]
    stat = _proc_stat()
    families.append(Family("wcsgw_process_start_time_seconds", "gauge",
                           "Start time of the gateway process, seconds since the epoch.")
                    .add(stat[0] if stat else IMPORTED_AT))
    if stat is not None:
        families.append(Family("wcsgw_process_cpu_seconds_total", "counter",
                               "User and system CPU time of the gateway process, seconds.")
                        .add(stat[1]))
    try:
        with open("/proc/self/statm", "rb") as f:
            rss = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        families.append(Family("wcsgw_process_resident_memory_bytes", "gauge",
                               "Resident memory of the gateway process, bytes.").add(rss))
        families.append(Family("wcsgw_process_open_fds", "gauge",
                               "Open file descriptors (sockets included) of the gateway process.")
                        .add(len(os.listdir("/proc/self/fd"))))
    except (OSError, IndexError, ValueError):
        pass
    if reactor is None:
        from twisted.internet import reactor as installed

        reactor = installed
    timers = _delayed_calls(reactor)
    if timers is not None:
        families.append(Family("wcsgw_reactor_delayed_calls", "gauge",
                               "Timers pending in the event loop (reactor.getDelayedCalls()).")
                        .add(timers))
    return families
