"""A slice too thin to fit (e.g. 0DTE minutes before the close) has no risk-neutral density, but the broker's
lognormal figures at its market ATM IV are still given, and the missing ones say why."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from scipy.special import ndtr

from spx_core.strategies import builders
from spx_core.strategies.market import Market, MarketChain
from spx_core.strategies.probability import lognormal_density, structure_odds
from spx_core.surface.chain_iv import chain_iv
from spx_core.surface.surface import VolSurface, fit_surface
from tests.chains import make_chain


def test_an_unfitted_slice_gives_the_lognormal_pop_and_no_surface_pop():
    snap, _ = make_chain(n_expiries=4)
    civ = chain_iv(snap)
    surface = fit_surface(civ)
    fit = next(f for f in surface.expiries if f.fitted)
    # the same slice as the fit reports one it could not fit: the flat fallback at the market ATM IV
    thin = replace(fit, status="too few usable quotes (2)")
    unfitted = VolSurface(tuple(thin if f is fit else f for f in surface.expiries), surface.snapshot_checksum,
                          surface.time_ns, surface.underlying_price)
    assert lognormal_density(unfitted, thin).ok
    short = round(0.97 * fit.forward / 5) * 5
    vertical = builders.put_credit_vertical(fit.root, fit.expiry, short, 25)
    odds = structure_odds(vertical, Market({"SPX": MarketChain(snap, civ, unfitted)}), cost=-500.0)
    sd = fit.atm_iv * math.sqrt(fit.t)
    want = ndtr((math.log(fit.forward / (short - 5.0)) - 0.5 * sd * sd) / sd)
    assert odds.pop_lognormal == pytest.approx(want, abs=1e-9)
    assert np.isnan(odds.pop) and np.isnan(odds.ev) and "not fitted" in odds.reason
