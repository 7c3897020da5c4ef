"""TradingSession: the window's order service (gate -> broker -> store) on the live feed, for the panels.

The main window builds one when the database is open (:func:`app.trading_setup.open_session`) and publishes it with
``AppContext.set_trading``; the ticket places through it, the blotter lists and amends its orders, the
positions panel shows its portfolio, the status bar its broker and account.

What it wires (every order path goes through ``OrderService``, so through the pre-trade gate):
    * an :class:`OrderRepository` on the window's store (every state change one transaction, before it shows);
    * the broker the settings name: the in-process :class:`PaperBroker` by default, filling against this
      session's :class:`FeedMarket` (the feed's latest snapshot per underlying, SPX with its SPY companion), or
      Interactive Brokers (``IbBroker`` over an ``IbConnection`` to TWS / IB Gateway, connected on the running
      loop at :meth:`TradingSession.start`; its state and any refusal, e.g. a live port without the typed
      confirmation, come back as ``broker_changed`` and ``link_message``);
    * ``service.restore()`` at start: working orders back at the broker, positions and today's P&L read back;
    * a broker that checks its own positions against the book (IB's ``position_watch``: after every (re)connect
      and every ``position_check_interval`` while connected) reads the store's positions; the result is
      ``positions_checked`` and a line of the status bar's tooltip
      (the book is never rewritten from the broker's numbers).

Feeding: :meth:`on_batch` (connected to the feed) updates the market view and lets a market-driven broker
fill what rests (the paper broker's ``on_market``: a dictionary look-up when nothing rests). Portfolio marks
are refreshed on a coalescing timer, at most every ``refresh_ms`` (250 ms): a burst of batches and fills is
one re-read and one ``portfolio_changed``.

Events (Qt signals):
    order_changed(OrderState): an order's stored state changed (placed, acknowledged, filled, amended, done).
    portfolio_changed(Portfolio): positions, trades, marks and the account line (coalesced).
    broker_changed(TradingSession): the broker (name, account, live) changed.
    risk_changed(GuardStatus): limit use and the breaker after each portfolio refresh (:mod:`app.trading_risk`).
    positions_checked(PositionCheck): the broker's positions compared with the book (after each IB (re)connect
        and periodically; ``spx_core.execution.ib.positions``); the alerts raise a mismatch.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QTimer, Signal

from app import trading_risk
from app.trading_types import (
    AccountReporting,
    FeedMarket,
    LinkedBroker,
    MarketDriven,
    Portfolio,
    PositionChecking,
    day_start_ns,
)
from spx_core.execution.orders import OrderRequest, OrderState
from spx_core.marketdata.source import QuoteBatch
from spx_core.portfolio.settlement_watch import SettlementWatch

if TYPE_CHECKING:
    from spx_core.execution.broker import Broker, WhatIf

__all__ = [
    "AccountReporting",
    "FeedMarket",
    "MarketDriven",
    "Portfolio",
    "TradingSession",
    "day_start_ns",
]

log = logging.getLogger(__name__)

#: Least wall milliseconds between two portfolio refreshes (marks, account): a few a second is what eyes read.
REFRESH_MS = 250


class TradingSession(QObject):
    """See the module docstring. Build with :func:`app.trading_setup.open_session` (or pass the pieces, as tests do)."""

    order_changed = Signal(object)
    portfolio_changed = Signal(object)
    broker_changed = Signal(object)
    risk_changed = Signal(object)
    positions_checked = Signal(object)

    def __init__(self, service: Any, repo: Any, market: FeedMarket, *, starting_cash: float,
                 gate: Any, refresh_ms: int = REFRESH_MS, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.service = service
        self.repo = repo
        self.market = market
        self.gate = gate
        self.starting_cash = starting_cash
        self.guard: Any | None = None  # the RiskGuard the gate calls (app.trading_risk.attach_guard)
        self.portfolio: Portfolio | None = None
        self._positions: tuple[Any, ...] = ()
        self._trades: tuple[Any, ...] = ()
        self._reload = True  # positions/trades must be re-read from the store (a fill arrived)
        self._day_start = 0  # the market day the stored day baselines count from (midnight ET, UTC ns)
        #: expiry settlement from the watched underlying prices (the close for PM roots, the open for SPX AM)
        self.settlement = SettlementWatch()
        self._settle_at: int | None = None  # the next settlement instant among open positions
        self._settle_stale = True  # positions changed since _settle_at was computed
        self._unsettled: set[Any] = set()
        self._closed = False
        #: the broker link's last word ("IB DU123 (paper): connected", or why it is not): the status bar tooltip
        self.link_message = ""
        self._link_text = ""  # the connection's own last word (link_message adds the position check's)
        #: the broker's last comparison of its positions with the book (``PositionCheck``; None before any)
        self.position_check: Any | None = None
        self._unwatch: Callable[[], None] | None = None
        self._link_tasks: set[asyncio.Task] = set()
        self._unlink: Callable[[], None] | None = None
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
        """"Paper · PAPER", "IB paper · DU123456", "IB LIVE · U123456" (what the status bar shows); a broker
        that is not connected says so."""
        if self.broker_name == "paper":
            kind = "Paper"
        else:
            kind = f"{self.broker_name.upper()} {'LIVE' if self.is_live else 'paper'}"
        state = "" if self.broker.connected else " (not connected)"
        return f"{kind} · {self.account or 'no account yet'}{state}"

    # --- lifetime ---------------------------------------------------------------------------------------
    def start(self) -> list[OrderState]:
        """Restore what the store holds: working orders handed back to the broker, positions and today's P&L."""
        restored = self.service.restore()
        log.info("trading: %s, %d working orders restored", self.describe(), len(restored))
        self.refresh_portfolio()
        if isinstance(self.broker, LinkedBroker):
            self._link(self.broker.connection)
        return restored

    def _link(self, connection: Any) -> None:
        """Follow the connection's state (status bar) and connect it on the running loop (never blocks)."""
        self._unlink = connection.on_status(self._on_link)
        if isinstance(self.broker, PositionChecking):  # before connecting: the first check runs on connect
            watch = self.broker.position_watch
            # the store keeps one book per database (positions carry no account): the account's book is all of it
            watch.book = lambda _account: self.repo.positions()
            self._unwatch = watch.on_check(self._on_position_check)
        self._spawn(self._connect(connection))

    async def _connect(self, connection: Any) -> None:
        from spx_core.execution.broker import BrokerError

        try:  # TWS may start after the app: unreachable is retried with the backoff (the status bar says so)
            await connection.connect_retrying()
        except (ConnectionError, TimeoutError, OSError, BrokerError) as exc:  # incl. LiveTradingRefused
            self.link_message = str(exc)
            log.warning("trading: %s", exc)
            self.broker_changed.emit(self)

    def _on_link(self, status: Any) -> None:
        self._link_text = status.text
        self._show_link()

    def _on_position_check(self, check: Any) -> None:
        self.position_check = check
        self._show_link()
        if not self._closed:
            self.positions_checked.emit(check)

    def _show_link(self) -> None:
        check = self.position_check
        self.link_message = self._link_text + (f"\n{check.message}" if check is not None else "")
        if not self._closed:
            self.broker_changed.emit(self)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._link_tasks.add(task)
        task.add_done_callback(self._link_tasks.discard)

    def close(self) -> None:
        """Stop listening and release the broker (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._timer.stop()
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        for stop in (self._unlink, self._unwatch):
            if stop is not None:
                stop()
        self._unlink = self._unwatch = None
        for task in list(self._link_tasks):
            task.cancel()
        self.broker.close()
        if isinstance(self.broker, LinkedBroker):
            try:
                asyncio.get_running_loop().create_task(self.broker.connection.disconnect())
            except RuntimeError:  # no loop runs (a test's teardown): the library's socket closes with it
                self.broker.connection.ib.disconnect()

    def set_profile(self, name: str) -> None:
        """Make ``name`` the active limit profile (stored; TradeDecision.limit_profile is ``guard.profile.name``)."""
        trading_risk.set_profile(self, name)

    def switch_broker(self, broker: Broker) -> None:
        self.service.switch_broker(broker)
        self.broker_changed.emit(self)

    # --- orders (everything through the service: the gate cannot be skipped) -------------------------------
    def preview(self, request: OrderRequest) -> Any:
        """The gate's verdict on ``request`` now, without approving it (the ticket shows it before sending)."""
        return self.service.preview(request)

    def what_if(self, request: OrderRequest) -> WhatIf | None:
        return self.broker.what_if(request)

    def place(self, request: OrderRequest) -> Any:
        """Gate, store and send; returns ``PlaceResult(state, verdict)`` (refused: stored REJECTED with why)."""
        return self.service.place(request)

    def modify(self, ref: str, *, limit: float | None = None, quantity: int | None = None) -> Any:
        return self.service.modify(ref, limit=limit, quantity=quantity)

    def cancel(self, ref: str) -> None:
        self.service.cancel(ref)

    def close_request(self, trade_id: int, *, quantity: int | None = None) -> OrderRequest:
        """The order that closes the open units of trade ``trade_id`` (the ticket opens with it): a limit at the
        package's mid now when every leg has a quote (tick-rounded; the ticket re-prices it), else a market order.

        Raises:
            TradeError: no such trade, or it has nothing open.
        """
        from spx_core.execution.ticks import round_to_tick
        from spx_core.portfolio.trades import TradeError, closing_request

        trade = self.repo.trade(trade_id)
        if trade is None:
            raise TradeError(f"no trade {trade_id} in the store")
        mark = trade.mark_price(self.market)  # opening convention; closing is the opposite side: same number
        limit = None
        if math.isfinite(mark):
            limit = round_to_tick(mark, combo=len(trade.legs) > 1, root=trade.legs[0].contract.root)
        return closing_request(trade, quantity=quantity, limit=limit, now_ns=self.market.now_ns(),
                               broker=self.broker_name, account=self.account, source="positions")

    def orders(self) -> list[OrderState]:
        return list(self.service.orders())

    # --- market and portfolio -------------------------------------------------------------------------------
    def on_batch(self, batch: QuoteBatch) -> None:
        """The feed's batch: new market view, resting paper orders checked, a portfolio refresh scheduled."""
        self.market.update(batch)
        for b in (batch, *batch.companions):
            self.settlement.observe(b.snapshot.underlying, b.snapshot.time_ns, b.snapshot.underlying_price)
        self._settle_due()
        broker = self.broker
        if isinstance(broker, MarketDriven):
            try:
                broker.on_market()
            except Exception:  # one bad fill check must not stop the feed (logged; the order stays working)
                log.exception("trading: the %s broker failed on a market update", broker.name)
        self._schedule()

    def _settle_due(self) -> None:
        """Book expiry settlement of every open position whose settlement price the feed has shown (one store
        transaction); a position whose close was not watched stays open and is logged once."""
        now = self.market.now_ns()
        if self._settle_stale:
            self._settle_stale = False
            self._settle_at = self._next_settlement(self.repo.positions())
        if self._settle_at is None or now < self._settle_at:
            return
        positions = self.repo.positions()
        due = self.settlement.settle_due(positions, now)
        if due.fills:
            self.repo.apply_settlement(due.fills, due.deliveries)
            log.info("trading: settled %d expired positions", len(due.fills))
            self._reload = True
            self._schedule()
        for contract in set(due.unresolved) - self._unsettled:
            log.warning("trading: %s expired but its settlement price was not seen by the feed; it stays open "
                        "until settled (spx-data positions shows it)", contract)
        self._unsettled |= set(due.unresolved)
        settled = {f.contract for f in due.fills}  # the rest are as read above: no second read of the store
        self._settle_at = self._next_settlement(p for p in positions if p.contract not in settled)

    def _next_settlement(self, positions: Any) -> int | None:
        # a position whose settlement price was missed never becomes settleable here: don't look again
        return self.settlement.next_instant(p for p in positions if p.contract not in self._unsettled)

    def _on_order(self, state: OrderState) -> None:
        if state.fills:
            self._reload = True
            self._settle_stale = True
        self.order_changed.emit(state)
        self._schedule()

    def _schedule(self) -> None:
        if not self._closed and not self._timer.isActive():
            self._timer.start()

    def refresh_portfolio(self) -> Portfolio:
        """Re-read positions and trades if fills arrived, re-mark them, compute the account; emit."""
        now = self.market.now_ns()
        start = day_start_ns(now) if now else 0
        if start > self._day_start:  # a new market day: today's P&L counts from the marks now
            self._roll_day(start)
        if self._reload:
            self._reload = False
            # every position ever (flat ones carry realized P&L into net liquidation); open and today's trades
            self._positions = tuple(self.repo.positions(closed_since_ns=0))
            self._trades = tuple(self.repo.trades(since_ns=start))
        from spx_core.portfolio.positions import marks_from_view

        contracts = {p.contract for p in self._positions if p.is_open} | {c for t in self._trades for c in t.contracts}
        marks = marks_from_view(self.market, contracts)
        positions = tuple(p.with_mark(marks.get(p.contract, math.nan)) for p in self._positions)
        account, reason = self._account(positions, start)
        self.portfolio = Portfolio(positions, self._trades, marks, account, now, start,
                                   self.market.snapshots, reason)
        self.portfolio_changed.emit(self.portfolio)
        trading_risk.after_refresh(self, self.portfolio)
        return self.portfolio

    def _roll_day(self, start: int) -> None:
        from spx_core.portfolio.positions import marks_from_view

        self._day_start = start
        held = [p.contract for p in self.repo.positions()]
        try:
            self.repo.start_day(start, marks_from_view(self.market, held))
        except Exception:  # the day figures become NaN (said by the account line); trading goes on
            log.exception("trading: rolling the day baseline to %d failed", start)
        self._reload = True

    def _account(self, positions: tuple[Any, ...], start: int) -> tuple[Any | None, str]:
        from spx_core.portfolio.account import account_summary

        try:
            summary = account_summary(self.starting_cash, positions, self._trades, self.market, start)
        except Exception as exc:  # the positions stay on screen without an account line; say why
            log.exception("trading: account summary failed")
            return None, f"account line unavailable: {type(exc).__name__}: {exc}"
        broker = self.broker
        figures = broker.account_figures() if isinstance(broker, AccountReporting) else None
        if figures is not None:  # the broker's account (IB: every position, deposits): its figures, not ours
            day = figures.day_pnl if math.isfinite(figures.day_pnl) else summary.day_pnl
            summary = dataclasses.replace(summary, net_liquidation=figures.net_liquidation,
                                          buying_power=figures.buying_power,
                                          maintenance_margin=figures.maintenance_margin, day_pnl=day)
        return summary, ""
