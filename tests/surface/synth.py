"""Synthetic SPX-like chains with a known forward, discount factor and SVI smile per expiry.

Prices come from this file's own Black-76 (scipy.special.ndtr), independent of spx_core.pricing, so
tests that recover the inputs check the whole pipeline against an independent reference.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np
from scipy.special import ndtr

from spx_core.domain import ET, ChainSnapshot, Root, default_calendar

NOW = datetime(2024, 3, 4, 14, 30, tzinfo=ET)


@dataclass(frozen=True)
class TrueExpiry:
    root: Root
    expiry: date
    t: float
    forward: float
    discount: float
    svi: tuple[float, float, float, float, float]  # a, b, rho, m, sigma (total variance)


def svi_w(k, a, b, rho, m, sigma):
    return a + b * (rho * (k - m) + np.sqrt((k - m) ** 2 + sigma ** 2))


def black(forward, strike, t, vol, discount, is_call):
    sd = vol * np.sqrt(t)
    d1 = np.log(forward / strike) / sd + 0.5 * sd
    d2 = d1 - sd
    call = discount * (forward * ndtr(d1) - strike * ndtr(d2))
    put = discount * (strike * ndtr(-d2) - forward * ndtr(-d1))
    return np.where(is_call, call, put)


def default_svi(t: float) -> tuple[float, float, float, float, float]:
    """A calendar- and butterfly-arbitrage-free family: ATM vol ~16-19%, equity skew."""
    atm_var = (0.16 + 0.03 * np.exp(-t * 4)) ** 2
    sigma = 0.08 + 0.1 * np.sqrt(t)
    b = 0.12 * np.sqrt(t) + 0.02 * t
    rho = -0.7
    a = atm_var * t - b * sigma * np.sqrt(1 - rho ** 2)
    return (float(a), float(b), rho, 0.0, float(sigma))


def make_chain(*, n_expiries: int = 8, spot: float = 5100.0, rate: float = 0.05, div: float = 0.015,
               noise: float = 0.0, half_spread_vol: float = 0.004, seed: int = 0, now: datetime = NOW,
               svi_for=default_svi, strikes_per_expiry: int | None = None) -> tuple[ChainSnapshot, list[TrueExpiry]]:
    """A chain with calls and puts on a 5-point grid (wider for long expiries).

    Bid/ask are the model price -/+ a half-spread of ``half_spread_vol`` vol times vega (floored at
    0.05 and at 0.1% of the price); ``noise`` adds Gaussian noise of that many half-spreads to the mid.
    """
    rng = np.random.default_rng(seed)
    cal = default_calendar()
    listed = [(r, d) for r, d in cal.listed_expiries(now.date()) if d > now.date()]
    step = max(1, len(listed) // n_expiries)
    chosen = listed[::step][:n_expiries]
    cols: dict[str, list] = {k: [] for k in ("root", "expiry", "strike", "is_call", "bid", "ask")}
    truth = []
    for root, exp in chosen:
        t = cal.time_to_expiry(now, exp, root)
        fwd, df = spot * np.exp((rate - div) * t), np.exp(-rate * t)
        params = svi_for(t)
        dk = 5.0 if t < 0.25 else 25.0
        width = 4.0 * 0.2 * np.sqrt(t) + 0.04
        strikes = np.arange(np.floor(fwd * np.exp(-1.5 * width) / dk) * dk,
                            fwd * np.exp(width) + dk, dk)
        if strikes_per_expiry is not None:
            centre = np.argmin(np.abs(strikes - fwd))
            h = strikes_per_expiry // 2
            strikes = strikes[max(centre - h, 0):centre + h]
        k = np.log(strikes / fwd)
        vol = np.sqrt(svi_w(k, *params) / t)
        for is_call in (True, False):
            price = black(fwd, strikes, t, vol, df, is_call)
            sd = vol * np.sqrt(t)
            d1 = np.log(fwd / strikes) / sd + 0.5 * sd
            vega = df * fwd * np.sqrt(t) * np.exp(-0.5 * d1 ** 2) / np.sqrt(2 * np.pi)
            half = np.maximum(np.maximum(half_spread_vol * vega, 0.05), 0.001 * price)  # ITM: wider, like SPX
            mid = price + noise * half * rng.standard_normal(len(strikes))
            bid = np.maximum(mid - half, 0.0)
            cols["root"] += [root.value] * len(strikes)
            cols["expiry"] += [exp] * len(strikes)
            cols["strike"] += list(strikes)
            cols["is_call"] += [is_call] * len(strikes)
            cols["bid"] += list(bid)
            cols["ask"] += list(mid + half)
        truth.append(TrueExpiry(root, exp, t, fwd, df, params))
    snap = ChainSnapshot.from_columns(underlying="SPX", time=now, underlying_price=spot,
                                      **{k: np.asarray(v) for k, v in cols.items()})
    return snap, truth


def shift_day(now: datetime, days: int) -> datetime:
    return now + timedelta(days=days)
