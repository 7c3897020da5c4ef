"""import_file: one transaction per file, failed rows logged, idempotent by sha256."""

from __future__ import annotations

import hashlib
from datetime import date

import pandas as pd
import pytest

from spx_core.domain import OptionContract
from spx_core.storage import DuplicateImportError, Store
from spx_core.storage.imports import MAX_FAILED_REJECTIONS
from tests.chains import realistic_chain

SHA_A = hashlib.sha256(b"file a").hexdigest()
SHA_B = hashlib.sha256(b"file b").hexdigest()
BARS = pd.DataFrame({"time": [10**18, 10**18 + 60 * 10**9], "open": [1.0, 2.0], "high": [1.0, 2.0],
                     "low": [1.0, 2.0], "close": [1.0, 2.0], "volume": [1, 2]})
CONTRACT = OptionContract(root="SPX", expiry=date(2024, 1, 19), strike=4700, right="P")


@pytest.fixture
def store(tmp_path):
    with Store.open(tmp_path / "imports.sqlite") as s:
        yield s


def _counts(store: Store) -> dict[str, int]:
    with store._read() as conn:
        return {name: conn.exec_driver_sql(f"SELECT count(*) FROM {name}").scalar()
                for name in ("snapshots", "underlying_bars", "instruments", "import_rejections")}


def test_a_successful_import_stores_everything_and_logs_counts(store):
    snap = realistic_chain(n_quotes=1_000, seed=1)
    with store.import_file(path="/data/a.csv", sha256=SHA_A, fmt="cboe-datashop") as imp:
        imp.rows_read += 1_002
        sid = imp.add_snapshot(snap, source="cboe-datashop", session="2024-01-05")
        imp.add_instruments([CONTRACT])
        imp.add_bars("SPX", BARS)
        imp.reject(7, "bid is not a number: 'abc'")
        imp.reject(9, "strike missing")

    (rec,) = store.import_log()
    assert (rec.path, rec.sha256, rec.fmt, rec.status) == ("/data/a.csv", SHA_A, "cboe-datashop", "imported")
    assert (rec.rows_read, rec.quotes_stored, rec.snapshots) == (1_002, 1_000, 1)
    assert rec.rejected == [(7, "bid is not a number: 'abc'"), (9, "strike missing")]
    assert rec.error is None and rec.time is not None
    assert imp.status == "imported" and imp.import_id == rec.id
    assert store.load_snapshot(sid).checksum == snap.checksum
    assert store.list_snapshots(session="2024-01-05")[0].id == sid
    assert _counts(store) == {"snapshots": 1, "underlying_bars": 2, "instruments": 1, "import_rejections": 2}
    assert store.has_import(SHA_A) and not store.has_import(SHA_B)


def test_an_exception_rolls_back_the_whole_file_and_logs_a_failed_row(store):
    with pytest.raises(ValueError, match="line 3000: unreadable"):
        with store.import_file(path="b.csv", sha256=SHA_B, fmt="lean-minute") as imp:
            imp.rows_read += 3_000
            for seed in range(3):
                imp.add_snapshot(realistic_chain(n_quotes=200, seed=seed), source="lean")
            imp.add_bars("SPX", BARS)
            imp.add_instruments([CONTRACT])
            imp.reject(5, "bad row")
            raise ValueError("line 3000: unreadable")

    assert _counts(store) == {"snapshots": 0, "underlying_bars": 0, "instruments": 0, "import_rejections": 1}
    (rec,) = store.import_log()
    assert rec.status == "failed" and rec.error == "ValueError: line 3000: unreadable"
    assert (rec.rows_read, rec.quotes_stored, rec.snapshots) == (3_000, 0, 0)
    assert rec.rejected == [(5, "bad row")]
    assert imp.status == "failed" and imp.import_id == rec.id and imp.snapshots == 0
    assert not store.has_import(SHA_B)


def test_a_failed_file_can_be_imported_again(store):
    with pytest.raises(RuntimeError):
        with store.import_file(path="b.csv", sha256=SHA_B, fmt="x"):
            raise RuntimeError("disk hiccup")
    with store.import_file(path="b.csv", sha256=SHA_B, fmt="x") as imp:
        imp.add_snapshot(realistic_chain(n_quotes=100, seed=1), source="x")

    assert [r.status for r in store.import_log()] == ["failed", "imported"]
    assert store.has_import(SHA_B)


def test_the_same_file_twice_raises_duplicate_before_the_block_runs(store):
    with store.import_file(path="a.csv", sha256=SHA_A, fmt="x") as imp:
        imp.add_snapshot(realistic_chain(n_quotes=100, seed=1), source="x")
    ran = []

    with pytest.raises(DuplicateImportError, match="already imported") as info:
        with store.import_file(path="copy-of-a.csv", sha256=SHA_A, fmt="x"):
            ran.append(True)

    assert ran == []
    assert info.value.sha256 == SHA_A and info.value.import_id == store.import_log()[0].id
    assert len(store.import_log()) == 1 and len(store.list_snapshots()) == 1


def test_the_database_refuses_two_successful_imports_of_one_sha(store):
    with store.import_file(path="a.csv", sha256=SHA_A, fmt="x"):
        pass
    with pytest.raises(Exception, match="UNIQUE"), store._write() as conn:
        conn.exec_driver_sql("INSERT INTO import_log (path, sha256, fmt, status, time_ns) "
                             f"VALUES ('a', '{SHA_A}', 'x', 'imported', 0)")


def test_many_rejections_are_stored_in_batches(store):
    with store.import_file(path="a.csv", sha256=SHA_A, fmt="x") as imp:
        for line in range(2, 2_502):
            imp.reject(line, f"row {line} bad")
    assert len(store.import_log()[0].rejected) == 2_500


def test_a_failed_import_keeps_only_the_first_rejections(store):
    with pytest.raises(KeyError):
        with store.import_file(path="a.csv", sha256=SHA_A, fmt="x") as imp:
            for line in range(MAX_FAILED_REJECTIONS + 50):
                imp.reject(line, "bad")
            raise KeyError("column 'strike'")
    (rec,) = store.import_log()
    assert len(rec.rejected) == MAX_FAILED_REJECTIONS and "column 'strike'" in rec.error


def test_delete_import_removes_its_snapshots_so_it_can_be_reimported(store):
    with store.import_file(path="a.csv", sha256=SHA_A, fmt="x") as imp:
        imp.add_snapshot(realistic_chain(n_quotes=100, seed=1), source="x")
        imp.add_bars("SPX", BARS)
        imp.reject(3, "bad")
    store.delete_import(store.import_log()[0].id)

    assert _counts(store) == {"snapshots": 0, "underlying_bars": 2, "instruments": 0, "import_rejections": 0}
    assert not store.has_import(SHA_A)
