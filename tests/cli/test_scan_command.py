"""spx-data scan on snapshots stored in a real SQLite file: the JSON schema scripts depend on, the table,
and one-line errors."""

from __future__ import annotations

import json

import pytest

from spx_core.cli.main import main
from spx_core.storage import Store
from tests.chains import make_chain
from tests.cli.conftest import run_spx_data

CANDIDATE_KEYS = {"structure", "expiry", "legs", "credit_mid", "credit_natural", "width", "max_loss", "pop", "ev",
                  "edge_volpts", "score"}
LEG_KEYS = {"root", "expiry", "strike", "right", "ratio"}


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    snap, _ = make_chain(n_expiries=5, noise=0.2, half_spread_vol=0.002, seed=41)
    path = tmp_path_factory.mktemp("scan") / "scan.sqlite"
    store = Store.open(path)
    try:
        sid = store.save_snapshot(snap, source="test")
    finally:
        store.close()
    return path, sid, snap


def _json(capsys, *args) -> tuple[int, dict]:
    code = main(["scan", *map(str, args), "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_json_follows_the_documented_schema(db, capsys):
    path, sid, snap = db
    code, payload = _json(capsys, "--db", path, "--snapshot", sid, "--structure", "put-credit-vertical",
                          "--short-delta", "0.20", "--width", "25", "--dte", "0-90", "--top", "3")
    assert code == 0
    assert payload["snapshot"] == sid and payload["checksum"] == snap.checksum
    cands = payload["candidates"]
    assert 1 <= len(cands) <= 3
    for c in cands:
        assert CANDIDATE_KEYS <= set(c)
        assert c["structure"] == "put-credit-vertical" and c["width"] == 25.0
        assert all(set(leg) == LEG_KEYS for leg in c["legs"])
        short, long_ = c["legs"]
        assert (short["ratio"], long_["ratio"]) == (-1, 1) and short["right"] == long_["right"] == "P"
        assert short["strike"] - long_["strike"] == 25.0 and short["expiry"] == c["expiry"]
        assert c["credit_mid"] > 0 and c["credit_mid"] >= c["credit_natural"]  # credits positive, in points
        assert c["max_loss"] == pytest.approx(25.0 - c["credit_mid"])
        assert 0 < c["pop"] < 1 and isinstance(c["score"], float)
    assert [c["score"] for c in cands] == sorted((c["score"] for c in cands), reverse=True)


def test_ranges_and_width_lists(db, capsys):
    path, sid, _ = db
    code, payload = _json(capsys, "--db", path, "--snapshot", sid, "--structure", "iron-condor",
                          "--short-delta", "0.10-0.20", "--width", "10,25", "--dte", "0-90", "--top", "1000")
    assert code == 0
    assert {c["width"] for c in payload["candidates"]} == {10.0, 25.0}
    assert all([leg["ratio"] for leg in c["legs"]] == [1, -1, -1, 1] for c in payload["candidates"])


def test_human_output_is_a_table_with_units(db, capsys):
    path, sid, _ = db
    assert main(["scan", "--db", str(path), "--snapshot", str(sid), "--structure", "call-debit-vertical",
                 "--dte", "0-90"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"snapshot {sid} (SPX ") and "call-debit-vertical" in out[0]
    assert "credit mid" in out[1] and "POP %" in out[1] and set(out[2]) <= {"-", " "}
    assert "call debit vertical" in out[3] and "index points" in out[-1]


def test_an_empty_result_prints_the_reason_on_one_line(db, capsys):
    path, sid, _ = db
    code, payload = _json(capsys, "--db", path, "--snapshot", sid, "--structure", "put-credit-vertical",
                          "--dte", "0-90", "--min-pop", "0.9999")
    assert code == 1 and payload["candidates"] == [] and "POP filter" in payload["reason"]
    code = main(["scan", "--db", str(path), "--snapshot", str(sid), "--structure", "put-credit-vertical",
                 "--dte", "900-999"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "no listed expiry has DTE 900-999" in err[0]


@pytest.mark.parametrize("args, needle", [
    (["--short-delta", "1.5"], "between 0 and 1"), (["--short-delta", "0.3-0.1"], "0 < A <= B < 1"),
    (["--short-delta", "abc"], "not a number"), (["--width", "25,0"], "positive"), (["--width", "x"], "not a number"),
    (["--dte", "7-3"], "low-high"), (["--dte", "1.5"], "whole numbers"), (["--top", "0"], "--top 0"),
])
def test_bad_options_are_one_line_usage_errors(db, capsys, args, needle):
    path, sid, _ = db
    with pytest.raises(SystemExit) as exc:
        main(["scan", "--db", str(path), "--snapshot", str(sid), "--structure", "put-credit-vertical", *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2 and len(err) == 1 and needle in err[0]


def test_unknown_snapshot_fails_in_one_line_and_an_unknown_structure_is_a_usage_error(db):
    path, _, _ = db
    line = run_spx_data("scan", "--db", path, "--snapshot", 999, "--structure", "bwb").assert_one_line_failure(
        codes=(1,))
    assert "no snapshot with id 999" in line
    bad = run_spx_data("scan", "--db", path, "--snapshot", 1, "--structure", "strangle")
    assert bad.returncode == 2 and "invalid choice: 'strangle'" in bad.stderr and "Traceback" not in bad.stderr
