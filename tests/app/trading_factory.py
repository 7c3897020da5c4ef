"""Plain builders for the trading tests (no fixtures): a simulated market during hours, a session on a real
SQLite file, and batches to drive it."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from app.settings import AppSettings
from app.trading import TradingSession, open_session
from spx_core.domain import ET
from spx_core.marketdata.simulator import SimulatedMarket, SimulatorConfig
from spx_core.storage import Store

#: a Wednesday morning: every SPXW series trades, the nearest expiry after today is two days out
START = datetime(2024, 3, 13, 11, 0, tzinfo=ET)


def sim_market(seed: int = 5) -> SimulatedMarket:
    return SimulatedMarket(SimulatorConfig(seed=seed, start=START))


def session_on(path: Path, **settings: object) -> tuple[TradingSession, Store]:
    """A started session (paper broker) on the SQLite file ``path`` (portfolio refreshes without delay)."""
    store = Store.open(path)
    return open_session(store, AppSettings(**settings), refresh_ms=0), store


def drive(session: TradingSession, market: SimulatedMarket, seconds: float = 1.0, steps: int = 1) -> None:
    """Feed ``steps`` simulated batches ``seconds`` apart to the session (fills due rest orders)."""
    for _ in range(steps):
        session.on_batch(market.advance(seconds))
