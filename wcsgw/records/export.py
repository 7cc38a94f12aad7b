"""Call records as CSV: one row per record, nested fields flattened with dots.

Why flat: a spreadsheet or ``cut`` reads columns, not JSON; ``stats.sip.mos`` names the same
value as the record's nesting does, so the two views stay one vocabulary.  Pure functions.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any, Iterable, Mapping

__all__ = ["FIELDS", "flatten", "to_csv"]

#: the record's fields (docs/contract.md "Records"): the header of an export with no rows
FIELDS = ("callId", "sessionId", "appKey", "direction", "caller", "callee", "account",
          "startTime", "ringTime", "answerTime", "endTime", "duration", "endReason", "endedBy",
          "sipStatus", "status", "media", "stats", "transferredTo", "replaces", "recording")


def flatten(record: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"stats": {"sip": {"mos": 4.2}}}`` -> ``{"stats.sip.mos": 4.2}``; lists as JSON."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, name + "."))
        elif isinstance(value, (list, tuple)):
            out[name] = json.dumps(value, separators=(",", ":"))
        else:
            out[name] = value
    return out


def to_csv(records: Iterable[Mapping[str, Any]]) -> str:
    """A header row (every column any record has, first seen first), then one row per
    record; a missing or null field is an empty cell, booleans ``true``/``false``."""
    rows = [flatten(r) for r in records]
    columns: dict[str, None] = {} if rows else dict.fromkeys(FIELDS)
    for row in rows:
        columns.update(dict.fromkeys(row))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(column)) for column in columns])
    return out.getvalue()


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value
