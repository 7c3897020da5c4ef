"""The limit profiles dialog: lists every profile with the active one marked, shows every field (blank = no
limit), saves a validated edit, shows a bad value as one line and stores nothing, reverts a shipped profile to
its default and makes a profile active (on a real trading session: its guard and the gate follow)."""

from __future__ import annotations

from dataclasses import fields, replace

import pytest

from app.profile_dialog import ACTIVE_MARK, ProfileDialog, open_profile_dialog
from spx_core.risk.profiles import PROFILES, LimitProfile
from spx_core.storage import Store
from spx_core.storage.risk_repo import RiskRepository
from tests.app.trading_factory import session_on


@pytest.fixture
def risk(tmp_path):
    with Store.open(tmp_path / "profiles.sqlite") as store:
        yield RiskRepository(store)


@pytest.fixture
def dialog(qtbot, risk):
    d = ProfileDialog(risk)
    qtbot.addWidget(d)
    return d


def _select(dialog, name):
    names = [dialog.profile_list.item(i).text().removesuffix(ACTIVE_MARK) for i in range(dialog.profile_list.count())]
    dialog.profile_list.setCurrentRow(names.index(name))


def test_lists_the_profiles_and_shows_every_field(dialog):
    texts = [dialog.profile_list.item(i).text() for i in range(dialog.profile_list.count())]
    assert texts == [n + (ACTIVE_MARK if n == "standard" else "") for n in PROFILES]
    assert dialog.current_name() == "standard"  # the active one is shown first
    assert set(dialog.edits) | {"name", "stop_after_stop_loss"} == {f.name for f in fields(LimitProfile)}
    _select(dialog, "iron condor")
    assert dialog.edits["max_delta"].text() == "200" and dialog.edits["max_open_trades"].text() == ""
    assert dialog.edited_profile() == PROFILES["iron condor"]
    assert not dialog.revert_button.isEnabled()  # nothing to revert


def test_save_validates_and_revert_restores_the_default(dialog, risk):
    _select(dialog, "iron condor")
    dialog.edits["max_delta"].setText("150")
    dialog.edits["max_open_trades"].setText("2")
    assert dialog.save()
    assert risk.profiles()["iron condor"] == replace(PROFILES["iron condor"], max_delta=150.0, max_open_trades=2)
    assert dialog.revert_button.isEnabled()
    dialog.edits["max_gamma"].setText("-5")
    assert not dialog.save()
    assert dialog.error_label.text() == "LimitProfile.max_gamma must be a finite number > 0 or None, got -5.0"
    dialog.edits["max_gamma"].setText("lots")
    assert not dialog.save()
    assert dialog.error_label.text() == "max_gamma: 'lots' is not a number; leave it blank for no limit"
    assert risk.profiles()["iron condor"].max_gamma == 50.0  # nothing stored
    dialog.edits["max_open_positions"].setText("2.5")
    dialog.edits["max_gamma"].setText("")
    assert not dialog.save() and "max_open_positions: '2.5' is not a whole number" in dialog.error_label.text()
    dialog.revert()
    assert risk.profiles()["iron condor"] == PROFILES["iron condor"]
    assert dialog.edits["max_delta"].text() == "200" and dialog.error_label.text() == ""


def test_make_active_switches_the_sessions_guard(qtbot, qapp, tmp_path):
    session, store = session_on(tmp_path / "active.sqlite")
    try:
        dialog = ProfileDialog(session.guard.risk_repo, on_activate=session.set_profile,
                               on_saved=lambda _p: session.guard.reload())
        qtbot.addWidget(dialog)
        _select(dialog, "algo")
        dialog.activate_button.click()
        assert session.guard.profile == PROFILES["algo"]
        assert dialog.profile_list.currentItem().text() == "algo" + ACTIVE_MARK
        dialog.edits["max_leverage"].setText("3")
        dialog.save_button.click()
        assert session.guard.profile.max_leverage == 3.0  # the active profile's edit is in force at once
    finally:
        session.close()
        store.close()


def test_without_a_trading_session_the_menu_says_why(qtbot, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    said = []
    monkeypatch.setattr(QMessageBox, "information", lambda *a: said.append(a[2]))
    assert open_profile_dialog(None) is None
    assert said and "open a database" in said[0]
