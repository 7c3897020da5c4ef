"""The backtest charts: what each draws (curves, bars, cells, colours, labels), empty / single / non-finite input,
the hover readout and PNG export.

The last test renders every chart with realistic data in a subprocess under Xvfb (the xcb platform, the dark
theme) and checks the pictures are real; with ``SPX_UPDATE_SCREENSHOTS=1`` it also leaves them at
``/tmp/bt_charts_*.png`` to be looked at. ``python -m tests.app.test_backtest_charts OUT_DIR`` is that renderer.
The heat maps have their own module, ``test_backtest_heatmaps.py``.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from PySide6.QtCore import QPointF
from PySide6.QtGui import QImage

from app.widgets.backtest_charts import (
    EquityDrawdownChart,
    MonthlyHeatMap,
    PnlHistogram,
    SweepHeatMap,
)
from app.widgets.backtest_common import et_seconds
from app.widgets.backtest_histogram import LOSS_COLOR, WIN_COLOR, pnl_bins
from spx_core.backtest.metrics import drawdown, monthly_returns

pytestmark = pytest.mark.qt_log_ignore("propagateSizeHints")

NS = 10**9


def _eod_equity(n: int = 300, seed: int = 1, start: str = "2023-01-03") -> pd.Series:
    """End-of-day equity at 15:45 ET (20:45 or 19:45 UTC by the season), a short-premium-like path."""
    days = pd.bdate_range(start, periods=n)
    stamps = (days + pd.Timedelta(hours=15, minutes=45)).tz_localize("America/New_York").tz_convert("UTC")
    rng = np.random.default_rng(seed)
    pnl = np.where(rng.random(n) < 0.9, rng.normal(60, 30, n), rng.normal(-700, 250, n))
    return pd.Series(100_000.0 + np.cumsum(pnl), index=stamps)


def _trade(entry: pd.Timestamp, exit_: pd.Timestamp | None, pnl: float) -> SimpleNamespace:
    return SimpleNamespace(entry_ns=entry.value, exit_ns=None if exit_ is None else exit_.value, pnl=pnl, fees=2.0)


def _sweep_table(values) -> pd.DataFrame:
    return pd.DataFrame(values, index=pd.Index([0.10, 0.15, 0.20][: len(values)], name="strategy.short_delta"),
                        columns=pd.Index([10, 25, 50][: len(values[0])], name="strategy.width"))


def _shown(widget, qtbot, size=(900, 560)):
    qtbot.addWidget(widget)
    widget.resize(*size)
    widget.show()
    return widget


def _data(item) -> tuple[np.ndarray, np.ndarray]:
    """A curve's data as given (``getData`` returns what is drawn: clipped and downsampled on a big series)."""
    return item.xData, item.yData


def _pen_colour(item) -> str:
    return item.opts["pen"].color().name()


# --- equity + drawdown ----------------------------------------------------------------------------------------
@pytest.fixture
def equity_chart(qtbot):
    return _shown(EquityDrawdownChart(), qtbot)


def test_equity_chart_starts_empty_saying_no_data(equity_chart):
    assert equity_chart.runs == [] and equity_chart.message_text == "no data"
    assert equity_chart.equity_items == [] and not equity_chart.legend.items
    axis = equity_chart.drawdown_plot.getPlotItem().getAxis("bottom")
    assert axis.style["showValues"] is False  # no 1970 dates on an empty chart


