"""Opening the call records at start: the URL checked, the database reached, the table made.

Why at start and blocking: a gateway whose records cannot be written should say so before it
takes a call, in one line naming ``cdr.database`` (masked), rather than log failures for every
call later; the reactor is not running yet, so the wait blocks nothing.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from twisted.logger import Logger

from wcsgw.config.errors import ConfigError
from wcsgw.records.book import CallRecords
from wcsgw.records.store import RecordStore
from wcsgw.records.url import KEY, database_url, masked

__all__ = ["open_records"]

log = Logger(namespace="wcsgw.records")


def open_records(database: str, state_folder: str, reactor: Any, *,
                 retention_days: int = 90) -> CallRecords:
    """:class:`CallRecords` on ``database`` ("" = ``cdr.sqlite`` in ``state_folder``), its
    table created if missing; :class:`ConfigError` naming ``cdr.database`` otherwise."""
    url = database_url(database, state_folder)
    try:
        store = RecordStore(url)
    except ImportError:
        raise ConfigError(KEY, f"{masked(url)} needs the PostgreSQL driver: "
                               "pip install 'wcsgw[postgresql]'") from None
    except (SQLAlchemyError, ValueError) as exc:
        raise ConfigError(KEY, f"cannot use {masked(url)}: {type(exc).__name__}") from None
    try:
        store.create()
    except (SQLAlchemyError, OSError) as exc:
        store.close()
        why = str(getattr(exc, "orig", None) or exc).splitlines()[0] if str(exc) else ""
        raise ConfigError(KEY, f"cannot open {masked(url)}: {_scrub(why, url)}") from None
    log.info("call records in {where} (kept {days} days; 0: for ever)", where=masked(url),
             days=retention_days)
    return CallRecords(store, reactor, retention_days=retention_days)


def _scrub(why: str, url: Any) -> str:
    """A driver's message, without the password should it quote the URL."""
    password = getattr(url, "password", None)
    return why.replace(password, "***") if password else why
