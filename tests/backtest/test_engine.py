"""The backtest engine on sessions recorded with the simulator: the live runner, gate, limits, paper broker and
settlement driven over stored snapshots; exits at take profit / stop loss, expiry settlement, fees, no look-ahead,
reproducible checksums, cancel and progress."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from datetime import datetime

import numpy as np
import pytest

from spx_core.automation.config import EntrySchedule, PriceMode
from spx_core.automation.presets import PRESETS
from spx_core.backtest.engine import Backtest
from spx_core.backtest.marks import MarkPolicy
from spx_core.cli.simulate_command import record_session
from spx_core.domain.calendar import ET, to_ns
from spx_core.domain.quotes import QuoteFlag
from spx_core.execution.fees import FeeSchedule
from spx_core.execution.fill_model import FillMode, FillModel
from spx_core.marketdata.simulator import SimulatedMarket, SimulatorConfig
from spx_core.risk.profiles import profile
from spx_core.storage.store import Store

BASE = PRESETS["credit verticals 3/5/7 DTE"]
#: crossing the spread so the paper broker fills at once; a tight stop so the exit comes within the session
PCS = dataclasses.replace(BASE, name="pcs", price=PriceMode.NATURAL,
                          exits=dataclasses.replace(BASE.exits, take_profit_pct=5.0, stop_loss_pct=5.0))
FEES = FeeSchedule()


def record(path, start: datetime, minutes: int, session: str = "s") -> Store:
    store = Store.open(path)
    record_session(store, SimulatedMarket(SimulatorConfig(seed=5, start=start)), session, minutes, replace=False)
    return store


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    s = record(tmp_path_factory.mktemp("bt") / "data.sqlite", datetime(2024, 3, 13, 9, 59, tzinfo=ET), 75)
    yield s
    s.close()


def run(store, config=PCS, **kw):
    kw.setdefault("profile", profile("credit verticals"))
    return Backtest(store, [config], session="s", fees=FEES, **kw).run()


def test_credit_vertical_enters_exits_at_its_stop_and_pays_the_fee_schedule(store):
    result = run(store)
    entry, exit_ = result.decisions[0], result.decisions[1]
    assert entry.action == "TRADE" and entry.reasons[0].startswith("entry: SELL 1 SPXW")
    assert exit_.reasons[0].startswith("stop_loss:")
    (trade,) = result.trades
    assert trade.exit_reason == "stop_loss" and trade.strategy == "pcs" and trade.exit_ns is not None
    # two legs, opened and closed, one contract each: the schedule's per-contract commission + fees, four times
    per_leg = [sum(FEES.charges(_contract(leg), 1, 1.0)) for leg in trade.legs]
    assert trade.fees > 0 and trade.fees == pytest.approx(2 * sum(per_leg), abs=0.02)
    assert result.equity.iloc[0] == 100_000.0
    assert result.equity.iloc[-1] == pytest.approx(100_000.0 + trade.pnl)
    assert str(result.equity.index.tz) == "UTC" and result.equity.index.is_monotonic_increasing
    assert result.margin.index.equals(result.equity.index) and result.margin.max() > 0 == result.margin.iloc[-1]
    assert result.marks["clean"] >= 1 and not result.cancelled
    # the data store's order tables were never written: the run used its own order store
    from spx_core.storage.orders_repo import OrderRepository
    assert OrderRepository(store).trades() == [] and OrderRepository(store).decisions() == []


def test_take_profit_exit(store):
    tp = dataclasses.replace(PCS, name="tp", price=PriceMode.MID,
                             exits=dataclasses.replace(BASE.exits, take_profit_pct=1e-6, stop_loss_pct=None))
    result = run(store, tp, profile=None, fill=FillModel(mode=FillMode.MID))
    assert result.trades and result.trades[0].exit_reason == "take_profit"


def _contract(leg):
    from datetime import date

    from spx_core.domain.contracts import OptionContract, Right, Root
    root, expiry, strike, right, _ = leg
    return OptionContract(Root(root), date.fromisoformat(expiry), strike, Right(right))


ZERO = dataclasses.replace(BASE, name="0dte", price=PriceMode.NATURAL,
                           scan={**BASE.scan, "dte": (0, 0), "dte_days": (0,), "short_delta": 0.3, "widths": (5,)},
                           entry=EntrySchedule(times=("15:30",)),
                           exits=dataclasses.replace(BASE.exits, take_profit_pct=None, stop_loss_pct=None))
CLOSE = to_ns(datetime(2024, 3, 13, 16, tzinfo=ET))


def test_zero_dte_vertical_settles_at_the_close(tmp_path):
    store = record(tmp_path / "close.sqlite", datetime(2024, 3, 13, 15, 29, tzinfo=ET), 33)
    try:
        result = Backtest(store, [ZERO], session="s", fees=FEES).run()
        (trade,) = result.trades
        assert trade.exit_reason == "expiry" and trade.exit_ns == CLOSE and trade.exit_price >= 0
        assert result.equity.iloc[-1] == pytest.approx(100_000.0 + trade.pnl)
    finally:
        store.close()


def test_settlement_between_snapshots_is_a_step_of_its_own(tmp_path):
    """The last snapshot is at 15:58 (the close was watched, within tolerance): the 16:00 settlement instant is a
    step with no new data, inside a start/end range that reaches past it."""
    store = record(tmp_path / "early.sqlite", datetime(2024, 3, 13, 15, 29, tzinfo=ET), 30)
    try:
        start, end = to_ns(datetime(2024, 3, 13, 15, 0, tzinfo=ET)), to_ns(datetime(2024, 3, 13, 17, 0, tzinfo=ET))
        result = Backtest(store, [ZERO], start_ns=start, end_ns=end, fees=FEES).run()
        (trade,) = result.trades
        assert trade.exit_reason == "expiry" and trade.exit_ns == CLOSE
        assert result.equity.index[-1].value == CLOSE and result.steps == (30, 30)
        assert result.equity.iloc[-1] == pytest.approx(100_000.0 + trade.pnl)
        by_session = Backtest(store, [ZERO], session="s", fees=FEES).run()  # no end given: the same settlement
        assert by_session.trades == result.trades
    finally:
        store.close()


def test_no_look_ahead_perturbing_later_snapshots_changes_nothing_before(store, tmp_path):
    base = run(store)
    cut = base.decisions[1].time_ns + 10 * 60 * 10**9  # after the entry and its exit
    other = Store.open(tmp_path / "perturbed.sqlite")
    try:
        for info in store.list_snapshots(session="s"):
            snap = store.load_snapshot(info.id)
            if snap.time_ns > cut:  # every later chain moved: prices doubled, the index 100 points lower
                snap = snap.replace_quotes(time=snap.time_ns, underlying_price=snap.underlying_price - 100,
                                           bid=snap.columns["bid"] * 2, ask=snap.columns["ask"] * 2)
            other.save_snapshot(snap, source="Simulated", session="s")
        changed = run(other)
    finally:
        other.close()
    assert changed.data_checksum != base.data_checksum  # the later data really differs
    before = [d for d in base.decisions if d.time_ns <= cut]
    assert len(before) >= 2 and before == [d for d in changed.decisions if d.time_ns <= cut]
    assert base.equity[base.equity.index.asi8 <= cut].equals(changed.equity[changed.equity.index.asi8 <= cut])
    # fills up to the cut: every trade's entry, and its exit when it came before the cut
    def fills(result):
        return ([(t.trade_id, t.entry_ns, t.legs, t.entry_price, t.quantity) for t in result.trades
                 if t.entry_ns <= cut],
                [(t.trade_id, t.exit_ns, t.exit_price, t.pnl, t.fees) for t in result.trades
                 if t.exit_ns is not None and t.exit_ns <= cut])
    assert fills(base) == fills(changed) and fills(base)[1]


def test_reproducible_in_process_and_in_a_subprocess(store):
    first, second = run(store), run(store)
    assert first.result_checksum == second.result_checksum and first.config_hash == second.config_hash
    assert first.data_checksum == second.data_checksum and first.snapshots_read
    assert first.code_version.startswith("0.") and "+" in first.code_version
    code = ("import json,sys,dataclasses; sys.path.insert(0, sys.argv[2]);"
            "from tests.backtest.test_engine import run; from spx_core.storage.store import Store;"
            "r = run(Store.open(sys.argv[1], create=False)); print(json.dumps([r.result_checksum, r.config_hash]))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run([sys.executable, "-c", code, str(store.path), os.getcwd()], capture_output=True, text=True,
                         env=env, check=True, timeout=300)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [first.result_checksum, first.config_hash]
    assert run(store, profile="credit verticals").result_checksum == first.result_checksum  # a name or the profile
    other = run(store, starting_cash=50_000.0)
    assert other.config_hash != first.config_hash and other.result_checksum != first.result_checksum


def test_cancel_stops_early_with_a_partial_result_and_progress_is_called(store):
    calls = []
    bt = Backtest(store, [PCS], session="s", fees=FEES, profile=profile("credit verticals"))
    result = bt.run(progress=lambda done, total: calls.append((done, total)), cancel=lambda: len(calls) >= 5)
    assert result.cancelled and result.steps[0] == 5 and result.steps[1] > 5 and len(result.equity) == 5
    assert calls == [(i, result.steps[1]) for i in range(1, 6)]
    full = bt.run(progress=lambda done, total: calls.append((done, total)))
    assert not full.cancelled and full.steps[0] == full.steps[1] and calls[-1] == (full.steps[1],) * 2


@pytest.mark.parametrize(("choice", "used"), [("skip", "skip"), ("raw", "raw"), ("surface", "surface")])
def test_bad_quote_choice_is_counted_and_a_zero_bid_leg_never_marks_a_take_profit(store, choice, used):
    info = store.list_snapshots(session="s", underlying="SPX")[30]
    snap = store.load_snapshot(info.id)
    cols = snap.columns
    row = int(np.flatnonzero((cols["bid"] > 1) & ~cols["is_call"])[0])
    bid, ask = cols["bid"].copy(), cols["ask"].copy()
    bid[row], ask[row] = 0.0, 10.0 * ask[row]  # a 0 x many quote: untrustworthy
    bad = snap.replace_quotes(time=snap.time_ns, underlying_price=snap.underlying_price, bid=bid, ask=ask)

    class View:
        def now_ns(self):
            return bad.time_ns

        def snapshot(self, u):
            return bad if u == "SPX" else None

    contract = _row_contract(bad, row)
    policy = MarkPolicy(choice)
    view, marks = policy.step(View(), [contract])
    assert policy.counts[used] == 1 and policy.counts["clean"] == 0
    adjusted = view.snapshot("SPX")
    if choice == "skip":
        assert np.isnan(marks[contract]) and adjusted.columns["flags"][row] & QuoteFlag.WIDE
    elif choice == "raw":
        assert marks[contract] == pytest.approx(0.5 * ask[row]) == adjusted.columns["bid"][row]
        assert adjusted.columns["flags"][row] == 0
    else:
        assert 0 <= marks[contract] < ask[row] and adjusted.columns["bid"][row] == adjusted.columns["ask"][row]


def _row_contract(snap, row):
    return snap.contract(row)


def test_bad_quote_setting_is_validated(store):
    with pytest.raises(ValueError, match="bad_quote 'mid' must be one of skip, surface, raw"):
        Backtest(store, [PCS], session="s", bad_quote="mid")


def copy_session(store, path, edit) -> Store:
    """The session copied into a new store, each snapshot passed through ``edit(snap) -> snap``."""
    other = Store.open(path)
    for info in store.list_snapshots(session="s"):
        other.save_snapshot(edit(store.load_snapshot(info.id)), source="Simulated", session="s")
    return other


@pytest.mark.parametrize("choice", ["skip", "surface", "raw"])
def test_a_zero_bid_short_leg_fakes_a_take_profit_only_when_raw_quotes_are_chosen(store, tmp_path, choice):
    mid = dataclasses.replace(BASE, name="mid", price=PriceMode.MID,
                              exits=dataclasses.replace(BASE.exits, take_profit_pct=50.0, stop_loss_pct=None))
    clean = run(store, mid, profile=None, fill=FillModel(mode=FillMode.MID), bad_quote=choice)
    (trade,) = clean.trades
    assert trade.exit_reason == "open"  # no exit on the clean data
    short = next(_contract(leg) for leg in trade.legs if leg[4] < 0)
    broken_at = trade.entry_ns + 5 * 60 * 10**9

    def edit(snap):
        if snap.time_ns != broken_at or snap.underlying != "SPX":
            return snap
        row = int(snap.rows_of([short])[0]) if hasattr(snap, "rows_of") else _row(snap, short)
        bid, ask = snap.columns["bid"].copy(), snap.columns["ask"].copy()
        bid[row], ask[row] = 0.0, 0.10  # 0 x 0.10: the short leg "worth" 0.05 -> a fictitious take profit
        return snap.replace_quotes(time=snap.time_ns, underlying_price=snap.underlying_price, bid=bid, ask=ask)

    broken = copy_session(store, tmp_path / "broken.sqlite", edit)
    try:
        result = run(broken, mid, profile=None, fill=FillModel(mode=FillMode.MID), bad_quote=choice)
    finally:
        broken.close()
    at_break = [d for d in result.decisions if d.time_ns == broken_at]
    assert result.marks[choice] == 1  # one held leg, one step with its bad quote
    if choice == "raw":
        assert at_break and at_break[0].reasons[0].startswith("take_profit:")
    else:
        assert at_break == [] and result.decisions == clean.decisions


def _row(snap, contract):
    from spx_core.strategies.market import locate

    return int(locate(snap, [contract])[0])


def test_the_limits_read_a_finite_day_pnl_on_the_next_day(tmp_path, monkeypatch):
    """Held overnight, the position's day baseline rolls at the new market day (as the app rolls it), so the
    book the limits read has a day P&L, not NaN."""
    from spx_core.backtest import engine

    store = record(tmp_path / "overnight.sqlite", datetime(2024, 3, 11, 15, 50, tzinfo=ET), 25, session="s")
    seen = []

    def spy(*args, **kw):
        state = portfolio_state(*args, **kw)
        seen.append((kw["day_start_ns"], state.day_pnl))
        return state

    from spx_core.risk.state import portfolio_state
    monkeypatch.setattr(engine, "portfolio_state", spy)
    overnight = dataclasses.replace(BASE, name="overnight", price=PriceMode.NATURAL,
                                    entry=EntrySchedule(times=("15:51",)),
                                    exits=dataclasses.replace(BASE.exits, take_profit_pct=None, stop_loss_pct=None))
    try:
        result = Backtest(store, [overnight], session="s", fees=FEES).run()
    finally:
        store.close()
    assert result.trades and result.trades[0].exit_reason == "open"
    day2 = to_ns(datetime(2024, 3, 12, tzinfo=ET))
    later = [pnl for day, pnl in seen if day >= day2]
    assert later and all(np.isfinite(later))


def test_a_range_without_snapshots_is_one_clear_error(store):
    from spx_core.backtest.engine import BacktestError

    with pytest.raises(BacktestError, match=r"^no stored snapshots in session 'nope': import data or record"):
        Backtest(store, [PCS], session="nope").run()
    start = to_ns(datetime(2020, 1, 2, 10, tzinfo=ET))
    with pytest.raises(BacktestError, match=r"between 2020-01-02 10:00 ET and 2020-01-02 10:00 ET"):
        Backtest(store, [PCS], start_ns=start, end_ns=start).run()
