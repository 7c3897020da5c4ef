"""Rows of ``positions``, ``trades`` / ``trade_legs`` and ``trade_decisions`` <-> :mod:`spx_core.portfolio` types.

The rows hold the pure portfolio objects' full accounting (a trade's per-leg :class:`TradeLeg`, a position's
day baseline), so an object loaded back continues exactly where it stopped: applying the next fill to the
loaded object gives what applying it to the original would have. NaN is stored as NULL (SQLite has none).
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import ColumnElement, Connection, func, select

from spx_core.domain import OptionContract
from spx_core.portfolio.decisions import TradeDecision
from spx_core.portfolio.positions import Position
from spx_core.portfolio.settlement import ShareDelivery
from spx_core.portfolio.trades import Trade, TradeLeg
from spx_core.storage import schema as t
from spx_core.storage.orders_rows import contracts_by_id
from spx_core.storage.rows import nan_to_none, none_to_nan
from spx_core.strategies.structure import Leg

__all__ = ["position_row", "load_positions", "trade_row", "trade_leg_rows", "load_trades", "decision_row",
           "decision_from_row", "delivery_row", "load_deliveries"]


# --- positions ----------------------------------------------------------------------------------------------
def position_row(p: Position, instrument_id: int) -> dict[str, Any]:
    return {"instrument_id": instrument_id, "quantity": p.quantity, "avg_cost": p.avg_cost,
            "realized_pnl": p.realized_pnl, "commission_fees": p.commission_fees, "opened_ns": p.opened_ns,
            "updated_ns": p.updated_ns, "day_start_ns": p.day_start_ns, "day_realized_pnl": p.day_realized_pnl,
            "day_start_unrealized": nan_to_none(p.day_start_unrealized)}


def _position(row: Any, contract: OptionContract) -> Position:
    return Position(contract, quantity=row.quantity, avg_cost=row.avg_cost, realized_pnl=row.realized_pnl,
                    commission_fees=row.commission_fees, opened_ns=row.opened_ns, updated_ns=row.updated_ns,
                    day_start_ns=row.day_start_ns, day_realized_pnl=row.day_realized_pnl,
                    day_start_unrealized=none_to_nan(row.day_start_unrealized))


def load_positions(conn: Connection, where: ColumnElement[bool] | None = None) -> list[Position]:
    """Positions matching ``where`` (on ``positions``), unmarked, in contract order."""
    query = select(t.positions)
    if where is not None:
        query = query.where(where)
    rows = conn.execute(query).all()
    contracts = contracts_by_id(conn, (r.instrument_id for r in rows))
    out = [_position(r, contracts[r.instrument_id]) for r in rows]
    return sorted(out, key=lambda p: (p.contract.root.value, p.contract.expiry, p.contract.strike,
                                      p.contract.right.value))


# --- trades -------------------------------------------------------------------------------------------------
def trade_row(trade: Trade) -> dict[str, Any]:
    return {"id": trade.id, "name": trade.name, "kind": trade.kind, "side": trade.side.value,
            "quantity": trade.quantity, "opened_quantity": trade.opened_quantity,
            "closed_quantity": trade.closed_quantity, "open_price": nan_to_none(trade.open_price),
            "close_price": nan_to_none(trade.close_price), "realized_pnl": trade.realized_pnl,
            "commission_fees": trade.commission_fees, "status": trade.status, "opened_ns": trade.opened_ns,
            "closed_ns": trade.closed_ns}


def trade_leg_rows(trade: Trade, ids: dict[OptionContract, int]) -> list[dict[str, Any]]:
    return [{"trade_id": trade.id, "leg": k, "instrument_id": ids[s.contract], "ratio": s.leg.ratio,
             "held": s.held, "avg_cost": s.avg_cost, "opened": s.opened, "open_price": nan_to_none(s.open_price),
             "closed": s.closed, "close_price": nan_to_none(s.close_price), "realized_pnl": s.realized_pnl,
             "commission_fees": s.commission_fees} for k, s in enumerate(trade.leg_states)]


def _trade_leg(row: Any, contract: OptionContract) -> TradeLeg:
    return TradeLeg(Leg(contract, row.ratio), held=row.held, avg_cost=row.avg_cost, opened=row.opened,
                    open_price=none_to_nan(row.open_price), closed=row.closed,
                    close_price=none_to_nan(row.close_price), realized_pnl=row.realized_pnl,
                    commission_fees=row.commission_fees)


def load_trades(conn: Connection, where: ColumnElement[bool] | None = None) -> list[Trade]:
    """Trades matching ``where`` (on ``trades``) in id order, with their legs' accounting and their orders."""
    tr, tl, o, f = t.trades.c, t.trade_legs.c, t.orders.c, t.fills.c
    query = select(t.trades).order_by(tr.id)
    if where is not None:
        query = query.where(where)
    rows = conn.execute(query).all()
    if not rows:
        return []
    ids = select(tr.id) if where is None else select(tr.id).where(where)  # a subquery: no IN list of every id
    leg_rows = conn.execute(select(t.trade_legs).where(tl.trade_id.in_(ids)).order_by(tl.trade_id, tl.leg)).all()
    contracts = contracts_by_id(conn, (r.instrument_id for r in leg_rows))
    legs: dict[int, list[TradeLeg]] = {}
    for r in leg_rows:
        legs.setdefault(r.trade_id, []).append(_trade_leg(r, contracts[r.instrument_id]))
    # a trade's orders in the order they first booked a fill to it (what the ledger's order_refs keep)
    first_fill = func.min(f.id)
    refs: dict[int, list[str]] = {}
    for trade_id, ref, _ in conn.execute(
            select(o.booked_trade_id, o.ref, first_fill).join(t.fills, f.order_id == o.id)
            .where(o.booked_trade_id.in_(ids)).group_by(o.id).order_by(o.booked_trade_id, first_fill)):
        refs.setdefault(trade_id, []).append(ref)
    return [_trade(r, tuple(legs[r.id]), tuple(refs.get(r.id, ()))) for r in rows]


