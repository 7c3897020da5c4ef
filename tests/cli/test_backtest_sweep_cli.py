"""``spx-backtest sweep``: the --json rows and the table (with the heat map), each stored run reproduced by
``spx-backtest run`` on its stored config, walk-forward, and one-line errors with their exit codes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import date, datetime, timedelta

import pytest

from spx_core.backtest import pool
from spx_core.cli.backtest_main import main
from spx_core.cli.simulate_command import record_session
from spx_core.domain.calendar import ET
from spx_core.marketdata.simulator import SimulatedMarket, SimulatorConfig
from spx_core.storage.store import Store

CONFIG = """\
name = "pcs"
[data]
start = "2024-03-12"
end = "2024-03-13"
[strategy]
preset = "credit verticals 3/5/7 DTE"
price = "natural"
[exits]
take_profit = 0.05
stop_loss = 0.05
[risk]
profile = "credit verticals"
"""
GRID = "strategy.short_delta=0.10,0.20;strategy.width=10,25"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Two recorded days (ten minutes from 09:59 ET each) and the config over them."""
    folder = tmp_path_factory.mktemp("sweep_cli")
    db = folder / "data.sqlite"
    with Store.open(db) as store:
        for seed, day in enumerate((date(2024, 3, 12), date(2024, 3, 13)), start=3):
            start = datetime.combine(day, datetime.min.time(), tzinfo=ET) + timedelta(hours=9, minutes=59)
            record_session(store, SimulatedMarket(SimulatorConfig(seed=seed, start=start)), f"d{seed}", 10,
                           replace=False)
    config = folder / "pcs.toml"
    config.write_text(CONFIG, encoding="utf-8")
    return db, config


def run_json(capsys, *argv: object) -> dict:
    assert main([str(a) for a in argv]) == 0
    return json.loads(capsys.readouterr().out)


def test_sweep_json_rows_and_each_run_reproduces_with_spx_backtest_run(files, capsys, tmp_path):
    db, config = files
    doc = run_json(capsys, "sweep", "--db", db, "--config", config, "--grid", "strategy.width=10,25", "--workers",
                   1, "--metric", "total_return", "--json")
    assert set(doc) == {"sweep_id", "metric", "rows"} and doc["metric"] == "total_return"
    assert [r["params"] for r in doc["rows"]] == [{"strategy.width": 10}, {"strategy.width": 25}]
    for row in doc["rows"]:
        assert set(row) == {"params", "run_id", "result_checksum", "metrics", "error"}
        assert row["error"] is None and row["run_id"] and len(row["result_checksum"]) == 64
        assert row["metrics"]["sharpe"] is None or isinstance(row["metrics"]["sharpe"], float)  # NaN -> null
    listed = run_json(capsys, "runs", "--db", db, "--json")["runs"]
    assert {r["run_id"] for r in listed if r["sweep_id"] == doc["sweep_id"]} == {r["run_id"] for r in doc["rows"]}
    row = doc["rows"][1]
    stored = tmp_path / "stored.toml"
    stored.write_text(run_json(capsys, "show", row["run_id"], "--db", db, "--json")["config_toml"], encoding="utf-8")
    again = run_json(capsys, "run", "--db", db, "--config", stored, "--json")
    assert again["result_checksum"] == row["result_checksum"] and again["run_id"] != row["run_id"]


