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

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from app.models.builder_model import NOT_LISTED, LegQuote
from app.panels.surface_panel import refit_due
from app.shared_fits import SharedFits
from spx_core.domain import ET, ChainSnapshot, OptionContract, describe_flags
from spx_core.strategies.structure import Leg, Structure, underlying_of

if TYPE_CHECKING:  # the valuation core imports the surface (scipy): loaded in the worker, not at start-up
    from spx_core.strategies.market import Market, MarketChain
    from spx_core.strategies.payoff import PayoffCurves
    from spx_core.strategies.probability import ExpectedMove, Odds
    from spx_core.strategies.valuation import StructureValue
    from spx_core.surface.density import RiskNeutralDensity

__all__ = ["BuilderResult", "BuilderView", "GRID_POINTS", "MarketCache", "compute_builder", "leg_quotes",
           "market_caches", "price_grid"]

log = logging.getLogger(__name__)

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
    """One underlying's market (snapshot, chain IVs, surface) and the snapshot the surface was fitted on
    (for an American chain: the European chain its discount factors came from)."""

    chain: MarketChain
    fitted_on: ChainSnapshot


@dataclass(frozen=True, slots=True, eq=False)
class BuilderResult:
    """What the builder shows (built in the worker). Prices in index points, money in dollars per unit."""

    legs: tuple[Leg, ...]
    structure: Structure
    quotes: dict[OptionContract, LegQuote]
    value: StructureValue | None  # None when it cannot be valued (``value_reason`` says why)
    value_reason: str
    odds: Odds | None  # None when not computable (``odds_reason`` says why)
    odds_reason: str  # "" or why odds, payoff or density are missing or partial
    curves: PayoffCurves | None
    density: RiskNeutralDensity | None  # of the front expiry
    move: ExpectedMove | None  # of the front expiry
    spot: float
    front_days: float  # calendar days from the snapshot to the front leg's expiry
    view: BuilderView
    caches: dict[str, MarketCache] = field(default_factory=dict)
    seconds: float = 0.0


def leg_quotes(chain: MarketChain, legs: tuple[Leg, ...]) -> dict[OptionContract, LegQuote]:
    """Each leg's quote, mid IV and delta in ``chain`` (legs of that underlying); "not listed" when absent."""
    from spx_core.strategies.market import locate

    snapshot, civ = chain.snapshot, chain.civ
    out = {}
    for leg, r in zip(legs, locate(snapshot, [leg.contract for leg in legs]).tolist(), strict=True):
        if r < 0:
            out[leg.contract] = NOT_LISTED
            continue
        bid, ask = float(snapshot.bid[r]), float(snapshot.ask[r])
        flags = describe_flags(int(snapshot.flags[r]))
        out[leg.contract] = LegQuote(bid, ask, 0.5 * (bid + ask), float(civ.iv_mid[r]), float(civ.delta[r]),
                                     f"flagged: {flags}" if flags else "")
    return out


def price_grid(structure: Structure, spot: float, sd: float, points: int = GRID_POINTS) -> np.ndarray:
    """Primary-underlying prices for the payoff: every strike, the spot and 2 standard deviations (``sd``,
    index points, at the front expiry) either side, with a margin (beyond that a defined-risk payoff is
    flat and the density is near zero: wider only shrinks the part a trader reads)."""
    kinks = structure.kinks()
    lo, hi = min(float(kinks.min()), spot - 2.0 * sd), max(float(kinks.max()), spot + 2.0 * sd)
    pad = 0.08 * (hi - lo) + 1.0
    return np.linspace(max(lo - pad, 0.0), hi + pad, points)


