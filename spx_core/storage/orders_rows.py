"""Rows of the order tables <-> :mod:`spx_core.execution.orders` types, and the batch loaders.

An order is stored as its request (``orders`` request columns + ``order_legs``) and its events
(``order_events``, fills in ``fills``). Its state is *always* rebuilt by replaying the stored events
(:func:`~spx_core.execution.orders.replay`); the state columns of ``orders`` are a denormalized copy
for queries (working orders, today's orders, the CLI) written by :func:`state_columns` in the same
transaction as each event, so :func:`state_columns` of the replay equals the stored row (checked by
:meth:`OrderRepository.verify`). Stored rows that do not rebuild (an event illegal in its order's state, a fill
that overfills its leg: the file was edited or damaged outside spx-terminal) raise
:class:`~spx_core.storage.errors.DatabaseCorruptError` naming the order, like any other damaged file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, select

from spx_core.domain import OptionContract
from spx_core.execution.orders import (
    EventKind,
    Fill,
    OrderError,
    OrderEvent,
    OrderRequest,
    OrderState,
    OrderStatus,
    replay,
)
from spx_core.storage import schema as t
from spx_core.storage.errors import DatabaseCorruptError
from spx_core.storage.imports import upsert_instruments
from spx_core.storage.rows import contract_from_row, nan_to_none
from spx_core.strategies.structure import Leg

__all__ = ["instrument_ids", "stored_instrument_ids", "contracts_by_id", "request_row", "state_columns",
           "request_from_row", "event_row", "fill_row", "fill_from_row", "load_states", "load_events", "load_fills",
           "stale_state_columns", "STATE_COLUMNS"]

_CHUNK = 500  # ids per IN (...) list: far below SQLite's 32766 variable limit

#: The ``orders`` columns that are the denormalized state (everything else is the request).
STATE_COLUMNS = ("status", "reason", "filled", "avg_fill_price", "working_limit", "working_quantity",
                 "broker_order_id", "perm_id", "commission", "fees", "updated_ns")


# --- instruments ------------------------------------------------------------------------------------------
def instrument_ids(conn: Connection, contracts: Iterable[OptionContract]) -> dict[OptionContract, int]:
    """The ``instruments.id`` of each contract, inserting the ones not stored yet (broker ids filled in)."""
    contracts = list(dict.fromkeys(contracts))
    upsert_instruments(conn, contracts)
    return stored_instrument_ids(conn, contracts)


def stored_instrument_ids(conn: Connection, contracts: Iterable[OptionContract]) -> dict[OptionContract, int]:
    """The ``instruments.id`` of the contracts already stored (others are left out); reads only."""
    contracts = list(dict.fromkeys(contracts))
    i = t.instruments.c
    by_symbol: dict[str, int] = {}
    for k in range(0, len(contracts), _CHUNK):
        symbols = [c.occ_symbol for c in contracts[k:k + _CHUNK]]
        by_symbol.update(conn.execute(select(i.occ_symbol, i.id).where(i.occ_symbol.in_(symbols))).all())
    return {c: by_symbol[c.occ_symbol] for c in contracts if c.occ_symbol in by_symbol}


def contracts_by_id(conn: Connection, ids: Iterable[int]) -> dict[int, OptionContract]:
    ids = sorted(set(ids))
    out: dict[int, OptionContract] = {}
    for k in range(0, len(ids), _CHUNK):
        rows = conn.execute(select(t.instruments).where(t.instruments.c.id.in_(ids[k:k + _CHUNK])))
        out.update((row.id, contract_from_row(row)) for row in rows)
    return out


# --- request / state ----------------------------------------------------------------------------------------
def request_row(request: OrderRequest) -> dict[str, Any]:
    return {"ref": request.ref, "side": request.side.value, "quantity": request.quantity,
            "order_type": request.order_type.value, "limit_price": request.limit, "tif": request.tif.value,
            "account": request.account, "snapshot_id": request.snapshot_id,
            "snapshot_checksum": request.snapshot_checksum, "created_ns": request.created_ns, "name": request.name,
            "kind": request.kind, "intent": request.intent.value, "trade_id": request.trade_id,
            "broker": request.broker, "source": request.source}


def state_columns(state: OrderState) -> dict[str, Any]:
    """The denormalized state columns of ``orders`` for ``state`` (NaN average -> NULL)."""
    return {"status": state.status.value, "reason": state.reason, "filled": state.filled,
            "avg_fill_price": nan_to_none(state.avg_fill_price), "working_limit": state.limit,
            "working_quantity": state.quantity, "broker_order_id": state.broker_order_id, "perm_id": state.perm_id,
            "commission": state.commission, "fees": state.fees, "updated_ns": state.updated_ns}


def request_from_row(row: Any, legs: tuple[Leg, ...]) -> OrderRequest:
    return OrderRequest(ref=row.ref, legs=legs, side=row.side, quantity=row.quantity, order_type=row.order_type,
                        limit=row.limit_price, tif=row.tif, account=row.account, snapshot_id=row.snapshot_id,
                        snapshot_checksum=row.snapshot_checksum, created_ns=row.created_ns, name=row.name,
                        kind=row.kind, intent=row.intent, trade_id=row.trade_id,
                        broker=row.broker, source=row.source)


# --- events / fills -----------------------------------------------------------------------------------------
def fill_row(fill: Fill, *, order_id: int | None, instrument_id: int) -> dict[str, Any]:
    return {"exec_id": fill.exec_id, "order_id": order_id, "leg": fill.leg, "instrument_id": instrument_id,
            "side": fill.side.value, "quantity": fill.quantity, "price": fill.price, "time_ns": fill.time_ns,
            "commission": fill.commission, "fees": fill.fees}


def fill_from_row(row: Any, contract: OptionContract) -> Fill:
    return Fill(exec_id=row.exec_id, leg=row.leg, contract=contract, side=row.side, quantity=row.quantity,
                price=row.price, time_ns=row.time_ns, commission=row.commission, fees=row.fees)


def event_row(event: OrderEvent, *, order_id: int, seq: int, fill_id: int | None) -> dict[str, Any]:
    return {"order_id": order_id, "seq": seq, "kind": event.kind.value, "time_ns": event.time_ns,
            "status": None if event.status is None else event.status.value, "reason": event.reason,
            "broker_order_id": event.broker_order_id, "perm_id": event.perm_id, "limit_price": event.limit,
            "quantity": event.quantity, "fill_id": fill_id}


def _event_from_row(ref: str, row: Any, fill: Fill | None) -> OrderEvent:
    return OrderEvent(ref=ref, kind=EventKind(row.kind), time_ns=row.time_ns,
                      status=None if row.status is None else OrderStatus(row.status), reason=row.reason,
                      broker_order_id=row.broker_order_id, perm_id=row.perm_id, fill=fill, limit=row.limit_price,
                      quantity=row.quantity)


# --- loaders ------------------------------------------------------------------------------------------------
def load_fills(conn: Connection, where: ColumnElement[bool]) -> dict[int, Fill]:
    """Fills matching ``where`` (on ``fills``), by fill id, in id (= stored) order."""
    rows = conn.execute(select(t.fills).where(where).order_by(t.fills.c.id)).all()
    contracts = contracts_by_id(conn, (r.instrument_id for r in rows))
    return {r.id: fill_from_row(r, contracts[r.instrument_id]) for r in rows}


def load_events(conn: Connection, order_ids: Select[Any] | list[int],
                refs: Mapping[int, str]) -> dict[int, list[OrderEvent]]:
    """Each order's events in replay order (``seq``); ``order_ids`` is a list of ids or a SELECT of them."""
    e = t.order_events.c
    cond = e.order_id.in_(order_ids)
    rows = conn.execute(select(t.order_events).where(cond).order_by(e.order_id, e.seq)).all()
    fills = load_fills(conn, t.fills.c.id.in_(select(e.fill_id).where(cond, e.fill_id.is_not(None))))
    out: dict[int, list[OrderEvent]] = {oid: [] for oid in refs}
    for r in rows:
        try:
            out[r.order_id].append(_event_from_row(refs[r.order_id], r, fills.get(r.fill_id)))
        except (OrderError, ValueError) as exc:
            raise _damaged(refs[r.order_id], r.order_id, exc) from None
    return out


