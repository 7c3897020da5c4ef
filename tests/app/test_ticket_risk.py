"""The order ticket's risk what-if on a real paper session (SQLite store, simulated feed): VaR/ES 95% 1-day, the
worst named stress and the worst spot x IV cell of the book before → after the order, as ``what_if_report``
computes them; the history from the window's store (shared with the risk panel, read once a day); the job off
the GUI thread."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest

from app.models.ticket_risk import figures, pick_var, what_if_lines
from app.panels.risk_panel import RiskPanel
from app.panels.ticket_panel import TicketPanel
from app.self_test_trading import sample_vertical
from spx_core.execution.orders import OrderStatus
from spx_core.risk import history as history_module
from spx_core.risk.report import order_legs, what_if_report
from spx_core.storage import Store
from spx_core.strategies.builders import put_credit_vertical
from tests.app.trading_factory import running_session, show_panel, sim_market

pytestmark = pytest.mark.qt_log_ignore("propagateSizeHints")


def daily_bars(store: Store, days: int = 150) -> None:
    """SPX and VIX daily closes on the business days before the simulated session (a seeded random walk)."""
    import pandas as pd

    rng = np.random.default_rng(11)
    times = pd.bdate_range(end="2024-03-12", periods=days, tz="America/New_York") + pd.Timedelta(hours=16)
    spx = 5000.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, days)))
    vix = np.clip(15.0 + np.cumsum(rng.normal(0.0, 0.8, days)), 9.0, None)
    for symbol, close in (("SPX", spx), ("VIX", vix)):
        store.save_bars(symbol, pd.DataFrame({"time": times, "open": close, "high": close, "low": close,
                                              "close": close, "volume": 0}))


@pytest.fixture
def live(qtbot, tmp_path):
    """A ticket on a paper session holding one put credit vertical; ``feed(n)`` advances the simulator."""
    market = sim_market()
    with running_session(tmp_path / "ticket.sqlite") as session:
        panel = TicketPanel(refresh_seconds=0.05)
        context = show_panel(qtbot, panel, session, (560, 900))

        def feed(steps: int = 1, *others) -> None:
            for _ in range(steps):
                batch = market.advance(1.0)
                session.on_batch(batch)
                for p in (panel, *others):
                    p.on_batch(batch)

        feed()
        request = sample_vertical(session.market)
        assert session.place(request).verdict.ok
        feed(3)
        assert next(s for s in session.orders() if s.ref == request.ref).status is OrderStatus.FILLED
        session.refresh_portfolio()
        yield panel, context, session, feed
        panel.shutdown()


def _open_order(panel, session) -> None:
    """A put vertical above the one held (its long leg nets the held short), sold twice: the order added."""
    snap = session.market.snapshot("SPX")
    short = max(p.contract for p in session.portfolio.positions if p.quantity < 0)
    strikes = sorted({c.strike for c in map(snap.contract, range(len(snap))) if c.expiry == short.expiry and c.right == short.right
                      and c.root == short.root and c.strike > short.strike})
    panel.context.request_trade(put_credit_vertical("SPXW", short.expiry, strikes[0], strikes[0] - short.strike))
    panel.form.quantity_spin.setValue(2)


def _risk_shown(panel) -> bool:
    return panel.risk is not None and panel.risk.before is not None and panel.risk.request.order == tuple(
        (leg.contract, leg.ratio * panel.order.quantity * panel.order.side.sign) for leg in panel.order.legs)


def test_the_what_if_figures_are_what_if_report_of_the_book_and_the_order(live, qtbot, tmp_path):
    panel, context, session, feed = live
    store = Store.open(tmp_path / "bars.sqlite")
    daily_bars(store)
    context.set_store(store)
    try:
        _open_order(panel, session)
        feed()
        qtbot.waitUntil(lambda: _risk_shown(panel), timeout=30_000)
        risk = panel.risk
        request = panel._request()[0]
        assert list(risk.request.order) == order_legs(request)  # all units of the order, signed as held
        book = [(p.contract, int(p.quantity)) for p in session.portfolio.positions]
        assert list(risk.request.book) == book and len(book) == 2
        history = history_module.return_history(store, end_ns=risk.request.now_ns)
        before, after = what_if_report(book, order_legs(request), risk.market, history)
        want = {"var95": (before.historical.var95, after.historical.var95),
                "es95": (before.historical.es95, after.historical.es95),
                "named": (min(before.named.values()), min(after.named.values())),
                "matrix": (float(before.matrix.min()), float(after.matrix.min()))}
        got = figures(risk)
        for key, pair in want.items():
            assert got[key] == pytest.approx(pair, abs=1e-9, rel=0), key
        assert pick_var(risk.before).method.startswith("historical")
        texts, note = what_if_lines(risk)
        assert {k: panel.form.risk[k].text() for k in texts} == texts
        assert panel.form.risk_note.text() == note and note.startswith("VaR/ES historical")
        b, a = want["var95"]
        assert texts["var95"] == f"${b:,.0f} → ${a:,.0f} ({'+' if round(a - b) > 0 else '-'}${abs(a - b):,.0f})"
        tip = panel.form.risk_box.toolTip()
        for name, pnl in before.named.items():  # every named stress before → after in the tooltip
            assert f"{name}: " in tip and f"${abs(pnl):,.0f} → " in tip.split(f"{name}: ")[1].split("\n")[0]
    finally:
        store.close()


def test_without_a_history_the_block_says_how_to_get_one_and_still_shows_the_stresses(live, qtbot):
    panel, context, session, feed = live
    assert context.store is None  # no database open: no daily bars to read
    _open_order(panel, session)
    feed()
    qtbot.waitUntil(lambda: _risk_shown(panel), timeout=30_000)
    risk = panel.risk
    assert risk.before.historical is None and risk.before.parametric is None  # VaR needs the history's moves
    assert panel.form.risk["var95"].text() == "—" and panel.form.risk["es95"].text() == "—"
    note = panel.form.risk_note.text()
    assert "no database open" in note and "spx-data import --format daily-bars" in note
    got = figures(risk)
    assert all(math.isfinite(v) for v in (*got["named"], *got["matrix"]))
    assert panel.form.risk["matrix"].text() != "—" and " → " in panel.form.risk["named"].text()


def test_a_store_too_short_names_the_import_command(live, qtbot, tmp_path):
    panel, context, session, feed = live
    store = Store.open(tmp_path / "short.sqlite")
    daily_bars(store, days=20)
    context.set_store(store)
    try:
        _open_order(panel, session)
        feed()
        qtbot.waitUntil(lambda: _risk_shown(panel), timeout=30_000)
        note = panel.form.risk_note.text()
        assert note.startswith("VaR: only ") and "spx-data import --format daily-bars" in note
    finally:
        store.close()


def test_the_what_if_runs_in_the_worker_and_the_history_is_read_once_for_ticket_and_risk_panel(
        live, qtbot, tmp_path, monkeypatch):
    from app.models import ticket_value

    panel, context, session, feed = live
    threads = []
    real_what_if = ticket_value.compute_what_if
    monkeypatch.setattr(ticket_value, "compute_what_if",
                        lambda *a: threads.append(threading.current_thread()) or real_what_if(*a))
    reads = []
    real_history = history_module.return_history
    monkeypatch.setattr(history_module, "return_history", lambda *a, **k: reads.append(k) or real_history(*a, **k))
    store = Store.open(tmp_path / "bars.sqlite")
    daily_bars(store)
    context.set_store(store)
    risk_panel = RiskPanel(refresh_seconds=0.05)
    risk_panel.bind(context)
    qtbot.addWidget(risk_panel)
    risk_panel.resize(1300, 800)
    risk_panel.show()
    try:
        _open_order(panel, session)
        for _ in range(3):  # later jobs of both panels on new data reuse the day's history
            shown = risk_panel.results
            feed(1, risk_panel)
            qtbot.waitUntil(lambda shown=shown: _risk_shown(panel) and risk_panel.results > shown, timeout=30_000)
        assert risk_panel.populated
        assert threads and all(t is not threading.main_thread() for t in threads)
        assert len(reads) == 1 and reads[0]["end_ns"] <= session.market.now_ns()  # once a day, never past the feed
        assert risk_panel.result.report.historical is not None
    finally:
        risk_panel.shutdown()
        store.close()


def _report(var95: float, *, historical: bool = True, notes: tuple[str, ...] = ()):
    """A RiskReport-like value: historical VaR (NaN: a leg without IV) beside a parametric one, two stresses and
    a 2 x 2 matrix whose worst cell is SPX -10%, IV +10."""
    from types import SimpleNamespace

    from spx_core.risk.var import VarFigures

    hist = VarFigures(var95, var95 * 1.5, var95 * 2, var95 * 3, "historical (full revaluation)", 500)
    para = VarFigures(var95 + 1, var95 * 1.5 + 1, math.nan, math.nan, "parametric (delta-gamma-vega)", 500)
    matrix = np.array([[-3 * var95, -4 * var95], [var95, 0.0]])
    return SimpleNamespace(historical=hist if historical else None, parametric=para,
                           named={"gap down -5%": -2 * var95, "one day of decay": 5.0}, matrix=matrix,
                           matrix_axes=(np.array([-0.10, 0.10]), np.array([-10.0, 10.0])), notes=notes)


def test_the_lines_name_the_method_the_worst_cell_and_a_stale_history():
    from app.models.ticket_risk import RiskRequest, RiskWhatIf

    request = RiskRequest((), (), None, None, None, 0)
    stale = "history ends 2018-12-31, 2900 days before the snapshot: its moves are the scenarios"
    risk = RiskWhatIf(request, _report(100.0, notes=("history: SPX+VIX daily bars", stale)), _report(250.0))
    texts, note = what_if_lines(risk)
    assert texts["var95"] == "$100 → $250 (+$150)" and texts["es95"] == "$150 → $375 (+$225)"
    assert texts["named"] == "-$200 → -$500 (-$300) · gap down -5%"
    assert texts["matrix"] == "-$400 → -$1,000 (-$600) · SPX -10% IV +10"
    assert note == f"VaR/ES historical (full revaluation), 500 days; {stale}"
    # no finite VaR (a leg has no IV to re-price with): "—" and why, never a zero
    texts, note = what_if_lines(RiskWhatIf(request, _report(math.nan), _report(math.nan)))
    assert texts["var95"] == "—" and note.startswith("VaR/ES not available: a leg has no implied vol")
    # no historical VaR but a parametric one: the parametric figures, the method named and why
    para = RiskWhatIf(request, _report(100.0, historical=False), _report(250.0, historical=False),
                      "VaR: only 20 usable days")
    texts, note = what_if_lines(para)
    assert texts["var95"] == "$101 → $251 (+$150)"
    assert note == "VaR/ES parametric (delta-gamma-vega), 500 days (VaR: only 20 usable days)"
