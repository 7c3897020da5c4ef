"""The backtest engine: the live automation, gate, limits, paper broker and settlement driven on stored snapshots.

    bt = Backtest(store, [config], start_ns=a, end_ns=b, fill=FillModel(), fees=DEFAULT_FEES,
                  profile=profile("credit verticals"), bad_quote="skip", starting_cash=100_000)
    result = bt.run(progress=lambda done, total: ..., cancel=lambda: False)

The wiring is the app's (``app.trading_setup`` + ``app.ops_automation``) without Qt: an :class:`OrderService` on
a :class:`PreTradeGate` whose ``limits`` hook is the profile's :class:`RiskLimits` and a :class:`PaperBroker`
with the run's fill model and fee schedule, writing into a SEPARATE order store (a temporary SQLite file, deleted
after the run: the data store's order tables are never touched); an :class:`AutomationRunner` on the real
:class:`DecisionEngine` and :class:`PositionMonitor`; a :class:`SettlementWatch` booking expiry settlement.

One step per distinct stored snapshot instant (and per settlement instant between them), synchronously:
reveal the snapshots stamped <= now (:class:`~spx_core.backtest.clock.StoredFeed`: nothing later is ever
decoded), let the paper broker look at its working orders, settle what expired, run the automation (entries,
exits on the marks the ``bad_quote`` choice gives, hedges), then record the net liquidation. The surface is fitted
only inside a decision that needs it (the :class:`MarketContext` carries the chain alone).
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import tempfile
from collections.abc import Callable, Mapping, Sequence
from enum import Enum
from pathlib import Path
from typing import Any

import pandas as pd

from spx_core.automation.config import StoredStrategy, StrategyConfig, StrategyMode
from spx_core.automation.engine import DecisionEngine, MarketContext
from spx_core.automation.monitor import PositionMonitor
from spx_core.automation.runner import AutomationRunner
from spx_core.backtest.clock import StoredFeed
from spx_core.backtest.factors import MarketStates, entry_factors
from spx_core.backtest.marks import BadQuote, MarkPolicy
from spx_core.backtest.run import (
    BacktestResult,
    code_version,
    data_checksum,
    result_checksum,
)
from spx_core.backtest.settle_bars import DailySettlements
from spx_core.backtest.trades import trade_records
from spx_core.domain.calendar import ET, from_ns
from spx_core.execution.fees import DEFAULT_FEES, FeeSchedule
from spx_core.execution.fill_model import FillModel
from spx_core.execution.gate import PreTradeGate
from spx_core.execution.orders import ref_source
from spx_core.execution.paper import PaperBroker
from spx_core.execution.service import OrderService
from spx_core.portfolio.account import account_summary
from spx_core.portfolio.decisions import TradeDecision
from spx_core.portfolio.positions import marks_from_view
from spx_core.portfolio.settlement_watch import SettlementWatch
from spx_core.risk.breaker import BreakerTrip, CircuitBreaker
from spx_core.risk.breaker_actions import act_on_trip
from spx_core.risk.guard import breaker_refusal
from spx_core.risk.limits import RiskLimits
from spx_core.risk.profiles import LimitProfile
from spx_core.risk.state import portfolio_state
from spx_core.storage.orders_repo import OrderRepository, et_day_start_ns
from spx_core.storage.risk_repo import RiskRepository
from spx_core.storage.store import Store

__all__ = ["Backtest", "BacktestError"]

_NEVER = 2**63 - 1  # past any instant: a session run settles every expiry its data watched
Progress = Callable[[int, int], None]
Cancel = Callable[[], bool]


class BacktestError(ValueError):
    """The run cannot start; the message (one line) says what is wrong and how to fix it."""


class Backtest:
    """One run's configuration (see the module docstring). ``session`` replaces ``start_ns``/``end_ns``
    (inclusive bounds, UTC ns); ``profile``: the limit profile (or its name) the gate's limits apply, None for
    no limits; ``fill``: the paper broker's fill model; ``fees``: its commission and fee schedule."""

    def __init__(self, store: Any, strategies: Sequence[StrategyConfig], *, start_ns: int | None = None,
                 end_ns: int | None = None, session: str | None = None, fill: FillModel | None = None,
                 fees: FeeSchedule = DEFAULT_FEES, profile: LimitProfile | str | None = None,
                 bad_quote: BadQuote | str = BadQuote.SKIP, starting_cash: float = 100_000.0,
                 close_on_breaker: bool = False) -> None:
        if not strategies:
            raise ValueError("a backtest needs at least one strategy config")
        if session is None and (start_ns is None or end_ns is None):
            raise ValueError("give a session name, or both start_ns and end_ns")
        if start_ns is not None and end_ns is not None and end_ns < start_ns:
            raise ValueError(f"end_ns {end_ns} is before start_ns {start_ns}")
        self.store = store
        self.strategies = tuple(strategies)
        self.start_ns, self.end_ns, self.session = start_ns, end_ns, session
        self.fill = fill if fill is not None else FillModel()
        self.fees = fees
        if isinstance(profile, str):  # a profile name, as the TOML config gives it
            from spx_core.risk.profiles import profile as named_profile

            profile = named_profile(profile)
        self.profile = profile
        self.bad_quote = BadQuote(MarkPolicy(bad_quote).choice)
        self.starting_cash = float(starting_cash)
        if not (self.starting_cash > 0 and self.starting_cash < float("inf")):
            raise ValueError(f"starting_cash {starting_cash!r} must be a positive number of dollars")
        self.close_on_breaker = bool(close_on_breaker)

    @property
    def config_hash(self) -> str:
        """SHA-256 of everything that shapes the run (strategies by their own hashes, fills, fees, limits, range)."""
        doc = {"strategies": [s.config_hash for s in self.strategies], "fill": _canonical(self.fill),
               "fees": _canonical(self.fees), "profile": _canonical(self.profile),
               "data": [self.start_ns, self.end_ns, self.session], "bad_quote": self.bad_quote.value,
               "starting_cash": self.starting_cash, "close_on_breaker": self.close_on_breaker}
        return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()).hexdigest()

    def run(self, progress: Progress | None = None, cancel: Cancel | None = None) -> BacktestResult:
        """Run to the end (or until ``cancel()`` is true: a partial result flagged ``cancelled``)."""
        with tempfile.TemporaryDirectory(prefix="spx-backtest-") as folder, ref_source(_refs(self.config_hash)):
            orders = Store.open(Path(folder) / "orders.sqlite")
            try:
                return _Run(self, orders).run(progress, cancel)
            finally:
                orders.close()


