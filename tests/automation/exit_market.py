"""A hand-quoted SPXW chain, a settable market and booked trades for the monitor, hedger and runner tests.

The 25-wide put credit vertical of these tests is SOLD at 2.00 (4650P filled at 3.00, 4625P at 1.00) on Thursday
2024-01-04 and expires on Friday 2024-01-05 (PM). Its cost to close is the 4650P's ask minus the 4625P's bid
(natural) or the difference of the mids, so every threshold below can be checked by hand.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime

import numpy as np

from spx_core.automation.config import Exits, PriceMode, StrategyConfig
from spx_core.domain.calendar import ET, to_ns
from spx_core.domain.contracts import OptionContract
from spx_core.domain.snapshot import ChainSnapshot
from spx_core.execution.orders import Side
from spx_core.portfolio.trades import Trade
from tests.portfolio.helpers import Desk

EXPIRY = date(2024, 1, 5)
NEXT = date(2024, 1, 12)
#: Thursday 2024-01-04 10:00 ET (the day before expiry)
T0 = to_ns(datetime(2024, 1, 4, 10, 0, tzinfo=ET))
SECOND = 1_000_000_000
SHORT = OptionContract("SPXW", EXPIRY, 4650, "P")
LONG = OptionContract("SPXW", EXPIRY, 4625, "P")


def at(day: date, hh: int, mm: int, ss: int = 0) -> int:
    return to_ns(datetime(day.year, day.month, day.day, hh, mm, ss, tzinfo=ET))


def snapshot(quotes: dict[OptionContract, tuple[float, float]], *, t: int = T0, spot: float = 4700.0,
             flags: dict[OptionContract, int] | None = None) -> ChainSnapshot:
    """A SPX snapshot holding exactly ``quotes`` (contract -> (bid, ask)), 20 lots a side; ``flags`` given: forced
    (contracts not named are clean), else computed by the snapshot."""
    cs = list(quotes)
    return ChainSnapshot.from_columns(
        underlying="SPX", time=t, underlying_price=spot, root=[c.root.value for c in cs],
        expiry=[c.expiry for c in cs], strike=np.array([c.strike for c in cs]),
        is_call=np.array([c.is_call for c in cs]), bid=np.array([quotes[c][0] for c in cs], dtype=float),
        ask=np.array([quotes[c][1] for c in cs], dtype=float), bid_size=np.full(len(cs), 20),
        ask_size=np.full(len(cs), 20),
        **({} if flags is None else {"flags": np.array([flags.get(c, 0) for c in cs], dtype=np.uint16)}))


class Market:
    """A MarketView whose clock and chains the test sets."""

    def __init__(self, *snaps: ChainSnapshot, now_ns: int = T0) -> None:
        self.now = now_ns
        self.snaps = {s.underlying: s for s in snaps}

    def now_ns(self) -> int:
        return self.now

    def snapshot(self, underlying: str) -> ChainSnapshot | None:
        return self.snaps.get(underlying)


def vertical_market(short: tuple[float, float], long: tuple[float, float], *, t: int = T0,
                    flags: dict[OptionContract, int] | None = None) -> Market:
    """The vertical's two legs quoted (bid, ask), the clock at ``t``."""
    return Market(snapshot({SHORT: short, LONG: long}, t=t, flags=flags), now_ns=t)


def credit_vertical(trade_id: int = 1) -> Trade:
    """SOLD 1 x (+4650P, -4625P) at 2.00 (4650P at 3.00, 4625P at 1.00)."""
    desk = Desk()
    ref = desk.order([(SHORT, 1), (LONG, -1)], "sell", 1, limit=2.0)
    trade = desk.fill(ref, [3.0, 1.0], 1)
    return replace(trade, id=trade_id)


def debit_vertical(trade_id: int = 2) -> Trade:
    """BOUGHT 1 x (+4650P, -4625P) at 2.00: the same legs as a debit trade."""
    desk = Desk()
    ref = desk.order([(SHORT, 1), (LONG, -1)], "buy", 1, limit=2.0)
    trade = desk.fill(ref, [3.0, 1.0], 1)
    assert trade.side is Side.BUY
    return replace(trade, id=trade_id)


def config(name: str = "pcs", price: str = "natural", **exits) -> StrategyConfig:
    """A put credit vertical strategy with these exits (take profit 50%, stop loss 100% unless given)."""
    return StrategyConfig(name=name, structure="put-credit-vertical", exits=Exits(**exits), price=PriceMode(price))
