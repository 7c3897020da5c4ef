"""The position monitor: each open automated trade against its strategy's exits, in a fixed priority.

    monitor = PositionMonitor(broker="paper")
    result = monitor.evaluate(trades, {trade_id: config}, market, now_ns, crash_mode=False)
    result.signals     # one ExitSignal per trade to close: the first rule in priority that fires
    result.skipped     # trades that could not be judged (no usable quote, no entry price) and why

Rules, in priority order (:class:`ExitRule`; when two fire, the earlier one names the exit):

    take_profit  credit trade (opened SELL, e.g. a put credit vertical): the cost to close <= (1 - tp%) x the
                 entry credit. Debit trade (opened BUY), the symmetric rule: the value to close >= (1 + tp%) x
                 the entry debit (the gain reached tp% of what was paid).
    stop_loss    credit: the loss (cost to close - credit) >= sl% x the credit. Debit: the loss (debit - value)
                 >= sl% x the debit.
    regime       the caller says the market is in crash mode and the strategy's exits ask to leave on it.
    dte          the front leg's calendar days to expiry (ET dates) <= ``close_dte``.
    time         on the front leg's expiry day, the market clock is at or past ``close_time`` ET (15:45 for 0DTE).

Prices are points per unit in the opening order's convention (:mod:`spx_core.portfolio.trades`), so the entry
price is the trade's average cost (``Trade.cost_price``: the open price unless the trade was extended). The cost
or value to close is the package natural (what crossing every leg gives) when the strategy prices at the
natural, else the package mid. The closing order is always a limit at the natural on the tick grid (rounded
toward crossing): an exit is meant to happen, and the gate's price band accepts it.

Bad data never closes a trade: a leg that is unlisted, unquoted on a side, or carries any quote flag in
``refuse_flags`` (all of them by default: a stale or wide quote fakes a take profit, ``docs/market_rules.md``),
or a chain older than ``max_snapshot_age_s``, puts the trade in ``skipped`` with the reason and sends nothing,
whatever rule would fire. Time comes only from ``now_ns`` (the market clock): the backtester replays this.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from enum import StrEnum

from spx_core.automation.config import PriceMode, StrategyConfig
from spx_core.domain.calendar import ET, from_ns
from spx_core.domain.quotes import QuoteFlag
from spx_core.execution import ticks
from spx_core.execution.broker import MarketView
from spx_core.execution.checks import PackageQuote, package_quote
from spx_core.execution.orders import OrderRequest, Side
from spx_core.portfolio.trades import Trade, closing_request
from spx_core.strategies.structure import Leg

__all__ = ["ALL_FLAGS", "ExitRule", "ExitSignal", "MonitorResult", "PositionMonitor", "SkippedExit",
           "marketable_limit", "parse_clock"]

#: Every quote flag: the monitor's default ``refuse_flags`` ("never close on a flagged quote").
ALL_FLAGS = QuoteFlag(sum(int(f) for f in QuoteFlag))
_EPS = 1e-9  # price comparisons: package prices are float sums of tick multiples


class ExitRule(StrEnum):
    """Why a trade is closed, in priority order (the first that fires names the exit)."""

    TAKE_PROFIT = "take_profit"
    STOP_LOSS = "stop_loss"
    REGIME = "regime"
    DTE = "dte"
    TIME = "time"


@dataclass(frozen=True, slots=True)
class ExitSignal:
    """One trade to close: the rule that fired, why (``reason`` starts with ``"<rule>: "``) and the order."""

    trade_id: int
    strategy: str
    rule: ExitRule
    reason: str
    request: OrderRequest


@dataclass(frozen=True, slots=True)
class SkippedExit:
    """A trade the monitor could not judge this time and why (no exit is sent for it).

    ``due``: the rules that need no price (regime, DTE, time) and fire now: an exit due but not sent (alert on it).
    """

    trade_id: int
    strategy: str
    reason: str
    due: tuple[ExitRule, ...] = ()

    @property
    def rule(self) -> ExitRule | None:
        """The first rule due (None when none is)."""
        return self.due[0] if self.due else None


@dataclass(frozen=True, slots=True)
class MonitorResult:
    signals: tuple[ExitSignal, ...] = ()
    skipped: tuple[SkippedExit, ...] = ()


def parse_clock(value: str | time) -> time:
    """"15:45" (or a ``time``) -> ``time(15, 45)``; raises ValueError naming the bad text."""
    if isinstance(value, time):
        return value
    try:
        hh, mm = str(value).split(":")
        return time(int(hh), int(mm))
    except ValueError:
        raise ValueError(f"time of day {value!r} must be HH:MM (24-hour, ET), e.g. '15:45'") from None


def marketable_limit(legs: Sequence[Leg], side: Side, natural: float) -> float:
    """``natural`` (points per unit) on the order's tick grid, rounded toward crossing (BUY up, SELL down)."""
    roots = {leg.contract.root for leg in legs}
    combo = len(legs) > 1
    tick = ticks.order_tick_size(abs(natural), roots, combo=combo)
    root = next(r for r in roots if ticks.tick_size(abs(natural), combo=combo, root=r) == tick)
    return ticks.round_to_tick(natural, combo=combo, root=root, direction="up" if side is Side.BUY else "down")


