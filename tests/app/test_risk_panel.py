"""Risk panel: the tables, gauges, heat map and curve from a risk report; gauges colour at 80/100% of a limit;
an empty book says so; and on a real session after a paper fill the panel shows the book's greeks and stress
matrix exactly as ``portfolio_greeks`` / ``stress`` give them, computed off the GUI thread, one job at a time."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import pytest
from PySide6.QtCore import Qt, QTimer

from app.models.risk_model import EMPTY_BOOK, GREEK_COLUMNS, RiskResult, book_inputs
from app.panels.risk_panel import NO_GUARD, RiskPanel
from app.self_test_trading import sample_vertical
from app.widgets.limit_gauges import AMBER, GREEN, GREY, RED, gauge_color
from spx_core.execution.orders import OrderStatus
from spx_core.risk.greeks import GreekReport, GreekTotals, portfolio_greeks
from spx_core.risk.profiles import PROFILES
from spx_core.risk.scenarios import spot_vol_matrix, stress
from spx_core.strategies.market import Market
from tests.app.trading_factory import running_session, show_panel, sim_market

pytestmark = pytest.mark.qt_log_ignore("propagateSizeHints")


# --- the shapes of API10b.md (RiskReport, VarFigures from branch var; LimitUse, GuardStatus from branch guard) --
@dataclass(frozen=True)
class _Var:
    var95: float
    es95: float
    var99: float
    es99: float
    method: str
    n: int


@dataclass(frozen=True)
class _Report:
    greeks: GreekReport
    historical: _Var | None
    parametric: _Var | None
    named: dict
    matrix: np.ndarray
    matrix_axes: tuple
    pnl_curve: tuple
    notes: tuple = ()


@dataclass(frozen=True)
class _Use:
    name: str
    label: str
    value: float
    limit: float
    pct: float
    unit: str = "$"


@dataclass(frozen=True)
class _Status:
    profile: object
    usage: tuple
    trip: object = None
    time_ns: int = 0
    state: object = None
    extra: dict = field(default_factory=dict)


def _totals(k: float) -> GreekTotals:
    return GreekTotals(k, 100 * k, 50 * k, -3 * k, -20 * k, 7 * k)


def _hand_report(historical: _Var | None = None) -> _Report:
    from datetime import date

    greeks = GreekReport(_totals(3.0), {"a": None, "b": None}, {date(2024, 3, 15): _totals(1.0), date(2024, 3, 20): _totals(2.0)}, {})
    grid = spot_vol_matrix()
    matrix = np.arange(len(grid), dtype=float).reshape(grid.shape) * 100.0 - 2000.0
    matrix[0, 0] = math.nan
    spots = np.linspace(4505.0, 5505.0, 21)  # 5000 (the breakeven) between two points
    return _Report(greeks, historical, _Var(900.0, 1200.0, 1500.0, 1900.0, "delta-gamma-vega, Cornish-Fisher", 500),
                   {"flash crash -10%": -4321.0, "one day of decay": 55.0}, matrix,
                   (np.round(np.arange(-0.15, 0.10 + 1e-9, 0.025), 4), np.arange(-10.0, 30.0 + 1e-9, 5.0)),
                   (spots, (spots - 5000.0) * 2.0, (spots - 5000.0) * 3.0))


@pytest.fixture
def panel(qtbot):
    p = RiskPanel(refresh_seconds=0.05)
    qtbot.addWidget(p)
    p.resize(1400, 800)
    p.show()
    yield p
    p.shutdown()


def test_a_report_fills_every_view(panel):
    report = _hand_report()
    by_trade = {"#1 put credit vertical": _totals(0.5)}
    panel.show_result(RiskResult(report, by_trade, 5000.0, "", ("VaR: store too short",), {}, 0.01))
    m = panel.greeks_model
    labels = [m.data(m.index(r, 0)) for r in range(m.rowCount())]
    assert labels == ["By expiry", "2024-03-15", "2024-03-20", "By trade", "#1 put credit vertical", "Total"]
    total = m.total_row()
    assert [m.value(total, name) for name, _ in GREEK_COLUMNS] == [3.0, 300.0, 150.0, -9.0, -60.0, 21.0]
    assert m.data(m.index(total, 2)) == "+300" and m.data(m.index(0, 2)) == ""  # a section title has no zeros
    hm = panel.heat_map.model
    assert (hm.rowCount(), hm.columnCount()) == report.matrix.shape == (11, 9)
    assert hm.headerData(0, Qt.Orientation.Vertical) == "SPX -15.0%"
    assert hm.headerData(8, Qt.Orientation.Horizontal) == "IV +30"
    assert hm.data(hm.index(0, 0)) == "—" and hm.data(hm.index(10, 8)) == f"{report.matrix[10, 8]:+,.0f}"
    # historical not available: "—", not a zero; the parametric beside it
    assert panel.var_model.rows()[0][0] == "VaR 95%"
    assert panel.var_model.data(panel.var_model.index(0, 1)) == "—"
    assert panel.var_model.data(panel.var_model.index(0, 2)) == "900"
    assert panel.named_model.data(panel.named_model.index(0, 1)) == "-4,321"
    assert panel.notes_label.text() == "VaR: store too short"
    np.testing.assert_array_equal(panel.curve.data.t0, report.pnl_curve[1])
    assert panel.curve.breakeven_positions == pytest.approx([5000.0])
    assert panel.populated


def test_heat_map_colours_red_white_green(panel):
    from app.widgets.heat_map import pnl_color

    assert pnl_color(-10.0, 10.0).name() == "#d73027" and pnl_color(10.0, 10.0).name() == "#1a9850"
    assert pnl_color(0.0, 10.0).name() == "#ffffff"
    assert pnl_color(math.nan, 10.0) != pnl_color(0.0, 10.0)


def test_gauges_colour_at_80_and_100_percent(panel):
    assert gauge_color(79.9) == GREEN and gauge_color(80.0) == AMBER and gauge_color(99.9) == AMBER
    assert gauge_color(100.0) == RED and gauge_color(250.0) == RED and gauge_color(math.nan) == GREY
    usage = (_Use("max_delta", "portfolio delta", 400.0, 1000.0, 40.0),
             _Use("max_vega", "portfolio vega", 850.0, 1000.0, 85.0),
             _Use("max_daily_loss", "daily loss", 1000.0, 1000.0, 100.0),
             _Use("max_margin", "margin", math.nan, 5000.0, math.nan))
    panel.set_guard_status(_Status(PROFILES[next(iter(PROFILES))], usage))
    bars = panel.gauges.bars
    assert {k: bars[k].color for k in bars} == {"max_delta": GREEN, "max_vega": AMBER, "max_daily_loss": RED,
                                                 "max_margin": GREY}
    assert panel.gauges.texts["max_daily_loss"].text() == "$1,000 / $1,000 (100%)"
    assert panel.gauges.texts["max_margin"].text() == "unknown / $5,000"


# --- on a real session ----------------------------------------------------------------------------------------
@pytest.fixture
def live(qtbot, tmp_path):
    market = sim_market()
    with running_session(tmp_path / "risk.sqlite") as session:
        p = RiskPanel(refresh_seconds=0.05)
        show_panel(qtbot, p, session, (1400, 800))

        def feed(steps: int = 1) -> None:
            for _ in range(steps):
                batch = market.advance(1.0)
                session.on_batch(batch)
                p.on_batch(batch)

        feed()
        yield p, session, feed
        p.shutdown()


def test_an_empty_book_says_so(live, qtbot):
    panel, session, _feed = live
    qtbot.waitUntil(lambda: panel.result is not None, timeout=10_000)
    assert panel.result.report is None and panel.status_label.text() == EMPTY_BOOK
    assert panel.greeks_model.rowCount() == 0 and panel.heat_map.model.rowCount() == 0
    assert panel.curve.message_text == EMPTY_BOOK
    if session.guard is None:
        assert panel.gauges.message.text() == NO_GUARD


def _fill(session, feed) -> None:
    request = sample_vertical(session.market)
    assert session.place(request).verdict.ok
    feed(3)
    assert next(s for s in session.orders() if s.ref == request.ref).status is OrderStatus.FILLED
    session.refresh_portfolio()


def test_after_a_paper_fill_the_panel_shows_the_books_greeks_and_stresses(live, qtbot):
    pytest.importorskip("spx_core.risk.report")  # branch var
    panel, session, feed = live
    _fill(session, feed)
    qtbot.waitUntil(lambda: panel.populated, timeout=30_000)
    result = panel.result
    book = book_inputs(session.portfolio)[0]
    market = Market({u: c.chain for u, c in result.caches.items()})
    want = portfolio_greeks(list(book), market).total
    m = panel.greeks_model
    for name, _ in GREEK_COLUMNS:
        assert m.value(m.total_row(), name) == pytest.approx(getattr(want, name), abs=1e-9, rel=0)
    grid = spot_vol_matrix()
    expected = stress(list(book), market, grid).reshape(grid.shape)
    hm = panel.heat_map.model
    cells = np.array([[hm.value(r, c) for c in range(hm.columnCount())] for r in range(hm.rowCount())])
    np.testing.assert_allclose(cells, expected, rtol=0, atol=1e-9)
    trade = session.portfolio.open_trades[0]
    for name, _ in GREEK_COLUMNS:  # the trades' greeks add up to the book's (one trade holds it all)
        assert sum(getattr(t, name) for t in result.by_trade.values()) == pytest.approx(getattr(want, name),
                                                                                       abs=1e-9, rel=0)
    label = f"#{trade.id} {trade.name.split(' ', 2)[2]}"  # "SPXW 2024-03-15 " left out: the expiry row says it
    assert any(m.data(m.index(r, 0)) == label for r in range(m.rowCount())), label
    assert panel.self_test_status()[0] and panel.status_label.text().startswith("2 positions")
    # the guard's limit use after the refresh: one gauge per limit, coloured by its use
    status = session.guard.status
    assert status is not None and status.usage and panel.guard_status is status
    for use in status.usage:
        bar = panel.gauges.bars[use.name]
        assert bar.pct == pytest.approx(use.pct, nan_ok=True) and bar.color == gauge_color(use.pct)


def test_the_job_runs_off_the_gui_thread_one_at_a_time(live, qtbot, monkeypatch):
    import app.panels.risk_panel as module

    panel, session, _feed = live
    threads, books = [], []

    def slow(inputs):
        threads.append(threading.current_thread())
        books.append(inputs.book)
        time.sleep(0.4)
        return RiskResult(None, reason=EMPTY_BOOK if not inputs.book else "test", caches=inputs.caches)

    monkeypatch.setattr(module, "compute_risk", slow)
    ticks = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start(20)
    panel.refresh(full=True)
    qtbot.waitUntil(lambda: len(threads) >= 1, timeout=5_000)
    started = len(books)
    # three newer books while the job runs: they replace each other, only the newest is computed next
    for n in (1, 2, 3):
        panel.set_portfolio(_with_positions(session.portfolio, n))
        assert panel.status_label.text() == "computing…"
    qtbot.waitUntil(lambda: len(books) >= started + 1, timeout=5_000)
    qtbot.wait(600)
    timer.stop()
    assert all(t is not threading.main_thread() for t in threads)
    assert len(books) == started + 1 and len(books[-1]) == 3
    assert len(ticks) >= 20  # the GUI kept running while the worker slept


def _with_positions(portfolio, n: int):
    """``portfolio`` holding ``n`` made-up positions (only their contract and quantity are read)."""
    from dataclasses import replace
    from types import SimpleNamespace

    from tests.app.trading_factory import LONG_PUT, SHORT_PUT

    contracts = [SHORT_PUT, LONG_PUT, SHORT_PUT.__class__(SHORT_PUT.root, SHORT_PUT.expiry, 5050.0,
                                                           SHORT_PUT.right)]
    return replace(portfolio, positions=tuple(SimpleNamespace(contract=c, quantity=1) for c in contracts[:n]))


def _daily_bars(store, days: int = 150) -> None:
    """SPX and VIX daily closes on the business days before the simulated session (a seeded random walk)."""
    import pandas as pd

    rng = np.random.default_rng(11)
    times = pd.bdate_range(end="2024-03-12", periods=days, tz="America/New_York") + pd.Timedelta(hours=16)
    spx = 5000.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, days)))
    vix = np.clip(15.0 + np.cumsum(rng.normal(0.0, 0.8, days)), 9.0, None)
    for symbol, close in (("SPX", spx), ("VIX", vix)):
        store.save_bars(symbol, pd.DataFrame({"time": times, "open": close, "high": close, "low": close,
                                              "close": close, "volume": 0}))


def test_var_from_the_windows_store_read_once_a_day(live, qtbot, tmp_path, monkeypatch):
    from spx_core.risk import history
    from spx_core.storage import Store

    panel, session, feed = live
    store = Store.open(tmp_path / "bars.sqlite")
    _daily_bars(store)
    panel.context.set_store(store)
    reads = []
    real = history.return_history
    monkeypatch.setattr(history, "return_history", lambda *a, **k: reads.append(k) or real(*a, **k))
    _fill(session, feed)
    qtbot.waitUntil(lambda: panel.populated, timeout=30_000)
    for _ in range(2):  # later jobs on new data reuse the day's history
        shown = panel.results
        feed()
        qtbot.waitUntil(lambda shown=shown: panel.results > shown, timeout=30_000)
    rows = dict(panel.var_model.rows())
    hist, para = rows["VaR 95%"]
    assert 0 < hist <= rows["ES 95%"][0] and 0 < para <= rows["ES 95%"][1]
    assert rows["VaR 99%"][0] <= rows["ES 99%"][0]
    assert panel.var_model.data(panel.var_model.index(0, 1)) != "—"
    assert "historical (" in panel.var_method.text() and "parametric (" in panel.var_method.text()
    assert len(reads) == 1 and reads[0]["end_ns"] <= session.market.now_ns()  # once a day, never past the feed
    store.close()
