"""The plain parts of the trading session: the market view over the feed, the portfolio the panels show, and
the broker capabilities the session looks for (:mod:`app.trading` re-exports them).

Capabilities are structural (``Protocol``): the session asks "can this broker fill against the market / report
its account / check its positions?" rather than "is it the paper or the IB broker?", so a new broker needs no
change here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any, Protocol, runtime_checkable

from spx_core.domain.calendar import ET
from spx_core.domain.contracts import OptionContract
from spx_core.domain.snapshot import ChainSnapshot
from spx_core.marketdata.source import QuoteBatch

__all__ = ["AccountReporting", "FeedMarket", "LinkedBroker", "MarketDriven", "Portfolio", "PositionChecking",
           "day_start_ns"]


@runtime_checkable
class MarketDriven(Protocol):
    """A broker that fills against the market it is shown (the paper broker): call after every update."""

    def on_market(self) -> None: ...


@runtime_checkable
class LinkedBroker(Protocol):
    """A broker behind a connection the session opens (``connect_retrying``) and follows (IB: ``IbConnection``)."""

    connection: Any


@runtime_checkable
class PositionChecking(Protocol):
    """A broker that compares its own positions with the book after each (re)connect (IB: ``PositionWatch``)."""

    position_watch: Any


@runtime_checkable
class AccountReporting(Protocol):
    """A broker that values the account itself (IB: ``IbBroker.account_figures``): net liquidation, buying
    power, margin and day P&L (NaN: not yet) as the broker says (None until it has), in place of the ones
    computed from the paper starting cash of the settings."""

    def account_figures(self) -> Any | None: ...


class FeedMarket:
    """A :class:`~spx_core.execution.broker.MarketView` over the feed: the latest snapshot per underlying.

    ``now_ns`` is the market clock of the latest batch (the data's time: simulated or replayed), never the
    wall clock, so the gate's and the broker's times agree with the chain they price against.
    """

    def __init__(self) -> None:
        self._snapshots: dict[str, ChainSnapshot] = {}
        self._now_ns = 0

    def update(self, batch: QuoteBatch) -> None:
        for b in (batch, *batch.companions):  # the simulator's SPY rides along with SPX
            self._snapshots[b.snapshot.underlying] = b.snapshot
        self._now_ns = batch.snapshot.time_ns  # a replay may start earlier than the last source: follow it

    def now_ns(self) -> int:
        return self._now_ns

    def snapshot(self, underlying: str) -> ChainSnapshot | None:
        return self._snapshots.get(underlying)

    @property
    def snapshots(self) -> dict[str, ChainSnapshot]:
        """Underlying -> its latest snapshot (a copy)."""
        return dict(self._snapshots)

    def frozen(self) -> FeedMarket:
        """This market as it is now, in a copy the feed no longer moves (what a worker thread reads while the
        feed moves this one)."""
        copy = FeedMarket()
        copy._snapshots, copy._now_ns = dict(self._snapshots), self._now_ns
        return copy


def day_start_ns(now_ns: int) -> int:
    """UTC ns of midnight US/Eastern of the market day containing ``now_ns`` ("today" for P&L)."""
    day = datetime.fromtimestamp(now_ns / 1e9, ET).date()
    return int(datetime.combine(day, time(0), ET).timestamp()) * 1_000_000_000


@dataclass(frozen=True, slots=True, eq=False)
class Portfolio:
    """What the positions panel shows, as of ``time_ns`` (market clock).

    Attributes:
        positions: every position of the account (flat ones carry realized P&L), marked (``Position.mark``,
            points; NaN without a usable quote).
        trades: open trades and those closed today (``spx_core.portfolio.trades.Trade``).
        marks: contract -> mid (points), the marks above.
        account: the account line (``AccountSummary``) or None when it could not be computed (``reason``); with
            a broker that values the account (:class:`AccountReporting`: IB) its net liquidation, buying power,
            margin and day P&L are the broker's (the whole account), unrealized / realized P&L ours (this app's
            fills at the feed's marks).
        day_start_ns: where "today" starts (midnight ET of the market day).
        snapshots: underlying -> the snapshot the marks come from (for greeks in the positions panel).
    """

    positions: tuple[Any, ...]
    trades: tuple[Any, ...]
    marks: dict[OptionContract, float]
    account: Any | None
    time_ns: int
    day_start_ns: int
    snapshots: dict[str, ChainSnapshot] = field(default_factory=dict)
    reason: str = ""

    def trade(self, trade_id: int) -> Any | None:
        return next((t for t in self.trades if t.id == trade_id), None)

    @property
    def open_trades(self) -> tuple[Any, ...]:
        return tuple(t for t in self.trades if t.status == "open")
