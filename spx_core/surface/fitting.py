"""Fitting internals of :func:`spx_core.surface.fit_surface`: data selection, grids, the batched SVI fit
(with calendar refits in pure-SVI mode), and the batched spline corrections."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from spx_core.domain.quotes import QuoteFlag
from spx_core.surface.chain_iv import ChainIV
from spx_core.surface.correction import SmileCorrection, knot_points, spline_layout
from spx_core.surface.correction_fit import fit_corrections_batch
from spx_core.surface.svi import fit_svi_batch, initial_guess, svi_w

_NOT_TWO_SIDED = int(QuoteFlag.CROSSED | QuoteFlag.LOCKED | QuoteFlag.NO_QUOTE | QuoteFlag.ZERO_BID)


@dataclass(frozen=True, slots=True)
class _FitData:
    mask: np.ndarray  # rows used in the fit
    group: np.ndarray
    k: np.ndarray
    w_mkt: np.ndarray
    scale: np.ndarray
    weight: np.ndarray  # for the linear initial guess


def fit_data(civ: ChainIV, cfg) -> _FitData:
    c = civ.snapshot.columns
    with np.errstate(invalid="ignore"):
        two_sided = (c["bid"] > 0) & (c["ask"] > c["bid"]) & ((c["flags"] & _NOT_TWO_SIDED) == 0)
        otm = c["is_call"] == (civ.k >= 0)
        mask = (two_sided & otm & np.isfinite(civ.iv_bid) & np.isfinite(civ.iv_ask) & (civ.iv_ask >= civ.iv_bid)
                & (civ.t > 0) & (civ.vega >= cfg.vega_floor))
    rows = np.flatnonzero(mask)
    centre = 0.5 * (civ.iv_bid[rows] + civ.iv_ask[rows])
    half = np.maximum(0.5 * (civ.iv_ask[rows] - civ.iv_bid[rows]), cfg.svi.band_floor)
    t = civ.t[rows]
    scale = 2.0 * centre * t * half
    return _FitData(mask, civ.expiry_index[rows], civ.k[rows], centre * centre * t, scale, 1.0 / scale ** 2)


def atm_w(data: _FitData, n_exp: int) -> np.ndarray:
    """Market total variance nearest the money per expiry (NaN where no data)."""
    out = np.full(n_exp, np.nan)
    if len(data.group):
        order = np.lexsort((np.abs(data.k), data.group))
        first = order[np.r_[True, data.group[order][1:] != data.group[order][:-1]]]
        out[data.group[first]] = data.w_mkt[first]
    return out


def flat_params(civ: ChainIV, data: _FitData, n_exp: int, t: np.ndarray) -> np.ndarray:
    """Flat smiles at the nearest-the-money market vol (used where a slice cannot be fitted)."""
    w = atm_w(data, n_exp)
    missing = ~np.isfinite(w)
    if missing.any():
        with np.errstate(invalid="ignore"):
            near = np.where(np.abs(civ.k) < 0.05, civ.iv_mid, np.nan)
            vol = np.array([np.nanmedian(near[f.start:f.stop]) if np.isfinite(near[f.start:f.stop]).any()
                            else np.nan for f in civ.forwards])
        w[missing] = vol[missing] ** 2 * np.maximum(t[missing], 0.0)
    return np.stack([w, np.zeros(n_exp), np.zeros(n_exp), np.zeros(n_exp), np.full(n_exp, 0.1)], axis=1)


def grids(data: _FitData, n_exp: int, params: np.ndarray, points: int, margin: float) -> np.ndarray:
    """Per-expiry k grid over the quoted range widened by ``margin`` ATM standard deviations."""
    kmin = np.full(n_exp, np.inf)
    kmax = np.full(n_exp, -np.inf)
    np.minimum.at(kmin, data.group, data.k)
    np.maximum.at(kmax, data.group, data.k)
    sd = np.sqrt(np.maximum(svi_w(0.0, *params.T), 1e-6))
    kmin = np.where(np.isfinite(kmin), kmin, -sd) - margin * sd
    kmax = np.where(np.isfinite(kmax), kmax, sd) + margin * sd
    u = np.linspace(0.0, 1.0, points)
    return kmin[:, None] + (kmax - kmin)[:, None] * u[None, :]


def fit_slices(civ: ChainIV, data: _FitData, fit_ok: np.ndarray, t: np.ndarray, previous,
               cfg) -> np.ndarray:
    idx = np.flatnonzero(fit_ok)
    remap = np.full(len(fit_ok), -1)
    remap[idx] = np.arange(len(idx))
    sel = fit_ok[data.group]
    sub = _FitData(data.mask, remap[data.group[sel]], data.k[sel], data.w_mkt[sel], data.scale[sel],
                   data.weight[sel])
    n = len(idx)
    w_atm = atm_w(sub, n)
    warm = None
    if previous is not None:
        warm = np.full((n, 5), np.nan)
        before = {(f.root, f.expiry): f for f in previous.expiries if f.fitted}
        for j, e in enumerate(idx):
            old = before.get((civ.forwards[e].root, civ.forwards[e].expiry))
            if old is not None:
                warm[j] = old.svi.as_array()
    init = initial_guess(group=sub.group, k=sub.k, w_mkt=sub.w_mkt, weight=sub.weight, n_exp=n, w_atm=w_atm,
                         warm=warm)
    kgrid = grids(sub, n, init, cfg.svi.grid_points, cfg.svi.grid_margin)
    svi_cfg = cfg.svi
    if cfg.correction.enabled:
        svi_cfg = dataclasses.replace(svi_cfg, max_iter=min(svi_cfg.max_iter, svi_cfg.max_iter_corrected))
    params = fit_svi_batch(group=sub.group, k=sub.k, w_mkt=sub.w_mkt, scale=sub.scale, n_exp=n, kgrid=kgrid,
                           init=init, config=svi_cfg).params
    # With corrections on, calendar arbitrage is repaired there (floors on the corrected slices).
    rounds = 0 if cfg.correction.enabled else cfg.calendar_rounds
    order = np.argsort(t[idx], kind="stable")
    for _ in range(rounds):
        lower, upper, bad = _calendar_bounds(params, kgrid, order)
        if not bad.any():
            break
        # Refit only the slices that cross a neighbour, with the neighbours' curves as bounds.
        which = np.flatnonzero(bad)
        remap_bad = np.full(n, -1)
        remap_bad[which] = np.arange(len(which))
        pts = bad[sub.group]
        refit = fit_svi_batch(group=remap_bad[sub.group[pts]], k=sub.k[pts], w_mkt=sub.w_mkt[pts],
                              scale=sub.scale[pts], n_exp=len(which), kgrid=kgrid[which], init=params[which],
                              w_lower=lower[which], w_upper=upper[which], config=cfg.svi).params
        params[which] = refit
    return params


def _calendar_bounds(params: np.ndarray, kgrid: np.ndarray, order: np.ndarray):
    """Neighbour curves on each slice's grid, and which slices cross a neighbour."""
    n = len(params)
    lower = np.full(kgrid.shape, np.nan)
    upper = np.full(kgrid.shape, np.nan)
    for pos, e in enumerate(order):
        if pos > 0:
            lower[e] = svi_w(kgrid[e], *params[order[pos - 1]])
        if pos < n - 1:
            upper[e] = svi_w(kgrid[e], *params[order[pos + 1]])
    w = svi_w(kgrid, *(params.T[:, :, None]))
    with np.errstate(invalid="ignore"):
        bad = np.any(w < lower - 1e-12, axis=1) | np.any(w > upper + 1e-12, axis=1)
    return lower, upper, bad


