"""SQLite engine setup: pragmas on every connection, real transactions, bounded waits for the write lock.

pysqlite's own transaction handling starts transactions lazily and not before DDL, so a migration's
``CREATE TABLE`` would commit on its own. We switch the driver to autocommit and emit ``BEGIN``
ourselves (the recipe from the SQLAlchemy SQLite dialect docs). Reads use ``BEGIN`` (deferred): in
WAL mode they never wait for a writer. Writes use ``BEGIN IMMEDIATE`` through
:func:`write_transaction`, so a writer takes the lock up front (never fails half-way) and waits for
another writer at most :data:`WRITE_TIMEOUT_S` before a one-line :class:`StoreBusyError`.

Connections come from SQLAlchemy's pool and are used by one thread at a time (a call checks one
out, uses it and returns it), so ``check_same_thread`` is turned off: the pool, not sqlite3, keeps
a connection from being shared by two threads at once.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import Connection, Engine, RootTransaction, create_engine, event
from sqlalchemy.exc import DBAPIError

from spx_core.storage.errors import DatabaseNotFoundError, DatabasePathError, NotADatabaseError
from spx_core.storage.sqlite_errors import busy_error, is_busy, translating

__all__ = ["make_engine", "configure_engine", "write_transaction", "read_transaction", "begin_immediate",
           "WRITE_TIMEOUT_S", "BEGIN_OPTION", "engine_label"]

#: How long a writer waits for another process's write lock before :class:`StoreBusyError` (seconds).
#: Every writer (import batches, the recorder, order/fill writes) holds the lock for milliseconds, so
#: waiting this long means something is stuck (or a huge migration runs); 30 s rides out any publish.
WRITE_TIMEOUT_S = 30.0
#: Connection execution option naming the BEGIN flavour: "DEFERRED" (reads) or "IMMEDIATE" (writes).
BEGIN_OPTION = "spx_sqlite_begin"
#: Connection execution option: SQLite busy timeout (ms) set just before a ``BEGIN IMMEDIATE``.
BUSY_OPTION = "spx_sqlite_busy_ms"
_RETRY_SLEEP_S = 0.005  # between attempts when SQLite reports busy without waiting (e.g. WAL recovery)


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (see module docstring)
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {int(WRITE_TIMEOUT_S * 1000)}")
        cursor.execute("PRAGMA foreign_keys = ON")
        mode = cursor.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() not in ("wal", "memory"):
            raise sqlite3.OperationalError(f"SQLite refused WAL journal mode (got {mode!r}); "
                                           f"is the database on a network share?")
        # NORMAL is crash-safe in WAL mode (a crash can only lose the last commits, never corrupt).
        cursor.execute("PRAGMA synchronous = NORMAL")
    finally:
        cursor.close()


def _on_begin(conn: Any) -> None:
    options = conn.get_execution_options()
    mode = options.get(BEGIN_OPTION, "DEFERRED")
    if BUSY_OPTION in options:
        conn.exec_driver_sql(f"PRAGMA busy_timeout = {int(options[BUSY_OPTION])}")
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


def engine_label(engine: Engine) -> str:
    """The database file an engine points at (for messages)."""
    return str(engine.url.database or "(in-memory database)")


def _check_path(target: Path, *, create: bool) -> None:
    if target.is_dir():
        raise DatabasePathError(f"database path {target} is a folder, not a file; pass a file path such as "
                                f"{target / 'spx_terminal.sqlite'}")
    if not create and not target.exists():
        raise DatabaseNotFoundError(f"no database at {target}; check the path, or create one with "
                                    f"`spx-data import` / `spx-data simulate`")
    if create:
        from spx_core.paths import create_database_folder  # lazy: spx_core.paths imports storage.errors

        create_database_folder(target)


def make_engine(path: str | os.PathLike[str], *, echo: bool = False, create: bool = True) -> Engine:
    """A configured engine for the SQLite file at ``path``.

    With ``create`` (the default) a missing file and its folder are created; without it a missing
    file raises :class:`DatabaseNotFoundError` and SQLite is opened read-write only (``mode=rw``), so
    a mistyped path never leaves an empty database behind, and a file that is not an spx-terminal
    database (an empty file, another program's SQLite file) is refused before anything writes to it
    (our connections switch it to WAL and the store migrates it).

    Raises:
        DatabasePathError: the path is a folder, or its folder cannot be created.
        DatabaseNotFoundError: ``create=False`` and there is no file at ``path``.
        NotADatabaseError: ``create=False`` and the file is not an spx-terminal database.
    """
    target = Path(path).expanduser()
    _check_path(target, create=create)
    connect_args: dict[str, Any] = {"check_same_thread": False, "timeout": WRITE_TIMEOUT_S}
    if not create:
        _refuse_foreign(target)
        uri = f"file:{quote(str(target.absolute()))}?mode=rw"
        engine = create_engine(f"sqlite+pysqlite:///{target}", echo=echo,
                               creator=lambda: sqlite3.connect(uri, uri=True, **connect_args))
    else:
        engine = create_engine(f"sqlite+pysqlite:///{target}", echo=echo, connect_args=connect_args)
    return configure_engine(engine)


def _refuse_foreign(target: Path) -> None:
    """Raise NotADatabaseError unless ``target`` holds spx-terminal's ``schema_version`` table (read-only look)."""
    uri = f"file:{quote(str(target.absolute()))}?mode=ro"
    with translating(str(target)):
        con = sqlite3.connect(uri, uri=True, timeout=WRITE_TIMEOUT_S)
        try:
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            con.close()
    if "schema_version" not in tables:
        names = ", ".join(sorted(tables)[:3])
        what = f"another program's SQLite file: tables {names}" if tables else "an empty file"
        raise NotADatabaseError(f"{target} is not an spx-terminal database ({what}); it was left unchanged: pass "
                                f"the --db that spx-terminal created")


def begin_immediate(conn: Connection, *, timeout_s: float, where: str) -> RootTransaction:
    """``BEGIN IMMEDIATE`` on ``conn``, waiting at most ``timeout_s`` for another writer's lock.

    Raises:
        StoreBusyError: the lock stayed taken for ``timeout_s`` (names the database and what to do).
    """
    start = time.monotonic()
    deadline = start + timeout_s
    while True:
        remaining_ms = max(1, int((deadline - time.monotonic()) * 1000))
        conn.execution_options(**{BEGIN_OPTION: "IMMEDIATE", BUSY_OPTION: remaining_ms})
        try:
            return conn.begin()
        except DBAPIError as exc:
            if not is_busy(exc):
                raise
            if time.monotonic() >= deadline:
                raise busy_error(where, time.monotonic() - start) from exc
            time.sleep(_RETRY_SLEEP_S)


@contextmanager
def write_transaction(engine: Engine, *, timeout_s: float = WRITE_TIMEOUT_S,
                      where: str | None = None) -> Iterator[Connection]:
    """One short write transaction (commits at the end of the block, rolls back on an exception).

    SQLite errors inside come out as named :class:`StorageError` subclasses.
    """
    label = where or engine_label(engine)
    with translating(label), engine.connect() as conn:
        with begin_immediate(conn, timeout_s=timeout_s, where=label):
            yield conn


@contextmanager
def read_transaction(engine: Engine, *, where: str | None = None) -> Iterator[Connection]:
    """One read transaction: a consistent snapshot of the last commit; never waits for writers (WAL)."""
    with translating(where or engine_label(engine)), engine.connect() as conn:
        conn.execution_options(**{BEGIN_OPTION: "DEFERRED"})
        with conn.begin():
            yield conn
