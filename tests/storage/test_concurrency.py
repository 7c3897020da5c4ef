"""Several processes on one database: readers never wait, writers wait briefly and boundedly.

The scenario of issue 7: long imports run while a recorder writes a snapshot every few ms (another
process) and readers list and load snapshots in a loop (opening the store each time, as each
``spx-data`` command does). Nothing fails, nothing is lost, imports appear whole or not at all.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from spx_core.storage import SnapshotNotFoundError, Store, StoreBusyError
from spx_core.storage import staging
from spx_core.storage.staging import OwnerLock, owner_alive
from tests.conftest import REPO
from tests.chains import realistic_chain

IMPORT_SNAPSHOTS = 150  # of 20k quotes each: ~1 s of writing per import on an idle core
RECORDER = textwrap.dedent("""
    import json, os, sys, time
    from spx_core.storage import Store
    from tests.chains import realistic_chain

    db, stop = sys.argv[1:3]
    store = Store.open(db)
    snap = realistic_chain(n_quotes=400, seed=5)
    ids, worst, i = [], 0.0, 0
    print("READY", flush=True)
    while not os.path.exists(stop):
        s = snap.replace_quotes(time=snap.time_ns + i * 10**9, underlying_price=4700 + i / 100,
                                flags=snap.columns["flags"])
        t0 = time.perf_counter()
        ids.append(store.save_snapshot(s, source="Simulated", session="rec"))
        worst = max(worst, time.perf_counter() - t0)
        i += 1
        time.sleep(0.003)
    print(json.dumps({"ids": ids, "worst_s": worst}), flush=True)
""")
IMPORTER = textwrap.dedent("""
    import json, sys, time
    from spx_core.storage import Store
    from tests.chains import realistic_chain

    db, tag, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    store = Store.open(db)
    snap = realistic_chain(n_quotes=20_000, seed=int(tag))
    t0 = time.perf_counter()
    with store.import_file(path=f"file{tag}.csv", sha256=tag * 64, fmt="test") as imp:
        for i in range(n):
            imp.add_snapshot(snap.replace_quotes(time=snap.time_ns + i * 10**9, underlying_price=4700 + i / 100,
                                                 flags=snap.columns["flags"]), source="test", session=f"imp{tag}")
            imp.reject(i + 2, "a rejected line")
            imp.rows_read += 2
    print(json.dumps({"snapshots": n, "seconds": time.perf_counter() - t0}), flush=True)
