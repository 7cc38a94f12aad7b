"""twistd with tracemalloc on, for ``bench/profile_relay.py --memory``.

``python bench/tracemalloc_twistd.py OUT.txt TWISTD-ARGS...`` runs twistd's main in this
process with ``tracemalloc`` tracing (one frame).  SIGUSR1 takes a snapshot: the first one is
the baseline, every later one writes to OUT.txt the 25 source lines whose live allocations
grew most since the baseline.  Only the Python heap is traced: what C libraries allocate
(OpenSSL, libsrtp, libopus) shows in RSS, not here.
Tracing makes the gateway several times slower: use it for where memory goes, never for CPU.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
import tracemalloc

tracemalloc.start(1)  # one frame: cheap enough to snapshot a loaded gateway
_out = sys.argv.pop(1)
_baseline: list[tracemalloc.Snapshot] = []


def _snapshot(signum: int, frame: object) -> None:
    # garbage in reference cycles waits for the cyclic collector, which an idle process may
    # not run for a long time: collect it first, or it reads as a leak
    gc.collect()
    snap = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(False, tracemalloc.__file__)])
    if not _baseline:
        _baseline.append(snap)
        return
    with open(_out + ".part", "w") as f:
        diff = snap.compare_to(_baseline[0], "lineno")
        total = sum(d.size_diff for d in diff)
        f.write(f"growth since baseline: {total / 1024:.0f} KiB\n\n| KiB | count | where |\n|---|---|---|\n")
        for d in diff[:25]:
            frame0 = d.traceback[0]
            f.write(f"| {d.size_diff / 1024:.0f} | {d.count_diff} | `{frame0.filename}:{frame0.lineno}` |\n")
    os.replace(_out + ".part", _out)  # complete or absent, never half written


signal.signal(signal.SIGUSR1, _snapshot)
sys.argv[0] = "twistd"
from twisted.scripts.twistd import run  # noqa: E402 - after the signal handler is set

run()