def test_equity_and_drawdown_drawn_on_et_dates(equity_chart):
    eq = _eod_equity()
    equity_chart.set_equity(eq, starting_cash=100_000.0)
    [item], [dd_item] = equity_chart.equity_items, equity_chart.drawdown_items
    x, y = _data(item)
    np.testing.assert_array_equal(y, eq.to_numpy())
    # 15:45 ET in winter (20:45 UTC) and in summer (19:45 UTC) both read 15:45 on the axis: ET wall clock
    wall = pd.to_datetime(x, unit="s")
    assert set(zip(wall.hour, wall.minute, strict=True)) == {(15, 45)}
    assert ((eq.index.hour == 20).any() and (eq.index.hour == 19).any())
    dx, dy = _data(dd_item)
    np.testing.assert_array_equal(dx, x)
    np.testing.assert_allclose(dy, drawdown(eq, starting_cash=100_000.0).to_numpy() * 100.0)
    assert dy.max() <= 0.0 and dy.min() < -1.0  # percent, negative
    assert dd_item.opts["fillLevel"] == 0.0 and dd_item.opts["fillBrush"].color().name() == LOSS_COLOR
    assert equity_chart.message_text == "" and [lbl.text for _, lbl in equity_chart.legend.items] == ["equity"]
    view = equity_chart.drawdown_plot.getPlotItem().viewRange()
    assert view[1][0] <= dy.min() and view[1][1] >= 0.0  # the deepest drawdown is in view
    # the two panes share x
    assert equity_chart.drawdown_plot.getPlotItem().getViewBox().linkedView(0) is \
        equity_chart.equity_plot.getPlotItem().getViewBox()


def test_starting_cash_line_and_deepest_drawdown_marked(equity_chart):
    eq = _eod_equity()
    equity_chart.set_equity(eq + 3_000.0, starting_cash=100_000.0)  # never below the cash: still in view
    assert equity_chart.cash_line.isVisible() and equity_chart.cash_line.value() == 100_000.0
    assert equity_chart.cash_line.label.textItem.toPlainText() == "starting cash $100,000"
    assert equity_chart.equity_plot.getPlotItem().viewRange()[1][0] < 100_000.0
    run = equity_chart.runs[0]
    i = int(np.argmin(run.drawdown))
    (x,), (y,) = equity_chart.max_drawdown_dot.getData()
    assert (x, y) == (run.x[i], run.drawdown[i])
    day = eq.index[i].tz_convert("America/New_York")
    assert equity_chart.max_drawdown_label.textItem.toPlainText() == \
        f"max drawdown {run.drawdown[i]:.1f}% (${eq.iloc[i] + 3_000.0:,.0f}) {day:%Y-%m-%d}"
    # compared runs with different cash: no line, no single deepest point
    equity_chart.set_runs([("a", eq, 100_000.0), ("b", eq, 90_000.0)])
    assert not equity_chart.cash_line.isVisible() and not equity_chart.max_drawdown_label.isVisible()
    assert len(equity_chart.max_drawdown_dot.getData()[0]) == 0
    equity_chart.set_equity(pd.Series(100_000.0 + np.arange(5.0), index=eq.index[:5]))  # never below its peak
    assert not equity_chart.max_drawdown_label.isVisible() and not equity_chart.cash_line.isVisible()


def test_readout_gives_date_equity_and_drawdown_of_the_last_stamp(equity_chart):
    eq = _eod_equity()
    equity_chart.set_equity(eq, starting_cash=100_000.0)
    run = equity_chart.runs[0]
    i = int(np.argmin(run.drawdown))
    between = run.x[i] + 3600.0  # an hour after that close: still that close's figures
    text = equity_chart.readout_at(between)
    day = eq.index[i].tz_convert("America/New_York")
    assert text.startswith(f"{day:%Y-%m-%d} 16:45 ET")
    assert f"equity ${eq.iloc[i]:,.0f}" in text
    assert f"drawdown {run.drawdown[i]:.1f}%" in text and "drawdown -" in text
    assert equity_chart.readout_at(run.x[0] - 10.0).endswith("before the run")
    equity_chart.show_crosshair(between)
    assert all(line.isVisible() and line.value() == between for line in equity_chart.crosshairs)
    assert equity_chart.readout.text() == text


