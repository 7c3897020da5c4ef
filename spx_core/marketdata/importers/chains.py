"""Collecting parsed quote columns into chain snapshots: buffering by key, de-duplication, building.

Importers add column chunks (already validated, numpy arrays, with their source line numbers) under a
key (a quote date, a minute); when a key is complete the buffer concatenates its chunks, rejects
repeated contracts (keeping the first, naming the line it kept) and builds a
:class:`~spx_core.domain.snapshot.ChainSnapshot`.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

import numpy as np

from spx_core.domain.contracts import ROOTS
from spx_core.domain.snapshot import ChainSnapshot

__all__ = ["ChainBuffer", "dedupe_rows", "build_snapshot", "UNDERLYING"]

#: Underlying name of every SPX-family snapshot the importers write.
UNDERLYING = "SPX"

RejectFn = Callable[[int, str], None]


def dedupe_rows(cols: dict[str, np.ndarray], lines: np.ndarray, reject: RejectFn) -> np.ndarray:
    """Indices of the rows to keep: the first row of each (root, expiry, strike, right).

    Every later repeat is rejected with the line of the row that was kept.
    """
    n = len(lines)
    if n < 2:
        return np.arange(n)
    order = np.lexsort((lines, cols["is_call"], cols["strike"], cols["root"], cols["expiry"]))
    keys = [cols[k][order] for k in ("root", "expiry", "strike", "is_call")]
    same = np.ones(n - 1, dtype=bool)
    for k in keys:
        same &= k[1:] == k[:-1]
    if not same.any():
        return np.arange(n)
    dup = np.r_[False, same]
    group_first = np.maximum.accumulate(np.where(~dup, np.arange(n), 0))
    for j in np.flatnonzero(dup).tolist():
        i, first = order[j], order[group_first[j]]
        right = "C" if cols["is_call"][i] else "P"
        reject(int(lines[i]), f"{ROOTS[int(cols['root'][i])].value} {cols['expiry'][i]} "
                              f"{cols['strike'][i]:g}{right} is already quoted on line {int(lines[first])}; "
                              f"kept that one")
    keep = np.sort(order[~dup])
    return keep


class ChainBuffer:
    """Column chunks per key, turned into snapshots on :meth:`pop`.

    Keys popped once are remembered: rows that arrive later for such a key are rejected by the
    caller (see :meth:`is_closed`), because their snapshot is already written.
    """

    def __init__(self) -> None:
        self._chunks: dict[Hashable, list[tuple[dict[str, np.ndarray], np.ndarray]]] = {}
        self._closed: set[Hashable] = set()

    def add(self, key: Hashable, cols: dict[str, np.ndarray], lines: np.ndarray) -> None:
        if len(lines):
            self._chunks.setdefault(key, []).append((cols, np.asarray(lines, dtype=np.int64)))

    def keys(self) -> list[Hashable]:
        return list(self._chunks)

    def is_closed(self, key: Hashable) -> bool:
        return key in self._closed

    def pop(self, key: Hashable, reject: RejectFn) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Concatenated, de-duplicated columns and their line numbers for ``key``."""
        chunks = self._chunks.pop(key)
        self._closed.add(key)
        names = chunks[0][0].keys()
        cols = {name: np.concatenate([c[name] for c, _ in chunks]) for name in names}
        lines = np.concatenate([ln for _, ln in chunks])
        keep = dedupe_rows(cols, lines, reject)
        if len(keep) != len(lines):
            cols = {name: arr[keep] for name, arr in cols.items()}
            lines = lines[keep]
        return cols, lines


def build_snapshot(cols: dict[str, np.ndarray], *, time_ns: int, underlying_price: float,
                   underlying_bid: float = float("nan"), underlying_ask: float = float("nan"),
                   **extra: Any) -> ChainSnapshot:
    """A canonical snapshot of the SPX family from parsed columns (layout keys plus market columns)."""
    layout = {k: cols[k] for k in ("root", "expiry", "strike", "is_call")}
    market = {k: v for k, v in cols.items() if k not in layout}
    return ChainSnapshot.from_columns(underlying=UNDERLYING, time=int(time_ns), underlying_price=underlying_price,
                                      underlying_bid=underlying_bid, underlying_ask=underlying_ask,
                                      **layout, **market, **extra)
