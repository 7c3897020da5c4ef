"""How much of each limit the book uses now (the limit gauges, the alerts at 80% / 100%, ``spx-data risk``).

:func:`limit_usage` reads the same figures :class:`~spx_core.risk.limits.RiskLimits` holds an order to
(:func:`~spx_core.risk.limits.book_figures` on the current book, no order added), one :class:`LimitUse` per
limit the profile sets, in the profile's field order. Units are the profile's (see
:mod:`spx_core.risk.profiles`). Figures that only exist for an order are read off the book as it is:

- per-trade delta / vega (``max_trade_delta``, ``max_trade_vega``): the largest open trade's |greek|;
- position size (``max_position_size_pct``): the largest open trade's dollars at risk (max loss at expiry for
  its open units after the credit received, or the premium paid if larger) as % of net liquidation;
- new trades today, stops today: the counts so far (the stop-loss day is "1 of 1" once a stop was taken).

``min_entry_dte`` bounds entries, not the book, and ``concentration_min_positions`` is a threshold, not a
limit: neither has a use. A figure that cannot be computed (no net liquidation, a leg without greeks, no
chain for a held contract) is NaN, with ``pct`` NaN: shown as unknown, never as zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from spx_core.domain.contracts import OptionContract
from spx_core.execution.broker import MarketView
from spx_core.risk.limits import BookFigures, PortfolioState, book_figures, contract_greeks, view_market
from spx_core.risk.profiles import LimitProfile
from spx_core.strategies.expiry_profile import expiry_profile
from spx_core.strategies.structure import Structure, underlying_of

__all__ = ["GREEK_LIMITS", "LimitUse", "limit_usage", "needs_greeks", "usage_greeks"]

#: the limits whose use needs the held contracts' greeks (an IV solve of their chains)
GREEK_LIMITS = ("max_trade_delta", "max_trade_vega", "max_delta", "max_gamma", "max_vega", "max_theta")

#: field -> (label, unit)
_LABELS: dict[str, tuple[str, str]] = {
    "max_trade_delta": ("largest trade delta", "$"),
    "max_trade_vega": ("largest trade vega", "$"),
    "max_delta": ("portfolio delta", "$"),
    "max_gamma": ("portfolio gamma (1% move)", "$"),
    "max_vega": ("portfolio vega", "$"),
    "max_theta": ("portfolio theta", "$"),
    "max_expiry_concentration_pct": ("largest expiry share of risk", "%"),
    "max_strike_concentration_pct": ("largest strike share of risk", "%"),
    "max_open_positions": ("open positions", ""),
    "max_open_trades": ("open trades", ""),
    "max_new_trades_per_day": ("trades opened today", ""),
    "max_daily_loss": ("day loss", "$"),
    "max_daily_loss_pct": ("day loss of net liq", "%"),
    "max_daily_drawdown_pct": ("drawdown from the day high", "%"),
    "max_leverage": ("leverage (gross notional / net liq)", "x"),
    "max_margin_utilisation_pct": ("margin of net liq", "%"),
    "max_position_size_pct": ("largest trade at risk of net liq", "%"),
    "stop_after_stop_loss": ("stop losses today", ""),
}


@dataclass(frozen=True, slots=True)
class LimitUse:
    """One limit's use now.

    Attributes:
        name: the :class:`LimitProfile` field ("max_delta").
        label: what it measures, for a person ("portfolio delta").
        value: the current figure in ``unit`` (signed for greeks; NaN: unknown).
        limit: the profile's value (for ``stop_after_stop_loss``: 1, the stop that ends the day).
        pct: ``|value| / limit * 100`` (NaN when unknown).
        unit: "$", "%", "x" or "" (a count).
    """

    name: str
    label: str
    value: float
    limit: float
    pct: float
    unit: str


def needs_greeks(profile: LimitProfile) -> bool:
    """Whether ``profile``'s use needs greeks (else no chain is solved for it)."""
    return any(getattr(profile, name) is not None for name in GREEK_LIMITS)


def usage_greeks(contracts: list[OptionContract], market: MarketView,
                 cache: dict[str, tuple[str, object]] | None = None) -> dict[OptionContract, tuple[float, ...]]:
    """Dollar greeks per contract held long (the limits' :func:`contract_greeks`) on ``market``'s chains.

    Raises:
        ValueError: a contract's chain is missing or does not list it.
    """
    if not contracts:
        return {}
    return contract_greeks(contracts, view_market(market, {underlying_of(c.root) for c in contracts}, cache))


