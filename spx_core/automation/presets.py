"""The seed plans' strategies, ready to enable (issue 10 §5).

The selections are the scanner's own presets (:data:`spx_core.strategies.scanner_params.PRESETS`, the ones the
scanner panel shows), turned into :class:`StrategyConfig` scan overrides by :func:`scan_overrides`, so a
preset strategy scans exactly what the scanner preset of the same plan shows. The limit profiles are the
shipped ones of :data:`spx_core.risk.profiles.PROFILES`.
"""

from __future__ import annotations

from dataclasses import fields
from types import MappingProxyType
from typing import Any

from spx_core.automation.config import (
    PAIR_STRUCTURE,
    EntryFilters,
    EntrySchedule,
    Exits,
    Sizing,
    SizingMode,
    StrategyConfig,
)
from spx_core.strategies.scanner_params import PRESETS as SCAN_PRESETS
from spx_core.strategies.scanner_params import ScanParams, params_for

__all__ = ["PRESETS", "scan_overrides"]


def scan_overrides(params: ScanParams) -> dict[str, Any]:
    """The fields of ``params`` that differ from ``params_for(params.structure)`` (the config normalizes them)."""
    base = params_for(params.structure)
    return {f.name: getattr(params, f.name) for f in fields(ScanParams)
            if f.name != "structure" and getattr(params, f.name) != getattr(base, f.name)}


_CREDIT_010 = SCAN_PRESETS["Credit vertical: 0.10 delta put, 25 wide, 3/5/7 DTE"]
_CREDIT_020 = SCAN_PRESETS["Credit vertical: 0.20 delta put, 25 wide, 3/5/7 DTE"]
_MM_BEAR = SCAN_PRESETS["Call-spread market making: bear call spreads, 0.15-0.45 delta, 7-45 DTE"]
_MM_BULL = SCAN_PRESETS["Call-spread market making: bull call spreads, 0.15-0.45 delta, 7-45 DTE"]
_CONDOR = SCAN_PRESETS["Iron condor: 0.15 delta shorts, 25/50 wide, 7-45 DTE"]

#: the credit-verticals plan: one entry a day at the first of these that passes (the profile allows one trade)
_CREDIT_TIMES = EntrySchedule(times=("10:00", "11:00", "12:00"))


def _credit_vertical(name: str, params: ScanParams) -> StrategyConfig:
    return StrategyConfig(name=name, structure=params.structure.value, scan=scan_overrides(params),
                          entry=_CREDIT_TIMES, exits=Exits(take_profit_pct=50.0, stop_loss_pct=100.0),
                          sizing=Sizing(SizingMode.FIXED, quantity=1), limit_profile="credit verticals")


def _market_making(name: str, params: ScanParams) -> StrategyConfig:
    # the market maker leaves before 7 DTE (its profile refuses entries under 7 DTE too)
    return StrategyConfig(name=name, structure=params.structure.value, scan=scan_overrides(params),
                          entry=EntrySchedule(times=("10:00", "14:00")),
                          exits=Exits(take_profit_pct=50.0, stop_loss_pct=100.0, close_dte=7),
                          sizing=Sizing(SizingMode.RISK_BUDGET, budget_usd=2_500.0, max_quantity=5),
                          limit_profile="market making")


def _iron_condor() -> StrategyConfig:
    # Condors only in a range-bound, calm-to-normal market (trend rule range, VIX below 20); a regime change
    # closes them (regime_exit); the per-trade and portfolio greek caps are the "iron condor" profile's.
    return StrategyConfig(
        name="iron condor (regime filter)", structure=_CONDOR.structure.value, scan=scan_overrides(_CONDOR),
        entry=EntrySchedule(times=("10:30",)),
        filters=EntryFilters(regimes=frozenset({"range", "calm", "normal"})),
        exits=Exits(take_profit_pct=50.0, stop_loss_pct=100.0, close_dte=7, regime_exit=True),
        sizing=Sizing(SizingMode.RISK_BUDGET, budget_usd=3_000.0, max_quantity=3),
        limit_profile="iron condor")


def _pair() -> StrategyConfig:
    # 0DTE: long 1 SPXW call vs short 10 SPY calls near the money, entered in the morning window at the
    # cheapest package, closed at 15:45 before the SPY options' exercise cut-off
    return StrategyConfig(
        name="SPX vs 10x SPY 0DTE pair", structure=PAIR_STRUCTURE,
        scan={"dte": [0, 0], "strike_range": 25.0},
        entry=EntrySchedule(times=(), window=("09:35", "10:00"), every_s=300),
        exits=Exits(take_profit_pct=None, stop_loss_pct=None, close_time="15:45"),
        sizing=Sizing(SizingMode.FIXED, quantity=1, max_quantity=3), limit_profile="SPX/SPY pair")


def _presets() -> dict[str, StrategyConfig]:
    configs = [
        _credit_vertical("credit verticals 3/5/7 DTE", _CREDIT_010),
        _credit_vertical("credit verticals 3/5/7 DTE, 0.10 delta", _CREDIT_010),
        _credit_vertical("credit verticals 3/5/7 DTE, 0.20 delta", _CREDIT_020),
        _market_making("call-spread market making", _MM_BEAR),
        _market_making("call-spread market making, bull call spreads", _MM_BULL),
        _iron_condor(),
        _pair(),
    ]
    return {c.name: c for c in configs}


#: The shipped strategies by name (read-only).
PRESETS: MappingProxyType[str, StrategyConfig] = MappingProxyType(_presets())
