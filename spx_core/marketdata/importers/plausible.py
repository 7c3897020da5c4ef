"""Plausibility bounds for imported values: what no real SPX-family file contains.

A value can be well-formed and still impossible (an index at 0 or 1e308, a strike of 0, a quote dated
1970-01-01, an expiry before its quote date). Such rows are rejected with the bound they break, like
malformed ones; header values that break a bound fail the whole file. The vector checks mark rows in a
:class:`~spx_core.marketdata.importers.parsing.RowErrors`; the scalar ones return a reason or None.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date, datetime

import numpy as np

from spx_core.marketdata.importers.parsing import RowErrors

__all__ = ["MAX_PRICE", "EARLIEST_DAY", "MAX_EXPIRY_YEARS", "latest_day", "check_index_price", "check_price",
           "check_strike", "check_days", "check_expiry", "check_times_ns", "plausible_ns_bounds", "index_price_problem",
           "time_problem"]

#: Highest index level, strike or option price accepted (index points). SPX is about 6,700 in 2025;
#: a million leaves room for a century of growth and still catches garbage such as 1e308.
MAX_PRICE = 1_000_000.0
#: No SPX option quote predates this day (Cboe listed S&P 500 index options in 1983); the Unix epoch,
#: the usual "unset" timestamp, falls before it.
EARLIEST_DAY = date(1983, 1, 1)
#: SPX lists about five years out; an expiry more than this many years after its quote is garbage.
MAX_EXPIRY_YEARS = 10


def latest_day() -> date:
    """The latest plausible quote day: tomorrow (UTC). A data file cannot come from further ahead."""
    return date.fromtimestamp(time.time() + 86_400)


def _show(text: np.ndarray | None, values: np.ndarray) -> Callable[[int], str]:
    return (lambda i: repr(text[i])) if text is not None else (lambda i: f"{values[i]:g}")


def check_index_price(values: np.ndarray, name: str, errors: RowErrors, text: np.ndarray | None = None) -> None:
    """Mark finite index levels outside ``(0, MAX_PRICE]`` (NaN is left to the caller's own rules)."""
    show = _show(text, values)
    with np.errstate(invalid="ignore"):
        bad = np.isfinite(values) & ((values <= 0) | (values > MAX_PRICE))
    errors.mark(bad, lambda i: f"{name} {show(i)} is not a plausible index level (0 < level <= {MAX_PRICE:,.0f})")


def check_price(values: np.ndarray, name: str, errors: RowErrors, text: np.ndarray | None = None) -> None:
    """Mark option prices above ``MAX_PRICE`` (negative ones are rejected by the parser)."""
    show = _show(text, values)
    with np.errstate(invalid="ignore"):
        bad = np.isfinite(values) & (np.abs(values) > MAX_PRICE)
    errors.mark(bad, lambda i: f"{name} {show(i)} is not a plausible price (above {MAX_PRICE:,.0f})")


def check_strike(values: np.ndarray, name: str, errors: RowErrors, text: np.ndarray | None = None) -> None:
    """Mark finite strikes outside ``(0, MAX_PRICE]``."""
    show = _show(text, values)
    with np.errstate(invalid="ignore"):
        bad = np.isfinite(values) & ((values <= 0) | (values > MAX_PRICE))
    errors.mark(bad, lambda i: f"{name} {show(i)} is not a plausible strike (0 < strike <= {MAX_PRICE:,.0f})")


def check_days(days: np.ndarray, name: str, errors: RowErrors) -> None:
    """Mark quote days (``datetime64[D]``) before :data:`EARLIEST_DAY` or after :func:`latest_day`."""
    lo, hi = np.datetime64(EARLIEST_DAY, "D"), np.datetime64(latest_day(), "D")
    bad = ~np.isnat(days) & ((days < lo) | (days > hi))
    errors.mark(bad, lambda i: f"{name} {days[i]} is not a plausible quote date ({EARLIEST_DAY} to {hi})")


def check_expiry(expiry: np.ndarray, quote_day: np.ndarray, name: str, errors: RowErrors, *,
                 quote_name: str = "the quote date") -> None:
    """Mark expiries before their quote day or more than :data:`MAX_EXPIRY_YEARS` after it."""
    quote_day = np.broadcast_to(np.asarray(quote_day, dtype="datetime64[D]"), expiry.shape)
    known = ~np.isnat(expiry) & ~np.isnat(quote_day)
    errors.mark(known & (expiry < quote_day),
                lambda i: f"{name} {expiry[i]} is before {quote_name} {quote_day[i]} (expired series)")
    far = quote_day.astype("datetime64[D]") + np.timedelta64(366 * MAX_EXPIRY_YEARS, "D")
    errors.mark(known & (expiry > far),
                lambda i: f"{name} {expiry[i]} is more than {MAX_EXPIRY_YEARS} years after {quote_name} "
                          f"{quote_day[i]}; not a listed expiry")


def plausible_ns_bounds() -> tuple[int, int]:
    """``[lo, hi)`` in int64 ns since the epoch (UTC) of plausible quote instants."""
    lo = int(np.datetime64(EARLIEST_DAY, "D").astype("datetime64[ns]").astype(np.int64))
    hi = int((np.datetime64(latest_day(), "D") + 1).astype("datetime64[ns]").astype(np.int64))
    return lo, hi


def check_times_ns(ns: np.ndarray, name: str, errors: RowErrors) -> None:
    """Mark int64 ns instants outside the plausible quote days (the epoch, far past or future)."""
    lo, hi = plausible_ns_bounds()
    bad = (ns < lo) | (ns >= hi)
    errors.mark(bad, lambda i: f"{name} {np.datetime64(int(ns[i]), 'ns')} UTC is not a plausible quote time "
                               f"({EARLIEST_DAY} to {latest_day()})")


def index_price_problem(value: float, name: str) -> str | None:
    """Why a header's index level is implausible, or None."""
    if not np.isfinite(value) or not 0 < value <= MAX_PRICE:
        return f"{name} {value:g} is not a plausible index level (0 < level <= {MAX_PRICE:,.0f})"
    return None


def time_problem(when: datetime, name: str) -> str | None:
    """Why a header's time is implausible, or None."""
    if not EARLIEST_DAY <= when.date() <= latest_day():
        return f"{name} {when.isoformat()} is not a plausible quote time ({EARLIEST_DAY} to {latest_day()})"
    return None
