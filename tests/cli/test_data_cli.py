"""``spx-data import | snapshots | export | simulate``: in-process through main(argv), and once as a real process."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from spx_core.cli.main import main
from spx_core.storage import Store

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
DATASHOP = FIXTURES / "spxw20190626_cut.csv"
DELAYED = FIXTURES / "cboe_delayed_cut.csv"
SPX_DATA = Path(sys.executable).parent / "spx-data"
JSON_FILE_KEYS = ["path", "sha256", "status", "rows_read", "quotes_stored", "snapshots", "rejected", "error"]


@pytest.fixture
def db(tmp_path) -> Path:
    return tmp_path / "cli.sqlite"


def _run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_import_json_is_exactly_one_object_with_the_contract_keys(capsys, db):
    code, out, _ = _run(capsys, "import", "--format", "cboe-datashop", "--db", db, "--json", DATASHOP)
    assert code == 0
    payload = json.loads(out)  # the whole of stdout is one JSON document
    assert list(payload) == ["files"]
    [entry] = payload["files"]
    assert list(entry) == JSON_FILE_KEYS
    assert (entry["status"], entry["rows_read"], entry["quotes_stored"], entry["snapshots"]) == ("imported", 24, 24, 1)
    assert entry["rejected"] == [] and entry["error"] is None and entry["path"] == str(DATASHOP)


def test_import_again_is_duplicate_with_exit_0(capsys, db):
    _run(capsys, "import", "--format", "cboe-datashop", "--db", db, DATASHOP)
    code, out, _ = _run(capsys, "import", "--format", "cboe-datashop", "--db", db, "--json", DATASHOP)
    assert code == 0 and json.loads(out)["files"][0]["status"] == "duplicate"


def test_any_failed_file_gives_exit_1_and_the_report_names_rejections(capsys, db, tmp_path):
    bad = tmp_path / "spxw_bad.csv"
    bad.write_bytes(DATASHOP.read_bytes().replace(b",65.8,", b",abc,"))
    code, out, err = _run(capsys, "import", "--format", "cboe-datashop", "--db", db, bad, DELAYED)
    assert code == 1
    assert f"imported   {bad}: 24 rows read, 23 quotes in 1 snapshot, 1 rejected" in out
    assert f"    {bad}:2: bid_1545 'abc' is not a number" in out
    assert f"failed     {DELAYED}: {DELAYED}: not a Cboe DataShop" in out
    assert "2 files: 1 imported, 0 duplicate, 1 failed" in out
    assert "import" in err  # the tqdm progress bar goes to stderr


@pytest.mark.parametrize("argv", [
    ["import", "--format", "csv", "x.csv"],
    ["import", "x.csv"],
    ["import", "--format", "cboe-delayed"],
    ["import", "--format", "cboe-delayed", "--root", "SPX", "x.csv"],
    ["export", "--snapshot", "one", "--csv", "out.csv"],
    ["simulate", "--seed", "1", "--minutes", "0"],
    ["simulate", "--seed", "1", "--minutes", "2", "--start", "next tuesday"],
])
def test_bad_usage_exits_2(capsys, db, argv):
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--db", str(db)])
    assert exc.value.code == 2
    assert "error" in capsys.readouterr().err


def test_snapshots_lists_id_time_price_expiries_quotes_checksum(capsys, db):
    _run(capsys, "import", "--format", "cboe-datashop", "--db", db, DATASHOP)
    _run(capsys, "import", "--format", "cboe-delayed", "--db", db, DELAYED)
    code, out, _ = _run(capsys, "snapshots", "--db", db)
    with Store.open(db) as store:
        infos = store.list_snapshots()
    assert code == 0
    lines = out.strip().split("\n")
    assert lines[0].split() == ["id", "time", "(ET)", "underlying", "expiries", "quotes", "checksum"]
    assert lines[1].split() == [str(infos[0].id), "2019-06-26", "15:45:00", "2918.11", "2", "24", infos[0].checksum]
    assert lines[2].split() == [str(infos[1].id), "2025-10-01", "18:03:00", "6711.20", "2", "20", infos[1].checksum]

    code, out, _ = _run(capsys, "snapshots", "--db", db, "--json")
    rows = json.loads(out)["snapshots"]
    assert [(r["id"], r["quotes"], r["expiries"], r["checksum"]) for r in rows] == [
        (i.id, i.n_quotes, i.n_expiries, i.checksum) for i in infos]
    assert rows[1]["underlying_price"] == 6711.2002 and rows[1]["time"] == "2025-10-01T22:03:00+00:00"


def test_snapshots_of_an_empty_database(capsys, db):
    Store.open(db).close()
    code, out, _ = _run(capsys, "snapshots", "--db", db)
    assert code == 0 and "no snapshots stored" in out


def test_export_writes_one_row_per_quote_with_flag_bits_and_names(capsys, db, tmp_path):
    _run(capsys, "import", "--format", "cboe-datashop", "--db", db, DATASHOP)
    with Store.open(db) as store:
        [info] = store.list_snapshots()
        snap = store.load_snapshot(info.id)
    out_csv = tmp_path / "quotes.csv"
    code, _, err = _run(capsys, "export", "--db", db, "--snapshot", info.id, "--csv", out_csv)
    assert code == 0 and info.checksum in err
    with open(out_csv, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(snap) == 24
    for i, row in enumerate(rows):
        assert (row["root"], row["expiry"], float(row["strike"]), row["right"]) == (
            "SPXW", str(snap.expiry[i]), snap.strike[i], "C" if snap.is_call[i] else "P")
        assert (float(row["bid"]), float(row["ask"]), int(row["flags"])) == (snap.bid[i], snap.ask[i], snap.flags[i])
    # e.g. line 3 of the fixture: 2850 put, bid 0 / ask 0.05 -> zero bid
    put_2850 = next(r for r in rows if r["expiry"] == "2019-06-26" and r["strike"] == "2850.0" and r["right"] == "P")
    assert (put_2850["flags"], put_2850["flag_names"]) == ("2", "zero bid")
    assert put_2850["settlement"] == "PM" and put_2850["quote_time"] == "2019-06-26T19:45:00.000000Z"


def test_export_of_an_unknown_snapshot_exits_1(capsys, db, tmp_path):
    Store.open(db).close()
    code, _, err = _run(capsys, "export", "--db", db, "--snapshot", 42, "--csv", tmp_path / "x.csv")
    assert code == 1 and "no snapshot with id 42" in err


def test_simulate_records_one_snapshot_per_minute_deterministically(capsys, tmp_path):
    results = []
    for name in ("a.sqlite", "b.sqlite"):
        code, out, _ = _run(capsys, "simulate", "--db", tmp_path / name, "--seed", 11, "--minutes", 3,
                            "--start", "2024-03-05T10:00")
        assert code == 0 and "recorded 3 simulated snapshots" in out
        with Store.open(tmp_path / name) as store:
            results.append(store.list_snapshots(underlying="SPX"))  # the SPY companions: test_simulate_spy.py
    a, b = results
    assert [i.checksum for i in a] == [i.checksum for i in b]
    assert [(i.time - a[0].time).total_seconds() for i in a] == [0, 60, 120]
    assert a[0].time.isoformat() == "2024-03-05T15:00:00+00:00" and a[0].source == "Simulated"
    assert len({i.session for i in a}) == 1


def test_real_subprocess_import_json_and_exit_codes(tmp_path):
    db = tmp_path / "proc.sqlite"
    cmd = [str(SPX_DATA), "import", "--format", "cboe-delayed", "--db", str(db), "--json", str(DELAYED)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    [entry] = json.loads(proc.stdout)["files"]
    assert (entry["status"], entry["quotes_stored"]) == ("imported", 20)

    missing = subprocess.run([*cmd[:-1], str(tmp_path / "missing.csv")], capture_output=True, text=True, timeout=120)
    assert missing.returncode == 1 and json.loads(missing.stdout)["files"][0]["status"] == "failed"

    usage = subprocess.run([str(SPX_DATA), "import", "--db", str(db), str(DELAYED)], capture_output=True,
                           text=True, timeout=120)
    assert usage.returncode == 2 and "--format" in usage.stderr
