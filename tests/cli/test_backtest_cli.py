"""``spx-backtest`` as a real process on a real SQLite file holding a short recorded simulated session: the --json
shape key by key, the run stored and listed, the same config twice giving the same result checksum, --out files
that rerun alone, one-line errors per key, a range with no data, Ctrl-C storing nothing."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from spx_core.cli.simulate_command import record_session
from spx_core.domain.calendar import ET
from spx_core.marketdata.simulator import SimulatedMarket, SimulatorConfig
from spx_core.storage.store import Store
from tests.cli.conftest import Finished

EXAMPLE = Path(__file__).resolve().parents[2] / "resources" / "backtest" / "example.toml"
#: the engine test's session: a 0.10-delta put credit vertical entered at 10:00 and stopped out at 10:01
CONFIG = """name = "cli test"
[data]
session = "s"
[strategy]
preset = "credit verticals 3/5/7 DTE"
[exits]
take_profit = 0.05
stop_loss = 0.05
[fills]
model = "spread-fraction"
[risk]
profile = "credit verticals"
"""
TRADE_KEYS = ["entry_time", "exit_time", "exit_reason", "legs", "entry_price", "exit_price", "quantity", "pnl", "fees"]


def spx_backtest(*args: object, timeout: float = 300) -> Finished:
    proc = subprocess.run([sys.executable, "-m", "spx_core.cli.backtest_main", *map(str, args)], capture_output=True,
                          timeout=timeout, env=_env(), check=False)
    return Finished(proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace"))


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2]), *sys.path])}


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("btcli") / "data.sqlite"
    with Store.open(path) as store:
        market = SimulatedMarket(SimulatorConfig(seed=5, start=datetime(2024, 3, 13, 9, 59, tzinfo=ET)))
        record_session(store, market, "s", 75, replace=False)
    return path


@pytest.fixture
def config(tmp_path) -> Path:
    path = tmp_path / "run.toml"
    path.write_text(CONFIG, encoding="utf-8")
    return path


def test_run_json_has_the_issue_shape_key_by_key_and_the_run_is_stored(db, config):
    done = spx_backtest("run", "--db", db, "--config", config, "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert list(doc) == ["run_id", "config_sha256", "data_checksum", "result_checksum", "metrics", "trades",
                         "decisions"]
    assert isinstance(doc["run_id"], int) and all(len(doc[k]) == 64 for k in list(doc)[1:4])
    assert {"total_return", "sharpe", "max_drawdown", "win_rate", "fees_paid", "n_trades"} <= set(doc["metrics"])
    (trade,) = doc["trades"]
    assert list(trade) == TRADE_KEYS
    assert trade["entry_time"] == "2024-03-13T14:00:00Z" and trade["exit_reason"] == "stop_loss"
    assert trade["exit_time"] > trade["entry_time"] and trade["quantity"] == 1
    assert [list(leg) for leg in trade["legs"]] == [["root", "expiry", "strike", "right", "ratio"]] * 2
    assert sorted(leg["ratio"] for leg in trade["legs"]) == [-1, 1] and {leg["right"] for leg in trade["legs"]} == {"P"}
    assert trade["entry_price"] > 0  # a credit, positive, index points per unit
    # dollars: a stop at 5% of the credit, less the fees of four contract fills
    assert trade["pnl"] < 0 and trade["fees"] > 0 and doc["metrics"]["fees_paid"] == pytest.approx(trade["fees"])
    assert doc["metrics"]["n_trades"] == 1 and doc["metrics"]["sharpe"] is None  # one day: no Sharpe, null not NaN
    assert [list(d) for d in doc["decisions"]] == [["time", "strategy", "action", "reasons", "order_ref",
                                                    "snapshot_checksum"]] * len(doc["decisions"])
    assert doc["decisions"][0]["action"] == "TRADE" and doc["decisions"][0]["reasons"][0].startswith("entry: SELL")
    assert "Traceback" not in done.stderr
    listed = json.loads(spx_backtest("runs", "--db", db, "--json").stdout)["runs"]
    mine = next(r for r in listed if r["run_id"] == doc["run_id"])
    assert mine["name"] == "cli test" and mine["result_checksum"] == doc["result_checksum"]
    assert mine["config_sha256"] == doc["config_sha256"] and mine["metrics"]["n_trades"] == 1
    shown = json.loads(spx_backtest("show", doc["run_id"], "--db", db, "--json").stdout)
    assert shown["trades"] == doc["trades"] and shown["decisions"] == doc["decisions"]
    assert shown["config_toml"].startswith('name = "cli test"\n\n[data]\nsession = "s"\n')


def test_the_same_config_twice_gives_the_same_result_and_out_files_rerun_alone(db, config, tmp_path):
    out = tmp_path / "out"
    first = spx_backtest("run", "--db", db, "--config", config, "--out", out)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines()[-1].startswith("run_id ")
    assert sorted(p.name for p in out.iterdir()) == ["config.toml", "decisions.csv", "equity.csv", "metrics.json",
                                                     "summary.txt", "trades.csv"]
    metrics = json.loads((out / "metrics.json").read_text())
    # the written config.toml, rerun on its own, is the same run
    again = json.loads(spx_backtest("run", "--db", db, "--config", out / "config.toml", "--json").stdout)
    assert again["result_checksum"] == metrics["result_checksum"] and again["config_sha256"] == metrics["config_sha256"]
    assert int(first.stdout.splitlines()[-1].split()[1]) < again["run_id"]
    trades = (out / "trades.csv").read_text().splitlines()
    assert trades[0].startswith("trade_id,strategy,entry_time,exit_time,exit_reason") and len(trades) == 2
    assert "factor_dte" in trades[0].split(",") and "factor_attribution" in metrics  # each entry's factors
    equity = (out / "equity.csv").read_text().splitlines()
    assert equity[0] == "time,equity,margin,drawdown" and len(equity) == 76
    assert "stop_loss" in (out / "decisions.csv").read_text()
    # a change of one key changes the result
    other = tmp_path / "other.toml"
    other.write_text(CONFIG.replace("stop_loss = 0.05", "stop_loss = false"), encoding="utf-8")
    changed = json.loads(spx_backtest("run", "--db", db, "--config", other, "--json").stdout)
    assert changed["result_checksum"] != again["result_checksum"]


@pytest.mark.parametrize(("edit", "message"), [
    (("stop_loss = 0.05", "stop_loss = -1"), r"\[exits\] stop_loss: -1 must be in \(0, inf\)"),
    (("[risk]", "[risk]\nmax_opn = 1"), r"\[risk\] max_opn: unknown key; \[risk\] takes: profile, max_open, "),
    (('model = "spread-fraction"', 'model = "midpoint"'),
     r'\[fills\] model: "midpoint" is not one of: mid, spread-fraction, natural'),
    (('profile = "credit verticals"', 'profile = "credit"'), r"\[risk\] profile: 'credit' is not a limit profile"),
    (("[strategy]", "[strategy]\nshort_delta = 2"), r"\[strategy\] short_delta: 2 must be in \(0, 1\)"),
])
def test_a_bad_key_is_one_line_naming_it_with_exit_2(db, config, edit, message):
    config.write_text(CONFIG.replace(*edit), encoding="utf-8")
    line = spx_backtest("run", "--db", db, "--config", config).assert_one_line_failure(codes=(2,))
    assert line.startswith("spx-backtest run: error: ") and str(config) in line
    assert re.search(message, line), line


def test_a_range_without_data_says_what_is_stored_and_the_example_config_loads(db, tmp_path):
    # the documented example asks for 2018 dates: this database holds 2024-03-13 only
    line = spx_backtest("run", "--db", db, "--config", EXAMPLE).assert_one_line_failure(codes=(1,))
    assert line.endswith("[data] start/end: no stored snapshots from 2018-01-02 to 2018-02-28 (ET); the database "
                         "holds snapshots from 2024-03-13 to 2024-03-13 (ET); pick dates in that range"), line
    dated = tmp_path / "dated.toml"
    text = EXAMPLE.read_text(encoding="utf-8")
    dated.write_text(text.replace('"2018-01-02"', '"2024-03-13"').replace('"2018-02-28"', '"2024-03-13"'),
                     encoding="utf-8")
    done = spx_backtest("run", "--db", db, "--config", dated, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["decisions"]


def test_usage_errors_and_unknown_runs_are_one_line(db, tmp_path):
    helped = spx_backtest("--help")
    assert helped.returncode == 0 and all(f"    {name} " in helped.stdout for name in ("run", "runs", "show", "sweep"))
    line = spx_backtest("run", "--db", db, "--config", tmp_path / "nope.toml").assert_one_line_failure(codes=(2,))
    assert "--config" in line and "no such file" in line
    line = spx_backtest("show", 999, "--db", db).assert_one_line_failure(codes=(1,))
    assert line == "spx-backtest show: no backtest run 999; list them with spx-backtest runs"
    line = spx_backtest("runs", "--db", tmp_path / "missing.sqlite").assert_one_line_failure(codes=(1,))
    assert line.startswith("spx-backtest runs: ") and not (tmp_path / "missing.sqlite").exists()
    bad = tmp_path / "bad.toml"
    bad.write_text("[data\n", encoding="utf-8")
    line = spx_backtest("run", "--db", db, "--config", bad).assert_one_line_failure(codes=(2,))
    assert "is not valid TOML" in line and "line 1" in line


def test_ctrl_c_stops_the_run_and_stores_nothing(db, config):
    before = json.loads(spx_backtest("runs", "--db", db, "--json").stdout)["runs"]
    proc = subprocess.Popen([sys.executable, "-m", "spx_core.cli.backtest_main", "run", "--db", str(db), "--config",
                             str(config)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env())
    seen = b""
    deadline = time.monotonic() + 120
    while b"backtest" not in seen and time.monotonic() < deadline:  # the progress bar: the run has started
        seen += os.read(proc.stderr.fileno(), 4096)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    stderr = (seen + err).decode("utf-8", "replace")
    assert proc.returncode == 130, stderr
    shown = Finished(130, out.decode(), stderr).messages
    assert shown[-1].startswith("spx-backtest run: interrupted after ") and shown[-1].endswith("steps; nothing stored")
    done, total = (int(w) for w in shown[-1].split("after ")[1].split(" steps")[0].split(" of "))
    assert done < total == 75  # stopped mid-run, at a step boundary
    assert "Traceback" not in stderr and out == b""
    assert json.loads(spx_backtest("runs", "--db", db, "--json").stdout)["runs"] == before
