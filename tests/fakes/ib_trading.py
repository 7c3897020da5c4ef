"""Order requests of the fake IB Gateway: place, modify, cancel, what-if, fills, open/completed orders, executions.

Message sequences follow TWS: a new order gets openOrder + orderStatus (Submitted, non-zero permId); a fill sends
execDetails (reqId -1) for the BAG line and each leg with the same orderId/permId, then orderStatus and openOrder,
then one commissionReport per leg execution, then position / updatePortfolio pushes to subscribed clients.
A modify (placeOrder with a live orderId) is accepted only when its contract equals what openOrder echoed, else
error 105 and the order stays live; a cancel sends orderStatus Cancelled and error 202.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tests.fakes import ib_messages as msg
from tests.fakes.ib_book import Instrument, OptionBook, spx_tick
from tests.fakes.ib_codec import FieldReader, WireContract
from tests.fakes.ib_orders import (
    OrderRecord,
    PositionRecord,
    bag_echo,
    contract_key,
    echo_for,
    marketable_price,
    package_prices,
)
from tests.fakes.ib_requests import PlacedOrder, match_instruments, parse_place_order

if TYPE_CHECKING:
    from tests.fakes.ib_gateway import FakeGateway
    from tests.fakes.ib_session import Session

__all__ = ["package_prices"]
NO_DEFINITION = "No security definition has been found for the request"
OFF_TICK = "The price does not conform to the minimum price variation for this contract."
COMBO_TICK = 0.05  # SPX complex orders trade in 0.05 whatever the premium


@dataclass(frozen=True, slots=True)
class Instruction:
    """What to do with the next placed order instead of the marketability rule."""

    kind: str  # "fill", "partial" or "reject"
    quantity: float | None = None  # fill: None = all; <1 = a fraction of the order
    price: float | None = None
    code: int = 201
    text: str = ""


@dataclass(frozen=True, slots=True)
class WhatIfAnswer:
    """Margins (dollars) and commission a what-if returns; None fields are computed from the order."""

    init_margin_change: float | None = None
    maint_margin_change: float | None = None
    equity_with_loan_change: float | None = None
    commission: float | None = None
    warning_text: str = ""
    unset_first: bool = False  # first send one answer with unset margins and the warning, as TWS may


def resolve_legs(book: OptionBook, c: WireContract) -> tuple[tuple[Instrument, int, str], ...] | None:
    """(instrument, ratio, action) per leg; None when any part is not a unique listed contract."""
    if c.sec_type == "BAG":
        legs = []
        for leg in c.legs:
            inst = book.by_con_id.get(leg.con_id)
            if inst is None or leg.ratio <= 0 or leg.action not in ("BUY", "SELL"):
                return None
            legs.append((inst, leg.ratio, leg.action))
        return tuple(legs) or None
    found = match_instruments(book, c)
    return ((found[0], 1, "BUY"),) if len(found) == 1 else None


def portfolio_message(gw: FakeGateway, pos: PositionRecord) -> list[object]:
    inst = pos.instrument
    mult = float(inst.multiplier or 1)
    mark = gw.blotter.mark(inst)
    value = pos.quantity * mark * mult
    return msg.portfolio(gw.accounts[0], inst, pos.quantity, mark, round(value, 2), pos.avg_cost,
                         round(value - pos.quantity * pos.avg_cost, 2), round(pos.realized_pnl, 2))


# --- placing ---------------------------------------------------------------------------------------------
def _place_order(s: Session, fields: list[str]) -> None:
    gw = s.gw
    p = parse_place_order(fields, s.version)
    existing = gw.blotter.orders.get(p.order_id)
    if p.what_if:
        _what_if(s, p)
    elif existing is not None:
        _modify(s, existing, p)
    elif p.order_id < gw.blotter.next_order_id:
        s.error(p.order_id, 103, "Duplicate order id")
    else:
        _new_order(s, p)


def _record(gw: FakeGateway, s: Session, p: PlacedOrder, legs, what_if: bool = False) -> OrderRecord:
    c = p.contract
    echo = bag_echo(c.symbol, c.exchange, c.currency, c.legs) if c.sec_type == "BAG" else echo_for(legs[0][0],
                                                                                                    c.exchange)
    return OrderRecord(p.order_id, s.client_id or 0, 0 if what_if else gw.blotter.new_perm_id(), echo, legs,
                       p.action, p.quantity, p.order_type, p.lmt_price, p.aux_price, p.tif or "DAY",
                       p.account or gw.accounts[0], p.order_ref, p.outside_rth, what_if)


def off_tick(order_type: str, price: float | None, is_combo: bool) -> bool:
    """True when a limit price is off the SPX grid (0.05 below 3.00, 0.10 above; combos 0.05): TWS error 110."""
    if order_type != "LMT" or price is None:
        return False
    tick = COMBO_TICK if is_combo else spx_tick(abs(price))
    return abs(round(price / tick) * tick - price) > 1e-9


def _new_order(s: Session, p: PlacedOrder) -> None:
    gw = s.gw
    gw.blotter.note_order_id(p.order_id)
    legs = resolve_legs(gw.book, p.contract)
    if legs is None:
        s.error(p.order_id, 200, NO_DEFINITION)
        return
    o = _record(gw, s, p, legs)
    gw.blotter.orders[o.order_id] = o
    if gw.validate_ticks and off_tick(o.order_type, o.lmt_price, o.is_combo):
        _refuse(gw, s, o, 110, OFF_TICK)
        return
    step = gw.instructions.popleft() if gw.instructions else None
    if step is not None and step.kind == "reject":
        _refuse(gw, s, o, step.code, step.text)
        return
    o.status = "Submitted"
    report_order(gw, o)
    if step is not None:
        qty = o.quantity if step.quantity is None else step.quantity
        if 0 < qty < 1 and step.kind == "fill":  # a fraction of the order, in whole contracts
            qty = max(1, round(qty * o.quantity))
        price = step.price if step.price is not None else default_fill_price(gw, o)
        fill_and_report(gw, o, qty, price)
    elif gw.auto_fill:
        try_fill(gw, o)


def _refuse(gw: FakeGateway, s: Session, o: OrderRecord, code: int, text: str) -> None:
    """A new order TWS does not accept: only the error; kept as Cancelled for completed orders."""
    o.status, o.completed_status, o.completed_time = "Cancelled", text, gw.blotter.clock_text()
    s.error(o.order_id, code, text)


def default_fill_price(gw: FakeGateway, o: OrderRecord) -> float:
    """A scripted fill's price: the limit, or for a market order the natural price."""
    if o.lmt_price is not None and o.order_type != "MKT":
        return o.lmt_price
    bid, ask = package_prices(gw.book, o.legs)
    return ask if o.action == "BUY" else bid


