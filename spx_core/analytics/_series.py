"""Array plumbing shared by the analytics modules: input conversion, Series round-trip, rolling sums.

Rolling statistics are O(n) cumulative sums with NaN counted separately, so one missing bar makes
only the windows that contain it NaN (a plain cumsum would poison every later value) and no Python
loop runs over the days.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "TRADING_DAYS",
    "as_float_array",
    "check_window",
    "like",
    "rolling_mean",
    "rolling_sum",
    "rolling_var",
]

#: Trading days per year used to annualize daily statistics.
TRADING_DAYS = 252


def as_float_array(values: Any, name: str) -> np.ndarray:
    """A 1-D float64 copy-free view of ``values`` (array, list or pandas Series)."""
    arr = np.asarray(getattr(values, "to_numpy", lambda **_: values)(dtype=np.float64), dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional (one value per bar), got shape {arr.shape}")
    return arr


def like(result: np.ndarray, template: Any, name: str | None = None) -> Any:
    """``result`` as a pandas Series on ``template``'s index when ``template`` is a Series, else as is."""
    index = getattr(template, "index", None)
    if index is None or not hasattr(template, "to_numpy"):
        return result
    import pandas as pd

    return pd.Series(result, index=index, name=name)


def check_window(window: int, minimum: int = 1) -> int:
    if int(window) != window or window < minimum:
        raise ValueError(f"window must be a whole number of bars >= {minimum}, got {window!r}")
    return int(window)


def rolling_sum(x: np.ndarray, window: int) -> np.ndarray:
    """Sum of the last ``window`` values at each position; NaN until full or when a NaN is inside."""
    n = len(x)
    out = np.full(n, np.nan)
    if n < window:
        return out
    bad = ~np.isfinite(x)
    csum = np.concatenate(([0.0], np.cumsum(np.where(bad, 0.0, x))))
    cbad = np.concatenate(([0], np.cumsum(bad)))
    sums = csum[window:] - csum[:-window]
    nbad = cbad[window:] - cbad[:-window]
    out[window - 1:] = np.where(nbad == 0, sums, np.nan)
    return out


def rolling_mean(x: np.ndarray, window: int) -> np.ndarray:
    return rolling_sum(x, window) / window


def rolling_var(x: np.ndarray, window: int, ddof: int = 1) -> np.ndarray:
    """Rolling variance with ``ddof``; the series is centred on its overall mean first so that the
    sum-of-squares formula does not lose precision to cancellation."""
    finite = x[np.isfinite(x)]
    centred = x - (finite.mean() if len(finite) else 0.0)
    s1 = rolling_sum(centred, window)
    s2 = rolling_sum(centred * centred, window)
    var = (s2 - s1 * s1 / window) / (window - ddof)
    return np.maximum(var, 0.0)  # rounding can leave -1e-20 for a constant series
