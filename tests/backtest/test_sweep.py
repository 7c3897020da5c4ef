"""Sweeps over a small recorded simulated session: a 2x2 grid on the local spawn pool and on a Dask LocalCluster,
every run stored by the parent with its params and reproducible alone; failing points are rows, not crashes;
progress and cancel."""

from __future__ import annotations

from datetime import datetime

import pytest

from spx_core.backtest.config import load_spec
from spx_core.backtest.sweep import CANCELLED, GridError, Sweep, parse_grid
from spx_core.domain.calendar import ET
from spx_core.storage.backtest_repo import BacktestRepository
from spx_core.storage.store import Store
from tests.backtest.test_engine import record

#: the engine tests' credit vertical: marketable entries, a tight stop so trades close within the session
CONFIG = {"name": "pcs", "data": {"session": "s"},
          "strategy": {"preset": "credit verticals 3/5/7 DTE", "price": "natural"},
          "exits": {"take_profit": 0.05, "stop_loss": 0.05}, "risk": {"profile": "credit verticals"}}
GRID = parse_grid("strategy.short_delta=0.10,0.20;strategy.width=10,25")


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("sweep") / "data.sqlite"
    record(path, datetime(2024, 3, 13, 9, 59, tzinfo=ET), 30).close()
    return path


@pytest.fixture(scope="module")
def spec():
    return load_spec(CONFIG)


@pytest.fixture(scope="module")
def local(db, spec):
    """The 2x2 sweep on two local worker processes (shared by the tests that read it)."""
    calls = []
    result = Sweep(db, spec, GRID, workers=2, metric="total_return").run(progress=lambda d, t: calls.append((d, t)))
    return result, calls


def test_local_sweep_runs_every_point_and_the_parent_stores_each_run(db, spec, local):
    result, calls = local
    assert [r.params for r in result.rows] == [{"strategy.short_delta": d, "strategy.width": w}
                                                for d in (0.10, 0.20) for w in (10, 25)]
    assert all(r.error is None and r.run_id is not None for r in result.rows), result.rows
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)] and not result.cancelled
    assert len({r.result_checksum for r in result.rows}) == 4  # the overrides really changed the runs
    assert sum(r.metrics["n_trades"] for r in result.rows) >= 3
    with Store.open(db, create=False) as store:
        repo = BacktestRepository(store)
        stored = repo.sweep_runs(result.sweep_id)
        (sweep,) = [s for s in repo.sweeps() if s.id == result.sweep_id]
    assert sweep.metric == "total_return" and parse_grid(sweep.grid) == GRID
    assert sorted(i.id for i in stored) == sorted(r.run_id for r in result.rows)
    by_id = {i.id: i for i in stored}
    for row in result.rows:
        info = by_id[row.run_id]
        assert info.sweep_id == result.sweep_id and info.params == row.params
        assert info.result_checksum == row.result_checksum
        assert info.metrics["total_return"] == pytest.approx(row.metrics["total_return"])
        assert info.name == f"pcs [short_delta={row.params['strategy.short_delta']}, " \
                            f"width={row.params['strategy.width']}]"


def test_a_stored_sweep_run_reproduces_alone_in_this_process(db, spec, local):
    result, _ = local
    with Store.open(db, create=False) as store:
        repo = BacktestRepository(store)
        for row in result.rows:
            config = repo.load_run(row.run_id).config_toml
            alone = load_spec(config).backtest(store).run()
            assert alone.result_checksum == row.result_checksum
            assert load_spec(config) == spec.with_overrides(row.params)


def test_table_and_heat_map(local):
    result, _ = local
    table = result.table(["total_return", "n_trades"])
    assert list(table.columns) == ["strategy.short_delta", "strategy.width", "run_id", "total_return", "n_trades",
                                   "result_checksum", "error"]
    heat = result.heat_map("total_return", "strategy.width", "strategy.short_delta")
    assert list(heat.index) == [0.10, 0.20] and list(heat.columns) == [10, 25]
    for row in result.rows:
        p = row.params
        assert heat.loc[p["strategy.short_delta"], p["strategy.width"]] == row.metrics["total_return"]
    best = result.best()
    assert best is not None and best.metrics["total_return"] == heat.max().max()


