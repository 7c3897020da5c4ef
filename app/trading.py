"""TradingSession: the window's order service (gate -> broker -> store) on the live feed, for the panels.

The main window builds one when the database is open (:func:`open_session`) and publishes it with
``AppContext.set_trading``; the ticket places through it, the blotter lists and amends its orders, the
positions panel shows its portfolio, the status bar its broker and account.

What it wires (every order path goes through ``OrderService``, so through the pre-trade gate):
    * an :class:`OrderRepository` on the window's store (every state change one transaction, before it shows);
    * the broker the settings name (the in-process :class:`PaperBroker` by default, filling against this
      session's :class:`FeedMarket`: the feed's latest snapshot per underlying, SPX with its SPY companion);
    * ``service.restore()`` at start: working orders back at the broker, positions and today's P&L read back.

Feeding: :meth:`on_batch` (connected to the feed) updates the market view and lets a market-driven broker
fill what rests (the paper broker's ``on_market``: a dictionary look-up when nothing rests). Portfolio marks
are refreshed on a coalescing timer, at most every ``refresh_ms`` (250 ms): a burst of batches and fills is
one re-read and one ``portfolio_changed``.

Events (Qt signals):
    order_changed(OrderState): an order's stored state changed (placed, acknowledged, filled, amended, done).
    portfolio_changed(Portfolio): positions, trades, marks and the account line (coalesced).
    broker_changed(TradingSession): the broker (name, account, live) changed.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from PySide6.QtCore import QObject, QTimer, Signal

from spx_core.domain.calendar import ET
from spx_core.domain.contracts import OptionContract
from spx_core.domain.snapshot import ChainSnapshot
from spx_core.execution.orders import OrderRequest, OrderState
from spx_core.marketdata.source import QuoteBatch

if TYPE_CHECKING:
    from app.settings import AppSettings
    from spx_core.execution.broker import Broker, WhatIf
    from spx_core.storage import Store

__all__ = [
    "FeedMarket",
    "MarketDriven",
    "Portfolio",
    "TradingSession",
    "contract_marks",
    "day_start_ns",
    "open_session",
]

log = logging.getLogger(__name__)

#: Least wall milliseconds between two portfolio refreshes (marks, account): a few a second is what eyes read.
REFRESH_MS = 250


@runtime_checkable
class MarketDriven(Protocol):
    """A broker that fills against the market it is shown (the paper broker): call after every update."""

    def on_market(self) -> None: ...


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


def day_start_ns(now_ns: int) -> int:
    """UTC ns of midnight US/Eastern of the market day containing ``now_ns`` ("today" for P&L)."""
    day = datetime.fromtimestamp(now_ns / 1e9, ET).date()
    return int(datetime.combine(day, time(0), ET).timestamp()) * 1_000_000_000


def contract_marks(contracts: Iterable[OptionContract], market: FeedMarket) -> dict[OptionContract, float]:
    """Mid of each contract's quote in the market (NaN when unlisted, one-sided or flagged: no mark is
    better than a wrong one)."""
    from spx_core.strategies.market import locate
    from spx_core.strategies.structure import underlying_of

    by_underlying: dict[str, list[OptionContract]] = {}
    for c in contracts:
        by_underlying.setdefault(underlying_of(c.root), []).append(c)
    marks: dict[OptionContract, float] = {}
    for underlying, wanted in by_underlying.items():
        snap = market.snapshot(underlying)
        rows = locate(snap, wanted).tolist() if snap is not None else [-1] * len(wanted)
        for c, r in zip(wanted, rows, strict=True):
            ok = r >= 0 and snap.bid[r] > 0 and snap.ask[r] >= snap.bid[r] and int(snap.flags[r]) == 0
            marks[c] = 0.5 * float(snap.bid[r] + snap.ask[r]) if ok else math.nan
    return marks


@dataclass(frozen=True, slots=True, eq=False)
class Portfolio:
    """What the positions panel shows, as of ``time_ns`` (market clock).

    Attributes:
        positions: per contract, marked (``Position.mark`` points; NaN without a quote); open ones and those
            closed today.
        trades: open trades and those closed today (``spx_core.portfolio.trades.Trade``).
        marks: contract -> mid (points), the marks above.
        account: the account line (``AccountSummary``) or None when it could not be computed (``reason``).
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


