"""Market regimes as the seed plans use them: VIX buckets, the ADX + SMA trend, Gaussian-mixture vol states.

VIX buckets (index points; each edge belongs to the bucket above it):

    VIX < 15            calm
    15 <= VIX < 20      normal
    20 <= VIX < 30      elevated
    VIX >= 30           stressed

Trend (daily bars; ADX(14) by Wilder, SMA(50) and SMA(200) of the close), on the last bar:

    uptrend     ADX >= 20 and close > SMA50 > SMA200
    downtrend   ADX >= 20 and close < SMA50 < SMA200
    range       otherwise (a weak trend, or price and averages not lined up)
    unknown     fewer bars than the slow SMA or the ADX needs

Gaussian-mixture regimes (:class:`MixtureRegimes`): scikit-learn's ``GaussianMixture`` on two daily
features, the log return and the log of the 21-day close-to-close realized vol, standardized. States
are ordered and named by their mean realized vol ("low-vol" < "high-vol"; three states add
"mid-vol"), so the names do not depend on the mixture's arbitrary component order, and a fixed
``random_state`` makes fits repeatable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np

from spx_core.analytics._series import as_float_array
from spx_core.analytics.indicators import adx, sma
from spx_core.analytics.volatility import close_to_close, log_returns

__all__ = [
    "VIX_BUCKET_EDGES",
    "MixtureRegimes",
    "RegimeModelError",
    "TrendRegime",
    "TrendRule",
    "VixBucket",
    "trend_regime",
    "trend_regime_series",
    "vix_bucket",
]


class VixBucket(StrEnum):
    CALM = "calm"
    NORMAL = "normal"
    ELEVATED = "elevated"
    STRESSED = "stressed"
    UNKNOWN = "unknown"  # no VIX value


#: Upper edges (VIX points) of calm, normal and elevated; above the last is stressed.
VIX_BUCKET_EDGES = (15.0, 20.0, 30.0)
_BUCKETS = (VixBucket.CALM, VixBucket.NORMAL, VixBucket.ELEVATED, VixBucket.STRESSED)


def vix_bucket(vix: float) -> VixBucket:
    """The bucket of a VIX level in index points (e.g. 17.3 -> normal); NaN -> unknown."""
    value = float(vix)
    if not math.isfinite(value):
        return VixBucket.UNKNOWN
    return _BUCKETS[int(np.searchsorted(VIX_BUCKET_EDGES, value, side="right"))]


class TrendRegime(StrEnum):
    UPTREND = "uptrend"
    DOWNTREND = "downtrend"
    RANGE = "range"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class TrendRule:
    """Parameters of the trend rule (module docstring).

    Attributes:
        adx_window: ADX lookback (bars).
        adx_threshold: ADX level (0..100) from which a trend counts as one.
        fast, slow: SMA lookbacks (bars), ``fast < slow``.
    """

    adx_window: int = 14
    adx_threshold: float = 20.0
    fast: int = 50
    slow: int = 200

    def __post_init__(self) -> None:
        if not 0 < self.fast < self.slow:
            raise ValueError(f"TrendRule needs 0 < fast < slow, got fast={self.fast}, slow={self.slow}")
        if self.adx_window < 1 or not 0 <= self.adx_threshold <= 100:
            raise ValueError("TrendRule needs adx_window >= 1 and 0 <= adx_threshold <= 100")


_TREND_LABELS = np.empty(4, dtype=object)
_TREND_LABELS[:] = [TrendRegime.UPTREND, TrendRegime.DOWNTREND, TrendRegime.RANGE, TrendRegime.UNKNOWN]


def trend_regime_series(high: Any, low: Any, close: Any, rule: TrendRule = TrendRule()) -> np.ndarray:
    """The trend regime at every bar (object array of :class:`TrendRegime`)."""
    c = as_float_array(close, "close")
    strength = np.asarray(adx(high, low, c, rule.adx_window).adx)
    fast, slow = np.asarray(sma(c, rule.fast)), np.asarray(sma(c, rule.slow))
    trending = strength >= rule.adx_threshold
    up = trending & (c > fast) & (fast > slow)
    down = trending & (c < fast) & (fast < slow)
    known = np.isfinite(strength) & np.isfinite(slow) & np.isfinite(c)
    codes = np.select([~known, up, down], [3, 0, 1], default=2)
    return _TREND_LABELS[codes]


def trend_regime(high: Any, low: Any, close: Any, rule: TrendRule = TrendRule()) -> TrendRegime:
    """The trend regime on the last bar (see the module docstring for the rule)."""
    series = trend_regime_series(high, low, close, rule)
    return series[-1] if len(series) else TrendRegime.UNKNOWN


class RegimeModelError(ValueError):
    """The mixture model cannot be fitted or used (too little data, not fitted, no convergence)."""


def _one_thread() -> Any:
    """BLAS/OpenMP limited to one thread: a few thousand 2-D points are far too small to share out, and
    on a busy 2-core machine the thread hand-offs made a fit take ~1.4 s instead of ~0.16 s."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


