"""The conditions in front of an entry: the strategy's market filters and its limit profile's entry limits.

Each check returns every failure as one plain sentence (a SKIP lists them all, not only the first), worded
"<what>: <value> <relation> <bound>" so a decision log reads as the reason it skipped. A missing input fails
the condition unless the filters say ``missing_passes``: a filter that cannot be checked lets nothing through.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from spx_core.analytics.filters import regime_dimensions
from spx_core.analytics.regimes import vix_bucket
from spx_core.automation.config import EntryFilters
from spx_core.risk.limits import PortfolioState
from spx_core.risk.profiles import LimitProfile

__all__ = ["filter_failures", "normalize_regimes", "profile_failures"]

_LABELS = {"trend": "trend", "mixture_regime": "mixture regime", "vix_bucket": "VIX bucket"}


def normalize_regimes(regime: object) -> tuple[str, ...]:
    """Regime names (str, enum, or an iterable of them) as a sorted tuple of lower-case names."""
    if regime is None:
        return ()
    items: Iterable[object] = (regime,) if isinstance(regime, str) or not isinstance(regime, Iterable) else regime
    names = set()
    for item in items:
        value = getattr(item, "value", item)
        if value is not None and str(value):
            names.add(str(value).lower())
    return tuple(sorted(names))


def _bounded(label: str, value: float, low: float | None, high: float | None, missing_passes: bool,
             unit: str = "", why: str = "") -> list[str]:
    if low is None and high is None:
        return []
    if not math.isfinite(value):
        because = f" ({why})" if why else ": the market context has none; supply it"
        return [] if missing_passes else [f"{label} unknown{because}; or set filters.missing_passes"]
    out = []
    if low is not None and value < low:
        out.append(f"{label} {value:.2f}{unit} is below the minimum {low:g}{unit}")
    if high is not None and value > high:
        out.append(f"{label} {value:.2f}{unit} is above the maximum {high:g}{unit}")
    return out


def _regime_failures(filters: EntryFilters, regimes: tuple[str, ...], vix: float,
                     why: Mapping[str, str]) -> list[str]:
    if filters.regimes is None:
        return []
    have = set(regimes)
    out = []
    for dimension, names in regime_dimensions().items():
        allowed = filters.regimes & names
        if not allowed:
            continue  # the filter does not constrain this dimension
        current = sorted(have & names)
        if not current and dimension == "vix_bucket" and math.isfinite(vix):
            current = [vix_bucket(vix).value]  # the bucket follows from VIX when not given
        label = _LABELS[dimension]
        if not current:
            if not filters.missing_passes:
                out.append(f"regime: {label} unknown ({why.get(dimension) or 'the market context names none'}); allowed "
                           f"{{{', '.join(sorted(allowed))}}}")
        elif not set(current) & allowed:
            out.append(f"regime: {label} {'/'.join(current)} is not in {{{', '.join(sorted(allowed))}}}")
    return out


def filter_failures(filters: EntryFilters, *, iv_rank: float, vix: float, regimes: tuple[str, ...],
                    why: Mapping[str, str] | None = None) -> list[str]:
    """Every failed market filter ([] = all pass); ``why`` says why a missing market field is missing."""
    mp = filters.missing_passes
    why = why or {}
    return (_bounded("IV rank", iv_rank, filters.iv_rank_min, filters.iv_rank_max, mp, why=why.get("iv_rank", ""))
            + _bounded("VIX", vix, filters.vix_min, filters.vix_max, mp, why=why.get("vix", ""))
            + _regime_failures(filters, regimes, vix, why))


def profile_failures(profile: LimitProfile, state: PortfolioState | None) -> list[str]:
    """The limit profile's entry conditions the book already fails (the gate would refuse the order anyway;
    skipping here records why instead of sending an order to be refused). No state: nothing to check."""
    if state is None:
        return []
    name = f"limit profile {profile.name!r}"
    out = []
    if profile.max_open_trades is not None and len(state.trades) >= profile.max_open_trades:
        out.append(f"{name}: {len(state.trades)} open trades, at most {profile.max_open_trades} (max_open_trades)")
    if profile.max_new_trades_per_day is not None and state.trades_opened_today >= profile.max_new_trades_per_day:
        out.append(f"{name}: {state.trades_opened_today} trades opened today, at most "
                   f"{profile.max_new_trades_per_day} a day (max_new_trades_per_day)")
    if profile.stop_after_stop_loss and state.stops_today > 0:
        out.append(f"{name}: a stop loss was taken today; no new entries until the next session "
                   f"(stop_after_stop_loss)")
    if profile.max_daily_loss is not None and -state.day_pnl >= profile.max_daily_loss:
        out.append(f"{name}: day P&L {state.day_pnl:,.0f} $ has reached the daily loss limit "
                   f"{profile.max_daily_loss:,.0f} $ (max_daily_loss)")
    return out
