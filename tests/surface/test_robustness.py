"""Fits never warn and never crash: simulator snapshots of every kind, warm-start sequences, and
degenerate expiries (two quotes, no solvable IV, seconds to expiry).

Every fit runs under ``warnings.simplefilter("error")``: a RuntimeWarning (overflow, invalid value,
division by zero) anywhere in the math is a failure here, as it would be in any other test.
"""

from __future__ import annotations

import warnings
from datetime import datetime

import numpy as np
import pytest

from spx_core.domain import ET, ChainSnapshot
from spx_core.marketdata.simulator import SimulatedMarket, SimulatorConfig
from spx_core.surface import ArbFlag, chain_iv, fit_surface
from spx_core.surface.svi import g_from_derivatives
from tests.chains import NOW, make_chain

# (seed, start ET, market_hours): session open, mid-day, a Friday's 0DTE with a minute, ten seconds and
# one second left, demo mode at night.
SNAPSHOTS = [
    (1, datetime(2025, 3, 3, 9, 30), True),
    (2, datetime(2025, 3, 4, 12, 15), True),
    (3, datetime(2025, 3, 7, 15, 59, 0), True),
    (4, datetime(2025, 3, 7, 15, 59, 50), True),
    (5, datetime(2025, 3, 7, 15, 59, 59), True),
    (6, datetime(2025, 3, 7, 23, 0), False),
]


def _fit_strict(source, previous=None):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return fit_surface(source, previous=previous)


def _check_surface(surf, snap) -> None:
    fitted = [f for f in surf.expiries if f.fitted]
    assert len(fitted) >= len(surf.expiries) - 2  # at most the same-day expiry and a dead one unfitted
    scored = np.array([f.n_scored for f in fitted])
    share = np.array([f.in_band_share for f in fitted])
    assert np.sum(scored * share) / scored.sum() >= 0.95
    for f in fitted:
        assert f.fit_arb.flags == ArbFlag.NONE, (f.expiry, f.fit_arb)
        assert np.isfinite(f.atm_iv) and 0.02 < f.atm_iv < 2.0, (f.expiry, f.atm_iv)
        assert np.isfinite(f.rmse_volpts)
    t, atm = surf.atm_term_structure()
    assert np.all(np.isfinite(atm)) and np.all(np.diff(t) > 0)


@pytest.mark.parametrize(("seed", "start", "market_hours"), SNAPSHOTS)
def test_simulator_snapshots_fit_without_warnings(seed, start, market_hours):
    market = SimulatedMarket(SimulatorConfig(seed=seed, start=start.replace(tzinfo=ET), market_hours=market_hours))
    snap = market.snapshot()
    surf = _fit_strict(chain_iv(snap))
    _check_surface(surf, snap)


def test_warm_started_sequence_fits_without_warnings():
    # The GUI refits each new snapshot from the previous surface; this sequence used to overflow
    # (exp of a runaway log-parameter) in the warm-started Levenberg-Marquardt.
    market = SimulatedMarket(SimulatorConfig(seed=1, start=datetime(2025, 3, 3, 9, 30, tzinfo=ET)))
    previous = None
    for _ in range(8):
        market.advance(240.0)
        snap = market.snapshot()
        surf = _fit_strict(chain_iv(snap), previous)
        _check_surface(surf, snap)
        previous = surf


def _rebuild(snap: ChainSnapshot, cols: dict, now: datetime = NOW) -> ChainSnapshot:
    cols = {k: np.array(v) for k, v in cols.items()}
    cols.pop("flags", None)
    return ChainSnapshot.from_columns(underlying="SPX", time=now, underlying_price=snap.underlying_price, **cols)


def test_degenerate_expiries_are_reported_not_fatal():
    snap, truth = make_chain(n_expiries=5, noise=0.2, half_spread_vol=0.002, seed=51)
    cols = {k: np.array(v) for k, v in snap.columns.items()}
    exp = cols["expiry"]
    two = np.flatnonzero(exp == np.datetime64(truth[1].expiry))
    keep = np.ones(len(exp), dtype=bool)
    keep[two[2:]] = False  # expiry 1: only two quotes left
    dead = exp == np.datetime64(truth[3].expiry)
    cols["bid"][dead] = 0.0  # expiry 3: no bid anywhere, asks below intrinsic: no IV solves
    cols["ask"][dead] = 0.01
    cols = {k: v[keep] for k, v in cols.items()}
    surf = _fit_strict(chain_iv(_rebuild(snap, cols)))
    by = {f.expiry: f for f in surf.expiries}
    assert not by[truth[1].expiry].fitted and "too few" in by[truth[1].expiry].status
    assert not by[truth[3].expiry].fitted
    for x in (truth[0], truth[2], truth[4]):
        assert by[x.expiry].fitted and by[x.expiry].in_band_share > 0.9
    k = np.linspace(-0.1, 0.05, 9)
    assert np.all(np.isfinite(surf.iv(k=k, t=np.full_like(k, truth[3].t))))  # interpolated across the gap


def test_all_nan_chain_gives_an_empty_but_valid_surface():
    snap, _ = make_chain(n_expiries=3, seed=52)
    cols = {k: np.array(v) for k, v in snap.columns.items()}
    cols["bid"][:] = np.nan
    cols["ask"][:] = np.nan
    surf = _fit_strict(chain_iv(_rebuild(snap, cols)))
    assert len(surf.expiries) == 3 and not any(f.fitted for f in surf.expiries)
    assert np.all(np.isnan(surf.iv(k=np.zeros(3), t=np.array([0.1, 0.2, 0.3]))))


def test_served_slices_are_butterfly_free_between_check_points():
    market = SimulatedMarket(SimulatorConfig(seed=9, start=datetime(2025, 6, 3, 11, 0, tzinfo=ET)))
    surf = _fit_strict(chain_iv(market.snapshot()))
    for f in surf.expiries:
        if not f.fitted:
            continue
        sd = float(np.sqrt(f.w(np.zeros(1))[0]))
        k = np.linspace(-12.0 * sd, 8.0 * sd, 6001)
        w, w1, w2 = f.derivatives(k)
        assert np.min(w) > 0
        assert np.min(g_from_derivatives(k, w, w1, w2)) >= -1e-9, f.expiry