@pytest.mark.parametrize("pane", ["equity_plot", "drawdown_plot"])
def test_mouse_over_either_pane_moves_the_crosshair(equity_chart, qtbot, pane):
    eq = _eod_equity()
    equity_chart.set_equity(eq, starting_cash=100_000.0)
    x = float(equity_chart.runs[0].x[100])
    widget = getattr(equity_chart, pane)
    vb = widget.getPlotItem().vb
    y = sum(vb.viewRange()[1]) / 2.0
    widget.scene().sigMouseMoved.emit(vb.mapViewToScene(QPointF(x, y)))
    qtbot.waitUntil(lambda: equity_chart.crosshairs[0].isVisible(), timeout=2000)
    assert [line.value() for line in equity_chart.crosshairs] == pytest.approx([x, x], abs=60.0)
    assert equity_chart.readout.text().startswith(f"{eq.index[100].tz_convert('America/New_York'):%Y-%m-%d}")


def test_compare_overlay_has_one_coloured_curve_per_run_and_a_legend(equity_chart):
    runs = [(f"run {k}", _eod_equity(200 + 20 * k, seed=k), 100_000.0) for k in range(3)]
    equity_chart.set_runs(runs)
    items = equity_chart.equity_items
    assert len(items) == 3 and len(equity_chart.drawdown_items) == 3
    colours = [_pen_colour(i) for i in items]
    assert len(set(colours)) == 3
    assert [_pen_colour(i) for i in equity_chart.drawdown_items] == colours  # a run's drawdown in its colour
    assert [lbl.text for _, lbl in equity_chart.legend.items] == ["run 0", "run 1", "run 2"]
    for item, (_, eq, _) in zip(items, runs, strict=True):
        np.testing.assert_array_equal(_data(item)[1], eq.to_numpy())
    text = equity_chart.readout_at(equity_chart.runs[2].x[-1])
    assert "run 2 $" in text and "run 0" not in text and "run 1" not in text  # runs 0 and 1 ended weeks before
    # fewer runs next time: the spare curves are hidden, not left over
    equity_chart.set_runs(runs[:1])
    assert len(equity_chart.equity_items) == 1 and len(equity_chart.legend.items) == 1
    assert sum(i.isVisible() for i in equity_chart._equity_items) == 1


def test_trade_markers_sit_on_the_curve_coloured_by_pnl(equity_chart):
    eq = _eod_equity()
    trades = [_trade(eq.index[10], eq.index[20], 250.0), _trade(eq.index[30], eq.index[31], -900.0),
              _trade(eq.index[40], None, 0.0)]
    equity_chart.set_equity(eq, trades=trades, starting_cash=100_000.0)
    ex, ey = equity_chart.entries.getData()
    np.testing.assert_array_equal(ey, eq.iloc[[10, 30, 40]].to_numpy())
    np.testing.assert_array_equal(ex, et_seconds(eq.index[[10, 30, 40]]))
    _, xy = equity_chart.exits.getData()
    np.testing.assert_array_equal(xy, eq.iloc[[20, 31]].to_numpy())  # the open trade has no exit
    brushes = [b.color().name() for b in equity_chart.exits.data["brush"]]
    assert brushes == [WIN_COLOR, LOSS_COLOR]


def test_non_finite_equity_is_skipped_and_said(equity_chart):
    eq = _eod_equity(50)
    eq.iloc[5], eq.iloc[9] = np.nan, np.inf
    equity_chart.set_equity(eq, starting_cash=100_000.0)
    y = _data(equity_chart.equity_items[0])[1]
    assert len(y) == 48 and np.isfinite(y).all()
    assert "2 non-finite equity value(s) skipped" in equity_chart.readout.text()


def test_single_stamp_is_a_dot_in_a_day_wide_view(equity_chart):
    eq = _eod_equity(1)
    equity_chart.set_equity(eq)
    item = equity_chart.equity_items[0]
    assert item.opts["symbol"] == "o" and len(_data(item)[0]) == 1
    (x0, x1), (y0, y1) = equity_chart.equity_plot.getPlotItem().viewRange()
    assert x1 - x0 >= 86_400.0 and x0 < _data(item)[0][0] < x1 and y0 < eq.iloc[0] < y1
    assert "equity $" in equity_chart.readout_at(_data(item)[0][0])