def _modify(s: Session, o: OrderRecord, p: PlacedOrder) -> None:
    if not o.is_live:
        s.error(o.order_id, 104, f"Cannot modify an order in state {o.status}.")
        return
    if contract_key(p.contract) != contract_key(o.echo):
        s.error(o.order_id, 105, "Order being modified does not match original order.")
        return
    if p.quantity < o.filled:
        s.error(o.order_id, 201, "Order rejected - reason:The quantity is below the filled quantity.")
        return
    if s.gw.validate_ticks and off_tick(p.order_type, p.lmt_price, o.is_combo):
        s.error(o.order_id, 110, OFF_TICK)  # the working order is left as it was
        return
    o.quantity, o.lmt_price, o.aux_price = p.quantity, p.lmt_price, p.aux_price
    o.order_type, o.tif, o.order_ref = p.order_type, p.tif or o.tif, p.order_ref
    report_order(s.gw, o)
    if s.gw.auto_fill:
        try_fill(s.gw, o)


def _what_if(s: Session, p: PlacedOrder) -> None:
    gw = s.gw
    gw.blotter.note_order_id(p.order_id)
    legs = resolve_legs(gw.book, p.contract)
    if legs is None:
        s.error(p.order_id, 200, NO_DEFINITION)
        return
    o = _record(gw, s, p, legs, what_if=True)
    o.status = "PreSubmitted"
    answer = gw.what_if_answer or WhatIfAnswer()
    if answer.unset_first:
        s.send(msg.open_order(s.version, o, warning=answer.warning_text or "Margin impact is being computed"))
    values = gw.blotter.account_values()
    init = answer.init_margin_change
    init = gw.blotter.what_if_margin(o) if init is None else init
    maint = init if answer.maint_margin_change is None else answer.maint_margin_change
    commission = answer.commission
    if commission is None:
        commission = max(gw.blotter.min_commission,
                         gw.blotter.commission_per_contract * p.quantity * sum(r for _, r, _ in legs))
    ewl = -commission if answer.equity_with_loan_change is None else answer.equity_with_loan_change
    before = (values["InitMarginReq"], values["MaintMarginReq"], values["EquityWithLoanValue"])
    change = (init, maint, ewl)
    margins = [f"{v:.2f}" for v in (*before, *change, *(b + c for b, c in zip(before, change, strict=True)))]
    s.send(msg.open_order(s.version, o, margins, commission=f"{commission:.2f}", warning=answer.warning_text))


# --- fills -----------------------------------------------------------------------------------------------
def report_order(gw: FakeGateway, o: OrderRecord) -> None:
    """openOrder + orderStatus to the owning client, if connected."""
    s = gw.session_for(o.client_id)
    if s is not None:
        s.send(msg.open_order(s.version, o))
        s.send(_status(o))