class PositionMonitor:
    """Checks open trades against their strategy's exits (see the module docstring for the rules).

    Args:
        refuse_flags: quote flags on any leg that stop every exit of the trade (default: all flags).
        max_snapshot_age_s: a chain older than this (market clock) is no price (None: no limit).
        broker / account: written on the closing orders (the broker the order service sends to).
    """

    def __init__(self, *, refuse_flags: QuoteFlag = ALL_FLAGS, max_snapshot_age_s: float | None = 600.0,
                 broker: str = "paper", account: str = "") -> None:
        self.refuse_flags = QuoteFlag(int(refuse_flags))
        self.max_snapshot_age_s = max_snapshot_age_s
        self.broker = broker
        self.account = account

    def check(self, trades: Iterable[Trade], strategies: Mapping[int, StrategyConfig], market: MarketView,
              now_ns: int, *, crash_mode: bool = False) -> list[ExitSignal]:
        """One signal per trade to close (the first rule in priority that fires); trades without a strategy in
        ``strategies`` (manual trades, hedges) are not the monitor's."""
        return list(self.evaluate(trades, strategies, market, now_ns, crash_mode=crash_mode).signals)

    def evaluate(self, trades: Iterable[Trade], strategies: Mapping[int, StrategyConfig], market: MarketView,
                 now_ns: int, *, crash_mode: bool = False) -> MonitorResult:
        """:meth:`check` plus the trades that could not be judged and why."""
        signals: list[ExitSignal] = []
        skipped: list[SkippedExit] = []
        for trade in trades:
            config = strategies.get(trade.id)
            if config is None or not trade.is_open or trade.quantity <= 0:
                continue
            out = self._check_trade(trade, config, market, int(now_ns), crash_mode)
            if isinstance(out, ExitSignal):
                signals.append(out)
            elif out is not None:
                skipped.append(out)
        return MonitorResult(tuple(signals), tuple(skipped))

    # --- one trade -------------------------------------------------------------------------------------------
    def _check_trade(self, trade: Trade, config: StrategyConfig, market: MarketView, now_ns: int,
                     crash_mode: bool) -> ExitSignal | SkippedExit | None:
        close_side = trade.side.opposite
        basis = "natural" if config.price is PriceMode.NATURAL else "mid"
        quote = package_quote(trade.order_legs, market, self.refuse_flags,
                              close_side if basis == "natural" else None)
        bad = self._bad_quote(quote, now_ns)
        if bad:
            due = tuple(self._due_without_price(trade, config, now_ns, crash_mode))
            why = f"{', '.join(r.value for r in due)} exit due but not sent" if due else "not checked"
            return SkippedExit(trade.id, config.name, f"trade #{trade.id}: {why}: {bad}; waiting for a clean quote",
                               due)
        price = quote.natural(close_side) if basis == "natural" else quote.mid
        rule_reason = self._price_rule(trade, config, price, basis)
        if rule_reason is None:
            due = self._due_without_price(trade, config, now_ns, crash_mode)
            rule_reason = (due[0], self._reason(due[0], trade, config, now_ns)) if due else None
        if rule_reason is None:
            return None
        rule, reason = rule_reason
        limit = marketable_limit(trade.order_legs, close_side, quote.natural(close_side))
        request = closing_request(trade, limit=limit, now_ns=now_ns, source="automation", broker=self.broker,
                                  account=self.account)
        return ExitSignal(trade.id, config.name, rule, f"{rule.value}: {reason}", request)

    def _bad_quote(self, quote: PackageQuote, now_ns: int) -> str:
        why = list(quote.unlisted) + list(quote.unquoted)
        if self.max_snapshot_age_s is not None:
            for underlying, t in quote.snapshot_ns.items():
                age = (now_ns - t) / 1e9
                if age > self.max_snapshot_age_s:
                    why.append(f"the {underlying} chain is {age:.0f} s old (limit {self.max_snapshot_age_s:g} s)")
        if not why and not math.isfinite(quote.bid) and not math.isfinite(quote.ask):
            why.append("no package price")
        return "; ".join(why)

    def _price_rule(self, trade: Trade, config: StrategyConfig, price: float,
                    basis: str) -> tuple[ExitRule, str] | None:
        """Take profit, then stop loss, on ``price`` (the cost/value to close per unit, opening convention)."""
        exits = config.exits
        entry = trade.cost_price
        if not math.isfinite(price) or not math.isfinite(entry) or entry <= 0:
            return None  # no percentage of a zero or unknown entry; the non-price rules still apply
        credit = trade.side is Side.SELL
        tp, sl = exits.take_profit_pct, exits.stop_loss_pct
        what = "cost" if credit else "value"
        noun = "credit" if credit else "debit"
        if tp is not None:
            target = entry * (1 - tp / 100) if credit else entry * (1 + tp / 100)
            if (price <= target + _EPS) if credit else (price >= target - _EPS):
                cmp = "<=" if credit else ">="
                return ExitRule.TAKE_PROFIT, (f"{what} to close {price:.2f} ({basis}) {cmp} {target:.2f}, "
                                              f"{tp:g}% of the {entry:.2f} {noun} {'kept' if credit else 'gained'}")
        if sl is not None:
            loss = price - entry if credit else entry - price
            if loss >= sl / 100 * entry - _EPS:
                return ExitRule.STOP_LOSS, (f"{what} to close {price:.2f} ({basis}) is a {loss:.2f} loss, "
                                            f">= {sl:g}% of the {entry:.2f} {noun}")
        return None

    def _due_without_price(self, trade: Trade, config: StrategyConfig, now_ns: int,
                           crash_mode: bool) -> list[ExitRule]:
        """The rules that need no price (regime, DTE, time) firing now, in priority order."""
        exits = config.exits
        today = _et(now_ns).date()
        front = trade.structure.front_expiry
        due = []
        if crash_mode and exits.regime_exit:
            due.append(ExitRule.REGIME)
        if exits.close_dte is not None and (front - today).days <= exits.close_dte:
            due.append(ExitRule.DTE)
        if exits.close_time is not None and front == today and _et(now_ns).time() >= parse_clock(exits.close_time):
            due.append(ExitRule.TIME)
        return due

    @staticmethod
    def _reason(rule: ExitRule, trade: Trade, config: StrategyConfig, now_ns: int) -> str:
        front: date = trade.structure.front_expiry
        now = _et(now_ns)
        if rule is ExitRule.REGIME:
            return "crash mode: the strategy exits when the regime turns to crash"
        if rule is ExitRule.DTE:
            return (f"front expiry {front:%Y-%m-%d} is {(front - now.date()).days} DTE, at or inside the "
                    f"close at {config.exits.close_dte} DTE")
        return (f"{parse_clock(config.exits.close_time):%H:%M} ET reached on expiry day {front:%Y-%m-%d} "
                f"(now {now:%H:%M:%S} ET)")


def _et(now_ns: int) -> datetime:
    return from_ns(now_ns).astimezone(ET)
