"""Implied vol: round trips on a dense grid incl. extremes, reason codes, named exceptions, hypothesis."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spx_core.pricing import black76, iv


def _grid():
    k = 5000.0 * np.exp(np.linspace(-3.0, 2.0, 61))
    t = np.array([1e-4, 1 / 365, 7 / 365, 0.1, 0.5, 1.0, 3.0, 10.0])
    v = np.array([0.01, 0.05, 0.1, 0.2, 0.4, 0.8, 1.5, 3.0])
    kk, tt, vv, cc = np.meshgrid(k, t, v, [True, False], indexing="ij")
    return kk.ravel(), tt.ravel(), vv.ravel(), cc.ravel()


def _check_round_trip(k, t, v, c, d=0.98):
    g = black76.greeks(forward=5000.0, strike=k, t=t, vol=v, discount=d, is_call=c)
    res = iv.implied_vol(price=g.price, forward=5000.0, strike=k, t=t, discount=d, is_call=c)
    with np.errstate(divide="ignore"):
        cond = np.spacing(g.price) / g.vega  # vol moved by one ulp of price
    posed = (cond < 1e-10) & (g.price / d / np.sqrt(5000.0 * k) > 1e-300)
    assert posed.sum() > 0.5 * posed.size
    assert (res.reason[posed] == iv.IVReason.OK).all(), np.flatnonzero(posed & (res.reason != 0))[:5]
    err = np.abs(res.vol - v)
    # 1e-12 flat where the price pins vol far below that; elsewhere a few ulps of price over vega (the
    # float64 price itself only determines vol to ~cond/2).
    strict = posed & (cond < 1e-13)
    assert err[strict].max() <= 1e-12
    assert (err[posed] <= 1e-12 + 4.0 * cond[posed]).all()
    bad = res.reason != iv.IVReason.OK
    assert np.isnan(res.vol[bad]).all()


def test_dense_grid_round_trip(backend):
    _check_round_trip(*_grid())


@settings(max_examples=300, deadline=None)
@given(log_m=st.floats(-4.0, 3.0), t=st.floats(1e-5, 30.0), v=st.floats(0.005, 4.0), call=st.booleans())
def test_hypothesis_round_trip(log_m, t, v, call):
    k = np.array([5000.0 * np.exp(log_m)])
    g = black76.greeks(forward=5000.0, strike=k, t=t, vol=v, discount=1.0, is_call=call)
    cond = float(np.spacing(g.price[0]) / g.vega[0]) if g.vega[0] > 0 else np.inf
    if not (cond < 1e-10 and g.price[0] > 1e-290):
        return  # not well posed: covered by the reason-code tests
    vol = iv.implied_vol_scalar(price=float(g.price[0]), forward=5000.0, strike=float(k[0]), t=t, discount=1.0,
                                is_call=call)
    assert abs(vol - v) <= 1e-12 + 4.0 * cond


def test_reason_codes(backend):
    f, k, d = 5000.0, np.full(7, 4000.0), 0.99
    price = np.array([900.0, 5000.0, 990.0, 10.0, -1.0, np.nan, 1000.0])
    t = np.array([1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0])
    res = iv.implied_vol(price=price, forward=f, strike=k, t=t, discount=d, is_call=True)
    assert res.reason.tolist() == [iv.IVReason.BELOW_INTRINSIC, iv.IVReason.ABOVE_MAX, iv.IVReason.NO_TIME_VALUE,
                                   iv.IVReason.EXPIRED, iv.IVReason.BAD_INPUT, iv.IVReason.BAD_INPUT, iv.IVReason.OK]
    assert np.isnan(res.vol[:6]).all() and res.vol[6] > 0
    assert res.reason.dtype == np.uint8 and res.ok.tolist() == [False] * 6 + [True]


@pytest.mark.parametrize(("price", "t", "error"), [
    (900.0, 1.0, iv.PriceBelowIntrinsicError),
    (5000.0, 1.0, iv.PriceAboveMaximumError),
    (990.0, 1.0, iv.NoTimeValueError),
    (1000.0, 0.0, iv.OptionExpiredError),
])
def test_scalar_raises_named_errors(price, t, error):
    with pytest.raises(error, match="forward=5000.0"):
        iv.implied_vol_scalar(price=price, forward=5000.0, strike=4000.0, t=t, discount=0.99, is_call=True)
    assert issubclass(error, iv.ImpliedVolError)


def test_deep_otm_tiny_prices_solve(backend):
    k = np.array([9000.0, 2000.0, 5600.0])
    t = np.array([0.05, 0.05, 1 / 365])
    v = np.array([0.12, 0.3, 0.1])
    c = np.array([True, False, True])
    p = black76.price(forward=5000.0, strike=k, t=t, vol=v, discount=1.0, is_call=c)
    assert (p < 1e-20).all() and (p > 0).all()
    res = iv.implied_vol(price=p, forward=5000.0, strike=k, t=t, discount=1.0, is_call=c)
    np.testing.assert_allclose(res.vol, v, rtol=0, atol=1e-13)


def test_numpy_path_matches_compiled_path(monkeypatch):
    # The numpy fallback is the same algorithm on whole arrays (masks per branch), so on an SPX-like grid
    # reaching every branch (deep OTM wings, 0DTE, long dated, ITM) it agrees with the compiled path.
    pytest.importorskip("numba")
    rng = np.random.default_rng(7)
    n = 20_000
    k = 5000.0 * np.exp(rng.uniform(-1.5, 0.8, n))
    t = np.exp(rng.uniform(np.log(0.2 / 365), np.log(5.0), n))
    v = rng.uniform(0.05, 1.2, n)
    c = rng.random(n) < 0.5
    p = black76.price(forward=5000.0, strike=k, t=t, vol=v, discount=0.97, is_call=c)
    p[:50] = np.array([np.nan, -1.0, 0.0, 1e9, 0.5] * 10)  # reason codes too
    results = {}
    for flag in ("0", "1"):
        monkeypatch.setenv("SPX_NO_NUMBA", flag)
        results[flag] = iv.implied_vol(price=p, forward=5000.0, strike=k, t=t, discount=0.97, is_call=c)
    compiled, numpy = results["0"], results["1"]
    np.testing.assert_array_equal(numpy.reason, compiled.reason)
    ok = compiled.ok
    assert ok.sum() > 0.7 * n  # the rest: no time value left in float64 (deep ITM or far wings), or bad inputs
    np.testing.assert_allclose(numpy.vol[ok], compiled.vol[ok], rtol=1e-13, atol=0)
    assert np.isnan(numpy.vol[~ok]).all()
