"""The risk-neutral density of S_T per expiry, from the fitted arbitrage-free smile (Breeden-Litzenberger).

Breeden-Litzenberger: ``q(K) = (1/D) d^2C/dK^2``. We do not difference prices: the served slice gives
``w(k), w'(k), w''(k)`` (total variance at ``k = ln(K/F)``) in closed form, and differentiating Black's
formula through ``w(k)`` twice gives (Gatheral & Jacquier 2014, eq. 2.1)::

    p(k) = g(k) * phi(d2) / sqrt(w)         density of k = ln(S_T/F)   (q(S) = p(k) / S)
    P(S_T > K) = N(d2) - phi(d2) * w' / (2 sqrt(w))                       (first derivative, exact)

with ``d2 = -k/sqrt(w) - sqrt(w)/2`` and ``g`` the Gatheral-Jacquier function (:func:`svi.g_from_derivatives`).
The density is non-negative exactly where the smile is butterfly-free (``g >= 0``), which the fit enforces.
Both formulas are exact to rounding: no step size, no noise amplification in the wings, and the density is
as smooth as the smile (finite differences of prices would lose ~8 digits at a 1-point strike step).

The smile is used as the surface serves it everywhere (SVI wings beyond the quoted range, the spline
correction inside it). Where the calendar repair (:mod:`layers`) switches from one layer to another the
served ``w`` has a convex kink: ``w''`` has a positive Dirac part, i.e. the distribution has a small atom
there. The atoms are located (Newton on the two layers' difference) and kept in :attr:`RiskNeutralDensity.atoms`,
so expectations still reprice the fitted calls. The grid spans ``k`` until each tail holds < 1e-13.

Expectations (:meth:`RiskNeutralDensity.expected`) use Gauss-Legendre on the cells of the stored grid,
split at the payoff's kinks (strikes): a payoff that is smooth on every cell is integrated to ~1e-10.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date

import numpy as np
from scipy.special import ndtr

from spx_core.domain.contracts import Root
from spx_core.surface.layers import SliceBank
from spx_core.surface.surface import ExpiryFit, VolSurface
from spx_core.surface.svi import g_from_derivatives

__all__ = ["RiskNeutralDensity", "expiry_density", "surface_densities"]

_INV_SQRT_2PI = 0.3989422804014327
#: Tail mass left outside the grid on each side (probability).
TAIL = 1e-13
#: Gauss-Legendre nodes per cell for expectations.
_GL_X, _GL_W = np.polynomial.legendre.leggauss(6)
#: Cell cuts around each SVI layer's vertex m, in units of its sigma.
_SPIKE_STEPS = np.array([-300.0, -100.0, -30.0, -10.0, -3.0, -1.0, 0.0, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0])


def _phi(x: np.ndarray) -> np.ndarray:
    return _INV_SQRT_2PI * np.exp(-0.5 * x * x)


@dataclass(frozen=True, slots=True)
class _Smile:
    """Closed-form density and distribution of ``k = ln(S_T/F)`` from one served slice."""

    fit: ExpiryFit

    def breaks(self) -> np.ndarray:
        """k where the served smile is not smooth: the correction splines' knots (the third derivative
        of w jumps there, the second at the ends where the spline turns linear), so no quadrature cell
        straddles one."""
        corrections = [self.fit.correction] + [c for _, c in self.fit.floor_layers]
        knots = [np.asarray(c.knots) for c in corrections if c is not None]
        # SVI's curvature is concentrated within ~sigma of m: a fit with a tiny sigma (a hockey stick, seen on
        # short expiries) has a density spike there far narrower than a grid cell, so cells are cut at m and
        # at geometric multiples of sigma around it, where the spike's shape scales.
        for params in [self.fit.svi] + [p for p, _ in self.fit.floor_layers]:
            knots.append(params.m + params.sigma * _SPIKE_STEPS)
        return np.unique(np.concatenate(knots))

    def terms(self, k: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(p(k), P(S_T > F e^k), P(S_T < F e^k))``: density per unit k, survival, distribution."""
        k = np.asarray(k, dtype=np.float64)
        w, w1, w2 = self.fit.derivatives(k)
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            s = np.sqrt(w)
            d2 = -k / s - 0.5 * s
            phi = _phi(d2)
            skew = phi * w1 / (2.0 * s)
            p = g_from_derivatives(k, w, w1, w2) * phi / s
        # ndtr(d2) and ndtr(-d2) separately: each tail keeps its relative precision.
        return p, ndtr(d2) - skew, ndtr(-d2) + skew


