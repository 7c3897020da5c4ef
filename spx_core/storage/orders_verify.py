"""Check the denormalized order, position and trade rows against a replay of what they were folded from.

The order store writes each event with the rows it changes in one transaction, so after any crash the
rows must still equal a replay of the stored events and fills: every order row the replay of its events
(:func:`~spx_core.execution.orders.replay`), every position the fold of its contract's fills
(:func:`~spx_core.portfolio.positions.apply_fill`), every trade what a fresh
:class:`~spx_core.portfolio.trades.TradeLedger` builds from all fills in stored order. A difference means
the file was edited outside spx-terminal or a write was not atomic; the messages name the rows.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection

from spx_core.domain import OptionContract
from spx_core.portfolio.positions import Position, apply_fill
from spx_core.portfolio.trades import TradeLedger
from spx_core.storage import schema as t
from spx_core.storage.ledger_rows import load_positions, load_trades
from spx_core.storage.orders_rows import load_fills, load_states, stale_state_columns

__all__ = ["ledger_problems", "POSITION_FIELDS"]

#: The fields a fold of the fills fixes (the day baseline also moves with :meth:`OrderRepository.start_day`).
POSITION_FIELDS = ("quantity", "avg_cost", "realized_pnl", "commission_fees", "opened_ns", "updated_ns")


def ledger_problems(conn: Connection, day_start: Callable[[int], int]) -> list[str]:
    """Every disagreement between the stored rows and the replay ([] = consistent). Run inside one read."""
    problems = []
    states = {}
    for row, state in load_states(conn):
        states[row.id] = state
        stale = stale_state_columns(row, state)
        if stale:
            problems.append(f"order {row.ref}: stored {', '.join(stale)} differ from the replay of its events")
    fills = load_fills(conn, t.fills.c.id.is_not(None))
    owners = dict(conn.execute(t.fills.select().with_only_columns(t.fills.c.id, t.fills.c.order_id)).all())
    book: dict[OptionContract, Position] = {}
    ledger = TradeLedger()
    for fill_id, fill in fills.items():
        book[fill.contract] = apply_fill(book.get(fill.contract), fill, day_start_ns=day_start(fill.time_ns))
        order_id = owners[fill_id]
        if order_id is None:
            ledger.on_settlement(fill)
        else:
            ledger.on_fill(states[order_id], fill)
    problems += _position_problems(load_positions(conn), book)
    stored = {trade.id: trade for trade in load_trades(conn)}
    replayed = {trade.id: trade for trade in ledger.trades()}
    for trade_id in sorted(stored.keys() | replayed.keys()):
        # repr: a trade's NaN prices (none closed yet) compare equal to themselves
        if repr(stored.get(trade_id)) != repr(replayed.get(trade_id)):
            problems.append(f"trade {trade_id}: the stored row differs from the replay of its fills")
    return problems


def _position_problems(stored: list[Position], book: dict[OptionContract, Position]) -> list[str]:
    problems = []
    by_contract = {p.contract: p for p in stored}
    for contract in sorted(by_contract.keys() | book.keys(), key=str):
        have, want = by_contract.get(contract), book.get(contract)
        if have is None or want is None:
            problems.append(f"position {contract}: {'missing' if have is None else 'has no fills'}")
            continue
        stale = [f for f in POSITION_FIELDS if getattr(have, f) != getattr(want, f)]
        if stale:
            problems.append(f"position {contract}: stored {', '.join(stale)} differ from the fold of its fills")
    return problems
