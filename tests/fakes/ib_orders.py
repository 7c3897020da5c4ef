"""Orders, executions, positions and the account of the fake IB Gateway (state that survives client reconnects).

Combo prices follow IB's convention: the BAG price is the sum of leg prices signed by the leg action (BUY +,
SELL -) times the ratio; an order BUYs or SELLs that package. Commissions: ``commission_per_contract`` per leg
contract with a minimum of ``min_commission`` per order (added to the first leg).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from tests.fakes.ib_book import BAG_CON_ID, EASTERN, Instrument, OptionBook
from tests.fakes.ib_codec import WireContract, WireLeg

LIVE_STATUSES = ("PreSubmitted", "Submitted")


@dataclass(slots=True)
class OrderRecord:
    """One order as the gateway holds it; ``echo`` is the contract as openOrder reports it."""

    order_id: int
    client_id: int
    perm_id: int
    echo: WireContract
    legs: tuple[tuple[Instrument, int, str], ...]  # (instrument, ratio, BUY/SELL) per leg; one leg for OPT
    action: str
    quantity: float
    order_type: str
    lmt_price: float | None
    aux_price: float | None
    tif: str
    account: str
    order_ref: str
    outside_rth: bool = False
    what_if: bool = False
    status: str = "PreSubmitted"
    filled: float = 0.0
    avg_fill_price: float = 0.0
    last_fill_price: float = 0.0
    completed_time: str = ""
    completed_status: str = ""

    @property
    def remaining(self) -> float:
        return self.quantity - self.filled

    @property
    def is_live(self) -> bool:
        return self.status in LIVE_STATUSES

    @property
    def is_combo(self) -> bool:
        return self.echo.sec_type == "BAG"

    @property
    def sign(self) -> int:
        return 1 if self.action == "BUY" else -1


@dataclass(frozen=True, slots=True)
class Execution:
    exec_id: str
    order_id: int
    client_id: int
    perm_id: int
    contract: WireContract
    side: str  # BOT / SLD
    shares: float
    price: float
    time: str
    account: str
    cum_qty: float
    avg_price: float
    order_ref: str
    commission: float | None  # None: no commission report (the BAG line of a combo)
    realized_pnl: float | None = None


@dataclass(slots=True)
class PositionRecord:
    instrument: Instrument
    quantity: float = 0.0
    avg_cost: float = 0.0  # per contract in dollars (price x multiplier), as IB reports it
    realized_pnl: float = 0.0


def echo_for(inst: Instrument, exchange: str) -> WireContract:
    return WireContract(inst.con_id, inst.symbol, inst.sec_type, inst.last_trade_date, inst.strike, inst.right,
                        inst.multiplier, exchange or "SMART", "", inst.currency, inst.local_symbol,
                        inst.trading_class)


def bag_echo(symbol: str, exchange: str, currency: str, legs: tuple[WireLeg, ...]) -> WireContract:
    """The BAG as TWS echoes it: its own combo conId and legs normalized to SMART, whatever the client sent."""
    norm = tuple(WireLeg(leg.con_id, leg.ratio, leg.action, leg.exchange or "SMART") for leg in legs)
    return WireContract(BAG_CON_ID, symbol or "SPX", "BAG", "", 0.0, "", "", exchange or "SMART", "",
                        currency or "USD", "", "", norm)


def contract_key(c: WireContract) -> tuple:
    """What must be equal for a modify to be accepted (primaryExch is not echoed, so not compared)."""
    legs = tuple((leg.con_id, leg.ratio, leg.action, leg.exchange) for leg in c.legs)
    return (c.con_id, c.symbol, c.sec_type, c.last_trade_date, float(c.strike or 0.0), c.right, c.multiplier,
            c.exchange, c.currency, c.local_symbol, c.trading_class, legs)


def package_prices(book: OptionBook, legs: tuple[tuple[Instrument, int, str], ...]) -> tuple[float, float]:
    """(bid, ask) of a package per unit: what selling and buying it at the touch would give."""
    bid = ask = 0.0
    for inst, ratio, leg_action in legs:
        q = book.quote(inst)
        if leg_action == "BUY":
            bid, ask = bid + ratio * q.bid, ask + ratio * q.ask
        else:
            bid, ask = bid - ratio * q.ask, ask - ratio * q.bid
    return round(bid, 2), round(ask, 2)


def marketable_price(book: OptionBook, o: OrderRecord) -> float | None:
    """The fill price if the order crosses the natural price now (the better of limit and natural), else None."""
    bid, ask = package_prices(book, o.legs)
    if o.order_type == "MKT":
        return ask if o.action == "BUY" else bid
    if o.lmt_price is None:
        return None
    if o.action == "BUY" and o.lmt_price >= ask - 1e-9:
        return ask
    if o.action == "SELL" and o.lmt_price <= bid + 1e-9:
        return bid
    return None


class Blotter:
    """Orders, executions and positions across all clients; the gateway sends the messages."""

    def __init__(self, book: OptionBook, account: str, *, cash: float = 1_000_000.0,
                 commission_per_contract: float = 0.65, min_commission: float = 1.0) -> None:
        self.book = book
        self.account = account
        self.cash = cash
        self.commission_per_contract = commission_per_contract
        self.min_commission = min_commission
        self.orders: dict[int, OrderRecord] = {}
        self.executions: list[Execution] = []
        self.positions: dict[int, PositionRecord] = {}
        self.next_order_id = 1
        self._next_perm_id = 1_500_000_001
        self._exec_seq = 0
        self._started = datetime.now(EASTERN)

    def new_perm_id(self) -> int:
        self._next_perm_id += 1
        return self._next_perm_id - 1

    def clock_text(self) -> str:
        """Execution time: the book's trading day at the gateway's elapsed wall time, as TWS formats it."""
        at = self.book.now + (datetime.now(EASTERN) - self._started)
        return f"{at:%Y%m%d %H:%M:%S} US/Eastern"

    def note_order_id(self, order_id: int) -> None:
        self.next_order_id = max(self.next_order_id, order_id + 1)

    def leg_prices(self, o: OrderRecord, price: float) -> list[float]:
        """Per-leg fill prices at the touch, the first leg adjusted so the package sums to ``price``."""
        prices = []
        for inst, _ratio, leg_action in o.legs:
            q = self.book.quote(inst)
            buying = (leg_action == "BUY") == (o.action == "BUY")
            prices.append(q.ask if buying else q.bid)
        if not o.is_combo:
            return [price]
        signed = sum(r * (1 if a == "BUY" else -1) * p for (_, r, a), p in zip(o.legs, prices, strict=True))
        _, ratio0, action0 = o.legs[0]
        prices[0] = max(0.0, prices[0] + (price - signed) / ratio0 * (1 if action0 == "BUY" else -1))
        return [round(p, 2) for p in prices]

    def fill(self, o: OrderRecord, qty: float, price: float) -> list[Execution]:
        """Execute ``qty`` of ``o`` at package price ``price``: executions (BAG line first), positions, cash."""
        qty = min(qty, o.remaining)
        total_cost = o.avg_fill_price * o.filled + price * qty
        o.filled += qty
        o.avg_fill_price = round(total_cost / o.filled, 6)
        o.last_fill_price = price
        o.status = "Filled" if o.remaining <= 1e-9 else "Submitted"
        when = self.clock_text()
        if o.status == "Filled":
            o.completed_time, o.completed_status = when, f"Filled Size: {o.filled:g}"
        out: list[Execution] = []
        common = {"order_id": o.order_id, "client_id": o.client_id, "perm_id": o.perm_id, "time": when,
                  "account": o.account, "order_ref": o.order_ref}
        if o.is_combo:
            out.append(Execution(self._exec_id(), contract=o.echo, side=_side(o.sign), shares=qty, price=price,
                                 cum_qty=o.filled, avg_price=o.avg_fill_price, commission=None, **common))
        commissions = self._commissions(o, qty)
        for (inst, ratio, leg_action), leg_price, fee in zip(o.legs, self.leg_prices(o, price), commissions,
                                                             strict=True):
            sign = o.sign * (1 if leg_action == "BUY" else -1)
            shares = qty * ratio
            realized = self._apply_position(inst, sign * shares, leg_price, fee)
            leg_echo = echo_for(inst, o.echo.exchange)
            out.append(Execution(self._exec_id(), contract=leg_echo, side=_side(sign), shares=shares,
                                 price=leg_price, cum_qty=o.filled * ratio, avg_price=leg_price,
                                 commission=fee, realized_pnl=realized, **common))
        self.executions.extend(out)
        return out

    def _commissions(self, o: OrderRecord, qty: float) -> list[float]:
        fees = [round(self.commission_per_contract * qty * ratio, 2) for _, ratio, _ in o.legs]
        first_fill = o.filled - qty <= 1e-9
        if first_fill and sum(fees) < self.min_commission:
            fees[0] = round(fees[0] + self.min_commission - sum(fees), 2)
        return fees

    def _apply_position(self, inst: Instrument, signed_qty: float, price: float, fee: float) -> float | None:
        """Average-cost accounting; returns the realized P&L of a closing fill (None when only opening)."""
        mult = float(inst.multiplier or 1)
        pos = self.positions.setdefault(inst.con_id, PositionRecord(inst))
        self.cash -= signed_qty * price * mult + fee
        realized = None
        if pos.quantity and math.copysign(1, pos.quantity) != math.copysign(1, signed_qty):
            closing = min(abs(signed_qty), abs(pos.quantity))
            per_unit = price * mult - pos.avg_cost
            realized = round(closing * per_unit * math.copysign(1, pos.quantity) - fee, 2)
            pos.realized_pnl += realized
        new_qty = pos.quantity + signed_qty
        if abs(new_qty) < 1e-9:
            pos.avg_cost = 0.0
        elif pos.quantity == 0 or math.copysign(1, new_qty) != math.copysign(1, pos.quantity):
            pos.avg_cost = (signed_qty * price * mult + fee) / signed_qty  # a short's basis is net of the fee
        elif abs(new_qty) > abs(pos.quantity):
            pos.avg_cost = (pos.quantity * pos.avg_cost + signed_qty * price * mult + fee) / new_qty
        pos.quantity = new_qty
        return realized

    def _exec_id(self) -> str:
        self._exec_seq += 1
        return f"0000f00d.{self._exec_seq:08x}.01.01"

    def mark(self, inst: Instrument) -> float:
        q = self.book.quote(inst)
        return round((q.bid + q.ask) / 2, 4) if q.ask else q.last

    def account_values(self) -> dict[str, float]:
        """The account keys the clients ask for, in USD."""
        value = sum(p.quantity * self.mark(p.instrument) * float(p.instrument.multiplier or 1)
                    for p in self.positions.values())
        unrealized = sum(p.quantity * self.mark(p.instrument) * float(p.instrument.multiplier or 1)
                         - p.quantity * p.avg_cost for p in self.positions.values())
        realized = sum(p.realized_pnl for p in self.positions.values())
        net_liq = self.cash + value
        margin = sum(abs(p.quantity) * p.instrument.strike * 10 for p in self.positions.values() if p.quantity < 0)
        return {"NetLiquidation": net_liq, "TotalCashValue": self.cash, "BuyingPower": (net_liq - margin) * 4,
                "AvailableFunds": net_liq - margin, "ExcessLiquidity": net_liq - margin,
                "InitMarginReq": margin, "MaintMarginReq": margin, "EquityWithLoanValue": net_liq,
                "GrossPositionValue": abs(value), "UnrealizedPnL": unrealized, "RealizedPnL": realized}

    def what_if_margin(self, o: OrderRecord) -> float:
        """Default what-if initial margin change: the package's worst expiry loss over a price grid, in dollars."""
        spot = self.book.market.spot
        grid = [0.0, spot * 2] + [inst.strike for inst, _, _ in o.legs]
        worst = 0.0
        for s in grid:
            payoff = 0.0
            for inst, ratio, leg_action in o.legs:
                intrinsic = max(0.0, s - inst.strike) if inst.right == "C" else max(0.0, inst.strike - s)
                payoff += o.sign * ratio * (1 if leg_action == "BUY" else -1) * intrinsic
            worst = min(worst, payoff)
        return round(-worst * 100 * o.quantity, 2)


def _side(sign: int) -> str:
    return "BOT" if sign > 0 else "SLD"

