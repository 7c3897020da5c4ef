"""TradingSession with the Interactive Brokers broker against the fake IB Gateway (real ib_insync / ib_async
client over loopback): connects on the running loop, the status bar shows the IB account and the position check,
an order placed through the session fills and is stored, and IB's positions then match the stored book; a live port
without the typed confirmation is refused in one line."""

from __future__ import annotations

from dataclasses import replace

import pytest

from app.self_test_trading import sample_vertical
from app.settings import AppSettings
from app.status_bar import TerminalStatusBar
from app.trading_setup import open_session
from spx_core.execution.orders import OrderStatus
from spx_core.storage import Store
from tests.app.trading_factory import START, drive, sim_market
from tests.fakes.fixtures import fail_on_client_errors, free_port  # noqa: F401 (pytest fixture; tests/fakes' README)
from tests.fakes.ib_gateway import FakeGateway

pytestmark = pytest.mark.usefixtures("fail_on_client_errors")


@pytest.fixture
def gateway():
    gw = FakeGateway(account="DU1234567", today=START.date())
    host, port = gw.start_in_thread()
    yield gw, host, port
    gw.stop()


@pytest.fixture
def store(tmp_path):
    s = Store.open(tmp_path / "ib.sqlite")
    yield s
    s.close()


def test_ib_session_connects_shows_the_account_and_fills(qtbot, qloop, gateway, store, request):
    request.getfixturevalue("fail_on_client_errors").allow(1102)  # the 1102 below asks for a reconciliation
    gw, host, port = gateway
    session = open_session(store, AppSettings(broker="ib", ib_host=host, ib_port=port, ib_client_id=5),
                           refresh_ms=0)
    bar = TerminalStatusBar()
    qtbot.addWidget(bar)
    session.broker_changed.connect(bar.set_trading)
    try:
        qtbot.waitUntil(lambda: session.broker.connected, timeout=15_000)
        assert bar.account_label.text() == "IB paper · DU1234567"
        assert bar.account_label.property("live") == "false"
        qtbot.waitUntil(lambda: session.position_check is not None, timeout=15_000)
        assert bar.account_label.toolTip() == ("IB DU1234567 (paper): connected\n"
                                               "IB positions match the book (0 contracts)")
        market = sim_market()
        drive(session, market)
        request = sample_vertical(session.market, broker=session.broker_name)
        gw.fill_next()
        result = session.place(request)
        assert result.verdict.ok, result.verdict.message
        qtbot.waitUntil(lambda: _status(session, request.ref) is OrderStatus.FILLED, timeout=15_000)
        (trade,) = session.refresh_portfolio().open_trades
        assert request.ref in trade.order_refs
        stored = next(s for s in session.repo.orders() if s.ref == request.ref)  # from the store, not memory
        assert len(stored.fills) == 2 and stored.commission == pytest.approx(2 * 0.65)  # IB's report per leg
        # the account line is IB's account (1,000,000 at the fake), not the paper starting cash of the settings
        ib = gw.blotter.account_values()  # as TWS pushes them after the fill (they arrive a little later)
        ib["DailyPnL"] = round(ib["UnrealizedPnL"] + ib["RealizedPnL"], 2)  # the fake's reqPnL answer
        tags = {"net_liquidation": "NetLiquidation", "buying_power": "BuyingPower",
                "maintenance_margin": "MaintMarginReq", "day_pnl": "DailyPnL"}

        def ibs() -> bool:
            account = session.refresh_portfolio().account
            return all(getattr(account, name) == pytest.approx(ib[tag], abs=0.01) for name, tag in tags.items())

        qtbot.waitUntil(ibs, timeout=5_000)
        assert ib["MaintMarginReq"] > 0 and ib["NetLiquidation"] > 500_000  # the settings' cash is 100,000
        # the ticket's "Broker what-if" line: asked in the background, IB's answer on a later refresh
        assert session.what_if(request) is None
        qtbot.waitUntil(lambda: session.what_if(request) is not None, timeout=5_000)
        what_if = session.what_if(request)
        assert what_if.source == "IB what-if" and what_if.init_margin_change > 0 and what_if.commission > 0
        checked = []
        session.positions_checked.connect(checked.append)
        gw.connectivity_restored()  # 1102: reconciled again, IB's positions compared with the stored book
        qtbot.waitUntil(lambda: bool(checked), timeout=15_000)
        assert checked[0].message == "IB positions match the book (2 contracts)"
    finally:
        session.close()
        qtbot.wait(200)  # the scheduled disconnect runs on the loop


def test_a_live_port_without_the_confirmation_is_refused_in_one_line(qtbot, qloop, store):
    session = open_session(store, AppSettings(broker="ib", ib_port=7496), refresh_ms=0)
    try:
        qtbot.waitUntil(lambda: bool(session.link_message), timeout=5_000)
        assert "LIVE trading port" in session.link_message and "\n" not in session.link_message
        assert not session.broker.connected and session.describe().endswith("(not connected)")
        drive(session, sim_market())
        verdict = session.preview(sample_vertical(session.market, broker=session.broker_name))
        assert not verdict.ok  # nothing can be sent: not connected
    finally:
        session.close()
        qtbot.wait(100)


def _status(session, ref: str) -> OrderStatus:
    return next(s.status for s in session.orders() if s.ref == ref)


def test_a_confirmed_live_account_shows_in_red(qtbot, qloop, store):
    from spx_core.execution.ib import LIVE_CONFIRMATION

    gw = FakeGateway(account="U7654321", today=START.date())
    host, port = gw.start_in_thread()
    settings = AppSettings(broker="ib", ib_host=host, ib_port=port, ib_client_id=6, ib_live_enabled=True,
                           ib_live_confirmation=LIVE_CONFIRMATION)
    session = open_session(store, settings, refresh_ms=0)
    bar = TerminalStatusBar()
    qtbot.addWidget(bar)
    session.broker_changed.connect(bar.set_trading)
    try:
        qtbot.waitUntil(lambda: session.broker.connected, timeout=15_000)
        assert session.is_live and bar.account_label.text() == "IB LIVE · U7654321"
        assert bar.account_label.property("live") == "true" and "#ff3b30" in bar.account_label.styleSheet()
        drive(session, sim_market())
        request = sample_vertical(session.market, broker=session.broker_name)
        assert "live_trading" not in session.preview(request).message  # switched on and confirmed: the gate agrees
    finally:
        session.close()
        qtbot.wait(200)
        gw.stop()


def test_a_session_started_before_tws_connects_once_tws_listens(qtbot, qloop, store, fail_on_client_errors):
    fail_on_client_errors.allow("API connection failed", "Make sure API port")
    port = free_port()  # nothing listens here yet
    session = open_session(store, AppSettings(broker="ib", ib_port=port, ib_client_id=7), refresh_ms=0)
    session.broker.connection.settings = replace(session.broker.connection.settings, connect_timeout=1.0,
                                                 reconnect_delay=0.05, reconnect_max_delay=0.1)
    gw = FakeGateway(account="DU1234567", today=START.date(), port=port)
    try:
        qtbot.waitUntil(lambda: "next try in" in session.link_message, timeout=5_000)
        assert session.describe() == "IB paper · no account yet (not connected)"
        gw.start_in_thread()  # TWS is started after the app
        qtbot.waitUntil(lambda: session.broker.connected, timeout=10_000)
        assert session.describe() == "IB paper · DU1234567"
    finally:
        session.close()
        qtbot.wait(200)
        gw.stop()
