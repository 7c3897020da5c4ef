"""MarketPanel in a real offscreen window: real S&P 500 / VIX daily bars in a store, a simulated chain."""

from __future__ import annotations

import math
import time
from datetime import date, datetime

import numpy as np
import pandas as pd
import pytest

from app.main_window import PANELS
from app.panels.market_panel import HISTORY_SESSIONS, NO_BARS_CHART, ROWS, MarketPanel
from spx_core.analytics.market_bars import NO_SPX_BARS
from spx_core.analytics.market_state import BarsCache
from spx_core.analytics.volatility import yang_zhang
from spx_core.domain import ET
from spx_core.marketdata.simulator import SimulatedMarket, SimulatorConfig
from spx_core.storage import Store

pytestmark = pytest.mark.qt_log_ignore("propagateSizeHints", "does not support raise")

# inside the sample data (S&P 500 to 2018-12-31, VIX from 2014): every bar-based figure can be filled
START = datetime(2018, 6, 13, 11, 0, tzinfo=ET)


def csv_bars(path, columns: dict[str, str]) -> pd.DataFrame:
    """pandas' own reading of a daily CSV (an independent reference for the importer), one row per date."""
    raw = pd.read_csv(path, na_values=["."])
    frame = pd.DataFrame({"date": pd.to_datetime(raw["Date"], format="%m/%d/%Y").dt.date})
    for name, column in columns.items():
        frame[name] = raw[column].astype(float)
    return frame.dropna(subset=["close"]).set_index("date")


@pytest.fixture(scope="module")
def bars():
    from tests.conftest import SHARED_DATA

    folder = SHARED_DATA / "index_daily"
    if not folder.is_dir():
        pytest.skip(f"real index data folder {folder} is absent")
    spx = csv_bars(folder / "sp500.csv.gz", {"open": "Open", "high": "High", "low": "Low", "close": "Close"})
    return folder, spx, csv_bars(folder / "vix.csv.gz", {"close": "vix"})


@pytest.fixture
def store(tmp_path, bars):
    from spx_core.marketdata.importers import ImportStatus, import_files

    with Store.open(tmp_path / "market.sqlite") as s:
        reports = import_files(s, [bars[0] / "sp500.csv.gz", bars[0] / "vix.csv.gz"], "daily-bars")
        assert [r.status for r in reports] == [ImportStatus.IMPORTED] * 2
        yield s


@pytest.fixture(scope="module")
def market():
    return SimulatedMarket(SimulatorConfig(seed=5, start=START, spot=2780.0))


@pytest.fixture(scope="module")
def batch(market):
    return market.advance(1.0)


@pytest.fixture(scope="module")
def fitted():
    """One bars cache for the module: the GARCH and mixture fits of the stored bars are done once."""
    return BarsCache()


def make_panel(qtbot, store=None, cache: BarsCache | None = None, **kwargs) -> MarketPanel:
    panel = MarketPanel(**kwargs)
    if cache is not None:
        panel.cache = cache
    qtbot.addWidget(panel)
    panel.resize(520, 640)
    panel.show()
    if store is not None:
        panel.set_store(store)
    return panel


def wait_result(qtbot, panel: MarketPanel, n: int = 1) -> None:
    qtbot.waitUntil(lambda: panel.results >= n or bool(panel.last_error), timeout=60_000)
    assert not panel.last_error, panel.last_error


def test_registered_once_in_the_panel_list():
    assert [spec.key for spec in PANELS].count("market") == 1
    assert next(spec.panel for spec in PANELS if spec.key == "market") is MarketPanel


