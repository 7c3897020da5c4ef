"""Conversions between domain objects and table rows (snapshots, instruments, bars)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import numpy as np

from spx_core.domain import ChainSnapshot, OptionContract
from spx_core.domain.calendar import from_ns, to_ns
from spx_core.storage.codec import decode_payload, encode_snapshot
from spx_core.storage.errors import DatabaseCorruptError, PayloadError, SnapshotIntegrityError, StorageError
from spx_core.storage.records import SnapshotInfo

__all__ = ["snapshot_row", "snapshot_from_payload", "snapshot_info", "instrument_rows", "contract_from_row", "bar_rows",
           "nan_to_none", "none_to_nan", "as_ns"]

BAR_COLUMNS = ("open", "high", "low", "close", "volume")


def nan_to_none(x: float) -> float | None:
    # SQLite has no NaN: it would store NULL anyway; being explicit keeps the intent visible.
    return None if x is None or math.isnan(x) else float(x)


def none_to_nan(x: float | None) -> float:
    return float("nan") if x is None else float(x)


def as_ns(value: datetime | int | np.integer | None) -> int | None:
    """ns since the epoch of an aware datetime or an int ns (None passes through)."""
    if value is None or isinstance(value, (int, np.integer)):
        return None if value is None else int(value)
    return to_ns(value)


def _n_expiries(snap: ChainSnapshot) -> int:
    if not len(snap):
        return 0
    key = snap.columns["expiry"].astype(np.int64) * 256 + snap.columns["root"]
    return int(np.count_nonzero(key[1:] != key[:-1])) + 1


def snapshot_row(snap: ChainSnapshot, *, source: str, session: str | None,
                 import_id: int | None = None) -> dict[str, Any]:
    """The ``snapshots`` row for ``snap``: metadata + encoded payload."""
    if not source:
        raise ValueError("source must name where the snapshot came from (e.g. 'Simulated', 'cboe-datashop')")
    payload = encode_snapshot(underlying=snap.underlying, time_ns=snap.time_ns,
                              underlying_price=snap.underlying_price, underlying_bid=snap.underlying_bid,
                              underlying_ask=snap.underlying_ask, columns=snap.columns)
    return {"underlying": snap.underlying, "time_ns": snap.time_ns,
            "underlying_price": nan_to_none(snap.underlying_price),
            "underlying_bid": nan_to_none(snap.underlying_bid), "underlying_ask": nan_to_none(snap.underlying_ask),
            "n_quotes": len(snap), "n_expiries": _n_expiries(snap), "checksum": snap.checksum,
            "source": source, "session": session, "payload": payload, "import_id": import_id}


def snapshot_from_payload(snapshot_id: int, payload: bytes, checksum: str, *, row: Any = None) -> ChainSnapshot:
    """Rebuild a stored snapshot and check it against its stored checksum (and its row, when given).

    The checksum (:attr:`ChainSnapshot.checksum`) covers the payload's whole header: underlying,
    time, underlying price/bid/ask and the row count. But the ``snapshots`` row repeats the time,
    underlying, price and quote count in plain columns, and those columns are what listings show
    and what replay orders by. So ``row`` (with those columns) is checked against the verified
    payload too: an edit of ``time_ns`` or ``underlying_price`` outside spx-terminal is reported
    instead of silently reordering a replay. This needs no migration (databases written before read
    the same way: their rows were written from the same snapshot as their payloads).

    Raises:
        SnapshotIntegrityError: the payload is unreadable, its data does not hash to ``checksum``, or
            ``row``'s columns disagree with it.
    """
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise SnapshotIntegrityError(snapshot_id, f"payload is {type(payload).__name__}, not bytes (the database "
                                                  f"was edited outside spx-terminal); re-import or re-record it")
    if not isinstance(checksum, str):
        raise SnapshotIntegrityError(snapshot_id, f"checksum is {type(checksum).__name__}, not text (the "
                                                  f"database was edited outside spx-terminal); re-import it")
    try:
        d = decode_payload(payload)
    except PayloadError as exc:
        raise SnapshotIntegrityError(snapshot_id, f"payload is unreadable ({exc}); re-import or re-record it, "
                                                  f"or restore the database from a backup") from exc
    # from_canonical keeps the stored flags (no recomputation) and the canonical order (no re-sort).
    snap = ChainSnapshot.from_canonical(underlying=d.underlying, time_ns=d.time_ns,
                                        underlying_price=d.underlying_price, columns=d.columns,
                                        underlying_bid=d.underlying_bid, underlying_ask=d.underlying_ask)
    if snap.checksum != checksum:
        raise SnapshotIntegrityError(
            snapshot_id, f"checksum mismatch: stored {checksum[:16]}..., data hashes to {snap.checksum[:16]}...; "
                         f"the database file is damaged or was edited outside spx-terminal. Re-import the "
                         f"source file or restore the database from a backup")
    if row is not None:
        _check_row(snapshot_id, snap, row)
    return snap


def _check_row(snapshot_id: int, snap: ChainSnapshot, row: Any) -> None:
    expected = {"underlying": snap.underlying, "time_ns": snap.time_ns,
                "underlying_price": nan_to_none(snap.underlying_price), "n_quotes": len(snap)}
    for name, value in expected.items():
        stored = getattr(row, name)
        if stored != value:
            raise SnapshotIntegrityError(
                snapshot_id, f"its {name} column says {stored!r} but its verified data says {value!r}; the "
                             f"database was edited outside spx-terminal. Re-import the source file or restore "
                             f"the database from a backup")


def snapshot_info(row: Any) -> SnapshotInfo:
    return SnapshotInfo(id=row.id, time=from_ns(row.time_ns), underlying=row.underlying,
                        underlying_price=none_to_nan(row.underlying_price), n_quotes=row.n_quotes,
                        n_expiries=row.n_expiries, checksum=row.checksum, source=row.source, session=row.session)


def instrument_rows(contracts: Iterable[OptionContract]) -> list[dict[str, Any]]:
    return [{"occ_symbol": c.occ_symbol, "root": c.root.value, "expiry": c.expiry.isoformat(),
             "strike": c.strike, "option_right": c.right.value, "settlement": c.settlement.value,
             "multiplier": c.multiplier, "exchange": c.exchange, "currency": c.currency,
             "con_id": c.con_id, "trading_class": c.trading_class} for c in contracts]


def contract_from_row(row: Any) -> OptionContract:
    """The contract of an ``instruments`` row (with its broker ids).

    Raises:
        DatabaseCorruptError: the row names no contract (a root or date edited outside spx-terminal).
    """
    try:
        return OptionContract(root=row.root, expiry=datetime.fromisoformat(row.expiry).date(), strike=row.strike,
                              right=row.option_right, settlement=row.settlement, multiplier=row.multiplier,
                              exchange=row.exchange, currency=row.currency, con_id=row.con_id,
                              trading_class=row.trading_class)
    except (TypeError, ValueError) as exc:
        raise DatabaseCorruptError(f"instrument {row.occ_symbol!r} (id {row.id}) in the database names no option "
                                   f"contract ({exc}); the file was edited or damaged outside spx-terminal: restore "
                                   f"it from a backup") from None


def _time_ns_column(values: Any) -> np.ndarray:
    import pandas as pd

    series = pd.Series(values)
    if series.dtype.kind in "iu":
        return series.to_numpy(dtype=np.int64)
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        return series.dt.as_unit("ns").to_numpy(dtype="datetime64[ns]").view(np.int64)
    if series.dtype.kind == "M":
        raise StorageError("bars 'time' is a naive datetime column; localize it (e.g. .dt.tz_localize("
                           "'America/New_York')) or pass int64 ns since the epoch (UTC)")
    if series.dtype == object and len(series) and all(isinstance(v, datetime) for v in series):
        return np.array([to_ns(v) for v in series], dtype=np.int64)
    raise StorageError(f"bars 'time' column has dtype {series.dtype}; pass int64 ns or tz-aware datetimes")


def bar_rows(symbol: str, bars: Any, import_id: int | None) -> list[dict[str, Any]]:
    """Rows for ``underlying_bars`` from a DataFrame with time, open, high, low, close, volume."""
    missing = [c for c in ("time", *BAR_COLUMNS) if c not in bars.columns]
    if missing:
        raise StorageError(f"bars for {symbol!r} lack columns {missing}; need time, open, high, low, close, volume")
    times = _time_ns_column(bars["time"])
    values = {c: np.asarray(bars[c], dtype=np.float64) for c in BAR_COLUMNS}
    return [{"symbol": symbol, "time_ns": int(t), "import_id": import_id,
             **{c: (None if v != v else float(v)) for c, v in zip(BAR_COLUMNS, row, strict=True)}}
            for t, *row in zip(times.tolist(), *(values[c].tolist() for c in BAR_COLUMNS), strict=True)]
