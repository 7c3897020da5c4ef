"""Volatility surface panel: smiles of chosen expiries, ATM term structure, skew table, 3D surface.

Feeding (:class:`~app.panels.base.LivePanel`): ``on_batch`` only buffers the latest snapshot. At most
once per ``refit_seconds``, and only when the data moved, a worker thread computes the chain IVs and the
arbitrage-free SVI surface (``spx_core.surface.fit_surface``, warm-started from the previous fit)
and prepares every array the charts draw; the GUI thread only calls ``setData``.

The surface is drawn in 3D (pyqtgraph.opengl) when OpenGL works, else as a heat map.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QSizePolicy,
    QSplitter,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.models.skew_model import SkewTableModel
from app.panels.base import Job, LivePanel, data_moved
from app.shared_fits import SharedFits
from app.widgets.gl_support import opengl_available
from app.widgets.plot_style import SeriesStyle, expiry_styles
from app.widgets.responsive_splitter import ResponsiveSplitter
from app.widgets.smile_plot import SmileAxis, SmileData, SmilePlot
from app.widgets.surface_view import make_surface_view, surface_grid
from app.widgets.term_plot import TermStructurePlot
from spx_core.domain import ET, ChainSnapshot, Root
from spx_core.marketdata.source import QuoteBatch

__all__ = ["SurfacePanel", "compute_surface", "SurfaceResult"]

_DEFAULT_DAYS = (7.0, 30.0, 90.0)  # expiries shown at start: nearest a week, a month, a quarter out
_MIN_ABS_DELTA = 0.02  # smile points between the 2-delta put and the 2-delta call
# A fit costs ~0.1 s of CPU and the surface barely changes in a few market seconds: refit once this much
# market time has passed since the fitted snapshot, or at once when the index moves this much. At 1x that
# is a fit every 5 s (a few % of a core); at 60x every refresh.
REFIT_MARKET_SECONDS = 10.0  # a smile moves slowly; the chain (what a trader watches tick by tick) updates every batch
REFIT_INDEX_MOVE = 0.0005  # relative (5 bp: ~2.5 points at 5,000)


@dataclass(frozen=True, slots=True, eq=False)
class SurfaceResult:
    """Everything the charts draw for one fit (built in the worker)."""

    snapshot: ChainSnapshot
    surface: Any  # spx_core.surface.VolSurface
    smiles: dict[tuple[Root, date], SmileData]
    days: dict[tuple[Root, date], float]
    grid: tuple[np.ndarray, np.ndarray, np.ndarray]
    seconds: float


def refit_due(fitted: ChainSnapshot, now: ChainSnapshot) -> bool:
    """Whether a surface fitted on ``fitted`` is stale for ``now``: ``REFIT_MARKET_SECONDS`` of market time
    have passed (or time went back: a replay seek), or the index moved ``REFIT_INDEX_MOVE`` or more.
    The one refit schedule of every view that shows fitted-surface figures."""
    elapsed = (now.time_ns - fitted.time_ns) / 1e9
    return (not 0 <= elapsed < REFIT_MARKET_SECONDS
            or abs(now.underlying_price / fitted.underlying_price - 1.0) >= REFIT_INDEX_MOVE)


def compute_surface(snapshot: ChainSnapshot, fits: SharedFits) -> SurfaceResult:
    """Worker-thread job: chain IVs and surface fit (shared with the other panels), smile arrays, surface grid."""
    t0 = time.perf_counter()
    fitted = fits.memo().fit(snapshot)
    civ, surface = fitted.civ, fitted.surface
    smiles, days = {}, {}
    otm = np.where(civ.k >= 0, snapshot.is_call, ~snapshot.is_call)
    usable = otm & np.isfinite(civ.iv_mid) & (np.abs(civ.delta) >= _MIN_ABS_DELTA)
    for e, fit in enumerate(surface.expiries):
        key = (fit.root, fit.expiry)
        days[key] = fit.t * 365.0
        if not fit.fitted:
            continue
        rows = np.flatnonzero(usable & (civ.expiry_index == e))
        k = civ.k[rows]
        k_fit = np.linspace(k.min(), k.max(), 121) if len(k) else np.zeros(0)
        # the legend names an expiry by its tenor (the list beside it has the date): short enough that
        # the legend stays in a corner of a 300 px chart; AM-settled SPX is marked as such
        label = f"{fit.t * 365.0:.0f}d" + (" SPX AM" if fit.root is Root.SPX else "")
        smiles[key] = SmileData(label, k, civ.iv_bid[rows], civ.iv_mid[rows], civ.iv_ask[rows], k_fit,
                                fit.iv(k_fit), float(fit.forward), float(fit.t))
    return SurfaceResult(snapshot, surface, smiles, days, surface_grid(surface), time.perf_counter() - t0)


class SurfacePanel(LivePanel):
    """Smile / term structure / skew table / surface of the latest chain, refitted at most 1 Hz (wall)
    and every ``REFIT_MARKET_SECONDS`` of market time unless the index moves more."""

    def __init__(self, parent: QWidget | None = None, *, refit_seconds: float = 1.0,
                 use_gl: bool | None = None) -> None:
        super().__init__(parent, job_name="surface fit", refresh_seconds=refit_seconds)
        self.setObjectName("surface_panel")
        if use_gl is None:
            use_gl, self.gl_reason = opengl_available()
        else:
            self.gl_reason = "forced on" if use_gl else "forced off"
        self._result: SurfaceResult | None = None
        self._checked: set[tuple[Root, date]] | None = None  # None: pick the defaults on the first fit
        self._styles: dict[tuple[Root, date], SeriesStyle] = {}
        self.fits = 0
        self._build_ui(use_gl)

    def _build_ui(self, use_gl: bool) -> None:
        # One chart per tab page: in a 500 px wide dock (1280x720 screen) a chart shares its page with
        # at most the expiry list, so titles, legends, axes and the table's key columns stay readable.
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self._build_smile_page(), "Smile")
        self.tabs.addTab(self._build_term_page(), "Term && skew")
        self.surface_view = make_surface_view(use_gl)
        self.tabs.addTab(self.surface_view, "Surface 3D" if self.surface_view.is_3d else "Surface heat map")
        self.status_label = QLabel("waiting for market data…")
        # a long status line must not set the panel's minimum width (it is elided by the layout instead)
        self.status_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(4)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(self.status_label)

    def _build_smile_page(self) -> QWidget:
        self.expiry_list = QListWidget()
        self.expiry_list.setToolTip("Tick expiries to overlay their smiles")
        self.expiry_list.itemChanged.connect(self._on_item_changed)
        self.x_axis_combo = QComboBox()
        for axis in SmileAxis:
            self.x_axis_combo.addItem(axis.short, axis)
        self.x_axis_combo.setToolTip("Smile x axis: log-moneyness, strike or delta (10P, 25P, ATM, 25C, 10C)")
        self.x_axis_combo.currentIndexChanged.connect(
            lambda i: self.smile.set_x_axis(self.x_axis_combo.itemData(i)))
        self.smile = SmilePlot()
        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(QLabel("x axis"))
        row.addWidget(self.x_axis_combo, 1)
        side_layout.addLayout(row)
        side_layout.addWidget(self.expiry_list, 1)
        # expiry list beside the chart when there is room, above it in a narrow dock
        page = ResponsiveSplitter(min_side_by_side=560, side_px=(170, 150))
        page.setObjectName("smile_page")
        page.addWidget(side)
        page.addWidget(self.smile)
        page.setStretchFactor(1, 1)
        return page

    def _build_term_page(self) -> QWidget:
        self.term = TermStructurePlot()
        self.skew_model = SkewTableModel(self)
        self.skew_table = QTableView()
        self.skew_table.setModel(self.skew_model)
        self.skew_table.verticalHeader().setVisible(False)
        self.skew_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.skew_table.setWordWrap(False)
        self.skew_table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        # sized to content (never elided); too wide for the panel -> it scrolls, key columns stay left
        self.skew_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        page = QSplitter(Qt.Orientation.Vertical)
        page.setObjectName("term_page")
        page.addWidget(self.term)
        page.addWidget(self.skew_table)
        page.setSizes([400, 600])
        return page

    # --- feeding (LivePanel hooks) -----------------------------------------------------------------
    def moved(self, previous: QuoteBatch, batch: QuoteBatch) -> bool:
        return data_moved(previous, batch) and refit_due(previous.snapshot, batch.snapshot)

    def job(self, batch: QuoteBatch) -> Job:
        return Job(compute_surface, (batch.snapshot, self.shared_fits))

    def status_message(self, text: str) -> None:
        self.status_label.setText(text)

    def show_result(self, result: SurfaceResult) -> None:
        self._result = result
        self.fits += 1
        today = result.snapshot.time.astimezone(ET).date()
        self._sync_expiry_list(result)
        self.skew_model.set_surface(result.surface, today=today)
        self._draw_smiles()
        fits = [f for f in result.surface.expiries if f.fitted and f.t > 0]
        self.term.set_term(np.array([f.t * 365.0 for f in fits]), np.array([f.atm_iv for f in fits]),
                           np.array([f.root is Root.SPX for f in fits], dtype=bool))
        self.surface_view.set_grid(*result.grid)
        stamp = result.snapshot.time.astimezone(ET)
        # short enough for a 370 px dock at 1280x720; the details a trader rarely needs go in the tooltip
        self.status_label.setText(
            f"{len(fits)}/{len(result.surface.expiries)} fitted in {result.seconds * 1000:.0f} ms · "
            f"SPX {result.snapshot.underlying_price:,.2f} · {stamp:%H:%M:%S} ET")
        self.status_label.setToolTip(
            f"snapshot {result.snapshot.checksum[:12]}\n"
            f"view: {'3D' if self.surface_view.is_3d else 'heat map'} ({self.gl_reason})")

    def _sync_expiry_list(self, result: SurfaceResult) -> None:
        keys = list(result.smiles)
        if self._checked is None:
            self._checked = _default_keys(result.days, keys)
        current = [self.expiry_list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.expiry_list.count())]
        if current == keys:
            return
        self.expiry_list.blockSignals(True)
        self.expiry_list.clear()
        for key in keys:
            item = QListWidgetItem(f"{result.days[key]:>3.0f}d  {key[1]:%d %b %y}  {key[0].value}")
            item.setData(Qt.ItemDataRole.UserRole, key)
            item.setToolTip(f"{key[1]:%A %d %B %Y}  {key[0].value}")
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if key in self._checked else Qt.CheckState.Unchecked)
            self.expiry_list.addItem(item)
        self.expiry_list.blockSignals(False)

    def _on_item_changed(self, item: QListWidgetItem) -> None:
        key = item.data(Qt.ItemDataRole.UserRole)
        if self._checked is None:
            self._checked = set()
        if item.checkState() == Qt.CheckState.Checked:
            self._checked.add(key)
        else:
            self._checked.discard(key)
        self._draw_smiles()

    def _draw_smiles(self) -> None:
        if self._result is None or self._checked is None:
            return
        shown = {k: s for k, s in self._result.smiles.items() if k in self._checked}
        # colours are spread over the ticked expiries by days to expiry: all distinct, near -> far
        self._styles = expiry_styles({k: self._result.days[k] for k in shown})
        self.smile.show_smiles(shown, self._styles)
        self._paint_swatches()

    def _paint_swatches(self) -> None:
        blocked = self.expiry_list.blockSignals(True)  # an icon change emits itemChanged
        for i in range(self.expiry_list.count()):
            item = self.expiry_list.item(i)
            style = self._styles.get(item.data(Qt.ItemDataRole.UserRole))
            item.setIcon(_swatch(style.color) if style is not None else QIcon())
        self.expiry_list.blockSignals(blocked)
        # wide enough for its longest line (check box, swatch, text) and the scroll bar: never clipped
        bar = self.expiry_list.verticalScrollBar().sizeHint().width()
        self.expiry_list.setMinimumWidth(self.expiry_list.sizeHintForColumn(0) + bar
                                         + 2 * self.expiry_list.frameWidth() + 4)

    def style_of(self, key: tuple[Root, date]) -> SeriesStyle | None:
        """The colour and line style of a shown expiry's smile (None when not ticked)."""
        return self._styles.get(key)

    # --- API for the shell and tests --------------------------------------------------------------
    def set_checked_expiries(self, keys: set[tuple[Root, date]]) -> None:
        self._checked = set(keys)
        self.expiry_list.blockSignals(True)
        for i in range(self.expiry_list.count()):
            item = self.expiry_list.item(i)
            on = item.data(Qt.ItemDataRole.UserRole) in self._checked
            item.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)
        self.expiry_list.blockSignals(False)
        self._draw_smiles()

    @property
    def result(self) -> SurfaceResult | None:
        return self._result

    def grab_surface(self) -> QImage:
        """The surface view as an image (switches to its tab so GL renders it)."""
        self.tabs.setCurrentWidget(self.surface_view)
        return self.surface_view.grab_image()

    def health(self) -> tuple[bool, str]:
        """(ok, message): a surface was fitted and at least one smile is drawn."""
        if self._result is None:
            return False, "surface: no fit finished yet"
        fitted = [f for f in self._result.surface.expiries if f.fitted]
        if not fitted:
            return False, "surface: no expiry could be fitted"
        drawn = sum(len(self.smile.points_of(k)[0]) for k in self.smile.shown)
        if drawn == 0:
            return False, "surface: no smile points drawn"
        rmse = np.nanmedian([f.rmse_volpts for f in fitted])
        return True, (f"surface: {len(fitted)} expiries fitted (median RMSE {rmse:.2f} vol pts), "
                      f"{len(self.smile.shown)} smiles with {drawn} points, "
                      f"{'3D' if self.surface_view.is_3d else 'heat map'} view")


def _default_keys(days: dict[tuple[Root, date], float], keys: list[tuple[Root, date]]) -> set[tuple[Root, date]]:
    if not keys:
        return set()
    d = np.array([days[k] for k in keys])
    return {keys[int(np.argmin(np.abs(d - target)))] for target in _DEFAULT_DAYS}


def _swatch(color: str) -> QPixmap:
    pix = QPixmap(12, 12)
    pix.fill(QColor(color))
    return pix
