"""Prices, payoff, probability and scores of scanner candidates, vectorized over every candidate.

Inputs are per snapshot row (:class:`RowData`) and a :class:`~scanner_candidates.Candidates` block; every
figure is computed with gathers ``x[rows]`` and array arithmetic (loops run per expiry only).

Units: prices and P&L in index points per one unit of the structure (x multiplier for dollars);
``credit`` figures are signed net credits (positive = credit received, negative = debit paid).

Single-expiry structures (verticals, condors, flies) have a piecewise-linear payoff at expiry with kinks
at their strikes. POP is the risk-neutral probability of the pieces where the P&L is positive: between
consecutive kinks (and beyond the last one) the P&L is linear, so its zero crossings are solved per
segment and the probability taken from the density's exact CDF at the segment ends, all candidates of
every expiry in one batched call (:class:`~scanner_surface.ServedSlices`). EV is exact too: the density is the fitted smile's Breeden-Litzenberger density, so
E[(S_T-K)+] = C_fit(K)/D, and EV = credit + sum(ratio x leg fair value / D) (no grid, no loop).
Calendars are valued on the near expiry's density quadrature: the far leg priced off the fitted surface
(Black-76, sticky strike, the far smile's fitted IV) minus the near leg's intrinsic value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spx_core.pricing import black76
from spx_core.strategies.scanner_candidates import Candidates
from spx_core.strategies.scanner_params import ScoreWeights
from spx_core.strategies.scanner_surface import ServedSlices

#: P&L above this many index points counts as a profit: a flat stretch that is zero in exact arithmetic
#: (a butterfly bought for nothing at mid) comes out as +-1e-15 from summing quotes, and must not flip POP.
PROFIT_EPS = 1e-9
#: The smallest max loss EV / max loss divides by: one SPX tick (index points per unit), so a candidate whose
#: mid puts its risk at ~0 (quotes of 0 / 0.05) does not get an unbounded score.
MIN_RISK = 0.05

__all__ = [
    "MIN_RISK",
    "PROFIT_EPS",
    "Odds",
    "Prices",
    "RowData",
    "calendar_odds",
    "edge",
    "expiry_odds",
    "prices",
    "score",
    "score_terms",
]


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


def _segment_bounds(a, b, va, vb) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where the line from (a, va) to (b, vb) is > 0: (lo, hi, any) with [lo, hi] inside [a, b]."""
    with np.errstate(invalid="ignore", divide="ignore"):
        z = a + (b - a) * va / (va - vb)  # the zero crossing (used only when the signs differ)
    return np.where(va > 0, a, z), np.where(vb > 0, b, z), (va > 0) | (vb > 0)


