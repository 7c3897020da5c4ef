"""Orders, events and fills for the order-store tests (and the SIGKILL child process)."""

from __future__ import annotations

from datetime import date

from spx_core.domain import OptionContract
from spx_core.execution.orders import (
    EventKind,
    Fill,
    Intent,
    OrderEvent,
    OrderRequest,
    OrderStatus,
    Side,
)
from spx_core.strategies.structure import Leg

T0 = 1_709_562_600_000_000_000  # 2024-03-04 14:30 UTC (09:30 ET)
EXPIRY = date(2024, 3, 4)
SEC = 1_000_000_000


def put(strike: float, *, root: str = "SPXW", expiry: date = EXPIRY) -> OptionContract:
    return OptionContract(root=root, expiry=expiry, strike=strike, right="P")


def call(strike: float, *, root: str = "SPXW", expiry: date = EXPIRY) -> OptionContract:
    return OptionContract(root=root, expiry=expiry, strike=strike, right="C")


def vertical(ref: str, *, quantity: int = 2, limit: float = 1.45, short: float = 5000.0, long: float = 4975.0,
             created_ns: int = T0, intent: Intent = Intent.OPEN, trade_id: int | None = None,
             side: Side = Side.SELL) -> OrderRequest:
    """A 25-wide put credit vertical written as IB writes it: SELL (+short, -long) at a positive limit."""
    return OrderRequest(ref=ref, legs=(Leg(put(short), 1), Leg(put(long), -1)), side=side, quantity=quantity,
                        limit=limit, created_ns=created_ns, name=f"{short:g}/{long:g} put credit vertical",
                        kind="vertical", intent=intent, trade_id=trade_id, snapshot_id=7, snapshot_checksum="ab" * 32,
                        account="DU123")


def single(ref: str, contract: OptionContract, *, side: Side = Side.BUY, quantity: int = 1, limit: float = 2.0,
           created_ns: int = T0, intent: Intent = Intent.OPEN, trade_id: int | None = None) -> OrderRequest:
    return OrderRequest(ref=ref, legs=(Leg(contract, 1),), side=side, quantity=quantity, limit=limit,
                        created_ns=created_ns, name=str(contract), kind="single", intent=intent, trade_id=trade_id)


def status(ref: str, s: OrderStatus, t: int, **kw) -> OrderEvent:
    return OrderEvent(ref=ref, kind=EventKind.STATUS, time_ns=t, status=s, **kw)


def fill_event(request: OrderRequest, leg: int, quantity: int, price: float, t: int, exec_id: str, *,
               commission: float = 0.65, fees: float = 0.47) -> OrderEvent:
    f = Fill(exec_id=exec_id, leg=leg, contract=request.legs[leg].contract, side=request.leg_side(leg),
             quantity=quantity, price=price, time_ns=t, commission=commission * quantity, fees=fees * quantity)
    return OrderEvent(ref=request.ref, kind=EventKind.FILL, time_ns=t, fill=f)


def filled_events(request: OrderRequest, prices: tuple[float, ...], t: int, *, tag: str = "") -> list[OrderEvent]:
    """SUBMITTED, then every leg filled in one execution at ``prices`` (per leg)."""
    out = [status(request.ref, OrderStatus.SUBMITTED, t, broker_order_id=f"B{request.ref}")]
    for k, price in enumerate(prices):
        qty = abs(request.legs[k].ratio) * request.quantity
        out.append(fill_event(request, k, qty, price, t + (k + 1) * SEC, f"X{tag}{request.ref}.{k}"))
    return out
