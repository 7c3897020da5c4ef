"""Portfolio limits on the book **after** the proposed order: the pre-trade gate's issue-10 hook.

``RiskLimits(profile, portfolio=...)`` is called by :class:`~spx_core.execution.gate.PreTradeGate` as
``limits(request, market)``. It reads the current book from ``portfolio()`` (a :class:`PortfolioState`), adds
the order's legs, values every contract held with :func:`~spx_core.strategies.valuation.value_structure` on the
market's current chains, and returns one :class:`CheckFailure` per breached limit, worded
``"<limit> <value>: post-trade <figure>"`` (``check`` = "<limit> <value>", ``reason`` = "post-trade <figure>"). Time comes only from the market clock (the backtester runs this too).

Two kinds of limit:

- **exposure** (portfolio greeks, concentration, open positions / trades, leverage, margin): the order is refused
  when the post-trade figure is beyond the limit *and* the order does not reduce it, so a closing or hedging
  order that lowers an already-breached figure is never blocked by it;
- **entry** (per-trade greeks, position size, new trades today, daily loss and drawdown, the stop-loss day,
  minimum DTE): checked for opening orders only; closing is always allowed by them.

Money and greek figures breach at the limit (``>=``); counts breach above it (10 positions fit a limit of 10).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from spx_core.domain.calendar import ET, from_ns
from spx_core.domain.contracts import OptionContract
from spx_core.execution.broker import MarketView
from spx_core.execution.checks import (
    CheckFailure,
    TradeLike,
    order_exposure_usd,
    package_quote,
)
from spx_core.execution.orders import Intent, OrderRequest, OrderType
from spx_core.risk.greeks import portfolio_greeks
from spx_core.risk.profiles import LimitProfile
from spx_core.strategies.market import Market
from spx_core.strategies.structure import PRICE_SCALE, Leg, Structure, underlying_of
from spx_core.strategies.valuation import PriceBasis, value_structure

__all__ = ["BookFigures", "PortfolioState", "RiskLimits", "book_figures", "contract_greeks", "spots_of", "view_market"]

_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class PortfolioState:
    """The book the limits read (the caller builds it from the ledger and the account; no clock in here).

    Attributes:
        trades: the open trades (held legs per unit x ``quantity``; :class:`~spx_core.portfolio.trades.Trade`);
            closed ones passed in are dropped.
        net_liq: net liquidation value in dollars (NaN: unknown; %-of-net-liq limits then refuse openings).
        margin: dollars of margin the book uses now.
        realized_pnl_today: dollars realized today (net of costs).
        unrealized_pnl_today: dollars of open P&L change since the day start.
        day_pnl_high: the highest day P&L reached today (dollars), the drawdown's reference.
        stops_today: stop losses taken today.
        trades_opened_today: trades opened today.
    """

    trades: tuple[TradeLike, ...] = ()
    net_liq: float = math.nan
    margin: float = 0.0
    realized_pnl_today: float = 0.0
    unrealized_pnl_today: float = 0.0
    day_pnl_high: float = 0.0
    stops_today: int = 0
    trades_opened_today: int = 0

    def __post_init__(self) -> None:
        # a ledger's trade list may include closed trades: they hold nothing and count for nothing
        object.__setattr__(self, "trades", tuple(t for t in self.trades if t.status == "open"))

    @property
    def day_pnl(self) -> float:
        return self.realized_pnl_today + self.unrealized_pnl_today

    def held(self) -> Counter[OptionContract]:
        """Contract -> signed contracts held across the open trades."""
        held: Counter[OptionContract] = Counter()
        for trade in self.trades:
            for leg in trade.legs:
                held[leg.contract] += leg.ratio * trade.quantity
        return held


@dataclass(frozen=True, slots=True)
class BookFigures:
    """The exposure figures of one book (dollar greeks, concentration %, counts, notional)."""

    delta: float
    gamma: float
    vega: float
    theta: float
    expiry_shares: dict[date, float]  # expiry -> % of the book's risk
    strike_shares: dict[float, float]  # strike (SPX points) -> % of the book's risk
    positions: int
    gross_notional: float
    unknown: str = ""  # "" or which contract's greeks are missing (then the greeks are NaN)


def _spx_units(contract: OptionContract) -> float:
    """SPX-equivalent contracts per contract (a SPY contract is a tenth of an SPX one)."""
    return PRICE_SCALE[underlying_of(contract.root)] * contract.multiplier / 100.0


def book_figures(held: Counter[OptionContract], greeks: dict[OptionContract, tuple[float, ...]],
                 spots: dict[str, float]) -> BookFigures:
    """Figures of ``held`` (signed contracts) from per-contract greeks (delta $/SPX pt, gamma $/1%, vega, theta)."""
    live = {c: q for c, q in held.items() if q}
    totals = [0.0, 0.0, 0.0, 0.0]
    by_expiry: Counter[date] = Counter()
    by_strike: Counter[float] = Counter()
    notional = 0.0
    missing = ""
    for c, q in live.items():
        g = greeks[c]
        if not all(math.isfinite(x) for x in g[:4]):
            missing = missing or f"no greeks for {c}"
        for i in range(4):
            totals[i] += q * g[i]
        risk = abs(q) * _spx_units(c)
        by_expiry[c.expiry] += risk
        by_strike[round(c.strike / PRICE_SCALE[underlying_of(c.root)], 6)] += risk
        notional += abs(q) * c.multiplier * spots.get(underlying_of(c.root), math.nan)
    gross = sum(by_expiry.values())
    def shares(groups: Counter) -> dict:
        return {k: 100.0 * v / gross for k, v in groups.items()} if gross > 0 else {}

    return BookFigures(*totals, shares(by_expiry), shares(by_strike), len(live), notional, missing)


def _market_clock_date(market: MarketView) -> date:
    return from_ns(int(market.now_ns())).astimezone(ET).date()


class RiskLimits:
    """The gate's ``limits(request, market)`` hook for one :class:`LimitProfile` (see the module docstring)."""

    def __init__(self, profile: LimitProfile, *, portfolio: Callable[[], PortfolioState],
                 civ_cache: dict[str, tuple[str, object]] | None = None) -> None:
        """``civ_cache``: shared with :func:`view_market` callers (the guard's usage) so a snapshot is solved once."""
        if not isinstance(profile, LimitProfile):
            raise TypeError(f"RiskLimits needs a LimitProfile, not {type(profile).__name__}")
        self.profile = profile
        self.portfolio = portfolio
        self._civ_cache: dict[str, tuple[str, object]] = {} if civ_cache is None else civ_cache

    def __call__(self, request: OrderRequest, market: MarketView) -> list[CheckFailure]:
        state = self.portfolio()
        before = state.held()
        after = Counter(before)
        for i, leg in enumerate(request.legs):
            after[leg.contract] += request.leg_quantity(i)
        contracts = sorted({c for c in (*before, *after) if before[c] or after[c]}, key=str)
        mkt = view_market(market, {underlying_of(c.root) for c in contracts}, self._civ_cache)
        greeks = contract_greeks(contracts, mkt)
        spots = spots_of(mkt)
        pre, post = book_figures(before, greeks, spots), book_figures(after, greeks, spots)
        failures = self._exposure(request, state, pre, post, mkt)
        if request.intent is Intent.OPEN:
            failures += self._entry(request, state, market, mkt, greeks)
        return failures

    # --- exposure: refused only when beyond the limit and not reduced by the order ------------------------
    def _exposure(self, request: OrderRequest, state: PortfolioState, pre: BookFigures, post: BookFigures,
                  mkt: Market) -> list[CheckFailure]:
        p = self.profile
        out: list[CheckFailure] = []
        for name, attr, fmt in (("max_delta", "delta", _usd), ("max_gamma", "gamma", _usd),
                                ("max_vega", "vega", _usd), ("max_theta", "theta", _usd)):
            limit = getattr(p, name)
            if limit is None:
                continue
            a, b = abs(getattr(pre, attr)), abs(getattr(post, attr))
            if post.unknown:
                out.append(_fail(name, limit, f"unknown ({post.unknown})"))
            elif b >= limit - _EPS and b > a + _EPS:
                out.append(_fail(name, limit, fmt(getattr(post, attr))))
        if post.positions >= p.concentration_min_positions:
            for name, attr in (("max_expiry_concentration_pct", "expiry_shares"),
                               ("max_strike_concentration_pct", "strike_shares")):
                limit = getattr(p, name)
                a, b = getattr(pre, attr), getattr(post, attr)
                # a group over the limit whose share the order raised (spreading risk out is never refused)
                over = [(share, key) for key, share in b.items()
                        if limit is not None and share >= limit - _EPS and share > a.get(key, 0.0) + _EPS]
                if over:
                    share, key = max(over)
                    out.append(_fail(name, limit, f"{share:.1f}% in {key:g}" if isinstance(key, float)
                                     else f"{share:.1f}% in {key}"))
        if p.max_open_positions is not None and post.positions > p.max_open_positions \
                and post.positions > pre.positions:
            out.append(_fail("max_open_positions", p.max_open_positions, f"{post.positions} positions"))
        trades = len(state.trades) + (1 if request.intent is Intent.OPEN else 0)
        if p.max_open_trades is not None and request.intent is Intent.OPEN and trades > p.max_open_trades:
            out.append(_fail("max_open_trades", p.max_open_trades, f"{trades} open trades"))
        out += self._money(request, state, pre, post, mkt)
        return out

    def _money(self, request: OrderRequest, state: PortfolioState, pre: BookFigures, post: BookFigures,
               mkt: Market) -> list[CheckFailure]:
        p = self.profile
        out: list[CheckFailure] = []
        net_liq = state.net_liq
        if p.max_leverage is not None:
            a, b = pre.gross_notional / net_liq, post.gross_notional / net_liq
            if not (net_liq > 0 and math.isfinite(b)):
                out.append(_fail("max_leverage", p.max_leverage, f"unknown (net liq {_usd(net_liq)})"))
            elif b >= p.max_leverage - _EPS and b > a + _EPS:
                out.append(_fail("max_leverage", p.max_leverage, f"{b:.2f}x"))
        if p.max_margin_utilisation_pct is not None:
            added = _order_margin(request, mkt) if request.intent is Intent.OPEN else 0.0
            b = 100.0 * (state.margin + added) / net_liq if net_liq > 0 else math.nan
            if not math.isfinite(b):
                out.append(_fail("max_margin_utilisation_pct", p.max_margin_utilisation_pct,
                                 f"unknown (net liq {_usd(net_liq)}, order margin {_usd(added)})"))
            elif b >= p.max_margin_utilisation_pct - _EPS and added > 0:
                out.append(_fail("max_margin_utilisation_pct", p.max_margin_utilisation_pct, f"{b:.1f}%"))
        return out

    # --- entry: opening orders only -----------------------------------------------------------------------
    def _entry(self, request: OrderRequest, state: PortfolioState, market: MarketView, mkt: Market,
               greeks: dict[OptionContract, tuple[float, ...]]) -> list[CheckFailure]:
        p = self.profile
        out: list[CheckFailure] = []
        order = [sum(request.leg_quantity(i) * greeks[leg.contract][k] for i, leg in enumerate(request.legs))
                 for k in range(4)]
        for name, k in (("max_trade_delta", 0), ("max_trade_vega", 2)):
            limit = getattr(p, name)
            if limit is not None and not (math.isfinite(order[k]) and abs(order[k]) < limit - _EPS):
                out.append(_fail(name, limit, f"order {_usd(order[k])}"))
        if p.max_new_trades_per_day is not None and state.trades_opened_today + 1 > p.max_new_trades_per_day:
            out.append(_fail("max_new_trades_per_day", p.max_new_trades_per_day,
                             f"{state.trades_opened_today + 1} trades opened today"))
        if p.stop_after_stop_loss and state.stops_today > 0:
            out.append(_fail("stop_after_stop_loss", "on", f"{state.stops_today} stop loss(es) taken today"))
        if p.min_entry_dte is not None:
            today = _market_clock_date(market)
            dte = min((leg.contract.expiry - today).days for leg in request.legs)
            if dte < p.min_entry_dte:
                out.append(_fail("min_entry_dte", p.min_entry_dte, f"{dte} DTE"))
        out += self._loss(request, state, market)
        return out

    def _loss(self, request: OrderRequest, state: PortfolioState, market: MarketView) -> list[CheckFailure]:
        p = self.profile
        out: list[CheckFailure] = []
        quote = package_quote(request.legs, market)
        price = quote.natural(request.side) if request.order_type is OrderType.MKT else float(request.limit)
        mult = request.legs[0].contract.multiplier
        edge = request.side.sign * (price - quote.mid) * mult * request.quantity  # paid over mid: lost at once
        day_pnl = state.day_pnl - (edge if math.isfinite(edge) and edge > 0 else 0.0)
        loss = max(0.0, -day_pnl) if math.isfinite(day_pnl) else math.nan
        net_liq = state.net_liq
        if p.max_daily_loss is not None and not loss < p.max_daily_loss - _EPS:  # unknown (a leg unmarked): refused
            out.append(_fail("max_daily_loss", p.max_daily_loss, f"day loss {_usd(loss)}" if math.isfinite(loss)
                             else "day loss unknown (a held leg has no usable mark)"))
        for name, figure in (("max_daily_loss_pct", loss),
                             ("max_daily_drawdown_pct", max(0.0, max(state.day_pnl_high, 0.0) - day_pnl))):
            limit = getattr(p, name)
            if limit is None:
                continue
            pct = 100.0 * figure / net_liq if net_liq > 0 else math.nan
            if not math.isfinite(pct) or pct >= limit - _EPS:
                out.append(_fail(name, limit, f"{pct:.2f}% of net liq ({_usd(figure)})" if math.isfinite(pct)
                                 else _share_unknown(figure, net_liq)))
        if p.max_position_size_pct is not None:
            risk = order_exposure_usd(request, price, quote)
            pct = 100.0 * risk / net_liq if net_liq > 0 else math.nan
            if not math.isfinite(pct) or pct >= p.max_position_size_pct - _EPS:
                out.append(_fail("max_position_size_pct", p.max_position_size_pct,
                                 f"{pct:.2f}% of net liq at risk ({_usd(risk)})" if math.isfinite(pct)
                                 else _share_unknown(risk, net_liq)))
        return out



