"""Black-76 prices and greeks against mpmath (50 digits) and QuantLib's BlackCalculator."""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest

from spx_core.pricing import black76

mp.mp.dps = 50


def _mp_price(f, k, t, v, d, call):
    f, k, t, v, d = (mp.mpf(a) for a in (f, k, t, v, d))
    s = v * mp.sqrt(t)
    d1 = mp.log(f / k) / s + s / 2
    d2 = d1 - s
    return d * (f * mp.ncdf(d1) - k * mp.ncdf(d2)) if call else d * (k * mp.ncdf(-d2) - f * mp.ncdf(-d1))


def _tail_cases(n=400, seed=11):
    rng = np.random.default_rng(seed)
    rows = []
    while len(rows) < n:
        f = 5000.0
        k = float(f * math.exp(rng.uniform(-3.0, 3.0)))
        t = float(10 ** rng.uniform(-4, 1))
        v = float(10 ** rng.uniform(-2.5, 0.5))
        h = abs(math.log(f / k)) / (v * math.sqrt(t))
        call = k > f  # out of the money
        if 2.0 < h <= 25.0:
            rows.append((f, k, t, v, 0.97, call))
    return rows


def test_deep_otm_prices_match_mpmath_to_1e12_relative(backend):
    rows = _tail_cases()
    cols = list(zip(*rows, strict=True))
    got = black76.price(forward=np.array(cols[0]), strike=np.array(cols[1]), t=np.array(cols[2]),
                        vol=np.array(cols[3]), discount=np.array(cols[4]), is_call=np.array(cols[5]))
    ref = np.array([float(_mp_price(*r)) for r in rows])
    assert ref.min() < 1e-100  # the set really reaches far into the tail
    rel = np.abs(got / ref - 1.0)
    assert rel.max() <= 1e-12, rows[int(rel.argmax())]


@pytest.mark.parametrize(("k", "t", "v", "call"), [
    (7000.0, 0.02, 0.1, True),  # price ~1e-125: QuantLib is far off here
    (4700.0, 1 / 365, 0.15, False),
    (5001.0, 1e-6, 0.2, True),
    (4999.0, 1e-6, 0.2, False),
])
def test_single_tail_points(backend, k, t, v, call):
    got = float(black76.price(forward=5000.0, strike=k, t=t, vol=v, discount=1.0, is_call=call))
    ref = float(_mp_price(5000.0, k, t, v, 1.0, call))
    assert got > 0.0
    assert abs(got / ref - 1.0) <= 1e-12


def _grid():
    rng = np.random.default_rng(3)
    n = 300
    k = 5000.0 * np.exp(rng.uniform(-0.4, 0.3, n))
    t = rng.uniform(2 / 365, 2.0, n)
    v = rng.uniform(0.08, 0.6, n)
    d = np.exp(-0.045 * t)
    c = rng.random(n) < 0.5
    return 5000.0, k, t, v, d, c


