"""Main window: docks for the panels, layout persistence, menus, theme, status bar, source toolbar.

Panels are registered in ONE place, :data:`PANELS` (a :class:`PanelSpec` per panel: key, title, class,
dock area); the window builds, docks, feeds, self-tests and shuts down every registered panel in loops
(napari's ``add_dock_widget`` is the model). Adding a panel = its file + one line in :data:`PANELS`.
"""

from __future__ import annotations

import logging
import platform
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtCore import QByteArray, Qt, QTimer, Signal
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QCloseEvent,
    QIcon,
    QKeySequence,
    QShowEvent,
)
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QMainWindow,
    QMenu,
    QMessageBox,
    QWidget,
)
from qasync import asyncSlot

from app.context import AppContext
from app.feed import Feed
from app.panels.alerts_panel import AlertsPanel
from app.panels.automation_panel import AutomationPanel
from app.panels.backtest_panel import BacktestPanel
from app.panels.base import LivePanel
from app.panels.blotter_panel import BlotterPanel
from app.panels.builder_panel import BuilderPanel
from app.panels.chain_panel import ChainPanel
from app.panels.market_panel import MarketPanel
from app.panels.positions_panel import PositionsPanel
from app.panels.risk_panel import RiskPanel
from app.panels.scanner_panel import ScannerPanel
from app.panels.surface_panel import SurfacePanel
from app.panels.ticket_panel import TicketPanel
from app.resources import ResourceMissingError, icon_path, style_path
from app.settings import COST_FIELDS, AppSettings, qsettings, save_settings
from app.source_toolbar import SourceToolBar
from app.status_bar import TerminalStatusBar
from app.window_feed import FeedWindowMixin
from app.window_trading import TradingWindowMixin
from spx_core.marketdata.source import (
    QuoteBatch,
    Seekable,
    SourceKind,
    SourceState,
    SourceStatus,
)
from spx_core.paths import database_path

if TYPE_CHECKING:
    from spx_core.storage import Store

log = logging.getLogger(__name__)

__all__ = ["PANELS", "MainWindow", "PanelSpec", "apply_theme"]

#: Bump when the dock set changes so an old saved layout is not applied to a new window.
LAYOUT_VERSION = 7


@dataclass(frozen=True, slots=True)
class PanelSpec:
    """How a panel docks in.

    Attributes:
        key: stable id; the dock's objectName is ``dock_<key>`` (keys the saved layout).
        title: the dock's title (also its entry in the View menu).
        panel: the panel class; built with ``panel.create(context)``.
        area: the dock area; panels sharing an area sit side by side, left to right in list order.
        stretch: relative width among the panels of its area in the default layout.
        tab_with: key of a panel to share a dock with as a tab (that panel stays in front by default).
    """

    key: str
    title: str
    panel: type[LivePanel]
    area: Qt.DockWidgetArea = Qt.DockWidgetArea.LeftDockWidgetArea
    stretch: int = 1
    tab_with: str = ""


#: Every panel of the terminal, in dock order (the one place a panel is registered).
PANELS: tuple[PanelSpec, ...] = (
    PanelSpec("chain", "Option chain", ChainPanel, stretch=3),  # what a trader reads most: ~60% of the width
    PanelSpec("surface", "Volatility surface", SurfacePanel, stretch=2),
    PanelSpec("builder", "Strategy builder", BuilderPanel, tab_with="surface"),  # comes forward when legs are picked
    # a glance, not a workspace: as a third column it took a fifth of a 1280 px screen from the chain and the
    # builder; as a tab it still feeds the scanner's entry gate (it computes while covered)
    PanelSpec("market", "Market", MarketPanel, tab_with="surface"),
    PanelSpec("scanner", "Spread scanner", ScannerPanel, tab_with="chain"),  # a tab behind the chain
    PanelSpec("ticket", "Order ticket", TicketPanel, tab_with="surface"),  # comes forward when a trade is asked
    # tabs behind the chain, not a strip along the bottom: at 1280x720 a strip took the builder's chart down to
    # ~190 px (the tables are as wide as the chain; the ticket and the panel's status lines report fills)
    PanelSpec("positions", "Positions", PositionsPanel, tab_with="chain"),
    PanelSpec("blotter", "Orders", BlotterPanel, tab_with="chain"),
    PanelSpec("risk", "Risk", RiskPanel, tab_with="chain"),  # portfolio & risk, beside the positions it sums up
    PanelSpec("alerts", "Alerts", AlertsPanel, tab_with="chain"),  # beside the orders: a rejection shows in both
    PanelSpec("automation", "Automation", AutomationPanel, tab_with="chain"),  # strategies, decisions, summary
    PanelSpec("backtest", "Backtest", BacktestPanel, tab_with="chain"),  # stored data: a workspace of its own
)


