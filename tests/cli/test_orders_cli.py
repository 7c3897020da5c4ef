"""``spx-data orders`` / ``spx-data positions``: the real console script on a real database."""

from __future__ import annotations

import json

import numpy as np
import pytest

from spx_core.cli.orders_commands import orders_payload, positions_payload
from spx_core.domain import ChainSnapshot
from spx_core.execution.orders import Fill, OrderRequest, OrderState, OrderStatus, Side, apply
from spx_core.portfolio.positions import apply_fill
from spx_core.portfolio.trades import closing_request
from spx_core.storage import Store
from spx_core.storage.orders_repo import OrderRepository
from spx_core.strategies.structure import Leg
from tests.cli.conftest import run_spx_data
from tests.storage.orders_factory import (
    EXPIRY,
    SEC,
    T0,
    call,
    fill_event,
    filled_events,
    put,
    single,
    status,
    vertical,
)

ORDER_KEYS = ["id", "ref", "status", "quantity", "limit", "filled", "avg_fill_price", "legs", "fills"]
LEG_KEYS = ["root", "expiry", "strike", "right", "ratio"]
FILL_KEYS = ["time", "root", "expiry", "strike", "right", "side", "quantity", "price", "commission", "fees"]
POSITION_KEYS = ["root", "expiry", "strike", "right", "quantity", "avg_cost", "mark", "unrealized_pnl",
                 "realized_pnl"]


def _snapshot(t: int, bids: list[float], asks: list[float], flags: list[int]) -> ChainSnapshot:
    strikes = [4900.0, 4950.0, 4975.0, 5000.0]
    return ChainSnapshot.from_columns(underlying="SPX", time=t, underlying_price=5010.0, root=["SPXW"] * 4,
                                      expiry=[EXPIRY] * 4, strike=strikes, is_call=[False] * 4, bid=bids, ask=asks,
                                      flags=np.array(flags, dtype=np.uint16))


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    """Orders of every kind: a filled vertical (open), a position opened and closed today, a working order,
    a cancelled one; two snapshots (the later one marks); 4950P's latest quote is flagged (no mark)."""
    path = tmp_path_factory.mktemp("orders_cli") / "orders.sqlite"
    with Store.open(path) as store:
        repo = OrderRepository(store)
        opened = vertical("open1", quantity=2)
        s1 = single("s1", put(4950), side=Side.BUY, limit=1.0, created_ns=T0 + 10 * SEC)
        s2 = single("s2", put(4900), side=Side.BUY, limit=0.5, created_ns=T0 + 20 * SEC)
        for request, prices in ((opened, (2.10, 0.60)), (s1, (1.0,)), (s2, (0.5,))):
            repo.add_order(request)
            for e in filled_events(request, prices, request.created_ns):
                repo.append(e)
        close = closing_request(repo.trade(3), limit=0.8, ref="s2close", now_ns=T0 + 60 * SEC)
        repo.add_order(close)
        for e in filled_events(close, (0.8,), T0 + 60 * SEC):
            repo.append(e)
        repo.add_order(vertical("w1", quantity=1, limit=1.20, created_ns=T0 + 90 * SEC))
        repo.append(status("w1", OrderStatus.SUBMITTED, T0 + 91 * SEC))
        repo.add_order(vertical("x1", quantity=1, created_ns=T0 + 95 * SEC))
        repo.append(status("x1", OrderStatus.REJECTED, T0 + 96 * SEC, reason="bad tick"))
        store.save_snapshot(_snapshot(T0, [0.1, 0.1, 0.1, 0.1], [0.2, 0.2, 0.2, 0.2], [0, 0, 0, 0]), source="t")
        store.save_snapshot(_snapshot(T0 + 120 * SEC, [0.70, 0.9, 0.50, 1.90], [0.80, 0.8, 0.60, 2.00],
                                      [0, 1, 0, 0]), source="t")
    return path


