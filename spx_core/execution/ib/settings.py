"""Connection settings for TWS / IB Gateway, and the rule that a live account needs a typed confirmation."""

from __future__ import annotations

from dataclasses import dataclass

from spx_core.execution.broker import BrokerError

__all__ = ["LIVE_CONFIRMATION", "LIVE_PORTS", "PAPER_PORTS", "IbSettings", "LiveTradingRefused"]

#: What the user types in the settings to allow live trading (compared exactly).
LIVE_CONFIRMATION = "I UNDERSTAND LIVE TRADING"
#: TWS live 7496, IB Gateway live 4001; TWS paper 7497, IB Gateway paper 4002.
LIVE_PORTS = frozenset({7496, 4001})
PAPER_PORTS = frozenset({7497, 4002})


class LiveTradingRefused(BrokerError):
    """A live port or a live account without live trading enabled and confirmed in the settings."""


@dataclass(frozen=True, slots=True)
class IbSettings:
    """How to reach TWS / IB Gateway.

    Attributes:
        host / port: where TWS or IB Gateway listens (paper TWS 7497 by default).
        client_id: the API client id (orders are bound to it; keep it stable so reconnects see our orders).
        account: the account orders go to ("" = the single managed account TWS reports).
        live_enabled / live_confirmation: live trading needs both: the switch on and :data:`LIVE_CONFIRMATION`
            typed exactly.
        orders_per_minute: new orders and modifies allowed per minute (cancels are never limited).
        messages_per_second: API messages allowed per second (TWS disconnects a client above 50/s).
        market_data_type: 1 live, 2 frozen, 3 delayed, 4 delayed-frozen (for the market-data helper).
        connect_timeout: seconds for the connection and its initial synchronization.
        request_timeout: seconds for any one request (qualification, what-if, reconciliation).
        reconnect_delay / reconnect_max_delay: seconds of the first retry after a drop, doubling up to the max.
        commission_wait: seconds a leg execution waits for its commission report before it is reported without.
        position_check_interval: seconds between comparisons of TWS's positions with the book while connected (a
            trade entered in TWS by hand, an assignment); 0 = only after each (re)connect.
    """

    host: str = "127.0.0.1"
    port: int = 7497
    client_id: int = 17
    account: str = ""
    live_enabled: bool = False
    live_confirmation: str = ""
    orders_per_minute: int = 60
    messages_per_second: float = 45.0
    market_data_type: int = 1
    connect_timeout: float = 10.0
    request_timeout: float = 10.0
    reconnect_delay: float = 1.0
    reconnect_max_delay: float = 30.0
    commission_wait: float = 3.0
    position_check_interval: float = 300.0

    def __post_init__(self) -> None:
        if not self.host:
            raise ValueError("IB host is empty; use 127.0.0.1 for TWS on this machine")
        if not 0 < self.port < 65536:
            raise ValueError(f"IB port {self.port} is not a TCP port; TWS paper listens on 7497")
        if self.orders_per_minute <= 0 or self.messages_per_second <= 0:
            raise ValueError("IB rate limits must be positive")
        if self.market_data_type not in (1, 2, 3, 4):
            raise ValueError(f"market_data_type {self.market_data_type} must be 1 (live), 2, 3 (delayed) or 4")
        if min(self.connect_timeout, self.request_timeout, self.reconnect_delay, self.commission_wait) <= 0:
            raise ValueError("IB timeouts and delays must be positive seconds")
        if not self.position_check_interval >= 0:
            raise ValueError(f"IB position check interval {self.position_check_interval} must be >= 0 seconds "
                             f"(0 = only after each reconnect)")

    @property
    def live_allowed(self) -> bool:
        return self.live_enabled and self.live_confirmation == LIVE_CONFIRMATION

    @property
    def is_live_port(self) -> bool:
        return self.port in LIVE_PORTS

    def check_port(self) -> None:
        """Refuse a live port unless live trading is enabled and confirmed (one line saying how)."""
        if self.is_live_port and not self.live_allowed:
            raise LiveTradingRefused(
                f"port {self.port} is a LIVE trading port; use the paper port 7497 (TWS) or 4002 (Gateway), or "
                f"enable live trading in the settings and type {LIVE_CONFIRMATION!r} to confirm")

    def check_account(self, account: str) -> None:
        """Refuse a live account (paper accounts start with D) unless live trading is enabled and confirmed."""
        if not is_paper_account(account) and not self.live_allowed:
            raise LiveTradingRefused(
                f"account {account or '?'} is a LIVE account (paper accounts start with D); log TWS into the "
                f"paper account, or enable live trading in the settings and type {LIVE_CONFIRMATION!r} to confirm")


def is_paper_account(account: str) -> bool:
    """IB paper accounts start with D (DU..., DF...)."""
    return account.startswith("D")
