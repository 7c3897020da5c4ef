"""The strategy builder's worker job: everything the builder shows for its legs on one snapshot.

:func:`compute_builder` (worker thread, a pure function of its arguments) recognises the structure
(``spx_core.strategies.recognize``), looks every leg up in the snapshot (:class:`LegQuote`: prices,
IV, delta, or "not listed"/"flagged" with the reason), values it (``value_structure``: net price,
dollar greeks, max profit/loss, breakevens, margin), prices its payoff at expiry and at T+n days with
an IV shift (``payoff_grid``) and its odds under the fitted surface's risk-neutral density and the
lognormal figure (``structure_odds``).

Chain IVs are solved for every new snapshot; the surface (for T+n, the density and the odds) is
refitted on the surface panel's schedule (every ``REFIT_MARKET_SECONDS`` of market time or at once on
a ``REFIT_INDEX_MOVE``), warm-started from the last fit: a :class:`MarketCache` carries both between
jobs, so moving the T+n or IV-shift controls re-prices without refitting.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np

from app.models.builder_model import NOT_LISTED, LegQuote
from app.panels.surface_panel import REFIT_INDEX_MOVE, REFIT_MARKET_SECONDS
from spx_core.domain import ChainSnapshot, OptionContract, describe_flags
from spx_core.domain.contracts import ROOTS
from spx_core.strategies.structure import Leg, Structure

__all__ = ["BuilderResult", "BuilderView", "GRID_POINTS", "MarketCache", "compute_builder", "leg_quotes",
           "price_grid"]

GRID_POINTS = 401  # payoff grid (a 4-leg grid costs well under a millisecond)


@dataclass(frozen=True, slots=True)
class BuilderView:
    """The payoff chart's what-if controls.

    Attributes:
        days_ahead: the T+0 curve is priced this many calendar days after the snapshot (0 = now).
        iv_shift: parallel implied-vol shift of the T+0 curve, in vol points (+2.0 = every IV +2%).
    """

    days_ahead: float = 0.0
    iv_shift: float = 0.0


@dataclass(frozen=True, slots=True, eq=False)
class MarketCache:
    """Per underlying: the snapshot, its chain IVs, the surface and the snapshot it was fitted on."""

    snapshot: ChainSnapshot
    civ: Any  # spx_core.surface.ChainIV of ``snapshot``
    surface: Any  # spx_core.surface.VolSurface (None when the fit failed)
    fitted_on: ChainSnapshot


@dataclass(frozen=True, slots=True, eq=False)
class BuilderResult:
    """What the builder shows (built in the worker). Prices in index points, money in dollars per unit."""

    legs: tuple[Leg, ...]
    structure: Structure
    quotes: dict[OptionContract, LegQuote]
    value: Any  # spx_core.strategies.valuation.StructureValue
    odds: Any | None  # spx_core.strategies.probability.Odds (None when not computable; see ``odds_reason``)
    odds_reason: str
    curves: Any | None  # spx_core.strategies.payoff.PayoffCurves
    density: Any | None  # RiskNeutralDensity of the front expiry
    move: Any | None  # ExpectedMove of the front expiry
    spot: float
    front_days: float  # calendar days from the snapshot to the front leg's expiry
    view: BuilderView
    caches: dict[str, MarketCache] = field(default_factory=dict)
    seconds: float = 0.0


def contract_row(snapshot: ChainSnapshot, contract: OptionContract) -> int:
    """Row of ``contract`` in ``snapshot`` (-1 when not listed)."""
    c = snapshot.columns
    code = np.datetime64(contract.expiry, "D")
    root = ROOTS.index(contract.root)
    # canonical order: (expiry, root, strike, call before put); expiry is sorted, so bisect it first
    lo, hi = np.searchsorted(c["expiry"], code, "left"), np.searchsorted(c["expiry"], code, "right")
    if lo == hi:
        return -1
    rows = lo + np.flatnonzero((c["strike"][lo:hi] == contract.strike) & (c["is_call"][lo:hi] == contract.is_call)
                               & (c["root"][lo:hi] == root))
    return int(rows[0]) if len(rows) else -1


def leg_quotes(snapshot: ChainSnapshot, civ: Any, legs: tuple[Leg, ...]) -> dict[OptionContract, LegQuote]:
    """Each leg's quote, mid IV and delta (``civ``: the snapshot's ChainIV); "not listed" when absent."""
    out = {}
    for leg in legs:
        r = contract_row(snapshot, leg.contract)
        if r < 0:
            out[leg.contract] = NOT_LISTED
            continue
        bid, ask = float(snapshot.bid[r]), float(snapshot.ask[r])
        flags = describe_flags(int(snapshot.flags[r]))
        out[leg.contract] = LegQuote(bid, ask, 0.5 * (bid + ask), float(civ.iv_mid[r]), float(civ.delta[r]),
                                     f"flagged: {flags}" if flags else "")
    return out


def price_grid(structure: Structure, spot: float, sd: float, points: int = GRID_POINTS) -> np.ndarray:
    """Primary-underlying prices for the payoff: every strike, the spot and 2.5 standard deviations
    (``sd``, index points, at the front expiry) either side, with a margin."""
    kinks = structure.kinks()
    lo, hi = min(float(kinks.min()), spot - 2.5 * sd), max(float(kinks.max()), spot + 2.5 * sd)
    pad = 0.15 * (hi - lo) + 1.0
    return np.linspace(max(lo - pad, 0.0), hi + pad, points)


def _cache_for(snapshot: ChainSnapshot, old: MarketCache | None) -> MarketCache:
    """Chain IVs of ``snapshot``; the surface refitted when the market moved enough since ``old``'s fit."""
    from spx_core.surface import chain_iv, fit_surface  # heavy: off the start-up path

    if old is not None and old.snapshot is snapshot:
        return old
    civ = chain_iv(snapshot)
    if old is not None and old.surface is not None:
        fitted = old.fitted_on
        aged = (snapshot.time_ns - fitted.time_ns) / 1e9 >= REFIT_MARKET_SECONDS
        moved = abs(snapshot.underlying_price / fitted.underlying_price - 1.0) >= REFIT_INDEX_MOVE
        if not (aged or moved):
            return MarketCache(snapshot, civ, old.surface, fitted)
    surface = fit_surface(civ, previous=old.surface if old is not None else None)
    return MarketCache(snapshot, civ, surface, snapshot)


