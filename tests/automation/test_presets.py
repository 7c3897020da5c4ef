"""The shipped strategies: valid, on the shipped limit profiles, scanning what the plans (and scanner presets) say."""

from __future__ import annotations

import pytest

from spx_core.automation.config import PAIR_STRUCTURE, SizingMode, StrategyConfig
from spx_core.automation.presets import PRESETS, scan_overrides
from spx_core.domain.contracts import Root
from spx_core.risk.profiles import PROFILES
from spx_core.strategies.scanner_params import PRESETS as SCAN_PRESETS
from spx_core.strategies.scanner_params import ScanStructure

CREDIT = ["credit verticals 3/5/7 DTE", "credit verticals 3/5/7 DTE, 0.10 delta",
          "credit verticals 3/5/7 DTE, 0.20 delta"]


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_is_valid_round_trips_and_names_a_shipped_profile(name):
    config = PRESETS[name]
    assert config.name == name
    assert StrategyConfig.from_json(config.to_json()) == config
    assert config.limit_profile in PROFILES


def test_the_api_names_are_shipped():
    for name in ("credit verticals 3/5/7 DTE", "call-spread market making", "iron condor (regime filter)",
                 "SPX vs 10x SPY 0DTE pair"):
        assert name in PRESETS


@pytest.mark.parametrize("name, delta", list(zip(CREDIT, (0.10, 0.10, 0.20), strict=True)))
def test_credit_verticals_follow_the_plan(name, delta):
    c = PRESETS[name]
    p = c.scan_params
    assert p.structure is ScanStructure.PUT_CREDIT_VERTICAL and p.short_delta == delta
    assert p.widths == (25.0,) and p.dte_days == (3, 5, 7) and p.roots == (Root.SPXW,)
    assert c.entry.times == ("10:00", "11:00", "12:00")
    assert (c.exits.take_profit_pct, c.exits.stop_loss_pct) == (50.0, 100.0)
    assert c.limit_profile == "credit verticals"


def test_market_making_is_call_spreads_at_015_045_delta_7_45_dte_closed_at_7_dte():
    for name, structure in (("call-spread market making", ScanStructure.CALL_CREDIT_VERTICAL),
                            ("call-spread market making, bull call spreads", ScanStructure.CALL_DEBIT_VERTICAL)):
        c = PRESETS[name]
        p = c.scan_params
        assert p.structure is structure and p.short_delta == (0.15, 0.45) and p.dte == (7, 45)
        assert c.exits.close_dte == 7 and c.limit_profile == "market making"


def test_iron_condor_has_a_regime_filter_and_the_condor_profile():
    c = PRESETS["iron condor (regime filter)"]
    p = c.scan_params
    assert p.structure is ScanStructure.IRON_CONDOR and p.short_delta == 0.15 and p.dte == (7, 45)
    assert c.filters.regimes == {"range", "calm", "normal"} and c.exits.regime_exit
    assert c.limit_profile == "iron condor" and PROFILES["iron condor"].max_trade_delta is not None
    assert c.sizing.mode is SizingMode.RISK_BUDGET


def test_pair_is_0dte_closed_at_1545_on_the_pair_profile():
    c = PRESETS["SPX vs 10x SPY 0DTE pair"]
    assert c.structure == PAIR_STRUCTURE and c.pair_params.dte == (0, 0)
    assert c.exits.close_time == "15:45" and c.limit_profile == "SPX/SPY pair"
    assert c.entry.window == ("09:35", "10:00")


@pytest.mark.parametrize("strategy, scanner", [
    ("credit verticals 3/5/7 DTE, 0.10 delta", "Credit vertical: 0.10 delta put, 25 wide, 3/5/7 DTE"),
    ("credit verticals 3/5/7 DTE, 0.20 delta", "Credit vertical: 0.20 delta put, 25 wide, 3/5/7 DTE"),
    ("call-spread market making", "Call-spread market making: bear call spreads, 0.15-0.45 delta, 7-45 DTE"),
    ("call-spread market making, bull call spreads",
     "Call-spread market making: bull call spreads, 0.15-0.45 delta, 7-45 DTE"),
    ("iron condor (regime filter)", "Iron condor: 0.15 delta shorts, 25/50 wide, 7-45 DTE"),
])
def test_a_preset_scans_exactly_what_the_scanner_preset_of_its_plan_shows(strategy, scanner):
    assert PRESETS[strategy].scan_params == SCAN_PRESETS[scanner]


def test_scan_overrides_lists_only_what_differs_from_the_structure_defaults():
    params = SCAN_PRESETS["Credit vertical: 0.20 delta put, 25 wide, 3/5/7 DTE"]
    assert set(scan_overrides(params)) == {"dte", "dte_days", "roots"}
