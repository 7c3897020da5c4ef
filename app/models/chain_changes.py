"""What one chain update changes on screen: dirty cells and bid/ask flashes (pure numpy, no Qt).

:class:`~app.models.chain_model.ChainModel` calls these when a new block of the same layout is
applied; they compare the old and new :class:`~app.models.chain_data.ExpiryBlock` over the shown
strike window ``[lo, hi)`` and the model's column layout (``(side, field)`` per column, field None
for the strike column).
"""

from __future__ import annotations

import numpy as np

from app.models.chain_data import CALL, PUT, SERVED_FIELDS, ChainField, ExpiryBlock, changed_cells
from spx_core.domain import ChainSnapshot

__all__ = ["QUOTE_FIELDS", "FLASH_FIELDS", "dirty_cells", "flash_cells"]

#: Columns coloured by the quote's flags (crossed, wide, no quote).
QUOTE_FIELDS = (ChainField.BID, ChainField.MID, ChainField.ASK)
#: Columns that flash green/red when the source re-quotes them.
FLASH_FIELDS = (ChainField.BID, ChainField.ASK)

Columns = list[tuple[int, ChainField | None]]


def dirty_cells(old: ExpiryBlock, new: ExpiryBlock, *, lo: int, hi: int, columns: Columns, old_atm: int,
                new_atm: int) -> np.ndarray:
    """(window rows, columns) mask of cells whose text, colour or tooltip changed."""
    diff = changed_cells(old.quantized[:, lo:hi], new.quantized[:, lo:hi])  # (2, w, nf)
    flags_diff = old.flags[:, lo:hi] != new.flags[:, lo:hi]  # quote colours and tooltips
    # IV and greek colours, fonts and tooltips follow where the served IV comes from
    served_diff = ((old.reason[:, lo:hi] != new.reason[:, lo:hi]) | (old.source[:, lo:hi] != new.source[:, lo:hi])
                   | (old.why[:, lo:hi] != new.why[:, lo:hi]))
    strikes = new.strikes[lo:hi]
    itm_diff = (strikes < old.money) != (strikes < new.money)
    dirty = np.zeros((hi - lo, len(columns)), dtype=bool)
    for c, (side, field) in enumerate(columns):
        if field is None:  # the strike column: only its ATM shading changes (below)
            continue
        dirty[:, c] = diff[side, :, field] | itm_diff
        if field in QUOTE_FIELDS:
            dirty[:, c] |= flags_diff[side]
        elif field in SERVED_FIELDS:
            dirty[:, c] |= served_diff[side]
    for k in {old_atm, new_atm} if old_atm != new_atm else ():
        if lo <= k < hi:
            dirty[k - lo] = True
    return dirty


def flash_cells(old: ExpiryBlock, new: ExpiryBlock, snapshot: ChainSnapshot, changed: np.ndarray | None, *,
                lo: int, hi: int, columns: Columns) -> list[tuple[int, int, bool]]:
    """(window row, column, moved up) of every bid/ask cell that should start flashing.

    ``changed`` are the snapshot rows the source re-quoted (None = unknown: any moved value flashes);
    a cell flashes when its displayed value moved between two finite values.
    """
    if changed is None:
        candidates = np.ones((2, hi - lo), dtype=bool)
    else:
        rows = np.asarray(changed, dtype=np.int64)
        rows = rows[(rows >= 0) & (rows < len(snapshot))]
        k = np.searchsorted(new.strikes, snapshot.columns["strike"][rows])
        side = np.where(snapshot.columns["is_call"][rows], CALL, PUT)
        keep = (k >= lo) & (k < hi)
        candidates = np.zeros((2, hi - lo), dtype=bool)
        candidates[side[keep], k[keep] - lo] = True
    out: list[tuple[int, int, bool]] = []
    for c, (side, field) in enumerate(columns):
        if field not in FLASH_FIELDS:
            continue
        before = old.quantized[side, lo:hi, field]
        after = new.quantized[side, lo:hi, field]
        moved = candidates[side] & (before != after) & np.isfinite(before) & np.isfinite(after)
        out.extend((r, c, bool(after[r] > before[r])) for r in np.flatnonzero(moved).tolist())
    return out