def test_orders_json_is_the_documented_document(db):
    done = run_spx_data("orders", "--db", db, "--json")

    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert list(payload) == ["orders"]
    orders = payload["orders"]
    assert [o["ref"] for o in orders] == ["open1", "s1", "s2", "s2close", "w1", "x1"]
    assert all(list(o) == ORDER_KEYS for o in orders)
    first = orders[0]
    assert (first["id"], first["status"], first["quantity"], first["limit"], first["filled"]) == (1, "filled", 2, 1.45,
                                                                                                   2)
    assert first["avg_fill_price"] == pytest.approx(1.50)
    assert first["legs"] == [{"root": "SPXW", "expiry": "2024-03-04", "strike": 5000.0, "right": "P", "ratio": 1},
                             {"root": "SPXW", "expiry": "2024-03-04", "strike": 4975.0, "right": "P", "ratio": -1}]
    assert [list(f) for f in first["fills"]] == [FILL_KEYS, FILL_KEYS]
    fill = first["fills"][0]
    assert fill == {"time": "2024-03-04T14:30:01Z", "root": "SPXW", "expiry": "2024-03-04", "strike": 5000.0,
                    "right": "P", "side": "sell", "quantity": 2, "price": 2.10, "commission": 1.30,
                    "fees": pytest.approx(0.94)}
    by_ref = {o["ref"]: o for o in orders}
    assert (by_ref["w1"]["status"], by_ref["w1"]["filled"], by_ref["w1"]["avg_fill_price"]) == ("submitted", 0, None)
    assert (by_ref["x1"]["status"], by_ref["x1"]["fills"]) == ("rejected", [])
    assert by_ref["s2close"]["fills"][0]["side"] == "sell"


def test_positions_json_marks_from_the_latest_snapshot_and_lists_todays_closed_ones(db):
    done = run_spx_data("positions", "--db", db, "--json")

    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert list(payload) == ["positions"]
    rows = {p["strike"]: p for p in payload["positions"]}
    assert all(list(p) == POSITION_KEYS for p in payload["positions"])
    assert sorted(rows) == [4900.0, 4950.0, 4975.0, 5000.0]
    short = rows[5000.0]
    assert (short["quantity"], short["avg_cost"], short["mark"]) == (-2, 2.10, pytest.approx(1.95))
    assert short["unrealized_pnl"] == pytest.approx((1.95 - 2.10) * -2 * 100)
    assert short["realized_pnl"] == pytest.approx(-(1.30 + 0.94))  # commissions and fees, in dollars
    assert (rows[4950.0]["mark"], rows[4950.0]["unrealized_pnl"]) == (None, None)  # latest quote flagged
    closed = rows[4900.0]
    assert (closed["quantity"], closed["avg_cost"], closed["unrealized_pnl"]) == (0, 0.0, 0.0)
    assert closed["realized_pnl"] == pytest.approx((0.8 - 0.5) * 100 - 2 * (0.65 + 0.47))


def test_text_output_is_an_aligned_table(db):
    orders = run_spx_data("orders", "--db", db)
    positions = run_spx_data("positions", "--db", db)

    assert orders.returncode == positions.returncode == 0
    header, *rows = orders.stdout.splitlines()
    assert header.split()[:4] == ["id", "ref", "status", "side"] and len(rows) == 6
    assert rows[-1].split()[2] == "rejected" and rows[-1].endswith("bad tick")  # a rejection shows its reason
    assert header.index("status") == rows[0].index("filled")  # columns line up
    assert "+1 SPXW 2024-03-04 5000P, -1 SPXW 2024-03-04 4975P" in rows[0]
    header, *rows, total = positions.stdout.splitlines()
    assert header.split()[:3] == ["root", "expiry", "strike"] and len(rows) == 4
    end = header.index("avg cost") + len("avg cost")  # numbers are right-aligned under their heading
    assert [r[end - 4:end] for r in rows] == ["0.00", "1.00", "0.60", "2.10"]
    assert total == ("total: unrealized $20.00 (1 without a mark left out), realized $22.16 "
                     "(net of commissions and fees)")