def _tail_bounds(x, v, s) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where the line v + s (S - x) is > 0 on [x, inf): (lo, hi, any); hi may be inf."""
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(s != 0, x - v / s, np.inf)
    return np.where(v > 0, x, z), np.where((v > 0) & (s < 0), z, np.inf), (v > 0) | (s > 0)


def expiry_odds(c: Candidates, data: RowData, slices: ServedSlices, credit: np.ndarray) -> Odds:
    """Max loss, POP and EV of single-expiry candidates at the net ``credit`` (points, signed).

    POP and EV are NaN for candidates of an expiry the surface did not fit (no density). EV uses
    E[(S_T-K)+] = C_fit(K)/D (and the put alike): the density is the fitted smile's Breeden-Litzenberger
    density, so it reprices the fitted options exactly, and each leg's expectation is its fair value / D.
    """
    n = len(c)
    strikes, calls = data.strike[c.rows], data.is_call[c.rows]
    r = c.ratios.astype(np.float64)
    x = np.concatenate([np.zeros((n, 1)), np.sort(strikes, axis=1)], axis=1)
    pnl = _payoff(strikes, calls, c.ratios, x) + credit[:, None]  # at 0 and at every kink
    slope = (calls * r).sum(axis=1)  # d payoff / dS beyond the highest strike
    max_loss = np.where(slope < 0, np.inf, np.maximum(-pnl.min(axis=1), 0.0))
    pnl = pnl - PROFIT_EPS
    seg = _segment_bounds(x[:, :-1], x[:, 1:], pnl[:, :-1], pnl[:, 1:])
    tail = _tail_bounds(x[:, -1], pnl[:, -1], slope)
    lo = np.concatenate([seg[0], tail[0][:, None]], axis=1)
    hi = np.concatenate([seg[1], tail[1][:, None]], axis=1)
    live = np.concatenate([seg[2], tail[2][:, None]], axis=1)
    # One CDF evaluation for every candidate of every expiry, on the bounds of the profitable pieces only.
    group = np.broadcast_to(c.book[:, None], live.shape)[live]
    below = slices.prob_below(np.concatenate([group, group]), np.concatenate([lo[live], hi[live]]))
    mass = np.zeros(live.shape)
    mass[live] = below[len(group):] - below[:len(group)]
    has = slices.fitted[c.book]
    pop = np.where(has, mass.sum(axis=1), np.nan)
    ev = np.where(has, credit + (data.fair[c.rows] / data.discount[c.rows]) @ r, np.nan)
    return Odds(max_loss, pop, ev)


def _prob_below(density, x: np.ndarray) -> np.ndarray:
    """P(S_T < x); x <= 0, +inf and unused (NaN) bounds are answered without asking the smile (k = ln(x/F)
    would be -inf or NaN there), and each distinct x is asked once (strikes repeat across candidates)."""
    finite = np.isfinite(x) & (x > 0)
    out = np.where(np.isinf(x) & (x > 0), 1.0, 0.0)
    points, inverse = np.unique(x[finite], return_inverse=True)
    out[finite] = density.prob_below(points)[inverse]
    return out


def _grid_pop(density, nodes: np.ndarray, pnl: np.ndarray) -> np.ndarray:
    """P(P&L > 0) for P&L rows sampled at ascending ``nodes``, linear between nodes: the probability of each
    cell where the P&L is positive, with the exact CDF at the nodes and at the few zero crossings."""
    below = _prob_below(density, nodes)
    a, b = pnl[:, :-1], pnl[:, 1:]
    both = (a > 0) & (b > 0)
    total = (both * np.diff(below)).sum(axis=1)
    i, j = np.nonzero((a > 0) != (b > 0))  # cells with a crossing: solve it, ask the CDF there
    with np.errstate(invalid="ignore", divide="ignore"):
        z = nodes[j] + (nodes[j + 1] - nodes[j]) * a[i, j] / (a[i, j] - b[i, j])
    fz = _prob_below(density, z)
    part = np.where(a[i, j] > 0, fz - below[j], below[j + 1] - fz)
    return total + np.bincount(i, weights=part, minlength=len(pnl))


def calendar_odds(c: Candidates, data: RowData, densities: dict[int, object], credit: np.ndarray) -> Odds:
    """Max loss, POP and EV of two-expiry candidates (leg 0 near, leg 1 far) at the near expiry.

    EV with the near density's quadrature (Gauss-Legendre on its grid, split at the near strikes); POP from
    the exact CDF over the P&L's positive cells between those nodes; max loss is the worst P&L over the nodes
    holding all but 1e-9 of the probability on each side. A near expiry with no density (a slice too thin to
    fit, e.g. 0DTE minutes before the close) still has a max loss, a payoff figure: the worst P&L over its
    listed strikes; POP and EV stay unknown (NaN).
    """
    n = len(c)
    max_loss, pop, ev = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    near = c.rows[:, 0]
    for book in np.unique(c.book):
        sel = np.flatnonzero(c.book == book)
        density = densities.get(int(book))
        if density is None or not density.ok:
            nodes = np.unique(data.strike[data.book == book])
            max_loss[sel] = np.maximum(-_calendar_pnl(c, data, sel, nodes, credit).min(axis=1), 0.0)
            continue
        nodes, weights = density.quadrature(np.unique(data.strike[near[sel]]))
        order = np.argsort(nodes)
        nodes, weights = nodes[order], weights[order]
        pnl = _calendar_pnl(c, data, sel, nodes, credit)
        ev[sel] = pnl @ weights
        pop[sel] = _grid_pop(density, nodes, pnl - PROFIT_EPS)
        cum = np.cumsum(weights)
        core = (cum >= 1e-9) & (cum <= cum[-1] - 1e-9)
        max_loss[sel] = np.maximum(-pnl[:, core].min(axis=1, initial=np.inf), 0.0)
    return Odds(max_loss, pop, ev)


def _calendar_pnl(c: Candidates, data: RowData, sel: np.ndarray, nodes: np.ndarray, credit: np.ndarray) -> np.ndarray:
    """(len(sel), len(nodes)) P&L at the near expiry with the index at ``nodes`` (points per unit)."""
    r = c.ratios.astype(np.float64)
    s = nodes[None, :]
    fn, ff = c.rows[sel, 0, None], c.rows[sel, 1, None]
    # The far option at the near expiry: its forward moves with the index (the carry ratio F_far/F_near),
    # its remaining time and discount are the differences, its vol the far smile's fitted IV at the strike.
    value = black76.price(forward=s * (data.forward[ff] / data.forward[fn]), strike=data.strike[ff],
                          t=data.t[ff] - data.t[fn], vol=data.iv_fit[ff],
                          discount=data.discount[ff] / data.discount[fn], is_call=data.is_call[ff])
    k = data.strike[fn]
    intrinsic = np.where(data.is_call[fn], np.maximum(s - k, 0.0), np.maximum(k - s, 0.0))
    return r[0] * intrinsic + r[1] * value + credit[sel, None]


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


def score_terms(*, credit_mid, width, max_loss, pop, ev, edge_usd, edge_volpts) -> dict[str, np.ndarray]:
    """The terms the weights multiply, in the units :class:`ScoreWeights` states (NaN where undefined; EV / max
    loss divides by at least :data:`MIN_RISK`)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        credit_per_width = np.where(width > 0, credit_mid / width, np.nan)
        ev_per_max_loss = ev / np.maximum(max_loss, MIN_RISK)
    return {"ev": ev, "ev_per_max_loss": ev_per_max_loss, "pop": pop, "credit_per_width": credit_per_width,
            "edge_usd": edge_usd, "edge_volpts": edge_volpts}


def score(terms: dict[str, np.ndarray], weights: ScoreWeights) -> np.ndarray:
    """``sum(weight x term)``; a NaN term adds nothing (it is unknown, not bad), but a candidate none of whose
    weighted terms is known has no score (NaN: it ranks after every scored one, not as a neutral 0 above the
    candidates with a known negative score)."""
    total = np.zeros(len(next(iter(terms.values()))))
    known = np.zeros(len(total), dtype=bool)
    for name, values in terms.items():
        w = getattr(weights, name)
        if w:
            total += w * np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
            known |= np.isfinite(values)
    return np.where(known, total, np.nan)
