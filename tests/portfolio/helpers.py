"""Builders for the portfolio tests: contracts, orders walked through the order state machine, small chains."""

from __future__ import annotations

import itertools

from dataclasses import dataclass, field
from datetime import date, datetime

import numpy as np

from spx_core.domain.calendar import ET, to_ns
from spx_core.domain.contracts import OptionContract
from spx_core.domain.snapshot import ChainSnapshot
from spx_core.execution.orders import (EventKind, Fill, Intent, OrderEvent, OrderRequest, OrderState, OrderStatus,
                                       Side, apply)
from spx_core.portfolio.trades import TradeLedger
from spx_core.strategies.structure import Leg

EXPIRY = date(2024, 1, 5)  # a Friday: SPXW PM expiry
T0 = to_ns(datetime(2024, 1, 4, 10, 0, tzinfo=ET))


def opt(strike: float, right: str = "P", root: str = "SPXW", expiry: date = EXPIRY) -> OptionContract:
    return OptionContract(root, expiry, strike, right)


_exec_ids = itertools.count(1)


def fill(contract: OptionContract, side: str, qty: int, price: float, t: int = T0, *, leg: int = 0,
         commission: float = 0.0, fees: float = 0.0, exec_id: str | None = None) -> Fill:
    return Fill(exec_id or f"x{next(_exec_ids)}", leg, contract, Side(side), qty, price, t, commission, fees)


@dataclass
class Desk:
    """Orders sent through the real state machine, each fill booked into a TradeLedger (as the store does)."""

    ledger: TradeLedger = field(default_factory=TradeLedger)
    orders: dict[str, OrderState] = field(default_factory=dict)
    fills: list[Fill] = field(default_factory=list)
    n: int = 0

    def order(self, legs, side, qty, *, limit=1.0, intent=Intent.OPEN, trade_id=None) -> str:
        self.n += 1
        ref = f"ord{self.n}"
        req = OrderRequest(ref=ref, legs=tuple(Leg(c, r) for c, r in legs), side=Side(side), quantity=qty,
                           limit=limit, intent=intent, trade_id=trade_id)
        state = apply(OrderState.new(req), OrderEvent(ref, EventKind.STATUS, T0, status=OrderStatus.SUBMITTED))
        self.orders[ref] = state
        return ref

    def fill(self, ref: str, prices, units: int, t: int = T0, *, commission: float = 0.0, fees: float = 0.0):
        """Fill ``units`` of every leg of ``ref`` at ``prices`` (per leg); returns the trade after the last."""
        state = self.orders[ref]
        trade = None
        for i, price in enumerate(prices):
            req = state.request
            f = fill(req.legs[i].contract, req.leg_side(i), abs(req.legs[i].ratio) * units, price, t, leg=i,
                     commission=commission, fees=fees)
            state = apply(state, OrderEvent(ref, EventKind.FILL, t, fill=f))
            trade = self.ledger.on_fill(state, f)
            self.fills.append(f)
        self.orders[ref] = state
        return trade


def chain(quotes: dict[OptionContract, tuple[float, float]], *, underlying: str = "SPX", price: float = 4710.0,
          t: int = T0, stale: set[OptionContract] = frozenset()) -> ChainSnapshot:
    """A snapshot holding exactly ``quotes`` (contract -> (bid, ask)); ``stale`` quotes are 10 minutes old."""
    cs = list(quotes)
    return ChainSnapshot.from_columns(
        underlying=underlying, time=t, underlying_price=price, root=[c.root.value for c in cs],
        expiry=[c.expiry for c in cs], strike=np.array([c.strike for c in cs]),
        is_call=np.array([c.is_call for c in cs]), bid=np.array([quotes[c][0] for c in cs], dtype=float),
        ask=np.array([quotes[c][1] for c in cs], dtype=float),
        quote_time=np.array([t - (600 * 10**9 if c in stale else 0) for c in cs], dtype=np.int64))


class View:
    """A MarketView over fixed snapshots."""

    def __init__(self, *snaps: ChainSnapshot, now_ns: int = T0) -> None:
        self._snaps = {s.underlying: s for s in snaps}
        self._now = now_ns

    def now_ns(self) -> int:
        return self._now

    def snapshot(self, underlying: str) -> ChainSnapshot | None:
        return self._snaps.get(underlying)
