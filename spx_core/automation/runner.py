"""The automation runner: entries on schedule, the monitor's exits, then hedges, every decision recorded.

    runner = AutomationRunner(DecisionEngine(), PositionMonitor(), place=session.place,
                              record=repo.record_decision, stage=ticket.stage)
    report = runner.step(now_ns, strategies, context_for, trades, decisions, market)

One :meth:`AutomationRunner.step` (the app calls it on every refresh, the backtester on every simulated step;
the same code path, no wall clock, no Qt):

1. **Entries.** For each *enabled* stored strategy, the entry slots due since its last entry decision
   (:func:`~spx_core.automation.schedule.due_entries`; the last one is read from the stored ``decisions``, so a
   restart never enters twice for one slot) -> ``engine.decide`` -> the decision is recorded. One decision per
   step covers every slot due in it (the reasons name them). A TRADE in *auto* mode is placed through
   ``place`` (the gate path: ``TradingSession.place`` / ``OrderService.place``, never a broker) and its reasons
   end with the order's status; an order the gate refuses (or the broker rejects on submit) is recorded as a
   SKIP whose first reason is ``"order refused: <the gate's reason>"``. In *manual* mode the order goes to
   ``stage`` (the app puts it in the ticket) and the TRADE decision ends with ``"staged: ..."``.
2. **Exits.** The open trades each stored strategy opened (enabled or not: a disabled strategy's open trades
   keep their exits) go to the :class:`~spx_core.automation.monitor.PositionMonitor`; each exit is placed (or
   staged, by the strategy's mode) and recorded as a TRADE whose first reason is ``"<rule>: ..."``; a refused
   exit is a SKIP with the same first reason and ``"order refused: ..."`` after it. A trade with a working
   closing order (``working``) is left alone; a manual exit is staged once per trade and rule.
3. **Hedges.** For each enabled strategy with a ``hedge`` config, the
   :class:`~spx_core.automation.hedger.DeltaHedger` on the portfolio delta ($/SPX point; given, or computed from
   the open trades on the strategy's market context) -> a decision of strategy ``"<name>/hedge"`` whose first
   reason starts ``"hedge: "``.

Crash mode (the regime exit): given by the caller, or, per strategy, "its regime filter no longer passes on the
current context" (a known regime outside the allowed set; an unknown regime is not a crash).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from spx_core.automation.config import (
    EntryFilters,
    StoredStrategy,
    StrategyConfig,
    StrategyMode,
)
from spx_core.automation.engine import DecisionEngine, MarketContext
from spx_core.automation.entry_checks import filter_failures
from spx_core.automation.hedger import DeltaHedger, HedgeError, context_delta
from spx_core.automation.monitor import ExitSignal, PositionMonitor, SkippedExit
from spx_core.automation.schedule import due_entries
from spx_core.automation.summary import is_exit_decision, strategy_of
from spx_core.domain.calendar import ET, MarketCalendar, from_ns
from spx_core.execution.broker import MarketView
from spx_core.execution.orders import Intent, OrderRequest, OrderState, OrderStatus
from spx_core.portfolio.decisions import Action, TradeDecision
from spx_core.portfolio.trades import Trade
from spx_core.risk.limits import PortfolioState

__all__ = ["AutomationRunner", "StepReport", "hedge_strategy"]

log = logging.getLogger(__name__)

_STAGED = "staged: in the order ticket for the user to send (manual mode)"


def hedge_strategy(name: str) -> str:
    """The decision strategy name of ``name``'s hedges."""
    return f"{name}/hedge"