def test_a_year_of_5_minute_stamps_is_downsampled_keeping_the_deepest_drawdown(equity_chart, qtbot):
    n = 250 * 78
    stamps = pd.date_range("2023-01-03 14:35", periods=n, freq="5min", tz="UTC")
    eq = pd.Series(100_000.0 + np.cumsum(np.random.default_rng(2).normal(1.0, 40.0, n)), index=stamps)
    equity_chart.set_equity(eq, starting_cash=100_000.0)
    qtbot.waitExposed(equity_chart)
    equity_chart.grab()  # a paint: the view's downsampling is worked out for its width
    dd_item = equity_chart.drawdown_items[0]
    drawn = dd_item.getData()[1]
    assert len(drawn) <= n / 2 and len(_data(dd_item)[1]) == n
    assert drawn.min() == pytest.approx(_data(dd_item)[1].min())  # "peak" mode keeps each column's low


@pytest.mark.parametrize("runs", [[], [("a", None)], [("a", pd.Series([], dtype=float))],
                                  [("a", pd.Series([np.nan, np.inf], index=pd.date_range("2024-01-02", periods=2,
                                                                                         tz="UTC")))]])
def test_empty_runs_say_no_data(equity_chart, runs):
    equity_chart.set_equity(_eod_equity(20))
    equity_chart.set_runs(runs)
    assert equity_chart.runs == [] and equity_chart.message_text.startswith("no data")
    assert all(not i.isVisible() for i in equity_chart._equity_items)


def test_date_axis_days_name_their_month(equity_chart):
    axis = equity_chart.drawdown_plot.getPlotItem().getAxis("bottom")
    axis.setZoomLevelForDensity(30 * 86_400 / 1000)  # a month across 1000 px: month and day ticks
    day = et_seconds(pd.DatetimeIndex(["2021-01-08 00:00"]).tz_localize("America/New_York"))[0]
    assert axis.tickStrings([day], 1.0, 86_400) == ["Jan 08"]


def test_an_empty_run_among_others_is_named(equity_chart):
    equity_chart.set_runs([("good", _eod_equity(30)), ("broken", pd.Series([], dtype=float))])
    assert [r.label for r in equity_chart.runs] == ["good"] and "broken: no data" in equity_chart.readout.text()


# --- P&L histogram --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(6))
def test_bins_go_through_zero_and_keep_winners_and_losers_apart(seed):
    rng = np.random.default_rng(seed)
    pnl = np.round(np.where(rng.random(300) < 0.75, rng.normal(80, 40, 300), rng.normal(-400, 200, 300)))
    pnl[:3] = 0.0
    bins = pnl_bins(pnl)
    assert 0.0 in bins.edges and len(bins.edges) - 1 <= 40
    left, right = bins.edges[:-1], bins.edges[1:]
    assert not (bins.losers[left >= 0]).any() and not (bins.winners[right <= 0]).any()
    assert bins.losers.sum() == (pnl < 0).sum() and bins.winners.sum() == (pnl > 0).sum()
    assert bins.scratches == (pnl == 0).sum() >= 3
    # each trade counted in the bar that covers it (edges go to the bar farther from zero)
    for v in pnl[pnl > 0][:20]:
        k = int(np.searchsorted(bins.edges, v, side="right")) - 1
        assert bins.edges[k] <= v <= bins.edges[k + 1] and bins.winners[min(k, len(left) - 1)] > 0


@pytest.fixture
def histogram(qtbot):
    return _shown(PnlHistogram(), qtbot, (800, 420))


