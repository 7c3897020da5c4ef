"""SQLite engine setup: pragmas on every connection and real (transactional-DDL) transactions.

pysqlite's own transaction handling starts transactions lazily and not before DDL, so a migration's
``CREATE TABLE`` would commit on its own. We switch the driver to autocommit and emit ``BEGIN``
ourselves (the recipe from the SQLAlchemy SQLite dialect docs); write paths ask for
``BEGIN IMMEDIATE`` so a writer takes the lock up front instead of failing half-way on upgrade.

Connections come from SQLAlchemy's pool and are used by one thread at a time (a call checks one
out, uses it and returns it), so ``check_same_thread`` is turned off: the pool, not sqlite3, keeps
a connection from being shared by two threads at once.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event

__all__ = ["make_engine", "configure_engine", "BUSY_TIMEOUT_MS", "BEGIN_OPTION"]

#: How long a connection waits for another writer's lock before ``database is locked`` (milliseconds).
BUSY_TIMEOUT_MS = 10_000
#: Connection execution option naming the BEGIN flavour: "DEFERRED" (reads) or "IMMEDIATE" (writes).
BEGIN_OPTION = "spx_sqlite_begin"


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (see module docstring)
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        mode = cursor.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() not in ("wal", "memory"):
            raise RuntimeError(f"SQLite refused WAL journal mode (got {mode!r}); is the database on a network share?")
        # NORMAL is crash-safe in WAL mode (a crash can only lose the last commits, never corrupt).
        cursor.execute("PRAGMA synchronous = NORMAL")
    finally:
        cursor.close()


def _on_begin(conn: Any) -> None:
    mode = conn.get_execution_options().get(BEGIN_OPTION, "DEFERRED")
    conn.exec_driver_sql(f"BEGIN {mode}")


def configure_engine(engine: Engine) -> Engine:
    """Install the connection pragmas and BEGIN handling on an SQLite engine (idempotent)."""
    if engine.dialect.name != "sqlite":
        raise ValueError(f"the store needs an SQLite engine, got dialect {engine.dialect.name!r}")
    if not event.contains(engine, "connect", _on_connect):
        event.listen(engine, "connect", _on_connect)
        event.listen(engine, "begin", _on_begin)
        engine.dispose()  # pooled connections made before the listeners would lack the pragmas
    return engine


def make_engine(path: str | os.PathLike[str], *, echo: bool = False) -> Engine:
    """A configured engine for the SQLite file at ``path`` (its folder is created if missing)."""
    target = Path(path).expanduser()
    target.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(f"sqlite+pysqlite:///{target}", echo=echo,
                           connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000})
    return configure_engine(engine)
