"""Plain builders for the trading tests (no fixtures): a simulated market during hours, a session on a real
SQLite file, batches to drive it, a panel bound to it, and order states built from events (the blotter's and
the positions' model tests)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any

from app.context import AppContext
from app.settings import AppSettings
from app.trading import TradingSession
from app.trading_setup import open_session
from spx_core.domain import ET, OptionContract, Right, Root
from spx_core.execution.orders import EventKind, Fill, OrderEvent, OrderRequest, OrderState, OrderStatus, Side, apply
from spx_core.marketdata.simulator import SimulatedMarket, SimulatorConfig
from spx_core.storage import Store
from spx_core.strategies.structure import Leg

#: a Wednesday morning: every SPXW series trades, the nearest expiry after today is two days out
START = datetime(2024, 3, 13, 11, 0, tzinfo=ET)
T0 = int(START.timestamp()) * 1_000_000_000  # START in epoch nanoseconds
#: the legs of the 25-wide put credit vertical of the model tests (SPXW, two days after START)
SHORT_PUT = OptionContract(Root.SPXW, date(2024, 3, 15), 5100.0, Right.PUT)
LONG_PUT = OptionContract(Root.SPXW, date(2024, 3, 15), 5075.0, Right.PUT)


def sim_market(seed: int = 5) -> SimulatedMarket:
    return SimulatedMarket(SimulatorConfig(seed=seed, start=START))


def session_on(path: Path, **settings: object) -> tuple[TradingSession, Store]:
    """A started session (paper broker) on the SQLite file ``path`` (portfolio refreshes without delay)."""
    store = Store.open(path)
    return open_session(store, AppSettings(**settings), refresh_ms=0), store


@contextmanager
def running_session(path: Path, market: SimulatedMarket | None = None) -> Iterator[TradingSession]:
    """:func:`session_on` ``path``, fed one batch of ``market`` when given; closed (session, then store) on exit."""
    session, store = session_on(path)
    try:
        if market is not None:
            drive(session, market)
        yield session
    finally:
        session.close()
        store.close()


def drive(session: TradingSession, market: SimulatedMarket, seconds: float = 1.0, steps: int = 1) -> None:
    """Feed ``steps`` simulated batches ``seconds`` apart to the session (fills due rest orders)."""
    for _ in range(steps):
        session.on_batch(market.advance(seconds))


def show_panel(qtbot: Any, panel: Any, session: TradingSession, size: tuple[int, int]) -> AppContext:
    """Bind ``panel`` to a new context, show it at ``size`` and hand the context ``session`` (as the window does
    once its order service is up). The caller shuts the panel down."""
    context = AppContext(AppSettings(seed=3))
    panel.bind(context)
    qtbot.addWidget(panel)
    panel.resize(*size)
    panel.show()
    context.set_trading(session)
    return context


# --- order states from events (no broker) ------------------------------------------------------------------
def put_vertical(ref: str, created_ns: int, side: Side = Side.SELL, **fields: Any) -> OrderRequest:
    """2 lots of the 25-wide put credit vertical (+1 SHORT_PUT, -1 LONG_PUT) at a 1.45 limit."""
    return OrderRequest(ref=ref, legs=(Leg(SHORT_PUT, 1), Leg(LONG_PUT, -1)), side=side, quantity=2, limit=1.45,
                        created_ns=created_ns, name="25-wide put credit vertical", **fields)


def with_status(state: OrderState, t: int, status: OrderStatus, **fields: Any) -> OrderState:
    """``state`` after the broker's status event at ``t`` (``fields``: reason, broker_order_id)."""
    return apply(state, OrderEvent(state.ref, EventKind.STATUS, t, status=status, **fields))


def with_fill(state: OrderState, fill_id: str, leg: int, quantity: int, price: float, t: int, *,
              commission: float, fees: float) -> OrderState:
    """``state`` after a fill of ``quantity`` contracts of its leg ``leg`` at ``price`` (on that leg's side)."""
    request = state.request
    fill = Fill(fill_id, leg, request.legs[leg].contract, request.leg_side(leg), quantity, price, t, commission, fees)
    return apply(state, OrderEvent(state.ref, EventKind.FILL, t, fill=fill))
