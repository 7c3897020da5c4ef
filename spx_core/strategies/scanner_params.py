"""What a spread scan asks for: the structure, the selection, the filters and the score weights.

:class:`ScanParams` is a frozen, validated config (every field in its unit); :data:`PRESETS` carries the
seed plans' defaults (credit verticals at 0.10 / 0.20 short delta and 3/5/7 DTE, call-spread market
making at 0.15-0.45 delta and 7-45 DTE, iron condors at 7-45 DTE); :data:`STRUCTURE_DEFAULTS` gives the
short delta and widths a scan of each structure starts from when the user names only the structure.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from enum import StrEnum

from spx_core.domain.contracts import Root

__all__ = [
    "PRESETS",
    "STRUCTURE_DEFAULTS",
    "Fill",
    "ScanParams",
    "ScanParamsError",
    "ScanStructure",
    "ScoreWeights",
    "params_for",
]


class ScanParamsError(ValueError):
    """A scan parameter is out of range; the message names the field, the value and what is allowed."""


class ScanStructure(StrEnum):
    """The structures the scanner builds (the values are the ``spx-data scan --structure`` spellings)."""

    PUT_CREDIT_VERTICAL = "put-credit-vertical"
    CALL_CREDIT_VERTICAL = "call-credit-vertical"
    IRON_CONDOR = "iron-condor"
    PUT_DEBIT_VERTICAL = "put-debit-vertical"
    CALL_DEBIT_VERTICAL = "call-debit-vertical"
    IRON_BUTTERFLY = "iron-butterfly"
    BUTTERFLY = "butterfly"
    BWB = "bwb"
    CALENDAR = "calendar"


class Fill(StrEnum):
    """The price a candidate is assumed to trade at for max loss, POP and EV."""

    MID = "mid"  # net mid of the legs
    NATURAL = "natural"  # sell at the bid, buy at the ask


@dataclass(frozen=True, slots=True)
class ScoreWeights:
    """Weights of the total score ``sum(weight * term)``; a term that is NaN for a candidate adds 0.

    Attributes:
        ev: per index point of expected value per unit under the fitted density.
        ev_per_max_loss: per unit of expected value / max loss (both points per unit; fraction).
        pop: per unit of probability of profit (fraction, 0..1).
        credit_per_width: per unit of net mid credit / width (fraction; negative for debits).
        edge_usd: per dollar of market mid minus surface fair value, per unit (positive = the market pays us).
        edge_volpts: per vol point of vega-weighted richness of what is sold vs the fitted surface
            (positive = selling rich / buying cheap).
    """

    ev: float = 0.0
    ev_per_max_loss: float = 1.0
    pop: float = 0.0
    credit_per_width: float = 0.0
    edge_usd: float = 0.0
    edge_volpts: float = 0.01

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            if not math.isfinite(getattr(self, f.name)):
                raise ScanParamsError(f"ScoreWeights.{f.name} must be a finite number, got {getattr(self, f.name)!r}")


DeltaSpec = float | tuple[float, float]


@dataclass(frozen=True, slots=True)
class ScanParams:
    """One scan's structure, selection, filters and scoring. Validated at construction.

    Attributes:
        structure: what to build.
        short_delta: absolute delta of the short leg(s) (the body of a butterfly, the near leg of a
            calendar): a number X takes, per expiry and side, the one strike nearest |delta| = X; a pair
            (A, B) takes every strike with A <= |delta| <= B (dimensionless, 0 < A <= B < 1). Delta is the
            chain's mid-IV delta.
        widths: distances between the short strike and its long wing (index points); every listed one is
            tried. Iron condors use equal wings. Ignored by calendars.
        dte: calendar days to expiry, inclusive range, counted from the snapshot's (US/Eastern) date;
            0 is the same-day expiry.
        dte_days: when given, only these exact DTEs within ``dte`` (the 3/5/7 DTE plan) (days).
        min_credit_per_width: least net mid credit / width (fraction; None = no filter).
        min_pop: least probability of profit under the fitted risk-neutral density (fraction; None = off).
        max_leg_spread: widest bid/ask spread allowed on any leg (index points; None = off).
        max_package_spread: widest natural spread of the package, sum of |ratio| x leg spread
            (index points; None = off).
        min_open_interest: least open interest on every leg (contracts; 0 = off).
        allow_flagged: keep legs whose quote carries a quality flag (crossed, zero bid, wide, stale, ...).
        weights: the total score's weights.
        top: how many best candidates come back as structures (count).
        skips: extra width of a broken-wing butterfly's far wing (index points).
        calendar_gap: days from the near to the far expiry of a calendar, inclusive range (days).
        roots: option roots to scan (empty = every root in the snapshot).
        fill: the price max loss, POP and EV assume.
    """

    structure: ScanStructure = ScanStructure.PUT_CREDIT_VERTICAL
    short_delta: DeltaSpec = 0.20
    widths: tuple[float, ...] = (25.0,)
    dte: tuple[int, int] = (0, 45)
    dte_days: tuple[int, ...] = ()
    min_credit_per_width: float | None = None
    min_pop: float | None = None
    max_leg_spread: float | None = None
    max_package_spread: float | None = None
    min_open_interest: int = 0
    allow_flagged: bool = False
    weights: ScoreWeights = ScoreWeights()
    top: int = 20
    skips: tuple[float, ...] = (5.0, 10.0, 25.0)
    calendar_gap: tuple[int, int] = (5, 35)
    roots: tuple[Root, ...] = ()
    fill: Fill = Fill.MID

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "structure", ScanStructure(self.structure))
            object.__setattr__(self, "fill", Fill(self.fill))
            object.__setattr__(self, "roots", tuple(Root(r) for r in self.roots))
        except ValueError as exc:
            raise ScanParamsError(str(exc)) from None
        object.__setattr__(self, "short_delta", _check_delta(self.short_delta))
        object.__setattr__(self, "widths", _positive_tuple("widths", self.widths, allow_empty=False))
        object.__setattr__(self, "skips", _positive_tuple("skips", self.skips, allow_empty=False))
        object.__setattr__(self, "dte", _day_range("dte", self.dte))
        object.__setattr__(self, "calendar_gap", _day_range("calendar_gap", self.calendar_gap))
        if self.calendar_gap[0] < 1:
            raise ScanParamsError(f"calendar_gap {self.calendar_gap} must start at 1 day or more")
        days = tuple(sorted({int(d) for d in self.dte_days}))
        if any(d < 0 for d in days):
            raise ScanParamsError(f"dte_days {self.dte_days} must be days >= 0")
        object.__setattr__(self, "dte_days", days)
        for name in ("min_credit_per_width", "min_pop", "max_leg_spread", "max_package_spread"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise ScanParamsError(f"{name} must be a finite number or None, got {value!r}")
        if self.min_pop is not None and not 0.0 <= self.min_pop <= 1.0:
            raise ScanParamsError(f"min_pop {self.min_pop} must be a probability in [0, 1]")
        for name in ("max_leg_spread", "max_package_spread"):
            if getattr(self, name) is not None and getattr(self, name) < 0:
                raise ScanParamsError(f"{name} {getattr(self, name)} must be >= 0 index points")
        if int(self.min_open_interest) != self.min_open_interest or self.min_open_interest < 0:
            raise ScanParamsError(f"min_open_interest {self.min_open_interest!r} must be a whole number >= 0")
        if int(self.top) != self.top or self.top < 1:
            raise ScanParamsError(f"top {self.top!r} must be a whole number >= 1")
        object.__setattr__(self, "top", int(self.top))

    @property
    def delta_range(self) -> tuple[float, float] | None:
        """(A, B) when the short delta is a range, None when it is one target."""
        return self.short_delta if isinstance(self.short_delta, tuple) else None

    def allows_dte(self, dte: int) -> bool:
        """True when an expiry ``dte`` days away is scanned."""
        lo, hi = self.dte
        return lo <= dte <= hi and (not self.dte_days or dte in self.dte_days)


def _check_delta(value: DeltaSpec) -> DeltaSpec:
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ScanParamsError(f"short_delta range {value!r} must be two numbers (low, high)")
        lo, hi = float(value[0]), float(value[1])
        if not (0.0 < lo <= hi < 1.0):
            raise ScanParamsError(f"short_delta range {lo:g}-{hi:g} must satisfy 0 < low <= high < 1")
        return (lo, hi)
    x = float(value)
    if not 0.0 < x < 1.0:
        raise ScanParamsError(f"short_delta {x:g} must be an absolute delta between 0 and 1 (e.g. 0.20)")
    return x


def _positive_tuple(name: str, values, *, allow_empty: bool) -> tuple[float, ...]:
    out = tuple(sorted({float(v) for v in values}))
    if not out and not allow_empty:
        raise ScanParamsError(f"{name} needs at least one value")
    if any(not (math.isfinite(v) and v > 0) for v in out):
        raise ScanParamsError(f"{name} {values!r} must be positive index points")
    return out


def _day_range(name: str, value) -> tuple[int, int]:
    if len(value) != 2:
        raise ScanParamsError(f"{name} {value!r} must be two whole numbers of days (low, high)")
    lo, hi = value
    if int(lo) != lo or int(hi) != hi or not 0 <= lo <= hi:
        raise ScanParamsError(f"{name} range {lo}-{hi} must be whole days with 0 <= low <= high")
    return (int(lo), int(hi))


#: Per structure: the short delta and widths a scan starts from when only the structure is named.
STRUCTURE_DEFAULTS: dict[ScanStructure, tuple[DeltaSpec, tuple[float, ...]]] = {
    ScanStructure.PUT_CREDIT_VERTICAL: (0.20, (25.0,)),
    ScanStructure.CALL_CREDIT_VERTICAL: (0.20, (25.0,)),
    ScanStructure.PUT_DEBIT_VERTICAL: (0.30, (25.0,)),
    ScanStructure.CALL_DEBIT_VERTICAL: (0.30, (25.0,)),
    ScanStructure.IRON_CONDOR: (0.15, (25.0,)),
    ScanStructure.IRON_BUTTERFLY: (0.50, (25.0, 50.0)),
    ScanStructure.BUTTERFLY: (0.40, (25.0,)),
    ScanStructure.BWB: (0.30, (25.0,)),
    ScanStructure.CALENDAR: (0.50, (25.0,)),
}


def params_for(structure: ScanStructure | str, **overrides) -> ScanParams:
    """ScanParams of ``structure`` with its :data:`STRUCTURE_DEFAULTS`, then ``overrides`` (None = keep)."""
    structure = ScanStructure(structure)
    delta, widths = STRUCTURE_DEFAULTS[structure]
    fields = {"structure": structure, "short_delta": delta, "widths": widths}
    fields.update({k: v for k, v in overrides.items() if v is not None})
    return ScanParams(**fields)


#: The seed plans' scans, by the name the scanner panel shows.
PRESETS: dict[str, ScanParams] = {
    "Credit vertical: 0.10 delta put, 25 wide, 3/5/7 DTE": ScanParams(
        ScanStructure.PUT_CREDIT_VERTICAL, short_delta=0.10, widths=(25.0,), dte=(3, 7), dte_days=(3, 5, 7),
        roots=(Root.SPXW,)),
    "Credit vertical: 0.20 delta put, 25 wide, 3/5/7 DTE": ScanParams(
        ScanStructure.PUT_CREDIT_VERTICAL, short_delta=0.20, widths=(25.0,), dte=(3, 7), dte_days=(3, 5, 7),
        roots=(Root.SPXW,)),
    "Call-spread market making: bear call spreads, 0.15-0.45 delta, 7-45 DTE": ScanParams(
        ScanStructure.CALL_CREDIT_VERTICAL, short_delta=(0.15, 0.45), widths=(5.0, 10.0, 25.0), dte=(7, 45),
        roots=(Root.SPXW,)),
    "Call-spread market making: bull call spreads, 0.15-0.45 delta, 7-45 DTE": ScanParams(
        ScanStructure.CALL_DEBIT_VERTICAL, short_delta=(0.15, 0.45), widths=(5.0, 10.0, 25.0), dte=(7, 45),
        roots=(Root.SPXW,)),
    "Iron condor: 0.15 delta shorts, 25/50 wide, 7-45 DTE": ScanParams(
        ScanStructure.IRON_CONDOR, short_delta=0.15, widths=(25.0, 50.0), dte=(7, 45), roots=(Root.SPXW,),
        weights=ScoreWeights(ev_per_max_loss=1.0, pop=0.1, edge_volpts=0.01)),
}
