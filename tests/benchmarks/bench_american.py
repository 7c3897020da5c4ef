"""American pricer (SPY) speed on a seeded 10k-option grid, against QuantLib's engines in the same run.

The grid is a SPY-like chain (spot 580, strikes +-15%, a day to a year, r 4%, q 1.3%). QuantLib prices one
option per Python call (1,000 timed, scaled to 10k); ours prices the whole grid in one vectorized call.
"""

from __future__ import annotations

import numpy as np

from tests.benchmarks.report import Report, best_of

GROUP = "pricing (American)"
N = 10_000


def spy_grid(n: int = N, seed: int = 20240612):
    rng = np.random.default_rng(seed)
    k = np.round(580.0 * np.exp(rng.uniform(-0.15, 0.15, n)))
    t = np.exp(rng.uniform(np.log(1.0 / 365), np.log(1.0), n))
    vol = np.clip(0.15 - 0.3 * np.log(k / 580.0), 0.08, 0.6)
    return 580.0, k, t, 0.04, 0.013, vol, rng.random(n) < 0.5


def _quantlib_seconds(s, k, t, r, q, vol, call, engine_name: str, n: int = 1_000) -> float:
    import QuantLib as ql

    today = ql.Date(12, 6, 2024)
    ql.Settings.instance().evaluationDate = today
    dc = ql.Actual365Fixed()
    spot, sigma = ql.SimpleQuote(s), ql.SimpleQuote(0.2)
    proc = ql.BlackScholesMertonProcess(
        ql.QuoteHandle(spot), ql.YieldTermStructureHandle(ql.FlatForward(today, q, dc)),
        ql.YieldTermStructureHandle(ql.FlatForward(today, r, dc)),
        ql.BlackVolTermStructureHandle(ql.BlackConstantVol(today, ql.NullCalendar(), ql.QuoteHandle(sigma), dc)))
    engine = getattr(ql, engine_name)(proc)
    options = []
    for i in range(n):
        right = ql.Option.Call if call[i] else ql.Option.Put
        opt = ql.VanillaOption(ql.PlainVanillaPayoff(right, float(k[i])),
                               ql.AmericanExercise(today, today + max(1, int(round(t[i] * 365)))))
        opt.setPricingEngine(engine)
        options.append((opt, float(vol[i])))

    def loop() -> None:
        for opt, v in options:
            sigma.setValue(v)
            opt.NPV()

    return best_of(loop, repeat=3) * N / n


def run(report: Report) -> None:
    from spx_core.pricing.american import american_greeks, american_iv, american_price

    s, k, t, r, q, vol, call = spy_grid()
    for method, engine in (("bs2002", "BjerksundStenslandApproximationEngine"),
                           ("baw", "BaroneAdesiWhaleyApproximationEngine")):
        ours = best_of(lambda m=method: american_price(s, k, t, r, q, vol, call, method=m), repeat=3)
        name = f"QuantLib {engine} 10k (per-option loop)"
        try:
            report.add(GROUP, name, _quantlib_seconds(s, k, t, r, q, vol, call, engine) * 1e3, "ms",
                       note="reference, same run; 1,000 timed and scaled")
            ref = name
        except ImportError as exc:
            report.add(GROUP, name, float("nan"), "", note=f"skipped: {exc}")
            ref = None
        report.add(GROUP, f"american_price {method} 10k", ours * 1e3, "ms", reference=ref,
                   note="one vectorized call")
    price = american_price(s, k, t, r, q, vol, call)
    iv_s = best_of(lambda: american_iv(price, s, k, t, r, q, call), repeat=3)
    res = american_iv(price, s, k, t, r, q, call)
    # the vol is defined to the price's precision only where vega is not tiny (a deep ITM put near its
    # exercise boundary is worth K - S over a range of vols)
    vega = american_greeks(s, k, t, r, q, vol, call).vega
    posed = res.ok & (vega > 1e-4 * s * np.sqrt(t))
    report.add(GROUP, "american_iv bs2002 10k", iv_s * 1e3, "ms",
               note=f"{int(res.ok.sum())} solved, the rest refused with a reason; max |vol err| "
                    f"{np.max(np.abs(res.vol - vol)[posed]):.1e} where vega > 1e-4 S sqrt(t) ({int(posed.sum())})")