def test_sweep_table_with_its_heat_map(files, capsys):
    db, config = files
    assert main(["sweep", "--db", str(db), "--config", str(config), "--grid", GRID, "--workers", "1", "--metric",
                 "total_return"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["short_delta", "width", "run", "trades", "return", "sharpe", "max", "dd", "win",
                                "rate", "fees", "$", "error"]
    assert [line.split()[:2] for line in lines[1:5]] == [["0.1", "10"], ["0.1", "25"], ["0.2", "10"], ["0.2", "25"]]
    assert all(len(line.split()) == 9 for line in lines[1:5])  # params, run id, six figures; no error text
    assert lines[5].startswith("sweep ") and "4 of 4 runs stored; best total_return " in lines[5]
    assert lines[7] == "total_return: short_delta down, width across"
    assert lines[8].split() == ["10", "25"] and [line.split()[0] for line in lines[9:11]] == ["0.1", "0.2"]


def test_walk_forward_json(files, capsys):
    db, config = files
    doc = run_json(capsys, "sweep", "--db", db, "--config", config, "--grid", "strategy.short_delta=0.10,0.20",
                   "--workers", 1, "--metric", "total_return", "--walk-forward", "1:1", "--json")
    (window,) = doc["windows"]
    assert window["train"] == ["2024-03-12", "2024-03-12"] and window["test"] == ["2024-03-13", "2024-03-13"]
    assert window["best"] in [r["params"] for r in window["rows"]] and len(window["rows"]) == 2
    assert window["run_id"] and window["error"] is None and doc["train_days"] == 1 and doc["test_days"] == 1
    assert doc["metrics"]["total_return"] == pytest.approx(window["metrics"]["total_return"])


@pytest.mark.parametrize(("argv", "code", "message"), [
    (["--grid", "strategy.width"], 2, ("spx-backtest sweep: error: --grid/--metric: grid part 'strategy.width' is "
                                      "not KEY=V1,V2")),
    (["--grid", GRID, "--metric", "sharp"], 2, ("spx-backtest sweep: error: --grid/--metric: metric 'sharp' is "
                                               "not one of")),
    (["--grid", GRID, "--workers", "0"], 2, "spx-backtest sweep: error: --workers 0 must be at least 1"),
    (["--grid", "strategy.delta=0.1"], 2, ("spx-backtest sweep: error: no grid point is a valid config: override "
                                          "'strategy.delta': unknown key")),
    (["--grid", GRID, "--walk-forward", "5"], 2, ("spx-backtest sweep: error: --walk-forward '5' is not "
                                                 "TRAIN_DAYS:TEST_DAYS")),
    (["--grid", GRID, "--walk-forward", "2:1"], 1, ("spx-backtest sweep: walk-forward 2:1 needs at least 3 trading "
                                                   "days with stored snapshots; 2024-03-12 to 2024-03-13 (ET) has 2")),
    (["--grid", "data.session=nope,none"], 1, ("spx-backtest sweep: no grid point ran: BacktestConfigError: [data] "
                                              "session: no stored snapshots in session 'nope'")),
])
def test_errors_are_one_line(files, capsys, argv, code, message):
    db, config = files
    try:
        returned = main(["sweep", "--db", str(db), "--config", str(config), "--workers", "1", *argv]
                        if "--workers" not in argv else ["sweep", "--db", str(db), "--config", str(config), *argv])
    except SystemExit as exc:
        returned = exc.code
    err = capsys.readouterr().err
    lines = [line.rsplit("\r", 1)[-1].strip() for line in err.split("\n")]  # a bar redraws with \r
    lines = [line for line in lines if line]
    assert returned == code and len(lines) == 1 and lines[0].startswith(message), err


def test_an_unreachable_scheduler_is_one_line(files, capsys, monkeypatch):
    db, config = files
    monkeypatch.setattr(pool, "CONNECT_TIMEOUT_S", 0.5)
    assert main(["sweep", "--db", str(db), "--config", str(config), "--grid", GRID,
                 "--scheduler", "tcp://127.0.0.1:9"]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("spx-backtest sweep: cannot reach the Dask scheduler at tcp://127.0.0.1:9")


def test_ctrl_c_stops_submitting_and_the_running_point_finishes(files):
    """Ctrl-C in a terminal reaches the whole process group, workers included: the worker finishes its point
    (stored), the points not started are listed as cancelled, exit 130."""
    from spx_core.storage.backtest_repo import BacktestRepository

    db, config = files
    with Store.open(db, create=False) as store:
        before = len(BacktestRepository(store).list_runs())
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-m", "spx_core.cli.backtest_main", "sweep", "--db", str(db), "--config",
                             str(config), "--grid", "strategy.short_delta=0.10,0.15,0.20,0.25,0.30", "--workers", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            with Store.open(db, create=False) as store:
                if len(BacktestRepository(store).list_runs()) > before:
                    break
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    rows = out.splitlines()[1:6]
    assert rows[0].split()[0] == "0.1" and rows[-1].split()[-1] == "cancelled" and "Traceback" not in err
    with Store.open(db, create=False) as store:
        stored = len(BacktestRepository(store).list_runs()) - before
    assert stored == sum(row.split()[-1] != "cancelled" for row in rows) >= 1
    assert "interrupted; the runs that finished are stored" in err