""")


def _spawn(code: str, *args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=REPO, env=env)


def _finish(proc: subprocess.Popen, timeout: float = 120) -> dict:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def _read_once(db: Path, seen: dict[str, set[int]]) -> None:
    with Store.open(db, create=False) as reader:  # a fresh open each time, like every spx-data command
        infos = reader.list_snapshots()
        sessions = {s.name: s.n_snapshots for s in reader.list_sessions()}
        if infos:
            reader.load_snapshot(infos[-1].id)  # checksum verified
        for tag in ("1", "2"):
            seen[tag].add(sessions.get(f"imp{tag}", 0))
        logged = {r.path: r.snapshots for r in reader.import_log()}
        assert all(n == IMPORT_SNAPSHOTS for n in logged.values()), logged


@pytest.mark.slow
def test_long_imports_readers_and_a_recorder_share_one_database(tmp_path):
    db, stop = tmp_path / "shared.sqlite", tmp_path / "stop"
    Store.open(db).close()
    recorder = _spawn(RECORDER, str(db), str(stop))
    assert recorder.stdout.readline().strip() == "READY", recorder.stderr.read()
    importers = [_spawn(IMPORTER, str(db), tag, str(IMPORT_SNAPSHOTS)) for tag in ("1", "2")]
    seen: dict[str, set[int]] = {"1": set(), "2": set()}
    worst_read, reads = 0.0, 0
    try:
        while any(p.poll() is None for p in importers):
            t0 = time.perf_counter()
            _read_once(db, seen)
            worst_read = max(worst_read, time.perf_counter() - t0)
            reads += 1
            time.sleep(0.02)  # a GUI-like poll, not a busy loop stealing the writers' cores
        results = [_finish(p) for p in importers]
        stop.touch()
        recorded = _finish(recorder)
    finally:
        stop.touch()
        for proc in (recorder, *importers):
            if proc.poll() is None:
                proc.kill()
                proc.communicate()

    assert [r["snapshots"] for r in results] == [IMPORT_SNAPSHOTS] * 2
    with Store.open(db) as store:
        sessions = {s.name: s.n_snapshots for s in store.list_sessions()}
        assert sessions == {"rec": len(recorded["ids"]), "imp1": IMPORT_SNAPSHOTS, "imp2": IMPORT_SNAPSHOTS}
        assert store.snapshot_ids("rec") == recorded["ids"]  # every recorded snapshot, in order
        log = store.import_log()
        assert [(r.status, r.snapshots, len(r.rejected)) for r in log] == [("imported", IMPORT_SNAPSHOTS,
                                                                            IMPORT_SNAPSHOTS)] * 2
    # Readers saw each import either absent or whole, never half of it. Nobody waited for a whole
    # import (relative bounds: the shared machine's load stretches all of these alike).
    assert all(counts <= {0, IMPORT_SNAPSHOTS} for counts in seen.values()), seen
    shortest_import = min(r["seconds"] for r in results)
    assert reads >= 5 and worst_read < shortest_import / 2, (reads, worst_read, shortest_import)
    assert len(recorded["ids"]) > 20 and recorded["worst_s"] < shortest_import / 2, (recorded["worst_s"],
                                                                                      shortest_import)


def _hold_write_lock(db: Path) -> sqlite3.Connection:
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    return holder


def test_opening_an_up_to_date_database_while_a_writer_holds_the_lock_is_immediate(tmp_path):
    db = tmp_path / "busy.sqlite"
    with Store.open(db) as store:
        sid = store.save_snapshot(realistic_chain(n_quotes=100), source="t")
    holder = _hold_write_lock(db)
    try:
        t0 = time.perf_counter()
        with Store.open(db, write_timeout_s=5) as store:
            assert [i.id for i in store.list_snapshots()] == [sid]
            assert store.load_snapshot(sid).checksum
        assert time.perf_counter() - t0 < 1.0
    finally:
        holder.rollback()
        holder.close()


def test_a_writer_gives_up_after_its_bounded_wait_with_a_one_line_message(tmp_path):
    db = tmp_path / "busy.sqlite"
    store = Store.open(db, write_timeout_s=0.5)
    holder = _hold_write_lock(db)
    try:
        t0 = time.perf_counter()
        with pytest.raises(StoreBusyError) as info:
            store.save_snapshot(realistic_chain(n_quotes=100), source="t")
        waited = time.perf_counter() - t0
    finally:
        holder.rollback()
        holder.close()
    message = str(info.value)
    assert 0.4 < waited < 3.0
    assert "\n" not in message and str(db) in message and "another process" in message and "retry" in message
    assert store.save_snapshot(realistic_chain(n_quotes=100), source="t")  # the lock is free again: it works
    store.close()


def test_a_writer_waits_for_a_short_lock_and_then_succeeds(tmp_path):
    db = tmp_path / "busy.sqlite"
    store = Store.open(db, write_timeout_s=10)
    holder = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    timer = threading.Timer(0.5, holder.rollback)
    timer.start()
    try:
        t0 = time.perf_counter()
        assert store.save_snapshot(realistic_chain(n_quotes=100), source="t")
        assert 0.4 < time.perf_counter() - t0 < 5.0
    finally:
        timer.join()
        holder.close()
        store.close()


def test_a_staging_import_is_invisible_to_every_reader_until_it_publishes(tmp_path):
    db = tmp_path / "stage.sqlite"
    with Store.open(db) as writer, Store.open(db) as reader:
        with writer.import_file(path="a.csv", sha256="a" * 64, fmt="test") as imp:
            sid = imp.add_snapshot(realistic_chain(n_quotes=100), source="test", session="a")
            imp.reject(3, "bad line")
            imp.add_instruments([realistic_chain(n_quotes=100).contract(0)])
            assert reader.list_snapshots() == [] and reader.list_sessions() == []
            assert reader.snapshot_ids("a") == [] and reader.import_log() == []
            assert reader.load_instrument(realistic_chain(n_quotes=100).contract(0).occ_symbol) is None
            with pytest.raises(SnapshotNotFoundError):
                reader.load_snapshot(sid)
            assert not reader.has_import("a" * 64)
            assert reader.delete_snapshots([sid]) == 0  # nobody deletes a live import's rows
        assert reader.snapshot_ids("a") == [sid] and reader.has_import("a" * 64)
        assert reader.load_instrument(realistic_chain(n_quotes=100).contract(0).occ_symbol) is not None
        assert reader.import_log()[0].rejected == [(3, "bad line")]


def test_a_failed_import_leaves_nothing_and_keeps_one_failed_log_row(tmp_path):
    db = tmp_path / "fail.sqlite"
    snap = realistic_chain(n_quotes=100)
    with Store.open(db) as store:
        with pytest.raises(RuntimeError, match="parser broke"):
            with store.import_file(path="b.csv", sha256="b" * 64, fmt="test") as imp:
                for i in range(40):  # more than one discard batch
                    imp.add_snapshot(snap.replace_quotes(time=snap.time_ns + i, underlying_price=4700.0,
                                                         flags=snap.columns["flags"]), source="test", session="b")
                imp.reject(7, "bad line")
                raise RuntimeError("parser broke")
        (record,) = store.import_log()
        assert (record.status, record.snapshots, record.rejected) == ("failed", 0, [(7, "bad line")])
        assert "parser broke" in record.error
    raw = sqlite3.connect(db)
    assert raw.execute("SELECT count(*) FROM snapshots").fetchone() == (0,)  # physically gone, not only hidden
    raw.close()
    assert not list(tmp_path.glob("*.lock"))


def test_the_same_file_published_by_two_imports_at_once_is_stored_once(tmp_path):
    db = tmp_path / "dup.sqlite"
    snap = realistic_chain(n_quotes=100)
    with Store.open(db) as first, Store.open(db) as second:
        with pytest.raises(Exception) as info:
            with first.import_file(path="c.csv", sha256="c" * 64, fmt="test") as imp1:
                imp1.add_snapshot(snap, source="test", session="c")
                with second.import_file(path="c-copy.csv", sha256="c" * 64, fmt="test") as imp2:
                    imp2.add_snapshot(snap, source="test", session="c")
        assert type(info.value).__name__ == "DuplicateImportError"
        assert [(r.path, r.status) for r in first.import_log()] == [("c-copy.csv", "imported")]
        assert len(first.snapshot_ids("c")) == 1


def test_the_owner_lock_of_an_import_on_a_relative_path_is_found_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with Store.open("relative.sqlite") as store:
        with store.import_file(path="d.csv", sha256="d" * 64, fmt="test") as imp:
            with store._read() as conn:
                (owner,) = conn.exec_driver_sql("SELECT owner FROM import_log WHERE id = ?", (imp.import_id,)).one()
            monkeypatch.chdir(tmp_path.parent)  # another process's working folder
            assert Path(owner).is_absolute() and owner_alive(owner)
            assert store.purge_dead_imports() == 0
            imp.add_snapshot(realistic_chain(n_quotes=50), source="test", session="d")
        assert not owner_alive(owner) and not Path(owner).exists()
        assert len(store.snapshot_ids("d")) == 1


def test_orphan_lock_files_are_swept_but_held_ones_never(tmp_path):
    db = tmp_path / "orphans.sqlite"
    orphan = tmp_path / f"{db.name}-import-{'0' * 32}.lock"
    orphan.write_bytes(b"")  # a process killed right after publishing, before removing its file
    with Store.open(db) as store:
        held = OwnerLock.acquire(db)  # an import that is just starting
        try:
            with store.import_file(path="e.csv", sha256="e" * 64, fmt="test") as imp:
                imp.add_snapshot(realistic_chain(n_quotes=50), source="test", session="e")
            assert not orphan.exists() and held.path.exists() and owner_alive(str(held.path))
        finally:
            held.release()
    assert not list(tmp_path.glob("*.lock"))


def test_a_lock_file_swept_while_being_locked_is_replaced(tmp_path, monkeypatch):
    real_try_lock = staging._try_lock
    calls = []

    def swept_first(handle):
        calls.append(handle.name)
        if len(calls) == 1:
            Path(handle.name).unlink()  # a sweep removed it between open and lock
        return real_try_lock(handle)

    monkeypatch.setattr(staging, "_try_lock", swept_first)
    lock = OwnerLock.acquire(tmp_path / "db.sqlite")
    try:
        assert len(calls) == 2 and lock.path.exists() and str(lock.path) == calls[1]
    finally:
        lock.release()