class TradingSession(QObject):
    """See the module docstring. Build with :func:`open_session` (or pass the pieces, as tests do)."""

    order_changed = Signal(object)
    portfolio_changed = Signal(object)
    broker_changed = Signal(object)

    def __init__(self, service: Any, repo: Any, market: FeedMarket, *, starting_cash: float,
                 gate: Any, refresh_ms: int = REFRESH_MS, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.service = service
        self.repo = repo
        self.market = market
        self.gate = gate
        self.starting_cash = starting_cash
        self.portfolio: Portfolio | None = None
        self._positions: tuple[Any, ...] = ()
        self._trades: tuple[Any, ...] = ()
        self._reload = True  # positions/trades must be re-read from the store (a fill arrived)
        self._closed = False
        self._unsubscribe: Callable[[], None] | None = service.subscribe(self._on_order)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(max(int(refresh_ms), 0))
        self._timer.timeout.connect(self.refresh_portfolio)

    # --- identity ---------------------------------------------------------------------------------------
    @property
    def broker(self) -> Broker:
        return self.service.broker

    @property
    def broker_name(self) -> str:
        return self.broker.name

    @property
    def account(self) -> str:
        return self.broker.account

    @property
    def is_live(self) -> bool:
        return self.broker.is_live

    def describe(self) -> str:
        """"Paper · PAPER", "IB paper · DU123456", "IB LIVE · U123456" (what the status bar shows)."""
        if self.broker_name == "paper":
            kind = "Paper"
        else:
            kind = f"{self.broker_name.upper()} {'LIVE' if self.is_live else 'paper'}"
        return f"{kind} · {self.account or 'no account yet'}"

    # --- lifetime ---------------------------------------------------------------------------------------
    def start(self) -> list[OrderState]:
        """Restore what the store holds: working orders handed back to the broker, positions and today's P&L."""
        restored = self.service.restore()
        log.info("trading: %s, %d working orders restored", self.describe(), len(restored))
        self.refresh_portfolio()
        return restored

    def close(self) -> None:
        """Stop listening and release the broker (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._timer.stop()
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self.broker.close()

    def switch_broker(self, broker: Broker) -> None:
        self.service.switch_broker(broker)
        self.broker_changed.emit(self)

    # --- orders (everything through the service: the gate cannot be skipped) -------------------------------
    def preview(self, request: OrderRequest) -> Any:
        """The gate's verdict on ``request`` now, without approving it (the ticket shows it before sending)."""
        return self.gate.preview(request, self.market, self.broker)

    def what_if(self, request: OrderRequest) -> WhatIf | None:
        return self.broker.what_if(request)

    def place(self, request: OrderRequest) -> Any:
        """Gate, store and send; returns ``PlaceResult(state, verdict)`` (refused: stored REJECTED with why)."""
        return self.service.place(request)

    def modify(self, ref: str, *, limit: float | None = None, quantity: int | None = None) -> Any:
        return self.service.modify(ref, limit=limit, quantity=quantity)

    def cancel(self, ref: str) -> None:
        self.service.cancel(ref)

    def close_request(self, trade_id: int) -> OrderRequest:
        """The order that closes the open part of trade ``trade_id`` (the ticket opens with it)."""
        return self.service.close_request(trade_id)

    def orders(self) -> list[OrderState]:
        return list(self.service.orders())

    # --- market and portfolio -------------------------------------------------------------------------------
    def on_batch(self, batch: QuoteBatch) -> None:
        """The feed's batch: new market view, resting paper orders checked, a portfolio refresh scheduled."""
        self.market.update(batch)
        broker = self.broker
        if isinstance(broker, MarketDriven):
            try:
                broker.on_market()
            except Exception:  # one bad fill check must not stop the feed (logged; the order stays working)
                log.exception("trading: the %s broker failed on a market update", broker.name)
        self._schedule()

    def _on_order(self, state: OrderState) -> None:
        if state.fills:
            self._reload = True
        self.order_changed.emit(state)
        self._schedule()

    def _schedule(self) -> None:
        if not self._closed and not self._timer.isActive():
            self._timer.start()

    def refresh_portfolio(self) -> Portfolio:
        """Re-read positions and trades if fills arrived, re-mark them, compute the account; emit."""
        now = self.market.now_ns()
        start = day_start_ns(now) if now else 0
        if self._reload:
            self._reload = False
            self._positions = tuple(self.repo.positions(closed_since_ns=start))
            trades = {t.id: t for t in self.repo.trades(open_only=True)}
            trades.update({t.id: t for t in self.repo.trades(since_ns=start)})
            self._trades = tuple(sorted(trades.values(), key=lambda t: t.opened_ns))
        contracts = {p.contract for p in self._positions} | {leg.contract for t in self._trades for leg in t.legs}
        marks = contract_marks(contracts, self.market)
        positions = tuple(p.with_mark(marks.get(p.contract, math.nan)) for p in self._positions)
        account, reason = self._account(positions, start)
        self.portfolio = Portfolio(positions, self._trades, marks, account, now, start,
                                   self.market.snapshots, reason)
        self.portfolio_changed.emit(self.portfolio)
        return self.portfolio

    def _account(self, positions: tuple[Any, ...], start: int) -> tuple[Any | None, str]:
        from spx_core.portfolio.account import account_summary

        try:
            return account_summary(self.starting_cash, positions, self._trades, self.market, start), ""
        except Exception as exc:  # the positions stay on screen without an account line; say why
            log.exception("trading: account summary failed")
            return None, f"account line unavailable: {type(exc).__name__}: {exc}"


def paper_broker(settings: AppSettings, market: FeedMarket) -> Broker:
    """The paper broker the settings describe (fill model, latency; fees: the default schedule)."""
    from spx_core.execution.fill_model import FillModel
    from spx_core.execution.paper import PaperBroker

    model = FillModel(mode=settings.fill_model, offset=settings.fill_offset)
    return PaperBroker(market, fill_model=model, latency_ns=int(settings.latency_ms) * 1_000_000)


class BrokerUnavailable(RuntimeError):
    """The broker the settings name cannot be used in this build; the message says what to do."""


def open_session(store: Store, settings: AppSettings, *, broker: Callable[[FeedMarket], Broker] | None = None,
                 parent: QObject | None = None, refresh_ms: int = REFRESH_MS) -> TradingSession:
    """A started session on ``store`` with the broker the settings name (``broker(market)`` builds another).

    Raises:
        BrokerUnavailable: the settings name Interactive Brokers, which the terminal cannot connect to yet.
    """
    from spx_core.execution.gate import GateSettings, PreTradeGate
    from spx_core.execution.service import OrderService
    from spx_core.storage.orders_repo import OrderRepository

    market = FeedMarket()
    if broker is None and settings.broker != "paper":
        raise BrokerUnavailable(f"broker {settings.broker!r} is not available in this build; choose "
                                f"\"paper\" in Settings (Interactive Brokers comes with the IB adapter)")
    built = broker(market) if broker is not None else paper_broker(settings, market)
    repo = OrderRepository(store)
    gate = PreTradeGate(GateSettings())
    service = OrderService(repo, built, gate, market)
    session = TradingSession(service, repo, market, starting_cash=settings.starting_cash, gate=gate,
                             refresh_ms=refresh_ms, parent=parent)
    session.start()
    return session
