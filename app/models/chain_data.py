"""Pure numpy side of the option-chain table: one expiry laid out as strikes x (call, put) x fields.

No Qt here, so the layout, the ATM/window arithmetic and the change detection are testable and
benchmarkable on their own. :class:`~app.models.chain_model.ChainModel` only looks values up.

Units of the value block (what the chain shows):
    bid, mid, ask       index points
    iv                  served implied vol as a fraction (0.185 = 18.5%): the quote's own mid IV, or
                        the OTM side's / fitted smile's where the quote pins no time value
                        (``source`` / ``why`` say which and why; see spx_core.surface.served)
    delta               per 1 point of the underlying (call > 0, put < 0)
    gamma               delta change per 1 index point
    theta               option value change per calendar day (index points)
    theta_close         option value change from now to today's close (index points)
    vega                option value change per 1 vol point (index points)
    volume, oi          contracts
    bid_size, ask_size  contracts
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import IntEnum
from typing import TYPE_CHECKING, Any

import numpy as np

from spx_core.domain import ChainSnapshot, ExpirySlice, Root, Settlement

if TYPE_CHECKING:  # spx_core.surface is scipy-heavy: the GUI thread imports it only when needed
    from spx_core.surface.served import ServedChain

__all__ = ["ChainField", "VISIBLE_FIELDS", "FIELD_DECIMALS", "SERVED_FIELDS", "CALL", "PUT", "ExpiryBlock",
           "build_block", "expiry_subsnapshot", "atm_index", "window_bounds", "contiguous_ranges", "ChainLayoutError"]

CALL, PUT = 0, 1


class ChainField(IntEnum):
    """Per-quote values of the block (``VISIBLE_FIELDS`` are the ones a user can show)."""

    BID = 0
    MID = 1
    ASK = 2
    IV = 3
    DELTA = 4
    GAMMA = 5
    THETA = 6
    VEGA = 7
    VOLUME = 8
    OI = 9
    IV_BID = 10  # tooltip only
    IV_ASK = 11
    BID_SIZE = 12
    ASK_SIZE = 13
    THETA_CLOSE = 14


#: The fields a user can show, in their order outward from the strike column.
VISIBLE_FIELDS: tuple[ChainField, ...] = (
    ChainField.BID_SIZE, ChainField.BID, ChainField.MID, ChainField.ASK, ChainField.ASK_SIZE, ChainField.IV,
    ChainField.DELTA, ChainField.GAMMA, ChainField.THETA, ChainField.THETA_CLOSE, ChainField.VEGA,
    ChainField.VOLUME, ChainField.OI)
#: Fields evaluated at the served IV: they share its source (own quote, OTM side or fitted smile).
SERVED_FIELDS: tuple[ChainField, ...] = (ChainField.IV, ChainField.DELTA, ChainField.GAMMA, ChainField.THETA,
                                         ChainField.THETA_CLOSE, ChainField.VEGA)
#: Decimals shown per field; values are compared at this precision so a repaint happens only when
#: the text would change. IV is shown in percent, hence 4 decimals of the fraction.
FIELD_DECIMALS: dict[ChainField, int] = {
    ChainField.BID: 2, ChainField.MID: 2, ChainField.ASK: 2, ChainField.IV: 4, ChainField.DELTA: 3,
    ChainField.GAMMA: 4, ChainField.THETA: 2, ChainField.VEGA: 2, ChainField.VOLUME: 0, ChainField.OI: 0,
    ChainField.IV_BID: 4, ChainField.IV_ASK: 4, ChainField.BID_SIZE: 0, ChainField.ASK_SIZE: 0,
    ChainField.THETA_CLOSE: 2,
}
_SCALE = np.array([10.0 ** FIELD_DECIMALS[f] for f in ChainField])
_SERVED_ATTRS = {ChainField.IV: "iv", ChainField.DELTA: "delta", ChainField.GAMMA: "gamma",
                 ChainField.THETA: "theta", ChainField.VEGA: "vega", ChainField.THETA_CLOSE: "theta_close"}
_SOLVER_ATTRS = {ChainField.IV_BID: "iv_bid", ChainField.IV_ASK: "iv_ask"}


class ChainLayoutError(ValueError):
    """The snapshot given to the chain table does not hold exactly one (root, expiry)."""


@dataclass(frozen=True, slots=True, eq=False)
class ExpiryBlock:
    """One expiry of a chain as dense arrays (strike index ``k``, side 0 = call / 1 = put).

    Attributes:
        root, expiry, settlement: which listing this is.
        strikes: (n,) ascending strikes (index points), the union of call and put strikes.
        rows: (2, n) int64 row in the source snapshot, -1 where that side is not listed.
        values: (2, n, len(ChainField)) float64 in the units of the module docstring; NaN = n/a.
        quantized: ``values`` rounded to the displayed precision (for change detection).
        flags: (2, n) uint16 QuoteFlag bits; reason: (2, n) uint8 mid-IV solver reason codes (0 = solved).
        source, why: (2, n) uint8 ``IVSource`` / ``Substitution`` codes of the served IV.
        forward, discount, t: the expiry's implied forward (points), discount factor and years to
            expiry (NaN when the forward could not be implied).
        underlying: the underlying price of the snapshot; time_ns: snapshot time.
        close_years: years from the snapshot to today's close (NaN outside the session).
    """

    root: Root
    expiry: date
    settlement: Settlement
    strikes: np.ndarray
    rows: np.ndarray
    values: np.ndarray
    quantized: np.ndarray
    flags: np.ndarray
    reason: np.ndarray
    source: np.ndarray
    why: np.ndarray
    forward: float
    discount: float
    t: float
    underlying: float
    time_ns: int
    close_years: float = float("nan")

    @property
    def key(self) -> tuple[Root, date]:
        return self.root, self.expiry

    @property
    def money(self) -> float:
        """Where "at the money" is: the implied forward, else the underlying price."""
        return self.forward if np.isfinite(self.forward) else self.underlying

    def side_totals(self, field: ChainField) -> tuple[float, float]:
        """(calls, puts) sum of ``field`` over every strike of the expiry (NaN values skipped)."""
        v = self.values[:, :, field]
        return float(np.nansum(v[0])), float(np.nansum(v[1]))

    def expected_move(self) -> tuple[float, float]:
        """ATM straddle (call mid + put mid at the strike nearest the money): (points, fraction of money)."""
        if not len(self.strikes):
            return float("nan"), float("nan")
        k = atm_index(self.strikes, self.money)
        points = float(self.values[0, k, ChainField.MID] + self.values[1, k, ChainField.MID])
        return points, points / self.money if self.money > 0 else float("nan")

    def same_layout(self, other: ExpiryBlock | None) -> bool:
        return (other is not None and self.key == other.key and self.strikes.shape == other.strikes.shape
                and np.array_equal(self.strikes, other.strikes) and np.array_equal(self.rows, other.rows))


def expiry_subsnapshot(snapshot: ChainSnapshot, sl: ExpirySlice) -> ChainSnapshot:
    """The rows of one (root, expiry) as their own snapshot (see ``spx_core.surface.chain_iv``)."""
    from spx_core.surface.chain_iv import expiry_subsnapshot as sub

    return sub(snapshot, sl)


def build_block(snapshot: ChainSnapshot, served: ServedChain | None) -> ExpiryBlock:
    """Lay out a one-expiry snapshot and its served IVs/greeks (or None: IV/greeks shown as n/a).

    Raises:
        ChainLayoutError: when the snapshot holds no rows or more than one (root, expiry).
    """
    slices = snapshot.expiries()
    if len(slices) != 1:
        raise ChainLayoutError(f"the chain table shows one expiry at a time, got {len(slices)} (root, expiry) "
                               "groups; pass expiry_subsnapshot(snapshot, slice)")
    sl = slices[0]
    c = snapshot.columns
    strikes, k = np.unique(c["strike"], return_inverse=True)
    side = np.where(c["is_call"], CALL, PUT)
    n, nf = len(strikes), len(ChainField)
    rows = np.full((2, n), -1, dtype=np.int64)
    rows[side, k] = np.arange(len(snapshot))
    per_row = np.full((len(snapshot), nf), np.nan)
    per_row[:, ChainField.BID] = c["bid"]
    per_row[:, ChainField.ASK] = c["ask"]
    per_row[:, ChainField.MID] = 0.5 * (c["bid"] + c["ask"])
    per_row[:, ChainField.VOLUME] = c["volume"]
    per_row[:, ChainField.OI] = c["open_interest"]
    per_row[:, ChainField.BID_SIZE] = c["bid_size"]
    per_row[:, ChainField.ASK_SIZE] = c["ask_size"]
    codes = np.zeros((3, len(snapshot)), dtype=np.uint8)  # solver reason, IV source (0 = none), substitution
    forward = discount = t = close = float("nan")
    if served is not None:
        for field, attr in _SERVED_ATTRS.items():
            per_row[:, field] = getattr(served, attr)
        for field, attr in _SOLVER_ATTRS.items():
            per_row[:, field] = getattr(served.civ, attr)
        codes[:] = served.civ.reason, served.source, served.why
        forward, discount, t = (_first_finite(getattr(served.civ, a)) for a in ("forward", "discount", "t"))
        close = served.close_years
    values = np.full((2, n, nf), np.nan)
    values[side, k] = per_row
    flags = np.zeros((2, n), dtype=np.uint16)
    flags[side, k] = c["flags"]
    laid = np.zeros((3, 2, n), dtype=np.uint8)
    laid[:, side, k] = codes
    with np.errstate(invalid="ignore"):
        quantized = np.round(values * _SCALE)
    return ExpiryBlock(sl.root, sl.expiry, sl.settlement, strikes, rows, values, quantized, flags, laid[0], laid[1],
                       laid[2], forward, discount, t, float(snapshot.underlying_price), int(snapshot.time_ns), close)


def _first_finite(values: Any) -> float:
    arr = np.asarray(values, dtype=np.float64)
    ok = arr[np.isfinite(arr)]
    return float(np.median(ok)) if ok.size else float("nan")


def atm_index(strikes: np.ndarray, money: float) -> int:
    """Index of the strike nearest ``money`` (0 for an empty or unpriced chain)."""
    if len(strikes) == 0 or not np.isfinite(money):
        return len(strikes) // 2
    return int(np.argmin(np.abs(strikes - money)))


def window_bounds(n_strikes: int, center: int, size: int) -> tuple[int, int]:
    """``[lo, hi)`` of ``size`` strikes centred on ``center``, shifted to stay inside ``[0, n)``."""
    size = max(0, min(size, n_strikes))
    lo = min(max(center - size // 2, 0), n_strikes - size)
    return lo, lo + size


def contiguous_ranges(mask: np.ndarray) -> list[tuple[int, int]]:
    """``[start, stop)`` runs of True in a 1-D boolean mask."""
    if not mask.any():
        return []
    edges = np.flatnonzero(np.diff(np.r_[0, mask.astype(np.int8), 0]))
    return list(zip(edges[0::2].tolist(), edges[1::2].tolist(), strict=True))


def changed_cells(old: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Where two quantized blocks differ (NaN equal to NaN)."""
    return (old != new) & ~(np.isnan(old) & np.isnan(new))
