"""The [strategy] and [exits] sections of a backtest config -> the automation's :class:`StrategyConfig`.

A ``preset`` is the start; each key given replaces its part (the mapping is documented in
:mod:`spx_core.backtest.config`). The checks of :mod:`spx_core.backtest.config_keys` ran already; what only the
whole config can tell (dte_min above dte_max, a dte_day outside them, a scan key the structure lacks) is one
:class:`BacktestConfigError` line naming the key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from spx_core.automation.config import (
    EntryFilters,
    EntrySchedule,
    Exits,
    PriceMode,
    Sizing,
    SizingMode,
    StrategyConfig,
)
from spx_core.backtest.config_keys import BacktestConfigError, fail

__all__ = ["strategy_config"]

_ENTRY_KEYS = ("entry_times", "entry_window")


def strategy_config(s: Mapping[str, Any], x: Mapping[str, Any]) -> StrategyConfig:
    """The :class:`StrategyConfig` of a normalized [strategy] and [exits] (see :mod:`spx_core.backtest.config`)."""
    from spx_core.automation.config_parts import StrategyConfigError
    from spx_core.automation.presets import PRESETS

    base = PRESETS[s["preset"]] if "preset" in s else None
    structure = s.get("structure", base.structure if base is not None else None)
    if structure is None:
        fail("[strategy] structure", 'missing; give a scanner structure (e.g. "put-credit-vertical") or start '
                                     'from a preset = "<name>"')
    try:
        scan = _scan(s, structure, dict(base.scan) if base is not None else {})
        config = StrategyConfig(
            name=s.get("name", base.name if base is not None else "backtest"), structure=structure, scan=scan,
            entry=_entry(s, base.entry if base is not None else EntrySchedule()),
            filters=base.filters if base is not None else EntryFilters(),
            sizing=_sizing(s, base.sizing if base is not None else Sizing()),
            exits=_exits(x, base.exits if base is not None else Exits()),
            limit_profile=base.limit_profile if base is not None else "credit verticals",
            hedge=base.hedge if base is not None else None,
            price=PriceMode(s.get("price", PriceMode.NATURAL.value)),
            price_offset=s.get("price_offset", base.price_offset if base is not None else 0.0))
    except StrategyConfigError as exc:  # what the per-key checks cannot see (e.g. a key the structure lacks)
        raise BacktestConfigError(f"[strategy] {exc}") from None
    _check_dte_days(config)
    return config


def _scan(s: Mapping[str, Any], structure: str, scan: dict[str, Any]) -> dict[str, Any]:
    if "width" in s and "widths" in s:
        fail("[strategy] width", "give width or widths, not both")
    if "short_delta" in s:
        scan["short_delta"] = tuple(s["short_delta"]) if isinstance(s["short_delta"], list) else s["short_delta"]
    if "width" in s or "widths" in s:
        scan["widths"] = (s["width"],) if "width" in s else tuple(s["widths"])
    if "dte_min" in s or "dte_max" in s:
        low, high = _params(StrategyConfig(name="dte", structure=structure, scan=scan)).dte
        low, high = s.get("dte_min", low), s.get("dte_max", high)
        if low > high:
            fail("[strategy] dte_min", f"{low} is above dte_max {high}; swap them")
        scan["dte"] = (low, high)
    if "dte_days" in s:
        scan["dte_days"] = tuple(s["dte_days"])
    return scan


def _params(config: StrategyConfig) -> Any:
    return config.pair_params if config.is_pair else config.scan_params


def _check_dte_days(config: StrategyConfig) -> None:
    params = _params(config)
    low, high = params.dte
    outside = [d for d in getattr(params, "dte_days", ()) if not low <= d <= high]
    if outside:
        fail("[strategy] dte_days", f"{outside[0]} is outside dte_min..dte_max {low}..{high}; widen the range or "
                                    f"drop that day")


def _entry(s: Mapping[str, Any], base: EntrySchedule) -> EntrySchedule:
    every = s.get("entry_every_s", base.every_s)
    if not any(k in s for k in _ENTRY_KEYS):
        return dataclasses.replace(base, every_s=every)
    window = tuple(s["entry_window"]) if "entry_window" in s else None
    return EntrySchedule(times=tuple(s.get("entry_times", ())), window=window, every_s=every, grace_s=base.grace_s)


def _sizing(s: Mapping[str, Any], base: Sizing) -> Sizing:
    if "quantity" not in s:
        return base
    q = s["quantity"]
    return Sizing(SizingMode.FIXED, quantity=q, max_quantity=max(q, base.max_quantity))


def _exits(x: Mapping[str, Any], base: Exits) -> Exits:
    changes: dict[str, Any] = {}
    for key, pct in (("take_profit", "take_profit_pct"), ("stop_loss", "stop_loss_pct")):
        if key in x:  # fractions of the entry credit -> percent; rounded so 0.07 is 7.0, not 7.000000000000001
            changes[pct] = None if x[key] is False else round(x[key] * 100.0, 9)
    if "close_dte" in x:
        changes["close_dte"] = x["close_dte"] or None  # 0 = hold to expiry (no DTE exit)
    for key in ("close_time", "regime_exit"):
        if key in x:
            changes[key] = x[key]
    return dataclasses.replace(base, **changes)