def test_normal_region_against_quantlib_black_calculator(backend):
    ql = pytest.importorskip("QuantLib")
    f, k, t, v, d, c = _grid()
    g = black76.greeks(forward=f, strike=k, t=t, vol=v, discount=d, is_call=c)
    normal = g.price > 1e-3  # QuantLib loses all relative accuracy in the far tails; compare where it is sound
    assert normal.sum() > 250
    for i in np.flatnonzero(normal):
        payoff = ql.PlainVanillaPayoff(ql.Option.Call if c[i] else ql.Option.Put, float(k[i]))
        calc = ql.BlackCalculator(payoff, f, float(v[i] * math.sqrt(t[i])), float(d[i]))
        spot = f * float(d[i])  # Black-76 "S": the discounted forward
        # QuantLib subtracts F*N(d1) - K*N(d2): its own error is ~eps*F in absolute terms, hence atol.
        np.testing.assert_allclose(g.price[i], calc.value(), rtol=1e-12, atol=2e-12)
        np.testing.assert_allclose(g.delta[i], calc.delta(spot), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(g.gamma[i], calc.gamma(spot), rtol=1e-12, atol=1e-18)
        np.testing.assert_allclose(g.vega[i], calc.vega(float(t[i])), rtol=1e-12, atol=1e-12)
        # QuantLib's theta(spot, t) with spot = F is the fixed-forward theta documented on Greeks.
        np.testing.assert_allclose(g.theta[i], calc.theta(f, float(t[i])), rtol=1e-10, atol=1e-9)


def _mp_greeks(f, k, t, v, d, call):
    """Greeks by 50-digit differentiation of the mpmath price, with the documented conventions."""
    f, k, t, v, d = (mp.mpf(a) for a in (f, k, t, v, d))
    r = -mp.log(d) / t

    def price(ff=f, tt=t, vv=v, rr=r):
        return _mp_price(ff, k, tt, vv, mp.exp(-rr * tt), call)

    def delta(tt=t, vv=v):  # dV/dS with S = D*F, F fixed
        return mp.diff(lambda ff: price(ff=ff, tt=tt, vv=vv), f) / mp.exp(-r * tt)

    return {
        "delta": delta(),
        "gamma": mp.diff(lambda ff: price(ff=ff), f, 2) / d ** 2,
        "vega": mp.diff(lambda vv: price(vv=vv), v),
        "theta": -mp.diff(lambda tt: price(tt=tt), t),
        "rho": mp.diff(lambda rr: price(rr=rr), r),
        "vanna": mp.diff(lambda vv: delta(vv=vv), v),
        "volga": mp.diff(lambda vv: price(vv=vv), v, 2),
        "charm": -mp.diff(lambda tt: delta(tt=tt), t),
    }


@pytest.mark.parametrize(("k", "t", "v", "call"), [
    (5000.0, 0.25, 0.2, True), (4500.0, 1.5, 0.35, False), (5600.0, 30 / 365, 0.12, True),
    (3000.0, 0.5, 0.4, False), (5050.0, 2 / 365, 0.15, True),
])
def test_greeks_against_mpmath_derivatives(backend, k, t, v, call):
    d = math.exp(-0.04 * t)
    g = black76.greeks(forward=5000.0, strike=k, t=t, vol=v, discount=d, is_call=call)
    ref = _mp_greeks(5000.0, k, t, v, d, call)
    for name, value in ref.items():
        np.testing.assert_allclose(float(getattr(g, name)), float(value), rtol=1e-11, atol=1e-14, err_msg=name)
    assert float(g.vega_per_point()) == pytest.approx(float(g.vega) / 100.0, rel=1e-15)
    assert float(g.theta_per_day()) == pytest.approx(float(g.theta) / 365.0, rel=1e-15)


def test_broadcasting_out_and_shapes(backend):
    k = np.linspace(4000.0, 6000.0, 5)[:, None]
    t = np.array([0.1, 0.5, 1.0])[None, :]
    p = black76.price(forward=5000.0, strike=k, t=t, vol=0.2, discount=0.99, is_call=True)
    assert p.shape == (5, 3)
    out = np.empty((5, 3))
    assert black76.price(forward=5000.0, strike=k, t=t, vol=0.2, discount=0.99, is_call=True, out=out) is out
    np.testing.assert_array_equal(out, p)
    g = black76.greeks(forward=5000.0, strike=k, t=t, vol=0.2, discount=0.99, is_call=True)
    assert g.delta.shape == (5, 3)
    np.testing.assert_array_equal(g.price, p)
    with pytest.raises(ValueError, match="C-contiguous float64"):
        black76.price(forward=5000.0, strike=k, t=t, vol=0.2, discount=0.99, is_call=True, out=np.empty(3))


def test_put_call_parity_and_degenerate_inputs(backend):
    f, k, t, v, d, _ = _grid()
    c = black76.price(forward=f, strike=k, t=t, vol=v, discount=d, is_call=True)
    p = black76.price(forward=f, strike=k, t=t, vol=v, discount=d, is_call=False)
    np.testing.assert_allclose(c - p, d * (f - k), rtol=0, atol=1e-9)
    edge = black76.price(forward=5000.0, strike=np.array([4000.0, 6000.0, 4000.0, 4000.0, 4000.0]),
                         t=np.array([0.0, 0.0, -1.0, 1.0, 1.0]), vol=np.array([0.2, 0.2, 0.2, np.nan, 0.2]),
                         discount=np.array([0.9, 0.9, 0.9, 0.9, 0.0]), is_call=True)
    np.testing.assert_allclose(edge[:2], [900.0, 0.0])
    assert np.isnan(edge[2:]).all()
    g = black76.greeks(forward=5000.0, strike=4000.0, t=0.0, vol=0.2, discount=1.0, is_call=False)
    assert float(g.delta) == 0.0 and float(g.gamma) == 0.0 and float(g.price) == 0.0


def test_import_is_cheap_no_numba_no_scipy_stats():
    import subprocess
    import sys

    code = ("import sys, spx_core.pricing as p; "
            "print(any(m == 'numba' or m.startswith('numba.') for m in sys.modules), 'scipy.stats' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]
