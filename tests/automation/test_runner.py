"""The automation runner end to end: the simulated market, the real decision engine, the real gate, order service,
paper broker and SQLite store. An auto strategy enters at its entry time, its fill is booked, the monitor closes it
at take profit, every decision is stored with its reasons, and a restart does not enter twice for one slot."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime

import numpy as np
import pytest

from spx_core.automation.config import (
    EntryFilters,
    HedgeConfig,
    HedgeInstrument,
    PriceMode,
    Sizing,
    StrategyMode,
)
from spx_core.automation.engine import DecisionEngine, MarketContext
from spx_core.automation.monitor import PositionMonitor
from spx_core.automation.presets import PRESETS
from spx_core.automation.runner import AutomationRunner
from spx_core.automation.summary import daily_summary, strategy_of
from spx_core.domain.calendar import ET, to_ns
from spx_core.domain.quotes import QuoteFlag
from spx_core.execution.checks import CheckFailure
from spx_core.execution.gate import PreTradeGate
from spx_core.execution.orders import Intent, OrderStatus
from spx_core.execution.paper import PaperBroker
from spx_core.execution.service import OrderService
from spx_core.marketdata.simulator import SimulatedMarket, SimulatorConfig
from spx_core.risk.greeks import portfolio_greeks
from spx_core.storage.orders_repo import OrderRepository
from spx_core.storage.store import Store
from spx_core.storage.strategy_repo import StrategyRepository
from spx_core.strategies.market import Market as PricingMarket
from spx_core.strategies.market import locate
from spx_core.surface.chain_iv import chain_iv

DAY = date(2024, 3, 13)  # a Wednesday
SECOND = 1_000_000_000
#: the credit verticals preset, crossing the spread so the paper broker fills at once
PCS = dataclasses.replace(PRESETS["credit verticals 3/5/7 DTE"], name="pcs auto", price=PriceMode.NATURAL)


def at(hh: int, mm: int, ss: int = 0) -> int:
    return to_ns(datetime(DAY.year, DAY.month, DAY.day, hh, mm, ss, tzinfo=ET))


class SimView:
    """A MarketView over the simulator; ``override`` replaces an underlying's chain (a hand-moved market)."""

    def __init__(self, sim: SimulatedMarket) -> None:
        self.sim = sim
        self.override = {}

    def now_ns(self) -> int:
        return self.sim.now_ns

    def snapshot(self, underlying: str):
        if underlying in self.override:
            return self.override[underlying]
        return self.sim.snapshot() if underlying == "SPX" else self.sim.spy_snapshot()

    def go(self, t: int) -> None:
        """Run the simulator to market time ``t``."""
        self.sim.advance((t - self.sim.now_ns) / SECOND)


class World:
    """One terminal's automation over a store file: gate -> service -> paper broker, and a runner on them."""

    def __init__(self, path, view: SimView, *, limits=None, stage=None) -> None:
        self.view = view
        self.store = Store.open(path)
        self.repo = OrderRepository(self.store)
        self.service = OrderService(self.repo, PaperBroker(view), PreTradeGate(limits=limits), view)
        self.strategies = StrategyRepository(self.store)
        self.regime: tuple[str, ...] = ()
        self.runner = AutomationRunner(DecisionEngine(), PositionMonitor(), place=self.service.place,
                                       record=self.repo.record_decision, stage=stage)

    def context_for(self, config):
        return MarketContext(self.view.snapshot("SPX"), regime=self.regime)

    def step(self, t: int, **kw):
        self.view.go(t)
        working = self.repo.orders(working_only=True)
        return self.runner.step(t, self.strategies.strategies(), self.context_for, self.repo.trades(),
                                self.repo.decisions(), self.view, working=working, **kw)

    def close(self) -> None:
        self.store.close()


@pytest.fixture
def view():
    return SimView(SimulatedMarket(SimulatorConfig(seed=5, start=datetime(2024, 3, 13, 9, 59, 0, tzinfo=ET))))


