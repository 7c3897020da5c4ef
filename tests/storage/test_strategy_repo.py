"""StrategyRepository on migration 5's strategy_configs: round trip, on/off, mode, delete, bad rows refused."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import update

from spx_core.automation.config import StrategyConfigError, StrategyMode
from spx_core.automation.presets import PRESETS
from spx_core.storage import Store
from spx_core.storage import schema as t
from spx_core.storage.strategy_repo import StoredStrategyError, StrategyRepository


@pytest.fixture
def repo(tmp_path):
    with Store.open(tmp_path / "strategies.sqlite") as store:
        yield StrategyRepository(store)


def test_every_preset_round_trips_with_its_hash(repo):
    for config in PRESETS.values():
        repo.save(config, enabled=False, mode="manual", now_ns=1)
    stored = repo.strategies()
    assert [s.name for s in stored] == sorted(PRESETS)
    for s in stored:
        assert s.config == PRESETS[s.name] and s.config.config_hash == PRESETS[s.name].config_hash
        assert s.enabled is False and s.mode is StrategyMode.MANUAL
    with repo._store._read() as conn:
        hashes = dict(conn.execute(t.strategy_configs.select().with_only_columns(
            t.strategy_configs.c.name, t.strategy_configs.c.config_hash)).all())
    assert hashes == {n: c.config_hash for n, c in PRESETS.items()}


def test_save_replaces_and_switches_persist(tmp_path):
    path = tmp_path / "s.sqlite"
    config = PRESETS["iron condor (regime filter)"]
    with Store.open(path) as store:
        repo = StrategyRepository(store)
        repo.save(config, now_ns=1)
        repo.save(dataclasses.replace(config, limit_profile="algo"), enabled=True, mode=StrategyMode.AUTO,
                  now_ns=2)
        repo.set_enabled(config.name, False, 3)
        repo.set_mode(config.name, "manual", 4)
        repo.set_mode(config.name, StrategyMode.AUTO, 5)
    with Store.open(path) as store:
        (stored,) = StrategyRepository(store).strategies()
    assert stored.config.limit_profile == "algo" and stored.enabled is False and stored.mode is StrategyMode.AUTO


def test_unknown_names_and_bad_values_are_refused_in_one_line(repo):
    with pytest.raises(StoredStrategyError, match="no stored strategy 'ghost'; save it first"):
        repo.set_enabled("ghost", True, 1)
    repo.save(PRESETS["call-spread market making"], now_ns=1)
    with pytest.raises(StoredStrategyError, match="mode 'yolo'"):
        repo.set_mode("call-spread market making", "yolo", 1)
    with pytest.raises(StoredStrategyError, match="enabled must be True or False"):
        repo.set_enabled("call-spread market making", 1, 1)
    with pytest.raises(StrategyConfigError, match="mode"):
        repo.save(PRESETS["call-spread market making"], mode="sometimes", now_ns=1)


def test_delete_and_get(repo):
    config = PRESETS["SPX vs 10x SPY 0DTE pair"]
    repo.save(config, enabled=True, now_ns=1)
    assert repo.get(config.name).config == config and repo.get("nope") is None
    assert repo.delete(config.name) is True and repo.delete(config.name) is False
    assert repo.strategies() == []


def test_a_stored_row_that_no_longer_reads_is_refused_by_name(repo):
    config = PRESETS["credit verticals 3/5/7 DTE"]
    repo.save(config, now_ns=1)
    with repo._store._write() as conn:
        conn.execute(update(t.strategy_configs).values(config=config.to_json().replace('"mid"', '"last"')))
    with pytest.raises(StoredStrategyError, match="stored strategy 'credit verticals 3/5/7 DTE' is not a valid"):
        repo.strategies()
