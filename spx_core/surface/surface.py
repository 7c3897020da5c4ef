"""The volatility surface: per-expiry SVI slices with an arbitrage-free spline correction, calendar-repaired,
interpolated in total variance.

``fit_surface(snapshot or ChainIV)`` fits every expiry at once:
    1. raw SVI per slice (:mod:`svi`: quasi-explicit start over an (m, sigma) grid, or the previous
       surface's parameters when better, then batched Levenberg-Marquardt with per-slice convergence);
    2. a cubic-spline correction per slice, projected onto the butterfly-free set (:mod:`correction`,
       :mod:`correction_fit`), which takes the fit into the bid/ask bands where SVI cannot go;
    3. calendar repair by domination (:mod:`layers`): each slice is served as the pointwise maximum of
       its own curve and the earlier expiries' curves that rise above it, which keeps it butterfly-free.
It then reports per expiry: ATM IV, SVI parameters, RMSE (vol points), the share of quotes whose fitted
IV lies inside the bid/ask IV band, 25-delta risk reversal and butterfly, skew, and the arbitrage found
in the market and in the fit (checked on a fine grid that holds the spline knots).

Between expiries, total variance is linear in T at fixed ``k = ln(K/F(T))``; before the first expiry
it scales with T (constant vol), after the last it keeps the last slice's vol. Node curves are also
taken as a running maximum over expiries, so ``VolSurface.iv`` is calendar-arbitrage free in T at every
``k``, including beyond the slices' check grids.

With ``SurfaceConfig(correction=CorrectionConfig(enabled=False))`` the slices are pure SVI; calendar
crossings are then refitted with the neighbours as bounds (``calendar_rounds``) before the layers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from spx_core.domain.contracts import Root
from spx_core.domain.snapshot import ChainSnapshot
from spx_core.surface import fitting
from spx_core.surface.arbitrage import ArbReport, fit_arbitrage, market_arbitrage
from spx_core.surface.chain_iv import ChainIV, chain_iv
from spx_core.surface.correction import CorrectionConfig, SmileCorrection
from spx_core.surface.layers import (
    CalendarLayers,
    SliceBank,
    calendar_layers,
    layer_derivatives,
    served_at,
)
from spx_core.surface.metrics import delta_strikes, slice_metrics
from spx_core.surface.svi import SVIConfig, SVIParams, g_from_derivatives, svi_w

__all__ = ["ExpiryFit", "SurfaceConfig", "VolSurface", "fit_surface"]


@dataclass(frozen=True, slots=True)
class SurfaceConfig:
    """How the surface is fitted and scored.

    Attributes:
        svi: the per-slice SVI fit settings.
        correction: the spline correction on top of SVI (see :mod:`spx_core.surface.correction`).
        vega_floor: quotes with vega below this are left out of the in-band score and the fit
            (index points per vol point).
        min_quotes: fewest usable quotes to fit a slice (count); fewer -> flat smile at the ATM IV.
        calendar_rounds: SVI refit rounds for slices that violate calendar arbitrage, pure-SVI mode only
            (count; with corrections the layers repair the calendar).
        check_points: uniform points of the per-slice grid on which corrections are constrained and the
            fit is checked; the spline knots are added to it (count).
    """

    svi: SVIConfig = SVIConfig()
    correction: CorrectionConfig = CorrectionConfig()
    vega_floor: float = 0.05
    min_quotes: int = 6
    calendar_rounds: int = 2
    check_points: int = 401

    def __post_init__(self) -> None:
        if not self.vega_floor >= 0 or self.min_quotes < 5 or self.calendar_rounds < 0:
            raise ValueError("SurfaceConfig: vega_floor must be >= 0, min_quotes >= 5, calendar_rounds >= 0")


@dataclass(frozen=True, slots=True)
class ExpiryFit:
    """One expiry's fitted smile and its scores.

    Attributes:
        t: years to expiry; forward (index points); discount (factor).
        atm_iv: fitted IV at the forward (annualized vol).
        svi: raw SVI parameters in total variance.
        correction: spline correction added to the SVI total variance over the quoted range (None:
            pure SVI).
        rmse_volpts: RMS of fitted minus market (band-centre) IV over the fitted quotes (vol points).
        in_band_share: share of scored quotes (two-sided, vega >= floor) with fitted IV inside
            [iv_bid, iv_ask] (fraction; NaN when none scored).
        n_fit / n_scored: quotes used in the fit / in the score (count).
        in_band_share_svi / rmse_volpts_svi: the same scores of the SVI slice alone (no correction).
        rr25, bf25: 25-delta risk reversal (call - put IV) and butterfly ((call + put)/2 - ATM) (vol).
        skew: dIV/dk at the forward (vol per unit of log-moneyness).
        market_arb / fit_arb: arbitrage found in the quotes / in the fitted slice.
        status: "" when fitted, else why not (too few quotes, expired).
        floor_layers: earlier expiries' (SVI, correction) curves that rise above this slice's own somewhere
            on its check grid; the served slice is the pointwise maximum (calendar repair that keeps
            the slice butterfly-free, see :mod:`spx_core.surface.layers`). Empty for most slices.
    """

    root: Root
    expiry: date
    t: float
    forward: float
    discount: float
    atm_iv: float
    svi: SVIParams
    correction: SmileCorrection | None
    rmse_volpts: float
    in_band_share: float
    n_fit: int
    n_scored: int
    rr25: float
    bf25: float
    skew: float
    market_arb: ArbReport
    fit_arb: ArbReport
    in_band_share_svi: float = float("nan")
    rmse_volpts_svi: float = float("nan")
    status: str = ""
    floor_layers: tuple[tuple[SVIParams, SmileCorrection | None], ...] = ()

    @property
    def fitted(self) -> bool:
        return self.status == ""

    def derivatives(self, k: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(w, w', w'')`` of the served slice at log-moneyness ``k``: SVI plus correction, raised to
        earlier expiries' curves where those lie above it (calendar repair, see :mod:`layers`)."""
        layers = [(self.svi.as_array(), self.correction)] + [(p.as_array(), c) for p, c in self.floor_layers]
        return layer_derivatives(layers, np.asarray(k, dtype=np.float64))

    def w(self, k: np.ndarray) -> np.ndarray:
        """Fitted total variance of this slice at log-moneyness ``k`` (see :meth:`derivatives`)."""
        return self.derivatives(k)[0]

    def iv(self, k: np.ndarray) -> np.ndarray:
        """Fitted IV of this slice at log-moneyness ``k``."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.sqrt(np.maximum(self.w(k), 0.0) / self.t)


@dataclass(frozen=True, slots=True, eq=False)
class VolSurface:
    """Fitted surface of one snapshot. ``expiries`` keeps the snapshot's (root, expiry) order."""

    expiries: tuple[ExpiryFit, ...]
    snapshot_checksum: str
    time_ns: int
    underlying_price: float

    def _nodes(self) -> list[ExpiryFit]:
        fits = sorted((f for f in self.expiries if f.fitted and f.t > 0), key=lambda f: f.t)
        out: list[ExpiryFit] = []
        for f in fits:
            if not out or f.t > out[-1].t:  # equal T (rare): keep the first
                out.append(f)
        return out

    def total_variance(self, *, k: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Total variance at log-moneyness ``k`` (vs the forward at ``t``) and years ``t`` (broadcast)."""
        nodes = self._nodes()
        k, t = np.broadcast_arrays(np.asarray(k, dtype=np.float64), np.asarray(t, dtype=np.float64))
        if not nodes:
            return np.full(k.shape, np.nan)
        tn = np.array([f.t for f in nodes])
        # Running max over expiries: calendar-free in T by construction (see module docstring).
        # Each node curve is evaluated once per distinct k (grids repeat k along the T axis).
        ku, inv = np.unique(k.ravel(), return_inverse=True)
        w_u = np.maximum(np.maximum.accumulate(np.stack([f.w(ku) for f in nodes]), axis=0), 0.0)
        w_nodes = w_u[:, inv.ravel()].reshape((len(nodes),) + k.shape)
        if len(tn) == 1:
            return w_nodes[0] * t / tn[0]
        hi = np.clip(np.searchsorted(tn, t), 1, len(tn) - 1)
        lo = hi - 1
        w_lo = np.take_along_axis(w_nodes, lo[None, ...], axis=0)[0]
        w_hi = np.take_along_axis(w_nodes, hi[None, ...], axis=0)[0]
        inner = w_lo + (t - tn[lo]) / (tn[hi] - tn[lo]) * (w_hi - w_lo)
        return np.where(t < tn[0], w_nodes[0] * t / tn[0], np.where(t > tn[-1], w_nodes[-1] * t / tn[-1], inner))

    def iv(self, *, k: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Implied vol at log-moneyness ``k = ln(K/F(t))`` and ``t`` years (broadcast; NaN for t <= 0)."""
        t_arr = np.asarray(t, dtype=np.float64)
        w = self.total_variance(k=k, t=t_arr)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(t_arr > 0, np.sqrt(w / t_arr), np.nan)

    def forward(self, t: np.ndarray) -> np.ndarray:
        """Forward at ``t`` years: log-linear between expiries, flat beyond (index points)."""
        nodes = self._nodes()
        return np.exp(np.interp(np.asarray(t, dtype=np.float64), [f.t for f in nodes],
                                np.log([f.forward for f in nodes])))

    def atm_term_structure(self) -> tuple[np.ndarray, np.ndarray]:
        """(t, ATM IV) of the fitted expiries, sorted by t."""
        fits = sorted((f for f in self.expiries if f.fitted and f.t > 0), key=lambda f: f.t)
        return np.array([f.t for f in fits]), np.array([f.atm_iv for f in fits])

    def by_expiry(self, root: Root | str, expiry: date) -> ExpiryFit | None:
        return next((f for f in self.expiries if f.root == root and f.expiry == expiry), None)


def fit_surface(source: ChainSnapshot | ChainIV, *, previous: VolSurface | None = None,
                config: SurfaceConfig | None = None) -> VolSurface:
    """Fit an arbitrage-free SVI surface to a chain.

    Args:
        source: a snapshot (IVs are computed) or a :class:`ChainIV` already computed for it.
        previous: an earlier surface of the same chain; slices with the same (root, expiry) start
            from its parameters (warm start: fewer iterations, and a smile that does not jump).
        config: fit and scoring settings.
    """
    cfg = config or SurfaceConfig()
    civ = source if isinstance(source, ChainIV) else chain_iv(source)
    data = fitting.fit_data(civ, cfg)
    n_exp = len(civ.forwards)
    t = np.array([f.t for f in civ.forwards])
    counts = np.bincount(data.group, minlength=n_exp)
    fit_ok = (counts >= cfg.min_quotes) & (t > 0)
    params = fitting.flat_params(civ, data, n_exp, t)
    if fit_ok.any():
        params[fit_ok] = fitting.fit_slices(civ, data, fit_ok, t, previous, cfg)
    kgrid = fitting.check_grid(data, n_exp, params, cfg)
    corrections = fitting.fit_corrections(data, params, fit_ok, kgrid, cfg)
    bank = SliceBank.build(params, corrections)
    cal = calendar_layers(bank, fit_ok, t, kgrid)
    ev = _Evaluated.build(civ, data, params, cal, bank, kgrid, fit_ok, t, cfg)
    market = market_arbitrage(civ)
    out = []
    for e, f in enumerate(civ.forwards):
        status = "" if fit_ok[e] else ("expired" if t[e] <= 0 else f"too few usable quotes ({counts[e]})")
        out.append(ExpiryFit(
            f.root, f.expiry, f.t, f.forward, f.discount, float(ev.atm[e]), SVIParams(*(float(v) for v in params[e])),
            corrections[e], float(ev.metrics.rmse_volpts[e]), float(ev.metrics.in_band_share[e]), int(counts[e]),
            int(ev.metrics.n_scored[e]), float(ev.rr[e]), float(ev.bf[e]), float(ev.skew[e]), market[e],
            ev.fit_arb[e], float(ev.svi_metrics.in_band_share[e]), float(ev.svi_metrics.rmse_volpts[e]), status,
            tuple((SVIParams(*(float(v) for v in params[j])), corrections[j]) for j in cal.kept[e])))
    snap = civ.snapshot
    return VolSurface(tuple(out), snap.checksum, snap.time_ns, snap.underlying_price)


@dataclass(frozen=True, slots=True)
class _Evaluated:
    """The fitted slices evaluated where the report needs them."""

    metrics: object
    svi_metrics: object
    fit_arb: list
    rr: np.ndarray
    bf: np.ndarray
    skew: np.ndarray
    atm: np.ndarray

    @classmethod
    def build(cls, civ: ChainIV, data, params: np.ndarray, cal: CalendarLayers, bank: SliceBank, kgrid: np.ndarray,
              fit_ok: np.ndarray, t: np.ndarray, cfg: SurfaceConfig) -> _Evaluated:
        n_exp = len(params)
        w_grid, d1, d2 = cal.grid
        g_grid = g_from_derivatives(kgrid, w_grid, d1, d2)
        # The served slices at the forward (k = 0) and at every quote, in one flat evaluation.
        group = np.concatenate([np.arange(n_exp), civ.expiry_index])
        w, w1, _ = served_at(bank, cal.kept, group, np.concatenate([np.zeros(n_exp), civ.k]))
        w0, w1 = w[:n_exp], w1[:n_exp]
        p = params[civ.expiry_index]
        w_rows_svi = svi_w(civ.k, p[:, 0], p[:, 1], p[:, 2], p[:, 3], p[:, 4])
        fit_arb = fit_arbitrage(t=t, kgrid=kgrid, w_grid=w_grid, g_grid=g_grid, w_prev_grid=cal.prev_grid,
                                fitted=fit_ok)
        metrics = slice_metrics(civ, data_mask=data.mask, w_rows=w[n_exp:], vega_floor=cfg.vega_floor)
        svi_metrics = slice_metrics(civ, data_mask=data.mask, w_rows=w_rows_svi, vega_floor=cfg.vega_floor)
        rr, bf, skew, atm_iv = delta_strikes(kgrid=kgrid, w_grid=w_grid, t=t, w0=w0, w1=w1)
        return cls(metrics, svi_metrics, fit_arb, rr, bf, skew, atm_iv)
