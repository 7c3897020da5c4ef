"""SIGKILL while orders, fills, positions and trades are being written: nothing committed is lost, nothing half-done.

A child process streams order events (opens, partial fills, amends, cancels, closes of open trades) into a
real SQLite file and prints how many events it has committed after each commit. The test kills it with
SIGKILL at random moments, several times, restarting it on the same file each time. After every kill the
file is reopened: every event the child reported committed is stored (at most the one in flight when it
died is extra, never missing), every order / position / trade row equals the replay of the stored events
and fills (``OrderRepository.verify``), no fill lacks its event, and SQLite's integrity check passes.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from spx_core.storage import Store
from spx_core.storage.orders_repo import OrderRepository
from tests.conftest import REPO

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL")]

KILLS = 4

CHILD = textwrap.dedent("""
    import sys
    from spx_core.execution.orders import EventKind, OrderEvent, OrderStatus
    from spx_core.portfolio.trades import closing_request
    from spx_core.storage import Store
    from spx_core.storage.orders_repo import OrderRepository
    from tests.storage.orders_factory import SEC, T0, fill_event, status, vertical

    repo = OrderRepository(Store.open(sys.argv[1]))
    with repo._store._read() as conn:
        committed = conn.exec_driver_sql("SELECT count(*) FROM order_events").scalar_one()
        start = conn.exec_driver_sql("SELECT count(*) FROM orders").scalar_one()
    print("READY", committed, flush=True)

    def commit(event):
        global committed
        repo.append(event)
        committed += 1
        print(committed, flush=True)

    for i in range(start, 10**6):
        t = T0 + i * 60 * SEC
        trades = [tr for tr in repo.trades(open_only=True) if tr.quantity > 0]
        if i % 3 == 2 and trades:
            request = closing_request(trades[0], quantity=1, limit=0.5, ref=f"c{i}", now_ns=t)
        else:
            request = vertical(f"o{i}", quantity=1 + i % 3, short=5000 - 5 * (i % 7), long=4975 - 5 * (i % 7),
                               created_ns=t)
        repo.add_order(request)
        commit(status(request.ref, OrderStatus.SUBMITTED, t + 1, broker_order_id=str(i)))
        if i % 5 == 4:  # amended, partly filled, then cancelled
            commit(OrderEvent(ref=request.ref, kind=EventKind.AMEND, time_ns=t + 2, limit=1.40))
            commit(fill_event(request, 0, 1, 2.0, t + 3, f"x{i}.0a"))
            commit(status(request.ref, OrderStatus.CANCELLED, t + 4, reason="cancelled by the test"))
            continue
        for leg in range(len(request.legs)):
            for k in range(request.quantity):  # one contract per execution: many small commits
                commit(fill_event(request, leg, 1, 2.0 - leg * 1.4 + 0.01 * (i % 4), t + 10 + k, f"x{i}.{leg}.{k}"))
""")


def _start(db) -> tuple[subprocess.Popen, int]:
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(db)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=REPO, env=env)
    line = proc.stdout.readline().split()
    if line[:1] != ["READY"]:
        proc.kill()
        raise AssertionError(f"child did not start: {line} {proc.stderr.read()}")
    return proc, int(line[1])


def _kill_at_random(proc: subprocess.Popen, rng: random.Random) -> int:
    """Let the child write for a random while, SIGKILL it; the last commit count it reported."""
    time.sleep(rng.uniform(0.05, 0.5))
    proc.send_signal(signal.SIGKILL)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, err  # it was still writing (did not crash by itself)
    reported = [int(x) for x in out.split() if x.isdigit()]
    return reported[-1] if reported else -1


def _check_sound(db) -> tuple[int, int]:
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert con.execute("PRAGMA foreign_key_check").fetchall() == []
        # no order fill without the event that brought it (they are written in one transaction)
        assert con.execute("SELECT count(*) FROM fills WHERE order_id IS NOT NULL AND id NOT IN "
                           "(SELECT fill_id FROM order_events WHERE fill_id IS NOT NULL)").fetchone() == (0,)
        events = con.execute("SELECT count(*) FROM order_events").fetchone()[0]
        fills = con.execute("SELECT count(*) FROM fills").fetchone()[0]
    with Store.open(db) as store:
        assert OrderRepository(store).verify() == []
    return events, fills


def test_sigkill_mid_stream_loses_no_committed_event_and_leaves_rows_equal_to_the_replay(tmp_path):
    db = tmp_path / "orders_crash.sqlite"
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    total = 0
    for round_ in range(KILLS):
        proc, at_start = _start(db)
        assert at_start == total, f"seed {seed} round {round_}: {at_start} events at restart, {total} before"
        reported = _kill_at_random(proc, rng)
        events, fills = _check_sound(db)
        # every commit the child reported is there; at most the one in flight when it died is extra
        assert reported <= events <= max(reported, at_start) + 1, (seed, round_, reported, events)
        total = events
    assert total > KILLS * 5 and fills > 0  # it really wrote between kills
    with Store.open(db) as store:
        repo = OrderRepository(store)
        assert repo.positions() and repo.trades()


WRITER = textwrap.dedent("""
    import sys
    from spx_core.storage import Store
    from spx_core.storage.orders_repo import OrderRepository
    from tests.storage.orders_factory import SEC, T0, filled_events, vertical

    repo = OrderRepository(Store.open(sys.argv[1]))
    name = sys.argv[2]
    for i in range(15):
        request = vertical(f"{name}{i}", quantity=1, short=5000 - 5 * i, long=4975 - 5 * i, created_ns=T0 + i * SEC)
        repo.add_order(request)
        for event in filled_events(request, (2.0, 0.5), T0 + i * SEC, tag=name):
            repo.append(event)
""")


def test_two_processes_writing_orders_at_once_interleave_whole_transactions(tmp_path):
    db = tmp_path / "two_writers.sqlite"
    Store.open(db).close()  # migrated once, so the writers start together
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(db), name], stderr=subprocess.PIPE, text=True,
                              cwd=REPO, env=env) for name in ("a", "b")]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err

    with Store.open(db) as store:
        repo = OrderRepository(store)
        assert repo.verify() == []
        trades = repo.trades()
        # each order opened its own trade: ids handed out inside the write lock never collide
        assert sorted(ref for trade in trades for ref in trade.order_refs) == sorted(
            f"{name}{i}" for name in ("a", "b") for i in range(15))
        assert [trade.id for trade in trades] == list(range(1, 31))
        # both writers traded the same contracts: every fill reached its position (no lost update)
        by_strike = {p.contract.strike: p.quantity for p in repo.positions(closed_since_ns=0)}
        assert by_strike[5000.0] == -2 and by_strike[4905.0] == 2  # short in a's and b's first order, long in last
        assert sum(by_strike.values()) == 0 and sum(abs(q) for q in by_strike.values()) == 2 * 2 * 5