@dataclass(frozen=True, slots=True)
class StepReport:
    """What one step did.

    Attributes:
        decisions: every decision recorded, in order (entries, exits, hedges).
        sent: orders the gate accepted (placed).
        staged: orders handed to ``stage`` (manual mode).
        exits: the monitor's exit signals acted on this step.
        notes: why something was not done (an exit not judged on a bad quote, a hedge with no delta, ...).
        skipped: the trades the monitor could not judge; those with ``due`` rules are exits due but not sent.
    """

    decisions: tuple[TradeDecision, ...] = ()
    sent: tuple[OrderRequest, ...] = ()
    staged: tuple[OrderRequest, ...] = ()
    exits: tuple[ExitSignal, ...] = ()
    notes: tuple[str, ...] = ()
    skipped: tuple[SkippedExit, ...] = ()


@dataclass
class _Step:
    """The report being built during one step."""

    decisions: list[TradeDecision] = field(default_factory=list)
    sent: list[OrderRequest] = field(default_factory=list)
    staged: list[OrderRequest] = field(default_factory=list)
    exits: list[ExitSignal] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    skipped: list[SkippedExit] = field(default_factory=list)

    def report(self) -> StepReport:
        return StepReport(tuple(self.decisions), tuple(self.sent), tuple(self.staged), tuple(self.exits),
                          tuple(self.notes), tuple(self.skipped))