def _damaged(ref: str, order_id: int, exc: Exception) -> DatabaseCorruptError:
    return DatabaseCorruptError(f"the order store is damaged: order {ref} (id {order_id}) does not rebuild from its "
                                f"stored events ({exc}); the file was edited or damaged outside spx-terminal: "
                                f"restore it from a backup")


def _rebuild(row: Any, legs: tuple[Leg, ...], events: list[OrderEvent]) -> OrderState:
    """The order's state replayed from its stored events (a replay that fails is a damaged file, not a bug)."""
    try:
        return replay(request_from_row(row, legs), events, id=row.id)
    except (OrderError, ValueError) as exc:
        raise _damaged(row.ref, row.id, exc) from None


def load_states(conn: Connection, where: ColumnElement[bool] | None = None) -> list[tuple[Any, OrderState]]:
    """``(orders row, replayed state)`` of the orders matching ``where``, in id (= stored) order.

    Three queries (orders, legs, events with their fills) whatever the number of orders.
    """
    o = t.orders.c
    query = select(t.orders).order_by(o.id)
    if where is not None:
        query = query.where(where)
    rows = conn.execute(query).all()
    if not rows:
        return []
    # the same WHERE as a subquery: no IN list of every id (SQLite caps the number of bound variables)
    ids = select(o.id) if where is None else select(o.id).where(where)
    refs = {r.id: r.ref for r in rows}
    legs = _load_legs(conn, ids)
    events = load_events(conn, ids, refs)
    return [(r, _rebuild(r, legs.get(r.id, ()), events[r.id])) for r in rows]


def _load_legs(conn: Connection, order_ids: Select[Any] | list[int]) -> dict[int, tuple[Leg, ...]]:
    ol = t.order_legs.c
    rows = conn.execute(select(ol.order_id, ol.instrument_id, ol.ratio).where(ol.order_id.in_(order_ids))
                        .order_by(ol.order_id, ol.leg)).all()
    contracts = contracts_by_id(conn, (r.instrument_id for r in rows))
    out: dict[int, list[Leg]] = {}
    for r in rows:
        out.setdefault(r.order_id, []).append(Leg(contracts[r.instrument_id], r.ratio))
    return {k: tuple(v) for k, v in out.items()}


def stale_state_columns(row: Any, state: OrderState) -> list[str]:
    """Names of the denormalized columns of ``row`` that differ from the replayed ``state`` ([] = consistent)."""
    expected = state_columns(state)  # NaN is stored as NULL on both sides, so plain equality is exact
    return [name for name in STATE_COLUMNS if getattr(row, name) != expected[name]]
