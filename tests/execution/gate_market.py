"""A small hand-priced SPX chain and market for the gate and order-service tests.

Every quote is written out below so each natural price, width and max loss in the tests can be checked by
hand. The chain is the SPXW 0DTE of Friday 2024-01-05 plus the SPX AM monthly of 2024-01-19 and an SPXW
series that expired the day before (still listed: a stale chain must not let an expired leg through).
"""

from __future__ import annotations

from datetime import date, datetime

import numpy as np

from spx_core.domain import ET, ChainSnapshot, OptionContract, Right, Root
from spx_core.domain.calendar import to_ns
from spx_core.execution.broker import Broker
from spx_core.execution.orders import OrderRequest, Side, new_ref
from spx_core.strategies.structure import Leg

DAY = date(2024, 1, 5)  # a Friday
MONTHLY = date(2024, 1, 19)  # SPX AM, third Friday
YESTERDAY = date(2024, 1, 4)
T0 = datetime(2024, 1, 5, 10, 30, tzinfo=ET)

#: (root, expiry, strike, right) -> (bid, ask)
QUOTES: dict[tuple[Root, date, float, str], tuple[float, float]] = {
    (Root.SPXW, DAY, 4650, "P"): (3.00, 3.20), (Root.SPXW, DAY, 4675, "P"): (5.80, 6.00),
    (Root.SPXW, DAY, 4700, "P"): (10.00, 10.20), (Root.SPXW, DAY, 4725, "P"): (16.50, 16.80),
    (Root.SPXW, DAY, 4750, "P"): (25.00, 25.40),
    (Root.SPXW, DAY, 4650, "C"): (52.00, 52.60), (Root.SPXW, DAY, 4675, "C"): (32.50, 33.00),
    (Root.SPXW, DAY, 4700, "C"): (17.00, 17.30), (Root.SPXW, DAY, 4725, "C"): (7.40, 7.60),
    (Root.SPXW, DAY, 4750, "C"): (2.50, 2.65),
    (Root.SPX, MONTHLY, 4700, "P"): (40.00, 40.60), (Root.SPX, MONTHLY, 4650, "P"): (27.00, 27.50),
    (Root.SPXW, YESTERDAY, 4700, "P"): (0.05, 0.10),
    (Root.SPXW, DAY, 4600, "P"): (float("nan"), 1.10),  # no bid
    (Root.SPXW, DAY, 4575, "P"): (0.0, 0.05),  # a zero bid
    (Root.SPXW, DAY, 4625, "P"): (2.40, 2.10),  # crossed
}


def contract(strike: float, right: str = "P", expiry: date = DAY, root: Root = Root.SPXW) -> OptionContract:
    return OptionContract(root, expiry, strike, Right(right))


def chain(when: datetime | int = T0, quotes: dict | None = None, spot: float = 4705.0, size: int = 50) -> ChainSnapshot:
    """The chain at ``when``; ``quotes`` overrides some of :data:`QUOTES`; ``size`` contracts on every side."""
    q = QUOTES | (quotes or {})
    keys = list(q)
    return ChainSnapshot.from_columns(
        underlying="SPX", time=when, underlying_price=spot, root=[k[0].value for k in keys],
        expiry=[k[1] for k in keys], strike=[k[2] for k in keys], is_call=[k[3] == "C" for k in keys],
        bid=np.array([q[k][0] for k in keys]), ask=np.array([q[k][1] for k in keys]),
        bid_size=np.full(len(keys), size), ask_size=np.full(len(keys), size))


class StaticMarket:
    """A MarketView over fixed snapshots and a clock the test moves."""

    def __init__(self, when: datetime = T0, snapshots: dict[str, ChainSnapshot] | None = None) -> None:
        self.clock = to_ns(when)
        self.snapshots = {"SPX": chain(self.clock)} if snapshots is None else snapshots

    def now_ns(self) -> int:
        return self.clock

    def snapshot(self, underlying: str) -> ChainSnapshot | None:
        return self.snapshots.get(underlying)

    def advance(self, seconds: float) -> None:
        self.clock += int(seconds * 1e9)

    def move(self, quotes: dict | None = None, *, seconds: float = 1.0) -> None:
        """Advance the clock and publish a new SPX chain (``quotes`` overriding the base quotes)."""
        self.advance(seconds)
        self.snapshots["SPX"] = chain(self.clock, quotes)


class RecordingBroker(Broker):
    """A broker that only records what reaches it (to show what never does)."""

    name = "paper"

    def __init__(self, *, live: bool = False, account: str = "DU123") -> None:
        super().__init__()
        self.live, self._account = live, account
        self.submitted: list[OrderRequest] = []
        self.modified: list[OrderRequest] = []
        self.cancelled: list[str] = []

    @property
    def account(self) -> str:
        return self._account

    @property
    def is_live(self) -> bool:
        return self.live

    def _submit(self, request: OrderRequest) -> None:
        self.submitted.append(request)

    def _modify(self, request: OrderRequest) -> None:
        self.modified.append(request)

    def _cancel(self, ref: str) -> None:
        self.cancelled.append(ref)


def put_credit_spread(*, limit: float = 4.20, quantity: int = 1, **kw) -> OrderRequest:
    """SELL +4700P -4675P: natural 10.00 - 6.00 = 4.00 (package bid), package ask 10.20 - 5.80 = 4.40."""
    kw = {"ref": new_ref(), "side": Side.SELL, "created_ns": to_ns(T0), "name": "25-wide put credit",
          "kind": "vertical"} | kw
    return OrderRequest(legs=(Leg(contract(4700), 1), Leg(contract(4675), -1)), quantity=quantity, limit=limit, **kw)


def single(strike: float, right: str, side: Side, limit: float | None, *, quantity: int = 1,
           expiry: date = DAY, root: Root = Root.SPXW, **kw) -> OrderRequest:
    extra = {"order_type": "MKT"} if limit is None else {"limit": limit}
    return OrderRequest(ref=new_ref(), legs=(Leg(contract(strike, right, expiry, root), 1),), side=side,
                        quantity=quantity, created_ns=to_ns(T0), **extra, **kw)
