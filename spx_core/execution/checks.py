"""The pre-trade checks, one named function each: ``check_x(ctx) -> CheckFailure | None``.

:class:`~spx_core.execution.gate.PreTradeGate` runs every function of :data:`CHECKS` on one
:class:`CheckContext` and reports every failure, not just the first (a trader fixes a ticket in one pass).
A check whose input another check already refused (no natural price for the price band) passes silently:
the order is refused anyway and the message names the real cause once.

Prices follow :mod:`spx_core.execution.orders`: package price ``sum(ratio_i * price_i)`` in index points per
unit as written; BUY pays its limit, SELL receives it. The *natural* price is what crossing every leg's
spread gives: a BUY pays the package ask (bought legs at their asks, sold legs at their bids), a SELL
receives the package bid. Money limits are dollars.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

import numpy as np

from spx_core.domain.calendar import ET, MarketCalendar, from_ns, to_ns
from spx_core.domain.quotes import QuoteFlag, describe_flags
from spx_core.execution import hours, ticks
from spx_core.execution.broker import Broker, MarketView
from spx_core.execution.orders import Intent, OrderRequest, OrderType, Side
from spx_core.execution.rate_limit import SlidingWindowLimiter
from spx_core.strategies.expiry_profile import expiry_profile
from spx_core.strategies.margin import margin_requirement
from spx_core.strategies.market import locate
from spx_core.strategies.structure import Leg, Structure

if TYPE_CHECKING:
    from spx_core.execution.gate import GateSettings

__all__ = ["CheckFailure", "CheckContext", "CloseContext", "PackageQuote", "TradeLike", "CHECKS",
           "package_quote", "order_exposure_usd"]

_EPS = 1e-9  # price comparisons: prices are float sums of tick multiples


@dataclass(frozen=True, slots=True)
class CheckFailure:
    """One refused check: its name and why, in words a trader acts on."""

    check: str
    reason: str

    def __str__(self) -> str:
        return f"{self.check}: {self.reason}"


class TradeLike(Protocol):
    """What the close check reads of a :class:`spx_core.portfolio.trades.Trade`."""

    id: int
    legs: tuple[Leg, ...]
    quantity: int
    status: str


@dataclass(frozen=True, slots=True)
class CloseContext:
    """What a closing order is checked against (the order service fills it from the store).

    Attributes:
        trade: the trade the request's ``trade_id`` names (None when the store has no such trade).
        other_working: units other working closing orders of this trade may still close.
        already_filled: units of this very order already filled (a modify of a working closing order).
    """

    trade: TradeLike | None
    other_working: int = 0
    already_filled: int = 0


@dataclass(frozen=True, slots=True)
class PackageQuote:
    """The order's legs on the current market, in the request's price convention (points per unit).

    Attributes:
        bid: what selling one unit as written receives crossing (NaN when a needed quote is missing).
        ask: what buying one unit as written pays crossing (NaN likewise).
        leg_bid, leg_ask: per leg, points per contract (NaN where not listed or not quoted).
        unlisted: legs the snapshot does not list, and underlyings with no snapshot (one phrase each).
        unquoted: legs whose quotes cannot price the order (missing side, refused flags).
        underlying_price: per underlying, the snapshot's index level.
        snapshot_ns: per underlying, the snapshot's time.
    """

    bid: float
    ask: float
    leg_bid: tuple[float, ...]
    leg_ask: tuple[float, ...]
    unlisted: tuple[str, ...] = ()
    unquoted: tuple[str, ...] = ()
    underlying_price: dict[str, float] = field(default_factory=dict)
    snapshot_ns: dict[str, int] = field(default_factory=dict)

    def natural(self, side: Side) -> float:
        """What crossing gives: a BUY pays the ask, a SELL receives the bid."""
        return self.ask if side is Side.BUY else self.bid

    @property
    def width(self) -> float:
        return self.ask - self.bid

    @property
    def mid(self) -> float:
        return 0.5 * (self.bid + self.ask)


def package_quote(legs: Sequence[Leg], market: MarketView, refuse_flags: QuoteFlag = QuoteFlag.NONE,
                  side: Side | None = None) -> PackageQuote:
    """Price ``legs`` on ``market``'s latest snapshots (one vectorized lookup per underlying).

    A leg whose quote carries a flag in ``refuse_flags``, or lacks the side ``side`` crosses (a bought leg's
    ask, a sold leg's bid), is *unquoted*; with ``side=None`` both sides are needed.
    """
    n = len(legs)
    bid, ask = np.full(n, np.nan), np.full(n, np.nan)
    unlisted: list[str] = []
    unquoted: list[str] = []
    spot: dict[str, float] = {}
    times: dict[str, int] = {}
    for underlying in dict.fromkeys(leg.underlying for leg in legs):
        snap = market.snapshot(underlying)
        idx = [i for i, leg in enumerate(legs) if leg.underlying == underlying]
        if snap is None:
            unlisted.append(f"no {underlying} chain in the market yet")
            continue
        spot[underlying], times[underlying] = float(snap.underlying_price), int(snap.time_ns)
        rows = locate(snap, [legs[i].contract for i in idx])
        cols = snap.columns
        for i, row in zip(idx, rows.tolist(), strict=True):
            if row < 0:
                unlisted.append(f"{legs[i].contract} is not listed in the {underlying} chain of "
                                f"{from_ns(snap.time_ns).astimezone(ET):%Y-%m-%d %H:%M:%S} ET")
                continue
            bid[i], ask[i] = cols["bid"][row], cols["ask"][row]
            problem = _quote_problem(legs[i], side, float(bid[i]), float(ask[i]), int(cols["flags"][row]),
                                     refuse_flags)
            if problem:
                unquoted.append(f"{legs[i].contract} {problem}")
    ratios = np.array([leg.ratio for leg in legs], dtype=np.float64)
    pkg_bid = float(np.sum(ratios * np.where(ratios > 0, bid, ask)))
    pkg_ask = float(np.sum(ratios * np.where(ratios > 0, ask, bid)))
    if unquoted or unlisted:
        pkg_bid = pkg_ask = math.nan
    return PackageQuote(pkg_bid, pkg_ask, tuple(bid.tolist()), tuple(ask.tolist()), tuple(unlisted),
                        tuple(unquoted), spot, times)


def _quote_problem(leg: Leg, side: Side | None, bid: float, ask: float, flags: int, refuse: QuoteFlag) -> str:
    bad = flags & int(refuse)
    if bad:
        return f"quote is {describe_flags(bad)} (bid {bid:g}, ask {ask:g})"
    buys = None if side is None else leg.ratio * side.sign > 0
    needed = ("ask",) if buys is True else ("bid",) if buys is False else ("bid", "ask")
    # zero is no price, as the quote flags (ZERO_BID) and the paper fill model read it
    missing = [s for s, v in (("bid", bid), ("ask", ask)) if s in needed and not (math.isfinite(v) and v > 0)]
    return f"has no {' or '.join(missing)}" if missing else ""


def order_exposure_usd(request: OrderRequest, price: float, quote: PackageQuote) -> float:
    """Dollars at risk in the whole order at package ``price`` (request convention).

    Opening: per unit the larger of the premium and the maximum loss at expiry (exact for one expiry,
    unbounded = ``inf``); two expiries with a later leg short: Reg-T margin, every short leg naked.
    Closing: the premium only (a close reduces the trade's risk; the close check bounds its size).
    """
    mult = request.legs[0].contract.multiplier
    premium = abs(price) * mult
    if request.intent is Intent.CLOSE:
        return premium * request.quantity
    held = Structure(tuple(Leg(leg.contract, leg.ratio * request.side.sign) for leg in request.legs))
    credit_usd = -request.side.sign * price * mult
    front = held.front_expiry
    if len(held.expiries) > 1 and any(not leg.is_long for leg in held.legs if leg.contract.expiry > front):
        crossing = [quote.leg_ask[i] if leg.is_long else quote.leg_bid[i] for i, leg in enumerate(held.legs)]
        loss = margin_requirement(held, crossing, quote.underlying_price.get(held.underlying, math.nan))
    else:
        loss = expiry_profile(held, credit_usd).max_loss
    if math.isnan(loss):
        return math.nan
    return max(loss, premium) * request.quantity


@dataclass(slots=True)
class CheckContext:
    """Everything the checks read, gathered once per request."""

    request: OrderRequest
    market: MarketView
    broker: Broker
    settings: GateSettings
    calendar: MarketCalendar
    limiter: SlidingWindowLimiter
    now_ns: int
    quote: PackageQuote
    close: CloseContext | None = None
    limits: Callable[[OrderRequest, MarketView], list[CheckFailure]] | None = None

    @property
    def natural(self) -> float:
        return self.quote.natural(self.request.side)

    @property
    def combo(self) -> bool:
        return len(self.request.legs) > 1

    @property
    def roots(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(leg.contract.root.value for leg in self.request.legs))

    def tick(self, price: float) -> float:
        """The order's tick at ``price``: the coarsest of its legs' roots (an SPX-vs-SPY pair ticks as SPX)."""
        return ticks.order_tick_size(price, self.roots, combo=self.combo)

    @property
    def last_trade(self) -> list[datetime]:
        """When each leg stops trading for good."""
        return [hours.last_trade_instant(leg.contract, self.calendar) for leg in self.request.legs]

    @property
    def price(self) -> float:
        """The price the order trades at: its limit, or the natural for a market order."""
        return self.natural if self.request.order_type is OrderType.MKT else float(self.request.limit)


# --- the checks ------------------------------------------------------------------------------------------
def check_structure(ctx: CheckContext) -> CheckFailure | None:
    """Every leg is listed in its underlying's current snapshot."""
    if ctx.quote.unlisted:
        return CheckFailure("structure", "; ".join(ctx.quote.unlisted) + "; pick contracts from the current chain")
    return None


def check_priced(ctx: CheckContext) -> CheckFailure | None:
    """The natural price is computable: every leg quoted on the side the order crosses, the chain fresh."""
    if ctx.quote.unlisted:
        return None  # check_structure said why
    why = list(ctx.quote.unquoted)
    limit_s = ctx.settings.max_snapshot_age_s
    for underlying, t in ctx.quote.snapshot_ns.items():
        age = (ctx.now_ns - t) / 1e9
        if limit_s is not None and age > limit_s:
            why.append(f"the {underlying} chain is {age:.0f} s old (limit {limit_s:g} s)")
    if why:
        return CheckFailure("priced", "; ".join(why) + "; wait for fresh quotes")
    return None


def check_quantity(ctx: CheckContext) -> CheckFailure | None:
    q, limit = ctx.request.quantity, ctx.settings.max_quantity
    if q > limit:
        return CheckFailure("quantity", f"{q} units is above the {limit}-unit limit per order "
                                        f"(GateSettings.max_quantity); send fewer")
    return None


def check_notional(ctx: CheckContext) -> CheckFailure | None:
    """Max loss (or premium, whichever is larger) x multiplier x quantity within ``max_notional`` dollars."""
    price = ctx.price
    if not math.isfinite(price):
        return None  # a market order with no natural: check_priced said why
    exposure = order_exposure_usd(ctx.request, price, ctx.quote)
    limit = ctx.settings.max_notional
    if math.isnan(exposure):
        if ctx.quote.unlisted or ctx.quote.unquoted:
            return None  # check_structure / check_priced said why
        return CheckFailure("notional", "the order's maximum loss cannot be computed from the current quotes")
    if exposure > limit:
        what = "unlimited" if math.isinf(exposure) else f"${exposure:,.0f}"
        return CheckFailure("notional", f"{what} at risk is above the ${limit:,.0f} limit "
                                        f"(GateSettings.max_notional); trade fewer units or a defined-risk structure")
    return None


def check_price_band(ctx: CheckContext) -> CheckFailure | None:
    """The limit is near the natural: at most max(N ticks, X% of the width) worse, not absurdly far better."""
    req, natural = ctx.request, ctx.natural
    if req.order_type is OrderType.MKT or not math.isfinite(natural):
        return None
    band, quote = ctx.settings.price_band, ctx.quote
    tick = ctx.tick(abs(natural))
    width = quote.width if math.isfinite(quote.width) else 0.0  # the far side unquoted: ticks and mid only
    mid = quote.mid if math.isfinite(quote.mid) else natural
    through = (float(req.limit) - natural) * req.side.sign  # > 0: worse for us than crossing
    allowed = max(band.through_ticks * tick, band.through_width_fraction * width)
    verb = "pays" if req.side is Side.BUY else "receives"
    if through > allowed + _EPS:
        return CheckFailure("price_band", f"limit {req.limit:g} {verb} {through:.2f} worse than the natural "
                                          f"{natural:.2f}; at most {allowed:.2f} allowed (PriceBand); "
                                          f"use a limit nearer the market")
    away_allowed = max(band.away_ticks * tick, band.away_widths * width, band.away_mid_fraction * abs(mid))
    if -through > away_allowed + _EPS:
        return CheckFailure("price_band", f"limit {req.limit:g} is {-through:.2f} away from the natural "
                                          f"{natural:.2f}; more than {away_allowed:.2f} looks like a typo (PriceBand)")
    return None


def check_tick(ctx: CheckContext) -> CheckFailure | None:
    """The limit sits on the tick grid of every leg's root (complex orders: the net price's grid)."""
    req = ctx.request
    if req.order_type is OrderType.MKT:
        return None
    price = float(req.limit)
    if not ctx.combo and price <= 0:  # a package may net to zero or a credit; one option never trades at <= 0
        tick = ctx.tick(0.0)
        return CheckFailure("tick", f"limit {price:g}: a single option trades at a positive price; "
                                    f"use at least {tick:.2f}")
    off = [r for r in ctx.roots if not ticks.on_tick(price, combo=ctx.combo, root=r)]
    if not off:
        return None
    root = max(off, key=lambda r: ticks.tick_size(price, combo=ctx.combo, root=r))
    down, up = (ticks.round_to_tick(price, combo=ctx.combo, root=root, direction=d) for d in ("down", "up"))
    return CheckFailure("tick", f"limit {price:g} is not on the {ticks.tick_size(price, combo=ctx.combo, root=root):g} "
                                f"tick of {root} {'combos' if ctx.combo else 'options'}; use {down:.2f} or {up:.2f}")


def check_expiry(ctx: CheckContext) -> CheckFailure | None:
    """No leg has stopped trading for good (its series expired; AM series stop the business day before)."""
    gone = [f"{leg.contract} stopped trading at {stop:%Y-%m-%d %H:%M} ET"
            for leg, stop in zip(ctx.request.legs, ctx.last_trade, strict=True) if to_ns(stop) <= ctx.now_ns]
    return CheckFailure("expiry", "; ".join(gone) + "; pick a later expiry") if gone else None


def check_market_open(ctx: CheckContext) -> CheckFailure | None:
    """Every (unexpired) leg's market is open now: hours, weekends, holidays, early closes."""
    if not ctx.settings.enforce_hours and not ctx.broker.is_live:
        return None
    reasons = []
    for leg, stop in zip(ctx.request.legs, ctx.last_trade, strict=True):
        if to_ns(stop) <= ctx.now_ns:
            continue  # check_expiry said why
        is_open, why = hours.market_open(leg.contract, ctx.now_ns, ctx.calendar)
        if not is_open:
            reasons.append(why)
    return CheckFailure("market_open", "; ".join(dict.fromkeys(reasons))) if reasons else None


def check_broker(ctx: CheckContext) -> CheckFailure | None:
    """The order is for this broker and account, and the broker is connected."""
    req, broker = ctx.request, ctx.broker
    if req.broker != broker.name:
        return CheckFailure("broker", f"the order is for the {req.broker} broker but the service sends to "
                                      f"{broker.name}; rebuild the order for {broker.name}")
    if req.account and broker.account and req.account != broker.account:
        return CheckFailure("broker", f"the order is for account {req.account} but {broker.name} trades "
                                      f"account {broker.account}")
    if not broker.connected:
        return CheckFailure("broker", f"the {broker.name} broker is not connected; reconnect and send again")
    return None


def check_live_trading(ctx: CheckContext) -> CheckFailure | None:
    if ctx.broker.is_live and not ctx.settings.live_trading:
        return CheckFailure("live_trading", f"{ctx.broker.name} account {ctx.broker.account or '?'} trades real "
                                            f"money and live trading is off; enable it in settings first")
    return None


def check_rate_limit(ctx: CheckContext) -> CheckFailure | None:
    wait = ctx.limiter.wait_ns(ctx.now_ns)
    if wait:
        return CheckFailure("rate_limit", f"{ctx.limiter.limit} orders and modifies in the last "
                                          f"{ctx.limiter.window_ns / 1e9:g} s is the limit "
                                          f"(GateSettings.orders_per_minute); send again in {wait / 1e9:.1f} s")
    return None


def check_close(ctx: CheckContext) -> CheckFailure | None:
    """A closing order names an open trade, mirrors its legs and closes no more than is open."""
    req = ctx.request
    if req.intent is not Intent.CLOSE:
        return None
    close = ctx.close
    if close is None:
        return CheckFailure("close", f"closing order for trade #{req.trade_id} with no trade book to check it "
                                     f"against; send closing orders through the order service")
    trade = close.trade
    if trade is None or trade.id != req.trade_id:
        return CheckFailure("close", f"trade #{req.trade_id} does not exist; pick an open trade")
    if trade.status != "open" or trade.quantity <= 0:
        return CheckFailure("close", f"trade #{trade.id} is already closed")
    factor = _close_factor(req, trade)
    if factor is None:
        return CheckFailure("close", f"the order's legs do not reverse trade #{trade.id}'s legs "
                                     f"({', '.join(str(leg) for leg in trade.legs)}); use the trade's close action")
    units = (req.quantity - close.already_filled) * factor
    if units + close.other_working > trade.quantity:
        pending = f" ({close.other_working} more in working closing orders)" if close.other_working else ""
        return CheckFailure("close", f"closes {units} units of trade #{trade.id}, which has {trade.quantity} "
                                     f"open{pending}; close at most {trade.quantity - close.other_working}")
    return None


def _close_factor(req: OrderRequest, trade: TradeLike) -> int | None:
    """Trade units one unit of ``req`` closes (None when its legs are not the trade's legs reversed)."""
    held = {leg.contract: leg.ratio for leg in trade.legs}
    if set(held) != set(req.contracts):
        return None
    factors = set()
    for leg in req.legs:
        signed = leg.ratio * req.side.sign
        if signed * held[leg.contract] >= 0 or signed % held[leg.contract]:
            return None
        factors.add(-signed // held[leg.contract])
    return factors.pop() if len(factors) == 1 else None


def check_limits(ctx: CheckContext) -> CheckFailure | None:
    """The portfolio-limits hook (issue 10); its failures come out as one ``limits`` failure."""
    if ctx.limits is None:
        return None
    try:
        failures = list(ctx.limits(ctx.request, ctx.market))
    except Exception as exc:  # fail closed: a limits hook that cannot answer refuses the order
        return CheckFailure("limits", f"the portfolio limits could not be checked ({type(exc).__name__}: {exc})")
    if failures:
        return CheckFailure("limits", "; ".join(str(f) for f in failures))
    return None


#: Every check, in the order their failures are reported.
CHECKS: tuple[Callable[[CheckContext], CheckFailure | None], ...] = (
    check_broker, check_live_trading, check_structure, check_priced, check_expiry, check_market_open,
    check_quantity, check_notional, check_tick, check_price_band, check_close, check_rate_limit, check_limits,
)
