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
from typing import Any

from spx_core.analytics.market_state import MarketState

__all__ = ["IVRankSource", "MarketFilter"]


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


@dataclass(frozen=True, slots=True)
class MarketFilter:
    """Entry conditions on the market state; ``None`` disables a condition.

    Attributes:
        iv_rank_min: minimum IV rank (percent, 0-100) read from ``iv_rank_source``.
        iv_rank_source: which IV rank (VIX history or our stored ATM IVs).
        regimes: allowed regimes: a condition passes when the state's trend regime, mixture regime or VIX
            bucket name is in the set (names compared case-insensitively, e.g. {"uptrend", "calm"}).
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
            object.__setattr__(self, "regimes", frozenset(str(r).lower() for r in self.regimes))

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
        names = {n for n in (_name(state.trend), state.mixture_regime.lower(), _name(state.vix_bucket)) if n}
        if not names:
            why = state.why("trend") or state.why("mixture_regime") or state.why("vix_bucket") or "not computed"
            return self._missing("regime", why)
        if names & self.regimes:
            return ""
        return f"regime {', '.join(sorted(names))} not in {{{', '.join(sorted(self.regimes))}}}"

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


def _name(regime: Any) -> str:
    """A regime enum's (or object's) name, lower case; "" for None."""
    if regime is None:
        return ""
    for attr in ("value", "name", "label"):
        value = getattr(regime, attr, None)
        if isinstance(value, str):
            return value.lower()
    return str(regime).lower()
