"""OpsAutomation: the strategies of the Automation panel run on the live market by the AutomationRunner.

After each portfolio refresh (driven by :class:`app.ops_session.OpsSession`), when a strategy is enabled and no
step is running, one :meth:`AutomationRunner.step` runs in a worker thread (:class:`JobRunner`): entries due by the
market clock are decided (scan, filters, sizing: the heavy part), then the monitor's exits and the hedges. What the
runner does to the world goes through callbacks that run on the GUI thread, as every order of the app does:
``place`` (auto mode: ``TradingSession.place``, the pre-trade gate), ``stage`` (manual mode: the order ticket opens
with the order, ``AppContext.request_order``) and ``record`` (the decision into the order store). The worker waits
for each such call (at most :data:`CALL_TIMEOUT_S`); the GUI thread never waits for the worker.

The market context a strategy's filters read: the latest SPX snapshot from a frozen copy of the session's market
view, its chain IVs and fitted surface from the window's shared fits (one fit per snapshot for every panel), and
IV rank / VIX / regime from the Market panel's last state when it has one.

Daily summaries: today's rows are upserted into the store's ``daily_summaries`` whenever the view is computed
(only rows whose figures moved are written), at the market close and on a new market day (the previous day's final
rows), and at shutdown (:class:`~spx_core.automation.summary_keeper.SummaryKeeper`), so past days remain.

Events (Qt signals):
    changed(): strategies, decisions or settings changed (the panel re-reads :meth:`view`).
    failed(str): a step failed (one line; the OpsSession raises it as an alert).
    decided(int, TradeDecision): a decision was recorded with that id (the OpsSession notifies it).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal, Slot

from app.trading_types import FeedMarket, day_start_ns
from app.widgets.job_runner import JobRunner

if TYPE_CHECKING:
    from app.shared_fits import SharedFits
    from app.trading import TradingSession
    from spx_core.storage import Store

__all__ = ["CALL_TIMEOUT_S", "AutomationView", "automation_view", "market_context", "OpsAutomation", "seed_presets"]

log = logging.getLogger(__name__)

#: Seconds the worker waits for the GUI thread to place / stage / record (a stuck GUI fails the step).
CALL_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class AutomationView:
    """What the Automation panel shows.

    Attributes:
        strategies: the stored strategies (``StoredStrategy``: config, enabled, mode), by name.
        next_entry: strategy name -> its next entry instant (UTC ns, market clock) or None (none today/soon).
        decisions: today's decisions (market day of the clock), oldest first.
        summaries: today's ``DailySummary`` rows (``day_summaries``): the account ("") then each strategy with a
            decision or a trade opened or closed today.
        now_ns: the market clock the view was made at.
    """

    strategies: tuple[Any, ...] = ()
    next_entry: dict[str, int | None] = field(default_factory=dict)
    decisions: tuple[Any, ...] = ()
    summaries: tuple[Any, ...] = ()
    now_ns: int = 0


def seed_presets(repo: Any, now_ns: int) -> int:
    """First run: store every preset strategy, disabled and in manual mode; returns how many were added."""
    from spx_core.automation.presets import PRESETS

    if repo.strategies():
        return 0
    for config in PRESETS.values():
        repo.save(config, False, "manual", now_ns)
    return len(PRESETS)


class _GuiCalls(QObject):
    """Runs a function on the thread that owns this object (the GUI thread) for a worker, and waits for it."""

    _call = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._call.connect(self._run)

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        if threading.current_thread() is threading.main_thread():
            return fn(*args)  # already on the GUI thread (a synchronous step): no hop
        future: Future = Future()
        self._call.emit((fn, args, future))
        return future.result(timeout=CALL_TIMEOUT_S)

    @Slot(object)
    def _run(self, item: tuple[Callable[..., Any], tuple[Any, ...], Future]) -> None:
        fn, args, future = item
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(fn(*args))
        except Exception as exc:  # handed to the worker, which reports the step as failed
            future.set_exception(exc)


class OpsAutomation(QObject):
    """See the module docstring."""

    changed = Signal()
    failed = Signal(str)
    decided = Signal(object, object)

    def __init__(self, trading: TradingSession, store: Store, *, fits: SharedFits | None = None,
                 stage: Callable[[Any], None] | None = None, market_state: Callable[[], Any] | None = None,
                 parent: QObject | None = None) -> None:
        from spx_core.automation.engine import DecisionEngine
        from spx_core.automation.summary_keeper import SummaryKeeper
        from spx_core.storage.strategy_repo import StrategyRepository
        from spx_core.storage.summary_repo import SummaryRepository

        super().__init__(parent)
        self.trading = trading
        self.repo = StrategyRepository(store)
        self.summaries = SummaryKeeper(SummaryRepository(store), trading.repo)
        self._fits = fits
        self._stage = stage
        self._market_state = market_state or (lambda: None)
        self._gui = _GuiCalls(self)
        self.engine = DecisionEngine()
        self._runner: Any = None
        self._jobs = JobRunner("automation", self)
        self._jobs.finished.connect(self._on_step)
        self._jobs.failed.connect(self.failed)
        self.last_exits: tuple[Any, ...] = ()
        self.last_report: Any = None
        self.steps = 0
        self._decisions: list[Any] | None = None  # since _since: read once, then appended as recorded
        self._since = 0
        seed_presets(self.repo, trading.market.now_ns())
        self._strategies = list(self.repo.strategies())

    # --- strategies -----------------------------------------------------------------------------------------
    @property
    def strategies(self) -> list[Any]:
        return list(self._strategies)

    def set_enabled(self, name: str, on: bool) -> None:
        self.repo.set_enabled(name, bool(on), self.trading.market.now_ns())
        self._reload()

    def set_mode(self, name: str, mode: str) -> None:
        self.repo.set_mode(name, mode, self.trading.market.now_ns())
        self._reload()

    def _reload(self) -> None:
        self._strategies = list(self.repo.strategies())
        self.changed.emit()

    # --- decisions ------------------------------------------------------------------------------------------
    def decisions(self) -> list[Any]:
        """Today's decisions (the market day of the clock), oldest first."""
        start = day_start_ns(self.trading.market.now_ns()) if self.trading.market.now_ns() else 0
        return [d for d in self._read_since(start) if d.time_ns >= start]

    def book_decisions(self, trades: tuple[Any, ...]) -> list[Any]:
        """Decisions since today or the oldest open trade's opening, whichever is earlier: the runner finds which
        strategy owns a trade opened days ago (its exits) from its entry decision."""
        now = self.trading.market.now_ns()
        # an entry decision precedes its fill by at most the order's day (automation orders are DAY orders)
        since = min([day_start_ns(now) if now else 0]
                    + [day_start_ns(t.opened_ns) for t in trades if t.status == "open" and t.opened_ns])
        return [d for d in self._read_since(since) if d.time_ns >= since]

    def _read_since(self, since: int) -> list[Any]:
        # read once from the earliest instant asked, then kept current by _record (a step asks on every refresh)
        if self._decisions is None or since < self._since:
            self._since = since
            self._decisions = list(self.trading.repo.decisions(since_ns=since))
        return list(self._decisions)

    def _record(self, decision: Any) -> int:
        decision_id = self.trading.repo.record_decision(decision)
        if self._decisions is not None and decision.time_ns >= self._since:
            self._decisions.append(decision)
        self.decided.emit(decision_id, decision)
        return decision_id

    def _stage_order(self, request: Any) -> None:
        self._stage(request)

    def view_inputs(self) -> tuple[Any, ...]:
        """GUI thread: what :func:`automation_view` reads (strategies, decisions, trades, the clock): the decisions
        since today, or since the opening day of a trade closed today (its entry names the strategy it counts to)."""
        from spx_core.automation.summary import et_day
        from spx_core.automation.summary_keeper import decisions_start_ns

        portfolio = self.trading.portfolio
        trades = tuple(portfolio.trades) if portfolio is not None else ()
        now = self.trading.market.now_ns()
        since = decisions_start_ns(et_day(now), trades) if now else 0
        decisions = tuple(d for d in self._read_since(since) if d.time_ns >= since)
        return tuple(self._strategies), decisions, trades, now

    def view(self) -> AutomationView:
        view = automation_view(*self.view_inputs())
        self.keep_summaries(view.summaries)
        return view

    # --- daily summaries ------------------------------------------------------------------------------------
    def keep_summaries(self, rows: Any) -> int:
        """Store today's summary rows the view computed (those whose figures moved); how many were written."""
        try:
            return self.summaries.keep(rows)
        except Exception:  # the panel still shows them; the close and the next view try again
            log.exception("automation: storing the daily summary failed")
            return 0

    def tick_summaries(self) -> int:
        """After each refresh: the day's rows at the market close, the last day's final rows on a new day."""
        now = self.trading.market.now_ns()
        try:
            return self.summaries.tick(now) if now else 0
        except Exception:
            log.exception("automation: storing the daily summary failed")
            return 0

    def store_today(self) -> int:
        """Bring the store up to the clock: the close / new-day rows, then today's rebuilt from the store."""
        from spx_core.automation.summary import et_day

        now = self.trading.market.now_ns()
        try:
            return self.summaries.tick(now) + self.summaries.save_day(et_day(now)) if now else 0
        except Exception:
            log.exception("automation: storing the daily summary failed")
            return 0

    def summary_history(self) -> list[Any]:
        """Every stored daily summary row (today's brought up to date first), by day then strategy."""
        self.store_today()
        return self.summaries.summaries.list()

    @property
    def runner(self) -> Any:
        """The :class:`AutomationRunner` (built on first use: it keeps each strategy's last entry check)."""
        if self._runner is None:
            from spx_core.automation.monitor import PositionMonitor
            from spx_core.automation.runner import AutomationRunner

            broker, account = self.trading.broker_name, self.trading.account
            self._runner = AutomationRunner(self.engine, PositionMonitor(broker=broker, account=account),
                                            place=self._gui_call(self.trading.place),
                                            record=self._gui_call(self._record),
                                            stage=self._gui_call(self._stage_order) if self._stage else None,
                                            broker=broker, account=account,
                                            cancel=self._gui_call(self.trading.cancel))
        return self._runner

    # --- the step -------------------------------------------------------------------------------------------
    def step(self, portfolio: Any, state: Any = None) -> bool:
        """Start one runner step in the worker on the book and the market now (False: nothing to run, or busy).

        ``state``: the guard's :class:`PortfolioState` (the engine's limit-profile checks), None without a guard.
        Disabled strategies with open trades still step: their exits keep running."""
        now = self.trading.market.now_ns()
        trades = tuple(portfolio.trades) if portfolio is not None else ()
        if not now or self._jobs.busy or not (any(s.enabled for s in self._strategies) or self._owns_open(trades)):
            return False
        market = self.trading.market.frozen()  # the worker reads it while the feed moves on
        working = tuple(s for s in self.trading.orders() if not s.status.is_done)
        return self._jobs.submit(self._run, self.runner, now, list(self._strategies), trades,
                                 tuple(self.book_decisions(trades)), market, self._market_state(), state, working)

    def _owns_open(self, trades: tuple[Any, ...]) -> bool:
        """Some open trade was opened by a stored strategy (today's decisions name its order)."""
        refs = {d.order_ref for d in self.book_decisions(trades) if d.order_ref}
        return any(t.status == "open" and refs & set(t.order_refs) for t in trades)

    def _run(self, runner: Any, now: int, strategies: list[Any], trades: tuple[Any, ...],
             decisions: tuple[Any, ...], market: FeedMarket, state: Any, book: Any,
             working: tuple[Any, ...]) -> Any:
        """Worker thread: one step of the runner (its callbacks hop to the GUI thread)."""
        contexts: dict[str, Any] = {}

        def context_for(config: Any) -> Any:
            underlying = "SPX"
            if underlying not in contexts:
                contexts[underlying] = market_context(market.snapshot(underlying), self._fits, state,
                                                      market.snapshot("SPY"))
            return contexts[underlying]

        return "step", runner.step(now, strategies, context_for, trades, decisions, market, state=book,
                                   working=working)

    def decide_now(self, name: str) -> bool:
        """Decide strategy ``name`` on the current snapshot now, whatever its schedule (the panel's "Decide now"):
        the decision is recorded; a TRADE is staged in the ticket (manual) or placed through the gate (auto).
        False when there is no such strategy, no chain yet, or a step is running."""
        stored = next((s for s in self._strategies if s.config.name == name), None)
        now = self.trading.market.now_ns()
        if stored is None or not now or self.trading.market.snapshot("SPX") is None or self._jobs.busy:
            return False
        market = self.trading.market.frozen()  # the worker reads it while the feed moves on
        return self._jobs.submit(self._decide, stored, now, market, self._market_state())

    def _decide(self, stored: Any, now: int, market: FeedMarket, state: Any) -> tuple[str, Any]:
        """Worker thread: one decision of ``stored`` (recording, staging and placing hop to the GUI thread)."""
        ctx = market_context(market.snapshot("SPX"), self._fits, state, market.snapshot("SPY"))
        decision, request = self.engine.decide(stored.config, ctx, now)
        return "decision", self._gui.call(self._act, stored, decision, request)

    def _act(self, stored: Any, decision: Any, request: Any) -> Any:
        """GUI thread: a decided TRADE staged (manual) or placed (auto), then the decision recorded as it ended
        (the runner's conventions: "staged: ..." appended; a refusal is a SKIP "order refused: ...")."""
        from dataclasses import replace

        if request is not None and decision.traded:
            request = replace(request, broker=self.trading.broker_name, account=self.trading.account)
            if str(stored.mode) == "auto":
                result = self.trading.place(request)
                if result.verdict.ok:
                    decision = replace(decision, reasons=(*decision.reasons, f"order {request.ref}: "
                                                          f"{result.state.status.value}"))
                else:
                    decision = replace(decision, action="SKIP", order_ref=None,
                                       reasons=(f"order refused: {result.verdict.message}", *decision.reasons))
            elif self._stage is not None:
                self._stage(request)
                decision = replace(decision, reasons=(*decision.reasons, "staged: in the order ticket for the user "
                                                      "to send (manual mode)"))
            else:
                decision = replace(decision, action="SKIP", order_ref=None,
                                   reasons=("order not staged: no order ticket", *decision.reasons))
        self._record(decision)
        return decision

    def _on_step(self, result: tuple[str, Any]) -> None:
        kind, value = result
        if kind == "step":
            self.steps += 1
            self.last_report = value
            # exits acted on (sent, or staged for the trader) and exits due the monitor could not send: the alerts'
            self.last_exits = tuple(value.exits) + tuple(s for s in value.skipped if s.due)
        self.changed.emit()

    def _gui_call(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        return lambda *args: self._gui.call(fn, *args)

    def shutdown(self) -> None:
        """Stop the worker, then store today's summary as it stands (the app may not run to the close)."""
        self._jobs.shutdown()
        self.store_today()


def automation_view(strategies: tuple[Any, ...], decisions: tuple[Any, ...], trades: tuple[Any, ...],
                    now: int) -> AutomationView:
    """Strategies with their next entry, today's decisions and summary rows (any thread: a pure function).

    ``decisions`` may reach back before today (the entries of trades closed today): only today's are listed."""
    from datetime import datetime

    from spx_core.domain.calendar import ET, UTC

    if not strategies and not decisions:  # no automation (yet): nothing of it to import
        return AutomationView(now_ns=now)
    from spx_core.automation.schedule import next_entry_ns
    from spx_core.automation.summary import day_summaries

    nxt: dict[str, int | None] = {}
    for stored in strategies:
        try:
            nxt[stored.config.name] = next_entry_ns(stored.config, now) if now else None
        except Exception:  # a schedule the calendar cannot place: shown as "-"
            log.exception("automation: next entry of %s", stored.config.name)
            nxt[stored.config.name] = None
    summaries: list[Any] = []
    if now:
        day = datetime.fromtimestamp(now / 1e9, UTC).astimezone(ET).date()
        summaries = day_summaries(day, trades, decisions)
        start = day_start_ns(now)
        decisions = tuple(d for d in decisions if d.time_ns >= start)
    return AutomationView(tuple(strategies), nxt, tuple(decisions), tuple(summaries), now)


def market_context(snapshot: Any, fits: SharedFits | None, state: Any, spy: Any = None) -> Any:
    """The :class:`MarketContext` of ``snapshot`` (worker thread): its fit (shared with the panels) and the
    Market panel's IV rank, VIX and regime when it computed them for this market."""
    from spx_core.automation.engine import MarketContext

    if snapshot is None:
        return None
    if fits is not None:
        fitted = fits.memo().fit(snapshot)
    else:
        from spx_core.surface.fit_memo import fit_chain

        fitted = fit_chain(snapshot)
    if state is None:
        return MarketContext(snapshot=snapshot, civ=fitted.civ, surface=fitted.surface, spy_snapshot=spy)
    # the Market panel's state as the scanner's market filter reads it (IV rank, VIX, regime names)
    return MarketContext.from_state(snapshot, state, civ=fitted.civ, surface=fitted.surface, spy_snapshot=spy)