class AutomationRunner:
    """Entries, exits and hedges of the stored strategies (see the module docstring).

    Args:
        engine: the decision engine.
        monitor: the position monitor (its ``broker``/``account`` are written on the closing orders).
        place: ``request -> result`` with ``.verdict.ok``, ``.verdict.message`` and ``.state`` (the gate path).
        record: stores one decision, returns its id (``OrderRepository.record_decision``).
        stage: puts an order in the ticket for the user (manual mode); None: manual TRADEs are recorded as SKIPs.
        broker / account: written on entry orders (the engine leaves the default) and on hedges.
        calendar: the exchange calendar the schedule reads (None: the default).
        cancel: cancels a working order by ref (``TradingSession.cancel``): an auto exit first cancels the unfilled
            rest of the trade's opening order.
    """

    def __init__(self, engine: DecisionEngine, monitor: PositionMonitor, *,
                 place: Callable[[OrderRequest], Any], record: Callable[[TradeDecision], int],
                 stage: Callable[[OrderRequest], None] | None = None, broker: str | None = None,
                 account: str | None = None, calendar: MarketCalendar | None = None,
                 cancel: Callable[[str], None] | None = None) -> None:
        self.engine = engine
        self.monitor = monitor
        self._place = place
        self._record = record
        self._stage = stage
        self._cancel_ref = cancel
        self.broker = monitor.broker if broker is None else broker
        self.account = monitor.account if account is None else account
        self.calendar = calendar
        self._last_entry: dict[str, int] = {}
        self._hedgers: dict[str, DeltaHedger] = {}
        self._staged_exits: set[tuple[int, str]] = set()
        self._owners: dict[int, str] = {}  # trade id -> strategy, remembered across steps (and days)
        self._own: dict[str, TradeDecision] = {}  # order ref -> the TRADE decision this runner recorded for it

    # --- the step ----------------------------------------------------------------------------------------------
    def step(self, now_ns: int, strategies: Sequence[StoredStrategy],
             context_for: Callable[[StrategyConfig], MarketContext | None], trades: Iterable[Trade],
             decisions: Iterable[TradeDecision], market: MarketView, *, state: PortfolioState | None = None,
             working: Iterable[OrderState] = (), crash_mode: bool | None = None,
             portfolio_delta: float | None = None) -> StepReport:
        """Entries, then exits, then hedges at ``now_ns`` (market clock).

        ``trades``: the account's trades (open ones are monitored); ``decisions``: the stored decisions, reaching
        back to the opening of the oldest open trade (its entry decision says which strategy's exits apply: a
        trade whose entry decision is not given, and that this runner has not seen opened, gets no exits) and at
        least to the previous session (the last entry and hedge of each strategy are read from them);
        ``state``: the book for the engine's limit-profile checks; ``working``: working orders (a trade with a
        working closing order is not closed again); ``crash_mode`` / ``portfolio_delta``: see the module doc.
        """
        now_ns = int(now_ns)
        trades = list(trades)
        decisions = list(decisions)
        out = _Step()
        context = _Contexts(context_for)
        for stored in strategies:
            if stored.enabled:
                self._entry(stored, now_ns, context, decisions, state, out)
        self._exits(strategies, now_ns, context, trades, decisions + out.decisions, market, working, crash_mode, out)
        delta = portfolio_delta
        for stored in strategies:
            if stored.enabled and stored.config.hedge is not None:
                delta = self._hedge(stored, now_ns, context, trades, decisions, market, delta, out)
        return out.report()

    # --- entries -------------------------------------------------------------------------------------------
    def last_entry_ns(self, name: str, decisions: Iterable[TradeDecision]) -> int | None:
        """When strategy ``name`` last decided an entry (stored decisions and this runner's own), or None."""
        times = [d.time_ns for d in decisions if d.strategy == name and not is_exit_decision(d)]
        if name in self._last_entry:
            times.append(self._last_entry[name])
        return max(times, default=None)

    def _entry(self, stored: StoredStrategy, now_ns: int, context: Callable[[StrategyConfig], MarketContext | None],
               decisions: list[TradeDecision], state: PortfolioState | None, out: _Step) -> None:
        config = stored.config
        slots = due_entries(config, self.last_entry_ns(config.name, decisions), now_ns, self.calendar)
        if not slots:
            return
        slot_text = "slot: " + ", ".join(f"{from_ns(s).astimezone(ET):%H:%M} ET" for s in slots)
        def skip(why: str) -> TradeDecision:
            return TradeDecision(now_ns, config.name, Action.SKIP, (why, slot_text), config_hash=config.config_hash,
                                 limit_profile=config.limit_profile)

        request = None
        try:  # one strategy failing must not starve the others, nor the exits that follow
            ctx = context(config)
            if ctx is None:
                decision = skip(context.errors.get(config.name)
                                or "data: no market context (no chain yet); the entry waits for the next slot")
            else:
                decision, request = self.engine.decide(config, ctx, now_ns, state=state)
                decision = replace(decision, reasons=decision.reasons + (slot_text,))
        except Exception as exc:
            log.exception("strategy %s: the entry decision failed", config.name)
            decision, request = skip(f"error: the decision failed ({type(exc).__name__}: {exc})"), None
        if request is not None:
            request = self._for_broker(request)
            decision = self._act(stored.mode, request, decision, out)
        self._last_entry[config.name] = now_ns
        self._keep(decision, out)

    def _for_broker(self, request: OrderRequest) -> OrderRequest:
        if request.broker == self.broker and request.account == self.account:
            return request
        return replace(request, broker=self.broker, account=self.account)

    # --- acting on one order -------------------------------------------------------------------------------
    def _act(self, mode: StrategyMode, request: OrderRequest, decision: TradeDecision, out: _Step) -> TradeDecision:
        """Place (auto) or stage (manual) ``request``; the decision as it is to be recorded."""
        head, tail = decision.reasons[:1], decision.reasons[1:]
        exit_like = bool(head) and not head[0].startswith("entry:")  # exits and hedges keep their rule first
        if mode is StrategyMode.MANUAL:
            if self._stage is None:
                why = "order not staged: manual mode and no order ticket to stage it in; switch the strategy to auto"
                return self._refused(decision, why, exit_like)
            self._stage(request)
            out.staged.append(request)
            return replace(decision, reasons=decision.reasons + (_STAGED,))
        try:
            ok, why = _outcome(self._place(request), request)
        except Exception as exc:  # e.g. a ref already used by another order: recorded, the step goes on
            log.exception("order %s: place failed", request.ref)
            ok, why = False, f"{type(exc).__name__}: {exc}"
        if not ok:
            return self._refused(decision, f"order refused: {why}", exit_like)
        out.sent.append(request)
        return replace(decision, reasons=head + tail + (why,))

    @staticmethod
    def _refused(decision: TradeDecision, why: str, exit_like: bool) -> TradeDecision:
        reasons = decision.reasons[:1] + (why,) + decision.reasons[1:] if exit_like else (why,) + decision.reasons
        return replace(decision, action=Action.SKIP.value, reasons=reasons, order_ref=None)

    def _keep(self, decision: TradeDecision, out: _Step) -> None:
        self._record(decision)
        out.decisions.append(decision)
        if decision.traded and decision.order_ref is not None:
            self._own[decision.order_ref] = decision

    # --- exits -------------------------------------------------------------------------------------------------
    def _exits(self, strategies: Sequence[StoredStrategy], now_ns: int,
               context: Callable[[StrategyConfig], MarketContext | None], trades: list[Trade],
               decisions: list[TradeDecision], market: MarketView, working: Iterable[OrderState],
               crash_mode: bool | None, out: _Step) -> None:
        by_name = {s.name: s for s in strategies}
        self._owners.update(strategy_of(trades, [*self._own.values(), *decisions]))
        owners = self._owners
        working = [s for s in working if s.is_working]
        closing = {s.request.trade_id for s in working if s.request.intent is Intent.CLOSE}
        opening = [s.ref for s in working if s.request.intent is Intent.OPEN]
        groups: dict[str, list[Trade]] = {}
        for trade in trades:
            name = owners.get(trade.id)
            if name in by_name and trade.is_open and trade.quantity > 0:
                if trade.id in closing:
                    out.notes.append(f"trade #{trade.id}: a closing order is working; no new exit")
                else:
                    groups.setdefault(name, []).append(trade)
        for name, group in groups.items():
            stored = by_name[name]
            crash = crash_mode if crash_mode is not None else self._crash(stored.config, context)
            result = self.monitor.evaluate(group, {t.id: stored.config for t in group}, market, now_ns,
                                           crash_mode=crash)
            out.notes.extend(s.reason for s in result.skipped)
            out.skipped.extend(result.skipped)
            by_id = {t.id: t for t in group}
            for signal in result.signals:
                entry_refs = [r for r in opening if r in by_id[signal.trade_id].order_refs]
                self._exit(stored, signal, now_ns, entry_refs, out)

    def _exit(self, stored: StoredStrategy, signal: ExitSignal, now_ns: int, entry_refs: list[str],
              out: _Step) -> None:
        """Act on one exit; in auto mode the trade's still-working opening orders are cancelled first (their late
        fills would reopen the trade the exit closes)."""
        key = (signal.trade_id, signal.rule.value)
        if stored.mode is StrategyMode.MANUAL and key in self._staged_exits:
            return  # staged once; the user decides
        config = stored.config
        reasons = (signal.reason, f"trade #{signal.trade_id}")
        if entry_refs and stored.mode is StrategyMode.AUTO:
            reasons += (self._cancel_entries(entry_refs),)
        decision = TradeDecision(now_ns, config.name, Action.TRADE, reasons, config_hash=config.config_hash,
                                 limit_profile=config.limit_profile, order_ref=signal.request.ref)
        decision = self._act(stored.mode, signal.request, decision, out)
        if stored.mode is StrategyMode.MANUAL and decision.traded:
            self._staged_exits.add(key)
        out.exits.append(signal)
        self._keep(decision, out)

    def _cancel_entries(self, refs: list[str]) -> str:
        """Cancel ``refs`` (working opening orders); the reason to record."""
        if self._cancel_ref is None:
            return f"opening order {', '.join(refs)} still working (no cancel given): its late fills reopen the trade"
        for ref in refs:
            try:
                self._cancel_ref(ref)
            except Exception as exc:
                log.exception("order %s: cancel failed", ref)
                return f"cancel of the opening order {ref} failed ({type(exc).__name__}: {exc})"
        return f"cancelled the unfilled rest of opening order {', '.join(refs)}"

    @staticmethod
    def _crash(config: StrategyConfig, context: Callable[[StrategyConfig], MarketContext | None]) -> bool:
        """The strategy's regime filter fails on a known regime (an unknown one is not a crash)."""
        if not config.exits.regime_exit or config.filters.regimes is None:
            return False
        ctx = context(config)
        if ctx is None:
            return False
        only_regime = EntryFilters(regimes=config.filters.regimes, missing_passes=True)
        return bool(filter_failures(only_regime, iv_rank=ctx.iv_rank, vix=ctx.vix, regimes=ctx.regime))

    # --- hedges ------------------------------------------------------------------------------------------------
    def _hedge(self, stored: StoredStrategy, now_ns: int, context: Callable[[StrategyConfig], MarketContext | None],
               trades: list[Trade], decisions: list[TradeDecision], market: MarketView, delta: float | None,
               out: _Step) -> float | None:
        """Hedge for one strategy; returns the portfolio delta after it (for the next hedged strategy)."""
        config = stored.config
        name = hedge_strategy(config.name)
        hedger = self._hedger(config, decisions)
        if delta is None:
            delta, why = context_delta(trades, context(config))
            if delta is None:
                out.notes.append(f"{name}: {why}")
                return None
        try:
            hedge = hedger.plan(delta, market, now_ns)
        except HedgeError as exc:
            out.notes.append(f"{name}: {exc}")
            return delta
        if hedge is None:
            return delta
        hedger.last_hedge_ns = now_ns  # sent or refused, the next try waits for the interval
        decision = TradeDecision(now_ns, name, Action.TRADE, (hedge.reason,), config_hash=config.config_hash,
                                 limit_profile=config.limit_profile, order_ref=hedge.request.ref)
        decision = self._act(stored.mode, self._for_broker(hedge.request), decision, out)
        self._keep(decision, out)
        return delta + hedge.delta_change if decision.traded else delta

    def _hedger(self, config: StrategyConfig, decisions: list[TradeDecision]) -> DeltaHedger:
        hedger = self._hedgers.get(config.name)
        if hedger is None or hedger.config != config.hedge:
            name = hedge_strategy(config.name)
            last = max((d.time_ns for d in decisions if d.strategy == name), default=None)
            hedger = DeltaHedger(config.hedge, broker=self.broker, account=self.account, last_hedge_ns=last)
            self._hedgers[config.name] = hedger
        return hedger


