"""Heston and Merton pricing speed against QuantLib in the same run; Heston calibration time (2,000 quotes)."""

from __future__ import annotations

import numpy as np
import QuantLib as ql

from spx_core.pricing import heston, heston_calibration, merton
from tests.benchmarks.report import Report, best_of

GROUP = "heston"
F0 = 2900.0
P = heston.HestonParams(0.02, 2.0, 0.05, 0.8, -0.8)  # SPX-like, Feller violated


def chain(n_exp: int = 20, n_k: int = 100) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    days = np.geomspace(1, 730, n_exp).round()
    t = np.repeat(days / 365.0, n_k)
    k = F0 * np.exp(np.tile(np.linspace(-2.5, 1.5, n_k), n_exp) * 0.2 * np.sqrt(t))
    return t, k, k > F0


def ql_prices(t, k, call, n: int) -> tuple[float, np.ndarray]:
    """QuantLib AnalyticHestonEngine (default Gauss-Laguerre 144) on every (len/n)-th option; seconds/option."""
    import time
    today = ql.Date(3, 1, 2022)
    ql.Settings.instance().evaluationDate = today
    dc = ql.Actual365Fixed()
    flat = ql.YieldTermStructureHandle(ql.FlatForward(today, 0.0, dc))
    model = ql.HestonModel(ql.HestonProcess(flat, flat, ql.QuoteHandle(ql.SimpleQuote(F0)), P.v0, P.kappa, P.theta,
                                            P.sigma, P.rho))
    engine = ql.AnalyticHestonEngine(model)
    idx = np.arange(0, t.size, max(1, t.size // n))
    opts = []
    for i in idx:
        o = ql.VanillaOption(ql.PlainVanillaPayoff(ql.Option.Call if call[i] else ql.Option.Put, float(k[i])),
                             ql.EuropeanExercise(today + int(round(t[i] * 365))))
        o.setPricingEngine(engine)
        opts.append(o)
    t0 = time.perf_counter()
    out = np.array([o.NPV() for o in opts])
    return (time.perf_counter() - t0) / len(opts), idx, out


def run(report: Report) -> None:
    t, k, call = chain()
    kw = dict(forward=F0, strike=k, t=t, discount=1.0, is_call=call, params=P)
    mine = heston.price(**kw)  # warm-up (numba kernels of black76 compile on first use)
    ql_s, idx, ref = ql_prices(t, k, call, 400)
    report.add(GROUP, "QuantLib AnalyticHeston", ql_s * 1e6, "us/option",
               note=f"{idx.size}-option subsample of the same chain, Gauss-Laguerre 144")
    per = best_of(lambda: heston.price(**kw), repeat=5) / t.size
    report.add(GROUP, "heston.price 20x100 chain", per * 1e6, "us/option", target=2.0,
               reference="QuantLib AnalyticHeston",
               note=f"max |diff| vs QL default engine {np.max(np.abs(mine[idx] - ref)):.1e} pts (QL Laguerre-144 error at 1-7d; vs adaptive QL <1e-8 in tests)")
    t2, k2, c2 = chain(16, 125)
    market = heston.price(forward=F0, strike=k2, t=t2, discount=1.0, is_call=c2, params=P)
    start = heston.HestonParams(0.04, 1.0, 0.04, 0.5, -0.5)
    heston_calibration.calibrate(forward=F0, strike=k2, t=t2, discount=1.0, is_call=c2, market_price=market,
                                 initial=start)
    fit_s = best_of(lambda: heston_calibration.calibrate(forward=F0, strike=k2, t=t2, discount=1.0, is_call=c2,
                                                         market_price=market, initial=start), repeat=3)
    report.add(GROUP, "calibrate 2,000 quotes", fit_s, "s", target=0.5,
               note="16 expiries x 125 strikes, analytic Jacobian, from a different start")
    run_merton(report, t, k, call)


def run_merton(report: Report, t, k, call) -> None:
    import time
    jumps = dict(jump_intensity=0.5, jump_mean=-0.1, jump_vol=0.15)
    today = ql.Date(3, 1, 2022)
    ql.Settings.instance().evaluationDate = today
    dc = ql.Actual365Fixed()
    flat = ql.YieldTermStructureHandle(ql.FlatForward(today, 0.0, dc))
    model = ql.BatesModel(ql.BatesProcess(flat, flat, ql.QuoteHandle(ql.SimpleQuote(F0)), 0.0225, 50.0, 0.0225,
                                          1e-5, 0.0, 0.5, -0.1, 0.15))
    engine = ql.BatesEngine(model)
    idx = np.arange(0, t.size, 10)
    opts = []
    for i in idx:
        o = ql.VanillaOption(ql.PlainVanillaPayoff(ql.Option.Call if call[i] else ql.Option.Put, float(k[i])),
                             ql.EuropeanExercise(today + int(round(t[i] * 365))))
        o.setPricingEngine(engine)
        opts.append(o)
    t0 = time.perf_counter()
    [o.NPV() for o in opts]
    report.add(GROUP, "QuantLib Bates (Merton)", (time.perf_counter() - t0) / len(opts) * 1e6, "us/option",
               note=f"{idx.size}-option subsample; vol-of-vol 1e-5, Gauss-Laguerre 144")
    kw = dict(forward=F0, strike=k, t=t, vol=0.15, discount=1.0, is_call=call, **jumps)
    merton.price(**kw)
    per = best_of(lambda: merton.price(**kw), repeat=5) / t.size
    report.add(GROUP, "merton.price 20x100 chain", per * 1e6, "us/option", reference="QuantLib Bates (Merton)",
               note="series to 1e-15 of D(F+K)")
