"""spx-data scan's market gate: --vix / --iv-rank-min / --regime on the market state from the stored index bars."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spx_core.cli.main import main
from spx_core.storage import Store
from tests.chains import make_chain

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "daily"


@pytest.fixture(scope="module")
def dbs(tmp_path_factory):
    """(database with VIX bars, database without), each holding one snapshot (id 1)."""
    snap, _ = make_chain(n_expiries=5, noise=0.2, half_spread_vol=0.002, seed=41)
    paths = []
    for name in ("with_vix", "without"):
        path = tmp_path_factory.mktemp(name) / "scan.sqlite"
        store = Store.open(path)
        try:
            store.save_snapshot(snap, source="test")
        finally:
            store.close()
        paths.append(path)
    assert main(["import", "--db", str(paths[0]), str(FIXTURES / "vix.csv")]) == 0
    return paths


def _scan(capsys, path, *gate):
    code = main(["scan", "--db", str(path), "--snapshot", "1", "--structure", "put-credit-vertical",
                 "--short-delta", "0.20", "--width", "25", "--json", *gate])
    out, err = capsys.readouterr()
    return code, json.loads(out), err


def test_an_open_gate_scans(dbs, capsys):
    code, payload, _ = _scan(capsys, dbs[0], "--vix", "10-20")  # the fixture's last VIX close is 13.77
    assert code == 0 and payload["candidates"] and "market" not in payload


def test_a_closed_gate_scans_nothing_and_says_why_in_one_line(dbs, capsys):
    code, payload, err = _scan(capsys, dbs[0], "--vix", "20-30")
    assert code == 1 and payload["candidates"] == [] and payload["market"]["ok"] is False
    assert "13.77" in payload["market"]["reason"] and "2014-01-23" in payload["market"]["reason"]  # stale: dated
    assert len(err.strip().splitlines()) == 1 and "market gate closed" in err


def test_missing_vix_history_closes_the_gate_with_the_fix(dbs, capsys):
    code, payload, _ = _scan(capsys, dbs[1], "--iv-rank-min", "30")
    assert code == 1 and "import" in payload["market"]["reason"].lower()


@pytest.mark.parametrize("gate, needle", [(("--vix", "30"), "range A-B"), (("--regime", "bullish"), "unknown regime"),
                                          (("--iv-rank-min", "150"), "percent")])
def test_bad_gate_options_are_usage_errors(dbs, capsys, gate, needle):
    with pytest.raises(SystemExit) as exit_info:
        main(["scan", "--db", str(dbs[0]), "--snapshot", "1", "--structure", "iron-condor", *gate])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and needle in err and len(err.strip().splitlines()) == 1