@pytest.fixture
def world(tmp_path, view):
    w = World(tmp_path / "auto.sqlite", view)
    w.strategies.save(PCS, enabled=True, mode=StrategyMode.AUTO, now_ns=at(9, 0))
    yield w
    w.close()


def take_profit_market(view: SimView, trade, t: int, *, flag: int = 0) -> None:
    """Requote the trade's legs so closing it costs 0.25 at the natural (a market that moved in its favour);
    ``flag``: the quote flags forced on the trade's legs."""
    snap = view.sim.snapshot()
    rows = locate(snap, list(trade.contracts))
    bid, ask = snap.columns["bid"].copy(), snap.columns["ask"].copy()
    held = [leg.ratio for leg in trade.legs]  # short -1, long +1
    for row, ratio in zip(rows, held, strict=True):
        bid[row], ask[row] = ((0.40, 0.45) if ratio < 0 else (0.20, 0.25))
    flags = {}
    if flag:
        flags["flags"] = snap.columns["flags"].copy()
        flags["flags"][rows] = flag
    view.override["SPX"] = snap.replace_quotes(time=t, underlying_price=snap.underlying_price, bid=bid, ask=ask,
                                               quote_time=np.full(len(snap), t, dtype=np.int64), **flags)


# --- end to end ---------------------------------------------------------------------------------------------
def test_auto_strategy_enters_at_its_time_is_filled_and_closes_at_take_profit(world, view):
    assert world.step(at(9, 59, 30)).decisions == ()  # before 10:00: nothing due
    entry = world.step(at(10, 0, 1))
    (decision,) = entry.decisions
    assert decision.action == "TRADE" and decision.strategy == "pcs auto"
    assert decision.reasons[0].startswith("entry: SELL 1 SPXW") and decision.reasons[-1].startswith("order spx-")
    assert "filled" in decision.reasons[-1] and "slot: 10:00 ET" in decision.reasons
    assert decision.snapshot_checksum == view.sim.snapshot().checksum and decision.config_hash == PCS.config_hash
    (sent,) = entry.sent
    assert sent.source == "automation" and sent.ref == decision.order_ref
    (trade,) = world.repo.trades(open_only=True)
    assert sent.ref in trade.order_refs and trade.quantity == 1 and trade.open_price > 0
    assert strategy_of([trade], world.repo.decisions()) == {trade.id: "pcs auto"}

    assert world.step(at(10, 0, 20)).decisions == ()  # the 10:00 slot is done; the trade is far from its exits

    take_profit_market(view, trade, at(10, 1))
    exit_report = world.step(at(10, 1))
    (exit_decision,) = exit_report.decisions
    assert exit_decision.action == "TRADE" and exit_decision.strategy == "pcs auto"
    assert exit_decision.reasons[0].startswith("take_profit: cost to close 0.25 (natural) <=")
    assert exit_decision.reasons[1] == f"trade #{trade.id}" and "filled" in exit_decision.reasons[-1]
    (signal,) = exit_report.exits
    assert signal.request.intent is Intent.CLOSE and signal.request.source == "automation"
    closed = world.repo.trade(trade.id)
    assert closed.status == "closed" and closed.realized_pnl > 0
    assert world.repo.order(signal.request.ref).status is OrderStatus.FILLED

    stored = world.repo.decisions()
    assert stored == [decision, exit_decision]
    assert all(d.reasons for d in stored)
    assert world.repo.verify() == []
    summary = daily_summary(DAY, world.repo.trades(), stored, "pcs auto")
    assert (summary.trades_opened, summary.trades_closed, summary.wins) == (1, 1, 1)


def test_no_exit_on_flagged_quotes_and_the_report_says_why(world, view):
    world.step(at(10, 0, 1))
    (trade,) = world.repo.trades(open_only=True)
    take_profit_market(view, trade, at(10, 1), flag=int(QuoteFlag.STALE))
    report = world.step(at(10, 1))
    assert report.decisions == () and report.exits == ()
    (skip,) = report.skipped
    assert skip.trade_id == trade.id and "stale" in skip.reason and skip.due == ()
    assert world.repo.trade(trade.id).is_open


