"""BSM (spot, r, q) against QuantLib's AnalyticEuropeanEngine and mpmath derivatives."""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest

from spx_core.pricing import bsm

mp.mp.dps = 50
CASES = [(5000.0, 5000.0, 0.25, 0.2, 0.05, 0.015, True), (5000.0, 4600.0, 1.2, 0.3, 0.04, 0.02, False),
         (5000.0, 5400.0, 30 / 365, 0.14, 0.045, 0.013, True), (5000.0, 5200.0, 0.75, 0.25, 0.03, 0.01, False)]


def _mp_price(s, k, t, v, r, q, call):
    s, k, t, v, r, q = (mp.mpf(a) for a in (s, k, t, v, r, q))
    sd = v * mp.sqrt(t)
    d1 = (mp.log(s / k) + (r - q) * t) / sd + sd / 2
    d2 = d1 - sd
    if call:
        return s * mp.exp(-q * t) * mp.ncdf(d1) - k * mp.exp(-r * t) * mp.ncdf(d2)
    return k * mp.exp(-r * t) * mp.ncdf(-d2) - s * mp.exp(-q * t) * mp.ncdf(-d1)


@pytest.mark.parametrize("case", CASES)
def test_greeks_against_mpmath(backend, case):
    s, k, t, v, r, q, call = case
    g = bsm.greeks(spot=s, strike=k, t=t, vol=v, rate=r, div_yield=q, is_call=call)

    def p(ss=s, tt=t, vv=v, rr=r):
        return _mp_price(ss, k, tt, vv, rr, q, call)

    ref = {"price": p(), "delta": mp.diff(lambda x: p(ss=x), s), "gamma": mp.diff(lambda x: p(ss=x), s, 2),
           "vega": mp.diff(lambda x: p(vv=x), v), "theta": -mp.diff(lambda x: p(tt=x), t),
           "rho": mp.diff(lambda x: p(rr=x), r), "volga": mp.diff(lambda x: p(vv=x), v, 2),
           "vanna": mp.diff(lambda x: mp.diff(lambda y: p(ss=y, vv=x), s), v),
           "charm": -mp.diff(lambda x: mp.diff(lambda y: p(ss=y, tt=x), s), t)}
    for name, value in ref.items():
        np.testing.assert_allclose(float(getattr(g, name)), float(value), rtol=1e-11, atol=1e-13, err_msg=name)


@pytest.mark.parametrize("case", CASES)
def test_against_quantlib_analytic_european(backend, case):
    ql = pytest.importorskip("QuantLib")
    s, k, t, v, r, q, call = case
    today = ql.Date(15, 1, 2024)
    ql.Settings.instance().evaluationDate = today
    dc = ql.Actual365Fixed()
    days = round(t * 365)
    t = days / 365.0
    process = ql.BlackScholesMertonProcess(
        ql.QuoteHandle(ql.SimpleQuote(s)), ql.YieldTermStructureHandle(ql.FlatForward(today, q, dc)),
        ql.YieldTermStructureHandle(ql.FlatForward(today, r, dc)),
        ql.BlackVolTermStructureHandle(ql.BlackConstantVol(today, ql.NullCalendar(), v, dc)))
    option = ql.VanillaOption(ql.PlainVanillaPayoff(ql.Option.Call if call else ql.Option.Put, k),
                              ql.EuropeanExercise(today + days))
    option.setPricingEngine(ql.AnalyticEuropeanEngine(process))
    g = bsm.greeks(spot=s, strike=k, t=t, vol=v, rate=r, div_yield=q, is_call=call)
    np.testing.assert_allclose(float(g.price), option.NPV(), rtol=1e-12)
    np.testing.assert_allclose(float(g.delta), option.delta(), rtol=1e-12)
    np.testing.assert_allclose(float(g.gamma), option.gamma(), rtol=1e-12)
    np.testing.assert_allclose(float(g.vega), option.vega(), rtol=1e-12)
    np.testing.assert_allclose(float(g.theta), option.theta(), rtol=1e-10)
    np.testing.assert_allclose(float(g.rho), option.rho(), rtol=1e-10)
    price = bsm.price(spot=s, strike=k, t=t, vol=v, rate=r, div_yield=q, is_call=call)
    assert float(price) == float(g.price)
    assert math.isfinite(float(g.charm))
