"""``[cdr] database`` as an SQLAlchemy URL, and that URL as it may be shown.

Why its own module: the value may hold a password, so every message about it — a bad URL, an
unknown scheme, a database that cannot be reached at start — must be made from the masked
form, and only here; the store and the service never format the raw value.
"""

from __future__ import annotations

import os

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from wcsgw.config.errors import ConfigError

__all__ = ["KEY", "database_url", "masked"]

KEY = "cdr.database"

#: the schemes an operator writes, and the SQLAlchemy driver each one means
_DRIVERS = {
    "sqlite": "sqlite",
    "sqlite+pysqlite": "sqlite",
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
    "postgresql+psycopg": "postgresql+psycopg",
}


def masked(url: URL | str) -> str:
    """The URL with any password replaced by ``***`` (what logs and errors may show)."""
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        # Not even a URL: show its scheme at most (what follows may be a password).
        return url.split(":", 1)[0] + ":..." if ":" in url else "(not a URL)"


def database_url(database: str, state_folder: str) -> URL:
    """The URL the store opens: "" is ``cdr.sqlite`` in ``state_folder`` (created); a
    ``postgresql://`` URL runs on psycopg 3.  :class:`ConfigError` naming ``cdr.database``
    (masked) for anything else."""
    if not database:
        os.makedirs(state_folder, exist_ok=True)
        return URL.create("sqlite", database=os.path.join(state_folder, "cdr.sqlite"))
    try:
        url = make_url(database)
    except (ArgumentError, ValueError):
        raise ConfigError(KEY, f"not a database URL: {masked(database)}") from None
    driver = _DRIVERS.get(url.drivername)
    if driver is None:
        raise ConfigError(KEY, f"unknown scheme {url.drivername!r} (sqlite:///path or "
                               "postgresql://user:password@host/database)")
    url = url.set(drivername=driver)
    if driver == "sqlite":
        if not url.database or url.database == ":memory:":
            raise ConfigError(KEY, "an SQLite URL needs a file: sqlite:///path/cdr.sqlite")
        folder = os.path.dirname(url.database)
        if folder:
            os.makedirs(folder, exist_ok=True)
    elif not url.database:
        raise ConfigError(KEY, f"no database name in {masked(url)}")
    return url