def limit_usage(profile: LimitProfile, state: PortfolioState, market: MarketView, *,
                cache: dict[str, tuple[str, object]] | None = None,
                greeks: dict[OptionContract, tuple[float, ...]] | None = None) -> list[LimitUse]:
    """One :class:`LimitUse` per limit ``profile`` sets, on the book ``state`` holds now, valued on ``market``'s
    current chains (``cache``: the IV solves per snapshot, shared with the limits hook).

    ``greeks``: per-contract dollar greeks to use instead of solving the chains (a caller re-valuing at its own
    pace); without them the chains are solved only when the profile sets a greek limit (:data:`GREEK_LIMITS`).
    """
    figures, trade_greeks = _figures(state, market, cache, greeks, needs_greeks(profile))
    net_liq = state.net_liq
    day_pnl = state.day_pnl
    loss = max(0.0, -day_pnl) if math.isfinite(day_pnl) else math.nan
    drawdown = max(0.0, max(state.day_pnl_high, 0.0) - day_pnl) if math.isfinite(day_pnl) else math.nan
    values = {
        "max_trade_delta": _largest(g[0] for g in trade_greeks),
        "max_trade_vega": _largest(g[1] for g in trade_greeks),
        "max_open_trades": float(len(state.trades)),
        "max_new_trades_per_day": float(state.trades_opened_today),
        "max_daily_loss": loss,
        "max_daily_loss_pct": _pct_of(loss, net_liq),
        "max_daily_drawdown_pct": _pct_of(drawdown, net_liq),
        "max_margin_utilisation_pct": _pct_of(state.margin, net_liq),
        "max_position_size_pct": _pct_of(_largest(_trade_risk(t) for t in state.trades), net_liq),
        "stop_after_stop_loss": float(state.stops_today),
    }
    if figures is None:  # the book could not be valued: every book figure is unknown
        for name in ("max_delta", "max_gamma", "max_vega", "max_theta", "max_expiry_concentration_pct",
                     "max_strike_concentration_pct", "max_leverage"):
            values[name] = math.nan
        values["max_open_positions"] = float(sum(1 for q in state.held().values() if q))
    else:
        unknown = bool(figures.unknown)
        for name in ("delta", "gamma", "vega", "theta"):
            values[f"max_{name}"] = math.nan if unknown else getattr(figures, name)
        values["max_expiry_concentration_pct"] = max(figures.expiry_shares.values(), default=0.0)
        values["max_strike_concentration_pct"] = max(figures.strike_shares.values(), default=0.0)
        values["max_open_positions"] = float(figures.positions)
        values["max_leverage"] = figures.gross_notional / net_liq if net_liq > 0 else math.nan
    out = []
    for f in fields(LimitProfile):
        if f.name not in _LABELS:
            continue
        limit = getattr(profile, f.name)
        if limit is None or limit is False:
            continue
        limit = 1.0 if limit is True else float(limit)
        value = float(values[f.name])
        pct = abs(value) / limit * 100.0 if math.isfinite(value) and limit > 0 else (
            math.nan if not math.isfinite(value) else (0.0 if value == 0 else math.inf))
        label, unit = _LABELS[f.name]
        out.append(LimitUse(f.name, label, value, limit, pct, unit))
    return out


def _figures(state: PortfolioState, market: MarketView, cache: dict | None, greeks: dict | None, solve: bool
             ) -> tuple[BookFigures | None, list[tuple[float, float]]]:
    """The book's figures and each open trade's (delta, vega) in dollars; (None, NaNs) when it cannot be valued."""
    held = state.held()
    contracts = sorted((c for c, q in held.items() if q), key=str)
    if not contracts:
        return book_figures(held, {}, {}), [(0.0, 0.0) for _ in state.trades]
    unknown = [(math.nan, math.nan) for _ in state.trades]
    spots: dict[str, float] = {}
    for u in {underlying_of(c.root) for c in contracts}:
        snap = market.snapshot(u)
        if snap is None:  # a held contract's chain is missing: unknown, not zero
            return None, unknown
        spots[u] = float(snap.underlying_price)
    if greeks is None or any(c not in greeks for c in contracts):
        if not solve:  # no greek limit to show: counts, concentration and notional need no IV solve
            greeks = dict.fromkeys(contracts, (math.nan,) * 4)
        else:
            try:
                greeks = usage_greeks(contracts, market, cache)
            except ValueError:  # a held contract the chain does not list: unknown, not zero
                return None, unknown
    per_trade = []
    for trade in state.trades:
        delta = vega = 0.0
        for leg in trade.legs:
            q = leg.ratio * trade.quantity
            if q:
                g = greeks[leg.contract]
                delta, vega = delta + q * g[0], vega + q * g[2]
        per_trade.append((delta, vega))
    return book_figures(held, greeks, spots), per_trade


def _trade_risk(trade: object) -> float:
    """Dollars at risk in an open trade's open units: max loss at expiry after the credit, or the premium paid."""
    quantity = int(getattr(trade, "quantity", 0))
    price = float(getattr(trade, "open_price", math.nan))
    if quantity == 0:
        return 0.0
    legs = trade.legs  # type: ignore[attr-defined]
    mult = legs[0].contract.multiplier
    credit = -trade.side.sign * price * mult  # type: ignore[attr-defined]
    loss = expiry_profile(Structure(tuple(legs)), credit).max_loss
    return max(loss, abs(price) * mult) * quantity if math.isfinite(price) else math.nan


def _largest(values) -> float:
    """The largest magnitude (0 for none; NaN if any is unknown)."""
    best = 0.0
    for v in values:
        if not math.isfinite(v) and not math.isinf(v):
            return math.nan
        best = max(best, abs(v))
    return best


def _pct_of(figure: float, net_liq: float) -> float:
    return 100.0 * figure / net_liq if net_liq > 0 and math.isfinite(figure) else math.nan
