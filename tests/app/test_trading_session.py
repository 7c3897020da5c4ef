"""TradingSession on a real SQLite file with the paper broker and the simulated market: place -> fill ->
portfolio, coalesced portfolio updates, a closing order, restart restores, the status bar's account."""

from __future__ import annotations

import dataclasses
import math
import sqlite3

import pytest

from app.self_test_trading import sample_vertical
from app.settings import AppSettings, SettingsError
from app.status_bar import TerminalStatusBar
from app.trading import FeedMarket, TradingSession, day_start_ns
from spx_core.execution.orders import Intent, OrderStatus, Side
from tests.app.trading_factory import drive, running_session, session_on, sim_market


@pytest.fixture
def market():
    return sim_market()


@pytest.fixture
def trading(qapp, tmp_path, market):
    with running_session(tmp_path / "orders.sqlite", market) as session:
        yield session


def _status(session: TradingSession, ref: str) -> OrderStatus:
    return next(s.status for s in session.orders() if s.ref == ref)


def test_paper_order_fills_and_shows_as_a_trade_with_its_legs(trading, market):
    request = sample_vertical(trading.market)
    assert request.side is Side.SELL and len(request.legs) == 2 and request.limit > 0
    seen = []
    trading.order_changed.connect(seen.append)
    result = trading.place(request)
    assert result.verdict.ok, result.verdict.message
    drive(trading, market, steps=3)
    assert _status(trading, request.ref) is OrderStatus.FILLED
    assert seen[0].status is OrderStatus.PENDING and seen[-1].status is OrderStatus.FILLED
    portfolio = trading.refresh_portfolio()
    (trade,) = portfolio.open_trades
    assert request.ref in trade.order_refs and trade.quantity == 1
    assert {leg.contract for leg in trade.legs} == {leg.contract for leg in request.legs}
    assert all(math.isfinite(portfolio.marks[c]) for c in trade.contracts)
    account = portfolio.account
    assert account is not None and account.maintenance_margin > 0
    # net liquidation = starting cash + realized (the charges) + unrealized at the marks
    assert account.net_liquidation == pytest.approx(100_000 + account.realized_pnl + account.unrealized_pnl)


def test_portfolio_updates_are_coalesced(qtbot, tmp_path, market):
    session, store = session_on(tmp_path / "c.sqlite")
    session._timer.setInterval(200)
    try:
        emitted = []
        session.portfolio_changed.connect(emitted.append)
        drive(session, market, seconds=0.2, steps=20)  # a burst of 20 batches
        qtbot.waitUntil(lambda: len(emitted) >= 1, timeout=2000)
        qtbot.wait(300)
        assert len(emitted) == 1  # one refresh for the whole burst
    finally:
        session.close()
        store.close()


def test_close_request_is_the_opposite_side_of_the_trade_priced_at_the_mid(trading, market):
    request = sample_vertical(trading.market)
    trading.place(request)
    drive(trading, market, steps=3)
    (trade,) = trading.refresh_portfolio().open_trades
    closing = trading.close_request(trade.id)
    assert closing.intent is Intent.CLOSE and closing.trade_id == trade.id
    assert closing.side is Side.BUY and closing.legs == request.legs and closing.quantity == 1
    mark = trade.mark_price(trading.market)
    assert abs(closing.limit - mark) <= 0.025 + 1e-9  # the mid on the 0.05 combo grid


def test_restart_restores_working_orders_positions_and_todays_pnl(qapp, tmp_path, market):
    path = tmp_path / "restart.sqlite"
    session, store = session_on(path)
    drive(session, market)
    filled = sample_vertical(session.market)
    session.place(filled)
    drive(session, market, steps=3)
    resting = sample_vertical(session.market)
    resting = dataclasses.replace(resting, limit=resting.limit + 0.50)
    assert session.place(resting).verdict.ok
    drive(session, market, steps=2)
    assert _status(session, resting.ref) is OrderStatus.SUBMITTED  # asks 0.50 more than the bid: it rests
    before = session.refresh_portfolio()
    session.close()
    store.close()

    again, store2 = session_on(path)
    try:
        assert resting.ref in again.broker.working_refs()  # handed back to the new paper broker
        drive(again, market)
        after = again.refresh_portfolio()
        assert [t.id for t in after.open_trades] == [t.id for t in before.open_trades]
        assert after.account.realized_pnl == pytest.approx(before.account.realized_pnl)
        again.cancel(resting.ref)
        assert _status(again, resting.ref) is OrderStatus.CANCELLED
    finally:
        again.close()
        store2.close()


def test_status_bar_shows_the_broker_and_account(qapp, trading):
    bar = TerminalStatusBar()
    bar.set_trading(trading)
    assert bar.account_label.text() == "Paper · PAPER"
    assert bar.account_label.property("live") == "false"
    bar.set_trading(None)
    assert bar.account_label.text() == "Orders: not connected"


def test_switches_saved_in_the_ini_read_back_as_saved(qapp):
    from app.settings import load_settings, qsettings

    ini = qsettings()
    ini.setValue("settings/ib_live_enabled", "false")  # what a fresh process reads from the INI file: text
    ini.setValue("settings/starting_cash", "25000")
    ini.sync()
    loaded = load_settings()
    assert loaded.ib_live_enabled is False  # bool("false") is True: live trading must never be switched on so
    assert loaded.starting_cash == 25_000.0
    ini.setValue("settings/ib_live_enabled", "true")
    ini.sync()
    assert load_settings().ib_live_enabled is True


