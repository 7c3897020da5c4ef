"""ChainSnapshot: one timestamped option chain for one underlying, stored column-wise.

Rows are in canonical order (expiry, root, strike, call before put), so the rows of one
(expiry, root) pair are contiguous and the same data always gives the same bytes and the same
SHA-256 :attr:`ChainSnapshot.checksum`. Every decision made from market data (a fit, a signal,
an order) should record the snapshot's checksum it used. The checksum covers the header too
(underlying, time, underlying price/bid/ask, row count), so the store checks a row's plain time and
price columns against it on load (an edited time cannot reorder a replay unnoticed).

Columns (all 1-D numpy arrays of equal length, read-only):
    root            uint8     index into :data:`~spx_core.domain.contracts.ROOTS`
    expiry          datetime64[D]
    strike          float64   index points
    is_call         bool
    bid, ask, last  float64   index points; NaN when absent
    bid_size, ask_size, volume, open_interest  int32  contracts
    quote_time      int64     ns since epoch (UTC) of each quote's last update
    vendor_iv, vendor_delta   float64  the data vendor's own IV/delta when the file carries them, else NaN
    flags           uint16    :class:`~spx_core.domain.quotes.QuoteFlag` bits
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Mapping

import numpy as np

from spx_core.domain.calendar import MarketCalendar, default_calendar, from_ns, to_ns, year_fraction_ns
from spx_core.domain.contracts import ROOTS, OptionContract, Right, Root, Settlement, settlement_for_root
from spx_core.domain.quotes import QualityThresholds, Quote, QuoteFlag, quality_flags

__all__ = ["ChainSnapshot", "ExpirySlice", "COLUMNS", "SnapshotError"]

#: Column name -> dtype, in canonical (checksum) order.
COLUMNS: dict[str, np.dtype] = {
    "root": np.dtype(np.uint8),
    "expiry": np.dtype("datetime64[D]"),
    "strike": np.dtype(np.float64),
    "is_call": np.dtype(np.bool_),
    "bid": np.dtype(np.float64),
    "ask": np.dtype(np.float64),
    "last": np.dtype(np.float64),
    "bid_size": np.dtype(np.int32),
    "ask_size": np.dtype(np.int32),
    "volume": np.dtype(np.int32),
    "open_interest": np.dtype(np.int32),
    "quote_time": np.dtype(np.int64),
    "vendor_iv": np.dtype(np.float64),
    "vendor_delta": np.dtype(np.float64),
    "flags": np.dtype(np.uint16),
}
_LAYOUT = ("root", "expiry", "strike", "is_call")
_DEFAULTS: dict[str, Any] = {"bid": np.nan, "ask": np.nan, "last": np.nan, "bid_size": 0, "ask_size": 0,
                             "volume": 0, "open_interest": 0, "vendor_iv": np.nan, "vendor_delta": np.nan}
_MAGIC = b"SPXSNAP1"
_AM_CODES = np.array([settlement_for_root(r) is Settlement.AM for r in ROOTS])


class SnapshotError(ValueError):
    """A chain snapshot's columns are inconsistent (lengths, duplicates, bad values)."""


@dataclass(frozen=True, slots=True)
class ExpirySlice:
    """The contiguous rows ``[start, stop)`` of one (root, expiry) in a snapshot."""

    root: Root
    expiry: date
    settlement: Settlement
    start: int
    stop: int

    @property
    def rows(self) -> slice:
        return slice(self.start, self.stop)