def compute_builder(snapshots: dict[str, ChainSnapshot], legs: tuple[Leg, ...], view: BuilderView,
                    caches: dict[str, MarketCache]) -> BuilderResult:
    """Worker-thread job: the builder's result for ``legs`` on the latest snapshot per underlying."""
    from spx_core.strategies.recognize import recognize

    t0 = time.perf_counter()
    structure = recognize(legs)
    new_caches = {u: _cache_for(s, caches.get(u)) for u, s in snapshots.items()}
    quotes: dict[OptionContract, LegQuote] = {}
    for leg in legs:
        cache = new_caches.get(leg.underlying)
        quotes.update(leg_quotes(cache.snapshot, cache.civ, (leg,)) if cache else {leg.contract: NOT_LISTED})
    primary = new_caches.get(structure.underlying)
    spot = primary.snapshot.underlying_price if primary else math.nan
    now = primary.snapshot.time if primary else None
    front_days = (structure.front_expiry - now.date()).days if now else math.nan
    value, odds, odds_reason, curves, density, move = _value(structure, new_caches, view, spot, now)
    return BuilderResult(tuple(legs), structure, quotes, value, odds, odds_reason, curves, density, move, spot,
                         front_days, view, new_caches, time.perf_counter() - t0)


def _value(structure: Structure, caches: dict[str, MarketCache], view: BuilderView, spot: float,
           now: Any) -> tuple:
    """value_structure, structure_odds, payoff_grid, the front expiry's density and expected move."""
    raise NotImplementedError  # filled in once the valuation, payoff and probability modules land
