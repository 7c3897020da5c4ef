"""The delta hedger: keep the portfolio's delta within a band with a synthetic future, at most once per interval.

    hedger = DeltaHedger(config.hedge, broker="paper")
    hedge = hedger.plan(portfolio_delta, market, now_ns)     # Hedge(request, reason, ...) or None
    request = hedger.check(portfolio_delta, market, now_ns)  # the same order; the attempt starts the interval

Delta is in dollars per SPX point, the unit of ``HedgeConfig.band_delta`` and of the limit profiles' ``max_delta``
(:func:`spx_core.risk.greeks.portfolio_greeks`' ``delta_usd_pt``, SPY legs beta-weighted: one SPX contract of delta
1 is $100 per point; :func:`book_delta` computes it for a list of trades). When ``|delta| > band`` the hedger sends
the whole units that bring it nearest to zero.

The instrument. An order here is option legs only (:class:`~spx_core.execution.orders.OrderRequest` legs are
:class:`~spx_core.domain.contracts.OptionContract`; no share leg can be written), so SPY *shares* cannot be
ordered. Both instruments are therefore a synthetic future, long call + short put at one strike and expiry
(delta 1 per share-equivalent, no vega or gamma to first order):

    "synthetic"  SPX (SPXW preferred, else SPX) at the strike nearest the index: $100 per SPX point per unit.
    "SPY"        SPY options, the same shape: 100 shares per unit = $10 per SPX point (10x finer steps).
                 SPY options are American: a deep in-the-money short put may be assigned early (shares).

A bare synthetic never passes the pre-trade gate: its short call is unlimited risk and its short put risks the
whole strike (~$580,000 per SPX unit), both above ``GateSettings.max_notional``. So by default each synthetic
carries a protective long *wing* ``wing_pct`` (5%) beyond its strike on the short side (a put below a long
future, a call above a short one): the risk is defined (about 5% of the strike per unit) and the gate judges it
like any other order. The wing is far out of the money on the nearest expiry, so its delta is small and left out
of the per-unit figure; whatever it leaves is measured in the next portfolio delta and hedged after the interval.
``wing_pct=None`` sends the bare synthetic (for a gate whose settings allow it).

A hedge is a trade of its own (strategy ``"<name>/hedge"``): the monitor does not close it; it is held to its
expiry and settled, and the hedger keeps reading the whole book's delta, so later hedges offset earlier ones.

"The nearest liquid expiry": the first expiry at least ``min_dte`` calendar days out (default 1: a same-day
synthetic expires within hours and would leave the book unhedged at the settlement) whose call and put at one
strike are both quoted on both sides with no refused flag; the strike nearest the underlying price among those.
The order is a limit at the natural (crossing), so it fills when the paper broker or the market can.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

import numpy as np

from spx_core.automation.config import HedgeConfig, HedgeInstrument
from spx_core.automation.engine import MarketContext
from spx_core.automation.monitor import ALL_FLAGS, marketable_limit
from spx_core.domain.calendar import ET, from_ns
from spx_core.domain.contracts import ROOTS, OptionContract, Right, Root
from spx_core.domain.quotes import QuoteFlag
from spx_core.domain.snapshot import ChainSnapshot
from spx_core.execution.broker import MarketView
from spx_core.execution.checks import package_quote
from spx_core.execution.orders import OrderRequest, Side, new_ref, normalize_side
from spx_core.portfolio.trades import Trade
from spx_core.risk.greeks import portfolio_greeks
from spx_core.strategies.market import Market
from spx_core.strategies.structure import PRICE_SCALE, Leg, StructureKind, underlying_of
from spx_core.surface.chain_iv import chain_iv

__all__ = ["DeltaHedger", "Hedge", "HedgeError", "book_delta", "context_delta", "unit_delta"]


class HedgeError(ValueError):
    """No hedge can be built (no chain, no liquid strike); one line saying why."""


@dataclass(frozen=True, slots=True)
class Hedge:
    """One hedge: the order, why (``reason`` starts with ``"hedge: "``) and the delta it moves.

    Attributes:
        delta_before: portfolio delta seen (dollars per SPX point).
        delta_change: delta the order adds when filled (same unit; opposite sign to ``delta_before``).
    """

    request: OrderRequest
    reason: str
    delta_before: float
    delta_change: float


def unit_delta(contract: OptionContract, *, spy_beta: float = 1.0) -> float:
    """Dollars per SPX point of one synthetic (long call + short put) on ``contract``'s root: 100 for SPX, 10 for
    SPY (100 shares at a tenth of the index, times its beta to SPX)."""
    beta = spy_beta if underlying_of(contract.root) == "SPY" else 1.0
    return PRICE_SCALE[underlying_of(contract.root)] * contract.multiplier * beta


def book_delta(trades: Iterable[Trade], market: Market, *, spy_beta: float = 1.0) -> float:
    """The delta of the open trades' held legs in dollars per SPX point (the portfolio greeks' ``delta_usd_pt``).

    NaN when a held leg has no delta (its IV did not solve and no surface); raises ValueError naming a held
    contract the market's chains do not list.
    """
    held: Counter[OptionContract] = Counter()
    for trade in trades:
        if trade.status != "open":
            continue
        for leg in trade.legs:
            held[leg.contract] += leg.ratio * trade.quantity
    book = [(c, q) for c, q in held.items() if q]
    if not book:
        return 0.0
    return portfolio_greeks(book, market, spy_beta=spy_beta).total.delta_usd_pt


def context_delta(trades: Iterable[Trade], ctx: MarketContext | None) -> tuple[float | None, str]:
    """The open trades' delta ($/SPX point) on the strategy's market context, or (None, why)."""
    if ctx is None:
        return None, "no market context to compute the portfolio delta; no hedge"
    civs = [ctx.civ if ctx.civ is not None else chain_iv(ctx.snapshot)]
    if ctx.spy_snapshot is not None:
        civs.append(chain_iv(ctx.spy_snapshot))
    surfaces = {"SPX": ctx.surface} if ctx.surface is not None else None
    try:
        value = book_delta([t for t in trades if t.is_open], Market.of(*civs, surfaces=surfaces))
    except (KeyError, ValueError) as exc:
        return None, f"portfolio delta unknown ({exc}); no hedge"
    return value, ""


class DeltaHedger:
    """Keeps portfolio delta within ``config.band_delta`` (see the module docstring).

    Args:
        config: the strategy's hedge settings (band_delta: dollars per SPX point, instrument "SPY" |
            "synthetic", min_interval_s: seconds of market clock between two hedges).
        broker / account: written on the hedge orders.
        last_hedge_ns: when the last hedge was sent (a restart passes the last stored hedge decision's time).
        min_dte: the nearest expiry considered is at least this many calendar days out.
        refuse_flags: quote flags that make a strike unusable.
        spy_beta: SPY's beta to SPX, as the portfolio greeks weight SPY legs.
        wing_pct: the protective wing's distance beyond the strike (fraction of the strike; None: no wing).
    """

    def __init__(self, config: HedgeConfig, *, broker: str = "paper", account: str = "",
                 last_hedge_ns: int | None = None, min_dte: int = 1, refuse_flags: QuoteFlag = ALL_FLAGS,
                 spy_beta: float = 1.0, wing_pct: float | None = 0.05) -> None:
        if wing_pct is not None and not 0 < wing_pct < 1:
            raise ValueError(f"wing_pct {wing_pct!r} must be a fraction in (0, 1) (0.05 = 5% beyond the strike) "
                             f"or None for no wing")
        self.config = config
        self.broker = broker
        self.account = account
        self.last_hedge_ns = last_hedge_ns
        self.min_dte = min_dte
        self.refuse_flags = QuoteFlag(int(refuse_flags))
        self.spy_beta = spy_beta
        self.wing_pct = wing_pct

    @property
    def underlying(self) -> str:
        return "SPY" if self.config.instrument is HedgeInstrument.SPY else "SPX"

    def check(self, portfolio_delta: float, market: MarketView, now_ns: int) -> OrderRequest | None:
        """The hedge order due now, or None; a returned order starts the interval (sent or refused, it is not
        re-tried before ``min_interval_s``)."""
        hedge = self.plan(portfolio_delta, market, now_ns)
        if hedge is None:
            return None
        self.last_hedge_ns = int(now_ns)
        return hedge.request

    def due(self, portfolio_delta: float, now_ns: int) -> str:
        """Why no hedge is due ("" when one is): inside the band, inside the interval, or no delta."""
        band = float(self.config.band_delta)
        if not math.isfinite(portfolio_delta):
            return "portfolio delta unknown (a held leg has no delta); no hedge"
        if abs(portfolio_delta) <= band:
            return f"portfolio delta {portfolio_delta:+,.0f} $/pt within ±{band:,g}"
        if self.last_hedge_ns is not None:
            wait = self.last_hedge_ns + float(self.config.min_interval_s) * 1e9 - now_ns
            if wait > 0:
                return (f"portfolio delta {portfolio_delta:+,.0f} $/pt outside ±{band:,g}, but the last hedge was "
                        f"{(now_ns - self.last_hedge_ns) / 1e9:.0f} s ago (interval {self.config.min_interval_s:g} s)")
        return ""

    def plan(self, portfolio_delta: float, market: MarketView, now_ns: int) -> Hedge | None:
        """The hedge due now (None when inside the band, inside the interval, or smaller than one unit).

        Raises:
            HedgeError: a hedge is due but no liquid synthetic (or wing) can be built on ``market``.
        """
        if self.due(portfolio_delta, now_ns):
            return None
        root, expiry, strike, calls, puts = self._pick(market, now_ns)
        call, put = OptionContract(root, expiry, strike, Right.CALL), OptionContract(root, expiry, strike, Right.PUT)
        per_unit = unit_delta(call, spy_beta=self.spy_beta)
        units = round(abs(portfolio_delta) / per_unit)
        if units == 0:
            return None
        buy = portfolio_delta < 0  # short delta: buy the future (long call, short put)
        held = [Leg(call, 1 if buy else -1), Leg(put, -1 if buy else 1)]
        name = f"{root} {expiry:%Y-%m-%d} {strike:g} synthetic ({'long' if buy else 'short'}"
        if self.wing_pct is not None:
            wing = self._wing(root, expiry, strike, puts if buy else calls, buy)
            held.append(Leg(wing, 1))
            name += f", {wing.strike:g}{wing.right.value} wing"
        name += ")"
        legs, side = self._normalized(tuple(held), market)
        quote = package_quote(legs, market, self.refuse_flags, side)
        natural = quote.natural(side)
        if not math.isfinite(natural):
            raise HedgeError(f"no natural price for the {name}: {'; '.join(quote.unlisted + quote.unquoted)}")
        change = math.copysign(units * per_unit, -portfolio_delta)
        request = OrderRequest(ref=new_ref(), legs=legs, side=side, quantity=units,
                               limit=marketable_limit(legs, side, natural), created_ns=int(now_ns), name=name,
                               kind=StructureKind.CUSTOM.value, broker=self.broker, account=self.account,
                               source="automation")
        reason = (f"hedge: portfolio delta {portfolio_delta:+,.0f} $/pt outside ±{float(self.config.band_delta):,g}; "
                  f"{'buy' if buy else 'sell'} {units} x {name} at {request.limit:.2f} ({change:+,.0f} $/pt) -> "
                  f"{portfolio_delta + change:+,.0f} $/pt")
        return Hedge(request, reason, float(portfolio_delta), change)

    # --- the instrument ----------------------------------------------------------------------------------------
    def _normalized(self, held: tuple[Leg, ...], market: MarketView) -> tuple[tuple[Leg, ...], Side]:
        """BUY ``held`` written with a non-negative package price (a short future is SOLD as written)."""
        mids = package_quote(held, market, self.refuse_flags)
        prices = [0.5 * (b + a) for b, a in zip(mids.leg_bid, mids.leg_ask, strict=True)]
        return normalize_side(held, Side.BUY, prices)

    def _wing(self, root: Root, expiry: date, strike: float, strikes: list[float], buy: bool) -> OptionContract:
        """The protective long option ``wing_pct`` beyond the strike: a put below a long future, a call above a
        short one (the cleanly quoted strike nearest the target, strictly beyond the synthetic's strike)."""
        target = strike * (1 - self.wing_pct) if buy else strike * (1 + self.wing_pct)
        beyond = [k for k in strikes if (k < strike if buy else k > strike)]
        if not beyond:
            raise HedgeError(f"no cleanly quoted {'put' if buy else 'call'} {'below' if buy else 'above'} {strike:g} "
                             f"in {root} {expiry} for the hedge's wing; no hedge sent")
        wing = min(beyond, key=lambda k: (abs(k - target), k))
        return OptionContract(root, expiry, wing, Right.PUT if buy else Right.CALL)

    def _pick(self, market: MarketView, now_ns: int) -> tuple[Root, date, float, list[float], list[float]]:
        """(root, expiry, strike, clean call strikes, clean put strikes) of the nearest liquid expiry, at the
        strike nearest the underlying (see the module doc)."""
        u = self.underlying
        snap = market.snapshot(u)
        if snap is None:
            raise HedgeError(f"no {u} chain in the market yet; the {self.config.instrument} hedge needs one")
        today = from_ns(now_ns).astimezone(ET).date()
        roots = (Root.SPY,) if u == "SPY" else (Root.SPXW, Root.SPX)
        for expiry in sorted(set(snap.columns["expiry"].astype("datetime64[D]").tolist())):
            if (expiry - today).days < self.min_dte:
                continue
            for root in roots:
                calls, puts = _clean_strikes(snap, root, expiry, self.refuse_flags)
                both = sorted(set(calls) & set(puts))
                if both:
                    spot = float(snap.underlying_price)
                    spot = spot if math.isfinite(spot) else float(np.median(both))
                    return root, expiry, min(both, key=lambda k: (abs(k - spot), k)), calls, puts
        raise HedgeError(f"no {u} expiry {self.min_dte}+ days out has a call and a put quoted on both sides at "
                         f"one strike; no hedge sent")


def _clean_strikes(snap: ChainSnapshot, root: Root, expiry: date, refuse: QuoteFlag) -> tuple[list[float], list[float]]:
    """Strikes of ``root``'s ``expiry`` whose call / put is quoted on both sides with no refused flag."""
    c = snap.columns
    rows = (c["root"] == ROOTS.index(root)) & (c["expiry"].astype("datetime64[D]") == np.datetime64(expiry, "D"))
    with np.errstate(invalid="ignore"):
        ok = rows & (c["bid"] > 0) & (c["ask"] >= c["bid"]) & ((c["flags"].astype(np.int64) & int(refuse)) == 0)
    return sorted(c["strike"][ok & c["is_call"]].tolist()), sorted(c["strike"][ok & ~c["is_call"]].tolist())