class _Contexts:
    """``context_for`` called at most once per strategy and step; a failing call is logged and gives None (its
    error, for the entry's SKIP, in ``errors``)."""

    def __init__(self, context_for: Callable[[StrategyConfig], MarketContext | None]) -> None:
        self._context_for = context_for
        self._cache: dict[str, MarketContext | None] = {}
        self.errors: dict[str, str] = {}

    def __call__(self, config: StrategyConfig) -> MarketContext | None:
        if config.name not in self._cache:
            try:
                self._cache[config.name] = self._context_for(config)
            except Exception as exc:
                log.exception("strategy %s: the market context failed", config.name)
                self._cache[config.name] = None
                self.errors[config.name] = f"error: the market context failed ({type(exc).__name__}: {exc})"
        return self._cache[config.name]


def _outcome(result: Any, request: OrderRequest) -> tuple[bool, str]:
    """(accepted, the reason to record) of a ``place`` result: the gate's refusal or the order's status."""
    verdict = result.verdict
    if not verdict.ok:
        return False, verdict.message
    state = result.state
    if state.status is OrderStatus.REJECTED:
        return False, state.reason or "rejected by the broker"
    return True, f"order {request.ref}: {state.status.value} at {_clock(state.updated_ns)}"


def _clock(ns: int) -> str:
    return f"{from_ns(ns).astimezone(ET):%H:%M:%S} ET" if ns else "?"
