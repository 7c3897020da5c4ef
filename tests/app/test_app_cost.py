"""The cost of leaving the app open (issue 7, section 5): nothing computed that is not shown, and the
surface refitted only when the market moved. (The GL part runs under Xvfb: test_gl_view.py; the figure:
``python -m tests.benchmarks --only app_cpu``.)"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest

from app.main_window import MainWindow
from app.panels.surface_panel import REFIT_INDEX_MOVE, REFIT_MARKET_SECONDS, SurfacePanel
from app.settings import AppSettings
from spx_core.domain import ET
from spx_core.marketdata.simulator import SimulatedMarket, SimulatorConfig
from spx_core.marketdata.source import QuoteBatch

pytestmark = pytest.mark.qt_log_ignore("propagateSizeHints")

START = datetime(2024, 3, 13, 11, 0, tzinfo=ET)


@pytest.fixture
def surface(qtbot):
    p = SurfacePanel(refit_seconds=0.02, use_gl=False)
    qtbot.addWidget(p)
    p.show()
    yield p
    p.shutdown()


def _moved_index(batch: QuoteBatch, seconds: float, move: float) -> QuoteBatch:
    snap = batch.snapshot
    moved = snap.replace_quotes(time=snap.time_ns + int(seconds * 1e9), underlying_price=snap.underlying_price * (1 + move))
    return QuoteBatch(moved, np.zeros(0, np.int64), False, batch.sequence + 1)


def test_surface_refits_after_enough_market_time_not_on_every_tick(surface, qtbot):
    market = SimulatedMarket(SimulatorConfig(seed=5, start=START))
    surface.on_batch(market.advance(1.0))
    qtbot.waitUntil(lambda: surface.fits == 1, timeout=30_000)
    for _ in range(int(REFIT_MARKET_SECONDS) - 2):
        tick = market.advance(1.0)
        assert len(tick.changed) > 0  # quotes did move...
        surface.on_batch(tick)
    qtbot.wait(300)
    assert surface.fits == 1  # ...but a 1 s tick at 1x is not worth a 0.1 s fit
    surface.on_batch(market.advance(2.0))  # REFIT_MARKET_SECONDS of market time since the fitted snapshot
    qtbot.waitUntil(lambda: surface.fits == 2, timeout=30_000)


def test_surface_refits_at_once_when_the_index_moves(surface, qtbot):
    market = SimulatedMarket(SimulatorConfig(seed=5, start=START))
    first = market.advance(1.0)
    surface.on_batch(first)
    qtbot.waitUntil(lambda: surface.fits == 1, timeout=30_000)
    surface.on_batch(_moved_index(first, 1.0, REFIT_INDEX_MOVE / 4))
    qtbot.wait(300)
    assert surface.fits == 1
    surface.on_batch(_moved_index(first, 1.0, REFIT_INDEX_MOVE * 2))
    qtbot.waitUntil(lambda: surface.fits == 2, timeout=30_000)


def test_a_clock_only_batch_never_refits_the_surface(surface, qtbot):
    market = SimulatedMarket(SimulatorConfig(seed=5, start=START))
    first = market.advance(1.0)
    surface.on_batch(first)
    qtbot.waitUntil(lambda: surface.fits == 1, timeout=30_000)
    surface.on_batch(_moved_index(first, 60.0, 0.0))  # a minute later, nothing moved (e.g. a stale feed)
    qtbot.wait(300)
    assert surface.fits == 1


@pytest.fixture
def window(qtbot, qloop, run_async):
    w = MainWindow(AppSettings(seed=3))
    w.show()
    yield w
    run_async(w.shutdown())
    w.close()
    w.deleteLater()


def test_minimised_window_computes_nothing_and_catches_up_when_restored(window, qtbot, run_async):
    run_async(window.start_feed(), timeout=30)
    chain = window.panels["chain"]
    qtbot.waitUntil(lambda: chain.results >= 1, timeout=20_000)
    window.showMinimized()
    qtbot.waitUntil(lambda: not any(p.running for p in window.panels.values()), timeout=5_000)
    results = {k: p.results for k, p in window.panels.items()}
    batches = window.feed.batches
    qtbot.waitUntil(lambda: window.feed.batches >= batches + 2, timeout=10_000)  # the feed keeps running
    assert {k: p.results for k, p in window.panels.items()} == results  # nothing computed or painted
    missed = window.feed.last_batch.snapshot.time_ns
    window.showNormal()
    qtbot.waitUntil(lambda: chain.results > results["chain"], timeout=10_000)  # caught up at once
    assert chain.latest_batch.snapshot.time_ns >= missed
    assert all(p.running for p in window.panels.values())


def test_hidden_tabified_dock_computes_nothing(window, qtbot, run_async):
    window.tabifyDockWidget(window.docks["chain"], window.docks["surface"])
    window.docks["chain"].raise_()
    surface = window.panels["surface"]
    qtbot.waitUntil(lambda: not surface.on_screen(), timeout=5_000)
    run_async(window.start_feed(), timeout=30)
    chain = window.panels["chain"]
    qtbot.waitUntil(lambda: chain.results >= 2, timeout=20_000)
    assert surface.results == 0 and surface.fits == 0
    window.docks["surface"].raise_()
    qtbot.waitUntil(lambda: surface.fits >= 1, timeout=30_000)
