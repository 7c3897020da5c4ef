"""Indicators against hand-worked values, published reference values and independent loops."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from spx_core.analytics.indicators import (
    adx,
    atr,
    bollinger,
    ema,
    macd,
    parabolic_sar,
    rsi,
    sma,
    stochastic,
    true_range,
    wilder,
)

# StockCharts' "RSI" ChartSchool worked example (Wilder, 14 periods): closes and the RSI it prints.
RSI_CLOSES = [44.34, 44.09, 44.15, 43.61, 44.33, 44.83, 45.10, 45.42, 45.84, 46.08, 45.89, 46.03, 45.61, 46.28,
              46.28, 46.00, 46.03, 46.41, 46.22, 45.64]
RSI_PUBLISHED = [70.53, 66.32, 66.55, 69.41, 66.36, 57.97]


def _random_bars(n: int = 300, seed: int = 7):
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    high = close * np.exp(np.abs(rng.normal(0, 0.006, n)))
    low = close * np.exp(-np.abs(rng.normal(0, 0.006, n)))
    return high, low, close


def test_sma_ema_wilder_by_hand():
    x = [1.0, 2.0, 3.0, 4.0, 5.0]
    np.testing.assert_allclose(sma(x, 3), [np.nan, np.nan, 2.0, 3.0, 4.0])
    # alpha = 2/(3+1) = 0.5, seeded with mean(1,2,3) = 2: then 0.5*4 + 0.5*2 = 3, 0.5*5 + 0.5*3 = 4
    np.testing.assert_allclose(ema(x, 3), [np.nan, np.nan, 2.0, 3.0, 4.0])
    # alpha = 1/3: 4/3 + 2*2/3 = 8/3; 5/3 + 2*(8/3)/3 = 31/9
    np.testing.assert_allclose(wilder(x, 3), [np.nan, np.nan, 2.0, 8 / 3, 31 / 9])


def test_ema_matches_pandas_recursion_after_the_seed():
    _, _, close = _random_bars()
    n = 10
    seeded = np.concatenate(([close[:n].mean()], close[n:]))
    expected = pd.Series(seeded).ewm(span=n, adjust=False).mean().to_numpy()
    np.testing.assert_allclose(ema(close, n)[n - 1:], expected, rtol=1e-12)


def test_ema_skips_leading_nans():
    got = ema([np.nan, np.nan, 1.0, 2.0, 3.0, 4.0], 3)
    np.testing.assert_allclose(got, [np.nan, np.nan, np.nan, np.nan, 2.0, 3.0])


def test_rsi_matches_the_published_wilder_example():
    got = rsi(RSI_CLOSES, 14)
    assert np.isnan(got[:14]).all()
    # StockCharts rounds the average gain/loss ratio to 2 decimals before printing, hence 0.08 of slack;
    # the exact values by hand: 14 changes gain 3.34 and lose 1.40 -> 100 * 3.34 / 4.74; the next change
    # is -0.28: gain 3.34/14 * 13/14, loss (1.40/14 * 13 + 0.28) / 14.
    np.testing.assert_allclose(got[14:], RSI_PUBLISHED, atol=0.08)
    assert got[14] == pytest.approx(100 * 3.34 / 4.74, rel=1e-9)
    gain, loss = 3.34 / 14 * 13 / 14, (1.40 / 14 * 13 + 0.28) / 14
    assert got[15] == pytest.approx(100 * gain / (gain + loss), rel=1e-9)


def test_rsi_flat_and_monotone():
    assert rsi(np.full(20, 5.0), 5)[-1] == 50.0
    assert rsi(np.arange(1.0, 21.0), 5)[-1] == 100.0


def test_macd_is_ema_difference_and_signal():
    _, _, close = _random_bars()
    m = macd(close)
    line = ema(close, 12) - ema(close, 26)
    np.testing.assert_allclose(m.macd, line, equal_nan=True)
    np.testing.assert_allclose(m.signal, ema(line, 9), equal_nan=True)
    # the MACD line starts with the slow EMA (index 25); its 9-bar EMA seeds 8 bars later, at index 33
    assert np.isnan(m.signal[:33]).all() and np.isfinite(m.signal[33:]).all()
    np.testing.assert_allclose(m.histogram, line - m.signal, equal_nan=True)
    with pytest.raises(ValueError, match="shorter"):
        macd(close, 26, 12)


def test_bollinger_against_pandas():
    _, _, close = _random_bars()
    b = bollinger(pd.Series(close), 20, 2.0)
    roll = pd.Series(close).rolling(20)
    np.testing.assert_allclose(b.middle, roll.mean(), rtol=1e-10, equal_nan=True)
    np.testing.assert_allclose(b.upper, roll.mean() + 2 * roll.std(ddof=0), rtol=1e-10, equal_nan=True)
    assert b.percent_b.iloc[-1] == pytest.approx((close[-1] - b.lower.iloc[-1]) / (b.upper.iloc[-1] - b.lower.iloc[-1]))


def test_atr_by_hand():
    high, low, close = [10, 11, 12, 11.5], [9, 9.5, 10.5, 10], [9.5, 10.8, 12.5, 10.2]
    np.testing.assert_allclose(true_range(high, low, close), [np.nan, 1.5, 1.5, 2.5])
    # first ATR = mean(TR1, TR2) = 1.5; then (2.5 + 1.5) / 2 = 2.0
    np.testing.assert_allclose(atr(high, low, close, 2), [np.nan, np.nan, 1.5, 2.0])


def _adx_loop(high, low, close, n):
    """Wilder's own formulation (running sums, TR14 = TR14 - TR14/14 + TR) as a plain loop."""
    tr, pdm, mdm = [], [], []
    for i in range(1, len(close)):
        tr.append(max(high[i] - low[i], abs(high[i] - close[i - 1]), abs(low[i] - close[i - 1])))
        up, down = high[i] - high[i - 1], low[i - 1] - low[i]
        pdm.append(up if up > down and up > 0 else 0.0)
        mdm.append(down if down > up and down > 0 else 0.0)
    s_tr, s_p, s_m = sum(tr[:n]), sum(pdm[:n]), sum(mdm[:n])
    dxs, out = [], [math.nan] * len(close)
    adx_value = None
    for j in range(n - 1, len(tr)):
        if j > n - 1:
            s_tr, s_p, s_m = s_tr - s_tr / n + tr[j], s_p - s_p / n + pdm[j], s_m - s_m / n + mdm[j]
        pdi, mdi = 100 * s_p / s_tr, 100 * s_m / s_tr
        dx = 100 * abs(pdi - mdi) / (pdi + mdi)
        dxs.append(dx)
        if len(dxs) == n:
            adx_value = sum(dxs) / n
        elif len(dxs) > n:
            adx_value = (adx_value * (n - 1) + dx) / n
        if adx_value is not None:
            out[j + 1] = adx_value
    return out