def test_panel_shows_the_market_state_from_stored_bars_and_the_chain(qtbot, store, batch, bars, fitted):
    panel = make_panel(qtbot, store, fitted)
    panel.on_batch(batch)
    wait_result(qtbot, panel)
    state = panel.state
    # bars strictly before the snapshot's session
    assert state.spx_as_of == date(2018, 6, 12) and state.vix_as_of == date(2018, 6, 12)
    spx = bars[1][bars[1].index < date(2018, 6, 13)]
    o, h, lo, c = (spx[k].to_numpy() for k in ("open", "high", "low", "close"))
    assert state.rv_yz_20d == pytest.approx(yang_zhang(o, h, lo, c, 20)[-1], rel=1e-12)
    assert state.vix == bars[2]["close"][date(2018, 6, 12)]
    for name in ("vix", "vix_rank", "rv_yz_20d", "garch_vol", "trend", "atm_iv_30d", "term_slope_volpts",
                 "vrp_volpts", "expected_move"):
        assert state.has(name), (name, state.why(name))
    assert not state.notes  # the bars are current for this session
    # the 30d ATM IV is the whole fitted surface's (the state evaluates only the expiries up to 30 days)
    assert state.atm_iv_30d == float(panel.result.surface.iv(k=np.array(0.0), t=np.array(30 / 365)))
    assert len(panel.result.surface.expiries) > 50
    # what a trader reads: the VIX, the expected move, the VRP sign, and the reason for the one gap
    text = {title: panel.values[title].text() for title, *_ in ROWS}
    assert text["VIX"].startswith(f"{state.vix:.2f}")
    assert text["Expected move (1 SD)"].startswith(f"±{state.expected_move:.1f} pts")
    assert text["VRP (IV 30d - RV 21d)"] == f"{state.vrp_volpts:+.1f} vol pts"
    assert text["IV rank / pct (ATM)"] == "n/a"
    assert "no stored ATM IVs" in panel.values["IV rank / pct (ATM)"].toolTip()
    assert sum(t != "n/a" for t in text.values()) == len(ROWS) - 1
    assert panel.self_test_status()[0]
    # the chart: a year of realized vol (percent) and VIX, the 30d ATM IV as a line
    x, y = panel.chart.rv_yz.getData()
    assert len(x) == HISTORY_SESSIONS and y[-1] == pytest.approx(state.rv_yz_20d * 100.0)
    _, v = panel.chart.vix.getData()
    assert v[-1] == state.vix and panel.chart.atm.isVisible()
    assert panel.chart.atm.value() == pytest.approx(state.atm_iv_30d * 100.0)
    assert panel.chart_stack.currentWidget() is panel.chart
    assert "SPX" in panel.status_label.text()
    panel.shutdown()


def test_no_database_says_how_to_open_one(qtbot, batch):
    panel = make_panel(qtbot)
    panel.on_batch(batch)
    wait_result(qtbot, panel)
    assert panel.status_label.text().startswith("no data: no database open")
    assert panel.values["VIX"].text() == "n/a" and panel.values["ATM IV 30d"].text() != "n/a"
    panel.shutdown()


def test_empty_store_says_which_file_to_import(qtbot, tmp_path, batch):
    with Store.open(tmp_path / "empty.sqlite") as empty:
        panel = make_panel(qtbot, empty)
        panel.on_batch(batch)
        wait_result(qtbot, panel)
        assert panel.status_label.text() == f"no data: {NO_SPX_BARS}"
        assert NO_SPX_BARS in panel.values["Realized YZ 10/20/30d"].toolTip()
        # the chart says which files to import instead of empty axes with a made-up date axis
        assert panel.chart_stack.currentWidget() is panel.chart_empty and not panel.chart.isVisible()
        assert panel.chart_empty.isVisible() and panel.chart_empty.text() == NO_BARS_CHART
        panel.shutdown()


def test_recomputes_at_most_once_a_second_and_fits_bars_once(qtbot, store, market):
    panel = make_panel(qtbot, store)
    t0 = time.monotonic()
    deadline = t0 + 3.0
    while time.monotonic() < deadline:  # batches at ~20 Hz, each 30 market seconds apart (enough to refit)
        panel.on_batch(market.advance(30.0))
        qtbot.wait(50)
    elapsed = time.monotonic() - t0
    wait_result(qtbot, panel)
    assert 1 <= panel.results <= math.floor(elapsed) + 1
    assert panel.cache.misses == 1  # GARCH and the mixture fitted once for the session's bars
    assert panel.loader.loads == 1  # bars read once (re-read every minute)
    panel.shutdown()


