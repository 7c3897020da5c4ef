"""SIGKILL in the middle of a large import: the file stays sound and shows whole imports or nothing.

Imports stage their rows in short committed transactions (readers filter them out) and publish in
one commit, so mid-import the second file's rows are on disk but invisible; after the kill they stay
invisible until a purge removes them, which only happens once their process is dead.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from spx_core.storage import Store
from tests.conftest import REPO

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL")]

COMMITTED_SNAPSHOTS = 5
MARK_AFTER = 40  # snapshots staged by the second import before the child says so
# What every store read path shows (spx_core.storage.schema.visible_snapshots), written out in SQL.
VISIBLE = "(import_id IS NULL OR import_id NOT IN (SELECT id FROM import_log WHERE status = 'staging'))"

CHILD = textwrap.dedent("""
    import sys
    from spx_core.storage import Store
    from tests.chains import realistic_chain

    store = Store.open(sys.argv[1])
    snap = realistic_chain(n_quotes=20_000, seed=3)
    def at(i):
        return snap.replace_quotes(time=snap.time_ns + i * 1_000_000_000, underlying_price=4700.0 + i / 100,
                                   flags=snap.columns["flags"])
    with store.import_file(path="first.csv", sha256="1" * 64, fmt="test") as imp:
        for i in range({committed}):
            imp.add_snapshot(at(i), source="test", session="first")
    print("COMMITTED", flush=True)
    with store.import_file(path="second.csv", sha256="2" * 64, fmt="test") as imp:
        for i in range(100_000):
            imp.add_snapshot(at(i), source="test", session="second")
            if i + 1 == {mark}:
                print("IN_PROGRESS", flush=True)
    print("UNEXPECTED_COMMIT", flush=True)
""").format(committed=COMMITTED_SNAPSHOTS, mark=MARK_AFTER)


def _read_line(proc: subprocess.Popen, deadline: float) -> str:
    line = proc.stdout.readline()
    if not line and time.monotonic() > deadline:
        raise TimeoutError("child printed nothing before the deadline")
    return line.strip()


def test_sigkill_mid_import_leaves_a_sound_file_with_whole_imports_only(tmp_path):
    db = tmp_path / "crash.sqlite"
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(db)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=REPO, env=env)
    try:
        deadline = time.monotonic() + 60
        assert _read_line(proc, deadline) == "COMMITTED", proc.stderr.read() if proc.poll() is not None else ""
        assert _read_line(proc, deadline) == "IN_PROGRESS"
        # Demonstrably mid-import: the second file's rows are committed (staged) on disk, but every
        # reader (raw SQL with the store's visibility rule, or a Store opened meanwhile) sees only the first.
        wal = Path(f"{db}-wal")
        assert wal.stat().st_size > MARK_AFTER * 50_000
        with sqlite3.connect(db) as peek:
            assert peek.execute(f"SELECT count(*) FROM snapshots WHERE {VISIBLE}").fetchone() == (COMMITTED_SNAPSHOTS,)
            assert peek.execute("SELECT count(*) FROM snapshots").fetchone()[0] >= COMMITTED_SNAPSHOTS + MARK_AFTER
        with Store.open(db) as reader:
            assert len(reader.list_snapshots()) == COMMITTED_SNAPSHOTS
            assert reader.purge_dead_imports() == 0  # the importing child is alive: its rows are left alone
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL

    raw = sqlite3.connect(db)
    try:
        assert raw.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert raw.execute("PRAGMA foreign_key_check").fetchall() == []
        by_session = dict(raw.execute(f"SELECT session, count(*) FROM snapshots WHERE {VISIBLE} "
                                      f"GROUP BY session").fetchall())
        log = raw.execute("SELECT path, status, snapshots FROM import_log WHERE status != 'staging'").fetchall()
    finally:
        raw.close()
    assert by_session == {"first": COMMITTED_SNAPSHOTS}
    assert log == [("first.csv", "imported", COMMITTED_SNAPSHOTS)]
    with Store.open(db) as store:  # and the store opens it and reads every snapshot, checksums verified
        ids = store.snapshot_ids("first")
        assert [store.load_snapshot(i).time for i in ids] == [i.time for i in store.list_snapshots()]
        assert len(ids) == COMMITTED_SNAPSHOTS
        assert not store.has_import("2" * 64)
        assert store.purge_dead_imports() == 1  # the killed child's leftovers go, physically
        assert [(r.path, r.status) for r in store.import_log()] == [("first.csv", "imported"),
                                                                    ("second.csv", "failed")]
    raw = sqlite3.connect(db)
    try:
        assert dict(raw.execute("SELECT session, count(*) FROM snapshots GROUP BY session").fetchall()) == {
            "first": COMMITTED_SNAPSHOTS}
        assert raw.execute("SELECT count(*) FROM import_log WHERE status = 'staging'").fetchone() == (0,)
    finally:
        raw.close()
    assert not list(tmp_path.glob("*.lock"))
