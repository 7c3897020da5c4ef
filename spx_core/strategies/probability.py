"""Odds of a structure at expiry under the fitted risk-neutral density, beside the broker's lognormal figures.

``structure_odds`` takes the P&L at the front expiry (intrinsic for one expiry; calendars and diagonals
with the back legs priced off the surface, :func:`~spx_core.strategies.payoff.front_expiry_value`) and
measures it under two distributions of S_T:

- the **risk-neutral density** of our fitted, arbitrage-free smile (:mod:`spx_core.surface.density`,
  Breeden-Litzenberger in closed form): skew and smile included;
- the **lognormal at the ATM IV** (flat smile at the slice's fitted ATM vol, same forward): what brokers show.

Figures (dollars per unit; P&L = value at expiry - cost, the cost not financed to expiry):
    pop: P(P&L > 0), from the breakevens and the exact distribution function (no grid error).
    touch: per short strike, the probability that the underlying trades through it before expiry, by the
        reflection principle: P(touch K) ~= 2 P(S_T beyond K), "beyond" = on the far side of K from today's
        spot (1 when the strike is already in the money). It is exact for a driftless Brownian motion (the
        path that touches K is equally likely to end on either side of it); we apply it to the fitted
        density's finish probability because the density carries the skew, and cap it at 1. It ignores the
        drift (tiny at these horizons) and the path's vol dynamics. A level is a level: a short put struck
        above spot is "touched" when the underlying rises to its strike.
    ev: E[P&L]; expected_shortfall: E[P&L | P&L in its worst 5%] (negative = a loss).

``expected_moves`` per expiry: 1 SD from the ATM straddle and from the ATM IV (see its docstring).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import date
from types import MappingProxyType

import numpy as np

from spx_core.domain.contracts import Root
from spx_core.strategies.market import Market
from spx_core.strategies.payoff import PayoffModel, front_expiry_value
from spx_core.strategies.structure import Structure
from spx_core.strategies.valuation import value_structure
from spx_core.surface.chain_iv import ChainIV
from spx_core.surface.density import RiskNeutralDensity, expiry_density
from spx_core.surface.surface import ExpiryFit, VolSurface
from spx_core.surface.svi import SVIParams

__all__ = ["ExpectedMove", "Odds", "expected_moves", "lognormal_density", "structure_odds"]

#: 1 SD of a normal S_T per unit of the undiscounted straddle struck at the forward: E|S_T - F| = SD sqrt(2/pi).
STRADDLE_TO_SD = math.sqrt(math.pi / 2.0)
ES_ALPHA = 0.05


@dataclass(frozen=True, slots=True)
class Odds:
    """A structure's odds at its front expiry (see the module docstring for each figure's definition).

    Attributes:
        pop, pop_lognormal: probability of profit under the fitted density / the lognormal at ATM IV.
        touch, touch_lognormal: short strike (primary-underlying points) -> probability of touching it.
        ev, ev_lognormal: expected P&L (dollars per unit).
        expected_shortfall, expected_shortfall_lognormal: mean P&L over the worst 5% (dollars per unit).
        breakevens: primary-underlying prices where the P&L at the front expiry crosses zero, ascending.
        cost: dollars paid per unit (negative = credit) the P&L is measured from.
        expiry: the front expiry the figures are at.
        reason: "" or why the density figures are NaN.
    """

    pop: float
    pop_lognormal: float
    touch: Mapping[float, float]
    touch_lognormal: Mapping[float, float]
    ev: float
    ev_lognormal: float
    expected_shortfall: float
    expected_shortfall_lognormal: float
    breakevens: tuple[float, ...]
    cost: float
    expiry: date
    reason: str = ""


def lognormal_density(surface: VolSurface | None, fit: ExpiryFit, *, points: int = 801) -> RiskNeutralDensity:
    """The broker's distribution: a flat smile at the slice's ATM IV (same forward, discount, time).

    It needs no fitted smile: a slice too thin to fit still has its market ATM IV (``fit.atm_iv`` of the flat
    fallback), so the flat smile is complete (status cleared); a NaN or zero ATM variance is still refused.
    """
    w = fit.atm_iv ** 2 * fit.t
    flat = replace(fit, svi=SVIParams(w, 0.0, 0.0, 0.0, 0.1), correction=None, floor_layers=(), status="")
    return expiry_density(surface, flat, points=points)


def _breakevens(pnl: Callable[[np.ndarray], np.ndarray], grid: np.ndarray, *, linear: bool) -> np.ndarray:
    """Zeros of ``pnl`` on ``grid``: exact by linear interpolation when ``pnl`` is linear between grid points
    (expiry payoffs with the kinks on the grid), else sign changes refined by bisection."""
    v = pnl(grid)
    sign = v > 0
    cells = np.flatnonzero(sign[1:] != sign[:-1])
    lo, hi = grid[cells], grid[cells + 1]
    if linear:
        return lo + (hi - lo) * v[cells] / (v[cells] - v[cells + 1])
    left = sign[cells]
    for _ in range(16):  # bisection shrinks the cell 65536x, then the chord is exact to its curvature
        mid = 0.5 * (lo + hi)
        same = (pnl(mid) > 0) == left
        lo, hi = np.where(same, mid, lo), np.where(same, hi, mid)
    v_lo, v_hi = pnl(lo), pnl(hi)
    return lo + (hi - lo) * v_lo / (v_lo - v_hi)


def _pop(d: RiskNeutralDensity, pnl: Callable[[np.ndarray], np.ndarray], roots: np.ndarray) -> float:
    """P(pnl(S_T) > 0): the distribution function between consecutive breakevens where pnl is positive."""
    if not len(roots):
        return float(pnl(np.array([d.forward]))[0] > 0)
    inner = 0.5 * (roots[1:] + roots[:-1])
    probe = np.r_[min(0.5 * roots[0], d.price[0]), inner, max(2.0 * roots[-1], d.price[-1])]
    below = np.r_[0.0, d.prob_below(roots), 1.0]
    return float(np.sum(np.where(pnl(probe) > 0, np.diff(below), 0.0)))


def _touch(d: RiskNeutralDensity, levels: np.ndarray, spot: float) -> dict[float, float]:
    """Reflection principle: 2 x P(S_T beyond the level, seen from today's spot), capped at 1."""
    beyond = np.where(levels < spot, d.prob_below(levels), d.prob_above(levels))
    return {float(k): float(min(1.0, 2.0 * p)) for k, p in zip(levels, beyond, strict=True)}


def _figures(d: RiskNeutralDensity, pnl: Callable[[np.ndarray], np.ndarray], roots: np.ndarray, kinks: np.ndarray,
             short_strikes: np.ndarray, spot: float) -> tuple[float, Mapping[float, float], float, float]:
    """(POP, touch per short strike, EV, expected shortfall) under one distribution; NaN without it."""
    if not d.ok:
        return math.nan, MappingProxyType({float(k): math.nan for k in short_strikes}), math.nan, math.nan
    return (_pop(d, pnl, roots), MappingProxyType(_touch(d, short_strikes, spot)), d.expected(pnl, kinks=kinks),
            d.shortfall(pnl, ES_ALPHA, kinks=kinks))


def structure_odds(structure: Structure, market: Market, *, cost: float | None = None,
                   density: RiskNeutralDensity | None = None) -> Odds:
    """POP, touch, EV and expected shortfall of one unit at the front expiry (module docstring).

    Args:
        cost: dollars paid per unit (negative = credit); None = the snapshot's net mid.
        density: the front expiry's density when already computed (e.g. by ``surface_densities``).
    Raises:
        MarketError: the market lacks an underlying the structure uses.
    """
    chain = market[structure.underlying]
    front = structure.front_expiry
    front_root = next(leg.contract.root for leg in structure.legs
                      if leg.contract.expiry == front and leg.underlying == structure.underlying)
    reason = ""
    if cost is None:
        value = value_structure(structure, market)
        cost = -value.mid * structure.legs[0].contract.multiplier
        if not math.isfinite(cost):
            reason = f"no net mid to take as the cost ({value.reason}); pass cost="
    fit = chain.surface.by_expiry(front_root, front) if chain.surface is not None else None
    model = PayoffModel.build(structure, market)
    if fit is None or model.reason or reason:
        why = "no fitted surface in the market" if chain.surface is None else \
            f"{front_root} {front} not in the surface" if fit is None else ""
        return _unavailable(front, float(cost), "; ".join(filter(None, (reason, model.reason, why))))
    d = density if density is not None else expiry_density(chain.surface, fit)
    ln = lognormal_density(chain.surface, fit)

    single = len(structure.expiries) == 1

    def pnl(s: np.ndarray) -> np.ndarray:  # at the front expiry: intrinsic, or back legs off the surface
        value = model.intrinsic(s) if single else front_expiry_value(structure, market, s, model=model)
        return value - cost

    at_front = np.array([leg.contract.expiry == front for leg in structure.legs])
    levels = model.strike / model.scale  # leg strikes on the primary underlying's axis
    kinks = np.unique(levels[at_front])
    shorts = np.unique(levels[at_front & (structure.ratios < 0)])
    spot = chain.snapshot.underlying_price
    grid = np.union1d((d if d.ok else ln).price, kinks)
    roots = _breakevens(pnl, grid, linear=single) if len(grid) > len(kinks) else np.empty(0)
    pop, touch, ev, es = _figures(d, pnl, roots, kinks, shorts, spot)
    pop_ln, touch_ln, ev_ln, es_ln = _figures(ln, pnl, roots, kinks, shorts, spot)
    return Odds(pop, pop_ln, touch, touch_ln, ev, ev_ln, es, es_ln, tuple(roots.tolist()), float(cost), front,
                d.reason)


def _unavailable(front: date, cost: float, reason: str) -> Odds:
    nan = math.nan
    return Odds(nan, nan, MappingProxyType({}), MappingProxyType({}), nan, nan, nan, nan, (), cost, front, reason)


@dataclass(frozen=True, slots=True)
class ExpectedMove:
    """One expiry's expected move (index points; bands around the forward).

    Attributes:
        root, expiry, t (years), forward (points), atm_iv (vol).
        straddle: mid of the call + put at the strike nearest the forward (points, as quoted: discounted).
        straddle_move: 1 SD from the straddle: straddle / D x sqrt(pi/2) (the undiscounted ATM straddle is
            E|S_T - F| = SD x sqrt(2/pi) for a normal S_T; the raw straddle, ~0.8 SD, is not a SD).
        iv_move: 1 SD from the ATM IV: F x IV x sqrt(t).
        sd1_low/high, sd2_low/high: forward -/+ 1 and 2 x iv_move (straddle_move where no IV).
        reason: "" or why a figure is NaN.
    """

    root: Root
    expiry: date
    t: float
    forward: float
    atm_iv: float
    straddle: float
    straddle_move: float
    iv_move: float
    sd1_low: float
    sd1_high: float
    sd2_low: float
    sd2_high: float
    reason: str = ""


def _atm_straddle(civ: ChainIV, start: int, stop: int, forward: float) -> float:
    """Mid of call + put at the strike nearest ``forward`` that has both two-sided (NaN if none)."""
    c = civ.snapshot.columns
    strike, call = c["strike"][start:stop], c["is_call"][start:stop]
    mid = 0.5 * (c["bid"][start:stop] + c["ask"][start:stop])
    ok = np.isfinite(mid) & (c["bid"][start:stop] > 0)
    calls = dict(zip(strike[call & ok].tolist(), mid[call & ok].tolist(), strict=True))
    puts = dict(zip(strike[~call & ok].tolist(), mid[~call & ok].tolist(), strict=True))
    both = sorted(set(calls) & set(puts), key=lambda k: abs(k - forward))
    return calls[both[0]] + puts[both[0]] if both else math.nan


def expected_moves(*sources: VolSurface | ChainIV) -> list[ExpectedMove]:
    """Expected moves per expiry from a ChainIV (straddles; ATM IV from near-the-money mid IVs) and/or a
    surface (fitted ATM IV). Pass either or both, in any order; expiries follow the first source's order."""
    civ = next((s for s in sources if isinstance(s, ChainIV)), None)
    surface = next((s for s in sources if isinstance(s, VolSurface)), None)
    if civ is None and surface is None:
        raise TypeError("expected_moves: pass a ChainIV and/or a VolSurface")
    rows = {(f.root, f.expiry): f for f in civ.forwards} if civ is not None else {}
    keys = list(rows) if civ is not None else [(f.root, f.expiry) for f in surface.expiries]
    out = []
    for key in keys:
        fit = surface.by_expiry(*key) if surface is not None else None
        fw = rows.get(key)
        t, fwd, disc = (fw.t, fw.forward, fw.discount) if fw is not None else (fit.t, fit.forward, fit.discount)
        atm = fit.atm_iv if fit is not None and fit.fitted else _civ_atm_iv(civ, fw)
        straddle = _atm_straddle(civ, fw.start, fw.stop, fwd) if fw is not None else math.nan
        s_move = straddle / disc * STRADDLE_TO_SD
        iv_move = fwd * atm * math.sqrt(max(t, 0.0))
        band = iv_move if math.isfinite(iv_move) else s_move
        why = [w for w, bad in (("no ATM straddle (no quotes given, or no two-sided ATM call and put)",
                                 not math.isfinite(straddle)),
                                ("no ATM IV", not math.isfinite(atm)), ("expired", t <= 0)) if bad]
        out.append(ExpectedMove(key[0], key[1], t, fwd, atm, straddle, s_move, iv_move, fwd - band, fwd + band,
                                fwd - 2 * band, fwd + 2 * band, "; ".join(why)))
    return out


def _civ_atm_iv(civ: ChainIV | None, fw) -> float:
    """ATM IV from the mid IVs nearest the forward (linear in k at k = 0), when no fitted slice."""
    if civ is None or fw is None:
        return math.nan
    k, iv = civ.k[fw.start:fw.stop], civ.iv_mid[fw.start:fw.stop]
    ok = np.isfinite(iv) & np.isfinite(k)
    if ok.sum() < 2:
        return math.nan
    k, iv = k[ok], iv[ok]
    order = np.argsort(k)
    return float(np.interp(0.0, k[order], iv[order]))
