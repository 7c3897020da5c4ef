"""Stored backtest runs: a real engine run saved and loaded back equal, list/delete/sweeps, non-finite numbers,
one transaction per save, and an older database gaining the tables on open."""

from __future__ import annotations

import dataclasses
import math
import sqlite3
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest

from spx_core.automation.config import PriceMode
from spx_core.automation.presets import PRESETS
from spx_core.backtest.engine import Backtest
from spx_core.backtest.metrics import compute_metrics
from spx_core.backtest.run import result_checksum
from spx_core.cli.simulate_command import record_session
from spx_core.domain.calendar import ET
from spx_core.execution.fees import FeeSchedule
from spx_core.marketdata.simulator import SimulatedMarket, SimulatorConfig
from spx_core.risk.profiles import profile
from spx_core.storage import MIGRATIONS, StorageError, Store, make_engine
from spx_core.storage.backtest_repo import BacktestRepository, from_json, to_json
from spx_core.storage.migrations import latest_version, migrate

BASE = PRESETS["credit verticals 3/5/7 DTE"]
#: crossing the spread so the paper broker fills at once; a tight stop so the trade closes within the hour
PCS = dataclasses.replace(BASE, name="pcs", price=PriceMode.NATURAL,
                          exits=dataclasses.replace(BASE.exits, take_profit_pct=5.0, stop_loss_pct=5.0))
TOML = '[data]\nsession = "s"\n\n[strategy]\npreset = "credit verticals 3/5/7 DTE"\n'
CHILD_TABLES = ("backtest_trades", "backtest_decisions", "backtest_equity")


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """One hour of simulated chains and a real run over it (a credit vertical entered and stopped out)."""
    path = tmp_path_factory.mktemp("bt") / "data.sqlite"
    with Store.open(path) as store:
        market = SimulatedMarket(SimulatorConfig(seed=5, start=datetime(2024, 3, 13, 9, 59, tzinfo=ET)))
        record_session(store, market, "s", 60, replace=False)
        result = Backtest(store, [PCS], session="s", fees=FeeSchedule(), profile=profile("credit verticals")).run()
    assert result.trades and result.decisions and len(result.equity) == 60  # the run really traded
    return path, result


@pytest.fixture()
def store(recorded, tmp_path):
    # a fresh copy of the recorded database per test: runs saved by one test do not leak into another
    copy = tmp_path / "copy.sqlite"
    with sqlite3.connect(recorded[0]) as src, sqlite3.connect(copy) as dst:
        src.backup(dst)
    s = Store.open(copy)
    yield s
    s.close()


@pytest.fixture()
def result(recorded):
    return recorded[1]


class WithExtras:
    """The result plus attributes the engine may not have yet (``factors``, ``starting_cash``)."""

    def __init__(self, base: Any, **extra: Any) -> None:
        self._base, self._extra = base, extra

    def __getattr__(self, name: str) -> Any:
        return self._extra[name] if name in self._extra else getattr(self._base, name)


def _rows(store, table: str) -> int:
    with store._read() as conn:
        return conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one()


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def test_a_real_run_is_saved_and_loaded_back_equal(store, result):
    repo = BacktestRepository(store)
    factors = {0: {"iv_rank": 0.42, "short_delta": -0.2, "vix": float("nan")}}
    run_id = repo.save_run(WithExtras(result, factors=factors, starting_cash=100_000.0), config_toml=TOML,
                           name="pcs hour")
    run = repo.load_run(run_id)

    assert run.trades == result.trades and run.decisions == result.decisions
    pd.testing.assert_series_equal(run.equity, result.equity)
    pd.testing.assert_series_equal(run.margin, result.margin)
    assert str(run.equity.index.tz) == "UTC"
    assert run.config_toml == TOML and run.marks == result.marks and run.notes == result.notes
    assert run.factors.keys() == {0} and run.factors[0]["iv_rank"] == 0.42 and math.isnan(run.factors[0]["vix"])
    info = run.info
    assert (info.id, info.name, info.config_sha256, info.data_checksum, info.result_checksum, info.code_version) == (
        run_id, "pcs hour", result.config_hash, result.data_checksum, result.result_checksum, result.code_version)
    assert info.steps == result.steps and info.cancelled is False and info.sweep_id is None and info.params is None
    # what was loaded checksums to what was stored: the trades, decisions and curve are bit for bit the run's
    assert result_checksum(run.trades, run.decisions, run.equity) == info.result_checksum
    # metrics were computed from the run when none were given
    expected = compute_metrics(result.equity, result.trades, starting_cash=100_000.0, margin=result.margin)
    assert info.metrics.keys() == expected.as_dict().keys()
    assert all(_same(info.metrics[k], v) for k, v in expected.as_dict().items() if isinstance(v, float))
    assert info.metrics["n_trades"] == len(result.trades) == 1


