"""Prices, payoff, probability and scores of scanner candidates, vectorized over every candidate.

Inputs are per snapshot row (:class:`RowData`) and a :class:`~scanner_candidates.Candidates` block; every
figure is computed with gathers ``x[rows]`` and array arithmetic (loops run per expiry only).

Units: prices and P&L in index points per one unit of the structure (x multiplier for dollars);
``credit`` figures are signed net credits (positive = credit received, negative = debit paid).

Single-expiry structures (verticals, condors, flies) have a piecewise-linear payoff at expiry with kinks
at their strikes, so with the risk-neutral density's CDF ``F`` and partial first moment
``M(K) = integral_0^K S f(S) dS`` (both tabulated once per expiry, linearly interpolated):
    E[(S-K)+] = (M(inf) - M(K)) - K (F(inf) - F(K)),  E[(K-S)+] = K F(K) - M(K)
gives the expected value of every leg, hence EV = credit + sum(ratio x leg expectation); and POP is the
density mass of the segments between kinks where the linear P&L is positive (zero crossings solved per
segment). Calendars are valued on the near expiry's density grid: the far leg priced off the fitted
surface (Black-76, sticky strike, the far smile's fitted IV) minus the near leg's intrinsic value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spx_core.pricing import black76
from spx_core.strategies.scanner_candidates import Candidates
from spx_core.strategies.scanner_params import ScoreWeights

__all__ = ["RowData", "DensityTable", "Prices", "Odds", "prices", "expiry_odds", "calendar_odds", "edge",
           "score"]


@dataclass(frozen=True, slots=True)
class RowData:
    """Per snapshot row: what the scores gather. Prices in index points; vols annualized (0.20 = 20%).

    ``k`` is ln(K/F); ``book`` the row's expiry index (``ChainIV.expiry_index``). ``iv_fit`` and ``fair``
    (Black-76 at ``iv_fit`` on the row's parity forward) are NaN for rows the scan does not price and rows
    of expiries the surface did not fit.
    """

    strike: np.ndarray
    is_call: np.ndarray
    bid: np.ndarray
    ask: np.ndarray
    open_interest: np.ndarray
    flags: np.ndarray
    abs_delta: np.ndarray
    iv_mid: np.ndarray
    vega: np.ndarray
    t: np.ndarray
    forward: np.ndarray
    discount: np.ndarray
    k: np.ndarray
    book: np.ndarray
    iv_fit: np.ndarray
    fair: np.ndarray

    @property
    def mid(self) -> np.ndarray:
        return 0.5 * (self.bid + self.ask)


@dataclass(frozen=True, slots=True)
class DensityTable:
    """One expiry's risk-neutral density tabulated for interpolation.

    Attributes:
        price: ascending grid of the underlying at expiry (index points).
        pdf: density on the grid (per index point).
        cdf: P(S_T <= price) on the grid.
        m1: partial first moment integral of S f(S) dS up to each grid point (index points).
    """

    price: np.ndarray
    pdf: np.ndarray
    cdf: np.ndarray
    m1: np.ndarray

    @classmethod
    def from_density(cls, density) -> DensityTable:
        """From a :class:`~spx_core.surface.density.RiskNeutralDensity` (its ``price``, ``pdf``, ``cdf``)."""
        price = np.asarray(density.price, dtype=np.float64)
        pdf = np.asarray(density.pdf, dtype=np.float64)
        sp = price * pdf
        m1 = np.concatenate([[0.0], np.cumsum(0.5 * (sp[1:] + sp[:-1]) * np.diff(price))])
        return cls(price, pdf, np.asarray(density.cdf, dtype=np.float64), m1)

    def prob_below(self, x: np.ndarray) -> np.ndarray:
        return np.interp(x, self.price, self.cdf)

    def call_expectation(self, k: np.ndarray) -> np.ndarray:
        """E[(S_T - K)+] (index points, undiscounted)."""
        return (self.m1[-1] - np.interp(k, self.price, self.m1)) - k * (self.cdf[-1] - self.prob_below(k))

    def put_expectation(self, k: np.ndarray) -> np.ndarray:
        """E[(K - S_T)+] (index points, undiscounted)."""
        return k * self.prob_below(k) - np.interp(k, self.price, self.m1)


@dataclass(frozen=True, slots=True)
class Prices:
    """Net prices of each candidate (index points per unit)."""

    credit_mid: np.ndarray  # -sum(ratio x leg mid)
    credit_natural: np.ndarray  # short legs at the bid minus long legs at the ask
    package_spread: np.ndarray  # sum(|ratio| x (ask - bid)): what crossing the whole package costs


@dataclass(frozen=True, slots=True)
class Odds:
    """At expiry (the near expiry for calendars), at the cost the scan assumes."""

    max_loss: np.ndarray  # index points per unit (inf = unlimited)
    pop: np.ndarray  # probability of profit under the fitted risk-neutral density
    ev: np.ndarray  # expected P&L under that density (index points per unit, undiscounted)


def prices(c: Candidates, data: RowData) -> Prices:
    bid, ask = data.bid[c.rows], data.ask[c.rows]
    r = c.ratios.astype(np.float64)
    short, long_ = r < 0, r > 0
    # Sums of only the sides used: a short leg's ask and a long leg's bid never enter the natural price,
    # and for a vertical this is exactly short bid - long ask (0.0 + x and 1.0 * x are exact).
    sell = np.where(short, -r * bid, 0.0).sum(axis=1)
    buy = np.where(long_, r * ask, 0.0).sum(axis=1)
    credit_mid = -((0.5 * (bid + ask)) @ r)
    spread = (ask - bid) @ np.abs(r)
    return Prices(credit_mid, sell - buy, spread)


def _payoff(strikes: np.ndarray, calls: np.ndarray, ratios: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Expiry payoff (points per unit) of each candidate at its own price points ``x`` (n, m)."""
    xs, ks, cs = x[:, :, None], strikes[:, None, :], calls[:, None, :]
    intrinsic = np.where(cs, np.maximum(xs - ks, 0.0), np.maximum(ks - xs, 0.0))
    return intrinsic @ ratios.astype(np.float64)


def _positive_mass(table: DensityTable, a, b, va, vb) -> np.ndarray:
    """Density mass of the segments [a, b] where the line from (a, va) to (b, vb) is > 0."""
    with np.errstate(invalid="ignore", divide="ignore"):
        z = a + (b - a) * va / (va - vb)  # the zero crossing (used only when the signs differ)
    lo = np.where(va > 0, a, z)
    hi = np.where(vb > 0, b, z)
    return np.where((va > 0) | (vb > 0), table.prob_below(hi) - table.prob_below(lo), 0.0)


def _tail_mass(table: DensityTable, x, v, s) -> np.ndarray:
    """Density mass of [x, inf) where the line v + s (S - x) is > 0."""
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(s != 0, x - v / s, np.inf)
    lo = np.where(v > 0, x, z)
    hi = np.where((v > 0) & (s < 0), z, np.inf)
    below_hi = np.where(np.isinf(hi), table.cdf[-1], table.prob_below(np.where(np.isinf(hi), x, hi)))
    return np.where((v > 0) | (s > 0), below_hi - table.prob_below(np.where(np.isinf(lo), x, lo)), 0.0)


def expiry_odds(c: Candidates, data: RowData, tables: dict[int, DensityTable | None], credit: np.ndarray) -> Odds:
    """Max loss, POP and EV of single-expiry candidates at the net ``credit`` (points, signed)."""
    n, legs = c.rows.shape
    strikes, calls = data.strike[c.rows], data.is_call[c.rows]
    r = c.ratios.astype(np.float64)
    order = np.argsort(strikes, axis=1, kind="stable")
    x = np.concatenate([np.zeros((n, 1)), np.take_along_axis(strikes, order, axis=1)], axis=1)
    pnl = _payoff(strikes, calls, c.ratios, x) + credit[:, None]  # at 0 and at every kink
    slope = (calls * r).sum(axis=1)  # d payoff / dS beyond the highest strike
    max_loss = np.where(slope < 0, np.inf, np.maximum(-pnl.min(axis=1), 0.0))
    pop = np.full(n, np.nan)
    ev = np.full(n, np.nan)
    for book in np.unique(c.book):
        table = tables.get(int(book))
        if table is None:
            continue
        sel = np.flatnonzero(c.book == book)
        xs, vs, k = x[sel], pnl[sel], strikes[sel]
        mass = _positive_mass(table, xs[:, :-1], xs[:, 1:], vs[:, :-1], vs[:, 1:]).sum(axis=1)
        pop[sel] = mass + _tail_mass(table, xs[:, -1], vs[:, -1], slope[sel])
        leg_ev = np.where(calls[sel], table.call_expectation(k), table.put_expectation(k))
        ev[sel] = credit[sel] + leg_ev @ r
    return Odds(max_loss, pop, ev)


def calendar_odds(c: Candidates, data: RowData, tables: dict[int, DensityTable | None],
                  credit: np.ndarray) -> Odds:
    """Max loss, POP and EV of two-expiry candidates (leg 0 near, leg 1 far) at the near expiry."""
    n = len(c)
    max_loss, pop, ev = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    r = c.ratios.astype(np.float64)
    near, far = c.rows[:, 0], c.rows[:, 1]
    for book in np.unique(c.book):
        table = tables.get(int(book))
        if table is None:
            continue
        sel = np.flatnonzero(c.book == book)
        s = table.price[None, :]
        fn, ff = near[sel, None], far[sel, None]
        # The far option at the near expiry: its forward moves with the index (the carry ratio F_far/F_near),
        # its remaining time and discount are the differences, its vol the far smile's fitted IV at the strike.
        value = black76.price(forward=s * (data.forward[ff] / data.forward[fn]), strike=data.strike[ff],
                              t=data.t[ff] - data.t[fn], vol=data.iv_fit[ff],
                              discount=data.discount[ff] / data.discount[fn], is_call=data.is_call[ff])
        k = data.strike[fn]
        intrinsic = np.where(data.is_call[fn], np.maximum(s - k, 0.0), np.maximum(k - s, 0.0))
        pnl = r[0] * intrinsic + r[1] * value + credit[sel, None]
        a, b = np.broadcast_to(s[:, :-1], pnl[:, :-1].shape), np.broadcast_to(s[:, 1:], pnl[:, 1:].shape)
        pop[sel] = _positive_mass(table, a, b, pnl[:, :-1], pnl[:, 1:]).sum(axis=1)
        ev[sel] = np.trapezoid(pnl * table.pdf[None, :], table.price, axis=1)
        max_loss[sel] = np.maximum(-pnl.min(axis=1), 0.0)
    return Odds(max_loss, pop, ev)


def edge(c: Candidates, data: RowData, credit_mid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(edge in index points, edge in vol points) of the market mid against the fitted surface.

    Points: net mid credit minus the net credit at the surface's fair values (positive = the market pays
    us more than fair: selling above or buying below the fit). Vol points: the vega-weighted mean of
    (market mid IV - fitted IV) over the legs, signed by -ratio, so selling a strike whose market IV is
    rich to the fit counts positive and buying a rich one negative.
    """
    r = c.ratios.astype(np.float64)
    fair_credit = -(data.fair[c.rows] @ r)
    points = credit_mid - fair_credit
    w = data.vega[c.rows] * r
    rich = data.iv_mid[c.rows] - data.iv_fit[c.rows]
    with np.errstate(invalid="ignore", divide="ignore"):
        volpts = 100.0 * (-(w * rich).sum(axis=1)) / np.abs(w).sum(axis=1)
    return points, volpts


def score_terms(*, credit_mid, width, max_loss, pop, ev, edge_volpts) -> dict[str, np.ndarray]:
    """The dimensionless terms the weights multiply (NaN where a term is undefined)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        credit_per_width = np.where(width > 0, credit_mid / width, np.nan)
        ev_per_max_loss = np.where(max_loss > 0, ev / max_loss, np.nan)
    return {"ev_per_max_loss": ev_per_max_loss, "pop": pop, "credit_per_width": credit_per_width,
            "edge_volpts": edge_volpts}


def score(terms: dict[str, np.ndarray], weights: ScoreWeights) -> np.ndarray:
    """``sum(weight x term)``; a NaN term adds nothing (it is unknown, not bad)."""
    total = np.zeros(len(next(iter(terms.values()))))
    for name, values in terms.items():
        w = getattr(weights, name)
        if w:
            total += w * np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
    return total
