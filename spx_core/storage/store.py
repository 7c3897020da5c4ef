"""The repository: snapshots, instruments, bars and the import log, spoken in domain types.

Every method checks a connection out of the engine's pool for the duration of the call, so one
``Store`` may be used from several threads (see :class:`~spx_core.storage.async_store.AsyncStore`);
SQLAlchemy connections and rows never leave this package.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine, delete, func, select

from spx_core.domain import ChainSnapshot, OptionContract
from spx_core.domain.calendar import from_ns
from spx_core.storage import schema as t
from spx_core.storage.engine import (
    WRITE_TIMEOUT_S,
    configure_engine,
    engine_label,
    make_engine,
    read_transaction,
    write_transaction,
)
from spx_core.storage.errors import DuplicateImportError, SnapshotNotFoundError, StorageError
from spx_core.storage.imports import ImportSession, upsert_bars, upsert_instruments
from spx_core.storage.migrations import MIGRATIONS, Migration, migrate
from spx_core.storage.records import ImportRecord, SessionInfo, SnapshotInfo
from spx_core.storage.rows import (
    BAR_COLUMNS,
    as_ns,
    contract_from_row,
    snapshot_from_payload,
    snapshot_info,
    snapshot_row,
)
from spx_core.storage.staging import OwnerLock, discard_import, purge_dead_imports
from spx_core.storage.vendor_ids import lookup_instrument_ids

__all__ = ["Store"]

log = logging.getLogger(__name__)

_INFO_COLUMNS = [c for c in t.snapshots.c if c.name != "payload"]


class Store:
    """SQLite-backed store. Build with :meth:`open` (a file path) or ``Store(engine)``.

    Opening migrates the schema to the latest version (see :mod:`spx_core.storage.migrations`); an
    up-to-date database is opened without taking the write lock.

    Concurrency: any number of processes (the GUI, the recorder, imports, an order writer) may use
    one database at once. Readers never wait (WAL); every write is a short ``BEGIN IMMEDIATE``
    transaction that waits at most ``write_timeout_s`` for another writer, then raises
    :class:`~spx_core.storage.errors.StoreBusyError`. Every SQLite failure comes out as a named
    :class:`~spx_core.storage.errors.StorageError` with a one-line message.
    """

    def __init__(self, engine: Engine, *, migrations: tuple[Migration, ...] = MIGRATIONS,
                 write_timeout_s: float = WRITE_TIMEOUT_S, _owns_engine: bool = False) -> None:
        self._engine = configure_engine(engine)
        self._owns_engine = _owns_engine
        self._where = engine_label(self._engine)
        self.write_timeout_s = float(write_timeout_s)
        self.schema_version = migrate(self._engine, migrations, where=self._where, timeout_s=self.write_timeout_s)

    @classmethod
    def open(cls, path: str | os.PathLike[str] | None = None, *, create: bool = True,
             migrations: tuple[Migration, ...] = MIGRATIONS, write_timeout_s: float = WRITE_TIMEOUT_S) -> Store:
        """Open the SQLite file at ``path`` (creating it unless ``create=False``) and migrate it.

        Without ``path``: ``$SPX_TERMINAL_DB``, else the database in the user's data folder
        (see :func:`spx_core.paths.database_path`). Read-only commands pass ``create=False`` so a
        mistyped path fails instead of leaving an empty database behind.

        Raises (all :class:`~spx_core.storage.errors.StorageError`, one line each):
            DatabaseNotFoundError: ``create=False`` and no file at ``path``.
            DatabasePathError: the path is a folder, or its folder cannot be created.
            NotADatabaseError / DatabaseCorruptError: the file is not SQLite / is damaged.
            SchemaVersionError: the file was written by a newer spx-terminal.
            MigrationError: a migration step failed (the file stays at the last good version).
            StoreBusyError: a migration must run and another writer held the lock too long.
        """
        from spx_core.paths import database_path  # lazy: spx_core.paths imports storage.errors

        engine = make_engine(database_path(path, create_folder=create), create=create)
        try:
            return cls(engine, migrations=migrations, write_timeout_s=write_timeout_s, _owns_engine=True)
        except BaseException:
            engine.dispose()
            raise

    @property
    def path(self) -> Path | None:
        return Path(self._engine.url.database) if self._engine.url.database else None

    def close(self) -> None:
        """Release pooled connections (only when this store created the engine)."""
        if self._owns_engine:
            self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self._engine.url.database!r}, schema v{self.schema_version})"

    # --- connections ----------------------------------------------------------------------------
    def _read(self) -> Any:
        return read_transaction(self._engine, where=self._where)

    def _write(self) -> Any:
        return write_transaction(self._engine, timeout_s=self.write_timeout_s, where=self._where)

    # --- snapshots ------------------------------------------------------------------------------
    def save_snapshot(self, snap: ChainSnapshot, *, source: str, session: str | None = None) -> int:
        """Store one snapshot (its own transaction); returns its id."""
        row = snapshot_row(snap, source=source, session=session)
        with self._write() as conn:
            return int(conn.execute(t.snapshots.insert(), row).inserted_primary_key[0])

    def save_snapshots(self, snaps: Iterable[ChainSnapshot], *, source: str,
                       session: str | None = None) -> list[int]:
        """Store several snapshots in one transaction (all or none); returns their ids in order."""
        rows = [snapshot_row(s, source=source, session=session) for s in snaps]
        with self._write() as conn:
            return [int(conn.execute(t.snapshots.insert(), r).inserted_primary_key[0]) for r in rows]

    def load_snapshot(self, snapshot_id: int) -> ChainSnapshot:
        """The stored snapshot, bit-identical to what was saved (checksum verified).

        Raises:
            SnapshotNotFoundError: no such id.
            SnapshotIntegrityError: the stored data does not match its checksum (names the id).
        """
        s = t.snapshots.c
        with self._read() as conn:
            row = conn.execute(select(s.payload, s.checksum, s.underlying, s.time_ns, s.underlying_price, s.n_quotes)
                               .where(s.id == int(snapshot_id), t.visible_snapshots())).one_or_none()
        if row is None:
            raise SnapshotNotFoundError(int(snapshot_id))
        return snapshot_from_payload(int(snapshot_id), row.payload, row.checksum, row=row)

    def list_snapshots(self, *, session: str | None = None, underlying: str | None = None,
                       start: datetime | int | None = None, end: datetime | int | None = None) -> list[SnapshotInfo]:
        """Snapshot metadata ordered by time (then id); ``start``/``end`` bound the time inclusively."""
        query = select(*_INFO_COLUMNS).where(t.visible_snapshots()).order_by(t.snapshots.c.time_ns, t.snapshots.c.id)
        query = _time_filter(query, t.snapshots.c.time_ns, start, end)
        if session is not None:
            query = query.where(t.snapshots.c.session == session)
        if underlying is not None:
            query = query.where(t.snapshots.c.underlying == underlying)
        with self._read() as conn:
            return [snapshot_info(r) for r in conn.execute(query)]

    def snapshot_ids(self, session: str) -> list[int]:
        """Ids of a session's snapshots ordered by time (then id)."""
        query = (select(t.snapshots.c.id).where(t.snapshots.c.session == session, t.visible_snapshots())
                 .order_by(t.snapshots.c.time_ns, t.snapshots.c.id))
        with self._read() as conn:
            return list(conn.execute(query).scalars())

    def list_sessions(self) -> list[SessionInfo]:
        """Named sessions ordered by their first snapshot."""
        s = t.snapshots.c
        query = (select(s.session, func.group_concat(s.source.distinct()), func.count(), func.min(s.time_ns),
                        func.max(s.time_ns)).where(s.session.is_not(None), t.visible_snapshots()).group_by(s.session)
                 .order_by(func.min(s.time_ns), s.session))
        with self._read() as conn:
            rows = conn.execute(query).all()
        return [SessionInfo(name=name, source=",".join(sorted(set(sources.split(",")))), n_snapshots=n,
                            start=from_ns(lo), end=from_ns(hi)) for name, sources, n, lo, hi in rows]

    def delete_snapshots(self, ids: Iterable[int]) -> int:
        """Delete visible snapshots by id (a staging import's rows are not touched); returns how many."""
        ids = [int(i) for i in ids]
        with self._write() as conn:
            return conn.execute(delete(t.snapshots).where(t.snapshots.c.id.in_(ids), t.visible_snapshots())).rowcount

    # --- instruments and bars -----------------------------------------------------------------------
    def save_instruments(self, contracts: Iterable[OptionContract]) -> int:
        with self._write() as conn:
            return upsert_instruments(conn, contracts)

    def load_instrument(self, occ_symbol: str) -> OptionContract | None:
        """The stored contract for an OCC symbol (with its broker ids), or None."""
        with self._read() as conn:
            row = conn.execute(select(t.instruments).where(t.instruments.c.occ_symbol == occ_symbol)).one_or_none()
        return None if row is None else contract_from_row(row)

    def lookup_instrument_ids(self, vendor: str, ids: Iterable[int], *,
                              at: datetime | int) -> dict[int, OptionContract]:
        """Contracts that a vendor's numeric ids named at instant ``at`` (ns UTC or aware datetime).

        Only committed mappings are seen (written by ``imp.add_instrument_ids`` of earlier imports);
        ids without a mapping valid at ``at`` are left out of the result.
        """
        with self._read() as conn:
            return lookup_instrument_ids(conn, vendor, ids, at)

    def save_bars(self, symbol: str, bars: Any) -> int:
        with self._write() as conn:
            return upsert_bars(conn, symbol, bars, None)

    def load_bars(self, symbol: str, start: datetime | int | None = None, end: datetime | int | None = None) -> Any:
        """Bars of ``symbol`` in [start, end] as a DataFrame: time (UTC, ns), open, high, low, close, volume."""
        import pandas as pd

        b = t.underlying_bars.c
        query = select(b.time_ns, *(b[c] for c in BAR_COLUMNS)).where(b.symbol == symbol).order_by(b.time_ns)
        query = _time_filter(query, b.time_ns, start, end)
        with self._read() as conn:
            rows = conn.execute(query).all()
        arr = np.array([r[1:] for r in rows], dtype=np.float64).reshape(len(rows), len(BAR_COLUMNS))
        frame = pd.DataFrame(arr, columns=list(BAR_COLUMNS))  # NULL -> NaN
        times = np.array([r[0] for r in rows], dtype=np.int64)
        frame.insert(0, "time", pd.to_datetime(times, unit="ns", utc=True))
        return frame

    # --- imports ------------------------------------------------------------------------------------
    def has_import(self, sha256: str) -> bool:
        """True when a file with this SHA-256 was already imported successfully."""
        return self._imported_id(sha256) is not None

    def _imported_id(self, sha256: str) -> tuple[int, str] | None:
        log = t.import_log.c
        with self._read() as conn:
            row = conn.execute(select(log.id, log.path).where(log.sha256 == sha256, log.status == t.IMPORTED)).first()
        return None if row is None else (row.id, row.path)

    @contextmanager
    def import_file(self, *, path: str | os.PathLike[str], sha256: str, fmt: str) -> Iterator[ImportSession]:
        """One file's import: all of it becomes visible in one commit, or none of it.

        Rows are staged in short transactions while the block runs (see :mod:`spx_core.storage.imports`),
        so readers and other writers are never locked out for the length of a file. On an exception
        inside the block the staged rows are deleted (in short batches), the import-log row becomes
        'failed' with the error, and the exception propagates. Leftovers of imports whose process
        died are purged first (:meth:`purge_dead_imports`).

        Raises:
            DuplicateImportError: this SHA-256 was already imported OK (before the block runs), or
                another process published the same file while this one staged it (after the block).
        """
        earlier = self._imported_id(sha256)
        if earlier is not None:
            raise DuplicateImportError(sha256, *earlier)
        try:
            self.purge_dead_imports()
        except StorageError as exc:  # leftovers are invisible: they may wait for the next import
            log.warning("could not purge the leftovers of interrupted imports in %s: %s", self._where, exc)
        owner = OwnerLock.acquire(self.path)
        try:
            imp = self._start_import(str(path), sha256, fmt, owner)
            try:
                yield imp
                imp._publish()
            except BaseException as exc:
                self._abandon(imp, exc)
                raise
        finally:
            owner.release()  # after the row left 'staging' (or failed to): a purge may then take over

    def _start_import(self, path: str, sha256: str, fmt: str, owner: OwnerLock) -> ImportSession:
        with self._write() as conn:
            import_id = int(conn.execute(t.import_log.insert(), {
                "path": path, "sha256": sha256, "fmt": fmt, "status": t.STAGING, "rows_read": 0,
                "quotes_stored": 0, "snapshots": 0, "error": None, "time_ns": time.time_ns(),
                "owner": str(owner.path)}).inserted_primary_key[0])
        return ImportSession(self._engine, import_id, path=path, sha256=sha256, fmt=fmt, where=self._where,
                             timeout_s=self.write_timeout_s)

    def _abandon(self, imp: ImportSession, exc: BaseException) -> None:
        """Delete what the failed import staged and record the failure; the import's error stays the one raised."""
        try:
            discard_import(self._engine, imp.import_id, status=t.STAGING, where=self._where,
                           timeout_s=self.write_timeout_s)
            imp._mark_failed(exc)
        except Exception as cleanup_exc:  # e.g. disk full: the staged rows stay invisible until a purge
            exc.add_note(f"(cleaning up the failed import also failed: {cleanup_exc}; its staged rows stay "
                         f"invisible and are removed by the next import)")

    def purge_dead_imports(self) -> int:
        """Remove the invisible leftovers of imports whose process died (crash, SIGKILL); returns how many.

        Live imports of any process are never touched; with nothing to purge no write lock is taken.
        """
        return purge_dead_imports(self._engine, where=self._where, timeout_s=self.write_timeout_s, db_path=self.path)

    def import_log(self) -> list[ImportRecord]:
        """Every import attempt, oldest first, with its rejected rows."""
        log, rej = t.import_log.c, t.import_rejections.c
        with self._read() as conn:
            rows = conn.execute(select(t.import_log).where(log.status != t.STAGING).order_by(log.id)).all()
            rejected: dict[int, list[tuple[int, str]]] = {}
            for import_id, line, reason in conn.execute(select(rej.import_id, rej.line, rej.reason)
                                                        .order_by(rej.import_id, rej.id)):
                rejected.setdefault(import_id, []).append((line, reason))
        return [ImportRecord(id=r.id, path=r.path, sha256=r.sha256, fmt=r.fmt, status=r.status, rows_read=r.rows_read,
                             quotes_stored=r.quotes_stored, snapshots=r.snapshots, rejected=rejected.get(r.id, []),
                             error=r.error, time=from_ns(r.time_ns)) for r in rows]

    def delete_import(self, import_id: int) -> None:
        """Forget one finished import: its log row, rejections and snapshots (bars stay, unlinked).

        Its snapshots go in short batches (other writers interleave); an import still staging is
        left alone (its own process removes it, or :meth:`purge_dead_imports` once it is dead).
        """
        log = t.import_log.c
        with self._read() as conn:
            status = conn.execute(select(log.status).where(log.id == int(import_id))).scalar_one_or_none()
        if status is None or status == t.STAGING:
            return
        discard_import(self._engine, int(import_id), status=status, where=self._where, timeout_s=self.write_timeout_s)
        with self._write() as conn:
            conn.execute(delete(t.import_log).where(log.id == int(import_id), log.status == status))


def _time_filter(query: Any, column: Any, start: datetime | int | None, end: datetime | int | None) -> Any:
    lo, hi = as_ns(start), as_ns(end)
    if lo is not None:
        query = query.where(column >= lo)
    if hi is not None:
        query = query.where(column <= hi)
    return query