def test_the_engines_own_entry_factors_round_trip(store, result):
    factors = getattr(result, "factors", {})  # the engine records them per trade position (when it does)
    run = BacktestRepository(store).load_run(BacktestRepository(store).save_run(result, config_toml=TOML))
    assert run.factors.keys() == factors.keys()
    for seq, values in factors.items():
        assert run.factors[seq].keys() == values.keys()
        assert all(_same(run.factors[seq][k], float(v)) for k, v in values.items())


def test_list_delete_and_sweeps(store, result):
    repo = BacktestRepository(store)
    first = repo.save_run(result, config_toml=TOML, name="a")
    sweep = repo.create_sweep(config_toml=TOML, grid="strategy.width=10,25", metric="sharpe")
    points = [repo.save_run(result, config_toml=TOML + f"width = {w}\n", sweep_id=sweep,
                            params={"strategy.width": w}) for w in (10, 25)]

    assert [r.id for r in repo.list_runs()] == [first, *points]
    assert [(r.id, r.params, r.sweep_id) for r in repo.sweep_runs(sweep)] == [
        (points[0], {"strategy.width": 10}, sweep), (points[1], {"strategy.width": 25}, sweep)]
    assert [r.id for r in repo.list_runs(sweep_id=sweep)] == points
    assert [(s.id, s.grid, s.metric, s.config_toml) for s in repo.sweeps()] == [
        (sweep, "strategy.width=10,25", "sharpe", TOML)]
    assert repo.load_run(points[1]).config_toml.endswith("width = 25\n")

    repo.delete_run(points[0])
    assert [r.id for r in repo.list_runs()] == [first, points[1]]
    with pytest.raises(KeyError, match=f"no backtest run {points[0]}; list them with spx-backtest runs"):
        repo.load_run(points[0])
    with pytest.raises(KeyError, match="no backtest run 999"):
        repo.delete_run(999)
    with pytest.raises(KeyError, match="no backtest sweep 77"):
        repo.sweep_runs(77)
    # the deleted run's rows went with it; the others' stayed
    n_child = len(result.trades), len(result.decisions), len(result.equity)
    assert tuple(_rows(store, t) for t in CHILD_TABLES) == tuple(2 * n for n in n_child)
    repo.delete_run(first)
    repo.delete_run(points[1])
    assert repo.list_runs() == [] and all(_rows(store, t) == 0 for t in CHILD_TABLES)


def test_a_run_of_an_unknown_sweep_is_refused_and_nothing_is_written(store, result):
    repo = BacktestRepository(store)
    with pytest.raises(KeyError, match="no backtest sweep 5; create it first"):
        repo.save_run(result, config_toml=TOML, sweep_id=5, params={"strategy.width": 10})
    assert repo.list_runs() == [] and _rows(store, "backtest_trades") == 0


def test_nan_and_infinite_numbers_survive_a_round_trip(store, result):
    repo = BacktestRepository(store)
    metrics = {"sharpe": float("nan"), "profit_factor": float("inf"), "largest_loss": float("-inf"),
               "cagr": np.float64("nan"), "n_trades": 3, "max_drawdown_recovered": True, "total_return": 0.25}
    open_trade = dataclasses.replace(result.trades[0], exit_ns=None, exit_reason="open",
                                     exit_price=float("nan"), pnl=float("inf"), fees=float("-inf"))
    equity = result.equity.copy()
    margin = result.margin.copy()
    margin.iloc[3] = float("nan")
    equity.iloc[5] = float("inf")
    odd = WithExtras(result, trades=(open_trade,), equity=equity, margin=margin,
                     factors={0: {"a": float("inf"), "b": float("nan"), "c": -1.5}})
    run_id = repo.save_run(odd, config_toml=TOML, metrics=metrics,
                           params={"strategy.stop": float("inf"), "x": float("nan")})
    run = repo.load_run(run_id)

    got = run.info.metrics
    assert math.isnan(got["sharpe"]) and math.isnan(got["cagr"])
    assert got["profit_factor"] == math.inf and got["largest_loss"] == -math.inf
    assert (got["n_trades"], got["max_drawdown_recovered"], got["total_return"]) == (3, True, 0.25)
    assert type(got["n_trades"]) is int and type(got["max_drawdown_recovered"]) is bool
    (trade,) = run.trades
    assert trade.exit_ns is None and math.isnan(trade.exit_price) and trade.pnl == math.inf and trade.fees == -math.inf
    assert run.factors[0]["a"] == math.inf and math.isnan(run.factors[0]["b"]) and run.factors[0]["c"] == -1.5
    assert run.info.params["strategy.stop"] == math.inf and math.isnan(run.info.params["x"])
    pd.testing.assert_series_equal(run.equity, equity)
    pd.testing.assert_series_equal(run.margin, margin)