def test_a_failing_point_is_its_rows_error_and_the_others_run(db, spec):
    grid = {"data.session": ["s", "nope"], "strategy.short_delta": [0.2, 1.5]}
    result = Sweep(db, spec, grid, workers=1).run()
    ok, bad_value, no_data, both = result.rows
    assert ok.error is None and ok.run_id is not None and ok.result_checksum
    assert bad_value.error == "[strategy] short_delta: 1.5 must be in (0, 1) (an absolute delta, e.g. 0.20)"
    assert both.error == bad_value.error and bad_value.run_id is None
    # failed in the worker (a range without data): one line, the sweep went on
    assert no_data.error.startswith("BacktestConfigError: [data] session: no stored snapshots in session 'nope'")
    assert "\n" not in no_data.error and no_data.run_id is None
    with Store.open(db, create=False) as store:
        assert [i.id for i in BacktestRepository(store).sweep_runs(result.sweep_id)] == [ok.run_id]


def test_a_grid_no_point_of_which_is_valid_is_one_error(db, spec):
    with pytest.raises(GridError, match=r"^no grid point is a valid config: override 'strategy.delta': unknown key"):
        Sweep(db, spec, {"strategy.delta": [0.1, 0.2]}).run()
    with pytest.raises(GridError, match="^metric 'sharp' is not one of"):
        Sweep(db, spec, GRID, metric="sharp")


def test_cancel_stops_submitting_and_lists_the_rest_as_cancelled(db, spec):
    done = []
    result = Sweep(db, spec, GRID, workers=1).run(progress=lambda d, t: done.append(d), cancel=lambda: bool(done))
    assert result.cancelled and done == [1]
    assert [r.error for r in result.rows] == [None, CANCELLED, CANCELLED, CANCELLED]
    nothing = Sweep(db, spec, GRID, workers=1).run(cancel=lambda: True)
    assert all(r.error == CANCELLED and r.run_id is None for r in nothing.rows)
    with Store.open(db, create=False) as store:
        assert BacktestRepository(store).sweep_runs(nothing.sweep_id) == []


@pytest.mark.slow
def test_dask_local_cluster_gives_the_local_pools_results(db, spec, local, tmp_path):
    distributed = pytest.importorskip("distributed")
    expected, _ = local
    # its own scratch folder: not /tmp/dask-scratch-space, which other test runs on the machine share
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None,
                                  silence_logs=True, local_directory=tmp_path) as cluster:
        calls = []
        result = Sweep(db, spec, GRID, scheduler=cluster.scheduler_address, metric="total_return").run(
            progress=lambda d, t: calls.append(d))
    assert [r.error for r in result.rows] == [None] * 4 and calls == [1, 2, 3, 4]
    assert [r.result_checksum for r in result.rows] == [r.result_checksum for r in expected.rows]
    assert result.sweep_id != expected.sweep_id and all(r.run_id not in {e.run_id for e in expected.rows}
                                                         for r in result.rows)


def test_a_run_the_database_refuses_to_store_is_its_rows_error(db, spec, monkeypatch):
    from spx_core.storage.errors import StoreBusyError

    save = BacktestRepository.save_run

    def busy_for_width_25(self, result, **kw):
        if kw["params"]["strategy.width"] == 25:
            raise StoreBusyError("the database is busy (another writer held it for 5 s); try again")
        return save(self, result, **kw)

    monkeypatch.setattr(BacktestRepository, "save_run", busy_for_width_25)
    result = Sweep(db, spec, {"strategy.width": [10, 25]}, workers=1).run()
    stored, refused = result.rows
    assert stored.error is None and stored.run_id is not None
    assert refused.run_id is None and refused.result_checksum and "n_trades" in refused.metrics
    assert refused.error == "not stored: StoreBusyError: the database is busy (another writer held it for 5 s); " \
                            "try again"
