"""The decision engine on a recorded simulated session: determinism, no look-ahead, orders, and SKIP reasons."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime

import numpy as np
import pytest

from spx_core.automation.config import (
    EntryFilters,
    EntrySchedule,
    PriceMode,
    Sizing,
    SizingMode,
    StrategyConfig,
)
from spx_core.automation.engine import DecisionEngine, MarketContext, decisions_checksum
from spx_core.automation.presets import PRESETS
from spx_core.automation.schedule import entry_slots_ns
from spx_core.domain.calendar import ET, to_ns
from spx_core.domain.contracts import Root
from spx_core.execution import ticks
from spx_core.execution.orders import Intent, Side, package_price
from spx_core.marketdata.simulator import SimulatedMarket, SimulatorConfig
from spx_core.risk.limits import PortfolioState
from spx_core.surface import chain_iv, fit_surface

DAY = date(2025, 3, 12)  # a Wednesday
STEP_S = 300.0  # one recorded snapshot every 5 simulated minutes, 09:30..12:30 ET (14:00 entries find it stale)
STEPS = 36
TEN = 6  # the recorded snapshot of 10:00:01 ET
CUT = to_ns(datetime(2025, 3, 12, 11, 0, tzinfo=ET))  # the perturbation test changes every snapshot after this
SESSION_CONFIGS = [PRESETS[n] for n in ("credit verticals 3/5/7 DTE", "credit verticals 3/5/7 DTE, 0.20 delta",
                                        "call-spread market making", "iron condor (regime filter)",
                                        "SPX vs 10x SPY 0DTE pair")]


def _record(seed: int) -> list[tuple]:
    market = SimulatedMarket(SimulatorConfig(seed=seed, start=datetime(2025, 3, 12, 9, 30, tzinfo=ET)))
    market.advance(1.0)  # SPY's chain is published with the first batch
    out = [(market.snapshot(), market.spy_snapshot())]
    for _ in range(STEPS):
        market.advance(STEP_S)
        out.append((market.snapshot(), market.spy_snapshot()))
    return out


@pytest.fixture(scope="module")
def session():
    return _record(11)


@pytest.fixture(scope="module")
def perturbed(session):
    """The same session up to CUT; every snapshot stamped after it comes from another market (another seed)."""
    other = _record(12)
    return [mine if mine[0].time_ns <= CUT else theirs for mine, theirs in zip(session, other, strict=True)]


def _context(spx, spy, snapshot_id: int) -> MarketContext:
    civ = chain_iv(spx)
    return MarketContext(spx, civ, fit_surface(civ), iv_rank=35.0, vix=17.5, regime=("range",),
                         snapshot_id=snapshot_id, spy_snapshot=spy)


def _replay(recorded, configs, engine: DecisionEngine):
    """Every config at each of its entry slots, on the latest recorded snapshot stamped at or before the slot."""
    contexts: dict[int, MarketContext] = {}
    decisions, orders = [], []
    times = np.array([spx.time_ns for spx, _ in recorded])
    for config in configs:
        for slot in entry_slots_ns(config, DAY):
            i = int(np.searchsorted(times, slot, side="right")) - 1
            if i < 0:
                continue
            if i not in contexts:
                contexts[i] = _context(*recorded[i], snapshot_id=i + 1)
            decision, order = engine.decide(config, contexts[i], slot)
            decisions.append(decision)
            orders.append(order)
    return decisions, orders


@pytest.fixture(scope="module")
def replayed(session):
    return _replay(session, SESSION_CONFIGS, DecisionEngine())


def test_same_session_and_config_give_the_same_decisions(session, replayed):
    decisions, orders = replayed
    again, again_orders = _replay(session, SESSION_CONFIGS, DecisionEngine())
    assert decisions_checksum(again) == decisions_checksum(decisions)
    assert again == decisions and again_orders == orders
    assert sum(d.traded for d in decisions) >= 5, [d.reasons for d in decisions]


def test_decisions_never_use_data_stamped_after_them(replayed, perturbed):
    decisions, _ = replayed
    changed, _ = _replay(perturbed, SESSION_CONFIGS, DecisionEngine())
    before = [(a, b) for a, b in zip(decisions, changed, strict=True) if a.time_ns <= CUT]
    after = [(a, b) for a, b in zip(decisions, changed, strict=True) if a.time_ns > CUT]
    assert before and after
    assert all(a == b for a, b in before)
    assert any(a != b for a, b in after), "the perturbation must reach the later decisions"


def test_a_context_stamped_after_the_decision_is_refused(session):
    spx, spy = session[TEN + 1]
    decision, order = DecisionEngine().decide(PRESETS["credit verticals 3/5/7 DTE"],
                                              MarketContext(spx, spy_snapshot=spy), spx.time_ns - 1)
    assert order is None and decision.action == "SKIP"
    assert "after the decision time" in decision.reasons[0]


def test_a_chain_older_than_the_gate_allows_is_not_decided_on(session, replayed):
    decisions, orders = replayed
    late = [(d, o) for d, o in zip(decisions, orders, strict=True) if d.strategy == "call-spread market making"
            and d.time_ns == to_ns(datetime(2025, 3, 12, 14, 0, tzinfo=ET))]
    assert len(late) == 1 and late[0][1] is None  # the last recorded chain is from 12:30
    assert late[0][0].reasons == (("data: the SPX chain is 5399 s old at the decision time (limit 600 s); "
                                  "decide on fresh quotes"),)  # SPY is not priced by this strategy
    spx, spy = session[-1]
    pair_late = to_ns(datetime(2025, 3, 12, 14, 0, tzinfo=ET))
    decision, _ = DecisionEngine().decide(PRESETS["SPX vs 10x SPY 0DTE pair"], MarketContext(spx, spy_snapshot=spy),
                                          pair_late)
    assert [r.split(" chain")[0] for r in decision.reasons] == ["data: the SPX", "data: the SPY"]


def test_a_trade_carries_the_snapshot_the_config_and_a_ticked_automation_order(session, replayed):
    decisions, orders = replayed
    for decision, order in zip(decisions, orders, strict=True):
        if order is None:
            assert not decision.traded
            continue
        assert decision.reasons[0].startswith("entry: ") and decision.order_ref == order.ref
        assert order.source == "automation" and order.intent is Intent.OPEN
        assert order.snapshot_checksum == decision.snapshot_checksum
        assert order.snapshot_id == decision.snapshot_id and order.created_ns == decision.time_ns
        config = next(c for c in SESSION_CONFIGS if c.name == decision.strategy)
        assert decision.config_hash == config.config_hash and decision.limit_profile == config.limit_profile
        recorded = next(s for s, _ in session if s.checksum == decision.snapshot_checksum)
        assert recorded.time_ns <= decision.time_ns
        combo = len(order.legs) > 1
        roots = [leg.contract.root for leg in order.legs]
        assert order.limit > 0 and all(ticks.on_tick(order.limit, combo=combo, root=r) for r in roots)


def test_a_credit_vertical_is_sold_at_its_mid_on_the_tick(session):
    spx, spy = session[TEN]
    ctx = _context(spx, spy, 2)
    decision, order = DecisionEngine().decide(PRESETS["credit verticals 3/5/7 DTE"], ctx, spx.time_ns)
    assert decision.traded, decision.reasons
    assert order.side is Side.SELL and [leg.ratio for leg in order.legs] == [1, -1]
    short, long_ = (leg.contract for leg in order.legs)
    assert short.strike - long_.strike == 25.0 and short.root is Root.SPXW
    rows = [int(np.flatnonzero((spx.strike == c.strike) & (spx.expiry == np.datetime64(c.expiry))
                               & ~spx.is_call & (spx.root == 1))[0]) for c in (short, long_)]
    mid = package_price([1, -1], [float(spx.mid[r]) for r in rows])
    assert abs(order.limit - mid) <= 0.025 + 1e-9
    natural_cfg = dataclasses.replace(PRESETS["credit verticals 3/5/7 DTE"], price=PriceMode.NATURAL)
    _, natural = DecisionEngine().decide(natural_cfg, ctx, spx.time_ns)
    assert natural.limit <= order.limit and natural.legs == order.legs


def test_the_pair_buys_one_spxw_call_against_ten_spy_calls(session):
    spx, spy = session[TEN]
    decision, order = DecisionEngine().decide(PRESETS["SPX vs 10x SPY 0DTE pair"], _context(spx, spy, 2),
                                              spx.time_ns)
    assert decision.traded, decision.reasons
    held = {leg.contract.root: order.leg_quantity(i) for i, leg in enumerate(order.legs)}
    assert held == {Root.SPXW: 1, Root.SPY: -10}  # long SPX, short 10 SPY, whatever side the price gives
    assert all(leg.contract.expiry == DAY for leg in order.legs)
    no_spy, none = DecisionEngine().decide(PRESETS["SPX vs 10x SPY 0DTE pair"], MarketContext(spx), spx.time_ns)
    assert none is None and "no SPY chain" in no_spy.reasons[0]


def test_a_skip_lists_every_failed_filter(session):
    spx, _spy = session[TEN]
    config = dataclasses.replace(PRESETS["iron condor (regime filter)"],
                                 filters=EntryFilters(iv_rank_min=50, vix_max=15,
                                                      regimes=frozenset({"uptrend", "calm"})))
    ctx = MarketContext(spx, iv_rank=20.0, vix=17.5, regime="range")
    decision, order = DecisionEngine().decide(config, ctx, spx.time_ns)
    assert order is None and decision.action == "SKIP" and decision.order_ref is None
    text = " | ".join(decision.reasons)
    assert len(decision.reasons) == 4, text
    for part in ("IV rank 20.00 is below the minimum 50", "VIX 17.50 is above the maximum 15",
                 "trend range is not in {uptrend}", "VIX bucket normal is not in {calm}"):
        assert part in text
    assert decision.snapshot_checksum == spx.checksum and decision.config_hash == config.config_hash


def test_unknown_inputs_fail_a_filter_unless_missing_passes(session):
    spx, _ = session[TEN]
    strict = dataclasses.replace(PRESETS["iron condor (regime filter)"], filters=EntryFilters(iv_rank_min=10))
    decision, _ = DecisionEngine().decide(strict, MarketContext(spx), spx.time_ns)
    assert decision.reasons == (("IV rank unknown: the market context has none; supply it; or set "
                                "filters.missing_passes"),)
    # the market state's reason travels with the context: the SKIP says what is missing and how to fix it
    told = MarketContext(spx, unknown_why=(("iv_rank", "no ATM IV history stored: record sessions"),))
    decision, _ = DecisionEngine().decide(strict, told, spx.time_ns)
    assert decision.reasons == (("IV rank unknown (no ATM IV history stored: record sessions); or set "
                                 "filters.missing_passes"),)
    lenient = dataclasses.replace(strict, filters=EntryFilters(iv_rank_min=10, missing_passes=True))
    decision, _ = DecisionEngine().decide(lenient, MarketContext(spx), spx.time_ns)
    assert decision.traded, decision.reasons


def test_the_limit_profile_entry_conditions_skip_with_their_names(session):
    spx, _ = session[TEN]
    config = PRESETS["credit verticals 3/5/7 DTE"]
    state = PortfolioState(trades_opened_today=1, stops_today=1)
    decision, order = DecisionEngine().decide(config, MarketContext(spx), spx.time_ns, state=state)
    assert order is None
    assert any("max_new_trades_per_day" in r for r in decision.reasons)
    assert any("stop_after_stop_loss" in r for r in decision.reasons)
    unknown = dataclasses.replace(config, limit_profile="nope")
    decision, _ = DecisionEngine().decide(unknown, MarketContext(spx), spx.time_ns)
    assert "limit profile 'nope' is not defined" in decision.reasons[0]


def test_an_empty_scan_says_why(session):
    spx, _ = session[TEN]
    config = StrategyConfig(name="far", structure="put-credit-vertical", scan={"dte": [3, 7], "dte_days": [4]},
                            entry=EntrySchedule())
    decision, order = DecisionEngine().decide(config, MarketContext(spx), spx.time_ns)
    assert order is None and decision.reasons[0].startswith("scan: no listed")


def test_risk_budget_sizes_by_max_loss_and_skips_when_it_buys_nothing(session):
    spx, _ = session[TEN]
    ctx = _context(spx, None, 2)
    base = PRESETS["iron condor (regime filter)"]
    decision, order = DecisionEngine().decide(base, ctx, spx.time_ns)
    assert decision.traded, decision.reasons
    max_loss = float(decision.reasons[1].split("max loss ")[1].split(",")[0]) * 100.0
    assert order.quantity == min(int(base.sizing.budget_usd // max_loss), base.sizing.max_quantity)
    poor = dataclasses.replace(base, sizing=Sizing(SizingMode.RISK_BUDGET, budget_usd=10.0))
    decision, order = DecisionEngine().decide(poor, ctx, spx.time_ns)
    assert order is None and "above the risk budget 10 $" in decision.reasons[0]


def test_every_order_of_the_session_passes_the_pre_trade_gate(session, replayed):
    from spx_core.execution.gate import PreTradeGate
    from tests.execution.gate_market import RecordingBroker, StaticMarket

    decisions, orders = replayed
    by_checksum = {spx.checksum: (spx, spy) for spx, spy in session}
    checked = 0
    for decision, order in zip(decisions, orders, strict=True):
        if order is None:
            continue
        spx, spy = by_checksum[decision.snapshot_checksum]
        market = StaticMarket(snapshots={"SPX": spx, "SPY": spy})
        market.clock = decision.time_ns
        verdict = PreTradeGate().preview(order, market, RecordingBroker())
        assert verdict.ok, (decision.reasons[0], [str(f) for f in verdict.failures])
        checked += 1
    assert checked >= 5


def test_a_context_from_a_market_state_reads_its_rank_vix_and_regimes(session):
    from spx_core.analytics.filters import IVRankSource
    from spx_core.analytics.market_state import MarketState
    from spx_core.analytics.regimes import TrendRegime, VixBucket

    spx, _ = session[TEN]
    state = MarketState(vix=18.0, vix_bucket=VixBucket.NORMAL, trend=TrendRegime.UNKNOWN, vix_rank=40.0,
                        atm_iv_rank=55.0, mixture_regime="low-vol")
    ctx = MarketContext.from_state(spx, state, iv_rank_source=IVRankSource.ATM)
    assert (ctx.iv_rank, ctx.vix, ctx.regime) == (55.0, 18.0, ("low-vol", "normal"))
    decision, _ = DecisionEngine().decide(PRESETS["iron condor (regime filter)"], ctx, spx.time_ns)
    assert decision.reasons[0].startswith("regime: trend unknown")  # an unknown trend fails the range filter
    # the state's reason for a missing field travels to the SKIP: the user reads how to fix it
    why = "no SPX daily bars stored: import them with spx-data import"
    missing = dataclasses.replace(state, trend=None, missing=(("trend", why),))
    ctx = MarketContext.from_state(spx, missing, iv_rank_source=IVRankSource.ATM)
    decision, _ = DecisionEngine().decide(PRESETS["iron condor (regime filter)"], ctx, spx.time_ns)
    assert decision.reasons[0].startswith(f"regime: trend unknown ({why}); allowed")


def test_mid_offset_moves_toward_the_natural_and_stops_there(session):
    spx, _ = session[TEN]
    ctx = _context(spx, None, 7)
    base = PRESETS["credit verticals 3/5/7 DTE"]
    limits = {}
    for mode, offset in (("mid", 0.0), ("mid_offset", 0.10), ("mid_offset", 50.0), ("natural", 0.0)):
        config = dataclasses.replace(base, price=PriceMode(mode), price_offset=offset)
        _, order = DecisionEngine().decide(config, ctx, spx.time_ns)
        limits[(mode, offset)] = order.limit
    assert limits[("mid_offset", 0.10)] == pytest.approx(limits[("mid", 0.0)] - 0.10)  # a SELL gives up credit
    assert limits[("mid_offset", 50.0)] == limits[("natural", 0.0)] < limits[("mid", 0.0)]


def test_the_pair_skips_when_the_cheapest_package_costs_more_than_the_max_debit(session):
    spx, spy = session[TEN]
    pair = PRESETS["SPX vs 10x SPY 0DTE pair"]
    ctx = MarketContext(spx, spy_snapshot=spy)
    decision, order = DecisionEngine().decide(pair, ctx, spx.time_ns)
    natural = float(decision.reasons[1].split("/ natural ")[1].split(",")[0])  # the package's natural debit
    strict = dataclasses.replace(pair, scan={**pair.scan, "max_debit": natural - 0.05})
    decision, order = DecisionEngine().decide(strict, ctx, spx.time_ns)
    assert order is None and "above the max debit" in decision.reasons[0]
    far = dataclasses.replace(pair, scan={**pair.scan, "dte": [300, 400]})  # SPY lists 6 months out
    decision, _ = DecisionEngine().decide(far, ctx, spx.time_ns)
    assert decision.reasons[0].startswith("pair: no expiry listed by both SPXW and SPY has DTE 300-400")