def check_grid(data: _FitData, n_exp: int, params: np.ndarray, cfg) -> np.ndarray:
    """The per-slice grid on which corrections are constrained and the fit is checked: ``check_points``
    uniform points over the quoted range widened by ``grid_margin`` ATM standard deviations, plus
    the correction's knots (sorted; (E, G) with G the same for every slice)."""
    uniform = grids(data, n_exp, params, cfg.check_points, cfg.svi.grid_margin)
    if not cfg.correction.enabled:
        return uniform
    lo, h, n_seg = spline_layout(group=data.group, k=data.k, n_exp=n_exp, config=cfg.correction)
    return np.sort(np.concatenate([uniform, knot_points(lo, h, n_seg)], axis=1), axis=1)


def fit_corrections(data: _FitData, params: np.ndarray, fit_ok: np.ndarray, kgrid: np.ndarray,
                    cfg) -> list[SmileCorrection | None]:
    """Butterfly-free spline correction per fitted slice (None where disabled or not needed), all
    slices in one batch (:func:`correction.fit_corrections_batch`), constrained on ``kgrid``."""
    n_exp = len(params)
    out: list[SmileCorrection | None] = [None] * n_exp
    idx = np.flatnonzero(fit_ok)
    if not cfg.correction.enabled or not len(idx):
        return out
    remap = np.full(n_exp, -1)
    remap[idx] = np.arange(len(idx))
    sel = fit_ok[data.group]
    group = remap[data.group[sel]]
    k = data.k[sel]
    resid = data.w_mkt[sel] - svi_w(k, *params[idx][group].T)
    corr = fit_corrections_batch(group=group, k=k, resid=resid, weight=data.weight[sel], params=params[idx],
                                 kgrid=kgrid[idx], config=cfg.correction)
    for j, e in enumerate(idx):
        out[e] = corr[j]
    return out
