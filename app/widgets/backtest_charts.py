"""The Backtest panel's charts, in one import (each lives in its own module):

* :class:`EquityDrawdownChart` (``backtest_equity``): equity in dollars over a linked drawdown pane in percent,
  ET dates, hover readout, trade markers, several stored runs overlaid for comparison;
* :class:`PnlHistogram` (``backtest_histogram``): per-trade P&L, winners green / losers red, zero and mean lines;
* :class:`MonthlyHeatMap` and :class:`SweepHeatMap` (``backtest_heatmaps``): monthly returns with the year's
  total; a sweep's metric over two parameters with a colour bar and the best cell outlined.

Every chart shows "no data" for empty input rather than failing, copes with a single point and with NaN or
inf values, and has ``export_png(path)`` (the panel's "Export PNG").
"""

from __future__ import annotations

from app.widgets.backtest_common import PngExport
from app.widgets.backtest_equity import EquityDrawdownChart
from app.widgets.backtest_heatmaps import LOWER_IS_BETTER, MonthlyHeatMap, SweepHeatMap, metric_format
from app.widgets.backtest_histogram import PnlHistogram

__all__ = ["LOWER_IS_BETTER", "EquityDrawdownChart", "MonthlyHeatMap", "PngExport", "PnlHistogram", "SweepHeatMap",
           "metric_format"]
