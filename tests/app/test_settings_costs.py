"""Commissions and fees as settings (Settings > Costs): stored and validated, edited in the dialog, charged by the
paper broker of a session opened with them, shown in the ticket's estimate and the backtest form's defaults.

Every figure below is hand-computed on ``tests/execution/gate_market.py``'s chain: the 4700/4675 put credit
vertical sells the 4700P at its bid 10.00 and buys the 4675P at its ask 5.80 (mids 10.10 and 5.90), every
premium >= $1, so each leg pays ``commission`` and ``cboe_fee + occ_fee + orf_fee + cat_fee`` per contract.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from app.context import AppContext
from app.settings import (
    COST_FIGURES,
    AppSettings,
    SettingsError,
    load_settings,
    load_settings_with_notes,
    qsettings,
    save_settings,
)
from spx_core.execution.fees import DEFAULT_FEES
from spx_core.execution.orders import OrderStatus
from spx_core.marketdata.source import QuoteBatch
from tests.app.trading_factory import session_on
from tests.execution.gate_market import chain, put_credit_spread

#: a changed schedule: commission $2.00 at every tier, ORF $0.50 (a rate change), the rest as shipped
CHANGED = {"commission": 2.0, "commission_mid": 2.0, "commission_low": 2.0, "orf_fee": 0.5, "orf_as_of": "2026-10-01"}


def _batch():
    snapshot = chain()
    return QuoteBatch(snapshot, np.arange(len(snapshot), dtype=np.int64), True, 1)


# --- settings -----------------------------------------------------------------------------------------------
def test_cost_defaults_are_the_shipped_schedule_and_changes_round_trip_through_the_ini_file():
    assert AppSettings().fee_schedule() == DEFAULT_FEES
    mine = AppSettings(**CHANGED, cat_fee=0.00295, order_minimum=1.25)
    save_settings(mine)
    assert load_settings() == mine
    schedule = load_settings().fee_schedule()
    assert (schedule.commission, schedule.orf_fee, schedule.cat_fee, schedule.order_minimum) == (2.0, 0.5, 0.00295,
                                                                                                1.25)
    assert schedule.orf_as_of == date(2026, 10, 1)
    assert schedule.commission_mid_below == DEFAULT_FEES.commission_mid_below  # thresholds stay the schedule's


@pytest.mark.parametrize("changes, words", [
    ({"orf_fee": -0.01}, r"ORF -0.01 must be from \$0 to \$10 per contract; fix it in Settings > Costs"),
    ({"commission": 65.0}, r"IBKR commission 65.0 must be from \$0 to \$10 per contract"),
    ({"order_minimum": 11.0}, r"order minimum 11.0 must be from \$0 to \$10 per order"),
    ({"cat_fee": float("nan")}, "CAT fee nan must be"),
    ({"orf_as_of": "1 Nov 2024"}, "ORF date '1 Nov 2024' is not a date; write it as YYYY-MM-DD"),
])
def test_cost_settings_are_validated_in_one_line(changes, words):
    with pytest.raises(SettingsError, match=words) as caught:
        AppSettings(**changes)
    assert "\n" not in str(caught.value)


def test_a_bad_stored_cost_falls_back_alone_and_says_so():
    save_settings(AppSettings(seed=12, theme="light", commission=0.7))
    ini = qsettings()
    ini.setValue("settings/orf_fee", "50")  # a typo in the INI file
    ini.setValue("settings/orf_as_of", "soon")
    ini.sync()
    settings, notes = load_settings_with_notes()
    assert (settings.seed, settings.theme, settings.commission) == (12, "light", 0.7)  # the rest are kept
    assert (settings.orf_fee, settings.orf_as_of) == (AppSettings().orf_fee, AppSettings().orf_as_of)
    assert notes[0].startswith("ORF 50.0 must be from $0 to $10") and notes[0].endswith("using the default 0.02 "
                                                                                          "this time")
    assert notes[1].startswith("ORF date 'soon' is not a date") and len(notes) == 2


def test_a_cost_change_restarts_the_order_service():
    from app.main_window import _trading_settings

    assert _trading_settings(AppSettings(orf_fee=0.03)) != _trading_settings(AppSettings())
    assert _trading_settings(AppSettings(orf_as_of="2026-01-02")) != _trading_settings(AppSettings())


# --- the dialog ---------------------------------------------------------------------------------------------
def test_the_dialog_edits_a_cost_with_its_source_and_restores_the_defaults(qtbot):
    from app.settings_dialog import SettingsDialog

    mine = AppSettings(seed=9, **CHANGED)
    dialog = SettingsDialog(mine)
    qtbot.addWidget(dialog)
    assert dialog.result_settings() == mine  # OK without edits changes nothing
    costs = dialog.costs
    assert set(costs.spins) == set(COST_FIGURES)
    assert "IBKR Pro tiered" in costs.spins["commission"].toolTip()
    assert "Cboe SPX/SPXW fee table" in costs.spins["cboe_fee"].toolTip()
    assert costs.spins["orf_fee"].toolTip().endswith("revised during the year; as of 2026-10-01")
    costs.spins["orf_fee"].setValue(0.02295)
    edited = dialog.result_settings()
    assert edited == mine.with_changes(orf_fee=0.02295)
    save_settings(edited)  # what the window does with an accepted dialog
    assert load_settings().fee_schedule().orf_fee == 0.02295
    costs.restore_button.click()
    restored = dialog.result_settings()
    assert restored.fee_schedule() == DEFAULT_FEES and restored.seed == 9  # only the costs go back


def test_the_dialog_fits_a_1280x720_screen(qtbot):
    from app.settings_dialog import SettingsDialog

    dialog = SettingsDialog(AppSettings())
    qtbot.addWidget(dialog)
    hint = dialog.sizeHint()
    assert hint.width() <= 1280 and hint.height() <= 720 - 60, hint  # room for a title bar and a task bar


# --- the paper broker, the ticket, the backtest form ----------------------------------------------------------
def test_a_paper_session_opened_with_changed_costs_charges_them(qapp, tmp_path):
    session, store = session_on(tmp_path / "costs.sqlite", **CHANGED)
    try:
        session.on_batch(_batch())
        request = put_credit_spread(limit=4.00)  # at the natural price: fills on arrival
        assert session.place(request).verdict.ok
        session.on_batch(_batch())
        (state,) = session.orders()
        assert state.status is OrderStatus.FILLED
        assert state.commission == pytest.approx(2 * 2.00)  # was 2 x $0.65 = $1.30
        # ORF $0.50 (was 2 x $0.495), and the FINRA TAF on the contract sold
        assert state.fees == pytest.approx(2 * (0.45 + 0.02 + 0.50 + 0.005) + 0.00279)
    finally:
        session.close()
        store.close()


def test_the_tickets_estimate_shows_the_sessions_schedule(qtbot, tmp_path):
    from app.panels.ticket_panel import TicketPanel
    from tests.app.test_ticket_panel import VERTICAL

    session, store = session_on(tmp_path / "ticket.sqlite", **CHANGED)
    panel = TicketPanel()
    qtbot.addWidget(panel)
    try:
        session.on_batch(_batch())
        context = AppContext(AppSettings(seed=3))
        panel.bind(context)
        panel.on_batch(_batch())
        context.set_trading(session)
        context.request_trade(VERTICAL)
        assert panel.form.figures["commission"].text() == "$5.95 ($4.00 + $1.95 fees)"  # default: $2.29 ($1.30 + ...)
    finally:
        panel.shutdown()
        session.close()
        store.close()


def test_the_backtest_forms_costs_follow_the_settings_and_keep_an_edit(qtbot):
    from app.panels.backtest_panel import BacktestPanel

    context = AppContext(AppSettings(**CHANGED))
    panel = BacktestPanel()
    qtbot.addWidget(panel)
    panel.bind(context)
    form = panel.ensure_view().form
    try:
        assert (form.commission.value(), form.fees.value()) == (2.0, pytest.approx(0.975))
        form.fees.setValue(1.5)  # the user's own figure for this run
        context.set_settings(context.settings.with_changes(theme="light"))  # costs unchanged: the edit stays
        assert form.fees.value() == 1.5
        context.set_settings(context.settings.with_changes(orf_fee=0.02))  # a new rate: the schedule's again
        assert (form.commission.value(), form.fees.value()) == (2.0, pytest.approx(0.495))
    finally:
        panel.shutdown()


def test_without_a_paper_schedule_the_tickets_estimate_uses_the_settings_costs(qtbot):
    from app.panels.ticket_panel import TicketPanel

    panel = TicketPanel()  # no paper broker to ask (an IB session, or none yet): the schedule of Settings > Costs
    qtbot.addWidget(panel)
    settings = AppSettings(**CHANGED)
    panel.bind(AppContext(settings))
    assert panel.fees == settings.fee_schedule() != DEFAULT_FEES
