"""OrderRepository: requests and events stored in one transaction each; state rebuilt by replay."""

from __future__ import annotations

import math
import sqlite3

import pytest

from spx_core.execution.orders import (
    IllegalTransition,
    Intent,
    OrderError,
    OrderStatus,
    replay,
)
from spx_core.storage import Store
from spx_core.storage.errors import DatabaseCorruptError
from spx_core.storage.orders_repo import OrderRepository, UnknownOrderError
from tests.storage.orders_factory import (
    SEC,
    T0,
    fill_event,
    filled_events,
    put,
    single,
    status,
    vertical,
)


@pytest.fixture
def store(tmp_path):
    with Store.open(tmp_path / "orders.sqlite") as s:
        yield s


@pytest.fixture
def repo(store):
    return OrderRepository(store)


def _count(store, table: str) -> int:
    with sqlite3.connect(store.path) as con:
        return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_a_new_order_is_stored_pending_and_its_request_comes_back_equal(repo):
    request = vertical("r1")

    state = repo.add_order(request)

    assert state.status is OrderStatus.PENDING and state.id is not None
    stored = repo.order("r1")
    assert stored == state
    assert stored.request == request  # legs (contracts, ratios), snapshot id + checksum, account, ...
    assert repo.events("r1") == []


def test_adding_the_same_request_again_returns_the_stored_state_and_a_different_one_is_refused(repo, store):
    request = vertical("r1")
    first = repo.add_order(request)
    repo.append(status("r1", OrderStatus.SUBMITTED, T0 + SEC))

    again = repo.add_order(request)

    assert again.id == first.id and again.status is OrderStatus.SUBMITTED
    with pytest.raises(OrderError, match=r"ref r1 is already used by a different order \(differs in quantity\)"):
        repo.add_order(vertical("r1", quantity=3))
    assert _count(store, "orders") == 1 and _count(store, "order_legs") == 2


def test_every_event_updates_the_row_and_the_state_equals_the_replay_of_the_stored_events(repo, store):
    request = vertical("r1", quantity=2)
    repo.add_order(request)
    events = [status("r1", OrderStatus.SUBMITTED, T0 + SEC, broker_order_id="17", perm_id="9001"),
              fill_event(request, 0, 1, 2.10, T0 + 2 * SEC, "e1"),
              fill_event(request, 1, 1, 0.60, T0 + 3 * SEC, "e2"),
              status("r1", OrderStatus.PARTIALLY_FILLED, T0 + 4 * SEC),
              fill_event(request, 0, 1, 2.20, T0 + 5 * SEC, "e3"),
              fill_event(request, 1, 1, 0.70, T0 + 6 * SEC, "e4")]

    states = [repo.append(e) for e in events]

    final = states[-1]
    assert final.status is OrderStatus.FILLED and final.filled == 2
    assert final.avg_fill_price == pytest.approx(((2.10 - 0.60) + (2.20 - 0.70)) / 2)
    assert (final.broker_order_id, final.perm_id) == ("17", "9001")
    assert repo.events("r1") == events
    assert repo.order("r1") == final == replay(request, events, id=final.id)
    assert repo.verify() == []
    with sqlite3.connect(store.path) as con:
        row = con.execute("SELECT status, filled, avg_fill_price, commission, fees FROM orders").fetchone()
    assert row == ("filled", 2, final.avg_fill_price, final.commission, final.fees)


def test_an_amend_changes_the_working_terms(repo):
    repo.add_order(vertical("r1", quantity=2, limit=1.45))
    repo.append(status("r1", OrderStatus.SUBMITTED, T0 + SEC))
    from spx_core.execution.orders import EventKind, OrderEvent

    state = repo.append(OrderEvent(ref="r1", kind=EventKind.AMEND, time_ns=T0 + 2 * SEC, limit=1.40, quantity=3))

    assert (state.limit, state.quantity) == (1.40, 3)
    assert repo.order("r1").request.limit == 1.45  # the request never changes
    assert repo.verify() == []


