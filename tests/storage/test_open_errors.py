"""Every way opening or writing a database can fail gives a named StorageError with one line."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys

import numpy as np
import pytest
from sqlalchemy import event

from spx_core import paths
from spx_core.storage import (
    DatabaseCorruptError,
    DatabaseNotFoundError,
    DatabasePathError,
    DiskFullError,
    NotADatabaseError,
    PayloadError,
    SnapshotIntegrityError,
    StorageError,
    Store,
    decode_payload,
    encode_snapshot,
)
from tests.conftest import REPO
from tests.chains import realistic_chain


def _one_line(exc: BaseException) -> str:
    message = str(exc)
    assert message and "\n" not in message and "Traceback" not in message
    return message


def test_a_path_whose_parent_is_a_file_names_it(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(DatabasePathError) as info:
        Store.open(tmp_path / "afile" / "db.sqlite")
    assert "a file is in the way" in _one_line(info.value) and "afile" in str(info.value)


def test_a_path_that_is_a_folder_says_so(tmp_path):
    with pytest.raises(DatabasePathError, match="is a folder, not a file") as info:
        Store.open(tmp_path)
    _one_line(info.value)


def test_a_file_that_is_not_sqlite_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "notes.sqlite"
    path.write_text("these are my notes, not a database\n" * 200)
    with pytest.raises(NotADatabaseError, match="is not an SQLite database") as info:
        Store.open(path)
    _one_line(info.value)
    assert path.read_text().startswith("these are my notes")


def test_a_reader_refuses_an_empty_file_or_another_programs_sqlite_file_and_writes_nothing(tmp_path):
    # a reader (spx-data orders / positions / summary ...) once migrated such a file into an spx database
    empty = tmp_path / "empty.sqlite"
    empty.touch()
    foreign = tmp_path / "contacts.sqlite"
    con = sqlite3.connect(foreign)
    con.execute("CREATE TABLE people (name TEXT)")
    con.commit()
    con.close()
    before = foreign.read_bytes()

    for path, what in ((empty, "an empty file"), (foreign, "another program's SQLite file: tables people")):
        with pytest.raises(NotADatabaseError, match="is not an spx-terminal database") as info:
            Store.open(path, create=False)
        assert what in _one_line(info.value)
    assert empty.read_bytes() == b"" and foreign.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["contacts.sqlite", "empty.sqlite"]  # no -wal / -shm
    Store.open(empty).close()  # a writer may still make an empty file its database
    with Store.open(empty, create=False) as store:
        assert store.schema_version > 0


def test_a_damaged_database_says_restore_or_reimport(tmp_path):
    path = tmp_path / "damaged.sqlite"
    with Store.open(path) as store:
        store.save_snapshot(realistic_chain(n_quotes=200), source="t")
    con = sqlite3.connect(path)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    data = bytearray(path.read_bytes())
    data[4096:3 * 4096] = b"\xa5" * (2 * 4096)  # pages 2-3: table b-trees the open reads
    path.write_bytes(bytes(data))
    with pytest.raises(DatabaseCorruptError, match="is damaged.*restore it from a backup") as info:
        Store.open(path)
    _one_line(info.value)


def test_create_false_on_a_missing_file_fails_and_creates_nothing(tmp_path):
    path = tmp_path / "typo.sqlite"
    with pytest.raises(DatabaseNotFoundError) as info:
        Store.open(path, create=False)
    assert _one_line(info.value) == (f"no database at {path}; check the path, or create one with "
                                     f"`spx-data import` / `spx-data simulate`")
    assert not path.exists()
    with pytest.raises(DatabaseNotFoundError):
        Store.open(tmp_path / "missing_folder" / "db.sqlite", create=False)
    assert not (tmp_path / "missing_folder").exists()


def test_create_false_opens_an_existing_database(tmp_path):
    path = tmp_path / "db.sqlite"
    with Store.open(path) as store:
        sid = store.save_snapshot(realistic_chain(n_quotes=50), source="t")
    with Store.open(path, create=False) as store:
        assert store.load_snapshot(sid).checksum


def _limit_pages(store: Store, pages: int) -> None:
    """Make the database 'full' at ``pages`` pages (SQLite's own size limit gives the disk-full error)."""
    event.listen(store._engine, "connect",
                 lambda dbapi, _rec: dbapi.execute(f"PRAGMA max_page_count = {pages}"))
    store._engine.dispose()


def test_disk_full_during_a_write_is_named_and_stores_nothing_of_it(tmp_path):
    store = Store.open(tmp_path / "full.sqlite")
    snap = realistic_chain(n_quotes=20_000)
    first = store.save_snapshot(snap, source="t")
    with store._read() as conn:
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar()
    _limit_pages(store, pages + 10)
    batch = [snap.replace_quotes(time=snap.time_ns + i, underlying_price=4700.0, flags=snap.columns["flags"])
             for i in range(1, 4)]
    with pytest.raises(DiskFullError, match="disk full while writing.*nothing of that write was stored") as info:
        store.save_snapshots(batch, source="t")
    _one_line(info.value)
    assert [i.id for i in store.list_snapshots()] == [first]
    store.close()


def test_disk_full_during_an_import_leaves_nothing_visible(tmp_path):
    store = Store.open(tmp_path / "full.sqlite")
    snap = realistic_chain(n_quotes=20_000)
    with store._read() as conn:
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar()
    _limit_pages(store, pages + 100)
    with pytest.raises(DiskFullError):
        with store.import_file(path="big.csv", sha256="f" * 64, fmt="test") as imp:
            for i in range(20):
                imp.add_snapshot(snap.replace_quotes(time=snap.time_ns + i, underlying_price=4700.0,
                                                     flags=snap.columns["flags"]), source="test", session="big")
    assert store.list_snapshots() == [] and not store.has_import("f" * 64)
    assert [r.status for r in store.import_log()] == ["failed"]
    store.close()


def test_a_payload_of_the_wrong_type_or_length_is_a_payload_error():
    snap = realistic_chain(n_quotes=50)
    good = encode_snapshot(underlying="SPX", time_ns=snap.time_ns, underlying_price=4700.0,
                           underlying_bid=np.nan, underlying_ask=np.nan, columns=snap.columns)
    for bad in ("SPXZ text", None, 12, b"", b"SPX", good[:5], good[:len(good) // 2], good + b"\0"):
        with pytest.raises(PayloadError):
            decode_payload(bad)
    short = dict(snap.columns, bid=snap.columns["bid"][:-1])
    with pytest.raises(PayloadError, match="column 'bid' of shape"):
        encode_snapshot(underlying="SPX", time_ns=snap.time_ns, underlying_price=4700.0,
                        underlying_bid=np.nan, underlying_ask=np.nan, columns=short)


@pytest.mark.parametrize("payload", ["a text payload", b"SPX", 42])
def test_a_stored_payload_of_the_wrong_type_or_length_is_an_integrity_error(tmp_path, payload):
    path = tmp_path / "db.sqlite"
    with Store.open(path) as store:
        sid = store.save_snapshot(realistic_chain(n_quotes=50), source="t")
    con = sqlite3.connect(path)
    con.execute("UPDATE snapshots SET payload = ? WHERE id = ?", (payload, sid))
    con.commit()
    con.close()
    with Store.open(path) as store, pytest.raises(SnapshotIntegrityError, match=f"snapshot {sid}: ") as info:
        store.load_snapshot(sid)
    _one_line(info.value)


def test_spx_terminal_home_that_is_a_file_is_named(tmp_path, monkeypatch):
    home = tmp_path / "home_is_a_file"
    home.write_text("x")
    monkeypatch.setenv(paths.ENV_HOME, str(home))
    for call in (paths.data_dir, paths.log_dir, paths.database_path, Store.open):
        with pytest.raises(DatabasePathError, match="SPX_TERMINAL_HOME .* is not a folder") as info:
            call()
        _one_line(info.value)
        assert isinstance(info.value, StorageError)


def test_spx_terminal_home_that_is_not_writable_is_named(tmp_path, monkeypatch):
    home = tmp_path / "readonly_home"
    home.mkdir()
    monkeypatch.setenv(paths.ENV_HOME, str(home))
    real_access = os.access
    # root ignores permission bits, so ask os.access the way a normal user would get the answer
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(home) else real_access(p, mode))
    with pytest.raises(DatabasePathError, match="SPX_TERMINAL_HOME .* is not writable; unset") as info:
        paths.data_dir()
    _one_line(info.value)


def test_spx_core_paths_imports_on_its_own():
    # paths uses storage.errors, and storage uses paths: neither import order may fail
    for first in ("spx_core.paths", "spx_core.storage"):
        env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        subprocess.run([sys.executable, "-c", f"import {first}; import spx_core.paths, spx_core.storage"],
                       check=True, env=env, cwd=REPO)
