"""A SPX chain with a SPY chain on one of its expiries (the valuation tests' market)."""

import pytest

from spx_core.strategies import Market
from spx_core.surface.chain_iv import chain_iv
from tests.chains import make_chain
from tests.strategies.test_valuation import _spy_snapshot


@pytest.fixture(scope="module")
def spx():
    snap, truth = make_chain(n_expiries=4, seed=3)
    return snap, truth, chain_iv(snap)


@pytest.fixture(scope="module")
def market(spx):
    snap, truth, civ = spx
    return Market.of(civ, chain_iv(_spy_snapshot(snap, truth)))
