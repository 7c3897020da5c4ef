"""AppContext: the app-wide state panels share, so no panel needs to know another.

A panel publishes a selection here (the chain: "the user selected this contract / expiry") and any
panel that cares (builder, ticket, surface) listens; the main window owns the settings and the
store and publishes them here. One context per main window; panels get it through
``LivePanel.bind``.

Events (Qt signals; payload types in brackets):
    contract_selected(OptionContract): the user selected an option (e.g. a chain cell).
    expiry_selected(tuple[Root, date]): the user chose an expiry (e.g. the chain's selector).
    settings_changed(AppSettings): new settings were applied (and saved) by the main window.
    settings_requested(AppSettings): a panel asks for a settings change (the main window validates,
        applies and saves it, then emits ``settings_changed``).
    store_changed(Store | None): the database was opened, closed or switched.
    legs_changed(tuple[Leg, ...]): the strategy builder's legs changed (chain Ctrl-click, builder edits).
    structure_selected(Structure): a panel chose a whole structure (e.g. a scanner candidate); its legs
        are now the builder's (``legs_changed`` came first).
"""

from __future__ import annotations

import logging
from datetime import date
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal

from app.models.history_cache import HistoryCache
from app.settings import AppSettings, SettingsError
from app.shared_fits import SharedFits
from app.sim_history import SimulatedPast
from spx_core.domain import OptionContract, Root

if TYPE_CHECKING:
    from spx_core.storage import Store
    from spx_core.strategies.structure import Leg, Structure

__all__ = ["AppContext", "ExpiryKey"]

log = logging.getLogger(__name__)

#: An expiry as panels name it: (root, expiry date); SPX AM and SPXW PM can share a date.
ExpiryKey = tuple[Root, date]


class AppContext(QObject):
    contract_selected = Signal(object)
    expiry_selected = Signal(object)
    settings_changed = Signal(object)
    settings_requested = Signal(object)
    store_changed = Signal(object)
    legs_changed = Signal(object)
    structure_selected = Signal(object)

    def __init__(self, settings: AppSettings, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._settings = settings
        self._store: Store | None = None
        self._contract: OptionContract | None = None
        self._expiry: ExpiryKey | None = None
        self._legs: tuple[Leg, ...] = ()
        #: one chain-IV solve and surface fit per snapshot for every panel of the window (worker side)
        self.fits = SharedFits()
        #: the VaR return history of the window's store, read once a day for the risk panel and the ticket
        self.history_cache = HistoryCache()
        #: the simulated market's simulated past for the panels reading daily bars (the main window sets its
        #: config while the simulator runs; in memory only)
        self.simulated_past = SimulatedPast()

    # --- selections ---------------------------------------------------------------------------------------
    @property
    def contract(self) -> OptionContract | None:
        """The last selected contract (None before any)."""
        return self._contract

    def select_contract(self, contract: OptionContract) -> None:
        self._contract = contract
        self.contract_selected.emit(contract)

    @property
    def expiry(self) -> ExpiryKey | None:
        """The last chosen expiry (None before any)."""
        return self._expiry

    def select_expiry(self, key: ExpiryKey) -> None:
        if key != self._expiry:
            self._expiry = key
            self.expiry_selected.emit(key)

    @property
    def legs(self) -> tuple[Leg, ...]:
        """The strategy builder's legs (edit with ``app.models.builder_model``'s leg functions)."""
        return self._legs

    def set_legs(self, legs: tuple[Leg, ...] | list[Leg]) -> None:
        if tuple(legs) != self._legs:
            self._legs = tuple(legs)
            self.legs_changed.emit(self._legs)

    def select_structure(self, structure: Structure) -> None:
        self.set_legs(structure.legs)
        self.structure_selected.emit(structure)

    # --- services ------------------------------------------------------------------------------------------
    @property
    def settings(self) -> AppSettings:
        return self._settings

    def set_settings(self, settings: AppSettings) -> None:
        """Called by the main window once ``settings`` are applied and saved."""
        self._settings = settings
        self.settings_changed.emit(settings)

    def request_settings(self, **changes: object) -> bool:
        """A panel asks for these settings changes (e.g. ``strike_window=40``); False if they are invalid."""
        try:
            wanted = self._settings.with_changes(**changes)
        except SettingsError as exc:  # e.g. every chain column unticked: keep the saved settings
            log.warning("settings not changed: %s", exc)
            return False
        self.settings_requested.emit(wanted)
        return True

    @property
    def store(self) -> Store | None:
        """The open database (None until opened, or after a switch until reopened)."""
        return self._store

    def set_store(self, store: Store | None) -> None:
        if store is not self._store:
            self._store = store
            self.store_changed.emit(store)

    # --- trading (scanner "Trade" -> the order ticket of the issue "Orders and brokers") ---------------
    # Events: trade_requested(Structure): send this structure to the order ticket;
    #         ticket_changed(bool): an order ticket started (True) or stopped (False) listening;
    #         market_state_changed(MarketState): the Market panel computed a new state (scanner's gate).
    trade_requested = Signal(object)
    ticket_changed = Signal(bool)
    market_state_changed = Signal(object)
    _ticket = False
    market_state = None  # the last MarketState published (None before any)

    def set_market_state(self, state: object) -> None:
        self.market_state = state
        self.market_state_changed.emit(state)

    @property
    def ticket_available(self) -> bool:
        """An order ticket listens to ``trade_requested`` (panels disable their Trade buttons until then)."""
        return self._ticket

    def set_ticket_available(self, available: bool) -> None:
        if available != self._ticket:
            self._ticket = available
            self.ticket_changed.emit(available)

    def request_trade(self, structure: Structure) -> None:
        self.trade_requested.emit(structure)

    # --- orders (issue "Orders and brokers") -----------------------------------------------------------------
    # Events: order_requested(OrderRequest): open the ticket with this order (e.g. a trade's closing order);
    #         contract_traded(OptionContract, str): the user asked to trade one contract, "buy" or "sell"
    #             (chain double-click: the ask buys, the bid sells);
    #         trading_changed(TradingSession | None): the order service was started, switched or stopped.
    order_requested = Signal(object)
    contract_traded = Signal(object, str)
    trading_changed = Signal(object)
    _trading = None

    @property
    def trading(self):  # -> app.trading.TradingSession | None (untyped: context must not import it)
        """The order service of this window (paper broker by default); None until started."""
        return self._trading

    def set_trading(self, trading: object) -> None:
        if trading is not self._trading:
            self._trading = trading
            self.trading_changed.emit(trading)

    def request_order(self, request: object) -> None:
        self.order_requested.emit(request)

    def trade_contract(self, contract: OptionContract, side: str = "buy") -> None:
        """Open the order ticket on one contract; ``side`` "buy" or "sell" (``Side`` values)."""
        self.contract_traded.emit(contract, str(side))

    # --- alerts and automation (issue 10) ----------------------------------------------------------------------
    # Events: ops_changed(OpsSession | None): the window's alerts/automation service started, switched or stopped
    #         (it follows the trading session: one per order service).
    ops_changed = Signal(object)
    _ops = None

    @property
    def ops(self):  # -> app.ops_session.OpsSession | None (untyped: context must not import it)
        """The alerts and automation service of this window; None while there is no order service."""
        return self._ops

    def set_ops(self, ops: object) -> None:
        if ops is not self._ops:
            self._ops = ops
            self.ops_changed.emit(ops)
