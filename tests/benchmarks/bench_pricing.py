"""Pricing and implied-vol speed on one seeded 1M-option SPX grid, against references measured in the same run.

References: plain numpy with scipy.stats.norm (price + 5 greeks), Newton IV in plain numpy, QuantLib
(BlackCalculator on a 20k subsample, scaled to 1M) and py_vollib_vectorized (optional; skipped with a note).
"""

from __future__ import annotations

import math
import os
import time

import numpy as np

from tests.benchmarks.report import Report, best_of

GROUP = "pricing"
N = 1_000_000


def spx_grid(n: int = N, seed: int = 20240105):
    """Seeded SPX-like grid: F ~ 5000, strikes -40%..+20% log-moneyness, 0DTE..2y, skewed vols."""
    rng = np.random.default_rng(seed)
    t = np.exp(rng.uniform(np.log(0.5 / 365), np.log(2.0), n))
    k = np.round(5000.0 * np.exp(rng.uniform(-0.4, 0.2, n)) / 5.0) * 5.0
    m = np.log(k / 5000.0)
    vol = np.clip(0.16 - 0.35 * m + 0.6 * m * m + rng.normal(0.0, 0.01, n), 0.05, 1.5)
    disc = np.exp(-0.045 * t)
    call = rng.random(n) < 0.5
    return 5000.0, k, t, vol, disc, call


def _numpy_reference_greeks(f, k, t, v, d, c):
    from scipy.stats import norm

    sq = np.sqrt(t)
    s = v * sq
    d1 = np.log(f / k) / s + 0.5 * s
    d2 = d1 - s
    sign = np.where(c, 1.0, -1.0)
    nd1 = norm.cdf(sign * d1)
    price = d * sign * (f * nd1 - k * norm.cdf(sign * d2))
    pdf = norm.pdf(d1)
    delta = sign * nd1
    gamma = pdf / (d * f * s)
    vega = d * f * pdf * sq
    theta = -np.log(d) / t * price - vega * v / (2 * t)
    rho = -t * price
    return price, delta, gamma, vega, theta, rho


def _numpy_newton_iv(p, f, k, t, d, c, iters=20):
    from scipy.stats import norm

    sign = np.where(c, 1.0, -1.0)
    sq = np.sqrt(t)
    vol = np.full_like(p, 0.2)
    for _ in range(iters):
        s = vol * sq
        d1 = np.log(f / k) / s + 0.5 * s
        d2 = d1 - s
        model = d * sign * (f * norm.cdf(sign * d1) - k * norm.cdf(sign * d2))
        vega = d * f * norm.pdf(d1) * sq
        vol = np.clip(vol - (model - p) / np.maximum(vega, 1e-300), 1e-4, 5.0)
    return vol


def _quantlib_greeks_per_option(f, k, t, v, d, c) -> float | None:
    try:
        import QuantLib as ql
    except ImportError:
        return None
    m = 20_000
    t0 = time.perf_counter()
    for i in range(m):
        calc = ql.BlackCalculator(ql.PlainVanillaPayoff(ql.Option.Call if c[i] else ql.Option.Put, float(k[i])),
                                  f, float(v[i] * math.sqrt(t[i])), float(d[i]))
        spot = f * float(d[i])
        calc.value(), calc.delta(spot), calc.gamma(spot), calc.vega(float(t[i])), calc.theta(spot, float(t[i]))
        calc.rho(float(t[i]))
    return (time.perf_counter() - t0) / m