def _trading_settings(settings: AppSettings) -> tuple[object, ...]:
    """The settings the order service is built from (a change restarts it): the broker, the paper account's
    (its costs too) and the IB connection's."""
    return tuple(getattr(settings, f) for f in settings.__dataclass_fields__
                 if f in ("broker", "starting_cash", "fill_model", "fill_offset", "latency_ms", "close_all_on_breaker")
                 or f.startswith("ib_") or f in COST_FIELDS)


def apply_theme(app: QApplication, theme: str) -> None:
    """Apply the dark or light style sheet (Fusion style underneath for consistent metrics)."""
    app.setStyle("Fusion")
    try:
        app.setStyleSheet(style_path(theme).read_text(encoding="utf-8"))
    except ResourceMissingError:
        log.exception("theme %s unavailable; using the plain Fusion style", theme)
        app.setStyleSheet("")


class MainWindow(FeedWindowMixin, TradingWindowMixin, QMainWindow):
    """The terminal window. ``start_feed()`` starts the configured source once the window is shown."""

    settings_changed = Signal(object)
    closed = Signal()

    def __init__(self, settings: AppSettings, *, source: str = "sim", db_path: str | None = None,
                 panels: Sequence[PanelSpec] = PANELS) -> None:
        super().__init__()
        self.setObjectName("main_window")
        self.setWindowTitle("SPX Terminal")
        self.context = AppContext(settings, self)
        self.initial_source = source
        #: a separate database for orders (``--self-test`` trades there); None = the window's database
        self.trading_db: str | None = None
        self._trading_store: Store | None = None
        self.db_path = database_path(db_path or settings.db_path or None)
        #: compile the pricing kernels in the background when the feed starts (main() sets it; tests don't)
        self.warm_up_pricing = False
        try:
            self.setWindowIcon(QIcon(str(icon_path())))
        except ResourceMissingError:
            log.warning("app icon missing")
        self.setDockOptions(QMainWindow.DockOption.AllowNestedDocks | QMainWindow.DockOption.AllowTabbedDocks
                            | QMainWindow.DockOption.AnimatedDocks)
        self.feed = Feed(self)
        self._sessions_refreshing = False  # a session-list refresh is in flight
        self.toolbar = SourceToolBar(self)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, self.toolbar)
        self.status = TerminalStatusBar(self)
        self.setStatusBar(self.status)
        self.specs: list[PanelSpec] = []
        self.panels: dict[str, LivePanel] = {}
        self.docks: dict[str, QDockWidget] = {}
        for spec in panels:
            self.add_panel(spec)
        self._build_menus()
        self._wire()
        self.resize(1600, 980)
        self._default_split()
        self._default_state = self.saveState(LAYOUT_VERSION)
        self._layout_restored = self.restore_layout()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not self._layout_restored:
            self._layout_restored = True
            QTimer.singleShot(0, self._default_split)
            QTimer.singleShot(250, self._default_split)  # window managers may resize after mapping

    def _default_split(self) -> None:
        # each area's panels share its width by their stretch. Run again just after the window shows; by then
        # the user (or a test) may already have floated or closed a dock: that is no longer the default layout,
        # so neither re-split it nor save it as the default (Reset layout would restore the floating dock)
        if self.isVisible() and any(dock.isFloating() or not dock.toggleViewAction().isChecked()
                                    for dock in self.docks.values()):
            return
        width = max(self.width(), 1000)
        for area in dict.fromkeys(spec.area for spec in self.specs):
            specs = [spec for spec in self.specs if spec.area == area and spec.tab_with not in self.docks]
            total = sum(spec.stretch for spec in specs)
            self.resizeDocks([self.docks[spec.key] for spec in specs],
                             [int(width * spec.stretch / total) for spec in specs], Qt.Orientation.Horizontal)
        self._default_state = self.saveState(LAYOUT_VERSION)

    # --- panels and layout --------------------------------------------------------------------------
    def add_panel(self, spec: PanelSpec) -> LivePanel:
        """Build, dock, feed and bind the panel of ``spec`` (its dock's objectName ``dock_<key>`` keys the layout)."""
        if spec.key in self.panels:
            raise ValueError(f"panel key {spec.key!r} is registered twice; keys must be unique")
        panel = spec.panel.create(self.context)
        panel.bind(self.context)
        self.feed.batch.connect(panel.on_batch)
        neighbour = next((self.docks[s.key] for s in reversed(self.specs)
                          if s.area == spec.area and s.tab_with not in self.docks), None)
        dock = self._dock(spec.key, spec.title, panel, spec.area)
        if spec.tab_with in self.docks:  # (a partner not registered before it: side by side instead)
            self.tabifyDockWidget(self.docks[spec.tab_with], dock)
            self.docks[spec.tab_with].raise_()  # the partner stays in front
        elif neighbour is not None:
            self.splitDockWidget(neighbour, dock, Qt.Orientation.Horizontal)
        self.specs.append(spec)
        self.panels[spec.key] = panel
        return panel

    def show_dock(self, key: str) -> bool:
        """Bring panel ``key``'s dock forward (shown, its tab in front); False when no such panel."""
        dock = self.docks.get(key)
        if dock is None:
            return False
        dock.show()
        dock.raise_()
        return True

    def _dock(self, key: str, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock_{key}")
        dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable
                         | QDockWidget.DockWidgetFeature.DockWidgetClosable)
        self.addDockWidget(area, dock)
        self.docks[key] = dock
        return dock

    @property
    def settings(self) -> AppSettings:
        """The applied settings (kept in the context: panels follow them from there)."""
        return self.context.settings

    @settings.setter
    def settings(self, settings: AppSettings) -> None:
        self.context.set_settings(settings)

    @property
    def store(self) -> Store | None:
        """The open database (shared with the panels through the context)."""
        return self.context.store

    @store.setter
    def store(self, store: Store | None) -> None:
        if store is not self.context.store:
            self.stop_trading()  # orders are written to the database they were placed in
        self.context.set_store(store)

    def save_layout(self) -> None:
        store = qsettings()
        store.setValue("layout/geometry", self.saveGeometry())
        store.setValue("layout/state", self.saveState(LAYOUT_VERSION))
        store.sync()

    def restore_layout(self) -> bool:
        """Restore the saved geometry and dock state; False when none was saved (or it was unusable)."""
        store = qsettings()
        geometry, state = store.value("layout/geometry"), store.value("layout/state")
        if not isinstance(geometry, QByteArray) or not isinstance(state, QByteArray):
            return False
        self.restoreGeometry(geometry)
        return bool(self.restoreState(state, LAYOUT_VERSION))

    def reset_layout(self) -> None:
        """Back to the default docks (all visible, default sizes) and forget the saved layout."""
        for dock in self.docks.values():
            dock.setFloating(False)
            dock.show()
        self.restoreState(self._default_state, LAYOUT_VERSION)
        store = qsettings()
        store.remove("layout")
        store.sync()

    # --- menus -----------------------------------------------------------------------------------------
    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self.settings_action = self._action(file_menu, "&Settings...", QKeySequence.StandardKey.Preferences,
                                            self.open_settings, shortcut_fallback="Ctrl+,")
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", QKeySequence.StandardKey.Quit, self.close, shortcut_fallback="Ctrl+Q")
        data_menu = bar.addMenu("&Data")
        self._action(data_menu, "&Simulated market", "Ctrl+1", lambda: self.toolbar.source_requested.emit("sim", ""))
        data_menu.addAction(self.toolbar.pause_action)
        for panel in self.panels.values():
            for action in panel.menu_actions():
                data_menu.addAction(action)
        view_menu = bar.addMenu("&View")
        for dock in self.docks.values():
            view_menu.addAction(dock.toggleViewAction())
        view_menu.addSeparator()
        self._action(view_menu, "Reset &layout", "Ctrl+Shift+R", self.reset_layout)
        theme_menu = view_menu.addMenu("&Theme")
        self.theme_group = QActionGroup(self)
        for theme, key in (("dark", "Ctrl+Shift+D"), ("light", "Ctrl+Shift+L")):
            act = self._action(theme_menu, theme.title(), key, lambda _=False, t=theme: self.set_theme(t))
            act.setCheckable(True)
            act.setChecked(theme == self.settings.theme)
            act.setObjectName(f"theme_{theme}")
            self.theme_group.addAction(act)
        risk_menu = bar.addMenu("&Risk")
        self._action(risk_menu, "&Limit profiles...", "Ctrl+Alt+L", self.open_profiles)
        help_menu = bar.addMenu("&Help")
        self._action(help_menu, "&About SPX Terminal", "F1", self.show_about)

    def _action(self, menu: QMenu, text: str, shortcut: str | QKeySequence.StandardKey, slot: Callable[[], object],
                *, shortcut_fallback: str = "") -> QAction:
        act = QAction(text, self)
        keys = QKeySequence(shortcut) if not isinstance(shortcut, QKeySequence.StandardKey) else None
        if keys is None:
            keys = QKeySequence.keyBindings(shortcut)
            act.setShortcuts(keys or [QKeySequence(shortcut_fallback)])
        else:
            act.setShortcut(keys)
        act.triggered.connect(slot)
        menu.addAction(act)
        return act

    def about_text(self) -> str:
        import numpy
        import pyqtgraph
        import PySide6

        from spx_core import __version__

        return (f"<b>SPX Terminal</b> {__version__}<br>SPX/SPXW options: chain, volatility surface, "
                f"simulated market and replay.<br><br>Python {platform.python_version()}<br>"
                f"Qt {PySide6.QtCore.qVersion()} / PySide6 {PySide6.__version__}<br>"
                f"pyqtgraph {pyqtgraph.__version__}<br>numpy {numpy.__version__}<br>"
                f"Database: {self.db_path}")

    def show_about(self) -> None:
        QMessageBox.about(self, "About SPX Terminal", self.about_text())

    # --- settings and theme -------------------------------------------------------------------------------
    def set_theme(self, theme: str) -> None:
        self.apply_settings(self.settings.with_changes(theme=theme))

    def apply_settings(self, new: AppSettings) -> None:
        """Apply and persist settings; the simulator restarts when its seed changed."""
        old, self.settings = self.settings, new
        save_settings(new)
        if new.theme != old.theme:
            apply_theme(QApplication.instance(), new.theme)
            for act in self.theme_group.actions():
                act.setChecked(act.objectName() == f"theme_{new.theme}")
        if new.speed != old.speed and self._mode() == "sim":
            self._set_speed(new.speed)
        if new.db_path != old.db_path:
            self.db_path = database_path(new.db_path or None)
            self.store = None
        elif _trading_settings(new) != _trading_settings(old) and self.store is not None:
            self.stop_trading()  # the new broker adopts the working orders on restore
            self.start_trading()
        self.settings_changed.emit(new)
        if new.seed != old.seed and self._mode() == "sim":
            self._switch("sim", "")

    def open_settings(self) -> None:
        from app.settings_dialog import SettingsDialog

        dialog = SettingsDialog(self.settings, self)
        if dialog.exec():
            self.apply_settings(dialog.result_settings())

    def open_profiles(self) -> None:
        from app.profile_dialog import open_profile_dialog

        open_profile_dialog(self.context.trading, self)

    # --- feed -----------------------------------------------------------------------------------------------
    def _wire(self) -> None:
        # each panel's feed is wired in add_panel
        self.feed.batch.connect(self.status.on_batch)
        self.feed.batch.connect(self._on_batch)
        self.feed.status.connect(self.status.on_status)
        self.feed.status.connect(self._on_status)
        self.feed.source_changed.connect(self._on_source_changed)
        self.toolbar.source_requested.connect(self._switch)
        self.toolbar.speed_requested.connect(self._set_speed)
        self.toolbar.pause_toggled.connect(self._set_paused)
        self.toolbar.seek_requested.connect(self._seek)
        self.context.settings_requested.connect(self.apply_settings)
        self.context.trading_changed.connect(self.status.set_trading)
        self.status.alerts_clicked.connect(lambda: self.show_dock("alerts"))
        self.toolbar.sessions_wanted.connect(self._on_sessions_wanted)
        self.toolbar.skip_gaps_toggled.connect(self._set_skip_gaps)
        if "market" in self.panels:  # the market state is app-wide: the scanner's entry gate reads it
            self.panels["market"].state_changed.connect(self.context.set_market_state)

    def _mode(self) -> SourceKind:
        """The running source's kind (SIM until one runs)."""
        return self.feed.kind or SourceKind.SIM

    def _on_source_changed(self, kind: SourceKind) -> None:
        # only the simulator has a simulated past; a replay or IB reads the store's bars alone
        config = getattr(self.feed.source, "config", None) if kind is SourceKind.SIM else None
        self.context.simulated_past.set_config(config)

    def _on_batch(self, _batch: QuoteBatch) -> None:
        src = self.feed.source
        if isinstance(src, Seekable):
            self.toolbar.set_position(src.position, src.length)
        self._show_pace()

    def _on_status(self, status: SourceStatus) -> None:
        if status.state is SourceState.ERROR:
            log.error("data source error: %s", status.message)
        if "chain" in self.panels:  # what an IB source streams ("IB: 98 of 240 contracts subscribed")
            src = self.feed.source
            subscriptions = getattr(src, "subscriptions", None) if status.kind is SourceKind.IB else None
            self.panels["chain"].set_source_note(subscriptions().text if subscriptions is not None else "")

    @asyncSlot()
    async def _on_sessions_wanted(self) -> None:
        if self._sessions_refreshing:
            return  # a refresh is in flight: its answer is as new as this one's would be
        self._sessions_refreshing = True
        try:
            await self.open_store()  # (re)opens after a database change in the settings
        except Exception as exc:  # a damaged or vanished database must not break the toolbar
            log.warning("cannot list sessions in %s: %s", self.db_path, exc)
            self.status.showMessage(f"Cannot list sessions in {self.db_path}: {exc}", 10_000)
        finally:
            self._sessions_refreshing = False

    @asyncSlot(object, str)
    async def _switch(self, kind: SourceKind | str, session: str) -> None:
        kind = SourceKind(kind)  # menus may send the plain value ("sim")
        if kind is SourceKind.REPLAY and self.store is None:
            await self.open_store()
        await self._start(kind, session)

    async def shutdown(self) -> None:
        self.toolbar.stop_session_refresh()
        await self.feed.stop()
        for panel in self.panels.values():
            panel.shutdown()
        self.stop_trading()
        if self.store is not None:
            self.store.close()
            self.store = None

    def closeEvent(self, event: QCloseEvent) -> None:
        self.save_layout()
        super().closeEvent(event)
        self.closed.emit()  # main() shuts the feed down, then ends the loop
