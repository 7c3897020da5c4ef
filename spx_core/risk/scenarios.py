"""Stress scenarios by full revaluation of every leg (never a delta-gamma approximation).

A scenario moves SPX by ``spot_pct`` (SPY by ``spot_pct x beta``), adds ``vol_pts`` vol points to every
leg's implied vol scaled by term the way IBKR's Risk Navigator does, ``vol_pts x sqrt(30 / days)`` with
``days`` the leg's calendar days to expiry (floored at one day so a 0DTE leg's shock stays finite: at most
sqrt(30) = 5.5x), and lets ``days`` calendar days pass (t shrinks, rates and the forward's carry held).
A leg's value is Black-76 on its forward (SPX, XSP) or the American model on its spot (SPY rows ChainIV
solved as American), at the leg's mid IV (or the surface's when the mid did not solve): the same model
and vol its greeks come from. The P&L of a scenario is the sum over legs of quantity x multiplier x
(value shocked - value unshocked), both from the model, so a zero scenario is exactly 0. A leg with no
vol at all (no mid IV and no fitted surface; ``portfolio_greeks`` notes name it) makes every P&L NaN rather
than silently dropping it.

``stress`` evaluates a whole :class:`ScenarioGrid` as one (scenario x leg) numpy array.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from spx_core.pricing import american, black76
from spx_core.risk.greeks import Book, LegInputs, gather_legs
from spx_core.strategies.market import Market

__all__ = ["MIN_SCALE_DAYS", "Scenario", "ScenarioGrid", "named_scenarios", "spot_vol_matrix", "stress",
           "term_scaled_vol_shock"]

MIN_SCALE_DAYS = 1.0  # days-to-expiry floor of the sqrt(30/days) vol-shock scaling
VOL_FLOOR = 0.005  # a shocked vol never goes below 0.5% (a large negative shock would otherwise cross zero)


@dataclass(frozen=True, slots=True)
class Scenario:
    """One market move: spot_pct as a fraction (-0.10 = -10%), vol_pts in vol points (+5 = +0.05 of vol
    at 30 days, term-scaled), days of calendar time passing."""

    name: str
    spot_pct: float = 0.0
    vol_pts: float = 0.0
    days: float = 0.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.spot_pct) and self.spot_pct > -1.0):
            raise ValueError(f"scenario {self.name!r}: spot_pct must be a fraction above -1 (-0.10 = -10%), "
                             f"got {self.spot_pct!r}")
        if not math.isfinite(self.vol_pts) or not (math.isfinite(self.days) and self.days >= 0):
            raise ValueError(f"scenario {self.name!r}: vol_pts must be finite and days >= 0, "
                             f"got {self.vol_pts!r} and {self.days!r}")


@dataclass(frozen=True, slots=True, eq=False)
class ScenarioGrid:
    """Scenarios as aligned arrays; ``shape`` is (n spot, n vol) for a matrix so P&L reshapes to it."""

    names: tuple[str, ...]
    spot_pct: np.ndarray
    vol_pts: np.ndarray
    days: np.ndarray
    shape: tuple[int, ...] | None = None

    @classmethod
    def of(cls, scenarios: Sequence[Scenario]) -> ScenarioGrid:
        return cls(tuple(s.name for s in scenarios), np.array([s.spot_pct for s in scenarios], dtype=np.float64),
                   np.array([s.vol_pts for s in scenarios], dtype=np.float64),
                   np.array([s.days for s in scenarios], dtype=np.float64))

    @classmethod
    def matrix(cls, spot_pcts: Sequence[float], vol_pts: Sequence[float], *, days: float = 0.0) -> ScenarioGrid:
        """Every (spot, vol) pair, spot-major: ``stress(...).reshape(grid.shape)`` is [spot, vol]."""
        s, v = np.meshgrid(np.asarray(spot_pcts, np.float64), np.asarray(vol_pts, np.float64), indexing="ij")
        for sp, vp in zip(s.ravel(), v.ravel(), strict=True):
            Scenario("matrix", sp, vp, days)  # validates every cell with the same one-line errors
        names = tuple(f"spot {sp:+.1%}, vol {vp:+g} pts" for sp, vp in zip(s.ravel(), v.ravel(), strict=True))
        return cls(names, s.ravel(), v.ravel(), np.full(s.size, float(days)), s.shape)

    def __len__(self) -> int:
        return len(self.names)


def spot_vol_matrix(*, days: float = 0.0) -> ScenarioGrid:
    """The plans' heat map: spot -15%..+10% in 2.5% steps x vol -10..+30 points in 5-point steps."""
    return ScenarioGrid.matrix(np.round(np.arange(-0.15, 0.10 + 1e-9, 0.025), 4), np.arange(-10.0, 30.0 + 1e-9, 5.0),
                               days=days)