def test_histogram_bars_colours_counts_and_lines(histogram):
    pnl = [120.0, 80.0, 95.0, -400.0, 60.0, -150.0, 0.0, 110.0]
    histogram.set_pnl(pnl)
    b = histogram.bins
    assert histogram.winner_bars.opts["brush"] == WIN_COLOR and histogram.loser_bars.opts["brush"] == LOSS_COLOR
    np.testing.assert_array_equal(histogram.winner_bars.opts["height"], b.winners)
    np.testing.assert_array_equal(histogram.loser_bars.opts["height"], b.losers)
    assert histogram.scratch_bar.isVisible() and list(histogram.scratch_bar.opts["height"]) == [1]
    counts = histogram.shown_counts
    assert sum(int(t) for _, t in counts) == len(pnl)
    assert all(t.textItem.defaultTextColor().name() in (WIN_COLOR, LOSS_COLOR, "#9aa5b1")
               for t in histogram.count_labels if t.isVisible())
    assert histogram.zero_line.isVisible() and histogram.zero_line.value() == 0.0
    assert histogram.mean_line.value() == pytest.approx(np.mean(pnl))
    assert histogram.mean_line.label.textItem.toPlainText() == "mean -$11"
    assert histogram.summary.text().startswith("8 trades · 5 won 2 lost 1 flat · win rate 62% · mean -$11")
    (x0, x1), (_, y1) = histogram.plot_widget.getPlotItem().viewRange()
    assert x0 <= -400.0 and x1 >= 120.0 and y1 > max(b.winners.max(), b.losers.max())


def test_histogram_reads_closed_trades_and_skips_non_finite(histogram):
    t0, t1 = pd.Timestamp("2024-01-02", tz="UTC"), pd.Timestamp("2024-01-05", tz="UTC")
    trades = [_trade(t0, t1, 50.0), _trade(t0, t1, -20.0), _trade(t0, None, 999.0), _trade(t0, t1, math.nan),
              _trade(t0, t1, math.inf)]
    histogram.set_trades(trades)
    assert sorted(histogram.pnl) == [-20.0, 50.0]
    assert histogram.summary.text().endswith("2 without a finite P&L skipped")


@pytest.mark.parametrize("pnl, message", [([], "no data"), ([math.nan], "no data: 1 trade(s) without a finite P&L")])
def test_histogram_empty_says_no_data(histogram, pnl, message):
    histogram.set_pnl([10.0, -5.0])
    histogram.set_pnl(pnl)
    assert histogram.bins is None and histogram.message_text == message
    assert histogram.shown_counts == [] and not histogram.mean_line.isVisible()
    plot = histogram.plot_widget.getPlotItem()
    assert not plot.getAxis("left").style["showValues"] and not plot.getAxis("bottom").style["showValues"]
    assert len(histogram.winner_bars.opts["height"]) == 0


@pytest.mark.parametrize("pnl", [[42.0], [-42.0], [0.0, 0.0], [7.0] * 5])
def test_histogram_single_value(histogram, pnl):
    histogram.set_pnl(pnl)
    assert histogram.message_text == ""
    assert sum(int(t) for _, t in histogram.shown_counts) == len(pnl)
    assert len(histogram.bins.edges) - 1 <= 4
    (x0, x1), _ = histogram.plot_widget.getPlotItem().viewRange()
    assert x0 <= min(pnl + [0.0]) and x1 >= max(pnl + [0.0])


# --- PNG export -----------------------------------------------------------------------------------------------
def test_every_chart_exports_a_png(qtbot, tmp_path):
    eq = _eod_equity()
    charts = [EquityDrawdownChart(), PnlHistogram(), MonthlyHeatMap(), SweepHeatMap()]
    charts[0].set_equity(eq, starting_cash=100_000.0)
    charts[1].set_pnl(np.diff(eq.to_numpy()))
    charts[2].set_returns(monthly_returns(eq, starting_cash=100_000.0))
    charts[3].set_table(_sweep_table([[0.5, 1.0], [1.5, -0.2]]), "sharpe")
    for k, chart in enumerate(charts):
        qtbot.addWidget(chart)
        chart.resize(640, 360)  # never shown: a hidden tab's chart exports too
        path = chart.export_png(tmp_path / f"chart{k}")
        assert path == tmp_path / f"chart{k}.png"
        image = QImage(str(path))
        assert (image.width(), image.height()) == (640, 360)
        assert len({image.pixel(x, y) for x in range(0, 640, 9) for y in range(0, 360, 9)}) > 8
    with pytest.raises(OSError, match="does not exist; pick another folder"):
        charts[0].export_png(tmp_path / "missing" / "x.png")


