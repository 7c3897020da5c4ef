"""Payoff-grid and risk-neutral-density benchmark (issue 8).

Target: a 400-point payoff grid of a 4-leg structure re-priced off the surface in < 1 ms. The chain is
``SimulatedMarket(SimulatorConfig(seed=1)).snapshot()`` as in the surface benchmark; the structure is a
25-wide iron condor with shorts 2% either side of the forward, in the expiry nearest 30 days.
Reference for the grid, same run: the same values from a Python loop over (grid point, leg) with scalar
Black-76 calls. Densities: every fitted slice of the surface (closed form + layer atoms); reference:
Breeden-Litzenberger by second differences of fitted Black prices on the same grid (what the closed form
replaces; less accurate, shown for scale).
"""

from __future__ import annotations

import numpy as np

from tests.benchmarks.report import Report, best_of

GROUP = "payoff"
REF_GRID = "reference: Python loop over grid x legs, scalar Black-76"
REF_DENSITY = "reference: second differences of fitted prices, per expiry"


def _loop_reference(model, prices: np.ndarray) -> np.ndarray:
    from spx_core.pricing import black76

    out = np.zeros(len(prices))
    for i, s in enumerate(prices):
        for j in range(len(model.strike)):
            fwd = s * model.scale[j] * model.carry[j]
            k = np.log(model.strike[j] / (model.spot * model.scale[j] * model.carry[j]))
            vol = float(model.smiles[j].iv(np.array([k]))[0])
            out[i] += model.weight[j] * float(black76.price(forward=fwd, strike=model.strike[j], t=model.t0[j],
                                                            vol=vol, discount=model.discount[j],
                                                            is_call=bool(model.is_call[j])))
    return out


def _fd_density(fit, price: np.ndarray) -> np.ndarray:
    from spx_core.pricing import black76

    vol = fit.iv(np.log(price / fit.forward))
    call = black76.price(forward=fit.forward, strike=price, t=fit.t, vol=vol, discount=1.0, is_call=True)
    return np.gradient(np.gradient(call, price), price)


def run(report: Report) -> None:
    from spx_core.marketdata.simulator import SimulatedMarket, SimulatorConfig
    from spx_core.strategies import builders
    from spx_core.strategies.market import Market
    from spx_core.strategies.payoff import PayoffModel, Sticky, payoff_grid
    from spx_core.strategies.probability import structure_odds
    from spx_core.surface import chain_iv, fit_surface
    from spx_core.surface.density import expiry_density

    snap = SimulatedMarket(SimulatorConfig(seed=1)).snapshot()
    civ = chain_iv(snap)
    surf = fit_surface(civ)
    market = Market.of(civ, surfaces={snap.underlying: surf})
    fits = [f for f in surf.expiries if f.fitted]
    fit = min(fits, key=lambda f: abs(f.t - 30 / 365))
    step = 5.0
    put_short = np.floor(0.98 * fit.forward / step) * step
    call_short = np.ceil(1.02 * fit.forward / step) * step
    condor = builders.iron_condor(fit.root, fit.expiry, put_short, call_short, 25, 25)
    prices = np.linspace(0.85 * fit.forward, 1.15 * fit.forward, 400)
    note = f"400 prices x 4 legs, {condor.name}; chain {len(snap)} quotes, {len(fits)} fitted expiries"
    model = PayoffModel.build(condor, market)
    model.values(prices)  # warm up (numba compile)

    ref = best_of(lambda: _loop_reference(model, prices), repeat=1)
    report.add(GROUP, REF_GRID, ref * 1e3, "ms", note="sticky-strike")
    for sticky in Sticky:
        t = best_of(lambda s=sticky: model.values(prices, sticky=s, iv_shift=0.01), repeat=20)
        report.add(GROUP, f"payoff grid T+0, {sticky.value} (model built)", t * 1e3, "ms", target=1.0,
                   reference=REF_GRID, note=note)
    t = best_of(lambda: payoff_grid(condor, market, prices), repeat=10)
    report.add(GROUP, "payoff_grid incl. leg look-up and net mid", t * 1e3, "ms", reference=REF_GRID,
               note="expiry + T+0 curves from scratch (what a new selection costs)")

    grids = [expiry_density(surf, f).price for f in fits]
    density_ref = best_of(lambda: [_fd_density(f, g) for f, g in zip(fits, grids, strict=True)], repeat=3)
    report.add(GROUP, REF_DENSITY, density_ref / len(fits) * 1e3, "ms/expiry", note="on the same 801-point grids")
    t = best_of(lambda: [expiry_density(surf, f) for f in fits], repeat=3)
    report.add(GROUP, "RN density per expiry (closed form, 801 points)", t / len(fits) * 1e3, "ms/expiry",
               reference=REF_DENSITY, note=f"mean over {len(fits)} fitted expiries ({sum(1 for f in fits if f.floor_layers)} with "
                    "calendar layers: their atoms are located too)")
    worst = 0.0
    for f in fits:
        d = expiry_density(surf, f)
        strikes = f.forward * np.exp(np.linspace(-3, 2, 11) * f.atm_iv * np.sqrt(f.t))
        fitted = np.array([float(np.squeeze(_call(f, k))) for k in strikes])
        by_density = np.array([d.expected(lambda s, k=k: np.maximum(s - k, 0.0), kinks=[k]) for k in strikes])
        worst = max(worst, float(np.max(np.abs(by_density - fitted))))
    report.add(GROUP, "RN density: worst call repricing error", worst, "points", target=1e-6,
               note="undiscounted calls at -3..+2 ATM SD, every fitted expiry")
    t = best_of(lambda: structure_odds(condor, market), repeat=5)
    report.add(GROUP, "structure_odds (density + lognormal figures)", t * 1e3, "ms", note=condor.name)


def _call(fit, strike: float) -> np.ndarray:
    from spx_core.pricing import black76

    vol = fit.iv(np.log(np.array([strike]) / fit.forward))
    return black76.price(forward=fit.forward, strike=strike, t=fit.t, vol=vol, discount=1.0, is_call=True)