def named_scenarios(vix: float) -> ScenarioGrid:
    """The plans' named stresses; ``vix`` is today's level (VIX, or the 30-day ATM IV in points) so that
    "VIX to 50" shocks 30-day vol by 50 - vix points."""
    if not (math.isfinite(vix) and vix > 0):
        raise ValueError(f"vix must be today's positive VIX level in points, got {vix!r}")
    return ScenarioGrid.of([Scenario("flash crash -10%", spot_pct=-0.10), Scenario("VIX to 50", vol_pts=50.0 - vix),
                            Scenario("gap down -5%", spot_pct=-0.05), Scenario("one day of decay", days=1.0)])


def term_scaled_vol_shock(vol_pts: np.ndarray | float, days_to_expiry: np.ndarray | float) -> np.ndarray:
    """Vol shock in decimal vol: vol_pts/100 x sqrt(30 / max(days, MIN_SCALE_DAYS))."""
    days = np.maximum(np.asarray(days_to_expiry, dtype=np.float64), MIN_SCALE_DAYS)
    return np.asarray(vol_pts, dtype=np.float64) / 100.0 * np.sqrt(30.0 / days)


def stress(legs: Book | LegInputs, market: Market | None, scenarios: ScenarioGrid | Sequence[Scenario], *,
           spy_beta: float = 1.0) -> np.ndarray:
    """P&L in dollars per scenario (float64, len(scenarios)); pass ``LegInputs`` to skip the look-up."""
    grid = scenarios if isinstance(scenarios, ScenarioGrid) else ScenarioGrid.of(scenarios)
    if isinstance(legs, LegInputs):
        x = legs
    else:
        if market is None:
            raise ValueError("stress needs the market the book's legs are looked up in")
        x = gather_legs(legs, market, spy_beta=spy_beta)
    if not len(x.contracts):
        return np.zeros(len(grid))
    base = _values(x, np.zeros(1), np.zeros(1), np.zeros(1))
    shocked = _values(x, grid.spot_pct, grid.vol_pts, grid.days)
    return (shocked - base) @ (x.quantity * x.multiplier)


def _values(x: LegInputs, spot_pct: np.ndarray, vol_pts: np.ndarray, days: np.ndarray) -> np.ndarray:
    """(scenario, leg) model values in the leg's points per contract."""
    move = 1.0 + spot_pct[:, None] * x.beta[None, :]
    t0 = x.t[None, :]
    t = np.maximum(t0 - days[:, None] / black76.DAYS_PER_YEAR, 0.0)
    vol = np.maximum(x.vol[None, :] + term_scaled_vol_shock(vol_pts[:, None], t0 * black76.DAYS_PER_YEAR), VOL_FLOOR)
    out = np.empty(move.shape)
    eu = ~x.american
    if eu.any():
        with np.errstate(divide="ignore", invalid="ignore"):
            disc = np.where(t0[:, eu] > 0, x.discount[None, eu] ** (t[:, eu] / t0[:, eu]), 1.0)
        out[:, eu] = black76.price(forward=x.forward[None, eu] * move[:, eu], strike=x.strike[None, eu],
                                   t=t[:, eu], vol=vol[:, eu], discount=disc, is_call=x.is_call[None, eu])
    if x.american.any():
        from spx_core.surface.chain_iv import american_inputs

        am = x.american
        rate, q = american_inputs(x.spot[am], x.forward[am], x.t[am], x.discount[am])
        shape = (move.shape[0], int(am.sum()))
        out[:, am] = np.reshape(american.american_price(
            np.broadcast_to(x.spot[am] * move[:, am], shape), np.broadcast_to(x.strike[am], shape), t[:, am],
            np.broadcast_to(rate, shape), np.broadcast_to(q, shape), vol[:, am],
            np.broadcast_to(x.is_call[am], shape)), shape)
    return out