def _american_cache(snapshot: ChainSnapshot, old: MarketCache | None, reference: ChainSnapshot | None,
                    legs: tuple[Leg, ...]) -> MarketCache:
    """An American chain (SPY): IVs on the discount factor of the European ``reference`` chain (SPX parity)
    at the legs' front expiry, no surface (payoff re-prices its legs at their own mid IV)."""
    from spx_core.domain import default_calendar
    from spx_core.strategies.market import MarketChain
    from spx_core.surface.chain_iv import american_forward_config, chain_iv

    if old is not None and old.chain.snapshot is snapshot and old.fitted_on is reference:
        return old
    config = None
    if reference is not None:
        front = min((leg.contract for leg in legs if leg.underlying == snapshot.underlying), key=lambda c: c.expiry)
        config = american_forward_config(reference, default_calendar().time_to_expiry(
            snapshot.time, front.expiry, front.settlement))
    return MarketCache(MarketChain(snapshot, chain_iv(snapshot, forward_config=config), None), reference)


def _cache_for(snapshot: ChainSnapshot, old: MarketCache | None, fits: SharedFits) -> MarketCache:
    """Chain IVs of ``snapshot``; the surface refitted (through the window's shared fits) when the market
    moved enough since ``old``'s fit."""
    from spx_core.strategies.market import MarketChain
    from spx_core.surface import chain_iv

    if old is not None and old.chain.snapshot is snapshot:
        return old
    if old is not None and old.chain.surface is not None and not refit_due(old.fitted_on, snapshot):
        return MarketCache(MarketChain(snapshot, chain_iv(snapshot), old.chain.surface), old.fitted_on)
    shared = fits.memo().fit(snapshot)
    return MarketCache(MarketChain(snapshot, shared.civ, shared.surface), snapshot)


def market_caches(snapshots: dict[str, ChainSnapshot], legs: tuple[Leg, ...],
                  caches: dict[str, MarketCache], fits: SharedFits) -> dict[str, MarketCache]:
    """The market (one :class:`MarketCache` per underlying) that values ``legs`` on the latest ``snapshots``.

    Only the underlyings the legs use are solved (nothing is fitted for the others). A European chain's IVs
    are solved for each new snapshot and its surface refitted through the window's shared ``fits`` when the
    market moved enough (``refit_due``); an American chain (SPY) takes its discount factors from the first
    European chain in ``snapshots``. ``caches`` (the previous call's result) is reused where nothing changed;
    the caller keeps the returned dict for its next call. Worker thread: the builder, the ticket and the
    positions' greeks all value legs this way, so they agree on one market.
    ``Market({u: c.chain for u, c in result.items()})`` is what the valuation core takes."""
    from spx_core.surface.chain_iv import AMERICAN_ROOTS

    american = {underlying_of(root) for root in AMERICAN_ROOTS}
    used = {leg.underlying for leg in legs} & set(snapshots)
    european = next((s for u, s in snapshots.items() if u not in american), None)
    return {u: _american_cache(snapshots[u], caches.get(u), european, legs) if u in american
            else _cache_for(snapshots[u], caches.get(u), fits) for u in used}


def compute_builder(snapshots: dict[str, ChainSnapshot], legs: tuple[Leg, ...], view: BuilderView,
                    caches: dict[str, MarketCache], fits: SharedFits) -> BuilderResult:
    """Worker-thread job: the builder's result for ``legs`` on the latest snapshot per underlying."""
    from spx_core.strategies.market import Market, MarketError
    from spx_core.strategies.recognize import recognize
    from spx_core.strategies.valuation import value_structure

    t0 = time.perf_counter()
    structure = recognize(legs)
    new_caches = market_caches(snapshots, legs, caches, fits)
    market = Market({u: c.chain for u, c in new_caches.items()})
    quotes: dict[OptionContract, LegQuote] = {}
    for leg in legs:
        quotes.update(leg_quotes(market[leg.underlying], (leg,)) if leg.underlying in market
                      else {leg.contract: NOT_LISTED})
    if structure.underlying not in market:
        have = ", ".join(market.chains) or "none"
        reason = f"no {structure.underlying} chain in the feed (have: {have}); choose a source that lists it"
        return BuilderResult(tuple(legs), structure, quotes, None, reason, None, "", None, None, None, math.nan,
                             math.nan, view, new_caches, time.perf_counter() - t0)
    snapshot = market[structure.underlying].snapshot
    front_days = float((structure.front_expiry - snapshot.time.astimezone(ET).date()).days)
    try:
        value, reason = value_structure(structure, market), ""
    except MarketError as exc:  # a leg on an underlying the feed does not carry
        value, reason = None, str(exc)
    odds, odds_reason, curves, density, move = _odds_and_payoff(structure, market, view)
    return BuilderResult(tuple(legs), structure, quotes, value, reason, odds, odds_reason, curves, density, move,
                         snapshot.underlying_price, front_days, view, new_caches, time.perf_counter() - t0)


