"""A structure against a market: net prices, dollar greeks, width, risk, breakevens and margin.

``value_structure(structure, market)`` looks every leg up in its underlying's snapshot at once
(:func:`~spx_core.strategies.market.locate`), then adds legs x signed ratio x multiplier. Net prices are in
points per unit (dollars / 100), **positive = credit** (what opening the structure as written receives):

- ``natural``: sell every short leg at its bid, buy every long leg at its ask (what crossing pays);
- ``bid`` / ``ask``: the ends of the package's market in that sign: ``bid`` = ``natural`` (the least
  credit / most debit), ``ask`` = short legs at their asks and long legs at their bids; ``bid <= mid <= ask``;
- ``mid``: every leg at its mid.

A leg that is not listed, has no bid or ask, or carries a :class:`QuoteFlag` (unless ``allow_flags``
admits it) makes every net price NaN and ``reason`` names the leg and what is wrong; nothing is filled in.

Greeks are ChainIV's mid-vol greeks (:mod:`spx_core.surface.chain_iv`: delta per point, gamma per point,
vega per vol point, theta per calendar day, all in the leg's own index points per contract), summed
with ratio x multiplier into dollars:
    delta_usd       dollars per 1 point of the primary underlying: sum ratio*mult*delta*leg_scale (a SPY
                    leg moves 0.1 SPY points per SPX point, so 1 SPX call vs 10 SPY calls nets near zero)
    gamma_usd_1pct  dollars of P&L from gamma for a 1% move of every underlying: sum ratio*mult*gamma*(0.01*S)^2/2
    vega_usd_volpt  dollars per vol point (0.01 of vol)
    theta_usd_day   dollars per calendar day
A leg whose IV did not solve takes its greeks from the market's fitted surface when there is one (said in
``reason``); with no surface the greeks are NaN.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from spx_core.domain.quotes import QuoteFlag, describe_flags
from spx_core.strategies.expiry_profile import expiry_profile
from spx_core.strategies.margin import margin_requirement
from spx_core.strategies.market import Market, MarketChain, MarketError, locate
from spx_core.strategies.recognize import structure_width
from spx_core.strategies.structure import Structure

__all__ = ["Market", "MarketChain", "MarketError", "PriceBasis", "StructureValue", "value_structure"]


class PriceBasis(StrEnum):
    """Which per-leg price the cost behind max profit/loss, return on risk and margin uses."""

    MID = "mid"
    NATURAL = "natural"


@dataclass(frozen=True, slots=True)
class StructureValue:
    """A structure's figures against one market (prices per unit; see the module docstring for signs).

    Attributes:
        bid, ask, mid, natural: net prices (points per unit, dollars / 100; positive = credit).
        credit: True when the structure opens for a credit at mid.
        delta_usd, gamma_usd_1pct, vega_usd_volpt, theta_usd_day: dollar greeks (module docstring).
        width: the width a trader quotes (primary-underlying points; NaN when the kind has none).
        max_profit, max_loss: dollars per unit at expiry (``math.inf`` = unlimited; max_loss positive = a loss).
        breakevens: primary-underlying prices where the expiry P&L crosses zero, ascending.
        return_on_risk: max_profit / max_loss (NaN when either is unbounded or unknown).
        margin: Reg-T dollars per unit (:func:`~spx_core.strategies.margin.margin_requirement`).
        reason: "" or why figures are NaN (naming the leg and the quote problem).
        approximated: "" or what the risk figures assume (multi-expiry, across underlyings).
        basis: the per-leg price behind max profit/loss, return on risk and margin.
        leg_bid, leg_ask, leg_mid: per leg, points per contract (NaN where unusable).
        leg_price: per leg, the price ``basis`` picked (the ask of long legs and bid of short ones at natural).
    """

    bid: float
    ask: float
    mid: float
    natural: float
    credit: bool
    delta_usd: float
    gamma_usd_1pct: float
    vega_usd_volpt: float
    theta_usd_day: float
    width: float
    max_profit: float
    max_loss: float
    breakevens: tuple[float, ...]
    return_on_risk: float
    margin: float
    reason: str = ""
    approximated: str = ""
    basis: PriceBasis = PriceBasis.MID
    leg_bid: tuple[float, ...] = ()
    leg_ask: tuple[float, ...] = ()
    leg_mid: tuple[float, ...] = ()
    leg_price: tuple[float, ...] = ()

    @property
    def max_loss_text(self) -> str:
        return _money_text(self.max_loss)

    @property
    def max_profit_text(self) -> str:
        return _money_text(self.max_profit)


def _money_text(x: float) -> str:
    if math.isinf(x):
        return "unlimited"
    return "n/a" if math.isnan(x) else f"${x:,.2f}"


@dataclass(frozen=True, slots=True)
class _Legs:
    """Per-leg market data gathered from each leg's own chain."""

    bid: np.ndarray
    ask: np.ndarray
    delta: np.ndarray
    gamma: np.ndarray
    vega: np.ndarray
    theta: np.ndarray
    spot: np.ndarray
    price_problems: tuple[str, ...]
    greek_notes: tuple[str, ...]