def test_an_exit_cancels_the_unfilled_rest_of_the_entry_first(tmp_path, view):
    """Ten units asked, the quoted sizes fill fewer: at take profit the rest of the entry is cancelled, then the
    filled units are closed (a late fill of the rest would reopen the trade)."""
    config = dataclasses.replace(PCS, sizing=Sizing(quantity=10))
    w = World(tmp_path / "p.sqlite", view)
    w.runner = AutomationRunner(DecisionEngine(), PositionMonitor(), place=w.service.place,
                                record=w.repo.record_decision, cancel=w.service.cancel)
    try:
        w.strategies.save(config, enabled=True, mode=StrategyMode.AUTO, now_ns=at(9, 0))
        (entry,) = w.step(at(10, 0, 1)).decisions
        (trade,) = w.repo.trades(open_only=True)
        assert 0 < trade.quantity < 10 and w.repo.order(entry.order_ref).is_working
        take_profit_market(view, trade, at(10, 1))
        (decision,) = w.step(at(10, 1)).decisions
        assert decision.reasons[0].startswith("take_profit: ")
        assert decision.reasons[2] == f"cancelled the unfilled rest of opening order {entry.order_ref}"
        assert w.repo.order(entry.order_ref).status is OrderStatus.CANCELLED
        assert w.repo.trade(trade.id).status == "closed"
    finally:
        w.close()


def test_a_restart_does_not_enter_twice_for_the_same_slot(world, view, tmp_path):
    world.step(at(10, 0, 1))
    assert len(world.repo.trades()) == 1
    world.close()
    again = World(tmp_path / "auto.sqlite", view)  # a new process: nothing in memory, the same store
    try:
        assert again.step(at(10, 0, 30)).decisions == ()
        assert len(again.repo.trades()) == 1 and len(again.repo.decisions()) == 1
        later = again.step(at(11, 0, 2))  # the next slot is a new entry
        assert [d.reasons[-2] for d in later.decisions] == ["slot: 11:00 ET"]
    finally:
        again.close()


def test_exits_continue_when_the_caller_passes_only_later_decisions(world, view):
    """A runner that saw the trade open keeps its owner: a later step given no decisions still closes it."""
    world.step(at(10, 0, 1))
    (trade,) = world.repo.trades(open_only=True)
    take_profit_market(view, trade, at(10, 1))
    view.go(at(10, 1))
    report = world.runner.step(at(10, 1), world.strategies.strategies(), world.context_for, world.repo.trades(),
                               [], view)
    assert [d.reasons[0].split(":")[0] for d in report.decisions] == ["take_profit"]


def test_a_step_late_within_the_grace_still_enters_once(world):
    report = world.step(at(10, 4, 0))  # grace 300 s
    assert len(report.decisions) == 1 and report.decisions[0].action == "TRADE"
    assert world.step(at(10, 4, 30)).decisions == ()


# --- refusals, manual mode, no data ----------------------------------------------------------------------------
def test_an_entry_the_gate_refuses_is_a_skip_that_says_so(tmp_path, view):
    def refuse_openings(request, market):
        return [CheckFailure("max_new_trades_per_day 0", "post-trade 1")] if request.intent is Intent.OPEN else []

    w = World(tmp_path / "r.sqlite", view, limits=refuse_openings)
    try:
        w.strategies.save(PCS, enabled=True, mode=StrategyMode.AUTO, now_ns=at(9, 0))
        (decision,) = w.step(at(10, 0, 1)).decisions
        assert decision.action == "SKIP" and decision.order_ref is None
        assert decision.reasons[0] == ("order refused: refused by limits: max_new_trades_per_day 0: post-trade 1")
        assert decision.reasons[1].startswith("entry: SELL 1 SPXW")  # what it would have done
        assert w.repo.trades() == [] and w.repo.decisions() == [decision]
        assert w.step(at(10, 0, 30)).decisions == ()  # a refused slot is still done
    finally:
        w.close()


