"""Alert rules: what the book, the feed and the broker say now -> the alerts to raise.

    engine = AlertEngine(AlertSettings(pnl_loss_usd=2_000))
    for draft in engine.evaluate(inputs):           # after each portfolio refresh / market tick batch
        alert, new = repo.raise_alert(draft, inputs.now_ns)
        if new: notifier.send(alert)

Rules (key = ``"<rule>:<subject>"``, stable across restarts so the repository de-duplicates):

=====================  ========  ==========================================================================
rule                   severity  fires when
=====================  ========  ==========================================================================
limit_warning          warning   a limit's use is at ``warn_pct`` (80%) of its limit or more
limit_breach           critical  ... at ``limit_pct`` (100%) or more (it replaces the warning when both are new)
short_strike           warning   the underlying is at or through a short option's strike (put: spot <= strike)
pnl_loss / pnl_gain    warning / info  day P&L at or below -``pnl_loss_usd`` / at or above +``pnl_gain_usd``
exit_due               warning   the position monitor says an exit of a rule in ``exit_rules`` (dte, time) is due
assignment             warning   a short SPY leg (American) is more than ``assignment_itm_pct`` % in the money
                                 within ``assignment_days`` trading days of its expiry
stale_data             warning   no quote for ``stale_after_s`` of market time while the options market is open
broker_disconnected    critical  the broker is not connected
order_rejected         warning   an order was rejected (each rejection its own key: the order's ref)
breaker                critical  the circuit breaker tripped today
=====================  ========  ==========================================================================

Edge-triggered: a condition raised once is not raised again while it stays true; when it clears it re-arms, so
it is raised again the next time it becomes true. Rejections are events: each ref is raised once. The engine
keeps only that memory; after a restart it raises what is true again and the repository folds repeats of open
alerts. No wall clock: every time is the market clock in the inputs (the backtester drives the same engine).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Protocol

from spx_core.domain.calendar import (
    ET,
    MarketCalendar,
    default_calendar,
    from_ns,
    to_ns,
)
from spx_core.domain.contracts import OptionContract, Right, Root
from spx_core.execution.broker import MarketView
from spx_core.execution.hours import market_open
from spx_core.execution.orders import OrderState
from spx_core.risk.alerts import AlertDraft, Severity
from spx_core.risk.usage import LimitUse
from spx_core.strategies.structure import Leg

__all__ = ["AlertEngine", "AlertInputs", "AlertSettings", "AlertSettingsError"]

_NS = 1_000_000_000
_SEEN_REJECTIONS = 10_000  # refs remembered so a rejection handed in twice is raised once (bounded memory)


class TradeLike(Protocol):
    """What the strike and assignment rules read of a :class:`spx_core.portfolio.trades.Trade`."""

    id: int
    name: str
    legs: tuple[Leg, ...]
    quantity: int
    status: str


class ExitSignalLike(Protocol):
    """What the exit rule reads of a :class:`spx_core.automation.monitor.ExitSignal`."""

    trade_id: int
    rule: str
    reason: str


class TripLike(Protocol):
    """What the breaker rule reads of a :class:`spx_core.risk.breaker.BreakerTrip`."""

    day_ns: int
    time_ns: int
    reason: str
    cancelled: int
    closed: int


class AlertSettingsError(ValueError):
    """An alert setting is out of range (the message names it and the allowed range)."""


@dataclass(frozen=True, slots=True)
class AlertSettings:
    """Thresholds of the alert rules.

    Attributes:
        warn_pct: % of a limit at which it warns (0 < warn_pct < limit_pct).
        limit_pct: % of a limit at which it is critical (> 0).
        pnl_loss_usd: dollars of day loss that alert (positive; None: off).
        pnl_gain_usd: dollars of day gain that alert (positive; None: off).
        stale_after_s: seconds of market time without a quote, market open, that make the data stale (> 0).
        assignment_days: trading days before expiry from which a short SPY leg in the money alerts (>= 0;
            0 = on expiry day only).
        assignment_itm_pct: how far in the money (% of the strike) a short SPY leg must be (>= 0).
        exit_rules: the monitor's exit rules that alert when due.
    """

    warn_pct: float = 80.0
    limit_pct: float = 100.0
    pnl_loss_usd: float | None = None
    pnl_gain_usd: float | None = None
    stale_after_s: float = 30.0
    assignment_days: int = 1
    assignment_itm_pct: float = 0.0
    exit_rules: tuple[str, ...] = ("dte", "time")

    def __post_init__(self) -> None:
        if not 0 < self.limit_pct:
            raise AlertSettingsError(f"limit_pct {self.limit_pct} must be above 0 (% of the limit)")
        if not 0 < self.warn_pct < self.limit_pct:
            raise AlertSettingsError(f"warn_pct {self.warn_pct} must be above 0 and below limit_pct "
                                     f"{self.limit_pct} (% of the limit)")
        for name in ("pnl_loss_usd", "pnl_gain_usd"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise AlertSettingsError(f"{name} {value} must be a positive dollar amount, or None for no alert")
        if not self.stale_after_s > 0:
            raise AlertSettingsError(f"stale_after_s {self.stale_after_s} must be above 0 seconds")
        if not isinstance(self.assignment_days, int) or self.assignment_days < 0:
            raise AlertSettingsError(f"assignment_days {self.assignment_days!r} must be a whole number >= 0")
        if not self.assignment_itm_pct >= 0:
            raise AlertSettingsError(f"assignment_itm_pct {self.assignment_itm_pct} must be >= 0 (% of the strike)")
        object.__setattr__(self, "exit_rules", tuple(str(r) for r in self.exit_rules))


@dataclass(frozen=True, slots=True)
class AlertInputs:
    """What the rules read at one instant (the caller gathers it; nothing here reads a clock).

    Attributes:
        now_ns: market clock (UTC ns).
        usage: limit use of the active profile (``LimitUse``; NaN pct = unknown, skipped).
        trades: the open trades (closed ones are ignored).
        spots: underlying ("SPX", "SPY") -> spot; an underlying missing here is read from ``market``.
        market: the market view (spots fallback), or None.
        last_data_ns: market time of the latest quote (None: none yet).
        broker_connected, broker_name: the broker's link.
        rejected: orders rejected since the last evaluation.
        exits_due: the monitor's exit signals (``.trade_id .rule .reason``).
        day_pnl: dollars of P&L today (NaN: unknown, skipped).
        trip: today's breaker trip, or None.
        profile_name: the active limit profile (named in limit messages).
    """

    now_ns: int
    usage: Sequence[LimitUse] = ()
    trades: Sequence[TradeLike] = ()
    spots: Mapping[str, float] = field(default_factory=dict)
    market: MarketView | None = None
    last_data_ns: int | None = None
    broker_connected: bool = True
    broker_name: str = "broker"
    rejected: Sequence[OrderState] = ()
    exits_due: Sequence[ExitSignalLike] = ()
    day_pnl: float = math.nan
    trip: TripLike | None = None
    profile_name: str = ""

    def spot(self, underlying: str) -> float:
        """The spot of ``underlying`` (NaN when neither ``spots`` nor the market has it)."""
        value = self.spots.get(underlying)
        if value is None and self.market is not None:
            snap = self.market.snapshot(underlying)
            value = None if snap is None else snap.underlying_price
        return math.nan if value is None else float(value)


class AlertEngine:
    """Evaluates the rules and remembers which conditions are raised (edge trigger; see the module docstring)."""

    def __init__(self, settings: AlertSettings | None = None, *, calendar: MarketCalendar | None = None) -> None:
        self.settings = settings or AlertSettings()
        self._calendar = calendar
        self._active: set[str] = set()
        self._seen_rejections: OrderedDict[str, None] = OrderedDict()
        self._started_ns: int | None = None

    @property
    def active(self) -> frozenset[str]:
        """Keys of the conditions true at the last evaluation (raised once, not again until they clear)."""
        return frozenset(self._active)

    def evaluate(self, inputs: AlertInputs) -> list[AlertDraft]:
        """The alerts to raise now: conditions that became true since the last call, and new rejections."""
        if self._started_ns is None:
            self._started_ns = inputs.now_ns
        now: dict[str, AlertDraft] = {}
        for rule in (self._limits, self._short_strikes, self._pnl, self._exits, self._assignment,
                     self._stale, self._broker, self._breaker):
            for draft in rule(inputs):
                now.setdefault(draft.key, draft)
        fresh = [d for k, d in now.items() if k not in self._active]
        breached = {d.key.partition(":")[2] for d in fresh if d.rule == "limit_breach"}
        # a limit crossing both levels at once is one critical alert, not a warning and a critical
        fresh = [d for d in fresh if not (d.rule == "limit_warning" and d.key.partition(":")[2] in breached)]
        self._active = set(now)
        return fresh + self._rejections(inputs)

    # --- rules: each yields the drafts of the conditions true now ----------------------------------------
    def _limits(self, x: AlertInputs) -> list[AlertDraft]:
        out = []
        profile = f" ({x.profile_name})" if x.profile_name else ""
        for use in x.usage:
            if not math.isfinite(use.pct):
                continue
            text = (f"{use.label[:1].upper()}{use.label[1:]} {_figure(use.value, use.unit)} is {use.pct:.0f}% "
                    f"of the {_figure(use.limit, use.unit)} limit{profile}")
            if use.pct >= self.settings.limit_pct:
                out.append(AlertDraft(f"limit_breach:{use.name}", "limit_breach", Severity.CRITICAL,
                                      f"{text}: orders that add to it are refused"))
            if use.pct >= self.settings.warn_pct:
                out.append(AlertDraft(f"limit_warning:{use.name}", "limit_warning", Severity.WARNING, text))
        return out

    def _short_strikes(self, x: AlertInputs) -> list[AlertDraft]:
        out = []
        today = _et_date(x.now_ns)
        for trade, leg in _short_legs(x.trades):
            c = leg.contract
            if c.expiry < today:  # expired, waiting for settlement: the strike no longer means a touch
                continue
            spot = x.spot(leg.underlying)
            touched = spot <= c.strike if c.right is Right.PUT else spot >= c.strike
            if not touched:  # NaN spot compares False: unknown is not touched
                continue
            where = "at or below" if c.right is Right.PUT else "at or above"
            out.append(AlertDraft(
                f"short_strike:{trade.id}:{_occ(c)}", "short_strike", Severity.WARNING,
                f"Short strike touched: {leg.underlying} {spot:,.2f} is {where} the short {_leg_text(c)} of "
                f"trade {trade.id} ({trade.name})"))
        return out

    def _pnl(self, x: AlertInputs) -> list[AlertDraft]:
        s, pnl = self.settings, x.day_pnl
        if not math.isfinite(pnl):
            return []
        day = _et_date(x.now_ns).isoformat()
        if s.pnl_loss_usd is not None and pnl <= -s.pnl_loss_usd:
            return [AlertDraft(f"pnl_loss:{day}", "pnl_loss", Severity.WARNING,
                               f"Day P&L {_money(pnl)} is past the {_money(-s.pnl_loss_usd)} loss alert")]
        if s.pnl_gain_usd is not None and pnl >= s.pnl_gain_usd:
            return [AlertDraft(f"pnl_gain:{day}", "pnl_gain", Severity.INFO,
                               f"Day P&L {_money(pnl)} is past the {_money(s.pnl_gain_usd)} gain alert")]
        return []

    def _exits(self, x: AlertInputs) -> list[AlertDraft]:
        out = []
        for signal in x.exits_due:
            rule = str(signal.rule)
            if rule not in self.settings.exit_rules:
                continue
            strategy = getattr(signal, "strategy", "")
            whose = f" ({strategy})" if strategy else ""
            reason = signal.reason if signal.reason.startswith(f"{rule}:") else f"{rule}: {signal.reason}"
            out.append(AlertDraft(f"exit_due:{signal.trade_id}:{rule}", "exit_due", Severity.WARNING,
                                  f"Exit due on trade {signal.trade_id}{whose}: {reason}"))
        return out

    def _assignment(self, x: AlertInputs) -> list[AlertDraft]:
        out = []
        today = _et_date(x.now_ns)
        cal = self._cal()
        for trade, leg in _short_legs(x.trades):
            c = leg.contract
            if c.root is not Root.SPY or c.expiry < today:
                continue
            days = cal.trading_days_between(today, c.expiry)
            spot = x.spot(leg.underlying)
            itm = (c.strike - spot if c.right is Right.PUT else spot - c.strike) / c.strike * 100.0
            if days > self.settings.assignment_days or not itm > self.settings.assignment_itm_pct:
                continue
            when = "expiring today" if days == 0 else f"{days} trading day{'s' * (days != 1)} to expiry"
            out.append(AlertDraft(
                f"assignment:{trade.id}:{_occ(c)}", "assignment", Severity.WARNING,
                f"Assignment risk: short {_leg_text(c)} of trade {trade.id} ({trade.name}) is {itm:.1f}% in the "
                f"money (SPY {spot:,.2f}), {when}; close or roll it"))
        return out

    def _stale(self, x: AlertInputs) -> list[AlertDraft]:
        is_open, session_open_ns = self._session(x.now_ns)
        if not is_open:
            return []
        # a quote from before today's open does not make the open stale: count from the open
        since = max(x.last_data_ns if x.last_data_ns is not None else self._started_ns or x.now_ns, session_open_ns)
        age_s = (x.now_ns - since) / _NS
        if age_s < self.settings.stale_after_s:
            return []
        what = "No quote received" if x.last_data_ns is None else "No new quote"
        return [AlertDraft("stale_data:feed", "stale_data", Severity.WARNING,
                           f"{what} for {age_s:.0f} s while the market is open: prices are stale; check the "
                           f"market data connection")]

    def _broker(self, x: AlertInputs) -> list[AlertDraft]:
        if x.broker_connected:
            return []
        return [AlertDraft(f"broker_disconnected:{x.broker_name}", "broker_disconnected", Severity.CRITICAL,
                           f"Broker {x.broker_name} disconnected: orders cannot be sent or tracked until it "
                           f"reconnects")]

    def _breaker(self, x: AlertInputs) -> list[AlertDraft]:
        trip = x.trip
        if trip is None:
            return []
        day = _et_date(trip.day_ns + 12 * 3600 * _NS).isoformat()  # day_ns is midnight ET: noon is that day
        return [AlertDraft(f"breaker:{day}", "breaker", Severity.CRITICAL,
                           f"Circuit breaker tripped: {trip.reason}; {trip.cancelled} working orders cancelled, "
                           f"{trip.closed} trades closed; new entries refused until the next session")]

    def _rejections(self, x: AlertInputs) -> list[AlertDraft]:
        out = []
        for state in x.rejected:
            if state.ref in self._seen_rejections:
                continue
            self._seen_rejections[state.ref] = None
            if len(self._seen_rejections) > _SEEN_REJECTIONS:
                self._seen_rejections.popitem(last=False)
            name = state.request.name or state.request.kind
            reason = state.reason or "no reason given"
            out.append(AlertDraft(f"order_rejected:{state.ref}", "order_rejected", Severity.WARNING,
                                  f"Order {state.ref} ({name}, {state.request.side.value} {state.request.quantity}) "
                                  f"rejected: {reason}"))
        return out

    # --- helpers ---------------------------------------------------------------------------------------
    def _cal(self) -> MarketCalendar:
        return self._calendar if self._calendar is not None else default_calendar()

    def _session(self, now_ns: int) -> tuple[bool, int]:
        """(options market open now, today's session open ns); the check is hours.market_open's."""
        cal = self._cal()
        today = _et_date(now_ns)
        if not cal.is_trading_day(today):
            return False, 0
        # a reference SPXW series that trades all of today's session (it expires a week or more later)
        reference = OptionContract(root=Root.SPXW, expiry=cal.next_trading_day(today + timedelta(days=7)),
                                   strike=5000.0, right=Right.CALL)
        return market_open(reference, now_ns, cal)[0], to_ns(cal.session_open(today))


def _short_legs(trades: Sequence[TradeLike]) -> list[tuple[TradeLike, Leg]]:
    return [(t, leg) for t in trades if t.status == "open" for leg in t.legs if leg.ratio * t.quantity < 0]


def _et_date(time_ns: int) -> date:
    return from_ns(time_ns).astimezone(ET).date()


def _occ(c: OptionContract) -> str:
    return c.occ_symbol.replace(" ", "")


def _leg_text(c: OptionContract) -> str:
    return f"{c.root.value} {c.expiry:%Y-%m-%d} {c.strike:g}{c.right.value}"


def _money(dollars: float) -> str:
    sign = "-" if dollars < 0 else "+"
    return f"{sign}${abs(dollars):,.0f}"


def _figure(value: float, unit: str) -> str:
    """A limit figure as a trader reads it: $1,234 / 2.0% / 1.50x / 182."""
    if not math.isfinite(value):
        return "?"
    if unit == "$":
        return f"{'-' if value < 0 else ''}${abs(value):,.0f}"
    if unit == "%":
        return f"{value:.1f}%"
    if unit == "x":
        return f"{value:.2f}x"
    if abs(value) >= 100 or float(value).is_integer():
        return f"{value:,.0f}{unit}"
    return f"{value:,.2f}{unit}"
