"""The risk report of a book: greeks, VaR/ES, named stresses, the spot x IV matrix and the P&L-vs-spot curve.

Everything is a full revaluation of every leg on the given market (:func:`~spx_core.risk.scenarios.stress`),
except the parametric VaR, the delta-gamma-vega cross-check. P&L figures are dollars from the book's model value
**now** (not from its entry cost). Time comes only from the market's snapshots: nothing here reads the clock.

- ``named``: :func:`~spx_core.risk.scenarios.named_scenarios`, whose "VIX to 50" needs today's VIX: the explicit
  ``vix``, else the history's last VIX when it ends within :data:`FRESH_DAYS` of the snapshot, else the SPX
  snapshot's 30-day ATM IV in points; with none of them that scenario is left out (a note says so).
- ``matrix``: :func:`~spx_core.risk.scenarios.spot_vol_matrix` P&L, ``[spot, vol]``; ``matrix_axes`` are its spot
  moves (fractions) and vol shocks (points at 30 days, term-scaled per leg).
- ``pnl_curve``: ``(spot, t0, expiry)``: SPX levels from -15% to +15% of today's in 0.25% steps, the P&L at T+0
  (IV unchanged) and at the front expiry (the day count to the book's nearest expiry passes; legs expiring then
  are worth intrinsic value, later legs are valued with that much less time, IV unchanged).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from spx_core.domain.contracts import OptionContract
from spx_core.pricing import black76
from spx_core.risk.greeks import (
    Book,
    GreekReport,
    LegInputs,
    gather_legs,
    portfolio_greeks,
)
from spx_core.risk.history import ReturnHistory
from spx_core.risk.scenarios import (
    ScenarioGrid,
    named_scenarios,
    spot_vol_matrix,
    stress,
)
from spx_core.risk.var import VarFigures, historical_var, parametric_var
from spx_core.strategies.market import Market
from spx_core.strategies.structure import PRICE_SCALE

__all__ = ["CURVE_PCTS", "FRESH_DAYS", "RiskReport", "merge_books", "order_legs", "risk_report", "what_if_report"]

#: The history's last VIX stands for today's only when it is at most this many calendar days old.
FRESH_DAYS = 7
#: P&L curve spot moves: -15%..+15% of today's SPX in 0.25% steps.
CURVE_PCTS = np.round(np.arange(-0.15, 0.15 + 1e-9, 0.0025), 6)


@dataclass(frozen=True, slots=True, eq=False)
class RiskReport:
    """One book's risk on one market (fields and units in the module docstring)."""

    greeks: GreekReport
    historical: VarFigures | None
    parametric: VarFigures | None
    named: dict[str, float]
    matrix: np.ndarray
    matrix_axes: tuple[np.ndarray, np.ndarray]
    pnl_curve: tuple[np.ndarray, np.ndarray, np.ndarray]
    notes: tuple[str, ...] = ()
    vix: float = math.nan  # the VIX level the named stresses used (points; NaN: none known)


def risk_report(legs: Book, market: Market, history: ReturnHistory | None, *, vix: float | None = None,
                spy_beta: float = 1.0) -> RiskReport:
    """The full report of ``legs`` (contract, signed quantity) on ``market``; ``history`` None skips VaR."""
    x = gather_legs(legs, market, spy_beta=spy_beta)
    greeks = portfolio_greeks(legs, market, spy_beta=spy_beta)
    notes = list(greeks.notes)
    historical = parametric = None
    if history is None:
        notes.append("no daily history: VaR/ES not computed (import the SPX and VIX daily files)")
    else:
        notes += _history_notes(history, market)
        historical = historical_var(x, None, history)
        parametric = parametric_var(x, None, history)
        if not math.isfinite(historical.var95):
            notes.append("VaR/ES NaN: a leg has no implied vol to re-price with")
    level, level_note = _vix_level(vix, history, market)
    if level_note:
        notes.append(level_note)
    named = _named(x, level)
    grid = spot_vol_matrix()
    matrix = stress(x, None, grid).reshape(grid.shape)
    axes = (grid.spot_pct.reshape(grid.shape)[:, 0].copy(), grid.vol_pts.reshape(grid.shape)[0, :].copy())
    return RiskReport(greeks, historical, parametric, named, matrix, axes, _curve(x, market), tuple(notes), level)