def test_an_illegal_transition_writes_nothing_and_re_raises(repo, store):
    request = vertical("r1")
    repo.add_order(request)
    before = repo.order("r1")

    with pytest.raises(IllegalTransition, match="while the order is pending"):
        repo.append(fill_event(request, 0, 1, 2.0, T0 + SEC, "e1"))

    assert repo.order("r1") == before
    assert (_count(store, "order_events"), _count(store, "fills"), _count(store, "instruments")) == (0, 0, 2)


def test_a_failure_after_the_fill_row_rolls_back_the_fill_and_the_event(repo, store, monkeypatch):
    request = vertical("r1")
    repo.add_order(request)
    repo.append(status("r1", OrderStatus.SUBMITTED, T0 + SEC))

    def boom(*_args, **_kw):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(OrderRepository, "_book_fill", boom)
    with pytest.raises(RuntimeError, match="disk on fire"):
        repo.append(fill_event(request, 0, 1, 2.0, T0 + 2 * SEC, "e1"))

    assert (_count(store, "order_events"), _count(store, "fills")) == (1, 0)
    assert repo.order("r1").status is OrderStatus.SUBMITTED and repo.order("r1").fills == ()


def test_a_repeated_exec_id_is_a_no_op_and_one_of_another_order_is_refused(repo, store):
    a, b = vertical("a"), vertical("b")
    for r in (a, b):
        repo.add_order(r)
        repo.append(status(r.ref, OrderStatus.SUBMITTED, T0 + SEC))
    first = repo.append(fill_event(a, 0, 1, 2.0, T0 + 2 * SEC, "e1"))

    again = repo.append(fill_event(a, 0, 1, 2.0, T0 + 3 * SEC, "e1"))
    assert again == first and _count(store, "fills") == 1 and len(repo.events("a")) == 2

    with pytest.raises(OrderError, match="execution e1 is already stored for order a"):
        repo.append(fill_event(b, 0, 1, 2.0, T0 + 4 * SEC, "e1"))
    assert repo.order("b").fills == () and len(repo.events("b")) == 1


def test_unknown_refs_and_unknown_trades_are_refused_with_a_clear_message(repo):
    with pytest.raises(UnknownOrderError, match="no stored order with ref 'nope'"):
        repo.append(status("nope", OrderStatus.SUBMITTED, T0))
    with pytest.raises(OrderError, match="closes trade 42, which is not stored"):
        repo.add_order(vertical("c1", intent=Intent.CLOSE, trade_id=42))
    with pytest.raises(OrderError, match="extends trade 42, which is not stored"):
        repo.add_order(vertical("e1", trade_id=42))
    assert repo.order("nope") is None and repo.events("nope") == []


def test_working_and_recent_orders_are_selected(repo):
    for k, ref in enumerate(("pending", "working", "done", "cancelled")):
        repo.add_order(single(ref, put(5000 - 5 * k), created_ns=T0 + k * SEC))
    repo.append(status("working", OrderStatus.SUBMITTED, T0 + 10 * SEC))
    req = repo.order("done").request
    for e in filled_events(req, (2.0,), T0 + 20 * SEC):
        repo.append(e)
    repo.append(status("cancelled", OrderStatus.CANCELLED, T0 + 30 * SEC))

    assert [o.ref for o in repo.orders()] == ["pending", "working", "done", "cancelled"]
    assert [o.ref for o in repo.orders(working_only=True)] == ["pending", "working"]
    assert [o.ref for o in repo.orders(since_ns=T0 + 15 * SEC)] == ["done", "cancelled"]
    assert [o.ref for o in repo.orders(working_only=True, since_ns=T0 + 5 * SEC)] == ["working"]


def test_verify_reports_a_row_that_disagrees_with_its_events(repo, store):
    request = vertical("r1")
    repo.add_order(request)
    for e in filled_events(request, (2.1, 0.6), T0):
        repo.append(e)
    assert repo.verify() == []

    with sqlite3.connect(store.path) as con:
        con.execute("UPDATE orders SET filled = 1, avg_fill_price = NULL")

    assert repo.verify() == ["order r1: stored filled, avg_fill_price differ from the replay of its events"]


