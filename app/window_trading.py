"""The main window's order side: the trading session (gate -> broker -> store) and, on it, alerts and automation.

A mixin of :class:`app.main_window.MainWindow` (its ``store``, ``settings``, ``context``, ``feed``, ``status``
and ``settings_changed``): :meth:`start_trading` runs once the database is open (and again after a settings
change that restarts the broker), :meth:`stop_trading` at shutdown. Plain methods only: the window's Qt slots
stay on the QMainWindow class itself.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from spx_core.marketdata.source import SourceKind, SourceState

if TYPE_CHECKING:
    from spx_core.storage import Store

log = logging.getLogger("app.main_window")

__all__ = ["TradingWindowMixin"]


class TradingWindowMixin:
    """Opens and closes the window's TradingSession and OpsSession (see the module docstring)."""

    _trading_store: Store | None
    trading_db: str | None

    def start_trading(self) -> None:
        """Open the order service on the open database (restores working orders and positions); idempotent.

        A failure (an unusable database, a broker this build lacks) is one status line; the market runs on."""
        if self.store is None or self.context.trading is not None:
            return
        from app.trading_setup import open_session

        try:
            store = self.store
            if self.trading_db is not None:  # --self-test: orders in their own file, not the user's book
                from spx_core.storage import Store

                store = self._trading_store = Store.open(self.trading_db)
            session = open_session(store, self.settings, parent=self)
        except Exception as exc:
            log.exception("cannot start the order service")
            self.status.showMessage(f"Orders unavailable: {exc}", 15_000)
            return
        self.feed.batch.connect(session.on_batch)
        session.broker_changed.connect(self.status.set_trading)
        session.risk_changed.connect(self.status.set_risk)
        if self.feed.last_batch is not None:
            session.on_batch(self.feed.last_batch)
        self.context.set_trading(session)
        self._start_ops(session, store)

    def _start_ops(self, session: Any, store: Store) -> None:
        """Alerts and automation on the trading session (same store); a failure is one status line."""
        from app.ops_session import OpsSession

        try:
            ops = OpsSession(session, store, self.settings, fits=self.context.fits, stage=self.context.request_order,
                             market_state=lambda: self.context.market_state, expects_data=self._expects_data,
                             parent=self)
        except Exception as exc:
            log.exception("cannot start alerts and automation")
            self.status.showMessage(f"Alerts and automation unavailable: {exc}", 15_000)
            return
        self.feed.batch.connect(ops.on_batch)
        ops.alerts_changed.connect(self.status.set_alerts)
        self.settings_changed.connect(ops.apply_settings)
        self.status.set_alerts(ops.recent())
        self.context.set_ops(ops)

    def _expects_data(self) -> bool:
        """Data silence is trouble: a live source (not a replay, whose quiet spells are the data's) that runs."""
        src = self.feed.source
        return (src is not None and src.status.state is SourceState.RUNNING
                and self.feed.kind is not SourceKind.REPLAY)

    def stop_trading(self) -> None:
        session = self.context.trading
        if session is None:
            return
        ops = self.context.ops
        if ops is not None:
            self.feed.batch.disconnect(ops.on_batch)
            self.settings_changed.disconnect(ops.apply_settings)
            self.context.set_ops(None)
            self.status.set_alerts(None)
            ops.close()
            ops.deleteLater()
        self.feed.batch.disconnect(session.on_batch)
        self.context.set_trading(None)
        session.close()
        if self._trading_store is not None:
            self._trading_store.close()
            self._trading_store = None
