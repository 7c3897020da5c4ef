"""Building the trading session from the settings: the broker they name (paper by default, Interactive
Brokers when chosen), the gate with the live-trading switch and the risk guard (the active limit profile and
the circuit breaker as its ``limits`` hook), the order service on the store.

Kept apart from :mod:`app.trading` (the session itself) so that module stays about the running session.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject

from app.settings import AppSettings
from app.trading import REFRESH_MS, FeedMarket, TradingSession
from app.trading_risk import attach_guard, store_close_all

if TYPE_CHECKING:
    from spx_core.execution.broker import Broker
    from spx_core.storage import Store

__all__ = ["BrokerUnavailable", "ib_broker", "live_trading_allowed", "open_session", "paper_broker"]


def live_trading_allowed(settings: AppSettings) -> bool:
    """The user switched live trading on and typed the confirmation (the gate's ``live_trading``; the IB
    connection applies the same rule to live ports and accounts)."""
    if settings.broker != "ib" or not settings.ib_live_enabled:
        return False
    from spx_core.execution.ib.settings import LIVE_CONFIRMATION

    return settings.ib_live_confirmation == LIVE_CONFIRMATION


def ib_broker(settings: AppSettings) -> Broker:
    """The Interactive Brokers broker the settings describe (not connected yet: :meth:`TradingSession.start`
    connects it on the running loop)."""
    from spx_core.execution.ib import IbBroker, IbConnection, IbSettings

    ib = IbSettings(host=settings.ib_host, port=settings.ib_port, client_id=settings.ib_client_id,
                    account=settings.ib_account, live_enabled=settings.ib_live_enabled,
                    live_confirmation=settings.ib_live_confirmation)
    return IbBroker(IbConnection(ib))


def paper_broker(settings: AppSettings, market: FeedMarket) -> Broker:
    """The paper broker the settings describe (fill model, latency, the commissions and fees of Settings > Costs)."""
    from spx_core.execution.fill_model import FillModel
    from spx_core.execution.paper import PaperBroker

    model = FillModel(mode=settings.fill_model, offset=settings.fill_offset)
    return PaperBroker(market, fees=settings.fee_schedule(), fill_model=model,
                       latency_ns=int(settings.latency_ms) * 1_000_000)


class BrokerUnavailable(RuntimeError):
    """The broker the settings name cannot be used in this build; the message says what to do."""


def open_session(store: Store, settings: AppSettings, *, broker: Callable[[FeedMarket], Broker] | None = None,
                 parent: QObject | None = None, refresh_ms: int = REFRESH_MS) -> TradingSession:
    """A started session on ``store`` with the broker the settings name (``broker(market)`` builds another).

    Raises:
        BrokerUnavailable: the settings name Interactive Brokers and no IB client library is installed.
    """
    from spx_core.execution.gate import GateSettings, PreTradeGate
    from spx_core.execution.service import OrderService
    from spx_core.risk.guard import RiskGuard
    from spx_core.storage.orders_repo import OrderRepository
    from spx_core.storage.risk_repo import RiskRepository

    market = FeedMarket()
    if broker is not None:
        built = broker(market)
    elif settings.broker == "ib":
        try:
            built = ib_broker(settings)
        except ImportError as exc:  # neither ib_insync nor ib_async is installed
            raise BrokerUnavailable(f"Interactive Brokers needs ib_insync or ib_async ({exc}); install one, or "
                                    f"choose \"paper\" in Settings") from None
    else:
        built = paper_broker(settings, market)
    repo = OrderRepository(store)
    risk = RiskRepository(store)
    store_close_all(risk, settings.close_all_on_breaker)
    guard = RiskGuard(repo, risk, clock=market.now_ns)  # the active limit profile and the circuit breaker
    gate = PreTradeGate(GateSettings(live_trading=live_trading_allowed(settings)), limits=guard)
    service = OrderService(repo, built, gate, market)
    session = TradingSession(service, repo, market, starting_cash=settings.starting_cash, gate=gate,
                             refresh_ms=refresh_ms, parent=parent)
    attach_guard(session, guard)
    session.start()
    return session
