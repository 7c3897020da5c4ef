"""The Backtest panel's result tabs: Summary, Equity + drawdown, Trades (with a trade's legs and payoff), P&L
histogram, Monthly returns, Decisions (filtered), Compare (stored runs overlaid) and Sweep.

:meth:`BacktestResults.show_outcome` fills every tab from one :class:`~app.backtest_worker.BacktestOutcome`;
:meth:`BacktestResults.current_chart` is the chart the "Export PNG" button writes (None on a table tab).
"""

from __future__ import annotations

import math
from typing import Any

from PySide6.QtCore import QItemSelection, Qt
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSplitter,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.backtest_worker import BacktestOutcome, metrics_dict
from app.models.backtest_model import (
    CompareModel,
    DecisionsModel,
    MetricsModel,
    RunRow,
    RunsModel,
    TradesModel,
)
from app.models.backtest_trade import trade_detail, trade_payoff
from app.widgets.backtest_charts import (
    EquityDrawdownChart,
    MonthlyHeatMap,
    PnlHistogram,
)
from app.widgets.payoff_plot import PayoffPlot
from app.widgets.row_views import line_label, row_view
from spx_core.backtest.metrics import monthly_returns

__all__ = ["ALL_ACTIONS", "BacktestResults"]

ALL_ACTIONS = "every action"
NO_TRADE = "click a trade to see its legs, entry and exit, and its payoff at expiry"


def _page(*widgets: QWidget, stretch_last: bool = True) -> QWidget:
    page = QWidget()
    column = QVBoxLayout(page)
    column.setContentsMargins(2, 2, 2, 2)
    for i, w in enumerate(widgets):
        column.addWidget(w, 1 if stretch_last and i == len(widgets) - 1 else 0)
    return page


