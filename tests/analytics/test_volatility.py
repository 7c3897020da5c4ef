"""Realized-vol estimators against values worked out by hand on a small OHLC series."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from spx_core.analytics.volatility import (
    close_to_close,
    garman_klass,
    log_returns,
    parkinson,
    rogers_satchell,
    variance_risk_premium,
    yang_zhang,
)

# Six daily bars, written out: open, high, low, close.
O = [100.0, 101.0, 99.5, 102.0, 103.0, 101.5]
H = [101.5, 102.0, 101.0, 103.5, 103.8, 102.5]
L = [99.0, 100.2, 98.8, 101.0, 101.9, 100.0]
C = [101.0, 100.5, 100.8, 103.2, 102.1, 100.9]
ANN = 252


def _var(xs: list[float]) -> float:
    m = sum(xs) / len(xs)
    return sum((x - m) ** 2 for x in xs) / (len(xs) - 1)


def _hand_c2c(t: int, n: int) -> float:
    rets = [math.log(C[i] / C[i - 1]) for i in range(t - n + 1, t + 1)]
    return math.sqrt(_var(rets) * ANN)


def _hand_parkinson(t: int, n: int) -> float:
    s = sum(math.log(H[i] / L[i]) ** 2 for i in range(t - n + 1, t + 1))
    return math.sqrt(s / (n * 4 * math.log(2)) * ANN)


def _hand_gk(t: int, n: int) -> float:
    s = sum(0.5 * math.log(H[i] / L[i]) ** 2 - (2 * math.log(2) - 1) * math.log(C[i] / O[i]) ** 2
            for i in range(t - n + 1, t + 1))
    return math.sqrt(s / n * ANN)


def _rs(i: int) -> float:
    return (math.log(H[i] / C[i]) * math.log(H[i] / O[i]) + math.log(L[i] / C[i]) * math.log(L[i] / O[i]))


def _hand_rs(t: int, n: int) -> float:
    return math.sqrt(sum(_rs(i) for i in range(t - n + 1, t + 1)) / n * ANN)


def _hand_yz(t: int, n: int) -> float:
    days = range(t - n + 1, t + 1)
    var_o = _var([math.log(O[i] / C[i - 1]) for i in days])
    var_c = _var([math.log(C[i] / O[i]) for i in days])
    rs = sum(_rs(i) for i in days) / n
    k = 0.34 / (1.34 + (n + 1) / (n - 1))
    return math.sqrt((var_o + k * var_c + (1 - k) * rs) * ANN)


@pytest.mark.parametrize("n", [2, 3, 5])
def test_close_to_close_matches_hand_values(n):
    got = close_to_close(np.array(C), n)
    assert np.isnan(got[:n]).all()  # n returns need n + 1 closes
    for t in range(n, len(C)):
        assert got[t] == pytest.approx(_hand_c2c(t, n), rel=1e-12)


@pytest.mark.parametrize("n", [1, 3, 6])
def test_range_estimators_match_hand_values(n):
    pk, gk, rs = parkinson(H, L, n), garman_klass(O, H, L, C, n), rogers_satchell(O, H, L, C, n)
    for got in (pk, gk, rs):
        assert np.isnan(got[:n - 1]).all()
        assert np.isfinite(got[n - 1:]).all()
    for t in range(n - 1, len(C)):
        assert pk[t] == pytest.approx(_hand_parkinson(t, n), rel=1e-12)
        assert gk[t] == pytest.approx(_hand_gk(t, n), rel=1e-12)
        assert rs[t] == pytest.approx(_hand_rs(t, n), rel=1e-12)


@pytest.mark.parametrize("n", [2, 3, 5])
def test_yang_zhang_matches_hand_values(n):
    got = yang_zhang(O, H, L, C, n)
    assert np.isnan(got[:n]).all()
    for t in range(n, len(C)):
        assert got[t] == pytest.approx(_hand_yz(t, n), rel=1e-12)


def test_closed_form_values():
    # Every bar spans exactly 2% high-to-low: Parkinson = 0.02 / sqrt(4 ln 2) per day.
    low = np.full(30, 100.0)
    high = low * math.exp(0.02)
    assert parkinson(high, low, 10)[-1] == pytest.approx(0.02 / math.sqrt(4 * math.log(2)) * math.sqrt(252))
    # Returns alternating +1% / -1% (log): sample std over an even window of 2k returns = 0.01 * sqrt(2k/(2k-1)).
    close = 100 * np.exp(np.cumsum([0.0] + [0.01, -0.01] * 10))
    assert close_to_close(close, 4)[-1] == pytest.approx(0.01 * math.sqrt(4 / 3) * math.sqrt(252))


def test_missing_bar_only_blanks_the_windows_that_hold_it():
    close = np.array(C + C)
    close[3] = np.nan
    got = close_to_close(close, 2)
    # returns 3 and 4 touch the missing close; windows of 2 returns ending at 3, 4, 5 hold one of them
    assert np.isnan(got[3:6]).all()
    assert np.isfinite(got[6:]).all()
    assert got[2] == pytest.approx(_hand_c2c(2, 2))


def test_series_in_series_out_and_periods_per_year():
    idx = pd.date_range("2024-01-01", periods=len(C), freq="B")
    got = parkinson(pd.Series(H, index=idx), pd.Series(L, index=idx), 3, periods_per_year=252 * 390)
    assert isinstance(got, pd.Series) and (got.index == idx).all()
    assert got.iloc[-1] == pytest.approx(_hand_parkinson(5, 3) * math.sqrt(390))


def test_log_returns_and_bad_window():
    assert np.isnan(log_returns(C)[0])
    assert log_returns(C)[1] == pytest.approx(math.log(C[1] / C[0]))
    with pytest.raises(ValueError, match="window"):
        close_to_close(C, 1)
    with pytest.raises(ValueError, match="window"):
        parkinson(H, L, 0)


def test_variance_risk_premium_units():
    vrp = variance_risk_premium(0.18, 0.12)
    assert vrp.vol_points == pytest.approx(6.0)
    assert vrp.variance == pytest.approx(0.18**2 - 0.12**2)
    assert vrp.ratio == pytest.approx(1.5)
    arr = variance_risk_premium(np.array([0.2, 0.1]), np.array([0.1, np.nan]))
    assert arr.vol_points[0] == pytest.approx(10.0) and np.isnan(arr.vol_points[1])


def test_variance_risk_premium_keeps_a_series_index():
    idx = pd.date_range("2024-01-01", periods=3)
    vrp = variance_risk_premium(pd.Series([0.2, 0.18, 0.25], index=idx), np.array([0.1, 0.2, 0.25]))
    assert isinstance(vrp.vol_points, pd.Series) and vrp.vol_points.index.equals(idx)
    np.testing.assert_allclose(vrp.vol_points, [10.0, -2.0, 0.0])