def test_atm_iv_rank_from_snapshots_stored_on_earlier_days(qtbot, store, batch, fitted):
    from spx_core.analytics.iv_rank import atm_iv
    from tests.chains import make_chain

    days = pd.bdate_range(end=date(2018, 6, 12), periods=25)
    stored = []
    for i, day in enumerate(days):  # one snapshot a day at 15:00 ET, smiles shifted up day by day
        now = datetime(day.year, day.month, day.day, 15, 0, tzinfo=ET)
        snap, _ = make_chain(n_expiries=4, now=now, spot=2780.0, strikes_per_expiry=40,
                             svi_for=lambda t, i=i: (0.0004 * i + 0.01 * t, 0.1 * math.sqrt(t), -0.6, 0.0, 0.1))
        store.save_snapshot(snap, source="test", session=f"d{i}")
        stored.append(atm_iv(snap))
    panel = make_panel(qtbot, store, fitted)
    panel.on_batch(batch)
    wait_result(qtbot, panel)
    state = panel.state
    from spx_core.analytics.iv_rank import iv_percentile, iv_rank

    assert state.has("atm_iv_rank"), state.why("atm_iv_rank")
    assert state.atm_iv_rank == pytest.approx(iv_rank(np.array(stored), state.atm_iv_30d))
    assert state.atm_iv_percentile == pytest.approx(iv_percentile(np.array(stored), state.atm_iv_30d))
    assert panel.values["IV rank / pct (ATM)"].text() == f"{state.atm_iv_rank:.0f} / {state.atm_iv_percentile:.0f}"
    panel.refresh(full=True)
    wait_result(qtbot, panel, 2)
    assert panel.loader.atm_loads == 1  # the history before a session is read once
    panel.shutdown()


def test_panel_is_freed_by_reference_counting_not_left_to_the_collector(qtbot, store):
    # A reference cycle through the widget lets the garbage collector free it later on whatever thread
    # allocates at that moment (a fit worker): Qt then warns "Timers cannot be started from another thread".
    import gc
    import weakref

    from app.context import AppContext
    from app.settings import AppSettings

    context = AppContext(AppSettings())
    context.set_store(store)
    panel = MarketPanel()
    panel.bind(context)
    ref = weakref.ref(panel)
    gc.disable()
    try:
        panel.shutdown()
        del panel
        assert ref() is None
    finally:
        gc.enable()


def test_in_the_main_window_the_panel_reads_the_windows_database(make_window, qtbot, run_async, tmp_path, bars):
    from spx_core.marketdata.importers import import_files

    db = tmp_path / "terminal.sqlite"
    with Store.open(db) as s:
        import_files(s, [bars[0] / "sp500.csv.gz", bars[0] / "vix.csv.gz"], "daily-bars")
    window = make_window(db_path=str(db))
    panel = window.panels["market"]
    run_async(window.start_feed(), timeout=30)  # the simulated market runs today: the sample bars end in 2018
    qtbot.waitUntil(lambda: panel.results >= 1 or bool(panel.last_error), timeout=60_000)
    assert not panel.last_error, panel.last_error
    state = panel.state
    assert state.spx_as_of == date(2018, 12, 31) and state.vix_as_of == date(2019, 1, 3)
    assert "stale bars: SPX to 2018-12-31, VIX to 2019-01-03" in panel.status_label.text()
    assert "import recent SPX bars with spx-data import" in panel.status_label.toolTip()
    # realized vol from 2018 is shown (dated) but never set against today's implied vol
    assert panel.values["Realized YZ 10/20/30d"].text() != "n/a"
    assert panel.values["VRP (IV 30d - RV 21d)"].text() == "n/a"
    assert "realized vol is not current" in panel.values["VRP (IV 30d - RV 21d)"].toolTip()


def test_by_default_a_tab_beside_the_surface_that_leaves_the_chain_its_width(make_window, qtbot, run_async):
    window = make_window()
    window.resize(1280, 720)
    qtbot.wait(400)  # the default split runs after the show (and again 250 ms later)
    docks = window.docks
    assert docks["market"] in window.tabifiedDockWidgets(docks["surface"])
    assert docks["chain"].width() >= 0.55 * window.width()  # the market no longer takes a column of its own
    panel = window.panels["market"]
    assert panel.visibleRegion().isEmpty()  # the surface is in front
    # covered by the surface, it still computes: the scanner's entry gate reads its state
    run_async(window.start_feed(), timeout=30)
    qtbot.waitUntil(lambda: panel.results >= 1 or bool(panel.last_error), timeout=60_000)
    assert not panel.last_error, panel.last_error
    assert panel.visibleRegion().isEmpty()  # computed while covered
    assert window.context.market_state is panel.state
    # the expected move fits on one line of the value column at the right column's width
    docks["market"].raise_()
    qtbot.waitUntil(lambda: not panel.visibleRegion().isEmpty(), timeout=5_000)
    label = panel.values["Expected move (1 SD)"]
    assert label.text().startswith("±")
    assert label.fontMetrics().horizontalAdvance(label.text()) <= label.width(), (label.text(), label.width())
