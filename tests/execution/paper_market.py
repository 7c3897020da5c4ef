"""A hand-quoted SPXW chain and a settable MarketView for the paper broker's tests (prices chosen to be
added up by hand: 10-cent spreads, round sizes)."""

from __future__ import annotations

from datetime import date, datetime

import numpy as np

from spx_core.domain import ChainSnapshot
from spx_core.domain.calendar import ET, to_ns
from spx_core.domain.contracts import OptionContract, Root
from spx_core.execution.orders import OrderRequest, Side
from spx_core.strategies.structure import Leg

EXPIRY = date(2024, 1, 12)
#: Friday 2024-01-05, 10:00 ET: a regular session
T0 = to_ns(datetime(2024, 1, 5, 10, 0, tzinfo=ET))
SECOND = 1_000_000_000

#: (strike, right) -> (bid, ask, bid size, ask size)
QUOTES: dict[tuple[float, str], tuple[float, float, int, int]] = {
    (4600, "P"): (0.60, 0.70, 50, 50),
    (4625, "P"): (0.90, 1.00, 20, 15),
    (4650, "P"): (1.40, 1.50, 10, 12),
    (4750, "C"): (1.20, 1.30, 8, 9),
    (4775, "C"): (0.70, 0.80, 30, 30),
    (4800, "C"): (0.35, 0.45, 40, 40),
}


def contract(strike: float, right: str, expiry: date = EXPIRY, root: Root = Root.SPXW) -> OptionContract:
    return OptionContract(root, expiry, strike, right)


def chain(quotes: dict | None = None, *, time_ns: int = T0, spot: float = 4700.0, expiry: date = EXPIRY,
          root: Root = Root.SPXW, **columns) -> ChainSnapshot:
    quotes = QUOTES if quotes is None else quotes
    keys = sorted(quotes)
    q = np.array([quotes[k] for k in keys], dtype=float)
    return ChainSnapshot.from_columns(
        underlying="SPX", time=time_ns, underlying_price=spot, root=[root.value] * len(keys),
        expiry=[expiry] * len(keys), strike=[k[0] for k in keys], is_call=[k[1] == "C" for k in keys],
        bid=q[:, 0], ask=q[:, 1], bid_size=q[:, 2], ask_size=q[:, 3], **columns)


def requote(changes: dict, *, time_ns: int, base: dict | None = None) -> ChainSnapshot:
    quotes = dict(QUOTES if base is None else base)
    quotes.update(changes)
    return chain(quotes, time_ns=time_ns)


class FakeMarket:
    """A MarketView whose clock and chains the test sets."""

    def __init__(self, *snapshots: ChainSnapshot, now_ns: int = T0) -> None:
        self.now = now_ns
        self.snaps = {s.underlying: s for s in snapshots}

    def now_ns(self) -> int:
        return self.now

    def snapshot(self, underlying: str) -> ChainSnapshot | None:
        return self.snaps.get(underlying)

    def update(self, snap: ChainSnapshot) -> None:
        """A new chain arrives: the clock moves to its time."""
        self.snaps[snap.underlying] = snap
        self.now = snap.time_ns


def put_vertical() -> tuple[Leg, ...]:
    """25-wide put credit vertical as IB writes it: short 4650P +1, long 4625P -1 (SELL it for a credit)."""
    return (Leg(contract(4650, "P"), 1), Leg(contract(4625, "P"), -1))


def iron_condor() -> tuple[Leg, ...]:
    """25-wide iron condor, 4625/4650 puts and 4750/4775 calls, shorts +1 (SELL it for a credit)."""
    return (Leg(contract(4650, "P"), 1), Leg(contract(4625, "P"), -1), Leg(contract(4750, "C"), 1),
            Leg(contract(4775, "C"), -1))


def request(legs, side: Side | str = Side.SELL, quantity: int = 1, limit: float | None = 0.05, *,
            ref: str = "r1", **kwargs) -> OrderRequest:
    kwargs.setdefault("order_type", "LMT" if limit is not None else "MKT")
    return OrderRequest(ref=ref, legs=tuple(legs), side=Side(side), quantity=quantity, limit=limit,
                        created_ns=kwargs.pop("created_ns", T0), **kwargs)