def what_if_report(legs: Book, order_legs: Book, market: Market, history: ReturnHistory | None, *,
                   vix: float | None = None, spy_beta: float = 1.0) -> tuple[RiskReport, RiskReport]:
    """(before, after) reports: the book as it is, and with ``order_legs`` (signed contracts) added.

    Both use the same VIX level, so their named stresses differ only by the order.
    """
    before = risk_report(legs, market, history, vix=vix, spy_beta=spy_beta)
    level = before.vix if math.isfinite(before.vix) else None
    after = risk_report(merge_books(legs, order_legs), market, history, vix=level, spy_beta=spy_beta)
    return before, after


def order_legs(request: Any) -> list[tuple[OptionContract, int]]:
    """The signed contracts an order request adds to the book (all its units; + = bought): the what-if's legs."""
    return [(leg.contract, request.leg_quantity(i)) for i, leg in enumerate(request.legs)]


def merge_books(*books: Book) -> list[tuple[OptionContract, int]]:
    """One book holding every contract of ``books`` once, quantities netted, flat ones left out (first-seen order)."""
    held: dict[OptionContract, int] = {}
    for book in books:
        for contract, quantity in book:
            held[contract] = held.get(contract, 0) + int(quantity)
    return [(c, q) for c, q in held.items() if q]


def _named(x: LegInputs, vix: float) -> dict[str, float]:
    if math.isfinite(vix):
        grid = named_scenarios(vix)
    else:
        every = named_scenarios(20.0)  # any level: the other scenarios do not depend on it
        keep = [i for i, n in enumerate(every.names) if n != "VIX to 50"]
        grid = ScenarioGrid(tuple(every.names[i] for i in keep), every.spot_pct[keep], every.vol_pts[keep],
                            every.days[keep])
    pnl = stress(x, None, grid)
    return {name: float(v) for name, v in zip(grid.names, pnl, strict=True)}


def _snapshot_day(market: Market) -> np.datetime64 | None:
    from spx_core.domain.calendar import ET

    times = [ch.snapshot.time for ch in market.chains.values()]
    return np.datetime64(max(times).astimezone(ET).date(), "D") if times else None


def _history_notes(history: ReturnHistory, market: Market) -> list[str]:
    day, last = _snapshot_day(market), history.last_date
    notes = [f"history: {history.source}"]
    if day is None or last is None:
        return notes
    age = int((day - np.datetime64(last, "D")).astype(int))
    if age < 0:
        notes.append(f"history runs to {last}, after the snapshot's {day}: pass end_ns (look-ahead)")
    elif age > FRESH_DAYS:
        notes.append(f"history ends {last}, {age} days before the snapshot: its moves are the scenarios, "
                     f"its VIX level is not today's")
    return notes


def _vix_level(vix: float | None, history: ReturnHistory | None, market: Market) -> tuple[float, str]:
    """Today's VIX (points) for the named stresses, and a note saying where it came from when not given."""
    if vix is not None:
        if not (math.isfinite(vix) and vix > 0):
            raise ValueError(f"vix must be today's positive VIX level in points, got {vix!r}")
        return float(vix), ""
    day = _snapshot_day(market)
    if history is not None and history.last_date is not None and day is not None \
            and 0 <= int((day - np.datetime64(history.last_date, "D")).astype(int)) <= FRESH_DAYS \
            and math.isfinite(history.last_vol):
        return history.last_vol, ""
    chain = market.chains.get("SPX")
    if chain is not None:
        from spx_core.analytics.iv_rank import atm_iv

        level = 100.0 * atm_iv(chain.snapshot)
        if math.isfinite(level) and level > 0:
            return level, f"VIX to 50 from the SPX 30-day ATM IV ({level:.2f}), no recent VIX close"
    return math.nan, "no VIX level (no recent VIX close, no SPX 30-day ATM IV): 'VIX to 50' left out"


def _spx_level(market: Market) -> float:
    for u in ("SPX", *market.chains):
        chain = market.chains.get(u)
        if chain is not None and math.isfinite(chain.snapshot.underlying_price):
            return float(chain.snapshot.underlying_price) / PRICE_SCALE[u]
    return math.nan


def _curve(x: LegInputs, market: Market) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    spot = _spx_level(market) * (1.0 + CURVE_PCTS)
    n = len(CURVE_PCTS)
    zero = np.zeros(n)
    t0 = stress(x, None, ScenarioGrid(("curve",) * n, CURVE_PCTS, zero, zero))
    if not len(x.contracts):
        return spot, t0, t0.copy()
    front_days = float(np.nanmin(x.t)) * black76.DAYS_PER_YEAR if np.isfinite(x.t).any() else 0.0
    at_expiry = stress(x, None, ScenarioGrid(("expiry",) * n, CURVE_PCTS, zero, np.full(n, max(front_days, 0.0))))
    return spot, t0, at_expiry

