"""The call records' table and the blocking operations on it (SQLAlchemy 2 Core).

Why Core and one table: a record is written once and read by a few columns (its callId, when
it started and ended, the session, the parties, the direction, the status); those are indexed
columns, and the whole record is kept beside them as JSON text, so a field added to the record
needs no schema change (no migrations: the table is created when missing).  Everything here
blocks: it runs only on the writer's thread (:mod:`wcsgw.records.writer`).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Sequence

from sqlalchemy import (
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    delete,
    func,
    insert,
    select,
)
from sqlalchemy.engine import URL, Engine

__all__ = ["RecordStore", "epoch", "records"]

metadata = MetaData()

#: one row per ended call; ``record`` is the whole record (docs/contract.md "Records")
records = Table(
    "wcsgw_call_records", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("call_id", String(128), nullable=False),
    Column("session_id", String(128)),
    Column("app_key", String(128)),
    Column("direction", String(16)),
    Column("caller", String(256)),
    Column("callee", String(256)),
    Column("status", String(32)),
    Column("start_time", Float, nullable=False),
    Column("end_time", Float, nullable=False),
    Column("record", Text, nullable=False),
)
for _name in ("call_id", "session_id", "direction", "caller", "callee", "status",
              "start_time", "end_time"):
    Index(f"ix_wcsgw_call_records_{_name}", records.c[_name])


def epoch(iso: str) -> float:
    """An ISO 8601 time of a record (``2026-12-07T17:30:12.345Z``) as epoch seconds."""
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _row(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "call_id": record["callId"],
        "session_id": record.get("sessionId"),
        "app_key": record.get("appKey"),
        "direction": record.get("direction"),
        "caller": record.get("caller"),
        "callee": record.get("callee"),
        "status": record.get("status"),
        "start_time": epoch(record["startTime"]),
        "end_time": epoch(record["endTime"]),
        "record": json.dumps(record, separators=(",", ":")),
    }


class RecordStore:
    """The table on one database (blocking; one thread uses it)."""

    def __init__(self, url: URL | str) -> None:
        url_text = url if isinstance(url, str) else url.render_as_string(hide_password=False)
        connect_args: dict[str, Any] = {}
        if url_text.startswith("postgresql"):
            connect_args["connect_timeout"] = 5  # an unreachable host must not hang start-up
        self.engine: Engine = create_engine(url, connect_args=connect_args,
                                            pool_pre_ping=True)

    def create(self) -> None:
        """The table and its indexes, where missing (also proves the database answers)."""
        metadata.create_all(self.engine)

    def write(self, batch: Sequence[dict[str, Any]]) -> None:
        """Records (ended calls: ``startTime`` and ``endTime`` set) in one transaction."""
        if batch:
            with self.engine.begin() as conn:
                conn.execute(insert(records), [_row(r) for r in batch])

    def find(self, *, call_id: str | None = None, since: float | None = None,
             until: float | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Records, newest start first; ``since``/``until`` bound the start time."""
        query = select(records.c.record)
        if call_id is not None:
            query = query.where(records.c.call_id == call_id)
        if since is not None:
            query = query.where(records.c.start_time >= since)
        if until is not None:
            query = query.where(records.c.start_time < until)
        query = query.order_by(records.c.start_time.desc(), records.c.id.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [json.loads(text) for text in conn.execute(query).scalars()]

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(records)).scalar_one())

    def delete_ended_before(self, when: float) -> int:
        """Retention: records of calls that ended before ``when``; how many went."""
        with self.engine.begin() as conn:
            return int(conn.execute(delete(records).where(records.c.end_time < when)).rowcount)

    def close(self) -> None:
        self.engine.dispose()

