"""Schema migrations run on open: older files are upgraded, newer files are refused."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import inspect

from spx_core.storage import MIGRATIONS, MigrationError, Migration, SchemaVersionError, Store, StoreBusyError, make_engine
from spx_core.storage.migrations import latest_version, migrate
from spx_core.storage.rows import snapshot_row
from spx_core.storage.schema import metadata, snapshots
from tests.chains import realistic_chain

LATEST = latest_version()


def _version(path) -> int:
    con = sqlite3.connect(path)
    try:
        return con.execute("SELECT max(version) FROM schema_version").fetchone()[0]
    finally:
        con.close()


def test_a_new_file_is_at_the_latest_version_and_matches_schema_py(tmp_path):
    path = tmp_path / "new.sqlite"
    store = Store.open(path)
    with store._engine.connect() as conn:
        insp = inspect(conn)
        actual = {name: {c["name"] for c in insp.get_columns(name)} for name in insp.get_table_names()}
    store.close()

    assert store.schema_version == LATEST == _version(path)
    expected = {table.name: {c.name for c in table.columns} for table in metadata.sorted_tables}
    assert actual == expected


def test_schema_py_states_the_migrated_nullability_and_foreign_keys(tmp_path):
    # queries build on schema.py: a NOT NULL or a foreign key it misstates goes unnoticed until a write fails
    with Store.open(tmp_path / "new.sqlite") as store, store._engine.connect() as conn:
        insp = inspect(conn)
        tables = insp.get_table_names()
        nullable = {(n, c["name"], bool(c["nullable"] and not c.get("primary_key"))) for n in tables
                    for c in insp.get_columns(n)}
        keys = {(n, tuple(f["constrained_columns"]), f["referred_table"]) for n in tables
                for f in insp.get_foreign_keys(n)}

    assert nullable == {(t.name, c.name, bool(c.nullable and not c.primary_key)) for t in metadata.sorted_tables
                        for c in t.columns}
    assert keys == {(t.name, (fk.parent.name,), fk.column.table.name) for t in metadata.sorted_tables
                    for fk in t.foreign_keys}


@pytest.mark.parametrize("start", range(len(MIGRATIONS)))
def test_an_older_file_is_migrated_on_open(tmp_path, start):
    path = tmp_path / "old.sqlite"
    engine = make_engine(path)
    migrate(engine, MIGRATIONS[:start])
    engine.dispose()

    store = Store.open(path)
    sid = store.save_snapshot(realistic_chain(n_quotes=50, seed=1), source="t")
    store.close()

    assert _version(path) == LATEST
    assert Store.open(path).load_snapshot(sid).checksum


def _add_runs(conn):
    # a made-up later table (the real orders table is migration 4)
    conn.exec_driver_sql("CREATE TABLE later_runs (id INTEGER PRIMARY KEY, snapshot_id INTEGER "
                         "REFERENCES snapshots (id), qty INTEGER NOT NULL)")
    conn.exec_driver_sql("INSERT INTO later_runs (snapshot_id, qty) SELECT id, 1 FROM snapshots")


def test_appending_a_migration_upgrades_an_existing_file_and_keeps_its_data(tmp_path):
    path = tmp_path / "v1.sqlite"
    with Store.open(path) as store:
        sid = store.save_snapshot(realistic_chain(n_quotes=50, seed=1), source="t")
    later = (*MIGRATIONS, Migration(LATEST + 1, "later runs", _add_runs))

    with Store.open(path, migrations=later) as store:
        assert store.schema_version == LATEST + 1
        assert store.load_snapshot(sid).checksum
        with store._read() as conn:
            assert conn.exec_driver_sql("SELECT snapshot_id, qty FROM later_runs").all() == [(sid, 1)]


def test_a_failing_migration_rolls_back_and_leaves_the_previous_version(tmp_path):
    path = tmp_path / "v1.sqlite"
    Store.open(path).close()

    def broken(conn):
        conn.exec_driver_sql("CREATE TABLE half_done (id INTEGER)")
        raise RuntimeError("bad data in row 7")

    with pytest.raises(MigrationError, match=rf"migration {LATEST + 1} \(broken\) failed: bad data in row 7"):
        Store.open(path, migrations=(*MIGRATIONS, Migration(LATEST + 1, "broken", broken)))

    assert _version(path) == LATEST
    con = sqlite3.connect(path)
    assert con.execute("SELECT name FROM sqlite_master WHERE name = 'half_done'").fetchall() == []
    con.close()


def test_a_file_from_a_newer_release_is_refused_with_a_clear_message(tmp_path):
    path = tmp_path / "future.sqlite"
    Store.open(path).close()
    con = sqlite3.connect(path)
    con.execute("INSERT INTO schema_version VALUES (?, 'from the future', 0)", (LATEST + 3,))
    con.commit()
    con.close()

    with pytest.raises(SchemaVersionError, match=rf"schema version {LATEST + 3}.*only knows up to version {LATEST}"
                                                 r".*Upgrade spx-terminal"):
        Store.open(path)


def test_migrations_must_be_numbered_in_order(tmp_path):
    engine = make_engine(tmp_path / "x.sqlite")
    with pytest.raises(MigrationError, match="1, 2, 3"):
        migrate(engine, (*MIGRATIONS, Migration(LATEST + 2, "skips one", _add_runs)))
    engine.dispose()


def test_the_import_log_rebuild_keeps_every_row_that_references_it(tmp_path):
    # Migration 3 rebuilds import_log (a CHECK change). With foreign keys on, dropping the old table
    # would cascade-delete snapshots, rejections and vendor ids: the runner turns them off for it.
    path = tmp_path / "v2.sqlite"
    engine = make_engine(path)
    migrate(engine, MIGRATIONS[:2])
    snap = realistic_chain(n_quotes=50, seed=1)
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO import_log (id, path, sha256, fmt, status, time_ns) "
                             "VALUES (1, 'a.csv', 'aa', 't', 'imported', 0), (2, 'b.csv', 'bb', 't', 'failed', 0)")
        conn.exec_driver_sql("INSERT INTO import_rejections (import_id, line, reason) VALUES (1, 3, 'x'), (2, 4, 'y')")
        conn.execute(snapshots.insert(), snapshot_row(snap, source="t", session="a", import_id=1))
        conn.exec_driver_sql("INSERT INTO instruments (id, occ_symbol, root, expiry, strike, option_right, "
                             "settlement, multiplier, exchange, currency) "
                             "VALUES (1, 'SPXW  240105C04700000', 'SPXW', '2024-01-05', 4700, 'C', 'PM', 100, "
                             "'CBOE', 'USD')")
        conn.exec_driver_sql("INSERT INTO instrument_ids (vendor, vendor_id, instrument_id, valid_from_ns, "
                             "valid_to_ns, import_id) VALUES ('v', 7, 1, 0, 10, 1)")
        conn.exec_driver_sql("INSERT INTO underlying_bars (symbol, time_ns, close, import_id) VALUES ('SPX', 1, 2, 1)")
    engine.dispose()

    with Store.open(path) as store:
        assert store.schema_version == LATEST
        assert [(r.path, r.status, r.rejected) for r in store.import_log()] == [
            ("a.csv", "imported", [(3, "x")]), ("b.csv", "failed", [(4, "y")])]
        (info,) = store.list_snapshots()
        assert store.load_snapshot(info.id).checksum == snap.checksum
        assert store.has_import("aa") and not store.has_import("bb")
    con = sqlite3.connect(path)
    try:
        assert con.execute("SELECT count(*) FROM instrument_ids").fetchone() == (1,)
        assert con.execute("SELECT import_id FROM underlying_bars").fetchall() == [(1,)]
        assert con.execute("PRAGMA foreign_keys").fetchone() == (0,)  # a plain connection: default off
        assert con.execute("PRAGMA foreign_key_check").fetchall() == []
        assert "staging" in con.execute("SELECT sql FROM sqlite_master WHERE name = 'import_log'").fetchone()[0]
    finally:
        con.close()


def test_a_migration_that_must_wait_for_a_busy_writer_says_busy(tmp_path):
    path = tmp_path / "old.sqlite"
    engine = make_engine(path)
    migrate(engine, MIGRATIONS[:1])
    engine.dispose()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreBusyError, match="another process"):
            Store.open(path, write_timeout_s=0.3)
    finally:
        holder.rollback()
        holder.close()
    assert Store.open(path).schema_version == LATEST
