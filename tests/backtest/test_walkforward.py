"""Walk-forward over three recorded simulated days: windows on the stored trading days, the best training point
(NaN never wins) run on the next day, every run stored and reproducible alone, the stitched out-of-sample curve."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta

import pandas as pd
import pytest

from spx_core.backtest.config import load_spec
from spx_core.backtest.metrics import compute_metrics
from spx_core.backtest.sweep import GridError, best_row, parse_grid
from spx_core.backtest.walkforward import WalkForwardError, plan_windows, walk_forward
from spx_core.cli.simulate_command import record_session
from spx_core.domain.calendar import ET
from spx_core.marketdata.simulator import SimulatedMarket, SimulatorConfig
from spx_core.storage.backtest_repo import BacktestRepository
from spx_core.storage.store import Store

DAYS = (date(2024, 3, 12), date(2024, 3, 13), date(2024, 3, 14))
CONFIG = {"name": "wf", "data": {"start": "2024-03-12", "end": "2024-03-14"},
          "strategy": {"preset": "credit verticals 3/5/7 DTE", "price": "natural"},
          "exits": {"take_profit": 0.05, "stop_loss": 0.05}, "risk": {"profile": "credit verticals"}}
GRID = parse_grid("strategy.short_delta=0.10,0.20")


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    """Twelve minutes from 09:59 ET on each of three days, each day its own seed (so the days differ)."""
    path = tmp_path_factory.mktemp("wf") / "data.sqlite"
    with Store.open(path) as store:
        for seed, day in enumerate(DAYS, start=3):
            start = datetime.combine(day, datetime.min.time(), tzinfo=ET) + timedelta(hours=9, minutes=59)
            record_session(store, SimulatedMarket(SimulatorConfig(seed=seed, start=start)), f"d{seed}", 12,
                           replace=False)
    return path


@pytest.fixture(scope="module")
def spec():
    return load_spec(CONFIG)


@pytest.fixture(scope="module")
def wf(db, spec):
    calls = []
    result = walk_forward(db, spec, GRID, train_days=1, test_days=1, metric="total_return", workers=2,
                          progress=lambda d, t: calls.append((d, t)))
    return result, calls


def test_windows_train_on_one_day_and_test_the_best_point_on_the_next(wf):
    result, calls = wf
    assert [(w.train, w.test) for w in result.windows] == [((DAYS[0], DAYS[0]), (DAYS[1], DAYS[1])),
                                                           ((DAYS[1], DAYS[1]), (DAYS[2], DAYS[2]))]
    assert calls[-1] == (6, 6) and [d for d, _ in calls] == list(range(1, 7))  # 2 windows x (2 points + 1 test)
    for w in result.windows:
        assert [r.params for r in w.train_rows] == [{"strategy.short_delta": 0.10}, {"strategy.short_delta": 0.20}]
        assert all(r.error is None for r in w.train_rows)
        assert w.best == best_row(w.train_rows, "total_return").params and w.error is None
        assert w.test_run_id is not None and w.test_checksum and "total_return" in w.test_metrics
    assert not result.cancelled
    table = result.table()
    assert list(table["test_run_id"]) == [w.test_run_id for w in result.windows]


def test_every_run_is_stored_under_one_sweep_and_a_test_run_reproduces_alone(db, spec, wf):
    result, _ = wf
    with Store.open(db, create=False) as store:
        repo = BacktestRepository(store)
        runs = repo.sweep_runs(result.sweep_id)
        assert len(runs) == 6
        w = result.windows[1]
        (test,) = [r for r in runs if r.id == w.test_run_id]
        assert test.params == {**w.best, "data.start": "2024-03-14", "data.end": "2024-03-14"}
        assert test.name.startswith("wf w2 test [short_delta=")
        config = repo.load_run(test.id).config_toml
        assert load_spec(config).backtest(store).run().result_checksum == w.test_checksum == test.result_checksum


def test_the_out_of_sample_equity_adds_the_test_windows_pnl_end_to_end(db, spec, wf):
    result, _ = wf
    with Store.open(db, create=False) as store:
        repo = BacktestRepository(store)
        first, second = (repo.load_run(w.test_run_id) for w in result.windows)
    cash = spec.starting_cash
    expected = pd.concat([first.equity, second.equity - cash + first.equity.iloc[-1]])
    pd.testing.assert_series_equal(result.equity, expected, check_names=False)
    assert result.equity.index.is_monotonic_increasing and str(result.equity.index.tz) == "UTC"
    figures = compute_metrics(expected, [*first.trades, *second.trades], starting_cash=cash).as_dict()
    assert result.metrics["total_return"] == pytest.approx(figures["total_return"])
    assert result.metrics["n_trades"] == figures["n_trades"] and result.metrics["n_days"] == 2


def test_a_metric_that_is_nan_everywhere_picks_nothing(db, spec):
    """One-day training windows have no Sharpe ratio (fewer than two daily returns): no window is tested."""
    result = walk_forward(db, spec, GRID, train_days=1, test_days=2, metric="sharpe", workers=1)
    (window,) = result.windows
    assert all(math.isnan(r.value("sharpe")) for r in window.train_rows)
    assert window.best is None and window.test_run_id is None
    assert window.error == "no training run had a finite sharpe; nothing to test"
    assert result.equity.empty and result.metrics == {}


def test_a_range_too_short_says_how_long_it_is(db, spec):
    with pytest.raises(WalkForwardError) as info:
        walk_forward(db, spec, GRID, train_days=2, test_days=2)
    assert str(info.value) == ("walk-forward 2:2 needs at least 4 trading days with stored snapshots; 2024-03-12 "
                               "to 2024-03-14 (ET) has 3 (2024-03-12 to 2024-03-14): shorten the windows or widen "
                               "[data]")
    with pytest.raises(GridError, match="cannot vary"):
        walk_forward(db, spec, {"data.session": ["d3"]}, train_days=1, test_days=1)


def test_plan_windows_steps_by_the_test_length_and_keeps_whole_windows_only():
    days = [date(2024, 1, 1) + timedelta(days=i) for i in range(10)]
    plan = plan_windows(days, 4, 2)
    assert [(tr[0].day, tr[-1].day, te[0].day, te[-1].day) for tr, te in plan] == [(1, 4, 5, 6), (3, 6, 7, 8),
                                                                                   (5, 8, 9, 10)]
    assert len(plan_windows(days, 5, 2)) == 2  # days 1-7 and 3-9; 5-11 runs past the data
    with pytest.raises(WalkForwardError, match="at least 1 day each"):
        plan_windows(days, 0, 2)
    with pytest.raises(WalkForwardError, match="has none"):
        plan_windows([], 1, 1)
