"""``spx-data simulate`` records the SPY companion of each step; ``spx-data snapshots`` counts both."""

from __future__ import annotations

from datetime import datetime

from spx_core.cli.main import main
from spx_core.domain.calendar import ET
from spx_core.marketdata.simulator import SimulatedMarket, SimulatorConfig
from spx_core.storage import Store


def _run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_simulate_records_spx_and_its_spy_companion_per_minute(capsys, tmp_path):
    db = tmp_path / "sim.sqlite"
    code, out, err = _run(capsys, "simulate", "--db", db, "--seed", 12, "--minutes", 3, "--start", "2025-03-12T10:00")
    assert code == 0, err
    assert "recorded 3 simulated snapshots" in out and "with 3 SPY companion snapshots" in out
    market = SimulatedMarket(SimulatorConfig(seed=12, start=datetime(2025, 3, 12, 10, 0, tzinfo=ET)))
    emitted = [market.advance(60.0 if k else 0.0) for k in range(3)]
    with Store.open(db) as store:
        spx, spy = store.list_snapshots(underlying="SPX"), store.list_snapshots(underlying="SPY")
        sessions = store.list_sessions()
        bars = store.load_bars("SPY")
    assert [i.checksum for i in spx] == [b.snapshot.checksum for b in emitted]
    assert [i.checksum for i in spy] == [b.for_underlying("SPY").snapshot.checksum for b in emitted]
    assert [i.time for i in spy] == [i.time for i in spx]
    assert len(sessions) == 1 and {i.session for i in spx + spy} == {sessions[0].name}
    assert len(bars) == 2  # minutes 10:00 and 10:01 (each closed by the next minute's price)


def test_snapshots_keeps_its_table_and_counts_per_underlying_on_stderr(capsys, tmp_path):
    db = tmp_path / "sim.sqlite"
    _run(capsys, "simulate", "--db", db, "--seed", 12, "--minutes", 2, "--start", "2025-03-12T10:00")
    code, out, err = _run(capsys, "snapshots", "--db", db)
    assert code == 0
    lines = out.strip().split("\n")
    assert lines[0].split() == ["id", "time", "(ET)", "underlying", "expiries", "quotes", "checksum"]
    assert len(lines) == 5 and all(len(line.split()) == 7 for line in lines[1:])
    assert "4 snapshots by underlying: SPX 2, SPY 2" in err