def test_adx_matches_wilder_loop():
    high, low, close = _random_bars()
    got = adx(high, low, close, 14)
    ref = _adx_loop(high.tolist(), low.tolist(), close.tolist(), 14)
    np.testing.assert_allclose(got.adx, ref, rtol=1e-10, equal_nan=True)
    assert np.isnan(got.adx[:27]).all() and np.isfinite(got.adx[27:]).all()


def test_stochastic_against_pandas():
    high, low, close = _random_bars()
    s = stochastic(high, low, close, 14, 3, smooth=3)
    hh, ll = pd.Series(high).rolling(14).max(), pd.Series(low).rolling(14).min()
    raw = 100 * (close - ll) / (hh - ll)
    slow_k = raw.rolling(3).mean()
    np.testing.assert_allclose(s.k, slow_k, rtol=1e-10, equal_nan=True)
    np.testing.assert_allclose(s.d, slow_k.rolling(3).mean(), rtol=1e-10, equal_nan=True)


def test_parabolic_sar_hand_trace():
    high = [10, 11, 12, 12.5, 11.5, 10, 9, 12.4]
    low = [9, 9.5, 10.5, 11, 8.9, 8.5, 8, 9]
    # bar 1 long (11 >= 10), stop = low0 = 9, EP = 11;
    # bar 2: 9 + .02*(11-9) = 9.04 capped by low0 = 9 -> 9; EP 12, AF .04
    # bar 3: 9 + .04*(12-9) = 9.12; EP 12.5, AF .06
    # bar 4: 9.12 + .06*(12.5-9.12) = 9.3228, low 8.9 < stop -> short at the old EP 12.5; EP 8.9, AF .02
    # bar 5: 12.5 + .02*(8.9-12.5) = 12.428 raised to high3 = 12.5; EP 8.5, AF .04
    # bar 6: 12.5 + .04*(8.5-12.5) = 12.34; EP 8, AF .06
    # bar 7: 12.34 + .06*(8-12.34) = 12.0796, high 12.4 > stop -> long at the old EP 8
    np.testing.assert_allclose(parabolic_sar(high, low), [np.nan, 9, 9, 9.12, 12.5, 12.5, 12.34, 8.0])


def test_series_round_trip_keeps_the_index():
    idx = pd.date_range("2020-01-01", periods=30, freq="D")
    s = pd.Series(np.linspace(1, 2, 30), index=idx)
    for out in (sma(s, 5), ema(s, 5), rsi(s, 5), bollinger(s, 5).upper):
        assert isinstance(out, pd.Series) and out.index.equals(idx)
