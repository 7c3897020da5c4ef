"""The backtest heat maps: monthly returns (percent cells, the year's compounded total, colours on their own
scales) and a sweep's metric (labels, "n/a" cells, the best cell outlined and painted, the colour bar)."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor

from app.widgets.backtest_charts import MonthlyHeatMap, SweepHeatMap
from app.widgets.backtest_heatmaps import OUTLINE_ROLE
from spx_core.backtest.metrics import monthly_returns
from tests.app.test_backtest_charts import _shown, _sweep_table

pytestmark = pytest.mark.qt_log_ignore("propagateSizeHints")


# --- monthly heat map -----------------------------------------------------------------------------------------
def _month_end_equity(levels: dict[str, float]) -> pd.Series:
    stamps = pd.DatetimeIndex([pd.Timestamp(f"{d} 15:45", tz="America/New_York") for d in levels]).tz_convert("UTC")
    return pd.Series(list(levels.values()), index=stamps)


@pytest.fixture
def monthly(qtbot):
    return _shown(MonthlyHeatMap(), qtbot, (1000, 200))


def test_monthly_cells_percent_year_total_and_diverging_colours(monthly, qtmodeltester):
    eq = _month_end_equity({"2023-11-30": 102_000.0, "2023-12-29": 96_900.0,
                            "2024-01-31": 99_807.0, "2024-03-28": 99_807.0})
    table = monthly_returns(eq, starting_cash=100_000.0)
    monthly.set_returns(table)
    m = monthly.model
    qtmodeltester.check(m)
    assert (m.rowCount(), m.columnCount()) == (2, 13)
    assert [m.headerData(c, Qt.Orientation.Horizontal) for c in (0, 11, 12)] == ["Jan", "Dec", "Year"]
    assert [m.headerData(r, Qt.Orientation.Vertical) for r in range(2)] == ["2023", "2024"]
    assert [m.text(0, c) for c in (10, 11, 12)] == ["+2.0%", "-5.0%", "-3.1%"]  # 1.02 * 0.95 - 1
    assert [m.text(1, c) for c in (0, 1, 2, 12)] == ["+3.0%", "n/a", "+0.0%", "+3.0%"]
    assert m.value(0, 12) == pytest.approx(1.02 * 0.95 - 1.0)
    loss, gain, nan, flat = m.colour(0, 11), m.colour(1, 0), m.colour(1, 1), m.colour(1, 2)
    assert loss.red() > 200 and loss.green() < 100  # deepest month: full red
    assert gain.green() > gain.red() and nan == QColor(160, 160, 160) and flat == QColor(255, 255, 255)
    assert m.colour(0, 10).green() > m.colour(0, 10).red()  # +2%: green, paler than +3%
    assert m.colour(0, 10).red() > m.colour(1, 0).red()
    # the year column has its own scale, never finer than the months': -3.1% is red, paler than the -5% month
    year = m.colour(0, 12)
    assert year.red() > year.green() and year.green() > loss.green()
    assert m.data(m.index(0, 11), Qt.ItemDataRole.ForegroundRole) == QColor(Qt.GlobalColor.white)
    assert "2023 Dec: -5.00%" == m.data(m.index(0, 11), Qt.ItemDataRole.ToolTipRole)
    assert monthly.view.isVisibleTo(monthly) and monthly.message_text == ""


def test_a_near_flat_year_reads_in_two_decimals_and_stays_pale(monthly):
    table = pd.DataFrame([[math.nan, math.nan, -0.007, 0.0066] + [math.nan] * 8], index=pd.Index([2024], name="year"),
                         columns=pd.Index(range(1, 13), name="month"))
    monthly.set_returns(table)
    m = monthly.model
    assert m.text(0, 12) == "-0.04%" and m.text(0, 2) == "-0.7%"  # (1 - 0.007)(1 + 0.0066) - 1 = -0.0446%
    flat_year = m.colour(0, 12)
    assert flat_year.red() > 240 and flat_year.green() > 230  # almost white: not the -0.7% month's red


def test_monthly_inf_and_empty(monthly):
    table = pd.DataFrame([[0.01, math.inf] + [math.nan] * 10], index=pd.Index([2024], name="year"),
                         columns=pd.Index(range(1, 13), name="month"))
    monthly.set_returns(table)
    assert monthly.model.text(0, 1) == "+\u221e" and monthly.model.colour(0, 1).green() > 100
    monthly.set_returns(pd.DataFrame())
    assert monthly.model.rowCount() == 0 and monthly.message_text == "no data"
    assert not monthly.view.isVisibleTo(monthly)
    monthly.set_returns(None)
    assert monthly.message_text == "no data"


# --- sweep heat map -------------------------------------------------------------------------------------------
@pytest.fixture
def sweep(qtbot):
    return _shown(SweepHeatMap(), qtbot, (700, 300))


def test_sweep_cells_nan_best_outline_and_colour_bar(sweep, qtmodeltester, qtbot):
    table = _sweep_table([[0.8, 1.4, -0.3], [1.1, math.nan, 0.2], [2.3, 0.9, 0.0]])
    sweep.set_table(table, "sharpe")
    m = sweep.model
    qtmodeltester.check(m)
    assert [m.headerData(c, Qt.Orientation.Horizontal) for c in range(3)] == ["10", "25", "50"]
    assert [m.headerData(r, Qt.Orientation.Vertical) for r in range(3)] == ["0.1", "0.15", "0.2"]
    assert m.text(0, 1) == "1.40" and m.text(1, 1) == "n/a" and m.colour(1, 1) == QColor(160, 160, 160)
    assert m.outline == (2, 0) and sweep.best == (0.20, 10)
    assert m.data(m.index(2, 0), OUTLINE_ROLE) is True and m.data(m.index(0, 0), OUTLINE_ROLE) is False
    best, worst, zero = m.colour(2, 0), m.colour(0, 2), m.colour(2, 2)
    assert best.green() > 140 and best.red() < 60 and worst.red() > worst.green() and zero == QColor(255, 255, 255)
    assert "higher is better" in sweep.title.text() and "strategy.short_delta" in sweep.title.text()
    assert sweep.color_bar.isVisibleTo(sweep) and sweep.color_bar.title == "sharpe"
    assert [t for _, t in sweep.color_bar.ticks] == ["-0.30", "0.00", "2.30"]
    # the outline is painted: the best cell's frame is dark, another cell's edge is its fill colour
    qtbot.waitExposed(sweep)
    image = sweep.view.viewport().grab().toImage()
    rect = sweep.view.visualRect(m.index(2, 0))
    frame = image.pixelColor(rect.center().x(), rect.top() + 2)
    other = sweep.view.visualRect(m.index(0, 0))
    assert frame.lightness() < 60
    assert image.pixelColor(other.center().x(), other.top() + 2).name() == m.colour(0, 0).name()


def test_sweep_lower_is_better_metric_and_formats(sweep):
    sweep.set_table(_sweep_table([[0.12, 0.08], [0.30, math.nan]]), "max_drawdown")
    m = sweep.model
    assert m.outline == (0, 1) and m.text(0, 1) == "8.0%" and m.text(1, 1) == "n/a"
    assert m.colour(0, 1).green() > m.colour(0, 1).red() and m.colour(1, 0).red() > m.colour(1, 0).green()
    assert "lower is better" in sweep.title.text()
    sweep.set_table(_sweep_table([[1.5, math.inf]]), "profit_factor")
    assert sweep.model.text(0, 1) == "\u221e" and sweep.model.outline == (0, 1)


def test_sweep_all_nan_single_and_empty(sweep):
    sweep.set_table(_sweep_table([[math.nan, math.nan]]), "sharpe")
    assert sweep.model.outline is None and sweep.best is None and not sweep.color_bar.isVisibleTo(sweep)
    assert sweep.model.text(0, 0) == "n/a" and "no run has a value" in sweep.title.text()
    sweep.set_table(_sweep_table([[0.7]]), "sharpe")
    assert sweep.model.outline == (0, 0) and sweep.model.text(0, 0) == "0.70"
    sweep.set_table(pd.DataFrame(), "sharpe")
    assert sweep.model.rowCount() == 0 and sweep.message_text == "no data" and sweep.best is None