# --- the pictures ---------------------------------------------------------------------------------------------
SHOTS = ("equity", "compare", "histogram", "monthly", "sweep")


@pytest.mark.xvfb
def test_charts_render_under_xvfb(xvfb_display, tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="xcb", DISPLAY=xvfb_display,
               PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    proc = subprocess.run([sys.executable, "-m", "tests.app.test_backtest_charts", str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in SHOTS:
        image = QImage(str(tmp_path / f"bt_charts_{name}.png"))
        assert image.width() >= 900 and image.height() >= 200, name
        colours = len({image.pixel(x, y) for x in range(0, image.width(), 7) for y in range(0, image.height(), 7)})
        assert colours > 30, f"{name} is (nearly) blank"
        if os.environ.get("SPX_UPDATE_SCREENSHOTS") == "1":
            shutil.copyfile(tmp_path / f"bt_charts_{name}.png", f"/tmp/bt_charts_{name}.png")


def _render(out: Path) -> None:
    """Draw every chart with realistic data, dark theme, into ``out``/bt_charts_*.png."""
    from PySide6.QtWidgets import QApplication

    from app.main_window import apply_theme

    app = QApplication.instance() or QApplication([])
    apply_theme(app, "dark")
    eq = _eod_equity(500, seed=3)
    closes = eq.to_numpy()
    trades = [_trade(eq.index[i], eq.index[i + 3], float(closes[i + 3] - closes[i])) for i in range(0, 480, 25)]
    shots = []
    chart = EquityDrawdownChart()
    chart.set_equity(eq, trades=trades, starting_cash=100_000.0, label="put credit vertical 0.20d")
    shots.append(("equity", chart, (1200, 560)))
    compare = EquityDrawdownChart()
    compare.set_runs([(f"run {k}: short delta 0.{10 + 5 * k}", _eod_equity(500, seed=3 + k), 100_000.0)
                      for k in range(4)])
    shots.append(("compare", compare, (1200, 560)))
    hist = PnlHistogram()
    rng = np.random.default_rng(5)
    hist.set_pnl(np.round(np.where(rng.random(240) < 0.8, rng.normal(95, 35, 240), rng.normal(-520, 260, 240))))
    shots.append(("histogram", hist, (1000, 420)))
    month = MonthlyHeatMap()
    month.set_returns(monthly_returns(eq, starting_cash=100_000.0))
    shots.append(("monthly", month, (1100, 200)))
    sweep = SweepHeatMap()
    deltas, widths = [0.05, 0.10, 0.15, 0.20, 0.25, 0.30], [5, 10, 25, 50]
    grid = np.array([[1.6 - 4 * (d - 0.12) ** 2 * 20 + 0.004 * w for w in widths] for d in deltas])
    grid[4, 0] = np.nan
    sweep.set_table(pd.DataFrame(grid, index=pd.Index(deltas, name="strategy.short_delta"),
                                 columns=pd.Index(widths, name="strategy.width")), "sharpe")
    shots.append(("sweep", sweep, (900, 320)))
    for name, widget, size in shots:
        widget.resize(*size)
        widget.show()
    for _ in range(20):
        app.processEvents()
    for name, widget, _ in shots:
        widget.export_png(out / f"bt_charts_{name}.png")


if __name__ == "__main__":
    _render(Path(sys.argv[1]))
