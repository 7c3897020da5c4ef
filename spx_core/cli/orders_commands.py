"""``spx-data orders`` and ``spx-data positions``: what the order store holds, for people and scripts.

Interface (scripts depend on it; keep it exactly)::

    spx-data orders --db PATH [--json]
    spx-data positions --db PATH [--json]

``orders --json`` prints ``{"orders": [{"id", "ref", "status", "quantity", "limit", "filled",
"avg_fill_price", "legs": [{"root", "expiry", "strike", "right", "ratio"}], "fills": [{"time", "root",
"expiry", "strike", "right", "side", "quantity", "price", "commission", "fees"}]}]}``: every stored order in
the order it was stored, its state rebuilt from its events; ``status`` in lower case (pending, submitted,
partially_filled, filled, cancelled, rejected, expired); ``quantity`` / ``limit`` are the working terms
(after any modify); prices in index points (packages per unit, in the order's convention), ``avg_fill_price``
null before a complete unit, ``time`` ISO 8601 UTC, ``side`` "buy" | "sell", commission and fees in dollars.

``positions --json`` prints ``{"positions": [{"root", "expiry", "strike", "right", "quantity", "avg_cost",
"mark", "unrealized_pnl", "realized_pnl"}]}``: the open positions and the ones closed on the last trading
day with activity (quantity 0), by contract. ``avg_cost`` and ``mark`` in index points per contract, P&L
in dollars net of commissions and fees. The mark is the mid of the contract's valid quote in the latest
stored snapshot of its underlying; null when there is none (no snapshot, contract not quoted, quote
flagged), and then ``unrealized_pnl`` is null too.

Every number is rounded to 1e-6 (points or dollars): binary-float dust (an average fill of 0.7999999999999995, a
P&L of -24.220000000000006) is gone so a script may compare to the cent, and nothing coarser is lost (a fee of
$0.495 x 7 stays 3.465).

"Today" is the US/Eastern calendar day of the most recent position change, not the wall clock, so a
replayed or backtested session lists its own day's closed positions whenever it is inspected.
Exit codes: 0 listed (possibly nothing), 1 the database failed (one line on stderr), 2 bad usage.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from typing import Any

from spx_core.cli.helpers import (
    DbAccess,
    LatestSnapshots,
    add_db_option,
    command,
    contract_keys,
    dump_json,
    fmt_num,
    iso_utc,
    json_num,
    open_store,
    print_table,
)

__all__ = ["register", "cmd_orders", "cmd_positions", "orders_payload", "positions_payload", "load_marked_positions"]


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("orders", help="list stored orders with their status and fills")
    add_db_option(p)
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=cmd_orders)

    p = subparsers.add_parser("positions", help="list open positions and today's closed ones, with marks and P&L")
    add_db_option(p)
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=cmd_positions)


# --- shared -----------------------------------------------------------------------------------------------
def _dollars(x: float) -> str:
    return f"-${-x:,.2f}" if x < 0 else f"${x:,.2f}"


#: decimals of every JSON number (points and dollars): fine enough for a third of a cent, coarse enough for dust
_JSON_PLACES = 6


def _num(x: float | None) -> float | None:
    """A JSON number without binary-float dust (null when missing or not finite; never -0.0)."""
    value = json_num(x)
    return None if value is None else round(value, _JSON_PLACES) + 0.0


# --- orders -----------------------------------------------------------------------------------------------
def orders_payload(states: Sequence[Any]) -> dict[str, Any]:
    """The ``orders --json`` document for order states (see the module docstring)."""
    return {"orders": [{
        "id": s.id, "ref": s.ref, "status": s.status.value, "quantity": s.quantity, "limit": _num(s.limit),
        "filled": s.filled, "avg_fill_price": _num(s.avg_fill_price),
        "legs": [{**contract_keys(leg.contract), "ratio": leg.ratio} for leg in s.request.legs],
        "fills": [{"time": iso_utc(f.time_ns), **contract_keys(f.contract), "side": f.side.value,
                   "quantity": f.quantity, "price": _num(f.price), "commission": _num(f.commission),
                   "fees": _num(f.fees)}
                  for f in s.fills],
    } for s in states]}


def _legs_text(request: Any) -> str:
    return ", ".join(f"{leg.ratio:+d} {leg.contract.root.value} {leg.contract.expiry:%Y-%m-%d} "
                     f"{leg.contract.strike:g}{leg.contract.right.value}" for leg in request.legs)


def _orders(args: argparse.Namespace) -> int:
    from spx_core.storage.orders_repo import OrderRepository

    store = open_store(args.db_path, create=False)
    try:
        states = OrderRepository(store).orders()
    finally:
        store.close()
    if args.json:
        dump_json(orders_payload(states))
        return 0
    if not states:
        print("no orders stored (send one from the order ticket)")
        return 0
    header = ("id", "ref", "status", "side", "qty", "filled", "limit", "avg fill", "commission+fees $", "legs",
              "reason")
    rows = [(str(s.id), s.ref, s.status.value, s.request.side.value, str(s.quantity), str(s.filled), fmt_num(s.limit),
             fmt_num(s.avg_fill_price, ".4f"), fmt_num(s.commission + s.fees), _legs_text(s.request), s.reason)
            for s in states]
    print_table(header, rows, right={0, 4, 5, 6, 7, 8})
    return 0


cmd_orders = command(_orders, db=DbAccess.READ)


# --- positions --------------------------------------------------------------------------------------------

def positions_payload(positions: Sequence[Any]) -> dict[str, Any]:
    """The ``positions --json`` document for marked positions (see the module docstring)."""
    return {"positions": [{
        **contract_keys(p.contract), "quantity": p.quantity, "avg_cost": _num(p.avg_cost), "mark": _num(p.mark),
        "unrealized_pnl": _num(p.unrealized_pnl), "realized_pnl": _num(p.realized_pnl),
    } for p in positions]}


def load_marked_positions(store: Any) -> list[Any]:
    """Open positions and those closed on the latest day with activity, marked from the latest snapshots."""
    from spx_core.portfolio.positions import marks_from_view
    from spx_core.storage.orders_repo import OrderRepository, et_day_start_ns

    every = OrderRepository(store).positions(closed_since_ns=0)  # flat ones too: a flat one was updated >= 0
    if not every:
        return []
    day_start = et_day_start_ns(max(p.updated_ns for p in every))
    shown = [p for p in every if p.is_open or p.updated_ns >= day_start]
    marks = marks_from_view(LatestSnapshots(store), [p.contract for p in shown])
    return [p.with_mark(marks.get(p.contract)) for p in shown]


def _positions(args: argparse.Namespace) -> int:
    store = open_store(args.db_path, create=False)
    try:
        positions = load_marked_positions(store)
    finally:
        store.close()
    if args.json:
        dump_json(positions_payload(positions))
        return 0
    if not positions:
        print("no positions (nothing filled yet)")
        return 0
    header = ("root", "expiry", "strike", "right", "qty", "avg cost", "mark", "unrealized $", "realized $")
    rows = [(p.contract.root.value, p.contract.expiry.isoformat(), f"{p.contract.strike:g}", p.contract.right.value,
             str(p.quantity), fmt_num(p.avg_cost), fmt_num(p.mark), fmt_num(p.unrealized_pnl), fmt_num(p.realized_pnl))
            for p in positions]
    print_table(header, rows, right={2, 4, 5, 6, 7, 8})
    unmarked = sum(1 for p in positions if math.isnan(p.unrealized_pnl))
    unrealized = sum(p.unrealized_pnl for p in positions if not math.isnan(p.unrealized_pnl))
    realized = sum(p.realized_pnl for p in positions)
    note = f" ({unmarked} without a mark left out)" if unmarked else ""
    print(f"total: unrealized {_dollars(unrealized)}{note}, realized {_dollars(realized)} "
          f"(net of commissions and fees)")
    return 0


cmd_positions = command(_positions, db=DbAccess.READ)