def spots_of(market: Market) -> dict[str, float]:
    """Underlying -> its price in the market's snapshots."""
    return {u: float(ch.snapshot.underlying_price) for u, ch in market.chains.items()}


def view_market(market: MarketView, underlyings: set[str], cache: dict[str, tuple[str, object]] | None = None
                ) -> Market:
    """The view's current chains of ``underlyings`` with their IVs; ``cache`` (underlying -> (checksum, civ))
    keeps one solve per snapshot across calls.

    Raises:
        ValueError: the view has no chain of one of ``underlyings``.
    """
    # the surface layer loads scipy: only when limits are first checked
    from spx_core.surface.chain_iv import chain_iv

    cache = {} if cache is None else cache
    civs = []
    for u in sorted(underlyings):
        snap = market.snapshot(u)
        if snap is None:
            raise ValueError(f"no {u} chain in the market to value the book")
        hit = cache.get(u)
        if hit is None or hit[0] != snap.checksum:
            hit = (snap.checksum, chain_iv(snap))
            cache[u] = hit
        civs.append(hit[1])
    return Market.of(*civs)


def contract_greeks(contracts: list[OptionContract], market: Market
                     ) -> dict[OptionContract, tuple[float, float, float, float]]:
    """Dollar greeks of each contract held long (delta $/SPX point, gamma $/1%, vega $/vol pt, theta $/day),
    from the portfolio greeks (one vectorized valuation of every contract, SPY on the SPX axis at beta 1)."""
    if not contracts:
        return {}
    report = portfolio_greeks([(c, 1) for c in contracts], market)
    return {c: (g.greeks.delta_usd_pt, g.greeks.gamma_usd_1pct, g.greeks.vega_usd_volpt, g.greeks.theta_usd_day)
            for c, g in report.by_contract.items()}