@dataclass(frozen=True, slots=True)
class RiskNeutralDensity:
    """Risk-neutral distribution of the underlying at one expiry.

    Attributes:
        root, expiry: the slice.
        t: years to expiry; forward: F (index points); discount: D (factor).
        price: grid of S_T (index points, ascending; dense near the money, sparse in the far wings).
        pdf: density per index point on ``price`` (1/points).
        cdf: P(S_T <= price) on ``price`` (probability, exact: from the smile's first derivative).
        atoms: (price, mass) of the point masses at calendar-layer switches (usually none).
        reason: "" when the density is defined, else why not (arrays are then empty, answers NaN).
    """

    root: Root
    expiry: date
    t: float
    forward: float
    discount: float
    price: np.ndarray
    pdf: np.ndarray
    cdf: np.ndarray
    atoms: tuple[tuple[float, float], ...] = ()
    reason: str = ""
    _smile: _Smile | None = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.reason == ""

    # --- distribution -----------------------------------------------------------------------------
    def prob_below(self, x: np.ndarray | float) -> np.ndarray:
        """P(S_T < x), vectorized over ``x`` (index points); exact, atoms included (from the smile's slope)."""
        return self._tail(x, below=True)

    def prob_above(self, x: np.ndarray | float) -> np.ndarray:
        """P(S_T > x), vectorized over ``x`` (index points)."""
        return self._tail(x, below=False)

    def _tail(self, x: np.ndarray | float, *, below: bool) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self._smile is None:
            return np.full(x.shape, np.nan)
        k = np.log(np.where(x > 0, x, self.forward) / self.forward)  # x <= 0 is answered below, not logged
        p = self._smile.terms(k)[2 if below else 1]
        return np.where(x <= 0, 0.0 if below else 1.0, np.clip(p, 0.0, 1.0))

    # --- expectations -----------------------------------------------------------------------------
    def expectation(self, values_on_grid: np.ndarray) -> float:
        """E[f(S_T)] from ``f`` sampled on :attr:`price` (trapezoid in ln S_T, plus atoms interpolated).

        Second-order accurate; use :meth:`expected` with the payoff's kinks for 1e-8 accuracy.
        """
        if self._smile is None:
            return float("nan")
        v = np.asarray(values_on_grid, dtype=np.float64)
        k = np.log(self.price / self.forward)
        dens = self.pdf * self.price
        total = float(np.trapezoid(v * dens, k))
        for a, m in self.atoms:
            total += m * float(np.interp(a, self.price, v))
        return total

    def quadrature(self, kinks: Sequence[float] | np.ndarray = ()) -> tuple[np.ndarray, np.ndarray]:
        """Nodes (S_T) and probability weights for E[f(S_T)] = sum(weights * f(nodes)).

        Gauss-Legendre on the grid cells, split at ``kinks`` (index points) so a payoff with kinks there
        is smooth on every cell; the atoms are appended as nodes of their own.
        """
        if self._smile is None:
            return np.empty(0), np.empty(0)
        k_grid = np.log(self.price / self.forward)
        kinks = np.asarray(kinks, dtype=np.float64)
        kinks = kinks[(kinks > self.price[0]) & (kinks < self.price[-1])]
        atoms = np.array([a for a, _ in self.atoms]).reshape(-1)
        inner = np.r_[np.log(kinks / self.forward), self._smile.breaks(), np.log(atoms / self.forward)]
        edges = np.union1d(k_grid, inner[(inner > k_grid[0]) & (inner < k_grid[-1])])
        mid, half = 0.5 * (edges[1:] + edges[:-1]), 0.5 * (edges[1:] - edges[:-1])
        nodes = (mid[:, None] + half[:, None] * _GL_X[None, :]).ravel()
        weights = (half[:, None] * _GL_W[None, :]).ravel() * self._smile.terms(nodes)[0]
        if self.atoms:
            a = np.array(self.atoms)
            return np.r_[self.forward * np.exp(nodes), a[:, 0]], np.r_[weights, a[:, 1]]
        return self.forward * np.exp(nodes), weights

    def expected(self, payoff: Callable[[np.ndarray], np.ndarray], *,
                 kinks: Sequence[float] | np.ndarray = ()) -> float:
        """E[payoff(S_T)] under the density; pass the payoff's kinks (strikes) for full accuracy."""
        if self._smile is None:
            return float("nan")
        nodes, weights = self.quadrature(kinks)
        return float(weights @ np.asarray(payoff(nodes), dtype=np.float64))

    def shortfall(self, payoff: Callable[[np.ndarray], np.ndarray], alpha: float = 0.05, *,
                  kinks: Sequence[float] | np.ndarray = ()) -> float:
        """Expected shortfall: E[payoff | payoff in its worst ``alpha`` tail], same sign as the payoff
        (a loss is negative). The tail's last node counts only in part, so the tail holds exactly alpha."""
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"shortfall: alpha {alpha} must lie in (0, 1), e.g. 0.05 for the worst 5%")
        if self._smile is None:
            return float("nan")
        nodes, weights = self.quadrature(kinks)
        values = np.asarray(payoff(nodes), dtype=np.float64)
        order = np.argsort(values, kind="stable")
        v, wt = values[order], np.maximum(weights[order], 0.0)
        before = np.cumsum(wt) - wt
        take = np.clip(alpha - before, 0.0, wt)
        return float(take @ v / alpha)


