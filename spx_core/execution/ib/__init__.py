"""Interactive Brokers: the connection, contracts and the broker adapter (ib_insync, or ib_async if installed)."""

from spx_core.execution.ib.broker import IbBroker
from spx_core.execution.ib.connection import (
    ConnectionState,
    ConnectionStatus,
    IbConnection,
    NotConnected,
)
from spx_core.execution.ib.settings import (
    LIVE_CONFIRMATION,
    IbSettings,
    LiveTradingRefused,
)

__all__ = [
    "LIVE_CONFIRMATION",
    "ConnectionState",
    "ConnectionStatus",
    "IbBroker",
    "IbConnection",
    "IbSettings",
    "LiveTradingRefused",
    "NotConnected",
]
