"""The fast paths against the plain ones: divided-difference erfcx against mpmath, and the vectorized
(SIMD) loops used for large arrays against the scalar loops used for small ones."""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest

from spx_core.pricing import black76, iv
from spx_core.pricing._special import erfcx_pair

SMALL = 100  # below _arrays.SIMD_MIN: these calls take the scalar loops


def test_erfcx_pair_difference_keeps_full_relative_accuracy():
    # erfcx(w1) - erfcx(w1 + dw) for dw down to 1e-12: a plain difference would lose up to 12 digits.
    mp.mp.dps = 40
    rng = np.random.default_rng(5)
    checked = 0
    for _ in range(600):
        w1 = float(10 ** rng.uniform(-0.3, 3.0))
        dw = float(10 ** rng.uniform(-12.0, 0.5))
        value, diff = erfcx_pair(w1, dw)
        if math.isnan(diff):
            assert not (w1 >= 4.0 or (w1 > 0.46875 and w1 + dw <= 4.0))  # only outside its domain
            continue
        e1 = mp.erfc(mp.mpf(w1)) * mp.exp(mp.mpf(w1) ** 2)
        w2 = mp.mpf(w1) + mp.mpf(dw)
        e2 = mp.erfc(w2) * mp.exp(w2 ** 2)
        assert abs(value / float(e1) - 1.0) <= 2e-15
        assert abs(diff / float(e1 - e2) - 1.0) <= 2e-14, (w1, dw)
        checked += 1
    assert checked > 400


def _mixed_grid(n=6000, seed=9):
    rng = np.random.default_rng(seed)
    k = 5000.0 * np.exp(rng.uniform(-2.0, 1.0, n))
    t = np.exp(rng.uniform(np.log(0.1 / 365), np.log(10.0), n))
    v = rng.uniform(0.02, 2.0, n)
    d = np.exp(-0.05 * t)
    c = rng.random(n) < 0.5
    k[:6] = 5000.0  # at the money
    t[6:9], v[9:12] = 0.0, 0.0  # expired, zero vol
    v[12], k[13], d[14] = np.nan, -1.0, 0.0  # invalid
    return k, t, v, d, c


def _in_chunks(fn, arrays, size=SMALL):
    n = arrays[0].shape[0]
    parts = [fn(*(a[i:i + size] for a in arrays)) for i in range(0, n, size)]
    return parts


def test_vectorized_price_and_greeks_match_the_scalar_loops(monkeypatch):
    pytest.importorskip("numba")
    monkeypatch.setenv("SPX_NO_NUMBA", "0")  # the vectorized loops are compiled code
    k, t, v, d, c = _mixed_grid()
    whole = black76.greeks(forward=5000.0, strike=k, t=t, vol=v, discount=d, is_call=c)
    parts = _in_chunks(lambda kk, tt, vv, dd, cc: black76.greeks(forward=5000.0, strike=kk, t=tt, vol=vv,
                                                                 discount=dd, is_call=cc), (k, t, v, d, c))
    for name in ("price", "delta", "gamma", "vega", "rho", "vanna", "volga", "charm", "theta"):
        ref = np.concatenate([getattr(p, name) for p in parts])
        got = getattr(whole, name)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(ref), err_msg=name)
        # theta = r*V - vega*vol/(2t) can cancel to ~0: compare it on the scale of its two terms.
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.abs(ref) if name != "theta" else np.abs(whole.vega * v / t) + np.abs(whole.price)
        ok = ~np.isnan(ref) & (t > 0.0)  # expired rows: exact zeros and intrinsic on both paths
        assert (np.abs(got - ref)[ok] <= 4e-15 * scale[ok] + 1e-300).all(), name
    price = black76.price(forward=5000.0, strike=k, t=t, vol=v, discount=d, is_call=c)
    np.testing.assert_array_equal(price, whole.price)


def test_vectorized_implied_vol_matches_the_scalar_loop(monkeypatch):
    pytest.importorskip("numba")
    monkeypatch.setenv("SPX_NO_NUMBA", "0")  # the vectorized loops are compiled code
    k, t, v, d, c = _mixed_grid(seed=10)
    p = black76.price(forward=5000.0, strike=k, t=np.where(t > 0, t, 0.5), vol=np.where(v > 0, v, 0.2),
                      discount=np.where(d > 0, d, 0.9), is_call=c)
    p[20:25] = [np.nan, -1.0, 0.0, 1e9, 0.5]
    whole = iv.implied_vol(price=p, forward=5000.0, strike=k, t=t, discount=d, is_call=c)
    parts = _in_chunks(lambda pp, kk, tt, dd, cc: iv.implied_vol(price=pp, forward=5000.0, strike=kk, t=tt,
                                                                discount=dd, is_call=cc), (p, k, t, d, c))
    reason = np.concatenate([r.reason for r in parts])
    vol = np.concatenate([r.vol for r in parts])
    np.testing.assert_array_equal(whole.reason, reason)
    assert whole.ok.sum() > 0.6 * k.size
    np.testing.assert_allclose(whole.vol[whole.ok], vol[whole.ok], rtol=2e-15, atol=0)


def test_vectorized_initial_guess_matches_the_scalar_one(monkeypatch):
    # The SIMD guess recompiles _implied_vol's formulas on branch-free exp/log/erfcx/inverse cdf; it must give the
    # scalar guess (same branch, same bracket, same value to a few ulps) or hand the option to the scalar code.
    pytest.importorskip("numba")
    monkeypatch.setenv("SPX_NO_NUMBA", "0")
    from spx_core.pricing import _black, _constants, _implied_vol
    from spx_core.pricing._compile import KERNELS

    rng = np.random.default_rng(11)
    n = 4000
    x = -(10.0 ** rng.uniform(-9.0, 2.5, n))  # at the money to |ln(F/K)| ~ 300
    x[:4] = [0.0, -1e-300, -0.22, -0.23]  # no time value left of b_c / around _central_point's interval switch
    s_true = 10.0 ** rng.uniform(-2.5, 1.0, n)
    beta = np.array([_black.normalised_black_otm(xi, si) for xi, si in zip(x, s_true, strict=True)])
    b_max = np.exp(0.5 * x)
    live = (beta >= _constants.DBL_MIN) & (beta < b_max)
    reason = np.where(live, _constants.OK, _constants.NO_TIME_VALUE).astype(np.uint8)
    s, s_left, s_right, vol = (np.empty(n) for _ in range(4))
    branch = np.empty(n, dtype=np.int8)
    todo = np.empty(n, dtype=np.bool_)
    KERNELS.get().iv_guess_simd(beta, x, b_max, s, s_left, s_right, branch, vol, reason, todo)
    assert np.isnan(vol).all() and (branch[~live] == -1).all() and not todo[~live].any()
    # Below the central point b_c it is vectorized (up to |x| ~ 15, where erfcx_pair stops applying); above, scalar.
    b_c = np.array([_implied_vol._central_point(math.sqrt(-2.0 * xi), bm)[0] for xi, bm in zip(x, b_max, strict=True)])
    below = live & (beta < b_c)
    assert todo[live & ~below].all() and not todo[below & (x >= -10.0)].any()
    done = live & ~todo
    assert (branch[done] == 0).sum() > 300 and (branch[done] == 1).sum() > 300
    for i in np.flatnonzero(done):
        ref = _implied_vol._initial_guess(float(beta[i]), float(x[i]), float(b_max[i]))
        assert branch[i] == ref[3], i
        np.testing.assert_allclose([s[i], s_left[i], s_right[i]], ref[:3], rtol=1e-13, atol=0, err_msg=str(i))
