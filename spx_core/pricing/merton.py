"""Merton (1976) jump diffusion: European options as a Poisson-weighted series of Black-76 prices.

Model (risk neutral, on the forward F of the expiry):
    dF/F = vol dW + (J - 1) dN - lambda * kbar dt,   ln J ~ N(jump_mean, jump_vol**2),
    kbar = E[J] - 1 = exp(jump_mean + jump_vol**2 / 2) - 1,   N Poisson with intensity lambda.

Given n jumps by expiry, ln F_T is normal, so the price is exactly

    V = sum_n P(N_T = n) * Black76(F_n, K, t, vol_n, D),
    F_n = F exp(-lambda kbar t) (1 + kbar)^n,   vol_n^2 = vol^2 + n jump_vol^2 / t.

Truncation (why it is safe to stop): each call term is below D*F_n and each put term below D*K, so the
omitted tail is at most D*(F*P(N' > n_max) + K*P(N > n_max)) with N ~ Poisson(lambda t) and
N' ~ Poisson(lambda (1 + kbar) t) (the F_n-weighted Poisson law). We stop at the smallest n_max that makes
this bound <= tol * D * (F + K) for every option of the call (default tol 1e-15, i.e. machine precision).

Units: forward and strike in index points, t in years, vol, jump_vol per sqrt(year) / per jump (log units),
jump_intensity in jumps per year, jump_mean the mean log jump size; discount factor dimensionless.
"""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln, pdtrc

from spx_core.pricing import black76

__all__ = ["InvalidMertonParamsError", "MertonTruncationError", "price", "price_bsm", "terms_needed", "DEFAULT_TOL"]

DEFAULT_TOL = 1e-15
MAX_TERMS = 2000  # lambda*t ~ 1,500 would be a different model (use Black with the total variance)


class InvalidMertonParamsError(ValueError):
    """Merton parameters outside the model's domain (message says which and how to fix it)."""


class MertonTruncationError(RuntimeError):
    """The series would need more than MAX_TERMS terms for the requested tolerance."""


def _validate(vol, jump_intensity, jump_mean, jump_vol) -> None:
    checks = (
        (vol, lambda a: a > 0.0, "vol (diffusion volatility per sqrt(year)) must be > 0, e.g. 0.15"),
        (jump_intensity, lambda a: a >= 0.0, "jump_intensity (jumps per year) must be >= 0; use 0 for Black-76"),
        (jump_mean, lambda a: np.isfinite(a), "jump_mean (mean log jump, e.g. -0.05) must be finite"),
        (jump_vol, lambda a: a >= 0.0, "jump_vol (std of the log jump) must be >= 0, e.g. 0.1"),
    )
    for value, ok, msg in checks:
        arr = np.asarray(value, dtype=float)
        good = ok(arr) & np.isfinite(arr)
        if not np.all(good):
            raise InvalidMertonParamsError(f"{msg}; got {arr[~good].ravel()[:3]!r}")


def terms_needed(*, lam_t: np.ndarray, lam_t_prime: np.ndarray, forward: np.ndarray, strike: np.ndarray,
                 tol: float = DEFAULT_TOL) -> int:
    """Smallest n_max with D*(F*P(N'>n_max) + K*P(N>n_max)) <= tol*D*(F+K) for all options (see module doc)."""
    lam_t = np.atleast_1d(lam_t)
    lam_t_prime = np.atleast_1d(lam_t_prime)
    big = float(np.max(lam_t_prime, initial=0.0))
    if big == 0.0:
        return 0
    f, k = np.atleast_1d(forward), np.atleast_1d(strike)
    wf, wk = f / (f + k), k / (f + k)
    # Poisson tails beyond mean + 40 sd are below 1e-300, so this range always contains the answer.
    upper = int(min(MAX_TERMS, np.ceil(big + 40.0 * np.sqrt(big) + 40.0)))
    for n in range(0, upper + 1):
        bound = wf * pdtrc(n, lam_t_prime) + wk * pdtrc(n, lam_t)
        if np.all(bound <= tol):
            return n
    raise MertonTruncationError(
        f"the Merton series needs more than {upper} terms (jump_intensity*t up to {big:.3g}); "
        "lower the jump intensity or the expiry, or raise tol")


def price(*, forward, strike, t, vol, discount, is_call, jump_intensity, jump_mean, jump_vol,
          tol: float = DEFAULT_TOL) -> np.ndarray:
    """Merton jump-diffusion European prices (discounted), vectorized; all arguments broadcast.

    forward, strike: index points; t: years (> 0; t == 0 gives discounted intrinsic);
    vol: diffusion vol per sqrt(year); discount: discount factor; is_call: bool (False = put);
    jump_intensity: jumps per year; jump_mean: mean of ln(jump factor); jump_vol: std of ln(jump factor).
    tol: bound on the series truncation error relative to discount*(forward+strike) (default 1e-15).
    Raises InvalidMertonParamsError for invalid model parameters; invalid market inputs give NaN.
    """
    _validate(vol, jump_intensity, jump_mean, jump_vol)
    f, k, tt, v, d, lam, mu, dl = np.broadcast_arrays(
        *(np.asarray(a, dtype=float) for a in (forward, strike, t, vol, discount, jump_intensity, jump_mean, jump_vol)))
    call = np.broadcast_to(np.asarray(is_call, dtype=bool), f.shape)
    ok = (f > 0) & (k > 0) & (d > 0) & (tt >= 0) & np.isfinite(f + k + tt + d)
    live = ok & (tt > 0)
    res = np.where(ok & (tt == 0), d * np.maximum(np.where(call, f - k, k - f), 0.0), np.nan)
    if not live.any():
        return res
    f, k, tt, v, d, lam, mu, dl, cl = (a[live] for a in (f, k, tt, v, d, lam, mu, dl, call))
    kbar = np.expm1(mu + 0.5 * dl * dl)
    lam_t = lam * tt
    n_max = terms_needed(lam_t=lam_t, lam_t_prime=lam_t * (1.0 + kbar), forward=f, strike=k, tol=tol)
    drift = -lam_t * kbar
    log_lam_t = np.log(np.where(lam_t > 0, lam_t, 1.0))
    total = np.zeros_like(f)
    for n in range(n_max + 1):
        # Poisson weight in logs so large lambda*t cannot overflow n! or (lambda t)^n.
        weight = np.where(lam_t > 0, np.exp(n * log_lam_t - lam_t - gammaln(n + 1.0)), float(n == 0))
        vol_n = np.sqrt(v * v + n * dl * dl / tt)
        f_n = f * np.exp(drift + n * np.log1p(kbar))  # exactly f when there are no jumps
        total += weight * black76.price(forward=f_n, strike=k, t=tt, vol=vol_n, discount=d, is_call=cl)
    res[live] = total
    return res


def price_bsm(*, spot, strike, t, vol, rate, div_yield, is_call, jump_intensity, jump_mean, jump_vol,
              tol: float = DEFAULT_TOL) -> np.ndarray:
    """Merton prices from spot (index points), continuously compounded rate and dividend yield (per year)."""
    t = np.asarray(t, dtype=float)
    rate = np.asarray(rate, dtype=float)
    return price(forward=np.asarray(spot, dtype=float) * np.exp((rate - div_yield) * t), strike=strike, t=t,
                 vol=vol, discount=np.exp(-rate * t), is_call=is_call, jump_intensity=jump_intensity,
                 jump_mean=jump_mean, jump_vol=jump_vol, tol=tol)
