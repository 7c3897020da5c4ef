"""End to end: the installed ``spx-terminal`` console script, in a subprocess, offscreen."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


def _script(name: str) -> str:
    path = BIN / name
    if not path.exists():
        pytest.skip(f"{name} is not installed next to {sys.executable} (pip install -e .)")
    return str(path)


def _env(home: Path) -> dict[str, str]:
    return dict(os.environ, QT_QPA_PLATFORM="offscreen", SPX_TERMINAL_HOME=str(home))


def test_self_test_on_the_simulated_market(tmp_path):
    result = subprocess.run([_script("spx-terminal"), "--seed", "11", "--self-test", "60"], env=_env(tmp_path),
                            capture_output=True, text=True, timeout=180)
    out = result.stdout
    assert result.returncode == 0, f"exit {result.returncode}\n{out}\n{result.stderr[-3000:]}"
    for check in ("PASS window", "PASS feed: Simulated", "PASS chain", "PASS surface", "PASS errors"):
        assert check in out, out
    assert "self-test passed" in out
    assert (tmp_path / "logs" / "spx-terminal.log").exists()
    for check in ("PASS trading: paper order", "PASS trading: positions", "PASS risk: populated", "PASS trading: flat",
                  "PASS trading: limit refuses", "PASS alerts: raised: warning order_rejected",
                  "PASS automation: decided", "PASS backtest: ran"):
        assert check in out, out
    # the self-test traded in a temporary order book: the user's database holds no order
    from spx_core.storage import Store
    from spx_core.storage.orders_repo import OrderRepository

    user_dbs = list(tmp_path.rglob("*.sqlite"))
    assert user_dbs, "the self-test opened the user's database"
    for db in user_dbs:
        with Store.open(db) as store:
            assert OrderRepository(store).orders() == [], db


def test_self_test_replays_a_recorded_session(tmp_path):
    db = tmp_path / "rec.sqlite"
    rec = subprocess.run([_script("spx-data"), "simulate", "--db", str(db), "--seed", "3", "--minutes", "4",
                          "--start", "2026-11-20T10:00"], env=_env(tmp_path), capture_output=True, text=True,
                         timeout=120)
    assert rec.returncode == 0, rec.stderr[-2000:]
    result = subprocess.run([_script("spx-terminal"), "--db", str(db), "--source", "replay", "--self-test", "60"],
                            env=_env(tmp_path), capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr[-3000:]}"
    assert "PASS feed: Replay" in result.stdout


def test_bad_arguments_exit_2_with_a_message(tmp_path):
    result = subprocess.run([_script("spx-terminal"), "--seed", "-1"], env=_env(tmp_path), capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2
    assert "--seed -1 must be >= 0" in result.stderr


def test_self_test_replays_an_imported_end_of_day_file(tmp_path, shared_data):
    db = tmp_path / "eod.sqlite"
    csv = shared_data / "cboe_datashop" / "spxw20190626.csv"
    imp = subprocess.run([_script("spx-data"), "import", "--format", "cboe-datashop", "--db", str(db), str(csv)],
                         env=_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert imp.returncode == 0, imp.stderr[-2000:]
    result = subprocess.run([_script("spx-terminal"), "--db", str(db), "--source", "replay", "--self-test", "60"],
                            env=_env(tmp_path), capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr[-3000:]}"
    assert "PASS feed: Replay finished, 1 batches, 10384 quotes" in result.stdout
    assert "PASS surface" in result.stdout
