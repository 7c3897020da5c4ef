"""One file's import: everything it writes happens in one transaction (all or nothing)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, func, update
from sqlalchemy.dialects.sqlite import insert

from spx_core.domain import ChainSnapshot, OptionContract
from spx_core.storage import schema as t
from spx_core.storage.records import VendorInstrumentId
from spx_core.storage.rows import bar_rows, instrument_rows, snapshot_row
from spx_core.storage.vendor_ids import upsert_instrument_ids

__all__ = ["ImportSession", "upsert_instruments", "upsert_bars", "MAX_FAILED_REJECTIONS"]

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


def upsert_bars(conn: Connection, symbol: str, bars: Any, import_id: int | None) -> int:
    """Insert bars; a bar already stored for (symbol, time) is replaced (the newer file wins)."""
    rows = bar_rows(symbol, bars, import_id)
    if not rows:
        return 0
    stmt = insert(t.underlying_bars)
    stmt = stmt.on_conflict_do_update(
        index_elements=[t.underlying_bars.c.symbol, t.underlying_bars.c.time_ns],
        set_={c: stmt.excluded[c] for c in ("open", "high", "low", "close", "volume", "import_id")})
    conn.execute(stmt, rows)
    return len(rows)


class ImportSession:
    """What ``with store.import_file(...) as imp`` yields. Not thread-safe; use it in one thread.

    Attributes:
        import_id: the ``import_log.id`` of this import (after a failure: of the 'failed' row).
        rows_read: input rows read so far (the importer adds to it: ``imp.rows_read += n``).
        quotes_stored, snapshots: counted by :meth:`add_snapshot`.
        rejected: ``(line, reason)`` of every :meth:`reject` call, in order.
        status: "imported" after a successful block, "failed" after an exception, else "running".
        error: the failure text ("ExcType: message"), else None.
    """

    def __init__(self, conn: Connection, import_id: int, *, path: str, sha256: str, fmt: str) -> None:
        self._conn = conn
        self._pending: list[dict[str, Any]] = []
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

    def add_snapshot(self, snap: ChainSnapshot, *, source: str, session: str | None = None) -> int:
        """Store one snapshot as part of this import; returns its id (valid once the import commits)."""
        row = snapshot_row(snap, source=source, session=session, import_id=self.import_id)
        sid = int(self._conn.execute(t.snapshots.insert(), row).inserted_primary_key[0])
        self.quotes_stored += len(snap)
        self.snapshots += 1
        return sid

    def add_instruments(self, contracts: Iterable[OptionContract]) -> None:
        self.instruments += upsert_instruments(self._conn, contracts)

    def add_instrument_ids(self, vendor: str, mappings: Iterable[VendorInstrumentId]) -> None:
        """Store a vendor's id -> contract mappings (and their contracts) as part of this import.

        ``vendor`` names the id space (e.g. ``"databento:OPRA.PILLAR"``); each mapping holds over its
        own time range because vendors re-use ids. Later imports find them with
        :meth:`Store.lookup_instrument_ids` once this import has committed.
        """
        mappings = list(mappings)
        # the mapping rows reference instruments rows; for contracts already added this is a no-op
        upsert_instruments(self._conn, dict.fromkeys(m.contract for m in mappings))
        self.instrument_ids += upsert_instrument_ids(self._conn, vendor, mappings, self.import_id)

    def add_bars(self, symbol: str, bars: Any) -> None:
        """Store underlying bars (DataFrame: time as int64 ns or tz-aware, open, high, low, close, volume)."""
        self.bars += upsert_bars(self._conn, symbol, bars, self.import_id)

    def reject(self, line: int, reason: str) -> None:
        """Record a malformed input row (1-based ``line`` in the file) and why; the import goes on."""
        self.rejected.append((int(line), str(reason)))
        self._pending.append({"import_id": self.import_id, "line": int(line), "reason": str(reason)})
        if len(self._pending) >= _REJECT_BATCH:
            self._flush_rejections()

    def _flush_rejections(self) -> None:
        if self._pending:
            self._conn.execute(t.import_rejections.insert(), self._pending)
            self._pending = []

    def _finish(self) -> None:
        """Write the final counts (inside the import's transaction)."""
        self._flush_rejections()
        self._conn.execute(update(t.import_log).where(t.import_log.c.id == self.import_id).values(
            rows_read=int(self.rows_read), quotes_stored=self.quotes_stored, snapshots=self.snapshots,
            time_ns=time.time_ns()))
        self.status = t.IMPORTED
