"""The fitted slices a scan uses, evaluated in batches: fitted IV and risk-neutral CDF at any (expiry, point).

A scan asks the same questions of ~100 expiries at once. Calling ``ExpiryFit.iv`` or
``RiskNeutralDensity.prob_below`` once per expiry costs a Python round trip and a spline-basis setup per
slice and per calendar layer (~0.5 ms each, ~100 ms a scan); the surface's own batched slice bank
(:class:`~spx_core.surface.layers.SliceBank` + ``served_at``, what ``fit_surface`` scores quotes with)
evaluates the served slices (SVI + correction, raised to their calendar layers) of every expiry in one pass.

The CDF is the one of :mod:`spx_core.surface.density` (the Breeden-Litzenberger density of the served slice,
Gatheral-Jacquier): ``P(S_T < K) = N(-d2) + phi(d2) w'(k) / (2 sqrt w)`` at ``k = ln(K/F)``, exact in closed
form; the tests check it against ``RiskNeutralDensity.prob_below`` to rounding.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr

from spx_core.surface.layers import SliceBank, served_at
from spx_core.surface.surface import ExpiryFit, VolSurface

__all__ = ["ServedSlices"]

_INV_SQRT_2PI = 0.3989422804014327
_FLAT = np.array([0.0, 0.0, 0.0, 0.0, 1.0])  # a placeholder slice for expiries without a fit (never served)


class ServedSlices:
    """Every fitted slice of ``surface`` by expiry index (``snapshot.expiries()`` order), batched.

    ``fits[i]`` is None where the surface has no fitted slice with time left; answers there are NaN.
    """

    def __init__(self, surface: VolSurface, fits: list[ExpiryFit | None]) -> None:
        self.fits = [f if f is not None and f.fitted and f.t > 0 else None for f in fits]
        params = [f.svi.as_array() if f is not None else _FLAT for f in self.fits]
        corrections = [f.correction if f is not None else None for f in self.fits]
        kept, extra = [], len(self.fits)
        for f in self.fits:
            layers = f.floor_layers if f is not None else ()
            kept.append(tuple(range(extra, extra + len(layers))))
            extra += len(layers)
            params += [p.as_array() for p, _ in layers]
            corrections += [c for _, c in layers]
        self._bank = SliceBank.build(np.array(params), corrections)
        self._kept = kept
        self.fitted = np.array([f is not None for f in self.fits], dtype=bool)
        self.t = np.array([f.t if f is not None else np.nan for f in self.fits])
        self.forward = np.array([f.forward if f is not None else np.nan for f in self.fits])

    def _w(self, group: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        w, w1, _ = served_at(self._bank, self._kept, group, k)
        return w, w1

    def iv(self, group: np.ndarray, k: np.ndarray) -> np.ndarray:
        """Fitted IV of expiry ``group[i]`` at log-moneyness ``k[i]`` (= ``ExpiryFit.iv``); NaN where unfitted."""
        group, k = np.asarray(group, dtype=np.int64), np.asarray(k, dtype=np.float64)
        out = np.full(k.shape, np.nan)
        ok = self.fitted[group] & np.isfinite(k)
        if ok.any():
            w, _ = self._w(group[ok], k[ok])
            with np.errstate(invalid="ignore", divide="ignore"):
                out[ok] = np.sqrt(np.maximum(w, 0.0) / self.t[group[ok]])
        return out

    def prob_below(self, group: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Risk-neutral P(S_T < x[i]) at expiry ``group[i]`` (x in index points); 0 for x <= 0, 1 for x = +inf,
        NaN where the expiry has no fitted slice or x is NaN."""
        group, x = np.asarray(group, dtype=np.int64), np.asarray(x, dtype=np.float64)
        fitted = self.fitted[group]
        out = np.where(fitted & (x <= 0), 0.0, np.where(fitted & np.isposinf(x), 1.0, np.nan))
        ok = np.flatnonzero(fitted & np.isfinite(x) & (x > 0))
        if len(ok):
            # Each distinct (expiry, x) once: strikes repeat across the candidates of a scan.
            order = ok[np.lexsort((x[ok], group[ok]))]
            g_sorted, x_sorted = group[order], x[order]
            first = np.r_[True, (g_sorted[1:] != g_sorted[:-1]) | (x_sorted[1:] != x_sorted[:-1])]
            g, xs = g_sorted[first], x_sorted[first]
            k = np.log(xs / self.forward[g])
            w, w1 = self._w(g, k)
            with np.errstate(invalid="ignore", divide="ignore"):
                s = np.sqrt(w)
                d2 = -k / s - 0.5 * s
                skew = _INV_SQRT_2PI * np.exp(-0.5 * d2 * d2) * w1 / (2.0 * s)
            out[order] = np.clip(ndtr(-d2) + skew, 0.0, 1.0)[np.cumsum(first) - 1]
        return out