class BacktestResults(QTabWidget):
    """See the module docstring."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("backtest_tabs")
        self.outcome: BacktestOutcome | None = None
        #: ``spot_at(underlying, ns)``: the index level stored at that instant (NaN: none); the panel reads its store
        self.spot_at: Any = lambda underlying, ns: math.nan
        self.metrics_model = MetricsModel(self)
        self.metrics_view = row_view(QTableView(), self.metrics_model, "backtest_metrics", select_rows=False)
        self.metrics_view.setMaximumWidth(self.fontMetrics().horizontalAdvance("M") * 34)
        self.summary_note = QLabel("")
        self.summary_note.setWordWrap(True)
        self.factors_note = QLabel("")
        self.factors_note.setObjectName("backtest_factors")
        self.factors_note.setWordWrap(True)
        self.addTab(_page(self.summary_note, self.factors_note, self.metrics_view), "Summary")
        self.equity = EquityDrawdownChart()
        self.addTab(self.equity, "Equity")
        self.addTab(self._trades_page(), "Trades")
        self.histogram = PnlHistogram()
        self.addTab(self.histogram, "P&&L histogram")  # "&&": a lone "&" is a mnemonic
        self.monthly = MonthlyHeatMap()
        # the map's rows share its height: alone in a tall tab one year's row was 550 px high; capped at about
        # three text lines a year (the space below stays empty)
        self.monthly_page = _page(self.monthly, stretch_last=False)
        self.monthly_page.layout().addStretch(1)
        self.addTab(self.monthly_page, "Monthly")
        self.addTab(self._decisions_page(), "Decisions")
        self.addTab(self._compare_page(), "Compare")

    # --- pages -----------------------------------------------------------------------------------------
    def _trades_page(self) -> QWidget:
        self.trades_model = TradesModel(self)
        self.trades_view = row_view(QTableView(), self.trades_model, "backtest_trades")
        self.trades_view.selectionModel().selectionChanged.connect(self._on_trade)
        self.trade_text = QLabel(NO_TRADE)
        self.trade_text.setObjectName("backtest_trade_detail")
        self.trade_text.setWordWrap(True)
        self.trade_text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.trade_text.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.trade_text.setMinimumWidth(self.fontMetrics().horizontalAdvance("  +1 × SPXW 2024-03-07 5680 put  "))
        self.payoff = PayoffPlot()
        self.payoff.plot_widget.getPlotItem().hideAxis("right")  # no density of a past expiry: no empty axis
        self.payoff.clear("no trade selected")
        detail = QSplitter(Qt.Orientation.Horizontal)
        detail.addWidget(self.trade_text)
        detail.addWidget(self.payoff)
        detail.setStretchFactor(0, 0)
        detail.setStretchFactor(1, 1)
        detail.setChildrenCollapsible(False)
        self.trades_split = split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.trades_view)
        split.addWidget(detail)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 1)
        split.setChildrenCollapsible(False)
        _rows_tall(self.trades_view, 6)
        return _page(split)

    def _decisions_page(self) -> QWidget:
        self.decisions_model = DecisionsModel(self)
        self.decisions_view = row_view(QTableView(), self.decisions_model, "backtest_decisions")
        self.decisions_view.horizontalHeader().setStretchLastSection(True)
        self.action_filter = QComboBox()
        self.action_filter.setObjectName("backtest_action_filter")
        self.action_filter.addItem(ALL_ACTIONS, "")
        self.text_filter = QLineEdit()
        self.text_filter.setObjectName("backtest_text_filter")
        self.text_filter.setPlaceholderText("filter the reasons (e.g. max_new_trades_per_day)")
        self.text_filter.setClearButtonEnabled(True)
        self.decisions_count = QLabel("")
        for signal in (self.action_filter.currentIndexChanged, self.text_filter.textChanged):
            signal.connect(self._filter_decisions)
        bar = QWidget()
        row = QHBoxLayout(bar)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QLabel("Show"))
        row.addWidget(self.action_filter)
        row.addWidget(self.text_filter, 1)
        row.addWidget(self.decisions_count)
        return _page(bar, self.decisions_view)

    def _compare_page(self) -> QWidget:
        self.runs_model = RunsModel(self)
        self.runs_view = row_view(QTableView(), self.runs_model, "backtest_runs", select_rows=False)
        self.runs_model.dataChanged.connect(self._on_compare)
        self.compare_model = CompareModel(self)
        self.compare_view = row_view(QTableView(), self.compare_model, "backtest_compare", select_rows=False)
        self.compare_chart = EquityDrawdownChart()
        self.compare_chart.clear("tick two or more runs to overlay their equity")
        self.compare_hint = line_label("Tick runs to overlay their equity and compare their metrics.")
        top = QSplitter(Qt.Orientation.Horizontal)
        top.addWidget(self.runs_view)
        top.addWidget(self.compare_view)
        top.setChildrenCollapsible(False)
        _rows_tall(self.runs_view, 4)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(top)
        split.addWidget(self.compare_chart)
        split.setStretchFactor(0, 2)
        split.setStretchFactor(1, 3)
        split.setChildrenCollapsible(False)
        return _page(self.compare_hint, split)

    # --- showing a run -----------------------------------------------------------------------------------
    def show_outcome(self, outcome: BacktestOutcome) -> None:
        """Every tab from ``outcome`` (a run with a result)."""
        self.outcome = outcome
        result, request = outcome.result, outcome.request
        self.metrics_model.set_metrics(metrics_dict(outcome.metrics))
        self.summary_note.setText(_summary_note(outcome))
        self.factors_note.setText(_factors_note(result))
        if len(result.equity):
            self.equity.set_equity(result.equity, trades=result.trades, starting_cash=request.starting_cash,
                                   label=request.describe())
        else:
            self.equity.clear("no equity: the run stopped before its first step")
        self.trades_model.set_rows(result.trades)
        self._on_trade()
        self.histogram.set_trades(result.trades)
        if len(result.equity):
            table = monthly_returns(result.equity, starting_cash=request.starting_cash)
            self.monthly.set_returns(table)
            line = self.fontMetrics().height()
            self.monthly.setMaximumHeight(int((len(table) * 3 + 5) * line))
        else:
            self.monthly.clear("no equity")
        self.decisions_model.set_decisions(result.decisions)
        self.action_filter.blockSignals(True)
        self.action_filter.clear()
        self.action_filter.addItem(ALL_ACTIONS, "")
        for action in self.decisions_model.actions():
            self.action_filter.addItem(action, action)
        self.action_filter.blockSignals(False)
        self._filter_decisions()

    def clear(self, reason: str) -> None:
        self.outcome = None
        self.metrics_model.set_metrics(None)
        self.summary_note.setText(reason)
        self.factors_note.setText("")
        self.equity.clear(reason)
        self.trades_model.set_rows(())
        self._on_trade()
        self.histogram.clear(reason)
        self.monthly.clear(reason)
        self.decisions_model.set_decisions(())

    def _on_trade(self, *_: QItemSelection) -> None:
        rows = self.trades_view.selectionModel().selectedRows()
        if not rows:
            self.trade_text.setText(NO_TRADE if self.trades_model.rows else "no trades in this run")
            self.payoff.clear("no trade selected")
            return
        trade = self.trades_model.rows[rows[0].row()]
        self.trade_text.setText(trade_detail(trade))
        underlying = "SPY" if trade.legs and trade.legs[0][0] == "SPY" else "SPX"
        self.payoff.set_underlying(underlying)
        self.payoff.show_arrays(trade_payoff(trade, self.spot_at(underlying, trade.entry_ns)))

    def select_trade(self, row: int) -> None:
        self.trades_view.selectRow(row)

    def _filter_decisions(self, *_: Any) -> None:
        self.decisions_model.set_filter(self.action_filter.currentData() or "", self.text_filter.text())
        self.decisions_count.setText(f"{self.decisions_model.rowCount()} of {len(self.decisions_model.all)}")

    # --- compare ----------------------------------------------------------------------------------------------
    def set_runs(self, runs: list[RunRow]) -> None:
        """The stored runs offered for comparison (checked ones stay checked)."""
        self.runs_model.set_runs(runs)
        self._on_compare()

    def _on_compare(self, *_: Any) -> None:
        runs = self.runs_model.checked_runs()
        self.compare_model.set_runs(runs)
        if not runs:
            self.compare_chart.clear("tick two or more runs to overlay their equity")
            return
        self.compare_chart.set_runs([(f"#{r.run_id} {r.name}", r.load_equity(),
                                      r.metrics.get("starting_cash")) for r in runs])

    # --- export ------------------------------------------------------------------------------------------------
    def current_chart(self) -> Any | None:
        """The chart on the current tab (it has ``export_png``), or None on a table tab."""
        page = self.currentWidget()
        if page is self.widget(6):
            return self.compare_chart
        if page is self.widget(2):
            return self.payoff if self.payoff.data is not None else None
        if page is self.monthly_page:
            return self.monthly
        return page if hasattr(page, "export_png") else None


def _rows_tall(view: QTableView, rows: int) -> None:
    """At least tall enough for the header, ``rows`` rows and a horizontal scroll bar."""
    height = view.horizontalHeader().sizeHint().height() + rows * view.verticalHeader().defaultSectionSize()
    view.setMinimumHeight(height + view.horizontalScrollBar().sizeHint().height() + 2 * view.frameWidth())


def _factors_note(result: Any) -> str:
    """Factor attribution: each entry factor's mean over the winners minus the losers' (the Quantor plan)."""
    figures = {k: v for k, v in result.factor_attribution().items() if math.isfinite(v)}
    if not figures:
        return "Entry factors, winners minus losers: — (needs closed winners and losers with entry factors)"
    return "Entry factors, winners minus losers (mean at entry): " + ", ".join(
        f"{name} {value:+.3g}" for name, value in figures.items())


def _summary_note(outcome: BacktestOutcome) -> str:
    result = outcome.result
    done, total = result.steps
    parts = [f"{outcome.request.describe()}: {done:,} of {total:,} steps"
             + (" (cancelled: a partial run)" if result.cancelled else ""),
             f"{len(result.trades)} trades, {len(result.decisions)} decisions",
             f"ran in {outcome.seconds:.1f} s" if math.isfinite(outcome.seconds) else ""]
    if outcome.run_id is not None:
        parts.append(f"stored as run #{outcome.run_id}")
    if result.notes:
        parts.append("marks: " + ", ".join(result.notes))
    return " · ".join(p for p in parts if p)