def run(report: Report) -> None:
    t_import = time.perf_counter()
    from spx_core.pricing import black76, iv
    from spx_core.pricing._compile import KERNELS

    f, k, t, v, d, c = spx_grid()
    small = {"forward": f, "strike": k[:10], "t": t[:10], "vol": v[:10], "discount": d[:10], "is_call": c[:10]}
    t0 = time.perf_counter()
    black76.greeks(**small)
    iv.implied_vol(price=black76.price(**small), forward=f, strike=k[:10], t=t[:10], discount=d[:10],
                   is_call=c[:10])
    report.add(GROUP, "first call (compile or load cache)", time.perf_counter() - t0, "s",
               note=f"numba={'on' if KERNELS.get() is not None else 'off'}; import+grid {t0 - t_import:.2f}s")

    ref_s = best_of(lambda: _numpy_reference_greeks(f, k, t, v, d, c), repeat=3)
    report.add(GROUP, "numpy+scipy.stats price+5 greeks 1M", ref_s * 1e3, "ms", note="reference, same run")
    out = np.empty((9, N))
    ours = best_of(lambda: black76.greeks(forward=f, strike=k, t=t, vol=v, discount=d, is_call=c, out=out), repeat=5)
    report.add(GROUP, "black76.greeks 1M (price+8 greeks)", ours * 1e3, "ms", target=25.0,
               reference="numpy+scipy.stats price+5 greeks 1M", note="1 core, preallocated out")
    price_s = best_of(lambda: black76.price(forward=f, strike=k, t=t, vol=v, discount=d, is_call=c, out=out[0]))
    report.add(GROUP, "black76.price 1M", price_s * 1e3, "ms")
    ql_per = _quantlib_greeks_per_option(f, k, t, v, d, c)
    if ql_per is not None:
        report.add(GROUP, "QuantLib BlackCalculator price+5 greeks 1M", ql_per * N, "s",
                   note="measured on 20k, scaled to 1M")
        report.get(GROUP, "QuantLib BlackCalculator price+5 greeks 1M").ratio = None
        report.add(GROUP, "black76.greeks 1M vs QuantLib", ours, "s",
                   reference="QuantLib BlackCalculator price+5 greeks 1M")

    p = black76.price(forward=f, strike=k, t=t, vol=v, discount=d, is_call=c)
    newton_s = best_of(lambda: _numpy_newton_iv(p, f, k, t, d, c), repeat=2)
    report.add(GROUP, "numpy Newton IV 1M", newton_s, "s", note="reference: 20 vectorized Newton steps")
    res = iv.implied_vol(price=p, forward=f, strike=k, t=t, discount=d, is_call=c)
    iv_s = best_of(lambda: iv.implied_vol(price=p, forward=f, strike=k, t=t, discount=d, is_call=c), repeat=3)
    report.add(GROUP, "iv.implied_vol 1M", iv_s, "s", target=0.15, reference="numpy Newton IV 1M")
    _numpy_path_iv(report, iv, p, f, k, t, d, c, newton_s)
    _accuracy(report, black76, res, p, f, k, t, v, d, c)
    _vollib(report, p, f, k, t, v, d, c, ours, iv_s)


def _numpy_path_iv(report, iv, p, f, k, t, d, c, newton_s) -> None:
    """The fallback without numba (SPX_NO_NUMBA=1: vectorized numpy), on 200k options scaled to 1M."""
    m = 200_000
    previous = os.environ.get("SPX_NO_NUMBA")
    os.environ["SPX_NO_NUMBA"] = "1"
    try:
        sec = best_of(lambda: iv.implied_vol(price=p[:m], forward=f, strike=k[:m], t=t[:m], discount=d[:m],
                                             is_call=c[:m]), repeat=2) * (N / m)
    finally:
        if previous is None:
            del os.environ["SPX_NO_NUMBA"]
        else:
            os.environ["SPX_NO_NUMBA"] = previous
    report.add(GROUP, "iv.implied_vol 1M, numpy path (no numba)", sec, "s", reference="numpy Newton IV 1M",
               note="measured on 200k, scaled to 1M")


def _accuracy(report, black76, res, p, f, k, t, v, d, c) -> None:
    g = black76.greeks(forward=f, strike=k, t=t, vol=v, discount=d, is_call=c)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        cond = np.spacing(p) / g.vega
    posed = (cond < 1e-10) & (p > 1e-290)
    err = np.abs(res.vol - v)
    strict = posed & (cond < 1e-13)
    report.add(GROUP, "IV max |vol err| (1 ulp of price < 1e-13 vol)", float(np.nanmax(err[strict])), "vol",
               target=1e-12, note=f"{strict.sum()} options")
    scale = cond + np.spacing(v)  # vol moved by one ulp of price, plus one ulp of vol itself
    report.add(GROUP, "IV max |vol err| / (ulp(price)/vega + ulp(vol)), well posed",
               float(np.nanmax(err[posed] / scale[posed])), "ulps",
               note=f"{posed.sum()} options with 1 ulp of price < 1e-10 vol")
    report.add(GROUP, "IV failures on well-posed inputs", float((posed & (res.reason != 0)).sum()), "count",
               target=0.0)


def _vollib(report, p, f, k, t, v, d, c, ours, iv_s) -> None:
    try:
        import py_vollib_vectorized  # noqa: F401
        from py_vollib_vectorized import (
            get_all_greeks,
            vectorized_implied_volatility_black,
        )
    except ImportError as exc:
        report.add(GROUP, "py_vollib_vectorized", float("nan"), "", note=f"skipped: {exc}")
        return
    flag = np.where(c, "c", "p")
    r = -np.log(d) / t
    g_s = best_of(lambda: get_all_greeks(flag, f, k, t, r, v, model="black", return_as="array"), repeat=1)
    report.add(GROUP, "py_vollib_vectorized greeks 1M", g_s, "s", note="finite-difference greeks: speed only")
    report.add(GROUP, "black76.greeks vs py_vollib_vectorized", ours, "s", reference="py_vollib_vectorized greeks 1M")
    i_s = best_of(lambda: vectorized_implied_volatility_black(p, f, k, r, t, flag, return_as="numpy"), repeat=1)
    report.add(GROUP, "py_vollib_vectorized IV 1M", i_s, "s")
    report.add(GROUP, "iv.implied_vol vs py_vollib_vectorized", iv_s, "s", reference="py_vollib_vectorized IV 1M")
