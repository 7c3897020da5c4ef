"""Named limit profiles (issue 10 §2): what :class:`~spx_core.risk.limits.RiskLimits` holds the book to.

A :class:`LimitProfile` is frozen and validated at construction: a bad value is refused with one line naming
the field. ``None`` means "no such limit". Units (the figures :mod:`spx_core.risk.limits` computes):

- delta: dollars per SPX point (SPY legs count a tenth: 10 SPY contracts ~ 1 SPX contract);
- gamma: dollars of P&L from gamma for a 1% move (``StructureValue.gamma_usd_1pct``);
- vega: dollars per vol point; theta: dollars per calendar day (limits bound the magnitude);
- concentration: % of the book's risk (gross SPX-equivalent contracts) in one expiry / one strike;
- daily loss: dollars, or % of net liquidation; daily drawdown: % of net liquidation from the day's P&L high;
- leverage: gross option notional (contracts x multiplier x underlying) / net liquidation;
- margin utilisation: % of net liquidation; position size: an order's dollars at risk as % of net liquidation.

:data:`PROFILES` carries the seed plans' defaults.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from types import MappingProxyType

__all__ = ["PROFILES", "STANDARD", "LimitProfile", "profile"]

_COUNTS = ("max_open_positions", "max_open_trades", "max_new_trades_per_day", "min_entry_dte",
           "concentration_min_positions")
_PERCENTS = ("max_expiry_concentration_pct", "max_strike_concentration_pct", "max_daily_loss_pct",
             "max_daily_drawdown_pct", "max_margin_utilisation_pct", "max_position_size_pct")


@dataclass(frozen=True, slots=True)
class LimitProfile:
    """One set of limits (None = not limited). See the module docstring for units."""

    name: str
    max_trade_delta: float | None = None
    max_trade_vega: float | None = None
    max_delta: float | None = None
    max_gamma: float | None = None
    max_vega: float | None = None
    max_theta: float | None = None
    max_expiry_concentration_pct: float | None = None
    max_strike_concentration_pct: float | None = None
    #: concentration is only meaningful in a book of several positions: below this many it is not checked
    concentration_min_positions: int = 3
    max_open_positions: int | None = None
    max_open_trades: int | None = None
    max_new_trades_per_day: int | None = None
    max_daily_loss: float | None = None
    max_daily_loss_pct: float | None = None
    max_daily_drawdown_pct: float | None = None
    max_leverage: float | None = None
    max_margin_utilisation_pct: float | None = None
    max_position_size_pct: float | None = None
    stop_after_stop_loss: bool = False
    #: opening orders on an expiry fewer than this many days away are refused (the market maker's 7 DTE exit)
    min_entry_dte: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError("LimitProfile.name must be a non-empty string")
        for f in fields(self):
            if f.name in ("name", "stop_after_stop_loss"):
                continue
            _validate(f.name, getattr(self, f.name))
        if type(self.stop_after_stop_loss) is not bool:
            raise ValueError(f"LimitProfile.stop_after_stop_loss must be True or False, "
                             f"got {self.stop_after_stop_loss!r}")

    def limits(self) -> dict[str, float | int]:
        """The limits set (name -> value), for display and for storing with a decision."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if f.name.startswith(("max_", "min_")) and getattr(self, f.name) is not None}


def _validate(name: str, value: object) -> None:
    if value is None:
        if name == "concentration_min_positions":
            raise ValueError("LimitProfile.concentration_min_positions must be a whole number >= 1, got None")
        return
    if name in _COUNTS:
        low = 0 if name in ("min_entry_dte", "max_open_positions", "max_open_trades", "max_new_trades_per_day") \
            else 1
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"LimitProfile.{name} must be a whole number >= {low} or None, got {value!r}")
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"LimitProfile.{name} must be a finite number > 0 or None, got {value!r}")
    if name in _PERCENTS and name != "max_margin_utilisation_pct" and value > 100:
        raise ValueError(f"LimitProfile.{name} is a percentage: at most 100, got {value!r}")


#: The profile a new account trades under: guards any account without tying it to one plan (a plan's profile is
#: chosen in Risk > Limit profiles): the day stops at a 5% loss of net liquidation (the circuit breaker trips
#: there), at most 25 open trades and 50 new ones a day (a runaway loop of orders is refused, a busy trader is not).
STANDARD = "standard"

PROFILES: MappingProxyType[str, LimitProfile] = MappingProxyType({p.name: p for p in (
    LimitProfile(STANDARD, max_daily_loss_pct=5.0, max_open_trades=25, max_new_trades_per_day=50),
    LimitProfile("market making", max_open_positions=10, max_daily_loss=5_000.0, max_gamma=1_000.0,
                 max_expiry_concentration_pct=30.0, max_strike_concentration_pct=20.0, min_entry_dte=7),
    LimitProfile("credit verticals", max_open_trades=1, max_new_trades_per_day=1, stop_after_stop_loss=True),
    LimitProfile("iron condor", max_trade_delta=30.0, max_trade_vega=100.0, max_delta=200.0, max_gamma=50.0,
                 max_vega=500.0, max_daily_drawdown_pct=2.0),
    LimitProfile("SPX/SPY pair", max_open_trades=3, max_daily_loss=1_000.0),
    LimitProfile("algo", max_position_size_pct=25.0, max_daily_loss_pct=5.0, max_leverage=2.0),
)})


def profile(name: str) -> LimitProfile:
    """The named profile, or one line listing the names there are."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"no limit profile {name!r}; choose one of: {', '.join(PROFILES)}") from None