@pytest.mark.parametrize("changes, words", [
    ({"broker": "tws"}, "broker 'tws'"), ({"starting_cash": 0.0}, "starting cash"),
    ({"fill_model": "last"}, "fill model"), ({"fill_offset": 0.7}, "fill offset"), ({"latency_ms": -1}, "latency"),
    ({"ib_port": 0}, "IB port"), ({"ib_host": " "}, "IB host"), ({"ib_client_id": -1}, "client id"),
])
def test_trading_settings_are_validated(changes, words):
    with pytest.raises(SettingsError, match=words):
        AppSettings(**changes)


def test_feed_market_follows_the_latest_batch_and_its_companions(market):
    view = FeedMarket()
    batch = market.advance(1.0)
    view.update(batch)
    assert view.now_ns() == batch.snapshot.time_ns
    assert view.snapshot("SPX") is batch.snapshot
    assert set(view.snapshots) == {b.snapshot.underlying for b in (batch, *batch.companions)}
    assert day_start_ns(batch.snapshot.time_ns) <= batch.snapshot.time_ns < day_start_ns(batch.snapshot.time_ns) + 86_400e9


def test_settings_dialog_keeps_and_edits_the_trading_settings(qtbot):
    from app.settings_dialog import SettingsDialog

    mine = AppSettings(starting_cash=25_000.0, fill_model="mid_offset", fill_offset=0.3, latency_ms=250)
    dialog = SettingsDialog(mine)
    qtbot.addWidget(dialog)
    assert dialog.result_settings() == mine  # OK without edits changes nothing
    dialog.fill_combo.setCurrentText("natural")
    dialog.latency_spin.setValue(0)
    assert dialog.result_settings() == mine.with_changes(fill_model="natural", latency_ms=0)


def test_live_trading_needs_the_switch_and_the_typed_confirmation_in_the_settings_dialog(qtbot, qloop):
    # qloop: the IB client library needs the current loop when it is first imported (the app always has one)
    from app.feed import ib_data_settings
    from app.settings_dialog import SettingsDialog
    from app.trading_setup import ib_broker, live_trading_allowed
    from spx_core.execution.ib import LIVE_CONFIRMATION

    dialog = SettingsDialog(AppSettings(broker="ib"))
    qtbot.addWidget(dialog)
    assert dialog.ib_port_spin.value() == 7497 and not dialog.live_check.isChecked()  # paper TWS by default
    assert not live_trading_allowed(dialog.result_settings())
    dialog.live_check.setChecked(True)
    dialog.live_edit.setText("yes")  # switched on, not confirmed
    assert not live_trading_allowed(dialog.result_settings())
    assert not ib_broker(dialog.result_settings()).connection.settings.live_allowed
    dialog.live_edit.setText(LIVE_CONFIRMATION.lower())  # typed exactly, or not at all
    assert not live_trading_allowed(dialog.result_settings())
    dialog.live_edit.setText(LIVE_CONFIRMATION)
    confirmed = dialog.result_settings()
    assert live_trading_allowed(confirmed)  # the gate's live_trading switch
    assert ib_broker(confirmed).connection.settings.live_allowed  # the order connection's live port/account rule
    assert ib_data_settings(confirmed).live_allowed  # the market-data connection's
    assert not live_trading_allowed(confirmed.with_changes(broker="paper"))  # the paper broker is never live


def test_the_window_starts_the_session_with_its_database_and_stops_it_with_the_store(make_window, run_async):
    window = make_window()
    assert window.context.trading is None and window.status.account_label.text() == "Orders: not connected"
    run_async(window.open_store(), timeout=30)
    session = window.context.trading
    assert session is not None and window.status.account_label.text() == "Paper · PAPER"
    assert window.panels["blotter"].session is session and window.panels["positions"].session is session
    window.store = None  # e.g. another database chosen in the settings
    assert window.context.trading is None and window.status.account_label.text() == "Orders: not connected"


def test_positions_held_to_expiry_settle_at_the_watched_close(trading, market, tmp_path):
    """A vertical held through its expiry day's 16:00 close is settled at that close (intrinsic value), once."""
    request = sample_vertical(trading.market)
    assert trading.place(request).verdict.ok
    drive(trading, market, steps=2)
    expiry = request.legs[0].contract.expiry
    close = trading.settlement.instant(request.legs[0].contract)
    last_before_close = None
    for _ in range(400):  # 10-minute steps until the first batch after the close
        batch = market.advance(600.0)
        if batch.snapshot.time_ns <= close:
            last_before_close = batch.snapshot.underlying_price
        trading.on_batch(batch)
        if batch.snapshot.time_ns > close:
            break
    portfolio = trading.refresh_portfolio()
    held = [p for p in portfolio.positions if p.contract.expiry == expiry]
    assert held and all(p.quantity == 0 for p in held)
    assert portfolio.open_trades == ()
    with sqlite3.connect(tmp_path / "orders.sqlite") as db:
        settled = dict(db.execute("SELECT exec_id, price FROM fills WHERE order_id IS NULL").fetchall())
    assert len(settled) == len(request.legs)
    for leg in request.legs:
        c = leg.contract
        intrinsic = max(c.strike - last_before_close, 0.0) if not c.is_call else max(last_before_close - c.strike, 0)
        assert settled[f"expiry:{c.occ_symbol}"] == pytest.approx(intrinsic, abs=1e-6)
    # settling again books nothing twice
    before = [(p.contract, p.realized_pnl) for p in trading.repo.positions(closed_since_ns=0)]
    trading.on_batch(market.advance(600.0))
    assert [(p.contract, p.realized_pnl) for p in trading.repo.positions(closed_since_ns=0)] == before
