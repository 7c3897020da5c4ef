"""One file's import: staged in short transactions, published in one short commit (all or nothing).

The bulk of a file (its snapshots, its rejected lines) is committed as it comes, one short
``BEGIN IMMEDIATE`` transaction per snapshot, under an ``import_log`` row in status 'staging' that
every read path filters out (:func:`spx_core.storage.schema.visible_snapshots`). The small reference
data (instruments, vendor ids, underlying bars) replaces rows other imports share, so it is kept in
memory and written by the publish commit, which also flips the row to 'imported'. So a writer holds
the lock for one snapshot's insert or one publish at a time, readers never see half a file, and the
recorder or an order writer interleave with a long import. A failure deletes the staged rows in
short batches; a crash leaves them invisible until :func:`~spx_core.storage.staging.purge_dead_imports`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, update
from sqlalchemy.dialects.sqlite import insert
from sqlalchemy.exc import IntegrityError

from spx_core.domain import ChainSnapshot, OptionContract
from spx_core.storage import schema as t
from spx_core.storage.engine import write_transaction
from spx_core.storage.errors import DuplicateImportError
from spx_core.storage.records import VendorInstrumentId
from spx_core.storage.rows import bar_rows, instrument_rows, snapshot_row
from spx_core.storage.vendor_ids import check_instrument_ids, upsert_instrument_ids

__all__ = ["ImportSession", "upsert_instruments", "upsert_bars", "upsert_bar_rows", "MAX_FAILED_REJECTIONS"]

_REJECT_BATCH = 1_000
#: Rejections kept with a *failed* import's log row (the full list is only stored for successful ones).
MAX_FAILED_REJECTIONS = 1_000


def upsert_instruments(conn: Connection, contracts: Iterable[OptionContract]) -> int:
    """Insert contracts; for known OCC symbols, fill in broker ids that were missing. Returns rows given."""
    rows = instrument_rows(contracts)
    if not rows:
        return 0
    stmt = insert(t.instruments)
    stmt = stmt.on_conflict_do_update(
        index_elements=[t.instruments.c.occ_symbol],
        set_={"con_id": func.coalesce(stmt.excluded.con_id, t.instruments.c.con_id),
              "trading_class": func.coalesce(stmt.excluded.trading_class, t.instruments.c.trading_class)})
    conn.execute(stmt, rows)
    return len(rows)


def upsert_bar_rows(conn: Connection, rows: list[dict[str, Any]]) -> int:
    """Insert bar rows; a bar already stored for (symbol, time) is replaced (the newer file wins)."""
    if not rows:
        return 0
    stmt = insert(t.underlying_bars)
    stmt = stmt.on_conflict_do_update(
        index_elements=[t.underlying_bars.c.symbol, t.underlying_bars.c.time_ns],
        set_={c: stmt.excluded[c] for c in ("open", "high", "low", "close", "volume", "import_id")})
    conn.execute(stmt, rows)
    return len(rows)


def upsert_bars(conn: Connection, symbol: str, bars: Any, import_id: int | None) -> int:
    """Insert bars from a DataFrame (see :func:`~spx_core.storage.rows.bar_rows`)."""
    return upsert_bar_rows(conn, bar_rows(symbol, bars, import_id))


class ImportSession:
    """What ``with store.import_file(...) as imp`` yields. Not thread-safe; use it in one thread.

    Attributes:
        import_id: the ``import_log.id`` of this import (staging, then imported or failed).
        rows_read: input rows read so far (the importer adds to it: ``imp.rows_read += n``).
        quotes_stored, snapshots: counted by :meth:`add_snapshot`.
        rejected: ``(line, reason)`` of every :meth:`reject` call, in order.
        status: "imported" after a successful block, "failed" after an exception, else "running".
        error: the failure text ("ExcType: message"), else None.
    """

    def __init__(self, engine: Engine, import_id: int, *, path: str, sha256: str, fmt: str,
                 where: str, timeout_s: float) -> None:
        self._engine, self._where, self._timeout_s = engine, where, timeout_s
        self._pending: list[dict[str, Any]] = []
        self._instruments: dict[OptionContract, None] = {}
        self._ids: list[tuple[str, list[VendorInstrumentId]]] = []
        self._bars: list[dict[str, Any]] = []
        self.import_id = import_id
        self.path, self.sha256, self.fmt = path, sha256, fmt
        self.rows_read = 0
        self.quotes_stored = 0
        self.snapshots = 0
        self.instruments = 0
        self.bars = 0
        self.instrument_ids = 0
        self.rejected: list[tuple[int, str]] = []
        self.status = "running"
        self.error: str | None = None

    def _transaction(self):
        return write_transaction(self._engine, timeout_s=self._timeout_s, where=self._where)

    def add_snapshot(self, snap: ChainSnapshot, *, source: str, session: str | None = None) -> int:
        """Stage one snapshot (its own short transaction); returns its id (visible once published)."""
        row = snapshot_row(snap, source=source, session=session, import_id=self.import_id)  # encode: no lock
        with self._transaction() as conn:
            sid = int(conn.execute(t.snapshots.insert(), row).inserted_primary_key[0])
            self._flush_rejections(conn)
        self.quotes_stored += len(snap)
        self.snapshots += 1
        return sid

    def add_instruments(self, contracts: Iterable[OptionContract]) -> None:
        """Contracts to store (written when the import publishes)."""
        contracts = list(contracts)
        self._instruments.update(dict.fromkeys(contracts))
        self.instruments += len(contracts)

    def add_instrument_ids(self, vendor: str, mappings: Iterable[VendorInstrumentId]) -> None:
        """Store a vendor's id -> contract mappings (and their contracts) as part of this import.

        ``vendor`` names the id space (e.g. ``"databento:OPRA.PILLAR"``); each mapping holds over its
        own time range because vendors re-use ids. Later imports find them with
        :meth:`Store.lookup_instrument_ids` once this import has published.
        """
        mappings = list(mappings)
        check_instrument_ids(vendor, mappings)
        self._instruments.update(dict.fromkeys(m.contract for m in mappings))
        self._ids.append((vendor, mappings))
        self.instrument_ids += len(mappings)

    def add_bars(self, symbol: str, bars: Any) -> None:
        """Store underlying bars (DataFrame: time as int64 ns or tz-aware, open, high, low, close, volume)."""
        rows = bar_rows(symbol, bars, self.import_id)  # validated now, written when the import publishes
        self._bars.extend(rows)
        self.bars += len(rows)

    def reject(self, line: int, reason: str) -> None:
        """Record a malformed input row (1-based ``line`` in the file) and why; the import goes on."""
        self.rejected.append((int(line), str(reason)))
        self._pending.append({"import_id": self.import_id, "line": int(line), "reason": str(reason)})
        if len(self._pending) >= _REJECT_BATCH:
            with self._transaction() as conn:
                self._flush_rejections(conn)

    def _flush_rejections(self, conn: Connection) -> None:
        if self._pending:
            conn.execute(t.import_rejections.insert(), self._pending)
            self._pending = []

    def _publish(self) -> None:
        """One short commit: the reference data, the final counts, and status 'imported'.

        Raises:
            DuplicateImportError: another process published the same file (same SHA-256) meanwhile.
        """
        with self._transaction() as conn:
            self._flush_rejections(conn)
            upsert_instruments(conn, self._instruments)
            for vendor, mappings in self._ids:
                upsert_instrument_ids(conn, vendor, mappings, self.import_id)
            upsert_bar_rows(conn, self._bars)
            try:
                conn.execute(update(t.import_log).where(t.import_log.c.id == self.import_id).values(
                    status=t.IMPORTED, owner=None, rows_read=int(self.rows_read), quotes_stored=self.quotes_stored,
                    snapshots=self.snapshots, time_ns=time.time_ns()))
            except IntegrityError:  # the partial unique index on sha256 among imported rows
                raise DuplicateImportError(self.sha256, None, self.path) from None
        self.status = t.IMPORTED

    def _mark_failed(self, exc: BaseException) -> None:
        """After the staged snapshots are gone: record the failure (and some rejections) in one commit."""
        self.status = t.FAILED
        self.error = f"{type(exc).__name__}: {exc}"
        self.quotes_stored = self.snapshots = 0  # discarded: nothing of this file is stored
        kept = self.rejected[:MAX_FAILED_REJECTIONS]
        log = t.import_log.c
        with self._transaction() as conn:
            conn.execute(delete(t.import_rejections).where(t.import_rejections.c.import_id == self.import_id))
            if isinstance(exc, DuplicateImportError):  # a duplicate is not an attempt worth a log row
                conn.execute(delete(t.import_log).where(log.id == self.import_id))
                return
            conn.execute(update(t.import_log).where(log.id == self.import_id).values(
                status=t.FAILED, owner=None, rows_read=int(self.rows_read), quotes_stored=0, snapshots=0,
                error=self.error, time_ns=time.time_ns()))
            if kept:
                conn.execute(t.import_rejections.insert(),
                             [{"import_id": self.import_id, "line": line, "reason": reason} for line, reason in kept])