def _canonical(value: Any) -> Any:
    """A JSON-able form with no process-dependent order (sets sorted; repr() of a set is not stable across runs)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _canonical(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (set, frozenset)):
        return sorted((_canonical(v) for v in value), key=repr)
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, (int, float, str, bool)) or value is None:
        return value.value if isinstance(value, Enum) else value
    return repr(value)


def _refs(seed: str) -> Callable[[], str]:
    """Order refs numbered from the run's config hash (exits and hedges; entries have their own deterministic
    ref): the same run gives the same refs, so its decisions and result checksum repeat."""
    count = itertools.count(1)
    return lambda: "spx-" + hashlib.sha256(f"{seed}:{next(count)}".encode()).hexdigest()[:20]


class _Run:
    """The wired components of one run and its step loop."""

    def __init__(self, bt: Backtest, orders: Store) -> None:
        self.bt = bt
        self.feed = StoredFeed(bt.store, bt.start_ns, bt.end_ns, session=bt.session)
        self.repo = OrderRepository(orders)
        self.broker = PaperBroker(self.feed, fees=bt.fees, fill_model=bt.fill)
        self._civ_cache: dict[str, tuple[str, object]] = {}  # underlying -> (checksum, ChainIV): solved once
        self.breaker: CircuitBreaker | None = None
        self.trips: list[BreakerTrip] = []
        limits = None
        if bt.profile is not None:  # the live guard's two refusals: today's breaker trip, then the profile's limits
            self.breaker = CircuitBreaker(RiskRepository(orders))
            limits = _Limits(self.breaker, RiskLimits(bt.profile, portfolio=self._state, civ_cache=self._civ_cache),
                             self.feed.now_ns)
        self.service = OrderService(self.repo, self.broker, PreTradeGate(limits=limits), self.feed)
        self.service.subscribe(self._on_order)
        monitor = PositionMonitor(broker=self.broker.name, account=self.broker.account)
        self.runner = AutomationRunner(DecisionEngine(), monitor, place=self.service.place, record=self._record,
                                       broker=self.broker.name, account=self.broker.account,
                                       cancel=self.service.cancel)
        self.stored = [StoredStrategy(c, True, StrategyMode.AUTO) for c in bt.strategies]
        self.watch = SettlementWatch()
        self.official = DailySettlements(bt.store)  # end-of-day data: the daily bars' close/open settle expiries
        self.marks = MarkPolicy(bt.bad_quote)
        self.decisions: list[TradeDecision] = []
        self.states = MarketStates(bt.store)  # market state (IV rank, VIX, regimes) only for strategies that filter
        self.entry_factors: dict[str, dict[str, float]] = {}  # entry order ref -> the market it was decided in
        self.equity: dict[int, float] = {}
        self.margin: dict[int, float] = {}
        self._account: Any = None
        self._dirty = True
        self._generation = 0  # bumped at each ledger re-read: an account line is reused until the book changes
        self._summary_key: tuple[Any, ...] | None = None
        self._fit: tuple[str, Any] | None = None  # (checksum, FittedChain | None) of the SPX chain last fitted
        self._positions: list[Any] = []
        self._trades: list[Any] = []
        self._last_marks: dict[Any, float] = {}
        self._working: dict[str, Any] = {}  # ref -> OrderState of every working order
        self._day_start = 0  # the market day the positions' day baselines count from

    # --- the ledger (re-read only after a fill or a settlement) ------------------------------------------------
    def _on_order(self, state: Any) -> None:
        if state.fills:
            self._dirty = True
        # the working orders, kept from the service's committed changes (no store read per step)
        if state.is_working:
            self._working[state.ref] = state
        else:
            self._working.pop(state.ref, None)

    def _book(self) -> tuple[list[Any], list[Any]]:
        if self._dirty:
            self._generation += 1
            self._positions = self.repo.positions(closed_since_ns=0)
            self._trades = self.repo.trades()
            self._dirty = False
        return self._positions, self._trades

    def _record(self, decision: TradeDecision) -> int:
        self.decisions.append(decision)
        if decision.traded and decision.order_ref and decision.reasons and decision.reasons[0].startswith("entry:"):
            request = self.service.repo.order(decision.order_ref)
            self.entry_factors[decision.order_ref] = entry_factors(
                request.request if request is not None else None, self.feed.snapshot("SPX"), decision.time_ns,
                self.states.last)
        return self.repo.record_decision(decision)

    def _state(self) -> Any:
        """The book the limits read now (the gate calls it for each order: a fill a moment ago counts)."""
        positions, trades = self._book()
        return portfolio_state(self.repo, account=self._account, day_start_ns=et_day_start_ns(self.feed.now_ns()),
                               trades=trades, positions=positions, decisions=self.decisions,
                               pending=list(self._working.values()))

    # --- the loop ---------------------------------------------------------------------------------------------
    def run(self, progress: Progress | None, cancel: Cancel | None) -> BacktestResult:
        total = self.feed.n_steps
        if not total:
            raise BacktestError(f"no stored snapshots {self._where()}: import data or record some with "
                                f"spx-data simulate, or pick another range")
        done = 0
        cancelled = False
        for t in self.feed.times():
            if cancel is not None and cancel():
                cancelled = True
                break
            self._settle_before(t)
            for info in self.feed.advance(t):  # the settlement watch needs the index level only: no decoding
                self.watch.observe(info.underlying, t, info.underlying_price)
            self.broker.on_market()
            self._settle(t)
            self._roll_day(t)
            self._automate(t)
            self._mark(t, self._last_marks)
            self._check_breaker(t)
            done += 1
            if progress is not None:
                progress(done, total)
        if not cancelled:  # expiries after the last snapshot whose settlement price was watched (the close seen)
            self._settle_before(self.bt.end_ns + 1 if self.bt.end_ns is not None else _NEVER)
        return self._result(cancelled, (done, total))

    def _where(self) -> str:
        if self.bt.session is not None:
            return f"in session {self.bt.session!r}"
        a, b = (from_ns(x).astimezone(ET).strftime("%Y-%m-%d %H:%M ET") for x in (self.bt.start_ns, self.bt.end_ns))
        return f"between {a} and {b}"

    def _settle_before(self, t: int) -> None:
        """Settlement instants strictly between the clock and ``t`` (no snapshot there): each its own step."""
        while True:
            positions, _ = self._book()
            at = self.watch.next_instant(p for p in positions if p.is_open)
            if at is None or at >= t or at < self.feed.now_ns() or not self.feed.now_ns():
                return
            self.feed.set_clock(at)
            if not self._settle(at):
                return  # its price was not watched: it stays open (listed as unresolved), not settled at a guess
            self._mark(at, self._last_marks)

    def _settle(self, now: int) -> bool:
        self.official.reveal(now, self.watch)
        positions, _ = self._book()
        due = self.watch.settle_due([p for p in positions if p.is_open], now)
        if due.fills:
            self.repo.apply_settlement(due.fills, due.deliveries)
            self._dirty = True
        return bool(due.fills)

    def _roll_day(self, now: int) -> None:
        """A new market day: today's P&L counts from the held legs' last marks (the previous close), as the app
        rolls the day (the daily loss limits read it)."""
        start = et_day_start_ns(now)
        if start <= self._day_start:
            return
        self._day_start = start
        positions, _ = self._book()
        if any(p.is_open for p in positions):
            self.repo.start_day(start, {p.contract: self._last_marks.get(p.contract, float("nan"))
                                        for p in positions if p.is_open})
            self._dirty = True

    def _automate(self, now: int) -> None:
        positions, trades = self._book()
        held = [p.contract for p in positions if p.is_open]
        view, marks = self.marks.step(self.feed, held)
        self._last_marks = marks
        self._account = self._summary(now, marks)
        self.runner.step(now, self.stored, self._context, trades, self._book_decisions(trades, now), view,
                         state=self._state(), working=list(self._working.values()))

    def _context(self, config: StrategyConfig) -> MarketContext | None:
        spx = self.feed.snapshot("SPX")
        if spx is None:
            return None
        spy = self.feed.snapshot("SPY") if config.is_pair else None
        fitted = None if config.is_pair else self._fitted(spx)  # the scan needs it; asked for only at a decision
        civ, surface = (fitted.civ, fitted.surface) if fitted is not None else (None, None)
        if not MarketStates.needed(config):
            self.states.last = None
            return MarketContext(spx, civ=civ, surface=surface, spy_snapshot=spy)
        # the live filters read the market state: the daily bars before this session and the chain's surface
        state = self.states.at(spx, civ, surface)
        return MarketContext.from_state(spx, state, civ=civ, surface=surface, spy_snapshot=spy)

    def _fitted(self, spx: Any) -> Any:
        """The chain's IVs and surface, once per snapshot, shared by the scan, the market state and the limits
        (None when the fit fails: the decision then fails the same way and says why)."""
        if self._fit is None or self._fit[0] != spx.checksum:
            from spx_core.surface.fit_memo import fit_chain

            try:
                fitted = fit_chain(spx)
            except (ValueError, ArithmeticError):
                fitted = None
            self._fit = (spx.checksum, fitted)
            if fitted is not None:
                self._civ_cache[spx.underlying] = (spx.checksum, fitted.civ)
        return self._fit[1]

    def _check_breaker(self, now: int) -> None:
        """As the app after each refresh: the day's loss against the profile's daily loss limit; a trip cancels
        the working orders and (``close_on_breaker``) closes every open trade, and holds until the next day."""
        if self.breaker is None or self.bt.profile is None:
            return
        trip = self.breaker.check(self.bt.profile, self._state(), now, et_day_start_ns(now))
        if trip is None:
            return
        cancelled, closed = act_on_trip(trip, self.service, place=self.service.place, record=self._record,
                                        now_ns=now, close_all=self.bt.close_on_breaker,
                                        profile_name=self.bt.profile.name)
        self.trips.append(self.breaker.acted(cancelled, closed) or trip)

    def _book_decisions(self, trades: list[Any], now: int) -> list[TradeDecision]:
        """As the app: since today, or the oldest open trade's opening day."""
        since = min([et_day_start_ns(now)] + [et_day_start_ns(t.opened_ns) for t in trades
                                               if t.is_open and t.opened_ns])
        return [d for d in self.decisions if d.time_ns >= since]

    def _summary(self, now: int, marks: dict[Any, float]) -> Any:
        positions, trades = self._book()
        key = (now, self._generation, id(marks))
        if key == self._summary_key:  # _mark after an _automate that filled nothing: the same account line
            return self._account
        self._summary_key = key
        fresh = [p.contract for p in positions if p.is_open and p.contract not in marks]
        known = dict(marks)
        if fresh:  # opened this step: marked at their mid now (counted from the next step on)
            known.update(marks_from_view(self.feed, fresh))
        return account_summary(self.bt.starting_cash, positions, trades, known, et_day_start_ns(now))

    def _mark(self, now: int, marks: dict[Any, float]) -> None:
        account = self._summary(now, marks)
        self._account = account
        self.equity[now] = float(account.net_liquidation)
        self.margin[now] = float(account.maintenance_margin)

    def _result(self, cancelled: bool, steps: tuple[int, int]) -> BacktestResult:
        self._dirty = True
        _, trades = self._book()
        records = trade_records(trades, self.decisions, self.repo)
        index = pd.to_datetime(list(self.equity), unit="ns", utc=True)
        equity = pd.Series(list(self.equity.values()), index=index, name="net_liquidation", dtype="float64")
        margin = pd.Series(list(self.margin.values()), index=index, name="maintenance_margin", dtype="float64")
        read = tuple(self.feed.read)
        factors = {i: self.entry_factors[ref] for i, t in enumerate(sorted(trades, key=lambda t: (t.opened_ns, t.id)))
                   for ref in t.order_refs[:1] if ref in self.entry_factors}
        notes = tuple(f"{name}: {n}" for name, n in self.marks.counts.items() if n and name != "clean")
        notes += self._unsettled()
        return BacktestResult(
            trades=records, decisions=tuple(self.decisions), equity=equity, margin=margin,
            marks=dict(self.marks.counts),
            config_hash=self.bt.config_hash, strategy_hashes={s.name: s.config_hash for s in self.bt.strategies},
            snapshots_read=read, data_checksum=data_checksum(read), code_version=code_version(),
            result_checksum=result_checksum(records, self.decisions, equity), cancelled=cancelled, steps=steps,
            notes=notes, starting_cash=self.bt.starting_cash, factors=factors, breaker_trips=tuple(self.trips))


    def _unsettled(self) -> tuple[str, ...]:
        """A note naming the legs whose expiry passed with no settlement price in the data (no index print near
        the close or open, no daily bar): they stay open at their last mark instead of settling at a guess."""
        positions, _ = self._book()
        now = self.feed.now_ns()
        if not now:
            return ()
        due = self.watch.settle_due([p for p in positions if p.is_open], now)
        if not due.unresolved:
            return ()
        legs = ", ".join(sorted({str(c) for c in due.unresolved})[:5])
        more = f" and {len(due.unresolved) - 5} more" if len(due.unresolved) > 5 else ""
        note = (f"unsettled: {len(due.unresolved)} expired legs have no settlement price in the data ({legs}{more}); "
                f"they stay open at their last mark: store the index's daily bars (spx-data import) to settle them")
        return (note,)


class _Limits:
    """The gate's ``limits`` hook of a run: the breaker's refusal while today's trip holds, then the profile's
    limits (the live :class:`~spx_core.risk.guard.RiskGuard`'s two refusals, on the run's clock)."""

    def __init__(self, breaker: CircuitBreaker, limits: RiskLimits, clock: Callable[[], int]) -> None:
        self.breaker, self.limits, self.clock = breaker, limits, clock

    def __call__(self, request: Any, market: Any) -> list[Any]:
        return breaker_refusal(self.breaker, request, int(self.clock())) + self.limits(request, market)

