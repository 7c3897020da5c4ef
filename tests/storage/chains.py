"""Realistic synthetic SPX chains for storage tests and benchmarks (no dependency on the simulator).

Quotes look like a real Cboe feed: strikes on a 5-point grid, bid/ask on the SPX tick grid
(0.05 under 3.00, 0.10 above) priced off Black-Scholes with a skew, sizes in the tens/hundreds,
open interest in the thousands, quote times a few seconds old, vendor IV/delta with 4 decimals.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
from scipy.special import ndtr

from spx_core.domain import ChainSnapshot

T0 = datetime(2024, 1, 5, 15, 30, tzinfo=UTC)


def _tick_round(x: np.ndarray, *, up: bool) -> np.ndarray:
    tick = np.where(x < 3.0, 0.05, 0.10)
    steps = np.ceil(x / tick - 1e-9) if up else np.floor(x / tick + 1e-9)
    # Via integer cents, so each price is the same double a CSV parser would produce ("12.35").
    return np.round(steps * tick * 100) / 100


def _lognormal_int(rng: np.random.Generator, n: int, median: float, sigma: float) -> np.ndarray:
    return np.maximum(1, np.round(median * np.exp(sigma * rng.standard_normal(n)))).astype(np.int64)


def _sizes(rng: np.random.Generator, n: int) -> np.ndarray:
    favourites = rng.choice([10, 20, 25, 40, 50, 70, 100], n)
    return np.where(rng.random(n) < 0.5, favourites, _lognormal_int(rng, n, 60, 1.5))


def realistic_chain(*, n_quotes: int = 20_000, seed: int = 0, time: datetime = T0, spot: float = 4700.0,
                    vendor_fields: bool = True) -> ChainSnapshot:
    """A chain of about ``n_quotes`` quotes (rounded down to whole strike pairs per expiry)."""
    rng = np.random.default_rng(seed)
    n_exp = max(1, n_quotes // 500)
    per_exp = max(1, n_quotes // (2 * n_exp))
    first = date(2024, 1, 5)
    expiries = np.array([np.datetime64(first + timedelta(days=int(d)), "D")
                         for d in np.unique(np.round(np.geomspace(1, 400, n_exp)).astype(int) + np.arange(n_exp))])
    n_exp = len(expiries)
    center = round(spot / 5) * 5
    strikes = center + 5.0 * (np.arange(per_exp) - per_exp // 2)
    strikes = strikes[strikes > 0]
    exp = np.repeat(expiries, 2 * len(strikes))
    strike = np.tile(np.repeat(strikes, 2), n_exp)
    is_call = np.tile([True, False], n_exp * len(strikes))
    t = np.maximum((exp - np.datetime64(first, "D")).astype(float) / 365.0, 0.5 / 365)
    k = np.log(strike / spot)
    vol = np.clip(0.14 - 0.25 * k + 0.6 * k * k, 0.08, 1.5)
    sd = vol * np.sqrt(t)
    d1 = -k / sd + 0.5 * sd
    call = spot * ndtr(d1) - strike * ndtr(d1 - sd)
    theo = np.maximum(np.where(is_call, call, call - spot + strike), 0.0)
    half = np.maximum(0.05, 0.004 * theo + rng.uniform(0.0, 0.15, len(theo)))
    bid = _tick_round(np.maximum(theo - half, 0.0), up=False)
    ask = _tick_round(theo + half, up=True)
    bid = np.where(rng.random(len(bid)) < 0.02, np.nan, bid)
    age_ns = (rng.exponential(3.0, len(bid)) * 1e9).astype(np.int64) // 1_000_000 * 1_000_000  # ms stamps
    n = len(bid)
    # Size/volume/OI distributions follow spxw20190626.csv: round-lot favourites, heavy tails, many zeros.
    volume = np.where(rng.random(n) < 0.75, 0, _lognormal_int(rng, n, 5, 1.8))
    last = np.where(volume == 0, np.nan, _tick_round(theo * rng.uniform(0.9, 1.1, n), up=False))  # traded today
    columns = dict(bid=bid, ask=ask, last=last, bid_size=_sizes(rng, n), ask_size=_sizes(rng, n), volume=volume,
                   open_interest=np.where(rng.random(n) < 0.38, 0, _lognormal_int(rng, n, 150, 2.0)))
    if vendor_fields:
        delta = np.where(is_call, ndtr(d1), ndtr(d1) - 1.0)
        columns |= dict(vendor_iv=np.round(vol * 1e4) / 1e4, vendor_delta=np.round(delta * 1e4) / 1e4)
    ns = int(time.timestamp()) * 1_000_000_000
    return ChainSnapshot.from_columns(underlying="SPX", time=ns, underlying_price=spot,
                                      underlying_bid=spot - 0.25, underlying_ask=spot + 0.25,
                                      root=np.where(exp == expiries[0], "SPXW", "SPX"), expiry=exp,
                                      strike=strike, is_call=is_call, quote_time=ns - age_ns, **columns)