def _status(o: OrderRecord) -> list[object]:
    return msg.order_status(o.order_id, o.status, o.filled, o.remaining, o.avg_fill_price, o.perm_id,
                            o.last_fill_price, o.client_id)


def try_fill(gw: FakeGateway, o: OrderRecord) -> bool:
    price = marketable_price(gw.book, o)
    if price is None or not o.is_live:
        return False
    fill_and_report(gw, o, o.remaining, price)
    return True


def fill_and_report(gw: FakeGateway, o: OrderRecord, qty: float, price: float) -> None:
    executions = gw.blotter.fill(o, qty, price)
    s = gw.session_for(o.client_id)
    if s is not None:
        for e in executions:
            s.send(msg.exec_details(s.version, -1, e))
        s.send(_status(o))
        s.send(msg.open_order(s.version, o))
        for e in executions:
            if e.commission is not None:
                s.send(msg.commission_report(e.exec_id, e.commission, e.realized_pnl))
    push_positions(gw, [inst for inst, _, _ in o.legs])


def push_positions(gw: FakeGateway, instruments: list[Instrument]) -> None:
    from tests.fakes.ib_session import push_account, push_pnl

    for s in gw.live_sessions():
        for inst in instruments:
            pos = gw.blotter.positions.get(inst.con_id)
            if pos is None:
                continue
            if s.positions_sub:
                s.send(msg.position(gw.accounts[0], inst, pos.quantity, pos.avg_cost))
            if s.account_updates:
                s.send(portfolio_message(gw, pos))
        if s.account_updates:
            push_account(s)
        push_pnl(s)


# --- cancel, open/completed orders, executions ------------------------------------------------------------
def _cancel_order(s: Session, fields: list[str]) -> None:
    order_id = int(fields[2])
    o = s.gw.blotter.orders.get(order_id)
    if o is None:
        s.error(order_id, 10147, f"OrderId {order_id} that needs to be cancelled is not found.")
    elif not o.is_live:
        s.error(order_id, 10148, f"OrderId {order_id} that needs to be cancelled cannot be cancelled, "
                                 f"state: {o.status}.")
    else:
        cancel(s.gw, o)


def cancel(gw: FakeGateway, o: OrderRecord, text: str = "") -> None:
    o.status, o.completed_time, o.completed_status = "Cancelled", gw.blotter.clock_text(), "Cancelled by Trader"
    owner = gw.session_for(o.client_id)
    if owner is not None:
        owner.send(msg.order_status(o.order_id, "Cancelled", o.filled, o.remaining, o.avg_fill_price, o.perm_id,
                                    o.last_fill_price, o.client_id))
        owner.error(o.order_id, 202, f"Order Canceled - reason:{text}")


def _global_cancel(s: Session, fields: list[str]) -> None:
    for o in list(s.gw.blotter.orders.values()):
        if o.is_live:
            cancel(s.gw, o)


def _send_open_orders(s: Session, *, all_clients: bool) -> None:
    for o in s.gw.blotter.orders.values():
        if o.is_live and (all_clients or o.client_id == s.client_id):
            s.send(msg.open_order(s.version, o))
            s.send(_status(o))
    s.send([53, 1])


def _req_open_orders(s: Session, fields: list[str]) -> None:
    _send_open_orders(s, all_clients=False)


def _req_all_open_orders(s: Session, fields: list[str]) -> None:
    _send_open_orders(s, all_clients=True)


def _req_completed_orders(s: Session, fields: list[str]) -> None:
    for o in s.gw.blotter.orders.values():
        if not o.is_live:
            s.send(msg.completed_order(s.version, o))
    s.send([102])


def _req_executions(s: Session, fields: list[str]) -> None:
    r = FieldReader(fields, 2)
    req_id, client_id = r.int(), r.int()
    r.skip(2)  # acctCode, time
    symbol, sec_type = r.str(), r.str()
    r.skip(1)  # exchange
    side = {"BUY": "BOT", "SELL": "SLD"}.get(r.str(), "")
    for e in s.gw.blotter.executions:
        if ((client_id and e.client_id != client_id) or (symbol and e.contract.symbol != symbol)
                or (sec_type and e.contract.sec_type != sec_type) or (side and e.side != side)):
            continue
        s.send(msg.exec_details(s.version, req_id, e))
        if e.commission is not None:
            s.send(msg.commission_report(e.exec_id, e.commission, e.realized_pnl))
    s.send([55, 1, req_id])


HANDLERS = {
    3: _place_order, 4: _cancel_order, 5: _req_open_orders, 7: _req_executions, 16: _req_all_open_orders,
    58: _global_cancel, 99: _req_completed_orders,
}
