"""The operations' own counters in /metrics: call records written, dropped or failed, and
recordings started, finished or failed.

Why they are here: both write off the event loop and drop rather than wait (a full queue, a
disk that refuses); a record or a recording lost that way is only worth its warning line if
the operator's dashboard can see it happen.
"""

from __future__ import annotations

from typing import Any

from wcsgw.api.metrics import Family

__all__ = ["ops_families"]


def ops_families(gateway: Any) -> list[Family]:
    families: list[Family] = []
    cdr = getattr(gateway, "cdr", None)
    writer = getattr(cdr, "writer", None)
    if writer is not None:
        records = Family("wcsgw_cdr_records_total", "counter", "Call records since start, by "
                         "result: written to the database, dropped (queue full, or left at "
                         "stop) or failed (the database refused the write).")
        for result in ("written", "dropped", "failed"):
            records.add(getattr(writer, result), result=result)
        families.append(records)
    recordings = getattr(gateway, "recordings", None)
    if recordings is not None:
        counts = Family("wcsgw_recordings_total", "counter", "Call recordings since start, by "
                        "result: started, finished (the file closed) or failed to start.")
        for result in ("started", "finished", "failed"):
            counts.add(getattr(recordings, result), result=result)
        families.append(counts)
    return families
