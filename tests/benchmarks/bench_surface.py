"""Surface benchmark: forwards + IVs of every quote + the whole SVI surface of a full simulated chain.

Target (issue 3): <= 100 ms for a 20k-quote / 40-expiry surface incl. forwards and IV. The chain is
``SimulatedMarket(SimulatorConfig(seed=1)).snapshot()`` (its size is in the notes). Reference, same run:
``scipy.optimize.minimize`` (default settings) fitting raw SVI to each expiry's same quotes, one expiry
at a time, plus the same forwards + IV step.
"""

from __future__ import annotations

import numpy as np

from tests.benchmarks.report import Report, best_of

GROUP = "surface"


def _scipy_reference(civ, data) -> None:
    from scipy.optimize import minimize

    from spx_core.surface.svi import svi_w

    for e in np.unique(data.group):
        sel = data.group == e
        k, w, s = data.k[sel], data.w_mkt[sel], data.scale[sel]
        if len(k) < 6:
            continue
        x0 = np.array([w.min() * 0.5, 0.1, -0.5, 0.0, 0.1])

        def cost(p, k=k, w=w, s=s):
            a, b, rho, m, sig = p
            b, rho, sig = abs(b), np.tanh(rho), abs(sig) + 1e-6
            return float(np.sum(((svi_w(k, a, b, rho, m, sig) - w) / s) ** 2))

        minimize(cost, x0)


def run(report: Report) -> None:
    from spx_core.marketdata.simulator import SimulatedMarket, SimulatorConfig
    from spx_core.surface import CorrectionConfig, SurfaceConfig, chain_iv, fit_surface
    from spx_core.surface.fitting import fit_data

    snap = SimulatedMarket(SimulatorConfig(seed=1)).snapshot()
    n_exp = len(snap.expiries())
    note = f"{len(snap)} quotes, {n_exp} expiries (simulator seed 1)"
    civ = chain_iv(snap)  # warm up (numba compile / caches)
    surf = fit_surface(civ)
    data = fit_data(civ, SurfaceConfig())

    ref = best_of(lambda: (chain_iv(snap), _scipy_reference(civ, data)), repeat=1)
    report.add(GROUP, "reference: forwards+IV + scipy minimize SVI per expiry", ref * 1e3, "ms", note=note)
    ref_name = "reference: forwards+IV + scipy minimize SVI per expiry"
    t_iv = best_of(lambda: chain_iv(snap), repeat=5)
    report.add(GROUP, "forwards + bid/ask/mid IV + greeks", t_iv * 1e3, "ms", note=note)
    svi_only = SurfaceConfig(correction=CorrectionConfig(enabled=False))
    t_svi = best_of(lambda: fit_surface(chain_iv(snap), config=svi_only), repeat=3)
    report.add(GROUP, "whole surface, SVI only (cold start)", t_svi * 1e3, "ms", target=100.0, reference=ref_name,
               note=note)
    t_warm = best_of(lambda: fit_surface(chain_iv(snap), previous=surf, config=svi_only), repeat=3)
    report.add(GROUP, "whole surface, SVI only (warm start)", t_warm * 1e3, "ms", target=100.0, reference=ref_name,
               note="previous surface passed in")
    t_full = best_of(lambda: fit_surface(chain_iv(snap)), repeat=3)
    report.add(GROUP, "whole surface, SVI + spline correction", t_full * 1e3, "ms", target=100.0, reference=ref_name,
               note="default config (corrections fitted per slice)")
    fitted = [f for f in surf.expiries if f.fitted]
    share = np.nansum([f.in_band_share * f.n_scored for f in fitted]) / max(sum(f.n_scored for f in fitted), 1)
    report.add(GROUP, "simulated chain: quotes in bid/ask IV band", share * 100.0, "%", note="default config")
