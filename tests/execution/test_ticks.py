"""Tick grid of single-leg and complex orders per root (Cboe specs, docs/market_rules.md)."""

from __future__ import annotations

import math

import pytest

from spx_core.domain.contracts import Root
from spx_core.execution.ticks import on_tick, order_tick_size, round_to_tick, tick_size


@pytest.mark.parametrize(("price", "combo", "root", "tick"), [
    (0.05, False, Root.SPX, 0.05), (2.95, False, Root.SPXW, 0.05), (3.00, False, Root.SPXW, 0.10),
    (45.0, False, Root.SPX, 0.10), (7.30, True, Root.SPXW, 0.05), (-7.30, True, Root.SPX, 0.05),
    (-4.0, False, Root.SPXW, 0.10), (2.99, False, Root.SPY, 0.01), (12.34, True, Root.SPY, 0.01),
    (5.5, False, Root.XSP, 0.01),
])
def test_tick_size(price, combo, root, tick):
    assert tick_size(price, combo=combo, root=root) == tick


@pytest.mark.parametrize(("price", "combo", "root", "ok"), [
    (2.15, False, Root.SPXW, True), (2.17, False, Root.SPXW, False), (3.05, False, Root.SPXW, False),
    (3.10, False, Root.SPX, True), (0.1 + 0.2, False, Root.SPXW, True),  # 0.30000000000000004
    (1.45, True, Root.SPXW, True), (1.47, True, Root.SPXW, False), (3.05, True, Root.SPXW, True),
    (-1.45, True, Root.SPXW, True), (1.47, True, Root.SPY, True), (1.475, True, Root.SPY, False),
    (math.nan, False, Root.SPX, False), (math.inf, True, Root.SPX, False),
])
def test_on_tick(price, combo, root, ok):
    assert on_tick(price, combo=combo, root=root) is ok


@pytest.mark.parametrize(("price", "direction", "out"), [
    (2.97, "nearest", 2.95), (2.98, "nearest", 3.00), (2.98, "up", 3.00), (2.96, "down", 2.95),
    (3.01, "up", 3.10), (3.01, "down", 3.00), (3.04, "nearest", 3.00), (3.06, "nearest", 3.10),
    (3.05, "nearest", 3.10), (0.01, "down", 0.0), (0.01, "up", 0.05), (12.30, "up", 12.30),
    (-3.01, "up", -3.00), (-3.01, "down", -3.10), (-2.97, "nearest", -2.95),
])
def test_round_single_leg_spx(price, direction, out):
    got = round_to_tick(price, combo=False, root=Root.SPXW, direction=direction)
    assert got == pytest.approx(out, abs=1e-12)
    assert on_tick(got, combo=False, root=Root.SPXW)


def test_round_combo_and_pennies():
    assert round_to_tick(1.47, combo=True, root=Root.SPXW) == pytest.approx(1.45)
    assert round_to_tick(1.48, combo=True, root=Root.SPXW) == pytest.approx(1.50)
    assert round_to_tick(7.12, combo=True, root=Root.SPXW, direction="up") == pytest.approx(7.15)
    assert round_to_tick(1.474, combo=False, root=Root.SPY) == pytest.approx(1.47)
    assert round_to_tick(1.471, combo=False, root=Root.SPY, direction="up") == pytest.approx(1.48)


def test_round_refuses_bad_input():
    with pytest.raises(ValueError, match="finite"):
        round_to_tick(math.nan, combo=True, root=Root.SPX)
    with pytest.raises(ValueError, match="direction"):
        round_to_tick(1.0, combo=True, root=Root.SPX, direction="sideways")


def test_order_tick_takes_the_coarsest_root():
    assert order_tick_size(1.23, [Root.SPX, Root.SPY], combo=True) == 0.05
    assert order_tick_size(1.23, [Root.SPY], combo=True) == 0.01
