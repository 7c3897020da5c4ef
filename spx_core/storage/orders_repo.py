"""The order repository: orders, their events and fills, positions, trades and decisions, one transaction each.

    repo = OrderRepository(store)
    state = repo.add_order(request)                  # stored PENDING (idempotent on request.ref)
    state = repo.append(OrderEvent(...))             # event + order row + fill + position + trade: ONE commit
    repo.orders(working_only=True)                   # what a restart hands back to the broker
    repo.positions(closed_since_ns=day_start)        # open positions + the ones closed today

Every state change is one ``BEGIN IMMEDIATE`` transaction written before the caller shows anything: the
event row, the order's denormalized state, the fill, the position and the trade rows commit together or
not at all (an :class:`~spx_core.execution.orders.IllegalTransition` or any failure rolls all of it back
and re-raises). A repeated ``exec_id`` is a no-op (brokers re-send executions after a reconnect). The
state is always rebuilt by replaying the stored events; :meth:`OrderRepository.verify` checks the
denormalized rows against that replay (and the positions against the fold of the fills).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, time, timezone
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select, update
from sqlalchemy.dialects.sqlite import insert

from spx_core.domain import OptionContract
from spx_core.domain.calendar import ET, to_ns
from spx_core.execution.orders import (
    Fill,
    Intent,
    OrderError,
    OrderEvent,
    OrderRequest,
    OrderState,
    apply,
)
from spx_core.portfolio.decisions import TradeDecision
from spx_core.portfolio.positions import Position, apply_fill
from spx_core.portfolio.settlement import ShareDelivery
from spx_core.portfolio.trades import Trade, apply_trade_fill, new_trade, settle_trade
from spx_core.storage import schema as t
from spx_core.storage.errors import DatabaseCorruptError
from spx_core.storage.ledger_rows import (
    decision_from_row,
    decision_row,
    delivery_row,
    load_deliveries,
    load_positions,
    load_trades,
    position_row,
    trade_leg_rows,
    trade_row,
)
from spx_core.storage.orders_rows import (
    contracts_by_id,
    event_row,
    fill_row,
    instrument_ids,
    load_events,
    load_states,
    request_row,
    state_columns,
    stored_instrument_ids,
)
from spx_core.storage.orders_verify import ledger_problems

__all__ = ["OrderRepository", "UnknownOrderError", "et_day_start_ns"]


class UnknownOrderError(OrderError, KeyError):
    """No stored order has that reference."""

    def __init__(self, ref: str) -> None:
        super().__init__(f"no stored order with ref {ref!r}; add it with OrderRepository.add_order first")

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


def et_day_start_ns(time_ns: int) -> int:
    """Midnight US/Eastern of the day ``time_ns`` falls on (UTC ns): where a day's P&L starts counting."""
    day = datetime.fromtimestamp(time_ns // 10**9, tz=timezone.utc).astimezone(ET).date()
    return to_ns(datetime.combine(day, time(0), tzinfo=ET))


class OrderRepository:
    """Orders, fills, positions, trades and decisions in a :class:`~spx_core.storage.store.Store`'s database.

    Thread-safe like the store (each call checks a connection out for its duration). Several processes
    may write one database: every write is a short ``BEGIN IMMEDIATE`` transaction that re-reads what it
    changes inside the lock, so two writers never interleave half-changes.
    """

    def __init__(self, store: Any, *, day_start: Callable[[int], int] = et_day_start_ns) -> None:
        """``day_start(time_ns)``: the start of the day a fill at ``time_ns`` counts to (day P&L)."""
        self._store = store
        self._day_start = day_start

    # --- orders -------------------------------------------------------------------------------------
    def add_order(self, request: OrderRequest) -> OrderState:
        """Store a new order as PENDING (request, legs, state row); one transaction.

        Idempotent on ``request.ref``: the same request again returns the stored state (with its events).

        Raises:
            OrderError: the ref is already used by a different request, or a CLOSE order names a trade
                that is not stored.
        """
        with self._store._write() as conn:
            stored = _state_by_ref(conn, request.ref)
            if stored is not None:
                if stored.request != request:
                    raise OrderError(f"order ref {request.ref} is already used by a different order "
                                     f"({_differences(stored.request, request)}); give the new order new_ref()")
                return stored
            if request.trade_id is not None and conn.execute(
                    select(t.trades.c.id).where(t.trades.c.id == request.trade_id)).first() is None:
                verb = "closes" if request.intent is Intent.CLOSE else "extends"
                raise OrderError(f"order {request.ref}: it {verb} trade {request.trade_id}, which is not stored; "
                                 f"name a trade listed by OrderRepository.trades()")
            state = OrderState.new(request)
            order_id = int(conn.execute(t.orders.insert(), {**request_row(request), **state_columns(state)})
                           .inserted_primary_key[0])
            ids = instrument_ids(conn, request.contracts)
            conn.execute(t.order_legs.insert(), [
                {"order_id": order_id, "leg": k, "instrument_id": ids[leg.contract], "ratio": leg.ratio}
                for k, leg in enumerate(request.legs)])
            return OrderState.new(request, id=order_id)

    def append(self, event: OrderEvent) -> OrderState:
        """Apply ``event`` to its order and store everything it changes in ONE transaction; the new state.

        A fill also updates the contract's position and the order's trade. A fill whose ``exec_id`` is
        already stored for this order is a no-op (returns the stored state).

        Raises:
            UnknownOrderError: no order with ``event.ref``.
            IllegalTransition: the event does not apply to the stored state (nothing is written).
            OrderError: the fill's ``exec_id`` is stored for another order or a settlement.
        """
        with self._store._write() as conn:
            found = _row_and_state(conn, t.orders.c.ref == event.ref)
            if found is None:
                raise UnknownOrderError(event.ref)
            row, state = found
            fill = event.fill
            if fill is not None and _fill_owner(conn, fill.exec_id, row.id):
                return state
            new = apply(state, event)
            ids: dict[OptionContract, int] = {}  # instrument ids looked up once per transaction
            fill_id = None if fill is None else self._insert_fill(conn, fill, order_id=row.id, ids=ids)
            seq = conn.execute(select(func.count()).where(t.order_events.c.order_id == row.id)).scalar_one()
            conn.execute(t.order_events.insert(), event_row(event, order_id=row.id, seq=seq, fill_id=fill_id))
            changes = state_columns(new)
            if fill is not None:
                changes.update(self._book_fill(conn, row, new, fill, ids))
            conn.execute(update(t.orders).where(t.orders.c.id == row.id).values(**changes))
            return new

    def order(self, ref: str) -> OrderState | None:
        """The order's state rebuilt from its stored events, or None."""
        with self._read() as conn:
            return _state_by_ref(conn, ref)

    def orders(self, *, working_only: bool = False, since_ns: int | None = None) -> list[OrderState]:
        """Orders in the order they were stored, rebuilt by replaying their events.

        ``working_only``: pending / submitted / partially filled (what a restart hands to the broker).
        ``since_ns``: only orders changed (created or updated) at or after this time (UTC ns).
        """
        o = t.orders.c
        conds = []
        if working_only:
            conds.append(o.status.in_(t.WORKING_STATUSES))
        if since_ns is not None:
            conds.append(o.updated_ns >= int(since_ns))
        with self._read() as conn:
            return [state for _, state in load_states(conn, and_(*conds) if conds else None)]

    def events(self, ref: str) -> list[OrderEvent]:
        """The order's stored events in replay order ([] for an unknown ref)."""
        with self._read() as conn:
            order_id = conn.execute(select(t.orders.c.id).where(t.orders.c.ref == ref)).scalar_one_or_none()
            if order_id is None:
                return []
            return load_events(conn, [order_id], {order_id: ref})[order_id]

    # --- positions and trades -----------------------------------------------------------------------------
    def positions(self, *, closed_since_ns: int | None = None) -> list[Position]:
        """Open positions (unmarked, contract order) and, with ``closed_since_ns``, the flat ones changed since."""
        p = t.positions.c
        where = p.quantity != 0 if closed_since_ns is None else or_(p.quantity != 0,
                                                                     p.updated_ns >= int(closed_since_ns))
        with self._read() as conn:
            return load_positions(conn, where)

    def start_day(self, day_start_ns: int, marks: Mapping[OptionContract, float] | None = None) -> list[Position]:
        """Roll every stored position's day baseline to ``day_start_ns`` (one transaction); the positions.

        ``marks``: contract -> mark at the day start (e.g. the previous close); a position without one
        gets a NaN baseline (its day P&L is NaN until a fill rolls it). Positions already at a later
        baseline are left alone, so calling it twice is harmless.
        """
        marks = marks or {}
        with self._store._write() as conn:
            ids = _position_instrument_ids(conn)
            out = []
            for position in load_positions(conn):
                if position.day_start_ns < day_start_ns:
                    position = position.start_day(day_start_ns, marks.get(position.contract, float("nan")))
                    conn.execute(update(t.positions).where(t.positions.c.instrument_id == ids[position.contract])
                                 .values(position_row(position, ids[position.contract])))
                out.append(position)
            return out

    def trades(self, *, open_only: bool = False, since_ns: int | None = None) -> list[Trade]:
        """Trades in id order; ``open_only``; ``since_ns``: open ones and those closed at or after it."""
        tr = t.trades.c
        conds = []
        if open_only:
            conds.append(tr.status == "open")
        if since_ns is not None:
            conds.append(or_(tr.status == "open", tr.closed_ns >= int(since_ns)))
        with self._read() as conn:
            return load_trades(conn, and_(*conds) if conds else None)

    def trade(self, trade_id: int) -> Trade | None:
        where = t.trades.c.id == int(trade_id)  # (a bad id is the caller's error, raised outside the read)
        with self._read() as conn:
            found = load_trades(conn, where)
        return found[0] if found else None

    def apply_settlement(self, fills: Iterable[Fill], deliveries: Iterable[ShareDelivery] = ()) -> None:
        """Book expiry/exercise fills (no order: ``fills.order_id`` NULL) and share deliveries; ONE transaction.

        Each fill closes its contract's position and settles the leg of every open trade holding it
        (:func:`~spx_core.portfolio.trades.settle_trade`). Idempotent: fills and deliveries whose
        ``exec_id`` is stored are skipped (a settlement run twice books once).
        """
        fills, deliveries = list(fills), list(deliveries)
        with self._store._write() as conn:
            stored = set(conn.execute(select(t.fills.c.exec_id).where(
                t.fills.c.exec_id.in_([f.exec_id for f in fills]))).scalars())
            ids: dict[OptionContract, int] = {}
            for fill in fills:
                if fill.exec_id in stored:
                    continue
                stored.add(fill.exec_id)
                self._insert_fill(conn, fill, order_id=None, ids=ids)
                self._book_position(conn, fill, ids)
                for trade in load_trades(conn, t.trades.c.status == "open"):
                    after = settle_trade(trade, fill.contract, fill.price, fill.time_ns, fill.exec_id)
                    if after is not trade:
                        self._save_trade(conn, after, stored=True, ids=ids)
            done = set(conn.execute(select(t.share_deliveries.c.exec_id)).scalars())
            rows = [delivery_row(d, _ids(conn, [d.contract], ids)[d.contract])
                    for d in deliveries if d.exec_id not in done]
            if rows:
                conn.execute(t.share_deliveries.insert(), rows)

    def deliveries(self) -> list[ShareDelivery]:
        """Stored share deliveries in the order they were booked."""
        with self._read() as conn:
            return load_deliveries(conn)

    # --- decisions ----------------------------------------------------------------------------------------
    def record_decision(self, decision: TradeDecision) -> int:
        """Store one TRADE/SKIP decision (its own transaction); returns its id."""
        with self._store._write() as conn:
            return int(conn.execute(t.trade_decisions.insert(), decision_row(decision)).inserted_primary_key[0])

    def decisions(self, *, since_ns: int | None = None) -> list[TradeDecision]:
        """Decisions in time order (then id), from ``since_ns`` on."""
        d = t.trade_decisions.c
        query = select(t.trade_decisions).order_by(d.time_ns, d.id)
        if since_ns is not None:
            query = query.where(d.time_ns >= int(since_ns))
        with self._read() as conn:
            return [decision_from_row(r) for r in conn.execute(query)]

    # --- consistency --------------------------------------------------------------------------------
    def verify(self) -> list[str]:
        """Problems found comparing the stored rows with a replay of the stored events and fills ([] = sound).

        Order rows against the replay of their events, positions against the fold of their fills, trades
        against a ledger rebuilt from every fill (:mod:`spx_core.storage.orders_verify`). One read
        transaction: a consistent view even while another process writes.
        """
        with self._read() as conn:
            return ledger_problems(conn, self._day_start)

    # --- internals ----------------------------------------------------------------------------------
    @contextmanager
    def _read(self) -> Iterator[Connection]:
        """A read transaction in which stored rows that do not make domain objects are a damaged file.

        Reads take no user input: a ValueError or TypeError while rebuilding orders, positions or trades can
        only come from the rows (edited outside spx-terminal, or damaged), never from the caller.
        """
        with self._store._read() as conn:
            try:
                yield conn
            except (ValueError, TypeError) as exc:  # OrderError, PositionError, TradeError are ValueErrors
                raise DatabaseCorruptError(f"the order store is damaged: stored rows do not load ({exc}); the file "
                                           f"was edited or damaged outside spx-terminal: restore it from a backup"
                                           ) from None

    def _insert_fill(self, conn: Connection, fill: Fill, *, order_id: int | None, ids: dict[OptionContract, int]
                     ) -> int:
        instrument_id = _ids(conn, [fill.contract], ids)[fill.contract]
        return int(conn.execute(t.fills.insert(), fill_row(fill, order_id=order_id, instrument_id=instrument_id))
                   .inserted_primary_key[0])

    def _book_fill(self, conn: Connection, row: Any, state: OrderState, fill: Fill,
                   ids: dict[OptionContract, int]) -> dict[str, Any]:
        """Position and trade effects of an order's fill (same transaction); extra ``orders`` columns."""
        self._book_position(conn, fill, ids)
        request = state.request
        trade_id = row.booked_trade_id if row.booked_trade_id is not None else request.trade_id
        if trade_id is None:  # an OPEN order's first fill opens its trade, with the next row id
            trade_id = conn.execute(select(func.coalesce(func.max(t.trades.c.id), 0) + 1)).scalar_one()
            trade, stored = new_trade(trade_id, request, fill.time_ns), False
        else:
            found = load_trades(conn, t.trades.c.id == trade_id)
            if not found:  # the foreign key makes this unreachable unless the file was edited
                raise OrderError(f"order {request.ref}: its trade {trade_id} is not stored")
            trade, stored = found[0], True
        trade = apply_trade_fill(trade, state, fill)
        self._save_trade(conn, trade, stored=stored, ids=ids)
        return {"booked_trade_id": trade_id}

    def _book_position(self, conn: Connection, fill: Fill, ids: dict[OptionContract, int]) -> Position:
        instrument_id = _ids(conn, [fill.contract], ids)[fill.contract]
        found = load_positions(conn, t.positions.c.instrument_id == instrument_id)
        position = apply_fill(found[0] if found else None, fill, day_start_ns=self._day_start(fill.time_ns))
        row = position_row(position, instrument_id)
        stmt = insert(t.positions).values(row)
        conn.execute(stmt.on_conflict_do_update(index_elements=[t.positions.c.instrument_id],
                                                set_={k: stmt.excluded[k] for k in row if k != "instrument_id"}))
        return position

    def _save_trade(self, conn: Connection, trade: Trade, *, stored: bool, ids: dict[OptionContract, int]) -> None:
        row = trade_row(trade)
        if stored:
            conn.execute(update(t.trades).where(t.trades.c.id == trade.id).values(row))
        else:
            conn.execute(t.trades.insert(), row)
        legs = trade_leg_rows(trade, _ids(conn, trade.contracts, ids))
        stmt = insert(t.trade_legs)
        conn.execute(stmt.on_conflict_do_update(index_elements=[t.trade_legs.c.trade_id, t.trade_legs.c.leg],
                                                set_={k: stmt.excluded[k] for k in legs[0]
                                                      if k not in ("trade_id", "leg")}), legs)


def _ids(conn: Connection, contracts: Iterable[OptionContract], cache: dict[OptionContract, int]
         ) -> dict[OptionContract, int]:
    """``cache`` with the instrument ids of ``contracts`` added (stored ones looked up, new ones inserted)."""
    missing = [c for c in contracts if c not in cache]
    if missing:
        cache.update(stored_instrument_ids(conn, missing))
        still = [c for c in missing if c not in cache]
        if still:
            cache.update(instrument_ids(conn, still))
    return cache


def _position_instrument_ids(conn: Connection) -> dict[OptionContract, int]:
    """Contract -> ``instruments.id`` of every stored position."""
    by_id = contracts_by_id(conn, conn.execute(select(t.positions.c.instrument_id)).scalars())
    return {contract: instrument_id for instrument_id, contract in by_id.items()}


def _row_and_state(conn: Connection, where: Any) -> tuple[Any, OrderState] | None:
    found = load_states(conn, where)
    return found[0] if found else None


def _state_by_ref(conn: Connection, ref: str) -> OrderState | None:
    found = _row_and_state(conn, t.orders.c.ref == ref)
    return None if found is None else found[1]


def _fill_owner(conn: Connection, exec_id: str, order_id: int) -> bool:
    """True when ``exec_id`` is stored for this order (a repeat); raises when it belongs to something else."""
    f = t.fills.c
    owner = conn.execute(select(f.order_id, t.orders.c.ref).select_from(t.fills.outerjoin(t.orders))
                         .where(f.exec_id == exec_id)).first()
    if owner is None:
        return False
    if owner.order_id == order_id:
        return True
    whose = f"order {owner.ref}" if owner.order_id is not None else "a settlement"
    raise OrderError(f"execution {exec_id} is already stored for {whose}; a broker never reuses an exec_id "
                     f"across orders, so this event is wrong")


def _differences(a: OrderRequest, b: OrderRequest) -> str:
    names = [n for n in OrderRequest.__dataclass_fields__ if getattr(a, n) != getattr(b, n)]
    return "differs in " + ", ".join(names)