def _unavailable(fit: ExpiryFit, reason: str) -> RiskNeutralDensity:
    empty = np.empty(0)
    return RiskNeutralDensity(fit.root, fit.expiry, fit.t, fit.forward, fit.discount, empty, empty, empty,
                              reason=f"{fit.root} {fit.expiry}: no risk-neutral density: {reason}")


def _k_range(smile: _Smile, sd: float) -> tuple[float, float]:
    """k bounds with < TAIL probability beyond each (searched out to 100 ATM standard deviations)."""
    k = np.linspace(-100.0, 100.0, 401) * sd  # 0.5 SD steps: the bounds only need to be safe
    _, above, below = smile.terms(k)
    lo_ok = np.flatnonzero(below < TAIL)
    hi_ok = np.flatnonzero(above < TAIL)
    lo = k[lo_ok[-1]] if len(lo_ok) else k[0]
    hi = k[hi_ok[0]] if len(hi_ok) else k[-1]
    return float(max(lo, -50.0)), float(min(hi, 50.0))  # |k| <= 50: S_T within e^-50..e^50 of F


def _layer_atoms(fit: ExpiryFit, grid: np.ndarray) -> list[tuple[float, float]]:
    """Point masses where the served slice switches between calendar layers (a convex kink in ``w``),
    searched for on ``grid`` (values of k)."""
    if not fit.floor_layers:
        return []
    layers = [(fit.svi, fit.correction)] + list(fit.floor_layers)
    bank = SliceBank.build(np.stack([p.as_array() for p, _ in layers]), [c for _, c in layers])
    n_layers = len(layers)

    def evaluate(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # (layers, points) w and w', one call
        idx = np.repeat(np.arange(n_layers)[:, None], len(x), axis=1)
        w, w1, _ = bank.derivatives(idx, np.broadcast_to(x, idx.shape))
        return w, w1

    x, a, b = _switches(evaluate, grid, depth=2)
    w, w1 = evaluate(x)
    cols = np.arange(len(x))
    s = np.sqrt(w[a, cols])
    d2 = -x / s - 0.5 * s
    mass = _phi(d2) * (w1[b, cols] - w1[a, cols]) / (2.0 * s)  # jump of the survival across the kink
    return sorted((float(fit.forward * np.exp(xi)), float(m)) for xi, m in zip(x, mass, strict=True) if m > 0)


def _switches(evaluate, grid: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(k, layer before, layer after) of every switch of the top layer along ``grid``.

    Each cell where the top layer changes is solved by safeguarded Newton on the two layers' difference
    (the served ``w`` is their maximum; ``w'`` is known). A cell that holds more than one switch (the check
    on either side fails) is searched again on a finer grid of its own."""
    w, _ = evaluate(grid)
    top = np.argmax(w, axis=0)
    cells = np.flatnonzero(top[1:] != top[:-1])
    lo, hi, a, b = grid[cells], grid[cells + 1], top[cells], top[cells + 1]
    cols = np.arange(len(cells))
    d_lo, d_hi = w[b, cells] - w[a, cells], w[b, cells + 1] - w[a, cells + 1]
    x = lo + (hi - lo) * d_lo / (d_lo - d_hi)
    for _ in range(8):
        wx, w1x = evaluate(x)
        d, d1 = wx[b, cols] - wx[a, cols], w1x[b, cols] - w1x[a, cols]
        lo, hi = np.where(d < 0, x, lo), np.where(d < 0, hi, x)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = x - d / d1
        x_new = np.where((step > lo) & (step < hi), step, 0.5 * (lo + hi))
        done = np.all(np.abs(x_new - x) <= 1e-14 * np.maximum(1.0, np.abs(x)))
        x = x_new
        if done:  # Newton from the chord converges in 2-3 steps on a cell this small
            break
    eps = 1e-9 * np.maximum(1.0, np.abs(x))
    ok = (np.argmax(evaluate(x - eps)[0], axis=0) == a) & (np.argmax(evaluate(x + eps)[0], axis=0) == b)
    out = [x[ok]], [a[ok]], [b[ok]]
    if depth > 0:
        for c in cells[~ok]:
            sub = _switches(evaluate, np.linspace(grid[c], grid[c + 1], 257), depth - 1)
            for o, v in zip(out, sub, strict=True):
                o.append(v)
    return tuple(np.concatenate(o) for o in out)


def expiry_density(surface: VolSurface | None, fit: ExpiryFit, *, points: int = 801) -> RiskNeutralDensity:
    """The risk-neutral density of one fitted slice on ``points`` prices (dense near the money).

    ``surface`` is accepted for symmetry with the other per-surface calls; the slice carries all it needs.
    Unfitted slices (``fit.status``), t <= 0 and smiles with no positive variance give a density with
    ``reason`` set and NaN answers, never a made-up lognormal.
    """
    del surface
    if points < 11:
        raise ValueError(f"expiry_density: points={points} is too few; use at least 11 (default 801)")
    if not fit.fitted:
        return _unavailable(fit, f"the smile is not fitted ({fit.status}); the density needs a fitted smile")
    if not (fit.t > 0 and fit.forward > 0 and np.isfinite(fit.forward)):
        return _unavailable(fit, f"no time left or no forward (t={fit.t:.3g} y, forward={fit.forward:.6g})")
    smile = _Smile(fit)
    w0 = float(fit.derivatives(np.zeros(1))[0][0])
    if not (w0 > 0 and np.isfinite(w0)):
        return _unavailable(fit, f"the fitted ATM total variance is {w0:.3g}, not positive")
    lo, hi = _k_range(smile, np.sqrt(w0))
    # Uniform in asinh(k / sd): ~100 points per standard deviation near the money, geometric in the far
    # wings (SVI tails are power laws in S_T and can reach far: a uniform grid would spend it all there).
    sd = np.sqrt(w0)
    k = sd * np.sinh(np.linspace(np.arcsinh(lo / sd), np.arcsinh(hi / sd), points))
    p, _, below = smile.terms(k)
    if not (np.all(np.isfinite(p)) and np.all(np.isfinite(below))):
        return _unavailable(fit, "the fitted smile has no positive variance somewhere in the wings")
    price = fit.forward * np.exp(k)
    atoms = tuple(_layer_atoms(fit, np.linspace(k[0], k[-1], 2 * len(k))))
    return RiskNeutralDensity(fit.root, fit.expiry, fit.t, fit.forward, fit.discount, price, p / price,
                              np.clip(below, 0.0, 1.0), atoms, "", smile)


def surface_densities(surface: VolSurface, *, points: int = 801) -> dict[tuple[Root, date], RiskNeutralDensity]:
    """Density of every slice, keyed by (root, expiry); unfitted slices are present with ``reason`` set."""
    return {(f.root, f.expiry): expiry_density(surface, f, points=points) for f in surface.expiries}
