"""The parts of a :class:`~spx_core.automation.config.StrategyConfig`: schedule, filters, sizing, exits, hedge.

Each part is frozen and validated at construction; a bad value raises one :class:`StrategyConfigError` line
naming the field (``entry.times[1]``, ``sizing.budget_usd`` ...) and how to fix it. Numbers are stored as
floats so ``2500`` and ``2500.0`` write, and hash, the same.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from spx_core.analytics.filters import regime_names

__all__ = [
    "EntryFilters", "EntrySchedule", "Exits", "HedgeConfig", "HedgeInstrument", "PriceMode", "Sizing",
    "SizingMode", "StrategyConfigError", "StrategyMode", "parse_hhmm",
]

_SESSION = (9 * 60 + 30, 16 * 60 + 15)  # entries and closes between 09:30 and 16:15 ET (SPX options trade to 16:15)
_HHMM = re.compile(r"^(\d{2}):(\d{2})$")


class StrategyConfigError(ValueError):
    """A strategy config is invalid; one line naming the field and how to fix it."""


class SizingMode(StrEnum):
    FIXED = "fixed"  # always ``quantity`` units
    RISK_BUDGET = "risk_budget"  # floor(budget / max loss per unit), capped at ``max_quantity``


class PriceMode(StrEnum):
    MID = "mid"  # the package mid, rounded to the nearest tick
    NATURAL = "natural"  # cross the spread: sell at the bid side, buy at the ask side
    MID_OFFSET = "mid_offset"  # the mid moved ``price_offset`` points toward the natural


class StrategyMode(StrEnum):
    """What an enabled strategy does with a TRADE decision."""

    MANUAL = "manual"  # stage the order in the ticket for the user to send
    AUTO = "auto"  # send it through the pre-trade gate


class HedgeInstrument(StrEnum):
    SPY = "SPY"  # an SPY option synthetic (100 shares a unit): order legs are options only
    SYNTHETIC = "synthetic"  # an SPX synthetic future (long call + short put, same strike)


def _fail(msg: str) -> None:
    raise StrategyConfigError(msg)


def parse_hhmm(value: str, where: str) -> int:
    """Minutes after midnight of an "HH:MM" US/Eastern time inside 09:30-16:15 ET."""
    m = _HHMM.match(value) if isinstance(value, str) else None
    if m is None or int(m[1]) > 23 or int(m[2]) > 59:
        _fail(f"{where} {value!r} is not a time HH:MM; write e.g. '10:00' (US/Eastern)")
    minutes = int(m[1]) * 60 + int(m[2])
    if not _SESSION[0] <= minutes <= _SESSION[1]:
        _fail(f"{where} {value} ET is outside the session; use a time between 09:30 and 16:15 ET")
    return minutes


def _number(where: str, value: Any, *, low: float | None = None, high: float | None = None,
            allow_none: bool = True) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        _fail(f"{where} must be a finite number{' or null' if allow_none else ''}, got {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        _fail(f"{where} {value!r} must be within {low if low is not None else '-inf'}..{high if high is not None else 'inf'}")
    return float(value)


def _set_number(obj: Any, name: str, where: str, **bounds: Any) -> None:
    """Validate a number field and store it as a float (so 2500 and 2500.0 write, and hash, the same)."""
    object.__setattr__(obj, name, _number(where, getattr(obj, name), **bounds))


def _whole(where: str, value: Any, *, low: int, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        _fail(f"{where} must be a whole number >= {low}{' or null' if allow_none else ''}, got {value!r}")
    return int(value)


def _bounds(where: str, low: float | None, high: float | None) -> None:
    if low is not None and high is not None and low > high:
        _fail(f"{where}: the minimum {low:g} is above the maximum {high:g}; swap them")


@dataclass(frozen=True, slots=True)
class EntrySchedule:
    """When entries are due, US/Eastern, on trading days only (:mod:`spx_core.automation.schedule`).

    Attributes:
        times: fixed entry times "HH:MM" ET (e.g. ("10:00", "11:00", "12:00")).
        window: an entry window ("09:35", "10:00") ET: entries are due from its start every ``every_s``
            seconds until its end (the runner stops once the limit profile allows no more trades).
        every_s: seconds between the entry slots of a window (s, >= 60).
        grace_s: a slot is due only within this many seconds after it (s): a runner that was not running at
            10:00 does not enter at 14:00 on a 10:00 signal.
    """

    times: tuple[str, ...] = ("10:00",)
    window: tuple[str, str] | None = None
    every_s: int = 300
    grace_s: int = 300

    def __post_init__(self) -> None:
        if isinstance(self.times, str):
            _fail(f"entry.times {self.times!r} must be a list of times, e.g. ['10:00']")
        times = tuple(self.times)
        minutes = [parse_hhmm(t, f"entry.times[{i}]") for i, t in enumerate(times)]
        object.__setattr__(self, "times", tuple(t for _, t in sorted(zip(minutes, times, strict=True))))
        if len(set(minutes)) != len(minutes):
            _fail(f"entry.times {list(times)} lists a time twice; list each once")
        if self.window is not None:
            if isinstance(self.window, str) or len(self.window) != 2:
                _fail(f"entry.window {self.window!r} must be two times [start, end], e.g. ['09:35', '10:00']")
            start, end = (parse_hhmm(t, f"entry.window[{i}]") for i, t in enumerate(self.window))
            if start >= end:
                _fail(f"entry.window {list(self.window)} must start before it ends")
            object.__setattr__(self, "window", tuple(self.window))
        if not times and self.window is None:
            _fail("entry has neither times nor a window; give times ['10:00'] or a window ['09:35', '10:00']")
        _whole("entry.every_s", self.every_s, low=60)
        _whole("entry.grace_s", self.grace_s, low=0)

    @property
    def minutes(self) -> tuple[int, ...]:
        """The fixed times in minutes after midnight ET."""
        return tuple(parse_hhmm(t, "entry.times") for t in self.times)


@dataclass(frozen=True, slots=True)
class EntryFilters:
    """The market an entry needs; None switches a condition off. Every failing condition is reported.

    Attributes:
        iv_rank_min / iv_rank_max: bounds of the context's IV rank (percent, 0-100, inclusive).
        vix_min / vix_max: bounds of VIX (index points, inclusive).
        regimes: allowed regime names per dimension (trend, mixture state, VIX bucket; see
            :func:`spx_core.analytics.filters.regime_dimensions`): a dimension none of whose names is listed is
            free. E.g. {"range", "calm", "normal"} = trend range and VIX bucket calm or normal.
        missing_passes: a condition whose input is unknown passes (True) or fails (False, the default).
    """

    iv_rank_min: float | None = None
    iv_rank_max: float | None = None
    vix_min: float | None = None
    vix_max: float | None = None
    regimes: frozenset[str] | None = None
    missing_passes: bool = False

    def __post_init__(self) -> None:
        for name in ("iv_rank_min", "iv_rank_max"):
            _set_number(self, name, f"filters.{name}", low=0.0, high=100.0)
        for name in ("vix_min", "vix_max"):
            _set_number(self, name, f"filters.{name}", low=0.0)
        _bounds("filters.iv_rank", self.iv_rank_min, self.iv_rank_max)
        _bounds("filters.vix", self.vix_min, self.vix_max)
        if self.regimes is not None:
            if isinstance(self.regimes, str) or not self.regimes:
                _fail("filters.regimes must be a non-empty list of regime names, or null for any regime")
            names = frozenset(str(r).lower() for r in self.regimes)
            unknown = sorted(names - regime_names())
            if unknown:
                _fail(f"filters.regimes: unknown regime {', '.join(unknown)}; "
                      f"choose from {', '.join(sorted(regime_names()))}")
            object.__setattr__(self, "regimes", names)
        if type(self.missing_passes) is not bool:
            _fail(f"filters.missing_passes must be true or false, got {self.missing_passes!r}")

    @property
    def active(self) -> bool:
        """Any condition is on: an entry then needs the market state (IV rank, VIX, regimes)."""
        return any(v is not None for v in (self.iv_rank_min, self.iv_rank_max, self.vix_min, self.vix_max,
                                           self.regimes))


@dataclass(frozen=True, slots=True)
class Sizing:
    """How many units an entry orders.

    Attributes:
        mode: FIXED (``quantity``) or RISK_BUDGET (floor(``budget_usd`` / max loss per unit in dollars)).
        quantity: units of a FIXED entry (count, >= 1).
        budget_usd: dollars at risk per entry of a RISK_BUDGET entry ($).
        max_quantity: cap on the units of any entry (count, >= 1).
    """

    mode: SizingMode = SizingMode.FIXED
    quantity: int = 1
    budget_usd: float | None = None
    max_quantity: int = 10

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "mode", SizingMode(self.mode))
        except ValueError:
            _fail(f"sizing.mode {self.mode!r} must be one of: {', '.join(m.value for m in SizingMode)}")
        _whole("sizing.quantity", self.quantity, low=1)
        _whole("sizing.max_quantity", self.max_quantity, low=1)
        _set_number(self, "budget_usd", "sizing.budget_usd", low=0.0)
        if self.mode is SizingMode.RISK_BUDGET and not (self.budget_usd or 0) > 0:
            _fail("sizing.budget_usd must be > 0 dollars for mode risk_budget (e.g. 2000)")
        if self.mode is SizingMode.FIXED and self.quantity > self.max_quantity:
            _fail(f"sizing.quantity {self.quantity} is above sizing.max_quantity {self.max_quantity}; "
                  f"raise the cap or lower the quantity")


@dataclass(frozen=True, slots=True)
class Exits:
    """When the position monitor closes a trade (helper ``monitor``), in its priority order.

    Attributes:
        take_profit_pct: close when the profit reaches this % of the entry credit (or debit) (percent; None off).
        stop_loss_pct: close when the loss reaches this % of the entry credit (or debit) (percent; None off).
        close_dte: close when the trade's nearest expiry is this many calendar days away or fewer (days).
        close_time: close at this ET time "HH:MM" on the trade's expiry day (0DTE: "15:45").
        regime_exit: close when the regime filter stops passing (crash mode).
    """

    take_profit_pct: float | None = 50.0
    stop_loss_pct: float | None = 100.0
    close_dte: int | None = None
    close_time: str | None = None
    regime_exit: bool = False

    def __post_init__(self) -> None:
        _set_number(self, "take_profit_pct", "exits.take_profit_pct", low=1e-9, high=100.0)
        _set_number(self, "stop_loss_pct", "exits.stop_loss_pct", low=1e-9)
        _whole("exits.close_dte", self.close_dte, low=0, allow_none=True)
        if self.close_time is not None:
            parse_hhmm(self.close_time, "exits.close_time")
        if type(self.regime_exit) is not bool:
            _fail(f"exits.regime_exit must be true or false, got {self.regime_exit!r}")


@dataclass(frozen=True, slots=True)
class HedgeConfig:
    """Keep the portfolio delta within a band (helper ``monitor``'s DeltaHedger).

    Attributes:
        band_delta: |portfolio delta| allowed before a hedge, in dollars per SPX point (the unit of
            :attr:`LimitProfile.max_delta`).
        instrument: an SPY or an SPX synthetic (long call + short put at one strike, with a protective wing;
            :mod:`spx_core.automation.hedger`): order legs are options, so shares cannot be sent.
        min_interval_s: least seconds between two hedges (s).
    """

    band_delta: float = 100.0
    instrument: HedgeInstrument = HedgeInstrument.SPY
    min_interval_s: float = 300.0

    def __post_init__(self) -> None:
        _set_number(self, "band_delta", "hedge.band_delta", low=1e-9, allow_none=False)
        _set_number(self, "min_interval_s", "hedge.min_interval_s", low=0.0, allow_none=False)
        try:
            object.__setattr__(self, "instrument", HedgeInstrument(self.instrument))
        except ValueError:
            _fail(f"hedge.instrument {self.instrument!r} must be one of: {', '.join(h.value for h in HedgeInstrument)}")
