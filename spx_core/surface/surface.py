"""The volatility surface: per-expiry SVI slices, arbitrage-repaired, interpolated in total variance.

``fit_surface(snapshot or ChainIV)`` fits every expiry at once (:func:`svi.fit_svi_batch`), checks
the slices against each other for calendar arbitrage and refits violators with their neighbours as
bounds, then reports per expiry: ATM IV, SVI parameters, RMSE (vol points), the share of quotes whose
fitted IV lies inside the bid/ask IV band, 25-delta risk reversal and butterfly, skew, and the
arbitrage found in the market and in the fit.

Between expiries, total variance is linear in T at fixed ``k = ln(K/F(T))``; before the first expiry
it scales with T (constant vol), after the last it keeps the last slice's vol. Node curves are taken
as a running maximum over expiries, so ``VolSurface.iv`` is calendar-arbitrage free in T even where a
slice's own fit could not be repaired (that slice's ``fit_arb`` says so).
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
from spx_core.surface.correction import CorrectionConfig, SmileCorrection, corrected_derivatives
from spx_core.surface.metrics import delta_strikes, slice_metrics
from spx_core.surface.svi import SVIConfig, SVIParams

__all__ = ["SurfaceConfig", "ExpiryFit", "VolSurface", "fit_surface"]


@dataclass(frozen=True, slots=True)
class SurfaceConfig:
    """How the surface is fitted and scored.

    Attributes:
        svi: the per-slice SVI fit settings.
        correction: the spline correction on top of SVI (see :mod:`spx_core.surface.correction`).
        vega_floor: quotes with vega below this are left out of the in-band score and the fit
            (index points per vol point).
        min_quotes: fewest usable quotes to fit a slice (count); fewer -> flat smile at the ATM IV.
        calendar_rounds: refit rounds for slices that violate calendar arbitrage (count).
        check_points: fine-grid points for the final arbitrage check (count).
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

    @property
    def fitted(self) -> bool:
        return self.status == ""

    def w(self, k: np.ndarray) -> np.ndarray:
        """Fitted total variance of this slice (SVI plus correction) at log-moneyness ``k``."""
        return corrected_derivatives(self.svi.as_array(), self.correction, np.asarray(k, dtype=np.float64))[0]

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
        w_nodes = np.maximum(np.maximum.accumulate(np.stack([f.w(k) for f in nodes]), axis=0), 0.0)
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
    corrections = fitting.fit_corrections(data, params, fit_ok, t, cfg)
    ev = _Evaluated.build(civ, data, params, corrections, fit_ok, t, cfg)
    market = market_arbitrage(civ)
    out = []
    for e, f in enumerate(civ.forwards):
        status = "" if fit_ok[e] else ("expired" if t[e] <= 0 else f"too few usable quotes ({counts[e]})")
        out.append(ExpiryFit(
            f.root, f.expiry, f.t, f.forward, f.discount, float(ev.atm[e]), SVIParams(*(float(v) for v in params[e])),
            corrections[e], float(ev.metrics.rmse_volpts[e]), float(ev.metrics.in_band_share[e]), int(counts[e]),
            int(ev.metrics.n_scored[e]), float(ev.rr[e]), float(ev.bf[e]), float(ev.skew[e]), market[e],
            ev.fit_arb[e], float(ev.svi_metrics.in_band_share[e]), float(ev.svi_metrics.rmse_volpts[e]), status))
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
    def build(cls, civ: ChainIV, data, params: np.ndarray, corrections: list, fit_ok: np.ndarray, t: np.ndarray,
              cfg: SurfaceConfig) -> _Evaluated:
        n_exp = len(params)
        kgrid = fitting.grids(data, n_exp, params, cfg.check_points, margin=cfg.svi.grid_margin)
        w_grid, g_grid = np.empty_like(kgrid), np.empty_like(kgrid)
        w_prev = np.full_like(kgrid, np.nan)
        w0, w1 = np.empty(n_exp), np.empty(n_exp)
        w_rows, w_rows_svi = np.full(len(civ), np.nan), np.full(len(civ), np.nan)
        prev = None
        for e in np.argsort(t, kind="stable"):
            f = civ.forwards[e]
            w, d1, d2 = corrected_derivatives(params[e], corrections[e], kgrid[e])
            w_grid[e] = w
            with np.errstate(invalid="ignore", divide="ignore"):
                g_grid[e] = (1.0 - 0.5 * kgrid[e] * d1 / w) ** 2 - 0.25 * d1 * d1 * (1.0 / w + 0.25) + 0.5 * d2
            atm = corrected_derivatives(params[e], corrections[e], np.zeros(1))
            w0[e], w1[e] = atm[0][0], atm[1][0]
            rows = civ.k[f.start:f.stop]
            w_rows[f.start:f.stop] = corrected_derivatives(params[e], corrections[e], rows)[0]
            w_rows_svi[f.start:f.stop] = corrected_derivatives(params[e], None, rows)[0]
            if fit_ok[e]:
                if prev is not None:
                    w_prev[e] = corrected_derivatives(params[prev], corrections[prev], kgrid[e])[0]
                prev = e
        fit_arb = fit_arbitrage(t=t, kgrid=kgrid, w_grid=w_grid, g_grid=g_grid, w_prev_grid=w_prev, fitted=fit_ok)
        metrics = slice_metrics(civ, data_mask=data.mask, w_rows=w_rows, vega_floor=cfg.vega_floor)
        svi_metrics = slice_metrics(civ, data_mask=data.mask, w_rows=w_rows_svi, vega_floor=cfg.vega_floor)
        rr, bf, skew, atm_iv = delta_strikes(kgrid=kgrid, w_grid=w_grid, t=t, w0=w0, w1=w1)
        return cls(metrics, svi_metrics, fit_arb, rr, bf, skew, atm_iv)