def test_an_empty_database_says_so(tmp_path):
    path = tmp_path / "empty.sqlite"
    Store.open(path).close()

    assert run_spx_data("orders", "--db", path).stdout.startswith("no orders stored")
    assert run_spx_data("positions", "--db", path).stdout.startswith("no positions")
    assert json.loads(run_spx_data("positions", "--db", path, "--json").stdout) == {"positions": []}


@pytest.mark.parametrize("command", ["orders", "positions"])
def test_a_missing_or_foreign_database_is_one_line(tmp_path, command):
    missing = run_spx_data(command, "--db", tmp_path / "nope.sqlite", "--json")
    line = missing.assert_one_line_failure(codes=(1,))
    assert "nope.sqlite: no such database" in line and not (tmp_path / "nope.sqlite").exists()

    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not sqlite" * 100)
    line = run_spx_data(command, "--db", junk).assert_one_line_failure(codes=(1,))
    assert "not an SQLite database" in line or "not an spx-terminal database" in line


def test_json_numbers_carry_no_binary_float_dust():
    # an iron condor sold at 1.40 / 1.00 / 1.20 / 0.80 averages 0.7999999999999995 in floats; 3 bought at 0.80
    # cost 0.8000000000000002 on average; 2.11 + 22.11 of charges and losses is 24.220000000000006
    condor = OrderRequest(ref="ic", legs=(Leg(put(4650), 1), Leg(put(4625), -1), Leg(call(4750), 1),
                                          Leg(call(4775), -1)), side=Side.SELL, quantity=3, limit=0.80)
    state = OrderState.new(condor, id=1)
    for event in filled_events(condor, (1.40, 1.00, 1.20, 0.80), T0):
        state = apply(state, event)
    position = apply_fill(None, Fill("a", 0, call(4775), Side.BUY, 3, 0.80, T0, commission=1.95, fees=0.16))
    closed = apply_fill(apply_fill(None, Fill("b", 0, call(4800), Side.BUY, 2, 0.45, T0, 1.30, 0.81)),
                        Fill("c", 0, call(4800), Side.SELL, 2, 0.35, T0 + SEC, 1.30, 0.81))

    order = orders_payload([state])["orders"][0]
    rows = positions_payload([position.with_mark(0.5 * (1.10 + 1.20)), closed])["positions"]

    assert state.avg_fill_price != 0.80 and order["avg_fill_price"] == 0.80
    assert position.avg_cost != 0.80 and (rows[0]["avg_cost"], rows[0]["mark"]) == (0.80, 1.15)
    assert rows[0]["unrealized_pnl"] == 105.0  # (1.15 - 0.80) x 3 x 100
    assert closed.realized_pnl != -24.22 and rows[1]["realized_pnl"] == -24.22
    assert order["fills"][0]["fees"] == 1.41 and rows[1]["unrealized_pnl"] == 0.0


def test_a_partly_filled_order_lists_its_fills_and_counts_whole_units_only():
    request = vertical("p1", quantity=3, limit=0.40)
    state = OrderState.new(request, id=7)
    events = [status("p1", OrderStatus.SUBMITTED, T0), fill_event(request, 0, 2, 1.40, T0 + SEC, "a"),
              fill_event(request, 1, 2, 1.00, T0 + SEC, "b"), fill_event(request, 0, 1, 1.45, T0 + 2 * SEC, "c")]
    for event in events:
        state = apply(state, event)

    (order,) = orders_payload([state])["orders"]

    assert (order["status"], order["quantity"], order["filled"], order["limit"]) == ("partially_filled", 3, 2, 0.40)
    # legs: 3 sold at (2 x 1.40 + 1.45) / 3, 2 bought at 1.00: a leg ahead of the other moves its own average
    assert order["avg_fill_price"] == round((2 * 1.40 + 1.45) / 3 - 1.00, 6)
    assert [(f["side"], f["quantity"], f["price"]) for f in order["fills"]] == [("sell", 2, 1.40), ("buy", 2, 1.00),
                                                                                  ("sell", 1, 1.45)]
