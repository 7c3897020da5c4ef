"""Calendar repair by domination: a slice is served as the pointwise maximum of its own fitted total
variance and that of the earlier slices lying above it somewhere.

Why this keeps every slice free of butterfly arbitrage: at fixed log-moneyness ``k`` the normalized
Black call price ``c(k, w) = N(d1) - e^k N(d2)`` (``d1,2 = -k/sqrt(w) +- sqrt(w)/2``) depends only on
the total variance ``w`` and increases with it. So serving ``max(w_a, w_b)`` serves the call-price
curve ``max(c_a, c_b)``; the maximum of two convex, decreasing curves with the right limits is again
one, i.e. butterfly-free when both are. (Where the maximum switches from one slice to the other, ``w``
has a convex kink: a positive point mass in ``w''``, which only adds density.) Calendar arbitrage is
gone by construction: the served total variance never falls below an earlier expiry's at the same
``k``. Quotes of an expiry whose own smile dips below an earlier one's are scored against the lifted
curve, so the in-band share is that of what is served.

Recursively, ``served_e = max(own_e, served_prev(e))``; a slice keeps only the earlier layers that rise
above its own curve somewhere on its check grid (usually none or one). The layers are found depth by
depth (predecessor, its kept layers, ...) with one batched evaluation per depth, not per slice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from spx_core.surface.correction import SmileCorrection, _basis, corrected_derivatives, dot4
from spx_core.surface.svi import svi_derivatives

__all__ = ["CalendarLayers", "Layer", "SliceBank", "calendar_layers", "layer_derivatives"]

Layer = tuple[np.ndarray, SmileCorrection | None]


def layer_derivatives(layers: Sequence[Layer], k: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(w, w', w'')`` of the pointwise maximum of ``layers`` (first layer wins ties) at ``k``."""
    w, w1, w2 = corrected_derivatives(layers[0][0], layers[0][1], k)
    for params, corr in layers[1:]:
        v, v1, v2 = corrected_derivatives(params, corr, k)
        above = v > w
        w, w1, w2 = np.where(above, v, w), np.where(above, v1, w1), np.where(above, v2, w2)
    return w, w1, w2


@dataclass(frozen=True, slots=True)
class SliceBank:
    """Every slice's own curve (SVI + correction) in padded arrays, for batched evaluation."""

    params: np.ndarray  # (E, 5)
    lo: np.ndarray  # (E,) first knot of the correction (0 where none)
    h: np.ndarray  # (E,) knot spacing (1 where none)
    n_seg: np.ndarray  # (E,) spline segments (1 where none; its coefficients are 0)
    coef: np.ndarray  # (E, M)

    @classmethod
    def build(cls, params: np.ndarray, corrections: Sequence[SmileCorrection | None]) -> SliceBank:
        n = len(params)
        sizes = [len(c.coef) if c is not None else 4 for c in corrections]
        coef = np.zeros((n, max(sizes, default=4)))
        lo, h, n_seg = np.zeros(n), np.ones(n), np.ones(n, dtype=np.int64)
        for e, c in enumerate(corrections):
            if c is not None:
                coef[e, :len(c.coef)] = c.coef
                n_seg[e] = len(c.knots) - 7
                lo[e] = c.knots[3]
                h[e] = (c.knots[-4] - c.knots[3]) / n_seg[e]
        return cls(np.asarray(params, dtype=np.float64), lo, h, n_seg, coef)

    def derivatives(self, idx: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(w, w', w'')`` of slice ``idx[i]``'s own curve at ``k[i]`` (same shapes)."""
        p = self.params[idx]
        w, w1, w2 = svi_derivatives(k, p[..., 0], p[..., 1], p[..., 2], p[..., 3], p[..., 4])
        i0, V, D1, D2 = _basis(k, self.lo[idx], self.h[idx], self.n_seg[idx])
        cg = self.coef[idx[..., None], i0[..., None] + np.arange(4)]
        return w + dot4(V, cg), w1 + dot4(D1, cg), w2 + dot4(D2, cg)


@dataclass(frozen=True, slots=True)
class CalendarLayers:
    """Result of :func:`calendar_layers`.

    Attributes:
        kept: per slice, the earlier slices (indices, nearest first) whose curves it is raised to.
        grid: ``(w, w', w'')`` of each served slice on its check grid, (E, G) each.
        prev_grid: the previous fitted slice's served ``w`` on each slice's grid (NaN: none), (E, G).
    """

    kept: list[tuple[int, ...]]
    grid: tuple[np.ndarray, np.ndarray, np.ndarray]
    prev_grid: np.ndarray


def _max_into(cur: tuple, new: tuple, rows: np.ndarray) -> None:
    above = new[0] > cur[0][rows]
    for c, n in zip(cur, new, strict=True):
        c[rows] = np.where(above, n, c[rows])


def calendar_layers(bank: SliceBank, fitted: np.ndarray, t: np.ndarray, kgrid: np.ndarray) -> CalendarLayers:
    """Which earlier slices each fitted slice is raised to, and the served slices on their grids."""
    n, G = kgrid.shape
    order = np.array([e for e in np.argsort(t, kind="stable") if fitted[e]], dtype=np.int64)
    prev = np.full(n, -1)
    prev[order[1:]] = order[:-1]
    all_rows = np.arange(n)
    own = bank.derivatives(np.repeat(all_rows[:, None], G, 1), kgrid)
    served = tuple(a.copy() for a in own)
    prev_grid = np.full((n, G), np.nan)
    kept: list[list[int]] = [[] for _ in range(n)]
    tol = 1e-12 * np.maximum(np.max(np.abs(own[0]), axis=1), 1e-300)
    # Depth 1: the predecessor's own curve. Depth d: layers the predecessor kept at depth d - 1.
    pairs = np.flatnonzero(prev >= 0)
    layer = prev[pairs]
    depth_layer = np.full(n, -1)
    while len(pairs):
        vals = bank.derivatives(np.repeat(layer[:, None], G, 1), kgrid[pairs])
        prev_grid[pairs] = np.fmax(prev_grid[pairs], vals[0])
        alive = np.any(vals[0] > own[0][pairs] + tol[pairs, None], axis=1)
        _max_into(served, tuple(v[alive] for v in vals), pairs[alive])
        for e, j in zip(pairs[alive], layer[alive], strict=True):
            kept[e].append(int(j))
        # Next depth: slice e inherits the pair (e, j) when its predecessor kept j at this depth.
        depth_layer[:] = -1
        depth_layer[pairs[alive]] = layer[alive]
        nxt = np.flatnonzero((prev >= 0) & (depth_layer[np.maximum(prev, 0)] >= 0))
        pairs, layer = nxt, depth_layer[prev[nxt]]
    return CalendarLayers([tuple(x) for x in kept], served, prev_grid)


def served_at(bank: SliceBank, kept: list[tuple[int, ...]], group: np.ndarray,
              k: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(w, w', w'')`` of the served slice ``group[i]`` at ``k[i]`` (flat arrays)."""
    out = bank.derivatives(group, k)
    out = tuple(a.copy() for a in out)
    n_layers = np.array([len(x) for x in kept], dtype=np.int64)
    for d in range(int(n_layers.max(initial=0))):
        pts = np.flatnonzero(n_layers[group] > d)
        if not len(pts):
            break
        layer = np.array([kept[e][d] if len(kept[e]) > d else -1 for e in range(len(kept))])
        vals = bank.derivatives(layer[group[pts]], k[pts])
        _max_into(out, vals, pts)
    return out