def value_structure(structure: Structure, market: Market, *, basis: PriceBasis | str = PriceBasis.MID,
                    allow_flags: QuoteFlag | int = QuoteFlag.NONE) -> StructureValue:
    """Price, greeks, risk and margin of one unit of ``structure`` in ``market``.

    ``allow_flags``: quote flags tolerated in a leg (e.g. ``QuoteFlag.WIDE``); any other flag makes the
    net prices NaN. Raises :class:`MarketError` when the market lacks an underlying the structure uses.
    """
    basis = PriceBasis(basis)
    legs = _gather(structure, market, QuoteFlag(int(allow_flags)))
    ratio = structure.ratios.astype(np.float64)
    mult = np.array([leg.contract.multiplier for leg in structure.legs], dtype=np.float64)
    weight = ratio * mult / mult[0]  # points of the first leg's multiplier: dollars / 100 for SPX and SPY
    long = ratio > 0
    mid_leg = 0.5 * (legs.bid + legs.ask)
    natural = -float(np.sum(weight * np.where(long, legs.ask, legs.bid)))
    far = -float(np.sum(weight * np.where(long, legs.bid, legs.ask)))
    mid = -float(np.sum(weight * mid_leg))
    leg_price = mid_leg if basis is PriceBasis.MID else np.where(long, legs.ask, legs.bid)
    w_usd = ratio * mult
    greeks = (float(np.sum(w_usd * legs.delta * structure.leg_scale())),
              float(np.sum(w_usd * legs.gamma * 0.5 * (0.01 * legs.spot) ** 2)),
              float(np.sum(w_usd * legs.vega)), float(np.sum(w_usd * legs.theta)))
    credit_usd = -float(np.sum(w_usd * leg_price))
    max_profit, max_loss, breakevens, approximated = _risk(structure, credit_usd)
    ror = max_profit / max_loss if math.isfinite(max_profit) and math.isfinite(max_loss) and max_loss > 0 \
        else math.nan
    primary = market[structure.underlying].snapshot.underlying_price
    margin = margin_requirement(structure, tuple(leg_price.tolist()), primary)
    return StructureValue(
        bid=natural, ask=far, mid=mid, natural=natural, credit=bool(mid > 0), delta_usd=greeks[0],
        gamma_usd_1pct=greeks[1], vega_usd_volpt=greeks[2], theta_usd_day=greeks[3],
        width=structure_width(structure), max_profit=max_profit, max_loss=max_loss, breakevens=breakevens,
        return_on_risk=ror, margin=margin, reason="; ".join(legs.price_problems + legs.greek_notes),
        approximated=approximated, basis=basis, leg_bid=tuple(legs.bid.tolist()), leg_ask=tuple(legs.ask.tolist()),
        leg_mid=tuple(mid_leg.tolist()), leg_price=tuple(leg_price.tolist()))