def test_the_json_encoding_is_standard_json_with_named_non_finite_numbers():
    text = to_json({"b": [float("nan"), float("inf")], "a": -float("inf"), "n": None, "s": "pcs"})
    assert text == '{"a":"-Infinity","b":["NaN","Infinity"],"n":null,"s":"pcs"}'
    back = from_json(text)
    assert back["a"] == -math.inf and math.isnan(back["b"][0]) and back["b"][1] == math.inf
    assert back["s"] == "pcs" and back["n"] is None and from_json(None) is None


def test_a_failure_mid_save_leaves_nothing_half_written(store, result):
    repo = BacktestRepository(store)
    # the equity rows are inserted last: make that insert fail after the run, trades and decisions went in
    with store._write() as conn:
        conn.exec_driver_sql("CREATE TRIGGER fail_equity BEFORE INSERT ON backtest_equity "
                             "BEGIN SELECT RAISE(ABORT, 'disk gave up'); END")
    with pytest.raises(StorageError, match="disk gave up"):
        repo.save_run(result, config_toml=TOML)
    assert repo.list_runs() == []
    assert all(_rows(store, t) == 0 for t in (*CHILD_TABLES, "backtest_runs"))

    with store._write() as conn:
        conn.exec_driver_sql("DROP TRIGGER fail_equity")
    run_id = repo.save_run(result, config_toml=TOML)
    assert repo.load_run(run_id).trades == result.trades


def test_inconsistent_results_are_refused_before_writing(store, result):
    repo = BacktestRepository(store)
    with pytest.raises(ValueError, match="entry factors for trade position 4 but only 1 trades"):
        repo.save_run(WithExtras(result, factors={4: {"a": 1.0}}), config_toml=TOML)
    with pytest.raises(ValueError, match="margin series is not on the equity's stamps"):
        repo.save_run(WithExtras(result, margin=result.margin.iloc[1:]), config_toml=TOML)
    assert repo.list_runs() == []


def test_a_run_cancelled_before_its_first_step_stores_no_metrics(store, result):
    empty = pd.Series([], index=pd.DatetimeIndex([], tz="UTC"), dtype="float64")
    nothing = WithExtras(result, trades=(), decisions=(), equity=empty, margin=empty, cancelled=True, steps=(0, 60),
                         factors={})
    repo = BacktestRepository(store)
    run = repo.load_run(repo.save_run(nothing, config_toml=TOML))
    assert run.info.metrics == {} and run.info.cancelled and run.info.steps == (0, 60)
    assert run.trades == () and run.equity.empty and str(run.equity.index.tz) == "UTC"


def test_starting_cash_is_the_results_when_it_has_one(store, result):
    repo = BacktestRepository(store)
    rich = WithExtras(result, starting_cash=250_000.0)
    info = repo.load_run(repo.save_run(rich, config_toml=TOML)).info
    assert info.starting_cash == 250_000.0


def test_a_version_5_database_gains_the_backtest_tables_and_keeps_its_data(tmp_path, result):
    path = tmp_path / "v5.sqlite"
    engine = make_engine(path)
    assert migrate(engine, MIGRATIONS[:5]) == 5
    with engine.begin() as conn:  # what the version-5 code wrote: a risk setting
        conn.exec_driver_sql("INSERT INTO risk_state (key, value, updated_ns) VALUES ('active_limit_profile', "
                             "'iron condor', 1)")
    engine.dispose()

    with Store.open(path) as store:
        assert store.schema_version == latest_version() >= 6
        with store._read() as conn:
            assert conn.exec_driver_sql("SELECT value FROM risk_state").all() == [("iron condor",)]
        repo = BacktestRepository(store)
        run_id = repo.save_run(result, config_toml=TOML)
        assert repo.load_run(run_id).decisions == result.decisions
