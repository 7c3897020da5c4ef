"""StrategyConfig: validation (one line naming the field), canonical JSON, a hash stable across runs and key order."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from spx_core.automation.config import (
    PAIR_STRUCTURE,
    EntryFilters,
    EntrySchedule,
    Exits,
    HedgeConfig,
    HedgeInstrument,
    PriceMode,
    Sizing,
    SizingMode,
    StoredStrategy,
    StrategyConfig,
    StrategyConfigError,
    StrategyMode,
)
from spx_core.strategies.scanner_params import ScanStructure, ScoreWeights, params_for


def _config(**kw) -> StrategyConfig:
    base = {"name": "test", "structure": "put-credit-vertical", "scan": {"short_delta": 0.1, "dte": [3, 7]},
            "entry": EntrySchedule(times=("11:00", "10:00")), "filters": EntryFilters(vix_max=30),
            "sizing": Sizing(SizingMode.RISK_BUDGET, budget_usd=2000, max_quantity=4),
            "exits": Exits(close_time="15:45"), "hedge": HedgeConfig(band_delta=50, instrument="synthetic"),
            "price": "mid_offset", "price_offset": 0.05}
    base.update(kw)
    return StrategyConfig(**base)


@pytest.mark.parametrize("kw, field", [
    ({"name": " "}, "name"),
    ({"structure": "straddle"}, "structure"),
    ({"scan": {"short_delta": 1.5}}, "short_delta"),
    ({"scan": {"dte": [7, 3]}}, "dte"),
    ({"scan": {"widht": [25]}}, "'widht'"),
    ({"scan": {"weights": {"evv": 1.0}}}, "weights"),
    ({"price": "last"}, "price"),
    ({"price_offset": -0.1}, "price_offset"),
    ({"limit_profile": ""}, "limit_profile"),
    ({"structure": PAIR_STRUCTURE, "scan": {"strike_range": -5}}, "strike_range"),
    ({"structure": PAIR_STRUCTURE, "scan": {"short_delta": 0.1}}, "'short_delta'"),
    ({"structure": PAIR_STRUCTURE, "scan": {}}, "risk_budget"),
])
def test_a_bad_field_is_refused_in_one_line_naming_it(kw, field):
    with pytest.raises(StrategyConfigError) as err:
        _config(**kw)
    message = str(err.value)
    assert field in message and "\n" not in message


@pytest.mark.parametrize("make, field", [
    (lambda: EntrySchedule(times=("25:00",)), "entry.times[0]"),
    (lambda: EntrySchedule(times=("08:00",)), "outside the session"),
    (lambda: EntrySchedule(times=("10:00", "10:00")), "twice"),
    (lambda: EntrySchedule(times=(), window=("10:00", "09:35")), "start before"),
    (lambda: EntrySchedule(times=()), "neither times nor a window"),
    (lambda: EntrySchedule(every_s=10), "entry.every_s"),
    (lambda: EntryFilters(iv_rank_min=120), "filters.iv_rank_min"),
    (lambda: EntryFilters(vix_min=30, vix_max=20), "swap"),
    (lambda: EntryFilters(regimes=frozenset({"sideways"})), "unknown regime sideways"),
    (lambda: Sizing(SizingMode.RISK_BUDGET), "sizing.budget_usd"),
    (lambda: Sizing(quantity=20, max_quantity=10), "max_quantity"),
    (lambda: Sizing(mode="kelly"), "sizing.mode"),
    (lambda: Exits(take_profit_pct=150), "exits.take_profit_pct"),
    (lambda: Exits(close_dte=-1), "exits.close_dte"),
    (lambda: Exits(close_time="3pm"), "exits.close_time"),
    (lambda: HedgeConfig(band_delta=0), "hedge.band_delta"),
    (lambda: HedgeConfig(instrument="ES"), "hedge.instrument"),
])
def test_nested_parts_validate_at_construction(make, field):
    with pytest.raises(StrategyConfigError, match=None) as err:
        make()
    assert field in str(err.value) and "\n" not in str(err.value)


def test_scan_overrides_go_through_the_scanner_params():
    config = _config(scan={"short_delta": [0.15, 0.45], "widths": [25, 5], "roots": ["SPXW"],
                           "weights": {"pop": 0.1}})
    assert config.scan_params == params_for(ScanStructure.PUT_CREDIT_VERTICAL, short_delta=(0.15, 0.45),
                                            widths=(5.0, 25.0), roots=("SPXW",), weights=ScoreWeights(pop=0.1))
    assert config.to_dict()["scan"]["widths"] == [5.0, 25.0]  # normalized as ScanParams normalizes it


def test_json_round_trips_and_is_canonical():
    config = _config(filters=EntryFilters(regimes=frozenset({"Range", "calm"}), iv_rank_min=20))
    text = config.to_json()
    again = StrategyConfig.from_json(text)
    assert again == config and again.to_json() == text
    assert again.entry.times == ("10:00", "11:00")  # sorted
    assert again.hedge.instrument is HedgeInstrument.SYNTHETIC and again.price is PriceMode.MID_OFFSET
    assert json.loads(text)["filters"]["regimes"] == ["calm", "range"]
    assert " " not in text.replace("credit vertical", "")


def test_hash_ignores_key_order_and_number_spelling():
    config = _config()
    data = json.loads(config.to_json())
    shuffled = json.dumps(dict(reversed(list(data.items()))), indent=2)
    assert data["sizing"]["budget_usd"] == 2000.0 and isinstance(data["sizing"]["budget_usd"], float)
    data["sizing"]["budget_usd"] = 2000.0  # the config was built with the int 2000
    data["exits"]["take_profit_pct"] = 50  # and an int where it holds 50.0
    data["scan"] = {"short_delta": 0.1, "dte": [3.0, 7.0], "widths": [25]}
    assert StrategyConfig.from_json(shuffled).config_hash == config.config_hash
    assert StrategyConfig.from_dict(data).config_hash == _config(
        scan={"short_delta": 0.1, "dte": [3, 7], "widths": [25.0]}).config_hash
    assert _config(name="other").config_hash != config.config_hash
    assert _config(scan={"short_delta": 0.2, "dte": [3, 7]}).config_hash != config.config_hash


def test_hash_is_the_same_in_another_process():
    config = _config()
    code = ("from tests.automation.test_config import _config; print(_config().config_hash)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == config.config_hash
    assert len(config.config_hash) == 64


@pytest.mark.parametrize("mutate, key", [
    (lambda d: d.update(colour="red"), "'colour'"),
    (lambda d: d["exits"].update(trailing_stop=1), "'trailing_stop'"),
    (lambda d: d["entry"].update(time="10:00"), "'time'"),
    (lambda d: d.pop("structure"), "'structure'"),
])
def test_from_json_refuses_unknown_and_missing_keys_by_name(mutate, key):
    data = json.loads(_config().to_json())
    mutate(data)
    with pytest.raises(StrategyConfigError, match=key):
        StrategyConfig.from_json(json.dumps(data))


def test_from_json_refuses_bad_text_in_one_line():
    with pytest.raises(StrategyConfigError, match="not valid JSON"):
        StrategyConfig.from_json("{name: 1")


def test_pair_config_has_pair_params_not_scan_params():
    config = _config(structure=PAIR_STRUCTURE, scan={"dte": [0, 0], "strike_range": 30},
                     sizing=Sizing(quantity=2))
    assert config.is_pair and config.pair_params.strike_range == 30.0
    with pytest.raises(StrategyConfigError, match="pair_params"):
        _ = config.scan_params


def test_stored_strategy_validates_mode_and_is_hashable_by_config():
    stored = StoredStrategy(_config(), True, "auto")
    assert stored.mode is StrategyMode.AUTO and stored.name == "test"
    assert hash(_config()) == hash(_config())
    with pytest.raises(StrategyConfigError, match="mode"):
        StoredStrategy(_config(), True, "yolo")