def _gather(structure: Structure, market: Market, allow: QuoteFlag) -> _Legs:
    """Per-leg bid/ask (NaN where unusable), mid-vol greeks and underlying level, with what went wrong."""
    n = len(structure.legs)
    out = {k: np.full(n, np.nan) for k in ("bid", "ask", "delta", "gamma", "vega", "theta", "spot")}
    problems: list[str] = []
    notes: list[str] = []
    for underlying in structure.underlyings:
        chain = market[underlying]
        idx = [i for i, leg in enumerate(structure.legs) if leg.underlying == underlying]
        rows = locate(chain.snapshot, [structure.legs[i].contract for i in idx])
        for i, row in zip(idx, rows.tolist(), strict=True):
            problem = _leg_problem(chain, row, allow)
            if problem:
                problems.append(f"leg {structure.legs[i]}: {problem}")
            if row < 0:
                continue
            if not problem:
                out["bid"][i] = chain.snapshot.columns["bid"][row]
                out["ask"][i] = chain.snapshot.columns["ask"][row]
            greeks, note = _leg_greeks(chain, row)
            for name, value in zip(("delta", "gamma", "vega", "theta"), greeks, strict=True):
                out[name][i] = value
            if note:
                notes.append(f"leg {structure.legs[i]}: {note}")
            spot = chain.snapshot.underlying_price
            out["spot"][i] = spot if math.isfinite(spot) else chain.civ.forward[row] * chain.civ.discount[row]
    if problems:  # one bad leg spoils every net price; keep the legs' own quotes out of them entirely
        out["bid"][:] = np.nan
        out["ask"][:] = np.nan
    return _Legs(out["bid"], out["ask"], out["delta"], out["gamma"], out["vega"], out["theta"], out["spot"],
                 tuple(problems), tuple(notes))


def _leg_problem(chain: MarketChain, row: int, allow: QuoteFlag) -> str:
    if row < 0:
        return f"not listed in the {chain.snapshot.underlying} snapshot of {chain.snapshot.time:%Y-%m-%d %H:%M:%S}"
    c = chain.snapshot.columns
    flags = int(c["flags"][row]) & ~int(allow)
    if flags:
        return f"quote flagged {describe_flags(flags)} (bid {c['bid'][row]:g}, ask {c['ask'][row]:g})"
    missing = [side for side in ("bid", "ask") if not math.isfinite(c[side][row])]
    return f"no {' or '.join(missing)}" if missing else ""


def _leg_greeks(chain: MarketChain, row: int) -> tuple[tuple[float, ...], str]:
    civ = chain.civ
    greeks = (civ.delta[row], civ.gamma[row], civ.vega[row], civ.theta[row])
    if all(math.isfinite(g) for g in greeks):
        return tuple(float(g) for g in greeks), ""
    why = f"no mid IV ({civ.reason_name(row)})"
    if chain.surface is None:
        return tuple(math.nan for _ in greeks), f"{why}, greeks NaN (no fitted surface)"
    # The surface layer loads scipy: import it only when a leg actually needs surface greeks.
    from spx_core.surface.chain_iv import greeks_at

    vol = chain.surface.iv(k=np.array([civ.k[row]]), t=np.array([civ.t[row]]))
    g = greeks_at(civ.forward[row:row + 1], chain.snapshot.columns["strike"][row:row + 1], civ.t[row:row + 1],
                  np.asarray(vol, dtype=np.float64), civ.discount[row:row + 1],
                  chain.snapshot.columns["is_call"][row:row + 1])
    return tuple(float(x[0]) for x in g), f"{why}, greeks from the fitted surface"


def _risk(structure: Structure, credit_usd: float) -> tuple[float, float, tuple[float, ...], str]:
    """(max profit, max loss, breakevens, what is approximated) at expiry."""
    multi_expiry = len(structure.expiries) > 1
    if not multi_expiry:
        profile = expiry_profile(structure, credit_usd)
        note = ""
        if len(structure.underlyings) > 1:
            note = ("the other underlyings are taken to settle at their PRICE_SCALE share of the primary "
                    "(SPY = SPX/10: tracking error and dividends ignored; SPY calls are American, early "
                    "assignment ignored)")
        return profile.max_profit, profile.max_loss, profile.breakevens, note
    front = structure.front_expiry
    if all(leg.is_long for leg in structure.legs if leg.contract.expiry > front):
        # Later legs long: valued at intrinsic at the front expiry they are worth at least that (calls;
        # a deep in-the-money European put can sit slightly below), so this max loss is the debit for a
        # calendar and debit plus the uncovered strike distance for a diagonal.
        profile = expiry_profile(structure, credit_usd)
        return math.nan, profile.max_loss, (), (
            "two expiries: max loss values the later legs at intrinsic at the front expiry (exact for a debit "
            "calendar: the debit); max profit and breakevens need the surface (payoff.front_expiry_value)")
    return math.nan, math.nan, (), ("two expiries with a later leg short: max profit, max loss and breakevens "
                                    "need the surface (payoff.front_expiry_value)")