_NAMES = {1: ("all",), 2: ("low-vol", "high-vol"), 3: ("low-vol", "mid-vol", "high-vol")}


class MixtureRegimes:
    """Gaussian-mixture vol regimes on (log return, log realized vol) of daily closes.

    ``fit(close)`` then ``predict(close)`` (state names per bar; None where the features are not
    defined yet, i.e. the first ``vol_window`` bars) or ``predict_proba``. After fitting,
    ``names`` are the states ordered by mean vol and ``mean_vol`` their mean annualized realized vol.
    """

    def __init__(self, n_states: int = 2, *, vol_window: int = 21, random_state: int = 7,
                 min_observations: int = 250) -> None:
        if not 1 <= n_states <= 6:
            raise ValueError(f"n_states must be 1..6, got {n_states}")
        self.n_states = int(n_states)
        self.vol_window = int(vol_window)
        self.random_state = int(random_state)
        self.min_observations = int(min_observations)
        self.names: tuple[str, ...] = _NAMES.get(self.n_states) or tuple(
            f"vol-{i + 1}" for i in range(self.n_states))
        self.mean_vol: np.ndarray | None = None
        self._model: Any = None
        self._order: np.ndarray | None = None  # fitted component index of each ordered state
        self._centre = self._scale = None

    def _features(self, close: Any) -> tuple[np.ndarray, np.ndarray]:
        """(n, 2) raw features and the mask of bars where they are defined."""
        r = log_returns(close)
        with np.errstate(divide="ignore", invalid="ignore"):
            lv = np.log(np.asarray(close_to_close(as_float_array(close, "close"), self.vol_window)))
        x = np.column_stack((r, lv))
        return x, np.isfinite(x).all(axis=1)

    def fit(self, close: Any) -> MixtureRegimes:
        from sklearn.mixture import GaussianMixture

        x, ok = self._features(close)
        if ok.sum() < self.min_observations:
            raise RegimeModelError(f"the regime model needs at least {self.min_observations} daily bars with "
                                   f"{self.vol_window}-day vol defined, got {int(ok.sum())}; import more daily bars")
        data = x[ok]
        self._centre, self._scale = data.mean(axis=0), data.std(axis=0)
        self._scale[self._scale == 0] = 1.0
        model = GaussianMixture(n_components=self.n_states, covariance_type="full", n_init=3, max_iter=500,
                                random_state=self.random_state)
        with _one_thread():
            model.fit((data - self._centre) / self._scale)
        if not model.converged_:
            raise RegimeModelError("the Gaussian-mixture regime model did not converge; try fewer states")
        mean_log_vol = model.means_[:, 1] * self._scale[1] + self._centre[1]
        self._order = np.argsort(mean_log_vol, kind="stable")
        self.mean_vol = np.exp(mean_log_vol[self._order])
        self._model = model
        return self

    def predict_proba(self, close: Any) -> np.ndarray:
        """(n_bars, n_states) state probabilities in ``names`` order; NaN rows where features are undefined."""
        if self._model is None:
            raise RegimeModelError("fit the regime model before predicting")
        x, ok = self._features(close)
        out = np.full((len(x), self.n_states), np.nan)
        if ok.any():
            with _one_thread():
                out[ok] = self._model.predict_proba((x[ok] - self._centre) / self._scale)[:, self._order]
        return out

    def predict(self, close: Any) -> np.ndarray:
        """State name per bar (object array), None where the features are undefined."""
        proba = self.predict_proba(close)
        out = np.full(len(proba), None, dtype=object)
        ok = np.isfinite(proba).all(axis=1)
        out[ok] = np.array(self.names, dtype=object)[np.argmax(proba[ok], axis=1)]
        return out

    def current(self, close: Any) -> str | None:
        """The state of the last bar."""
        states = self.predict(close)
        return states[-1] if len(states) else None
