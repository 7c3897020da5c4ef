"""RiskRepository: profile JSON round trip (validated on load), stored edits over the shipped profiles, the
active profile, risk settings and breaker trips, on a real SQLite file."""

from __future__ import annotations

import logging
from dataclasses import fields, replace

import pytest
from sqlalchemy import update

from spx_core.risk.breaker import BreakerTrip
from spx_core.risk.profiles import PROFILES, LimitProfile
from spx_core.storage import Store
from spx_core.storage import schema as t
from spx_core.storage.risk_repo import (
    ProfileError,
    RiskRepository,
    profile_from_json,
    profile_to_json,
)

NOW = 1_709_562_600_000_000_000
DAY = 1_709_528_400_000_000_000


@pytest.fixture
def store(tmp_path):
    s = Store.open(tmp_path / "risk.sqlite")
    yield s
    s.close()


@pytest.fixture
def risk(store):
    return RiskRepository(store)


@pytest.mark.parametrize("name", list(PROFILES))
def test_every_shipped_profile_round_trips_through_json(name):
    p = PROFILES[name]
    assert profile_from_json(profile_to_json(p)) == p


def test_json_of_every_field_round_trips():
    p = LimitProfile("full", **{f.name: (True if f.name == "stop_after_stop_loss" else 3)
                                for f in fields(LimitProfile) if f.name != "name"})
    assert profile_from_json(profile_to_json(p)) == p


@pytest.mark.parametrize(("text", "message"), [
    ("{", "limit profile is not JSON"),
    ("[1]", "limit profile must be a JSON object, got list"),
    ('{"name": "x", "max_gamma": -1}', "LimitProfile.max_gamma must be a finite number > 0 or None, got -1"),
    ('{"name": "x", "max_gama": 1}', "limit profile 'x': unknown field(s) max_gama"),
])
def test_bad_json_is_refused_in_one_line(text, message):
    with pytest.raises(ProfileError) as err:
        profile_from_json(text)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_stored_edits_overlay_the_shipped_profiles_and_delete_reverts(risk, tmp_path):
    edited = replace(PROFILES["iron condor"], max_delta=150.0)
    risk.save_profile(edited, NOW)
    mine = LimitProfile("mine", max_open_trades=2)
    risk.save_profile(mine, NOW)
    profiles = risk.profiles()
    assert profiles["iron condor"] == edited and profiles["mine"] == mine
    assert list(profiles)[:len(PROFILES)] == list(PROFILES)  # shipped ones first, in their order
    risk.save_profile(replace(edited, max_delta=120.0), NOW + 1)  # a second save replaces the first
    assert risk.profiles()["iron condor"].max_delta == 120.0
    with Store.open(tmp_path / "risk.sqlite") as other:  # the file, not a cache
        assert RiskRepository(other).profiles()["mine"] == mine
    risk.delete_profile("iron condor")
    risk.delete_profile("mine")
    assert risk.profiles()["iron condor"] == PROFILES["iron condor"] and "mine" not in risk.profiles()


def test_a_corrupt_stored_profile_is_skipped_with_one_warning(risk, store, caplog):
    risk.save_profile(replace(PROFILES["algo"], max_leverage=3.0), NOW)
    risk.save_profile(LimitProfile("mine", max_open_trades=2), NOW)
    with store._write() as conn:
        conn.execute(update(t.limit_profiles).where(t.limit_profiles.c.name == "algo")
                     .values(config='{"name": "algo", "max_leverage": "lots"}'))
        conn.execute(update(t.limit_profiles).where(t.limit_profiles.c.name == "mine").values(config="{oops"))
    with caplog.at_level(logging.WARNING, logger="spx_core.storage.risk_repo"):
        profiles = risk.profiles()
    assert profiles["algo"] == PROFILES["algo"] and "mine" not in profiles  # the default stands in
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2 and all("\n" not in m for m in lines)
    assert "'algo' skipped: LimitProfile.max_leverage must be a finite number > 0 or None, got 'lots'" in lines[0]


def test_active_profile_defaults_to_standard_and_is_stored(risk, store, caplog):
    assert risk.active_profile() == PROFILES["standard"]
    assert risk.set_active_profile("algo", NOW) == PROFILES["algo"]
    assert RiskRepository(store).active_profile().name == "algo"
    with pytest.raises(ProfileError, match="no limit profile 'nope'; choose one of: standard, market making"):
        risk.set_active_profile("nope", NOW)
    risk.put("active_limit_profile", "gone", NOW)  # e.g. a deleted custom profile
    with caplog.at_level(logging.WARNING):
        assert risk.active_profile().name == "standard"
    assert "active limit profile 'gone' is not known" in caplog.text


def test_settings_and_trips(risk):
    assert risk.get("close_all_on_breaker") is None and risk.get("close_all_on_breaker", "0") == "0"
    risk.put("close_all_on_breaker", "1", NOW)
    risk.put("close_all_on_breaker", "0", NOW + 1)
    assert risk.get("close_all_on_breaker") == "0"
    first = risk.record_trip(BreakerTrip(DAY, NOW, "algo: max_daily_loss_pct 5%: ..."))
    risk.record_trip(BreakerTrip(DAY + 86_400 * 10**9, NOW + 86_400 * 10**9, "next day"))
    risk.update_trip(first, cancelled=2, closed=1)
    (trip,) = risk.trips(DAY)
    assert trip == BreakerTrip(DAY, NOW, "algo: max_daily_loss_pct 5%: ...", 2, 1, id=first)
    assert [x.reason for x in risk.trips()] == ["algo: max_daily_loss_pct 5%: ...", "next day"]
    assert risk.trips(DAY - 1) == []
