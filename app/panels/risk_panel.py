"""Portfolio & risk panel: greeks by expiry and by trade, limit gauges, the spot x vol stress heat map, named
stresses, VaR/ES (historical beside parametric) and the whole book's P&L against SPX at T+0 and at expiry.

What it shows comes from the window's :class:`~app.trading.TradingSession`:
    * ``portfolio_changed``: the open positions (the book). A change of the book (a fill, a close) forces a new
      job; a mere re-mark does not (the feed's batches already re-value the book every ``refresh_seconds``).
    * ``risk_changed(GuardStatus)`` (when the session has a risk guard): the active profile's limit use as
      gauges, amber from 80% and red from 100% of each limit.

Feeding (:class:`~app.panels.base.LivePanel`): the worker runs :func:`~app.models.risk_model.compute_risk`
(``risk_report`` on the latest snapshots; the VaR history read from the window's store once a day), one job at
a time: while one runs, newer portfolios and batches only replace what is buffered, so the latest book is the
next one computed and the GUI thread never waits. While a job for a new book runs the status says
"computing…"; an empty book says so instead of showing zeros; a figure that cannot be computed shows "—" and
the reason in the notes line.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QScrollArea,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.models.risk_model import (
    EMPTY_BOOK,
    FiguresModel,
    GreeksModel,
    HistoryCache,
    RiskInputs,
    RiskResult,
    book_inputs,
    compute_risk,
    money,
    var_rows,
)
from app.panels.base import Job
from app.panels.session_panel import NO_SESSION, SessionPanel
from app.widgets.heat_map import HeatMap
from app.widgets.limit_gauges import LimitGauges
from app.widgets.pnl_curve import BookPnlCurve
from app.widgets.row_views import line_label, row_view
from spx_core.domain.calendar import ET
from spx_core.marketdata.source import QuoteBatch

if TYPE_CHECKING:
    from app.context import AppContext
    from app.trading import Portfolio, TradingSession

__all__ = ["HEAT_MAP_TITLE", "NO_GUARD", "RiskPanel"]

HEAT_MAP_TITLE = "Stress P&L ($) now: rows SPX move · columns IV change, vol pts (x sqrt(30/days) per leg)"
#: Panel width from which the tables sit beside the heat map and curve (a 1280 px screen floated); below it they
#: are stacked and the panel scrolls.
WIDE_PX = 1250
NO_GUARD = "limit use is not available: this order service has no risk guard"
WAITING_GUARD = "limits: waiting for the first risk check of the book"


class RiskPanel(SessionPanel):
    """See the module docstring."""

    def __init__(self, parent: QWidget | None = None, *, refresh_seconds: float = 2.0) -> None:
        super().__init__(parent, job_name="risk report", refresh_seconds=refresh_seconds)
        self.setObjectName("risk_panel")
        self.portfolio: Portfolio | None = None
        self.guard_status: Any | None = None
        self.result: RiskResult | None = None
        self._book: tuple = ((), (), ())
        self._caches: dict[str, Any] = {}
        self._history = HistoryCache()
        self._refresh_seconds = refresh_seconds
        self._build_ui()

    def _build_ui(self) -> None:
        self.status_label = line_label(NO_SESSION)
        self.status_label.setObjectName("risk_status")
        self.notes_label = QLabel("")
        self.notes_label.setWordWrap(True)
        self.notes_label.setObjectName("risk_notes")
        self.greeks_model = GreeksModel(self)
        self.greeks_view = row_view(QTableView(), self.greeks_model, "risk_greeks", select_rows=False)
        self.var_model = FiguresModel(("Loss, 1 day", "Historical", "Parametric"), signed=False, parent=self)
        self.var_view = row_view(QTableView(), self.var_model, "risk_var", select_rows=False)
        self.named_model = FiguresModel(("Named stress", "P&L ($)"), parent=self)
        self.named_view = row_view(QTableView(), self.named_model, "risk_named", select_rows=False)
        self.var_method = QLabel("")
        self.var_method.setWordWrap(True)
        self.gauges = LimitGauges()
        self.heat_map = HeatMap(HEAT_MAP_TITLE)
        self.curve = BookPnlCurve()
        self.curve.clear(EMPTY_BOOK)
        for view in (self.var_view, self.named_view):
            _fit_rows(view, 4, fixed=True)  # every VaR/ES row and the four named stresses, never a scroll bar
        # the label column takes the width the figures leave (a long trade name is elided; its tooltip is whole)
        self.greeks_view.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.greeks_view.horizontalHeader().setMinimumSectionSize(self.fontMetrics().horizontalAdvance("M") * 4)
        _fit_rows(self.greeks_view, 6)
        figures = QHBoxLayout()
        figures.setContentsMargins(0, 0, 0, 0)
        figures.addWidget(self.var_view, 3)
        figures.addWidget(self.named_view, 2)
        self.left = left = QWidget()
        column = QVBoxLayout(left)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.greeks_view, 2)
        column.addLayout(figures)
        column.addWidget(self.var_method)
        column.addWidget(self.gauges, 2)
        self.right = QSplitter(Qt.Orientation.Vertical)
        self.right.addWidget(self.heat_map)
        self.right.addWidget(self.curve)
        self.right.setChildrenCollapsible(False)
        self.right.setStretchFactor(0, 3)
        self.right.setStretchFactor(1, 2)
        self.heat_map.setMinimumHeight(12 * (self.fontMetrics().height() + 4) + 3 * self.fontMetrics().height())
        self.curve.setMinimumHeight(260)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(left)
        self.splitter.addWidget(self.right)
        self.splitter.setChildrenCollapsible(False)
        self._body = QWidget()
        body = QVBoxLayout(self._body)
        body.setContentsMargins(0, 0, 0, 0)
        body.addWidget(self.splitter)
        self.scroll = QScrollArea()
        self.scroll.setWidget(self._body)
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.status_label)
        layout.addWidget(self.notes_label)
        layout.addWidget(self.scroll, 1)
        self._wide: bool | None = None
        self.gauges.set_message(NO_GUARD)

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        self._arrange(event.size().width() >= WIDE_PX)

    def _arrange(self, wide: bool) -> None:
        """Tables beside the heat map and curve when wide; stacked (the panel scrolls) in a narrow tab, where
        side by side cut the greeks' columns and the matrix's rows off."""
        if wide == self._wide:
            return
        self._wide = wide
        self.splitter.setOrientation(Qt.Orientation.Horizontal if wide else Qt.Orientation.Vertical)
        if wide:  # the heat map gets the width its nine columns need, the tables the rest (at least half)
            self._body.setMinimumHeight(0)
            width = max(self.width(), WIDE_PX)
            matrix = self._matrix_width()
            self.heat_map.setMinimumWidth(matrix)
            self.splitter.setSizes([width - max(matrix, width // 2), max(matrix, width // 2)])
            return
        self.heat_map.setMinimumWidth(0)  # stacked it has the full width, or scrolls in its own view
        # stacked: the tables take what they need, the heat map and the curve their minimum and more
        tables = max(self.left.sizeHint().height(), 360)
        charts = self.right.minimumSizeHint().height() + 80
        self._body.setMinimumHeight(tables + charts + self.splitter.handleWidth())
        self.splitter.setSizes([tables, charts])

    def _matrix_width(self) -> int:
        """Width of the heat map with every column readable: row labels plus nine "-88,888" cells."""
        fm = self.heat_map.view.fontMetrics()
        return fm.horizontalAdvance("SPX +10.0%") + 24 + 9 * (fm.horizontalAdvance("-88,888") + 14) + 24

    @classmethod
    def create(cls, context: AppContext) -> RiskPanel:
        return cls()

    # --- session -------------------------------------------------------------------------------------------
    def session_slots(self) -> dict[str, Any]:
        slots: dict[str, Any] = {"portfolio_changed": self.set_portfolio}
        if hasattr(self.session, "risk_changed"):  # the guard's signal (sessions built before it have none)
            slots["risk_changed"] = self.set_guard_status
        return slots

    def session_changed(self, session: TradingSession | None) -> None:
        self.guard_status = None
        if session is None:
            self.status_label.setText(NO_SESSION)
            self.gauges.set_message(NO_SESSION)
            return
        guard = getattr(session, "guard", None)
        self.gauges.set_message(WAITING_GUARD if guard is not None else NO_GUARD)
        if getattr(guard, "status", None) is not None:  # the guard's last check, before this panel listened
            self.set_guard_status(guard.status)
        if session.portfolio is not None:
            self.set_portfolio(session.portfolio)

    def set_portfolio(self, portfolio: Portfolio) -> None:
        """Follow ``portfolio``; a changed book is recomputed at once (the newest replaces any buffered one)."""
        self.portfolio = portfolio
        book = book_inputs(portfolio)
        if book != self._book:
            self._book = book
            self.status_label.setText("computing…" if book[0] else EMPTY_BOOK)
            self.refresh(full=True)

    def set_guard_status(self, status: Any) -> None:
        """A ``GuardStatus`` (profile, usage: LimitUse rows, trip): the gauges."""
        self.guard_status = status
        self.gauges.set_usage(tuple(status.usage), getattr(status.profile, "name", ""))
        trip = getattr(status, "trip", None)
        if trip is not None:
            self.gauges.title.setText(f"{self.gauges.title.text()} — circuit breaker tripped: {trip.reason}")

    # --- LivePanel hooks -----------------------------------------------------------------------------------
    def job_spacing(self) -> float:
        return self._refresh_seconds  # a full revaluation per scenario and per VaR day: every few seconds

    def job(self, batch: QuoteBatch) -> Job | None:
        if self.session is None:
            return None
        book, legs, names = self._book
        snapshots = {b.snapshot.underlying: b.snapshot for b in (batch, *batch.companions)}
        store = self.context.store if self.context is not None else None
        day = datetime.fromtimestamp(batch.snapshot.time_ns / 1e9, ET).date()
        history = self.context.history_cache if self.context is not None else self._history  # shared with the ticket
        past = self.context.simulated_past if self.context is not None else None
        return Job(compute_risk, (RiskInputs(book, legs, names, snapshots, dict(self._caches), self.shared_fits,
                                             store, history, day, batch.snapshot.time_ns, past),))

    def show_result(self, result: RiskResult) -> None:
        self.result = result
        self._caches = result.caches
        report = result.report
        self.notes_label.setText("; ".join(result.notes))
        self.notes_label.setVisible(bool(result.notes))
        if report is None:
            self._show_nothing(result.reason)
            return
        self.greeks_model.set_greeks(report.greeks, result.by_trade)
        self._show_matrix(report)
        self.var_model.set_rows(var_rows(report.historical, report.parametric))
        self.var_method.setText(_methods(report))
        self.named_model.set_rows([(name, (pnl,)) for name, pnl in report.named.items()])
        spots, t0, expiry = report.pnl_curve
        self.curve.show_curve(spots, t0, expiry, result.spot)
        n = len(report.greeks.by_contract)
        total = report.greeks.total
        self.status_label.setText(
            f"{n} position{'s' * (n != 1)} · delta {money(total.delta_usd_pt)} $/pt · theta "
            f"{money(total.theta_usd_day)} $/day · VaR 95% (hist) {_loss(report.historical)} · "
            f"computed in {result.seconds * 1e3:.0f} ms")

    def _show_nothing(self, reason: str) -> None:
        self.greeks_model.set_greeks(None)
        self.heat_map.model.clear()
        self.var_model.set_rows([])
        self.named_model.set_rows([])
        self.var_method.setText("")
        self.curve.clear(reason)
        self.status_label.setText(reason)

    def _show_matrix(self, report: Any) -> None:
        spot_pct, vol_pts = report.matrix_axes
        self.heat_map.model.set_matrix(report.matrix, [f"SPX {float(s) + 0.0:+.1%}" for s in spot_pct],
                                       [f"IV {float(v):+g}" for v in vol_pts])

    def status_message(self, text: str) -> None:
        self.status_label.setText(text)

    @property
    def populated(self) -> bool:
        """A risk report of a non-empty book is on screen."""
        return self.result is not None and self.result.report is not None and self.greeks_model.total_row() >= 0

    def health(self) -> tuple[bool, str]:
        if self.session is None:
            return False, f"risk: {NO_SESSION}"
        if self.result is None:
            return False, "risk: no risk report shown yet"
        return True, f"risk: {self.status_label.text()}"


def _fit_rows(view: QTableView, rows: int, *, fixed: bool = False) -> None:
    """Tall enough for the header and ``rows`` rows (``fixed``: exactly that tall, no empty rows below)."""
    height = view.horizontalHeader().sizeHint().height() + rows * view.verticalHeader().defaultSectionSize()
    view.setMinimumHeight(height + 2 * view.frameWidth() + 2)
    if fixed:
        view.setMaximumHeight(view.minimumHeight())


def _loss(figures: Any | None) -> str:
    return "—" if figures is None else f"${money(float(figures.var95), signed=False)}"


def _methods(report: Any) -> str:
    parts = [f"{f.method}, {f.n} days" if f.n else f.method for f in (report.historical, report.parametric)
             if f is not None]
    return "VaR/ES: one-day loss in dollars. " + "; ".join(parts) if parts else \
        "VaR/ES not available (see the notes above)"

