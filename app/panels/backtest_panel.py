"""Backtest panel: run a strategy preset over the stored snapshots and look at the result (issue 11 §5).

The panel is a thin :class:`~app.panels.base.LivePanel` shell: its content (:class:`~app.panels.backtest_view.
BacktestView`: the config form, Run / Cancel with progress and ETA, the result tabs, exports, the Sweep tab) is
built the first time the panel is shown, so the backtest's imports (pandas, the engine, SQLAlchemy) stay off the
window's start-up path (``tests/app/test_shell.py`` checks it).

It reads stored data, not the market feed: ``job`` is None (batches are only buffered by the base). It follows the
window's database (``AppContext.store_changed``); its self-test health is the view's ("a run shown with its charts
populated" once a run was asked; nothing to check before).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtWidgets import QFrame, QScrollArea, QVBoxLayout, QWidget

from app.panels.base import Job, LivePanel

if TYPE_CHECKING:
    from app.context import AppContext
    from app.panels.backtest_view import BacktestView
    from spx_core.marketdata.source import QuoteBatch

__all__ = ["BacktestPanel"]


class BacktestPanel(LivePanel):
    """See the module docstring; :attr:`view` is the content (built on the first show, or by :meth:`ensure_view`)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, job_name="backtest panel", refresh_seconds=5.0)
        self.setObjectName("backtest_panel")
        self._view: BacktestView | None = None
        self._store: Any = None
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)

    @classmethod
    def create(cls, context: AppContext) -> BacktestPanel:
        return cls()

    def bind(self, context: AppContext) -> None:
        super().bind(context)
        context.store_changed.connect(self.set_store)
        context.settings_changed.connect(self._follow_costs)
        self.set_store(context.store)

    def set_store(self, store: Any) -> None:
        """Follow the window's database (the view reads its file when it is built)."""
        self._store = store
        if self._view is not None:
            self._view.set_store(store)

    @property
    def view(self) -> BacktestView:
        return self.ensure_view()

    def ensure_view(self) -> BacktestView:
        if self._view is None:
            from app.panels.backtest_view import BacktestView

            self._view = BacktestView(self)
            # in a scroll area: the form + tabs' own minimum width (~870 px) must not force the whole dock column
            # that wide (it is tabbed with the chain; at 1280x720 the surface column would lose its room)
            scroll = QScrollArea(self)
            scroll.setWidgetResizable(True)
            scroll.setFrameShape(QFrame.Shape.NoFrame)
            scroll.setWidget(self._view)
            self._layout.addWidget(scroll)
            self._view.set_store(self._store)
            if self.context is not None:
                self._follow_costs(self.context.settings)
        return self._view

    def _follow_costs(self, settings: Any) -> None:
        """The form's default costs are the paper broker's (Settings > Costs): a backtest charges what paper does."""
        if self._view is not None:
            self._view.form.set_costs(settings.fee_schedule())

    def showEvent(self, event: Any) -> None:
        self.ensure_view()
        super().showEvent(event)

    # --- LivePanel hooks ---------------------------------------------------------------------------------------
    def job(self, batch: QuoteBatch) -> Job | None:
        return None  # stored data only: the live feed is not this panel's input

    def status_message(self, text: str) -> None:
        if self._view is not None:
            self._view.status_label.setText(text)

    def health(self) -> tuple[bool, str]:
        if self._view is None:
            return True, "backtest: not opened yet (the self-test runs one)"
        return self._view.health()

    def shutdown(self) -> None:
        if self._view is not None:
            self._view.shutdown()
        super().shutdown()
