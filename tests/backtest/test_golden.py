"""Golden backtest: a small recorded simulated session, a fixed config, the stored expected trade log, decisions,
equity, metrics and result checksum (issue 11 §6).

The data are simulated sessions (seed 5) of 2024-03-13 10:00-11:00 ET and 15:30-16:00 ET and of 2024-03-14
10:00-10:30 ET (two days: the return metrics are defined), recorded into a temporary store by ``record_session``
(the simulator is deterministic for a seed). Two strategies run over both days: a 0/3 DTE put credit vertical
entered at 10:00, 10:20, 10:40 and 15:30 (mid limit, 20% take profit, 40% stop loss) and a 0DTE call credit
vertical entered at 15:35 at the natural and held to the 16:00 settlement; fills at mid -/+ 0.30 x spread, the
default fee schedule. The run gives take-profit, stop-loss and expiry exits, a trade still open at the end and
resting limit fills.

The expected document is ``golden/credit_verticals_2024-03-13.json``; the test compares every field and lists
each difference by path (``trades[2].exit_price: expected 0.99, got 1.01``). It holds nothing that depends on the
machine: no code version (``git describe``), no wall-clock time; the run is made under a faked code version and a
wall clock moved a year ahead to prove it.

When a change of behaviour is intended (the engine, the fill model, the simulator), regenerate the file and
review its diff before committing it:

    SPX_UPDATE_GOLDEN=1 python -m pytest tests/backtest/test_golden.py

When only ``data_checksum`` differs, the simulator's output changed, not the backtester.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from spx_core.automation.config import EntrySchedule, Exits, PriceMode
from spx_core.automation.presets import PRESETS
from spx_core.backtest.engine import Backtest
from spx_core.backtest.metrics import compute_metrics
from spx_core.cli.simulate_command import record_session
from spx_core.domain.calendar import ET, from_ns, to_ns
from spx_core.execution.fees import FeeSchedule
from spx_core.execution.fill_model import FillMode, FillModel
from spx_core.marketdata.simulator import SimulatedMarket, SimulatorConfig
from spx_core.storage.store import Store

GOLDEN = Path(__file__).parent / "golden" / "credit_verticals_2024-03-13.json"
UPDATE = os.environ.get("SPX_UPDATE_GOLDEN") == "1"
SEED = 5
#: (session name, first minute ET, minutes recorded)
SESSIONS = (("morning", datetime(2024, 3, 13, 9, 59, tzinfo=ET), 62),
            ("close", datetime(2024, 3, 13, 15, 29, tzinfo=ET), 32),
            ("next morning", datetime(2024, 3, 14, 9, 59, tzinfo=ET), 32))
START, END = datetime(2024, 3, 13, 9, 0, tzinfo=ET), datetime(2024, 3, 14, 17, 0, tzinfo=ET)
ABS_TOL = 1e-6  # floats: prices in points, dollars, fractions; the result checksum rounds to 1e-6 too

_BASE = PRESETS["credit verticals 3/5/7 DTE, 0.20 delta"]
PUT_SPREADS = dataclasses.replace(
    _BASE, name="golden pcs", limit_profile="standard", price=PriceMode.MID,
    scan={**_BASE.scan, "dte": (0, 7), "dte_days": (0, 3), "widths": (10.0, 25.0)},
    entry=EntrySchedule(times=("10:00", "10:20", "10:40", "15:30")),
    exits=Exits(take_profit_pct=20.0, stop_loss_pct=40.0))
CALL_0DTE = dataclasses.replace(
    _BASE, name="golden 0dte call", structure="call-credit-vertical", limit_profile="standard",
    price=PriceMode.NATURAL, scan={"roots": ("SPXW",), "dte": (0, 0), "short_delta": 0.35, "widths": (5.0,)},
    entry=EntrySchedule(times=("15:35",)), exits=Exits(take_profit_pct=None, stop_loss_pct=None))
FILL = FillModel(mode=FillMode.MID_OFFSET, offset=0.30)
FEES = FeeSchedule()
STARTING_CASH = 100_000.0


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    s = Store.open(tmp_path_factory.mktemp("golden") / "golden.sqlite")
    for name, start, minutes in SESSIONS:
        record_session(s, SimulatedMarket(SimulatorConfig(seed=SEED, start=start)), name, minutes, replace=False)
    yield s
    s.close()


def run(store: Store) -> Any:
    return Backtest(store, [PUT_SPREADS, CALL_0DTE], start_ns=to_ns(START), end_ns=to_ns(END), fill=FILL,
                    fees=FEES, profile=None, bad_quote="skip", starting_cash=STARTING_CASH).run()


# --- the document --------------------------------------------------------------------------------------------
def _et(ns: int | None) -> str | None:
    return None if ns is None else from_ns(ns).astimezone(ET).isoformat()


def _num(x: Any) -> Any:
    """JSON has no NaN or inf: they are written as strings."""
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    return x


def document(result: Any) -> dict[str, Any]:
    """Everything the golden file pins (no code version, no wall clock)."""
    metrics = compute_metrics(result.equity, result.trades, starting_cash=STARTING_CASH, margin=result.margin)
    return {
        "config_hash": result.config_hash,
        "data_checksum": result.data_checksum,
        "snapshots_read": len(result.snapshots_read),
        "steps": list(result.steps),
        "marks": dict(sorted(result.marks.items())),
        "trades": [{"trade_id": t.trade_id, "strategy": t.strategy, "entry": _et(t.entry_ns), "exit": _et(t.exit_ns),
                    "exit_reason": t.exit_reason, "legs": [list(leg) for leg in t.legs], "side": t.side,
                    "entry_price": _num(t.entry_price), "exit_price": _num(t.exit_price), "quantity": t.quantity,
                    "pnl": _num(t.pnl), "fees": _num(t.fees)} for t in result.trades],
        "decisions": [{"time": _et(d.time_ns), "strategy": d.strategy, "action": str(d.action),
                       "reasons": list(d.reasons)} for d in result.decisions],
        "equity": [[_et(int(ts.value)), _num(float(v))] for ts, v in result.equity.items()],
        "metrics": {k: _num(v) for k, v in metrics.as_dict().items()},
        "result_checksum": result.result_checksum,
    }


# --- the comparison ------------------------------------------------------------------------------------------
def _same_number(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool) or not isinstance(a, (int, float)) or not isinstance(b, (int, float)):
        return a == b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=ABS_TOL)


def differences(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Every difference, by path (``trades[2].exit_price: expected 0.99, got 1.01``)."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        out = []
        for key in list(expected) + [k for k in actual if k not in expected]:
            where = f"{path}.{key}" if path else str(key)
            if key not in actual:
                out.append(f"{where}: missing (expected {expected[key]!r})")
            elif key not in expected:
                out.append(f"{where}: unexpected (got {actual[key]!r})")
            else:
                out += differences(expected[key], actual[key], where)
        return out
    if isinstance(expected, list) and isinstance(actual, list):
        out = [d for i, (e, a) in enumerate(zip(expected, actual, strict=False))
               for d in differences(e, a, f"{path}[{i}]")]
        if len(expected) != len(actual):
            out.append(f"{path}: {len(expected)} items expected, got {len(actual)}")
        return out
    return [] if _same_number(expected, actual) else [f"{path}: expected {expected!r}, got {actual!r}"]


def test_golden_run_matches_the_stored_trade_log_metrics_and_checksum(store, monkeypatch):
    # no machine dependence: another code version and a wall clock a year ahead change nothing
    from spx_core.backtest import engine

    monkeypatch.setattr(engine, "code_version", lambda: "9.9.9+elsewhere")
    real_time, real_time_ns = time.time, time.time_ns
    monkeypatch.setattr(time, "time", lambda: real_time() + 365 * 86_400.0)
    monkeypatch.setattr(time, "time_ns", lambda: real_time_ns() + 365 * 86_400 * 10**9)
    result = run(store)
    monkeypatch.undo()
    actual = document(result)
    if UPDATE:
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(actual, indent=1, ensure_ascii=False) + "\n")
        pytest.skip(f"golden file rewritten: {GOLDEN}; review its diff and commit it")
    assert GOLDEN.exists(), f"{GOLDEN} is missing; create it with SPX_UPDATE_GOLDEN=1"
    expected = json.loads(GOLDEN.read_text())
    found = differences(expected, actual)
    if found:
        hint = ("the simulated data changed (data_checksum differs): the simulator moved, not only the backtester; "
                if expected.get("data_checksum") != actual["data_checksum"] else "")
        pytest.fail(f"{hint}{len(found)} difference(s) from {GOLDEN.name} (regenerate with SPX_UPDATE_GOLDEN=1 "
                    f"only if the change is intended):\n  " + "\n  ".join(found[:60]), pytrace=False)


def test_the_golden_scenario_covers_every_exit_kind():
    """The stored run is worth pinning: take profit, stop loss, expiry and still open, both strategies, two days
    (so the return figures are defined), and its trade log is self-consistent."""
    doc = json.loads(GOLDEN.read_text())
    assert {t["exit_reason"] for t in doc["trades"]} == {"take_profit", "stop_loss", "expiry", "open"}
    assert {t["strategy"] for t in doc["trades"]} == {PUT_SPREADS.name, CALL_0DTE.name}
    assert doc["metrics"]["n_days"] == 2 and math.isfinite(doc["metrics"]["volatility"])
    assert doc["metrics"]["n_trades"] + doc["metrics"]["open_trades"] == len(doc["trades"])
    for t in doc["trades"]:  # credits sold: P&L = (entry - exit) x $100 x quantity - costs
        if t["exit_reason"] != "open":
            assert t["side"] == "sell"
            assert t["pnl"] == pytest.approx((t["entry_price"] - t["exit_price"]) * 100 * t["quantity"] - t["fees"])


def test_differences_name_each_changed_field():
    expected = {"trades": [{"exit_price": 0.99, "legs": [["SPXW", 5780.0]]}], "metrics": {"sharpe": "nan"}}
    actual = {"trades": [{"exit_price": 1.01, "legs": [["SPXW", 5785.0]]}], "metrics": {"sharpe": "nan", "x": 1}}
    assert differences(expected, expected) == []
    assert differences(expected, actual) == ["trades[0].exit_price: expected 0.99, got 1.01",
                                             "trades[0].legs[0][1]: expected 5780.0, got 5785.0",
                                             "metrics.x: unexpected (got 1)"]
    assert differences({"a": [1, 2]}, {"a": [1]}) == ["a: 2 items expected, got 1"]
    assert differences({"p": 1.0}, {"p": 1.0 + 1e-9}) == []  # within the checksum's rounding
