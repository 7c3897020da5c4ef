"""VIX buckets at their edges, the trend rule on built trends, the mixture model on known vol states."""

from __future__ import annotations

import math

import numpy as np
import pytest

from spx_core.analytics.indicators import adx
from spx_core.analytics.regimes import (
    MixtureRegimes,
    RegimeModelError,
    TrendRegime,
    TrendRule,
    VixBucket,
    trend_regime,
    trend_regime_series,
    vix_bucket,
)


@pytest.mark.parametrize(("vix", "bucket"), [
    (9.0, VixBucket.CALM), (14.99, VixBucket.CALM), (15.0, VixBucket.NORMAL), (19.99, VixBucket.NORMAL),
    (20.0, VixBucket.ELEVATED), (29.9, VixBucket.ELEVATED), (30.0, VixBucket.STRESSED), (82.7, VixBucket.STRESSED),
    (math.nan, VixBucket.UNKNOWN)])
def test_vix_buckets_and_their_edges(vix, bucket):
    assert vix_bucket(vix) is bucket


def _bars(drift: float, n: int = 300, noise: float = 0.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(drift + noise * rng.standard_normal(n)))
    return close * 1.005, close * 0.995, close


def test_steady_rise_and_fall_are_trends():
    assert trend_regime(*_bars(0.003)) is TrendRegime.UPTREND
    assert trend_regime(*_bars(-0.003)) is TrendRegime.DOWNTREND


def test_choppy_market_is_a_range():
    # mean-reverting around 100: the averages cross and the ADX stays low
    n = 400
    close = 100 + 2 * np.sin(np.arange(n) / 3.0)
    assert trend_regime(close + 0.5, close - 0.5, close) is TrendRegime.RANGE


def test_trend_needs_a_strong_adx():
    high, low, close = _bars(0.003, noise=0.004, seed=2)
    assert trend_regime(high, low, close) is TrendRegime.UPTREND
    strength = adx(high, low, close).adx[-1]
    assert 20 < strength < 100
    # same prices; a threshold just above the last ADX turns the uptrend into a range
    assert trend_regime(high, low, close, TrendRule(adx_threshold=strength + 0.1)) is TrendRegime.RANGE


def test_unknown_until_the_slow_average_exists():
    high, low, close = _bars(0.003, n=250)
    series = trend_regime_series(high, low, close)
    assert (series[:199] == TrendRegime.UNKNOWN).all()
    assert series[-1] is TrendRegime.UPTREND
    assert trend_regime(high[:150], low[:150], close[:150]) is TrendRegime.UNKNOWN
    with pytest.raises(ValueError, match="fast < slow"):
        TrendRule(fast=200, slow=50)


def _two_state_closes(seed: int = 11):
    """Alternating 150-day blocks of 10% and 40% annualized vol; the true state per bar."""
    rng = np.random.default_rng(seed)
    vols = np.repeat([0.10, 0.40, 0.10, 0.40, 0.10, 0.40], 150)
    returns = vols / math.sqrt(252) * rng.standard_normal(len(vols))
    close = 1000 * np.exp(np.concatenate(([0.0], np.cumsum(returns))))
    return close, np.concatenate(([np.nan], vols))


def test_mixture_recovers_known_vol_states_and_names_them_by_vol():
    close, true_vol = _two_state_closes()
    model = MixtureRegimes(2).fit(close)
    assert model.names == ("low-vol", "high-vol")
    assert model.mean_vol[0] < 0.2 < model.mean_vol[1]
    states = model.predict(close)
    assert states[:21].tolist() == [None] * 21
    known = states != None
    # away from the block edges (where the 21-day vol straddles two blocks) the states are right
    inner = known & (np.arange(len(close)) % 150 > 40)
    expected = np.where(true_vol == 0.10, "low-vol", "high-vol")
    assert (states[inner] == expected[inner]).mean() > 0.95
    proba = model.predict_proba(close)
    np.testing.assert_allclose(proba[known].sum(axis=1), 1.0)


def test_mixture_is_deterministic_and_three_states_are_ordered():
    close, _ = _two_state_closes()
    a, b = MixtureRegimes(3).fit(close), MixtureRegimes(3).fit(close)
    assert a.names == ("low-vol", "mid-vol", "high-vol")
    np.testing.assert_array_equal(a.mean_vol, b.mean_vol)
    assert (np.diff(a.mean_vol) > 0).all()
    np.testing.assert_array_equal(a.predict(close), b.predict(close))
    assert a.current(close) == a.predict(close)[-1]


def test_mixture_errors_are_clear():
    with pytest.raises(RegimeModelError, match="at least 250 daily bars"):
        MixtureRegimes().fit(np.linspace(100, 110, 100))
    with pytest.raises(RegimeModelError, match="fit the regime model"):
        MixtureRegimes().predict(np.linspace(100, 110, 100))