def test_a_refused_exit_keeps_its_rule_first_and_says_it_was_refused(tmp_path, view):
    def refuse_closes(request, market):
        return [CheckFailure("test", "closes refused")] if request.intent is Intent.CLOSE else []

    w = World(tmp_path / "x.sqlite", view, limits=refuse_closes)
    try:
        w.strategies.save(PCS, enabled=True, mode=StrategyMode.AUTO, now_ns=at(9, 0))
        w.step(at(10, 0, 1))
        (trade,) = w.repo.trades(open_only=True)
        take_profit_market(view, trade, at(10, 1))
        (decision,) = w.step(at(10, 1)).decisions
        assert decision.action == "SKIP" and decision.reasons[0].startswith("take_profit: ")
        assert decision.reasons[1] == "order refused: refused by limits: test: closes refused"
        assert w.repo.trade(trade.id).is_open
    finally:
        w.close()


def test_manual_mode_stages_the_order_and_records_it_staged(tmp_path, view):
    staged = []
    w = World(tmp_path / "m.sqlite", view, stage=staged.append)
    try:
        w.strategies.save(PCS, enabled=True, mode=StrategyMode.MANUAL, now_ns=at(9, 0))
        report = w.step(at(10, 0, 1))
        (decision,) = report.decisions
        assert decision.action == "TRADE" and decision.reasons[-1].startswith("staged: ")
        assert staged == list(report.staged) and staged[0].ref == decision.order_ref
        assert report.sent == () and w.repo.orders() == []  # nothing reached the gate or the broker
    finally:
        w.close()


def test_disabled_strategies_do_not_enter(world):
    world.strategies.set_enabled("pcs auto", False, at(9, 1))
    assert world.step(at(10, 0, 1)).decisions == ()


def test_a_failing_decision_is_a_skip_and_the_exits_still_run(world, view, caplog):
    world.step(at(10, 0, 1))
    (trade,) = world.repo.trades(open_only=True)
    take_profit_market(view, trade, at(11, 0, 1))

    def broken(config):
        raise RuntimeError("surface fit diverged")

    world.context_for = broken
    report = world.step(at(11, 0, 1))
    assert [d.action for d in report.decisions] == ["SKIP", "TRADE"]
    assert report.decisions[0].reasons[0] == "error: the market context failed (RuntimeError: surface fit diverged)"
    assert report.decisions[1].reasons[0].startswith("take_profit: ")
    assert "the market context failed" in caplog.text


