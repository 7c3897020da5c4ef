"""Market entry filters the seed plans put in front of a scan: IV rank >= X, regime in {...}, VIX between.

``MarketFilter(...).check(state) -> (ok, why)``: ``why`` names the first failing condition with the
value that failed it (or the reason the value is missing), "" when every condition passes. A condition
whose input is missing fails closed by default (``missing_passes=False``): a filter that cannot be
checked does not let a trade through.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from functools import cache
from typing import Any

from spx_core.analytics.market_state import MarketState

__all__ = ["IVRankSource", "MarketFilter", "regime_dimensions", "regime_names"]


class IVRankSource(Enum):
    """Which IV rank a filter reads (the market state carries both)."""

    VIX = "vix"  # the last VIX close within the VIX history
    ATM = "atm"  # our 30-day ATM IV within our stored ATM IVs

    @property
    def field(self) -> str:
        return "vix_rank" if self is IVRankSource.VIX else "atm_iv_rank"

    @property
    def label(self) -> str:
        return "IV rank (VIX history)" if self is IVRankSource.VIX else "IV rank (stored ATM IVs)"


@dataclass(frozen=True, slots=True, kw_only=True)
class MarketFilter:
    """Entry conditions on the market state; ``None`` disables a condition. Keyword-only: a positional
    call written against another field order must fail, not filter on the wrong number.

    Attributes:
        iv_rank_min: minimum IV rank (percent, 0-100) read from ``iv_rank_source``.
        iv_rank_source: which IV rank (VIX history or our stored ATM IVs).
        regimes: allowed regimes, per dimension: the names of trend regimes, mixture states and VIX buckets
            (:func:`regime_dimensions`) in the set constrain that dimension, the others are free; e.g.
            {"uptrend", "range", "calm"} = trend in {uptrend, range} and VIX bucket calm. Names compare
            case-insensitively; an unknown name is refused (a typo must not make a filter that never passes).
        vix_min / vix_max: VIX close bounds (index points, inclusive).
        missing_passes: a condition whose input is missing passes (True) or fails (False, the default).
    """

    iv_rank_min: float | None = None
    iv_rank_source: IVRankSource = IVRankSource.VIX
    regimes: frozenset[str] | None = None
    vix_min: float | None = None
    vix_max: float | None = None
    missing_passes: bool = False

    def __post_init__(self) -> None:
        if self.iv_rank_min is not None and not 0.0 <= self.iv_rank_min <= 100.0:
            raise ValueError(f"iv_rank_min is a percent in [0, 100], got {self.iv_rank_min}")
        for name in ("vix_min", "vix_max"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a VIX level >= 0 (index points), got {value}")
        if self.vix_min is not None and self.vix_max is not None and self.vix_min > self.vix_max:
            raise ValueError(f"vix_min {self.vix_min} is above vix_max {self.vix_max}")
        if self.regimes is not None:
            if isinstance(self.regimes, str) or not self.regimes:
                raise ValueError("regimes is a non-empty set of regime names (or None for any regime)")
            names = frozenset(str(r).lower() for r in self.regimes)
            unknown = sorted(names - regime_names())
            if unknown:
                raise ValueError(f"unknown regime {', '.join(unknown)}; choose from {', '.join(sorted(regime_names()))}")
            object.__setattr__(self, "regimes", names)

    @property
    def active(self) -> bool:
        """At least one condition is set."""
        return any(v is not None for v in (self.iv_rank_min, self.regimes, self.vix_min, self.vix_max))

    def check(self, state: MarketState) -> tuple[bool, str]:
        """(ok, why): ``why`` names the first failing condition and its value, "" when all pass."""
        for why in (self._iv_rank(state), self._regime(state), self._vix(state)):
            if why:
                return False, why
        return True, ""

    def describe(self) -> str:
        """The conditions in one line ("any market" when none is set)."""
        parts = []
        if self.iv_rank_min is not None:
            parts.append(f"{self.iv_rank_source.label} >= {self.iv_rank_min:g}")
        if self.regimes is not None:
            parts.append("regime in {" + ", ".join(sorted(self.regimes)) + "}")
        if self.vix_min is not None or self.vix_max is not None:
            low = "" if self.vix_min is None else f"{self.vix_min:g} <= "
            high = "" if self.vix_max is None else f" <= {self.vix_max:g}"
            parts.append(f"{low}VIX{high}")
        return "; ".join(parts) or "any market"

    # --- conditions: "" when the condition passes, else why not ------------------------------------------
    def _missing(self, what: str, why: str) -> str:
        return "" if self.missing_passes else f"{what} unknown ({why})"

    def _iv_rank(self, state: MarketState) -> str:
        if self.iv_rank_min is None:
            return ""
        name, label = self.iv_rank_source.field, self.iv_rank_source.label
        value = getattr(state, name)
        if not math.isfinite(value):
            return self._missing(label, state.why(name) or "not computed")
        return "" if value >= self.iv_rank_min else f"{label} {value:.0f} < {self.iv_rank_min:g}"

    def _regime(self, state: MarketState) -> str:
        if self.regimes is None:
            return ""
        values = {"trend": _name(state.trend), "mixture_regime": state.mixture_regime.lower(),
                  "vix_bucket": _name(state.vix_bucket)}
        for field, names in regime_dimensions().items():
            allowed = self.regimes & names
            if not allowed:
                continue  # this filter does not constrain that dimension
            label = _DIMENSION_LABELS[field]
            value = values[field]
            if not value or value == "unknown":
                why = self._missing(label, state.why(field) or "not computed")
                if why:
                    return why
            elif value not in allowed:
                return f"{label} {value} not in {{{', '.join(sorted(allowed))}}}"
        return ""

    def _vix(self, state: MarketState) -> str:
        if self.vix_min is None and self.vix_max is None:
            return ""
        if not math.isfinite(state.vix):
            return self._missing("VIX", state.why("vix") or "not computed")
        if self.vix_min is not None and state.vix < self.vix_min:
            return f"VIX {state.vix:.2f} < {self.vix_min:g}"
        if self.vix_max is not None and state.vix > self.vix_max:
            return f"VIX {state.vix:.2f} > {self.vix_max:g}"
        return ""


_DIMENSION_LABELS = {"trend": "trend", "mixture_regime": "mixture regime", "vix_bucket": "VIX bucket"}


@cache
def regime_dimensions() -> dict[str, frozenset[str]]:
    """The regime names of each market-state field: trend regimes, mixture state names, VIX buckets."""
    from spx_core.analytics.regimes import MixtureRegimes, TrendRegime, VixBucket

    return {"trend": frozenset(r.value for r in TrendRegime) - {"unknown"},
            "mixture_regime": frozenset(n for k in range(1, 7) for n in MixtureRegimes(n_states=k).names),
            "vix_bucket": frozenset(b.value for b in VixBucket) - {"unknown"}}


def regime_names() -> frozenset[str]:
    """Every regime name a filter may ask for."""
    return frozenset().union(*regime_dimensions().values())


def _name(regime: Any) -> str:
    """A regime enum's (or object's) name, lower case; "" for None."""
    if regime is None:
        return ""
    for attr in ("value", "name", "label"):
        value = getattr(regime, attr, None)
        if isinstance(value, str):
            return value.lower()
    return str(regime).lower()
