"""Max profit / max loss / breakevens against brute force on a fine price grid."""

import math
from datetime import date

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spx_core.domain.contracts import OptionContract, Right, Root
from spx_core.strategies import Leg, Structure
from spx_core.strategies import builders as b
from spx_core.strategies.expiry_profile import expiry_profile

EXP = date(2024, 1, 5)


def _brute(structure: Structure, credit: float, hi: float, per_point: int):
    """P&L on a 1/per_point grid from 0 to ``hi`` (hits every integer strike exactly) and far beyond."""
    grid = np.arange(0, round(hi * per_point) + 1) / per_point
    pnl = structure.expiry_value(grid) + credit
    far = structure.expiry_value(np.array([hi, 10 * hi])) + credit
    rising, falling = far[1] > far[0] + 1e-6, far[1] < far[0] - 1e-6
    return grid, pnl, rising, falling


def _check(structure: Structure, credit: float, hi: float, per_point: int = 100) -> None:
    profile = expiry_profile(structure, credit)
    grid, pnl, rising, falling = _brute(structure, credit, hi, per_point)
    if rising:
        assert profile.max_profit == math.inf
    else:
        assert profile.max_profit == pytest.approx(pnl.max(), abs=1e-6)
    if falling:
        assert profile.max_loss == math.inf
    else:
        assert profile.max_loss == pytest.approx(-pnl.min(), abs=1e-6)
    # Breakevens: one per sign change on the grid, inside that grid cell; zero P&L there exactly.
    cells = np.flatnonzero(np.sign(pnl[1:]) * np.sign(pnl[:-1]) < 0)
    inside = [x for x in profile.breakevens if x <= hi]
    assert len(inside) == len(cells)
    for x, i in zip(inside, cells, strict=True):
        assert grid[i] <= x <= grid[i + 1]
        assert structure.expiry_value(np.array([x]))[0] + credit == pytest.approx(0.0, abs=1e-6)
    for x in profile.breakevens:
        if x > hi:  # a crossing beyond the grid: exact zero there, and no later crossing
            assert structure.expiry_value(np.array([x]))[0] + credit == pytest.approx(0.0, abs=1e-6)


BUILT = [
    b.put_credit_vertical("SPXW", EXP, 4700, 25), b.call_credit_vertical("SPXW", EXP, 4800, 25),
    b.put_debit_vertical("SPXW", EXP, 4700, 25), b.call_debit_vertical("SPXW", EXP, 4700, 50),
    b.iron_condor("SPXW", EXP, 4600, 4800, 25, 50), b.iron_butterfly("SPXW", EXP, 4700, 25),
    b.butterfly("SPXW", EXP, 4700, 25, "C"), b.butterfly("SPXW", EXP, 4700, 25, "P"),
    b.broken_wing_butterfly("SPXW", EXP, 4700, 25, 25, "P"), b.broken_wing_butterfly("SPXW", EXP, 4700, 25, 10, "C"),
    b.straddle("SPXW", EXP, 4700), b.straddle("SPXW", EXP, 4700, short=True),
    b.strangle("SPXW", EXP, 4600, 4800), b.strangle("SPXW", EXP, 4600, 4800, short=True),
    b.spx_spy_pair(EXP, 4700), b.spx_spy_pair(EXP, 4705),
    b.single(OptionContract(Root.SPXW, EXP, 4700, Right.PUT), -1),
    b.single(OptionContract(Root.SPXW, EXP, 4700, Right.CALL), -1),
]


@pytest.mark.parametrize("structure", BUILT, ids=lambda s: s.name)
@pytest.mark.parametrize("credit", [-1234.37, -150.11, 0.73, 480.29, 2610.07])
def test_every_builder_matches_brute_force(structure, credit) -> None:
    _check(structure, credit, hi=6000.0, per_point=20)


def test_put_credit_vertical_by_hand() -> None:
    p = expiry_profile(b.put_credit_vertical("SPXW", EXP, 4700, 25), 500.0)
    assert (p.max_profit, p.max_loss, p.breakevens) == (500.0, 2000.0, (4695.0,))


def test_naked_put_loss_is_bounded_by_the_index_reaching_zero() -> None:
    p = expiry_profile(b.single(OptionContract(Root.SPXW, EXP, 4700, Right.PUT), -1), 1000.0)
    assert p.max_loss == 4700 * 100 - 1000.0
    assert p.breakevens == (4690.0,)


def test_nan_credit_keeps_unbounded_sides_and_no_breakevens() -> None:
    p = expiry_profile(b.strangle("SPXW", EXP, 4600, 4800, short=True), math.nan)
    assert p.max_loss == math.inf and math.isnan(p.max_profit) and p.breakevens == ()


@st.composite
def _random_structure(draw):
    n = draw(st.integers(1, 5))
    keys = draw(st.lists(st.tuples(st.integers(50, 300), st.booleans()), min_size=n, max_size=n, unique=True))
    ratios = draw(st.lists(st.integers(-3, 3).filter(bool), min_size=n, max_size=n))
    legs = tuple(Leg(OptionContract(Root.SPXW, EXP, k, Right.CALL if c else Right.PUT), r)
                 for (k, c), r in zip(keys, ratios, strict=True))
    # A credit off the 1-dollar lattice the grid values sit on, so no flat piece is exactly zero.
    credit = draw(st.integers(-40_000, 40_000)) + 0.3731
    return Structure(legs), credit


@given(_random_structure())
@settings(max_examples=60, deadline=None)
def test_random_ratio_structures_match_brute_force(case) -> None:
    structure, credit = case
    _check(structure, credit, hi=2000.0)