def test_a_failing_engine_is_a_skip(world, monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("bad chain")

    monkeypatch.setattr(world.runner.engine, "decide", broken)
    (decision,) = world.step(at(10, 0, 1)).decisions
    assert decision.action == "SKIP" and decision.reasons == ("error: the decision failed (ValueError: bad chain)",
                                                              "slot: 10:00 ET")


def test_no_market_context_is_a_skip(world):
    world.context_for = lambda config: None
    (decision,) = world.step(at(10, 0, 1)).decisions
    assert decision.action == "SKIP" and decision.reasons[0].startswith("data: no market context")


# --- exits: crash mode, working closes -----------------------------------------------------------------------
def test_regime_exit_when_the_regime_filter_stops_passing(tmp_path, view):
    config = dataclasses.replace(PCS, name="pcs regime", filters=EntryFilters(regimes=frozenset({"calm", "normal"})),
                                 exits=dataclasses.replace(PCS.exits, regime_exit=True))
    w = World(tmp_path / "g.sqlite", view)
    try:
        w.strategies.save(config, enabled=True, mode=StrategyMode.AUTO, now_ns=at(9, 0))
        w.regime = ("calm",)
        assert w.step(at(10, 0, 1)).decisions[0].action == "TRADE"
        assert w.step(at(10, 0, 10)).decisions == ()
        w.regime = ("stressed",)
        (decision,) = w.step(at(10, 0, 20)).decisions
        assert decision.reasons[0].startswith("regime: crash mode")
        assert w.repo.trades(open_only=True) == []
    finally:
        w.close()


def test_a_trade_with_a_working_close_is_not_closed_again(world, view):
    world.step(at(10, 0, 1))
    (trade,) = world.repo.trades(open_only=True)
    take_profit_market(view, trade, at(10, 1))
    working = [dataclasses.replace(world.repo.orders()[0], status=OrderStatus.SUBMITTED)]
    working = [dataclasses.replace(working[0], request=dataclasses.replace(
        working[0].request, ref="spx-closing", intent=Intent.CLOSE, trade_id=trade.id))]
    view.go(at(10, 1))
    report = world.runner.step(at(10, 1), world.strategies.strategies(), world.context_for, world.repo.trades(),
                               world.repo.decisions(), view, working=working)
    assert report.decisions == () and any("closing order is working" in n for n in report.notes)


# --- hedges ------------------------------------------------------------------------------------------------------
def test_a_hedge_is_placed_recorded_and_waits_for_its_interval(tmp_path, view):
    config = dataclasses.replace(PCS, name="hedged", hedge=HedgeConfig(
        band_delta=500.0, instrument=HedgeInstrument.SYNTHETIC, min_interval_s=300.0))
    w = World(tmp_path / "h.sqlite", view)
    try:
        w.strategies.save(config, enabled=True, mode=StrategyMode.AUTO, now_ns=at(9, 0))
        report = w.step(at(9, 59, 30), portfolio_delta=1_230.0)
        (decision,) = report.decisions
        assert decision.strategy == "hedged/hedge" and decision.action == "TRADE"
        assert decision.reasons[0].startswith("hedge: portfolio delta +1,230 $/pt outside ±500; sell 12 x SPXW")
        (sent,) = report.sent
        assert sent.quantity == 12 and sent.source == "automation"
        assert w.repo.order(sent.ref).status is OrderStatus.FILLED
        assert strategy_of(w.repo.trades(), w.repo.decisions()) == {w.repo.trades()[0].id: "hedged/hedge"}
        assert w.step(at(9, 59, 40), portfolio_delta=1_230.0).decisions == ()  # inside the 300 s interval
        w.runner = AutomationRunner(DecisionEngine(), PositionMonitor(), place=w.service.place,
                                    record=w.repo.record_decision)  # a restart: the interval comes from the store
        assert w.step(at(9, 59, 50), portfolio_delta=1_230.0).decisions == ()
        assert len(w.step(at(10, 4, 31), portfolio_delta=1_230.0).decisions) == 2  # the entry and a new hedge
    finally:
        w.close()


def test_the_hedger_reads_the_book_delta_when_none_is_given(tmp_path, view):
    """Up to ten short put verticals are long some $ per SPX point: SPY synthetics ($10/pt each) sell it back."""
    config = dataclasses.replace(PCS, name="hedged", sizing=Sizing(quantity=10), hedge=HedgeConfig(
        band_delta=5.0, min_interval_s=0.0, instrument=HedgeInstrument.SPY))
    w = World(tmp_path / "d.sqlite", view)
    try:
        w.strategies.save(config, enabled=True, mode=StrategyMode.AUTO, now_ns=at(9, 0))
        report = w.step(at(10, 0, 1))
        # the entry fills in this step, but the hedge reads the trades given to the step (none yet)
        assert [d.strategy for d in report.decisions] == ["hedged"]
        (trade,) = w.repo.trades(open_only=True)
        assert trade.quantity > 1  # the paper broker fills what the quoted sizes allow
        hedge = w.step(at(10, 0, 5))
        (decision,) = hedge.decisions
        spx = view.snapshot("SPX")
        held = [(leg.contract, leg.ratio * trade.quantity) for leg in trade.legs]
        expected = portfolio_greeks(held, PricingMarket.of(chain_iv(spx))).total.delta_usd_pt
        units = round(expected / 10)
        assert expected > 5 and units >= 1
        assert decision.strategy == "hedged/hedge" and decision.action == "TRADE"
        assert decision.reasons[0].startswith(f"hedge: portfolio delta {expected:+,.0f} $/pt outside ±5; "
                                              f"sell {units} x SPY ")
    finally:
        w.close()