def _front_fit(structure: Structure, surface: Any) -> Any:
    """The surface's slice of the structure's front expiry (its primary-underlying leg's root)."""
    front = next((leg.contract for leg in structure.legs
                  if leg.contract.expiry == structure.front_expiry and leg.underlying == structure.underlying), None)
    if front is None:  # the front expiry is another underlying's (no slice of this surface)
        return None
    return next((f for f in surface.expiries if (f.root, f.expiry) == (front.root, front.expiry)), None)


def _guarded(what: str, fn: Callable[..., Any], *args: Any) -> tuple[Any, str]:
    """``(fn(*args), "")``, or ``(None, reason)`` when it raises: a failure in the odds or the payoff
    is logged and said, and leaves the structure's prices standing."""
    try:
        return fn(*args), ""
    except Exception as exc:
        log.exception("builder: %s failed", what)
        return None, f"{what}: {type(exc).__name__}: {exc}"


def _odds_and_payoff(structure: Structure, market: Market, view: BuilderView) -> tuple:
    """(odds, odds reason, payoff curves, front density, front expected move)."""
    chain = market[structure.underlying]
    surface = chain.surface
    fit = _front_fit(structure, surface) if surface is not None else None
    fitted = fit if fit is not None and fit.fitted else None
    curves, payoff_reason = _guarded("payoff", _payoff, structure, market, view, fitted)
    if fit is None:
        why = "no fitted surface" if surface is None else f"no fitted smile for {structure.front_expiry}"
        return None, "; ".join(r for r in (payoff_reason, f"odds: {why}") if r), curves, None, None
    # an unfitted slice (e.g. 0DTE minutes before the close) has no density, but the odds still give the
    # lognormal figures at its market ATM IV and say why the surface's are missing
    density, _ = _guarded("density", _density, surface, fit) if fitted is not None else (None, "")
    cost = curves.cost if curves is not None else None
    odds_move, odds_reason = _guarded("odds", _odds, structure, market, surface, fit, cost, density)
    odds, move = odds_move if odds_move is not None else (None, None)
    if odds is not None and odds.reason:
        odds_reason = f"odds: {odds.reason}"
    reason = "; ".join(r for r in (payoff_reason, odds_reason) if r)
    return odds, reason, curves, density, move


def _payoff(structure: Structure, market: Market, view: BuilderView, fit: Any) -> Any:
    from spx_core.strategies.payoff import payoff_grid

    snapshot = market[structure.underlying].snapshot
    spot = snapshot.underlying_price
    sd = spot * fit.atm_iv * math.sqrt(max(fit.t, 1.0 / 365.0)) if fit is not None else 0.05 * spot
    at = snapshot.time + timedelta(days=view.days_ahead)
    return payoff_grid(structure, market, price_grid(structure, spot, sd), at=at, iv_shift=view.iv_shift / 100.0)


def _density(surface: Any, fit: Any) -> Any:
    from spx_core.surface.density import expiry_density

    density = expiry_density(surface, fit)
    return density if density.ok else None


def _odds(structure: Structure, market: Market, surface: Any, fit: Any, cost: float | None,
          density: Any) -> tuple[Any, Any]:
    from spx_core.strategies.probability import expected_moves, structure_odds

    move = next((m for m in expected_moves(surface) if (m.root, m.expiry) == (fit.root, fit.expiry)), None)
    return structure_odds(structure, market, cost=cost, density=density), move