def _order_margin(request: OrderRequest, market: Market) -> float:
    held = Structure(tuple(Leg(leg.contract, leg.ratio * request.side.sign) for leg in request.legs))
    margin = value_structure(held, market, basis=PriceBasis.NATURAL).margin * request.quantity
    return margin if math.isfinite(margin) else math.inf


def _fail(name: str, limit: object, figure: str) -> CheckFailure:
    value = f"{limit:,g}" if isinstance(limit, (int, float)) and not isinstance(limit, bool) else str(limit)
    # the gate words each as "<check>: <reason>", i.e. "<limit> <value>: post-trade <figure>"
    return CheckFailure(f"{name} {value}", f"post-trade {figure}")


def _share_unknown(figure: float, net_liq: float) -> str:
    """Why a %-of-net-liq figure cannot be computed: such a limit refuses (never guesses) until it can."""
    if not math.isfinite(figure):
        return "share of net liq unknown (a held leg has no usable mark yet)"
    if not math.isfinite(net_liq):
        return (f"share of net liq unknown ({_usd(figure)}; net liq n/a: no usable mark for a held leg, or the "
                f"broker's figure, yet; try again once it is in)")
    return f"share of net liq unknown ({_usd(figure)}; net liq {_usd(net_liq)} is not positive)"


def _usd(x: float) -> str:
    return f"${x:,.2f}" if math.isfinite(x) else "n/a"

