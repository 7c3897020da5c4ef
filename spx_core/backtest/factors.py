"""The market a backtest decides in: the live filters' market state, and each entry's factors.

:class:`MarketStates` gives a strategy that filters on IV rank, VIX or regimes the same
:class:`~spx_core.analytics.market_state.MarketState` the app's Market panel computes: the daily bars stored
before the decision's session (``market_state`` cuts them there: no look-ahead) and the chain's fitted surface.
The bars are read once per run; the GARCH/mixture part is cached per session date (``BarsCache``). A strategy
without such filters never pays for it (the engine then fits the surface only inside a scan, as live).

:func:`entry_factors` records, per entry, the figures the factor attribution compares between winners and
losers (the Quantor plan): the entry's DTE, credit (index points, positive = received), width and credit per
width, the time of day (ET hours), the index level, the 30-day ATM IV, and the market state's VIX and IV rank
when the strategy computed one. A figure that cannot be known is NaN.
"""

from __future__ import annotations

import math
from typing import Any

from spx_core.analytics.market_state import BarsCache, MarketState, market_state
from spx_core.automation.config import StrategyConfig
from spx_core.domain.calendar import ET, from_ns

__all__ = ["MarketStates", "entry_factors"]

_NAN = math.nan


class MarketStates:
    """Market state per decision for the strategies whose filters read it (module docstring)."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.cache = BarsCache()
        self.last: MarketState | None = None  # the state of the decision being made (its entry factors read it)
        self._bars: tuple[Any, Any] | None = None

    @staticmethod
    def needed(config: StrategyConfig) -> bool:
        """Whether ``config``'s entry filters read the market state (IV rank, VIX or regimes)."""
        return config.filters.active

    def at(self, snapshot: Any, civ: Any, surface: Any) -> MarketState:
        """The state at ``snapshot`` with its (already fitted) chain IVs and surface (None: the surface fields
        are missing)."""
        if self._bars is None:
            self._bars = (self.store.load_bars("SPX"), self.store.load_bars("VIX"))
        session = from_ns(snapshot.time_ns).astimezone(ET).date()
        self.last = market_state(*self._bars, surface, civ=civ, cache=self.cache, session=session)
        return self.last


def entry_factors(request: Any, snapshot: Any, time_ns: int, state: MarketState | None) -> dict[str, float]:
    """The entry's factors (module docstring); ``request`` is the entry's OrderRequest (None: order unknown)."""
    local = from_ns(int(time_ns)).astimezone(ET)
    out = {"hour_et": local.hour + local.minute / 60.0, "spot": _NAN, "atm_iv": _NAN, "dte": _NAN, "credit": _NAN,
           "width": _NAN, "credit_per_width": _NAN, "vix": _NAN, "iv_rank": _NAN}
    if snapshot is not None:
        from spx_core.analytics.iv_rank import atm_iv

        out["spot"] = float(snapshot.underlying_price)
        try:
            out["atm_iv"] = float(atm_iv(snapshot))
        except (ValueError, ArithmeticError):
            pass
    if request is not None and request.legs:
        strikes = [float(leg.contract.strike) for leg in request.legs]
        expiries = [leg.contract.expiry for leg in request.legs]
        out["dte"] = float((min(expiries) - local.date()).days)
        sign = -1.0 if str(getattr(request.side, "value", request.side)).lower() == "buy" else 1.0
        credit = sign * float(request.limit) if request.limit is not None else _NAN
        width = max(strikes) - min(strikes)
        out["credit"], out["width"] = credit, width
        out["credit_per_width"] = credit / width if width > 0 and math.isfinite(credit) else _NAN
    if state is not None:
        out["vix"] = _num(getattr(state, "vix", None))
        out["iv_rank"] = _num(getattr(state, "atm_iv_rank", None))
    return out


def _num(value: Any) -> float:
    try:
        return float(value) if value is not None else _NAN
    except (TypeError, ValueError):
        return _NAN