def _trade(row: Any, leg_states: tuple[TradeLeg, ...], refs: tuple[str, ...]) -> Trade:
    return Trade(id=row.id, name=row.name, kind=row.kind, legs=tuple(s.leg for s in leg_states),
                 quantity=row.quantity, opened_quantity=row.opened_quantity, side=row.side,
                 open_price=none_to_nan(row.open_price), close_price=none_to_nan(row.close_price),
                 realized_pnl=row.realized_pnl, status=row.status, opened_ns=row.opened_ns, closed_ns=row.closed_ns,
                 order_refs=refs, leg_states=leg_states, commission_fees=row.commission_fees,
                 closed_quantity=row.closed_quantity)


# --- decisions ----------------------------------------------------------------------------------------------
def decision_row(d: TradeDecision) -> dict[str, Any]:
    return {"time_ns": d.time_ns, "strategy": d.strategy, "action": d.action, "reasons": json.dumps(list(d.reasons)),
            "snapshot_id": d.snapshot_id, "snapshot_checksum": d.snapshot_checksum, "config_hash": d.config_hash,
            "limit_profile": d.limit_profile, "order_ref": d.order_ref}


def decision_from_row(row: Any) -> TradeDecision:
    return TradeDecision(time_ns=row.time_ns, strategy=row.strategy, action=row.action,
                         reasons=tuple(json.loads(row.reasons)), snapshot_id=row.snapshot_id,
                         snapshot_checksum=row.snapshot_checksum, config_hash=row.config_hash or "",
                         limit_profile=row.limit_profile or "", order_ref=row.order_ref)



# --- share deliveries ---------------------------------------------------------------------------------------
def delivery_row(d: ShareDelivery, instrument_id: int) -> dict[str, Any]:
    return {"exec_id": d.exec_id, "instrument_id": instrument_id, "symbol": d.symbol, "shares": d.shares,
            "price": d.price, "time_ns": d.time_ns}


def load_deliveries(conn: Connection) -> list[ShareDelivery]:
    rows = conn.execute(select(t.share_deliveries).order_by(t.share_deliveries.c.id)).all()
    contracts = contracts_by_id(conn, (r.instrument_id for r in rows))
    return [ShareDelivery(symbol=r.symbol, shares=r.shares, price=r.price, time_ns=r.time_ns,
                          contract=contracts[r.instrument_id], exec_id=r.exec_id) for r in rows]
