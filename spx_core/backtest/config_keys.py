"""The keys of a backtest TOML config: each section's keys in their canonical order, with the check that
validates and normalizes each value, and the canonical TOML writer.

A check is ``check(where, value) -> normalized value``; ``where`` is the key as the user wrote it
(``[strategy] short_delta``), so every refusal is one :class:`BacktestConfigError` line naming the key, the value
and how to fix it. Normalized values are plain TOML types (str, float, int, bool, lists of them): numbers that
are floats are written as floats (``25`` and ``25.0`` write, and hash, the same), dates as ISO strings.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from datetime import date
from typing import Any

from spx_core.automation.config_parts import StrategyConfigError, parse_hhmm

__all__ = ["ALIASES", "SECTIONS", "BacktestConfigError", "fail", "write_toml"]


class BacktestConfigError(ValueError):
    """A backtest config is invalid: one line naming the key, e.g. ``[strategy] short_delta: -0.2 must be in
    (0, 1)``, and how to fix it."""


Check = Callable[[str, Any], Any]


def fail(where: str, message: str) -> None:
    raise BacktestConfigError(f"{where}: {message}")


def _show(value: Any) -> str:
    return json.dumps(value) if isinstance(value, (str, bool)) else repr(value)


def _number(low: float | None = None, high: float | None = None, *, open_low: bool = False) -> Check:
    def check(where: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            fail(where, f"{_show(value)} must be a number")
        bad_low = low is not None and (value <= low if open_low else value < low)
        if bad_low or (high is not None and value > high):
            left = "(" if open_low else "["
            right = "inf)" if high is None else f"{high:g}]"
            fail(where, f"{_show(value)} must be in {left}{low:g}, {right}")
        return float(value)
    return check


def _whole(low: int) -> Check:
    def check(where: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            fail(where, f"{_show(value)} must be a whole number >= {low}")
        return int(value)
    return check


def _choice(options: Iterable[str]) -> Check:
    allowed = tuple(options)

    def check(where: str, value: Any) -> str:
        if value not in allowed:
            fail(where, f"{_show(value)} is not one of: {', '.join(allowed)}")
        return str(value)
    return check


def _text(where: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        fail(where, f"{_show(value)} must be a non-empty string")
    return str(value)


def _boolean(where: str, value: Any) -> bool:
    if type(value) is not bool:
        fail(where, f"{_show(value)} must be true or false")
    return bool(value)


def _date(where: str, value: Any) -> str:
    """A US/Eastern date: a TOML date (2018-01-02) or an ISO string ("2018-01-02")."""
    if isinstance(value, date) and not hasattr(value, "hour"):
        return value.isoformat()
    try:
        return date.fromisoformat(value).isoformat()
    except (TypeError, ValueError):
        fail(where, f"{_show(value)} must be a date YYYY-MM-DD (US/Eastern), e.g. \"2018-01-02\"")
    raise AssertionError  # unreachable: fail raised


def _hhmm(where: str, value: Any) -> str:
    try:
        parse_hhmm(value, where)
    except StrategyConfigError as exc:
        raise BacktestConfigError(str(exc).replace(f"{where} ", f"{where}: ", 1)) from None
    return str(value)


def _listed(item: Check, *, pair: bool = False, non_empty: bool = True) -> Check:
    def check(where: str, value: Any) -> list[Any]:
        if not isinstance(value, list) or (pair and len(value) != 2) or (non_empty and not value):
            shape = "a list of two values, e.g." if pair else "a non-empty list, e.g."
            fail(where, f"{_show(value)} must be {shape} {_EXAMPLES.get(where.split()[-1], '[1, 2]')}")
        return [item(f"{where}[{i}]", v) for i, v in enumerate(value)]
    return check


def _delta(where: str, value: Any) -> float | list[float]:
    """One absolute delta in (0, 1), or a range [low, high] of them."""
    if isinstance(value, list):
        pair = _listed(_number(), pair=True)(where, value)
        if not 0.0 < pair[0] <= pair[1] < 1.0:
            fail(where, f"{value!r} must be a range [low, high] with 0 < low <= high < 1, e.g. [0.15, 0.45]")
        return pair
    x = _number()(where, value)
    if not 0.0 < x < 1.0:
        fail(where, f"{_show(value)} must be in (0, 1) (an absolute delta, e.g. 0.20)")
    return x


def _or_off(check: Check) -> Check:
    """``false`` switches the rule off (TOML has no null)."""
    def either(where: str, value: Any) -> Any:
        if value is False:
            return False
        if value is True:
            fail(where, "true is not a value; give a number, or false to switch it off")
        return check(where, value)
    return either


_EXAMPLES = {"entry_times": '["10:00", "11:00"]', "entry_window": '["09:35", "10:00"]', "widths": "[10, 25]",
             "dte_days": "[3, 5, 7]"}
BAD_QUOTES = ("skip", "surface", "raw")
FILL_MODELS = ("mid", "spread-fraction", "natural")


def _sections() -> dict[str, dict[str, Check]]:
    from spx_core.automation.config import PAIR_STRUCTURE, PriceMode
    from spx_core.automation.presets import PRESETS
    from spx_core.strategies.scanner_params import ScanStructure

    return {
        "": {"name": _text},
        "data": {"session": _text, "start": _date, "end": _date},
        "strategy": {
            "preset": _choice(PRESETS), "name": _text,
            "structure": _choice([s.value for s in ScanStructure] + [PAIR_STRUCTURE]),
            "short_delta": _delta, "width": _number(0.0, open_low=True),
            "widths": _listed(_number(0.0, open_low=True)), "dte_min": _whole(0), "dte_max": _whole(0),
            "dte_days": _listed(_whole(0)), "entry_times": _listed(_hhmm, non_empty=False),
            "entry_window": _listed(_hhmm, pair=True), "entry_every_s": _whole(60), "quantity": _whole(1),
            "price": _choice([p.value for p in PriceMode]), "price_offset": _number(0.0),
        },
        "exits": {"take_profit": _or_off(_number(0.0, 1.0, open_low=True)),
                  "stop_loss": _or_off(_number(0.0, open_low=True)), "close_dte": _whole(0),
                  "close_time": _hhmm, "regime_exit": _boolean},
        "fills": {"model": _choice(FILL_MODELS), "spread_fraction": _number(0.0, 0.5),
                  "per": _choice(("package", "leg")), "bad_quote": _choice(BAD_QUOTES)},
        "costs": {"commission_per_contract": _number(0.0), "fees_per_contract": _number(0.0),
                  "order_minimum": _number(0.0)},
        "risk": {"profile": _text, "max_open": _whole(0), "starting_cash": _number(0.0, open_low=True),
                 "close_on_breaker": _boolean},
    }


#: section -> key -> check, in the canonical order (the TOML writer's order).
SECTIONS: dict[str, dict[str, Check]] = _sections()

#: keys accepted in a second place, moved to their canonical one: (section, key) -> (section, key).
#: The issue's example puts max_open under [strategy]; it overrides the limit profile's max_open_trades.
ALIASES: dict[tuple[str, str], tuple[str, str]] = {("strategy", "max_open"): ("risk", "max_open")}


# --- the canonical TOML text ------------------------------------------------------------------------------------
def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)  # shortest round-tripping form; finite (checked)
    if isinstance(value, str):
        # a JSON string is a TOML basic string, except DEL, which TOML wants escaped
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {value!r}")


def write_toml(doc: Mapping[str, Mapping[str, Any]]) -> str:
    """The canonical TOML of a normalized document: sections and keys in :data:`SECTIONS` order, values in
    their normalized form (equal configs write equal text, so its SHA-256 names the config)."""
    lines: list[str] = []
    for section, keys in SECTIONS.items():
        values = doc.get(section, {})
        present = [k for k in keys if k in values]
        if not present:
            continue
        if section:
            lines.append(f"{chr(10) if lines else ''}[{section}]")
        lines += [f"{k} = {_toml_value(values[k])}" for k in present]
    return "\n".join(lines) + "\n"