def _filled_then_edited(repo, store, sql: str) -> None:
    """Order r1 filled, then ``sql`` run on the file: what an edit outside spx-terminal (or a damaged page) leaves."""
    request = vertical("r1")
    repo.add_order(request)
    for e in filled_events(request, (2.1, 0.6), T0):
        repo.append(e)
    with sqlite3.connect(store.path) as con:
        con.execute(sql)


@pytest.mark.parametrize(("edit", "why"), [
    ("UPDATE fills SET quantity = 99 WHERE exec_id = 'Xr1.0'", "overfills leg 0"),
    ("UPDATE orders SET side = 'buy'", "the order buys it"),
    ("UPDATE order_events SET status = 'filled' WHERE seq = 0", "cannot go from pending to filled"),
    ("UPDATE fills SET leg = 1 WHERE exec_id = 'Xr1.0'", "which is not a leg of this order"),
])
def test_stored_events_that_do_not_replay_are_a_damaged_file_naming_the_order(repo, store, edit, why):
    _filled_then_edited(repo, store, edit)

    for read in (repo.orders, lambda: repo.order("r1"), repo.verify):
        with pytest.raises(DatabaseCorruptError, match="order r1 .*does not rebuild") as caught:
            read()
        assert why in str(caught.value) and "restore it from a backup" in str(caught.value)


@pytest.mark.parametrize(("edit", "why"), [("root = 'NDX'", "'NDX' is not a valid Root"),
                                           ("expiry = 'soon'", "Invalid isoformat string")])
def test_an_instrument_that_names_no_contract_is_a_damaged_file_naming_it(repo, store, edit, why):
    _filled_then_edited(repo, store, f"UPDATE instruments SET {edit} WHERE strike = 5000")

    named = r"instrument 'SPXW +240304P05000000' \(id \d+\) .*names no option contract"
    for read in (repo.orders, repo.positions, repo.trades):
        with pytest.raises(DatabaseCorruptError, match=named) as e:
            read()
        assert why in str(e.value)


def test_any_stored_row_that_does_not_load_is_a_damaged_file_and_a_bad_argument_is_not(repo, store):
    request = vertical("r1")
    repo.add_order(request)
    for e in filled_events(request, (2.1, 0.6), T0):
        repo.append(e)
    with sqlite3.connect(store.path) as con:
        con.execute("UPDATE positions SET quantity = 1.5 WHERE quantity = -2")  # SQLite keeps the REAL

    with pytest.raises(DatabaseCorruptError, match="stored rows do not load .*quantity 1.5 must be a whole number"):
        repo.positions()
    with pytest.raises(ValueError, match="invalid literal") as e:
        repo.trade("one")  # the caller's mistake, not the file's
    assert not isinstance(e.value, DatabaseCorruptError)


def test_the_schema_refuses_bad_enums_and_dangling_references(repo, store):
    repo.add_order(vertical("r1"))
    with sqlite3.connect(store.path) as con:
        con.execute("PRAGMA foreign_keys = ON")
        with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
            con.execute("UPDATE orders SET status = 'Filled'")  # statuses are lower case
        with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
            con.execute("UPDATE orders SET order_type = 'MKT'")  # a market order has no limit
        with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
            con.execute("INSERT INTO order_legs (order_id, leg, instrument_id, ratio) VALUES (99, 0, 1, 1)")
        with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
            con.execute("INSERT INTO order_events (order_id, seq, kind, time_ns, reason) "
                        "VALUES (1, 0, 'status', 0, '')")  # a status event without a status


def test_orders_come_back_after_closing_and_reopening_the_file(tmp_path):
    path = tmp_path / "restart.sqlite"
    request = vertical("r1", quantity=3)
    with Store.open(path) as store:
        repo = OrderRepository(store)
        repo.add_order(request)
        repo.append(status("r1", OrderStatus.SUBMITTED, T0 + SEC))
        shown = repo.append(fill_event(request, 0, 1, 2.0, T0 + 2 * SEC, "e1"))

    with Store.open(path) as store:
        [restored] = OrderRepository(store).orders(working_only=True)

    assert restored == shown and restored.status is OrderStatus.PARTIALLY_FILLED
    assert restored.leg_filled == (1, 0) and restored.remaining == 3
    assert math.isnan(restored.avg_fill_price)
