"""VaR/ES: the quantile convention by hand, historical full revaluation vs Black-76, parametric vs a hand delta-gamma."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

from spx_core.domain.contracts import OptionContract, Right, Root
from spx_core.pricing import black76
from spx_core.risk.greeks import portfolio_greeks
from spx_core.risk.history import ReturnHistory
from spx_core.risk.var import (
    historical_pnl,
    historical_var,
    parametric_moments,
    parametric_var,
    var_es,
)
from spx_core.strategies.market import locate


def _history(n: int, *, seed: int = 11, spot_sd: float = 0.01, vol_sd: float = 1.2, rho: float = -0.7
             ) -> ReturnHistory:
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((2, n))
    r = spot_sd * z[0]
    dv = vol_sd * (rho * z[0] + math.sqrt(1 - rho * rho) * z[1])
    dates = np.datetime64("2020-01-01") + np.arange(n)
    return ReturnHistory(dates, r, dv, "synthetic")


def _leg(spx, right, offset, expiry_i=1):
    snap, truth, _civ = spx
    c = OptionContract(Root.SPXW, truth[expiry_i].expiry, round(snap.underlying_price * (1 + offset) / 25) * 25, right)
    return c, int(locate(snap, [c])[0])


def test_var_es_on_a_known_series_by_hand():
    rng = np.random.default_rng(0)
    pnl = -rng.permutation(np.arange(1.0, 101.0))  # losses 1..100 dollars, shuffled
    # n = 100: 95% -> k = ceil(100 x 0.05) = 5: VaR the 5th worst loss (96), ES the mean of the 5 worst
    assert var_es(pnl, 0.95) == (96.0, pytest.approx((100 + 99 + 98 + 97 + 96) / 5))
    assert var_es(pnl, 0.99) == (100.0, 100.0)  # k = 1: the worst day
    # n = 500: 500 x 0.05 is 25.000000000000004 in floating point: still k = 25, not 26
    big = -np.arange(1.0, 501.0)
    assert var_es(big, 0.95) == (476.0, pytest.approx(np.arange(476, 501).mean()))
    assert var_es(big, 0.99) == (496.0, pytest.approx(np.arange(496, 501).mean()))
    # gains in the tail are negative VaR; a NaN day makes the figures NaN rather than hiding it
    assert var_es(np.arange(1.0, 21.0), 0.95) == (-1.0, -1.0)
    assert all(math.isnan(v) for v in var_es(np.array([1.0, np.nan]), 0.95))
    with pytest.raises(ValueError, match="confidence"):
        var_es(pnl, 95)


def test_single_option_historical_var_is_direct_black76_repricing(spx, market):
    _, _, civ = spx
    put, row = _leg(spx, Right.PUT, -0.03)
    h = _history(250)

    figures = historical_var([(put, -2)], market, h)

    f, k, t, vol, disc = civ.forward[row], put.strike, civ.t[row], civ.iv_mid[row], civ.discount[row]
    base = float(black76.price(forward=f, strike=k, t=t, vol=vol, discount=disc, is_call=False))
    t1 = t - 1 / 365
    shocked = black76.price(forward=f * np.exp(h.spot_returns), strike=k, t=t1,
                            vol=np.maximum(vol + h.vol_changes / 100 * np.sqrt(30 / (t * 365)), 0.005),
                            discount=disc ** (t1 / t), is_call=False)
    pnl = -2 * 100 * (shocked - base)
    losses = np.sort(-pnl)[::-1]
    k95, k99 = math.ceil(250 * 0.05 - 1e-9), math.ceil(250 * 0.01 - 1e-9)  # 13 and 3
    assert (k95, k99) == (13, 3)
    np.testing.assert_allclose(historical_pnl([(put, -2)], market, h), pnl, rtol=1e-10, atol=1e-8)
    assert figures.var95 == pytest.approx(losses[k95 - 1], rel=1e-10)
    assert figures.es95 == pytest.approx(losses[:k95].mean(), rel=1e-10)
    assert figures.var99 == pytest.approx(losses[k99 - 1], rel=1e-10)
    assert figures.es99 == pytest.approx(losses[:k99].mean(), rel=1e-10)
    assert figures.n == 250 and figures.method.startswith("historical")
    assert figures.var95 > 0  # a short put loses on the bad days


def test_parametric_is_the_hand_delta_gamma_vega_computation(spx, market):
    _, _, civ = spx
    call, row = _leg(spx, Right.CALL, 0.01)
    put, prow = _leg(spx, Right.PUT, -0.04, expiry_i=2)
    book = [(call, 3), (put, -5)]
    h = _history(400)

    mean, sd, skew, kurt = parametric_moments(book, market, h)
    figures = parametric_var(book, market, h)

    g = portfolio_greeks(book, market).total
    vega_scaled = sum(q * 100 * civ.vega[r] * math.sqrt(30 / max(civ.t[r] * 365, 1))
                      for q, r in ((3, row), (-5, prow)))
    a, c, b, theta = 100 * g.delta_usd_1pct, 1e4 * g.gamma_usd_1pct, vega_scaled, g.theta_usd_day
    u, v = np.expm1(h.spot_returns), h.vol_changes
    suu, svv, suv = (u * u).mean(), (v * v).mean(), (u * v).mean()  # zero-mean covariance
    m = a * suu + b * suv
    k2 = a * a * suu + b * b * svv + 2 * a * b * suv + 2 * c * c * suu ** 2
    k3 = 8 * c ** 3 * suu ** 3 + 6 * c * m * m
    k4 = 48 * c ** 4 * suu ** 4 + 48 * c * c * suu * m * m
    assert mean == pytest.approx(theta + c * suu, rel=1e-12)
    assert sd == pytest.approx(math.sqrt(k2), rel=1e-12)
    assert skew == pytest.approx(k3 / k2 ** 1.5, rel=1e-9)
    assert kurt == pytest.approx(k4 / k2 ** 2, rel=1e-9)
    for alpha, var, es in ((0.05, figures.var95, figures.es95), (0.01, figures.var99, figures.es99)):
        z = norm.ppf(alpha)
        s, k = skew, kurt
        zq = z + (z * z - 1) * s / 6 + (z ** 3 - 3 * z) * k / 24 - (2 * z ** 3 - 5 * z) * s * s / 36
        assert var == pytest.approx(-(mean + sd * zq), rel=1e-12)
        # ES: the Cornish-Fisher quantile averaged over the tail, numerically
        us = (np.arange(200_000) + 0.5) / 200_000 * alpha
        zs = norm.ppf(us)
        tail = zs + (zs ** 2 - 1) * s / 6 + (zs ** 3 - 3 * zs) * k / 24 - (2 * zs ** 3 - 5 * zs) * s * s / 36
        assert es == pytest.approx(-(mean + sd * tail.mean()), rel=1e-4)
    assert figures.method.startswith("parametric") and figures.n == 400


def test_pure_delta_book_parametric_is_the_normal_var():
    """No gamma, no vega: the Cornish-Fisher terms vanish and VaR is -(theta + sd z)."""
    from spx_core.risk.var import _cornish_fisher

    var, es = _cornish_fisher(10.0, 1000.0, 0.0, 0.0, 0.05)
    assert var == pytest.approx(-(10.0 + 1000.0 * norm.ppf(0.05)))
    assert es == pytest.approx(-(10.0 - 1000.0 * norm.pdf(norm.ppf(0.05)) / 0.05))


def test_parametric_tracks_historical_on_small_normal_moves(spx, market):
    """On a long normal history of small moves delta-gamma-vega and full revaluation agree closely."""
    call, _ = _leg(spx, Right.CALL, 0.0, expiry_i=3)
    put, _ = _leg(spx, Right.PUT, -0.02, expiry_i=3)
    h = _history(20_000, spot_sd=0.004, vol_sd=0.3)
    hist = historical_var([(call, 2), (put, -1)], market, h)
    par = parametric_var([(call, 2), (put, -1)], market, h)
    assert par.var95 == pytest.approx(hist.var95, rel=0.05)
    assert par.var99 == pytest.approx(hist.var99, rel=0.08)
    assert par.es95 == pytest.approx(hist.es95, rel=0.08)


def test_empty_book_has_zero_var(market):
    h = _history(100)
    assert historical_var([], market, h).var95 == 0.0
    assert parametric_var([], market, h).var95 == 0.0