@dataclass(frozen=True, slots=True, eq=False)
class ChainSnapshot:
    """A columnar option chain at one instant. Build with :meth:`from_columns`."""

    underlying: str
    time_ns: int
    underlying_price: float
    columns: Mapping[str, np.ndarray]
    underlying_bid: float = float("nan")
    underlying_ask: float = float("nan")
    checksum: str = field(default="", compare=False)

    # --- construction ----------------------------------------------------------------------
    @classmethod
    def from_columns(cls, *, underlying: str, time: datetime | int, underlying_price: float,
                     root: Any, expiry: Any, strike: Any, is_call: Any,
                     underlying_bid: float = float("nan"), underlying_ask: float = float("nan"),
                     thresholds: QualityThresholds | None = None, assume_sorted: bool = False,
                     **columns: Any) -> ChainSnapshot:
        """Validate, sort into canonical order, flag and checksum a chain.

        ``root`` may be ``Root``/str values or uint8 codes; ``expiry`` dates or datetime64;
        missing optional columns take defaults (NaN prices, zero sizes, ``quote_time`` = snapshot
        time). ``flags`` is computed from ``thresholds`` unless given explicitly.

        Raises:
            SnapshotError: on unequal lengths, unknown columns, non-positive strikes or a contract
                listed twice (naming it).
        """
        time_ns = time if isinstance(time, (int, np.integer)) else to_ns(time)
        unknown = set(columns) - set(COLUMNS)
        if unknown:
            raise SnapshotError(f"unknown snapshot columns {sorted(unknown)}; known: {list(COLUMNS)}")
        cols: dict[str, np.ndarray] = {
            "root": _root_codes(root),
            "expiry": np.asarray(expiry, dtype="datetime64[D]"),
            "strike": np.asarray(strike, dtype=np.float64),
            "is_call": _is_call(is_call),
        }
        n = len(cols["root"])
        for name, value in cols.items():
            if value.shape != (n,):
                raise SnapshotError(f"column {name!r} has shape {value.shape}, expected ({n},)")
        for name, dtype in COLUMNS.items():
            if name in cols:
                continue
            if name in columns and columns[name] is not None:
                arr = np.asarray(columns[name])
                if arr.shape != (n,):
                    raise SnapshotError(f"column {name!r} has shape {arr.shape}, expected ({n},)")
                if dtype.kind in "iu" and arr.dtype.kind == "f":
                    arr = np.where(np.isfinite(arr), arr, 0)
                cols[name] = arr.astype(dtype)
            elif name == "quote_time":
                cols[name] = np.full(n, time_ns, dtype=np.int64)
            elif name != "flags":
                cols[name] = np.full(n, _DEFAULTS[name], dtype=dtype)
        if n and not np.all(cols["strike"] > 0):
            bad = int(np.flatnonzero(~(cols["strike"] > 0))[0])
            raise SnapshotError(f"row {bad}: strike {cols['strike'][bad]!r} must be positive")
        if not assume_sorted:
            order = np.lexsort((~cols["is_call"], cols["strike"], cols["root"], cols["expiry"]))
            cols = {k: v[order] for k, v in cols.items()}
        _check_unique(cols)
        if "flags" not in cols:
            cols["flags"] = quality_flags(
                bid=cols["bid"], ask=cols["ask"], strike=cols["strike"], is_call=cols["is_call"],
                underlying=underlying_price, quote_time_ns=cols["quote_time"], now_ns=time_ns,
                thresholds=thresholds or QualityThresholds())
        return cls._make(underlying, int(time_ns), float(underlying_price), cols,
                         float(underlying_bid), float(underlying_ask))

    @classmethod
    def from_canonical(cls, *, underlying: str, time_ns: int, underlying_price: float,
                       columns: Mapping[str, np.ndarray], underlying_bid: float = float("nan"),
                       underlying_ask: float = float("nan")) -> ChainSnapshot:
        """Rebuild a snapshot from columns already in canonical order with their flags (storage, IPC).

        No re-sort and no flag recomputation, so stored data comes back bit-identical; the checksum
        is recomputed and callers compare it with the one they stored.
        """
        missing = set(COLUMNS) - set(columns)
        if missing:
            raise SnapshotError(f"canonical columns missing {sorted(missing)}")
        return cls._make(underlying, int(time_ns), float(underlying_price), dict(columns),
                         float(underlying_bid), float(underlying_ask))

    @classmethod
    def _make(cls, underlying: str, time_ns: int, price: float, cols: dict[str, np.ndarray],
              ubid: float, uask: float) -> ChainSnapshot:
        ordered = {}
        for name, dtype in COLUMNS.items():
            arr = np.ascontiguousarray(cols[name], dtype=dtype)
            if dtype.kind == "f":
                arr = np.where(np.isnan(arr), np.nan, arr)  # one canonical NaN bit pattern
            arr.flags.writeable = False
            ordered[name] = arr
        snap = cls(underlying, time_ns, price, ordered, ubid, uask)
        object.__setattr__(snap, "checksum", snap._compute_checksum())
        return snap

    def replace_quotes(self, *, time: datetime | int, underlying_price: float,
                       underlying_bid: float = float("nan"), underlying_ask: float = float("nan"),
                       thresholds: QualityThresholds | None = None, **columns: Any) -> ChainSnapshot:
        """A new snapshot with the same rows (same layout) and new market columns.

        The fast path for live sources: layout columns are shared, not re-sorted. Columns not
        given are carried over; flags are recomputed unless given.
        """
        time_ns = time if isinstance(time, (int, np.integer)) else to_ns(time)
        bad = set(columns) & set(_LAYOUT) or set(columns) - set(COLUMNS)
        if bad:
            raise SnapshotError(f"replace_quotes cannot change columns {sorted(bad)}")
        cols = dict(self.columns)
        cols.update({k: np.asarray(v) for k, v in columns.items()})
        if "flags" not in columns:
            cols["flags"] = quality_flags(
                bid=cols["bid"], ask=cols["ask"], strike=cols["strike"], is_call=cols["is_call"],
                underlying=underlying_price, quote_time_ns=cols["quote_time"], now_ns=time_ns,
                thresholds=thresholds or QualityThresholds())
        return type(self)._make(self.underlying, int(time_ns), float(underlying_price), cols,
                                float(underlying_bid), float(underlying_ask))

    # --- checksum ------------------------------------------------------------------------------
    def canonical_bytes(self) -> bytes:
        """The byte form the checksum is taken over (header + every column, little-endian)."""
        parts = [_MAGIC, _header(self)]
        for name, dtype in COLUMNS.items():
            arr = self.columns[name]
            parts.append(name.encode() + b"\0")
            parts.append(bytes(_le_bytes(arr, dtype)))
        return b"".join(parts)

    def _compute_checksum(self) -> str:
        h = hashlib.sha256(_MAGIC)
        h.update(_header(self))
        for name, dtype in COLUMNS.items():
            h.update(name.encode() + b"\0")
            h.update(_le_bytes(self.columns[name], dtype))
        return h.hexdigest()

    def verify(self) -> None:
        """Recompute the checksum; raise :class:`SnapshotError` if the data no longer matches it."""
        actual = self._compute_checksum()
        if actual != self.checksum:
            raise SnapshotError(f"snapshot {self.underlying}@{self.time.isoformat()} checksum mismatch: "
                                f"stored {self.checksum[:16]}..., computed {actual[:16]}...")

    # --- access --------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.columns["strike"])

    def __getattr__(self, name: str) -> np.ndarray:
        # Columns read as attributes: snap.bid, snap.strike, ...
        try:
            return object.__getattribute__(self, "columns")[name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def time(self) -> datetime:
        return from_ns(self.time_ns)

    @property
    def mid(self) -> np.ndarray:
        return 0.5 * (self.columns["bid"] + self.columns["ask"])

    @property
    def is_am(self) -> np.ndarray:
        """True for AM-settled rows."""
        return _AM_CODES[self.columns["root"]]

    def expiries(self) -> list[ExpirySlice]:
        """The (root, expiry) groups in canonical order with their row ranges."""
        n = len(self)
        if n == 0:
            return []
        key = self.columns["expiry"].astype(np.int64) * 256 + self.columns["root"]
        starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        stops = np.r_[starts[1:], n]
        out = []
        for a, b in zip(starts.tolist(), stops.tolist(), strict=True):
            root = ROOTS[int(self.columns["root"][a])]
            out.append(ExpirySlice(root, self.columns["expiry"][a].astype(object), settlement_for_root(root), a, b))
        return out

    def expiry_instants_ns(self, calendar: MarketCalendar | None = None) -> np.ndarray:
        """Per-row int64 ns instant at which each option's value is fixed."""
        return (calendar or default_calendar()).expiry_instants_ns(self.columns["expiry"], self.is_am)

    def time_to_expiry(self, calendar: MarketCalendar | None = None) -> np.ndarray:
        """Per-row ACT/365 years from the snapshot time to expiry (intraday precise)."""
        return year_fraction_ns(self.time_ns, self.expiry_instants_ns(calendar))

    def contract(self, i: int) -> OptionContract:
        c = self.columns
        return OptionContract(root=ROOTS[int(c["root"][i])], expiry=c["expiry"][i].astype(object),
                              strike=float(c["strike"][i]), right=Right.CALL if c["is_call"][i] else Right.PUT)

    def quote(self, i: int) -> Quote:
        c = self.columns
        return Quote(contract=self.contract(i), bid=float(c["bid"][i]), ask=float(c["ask"][i]),
                     bid_size=int(c["bid_size"][i]), ask_size=int(c["ask_size"][i]), last=float(c["last"][i]),
                     volume=int(c["volume"][i]), open_interest=int(c["open_interest"][i]),
                     time=from_ns(int(c["quote_time"][i])), flags=QuoteFlag(int(c["flags"][i])))

    def to_frame(self):
        """A pandas DataFrame, one row per quote (imports pandas lazily)."""
        import pandas as pd

        frame = pd.DataFrame({k: np.asarray(v) for k, v in self.columns.items()})
        frame["root"] = [ROOTS[i].value for i in frame["root"]]
        return frame

    def __repr__(self) -> str:
        return (f"ChainSnapshot({self.underlying} {self.time.isoformat()} S={self.underlying_price:g} "
                f"quotes={len(self)} checksum={self.checksum[:12]})")


def _header(snap: ChainSnapshot) -> bytes:
    name = snap.underlying.encode()
    return struct.pack("<H", len(name)) + name + struct.pack(
        "<qdddQ", snap.time_ns, _canon(snap.underlying_price), _canon(snap.underlying_bid),
        _canon(snap.underlying_ask), len(snap))


def _le_bytes(arr: np.ndarray, dtype: np.dtype) -> memoryview:
    if dtype.kind == "M":
        arr = arr.view(np.int64)
        dtype = np.dtype(np.int64)
    return memoryview(np.ascontiguousarray(arr.astype(dtype.newbyteorder("<"), copy=False))).cast("B")


def _canon(x: float) -> float:
    return float("nan") if x != x else float(x)


def _root_codes(root: Any) -> np.ndarray:
    arr = np.asarray(root)
    if arr.dtype.kind in "iu":
        if arr.size and (arr.min() < 0 or arr.max() >= len(ROOTS)):
            raise SnapshotError(f"root codes must be in 0..{len(ROOTS) - 1}")
        return arr.astype(np.uint8)
    lookup = {r.value: i for i, r in enumerate(ROOTS)}
    uniq, inverse = np.unique(arr.astype(str), return_inverse=True)
    try:
        codes = np.array([lookup[u] for u in uniq], dtype=np.uint8)
    except KeyError as exc:
        raise SnapshotError(f"unknown root {exc.args[0]!r}; known: {list(lookup)}") from None
    return codes[inverse.reshape(arr.shape)] if arr.size else np.zeros(0, np.uint8)


def _is_call(values: Any) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype == np.bool_:
        return arr
    if arr.dtype.kind in "US" or arr.dtype == object:
        text = np.char.upper(arr.astype(str))
        ok = np.isin(text, ["C", "P", "CALL", "PUT"])
        if not ok.all():
            bad = int(np.flatnonzero(~ok)[0])
            raise SnapshotError(f"row {bad}: right {arr[bad]!r} must be C/P/CALL/PUT")
        return np.isin(text, ["C", "CALL"])
    return arr.astype(bool)


def _check_unique(cols: dict[str, np.ndarray]) -> None:
    n = len(cols["strike"])
    if n < 2:
        return
    same = ((cols["expiry"][1:] == cols["expiry"][:-1]) & (cols["root"][1:] == cols["root"][:-1])
            & (cols["strike"][1:] == cols["strike"][:-1]) & (cols["is_call"][1:] == cols["is_call"][:-1]))
    if same.any():
        i = int(np.flatnonzero(same)[0]) + 1
        raise SnapshotError(
            f"contract listed twice: {ROOTS[int(cols['root'][i])].value} {cols['expiry'][i]} "
            f"{cols['strike'][i]:g}{'C' if cols['is_call'][i] else 'P'}; keep one quote per contract")
